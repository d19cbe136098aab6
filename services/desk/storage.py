"""Storage of tasks, outcomes and the audit log: SQLite by default, PostgreSQL by URL.

Every query that returns tasks goes through ``scoped``, so a desk or a liaison cannot reach
another district's or bank's rows by any path; an id outside the scope is simply not found.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Select, create_engine, event, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.desk.models import AuditEntry, Outcome, Task
from services.desk.users import User
from streams.eventtime import fmt, parse

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BANK_ACTIONS = ("hold", "stop_payment")
DESK_ACTIONS = ("call", "visit")
DESK_RESULTS = ("dissuaded", "unreachable", "refused", "not_fraud", "visited")
BANK_RESULTS = ("held", "stopped", "failed")


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


class Invalid(ValueError):
    pass


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # Threads share the file (intake thread + request threads); wait for locks, don't fail.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (run at every start; a no-op when current)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def outcome_event_id(task_id: str, actor: str, result: str) -> str:
    """Stable: recording the same outcome again can never make a second record downstream."""
    h = hashlib.blake2b(f"{task_id}\x1f{actor}\x1f{result}".encode(), digest_size=10)
    return "O-" + h.hexdigest()


class TaskStore:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        migrate(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._session.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # -- intake -----------------------------------------------------------------------------
    def add_task(self, rec: dict[str, Any]) -> bool:
        """Store a contract-valid task; False when its task_id is already stored."""
        created, due = parse(rec["created_time"]), parse(rec["due_time"])
        task = Task(
            task_id=rec["task_id"], episode_id=rec["episode_id"], person_id=rec["person_id"],
            district=rec["district"], action=rec["action"], priority=rec["priority"],
            created_time=rec["created_time"], created_ms=created.ms,
            due_time=rec["due_time"], due_ms=due.ms, offset_min=created.offset_min,
            risk_score=float(rec["risk_score"]), reasons=rec["reasons"], evidence=rec["evidence"],
            contact_msisdn=rec.get("contact_msisdn"), bank=rec.get("bank"),
            txn_id=rec.get("txn_id"), account=rec.get("account"), amount_fen=rec.get("amount_fen"),
            model_version=rec["model_version"], ruleset_version=rec["ruleset_version"],
            received_ms=now_ms(), status="open",
        )
        try:
            with self.session() as s:
                if s.get(Task, task.task_id) is not None:
                    return False
                s.add(task)
        except IntegrityError:  # raced with another writer: it is stored, which is what we want
            return False
        return True

    # -- scoping ----------------------------------------------------------------------------
    @staticmethod
    def scoped(user: User, q: Select) -> Select:
        if user.kind == "desk":
            return q.where(Task.district == user.scope)
        if user.kind == "bank":
            return q.where(Task.bank == user.scope, Task.action.in_(BANK_ACTIONS))
        return q.where(false())  # ops reads counts only, never tasks

    def queue(self, user: User, actions: tuple[str, ...], include_done: bool = False,
              limit: int = 200) -> list[tuple[Task, Outcome | None]]:
        q = self.scoped(user, select(Task, Outcome).outerjoin(Outcome))
        q = q.where(Task.action.in_(actions))
        if not include_done:
            q = q.where(Task.status != "done")
        q = q.order_by(Task.priority, Task.due_ms, Task.task_id).limit(limit)
        with self.session() as s:
            return [(t, o) for t, o in s.execute(q).all()]

    def get(self, user: User, task_id: str) -> tuple[Task, Outcome | None]:
        q = self.scoped(user, select(Task, Outcome).outerjoin(Outcome)).where(
            Task.task_id == task_id)
        with self.session() as s:
            row = s.execute(q).first()
        if row is None:
            raise NotFound(f"no task {task_id} in your queue")
        return row[0], row[1]

    def episode(self, user: User, episode_id: str) -> list[tuple[Task, Outcome | None]]:
        q = self.scoped(user, select(Task, Outcome).outerjoin(Outcome)).where(
            Task.episode_id == episode_id).order_by(Task.created_ms, Task.task_id)
        with self.session() as s:
            return [(t, o) for t, o in s.execute(q).all()]

    # -- actions ----------------------------------------------------------------------------
    def claim(self, user: User, task_id: str) -> Task:
        with self.session() as s:
            task = s.execute(self.scoped(user, select(Task)).where(
                Task.task_id == task_id).with_for_update()).scalar_one_or_none()
            if task is None:
                raise NotFound(f"no task {task_id} in your queue")
            if task.action not in DESK_ACTIONS:
                raise Invalid(f"a {task.action} task is for the bank; a desk cannot claim it")
            if task.status == "done":
                raise Conflict(f"task {task_id} is already done")
            if task.claimed_by and task.claimed_by != user.name:
                raise Conflict(f"task {task_id} is claimed by {task.claimed_by}")
            if not task.claimed_by:
                task.status, task.claimed_by, task.claimed_ms = "claimed", user.name, now_ms()
            self._audit(s, user, "claim", task_id, None)
            return task

    def record_outcome(self, user: User, task_id: str, result: str, amount_fen: int | None,
                       note: str | None) -> Outcome:
        """Record what was done; the outcome is then in the outbox until published."""
        with self.session() as s:
            task = s.execute(self.scoped(user, select(Task)).where(
                Task.task_id == task_id).with_for_update()).scalar_one_or_none()
            if task is None:
                raise NotFound(f"no task {task_id} in your queue")
            if task.status == "done":
                raise Conflict(f"task {task_id} already has an outcome")
            self._check_result(user, task, result, amount_fen, note)
            at = now_ms()
            out = Outcome(
                event_id=outcome_event_id(task_id, user.role, result),
                task_id=task_id, event_time=fmt(at, task.offset_min), event_ms=at,
                actor=user.role, recorded_by=user.name, result=result,
                amount_fen=amount_fen if result in ("held", "stopped") else None,
                note=note or None, published_ms=None,
            )
            s.add(out)
            task.status = "done"
            detail = result if out.amount_fen is None else f"{result} {out.amount_fen} fen"
            self._audit(s, user, "outcome", task_id, detail)
            return out

    @staticmethod
    def _check_result(user: User, task: Task, result: str, amount: int | None,
                      note: str | None) -> None:
        if user.kind == "desk":
            if task.action not in DESK_ACTIONS:
                raise Invalid(f"a {task.action} task is for the bank, not a desk")
            if result not in DESK_RESULTS:
                raise Invalid(f"a desk records one of {', '.join(DESK_RESULTS)}")
            if task.claimed_by != user.name:
                raise Conflict(f"claim task {task.task_id} before recording its outcome")
            if result == "visited" and task.action != "visit":
                raise Invalid("'visited' is the outcome of a visit task")
        elif user.kind == "bank":
            if result not in BANK_RESULTS:
                raise Invalid(f"a bank records one of {', '.join(BANK_RESULTS)}")
            if result == "held" and task.action != "hold":
                raise Invalid("'held' answers a hold request")
            if result == "stopped" and task.action != "stop_payment":
                raise Invalid("'stopped' answers a stop-payment request")
            if result in ("held", "stopped") and amount is None:
                raise Invalid(f"'{result}' needs the amount, in fen")
            if result == "failed" and not (note and note.strip()):
                raise Invalid("'failed' needs the reason in the note")
        else:
            raise Invalid("this role records no outcomes")

    # -- outbox -----------------------------------------------------------------------------
    def unpublished(self, limit: int = 100) -> list[Outcome]:
        q = select(Outcome).where(Outcome.published_ms.is_(None)).order_by(
            Outcome.event_ms).limit(limit)
        with self.session() as s:
            return list(s.execute(q).scalars())

    def mark_published(self, event_id: str) -> None:
        with self.session() as s:
            out = s.get(Outcome, event_id)
            if out is not None and out.published_ms is None:
                out.published_ms = now_ms()

    # -- audit and overview -----------------------------------------------------------------
    @staticmethod
    def _audit(s: Session, user: User | None, what: str, task_id: str | None,
               detail: str | None, name: str | None = None) -> None:
        s.add(AuditEntry(at_ms=now_ms(), user=user.name if user else (name or "?")[:64],
                         role=user.role if user else "-", what=what, task_id=task_id,
                         detail=detail[:500] if detail else None))

    def audit(self, user: User | None, what: str, task_id: str | None = None,
              detail: str | None = None, name: str | None = None) -> None:
        with self.session() as s:
            self._audit(s, user, what, task_id, detail, name)

    def audit_log(self, limit: int = 1000) -> list[AuditEntry]:
        with self.session() as s:
            return list(s.execute(select(AuditEntry).order_by(AuditEntry.id.desc())
                                  .limit(limit)).scalars())

    def open_counts(self) -> dict[str, int]:
        q = select(Task.action, func.count()).where(Task.status != "done").group_by(Task.action)
        with self.session() as s:
            return {a: n for a, n in s.execute(q).all()}

    def overview(self) -> dict[str, Any]:
        at = now_ms()
        with self.session() as s:
            by_status = s.execute(select(Task.action, Task.status, func.count())
                                  .group_by(Task.action, Task.status)).all()
            overdue = s.execute(select(Task.action, func.count()).where(
                Task.status != "done", Task.due_ms < at).group_by(Task.action)).all()
            results = s.execute(select(Outcome.result, func.count(),
                                       func.coalesce(func.sum(Outcome.amount_fen), 0))
                                .group_by(Outcome.result)).all()
            unpublished = s.execute(select(func.count()).select_from(Outcome).where(
                Outcome.published_ms.is_(None))).scalar_one()
        return {"by_status": by_status, "overdue": dict(overdue), "results": results,
                "unpublished": unpublished}
