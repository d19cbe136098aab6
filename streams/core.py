"""The deterministic decision core, independent of Faust and of the broker.

Two stages, so the workers can repartition between them:

* ``Router`` (stage 1, partitioned like the input topics): turns a valid input record into
  ``PersonEvent``s keyed by the person it concerns, using the registry.
* ``Decider`` (stage 2, partitioned by person): orders each person's events by event time
  (``Reorderer``), drops duplicates, keeps per-person state and decides warning tasks.

``Core`` chains both in one process; the replay driver and the simulator's closed loop use it.
The Faust worker runs the same two objects on either side of the ``zt-person-events`` topic.

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

import hashlib
from dataclasses import dataclass, field
from typing import Any

from streams.eventtime import fmt, parse
from streams.privacy import mask_msisdn
from streams.reference import Person, Reference
from streams.tasks import Reason, WarningTask
from streams.watermark import Reorderer, SortKey

# Ties in event time are broken by topic, so reference-like facts come before activity.
TOPIC_RANK: dict[str, int] = {
    "registry": 0,
    "watchlist": 1,
    "case-reports": 2,
    "calls": 3,
    "transactions": 4,
    "task-outcomes": 5,
}
PERSON_TOPICS = ("calls", "transactions", "case-reports")


@dataclass(frozen=True)
class CoreConfig:
    """What the decisions depend on; every field is documented in the README."""

    lateness_ms: int = 2000
    min_call_s: int = 300  # an answered call at least this long counts as a "hooked" call
    long_call_s: int = 20 * 60  # priority 1 from this duration on
    elderly_age: int = 65
    episode_quiet_ms: int = 72 * 3600 * 1000  # an episode closes after this long without a task
    seen_ttl_ms: int = 48 * 3600 * 1000  # how long event ids are remembered for de-duplication
    ruleset_version: str = "core-v1"
    model_version: str = "none"


@dataclass(slots=True)
class PersonEvent:
    """One input record routed to the person it concerns."""

    topic: str
    person_id: str
    value: dict[str, Any]
    t_ms: int
    offset_min: int
    arrived: float = 0.0  # wall seconds at the worker; only for latency metrics, never decisions
    origin: tuple[int, int] | None = None  # (partition, offset) in a worker, for commits

    @property
    def key(self) -> SortKey:
        return (self.t_ms, TOPIC_RANK[self.topic], self.value["event_id"])

    def envelope(self) -> dict[str, Any]:
        return {"topic": self.topic, "person": self.person_id, "arrived": self.arrived,
                "value": self.value}

    @classmethod
    def from_envelope(cls, env: dict[str, Any]) -> PersonEvent:
        t = parse(env["value"]["event_time"])
        return cls(env["topic"], env["person"], env["value"], t.ms, t.offset_min, env["arrived"])


class Router:
    """Stage 1: find the persons a record concerns. Reference topics update the global tables."""

    def __init__(self, reference: Reference):
        self.reference = reference

    def route(self, topic: str, value: dict[str, Any], arrived: float = 0.0) -> list[PersonEvent]:
        if topic in ("registry", "watchlist"):
            self.reference.apply(topic, value)
            return []
        person: Person | None
        if topic == "calls":
            person = self.reference.person_of_msisdn(value["callee"])
        elif topic == "transactions":
            person = self.reference.person_of_account(value["payer_account"])
        elif topic == "case-reports":
            pid = value["person_id"]
            t = parse(value["event_time"])
            return [PersonEvent(topic, pid, value, t.ms, t.offset_min, arrived)]
        else:
            return []  # task-outcomes are counted; the outcome loop routes them (episodes)
        if person is None:
            return []  # unregistered: no person to warn (line-level features will use it)
        t = parse(value["event_time"])
        return [PersonEvent(topic, person.person_id, value, t.ms, t.offset_min, arrived)]


@dataclass(slots=True)
class Episode:
    episode_id: str
    opened_ms: int
    last_ms: int
    issued: set[tuple[str, str]] = field(default_factory=set)  # (reason code, subject)


@dataclass(slots=True)
class PersonState:
    seen: dict[str, int] = field(default_factory=dict)  # event_id -> event time, for de-dup
    episode: Episode | None = None


@dataclass
class DecisionStats:
    decided: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0


class Decider:
    """Stage 2: per-person ordering, state and decisions."""

    def __init__(self, reference: Reference, config: CoreConfig | None = None,
                 max_wait_s: float | None = None):
        self.reference = reference
        self.config = config or CoreConfig()
        self.buffer = Reorderer(self.config.lateness_ms, max_wait_s)
        self.persons: dict[str, PersonState] = {}
        self.stats = DecisionStats()

    def push(self, ev: PersonEvent, now: float = 0.0) -> None:
        self.buffer.push(ev.key, ev, now)

    def ready(self, now: float = 0.0) -> list[tuple[PersonEvent, WarningTask]]:
        return self._decide_all(self.buffer.pop_ready(now))

    def drain(self) -> list[tuple[PersonEvent, WarningTask]]:
        return self._decide_all(self.buffer.drain())

    def _decide_all(self, events: list[PersonEvent]) -> list[tuple[PersonEvent, WarningTask]]:
        out: list[tuple[PersonEvent, WarningTask]] = []
        for ev in events:
            out.extend((ev, task) for task in self.decide(ev))
        return out

    def decide(self, ev: PersonEvent) -> list[WarningTask]:
        state = self.persons.get(ev.person_id)
        if state is None:
            state = self.persons[ev.person_id] = PersonState()
        eid = ev.value["event_id"]
        if eid in state.seen:
            self.stats.duplicates += 1
            return []
        state.seen[eid] = ev.t_ms
        if len(state.seen) > 256:
            self._forget_old(state, ev.t_ms)
        self.stats.decided[ev.topic] = self.stats.decided.get(ev.topic, 0) + 1
        if ev.topic == "calls":
            return self._call_from_watchlisted_number(ev, state)
        return []

    def _forget_old(self, state: PersonState, now_ms: int) -> None:
        horizon = now_ms - self.config.seen_ttl_ms
        state.seen = {k: t for k, t in state.seen.items() if t >= horizon}

    # --- rules of the first decision path -------------------------------------------------

    def _call_from_watchlisted_number(self, ev: PersonEvent, state: PersonState) -> list[WarningTask]:
        cfg, v = self.config, ev.value
        if v["kind"] != "voice" or not v.get("answered") or v["duration_s"] < cfg.min_call_s:
            return []
        end_ms = ev.t_ms + v["duration_s"] * 1000  # the evidence is complete when the call ends
        listing = self.reference.listed(v["caller"], end_ms)
        person = self.reference.persons.get(ev.person_id)
        if listing is None or listing.kind != "msisdn" or person is None:
            return []
        episode = self._episode(ev.person_id, state, end_ms, ev.offset_min)
        subject = ("CALL_FROM_WATCHLISTED_NUMBER", v["caller"])
        if subject in episode.issued:
            return []  # the same episode is never warned twice for the same reason
        episode.issued.add(subject)
        episode.last_ms = end_ms

        minutes = v["duration_s"] // 60
        reasons = [Reason(
            "CALL_FROM_WATCHLISTED_NUMBER",
            f"{minutes}-minute answered call from watch-listed {v['caller_origin']} number "
            f"{mask_msisdn(v['caller'])} ({listing.category.replace('_', ' ')}, listed by "
            f"{listing.source}, confidence {listing.confidence:.2f}), ended "
            f"{fmt(end_ms, ev.offset_min)[11:16]}",
        )]
        age = _age(person, end_ms, ev.offset_min)
        elderly = age >= cfg.elderly_age
        if elderly:
            reasons.append(Reason("ELDERLY_PERSON", f"the person is {age} years old; "
                                  "elderly people are among the most targeted"))
        priority = 1 if (elderly or v["duration_s"] >= cfg.long_call_s) else 2
        return [WarningTask(
            action="call",
            person_id=person.person_id,
            district=person.district,
            episode_id=episode.episode_id,
            created_ms=end_ms,
            offset_min=ev.offset_min,
            priority=priority,
            risk_score=listing.confidence,
            reasons=reasons,
            evidence=[v["event_id"]],
            model_version=cfg.model_version,
            ruleset_version=cfg.ruleset_version,
            contact_msisdn=v["callee"],
        )]

    def _episode(self, pid: str, state: PersonState, t_ms: int, offset_min: int) -> Episode:
        ep = state.episode
        if ep is None or t_ms - ep.last_ms > self.config.episode_quiet_ms:
            ep = state.episode = Episode(_episode_id(pid, t_ms, offset_min), t_ms, t_ms)
        return ep


def _age(person: Person, t_ms: int, offset_min: int) -> int:
    return int(fmt(t_ms, offset_min)[:4]) - person.birth_year


def _episode_id(pid: str, opened_ms: int, offset_min: int) -> str:
    stamp = fmt(opened_ms, offset_min)
    eid = f"E-{pid}-{stamp[:4]}{stamp[5:7]}{stamp[8:10]}{stamp[11:13]}{stamp[14:16]}"
    if len(eid) <= 128:
        return eid
    return "E-" + hashlib.blake2b(eid.encode(), digest_size=12).hexdigest()


class Core:
    """Both stages in one process, for replay and the simulator's closed loop."""

    def __init__(self, config: CoreConfig | None = None):
        self.config = config or CoreConfig()
        self.reference = Reference()
        self.router = Router(self.reference)
        self.decider = Decider(self.reference, self.config)

    def feed(self, topic: str, value: dict[str, Any]) -> list[WarningTask]:
        """Take one contract-valid record; return the tasks it makes ready, in order."""
        for ev in self.router.route(topic, value):
            self.decider.push(ev)
        return [task for _, task in self.decider.ready()]

    def finish(self) -> list[WarningTask]:
        return [task for _, task in self.decider.drain()]
