"""The training and evaluation set: events replayed through the decision core, one row per
scoring point, labelled from the case reports of the same file.

The features are the ones the core computed when it reached each scoring point (its observer
sees them), so training reads exactly what the workers score: there is no second feature
implementation to drift.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from models.features import POINT_FEATURES, POINTS, vector
from models.labels import LabelBook, Report
from streams import contract
from streams.eventtime import parse
from streams.replay import open_events, parse_line, read_lines

if TYPE_CHECKING:  # the core's own record of a scoring point; imported for types only
    from streams.core import Scored

DAY_MS = 86_400_000
META = ("person_id", "event_id", "t_ms", "txn_id", "rule_score", "rule_hits")
Progress = Callable[[int, int], None]  # (lines done, lines in the file)


@dataclass
class Collector:
    """The core's observer: keeps each scoring point's feature vector and the rules' verdict."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {p: [] for p in POINTS})
    x: dict[str, list[list[float]]] = field(default_factory=lambda: {p: [] for p in POINTS})

    def __call__(self, s: Scored) -> None:
        if s.point not in self.rows:
            return
        # The rules alone, as they decide: enforcing hits only (shadow rules only watch).
        enforce = [float(h.score) for h in s.hits if getattr(h, "mode", "enforce") == "enforce"]
        self.rows[s.point].append((s.person_id, s.event_id, s.t_ms, s.txn_id,
                                   max(enforce, default=0.0), len(enforce)))
        self.x[s.point].append(vector(s.point, s.features))

    def frames(self, book: LabelBook, clock: Clock) -> dict[str, pd.DataFrame]:
        """One labelled frame per point: the features in catalog order, then metadata."""
        out: dict[str, pd.DataFrame] = {}
        for p in POINTS:
            names = list(POINT_FEATURES[p])
            x = np.asarray(self.x[p], dtype=np.float64).reshape(len(self.x[p]), len(names))
            df = pd.DataFrame(x, columns=names)
            meta = pd.DataFrame(self.rows[p], columns=list(META))
            df = pd.concat([df, meta], axis=1)
            labels = [book.label(p, pid, t, tid) for pid, t, tid in
                      zip(df["person_id"], df["t_ms"], df["txn_id"], strict=True)]
            df["y"] = np.array([lab[0] for lab in labels], dtype=np.int8)
            df["fraud_type"] = [lab[1] for lab in labels]
            df["report_id"] = [lab[2] for lab in labels]
            df["day"] = clock.days(df["t_ms"].to_numpy(dtype=np.int64))
            out[p] = df
        return out


