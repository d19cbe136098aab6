"""Stage 1 of a worker, ingest: validate calls and transactions, dead-letter bad input with its
reason, route each record to its lines and accounts on ``zt-entity-events`` (in memory where
this worker holds the partition), with the watermark marks of its input partitions."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from streams import contract, metrics, transient
from streams.core import StageEvent
from streams.deadletter import dead_letter
from streams.eventtime import to_ms
from streams.runtime.consumers import LagGauge, consumer_kwargs, read_again
from streams.topics import ENTITY_EVENTS, HIGH_VOLUME

log = logging.getLogger("streams.lanes")

STAGES_PLACED_S = 15.0  # how long ingest's first read waits for the stages' partitions


class IngestLane:
    """The worker's ingest lane (a part of ``Lanes``)."""

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
        # At a start, the first records wait until this worker's stages hold their partitions:
        # what is routed before that goes through the broker and back (a restart's backlog
        # serialised twice and validated again), not in memory. The group joins meanwhile.
        placed = asyncio.ensure_future(asyncio.gather(
            self.entity_lane.placed.wait(), self.decide_lane.placed.wait()))
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait([placed, stopping], timeout=STAGES_PLACED_S,
                           return_when=asyncio.FIRST_COMPLETED)
        if not placed.done():
            placed.cancel()
            if not stopping.done():
                log.warning("stages not placed in %.0f s: ingest reads on, through the broker",
                            STAGES_PLACED_S)
        stopping.cancel()
        self.ingest_consumer = consumer
        assert self.producer is not None
        lag = self.ingest_lag = LagGauge()
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
            if marks and time.monotonic() - idle_since >= self.cfg.idle_flush_s and \
                    _fetched_quiet(consumer, data_stamp, self.cfg.idle_flush_s):
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
            newest, earliest = -(2**62), 2**62
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
                if entity_events and entity_events[0].avail_ms < earliest:
                    earliest = entity_events[0].avail_ms
                # (times compared parsed: texts with different offsets do not sort)
                newest = max(newest, entity_events[0].t_ms if entity_events
                             else to_ms(value["event_time"]))
                routed.extend(entity_events)
            if earliest < 2**62:
                # Once a batch (by its last offset: kept no shorter than a record at a time).
                uncommitted.read(tp, msgs[-1].offset, earliest)
                self.retain_ids_from(earliest)
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


def _fetched_quiet(consumer: AIOKafkaConsumer, data_stamp: dict[TopicPartition, int],
                   quiet_s: float) -> bool:
    """Whether every input partition's latest fetch response came ``quiet_s`` or more after its
    last data and still ended there: quiet by the fetches, not only by this loop's clock (a
    loop held up, by a restore say, fetches nothing meanwhile and would take that for quiet)."""
    for tp in consumer.assignment():
        stamp = consumer.last_poll_timestamp(tp)
        if stamp is None or stamp - data_stamp.get(tp, stamp) < quiet_s * 1000:
            return False
    return True
