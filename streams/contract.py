"""The event contract: topics, JSON Schemas, and validation that says what is wrong.

The schemas in ``streams/contract/schemas`` are a verbatim copy of the shared contract
(``tests/test_contract.py`` fails when they drift). Validation has two speeds: a compiled
validator (jsonschema-rs, in Rust: ~1.3 us a record here, where fastjsonschema took 5.6)
decides valid/invalid on the hot path, and only for an invalid record does jsonschema (~70 us)
work out which field is wrong and why, in the words the dead-letter readers know.

``check`` is the edge every input record crosses, and it never raises: hostile input (nesting
deeper than any record of the contract, huge strings, arrays or keys, invalid UTF-8, numbers no
double holds) becomes a bounded reason, and a valid record goes on without the fields the
contract does not name (they may be anything, and nothing downstream reads them).

>>> check("calls", b'{"event_id": "x"}').reason
"calls: 'event_time' is a required property"
>>> check("calls", b'{"event_id": ' + b'[' * 40 + b']' * 40 + b'}').reason
'calls: nested deeper than 32 levels'
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from functools import cache, lru_cache
from importlib import resources
from typing import Any, NamedTuple

import jsonschema
import jsonschema_rs
import orjson

from streams.eventtime import EventTime, parse

INPUT_TOPICS: tuple[str, ...] = (
    "registry",
    "watchlist",
    "calls",
    "transactions",
    "case-reports",
    "task-outcomes",
)
OUTPUT_TOPICS: tuple[str, ...] = ("warning-tasks", "dead-letter")
ALL_TOPICS: tuple[str, ...] = INPUT_TOPICS + OUTPUT_TOPICS

# The Kafka message key of each topic, as the contract fixes it.
TOPIC_KEY: dict[str, str | None] = {
    "calls": "callee",
    "transactions": "payer_account",
    "registry": "person_id",
    "watchlist": "value",
    "case-reports": "person_id",
    "task-outcomes": "task_id",
    "warning-tasks": "task_id",
    "dead-letter": None,
}

# Fields holding times; each must parse as RFC 3339 with an offset (the schema's pattern alone
# lets "2026-13-45T99:99:99Z" through).
TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "warning-tasks": ("created_time", "due_time"),
    "dead-letter": ("received_time",),
}


MIN_YEAR, MAX_YEAR = 1971, 2999

# The contract's records nest three levels at most (a registry entry's accounts); a value nested
# deeper than this is rejected before anything walks it (the stdlib's json and jsonschema's
# messages recurse, and a 1,000-deep value exhausts Python's stack).
MAX_DEPTH = 32
# A reason is one line a person reads: a message quoting a 1 MB value is cut to this.
MAX_REASON = 500
# At most this many schema errors are looked at to explain a record (a hostile array of
# 100,000 bad items would take seconds to explain in full).
MAX_ERRORS = 50


class ContractError(ValueError):
    """A record that breaks the contract; ``reason`` is one line a person can act on."""

    def __init__(self, topic: str, reason: str):
        super().__init__(reason)
        self.topic = topic
        self.reason = reason


class Checked(NamedTuple):
    """Outcome of checking one raw record: either ``value`` or ``reason`` is set. (A tuple:
    built for every record a worker reads, where a frozen dataclass cost ~0.5 us.)"""

    topic: str
    value: dict[str, Any] | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def schema_dir() -> Any:
    return resources.files("streams") / "contract" / "schemas"


@cache
def schema(topic: str) -> dict[str, Any]:
    if topic not in TOPIC_KEY:
        raise KeyError(f"unknown topic {topic!r}; the contract has {', '.join(ALL_TOPICS)}")
    return json.loads((schema_dir() / f"{topic}.schema.json").read_text("utf-8"))


@cache
def _fast(topic: str) -> Any:
    # Draft 2020-12 as the schemas declare it; "format" stays an annotation (times are checked
    # below by parsing, which also catches "2026-13-45T99:99:99Z").
    return jsonschema_rs.validator_for(schema(topic)).is_valid


@cache
def _explainer(topic: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(topic))


@cache
def fields(topic: str) -> frozenset[str]:
    """The top-level fields the contract names for ``topic``."""
    return frozenset(schema(topic)["properties"])


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests more than ``limit`` arrays and objects (walked level by level,
    without recursion).

    >>> too_deep({"a": [1, {"b": []}]}, 4), too_deep({"a": [1, {"b": []}]}, 3)
    (False, True)
    """
    level: list[Any] = [value]
    for _ in range(limit):
        nxt: list[Any] = []
        for v in level:
            if isinstance(v, dict):
                nxt.extend(v.values())
            elif isinstance(v, list):
                nxt.extend(v)
        if not nxt:
            return False
        level = nxt
    return any(isinstance(v, dict | list) for v in level)


