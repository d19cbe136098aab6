"""The high-volume lanes of a worker: lean aiokafka loops inside the Faust app's event loop.

Faust handles every message one at a time underneath (~4-5k events/s a process here, INFRA.md),
so calls, transactions and the repartitioned stage events bypass Faust's stream machinery and
are consumed in batches of thousands (``getmany``) into the same core the replay driver uses:

* ``reference``: every worker reads all partitions of ``registry`` and ``watchlist`` from the
  start (a global table, like Kafka Streams' GlobalKTable: the compacted source topic is its own
  changelog) into the ``Reference`` the core looks up. The entity and person lanes wait for its
  first catch-up, so no record is routed against a half-loaded registry.
* ``ingest`` (group ``<g>-ingest``, calls and transactions): validate, dead-letter bad input with
  its reason, send each record to the lines and accounts it concerns on ``zt-entity-events``.
* ``entity`` (group ``<g>-entity``): per-line and per-account state in event time; forwards each
  record with a snapshot of that state to its persons on ``zt-person-events``.
* ``decide`` (group ``<g>-decide``): per-person state, features, scores, warning tasks.

Stage events whose destination partition the next stage holds in this same worker are handed on
in memory (``LocalLink``), not through the broker: one worker alone runs the three stages with no
internal hop at all, N workers send about (N-1)/N of the stage events through the broker.

Offsets are committed only after what they produced is acknowledged, and never past a record
still waiting in an event-time buffer of this worker (a record handed on in memory is held until
the last stage is done with it): at least once, and task ids from evidence make a repeat the
same task.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import uuid
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from streams import contract, metrics, supervisor, transient
from streams.core import CoreConfig, Decider, EntityStage, Router, StageEvent
from streams.deadletter import dead_letter
from streams.envelopes import stage_event, stage_message
from streams.eventtime import to_ms
from streams.health import HEALTH, probe_broker
from streams.reference import Reference
from streams.runtime.changelog import BATCH_BYTES, StageStore
from streams.runtime.checkpoint import RecentlyApplied, Uncommitted
from streams.tasks import WarningTask, dumps
from streams.topics import ENTITY_EVENTS, ENTITY_STATE, HIGH_VOLUME, PERSON_EVENTS, PERSON_STATE

log = logging.getLogger(__name__)

# Stage events travel in arrays, one message per destination partition and batch: the
# per-message cost of the client, not the bytes, limits a Python process.
ENVELOPES_PER_MESSAGE = 500
MESSAGE_BYTES = 256 << 10  # and at most this much (the broker takes requests up to 1 MB)
STEP_CHUNK = 2000  # events handed to a stage at a time


@dataclass(frozen=True)
class LaneConfig:
    bootstrap: str
    group: str = "zt"  # consumer groups are <group>-ingest, <group>-entity and <group>-decide
    batch: int = 5000
    poll_ms: int = 20
    marker_every_s: float = 0.05  # how often a stage tells the next how far it has come
    idle_flush_s: float = 1.0  # inputs read to their end this long: release what was sent
    # An input partition read to its end counts as idle (its mark then follows the newest
    # partition's) at once when it is within half the lateness of that partition in event time
    # (a live feed between two of its batches), else only once a fetch response this long after
    # its last data still ends there: a partition that merely caught up with a bulk feed far
    # behind the others is not idle, and marking it so made its next records late (seen with
    # two workers on a bulk feed).
    idle_partition_s: float = 0.25
    # A checkpoint (state to the changelogs, then the input offsets) this often: a key changed
    # many times between two is written once, and a restart re-reads at most this much.
    commit_every_s: float = 0.5
    session_timeout_ms: int = 6000  # short: a group join takes ~3 s on Tansu, not ~23 s
    heartbeat_ms: int = 1000
    fetch_wait_ms: int = 20
    # A broker away this long (sends not acknowledged, commits refused) makes the worker exit.
    broker_deadline_s: float = transient.BROKER_DEADLINE_S
    rules: str = "default"  # rule file ("default": rules/sets/city.yaml; "none": built-in path)
    models: str | None = None  # model registry directory (None: $ZT_MODELS or .zt/models)
    core: CoreConfig = field(default_factory=CoreConfig)


def consumer_kwargs(cfg: LaneConfig) -> dict[str, Any]:
    return dict(
        bootstrap_servers=cfg.bootstrap.split(","),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=cfg.session_timeout_ms,
        heartbeat_interval_ms=cfg.heartbeat_ms,
        max_partition_fetch_bytes=4 << 20,
        # Tansu holds a fetch for the whole max wait even when records are there (measured:
        # p50 event-to-task 467 ms at the 500 ms default), so keep the wait short.
        fetch_max_wait_ms=cfg.fetch_wait_ms,
    )


class LagGauge:
    """Per-topic lag: the fetch response's high-water mark minus the next offset to read.

    (The high-water mark from fetches is right on Tansu; ``end_offsets()`` is not: INFRA.md.)
    """

    def __init__(self) -> None:
        self.lag: dict[TopicPartition, int] = {}

    def update(self, consumer: AIOKafkaConsumer, tp: TopicPartition, next_offset: int) -> None:
        high = consumer.highwater(tp)
        if high is not None:
            self.lag[tp] = max(high - next_offset, 0)

    def caught_up(self) -> None:
        self.lag = dict.fromkeys(self.lag, 0)  # an empty fetch: nothing is waiting

    def publish(self) -> None:
        totals: dict[str, int] = {}
        for tp, n in self.lag.items():
            totals[tp.topic] = totals.get(tp.topic, 0) + n
        for topic, n in totals.items():
            metrics.CONSUMER_LAG.labels(topic).set(n)


class Lanes:
    """The lean loops of one worker process."""

    def __init__(self, cfg: LaneConfig):
        self.cfg = cfg
        self.reference = Reference()
        self.router = Router(self.reference)
        self.entities = EntityStage(self.reference, cfg.core)
        self.decider = Decider(self.reference, cfg.core)
        # Each stage releases by the watermark its upstream sends, the slowest partition's:
        # then any arrival order, bulk or live, gives the order replay sees.
        self.entities.buffer.external = True
        self.decider.buffer.external = True
        self.reference_ready = asyncio.Event()
        # How far in event time the global tables are read, when they are behind (None: read to
        # their end). The ordered stages wait for it: a side input, in event time.
        self.reference_mark: int | None = None
        # "Read to its end" is only as fresh as the fetch that said so: a registry record written
        # just before a call may not be fetched yet when the call is. So the reference lane asks
        # the broker's end offsets once a stage has taken an event that arrived after its last
        # look, and the stages release nothing that arrived after the latest look that found
        # the global tables read to their end (wall times; ``OrderedLane._release``).
        self.reference_checked = 0.0
        self.newest_arrival = 0.0  # the latest arrival at ingest of an event a stage took
        self.started = asyncio.Event()  # the producer is up and the stage topics' partitions known
        self.rules = _rules_watcher(cfg.rules)
        self.models = _model_watcher(cfg.models)
        self.versions: tuple[str, str] = ("", "")
        self.producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()  # the reference and ingest lanes; the stages after them
        self._counted: dict[str, int] = {}
        self._quiet_idle: set[TopicPartition] = set()  # input partitions judged idle while behind
        self._exported: dict[tuple[str, tuple[str, ...]], float] = {}
        self._partitions: dict[str, list[int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._probe: asyncio.Task[None] | None = None
        # Every send of this worker not yet acknowledged. A lane's commit waits for all of them:
        # an input whose events went on in memory is done only once what they led to, in any
        # stage, is acknowledged.
        self.unacked = Unacked()
        worker_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.entity_link = LocalLink("entity", worker_id)
        self.person_link = LocalLink("decide", worker_id)
        self.ingest_held = HeldOffsets()  # input records whose events wait in a stage here
        self.ingest_consumer: AIOKafkaConsumer | None = None
        self.ingest_consumed: dict[TopicPartition, int] = {}
        self.ingest_uncommitted = Uncommitted()
        self._ingest_commits = transient.BrokerRetry("ingest commit", cfg.broker_deadline_s)
        # The worker's stages at rest: every step, read and release holds it, so a checkpoint
        # taken under it sees each stage's state, buffers and offsets at one instant (aligned).
        self.busy = asyncio.Lock()
        self._checkpointing = asyncio.Lock()  # one checkpoint at a time, in order
        self.state_producer: AIOKafkaProducer | None = None
        self.entity_store = StageStore(ENTITY_STATE, self.entities,
                                       lambda key: self.partition_of(ENTITY_EVENTS, key))
        self.person_store = StageStore(PERSON_STATE, self.decider,
                                       lambda key: self.partition_of(PERSON_EVENTS, key))
        self.recently_applied = RecentlyApplied()
        # Until a checkpoint says how far back an input may be read again, remember every id.
        self.entities.retain_from_ms = self.decider.retain_from_ms = -(2**62)
        self._entity_markers = Markers(self, ENTITY_EVENTS, self.entity_link)
        self._person_markers = Markers(self, PERSON_EVENTS, self.person_link)
        self.entity_lane = OrderedLane(self, ENTITY_EVENTS, "entity", self._entity_step,
                                       self.entity_link, self._person_markers)
        self.decide_lane = OrderedLane(self, PERSON_EVENTS, "decide", self._decide_step,
                                       self.person_link, None)

    async def start(self) -> None:
        transient.retry_unknown_produce_errors()
        self.producer = AIOKafkaProducer(bootstrap_servers=self.cfg.bootstrap.split(","),
                                         linger_ms=2, acks=1, client_id="zt-worker",
                                         request_timeout_ms=int(self.cfg.broker_deadline_s * 1000))
        await self.producer.start()
        # The changelogs' own producer: large batches of many keyed records (one request holds a
        # batch per partition, so 8 x 96 KB stays under Tansu's 1 MB).
        self.state_producer = AIOKafkaProducer(
            bootstrap_servers=self.cfg.bootstrap.split(","), linger_ms=0, acks=1,
            client_id="zt-worker-state", max_batch_size=BATCH_BYTES,
            request_timeout_ms=int(self.cfg.broker_deadline_s * 1000))
        await self.state_producer.start()
        for topic in (ENTITY_EVENTS, PERSON_EVENTS):
            self._partitions[topic] = sorted(await self.producer.partitions_for(topic))
        self.started.set()
        self._probe = asyncio.create_task(probe_broker(self.producer.client), name="zt-probe")
        self._tasks = [asyncio.create_task(c, name=f"zt-{n}") for n, c in (
            ("reference", self._reference_lane()),
            ("ingest", self._ingest_lane()),
            ("entity", self.entity_lane.run()),
            ("decide", self.decide_lane.run()),
            ("checkpoint", self._checkpoint_lane()),
        )]
        for t in self._tasks:  # a lane that ends unasked for stops the worker, non-zero
            supervisor.watch(t, t.get_name().removeprefix("zt-"))

    async def stop(self) -> None:
        # Upstream first: what a lane hands on in memory is decided before the next one stops.
        supervisor.stopping()
        self._stopping.set()
        if self._tasks:
            await asyncio.wait(self._tasks[:2], timeout=10)
            for lane, task in ((self.entity_lane, self._tasks[2]), (self.decide_lane, self._tasks[3])):
                lane.stopping.set()
                await asyncio.wait([task], timeout=10)
            await asyncio.wait(self._tasks[4:], timeout=10)
        if self._probe is not None:
            self._probe.cancel()
        if self.producer is not None:
            await self.producer.stop()
        if self.state_producer is not None:
            await self.state_producer.stop()

    # --- checkpoints --------------------------------------------------------------------------

    async def _checkpoint_lane(self) -> None:
        """A checkpoint every ``commit_every_s`` while the stages run (each lane takes a last
        one as it stops, before its consumer closes)."""
        lanes = (self.entity_lane, self.decide_lane)
        while not all(lane.stopping.is_set() for lane in lanes):
            await asyncio.sleep(self.cfg.commit_every_s)
            await self.checkpoint()

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
            async with self.busy:
                lanes = (self.entity_lane, self.decide_lane)
                records = [(lane.store, lane.store.capture(lane.buffer.items(), lane.held))
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
            _release(dropped)  # in their pending records now: their inputs may be committed
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

    # --- the global tables -------------------------------------------------------------------

    async def _reference_lane(self) -> None:
        consumer = AIOKafkaConsumer(**{**consumer_kwargs(self.cfg), "group_id": None})
        await consumer.start()
        try:
            # warning-tasks too: an outcome must find the person of a task any worker sent
            tps = [TopicPartition(t, p) for t in ("registry", "watchlist", "case-reports",
                                                   "warning-tasks")
                   for p in sorted(consumer.partitions_for_topic(t) or {0})]
            side = [tp for tp in tps if tp.topic != "warning-tasks"]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            newest: dict[TopicPartition, int] = {}  # newest event time read, per partition
            consumed: dict[TopicPartition, int] = {}
            lost_logs = transient.LostLogs("reference")
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=self.cfg.poll_ms,
                                                 max_records=self.cfg.batch)
                for tp in await read_again(consumer, lost_logs, tps, consumed, batches):
                    consumed[tp] = 0  # (reading a table again is idempotent)
                for tp, msgs in batches.items():
                    for m in msgs:
                        if tp.topic == "warning-tasks":
                            # Ours, but anyone with access can write there: check it like input.
                            task = contract.check("warning-tasks", m.value)
                            if task.ok:
                                self.reference.note_task(task.value["task_id"], task.value["person_id"])
                            continue
                        checked = contract.check(tp.topic, m.value)
                        if checked.ok:  # the group agents dead-letter and count bad ones once
                            self.reference.apply(tp.topic, checked.value)
                            t = to_ms(checked.value["event_time"])
                            newest[tp] = max(newest.get(tp, t), t)
                    consumed[tp] = msgs[-1].offset + 1
                self.reference_mark = _side_input_mark(consumer, side, newest, consumed,
                                                       self.cfg.core.lateness_ms)
                if not batches and not self.reference_ready.is_set():
                    # An empty fetch at or past the end offsets means we have it all.
                    asked = time.time()
                    if await _read_to_end(consumer, tps):
                        self.reference_checked = asked
                        self.reference_ready.set()
                        HEALTH.tables_loaded = True
                        log.info("global tables loaded: %d persons, %d watch-list values",
                                 len(self.reference.persons), len(self.reference.watch))
                elif self.reference_mark is None and self.newest_arrival > self.reference_checked:
                    asked = time.time()
                    if await _read_to_end(consumer, side):
                        self.reference_checked = asked
                metrics.REFERENCE_ENTRIES.labels("registry").set(len(self.reference.persons))
                metrics.REFERENCE_ENTRIES.labels("watchlist").set(len(self.reference.watch))
        finally:
            await consumer.stop()

    # --- sending stage events ------------------------------------------------------------------

    def partition_of(self, topic: str, key: str) -> int:
        """The partition of a stage topic that events keyed by ``key`` go to."""
        parts = self._partitions[topic]
        return parts[stage_partition(key, len(parts))]

    async def _send_stage(self, topic: str, events: list[StageEvent], markers: Markers,
                          marks: dict[str, int] | None = None) -> None:
        """Send ``events`` on: in memory to this worker's own next stage where it holds the
        destination partition (``LocalLink``), else through the broker in arrays, one message
        per destination partition (and 500). With ``marks``, each partition's last message
        carries them (``{"wm": .., "ev": ..}``): the watermark rides with the data it follows,
        in no batch of its own."""
        assert self.producer is not None
        link = markers.link
        await markers.hand_over()
        owned = link.owned
        local: list[StageEvent] = []
        outbox: dict[int, list[bytes]] = {}
        for ev in events:
            part = self.partition_of(topic, ev.key)
            if part in owned:
                origin = ev.origin
                if origin is not None:  # done once the next stage is done with it
                    origin[0].hold(origin[1], origin[2])
                local.append(ev)
            else:
                outbox.setdefault(part, []).append(orjson.dumps(ev.envelope()))
        pending = []
        wm = orjson.dumps(marks) if marks else None
        for part, envs in outbox.items():
            chunks = list(envelope_chunks(envs))
            for i, chunk in enumerate(chunks):
                array = b"[" + b",".join(chunk) + b"]"
                if wm is not None and i == len(chunks) - 1:
                    array = b'{"wm":' + wm + b',"ev":' + array + b"}"
                pending.append(await self.producer.send(topic, array, partition=part))
        self.unacked.extend(pending)
        if marks:
            markers.carried(outbox.keys(), marks)
        if local or (marks and owned and marks != markers.local):
            await markers.hand_on(local, marks)

    # --- stage 1: validate and route --------------------------------------------------------

    async def _ingest_lane(self) -> None:
        link, ingest_uncommitted = self.entity_link, self.ingest_uncommitted

        # Per input partition, aiokafka's stamp of its end (the wall ms of the fetch response
        # that last told where it ends) when its data last came, or when it was first seen.
        data_stamp: dict[TopicPartition, int] = {}

        class Sources(ConsumerRebalanceListener):
            # The inputs this worker reads changed: data a former owner sent through the broker
            # may still be unread there, so marks in memory wait for a new handover.
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                link.reset()
                for tp in revoked:  # (its next owner starts from the group's commit)
                    consumed.pop(tp, None)
                    ingest_uncommitted.forget(tp)

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                link.reset()
                for tp in assigned:
                    data_stamp.pop(tp, None)  # (ours again: quiet only from now on)

        consumer = AIOKafkaConsumer(group_id=f"{self.cfg.group}-ingest", **consumer_kwargs(self.cfg))
        consumer.subscribe(list(HIGH_VOLUME), listener=Sources())
        await consumer.start()
        self.ingest_consumer = consumer
        assert self.producer is not None
        lag = LagGauge()
        newest_ms: dict[TopicPartition, int] = {}  # newest event time read, per input partition
        consumed = self.ingest_consumed
        sent_until = -(2**62)  # latest availability time routed on (a call is available at its end)
        idle_since: float | None = None
        released_quiet = False
        lost_logs = transient.LostLogs("ingest")

        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=self.cfg.poll_ms,
                                                 max_records=self.cfg.batch)
                async with self.busy:
                    sent_until, idle_since, released_quiet = await self._ingest_step(
                        consumer, batches, lost_logs, lag, newest_ms, data_stamp, sent_until,
                        idle_since, released_quiet)
            await self.checkpoint()
        finally:
            self.ingest_consumer = None
            await consumer.stop()

    async def _ingest_step(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, Any],
                           lost_logs: transient.LostLogs, lag: LagGauge,
                           newest_ms: dict[TopicPartition, int], data_stamp: dict[TopicPartition, int],
                           sent_until: int, idle_since: float | None, released_quiet: bool
                           ) -> tuple[int, float | None, bool]:
        """One fetch of the ingest lane: validate, route, send on (with the worker at rest
        otherwise)."""
        assert self.producer is not None
        held, consumed, markers = self.ingest_held, self.ingest_consumed, self._entity_markers
        uncommitted = self.ingest_uncommitted
        for tp in await read_again(consumer, lost_logs, consumer.assignment(), consumed,
                                   batches):
            consumed.pop(tp, None)
            held.forget(tp)
            uncommitted.forget(tp)
        if not batches:
            lag.caught_up()
            lag.publish()
            marks = await self._input_watermarks(consumer, newest_ms, consumed, data_stamp)
            idle_since = idle_since or time.monotonic()
            if marks and time.monotonic() - idle_since >= self.cfg.idle_flush_s:
                # A quiet stream: nothing is in flight, so what was sent may be decided
                # now (replay decides it at the end of the file). A record arriving
                # later with an earlier time is decided at once and counted as late.
                if not released_quiet and sent_until > min(marks.values()):
                    released_quiet = True  # (said once per quiet spell)
                    log.info("inputs quiet for %.1f s: releasing what was sent, %.1f s of "
                             "event time past the slowest input",
                             time.monotonic() - idle_since,
                             (sent_until - min(marks.values())) / 1000)
                marks = {src: max(wm, sent_until) for src, wm in marks.items()}
            await markers.send(marks)
            return sent_until, idle_since, released_quiet
        idle_since, released_quiet = None, False
        for tp in batches:  # (before any await: these partitions are still ours)
            stamp = consumer.last_poll_timestamp(tp)
            if stamp is not None:
                data_stamp[tp] = stamp
        started = time.perf_counter()
        arrived = time.time()
        routed: list[StageEvent] = []
        for tp, msgs in batches.items():
            topic = tp.topic
            metrics.RECORDS_CONSUMED.labels(topic).inc(len(msgs))
            metrics.LAST_RECEIVED.labels(topic).set(arrived)
            newest = -(2**62)
            for m in msgs:
                checked = contract.check(topic, m.value)
                if not checked.ok:
                    reason = checked.reason or "invalid"
                    metrics.RECORDS_REJECTED.labels(topic, contract.reason_class(reason)).inc()
                    self.unacked.extend([await self.producer.send(
                        "dead-letter", dead_letter(topic, m.value, reason))])
                    continue
                value = checked.value
                entity_events = self.router.route(topic, value, arrived)[0]
                origin = (held, tp, m.offset)
                for ev in entity_events:
                    ev.origin = origin
                if entity_events:
                    uncommitted.read(tp, m.offset, entity_events[0].avail_ms)
                # (times compared parsed: texts with different offsets do not sort)
                newest = max(newest, entity_events[0].t_ms if entity_events
                             else to_ms(value["event_time"]))
                routed.extend(entity_events)
            if newest > -(2**62):
                newest_ms[tp] = max(newest_ms.get(tp, -(2**62)), newest)
                metrics.LAST_EVENT_TIME.labels(topic).set(newest_ms[tp] / 1000)
            consumed[tp] = msgs[-1].offset + 1
            lag.update(consumer, tp, consumed[tp])
        if routed:
            sent_until = max(sent_until, max(ev.avail_ms for ev in routed))
        marks = await self._input_watermarks(consumer, newest_ms, consumed, data_stamp)
        await self._send_stage(ENTITY_EVENTS, routed, markers, marks)
        # Partitions that got no data get a marker of their own, behind the data (one
        # producer keeps the order); the commit waits for the acknowledgements.
        await markers.send(marks)
        lag.publish()
        metrics.BATCH_SECONDS.labels("ingest").observe(time.perf_counter() - started)
        return sent_until, idle_since, released_quiet

    async def _input_watermarks(self, consumer: AIOKafkaConsumer, newest_ms: dict[TopicPartition, int],
                                consumed: dict[TopicPartition, int],
                                data_stamp: dict[TopicPartition, int]) -> dict[str, int]:
        """How far each input partition of this worker has come: its newest event time minus
        the lateness, or, once it is idle, the newest time of any of them minus the lateness (an
        idle partition must not hold the others back; a record it gets later than that is late).
        Idle: read to its end, and within half the lateness of the newest partition or quiet:
        a fetch response that came ``idle_partition_s`` (``LaneConfig``) or more after its last
        data still put its end there. Not the time since that data alone: while a long batch
        holds the event loop, the partition's next records may wait in a response not read yet,
        and the end known for it is stale."""
        if not newest_ms:
            return {}
        lateness, top = self.cfg.core.lateness_ms, max(newest_ms.values())
        near = top - lateness // 2
        quiet_ms = self.cfg.idle_partition_s * 1000
        out = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            stamp = consumer.last_poll_timestamp(tp)  # (before the await below: still ours)
            nxt = consumed.get(tp)
            if nxt is None and high is not None:
                try:
                    nxt = await consumer.position(tp)
                except Exception:  # no position yet (rebalance): say nothing for it this time
                    continue
            quiet_for = stamp - data_stamp.setdefault(tp, stamp) if stamp is not None else 0
            behind = newest_ms.get(tp, near - 1) < near
            idle = (high is not None and nxt is not None and nxt >= high
                    and (not behind or quiet_for >= quiet_ms))
            if idle and behind and tp in newest_ms and tp not in self._quiet_idle:
                # The one judgement that can make records late (if the partition's feed had only
                # stalled): said once per quiet spell, for whoever reads a lateness count.
                self._quiet_idle.add(tp)
                log.info("%s/%d: idle (no data for %.2f s), %.1f s of event time behind the newest",
                         tp.topic, tp.partition, quiet_for / 1000, (top - newest_ms[tp]) / 1000)
            elif not idle:
                self._quiet_idle.discard(tp)
            seen = top if idle else newest_ms.get(tp)
            if seen is not None:
                out[f"{tp.topic}/{tp.partition}"] = seen - lateness
        return out

    # --- stages 2 and 3: ordered by event time ------------------------------------------------

    async def _entity_step(self, events: list[StageEvent], marks: dict[str, int] | None) -> int:
        process = self.entities.process
        persons: list[StageEvent] = []
        for ev in events:
            out = process(ev)
            for p in out:
                p.origin = ev.origin  # the input it came from is done when its persons are
            persons.extend(out)
        for topic, n in self.entities.unrouted.items():
            metrics.RECORDS_UNROUTED.labels(topic).inc(n - self._counted.get(f"#unrouted/{topic}", 0))
            self._counted[f"#unrouted/{topic}"] = n
        await self._send_stage(PERSON_EVENTS, persons, self._person_markers, marks)
        return len(persons)

    def refresh_decisions(self) -> None:
        """Hot reload: the rule set and the promoted model in force now (cheap: a stat a second)."""
        if self.rules is not None:
            self.decider.ruleset = self.rules.current()
        if self.models is not None:
            self.decider.scorer = self.models.current()
        versions = (self.decider.ruleset.version if self.decider.ruleset else self.cfg.core.ruleset_version,
                    self.decider.scorer.version if self.decider.scorer else self.cfg.core.model_version)
        if versions != self.versions:
            self.versions = versions
            metrics.BUILD.info({"ruleset_version": versions[0], "model_version": versions[1],
                                "policy_version": self.decider.ladder.policy.version})
            log.warning("in force: rule set %s, model %s", *versions)

    async def _decide_step(self, events: list[StageEvent], marks: dict[str, int] | None) -> int:
        sent = await self._emit(self.decider.decide_batch(events))
        self._count_decisions()
        return sent

    async def _fire_timers(self) -> None:
        """Escalations due by the person stage's watermark, when every event up to it is decided
        (so a quiet partition still escalates on time)."""
        tasks = self.decider.advance(self.decider.buffer.watermark)
        if tasks:
            await self._emit([(None, t) for t in tasks])
            self._count_decisions()

    async def _stage_dead_letter(self, topic: str, raw: bytes, why: str) -> None:
        """Anyone with access can write to a stage topic: what is not ours goes to dead-letter,
        counted, and never stops the lane."""
        assert self.producer is not None
        metrics.RECORDS_REJECTED.labels(topic, "malformed").inc()
        log.warning("%s: dead-lettered a message: %s", topic, why)
        self.unacked.extend([await self.producer.send(
            "dead-letter", dead_letter(topic, raw, f"{topic}: {why}"))])

    async def _emit(self, decided: list[tuple[StageEvent | None, WarningTask]]) -> int:
        """Send tasks; ``None`` for the event of a task that a timer made (an escalation)."""
        assert self.producer is not None
        pending: list[asyncio.Future[Any]] = []
        for ev, task in decided:
            rec = task.to_record()
            try:
                contract.validate("warning-tasks", rec)
            except contract.ContractError as e:
                metrics.TASKS_INVALID.inc()
                log.error("core built an invalid task (not sent): %s", e.reason)
                continue
            fut = await self.producer.send("warning-tasks", dumps(rec), key=rec["task_id"].encode())
            # Counted and timed when the broker acknowledges; the lane reads on meanwhile (a lane
            # waiting for acknowledgements held every later event a round trip), and commits
            # only once they are in (``Unacked``).
            fut.add_done_callback(functools.partial(
                _task_acknowledged, rec["action"], ev.arrived if ev is not None else 0.0))
            pending.append(fut)
        self.unacked.extend(pending)
        return len(pending)

    def _count_decisions(self) -> None:
        """Move the core's own counters into Prometheus (the core knows no metrics)."""
        stats, seen = self.decider.stats, self._counted
        for topic, n in stats.decided.items():
            metrics.RECORDS_DECIDED.labels(topic).inc(n - seen.get(topic, 0))
            seen[topic] = n
        dups = stats.duplicates + self.entities.duplicates
        metrics.RECORDS_DUPLICATE.inc(dups - seen.get("#dup", 0))
        seen["#dup"] = dups
        late = self.decider.buffer.late + self.entities.buffer.late
        metrics.RECORDS_LATE.inc(late - seen.get("#late", 0))
        seen["#late"] = late
        export_ladder(self.decider.ladder.stats, self._exported)

    async def _wait_reference(self) -> None:
        waiter = asyncio.create_task(self.reference_ready.wait())
        stopper = asyncio.create_task(self._stopping.wait())
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()


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
        self.consumer: AIOKafkaConsumer | None = None
        self.lag = LagGauge()
        self.commits = transient.BrokerRetry(f"{stage} commit", lanes.cfg.broker_deadline_s)
        # (latest arrival, earliest key time) of each batch taken that arrived after the global
        # tables were last seen read to their end: the watermark stays below them (a side input).
        self.unconfirmed: list[tuple[float, int]] = []

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
                    for tp in await read_again(consumer, lost_logs, consumer.assignment(),
                                               self.consumed, batches):
                        self.consumed.pop(tp, None)
                        self.held.forget(tp)
                        self.uncommitted.forget(tp)
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
                    released = await self._release(now)
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
                self.uncommitted.read(tp, m.offset, min(ev.avail_ms for ev in taken))
            if bad:  # one dead letter a message (bounded), the good envelopes taken
                await self.lanes._stage_dead_letter(self.topic, m.value, (
                    f"not a stage envelope: {len(bad)} of {len(envelopes)}, first {bad[0]}"))
            self._taken(taken)
            if wm:  # after the data: the marks vouch for it too
                _merge(self.marks.setdefault(tp.partition, {}), wm)
            if handover is not None and self.link.handed_over(tp.partition, handover):
                # Everything our upstream sent here through the broker is read now.
                _merge(self.marks.setdefault(tp.partition, {}), self.local_marks)
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
            _merge(self.local_marks, marks)
            for p in self.link.valid:
                _merge(self.marks.setdefault(p, {}), marks)
        released = await self._release(now)
        if events or released:
            metrics.BATCH_SECONDS.labels(self.stage).observe(time.perf_counter() - started)

    async def _release(self, now: float) -> int:
        """Step what the watermark releases, in chunks; then pass the watermark on. (Under the
        worker's ``busy`` lock.)"""
        buffer, stage = self.buffer, self.stage
        watermark = _watermark(self.marks, self.partitions, self.expected)
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
            chunk = ready[i:i + STEP_CHUNK]
            self.lanes.recently_applied.applied(min(ev.avail_ms for ev in chunk), time.monotonic())
            await self.step(chunk, out_marks if i + STEP_CHUNK >= len(ready) else None)
            _release(chunk)  # after the step: what it handed on in memory is held by now
            metrics.STAGE_EVENTS.labels(stage).inc(len(chunk))
            await asyncio.sleep(0)
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
            lane.partitions = partitions
            lane.link.assigned(lane.partitions)
            if lane.downstream is not None:
                lane.downstream.link.reset()
        metrics.STATE_RESTORE_SECONDS.labels(lane.stage).observe(figures["seconds"])
        log.info("%s: restored partitions %s from %s: %d records, %d bytes, %d keys, %d pending "
                 "events, %.2f s", lane.stage, partitions, lane.store.topic, figures["records"],
                 figures["bytes"], figures["keys"], len(pending), figures["seconds"])


