"""Putting contract records on the broker and reading them back, with kafka-python.

Used by ``zt demo``, ``zt bench``, the simulator's broker mode and the integration tests; keys
follow the contract (``TOPIC_KEY``), so records land on the partitions real feeds would use.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from aiokafka.partitioner import murmur2
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.contract import TOPIC_KEY

# A feed sends in batches, as a carrier's or a bank's mediation system does: every batch costs
# the broker a request and a stored batch, whatever it holds. At 5,000 records/s on 2 cores, 5 ms
# batches (3 records a partition) kept the embedded broker so busy that p99 event-to-task
# latency was 1.8-2.3 s; 25 ms batches brought it to 0.56-0.94 s (40-s live runs, same minutes).
FEED_LINGER_MS = 25


def producer(bootstrap: str, **kw: Any) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap.split(","), linger_ms=FEED_LINGER_MS, acks=1,
                         batch_size=256 * 1024, client_id="zt-feed", **kw)


def key_of(topic: str, value: Any) -> bytes | None:
    field = TOPIC_KEY.get(topic)
    if field is None or not isinstance(value, dict):
        return None
    k = value.get(field)
    # (a hostile record's key field may be anything, a 1,000-deep array say: no key then)
    return str(k).encode() if isinstance(k, str | int | float) else None


def send(prod: KafkaProducer, topic: str, value: dict[str, Any] | bytes) -> Any:
    """Send one record (a dict, or raw bytes exactly as a feed would send them)."""
    if isinstance(value, bytes):
        try:
            key = key_of(topic, orjson.loads(value))
        except orjson.JSONDecodeError:
            key = None
        return prod.send(topic, value=value, key=key)
    return prod.send(topic, value=orjson.dumps(value), key=key_of(topic, value))


def produce(bootstrap: str, records: Iterable[tuple[str, dict[str, Any] | bytes]]) -> int:
    """Send ``(topic, value)`` pairs in order and wait until all are acknowledged."""
    prod = producer(bootstrap)
    n = 0
    try:
        for topic, value in records:
            send(prod, topic, value)
            n += 1
        prod.flush(30)
    finally:
        prod.close(5)
    return n


@functools.lru_cache(maxsize=1 << 18)
def key_hash(key: str) -> int:
    """Kafka's default partitioner's hash of a record key (murmur2): the partition of a keyed
    record is ``key_hash(key) % partitions``. Cached: aiokafka's murmur2 is pure Python (~15 us)."""
    return murmur2(key.encode()) & 0x7FFFFFFF


def partition_counts(bootstrap: str, topics: Iterable[str]) -> dict[str, int]:
    """How many partitions each topic has on the broker."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    try:
        return {t: len(consumer.partitions_for_topic(t) or {0}) for t in topics}
    finally:
        consumer.close()


def read(bootstrap: str, topic: str, until: int | None = None, timeout_s: float = 30.0,
         idle_s: float | None = None) -> list[Any]:
    """Read ``topic`` from the start (no group) until ``until`` records, ``timeout_s``, or, with
    ``idle_s``, that long without a new record. Returns the decoded values."""
    return [orjson.loads(m.value) for m in read_messages(bootstrap, topic, until, timeout_s, idle_s)]


def read_messages(bootstrap: str, topic: str, until: int | None = None, timeout_s: float = 30.0,
                  idle_s: float | None = None) -> Iterator[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=200)
    try:
        parts = consumer.partitions_for_topic(topic) or {0}
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        n = 0
        while time.monotonic() < deadline:
            got = consumer.poll(timeout_ms=200)
            for msgs in got.values():
                for m in msgs:
                    n += 1
                    last_new = time.monotonic()
                    yield m
            if until is not None and n >= until:
                return
            if idle_s is not None and time.monotonic() - last_new > idle_s:
                return
    finally:
        consumer.close()
