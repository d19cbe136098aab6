"""Running a backtest: a replay file through the decision core, rule sets and the naive baseline.

The core runs once, with the rule set under test; its observer sees every scoring point with
its features, so the rule set in force is evaluated on the very same features in the same pass
(features never depend on decisions in a replay). Bad lines are skipped as the replay driver
would dead-letter them; case reports are collected as the labels.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.backtest import CaseReport, Point
from rules.engine import Hit, RuleSet
from streams.eventtime import parse
from streams.replay import read_lines

DAY_MS = 86_400_000


@dataclass
class Run:
    """What one pass over a replay file gives: the points with hits, per rule set, and labels."""

    points: list[list[Point]]  # per rule set, in the order given; only points with hits
    reports: list[CaseReport]
    scoring_points: Counter[str] = field(default_factory=Counter)
    first_ms: int | None = None
    lines: int = 0
    rejected: int = 0
    seconds: float = 0.0
    eval_seconds: list[float] = field(default_factory=list)  # per rule set, evaluate() time

    def us_per_point(self, i: int) -> float:
        n = sum(self.scoring_points.values())
        return self.eval_seconds[i] / n * 1e6 if n else 0.0


def run(events: Path, rulesets: list[RuleSet],
        progress: Callable[[int], None] | None = None) -> Run:
    """One pass of ``events`` through ``Core(ruleset=rulesets[0])``; every set is evaluated on
    the features of every scoring point. Raises ``streams.replay.ReplayError`` if unreadable."""
    from streams.core import Core, Scored  # the core imports this package's protocols only

    result = Run([[] for _ in rulesets], [], eval_seconds=[0.0] * len(rulesets))
    clock = time.perf_counter

    def observe(s: Scored) -> None:
        result.scoring_points[s.point] += 1
        for i, rs in enumerate(rulesets):
            t = clock()
            hits: list[Hit] = rs.evaluate(s.point, s.features)
            result.eval_seconds[i] += clock() - t
            if i == 0:
                hits = list(s.hits)  # what the core itself saw (the same, evaluated once more)
            if hits:
                result.points[i].append(Point(s.person_id, s.t_ms, tuple(hits), s.point))

    core = Core(ruleset=rulesets[0], observer=observe, batch=256)
    started = clock()
    for line in read_lines(events):
        result.lines += 1
        if progress and result.lines % 50_000 == 0:
            progress(result.lines)
        topic, value = line.topic, line.value
        if value is None:
            result.rejected += 1
            continue
        t = parse(value["event_time"]).ms
        if result.first_ms is None or t < result.first_ms:
            result.first_ms = t
        if topic == "case-reports":
            result.reports.append(CaseReport(value["person_id"], t, value["fraud_type"],
                                             value["report_id"]))
        core.feed(topic, value)
    core.finish()
    result.seconds = clock() - started
    if progress:
        progress(result.lines)
    return result


def naive_points(events: Path, large_cny: int = 5000, warmup_days: int = 3) -> list[Point]:
    """The naive two-rule detector of the simulator (``streams.simulator.naive``), as points."""
    from streams.simulator.naive import detect

    out: list[Point] = []
    for a in detect(events, large_cny, warmup_days):
        rule = "NAIVE-" + a.rule.upper().replace("_", "-")
        out.append(Point(a.person, a.t, (Hit(rule, a.rule.upper(), a.rule, 1.0, None, "enforce"),)))
    return out


def summary_json(run_: Run) -> dict[str, Any]:
    return {"lines": run_.lines, "rejected": run_.rejected, "seconds": round(run_.seconds, 2),
            "scoring_points": dict(sorted(run_.scoring_points.items())),
            "case_reports": len(run_.reports)}
