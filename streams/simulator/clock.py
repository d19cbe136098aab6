"""Simulated time: integer milliseconds since the Unix epoch, written as local RFC 3339 (+08:00).

Formatting is on the hot path (every record carries a time), so it avoids ``datetime`` per
record: the date part is cached per day and the clock part is plain arithmetic.

>>> c = Clock("2026-03-01", 480)
>>> c.fmt(c.t0 + 9 * HOUR + 15 * MINUTE + 30 * SECOND)
'2026-03-01T09:15:30+08:00'
>>> c.fmt(c.t0 + DAY + 250)
'2026-03-02T00:00:00.250+08:00'
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


class Clock:
    """Local calendar of the simulated city, starting at local midnight of ``start``."""

    def __init__(self, start: str, offset_min: int = 480):
        self.offset_min = offset_min
        self.tz = timezone(timedelta(minutes=offset_min))
        self.start = date.fromisoformat(start)
        self.t0 = int(datetime(self.start.year, self.start.month, self.start.day,
                               tzinfo=self.tz).timestamp()) * SECOND
        sign = "+" if offset_min >= 0 else "-"
        h, m = divmod(abs(offset_min), 60)
        self.suffix = f"{sign}{h:02d}:{m:02d}"
        self._days: dict[int, str] = {}

    def day_prefix(self, day: int) -> str:
        text = self._days.get(day)
        if text is None:
            text = (self.start + timedelta(days=day)).isoformat() + "T"
            self._days[day] = text
        return text

    def fmt(self, ms: int) -> str:
        day, rest = divmod(ms - self.t0, DAY)
        sec, milli = divmod(rest, SECOND)
        h, sec = divmod(sec, 3600)
        m, s = divmod(sec, 60)
        if milli:
            return f"{self.day_prefix(day)}{h:02d}:{m:02d}:{s:02d}.{milli:03d}{self.suffix}"
        return f"{self.day_prefix(day)}{h:02d}:{m:02d}:{s:02d}{self.suffix}"

    def day_of(self, ms: int) -> int:
        return (ms - self.t0) // DAY

    def date_of_day(self, day: int) -> date:
        return self.start + timedelta(days=day)
