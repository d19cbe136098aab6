"""Reference data every worker holds whole: the real-name registry and the watch lists.

They are the pipeline's global tables. Watch-list entries keep their validity intervals in event
time, so "was this number listed when the call ended?" has one answer whatever order the records
reached the worker in. Victims' case reports are read the same way for the numbers and accounts
they name: a line or account a victim reported is suspect for everyone else from the report on,
hours before a watch list learns it.

>>> ref = Reference()
>>> ref.apply("watchlist", {"op": "add", "kind": "msisdn", "value": "+8617012345678",
...     "category": "fraud_number", "source": "national_center", "confidence": 0.9,
...     "event_id": "wl-1", "event_time": "2026-02-28T22:00:00+08:00"})
>>> ref.listed("+8617012345678", to_ms("2026-03-01T09:00:00+08:00")).confidence
0.9
>>> ref.listed("+8617012345678", to_ms("2026-02-28T21:00:00+08:00")) is None
True
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from streams.eventtime import to_ms

# A listing is re-added and removed rarely; keep the last few intervals of each value.
MAX_INTERVALS = 8
MAX_TASKS = 1_000_000  # tasks whose outcomes can still be routed (~100 bytes each)
MAX_REPORTED = 1_000_000  # numbers and accounts named in case reports, the newest kept


@dataclass(slots=True)
class Person:
    person_id: str
    birth_year: int
    district: str
    msisdns: tuple[str, ...]
    accounts: tuple[tuple[str, str], ...]  # (bank, account)


@dataclass(slots=True)
class Listing:
    """One interval during which a value was on a watch list."""

    kind: str
    category: str
    source: str
    confidence: float
    since_ms: int
    until_ms: int | None = None
    event_id: str = ""


@dataclass
class Reference:
    persons: dict[str, Person] = field(default_factory=dict)
    # The person of each line and account: the entity stage asks up to three times a record.
    by_msisdn: dict[str, Person] = field(default_factory=dict)
    by_account: dict[str, Person] = field(default_factory=dict)
    bank_of: dict[str, str] = field(default_factory=dict)
    watch: dict[str, list[Listing]] = field(default_factory=dict)
    tasks: OrderedDict[str, str] = field(default_factory=OrderedDict)  # task_id -> person_id
    # number or account named in a case report -> the event time of the first such report
    reported: OrderedDict[str, int] = field(default_factory=OrderedDict)

    def note_task(self, task_id: str, person_id: str) -> None:
        """Remember whose task this is, so its outcome finds the person (bounded)."""
        self.tasks[task_id] = person_id
        if len(self.tasks) > MAX_TASKS:
            self.tasks.popitem(last=False)

    def apply(self, topic: str, rec: dict[str, Any]) -> None:
        if topic == "registry":
            self._registry(rec)
        elif topic == "watchlist":
            self._watchlist(rec)
        elif topic == "case-reports":
            self._case_report(rec)
        elif topic == "warning-tasks":
            self.note_task(rec["task_id"], rec["person_id"])

    def _case_report(self, rec: dict[str, Any]) -> None:
        t = to_ms(rec["event_time"])
        reported = self.reported
        for value in (*rec["fraud_msisdns"], *rec["fraud_accounts"]):
            first = reported.get(value)
            if first is None or t < first:
                reported[value] = t
                reported.move_to_end(value)
        while len(reported) > MAX_REPORTED:
            reported.popitem(last=False)

    def _registry(self, rec: dict[str, Any]) -> None:
        pid = rec["person_id"]
        old = self.persons.pop(pid, None)
        if old is not None:
            for m in old.msisdns:
                if self.by_msisdn.get(m) is old:  # (not if another person has taken it since)
                    del self.by_msisdn[m]
            for _, a in old.accounts:
                if self.by_account.get(a) is old:
                    del self.by_account[a]
        if rec["op"] == "delete":
            return
        person = Person(
            pid,
            rec["birth_year"],
            rec["district"],
            tuple(rec["msisdns"]),
            tuple((a["bank"], a["account"]) for a in rec["accounts"]),
        )
        self.persons[pid] = person
        for m in person.msisdns:
            self.by_msisdn[m] = person
        for bank, a in person.accounts:
            self.by_account[a] = person
            self.bank_of[a] = bank

    def _watchlist(self, rec: dict[str, Any]) -> None:
        t = to_ms(rec["event_time"])
        spans = self.watch.setdefault(rec["value"], [])
        if rec["op"] == "add":
            # An add inside an open interval refreshes it; otherwise opens a new one.
            for s in spans:
                if s.since_ms <= t and (s.until_ms is None or t < s.until_ms):
                    s.confidence, s.source, s.category = rec["confidence"], rec["source"], rec["category"]
                    return
            spans.append(Listing(rec["kind"], rec["category"], rec["source"],
                                 float(rec["confidence"]), t, None, rec["event_id"]))
            spans.sort(key=lambda s: s.since_ms)
            del spans[:-MAX_INTERVALS]
        else:
            for s in spans:
                if s.since_ms <= t and (s.until_ms is None or t < s.until_ms):
                    s.until_ms = t

    def person_of_msisdn(self, msisdn: str) -> Person | None:
        return self.by_msisdn.get(msisdn)

    def person_of_account(self, account: str) -> Person | None:
        return self.by_account.get(account)

    def reported_by_victim(self, value: str, at_ms: int) -> bool:
        """Whether a case report filed by ``at_ms`` (event time) named ``value``."""
        t = self.reported.get(value)
        return t is not None and t <= at_ms

    def listed(self, value: str, at_ms: int) -> Listing | None:
        """The watch-list entry covering ``value`` at event time ``at_ms``, if any."""
        for s in self.watch.get(value, ()):
            if s.since_ms <= at_ms and (s.until_ms is None or at_ms < s.until_ms):
                return s
        return None
