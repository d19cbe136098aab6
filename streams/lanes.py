"""The high-volume lanes of a worker: lean aiokafka loops inside the Faust app's event loop.

Faust handles every message one at a time underneath (~4-5k events/s a process here, INFRA.md),
so calls, transactions and the repartitioned person events bypass Faust's stream machinery and
are consumed in batches of thousands (``getmany``) into the same core the replay driver uses:

* ``reference``: every worker reads all partitions of ``registry`` and ``watchlist`` from the
  start (a global table, like Kafka Streams' GlobalKTable: the compacted source topic is its own
  changelog) into the ``Reference`` the core looks up. The other lanes wait for its first
  catch-up, so no call is routed against a half-loaded registry.
* ``ingest`` (consumer group ``zt-ingest``): validate, dead-letter bad input with its reason,
  route valid records to the person they concern on ``zt-person-events`` (keyed by person).
* ``decide`` (consumer group ``zt-decide``): order each person's events by event time, decide,
  and send warning tasks. Offsets are committed only after what they produced is acknowledged:
  at least once, and task ids from evidence make a repeat the same task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.partitioner import murmur2

from streams import contract, metrics
from streams.core import CoreConfig, Decider, PersonEvent, Router
from streams.eventtime import to_ms
from streams.reference import Reference
from streams.tasks import dumps
from streams.topics import HIGH_VOLUME, PERSON_EVENTS

log = logging.getLogger(__name__)

# Person events travel in arrays, one message per destination partition and batch: the
# per-message cost of the client, not the bytes, limits a Python process.
ENVELOPES_PER_MESSAGE = 500


@dataclass(frozen=True)
class LaneConfig:
    bootstrap: str
    group: str = "zt"  # consumer groups are <group>-ingest and <group>-decide
    batch: int = 5000
    poll_ms: int = 50
    max_wait_s: float = 0.1  # longest wall time a record waits in the event-time buffer
    session_timeout_ms: int = 6000  # short: a group join takes ~3 s on Tansu, not ~23 s
    heartbeat_ms: int = 1000
    fetch_wait_ms: int = 20
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


def dead_letter(topic: str, raw: bytes, reason: str) -> bytes:
    """A contract dead-letter record; received_time is the wall clock (it is about receipt)."""
    return dumps({
        "reason": reason,
        "topic": topic,
        "raw": raw.decode("utf-8", "backslashreplace"),
        "received_time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    })


class Lanes:
    """The three lean loops of one worker process."""

    def __init__(self, cfg: LaneConfig):
        self.cfg = cfg
        self.reference = Reference()
        self.router = Router(self.reference)
        self.decider = Decider(self.reference, cfg.core, max_wait_s=cfg.max_wait_s)
        self.reference_ready = asyncio.Event()
        self.producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._counted: dict[str, int] = {}
        self._partitions: list[int] = [0]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.cfg.bootstrap.split(","),
                                         linger_ms=2, acks=1, client_id="zt-worker")
        await self.producer.start()
        self._tasks = [asyncio.create_task(c, name=n) for n, c in (
            ("zt-reference", self._reference_lane()),
            ("zt-ingest", self._ingest_lane()),
            ("zt-decide", self._decide_lane()),
        )]
        for t in self._tasks:
            t.add_done_callback(_crash_report)

    async def stop(self) -> None:
        self._stopping.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        if self.producer is not None:
            await self.producer.stop()

    # --- the global tables -------------------------------------------------------------------

    async def _reference_lane(self) -> None:
        consumer = AIOKafkaConsumer(**{**consumer_kwargs(self.cfg), "group_id": None})
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in ("registry", "watchlist")
                   for p in sorted(consumer.partitions_for_topic(t) or {0})]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=300, max_records=self.cfg.batch)
                for tp, msgs in batches.items():
                    for m in msgs:
                        checked = contract.check(tp.topic, m.value)
                        if checked.ok:  # the group agents dead-letter and count bad ones once
                            self.reference.apply(tp.topic, checked.value)
                if not batches and not self.reference_ready.is_set():
                    # An empty fetch at or past the end offsets means we have it all. (Tansu's
                    # end offsets can be too low, never too high, so they are only a floor.)
                    ends = await consumer.end_offsets(tps)
                    if all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                        self.reference_ready.set()
                        log.info("global tables loaded: %d persons, %d watch-list values",
                                 len(self.reference.persons), len(self.reference.watch))
                metrics.REFERENCE_ENTRIES.labels("registry").set(len(self.reference.persons))
                metrics.REFERENCE_ENTRIES.labels("watchlist").set(len(self.reference.watch))
        finally:
            await consumer.stop()

    # --- stage 1: validate and route --------------------------------------------------------

    async def _ingest_lane(self) -> None:
        await self._wait_reference()
        consumer = AIOKafkaConsumer(*HIGH_VOLUME, group_id=f"{self.cfg.group}-ingest",
                                    **consumer_kwargs(self.cfg))
        await consumer.start()
        assert self.producer is not None
        send = self.producer.send
        self._partitions = sorted(await self.producer.partitions_for(PERSON_EVENTS))
        lag = LagGauge()
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=self.cfg.poll_ms,
                                                 max_records=self.cfg.batch)
                if not batches:
                    lag.caught_up()
                    lag.publish()
                    continue
                started = time.perf_counter()
                arrived = time.time()
                pending: list[Awaitable[Any]] = []
                outbox: dict[int, list[bytes]] = {}  # destination partition -> envelopes
                for tp, msgs in batches.items():
                    topic = tp.topic
                    metrics.RECORDS_CONSUMED.labels(topic).inc(len(msgs))
                    newest = ""
                    for m in msgs:
                        checked = contract.check(topic, m.value)
                        if not checked.ok:
                            reason = checked.reason or "invalid"
                            metrics.RECORDS_REJECTED.labels(topic, contract.reason_class(reason)).inc()
                            pending.append(await send("dead-letter", dead_letter(topic, m.value, reason)))
                            continue
                        value = checked.value
                        newest = max(newest, value["event_time"])
                        events = self.router.route(topic, value, arrived)
                        if not events:
                            metrics.RECORDS_UNROUTED.labels(topic).inc()
                        for ev in events:
                            outbox.setdefault(self._partition_of(ev.person_id), []).append(
                                orjson.dumps(ev.envelope()))
                    if newest:
                        metrics.LAST_EVENT_TIME.labels(topic).set(to_ms(newest) / 1000)
                    lag.update(consumer, tp, msgs[-1].offset + 1)
                for part, envelopes in outbox.items():
                    for chunk in range(0, len(envelopes), ENVELOPES_PER_MESSAGE):
                        body = b"[" + b",".join(envelopes[chunk:chunk + ENVELOPES_PER_MESSAGE]) + b"]"
                        pending.append(await send(PERSON_EVENTS, body, partition=part))
                await asyncio.gather(*pending)
                await consumer.commit()
                lag.publish()
                metrics.BATCH_SECONDS.labels("ingest").observe(time.perf_counter() - started)
        finally:
            await consumer.stop()

    def _partition_of(self, person_id: str) -> int:
        """The partition Kafka's default partitioner gives the key ``person_id`` (murmur2), so
        single records keyed by person (from the Faust agents) land on the same partition."""
        parts = self._partitions
        return parts[(murmur2(person_id.encode()) & 0x7FFFFFFF) % len(parts)]

    # --- stage 2: order by event time and decide --------------------------------------------

    async def _decide_lane(self) -> None:
        await self._wait_reference()
        lanes = self

        class Flush(ConsumerRebalanceListener):
            # Decide what is buffered before partitions move to another worker.
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                await lanes._emit(lanes.decider.drain())
                lanes._count_decisions()
                if revoked:
                    await lanes._commit_decided(consumer, consumed)
                for tp in revoked:
                    consumed.pop(tp, None)

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                return None

        consumed: dict[TopicPartition, int] = {}  # next offset to read, per partition
        consumer = AIOKafkaConsumer(group_id=f"{self.cfg.group}-decide", **consumer_kwargs(self.cfg))
        consumer.subscribe([PERSON_EVENTS], listener=Flush())
        await consumer.start()
        lag = LagGauge()
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=self.cfg.poll_ms,
                                                 max_records=self.cfg.batch)
                started = time.perf_counter()
                now = time.monotonic()
                for tp, msgs in batches.items():
                    for m in msgs:
                        body = orjson.loads(m.value)
                        for env in body if isinstance(body, list) else (body,):
                            ev = PersonEvent.from_envelope(env)
                            ev.origin = (tp.partition, m.offset)
                            self.decider.push(ev, now)
                    consumed[tp] = msgs[-1].offset + 1
                    lag.update(consumer, tp, consumed[tp])
                if not batches:
                    lag.caught_up()
                sent = await self._emit(self.decider.ready(now))
                self._count_decisions()
                if batches or sent:
                    await self._commit_decided(consumer, consumed)
                    metrics.BATCH_SECONDS.labels("decide").observe(time.perf_counter() - started)
                lag.publish()
            await self._emit(self.decider.drain())
            self._count_decisions()
            await self._commit_decided(consumer, consumed)
        finally:
            await consumer.stop()

    def _count_decisions(self) -> None:
        """Move the decider's own counters into Prometheus (the core knows no metrics)."""
        stats, seen = self.decider.stats, self._counted
        for topic, n in stats.decided.items():
            metrics.RECORDS_DECIDED.labels(topic).inc(n - seen.get(topic, 0))
            seen[topic] = n
        metrics.RECORDS_DUPLICATE.inc(stats.duplicates - seen.get("#dup", 0))
        seen["#dup"] = stats.duplicates
        metrics.RECORDS_LATE.inc(self.decider.buffer.late - seen.get("#late", 0))
        seen["#late"] = self.decider.buffer.late

    async def _commit_decided(self, consumer: AIOKafkaConsumer,
                              consumed: dict[TopicPartition, int]) -> None:
        """Commit up to the first record still waiting in the event-time buffer, per partition,
        so a worker killed with records in its buffer re-reads them after a restart."""
        held: dict[int, int] = {}
        for ev in self.decider.buffer.items():
            if ev.origin is not None:
                part, off = ev.origin
                held[part] = min(held.get(part, off), off)
        assigned = consumer.assignment()
        offsets = {tp: held.get(tp.partition, nxt) for tp, nxt in consumed.items() if tp in assigned}
        if offsets:
            await consumer.commit(offsets)

    async def _emit(self, decided: list[tuple[PersonEvent, Any]]) -> int:
        assert self.producer is not None
        pending: list[tuple[PersonEvent, str, Awaitable[Any]]] = []
        for ev, task in decided:
            rec = task.to_record()
            try:
                contract.validate("warning-tasks", rec)
            except contract.ContractError as e:
                metrics.TASKS_INVALID.inc()
                log.error("core built an invalid task (not sent): %s", e.reason)
                continue
            fut = await self.producer.send("warning-tasks", dumps(rec), key=rec["task_id"].encode())
            pending.append((ev, rec["action"], fut))
        for ev, action, fut in pending:
            await fut
            metrics.TASKS_EMITTED.labels(action).inc()
            if ev.arrived:
                metrics.EVENT_TO_TASK.observe(max(time.time() - ev.arrived, 0.0))
        return len(pending)

    async def _wait_reference(self) -> None:
        waiter = asyncio.create_task(self.reference_ready.wait())
        stopper = asyncio.create_task(self._stopping.wait())
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()


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


def _crash_report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("lane %s stopped: %r", task.get_name(), task.exception())
