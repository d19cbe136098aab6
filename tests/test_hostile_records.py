"""Hostile input at the edges of the pipeline: the contract check of every input topic, the
decoding of the internal stage topics, the dead-letter records, and the core behind them.

A catalogue of named hostile records (``tests/hostile.py``) says what must happen to each
known kind; property-based fuzzing (hypothesis) looks for the kinds nobody named. Nothing may
raise: a record is either processed or rejected with a bounded reason.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import contract
from streams.core import Core, Decider, EntityStage, Router, StageEvent
from streams.deadletter import RAW_LIMIT, dead_letter
from streams.decisions import load_rules
from streams.envelopes import stage_event, stage_message
from streams.eventtime import fmt, parse
from streams.reference import Reference
from streams.topics import ENTITY_EVENTS, PERSON_EVENTS
from tests import hostile

INPUT = contract.INPUT_TOPICS
REASON_CLASSES = {"malformed", "bad_envelope", "missing_field", "bad_time", "invalid_value", "too_large"}
DEAD_LETTER_MAX = 6 * RAW_LIMIT  # the raw part at worst \xNN-escaped, plus the reason


def _dead_letter_is_bounded(topic: str, raw: bytes, reason: str) -> dict[str, Any]:
    record = dead_letter(topic, raw, reason)
    assert len(record) < DEAD_LETTER_MAX, len(record)
    value = contract.validate("dead-letter", orjson.loads(record))
    assert value["raw_bytes"] == len(raw)
    assert value["raw_sha256"] == hashlib.sha256(raw).hexdigest()
    assert value["raw_truncated"] == (len(raw) > RAW_LIMIT)
    assert value["reason"] == reason
    return value


# --- the catalogue ----------------------------------------------------------------------------

@pytest.mark.parametrize(("topic", "name"), [(t, n) for t in INPUT for n in hostile.invalid(t)])
def test_a_named_hostile_record_is_rejected_with_a_bounded_reason(topic: str, name: str):
    raw = hostile.invalid(topic)[name]
    checked = contract.check(topic, raw)
    assert not checked.ok, name
    assert checked.reason.startswith(f"{topic}: ")
    assert len(checked.reason) <= contract.MAX_REASON + 40
    assert contract.reason_class(checked.reason) in REASON_CLASSES
    _dead_letter_is_bounded(topic, raw, checked.reason)


def test_the_reasons_say_what_was_wrong():
    reasons = {n: contract.check("calls", raw).reason for n, raw in hostile.invalid("calls").items()}
    assert reasons["deep_1000_in_a_field"] == "calls: nested deeper than 32 levels"
    assert reasons["deep_past_the_parser"].startswith("calls: not JSON: depth limit exceeded")
    assert reasons["string_1mb_in_a_field"].endswith("characters)")  # quoted, then cut
    assert "not valid UTF-8" in reasons["invalid_utf8"]
    assert "infinity" in reasons["number_1e400"]
    assert contract.reason_class(reasons["deep_1000_in_a_field"]) == "too_large"


@pytest.mark.parametrize(("topic", "name"), [(t, n) for t in INPUT for n in hostile.valid(t)])
def test_a_record_hostile_only_in_extra_fields_is_processed_without_them(topic: str, name: str):
    checked = contract.check(topic, hostile.valid(topic)[name])
    assert checked.ok, checked.reason
    if name != "number_past_u64_where_unbounded":
        assert checked.value == contract.example(topic)  # nothing the contract names is lost
    core = Core()
    for t in ("registry", "watchlist"):
        core.feed(t, contract.example(t))
    core.feed(topic, checked.value)
    core.finish()


@pytest.mark.parametrize(("stage", "name"),
                         [(s, n) for s in hostile.STAGE_TOPICS for n in hostile.stage_invalid(s)])
def test_a_hostile_stage_message_is_rejected(stage: str, name: str):
    raw = hostile.stage_invalid(stage)[name]
    reasons = []
    try:
        envelopes, _, _ = stage_message(raw)
    except ValueError as e:
        reasons.append(str(e))
    else:
        assert envelopes, name
        for env in envelopes:
            with pytest.raises(ValueError) as e:
                stage_event(stage, env)
            reasons.append(str(e.value))
    for reason in reasons:
        _dead_letter_is_bounded(stage, raw, f"{stage}: {reason}")


def test_a_stage_event_takes_its_times_from_the_record_not_the_envelope():
    call = contract.example("calls")
    forged = {"topic": "calls", "key": call["caller"], "role": "line", "arrived": 1.0,
              "t": [2**62, -(2**62), 10**6], "value": {**call, "x": [[[]]]}}
    ev = stage_event(ENTITY_EVENTS, forged)
    want = StageEvent.make("calls", call["caller"], "line", call)
    assert (ev.t_ms, ev.avail_ms, ev.offset_min) == (want.t_ms, want.avail_ms, want.offset_min)
    assert ev.value == call  # and without the extra field


def test_the_contract_examples_are_unchanged_by_the_edge():
    for topic in contract.ALL_TOPICS:
        checked = contract.check(topic, orjson.dumps(contract.example(topic)))
        assert checked.ok and checked.value == contract.example(topic)


# --- fuzzing ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                               max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(topic=st.sampled_from(contract.ALL_TOPICS), raw=st.binary(max_size=400))
def test_fuzz_the_contract_check_with_any_bytes(topic: str, raw: bytes):
    checked = contract.check(topic, raw)
    assert checked.ok or contract.reason_class(checked.reason) in REASON_CLASSES


def _mutants(topic: str) -> st.SearchStrategy[dict[str, Any]]:
    """The topic's example with fields replaced, dropped or added: near-valid records."""
    example = contract.example(topic)
    return st.fixed_dictionaries({}).flatmap(lambda _: st.tuples(
        st.dictionaries(st.sampled_from(sorted(example)), json_values, max_size=3),
        st.sets(st.sampled_from(sorted(example)), max_size=2),
        st.dictionaries(st.text(max_size=8), json_values, max_size=2),
    )).map(lambda t: {**{k: v for k, v in {**example, **t[0]}.items() if k not in t[1]}, **t[2]})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_the_contract_check_with_near_valid_records(data: st.DataObject):
    topic = data.draw(st.sampled_from(contract.ALL_TOPICS))
    record = data.draw(_mutants(topic))
    checked = contract.check(topic, orjson.dumps(record))
    if checked.ok:
        assert set(checked.value) <= contract.fields(topic)
        contract.validate(topic, checked.value)
    else:
        assert checked.reason.startswith(f"{topic}: ")
        assert len(checked.reason) <= contract.MAX_REASON + 40


