"""``zt demo``: the whole loop on the embedded default, start to finish, on 127.0.0.1.

Starts the broker and a worker, feeds the built-in sample city (reference data first, then
traffic), prints the warning tasks the worker sends with their reasons, checks them against a
replay of the same records, and shuts everything down.
"""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

import orjson
from rich.console import Console

from streams import feed
from streams.broker import BrokerError, EmbeddedBroker, free_port
from streams.privacy import mask_msisdn
from streams.processes import WorkerProcess
from streams.decisions import load_rules
from streams.replay import replay

REFERENCE_TOPICS = ("registry", "watchlist")


def sample_path() -> Path:
    return Path(str(resources.files("streams") / "sample" / "city.jsonl"))


def split_sample(path: Path) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """Reference records and traffic, as raw values a feed would send (bad ones included)."""
    reference, traffic = [], []
    for line in path.read_bytes().splitlines():
        try:
            env = orjson.loads(line)
            topic, value = env["topic"], orjson.dumps(env["value"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # a broken replay line has no topic, so no feed could send it
        (reference if topic in REFERENCE_TOPICS else traffic).append((topic, value))
    return reference, traffic


def run_demo(port: int = 0, metrics_port: int = 9410, keep: bool = False,
             console: Console | None = None) -> int:
    con = console or Console()
    work = Path(tempfile.mkdtemp(prefix="zt-demo-"))
    events = sample_path()
    broker = EmbeddedBroker(port=port or free_port(), log_path=work / "broker.log")
    worker: WorkerProcess | None = None
    try:
        t0 = time.monotonic()
        with con.status("starting the embedded broker"):
            broker.start()
        con.print(f"broker  [bold]{broker.bootstrap}[/] (Tansu, memory storage) "
                  f"in {time.monotonic() - t0:.1f} s")
        with con.status("starting a worker (Faust app + lean lanes)"):
            worker = WorkerProcess(broker.bootstrap, work / "worker.log", metrics_port=metrics_port)
            worker.wait_ready()
        con.print(f"worker  metrics at [bold]{worker.metrics_url}[/]  (log {worker.log})")

        expected = replay(events, work / "replay-tasks.jsonl", ruleset=load_rules("default"))
        want = sum(expected.tasks.values())
        reference, traffic = split_sample(events)
        with con.status("feeding the sample city"):
            feed.produce(broker.bootstrap, reference)
            n_watch = sum(1 for t, _ in reference if t == "watchlist")
            worker.wait_metric("zt_reference_entries", n_watch - 1, table="watchlist")
            feed.produce(broker.bootstrap, traffic)
        con.print(f"fed     {len(reference)} reference records and {len(traffic)} traffic records "
                  f"from {events.name} (3 of them deliberately invalid)")
        with con.status(f"waiting for {want} warning tasks"):
            raw = [m.value for m in feed.read_messages(broker.bootstrap, "warning-tasks",
                                                       until=want, timeout_s=30)]
        _print_tasks(con, [orjson.loads(r) for r in raw])
        dead = feed.read(broker.bootstrap, "dead-letter", timeout_s=5, idle_s=1.0)
        for d in dead:
            con.print(f"dead-letter  {d['reason']}", soft_wrap=True)
        same = sorted(raw) == sorted((work / "replay-tasks.jsonl").read_bytes().splitlines())
        con.print(f"replay of the same records gives the same tasks, byte for byte: "
                  f"[bold]{'yes' if same else 'NO'}[/]")
        _print_metrics(con, worker)
        if keep:
            con.print("running until Ctrl-C (broker "
                      f"{broker.bootstrap}, metrics {worker.metrics_url})")
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            stop.wait()
        return 0 if same and len(raw) == want else 1
    except (BrokerError, TimeoutError, RuntimeError) as e:
        con.print(f"[bold red]demo failed:[/] {e}")
        return 1
    finally:
        with con.status("shutting down"):
            if worker is not None:
                worker.stop()
            broker.stop()
        con.print("stopped: worker, broker")


def _print_tasks(con: Console, tasks: list[dict]) -> None:
    con.print(f"[bold]{len(tasks)} warning tasks[/] on warning-tasks:")
    for t in sorted(tasks, key=lambda t: t["created_time"]):
        con.print(f"  {t['created_time']}  [bold]{t['action']}[/] priority {t['priority']}  "
                  f"district {t['district']}  person {t['person_id']}  "
                  f"contact {mask_msisdn(t.get('contact_msisdn', ''))}  risk {t['risk_score']:.2f}  "
                  f"due {t['due_time'][11:19]}  id {t['task_id']}")
        for r in t["reasons"]:
            con.print(f"      {r['code']}: {r['detail']}", soft_wrap=True)


def _print_metrics(con: Console, worker: WorkerProcess) -> None:
    names = ("zt_records_consumed_total", "zt_records_rejected_total", "zt_tasks_emitted_total",
             "zt_event_to_task_seconds_count", "zt_event_to_task_seconds_sum")
    got = {n: worker.metric(n) for n in names}
    mean = got["zt_event_to_task_seconds_sum"] / max(got["zt_event_to_task_seconds_count"], 1)
    con.print(f"metrics: consumed {got['zt_records_consumed_total']:.0f}, rejected "
              f"{got['zt_records_rejected_total']:.0f}, tasks {got['zt_tasks_emitted_total']:.0f}, "
              f"mean event-to-task {mean * 1000:.0f} ms")
