"""Storage of tasks, who holds them, attempts, outcomes, persons, shifts and the audit log:
SQLite by default, PostgreSQL by URL.

Every query that returns tasks to a desk or a liaison goes through ``scoped``, so they cannot
reach another district's or bank's rows, nor a desk the bank's hold and stop-payment tasks, by
any path; an id outside the scope is simply not found. Ops reads tasks through ``ops_tasks``,
which returns no personal data.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Select, create_engine, event, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.desk.clock import DeskClock, wall_ms
from services.desk.models import Attempt, AuditEntry, Outcome, Person, Shift, Task
from services.desk.problems import Conflict, Invalid, NotFound
from services.desk.users import User
from streams.eventtime import fmt, parse

__all__ = ["BANK_ACTIONS", "DESK_ACTIONS", "Conflict", "Invalid", "NotFound", "TaskStore"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BANK_ACTIONS = ("hold", "stop_payment")
DESK_ACTIONS = ("call", "visit")
DESK_RESULTS = ("dissuaded", "unreachable", "refused", "not_fraud", "visited")
BANK_RESULTS = ("held", "stopped", "failed")
ATTEMPT_RESULTS = ("no_answer", "busy", "switched_off", "call_back")
VIEWS = ("open", "mine", "done", "all")
SORTS = {"urgent": (Task.priority, Task.due_ms), "due": (Task.due_ms,),
         "newest": (Task.created_ms.desc(),), "oldest": (Task.created_ms,)}
MIN_CLAIM_MS = 60_000
SYSTEM = "system"  # the dispatcher's name in the audit log


def now_ms() -> int:
    return wall_ms()


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


def limit_ms(t: Task) -> int:
    """The action's time limit, as the task states it (due minus created)."""
    return max(t.due_ms - t.created_ms, MIN_CLAIM_MS)


def scope_of(t: Task) -> tuple[str, str]:
    """Who must see a task: ("desk", district) or ("bank", bank)."""
    return ("bank", t.bank or "") if t.action in BANK_ACTIONS else ("desk", t.district)


@dataclass(frozen=True)
class Filters:
    view: str = "open"  # open (not done), mine (held by me, not done), done, all
    action: str | None = None
    status: str | None = None
    max_age_ms: int | None = None  # created no longer ago than this (desk clock)
    search: str | None = None  # a task id or an episode id, whole or its start
    sort: str = "urgent"
    limit: int = 200


