"""``zt demo``: the whole loop on the embedded default, start to finish, on 127.0.0.1.

Starts the broker, a worker and the desk service; simulates a small city (``zt simulate``);
feeds it through the broker (reference data first, then traffic, as the feeds would); prints the
warning tasks the worker sends with their reasons and the users' figures; checks the tasks
against a replay of the same records; and shuts everything down.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from importlib import resources
from pathlib import Path

import orjson
from rich.console import Console

from services.desk.cli import demo_logins
from streams import feed
from streams.broker import BrokerError, EmbeddedBroker, free_port
from streams.decisions import load_rules
from streams.privacy import mask_msisdn
from streams.processes import WorkerProcess
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


def simulate_city(path: Path, persons: int, days: int, seed: int) -> None:
    from streams.simulator.run import ReplayWriter, build_city, run_city

    writer = ReplayWriter(path)
    try:
        run_city(build_city(persons, days, seed), [writer])
    finally:
        writer.close()


def start_desk(bootstrap: str, work: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "desk", "--demo", "--bootstrap", bootstrap,
         "--port", str(port), "--db", str(work / "desk.sqlite3")],
        stdout=(work / "desk.log").open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 90  # imports and migrations: seconds, more on a busy machine
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the desk service did not start: {(work / 'desk.log').read_text()[-1500:]}")


def run_demo(port: int = 0, metrics_port: int = 9410, keep: bool = False,
             console: Console | None = None, persons: int = 3000, days: int = 3,
             seed: int = 7, desk_port: int = 8070) -> int:
    con = console or Console()
    work = Path(tempfile.mkdtemp(prefix="zt-demo-"))
    broker = EmbeddedBroker(port=port or free_port(), log_path=work / "broker.log")
    worker: WorkerProcess | None = None
    desk: subprocess.Popen[bytes] | None = None
    try:
        events = work / "city.jsonl"
        with con.status(f"simulating a city of {persons:,} persons over {days} days"):
            simulate_city(events, persons, days, seed)
        con.print(f"city    {persons:,} persons, {days} days, seed {seed} -> {events}")
        t0 = time.monotonic()
        with con.status("starting the embedded broker"):
            broker.start()
        con.print(f"broker  [bold]{broker.bootstrap}[/] (Tansu, memory storage) "
                  f"in {time.monotonic() - t0:.1f} s")
        with con.status("starting a worker (Faust app + lean lanes)"):
            worker = WorkerProcess(broker.bootstrap, work / "worker.log", metrics_port=metrics_port)
            worker.wait_ready()
        con.print(f"worker  metrics at [bold]{worker.metrics_url}[/]  (log {worker.log})")
        with con.status("starting the desk service"):
            desk = start_desk(broker.bootstrap, work, desk_port)
        con.print(f"desk    [bold]http://127.0.0.1:{desk_port}/[/] for police desks and bank "
                  f"liaisons; demo logins:\n{demo_logins()}")

        expected = replay(events, work / "replay-tasks.jsonl", ruleset=load_rules("default"))
        want = sum(expected.tasks.values())
        reference, traffic = split_sample(events)
        traffic += BAD_RECORDS
        with con.status("feeding the city through the broker"):
            feed.produce(broker.bootstrap, reference)
            persons_loaded = sum(1 for t, _ in reference if t == "registry")
            worker.wait_metric("zt_reference_entries", persons_loaded, timeout=60, table="registry")
            feed.produce(broker.bootstrap, traffic)
        con.print(f"fed     {len(reference):,} reference records and {len(traffic):,} traffic "
                  f"records ({len(BAD_RECORDS)} deliberately invalid)")
        with con.status(f"waiting for {want} warning tasks"):
            raw = [m.value for m in feed.read_messages(broker.bootstrap, "warning-tasks",
                                                       until=want, timeout_s=120)]
        _print_tasks(con, [orjson.loads(r) for r in raw])
        _print_figures(con, expected.figures)
        dead = feed.read(broker.bootstrap, "dead-letter", timeout_s=5, idle_s=1.0)
        for d in dead:
            con.print(f"dead-letter  {d['reason']}", soft_wrap=True)
        same = sorted(raw) == sorted((work / "replay-tasks.jsonl").read_bytes().splitlines())
        con.print(f"replay of the same records gives the same tasks, byte for byte: "
                  f"[bold]{'yes' if same else 'NO'}[/]")
        _print_metrics(con, worker)
        if keep:
            con.print("running until Ctrl-C (broker "
                      f"{broker.bootstrap}, metrics {worker.metrics_url}, desk "
                      f"http://127.0.0.1:{desk_port}/)")
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
            if desk is not None:
                desk.terminate()
                try:
                    desk.wait(15)
                except subprocess.TimeoutExpired:
                    desk.kill()
            if worker is not None:
                worker.stop()
            broker.stop()
        con.print("stopped: desk service, worker, broker")


# What a feed can get wrong; the demo shows where it goes (dead-letter, with the reason).
BAD_RECORDS: list[tuple[str, bytes]] = [
    ("calls", b'{"event_id":"cdr-bad-1","event_time":"2026-03-02T09:00:00+08:00","carrier":"CMCC",'
              b'"kind":"voice","caller":"13912345678","callee":"+8613912340001","answered":true,'
              b'"duration_s":60,"caller_origin":"domestic"}'),
    ("transactions", b'{"event_id":"txn-bad-1","event_time":"2026-03-02T09:01:00+08:00",'
                     b'"txn_id":"X-1","status":"completed","bank":"ICBC","payer_account":'
                     b'"6222020200110001","payee_account":"6217000099990001","payee_bank":"CCB",'
                     b'"amount_fen":12.5,"currency":"CNY","channel":"mobile_app"}'),
    ("calls", b'{"event_id": "cdr-bad-2", "event_time": '),
]


def _print_figures(con: Console, f: dict[str, float]) -> None:
    con.print(
        f"figures: warned {f['warned_persons']:,.0f} people; {f['calls']:,.0f} calls, "
        f"{f['visits']:,.0f} visits, {f['holds']:,.0f} holds ({f['hold_requested_cny']:,.0f} CNY), "
        f"{f['stop_payments']:,.0f} stop-payments ({f['stop_requested_cny']:,.0f} CNY)"
        + ("; no desk answers in this demo, so overdue calls escalate to visits"
           if f["calls"] else ""), soft_wrap=True)


def _print_tasks(con: Console, tasks: list[dict], show: int = 12) -> None:
    con.print(f"[bold]{len(tasks)} warning tasks[/] on warning-tasks; the first {min(show, len(tasks))}:")
    for t in sorted(tasks, key=lambda t: t["created_time"])[:show]:
        con.print(f"  {t['created_time']}  [bold]{t['action']}[/] priority {t['priority']}  "
                  f"district {t['district']}  person {t['person_id']}  "
                  + (f"contact {mask_msisdn(t['contact_msisdn'])}  " if "contact_msisdn" in t else "")
                  + (f"{t['amount_fen'] / 100:,.0f} CNY  " if "amount_fen" in t else "")
                  + f"risk {t['risk_score']:.2f}  "
                  f"due {t['due_time'][11:19]}  id {t['task_id']}", soft_wrap=True)
        for r in t["reasons"]:
            con.print(f"      {r['code']}: {r['detail']}", soft_wrap=True)


def _print_metrics(con: Console, worker: WorkerProcess) -> None:
    names = ("zt_records_consumed_total", "zt_records_rejected_total", "zt_tasks_emitted_total",
             "zt_event_to_task_seconds_count", "zt_event_to_task_seconds_sum")
    got = {n: worker.metric(n) for n in names}
    mean = got["zt_event_to_task_seconds_sum"] / max(got["zt_event_to_task_seconds_count"], 1)
    con.print(f"metrics: consumed {got['zt_records_consumed_total']:.0f}, rejected "
              f"{got['zt_records_rejected_total']:.0f}, tasks {got['zt_tasks_emitted_total']:.0f}, "
              f"mean event-to-task {mean * 1000:.0f} ms (the city is fed in bulk: records wait "
              "behind the backlog, the last ones for the idle flush; `zt bench` measures a live "
              "feed)")
