"""Worker processes started and watched from Python: for ``zt demo``, ``zt bench`` and tests."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streams.broker import dies_with, free_port


class WorkerProcess:
    """A real ``zt worker`` subprocess; its log goes to ``log``."""

    def __init__(self, bootstrap: str, log: Path, group: str = "zt", metrics_port: int = 0,
                 args: tuple[str, ...] = (), prelude: str = ""):
        """``prelude``: Python run in the worker process before ``zt worker`` starts (fault
        tests use it to break a part of the real worker)."""
        self.metrics_port = metrics_port or free_port()
        self.log = log
        start = ["-c", f"{prelude}\nfrom streams.cli import main\nmain()"] if prelude else [
            "-m", "streams.cli"]
        self.proc = subprocess.Popen(
            [sys.executable, *start, "worker", "--bootstrap", bootstrap,
             "--metrics-port", str(self.metrics_port), "--loglevel", "info", "--group", group,
             *args],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            # (killed with whoever started it, even by kill -9: an interrupted benchmark or test
            # run left workers running for an hour; start it from the main thread, as the broker)
            preexec_fn=functools.partial(dies_with, os.getpid()),
        )

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def health(self, path: str = "/readyz") -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of the worker's ``/healthz`` or ``/readyz``."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}",
                                        timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        text = urllib.request.urlopen(self.metrics_url, timeout=2).read().decode()
        return [(s.name, s.labels, s.value)
                for fam in text_string_to_metric_families(text) for s in fam.samples]

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(v for n, lab, v in self.samples()
                   if n == name and all(lab.get(k) == x for k, x in labels.items()))

    def wait_metric(self, name: str, at_least: float, timeout: float = 20.0, **labels: str) -> float:
        deadline = time.monotonic() + timeout
        while True:
            value = self.metric(name, **labels)
            if value >= at_least:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}{labels or ''} stayed at {value} < {at_least}")
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Ready when the global tables are loaded and both consumer groups have partitions."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.tail()}")
            text = self.log.read_text(errors="replace")
            if text.count("Setting newly assigned partitions") >= 2 and "global tables loaded" in text:
                return
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready in {timeout:.0f} s:\n{self.tail()}")

    def tail(self, n: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
