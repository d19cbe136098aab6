"""Streaming state: one small class per feature family, updated in event time.

Like River's statistics, each family has ``update(...)`` and ``get(now_ms)``; windows are in
event time (never the wall clock), old entries expire as time moves on, and every container is
capped, so the memory of one person, line or account is bounded. The feature names they produce
are those of ``models/features.py``.

>>> line = LineStats()
>>> for i, callee in enumerate(["+861", "+862", "+863", "+861"]):
...     line.update(i * 60_000, callee, answered=i != 2, duration_s=30)
>>> line.get(4 * 60_000)["line_fanout_24h"], line.get(4 * 60_000)["line_answer_rate_24h"]
(3.0, 0.75)
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from models.features import NONE_MIN

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


class _Window:
    """Items with an event time, kept for ``span_ms``, at most ``cap`` of them."""

    __slots__ = ("_items", "span_ms")

    def __init__(self, span_ms: int, cap: int):
        self.span_ms = span_ms
        self._items: deque[tuple[int, object]] = deque(maxlen=cap)

    def add(self, t_ms: int, item: object) -> None:
        self._items.append((t_ms, item))

    def expire(self, now_ms: int) -> None:
        horizon = now_ms - self.span_ms
        items = self._items
        while items and items[0][0] < horizon:
            items.popleft()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[int, object]]:
        """What is kept now, oldest first (``expire`` first for a given time)."""
        return iter(self._items)

    def dump(self) -> list[Any]:
        return list(self._items)

    def load(self, pairs: list[Any]) -> _Window:
        self._items.extend(map(tuple, pairs))  # type: ignore[arg-type]
        return self


class LineStats:
    """A calling line's behaviour in the last 24 h: fan-out, answer rate, short calls, how many
    of the people it reached are elderly, and texts with links.

    >>> line = LineStats()
    >>> line.update(0, "+861", answered=True, duration_s=30, elderly=True)
    >>> line.update(MINUTE, "+862", answered=False, duration_s=0, url=True)
    >>> f = line.get(2 * MINUTE); f["line_elderly_share_24h"], f["line_sms_url_24h"]
    (1.0, 1.0)
    """

    __slots__ = ("_answered", "_callees", "_calls", "_elderly", "_short", "_url", "last_ms", "seen")

    CAP = 4096

    def __init__(self) -> None:
        # (t, callee, flags): answered 1, short 2, elderly reached 4, text with a link 8
        self._calls: deque[tuple[int, str, int]] = deque(maxlen=self.CAP)
        self._callees: dict[str, int] = {}
        self._answered = 0
        self._short = 0
        self._elderly = 0
        self._url = 0
        self.last_ms = 0
        self.seen: dict[str, int] | None = None  # ids of the events applied here (``first_time``)

    def _expire(self, now_ms: int) -> None:
        # Also drops the oldest call of a full window, so the counts never miss one the deque
        # would drop on its own.
        horizon = now_ms - DAY
        items, callees = self._calls, self._callees
        while items and (items[0][0] < horizon or len(items) == self.CAP):
            _, callee, f = items.popleft()
            n = callees[callee] - 1
            if n:
                callees[callee] = n
            else:
                del callees[callee]
            self._answered -= f & 1
            self._short -= f >> 1 & 1
            self._elderly -= f >> 2 & 1
            self._url -= f >> 3
            if items and items[0][0] >= horizon:
                break

    def update(self, t_ms: int, callee: str, answered: bool, duration_s: int,
               elderly: bool = False, url: bool = False) -> None:
        """A call (or text) of this line; ``elderly``: it reached an elderly person."""
        items = self._calls
        if items and (items[0][0] < t_ms - DAY or len(items) == self.CAP):
            self._expire(t_ms)
        short = answered and duration_s < 60
        reached = answered and elderly
        items.append((t_ms, callee, answered | short << 1 | reached << 2 | url << 3))
        callees = self._callees
        callees[callee] = callees.get(callee, 0) + 1
        self._answered += answered
        self._short += short
        self._elderly += reached
        self._url += url
        if t_ms > self.last_ms:
            self.last_ms = t_ms

    def dump(self, horizon: int) -> list[Any]:
        """What a changelog keeps (the live containers: serialise at once)."""
        return [self.last_ms, seen_kept(self.seen, horizon), list(self._calls)]

    @classmethod
    def load(cls, d: list[Any]) -> LineStats:
        line = cls()
        line.last_ms, line.seen = d[0], d[1]
        callees = line._callees
        for t, callee, f in d[2]:
            line._calls.append((t, callee, f))
            callees[callee] = callees.get(callee, 0) + 1
            line._answered += f & 1
            line._short += f >> 1 & 1
            line._elderly += f >> 2 & 1
            line._url += f >> 3
        return line

    def get(self, now_ms: int) -> dict[str, float]:
        self._expire(now_ms)
        n, answered = len(self._calls), self._answered
        return {
            "line_fanout_24h": float(len(self._callees)),
            "line_answer_rate_24h": answered / n if n else 0.0,
            "line_short_share_24h": self._short / answered if answered else 0.0,
            "line_elderly_share_24h": self._elderly / answered if answered else 0.0,
            "line_sms_url_24h": float(self._url),
        }


class SumWindow:
    """A running sum of amounts over the last ``span_ms`` (O(1) amortised per update).

    >>> w = SumWindow(DAY)
    >>> w.add(0, 5); w.add(HOUR, 7); w.total(DAY + 1)
    7
    """

    __slots__ = ("_items", "_total", "span_ms")

    def __init__(self, span_ms: int, cap: int = 4096):
        self.span_ms = span_ms
        self._items: deque[tuple[int, int]] = deque(maxlen=cap)
        self._total = 0

    def add(self, t_ms: int, amount: int) -> None:
        if len(self._items) == self._items.maxlen:
            self._total -= self._items[0][1]
        self._items.append((t_ms, amount))
        self._total += amount

    def total(self, now_ms: int) -> int:
        horizon, items = now_ms - self.span_ms, self._items
        while items and items[0][0] < horizon:
            self._total -= items.popleft()[1]
        return self._total

    def dump(self) -> list[Any]:
        return list(self._items)

    def load(self, pairs: list[Any]) -> SumWindow:
        self._items.extend(map(tuple, pairs))  # type: ignore[arg-type]
        self._total = sum(a for _, a in self._items)
        return self


class DistinctWindow:
    """How many distinct keys were seen in the last ``span_ms`` (O(1) amortised per update)."""

    __slots__ = ("_cap", "_counts", "_items", "span_ms")

    def __init__(self, span_ms: int, cap: int = 4096):
        self.span_ms = span_ms
        self._items: deque[tuple[int, str]] = deque()
        self._counts: Counter[str] = Counter()
        self._cap = cap

    def _drop_oldest(self) -> None:
        _, key = self._items.popleft()
        self._counts[key] -= 1
        if not self._counts[key]:
            del self._counts[key]

    def add(self, t_ms: int, key: str) -> None:
        if len(self._items) >= self._cap:
            self._drop_oldest()
        self._items.append((t_ms, key))
        self._counts[key] += 1

    def distinct(self, now_ms: int) -> int:
        horizon = now_ms - self.span_ms
        while self._items and self._items[0][0] < horizon:
            self._drop_oldest()
        return len(self._counts)

    def dump(self) -> list[Any]:
        return list(self._items)

    def load(self, pairs: list[Any]) -> DistinctWindow:
        for t, key in pairs:
            self._items.append((t, key))
            self._counts[key] += 1
        return self


class AccountStats:
    """A payee account's last 24 h: distinct payers, and how much of the money in left again
    within 30 minutes (mule accounts drain in minutes).

    >>> acc = AccountStats()
    >>> acc.money_in(0, "A", 100_00); acc.money_in(MINUTE, "B", 300_00)
    >>> acc.money_out(5 * MINUTE, 380_00)
    >>> f = acc.get(10 * MINUTE); f["payee_distinct_payers_24h"], f["payee_drain_share_24h"]
    (2.0, 0.95)
    """

    __slots__ = ("_drained", "_held", "_in", "_out", "_payers", "first_ms", "last_ms", "recent_in",
                 "seen")

    DRAIN_MS = 30 * MINUTE
    HELD_MS = 7 * DAY

    def __init__(self) -> None:
        self._in = SumWindow(DAY)
        self._out = SumWindow(DAY)
        self._payers = DistinctWindow(DAY)
        self._drained = SumWindow(DAY)  # amounts that left within DRAIN_MS of arriving
        self._held: deque[int] = deque(maxlen=64)  # transfers to it that a bank held or reversed
        self.recent_in: deque[list[int]] = deque(maxlen=256)  # [t, amount not yet drained]
        self.first_ms: int | None = None
        self.last_ms = 0
        self.seen: dict[str, int] | None = None  # ids of the events applied here (``first_time``)

    def dump(self, horizon: int) -> list[Any]:
        return [self.first_ms, self.last_ms, self._in.dump(), self._out.dump(), self._payers.dump(),
                self._drained.dump(), list(self._held), list(self.recent_in),
                seen_kept(self.seen, horizon)]

    @classmethod
    def load(cls, d: list[Any]) -> AccountStats:
        acc = cls()
        acc.first_ms, acc.last_ms = d[0], d[1]
        acc._in.load(d[2])
        acc._out.load(d[3])
        acc._payers.load(d[4])
        acc._drained.load(d[5])
        acc._held.extend(d[6])
        acc.recent_in.extend(d[7])
        acc.seen = d[8]
        return acc

    def _seen(self, t_ms: int) -> None:
        if self.first_ms is None or t_ms < self.first_ms:
            self.first_ms = t_ms
        self.last_ms = max(self.last_ms, t_ms)

    def money_in(self, t_ms: int, payer: str, amount_fen: int) -> None:
        self._seen(t_ms)
        self._in.add(t_ms, amount_fen)
        self._payers.add(t_ms, payer)
        self.recent_in.append([t_ms, amount_fen])

    def held(self, t_ms: int) -> None:
        """A bank held or reversed a transfer to this account (its own judgement of fraud)."""
        self._seen(t_ms)
        self._held.append(t_ms)

    def money_out(self, t_ms: int, amount_fen: int) -> None:
        self._seen(t_ms)
        self._out.add(t_ms, amount_fen)
        left = amount_fen
        # Money out drains the oldest money in that is still within the drain window.
        while left > 0 and self.recent_in:
            entry = self.recent_in[0]
            if t_ms - entry[0] > self.DRAIN_MS:
                self.recent_in.popleft()
                continue
            take = min(left, entry[1])
            self._drained.add(t_ms, take)
            entry[1] -= take
            left -= take
            if entry[1] == 0:
                self.recent_in.popleft()

    def get(self, now_ms: int) -> dict[str, float]:
        money_in = self._in.total(now_ms)
        drained = self._drained.total(now_ms)
        money_out = self._out.total(now_ms)
        age = (now_ms - self.first_ms) / DAY if self.first_ms is not None else 0.0
        held, horizon = self._held, now_ms - self.HELD_MS
        return {
            "payee_distinct_payers_24h": float(self._payers.distinct(now_ms)),
            "payee_drain_share_24h": min(drained / money_in, 1.0) if money_in else 0.0,
            "payee_onward_share_24h": min(money_out / money_in, 1.0) if money_in else 0.0,
            "payee_held_7d": float(sum(1 for t in held if horizon <= t <= now_ms)),
            "payee_age_days": round(max(age, 0.0), 3),
        }


def first_time(state: Any, ident: str, t_ms: int, horizon: int) -> bool:
    """Whether the event ``ident`` (at ``t_ms``) is new to the key ``state`` belongs to, and
    remember it; an id seen before ``horizon`` (event time) counts as new. The ids live in the
    key's own state, so they move, are checkpointed and are restored with it.

    >>> line = LineStats()
    >>> first_time(line, "a", 0, -1000), first_time(line, "a", 10, -1000), first_time(line, "a", 5000, 4000)
    (True, False, True)
    """
    seen = state.seen
    if seen is None:
        state.seen = {ident: t_ms}
        return True
    t = seen.get(ident)
    if t is not None and t >= horizon:
        return False
    seen[ident] = t_ms
    if len(seen) > 8 and next(iter(seen.values())) < horizon:
        # Forget what is past the horizon now and then (membership does not depend on it).
        state.seen = {k: v for k, v in seen.items() if v >= horizon} or None
    return True


def seen_kept(seen: dict[str, int] | None, horizon: int) -> dict[str, int] | None:
    """The event ids a changelog keeps: those at or after ``horizon`` (the dict itself when
    its oldest is, as on a key that is busy: serialise at once)."""
    if not seen or next(iter(seen.values())) >= horizon:
        return seen
    return {k: t for k, t in seen.items() if t >= horizon} or None


class PersonContacts:
    """Who has been calling a person: unknown lines in the last 72 h, and the lines the person
    knows (called them, within 90 days).

    >>> c = PersonContacts()
    >>> c.called_out(0, "+86138")
    >>> c.known("+86138", MINUTE), c.known("+86170", MINUTE)
    (True, False)
    >>> c.unknown_call(10 * MINUTE, 23.0, listed=True)
    >>> f = c.get(40 * MINUTE); f["minutes_since_unknown_call"], f["listed_contact_72h"]
    (30.0, 1.0)
    """

    __slots__ = ("_known", "_unknown")

    KNOWN_MS = 90 * DAY
    UNKNOWN_MS = 3 * DAY

    def __init__(self) -> None:
        # (end, minutes, listed) of answered calls from unknown lines, in the order they came
        self._unknown: deque[tuple[int, float, int]] = deque(maxlen=512)  # (listed: 0 or 1)
        self._known: OrderedDict[str, int] = OrderedDict()  # line -> last outgoing call

    def called_out(self, t_ms: int, line: str) -> None:
        self._known[line] = max(t_ms, self._known.get(line, t_ms))
        self._known.move_to_end(line)
        while len(self._known) > 512:
            self._known.popitem(last=False)

    def known(self, line: str, now_ms: int) -> bool:
        t = self._known.get(line)
        return t is not None and t <= now_ms and now_ms - t <= self.KNOWN_MS

    def unknown_call(self, end_ms: int, minutes: float, listed: bool) -> None:
        self._unknown.append((end_ms, minutes, 1 if listed else 0))

    def dump(self) -> list[Any]:
        return [list(self._unknown), self._known]

    @classmethod
    def load(cls, d: list[Any]) -> PersonContacts:
        c = cls()
        c._unknown.extend(map(tuple, d[0]))  # type: ignore[arg-type]
        c._known.update(d[1])
        return c

    def get(self, now_ms: int) -> dict[str, float]:
        return dict(zip(self.NAMES, self.values(now_ms), strict=True))

    NAMES = ("unknown_calls_24h", "longest_unknown_call_72h", "minutes_since_unknown_call",
             "listed_contact_72h")

    def values(self, now_ms: int) -> tuple[float, float, float, float]:
        """The features of ``get``, in the order of ``NAMES`` (the person stage's hot path)."""
        calls, horizon = self._unknown, now_ms - self.UNKNOWN_MS
        while calls and calls[0][0] < horizon:
            calls.popleft()
        day, longest, last, listed = 0, None, None, False
        for end, minutes, was_listed in calls:
            if end <= now_ms:  # (a call that ended later is not seen yet at now_ms)
                if now_ms - end <= DAY:
                    day += 1
                if longest is None or minutes > longest:
                    longest = minutes
                if last is None or end > last:
                    last = end
                if was_listed:
                    listed = True
        return (float(day), 0.0 if longest is None else longest,
                (now_ms - last) / MINUTE if last is not None else NONE_MIN,
                1.0 if listed else 0.0)


@dataclass(slots=True)
class PersonTransfers:
    """A person's own transfers: known payees, usual amounts, velocity, moves between own
    accounts.

    >>> p = PersonTransfers()
    >>> for day in range(5):
    ...     p.record(day * DAY, "6222000011112222", 200_00, own=False)
    >>> f = p.get(5 * DAY + HOUR, "6217000099998888", 4_800_000, own=False)
    >>> f["payee_new"], f["amount_ratio_usual"], f["transfers_24h"]
    (1.0, 240.0, 1.0)
    """

    # payee -> when the person first paid it (most recently used last, at most 200)
    payees: OrderedDict[str, int] = field(default_factory=OrderedDict)
    amounts: deque[int] = field(default_factory=lambda: deque(maxlen=20))
    recent: _Window = field(default_factory=lambda: _Window(DAY, 256))  # (t, amount)
    last_own_move_ms: int | None = None

    NAMES = ("amount_cny", "amount_ratio_usual", "payee_new", "payee_own", "transfers_24h",
             "amount_24h_cny", "own_move_24h")

    def get(self, now_ms: int, payee: str, amount_fen: int, own: bool) -> dict[str, float]:
        """Features of a transfer being initiated now (counting it in the 24 h figures)."""
        return dict(zip(self.NAMES, self.values(now_ms, payee, amount_fen, own), strict=True))

    def values(self, now_ms: int, payee: str, amount_fen: int, own: bool
               ) -> tuple[float, float, float, float, float, float, float]:
        """The features of ``get``, in the order of ``NAMES`` (the person stage's hot path)."""
        recent = self.recent
        recent.expire(now_ms)
        usual = median(self.amounts) if self.amounts else None
        total = amount_fen + sum(a for _, a in recent)  # type: ignore[misc]
        last_own = self.last_own_move_ms
        return (amount_fen / 100,
                amount_fen / usual if usual else 1.0,
                0.0 if payee in self.payees or own else 1.0,
                1.0 if own else 0.0,
                float(len(recent) + 1),
                total / 100,
                1.0 if last_own is not None and 0 <= now_ms - last_own <= DAY else 0.0)

    def dump(self) -> list[Any]:
        return [self.payees, list(self.amounts), self.recent.dump(),
                self.last_own_move_ms]

    @classmethod
    def load(cls, d: list[Any]) -> PersonTransfers:
        p = cls()
        p.payees.update(d[0])
        p.amounts.extend(d[1])
        p.recent.load(d[2])
        p.last_own_move_ms = d[3]
        return p

    def first_paid(self, payee: str) -> int | None:
        """When the person first paid ``payee`` (None: never, or too long ago to remember)."""
        return self.payees.get(payee)

    def record(self, t_ms: int, payee: str, amount_fen: int, own: bool) -> None:
        """Remember a transfer after it was scored."""
        self.recent.add(t_ms, amount_fen)
        if own:
            self.last_own_move_ms = t_ms
            return
        self.amounts.append(amount_fen)
        payees = self.payees
        if payee in payees:
            payees.move_to_end(payee)
        else:
            payees[payee] = t_ms
        while len(self.payees) > 200:
            self.payees.popitem(last=False)
