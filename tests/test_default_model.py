"""The model in the default path: the packaged default model, one resolution for every driver,
and reasons in words from the features that drove a score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.default import HELD_OUT, TRAINING_CITIES, folder, packaged
from models.explain import SAYS, explain
from models.features import FEATURES, POINT_FEATURES
from models.scorer import ScorerWatcher
from streams.decisions import load_model, model_watcher


def test_the_packaged_model_is_small_carries_its_card_and_never_saw_the_held_out_settings():
    path = folder()
    assert (path / "model.joblib").stat().st_size < 3 << 20
    card = json.loads((path / "card.json").read_text("utf-8"))
    assert card["thresholds"]["points"].keys() == {"contact", "transfer"}
    trained = {f"{g}-{s}-{seed}" for g, s, _, _, seed in TRAINING_CITIES}
    assert card["data"]["events"] == ", ".join(f"{n}.jsonl" for n in
                                                [f"{g}-{s}-{seed}" for g, s, _, _, seed in
                                                 TRAINING_CITIES])
    for generator, settings in HELD_OUT.items():
        assert not any(name.startswith(f"{generator}-{s}-") for s in settings for name in trained)
    for point, names in POINT_FEATURES.items():
        assert card["points"][point]["features"] == list(names)


def test_with_nothing_promoted_every_driver_decides_with_the_packaged_model(tmp_path: Path):
    scorer = load_model(str(tmp_path / "empty-registry"))
    assert scorer is not None and scorer.version == packaged().version
    assert load_model("none") is None and model_watcher("none") is None


def test_a_promoted_model_replaces_the_fallback_and_a_watcher_starts_on_the_fallback(tmp_path: Path):
    fallback = packaged()
    watcher = ScorerWatcher(tmp_path, fallback=fallback)
    assert watcher.current() is fallback
    (tmp_path / "promoted").write_text("v9999-missing\n")  # promoted, but cannot be loaded
    watcher._checked = float("-inf")
    assert watcher.current() is fallback  # a bad promotion never takes scoring down


def test_every_feature_has_a_quiet_value_and_a_phrase():
    assert set(SAYS) == {f.name for f in FEATURES}


def test_a_mule_like_transfer_is_explained_in_words_by_the_packaged_model():
    scorer = packaged()
    row = dict.fromkeys(scorer.features("transfer"), 0.0)
    row.update(person_age=67, hour_of_day=14, person_history_days=30, amount_cny=48_000,
               amount_ratio_usual=160, payee_new=1, payee_registered=0, payee_age_days=0.2,
               payee_distinct_payers_24h=3, payee_drain_share_24h=0.95,
               payee_onward_share_24h=0.97, transfers_24h=2, amount_24h_cny=48_000,
               minutes_since_unknown_call=12, longest_unknown_call_72h=35, unknown_calls_24h=1)
    [score] = scorer.score("transfer", [row])
    assert score >= 0.5
    words = explain(scorer, "transfer", row)
    assert words and "0." not in words.split(";")[0][:2]
    assert any(k in words for k in ("passed on", "paid on", "usual", "first seen", "48,000 CNY"))


@pytest.mark.parametrize("point", ["contact", "transfer"])
def test_a_quiet_row_says_nothing_remarkable(point: str):
    scorer = packaged()
    quiet = {n: SAYS[n][0] for n in scorer.features(point)}
    assert explain(scorer, point, quiet) == ""
