"""Dead-letter records bounded in size, whatever was rejected.

A rejected record is kept whole up to ``RAW_LIMIT`` bytes; past that it is cut, and its full
length and SHA-256 say what it was (a 1 MB input wrapped whole would make a 2 MB record, over
the broker's 1 MB request limit: the producer refuses it and, before, the lane stopped).

>>> import orjson
>>> rec = orjson.loads(dead_letter("calls", b"x" * 20_000, "calls: not JSON"))
>>> len(rec["raw"]), rec["raw_bytes"], rec["raw_truncated"], rec["raw_sha256"][:12]
(4096, 20000, True, '42e8bc96b8ee')
>>> orjson.loads(dead_letter("calls", b'{"a": 1}', "calls: x"))["raw"]
'{"a": 1}'
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from streams.contract import MAX_REASON, bounded
from streams.tasks import dumps

# Bytes of the rejected record kept as it was: enough to read any real record of the contract
# (~300 bytes) and the start of anything else.
RAW_LIMIT = 4096
# A reason is one line; the contract's own are cut at MAX_REASON already (this lets them be).
REASON_LIMIT = 2 * MAX_REASON


def dead_letter(topic: str, raw: bytes, reason: str) -> bytes:
    """A contract ``dead-letter`` record of at most ~20 KB (``raw`` cut to ``RAW_LIMIT`` bytes,
    each undecodable byte written as ``\\xNN``); received_time is the wall clock (it is about
    receipt, not the record's event time)."""
    kept = raw[:RAW_LIMIT]
    return dumps({
        "reason": bounded(reason, REASON_LIMIT) or "rejected",
        "topic": bounded(topic, 256),
        "raw": kept.decode("utf-8", "backslashreplace"),
        "raw_bytes": len(raw),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
        "raw_truncated": len(raw) > RAW_LIMIT,
        "received_time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    })
