"""Stage events between the stages of the workers: the partition of a key, arrays of envelopes,
watermark marks and the markers that carry them, and the in-memory handover between the stages
of one worker (``LocalLink``), with its handover markers."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson

from streams import metrics
from streams.core import StageEvent

if TYPE_CHECKING:
    from streams.lanes import Lanes
    from streams.runtime.ordered import OrderedLane

# Stage events travel in arrays, one message per destination partition and batch: the
# per-message cost of the client, not the bytes, limits a Python process.
ENVELOPES_PER_MESSAGE = 500
MESSAGE_BYTES = 256 << 10  # and at most this much (the broker takes requests up to 1 MB)


def stage_partition(key: str, partitions: int) -> int:
    """The partition of a stage event keyed by a line, an account or a person, for every
    producer of the internal topics (the lanes' arrays and the Faust agents' single records).
    CRC-32 (in C, ~0.2 us), not Kafka's murmur2: aiokafka's is pure Python (~15 us), and with
    millions of lines and accounts no cache of it would hold.

    >>> stage_partition("+8613912345678", 8), stage_partition("P0000123", 8)
    (4, 7)
    """
    return zlib.crc32(key.encode()) % partitions


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


def merge_marks(into: dict[str, int], marks: dict[str, int]) -> None:
    """Marks only move forward."""
    for src, t in marks.items():
        if t > into.get(src, t - 1):
            into[src] = t


def stage_watermark(marks: dict[int, dict[str, int]], partitions: list[int],
               expected: set[str]) -> int | None:
    """The watermark of a stage that reads ``partitions``: the lowest mark of any expected
    source on any of them, or None while some partition has not yet carried every source.

    >>> stage_watermark({0: {"a": 5, "b": 9}, 1: {"a": 7, "b": 3}}, [0, 1], {"a", "b"})
    3
    >>> stage_watermark({0: {"a": 5, "b": 9}}, [0, 1], {"a", "b"}) is None
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
