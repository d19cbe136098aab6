"""``zt broker`` and the settings every Kafka-speaking command shares."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streams import settings
from streams.broker import BrokerError, EmbeddedBroker, admin, free_port, port_open
from streams.contract import ALL_TOPICS
from streams.topics import PERSON_EVENTS

pytestmark = pytest.mark.integration


def test_zt_broker_starts_creates_topics_and_stops_on_sigterm():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "broker", "--port", str(port),
                             "--partitions", "4"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert f"broker ready on 127.0.0.1:{port}" in line, line
        client = admin(f"127.0.0.1:{port}")
        topics = client.describe_topics([*ALL_TOPICS, PERSON_EVENTS])
        client.close()
        parts = {t["name"]: len(t["partitions"]) for t in topics}
        assert parts["calls"] == parts["transactions"] == parts[PERSON_EVENTS] == 4
        assert parts["registry"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert not port_open("127.0.0.1", port)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_broker_listens_on_loopback_only():
    with pytest.raises(BrokerError):
        EmbeddedBroker(host="0.0.0.0")
    with EmbeddedBroker(port=free_port()) as b:
        out = subprocess.run(["ss", "-ltnH", f"sport = :{b.port}"], capture_output=True, text=True).stdout
        local = [line.split()[3] for line in out.splitlines()]  # the listening address column
        assert local == [f"127.0.0.1:{b.port}"]


def test_a_busy_port_is_a_clear_error(broker):
    with pytest.raises(BrokerError, match="already in use"):
        EmbeddedBroker(port=broker.port).start()


def test_bootstrap_setting_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ZT_KAFKA", raising=False)
    monkeypatch.delenv("ZT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert settings.load().bootstrap == "127.0.0.1:9092"
    (tmp_path / "zt.toml").write_text('[kafka]\nbootstrap = "kafka-1:9092,kafka-2:9092"\n')
    assert settings.load() == settings.Settings("kafka-1:9092,kafka-2:9092", "config file")
    monkeypatch.setenv("ZT_KAFKA", "env:9092")
    assert settings.load().bootstrap == "env:9092"
    assert settings.load(bootstrap="flag:9092").bootstrap == "flag:9092"
    with pytest.raises(FileNotFoundError):
        settings.load(config=str(tmp_path / "missing.toml"))


def test_kill_9_of_zt_broker_leaves_no_tansu_holding_the_port():
    """SIGKILL runs no cleanup of ours: the kernel's parent-death signal stops Tansu."""
    import psutil

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "broker", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tansu = None
    try:
        assert "broker ready" in proc.stdout.readline()
        (tansu,) = psutil.Process(proc.pid).children()
        assert "tansu" in tansu.name()
        proc.kill()
        proc.wait(10)
        gone, alive = psutil.wait_procs([tansu], timeout=10)
        assert gone and not alive, "Tansu outlived a kill -9 of zt broker"
        assert not port_open("127.0.0.1", port)
    finally:
        if proc.poll() is None:
            proc.kill()
        if tansu is not None and tansu.is_running():  # (only if the test failed)
            tansu.kill()


def test_zt_broker_says_it_keeps_nothing():
    got = subprocess.run([sys.executable, "-m", "streams.cli", "broker", "--help"],
                         capture_output=True, text=True, timeout=30)
    assert "Memory storage only" in got.stdout
    assert "kill -9" in got.stdout
