"""Ordering records by event time within a bounded lateness.

Records of one person come from several topics and partitions and reach a worker in any order.
The buffer releases them sorted by ``(event time, topic rank, event id)`` once the watermark
(the latest event time seen minus ``lateness_ms``) has passed them, or, in a live worker, once
they have waited ``max_wait_s`` of wall time, so a quiet stream is not held back. A record that
arrives after a later one was released is *late*: it is released at once (never dropped) and
counted; it is the one case where a worker may decide differently from replay.

>>> buf = Reorderer(lateness_ms=1000)
>>> buf.push((2000, 0, "b"), "b"); buf.push((500, 0, "a"), "a"); buf.push((4000, 0, "c"), "c")
>>> buf.pop_ready()          # watermark 3000: a and b are safe to release
['a', 'b']
>>> buf.push((1000, 0, "late"), "late"); buf.pop_ready(), buf.late
(['late'], 1)
>>> buf.drain()
['c']
"""

from __future__ import annotations

import heapq
import itertools
from heapq import heappop, heappush
from typing import Any

SortKey = tuple[int, int, str]


class Reorderer:
    def __init__(self, lateness_ms: int = 2000, max_wait_s: float | None = None,
                 external: bool = False):
        if lateness_ms < 0:
            raise ValueError("lateness_ms must be >= 0")
        self.lateness_ms = lateness_ms
        self.max_wait_s = max_wait_s
        # external: the watermark is set by the stage upstream (``advance``), not derived from
        # the records seen here, so a stage fed by many partitions waits for the slowest.
        self.external = external
        self._external_wm = -(2**62)
        # Flat entries (time, rank, id, seq, arrived, item): compared field by field as
        # (key, seq) would be, without a nested tuple to build and compare per record.
        self._heap: list[tuple[int, int, str, int, float, Any]] = []
        self._seq = itertools.count()  # keeps heap entries comparable without comparing items
        self._max_seen = -(2**62)
        self._released = -(2**62)  # event time of the last record released in order
        self._late: list[Any] = []
        self.late = 0

    def __len__(self) -> int:
        return len(self._heap) + len(self._late)

    def advance(self, watermark_ms: int) -> None:
        """Upstream promises no record older than ``watermark_ms`` will follow (external mode)."""
        if watermark_ms > self._external_wm:
            self._external_wm = watermark_ms

    @property
    def watermark(self) -> int:
        if self.external:
            return self._external_wm
        return self._max_seen - self.lateness_ms

    @property
    def released(self) -> int:
        """Time of the last record released in order: downstream may take it as a watermark."""
        return self._released

    def observe(self, stream_ms: int) -> None:
        """The stream has reached ``stream_ms`` (a record upstream), without an item here."""
        if stream_ms > self._max_seen:
            self._max_seen = stream_ms

    def items(self) -> list[Any]:
        """What is still held (any order)."""
        return [entry[5] for entry in self._heap] + list(self._late)

    def push(self, key: SortKey, item: Any, now: float = 0.0, stream_ms: int | None = None) -> None:
        """Hold ``item`` until it is safe to release. ``stream_ms`` is the record's own event
        time when its key is later (a call is keyed by its end): the watermark follows the
        stream's event time, not the keys, so a long call cannot push it ahead."""
        t, rank, ident = key
        if t < self._released:
            self.late += 1
            self._late.append(item)
            return
        seen = t if stream_ms is None else stream_ms
        if seen > self._max_seen:
            self._max_seen = seen
        heappush(self._heap, (t, rank, ident, next(self._seq), now, item))

    def pop_ready(self, now: float = 0.0) -> list[Any]:
        """Records safe to decide on now, in order (late ones first, as they came)."""
        heap, late = self._heap, self._late
        watermark, max_wait_s = self.watermark, self.max_wait_s
        if not late and (not heap or (heap[0][0] > watermark and max_wait_s is None)):
            return []  # the common case of a record-by-record stream: nothing due yet
        out, self._late = late, []
        oldest_ok = now - max_wait_s if max_wait_s is not None else None
        released = self._released
        while heap:
            entry = heap[0]
            t = entry[0]
            if t <= watermark or (oldest_ok is not None and entry[4] <= oldest_ok):
                heappop(heap)
                if t > released:
                    released = t
                out.append(entry[5])
            else:
                break
        self._released = released
        return out

    def remove(self, gone: Any) -> list[Any]:
        """Take out the items for which ``gone(item)`` is true (a worker's partitions moved
        away); with nothing left, the buffer starts again from no watermark at all."""
        out = [e[5] for e in self._heap if gone(e[5])] + [i for i in self._late if gone(i)]
        if out:
            self._heap = [e for e in self._heap if not gone(e[5])]
            heapq.heapify(self._heap)
            self._late = [i for i in self._late if not gone(i)]
        if not self._heap and not self._late:
            self._external_wm = self._max_seen = self._released = -(2**62)
        return out

    def drain(self) -> list[Any]:
        """Everything still held, in order (end of a replay file)."""
        out, self._late = self._late, []
        heap, released = self._heap, self._released
        while heap:
            entry = heappop(heap)
            if entry[0] > released:
                released = entry[0]
            out.append(entry[5])
        self._released = released
        return out
