"""``zt``: the command line of ZeroTransfer. Every command that talks to Kafka takes the
bootstrap servers from ``--bootstrap``, else ``ZT_KAFKA``, else the config file, else
127.0.0.1:9092 (see ``streams.settings``)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.settings import DEFAULT_COMMIT_BEHIND_S, DEFAULT_STOP_TIMEOUT_S

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None)
err = Console(stderr=True)
out = Console()


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        print(f"zt (zerotransfer) {version('zerotransfer')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """ZeroTransfer: telecom-fraud early warning, from calls and transfers to warning tasks for
    police desks and banks."""

Bootstrap = Annotated[str | None, typer.Option(
    "--bootstrap", "-b", help="Kafka bootstrap servers, host:port[,host:port]. "
    "Default: $ZT_KAFKA, then zt.toml, then 127.0.0.1:9092.")]
ConfigFile = Annotated[str | None, typer.Option("--config", help="Config file (TOML).")]
Lateness = Annotated[int, typer.Option(
    min=0, envvar="ZT_LATENESS_MS", help="How far out of event-time order one input partition "
    "may be and still be decided in order (ms); also the floor of the latency. Workers and "
    "replay must use the same value to decide alike.")]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 9092,
    partitions: Annotated[int, typer.Option(
        help="Partitions of calls, transactions and person events.")] = 8,
) -> None:
    """Run the embedded broker (Tansu) on 127.0.0.1 with the contract topics, until Ctrl-C.

    Memory storage only: when it stops, every topic, record and committed offset is lost, and a
    broker started again is empty (workers say so, and the registry and watch lists must be
    sent again). Tansu stops with this command however it ends, kill -9 included."""
    from streams.broker import BrokerError, EmbeddedBroker
    from streams.topics import partitions as counts

    b = EmbeddedBroker(port=port, counts=counts(partitions))
    try:
        b.start()
    except BrokerError as e:
        _fail(str(e))
    out.print(f"broker ready on [bold]{b.bootstrap}[/] with topics: "
              + ", ".join(f"{t}({n})" for t, n in b.counts.items()))
    out.print("Ctrl-C stops it. Memory storage only: every topic, record and offset is lost "
              "when it stops.")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if not b.alive():
            _fail("the broker process exited unexpectedly", 1)
    b.stop()
    out.print("broker stopped")


@app.command()
def topics(
    bootstrap: Bootstrap = None,
    config: ConfigFile = None,
    partitions: Annotated[int, typer.Option(help="Partitions of the high-volume topics.")] = 8,
) -> None:
    """Create the contract and internal topics on any Kafka cluster (existing ones are kept)."""
    from streams import settings as st
    from streams.broker import create_topics, wait_ready
    from streams.topics import partitions as counts

    s = st.load(bootstrap, config)
    wait_ready(s.bootstrap)
    created = create_topics(s.bootstrap, counts(partitions))
    out.print(f"created: {', '.join(created) or 'nothing (all exist)'}")


@app.command()
def worker(
    bootstrap: Bootstrap = None,
    config: ConfigFile = None,
    metrics_port: Annotated[int, typer.Option(help="Port of /metrics.")] = 9410,
    metrics_host: Annotated[str, typer.Option(
        envvar="ZT_METRICS_HOST", help="Address of /metrics: loopback, except in a container "
        "scraped from another one.")] = "127.0.0.1",
    loglevel: Annotated[str, typer.Option(help="debug, info, warn or error.")] = "warn",
    group: Annotated[str, typer.Option(
        envvar="ZT_GROUP", help="Name of this pipeline's consumer groups on the cluster.")] = "zt",
    rules: Annotated[str, typer.Option(
        envvar="ZT_RULES", help="Rule set file, hot-reloaded when it changes ('default': "
        "rules/sets/city.yaml; 'none': the built-in first decision path).")] = "default",
    models: Annotated[str | None, typer.Option(
        envvar="ZT_MODELS", help="Model registry directory; its promoted model scores and is "
        "switched without a restart (default .zt/models; 'none': no model).")] = None,
    lateness_ms: Lateness = 200,
    stop_timeout: Annotated[float, typer.Option(
        min=0, envvar="ZT_STOP_TIMEOUT_S", help="Seconds a worker told to stop (SIGTERM, Ctrl-C) "
        "may take before it exits without a clean stop, as when its broker is gone; records not "
        "committed are read again. 0: wait for ever. A second signal exits at once.")
    ] = DEFAULT_STOP_TIMEOUT_S,
    commit_behind_s: Annotated[float, typer.Option(
        min=0.1, envvar="ZT_COMMIT_BEHIND_S", help="Seconds between two checkpoints while a "
        "backlog is worked through (live: every 0.5 s). Longer: each key is written once a "
        "backlog; shorter: a crash in it re-reads less.")] = DEFAULT_COMMIT_BEHIND_S,
) -> None:
    """Run one worker (the Faust app). Start more processes to scale out (one per partition)."""
    from streams import settings as st

    s = st.load(bootstrap, config)
    os.environ["ZT_KAFKA"] = s.bootstrap  # the Faust app reads these at import
    os.environ["ZT_GROUP"] = group
    os.environ["ZT_RULES"] = rules
    os.environ["ZT_LATENESS_MS"] = str(lateness_ms)
    os.environ["ZT_COMMIT_BEHIND_S"] = str(commit_behind_s)
    if models:
        os.environ["ZT_MODELS"] = models
    from streams.decisions import load_rules

    try:
        load_rules(rules)  # a bad rule file stops a starting worker with its line and reason
    except ValueError as e:
        _fail(str(e))
    import uvloop

    from streams import metrics
    from streams.app import app as faust_app
    from streams.stopping import Worker

    try:
        metrics.serve(metrics_port, metrics_host)
    except OSError as e:
        _fail(f"cannot serve /metrics on {metrics_host}:{metrics_port}: {e.strerror}")
    logging.basicConfig(level=loglevel.upper().replace("WARN", "WARNING"))
    err.print(f"worker: broker {s.bootstrap} ({s.source}); "
              f"metrics http://{metrics_host}:{metrics_port}/metrics")
    uvloop.install()
    from streams.heap import tune_for_long_lived_heap

    tune_for_long_lived_heap()
    w = Worker(faust_app, loglevel=loglevel, quiet=True, stop_timeout_s=stop_timeout)
    w.execute_from_commandline()


@app.command()
def replay(
    events: Annotated[Path, typer.Argument(help="Replay file (JSON Lines, optionally .gz).")],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the tasks.")] = Path(
        "tasks.jsonl"),
    dead_letter: Annotated[Path | None, typer.Option(
        help="Where to write rejected lines (default: beside --out).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    rules: Annotated[str, typer.Option(
        help="Rule set file; 'default' is the packaged rules/sets/city.yaml, 'none' the built-in "
        "first decision path only.")] = "default",
    models: Annotated[str | None, typer.Option(
        help="Model registry directory (default $ZT_MODELS or .zt/models); its promoted model "
        "scores, as in the workers. 'none': no model.")] = None,
    jobs: Annotated[int | None, typer.Option(
        min=1, show_default=False, help="Processes. 2 or more run a pipeline: one reads, "
        "validates and keeps the lines and accounts, the others decide, the persons split "
        "between them as between worker processes. The tasks written are the same for any "
        "number. [default: 2 with two CPUs or more, else 1]")] = None,
    lateness_ms: Lateness = 200,
) -> None:
    """Drive the decision core from a replay file; the same tasks as the workers, byte for byte."""
    from streams.core import CoreConfig
    from streams.progress import progress, wide
    from streams.replay import ReplayError, default_jobs, describe_figures, open_events
    from streams.replay import replay as run

    try:
        open_events(events).close()
    except ReplayError as e:
        _fail(f"{e}: give a replay file (`zt simulate` writes one)")
    ruleset, scorer = _rules_and_model(rules, models)
    with progress("replay", "lines", console=err, quiet=quiet) as bar:
        try:
            summary = run(events, out_path, dead_letter, ruleset=ruleset, scorer=scorer,
                          progress=bar.update, jobs=jobs or default_jobs(),
                          config=CoreConfig(lateness_ms=lateness_ms))
        except ReplayError as e:
            _fail(str(e))
        except OSError as e:
            _fail(f"cannot write the tasks or dead letters: {e.strerror or e} ({e.filename})")
    table = Table(title=f"replay of {events}", show_header=True)
    table.add_column("topic")
    table.add_column("records", justify="right")
    table.add_column("rejected", justify="right")
    names = sorted(set(summary.records) | set(summary.rejected))
    for t in names:
        table.add_row(t, f"{summary.records[t]:,}", f"{summary.rejected[t]:,}")
    wide(out).print(table)
    tasks = ", ".join(f"{a} {n:,}" for a, n in sorted(summary.tasks.items())) or "none"
    out.print(f"tasks: {tasks} -> {summary.tasks_path}", soft_wrap=True)
    rejected = sum(summary.rejected.values())
    out.print(f"rejected: {rejected:,} -> {summary.dead_letter_path}"
              + (f" ({', '.join(f'{k} {v}' for k, v in sorted(summary.reasons.items()))})"
                 if rejected else ""), soft_wrap=True)
    for line in describe_figures(summary.figures):
        out.print(line, soft_wrap=True)
    if summary.review_path:
        out.print(f"people defrauded after a warning, with their timelines -> {summary.review_path}",
                  soft_wrap=True)
    out.print(f"{summary.lines:,} lines in {summary.seconds:.2f} s "
              f"({summary.records_per_s:,.0f} records/s); duplicates {summary.duplicates}, "
              f"late {summary.late}", soft_wrap=True)


def _rules_and_model(rules: str, models: str | None):
    """The rule set and the promoted model the workers would use, or a clear error."""
    from streams.decisions import load_model, load_rules

    try:
        return load_rules(rules), load_model(models)
    except (OSError, ValueError) as e:
        _fail(str(e))
        raise  # unreachable: _fail exits


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Broker port on 127.0.0.1 (0 = any free port).")] = 0,
    metrics_port: Annotated[int, typer.Option(
        help="Worker /metrics port (0 = any free port).")] = 9410,
    keep: Annotated[bool, typer.Option(
        help="After the demo, the city goes on at --speed until Ctrl-C: new tasks keep arriving "
             "in the desk service and the worker's figures move.")] = False,
    persons: Annotated[int, typer.Option(min=10, help="Persons in the simulated city.")] = 1500,
    days: Annotated[int, typer.Option(
        min=1, help="Simulated days run through the broker (a warned person's 72 h zero-transfer "
                    "window is judged 120 h after the warning).")] = 6,
    seed: Annotated[int, typer.Option(help="The city's seed.")] = 3,
    speed: Annotated[float, typer.Option(
        min=1, help="With --keep: simulated seconds per wall second.")] = 600.0,
    desk_port: Annotated[int, typer.Option(
        help="Desk service port on 127.0.0.1 (0 = any free port).")] = 8070,
) -> None:
    """The main job: broker, worker and desk service on 127.0.0.1; a city whose desks and banks
    answer the worker's warning tasks; the users' figures from the worker; checked against replay."""
    from streams.demo import run_demo

    sys.exit(run_demo(port=port, metrics_port=metrics_port, keep=keep, console=out,
                      persons=persons, days=days, seed=seed, speed=speed, desk_port=desk_port))


@app.command()
def bench(
    records: Annotated[int, typer.Option(help="Input records for the saturation phase.")] = 100_000,
    rate: Annotated[int, typer.Option(help="Offered events/s of the latency phase.")] = 5000,
    seconds: Annotated[float, typer.Option(help="Length of the latency phase.")] = 20.0,
    out_path: Annotated[Path, typer.Option("--out", help="JSON results.")] = Path(
        "bench/results/pipeline.json"),
    workers: Annotated[int, typer.Option(help="Worker processes in the consumer group.")] = 1,
) -> None:
    """Measure the pipeline on the embedded broker: events/s, latency, transport ratio."""
    from streams.bench import run_bench

    sys.exit(run_bench(records=records, rate=rate, seconds=seconds, out=out_path, console=out,
                       workers=workers))


def _register_parts() -> None:
    """Commands of the other parts of the flow, imported only when run."""
    from models.cli import evaluate, evaluate_cities, models_app, train, train_default
    from rules.cli import rules_test
    from services.desk.cli import desk
    from streams.simulator.cli import simulate

    app.command("desk")(desk)
    app.command("simulate")(simulate)
    rules_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                            help="Rule sets: backtest a rule set on a replay file.")
    rules_app.command("test")(rules_test)
    app.add_typer(rules_app, name="rules")
    app.command("train")(train)
    app.command("evaluate")(evaluate_cities)
    models_app.command("evaluate")(evaluate)
    models_app.command("train-default")(train_default)
    app.add_typer(models_app, name="models")


_register_parts()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
