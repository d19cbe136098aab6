"""The fraud: call centres' lines cold-calling the city, SMS blasters, and victims' episodes of
seven typologies, each with its own rhythm, paying mule accounts; case reports after the loss.

Typologies (the police's published list; rhythms from how they are reported to work):
- impersonation_police (冒充公检法): a "courier" or "telecom" call hands over to a "police
  officer" on a long call; the victim moves savings to a "safe account", often while still on the
  line, sometimes again the next day;
- fake_customer_service (冒充电商物流客服): a "refund" or "cancel the student loan" call; several
  escalating payments "to verify", minutes apart, mostly during the call;
- rebate_task (刷单返利): recruited by SMS or in a chat group; small tasks paid back with a
  commission, then bigger "combined orders" minutes to hours apart that are never paid back;
- pig_butchering (杀猪盘): days of grooming in a chat app (sometimes voice calls from abroad),
  a small investment that can be withdrawn, then growing investments over days, a final "tax";
- impersonation_acquaintance (冒充领导熟人): a fake boss or relative in a chat app asks for an
  urgent transfer: no call record at all;
- fake_loan (虚假网络贷款): an SMS loan ad, then fee after fee ("unfreezing", "insurance");
- elderly_care (养老诈骗): calls over days selling a "pension project" to an elderly person.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .city import City
from .clock import DAY, HOUR, MINUTE, SECOND, lognormal_ms, time_of_day
from .ledger import COUNTER, MOBILE, ONLINE, SETTLE_MS, At, Txn
from .mules import MuleNetwork
from .numbering import FRAUD_ABROAD
from .settings import AGE_BANDS

CALL_LED = ("impersonation_police", "fake_customer_service")


@dataclass(frozen=True)
class Typology:
    ages: tuple[float, ...]  # weight per age band
    profile: str  # hours of the first contact
    origins: dict[str, float]  # how its voice lines present
    report_hours: float  # median hours from the last payment to the report
    needs_job: bool = False


TYPOLOGIES: dict[str, Typology] = {
    "impersonation_police": Typology(
        (0.2, 1.2, 0.8, 0.7, 1.0, 1.4, 1.5, 1.0),
        "office",
        {"international": 0.45, "voip": 0.35, "virtual": 0.1, "domestic": 0.1},
        10,
    ),
    "fake_customer_service": Typology(
        (0.3, 1.5, 1.6, 1.2, 0.7, 0.3, 0.1, 0.05),
        "shopping",
        {"virtual": 0.45, "voip": 0.25, "domestic": 0.2, "international": 0.1},
        3,
    ),
    "rebate_task": Typology(
        (0.3, 1.6, 1.6, 1.1, 0.5, 0.1, 0.0, 0.0), "evening", {"virtual": 0.6, "domestic": 0.4}, 6
    ),
    "pig_butchering": Typology(
        (0.0, 0.5, 1.4, 1.5, 1.0, 0.3, 0.05, 0.0), "evening", {"international": 0.5, "voip": 0.5}, 36
    ),
    "impersonation_acquaintance": Typology(
        (0.0, 0.5, 1.3, 1.4, 1.0, 0.2, 0.0, 0.0), "office", {}, 5, needs_job=True
    ),
    "fake_loan": Typology(
        (0.1, 1.5, 1.5, 1.1, 0.6, 0.1, 0.0, 0.0),
        "evening",
        {"virtual": 0.5, "domestic": 0.3, "voip": 0.2},
        8,
    ),
    "elderly_care": Typology(
        (0.0, 0.0, 0.0, 0.0, 0.2, 1.0, 1.6, 1.3), "office", {"domestic": 0.5, "virtual": 0.5}, 72
    ),
}
BLASTING = ("rebate_task", "fake_loan", "fake_customer_service")
# savings a victim can reach, median CNY by age band
SAVINGS = (3_000, 15_000, 50_000, 80_000, 120_000, 160_000, 150_000, 120_000)


@dataclass
class FraudLine:
    line: int
    typology: str
    since: int
    until: int
    blaster: bool


@dataclass
class Episode:
    episode_id: str
    person: int
    typology: str
    t0: int
    plan: list[tuple[int, str, dict]]
    index: int = 0
    remaining_fen: int = 0
    loss_fen: int = 0
    lines: list[int] = field(default_factory=list)
    payees: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    last_t: int = 0


def _band(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.array([b[0] for b in AGE_BANDS]), age, side="right") - 1


def _cny(x: float, step: int = 1) -> int:
    """fen, rounded to `step` CNY."""
    return max(step, round(float(x) / step) * step) * 100


class FraudLines:
    def __init__(self, rng: np.random.Generator, city: City):
        self.rng, self.ledger, self.numbering = rng, city.ledger, city.numbering
        self.clock, self.params, self.pop = city.clock, city.params, city.pop
        params, pop, clock = city.params, city.pop, city.clock
        self.lines: list[FraudLine] = []
        mix = params["typology_mix"]
        voice = {t: mix.get(t, 0) for t in TYPOLOGIES if TYPOLOGIES[t].origins}
        total = sum(voice.values()) or 1.0
        per_day = params["fraud_lines_per_10k_day"] * pop.n / 10_000
        for d in range(clock.days):
            for typ, w in voice.items():
                for _ in range(rng.poisson(per_day * w / total)):
                    self._new(typ, d * DAY + int(rng.integers(0, DAY)), False)
            for typ in BLASTING:
                if mix.get(typ, 0) > 0:
                    for _ in range(rng.poisson(per_day * 0.08)):
                        self._new(typ, d * DAY + int(rng.integers(0, DAY)), True)

    def _new(self, typ: str, since: int, blaster: bool) -> FraudLine:
        origins = TYPOLOGIES[typ].origins or {"domestic": 1.0}
        if blaster:  # SIM boxes and abused 106 ranges
            origin = "domestic"
            number = self.numbering.mobile() if self.rng.random() < 0.7 else self.numbering.sms_platform()
        else:
            names = list(origins)
            origin = names[
                int(self.rng.choice(len(names), p=np.array(list(origins.values())) / sum(origins.values())))
            ]
            number = {
                "international": lambda: self.numbering.foreign(FRAUD_ABROAD),
                "voip": self.numbering.voip,
                "virtual": self.numbering.virtual,
                "domestic": self.numbering.mobile,
            }[origin]()
        fl = FraudLine(
            self.ledger.line(number, origin),
            typ,
            since,
            since + int(self.rng.integers(DAY, 3 * DAY)),
            blaster,
        )
        self.lines.append(fl)
        return fl

    def active(self, typ: str, t: int, blaster: bool = False) -> int:
        live = [
            fl
            for fl in self.lines
            if fl.typology == typ and fl.blaster == blaster and fl.since <= t < fl.until
        ]
        if not live:
            return self._new(typ, t - int(self.rng.integers(0, 6 * HOUR)), blaster).line
        return live[int(self.rng.integers(len(live)))].line

    def cold_calls(self) -> None:
        """Each line calls strangers all its life: most calls unanswered or hung up on at once."""
        pop, rng = self.pop, self.rng
        reachable = np.flatnonzero(pop.phone >= 0)
        band = _band(pop.age[reachable])
        per_day = self.params["cold_calls_per_line_day"]
        for fl in self.lines:
            w = np.array(TYPOLOGIES[fl.typology].ages)[band] + 0.05
            life_days = (fl.until - fl.since) / DAY
            k = int(rng.poisson((per_day * (1.4 if fl.blaster else 1.0)) * life_days))
            t = fl.since + (rng.random(k) * (fl.until - fl.since)).astype(np.int64)
            # call centres keep office hours: move night calls into the day
            tod = t % DAY
            t = np.where((tod < 9 * HOUR) | (tod > 21 * HOUR), t - tod + time_of_day(rng, k, "office"), t)
            who = reachable[rng.choice(reachable.shape[0], k, p=w / w.sum())]
            if fl.blaster:
                self.ledger.calls(t, fl.line, pop.phone[who], False, 0, sms=True, url=rng.random(k) < 0.9)
                continue
            answered = rng.random(k) < 0.4
            u = rng.random(k)
            dur = np.where(
                u < 0.8,
                rng.integers(3, 20, k),
                np.where(u < 0.98, rng.integers(20, 120, k), rng.integers(120, 360, k)),
            )
            self.ledger.calls(t, fl.line, pop.phone[who], answered, np.where(answered, dur, 0))
            back = np.flatnonzero(~answered & (rng.random(k) < 0.03))
            tb = t[back] + lognormal_ms(rng, 20.0, 1.0, back.shape[0])
            ok = rng.random(back.shape[0]) < 0.2
            self.ledger.calls(
                tb, pop.phone[who[back]], fl.line, ok, np.where(ok, rng.integers(5, 60, back.shape[0]), 0)
            )

    def facts(self) -> None:
        for fl in self.lines:
            self.ledger.fact(
                {
                    "kind": "fraud_number",
                    "msisdn": self.ledger.line_number[fl.line],
                    "origin": self.ledger.line_origin[fl.line],
                    "typology": fl.typology,
                    "sms_blaster": fl.blaster,
                    "active_from": At(fl.since),
                },
                order=6,
            )


class Fraud:
    def __init__(self, rng: np.random.Generator, city: City):
        self.rng, self.ledger, self.clock, self.params, self.pop = (
            rng,
            city.ledger,
            city.clock,
            city.params,
            city.pop,
        )
        self.episodes: list[Episode] = []
        self.reports: list[tuple[int, list[int], list[int]]] = []  # time, lines, accounts
        self.victims = self._choose_victims()
        self.lines = FraudLines(rng, city)
        self.mules = MuleNetwork(rng, city, exclude={p for p, _ in self.victims})

    # --- who ----------------------------------------------------------------------------
    def _choose_victims(self) -> list[tuple[int, str]]:
        pop, rng, p = self.pop, self.rng, self.params
        n_victims = int(rng.poisson(p["victims_per_10k_day"] * pop.n / 10_000 * self.clock.days))
        mix = {t: w for t, w in p["typology_mix"].items() if w > 0}
        names = list(mix)
        w = np.array(list(mix.values()), dtype=float)
        types = rng.choice(len(names), n_victims, p=w / w.sum())
        band = _band(pop.age)
        main = pop.main_account
        company = np.array([w_ >= 0 and not pop.workplace_school[w_] for w_ in pop.workplace])
        taken = np.zeros(pop.n, dtype=bool)
        out = []
        for ti in types:
            typ = TYPOLOGIES[names[ti]]
            weight = np.array(typ.ages)[band] * (main >= 0) * ~taken
            if typ.origins:
                weight = weight * (pop.phone >= 0)
            if typ.needs_job:
                weight = weight * company
            if weight.sum() == 0:
                continue
            v = int(rng.choice(pop.n, p=weight / weight.sum()))
            taken[v] = True
            out.append((v, names[ti]))
        return out

    # --- the plans: (offset ms from first contact, action, details) ---------------------
    def _plan(self, person: int, typ: str) -> list[tuple[int, str, dict]]:
        return getattr(self, "_" + typ)(person)

    def _n(self, base: float, cap: int) -> int:
        return int(min(cap, 1 + self.rng.poisson(base * self.params["transfers_scale"])))

    def _amounts(self, first_cny: float, k: int, step: int = 100) -> list[int]:
        esc = self.params["escalation"]
        out, a = [], first_cny
        for _ in range(k):
            out.append(_cny(a, step))
            a *= esc * self.rng.uniform(0.75, 1.25)
        return out

    def _channel(self, person: int) -> int:
        u = self.rng.random()
        if self.pop.age[person] >= 65 and u < 0.25:
            return COUNTER
        return ONLINE if u > 0.8 else MOBILE

    def _pays_in_call(
        self,
        plan,
        start: int,
        call_key: str,
        pays: list[int],
        spacing_min: tuple[int, int],
        person: int,
        same_payee: float,
        long_min: float,
    ) -> None:
        """A long call from `call_key` at `start`; the payments either during it (the call ends
        minutes after the last) or after the victim hangs up."""
        rng = self.rng
        length = int(long_min * rng.lognormal(0, 0.35) * MINUTE)
        during = rng.random() < self.params["pay_during_call"]
        t = start + (int(length * rng.uniform(0.35, 0.6)) if during else length + lognormal_ms(rng, 25, 0.8))
        payee = f"p{len(plan)}"
        last = t
        for j, amount in enumerate(pays):
            if j and rng.random() > same_payee:
                payee = f"p{len(plan)}-{j}"
            channel = MOBILE if during else self._channel(person)
            plan.append((t, "pay", {"amount": amount, "payee": payee, "channel": channel}))
            last = t
            t += int(rng.integers(*spacing_min)) * MINUTE
        if during:
            length = max(length, last - start + int(rng.integers(3, 15)) * MINUTE)
        plan.append((start, "call", {"line": call_key, "dur": length // SECOND, "busy": True}))
        if not during and rng.random() < 0.5:  # "have you done it?"
            plan.append(
                (
                    start + length + int(rng.integers(5, 20)) * MINUTE,
                    "call",
                    {"line": call_key, "dur": int(rng.integers(60, 400)), "busy": True},
                )
            )

    def _impersonation_police(self, v: int) -> list:
        rng, plan = self.rng, []
        first = int(rng.integers(120, 420))
        plan.append((0, "call", {"line": "courier", "dur": first}))
        start = first * SECOND + int(rng.integers(0, 180)) * SECOND
        savings = self._savings(v)
        if len(self.pop.accounts[v]) > 1 and rng.random() < 0.5:
            plan.append(
                (start + int(rng.integers(8, 20)) * MINUTE, "move", {"amount": _cny(savings * 0.5, 1000)})
            )
        k = self._n(0.8, 6)
        pays = [_cny(savings * rng.uniform(0.2, 0.6), 1000 if rng.random() < 0.6 else 1)]
        pays += [_cny(savings * rng.uniform(0.1, 0.4), 1000) for _ in range(k - 1)]
        self._pays_in_call(plan, start, "officer", pays, (4, 15), v, 0.6, self.params["hooked_call_minutes"])
        if rng.random() < 0.3:  # the next day: "the other funds must be verified too"
            s2 = start + DAY + int(rng.integers(-3, 3)) * HOUR
            self._pays_in_call(
                plan,
                s2,
                "officer",
                [_cny(savings * rng.uniform(0.2, 0.5), 1000)],
                (4, 15),
                v,
                0.5,
                self.params["hooked_call_minutes"] * 0.7,
            )
        return plan

    def _fake_customer_service(self, v: int) -> list:
        rng, plan = self.rng, []
        start = 0
        if rng.random() < 0.4:  # a "refund" SMS first
            plan.append((0, "sms", {}))
            start = lognormal_ms(rng, 40, 0.8)
        k = self._n(1.3, 7)
        pays = self._amounts(rng.uniform(1_000, 8_000), k)
        self._pays_in_call(
            plan, start, "agent", pays, (3, 11), v, 0.4, self.params["hooked_call_minutes"] * 0.7
        )
        return plan

    def _rebate_task(self, v: int) -> list:
        rng, plan = self.rng, []
        t = 0
        if rng.random() < self.params["rebate_sms_share"]:
            plan.append((0, "sms", {}))
            t = lognormal_ms(rng, 120, 0.8)
        for amount in (rng.uniform(100, 500), rng.uniform(1_000, 3_000)):  # tasks that pay back
            plan.append((t, "pay", {"amount": _cny(amount, 1), "payee": f"p{t}", "channel": MOBILE}))
            plan.append(
                (
                    t + int(rng.integers(8, 30)) * MINUTE,
                    "payback",
                    {"amount": _cny(amount * rng.uniform(1.08, 1.3), 1)},
                )
            )
            t += int(rng.integers(30, 120)) * MINUTE
        k = self._n(1.8, 8)
        if rng.random() < 0.3 * (self.params["rebate_sms_share"] > 0):  # the "mentor" calls once
            plan.append(
                (
                    t - int(rng.integers(2, 10)) * MINUTE,
                    "call",
                    {"line": "mentor", "dur": int(rng.integers(300, 900))},
                )
            )
        payee = f"p{t}"
        for amount in self._amounts(rng.uniform(4_000, 9_000), k, 1):
            if rng.random() < 0.7:
                payee = f"p{t}"
            plan.append((t, "pay", {"amount": amount, "payee": payee, "channel": MOBILE}))
            t += lognormal_ms(rng, 35, 0.8)
        return plan

    def _pig_butchering(self, v: int) -> list:
        rng, plan = self.rng, []
        groom = int(rng.uniform(1.5, 4.5) * DAY)
        if rng.random() < self.params["pig_voice_share"]:
            for _ in range(int(rng.integers(1, 4))):
                at = int(rng.uniform(0.1, 1.0) * groom)
                plan.append(
                    (at, "call", {"line": "lover", "dur": int(rng.integers(600, 2400)), "tod": "evening"})
                )
        t = groom
        first = rng.uniform(5_000, 20_000)
        plan.append(
            (t, "pay", {"amount": _cny(first, 1000), "payee": "p0", "channel": MOBILE, "tod": "evening"})
        )
        withdraw = {"amount": _cny(first * rng.uniform(0.05, 0.2)), "tod": "evening"}
        plan.append((t + int(rng.uniform(0.3, 1.0) * DAY), "payback", withdraw))
        k = self._n(2.0, 9)
        t += int(rng.uniform(0.5, 1.5) * DAY)
        payee = "p1"
        for j, amount in enumerate(self._amounts(first * 2.5, k, 1000)):
            if rng.random() < 0.6:
                payee = f"p{j + 1}"
            plan.append(
                (t, "pay", {"amount": amount, "payee": payee, "channel": self._channel(v), "tod": "evening"})
            )
            t += int(rng.uniform(0.3, 1.8) * DAY)
        plan.append(
            (
                t,
                "pay",
                {
                    "amount": _cny(first * 3 * rng.uniform(0.5, 1.5), 1000),  # "tax to withdraw"
                    "payee": "ptax",
                    "channel": MOBILE,
                    "tod": "evening",
                },
            )
        )
        return plan

    def _impersonation_acquaintance(self, v: int) -> list:
        rng = self.rng
        boss = rng.random() < 0.6
        first = rng.uniform(20_000, 150_000) if boss else rng.uniform(3_000, 30_000)
        plan = [
            (
                int(rng.integers(15, 60)) * MINUTE,
                "pay",
                {
                    "amount": _cny(first, 1000 if boss else 100),
                    "payee": "p0",
                    "channel": ONLINE if boss else MOBILE,
                },
            )
        ]
        t = plan[0][0]
        for j in range(self._n(0.4, 3) - 1):
            t += int(rng.integers(10, 60)) * MINUTE
            plan.append(
                (
                    t,
                    "pay",
                    {
                        "amount": _cny(first * rng.uniform(0.5, 1.5), 1000),
                        "payee": "p0" if rng.random() < 0.6 else f"p{j + 1}",
                        "channel": ONLINE,
                    },
                )
            )
        return plan

    def _fake_loan(self, v: int) -> list:
        rng, plan = self.rng, []
        plan.append((0, "sms", {}))
        t = lognormal_ms(rng, 180, 1.0)
        call = rng.random() < self.params["loan_call_share"]
        k = self._n(2.0, 8)
        payee = "p0"
        for j, amount in enumerate(self._amounts(rng.uniform(500, 3_000), k, 100)):
            if call and rng.random() < 0.5:
                plan.append(
                    (
                        t - int(rng.integers(1, 6)) * MINUTE,
                        "call",
                        {"line": "officer", "dur": int(rng.integers(120, 600))},
                    )
                )
            if rng.random() < 0.5:
                payee = f"p{j}"
            plan.append((t, "pay", {"amount": amount, "payee": payee, "channel": MOBILE}))
            t += lognormal_ms(rng, 30, 1.0)
        return plan

    def _elderly_care(self, v: int) -> list:
        rng, plan = self.rng, []
        t = 0
        for _ in range(int(rng.integers(2, 5))):
            plan.append((t, "call", {"line": "seller", "dur": int(rng.integers(480, 1800)), "tod": "office"}))
            t += int(rng.uniform(0.5, 1.5) * DAY)
        savings = self._savings(v)
        for j in range(self._n(0.8, 4)):
            plan.append(
                (
                    t,
                    "pay",
                    {
                        "amount": _cny(savings * rng.uniform(0.1, 0.4), 1000),
                        "payee": "p0" if j < 2 else "p1",
                        "channel": COUNTER if rng.random() < 0.4 else MOBILE,
                        "tod": "office",
                    },
                )
            )
            t += int(rng.uniform(0.3, 2.0) * DAY)
        return plan

    def _savings(self, v: int) -> float:
        return SAVINGS[int(_band(self.pop.age[v : v + 1])[0])] * float(self.rng.lognormal(0, 0.7))

    # --- running the episodes -----------------------------------------------------------
    def run(self) -> None:
        end = self.clock.end
        plans = []
        for person, typ in self.victims:
            plan = sorted(self._plan(person, typ), key=lambda a: a[0])
            first_pay = min(off for off, kind, _ in plan if kind == "pay")
            latest = end - first_pay - 20 * MINUTE
            if latest < 0:  # squeeze a long episode into a short city
                f = 0.7 * end / max(1, first_pay)
                plan = [(int(off * f), kind, a) for off, kind, a in plan]
                latest = end - int(first_pay * f) - 20 * MINUTE
            tod = int(time_of_day(self.rng, 1, TYPOLOGIES[typ].profile)[0])
            t0 = int(self.rng.integers(0, max(1, latest // DAY + 1))) * DAY + tod
            if t0 > latest:
                t0 = max(0, latest - int(self.rng.integers(0, 2 * HOUR)))
            plans.append((t0, person, typ, plan))
        plans.sort(key=lambda x: (x[0], x[1]))
        for i, (t0, person, typ, plan) in enumerate(plans):
            ep = Episode(
                f"EP{i + 1:04d}",
                person,
                typ,
                t0,
                plan,
                remaining_fen=int(self._savings(person) * 100 * 2.5) + 500_000,
            )
            self._execute(ep)
            if ep.index:
                self.episodes.append(ep)
        self._resisted()
        self.lines.cold_calls()
        self.mules.move_money()

    def _execute(self, ep: Episode) -> None:
        rng, ledger, pop, end = self.rng, self.ledger, self.pop, self.clock.end
        phone = int(pop.phone[ep.person])
        accounts = pop.accounts[ep.person]
        lines: dict[str, int] = {}
        payees: dict[str, int] = {}
        shift = 0
        prev = ep.t0
        for off, kind, a in ep.plan:
            t = ep.t0 + off + (shift if kind in ("pay", "payback") else 0)
            if "tod" in a:  # days later, at an hour of the day this is done
                t = max(prev + 5 * MINUTE, t - t % DAY + int(time_of_day(rng, 1, a["tod"])[0]))
            prev = t
            if t >= end:
                break
            if kind == "call" and phone >= 0:
                line = lines.get(a["line"])
                if line is None:
                    line = lines[a["line"]] = self.lines.active(ep.typology, t)
                ledger.call(t, line, phone, True, a["dur"])
                if a.get("busy"):
                    ledger.busy(phone, t, t + a["dur"] * SECOND, line)
                ep.lines.append(line)
            elif kind == "sms" and phone >= 0:
                line = self.lines.active(ep.typology, t, blaster=True)
                ledger.sms(t, line, phone, url=True)
                ep.lines.append(line)
            elif kind == "move" and len(accounts) > 1:
                ledger.transfer(t, accounts[1], accounts[0], a["amount"], MOBILE, rng)
            elif kind == "payback":
                ledger.transfer(t, self.mules.platform(ep.typology), accounts[0], a["amount"], MOBILE, rng)
            elif kind == "pay":
                payee = payees.get(a["payee"])
                if payee is None:
                    payee = payees[a["payee"]] = self.mules.payee(ep.typology, t)
                t_last = self._pay(ep, t, a["amount"], payee, a["channel"], accounts[0])
                shift += t_last - t
        if ep.index == 0:  # the money was to go after the city's last day: not a victim here
            return
        ledger.fact(
            {
                "kind": "victim",
                "episode_id": ep.episode_id,
                "person_id": pop.person_id(ep.person),
                "fraud_type": ep.typology,
                "start_time": At(ep.t0),
            },
            ep.t0,
            order=1,
        )
        self._report(ep)

    def _pay(self, ep: Episode, t: int, amount: int, payee: int, channel: int, account: int) -> int:
        rng, end = self.rng, self.clock.end
        amount = min(amount, ep.remaining_fen)
        if amount < 10_000 or t >= end:
            return t
        over_limit = channel == MOBILE and amount > self.pop.app_limit_fen[ep.person]
        ok = not over_limit and rng.random() > 0.02
        lo, hi = SETTLE_MS[channel]
        settle = int(rng.integers(lo, hi)) if ok else int(rng.integers(1_000, 6_000))
        if ok and amount >= 5_000_000 and channel != COUNTER:
            settle += int(rng.integers(0, 60 * SECOND))
        h = self.ledger.transfer(t, account, payee, amount, channel, rng, ok=ok, settle_ms=settle)
        ep.index += 1
        ep.payees.append(payee)
        ep.last_t = t
        self.ledger.fact(
            {
                "kind": "fraud_txn",
                "txn_id": Txn(h),
                "episode_id": ep.episode_id,
                "person_id": self.pop.person_id(ep.person),
                "fraud_type": ep.typology,
                "index": ep.index,
                "amount_fen": amount,
                "payee_account": self.ledger.account_number[payee],
                "time": At(t),
                "status": "completed" if ok else "failed",
            },
            t,
            order=2,
        )
        if ok:
            self.mules.credit(payee, t + settle, amount)
            ep.remaining_fen -= amount
            ep.loss_fen += amount
            ep.completed.append(h)
            return t
        # told to try again: online banking has a higher limit; or the same again
        retry = t + int(rng.integers(2, 7)) * MINUTE
        return self._pay(ep, retry, amount, payee, ONLINE if over_limit else channel, account)

    def _report(self, ep: Episode) -> None:
        rng = self.rng
        if ep.index == 0 or rng.random() >= self.params["report_share"]:
            return
        t = ep.last_t + max(20 * MINUTE, lognormal_ms(rng, TYPOLOGIES[ep.typology].report_hours * 60, 0.8))
        if t >= self.clock.end:
            return
        lines = list(dict.fromkeys(x for x in ep.lines if rng.random() < 0.9))
        accounts = list(dict.fromkeys(ep.payees))
        self.ledger.record(
            "case-reports",
            t,
            {
                "person_id": self.pop.person_id(ep.person),
                "fraud_type": ep.typology,
                "txn_ids": [Txn(h) for h in ep.completed],
                "loss_fen": ep.loss_fen,
                "fraud_msisdns": [self.ledger.line_number[x] for x in lines],
                "fraud_accounts": [self.ledger.account_number[x] for x in accounts],
            },
        )
        self.reports.append((t, lines, accounts))

    def _resisted(self) -> None:
        """Strangers who talk with a fraudster for minutes and do not pay."""
        rng, pop = self.rng, self.pop
        victims = {p for p, _ in self.victims}
        voice = [t for t, w in self.params["typology_mix"].items() if w > 0 and TYPOLOGIES[t].origins]
        if not voice:
            return
        band = _band(pop.age)
        for _ in range(rng.poisson(self.params["resisted_per_10k_day"] * pop.n / 10_000 * self.clock.days)):
            typ = voice[int(rng.integers(len(voice)))]
            w = np.array(TYPOLOGIES[typ].ages)[band] * (pop.phone >= 0)
            p = int(rng.choice(pop.n, p=w / w.sum()))
            if p in victims:
                continue
            t = int(rng.integers(0, self.clock.days)) * DAY + int(time_of_day(rng, 1, "office")[0])
            line = self.lines.active(typ, t)
            self.ledger.call(t, line, int(pop.phone[p]), True, int(rng.integers(180, 1500)))
            self.ledger.fact(
                {
                    "kind": "lookalike",
                    "type": "resisted_fraud_call",
                    "person_id": pop.person_id(p),
                    "msisdn": self.ledger.line_number[line],
                    "fraud_type": typ,
                    "time": At(t),
                }
            )
