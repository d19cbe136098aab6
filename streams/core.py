"""The deterministic decision core, independent of Faust and of the broker.

Three stages, so the workers can repartition between them:

1. ``Router`` (partitioned like the input topics): sends each valid record to the entities it
   concerns: a call to its calling line, a transfer to its payee and payer accounts; case reports
   go straight to their person. Registry and watch-list records update the global tables.
2. ``EntityStage`` (partitioned by line or account): keeps each line's and account's state in
   event time and forwards the record, with a snapshot of that state, to the persons it concerns
   (the callee of an answered call, the caller, the payer), found through the registry.
3. ``Decider`` (partitioned by person): keeps each person's state, computes the features of
   every scoring point (``models/features.py``), scores them with the rules and the classifier,
   and decides warning tasks.

Each stage orders its input by *availability time* (a call is known when it ends, a transfer
when it happens) within a bounded lateness (``Reorderer``), so any arrival order gives the same
result. ``Core`` chains the three in one process for replay and the simulator's closed loop; the
Faust worker runs the same objects on either side of ``zt-entity-events`` and
``zt-person-events``.

>>> from streams.contract import example
>>> core = Core()
>>> for topic in ("registry", "watchlist", "calls"):
...     core.feed(topic, example(topic))
[]
[]
[]
>>> [t.action for t in core.finish()]
['call']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from models.features import NONE_MIN
from streams.eventtime import fmt, local_year, parse, to_ms
from streams.ladder import Episode, Ladder, Policy
from streams.privacy import mask_account, mask_msisdn
from streams.reference import Person, Reference
from streams.state import (
    DAY,
    HOUR,
    MINUTE,
    AccountStats,
    LineStats,
    PersonContacts,
    PersonTransfers,
    first_time,
    seen_kept,
)
from streams.tasks import Reason, WarningTask
from streams.watermark import Reorderer, SortKey

# Ties in time are broken by topic, so reference-like facts come before activity.
TOPIC_RANK: dict[str, int] = {
    "registry": 0,
    "watchlist": 1,
    "case-reports": 2,
    "calls": 3,
    "transactions": 4,
    "task-outcomes": 5,
}


@dataclass(frozen=True)
class CoreConfig:
    """How the stages read the stream; the dissuasion policy is in ``streams/policy.yaml``."""

    # How far out of order a feed may deliver records (event time) and still be decided in order.
    # Each stage waits this long behind the slowest partition, so it is also the latency floor.
    lateness_ms: int = 200
    min_contact_s: int = 60  # shorter answered calls from unknown lines are no scoring point
    elderly_age: int = 60  # a line's share of elderly people reached (fraud lines target them)
    min_call_s: int = 300  # built-in rule (no rule set loaded): a "hooked" call
    long_call_s: int = 20 * 60  # priority 1 from this call duration on
    # How long event ids are remembered for de-duplication: redeliveries come within minutes (a
    # restart, a rebalance); a record replayed later than this is taken as new.
    seen_ttl_ms: int = 2 * 3600 * 1000
    ruleset_version: str = "core-v1"  # used when no rule set is loaded
    model_version: str = "none"  # used when no model is loaded


# Idle state is swept at fixed boundaries of event time (every 6 h), with the horizon taken from
# the boundary and before the event that crossed it touches its entity: then what is forgotten
# does not depend on which events a stage happens to see, so a worker's partition, a replay job
# and a whole replay keep the same state for every line, account and person.
SWEEP_MS = 6 * 3_600_000


def sweep_boundary(t_ms: int) -> int:
    return t_ms - t_ms % SWEEP_MS


# --- what the stages pass on ----------------------------------------------------------------


def availability_ms(topic: str, value: dict[str, Any], t_ms: int) -> int:
    """When a record's facts are known: a call record exists only once the call has ended."""
    if topic == "calls":
        return t_ms + value["duration_s"] * 1000
    return t_ms


@dataclass(slots=True)
class StageEvent:
    """A record on its way through the stages. ``key`` is the entity or the person."""

    topic: str
    key: str
    role: str  # line | payee | payer (entity stage); callee | caller | payer | report (person)
    value: dict[str, Any]
    t_ms: int  # the record's own event time
    avail_ms: int  # when its facts are known (the order of decisions)
    offset_min: int
    arrived: float = 0.0  # wall seconds at the worker; only for latency metrics, never decisions
    snap: dict[str, float] | None = None  # entity state forwarded to the person stage
    origin: tuple[int, int] | None = None  # (partition, offset) in a worker, for commits
    # The record as read (a replay line), when a replay job sends the event to a person process:
    # that process parses these bytes again, which costs a fraction of pickling the value.
    source: bytes | None = None

    @property
    def sort_key(self) -> SortKey:
        return (self.avail_ms, TOPIC_RANK[self.topic], f"{self.value['event_id']}/{self.role}")

    def envelope(self) -> dict[str, Any]:
        # "t": the times already parsed, so the next stage need not parse the record's again.
        env = {"topic": self.topic, "key": self.key, "role": self.role, "arrived": self.arrived,
               "t": (self.t_ms, self.avail_ms, self.offset_min), "value": self.value}
        if self.snap is not None:
            env["snap"] = self.snap
        return env

    @classmethod
    def make(cls, topic: str, key: str, role: str, value: dict[str, Any], arrived: float = 0.0,
             snap: dict[str, float] | None = None) -> StageEvent:
        ms, offset_min = parse(value["event_time"])
        return cls(topic, key, role, value, ms, availability_ms(topic, value, ms), offset_min,
                   arrived, snap)

    @classmethod
    def from_envelope(cls, env: dict[str, Any]) -> StageEvent:
        t = env.get("t")
        if t is None:  # an envelope from a worker of an earlier version
            return cls.make(env["topic"], env["key"], env["role"], env["value"], env["arrived"],
                            env.get("snap"))
        return cls(env["topic"], env["key"], env["role"], env["value"], t[0], t[1], t[2],
                   env["arrived"], env.get("snap"))

    def to(self, key: str, role: str, snap: dict[str, float] | None = None) -> StageEvent:
        return StageEvent(self.topic, key, role, self.value, self.t_ms, self.avail_ms,
                          self.offset_min, self.arrived, snap, None, self.source)


