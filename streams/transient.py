"""Transient broker errors: retried with backoff up to a deadline; past it, the lane fails.

A broker that restarts or is away for a minute must not stop a worker: its lanes wait, retry
and resume. Three places meet such errors:

* **sends**: aiokafka retries retriable produce errors itself, each batch back at the head of
  its partition's queue (so the order of a partition's messages holds), until the batch is
  ``request_timeout_ms`` old. The lanes' producer gets ``BROKER_DEADLINE_S`` for it, and
  ``retry_unknown_produce_errors`` adds Tansu's error -1 (UNKNOWN) to what is retried: right
  after a restart Tansu answers some produce requests with it (a race on a partition's first
  batch in its memory storage), and before, that error stopped all three lanes.
* **commits**: a commit that fails (the group rebalancing, its coordinator away) is skipped and
  tried again at the next one: what it would have committed is read again after a restart at
  worst. ``BrokerRetry`` spaces the attempts out and gives up after the deadline.
* **offset lookups** of the global tables: "not known now", asked again later.

An error past the deadline, or of any other kind, propagates: the lane fails and the worker
exits non-zero (``streams.supervisor``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka.errors import KafkaError, UnknownError

from streams import metrics

log = logging.getLogger(__name__)

# How long the lanes wait for a broker that is away before the worker gives up and exits
# (then its supervisor restarts it): covers a broker restart or a failover with room to spare.
BROKER_DEADLINE_S = 120.0


def retry_unknown_produce_errors() -> None:
    """Make aiokafka's producer retry a produce answered with error -1, as it retries its
    retriable errors (in order, until the batch expires). Idempotent."""
    from aiokafka.producer.sender import SendProduceReqHandler

    original = SendProduceReqHandler._can_retry
    if getattr(original, "zt_retries_unknown", False):
        return

    def _can_retry(self: Any, error: Any, batch: Any) -> bool:
        if isinstance(error, UnknownError):
            return not batch.expired()
        return original(self, error, batch)

    _can_retry.zt_retries_unknown = True  # type: ignore[attr-defined]
    SendProduceReqHandler._can_retry = _can_retry  # type: ignore[method-assign]


class BrokerRetry:
    """Attempts at one operation the broker may refuse for a while: exponential backoff from
    ``first_s`` to ``max_s``; ``BrokerUnavailable`` once it has failed for ``deadline_s``.

    >>> r = BrokerRetry("commit", deadline_s=60)
    >>> r.due(), r.failed(KafkaError("away")), r.due()
    (True, None, False)
    >>> r.succeeded(); r.due()
    True
    """

    def __init__(self, what: str, deadline_s: float = BROKER_DEADLINE_S, first_s: float = 0.1,
                 max_s: float = 5.0):
        self.what, self.deadline_s, self.first_s, self.max_s = what, deadline_s, first_s, max_s
        self.failing_since: float | None = None
        self.failures = 0
        self._next = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        if now - self.failing_since > self.deadline_s:
            raise BrokerUnavailable(
                f"{self.what} failing for {self.deadline_s:g} s, last: {exc!r}") from exc
        self.failures += 1
        delay = min(self.first_s * 2 ** (self.failures - 1), self.max_s)
        self._next = now + delay
        log.warning("%s failed, retrying in %.1f s: %r", self.what, delay, exc)

    def succeeded(self) -> None:
        if self.failing_since is not None:
            log.warning("%s works again after %.1f s", self.what, time.monotonic() - self.failing_since)
        self.failing_since, self.failures, self._next = None, 0, 0.0


class BrokerUnavailable(KafkaError):
    """The broker refused an operation for longer than the deadline."""


async def commit(consumer: Any, offsets: dict[Any, int], retry: BrokerRetry) -> bool:
    """Commit ``offsets``; False (and a later attempt) when the broker refuses now."""
    if not retry.due():
        return False
    try:
        await consumer.commit(offsets)
    except KafkaError as e:  # rebalancing, coordinator away, topic being made again ...
        retry.failed(e)
        return False
    retry.succeeded()
    return True


class LostLogs:
    """Partitions whose log the broker lost while a consumer read them.

    Kafka never moves a partition's high-water mark back, and never ends a log before a
    position a consumer has reached. Tansu on memory storage loses every topic when it restarts,
    and a position past the new end then gets empty fetches, not OFFSET_OUT_OF_RANGE: the
    consumer would skip everything sent until the log grows past it again. So a fetch's
    high-water mark below the highest one seen, or below the next offset to read, means the log
    was lost: the lane reads that partition again from its start, and the worker says so (a
    metric, an alert, a log line).

    >>> from aiokafka import TopicPartition
    >>> class Fetched:  # what a consumer's latest fetch responses said of each partition
    ...     def __init__(self, high): self.high = high
    ...     def highwater(self, tp): return self.high.get(tp)
    >>> tp = TopicPartition("registry", 0); watch = LostLogs("reference")
    >>> watch.lost(Fetched({tp: 2000}), [tp], {tp: 2000}), watch.lost(Fetched({tp: 2100}), [tp], {})
    ([], [])
    >>> watch.lost(Fetched({tp: 0}), [tp], {}) == [tp]  # the broker came back empty
    True
    >>> watch.lost(Fetched({tp: 5}), [tp], {tp: 0}), watch.lost(Fetched({}), [tp], {})
    ([], [])
    """

    def __init__(self, lane: str):
        self.lane = lane
        self.high: dict[Any, int] = {}

    def lost(self, consumer: Any, tps: Any, next_offsets: dict[Any, int]) -> list[Any]:
        """The partitions of ``tps`` whose log is shorter now than what was read or seen."""
        out = []
        for tp in tps:
            high = consumer.highwater(tp)
            if high is None:
                continue
            seen = max(self.high.get(tp, 0), next_offsets.get(tp, 0))
            self.high[tp] = high
            if high < seen:
                metrics.LOG_RESETS.labels(tp.topic).inc()
                log.error("%s/%d: the broker's log ends at offset %d, before offset %d this %s lane "
                          "had seen: it lost this partition's data (a broker on memory storage "
                          "restarted, or the topic was made again); reading it again from its "
                          "start. What was sent there before is gone: send the registry and watch "
                          "lists again if they were lost too", tp.topic, tp.partition, high, seen,
                          self.lane)
                out.append(tp)
        return out
