"""The dissuasion ladder on hand-built timelines: escalations happen in event time."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.ladder import Policy
from tests.timelines import Run, at, call, history, listed, outcome, report, transfer

MULE = "6217000099990001"


def warned() -> tuple[Run, dict]:
    """A person hooked by a listed line; returns the run and the call task."""
    run = Run()
    run.feed(*history())  # a week of history: the pipeline knows who the person pays
    run.feed(listed(), call(0, 600))
    run.feed(call(10.5, 0, caller="+8613800000000", answered=False))  # the stream moves on
    [task] = run.tasks
    assert task["action"] == "call" and task["created_time"] == at(10)
    return run, task


def test_an_unanswered_call_task_escalates_to_a_visit_at_its_due_time():
    run, task = warned()
    run.feed(call(14.9, 0, caller="+8613800000000", answered=False))
    assert len(run.tasks) == 1  # not yet due (due 15:00)
    run.feed(call(15.1, 0, caller="+8613800000000", answered=False))
    visit = run.tasks[-1]
    assert (visit["action"], visit["reasons"][0]["code"]) == ("visit", "CALL_OVERDUE")
    assert visit["created_time"] == task["due_time"]  # event time, not the wall clock
    assert visit["episode_id"] == task["episode_id"]
    assert visit["priority"] == 1
    assert run.stats.get("sla_breaches", "call") == 1


def test_a_dissuaded_person_is_not_escalated():
    run, task = warned()
    run.feed(outcome(12, task["task_id"], "dissuaded"), call(30, 0, caller="+8613800000000",
                                                             answered=False))
    assert run.actions() == [("call", "CALL_FROM_WATCHLISTED_NUMBER")]
    assert run.stats.get("outcomes", "dissuaded") == 1
    assert run.stats.get("sla_breaches", "call") == 0


@pytest.mark.parametrize(("result", "code"), [("unreachable", "CALL_UNREACHABLE"),
                                              ("refused", "CALL_REFUSED")])
def test_unreachable_or_refused_escalates_to_a_visit(result: str, code: str):
    run, task = warned()
    run.feed(outcome(12, task["task_id"], result))
    run.finish()
    assert run.actions()[1] == ("visit", code)
    assert run.tasks[1]["created_time"] == at(12)
    assert run.stats.get("sla_breaches", "call") == 0  # the desk answered in time


def test_a_repeated_outcome_changes_nothing():
    run, task = warned()
    o = outcome(12, task["task_id"], "unreachable")
    run.feed(o, o)
    run.feed(("task-outcomes", {**o[1], "event_id": "another-delivery"}))
    run.finish()
    assert [a for a, _ in run.actions()].count("visit") == 1


def test_a_warned_person_who_pays_gets_a_hold_then_a_stop_payment_when_it_completes():
    run, task = warned()
    run.feed(outcome(12, task["task_id"], "dissuaded"))
    run.feed(transfer(40, 4_800_000, payee=MULE, txn="T1"))
    hold = run.tasks[-1]
    assert (hold["action"], hold["reasons"][0]["code"]) == ("hold", "PAID_AFTER_WARNING")
    assert hold["bank"] == "ICBC" and hold["txn_id"] == "T1" and hold["amount_fen"] == 4_800_000
    run.feed(transfer(41, 4_800_000, payee=MULE, txn="T1", status="completed"))
    stop = run.tasks[-1]
    assert (stop["action"], stop["reasons"][0]["code"]) == ("stop_payment", "HOLD_TOO_LATE")
    assert stop["account"] == MULE and stop["bank"] == "CCB"
    # What happened, not "no answer from the bank" a minute into a 2-minute hold (issue 20).
    assert stop["reasons"][0]["detail"].startswith("拦截发起60秒后、银行拦截前转账已完成，48,000元已到达")


def test_a_hold_the_bank_could_not_make_says_so():
    run, _ = warned()
    run.feed(transfer(40, 4_800_000, payee=MULE, txn="T1"))
    hold = run.tasks[-1]
    run.feed(outcome(40.5, hold["task_id"], "failed", actor="bank:ICBC"))
    run.feed(transfer(41, 4_800_000, payee=MULE, txn="T1", status="completed"))
    assert run.tasks[-1]["reasons"][0]["detail"].startswith("银行未能拦截此笔转账，48,000元已到达")


def test_a_hold_that_worked_needs_no_stop_payment_and_is_followed_up_before_it_lapses():
    run, _ = warned()
    run.feed(transfer(40, 4_800_000, payee=MULE, txn="T1"))
    hold = run.tasks[-1]
    run.feed(outcome(41, hold["task_id"], "held", amount_fen=4_800_000, actor="bank:ICBC"))
    run.feed(transfer(41.5, 4_800_000, payee=MULE, txn="T1", status="held"))
    assert run.tasks[-1]["action"] == "hold"
    run.feed(call(41 + 22 * 60 + 1, 0, caller="+8613800000000", answered=False))  # 22 h later
    follow = run.tasks[-1]
    assert (follow["action"], follow["reasons"][0]["code"]) == ("visit", "HOLD_EXPIRING")
    assert run.stats.get("funds_fen", "held") == 4_800_000


def test_a_stop_payment_is_renewed_twice_then_a_freeze_is_required():
    run, _ = warned()
    run.feed(transfer(40, 2_000_000, payee=MULE, txn="T2", status="completed"))
    stop = run.tasks[-1]
    assert stop["action"] == "stop_payment"
    run.feed(outcome(45, stop["task_id"], "stopped", amount_fen=1_500_000, actor="bank:CCB"))
    hours = [45 + 44 * 60 + 1, 45 + 92 * 60 + 1, 45 + 140 * 60 + 1, 45 + 300 * 60]
    for h in hours:
        run.feed(call(h, 0, caller="+8613800000000", answered=False))
    clocks = [t for t in run.tasks if t["reasons"][0]["code"] in ("STOP_PAYMENT_EXPIRING",
                                                                   "FREEZE_REQUIRED")]
    assert [t["reasons"][0]["code"] for t in clocks] == ["STOP_PAYMENT_EXPIRING",
                                                         "STOP_PAYMENT_EXPIRING", "FREEZE_REQUIRED"]
    assert [t["created_time"] for t in clocks] == [at(45 + 44 * 60), at(45 + 92 * 60), at(45 + 140 * 60)]
    assert len({t["task_id"] for t in clocks}) == 3
    assert run.stats.get("funds_fen", "stopped") == 1_500_000


def test_zero_transfer_rate_counts_warned_people_by_window():
    kept, _ = warned()
    kept.feed(call(10 + 125 * 60, 0, caller="+8613800000000", answered=False))  # past 72 h + grace
    assert kept.stats.get("zero_transfer_judged", "72h") == 1
    assert kept.stats.get("zero_transfer_kept", "72h") == 1

    lost, _ = warned()
    lost.feed(transfer(60, 900_000, payee=MULE, txn="T3", status="completed"))
    lost.feed(report(30 * 60, accounts=(MULE,), txns=("T3",), loss_fen=900_000))
    lost.feed(call(10 + 125 * 60, 0, caller="+8613800000000", answered=False))
    ladder = lost.core.decider.ladder
    assert ladder.stats.get("zero_transfer_judged", "24h") == 1
    assert ladder.stats.get("zero_transfer_kept", "24h") == 0
    assert ladder.stats.get("defrauded_after_warning") == 1
    [case] = ladder.review
    assert case["person_id"] == "P1" and case["transfers"][0]["amount_fen"] == 900_000
    # The timeline is in the desks' language, like the reasons.
    timeline = "\n".join(case["timeline"])
    assert "发起劝阻电话任务（" in timeline and "转账9,000元" in timeline, timeline


def test_not_fraud_closes_the_episode():
    run, task = warned()
    run.feed(outcome(12, task["task_id"], "not_fraud"))
    run.feed(call(30, 700))  # the same line again: a new episode, warned afresh
    assert [t["action"] for t in run.tasks] == ["call", "call"]
    assert run.tasks[0]["episode_id"] != run.tasks[1]["episode_id"]


def test_the_policy_file_is_read_and_checked(tmp_path: Path):
    policy = Policy.load()
    assert policy.version.startswith("policy-") and policy.time_limits_s["hold"] == 120
    bad = tmp_path / "p.yaml"
    bad.write_text("version: x\nno_such_setting: 1\n")
    with pytest.raises(ValueError, match="no_such_setting"):
        Policy.load(bad)
