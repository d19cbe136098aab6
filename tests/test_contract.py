"""The contract: the project's copy of the schemas, validation messages, typed records."""

from __future__ import annotations

import filecmp
import json

import pytest

from streams import contract
from streams.records import RECORD_TYPES
from tests.conftest import SHARED


@pytest.mark.skipif(not (SHARED / "contract" / "schemas").is_dir(),
                    reason="../shared/contract is not beside this checkout")
@pytest.mark.parametrize("topic", contract.ALL_TOPICS)
def test_schemas_are_a_verbatim_copy_of_the_shared_contract(topic: str):
    ours = contract.schema_dir() / f"{topic}.schema.json"
    theirs = SHARED / "contract" / "schemas" / f"{topic}.schema.json"
    assert filecmp.cmp(str(ours), theirs, shallow=False), f"{topic} schema differs from ../shared"


@pytest.mark.skipif(not (SHARED / "contract" / "schemas").is_dir(), reason="no ../shared")
def test_no_shared_schema_is_missing_here():
    shared = {p.name for p in (SHARED / "contract" / "schemas").glob("*.json")}
    assert shared == {f"{t}.schema.json" for t in contract.ALL_TOPICS}


@pytest.mark.parametrize("topic", contract.ALL_TOPICS)
def test_every_contract_example_is_valid(topic: str):
    assert contract.validate(topic, contract.example(topic))


@pytest.mark.parametrize("topic", contract.ALL_TOPICS)
def test_typed_records_mirror_the_schema(topic: str):
    typed = RECORD_TYPES[topic]
    schema = contract.schema(topic)
    assert set(typed.__annotations__) == set(schema["properties"])
    assert typed.__required_keys__ == set(schema["required"])


@pytest.mark.parametrize(("topic", "change", "reason"), [
    ("calls", {"duration_s": -1}, "calls: duration_s: -1 is less than the minimum of 0"),
    ("calls", {"caller": "13912345678"}, "calls: caller: '13912345678' does not match"),
    ("calls", {"kind": "fax"}, "calls: kind: 'fax' is not one of ['voice', 'sms']"),
    ("calls", {"answered": None}, "calls: answered: None is not of type 'boolean'"),
    ("transactions", {"amount_fen": 12.5}, "transactions: amount_fen: 12.5 is not of type 'integer'"),
    ("transactions", {"amount_fen": 0}, "transactions: amount_fen: 0 is less than the minimum of 1"),
    ("transactions", {"currency": "USD"}, "transactions: currency: 'CNY' was expected"),
    ("registry", {"birth_year": 1899}, "registry: birth_year: 1899 is less than the minimum of 1900"),
    ("watchlist", {"confidence": 1.5}, "watchlist: confidence: 1.5 is greater than the maximum of 1"),
    ("calls", {"event_time": "2026-03-01 09:15:30"}, "calls: event_time: '2026-03-01 09:15:30' does not"),
    ("calls", {"event_time": "2026-13-45T09:15:30+08:00"},
     "calls: event_time: '2026-13-45T09:15:30+08:00' is not a valid RFC 3339 time"),
    ("calls", {"event_time": "9999-12-31T23:59:59Z"}, "calls: event_time: '9999-12-31T23:59:59Z' is outside"),
])
def test_validation_says_which_field_is_wrong_and_why(topic: str, change: dict, reason: str):
    bad = {**contract.example(topic), **change}
    with pytest.raises(contract.ContractError) as err:
        contract.validate(topic, bad)
    assert err.value.reason.startswith(reason), err.value.reason


RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


def _date_time_fields(node: object, path: str = "") -> dict[str, str | None]:
    """Every property of a schema declared ``format: date-time``, with its pattern."""
    found: dict[str, str | None] = {}
    if isinstance(node, dict):
        if node.get("format") == "date-time":
            found[path] = node.get("pattern")
        for key, sub in node.items():
            found.update(_date_time_fields(sub, f"{path}/{key}"))
    elif isinstance(node, list):
        for sub in node:
            found.update(_date_time_fields(sub, path))
    return found


@pytest.mark.parametrize("topic", contract.ALL_TOPICS)
def test_every_time_field_is_checked_and_carries_the_rfc3339_pattern(topic: str):
    # validate() leaves the shape of a time to this pattern and only parses what it admits.
    fields = _date_time_fields(contract.schema(topic))
    assert fields, topic
    assert set(fields.values()) == {RFC3339_PATTERN}
    checked = contract.TIME_FIELDS.get(topic, ("event_time",))
    assert {path.rsplit("/", 1)[1] for path in fields} == set(checked)


def test_a_bad_second_time_field_is_named():
    task = {**contract.example("warning-tasks"), "due_time": "2026-02-30T09:00:00+08:00"}
    with pytest.raises(contract.ContractError) as err:
        contract.validate("warning-tasks", task)
    assert err.value.reason == ("warning-tasks: due_time: '2026-02-30T09:00:00+08:00' "
                                "is not a valid RFC 3339 time")


@pytest.mark.parametrize(("topic", "missing"), [
    ("calls", "duration_s"), ("transactions", "payee_account"), ("case-reports", "txn_ids")])
def test_a_missing_field_is_named(topic: str, missing: str):
    bad = dict(contract.example(topic))
    del bad[missing]
    assert contract.check(topic, json.dumps(bad)).reason == f"{topic}: '{missing}' is a required property"


def test_conditional_requirements_of_the_contract():
    call = dict(contract.example("calls"))
    del call["answered"]
    assert contract.check("calls", json.dumps(call)).reason == "calls: 'answered' is a required property"
    sms = {**call, "kind": "sms", "duration_s": 0}
    assert contract.check("calls", json.dumps(sms)).ok  # answered is only required for voice
    outcome = {**contract.example("task-outcomes"), "result": "stopped"}
    del outcome["amount_fen"]
    reason = contract.check("task-outcomes", json.dumps(outcome)).reason
    assert "'amount_fen' is a required property" in reason
    task = {**contract.example("warning-tasks"), "action": "call"}
    assert "'contact_msisdn' is a required property" in contract.explain("warning-tasks", task)


def test_unknown_extra_fields_pass():
    value = {**contract.example("calls"), "imsi": "460001234567890", "x": {"nested": [1]}}
    assert contract.check("calls", json.dumps(value)).ok


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"42", b"\xff\xfe", b'"text"', b"null"])
def test_garbage_is_a_reason_not_an_exception(raw: bytes):
    checked = contract.check("calls", raw)
    assert not checked.ok
    assert checked.reason.startswith("calls: ")
    assert contract.reason_class(checked.reason) == "malformed"


def test_reason_classes_are_few_and_stable():
    assert contract.reason_class("calls: 'x' is a required property") == "missing_field"
    assert contract.reason_class("calls: a: 1 is not of type 'string'") == "invalid_value"
    assert contract.reason_class("calls: event_time: 'x' is not a valid RFC 3339 time") == "bad_time"
    assert contract.reason_class("replay line 3: topic x is not an input topic of the contract") == \
        "bad_envelope"


def test_a_time_on_the_edge_of_the_years_is_refused_so_no_task_about_it_leaves_them():
    from streams.contract import check_value

    record = dict(contract.example("calls"))
    for edge in ("1971-01-01T00:00:00+23:59", "2999-12-31T23:59:59.999-23:59",
                 "2999-12-15T00:00:00Z"):
        got = check_value("calls", {**record, "event_time": edge})
        assert not got.ok and "outside the years 1971-2999" in (got.reason or "")
    assert check_value("calls", {**record, "event_time": "1971-01-02T23:59:00+23:59"}).ok
