"""Benchmark of the simulator: records/s and peak memory writing a city to a replay file.

Each size runs in its own child process, so its peak RSS is its own. Results go to
``bench/results/simulator.json``; a table is printed.

    .venv/bin/python bench/bench_simulator.py            # ~1M records, plus a larger city
    .venv/bin/python bench/bench_simulator.py --quick    # a small run, for a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent


def child(persons: int, days: int, seed: int, out: str) -> None:
    from streams.simulator import simulate

    t = time.perf_counter()
    r = simulate(persons, days, seed, out, out + ".truth")
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"records": r.records, "seconds": dt, "peak_rss_bytes": peak,
                      "bytes": os.path.getsize(out)}))


def measure(persons: int, days: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "city.jsonl")
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(persons), str(days), str(seed), out],
            check=True, capture_output=True, text=True, cwd=ROOT)
        got = json.loads(proc.stdout.strip().splitlines()[-1])
    got.update(persons=persons, days=days, seed=seed,
               records_per_s=round(got["records"] / got["seconds"]))
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=4)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "simulator.json"))
    a = ap.parse_args()
    if a.child:
        child(int(a.child[0]), int(a.child[1]), int(a.child[2]), a.child[3])
        return
    sizes = [(2_000, 3)] if a.quick else [(20_000, 12), (100_000, 3)]
    runs = [measure(p, d, 1) for p, d in sizes]
    result = {"benchmark": "simulator", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "python": platform.python_version(), "runs": runs,
              "target": "1,000,000 records in under 60 s, memory bounded"}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    t = Table(title="zt simulate to a replay file")
    for col in ("persons", "days", "records", "seconds", "records/s", "peak RSS", "file"):
        t.add_column(col, justify="right")
    for r in runs:
        t.add_row(f"{r['persons']:,}", str(r["days"]), f"{r['records']:,}", f"{r['seconds']:.1f}",
                  f"{r['records_per_s']:,}", f"{r['peak_rss_bytes'] / 2**20:,.0f} MiB",
                  f"{r['bytes'] / 2**20:,.0f} MiB")
    Console().print(t)
    print(f"results -> {a.out}")


if __name__ == "__main__":
    main()
