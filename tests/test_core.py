"""The decision core on hand-built timelines (event time only; no broker)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from streams import contract
from streams.core import Core, CoreConfig
from streams.watermark import Reorderer
from tests.timelines import VICTIM_MSISDN, at, call, listed, person


def run(records, config: CoreConfig | None = None) -> list[dict]:
    core = Core(config)
    tasks = []
    for topic, value in records:
        contract.validate(topic, value)
        tasks.extend(core.feed(topic, value))
    tasks.extend(core.finish())
    recs = [t.to_record() for t in tasks]
    for r in recs:
        contract.validate("warning-tasks", r)
    return recs


def calls(tasks: list[dict]) -> list[dict]:
    return [t for t in tasks if t["action"] == "call"]


def test_a_hooked_call_from_a_listed_line_gives_a_call_task():
    [task] = calls(run([person(), listed(), call(0, 21 * 60)]))
    assert task["action"] == "call"
    assert task["contact_msisdn"] == VICTIM_MSISDN
    assert task["created_time"] == at(21)  # when the evidence was complete: the call's end
    assert task["due_time"] == at(26)  # plus the call's 5-minute limit
    assert task["priority"] == 1  # 20 minutes or more
    assert task["risk_score"] == 0.9
    assert task["district"] == "371602"
    assert task["evidence"] == [call(0, 21 * 60)[1]["event_id"]]
    assert task["ruleset_version"] == "core-v1" and task["model_version"] == "none"
    # In the desks' language (Chinese by default, the policy's), the number masked.
    assert task["reasons"][0]["detail"] == ("接听了预警名单号码+86170****5678（虚拟运营商，"
                                            "置信度0.90）的来电21分钟，09:21结束")


def test_reasons_are_in_the_policy_s_language():
    from dataclasses import replace

    from streams.ladder import Policy

    core = Core(policy=replace(Policy.load(), language="en"))
    tasks = [t.to_record() for rec in [person(), listed(), call(0, 21 * 60)] for t in core.feed(*rec)]
    tasks += [t.to_record() for t in core.finish()]
    [task] = calls(tasks)
    assert task["reasons"][0]["detail"] == ("21-minute answered call from watch-listed virtual number "
                                            "+86170****5678 (confidence 0.90), ended 09:21")


def test_the_five_minute_boundary():
    assert run([person(), listed(), call(0, 299)]) == []
    assert len(run([person(), listed(), call(0, 300)])) == 1


def test_no_task_without_every_condition():
    assert run([person(), listed(), call(0, 900, answered=False)]) == []
    assert run([person(), listed(), call(0, 0, kind="sms")]) == []
    assert run([person(), call(0, 900)]) == []  # the line is not listed
    assert run([listed(), call(0, 900)]) == []  # the callee is not registered
    assert run([person(), listed("+8617000000000"), call(0, 900)]) == []  # another line


def test_the_watch_list_counts_as_of_the_call_end():
    # listed 10 minutes into a 15-minute call: it was listed when the call ended
    assert len(run([person(), listed(minute=10), call(0, 900)])) == 1
    # listed after the call ended: no retroactive task for that call
    assert run([person(), call(0, 900), listed(minute=16)]) == []
    # removed before the call: no task
    assert run([person(), listed(minute=-60), listed(minute=-30, op="remove"), call(0, 900)]) == []


def test_elderly_people_get_priority_one_and_a_reason():
    [task] = calls(run([person(birth_year=1950), listed(confidence=0.8), call(0, 400)]))
    assert task["priority"] == 1
    assert [r["code"] for r in task["reasons"]] == ["CALL_FROM_WATCHLISTED_NUMBER", "ELDERLY_PERSON"]
    [young] = calls(run([person(birth_year=1990), listed(confidence=0.8), call(0, 400)]))
    assert young["priority"] == 2  # risk 0.8: urgent only from 0.9, or for the elderly


def test_one_episode_is_not_warned_twice_for_the_same_reason():
    tasks = run([person(), listed(), call(0, 600), call(60, 900), call(120, 1200)])
    # One call; nobody answered it within 5 minutes, so the ladder escalated to a visit.
    assert [t["action"] for t in tasks] == ["call", "visit"]
    assert tasks[1]["reasons"][0]["code"] == "CALL_OVERDUE"
    other = "+8617099998888"
    tasks = calls(run([person(), listed(), listed(other), call(0, 600), call(60, 900, caller=other)]))
    assert len(tasks) == 2
    assert tasks[0]["episode_id"] == tasks[1]["episode_id"]


def test_a_new_episode_after_a_quiet_period():
    tasks = calls(run([person(), listed(), call(0, 600), call(73 * 60, 600)]))
    assert len(tasks) == 2
    assert tasks[0]["episode_id"] != tasks[1]["episode_id"]


def test_a_duplicate_record_has_no_effect():
    c = call(0, 600)
    assert run([person(), listed(), c, c, c]) == run([person(), listed(), c])
    core = Core()
    for topic, value in [person(), listed(), c, c]:
        core.feed(topic, value)
    core.finish()
    assert core.duplicates == 1


def test_ids_with_slashes_are_not_taken_for_each_other():
    """Person and event ids are free text: person "P/1" called in event "c" and person "P"
    called in event "1/c" are two calls, both decided."""
    a, b = "+8613900000001", "+8613900000002"
    records = [person("P/1", msisdn=a, account="6222000000000000001"),
               person("P", msisdn=b, account="6222000000000000002"), listed(),
               call(0, 600, callee=a, eid="c"), call(0.1, 600, callee=b, eid="1/c")]
    assert sorted(t["person_id"] for t in calls(run(records))) == ["P", "P/1"]


def test_task_ids_derive_from_the_evidence():
    a = run([person(), listed(), call(0, 600)])
    b = run([person(), listed(), call(0, 600)])
    assert a == b
    c = run([person(), listed(), call(0, 600, eid="another-cdr")])
    assert a[0]["task_id"] != c[0]["task_id"]


def test_records_out_of_order_within_the_lateness_decide_as_in_order():
    records = [person(), listed(), call(0, 600), call(0.5, 700, caller="+8617099998888"),
               listed("+8617099998888", minute=0.2)]
    shuffled = [records[0], records[1], records[3], records[4], records[2]]
    assert run(sorted(records, key=lambda r: r[1]["event_time"])) == run(shuffled)


# --- the event-time buffer ----------------------------------------------------------------


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=200), st.integers(0, 2**32))
@settings(max_examples=200, deadline=None)
def test_reorderer_sorts_any_disorder_within_the_lateness(times: list[int], seed: int):
    lateness = 500
    items = sorted((t, i) for i, t in enumerate(times))
    # Shuffle each record at most `lateness` ms away from its place: within the bound.
    rng = random.Random(seed)
    arrival = sorted(items, key=lambda it: it[0] + rng.uniform(0, lateness))
    buf = Reorderer(lateness_ms=lateness)
    out = []
    for t, i in arrival:
        buf.push((t, 0, f"{i:05d}"), (t, i))
        out.extend(buf.pop_ready())
    out.extend(buf.drain())
    assert buf.late == 0
    assert out == sorted(items, key=lambda it: (it[0], f"{it[1]:05d}"))


def test_reorderer_releases_late_records_at_once_and_counts_them():
    buf = Reorderer(lateness_ms=100)
    buf.push((1000, 0, "a"), "a")
    buf.push((5000, 0, "b"), "b")
    assert buf.pop_ready() == ["a"]
    buf.push((900, 0, "late"), "late")
    assert buf.pop_ready() == ["late"] and buf.late == 1
    assert buf.drain() == ["b"]


def test_reorderer_wall_clock_bound_releases_a_quiet_stream():
    buf = Reorderer(lateness_ms=60_000, max_wait_s=0.1)
    buf.push((1000, 0, "a"), "a", now=10.0)
    assert buf.pop_ready(now=10.05) == []
    assert buf.pop_ready(now=10.11) == ["a"]
