"""The desk's Prometheus metrics, in a registry of its own per service instance.

Labels stay low-cardinality: action, result, reason class. Never a person, a task or an account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

ACTIONS = ("call", "visit", "hold", "stop_payment")


class _OpenTasks(Collector):
    """Open tasks per action, read from storage at scrape time (so restarts cannot skew it)."""

    def __init__(self, counts: Callable[[], dict[str, int]]):
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("zt_desk_open_tasks", "Tasks without an outcome yet, per action.",
                              labels=["action"])
        counts = self.counts()
        for a in ACTIONS:
            g.add_metric([a], counts.get(a, 0))
        yield g


class DeskMetrics:
    def __init__(self, open_counts: Callable[[], dict[str, int]]):
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
        self.logins = Counter("zt_desk_logins_total", "Log-in attempts, per result.",
                              ["result"], registry=r)
        for a in ACTIONS:
            self.tasks_stored.labels(a)
        r.register(_OpenTasks(open_counts))
