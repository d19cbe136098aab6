"""Topic names and partition counts: the contract's topics and the pipeline's internal ones."""

from __future__ import annotations

from streams.contract import ALL_TOPICS

# Internal topics, not in the contract: stage 1 -> 2 keyed by line or account, 2 -> 3 by person.
ENTITY_EVENTS = "zt-entity-events"
PERSON_EVENTS = "zt-person-events"
# The stages' changelogs (``streams/runtime/changelog.py``): one partition per stage partition.
ENTITY_STATE = "zt-entity-state"
PERSON_STATE = "zt-person-state"
COMPACTED = (ENTITY_STATE, PERSON_STATE)  # (keyed records: the latest of each key is kept)

HIGH_VOLUME = ("calls", "transactions")
DEFAULT_PARTITIONS = 8  # calls, transactions and person events; the rest are small


def partitions(high_volume: int = DEFAULT_PARTITIONS, low_volume: int = 1) -> dict[str, int]:
    """Partition count per topic. Workers scale out to at most ``high_volume`` processes."""
    counts = {t: (high_volume if t in HIGH_VOLUME else low_volume) for t in ALL_TOPICS}
    counts[ENTITY_EVENTS] = high_volume
    counts[PERSON_EVENTS] = high_volume
    counts[ENTITY_STATE] = high_volume
    counts[PERSON_STATE] = high_volume
    return counts