class LocalLink:
    """Stage events that stay in this worker: from an upstream lane to the partitions its next
    stage holds here, in memory instead of through the broker (with one worker, both internal
    hops and their serialisation; with N, about 1/N of them).

    Data may go in memory as soon as the partition is held here (the event-time buffer orders
    it). Marks are the subtle part: they vouch for everything a source sent before them, and
    what this worker sent to the partition through the broker earlier may still be unread. So
    the upstream first sends a *handover* marker there through the broker, and marks handed on
    in memory count for the partition only once it has been read back. A new handover follows
    every change of either side's partitions (the upstream's sources may then have data of a
    former owner on the broker).

    >>> link = LocalLink("entity", "w1")
    >>> link.assigned([0, 3]); sorted(link.to_hand_over), link.valid
    ([0, 3], set())
    >>> token = link.token; link.to_hand_over.clear()
    >>> link.handed_over(3, token), link.handed_over(0, "w2/1"), link.valid
    (True, False, {3})
    >>> link.reset(); link.handed_over(0, token), sorted(link.to_hand_over)
    (False, [0, 3])
    """

    def __init__(self, stage: str, worker_id: str):
        self.stage = stage  # the stage it hands on to
        self.worker_id = worker_id
        self.generation = 0
        self.owned: set[int] = set()  # partitions the downstream lane holds now
        self.to_hand_over: set[int] = set()  # held, handover marker not sent yet
        self.valid: set[int] = set()  # handover read back: marks in memory count there
        self.downstream: OrderedLane | None = None

    @property
    def token(self) -> str:
        return f"{self.worker_id}/{self.generation}"

    def assigned(self, partitions: Iterable[int]) -> None:
        self.generation += 1
        self.owned = set(partitions)
        self.to_hand_over = set(self.owned)
        self.valid = set()
        metrics.STAGE_PARTITIONS_IN_MEMORY.labels(self.stage).set(0)

    def reset(self) -> None:
        self.assigned(self.owned)

    def handed_over(self, partition: int, token: str) -> bool:
        """A handover marker was read on ``partition``: True when it is this link's latest."""
        if token != self.token or partition not in self.owned:
            return False
        self.valid.add(partition)
        metrics.STAGE_PARTITIONS_IN_MEMORY.labels(self.stage).set(len(self.valid))
        return True


