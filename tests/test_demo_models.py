"""The documented model workflow (docs/models.md: ``zt train``, then ``zt models promote``) never
breaks the main job: afterwards the demo's worker, its city's copy of the core and its replay
check all decide with the promoted model, and agree byte for byte."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.broker import free_port

pytestmark = pytest.mark.integration


def zt(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ZT_MODELS"}  # ./.zt/models, as documented
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_demo_still_agrees_with_replay_after_train_and_promote(tmp_path: Path) -> None:
    (tmp_path / "hot.yaml").write_text("fraud:\n  episodes_per_100k_per_day: 300\n")
    r = zt(tmp_path, "simulate", "--persons", "2000", "--days", "6", "--seed", "3", "--config",
           "hot.yaml", "--out", "city.jsonl", "--quiet")
    assert r.returncode == 0, r.stderr
    r = zt(tmp_path, "train", "--events", "city.jsonl", "--quiet")  # into ./.zt/models, as documented
    assert r.returncode == 0, r.stderr
    version = re.search(r"model (v\d{4}-[0-9a-f]{8})", r.stdout).group(1)
    r = zt(tmp_path, "models", "promote", version)
    assert r.returncode == 0 and f"promoted {version}" in r.stdout, r.stderr

    r = zt(tmp_path, "demo", "--persons", "800", "--days", "2", "--metrics-port", str(free_port()),
           "--desk-port", str(free_port()))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"model {version} (promoted" in r.stdout
    assert "byte for byte: yes; the same figures: yes; records late at the worker: 0" in r.stdout
    work = Path(re.search(r"\(log (\S+)/worker\.log\)", r.stdout).group(1))
    tasks = [orjson.loads(line) for line in (work / "replay-tasks.jsonl").open("rb")]
    assert any(t["model_version"] == version for t in tasks)  # the model did decide
