"""Evaluation: a registered model against labelled replay rows, the rules, and itself without
call features.

Every figure is computed per scoring point, on the days a model never trained on: the test days
of its own training file, or every matured day of another city (``zt models evaluate``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from models import metrics as m
from models.dataset import Clock, collect
from models.features import POINTS
from models.labels import LabelBook
from models.registry import ABLATION_FILE, Registry
from models.scorer import ModelScorer


def score_frames(frames: dict[str, pd.DataFrame], main: ModelScorer,
                 abl: ModelScorer | None) -> dict[str, pd.DataFrame]:
    """Labelled rows (y >= 0) with ``score`` and, given an ablation, ``score_abl``."""
    out = {}
    for p, df in frames.items():
        df = df[df["y"] >= 0]
        extra = {"score": main.score_matrix(p, df[list(main.features(p))].to_numpy())}
        if abl is not None:
            extra["score_abl"] = abl.score_matrix(p, df[list(abl.features(p))].to_numpy())
        out[p] = df.assign(**extra)
    return out


def _rel(new: float | None, old: float | None) -> float | None:
    return None if new is None or not old else round((new - old) / old, 4)


def evaluate_frames(frames: dict[str, pd.DataFrame], book: LabelBook, main: ModelScorer,
                    abl: ModelScorer | None, tau: float, k: int, days: tuple[int, int],
                    clock: Clock) -> dict[str, Any]:
    """All the figures of one evaluation, as a JSON-ready dict."""
    sc = score_frames(frames, main, abl)
    n_days = days[1] - days[0] + 1
    report: dict[str, Any] = {"days": list(days), "capacity_per_day": k,
                              "alert_threshold": round(tau, 6), "points": {}}
    for p in POINTS:
        df = sc[p]
        y, s = df["y"].to_numpy(), df["score"].to_numpy()
        r: dict[str, Any] = {
            **m.ranking(y, s),
            "calibration": m.calibration(y, s),
            "at_capacity": m.at_capacity(df, k),
            "at_threshold": m.at_threshold(df, tau, n_days),
            "by_type": m.by_type(df, lambda d: {
                **{key: v for key, v in m.ranking(d["y"].to_numpy(), d["score"].to_numpy())
                   .items() if key in ("positives", "pr_auc", "roc_auc")},
                "precision_at_capacity": m.at_capacity(d, k)["precision"],
                "recall_at_capacity": m.at_capacity(d, k)["recall"]}),
            "rules": m.versus_rules(y, s, df["rule_score"].to_numpy()),
        }
        if abl is not None:
            a = df["score_abl"].to_numpy()
            with_cap, without = r["at_capacity"], m.at_capacity(df, k, "score_abl")
            r["without_call_features"] = {
                "pr_auc": m.ranking(y, a)["pr_auc"], "at_capacity": without,
                "relative_change_in_recall_at_capacity": _rel(with_cap["recall"],
                                                               without["recall"]),
                "relative_change_in_pr_auc": _rel(r["pr_auc"], m.ranking(y, a)["pr_auc"])}
        report["points"][p] = r
    both = pd.concat([sc[p].assign(point=p) for p in POINTS if len(sc[p])])
    lo = _day_start(clock, days[0])
    hi = _day_start(clock, days[1] + 1)
    combined = {"at_capacity": m.at_capacity(both, k), "at_threshold": m.at_threshold(both, tau, n_days)}
    pdays = both.groupby(["day", "person_id"]).agg(y=("y", "max"), score=("score", "max"),
                                                   rule=("rule_score", "max"))
    combined["rules"] = m.versus_rules(pdays["y"].to_numpy(), pdays["score"].to_numpy(),
                                       pdays["rule"].to_numpy())
    report["combined"] = combined
    scored = [sc[p] for p in POINTS]
    report["early_recall"] = {
        "model": m.early_recall(book.reports, scored, tau, lo, hi),
        "rules": m.early_recall(book.reports, [f.assign(score=f["rule_score"]) for f in scored],
                                1e-9, lo, hi)}
    if abl is not None:
        w, wo = m.at_capacity(both, k), m.at_capacity(both, k, "score_abl")
        report["ablation"] = {
            "measure": "recall of fraud at equal alert volume (the top k persons a day)",
            "transfer": report["points"]["transfer"]["without_call_features"],
            "contact": report["points"]["contact"]["without_call_features"],
            "combined": {"with": w, "without": wo,
                         "relative_change_in_recall": _rel(w["recall"], wo["recall"])}}
    return report


def _day_start(clock: Clock, day: int) -> int:
    return (clock.day0 + day) * 86_400_000 - clock.offset_min * 60_000


def evaluate_file(events: Path, registry: Registry, version: str | None, out: Path | None,
                  capacity: int | None = None, warmup_days: int | None = None,
                  maturity_days: int | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  core_factory: Callable[..., Any] | None = None) -> tuple[dict[str, Any], Path]:
    """The whole of ``zt models evaluate``: figures as JSON, plots as PNG, in ``out``."""
    from models.plots import write_plots

    version = registry.resolve(version)
    card = registry.card(version)
    main = ModelScorer(registry.load_artifact(version))
    abl_path = registry.path(version) / ABLATION_FILE
    abl = ModelScorer(registry.load_artifact(version, ABLATION_FILE)) if abl_path.is_file() else None
    ds = collect(events, progress, core_factory)
    cfg = card.get("config", {})
    warm = warmup_days if warmup_days is not None else cfg.get("warmup_days", 1)
    mature = maturity_days if maturity_days is not None else cfg.get("maturity_days", 2)
    last = int(ds.clock.days(np.array([ds.last_ms]))[0]) - mature
    days = (warm, last)
    note = "every matured day of a file the model never saw"
    if ds.fingerprint == card["data"]["sha256"]:
        days = tuple(card["data"]["split_days"]["test"])  # type: ignore[assignment]
        note = "the test days of the model's own training file (held out by time)"
    if days[1] < days[0]:
        raise ValueError(f"{events} has no matured day to evaluate after {warm} warm-up days")
    frames = {p: f[(f["day"] >= days[0]) & (f["day"] <= days[1])] for p, f in ds.frames.items()}
    k = capacity or card["thresholds"]["capacity_per_day"]
    tau = float(card["thresholds"]["alert"])
    report = evaluate_frames(frames, ds.book, main, abl, tau, k, days, ds.clock)  # type: ignore[arg-type]
    report = {"model": version, "events": str(events), "sha256": ds.fingerprint,
              "persons": ds.persons, "case_reports": len(ds.book.reports), "evaluated": note,
              **report}
    out = out or registry.path(version) / f"eval-{ds.fingerprint[:8]}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_bytes(orjson.dumps(
        report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    write_plots(score_frames(frames, main, abl), out, version)
    return report, out
