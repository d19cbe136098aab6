"""Shared fixtures. Real parts only: the broker is a real Tansu process on a free loopback port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker, free_port

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One embedded broker for the session, with the contract topics created."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    b = EmbeddedBroker(port=free_port(), log_path=log).start()
    yield b
    b.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for consumer groups and ids, so tests sharing a broker don't mix."""
    return uuid.uuid4().hex[:10]


class Worker:
    """A real ``zt worker`` process against the session broker."""

    def __init__(self, bootstrap: str, log: Path, group: str):
        import subprocess
        import sys

        self.metrics_port = free_port()
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--bootstrap", bootstrap,
             "--metrics-port", str(self.metrics_port), "--loglevel", "info", "--group", group],
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def metric(self, name: str, **labels: str) -> float:
        """Current value of one sample on the worker's /metrics (0 if absent)."""
        import urllib.request

        from prometheus_client.parser import text_string_to_metric_families

        text = urllib.request.urlopen(self.metrics_url, timeout=2).read().decode()
        total = 0.0
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Ready when /metrics answers and both consumer groups have partitions."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
            text = self.log.read_text(errors="replace")
            if text.count("Setting newly assigned partitions") >= 2 and \
                    "global tables loaded" in text:
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except Exception:
                self.proc.kill()


@pytest.fixture
def fresh_topics(broker: EmbeddedBroker) -> EmbeddedBroker:
    """Empty contract topics for one test (deleting also frees the broker's memory)."""
    import time

    from streams.broker import create_topics, delete_topics

    delete_topics(broker.bootstrap, list(broker.counts))
    for _ in range(50):
        try:
            create_topics(broker.bootstrap, broker.counts)
            break
        except Exception:
            time.sleep(0.1)
    return broker


@pytest.fixture
def worker_factory(fresh_topics: EmbeddedBroker, tmp_path: Path, unique: str):
    started: list[Worker] = []

    def make() -> Worker:
        w = Worker(fresh_topics.bootstrap, tmp_path / f"worker-{len(started)}.log",
                   group=f"zt-test-{unique}")
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()
