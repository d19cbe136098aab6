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

The state of the entity and person stages is in changelog topics, restored when partitions are
assigned; one checkpoint routine (every ``commit_every_s``, at a revocation, at a stop) writes
it and then commits every lane's offsets, never past a record still waiting in an event-time
buffer of this worker: a restart, a crash or a rebalance decides exactly as replay does.

Read in this order (``streams/runtime``): ``consumers`` (settings, reading the broker),
``handover`` (partitions, arrays, marks, the in-memory handover), ``offsets`` (what may be
committed), ``tables`` (the global tables), ``ingest`` (stage 1), ``ordered`` (stages 2 and 3),
``changelog`` (a stage's state as a topic), ``checkpoint`` (the one checkpoint); this module
wires them into one worker with the steps that call the core and send the tasks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams import contract, metrics, supervisor, transient
from streams.core import Decider, EntityStage, Router, StageEvent
from streams.deadletter import dead_letter
from streams.envelopes import stage_message  # noqa: F401  (where the tests take it from)
from streams.health import probe_broker
from streams.reference import Reference
from streams.runtime.changelog import BATCH_BYTES, StageStore
from streams.runtime.checkpoint import Checkpoints
from streams.runtime.consumers import LagGauge, LaneConfig, consumer_kwargs  # noqa: F401  (the app's)
from streams.runtime.handover import LocalLink, Markers, envelope_chunks, stage_partition
from streams.runtime.ingest import IngestLane
from streams.runtime.offsets import HeldOffsets, RecentlyApplied, Unacked, Uncommitted
from streams.runtime.ordered import OrderedLane
from streams.runtime.tables import GlobalTables
from streams.tasks import WarningTask, dumps
from streams.topics import ENTITY_EVENTS, ENTITY_STATE, PERSON_EVENTS, PERSON_STATE

log = logging.getLogger(__name__)









class Lanes(GlobalTables, IngestLane, Checkpoints):
    """The lean loops of one worker process: the global tables, ingest, the two ordered stages
    and the checkpoints (each in its module of ``streams/runtime``), wired together."""

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
        self.ingest_lag = LagGauge()  # (the ingest lane's, once it reads)
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




    # --- the global tables -------------------------------------------------------------------


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
























def _task_acknowledged(action: str, arrived: float, fut: asyncio.Future[Any]) -> None:
    if fut.cancelled() or fut.exception() is not None:
        return  # raised where the lane awaits its sends, before it commits
    metrics.TASKS_EMITTED.labels(action).inc()
    if arrived:
        metrics.EVENT_TO_TASK.observe(max(time.time() - arrived, 0.0))






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