# --- stage 1 ---------------------------------------------------------------------------------


class Router:
    """Stage 1: send a valid record to the entities (or person) it concerns."""

    def __init__(self, reference: Reference):
        self.reference = reference

    def route(self, topic: str, value: dict[str, Any], arrived: float = 0.0
              ) -> tuple[list[StageEvent], list[StageEvent]]:
        """(entity events, person events)."""
        if topic in ("registry", "watchlist"):
            self.reference.apply(topic, value)
            return [], []
        if topic == "calls":
            return [StageEvent.make(topic, value["caller"], "line", value, arrived)], []
        if topic == "transactions":
            ev = StageEvent.make(topic, value["payee_account"], "payee", value, arrived)
            return [ev, ev.to(value["payer_account"], "payer")], []
        if topic == "case-reports":
            self.reference.apply(topic, value)  # what it names is suspect for everyone
            return [], [StageEvent.make(topic, value["person_id"], "report", value, arrived)]
        person_id = self.reference.tasks.get(value["task_id"])  # task-outcomes
        if person_id is None:
            return [], []  # an outcome of a task this pipeline never sent (counted by drivers)
        return [], [StageEvent.make(topic, person_id, "outcome", value, arrived)]


# --- stage 2 ---------------------------------------------------------------------------------


class EntityStage:
    """Stage 2: per-line and per-account state; forwards records with a snapshot to persons."""

    def __init__(self, reference: Reference, config: CoreConfig | None = None,
                 max_wait_s: float | None = None):
        self.reference = reference
        self.config = config or CoreConfig()
        self.buffer = Reorderer(self.config.lateness_ms, max_wait_s)
        self.lines: dict[str, LineStats] = {}
        self.accounts: dict[str, AccountStats] = {}
        self.unrouted: dict[str, int] = {}  # records about no registered person, by topic
        self.duplicates = 0
        self._swept_ms = 0
        self._now_ms = -(2**62)  # the latest event time applied (the de-duplication horizon)
        # Event ids are remembered at least from here on (a worker: the oldest event time an
        # input it has not committed yet can bring again, so a re-read is always a duplicate).
        self.retain_from_ms = 2**62
        # Keys whose state changed, for a worker's checkpoint (None: nobody asks, as in replay).
        self.touched: set[str] | None = None

    def push(self, ev: StageEvent, now: float = 0.0) -> None:
        self.buffer.push(ev.sort_key, ev, now, stream_ms=ev.t_ms)

    def ready(self, now: float = 0.0) -> list[StageEvent]:
        return self._forward(self.buffer.pop_ready(now))

    def drain(self) -> list[StageEvent]:
        return self._forward(self.buffer.drain())

    def _forward(self, events: list[StageEvent]) -> list[StageEvent]:
        out: list[StageEvent] = []
        for ev in events:
            out.extend(self.process(ev))
        return out

    def horizon(self, t_ms: int) -> int:
        """Event ids from before this are forgotten (de-duplication for ``seen_ttl_ms``)."""
        if t_ms > self._now_ms:
            self._now_ms = t_ms
        return min(self._now_ms - self.config.seen_ttl_ms, self.retain_from_ms)

    def process(self, ev: StageEvent) -> list[StageEvent]:
        v, role, t = ev.value, ev.role, ev.avail_ms
        if t >= self._swept_ms + SWEEP_MS:
            self._sweep(t)
        key = ev.key
        if role == "line":
            state: LineStats | AccountStats | None = self.lines.get(key)
            if state is None:
                state = self.lines[key] = LineStats()
        else:
            state = self.accounts.get(key)
            if state is None:
                state = self.accounts[key] = AccountStats()
        if not first_time(state, f"{v['event_id']}/{role}", t, self.horizon(t)):
            self.duplicates += 1
            return []
        if self.touched is not None:
            self.touched.add(key)
        ref = self.reference
        if role == "line":
            line: LineStats = state  # type: ignore[assignment]
            answered = v["kind"] == "voice" and bool(v.get("answered"))
            duration_s = v["duration_s"]
            callee = ref.person_of_msisdn(v["callee"])
            elderly = callee is not None and (
                local_year(t, ev.offset_min) - callee.birth_year >= self.config.elderly_age)
            line.update(t, v["callee"], answered, duration_s, elderly, bool(v.get("sms_has_url")))
            out = []
            caller = ref.person_of_msisdn(v["caller"])
            # An unanswered call (or a text) changes nothing of its callee's state, so it goes
            # to the caller only (a third of a carrier's records: a third fewer person events).
            if callee is not None and answered:
                snap = None
                if duration_s >= self.config.min_contact_s:  # a scoring point
                    snap = line.get(t)
                    snap["line_registered"] = 1.0 if caller is not None else 0.0
                out.append(ev.to(callee.person_id, "callee", snap))
            if caller is not None:
                out.append(ev.to(caller.person_id, "caller"))
            elif callee is None:
                self.unrouted["calls"] = self.unrouted.get("calls", 0) + 1
            return out
        status = v["status"]
        acc: AccountStats = state  # type: ignore[assignment]
        if role == "payee":
            snap = acc.get(t)  # before this transfer: what others' money did
            if status == "completed":
                acc.money_in(t, v["payer_account"], v["amount_fen"])
            elif status in ("held", "reversed"):
                acc.held(t)
            payer = ref.person_of_account(v["payer_account"])
            if payer is None:
                self.unrouted["transactions"] = self.unrouted.get("transactions", 0) + 1
                return []
            return [ev.to(payer.person_id, "payer", snap)]
        if status == "completed":  # role payer: money leaves this account
            acc.money_out(t, v["amount_fen"])
        return []

    def _sweep(self, now_ms: int) -> None:
        """Forget lines and accounts idle for longer than every window (bounded memory)."""
        self._swept_ms = sweep_boundary(now_ms)
        horizon = self._swept_ms - 7 * DAY
        if self.touched is not None:  # (their checkpoint forgets them too)
            self.touched.update(k for table in (self.lines, self.accounts)
                                for k, s in table.items() if s.last_ms < horizon)
        self.lines = {k: s for k, s in self.lines.items() if s.last_ms >= horizon}
        self.accounts = {k: s for k, s in self.accounts.items() if s.last_ms >= horizon}

    # --- per-key state, for a worker's changelog ----------------------------------------------

    def dump(self, key: str) -> list[Any] | None:
        """The state of one line and/or account key (None: nothing is remembered of it)."""
        line, acc = self.lines.get(key), self.accounts.get(key)
        if line is None and acc is None:
            return None
        # (Values are the live containers: serialise at once.)
        horizon = min(self._now_ms - self.config.seen_ttl_ms, self.retain_from_ms)
        return [line.dump(horizon) if line is not None else None,
                acc.dump(horizon) if acc is not None else None]

    def install(self, key: str, state: list[Any] | None) -> None:
        """Put back what ``dump`` gave (None: forget the key); what a sweep since would have
        forgotten stays forgotten."""
        self.lines.pop(key, None)
        self.accounts.pop(key, None)
        if state is None:
            return
        horizon = self._swept_ms - 7 * DAY
        line = LineStats.load(state[0]) if state[0] is not None else None
        if line is not None and line.last_ms >= horizon:
            self.lines[key] = line
        acc = AccountStats.load(state[1]) if state[1] is not None else None
        if acc is not None and acc.last_ms >= horizon:
            self.accounts[key] = acc

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.lines.pop(key, None)
            self.accounts.pop(key, None)