class Unacked:
    """Sends the broker has not acknowledged yet. A lane awaits them before it commits; several
    lanes may wait at once, and each waits for every send made before it began."""

    def __init__(self) -> None:
        self._futures: list[Awaitable[Any]] = []

    def __bool__(self) -> bool:
        return bool(self._futures)

    def extend(self, futures: list[Awaitable[Any]]) -> None:
        self._futures.extend(futures)

    def snapshot(self) -> list[Awaitable[Any]]:
        """The sends not acknowledged yet, now."""
        self._futures = [f for f in self._futures if not f.done()]  # type: ignore[attr-defined]
        return list(self._futures)

    async def wait(self) -> None:
        if self._futures:
            await asyncio.gather(*self._futures)
            # (others may have been added meanwhile: they stay until acknowledged)
            self._futures = [f for f in self._futures if not f.done()]  # type: ignore[attr-defined]


class HeldOffsets:
    """The input messages whose events still wait in a stage's event-time buffer (of any stage
    of this worker they were handed on to in memory), per partition: a commit may go no further
    than the first of them. O(1) a message, where scanning the buffer at every commit cost 14%
    of a worker with a backlog held. A message is held again before it is released when its
    events go on in memory, so its first hold comes in offset order.

    >>> held = HeldOffsets()
    >>> for off in (5, 5, 6, 7):
    ...     held.hold(0, off)
    >>> held.release(0, 5); held.first(0)
    5
    >>> held.release(0, 5); held.release(0, 7); held.first(0)
    6
    >>> held.release(0, 6); held.first(0) is None
    True
    """

    def __init__(self) -> None:
        self._count: dict[tuple[Hashable, int], int] = {}
        self._order: dict[Hashable, deque[int]] = {}

    def hold(self, partition: Hashable, offset: int) -> None:
        key = (partition, offset)
        n = self._count.get(key)
        if n is None:
            self._order.setdefault(partition, deque()).append(offset)  # offsets come in order
            self._count[key] = 1
        else:
            self._count[key] = n + 1

    def release(self, partition: Hashable, offset: int) -> None:
        key = (partition, offset)
        n = self._count.get(key, 0) - 1
        if n > 0:
            self._count[key] = n
        else:
            self._count.pop(key, None)

    def first(self, partition: Hashable) -> int | None:
        order = self._order.get(partition)
        while order and (partition, order[0]) not in self._count:
            order.popleft()
        return order[0] if order else None

    def forget(self, partition: Hashable) -> None:
        for off in self._order.pop(partition, ()):
            self._count.pop((partition, off), None)


