"""The evaluation's plots: precision-recall curves (model, model without call features, rules),
calibration, and score distributions by label, one panel per scoring point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from models import metrics as m

FILES = ("pr_curve.png", "calibration.png", "scores.png")


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def write_plots(frames: dict[str, pd.DataFrame], out: Path, title: str) -> list[Path]:
    plt = _plt()
    points = [p for p, f in frames.items() if len(f) and f["y"].sum() > 0]
    paths = []

    fig, axes = plt.subplots(1, len(points), figsize=(5 * len(points), 4), squeeze=False)
    for ax, p in zip(axes[0], points, strict=True):
        f = frames[p]
        y = f["y"].to_numpy()
        for col, label in (("score", "model"), ("score_abl", "model without call features"),
                           ("rule_score", "rules")):
            if col not in f:
                continue
            prec, rec, _ = precision_recall_curve(y, f[col].to_numpy())
            ap = m.ranking(y, f[col].to_numpy())["pr_auc"]
            ax.step(rec, prec, where="post", label=f"{label} (AP {ap})")
        ax.set(title=f"{p} point", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(fontsize=8)
    fig.suptitle(f"precision-recall, {title}")
    fig.tight_layout()
    paths.append(_save(fig, out / FILES[0]))

    fig, axes = plt.subplots(1, len(points), figsize=(5 * len(points), 4), squeeze=False)
    for ax, p in zip(axes[0], points, strict=True):
        f = frames[p]
        cal = m.calibration(f["y"].to_numpy(), f["score"].to_numpy(), bins=15)["bins"]
        xs = [b["mean_score"] for b in cal]
        ys = [b["fraud_rate"] for b in cal]
        lo = max(min([x for x in xs + ys if x and x > 0], default=1e-4), 1e-5)
        ax.plot([lo, 1], [lo, 1], color="grey", lw=0.8, ls="--", label="perfect")
        ax.plot(xs, ys, marker="o", label="model")
        ax.set(xscale="log", yscale="log", title=f"{p} point", xlabel="mean predicted P(fraud)",
               ylabel="observed fraud rate")
        ax.legend(fontsize=8)
    fig.suptitle(f"calibration (quantile bins), {title}")
    fig.tight_layout()
    paths.append(_save(fig, out / FILES[1]))

    fig, axes = plt.subplots(1, len(points), figsize=(5 * len(points), 4), squeeze=False)
    bins = np.linspace(0, 1, 41)
    for ax, p in zip(axes[0], points, strict=True):
        f = frames[p]
        for lab, name in ((0, "not fraud"), (1, "fraud")):
            s = f.loc[f["y"] == lab, "score"].to_numpy()
            ax.hist(s, bins=bins, density=True, alpha=0.55, label=f"{name} ({len(s):,})")
        ax.set(yscale="log", title=f"{p} point", xlabel="calibrated P(fraud)", ylabel="density")
        ax.legend(fontsize=8)
    fig.suptitle(f"score distributions, {title}")
    fig.tight_layout()
    paths.append(_save(fig, out / FILES[2]))
    return paths


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    _plt().close(fig)
    return path
