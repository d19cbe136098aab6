"""Progress of long commands: a live bar on a terminal, a line every few seconds in a log.

Every long command (``zt simulate``, ``replay``, ``train``, ``evaluate``, ``rules test``,
``demo``) reports through ``progress``: on a terminal a rich bar that disappears when done; when
its output goes to a file or a pipe (a CI log, ``nohup``), one plain line when it starts, one
every ``every_s`` seconds and one when it ends, so a log shows the work is alive and how far.

>>> import io
>>> from rich.console import Console
>>> log = Console(file=io.StringIO(), width=100)
>>> with progress("replay", "lines", console=log, every_s=0) as bar:
...     bar.update(20_000, note="calls 12,000")
...     bar.update(40_000, total=40_000)
>>> print(log.file.getvalue().strip())
replay: started
replay: 20,000 lines, calls 12,000 (0 s)
replay: 40,000 of 40,000 lines (100%), calls 12,000 (0 s)
replay: done, 40,000 of 40,000 lines (100%), calls 12,000 (0 s)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

EVERY_S = float(os.environ.get("ZT_PROGRESS_EVERY_S", "10"))  # a log's line interval


class Bar:
    """``update(done, total=None, note="")``: how far (``total`` may come late or never);
    ``step(what)``: a new step begins."""

    def __init__(self, label: str, unit: str, console: Console, every_s: float,
                 live: Progress | None):
        self.label, self.unit, self.console, self.every_s = label, unit, console, every_s
        self.live = live
        self.job = live.add_task(label, total=None) if live is not None else None
        self.done: float = 0
        self.total: float | None = None
        self.note = ""
        self.started = time.monotonic()
        self._said = -float("inf")

    def update(self, done: float, total: float | None = None, note: str = "") -> None:
        self.done = done
        if total is not None:
            self.total = total
        if note:
            self.note = note
        if self.live is not None and self.job is not None:
            self.live.update(self.job, completed=done, total=self.total,
                             description=f"{self.label} {self.note}".strip())
        elif self.every_s < float("inf") and time.monotonic() - self._said >= self.every_s:
            self._say(self.where())

    def step(self, what: str) -> None:
        """A new step of the work begins (said at once in a log: steps can be long)."""
        self.note = what
        if self.live is not None and self.job is not None:
            self.live.update(self.job, description=f"{self.label} {what}")
        elif self.every_s < float("inf"):
            self._say(self.where())

    def where(self) -> str:
        if self.total:
            text = (f"{self.done:,.0f} of {self.total:,.0f} {self.unit} "
                    f"({self.done / self.total:.0%})")
        else:
            text = f"{self.done:,.0f} {self.unit}"
        return f"{text}, {self.note}" if self.note else text

    def _say(self, text: str) -> None:
        self._said = time.monotonic()
        self.console.print(f"{self.label}: {text} ({self._said - self.started:.0f} s)",
                           soft_wrap=True, highlight=False, markup=False)


@contextmanager
def progress(label: str, unit: str = "", console: Console | None = None, quiet: bool = False,
             every_s: float | None = None) -> Iterator[Bar]:
    """A progress report for one long step: a bar on a terminal, lines in a log, nothing when
    ``quiet``."""
    con = console or Console(stderr=True)
    every = EVERY_S if every_s is None else every_s
    if quiet:
        yield Bar(label, unit, con, float("inf"), None)
        return
    if con.is_terminal:
        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                      TextColumn(f"{{task.completed:,.0f}} {unit}"), TimeElapsedColumn(),
                      console=con, transient=True) as live:
            yield Bar(label, unit, con, every, live)
        return
    bar = Bar(label, unit, con, every, None)
    con.print(f"{label}: started", soft_wrap=True, highlight=False, markup=False)
    bar._said = time.monotonic()
    yield bar
    bar._say(f"done, {bar.where()}")


def wide(console: Console) -> Console:
    """A console for tables: on a terminal its own width; in a log or a pipe wide enough that
    no number in a table is ever cut."""
    if console.is_terminal:
        return console
    return Console(file=console.file, width=max(console.width, 200), stderr=console.stderr)
