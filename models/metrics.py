"""The figures a desk and a reviewer care about, as pure functions over scored rows.

Rows are a point's frame (``models.dataset``) with a ``score`` column; ``y`` is 1/0 (rows
labelled -1 are dropped before these functions see them).

>>> import pandas as pd
>>> df = pd.DataFrame({"person_id": ["a", "b", "c", "a"], "day": [0, 0, 0, 1],
...                    "y": [1, 0, 0, 0], "score": [0.9, 0.2, 0.4, 0.1]})
>>> at_capacity(df, k=1)["precision"]
0.5
>>> alert_threshold([df], k=1, days=2)
0.4
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def ranking(y: np.ndarray, s: np.ndarray) -> dict[str, Any]:
    """PR-AUC (average precision), ROC-AUC and Brier score; None where undefined."""
    pos = int(y.sum())
    out: dict[str, Any] = {"rows": len(y), "positives": pos, "prevalence": _r(pos / len(y), 6)
                           if len(y) else None}
    if pos == 0 or pos == len(y):
        out.update(pr_auc=None, roc_auc=None, brier=None)
        return out
    out.update(pr_auc=_r(average_precision_score(y, s)), roc_auc=_r(roc_auc_score(y, s)),
               brier=_r(brier_score_loss(y, s), 6))
    return out


def person_days(df: pd.DataFrame, score: str = "score") -> pd.DataFrame:
    """One row per (day, person): what a desk sees as one task (the highest score, any fraud)."""
    g = df.groupby(["day", "person_id"], sort=False)
    return g.agg(score=(score, "max"), y=("y", "max")).reset_index()


def at_capacity(df: pd.DataFrame, k: int, score: str = "score") -> dict[str, Any]:
    """Precision and recall when the desk works the k highest-scored persons of each day."""
    pdays = person_days(df, score)
    top = (pdays.sort_values(["day", "score", "person_id"], ascending=[True, False, True])
           .groupby("day", sort=False).head(k))
    tp = int(top["y"].sum())
    pos = int(pdays["y"].sum())
    return {"k_per_day": k, "tasks": len(top), "true": tp,
            "precision": _r(tp / len(top)) if len(top) else None,
            "recall": _r(tp / pos) if pos else None}


def alert_threshold(frames: list[pd.DataFrame], k: int, days: int, score: str = "score") -> float:
    """The score above which about k persons a day are alerted (over both points together)."""
    pdays = pd.concat([person_days(f, score) for f in frames if len(f)])
    pdays = pdays.groupby(["day", "person_id"])["score"].max().sort_values(ascending=False)
    n = max(1, k * days)
    if len(pdays) == 0:
        return 1.0
    return float(pdays.iloc[min(n, len(pdays)) - 1])


def at_threshold(df: pd.DataFrame, tau: float, days: int, score: str = "score") -> dict[str, Any]:
    """Alerts at a fixed threshold: alerted person-days a day, precision, recall of rows."""
    pdays = person_days(df, score)
    hit = pdays["score"] >= tau
    tp = int((hit & (pdays["y"] == 1)).sum())
    pos = int(pdays["y"].sum())
    return {"threshold": _r(tau, 6), "alerts_per_day": _r(hit.sum() / max(days, 1), 2),
            "precision": _r(tp / hit.sum()) if hit.sum() else None,
            "recall": _r(tp / pos) if pos else None}


def precision_at_recall(y: np.ndarray, s: np.ndarray, recall: float) -> float | None:
    """The best precision of ``s`` at a recall of at least ``recall``."""
    order = np.argsort(-s, kind="stable")
    ys = y[order]
    tp = np.cumsum(ys)
    pos = ys.sum()
    if pos == 0:
        return None
    # Only cut between distinct scores: tied rows are alerted together.
    distinct = np.r_[np.diff(s[order]) != 0, True]
    rec = tp[distinct] / pos
    prec = tp[distinct] / (np.flatnonzero(distinct) + 1)
    ok = rec >= recall - 1e-12
    return _r(prec[ok].max()) if ok.any() else None


def noisy_or(rule: np.ndarray, model: np.ndarray) -> np.ndarray:
    """How the core combines them: either source alone can carry the risk."""
    return 1 - (1 - rule) * (1 - model)


def versus_rules(y: np.ndarray, model: np.ndarray, rule: np.ndarray) -> dict[str, Any]:
    """The rules at their own operating point (any enforcing hit) against the model alone and
    the rules combined with the model (noisy-OR, as the core decides), at equal recall."""
    fired = rule > 0
    pos = int(y.sum())
    out: dict[str, Any] = {"rule_alerts": int(fired.sum()), "rule_precision": None,
                           "rule_recall": None, "model_precision_at_rule_recall": None,
                           "combined_precision_at_rule_recall": None}
    if pos == 0 or not fired.any():
        return out
    tp = int((fired & (y == 1)).sum())
    rec = tp / pos
    both = noisy_or(rule, model)
    out.update(rule_precision=_r(tp / fired.sum()), rule_recall=_r(rec),
               model_precision_at_rule_recall=precision_at_recall(y, model, rec) if tp else None,
               combined_precision_at_rule_recall=precision_at_recall(y, both, rec) if tp else None,
               rule_pr_auc=_r(average_precision_score(y, rule)),
               combined_pr_auc=_r(average_precision_score(y, both)))
    return out


def calibration(y: np.ndarray, s: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability by quantile bins of the score, and the expected calibration error."""
    if len(y) == 0:
        return {"bins": [], "ece": None}
    edges = np.unique(np.quantile(s, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, max(len(edges) - 2, 0))
    rows, ece = [], 0.0
    for b in np.unique(idx):
        m = idx == b
        mean_s, rate = float(s[m].mean()), float(y[m].mean())
        ece += m.sum() / len(y) * abs(mean_s - rate)
        rows.append({"mean_score": _r(mean_s, 6), "fraud_rate": _r(rate, 6), "rows": int(m.sum())})
    return {"bins": rows, "ece": _r(ece, 6)}


def by_type(df: pd.DataFrame, fn: Any) -> dict[str, Any]:
    """``fn`` on each fraud type's positives against all the negatives."""
    out = {}
    neg = df[df["y"] == 0]
    for t in sorted(x for x in df.loc[df["y"] == 1, "fraud_type"].unique() if x):
        out[t] = fn(pd.concat([neg, df[(df["y"] == 1) & (df["fraud_type"] == t)]]))
    return out


def early_recall(reports: list[Any], scored: list[pd.DataFrame], tau: float,
                 lo_ms: int, hi_ms: int) -> dict[str, Any]:
    """Share of reported episodes alerted (score >= tau, at either point) after the fraud began
    and before its first fraudulent transfer completed; episodes whose first transfer completed
    within [lo_ms, hi_ms) count. Per fraud type too."""
    rows = pd.concat([f[["person_id", "t_ms", "score"]] for f in scored if len(f)])
    alerts = rows[rows["score"] >= tau]
    by_person = {p: g["t_ms"].to_numpy() for p, g in alerts.groupby("person_id")}
    total: dict[str, list[int]] = {}
    for r in reports:
        first = r.first_completed_ms
        if first is None or not lo_ms <= first < hi_ms:
            continue
        t = by_person.get(r.person_id)
        hit = int(t is not None and bool(((t >= r.start_ms) & (t < first)).any()))
        for key in ("all", r.fraud_type):
            total.setdefault(key, []).append(hit)
    return {k: {"episodes": len(v), "alerted_before_first_transfer": sum(v),
                "recall": _r(sum(v) / len(v))} for k, v in sorted(total.items())}
