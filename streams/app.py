"""The Faust app of a ZeroTransfer worker.

Run it with ``zt worker``. The broker comes from the one bootstrap setting (``ZT_KAFKA`` when
this module is imported). Low-volume input topics have a Faust agent each, which validates,
dead-letters bad input with its reason, and routes the rest; the high-volume path (calls,
transactions and the two internal stage topics) runs in the lean lanes of ``streams.lanes``
under the same app.

Crash-only: an agent that raises, a Faust service that crashes, or a lane that fails exits the
process non-zero with one line (``streams.supervisor``); bad input is dead-lettered, bounded
(``streams.deadletter``), and never reaches that far.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time

import faust
import mode
import orjson

from streams import contract, metrics, supervisor, transient
from streams.core import CoreConfig, StageEvent
from streams.deadletter import dead_letter
from streams.envelopes import MAX_MESSAGE_BYTES
from streams.lanes import LaneConfig, Lanes
from streams.logfilter import RateLimit
from streams.settings import load
from streams.topics import PERSON_EVENTS

log = logging.getLogger(__name__)

settings = load()
transient.retry_unknown_produce_errors()  # Faust's producer too (Tansu's -1 after a restart)
GROUP = os.environ.get("ZT_GROUP", "zt")  # one name per pipeline sharing a cluster
app = faust.App(
    f"{GROUP}-worker",
    broker=[f"kafka://{h}" for h in settings.bootstrap.split(",")],
    store="memory://",
    value_serializer="raw",
    key_serializer="raw",
    # Short session timeouts: a first group join takes ~5 s on Tansu instead of ~32 s.
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.2,
    # Single-record batches keep Tansu's ListOffsets from skipping changelog records.
    producer_max_batch_size=1,
    web_enabled=False,
    datadir=tempfile.mkdtemp(prefix="zt-worker-"),
    topic_allow_declare=False,  # topics are created by `zt broker` / `zt topics`
    topic_disable_leader=True,
)

registry_topic = app.topic("registry")  # Real-name registry: person, lines, accounts.
watchlist_topic = app.topic("watchlist")  # Numbers, accounts, domains known in fraud.
case_reports_topic = app.topic("case-reports")  # Victims' reports, after the fact.
task_outcomes_topic = app.topic("task-outcomes")  # What desks and banks did with tasks.
dead_letter_topic = app.topic("dead-letter")  # Rejected input, with the reason.
person_events_topic = app.topic(PERSON_EVENTS)  # Stage 3 input, keyed by person.


async def _checked(topic: str, raw: bytes) -> dict | None:
    """Validate one record; dead-letter and count it when bad. Returns the value when good."""
    metrics.RECORDS_CONSUMED.labels(topic).inc()
    metrics.LAST_RECEIVED.labels(topic).set(time.time())
    checked = contract.check(topic, raw)
    if checked.ok:
        return checked.value
    reason = checked.reason or "invalid"
    metrics.RECORDS_REJECTED.labels(topic, contract.reason_class(reason)).inc()
    await dead_letter_topic.send(value=dead_letter(topic, raw, reason))
    return None


@app.agent(registry_topic)
@supervisor.crash_only
async def registry(stream: faust.StreamT[bytes]) -> None:
    """Validate the registry feed; every worker's global table reads the valid records."""
    async for raw in stream:
        await _checked("registry", raw)


@app.agent(watchlist_topic)
@supervisor.crash_only
async def watchlist(stream: faust.StreamT[bytes]) -> None:
    """Validate the watch-list feed; every worker's global table reads the valid records."""
    async for raw in stream:
        await _checked("watchlist", raw)


@app.agent(case_reports_topic)
@supervisor.crash_only
async def case_reports(stream: faust.StreamT[bytes]) -> None:
    """Route case reports to the victim's partition (labels and the outcome loop use them)."""
    async for raw in stream:
        value = await _checked("case-reports", raw)
        if value is not None:
            for ev in lanes().router.route("case-reports", value)[1]:
                await _to_person_stage(ev)


@app.agent(task_outcomes_topic)
@supervisor.crash_only
async def task_outcomes(stream: faust.StreamT[bytes]) -> None:
    """Route what desks and banks report to the person whose episode it closes or escalates."""
    async for raw in stream:
        value = await _checked("task-outcomes", raw)
        if value is None:
            continue
        routed = lanes().router.route("task-outcomes", value)[1]
        if not routed:
            metrics.RECORDS_UNROUTED.labels("task-outcomes").inc()
        for ev in routed:
            await _to_person_stage(ev)


async def _to_person_stage(ev: StageEvent) -> None:
    """One person event, on the partition the lanes send that person's events to."""
    await lanes().started.wait()  # (they know the partitions)
    body = orjson.dumps(ev.envelope())
    if len(body) > MAX_MESSAGE_BYTES:
        # Valid, but more than the broker takes in one request (a case report listing ~50,000
        # transactions): dead-lettered, the one case where a worker and replay differ by size.
        reason = (f"{ev.topic}: too large to pass to the person stage ({len(body):,} bytes "
                  f"enveloped, at most {MAX_MESSAGE_BYTES:,})")
        metrics.RECORDS_REJECTED.labels(ev.topic, contract.reason_class(reason)).inc()
        await dead_letter_topic.send(value=dead_letter(ev.topic, orjson.dumps(ev.value), reason))
        return
    await person_events_topic.send(
        key=ev.key.encode(), value=body, partition=lanes().partition_of(PERSON_EVENTS, ev.key))


_lanes: Lanes | None = None


def lanes() -> Lanes:
    global _lanes
    if _lanes is None:
        _lanes = Lanes(LaneConfig(bootstrap=settings.bootstrap, group=GROUP,
                                  rules=os.environ.get("ZT_RULES", "default"),
                                  models=os.environ.get("ZT_MODELS"),
                                  commit_behind_s=float(os.environ.get(
                                      "ZT_COMMIT_BEHIND_S", LaneConfig.commit_behind_s)),
                                  core=CoreConfig(lateness_ms=int(os.environ.get(
                                      "ZT_LATENESS_MS", CoreConfig.lateness_ms)))))
    return _lanes


_rate_limit = RateLimit()


@app.service
class HighVolumeLanes(mode.Service):
    """Calls, transactions and the stage topics, in batches, through the shared core."""

    async def on_start(self) -> None:
        _rate_limit.install()  # (Faust has set the log handlers up by now)
        lanes().refresh_decisions()
        await lanes().start()
        supervisor.watch_app(app)
        log.info("worker %d: lanes started against %s", os.getpid(), settings.bootstrap)

    async def on_stop(self) -> None:
        await lanes().stop()

    @mode.Service.timer(1.0)
    async def _watch(self) -> None:
        """A crashed Faust service stops the worker; held log lines are counted out."""
        supervisor.check_app(app)
        _rate_limit.flush()
