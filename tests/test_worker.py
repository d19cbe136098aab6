"""The worker end to end against the real embedded broker (never a fake)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from streams import contract, feed
from streams.decisions import load_rules
from streams.replay import replay

pytestmark = pytest.mark.integration


def _reference() -> list[tuple[str, dict]]:
    return [("registry", contract.example("registry")), ("watchlist", contract.example("watchlist"))]


def test_contract_examples_in_a_call_task_out(worker_factory, fresh_topics):
    w = worker_factory()
    w.wait_ready()
    feed.produce(fresh_topics.bootstrap, _reference())
    w.wait_metric("zt_reference_entries", 1, table="watchlist")
    feed.produce(fresh_topics.bootstrap, [("calls", contract.example("calls"))])
    tasks = feed.read(fresh_topics.bootstrap, "warning-tasks", until=1, timeout_s=20)
    assert len(tasks) == 1
    task = contract.validate("warning-tasks", tasks[0])
    assert task["action"] == "call"
    assert task["person_id"] == "P0000123"
    assert task["contact_msisdn"] == "+8613912345678"
    assert task["evidence"] == ["cdr-20260301-000001"]
    assert task["reasons"][0]["code"] == "CALL_FROM_WATCHLISTED_NUMBER"
    assert "+8617012345678" not in orjson.dumps(task).decode()  # the fraud line is masked
    w.wait_metric("zt_tasks_emitted_total", 1, action="call")
    assert w.metric("zt_event_to_task_seconds_count") >= 1


def test_invalid_record_goes_to_dead_letter_with_reason(worker_factory, fresh_topics):
    w = worker_factory()
    w.wait_ready()
    bad_call = dict(contract.example("calls"), duration_s=-5)
    feed.produce(fresh_topics.bootstrap, [
        ("calls", bad_call),
        ("transactions", b"{not json"),
        ("watchlist", {"event_id": "wl-x"}),
    ])
    dead = feed.read(fresh_topics.bootstrap, "dead-letter", until=3, timeout_s=20)
    assert len(dead) == 3
    for d in dead:
        contract.validate("dead-letter", d)
    by_topic = {d["topic"]: d for d in dead}
    assert by_topic["calls"]["reason"] == "calls: duration_s: -5 is less than the minimum of 0"
    assert orjson.loads(by_topic["calls"]["raw"])["duration_s"] == -5
    assert by_topic["transactions"]["reason"].startswith("transactions: not JSON")
    assert by_topic["transactions"]["raw"] == "{not json"
    assert "is a required property" in by_topic["watchlist"]["reason"]
    w.wait_metric("zt_records_rejected_total", 1, topic="calls", reason="invalid_value")
    assert w.proc.poll() is None  # bad input never stops a worker


def test_garbage_on_a_stage_topic_is_dead_lettered_and_the_lane_goes_on(worker_factory,
                                                                        fresh_topics):
    """The internal topics are writable by anyone with access: what is not a stage message
    goes to dead-letter with its reason, and the lanes keep deciding."""
    from streams.topics import ENTITY_EVENTS, PERSON_EVENTS

    w = worker_factory()
    w.wait_ready()
    feed.produce(fresh_topics.bootstrap, _reference())
    w.wait_metric("zt_reference_entries", 1, table="watchlist")
    feed.produce(fresh_topics.bootstrap, [
        (ENTITY_EVENTS, b"{not json"), (PERSON_EVENTS, b"42"),
        (PERSON_EVENTS, b'{"wm": {"entity/0": "soon"}}'), (ENTITY_EVENTS, b'[{"key": "x"}]'),
    ])
    dead = feed.read(fresh_topics.bootstrap, "dead-letter", until=4, timeout_s=20)
    assert sorted(d["topic"] for d in dead) == sorted([ENTITY_EVENTS] * 2 + [PERSON_EVENTS] * 2)
    for d in dead:
        contract.validate("dead-letter", d)
        assert "not a stage" in d["reason"]
    feed.produce(fresh_topics.bootstrap, [("calls", contract.example("calls"))])
    assert len(feed.read(fresh_topics.bootstrap, "warning-tasks", until=1, timeout_s=20)) == 1
    assert w.proc.poll() is None


def test_a_record_delivered_twice_gives_one_task(worker_factory, fresh_topics):
    w = worker_factory()
    w.wait_ready()
    feed.produce(fresh_topics.bootstrap, _reference())
    w.wait_metric("zt_reference_entries", 1, table="watchlist")
    call = contract.example("calls")
    feed.produce(fresh_topics.bootstrap, [("calls", call), ("calls", call)])
    w.wait_metric("zt_records_duplicate_total", 1)
    tasks = feed.read(fresh_topics.bootstrap, "warning-tasks", timeout_s=10, idle_s=2)
    assert len(tasks) == 1


def test_replay_and_worker_give_the_same_tasks(worker_factory, fresh_topics, tmp_path: Path):
    events = Path(__file__).parent.parent / "streams" / "sample" / "city.jsonl"
    lines = []
    for line in events.read_bytes().splitlines():
        try:
            lines.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue  # a broken replay line has no topic: it cannot reach a broker at all
    replay(events, tmp_path / "tasks.jsonl", ruleset=load_rules("default"))  # as the workers
    expected = sorted((tmp_path / "tasks.jsonl").read_bytes().splitlines())
    assert len(expected) >= 3

    w = worker_factory()
    w.wait_ready()
    reference = [(e["topic"], e["value"]) for e in lines if e["topic"] in ("registry", "watchlist")]
    activity = [(e["topic"], e["value"]) for e in lines if e["topic"] not in ("registry", "watchlist")]
    feed.produce(fresh_topics.bootstrap, reference)
    n_watch = len({v["value"] for t, v in reference if t == "watchlist"})
    w.wait_metric("zt_reference_entries", n_watch, table="watchlist")
    feed.produce(fresh_topics.bootstrap, activity)
    got = [m.value for m in feed.read_messages(fresh_topics.bootstrap, "warning-tasks",
                                                until=len(expected), timeout_s=30)]
    assert sorted(got) == expected  # the same bytes


def _settled(workers, partitions: int = 8, timeout: float = 60.0) -> None:
    """Wait until every stage partition is held by one of ``workers`` and takes that worker's
    events in memory (each worker holding some: the group's rebalances are over)."""
    deadline = time.monotonic() + timeout
    while True:
        held = {s: [w.metric("zt_stage_partitions_in_memory", stage=s) for w in workers]
                for s in ("entity", "decide")}
        if all(sum(v) == partitions and min(v) > 0 for v in held.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"stage partitions in memory: {held}")
        time.sleep(0.2)


def _stage_arrays(bootstrap: str) -> int:
    """Stage events that went through the broker (arrays of envelopes) on the internal topics."""
    from streams.lanes import stage_message
    from streams.topics import ENTITY_EVENTS, PERSON_EVENTS

    return sum(len(stage_message(m.value)[0]) for topic in (ENTITY_EVENTS, PERSON_EVENTS)
               for m in feed.read_messages(bootstrap, topic, timeout_s=10, idle_s=1))


def _bench_city(tmp_path: Path, records: int) -> tuple[list, list, list[bytes]]:
    """A small bench city's reference and traffic records, and the task lines replay gives for
    them (city rules)."""
    from streams.bench import BenchCity

    city = BenchCity(persons=2000, listed=100)
    reference, traffic = list(city.reference()), list(city.traffic(records))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps({"topic": t, "value": v}) + b"\n"
                                for t, v in reference + traffic))
    replay(events, tmp_path / "replay.jsonl", ruleset=load_rules("default"))
    return reference, traffic, sorted((tmp_path / "replay.jsonl").read_bytes().splitlines())


