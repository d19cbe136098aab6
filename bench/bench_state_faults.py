"""Issue 19's table, measured again: faults of the workers mid-stream on a simulated city of at
least 70,000 records, each run's tasks compared with ``zt replay``'s (ids and bytes).

Rows: kill -9 one of 2 workers (bulk feed, and paced at 3,000 records/s), kill -9 the only
worker (paced), SIGTERM one of 2 and restart it (bulk), a third worker joining (paced), a
rolling restart of 2 (paced). Each run has its own embedded broker and draws the moment of the
fault at random (a fraction of the traffic consumed). Writes bench/results/state_faults.json
and prints the table.

    .venv/bin/python bench/bench_state_faults.py [--runs 5] [--persons 2030] [--days 8]
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

from streams.broker import EmbeddedBroker, free_port
from tests.faults import replay_tasks, simulated_city, worker_fault

ROWS = [  # (label, fault, rate)
    ("kill -9 one of 2 workers, bulk feed", "kill_one_of_two", None),
    ("kill -9 one of 2 workers, paced 3k/s", "kill_one_of_two", 3000),
    ("kill -9 the only worker, paced 3k/s", "kill_only", 3000),
    ("SIGTERM one of 2 workers and restart, bulk", "sigterm_restart", None),
    ("a third worker joins, paced 2k/s", "third_joins", 2000),
    ("rolling restart of 2 workers, paced 1.2k/s", "rolling_restart", 1200),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--persons", type=int, default=2030)
    ap.add_argument("--days", type=int, default=8)
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--rows", default="", help="comma-separated row numbers (1-based; all)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/state_faults.json"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp())
    reference, traffic = simulated_city(args.persons, args.days, 5, work)
    expected = replay_tasks(reference + traffic, work)
    chosen = [int(x) - 1 for x in args.rows.split(",")] if args.rows else range(len(ROWS))
    rows = []
    for r in chosen:
        label, fault, rate = ROWS[r]
        runs = []
        for i in range(args.runs):
            at = round(rng.uniform(0.15, 0.7), 3)
            run_dir = work / f"row{r + 1}-run{i + 1}"
            run_dir.mkdir()
            broker = EmbeddedBroker(port=free_port(), log_path=run_dir / "tansu.log").start()
            started = time.monotonic()
            try:
                got = worker_fault(fault, broker.bootstrap, run_dir, f"zt-b{r}{i}", reference,
                                   traffic, expected, at=at, rate=rate)
            except Exception as e:  # a run that broke is a failed run, reported as such
                got = {"fault": fault, "at": at, "error": repr(e)}
            finally:
                broker.stop()
            got["wall_s"] = round(time.monotonic() - started, 1)
            runs.append(got)
            print(f"{label} run {i + 1}: {got}", flush=True)
        rows.append({"row": label, "fault": fault, "rate": rate, "runs": runs,
                     **{k: [x.get(k) for x in runs] for k in ("extra", "missing", "same_id_other_bytes")}})
    result = {"records": len(reference) + len(traffic), "persons": args.persons, "days": args.days,
              "replay_tasks": len(expected), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    table = Table(title=f"worker faults mid-stream, {result['records']:,} records, replay gives "
                  f"{len(expected)} tasks ({args.runs} runs a row)")
    for col in ("fault mid-stream", "tasks extra", "tasks missing", "same id, other bytes"):
        table.add_column(col, justify="left" if col.startswith("fault") else "right")
    for row in rows:
        table.add_row(row["row"], *(" / ".join(str(v) for v in row[k])
                                    for k in ("extra", "missing", "same_id_other_bytes")))
    Console().print(table)


if __name__ == "__main__":
    main()
