"""``zt evaluate``: the users' figures on cities with a ground truth, beside the naive detector.

Each city (a replay file with its ``*.truth.jsonl`` beside it, from ``zt simulate`` or from
``bench/worlds``) is replayed with the rule set and model the workers would use, its tasks are
judged against the truth (``models/scorecard.py``), and so are the naive two-rule detector's
alerts. The figures go to a JSON file and a plot; the table is printed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.scorecard import (
    Scorecard,
    Truth,
    judge,
    naive_tasks,
    read_targeted,
    read_tasks,
    read_txns,
    truth_path,
)

# The figures of the table, in the users' words, and the issue's bar for each (None: no bar).
FIGURES: tuple[tuple[str, str, str, float | None], ...] = (
    ("warned_before_loss", "victims warned before their loss", ">=", 0.95),
    ("warned_before_first_transfer", "victims warned before their first transfer", ">=", None),
    ("money_intercepted", "fraud money intercepted", ">=", 0.90),
    ("person_precision", "person precision (warned persons who are victims)", ">=", 0.50),
    ("person_precision_with_fraud_calls",
     "person precision, counting those on a call with a fraud line", ">=", None),
    ("non_victims_warned_per_10k_day", "non-victims warned per 10,000 residents a day", "<=", 5.0),
    ("wrong_money_tasks_per_10k_day", "hold / stop-payment tasks on honest transfers per 10,000 "
     "residents a day", "<=", 5.0),
)


def meets(value: float | None, op: str, bar: float | None) -> bool | None:
    if bar is None or value is None:
        return None
    return value >= bar if op == ">=" else value <= bar


def evaluate_city(events: Path, ruleset: Any, scorer: Any, jobs: int = 1,
                  naive: bool = True, step: Callable[[str], None] | None = None
                  ) -> dict[str, Any]:
    """Replay ``events`` (the tasks to a temporary file) and judge them and the naive
    detector's against the city's truth."""
    from streams.replay import replay

    truth_file = truth_path(events)
    if not truth_file.is_file():
        raise ValueError(f"{events}: no ground truth beside it ({truth_file.name}); "
                         "evaluate cities from `zt simulate` or `python -m bench.worlds`")
    truth = Truth.read(truth_file)
    if step:
        step(f"{events.name}: reading the truth")
    txns = read_txns(events)
    targeted = read_targeted(events, truth.fraud_numbers)
    with tempfile.TemporaryDirectory(prefix="zt-evaluate-") as tmp:
        if step:
            step(f"{events.name}: replay")
        tasks_path = Path(tmp) / "tasks.jsonl"
        replay(events, tasks_path, Path(tmp) / "dead-letter.jsonl", ruleset=ruleset,
               scorer=scorer, jobs=jobs)
        ours = judge(read_tasks(tasks_path), truth, txns, targeted=targeted)
    out: dict[str, Any] = {"city": str(events), "source": truth.source, "persons": truth.persons,
                           "days": truth.days, "zerotransfer": _card(ours)}
    if naive:
        if step:
            step(f"{events.name}: the naive detector")
        out["naive"] = _card(judge(naive_tasks(events), truth, txns, targeted=targeted))
    return out


def _card(card: Scorecard) -> dict[str, Any]:
    return {**card.as_dict(), "missed": card.missed[:20]}


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Per city: the shares of victims warned before loss and of money intercepted, ours beside
    the naive detector's; and the money intercepted by a transfer's index in its episode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [Path(r["city"]).stem for r in results]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key, title in ((axes[0], "warned_before_loss", "victims warned before their loss"),
                           (axes[1], "money_intercepted", "fraud money intercepted")):
        ours = [r["zerotransfer"]["figures"][key] or 0 for r in results]
        naive = [(r.get("naive") or {}).get("figures", {}).get(key) or 0 for r in results]
        ax.bar(x - 0.2, ours, 0.4, label="ZeroTransfer", color="#1f6f8b")
        ax.bar(x + 0.2, naive, 0.4, label="naive two rules", color="#c9c9c9")
        ax.axhline(0.95 if key == "warned_before_loss" else 0.90, color="#b33", lw=1, ls="--")
        ax.set_title(title)
        ax.set_ylim(0, 1.05)
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    axes[0].legend(loc="lower left", fontsize=8)
    bands = ("1st", "2nd", "3rd+")
    for i, band in enumerate(bands):
        vals = [r["zerotransfer"]["by_index"][band]["money_intercepted"] or 0 for r in results]
        axes[2].bar(x + (i - 1) * 0.27, vals, 0.27, label=f"{band} payment")
    axes[2].set_title("money intercepted by payment in the episode")
    axes[2].set_ylim(0, 1.05)
    axes[2].set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    axes[2].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate_cities(cities: list[Path], ruleset: Any, scorer: Any, jobs: int = 1,
                    naive: bool = True, step: Callable[[str], None] | None = None
                    ) -> list[dict[str, Any]]:
    return [evaluate_city(c, ruleset, scorer, jobs, naive, step) for c in cities]


def fmt_value(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.3f}" if value <= 1 else f"{value:,.2f}"
