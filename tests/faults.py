"""Fault scenarios on the real broker and a real worker process, for the fault tests and for
``bench/bench_broker_restart.py`` (which runs the broker restart ten times and reports).

Every scenario compares what the worker sent on ``warning-tasks`` with what ``zt replay`` gives
for the same records: byte for byte, as sets of task records.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson

from streams import feed
from streams.bench import BenchCity
from streams.broker import EmbeddedBroker, free_port
from streams.decisions import load_rules
from streams.processes import WorkerProcess
from streams.replay import replay

Records = list[tuple[str, Any]]


def city(traffic: int, persons: int = 2000, listed: int = 100) -> tuple[Records, Records]:
    """A bench city's reference (registry, watch lists) and ``traffic`` records of calls and
    transfers, in the order a feed sends them."""
    c = BenchCity(persons=persons, listed=listed)
    return list(c.reference()), list(c.traffic(traffic))


def simulated_city(persons: int, days: int, seed: int, work: Path) -> tuple[Records, Records]:
    """A simulated city (``zt simulate``): its registry and watch lists, then the rest (calls,
    transfers, case reports), in the order a feed sends them. Fraud episodes, mules and their
    victims make decisions depend on what the state remembers, not only on the record."""
    from streams.simulator import simulate

    path = work / "city.jsonl"
    simulate(persons, days, seed=seed, out=path)
    records = [(e["topic"], e["value"]) for e in map(orjson.loads, path.read_bytes().splitlines())]
    reference = [(t, v) for t, v in records if t in ("registry", "watchlist")]
    return reference, [(t, v) for t, v in records if t not in ("registry", "watchlist")]


def replay_tasks(records: Records, work: Path) -> set[bytes]:
    """The task records ``zt replay`` writes for ``records`` (the city rules, as the workers)."""
    events = work / "events.jsonl"
    events.write_bytes(b"".join(  # (raw records as they are: orjson cannot write 1,000 deep)
        b'{"topic":' + orjson.dumps(t) + b',"value":' + (v if isinstance(v, bytes) else orjson.dumps(v))
        + b"}\n" for t, v in records))
    replay(events, work / "replay.jsonl", ruleset=load_rules("default"))
    return set((work / "replay.jsonl").read_bytes().splitlines())


def tasks_on(bootstrap: str, idle_s: float = 2.0, timeout_s: float = 60.0) -> set[bytes]:
    """Every task on ``warning-tasks`` once none has come for ``idle_s``."""
    return {m.value for m in feed.read_messages(bootstrap, "warning-tasks", timeout_s=timeout_s,
                                                idle_s=idle_s)}


def wait_for(what: str, ok: Any, timeout_s: float = 60.0, every_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)


def wait_quiet(w: WorkerProcess, quiet_s: float = 3.0, timeout_s: float = 90.0) -> None:
    """Until the worker's decide stage has decided nothing new for ``quiet_s``."""
    last, since = -1.0, time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() - since < quiet_s:
        now = w.metric("zt_stage_events_total", stage="decide")
        if now != last:
            last, since = now, time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError("the worker never went quiet")
        time.sleep(0.2)


