"""Event time of the city: integer milliseconds from the city's start, RFC 3339 in China time.

Every part of the generator works in milliseconds since `start` (numpy int64), so times can be
drawn in bulk; only the writer turns them into strings.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# How much of a day's activity falls in each hour (0-23), per kind of caller. Relative weights.
PROFILES: dict[str, np.ndarray] = {
    # people calling people: low at night, a morning rise, the evening peak
    "personal": np.array(
        [
            0.3,
            0.15,
            0.08,
            0.05,
            0.05,
            0.2,
            0.7,
            1.6,
            2.4,
            2.8,
            2.9,
            2.8,
            2.6,
            2.3,
            2.5,
            2.8,
            2.9,
            3.1,
            3.4,
            3.6,
            3.3,
            2.6,
            1.6,
            0.7,
        ]
    ),
    # the elderly rise early and sleep early
    "elderly": np.array(
        [
            0.1,
            0.05,
            0.05,
            0.05,
            0.2,
            0.8,
            2.0,
            2.8,
            3.2,
            3.3,
            3.1,
            2.6,
            2.0,
            1.8,
            2.4,
            2.7,
            2.8,
            2.9,
            3.0,
            2.8,
            2.2,
            1.3,
            0.5,
            0.2,
        ]
    ),
    # offices, couriers, banks' outbound lines, call centres of all kinds
    "office": np.array(
        [
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.05,
            0.3,
            1.5,
            3.0,
            3.2,
            3.0,
            1.6,
            2.0,
            3.0,
            3.1,
            3.0,
            2.6,
            1.2,
            0.5,
            0.3,
            0.1,
            0.0,
            0.0,
        ]
    ),
    # shopping and paying: lunch, after work, evening online
    "shopping": np.array(
        [
            0.3,
            0.15,
            0.05,
            0.05,
            0.05,
            0.1,
            0.4,
            1.2,
            1.8,
            1.8,
            2.0,
            2.6,
            3.0,
            2.2,
            1.8,
            1.8,
            2.0,
            2.6,
            3.2,
            3.4,
            3.3,
            2.8,
            1.8,
            0.8,
        ]
    ),
    # evenings at home: romance chats, online part-time "tasks", games
    "evening": np.array(
        [
            1.0,
            0.6,
            0.3,
            0.1,
            0.05,
            0.05,
            0.2,
            0.5,
            0.8,
            1.0,
            1.2,
            1.3,
            1.4,
            1.3,
            1.3,
            1.4,
            1.5,
            1.7,
            2.2,
            2.8,
            3.2,
            3.4,
            3.0,
            2.0,
        ]
    ),
}
_CUM = {k: np.cumsum(v) / v.sum() for k, v in PROFILES.items()}


def time_of_day(rng: np.random.Generator, n: int, profile: str) -> np.ndarray:
    """`n` times of day (ms since midnight) drawn from an hourly profile."""
    hour = np.searchsorted(_CUM[profile], rng.random(n), side="right")
    return hour.astype(np.int64) * HOUR + rng.integers(0, HOUR, n)


def times(
    rng: np.random.Generator, n: int, days: int, profile: str, weekdays_only: bool = False, weekday0: int = 0
) -> np.ndarray:
    """`n` event times over `days` days following an hourly profile (optionally weekdays only;
    `weekday0` is the start day's weekday, Monday = 0)."""
    if weekdays_only:
        allowed = np.array([d for d in range(days) if (weekday0 + d) % 7 < 5] or [0])
        day = allowed[rng.integers(0, len(allowed), n)]
    else:
        day = rng.integers(0, days, n)
    return day.astype(np.int64) * DAY + time_of_day(rng, n, profile)


def lognormal_ms(rng: np.random.Generator, median_minutes: float, sigma: float, n: int | None = None):
    """Delays with a given median in minutes, as int ms (scalar when n is None)."""
    x = rng.lognormal(np.log(median_minutes), sigma, n) * MINUTE
    return int(x) if n is None else x.astype(np.int64)


class Clock:
    """Formats city times: `start` is an aware datetime; times are ms relative to it."""

    def __init__(self, start: datetime, days: int):
        self.start = start
        self.days = days
        self.end = days * DAY
        self.weekday0 = start.weekday()
        off = start.utcoffset() or timedelta(0)
        sign = "+" if off >= timedelta(0) else "-"
        mins = abs(int(off.total_seconds())) // 60
        self._offset = f"{sign}{mins // 60:02d}:{mins % 60:02d}"
        self._base_hms = start.hour * HOUR + start.minute * MINUTE + start.second * SECOND
        self._dates: dict[int, str] = {}

    def _date(self, d: int) -> str:
        s = self._dates.get(d)
        if s is None:
            s = self._dates[d] = (self.start.date() + timedelta(days=d)).isoformat()
        return s

    def fmt(self, ms: int) -> str:
        """RFC 3339 with milliseconds and the start's offset, e.g. 2026-04-06T09:15:30.250+08:00."""
        d, r = divmod(int(ms) + self._base_hms, DAY)
        h, r = divmod(r, HOUR)
        m, r = divmod(r, MINUTE)
        s, milli = divmod(r, SECOND)
        return f"{self._date(d)}T{h:02d}:{m:02d}:{s:02d}.{milli:03d}{self._offset}"

    def weekday(self, ms: int) -> int:
        return (self.weekday0 + int(ms) // DAY) % 7
