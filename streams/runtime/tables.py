"""The global tables: every worker reads all of ``registry``, ``watchlist``, ``case-reports``
and ``warning-tasks`` (a side input, like Kafka Streams' GlobalKTable), and says how far in
event time they are read, so the stages wait for them."""

from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams import contract, metrics, transient
from streams.eventtime import to_ms
from streams.health import HEALTH
from streams.runtime.consumers import consumer_kwargs, read_again

log = logging.getLogger("streams.lanes")


class GlobalTables:
    """The worker's reference lane (a part of ``Lanes``)."""

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
