"""A broker restart in the middle of a city, run N times: does the worker resume by itself and
send replay's tasks for what was sent afterwards, every time?

Each run (``tests/faults.py``, ``broker_restart``): a real Tansu and a real ``zt worker``; half a
bench city (16,000 records) decided; the broker stopped for an outage of 5 to 60 s and started
again on the same port (empty: memory storage); the reference sent again, then the second half.
A run passes when the worker stayed up, alive and never with a dead lane, said the broker was
away and had lost its logs, and the tasks on ``warning-tasks`` before and after are replay's,
byte for byte. Writes bench/results/broker_restart.json and prints a table.

    .venv/bin/python bench/bench_broker_restart.py [--runs 10] [--seed 17]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is beside bench/

from tests.faults import broker_restart


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=17, help="of the outage lengths")
    ap.add_argument("--out", type=Path, default=Path("bench/results/broker_restart.json"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    outages = [5.0, 60.0] + [round(rng.uniform(5, 60), 1) for _ in range(max(args.runs - 2, 0))]
    runs = []
    for i, outage in enumerate(outages[: args.runs]):
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as work:
            try:
                got = broker_restart(outage, Path(work))
            except Exception as e:  # a run that broke is a failed run, reported as such
                got = {"outage_s": outage, "equal": False, "error": repr(e)}
        got["wall_s"] = round(time.monotonic() - started, 1)
        got["passed"] = bool(got.get("equal") and got.get("worker_up") and got.get("lanes_up") == 6
                             and got.get("during", {}).get("alive"))
        runs.append(got)
        print(f"run {i + 1}: outage {outage} s -> {'pass' if got['passed'] else 'FAIL'} {got}",
              flush=True)
    passed = sum(r["passed"] for r in runs)
    result = {"runs": len(runs), "passed": passed, "records": 16_000, "results": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    table = Table(title=f"broker restart mid-stream: {passed} of {len(runs)} runs give replay's tasks")
    for col in ("run", "outage s", "tasks before", "after (expected)", "missing", "extra",
                "lost logs", "worker up", "exit"):
        table.add_column(col, justify="right")
    for i, r in enumerate(runs, 1):
        table.add_row(str(i), f"{r['outage_s']:g}", str(r.get("tasks_before", "-")),
                      f"{r.get('tasks_after', '-')} ({r.get('expected_after', '-')})",
                      str(r.get("missing", "-")), str(r.get("extra", "-")),
                      f"{r.get('log_resets', 0):g}", str(r.get("worker_up", "-")),
                      str(r.get("exit_code", r.get("error", "-"))))
    Console().print(table)


if __name__ == "__main__":
    main()
