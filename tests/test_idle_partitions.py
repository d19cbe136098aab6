"""When an input partition read to its end stops holding the others back (``Lanes``).

The rule reads only what the consumer knows of each partition: its end (the high-water mark of
the last fetch response for it) and when that response came (aiokafka's ``last_poll_timestamp``).
The broker itself is exercised by tests/test_worker.py; here the consumer's answers are set by
hand, to show the cases a busy worker meets only by chance.
"""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from streams.core import CoreConfig
from streams.lanes import LaneConfig, Lanes

LATENESS = 2000
A, B = TopicPartition("calls", 0), TopicPartition("calls", 1)


class KnownEnds:
    """What an AIOKafkaConsumer knows of its partitions between two fetches."""

    def __init__(self) -> None:
        self.high: dict[TopicPartition, int] = {}
        self.stamp: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.high)

    def highwater(self, tp: TopicPartition) -> int:
        return self.high[tp]

    def last_poll_timestamp(self, tp: TopicPartition) -> int:
        return self.stamp[tp]

    async def position(self, tp: TopicPartition) -> int:
        return self.high[tp]


def _marks(lanes: Lanes, ends: KnownEnds, newest: dict[TopicPartition, int],
           consumed: dict[TopicPartition, int], data_stamp: dict[TopicPartition, int]) -> dict[str, int]:
    # Driven by hand, not by an event loop: the stand-in never waits, so one step finishes it.
    rule = lanes._input_watermarks(ends, newest, consumed, data_stamp)  # type: ignore[arg-type]
    try:
        rule.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    rule.close()
    raise AssertionError("the idle rule waited on something")


def _lanes() -> Lanes:
    return Lanes(LaneConfig(bootstrap="127.0.0.1:9", core=CoreConfig(lateness_ms=LATENESS),
                            rules="none", idle_partition_s=0.25))


def test_a_partition_far_behind_is_idle_only_once_a_later_fetch_still_ends_where_its_data_did():
    lanes, ends = _lanes(), KnownEnds()
    newest = {A: 1_000_000, B: 1_060_000}  # A is a minute of event time behind B
    consumed = {A: 50, B: 80}
    ends.high = {A: 50, B: 90}  # A is read to its end as far as the consumer knows
    data_stamp = {A: 5_000, B: 5_000}  # the fetch responses that brought their last data

    # No response about A since its data (a long batch held the loop): A's end is stale.
    ends.stamp = {A: 5_000, B: 5_400}
    assert _marks(lanes, ends, newest, consumed, data_stamp)["calls/0"] == 1_000_000 - LATENESS
    # A response 0.2 s after its data: not quiet long enough yet.
    ends.stamp[A] = 5_200
    assert _marks(lanes, ends, newest, consumed, data_stamp)["calls/0"] == 1_000_000 - LATENESS
    # One 0.25 s after: nothing more came, A no longer holds B back.
    ends.stamp[A] = 5_250
    marks = _marks(lanes, ends, newest, consumed, data_stamp)
    assert marks["calls/0"] == 1_060_000 - LATENESS
    assert marks["calls/1"] == 1_060_000 - LATENESS  # B has data left to read: its own time


@pytest.mark.parametrize(("newest_a", "high_a", "stamp", "mark_a"), [
    # Data left to read: never idle, however long since its data.
    (1_000_000, 51, 99_000, 1_000_000 - LATENESS),
    # A live feed between two of its batches: within half the lateness of the newest partition.
    (1_059_500, 50, 5_000, 1_060_000 - LATENESS),
], ids=["data-left-to-read-is-never-idle", "near-the-newest-is-idle-at-once"])
def test_a_partition_read_to_its_end_or_not(newest_a: int, high_a: int, stamp: int, mark_a: int):
    lanes, ends = _lanes(), KnownEnds()
    newest, consumed = {A: newest_a, B: 1_060_000}, {A: 50, B: 80}
    ends.high, ends.stamp = {A: high_a, B: 90}, {A: stamp, B: stamp}
    marks = _marks(lanes, ends, newest, consumed, {A: 5_000, B: 5_000})
    assert marks["calls/0"] == mark_a


def test_a_partition_first_seen_waits_the_quiet_time_from_its_first_fetch():
    lanes, ends = _lanes(), KnownEnds()
    newest, consumed = {B: 1_060_000}, {A: 0, B: 80}
    ends.high, ends.stamp = {A: 0, B: 90}, {A: 7_000, B: 7_000}
    data_stamp = {B: 5_000}  # A was just assigned: no data, no stamp of its own yet
    assert "calls/0" not in _marks(lanes, ends, newest, consumed, data_stamp)
    assert data_stamp[A] == 7_000
    ends.stamp[A] = 7_300
    assert _marks(lanes, ends, newest, consumed, data_stamp)["calls/0"] == 1_060_000 - LATENESS
