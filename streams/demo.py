"""``zt demo``: the anti-fraud centre at work, start to finish, on 127.0.0.1.

Starts the broker, a worker and the desk service (with a login for every police district and
bank of the city); runs a small city for a few simulated days through the broker, its police
desks, bank liaisons and people answering the worker's warning tasks in the city's event time
(``streams.simulator.centre``); then prints the users' figures read from the live worker's
metrics, the city's losses with and without the pipeline, and a plot; checks that replay of the
same records gives the same tasks, byte for byte, and the same figures; and shuts everything
down. With ``keep``, the city then goes on at a pace a visitor can follow, until Ctrl-C.
"""

from __future__ import annotations

import inspect
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from streams.broker import BrokerError, EmbeddedBroker, free_port
from streams.privacy import mask_msisdn
from streams.processes import WorkerProcess

REFERENCE_TOPICS = ("registry", "watchlist")
# Fraud four times as frequent as the default city's: a city of a few thousand people then
# holds every kind of fraud, with holds, stop-payments and people judged, in a few days.
DEMO_CITY = {"fraud": {"episodes_per_100k_per_day": 250}}
PASSWORDS = {"desk": "demo-desk", "bank": "demo-bank", "ops": "demo-ops"}


def sample_path() -> Path:
    return Path(str(resources.files("streams") / "sample" / "city.jsonl"))


def demo_users(cfg: Any) -> list[tuple[str, str, str]]:
    """(name, role, password): a desk for every police district of the city, a liaison for every
    bank, and an ops login that sees everything. Demo passwords, never for production."""
    pop = cfg["population"]
    return ([(f"desk-{d}", f"desk:{d}", PASSWORDS["desk"]) for d in sorted(pop["districts"])]
            + [(f"bank-{b.lower()}", f"bank:{b}", PASSWORDS["bank"]) for b in sorted(pop["banks"])]
            + [("ops", "ops", PASSWORDS["ops"])])


def write_users(path: Path, users: list[tuple[str, str, str]]) -> Path:
    """The desk service's users file (``services.desk.users``), passwords in the clear (demo)."""
    path.write_text("".join(f'[[user]]\nname = "{n}"\nrole = "{r}"\npassword = "{p}"\n\n'
                            for n, r, p in users))
    return path


def desk_clock_args() -> list[str]:
    """The desk records outcomes in the stream's time (the tasks' clock), where it can: the city
    lives in the past of the wall clock."""
    from services.desk.cli import desk

    return ["--clock", "stream"] if "clock" in inspect.signature(desk).parameters else []


def start_desk(bootstrap: str, work: Path, port: int, users: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "desk", "--bootstrap", bootstrap, "--users", str(users),
         "--port", str(port), "--db", str(work / "desk.sqlite3"), *desk_clock_args()],
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


def describe_model(scorer: Any, registry: str) -> str:
    """Which model decides, and where it comes from."""
    from models.registry import Registry

    if scorer is None:
        return "none (the rules alone decide)"
    where = (f"promoted in {registry}" if Registry(registry).promoted() == scorer.version
             else "the packaged default")
    return f"{scorer.version} ({where})"


class _Stop(Exception):
    """SIGTERM while the city runs on (Ctrl-C is KeyboardInterrupt)."""


