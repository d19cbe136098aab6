"""Benign behaviour that a careless detector takes for fraud: couriers and sales agents calling
many strangers briefly, telemarketers on 170/171 virtual numbers (sometimes talking long with an
elderly person), the banks' and platforms' service lines calling and being called, the elderly's
long calls with their children (some abroad), legitimate large first payments to a new payee
(a car, tuition, a flat's deposit, a hospital), and savings moved between one's own accounts.
"""

from __future__ import annotations

import numpy as np

from .city import City
from .clock import DAY, MINUTE, lognormal_ms, time_of_day, times
from .everyday import converse
from .ledger import COUNTER, MOBILE, ONLINE, At, Ledger, Txn
from .numbering import SERVICE_LINES
from .population import Population

PURPOSES = {  # purpose: (low CNY, high CNY, weight)
    "car": (60_000, 300_000, 2.0),
    "tuition": (5_000, 25_000, 2.0),
    "flat_deposit": (20_000, 200_000, 1.5),
    "hospital_deposit": (10_000, 80_000, 1.5),
    "renovation": (20_000, 120_000, 1.5),
    "wedding_banquet": (20_000, 80_000, 1.0),
}


def _count(rng: np.random.Generator, per_10k: float, n: int, params: dict) -> int:
    return int(rng.poisson(per_10k * params["lookalike_scale"] * n / 10_000))


def cold_callers(rng: np.random.Generator, city: City) -> list[int]:
    """Couriers, sales agents and telemarketers; returns the telemarketing lines."""
    ledger, clock, pop, numbering, params = city.ledger, city.clock, city.pop, city.numbering, city.params
    n, days = pop.n, clock.days
    reachable = np.flatnonzero(pop.phone >= 0)
    workers = np.flatnonzero((pop.age >= 22) & (pop.age <= 50) & (pop.phone >= 0))
    # couriers: ~35 brief calls a day to the people whose parcels they carry, in their district
    for c in rng.choice(
        workers, min(_count(rng, params["couriers_per_10k"], n, params), workers.shape[0]), replace=False
    ):
        local = reachable[pop.district[reachable] == pop.district[c]]
        k = rng.poisson(35, days)
        t = np.concatenate([d * DAY + time_of_day(rng, int(k[d]), "office") for d in range(days)])
        callee = pop.phone[rng.choice(local, t.shape[0])]
        converse(
            rng,
            ledger,
            clock,
            np.full(t.shape[0], pop.phone[c]),
            callee,
            t,
            0.75,
            0.6,
            0.6,
            callback_p=0.3,
            redial_p=0.2,
        )
        ledger.fact(
            {
                "kind": "lookalike",
                "type": "courier",
                "person_id": pop.person_id(int(c)),
                "msisdn": ledger.line_number[pop.phone[c]],
            }
        )
    # insurance and estate agents: weekdays, strangers anywhere in the city
    for a in rng.choice(
        workers, min(_count(rng, params["sales_agents_per_10k"], n, params), workers.shape[0]), replace=False
    ):
        t = times(rng, int(rng.poisson(30 * days * 5 / 7)), days, "office", True, clock.weekday0)
        callee = pop.phone[rng.choice(reachable, t.shape[0])]
        converse(
            rng,
            ledger,
            clock,
            np.full(t.shape[0], pop.phone[a]),
            callee,
            t,
            0.55,
            np.where(rng.random(t.shape[0]) < 0.7, 0.3, 3.0),
            0.7,
            callback_p=0.05,
            redial_p=0.1,
        )
        ledger.fact(
            {
                "kind": "lookalike",
                "type": "sales_agent",
                "person_id": pop.person_id(int(a)),
                "msisdn": ledger.line_number[pop.phone[a]],
            }
        )
    # telemarketers on virtual numbers: mostly hung up on; the elderly sometimes listen long
    lines = []
    weights = np.where(pop.age[reachable] >= 60, 1.5, 1.0)
    weights /= weights.sum()
    for _ in range(max(1, _count(rng, params["telemarketer_lines_per_10k"], n, params))):
        line = ledger.line(numbering.virtual(), "virtual")
        lines.append(line)
        active = np.flatnonzero(rng.random(days) < 0.6)
        k = rng.poisson(70, active.shape[0])
        t = np.concatenate(
            [int(d) * DAY + time_of_day(rng, int(kk), "office") for d, kk in zip(active, k, strict=True)]
            or [np.zeros(0, np.int64)]
        )
        who = rng.choice(reachable, t.shape[0], p=weights)
        u = rng.random(t.shape[0])
        median = np.where(u < 0.75, 0.2, np.where((u > 0.97) & (pop.age[who] >= 60), 14.0, 1.5))
        converse(
            rng,
            ledger,
            clock,
            np.full(t.shape[0], line),
            pop.phone[who],
            t,
            0.35,
            median,
            0.5,
            callback_p=0.01,
            redial_p=0.0,
            callee_answer_back=0.3,
        )
        ledger.fact({"kind": "lookalike", "type": "telemarketer", "msisdn": ledger.line_number[line]})
    return lines


