"""Training: replay a file through the core, label from its case reports, split by time, fit one
calibrated gradient-boosted classifier per scoring point, and register it with its card.

Why these choices (docs/models.md has the longer story):

* ``HistGradientBoostingClassifier``: tabular features of mixed scales and flags, interactions
  that matter (a long call *and* a new payee), missing values routed natively, fast to fit and
  to score in batches; with a few hundred positives a deeper learner would only overfit.
* class imbalance: ``class_weight="balanced"`` (fraud is well under 1% of rows), then the
  probabilities are calibrated on a later, held-out slice of days, which undoes the weighting.
* calibration: isotonic when the calibration slice holds at least ``ISOTONIC_MIN_POSITIVES``
  positives, else Platt's sigmoid (isotonic overfits a handful of positives).
* split by time: train on the earliest days, calibrate on the next ones, test on the last
  matured ones. The first ``warmup_days`` are skipped (the state has no history yet, every payee
  is new) and the last ``maturity_days`` too (their case reports are not filed yet).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from models.dataset import Dataset
from models.features import CALL_FEATURES, POINT_FEATURES, POINTS
from models.registry import ABLATION_FILE, MODEL_FILE, Registry

ISOTONIC_MIN_POSITIVES = 100
SPLITS = ("train", "calib", "test")
Step = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    warmup_days: int = 1
    maturity_days: int = 2
    calib_frac: float = 0.2
    test_frac: float = 0.25
    capacity: int | None = None  # desk tasks a day; default: 1 per 1,000 persons, at least 5
    # The model alone raises a task at a point when its score reaches that point's threshold,
    # set on the calibration days so that tasks on non-fraud rows stay within these budgets (per
    # 10,000 persons a day): holds on honest transfers, calls to persons not being defrauded.
    hold_budget_per_10k_day: float = 1.0
    call_budget_per_10k_day: float = 2.0
    max_iter: int = 150
    learning_rate: float = 0.1
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0

    def k(self, persons: int) -> int:
        return self.capacity if self.capacity else max(5, round(persons / 1000))


def split_days(first: int, last: int, calib_frac: float, test_frac: float) -> dict[str, tuple[int, int]]:
    """Inclusive day ranges: train earliest, then calibration, then test (at least a day each).

    >>> split_days(1, 11, 0.2, 0.25)
    {'train': (1, 6), 'calib': (7, 8), 'test': (9, 11)}
    """
    n = last - first + 1
    if n < 3:
        raise ValueError(f"need at least 3 usable days to split by time, have {max(n, 0)} "
                         "(simulate more days, or lower --warmup-days / --maturity-days)")
    n_test = max(1, round(n * test_frac))
    n_cal = max(1, round(n * calib_frac))
    n_train = n - n_test - n_cal
    if n_train < 1:
        n_train, n_cal, n_test = n - 2, 1, 1
    a = first + n_train
    return {"train": (first, a - 1), "calib": (a, a + n_cal - 1), "test": (a + n_cal, last)}


def usable_days(ds: Dataset, cfg: TrainConfig) -> tuple[int, int]:
    last = int(ds.clock.days(np.array([ds.last_ms]))[0])
    return cfg.warmup_days, last - cfg.maturity_days


def assign(df: pd.DataFrame, ranges: dict[str, tuple[int, int]]) -> np.ndarray:
    """The split of each row ("" when outside every range or unlabelled)."""
    out = np.full(len(df), "", dtype=object)
    day = df["day"].to_numpy()
    for name, (a, b) in ranges.items():
        out[(day >= a) & (day <= b)] = name
    out[df["y"].to_numpy() < 0] = ""
    return out


def features_of(point: str, ablation: bool = False) -> tuple[str, ...]:
    names = POINT_FEATURES[point]
    return tuple(n for n in names if n not in CALL_FEATURES) if ablation else names


def fit_point(x: np.ndarray, y: np.ndarray, xc: np.ndarray, yc: np.ndarray,
              cfg: TrainConfig) -> tuple[Any, dict[str, Any]]:
    """A balanced gradient-boosted classifier, calibrated on the later slice (xc, yc)."""
    if y.sum() == 0 or y.sum() == len(y):
        raise ValueError("the training days hold only one class: simulate more persons or days")
    hgb = HistGradientBoostingClassifier(
        learning_rate=cfg.learning_rate, max_iter=cfg.max_iter, max_leaf_nodes=cfg.max_leaf_nodes,
        min_samples_leaf=cfg.min_samples_leaf, l2_regularization=cfg.l2_regularization,
        class_weight="balanced", early_stopping=False, random_state=cfg.seed)
    # One OpenMP thread: on a shared machine, spinning threads make the fit several times slower.
    with threadpool_limits(limits=1, user_api="openmp"):
        hgb.fit(x, y)
    pos = int(yc.sum())
    if pos == 0:
        raise ValueError("the calibration days hold no fraud: simulate more persons or days")
    method = "isotonic" if pos >= ISOTONIC_MIN_POSITIVES else "sigmoid"
    model = CalibratedClassifierCV(FrozenEstimator(hgb), method=method).fit(xc, yc)
    return model, {"calibration": method, "train_rows": len(y), "train_positives": int(y.sum()),
                   "calib_rows": len(yc), "calib_positives": pos}


@dataclass
class Trained:
    artifact: dict[str, Any]
    ablation: dict[str, Any]
    info: dict[str, Any]
    ranges: dict[str, tuple[int, int]]


def fit(ds: Dataset, cfg: TrainConfig, step: Step | None = None) -> Trained:
    """Fit the per-point models (and their no-call-features ablations) on the split dataset."""
    ranges = split_days(*usable_days(ds, cfg), cfg.calib_frac, cfg.test_frac)
    artifact: dict[str, Any] = {"points": {}}
    ablation: dict[str, Any] = {"points": {}}
    info: dict[str, Any] = {}
    for point in POINTS:
        df = ds.frames[point]
        split = assign(df, ranges)
        tr, ca = df[split == "train"], df[split == "calib"]
        for target, abl in ((artifact, False), (ablation, True)):
            names = features_of(point, abl)
            if step:
                step(f"fit {point}{' without call features' if abl else ''}")
            model, meta = fit_point(tr[list(names)].to_numpy(), tr["y"].to_numpy(),
                                    ca[list(names)].to_numpy(), ca["y"].to_numpy(), cfg)
            target["points"][point] = {"features": names, "model": model}
            if not abl:
                meta["test_rows"] = int((split == "test").sum())
                meta["test_positives"] = int(df.loc[split == "test", "y"].sum())
                info[point] = meta
    return Trained(artifact, ablation, info, ranges)


def train_file(events: Path | list[Path], registry: Registry, cfg: TrainConfig,
               progress: Callable[[int, int], None] | None = None, step: Step | None = None,
               core_factory: Callable[..., Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The whole of ``zt train``: returns the new version and its card. Several files (cities
    of one family, the same calendar) are learnt from together."""
    from models.card import markdown
    from models.dataset import Dataset, collect
    from models.evaluate import evaluate_frames
    from models.scorer import ModelScorer

    files = events if isinstance(events, list) else [events]
    parts = []
    for i, path in enumerate(files, 1):
        if step:
            step(f"replay through the core ({i} of {len(files)}: {Path(path).name})")
        parts.append(collect(path, progress, core_factory))
    ds = Dataset.union(parts)
    trained = fit(ds, cfg, step)
    version = registry.create(ds.fingerprint)
    trained.artifact["version"] = trained.ablation["version"] = version
    if step:
        step("test on the held-out days")
    k = cfg.k(ds.persons)
    cal = {p: ds.frames[p][assign(ds.frames[p], {"calib": trained.ranges["calib"]}) == "calib"]
           for p in POINTS}
    test = {p: ds.frames[p][assign(ds.frames[p], {"test": trained.ranges["test"]}) == "test"]
            for p in POINTS}
    main, abl = ModelScorer(trained.artifact), ModelScorer(trained.ablation)
    tau = alert_threshold_on(cal, main, k, _span(trained.ranges["calib"]))
    budgets = {"transfer": cfg.hold_budget_per_10k_day, "contact": cfg.call_budget_per_10k_day}
    per_point = {p: round(point_threshold(cal[p], main, p, budgets[p] * ds.persons / 10_000
                                          * _span(trained.ranges["calib"])), 6) for p in POINTS}
    report = evaluate_frames(test, ds.book, main, abl, tau, k, trained.ranges["test"], ds.clock)
    registry.save_artifact(version, trained.artifact, MODEL_FILE)
    registry.save_artifact(version, trained.ablation, ABLATION_FILE)
    card = {
        "version": version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seed": cfg.seed,
        "sklearn_version": sklearn.__version__,
        "estimator": "HistGradientBoostingClassifier(class_weight='balanced') + "
                     "CalibratedClassifierCV(FrozenEstimator)",
        "config": asdict(cfg),
        "data": {"events": ", ".join(Path(f).name for f in files), "sha256": ds.fingerprint,
                 "lines": ds.lines,
                 "rejected": ds.rejected, "persons": ds.persons, "days": ds.days,
                 "case_reports": len(ds.book.reports),
                 "split_days": {k_: list(v) for k_, v in trained.ranges.items()}},
        "points": {p: {"features": list(trained.artifact["points"][p]["features"]),
                       "ablation_features": list(trained.ablation["points"][p]["features"]),
                       **trained.info[p]} for p in POINTS},
        "thresholds": {"alert": round(tau, 6), "capacity_per_day": k, "points": per_point,
                       "budgets_per_10k_day": budgets,
                       "meaning": "the model alone raises a task at a point when its calibrated "
                                  "P(fraud) reaches points[point]: on the calibration days, about "
                                  "budgets_per_10k_day tasks on non-fraud rows per 10,000 persons "
                                  "a day (holds at 'transfer', persons called at 'contact'); "
                                  "'alert' is the score of the capacity_per_day highest persons "
                                  "a day"},
        "metrics": {"test": report},
        "label_rule": "transfer: listed in a case report's txn_ids; contact: the victim's "
                      "contacts from the first contact by a line the report names (or the first "
                      "listed transfer) to the completion of the last listed transfer; contacts "
                      "between that and the report are dropped",
    }
    registry.write_card(version, card, markdown(card))
    return version, card


