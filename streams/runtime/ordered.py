"""Stages 2 (entity) and 3 (decide) of a worker: read in their consumer groups and from this
worker's upstream stage in memory, ordered by event time, stepped through the core; their state
restored from its changelog when partitions are assigned, checkpointed and dropped when they
are revoked."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from streams import metrics, transient
from streams.core import StageEvent
from streams.envelopes import stage_event, stage_message
from streams.runtime.consumers import LagGauge, consumer_kwargs, read_again
from streams.runtime.handover import LocalLink, Markers, merge_marks, stage_partition, stage_watermark
from streams.runtime.offsets import HeldOffsets, Uncommitted, release_inputs
from streams.topics import ENTITY_EVENTS, HIGH_VOLUME

if TYPE_CHECKING:
    from streams.lanes import Lanes

log = logging.getLogger("streams.lanes")

STEP_CHUNK = 2000  # events handed to a stage at a time


class OrderedLane:
    """Stage 2 (entity) or 3 (decide) of a worker, ordered by event time.

    Its input is its stage topic, read from the broker in its own consumer group, plus what this
    worker's upstream lane hands on in memory for the partitions held here (``LocalLink``).
    What the watermark releases goes to ``step`` (with the marks to pass on, for its last chunk);
    the commit goes no further than the first record still held, here or in a later stage of
    this worker. The worker's ``busy`` lock keeps one step at a time: the lane's own loop and
    the upstream's handing on both release, and a checkpoint must see them at rest.
    Its state is in a changelog (``StageStore``): restored when partitions are assigned,
    checkpointed and dropped when they are revoked.
    """

    def __init__(self, lanes: Lanes, topic: str, stage: str, step: Callable[
            [list[StageEvent], dict[str, int] | None], Awaitable[int]], link: LocalLink,
            downstream: Markers | None):
        self.lanes, self.topic, self.stage, self.step = lanes, topic, stage, step
        self.link = link
        link.downstream = self
        self.downstream = downstream  # the next stage's markers (entity: the person stage's)
        self.buffer = lanes.entities.buffer if stage == "entity" else lanes.decider.buffer
        self.store = lanes.entity_store if stage == "entity" else lanes.person_store
        self.held = HeldOffsets()  # messages read here whose events still wait in this worker
        # What a restart brings back, so the changelog need not: the messages of this lane's
        # own consumer, and for the entity stage ingest's (routing keeps no state). The person
        # events the entity stage handed on in memory would not come back: they are pending.
        self.store.own = self.held
        self.store.rerouted = lanes.ingest_held if stage == "entity" else None
        self.uncommitted = Uncommitted()
        self.consumed: dict[TopicPartition, int] = {}  # next offset to read, per partition
        # Marks per partition read here: a marker vouches only for the data before it on its own
        # partition, so a source's mark counts once every partition of ours has carried it
        # (merged across partitions, a marker read on one partition could release records whose
        # data on another partition was not read yet: they would then come late). Marks handed
        # on in memory count on a partition once its handover marker has been read.
        self.marks: dict[int, dict[str, int]] = {}
        self.local_marks: dict[str, int] = {}
        self.expected: set[str] = set()
        self.partitions: list[int] = []  # assigned to this worker
        self.stopping = asyncio.Event()
        self.placed = asyncio.Event()  # its first partitions are assigned and restored
        self.stepped = 0  # events stepped (``zt_stage_events_total``)
        self.consumer: AIOKafkaConsumer | None = None
        self.lag = LagGauge()
        self.commits = transient.BrokerRetry(f"{stage} commit", lanes.cfg.broker_deadline_s)
        # (latest arrival, earliest key time) of each batch taken that arrived after the global
        # tables were last seen read to their end: the watermark stays below them (a side input).
        self.unconfirmed: list[tuple[float, int]] = []
        # Released by the watermark and not stepped yet (a backlog released at once is stepped
        # in chunks, out of the buffer): these wait too (``Checkpoints.behind``).
        self.stepping = 0

    async def run(self) -> None:
        lanes, cfg = self.lanes, self.lanes.cfg
        await lanes._wait_reference()
        if self.stage == "entity":
            assert lanes.producer is not None
            self.expected = {f"{t}/{p}" for t in HIGH_VOLUME
                             for p in sorted(await lanes.producer.partitions_for(t))}
        else:
            self.expected = {f"entity/{p}" for p in lanes._partitions[ENTITY_EVENTS]}
        consumer = self.consumer = AIOKafkaConsumer(group_id=f"{cfg.group}-{self.stage}",
                                                    **consumer_kwargs(cfg))
        consumer.subscribe([self.topic], listener=_Rebalance(self))
        await consumer.start()
        lost_logs = transient.LostLogs(self.stage)
        try:
            while not self.stopping.is_set():
                batches = await consumer.getmany(timeout_ms=cfg.poll_ms, max_records=cfg.batch)
                async with lanes.busy:
                    lost = await read_again(consumer, lost_logs, consumer.assignment(),
                                            self.consumed, batches)
                    for tp in lost:
                        self.consumed.pop(tp, None)
                        self.held.forget(tp)
                        self.uncommitted.forget(tp)
                    if lost:  # the changelogs went with the logs (memory storage): write it all
                        self.store.rewrite()
                    started = time.perf_counter()
                    now = time.monotonic()
                    assigned = consumer.assignment()
                    for tp, msgs in batches.items():
                        if tp in assigned:  # (not one revoked while this fetch was under way)
                            await self._read(tp, msgs, now)
                    if not batches:
                        self.lag.caught_up()
                    if self.stage == "decide":
                        lanes.refresh_decisions()  # also while idle: a new rule set shows at once
                    released = await self.release_inputs(now)
                    if self.downstream is not None:
                        await self.downstream.hand_over()
                if batches or released:
                    metrics.BATCH_SECONDS.labels(self.stage).observe(time.perf_counter() - started)
                self.lag.publish()
            # Nothing is decided early: what is held stays in the changelog (pending) and in the
            # offsets not committed, for whoever holds these partitions next.
            await lanes.checkpoint()
        finally:
            self.consumer = None
            await consumer.stop()

    async def _read(self, tp: TopicPartition, msgs: list[Any], now: float) -> None:
        for m in msgs:
            try:
                envelopes, wm, handover = stage_message(m.value)
            except ValueError as e:
                await self.lanes._stage_dead_letter(self.topic, m.value, f"not a stage message: {e}")
                continue
            taken: list[StageEvent] = []
            min_contact_s = self.lanes.cfg.core.min_contact_s
            bad: list[str] = []
            for i, env in enumerate(envelopes):
                try:
                    ev = stage_event(self.topic, env, min_contact_s)
                except ValueError as e:
                    bad.append(f"envelope {i + 1}: {e}")
                    continue
                ev.origin = (self.held, tp, m.offset)
                self.held.hold(tp, m.offset)
                self.buffer.push(ev.sort_key, ev, now, stream_ms=ev.t_ms)
                taken.append(ev)
            if taken:
                earliest = min(ev.avail_ms for ev in taken)
                self.uncommitted.read(tp, m.offset, earliest)
                self.lanes.retain_ids_from(earliest)
            if bad:  # one dead letter a message (bounded), the good envelopes taken
                await self.lanes._stage_dead_letter(self.topic, m.value, (
                    f"not a stage envelope: {len(bad)} of {len(envelopes)}, first {bad[0]}"))
            self._taken(taken)
            if wm:  # after the data: the marks vouch for it too
                merge_marks(self.marks.setdefault(tp.partition, {}), wm)
            if handover is not None and self.link.handed_over(tp.partition, handover):
                # Everything our upstream sent here through the broker is read now.
                merge_marks(self.marks.setdefault(tp.partition, {}), self.local_marks)
                log.info("%s/%d: events from this worker now come in memory", self.topic, tp.partition)
        self.consumed[tp] = msgs[-1].offset + 1
        self.lag.update(self.consumer, tp, self.consumed[tp])  # type: ignore[arg-type]

    async def receive(self, events: list[StageEvent], marks: dict[str, int] | None) -> None:
        """What this worker's upstream lane hands on in memory (their origins held upstream), and
        the marks that vouch for it."""
        assert self.lanes.busy.locked()  # (by the upstream step handing them on)
        started = time.perf_counter()
        now = time.monotonic()
        push = self.buffer.push
        for ev in events:
            push(ev.sort_key, ev, now, stream_ms=ev.t_ms)
        self._taken(events)
        if marks:
            merge_marks(self.local_marks, marks)
            for p in self.link.valid:
                merge_marks(self.marks.setdefault(p, {}), marks)
        released = await self.release_inputs(now)
        if events or released:
            metrics.BATCH_SECONDS.labels(self.stage).observe(time.perf_counter() - started)

    async def release_inputs(self, now: float) -> int:
        """Step what the watermark releases, in chunks; then pass the watermark on. (Under the
        worker's ``busy`` lock.)"""
        buffer, stage = self.buffer, self.stage
        watermark = stage_watermark(self.marks, self.partitions, self.expected)
        side = self.lanes.reference_mark
        if watermark is not None and side is not None and side < watermark:
            watermark = side  # the registry or a watch list is not read that far yet
        if self.unconfirmed:
            checked = self.lanes.reference_checked
            self.unconfirmed = [u for u in self.unconfirmed if u[0] > checked]
            if watermark is not None and self.unconfirmed:
                watermark = min(watermark, min(t for _, t in self.unconfirmed) - 1)
        if watermark is not None:
            buffer.advance(watermark)
            metrics.WATERMARK.labels(stage).set(buffer.watermark / 1000)
        ready = buffer.pop_ready(now)
        # Once what is ready is sent on, everything up to our watermark has been: the last
        # chunk's messages say so, per partition of ours.
        out_marks = ({f"entity/{p}": buffer.watermark for p in self.partitions}
                     if self.downstream is not None and buffer.watermark > -(2**61) else None)
        for i in range(0, len(ready), STEP_CHUNK):
            # In chunks, yielding between them: a watermark that frees a whole backlog must not
            # stall the other lanes of this event loop.
            self.stepping = len(ready) - i
            chunk = ready[i:i + STEP_CHUNK]
            earliest = min(ev.avail_ms for ev in chunk)
            self.lanes.recently_applied.applied(earliest, time.monotonic())
            self.lanes.retain_ids_from(earliest)
            await self.step(chunk, out_marks if i + STEP_CHUNK >= len(ready) else None)
            release_inputs(chunk)  # after the step: what it handed on in memory is held by now
            metrics.STAGE_EVENTS.labels(stage).inc(len(chunk))
            self.stepped += len(chunk)
            await asyncio.sleep(0)
        self.stepping = 0  # (a step that raises ends the lane and the worker: exit 70)
        if stage == "decide":
            await self.lanes._fire_timers()
        if self.downstream is not None and out_marks:
            # Partitions that got no data now: a marker (behind that data, by the same producer).
            await self.downstream.send(out_marks)
        return len(ready)

    def _taken(self, events: list[StageEvent]) -> None:
        """Note the arrival of a batch the global tables are not yet known to be read for."""
        latest = max((ev.arrived for ev in events), default=0.0)
        if latest > self.lanes.reference_checked:
            self.unconfirmed.append((latest, min(ev.avail_ms for ev in events)))
            if latest > self.lanes.newest_arrival:
                self.lanes.newest_arrival = latest

    def drop(self, partitions: set[int]) -> list[StageEvent]:
        """Forget the keys and buffered events of ``partitions`` (they moved to another worker,
        which restores them from the changelog and the group's offsets); return the dropped
        events that came in memory (their inputs are held upstream until the checkpoint that
        wrote them as pending is through). Synchronous, at a checkpoint."""
        self.store.forget(partitions)
        part = self.lanes._partitions[self.topic]
        n = len(part)
        gone = self.buffer.remove(lambda ev: part[stage_partition(ev.key, n)] in partitions)
        for p in partitions:
            self.marks.pop(p, None)
        held = self.held
        return [ev for ev in gone if ev.origin is not None and ev.origin[0] is not held]

    def offsets(self) -> dict[TopicPartition, int]:
        """The offsets to commit: up to the first message whose events still wait in this
        worker, per partition, so a worker killed with records in its buffers re-reads them."""
        consumer = self.consumer
        if consumer is None:
            return {}
        assigned = consumer.assignment()
        offsets = {}
        for tp, nxt in self.consumed.items():
            if tp in assigned:
                first = self.held.first(tp)
                offsets[tp] = nxt if first is None else first
        return offsets


class _Rebalance(ConsumerRebalanceListener):
    """An ordered lane's partitions move. Revoked: checkpoint them and drop their keys and
    buffered events (nothing is decided early; their next owner reads them back). Assigned:
    restore their state from the changelog before anything of theirs is processed. Both tell
    the lanes that hand on in memory, upstream (to this stage) and downstream (from it)."""

    def __init__(self, lane: OrderedLane):
        self.lane = lane

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        lane = self.lane
        lane.link.assigned(())  # from now on the upstream sends through the broker
        lane.partitions = []
        if lane.downstream is not None:
            lane.downstream.link.reset()
        if revoked:
            await lane.lanes.checkpoint(revoked=(lane, {tp.partition for tp in revoked}))
        for tp in revoked:
            lane.consumed.pop(tp, None)
            lane.held.forget(tp)
            lane.uncommitted.forget(tp)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        lane, lanes = self.lane, self.lane.lanes
        partitions = sorted(tp.partition for tp in assigned)
        pending, figures = await lane.store.restore(consumer_kwargs(lanes.cfg), partitions)
        async with lanes.busy:
            now = time.monotonic()
            for ev in pending:  # (a copy read again upstream is a duplicate)
                lane.buffer.push(ev.sort_key, ev, now, stream_ms=ev.t_ms)
            lane.store.pending_restored(pending)
            lane.partitions = partitions
            lane.link.assigned(lane.partitions)
            if lane.downstream is not None:
                lane.downstream.link.reset()
        lane.placed.set()
        metrics.STATE_RESTORE_SECONDS.labels(lane.stage).observe(figures["seconds"])
        log.info("%s: restored partitions %s from %s: %d records, %d bytes, %d keys, %d pending "
                 "events, %.2f s", lane.stage, partitions, lane.store.topic, figures["records"],
                 figures["bytes"], figures["keys"], len(pending), figures["seconds"])
