"""Model parts on hand-built rows: labels, the split by time, calibration, metrics, registry,
the scorer and the watcher that follows promotions. No replay, so these run in seconds."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from models import metrics
from models.dataset import Clock, Collector
from models.features import POINT_FEATURES, POINTS
from models.labels import LabelBook, Report
from models.registry import Registry, RegistryError
from models.scorer import ModelScorer, ScorerWatcher, matrix
from models.train import TrainConfig, assign, fit_point, split_days
from streams.core import Scored

HOUR = 3_600_000


@dataclass
class Hit:
    score: float


def feats(point: str, **values: float) -> dict[str, float]:
    f = dict.fromkeys(POINT_FEATURES[point], 0.0)
    f.update(values)
    return f


def book() -> LabelBook:
    r = Report("R1", "P1", "fake_customer_service", 30 * HOUR, ("T2", "T3"), frozenset({"+8617000000001"}))
    b = LabelBook([r], {"P1": ("+8613900000001",)})
    b.observe("calls", {"caller": "+8617000000001", "callee": "+8613900000009"}, 1 * HOUR)  # not P1
    b.observe("calls", {"caller": "+8617000000001", "callee": "+8613900000001"}, 10 * HOUR)
    b.observe("calls", {"caller": "+8617000000001", "callee": "+8613900000001"}, 11 * HOUR)
    b.observe("transactions", {"txn_id": "T2", "status": "initiated"}, 12 * HOUR)
    b.observe("transactions", {"txn_id": "T2", "status": "completed"}, 12 * HOUR + 30_000)
    b.observe("transactions", {"txn_id": "T3", "status": "initiated"}, 13 * HOUR)
    b.observe("transactions", {"txn_id": "T3", "status": "completed"}, 13 * HOUR + 9_000)
    return b


def test_transfer_labels_are_the_reported_transfers():
    b = book()
    assert b.transfer("T2") == (1, "fake_customer_service", "R1")
    assert b.transfer("T1") == (0, "", "")
    assert b.transfer(None) == (0, "", "")


def test_contact_window_runs_from_the_first_fraud_contact_to_the_last_fraud_transfer():
    b = book()
    r = b.reports[0]
    assert r.start_ms == 10 * HOUR  # the call to another person does not count
    assert r.first_completed_ms == 12 * HOUR + 30_000
    assert r.end_ms == 13 * HOUR + 9_000
    assert b.contact("P1", 9 * HOUR)[0] == 0
    assert b.contact("P1", 10 * HOUR)[0] == 1
    assert b.contact("P1", 13 * HOUR)[0] == 1
    assert b.contact("P1", 20 * HOUR)[0] == -1  # money gone, not reported yet: dropped
    assert b.contact("P1", 31 * HOUR)[0] == 0
    assert b.contact("P2", 11 * HOUR)[0] == 0


def test_a_report_naming_no_line_starts_at_its_first_transfer():
    r = Report("R", "P", "acquaintance_impersonation", 50 * HOUR, ("T",), frozenset())
    b = LabelBook([r], {"P": ("+861",)})
    b.observe("transactions", {"txn_id": "T", "status": "initiated"}, 5 * HOUR)
    b.observe("transactions", {"txn_id": "T", "status": "completed"}, 5 * HOUR + 1000)
    assert r.start_ms == 5 * HOUR
    assert b.contact("P", 4 * HOUR)[0] == 0 and b.contact("P", 5 * HOUR + 500)[0] == 1


def test_collector_builds_labelled_frames_from_observer_rows():
    c = Collector()
    t0 = 1772294400000  # 2026-03-01T00:00+08:00 is 2026-02-28T16:00Z
    c(Scored("transfer", "P1", "e1", t0 + 12 * HOUR, "T2", feats("transfer", amount_cny=900.0),
          [Hit(0.7), Hit(0.4)]))
    c(Scored("transfer", "P1", "e2", t0 + 26 * HOUR, "T9", feats("transfer")))
    c(Scored("contact", "P1", "e3", t0 + 11 * HOUR, None, feats("contact", call_minutes=12.0)))
    b = LabelBook([Report("R", "P1", "x", t0 + 40 * HOUR, ("T2",), frozenset())], {})
    b.observe("transactions", {"txn_id": "T2", "status": "initiated"}, t0 + 12 * HOUR)
    fr = c.frames(b, Clock.of("2026-03-01T00:00:00+08:00"))
    tr = fr["transfer"]
    assert list(tr.columns[: len(POINT_FEATURES["transfer"])]) == list(POINT_FEATURES["transfer"])
    assert tr["y"].tolist() == [1, 0] and tr["day"].tolist() == [0, 1]
    assert tr["rule_score"].tolist() == [0.7, 0.0] and tr["amount_cny"].iloc[0] == 900.0
    assert fr["contact"]["y"].tolist() == [0]  # before the first listed transfer


def test_split_by_time_is_ordered_and_disjoint():
    r = split_days(1, 11, 0.2, 0.25)
    assert r["train"][1] < r["calib"][0] <= r["calib"][1] < r["test"][0]
    df = pd.DataFrame({"day": range(0, 14), "y": [0] * 13 + [-1]})
    s = assign(df, r)
    assert s[0] == "" and s[12] == ""  # warm-up and immature days are in no split
    assert [d for d, x in zip(df["day"], s, strict=True) if x == "test"] == [9, 10, 11]
    with pytest.raises(ValueError, match="at least 3 usable days"):
        split_days(1, 2, 0.2, 0.25)


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A known truth: P(fraud) = sigmoid(2 x0 - 6), about 1% positives."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 6.0)))
    return x, (rng.random(n) < p).astype(int)


def test_calibrated_probabilities_match_observed_rates():
    x, y = synthetic(20_000, 1)
    xc, yc = synthetic(20_000, 2)
    xt, yt = synthetic(40_000, 3)
    model, info = fit_point(x, y, xc, yc, TrainConfig(max_iter=30))
    s = model.predict_proba(xt)[:, 1]
    assert info["calibration"] in ("isotonic", "sigmoid")
    # Balanced class weights alone would put the mean near 0.5; calibration brings it back.
    assert abs(s.mean() - yt.mean()) < 0.3 * yt.mean()
    assert metrics.calibration(yt, s)["ece"] < 0.01
    assert metrics.ranking(yt, s)["roc_auc"] > 0.85


def test_metrics_on_a_small_example():
    df = pd.DataFrame({"person_id": ["a", "a", "b", "c", "d"], "day": [0, 0, 0, 1, 1],
                       "y": [1, 0, 0, 1, 0], "score": [0.9, 0.1, 0.5, 0.3, 0.6],
                       "fraud_type": ["t1", "", "", "t2", ""]})
    cap = metrics.at_capacity(df, k=1)
    assert cap == {"k_per_day": 1, "tasks": 2, "true": 1, "precision": 0.5, "recall": 0.5}
    assert metrics.precision_at_recall(df["y"].to_numpy(), df["score"].to_numpy(), 1.0) == 0.5
    vr = metrics.versus_rules(df["y"].to_numpy(), df["score"].to_numpy(),
                              np.array([0.0, 0.0, 0.8, 0.8, 0.0]))
    assert vr["rule_precision"] == 0.5 and vr["rule_recall"] == 0.5
    assert vr["model_precision_at_rule_recall"] == 1.0
    assert set(metrics.by_type(df, lambda d: len(d))) == {"t1", "t2"}


@functools.cache
def small_models() -> dict:
    """A small but real calibrated model per point, on random features (fitted once)."""
    points = {}
    for i, p in enumerate(POINTS):
        names = POINT_FEATURES[p]
        rng = np.random.default_rng(i)
        x = rng.normal(size=(1500, len(names)))
        y = (x[:, 0] + rng.normal(size=1500) > 2.0).astype(int)
        model, _ = fit_point(x[:1000], y[:1000], x[1000:], y[1000:], TrainConfig(max_iter=10))
        points[p] = {"features": names, "model": model}
    return points


def artifact(version: str) -> dict:
    return {"version": version, "points": small_models()}


def register(reg: Registry, seed: int) -> str:
    v = reg.create(f"{seed:08x}" + "0" * 56)
    reg.save_artifact(v, artifact(v))
    reg.write_card(v, {"version": v, "created": "now", "data": {"events": "x", "sha256": "0" * 64},
                       "metrics": {"test": {"points": {p: {"pr_auc": 0.5} for p in POINTS}}}},
                   f"# Model {v}\n")
    return v


def test_registry_versions_promote_and_errors(tmp_path):
    reg = Registry(tmp_path / "models")
    assert reg.versions() == [] and reg.promoted() is None
    with pytest.raises(RegistryError, match="no model is promoted"):
        reg.resolve("promoted")
    v1, v2 = register(reg, 1), register(reg, 2)
    assert reg.versions() == [v1, v2] and v1.startswith("v0001-") and v2.startswith("v0002-")
    reg.create("f" * 64)  # reserved but incomplete: not listed, not promotable
    assert reg.versions() == [v1, v2]
    reg.promote(v2)
    assert reg.promoted() == v2 and reg.resolve("latest") == v2
    with pytest.raises(RegistryError, match="no model version"):
        reg.promote("v0009-00000000")
    assert not [p for p in reg.root.iterdir() if p.name.startswith(".")]  # no temp files left


def test_model_scorer_scores_batches_in_order(tmp_path):
    reg = Registry(tmp_path)
    v = register(reg, 3)
    s = ModelScorer.load(reg, v)
    rows = [feats("transfer", amount_cny=float(i)) for i in range(50)]
    rows[7][POINT_FEATURES["transfer"][0]] = 4.0
    out = s.score("transfer", rows)
    assert len(out) == 50 and all(0.0 <= p <= 1.0 for p in out)
    assert out == [s.score("transfer", [r])[0] for r in rows]  # batching changes nothing
    assert s.score("contact", []) == []
    # A row missing a feature still scores (NaN is routed by the trees).
    partial = {n: 0.0 for n in POINT_FEATURES["contact"][1:]}
    assert np.isnan(matrix(POINT_FEATURES["contact"], [partial])[0, 0])
    assert 0 <= s.score("contact", [partial])[0] <= 1


def test_watcher_switches_to_a_newly_promoted_version(tmp_path):
    reg = Registry(tmp_path)
    clock = [100.0]
    w = ScorerWatcher(tmp_path, clock=lambda: clock[0])
    assert w.current() is None  # nothing promoted: the core runs on rules alone
    v1, v2 = register(reg, 4), register(reg, 5)
    reg.promote(v1)
    clock[0] += 0.5
    assert w.current() is None  # checked at most once a second
    clock[0] += 0.6
    assert w.current().version == v1
    first = w.current()
    reg.promote(v2)
    clock[0] += 1.1
    assert w.current().version == v2 and w.current() is not first
    # A broken promotion is logged and the current model kept.
    bad = reg.create("e" * 64)
    (reg.path(bad) / "model.joblib").write_bytes(b"not a model")
    reg.write_card(bad, {"version": bad})
    reg.promote(bad)
    clock[0] += 1.1
    assert w.current().version == v2


def test_watcher_is_safe_from_several_threads(tmp_path):
    reg = Registry(tmp_path)
    reg.promote(register(reg, 6))
    w = ScorerWatcher(tmp_path, interval_s=0.0)
    seen: list[str] = []
    threads = [threading.Thread(target=lambda: seen.append(w.current().version)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1 and len(seen) == 8
