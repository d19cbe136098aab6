"""A real Prometheus (Debian's package) scrapes a real worker and a real desk service fed with the
sample city through the real broker; every dashboard and alert expression must return data."""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams import feed
from streams.replay import parse_line
from tests.prometheus_fixtures import (
    ALERTS,
    BUILD_INFO_LABELS,
    DOCKER,
    ROOT,
    Prometheus,
    alert_exprs,
    concrete,
    dashboard_exprs,
    free_port,
    metric_names,
    operands,
    value,
)

pytestmark = pytest.mark.integration

SAMPLE = ROOT / "streams" / "sample" / "city.jsonl"
DISTRICTS = ("371602", "371603", "371621")  # the sample registry's police districts
PASSWORD = "scrape-test"
WINDOW = "2m"  # stands for Grafana's windows: longer than the whole test


def _sample() -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The sample's records as the feeds would send them: reference data, then the rest."""
    reference: list[tuple[str, Any]] = []
    activity: list[tuple[str, Any]] = []
    for n, line in enumerate(SAMPLE.read_bytes().splitlines(), start=1):
        topic, value_, reason = parse_line(line, n)
        if reason is not None:
            continue  # a truncated line: no feed can send half a record as a topic's message
        (reference if topic in ("registry", "watchlist") else activity).append((topic, value_))
    return reference, activity


def _call_at(activity: list[tuple[str, Any]], when: datetime) -> tuple[str, dict[str, Any]]:
    """A valid unanswered call between two unregistered lines at ``when``: it moves the
    workers' event time (their watermark) there, as the live feeds' next records would."""
    template = next(v for t, v in activity if t == "calls" and isinstance(v, dict))
    return "calls", {**template, "event_id": f"cdr-tick-{when.timestamp():.0f}",
                     "event_time": when.isoformat(timespec="milliseconds"),
                     "caller": "+8613700000001", "callee": "+8613700000002", "answered": False,
                     "duration_s": 0}


class Desk:
    """``zt desk`` (through the container entrypoint) on a free loopback port."""

    def __init__(self, bootstrap: str, tmp: Path, group: str):
        users = [f'[[user]]\nname = "desk-{d}"\nrole = "desk:{d}"\npassword = "{PASSWORD}"\n'
                 for d in DISTRICTS]
        users.append(f'[[user]]\nname = "prometheus"\nrole = "ops"\npassword = "{PASSWORD}"\n')
        (tmp / "users.toml").write_text("\n".join(users))
        (tmp / "zt.toml").write_text(f'[desk]\ngroup_id = "{group}"\n')
        self.port = free_port()
        self.log = tmp / "desk.log"
        self.proc = subprocess.Popen(
            [sys.executable, str(DOCKER / "entrypoint.py"), "desk", "--host", "127.0.0.1",
             "--port", str(self.port), "--bootstrap", bootstrap,
             "--db", str(tmp / "desk.sqlite3"), "--users", str(tmp / "users.toml"),
             "--config", str(tmp / "zt.toml")],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "ZT_DESK_SECRET": "scrape-test-secret"})

    def call(self, method: str, path: str, user: str, body: dict[str, Any] | None = None) -> Any:
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"desk exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"desk not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def desk(fresh_topics, tmp_path: Path, unique: str) -> Iterator[Desk]:
    d = Desk(fresh_topics.bootstrap, tmp_path, f"zt-desk-{unique}")
    yield d
    d.stop()


def _scrape_config(worker_port: int, desk_port: int, password_file: Path) -> dict[str, Any]:
    # The stack's jobs (docker/prometheus/prometheus.yml) with loopback targets and 1 s scrapes.
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "zt-worker",
             "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]},
            {"job_name": "zt-desk",
             "basic_auth": {"username": "prometheus", "password_file": str(password_file)},
             "static_configs": [{"targets": [f"127.0.0.1:{desk_port}"]}]},
        ],
    }


def _has_data(prom: Prometheus, promql: str) -> bool:
    return bool(prom.query(promql))