def service_lines(rng: np.random.Generator, city: City) -> dict[str, int]:
    """Banks' 95xxx lines call their customers (card offers, checks) and are called (questions,
    limits, disputes: sometimes long); so are the platforms' and carriers' lines."""
    ledger, clock, pop = city.ledger, city.clock, city.pop
    days = clock.days
    lines = {b: ledger.line("+86" + num, "domestic") for b, num in SERVICE_LINES.items()}
    for name, num in (("alipay", "95188"), ("jd", "950618"), ("unicom_cs", "10010"), ("mobile_cs", "10086")):
        lines[name] = ledger.line("+86" + num, "domestic")
    for b, line in lines.items():
        ledger.fact(
            {"kind": "lookalike", "type": "service_line", "msisdn": ledger.line_number[line], "owner": b}
        )
    customers: dict[str, list[int]] = {}
    for i, accs in enumerate(pop.accounts):
        if accs and pop.phone[i] >= 0:
            customers.setdefault(ledger.account_bank[accs[0]], []).append(i)
    everyone = np.flatnonzero(pop.phone >= 0)
    # (line, its customers, calls a day out, calls a day in, median minutes in)
    plan = [(lines[b], np.array(p), 0.015, 0.02, 5.0) for b, p in customers.items()]
    plan += [(lines[name], everyone, 0.0, 0.01, 6.0) for name in ("alipay", "jd", "unicom_cs", "mobile_cs")]
    for line, people, out_rate, in_rate, in_minutes in plan:
        for rate, outbound in ((out_rate, True), (in_rate, False)):
            them = pop.phone[np.repeat(people, rng.poisson(rate * days, people.shape[0]))]
            me = np.full(them.shape[0], line)
            if outbound:
                t = times(rng, them.shape[0], days, "office", True, clock.weekday0)
                converse(rng, ledger, clock, me, them, t, 0.6, 2.0, 0.6, callback_p=0.1, redial_p=0.0)
            else:
                t = times(rng, them.shape[0], days, "personal")
                converse(
                    rng, ledger, clock, them, me, t, 0.96, in_minutes, 0.8, callback_p=0.0, redial_p=0.45
                )
    return lines


def elderly_long_calls(ledger: Ledger, pop: Population) -> None:
    """Truth rows for the long family calls the everyday traffic already holds."""
    for a, b in zip(pop.tie_a[pop.tie_long], pop.tie_b[pop.tie_long], strict=True):
        ledger.fact(
            {
                "kind": "lookalike",
                "type": "elderly_long_family_call",
                "person_id": pop.person_id(int(b)),
                "msisdn": ledger.line_number[pop.phone[a]],
            }
        )
    for p, line in zip(pop.out_person[pop.out_abroad], pop.out_line[pop.out_abroad], strict=True):
        ledger.fact(
            {
                "kind": "lookalike",
                "type": "elderly_call_from_child_abroad",
                "person_id": pop.person_id(int(p)),
                "msisdn": ledger.line_number[line],
            }
        )