def bounded(reason: str, limit: int = MAX_REASON) -> str:
    """``reason`` cut to ``limit`` characters, saying how long it was.

    >>> bounded("calls: x: " + "9" * 600, 20)
    'calls: x: 9999999999… (610 characters)'
    """
    return reason if len(reason) <= limit else f"{reason[:limit]}… ({len(reason):,} characters)"


def explain(topic: str, value: Any) -> str:
    """The first contract violation of ``value``, as ``topic: field: why`` (bounded)."""
    if too_deep(value):
        return f"{topic}: nested deeper than {MAX_DEPTH} levels"
    errors = sorted(itertools.islice(_explainer(topic).iter_errors(value), MAX_ERRORS),
                    key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path)
        return bounded(f"{topic}: {where}: {err.message}" if where else f"{topic}: {err.message}")
    return bounded(_time_problem(topic, value) or f"{topic}: invalid record")


def _time_problem(topic: str, value: dict[str, Any]) -> str | None:
    inside = topic not in TIME_FIELDS  # an input record's times: a margin inside the years
    for field in TIME_FIELDS.get(topic, ("event_time",)):
        text = value.get(field)
        if text is None:
            continue
        problem = _time_text_problem(text, inside)
        if problem:
            return f"{topic}: {field}: {text!r} {problem}"
    return None


