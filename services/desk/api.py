"""The JSON API: one router per role, each behind its role's dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from services.desk.auth import BankUser, CurrentUser, DeskUser, OpsUser
from services.desk.schemas import (
    BankOutcomeIn,
    BankRequestDetail,
    BankRequestSummary,
    DeskOutcomeIn,
    DeskTaskDetail,
    DeskTaskSummary,
    Me,
    OutcomeOut,
    Overview,
    Problem,
    ResultCount,
    StatusCount,
)
from services.desk.storage import BANK_ACTIONS, DESK_ACTIONS, TaskStore
from services.desk.views import (
    bank_detail,
    bank_summary,
    desk_detail,
    desk_summary,
    outcome_out,
    phone_visible,
)

ERRORS = {code: {"model": Problem} for code in (401, 403, 404, 409, 422)}
TaskId = Annotated[str, Path(min_length=1, max_length=128, description="the task's id")]
Limit = Annotated[int, Query(ge=1, le=1000)]

router = APIRouter(prefix="/api", responses=ERRORS)


def store(request: Request) -> TaskStore:
    return request.app.state.store


Store = Annotated[TaskStore, Depends(store)]


def _published_soon(request: Request) -> None:
    pub = getattr(request.app.state, "publisher", None)
    if pub is not None:
        pub.wake.set()


@router.get("/me", response_model=Me, tags=["all"])
def me(who: CurrentUser) -> Me:
    return Me(name=who.name, role=who.role)


# -- police desks ---------------------------------------------------------------------------
@router.get("/desk/tasks", response_model=list[DeskTaskSummary], tags=["desk"])
def desk_queue(who: DeskUser, db: Store,
               include_done: bool = False, limit: Limit = 200) -> list[DeskTaskSummary]:
    """The district's call and visit tasks, most urgent first (priority, then due time)."""
    return [desk_summary(who, t, o) for t, o in db.queue(who, DESK_ACTIONS, include_done, limit)]


@router.get("/desk/tasks/{task_id}", response_model=DeskTaskDetail, tags=["desk"])
def desk_task(task_id: TaskId, who: DeskUser,
              db: Store) -> DeskTaskDetail:
    """One task of the district with its reasons and the episode's timeline (audited)."""
    t, o = db.get(who, task_id)
    view = desk_detail(who, t, o, db.episode(who, t.episode_id))
    db.audit(who, "read", task_id, "phone shown" if phone_visible(who, t) else "phone masked")
    return view


@router.post("/desk/tasks/{task_id}/claim", response_model=DeskTaskDetail, tags=["desk"])
def desk_claim(task_id: TaskId, who: DeskUser,
               db: Store) -> DeskTaskDetail:
    """Take the task: it is yours, and the person's number is shown to you whole."""
    t = db.claim(who, task_id)
    t, o = db.get(who, t.task_id)
    db.audit(who, "read", task_id, "phone shown")
    return desk_detail(who, t, o, db.episode(who, t.episode_id))


@router.post("/desk/tasks/{task_id}/outcome", response_model=OutcomeOut, tags=["desk"])
def desk_outcome(task_id: TaskId, body: DeskOutcomeIn, request: Request,
                 who: DeskUser, db: Store) -> OutcomeOut:
    """Record what the call or visit achieved; it is published to task-outcomes."""
    out = db.record_outcome(who, task_id, body.result, None, body.note)
    _published_soon(request)
    return outcome_out(out)  # type: ignore[return-value]


# -- bank liaisons --------------------------------------------------------------------------
@router.get("/bank/requests", response_model=list[BankRequestSummary], tags=["bank"])
def bank_queue(who: BankUser, db: Store,
               include_done: bool = False, limit: Limit = 200) -> list[BankRequestSummary]:
    """The bank's hold and stop-payment requests, most urgent first."""
    return [bank_summary(t, o) for t, o in db.queue(who, BANK_ACTIONS, include_done, limit)]


@router.get("/bank/requests/{task_id}", response_model=BankRequestDetail, tags=["bank"])
def bank_request(task_id: TaskId, who: BankUser,
                 db: Store) -> BankRequestDetail:
    """One request with the whole account number (audited)."""
    t, o = db.get(who, task_id)
    db.audit(who, "read", task_id, "account shown")
    return bank_detail(t, o)


@router.post("/bank/requests/{task_id}/outcome", response_model=OutcomeOut, tags=["bank"])
def bank_outcome(task_id: TaskId, body: BankOutcomeIn, request: Request,
                 who: BankUser, db: Store) -> OutcomeOut:
    """Confirm held or stopped with the amount, or failed with the reason."""
    out = db.record_outcome(who, task_id, body.result, body.amount_fen, body.note)
    _published_soon(request)
    return outcome_out(out)  # type: ignore[return-value]


# -- operations -----------------------------------------------------------------------------
def overview_of(request: Request, db: TaskStore) -> Overview:
    ov = db.overview()
    intake = getattr(request.app.state, "intake", None)
    return Overview(
        tasks=[StatusCount(action=a, status=s, count=n) for a, s, n in ov["by_status"]],
        overdue=ov["overdue"],
        outcomes=[ResultCount(result=r, count=n, amount_fen=int(f)) for r, n, f in ov["results"]],
        unpublished_outcomes=ov["unpublished"],
        intake_stored=intake.stored if intake else 0,
        intake_duplicates=intake.duplicates if intake else 0,
        intake_rejected=intake.rejected if intake else 0,
    )


@router.get("/ops/overview", response_model=Overview, tags=["ops"])
def ops_overview(request: Request, who: OpsUser,
                 db: Store) -> Overview:
    """Counts only: tasks by action and status, overdue, outcomes with amounts."""
    return overview_of(request, db)
