"""Server-rendered pages for desks, supervisors, liaisons and ops; the same store and views as
the API. A form that fails (a colleague was faster, an amount above the request) shows the same
page again with the message and what was typed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.desk import api
from services.desk.api import Store, TaskId, overview_of
from services.desk.auth import (
    COOKIE,
    BankPageUser,
    DeskPageUser,
    OpsPageUser,
    PageUser,
    check_csrf,
    check_password,
    csrf_token,
    make_cookie,
    session_user,
)
from services.desk.clock import wall_ms
from services.desk.i18n import COOKIE as LANG_COOKIE
from services.desk.i18n import LANGUAGES, words_of
from services.desk.problems import DeskError, Forbidden, Invalid
from services.desk.storage import ATTEMPT_RESULTS, DESK_RESULTS, Filters, TaskStore, scope_of
from services.desk.users import User
from services.desk.views import bank_detail, bank_summary, desk_summary, ops_task
from services.desk.words import ACTIONS, ATTEMPTS, AUDIT, N_, RESULTS, STATUSES

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
templates.env.globals.update(ACTIONS=ACTIONS, RESULTS=RESULTS, ATTEMPTS=ATTEMPTS,
                             STATUSES=STATUSES, AUDIT=AUDIT, LANGUAGES=LANGUAGES,
                             DESK_RESULTS=DESK_RESULTS, ATTEMPT_RESULTS=ATTEMPT_RESULTS)
router = APIRouter(include_in_schema=False)

HOME = {"desk": "/desk", "supervisor": "/desk", "bank": "/bank", "ops": "/ops"}
Csrf = Annotated[str, Form(max_length=64, description="the form's CSRF token")]
ResultField = Annotated[str, Form(max_length=16)]
Note = Annotated[str, Form(max_length=2000)]
AGES = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}
# What the pages' script needs in words (its countdowns, notifications, title).
SCRIPT_WORDS = (N_("%(at)s (due in %(left)s)"), N_("%(at)s (overdue by %(late)s)"),
                N_("in %(left)s"), N_("%(late)s ago"), N_("New priority-1 task"),
                N_("This task has changed: reload to see it"), N_("Reload"), N_("Alerts on"),
                N_("Enable alerts"))


def user_or_none(request: Request) -> User | None:
    return session_user(request)


def render(request: Request, name: str, who: User | None, status: int = 200,
           headers: dict[str, str] | None = None, **ctx: object) -> HTMLResponse:
    st = request.app.state
    w = words_of(request)
    cookie = request.cookies.get(COOKIE, "")
    db: TaskStore = st.store
    counts = db.counts(who) if who is not None and who.kind != "ops" else {}
    ctx.update(
        user=who, csrf=csrf_token(st.settings.secret, cookie), w=w, _=w.gettext,
        now=st.clock.now_ms(), wall=wall_ms(), counts=counts,
        on_shift=who is not None and who.name in db.on_shift(),
        lang_links={code: _with_query(request, lang=code) for code in LANGUAGES},
        script_words=json.dumps({m: w.gettext(m) for m in SCRIPT_WORDS}
                                | {"lang": w.html_lang}, ensure_ascii=False),
    )
    resp = templates.TemplateResponse(request, name, ctx, status_code=status, headers=headers)
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        resp.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="strict",
                        secure=st.settings.secure_cookies)
    return resp


def _with_query(request: Request, **changes: str) -> str:
    params = dict(request.query_params) | changes
    return request.url.path + "?" + urlencode(params)


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect after login would help phishing.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _back(path: str, **params: str) -> RedirectResponse:
    return RedirectResponse(path + (f"?{urlencode(params)}" if params else ""), status_code=303)


# -- logging in, shifts, language -----------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next), error=None, typed_name="")


@router.post("/login")
async def login(request: Request, username: Annotated[str, Form(max_length=64)],
                password: Annotated[str, Form(max_length=256)],
                next: Annotated[str, Form(max_length=512)] = "/") -> Response:
    st = request.app.state
    try:
        user = await check_password(request, username, password, "form")
    except DeskError as e:
        return render(request, "login.html", None, status=e.status, headers=e.headers,
                      next=_safe_next(next), typed_name=username,
                      error=words_of(request).gettext(e.msg, **e.params))
    await run_in_threadpool(st.store.audit, user, "login")
    await run_in_threadpool(st.store.set_shift, user, True)  # logging in starts the shift
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(COOKIE, make_cookie(st.settings.secret, user),
                    max_age=st.settings.session_max_age_s, httponly=True, samesite="strict",
                    secure=st.settings.secure_cookies)
    return resp


@router.post("/logout")
def logout(request: Request, csrf: Csrf, who: PageUser, db: Store) -> Response:
    check_csrf(request, csrf)
    db.set_shift(who, False)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.post("/shift")
def shift_form(request: Request, csrf: Csrf, who: PageUser, db: Store,
               on: Annotated[str, Form(max_length=1)] = "1",
               next: Annotated[str, Form(max_length=512)] = "/") -> Response:
    check_csrf(request, csrf)
    db.set_shift(who, on == "1")
    return RedirectResponse(_safe_next(next), status_code=303)


@router.get("/")
def home(who: PageUser) -> Response:
    return RedirectResponse(HOME[who.kind], status_code=303)


# -- queues ---------------------------------------------------------------------------------------
def page_filters(request: Request) -> tuple[Filters, dict[str, str]]:
    """The queue's filters from the query string; a bad value is ignored, never an error."""
    q = request.query_params
    chosen = {k: q.get(k, "") for k in ("view", "action", "status", "age", "q", "sort")}
    view = chosen["view"] if chosen["view"] in ("open", "mine", "done", "all") else "open"
    f = Filters(view=view, action=chosen["action"] if chosen["action"] in ACTIONS else None,
                status=chosen["status"] if chosen["status"] in STATUSES else None,
                max_age_ms=AGES[chosen["age"]] * 3_600_000 if chosen["age"] in AGES else None,
                search=chosen["q"].strip()[:128] or None,
                sort=chosen["sort"] if chosen["sort"] in ("urgent", "due", "newest", "oldest")
                else "urgent")
    chosen["view"] = view
    return f, chosen


