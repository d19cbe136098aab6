"""The desk service against the real broker: warning-tasks in (idempotent, bad records counted),
outcomes out on task-outcomes as contract records."""

from __future__ import annotations

import orjson
import pytest
from desk_fixtures import basic, make_settings, outcomes_for, produce, task, wait_for
from fastapi.testclient import TestClient

from services.desk.app import create_app
from streams import contract, feed
from streams.contract import check

pytestmark = pytest.mark.integration


def test_tasks_in_outcomes_out(broker, unique: str, tmp_path) -> None:
    district, bank = f"D{unique}", f"B{unique}"
    settings = make_settings(str(tmp_path / "desk.sqlite3"), broker.bootstrap, district, bank,
                             consume=True, group_id=f"zt-desk-{unique}")
    call, hold = task(district), task(district, "hold", bank=bank)
    # The broker is shared: the intake first reads what earlier tests left on warning-tasks,
    # then what this test sends, so its counters are compared from that point on.
    earlier = sum(1 for _ in feed.read_messages(broker.bootstrap, "warning-tasks", timeout_s=10,
                                                idle_s=0.5))
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        intake = app.state.intake

        def counted() -> tuple[int, int, int]:
            return intake.stored, intake.duplicates, intake.rejected

        wait_for(lambda: sum(counted()) >= earlier, what="intake of earlier tasks")
        before = counted()
        produce(broker.bootstrap, [call, call, hold, b"{oops", {**task(district), "priority": 0}])
        wait_for(lambda: sum(counted()) >= sum(before) + 5, what="intake")
        assert tuple(n - b for n, b in zip(counted(), before, strict=True)) == (2, 1, 2)
        assert [t["task_id"] for t in c.get("/api/desk/tasks", auth=basic("officer")).json()] \
            == [call["task_id"]]

        c.post(f"/api/desk/tasks/{call['task_id']}/claim", auth=basic("officer"))
        r = c.post(f"/api/desk/tasks/{call['task_id']}/outcome", auth=basic("officer"),
                   json={"result": "dissuaded"})
        assert r.status_code == 200, r.text
        r = c.post(f"/api/bank/requests/{hold['task_id']}/outcome", auth=basic("liaison"),
                   json={"result": "held", "amount_fen": 4_800_000})
        assert r.status_code == 200, r.text

        for tid, actor, result in ((call["task_id"], f"desk:{district}", "dissuaded"),
                                   (hold["task_id"], f"bank:{bank}", "held")):
            (raw,) = outcomes_for(broker.bootstrap, tid)
            got = check("task-outcomes", raw)
            assert got.ok, got.reason
            assert got.value["actor"] == actor and got.value["result"] == result
        assert orjson.loads(outcomes_for(broker.bootstrap, hold["task_id"])[0])[
            "amount_fen"] == 4_800_000
        wait_for(lambda: c.get(f"/api/desk/tasks/{call['task_id']}", auth=basic("officer"))
                 .json()["outcome"]["published"], what="the outcome marked published")
        text = c.get("/metrics", auth=basic("ops")).text
        assert 'zt_desk_outcomes_published_total{result="held"} 1.0' in text
        assert 'zt_desk_tasks_rejected_total{reason="malformed"} 1.0' in text


def test_outcomes_wait_in_the_outbox_while_the_broker_is_away(broker, unique: str,
                                                               tmp_path) -> None:
    from services.desk.outcomes import OutcomePublisher

    district, bank = f"D{unique}", f"B{unique}"
    settings = make_settings(str(tmp_path / "desk.sqlite3"), "127.0.0.1:1", district, bank)
    app = create_app(settings)
    store, metrics = app.state.store, app.state.metrics
    rec = task(district, "stop_payment", bank=bank)
    store.add_task(rec)
    store.record_outcome(settings.users["liaison"], rec["task_id"], "stopped", 120_000, None)
    away = OutcomePublisher(free_port_bootstrap(), store, metrics)
    assert away.drain() == 0  # nothing lost, nothing marked
    assert len(store.unpublished()) == 1
    back = OutcomePublisher(broker.bootstrap, store, metrics)
    try:
        assert back.drain() == 1
    finally:
        back.stop()
    assert store.unpublished() == []
    (raw,) = outcomes_for(broker.bootstrap, rec["task_id"])
    assert check("task-outcomes", raw).value["amount_fen"] == 120_000
    store.close()


