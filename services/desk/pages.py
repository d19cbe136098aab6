"""Server-rendered pages for desks, liaisons and ops; the same store and views as the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.desk.api import Store, TaskId, overview_of
from services.desk.auth import (
    COOKIE,
    BankPageUser,
    DeskPageUser,
    OpsPageUser,
    PageUser,
    check_csrf,
    csrf_token,
    make_cookie,
)
from services.desk.storage import BANK_ACTIONS, DESK_ACTIONS
from services.desk.users import User
from services.desk.views import bank_detail, bank_summary, desk_detail, desk_summary, phone_visible
from services.desk.words import ACTIONS, RESULTS, yuan

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
templates.env.globals.update(ACTIONS=ACTIONS, RESULTS=RESULTS, yuan=yuan)
router = APIRouter(include_in_schema=False)

HOME = {"desk": "/desk", "bank": "/bank", "ops": "/ops"}
Csrf = Annotated[str, Form(max_length=64, description="the form's CSRF token")]
ResultField = Annotated[str, Form(max_length=16)]
Note = Annotated[str, Form(max_length=2000)]


def render(request: Request, name: str, who: User | None, status: int = 200,
           **ctx: object) -> HTMLResponse:
    cookie = request.cookies.get(COOKIE, "")
    ctx.update(user=who, csrf=csrf_token(request.app.state.settings.secret, cookie),
               poll_ms=request.app.state.settings.poll_ms)
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect after login would help phishing.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=256)],
          next: Annotated[str, Form(max_length=512)] = "/") -> Response:
    st = request.app.state
    user = st.settings.users.get(username)
    if user is None or not user.check(password):
        st.metrics.logins.labels("failed").inc()
        st.store.audit(None, "login_failed", name=username)
        return render(request, "login.html", None, status=401, next=_safe_next(next),
                      error="Wrong user name or password.")
    st.metrics.logins.labels("ok").inc()
    st.store.audit(user, "login")
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(COOKIE, make_cookie(st.settings.secret, user),
                    max_age=st.settings.session_max_age_s, httponly=True, samesite="lax",
                    secure=st.settings.secure_cookies)
    return resp


@router.post("/logout")
def logout(request: Request, csrf: Csrf, who: PageUser) -> Response:
    check_csrf(request, csrf)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/")
def home(who: PageUser) -> Response:
    return RedirectResponse(HOME[who.kind], status_code=303)


# -- police desks ---------------------------------------------------------------------------
@router.get("/desk", response_class=HTMLResponse)
def desk_queue_page(request: Request, who: DeskPageUser,
                    db: Store) -> HTMLResponse:
    rows = [desk_summary(who, t, o) for t, o in db.queue(who, DESK_ACTIONS)]
    return render(request, "desk_queue.html", who, rows=rows)


@router.get("/desk/tasks/{task_id}", response_class=HTMLResponse)
def desk_task_page(request: Request, task_id: TaskId, who: DeskPageUser,
                   db: Store) -> HTMLResponse:
    t, o = db.get(who, task_id)
    view = desk_detail(who, t, o, db.episode(who, t.episode_id))
    db.audit(who, "read", task_id, "phone shown" if phone_visible(who, t) else "phone masked")
    return render(request, "desk_task.html", who, task=view, mine=t.claimed_by == who.name)


@router.post("/desk/tasks/{task_id}/claim")
def desk_claim_form(request: Request, task_id: TaskId, csrf: Csrf, who: DeskPageUser,
                    db: Store) -> Response:
    check_csrf(request, csrf)
    db.claim(who, task_id)
    return RedirectResponse(f"/desk/tasks/{quote(task_id)}", status_code=303)


@router.post("/desk/tasks/{task_id}/outcome")
def desk_outcome_form(request: Request, task_id: TaskId, csrf: Csrf, result: ResultField,
                      who: DeskPageUser, db: Store, note: Note = "") -> Response:
    check_csrf(request, csrf)
    db.record_outcome(who, task_id, result, None, note.strip() or None)
    pub = getattr(request.app.state, "publisher", None)
    if pub is not None:
        pub.wake.set()
    return RedirectResponse(f"/desk/tasks/{quote(task_id)}", status_code=303)


# -- bank liaisons --------------------------------------------------------------------------
@router.get("/bank", response_class=HTMLResponse)
def bank_queue_page(request: Request, who: BankPageUser,
                    db: Store) -> HTMLResponse:
    rows = [bank_summary(t, o) for t, o in db.queue(who, BANK_ACTIONS)]
    return render(request, "bank_queue.html", who, rows=rows)


@router.get("/bank/requests/{task_id}", response_class=HTMLResponse)
def bank_request_page(request: Request, task_id: TaskId, who: BankPageUser,
                      db: Store) -> HTMLResponse:
    t, o = db.get(who, task_id)
    db.audit(who, "read", task_id, "account shown")
    return render(request, "bank_request.html", who, req=bank_detail(t, o))


@router.post("/bank/requests/{task_id}/outcome")
def bank_outcome_form(request: Request, task_id: TaskId, csrf: Csrf, result: ResultField,
                      who: BankPageUser, db: Store,
                      amount_yuan: Annotated[str, Form(max_length=20)] = "",
                      note: Note = "") -> Response:
    check_csrf(request, csrf)
    amount = fen_of(amount_yuan) if result in ("held", "stopped") else None
    db.record_outcome(who, task_id, result, amount, note.strip() or None)
    pub = getattr(request.app.state, "publisher", None)
    if pub is not None:
        pub.wake.set()
    return RedirectResponse(f"/bank/requests/{quote(task_id)}", status_code=303)


def fen_of(text: str) -> int:
    """'48000' or '48,000.50' yuan as integer fen; people type yuan, the contract counts fen."""
    clean = text.replace(",", "").strip()
    whole, _, frac = clean.partition(".")
    if not whole.isdigit() or (frac and not (frac.isdigit() and len(frac) <= 2)):
        raise HTTPException(422, "amount: a number of yuan, e.g. 48000 or 48000.50")
    fen = int(whole) * 100 + int((frac + "00")[:2])
    if fen > 10**14:
        raise HTTPException(422, "amount: too large")
    return fen


# -- operations -----------------------------------------------------------------------------
@router.get("/ops", response_class=HTMLResponse)
def ops_page(request: Request, who: OpsPageUser,
             db: Store) -> HTMLResponse:
    return render(request, "ops.html", who, ov=overview_of(request, db))
