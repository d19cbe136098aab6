"""Command-line manners, as a new user meets them: long commands show progress in a log, tables
keep their numbers whole, every user error is one line saying what to do and a non-zero exit
(never a traceback), ``zt --version``, and summaries that say only what they can know."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streams.simulator.run import simulate

RULES = str(Path(__file__).resolve().parents[1] / "rules" / "sets" / "city.yaml")


def zt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``zt ARGS`` as a logged command: output to pipes (not a terminal), a progress line at
    every update."""
    env = {**os.environ, "ZT_PROGRESS_EVERY_S": "0", "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd, env=env)


def one_line_error(r: subprocess.CompletedProcess[str], *words: str) -> str:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def short_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days: as long as the backtest's default warm-up."""
    path = tmp_path_factory.mktemp("short") / "city.jsonl"
    simulate(300, 3, 2, path)
    return path


@pytest.fixture(scope="module")
def hot_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six days of a city with frequent fraud: enough to train and evaluate on."""
    folder = tmp_path_factory.mktemp("hot")
    simulate(2000, 6, 3, folder / "city.jsonl", overrides={"fraud": {"episodes_per_100k_per_day": 300}})
    return folder / "city.jsonl"


def test_version() -> None:
    from importlib.metadata import version

    r = zt("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"zt (zerotransfer) {version('zerotransfer')}"


def test_a_missing_file_is_one_line_saying_what_to_give(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.jsonl")
    one_line_error(zt("train", "--events", missing, "--registry", str(tmp_path / "reg")),
                   "does not exist", "give --events a replay file")
    one_line_error(zt("models", "evaluate", "--events", missing, "--registry", str(tmp_path / "reg")),
                   "does not exist", "give --events")
    one_line_error(zt("replay", missing, "--out", str(tmp_path / "t.jsonl")), "does not exist")
    one_line_error(zt("rules", "test", RULES, "--events", missing), "does not exist")
    one_line_error(zt("simulate", "--config", str(tmp_path / "my-city.yaml"), "--quiet"),
                   "not found")


@pytest.mark.parametrize("flag, value, words", [
    ("--persons", "0", "greater than or equal to 10"),
    ("--days", "0", "greater than or equal to 1"),
    ("--persons", "many", "valid integer"),
])
def test_a_bad_number_is_a_usage_error_not_a_traceback(tmp_path: Path, flag: str, value: str,
                                                       words: str) -> None:
    r = zt("simulate", flag, value, "--out", str(tmp_path / "c.jsonl"))
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    error = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and flag in error[0] and words in error[0]


def test_a_file_shorter_than_the_warm_up_is_refused_before_the_work(short_city: Path,
                                                                    tmp_path: Path) -> None:
    line = one_line_error(zt("rules", "test", RULES, "--events", str(short_city)),
                          "covers 3.0 days", "warm-up", "--warmup-days")
    assert "give --warmup-days 1" in line or "give --warmup-days 2" in line
    one_line_error(zt("train", "--events", str(short_city), "--registry", str(tmp_path)),
                   "too few to train on", "--warmup-days")


def test_no_model_to_evaluate_is_one_line(hot_city: Path, tmp_path: Path) -> None:
    one_line_error(zt("models", "evaluate", "--events", str(hot_city), "--registry", str(tmp_path / "empty")),
                   "no model is promoted", "zt train")


def test_replay_summary_says_only_what_the_records_tell(short_city: Path, tmp_path: Path) -> None:
    """Nobody answered the tasks of a plain city: no 'held 0 CNY', no 'nan'; the SLA breaches are
    explained and nobody is judged yet."""
    city = tmp_path / "city.jsonl"
    simulate(3000, 3, 7, city)
    r = zt("replay", str(city), "--out", str(tmp_path / "tasks.jsonl"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "warned" in out and not re.search(r"\bnan\b", out)
    assert "held 0" not in out and "stopped 0" not in out
    assert "no outcome in these records: nobody answered the tasks" in out
    assert "SLA breaches" in out and "tasks with no outcome by their due time" in out
    assert "zero-transfer rate 24h: nobody judged yet" in out
    assert "replay: started" in r.stderr and "replay: done" in r.stderr


def test_backtest_logs_progress_and_names_its_columns(hot_city: Path, tmp_path: Path) -> None:
    r = zt("rules", "test", RULES, "--events", str(hot_city), "--warmup-days", "1")
    assert r.returncode == 0, r.stderr
    assert "backtest: started" in r.stderr and "backtest: done" in r.stderr
    assert "…" not in r.stdout
    header = next(line for line in r.stdout.splitlines() if "fraud type" in line and "victims" in line
                  and "┃" in line)
    assert "tested" in header and "in force" in header and "naive" in header


def test_train_and_evaluate_log_progress_and_keep_numbers_whole(hot_city: Path,
                                                                tmp_path: Path) -> None:
    reg = str(tmp_path / "reg")
    r = zt("train", "--events", str(hot_city), "--registry", reg)
    assert r.returncode == 0, r.stderr
    assert "replay: started" in r.stderr and "replay: done" in r.stderr
    assert "fit transfer" in r.stderr  # each step is said as it starts
    assert "20,000 of" in r.stderr  # and the replay's progress in between
    assert "…" not in r.stdout and "PR-AUC" in r.stdout
    r = zt("models", "evaluate", "--events", str(hot_city), "--registry", reg, "--model", "latest",
           "--out", str(tmp_path / "eval"))
    assert r.returncode == 0, r.stderr
    assert "replay: started" in r.stderr and "replay: done" in r.stderr
    assert "…" not in r.stdout and "PR-AUC" in r.stdout


def test_simulate_logs_progress(tmp_path: Path) -> None:
    r = zt("simulate", "--persons", "300", "--days", "2", "--out", str(tmp_path / "c.jsonl"))
    assert r.returncode == 0, r.stderr
    assert "simulate: started" in r.stderr and "simulate: 1 of 48 simulated hours" in r.stderr
    assert "simulate: done, 48 of 48 simulated hours (100%)" in r.stderr
    assert "…" not in r.stdout
