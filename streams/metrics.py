"""Prometheus metrics of the pipeline. Names follow Prometheus conventions: ``zt_`` prefix,
``_total`` counters, ``_seconds`` histograms, base units, and low-cardinality labels only
(topic, reason class, action: never a person, a number or an account).

The README's metrics catalog lists each one; ``tests/test_metrics.py`` keeps the two in step.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

# The lanes of a worker: the four lean loops and the Faust agents of the low-volume topics.
LANES = ("reference", "ingest", "entity", "decide", "agents")

RECORDS_CONSUMED = Counter(
    "zt_records_consumed_total", "Input records consumed by the workers, by topic.", ["topic"])
RECORDS_REJECTED = Counter(
    "zt_records_rejected_total",
    "Input records (and foreign messages on the stage topics) rejected to dead-letter, by topic "
    "and reason class.", ["topic", "reason"])
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
STAGE_PARTITIONS_IN_MEMORY = Gauge(
    "zt_stage_partitions_in_memory",
    "Partitions of a stage's topic held by this worker whose events from this worker come in "
    "memory, not through the broker (their handover read back), by stage (entity, decide).",
    ["stage"])
TASKS_EMITTED = Counter(
    "zt_tasks_emitted_total", "Warning tasks sent to warning-tasks, by action.", ["action"])
TASKS_INVALID = Counter(
    "zt_tasks_invalid_total", "Tasks the core built that broke the contract (a bug; not sent).")
EVENT_TO_TASK = Histogram(
    "zt_event_to_task_seconds",
    "Wall seconds from a record's arrival at a worker to the send of the task it triggered.",
    # Finer around the 0.5 s budget, so its p99 can be read from the buckets.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 2.5, 5.0, 10.0),
)
BATCH_SECONDS = Histogram(
    "zt_batch_seconds", "Wall seconds to process one consumed batch, by stage.", ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
STATE_RESTORE_SECONDS = Histogram(
    "zt_state_restore_seconds",
    "Wall seconds to read a stage's state back from its changelog when partitions are assigned.",
    ["stage"], buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
STATE_WRITTEN_BYTES = Counter(
    "zt_state_changelog_bytes_total",
    "Bytes of state records a worker wrote to a stage's changelog at its checkpoints.", ["stage"])
CHECKPOINT_SECONDS = Histogram(
    "zt_checkpoint_seconds",
    "Wall seconds of a worker's checkpoint (state and pending events captured, sent and "
    "acknowledged, offsets committed).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
CHECKPOINT_DURABLE = Gauge(
    "zt_checkpoint_durable_timestamp_seconds",
    "Wall time at which the latest completed checkpoint captured the stages: everything applied "
    "before it is on the broker and committed (Unix seconds).")
CHECKPOINT_STAGE_EVENTS = Gauge(
    "zt_checkpoint_stage_events",
    "Events a stage of this worker had processed when the latest completed checkpoint captured "
    "it (zt_stage_events_total minus it: what a crash now would process again), by stage.",
    ["stage"])
CONSUMER_LAG = Gauge(
    "zt_consumer_lag_records",
    "Records not yet consumed by this worker (high-water mark minus position), by topic.",
    ["topic"])
REFERENCE_ENTRIES = Gauge(
    "zt_reference_entries", "Entries in the global tables, by table.", ["table"])
WATERMARK = Gauge(
    "zt_watermark_timestamp_seconds",
    "Event time up to which a stage has released records in order, by stage (Unix seconds).",
    ["stage"])
LAST_EVENT_TIME = Gauge(
    "zt_last_event_timestamp_seconds",
    "Event time of the newest record consumed, by topic (Unix seconds).", ["topic"])
LAST_RECEIVED = Gauge(
    "zt_last_received_timestamp_seconds",
    "Wall time this worker last received a record of a topic (Unix seconds): time() minus it is "
    "the age of the newest input.", ["topic"])
BROKER_UP = Gauge(
    "zt_broker_up", "1 while the broker answers this worker's metadata requests, else 0.")
LANE_UP = Gauge(
    "zt_lane_up",
    "1 while a lane of this worker runs (reference, ingest, entity, decide, checkpoint, agents).",
    ["lane"])
LOG_RESETS = Counter(
    "zt_broker_log_resets_total",
    "Partitions whose log the broker lost under this worker (its high-water mark went back: a "
    "broker on memory storage restarted, a topic deleted and made again), by topic; read again "
    "from their start.", ["topic"])
LOG_LINES_SUPPRESSED = Counter(
    "zt_log_lines_suppressed_total",
    "Warning and error log lines held back by the rate limit (one line per kind and interval "
    "is written, with the count), by level.", ["level"])
BUILD = Info("zt_build", "Versions in force in this process (rule set, model, policy).")
RULESET_REJECTED = Counter(
    "zt_ruleset_rejected_total", "New rule files rejected by hot reload (the running set stays).")

# --- the users' figures (DOMAIN.md), counted by the dissuasion ladder ---------------------------
WARNINGS = Counter("zt_warnings_total", "Warning tasks raised, by action and police district.",
                   ["action", "district"])
OUTCOMES = Counter("zt_outcomes_total", "Outcomes reported by desks and banks, by result.",
                   ["result"])
FUNDS = Counter("zt_funds_fen_total",
                "Money in fen: requested to hold or stop, and actually held or stopped.", ["kind"])
SLA_BREACHES = Counter("zt_sla_breaches_total",
                       "Tasks with no outcome by their due time (event time), by action.", ["action"])
DONE_LATE = Counter("zt_tasks_done_late_total", "Outcomes that came after the due time, by action.",
                    ["action"])
ESCALATIONS = Counter("zt_escalations_total", "Escalations up the ladder, by reason code.",
                      ["reason"])
WARNED_PERSONS = Counter("zt_warned_persons_total", "People who received their first warning.")
EPISODES = Counter("zt_episodes_opened_total", "Episodes (one person's suspected fraud) opened.")
ZERO_JUDGED = Counter("zt_zero_transfer_judged_total",
                      "Warned people whose window (after the first warning) has been judged.",
                      ["window"])
ZERO_KEPT = Counter("zt_zero_transfer_kept_total",
                    "Of those, people who made no transfer to a confirmed fraud account.", ["window"])
DEFRAUDED_AFTER_WARNING = Counter(
    "zt_defrauded_after_warning_total", "Warned people who paid fraudsters anyway (预后被骗).")
CASE_REPORTS = Counter("zt_case_reports_total", "Victims' case reports received.")
CASE_LOSSES = Counter("zt_case_losses_fen_total", "Losses in the case reports, in fen.")
FIRST_WARNING = Histogram(
    "zt_time_to_first_warning_seconds",
    "Event-time seconds from the first answered call of an unknown line to a person's first "
    "warning.", buckets=(60, 300, 600, 1800, 3600, 2 * 3600, 6 * 3600, 24 * 3600, 72 * 3600))
RULE_HITS = Counter("zt_rule_hits_total", "Rule hits at scoring points, by rule and mode.",
                    ["rule", "mode"])
RULE_CONFIRMED = Counter("zt_rule_hits_confirmed_total",
                         "Rule hits on a person who later filed a case report, by rule and mode.",
                         ["rule", "mode"])

# LadderStats name -> (metric, label names it carries)
LADDER_METRICS = {
    "warnings": WARNINGS, "outcomes": OUTCOMES, "funds_fen": FUNDS, "sla_breaches": SLA_BREACHES,
    "done_late": DONE_LATE, "escalations": ESCALATIONS, "warned_persons": WARNED_PERSONS,
    "episodes_opened": EPISODES, "zero_transfer_judged": ZERO_JUDGED,
    "zero_transfer_kept": ZERO_KEPT, "defrauded_after_warning": DEFRAUDED_AFTER_WARNING,
    "case_reports": CASE_REPORTS, "case_losses_fen": CASE_LOSSES, "rule_hits": RULE_HITS,
    "rule_confirmed": RULE_CONFIRMED,
}


# Every series exists from the start, so rate() and increase() count a first batch too.
for _topic in ("registry", "watchlist", "calls", "transactions", "case-reports", "task-outcomes"):
    RECORDS_CONSUMED.labels(_topic)
for _action in ("call", "visit", "hold", "stop_payment"):
    TASKS_EMITTED.labels(_action)
for _stage in ("ingest", "entity", "decide"):
    BATCH_SECONDS.labels(_stage)
for _topic in ("calls", "transactions", "task-outcomes"):
    RECORDS_UNROUTED.labels(_topic)
for _lane in LANES:
    LANE_UP.labels(_lane)
for _level in ("WARNING", "ERROR", "CRITICAL"):
    LOG_LINES_SUPPRESSED.labels(_level)
for _topic in ("registry", "watchlist", "calls", "transactions", "case-reports", "task-outcomes",
               "warning-tasks", "zt-entity-events", "zt-person-events"):
    LOG_RESETS.labels(_topic)
for _stage in ("entity", "decide"):
    STAGE_EVENTS.labels(_stage)
    STAGE_PARTITIONS_IN_MEMORY.labels(_stage)
for _window in ("24h", "72h"):
    ZERO_JUDGED.labels(_window)
    ZERO_KEPT.labels(_window)
for _kind in ("hold_requested", "stop_payment_requested", "held", "stopped"):
    FUNDS.labels(_kind)
for _result in ("dissuaded", "unreachable", "refused", "not_fraud", "visited", "held", "stopped",
                "failed"):
    OUTCOMES.labels(_result)
for _action in ("call", "visit", "hold", "stop_payment"):
    SLA_BREACHES.labels(_action)


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics, and the worker's /healthz and /readyz, on ``host:port`` (loopback by
    default) from a daemon thread."""
    from streams.health import serve as serve_health

    serve_health(port, host)
