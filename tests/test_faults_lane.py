"""A lane that fails takes its worker down at once, non-zero, with one clear line: never a
process that is up with a dead lane. Each test breaks one part of a real ``zt worker`` (a
``prelude`` run in its process before it starts) and feeds it the record that trips it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from streams import contract, feed
from streams.broker import EmbeddedBroker
from streams.processes import WorkerProcess
from streams.supervisor import EXIT_LANE_FAILED

pytestmark = pytest.mark.integration

BREAK = '''
import streams.core as core
_original = core.{cls}.{method}
def _broken(self, *args, **kwargs):
    if "boom" in str(args):
        raise RuntimeError("forced failure")
    return _original(self, *args, **kwargs)
core.{cls}.{method} = _broken
'''


def _broken_worker(broker: EmbeddedBroker, tmp_path: Path, cls: str, method: str) -> WorkerProcess:
    w = WorkerProcess(broker.bootstrap, tmp_path / "worker.log", group=f"zt-break-{method}",
                      args=("--models", "none"), prelude=BREAK.format(cls=cls, method=method))
    w.wait_ready(timeout=60)
    feed.produce(broker.bootstrap, [("registry", contract.example("registry")),
                                    ("watchlist", contract.example("watchlist"))])
    w.wait_metric("zt_reference_entries", 1, table="watchlist")
    return w


def _exits_with_one_line(w: WorkerProcess, lanes: str) -> str:
    """The worker's exit status is EXIT_LANE_FAILED and its log says so once, naming the lane
    (``lanes``: a regex; a stage handed on in memory runs in the task of the lane before it)."""
    try:
        code = w.proc.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"up with a dead lane:\n{w.tail()}")
    log = w.log.read_text(errors="replace")
    assert code == EXIT_LANE_FAILED, log[-3000:]
    lines = [line for line in log.splitlines() if re.search(rf"lane ({lanes}) failed:", line)]
    assert len(lines) == 1, lines
    assert "CRITICAL" in lines[0] and "RuntimeError('forced failure')" in lines[0]
    assert f"exiting with status {EXIT_LANE_FAILED}" in lines[0]
    return lines[0]


def test_an_entity_lane_that_fails_exits_the_worker_non_zero(fresh_topics, tmp_path: Path):
    w = _broken_worker(fresh_topics, tmp_path, "EntityStage", "process")
    feed.produce(fresh_topics.bootstrap, [("calls", {**contract.example("calls"), "event_id": "boom"})])
    line = _exits_with_one_line(w, "ingest|entity")
    assert "in _broken" in line  # where it failed


def test_a_faust_agent_that_fails_exits_the_worker_non_zero(fresh_topics, tmp_path: Path):
    w = _broken_worker(fresh_topics, tmp_path, "Router", "route")
    report = {**contract.example("case-reports"), "event_id": "boom"}
    feed.produce(fresh_topics.bootstrap, [("case-reports", report)])
    _exits_with_one_line(w, "agents")
