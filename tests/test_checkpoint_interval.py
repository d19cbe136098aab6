"""When a worker checkpoints (``Checkpoints._checkpoint_lane``): every ``commit_every_s`` live,
at most every ``commit_behind_s`` while its inputs are more than ``behind_records`` behind (a
backlog: each key written once or twice, not at every step of it), and again as soon as they
catch up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

from aiokafka import TopicPartition

from streams.runtime.checkpoint import Checkpoints
from streams.runtime.consumers import LagGauge


@dataclass
class _Lane:
    lag: LagGauge = field(default_factory=LagGauge)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    buffer: list = field(default_factory=list)  # (its length: events held in event time)


class _Worker(Checkpoints):
    def __init__(self) -> None:
        self.cfg = SimpleNamespace(commit_every_s=0.01, commit_behind_s=0.2, behind_records=5000)
        self.entity_lane, self.decide_lane = _Lane(), _Lane()
        self.ingest_lag = LagGauge()
        self.taken: list[float] = []

    async def checkpoint(self, revoked=None) -> None:
        """Only when it is taken (what a checkpoint does: the state fault tests)."""
        self.taken.append(asyncio.get_running_loop().time())


def _set_lag(gauge: LagGauge, n: int) -> None:
    gauge.lag = {TopicPartition("calls", 0): n // 2, TopicPartition("calls", 1): n - n // 2}


async def _run(worker: _Worker, script) -> None:
    loop = asyncio.create_task(worker._checkpoint_lane())
    await script(worker)
    worker.entity_lane.stopping.set()
    worker.decide_lane.stopping.set()
    await asyncio.wait_for(loop, 1)


def test_live_inputs_are_checkpointed_every_commit_interval():
    w = _Worker()
    _set_lag(w.ingest_lag, 300)  # a live feed between two fetches

    async def script(w):
        await asyncio.sleep(0.3)

    asyncio.run(_run(w, script))
    assert len(w.taken) >= 10  # ~every 10 ms (at least a third of them on a busy machine)


def test_a_backlog_is_checkpointed_rarely_and_at_once_when_caught_up():
    w = _Worker()

    async def script(w):
        _set_lag(w.ingest_lag, 40_000)  # the ingest lane is far behind
        await asyncio.sleep(0.5)
        n_behind = len(w.taken)
        assert 1 <= n_behind <= 3, w.taken  # every 0.2 s, not every 10 ms
        _set_lag(w.ingest_lag, 0)
        _set_lag(w.decide_lane.lag, 6000)  # a later stage's input counts too
        await asyncio.sleep(0.1)
        assert len(w.taken) <= n_behind + 1
        _set_lag(w.decide_lane.lag, 0)  # caught up: checkpointed within a commit interval
        caught_up = asyncio.get_running_loop().time()
        await asyncio.sleep(0.1)
        assert w.taken[-1] > caught_up and len(w.taken) >= n_behind + 3

    asyncio.run(_run(w, script))


def test_behind_counts_every_input_of_the_worker():
    w = _Worker()
    assert not w.behind()
    _set_lag(w.ingest_lag, 3000)
    _set_lag(w.entity_lane.lag, 2000)
    assert not w.behind()  # 5,000: at the bound
    _set_lag(w.decide_lane.lag, 1)
    assert w.behind()
    _set_lag(w.decide_lane.lag, 0)
    w.entity_lane.buffer.extend(range(10))  # read, and waiting in a stage's buffer
    assert w.behind()
