"""The closed loop: the city's records go to the decision core as they happen, and its warning
tasks are answered by simulated police desks, banks and people, with realistic delays.

* a dissuasion call reaches the person or not (age, and police-impersonation victims told to
  answer nobody); a reached victim is dissuaded with a chance by fraud type, age and timing;
  unreached people wait for a visit, if the core asks for one;
* a hold works only while the transfer is still ``initiated``; it also puts the payer under
  temporary protective measures (non-counter payments refused for a day);
* a stop-payment recovers only what the mule account has not yet moved on.

Outcomes are emitted as ``task-outcomes`` records and fed back to the core. Running the same seed
without the loop gives the counterfactual city.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from streams.contract import INPUT_TOPICS
from streams.eventtime import parse

from .clock import HOUR, MINUTE, SECOND
from .fraud import NEVER, Episode
from .numbers import WARNING_LINE

if TYPE_CHECKING:
    from .city import City


def _record(task: Any) -> dict[str, Any]:
    """Tasks may come as the core's objects or as contract dicts."""
    return task.to_record() if hasattr(task, "to_record") else dict(task)


class Responder:
    def __init__(self, city: City, core: Any, rng: np.random.Generator):
        self.city = city
        self.core = core
        self.rng = rng
        self.cfg = city.cfg["respond"]
        self.tasks: list[dict[str, Any]] = []
        self.outcomes: Counter[str] = Counter()
        self.amounts: Counter[str] = Counter()
        self.pending: dict[str, int] = {}  # txn_id -> initiation time, until its end state
        self._seen: set[str] = set()
        self.warned_persons: dict[int, int] = {}  # person -> first time a desk reached them
        self.false_stops = 0
        city.engine.sinks.append(self.on_record)
        city.engine.filters.append(self.on_before)

    # --- the pipeline's side -----------------------------------------------------------------
    def on_before(self, t: int, topic: str, value: dict[str, Any]) -> None:
        """A transfer whose hold took effect ends ``held`` instead of ``completed``."""
        if topic == "transactions" and value["status"] == "completed":
            h = self.city.holds.get(value["txn_id"])
            if h is not None and h <= t:
                value["status"] = "held"

    def on_record(self, t: int, topic: str, record: dict[str, Any]) -> None:
        if topic == "transactions":
            if record["status"] == "initiated":
                self.pending[record["txn_id"]] = t
            else:
                self.pending.pop(record["txn_id"], None)
        if topic in INPUT_TOPICS:
            for task in self.core.feed(topic, record):
                self.on_task(t, _record(task))

    def flush(self) -> None:
        t = self.city.engine.now
        for task in self.core.finish():
            self.on_task(t, _record(task))

    def on_task(self, t: int, task: dict[str, Any]) -> None:
        if task["task_id"] in self._seen:
            return
        self._seen.add(task["task_id"])
        self.tasks.append(task)
        rng, c, eng = self.rng, self.cfg, self.city.engine
        # A call record is emitted at the call's start (its event time) but carries its duration:
        # nobody may act on a task before the moment its evidence really existed.
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


def null_core() -> Callable[[], Any]:
    """A core that never warns: the loop runs, nothing is answered (for tests)."""

    class Null:
        def feed(self, topic: str, value: dict[str, Any]) -> list:
            return []

        def finish(self) -> list:
            return []

    return Null
