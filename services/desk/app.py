"""The desk service as a FastAPI application: ``create_app(settings)``.

Storage is migrated when the app is made; the intake of warning-tasks and the registry, the
outcome outbox and the dispatcher (lapsed claims, auto-assignment) run as background threads for
the app's lifespan. Every response carries the security headers; a state-changing request from
another origin is refused before it reaches a route.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.desk import api, live, pages
from services.desk.auth import SAFE_METHODS, CurrentUser, LoginRequired, OpsUser
from services.desk.clock import DeskClock
from services.desk.coverage import gaps, uncovered
from services.desk.i18n import words_of
from services.desk.intake import TaskIntake
from services.desk.logins import LoginGuard
from services.desk.metrics import DeskMetrics
from services.desk.outcomes import OutcomePublisher
from services.desk.problems import DeskError
from services.desk.settings import DeskSettings
from services.desk.storage import TaskStore
from services.desk.words import N_

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
TITLES = {400: N_("Bad request"), 401: N_("Unauthorized"), 403: N_("Forbidden"),
          404: N_("Not found"), 405: N_("Method not allowed"), 409: N_("Conflict"),
          422: N_("Invalid input"), 429: N_("Too many attempts"), 500: N_("Internal error")}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; media-src 'self' data:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make Origin "null"
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class Guarded:
    """Security headers on every response (pages, API, errors, static files); ``no-store`` on
    everything but static files, since pages and API answers carry personal data; and a
    state-changing request whose Origin (or Referer) is another site is refused (403)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                if not static:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if scope["method"] not in SAFE_METHODS and not _same_origin(headers):
            body = (b'{"title":"Forbidden","status":403,'
                    b'"detail":"cross-site request refused"}')
            await send_with_headers({"type": "http.response.start", "status": 403, "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_with_headers)


def _same_origin(headers: dict[str, str]) -> bool:
    """The Origin (else the Referer) must be this host. Neither (curl, a bank's system): allowed,
    as a browser always sends Origin on a cross-site POST."""
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is not None:
        return origin != "null" and urlsplit(origin).netloc == host
    referer = headers.get("referer")
    return not referer or urlsplit(referer).netloc == host


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/metrics", "/openapi"))


def problem(request: Request, status: int, detail: str,
            headers: dict[str, str] | None = None) -> Response:
    w = words_of(request)
    title = w.gettext(TITLES.get(status, "Error"))
    if _wants_json(request):
        return JSONResponse({"title": title, "status": status, "detail": detail},
                            status_code=status, headers=headers,
                            media_type="application/problem+json")
    return pages.render(request, "error.html", pages.user_or_none(request), status=status,
                        headers=headers, title=title, detail=detail)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return "; ".join(parts) or "invalid input"


def install_errors(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = words_of(request).gettext(str(exc.detail))
        return problem(request, exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return problem(request, 422, _validation_message(exc))

    @app.exception_handler(DeskError)
    async def _desk(request: Request, exc: DeskError) -> Response:
        return problem(request, exc.status, words_of(request).gettext(exc.msg, **exc.params),
                       exc.headers)


class Dispatcher(threading.Thread):
    """Lapses claims not worked in time and gives open work to people on shift."""

    def __init__(self, store: TaskStore, settings: DeskSettings):
        super().__init__(name="desk-dispatch", daemon=True)
        self.store, self.settings = store, settings
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.settings.dispatch_every_s):
            try:
                self.store.dispatch(self.settings.users, self.settings.auto_assign)
            except Exception:  # storage hiccup: log, keep the thread alive
                log.exception("desk dispatcher")

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout_s)


def create_app(settings: DeskSettings) -> FastAPI:
    clock = DeskClock(settings.clock)
    store = TaskStore(settings.database_url, clock)

    def coverage() -> dict[tuple[str, str], int]:
        return uncovered(gaps(store.open_tasks(), settings.users, store.on_shift()))

    metrics = DeskMetrics(store.open_counts, coverage)
    workers: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.consume:
            workers["intake"] = app.state.intake = TaskIntake(
                settings.bootstrap, store, metrics, settings.group_id)
            workers["publisher"] = app.state.publisher = OutcomePublisher(
                settings.bootstrap, store, metrics)
        workers["dispatcher"] = Dispatcher(store, settings)
        for w in workers.values():
            w.start()
        try:
            yield
        finally:
            app.state.stopping.set()
            for w in workers.values():
                w.stop()
            app.state.guard.close()
            store.close()

    app = FastAPI(title="ZeroTransfer desk", version="2",
                  description="Warning tasks for police desks and bank liaisons. Every request "
                              "is authenticated (HTTP Basic, or the web session with its "
                              "X-CSRF-Token on changes).",
                  lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.store, app.state.metrics = settings, store, metrics
    app.state.clock = clock
    app.state.guard = LoginGuard(settings.users, settings.logins)
    app.state.intake = app.state.publisher = None
    app.state.stopping = threading.Event()
    install_errors(app)
    app.include_router(api.router)
    app.include_router(live.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guarded)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_who: CurrentUser) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/metrics", include_in_schema=False)
    def prometheus(_who: OpsUser) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        # Liveness only, no data: the one route without a login.
        return {"status": "ok"}

    return app
