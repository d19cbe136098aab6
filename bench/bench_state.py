"""Memory of the streaming state per million persons, measured on a simulated city.

Replays a simulated city through the core (all three stages in one process), then measures the
memory the state holds (tracemalloc: Python objects only) and divides by the persons, lines and
accounts it tracks. Writes bench/results/state.json and prints a table.

    .venv/bin/python bench/bench_state.py [--persons 20000] [--days 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import tracemalloc
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from streams.core import Core
from streams.decisions import load_rules
from streams.simulator.run import ReplayWriter, build_city, run_city


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("bench/results/state.json"))
    args = ap.parse_args()
    events = Path(tempfile.mkdtemp()) / "city.jsonl"
    city = build_city(args.persons, args.days, 5, None, None)
    writer = ReplayWriter(events)
    run_city(city, [writer], None)
    writer.close()

    gc.collect()
    tracemalloc.start()
    core = Core(ruleset=load_rules("default"), batch=1024)
    with events.open("rb") as f:
        for line in f:
            env = orjson.loads(line)
            core.feed(env["topic"], env["value"])
    core.finish()
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    persons = len(core.decider.persons)
    ref_persons = len(core.reference.persons)
    result = {
        "persons_in_city": args.persons, "days": args.days,
        "persons_with_state": persons, "lines_with_state": len(core.entities.lines),
        "accounts_with_state": len(core.entities.accounts),
        "bytes_held": held, "bytes_per_registered_person": round(held / max(ref_persons, 1)),
        "mib_per_million_persons": round(held / max(ref_persons, 1) * 1e6 / 2**20),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    t = Table(title="streaming state memory (tracemalloc, after the replay)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k, v in result.items():
        t.add_row(k, f"{v:,}")
    Console().print(t)


if __name__ == "__main__":
    main()
