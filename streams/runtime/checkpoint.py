"""What a checkpoint needs to know beside the state: how far back an input not committed yet
can bring events again.

A worker that dies re-reads every input from its last committed offsets; whatever it had
applied from there is a duplicate, known by the event ids kept in each key's state. So the ids
must be kept at least as far back in event time as those inputs reach: ``Uncommitted`` tracks,
per input partition, the earliest event time of the messages read since the last commit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable


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
