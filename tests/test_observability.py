"""The alert rules, the dashboard, the metrics catalog and the compose stack, checked statically:
promtool (Debian's ``prometheus``), docker-compose (Debian's ``docker-compose``), and the names
every expression uses against the metrics the worker and the desk really expose."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.prometheus_fixtures import (
    ALERT_TESTS,
    ALERTS,
    CATALOG,
    COMPOSE,
    DASHBOARD,
    DOCKER,
    PROMETHEUS_CONFIG,
    ROOT,
    alert_exprs,
    alert_rules,
    catalog_rows,
    concrete,
    dashboard,
    dashboard_exprs,
    declared_metrics,
    exposed_names,
    metric_names,
    operands,
    panels,
    tool,
)

# What issue 8 asks the alerts to cover, and the rule set's hot reload and the core's contract.
REQUIRED_ALERTS = {"ZtWorkerDown", "ZtConsumerLagGrowing", "ZtDeadLetterRateHigh",
                   "ZtEventToTaskLatencyHigh", "ZtNoInput", "ZtSlaBreaches",
                   "ZtZeroTransferRateDropping", "ZtRuleSetRejected", "ZtInvalidTasks"}
# Metrics no panel or alert needs (each is still in the catalog).
UNCHARTED = {"zt_records_decided_total", "zt_desk_logins_total", "zt_state_restore_seconds",
             "zt_state_changelog_bytes_total"}
SERVICES = {"kafka", "topics", "worker", "desk", "postgres", "prometheus", "grafana"}
COMPOSE_ENV = {"ZT_DB_PASSWORD": "db-pass", "ZT_DESK_SECRET": "desk-secret",
               "GRAFANA_ADMIN_PASSWORD": "grafana-pass"}


def worker_names() -> set[str]:
    import prometheus_client

    import streams.metrics  # noqa: F401  (registers the worker's metrics)

    return exposed_names(prometheus_client.REGISTRY)


def desk_names() -> set[str]:
    from services.desk.metrics import DeskMetrics

    return exposed_names(DeskMetrics(lambda: {}).registry)


def declared() -> dict[str, tuple[str, frozenset[str]]]:
    """Every zt_* metric of the worker and the desk -> (type, labels), as the catalog names it."""
    import prometheus_client

    import streams.metrics
    from services.desk.metrics import DeskMetrics

    desk = DeskMetrics(lambda: {})
    return {**declared_metrics(prometheus_client.REGISTRY, streams.metrics),
            **declared_metrics(desk.registry, desk)}


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


# -- alert rules ----------------------------------------------------------------------------
def test_alert_rules_pass_promtool_check() -> None:
    got = run([tool("promtool", "prometheus"), "check", "rules", ALERTS.name], ALERTS.parent)
    assert got.returncode == 0, got.stdout + got.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in got.stdout


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    got = run([tool("promtool", "prometheus"), "test", "rules", ALERT_TESTS.name], ALERTS.parent)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "SUCCESS" in got.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for t in case.get("alert_rule_test", []):
            (fires if t.get("exp_alerts") else quiet).add(t["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names - fires == set(), "alerts never shown to fire"
    assert names - quiet == set(), "alerts never shown to stay quiet"


def test_the_required_alerts_exist_and_say_what_and_how_bad() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for r in rules:
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
    latency = next(r for r in rules if r["alert"] == "ZtEventToTaskLatencyHigh")
    assert "histogram_quantile(0.99" in latency["expr"] and "> 0.5" in latency["expr"]
    by_name = {r["alert"]: r["expr"] for r in rules}
    assert "zt_sla_breaches_total" in by_name["ZtSlaBreaches"]
    zero = by_name["ZtZeroTransferRateDropping"]
    assert "zt_zero_transfer_kept_total" in zero and "zt_zero_transfer_judged_total" in zero
    assert "< 0.9" in zero and ">= 20" in zero  # a low rate, of enough people to mean something
    assert "zt_ruleset_rejected_total" in by_name["ZtRuleSetRejected"]


def test_the_stack_prometheus_config_is_valid_and_loads_the_rules() -> None:
    got = run([tool("promtool", "prometheus"), "check", "config", PROMETHEUS_CONFIG.name],
              PROMETHEUS_CONFIG.parent)
    assert got.returncode == 0, got.stdout + got.stderr
    conf = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert conf["rule_files"] == ["alerts.yml"]
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    # The job names the alerts and the dashboard select on.
    assert {"zt-worker", "zt-desk"} <= set(jobs)
    assert jobs["zt-worker"]["dns_sd_configs"][0]["names"] == ["worker"]
    assert jobs["zt-desk"]["static_configs"][0]["targets"] == ["desk:8070"]
    assert "password_file" in jobs["zt-desk"]["basic_auth"]  # never a password in the repo


# -- names: every expression selects metrics that exist --------------------------------------
def test_every_metric_in_the_dashboard_and_alerts_is_exposed() -> None:
    known = worker_names() | desk_names() | {"up"}
    exprs = alert_exprs() + dashboard_exprs()
    assert len(exprs) > 20
    missing = {(e.where, n) for e in exprs for n in metric_names(e.promql) if n not in known}
    assert missing == set()
    used = set().union(*(metric_names(e.promql) for e in exprs))
    # Every metric is charted or alerted on (histograms through their buckets), but a few.
    charted = {n.removesuffix("_bucket") for n in used}
    assert set(declared()) - UNCHARTED - charted == set()
    assert set(declared()) >= UNCHARTED  # no stale exemption
    assert "zt_no_such_metric_total" not in known  # the check can fail


def test_operands_are_what_an_alert_compares() -> None:
    ops = operands('(sum(rate(zt_a_total[5m])) or vector(0)) == 0 and on () sum(up{job="w"}) > 0')
    assert ops == ["(sum(rate(zt_a_total[5m])) or vector(0))", 'sum(up{job="w"})']
    assert operands('up{job="a>b"} == 0') == ['up{job="a>b"}']


# -- the dashboard --------------------------------------------------------------------------
def test_dashboard_is_provisioned_from_the_stack_prometheus() -> None:
    prov = DOCKER / "grafana" / "provisioning"
    sources = yaml.safe_load((prov / "datasources" / "prometheus.yaml").read_text())["datasources"]
    uid = sources[0]["uid"]
    assert sources[0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((prov / "dashboards" / "zerotransfer.yaml").read_text())["providers"][0]
    compose = yaml.safe_load(COMPOSE.read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts

    d = dashboard()
    assert d["uid"] == "zerotransfer"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in panels():
        assert p["datasource"]["uid"] == uid, p["title"]
        assert p["targets"], p["title"]
        assert p["description"], p["title"]
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == uid
            concrete(t["expr"], "5m")  # no variable the test Prometheus cannot resolve


def test_dashboard_shows_the_health_and_the_users_figures() -> None:
    titles = {p["title"] for p in panels()}
    exprs = " ".join(e.promql for e in dashboard_exprs())
    for needle in ("zt_tasks_emitted_total", "zt_records_rejected_total",
                   "zt_consumer_lag_records", "histogram_quantile(0.5,",
                   "histogram_quantile(0.99,", "zt_build_info", "zt_records_consumed_total",
                   # the users' figures: by action and district, money in CNY, the rate
                   "sum by (district, action) (increase(zt_warnings_total",
                   "sum by (kind) (increase(zt_funds_fen_total[$__range])) / 100",
                   "sum by (window) (increase(zt_zero_transfer_kept_total",
                   "sum by (window) (increase(zt_zero_transfer_judged_total",
                   "zt_defrauded_after_warning_total", "sum by (action) (increase(zt_sla_breaches",
                   "sum by (result) (increase(zt_outcomes_total", "sum by (reason) (increase(zt_e",
                   "histogram_quantile(0.9, sum by (le) (increase(zt_time_to_first_warning",
                   "zt_case_losses_fen_total[$__range])) / 100",
                   "sum by (rule, mode) (increase(zt_rule_hits_total",
                   "sum by (rule, mode) (increase(zt_rule_hits_confirmed_total",
                   "count by (ruleset_version, model_version, policy_version) (zt_build_info)",
                   # the three stages' health
                   "sum by (stage) (rate(zt_stage_events_total", "sum by (le, stage) (rate(zt_batch",
                   "sum by (topic) (zt_consumer_lag_records)", "zt_ruleset_rejected_total"):
        assert needle in exprs
    assert "Versions in force" in titles
    money = [p for p in panels() if "fen_total" in " ".join(t["expr"] for t in p["targets"])]
    assert len(money) == 2
    for p in money:  # fen on a panel are shown as CNY
        units = [p["fieldConfig"]["defaults"]["unit"], *(
            prop["value"] for o in p["fieldConfig"]["overrides"] for prop in o["properties"])]
        assert "suffix: CNY" in units, p["title"]


# -- the catalog ----------------------------------------------------------------------------
def test_the_catalog_describes_every_metric_panel_and_alert() -> None:
    text = CATALOG.read_text()
    metrics = declared()
    assert len(metrics) > 30
    # Each metric once, with its type and exactly its labels; nothing that does not exist.
    assert catalog_rows(text) == metrics
    assert {r["alert"] for r in alert_rules() if f"`{r['alert']}`" not in text} == set()
    # Each panel is described under its title, in bold.
    assert {p["title"] for p in panels() if f"**{p['title']}**" not in text} == set()


# -- the compose stack and the image --------------------------------------------------------
# An operator's docker/.env must not make these pass or fail: read the shipped template instead
# (its passwords are blank; the process environment fills them in, as an operator's .env would).
NO_ENV_FILE = ["--env-file", str(DOCKER / "env.example")]

def test_compose_file_validates_with_docker_compose() -> None:
    exe = tool("docker-compose", "docker-compose")
    got = run([exe, "-f", COMPOSE.name, *NO_ENV_FILE, "config", "-q"], DOCKER, COMPOSE_ENV)
    assert got.returncode == 0, got.stdout + got.stderr
    # Secrets come from the environment: without them the stack refuses to start.
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV}
    bare = subprocess.run([exe, "-f", COMPOSE.name, *NO_ENV_FILE, "config", "-q"], cwd=DOCKER,
                          capture_output=True, text=True, timeout=60, env=env)
    assert bare.returncode != 0
    assert "ZT_DB_PASSWORD" in bare.stdout + bare.stderr


def test_compose_scales_workers_from_the_environment() -> None:
    exe = tool("docker-compose", "docker-compose")
    got = run([exe, "-f", COMPOSE.name, *NO_ENV_FILE, "config"], DOCKER,
              {**COMPOSE_ENV, "ZT_WORKERS": "5", "ZT_KAFKA_HOST_PORT": "19094", "ZT_GROUP": "city"})
    assert got.returncode == 0, got.stderr
    resolved = yaml.safe_load(got.stdout)["services"]
    assert resolved["worker"]["deploy"]["replicas"] == 5
    assert resolved["worker"]["environment"]["ZT_GROUP"] == "city"
    assert "db-pass@postgres:5432" in resolved["desk"]["environment"]["ZT_DESK_DB"]
    kafka_env = resolved["kafka"]["environment"]
    assert "EXTERNAL://127.0.0.1:19094" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]


def _ports(service: dict[str, Any]) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


def test_compose_services_and_nothing_published_beyond_loopback() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) == SERVICES
    assert services["kafka"]["image"].startswith("apache/kafka:")
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert services["topics"]["command"][0] == "topics"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("worker", "desk"):
        assert services[name]["depends_on"]["topics"]["condition"] == \
            "service_completed_successfully"
        assert services[name]["environment"]["ZT_KAFKA"] == "kafka:9092"
    assert services["worker"]["deploy"]["replicas"] == "${ZT_WORKERS:-2}"
    assert services["worker"]["environment"]["ZT_GROUP"] == "${ZT_GROUP:-zt}"
    assert "ports" not in services["worker"]  # replicas: Prometheus reaches them in-network
    assert services["desk"]["command"][0] == "desk"
    assert services["desk"]["environment"]["ZT_DESK_DB"].startswith("postgresql+psycopg://")
    published = {n: _ports(s) for n, s in services.items() if s.get("ports")}
    assert set(published) == {"kafka", "desk", "prometheus", "grafana"}
    for name, ports in published.items():
        for p in ports:
            assert p.startswith("127.0.0.1:"), f"{name} publishes {p} beyond loopback"
    assert all(s.get("network_mode") != "host" for s in services.values())
    prom = services["prometheus"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prom["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom["volumes"]
    for mount in prom["volumes"] + services["grafana"]["volumes"]:
        src = mount.split(":", 1)[0]
        if src.startswith("./"):
            assert (DOCKER / src).exists(), src


def test_dockerfile_installs_the_project_with_its_extras() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r'pip install "\.\[[a-z,]*desk[a-z,]*\]"', text)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    for src in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / src).exists(), f"COPY {src}: no such path"
    extras = __import__("tomllib").loads((ROOT / "pyproject.toml").read_text())
    wanted = re.search(r'"\.\[([a-z,]+)\]"', text)
    assert wanted is not None
    assert set(wanted.group(1).split(",")) <= set(extras["project"]["optional-dependencies"])


def test_container_entrypoint_runs_zt_and_the_desk() -> None:
    entry = str(DOCKER / "entrypoint.py")
    desk = run([sys.executable, entry, "desk", "--help"], ROOT)
    assert desk.returncode == 0, desk.stderr
    assert "Serve police desks" in desk.stdout
    topics = run([sys.executable, entry, "topics", "--help"], ROOT)
    assert topics.returncode == 0, topics.stderr
    assert "Create the contract" in topics.stdout


def test_dashboard_json_is_stable_formatting() -> None:
    # Provisioned dashboards are edited as files: keep them parseable, indented and UTF-8.
    raw = DASHBOARD.read_text(encoding="utf-8")
    assert raw.endswith("\n")
    assert json.dumps(json.loads(raw), indent=2, ensure_ascii=False) + "\n" == raw


@pytest.mark.parametrize("expr", [e.promql for e in alert_exprs()])
def test_alert_expressions_have_operands(expr: str) -> None:
    assert operands(expr), expr  # the scrape test can check each one has data


def test_compose_restarts_a_worker_that_exits_and_checks_it_is_ready() -> None:
    """Crash-only workers need a supervisor: a worker whose lane failed exits (status 70) and
    compose starts it again; its health check asks /readyz on the metrics port."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    worker = services["worker"]
    assert worker["restart"] in ("unless-stopped", "always", "on-failure")
    test = " ".join(worker["healthcheck"]["test"])
    assert "127.0.0.1:9410/readyz" in test
    assert "--metrics-port" in worker["command"] and "9410" in worker["command"]