def _span(r: tuple[int, int]) -> int:
    return r[1] - r[0] + 1


def point_threshold(frame: pd.DataFrame, scorer: Any, point: str, allowed: float) -> float:
    """The lowest score at which at most ``allowed`` non-fraud rows of ``frame`` (distinct
    person-days at the contact point, where a person is called once) reach it.

    >>> import types
    >>> fake = types.SimpleNamespace(features=lambda p: ("x",),
    ...                              score_matrix=lambda p, x: x[:, 0])
    >>> f = pd.DataFrame({"x": [0.9, 0.8, 0.7, 0.2], "y": [1, 0, 0, 0],
    ...                   "person_id": ["a", "b", "c", "d"], "day": [1, 1, 1, 1]})
    >>> point_threshold(f, fake, "transfer", 1) > 0.7, point_threshold(f, fake, "transfer", 1) <= 0.8
    (True, True)
    """
    if not len(frame):
        return 1.0
    scored = frame.assign(score=scorer.score_matrix(point, frame[list(scorer.features(point))]
                                                    .to_numpy()))
    neg = scored[scored["y"] == 0]
    if point == "contact":
        neg = neg.groupby(["day", "person_id"])["score"].max().to_frame()
    ranked = np.sort(neg["score"].to_numpy())[::-1]
    n = int(allowed)
    if n >= len(ranked):
        return float(ranked[-1]) if len(ranked) else 0.0
    return float(np.nextafter(ranked[n], 1.0))


def alert_threshold_on(frames: dict[str, pd.DataFrame], scorer: Any, k: int, days: int) -> float:
    from models.metrics import alert_threshold

    scored = [f.assign(score=scorer.score_matrix(p, f[list(scorer.features(p))].to_numpy()))
              for p, f in frames.items() if len(f)]
    return alert_threshold(scored, k, days)