# Contract-valid records that touch each other: a few lines, accounts, persons and transfers.
LINES = [f"+86139000000{i:02d}" for i in range(4)] + ["+8617012345678"]
ACCOUNTS = [f"62220200000000{i:02d}" for i in range(4)]
PERSONS = ["P1", "P2", "P3"]
BASE = parse("2026-03-01T08:00:00+08:00").ms
text = st.text(min_size=1, max_size=20)


@st.composite
def event_time(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 19)) == 0:  # the contract's extremes, now and then
        # (inside the years by a day and a month: a task about it stays in them too)
        return draw(st.sampled_from(["1971-01-02T23:59:00+23:59", "2999-11-30T00:00:00-23:59",
                                     "2026-03-01T00:00:00-00:00", "2026-03-01T12:00:00.123456Z"]))
    offset = draw(st.sampled_from([480, 0, -330, 1439, -1439]))
    return fmt(BASE + draw(st.integers(0, 4 * 86_400_000)), offset)


def _records() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    common = {"event_id": st.text(min_size=1, max_size=12), "event_time": event_time()}
    named = set().union(*(contract.fields(t) for t in INPUT))
    some = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in named), json_values,
                           max_size=2)  # extra fields, anything
    by_topic = {
        "calls": st.fixed_dictionaries({
            **common, "carrier": text, "kind": st.sampled_from(["voice"] * 4 + ["sms"]),
            "caller": st.sampled_from(LINES + [LINES[-1]] * 3), "callee": st.sampled_from(LINES),
            "answered": st.sampled_from([True] * 4 + [False]),
            "duration_s": st.integers(60, 3600) | st.integers(0, 86_400) | st.just(60.0),
            "caller_origin": st.sampled_from(["domestic", "international", "virtual", "voip"])},
            optional={"sms_has_url": st.booleans()}),
        "transactions": st.fixed_dictionaries({
            **common, "txn_id": st.sampled_from(["T1", "T2", "T3"]),
            "status": st.sampled_from(["initiated", "completed", "failed", "held", "reversed"]),
            "bank": text, "payer_account": st.sampled_from(ACCOUNTS),
            "payee_account": st.sampled_from(ACCOUNTS), "payee_bank": text,
            "amount_fen": st.integers(1, 10**13), "currency": st.just("CNY"),
            "channel": st.sampled_from(["mobile_app", "online_banking", "counter", "atm",
                                        "third_party"])}),
        "registry": st.fixed_dictionaries({
            **common, "op": st.sampled_from(["upsert", "upsert", "delete"]),
            "person_id": st.sampled_from(PERSONS), "birth_year": st.integers(1900, 2030),
            "district": text, "msisdns": st.lists(st.sampled_from(LINES), max_size=3),
            "accounts": st.lists(st.fixed_dictionaries({
                "bank": text, "account": st.sampled_from(ACCOUNTS)}), max_size=2)}),
        "watchlist": st.fixed_dictionaries({
            **common, "op": st.sampled_from(["add", "add", "remove"]),
            "kind": st.sampled_from(["msisdn", "account", "domain"]),
            "value": st.sampled_from(LINES + ACCOUNTS),
            "category": st.sampled_from(["fraud_number", "mule_account", "fraud_domain"]),
            "source": text, "confidence": st.floats(0, 1)}),
        "case-reports": st.fixed_dictionaries({
            **common, "report_id": text, "person_id": st.sampled_from(PERSONS),
            "fraud_type": text, "txn_ids": st.lists(st.sampled_from(["T1", "T2", "T3"])),
            "loss_fen": st.integers(0, 2**64 - 1), "fraud_msisdns": st.lists(st.sampled_from(LINES)),
            "fraud_accounts": st.lists(st.sampled_from(ACCOUNTS))}),
    }
    return st.one_of(*[
        st.tuples(st.just(t), st.tuples(s, some).map(lambda r: {**r[0], **r[1]}))
        for t, s in by_topic.items()])


