"""``zt train``, ``zt evaluate`` (the users' figures on cities with a ground truth) and
``zt models list|show|promote|evaluate``."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True)
out = Console()

RegistryDir = Annotated[Path | None, typer.Option(
    "--registry", envvar="ZT_MODELS", help="Model registry folder (default .zt/models).")]
Events = Annotated[Path, typer.Option("--events", help="Replay file (JSON Lines, optionally .gz).")]
Quiet = Annotated[bool, typer.Option(help="No progress bar.")]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _progress(quiet: bool):
    """Lines replayed (a bar on a terminal, a line every few seconds in a log), and each step
    of the work as it starts."""
    from streams.progress import progress

    with progress("replay", "lines", console=err, quiet=quiet) as bar:
        yield bar.update, bar.step


def _events(events: Path) -> None:
    """A replay file that can be read, or one line saying what to give instead."""
    from streams.replay import ReplayError, open_events

    try:
        open_events(events).close()
    except ReplayError as e:
        _fail(f"{e}: give --events a replay file (`zt simulate` writes one)")


def train(
    events: Annotated[list[Path], typer.Option(
        "--events", help="Replay file (JSON Lines, optionally .gz); repeat it to learn from "
        "several cities of one calendar (a family: zt simulate --scenario).")],
    registry: RegistryDir = None,
    seed: Annotated[int, typer.Option(help="Seed of the learner.")] = 0,
    capacity: Annotated[int | None, typer.Option(
        help="Desk tasks a day (sets the alert threshold; default 1 per 1,000 persons, >= 5).")]
        = None,
    warmup_days: Annotated[int, typer.Option(help="First days skipped (no history yet).")] = 1,
    maturity_days: Annotated[int, typer.Option(
        help="Last days skipped (their case reports are not filed yet).")] = 2,
    promote: Annotated[bool, typer.Option(help="Promote the new version at once.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train the classifiers (transfer and contact points) by replaying EVENTS through the core."""
    from models.registry import Registry
    from models.train import TrainConfig, train_file
    from streams.progress import wide
    from streams.replay import ReplayError, span_days

    for path in events:
        _events(path)
        days = span_days(path)
        if days is not None and -(-days // 1) < warmup_days + maturity_days + 2:
            _fail(f"{path} covers {days:.1f} days: too few to train on after a warm-up of "
                  f"{warmup_days} and {maturity_days} maturity days (3 days at least must "
                  "remain); simulate more days, or lower --warmup-days / --maturity-days")
    reg = Registry(registry)
    cfg = TrainConfig(seed=seed, capacity=capacity, warmup_days=warmup_days,
                      maturity_days=maturity_days)
    with _progress(quiet) as (lines, step):
        try:
            version, card = train_file(events, reg, cfg, lines, step)
        except (ReplayError, ValueError, OSError) as e:
            _fail(str(e))
    if promote:
        reg.promote(version)
    wide(out).print(_summary(card))
    out.print(f"model {version} -> {reg.path(version)}"
              + (" (promoted)" if promote else f"; promote it with `zt models promote {version}`"),
              soft_wrap=True)


def evaluate(
    model: Annotated[str, typer.Option(
        "--model", help="Version, or 'promoted' / 'latest'.")] = "promoted",
    events: Events = Path("city.jsonl"),
    registry: RegistryDir = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder for evaluation.json and the PNGs (default: beside the model).")]
        = None,
    capacity: Annotated[int | None, typer.Option(
        help="Desk tasks a day (default: the model card's).")] = None,
    quiet: Quiet = False,
) -> None:
    """Evaluate a model on a replay file: PR/ROC-AUC, precision at desk capacity, recall before
    the first fraudulent transfer, per fraud type, against the rules and without call features."""
    from models.evaluate import evaluate_file
    from models.registry import Registry, RegistryError
    from streams.progress import wide
    from streams.replay import ReplayError

    _events(events)
    reg = Registry(registry)
    try:
        reg.resolve(model)  # before the long work: a model that is not there is one line
    except RegistryError as e:
        _fail(str(e))
    with _progress(quiet) as (lines, step):
        step("replay through the core")
        try:
            report, folder = evaluate_file(events, reg, model, out_dir, capacity, progress=lines)
        except (RegistryError, ReplayError, ValueError, OSError) as e:
            _fail(str(e))
    wide(out).print(_eval_table(report))
    er, abl = report["early_recall"]["model"].get("all", {}), report.get("ablation", {})
    out.print(f"alerted before the first fraudulent transfer: {er.get('recall')} of "
              f"{er.get('episodes', 0)} episodes (rules: "
              f"{report['early_recall']['rules'].get('all', {}).get('recall')}); recall change "
              "from call features at equal alert volume: "
              f"{abl.get('combined', {}).get('relative_change_in_recall')}", soft_wrap=True)
    out.print(f"figures -> {folder / 'evaluation.json'}; plots -> {folder}/*.png", soft_wrap=True)


models_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                         help="The model registry: list, show and promote versions.")