class Markers:
    """Watermark marks for every partition of a stage topic. A partition that data went to
    carried them in its last message (``carried``); the others get a marker of their own, when
    the marks moved, at most every ``marker_every_s``. Sent after the data they cover, by the
    same producer, so in order. Partitions this worker's next stage holds get them in memory
    (``hand_on``) once their handover is through (``LocalLink``)."""

    def __init__(self, lanes: Lanes, topic: str, link: LocalLink):
        self.lanes, self.topic, self.link = lanes, topic, link
        self.last: dict[int, dict[str, int]] = {}
        self.sent_at: dict[int, float] = {}
        self.local: dict[str, int] | None = None  # the marks last handed on in memory

    def carried(self, partitions: Iterable[int], marks: dict[str, int]) -> None:
        now = time.monotonic()
        for p in partitions:
            self.last[p], self.sent_at[p] = marks, now

    async def send(self, marks: dict[str, int]) -> None:
        """Markers where the marks moved (the commit awaits their acknowledgements)."""
        await self.hand_over()
        if not marks:
            return
        now, every = time.monotonic(), self.lanes.cfg.marker_every_s
        producer = self.lanes.producer
        assert producer is not None
        body = None
        link = self.link
        for p in self.lanes._partitions[self.topic]:
            if p in link.valid or self.last.get(p) == marks or now - self.sent_at.get(p, 0.0) < every:
                continue
            body = body or orjson.dumps({"wm": marks})
            self.lanes.unacked.extend([await producer.send(self.topic, body, partition=p)])
            self.last[p], self.sent_at[p] = marks, now
        if link.owned and marks != self.local:
            await self.hand_on([], marks)

    async def hand_over(self) -> None:
        """A handover marker to each partition newly held by the next stage here."""
        link = self.link
        if not link.to_hand_over:
            return
        producer = self.lanes.producer
        assert producer is not None
        body = orjson.dumps({"wm": {}, "handover": link.token})
        for p in sorted(link.to_hand_over):
            self.lanes.unacked.extend([await producer.send(self.topic, body, partition=p)])
        link.to_hand_over.clear()

    async def hand_on(self, events: list[StageEvent], marks: dict[str, int] | None) -> None:
        """Events and marks to the next stage of this worker, in memory."""
        if marks:
            self.local = marks
        assert self.link.downstream is not None
        await self.link.downstream.receive(events, marks)