# --- stage 3 ---------------------------------------------------------------------------------


class Hit(Protocol):
    rule_id: str
    code: str
    reason: str
    score: float
    action: str | None
    mode: str


class RuleSetLike(Protocol):
    version: str

    def evaluate(self, point: str, features: dict[str, float],
                 language: str | None = None) -> list[Hit]: ...


class Scorer(Protocol):
    version: str

    def score(self, point: str, rows: list[dict[str, float]]) -> list[float]: ...


@dataclass(frozen=True)
class BuiltinHit:
    """The first decision path, for a core with no rule set loaded."""

    rule_id: str
    code: str
    reason: str
    score: float
    action: str | None
    mode: str = "enforce"


@dataclass(slots=True)
class Scored:
    """One scoring point, as the observer (training, backtests) sees it."""

    point: str
    person_id: str
    event_id: str
    t_ms: int
    txn_id: str | None
    features: dict[str, float]
    hits: list[Any] = field(default_factory=list)
    model_score: float | None = None
    risk: float = 0.0


@dataclass(slots=True)
class PersonState:
    contacts: PersonContacts = field(default_factory=PersonContacts)
    # Made at the person's first transfer: many persons only talk, and the state of a person
    # was most of the cost of its first event.
    transfers: PersonTransfers | None = None
    open_txns: dict[str, str] = field(default_factory=dict)  # scored, not final yet: txn -> status
    last_ms: int = 0
    first_ms: int = 0  # the person's first event this stage remembers (how much history it has)
    seen: dict[str, int] | None = None  # ids of the events applied to the person (``first_time``)

    def dump(self, horizon: int) -> list[Any]:
        return [self.contacts.dump(), self.transfers.dump() if self.transfers is not None else None,
                self.open_txns, self.last_ms, self.first_ms, seen_kept(self.seen, horizon)]

    @classmethod
    def load(cls, d: list[Any]) -> PersonState:
        return cls(PersonContacts.load(d[0]), PersonTransfers.load(d[1]) if d[1] is not None else None,
                   d[2], d[3], d[4], d[5])


@dataclass
class DecisionStats:
    decided: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    points: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    ev: StageEvent
    scored: Scored
    person: Person


