"""Durable state on the real broker: after kill -9, SIGTERM and restart, a worker joining and a
rolling restart, the tasks on warning-tasks are replay's, the same ids and bytes, none missing,
none extra (``tests/faults.py``: ``worker_fault``). The moment of each fault is drawn at random
(its fraction of the traffic consumed is in the failure message)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from faults import replay_tasks, simulated_city, worker_fault

from streams.decisions import load_model, load_rules
from streams.replay import replay

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim_city(tmp_path_factory) -> tuple[list, list, set[bytes]]:
    """~45,000 records of a simulated city (1,300 persons, 8 days: ~20 tasks, fraud episodes
    with their escalations, mules, payments after warnings)."""
    work = tmp_path_factory.mktemp("city")
    reference, traffic = simulated_city(1300, 8, 5, work)
    return reference, traffic, replay_tasks(reference + traffic, work)


def _check(result: dict) -> None:
    assert (result["extra"], result["missing"], result["same_id_other_bytes"]) == (0, 0, 0), result
    assert result["expected"] >= 10


# A bulk feed for the crashes (the hardest case: hours of event time a second), a live one
# where the fault takes longer than a bulk feed lasts (a worker starting, a rolling restart);
# the two "dies_" faults kill the worker inside a checkpoint, between or amid its writes.
@pytest.mark.parametrize(("fault", "rate"), [
    ("kill_only", None), ("kill_one_of_two", None), ("sigterm_restart", None),
    ("third_joins", 2000), ("rolling_restart", 1200),
    ("dies_after_person_state", None), ("dies_in_person_state", None)])
def test_a_worker_fault_changes_no_task(fault, rate, sim_city, fresh_topics, tmp_path: Path,
                                        unique: str):
    reference, traffic, expected = sim_city
    result = worker_fault(fault, fresh_topics.bootstrap, tmp_path, f"zt-state-{unique}", reference,
                          traffic, expected, at=random.uniform(0.15, 0.7), rate=rate)
    if fault.startswith("dies_"):
        assert result["exit_code"] == -9, result  # it died where it was meant to
    _check(result)


def test_kill_with_the_packaged_default_model(fresh_topics, tmp_path: Path, unique: str):
    """The same with the model scoring beside the rules (what a deployment runs by default)."""
    import orjson

    reference, traffic = simulated_city(1300, 8, 6, tmp_path)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps({"topic": t, "value": v}) + b"\n"
                                for t, v in reference + traffic))
    replay(events, tmp_path / "replay.jsonl", ruleset=load_rules("default"), scorer=load_model(None))
    expected = set((tmp_path / "replay.jsonl").read_bytes().splitlines())
    result = worker_fault("kill_one_of_two", fresh_topics.bootstrap, tmp_path, f"zt-state-{unique}",
                          reference, traffic, expected, at=random.uniform(0.15, 0.7), models=(),
                          rate=3000)
    _check(result)
