"""The JSON API: one router per role, each behind its role's dependency."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from services.desk.auth import BankUser, CurrentUser, DeskUser, OpsUser
from services.desk.coverage import gaps
from services.desk.i18n import Words, words_of
from services.desk.problems import NotFound
from services.desk.schemas import (
    AttemptIn,
    AttemptOut,
    BankOutcomeIn,
    BankRequestDetail,
    BankRequestSummary,
    DeskOutcomeIn,
    DeskTaskDetail,
    DeskTaskSummary,
    Gap,
    HandOverIn,
    Me,
    OpsTask,
    OutcomeOut,
    Overview,
    Problem,
    ResultCount,
    ShiftIn,
    ShiftOut,
    StatusCount,
    WorkCell,
)
from services.desk.storage import Filters, TaskStore, scope_of
from services.desk.users import User
from services.desk.views import (
    attempt_out,
    bank_detail,
    bank_summary,
    desk_detail,
    desk_summary,
    ops_task,
    outcome_out,
    phone_visible,
)

ERRORS = {code: {"model": Problem} for code in (401, 403, 404, 409, 422, 429)}
TaskId = Annotated[str, Path(min_length=1, max_length=128, description="the task's id")]
Limit = Annotated[int, Query(ge=1, le=1000)]

router = APIRouter(prefix="/api", responses=ERRORS)


def store(request: Request) -> TaskStore:
    return request.app.state.store


def words(request: Request) -> Words:
    return words_of(request)


Store = Annotated[TaskStore, Depends(store)]
Lang = Annotated[Words, Depends(words)]


def filters(view: Literal["open", "mine", "done", "all"] = "open",
            action: Literal["call", "visit", "hold", "stop_payment"] | None = None,
            status: Literal["open", "claimed", "done"] | None = None,
            max_age_h: Annotated[int | None, Query(ge=1, le=24 * 365)] = None,
            q: Annotated[str | None, Query(max_length=128, description="task or episode id")] = None,
            sort: Literal["urgent", "due", "newest", "oldest"] = "urgent",
            include_done: bool = False, limit: Limit = 200) -> Filters:
    """Which tasks: open (default), mine, done or all; by action, status, age; a task or
    episode id (or its start); sorted by urgency (priority, then due), due, newest or oldest."""
    return Filters(view="all" if include_done and view == "open" else view, action=action,
                   status=status, max_age_ms=max_age_h * 3_600_000 if max_age_h else None,
                   search=q or None, sort=sort, limit=limit)


Filtered = Annotated[Filters, Depends(filters)]


def published_soon(request: Request) -> None:
    pub = getattr(request.app.state, "publisher", None)
    if pub is not None:
        pub.wake.set()


def desk_view(request: Request, db: TaskStore, who: User, task_id: str,
              audit: str | None = None) -> DeskTaskDetail:
    t, o = db.get(who, task_id)
    view = desk_detail(words_of(request), who, t, o, db.episode(who, t.episode_id),
                       db.attempts(task_id), db.person(t.person_id) if t.action == "visit" else None)
    db.audit(who, "read", task_id, audit or ("numbers shown" if phone_visible(who, t)
                                             else "numbers masked"))
    return view


def colleague(request: Request, name: str) -> User:
    to = request.app.state.settings.users.get(name)
    if to is None:
        raise NotFound("no user %(who)s", who=name)
    return to


@router.get("/me", response_model=Me, tags=["all"])
def me(who: CurrentUser, db: Store) -> Me:
    return Me(name=who.name, role=who.role, on_shift=who.name in db.on_shift())


@router.post("/shift", response_model=ShiftOut, tags=["all"])
def shift(body: ShiftIn, request: Request, who: CurrentUser, db: Store) -> ShiftOut:
    """Start or end your shift: work is given to people on shift; what you hold when you end it
    goes back to the others."""
    db.set_shift(who, body.on)
    return shift_of(request, db, who)


def shift_of(request: Request, db: TaskStore, who: User) -> ShiftOut:
    on = db.on_shift()
    users = request.app.state.settings.users
    same = [n for n, u in users.items()
            if n in on and n != who.name and u.scope == who.scope and u.works_desk == who.works_desk
            and u.kind != "ops"]
    return ShiftOut(on_shift=who.name in on, colleagues_on_shift=sorted(same))


# -- police desks ---------------------------------------------------------------------------
@router.get("/desk/tasks", response_model=list[DeskTaskSummary], tags=["desk"])
def desk_queue(who: DeskUser, db: Store, f: Filtered) -> list[DeskTaskSummary]:
    """The district's call and visit tasks, most urgent first (priority, then due time)."""
    return [desk_summary(who, t, o) for t, o in db.queue(who, f)]


