"""The closed loop: the city's records go to a pipeline as the feeds send them, and its warning
tasks are answered by simulated police desks, bank liaisons and people, with realistic delays.

* a dissuasion call reaches the person or not (age, and police-impersonation victims told to
  answer nobody); a reached victim is dissuaded with a chance by fraud type, age and timing;
  unreached people wait for a visit, if the pipeline asks for one;
* a district's desk works its calls and visits one after another, at the capacity the policy
  gives it (``district_capacity_per_hour``): a burst of tasks waits for the desk;
* a hold works only while the transfer is still ``initiated``; it also puts the payer under
  temporary protective measures (non-counter payments refused for a day);
* a stop-payment recovers only what the mule account has not yet moved on.

``Responder`` is that side of the loop, written once; the pipeline is a driver's: ``CoreLink``
(this module) runs the decision core in this process, ``streams.simulator.centre`` runs the live
workers over the broker. Both give the responder the tasks at the same moment of the city's
event time (when the record that lets the pipeline decide them is sent), so one seed gives one
city either way. Outcomes are emitted as ``task-outcomes`` records in the city's event time.
Running the same seed without a pipeline gives the counterfactual city.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from streams.contract import INPUT_TOPICS
from streams.core import availability_ms
from streams.eventtime import parse
from streams.topics import HIGH_VOLUME

from .clock import HOUR, MINUTE, SECOND
from .fraud import NEVER, Episode
from .numbers import WARNING_LINE

if TYPE_CHECKING:
    from .city import City

Out = Callable[[int, str, dict[str, Any]], None]


def task_record(task: Any) -> dict[str, Any]:
    """Tasks may come as the core's objects or as contract dicts."""
    return task.to_record() if hasattr(task, "to_record") else dict(task)


class FeedOrder:
    """The city's records in the order the feeds send them: a carrier sends a call record once
    the call has ended (the contract stamps it with its start), everything else as it happens.

    A sink of the city's engine; ``out(now, topic, record)`` gets each record, ``now`` being the
    city's time when it is sent (for a call, the time of the first record at or after its end).
    A pipeline fed so never sees a call before it could exist, and a worker's watermark never
    runs ahead of the city (nothing sent is available later than the city's now).
    """

    def __init__(self, out: Out):
        self.out = out
        self._calls: list[tuple[int, int, dict[str, Any]]] = []  # (end, order, record)
        self._n = 0
        self.now = -(2**62)

    def __call__(self, t: int, topic: str, record: dict[str, Any]) -> None:
        self.release(t)
        if topic == "calls":
            end = availability_ms(topic, record, t)
            if end > t:
                heapq.heappush(self._calls, (end, self._n, record))
                self._n += 1
                return
        self.out(t, topic, record)

    def release(self, now: int) -> None:
        """Send the calls that have ended by ``now``."""
        self.now = max(self.now, now)
        calls = self._calls
        while calls and calls[0][0] <= now:
            self.out(self.now, "calls", heapq.heappop(calls)[2])

    def release_all(self) -> None:
        """The end of the run: calls still going on are sent as they stand."""
        while self._calls:
            self.out(self.now, "calls", heapq.heappop(self._calls)[2])


