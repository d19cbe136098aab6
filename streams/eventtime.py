"""Event time: RFC 3339 strings in, integer milliseconds inside, the source's offset kept out.

Decisions never read the wall clock; every time they use comes from a record.

>>> t = parse("2026-03-01T09:15:30.250+08:00")
>>> t.ms, t.offset_min
(1772327730250, 480)
>>> fmt(t.ms + 5 * 60_000, t.offset_min)
'2026-03-01T09:20:30.250+08:00'
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import NamedTuple

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class EventTime(NamedTuple):
    ms: int  # milliseconds since the Unix epoch
    offset_min: int  # the offset the source wrote, so outputs read as the source's local time


@lru_cache(maxsize=1 << 16)
def parse(text: str) -> EventTime:
    """Parse an RFC 3339 time with an offset; raise ValueError otherwise.

    Cached: a record's time is read by validation, routing and each stage it crosses."""
    dt = datetime.fromisoformat(text)
    tz = dt.tzinfo
    if tz is None:
        raise ValueError(f"{text!r} has no UTC offset")
    # Records of a feed mostly have times of their own (a miss), so the datetime arithmetic is
    # done once per local day and offset: the day's start since the epoch, in microseconds, plus
    # the time of day. Integers throughout, as (dt - epoch) // 1 ms: floats would round some
    # milliseconds differently.
    day = _day_start(dt.year, dt.month, dt.day, tz)
    us = day[0] + ((dt.hour * 60 + dt.minute) * 60 + dt.second) * 1_000_000 + dt.microsecond
    return _event_time(EventTime, (us // 1000, day[1]))  # EventTime(...) without its __new__


_event_time = tuple.__new__


@lru_cache(maxsize=1 << 12)
def _day_start(year: int, month: int, day: int, tz: tzinfo) -> tuple[int, int]:
    """(microseconds from the epoch to the local day's start, offset in minutes)."""
    start = datetime(year, month, day, tzinfo=tz)
    off = start.utcoffset()
    assert off is not None  # a fixed offset, as fromisoformat makes
    return (start - _EPOCH) // _US, int(off.total_seconds()) // 60


def fmt(ms: int, offset_min: int = 0) -> str:
    """Format epoch milliseconds as RFC 3339 in the given offset (milliseconds only if non-zero)."""
    tz = UTC if offset_min == 0 else timezone(timedelta(minutes=offset_min))
    dt = datetime.fromtimestamp(ms / 1000, tz)
    spec = "milliseconds" if ms % 1000 else "seconds"
    text = dt.isoformat(timespec=spec)
    return text.replace("+00:00", "Z") if offset_min == 0 else text


@lru_cache(maxsize=1 << 12)
def _year_of_day(day: int) -> int:
    return (_EPOCH + timedelta(days=day)).year


def local_year(ms: int, offset_min: int = 0) -> int:
    """The calendar year at ``ms`` in the given UTC offset (one datetime per local day).

    >>> local_year(to_ms("2026-12-31T23:30:00+08:00"), 480), local_year(to_ms("2026-12-31T23:30:00+08:00"))
    (2026, 2026)
    >>> local_year(to_ms("2027-01-01T01:00:00+08:00"), 480), local_year(to_ms("2027-01-01T01:00:00+08:00"))
    (2027, 2026)
    """
    return _year_of_day((ms + offset_min * 60_000) // 86_400_000)


def to_ms(text: str) -> int:
    return parse(text).ms
