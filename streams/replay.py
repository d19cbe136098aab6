"""The offline driver: a contract replay file in, warning tasks and dead letters out.

It runs the same ``Core`` as the workers, in event time, so the same records give the same
tasks, byte for byte. Malformed lines of any kind are rejected with a reason into the
dead-letter file and never stop the run.
"""

from __future__ import annotations

import gzip
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from streams import contract
from streams.core import Core, CoreConfig
from streams.heap import long_lived_heap
from streams.tasks import dumps

EPOCH_TEXT = "1970-01-01T00:00:00Z"


class ReplayError(RuntimeError):
    """The replay file cannot be read at all (a bad line is not this: it is dead-lettered)."""


@dataclass
class ReplaySummary:
    records: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    tasks: Counter[str] = field(default_factory=Counter)
    lines: int = 0
    duplicates: int = 0
    late: int = 0
    seconds: float = 0.0
    dead_letter_path: Path | None = None
    tasks_path: Path | None = None
    review_path: Path | None = None
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def records_per_s(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


def open_events(path: Path) -> IO[bytes]:
    """Open a replay file (plain or .gz) or raise ReplayError with a message a person can act on."""
    try:
        if path.is_dir():
            raise ReplayError(f"{path} is a directory, not a replay file")
        raw = path.open("rb")
        if path.suffix == ".gz":
            return gzip.open(raw)  # type: ignore[return-value]
        return raw
    except FileNotFoundError:
        raise ReplayError(f"replay file {path} does not exist") from None
    except PermissionError:
        raise ReplayError(f"replay file {path} cannot be read: permission denied") from None
    except OSError as e:
        raise ReplayError(f"replay file {path} cannot be read: {e.strerror or e}") from None


def parse_line(line: bytes, lineno: int) -> tuple[str, Any, str | None]:
    """(topic, value, reason): reason is None when the envelope is well formed."""
    try:
        env = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return "unknown", None, f"replay line {lineno}: not JSON: {e}"
    if not isinstance(env, dict):
        return "unknown", None, f"replay line {lineno}: must be an object with topic and value"
    topic = env.get("topic")
    if not isinstance(topic, str) or topic not in contract.INPUT_TOPICS:
        shown = topic if isinstance(topic, str) else repr(topic)
        return ("unknown", None,
                f"replay line {lineno}: topic {shown} is not an input topic of the contract")
    value = env.get("value")
    if not isinstance(value, dict):
        return topic, None, f"{topic}: replay line {lineno}: value must be a JSON object"
    return topic, value, None


@dataclass(slots=True)
class ReplayLine:
    """One non-blank line of a replay file: its record when valid, else why not."""

    lineno: int
    raw: bytes
    topic: str
    value: dict[str, Any] | None
    reason: str | None


def read_lines(events: Path) -> Iterator[ReplayLine]:
    """Every non-blank line of a replay file, parsed and checked against the contract.

    The one reader of replay files: replay, training and backtests see the same records.
    Raises ReplayError when the file cannot be read at all; a bad line is a reason, not an error.
    """
    src = open_events(events)
    try:
        with src:
            for lineno, raw in enumerate(_lines(src, events), start=1):
                if not raw.strip():
                    continue
                topic, value, reason = parse_line(raw, lineno)
                if reason is None:
                    try:
                        contract.validate(topic, value)
                    except contract.ContractError as e:
                        reason = f"{e.reason} (replay line {lineno})"
                yield ReplayLine(lineno, raw, topic, value if reason is None else None, reason)
    except OSError as e:
        raise ReplayError(f"reading {events} failed: {e.strerror or e}") from None


def replay(
    events: Path,
    out: Path,
    dead_letter: Path | None = None,
    config: CoreConfig | None = None,
    progress: Callable[[int], None] | None = None,
    ruleset: Any = None,
    scorer: Any = None,
    batch: int = 1024,
) -> ReplaySummary:
    """Replay ``events`` through the core; write tasks to ``out`` and rejects to ``dead_letter``.

    ``ruleset`` and ``scorer`` are those the workers would use (``None``: the built-in first
    decision path and no model); ``batch`` only changes how often the core scores, never what."""
    dead_letter = dead_letter or out.with_name(out.name.removesuffix(".jsonl") + ".dead-letter.jsonl")
    summary = ReplaySummary(dead_letter_path=dead_letter, tasks_path=out)
    with long_lived_heap():
        return _replay(events, out, dead_letter, summary, Core(config, ruleset=ruleset,
                                                                scorer=scorer, batch=batch), progress)


def _replay(events: Path, out: Path, dead_letter: Path, summary: ReplaySummary, core: Core,
            progress: Callable[[int], None] | None) -> ReplaySummary:
    started = time.perf_counter()
    last_time = EPOCH_TEXT  # replay's "received" clock is the stream's own event time
    with out.open("wb") as tasks_out, dead_letter.open("wb") as dl_out:
        def emit(tasks: list) -> None:
            for task in tasks:
                rec = task.to_record()
                contract.validate("warning-tasks", rec)  # a bug, not bad input, if it fails
                tasks_out.write(dumps(rec) + b"\n")
                summary.tasks[rec["action"]] += 1

        for line in read_lines(events):
            summary.lines += 1
            if progress and summary.lines % 20_000 == 0:
                progress(summary.lines)
            if line.reason is not None:
                summary.rejected[line.topic] += 1
                summary.reasons[contract.reason_class(line.reason)] += 1
                dl_out.write(dumps({
                    "reason": line.reason, "topic": line.topic,
                    "raw": line.raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace"),
                    "received_time": last_time,
                }) + b"\n")
                continue
            value = line.value
            assert value is not None
            summary.records[line.topic] += 1
            last_time = value["event_time"]
            emit(core.feed(line.topic, value))
        emit(core.finish())
    summary.duplicates = core.duplicates
    summary.late = core.late
    summary.figures = figures(core.decider.ladder.stats)
    ladder = core.decider.ladder
    if ladder.review:
        summary.review_path = out.with_name(out.name.removesuffix(".jsonl") + ".review.jsonl")
        with summary.review_path.open("wb") as f:
            for case in ladder.review:
                f.write(dumps(case) + b"\n")
    summary.seconds = time.perf_counter() - started
    if progress:
        progress(summary.lines)
    return summary


def figures(stats: Any) -> dict[str, float]:
    """The figures the users report (DOMAIN.md), from the ladder's counters."""
    def total(name: str, **match: str) -> float:
        return sum(v for (n, labels), v in stats.counts.items() if n == name
                   and all(x in labels for x in match.values()))

    out: dict[str, float] = {
        "warnings": total("warnings"),
        "calls": total("warnings", action="call"),
        "visits": total("warnings", action="visit"),
        "holds": total("warnings", action="hold"),
        "stop_payments": total("warnings", action="stop_payment"),
        "hold_requested_cny": total("funds_fen", kind="hold_requested") / 100,
        "stop_requested_cny": total("funds_fen", kind="stop_payment_requested") / 100,
        "held_cny": total("funds_fen", kind="held") / 100,
        "stopped_cny": total("funds_fen", kind="stopped") / 100,
        "warned_persons": total("warned_persons"),
        "sla_breaches": total("sla_breaches"),
        "defrauded_after_warning": total("defrauded_after_warning"),
        "case_reports": total("case_reports"),
        "case_losses_cny": total("case_losses_fen") / 100,
    }
    for window in ("24h", "72h"):
        judged = total("zero_transfer_judged", window=window)
        out[f"zero_transfer_rate_{window}"] = (total("zero_transfer_kept", window=window) / judged
                                              if judged else float("nan"))
        out[f"zero_transfer_judged_{window}"] = judged
    return out


def _lines(src: IO[bytes], path: Path) -> Iterator[bytes]:
    try:
        yield from src
    except (EOFError, gzip.BadGzipFile) as e:
        raise ReplayError(f"{path} is not a readable gzip file: {e}") from None

