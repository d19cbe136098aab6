"""Helpers of the observability tests: the rule and dashboard files, their PromQL, and a real
Prometheus (Debian's package) on a free port of 127.0.0.1.

A missing tool skips a test with the reason, except in CI (``CI`` set), where it fails: CI must
run these tests (``scripts/bootstrap --test`` installs the packages).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
ALERTS = DOCKER / "prometheus" / "alerts.yml"
ALERT_TESTS = DOCKER / "prometheus" / "alerts.test.yml"
PROMETHEUS_CONFIG = DOCKER / "prometheus" / "prometheus.yml"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "zerotransfer.json"
COMPOSE = DOCKER / "compose.yaml"
CATALOG = ROOT / "docs" / "observability.md"

# Grafana's own variables, replaced by concrete windows to run a panel's query on Prometheus.
GRAFANA_VARIABLES = ("$__rate_interval", "$__range", "$__interval")


def unavailable(what: str) -> None:
    """Skip with the reason, except in CI, where a missing real part is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must run this test; scripts/bootstrap --test installs it)")
    pytest.skip(what)


def tool(name: str, package: str) -> str:
    """Path of a command from a Debian package, or skip (fail in CI) when it is missing."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (Debian package {package}; scripts/bootstrap --test)")
    assert path is not None
    return path


# -- the expressions ------------------------------------------------------------------------
@dataclass(frozen=True)
class Expr:
    where: str  # "alert ZtWorkerDown" or "panel 'Consumer lag by topic' A"
    promql: str


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def alert_exprs() -> list[Expr]:
    return [Expr(f"alert {r['alert']}", r["expr"].strip()) for r in alert_rules()]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    """Every panel but rows, also those nested in collapsed rows."""
    out: list[dict[str, Any]] = []
    for p in dashboard()["panels"]:
        if p.get("type") == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def dashboard_exprs() -> list[Expr]:
    return [Expr(f"panel {p['title']!r} {t['refId']}", t["expr"])
            for p in panels() for t in p.get("targets", [])]


def concrete(promql: str, window: str) -> str:
    """The query Grafana would send, with its variables set to ``window``."""
    for var in GRAFANA_VARIABLES:
        promql = promql.replace(var, window)
    assert "$" not in promql, f"unknown Grafana variable left in {promql!r}"
    return promql


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_ZT_NAME = re.compile(r"(?<![\w:])zt_[a-z0-9_]+")
_UP = re.compile(r"(?<![\w:])up\s*\{")


def metric_names(promql: str) -> set[str]:
    """The metric names a query selects: ours (``zt_*``) and Prometheus's own ``up``.

    >>> sorted(metric_names('sum(rate(zt_a_total{job="zt_x"}[5m])) / on() up{job="w"}'))
    ['up', 'zt_a_total']
    """
    bare = _STRING.sub('""', promql)  # label values are not metric names
    names = set(_ZT_NAME.findall(bare))
    if _UP.search(bare):
        names.add("up")
    return names


_BINARY = re.compile(r"==|!=|>=|<=|>|<|\b(?:and|or|unless)\b")
_MODIFIER = re.compile(r"^\s*(?:bool\b|(?:on|ignoring)\s*\([^)]*\)|group_(?:left|right)\s*(?:\([^)]*\))?)")
_NUMBER = re.compile(r"^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?\s*$", re.IGNORECASE)


def operands(promql: str) -> list[str]:
    """The non-literal operands of the top-level comparisons and set operations of a query:
    what an alert compares, which must have data even while the alert is quiet.

    >>> operands('sum(x) / sum(y) > 0.01 and on () sum(up{job="a"}) > 0')
    ['sum(x) / sum(y)', 'sum(up{job="a"})']
    """
    masked = _STRING.sub(lambda m: "_" * len(m.group()), promql)
    cuts: list[tuple[int, int]] = []
    depth = 0
    i = 0
    while i < len(masked):
        c = masked[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            m = _BINARY.match(masked, i)
            if m:
                cuts.append((m.start(), m.end()))
                i = m.end()
                continue
        i += 1
    parts: list[str] = []
    start = 0
    for a, b in [*cuts, (len(promql), len(promql))]:
        part = promql[start:a]
        while (m := _MODIFIER.match(part)) is not None:
            part = part[m.end():]
        part = part.strip()
        if part and not _NUMBER.match(part):
            parts.append(part)
        start = b
    return parts


# -- the exposed metric names ---------------------------------------------------------------
_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": (
    "_bucket", "_count", "_sum", "_created"), "info": ("_info",), "summary": (
    "_count", "_sum", "_created"), "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "stateset": ("",), "unknown": ("",)}


def exposed_names(registry: Any) -> set[str]:
    """Every sample name a prometheus-client registry can expose, labelled children or not."""
    out: set[str] = set()
    for family in registry.collect():
        out.update(family.name + s for s in _SUFFIXES[family.type])
        out.update(s.name for s in family.samples)
    return out


# The labels `zt_build_info` carries: set at run time by the worker (streams/lanes.py), so no
# registry can tell them; the scrape test checks a running worker's against this.
BUILD_INFO_LABELS = frozenset({"ruleset_version", "model_version", "policy_version"})


def declared_metrics(registry: Any, *owners: Any) -> dict[str, tuple[str, frozenset[str]]]:
    """Every ``zt_*`` metric the ``owners`` (a module, an object) declare and ``registry``
    collects, as the catalog names it (``_total`` counters, ``_info`` infos) -> (type, labels)."""
    from prometheus_client.metrics import MetricWrapperBase

    out: dict[str, tuple[str, frozenset[str]]] = {}
    for owner in owners:
        for obj in vars(owner).values():
            if isinstance(obj, MetricWrapperBase) and obj._name.startswith("zt_"):
                labels = BUILD_INFO_LABELS if obj._type == "info" else frozenset(obj._labelnames)
                name = obj._name + {"counter": "_total", "info": "_info"}.get(obj._type, "")
                out[name] = (obj._type, labels)
    for family in registry.collect():  # custom collectors (the desk's open-tasks gauge)
        name = family.name + {"counter": "_total", "info": "_info"}.get(family.type, "")
        if family.name.startswith("zt_") and name not in out:
            labels = frozenset().union(*(s.labels for s in family.samples)) - {"le"}
            out[name] = (family.type, labels)
    return out


_ROW = re.compile(r"^\|\s*`(zt_[a-z0-9_]+)`\s*\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|")


def catalog_rows(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """The catalog's metrics (its tables before "Not yet measured") -> (type, labels)."""
    start = text.index("## Metrics catalog")
    end = text.index("### Not yet measured", start)
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for line in text[start:end].splitlines():
        m = _ROW.match(line)
        if m:
            assert m.group(1) not in out, f"{m.group(1)} is in the catalog twice"
            out[m.group(1)] = (m.group(2).split()[0], frozenset(re.findall(r"`(\w+)`", m.group(3))))
    return out


