"""Fault scenarios on the real broker and a real worker process, for the fault tests and for
``bench/bench_broker_restart.py`` (which runs the broker restart ten times and reports).

Every scenario compares what the worker sent on ``warning-tasks`` with what ``zt replay`` gives
for the same records: byte for byte, as sets of task records.
"""

from __future__ import annotations

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