class Responder:
    """Desks, bank liaisons and people: ``on_task(t, task)`` at the city's time ``t`` when the
    pipeline's task reaches them; the rest happens in the city's event time."""

    def __init__(self, city: City, rng: np.random.Generator,
                 capacity_per_hour: dict[str, int] | None = None):
        self.city = city
        self.rng = rng
        self.cfg = city.cfg["respond"]
        if capacity_per_hour is None:
            from streams.ladder import Policy

            capacity_per_hour = Policy.load().district_capacity_per_hour
        self.capacity = capacity_per_hour
        self.desk_free: dict[str, int] = {}  # district -> when its desk is free again
        self.tasks: list[dict[str, Any]] = []
        self.outcomes: Counter[str] = Counter()
        self.amounts: Counter[str] = Counter()
        self.pending: dict[str, int] = {}  # txn_id -> initiation time, until its end state
        self._seen: set[str] = set()
        self.warned_persons: dict[int, int] = {}  # person -> first time a desk reached them
        self.false_stops = 0
        self.desk_waits = 0  # calls and visits that waited for a busy desk
        city.engine.sinks.append(self._track)
        city.engine.filters.append(self.on_before)

    # --- the city's side -------------------------------------------------------------------------
    def on_before(self, t: int, topic: str, value: dict[str, Any]) -> None:
        """A transfer whose hold took effect ends ``held`` instead of ``completed``."""
        if topic == "transactions" and value["status"] == "completed":
            h = self.city.holds.get(value["txn_id"])
            if h is not None and h <= t:
                value["status"] = "held"

    def _track(self, t: int, topic: str, record: dict[str, Any]) -> None:
        if topic == "transactions":
            if record["status"] == "initiated":
                self.pending[record["txn_id"]] = t
            else:
                self.pending.pop(record["txn_id"], None)

    def on_task(self, t: int, task: dict[str, Any]) -> None:
        if task["task_id"] in self._seen:
            return
        self._seen.add(task["task_id"])
        self.tasks.append(task)
        rng, c, eng = self.rng, self.cfg, self.city.engine
        # A call record carries its duration: nobody may act on a task before the moment its
        # evidence really existed.
        t = max(t, parse(task["created_time"]).ms)
        action = task["action"]
        if action == "call":
            d = c["desk_call_delay_min_median"] * np.exp(c["desk_call_delay_sigma"]
                                                          * rng.standard_normal())
            eng.at(t + int(max(d, 0.5) * MINUTE), self.desk_call, task)
        elif action == "visit":
            lo, hi = c["visit_delay_min"]
            eng.at(t + int(rng.uniform(lo, hi) * MINUTE), self.visit, task)
        elif action == "hold":
            d = c["hold_delay_s_median"] * np.exp(c["hold_delay_sigma"] * rng.standard_normal())
            eng.at(t + int(max(d, 5) * SECOND), self.hold, task)
        elif action == "stop_payment":
            d = c["stop_delay_min_median"] * np.exp(c["stop_delay_sigma"] * rng.standard_normal())
            eng.at(t + int(max(d, 1) * MINUTE), self.stop, task)

    def _desk_busy(self, t: int, task: dict[str, Any], act: Callable[..., None]) -> bool:
        """A district's desk works one task at a time, ``capacity`` an hour: if it is busy, the
        task waits for it (and True is returned)."""
        district = task["district"]
        free = self.desk_free.get(district, t)
        if free > t:
            self.desk_waits += 1
            self.city.engine.at(free, act, task)
            return True
        per_hour = self.capacity.get(district, self.capacity.get("default", 30))
        self.desk_free[district] = t + HOUR // max(per_hour, 1)
        return False

    # --- desks and people ----------------------------------------------------------------------
    def _person(self, task: dict[str, Any]) -> int:
        pid = task["person_id"]
        try:
            i = int(pid[1:])
        except ValueError:
            return -1
        return i if pid.startswith("P") and 0 <= i < self.city.pop.n else -1

    def _outcome(self, t: int, task: dict[str, Any], actor: str, result: str,
                 amount: int | None = None, note: str | None = None) -> None:
        value: dict[str, Any] = {"task_id": task["task_id"], "actor": actor, "result": result}
        if amount is not None:
            value["amount_fen"] = int(amount)
        if note:
            value["note"] = note
        self.outcomes[f"{task['action']}:{result}"] += 1
        self.city.engine.emit(t, "task-outcomes", value)

    def _dissuade_p(self, ep: Episode, person: int, t: int, bonus: float) -> float:
        c = self.cfg
        p = c["dissuade_by_call"].get(ep.type, 0.6) + bonus
        pop = self.city.pop
        if pop.group_names[int(pop.group[person])] == "elderly":
            p *= c["dissuade_elderly_factor"]
        if not any(x.status in ("completed", "initiated") for x in ep.payments):
            p += c["dissuade_before_first_payment_bonus"]
        return min(max(p, 0.0), 0.98)

    def _reached(self, t: int, ep: Episode | None, person: int) -> None:
        self.warned_persons.setdefault(person, t)
        if ep is not None and ep.warned == NEVER:
            ep.warned = t

    def _dissuaded(self, t: int, ep: Episode) -> None:
        c = self.cfg
        if ep.dissuaded == NEVER:
            ep.dissuaded = t
        if self.rng.random() < c["relapse"]:  # warned, then defrauded anyway (预后被骗)
            lo, hi = c["relapse_delay_h"]
            ep.stopped_until = max(ep.stopped_until, t + int(self.rng.uniform(lo, hi) * HOUR))
        else:
            ep.stopped_until = NEVER

    def desk_call(self, t: int, task: dict[str, Any]) -> None:
        if self._desk_busy(t, task, self.desk_call):
            return
        city, c, rng = self.city, self.cfg, self.rng
        person = self._person(task)
        actor = f"desk:{task['district']}"
        if person < 0:
            self._outcome(t, task, actor, "unreachable", note="no such person in the registry")
            return
        pop = city.pop
        ep = city.fraud.episode_of(person, t)
        reach = c["reach"][pop.group_names[int(pop.group[person])]]
        if ep is not None and ep.type == "police_impersonation" and t < ep.end:
            reach = c["reach_during_police_scam"]
        reached = rng.random() < reach
        dur = int(rng.uniform(60, 600)) if reached else 0
        if c["desk_calls_in_cdr"]:
            city.engine.emit(t, "calls", {
                "carrier": city.background.carrier_of[person], "kind": "voice",
                "caller": WARNING_LINE, "callee": task.get("contact_msisdn") or pop.phone[person],
                "answered": reached, "duration_s": dur, "caller_origin": "domestic"})
        t_end = t + dur * SECOND + 30 * SECOND
        if not reached:
            self._outcome(t_end, task, actor, "unreachable")
            return
        self._reached(t, ep, person)
        if ep is None:
            self._outcome(t_end, task, actor, "not_fraud")
        elif rng.random() < self._dissuade_p(ep, person, t, 0.0):
            self._dissuaded(t, ep)
            self._outcome(t_end, task, actor, "dissuaded", note=f"fraud type: {ep.type}")
        else:
            self._outcome(t_end, task, actor, "refused")

    def visit(self, t: int, task: dict[str, Any]) -> None:
        if self._desk_busy(t, task, self.visit):
            return
        city, c, rng = self.city, self.cfg, self.rng
        person = self._person(task)
        actor = f"desk:{task['district']}"
        if person < 0 or rng.random() >= c["visit_reach"]:
            self._outcome(t, task, actor, "unreachable", note="nobody at home")
            return
        ep = city.fraud.episode_of(person, t)
        self._reached(t, ep, person)
        self._outcome(t, task, actor, "visited")
        t_end = t + int(rng.uniform(10, 30) * MINUTE)
        if ep is None:
            self._outcome(t_end, task, actor, "not_fraud")
        elif rng.random() < self._dissuade_p(ep, person, t, c["dissuade_by_visit_bonus"]):
            self._dissuaded(t, ep)
            self._outcome(t_end, task, actor, "dissuaded", note="face-to-face")
        else:
            self._outcome(t_end, task, actor, "refused", note="face-to-face")

    # --- banks ---------------------------------------------------------------------------------
    def hold(self, t: int, task: dict[str, Any]) -> None:
        city, c = self.city, self.cfg
        actor = f"bank:{task.get('bank', 'unknown')}"
        txn = task.get("txn_id", "")
        if self.rng.random() < c["bank_fail"]:
            self._outcome(t, task, actor, "failed", note="the bank could not act in time")
            return
        person = self._person(task)
        if person >= 0:  # temporary protective measures on the payer, whatever the transfer did
            until = t + int(c["hold_protect_h"] * HOUR)
            fr = city.fraud
            fr.protected_until[person] = max(fr.protected_until.get(person, 0), until)
        if txn in self.pending:
            city.holds[txn] = t
            amount = int(task.get("amount_fen") or 0)
            self.amounts["held_fen"] += amount
            self._outcome(t, task, actor, "held", amount)
        else:
            self._outcome(t, task, actor, "failed",
                          note="transfer already completed; protective measures applied")

    def stop(self, t: int, task: dict[str, Any]) -> None:
        city, c = self.city, self.cfg
        actor = f"bank:{task.get('bank', 'unknown')}"
        if self.rng.random() < c["bank_fail"]:
            self._outcome(t, task, actor, "failed", note="the bank could not act in time")
            return
        account = task.get("account", "")
        amount = int(task.get("amount_fen") or 0)
        mule = city.fraud.mule_by_number.get(account)
        if account in city.fraud.second_level:
            # Second-level accounts move money on within minutes; only a fast stop catches it.
            credit = city.fraud.onward.get(task.get("txn_id", ""))
            if credit is not None and t - credit[0] < c["second_level_window_min"] * MINUTE:
                credit[1].recovered += amount
                self.amounts["stopped_fen"] += amount
                self._outcome(t, task, actor, "stopped", amount)
            else:
                self._outcome(t, task, actor, "failed", note="funds already moved on")
            return
        if mule is None:  # an honest payee: the money is there, and the stop hurts a bystander
            self.false_stops += 1
            self.amounts["stopped_fen"] += amount
            self._outcome(t, task, actor, "stopped", amount)
            return
        got = min(amount, mule.balance)
        mule.balance -= got
        mule.frozen = True  # the 48-hour stop is followed by a freeze
        mule.stopped_fen += got
        hit = city.fraud.txn_episode.get(task.get("txn_id", ""))
        if hit is not None:
            hit[1].recovered += got
        if got > 0:
            self.amounts["stopped_fen"] += got
            self._outcome(t, task, actor, "stopped", got)
        else:
            self._outcome(t, task, actor, "failed", note="funds already moved on")


