"""The dissuasion ladder: episodes, actions, SLA timers in event time, outcomes, the legal clocks
of holds and stop-payments, and the zero-transfer rate.

The ladder is the policy half of the person stage: it sees scoring points (with their rule hits
and model score), transfers changing state, desks' and banks' outcomes and case reports, in the
order of their time, and timers fire in that same order ("due" means the stream's event time
has passed the due time, never the wall clock). So workers and replay escalate identically.

Every figure the users report is counted in ``LadderStats`` (the workers export it to
Prometheus, replay prints it).
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from streams.eventtime import fmt
from streams.privacy import mask_account
from streams.reference import Person
from streams.state import HOUR
from streams.tasks import Reason, WarningTask
from streams.words import LANGUAGES, Words

# --- the policy file --------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    version: str = "policy-builtin"
    language: str = "zh_CN"  # of the reasons desks and banks read (streams/words.py)
    contact_threshold: float = 0.85
    transfer_threshold: float = 0.85
    visit_threshold: float = 0.95
    elderly_age: int = 65
    paid_after_warning_min_cny: float = 1000
    episode_payee_min_cny: float = 100
    known_payees_after_days: float = 3
    merchant_min_payers: int = 10
    time_limits_s: dict[str, int] = field(default_factory=lambda: {
        "call": 300, "visit": 3600, "hold": 120, "stop_payment": 600})
    episode_quiet_hours: float = 72
    stop_payment_hours: float = 48
    stop_payment_renewals: int = 2
    stop_payment_warn_before_hours: float = 4
    hold_hours: float = 24
    hold_warn_before_hours: float = 2
    zero_transfer_windows_hours: tuple[int, ...] = (24, 72)
    confirmation_grace_hours: float = 48
    district_capacity_per_hour: dict[str, int] = field(default_factory=lambda: {"default": 30})

    @classmethod
    def load(cls, path: str | Path | None = None) -> Policy:
        """Load the policy file (default: the packaged ``streams/policy.yaml``)."""
        text = (Path(path).read_text("utf-8") if path is not None else
                (resources.files("streams") / "policy.yaml").read_text("utf-8"))
        data = yaml.safe_load(text) or {}
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"policy: unknown settings {sorted(unknown)}")
        if "zero_transfer_windows_hours" in data:
            data["zero_transfer_windows_hours"] = tuple(data["zero_transfer_windows_hours"])
        policy = cls(**data)
        if policy.language not in LANGUAGES:
            raise ValueError(f"policy: language {policy.language!r} is not one of "
                             f"{', '.join(LANGUAGES)}")
        missing = {"call", "visit", "hold", "stop_payment"} - set(policy.time_limits_s)
        if missing:
            raise ValueError(f"policy: time_limits_s lacks {sorted(missing)}")
        return policy


# --- tracked objects ----------------------------------------------------------------------------


@dataclass(slots=True)
class TaskState:
    task_id: str
    action: str
    created_ms: int
    due_ms: int
    evidence: tuple[str, ...] = ()
    txn_id: str | None = None
    account: str | None = None
    bank: str | None = None
    amount_fen: int | None = None
    result: str | None = None


@dataclass(slots=True)
class Episode:
    episode_id: str
    person_id: str
    district: str
    opened_ms: int
    last_ms: int
    offset_min: int = 0
    issued: set[tuple[str, str]] = field(default_factory=set)  # (reason code, subject)
    lines: set[str] = field(default_factory=set)  # lines whose calls raised its contact tasks
    payees: set[str] = field(default_factory=set)  # accounts its money tasks were about
    tasks: dict[str, TaskState] = field(default_factory=dict)
    first_warning_ms: int | None = None
    dissuaded: bool = False
    closed: bool = False
    paid_after_warning: list[tuple[int, str, int, str]] = field(default_factory=list)
    timeline: list[tuple[int, str]] = field(default_factory=list)

    def note(self, t_ms: int, text: str) -> None:
        if len(self.timeline) < 200:
            self.timeline.append((t_ms, text))

    def dump(self) -> list[Any]:
        return [self.episode_id, self.district, self.opened_ms, self.last_ms, self.offset_min,
                [x for pair in sorted(self.issued) for x in pair], sorted(self.lines), sorted(self.payees),
                [[s.task_id, s.action, s.created_ms, s.due_ms, list(s.evidence), s.txn_id, s.account,
                  s.bank, s.amount_fen, s.result] for s in self.tasks.values()],
                self.first_warning_ms, self.dissuaded, self.closed,
                [list(p) for p in self.paid_after_warning], [list(n) for n in self.timeline]]

    @classmethod
    def load(cls, person_id: str, d: list[Any]) -> Episode:
        ep = cls(d[0], person_id, d[1], d[2], d[3], d[4])
        ep.issued = {(d[5][i], d[5][i + 1]) for i in range(0, len(d[5]), 2)}
        ep.lines, ep.payees = set(d[6]), set(d[7])
        ep.tasks = {t[0]: TaskState(t[0], t[1], t[2], t[3], tuple(t[4]), *t[5:]) for t in d[8]}
        ep.first_warning_ms, ep.dissuaded, ep.closed = d[9], d[10], d[11]
        ep.paid_after_warning = [tuple(p) for p in d[12]]  # type: ignore[misc]
        ep.timeline = [tuple(n) for n in d[13]]  # type: ignore[misc]
        return ep


@dataclass
class LadderStats:
    """Counters of the users' figures: (name, labels) -> value."""

    counts: dict[tuple[str, tuple[str, ...]], float] = field(default_factory=dict)
    first_warning_s: list[float] = field(default_factory=list)  # drained by the metrics exporter

    def add(self, name: str, *labels: str, value: float = 1.0) -> None:
        key = (name, labels)
        self.counts[key] = self.counts.get(key, 0.0) + value

    def get(self, name: str, *labels: str) -> float:
        return self.counts.get((name, labels), 0.0)


