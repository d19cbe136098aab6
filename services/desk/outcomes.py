"""Publishing outcomes to ``task-outcomes``: an outbox in storage, drained by a thread.

An outcome is first committed to storage, then sent; it is marked published only when the broker
has acknowledged it. A broker that is away delays outcomes, it never loses them, and the event_id
is stable, so a resend after a crash is the same record to every consumer.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from services.desk.metrics import DeskMetrics
from services.desk.models import Outcome
from services.desk.storage import TaskStore
from streams.contract import validate

log = logging.getLogger(__name__)
TOPIC = "task-outcomes"


def outcome_record(out: Outcome) -> dict[str, Any]:
    """The contract record of an outcome (validated: we never send bad records)."""
    rec: dict[str, Any] = {"event_id": out.event_id, "event_time": out.event_time,
                           "task_id": out.task_id, "actor": out.actor, "result": out.result}
    if out.amount_fen is not None:
        rec["amount_fen"] = out.amount_fen
    if out.note:
        rec["note"] = out.note
    return validate(TOPIC, rec)


class OutcomePublisher(threading.Thread):
    def __init__(self, bootstrap: str, store: TaskStore, metrics: DeskMetrics,
                 interval_s: float = 1.0):
        super().__init__(name="desk-outcomes", daemon=True)
        self.bootstrap, self.store, self.metrics = bootstrap, store, metrics
        self.interval_s = interval_s
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self._producer: KafkaProducer | None = None

    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, client_id="zt-desk",
                                           acks="all", linger_ms=0,
                                           bootstrap_timeout_ms=5000)  # fail fast, retry later
        return self._producer

    def drain(self) -> int:
        """Send every unpublished outcome; return how many were sent."""
        sent = 0
        for out in self.store.unpublished():
            try:
                rec = outcome_record(out)
                self.producer().send(TOPIC, key=out.task_id.encode(),
                                     value=orjson.dumps(rec)).get(timeout=10)
            except (KafkaError, OSError) as e:
                self.metrics.publish_failures.inc()
                log.warning("could not publish outcome %s yet: %s", out.event_id, e)
                return sent
            self.store.mark_published(out.event_id)
            self.metrics.outcomes_published.labels(out.result).inc()
            sent += 1
        return sent

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.drain()
            except Exception:  # storage hiccup: log, keep the thread alive
                log.exception("outcome outbox")
            self.wake.wait(self.interval_s)
            self.wake.clear()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stopping.set()
        self.wake.set()
        if self.is_alive():
            self.join(timeout_s)
        if self._producer is not None:
            self._producer.close(timeout=5)