@dataclass(frozen=True)
class Clock:
    """Local days of the file, counted from the local midnight of its first record."""

    day0: int  # local day number (days since the epoch, local time) of the first record
    offset_min: int

    def days(self, t_ms: np.ndarray) -> np.ndarray:
        return (t_ms + self.offset_min * 60_000) // DAY_MS - self.day0

    @classmethod
    def of(cls, first_time: str) -> Clock:
        t = parse(first_time)
        return cls((t.ms + t.offset_min * 60_000) // DAY_MS, t.offset_min)


@dataclass
class Dataset:
    frames: dict[str, pd.DataFrame]
    book: LabelBook
    clock: Clock
    fingerprint: str
    events: str
    lines: int
    rejected: int
    persons: int
    last_ms: int

    @property
    def days(self) -> int:
        """Whole or partial local days the file covers."""
        return int(self.clock.days(np.array([self.last_ms]))[0]) + 1

    @classmethod
    def union(cls, parts: list[Dataset]) -> Dataset:
        """Several cities as one dataset (a family to train a model on): each
        city's persons and reports kept apart by a prefix, its times moved onto the first
        city's calendar (same local days and offset), its days split like the others'."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        if any(p.clock.offset_min != first.clock.offset_min for p in parts):
            raise ValueError("cities trained on together must be in one UTC offset")
        frames: dict[str, list[pd.DataFrame]] = {point: [] for point in POINTS}
        reports: list[Report] = []
        for i, p in enumerate(parts):
            shift = (first.clock.day0 - p.clock.day0) * DAY_MS
            for point in POINTS:
                frames[point].append(p.frames[point].assign(
                    person_id=f"{i}/" + p.frames[point]["person_id"],
                    t_ms=p.frames[point]["t_ms"] + shift))
            reports.extend(r.shifted(shift, f"{i}/") for r in p.book.reports)
        fingerprint = hashlib.sha256("".join(p.fingerprint for p in parts).encode()).hexdigest()
        return cls({point: pd.concat(f, ignore_index=True) for point, f in frames.items()},
                   LabelBook(reports, {}), first.clock, fingerprint,
                   ", ".join(p.events for p in parts), sum(p.lines for p in parts),
                   sum(p.rejected for p in parts), sum(p.persons for p in parts),
                   # the days every city covers: the split is by day, the same for all
                   min(p.last_ms + (first.clock.day0 - p.clock.day0) * DAY_MS for p in parts))


@dataclass
class _Scan:
    reports: list[Report]
    msisdns: dict[str, tuple[str, ...]]
    fingerprint: str
    lines: int
    first_time: str | None


def _scan(events: Path) -> _Scan:
    """First pass: the file's fingerprint, its case reports and the victims' phone lines."""
    h = hashlib.sha256()
    with events.open("rb") as raw:
        for chunk in iter(lambda: raw.read(1 << 20), b""):
            h.update(chunk)
    reports: list[Report] = []
    msisdns: dict[str, tuple[str, ...]] = {}
    lines = 0
    first: str | None = None
    with open_events(events) as src:
        for line in src:
            lines += 1
            if first is None or b"case-reports" in line or b"registry" in line:
                topic, value, reason = parse_line(line, lines)
                if reason is not None:
                    continue
                try:
                    contract.validate(topic, value)
                except contract.ContractError:
                    continue
                first = first or value["event_time"]
                if topic == "case-reports":
                    reports.append(Report.from_record(value, parse(value["event_time"]).ms))
                elif topic == "registry" and value["op"] == "upsert":
                    msisdns[value["person_id"]] = tuple(value["msisdns"])
    return _Scan(reports, msisdns, h.hexdigest(), lines, first)


def collect(events: Path, progress: Progress | None = None,
            core_factory: Callable[..., Any] | None = None) -> Dataset:
    """Replay ``events`` through the core with an observer and label every scoring point.

    The core runs with the rule set in force (``rules/sets/city.yaml``) and no model, so each
    row also carries what the rules alone decided, for the comparison with the classifier."""
    if core_factory is None:
        core_factory = rules_core
    scan = _scan(events)
    if scan.first_time is None:
        raise ValueError(f"{events} holds no valid record")
    book = LabelBook(scan.reports, scan.msisdns)
    collector = Collector()
    core = core_factory(observer=collector)
    rejected = 0
    persons: set[str] = set()
    last_ms = 0
    for line in read_lines(events):
        if progress and line.lineno % 20_000 == 0:
            progress(line.lineno, scan.lines)
        topic, value = line.topic, line.value
        if value is None:
            rejected += 1
            continue
        t_ms = parse(value["event_time"]).ms
        last_ms = max(last_ms, t_ms)
        if topic in ("calls", "transactions"):
            book.observe(topic, value, t_ms)
        elif topic == "registry":
            persons.add(value["person_id"])
        core.feed(topic, value)
    core.finish()
    if progress:
        progress(scan.lines, scan.lines)
    clock = Clock.of(scan.first_time)
    return Dataset(collector.frames(book, clock), book, clock, scan.fingerprint, str(events),
                   scan.lines, rejected, len(persons), last_ms)


def rules_core(observer: Callable[[Any], None]) -> Any:
    """The decision core with the default rule set, no model, batched (replay speed)."""
    from rules.engine import RuleSet, default_ruleset_path
    from streams.core import Core

    return Core(ruleset=RuleSet.load(default_ruleset_path()), observer=observer, batch=256)
