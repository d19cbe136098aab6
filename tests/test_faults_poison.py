"""Poison records on every topic in the middle of a city, on the real broker and a real worker:
the lanes go on, the tasks are replay's, byte for byte, and each poison record is on
``dead-letter`` with its reason (found by its digest: dead letters carry the raw record cut to
4 KB, its length and its SHA-256)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from streams import contract, feed
from tests import hostile
from tests.faults import city, replay_tasks, tasks_on, wait_for

pytestmark = pytest.mark.integration


def test_poison_on_every_topic_mid_city_changes_nothing_and_is_dead_lettered(
        worker_factory, fresh_topics, tmp_path: Path):
    reference, records = city(6000)
    half = len(records) // 2
    # Contract records hostile in extra fields, made from the city's own records and sent as
    # well as them (the same event: a duplicate the stages drop), so a mistake in them shows.
    call = next(v for t, v in records[half:] if t == "calls")
    transfer = next(v for t, v in records[half:] if t == "transactions")
    now = {"event_time": call["event_time"]}  # (a record far later would be decided only by
    # replay, at the end of its file: a worker waits until event time gets there)
    bases = {"calls": call, "transactions": transfer, "registry": reference[7][1],
             "watchlist": reference[-3][1], "case-reports": {**contract.example("case-reports"), **now},
             "task-outcomes": {**contract.example("task-outcomes"), **now}}
    processed = [(t, raw) for t, base in bases.items() for raw in hostile.valid(t, base).values()]
    rejected = [(t, raw) for t in contract.INPUT_TOPICS for raw in hostile.invalid(t).values()]
    stage = [(s, raw) for s in hostile.STAGE_TOPICS for raw in hostile.stage_invalid(s).values()]
    sent = [*records[:half], *processed, *rejected, *stage, *records[half:]]
    expected = replay_tasks([*reference, *records[:half], *processed, *records[half:]], tmp_path)
    assert len(expected) > 50

    w = worker_factory()
    w.wait_ready()
    feed.produce(fresh_topics.bootstrap, reference)
    w.wait_metric("zt_reference_entries", 2000, table="registry")
    w.wait_metric("zt_reference_entries", 100, table="watchlist")
    status, ready = w.health("/readyz")
    assert status == 200 and ready["ok"] and ready["broker_reachable"] and ready["global_tables_loaded"]
    assert ready["lanes"] == ["agents", "checkpoint", "decide", "entity", "ingest", "reference"]
    feed.produce(fresh_topics.bootstrap, sent[:half + len(processed)])
    prod = feed.producer(fresh_topics.bootstrap)  # a huge message key, with a city record
    prod.send("calls", value=orjson.dumps(call), key=b"k" * 500_000).get(30)
    prod.close(5)
    feed.produce(fresh_topics.bootstrap, sent[half + len(processed):])

    want = {(t, hashlib.sha256(raw).hexdigest()): raw for t, raw in rejected + stage}
    seen: dict[tuple[str, str], list[dict]] = {}

    def all_dead_lettered() -> bool:
        for m in feed.read_messages(fresh_topics.bootstrap, "dead-letter", timeout_s=10, idle_s=1):
            d = contract.validate("dead-letter", orjson.loads(m.value))
            seen.setdefault((d["topic"], d["raw_sha256"]), []).append(d)
        return set(want) <= set(seen)

    wait_for("every poison record on dead-letter", all_dead_lettered, timeout_s=120, every_s=1)
    assert set(seen) == set(want)  # and nothing else: the hostile contract records went through
    for (topic, _), raw in want.items():
        for d in seen[(topic, hashlib.sha256(raw).hexdigest())]:
            assert d["raw_bytes"] == len(raw) and len(d["raw"]) <= 4 * 4096
            if topic in contract.INPUT_TOPICS:
                assert d["reason"] == contract.check(topic, raw).reason
            else:
                assert d["reason"].startswith(f"{topic}: not a stage")

    got = tasks_on(fresh_topics.bootstrap, idle_s=3)
    assert got == expected
    assert w.proc.poll() is None
    assert w.metric("zt_lane_up") == 6
    assert w.health("/healthz")[0] == 200
    for topic in contract.INPUT_TOPICS:
        assert w.metric("zt_records_rejected_total", topic=topic) == len(hostile.invalid(topic))
