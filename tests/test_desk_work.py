"""The work itself, on SQLite and on PostgreSQL: who holds a task (auto-assignment to the least
loaded person on shift, release, hand-over, claims that lapse, a supervisor who reassigns), call
attempts before escalation, the registry's record for a visit, history, filters and search, and
every change in the audit log."""

# ruff: noqa: F811  (pytest fixtures imported from desk_fixtures are parameters here)
from __future__ import annotations

import pytest
from desk_fixtures import db_url, postgres_url, store, task, users_for, who  # noqa: F401
from sqlalchemy import update

from services.desk.clock import DeskClock
from services.desk.coverage import gaps, uncovered
from services.desk.models import Task
from services.desk.storage import Conflict, Filters, Invalid, NotFound, TaskStore, now_ms
from streams.eventtime import fmt

D, B = "371602", "ICBC"


def held(store: TaskStore, tid: str) -> str | None:
    with store.session() as s:
        return s.get(Task, tid).claimed_by


def trail(store: TaskStore, tid: str) -> list[tuple[str, str]]:
    return [(a.user, a.what) for a in reversed(store.audit_log(task_id=tid))]


def test_work_goes_to_the_least_loaded_on_shift_of_the_district_or_bank(store, who) -> None:
    calls = [task(D) for _ in range(3)]
    hold, elsewhere = task(D, "hold", bank=B), task("999999")
    for r in [*calls, hold, elsewhere]:
        store.add_task(r)
    assert store.dispatch(who) == (0, 0)  # nobody on shift: nothing given
    store.set_shift(who["officer"], True)
    store.set_shift(who["officer2"], True)
    store.set_shift(who["supervisor"], True)  # supervises, is not given work
    store.set_shift(who["liaison"], True)
    assert store.dispatch(who) == (0, 4)
    holders = [held(store, r["task_id"]) for r in calls]
    assert sorted(holders) == ["officer", "officer", "officer2"]
    assert held(store, hold["task_id"]) == "liaison"
    assert held(store, elsewhere["task_id"]) is None
    assert ("system", "assign") in trail(store, calls[0]["task_id"])
    # ending a shift hands back what one holds, to whoever is still on shift
    store.set_shift(who["officer"], False)
    store.dispatch(who)
    assert [held(store, r["task_id"]) for r in calls] == ["officer2"] * 3
    assert ("officer", "release") in trail(store, calls[0]["task_id"])


def test_release_goes_to_a_colleague_and_hand_over_needs_one_on_shift(store, who) -> None:
    rec = task(D)
    store.add_task(rec)
    tid = rec["task_id"]
    store.claim(who["officer"], tid)
    with pytest.raises(Conflict):
        store.hand_over(who["officer"], tid, who["officer2"], on_shift=set())
    with pytest.raises(Invalid):  # another district's officer cannot take it
        store.hand_over(who["officer"], tid, who["other-desk"], on_shift={"other-desk"})
    with pytest.raises(Conflict):  # only its holder hands it over
        store.hand_over(who["officer2"], tid, who["officer2"], on_shift={"officer2"})
    store.hand_over(who["officer"], tid, who["officer2"], on_shift={"officer2"})
    assert held(store, tid) == "officer2"
    store.set_shift(who["officer"], True)
    store.set_shift(who["officer2"], True)
    store.release(who["officer2"], tid)
    store.dispatch(who)
    assert held(store, tid) == "officer"  # not back to who gave it up
    assert [w for _, w in trail(store, tid)] == ["claim", "hand_over", "release", "assign"]


def test_a_supervisor_reassigns_and_takes_back(store, who) -> None:
    rec = task(D)
    store.add_task(rec)
    tid = rec["task_id"]
    store.claim(who["officer"], tid)
    with pytest.raises(Conflict):
        store.release(who["officer2"], tid)
    store.hand_over(who["supervisor"], tid, who["officer2"], on_shift={"officer2"})
    assert held(store, tid) == "officer2"
    store.release(who["supervisor"], tid)
    assert held(store, tid) is None
    assert trail(store, tid)[-2:] == [("supervisor", "reassign"), ("supervisor", "release")]