def _numbered(records: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The prelude, then ``records`` with their event ids made unique but every fifth (the
    fuzzer favours short ids, and a repeated id is a duplicate, which the stages drop)."""
    return [*_prelude(), *[(t, v if i % 5 == 4 else {**v, "event_id": f"{v['event_id'][:100]}#{i}"})
                           for i, (t, v) in enumerate(records)]]


def _prelude() -> list[tuple[str, dict[str, Any]]]:
    """Persons with the pool's lines and accounts, a listed line and a listed account: so the
    fuzzed calls and transfers meet registered people and raise tasks."""
    t = fmt(BASE - 86_400_000, 480)
    out: list[tuple[str, dict[str, Any]]] = [("registry", {
        "event_id": f"r{i}", "event_time": t, "op": "upsert", "person_id": p,
        "birth_year": 1950, "district": "d", "msisdns": [LINES[i]],
        "accounts": [{"bank": "B", "account": ACCOUNTS[i]}]}) for i, p in enumerate(PERSONS)]
    return [*out, *[("watchlist", {
        "event_id": f"w{v}", "event_time": t, "op": "add", "kind": k, "value": v,
        "category": c, "source": "s", "confidence": 0.9})
        for k, v, c in (("msisdn", LINES[-1], "fraud_number"), ("account", ACCOUNTS[-1], "mule_account"))]]


RESULTS = ["dissuaded", "unreachable", "refused", "not_fraud", "visited", "held", "stopped", "failed"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(data=st.data(), records=st.lists(_records(), max_size=30))
def test_fuzz_the_stages_with_contract_valid_records(data: st.DataObject, records: list):
    """Whatever contract-valid records come, in whatever order, the three stages decide without
    an error, every task they make is a contract record, and every event they hand on passes
    the next stage's input check (a worker's own envelopes are never rejected)."""
    core = Core(ruleset=RULES)
    tasks = []
    for topic, value in _numbered(records):
        checked = contract.check(topic, orjson.dumps(value))
        assert checked.ok, checked.reason
        tasks += core.feed(topic, checked.value)
    for task in list(tasks):  # outcomes of the tasks so far, as desks and banks report them
        result = data.draw(st.sampled_from(RESULTS))
        outcome = {"event_id": f"o-{task.task_id}", "event_time": data.draw(event_time()),
                   "task_id": task.task_id, "actor": "desk", "result": result,
                   "amount_fen": data.draw(st.integers(0, 2**63))}
        checked = contract.check("task-outcomes", orjson.dumps(outcome))
        assert checked.ok, checked.reason
        tasks += core.feed("task-outcomes", checked.value)
    tasks += core.finish()
    for task in tasks:
        contract.validate("warning-tasks", task.to_record())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_records(), min_size=1, max_size=20), data=st.data())
def test_fuzz_each_stage_input_with_its_own_events_and_their_mutants(records: list,
                                                                     data: st.DataObject):
    """The events a stage hands on, encoded as they travel and read back, are taken as they
    were; mutated, they are taken or rejected with a ValueError, and what is taken the next
    stage processes without an error."""
    reference = Reference()
    router, entities = Router(reference), EntityStage(reference)
    decider = Decider(reference, ruleset=RULES)
    for topic, value in _numbered(records):
        value = contract.check(topic, orjson.dumps(value)).value
        entity_events, person_events = router.route(topic, value)
        for stage, events in ((ENTITY_EVENTS, entity_events), (PERSON_EVENTS, person_events)):
            for ev in events:
                taken = _through(stage, ev, data)
                if taken is None:
                    continue
                if stage == ENTITY_EVENTS:
                    for person_ev in entities.process(taken):
                        again = _through(PERSON_EVENTS, person_ev, data)
                        if again is not None:
                            decider.decide_batch([again])
                else:
                    decider.decide_batch([taken])


def _through(stage: str, ev: StageEvent, data: st.DataObject) -> StageEvent | None:
    env = orjson.loads(orjson.dumps(ev.envelope()))
    back = stage_event(stage, env)
    assert (back.topic, back.key, back.role, back.t_ms, back.avail_ms, back.snap) == \
        (ev.topic, ev.key, ev.role, ev.t_ms, ev.avail_ms, ev.snap)
    mutated = data.draw(st.dictionaries(st.sampled_from([*sorted(env), "snap"]), json_values,
                                        max_size=2))
    try:
        return stage_event(stage, {**env, **mutated})
    except ValueError:
        return None


RULES = load_rules("default")
