"""The streaming state per person, measured on a simulated city: as the changelog holds it and
in memory.

Replays a simulated city through the core (all three stages in one process), then measures
what a worker's changelogs would hold for it (every key's record, ``EntityStage.dump`` and
``Decider.dump`` as encoded: the bytes a restore reads when the broker compacts) and the memory
the state holds (tracemalloc: Python objects only), each divided by the registered persons.
Writes bench/results/state.json and prints a table.

    .venv/bin/python bench/bench_state.py [--persons 10000] [--days 30]
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
from streams.runtime.changelog import encode
from streams.simulator.run import ReplayWriter, build_city, run_city


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=30)
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
    ent, dec = core.entities, core.decider
    ladder = dec.ladder
    entity_bytes = sum(len(k) + 1 + len(encode(ent.dump(k))) for k in {*ent.lines, *ent.accounts})
    person_keys = {*dec.persons, *ladder.episodes, *ladder.confirmed, *ladder._of}
    person_bytes = sum(len(k) + 1 + len(encode(dec.dump(k))) for k in person_keys)
    result = {
        "persons_in_city": args.persons, "days": args.days,
        "persons_with_state": persons, "lines_with_state": len(core.entities.lines),
        "accounts_with_state": len(core.entities.accounts),
        "changelog_bytes_per_person": round((entity_bytes + person_bytes) / max(ref_persons, 1)),
        "changelog_entity_bytes_per_person": round(entity_bytes / max(ref_persons, 1)),
        "changelog_person_bytes_per_person": round(person_bytes / max(ref_persons, 1)),
        "memory_bytes_held": held, "memory_bytes_per_person": round(held / max(ref_persons, 1)),
        "mib_per_million_persons": round(held / max(ref_persons, 1) * 1e6 / 2**20),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    t = Table(title="streaming state after the replay: changelog records and memory (tracemalloc)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k, v in result.items():
        t.add_row(k, f"{v:,}")
    Console().print(t)


if __name__ == "__main__":
    main()
