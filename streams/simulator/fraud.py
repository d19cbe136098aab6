"""Fraud in the city: lines that cold-call strangers, mule accounts that drain within minutes,
episodes with each fraud type's rhythm, watch lists that learn late, and case reports.

An episode is planned whole when it starts, from its own generator (seeded by the run's seed and
the episode's number), so the city is the same with the pipeline on or off; only the execution of
its steps looks at what desks and banks did (a dissuaded victim stops paying, a held transfer
does not complete, a stopped mule account drains no more).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .clock import DAY, HOUR, MINUTE, SECOND
from .config import shares
from .numbers import CARRIER_PREFIXES, VIRTUAL_PREFIXES
from .population import person_id
from .records import CallBlock, txn_record

if TYPE_CHECKING:
    from .city import City

NEVER = 2**62


@dataclass
class Line:
    """A fraud line: a number that cold-calls strangers and hooks victims."""

    number: str
    origin: str
    start: int
    end: int
    watched: int = NEVER  # when the watch list first learnt it

    def truth(self, fmt: Callable[[int], str]) -> dict[str, Any]:
        return {"kind": "fraud_number", "msisdn": self.number, "origin": self.origin,
                "active_from": fmt(self.start), "active_to": fmt(self.end),
                "watchlisted_time": fmt(self.watched) if self.watched < NEVER else None}


@dataclass
class Mule:
    """A first-level mule account (a rented "two card") and the accounts it drains to."""

    acc: int
    local: bool
    holder: int
    start: int
    end: int
    second: list[int]
    balance: int = 0
    frozen: bool = False
    received_fen: int = 0
    drained_fen: int = 0
    stopped_fen: int = 0
    watched: int = NEVER

    def truth(self, city: City) -> dict[str, Any]:
        acc = city.pop.accounts
        fmt = city.clock.fmt
        return {"kind": "mule_account", "account": acc.number[self.acc], "bank": acc.bank[self.acc],
                "level": 1, "local": self.local,
                "holder": person_id(self.holder) if self.holder >= 0 else None,
                "active_from": fmt(self.start), "active_to": fmt(self.end),
                "second_level": [acc.number[a] for a in self.second],
                "received_fen": self.received_fen, "drained_fen": self.drained_fen,
                "stopped_fen": self.stopped_fen,
                "watchlisted_time": fmt(self.watched) if self.watched < NEVER else None}


@dataclass
class Payment:
    """A victim's planned transfer to a mule, and what became of it."""

    t: int
    amount: int
    channel: str
    mule: Mule
    complete_after: int
    drain_after: int
    splits: int
    keep: float
    backups: list[Mule] = field(default_factory=list)  # used when the first is frozen
    txn_id: str = ""
    status: str = "planned"  # planned, skipped, initiated, completed, held, failed
    recovered: int = 0

    def truth(self, ep: Episode, fmt: Callable[[int], str]) -> dict[str, Any]:
        return {"kind": "fraud_txn", "txn_id": self.txn_id or None, "episode_id": ep.id,
                "person_id": person_id(ep.victim), "fraud_type": ep.type, "time": fmt(self.t),
                "status": self.status, "amount_fen": self.amount, "recovered_fen": self.recovered}


@dataclass
class Episode:
    k: int
    id: str
    type: str
    victim: int
    start: int
    steps: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    end: int = 0
    lines: list[Line] = field(default_factory=list)
    stopped_until: int = 0  # the victim pays nothing before this time (dissuaded)
    warned: int = NEVER
    dissuaded: int = NEVER
    report_time: int = NEVER
    report_p: float = 0.0
    report_delay: int = 0

    @property
    def loss(self) -> int:
        return sum(p.amount for p in self.payments if p.status == "completed")

    @property
    def recovered(self) -> int:
        return sum(p.recovered for p in self.payments)

    def truth(self, city: City) -> dict[str, Any]:
        fmt = city.clock.fmt
        pop = city.pop
        known = [ln.number for ln in self.lines]
        return {
            "kind": "victim", "episode_id": self.id, "person_id": person_id(self.victim),
            "fraud_type": self.type, "age": int(pop.age[self.victim]),
            "age_group": pop.group_names[int(pop.group[self.victim])],
            "start_time": fmt(self.start), "end_time": fmt(self.end),
            "txn_ids": [p.txn_id for p in self.payments if p.status == "completed"],
            "attempted_txn_ids": [p.txn_id for p in self.payments if p.txn_id],
            "planned_fen": sum(p.amount for p in self.payments),
            "loss_fen": self.loss, "recovered_fen": self.recovered,
            "held_fen": sum(p.amount for p in self.payments if p.status == "held"),
            "prevented_fen": sum(p.amount for p in self.payments
                                 if p.status in ("skipped", "held", "failed")),
            "fraud_msisdns": sorted(set(known)),
            "fraud_accounts": sorted({pop.accounts.number[p.mule.acc] for p in self.payments
                                      if p.status == "completed"}),
            "warned_time": fmt(self.warned) if self.warned < NEVER else None,
            "dissuaded_time": fmt(self.dissuaded) if self.dissuaded < NEVER else None,
            "reported_time": fmt(self.report_time) if self.report_time < NEVER else None,
        }