class TaskStore:
    def __init__(self, url: str, clock: DeskClock | None = None):
        self.engine = make_engine(url)
        migrate(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self.clock = clock or DeskClock("wall")
        with self.session() as s:
            lead = s.execute(select(func.max(Task.created_ms - Task.received_ms))).scalar()
            newest = s.execute(select(Task.created_ms, Task.received_ms).where(
                Task.created_ms - Task.received_ms == lead).limit(1)).first() if lead else None
        if newest is not None:
            self.clock.saw(newest[0], newest[1])

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
        at = self.clock.wall()
        task = Task(
            task_id=rec["task_id"], episode_id=rec["episode_id"], person_id=rec["person_id"],
            district=rec["district"], action=rec["action"], priority=rec["priority"],
            created_time=rec["created_time"], created_ms=created.ms,
            due_time=rec["due_time"], due_ms=due.ms, offset_min=created.offset_min,
            risk_score=float(rec["risk_score"]), reasons=rec["reasons"], evidence=rec["evidence"],
            contact_msisdn=rec.get("contact_msisdn"), bank=rec.get("bank"),
            txn_id=rec.get("txn_id"), account=rec.get("account"), amount_fen=rec.get("amount_fen"),
            model_version=rec["model_version"], ruleset_version=rec["ruleset_version"],
            received_ms=at, status="open", updated_ms=at,
        )
        try:
            with self.session() as s:
                if s.get(Task, task.task_id) is not None:
                    return False
                s.add(task)
        except IntegrityError:  # raced with another writer: it is stored, which is what we want
            return False
        self.clock.saw(created.ms, at)
        return True

    def upsert_persons(self, recs: list[dict[str, Any]]) -> int:
        """Keep each registry record that is newer (event time) than the one held, in one
        transaction (a registry's backlog is a city's worth of records); how many were kept."""
        newest: dict[str, tuple[int, dict[str, Any]]] = {}
        for rec in recs:
            ms = parse(rec["event_time"]).ms
            if rec["person_id"] not in newest or newest[rec["person_id"]][0] <= ms:
                newest[rec["person_id"]] = (ms, rec)
        if not newest:
            return 0
        kept = 0
        with self.session() as s:
            held = {p.person_id: p for p in s.execute(select(Person).where(
                Person.person_id.in_(list(newest))).with_for_update()).scalars()}
            for pid, (ms, rec) in newest.items():
                p = held.get(pid)
                if p is not None and p.event_ms > ms:
                    continue
                if p is None:
                    p = Person(person_id=pid)
                    s.add(p)
                p.event_ms, p.deleted = ms, rec["op"] == "delete"
                p.birth_year = None if p.deleted else rec.get("birth_year")
                p.district = None if p.deleted else rec.get("district")
                p.msisdns = [] if p.deleted else list(rec.get("msisdns") or [])
                kept += 1
        return kept

    def upsert_person(self, rec: dict[str, Any]) -> bool:
        return self.upsert_persons([rec]) == 1

    def person(self, person_id: str) -> Person | None:
        with self.session() as s:
            p = s.get(Person, person_id)
        return None if p is None or p.deleted else p

    # -- scoping ----------------------------------------------------------------------------
    @staticmethod
    def scoped(user: User, q: Select) -> Select:
        if user.works_desk:
            return q.where(Task.district == user.scope, Task.action.in_(DESK_ACTIONS))
        if user.kind == "bank":
            return q.where(Task.bank == user.scope, Task.action.in_(BANK_ACTIONS))
        return q.where(false())  # ops reads tasks through ops_tasks only

    def queue(self, user: User, f: Filters | None = None) -> list[tuple[Task, Outcome | None]]:
        f = f or Filters()
        q = self._filtered(self.scoped(user, select(Task, Outcome).outerjoin(Outcome)), f, user)
        with self.session() as s:
            return [(t, o) for t, o in s.execute(q).all()]

    def _filtered(self, q: Select, f: Filters, user: User | None) -> Select:
        if f.view == "open":
            q = q.where(Task.status != "done")
        elif f.view == "done":
            q = q.where(Task.status == "done")
        elif f.view == "mine" and user is not None:
            q = q.where(Task.claimed_by == user.name, Task.status != "done")
        if f.action:
            q = q.where(Task.action == f.action)
        if f.status:
            q = q.where(Task.status == f.status)
        if f.max_age_ms is not None:
            q = q.where(Task.created_ms >= self.clock.now_ms() - f.max_age_ms)
        if f.search:
            term = f.search.strip()
            q = q.where(or_(Task.task_id == term, Task.episode_id == term,
                            Task.task_id.startswith(term, autoescape=True),
                            Task.episode_id.startswith(term, autoescape=True)))
        order = SORTS.get(f.sort, SORTS["urgent"])
        if f.view == "done" and f.sort == "urgent":
            order = (Outcome.event_ms.desc(),)
        return q.order_by(*order, Task.task_id).limit(f.limit)

    def get(self, user: User, task_id: str) -> tuple[Task, Outcome | None]:
        q = self.scoped(user, select(Task, Outcome).outerjoin(Outcome)).where(
            Task.task_id == task_id)
        with self.session() as s:
            row = s.execute(q).first()
        if row is None:
            raise NotFound("no task %(task)s in your queue", task=task_id)
        return row[0], row[1]

    def episode(self, user: User, episode_id: str) -> list[tuple[Task, Outcome | None]]:
        """The episode's tasks in the desk's district, the banks' included (the timeline shows
        what was done, never an account); a liaison sees no timeline."""
        if not user.works_desk:
            return []
        q = select(Task, Outcome).outerjoin(Outcome).where(
            Task.episode_id == episode_id, Task.district == user.scope).order_by(
            Task.created_ms, Task.task_id)
        with self.session() as s:
            return [(t, o) for t, o in s.execute(q).all()]

    def attempts(self, task_id: str) -> list[Attempt]:
        with self.session() as s:
            return list(s.execute(select(Attempt).where(Attempt.task_id == task_id)
                                  .order_by(Attempt.at_ms, Attempt.id)).scalars())

    # -- holding a task -----------------------------------------------------------------------
    def _locked(self, s: Session, user: User, task_id: str) -> Task:
        task = s.execute(self.scoped(user, select(Task)).where(
            Task.task_id == task_id).with_for_update()).scalar_one_or_none()
        if task is None:
            raise NotFound("no task %(task)s in your queue", task=task_id)
        if task.status == "done":
            raise Conflict("task %(task)s is already done", task=task_id)
        return task

    @staticmethod
    def _held_by_other(task: Task, user: User, wall: int) -> bool:
        return bool(task.claimed_by and task.claimed_by != user.name
                    and (task.claim_until_ms or 0) > wall)

    @staticmethod
    def _hold(task: Task, name: str, wall: int) -> None:
        task.status, task.claimed_by, task.claimed_ms = "claimed", name, wall
        task.claim_until_ms, task.released_by, task.updated_ms = wall + limit_ms(task), None, wall

    def claim(self, user: User, task_id: str) -> Task:
        wall = self.clock.wall()
        with self.session() as s:
            task = self._locked(s, user, task_id)
            if self._held_by_other(task, user, wall):
                raise Conflict("task %(task)s is in the hands of %(who)s", task=task_id,
                               who=task.claimed_by)
            if task.claimed_by != user.name:
                self._hold(task, user.name, wall)
                self._audit(s, user, "claim", task_id, None)
            return task

    def release(self, user: User, task_id: str, why: str | None = None) -> Task:
        """Give the task back; the dispatcher gives it to someone else on shift."""
        wall = self.clock.wall()
        with self.session() as s:
            task = self._locked(s, user, task_id)
            if task.claimed_by != user.name and user.kind != "supervisor":
                raise Conflict("task %(task)s is not in your hands", task=task_id)
            holder = task.claimed_by
            task.status, task.claimed_by, task.claimed_ms = "open", None, None
            task.claim_until_ms, task.released_by, task.updated_ms = None, holder, wall
            self._audit(s, user, "release", task_id, why or (f"from {holder}" if holder else None))
            return task

    def hand_over(self, user: User, task_id: str, to: User, on_shift: set[str]) -> Task:
        """The holder hands a task to a colleague on shift; a supervisor reassigns any task of
        the district."""
        wall = self.clock.wall()
        with self.session() as s:
            task = self._locked(s, user, task_id)
            kind, scope = scope_of(task)
            if (to.bank if kind == "bank" else (to.scope if to.kind == "desk" else None)) != scope:
                raise Invalid("%(who)s does not work this district's or bank's tasks", who=to.name)
            if to.name not in on_shift:
                raise Conflict("%(who)s is not on shift", who=to.name)
            boss = user.kind == "supervisor"
            if task.claimed_by != user.name and not boss:
                raise Conflict("task %(task)s is not in your hands", task=task_id)
            holder = task.claimed_by
            self._hold(task, to.name, wall)
            what = "hand_over" if holder == user.name else "reassign"
            self._audit(s, user, what, task_id, f"{holder or '-'} -> {to.name}")
            return task

    def attempt(self, user: User, task_id: str, result: str, retry_in_min: int,
                note: str | None) -> Attempt:
        """A call that did not settle the task; the holder tries again before it escalates."""
        if result not in ATTEMPT_RESULTS:
            raise Invalid("an attempt is one of %(choices)s", choices=", ".join(ATTEMPT_RESULTS))
        wall, now = self.clock.wall(), self.clock.now_ms()
        with self.session() as s:
            task = self._locked(s, user, task_id)
            if task.claimed_by != user.name:
                raise Conflict("claim task %(task)s before recording a call on it", task=task_id)
            retry = now + retry_in_min * 60_000
            if now >= task.due_ms:
                raise Invalid("the task is past its due time: record its outcome")
            if retry >= task.due_ms:
                raise Invalid("only %(left)s min are left before the task escalates: try again "
                              "sooner, or record the outcome 'Unreachable'",
                              left=max(0, (task.due_ms - now) // 60_000))
            att = Attempt(task_id=task_id, at_ms=now, user=user.name, result=result,
                          retry_ms=retry, note=note or None)
            s.add(att)
            task.retry_ms, task.updated_ms = retry, wall
            task.claim_until_ms = wall + (retry - now) + limit_ms(task)  # worked: the claim lasts
            self._audit(s, user, "attempt", task_id, f"{result}, retry in {retry_in_min} min")
            return att

    def record_outcome(self, user: User, task_id: str, result: str, amount_fen: int | None,
                       note: str | None) -> Outcome:
        """Record what was done; the outcome is then in the outbox until published."""
        wall = self.clock.wall()
        with self.session() as s:
            task = self._locked(s, user, task_id)
            self._check_result(user, task, result, amount_fen, note, wall)
            at = self.clock.outcome_ms(task.created_ms)
            out = Outcome(
                event_id=outcome_event_id(task_id, actor_of(user), result),
                task_id=task_id, event_time=fmt(at, task.offset_min), event_ms=at,
                actor=actor_of(user), recorded_by=user.name, result=result,
                amount_fen=amount_fen if result in ("held", "stopped") else None,
                note=note or None, published_ms=None,
            )
            s.add(out)
            task.status, task.claim_until_ms, task.retry_ms, task.updated_ms = (
                "done", None, None, wall)
            if not task.claimed_by:
                task.claimed_by, task.claimed_ms = user.name, wall
            detail = result if out.amount_fen is None else f"{result} {out.amount_fen} fen"
            self._audit(s, user, "outcome", task_id, detail)
            return out

    def _check_result(self, user: User, task: Task, result: str, amount: int | None,
                      note: str | None, wall: int) -> None:
        if user.works_desk:
            if result not in DESK_RESULTS:
                raise Invalid("a desk records one of %(choices)s", choices=", ".join(DESK_RESULTS))
            if task.claimed_by != user.name:
                raise Conflict("claim task %(task)s before recording its outcome",
                               task=task.task_id)
            if result == "visited" and task.action != "visit":
                raise Invalid("'visited' is the outcome of a visit task")
        elif user.kind == "bank":
            if result not in BANK_RESULTS:
                raise Invalid("a bank records one of %(choices)s", choices=", ".join(BANK_RESULTS))
            if self._held_by_other(task, user, wall):
                raise Conflict("task %(task)s is in the hands of %(who)s", task=task.task_id,
                               who=task.claimed_by)
            if result == "held" and task.action != "hold":
                raise Invalid("'held' answers a hold request")
            if result == "stopped" and task.action != "stop_payment":
                raise Invalid("'stopped' answers a stop-payment request")
            if result in ("held", "stopped"):
                if amount is None:
                    raise Invalid("'%(result)s' needs the amount", result=result)
                if amount <= 0:
                    raise Invalid("nothing held or stopped is 'failed', with the reason")
                if task.amount_fen is not None and amount > task.amount_fen:
                    raise Invalid("at most %(most)s CNY was requested: a bank may report less, "
                                  "never more", most=f"{task.amount_fen / 100:,.2f}")
            if result == "failed" and not (note and note.strip()):
                raise Invalid("'failed' needs the reason in the note")
        else:
            raise Invalid("this role records no outcomes")

    # -- the dispatcher -------------------------------------------------------------------------
    def dispatch(self, users: dict[str, User], auto_assign: bool = True) -> tuple[int, int]:
        """Lapse claims not worked in time, then give open tasks to the least loaded person on
        shift of their district or bank (not to who just gave it back). (lapsed, assigned)."""
        wall = self.clock.wall()
        lapsed = assigned = 0
        with self.session() as s:
            for task in s.execute(select(Task).where(
                    Task.status == "claimed", Task.claim_until_ms < wall)
                    .with_for_update()).scalars():
                holder = users.get(task.claimed_by or "")
                task.released_by, task.claimed_by, task.claimed_ms = task.claimed_by, None, None
                task.status, task.claim_until_ms, task.updated_ms = "open", None, wall
                self._audit(s, holder, "claim_expired", task.task_id,
                            "not worked within the action's time limit", name=task.released_by)
                lapsed += 1
        if not auto_assign:
            return lapsed, 0
        on = self.on_shift()
        workers: dict[tuple[str, str], list[str]] = defaultdict(list)
        for u in users.values():
            if u.name in on and u.kind in ("desk", "bank"):
                workers[(u.kind, u.scope)].append(u.name)
        if not workers:
            return lapsed, 0
        with self.session() as s:
            load = Counter(dict(s.execute(select(Task.claimed_by, func.count()).where(
                Task.status == "claimed").group_by(Task.claimed_by)).all()))
            for task in s.execute(select(Task).where(Task.status == "open").order_by(
                    Task.priority, Task.due_ms, Task.task_id).with_for_update()).scalars():
                names = [n for n in workers.get(scope_of(task), ()) if n != task.released_by]
                if not names:
                    continue
                name = min(names, key=lambda n: (load[n], n))
                load[name] += 1
                self._hold(task, name, wall)
                self._audit(s, None, "assign", task.task_id,
                            f"to {name} ({load[name]} in hand)", name=SYSTEM)
                assigned += 1
        return lapsed, assigned

    # -- shifts -------------------------------------------------------------------------------
    def set_shift(self, user: User, on: bool) -> None:
        wall = self.clock.wall()
        with self.session() as s:
            row = s.get(Shift, user.name, with_for_update=True)
            if row is not None and row.on_shift == on:
                return
            if row is None:
                row = Shift(user=user.name)
                s.add(row)
            row.on_shift, row.since_ms = on, wall
            self._audit(s, user, "shift_start" if on else "shift_end", None, None)
            if not on:  # what they held goes back to the pool, for whoever is still on shift
                for task in s.execute(select(Task).where(
                        Task.claimed_by == user.name, Task.status == "claimed")).scalars():
                    task.status, task.claimed_by, task.claimed_ms = "open", None, None
                    task.claim_until_ms, task.released_by, task.updated_ms = None, user.name, wall
                    self._audit(s, user, "release", task.task_id, "shift ended")

    def on_shift(self) -> set[str]:
        with self.session() as s:
            return set(s.execute(select(Shift.user).where(Shift.on_shift)).scalars())

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
                out.published_ms = self.clock.wall()
                task = s.get(Task, out.task_id)
                if task is not None:
                    task.updated_ms = out.published_ms

    # -- audit ----------------------------------------------------------------------------------
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

    def audit_log(self, limit: int = 1000, task_id: str | None = None) -> list[AuditEntry]:
        q = select(AuditEntry)
        if task_id is not None:
            q = q.where(AuditEntry.task_id == task_id)
        with self.session() as s:
            return list(s.execute(q.order_by(AuditEntry.id.desc()).limit(limit)).scalars())

    # -- live pages -------------------------------------------------------------------------------
    def changes(self, user: User, since_ms: int, limit: int = 50) -> tuple[int, list[Task]]:
        """The user's tasks changed after ``since_ms`` (wall), and the newest change's time."""
        q = self.scoped(user, select(Task)).where(Task.updated_ms > since_ms).order_by(
            Task.updated_ms.desc()).limit(limit)
        with self.session() as s:
            rows = list(s.execute(q).scalars())
            if user.kind == "ops":
                rows = []
                newest = s.execute(select(func.max(Task.updated_ms))).scalar() or 0
            else:
                newest = max([since_ms, *(t.updated_ms for t in rows)])
        return max(newest, since_ms), rows

    def counts(self, user: User) -> dict[str, int]:
        """Open tasks, and the user's own, for the tab title and the navigation."""
        q = self.scoped(user, select(func.count(), func.count(Task.claimed_by).filter(
            Task.claimed_by == user.name))).where(Task.status != "done")
        with self.session() as s:
            total, mine = s.execute(q).one()
        return {"open": total, "mine": mine}

    # -- operations -------------------------------------------------------------------------------
    def open_counts(self) -> dict[str, int]:
        q = select(Task.action, func.count()).where(Task.status != "done").group_by(Task.action)
        with self.session() as s:
            return {a: n for a, n in s.execute(q).all()}

    def open_tasks(self) -> list[Task]:
        """Every task without an outcome (ops' board and the coverage check; no personal data
        leaves ``services.desk.views.ops_*``)."""
        with self.session() as s:
            return list(s.execute(select(Task).where(Task.status != "done").order_by(
                Task.created_ms)).scalars())

    def ops_tasks(self, kind: str | None = None, scope: str | None = None,
                  action: str | None = None, search: str | None = None,
                  limit: int = 500) -> list[tuple[Task, Outcome | None]]:
        q = select(Task, Outcome).outerjoin(Outcome)
        if search:
            q = q.where(or_(Task.task_id == search.strip(), Task.episode_id == search.strip()))
        else:
            q = q.where(Task.status != "done")
        if kind == "bank":
            q = q.where(Task.action.in_(BANK_ACTIONS))
            if scope is not None:
                q = q.where(Task.bank == scope)
        elif kind == "desk":
            q = q.where(Task.action.in_(DESK_ACTIONS))
            if scope is not None:
                q = q.where(Task.district == scope)
        if action:
            q = q.where(Task.action == action)
        with self.session() as s:
            return [(t, o) for t, o in s.execute(q.order_by(Task.created_ms, Task.task_id)
                                                  .limit(limit)).all()]

    def ops_task(self, task_id: str) -> tuple[Task, Outcome | None]:
        with self.session() as s:
            row = s.execute(select(Task, Outcome).outerjoin(Outcome).where(
                Task.task_id == task_id)).first()
        if row is None:
            raise NotFound("no task %(task)s", task=task_id)
        return row[0], row[1]

    def overview(self) -> dict[str, Any]:
        at = self.clock.now_ms()
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


def actor_of(user: User) -> str:
    """The contract's actor: the desk's district or the liaison's bank (a supervisor acts for
    the district's desk)."""
    return f"desk:{user.scope}" if user.works_desk else user.role
