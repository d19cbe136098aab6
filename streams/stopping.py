"""A worker that stops within a deadline.

Faust stops a worker on SIGTERM or Ctrl-C by stopping its services in turn. With the broker
gone, its consumer thread keeps waiting in aiokafka's fetch retries and the stop never ends: a
worker under a process supervisor (systemd, Kubernetes, ``zt demo``) would hang until killed.
So once told to stop, a worker exits after ``stop_timeout_s`` whatever is still waiting, and
says so. Nothing is lost by it: what the worker has not committed, its group reads again. A
second signal while stopping exits at once, as operators expect of a second Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

import faust

from streams import supervisor
from streams.settings import DEFAULT_STOP_TIMEOUT_S

log = logging.getLogger(__name__)

EXIT_NOT_STOPPED = 1


class Worker(faust.Worker):
    """``faust.Worker`` with a deadline on stopping (0: wait for ever, as Faust does)."""

    def __init__(self, *args: Any, stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.stop_timeout_s = stop_timeout_s

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        name = signal.Signals(signum).name
        if self._signal_stop_time:
            exit_now(f"{name} again while stopping: exiting without a clean stop")
        supervisor.stopping()  # lanes that end from now on end on purpose
        super()._schedule_shutdown(signum)
        if self.stop_timeout_s > 0:
            timer = threading.Timer(self.stop_timeout_s, exit_now, args=(
                f"not stopped {self.stop_timeout_s:g} s after {name}: exiting without a clean "
                "stop (is the broker reachable?); records not committed will be read again",))
            timer.daemon = True  # a clean stop ends the process without waiting for it
            timer.start()


def exit_now(message: str) -> None:
    """Leave the process at once (the thread that would have to finish is the stuck one)."""
    log.error(message)
    sys.stderr.write(f"zt worker: {message}\n")
    sys.stderr.flush()
    os._exit(EXIT_NOT_STOPPED)