def test_a_claim_not_worked_in_time_lapses_and_goes_to_someone_else(store, who) -> None:
    rec = task(D)
    store.add_task(rec)
    tid = rec["task_id"]
    store.set_shift(who["officer"], True)
    store.set_shift(who["officer2"], True)
    store.dispatch(who)
    first = held(store, tid)
    assert store.dispatch(who) == (0, 0)  # still within the action's limit
    with store.session() as s:  # the call's 5 minutes pass with nothing done
        s.execute(update(Task).where(Task.task_id == tid).values(claim_until_ms=now_ms() - 1))
    assert store.dispatch(who) == (1, 1)
    assert held(store, tid) not in (None, first)
    assert (first, "claim_expired") in trail(store, tid)


def test_call_attempts_before_escalation(store, who) -> None:
    clock = DeskClock("wall")
    store.clock = clock
    due = now_ms() + 5 * 60_000
    rec = task(D, due_time=_fmt(due))
    store.add_task(rec)
    tid = rec["task_id"]
    with pytest.raises(Conflict):
        store.attempt(who["officer"], tid, "no_answer", 2, None)  # not claimed
    store.claim(who["officer"], tid)
    with pytest.raises(Invalid) as e:
        store.attempt(who["officer"], tid, "no_answer", 10, None)  # after the escalation
    assert "before the task escalates" in str(e.value)
    with pytest.raises(Invalid):
        store.attempt(who["officer"], tid, "on_holiday", 1, None)
    a = store.attempt(who["officer"], tid, "busy", 2, "line busy twice")
    assert a.retry_ms - a.at_ms == 120_000
    t, o = store.get(who["officer"], tid)
    assert t.status == "claimed" and t.retry_ms == a.retry_ms and o is None
    assert t.claim_until_ms > now_ms() + 120_000  # worked: the claim lasts past the retry
    out = store.record_outcome(who["officer"], tid, "dissuaded", None, None)
    assert out.result == "dissuaded"
    assert [x.result for x in store.attempts(tid)] == ["busy"]
    assert ("officer", "attempt") in trail(store, tid)


def test_a_visit_carries_the_registry_record_newest_first(store, who) -> None:
    reg = {"event_id": "r1", "event_time": "2026-03-01T08:00:00+08:00", "op": "upsert",
           "person_id": "P9", "birth_year": 1948, "district": D,
           "msisdns": ["+8613900000001", "+8613900000002"], "accounts": []}
    assert store.upsert_person(reg)
    assert not store.upsert_person({**reg, "event_time": "2026-02-01T08:00:00+08:00",
                                    "birth_year": 1900})  # older: ignored
    p = store.person("P9")
    assert (p.birth_year, p.district, p.msisdns) == (1948, D, reg["msisdns"])
    store.upsert_person({**reg, "event_time": "2026-03-02T08:00:00+08:00", "op": "delete"})
    assert store.person("P9") is None


def test_history_filters_search_and_sorting(store, who) -> None:
    a = task(D, priority=2, created_time="2026-03-01T09:00:00+08:00",
             due_time="2026-03-01T09:05:00+08:00")
    b = task(D, "visit", priority=1, created_time="2026-03-01T09:10:00+08:00",
             due_time="2026-03-01T10:10:00+08:00")
    c = task(D, priority=2, created_time="2026-03-01T09:20:00+08:00",
             due_time="2026-03-01T09:25:00+08:00")
    for r in (a, b, c):
        store.add_task(r)
    store.claim(who["officer"], a["task_id"])
    store.record_outcome(who["officer"], a["task_id"], "dissuaded", None, None)
    store.claim(who["officer2"], c["task_id"])

    def ids(**f) -> list[str]:
        return [t.task_id for t, _ in store.queue(who["officer"], Filters(**f))]

    assert ids() == [b["task_id"], c["task_id"]]  # open, most urgent first
    assert ids(view="done") == [a["task_id"]]
    assert ids(view="all", sort="newest") == [c["task_id"], b["task_id"], a["task_id"]]
    assert ids(view="all", sort="oldest")[0] == a["task_id"]
    assert ids(view="mine") == []
    assert [t.task_id for t, _ in store.queue(who["officer2"], Filters(view="mine"))] == \
        [c["task_id"]]
    assert ids(view="all", action="visit") == [b["task_id"]]
    assert ids(view="all", status="claimed") == [c["task_id"]]
    assert ids(view="all", search=a["episode_id"]) == [a["task_id"]]
    assert ids(view="all", search=b["task_id"][:-1]) != []  # the start of an id
    assert ids(view="all", search="%") == []  # a wildcard is a character, not a pattern