def run_demo(port: int = 0, metrics_port: int = 9410, keep: bool = False,
             console: Console | None = None, persons: int = 1500, days: int = 6,
             seed: int = 3, desk_port: int = 8070, speed: float = 600.0,
             keep_days: int = 60) -> int:
    from streams import feed
    from streams.core import Core
    from streams.decisions import load_model, load_rules, models_dir
    from streams.progress import progress
    from streams.replay import describe_figures, figures, replay
    from streams.simulator.centre import LoopError, broker_loop
    from streams.simulator.config import load as load_city
    from streams.simulator.report import cny, plot_centre
    from streams.simulator.run import ReplayWriter

    con = console or Console()
    desk_port = desk_port or free_port()
    work = Path(tempfile.mkdtemp(prefix="zt-demo-"))
    broker = EmbeddedBroker(port=port or free_port(), log_path=work / "broker.log")
    worker: WorkerProcess | None = None
    desk: subprocess.Popen[bytes] | None = None
    loop = None
    # One model for every driver, resolved as the worker resolves it: the worker, the city's
    # copy of the core and the replay check.
    models = str(models_dir(None))
    ruleset, scorer = load_rules("default"), load_model(models)
    try:
        cfg = load_city(None, DEMO_CITY)
        rate = cfg["fraud"]["episodes_per_100k_per_day"]
        ratio = rate / load_city()["fraud"]["episodes_per_100k_per_day"]
        con.print(f"city    {persons:,} persons, {days} days, seed {seed}, {rate:g} fraud episodes "
                  f"per 100,000 persons a day ({ratio:.1f} times the default city's); rules "
                  f"{ruleset.version}, model {describe_model(scorer, models)}", soft_wrap=True)
        t0 = time.monotonic()
        with con.status("starting the embedded broker"):
            broker.start()
        con.print(f"broker  [bold]{broker.bootstrap}[/] (Tansu, memory storage) "
                  f"in {time.monotonic() - t0:.1f} s", soft_wrap=True)
        with con.status("starting a worker (Faust app + lean lanes)"):
            worker = WorkerProcess(broker.bootstrap, work / "worker.log", metrics_port=metrics_port,
                                   args=("--models", models))
            worker.wait_ready(60)
        con.print(f"worker  metrics at [bold]{worker.metrics_url}[/]  (log {worker.log})", soft_wrap=True)
        users = demo_users(cfg)
        with con.status("starting the desk service"):
            desk = start_desk(broker.bootstrap, work, desk_port, write_users(work / "users.toml", users))
        districts = [n.removeprefix("desk-") for n, r, _ in users if r.startswith("desk:")]
        banks = [r.removeprefix("bank:") for _, r, _ in users if r.startswith("bank:")]
        con.print(f"desk    [bold]http://127.0.0.1:{desk_port}/[/] for police desks and bank "
                  f"liaisons; logins: desk-<district> / {PASSWORDS['desk']} for "
                  f"{', '.join(districts)}; bank-<bank> / {PASSWORDS['bank']} for "
                  f"{', '.join(b.lower() for b in banks)}; ops / {PASSWORDS['ops']}", soft_wrap=True)

        feed.produce(broker.bootstrap, BAD_RECORDS)
        sent = work / "city.jsonl"  # what the worker was sent, in that order: the replay check's
        loop = broker_loop(persons, days + (keep_days if keep else 0), seed, broker.bootstrap,
                           [worker.metrics_url], Core(ruleset=ruleset, scorer=scorer),
                           overrides=DEMO_CITY)
        writer = ReplayWriter(sent)
        loop.link.sinks.append(writer)
        started = time.monotonic()
        with progress("city", "simulated hours", console=Console(stderr=True)) as bar:
            def step(h: int, total: int, c: dict[str, int]) -> None:
                bar.update(h, total, note=f"{c['tasks']} tasks answered, {c['waits']} waits "
                                          "for the worker")

            loop.run(days * 24, step)
            if not keep:
                loop.link.finish()
        loop.link.prod.flush()
        writer.close()
        loop.link.sinks.remove(writer)
        st = loop.link.stats
        con.print(f"ran     {days * 24} h of the city through the broker in "
                  f"{time.monotonic() - started:.0f} s: {sum(st.sent.values()):,} records "
                  f"({st.sent['task-outcomes']:,} outcomes from the desks and banks), "
                  f"{st.tasks:,} tasks answered, {st.waits:,} waits for the worker "
                  f"({st.wait_s:.0f} s); {len(BAD_RECORDS)} deliberately invalid records first",
                  soft_wrap=True)

        expected = replay(sent, work / "replay-tasks.jsonl", ruleset=ruleset, scorer=scorer)
        want = sum(expected.tasks.values())
        with con.status(f"reading the worker's {want} warning tasks"):
            raw = [m.value for m in feed.read_messages(broker.bootstrap, "warning-tasks",
                                                       until=want, timeout_s=120)]
        _print_tasks(con, [orjson.loads(r) for r in raw])
        live = figures(loop.link.workers.ladder_stats())
        con.print("[bold]the users' figures[/], from the worker's /metrics:")
        for line in describe_figures(live):
            con.print(f"  {line}", soft_wrap=True)
        report = loop.report()
        con.print(f"  losses (the city's truth): {cny(report['loss_without_pipeline_fen'])} CNY "
                  f"without the pipeline, {cny(report['loss_with_pipeline_fen'])} CNY with it: "
                  f"[bold]{cny(report['loss_prevented_fen'])} CNY prevented[/] "
                  f"({report['loss_prevented_share']:.0%})" if report["loss_without_pipeline_fen"]
                  else "  losses (the city's truth): none in this city", soft_wrap=True)
        plot = work / "centre.png"
        plot_centre(live, report, plot)
        con.print(f"  plot -> {plot}", soft_wrap=True)
        for d in feed.read(broker.bootstrap, "dead-letter", timeout_s=5, idle_s=1.0):
            con.print(f"dead-letter  {d['reason']}", soft_wrap=True)
        same = sorted(raw) == sorted((work / "replay-tasks.jsonl").read_bytes().splitlines())
        same_figures = live == expected.figures
        late = worker.metric("zt_records_late_total")
        con.print(f"replay of the same records gives the same tasks, byte for byte: "
                  f"[bold]{'yes' if same else 'NO'}[/]; the same figures: "
                  f"[bold]{'yes' if same_figures else 'NO'}[/]; records late at the worker: "
                  f"{late:.0f}", soft_wrap=True)
        if st.missing or st.unexpected or st.unrouted:
            con.print(f"tasks replay gives that the worker did not send: {len(st.missing)}; "
                      f"sent by the worker, not by replay: {len(st.unexpected)}; outcomes the "
                      f"worker could not route to a task: {st.unrouted}", soft_wrap=True)
        ok = (same and len(raw) == want and not late and not st.missing and not st.unexpected
              and not st.unrouted)
        if keep:
            _keep(con, loop, days, speed, desk_port, worker)
        return 0 if ok else 1
    except (BrokerError, TimeoutError, RuntimeError, LoopError, OSError) as e:
        con.print(f"[bold red]demo failed:[/] {e}", soft_wrap=True)
        return 1
    finally:
        with con.status("shutting down"):
            if loop is not None:
                loop.close()
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