def big_payments(rng: np.random.Generator, city: City, bank_lines: dict[str, int]) -> None:
    """Large first payments to a new payee, and savings moved between one's own accounts."""
    ledger, clock, pop, numbering, params = city.ledger, city.clock, city.pop, city.numbering, city.params
    n, days, end = pop.n, clock.days, clock.end
    main = pop.main_account
    adults = np.flatnonzero((pop.age >= 25) & (pop.age <= 70) & (main >= 0))
    names = list(PURPOSES)
    w = np.array([PURPOSES[p][2] for p in names])
    for _ in range(_count(rng, params["large_new_payee_per_10k_day"] * days, n, params)):
        p = int(rng.choice(adults))
        purpose = names[int(rng.choice(len(names), p=w / w.sum()))]
        lo, hi = PURPOSES[purpose][:2]
        amount = int(rng.integers(lo // 100, hi // 100 + 1)) * 10_000
        t = int(rng.integers(0, days)) * DAY + int(time_of_day(rng, 1, "office")[0])
        bank = numbering.bank()
        payee = ledger.account(numbering.account(bank), bank)
        handles: list[int] = []
        biz = ledger.line(numbering.business_line(), "domestic")
        phone = int(pop.phone[p])
        if phone >= 0:
            u = rng.random()
            if u < 0.35:  # the dealer or school called earlier
                t_call = max(0, t - lognormal_ms(rng, 300.0, 1.2))
                ledger.call(t_call, biz, phone, True, int(rng.integers(120, 900)))
            elif u < 0.5:  # on the phone with the seller while paying
                ledger.call(
                    max(0, t - int(rng.integers(2, 8)) * MINUTE),
                    biz,
                    phone,
                    True,
                    int(rng.integers(10, 25)) * 60,
                )
            if rng.random() < 0.2:  # asks the bank to raise the day's limit first
                bl = bank_lines[ledger.account_bank[main[p]]]
                ledger.call(
                    max(0, t - lognormal_ms(rng, 20.0, 0.6)), phone, bl, True, int(rng.integers(180, 600))
                )
        accs = pop.accounts[p]
        if len(accs) > 1 and rng.random() < 0.4:
            t_move = max(0, t - lognormal_ms(rng, 25.0, 0.8))
            handles.append(ledger.transfer(t_move, accs[1], accs[0], amount, MOBILE, rng))
        parts = [amount]
        if rng.random() < 0.3 and amount >= 2_000_000:  # a deposit now, the balance later
            dep = amount // 10 // 10_000 * 10_000 or 10_000
            parts = [dep, amount - dep]
        for j, part in enumerate(parts):
            tj = t if j == 0 else t + lognormal_ms(rng, 600.0, 1.0)
            if tj >= end:
                break
            channel = MOBILE if part <= pop.app_limit_fen[p] else (ONLINE if rng.random() < 0.6 else COUNTER)
            if channel != MOBILE and rng.random() < 0.15:  # tries the app first, hits the limit
                handles.append(ledger.transfer(tj, int(main[p]), payee, part, MOBILE, rng, ok=False))
                tj += int(rng.integers(5, 30)) * MINUTE
            handles.append(ledger.transfer(tj, int(main[p]), payee, part, channel, rng))
        ledger.fact(
            {
                "kind": "lookalike",
                "type": "large_new_payee",
                "purpose": purpose,
                "person_id": pop.person_id(p),
                "payee_account": ledger.account_number[payee],
                "amount_fen": amount,
                "time": At(t),
                "txn_ids": [Txn(h) for h in handles],
            }
        )
    movers = np.flatnonzero(np.array([len(a) >= 2 for a in pop.accounts]))
    for _ in range(_count(rng, params["savings_moves_per_10k_day"] * days, n, params)):
        p = int(rng.choice(movers))
        a, b = rng.choice(pop.accounts[p], 2, replace=False)
        amount = int(rng.integers(5, 200)) * 100_000
        t = int(times(rng, 1, days, "shopping")[0])
        h = ledger.transfer(t, int(a), int(b), amount, MOBILE if rng.random() < 0.8 else ONLINE, rng)
        ledger.fact(
            {
                "kind": "lookalike",
                "type": "savings_move",
                "person_id": pop.person_id(p),
                "txn_id": Txn(h),
                "amount_fen": amount,
            }
        )
