"""``zt simulate``: a synthetic city to a replay file or the broker, optionally in a closed loop
with the decision core (in process) or with the live workers (over the broker), its desks, banks
and people answering the tasks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from .config import ConfigError

err = Console(stderr=True)
out = Console()


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(2)


def simulate(
    persons: Annotated[int, typer.Option(min=10, help="People living in the city.")] = 10_000,
    days: Annotated[int, typer.Option(min=1, help="Simulated days.")] = 7,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same bytes.")] = 1,
    out_path: Annotated[Path, typer.Option("--out", help="Replay file (JSON Lines).")] = Path(
        "city.jsonl"),
    truth: Annotated[Path | None, typer.Option(
        help="Ground-truth file (default: beside --out, *.truth.jsonl).")] = None,
    config: Annotated[Path | None, typer.Option(
        help="City parameter file overlaying the packaged city.yaml.")] = None,
    scenario: Annotated[str | None, typer.Option(
        help="A city of the family in streams/simulator/scenarios.yaml (t-* to train and tune, "
             "h-* held out for evaluation).")] = None,
    respond: Annotated[bool, typer.Option(
        help="Closed loop: desks, banks and people answer the pipeline's tasks; compare with "
             "the counterfactual run (the same seed without the pipeline), report and plot. "
             "In process by default; with --broker the live workers are the pipeline.")] = False,
    plots: Annotated[Path | None, typer.Option(
        help="Folder for the closed loop's PNG plots and report.json (default: beside --out).")]
        = None,
    broker: Annotated[bool, typer.Option(
        help="Produce to the broker (needs a running broker; with --respond, running workers).")]
        = False,
    speed: Annotated[float, typer.Option(
        min=0, help="Broker mode pace: simulated seconds per wall second (0 = as fast as "
                    "possible; a responding city then waits only for the workers).")] = 3600.0,
    bootstrap: Annotated[str | None, typer.Option(
        "--bootstrap", "-b", help="Kafka bootstrap servers (broker mode).")] = None,
    metrics: Annotated[str, typer.Option(
        help="--broker --respond: the workers' /metrics addresses, comma-separated (the city "
             "waits on their counters).")] = "http://127.0.0.1:9410/metrics",
    lateness_ms: Annotated[int, typer.Option(
        min=0, envvar="ZT_LATENESS_MS", help="--broker --respond: the workers' --lateness-ms.")]
        = 200,
    quiet: Annotated[bool, typer.Option(help="No progress.")] = False,
    rules: Annotated[str, typer.Option(
        help="Closed loop: the rule set the core decides with ('default', 'none' or a file); "
             "with --broker, the workers' own.")] = "default",
    models: Annotated[str | None, typer.Option(
        help="Closed loop: model registry whose promoted model scores, else the packaged "
             "default ('none': no model); with --broker, the workers' own.")] = None,
) -> None:
    """Simulate a city: calls, transfers, fraud episodes and benign look-alikes, by seed."""
    from streams.progress import progress, wide

    from .config import scenarios
    from .report import city_table, loop_table, plot_episode, plot_losses
    from .run import build_city, closed_loop, run_city

    if scenario is not None and scenario not in scenarios():
        _fail(f"unknown scenario {scenario!r}; choose one of {', '.join(sorted(scenarios()))} "
              "(streams/simulator/scenarios.yaml)")
    if config is not None and not config.is_file():
        _fail(f"city parameter file {config} not found: give a YAML file (see "
              "streams/simulator/city.yaml)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    truth = truth or out_path.with_name(out_path.name.removesuffix(".jsonl") + ".truth.jsonl")
    core_factory = _core(rules, models, lateness_ms) if respond else None
    # With the workers: connect, and check they decide as this city's copy of the core, first.
    linked = (_connect(persons, days, seed, out_path, config, bootstrap, metrics, lateness_ms,
                       speed, core_factory, scenario) if respond and broker else None)
    t_wall = time.perf_counter()
    with progress("simulate", "simulated hours", console=err, quiet=quiet) as bar:
        def step(h: int, total: int, n: Any) -> None:
            note = (f"{n:,} records" if isinstance(n, int)
                    else f"{n['tasks']:,} tasks answered, {n['waits']:,} waits for the workers")
            bar.update(h, total, note=note)

        try:
            if respond and broker:
                loop = _run_linked(linked, days, step)
            elif respond:
                loop = closed_loop(persons, days, seed, out_path, core_factory, truth, config,
                                   progress=step, scenario=scenario)
            elif broker:
                from streams import settings

                from .publish import BrokerSink

                city = build_city(persons, days, seed, config, scenario=scenario)
                sink = BrokerSink(settings.load(bootstrap).bootstrap, speed, city.clock.t0)
                try:
                    run_city(city, [sink], step)
                finally:
                    sink.close()
                city.truth.write(truth, city)
            else:
                city = build_city(persons, days, seed, config, scenario=scenario)
                from .run import ReplayWriter

                writer = ReplayWriter(out_path)
                try:
                    run_city(city, [writer], step)
                finally:
                    writer.close()
                city.truth.write(truth, city)
        except ConfigError as e:
            _fail(f"{config}: {e}")
    seconds = time.perf_counter() - t_wall

    tables = wide(out)
    if respond:
        folder = plots or out_path.parent
        folder.mkdir(parents=True, exist_ok=True)
        report = loop.report if not broker else loop.report()
        (folder / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        plot_losses(report, folder / "losses_by_type.png")
        plot_episode(loop.city, loop.responder, folder / "episode.png")
        tables.print(loop_table(report))
        if broker:
            loop.city.truth.write(truth, loop.city)
            _print_workers(loop)
        out.print(f"replay {out_path}, report and plots in {folder} ({seconds:.1f} s"
                  + (")" if broker else " for both runs)"), soft_wrap=True)
    else:
        tables.print(city_table(dict(sorted(city.engine.counts.items())), seconds,
                                city.truth.counts))
        where = f"broker ({speed:g}x)" if broker else str(out_path)
        out.print(f"records -> {where}; ground truth -> {truth}", soft_wrap=True)


def _core(rules: str, models: str | None, lateness_ms: int) -> Any:
    """The core the workers and ``zt replay`` would run: the same rule set and model."""
    from streams.core import Core, CoreConfig
    from streams.decisions import load_model, load_rules

    try:
        ruleset, scorer = load_rules(rules), load_model(models)
    except (OSError, ValueError) as e:
        _fail(str(e))
    config = CoreConfig(lateness_ms=lateness_ms)
    return lambda: Core(config, ruleset=ruleset, scorer=scorer)


def _connect(persons: int, days: int, seed: int, out_path: Path, config: Path | None,
             bootstrap: str | None, metrics: str, lateness_ms: int, speed: float,
             core_factory: Any, scenario: str | None = None) -> Any:
    from streams import settings

    from .centre import LoopError, broker_loop

    try:
        return broker_loop(persons, days, seed, settings.load(bootstrap).bootstrap,
                           [u for u in metrics.split(",") if u], core_factory(), out_path, config,
                           lateness_ms=lateness_ms, speed=speed, scenario=scenario)
    except LoopError as e:
        _fail(f"{e} (--rules and --models as the workers' own; --metrics their addresses)")
    except (ConfigError, OSError) as e:
        _fail(f"cannot start the city: {e}")


def _run_linked(loop: Any, days: int, step: Any) -> Any:
    from .centre import LoopError

    try:
        loop.run(days * 24, step)
        loop.link.finish()
    except LoopError as e:
        _fail(str(e))
    finally:
        loop.close()
    return loop


def _print_workers(loop: Any) -> None:
    from streams.replay import describe_figures, figures

    st = loop.link.stats
    out.print(f"the workers answered through the broker: {st.tasks:,} tasks handed to the desks "
              f"and banks, {st.waits:,} waits for the workers ({st.wait_s:.0f} s)"
              + (f"; tasks replay gives and the workers did not send: {len(st.missing)}"
                 if st.missing else "")
              + (f"; tasks the workers sent and replay does not give: {len(st.unexpected)}"
                 if st.unexpected else "")
              + (f"; outcomes no worker could route to its task: {st.unrouted}"
                 if st.unrouted else ""), soft_wrap=True)
    out.print("the users' figures, from the workers' /metrics:")
    for line in describe_figures(figures(loop.link.workers.ladder_stats())):
        out.print(f"  {line}", soft_wrap=True)


def main() -> None:
    typer.run(simulate)


if __name__ == "__main__":
    main()