def broker_restart(outage_s: float, work: Path, traffic: int = 16_000) -> dict[str, Any]:
    """Half a city through a worker, the broker stopped for ``outage_s`` and started again on
    the same address (empty: memory storage), the reference sent again and the second half.
    What the worker must do: stay up and alive through the outage (not ready), say the broker
    lost its logs, resume by itself, and send replay's tasks for everything."""
    work.mkdir(parents=True, exist_ok=True)
    reference, records = city(traffic)
    half = len(records) // 2
    expected = replay_tasks(reference + records, work)
    port = free_port()
    broker = EmbeddedBroker(port=port, log_path=work / "tansu-1.log").start()
    w = WorkerProcess(broker.bootstrap, work / "worker.log", group="zt-restart",
                      args=("--models", "none"))
    out: dict[str, Any] = {"outage_s": outage_s, "expected_tasks": len(expected)}
    try:
        w.wait_ready(timeout=60)
        feed.produce(broker.bootstrap, reference)
        w.wait_metric("zt_reference_entries", 2000, table="registry", timeout=60)
        w.wait_metric("zt_reference_entries", 100, table="watchlist", timeout=60)
        feed.produce(broker.bootstrap, records[:half])
        wait_for("first half consumed", lambda: w.metric("zt_records_consumed_total", topic="calls")
                 + w.metric("zt_records_consumed_total", topic="transactions") >= half)
        wait_quiet(w)
        before = tasks_on(broker.bootstrap)
        out["tasks_before"] = len(before)

        broker.stop()
        stopped = time.monotonic()
        wait_for("the worker sees the broker gone", lambda: w.metric("zt_broker_up") == 0, 30)
        out["during"] = {"healthz": w.health("/healthz")[0], "readyz": w.health("/readyz")[0],
                         "alive": w.proc.poll() is None}
        time.sleep(max(0.0, outage_s - (time.monotonic() - stopped)))
        broker = EmbeddedBroker(port=port, log_path=work / "tansu-2.log").start()
        wait_for("broker up again, its lost logs said", lambda: w.proc.poll() is not None or (
            w.metric("zt_broker_up") == 1 and w.metric("zt_broker_log_resets_total") > 0), 90)
        out["log_resets"] = w.metric("zt_broker_log_resets_total")
        wait_for("ready again", lambda: w.proc.poll() is not None or w.health("/readyz")[0] == 200,
                 60)
        registry_read = w.metric("zt_records_consumed_total", topic="registry")
        feed.produce(broker.bootstrap, reference)  # what an operator does: the broker lost it
        wait_for("the registry read again", lambda: w.proc.poll() is not None or w.metric(
            "zt_records_consumed_total", topic="registry") >= registry_read + 2000, 60)
        feed.produce(broker.bootstrap, records[half:])
        want_after = expected - before
        after: set[bytes] = set()
        deadline = time.monotonic() + 120
        while not want_after <= after and time.monotonic() < deadline and w.proc.poll() is None:
            after = tasks_on(broker.bootstrap, idle_s=2.0, timeout_s=30)
        out |= {"tasks_after": len(after), "expected_after": len(want_after),
                "missing": len(expected - (before | after)), "extra": len(after - expected),
                "equal": (before | after) == expected and after == want_after,
                "worker_up": w.proc.poll() is None,
                "lanes_up": w.metric("zt_lane_up") if w.proc.poll() is None else 0.0,
                "healthz": w.health("/healthz")[0] if w.proc.poll() is None else None}
        w.stop()
        out["exit_code"] = w.proc.returncode
        return out
    finally:
        if w.proc.poll() is None:
            w.kill()
        broker.stop()


# --- durable state: faults of the workers themselves -------------------------------------------

STATE_FAULTS = ("kill_only", "kill_one_of_two", "sigterm_restart", "third_joins", "rolling_restart",
                "dies_after_person_state", "dies_in_person_state")

# The narrowest moments of a checkpoint, pinned rather than drawn: the worker kills itself (-9)
# in its first checkpoint with records for ``{topic}``: for the line/account changelog, once
# every person record of it is on the broker and before any line/account record is; for the
# person changelog, with half its partitions written (``{half}``). A restart must resume from
# the last complete checkpoint.
DIE_IN_CHECKPOINT = """
import asyncio, os, signal
from streams.runtime import changelog
_send = changelog.StageStore.send
async def send(self, producer, records):
    if records and self.topic == "{topic}":
        half = {{p: records[p] for p in sorted(records)[:len(records) // 2]}} if {half} else {{}}
        if half:
            await asyncio.gather(*(await _send(self, producer, half)))
        os.kill(os.getpid(), signal.SIGKILL)
    return await _send(self, producer, records)
changelog.StageStore.send = send
"""


def compare(got: set[bytes], expected: set[bytes]) -> dict[str, int]:
    """Tasks extra, missing, and ids sent with bytes other than replay's."""
    want = {orjson.loads(t)["task_id"]: t for t in expected}
    differs = {orjson.loads(t)["task_id"] for t in got if orjson.loads(t)["task_id"] in want
               and want[orjson.loads(t)["task_id"]] != t}
    return {"extra": len(got - expected), "missing": len(expected - got),
            "same_id_other_bytes": len(differs)}


def _consumed(w: WorkerProcess) -> float:
    try:
        return (w.metric("zt_records_consumed_total", topic="calls")
                + w.metric("zt_records_consumed_total", topic="transactions"))
    except OSError:
        return 0.0


