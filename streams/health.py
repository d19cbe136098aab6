"""A worker's health, for supervisors and load balancers: ``/healthz`` and ``/readyz`` beside
``/metrics`` on the metrics port.

* **alive** (``/healthz``): every lane runs and the event loop turns (a loop stuck for
  ``LOOP_STALL_S`` is as dead as a lane). A supervisor restarts a worker that is not alive.
* **ready** (``/readyz``): alive, the broker answers, and the global tables (registry, watch
  lists) are loaded. Not ready while the broker is away: restarting would not help, waiting does.

Both answer 200 or 503 with a JSON body saying what is wrong. They are served from a thread, so
they answer while the event loop is busy with a batch.

>>> h = Health(); h.lanes["ingest"] = lambda: True; h.beat()
>>> h.live()[0], h.ready()[0], h.ready()[1]["broker_reachable"]
(True, False, False)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import make_wsgi_app

from streams import metrics

log = logging.getLogger(__name__)

LOOP_STALL_S = 30.0  # a batch takes well under a second; an event loop silent this long is stuck
PROBE_EVERY_S = 1.0


class Health:
    """What the worker's lanes, broker probe and global tables last said (read from the HTTP
    thread; each value is one attribute, written by the event loop)."""

    def __init__(self) -> None:
        self.lanes: dict[str, Callable[[], bool]] = {}  # lane -> running now
        self.broker_up = False
        self.tables_loaded = False
        self._beat = 0.0  # monotonic time the event loop last turned

    def beat(self) -> None:
        self._beat = time.monotonic()

    def live(self) -> tuple[bool, dict[str, Any]]:
        down = sorted(name for name, running in self.lanes.items() if not running())
        stalled = time.monotonic() - self._beat
        ok = bool(self.lanes) and not down and stalled < LOOP_STALL_S
        return ok, {"lanes": sorted(self.lanes), "lanes_down": down,
                    "event_loop_silent_s": round(stalled, 1)}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        alive, detail = self.live()
        detail |= {"alive": alive, "broker_reachable": self.broker_up,
                   "global_tables_loaded": self.tables_loaded}
        return alive and self.broker_up and self.tables_loaded, detail


HEALTH = Health()  # the process's own


async def probe_broker(client: Any, every_s: float = PROBE_EVERY_S) -> None:
    """Ask the broker for its metadata every ``every_s`` (on an existing connection of
    ``client``, an ``AIOKafkaClient``), and keep the event loop's heartbeat. Runs until
    cancelled."""
    known = False
    while True:
        HEALTH.beat()
        try:
            await asyncio.wait_for(client.fetch_all_metadata(), timeout=max(every_s * 3, 2.0))
            up = True
        except Exception:  # unreachable, or not answering: said by the gauge and the alert
            up = False
        if up != HEALTH.broker_up and (known or not up):
            (log.warning if up else log.error)(
                "broker %s", "reachable again" if up else "not reachable (retrying; /readyz says 503)")
        known = True
        HEALTH.broker_up = up
        metrics.BROKER_UP.set(1 if up else 0)
        HEALTH.beat()
        await asyncio.sleep(every_s)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """/healthz, /readyz, and everything else as prometheus_client serves /metrics."""
    path = environ.get("PATH_INFO", "")
    if path in ("/healthz", "/readyz"):
        ok, detail = HEALTH.live() if path == "/healthz" else HEALTH.ready()
        body = orjson.dumps({"ok": ok, **detail})
        start_response("200 OK" if ok else "503 Service Unavailable",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    return _metrics(environ, start_response)


_metrics = make_wsgi_app()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # a scrape a second is no news
        pass


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``app`` on ``host:port`` from a daemon thread (OSError if the port is taken)."""
    import threading

    server = make_server(host, port, app, _Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="zt-health", daemon=True).start()
