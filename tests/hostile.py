"""A catalogue of named hostile records, for every input topic and the internal stage topics.

Each entry is the raw bytes a feed (or anyone with access to a topic) could send, built from
the contract's example of the topic. ``INVALID`` entries must be dead-lettered with a reason;
``VALID`` ones are contract records, hostile only in fields the contract does not name, and must
be processed. Sizes stay under the broker's 1 MB request limit, so each can really be sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from streams import contract
from streams.topics import ENTITY_EVENTS, PERSON_EVENTS

MB = 1_000_000
# A string field and a number field of each input topic's example, to be made hostile (not the
# message key's field: a feed keys by it, and a 1 MB key with a 1 MB value is over the limit).
FIELDS: dict[str, tuple[str, str]] = {
    "calls": ("caller", "duration_s"),
    "transactions": ("payee_account", "amount_fen"),
    "registry": ("district", "birth_year"),
    "watchlist": ("source", "confidence"),
    "case-reports": ("fraud_type", "loss_fen"),
    "task-outcomes": ("actor", "amount_fen"),
}


def deep(n: int) -> bytes:
    return b"[" * n + b"1" + b"]" * n


def _with(topic: str, field: str, raw_value: bytes, base: dict[str, Any] | None = None) -> bytes:
    """The example of ``topic`` (or ``base``) with ``field`` set to the raw JSON ``raw_value``."""
    record = dict(base or contract.example(topic))
    record[field] = "\x00marker\x00"
    return orjson.dumps(record).replace(b'"\\u0000marker\\u0000"', raw_value)


def invalid(topic: str) -> dict[str, bytes]:
    """Records the contract rejects, by name."""
    text, number = FIELDS[topic]
    ex = orjson.dumps(contract.example(topic))
    bounded = {"number_past_u64": _with(topic, number, b"184467440737095516160000")} \
        if _has_maximum(topic, number) else {}
    return bounded | {
        "deep_1000_in_a_field": _with(topic, text, deep(1000)),
        "deep_past_the_parser": _with(topic, text, deep(2000)),
        "string_1mb_in_a_field": _with(topic, text, b'"' + b"9" * MB + b'"'),
        "array_100k_in_a_field": _with(topic, text, b"[" + b",".join([b'"x"'] * 100_000) + b"]"),
        "object_of_50k_keys_in_a_field": _with(
            topic, text, orjson.dumps({f"k{i}": i for i in range(50_000)})),
        "invalid_utf8": ex.replace(b'"event_id":"', b'"event_id":"\xff\xfe\xc3(', 1),
        "raw_nul_byte": ex.replace(b'"event_id":"', b'"event_id":"\x00', 1),
        "lone_surrogate": _with(topic, text, b'"\\ud800"'),
        "nul_in_a_patterned_or_typed_field": _with(topic, number, b'"1\\u00002"'),
        "number_1e400": _with(topic, number, b"1e400"),
        "negative_past_i64": _with(topic, number, b"-9223372036854775809"),
        "nan_literal": _with(topic, number, b"NaN"),
        "byte_order_mark": b"\xef\xbb\xbf" + ex,
        "empty": b"",
        "whitespace": b" \n\t ",
        "top_level_array": b"[" + ex + b"]",
        "null": b"null",
        "every_field_a_list": orjson.dumps({k: [v] for k, v in contract.example(topic).items()}),
        "year_zero": _with(topic, "event_time", b'"0000-01-01T00:00:00Z"'),
        "offset_past_a_day": _with(topic, "event_time", b'"2026-03-01T09:15:31+24:00"'),
        "truncated": ex[: len(ex) // 2],
    }


def valid(topic: str, base: dict[str, Any] | None = None) -> dict[str, bytes]:
    """Contract records hostile only in fields the contract does not name, by name. ``base``:
    the record to make them from (default: the topic's example)."""
    record = dict(base or contract.example(topic))

    def extra(raw_value: bytes, name: str = "x") -> bytes:
        return _with(topic, name, raw_value, record)

    number = FIELDS[topic][1]
    unbounded = {} if _has_maximum(topic, number) else {
        # JSON has one number type: past 2**64 it is read as a float, and a float with no
        # fraction is an integer to JSON Schema; a field with no maximum takes it.
        "number_past_u64_where_unbounded": _with(topic, number, b"184467440737095516160000",
                                                 record)}
    return unbounded | {
        "extra_deep_1000": extra(deep(1000)),
        "extra_string_1mb": extra(b'"' + b"\\u0000" * 10 + b"9" * (MB - 100) + b'"'),
        "extra_array_100k": extra(b"[" + b",".join([b"1e308"] * 100_000) + b"]"),
        "extra_huge_key": orjson.dumps({**record, "k" * 200_000: 1}),
        "extra_numbers_out_of_range": extra(b'[184467440737095516160000, -1e308, 1e-400]'),
        "extra_nul_and_controls": extra(b'"\\u0000\\u0001\\u001f\\u007f"'),
    }


def _has_maximum(topic: str, field: str) -> bool:
    return "maximum" in contract.schema(topic)["properties"][field]


# Messages on a stage topic that are not the pipeline's own (none forges a well-formed marker:
# a marker is trusted, see the README's known limits).
def stage_invalid(stage_topic: str) -> dict[str, bytes]:
    call = contract.example("calls")
    role = "line" if stage_topic == ENTITY_EVENTS else "callee"

    def env(**change: Any) -> dict[str, Any]:
        e: dict[str, Any] = {"topic": "calls", "key": call["caller"], "role": role,
                             "arrived": 1.0, "t": [0, 0, 0], "value": call}
        if role == "callee":
            e["snap"] = {"line_fanout_24h": 1.0, "line_answer_rate_24h": 1.0,
                         "line_short_share_24h": 0.0}
        e.update(change)
        return {k: v for k, v in e.items() if v is not _DROP}

    def one(**change: Any) -> bytes:
        return orjson.dumps([env(**change)])

    return {
        "not_json": b"{not json",
        "deep_1000": deep(1000),
        "deep_1000_envelope_value": b'[{"topic": "calls", "key": "k", "role": "line", "arrived": 1,'
                                    b' "value": ' + deep(1000) + b"}]",
        "string_1mb": b'"' + b"9" * MB + b'"',
        "invalid_utf8": b'[{"topic": "\xff\xfe"}]',
        "a_number": b"42",
        "marks_not_numbers": b'{"wm": {"calls/0": "soon"}}',
        "marks_of_a_huge_source": orjson.dumps({"wm": {"x" * 100_000: 1}}),
        "wrong_role": one(role="payee"),
        "unknown_topic": one(topic="warning-tasks"),
        "value_breaks_the_contract": one(value={**call, "duration_s": -5}),
        "value_missing": one(value=_DROP),
        "value_deep_extra_but_key_missing": one(key=_DROP, value={**call, "x": [[[[]]]]}),
        "key_a_number": one(key=12345),
        "key_huge": one(key="k" * 100_000),
        "arrived_a_string": one(arrived="now"),
        "snap_of_strings": one(snap={"line_fanout_24h": "many"}),
        "snap_huge": one(snap={f"s{i}": 1.0 for i in range(10_000)}),
        "event_time_impossible": one(value={**call, "event_time": "2026-02-30T00:00:00Z"}),
        "array_of_garbage": b"[1, null, \"x\", [], {}]",
    } | ({"scored_call_without_snapshot": one(snap=_DROP)} if role == "callee" else {})


_DROP = object()

STAGE_TOPICS = (ENTITY_EVENTS, PERSON_EVENTS)
Catalogue = Callable[[str], dict[str, bytes]]