@dataclass(order=True, slots=True)
class Timer:
    fire_ms: int
    seq: int
    person_id: str = field(compare=False)
    kind: str = field(compare=False)  # sla | stop_lapse | hold_lapse | zero_transfer
    ref: Any = field(compare=False)


class Ladder:
    """Episodes and escalations of the persons of one person stage."""

    def __init__(self, policy: Policy | None = None):
        self.policy = policy or Policy.load()
        self.words = Words(self.policy.language)
        self.episodes: dict[str, Episode] = {}
        self.confirmed: dict[str, set[str]] = {}  # person -> fraud accounts from their reports
        self.stats = LadderStats()
        self.review: list[dict[str, Any]] = []  # people defrauded after a warning (预后被骗)
        self._timers: list[Timer] = []
        self._of: dict[str, list[Timer]] = {}  # each person's timers (what a checkpoint keeps)
        self._seq = 0  # creation order: ties in time fire in it
        # Persons whose ladder (or, through the Decider, any) state changed, for a worker's
        # checkpoint; None: nobody asks (replay).
        self.touched: set[str] | None = None

    # --- time ------------------------------------------------------------------------------

    def advance(self, now_ms: int, persons: dict[str, Person], listed: Any) -> list[WarningTask]:
        """Fire every timer due by ``now_ms`` (event time), in order."""
        out: list[WarningTask] = []
        while self._timers and self._timers[0].fire_ms <= now_ms:
            timer = heapq.heappop(self._timers)
            mine = self._of[timer.person_id]
            mine.remove(timer)
            if not mine:
                del self._of[timer.person_id]
            if self.touched is not None:
                self.touched.add(timer.person_id)
            ep = self.episodes.get(timer.person_id)
            person = persons.get(timer.person_id)
            if ep is None or person is None:
                continue
            out.extend(self._fire(timer, ep, person, listed))
        return out

    def due(self, now_ms: int) -> bool:
        """Whether ``advance(now_ms)`` would fire a timer (the person stage asks at every event)."""
        timers = self._timers
        return bool(timers) and timers[0].fire_ms <= now_ms

    def _at(self, fire_ms: int, person_id: str, kind: str, ref: Any) -> None:
        timer = Timer(fire_ms, self._seq, person_id, kind, ref)
        self._seq += 1
        heapq.heappush(self._timers, timer)
        self._of.setdefault(person_id, []).append(timer)

    # --- per-person state, for a worker's changelog ------------------------------------------

    def dump(self, person_id: str) -> list[Any] | None:
        """A person's episode, timers (with their order) and confirmed accounts (None: none)."""
        ep, timers = self.episodes.get(person_id), self._of.get(person_id)
        confirmed = self.confirmed.get(person_id)
        if ep is None and not timers and not confirmed:
            return None
        return [ep.dump() if ep is not None else None,
                [x for t in timers for x in (t.fire_ms, t.seq, t.kind, t.ref)] if timers else None,
                sorted(confirmed) if confirmed else None]

    def install(self, person_id: str, d: list[Any]) -> None:
        if d[0] is not None:
            self.episodes[person_id] = Episode.load(person_id, d[0])
        if d[1]:
            t = d[1]
            for i in range(0, len(t), 4):
                ref = tuple(t[i + 3]) if isinstance(t[i + 3], list) else t[i + 3]
                timer = Timer(t[i], t[i + 1], person_id, t[i + 2], ref)
                heapq.heappush(self._timers, timer)
                self._of.setdefault(person_id, []).append(timer)
                # Later timers of this person come after it, as they did where it was made.
                self._seq = max(self._seq, t[i + 1] + 1)
        if d[2]:
            self.confirmed[person_id] = set(d[2])

    def forget(self, person_ids: list[str]) -> None:
        gone = False
        for pid in person_ids:
            self.episodes.pop(pid, None)
            self.confirmed.pop(pid, None)
            gone = self._of.pop(pid, None) is not None or gone
        if gone:
            self._timers = [t for t in self._timers if t.person_id in self._of]
            heapq.heapify(self._timers)

    # --- episodes and tasks ---------------------------------------------------------------------

    def open(self, ep: Episode, t_ms: int) -> bool:
        """Whether ``ep`` is going on at ``t_ms``: warned, not closed as no fraud, and active
        within the policy's quiet time (its tasks, and calls from its lines, keep it active)."""
        return (not ep.closed and ep.first_warning_ms is not None
                and t_ms - ep.last_ms <= self.policy.episode_quiet_hours * HOUR)

    def contacted(self, person_id: str, line: str, t_ms: int) -> None:
        """A line of an open episode called its person again: the fraud goes on."""
        ep = self.episodes.get(person_id)
        if ep is not None and line in ep.lines and self.open(ep, t_ms) and t_ms > ep.last_ms:
            ep.last_ms = t_ms
            ep.note(t_ms, self.words.say("called again by the line it was warned about"))

    def episode(self, person: Person, t_ms: int, offset_min: int) -> Episode:
        ep = self.episodes.get(person.person_id)
        quiet = self.policy.episode_quiet_hours * HOUR
        if ep is None or ep.closed or t_ms - ep.last_ms > quiet:
            ep = Episode(_episode_id(person.person_id, t_ms, offset_min), person.person_id,
                         person.district, t_ms, t_ms, offset_min)
            self.episodes[person.person_id] = ep
            self.stats.add("episodes_opened")
        return ep

    def issue(self, ep: Episode, task: WarningTask, subject_codes: list[tuple[str, str]]) -> WarningTask:
        """Register a task the stage is about to send: timers, figures, the episode's memory."""
        p = self.policy
        task.due_s = p.time_limits_s[task.action]
        rec_id = task.task_id
        due = task.created_ms + task.due_s * 1000
        ep.tasks[rec_id] = TaskState(rec_id, task.action, task.created_ms, due, tuple(task.evidence),
                                     task.txn_id, task.account, task.bank, task.amount_fen)
        ep.issued.update(subject_codes)
        ep.last_ms = max(ep.last_ms, task.created_ms)
        ep.note(task.created_ms, self.words.say("{action}: task raised ({codes})",
                                                action=self._action(task.action),
                                                codes=", ".join(r.code for r in task.reasons)))
        self._at(due, ep.person_id, "sla", rec_id)
        self.stats.add("warnings", task.action, ep.district)
        if task.action in ("hold", "stop_payment") and task.amount_fen:
            self.stats.add("funds_fen", f"{task.action}_requested", value=task.amount_fen)
        if ep.first_warning_ms is None:
            ep.first_warning_ms = task.created_ms
            self.stats.add("warned_persons")
            for hours in p.zero_transfer_windows_hours:
                judge = task.created_ms + int((hours + p.confirmation_grace_hours) * HOUR)
                self._at(judge, ep.person_id, "zero_transfer", hours)
        return task

    # --- what happened --------------------------------------------------------------------------

    def transfer_seen(self, person: Person, v: dict[str, Any], t_ms: int) -> list[WarningTask]:
        """A transfer of a warned person moved: track payments after a warning, and escalate a
        hold that came too late to a stop-payment."""
        ep = self.episodes.get(person.person_id)
        if ep is None or ep.first_warning_ms is None or t_ms < ep.first_warning_ms:
            return []
        status, txn = v["status"], v["txn_id"]
        own = v["payee_account"] in {a for _, a in person.accounts}
        if status == "completed" and not own:
            ep.paid_after_warning.append((t_ms, v["payee_account"], v["amount_fen"], txn))
            ep.note(t_ms, self.words.say("paid {amount} CNY to {account}", amount=_cny(v["amount_fen"]),
                                          account=mask_account(v["payee_account"])))
        hold = next((s for s in ep.tasks.values() if s.action == "hold" and s.txn_id == txn), None)
        if status != "completed" or hold is None or hold.result == "held":
            return []
        # The hold did not stop it: the money is on the payee account now.
        w, values = self.words, dict(amount=_cny(v["amount_fen"]),
                                     account=mask_account(v["payee_account"]))
        if hold.result == "failed":
            text = w.say("the bank could not hold this transfer; {amount} CNY reached {account}: "
                         "stop it there", **values)
        else:
            text = w.say("the transfer completed {seconds} s after the hold was raised, before the "
                         "bank held it; {amount} CNY reached {account}: stop it there",
                         seconds=max(0, (t_ms - hold.created_ms) // 1000), **values)
        return [self._task(ep, person, t_ms, v, "stop_payment", 1, [Reason("HOLD_TOO_LATE", text)],
                           "HOLD_TOO_LATE", txn, [*hold.evidence, v["event_id"]])]

    def outcome(self, person: Person, v: dict[str, Any], t_ms: int) -> list[WarningTask]:
        ep = self.episodes.get(person.person_id)
        if ep is None or v["task_id"] not in ep.tasks:
            return []
        state = ep.tasks[v["task_id"]]
        result = v["result"]
        first = state.result is None
        state.result = result
        if not first:
            return []  # a repeated outcome changes nothing
        self.stats.add("outcomes", result)
        ep.note(t_ms, self.words.say("{action}: outcome {result}", action=self._action(state.action),
                                      result=self.words.say(_RESULTS.get(result, result))))
        if t_ms > state.due_ms:
            self.stats.add("done_late", state.action)
        p = self.policy
        if result in ("dissuaded", "visited"):
            ep.dissuaded = True
            self.stats.add("dissuaded" if result == "dissuaded" else "visited")
        elif result == "not_fraud":
            ep.closed = True
        elif result in ("unreachable", "refused") and state.action == "call":
            code = "CALL_UNREACHABLE" if result == "unreachable" else "CALL_REFUSED"
            text = (self.words.say("the dissuasion call did not reach the person: go and see them")
                    if result == "unreachable" else self.words.say(
                        "the person insisted on paying during the dissuasion call: go and see them"))
            return [self._visit(ep, person, t_ms, code, text, state, v["event_id"])]
        elif result == "held" and state.action == "hold":
            self.stats.add("funds_fen", "held", value=v.get("amount_fen", 0))
            lapse = t_ms + int((p.hold_hours - p.hold_warn_before_hours) * HOUR)
            self._at(lapse, ep.person_id, "hold_lapse", state.task_id)
        elif result == "stopped" and state.action == "stop_payment":
            self.stats.add("funds_fen", "stopped", value=v.get("amount_fen", 0))
            self._at(t_ms + int((p.stop_payment_hours - p.stop_payment_warn_before_hours) * HOUR),
                     ep.person_id, "stop_lapse", (state.task_id, 0))
        return []

    def case_report(self, person_id: str, v: dict[str, Any]) -> None:
        self.confirmed.setdefault(person_id, set()).update(v["fraud_accounts"])
        self.stats.add("case_reports")
        self.stats.add("case_losses_fen", value=v["loss_fen"])

    # --- timers ----------------------------------------------------------------------------

    def _fire(self, timer: Timer, ep: Episode, person: Person, listed: Any) -> list[WarningTask]:
        p = self.policy
        if timer.kind == "sla":
            state = ep.tasks.get(timer.ref)
            if state is None or state.result is not None:
                return []
            self.stats.add("sla_breaches", state.action)
            ep.note(timer.fire_ms, self.words.say("{action}: overdue", action=self._action(state.action)))
            if state.action == "call" and not ep.closed:
                return [self._visit(ep, person, timer.fire_ms, "CALL_OVERDUE", self.words.say(
                    "the dissuasion call was not made in time: go and see them"), state)]
            return []
        if timer.kind == "zero_transfer":
            return self._judge_zero_transfer(ep, person, timer.ref, listed, timer.fire_ms)
        if timer.kind == "hold_lapse":
            state = ep.tasks[timer.ref]
            return [self._visit(ep, person, timer.fire_ms, "HOLD_EXPIRING", self.words.say(
                "the protective measures on {amount} CNY lapse in {hours} h: confirm with the "
                "person face to face before they are lifted", amount=_cny(state.amount_fen or 0),
                hours=f"{p.hold_warn_before_hours:g}"), state)]
        if timer.kind == "stop_lapse":
            task_id, renewals = timer.ref
            state = ep.tasks[task_id]
            last = renewals >= p.stop_payment_renewals
            code = "FREEZE_REQUIRED" if last else "STOP_PAYMENT_EXPIRING"
            values = dict(amount=_cny(state.amount_fen or 0), account=mask_account(state.account or ""),
                          hours=f"{p.stop_payment_warn_before_hours:g}")
            text = (self.words.say("the stop-payment of {amount} CNY on {account} lapses in {hours} h "
                                   "and cannot be renewed again: a formal freeze must follow",
                                   **values) if last else
                    self.words.say("the stop-payment of {amount} CNY on {account} lapses in {hours} h "
                                   "and may be renewed ({n} of {of})", n=renewals + 1,
                                   of=p.stop_payment_renewals, **values))
            v = {"txn_id": state.txn_id, "payee_bank": state.bank, "payee_account": state.account,
                 "amount_fen": state.amount_fen, "status": "completed"}
            task = self._task(ep, person, timer.fire_ms, v, "stop_payment", 1, [Reason(code, text)],
                              code, f"{state.txn_id}/{renewals}", list(state.evidence))
            if not last:
                # The renewed stop-payment runs a new 48 h from its expiry.
                self._at(timer.fire_ms + int(p.stop_payment_hours * HOUR), ep.person_id,
                         "stop_lapse", (task_id, renewals + 1))
            return [task]
        return []

    def _judge_zero_transfer(self, ep: Episode, person: Person, hours: int,
                             listed: Any, at_ms: int) -> list[WarningTask]:
        assert ep.first_warning_ms is not None
        end = ep.first_warning_ms + hours * HOUR
        confirmed = self.confirmed.get(person.person_id, set())
        # Listed when the window closed (the timer's time): the same answer in any driver.
        bad = [(t, a, amt, txn) for t, a, amt, txn in ep.paid_after_warning
               if t <= end and (a in confirmed or listed(a, at_ms) is not None)]
        window = f"{hours}h"
        self.stats.add("zero_transfer_judged", window)
        if not bad:
            self.stats.add("zero_transfer_kept", window)
        elif hours == max(self.policy.zero_transfer_windows_hours):
            self.stats.add("defrauded_after_warning")
            self.review.append({
                "person_id": person.person_id, "district": person.district,
                "episode_id": ep.episode_id,
                "first_warning": fmt(ep.first_warning_ms, ep.offset_min),
                "transfers": [{"time": fmt(t, ep.offset_min), "account": mask_account(a),
                               "amount_fen": amt, "txn_id": txn} for t, a, amt, txn in bad],
                "timeline": [f"{fmt(t, ep.offset_min)} {text}" for t, text in ep.timeline],
            })
        return []

    def _action(self, action: str) -> str:
        return self.words.say(_ACTIONS.get(action, action))

    # --- building tasks ---------------------------------------------------------------------------

    def _visit(self, ep: Episode, person: Person, t_ms: int, code: str, text: str,
               after: TaskState, event_id: str | None = None) -> WarningTask:
        self.stats.add("escalations", code)
        evidence = [*after.evidence, *([event_id] if event_id else [])]
        return self.issue(ep, WarningTask(
            action="visit", person_id=person.person_id, district=person.district,
            episode_id=ep.episode_id, created_ms=t_ms, offset_min=ep.offset_min, priority=1,
            risk_score=0.9, reasons=[Reason(code, text)], evidence=evidence,
            model_version="-", ruleset_version="-", basis=code), [(code, after.task_id)])

    def _task(self, ep: Episode, person: Person, t_ms: int, v: dict[str, Any], action: str,
              priority: int, reasons: list[Reason], code: str, subject: str,
              evidence: list[str]) -> WarningTask:
        self.stats.add("escalations", code)
        return self.issue(ep, WarningTask(
            action=action, person_id=person.person_id, district=person.district,
            episode_id=ep.episode_id, created_ms=t_ms, offset_min=ep.offset_min, priority=priority,
            risk_score=0.95, reasons=reasons, evidence=list(evidence),
            model_version="-", ruleset_version="-", bank=v["payee_bank"], txn_id=v["txn_id"],
            account=v["payee_account"], amount_fen=v["amount_fen"], basis=subject), [(code, subject)])


def _cny(fen: int) -> str:
    return f"{fen / 100:,.0f}"


# The words of an episode's timeline (the review of people defrauded after a warning).
_ACTIONS = {"call": "dissuasion call", "visit": "face-to-face visit", "hold": "hold",
            "stop_payment": "stop-payment"}
_RESULTS = {"dissuaded": "dissuaded", "unreachable": "not reached", "refused": "refused",
            "not_fraud": "not fraud", "visited": "visited", "held": "held", "stopped": "stopped",
            "failed": "failed"}


def _episode_id(pid: str, opened_ms: int, offset_min: int) -> str:
    stamp = fmt(opened_ms, offset_min)
    eid = f"E-{pid}-{stamp[:4]}{stamp[5:7]}{stamp[8:10]}{stamp[11:13]}{stamp[14:16]}"
    if len(eid) <= 128:
        return eid
    return "E-" + hashlib.blake2b(eid.encode(), digest_size=12).hexdigest()


