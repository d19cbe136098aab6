"""Training, the registry and evaluation end to end, on a small simulated city replayed through
the real decision core (fraud made five times as frequent so a few thousand persons suffice)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import orjson
import pytest
import typer
from typer.testing import CliRunner

from models import metrics
from models.cli import evaluate, models_app, train
from models.dataset import collect, rules_core
from models.features import POINT_FEATURES, POINTS
from models.registry import Registry
from models.scorer import ModelScorer, ScorerWatcher
from models.train import assign
from streams.simulator.run import simulate

HOT = {"fraud": {"episodes_per_100k_per_day": 300}}


def small_city(path: Path, seed: int) -> Path:
    simulate(3000, 8, seed, path, overrides=HOT)
    return path


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_city(tmp_path_factory.mktemp("city") / "city.jsonl", 3)


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.add_typer(models_app, name="models")
    return app


@pytest.fixture(scope="module")
def trained(city: Path, cli: typer.Typer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    reg = tmp_path_factory.mktemp("models")
    r = CliRunner().invoke(cli, ["train", "--events", str(city), "--registry", str(reg), "--quiet"])
    assert r.exit_code == 0, r.output
    [version] = Registry(reg).versions()
    assert version in r.output
    return {"registry": reg, "version": version, "card": Registry(reg).card(version)}


@pytest.fixture(scope="module")
def replayed(city: Path) -> tuple:
    """The labelled rows, and the core that produced them."""
    cores = []

    def factory(observer):
        core = rules_core(observer)
        cores.append(core)
        return core

    ds = collect(city, core_factory=factory)
    return ds, cores[0]


def test_rows_are_the_cores_scoring_points_labelled_from_case_reports(replayed, city: Path):
    ds, core = replayed
    for p in POINTS:
        df = ds.frames[p]
        assert len(df) == core.decider.stats.points[p]  # every scoring point, nothing else
        assert list(df.columns[: len(POINT_FEATURES[p])]) == list(POINT_FEATURES[p])
        assert (df["y"] == 1).sum() > 10
    reported = {t for r in ds.book.reports for t in r.txn_ids}
    fraud = ds.frames["transfer"]
    assert set(fraud.loc[fraud["y"] == 1, "txn_id"]) <= reported
    assert fraud.loc[fraud["y"] == 1, "fraud_type"].ne("").all()
    assert ds.fingerprint == hashlib.sha256(city.read_bytes()).hexdigest()


def test_train_registers_a_card_with_data_fingerprint_and_a_split_by_time(trained, city: Path):
    card = trained["card"]
    assert card["data"]["sha256"] == hashlib.sha256(city.read_bytes()).hexdigest()
    days = card["data"]["split_days"]
    assert days["train"][1] < days["calib"][0] <= days["calib"][1] < days["test"][0]
    assert days["train"][0] == 1 and days["test"][1] == 7 - 2  # warm-up and maturity skipped
    for p in POINTS:
        assert card["points"][p]["features"] == list(POINT_FEATURES[p])
        assert not set(card["points"][p]["ablation_features"]) & {"call_minutes", "unknown_calls_24h"}
        assert card["points"][p]["train_positives"] > 0
    assert 0 < card["thresholds"]["alert"] < 1
    md = (Path(trained["registry"]) / trained["version"] / "card.md").read_text()
    assert "sha256" in md and "Test days" in md


def test_calibrated_scores_on_the_test_days(trained, replayed):
    """Probabilities, not ranks: the mean prediction is near the observed rate, and the model
    ranks fraud well above chance."""
    reg = Registry(trained["registry"])
    scorer = ModelScorer.load(reg, trained["version"])
    ds = replayed[0]
    test_days = tuple(trained["card"]["data"]["split_days"]["test"])
    for p in POINTS:
        df = ds.frames[p]
        df = df[assign(df, {"test": test_days}) == "test"]
        s = np.array(scorer.score(p, df[list(POINT_FEATURES[p])].to_dict("records")))
        y = df["y"].to_numpy()
        assert ((s >= 0) & (s <= 1)).all()
        assert y.mean() / 4 < s.mean() < y.mean() * 4, (p, y.mean(), s.mean())
        assert metrics.ranking(y, s)["roc_auc"] > 0.75


def test_models_list_show_promote(trained, cli: typer.Typer):
    reg, v = str(trained["registry"]), trained["version"]
    run = CliRunner(env={"COLUMNS": "200"}).invoke
    assert "no model is promoted" in run(cli, ["models", "show", "--registry", reg]).output
    r = run(cli, ["models", "promote", v, "--registry", reg])
    assert r.exit_code == 0 and f"promoted {v}" in r.output
    r = run(cli, ["models", "list", "--registry", reg])
    assert r.exit_code == 0 and v in r.output and "*" in r.output
    r = run(cli, ["models", "show", "promoted", "--registry", reg, "--json"])
    assert orjson.loads(r.output)["version"] == v
    assert run(cli, ["models", "promote", "v0099-deadbeef", "--registry", reg]).exit_code == 2


def test_the_core_scores_with_the_promoted_model(trained, city: Path):
    """Tasks carry the model's version; the same records give the same tasks with a batch."""
    from streams.core import Core
    from streams.replay import parse_line

    reg = Registry(trained["registry"])
    reg.promote(trained["version"])
    scorer = ScorerWatcher(trained["registry"]).current()
    assert scorer is not None and scorer.version == trained["version"]
    core = Core(scorer=scorer, batch=64)
    tasks = []
    for i, line in enumerate(city.read_bytes().splitlines()[:60_000]):
        topic, value, _ = parse_line(line, i)
        tasks.extend(core.feed(topic, value))
    tasks.extend(core.finish())
    assert tasks and {t.model_version for t in tasks} == {trained["version"]}