class Handover:
    """When a pipeline's tasks reach the desks: once the pipeline could have decided them, that
    is once traffic (calls, transactions) ``lateness_ms`` past a task's creation has been sent,
    for a worker's watermark follows its traffic. Tasks wait here in the order they were made."""

    def __init__(self, lateness_ms: int):
        self.lateness = lateness_ms
        self.waiting: list[tuple[int, dict[str, Any]]] = []  # (created, task record)

    def add(self, tasks: list[Any]) -> None:
        for task in tasks:
            rec = task_record(task)
            self.waiting.append((parse(rec["created_time"]).ms, rec))

    def ready(self, topic: str, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The tasks a record just sent lets the pipeline decide (in the order they were made)."""
        if topic not in HIGH_VOLUME or not self.waiting:
            return []
        by = parse(record["event_time"]).ms - self.lateness
        out = [rec for created, rec in self.waiting if created <= by]
        if out:
            self.waiting = [(c, rec) for c, rec in self.waiting if c > by]
        return out

    def rest(self) -> list[dict[str, Any]]:
        out, self.waiting = [rec for _, rec in self.waiting], []
        return out


class CoreLink:
    """The in-process pipeline: the city's records, as the feeds send them, through a decision
    core (``feed(topic, value) -> tasks``, ``finish() -> tasks``); its tasks to the responder."""

    def __init__(self, city: City, core: Any, responder: Responder):
        self.city = city
        self.core = core
        self.responder = responder
        config = getattr(core, "config", None)
        self.handover = Handover(getattr(config, "lateness_ms", 200))
        self.order = FeedOrder(self._feed)
        city.engine.sinks.append(self.order)

    def _feed(self, now: int, topic: str, record: dict[str, Any]) -> None:
        if topic in INPUT_TOPICS:
            self.handover.add(self.core.feed(topic, record))
            for task in self.handover.ready(topic, record):
                self.responder.on_task(now, task)

    def finish(self) -> None:
        """The end of the run: what the core still holds is decided (too late to act on)."""
        self.order.release(self.city.engine.now)
        self.order.release_all()
        self.handover.add(self.core.finish())
        for task in self.handover.rest():
            self.responder.on_task(self.city.engine.now, task)


def null_core() -> Callable[[], Any]:
    """A core that never warns: the loop runs, nothing is answered (for tests)."""

    class Null:
        def feed(self, topic: str, value: dict[str, Any]) -> list:
            return []

        def finish(self) -> list:
            return []

    return Null
