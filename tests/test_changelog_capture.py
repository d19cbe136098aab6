"""Which buffered events a checkpoint writes as pending records (``StageStore.capture``).

A pending record exists for an event a restart would not bring back: the person events the
entity stage handed on in memory (it remembers it applied their entity event), and events
restored from a pending record. What ingest routed in memory needs none (ingest keeps no state;
its input is committed no further than the first record still waiting here), except on a
partition moving to another worker, which reads only the changelog and the stage topic.
"""

from __future__ import annotations

from streams.core import Core, StageEvent
from streams.runtime.changelog import StageStore, decode
from streams.runtime.offsets import HeldOffsets


def _call(n: int, caller: str) -> dict:
    return {"event_id": f"cdr-{n:06d}", "event_time": f"2026-03-01T10:{n:02d}:00+08:00",
            "carrier": "CMCC", "kind": "voice", "caller": caller, "callee": "+8613900000000",
            "answered": True, "duration_s": 60, "caller_origin": "domestic"}


def _event(n: int, key: str, held: HeldOffsets | None) -> StageEvent:
    ev = StageEvent.make("calls", key, "line", _call(n, key))
    ev.origin = None if held is None else (held, 0, n)  # type: ignore[assignment]
    return ev


def _pending(records) -> dict[bytes, list | None]:
    return {k: (decode(v) if v is not None else None)
            for items in records.values() for k, v in items if k[:1] == b"p"}


def _store(name: str, own: HeldOffsets, ingest: HeldOffsets) -> StageStore:
    """As a worker's lane sets it up: the entity stage's in-memory input is ingest's."""
    core = Core()
    stage = core.entities if name == "entity" else core.decider
    store = StageStore(f"zt-{name}-state", stage, lambda key: int(key[-1]) % 2)
    store.own, store.rerouted = own, (ingest if name == "entity" else None)
    return store


def test_ingest_routed_events_are_not_pending_at_the_entity_stage() -> None:
    own, ingest = HeldOffsets(), HeldOffsets()
    store = _store("entity", own, ingest)
    buffered = [_event(1, "+8613800000001", ingest), _event(2, "+8613800000002", own)]
    assert _pending(store.capture(lambda: buffered)) == {}


def test_a_moving_partition_writes_what_ingest_routed_and_only_for_its_keys() -> None:
    own, ingest = HeldOffsets(), HeldOffsets()
    store = _store("entity", own, ingest)
    buffered = [_event(1, "+8613800000001", ingest), _event(2, "+8613800000002", ingest),
                _event(3, "+8613800000003", own)]
    got = _pending(store.capture(lambda: buffered, moving=frozenset({1})))
    # Partition 1 holds keys ending in an odd digit: the ingest-routed event of ...01 is
    # written; ...03 came through the broker (its next owner reads it there); ...02 stays.
    assert list(got) == [b"p+8613800000001"]
    assert [e["value"]["event_id"] for e in got[b"p+8613800000001"]] == ["cdr-000001"]


def test_restored_events_stay_pending_until_applied_then_a_tombstone() -> None:
    own, ingest = HeldOffsets(), HeldOffsets()
    store = _store("entity", own, ingest)
    first, second = _event(1, "+8613800000001", None), _event(2, "+8613800000001", None)
    store.pending_restored([first, second])
    routed = _event(3, "+8613800000001", ingest)
    # As restored, its record is on the changelog already: nothing to write.
    assert _pending(store.capture(lambda: [first, second, routed])) == {}
    # The first applied: the record now holds the second alone (not what ingest routed).
    got = _pending(store.capture(lambda: [second, routed]))
    assert [e["value"]["event_id"] for e in got[b"p+8613800000001"]] == ["cdr-000002"]
    assert _pending(store.capture(lambda: [routed])) == {b"p+8613800000001": None}


def test_after_the_broker_lost_them_restored_events_are_written_again() -> None:
    own, ingest = HeldOffsets(), HeldOffsets()
    store = _store("entity", own, ingest)
    restored = _event(1, "+8613800000001", None)
    store.pending_restored([restored])
    store.rewrite()
    got = _pending(store.capture(lambda: [restored]))
    assert [e["value"]["event_id"] for e in got[b"p+8613800000001"]] == ["cdr-000001"]


def test_the_person_stage_writes_what_came_in_memory_whatever_its_input() -> None:
    own, ingest, entity = HeldOffsets(), HeldOffsets(), HeldOffsets()
    store = _store("decide", own, ingest)
    buffered = [_event(1, "P-0001", ingest), _event(2, "P-0002", entity), _event(3, "P-0003", own)]
    got = _pending(store.capture(lambda: buffered))
    assert sorted(got) == [b"pP-0001", b"pP-0002"]