@router.get("/desk/tasks/{task_id}", response_model=DeskTaskDetail, tags=["desk"])
def desk_task(task_id: TaskId, request: Request, who: DeskUser, db: Store) -> DeskTaskDetail:
    """One task of the district with its reasons, attempts, the registry's record for a visit
    and the episode's timeline (audited)."""
    return desk_view(request, db, who, task_id)


@router.post("/desk/tasks/{task_id}/claim", response_model=DeskTaskDetail, tags=["desk"])
def desk_claim(task_id: TaskId, request: Request, who: DeskUser, db: Store) -> DeskTaskDetail:
    """Take the task: it is yours, and the person's numbers are shown to you whole."""
    db.claim(who, task_id)
    return desk_view(request, db, who, task_id)


@router.post("/desk/tasks/{task_id}/release", response_model=DeskTaskSummary, tags=["desk"])
def desk_release(task_id: TaskId, who: DeskUser, db: Store) -> DeskTaskSummary:
    """Give the task back: it goes to a colleague on shift (a supervisor may release any)."""
    db.release(who, task_id)
    t, o = db.get(who, task_id)
    return desk_summary(who, t, o)


@router.post("/desk/tasks/{task_id}/hand-over", response_model=DeskTaskSummary, tags=["desk"])
def desk_hand_over(task_id: TaskId, body: HandOverIn, request: Request, who: DeskUser,
                   db: Store) -> DeskTaskSummary:
    """Hand your task to a colleague on shift; a supervisor reassigns any of the district's."""
    db.hand_over(who, task_id, colleague(request, body.to), db.on_shift())
    t, o = db.get(who, task_id)
    return desk_summary(who, t, o)


@router.post("/desk/tasks/{task_id}/attempts", response_model=AttemptOut, tags=["desk"])
def desk_attempt(task_id: TaskId, body: AttemptIn, who: DeskUser, db: Store) -> AttemptOut:
    """A call that did not settle the task (no answer, busy...), and when to try again: before
    the due time, when the task escalates."""
    a = db.attempt(who, task_id, body.result, body.retry_in_min, body.note)
    t, _ = db.get(who, task_id)
    return attempt_out(a, t.offset_min)


@router.post("/desk/tasks/{task_id}/outcome", response_model=OutcomeOut, tags=["desk"])
def desk_outcome(task_id: TaskId, body: DeskOutcomeIn, request: Request,
                 who: DeskUser, db: Store) -> OutcomeOut:
    """Record what the call or visit achieved; it is published to task-outcomes."""
    out = db.record_outcome(who, task_id, body.result, None, body.note)
    published_soon(request)
    return outcome_out(out)  # type: ignore[return-value]


# -- bank liaisons --------------------------------------------------------------------------
@router.get("/bank/requests", response_model=list[BankRequestSummary], tags=["bank"])
def bank_queue(who: BankUser, db: Store, f: Filtered) -> list[BankRequestSummary]:
    """The bank's hold and stop-payment requests, most urgent first."""
    return [bank_summary(t, o) for t, o in db.queue(who, f)]


@router.get("/bank/requests/{task_id}", response_model=BankRequestDetail, tags=["bank"])
def bank_request(task_id: TaskId, who: BankUser, db: Store) -> BankRequestDetail:
    """One request with the whole account number (audited)."""
    t, o = db.get(who, task_id)
    db.audit(who, "read", task_id, "account shown")
    return bank_detail(t, o)


