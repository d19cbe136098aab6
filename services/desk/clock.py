"""The desk's clock: what "now" is for due times, overdue counts, ages and outcomes.

``wall``: the machine's clock, for live operation, where tasks are created seconds ago.

``stream``: the clock of the stream the tasks come from, for a pipeline running on a replayed
or simulated past (``zt demo --keep``): the created time of the task furthest ahead of its
arrival, plus the wall time since it arrived. An outcome then carries a time in the stream's
own present, so the workers' event-time stages decide it with the records around it instead of
holding it for ever (a wall-clock outcome is months ahead of a city living in the past). In
both modes an outcome is never earlier than the task it answers.

>>> c = DeskClock("stream", wall=lambda: 10_000)
>>> c.now_ms()           # no task seen yet: the wall clock
10000
>>> c.saw(created_ms=2_000, received_ms=9_000)   # a task 7 s behind the wall clock
>>> c.now_ms(), c.outcome_ms(created_ms=5_000)
(3000, 5000)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MODES = ("wall", "stream")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class DeskClock:
    def __init__(self, mode: str = "wall", wall: Callable[[], int] = wall_ms):
        if mode not in MODES:
            raise ValueError(f"desk clock {mode!r}: wall or stream")
        self.mode, self.wall = mode, wall
        self._lead: int | None = None  # max(created - received) over the tasks seen
        self._lock = threading.Lock()

    def saw(self, created_ms: int, received_ms: int) -> None:
        """A task arrived; the clock never goes back (the task furthest ahead leads)."""
        with self._lock:
            lead = created_ms - received_ms
            if self._lead is None or lead > self._lead:
                self._lead = lead

    def now_ms(self) -> int:
        wall = self.wall()
        if self.mode == "wall" or self._lead is None:
            return wall
        return wall + self._lead

    def outcome_ms(self, created_ms: int) -> int:
        return max(self.now_ms(), created_ms)
