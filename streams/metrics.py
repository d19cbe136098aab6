"""Prometheus metrics of the pipeline. Names follow Prometheus conventions: ``zt_`` prefix,
``_total`` counters, ``_seconds`` histograms, base units, and low-cardinality labels only
(topic, reason class, action: never a person, a number or an account).

The README's metrics catalog lists each one; ``tests/test_metrics.py`` keeps the two in step.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server

RECORDS_CONSUMED = Counter(
    "zt_records_consumed_total", "Input records consumed by the workers, by topic.", ["topic"])
RECORDS_REJECTED = Counter(
    "zt_records_rejected_total",
    "Input records rejected to dead-letter, by topic and reason class.", ["topic", "reason"])
RECORDS_DECIDED = Counter(
    "zt_records_decided_total",
    "Person events released from the event-time buffer and decided, by topic.", ["topic"])
RECORDS_DUPLICATE = Counter(
    "zt_records_duplicate_total", "Records seen again with the same event_id (no effect).")
RECORDS_LATE = Counter(
    "zt_records_late_total",
    "Records that arrived after a later record of their partition set was decided.")
RECORDS_UNROUTED = Counter(
    "zt_records_unrouted_total",
    "Valid activity records about no registered person, by topic.", ["topic"])
STAGE_EVENTS = Counter(
    "zt_stage_events_total",
    "Events released from an event-time buffer and processed, by stage (entity, decide).",
    ["stage"])
TASKS_EMITTED = Counter(
    "zt_tasks_emitted_total", "Warning tasks sent to warning-tasks, by action.", ["action"])
TASKS_INVALID = Counter(
    "zt_tasks_invalid_total", "Tasks the core built that broke the contract (a bug; not sent).")
EVENT_TO_TASK = Histogram(
    "zt_event_to_task_seconds",
    "Wall seconds from a record's arrival at a worker to the send of the task it triggered.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_SECONDS = Histogram(
    "zt_batch_seconds", "Wall seconds to process one consumed batch, by stage.", ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CONSUMER_LAG = Gauge(
    "zt_consumer_lag_records",
    "Records not yet consumed by this worker (high-water mark minus position), by topic.",
    ["topic"])
REFERENCE_ENTRIES = Gauge(
    "zt_reference_entries", "Entries in the global tables, by table.", ["table"])
LAST_EVENT_TIME = Gauge(
    "zt_last_event_timestamp_seconds",
    "Event time of the newest record consumed, by topic (Unix seconds).", ["topic"])
BUILD = Info("zt_build", "Versions in force in this process.")


# Every series exists from the start, so rate() and increase() count a first batch too.
for _topic in ("registry", "watchlist", "calls", "transactions", "case-reports", "task-outcomes"):
    RECORDS_CONSUMED.labels(_topic)
for _action in ("call", "visit", "hold", "stop_payment"):
    TASKS_EMITTED.labels(_action)
for _stage in ("ingest", "entity", "decide"):
    BATCH_SECONDS.labels(_stage)
for _stage in ("entity", "decide"):
    STAGE_EVENTS.labels(_stage)


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on ``host:port`` (loopback by default) from a daemon thread."""
    start_http_server(port, addr=host)
