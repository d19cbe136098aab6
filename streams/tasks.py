"""Warning tasks: the pipeline's output, one contract record per decision.

A task's id is a digest of what it decides and the evidence it rests on, so the same decision on
the same records always has the same id, and a record delivered twice cannot make a second task.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.eventtime import fmt

# Default time limits of the contract, in seconds.
TIME_LIMIT_S: dict[str, int] = {"call": 5 * 60, "visit": 60 * 60, "hold": 2 * 60, "stop_payment": 10 * 60}


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    detail: str


@dataclass(slots=True)
class WarningTask:
    action: str
    person_id: str
    district: str
    episode_id: str
    created_ms: int
    offset_min: int
    priority: int
    risk_score: float
    reasons: list[Reason]
    evidence: list[str]
    model_version: str
    ruleset_version: str
    due_s: int = 0  # 0 = the contract's default time limit for the action
    contact_msisdn: str | None = None
    bank: str | None = None
    txn_id: str | None = None
    account: str | None = None
    amount_fen: int | None = None
    basis: str = ""  # what else distinguishes this decision (an escalation's reason)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def task_id(self) -> str:
        return task_id(self.action, self.person_id, self.evidence, self.txn_id, self.basis)

    def to_record(self) -> dict[str, Any]:
        limit = self.due_s or TIME_LIMIT_S[self.action]
        rec: dict[str, Any] = {
            "task_id": self.task_id,
            "created_time": fmt(self.created_ms, self.offset_min),
            "episode_id": self.episode_id,
            "person_id": self.person_id,
            "district": self.district,
            "action": self.action,
            "priority": self.priority,
            "due_time": fmt(self.created_ms + limit * 1000, self.offset_min),
            "risk_score": round(min(max(self.risk_score, 0.0), 1.0), 4),
            "reasons": [{"code": r.code, "detail": r.detail} for r in self.reasons],
            "evidence": list(self.evidence),
            "model_version": self.model_version,
            "ruleset_version": self.ruleset_version,
        }
        for k in ("contact_msisdn", "bank", "txn_id", "account", "amount_fen"):
            v = getattr(self, k)
            if v is not None:
                rec[k] = v
        rec.update(self.extra)
        return rec


def task_id(action: str, person_id: str, evidence: list[str], txn_id: str | None = None,
            basis: str = "") -> str:
    """Stable id from the decision and its evidence (order of evidence does not matter)."""
    h = hashlib.blake2b(digest_size=10)
    for part in (action, person_id, txn_id or "", basis, *sorted(evidence)):
        h.update(part.encode())
        h.update(b"\x1f")
    return "T-" + h.hexdigest()


def dumps(record: dict[str, Any]) -> bytes:
    """The one serialisation of output records: sorted keys, so the same task is the same bytes."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
