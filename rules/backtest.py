"""Backtest metrics: what a rule set would have flagged, scored against the case reports.

Pure functions over scoring points with their hits (``Scored``-like records: ``person_id``,
``t_ms``, ``hits``) and the case reports of the same replay file, so they are tested on
hand-built data and shared by every detector compared (rule sets, the naive baseline).

Definitions, per person (a desk acts on a person, not on an event):

* a person is **flagged** at the time of their first ``enforce`` hit at or after ``since_ms``
  (the warm-up, during which payee and amount histories are only learnt, flags nobody);
* a flagged person is a **true positive** when a case report names them with a report time
  after that first flag;
* the **victims** are the persons named by a case report filed at or after ``since_ms``;
  **recall** is the share of victims flagged before their report (these are exactly the true
  positives), **precision** the share of flagged persons who are true positives.

>>> from rules.engine import Hit
>>> h = Hit("R-X", "X", "x", 0.9, "call", "enforce")
>>> pts = [Point("P1", 10, (h,)), Point("P2", 20, (h,)), Point("P3", 5, ())]
>>> m = measure(pts, [CaseReport("P1", 100), CaseReport("P4", 100)], label="demo")
>>> (m.flagged, m.true_positives, m.victims, m.precision, m.recall)
(2, 1, 2, 0.5, 0.5)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class HitLike(Protocol):
    @property
    def rule_id(self) -> str: ...
    @property
    def mode(self) -> str: ...


class ScoredLike(Protocol):
    @property
    def person_id(self) -> str: ...
    @property
    def t_ms(self) -> int: ...
    @property
    def hits(self) -> Sequence[HitLike]: ...


@dataclass(frozen=True, slots=True)
class Point:
    """The part of a scoring point a backtest keeps (only points with hits need keeping)."""

    person_id: str
    t_ms: int
    hits: tuple[Any, ...]
    point: str = ""


@dataclass(frozen=True, slots=True)
class CaseReport:
    person_id: str
    t_ms: int
    fraud_type: str = ""
    report_id: str = ""


@dataclass
class RuleStats:
    rule_id: str
    mode: str
    hits: int = 0  # scoring points where it fired
    persons: int = 0  # distinct persons it fired on
    confirmed: int = 0  # of those, reported as victims after its first hit on them

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.persons if self.persons else None


@dataclass
class Metrics:
    label: str
    rules: list[RuleStats]
    flagged: int
    true_positives: int
    victims: int
    shadow_flagged: int  # persons hit only by shadow rules (they would raise no task)
    by_type: dict[str, tuple[int, int]]  # fraud type -> (victims, caught before report)
    flagged_persons: dict[str, int] = field(default_factory=dict, repr=False)  # person -> flag ms
    caught_persons: set[str] = field(default_factory=set, repr=False)

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.victims if self.victims else None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label, "flagged_persons": self.flagged,
            "true_positives": self.true_positives, "victims": self.victims,
            "precision": _r(self.precision), "recall": _r(self.recall),
            "shadow_only_persons": self.shadow_flagged,
            "rules": [{"rule_id": r.rule_id, "mode": r.mode, "hits": r.hits, "persons": r.persons,
                       "confirmed": r.confirmed, "precision": _r(r.precision)} for r in self.rules],
            "recall_by_fraud_type": {t: {"victims": v, "caught": c, "recall": _r(c / v if v else None)}
                                     for t, (v, c) in sorted(self.by_type.items())},
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def measure(points: Iterable[ScoredLike], reports: Sequence[CaseReport], *, label: str,
            since_ms: int | None = None, rule_order: Sequence[tuple[str, str]] = ()) -> Metrics:
    """Hits per rule, persons flagged, precision and recall (definitions in the module doc).
    ``rule_order``: (rule id, mode) of every rule, so rules that never fired are listed too."""
    since = since_ms if since_ms is not None else -(2**62)
    last_report: dict[str, int] = {}
    for r in reports:
        last_report[r.person_id] = max(r.t_ms, last_report.get(r.person_id, r.t_ms))
    rules: dict[str, RuleStats] = {rid: RuleStats(rid, mode) for rid, mode in rule_order}
    first_by_rule: dict[str, dict[str, int]] = {rid: {} for rid in rules}
    flagged: dict[str, int] = {}
    shadow: set[str] = set()
    for p in points:
        if not p.hits or p.t_ms < since:
            continue
        for h in p.hits:
            st = rules.get(h.rule_id)
            if st is None:
                st = rules[h.rule_id] = RuleStats(h.rule_id, h.mode)
                first_by_rule[h.rule_id] = {}
            st.hits += 1
            seen = first_by_rule[h.rule_id]
            if p.person_id not in seen or p.t_ms < seen[p.person_id]:
                seen[p.person_id] = p.t_ms
            if h.mode == "enforce":
                if p.person_id not in flagged or p.t_ms < flagged[p.person_id]:
                    flagged[p.person_id] = p.t_ms
            else:
                shadow.add(p.person_id)
    for rid, st in rules.items():
        seen = first_by_rule[rid]
        st.persons = len(seen)
        st.confirmed = sum(1 for pid, t in seen.items() if last_report.get(pid, -(2**62)) > t)
    caught = {pid for pid, t in flagged.items() if last_report.get(pid, -(2**62)) > t}
    victims: dict[str, str] = {}  # person -> fraud type of their first report in the window
    for r in sorted(reports, key=lambda r: r.t_ms):
        if r.t_ms >= since and r.person_id not in victims:
            victims[r.person_id] = r.fraud_type or "unknown"
    by_type: dict[str, tuple[int, int]] = {}
    for pid, ftype in victims.items():
        v, c = by_type.get(ftype, (0, 0))
        by_type[ftype] = (v + 1, c + (pid in caught))
    return Metrics(label, list(rules.values()), len(flagged), len(caught), len(victims),
                   len(shadow - flagged.keys()), by_type, flagged, caught)


@dataclass
class Difference:
    """What changes from the rule set in force (``base``) to the one tested (``new``)."""

    newly_flagged: int
    no_longer_flagged: int
    newly_caught: int
    no_longer_caught: int
    precision_delta: float | None
    recall_delta: float | None
    rules_added: list[str]
    rules_removed: list[str]
    hits_delta: dict[str, int]  # rule id -> hits(new) - hits(base), for rules in both
    modes_changed: dict[str, str] = field(default_factory=dict)  # rule id -> its mode before

    def to_json(self) -> dict[str, Any]:
        return {"newly_flagged": self.newly_flagged, "no_longer_flagged": self.no_longer_flagged,
                "newly_caught": self.newly_caught, "no_longer_caught": self.no_longer_caught,
                "precision_delta": _r(self.precision_delta), "recall_delta": _r(self.recall_delta),
                "rules_added": self.rules_added, "rules_removed": self.rules_removed,
                "hits_delta": self.hits_delta, "modes_changed": self.modes_changed}


def compare(new: Metrics, base: Metrics) -> Difference:
    def delta(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    nf, bf = set(new.flagged_persons), set(base.flagged_persons)
    n_rules = {r.rule_id: r for r in new.rules}
    b_rules = {r.rule_id: r for r in base.rules}
    return Difference(
        newly_flagged=len(nf - bf), no_longer_flagged=len(bf - nf),
        newly_caught=len(new.caught_persons - base.caught_persons),
        no_longer_caught=len(base.caught_persons - new.caught_persons),
        precision_delta=delta(new.precision, base.precision),
        recall_delta=delta(new.recall, base.recall),
        rules_added=[r for r in n_rules if r not in b_rules],
        rules_removed=[r for r in b_rules if r not in n_rules],
        hits_delta={r: n_rules[r].hits - b_rules[r].hits for r in n_rules if r in b_rules},
        modes_changed={r: b_rules[r].mode for r in n_rules
                       if r in b_rules and n_rules[r].mode != b_rules[r].mode},
    )
