"""Labels from case reports: the only ground truth a real centre has, and it arrives late.

The rule (docs/models.md explains why):

* **transfer point**: a transfer is fraud (1) when a case report lists its ``txn_id``; every
  other transfer is 0.
* **contact point**: the reporting victim is *being defrauded* from the first contact (call or
  SMS, answered or not) from a line the report names (``fraud_msisdns``), or from the first
  listed transfer when the report names no line, until the last listed transfer completes. Every
  contact point of the victim inside that window is 1 (the desk warns the person, not the call).
  Contacts after the money left but before the report are dropped (-1): a warning can no longer
  prevent that loss, yet they are not clearly benign either. Everything else is 0.

Victims who never report (15% in the simulated city), and reports not yet filed when the file
ends, leave their fraud labelled 0: the training code drops the last days of a file (label
maturity) for that reason.

>>> book = LabelBook([Report("R1", "P1", "pig_butchering", 9_000, ("T1",), frozenset({"+861"}))],
...                  {"P1": ("+862",)})
>>> book.observe("calls", {"caller": "+861", "callee": "+862"}, 1_000)
>>> book.observe("transactions", {"txn_id": "T1", "status": "initiated"}, 5_000)
>>> book.observe("transactions", {"txn_id": "T1", "status": "completed"}, 5_030)
>>> [book.contact("P1", t)[0] for t in (500, 1_000, 5_030, 6_000, 9_500)]
[0, 1, 1, -1, 0]
>>> book.transfer("T1"), book.transfer("T2")
((1, 'pig_butchering', 'R1'), (0, '', ''))
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

NO_LABEL = (0, "", "")


@dataclass
class Report:
    """One case report and what the replay saw of its evidence."""

    report_id: str
    person_id: str
    fraud_type: str
    t_ms: int
    txn_ids: tuple[str, ...]
    msisdns: frozenset[str]
    first_contact_ms: int | None = None
    initiated: dict[str, int] = field(default_factory=dict)
    completed: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_record(cls, value: dict[str, Any], t_ms: int) -> Report:
        return cls(value["report_id"], value["person_id"], value["fraud_type"], t_ms,
                   tuple(value["txn_ids"]), frozenset(value["fraud_msisdns"]))

    def shifted(self, ms: int, prefix: str) -> Report:
        """The same report, ``ms`` later, its person and id prefixed (a city among several)."""
        return replace(self, report_id=prefix + self.report_id, person_id=prefix + self.person_id,
                       t_ms=self.t_ms + ms,
                       first_contact_ms=None if self.first_contact_ms is None
                       else self.first_contact_ms + ms,
                       initiated={k: v + ms for k, v in self.initiated.items()},
                       completed={k: v + ms for k, v in self.completed.items()})

    @property
    def start_ms(self) -> int:
        """When the victim started being defrauded, as far as the records show."""
        starts = [t for t in (self.first_contact_ms, *self.initiated.values()) if t is not None]
        return min(starts, default=self.t_ms)

    @property
    def end_ms(self) -> int:
        """When the last listed transfer completed (the report's time if none was seen)."""
        return max(self.completed.values(), default=self.t_ms)

    @property
    def first_completed_ms(self) -> int | None:
        return min(self.completed.values(), default=None)


class LabelBook:
    """Case reports plus the times of their evidence, gathered while the events replay."""

    def __init__(self, reports: list[Report], msisdns: dict[str, tuple[str, ...]]):
        self.reports = reports
        self._by_person: dict[str, list[Report]] = {}
        self._by_txn: dict[str, Report] = {}
        self._by_pair: dict[tuple[str, str], list[Report]] = {}
        for r in reports:
            self._by_person.setdefault(r.person_id, []).append(r)
            for tid in r.txn_ids:
                self._by_txn[tid] = r
            for line in r.msisdns:
                for own in msisdns.get(r.person_id, ()):
                    self._by_pair.setdefault((line, own), []).append(r)

    def observe(self, topic: str, value: dict[str, Any], t_ms: int) -> None:
        """Note the time of a report's evidence (call from a named line, listed transfer)."""
        if topic == "calls":
            for r in self._by_pair.get((value["caller"], value["callee"]), ()):
                if t_ms <= r.t_ms and (r.first_contact_ms is None or t_ms < r.first_contact_ms):
                    r.first_contact_ms = t_ms
        elif topic == "transactions":
            r = self._by_txn.get(value["txn_id"])
            if r is not None:
                status = value["status"]
                if status == "initiated":
                    r.initiated.setdefault(value["txn_id"], t_ms)
                elif status == "completed":
                    r.completed.setdefault(value["txn_id"], t_ms)

    def transfer(self, txn_id: str | None) -> tuple[int, str, str]:
        """(label, fraud type, report id) of a transfer point."""
        r = self._by_txn.get(txn_id) if txn_id else None
        return (1, r.fraud_type, r.report_id) if r is not None else NO_LABEL

    def contact(self, person_id: str, t_ms: int) -> tuple[int, str, str]:
        """(label, fraud type, report id) of a contact point; label -1 means "drop"."""
        for r in self._by_person.get(person_id, ()):
            if r.start_ms <= t_ms <= r.end_ms:
                return 1, r.fraud_type, r.report_id
            if r.end_ms < t_ms <= r.t_ms:
                return -1, r.fraud_type, r.report_id
        return NO_LABEL

    def label(self, point: str, person_id: str, t_ms: int, txn_id: str | None) -> tuple[int, str, str]:
        if point == "transfer":
            return self.transfer(txn_id)
        return self.contact(person_id, t_ms)
