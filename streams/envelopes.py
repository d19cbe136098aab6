"""Messages on the internal stage topics, read as hostile input.

The stage topics (``zt-entity-events``, ``zt-person-events``) carry the pipeline's own arrays of
envelopes and watermark markers, but anyone with access to the cluster can write there. So a
stage reads each envelope as it reads a feed: the record inside must pass the contract (and
goes on without fields the contract does not name), its times are parsed from the record again
rather than trusted, and the role, key and entity snapshot must be ones the next stage can take.
What fails is dead-lettered with the reason; nothing a writer puts there can stop a lane.

>>> env = {"topic": "calls", "key": "+8617012345678", "role": "line", "arrived": 1.5,
...        "value": contract.example("calls")}
>>> ev = stage_event(ENTITY_EVENTS, env); ev.avail_ms - ev.t_ms  # a call is known at its end
1260000
>>> stage_event(PERSON_EVENTS, env)
Traceback (most recent call last):
ValueError: zt-person-events takes no calls event in role 'line'
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from streams import contract
from streams.core import StageEvent
from streams.state import LineStats
from streams.topics import ENTITY_EVENTS, PERSON_EVENTS

# The (topic, role) pairs each stage takes, as the stage before it sends them.
ROLES: dict[str, dict[str, frozenset[str]]] = {
    ENTITY_EVENTS: {"calls": frozenset({"line"}), "transactions": frozenset({"payee", "payer"})},
    PERSON_EVENTS: {"calls": frozenset({"callee", "caller"}), "transactions": frozenset({"payer"}),
                    "case-reports": frozenset({"report"}), "task-outcomes": frozenset({"outcome"})},
}
# The line's state a call's callee is scored with (the entity stage's snapshot of it).
LINE_SNAPSHOT = frozenset(LineStats().get(0))
MAX_KEY = 256  # lines, accounts and persons are at most 128 characters in the contract
MAX_SNAPSHOT = 64  # entries of an entity snapshot (3 today)
# The largest message sent on a stage topic: the broker takes requests of up to 1 MB.
MAX_MESSAGE_BYTES = 900_000


def stage_message(raw: bytes) -> tuple[list[Any], dict[str, int] | None, str | None]:
    """(envelopes, marks, handover) of a message on a stage topic: an array of envelopes; or
    marks with the array they follow (``ev``) or alone (a marker, perhaps a worker's handover
    marker, ``LocalLink``); or one envelope (from a Faust agent). Raises ValueError for
    anything else (orjson's decode error is one).

    >>> stage_message(b'{"wm": {"calls/0": 5}, "ev": [{"key": "a"}]}')
    ([{'key': 'a'}], {'calls/0': 5}, None)
    >>> stage_message(b'{"wm": {"calls/0": 5}}'), stage_message(b'[{"key": "a"}]')
    (([], {'calls/0': 5}, None), ([{'key': 'a'}], None, None))
    >>> stage_message(b'{"wm": {}, "handover": "w1/3"}'), stage_message(b'{"key": "a"}')
    (([], {}, 'w1/3'), ([{'key': 'a'}], None, None))
    """
    body = orjson.loads(raw)
    if isinstance(body, list):
        return body, None, None
    if not isinstance(body, dict):
        raise ValueError("neither an array of envelopes nor an object")
    if "wm" not in body:
        return [body], None, None
    marks, envelopes, handover = body["wm"], body.get("ev", []), body.get("handover")
    if not isinstance(envelopes, list) or not isinstance(marks, dict) or not all(
            type(t) is int and isinstance(s, str) and len(s) <= MAX_KEY for s, t in marks.items()):
        raise ValueError("marks must map sources to integer times, and ev be an array")
    if handover is not None and not (isinstance(handover, str) and len(handover) <= MAX_KEY):
        raise ValueError("a handover must be a string")
    return envelopes, marks, handover


def stage_event(stage_topic: str, env: Any, min_contact_s: int = 60) -> StageEvent:
    """The event an envelope read on ``stage_topic`` carries, or ValueError saying why not.
    ``min_contact_s``: the core's shortest call that is a scoring point (it needs the line's
    snapshot)."""
    if not isinstance(env, dict):
        raise ValueError("an envelope must be an object")
    topic, key, role = env.get("topic"), env.get("key"), env.get("role")
    roles = ROLES[stage_topic].get(topic) if isinstance(topic, str) else None
    if roles is None or not isinstance(role, str) or role not in roles:
        shown = topic if isinstance(topic, str) else type(topic).__name__
        raise ValueError(f"{stage_topic} takes no {contract.bounded(shown, 64)} event in role "
                         f"{contract.bounded(repr(role), 64)}")
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
        raise ValueError(f"the key must be a string of 1 to {MAX_KEY} characters")
    checked = contract.check_value(topic, env.get("value"))
    if not checked.ok:
        raise ValueError(checked.reason)
    value = checked.value
    assert value is not None
    arrived = env.get("arrived", 0.0)
    if type(arrived) not in (int, float) or not math.isfinite(arrived):
        raise ValueError("arrived must be a number")
    snap = _snapshot(env.get("snap"))
    if role == "callee" and snap is None and value["kind"] == "voice" and value.get("answered") \
            and value["duration_s"] >= min_contact_s:
        raise ValueError("a scored call must carry its line's snapshot")
    if role == "callee" and snap is not None and not snap.keys() >= LINE_SNAPSHOT:
        raise ValueError(f"a line's snapshot needs {', '.join(sorted(LINE_SNAPSHOT))}")
    # The times come from the record, never from the envelope's "t" (which only saves parsing).
    return StageEvent.make(topic, key, role, value, float(arrived), snap)


def _snapshot(snap: Any) -> dict[str, float] | None:
    if snap is None:
        return None
    if not isinstance(snap, dict) or len(snap) > MAX_SNAPSHOT or not all(
            isinstance(k, str) and len(k) <= 64 and type(v) in (int, float) and math.isfinite(v)
            for k, v in snap.items()):
        raise ValueError(f"a snapshot maps at most {MAX_SNAPSHOT} names to numbers")
    return snap
