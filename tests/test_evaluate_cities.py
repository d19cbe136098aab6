"""``zt evaluate``: the users' figures on cities with a ground truth, beside the naive detector,
for a city of the simulator and one of the independent generator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.scorecard import Truth, judge, read_txns, truth_path


def zt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("cities")
    sim, world = d / "sim.jsonl", d / "world.jsonl"
    r = zt("simulate", "--scenario", "h-escalation", "--persons", "1500", "--days", "3",
           "--seed", "5", "--out", str(sim), "--quiet")
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "bench.worlds", "--setting", "chat-only",
                        "--persons", "1500", "--days", "3", "--seed", "5", "--out", str(world)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return [sim, world]


def test_both_generators_write_truths_the_scorecard_reads(cities: list[Path]):
    for city in cities:
        truth = Truth.read(truth_path(city))
        assert truth.persons == 1500 and truth.victims and truth.fraud
        txns = read_txns(city, set(truth.fraud))
        assert set(truth.fraud) & set(txns)  # the truth's transfers are in the events
        nothing = judge([], truth, txns).figures
        assert nothing["warned_before_loss"] == 0.0 and nothing["money_intercepted"] == 0.0
        assert nothing["persons_warned"] == 0 and nothing["person_precision"] is None


def test_zt_evaluate_prints_the_users_figures_beside_the_naive_detector(cities: list[Path],
                                                                         tmp_path: Path):
    r = zt("evaluate", *map(str, cities), "--models", "none", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    for words in ("victims warned before their loss", "fraud money intercepted",
                  "naive two rules", ">= 0.95", "per 10,000"):
        assert words in r.stdout
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert report["model"] == "none" and len(report["cities"]) == 2
    for city in report["cities"]:
        for who in ("zerotransfer", "naive"):
            f = city[who]["figures"]
            assert 0 <= f["money_intercepted"] <= 1 and 0 <= f["warned_before_loss"] <= 1
        assert set(city["zerotransfer"]["by_index"]) == {"1st", "2nd", "3rd+"}
        # The naive detector warns far more people than the pipeline.
        assert city["naive"]["figures"]["persons_warned"] > city["zerotransfer"]["figures"]["persons_warned"]
    assert (tmp_path / "evaluation.png").stat().st_size > 10_000


def test_a_city_without_its_truth_is_one_line(tmp_path: Path):
    city = tmp_path / "lonely.jsonl"
    city.write_text('{"topic": "calls", "value": {}}\n')
    r = zt("evaluate", str(city), "--models", "none", "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "no ground truth beside it" in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1
