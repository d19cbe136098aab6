"""When a worker checkpoints (``Checkpoints._checkpoint_lane``): every ``commit_every_s`` live,
at most every ``commit_behind_s`` while its inputs are more than ``behind_records`` behind (a
backlog: each key written once or twice, not at every step of it), and again as soon as it is
worked through."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

from aiokafka import TopicPartition

from streams.core import StageEvent
from streams.runtime import checkpoint as checkpoint_module
from streams.runtime.checkpoint import Checkpoints
from streams.runtime.consumers import LagGauge
from streams.runtime.offsets import RecentlyApplied
from streams.runtime.ordered import STEP_CHUNK, OrderedLane
from streams.watermark import Reorderer


@dataclass
class _Lane:
    lag: LagGauge = field(default_factory=LagGauge)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    buffer: list = field(default_factory=list)  # (its length: events held in event time)
    stepping: int = 0  # released, not stepped yet


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


def test_the_last_records_of_a_backlog_are_checkpointed_once_they_are_worked_through(monkeypatch):
    """Below ``behind_records`` a backlog still has its last records to step: a checkpoint then
    would write most keys, and the next one them again. One comes as soon as nothing waits
    unread or released; a tail that never empties (a steady feed) gets one after
    ``BACKLOG_TAIL_S``, then the live interval again."""
    monkeypatch.setattr(checkpoint_module, "BACKLOG_TAIL_S", 0.3)
    w = _Worker()
    w.cfg.commit_behind_s = 10.0  # (none while behind, in this test)

    async def script(w):
        _set_lag(w.ingest_lag, 40_000)
        await asyncio.sleep(0.1)
        assert w.taken == []
        _set_lag(w.ingest_lag, 0)
        w.entity_lane.stepping = 3000  # the backlog's last chunks: not behind, not through
        await asyncio.sleep(0.15)
        assert w.taken == []  # not at each tick of its tail
        w.entity_lane.stepping = 0
        through = asyncio.get_running_loop().time()
        await asyncio.sleep(0.1)
        assert w.taken and through < w.taken[0] < through + 0.05  # at once (at the next look)
        assert len(w.taken) >= 3  # live again: every commit interval
        _set_lag(w.ingest_lag, 40_000)
        await asyncio.sleep(0.05)
        n = len(w.taken)
        _set_lag(w.ingest_lag, 300)  # a steady feed after it: the lag never 0
        await asyncio.sleep(0.2)
        assert len(w.taken) == n
        await asyncio.sleep(0.25)  # past BACKLOG_TAIL_S since the last one
        assert len(w.taken) >= n + 2  # one for the tail, then live again

    asyncio.run(_run(w, script))


def test_worked_through_reads_lags_and_released_events_not_those_held_for_the_watermark():
    w = _Worker()
    assert w.worked_through()
    w.entity_lane.buffer.extend(range(10))  # held until the watermark passes them
    assert w.worked_through()
    w.decide_lane.stepping = 1
    assert not w.worked_through()
    w.decide_lane.stepping = 0
    _set_lag(w.entity_lane.lag, 1)
    assert not w.worked_through()


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
    w.entity_lane.buffer.clear()
    w.decide_lane.stepping = 5001  # released at once, stepped in chunks: waiting still
    assert w.behind()


def test_a_backlog_released_at_once_waits_until_each_chunk_of_it_is_stepped():
    """What ``behind`` reads: a lane releasing a backlog says how much of it is not stepped yet
    (else a checkpoint would be taken mid-backlog, between two chunks, and every key it changed
    written again at the next)."""
    w = _Worker()
    lane = OrderedLane.__new__(OrderedLane)  # (its release alone: no broker, no consumer)
    lane.lanes = SimpleNamespace(reference_mark=None, recently_applied=RecentlyApplied(),
                                 retain_ids_from=lambda t: None)
    lane.stage, lane.downstream, lane.unconfirmed = "entity", None, []
    lane.marks, lane.partitions, lane.expected = {0: {"calls/0": 10**9}}, [0], {"calls/0"}
    lane.buffer = Reorderer(lateness_ms=0, external=True)
    lane.stepping, lane.stepped, lane.lag = 0, 0, LagGauge()
    n = 4 * STEP_CHUNK + 5
    for i in range(n):
        ev = StageEvent.make("calls", "+8613900000001", "line", {
            "event_id": f"cdr-{i}", "event_time": "2026-03-01T10:00:00+08:00", "duration_s": 0})
        ev.t_ms = ev.avail_ms = 1_000 + i
        lane.buffer.push((ev.t_ms, 0, f"cdr-{i}"), ev)
    w.entity_lane = lane  # type: ignore[assignment]
    seen: list[tuple[int, int, bool]] = []

    async def step(chunk, marks):
        seen.append((len(chunk), lane.stepping, w.behind()))
        return len(chunk)

    lane.step = step
    assert asyncio.run(lane.release_inputs(0.0)) == n
    assert [c for c, _, _ in seen] == [STEP_CHUNK] * 4 + [5]
    assert [s for _, s, _ in seen] == [n - i * STEP_CHUNK for i in range(5)]
    assert [b for _, _, b in seen] == [True, True, False, False, False]  # (5,000 the bound)
    assert lane.stepping == 0 and not w.behind()
    assert lane.stepped == n  # (what a checkpoint says it holds: zt_checkpoint_stage_events)