def _gen(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


class Fraud:
    def __init__(self, city: City, rng: np.random.Generator):
        self.city = city
        self.cfg = city.cfg["fraud"]
        self.rng = rng
        pop = city.pop
        self.lines: list[Line] = []
        self.mules: list[Mule] = []
        self.episodes: list[Episode] = []
        self.active: dict[int, Episode] = {}  # person -> their current episode
        self.mule_by_number: dict[str, Mule] = {}
        self.second_level: set[str] = set()
        self.txn_episode: dict[str, tuple[Episode, Payment]] = {}
        self.onward: dict[str, tuple[int, Payment]] = {}  # mule drain txn -> (time, source)
        self.protected_until: dict[int, int] = {}
        self._make_lines()
        self._make_mules()
        g = pop.group_names
        bias = np.array([self.cfg["cold_target_bias"][x] for x in g])[pop.group]
        self.cold_p = bias / bias.sum()
        self.type_names, self.type_p = shares(self.cfg["types"], "share")
        self.members = [np.flatnonzero(pop.group == c) for c in range(len(g))]
        self.holders = {m.holder for m in self.mules if m.holder >= 0}
        self._n_episodes = 0

    # --- the fraudsters' tools ---------------------------------------------------------------
    def _make_lines(self) -> None:
        city, fc, rng = self.city, self.cfg, self.rng
        t0, days = city.clock.t0, city.days
        target = max(3.0, city.pop.n * fc["lines_per_10k"] / 10_000)
        lo, hi = fc["line_life_days"]
        births = target / ((lo + hi) / 2)
        origins, op = shares(fc["line_origins"])
        book = city.book
        for day in range(-hi, days):
            k = int(rng.poisson(births))
            starts = t0 + day * DAY + rng.integers(0, DAY // SECOND, size=k) * SECOND
            lives = rng.uniform(lo, hi, size=k) * DAY
            kinds = rng.choice(len(origins), size=k, p=op)
            for s, life, o in zip(starts.tolist(), lives.tolist(), kinds.tolist(), strict=True):
                if s + life <= t0:
                    continue
                origin = origins[o]
                if origin == "virtual":
                    num = book.mobiles(1, VIRTUAL_PREFIXES)[0]
                elif origin == "international":
                    num = book.international(1)[0]
                elif origin == "voip":
                    num = book.voip(1)[0]
                else:  # a SIM box: ordinary local mobile numbers
                    num = book.mobiles(1, sum(CARRIER_PREFIXES.values(), ()))[0]
                self.lines.append(Line(num, origin, max(s, t0), int(s + life)))

    def _make_mules(self) -> None:
        city, fc, rng = self.city, self.cfg, self.rng
        pop, t0 = city.pop, city.clock.t0
        # Enough cards that a busy gang need not reuse one for every victim.
        per_day = fc["episodes_per_100k_per_day"] * pop.n / 100_000
        target = max(3.0, pop.n * fc["mules_per_10k"] / 10_000,
                     per_day * fc["mules_per_daily_episode"])
        lo, hi = fc["mule_life_days"]
        births = target / ((lo + hi) / 2)
        banks, bp = shares(city.cfg["population"]["banks"])
        g = pop.group_names
        young = np.flatnonzero(((pop.group == g.index("adult")) & (pop.age <= 35))
                               | (pop.group == g.index("student")))
        for day in range(-hi, city.days):
            k = int(rng.poisson(births))
            for _ in range(k):
                s = t0 + day * DAY + int(rng.integers(0, DAY // SECOND)) * SECOND
                e = s + int(rng.uniform(lo, hi) * DAY)
                if e <= t0:
                    continue
                local = bool(rng.random() < fc["mule_local_share"]) and len(young) > 0
                bank = banks[int(rng.choice(len(banks), p=bp))]
                holder = int(young[rng.integers(0, len(young))]) if local else -1
                acc = int(pop.accounts.add(city.book.cards([bank]), [bank], [holder])[0])
                if local:  # a rented card: opened in the holder's real name, in the registry
                    pop.extra.setdefault(holder, []).append(acc)
                n2 = int(rng.integers(2, 5))
                b2 = [banks[int(x)] for x in rng.choice(len(banks), size=n2, p=bp)]
                second = pop.accounts.add(city.book.cards(b2), b2, [-1] * n2).tolist()
                m = Mule(acc, local, holder, max(s, t0), e, second)
                self.mules.append(m)
                self.mule_by_number[pop.accounts.number[acc]] = m
                for a in second:
                    self.second_level.add(pop.accounts.number[a])

    # --- what the watch lists know -----------------------------------------------------------
    def schedule_watchlist(self) -> None:
        """Entries known at the start, found later by the centres and banks, and stale noise."""
        city, fc, rng = self.city, self.cfg, self.rng
        eng, t0 = city.engine, city.clock.t0
        acc = city.pop.accounts
        med = fc["watch_detect_delay_h_median"] * HOUR
        for line in self.lines:
            if rng.random() < fc["watch_prior"]["line"]:
                self.watch(t0, "msisdn", line.number, "national_center", 0.9, line)
            elif rng.random() < fc["watch_detect"]["line"]:
                t = line.start + int(med * np.exp(0.8 * rng.standard_normal()))
                self.watch(t, "msisdn", line.number, "national_center", 0.85, line)
        for m in self.mules:
            src = f"bank:{acc.bank[m.acc]}"
            if rng.random() < fc["watch_prior"]["mule"]:
                self.watch(t0, "account", acc.number[m.acc], src, 0.8, m)
            elif rng.random() < fc["watch_detect"]["mule"]:
                t = m.start + int(med * np.exp(0.8 * rng.standard_normal()))
                self.watch(t, "account", acc.number[m.acc], src, 0.75, m)
        noise = max(1, round(city.pop.n * fc["watch_noise_per_10k"] / 10_000))
        for num in city.book.mobiles(noise, (*VIRTUAL_PREFIXES, 165, 167)):
            self.watch(t0, "msisdn", num, "national_center", 0.6, None)
        for num in city.book.cards(["ICBC"] * noise):
            self.watch(t0, "account", num, "national_center", 0.6, None)
        # Recycled numbers: once used in fraud, listed, now an honest person's line (here an
        # out-of-town contact who calls family in the city, sometimes for long).
        ext = city.services.external
        k = min(len(ext), round(city.pop.n * fc["watch_recycled_per_10k"] / 10_000))
        for j in sorted(rng.choice(len(ext), size=k, replace=False).tolist()):
            self.watch(t0, "msisdn", ext[j], "national_center", 0.7, None)
            city.truth.lookalike("recycled_watchlisted_number", msisdn=ext[j])
        # A courier line listed by mistake after complaints, and taken off again.
        for num in city.services.couriers:
            if rng.random() < fc["watch_false_courier"]:
                t = t0 + int(rng.uniform(0, max(city.days - 1, 0.5)) * DAY)
                self.watch(t, "msisdn", num, "local_center", 0.4, None)
                eng.emit(t + int(rng.uniform(12, 72) * HOUR), "watchlist", {
                    "op": "remove", "kind": "msisdn", "value": num, "category": "fraud_number",
                    "source": "local_center", "confidence": 0.4})
                city.truth.lookalike("courier_watchlisted_by_mistake", msisdn=num)

    def watch(self, t: int, kind: str, value: str, source: str, conf: float,
              what: Line | Mule | None) -> None:
        if what is not None:
            if what.watched <= t:
                return
            if t < self.city.engine.horizon:
                what.watched = t
        category = "fraud_number" if kind == "msisdn" else "mule_account"
        self.city.engine.emit(t, "watchlist", {"op": "add", "kind": kind, "value": value,
                                               "category": category, "source": source,
                                               "confidence": conf})

    # --- cold calls --------------------------------------------------------------------------
    def cold_calls(self, rng: np.random.Generator, day: int, block: CallBlock) -> None:
        city, fc, pop = self.city, self.cfg, self.city.pop
        d0, d1 = city.clock.t0 + day * DAY, city.clock.t0 + (day + 1) * DAY
        lo, hi = fc["cold_calls_per_day"]
        carrier_of = city.background.carrier_of
        for line in self.lines:
            a, b = max(line.start, d0 + 8 * HOUR), min(line.end, d0 + 22 * HOUR)
            if b <= a or line.end <= d0 or line.start >= d1:
                continue
            k = int(rng.integers(lo, hi + 1) * (b - a) / (14 * HOUR))
            if k == 0:
                continue
            t = rng.integers(a // SECOND, b // SECOND, size=k) * SECOND
            target = rng.choice(pop.n, size=k, p=self.cold_p)
            sms = rng.random(k) < fc["cold_sms_share"]
            ans = (rng.random(k) < fc["cold_call_answered"]) & ~sms
            dlo, dhi = fc["cold_call_duration_s"]
            dur = np.where(ans, rng.integers(dlo, dhi + 1, size=k), 0)
            block.add(t, line.number, [pop.phone[i] for i in target.tolist()],
                      [carrier_of[i] for i in target.tolist()], sms, ans, dur, line.origin,
                      url=sms & (rng.random(k) < 0.8))
            city.truth.count("cold_calls", k)

    # --- episodes ----------------------------------------------------------------------------
    def new_episodes(self, day: int) -> None:
        city = self.city
        n = city.pop.n
        rng = _gen(city.seed, 2, day, 1)
        k = int(rng.poisson(self.cfg["episodes_per_100k_per_day"] * n / 100_000))
        for _ in range(k):
            ep_no = self._n_episodes
            self._n_episodes += 1
            self._plan(ep_no, day)

    def _pick_victim(self, rng: np.random.Generator, ftype: str, start: int) -> int:
        pop = self.city.pop
        weights = self.cfg["types"][ftype]["ages"]
        g = pop.group_names
        w = np.array([weights.get(x, 0.0) * len(self.members[c]) for c, x in enumerate(g)])
        if w.sum() <= 0:
            return -1
        for _ in range(30):
            c = int(rng.choice(len(g), p=w / w.sum()))
            i = int(self.members[c][rng.integers(0, len(self.members[c]))])
            ep = self.active.get(i)
            if pop.n_acc[i] == 0 or i in self.holders or (ep is not None and ep.end > start):
                continue
            return i
        return -1

    def _line(self, rng: np.random.Generator, ftype: str, t: int, prefer: Line | None) -> Line:
        if prefer is not None and prefer.start <= t < prefer.end:
            return prefer
        origins = self.cfg["types"][ftype]["origins"]
        live = [ln for ln in self.lines if ln.start <= t < ln.end]
        if not live:
            live = sorted(self.lines, key=lambda ln: (abs(ln.start - t), ln.number))[:3]
        w = np.array([origins.get(ln.origin, 0.0) for ln in live]) + 1e-3
        return live[int(rng.choice(len(live), p=w / w.sum()))]

    def _mule(self, rng: np.random.Generator, t: int, prefer: Mule | None) -> Mule:
        if prefer is not None and prefer.start <= t < prefer.end \
                and rng.random() < self.cfg["mule_reuse_in_episode"]:
            return prefer
        # Plans never look at what desks and banks did, so the counterfactual city is the same.
        live = [m for m in self.mules if m.start <= t < m.end]
        if not live:
            live = sorted(self.mules, key=lambda m: (abs(m.start - t), m.acc))[:3]
        return live[int(rng.integers(0, len(live)))]

    def _plan(self, ep_no: int, day: int) -> None:
        city = self.city
        rng = _gen(city.seed, 3, ep_no)
        ftype = self.type_names[int(rng.choice(len(self.type_names), p=self.type_p))]
        hours = [0] * 8 + [1] * 4 + [0.7] * 2 + [1] * 6 + [0.8] * 2 + [0.2] * 2
        p = np.asarray(hours) / sum(hours)
        start = (city.clock.t0 + day * DAY + int(rng.choice(24, p=p)) * HOUR
                 + int(rng.integers(0, 3600)) * SECOND)
        victim = self._pick_victim(rng, ftype, start)
        if victim < 0:
            return
        ep = Episode(ep_no, f"EP{ep_no:06d}", ftype, victim, start)
        plan = Plan(self, ep, rng)
        getattr(plan, ftype, plan.generic)()
        plan.finish()
        self.episodes.append(ep)
        self.active[victim] = ep
        eng = city.engine
        for t, kind, args in ep.steps:
            eng.at(t, self._step, ep, kind, args)
        eng.at(ep.end, self._finish, ep)

    # --- executing steps ---------------------------------------------------------------------
    def paused(self, ep: Episode, t: int) -> bool:
        return t < ep.stopped_until

    def _step(self, t: int, ep: Episode, kind: str, a: dict[str, Any]) -> None:
        city, pop = self.city, self.city.pop
        eng = city.engine
        phone = pop.phone[ep.victim]
        carrier = city.background.carrier_of[ep.victim]
        if kind in ("call", "sms"):
            line: Line = a["line"]
            if kind == "sms":
                eng.emit(t, "calls", {"carrier": carrier, "kind": "sms", "caller": line.number,
                                      "callee": phone, "duration_s": 0,
                                      "caller_origin": line.origin, "sms_has_url": a["url"]})
            else:
                ans = not self.paused(ep, t)  # a dissuaded victim no longer picks up
                eng.emit(t, "calls", {"carrier": carrier, "kind": "voice", "caller": line.number,
                                      "callee": phone, "answered": ans,
                                      "duration_s": a["duration"] if ans else 0,
                                      "caller_origin": line.origin})
            if line not in ep.lines:
                ep.lines.append(line)
            return
        if self.paused(ep, t):
            if kind == "pay":
                a["payment"].status = "skipped"
            return
        acc = pop.accounts
        if kind == "move":  # savings gathered into the paying account first
            tid = city.txn_ids([acc.bank[a["src"]]])[0]
            rec = (tid, acc.bank[a["src"]], acc.number[a["src"]], acc.number[a["dst"]],
                   acc.bank[a["dst"]], a["amount"], "mobile_app")
            eng.emit(t, "transactions", txn_record(rec[0], "initiated", *rec[1:]))
            eng.emit(t + a["after"], "transactions", txn_record(rec[0], "completed", *rec[1:]))
        elif kind == "rebate":  # the fraudsters pay a little back to build trust
            src = a["mule"].second[0]  # paid from the gang's own upstream account
            tid = city.txn_ids([acc.bank[src]])[0]
            rec = (tid, acc.bank[src], acc.number[src], acc.number[a["dst"]],
                   acc.bank[a["dst"]], a["amount"], "mobile_app")
            eng.emit(t, "transactions", txn_record(rec[0], "initiated", *rec[1:]))
            eng.emit(t + 5 * SECOND, "transactions", txn_record(rec[0], "completed", *rec[1:]))
        elif kind == "pay":
            self._pay(t, ep, a["payment"], a["src"])

    def _pay(self, t: int, ep: Episode, p: Payment, src: int) -> None:
        city = self.city
        acc = city.pop.accounts
        # Gangs learn fast that a card was frozen and give the victim another one.
        p.mule = next((m for m in [p.mule, *p.backups] if not m.frozen), p.mule)
        p.txn_id = city.txn_ids([acc.bank[src]])[0]
        p.status = "initiated"
        self.txn_episode[p.txn_id] = (ep, p)
        rec = (acc.bank[src], acc.number[src], acc.number[p.mule.acc], acc.bank[p.mule.acc],
               p.amount, p.channel)
        city.engine.emit(t, "transactions", txn_record(p.txn_id, "initiated", *rec))
        protected = self.protected_until.get(ep.victim, 0) > t and p.channel != "counter"
        if protected:  # temporary protective measures: the bank refuses non-counter payments
            p.status = "failed"
            city.engine.emit(t + 3 * SECOND, "transactions",
                             txn_record(p.txn_id, "failed", *rec))
            return
        city.engine.at(t + p.complete_after, self._complete, ep, p, rec)

    def _complete(self, t: int, ep: Episode, p: Payment, rec: tuple) -> None:
        city = self.city
        held = city.holds.get(p.txn_id, NEVER) <= t
        p.status = "held" if held else "completed"
        city.engine.emit(t, "transactions", txn_record(p.txn_id, p.status, *rec))
        if held:
            return
        m = p.mule
        m.received_fen += p.amount
        if m.frozen:  # money sent to a frozen account stays there, and goes back to the victim
            p.recovered += p.amount
            m.stopped_fen += p.amount
            return
        m.balance += p.amount
        city.engine.at(t + p.drain_after, self._drain, m, p, t)

    def _drain(self, t: int, m: Mule, p: Payment, credited: int) -> None:
        """The mule moves what it holds to second-level accounts, keeping the renter's cut."""
        if m.frozen or m.balance <= 0:
            return
        city = self.city
        acc = city.pop.accounts
        amount = int(m.balance * (1 - p.keep))
        if amount <= 0:
            return
        m.balance -= amount
        m.drained_fen += amount
        parts = np.full(p.splits, amount // p.splits, dtype=np.int64)
        parts[0] += amount - parts.sum()
        bank, num = acc.bank[m.acc], acc.number[m.acc]
        for j, part in enumerate(parts.tolist()):
            if part <= 0:
                continue
            dst = m.second[(p.splits * 7 + j) % len(m.second)]
            tid = city.txn_ids([bank])[0]
            ts = t + j * 20 * SECOND
            rec = (bank, num, acc.number[dst], acc.bank[dst], part, "online_banking")
            city.engine.emit(ts, "transactions", txn_record(tid, "initiated", *rec))
            city.engine.emit(ts + 8 * SECOND, "transactions", txn_record(tid, "completed", *rec))
            self.onward[tid] = (ts + 8 * SECOND, p)
            city.truth.drains.append({"kind": "mule_txn", "txn_id": tid, "account": num,
                                      "to": acc.number[dst], "amount_fen": part,
                                      "delay_s": (ts - credited) // SECOND,
                                      "source_txn_id": p.txn_id})

    def _finish(self, t: int, ep: Episode) -> None:
        """After the last step: the victim may report the loss hours to days later."""
        city = self.city
        if self.active.get(ep.victim) is ep:
            del self.active[ep.victim]
        if ep.loss <= 0 or ep.report_p >= self.cfg["case_report"]:
            return
        ep.report_time = t + ep.report_delay
        city.engine.at(ep.report_time, self._report, ep)

    def _report(self, t: int, ep: Episode) -> None:
        city = self.city
        acc = city.pop.accounts
        paid = [p for p in ep.payments if p.status == "completed"]
        numbers = sorted({ln.number for ln in ep.lines})
        accounts = sorted({acc.number[p.mule.acc] for p in paid})
        city.engine.emit(t, "case-reports", {
            "report_id": f"CASE-{city.clock.date_of_day(city.clock.day_of(t)).year}-{ep.k:06d}",
            "person_id": person_id(ep.victim), "fraud_type": ep.type,
            "txn_ids": [p.txn_id for p in paid], "loss_fen": ep.loss,
            "fraud_msisdns": numbers, "fraud_accounts": accounts})
        # The local centre lists what the report names, some hours later.
        rng = _gen(city.seed, 4, ep.k)
        lo, hi = self.cfg["watch_from_report_delay_h"]
        for ln in ep.lines:
            if rng.random() < self.cfg["watch_from_report"]:
                self.watch(t + int(rng.uniform(lo, hi) * HOUR), "msisdn", ln.number,
                           "local_center", 0.95, ln)
        for p in paid:
            if rng.random() < self.cfg["watch_from_report"]:
                self.watch(t + int(rng.uniform(lo, hi) * HOUR), "account",
                           acc.number[p.mule.acc], "local_center", 0.95, p.mule)

    # --- effects of the pipeline (closed loop) -----------------------------------------------
    def episode_of(self, person: int, t: int) -> Episode | None:
        ep = self.active.get(person)
        return ep if ep is not None and ep.start <= t + HOUR else None


class Plan:
    """Builds one episode's steps with its fraud type's rhythm."""

    def __init__(self, fraud: Fraud, ep: Episode, rng: np.random.Generator):
        self.f = fraud
        self.ep = ep
        self.rng = rng
        self.p = fraud.cfg["types"][ep.type]
        self.line: Line | None = None
        self.mule: Mule | None = None
        accs = fraud.city.pop.account_list(ep.victim)
        self.src = accs[0]
        self.other = accs[1:]

    # building blocks
    def minutes(self, lo: float, hi: float) -> int:
        return int(self.rng.uniform(lo, hi) * MINUTE)

    def call(self, t: int, dur_s: int) -> int:
        """A call from the episode's line; returns its length in ms (scaled by the city)."""
        self.line = self.f._line(self.rng, self.ep.type, t, self.line)
        dur_s = max(1, int(dur_s * self.f.cfg["call_length_scale"]))
        self.ep.steps.append((t, "call", {"line": self.line, "duration": dur_s}))
        return dur_s * SECOND

    def during_call(self) -> bool:
        """Whether this victim pays while the fraudster is still on the line."""
        return bool(self.rng.random() < self.f.cfg["pay_during_call"].get(self.ep.type, 1.0))

    def sms(self, t: int, url: bool = True) -> None:
        self.line = self.f._line(self.rng, self.ep.type, t, self.line)
        self.ep.steps.append((t, "sms", {"line": self.line, "url": url}))

    def amount(self, scale: float = 1.0, sigma: float = 0.6) -> int:
        x = self.p["amount_median_cny"] * scale * np.exp(sigma * self.rng.standard_normal())
        return int(min(max(x, 50.0), self.p["amount_max_cny"])) * 100

    def pay(self, t: int, amount: int, channel: str | None = None) -> None:
        rng, fc = self.rng, self.f.cfg
        if channel is None:
            channel = str(rng.choice(["mobile_app", "online_banking", "third_party"],
                                     p=[0.7, 0.2, 0.1]))
        self.mule = self.f._mule(rng, t, self.mule)
        med, sig = fc["drain_delay_median_min"], fc["drain_delay_sigma"]
        drain = min(med * np.exp(sig * rng.standard_normal()), fc["drain_delay_max_min"])
        lo, hi = fc["drain_splits"]
        klo, khi = fc["drain_keep_share"]
        p = Payment(t, amount, channel, self.mule,
                    complete_after=int(rng.integers(3, 61)) * SECOND,
                    drain_after=max(int(drain * MINUTE), 30 * SECOND),
                    splits=int(rng.integers(lo, hi + 1)), keep=float(rng.uniform(klo, khi)),
                    backups=[self.f._mule(rng, t, None) for _ in range(2)])
        self.ep.payments.append(p)
        self.ep.steps.append((t, "pay", {"payment": p, "src": self.src}))

    def move(self, t: int, amount: int) -> None:
        if self.other and amount > 0:
            self.ep.steps.append((t, "move", {"src": self.other[0], "dst": self.src,
                                              "amount": amount,
                                              "after": int(self.rng.integers(3, 30)) * SECOND}))

    def rebate(self, t: int, amount: int) -> None:
        if self.mule is not None:
            self.ep.steps.append((t, "rebate", {"mule": self.mule, "dst": self.src,
                                                "amount": max(amount, 100)}))

    def payments(self, t: int, n: int, gap: tuple[float, float], scale: float = 1.0,
                 growth: tuple[float, float] = (1.0, 1.0), channel: str | None = None) -> int:
        amounts = []
        x = scale
        for _ in range(n):
            amounts.append(self.amount(x))
            x *= self.rng.uniform(*growth)
        if self.rng.random() < self.p["savings_move"]:
            self.move(t - self.minutes(1, 5), sum(amounts))
        for a in amounts:
            self.pay(t, a, channel)
            t += self.minutes(*gap)
        return t

    def n_payments(self) -> int:
        lo, hi = self.p["payments"]
        return int(self.rng.integers(lo, hi + 1))

    def finish(self) -> None:
        ep, rng, fc = self.ep, self.rng, self.f.cfg
        ep.steps.sort(key=lambda s: s[0])
        ep.end = (ep.steps[-1][0] if ep.steps else ep.start) + 2 * HOUR
        ep.report_p = float(rng.random())
        lo, hi = fc["case_report_delay_h"]
        h = fc["case_report_delay_h_median"] * np.exp(1.0 * rng.standard_normal())
        ep.report_delay = int(min(max(h, lo), hi) * HOUR)

    # the rhythms of the fraud types
    def fake_customer_service(self) -> None:
        """A "refund" call: the victim pays within minutes, while still on the line."""
        t = self.ep.start
        if self.rng.random() < 0.3:
            self.sms(t - self.minutes(5, 60))
        dur = self.call(t, self.minutes(8, 40) // SECOND)
        pay = (t + self.minutes(min(4, dur / MINUTE / 2), max(1, dur / MINUTE - 2)) if self.during_call()
               else t + dur + self.minutes(1, 20))
        self.payments(pay, self.n_payments(), (2, 8))

    def pig_butchering(self) -> None:
        """Days of grooming over chat with the odd call, then escalating "investments"."""
        t = self.ep.start
        lo, hi = self.p["grooming_days"]
        days = int(self.rng.integers(lo, hi + 1))
        for d in range(days):
            if self.rng.random() < 0.5:
                ts = t + d * DAY + self.minutes(0, 180)
                if self.rng.random() < 0.6:
                    self.sms(ts, url=False)
                else:
                    self.call(ts, self.minutes(5, 40) // SECOND)
        t += days * DAY
        amounts_scale = 0.1
        n = self.n_payments()
        for j in range(n):
            if self.rng.random() < 0.4:
                self.call(t - self.minutes(10, 60), self.minutes(5, 30) // SECOND)
            if j > 0 and self.rng.random() < self.p["savings_move"]:
                self.move(t - self.minutes(1, 10), self.amount(amounts_scale))
            a = self.amount(amounts_scale)
            self.pay(t, a)
            if j == 0:  # the first "profit" is paid out, to build trust
                self.rebate(t + self.minutes(60, 600), a // 8)
            amounts_scale *= self.rng.uniform(2.0, 4.0)
            t += int(self.rng.uniform(0.5, 3.0) * DAY)

    def rebate_tasks(self) -> None:
        """Small paid "tasks" refunded with a bonus, then larger ones that never come back."""
        t = self.ep.start
        self.sms(t)
        if self.rng.random() < 0.3:
            self.call(t + self.minutes(2, 20), self.minutes(1, 5) // SECOND)
        t += self.minutes(10, 120)
        n = self.n_payments()
        scale = 0.05
        for j in range(n):
            a = self.amount(scale, sigma=0.3)
            if j == n - 1 and self.rng.random() < self.p["savings_move"]:
                self.move(t - self.minutes(1, 5), a)
            self.pay(t, a)
            if j < 2:
                self.rebate(t + self.minutes(2, 10), int(a * self.rng.uniform(1.05, 1.3)))
            scale *= self.rng.uniform(2.0, 4.0)
            t += self.minutes(5, 40)

    def police_impersonation(self) -> None:
        """Long calls from "the police", then savings gathered and sent to a "safe account"."""
        t = self.ep.start
        dur = self.call(t, self.minutes(30, 90) // SECOND)
        if self.rng.random() < 0.6:
            t += dur + self.minutes(60, 24 * 60)
            dur = self.call(t, self.minutes(20, 60) // SECOND)
        ch = "counter" if self.rng.random() < 0.2 else None
        pay = (t + self.minutes(min(10, dur / MINUTE / 2), max(1, dur / MINUTE - 5))
               if self.during_call() else t + dur + self.minutes(2, 60))
        self.payments(pay, self.n_payments(), (5, 20), channel=ch)

    def acquaintance_impersonation(self) -> None:
        """A "boss" or relative on a chat app asks for money now: few or no call records."""
        t = self.ep.start
        if self.rng.random() >= self.p["no_call"]:
            self.call(t, self.minutes(1, 3) // SECOND)
        self.payments(t + self.minutes(5, 30), self.n_payments(), (3, 15))

    def fake_loan(self) -> None:
        """A loan that needs fees first: processing, deposit, "unfreezing", over a day or two."""
        t = self.ep.start
        if self.rng.random() < 0.5:
            self.sms(t)
        else:
            self.call(t, self.minutes(3, 15) // SECOND)
        scale = 0.4
        for _ in range(self.n_payments()):
            t += self.minutes(20, 20 * 60)
            if self.rng.random() < 0.6:
                self.call(t - self.minutes(3, 15), self.minutes(3, 10) // SECOND)
            self.pay(t, self.amount(scale, sigma=0.3))
            scale *= self.rng.uniform(1.4, 2.5)

    def game_item_trade(self) -> None:
        """A minor buys game items or "unfreezes" a trade: quick small payments, rarely a call."""
        t = self.ep.start
        if self.rng.random() >= self.p["no_call"]:
            self.call(t, self.minutes(2, 8) // SECOND)
        ch = "third_party" if self.rng.random() < 0.7 else "mobile_app"
        self.payments(t + self.minutes(3, 20), self.n_payments(), (3, 30), growth=(1.0, 1.6),
                      channel=ch)

    def elderly_care(self) -> None:
        """Health products or a pension scheme: friendly calls over days, then payments."""
        t = self.ep.start
        calls = int(self.rng.integers(2, 6))
        for d in range(calls):
            self.call(t + d * DAY + self.minutes(0, 120), self.minutes(10, 30) // SECOND)
        t += calls * DAY
        for _ in range(self.n_payments()):
            self.call(t - self.minutes(15, 60), self.minutes(5, 20) // SECOND)
            ch = "counter" if self.rng.random() < 0.4 else None
            self.pay(t, self.amount(), ch)
            t += int(self.rng.uniform(0.5, 2.0) * DAY)

    def generic(self) -> None:
        """A fraud type added in the city file without a rhythm of its own."""
        t = self.ep.start
        self.call(t, self.minutes(5, 30) // SECOND)
        self.payments(t + self.minutes(10, 60), self.n_payments(), (5, 30))
