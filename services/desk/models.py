"""The desk's tables: tasks as received, who holds them, call attempts, the outcome people
recorded, the registry's persons (for visits), who is on shift, and the audit log.

Times are kept twice: the contract's RFC 3339 text (shown to people, in the source's offset) and
epoch milliseconds (for ordering and countdowns). Task times (created, due, retry, outcome) are
on the desk clock (``clock``); claims and the audit log on the wall clock, being people's time.
Money is integer fen.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Task(Base):
    __tablename__ = "desk_task"

    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    episode_id: Mapped[str] = mapped_column(String(128), index=True)
    person_id: Mapped[str] = mapped_column(String(128))
    district: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    created_time: Mapped[str] = mapped_column(String(40))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    due_time: Mapped[str] = mapped_column(String(40))
    due_ms: Mapped[int] = mapped_column(BigInteger)
    offset_min: Mapped[int] = mapped_column(Integer)
    risk_score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    evidence: Mapped[list[str]] = mapped_column(JSON)
    contact_msisdn: Mapped[str | None] = mapped_column(String(20))
    bank: Mapped[str | None] = mapped_column(String(128))
    txn_id: Mapped[str | None] = mapped_column(String(128))
    account: Mapped[str | None] = mapped_column(String(32))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    model_version: Mapped[str] = mapped_column(String(128))
    ruleset_version: Mapped[str] = mapped_column(String(128))
    received_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, claimed, done
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_ms: Mapped[int | None] = mapped_column(BigInteger)
    # A claim lapses when not worked (an attempt or an outcome) within the action's time limit.
    claim_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    released_by: Mapped[str | None] = mapped_column(String(64))  # not given it back at once
    retry_ms: Mapped[int | None] = mapped_column(BigInteger)  # next call attempt, desk clock
    updated_ms: Mapped[int] = mapped_column(BigInteger, default=0, index=True)  # live pages

    __table_args__ = (
        Index("ix_desk_task_queue", "district", "status", "priority", "due_ms"),
        Index("ix_desk_task_bank", "bank", "status", "priority", "due_ms"),
    )


class Outcome(Base):
    """One per task: what was done, and whether it has reached ``task-outcomes`` yet (outbox)."""

    __tablename__ = "desk_outcome"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("desk_task.task_id"), unique=True)
    event_time: Mapped[str] = mapped_column(String(40))
    event_ms: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(128))
    recorded_by: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    published_ms: Mapped[int | None] = mapped_column(BigInteger, index=True)


class Attempt(Base):
    """A call that did not settle the task (no answer, busy...), and when to try again."""

    __tablename__ = "desk_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("desk_task.task_id"), index=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)  # desk clock
    user: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))
    retry_ms: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)


class Person(Base):
    """The registry's real-name record of a person: what a visit needs (numbers, birth year,
    district). The newest record by event time wins; a delete keeps a tombstone."""

    __tablename__ = "desk_person"

    person_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_ms: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    district: Mapped[str | None] = mapped_column(String(128))
    msisdns: Mapped[list[str]] = mapped_column(JSON, default=list)


class Shift(Base):
    """Who is on shift: auto-assignment gives work to them only."""

    __tablename__ = "desk_shift"

    user: Mapped[str] = mapped_column(String(64), primary_key=True)
    on_shift: Mapped[bool] = mapped_column(Boolean, default=False)
    since_ms: Mapped[int] = mapped_column(BigInteger)


class AuditEntry(Base):
    """Who read personal data or acted, on which task, when. Append-only by convention."""

    __tablename__ = "desk_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    user: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(140))
    what: Mapped[str] = mapped_column(String(32))  # words.AUDIT: read, claim, assign, outcome...
    task_id: Mapped[str | None] = mapped_column(String(128), index=True)
    detail: Mapped[str | None] = mapped_column(String(500))