def _feed_city(bootstrap: str, workers, reference: list, traffic: list) -> None:
    """The reference first, loaded by every worker, then the traffic (the global tables are
    read beside the stages, not ordered with them in event time)."""
    feed.produce(bootstrap, reference)
    for w in workers:
        w.wait_metric("zt_reference_entries", 100, table="watchlist")
        w.wait_metric("zt_reference_entries", 2000, table="registry")
    feed.produce(bootstrap, traffic)


def test_one_worker_keeps_its_stage_events_in_memory(worker_factory, fresh_topics, tmp_path: Path):
    """One worker holds every stage partition: after the handover no stage event crosses the
    broker, and it still decides exactly as replay does."""
    reference, traffic, expected = _bench_city(tmp_path, 5000)
    w = worker_factory()
    w.wait_ready()
    _settled([w])
    _feed_city(fresh_topics.bootstrap, [w], reference, traffic)
    got = [m.value for m in feed.read_messages(fresh_topics.bootstrap, "warning-tasks",
                                                until=len(expected), timeout_s=60)]
    assert sorted(got) == expected
    assert w.metric("zt_stage_events_total", stage="decide") > 5000
    assert _stage_arrays(fresh_topics.bootstrap) == 0
    assert w.metric("zt_records_late_total") == 0


def test_two_workers_decide_as_replay_with_events_in_memory_and_through_the_broker(
        worker_factory, fresh_topics, tmp_path: Path):
    """Two workers in one group: each hands the events of its own partitions on in memory and
    the others through the broker; the watermarks still order everything as replay does (not
    one record late) and the tasks are replay's, byte for byte."""
    reference, traffic, expected = _bench_city(tmp_path, 20_000)
    assert len(expected) > 300
    a, b = worker_factory(), worker_factory()
    a.wait_ready(timeout=60)
    b.wait_ready(timeout=60)
    _settled([a, b])
    time.sleep(2)  # a last rebalance of a group would show in the gauges again
    _settled([a, b])
    _feed_city(fresh_topics.bootstrap, [a, b], reference, traffic)
    got = [m.value for m in feed.read_messages(fresh_topics.bootstrap, "warning-tasks",
                                                until=len(expected), timeout_s=90)]
    assert sorted(got) == expected
    for w in (a, b):
        assert w.metric("zt_stage_events_total", stage="decide") > 0
        assert w.metric("zt_records_late_total") == 0
    assert _stage_arrays(fresh_topics.bootstrap) > 0  # the other worker's share went by broker


def test_reference_fed_with_the_traffic_is_read_before_the_traffic_is_decided(
        worker_factory, fresh_topics, tmp_path: Path):
    """The registry and the watch lists are read beside the stages, so a stage waits for them
    in event time (a side input): a city's reference produced together with its traffic gives
    replay's tasks, not decisions taken against a half-read registry."""
    reference, traffic, expected = _bench_city(tmp_path, 5000)
    w = worker_factory()
    w.wait_ready()
    _settled([w])
    feed.produce(fresh_topics.bootstrap, reference + traffic)
    got = [m.value for m in feed.read_messages(fresh_topics.bootstrap, "warning-tasks",
                                                until=len(expected), timeout_s=60)]
    assert sorted(got) == expected
    assert w.metric("zt_records_unrouted_total") == 0
