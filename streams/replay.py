"""The offline driver: a contract replay file in, warning tasks and dead letters out.

It runs the same ``Core`` as the workers, in event time, so the same records give the same
tasks, byte for byte. Malformed lines of any kind are rejected with a reason into the
dead-letter file and never stop the run.
"""

from __future__ import annotations

import contextlib
import gzip
import multiprocessing
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from streams import contract
from streams.core import Core, CoreConfig
from streams.heap import long_lived_heap
from streams.ladder import LadderStats
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
    jobs: int = 1,
) -> ReplaySummary:
    """Replay ``events`` through the core; write tasks to ``out`` and rejects to ``dead_letter``.

    ``ruleset`` and ``scorer`` are those the workers would use (``None``: the built-in first
    decision path and no model); ``batch`` only changes how often the core scores, never what.

    ``jobs`` > 1 splits the persons between that many processes, as worker processes split the
    person stage's partitions: each job reads every record and keeps every line and account (the
    entity stage is a fifth of the work), but decides only its own persons. Tasks are written in
    the order of their creation time, then id, so any number of jobs writes the same bytes."""
    dead_letter = dead_letter or out.with_name(out.name.removesuffix(".jsonl") + ".dead-letter.jsonl")
    open_events(events).close()  # a file that cannot be read fails here, with its reason
    started = time.perf_counter()
    job = _Job(events, dead_letter, config, ruleset, scorer, batch, max(jobs, 1))
    parts = [job.run(0, progress)] if job.jobs == 1 else _run_jobs(job, progress)
    first = parts[0]  # every job read every line; the first also wrote the dead letters
    summary = first.read
    summary.dead_letter_path, summary.tasks_path = dead_letter, out
    summary.duplicates = first.entity_duplicates + sum(p.decider_duplicates for p in parts)
    summary.late = first.entity_late + sum(p.decider_late for p in parts)
    stats = LadderStats()
    for p in parts:
        for key, value in p.counts.items():
            stats.counts[key] = stats.counts.get(key, 0.0) + value
    summary.figures = figures(stats)
    tasks = sorted(t for p in parts for t in p.tasks)
    with out.open("wb") as f:
        for _, _, action, line in tasks:
            f.write(line)
            summary.tasks[action] += 1
    review = sorted((case for p in parts for case in p.review),
                    key=lambda c: (c["first_warning"], c["person_id"]))
    if review:
        summary.review_path = out.with_name(out.name.removesuffix(".jsonl") + ".review.jsonl")
        with summary.review_path.open("wb") as f:
            for case in review:
                f.write(dumps(case) + b"\n")
    summary.seconds = time.perf_counter() - started
    if progress:
        progress(summary.lines)
    return summary


@dataclass
class _Part:
    """What one replay job found: its tasks (sort key and line), and its counters."""

    tasks: list[tuple[int, str, str, bytes]] = field(default_factory=list)
    read: ReplaySummary = field(default_factory=ReplaySummary)  # lines, records, rejects
    entity_duplicates: int = 0
    entity_late: int = 0
    decider_duplicates: int = 0
    decider_late: int = 0
    counts: dict[tuple[str, tuple[str, ...]], float] = field(default_factory=dict)
    review: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Job:
    events: Path
    dead_letter: Path
    config: CoreConfig | None
    ruleset: Any
    scorer: Any
    batch: int
    jobs: int

    def run(self, k: int, progress: Callable[[int], None] | None = None) -> _Part:
        """Job ``k`` of ``jobs``: every record through the first two stages, the persons whose
        bucket is ``k`` through the third."""
        with long_lived_heap():
            return self._run(k, progress)

    def _run(self, k: int, progress: Callable[[int], None] | None) -> _Part:
        core = Core(self.config, ruleset=self.ruleset, scorer=self.scorer, batch=self.batch,
                    owns=None if self.jobs == 1 else (lambda person: bucket(person, self.jobs) == k))
        part = _Part()
        read = part.read
        last_time = EPOCH_TEXT  # replay's "received" clock is the stream's own event time

        def emit(tasks: list) -> None:
            for task in tasks:
                rec = task.to_record()
                contract.validate("warning-tasks", rec)  # a bug, not bad input, if it fails
                part.tasks.append((task.created_ms, rec["task_id"], rec["action"],
                                   dumps(rec) + b"\n"))

        with contextlib.ExitStack() as stack:
            dl_out = stack.enter_context(self.dead_letter.open("wb")) if k == 0 else None
            for line in read_lines(self.events):
                read.lines += 1
                if progress and read.lines % 20_000 == 0:
                    progress(read.lines)
                if line.reason is not None:
                    read.rejected[line.topic] += 1
                    read.reasons[contract.reason_class(line.reason)] += 1
                    if dl_out is not None:
                        dl_out.write(dumps({
                            "reason": line.reason, "topic": line.topic,
                            "raw": line.raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace"),
                            "received_time": last_time,
                        }) + b"\n")
                    continue
                value = line.value
                assert value is not None
                read.records[line.topic] += 1
                last_time = value["event_time"]
                emit(core.feed(line.topic, value))
            emit(core.finish())
        part.entity_duplicates, part.entity_late = core.entities.duplicates, core.entities.buffer.late
        part.decider_duplicates = core.decider.stats.duplicates
        part.decider_late = core.decider.buffer.late
        part.counts = dict(core.decider.ladder.stats.counts)
        part.review = core.decider.ladder.review
        return part


def bucket(person_id: str, jobs: int) -> int:
    """A person's job: a stable hash (Python's own ``hash`` of a str differs between processes)."""
    return zlib.crc32(person_id.encode()) % jobs


# The job to run, inherited by forked processes (a rule set or a model need not be pickled).
_FORKED: _Job | None = None
_PROGRESS: Any = None


def _forked(k: int) -> _Part:
    assert _FORKED is not None
    report = None
    if k == 0 and _PROGRESS is not None:
        def report(n: int) -> None:
            _PROGRESS.value = n
    return _FORKED.run(k, report)


def _run_jobs(job: _Job, progress: Callable[[int], None] | None) -> list[_Part]:
    global _FORKED, _PROGRESS
    ctx = multiprocessing.get_context("fork")
    _FORKED, _PROGRESS = job, ctx.Value("q", 0)
    try:
        with ctx.Pool(job.jobs) as pool:
            result = pool.map_async(_forked, range(job.jobs))
            while not result.ready():
                result.wait(0.25)
                if progress and _PROGRESS.value:
                    progress(_PROGRESS.value)
            return result.get()
    finally:
        _FORKED = _PROGRESS = None


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