@models_app.command("list")
def list_models(registry: RegistryDir = None) -> None:
    """Versions in the registry, oldest first; the promoted one is marked."""
    from models.registry import Registry

    reg = Registry(registry)
    promoted = reg.promoted()
    table = Table(title=f"models in {reg.root}")
    table.add_column("version", no_wrap=True)
    for col in ("created", "data", "transfer PR-AUC", "contact PR-AUC", "promoted"):
        table.add_column(col)
    for v in reg.versions():
        c = reg.card(v)
        pts = c["metrics"]["test"]["points"]
        table.add_row(v, c["created"], f"{c['data']['events']} ({c['data']['sha256'][:8]})",
                      str(pts["transfer"]["pr_auc"]), str(pts["contact"]["pr_auc"]),
                      "*" if v == promoted else "")
    from streams.progress import wide

    wide(out).print(table)


@models_app.command("show")
def show(
    version: Annotated[str, typer.Argument(help="Version, 'promoted' or 'latest'.")] = "promoted",
    registry: RegistryDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="The JSON card.")] = False,
) -> None:
    """A version's model card."""
    import orjson

    from models.registry import Registry, RegistryError

    reg = Registry(registry)
    try:
        v = reg.resolve(version)
        card = reg.card(v)
    except RegistryError as e:
        _fail(str(e))
    if as_json:
        print(orjson.dumps(card, option=orjson.OPT_INDENT_2).decode())
    else:
        from streams.progress import wide

        wide(out).print(reg.card_markdown(v) or _summary(card), markup=False, soft_wrap=True)


@models_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="Version (or 'latest') to promote.")],
    registry: RegistryDir = None,
) -> None:
    """Point the workers at VERSION (they switch within a second, without a restart)."""
    from models.registry import Registry, RegistryError

    reg = Registry(registry)
    try:
        v = reg.resolve(version)
        before = reg.promoted()
        reg.promote(v)
    except RegistryError as e:
        _fail(str(e))
    out.print(f"promoted {v} (was {before or 'none'})")


def _summary(card: dict) -> Table:
    table = Table(title=f"model {card['version']}: test days "
                        f"{'-'.join(map(str, card['data']['split_days']['test']))}")
    for col in ("point", "rows", "fraud", "PR-AUC", "ROC-AUC", "precision@k", "recall@k",
                "calibration"):
        table.add_column(col)
    for p, r in card["metrics"]["test"]["points"].items():
        table.add_row(p, f"{r['rows']:,}", f"{r['positives']:,}", str(r["pr_auc"]),
                      str(r["roc_auc"]), str(r["at_capacity"]["precision"]),
                      str(r["at_capacity"]["recall"]), card["points"][p]["calibration"])
    return table


def _eval_table(report: dict) -> Table:
    table = Table(title=f"{report['model']} on {report['events']} ({report['evaluated']})")
    for col in ("point", "fraud", "PR-AUC", "P@k", "R@k", "rules P/R", "model P at rules R"):
        table.add_column(col, no_wrap=True)
    for p, r in report["points"].items():
        ru = r["rules"]
        table.add_row(p, f"{r['positives']:,}", str(r["pr_auc"]), str(r["at_capacity"]["precision"]),
                      str(r["at_capacity"]["recall"]),
                      f"{ru['rule_precision']}/{ru['rule_recall']}",
                      str(ru["model_precision_at_rule_recall"]))
    return table


