"""Rule evaluation cost per scoring point, on the features of a real replay.

``python bench/bench_rules.py REPLAY [RULESET] [--out bench/results/rules.json]``

The core runs once to collect every scoring point's features; then ``RuleSet.evaluate`` alone is
timed over all of them (best of seven interleaved passes), so the figure is the rules' own cost, not the
core's.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import orjson

from rules.engine import RuleSet, default_ruleset_path
from streams.core import Core, Scored


def collect(replay: Path) -> list[tuple[str, dict[str, float]]]:
    points: list[tuple[str, dict[str, float]]] = []

    def observe(s: Scored) -> None:
        points.append((s.point, s.features))

    core = Core(observer=observe, batch=256)
    with open(replay, "rb") as f:
        for line in f:
            env = orjson.loads(line)
            core.feed(env["topic"], env["value"])
    core.finish()
    return points


def best_of(rs: RuleSet, groups: dict[str, list[dict[str, float]]], repeat: int = 7
            ) -> dict[str, float]:
    """Seconds per group of points, the best of ``repeat`` interleaved passes (a shared
    machine's load varies; the minimum is the engine's own cost)."""
    best = dict.fromkeys(groups, float("inf"))
    evaluate = rs.evaluate
    for _ in range(repeat):
        for point, rows in groups.items():
            t = time.perf_counter()
            for f in rows:
                evaluate(point, f)
            best[point] = min(best[point], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("replay", type=Path)
    ap.add_argument("ruleset", type=Path, nargs="?", default=default_ruleset_path())
    ap.add_argument("--out", type=Path, default=Path("bench/results/rules.json"))
    a = ap.parse_args()
    rs = RuleSet.load(a.ruleset)
    t = time.perf_counter()
    points = collect(a.replay)
    collected = time.perf_counter() - t
    result: dict[str, object] = {
        "ruleset": rs.version, "rules": {p: len(rs.by_point[p]) for p in rs.by_point},
        "replay": str(a.replay), "scoring_points": len(points),
        "collect_seconds": round(collected, 1), "python": platform.python_version(),
        "machine": platform.machine(),
    }
    groups: dict[str, list[dict[str, float]]] = {}
    for point, f in points:
        groups.setdefault(point, []).append(f)
    best = best_of(rs, groups)
    result["us_per_point"] = round(sum(best.values()) / len(points) * 1e6, 2)
    for point, rows in groups.items():
        result[f"us_per_{point}_point"] = round(best[point] / len(rows) * 1e6, 2)
    hits = sum(len(rs.evaluate(p, f)) for p, f in points)
    result["hits_per_1000_points"] = round(hits / len(points) * 1000, 2)
    print(json.dumps(result, indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