# -- a real Prometheus ----------------------------------------------------------------------
def free_port() -> int:
    from streams.broker import free_port as fp

    return fp()


@dataclass
class Prometheus:
    """Debian's Prometheus on 127.0.0.1 with a temporary storage; ``stop()`` removes it."""

    config: dict[str, Any]
    rule_files: list[Path] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None

    def start(self, timeout: float = 15.0) -> Prometheus:
        binary = tool("prometheus", "prometheus")
        self.workdir = Path(tempfile.mkdtemp(prefix="zt-prometheus-"))
        rules = []
        for f in self.rule_files:
            shutil.copy(f, self.workdir / f.name)
            rules.append(f.name)
        config = dict(self.config, rule_files=rules)
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],  # never 0.0.0.0 (its default)
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"prometheus not ready in {timeout} s: {self.log()[-2000:]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        assert self.workdir is not None
        return (self.workdir / "prometheus.log").read_text(errors="replace")

    def api(self, path: str, **params: str) -> Any:
        q = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{q}", timeout=5) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the result as a list of samples (a scalar becomes one sample)."""
        data = self.api("query", query=promql)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def wait_for(self, promql: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.query(promql)
            if got:
                return got
            time.sleep(0.25)
        raise AssertionError(f"{promql} returned no data in {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])

