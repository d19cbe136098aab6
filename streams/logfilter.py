"""Log lines rate-limited: one line per kind and interval, with the count of the others.

With its broker gone a worker's Kafka clients log every failed connection, fetch and heartbeat:
~7,000 ERROR lines in 20 s were measured, which bury the one line that matters. A kind is a
logger, a level and a message template (``record.msg`` before its arguments); the first line of
a kind in an interval is written, the others are counted, and the next one written says how
many were held back. Lines below WARNING are left alone.

>>> import io
>>> out = io.StringIO(); handler = logging.StreamHandler(out)
>>> limit = RateLimit(interval_s=60); handler.addFilter(limit)
>>> demo = logging.getLogger("demo"); demo.addHandler(handler); demo.propagate = False
>>> for node in range(500):
...     demo.error("Unable connect to node with id %s", node)
>>> demo.warning("another kind")
>>> limit.flush(everything=True)
>>> print(out.getvalue(), end="")
Unable connect to node with id 0
another kind
Unable connect to node with id 499 (and 498 more like it in the last 60 s)
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from streams import metrics

INTERVAL_S = 10.0


@dataclass
class _Kind:
    first: float  # monotonic time the interval began (its first line was written)
    held: int = 0
    last: logging.LogRecord | None = None  # the latest held line, written with the count


class RateLimit(logging.Filter):
    """A ``logging.Filter`` for handlers; ``flush()`` writes the counts of intervals that ended
    (call it now and then: a kind that stopped would otherwise never say how many it held)."""

    def __init__(self, interval_s: float = INTERVAL_S):
        super().__init__()
        self.interval_s = interval_s
        self._kinds: dict[tuple[str, int, object], _Kind] = {}
        self._lock = threading.Lock()  # Kafka clients log from Faust's consumer thread too
        self._handlers: list[logging.Handler] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or getattr(record, "zt_summary", False):
            return True
        key = (record.name, record.levelno, record.msg)
        now = time.monotonic()
        with self._lock:
            kind = self._kinds.get(key)
            if kind is None or now - kind.first >= self.interval_s:
                if kind is not None and kind.held:
                    _say_held(record, kind.held, self.interval_s)
                self._kinds[key] = _Kind(now)
                return True
            kind.held += 1
            kind.last = record
        metrics.LOG_LINES_SUPPRESSED.labels(record.levelname).inc()
        return False

    def flush(self, everything: bool = False) -> None:
        """Write, for each kind whose interval has ended (``everything``: each kind) with lines
        held, its latest line and the count."""
        now = time.monotonic()
        with self._lock:
            ended = [(k, v) for k, v in self._kinds.items()
                     if everything or now - v.first >= self.interval_s]
            for key, _ in ended:
                del self._kinds[key]
        for _, kind in ended:
            if kind.held and kind.last is not None:
                _say_held(kind.last, kind.held - 1, self.interval_s)
                kind.last.zt_summary = True  # type: ignore[attr-defined]
                logging.getLogger(kind.last.name).handle(kind.last)

    def install(self) -> None:
        """On every handler of the root logger (Faust configures them at start)."""
        for handler in logging.getLogger().handlers:
            if self not in handler.filters:
                handler.addFilter(self)


def _say_held(record: logging.LogRecord, held: int, interval_s: float) -> None:
    if held:
        record.msg = f"{record.msg} (and {held} more like it in the last {interval_s:g} s)"
