"""Typed request and response bodies of the JSON API (they make its OpenAPI description)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_FEN = 10**14  # a trillion CNY: beyond any transfer, within every database's BIGINT


class Problem(BaseModel):
    """An error, as an HTTP problem (RFC 9457)."""

    title: str
    status: int
    detail: str


class Me(BaseModel):
    name: str
    role: str
    on_shift: bool


class Reason(BaseModel):
    code: str
    label: str = Field(description="the code in plain words")
    detail: str


class OutcomeOut(BaseModel):
    event_id: str
    event_time: str
    actor: str
    result: str
    amount_fen: int | None = None
    note: str | None = None
    published: bool


class TimelineEntry(BaseModel):
    time: str
    ms: int = Field(description="the time in epoch milliseconds")
    task_id: str
    what: str = Field(description="task created or outcome recorded, in words")


class AttemptOut(BaseModel):
    time: str
    ms: int
    user: str
    result: Literal["no_answer", "busy", "switched_off", "call_back"]
    retry_time: str | None = None
    retry_ms: int | None = None
    note: str | None = None


class PersonOut(BaseModel):
    """The registry's record, for a visit: numbers whole only for the task's holder."""

    birth_year: int | None = None
    district: str | None = None
    msisdns: list[str]


class DeskTaskSummary(BaseModel):
    task_id: str
    action: Literal["call", "visit", "hold", "stop_payment"]
    priority: int
    status: Literal["open", "claimed", "done"]
    created_time: str
    due_time: str
    due_ms: int = Field(description="due time in epoch milliseconds, for countdowns")
    risk_score: float
    contact_msisdn: str | None = Field(None, description="masked unless you claimed the task")
    headline: str = Field(description="the first reason, in words")
    claimed_by: str | None = Field(None, description="who holds the task now")
    claim_until_ms: int | None = Field(None, description="the claim lapses then unless worked")
    retry_ms: int | None = Field(None, description="next call attempt (desk clock)")
    result: str | None = None
    done_ms: int | None = Field(None, description="when the outcome was recorded (desk clock)")
    episode_id: str


class DeskTaskDetail(DeskTaskSummary):
    person_id: str
    reasons: list[Reason]
    phone_masked: bool
    amount_fen: int | None = None
    person: PersonOut | None = Field(None, description="the registry's record (visit tasks)")
    attempts: list[AttemptOut]
    timeline: list[TimelineEntry]
    outcome: OutcomeOut | None = None
    model_version: str
    ruleset_version: str


class BankRequestSummary(BaseModel):
    task_id: str
    action: Literal["hold", "stop_payment"]
    priority: int
    status: Literal["open", "claimed", "done"]
    created_time: str
    due_time: str
    due_ms: int
    txn_id: str
    account: str = Field(description="masked in lists, whole in the request's detail")
    amount_fen: int = Field(description="requested; a bank may report less, never more")
    claimed_by: str | None = None
    result: str | None = None
    done_ms: int | None = None


class BankRequestDetail(BankRequestSummary):
    outcome: OutcomeOut | None = None


class DeskOutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: Literal["dissuaded", "unreachable", "refused", "not_fraud", "visited"]
    note: str | None = Field(None, max_length=2000)


class BankOutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: Literal["held", "stopped", "failed"]
    amount_fen: int | None = Field(None, ge=0, le=MAX_FEN,
                                   description="required for held and stopped, in fen")
    note: str | None = Field(None, max_length=2000, description="required for failed: why")


class AttemptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: Literal["no_answer", "busy", "switched_off", "call_back"]
    retry_in_min: int = Field(ge=1, le=24 * 60, description="try again in this many minutes")
    note: str | None = Field(None, max_length=2000)


class HandOverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, max_length=64, description="a colleague on shift")


class ShiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: bool


class ShiftOut(BaseModel):
    on_shift: bool
    colleagues_on_shift: list[str]


class Gap(BaseModel):
    role: Literal["desk", "bank"]
    scope: str = Field(description="the district or the bank")
    why: Literal["no_user", "no_one_on_shift"]
    tasks: int
    oldest_created_ms: int


class WorkCell(BaseModel):
    role: Literal["desk", "bank"]
    scope: str
    action: str
    open: int
    unheld: int
    overdue: int
    oldest_age_ms: int


class OpsTask(BaseModel):
    """A task as ops sees it: no person, number, account or reason."""

    task_id: str
    episode_id: str
    action: str
    district: str
    bank: str | None = None
    priority: int
    status: str
    created_time: str
    created_ms: int
    due_time: str
    due_ms: int
    claimed_by: str | None = None
    result: str | None = None
    done_ms: int | None = None


class StatusCount(BaseModel):
    action: str
    status: str
    count: int


class ResultCount(BaseModel):
    result: str
    count: int
    amount_fen: int


class Overview(BaseModel):
    tasks: list[StatusCount]
    overdue: dict[str, int]
    outcomes: list[ResultCount]
    unpublished_outcomes: int
    intake_stored: int
    intake_duplicates: int
    intake_rejected: int
    uncovered: list[Gap]
    work: list[WorkCell]
