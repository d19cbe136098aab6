"""Per-key state written out and read back mid-stream decides exactly as if nothing happened.

What a worker's changelog keeps of a line, an account or a person (``EntityStage.dump``,
``Decider.dump``) is all a later decision can depend on: a replay stopped at any record, its
state encoded to bytes, loaded into fresh stages and driven on, gives replay's tasks byte for
byte (the tasks of the stream as one, and their order).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson
import pytest

from streams.core import Core
from streams.decisions import load_rules
from streams.runtime.changelog import decode, encode
from streams.simulator import simulate
from streams.tasks import dumps


@pytest.fixture(scope="module")
def city() -> list[tuple[str, dict]]:
    d = tempfile.mkdtemp()
    path = os.path.join(d, "city.jsonl")
    simulate(2500, 9, seed=11, out=path)
    return [(e["topic"], e["value"]) for e in map(orjson.loads, Path(path).read_bytes().splitlines())]


def _core() -> Core:
    return Core(ruleset=load_rules("default"))


def _run(records, restore_at: set[int]) -> list[bytes]:
    core, out = _core(), []
    for i, (topic, value) in enumerate(records):
        if i in restore_at:
            core = _restored(core)
        out += [dumps(t.to_record()) for t in core.feed(topic, value)]
    return out + [dumps(t.to_record()) for t in core.finish()]


def _restored(old: Core) -> Core:
    """A fresh core holding what the old one's changelog would: every key's state as bytes."""
    entity = {k: encode(old.entities.dump(k)) for k in {*old.entities.lines, *old.entities.accounts}}
    decider, ladder = old.decider, old.decider.ladder
    persons = {k: encode(decider.dump(k)) for k in {*decider.persons, *ladder.episodes,
                                                           *ladder.confirmed, *ladder._of}}
    new = _core()
    # The global tables and the event-time buffers are not per-key state (a worker reads the
    # former again and keeps the latter as the pending events of its keys): carried over.
    new.reference = new.router.reference = new.entities.reference = old.reference
    new.person.reference = new.person.router.reference = new.decider.reference = old.reference
    new.entities.buffer, new.decider.buffer = old.entities.buffer, old.decider.buffer
    new.person._ready = old.person._ready
    for k, b in entity.items():
        new.entities.install(k, decode(b))
    for k, b in persons.items():
        new.decider.install(k, decode(b))
    return new


def test_state_restored_at_any_record_decides_as_replay(city):
    whole = _run(city, set())
    assert len(whole) > 40
    n = len(city)
    again = _run(city, {n // 5, n // 3, n // 2, 2 * n // 3, 9 * n // 10})
    assert again == whole


def test_a_dump_holds_the_event_ids_so_a_record_read_again_changes_nothing(city):
    core = _core()
    half = len(city) // 2
    for topic, value in city[:half]:
        core.feed(topic, value)
    restored = _restored(core)
    # The last thousand records again, after the restore: each is a duplicate now.
    before = restored.duplicates
    tasks = []
    for topic, value in city[half - 1000:half]:
        if topic in ("calls", "transactions"):
            tasks += restored.feed(topic, value)
    assert tasks == []
    assert restored.duplicates > before


def test_a_state_written_as_json_by_an_earlier_version_is_read_as_well(city):
    core = _core()
    for topic, value in city[: len(city) // 2]:
        core.feed(topic, value)
    stages = ((core.entities, [*core.entities.lines, *core.entities.accounts]),
              (core.decider, [*core.decider.persons, *core.decider.ladder.episodes]))
    for stage, keys in stages:
        assert keys
        for k in keys:
            state = stage.dump(k)
            assert encode(state)[:1] != b"["
            assert decode(orjson.dumps(state)) == decode(encode(state)) == orjson.loads(orjson.dumps(state))
