"""``zt simulate``: a synthetic city to a replay file or the broker, optionally in a closed loop
with the decision core and simulated desks, banks and people."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

err = Console(stderr=True)
out = Console()


def simulate(
    persons: Annotated[int, typer.Option(help="People living in the city.")] = 10_000,
    days: Annotated[int, typer.Option(help="Simulated days.")] = 7,
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
        help="Closed loop: feed the decision core, answer its tasks, compare with the "
             "counterfactual run, report and plot.")] = False,
    plots: Annotated[Path | None, typer.Option(
        help="Folder for the closed loop's PNG plots and report.json (default: beside --out).")]
        = None,
    broker: Annotated[bool, typer.Option(
        help="Produce to the broker instead of a file (needs a running broker).")] = False,
    speed: Annotated[float, typer.Option(
        help="Broker mode pace: simulated seconds per wall second (0 = as fast as possible).")]
        = 3600.0,
    bootstrap: Annotated[str | None, typer.Option(
        "--bootstrap", "-b", help="Kafka bootstrap servers (broker mode).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    rules: Annotated[str, typer.Option(
        help="Closed loop: the rule set the core decides with ('default', 'none' or a file).")]
        = "default",
    models: Annotated[str | None, typer.Option(
        help="Closed loop: model registry whose promoted model scores ('none': no model).")]
        = None,
) -> None:
    """Simulate a city: calls, transfers, fraud episodes and benign look-alikes, by seed."""
    from .report import city_table, loop_table, plot_episode, plot_losses
    from .run import build_city, closed_loop, run_city

    if respond and broker:
        err.print("[bold red]error:[/] --respond runs the loop in-process to a file; "
                  "drop --broker")
        raise typer.Exit(2)
    from .config import scenarios

    if scenario is not None and scenario not in scenarios():
        err.print(f"[bold red]error:[/] unknown scenario {scenario!r}; choose one of "
                  f"{', '.join(sorted(scenarios()))} (streams/simulator/scenarios.yaml)")
        raise typer.Exit(2)
    if speed < 0:
        err.print("[bold red]error:[/] --speed must be 0 (unpaced) or positive")
        raise typer.Exit(2)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    truth = truth or out_path.with_name(out_path.name.removesuffix(".jsonl") + ".truth.jsonl")
    with Progress(TextColumn("simulate"), BarColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=err, disable=quiet, transient=True) as bar:
        job = bar.add_task("", total=days * 24)

        def progress(h: int, total: int, n: int) -> None:
            bar.update(job, completed=h, total=total, description=f"{n:,} records")

        t_wall = time.perf_counter()
        if respond:
            from streams.core import Core
            from streams.decisions import load_model, load_rules

            try:  # the same rule set and model as the workers and zt replay
                ruleset, scorer = load_rules(rules), load_model(models)
            except ValueError as e:
                err.print(f"[bold red]error:[/] {e}")
                raise typer.Exit(2) from None
            loop = closed_loop(persons, days, seed, out_path,
                               lambda: Core(ruleset=ruleset, scorer=scorer), truth, config,
                               progress=progress, scenario=scenario)
        elif broker:
            from streams import settings

            from .publish import BrokerSink

            city = build_city(persons, days, seed, config, scenario=scenario)
            sink = BrokerSink(settings.load(bootstrap).bootstrap, speed, city.clock.t0)
            try:
                run_city(city, [sink], progress)
            finally:
                sink.close()
            city.truth.write(truth, city)
        else:
            city = build_city(persons, days, seed, config, scenario=scenario)
            from .run import ReplayWriter

            writer = ReplayWriter(out_path)
            try:
                run_city(city, [writer], progress)
            finally:
                writer.close()
            city.truth.write(truth, city)
        seconds = time.perf_counter() - t_wall

    if respond:
        folder = plots or out_path.parent
        folder.mkdir(parents=True, exist_ok=True)
        report = loop.report
        (folder / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        plot_losses(report, folder / "losses_by_type.png")
        plot_episode(loop.city, loop.responder, folder / "episode.png")
        out.print(loop_table(report))
        out.print(f"replay {out_path}, truth {truth}, report and plots in {folder} "
                  f"({seconds:.1f} s for both runs)")
    else:
        out.print(city_table(dict(sorted(city.engine.counts.items())), seconds,
                             city.truth.counts))
        where = f"broker ({speed:g}x)" if broker else str(out_path)
        out.print(f"records -> {where}; ground truth -> {truth}")


def main() -> None:
    typer.run(simulate)


if __name__ == "__main__":
    main()