@router.get("/desk", response_class=HTMLResponse)
def desk_queue_page(request: Request, who: DeskPageUser, db: Store) -> HTMLResponse:
    f, chosen = page_filters(request)
    rows = [(desk_summary(who, t, o), t.offset_min) for t, o in db.queue(who, f)]
    return render(request, "desk_queue.html", who, rows=rows, chosen=chosen,
                  actions=("call", "visit"))


@router.get("/bank", response_class=HTMLResponse)
def bank_queue_page(request: Request, who: BankPageUser, db: Store) -> HTMLResponse:
    f, chosen = page_filters(request)
    rows = [(bank_summary(t, o), t.offset_min) for t, o in db.queue(who, f)]
    return render(request, "bank_queue.html", who, rows=rows, chosen=chosen,
                  actions=("hold", "stop_payment"))


# -- a task -----------------------------------------------------------------------------------------
def targets(request: Request, db: TaskStore, who: User, task: Any) -> list[str]:
    """Colleagues on shift a task can be handed to."""
    role, scope = scope_of(task)
    on = db.on_shift()
    return sorted(n for n, u in request.app.state.settings.users.items()
                  if n in on and n != task.claimed_by and u.scope == scope
                  and u.kind == ("bank" if role == "bank" else "desk"))


def desk_task_response(request: Request, who: User, db: TaskStore, task_id: str,
                       status: int = 200, error: str | None = None,
                       typed: dict[str, str] | None = None) -> HTMLResponse:
    t, _o = db.get(who, task_id)
    view = api.desk_view(request, db, who, task_id)
    return render(request, "desk_task.html", who, status=status, task=view, offset=t.offset_min,
                  mine=t.claimed_by == who.name and t.status == "claimed",
                  targets=targets(request, db, who, t), error=error, typed=typed or {})


