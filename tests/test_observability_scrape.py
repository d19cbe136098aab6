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
from pathlib import Path
from typing import Any

import pytest
from prometheus_fixtures import (
    ALERTS,
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

from streams import feed
from streams.replay import parse_line

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
        # One broken task for the desk's reject counter; the sample's bad lines for the worker's.
        feed.produce(fresh_topics.bootstrap, [*activity, ("warning-tasks", b'{"task_id": 1}')])

        prom.wait_for('sum(zt_desk_tasks_stored_total{action="call"}) == 3')
        # A desk officer records an outcome: it goes out on task-outcomes, back into the worker.
        done = 0
        for d in DISTRICTS:
            for t in desk.call("GET", "/api/desk/tasks", f"desk-{d}"):
                desk.call("POST", f"/api/desk/tasks/{t['task_id']}/claim", f"desk-{d}")
                desk.call("POST", f"/api/desk/tasks/{t['task_id']}/outcome", f"desk-{d}",
                          {"result": "dissuaded"})
                done += 1
                break
        assert done >= 1
        prom.wait_for('sum(zt_desk_outcomes_published_total{result="dissuaded"}) > 0')
        prom.wait_for('sum(zt_records_consumed_total{topic="task-outcomes"}) > 0')
        prom.wait_for(f"sum(zt_desk_open_tasks) == {3 - done}")
        # rate() and increase() need two samples of a series: let the newest ones get three.
        for newest in ("zt_desk_outcomes_published_total", "zt_records_consumed_total"):
            prom.wait_for(f"min(count_over_time({newest}[{WINDOW}])) >= 3")

        # The users' figures and the health figures Prometheus now holds are the right ones.
        [calls] = prom.query('sum(zt_tasks_emitted_total{action="call"})')
        assert value(calls) == 3  # `zt replay` of the sample gives 3 call tasks too
        [p99] = prom.query(concrete(
            "histogram_quantile(0.99, sum by (le) (rate(zt_event_to_task_seconds_bucket"
            "[$__rate_interval])))", WINDOW))
        assert math.isfinite(value(p99)) and 0 < value(p99) <= 10
        [build] = prom.query("zt_build_info")
        assert build["metric"]["ruleset_version"] and build["metric"]["model_version"]
        rejected = {s["metric"]["topic"] for s in prom.query("zt_records_rejected_total")}
        assert {"calls", "transactions"} <= rejected

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
    assert time.monotonic() - started < 90


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
