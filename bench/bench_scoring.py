"""Scoring speed of a registered model: a batch of 10,000 transfers, and one row at a time.

    .venv/bin/python bench/bench_scoring.py [--registry DIR] [--model VERSION] [--events FILE]

Rows are real transfer scoring points from a replay (the events file, or a small simulated
city), repeated to 10,000. Without a promoted model, one is trained on that city first.
Results go to bench/results/scoring.json (median of several runs; not a timed assertion).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.dataset import collect  # noqa: E402
from models.features import POINT_FEATURES  # noqa: E402
from models.registry import Registry, RegistryError  # noqa: E402
from models.scorer import ModelScorer  # noqa: E402


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--registry", type=Path, default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--events", type=Path, default=None)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/scoring.json")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zt-bench-scoring-"))
    events = args.events
    if events is None:
        from streams.simulator.run import simulate

        events = work / "city.jsonl"
        print("simulating a small city ...", flush=True)
        simulate(3000, 8, 5, events, overrides={"fraud": {"episodes_per_100k_per_day": 300}})
    reg = Registry(args.registry)
    try:
        version = reg.resolve(args.model)
    except RegistryError:
        from models.train import TrainConfig, train_file

        reg = Registry(work / "models")
        print("no promoted model: training one on the bench city ...", flush=True)
        version, _ = train_file(events, reg, TrainConfig())
    scorer = ModelScorer.load(reg, version)
    print(f"model {version}; collecting transfer rows from {events} ...", flush=True)
    frame = collect(events).frames["transfer"]
    names = list(POINT_FEATURES["transfer"])
    base = frame[names].to_dict("records")
    rows = (base * (args.batch // len(base) + 1))[: args.batch]

    scorer.score("transfer", rows[:100])  # warm up
    batch = timed(lambda: scorer.score("transfer", rows), 7)
    single_rows = rows[:300]
    single = timed(lambda: [scorer.score("transfer", [r]) for r in single_rows], 3)
    med = statistics.median(batch)
    per_one = statistics.median(single) / len(single_rows)
    result = {
        "model": version,
        "batch_rows": args.batch,
        "batch_seconds_median": round(med, 4),
        "batch_seconds_runs": [round(x, 4) for x in batch],
        "per_row_in_batch_us": round(med / args.batch * 1e6, 2),
        "rows_per_second": round(args.batch / med),
        "single_row_call_ms": round(per_one * 1e3, 3),
        "features": len(names),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_1min": round(os.getloadavg()[0], 2)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