def bank_task_response(request: Request, who: User, db: TaskStore, task_id: str,
                       status: int = 200, error: str | None = None,
                       typed: dict[str, str] | None = None) -> HTMLResponse:
    t, o = db.get(who, task_id)
    db.audit(who, "read", task_id, "account shown")
    return render(request, "bank_request.html", who, status=status, req=bank_detail(t, o),
                  offset=t.offset_min, mine=t.claimed_by == who.name and t.status == "claimed",
                  targets=targets(request, db, who, t), error=error, typed=typed or {})


def _act(request: Request, who: User, db: TaskStore, task_id: str, csrf: str, action: Any,
         typed: dict[str, str], page: Any) -> Response:
    """Run a form's action; on a refusal show the same page with the message and the input."""
    check_csrf(request, csrf)
    try:
        action()
    except DeskError as e:
        if e.status == 404:
            raise
        return page(request, who, db, task_id, status=e.status,
                    error=words_of(request).gettext(e.msg, **e.params), typed=typed)
    api.published_soon(request)
    return _back(request.url.path.rsplit("/", 1)[0])


@router.get("/desk/tasks/{task_id}", response_class=HTMLResponse)
def desk_task_page(request: Request, task_id: TaskId, who: DeskPageUser,
                   db: Store) -> HTMLResponse:
    return desk_task_response(request, who, db, task_id)


def _page(request: Request, who: User) -> Any:
    """The task page of the form's role: /desk/... for desks, /bank/... for liaisons."""
    if request.url.path.startswith("/desk/") and who.works_desk:
        return desk_task_response
    if request.url.path.startswith("/bank/") and who.kind == "bank":
        return bank_task_response
    raise Forbidden("this needs a %(kind)s login",
                    kind="desk" if request.url.path.startswith("/desk/") else "bank")


@router.post("/desk/tasks/{task_id}/claim")
@router.post("/bank/requests/{task_id}/claim")
def claim_form(request: Request, task_id: TaskId, csrf: Csrf, who: PageUser,
               db: Store) -> Response:
    return _act(request, who, db, task_id, csrf, lambda: db.claim(who, task_id), {},
                _page(request, who))


@router.post("/desk/tasks/{task_id}/release")
@router.post("/bank/requests/{task_id}/release")
def release_form(request: Request, task_id: TaskId, csrf: Csrf, who: PageUser,
                 db: Store) -> Response:
    return _act(request, who, db, task_id, csrf, lambda: db.release(who, task_id), {},
                _page(request, who))


@router.post("/desk/tasks/{task_id}/hand-over")
@router.post("/bank/requests/{task_id}/hand-over")
def hand_over_form(request: Request, task_id: TaskId, csrf: Csrf, who: PageUser, db: Store,
                   to: Annotated[str, Form(max_length=64)]) -> Response:
    def act() -> None:
        db.hand_over(who, task_id, api.colleague(request, to), db.on_shift())

    return _act(request, who, db, task_id, csrf, act, {"to": to}, _page(request, who))


@router.post("/desk/tasks/{task_id}/attempt")
def desk_attempt_form(request: Request, task_id: TaskId, csrf: Csrf, result: ResultField,
                      who: DeskPageUser, db: Store,
                      retry_in_min: Annotated[str, Form(max_length=6)] = "",
                      note: Note = "") -> Response:
    typed = {"attempt": result, "retry_in_min": retry_in_min, "attempt_note": note}

    def act() -> None:
        if not retry_in_min.strip().isdigit() or not 1 <= int(retry_in_min) <= 1440:
            raise Invalid("try again in: a number of minutes, 1 to 1440")
        db.attempt(who, task_id, result, int(retry_in_min), note.strip() or None)

    return _act(request, who, db, task_id, csrf, act, typed, desk_task_response)


