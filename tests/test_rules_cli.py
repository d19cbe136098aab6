"""``zt rules test`` end to end on a small simulated city, through the real decision core."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from rules.cli import rules_test
from rules.engine import RuleSet, default_ruleset_path
from rules.runner import run
from streams.simulator import simulate

BOOST = {"fraud": {"episodes_per_100k_per_day": 400}}  # a small city with every fraud type


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rules-city")
    out = d / "city.jsonl"
    simulate(1500, 5, 4242, out, d / "truth.jsonl", overrides=BOOST)
    return out


def invoke(*args: str):
    app = typer.Typer(add_completion=False)
    app.command()(rules_test)
    app.command("other")(lambda: None)  # with two commands, typer dispatches by name as zt does
    return CliRunner().invoke(app, ["rules-test", *args])


def variant(tmp_path: Path) -> Path:
    """The city set as version 99, with the mule rule switched to shadow and one rule added."""
    text = re.sub(r"(?m)^version: .*$", "version: 99", default_ruleset_path().read_text(), count=1)
    text = text.replace("payee_distinct_payers_24h <= 20\n    score: 0.85\n    action: hold\n",
                        "payee_distinct_payers_24h <= 20\n    score: 0.85\n    action: hold\n"
                        "    mode: shadow\n")
    text += """
  - id: R-ANY-NEW-PAYEE
    point: transfer
    description: "{amount_cny} CNY to a new payee"
    when: payee_new and amount_cny >= 2000
    score: 0.3
"""
    p = tmp_path / "city-v99.yaml"
    p.write_text(text)
    return p


def test_the_backtest_against_the_set_in_force_and_the_naive_detector(city: Path, tmp_path: Path):
    js = tmp_path / "out" / "bt.json"
    res = invoke(str(variant(tmp_path)), "--events", str(city), "--json-out", str(js),
                 "--quiet")
    assert res.exit_code == 0, res.output
    in_force = RuleSet.load(default_ruleset_path()).version
    assert "backtest of city-v99" in res.output and f"in force: {in_force}" in res.output
    assert "naive (5,000 CNY)" in res.output
    assert f"difference from {in_force}" in res.output and "R-ANY-NEW-PAYEE" in res.output
    doc = orjson.loads(js.read_bytes())
    assert doc["run"]["scoring_points"]["contact"] > 0 and doc["run"]["case_reports"] > 0
    tested, base, naive = doc["tested"], doc["in_force"], doc["naive"]
    assert tested["label"] == "city-v99" and base["label"] == f"in force: {in_force}"
    rules = {r["rule_id"]: r for r in tested["rules"]}
    assert rules["R-MULE-LIKE-PAYEE"]["mode"] == "shadow"
    assert rules["R-ANY-NEW-PAYEE"]["hits"] > 0
    assert doc["difference"]["rules_added"] == ["R-ANY-NEW-PAYEE"]
    assert doc["difference"]["newly_flagged"] > 0
    assert doc["difference"]["modes_changed"] == {"R-MULE-LIKE-PAYEE": "enforce"}
    assert "shadow (was enforce)" in res.output
    for m in (tested, base, naive):
        assert m["victims"] == base["victims"] > 0  # one set of labels for every detector
        assert 0 <= m["true_positives"] <= min(m["flagged_persons"], m["victims"])
    # every rule of the set in force is listed, fired or not, with the same hits in both sets
    assert [r["rule_id"] for r in base["rules"]] == [
        r.id for r in RuleSet.load(default_ruleset_path()).rules]
    assert doc["difference"]["hits_delta"]["R-LISTED-PAYEE"] == 0


def test_a_rejected_rule_set_is_an_error_with_its_line(city: Path, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(default_ruleset_path().read_text().replace(
        "when: caller_listed and call_minutes >= 5", "when: caller_listed.__class__"))
    res = invoke(str(bad), "--events", str(city), "--quiet")
    assert res.exit_code == 2
    assert "bad.yaml:" in res.output and "attribute access not allowed" in res.output


def test_a_missing_replay_file_is_an_error(tmp_path: Path):
    res = invoke(str(default_ruleset_path()), "--events", str(tmp_path / "none.jsonl"),
                 "--quiet")
    assert res.exit_code == 2 and "does not exist" in res.output


def test_the_core_saw_the_same_hits_as_the_rule_set(city: Path):
    rs = RuleSet.load(default_ruleset_path())
    again = RuleSet.load(default_ruleset_path())
    r = run(city, [rs, again])
    assert r.points[0] == r.points[1]  # the core's hits and a fresh evaluation agree
    assert sum(r.scoring_points.values()) > 0 and r.rejected == 0