def free_port_bootstrap() -> str:
    from streams.broker import free_port

    return f"127.0.0.1:{free_port()}"  # nothing listens there


@pytest.mark.parametrize("clock", ["stream", "wall"])
def test_outcomes_in_the_streams_time_reach_the_workers_ladder(worker_factory, fresh_topics,
                                                               unique: str, tmp_path,
                                                               clock: str) -> None:
    """A city living in the past (a replay, ``zt demo --keep``): an officer dissuades within the
    call's five minutes. On the stream clock the outcome carries the city's time, so the
    worker's event-time stages decide it before the call's due time and nothing escalates. On
    the wall clock it is months ahead of the city: the call goes overdue in event time and
    escalates to a visit although the officer had done it."""
    import datetime as dt

    from services.desk.storage import now_ms

    bootstrap = fresh_topics.bootstrap
    worker = worker_factory()
    worker.wait_ready()
    feed.produce(bootstrap, [("registry", contract.example("registry")),
                             ("watchlist", contract.example("watchlist"))])
    worker.wait_metric("zt_reference_entries", 1, table="watchlist")
    settings = make_settings(str(tmp_path / "desk.sqlite3"), bootstrap, "371602", "ICBC",
                             consume=True, group_id=f"zt-desk-{unique}", clock=clock)
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        feed.produce(bootstrap, [("calls", contract.example("calls"))])
        [t] = wait_for(lambda: c.get("/api/desk/tasks", auth=basic("officer")).json(),
                       what="the call task at the desk")
        assert t["action"] == "call"
        c.post(f"/api/desk/tasks/{t['task_id']}/claim", auth=basic("officer"))
        out = c.post(f"/api/desk/tasks/{t['task_id']}/outcome", auth=basic("officer"),
                     json={"result": "dissuaded"}).json()
        created = dt.datetime.fromisoformat(t["created_time"])
        at = dt.datetime.fromisoformat(out["event_time"])
        if clock == "stream":
            assert created <= at < created + dt.timedelta(minutes=1)  # seconds after the task
        else:
            assert abs(at.timestamp() * 1000 - now_ms()) < 60_000
        wait_for(lambda: c.get(f"/api/desk/tasks/{t['task_id']}", auth=basic("officer"))
                 .json()["outcome"]["published"], what="the outcome published")
        worker.wait_metric("zt_records_consumed_total", 1, topic="task-outcomes")
        # The city goes on: a call half an hour later moves the workers' event time past the
        # task's due time (after the outcome reached the worker, as a desk's would within the
        # five minutes of a city living at the wall clock's pace).
        later = created + dt.timedelta(minutes=30)
        tick = {**contract.example("calls"), "event_id": "cdr-later", "answered": False,
                "duration_s": 0, "caller": "+8613700000001", "callee": "+8613700000002",
                "event_time": later.isoformat()}
        feed.produce(bootstrap, [("calls", tick)])
        if clock == "stream":
            worker.wait_metric("zt_outcomes_total", 1, result="dissuaded")
            deadline_s = later.timestamp() - 1
            worker.wait_metric("zt_watermark_timestamp_seconds", deadline_s, stage="decide")
            assert worker.metric("zt_escalations_total", reason="CALL_OVERDUE") == 0
            assert worker.metric("zt_tasks_done_late_total") == 0
            assert worker.metric("zt_records_late_total") == 0
        else:
            worker.wait_metric("zt_escalations_total", 1, reason="CALL_OVERDUE")
            assert worker.metric("zt_outcomes_total", result="dissuaded") == 0 or \
                worker.metric("zt_tasks_done_late_total") == 1
