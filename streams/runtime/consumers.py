"""How a worker reads the broker: its settings (``LaneConfig``), the consumers' options, lag,
and partitions whose log the broker lost."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import metrics, transient
from streams.core import CoreConfig
from streams.settings import DEFAULT_COMMIT_BEHIND_S


@dataclass(frozen=True)
class LaneConfig:
    bootstrap: str
    group: str = "zt"  # consumer groups are <group>-ingest, <group>-entity and <group>-decide
    batch: int = 5000
    poll_ms: int = 20
    marker_every_s: float = 0.05  # how often a stage tells the next how far it has come
    idle_flush_s: float = 1.0  # inputs read to their end this long: release what was sent
    # An input partition read to its end counts as idle (its mark then follows the newest
    # partition's) at once when it is within half the lateness of that partition in event time
    # (a live feed between two of its batches), else only once a fetch response this long after
    # its last data still ends there: a partition that merely caught up with a bulk feed far
    # behind the others is not idle, and marking it so made its next records late (seen with
    # two workers on a bulk feed).
    idle_partition_s: float = 0.25
    # A checkpoint (state to the changelogs, then the input offsets) this often: a key changed
    # many times between two is written once, and a restart re-reads at most this much.
    commit_every_s: float = 0.5
    # While more than ``behind_records`` wait (unread, or held in a stage: a backlog, a restart's
    # re-read), a checkpoint at most this often instead: a key changed all through a backlog is
    # written once, not at every step of it; one follows as soon as the inputs catch up.
    commit_behind_s: float = DEFAULT_COMMIT_BEHIND_S
    behind_records: int = 5000
    session_timeout_ms: int = 6000  # short: a group join takes ~3 s on Tansu, not ~23 s
    heartbeat_ms: int = 1000
    fetch_wait_ms: int = 20
    # A broker away this long (sends not acknowledged, commits refused) makes the worker exit.
    broker_deadline_s: float = transient.BROKER_DEADLINE_S
    rules: str = "default"  # rule file ("default": rules/sets/city.yaml; "none": built-in path)
    models: str | None = None  # model registry directory (None: $ZT_MODELS or .zt/models)
    core: CoreConfig = field(default_factory=CoreConfig)


def consumer_kwargs(cfg: LaneConfig) -> dict[str, Any]:
    return dict(
        bootstrap_servers=cfg.bootstrap.split(","),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=cfg.session_timeout_ms,
        heartbeat_interval_ms=cfg.heartbeat_ms,
        max_partition_fetch_bytes=4 << 20,
        # Tansu holds a fetch for the whole max wait even when records are there (measured:
        # p50 event-to-task 467 ms at the 500 ms default), so keep the wait short.
        fetch_max_wait_ms=cfg.fetch_wait_ms,
    )


class LagGauge:
    """Per-topic lag: the fetch response's high-water mark minus the next offset to read.

    (The high-water mark from fetches is right on Tansu; ``end_offsets()`` is not: INFRA.md.)
    """

    def __init__(self) -> None:
        self.lag: dict[TopicPartition, int] = {}

    def update(self, consumer: AIOKafkaConsumer, tp: TopicPartition, next_offset: int) -> None:
        high = consumer.highwater(tp)
        if high is not None:
            self.lag[tp] = max(high - next_offset, 0)

    def caught_up(self) -> None:
        self.lag = dict.fromkeys(self.lag, 0)  # an empty fetch: nothing is waiting

    def publish(self) -> None:
        totals: dict[str, int] = {}
        for tp, n in self.lag.items():
            totals[tp.topic] = totals.get(tp.topic, 0) + n
        for topic, n in totals.items():
            metrics.CONSUMER_LAG.labels(topic).set(n)


async def read_again(consumer: AIOKafkaConsumer, lost_logs: transient.LostLogs,
                     tps: Iterable[TopicPartition], consumed: dict[TopicPartition, int],
                     batches: dict[TopicPartition, Any]) -> list[TopicPartition]:
    """The partitions of ``tps`` whose log the broker lost (``LostLogs``), set to be read again
    from their start (unless this fetch already read from there, the group having reset the
    position); the caller forgets what it knew of their offsets."""
    lost = lost_logs.lost(consumer, list(tps), consumed)
    again = [tp for tp in lost if tp not in batches]
    if again:
        await consumer.seek_to_beginning(*again)
    return lost