def _keep(con: Console, loop: Any, days: int, speed: float, desk_port: int,
          worker: WorkerProcess) -> None:
    """The city goes on, at ``speed`` simulated seconds a second, until Ctrl-C or SIGTERM."""
    def stop(*_: Any) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    link = loop.link
    link.strict, link.speed = False, speed  # a visitor's outcomes may change what the worker does
    con.print(f"the city goes on at {speed:g}x (a simulated day in {86_400 / speed / 60:.0f} min): "
              f"new tasks arrive at http://127.0.0.1:{desk_port}/ and the worker's figures move at "
              f"{worker.metrics_url}; Ctrl-C stops", soft_wrap=True)
    hours = loop.city.days * 24
    try:
        for h in range(days * 24 + 1, hours + 1):
            loop.run(h)
            if h % 6 == 0:
                f = worker.metric
                con.print(f"  {loop.city.clock.fmt(loop.city.clock.t0 + h * 3_600_000)[:16]}  "
                          f"tasks {f('zt_tasks_emitted_total'):,.0f}, outcomes "
                          f"{f('zt_outcomes_total'):,.0f}, held "
                          f"{f('zt_funds_fen_total', kind='held') / 100:,.0f} CNY, stopped "
                          f"{f('zt_funds_fen_total', kind='stopped') / 100:,.0f} CNY", soft_wrap=True)
        con.print("the city has reached its last day")
    except (KeyboardInterrupt, _Stop):
        con.print("stopping")


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


def _print_tasks(con: Console, tasks: list[dict], show: int = 12) -> None:
    con.print(f"[bold]{len(tasks)} warning tasks[/] on warning-tasks; the first "
              f"{min(show, len(tasks))}:", soft_wrap=True)
    for t in sorted(tasks, key=lambda t: t["created_time"])[:show]:
        con.print(f"  {t['created_time']}  [bold]{t['action']}[/] priority {t['priority']}  "
                  f"district {t['district']}  person {t['person_id']}  "
                  + (f"contact {mask_msisdn(t['contact_msisdn'])}  " if "contact_msisdn" in t else "")
                  + (f"{t['amount_fen'] / 100:,.0f} CNY  " if "amount_fen" in t else "")
                  + f"risk {t['risk_score']:.2f}  "
                  f"due {t['due_time'][11:19]}  id {t['task_id']}", soft_wrap=True)
        for r in t["reasons"]:
            con.print(f"      {r['code']}: {r['detail']}", soft_wrap=True)
