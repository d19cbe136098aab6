"""Shared fixtures. Real parts only: the broker is a real Tansu process on a free loopback port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker, free_port
from streams.processes import WorkerProcess

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
    started: list[WorkerProcess] = []

    def make(*args: str) -> WorkerProcess:
        w = WorkerProcess(fresh_topics.bootstrap, tmp_path / f"worker-{len(started)}.log",
                          group=f"zt-test-{unique}", args=("--models", "none", *args))
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()