# The local times (milliseconds, as if UTC) from the first day of MIN_YEAR to the last of MAX_YEAR.
_LOCAL_FROM_MS = (datetime(MIN_YEAR, 1, 1) - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
_LOCAL_UNTIL_MS = (datetime(MAX_YEAR + 1, 1, 1) - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
_DAY_MS = 86_400_000


def _time_text_problem(text: str, inside: bool = False) -> str | None:
    if isinstance(text, str) and (
            text[-1:] == "Z" or (text[-6:-5] in ("+", "-") and text[-3:-2] == ":")):
        # An offset of whole minutes (what the schemas' pattern allows): the event time parser,
        # whose result the core reads next (so a record's time is parsed once), decides, and
        # the local year is that of its milliseconds shifted by the offset.
        try:
            t = parse(text)
        except ValueError:
            return _any_time_text_problem(text)
        return None if _in_years(t, inside) else f"is outside the years {MIN_YEAR}-{MAX_YEAR}"
    return _any_time_text_problem(text)


@lru_cache(maxsize=1 << 14)
def _any_time_text_problem(text: str) -> str | None:
    # Cached: a burst of records shares its times (a transfer's states, a busy second).
    try:
        year = datetime.fromisoformat(text).year
    except (ValueError, TypeError):
        return "is not a valid RFC 3339 time"
    if not MIN_YEAR <= year <= MAX_YEAR:
        # Valid RFC 3339, but no carrier or bank writes such a time: a clock or feed fault.
        return f"is outside the years {MIN_YEAR}-{MAX_YEAR}"
    return None


def validate(topic: str, value: Any) -> dict[str, Any]:
    """Return ``value`` when it satisfies the contract for ``topic``; raise ContractError if not."""
    try:
        valid = _fast(topic)(value)
    except ValueError:  # a Python value JSON cannot hold (a set, bytes): not a contract record
        valid = False
    if not valid:
        raise ContractError(topic, explain(topic, value))
    # The schema has matched each time field against its RFC 3339 pattern (every time field of
    # the contract has it: tests/test_contract.py): what is left to know is whether the time
    # exists (no "2026-13-45") and lies in the years, which parsing it tells.
    inside = topic not in TIME_FIELDS
    for field in TIME_FIELDS.get(topic, _EVENT_TIME):
        text = value.get(field)
        if text is not None and not _time_ok(text, inside):
            raise ContractError(topic, _time_problem(topic, value) or f"{topic}: {field}: invalid")
    return value


_EVENT_TIME = ("event_time",)


def _time_ok(text: str, inside: bool = False) -> bool:
    """A time the pattern admits: whether it exists and lies in MIN_YEAR-MAX_YEAR, locally."""
    try:
        return _in_years(parse(text), inside)
    except ValueError:
        return False


def _in_years(t: EventTime, inside: bool = False) -> bool:
    """Whether a time's local year (its milliseconds shifted by its offset) is a contract year;
    ``inside`` (an input record's time): also its instant a day after their start and a month
    before their end, so a task about it, written in another offset (its episode's) and up to
    days later (escalations, legal clocks), is in the years too (the fuzzer found a call at
    1971-01-01T00:00+23:59 whose task would have been in 1970)."""
    ms = t.ms
    if not _LOCAL_FROM_MS <= ms + t.offset_min * 60_000 < _LOCAL_UNTIL_MS:
        return False
    return not inside or _LOCAL_FROM_MS + _DAY_MS <= ms < _LOCAL_UNTIL_MS - 31 * _DAY_MS


def check(topic: str, raw: bytes | str) -> Checked:
    """Parse and validate one raw message; never raises, whatever the bytes."""
    if topic not in TOPIC_KEY:
        return Checked(topic, None, bounded(f"{topic}: not a contract topic"))
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:  # invalid UTF-8, deeper than 1,024, 1e400 ... too
        return Checked(topic, None, f"{topic}: not JSON: {e}")
    return check_value(topic, value)


def check_value(topic: str, value: Any) -> Checked:
    """Validate one parsed record; never raises. A valid record comes back with only the
    fields the contract names (a copy, when it had others)."""
    if not isinstance(value, dict):
        return Checked(topic, None, f"{topic}: a record must be a JSON object")
    try:
        validate(topic, value)
    except ContractError as e:
        return Checked(topic, None, e.reason)
    except Exception as e:  # (RecursionError, MemoryError's kin): the record, not the worker
        return Checked(topic, None, bounded(f"{topic}: could not be checked: {e!r}"))
    known = fields(topic)
    if not known.issuperset(value):
        value = {k: v for k, v in value.items() if k in known}
    return Checked(topic, value, None)


def reason_class(reason: str) -> str:
    """A low-cardinality class of a rejection reason, for metric labels."""
    if "not JSON" in reason or "must be a JSON object" in reason:
        return "malformed"
    if "nested deeper than" in reason or "too large" in reason or "could not be checked" in reason:
        return "too_large"
    if any(m in reason for m in ("not a contract topic", "not an input topic",
                                 "must be an object with topic", "value must be a JSON object")):
        return "bad_envelope"
    if "is a required property" in reason:
        return "missing_field"
    if "is not a valid RFC 3339 time" in reason or "is outside the years" in reason:
        return "bad_time"
    return "invalid_value"


def example(topic: str) -> dict[str, Any]:
    """The contract's example record for ``topic``."""
    path = resources.files("streams") / "contract" / "examples" / f"{topic}.json"
    return json.loads(path.read_text("utf-8"))