def test_evaluate_on_a_held_out_city(trained, cli: typer.Typer, tmp_path: Path):
    other = small_city(tmp_path / "other.jsonl", 4)
    out = tmp_path / "eval"
    r = CliRunner().invoke(cli, ["evaluate", "--model", trained["version"], "--events", str(other),
                                 "--registry", str(trained["registry"]), "--out", str(out),
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    rep = orjson.loads((out / "evaluation.json").read_bytes())
    assert rep["evaluated"].startswith("every matured day")
    for p in POINTS:
        pt = rep["points"][p]
        assert pt["pr_auc"] is not None and pt["roc_auc"] > 0.7
        assert pt["at_capacity"]["k_per_day"] == trained["card"]["thresholds"]["capacity_per_day"]
        assert pt["by_type"] and all("pr_auc" in v for v in pt["by_type"].values())
        assert "relative_change_in_recall_at_capacity" in pt["without_call_features"]
        assert "model_precision_at_rule_recall" in pt["rules"]
    assert rep["early_recall"]["model"]["all"]["episodes"] > 0
    assert "relative_change_in_recall" in rep["ablation"]["combined"]
    for png in ("pr_curve.png", "calibration.png", "scores.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_replay_pipeline_scores_alike_after_this_process_scored(trained, city: Path, tmp_path: Path):
    """``zt replay --jobs 2`` forks its person process with the model loaded, here after this
    process has scored (a thread pool may have started): the same tasks as one process, no hang."""
    from streams.replay import replay

    scorer = ModelScorer.load(Registry(trained["registry"]), trained["version"])
    scorer.score("transfer", [dict.fromkeys(POINT_FEATURES["transfer"], 0.0)] * 64)
    one = replay(city, tmp_path / "one.jsonl", scorer=scorer)
    two = replay(city, tmp_path / "two.jsonl", scorer=scorer, jobs=2)
    assert sum(one.tasks.values()) > 0 and one.tasks == two.tasks
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