def test_coverage_names_every_task_nobody_can_see(store, who) -> None:
    recs = [task(D), task("371625"), task(D, "hold", bank=B), task(D, "hold", bank="CMB")]
    for r in recs:
        store.add_task(r)
    found = gaps(store.open_tasks(), who, store.on_shift())
    assert {(g.role, g.scope, g.why, g.tasks) for g in found} == {
        ("desk", "371625", "no_user", 1), ("bank", "CMB", "no_user", 1),
        ("desk", D, "no_one_on_shift", 1), ("bank", B, "no_one_on_shift", 1)}
    store.set_shift(who["supervisor"], True)
    store.set_shift(who["liaison"], True)
    counts = uncovered(gaps(store.open_tasks(), who, store.on_shift()))
    assert counts == {("desk", "no_user"): 1, ("desk", "no_one_on_shift"): 0,
                      ("bank", "no_user"): 1, ("bank", "no_one_on_shift"): 0}


def test_the_stream_clock_follows_the_tasks_not_the_wall(store, who) -> None:
    wall = [1_800_000_000_000]
    store.clock = DeskClock("stream", wall=lambda: wall[0])
    rec = task(D, created_time="2026-03-01T09:00:00+08:00", due_time="2026-03-01T09:05:00+08:00")
    store.add_task(rec)  # months after its created time, on this wall clock
    wall[0] += 90_000  # a minute and a half later
    store.claim(who["officer"], rec["task_id"])
    out = store.record_outcome(who["officer"], rec["task_id"], "dissuaded", None, None)
    assert out.event_time == "2026-03-01T09:01:30+08:00"
    # a new store on the same database picks the clock up from the stored tasks
    again = TaskStore(store.engine.url.render_as_string(hide_password=False),
                      DeskClock("stream", wall=lambda: wall[0]))
    assert fmt(again.clock.now_ms(), 480) == "2026-03-01T09:01:30+08:00"
    again.close()
    assert DeskClock("wall", wall=lambda: wall[0]).now_ms() == wall[0]


def test_an_outcome_is_never_earlier_than_its_task(store, who) -> None:
    store.clock = DeskClock("stream", wall=lambda: 1_800_000_000_000)
    store.clock.saw(created_ms=1_700_000_000_000, received_ms=1_800_000_000_000)
    rec = task(D, created_time="2026-03-01T09:00:00+08:00", due_time="2026-03-01T09:05:00+08:00")
    store.add_task(rec)
    store.claim(who["officer"], rec["task_id"])
    out = store.record_outcome(who["officer"], rec["task_id"], "unreachable", None, None)
    assert out.event_time >= rec["created_time"]


def test_nothing_outside_the_scope_by_any_path(store, who) -> None:
    theirs = task("999999")
    store.add_task(theirs)
    tid = theirs["task_id"]
    for act in (lambda: store.claim(who["officer"], tid), lambda: store.release(who["supervisor"], tid),
                lambda: store.attempt(who["officer"], tid, "busy", 1, None),
                lambda: store.hand_over(who["supervisor"], tid, who["officer"], {"officer"})):
        with pytest.raises(NotFound):
            act()


def _fmt(ms: int) -> str:
    return fmt(ms, 480)