@router.post("/desk/tasks/{task_id}/outcome")
def desk_outcome_form(request: Request, task_id: TaskId, csrf: Csrf, who: DeskPageUser,
                      db: Store, result: Annotated[str, Form(max_length=16)] = "",
                      note: Note = "") -> Response:
    def act() -> None:
        if not result:
            raise Invalid("choose the outcome")
        db.record_outcome(who, task_id, result, None, note.strip() or None)

    return _act(request, who, db, task_id, csrf, act, {"result": result, "note": note},
                desk_task_response)


@router.get("/bank/requests/{task_id}", response_class=HTMLResponse)
def bank_request_page(request: Request, task_id: TaskId, who: BankPageUser,
                      db: Store) -> HTMLResponse:
    return bank_task_response(request, who, db, task_id)


@router.post("/bank/requests/{task_id}/outcome")
def bank_outcome_form(request: Request, task_id: TaskId, csrf: Csrf, who: BankPageUser,
                      db: Store, result: Annotated[str, Form(max_length=16)] = "",
                      amount_yuan: Annotated[str, Form(max_length=20)] = "",
                      note: Note = "") -> Response:
    def act() -> None:
        if not result:
            raise Invalid("choose the result")
        amount = fen_of(amount_yuan) if result in ("held", "stopped") else None
        db.record_outcome(who, task_id, result, amount, note.strip() or None)

    return _act(request, who, db, task_id, csrf, act,
                {"result": result, "amount_yuan": amount_yuan, "note": note}, bank_task_response)


def fen_of(text: str) -> int:
    """'48000', '48,000.50' or '48，000.50' yuan as integer fen; people type yuan, the contract
    counts fen."""
    clean = text.replace(",", "").replace("，", "").replace("¥", "").strip()
    whole, _, frac = clean.partition(".")
    if not whole.isdigit() or (frac and not (frac.isdigit() and len(frac) <= 2)):
        raise Invalid("amount: a number of yuan, e.g. 48000 or 48000.50")
    fen = int(whole) * 100 + int((frac + "00")[:2])
    if fen > 10**14:
        raise Invalid("amount: too large")
    return fen


# -- operations -------------------------------------------------------------------------------------
@router.get("/ops", response_class=HTMLResponse)
def ops_page(request: Request, who: OpsPageUser, db: Store) -> HTMLResponse:
    return render(request, "ops.html", who, ov=overview_of(request, db))


@router.get("/ops/tasks", response_class=HTMLResponse)
def ops_tasks_page(request: Request, who: OpsPageUser, db: Store,
                   role: Annotated[str | None, Query(max_length=8)] = None,
                   scope: Annotated[str | None, Query(max_length=128)] = None,
                   action: Annotated[str | None, Query(max_length=16)] = None,
                   q: Annotated[str | None, Query(max_length=128)] = None) -> HTMLResponse:
    role = role if role in ("desk", "bank") else None
    action = action if action in ACTIONS else None
    rows = [(ops_task(t, o), t.offset_min) for t, o in db.ops_tasks(role, scope, action, q)]
    return render(request, "ops_tasks.html", who, rows=rows,
                  chosen={"role": role or "", "scope": scope or "", "action": action or "",
                          "q": q or ""})


@router.get("/ops/tasks/{task_id}", response_class=HTMLResponse)
def ops_task_page(request: Request, task_id: TaskId, who: OpsPageUser, db: Store) -> HTMLResponse:
    t, o = db.ops_task(task_id)
    return render(request, "ops_task.html", who, task=ops_task(t, o), offset=t.offset_min,
                  trail=list(reversed(db.audit_log(200, task_id=task_id))))


def link(path: str, **params: str) -> str:
    return path + "?" + urlencode({k: v for k, v in params.items() if v})


templates.env.globals.update(link=link)
