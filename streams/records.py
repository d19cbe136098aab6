"""Typed records of the contract, one per topic, for type checkers and readers.

They are ``TypedDict``s: a validated record *is* its dict, so the hot path pays nothing for
types (a class instance per event would cost ~1-2 us, a tenth of the replay budget). The JSON
Schemas stay the normative definition; these mirror them field for field.
"""

from typing import Literal, NotRequired, TypedDict


class Call(TypedDict):
    event_id: str
    event_time: str
    carrier: str
    kind: Literal["voice", "sms"]
    caller: str
    callee: str
    answered: NotRequired[bool]  # required for voice
    duration_s: int
    caller_origin: Literal["domestic", "international", "virtual", "voip"]
    sms_has_url: NotRequired[bool]


class Transaction(TypedDict):
    event_id: str
    event_time: str
    txn_id: str
    status: Literal["initiated", "completed", "failed", "held", "reversed"]
    bank: str
    payer_account: str
    payee_account: str
    payee_bank: str
    amount_fen: int
    currency: Literal["CNY"]
    channel: Literal["mobile_app", "online_banking", "counter", "atm", "third_party"]


class AccountRef(TypedDict):
    bank: str
    account: str


class RegistryEntry(TypedDict):
    event_id: str
    event_time: str
    op: Literal["upsert", "delete"]
    person_id: str
    birth_year: NotRequired[int]  # required for upsert, as are the three below
    district: NotRequired[str]
    msisdns: NotRequired[list[str]]
    accounts: NotRequired[list[AccountRef]]


class WatchlistEntry(TypedDict):
    event_id: str
    event_time: str
    op: Literal["add", "remove"]
    kind: Literal["msisdn", "account", "domain"]
    value: str
    category: Literal["fraud_number", "mule_account", "fraud_domain"]
    source: str
    confidence: float


class CaseReport(TypedDict):
    event_id: str
    event_time: str
    report_id: str
    person_id: str
    fraud_type: str
    txn_ids: list[str]
    loss_fen: int
    fraud_msisdns: list[str]
    fraud_accounts: list[str]


Result = Literal["dissuaded", "unreachable", "refused", "not_fraud", "visited", "held", "stopped",
                 "failed"]


class TaskOutcome(TypedDict):
    event_id: str
    event_time: str
    task_id: str
    actor: str
    result: Result
    amount_fen: NotRequired[int]  # required for held and stopped
    note: NotRequired[str]


class ReasonRecord(TypedDict):
    code: str
    detail: str


class WarningTaskRecord(TypedDict):
    task_id: str
    created_time: str
    episode_id: str
    person_id: str
    district: str
    action: Literal["call", "visit", "hold", "stop_payment"]
    priority: int
    due_time: str
    risk_score: float
    reasons: list[ReasonRecord]
    contact_msisdn: NotRequired[str]  # required for call
    bank: NotRequired[str]  # required for hold and stop_payment, as are the three below
    txn_id: NotRequired[str]
    account: NotRequired[str]
    amount_fen: NotRequired[int]
    evidence: list[str]
    model_version: str
    ruleset_version: str


class DeadLetter(TypedDict):
    reason: str
    topic: str
    raw: str
    received_time: str


RECORD_TYPES: dict[str, type] = {
    "calls": Call,
    "transactions": Transaction,
    "registry": RegistryEntry,
    "watchlist": WatchlistEntry,
    "case-reports": CaseReport,
    "task-outcomes": TaskOutcome,
    "warning-tasks": WarningTaskRecord,
    "dead-letter": DeadLetter,
}
