"""The one checkpoint of a worker, that every commit goes through (``Checkpoints.checkpoint``)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiokafka import TopicPartition

from streams import metrics, transient
from streams.core import StageEvent
from streams.runtime.offsets import release_inputs

# The checkpoint lane looks this often whether one is due (a backlog's end is caught within it).
CHECK_S = 0.05
# After a backlog, its last records (fewer than ``behind_records``) are worked through before
# the checkpoint, unless they take longer than this (a steady feed that never lets the lag be 0).
BACKLOG_TAIL_S = 2.0

if TYPE_CHECKING:
    from streams.runtime.ordered import OrderedLane


class Checkpoints:
    """The worker's checkpoints (a part of ``Lanes``)."""

    async def _checkpoint_lane(self) -> None:
        """A checkpoint every ``commit_every_s`` while the stages run, or every
        ``commit_behind_s`` while the inputs are behind; after a backlog, one as soon as it is
        worked through (not at the next tick, and not at each tick of its last records, which
        would write most keys twice). Each lane takes a last one as it stops, before its
        consumer closes."""
        lanes = (self.entity_lane, self.decide_lane)
        last = time.monotonic()
        backlog = False
        while not all(lane.stopping.is_set() for lane in lanes):
            await asyncio.sleep(min(CHECK_S, self.cfg.commit_every_s))
            if self.behind():
                backlog, due = True, self.cfg.commit_behind_s
            elif backlog:
                due = 0.0 if self.worked_through() else BACKLOG_TAIL_S
            else:
                due = self.cfg.commit_every_s
            if time.monotonic() - last < due:
                continue
            backlog = backlog and self.behind()
            await self.checkpoint()
            last = time.monotonic()

    def behind(self) -> bool:
        """Whether more than ``behind_records`` wait: unread in the worker's inputs, or read and
        held in its stages' event-time buffers, or released and not stepped yet (a backlog read
        at once is worked through there)."""
        held = sum(len(lane.buffer) + lane.stepping for lane in (self.entity_lane, self.decide_lane))
        return self._unread() + held > self.cfg.behind_records

    def worked_through(self) -> bool:
        """Whether nothing waits unread in the worker's inputs and nothing released is still
        being stepped (events held for the watermark may remain)."""
        return not (self.entity_lane.stepping or self.decide_lane.stepping or self._unread())

    def _unread(self) -> int:
        """Records not read yet from the worker's inputs (the lag of each of its consumers)."""
        lags = (self.ingest_lag, self.entity_lane.lag, self.decide_lane.lag)
        return sum(n for gauge in lags for n in gauge.lag.values())

    async def checkpoint(self, revoked: tuple[OrderedLane, set[int]] | None = None) -> None:
        """The one checkpoint of this worker, that every commit goes through (Kafka Streams'
        commit, Flink's aligned checkpoint):

        1. with every stage at rest (``busy``): the changed keys' state and the pending events
           of both ordered stages, every lane's offsets (up to the first record still held in
           any stage of this worker), and the sends not acknowledged yet; and, for ``revoked``
           (a lane and partitions moving away), their keys and buffered events dropped;
        2. wait for those sends: the state never says an event was applied before what it led
           to is on the broker;
        3. send the state records (the person stage's, then the entity stage's) and wait;
        4. commit the offsets (of the revoked lane only, when revoking).

        A worker that dies anywhere in this resumes from the last complete checkpoint: what it
        re-reads and had already applied is a duplicate by the restored event ids, what it had
        not is applied afresh."""
        async with self._checkpointing:
            started = time.perf_counter()
            async with self.busy:
                captured = time.time()
                lanes = (self.entity_lane, self.decide_lane)
                stepped = [(lane.stage, lane.stepped) for lane in lanes]
                records = [(lane.store, lane.store.capture(
                    lane.buffer.items,
                    frozenset(revoked[1]) if revoked and lane is revoked[0] else frozenset()))
                    for lane in lanes]
                offsets = [(self.ingest_consumer, self._ingest_offsets(), self.ingest_uncommitted,
                            self._ingest_commits)]
                offsets += [(lane.consumer, lane.offsets(), lane.uncommitted, lane.commits)
                            for lane in lanes]
                sent = self.unacked.snapshot()
                dropped: list[StageEvent] = []
                if revoked is not None:
                    lane, parts = revoked
                    dropped = lane.drop(parts)
                    offsets = [o for o in offsets if o[0] is lane.consumer]
            if sent:
                await asyncio.gather(*sent)
            assert self.state_producer is not None
            # The person stage's records first, all of them acknowledged before the entity
            # stage's: a line or account saying it applied an event must never be on the broker
            # while the person event it led to (pending, or applied) is not. (A checkpoint cut
            # short leaves some keys of it written and others not: each key is consistent with
            # the offsets of the last complete one, which the restart reads from.)
            for store, recs in reversed(records):
                acks = await store.send(self.state_producer, recs)
                if acks:
                    await asyncio.gather(*acks)
            release_inputs(dropped)  # in their pending records now: their inputs may be committed
            for consumer, offs, uncommitted, retry in offsets:
                if consumer is None or not offs:
                    continue
                if await transient.commit(consumer, offs, retry):
                    for tp, off in offs.items():
                        uncommitted.committed(tp, off)
            # Event ids are kept at least as far back as an input of this worker not committed
            # yet reaches, and as the events applied in the last minute (what another worker
            # taking over an input may send again), and a TTL more.
            times = [t for u in (self.ingest_uncommitted, self.entity_lane.uncommitted,
                                 self.decide_lane.uncommitted) if (t := u.earliest()) is not None]
            recent = self.recently_applied.earliest(time.monotonic())
            if recent is not None:
                times.append(recent)
            retain = (min(times) if times else 2**62) - self.cfg.core.seen_ttl_ms
            self.entities.retain_from_ms = self.decider.retain_from_ms = retain
            metrics.CHECKPOINT_SECONDS.observe(time.perf_counter() - started)
            metrics.CHECKPOINT_DURABLE.set(captured)
            for stage, n in stepped:
                metrics.CHECKPOINT_STAGE_EVENTS.labels(stage).set(n)

    def retain_ids_from(self, t_ms: int) -> None:
        """An event of time ``t_ms`` was read or applied: keep event ids from then on (and a TTL
        before) at once, not only from the next checkpoint on (a bulk feed runs days of event
        time between two; a key written meanwhile must keep the ids a re-read may bring)."""
        retain = t_ms - self.cfg.core.seen_ttl_ms
        if retain < self.entities.retain_from_ms:
            self.entities.retain_from_ms = self.decider.retain_from_ms = retain

    def _ingest_offsets(self) -> dict[TopicPartition, int]:
        consumer = self.ingest_consumer
        if consumer is None:
            return {}
        offsets = {}
        for tp in consumer.assignment():
            nxt = self.ingest_consumed.get(tp)
            if nxt is not None:
                first = self.ingest_held.first(tp)
                offsets[tp] = nxt if first is None else first
        return offsets
