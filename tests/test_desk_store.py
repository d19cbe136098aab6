"""Desk storage on SQLite and on a real PostgreSQL: idempotent intake, scoping, the rules of
claiming and recording, the outbox and the audit log."""

# ruff: noqa: F811  (pytest fixtures imported from desk_fixtures are parameters here)
from __future__ import annotations

import pytest
from desk_fixtures import db_url, postgres_url, store, task, users_for, who  # noqa: F401

from services.desk.storage import Conflict, Filters, Invalid, NotFound, TaskStore, migrate

D, B = "371602", "ICBC"


def test_a_task_delivered_twice_is_one_row(store: TaskStore) -> None:
    rec = task(D)
    assert store.add_task(rec) is True
    assert store.add_task(dict(rec)) is False
    assert store.open_counts() == {"call": 1}


def test_migrations_run_again_change_nothing(store: TaskStore) -> None:
    store.add_task(task(D))
    migrate(store.engine)
    assert store.open_counts() == {"call": 1}


def test_queue_is_scoped_and_ordered_by_priority_then_due(store: TaskStore, who: dict) -> None:
    late = task(D, priority=2, due_time="2026-03-01T09:50:00+08:00")
    soon = task(D, priority=2, due_time="2026-03-01T09:45:00+08:00")
    urgent = task(D, priority=1, due_time="2026-03-01T10:30:00+08:00")
    elsewhere = task("999999")
    for r in (late, soon, urgent, elsewhere):
        store.add_task(r)
    got = [t.task_id for t, _ in store.queue(who["officer"])]
    assert got == [urgent["task_id"], soon["task_id"], late["task_id"]]
    with pytest.raises(NotFound):
        store.get(who["officer"], elsewhere["task_id"])
    assert store.queue(who["ops"]) == []


def test_bank_sees_only_its_own_hold_and_stop_requests(store: TaskStore, who: dict) -> None:
    hold = task(D, "hold", bank=B)
    other = task(D, "hold", bank="CCB")
    call = task(D)
    for r in (hold, other, call):
        store.add_task(r)
    got = [t.task_id for t, _ in store.queue(who["liaison"], Filters())]
    assert got == [hold["task_id"]]
    with pytest.raises(NotFound):
        store.get(who["liaison"], call["task_id"])


def test_claim_then_record_once(store: TaskStore, who: dict) -> None:
    rec = task(D)
    store.add_task(rec)
    tid = rec["task_id"]
    with pytest.raises(Conflict):  # record before claim
        store.record_outcome(who["officer"], tid, "dissuaded", None, None)
    store.claim(who["officer"], tid)
    store.claim(who["officer"], tid)  # claiming your own task again is harmless
    with pytest.raises(Conflict):
        store.claim(who["officer2"], tid)
    with pytest.raises(Invalid):
        store.record_outcome(who["officer"], tid, "visited", None, None)  # not a visit task
    out = store.record_outcome(who["officer"], tid, "dissuaded", None, "agreed to stop")
    assert out.actor == f"desk:{D}" and out.published_ms is None
    with pytest.raises(Conflict):
        store.record_outcome(who["officer"], tid, "refused", None, None)
    assert [o.event_id for o in store.unpublished()] == [out.event_id]
    store.mark_published(out.event_id)
    assert store.unpublished() == []
    kinds = [(a.user, a.what, a.task_id) for a in store.audit_log()]
    assert ("officer", "claim", tid) in kinds and ("officer", "outcome", tid) in kinds


def test_bank_results_need_amount_or_reason(store: TaskStore, who: dict) -> None:
    rec = task(D, "hold", bank=B)
    store.add_task(rec)
    tid, liaison = rec["task_id"], who["liaison"]
    with pytest.raises(Invalid):
        store.record_outcome(liaison, tid, "held", None, None)
    with pytest.raises(Invalid):
        store.record_outcome(liaison, tid, "stopped", 100, None)  # a hold is not stopped
    with pytest.raises(Invalid):
        store.record_outcome(liaison, tid, "failed", None, "  ")
    with pytest.raises(NotFound):
        store.claim(who["officer"], tid)  # the desk does not even see a bank's request
    out = store.record_outcome(liaison, tid, "held", 4_800_000, None)
    assert out.amount_fen == 4_800_000 and out.actor == f"bank:{B}"
