"""A stage's state as a changelog topic, like a Kafka Streams store: per key, flushed at every
checkpoint, read back when a partition is assigned.

The entity stage's lines and accounts go to ``zt-entity-state``, the person stage's persons to
``zt-person-state``, on the partition of the stage topic that owns the key (so a partition's
state is one changelog partition). Records are keyed, so Apache Kafka's compaction keeps the
latest of each (the topics are created compacted; Tansu accepts that and keeps everything):

* ``s<key>``: the key's state, ``EntityStage.dump`` / ``Decider.dump`` as MessagePack arrays
  (None, a tombstone, once nothing is remembered of it);
* ``p<key>``: the key's *pending* events, those held in the stage's event-time buffer that a
  restart would not read again (as envelopes; a tombstone once decided). The buffer is state
  too, as in Flink: the entity stage remembers it applied an event, so after a crash it would
  not send its person events again, and only their checkpoint has them. What ingest routed in
  memory needs no record (ingest keeps no state: a restart reads the input again and routes it
  again) except when its entity partition moves to another worker.

Only keys whose state changed since the last checkpoint are written (a record cache with dirty
keys: a key changed a thousand times between two checkpoints is written once), in producer
batches of many records (the client's per-message cost, not the bytes, is what a Python process
pays), each batch well under Tansu's 1 MB request limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import ormsgpack
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams import metrics
from streams.core import StageEvent

log = logging.getLogger(__name__)

BATCH_BYTES = 96 << 10  # per producer batch: a request holds one batch per partition (8 < 1 MB)

RESTORE_POLL_MS = 20  # about the fetch wait (``LaneConfig.fetch_wait_ms``)

Records = dict[int, list[tuple[bytes, bytes | None]]]  # partition -> (record key, value or None)


class StageStore:
    """The changelog of one ordered stage (``stage`` is an ``EntityStage`` or a ``Decider``)."""

    def __init__(self, topic: str, stage: Any, partition_of: Callable[[str], int]):
        self.topic, self.stage, self.partition_of = topic, stage, partition_of
        self.name = "entity" if hasattr(stage, "lines") else "decide"
        self.dirty: set[str] = set()
        stage.touched = self.dirty  # the core notes every key it changes here
        # What each key's pending record says now (sort keys), so an unchanged one is not written.
        self.pending: dict[str, tuple[Any, ...]] = {}
        self.rescan = False  # (after ``rewrite``: the pending records are gone from the broker)
        # Set by the lane: the ``HeldOffsets`` of its own consumer (what it holds is read again
        # from the stage topic, by whoever owns the partition), and of the upstream whose
        # in-memory events a restart here routes again (ingest's, for the entity stage: it
        # keeps no state; None for the person stage: the entity stage remembers it applied).
        self.own: Any = None
        self.rerouted: Any = None
        self.records_written = 0
        self.bytes_written = 0

    def capture(self, buffered: Callable[[], Iterable[StageEvent]],
                moving: frozenset[int] = frozenset()) -> Records:
        """The records of every key changed since the last capture, and of every key whose
        pending events changed. ``buffered``: what the stage's buffer holds (called only when an
        event in it may be pending: the buffer of a backlog is long). An event is pending unless
        a restart brings it back: held by the lane's own consumer, or by ``rerouted`` on a
        partition staying here (``moving``: revoked, their next owner reads only the changelog
        and the stage topic). Synchronous: call it with the worker's stages at rest."""
        out: Records = {}
        dirty, self.dirty = self.dirty, set()
        self.stage.touched = self.dirty
        dump, part = self.stage.dump, self.partition_of
        for key in dirty:
            state = dump(key)
            out.setdefault(part(key), []).append(
                (b"s" + key.encode(), encode(state) if state is not None else None))
        now: dict[str, list[StageEvent]] = {}
        own, rerouted = self.own, self.rerouted
        # With every in-memory input routed again, a pending event is a restored one (its key
        # in ``pending``) or a moving one.
        scan = rerouted is None or self.pending or moving or self.rescan
        self.rescan = False
        for ev in buffered() if scan else ():
            holder = ev.origin[0] if ev.origin is not None else None
            if holder is own or (holder is rerouted and holder is not None
                                 and part(ev.key) not in moving):
                continue  # (a restart brings it back)
            now.setdefault(ev.key, []).append(ev)
        for key, events in now.items():
            events.sort(key=lambda e: e.sort_key)
            keys = tuple(e.sort_key for e in events)
            if self.pending.get(key) != keys:
                self.pending[key] = keys
                out.setdefault(part(key), []).append(
                    (b"p" + key.encode(), encode([e.envelope() for e in events])))
        for key in [k for k in self.pending if k not in now]:
            del self.pending[key]
            out.setdefault(part(key), []).append((b"p" + key.encode(), None))
        return out

    def pending_restored(self, events: list[StageEvent]) -> None:
        """Restored pending events are back in the stage's buffer (what their records say)."""
        keys: dict[str, list[Any]] = {}
        for e in events:
            keys.setdefault(e.key, []).append(e.sort_key)
        for key, sort_keys in keys.items():
            self.pending[key] = tuple(sorted(sort_keys))

    def rewrite(self) -> None:
        """Write every key and pending record at the next checkpoint (the broker lost them)."""
        self.dirty.update(self.keys())
        self.pending.clear()
        self.rescan = True

    def forget(self, partitions: set[int]) -> None:
        """Drop the keys of ``partitions`` (revoked: their next owner reads them back)."""
        part = self.partition_of
        stage = self.stage
        keys = [k for k in self.keys() if part(k) in partitions]
        stage.forget(keys)
        self.dirty.difference_update(keys)
        for k in [k for k in self.pending if part(k) in partitions]:
            del self.pending[k]

    def keys(self) -> set[str]:
        stage = self.stage
        if hasattr(stage, "lines"):
            return {*stage.lines, *stage.accounts}
        ladder = stage.ladder
        return {*stage.persons, *ladder.episodes, *ladder.confirmed, *ladder._of, *stage._hits}

    async def send(self, producer: AIOKafkaProducer, records: Records) -> list[asyncio.Future[Any]]:
        """Send ``records`` in batches; the futures of their acknowledgements."""
        futures = []
        for partition, items in records.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, self.topic, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"{self.topic}: a state record of {len(value or b'')} bytes "
                                         "does not fit a batch")
                self.records_written += 1
                self.bytes_written += len(key) + len(value or b"")
            if batch.record_count():
                futures.append(await producer.send_batch(batch, self.topic, partition=partition))
        metrics.STATE_WRITTEN_BYTES.labels(self.name).inc(
            sum(len(k) + len(v or b"") for items in records.values() for k, v in items))
        return futures

    async def restore(self, consumer_kwargs: dict[str, Any], partitions: list[int]
                      ) -> tuple[list[StageEvent], dict[str, Any]]:
        """Read the changelog of ``partitions`` from its start to its end (the end by the fetch
        responses' high-water marks: Tansu's ListOffsets can be short of it), install the latest
        state of each key; return the pending events to push into the stage's buffer again, and
        figures (records, bytes, seconds)."""
        started = time.monotonic()
        latest: dict[bytes, bytes | None] = {}
        read = size = 0
        if partitions:
            consumer = AIOKafkaConsumer(**{**consumer_kwargs, "group_id": None})
            await consumer.start()
            try:
                tps = [TopicPartition(self.topic, p) for p in partitions]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                while True:
                    # (short waits: an empty changelog is at its end after one fetch)
                    batches = await consumer.getmany(timeout_ms=RESTORE_POLL_MS, max_records=20_000)
                    for msgs in batches.values():
                        for m in msgs:
                            latest[m.key] = m.value
                            read += 1
                            size += len(m.key or b"") + len(m.value or b"")
                    if await _at_end(consumer, tps):
                        break
            finally:
                await consumer.stop()
        pending: list[StageEvent] = []
        stage = self.stage
        for i, (key, value) in enumerate(latest.items()):
            name = key[1:].decode()
            if key[:1] == b"s":
                stage.install(name, decode(value) if value is not None else None)
            elif value is not None:
                pending.extend(StageEvent.from_envelope(env) for env in decode(value))
            if i % 500 == 499:
                await asyncio.sleep(0)  # (the other lanes, the heartbeats and the fetches go on)
        figures = {"records": read, "bytes": size, "keys": len(latest),
                   "seconds": round(time.monotonic() - started, 3)}
        return pending, figures


def encode(value: Any) -> bytes:
    """A state or pending record's value, as MessagePack."""
    return ormsgpack.packb(value)


def decode(value: bytes) -> Any:
    """A state or pending record's value: MessagePack (a third fewer bytes than JSON, and faster
    to write at a checkpoint), or JSON as the versions before wrote it (always an array, ``[``;
    a MessagePack array never starts with that byte)."""
    return orjson.loads(value) if value[:1] == b"[" else ormsgpack.unpackb(value)


async def _at_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    for tp in tps:
        high = consumer.highwater(tp)
        if high is None or await consumer.position(tp) < high:
            return False
    return True
