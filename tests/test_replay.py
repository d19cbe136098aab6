"""The replay driver: same bytes every run, survives any line, clear errors, exit codes."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import contract
from streams.demo import sample_path
from streams.replay import ReplayError, replay
from tests.timelines import call, listed, person

SAMPLE = sample_path()


def lines_of(records) -> bytes:
    return b"".join(orjson.dumps({"topic": t, "value": v}) + b"\n" for t, v in records)


def test_the_sample_gives_the_same_bytes_on_every_run(tmp_path: Path):
    digests = set()
    for i in range(3):
        s = replay(SAMPLE, tmp_path / f"t{i}.jsonl")
        digests.add(hashlib.sha256((tmp_path / f"t{i}.jsonl").read_bytes()).hexdigest())
        assert s.tasks["call"] == 3
        assert sum(s.rejected.values()) == 3
    assert len(digests) == 1


def test_tasks_are_contract_valid_and_dead_letters_carry_reasons(tmp_path: Path):
    s = replay(SAMPLE, tmp_path / "t.jsonl")
    for line in (tmp_path / "t.jsonl").read_bytes().splitlines():
        contract.validate("warning-tasks", orjson.loads(line))
    dead = [orjson.loads(x) for x in s.dead_letter_path.read_bytes().splitlines()]
    assert len(dead) == 3
    for d in dead:
        contract.validate("dead-letter", d)
    assert any("caller: '13912345678' does not match" in d["reason"] for d in dead)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)


def _dumps(v) -> bytes:
    # The stdlib writes what a broken feed might: NaN, Infinity, integers past 64 bits.
    return json.dumps(v).encode()


def mutated_record(draw_topic: str, mutation: dict) -> bytes:
    value = {**contract.example(draw_topic), **mutation}
    return _dumps({"topic": draw_topic, "value": value})


bad_lines = st.one_of(
    st.binary(max_size=200),
    json_values.map(_dumps),
    st.builds(lambda topic, v: _dumps({"topic": topic, "value": v}),
              st.sampled_from([*contract.INPUT_TOPICS, "warning-tasks", "nope"]), json_values),
    st.builds(mutated_record, st.sampled_from(contract.INPUT_TOPICS),
              st.dictionaries(st.sampled_from(["event_time", "duration_s", "amount_fen", "op", "kind",
                                               "msisdns", "accounts", "value", "answered",
                                               "birth_year", "caller", "status"]),
                              json_values, max_size=3)),
)


@given(st.lists(bad_lines, max_size=25))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_replay_survives_malformed_lines_of_any_kind(tmp_path_factory, bad: list[bytes]):
    tmp = tmp_path_factory.mktemp("fuzz")
    good = lines_of([person(), listed(), call(0, 600)])
    events = tmp / "e.jsonl"
    events.write_bytes(b"\n".join(b.replace(b"\n", b" ") for b in bad) + b"\n" + good)
    s = replay(events, tmp / "t.jsonl")
    tasks = (tmp / "t.jsonl").read_bytes().splitlines()
    for line in tasks:
        contract.validate("warning-tasks", orjson.loads(line))
    assert s.lines == sum(1 for b in bad if b.replace(b"\n", b" ").strip()) + 3
    assert sum(s.records.values()) + sum(s.rejected.values()) == s.lines
    assert len(s.dead_letter_path.read_bytes().splitlines()) == sum(s.rejected.values())


def test_gzip_replay_files(tmp_path: Path):
    gz = tmp_path / "e.jsonl.gz"
    gz.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    s = replay(gz, tmp_path / "t.jsonl")
    assert s.tasks == replay(SAMPLE, tmp_path / "plain.jsonl").tasks


@pytest.mark.parametrize("make", ["missing", "directory", "bad-gzip"])
def test_an_unreadable_file_is_a_clear_error(tmp_path: Path, make: str):
    path = {"missing": tmp_path / "nope.jsonl", "directory": tmp_path,
            "bad-gzip": tmp_path / "x.jsonl.gz"}[make]
    if make == "bad-gzip":
        path.write_bytes(b"not gzip at all")
    with pytest.raises(ReplayError):
        replay(path, tmp_path / "t.jsonl")


def zt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def test_cli_exits_zero_with_rejects_and_prints_a_summary(tmp_path: Path):
    r = zt("replay", str(SAMPLE), "--out", str(tmp_path / "t.jsonl"), "--quiet", "--models", "none")
    assert r.returncode == 0, r.stderr
    assert "tasks: call 3," in r.stdout
    assert "rejected: 3 ->" in r.stdout and "t.dead-letter.jsonl" in r.stdout
    assert "calls" in r.stdout and "registry" in r.stdout


def test_cli_fails_clearly_when_the_file_cannot_be_read(tmp_path: Path):
    r = zt("replay", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "t.jsonl"))
    assert r.returncode == 2
    assert "does not exist" in r.stderr
    assert "Traceback" not in r.stderr


def test_jobs_split_persons_and_write_the_same_bytes(tmp_path: Path):
    """A closed-loop city (outcomes, SLA timers, escalations, case reports) replayed in one
    process, in a pipeline of two (reading and lines/accounts; persons) and with the persons
    split between two processes behind the front: the same tasks, byte for byte, and the same
    figures; the dead letters once."""
    from rules.engine import RuleSet, default_ruleset_path
    from streams.core import Core
    from streams.simulator.run import closed_loop

    city = tmp_path / "loop.jsonl"
    closed_loop(1500, 3, 5, city, Core, overrides={"fraud": {"episodes_per_100k_per_day": 400}})
    with city.open("ab") as f:
        f.write(b"not json\n" + lines_of([("calls", {"event_id": "broken"})]))
    rules = RuleSet.load(default_ruleset_path())
    one = replay(city, tmp_path / "one.jsonl", ruleset=rules)
    two = replay(city, tmp_path / "two.jsonl", ruleset=rules, jobs=2)
    three = replay(city, tmp_path / "three.jsonl", ruleset=rules, jobs=3)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert one.figures["warnings"] == two.figures["warnings"] and one.late == two.late
    assert sum(one.tasks.values()) > 20 and one.figures["sla_breaches"] > 0
    assert one.records["task-outcomes"] > 0
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "three.jsonl").read_bytes()
    assert one.tasks == three.tasks and one.records == three.records
    assert one.rejected == three.rejected and sum(one.rejected.values()) == 2
    assert len(three.dead_letter_path.read_bytes().splitlines()) == 2
    assert {k: v for k, v in one.figures.items() if v == v} == \
        {k: v for k, v in three.figures.items() if v == v}  # (NaN where nothing was judged)


class _Broken:
    version = "broken-1"

    def evaluate(self, point: str, features: dict, language: str | None = None) -> list:
        raise RuntimeError("rule engine exploded")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_person_stage_is_reported_not_hung(tmp_path: Path, jobs: int):
    """A bug in the person stage stops the replay with its reason, in a pipeline too (the
    person process says why; the front does not wait for it forever)."""
    with pytest.raises((RuntimeError, ReplayError), match="rule engine exploded"):
        replay(SAMPLE, tmp_path / "t.jsonl", ruleset=_Broken(), jobs=jobs)


def test_tasks_are_written_in_creation_order(tmp_path: Path):
    s = replay(SAMPLE, tmp_path / "t.jsonl", jobs=2)
    created = [orjson.loads(x)["created_time"] for x in (tmp_path / "t.jsonl").read_bytes().splitlines()]
    assert s.tasks["call"] == 3
    from streams.eventtime import to_ms

    assert [to_ms(c) for c in created] == sorted(to_ms(c) for c in created)


def test_lateness_bounds_the_disorder_replay_reorders(tmp_path: Path):
    """A transfer 150 ms behind one already decided is late at --lateness-ms 100, reordered at
    the default 200: the flag reaches the core, and it is the same setting the workers take."""
    from tests.timelines import transfer

    def ms(x: int) -> float:
        return x / 60_000

    events = tmp_path / "e.jsonl"
    events.write_bytes(lines_of([person(), transfer(ms(9_880), 100), transfer(ms(10_000), 100),
                                 transfer(ms(9_850), 100)]))
    late = {}
    for lateness in (100, 200):
        r = subprocess.run([sys.executable, "-m", "streams.cli", "replay", str(events), "--out",
                            str(tmp_path / f"t{lateness}.jsonl"), "--quiet", "--rules", "none",
                            "--models", "none", "--lateness-ms", str(lateness)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        late[lateness] = int(r.stdout.rsplit("late ", 1)[1].split()[0])
    # (counted per stage event: the payee's and payer's accounts, then the payer)
    assert late[100] > 0 and late[200] == 0


def test_jobs_default_to_a_pipeline_of_two_where_there_are_two_cpus(monkeypatch):
    """The front is the pipeline's bottleneck: a third process would add memory, not speed."""
    import os

    from streams.replay import default_jobs

    for cpus, jobs in (({0}, 1), ({0, 1}, 2), (set(range(16)), 2)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, c=cpus: c)
        assert default_jobs() == jobs