@router.post("/bank/requests/{task_id}/claim", response_model=BankRequestSummary, tags=["bank"])
def bank_claim(task_id: TaskId, who: BankUser, db: Store) -> BankRequestSummary:
    db.claim(who, task_id)
    return bank_summary(*db.get(who, task_id))


@router.post("/bank/requests/{task_id}/release", response_model=BankRequestSummary,
             tags=["bank"])
def bank_release(task_id: TaskId, who: BankUser, db: Store) -> BankRequestSummary:
    db.release(who, task_id)
    return bank_summary(*db.get(who, task_id))


@router.post("/bank/requests/{task_id}/hand-over", response_model=BankRequestSummary,
             tags=["bank"])
def bank_hand_over(task_id: TaskId, body: HandOverIn, request: Request, who: BankUser,
                   db: Store) -> BankRequestSummary:
    db.hand_over(who, task_id, colleague(request, body.to), db.on_shift())
    return bank_summary(*db.get(who, task_id))


@router.post("/bank/requests/{task_id}/outcome", response_model=OutcomeOut, tags=["bank"])
def bank_outcome(task_id: TaskId, body: BankOutcomeIn, request: Request,
                 who: BankUser, db: Store) -> OutcomeOut:
    """Confirm held or stopped with the amount (at most the amount requested), or failed with
    the reason."""
    out = db.record_outcome(who, task_id, body.result, body.amount_fen, body.note)
    published_soon(request)
    return outcome_out(out)  # type: ignore[return-value]


# -- operations -----------------------------------------------------------------------------
def work_cells(db: TaskStore) -> list[WorkCell]:
    now = db.clock.now_ms()
    cells: dict[tuple[str, str, str], WorkCell] = {}
    for t in db.open_tasks():
        role, scope = scope_of(t)
        c = cells.setdefault((role, scope, t.action), WorkCell(
            role=role, scope=scope, action=t.action, open=0, unheld=0, overdue=0,
            oldest_age_ms=0))
        c.open += 1
        c.unheld += t.status == "open"
        c.overdue += t.due_ms < now
        c.oldest_age_ms = max(c.oldest_age_ms, now - t.created_ms)
    return sorted(cells.values(), key=lambda c: (c.role, c.scope, c.action))


def overview_of(request: Request, db: TaskStore) -> Overview:
    ov = db.overview()
    intake = getattr(request.app.state, "intake", None)
    found = gaps(db.open_tasks(), request.app.state.settings.users, db.on_shift())
    return Overview(
        tasks=[StatusCount(action=a, status=s, count=n) for a, s, n in ov["by_status"]],
        overdue=ov["overdue"],
        outcomes=[ResultCount(result=r, count=n, amount_fen=int(f)) for r, n, f in ov["results"]],
        unpublished_outcomes=ov["unpublished"],
        intake_stored=intake.stored if intake else 0,
        intake_duplicates=intake.duplicates if intake else 0,
        intake_rejected=intake.rejected if intake else 0,
        uncovered=[Gap(role=g.role, scope=g.scope, why=g.why, tasks=g.tasks,  # type: ignore[arg-type]
                       oldest_created_ms=g.oldest_created_ms) for g in found],
        work=work_cells(db),
    )


@router.get("/ops/overview", response_model=Overview, tags=["ops"])
def ops_overview(request: Request, who: OpsUser, db: Store) -> Overview:
    """Counts, open work by district, bank, action and age, and the tasks nobody can see."""
    return overview_of(request, db)


@router.get("/ops/tasks", response_model=list[OpsTask], tags=["ops"])
def ops_tasks(who: OpsUser, db: Store, role: Literal["desk", "bank"] | None = None,
              scope: Annotated[str | None, Query(max_length=128)] = None,
              action: Literal["call", "visit", "hold", "stop_payment"] | None = None,
              q: Annotated[str | None, Query(max_length=128)] = None) -> list[OpsTask]:
    """Open tasks (or a task or episode by id), without personal data."""
    return [ops_task(t, o) for t, o in db.ops_tasks(role, scope, action, q)]
