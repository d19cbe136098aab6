"""The broker goes away mid-stream and comes back on the same address, empty (Tansu's memory
storage): the worker stays up, says the broker is unreachable and then that it lost its logs,
resumes by itself, and decides exactly as replay does. Real Tansu, a real ``zt worker``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.faults import broker_restart

pytestmark = pytest.mark.integration


def test_a_broker_restart_mid_stream_is_survived_with_replays_tasks(tmp_path: Path):
    got = broker_restart(outage_s=5.0, work=tmp_path, traffic=12_000)
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert got["during"] == {"healthz": 200, "readyz": 503, "alive": True}, log[-3000:]
    assert got["worker_up"], log[-3000:]
    assert got["log_resets"] > 0 and "lost this partition's data" in log
    assert got["equal"], (got, log[-3000:])
    assert got["expected_after"] > 0  # the second half had tasks of its own to give
    assert got["lanes_up"] == 6 and got["healthz"] == 200
    assert got["exit_code"] == 0
    assert re.search(r"lane \w+ failed:", log) is None  # no lane failed on the way
    # Rate-limited: the clients' connection errors are counted, not written one by one.
    assert log.count("Unable connect to node") < 40
