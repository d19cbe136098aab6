"""A new rule-set version takes effect in a running worker, against the real broker."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rules.engine import default_ruleset_path
from streams import contract, feed
from tests.timelines import call, person

pytestmark = pytest.mark.integration

EXTRA_RULE = """
  - id: R-TEST-ANY-LONG-CALL
    code: TEST_ANY_LONG_CALL
    point: contact
    description: a {call_minutes}-minute call from an unknown line (test rule)
    when: call_minutes >= 1
    score: 0.7
    action: call
    owner: tests
    version: 1
"""


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def build_version(worker) -> str:
    for name, labels, _ in worker.samples():
        if name == "zt_build_info":
            return labels["ruleset_version"]
    return ""


def wait_for(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def test_a_new_rule_set_version_takes_effect_without_a_restart(worker_factory, fresh_topics,
                                                              tmp_path: Path):
    base = default_ruleset_path().read_text()
    rules = tmp_path / "rules.yaml"
    rules.write_text(base)
    w = worker_factory("--rules", str(rules))
    w.wait_ready()
    old = build_version(w)
    assert old.startswith("city-v")

    feed.produce(fresh_topics.bootstrap, [person()])
    w.wait_metric("zt_reference_entries", 1, table="registry")
    # A 2-minute call from a domestic stranger: no starting rule fires.
    feed.produce(fresh_topics.bootstrap, [call(0, 120, caller="+8613300001111", origin="domestic")])
    w.wait_metric("zt_stage_events_total", 1, stage="decide")

    # A broken file is rejected and the set in force stays.
    write_atomically(rules, base.replace("rules:", "rules:\n  - id: [broken", 1))
    w.wait_metric("zt_ruleset_rejected_total", 1)
    assert build_version(w) == old

    # The new version, with one more rule, takes effect in the running worker.
    new_text = base.replace(f"version: {old.split('-v')[-1]}", "version: 99", 1) + EXTRA_RULE
    write_atomically(rules, new_text)
    feed.produce(fresh_topics.bootstrap, [call(10, 0, caller="+8613000000000", kind="sms")])
    wait_for(lambda: build_version(w) == "city-v99")
    feed.produce(fresh_topics.bootstrap, [call(30, 150, caller="+8613300002222", origin="domestic"),
                                          call(33, 0, caller="+8613000000000", kind="sms")])
    tasks = feed.read(fresh_topics.bootstrap, "warning-tasks", until=1, timeout_s=20)
    [task] = tasks
    contract.validate("warning-tasks", task)
    assert task["ruleset_version"] == "city-v99"
    assert task["reasons"][0]["code"] == "TEST_ANY_LONG_CALL"
    assert task["evidence"] == [call(30, 150, caller="+8613300002222")[1]["event_id"]]
