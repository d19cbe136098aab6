"""What may be committed: the inputs whose events still wait in a stage of this worker
(``HeldOffsets``), the sends not acknowledged yet (``Unacked``), and how far back in event time
an input not committed yet can bring events again (``Uncommitted``, ``RecentlyApplied``).

A worker that dies re-reads every input from its last committed offsets; whatever it had
applied from there is a duplicate, known by the event ids kept in each key's state. So the ids
must be kept at least as far back in event time as those inputs reach.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Hashable
from typing import Any

from streams.core import StageEvent


class Unacked:
    """Sends the broker has not acknowledged yet. A lane awaits them before it commits; several
    lanes may wait at once, and each waits for every send made before it began."""

    def __init__(self) -> None:
        self._futures: list[Awaitable[Any]] = []

    def __bool__(self) -> bool:
        return bool(self._futures)

    def extend(self, futures: list[Awaitable[Any]]) -> None:
        self._futures.extend(futures)

    def snapshot(self) -> list[Awaitable[Any]]:
        """The sends not acknowledged yet, now."""
        self._futures = [f for f in self._futures if not f.done()]  # type: ignore[attr-defined]
        return list(self._futures)

    async def wait(self) -> None:
        if self._futures:
            await asyncio.gather(*self._futures)
            # (others may have been added meanwhile: they stay until acknowledged)
            self._futures = [f for f in self._futures if not f.done()]  # type: ignore[attr-defined]


class HeldOffsets:
    """The input messages whose events still wait in a stage's event-time buffer (of any stage
    of this worker they were handed on to in memory), per partition: a commit may go no further
    than the first of them. O(1) a message, where scanning the buffer at every commit cost 14%
    of a worker with a backlog held. A message is held again before it is released when its
    events go on in memory, so its first hold comes in offset order.

    >>> held = HeldOffsets()
    >>> for off in (5, 5, 6, 7):
    ...     held.hold(0, off)
    >>> held.release(0, 5); held.first(0)
    5
    >>> held.release(0, 5); held.release(0, 7); held.first(0)
    6
    >>> held.release(0, 6); held.first(0) is None
    True
    """

    def __init__(self) -> None:
        self._count: dict[tuple[Hashable, int], int] = {}
        self._order: dict[Hashable, deque[int]] = {}

    def hold(self, partition: Hashable, offset: int) -> None:
        key = (partition, offset)
        n = self._count.get(key)
        if n is None:
            self._order.setdefault(partition, deque()).append(offset)  # offsets come in order
            self._count[key] = 1
        else:
            self._count[key] = n + 1

    def release(self, partition: Hashable, offset: int) -> None:
        key = (partition, offset)
        n = self._count.get(key, 0) - 1
        if n > 0:
            self._count[key] = n
        else:
            self._count.pop(key, None)

    def first(self, partition: Hashable) -> int | None:
        order = self._order.get(partition)
        while order and (partition, order[0]) not in self._count:
            order.popleft()
        return order[0] if order else None

    def forget(self, partition: Hashable) -> None:
        for off in self._order.pop(partition, ()):
            self._count.pop((partition, off), None)


def release_inputs(events: list[StageEvent]) -> None:
    """These events are done with: their messages may be committed (``HeldOffsets``)."""
    for ev in events:
        origin = ev.origin
        if origin is not None:
            origin[0].release(origin[1], origin[2])


class Uncommitted:
    """The earliest event time of the messages read and not committed yet, per partition (a
    sliding minimum: O(1) amortised a message).

    >>> u = Uncommitted()
    >>> u.read("p", 10, 5_000); u.read("p", 11, 3_000); u.read("p", 12, 9_000); u.earliest()
    3000
    >>> u.committed("p", 12); u.earliest()
    9000
    >>> u.committed("p", 13); u.earliest() is None
    True
    """

    def __init__(self) -> None:
        self._min: dict[Hashable, deque[tuple[int, int]]] = {}  # (offset, time), times rising

    def read(self, partition: Hashable, offset: int, t_ms: int) -> None:
        q = self._min.get(partition)
        if q is None:
            q = self._min[partition] = deque()
        while q and q[-1][1] >= t_ms:
            q.pop()
        q.append((offset, t_ms))

    def committed(self, partition: Hashable, offset: int) -> None:
        """Everything before ``offset`` is committed: it is never read again."""
        q = self._min.get(partition)
        while q and q[0][0] < offset:
            q.popleft()

    def forget(self, partition: Hashable) -> None:
        self._min.pop(partition, None)

    def earliest(self) -> int | None:
        times = [q[0][1] for q in self._min.values() if q]
        return min(times) if times else None


class RecentlyApplied:
    """The earliest event time among the events a worker applied in the last ``window_s`` of
    wall time (a sliding minimum). Another worker that takes over an input partition reads it
    again from *its* last commit and may send events applied here seconds ago, however far
    back in event time a bulk feed has run since: their ids are kept at least that long.

    >>> r = RecentlyApplied(window_s=60)
    >>> r.applied(5_000, now=0.0); r.applied(9_000, now=30.0); r.earliest(now=40.0)
    5000
    >>> r.earliest(now=70.0)
    9000
    """

    def __init__(self, window_s: float = 60.0):
        self.window_s = window_s
        self._min: deque[tuple[float, int]] = deque()  # (wall, time), times rising

    def applied(self, t_ms: int, now: float) -> None:
        q = self._min
        while q and q[-1][1] >= t_ms:
            q.pop()
        q.append((now, t_ms))

    def earliest(self, now: float) -> int | None:
        q = self._min
        while q and q[0][0] < now - self.window_s:
            q.popleft()
        return q[0][1] if q else None