class Decider:
    """Stage 3: per-person ordering, state, features, scores and decisions."""

    def __init__(self, reference: Reference, config: CoreConfig | None = None,
                 max_wait_s: float | None = None, ruleset: RuleSetLike | None = None,
                 scorer: Scorer | None = None, observer: Callable[[Scored], None] | None = None,
                 policy: Policy | None = None):
        self.reference = reference
        self.config = config or CoreConfig()
        self.buffer = Reorderer(self.config.lateness_ms, max_wait_s)
        self.ladder = Ladder(policy)
        self.persons: dict[str, PersonState] = {}
        self.stats = DecisionStats()
        self.ruleset = ruleset
        self.scorer = scorer
        self.observer = observer
        self._swept_ms = 0
        self._now_ms = -(2**62)
        self.retain_from_ms = 2**62  # as ``EntityStage.retain_from_ms``
        self._hits: dict[str, dict[tuple[str, str], int]] = {}  # person -> (rule, mode) -> time
        self._hits_pruned_ms = 0

    def push(self, ev: StageEvent, now: float = 0.0) -> None:
        self.buffer.push(ev.sort_key, ev, now, stream_ms=ev.t_ms)

    def ready(self, now: float = 0.0) -> list[tuple[StageEvent, WarningTask]]:
        return self.decide_batch(self.buffer.pop_ready(now))

    def drain(self) -> list[tuple[StageEvent, WarningTask]]:
        return self.decide_batch(self.buffer.drain())

    def advance(self, watermark_ms: int) -> list[WarningTask]:
        """Fire the ladder's timers due by the stage's watermark, once every event up to it has
        been decided: an escalation is due when event time passes it, whether or not a record of
        that person (or of this partition) comes. The same timers fire, with the same content,
        as when the next event would have fired them; only sooner."""
        tasks = self.ladder.advance(watermark_ms, self.reference.persons, self.reference.listed)
        for task in tasks:
            self._stamp(task)
        return tasks

    def decide_batch(self, events: Iterable[StageEvent]) -> list[tuple[StageEvent, WarningTask]]:
        """Update state and collect scoring points in order, score them in one vectorised call
        per point, then run the ladder in order (timers, decisions, transfers, outcomes).
        Features never depend on decisions, so this gives the same tasks as deciding one event
        at a time, whatever the batch."""
        observe = self._observe
        observed = [(ev, observe(ev)) for ev in events]
        pending = [p for _, p in observed if p is not None]
        if pending:
            self._score(pending)
        out: list[tuple[StageEvent, WarningTask]] = []
        reference, ladder = self.reference, self.ladder
        persons = reference.persons
        for ev, p in observed:
            t, role = ev.avail_ms, ev.role
            tasks = ladder.advance(t, persons, reference.listed) if ladder.due(t) else []
            person = persons.get(ev.key)
            if person is not None:
                if p is not None:
                    tasks.extend(self._decide(p))
                if role == "payer":
                    tasks.extend(ladder.transfer_seen(person, ev.value, t))
                elif role == "outcome":
                    tasks.extend(ladder.outcome(person, ev.value, t))
            if role == "report":
                ladder.case_report(ev.key, ev.value)
                self._confirm_hits(ev.key, t)
            for task in tasks:
                self._stamp(task)
                out.append((ev, task))
        # Forget hits older than a week, in decision order (after any confirmations); at most
        # once an hour of event time: with more than 10,000 persons hit in a week, pruning at
        # every batch walked them all each time (a live worker decides in small batches).
        if observed and len(self._hits) > 10_000 and \
                observed[-1][0].avail_ms - self._hits_pruned_ms >= HOUR:
            self._hits_pruned_ms = observed[-1][0].avail_ms
            week = self._hits_pruned_ms - 7 * DAY
            self._hits = {p: h for p, h in self._hits.items() if max(h.values()) >= week}
        return out

    def _confirm_hits(self, person_id: str, t_ms: int) -> None:
        """A case report confirms the rule hits on its person in the week before it."""
        for (rule, mode), hit_ms in self._hits.pop(person_id, {}).items():
            if t_ms - hit_ms <= 7 * DAY:
                self.ladder.stats.add("rule_confirmed", rule, mode)

    def _stamp(self, task: WarningTask) -> None:
        """Versions in force, on every task; remember whose task it is (for outcomes)."""
        task.model_version = self.scorer.version if self.scorer else self.config.model_version
        task.ruleset_version = self.ruleset.version if self.ruleset else self.config.ruleset_version
        self.reference.note_task(task.task_id, task.person_id)

    # --- state and features -------------------------------------------------------------------

    @property
    def touched(self) -> set[str] | None:
        """Persons whose state changed, for a worker's checkpoint (None: nobody asks)."""
        return self.ladder.touched

    @touched.setter
    def touched(self, keys: set[str] | None) -> None:
        self.ladder.touched = keys

    def _observe(self, ev: StageEvent) -> _Pending | None:
        v, key, t = ev.value, ev.key, ev.avail_ms
        if t >= self._swept_ms + SWEEP_MS:
            self._sweep(t)  # before this event touches its person: see sweep_boundary
        state = self.persons.get(key)
        if state is None:
            state = self.persons[key] = PersonState(first_ms=t)
        if t > self._now_ms:
            self._now_ms = t
        # (the role has no "/": event "a/b" as callee is not event "a" as "b/callee")
        if not first_time(state, f"{v['event_id']}/{ev.role}", t,
                          min(self._now_ms - self.config.seen_ttl_ms, self.retain_from_ms)):
            self.stats.duplicates += 1
            return None
        touched = self.ladder.touched
        if touched is not None:
            touched.add(key)
        if t > state.last_ms:
            state.last_ms = t
        decided = self.stats.decided
        decided[ev.topic] = decided.get(ev.topic, 0) + 1
        person = self.reference.persons.get(key)
        if person is None:
            return None
        role = ev.role
        if role == "caller":
            state.contacts.called_out(t, v["callee"])
            return None
        if role == "callee":
            return self._contact(ev, state, person)
        if role == "payer":
            return self._transfer(ev, state, person)
        return None  # case reports: labels for training and the outcome loop

    def _base(self, person: Person, t_ms: int, offset_min: int) -> tuple[float, float]:
        """(person_age, hour_of_day) at ``t_ms`` in the record's own offset."""
        year = local_year(t_ms, offset_min)
        return float(year - person.birth_year), float((t_ms + offset_min * MINUTE) % DAY // HOUR)

    # The rows below are built in the catalog's order of each point's features
    # (models/features.py, POINT_FEATURES; tests/test_features.py holds them to it): one dict
    # per scoring point, no intermediate ones.

    def _contact(self, ev: StageEvent, state: PersonState, person: Person) -> _Pending | None:
        v = ev.value
        if v["kind"] != "voice" or not v.get("answered"):
            return None
        caller, end = v["caller"], ev.avail_ms
        contacts = state.contacts
        if contacts.known(caller, end) or caller in person.msisdns:
            return None
        self.ladder.contacted(person.person_id, caller, end)
        listing = self.reference.listed(caller, end)
        duration_s = v["duration_s"]
        minutes = duration_s / 60
        contacts.unknown_call(end, minutes, listing is not None)
        if duration_s < self.config.min_contact_s:
            return None
        origin = v["caller_origin"]
        age, hour = self._base(person, end, ev.offset_min)
        line = ev.snap or {}
        unknown_24h, longest_72h, since, listed_72h = contacts.values(end)
        return self._point("contact", ev, person, {
            "person_age": age,
            "hour_of_day": hour,
            "person_history_days": round((end - state.first_ms) / DAY, 3),
            "call_minutes": round(minutes, 3),
            "caller_known": 0.0,
            "caller_listed": 1.0 if listing else 0.0,
            "caller_listed_confidence": listing.confidence if listing else 0.0,
            "origin_virtual": 1.0 if origin == "virtual" else 0.0,
            "origin_international": 1.0 if origin == "international" else 0.0,
            "origin_voip": 1.0 if origin == "voip" else 0.0,
            "line_fanout_24h": line["line_fanout_24h"],
            "line_answer_rate_24h": line["line_answer_rate_24h"],
            "line_short_share_24h": line["line_short_share_24h"],
            "line_registered": line.get("line_registered", 0.0),
            "line_elderly_share_24h": line["line_elderly_share_24h"],
            "line_sms_url_24h": line["line_sms_url_24h"],
            "caller_reported": 1.0 if self.reference.reported_by_victim(caller, end) else 0.0,
            "unknown_calls_24h": unknown_24h,
            "longest_unknown_call_72h": longest_72h,
            "minutes_since_unknown_call": since,
            "listed_contact_72h": listed_72h,
        }, None)

    def _transfer(self, ev: StageEvent, state: PersonState, person: Person) -> _Pending | None:
        v = ev.value
        txn, status = v["txn_id"], v["status"]
        open_txns = state.open_txns
        opened = txn in open_txns
        if status == "initiated":
            open_txns[txn] = status
            if len(open_txns) > 64:  # never completed: forget the oldest
                del open_txns[next(iter(open_txns))]
        else:
            open_txns.pop(txn, None)  # final: nothing more to remember
        if opened or status not in ("initiated", "completed"):
            return None  # scored once, at its first state
        payee, amount, now = v["payee_account"], v["amount_fen"], ev.avail_ms
        own = payee in {a for _, a in person.accounts}
        age, hour = self._base(person, now, ev.offset_min)
        payee_stats = ev.snap or {}
        unknown_24h, longest_72h, since, listed_72h = state.contacts.values(now)
        transfers = state.transfers
        if transfers is None:
            transfers = state.transfers = PersonTransfers()
        amount_cny, ratio, new, is_own, n_24h, amount_24h, own_move = transfers.values(
            now, payee, amount, own)
        first = transfers.first_paid(payee)
        reference = self.reference
        holder = reference.person_of_account(payee)
        contacts = state.contacts
        holder_known = holder is not None and not own and any(
            contacts.known(m, now) for m in holder.msisdns)
        row = {
            "person_age": age,
            "hour_of_day": hour,
            "person_history_days": round((now - state.first_ms) / DAY, 3),
            "unknown_calls_24h": unknown_24h,
            "longest_unknown_call_72h": longest_72h,
            "minutes_since_unknown_call": since,
            "listed_contact_72h": listed_72h,
            "amount_cny": amount_cny,
            "amount_ratio_usual": ratio,
            "payee_new": new,
            "payee_own": is_own,
            "payee_listed": 1.0 if reference.listed(payee, now) else 0.0,
            "payee_registered": 1.0 if holder is not None else 0.0,
            "payee_holder_known": 1.0 if holder_known else 0.0,
            "payee_first_paid_days": round((now - first) / DAY, 3) if first is not None else 0.0,
            "payee_reported": 1.0 if reference.reported_by_victim(payee, now) else 0.0,
            "payee_distinct_payers_24h": payee_stats.get("payee_distinct_payers_24h", 0.0),
            "payee_drain_share_24h": payee_stats.get("payee_drain_share_24h", 0.0),
            "payee_onward_share_24h": payee_stats.get("payee_onward_share_24h", 0.0),
            "payee_held_7d": payee_stats.get("payee_held_7d", 0.0),
            "payee_age_days": payee_stats.get("payee_age_days", 0.0),
            "transfers_24h": n_24h,
            "amount_24h_cny": amount_24h,
            "own_move_24h": own_move,
        }
        transfers.record(now, payee, amount, own)
        return self._point("transfer", ev, person, row, txn)

    def _point(self, point: str, ev: StageEvent, person: Person, row: dict[str, float],
               txn: str | None) -> _Pending:
        points = self.stats.points
        points[point] = points.get(point, 0) + 1
        return _Pending(ev, Scored(point, person.person_id, ev.value["event_id"], ev.avail_ms, txn,
                                   row), person)

    # --- scores --------------------------------------------------------------------------------

    def _score(self, pending: list[_Pending]) -> None:
        if self.scorer is not None:
            for point in ("contact", "transfer"):
                group = [p for p in pending if p.scored.point == point]
                if group:
                    probs = self.scorer.score(point, [p.scored.features for p in group])
                    for p, prob in zip(group, probs, strict=True):
                        p.scored.model_score = float(prob)
        ruleset, observer, language = self.ruleset, self.observer, self.ladder.words.language
        for p in pending:
            s = p.scored
            hits = s.hits = (ruleset.evaluate(s.point, s.features, language) if ruleset is not None
                             else self._builtin(p))
            rule = max((h.score for h in hits if h.mode == "enforce"), default=0.0)
            model = s.model_score or 0.0
            # Noisy-OR of independent evidence: either source alone can carry the risk.
            s.risk = round(1 - (1 - rule) * (1 - model), 4)
            if hits:
                recent = self._hits.setdefault(s.person_id, {})
                for h in hits:  # counted once, with the ladder's figures (zt_rule_hits_total)
                    self.ladder.stats.add("rule_hits", h.rule_id, h.mode)
                    recent[(h.rule_id, h.mode)] = s.t_ms
            if observer is not None:
                observer(s)

    def _builtin(self, p: _Pending) -> list[Any]:
        """The first decision path, used only when no rule set is loaded."""
        f, v = p.scored.features, p.ev.value
        if p.scored.point != "contact" or not f["caller_listed"] or \
                v["duration_s"] < self.config.min_call_s:
            return []
        return [BuiltinHit(
            "R-CALL-FROM-LISTED-LINE", "CALL_FROM_WATCHLISTED_NUMBER", self.ladder.words.say(
                "{minutes}-minute answered call from watch-listed {origin} number {caller} "
                "(confidence {confidence:.2f}), ended {ended}", minutes=int(f["call_minutes"]),
                origin=self.ladder.words.text(v["caller_origin"]), caller=mask_msisdn(v["caller"]),
                confidence=f["caller_listed_confidence"],
                ended=fmt(p.ev.avail_ms, p.ev.offset_min)[11:16]),
            f["caller_listed_confidence"], "call")]

    # --- decisions -----------------------------------------------------------------------------

    def _decide(self, p: _Pending) -> list[WarningTask]:
        s, ev, person, policy = p.scored, p.ev, p.person, self.ladder.policy
        if not s.hits and s.model_score is None and (
                s.point != "transfer" or person.person_id not in self.ladder.episodes):
            return []  # no rule, no model, no warning to be paid after: most points (as below)
        enforce = [h for h in s.hits if h.mode == "enforce"]
        threshold = policy.contact_threshold if s.point == "contact" else policy.transfer_threshold
        # The model card's threshold of this point (within its budget of tasks on honest rows),
        # else the one set at desk capacity.
        card = (getattr(self.scorer, "thresholds", None) or {}).get(s.point,
                                                                    getattr(self.scorer, "threshold", None))
        if card is not None:
            threshold = min(threshold, card)
        model_alone = s.model_score is not None and s.model_score >= threshold
        current = self.ladder.episodes.get(person.person_id)
        guard = self._guard(s, ev, person, current) if s.point == "transfer" else None
        if not enforce and not model_alone and guard is None:
            return []
        # A call is warned once per line; money is at stake in every transfer, each its own.
        subject = ev.value["caller"] if s.point == "contact" else ev.value["txn_id"]
        reasons = [Reason(h.code, h.reason) for h in enforce]
        if guard is not None:
            reasons.insert(0, guard)
        if s.model_score is not None and (model_alone or s.model_score >= 0.5):
            model_version = self.scorer.version if self.scorer else self.config.model_version
            explain = getattr(self.scorer, "explain", None)
            words = self.ladder.words
            why = explain(s.point, s.features, words) if explain is not None else ""
            values = dict(version=model_version, score=f"{s.model_score:.2f}",
                          point=words.say("call" if s.point == "contact" else "transfer"), why=why)
            reasons.append(Reason("MODEL_RISK", words.say(
                "the classifier ({version}) puts the fraud risk of this {point} at {score}, "
                "mostly for: {why}" if why else
                "the classifier ({version}) puts the fraud risk of this {point} at {score}",
                **values)))
        episode = self.ladder.episode(person, s.t_ms, ev.offset_min)
        codes = [(r.code, subject) for r in reasons]
        if all(c in episode.issued for c in codes):
            return []  # the same episode is never warned twice for the same reason
        age = int(s.features["person_age"])
        elderly = age >= policy.elderly_age
        if elderly:
            reasons.append(Reason("ELDERLY_PERSON", self.ladder.words.say(
                "the person is {age} years old; elderly people are among the most targeted",
                age=age)))
        long_call = s.point == "contact" and ev.value["duration_s"] >= self.config.long_call_s
        risk = max(s.risk, 0.9) if guard is not None else s.risk
        priority = 1 if (risk >= 0.9 or elderly or long_call or guard is not None) \
            else 2 if risk >= 0.6 else 3
        common = dict(person_id=person.person_id, district=person.district,
                      episode_id=episode.episode_id, created_ms=s.t_ms, offset_min=ev.offset_min,
                      priority=priority, risk_score=risk, reasons=reasons, evidence=[s.event_id],
                      model_version="-", ruleset_version="-")
        v = ev.value
        if s.point == "contact":
            episode.lines.add(v["caller"])
            hinted = {h.action for h in enforce}
            visit = "visit" in hinted or (elderly and risk >= policy.visit_threshold)
            task = (WarningTask(action="visit", **common) if visit else
                    WarningTask(action="call", contact_msisdn=v["callee"], **common))
        elif v["status"] == "initiated":
            episode.payees.add(v["payee_account"])
            task = WarningTask(action="hold", bank=v["bank"], txn_id=v["txn_id"],
                               account=v["payer_account"], amount_fen=v["amount_fen"], **common)
        else:
            episode.payees.add(v["payee_account"])
            task = WarningTask(action="stop_payment", bank=v["payee_bank"], txn_id=v["txn_id"],
                               account=v["payee_account"], amount_fen=v["amount_fen"], **common)
        if episode.first_warning_ms is None:
            # Time to first warning: from the first answered call of an unknown line (72 h).
            since = s.features.get("minutes_since_unknown_call", NONE_MIN)
            if s.point == "contact":
                since = s.features["call_minutes"]
            if since < NONE_MIN:
                self.ladder.stats.first_warning_s.append(since * 60)
        return [self.ladder.issue(episode, task, codes)]

    def _guard(self, s: Scored, ev: StageEvent, person: Person, ep: Episode | None) -> Reason | None:
        """Episode-wide fund protection: once a person has been warned, every later payment to
        an account the episode already raised a money task on, to a listed or reported one, or
        (when the person's history is long enough to know their payees) to a payee first paid
        during the episode, is held: repeated and growing payments take most of the money."""
        policy = self.ladder.policy
        if ep is None or not self.ladder.open(ep, s.t_ms):
            return None
        f, v = s.features, ev.value
        payee, amount = v["payee_account"], f["amount_cny"]
        if f["payee_own"] == 1.0:
            return None
        flagged = payee in ep.payees
        listed = f["payee_listed"] == 1.0 or f["payee_reported"] == 1.0
        if not (flagged or listed) and (
                f["payee_holder_known"] == 1.0  # someone the person calls: family, friends
                or f["payee_distinct_payers_24h"] >= policy.merchant_min_payers):  # a shop
            return None
        since = fmt(ep.first_warning_ms, ep.offset_min)  # type: ignore[arg-type]
        say = self.ladder.words.say
        values = dict(when=f"{since[5:10]} {since[11:16]}", amount=f"{amount:,.0f}",
                      account=mask_account(payee))
        if flagged:
            return Reason("EPISODE_PAYEE", say(
                "the person was warned in this episode (first warning {when}) and is paying "
                "{amount} CNY again to {account}, an account this episode already raised a hold or "
                "stop-payment on: repeated and growing payments to one account are how rebate-task, "
                "investment and loan-fee frauds take most of the money", **values))
        if listed:
            return Reason("PAID_AFTER_WARNING", say(
                "the person was warned in this episode (first warning {when}) and is paying "
                "{amount} CNY to {account}, an account on the watch list" if f["payee_listed"] == 1.0
                else "the person was warned in this episode (first warning {when}) and is paying "
                "{amount} CNY to {account}, an account named in a victim's report", **values))
        state = self.persons[person.person_id]
        first = state.transfers.first_paid(payee) if state.transfers is not None else None
        known = f["person_history_days"] >= policy.known_payees_after_days
        if not known or first is None or first < ep.opened_ms:
            return None  # a payee from before the episode, or too little history to tell
        if f["payee_new"] == 1.0:
            if amount < policy.paid_after_warning_min_cny:
                return None
            return Reason("PAID_AFTER_WARNING", say(
                "the person was warned in this episode (first warning {when}) and is now paying "
                "{amount} CNY to an account never paid before, {account}", **values))
        if amount < policy.episode_payee_min_cny:
            return None
        started = fmt(first, ep.offset_min)
        return Reason("EPISODE_PAYEE", say(
            "the person was warned in this episode (first warning {when}) and is paying {amount} "
            "CNY again to {account}, first paid {first} during the episode: repeated and growing "
            "payments to one account are how rebate-task, investment and loan-fee frauds take most "
            "of the money", first=f"{started[5:10]} {started[11:16]}", **values))

    def _sweep(self, now_ms: int) -> None:
        """Forget persons idle for longer than every window and episode (bounded memory)."""
        self._swept_ms = sweep_boundary(now_ms)
        horizon = self._swept_ms - max(7 * DAY, int(self.ladder.policy.episode_quiet_hours * HOUR))
        touched = self.ladder.touched
        if touched is not None:  # (their checkpoint forgets them too)
            touched.update(k for k, s in self.persons.items() if s.last_ms < horizon)
        self.persons = {k: s for k, s in self.persons.items() if s.last_ms >= horizon}

    # --- per-person state, for a worker's changelog ------------------------------------------

    def dump(self, person_id: str) -> list[Any] | None:
        """Everything a later decision about this person can depend on (None: nothing): the
        feature state and event ids, the ladder's episode, timers and confirmed accounts, the
        rule hits awaiting a report."""
        state = self.persons.get(person_id)
        ladder = self.ladder.dump(person_id)
        hits = self._hits.get(person_id)
        if state is None and ladder is None and not hits:
            return None
        horizon = min(self._now_ms - self.config.seen_ttl_ms, self.retain_from_ms)
        return [state.dump(horizon) if state is not None else None, ladder,
                [x for (rule, mode), t in hits.items() for x in (rule, mode, t)] if hits else None]

    def install(self, person_id: str, d: list[Any] | None) -> None:
        """Put back what ``dump`` gave (None: forget the person)."""
        self.forget([person_id])
        if d is None:
            return
        horizon = self._swept_ms - max(7 * DAY, int(self.ladder.policy.episode_quiet_hours * HOUR))
        if d[0] is not None:
            state = PersonState.load(d[0])
            if state.last_ms >= horizon:
                self.persons[person_id] = state
        if d[1] is not None:
            self.ladder.install(person_id, d[1])
        if d[2]:
            h = d[2]
            self._hits[person_id] = {(h[i], h[i + 1]): h[i + 2] for i in range(0, len(h), 3)}

    def forget(self, person_ids: Iterable[str]) -> None:
        ids = list(person_ids)
        for pid in ids:
            self.persons.pop(pid, None)
            self._hits.pop(pid, None)
        self.ladder.forget(ids)


class PersonSide:
    """The person stage of a ``Core``: orders person events in event time and decides them.

    ``Core`` calls it in process; ``zt replay --jobs`` makes the same calls, in the same order,
    from a front process through a pipe (``streams/replay.py``), so both decide alike.
    ``batch`` > 1 lets it score many events in one vectorised call: the tasks are the same
    whatever the batch, only later in the loop.
    """

    def __init__(self, reference: Reference, config: CoreConfig | None = None,
                 ruleset: RuleSetLike | None = None, scorer: Scorer | None = None,
                 observer: Callable[[Scored], None] | None = None, batch: int = 1,
                 policy: Policy | None = None):
        self.reference = reference
        self.router = Router(reference)  # outcomes find their person through the tasks sent
        self.decider = Decider(reference, config, ruleset=ruleset, scorer=scorer,
                               observer=observer, policy=policy)
        self.batch = max(batch, 1)
        self._ready: list[StageEvent] = []

    def apply(self, topic: str, value: dict[str, Any], source: bytes | None = None) -> None:
        """A registry or watch-list record (only when this side keeps its own reference);
        ``source``, the record as read, is for a person stage in another process."""
        self.reference.apply(topic, value)

    def step(self, t_ms: int, events: Iterable[StageEvent]) -> list[WarningTask]:
        """A record of time ``t_ms`` has been read upstream; ``events`` are the person events
        it made ready there. Returns the tasks this makes ready, in order."""
        buffer = self.decider.buffer
        # In one stream the person stage may follow the stream's own time: everything the
        # entity stage still holds is later than its watermark anyway.
        buffer.observe(t_ms)
        for ev in events:
            self.decider.push(ev)
        self._ready.extend(buffer.pop_ready())
        if len(self._ready) < self.batch and (self._ready or self.batch > 1):
            return []
        return self._decide()

    def outcome(self, value: dict[str, Any], t_ms: int) -> list[WarningTask]:
        # An outcome finds its person through the tasks already sent: decide what is ready
        # first, so that does not depend on how many events a batch has gathered (nor on how
        # the persons are split between replay jobs).
        tasks = self._decide() if self._ready else []
        return tasks + self.step(t_ms, self.router.route("task-outcomes", value)[1])

    def finish(self, events: Iterable[StageEvent]) -> list[WarningTask]:
        """The end of the stream: ``events`` are the entity stage's last."""
        for ev in events:
            self.decider.push(ev)
        self._ready.extend(self.decider.buffer.drain())
        return self._decide()

    def _decide(self) -> list[WarningTask]:
        events, self._ready = self._ready, []
        tasks = [task for _, task in self.decider.decide_batch(events)]
        # Every event up to the watermark is decided now: timers due by then may fire.
        return tasks + self.decider.advance(self.decider.buffer.watermark)


class Core:
    """The three stages in one stream, for replay and the simulator's closed loop.

    ``person`` is the person stage to feed (default: a ``PersonSide`` in this process, sharing
    this core's reference); replay jobs give a pipe to other processes instead.
    """

    def __init__(self, config: CoreConfig | None = None, ruleset: RuleSetLike | None = None,
                 scorer: Scorer | None = None, observer: Callable[[Scored], None] | None = None,
                 batch: int = 1, policy: Policy | None = None, person: Any = None):
        self.config = config or CoreConfig()
        self.reference = Reference()
        self.router = Router(self.reference)
        self.entities = EntityStage(self.reference, self.config)
        self.person = person if person is not None else PersonSide(
            self.reference, self.config, ruleset=ruleset, scorer=scorer, observer=observer,
            batch=batch, policy=policy)

    @property
    def decider(self) -> Decider:
        return self.person.decider

    def feed(self, topic: str, value: dict[str, Any], source: bytes | None = None
             ) -> list[WarningTask]:
        """Take one contract-valid record; return the tasks it makes ready, in order.

        ``source`` is the record as read, for a person stage in another process (replay jobs)."""
        if topic == "task-outcomes":
            return self.person.outcome(value, to_ms(value["event_time"]))
        entity_events, person_events = self.router.route(topic, value)
        routed = entity_events or person_events  # (their time is parsed already)
        t_ms = routed[0].t_ms if routed else to_ms(value["event_time"])
        if source is not None:
            for ev in routed:
                ev.source = source
        if topic in ("registry", "watchlist", "case-reports") and \
                self.person.reference is not self.reference:
            self.person.apply(topic, value, source)
        for ev in entity_events:
            self.entities.push(ev)
        ready = self.entities.ready()
        return self.person.step(t_ms, [*person_events, *ready] if person_events else ready)

    def finish(self) -> list[WarningTask]:
        return self.person.finish(self.entities.drain())

    @property
    def late(self) -> int:
        return self.entities.buffer.late + self.decider.buffer.late

    @property
    def duplicates(self) -> int:
        return self.entities.duplicates + self.decider.stats.duplicates