def evaluate_cities(
    cities: Annotated[list[Path], typer.Argument(
        help="Replay files of cities with their ground truth beside them (*.truth.jsonl), from "
             "`zt simulate` or `python -m bench.worlds`.")],
    rules: Annotated[str, typer.Option(
        help="Rule set: 'default' (the packaged city set), 'none' or a file.")] = "default",
    models: Annotated[str | None, typer.Option(
        help="Model registry whose promoted model scores (default: the one the workers use); "
             "'none': rules alone.")] = None,
    out_dir: Annotated[Path, typer.Option(
        "--out", help="Folder for evaluation.json and evaluation.png.")] = Path("evaluation"),
    naive: Annotated[bool, typer.Option(help="Judge the naive two-rule detector beside.")] = True,
    jobs: Annotated[int, typer.Option(min=1, help="Replay processes per city.")] = 2,
    quiet: Quiet = False,
) -> None:
    """The users' figures on cities with a ground truth: victims warned before their loss, fraud
    money intercepted, person precision, non-victims warned and holds on honest transfers per
    10,000 residents a day; per fraud type and per payment of an episode; beside the naive
    two-rule detector."""
    import orjson
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from models.cities import FIGURES, evaluate_city, fmt_value, meets, plot
    from streams.decisions import load_model, load_rules
    from streams.replay import ReplayError

    missing = [str(c) for c in cities if not c.is_file()]
    if missing:
        _fail(f"no such file: {', '.join(missing)}")
    try:
        ruleset, scorer = load_rules(rules), load_model(models)
    except (OSError, ValueError) as e:
        _fail(str(e))
    results = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, disable=quiet or not err.is_terminal, transient=True) as bar:
        job = bar.add_task("evaluate", total=None)

        def step(what: str) -> None:
            bar.update(job, description=what)
            if not err.is_terminal and not quiet:
                err.print(f"evaluate: {what}", soft_wrap=True)

        for city in cities:
            try:
                results.append(evaluate_city(city, ruleset, scorer, jobs, naive, step))
            except (ReplayError, ValueError) as e:
                _fail(str(e))
    version = getattr(scorer, "version", "none")
    for r in results:
        table = Table(title=f"{Path(r['city']).name} ({r['source']}, {r['persons']:,} persons, "
                            f"{r['days']:g} days; rules {getattr(ruleset, 'version', 'none')}, "
                            f"model {version})")
        table.add_column("figure")
        table.add_column("ZeroTransfer", justify="right")
        if naive:
            table.add_column("naive two rules", justify="right")
        table.add_column("bar", justify="right")
        for key, label, op, target in FIGURES:
            value = r["zerotransfer"]["figures"][key]
            ok = meets(value, op, target)
            mark = "" if ok is None else (" ok" if ok else " NOT MET")
            row = [label, fmt_value(value) + mark]
            if naive:
                row.append(fmt_value(r["naive"]["figures"][key]))
            row.append(f"{op} {target:g}" if target is not None else "")
            table.add_row(*row)
        out.print(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "evaluation.json").write_bytes(orjson.dumps(
        {"rules": getattr(ruleset, "version", "none"), "model": version, "cities": results},
        option=orjson.OPT_INDENT_2))
    plot(results, out_dir / "evaluation.png")
    out.print(f"figures -> {out_dir / 'evaluation.json'}; plot -> {out_dir / 'evaluation.png'}",
              soft_wrap=True)


def train_default(
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Where to write model.joblib and its card (default: the package's "
             "models/default, which the workers use when no model is promoted).")] = None,
    quiet: Quiet = False,
) -> None:
    """Train the packaged default model on its family of cities (simulated t-* settings and
    bench/worlds training settings; ~10 minutes on 2 cores): the same command gives the same
    model."""
    from models.default import HELD_OUT, TRAINING_CITIES
    from models.default import train_default as build

    with _progress(quiet) as (lines, step):
        def say(what: str) -> None:
            step(what)
            if quiet or not err.is_terminal:
                err.print(f"train-default: {what}", soft_wrap=True)

        try:
            version, card = build(out_dir, say, lines)
        except ValueError as e:
            _fail(str(e))
    out.print(_summary(card))
    out.print(f"default model {version}, trained on {len(TRAINING_CITIES)} cities; held out for "
              f"zt evaluate: {', '.join(HELD_OUT['simulate'])} (zt simulate --scenario) and "
              f"{', '.join(HELD_OUT['worlds'])} (python -m bench.worlds --setting)", soft_wrap=True)