def envelope_chunks(envs: list[bytes]) -> Iterable[list[bytes]]:
    """Encoded envelopes in arrays of at most ENVELOPES_PER_MESSAGE and, past the first,
    MESSAGE_BYTES.

    >>> [len(c) for c in envelope_chunks([b"x" * 100_000] * 5)]
    [2, 2, 1]
    """
    chunk: list[bytes] = []
    size = 0
    for env in envs:
        if chunk and (len(chunk) == ENVELOPES_PER_MESSAGE or size + len(env) > MESSAGE_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(env)
        size += len(env) + 1
    if chunk:
        yield chunk


def _merge(into: dict[str, int], marks: dict[str, int]) -> None:
    """Marks only move forward."""
    for src, t in marks.items():
        if t > into.get(src, t - 1):
            into[src] = t


async def _read_to_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    """Whether everything on ``tps`` is read, by the end offsets the broker gives now (a fresh
    look, where the fetch's high-water marks may be a poll old). Tansu's end offsets can be too
    low within a partition's last batch, never too high: a batch written since is always seen.
    False while the broker does not answer (asked again at the next poll)."""
    try:
        ends = await consumer.end_offsets(tps)
        return all([await consumer.position(tp) >= ends[tp] for tp in tps])
    except KafkaError as e:
        log.warning("end offsets of the global tables not known now: %r", e)
        return False


def _side_input_mark(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                     newest: dict[TopicPartition, int], consumed: dict[TopicPartition, int],
                     lateness_ms: int) -> int | None:
    """How far a side input (the registry, the watch lists) is read in event time: None when
    every partition is read to its end (as of the last fetch), else the newest event time read
    on a partition still behind, minus the lateness (its records may be that much out of order).
    """
    low: int | None = None
    for tp in tps:
        high, nxt = consumer.highwater(tp), consumed.get(tp, 0)
        if high is not None and nxt >= high:
            continue
        mark = newest.get(tp, -(2**62)) - lateness_ms
        low = mark if low is None else min(low, mark)
    return low


def _watermark(marks: dict[int, dict[str, int]], partitions: list[int],
               expected: set[str]) -> int | None:
    """The watermark of a stage that reads ``partitions``: the lowest mark of any expected
    source on any of them, or None while some partition has not yet carried every source.

    >>> _watermark({0: {"a": 5, "b": 9}, 1: {"a": 7, "b": 3}}, [0, 1], {"a", "b"})
    3
    >>> _watermark({0: {"a": 5, "b": 9}}, [0, 1], {"a", "b"}) is None
    True
    """
    if not partitions:
        return None
    low: int | None = None
    for p in partitions:
        seen = marks.get(p)
        if seen is None or not expected <= seen.keys():
            return None
        m = min(seen[s] for s in expected)
        low = m if low is None else min(low, m)
    return low


def _task_acknowledged(action: str, arrived: float, fut: asyncio.Future[Any]) -> None:
    if fut.cancelled() or fut.exception() is not None:
        return  # raised where the lane awaits its sends, before it commits
    metrics.TASKS_EMITTED.labels(action).inc()
    if arrived:
        metrics.EVENT_TO_TASK.observe(max(time.time() - arrived, 0.0))


def _release(events: list[StageEvent]) -> None:
    """These events are done with: their messages may be committed (``HeldOffsets``)."""
    for ev in events:
        origin = ev.origin
        if origin is not None:
            origin[0].release(origin[1], origin[2])


def stage_partition(key: str, partitions: int) -> int:
    """The partition of a stage event keyed by a line, an account or a person, for every
    producer of the internal topics (the lanes' arrays and the Faust agents' single records).
    CRC-32 (in C, ~0.2 us), not Kafka's murmur2: aiokafka's is pure Python (~15 us), and with
    millions of lines and accounts no cache of it would hold.

    >>> stage_partition("+8613912345678", 8), stage_partition("P0000123", 8)
    (4, 7)
    """
    return zlib.crc32(key.encode()) % partitions


def _rules_watcher(rules: str) -> Any:
    from rules.engine import RuleSetWatcher
    from streams.decisions import rules_path

    path = rules_path(rules)
    if path is None:
        return None
    return RuleSetWatcher(path, on_error=lambda e: metrics.RULESET_REJECTED.inc())


def _model_watcher(models: str | None) -> Any:
    from streams.decisions import model_watcher

    return model_watcher(models)


def export_ladder(stats: Any, exported: dict[tuple[str, tuple[str, ...]], float]) -> None:
    """Add what the ladder counted since the last export to the Prometheus counters."""
    for key, value in stats.counts.items():
        metric = metrics.LADDER_METRICS.get(key[0])
        delta = value - exported.get(key, 0.0)
        if metric is None or delta <= 0:
            continue
        (metric.labels(*key[1]) if key[1] else metric).inc(delta)
        exported[key] = value
    for seconds in stats.first_warning_s:
        metrics.FIRST_WARNING.observe(seconds)
    stats.first_warning_s.clear()


async def read_again(consumer: AIOKafkaConsumer, lost_logs: transient.LostLogs,
                     tps: Iterable[TopicPartition], consumed: dict[TopicPartition, int],
                     batches: dict[TopicPartition, Any]) -> list[TopicPartition]:
    """The partitions of ``tps`` whose log the broker lost (``LostLogs``), set to be read again
    from their start (unless this fetch already read from there, the group having reset the
    position); the caller forgets what it knew of their offsets."""
    lost = lost_logs.lost(consumer, list(tps), consumed)
    again = [tp for tp in lost if tp not in batches]
    if again:
        await consumer.seek_to_beginning(*again)
    return lost
