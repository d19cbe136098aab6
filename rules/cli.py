"""``zt rules test``: backtest a rule set on a replay file, against the rule set in force and the
naive two-rule detector. Registered by ``streams.cli`` as a typer command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True)
out = Console()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def rules_test(
    ruleset: Annotated[Path, typer.Argument(help="The rule set to test (YAML).")],
    events: Annotated[Path, typer.Option("--events", help="Replay file (JSON Lines, optionally "
                                         ".gz) with case reports.")],
    against: Annotated[Path | None, typer.Option(
        help="The rule set to compare with (default: the one in force, rules/sets/city.yaml).")]
        = None,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Write the results as JSON.")]
        = None,
    warmup_days: Annotated[int, typer.Option(
        help="Days at the start that only build up state: no flags counted, no victims.")] = 3,
    naive: Annotated[bool, typer.Option(help="Also score the naive two-rule detector.")] = True,
    naive_large_cny: Annotated[int, typer.Option(
        help="The naive detector's 'large payment' threshold.")] = 5000,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Backtest RULESET on a replay file: hits per rule, persons flagged, precision and recall
    against the file's case reports, and the difference from the rule set in force."""
    from rules.backtest import compare, measure
    from rules.engine import RuleSet, RuleSetError, default_ruleset_path
    from rules.runner import DAY_MS, naive_points, run, summary_json
    from streams.progress import progress, wide
    from streams.replay import ReplayError, open_events, span_days

    base_path = against or default_ruleset_path()
    try:
        tested, base = RuleSet.load(ruleset), RuleSet.load(base_path)
        open_events(events).close()
    except RuleSetError as e:
        _fail(f"rule set rejected: {e}")
    except ReplayError as e:
        _fail(f"{e}: give --events a replay file (`zt simulate` writes one)")
    days = span_days(events)
    if days is not None and days <= warmup_days:
        _fail(f"{events} covers {days:.1f} days and the warm-up takes the first {warmup_days}: "
              f"nothing would be measured; give --warmup-days {max(int(days) - 1, 0)} or a longer "
              "file")
    with progress("backtest", "lines", console=err, quiet=quiet) as bar:
        try:
            result = run(events, [tested, base], progress=bar.update)
        except ReplayError as e:
            _fail(str(e))
    since = (result.first_ms or 0) + warmup_days * DAY_MS

    def rules_of(rs: RuleSet) -> list[tuple[str, str]]:
        return [(r.id, r.mode) for r in rs.rules]

    m_new = measure(result.points[0], result.reports, label=tested.version, since_ms=since,
                    rule_order=rules_of(tested))
    m_base = measure(result.points[1], result.reports, label=f"in force: {base.version}",
                     since_ms=since, rule_order=rules_of(base))
    m_naive = None
    if naive and events.suffix != ".gz":
        m_naive = measure(naive_points(events, naive_large_cny, warmup_days), result.reports,
                          label=f"naive ({naive_large_cny:,} CNY)",
                          since_ms=since)
    diff = compare(m_new, m_base)

    table = Table(title=f"backtest of {tested.version} on {events.name} "
                        f"({sum(result.scoring_points.values()):,} scoring points, "
                        f"warm-up {warmup_days} days)")
    table.add_column("detector", no_wrap=True)
    for col in ("flagged", "true pos.", "victims", "precision", "recall"):
        table.add_column(col, justify="right")
    for m in (m_new, m_base, m_naive):
        if m is not None:
            table.add_row(m.label, f"{m.flagged:,}", f"{m.true_positives:,}", f"{m.victims:,}",
                          _pct(m.precision), _pct(m.recall))
    tables = wide(out)
    tables.print(table)

    per_rule = Table(title=f"rules of {tested.version}: hits, and persons later reported")
    per_rule.add_column("rule", no_wrap=True)
    per_rule.add_column("mode", no_wrap=True)
    for col in ("hits", "persons", "confirmed", "precision", "hits vs in force"):
        per_rule.add_column(col, justify="right")
    for r in m_new.rules:
        d = diff.hits_delta.get(r.rule_id)
        was = diff.modes_changed.get(r.rule_id)
        per_rule.add_row(r.rule_id, f"{r.mode} (was {was})" if was else r.mode, f"{r.hits:,}",
                         f"{r.persons:,}", f"{r.confirmed:,}", _pct(r.precision),
                         "new" if d is None else f"{d:+,}")
    tables.print(per_rule)

    types = Table(title=f"victims flagged before their report, by fraud type (tested: "
                        f"{tested.version}; in force: {base.version})")
    types.add_column("fraud type", no_wrap=True)
    types.add_column("victims", justify="right")
    for m, head in ((m_new, "tested"), (m_base, "in force"), (m_naive, "naive")):
        if m is not None:
            types.add_column(head, justify="right")
    for ftype in sorted(m_new.by_type):
        row = [ftype, f"{m_new.by_type[ftype][0]}"]
        row += [f"{m.by_type.get(ftype, (0, 0))[1]}" for m in (m_new, m_base, m_naive)
                if m is not None]
        types.add_row(*row)
    tables.print(types)

    same = tested.digest == base.digest
    out.print(("the tested rule set is the one in force" if same else
               f"difference from {base.version}: precision {_signed(diff.precision_delta)}, "
               f"recall {_signed(diff.recall_delta)}; {diff.newly_flagged:,} persons newly "
               f"flagged, {diff.no_longer_flagged:,} no longer; {diff.newly_caught:,} victims "
               f"newly caught, {diff.no_longer_caught:,} no longer; rules added: "
               f"{', '.join(diff.rules_added) or 'none'}; removed: "
               f"{', '.join(diff.rules_removed) or 'none'}"), soft_wrap=True)
    out.print(f"{result.lines:,} lines ({result.rejected:,} rejected) in {result.seconds:.1f} s; "
              f"rule evaluation {result.us_per_point(0):.1f} us per scoring point "
              f"({tested.version})", soft_wrap=True)
    if json_out is not None:
        doc: dict[str, Any] = {
            "events": str(events), "warmup_days": warmup_days, "run": summary_json(result),
            "eval_us_per_point": {tested.version: round(result.us_per_point(0), 2),
                                  base.version: round(result.us_per_point(1), 2)},
            "tested": m_new.to_json(), "in_force": m_base.to_json(),
            "naive": m_naive.to_json() if m_naive else None,
            "difference": diff.to_json(),
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        out.print(f"results -> {json_out}")


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(2)


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.1f} points"


def main() -> None:
    """``python -m rules.cli RULESET --events FILE``, until ``zt rules test`` is registered."""
    app = typer.Typer(add_completion=False)
    app.command()(rules_test)
    app()


if __name__ == "__main__":
    main()
