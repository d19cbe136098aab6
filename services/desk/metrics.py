"""The desk's Prometheus metrics, in a registry of its own per service instance.

Labels stay low-cardinality: action, result, reason class, role kind. Never a person, a task, a
district or an account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

ACTIONS = ("call", "visit", "hold", "stop_payment")
COVERAGE = (("desk", "no_user"), ("desk", "no_one_on_shift"), ("bank", "no_user"),
            ("bank", "no_one_on_shift"))


class _FromStorage(Collector):
    """Gauges read from storage at scrape time (so restarts cannot skew them)."""

    def __init__(self, counts: Callable[[], dict[str, int]],
                 coverage: Callable[[], dict[tuple[str, str], int]] | None):
        self.counts, self.coverage = counts, coverage

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("zt_desk_open_tasks", "Tasks without an outcome yet, per action.",
                              labels=["action"])
        counts = self.counts()
        for a in ACTIONS:
            g.add_metric([a], counts.get(a, 0))
        yield g
        u = GaugeMetricFamily(
            "zt_desk_uncovered_tasks",
            "Open tasks no user can see (no user of their district or bank: why=no_user) or no "
            "user of it is on shift (why=no_one_on_shift), per role kind (desk, bank).",
            labels=["role", "why"])
        gaps = self.coverage() if self.coverage is not None else {}
        for role, why in COVERAGE:
            u.add_metric([role, why], gaps.get((role, why), 0))
        yield u


class DeskMetrics:
    def __init__(self, open_counts: Callable[[], dict[str, int]],
                 coverage: Callable[[], dict[tuple[str, str], int]] | None = None):
        r = self.registry = CollectorRegistry()
        self.tasks_stored = Counter("zt_desk_tasks_stored_total",
                                    "Warning tasks stored, per action.", ["action"], registry=r)
        self.tasks_duplicate = Counter("zt_desk_tasks_duplicate_total",
                                       "Warning tasks received again (same task_id), ignored.",
                                       registry=r)
        self.tasks_rejected = Counter("zt_desk_tasks_rejected_total",
                                      "Warning-task records that broke the contract, not stored.",
                                      ["reason"], registry=r)
        self.outcomes_published = Counter("zt_desk_outcomes_published_total",
                                          "Outcomes published to task-outcomes, per result.",
                                          ["result"], registry=r)
        self.publish_failures = Counter("zt_desk_outcome_publish_failures_total",
                                        "Attempts to publish an outcome that failed (retried).",
                                        registry=r)
        self.logins = Counter("zt_desk_logins_total",
                              "Log-in attempts (form and HTTP Basic), per result: ok, failed, "
                              "locked, throttled.", ["result"], registry=r)
        for a in ACTIONS:
            self.tasks_stored.labels(a)
        r.register(_FromStorage(open_counts, coverage))
