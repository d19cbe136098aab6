"""Live pages: a server-sent event stream per page (``/api/live``).

Every ``live_every_s`` it looks for the user's tasks changed since the last look (new, claimed,
assigned, done...) and sends one event with them and the counts; the page then refreshes its
live parts, rings and notifies for a new priority-1 task, and puts the count in the tab title.
A stream ends after ``MAX_STREAM_S`` (the browser reconnects at once) or when the service stops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from services.desk.auth import CurrentUser
from services.desk.clock import wall_ms
from services.desk.i18n import words_of
from services.desk.words import ACTIONS

router = APIRouter(prefix="/api", tags=["all"])
MAX_STREAM_S = 60.0


@router.get("/live", response_class=EventSourceResponse, include_in_schema=False)
async def live(request: Request, who: CurrentUser,
               since: Annotated[int | None, Query(ge=0, description="wall ms of the page")] = None,
               ) -> AsyncIterable[ServerSentEvent]:
    """Changes to your tasks as they happen (text/event-stream): event ``change`` with
    ``{"now", "changed", "open", "mine", "tasks": [{"task_id", "action", "label", "priority",
    "status", "claimed_by", "new"}]}`` (``changed``: anything since the last event, or since
    ``since`` for the first; ops' events list no tasks)."""
    st = request.app.state
    w = words_of(request)
    seen = since if since is not None else wall_ms()
    ends = time.monotonic() + MAX_STREAM_S
    first = True
    while not st.stopping.is_set() and time.monotonic() < ends:
        if await request.is_disconnected():
            return
        newest, rows = await run_in_threadpool(st.store.changes, who, seen)
        changed = bool(rows) or newest > seen
        if changed or first:
            counts = (await run_in_threadpool(st.store.counts, who)) if who.kind != "ops" else {}
            yield ServerSentEvent(event="change", retry=1000, data={
                "now": st.clock.now_ms(), "changed": changed, "open": counts.get("open", 0),
                "mine": counts.get("mine", 0),
                "tasks": [{"task_id": t.task_id, "action": t.action,
                           "label": w.gettext(ACTIONS[t.action]), "priority": t.priority,
                           "status": t.status, "claimed_by": t.claimed_by,
                           "new": t.received_ms > seen} for t in rows]})
        seen, first = max(seen, newest), False
        pause = time.monotonic() + st.settings.live_every_s
        while time.monotonic() < pause and not st.stopping.is_set():
            await asyncio.sleep(0.1)
