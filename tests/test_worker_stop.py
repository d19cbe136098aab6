"""Stopping a worker: cleanly with its broker, within the deadline without it.

Each test starts its own embedded broker (the session's must outlive them): a real Tansu
process and a real ``zt worker`` subprocess, stopped by a real SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker, free_port
from streams.processes import WorkerProcess


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(port=free_port(), log_path=tmp_path / "tansu.log").start()
    yield b
    b.stop()


def _worker(broker: EmbeddedBroker, tmp_path: Path, *args: str) -> WorkerProcess:
    w = WorkerProcess(broker.bootstrap, tmp_path / "worker.log", group="zt-stop",
                      args=("--models", "none", *args))
    w.wait_ready(timeout=60)
    return w


def _stopped_in(w: WorkerProcess, sig: signal.Signals, timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    w.proc.send_signal(sig)
    try:
        return w.proc.wait(timeout), time.monotonic() - started
    except subprocess.TimeoutExpired:
        w.kill()
        pytest.fail(f"the worker had not stopped {timeout:.0f} s after {sig.name}:\n{w.tail()}")


def test_a_worker_stops_cleanly_on_sigterm(own_broker: EmbeddedBroker, tmp_path: Path):
    w = _worker(own_broker, tmp_path, "--stop-timeout", "30")
    code, _ = _stopped_in(w, signal.SIGTERM, 30)
    assert code == 0, w.tail()
    assert "exiting without a clean stop" not in w.tail()


def test_a_worker_whose_broker_is_gone_exits_at_its_deadline(own_broker: EmbeddedBroker,
                                                            tmp_path: Path):
    """Before, Faust's stop waited for ever in the consumer's fetch retries (SIGKILL only)."""
    w = _worker(own_broker, tmp_path, "--stop-timeout", "3")
    own_broker.stop()
    time.sleep(2)  # the worker notices: its fetches and heartbeats fail
    code, took = _stopped_in(w, signal.SIGTERM, 30)
    assert code == 1
    assert took >= 3
    assert "not stopped 3 s after SIGTERM: exiting without a clean stop" in w.tail()


def test_a_second_signal_while_stopping_exits_at_once(own_broker: EmbeddedBroker,
                                                      tmp_path: Path):
    w = _worker(own_broker, tmp_path, "--stop-timeout", "0")  # 0: no deadline
    own_broker.stop()
    time.sleep(2)
    w.proc.send_signal(signal.SIGTERM)
    time.sleep(2)
    assert w.proc.poll() is None, "stopped although its broker is gone: the test shows nothing"
    code, _ = _stopped_in(w, signal.SIGINT, 10)  # at once: well before any deadline
    assert code == 1
    assert "SIGINT again while stopping: exiting without a clean stop" in w.tail()


def test_a_worker_started_from_python_dies_with_its_starter(own_broker: EmbeddedBroker,
                                                              tmp_path: Path):
    """``WorkerProcess`` (demo, bench, tests): a starter killed with -9 runs no cleanup, and
    the worker would run on idle against its broker; the parent-death signal stops it."""
    import psutil

    starter = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from streams.processes import WorkerProcess\n"
        f"w = WorkerProcess({own_broker.bootstrap!r}, Path({str(tmp_path / 'w.log')!r}))\n"
        "print(w.proc.pid, flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    worker = None
    try:
        worker = psutil.Process(int(starter.stdout.readline()))
        assert worker.is_running()
        starter.kill()
        starter.wait(10)
        gone, alive = psutil.wait_procs([worker], timeout=10)
        assert gone and not alive, "the worker outlived a kill -9 of the process that started it"
    finally:
        if starter.poll() is None:
            starter.kill()
        if worker is not None and worker.is_running():  # (only if the test failed)
            worker.kill()
