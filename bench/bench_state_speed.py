"""Durable state's cost in speed, and what recovery costs: this tree against a baseline tree
(the code before it), measured alternately within one run on the same machine.

Two files: the bench file (``zt bench``'s city, 100,000 traffic records) and a resident-heavy
simulated city (``zt simulate --persons 20000 --days 8``: most calls between registered
residents, two person events per call). For each, each version, each round:

* replay in one process and with 2 jobs (records/s);
* one worker draining the whole file from the broker (a fresh embedded broker; input records/s
  from its first record read to 99% of its person events decided and 99% of its state
  written; ``worker_decided``: to 99% decided alone, without the checkpoint after the backlog),
  the bytes it wrote to the changelogs, then the worker stopped and started again: how long
  its restore took.

Versions run as subprocesses with their own tree on ``sys.path`` (the baseline: a checkout of
the earlier commit, e.g. ``git archive main | tar -x -C /tmp/base``). Writes
bench/results/state_speed.json and prints ratios (this tree / baseline; only ratios within one
run mean anything on a shared machine).

    .venv/bin/python bench/bench_state_speed.py --baseline /tmp/base [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from streams import feed  # noqa: E402
from streams.bench import BenchCity  # noqa: E402
from streams.broker import EmbeddedBroker, free_port  # noqa: E402
from streams.processes import WorkerProcess  # noqa: E402

REPLAY = """
import sys, time
from pathlib import Path
from streams.replay import replay
s = replay(Path(sys.argv[1]), Path(sys.argv[2]), jobs=int(sys.argv[3]))
print(s.lines / s.seconds)
"""


def replay_rate(tree: Path, events: Path, jobs: int, work: Path) -> float:
    out = subprocess.run([sys.executable, "-c", REPLAY, str(events), str(work / "tasks.jsonl"),
                          str(jobs)], cwd=tree, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


class TreeWorker(WorkerProcess):
    """``zt worker`` run from ``tree`` (its own ``streams`` package)."""

    def __init__(self, tree: Path, bootstrap: str, log: Path, group: str):
        prelude = f"import sys; sys.path.insert(0, {str(tree)!r})"
        super().__init__(bootstrap, log, group=group, args=("--models", "none"), prelude=prelude)


def scrape(w: TreeWorker) -> dict[str, Any]:
    """One scrape of the worker: input records consumed, person events decided, changelog
    bytes written, and the person events its latest completed checkpoint holds (None: a tree
    without the metric)."""
    got: dict[str, Any] = {"consumed": 0.0, "decided": 0.0, "written": 0.0, "durable": None}
    for name, labels, value in w.samples():
        if name == "zt_records_consumed_total" and labels.get("topic") in ("calls", "transactions"):
            got["consumed"] += value
        elif name == "zt_stage_events_total" and labels.get("stage") == "decide":
            got["decided"] += value
        elif name == "zt_state_changelog_bytes_total":
            got["written"] += value
        elif name == "zt_checkpoint_stage_events" and labels.get("stage") == "decide":
            got["durable"] = value
    return got


def drain(tree: Path, records: list[tuple[str, Any]], work: Path) -> dict[str, Any]:
    """A worker drains ``records`` (reference first, loaded, then the rest as a backlog)."""
    reference = [(t, v) for t, v in records if t in ("registry", "watchlist")]
    traffic = [(t, v) for t, v in records if t not in ("registry", "watchlist")]
    persons = len({v["person_id"] for t, v in reference if t == "registry"})
    volume = sum(1 for t, _ in traffic if t in ("calls", "transactions"))
    broker = EmbeddedBroker(port=free_port(), log_path=work / "tansu.log").start()
    w = TreeWorker(tree, broker.bootstrap, work / "worker-1.log", "zt-speed")
    try:
        w.wait_ready(timeout=120)
        feed.produce(broker.bootstrap, reference)
        w.wait_metric("zt_reference_entries", persons, table="registry", timeout=120)
        w.stop()  # the backlog first, then the worker: it drains at full speed
        feed.produce(broker.bootstrap, traffic)
        w = TreeWorker(tree, broker.bootstrap, work / "worker-2.log", "zt-speed")
        samples: list[tuple[float, float, float, float | None]] = []  # (t, decided, bytes, held)
        start = None
        changed = time.perf_counter()
        deadline = time.monotonic() + 120
        while True:
            # From the process's start on (its lanes may read before it logs ready).
            try:
                m = scrape(w)
            except OSError:  # (its metrics endpoint is not up yet)
                if w.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker not serving metrics:\n{w.tail()}") from None
                time.sleep(0.05)
                continue
            now = time.perf_counter()
            if m["consumed"] == 0:
                # The last answer with nothing consumed yet: the drain starts after it (a busy
                # worker may answer its next scrape only once it is done).
                start = now
            samples.append((now, m["decided"], m["written"], m["durable"]))
            if len(samples) == 1 or samples[-1][1:3] != samples[-2][1:3]:
                changed = now
            # (A checkpoint takes seconds; a backlog released at once reaches the person stage
            # seconds after the last record is read.)
            if m["consumed"] >= volume and m["decided"] > 0 and now - changed > 5:
                break
            time.sleep(0.1)
        _, final, written, _ = samples[-1]
        # The drain ends once 99% of its person events are decided and a checkpoint that
        # captured them has completed (a backlog released at once is checkpointed after it:
        # that is its cost too; the last 1% waits for the quiet inputs' release, and its own
        # checkpoint with it). A tree without the checkpoint metric (before durable state) has
        # nothing to write: its drain ends when it is decided.
        decided = next(t for t, c, *_ in samples if c >= 0.99 * final)
        end = decided if samples[-1][3] is None else max(decided, next(
            t for t, _, _, d in samples if d is not None and d >= 0.99 * final))
        assert start is not None
        out = {"records": volume, "seconds": round(end - start, 2),
               "records_per_s": round(volume / (end - start)), "changelog_bytes": written,
               # (the same drain to 99% decided alone: without the checkpoint after it)
               "decided_seconds": round(decided - start, 2)}
        w.stop()
        if not (tree / "streams" / "runtime" / "changelog.py").exists():
            return out  # (a tree without durable state has nothing to restore)
        # Recovery: the same worker again, its state read back from the changelogs.
        w = TreeWorker(tree, broker.bootstrap, work / "worker-3.log", "zt-speed")
        w.wait_ready(timeout=120)
        deadline = time.monotonic() + 120
        while w.log.read_text().count("restored partitions") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        out["restore_seconds"] = round(w.metric("zt_state_restore_seconds_sum"), 2)
        out["restore_log"] = [line.split("] ", 3)[-1].strip() for line in
                              w.log.read_text().splitlines() if "restored partitions" in line]
        return out
    finally:
        w.stop()
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", type=Path, required=True, help="the earlier tree")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bench-records", type=int, default=100_000)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("bench/results/state_speed.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zt-state-speed-"))
    files = {}
    city = BenchCity()
    files["bench"] = [*city.reference(), *city.traffic(args.bench_records)]
    subprocess.run([sys.executable, "-m", "streams.cli", "simulate", "--persons", str(args.persons),
                    "--days", str(args.days), "--out", str(work / "residents.jsonl"), "--quiet"],
                   check=True, cwd=HERE)
    files["residents"] = [(e["topic"], e["value"]) for e in
                          map(orjson.loads, (work / "residents.jsonl").read_bytes().splitlines())]
    paths = {}
    for name, records in files.items():
        paths[name] = work / f"{name}.jsonl"
        paths[name].write_bytes(b"".join(orjson.dumps({"topic": t, "value": v}) + b"\n"
                                         for t, v in records))
    trees = {"baseline": args.baseline.resolve(), "this": HERE}
    runs: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for name in files:
            for version, tree in trees.items():
                d = work / f"{name}-{version}-{r}"
                d.mkdir()
                row: dict[str, Any] = {"round": r + 1, "file": name, "version": version}
                row["replay_1"] = round(replay_rate(tree, paths[name], 1, d))
                row["replay_2"] = round(replay_rate(tree, paths[name], 2, d))
                row["worker"] = drain(tree, files[name], d)
                runs.append(row)
                print(json.dumps(row), flush=True)
    summary: dict[str, Any] = {}
    for name in files:
        for measure in ("replay_1", "replay_2", "worker", "worker_decided"):
            ratios = []
            for r in range(args.rounds):
                got = {x["version"]: x for x in runs if x["file"] == name and x["round"] == r + 1}
                value = {v: (x[measure] if measure.startswith("replay") else
                             x["worker"]["records_per_s"] if measure == "worker" else
                             x["worker"]["records"] / x["worker"]["decided_seconds"])
                         for v, x in got.items()}
                ratios.append(round(value["this"] / value["baseline"], 3))
            summary[f"{name}/{measure}"] = {"ratios": ratios, "median": statistics.median(ratios)}
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": {
        "bench": {"records": len(files["bench"])},
        "residents": {"records": len(files["residents"]), "persons": args.persons, "days": args.days}},
        "ratios_this_over_baseline": summary, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for k, v in summary.items():
        print(f"{k:24s} this/baseline {v['median']:.3f}  (rounds {v['ratios']})")


if __name__ == "__main__":
    main()
