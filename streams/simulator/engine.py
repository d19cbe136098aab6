"""The discrete-event loop: one heap of timed items, popped in (time, sequence) order.

Items are records to emit, actions to run (a fraud step, a bank acting on a task), or streams:
a day's normal traffic drawn at once with numpy, sorted, and emitted row by row. Ties in time are
broken by the sequence number each item got when it was scheduled, which depends only on the
seed, so the output is the same bytes every run.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Protocol

from .clock import Clock

EMIT, ACT, STREAM = 0, 1, 2

ID_PREFIX = {
    "registry": "reg",
    "watchlist": "wl",
    "calls": "cdr",
    "transactions": "txe",
    "case-reports": "case",
    "task-outcomes": "out",
}


class Batch(Protocol):
    """A time-sorted block of records: ``times[i]`` and ``make(i) -> (topic, value)``."""

    times: list[int]

    def make(self, i: int) -> tuple[str, dict[str, Any]]: ...


Sink = Callable[[int, str, dict[str, Any]], None]


class Engine:
    def __init__(self, clock: Clock, horizon: int):
        self.clock = clock
        self.horizon = horizon  # items at or after this time are dropped
        self.now = clock.t0
        self._heap: list[tuple] = []
        self._seq = 0
        self._ids = dict.fromkeys(ID_PREFIX, 0)
        self.sinks: list[Sink] = []
        self.filters: list[Callable[[int, str, dict[str, Any]], None]] = []
        self.emitted = 0

    @property
    def counts(self) -> dict[str, int]:
        """Records emitted so far, by topic."""
        return {t: n for t, n in self._ids.items() if n}

    def _next(self, n: int = 1) -> int:
        s = self._seq
        self._seq += n
        return s

    def emit(self, t: int, topic: str, value: dict[str, Any]) -> None:
        """Schedule a record; its event_id and event_time are given when it goes out."""
        if t < self.horizon:
            heapq.heappush(self._heap, (max(t, self.now), self._next(), EMIT, topic, value))

    def at(self, t: int, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(t, *args)`` at simulated time ``t`` (not before now)."""
        if t < self.horizon:
            heapq.heappush(self._heap, (max(t, self.now), self._next(), ACT, fn, args))

    def stream(self, batch: Batch) -> None:
        n = len(batch.times)
        if n and batch.times[0] < self.horizon:
            base = self._next(n)
            batch.seq_base = base  # type: ignore[attr-defined]
            heapq.heappush(self._heap, (max(batch.times[0], self.now), base, STREAM, batch, 0))

    def run(self, until: int | None = None) -> None:
        """Pop and process items until the heap is empty or time reaches ``until``."""
        heap = self._heap
        stop = self.horizon if until is None else min(until, self.horizon)
        pop, push = heapq.heappop, heapq.heappush
        out = self._out
        while heap and heap[0][0] < stop:
            t, _seq, kind, a, b = pop(heap)
            self.now = t
            if kind == STREAM:
                topic, value = a.make(b)
                j = b + 1
                if j < len(a.times) and a.times[j] < self.horizon:
                    # never before now: a block drawn late must not go back in time
                    tj = a.times[j]
                    push(heap, (tj if tj > t else t, a.seq_base + j, STREAM, a, j))
                out(t, topic, value)
            elif kind == EMIT:
                out(t, a, b)
            else:
                a(t, *b)

    def _out(self, t: int, topic: str, value: dict[str, Any]) -> None:
        for f in self.filters:
            f(t, topic, value)
        n = self._ids[topic]
        self._ids[topic] = n + 1
        record = {"event_id": f"{ID_PREFIX[topic]}-{n:09d}", "event_time": self.clock.fmt(t)}
        record.update(value)
        self.emitted += 1
        for sink in self.sinks:
            sink(t, topic, record)
