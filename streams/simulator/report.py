"""What the users report (DOMAIN.md), from a closed-loop run and its counterfactual: warnings,
calls, visits, holds and stop-payments with amounts, the zero-transfer rate, losses with and
without the pipeline. Also the summary table and the plots."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from streams.eventtime import parse

from .fraud import NEVER

if TYPE_CHECKING:
    from .city import City
    from .respond import Responder


def _losses(city: City) -> dict[str, int]:
    out: Counter[str] = Counter()
    for ep in city.fraud.episodes:
        out[ep.type] += ep.loss - ep.recovered
    return dict(out)


def loop_report(city: City, base: City, responder: Responder) -> dict[str, Any]:
    tasks = responder.tasks
    by_action = Counter(t["action"] for t in tasks)
    oc = responder.outcomes
    victims_at: dict[str, list[tuple[int, int]]] = {}
    for ep in city.fraud.episodes:
        victims_at.setdefault(f"P{ep.victim:07d}", []).append((ep.start - 3_600_000, ep.end))

    def on_victim(task: dict[str, Any]) -> bool:
        t = parse(task["created_time"]).ms
        return any(s <= t <= e for s, e in victims_at.get(task["person_id"], ()))

    true_tasks = sum(on_victim(t) for t in tasks)
    warned = [ep for ep in city.fraud.episodes if ep.warned < NEVER]
    zero = [ep for ep in warned if not any(
        p.status == "completed" and p.t >= ep.warned for p in ep.payments)]
    off, on = _losses(base), _losses(city)
    types = sorted(set(off) | set(on))
    loss_off, loss_on = sum(off.values()), sum(on.values())
    eps_with_loss = [ep for ep in city.fraud.episodes if any(p.txn_id for p in ep.payments)]
    return {
        "persons": city.pop.n, "days": city.days, "seed": city.seed,
        "episodes": len(city.fraud.episodes),
        "warnings": len(tasks), "warnings_by_action": dict(sorted(by_action.items())),
        "warning_precision": round(true_tasks / len(tasks), 3) if tasks else None,
        "persons_warned": len({t["person_id"] for t in tasks}),
        "victims_warned": len({ep.victim for ep in city.fraud.episodes
                               if any(on_victim(t) for t in tasks
                                      if t["person_id"] == f"P{ep.victim:07d}")}),
        "victims_with_transfers": len(eps_with_loss),
        "dissuasion_calls": sum(v for k, v in oc.items() if k.startswith("call:")),
        "calls_reached": sum(v for k, v in oc.items()
                             if k.startswith("call:") and not k.endswith("unreachable")),
        "visits": oc.get("visit:visited", 0),
        "dissuaded": oc.get("call:dissuaded", 0) + oc.get("visit:dissuaded", 0),
        "holds": oc.get("hold:held", 0), "held_fen": responder.amounts["held_fen"],
        "stop_payments": oc.get("stop_payment:stopped", 0),
        "stopped_fen": responder.amounts["stopped_fen"],
        "stops_on_honest_accounts": responder.false_stops,
        "desk_waits": responder.desk_waits,  # calls and visits that waited for a busy desk
        "victims_reached": len(warned),
        "zero_transfer_rate": round(len(zero) / len(warned), 3) if warned else None,
        "defrauded_after_warning": len(warned) - len(zero),
        "loss_without_pipeline_fen": loss_off, "loss_with_pipeline_fen": loss_on,
        "loss_prevented_fen": loss_off - loss_on,
        "loss_prevented_share": round((loss_off - loss_on) / loss_off, 3) if loss_off else None,
        "loss_by_type_fen": {t: {"without": off.get(t, 0), "with": on.get(t, 0)} for t in types},
        "outcomes": dict(sorted(oc.items())),
    }


def cny(fen: int) -> str:
    return f"{fen / 100:,.0f}"


def loop_table(r: dict[str, Any]) -> Table:
    t = Table(title=f"Closed loop: {r['persons']:,} persons, {r['days']} days, seed {r['seed']}")
    t.add_column("what the users report")
    t.add_column("value", justify="right")
    rows = [
        ("fraud episodes (ground truth)", f"{r['episodes']}"),
        ("warning tasks", f"{r['warnings']} " + str(r["warnings_by_action"])),
        ("share of tasks about a real victim", f"{r['warning_precision']}"),
        ("dissuasion calls (reached)", f"{r['dissuasion_calls']} ({r['calls_reached']})"),
        ("face-to-face visits", f"{r['visits']}"),
        ("dissuaded", f"{r['dissuaded']}"),
        ("holds (CNY held)", f"{r['holds']} ({cny(r['held_fen'])})"),
        ("stop-payments (CNY stopped)", f"{r['stop_payments']} ({cny(r['stopped_fen'])})"),
        ("victims reached by a warning", f"{r['victims_reached']}"),
        ("zero-transfer rate after a warning", f"{r['zero_transfer_rate']}"),
        ("losses without the pipeline (CNY)", cny(r["loss_without_pipeline_fen"])),
        ("losses with the pipeline (CNY)", cny(r["loss_with_pipeline_fen"])),
        ("losses prevented (CNY)", f"{cny(r['loss_prevented_fen'])} "
                                   f"({r['loss_prevented_share']})"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t


def city_table(counts: dict[str, int], seconds: float, truth_counts: dict[str, int]) -> Table:
    t = Table(title="Simulated city")
    t.add_column("topic")
    t.add_column("records", justify="right")
    for k, v in counts.items():
        t.add_row(k, f"{v:,}")
    total = sum(counts.values())
    t.add_row("total", f"{total:,}")
    t.add_row("seconds", f"{seconds:.1f}")
    t.add_row("records/s", f"{total / max(seconds, 1e-9):,.0f}")
    for k, v in truth_counts.items():
        t.add_row(f"truth: {k}", f"{v:,}")
    return t


def plot_losses(r: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    types = list(r["loss_by_type_fen"])
    off = [r["loss_by_type_fen"][t]["without"] / 100 for t in types]
    on = [r["loss_by_type_fen"][t]["with"] / 100 for t in types]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    y = range(len(types))
    ax.barh([i + 0.2 for i in y], off, height=0.4, label="without the pipeline", color="#c44")
    ax.barh([i - 0.2 for i in y], on, height=0.4, label="with the pipeline", color="#48a")
    ax.set_yticks(list(y), [t.replace("_", " ") for t in types])
    ax.set_xlabel("losses, CNY (net of stop-payments)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.set_title(f"Losses by fraud type: {r['persons']:,} persons, {r['days']} days, "
                 f"seed {r['seed']}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pick_episode(city: City, responder: Responder) -> Any:
    """The most eventful warned episode: the one worth a timeline."""
    best, score = None, -1
    for ep in city.fraud.episodes:
        pid = f"P{ep.victim:07d}"
        n_tasks = sum(t["person_id"] == pid for t in responder.tasks)
        s = (n_tasks * 3 + len(ep.payments) + (5 if ep.warned < NEVER else 0)
             + (5 if ep.end <= city.engine.horizon else 0))
        if s > score and ep.payments:
            best, score = ep, s
    return best


def plot_episode(city: City, responder: Responder, path: str | Path, ep: Any = None) -> None:
    """One victim's episode: fraud calls, warning tasks, desk outcomes, transfers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = ep or pick_episode(city, responder)
    if ep is None:  # a city too small or too short to hold a fraud with a transfer
        fig, ax = plt.subplots(figsize=(10, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no fraud episode with a transfer in this run", ha="center")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return
    t0 = ep.start
    hours = 3_600_000

    def h(t: int) -> float:
        return (t - t0) / hours

    pid = f"P{ep.victim:07d}"
    fig, ax = plt.subplots(figsize=(10, 4))
    for t, kind, a in ep.steps:
        if kind == "call":
            ax.barh(3, a["duration"] / 3600, left=h(t), height=0.5, color="#c44")
        elif kind == "sms":
            ax.plot(h(t), 3, "v", color="#c44")
        elif kind == "move":
            ax.plot(h(t), 1, "s", color="#999")
    colors = {"completed": "#c44", "held": "#2a2", "failed": "#2a2", "skipped": "#bbb",
              "planned": "#bbb", "initiated": "#fa0"}
    for p in ep.payments:
        ax.scatter(h(p.t), 1, s=40 + 200 * (p.amount / max(x.amount for x in ep.payments)),
                   color=colors.get(p.status, "#000"), zorder=3)
        ax.annotate(f"{p.amount / 100:,.0f} {p.status}", (h(p.t), 1.15), fontsize=7,
                    rotation=30)
    marks = {"call": "o", "visit": "D", "hold": "^", "stop_payment": "P"}
    for task in responder.tasks:
        if task["person_id"] == pid:
            t = parse(task["created_time"]).ms
            ax.plot(h(t), 2, marks.get(task["action"], "x"), color="#48a", markersize=8)
            ax.annotate(task["action"], (h(t), 2.15), fontsize=7, rotation=30)
    if ep.dissuaded < NEVER:
        ax.axvline(h(ep.dissuaded), color="#2a2", linestyle="--", linewidth=1)
        ax.annotate("dissuaded", (h(ep.dissuaded), 3.6), fontsize=8, color="#2a2")
    if ep.end > city.engine.horizon:
        ax.axvline(h(city.engine.horizon), color="#666", linestyle=":", linewidth=1)
        ax.annotate("end of run", (h(city.engine.horizon), 3.6), fontsize=8, color="#666")
    ax.set_yticks([1, 2, 3], ["transfers", "warning tasks", "fraud calls / SMS"])
    ax.set_ylim(0.5, 3.8)
    ax.set_xlabel(f"hours since the episode began ({city.clock.fmt(t0)})")
    title = f"{ep.type.replace('_', ' ')}: victim aged {int(city.pop.age[ep.victim])}"
    if ep.warned < NEVER:
        title += f", reached by a desk after {h(ep.warned):.1f} h"
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_centre(f: dict[str, Any], r: dict[str, Any], path: str | Path) -> None:
    """The anti-fraud centre's figures (``f``: the workers' or replay's, see
    ``streams.replay.figures``) beside the city's losses with and without it (``r``:
    ``loop_report``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4.5))
    names = ["dissuasion\ncalls", "visits", "holds", "stop-\npayments"]
    asked = [f["calls"], f["visits"], f["holds"], f["stop_payments"]]
    done = [f["dissuaded"], f["visited"], f["held"], f["stopped"]]
    x = range(len(names))
    a.bar([i - 0.2 for i in x], asked, width=0.4, color="#48a", label="tasks")
    a.bar([i + 0.2 for i in x], done, width=0.4, color="#2a2",
          label="done: dissuaded on the phone / visited / held / stopped")
    a.set_xticks(list(x), names)
    a.set_title(f"warning tasks: {f['warned_persons']:,.0f} people warned")
    a.legend(fontsize=8)
    money = [("hold\nasked", f["hold_requested_cny"], "#48a"), ("held", f["held_cny"], "#2a2"),
             ("stop\nasked", f["stop_requested_cny"], "#48a"), ("stopped", f["stopped_cny"], "#2a2"),
             ("losses\nwithout", r["loss_without_pipeline_fen"] / 100, "#c44"),
             ("losses\nwith", r["loss_with_pipeline_fen"] / 100, "#e99")]
    b.bar([m[0] for m in money], [m[1] for m in money], color=[m[2] for m in money])
    b.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    b.set_title(f"CNY: losses prevented {r['loss_prevented_fen'] / 100:,.0f}")
    windows = ["24h", "72h"]
    rates = [f[f"zero_transfer_rate_{w}"] or 0 for w in windows]
    bars = c.bar(windows, rates, color="#2a2")
    for bar, w in zip(bars, windows, strict=True):
        judged = f[f"zero_transfer_judged_{w}"]
        c.annotate(f"{judged:,.0f} judged" if judged else "none judged yet",
                   (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                   va="bottom", fontsize=9)
    c.set_ylim(0, 1.1)
    c.set_title("zero-transfer rate after a first warning")
    fig.suptitle(f"The anti-fraud centre at work: {r['persons']:,} persons, {r['days']} days, "
                 f"seed {r['seed']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
