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
    task_id: str
    what: str = Field(description="task created or outcome recorded, in words")


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
    claimed_by: str | None = None
    result: str | None = None


class DeskTaskDetail(DeskTaskSummary):
    episode_id: str
    person_id: str
    reasons: list[Reason]
    phone_masked: bool
    amount_fen: int | None = None
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
    amount_fen: int
    result: str | None = None


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
