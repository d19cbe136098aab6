"""Crash-only lanes: a lane that fails takes its worker down at once, with one clear line.

A worker runs several lanes in one process (the four lean loops of ``streams.lanes`` and the
Faust agents). A lane that stopped while the process stayed up would be the worst state: the
metrics answer, the lag reads 0, and nothing is decided. So every lane is watched, and when one
ends without being asked to (an error the lane could not handle: transient broker errors are
retried inside the lanes, bad input is dead-lettered), the process exits with status 70 at once.
A supervisor (compose ``restart:``, Kubernetes, systemd) starts it again, and its consumer
groups read again what it had not committed: nothing is lost, because offsets are committed
only after what they led to is acknowledged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from streams import metrics
from streams.health import HEALTH

log = logging.getLogger(__name__)

EXIT_LANE_FAILED = 70  # EX_SOFTWARE: an internal error; distinct from 1, a stop past its deadline

_stopping = False


def stopping() -> None:
    """The worker was told to stop: lanes that end now end on purpose."""
    global _stopping
    _stopping = True


def watch(task: asyncio.Task[Any], lane: str) -> None:
    """Exit the process when ``task`` (the lane ``lane``) ends while the worker is not stopping."""
    metrics.LANE_UP.labels(lane).set(1)
    HEALTH.lanes[lane] = lambda: not task.done()
    task.add_done_callback(lambda t: _ended(t, lane))


def _ended(task: asyncio.Task[Any], lane: str) -> None:
    metrics.LANE_UP.labels(lane).set(0)
    if _stopping and (task.cancelled() or task.exception() is None):
        return
    if task.cancelled():
        fail(lane, "cancelled")
    exc = task.exception()
    fail(lane, exc if exc is not None else "ended without being asked to stop")


def crash_only(agent: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """A Faust agent whose error stops the worker: Faust's own supervisor would restart the agent
    past the record it failed on, neither processed nor dead-lettered."""
    @functools.wraps(agent)
    async def run(stream: Any) -> None:
        try:
            await agent(stream)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            fail("agents", e)

    return run


def watch_app(app: Any) -> None:
    """The Faust app's agents count as the lane ``agents`` (their errors come through
    ``crash_only``; a crash of the app's own services through ``check_app``)."""
    metrics.LANE_UP.labels("agents").set(1)
    HEALTH.lanes["agents"] = lambda: not any(s.crashed for s in _services(app))


def check_app(app: Any) -> None:
    """A Faust service that crashed (the app, its consumer, its producer) stops the worker too."""
    for service in _services(app):
        if service.crashed and not _stopping:
            fail("agents", service.crash_reason or f"{type(service).__name__} crashed")


def _services(app: Any) -> tuple[Any, ...]:
    return (app, app.consumer, app.producer)


def fail(lane: str, why: BaseException | str) -> None:
    """One line on the log, then exit 70 at once (no clean stop: the state is suspect, and
    nothing uncommitted is lost)."""
    where = ""
    if isinstance(why, BaseException) and why.__traceback__ is not None:
        frame = traceback.extract_tb(why.__traceback__)[-1]
        where = f" (at {os.path.relpath(frame.filename)}:{frame.lineno} in {frame.name})"
    line = (f"lane {lane} failed: {why!r}{where}; exiting with status {EXIT_LANE_FAILED} so the "
            "supervisor restarts the worker (records not committed are read again)")
    metrics.LANE_UP.labels(lane).set(0)
    log.critical(line)
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.flush()
    if not handlers:  # (no logging set up: the line must still be seen)
        sys.__stderr__.write(f"zt worker: {line}\n")
        sys.__stderr__.flush()
    os._exit(EXIT_LANE_FAILED)