def paced(bootstrap: str, records: Records, rate: float) -> threading.Thread:
    """Send ``records`` at ``rate`` a second from a thread (a live feed); started."""

    def run() -> None:
        prod = feed.producer(bootstrap)
        start, step = time.monotonic(), max(int(rate / 20), 1)
        try:
            for i in range(0, len(records), step):
                for topic, value in records[i:i + step]:
                    feed.send(prod, topic, value)
                time.sleep(max(0.0, start + (i + step) / rate - time.monotonic()))
            prod.flush(30)
        finally:
            prod.close(5)

    thread = threading.Thread(target=run, name="paced-feed", daemon=True)
    thread.start()
    return thread


def worker_fault(fault: str, bootstrap: str, work: Path, group: str, reference: Records,
                 traffic: Records, expected: set[bytes], at: float,
                 models: tuple[str, ...] = ("--models", "none"), rate: float | None = None
                 ) -> dict[str, Any]:
    """Feed ``reference`` then ``traffic`` (bulk, or at ``rate`` records a second) to the
    workers of ``group``, do ``fault`` once the group has consumed the fraction ``at`` of the
    traffic, let everything settle, and compare the tasks on warning-tasks with replay's
    (``expected``)."""
    assert fault in STATE_FAULTS, fault
    n = 0

    dies = fault.startswith("dies_")
    # A bulk feed is a backlog: checkpoints every 0.5 s in it, as live, so a crash finds state
    # to restore mid-backlog and events still to decide (the default, 30 s, would checkpoint
    # once the backlog is through: a restart would have nothing left to get wrong).
    args = models if rate is not None else (*models, "--commit-behind-s", "0.5")

    def start(prelude: str = "") -> WorkerProcess:
        nonlocal n
        n += 1
        return WorkerProcess(bootstrap, work / f"worker-{n}.log", group=group, args=args,
                             prelude=prelude)

    if dies:
        from streams.topics import ENTITY_STATE, PERSON_STATE
        topic = ENTITY_STATE if fault == "dies_after_person_state" else PERSON_STATE
        # The first checkpoint with line/account records: in a bulk feed it holds most keys (a
        # later one, of fewer keys, did not show a checkpoint written in the wrong order).
        doomed = start(DIE_IN_CHECKPOINT.format(topic=topic, half=topic == PERSON_STATE))

    workers = [doomed] if dies else [start() for _ in range(1 if fault == "kill_only" else 2)]
    out: dict[str, Any] = {"fault": fault, "at": round(at, 3), "rate": rate,
                           "expected": len(expected)}
    started = time.monotonic()
    try:
        for w in workers:
            w.wait_ready(timeout=90)
        feed.produce(bootstrap, reference)
        n_registry = len({v["person_id"] for t, v in reference if t == "registry"})
        n_watch = len({v["value"] for t, v in reference if t == "watchlist"})
        for w in workers:
            w.wait_metric("zt_reference_entries", n_registry, table="registry", timeout=60)
            w.wait_metric("zt_reference_entries", n_watch, table="watchlist", timeout=60)
        if rate is None:
            feed.produce(bootstrap, traffic)
        else:
            paced(bootstrap, traffic, rate)
        volume = sum(1 for t, _ in traffic if t in ("calls", "transactions"))
        if dies:
            wait_for("the worker's death in a checkpoint", lambda: doomed.proc.poll() is not None,
                     timeout_s=120)
            out["exit_code"] = doomed.proc.returncode
            workers = [start()]
        else:
            wait_for("the fault's moment", lambda: sum(_consumed(w) for w in workers)
                     >= at * volume, timeout_s=120, every_s=0.02)
            victim = workers[0]
            if fault in ("kill_only", "kill_one_of_two"):
                victim.kill()
                workers = [start()] if fault == "kill_only" else workers[1:]
            elif fault == "sigterm_restart":
                victim.stop()
                out["exit_code"] = victim.proc.returncode
                workers = [start(), *workers[1:]]
            elif fault == "third_joins":
                workers.append(start())
            else:  # rolling_restart: each in turn, the next once its replacement is up
                for i in range(len(workers)):
                    workers[i].stop()
                    workers[i] = start()
                    workers[i].wait_ready(timeout=90)
        got: set[bytes] = set()
        deadline = time.monotonic() + 180
        while not expected <= got and time.monotonic() < deadline:
            got = tasks_on(bootstrap, idle_s=2.0, timeout_s=30)
        got = tasks_on(bootstrap, idle_s=3.0, timeout_s=30)  # and nothing more after it
        out |= compare(got, expected)
        out["tasks"] = len(got)
        out["seconds"] = round(time.monotonic() - started, 1)
        out["workers_up"] = sum(w.proc.poll() is None for w in workers)
        return out
    finally:
        for w in workers:
            w.stop()