def test_every_dashboard_and_alert_expression_returns_data(worker_factory, fresh_topics, desk,
                                                           tmp_path: Path) -> None:
    started = time.monotonic()
    worker = worker_factory()
    password_file = tmp_path / "prometheus-password"
    password_file.write_text(PASSWORD)
    prom = Prometheus(_scrape_config(worker.metrics_port, desk.port, password_file), [ALERTS])
    try:
        prom.start()
        worker.wait_ready()
        desk.wait_ready()
        # Both targets scraped (the desk's /metrics needs the ops login: up is 0 without it).
        prom.wait_for('up{job="zt-worker"} == 1')
        prom.wait_for('up{job="zt-desk"} == 1')
        prom.wait_for("zt_event_to_task_seconds_count == 0")  # scraped before any task

        reference, activity = _sample()
        feed.produce(fresh_topics.bootstrap, reference)
        prom.wait_for('zt_reference_entries{table="watchlist"} > 0')
        feed.produce(fresh_topics.bootstrap, activity)  # with its bad lines, for dead-letter
        # The case report comes last in event time: a call a day after it lets the workers
        # decide it (it confirms the rule hits on its victim in the week before).
        [report] = [v for t, v in activity if t == "case-reports"]
        after = datetime.fromisoformat(report["event_time"]) + timedelta(days=1)
        feed.produce(fresh_topics.bootstrap, [_call_at(activity, after)])
        prom.wait_for("sum(zt_case_reports_total) == 1")
        prom.wait_for("sum(zt_rule_hits_confirmed_total) > 0")

        # The sample gives 3 calls (one per district), a hold and a stop-payment; the calls
        # pass their due time in event time unanswered and escalate to visits. Every task the
        # workers sent reaches the desk.
        prom.wait_for('sum(zt_desk_tasks_stored_total{action="call"}) == 3')
        prom.wait_for('sum(zt_desk_tasks_stored_total{action="visit"}) == 3')
        prom.wait_for("sum(zt_desk_tasks_stored_total) == sum(zt_tasks_emitted_total)")
        # Desk officers record outcomes; they go out on task-outcomes, back into the workers'
        # ladder: a call that dissuaded, a call that did not reach the person (escalated to a
        # visit at once), a visit done.
        for district, action, result in ((DISTRICTS[0], "call", "dissuaded"),
                                         (DISTRICTS[1], "call", "unreachable"),
                                         (DISTRICTS[2], "visit", "visited")):
            user = f"desk-{district}"
            [task] = [t for t in desk.call("GET", "/api/desk/tasks", user) if t["action"] == action]
            desk.call("POST", f"/api/desk/tasks/{task['task_id']}/claim", user)
            desk.call("POST", f"/api/desk/tasks/{task['task_id']}/outcome", user,
                      {"result": result})
        prom.wait_for("sum(zt_desk_outcomes_published_total) == 3")
        # The outcomes carry today's time, months after the sample: the workers decide them
        # once the input's event time passes them, as live calls would. One call now does it
        # (and judges the warned people's zero-transfer windows, long past).
        now = datetime.now(UTC) + timedelta(seconds=5)
        feed.produce(fresh_topics.bootstrap, [_call_at(activity, now)])
        prom.wait_for("sum(zt_outcomes_total) == 3")  # the workers' ladder has them
        prom.wait_for('sum(zt_escalations_total{reason="CALL_UNREACHABLE"}) == 1')
        prom.wait_for('sum(zt_zero_transfer_judged_total{window="72h"}) == 3')
        # Recorded now, long after the sample's due times: all three came late.
        prom.wait_for("sum(zt_tasks_done_late_total) == 3")
        prom.wait_for("sum(zt_desk_open_tasks) == sum(zt_desk_tasks_stored_total) - 3")
        # One broken task record, for the desk's reject counter. Last: a worker's global-table
        # lane reads warning-tasks too and assumes its records are valid.
        feed.produce(fresh_topics.bootstrap, [("warning-tasks", b'{"task_id": 1}')])
        prom.wait_for("sum(zt_desk_tasks_rejected_total) == 1")
        # rate() and increase() need two samples of a series: let the newest ones get three.
        for newest in ("zt_desk_outcomes_published_total", "zt_records_consumed_total",
                       "zt_escalations_total", "zt_tasks_done_late_total",
                       "zt_desk_tasks_rejected_total"):
            prom.wait_for(f"min(count_over_time({newest}[{WINDOW}])) >= 3")

        # The users' figures and the health figures Prometheus now holds are the right ones.
        [calls] = prom.query('sum(zt_tasks_emitted_total{action="call"})')
        assert value(calls) == 3  # `zt replay` of the sample gives 3 call tasks too
        by_district = {s["metric"]["district"]: value(s) for s in
                       prom.query('sum by (district) (zt_warnings_total{action="call"})')}
        assert by_district == dict.fromkeys(DISTRICTS, 1.0)
        [warned] = prom.query("sum(zt_warned_persons_total)")
        assert value(warned) == 3
        [first] = prom.query("sum(zt_time_to_first_warning_seconds_count)")
        assert value(first) == value(warned)  # one time to first warning per person warned
        outcomes = {s["metric"]["result"]: value(s) for s in prom.query("zt_outcomes_total > 0")}
        assert outcomes == {"dissuaded": 1, "unreachable": 1, "visited": 1}
        funds = {s["metric"]["kind"]: value(s) for s in prom.query("zt_funds_fen_total")}
        assert funds["hold_requested"] > 0 and funds["stop_payment_requested"] > 0
        # At the longest window every judged person was kept from the fraudsters or not.
        [kept_or_not] = prom.query('sum(zt_zero_transfer_kept_total{window="72h"}) + '
                                   "sum(zt_defrauded_after_warning_total)")
        assert value(kept_or_not) == 3
        [losses] = prom.query("sum(zt_case_losses_fen_total)")
        assert value(losses) > 0  # the sample's case report
        hits = prom.query("sum by (rule, mode) (zt_rule_hits_total)")
        assert hits and {s["metric"]["mode"] for s in hits} <= {"enforce", "shadow"}
        stages = {s["metric"]["stage"]: value(s) for s in prom.query("zt_stage_events_total")}
        assert stages["entity"] > 0 and stages["decide"] > 0
        lagged = {s["metric"]["topic"] for s in prom.query("zt_consumer_lag_records")}
        assert {"calls", "transactions", "zt-entity-events", "zt-person-events"} <= lagged
        [p99] = prom.query(concrete(
            "histogram_quantile(0.99, sum by (le) (rate(zt_event_to_task_seconds_bucket"
            "[$__rate_interval])))", WINDOW))
        assert math.isfinite(value(p99)) and 0 < value(p99) <= 10
        [build] = prom.query("zt_build_info")
        assert set(build["metric"]) - {"__name__", "job", "instance"} == BUILD_INFO_LABELS
        assert all(build["metric"][label] for label in BUILD_INFO_LABELS)
        rejected = {s["metric"]["topic"] for s in prom.query("zt_records_rejected_total")}
        assert {"calls", "transactions"} <= rejected
        [ruleset_rejected] = prom.query("sum(zt_ruleset_rejected_total)")
        assert value(ruleset_rejected) == 0

        # Every metric name any expression uses has series.
        names = set().union(*(metric_names(e.promql) for e in alert_exprs() + dashboard_exprs()))
        no_series = {n for n in names if not _has_data(prom, f'count({{__name__="{n}"}})')}
        assert no_series == set()

        # Every panel query returns data, with Grafana's windows set to cover the whole test.
        empty = [e.where for e in dashboard_exprs()
                 if not _has_data(prom, concrete(e.promql, WINDOW))]
        assert empty == []

        # Every alert expression returns data or, while its condition is false, each thing it
        # compares does (absent(x) is quiet exactly when x has data).
        silent: list[str] = []
        for e in alert_exprs():
            if _has_data(prom, e.promql):
                continue
            for op in operands(e.promql):
                inner = op[len("absent("):-1] if op.startswith("absent(") else op
                if not _has_data(prom, inner):
                    silent.append(f"{e.where}: {inner}")
        assert silent == []

        # Prometheus loaded the stack's rules and evaluates each without error; none fires.
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        assert {r["name"] for r in rules} == {e.where.removeprefix("alert ") for e in alert_exprs()}
        assert [r["name"] for r in rules if r["health"] != "ok"] == []
        firing = [a["labels"]["alertname"] for a in prom.api("alerts")["alerts"]
                  if a["state"] == "firing"]
        assert firing == []
    finally:
        prom.stop()
    assert time.monotonic() - started < 60


def test_container_entrypoint_serves_worker_metrics_on_the_given_host(broker, tmp_path: Path) -> None:
    # In a container /metrics must leave loopback; 127.0.0.2 proves the host is honoured
    # without listening beyond this machine.
    port = free_port()
    log = tmp_path / "worker.log"
    proc = subprocess.Popen(
        [sys.executable, str(DOCKER / "entrypoint.py"), "worker", "--bootstrap", broker.bootstrap,
         "--metrics-port", str(port), "--group", f"zt-entry-{port}"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "ZT_METRICS_HOST": "127.0.0.2"})
    try:
        deadline = time.monotonic() + 20
        body = ""
        while time.monotonic() < deadline and not body:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                body = urllib.request.urlopen(f"http://127.0.0.2:{port}/metrics",
                                              timeout=1).read().decode()
            except OSError:
                time.sleep(0.2)
        assert "zt_records_consumed_total" in body
        with pytest.raises(OSError):  # and not on 127.0.0.1 any more
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
