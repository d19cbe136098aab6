"""Intake of ``warning-tasks`` and ``registry`` from the broker into storage, in a background
thread.

At least once: offsets are committed only after the batch is stored, and storing is idempotent by
task_id (a task) and by event time (a person: the newest record wins), so a redelivered record
changes nothing. A record that breaks the contract is counted and skipped; it never stops the
intake.

The registry is read here, by the same consumer, because a visit needs the person's numbers,
birth year and district, and the registry topic is the one place that has them: the desk keeps
its own copy (a compacted topic's latest record per person, no accounts), so no other service
has to be up for a visit page to show them, and a registry update reaches the page as it comes.
"""

from __future__ import annotations

import logging
import threading

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError

from services.desk.metrics import DeskMetrics
from services.desk.storage import TaskStore
from streams.contract import check, reason_class

log = logging.getLogger(__name__)
TOPIC = "warning-tasks"
REGISTRY = "registry"


class TaskIntake(threading.Thread):
    def __init__(self, bootstrap: str, store: TaskStore, metrics: DeskMetrics,
                 group_id: str = "zt-desk"):
        super().__init__(name="desk-intake", daemon=True)
        self.bootstrap, self.store, self.metrics, self.group_id = (bootstrap, store, metrics,
                                                                    group_id)
        self.stopping = threading.Event()
        self.ready = threading.Event()  # set once partitions are assigned
        self.stored = self.duplicates = self.rejected = 0

    def handle_persons(self, raws: list[bytes]) -> None:
        good = []
        for raw in raws:
            got = check(REGISTRY, raw)
            if got.ok and got.value is not None:
                good.append(got.value)
            # else: the workers dead-letter and count bad registry records; the desk skips them
        try:
            self.store.upsert_persons(good)
        except IntegrityError:  # a replica inserted one of them meanwhile: one by one then
            for value in good:
                self.store.upsert_person(value)

    def handle(self, raw: bytes) -> None:
        got = check(TOPIC, raw)
        if not got.ok:
            self.rejected += 1
            self.metrics.tasks_rejected.labels(reason_class(got.reason or "")).inc()
            log.warning("rejected a warning-tasks record: %s", got.reason)
            return
        assert got.value is not None
        try:
            added = self.store.add_task(got.value)
        except (OperationalError, InterfaceError):
            raise  # storage away: the run loop waits; offsets uncommitted, so nothing is lost
        except (SQLAlchemyError, OverflowError) as e:
            # Valid by the contract but beyond what storage holds (e.g. an amount past BIGINT).
            self.rejected += 1
            self.metrics.tasks_rejected.labels("unstorable").inc()
            log.warning("could not store warning task: %s", type(e).__name__)
            return
        if added:
            self.stored += 1
            self.metrics.tasks_stored.labels(got.value["action"]).inc()
        else:
            self.duplicates += 1
            self.metrics.tasks_duplicate.inc()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._consume()
            except KafkaError as e:  # broker away: wait and reconnect, never die
                log.warning("warning-tasks intake: %s; retrying", e)
                self.stopping.wait(2.0)
            except Exception:  # storage away, or a bug: log it, keep the intake alive
                log.exception("warning-tasks intake failed; retrying")
                self.stopping.wait(2.0)

    def _consume(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id="zt-desk",
            enable_auto_commit=False, auto_offset_reset="earliest",
            # Short timeouts: the first group join takes about half the session timeout (INFRA).
            session_timeout_ms=6000, heartbeat_interval_ms=1000,
            bootstrap_timeout_ms=5000,  # broker away: give up soon, the run loop retries
        )
        try:
            consumer.subscribe([TOPIC, REGISTRY])
            while not self.stopping.is_set():
                batch = consumer.poll(timeout_ms=300, max_records=500)
                if consumer.assignment():
                    self.ready.set()
                if not batch:
                    continue
                # Tasks first: a registry backlog must not keep a new task from the desks.
                for tp, records in batch.items():
                    if tp.topic == TOPIC:
                        for rec in records:
                            self.handle(rec.value)
                self.handle_persons([rec.value for tp, records in batch.items()
                                     if tp.topic == REGISTRY for rec in records])
                consumer.commit()
        finally:
            consumer.close(autocommit=False)

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout_s)
