"""The desk service as a FastAPI application: ``create_app(settings)``.

Storage is migrated when the app is made; the intake of warning-tasks and the outcome outbox run
as background threads for the app's lifespan.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.desk import api, pages
from services.desk.auth import CurrentUser, LoginRequired, OpsUser
from services.desk.intake import TaskIntake
from services.desk.metrics import DeskMetrics
from services.desk.outcomes import OutcomePublisher
from services.desk.settings import DeskSettings
from services.desk.storage import Conflict, Invalid, NotFound, TaskStore

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 422: "Invalid input",
          500: "Internal error"}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/metrics", "/openapi"))


def _problem(request: Request, status: int, detail: str,
             headers: dict[str, str] | None = None) -> Response:
    title = TITLES.get(status, "Error")
    if _wants_json(request):
        return JSONResponse({"title": title, "status": status, "detail": detail},
                            status_code=status, headers=headers,
                            media_type="application/problem+json")
    return pages.render(request, "error.html", None, status=status, title=title, detail=detail)


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
        return _problem(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _problem(request, 422, _validation_message(exc))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return _problem(request, 404, str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> Response:
        return _problem(request, 409, str(exc))

    @app.exception_handler(Invalid)
    async def _bad(request: Request, exc: Invalid) -> Response:
        return _problem(request, 422, str(exc))


def create_app(settings: DeskSettings) -> FastAPI:
    store = TaskStore(settings.database_url)
    metrics = DeskMetrics(store.open_counts)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.consume:
            app.state.intake = TaskIntake(settings.bootstrap, store, metrics, settings.group_id)
            app.state.publisher = OutcomePublisher(settings.bootstrap, store, metrics)
            app.state.intake.start()
            app.state.publisher.start()
        try:
            yield
        finally:
            for worker in ("intake", "publisher"):
                if getattr(app.state, worker, None) is not None:
                    getattr(app.state, worker).stop()
            store.close()

    app = FastAPI(title="ZeroTransfer desk", version="1",
                  description="Warning tasks for police desks and bank liaisons. Every request "
                              "is authenticated (HTTP Basic, or the web session).",
                  lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.store, app.state.metrics = settings, store, metrics
    app.state.intake = app.state.publisher = None
    install_errors(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

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
