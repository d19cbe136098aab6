"""The offline driver: a contract replay file in, warning tasks and dead letters out.

It runs the same ``Core`` as the workers, in event time, so the same records give the same
tasks, byte for byte. Malformed lines of any kind are rejected with a reason into the
dead-letter file and never stop the run.
"""

from __future__ import annotations

import contextlib
import gzip
import marshal
import multiprocessing
import os
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from streams import contract
from streams.core import Core, CoreConfig, PersonSide, StageEvent
from streams.eventtime import to_ms
from streams.heap import replay_heap
from streams.ladder import LadderStats
from streams.reference import Reference
from streams.tasks import WarningTask, dumps

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


_INPUT_TOPICS = frozenset(contract.INPUT_TOPICS)
DAY_MS = 86_400_000


def span_days(path: Path, probe: int = 1 << 16) -> float | None:
    """Days between the first and the last record of a plain replay file, from a look at its
    head and tail (a file in event-time order, as the simulator writes it); None when it cannot
    tell cheaply (gzip, no valid time in either end). For the checks a command makes before a
    long pass: a file shorter than a warm-up."""
    if path.suffix == ".gz":
        return None
    try:
        with path.open("rb") as f:
            head = f.read(probe)
            f.seek(max(f.seek(0, os.SEEK_END) - probe, 0))
            tail = f.read(probe)
    except OSError:
        return None

    def times(chunk: bytes) -> list[int]:
        out = []
        for line in chunk.splitlines()[1:-1] or chunk.splitlines():
            try:
                out.append(to_ms(orjson.loads(line)["value"]["event_time"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        return out

    first, last = times(head), times(tail)
    if not first or not last:
        return None
    return (max(last) - min(first)) / DAY_MS


def parse_line(line: bytes, lineno: int) -> tuple[str, Any, str | None]:
    """(topic, value, reason): reason is None when the envelope is well formed."""
    try:
        env = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return "unknown", None, f"replay line {lineno}: not JSON: {e}"
    if not isinstance(env, dict):
        return "unknown", None, f"replay line {lineno}: must be an object with topic and value"
    topic = env.get("topic")
    if not isinstance(topic, str) or topic not in _INPUT_TOPICS:
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
    for lineno, raw, topic, value, reason in _checked_lines(events):
        yield ReplayLine(lineno, raw, topic, value, reason)


def _checked_lines(events: Path) -> Iterator[tuple[int, bytes, str, dict[str, Any] | None, str | None]]:
    """``read_lines`` as plain tuples (lineno, raw, topic, value, reason), for replay's own loop."""
    src = open_events(events)
    validate, ContractError = contract.validate, contract.ContractError
    lineno = 0
    try:
        with src:
            for chunk in _chunks(src, events):
                for raw in chunk:
                    lineno += 1
                    if raw.isspace() or not raw:  # as ``not raw.strip()``, without a copy
                        continue
                    topic, value, reason = parse_line(raw, lineno)
                    if reason is None:
                        try:
                            validate(topic, value)
                        except ContractError as e:
                            yield lineno, raw, topic, None, f"{e.reason} (replay line {lineno})"
                            continue
                    yield lineno, raw, topic, value, reason
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

    ``jobs`` > 1 runs the stages in that many processes, as a pipeline: this one reads,
    validates, routes and keeps the lines and accounts; the other ``jobs - 1`` decide, each for
    its share of the persons (as worker processes split the person stage's partitions), fed
    through a pipe with the very calls a one-process core makes. Tasks are written in the order
    of their creation time, then id, so any number of jobs writes the same bytes."""
    dead_letter = dead_letter or out.with_name(out.name.removesuffix(".jsonl") + ".dead-letter.jsonl")
    open_events(events).close()  # a file that cannot be read fails here, with its reason
    started = time.perf_counter()
    job = _Job(events, dead_letter, config, ruleset, scorer, batch)
    if jobs <= 1:
        front = _Part()
        with replay_heap():
            core = job.core()
            job.read(core, front, progress)
            job.decided(core.person, front)
        parts = [front]
    else:
        front, behind = _run_pipeline(job, jobs - 1, progress)
        parts = [front, *behind]
    summary = front.read
    summary.dead_letter_path, summary.tasks_path = dead_letter, out
    summary.duplicates = sum(p.entity_duplicates + p.decider_duplicates for p in parts)
    summary.late = sum(p.entity_late + p.decider_late for p in parts)
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
    """What one process of a replay found: its tasks (sort key and line), and its counters."""

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

    def core(self, person: Any = None) -> Core:
        return Core(self.config, ruleset=self.ruleset, scorer=self.scorer, batch=self.batch,
                    person=person)

    def person_side(self) -> PersonSide:
        return PersonSide(Reference(), self.config, ruleset=self.ruleset, scorer=self.scorer,
                          batch=self.batch)

    def read(self, core: Core, part: _Part, progress: Callable[[int], None] | None) -> None:
        """Every line through the core: dead letters written, tasks (if decided here) kept."""
        read = part.read
        last_time = EPOCH_TEXT  # replay's "received" clock is the stream's own event time
        n = 0
        records: dict[str, int] = {}
        feed = core.feed
        remote = isinstance(core.person, PersonPipe)  # then the person stage reads the raw line
        source = None
        with self.dead_letter.open("wb") as dl_out:
            for _, raw, topic, value, reason in _checked_lines(self.events):
                n += 1
                if progress and n % 20_000 == 0:
                    read.lines = n
                    progress(n)
                if reason is not None:
                    read.rejected[topic] += 1
                    read.reasons[contract.reason_class(reason)] += 1
                    dl_out.write(dumps({
                        "reason": reason, "topic": topic,
                        "raw": raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace"),
                        "received_time": last_time,
                    }) + b"\n")
                    continue
                records[topic] = records.get(topic, 0) + 1
                last_time = value["event_time"]  # type: ignore[index]
                if remote:
                    source = raw
                tasks = feed(topic, value, source)  # type: ignore[arg-type]
                if tasks:
                    _keep(part, tasks)
            _keep(part, core.finish())
        read.lines = n
        read.records.update(records)
        part.entity_duplicates, part.entity_late = core.entities.duplicates, core.entities.buffer.late

    @staticmethod
    def decided(person: PersonSide, part: _Part) -> None:
        """The person stage's counters, once the stream has ended."""
        part.decider_duplicates = person.decider.stats.duplicates
        part.decider_late = person.decider.buffer.late
        part.counts = dict(person.decider.ladder.stats.counts)
        part.review = person.decider.ladder.review


def _keep(part: _Part, tasks: list[WarningTask]) -> None:
    for task in tasks:
        rec = task.to_record()
        contract.validate("warning-tasks", rec)  # a bug, not bad input, if it fails
        part.tasks.append((task.created_ms, rec["task_id"], rec["action"], dumps(rec) + b"\n"))


def default_jobs() -> int:
    """2 where this process may use two CPUs or more, else 1.

    The front (reading, validation, lines and accounts) is the pipeline's bottleneck, so a
    third process adds memory, not speed: measured on 2 cores, 3 jobs ran at two thirds of
    the speed of 2."""
    return 2 if len(os.sched_getaffinity(0)) >= 2 else 1


def bucket(person_id: str, jobs: int) -> int:
    """A person's job: a stable hash (Python's own ``hash`` of a str differs between processes)."""
    return zlib.crc32(person_id.encode()) % jobs


# --- the pipeline: one front process, person processes behind it ---------------------------------

OPS_PER_MESSAGE = 2048
# Between our own processes of one interpreter, marshal carries the plain tuples, dicts and
# strings of the wire at a fraction of pickle's cost, and still writes a record shared by two
# events (a call's callee and caller) once.
MARSHAL_VERSION = 4


def _wired(events: Iterable[StageEvent]) -> list[tuple[Any, ...]]:
    """Events as the person process reads them (``_Values.event``).

    The record as read when there is one: bytes cost marshal a copy, where the parsed value
    cost it a walk of every field (it was most of what the pipe cost the front)."""
    return [(ev.topic, ev.key, ev.role, ev.source if ev.source is not None else ev.value,
             ev.t_ms, ev.avail_ms, ev.offset_min, ev.snap) for ev in events]


class _Values:
    """The person process's side of ``_wired``: records sent as read are parsed again, once per
    message even when two events share one (the objects of one message are distinct)."""

    def __init__(self) -> None:
        self._parsed: dict[int, dict[str, Any]] = {}

    def new_message(self) -> None:
        self._parsed.clear()  # ids of the previous message's objects may be reused

    def value(self, sent: Any) -> dict[str, Any]:
        if type(sent) is not bytes:
            return sent  # type: ignore[no-any-return]
        value = self._parsed.get(id(sent))
        if value is None:
            value = self._parsed[id(sent)] = orjson.loads(sent)["value"]
        return value

    def event(self, w: tuple[Any, ...]) -> StageEvent:
        return StageEvent(w[0], w[1], w[2], self.value(w[3]), w[4], w[5], w[6], 0.0, w[7])


class PersonPipe:
    """The front's stand-in for the person stage: the calls a one-process core makes on its
    ``PersonSide``, recorded and sent in messages to person processes (each person's events to
    the process of its bucket, the rest to all). Decides nothing here, so returns no tasks."""

    reference = None  # its own: the front forwards registry and watch-list records

    def __init__(self, conns: list[Any]):
        self.conns = conns
        self.ops: list[list[tuple[Any, ...]]] = [[] for _ in conns]
        self._bucket: dict[str, int] = {}

    def apply(self, topic: str, value: dict[str, Any], source: bytes | None = None) -> None:
        sent = source if source is not None else value
        for ops in self.ops:
            ops.append(("r", topic, sent))
        self._flush_full()

    def step(self, t_ms: int, events: list[StageEvent]) -> list[WarningTask]:
        # Called once per record read: with one person process (the default) it takes one
        # call, for this plumbing was a tenth of the front's instructions.
        if len(self.conns) == 1:
            self._step(0, t_ms, _wired(events))
        else:
            for k, group in enumerate(self._split(events)):
                self._step(k, t_ms, _wired(group))
        return []

    def _split(self, events: list[StageEvent]) -> list[list[StageEvent]]:
        """Each person process's share of ``events``."""
        n = len(self.conns)
        mine: list[list[StageEvent]] = [[] for _ in range(n)]
        for ev in events:
            k = self._bucket.get(ev.key)
            if k is None:
                k = self._bucket[ev.key] = bucket(ev.key, n)
            mine[k].append(ev)
        return mine

    def _step(self, k: int, t_ms: int, wired: list[tuple[Any, ...]]) -> None:
        ops = self.ops[k]
        if wired or not ops or ops[-1][0] != "s" or ops[-1][2]:
            ops.append(("s", t_ms, wired))
            if len(ops) >= OPS_PER_MESSAGE:
                self._flush(k)
        else:  # time only moved on: one call will do
            ops[-1] = ("s", max(t_ms, ops[-1][1]), wired)

    def outcome(self, value: dict[str, Any], t_ms: int) -> list[WarningTask]:
        for ops in self.ops:  # only the process that sent the task finds its person
            ops.append(("x", value, t_ms))
        self._flush_full()
        return []

    def finish(self, events: list[StageEvent]) -> list[WarningTask]:
        for k, group in enumerate(self._split(events)):
            self.ops[k].append(("f", _wired(group)))
            self._flush(k)
        return []

    def _flush_full(self) -> None:
        for k, ops in enumerate(self.ops):
            if len(ops) >= OPS_PER_MESSAGE:
                self._flush(k)

    def _flush(self, k: int) -> None:
        try:
            self.conns[k].send_bytes(marshal.dumps(self.ops[k], MARSHAL_VERSION))
        except (BrokenPipeError, ConnectionResetError):
            raise _PipeBroken() from None
        self.ops[k] = []


class _PipeBroken(Exception):
    """A person process is gone: its own message says why."""


def _person_process(conn: Any, k: int, job: _Job) -> None:
    """A person process: the calls of the front, in order, on a real ``PersonSide``."""
    try:
        part = _Part()
        values = _Values()
        event = values.event
        with replay_heap():
            person = job.person_side()
            while True:
                ops = marshal.loads(conn.recv_bytes())
                values.new_message()
                for op in ops:
                    kind = op[0]
                    if kind == "s":
                        _keep(part, person.step(op[1], [event(w) for w in op[2]]))
                    elif kind == "r":
                        person.apply(op[1], values.value(op[2]))
                    elif kind == "x":
                        _keep(part, person.outcome(op[1], op[2]))
                    else:  # "f": the end of the stream
                        _keep(part, person.finish([event(w) for w in op[1]]))
                        job.decided(person, part)
                        conn.send(("ok", part))
                        conn.close()
                        # Gone at once: returning would free the whole person state object by
                        # object (~60 ms on the bench file) while the front waits to join us.
                        sys.stdout.flush()
                        sys.stderr.flush()
                        os._exit(0)
    except EOFError:  # the front stopped first (its own error is reported there)
        raise SystemExit(1) from None
    except BaseException as e:  # reported to the front, which raises it
        import traceback

        with contextlib.suppress(OSError):
            conn.send(("error", f"replay job {k + 1} failed: {e!r}\n{traceback.format_exc()}"))
        raise SystemExit(1) from None


def _run_pipeline(job: _Job, persons: int, progress: Callable[[int], None] | None
                  ) -> tuple[_Part, list[_Part]]:
    ctx = multiprocessing.get_context("fork")  # the rule set and model need not be pickled
    conns, procs = [], []
    try:
        for k in range(persons):
            ours, theirs = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_person_process, args=(theirs, k, job), daemon=True,
                               name=f"zt-replay-persons-{k + 1}")
            proc.start()
            theirs.close()
            conns.append(ours)
            procs.append(proc)
        front = _Part()
        with replay_heap():
            try:
                job.read(job.core(person=PersonPipe(conns)), front, progress)
            except _PipeBroken:
                raise _failure(conns) from None
        parts = []
        for k, conn in enumerate(conns):
            try:
                status, body = conn.recv()
            except EOFError:
                raise ReplayError(f"replay job {k + 1} died without a word") from None
            if status != "ok":
                raise ReplayError(body)
            parts.append(body)
        return front, parts
    finally:
        for conn in conns:
            conn.close()  # a person process still waiting for the stream sees its end
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def _failure(conns: list[Any]) -> ReplayError:
    """Why a person process stopped, as it said (or that it said nothing)."""
    for k, conn in enumerate(conns):
        try:
            if conn.poll(5):
                status, body = conn.recv()
                if status == "error":
                    return ReplayError(body)
        except (EOFError, OSError):
            return ReplayError(f"replay job {k + 1} died without a word")
    return ReplayError("a replay job stopped")


def figures(stats: Any) -> dict[str, float]:
    """The figures the users report (DOMAIN.md), from the ladder's counters (``LadderStats``:
    replay's own, or the workers', read back from their metrics). A rate nobody was judged for
    is None, not a number."""
    def total(name: str, **match: str) -> float:
        return sum(v for (n, labels), v in stats.counts.items() if n == name
                   and all(x in labels for x in match.values()))

    out: dict[str, float | None] = {
        "warnings": total("warnings"),
        "calls": total("warnings", action="call"),
        "visits": total("warnings", action="visit"),
        "holds": total("warnings", action="hold"),
        "stop_payments": total("warnings", action="stop_payment"),
        "hold_requested_cny": total("funds_fen", kind="hold_requested") / 100,
        "stop_requested_cny": total("funds_fen", kind="stop_payment_requested") / 100,
        "held_cny": total("funds_fen", kind="held") / 100,
        "stopped_cny": total("funds_fen", kind="stopped") / 100,
        "outcomes": total("outcomes"),
        "dissuaded": total("outcomes", result="dissuaded"),
        "visited": total("outcomes", result="visited"),
        "held": total("outcomes", result="held"),
        "stopped": total("outcomes", result="stopped"),
        "warned_persons": total("warned_persons"),
        "sla_breaches": total("sla_breaches"),
        "defrauded_after_warning": total("defrauded_after_warning"),
        "case_reports": total("case_reports"),
        "case_losses_cny": total("case_losses_fen") / 100,
    }
    for window in ("24h", "72h"):
        judged = total("zero_transfer_judged", window=window)
        out[f"zero_transfer_rate_{window}"] = (total("zero_transfer_kept", window=window) / judged
                                              if judged else None)
        out[f"zero_transfer_judged_{window}"] = judged
    return out  # type: ignore[return-value]


def describe_figures(f: dict[str, Any]) -> list[str]:
    """The users' figures in plain words, saying only what the records let one know."""
    from streams.ladder import Policy

    policy = Policy.load()
    if not f.get("warnings"):
        return ["no warning task: nobody was warned"]
    lines = [f"warned {f['warned_persons']:,.0f} people: {f['calls']:,.0f} dissuasion calls, "
             f"{f['visits']:,.0f} visits, {f['holds']:,.0f} holds ({f['hold_requested_cny']:,.0f} "
             f"CNY asked), {f['stop_payments']:,.0f} stop-payments ({f['stop_requested_cny']:,.0f} "
             "CNY asked)"]
    if f.get("outcomes"):
        lines.append(
            f"desks and banks answered {f['outcomes']:,.0f} tasks: {f['dissuaded']:,.0f} people "
            f"dissuaded on the phone, {f['visited']:,.0f} visited; {f['held']:,.0f} holds took effect "
            f"({f['held_cny']:,.0f} CNY held), {f['stopped']:,.0f} stop-payments "
            f"({f['stopped_cny']:,.0f} CNY stopped)")
    else:
        lines.append("no outcome in these records: nobody answered the tasks, so nothing is "
                     "known held or stopped, and unanswered calls escalated to visits")
    limits = ", ".join(f"{a.replace('_', '-')} {s // 60:g} min"
                       for a, s in policy.time_limits_s.items())
    lines.append(f"SLA breaches {f['sla_breaches']:,.0f}: tasks with no outcome by their due "
                 f"time ({limits})")
    grace = policy.confirmation_grace_hours
    for window in ("24h", "72h"):
        judged, rate = f[f"zero_transfer_judged_{window}"], f[f"zero_transfer_rate_{window}"]
        hours = int(window[:-1])
        if judged:
            lines.append(f"zero-transfer rate {window}: {rate:.3f} of {judged:,.0f} people judged "
                         f"(no transfer to a confirmed fraud account within {hours} h of their "
                         "first warning)")
        else:
            lines.append(f"zero-transfer rate {window}: nobody judged yet (a warned person is "
                         f"judged {hours + grace:g} h after the first warning)")
    lines.append(f"defrauded after a warning {f['defrauded_after_warning']:,.0f}; case reports "
                 f"{f['case_reports']:,.0f} ({f['case_losses_cny']:,.0f} CNY reported lost)")
    return lines


LINES_PER_READ = 1 << 20  # bytes of lines a read returns (readlines' hint): a few thousand lines


def _chunks(src: IO[bytes], path: Path) -> Iterator[list[bytes]]:
    """The file's lines, as iterating over it gives them, a list of about a megabyte at a time
    (one call per line to the file object was a tenth of reading)."""
    try:
        while chunk := src.readlines(LINES_PER_READ):
            yield chunk
    except (EOFError, gzip.BadGzipFile) as e:
        raise ReplayError(f"{path} is not a readable gzip file: {e}") from None

