"""Everyday life: people calling the people they know (with missed calls returned and redials),
SMS between them and from SMS platforms, money between family and friends, salaries, rent and
bills, and the bank's SMS notice after each transfer.
"""

from __future__ import annotations

import numpy as np

from .city import City
from .clock import DAY, HOUR, MINUTE, SECOND, Clock, lognormal_ms, times
from .ledger import COUNTER, MOBILE, ONLINE, THIRD_PARTY, Ledger
from .numbering import SERVICE_LINES
from .population import COLLEAGUE, FRIEND, HOME, KIN, SPOUSE

# per tie kind: calls a day from a to b, from b to a, median minutes, sigma, hourly profile
TIE_CALLS = {
    SPOUSE: (0.8, 0.8, 1.0, 0.9, "personal"),
    HOME: (0.35, 0.35, 1.0, 0.9, "personal"),
    KIN: (0.4, 0.3, 3.0, 0.9, "elderly"),  # a = grown child, b = elderly parent
    FRIEND: (0.07, 0.07, 2.0, 1.0, "personal"),
    COLLEAGUE: (0.12, 0.12, 1.0, 0.9, "office"),
}


def converse(
    rng: np.random.Generator,
    ledger: Ledger,
    clock: Clock,
    caller: np.ndarray,
    callee: np.ndarray,
    t: np.ndarray,
    answer_p,
    median_min,
    sigma,
    callback_p: float = 0.55,
    redial_p: float = 0.25,
    callee_answer_back: float = 0.9,
) -> None:
    """Voice calls at `t` from caller to callee lines; a missed call is often returned by the
    callee within minutes, or the caller tries again."""
    n = t.shape[0]
    if n == 0:
        return
    answered = rng.random(n) < answer_p
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n,))
    median_min = np.broadcast_to(np.asarray(median_min, dtype=float), (n,))
    dur = np.maximum(3, (rng.lognormal(0, sigma) * median_min * 60)).astype(np.int64)
    ledger.calls(t, caller, callee, answered, np.where(answered, dur, 0))
    missed = np.flatnonzero(~answered)
    u = rng.random(missed.shape[0])
    back = missed[u < callback_p]
    redial = missed[(u >= callback_p) & (u < callback_p + redial_p)]
    if back.shape[0]:
        tb = t[back] + lognormal_ms(rng, 6.0, 1.0, back.shape[0])
        ok = rng.random(back.shape[0]) < callee_answer_back
        db = np.maximum(3, rng.lognormal(0, sigma[back]) * median_min[back] * 60).astype(np.int64)
        ledger.calls(tb, callee[back], caller[back], ok, np.where(ok, db, 0))
    if redial.shape[0]:
        tr = t[redial] + rng.integers(MINUTE, 6 * MINUTE, redial.shape[0])
        ok = rng.random(redial.shape[0]) < 0.6
        dr = np.maximum(3, rng.lognormal(0, sigma[redial]) * median_min[redial] * 60).astype(np.int64)
        ledger.calls(tr, caller[redial], callee[redial], ok, np.where(ok, dr, 0))


def social_calls(rng: np.random.Generator, city: City) -> None:
    ledger, clock, pop, params = city.ledger, city.clock, city.pop, city.params
    act = params["activity"]
    days = clock.days
    pa, pb = pop.phone[pop.tie_a], pop.phone[pop.tie_b]
    ok = (pa >= 0) & (pb >= 0)
    for kind, (ab, ba, med, sigma, profile) in TIE_CALLS.items():
        for rate, frm, to in ((ab, pa, pb), (ba, pb, pa)):
            m = ok & (pop.tie_kind == kind)
            long_tie = pop.tie_long[m]
            r = np.where(long_tie, rate * 1.6, rate) * act
            k = rng.poisson(r * days)
            caller = np.repeat(frm[m], k)
            callee = np.repeat(to[m], k)
            is_long = np.repeat(long_tie, k)
            t = times(rng, caller.shape[0], days, profile, kind == COLLEAGUE, clock.weekday0)
            median = np.where(is_long, 25.0, med)
            sig = np.where(is_long, 0.5, sigma)
            answer_p = np.where(pop.age[np.array(ledger.line_owner)[callee]] >= 70, 0.8, 0.86)
            converse(rng, ledger, clock, caller, callee, t, answer_p, median, sig)
    # contacts in other cities (both ways) and children abroad (long evening calls)
    out_ph = pop.phone[pop.out_person]
    for abroad in (False, True):
        m = pop.out_abroad == abroad
        in_rate, out_rate, med, sigma = (0.22, 0.04, 30.0, 0.5) if abroad else (0.05, 0.05, 2.5, 1.0)
        for rate, frm, to in ((in_rate, pop.out_line[m], out_ph[m]), (out_rate, out_ph[m], pop.out_line[m])):
            k = rng.poisson(rate * act * days, frm.shape[0])
            caller, callee = np.repeat(frm, k), np.repeat(to, k)
            t = times(rng, caller.shape[0], days, "evening" if abroad else "personal")
            converse(rng, ledger, clock, caller, callee, t, 0.88, med, sigma)
    # SMS between people who know each other
    k = rng.poisson(0.02 * act * days, int(ok.sum()))
    s = np.repeat(pa[ok], k)
    d = np.repeat(pb[ok], k)
    swap = rng.random(s.shape[0]) < 0.5
    s, d = np.where(swap, d, s), np.where(swap, s, d)
    ledger.calls(times(rng, s.shape[0], days, "personal"), s, d, False, 0, sms=True)


def platform_sms(rng: np.random.Generator, city: City) -> None:
    """Codes, parcel notices and shop marketing from 106 platform ranges (some with links)."""
    ledger, clock, pop, numbering, params = city.ledger, city.clock, city.pop, city.numbering, city.params
    senders = np.array([ledger.line(numbering.sms_platform(), "domestic") for _ in range(12)])
    with_phone = np.flatnonzero(pop.phone >= 0)
    k = rng.poisson(0.35 * params["activity"] * clock.days, with_phone.shape[0])
    to = pop.phone[np.repeat(with_phone, k)]
    frm = senders[rng.integers(0, senders.shape[0], to.shape[0])]
    url = rng.random(to.shape[0]) < 0.3
    ledger.calls(times(rng, to.shape[0], clock.days, "shopping"), frm, to, False, 0, sms=True, url=url)


def family_money(rng: np.random.Generator, city: City) -> None:
    ledger, clock, pop, params = city.ledger, city.clock, city.pop, city.params
    main = pop.main_account
    a, b = pop.tie_a, pop.tie_b
    has = (main[a] >= 0) & (main[b] >= 0)
    fam = has & np.isin(pop.tie_kind, (SPOUSE, HOME, KIN))
    fri = has & (pop.tie_kind == FRIEND)
    days, act = clock.days, params["activity"]
    round_amounts = np.array([100, 200, 300, 500, 800, 1000, 1500, 2000, 3000, 5000]) * 100
    round_p = np.array([10, 12, 6, 16, 6, 14, 5, 8, 4, 2], dtype=float)
    for mask, rate, roundish in ((fam, 0.03, True), (fri, 0.006, False)):
        for frm, to in ((a, b), (b, a)):
            k = rng.poisson(rate * act * days, int(mask.sum()))
            payer = np.repeat(frm[mask], k)
            payee = np.repeat(to[mask], k)
            n = payer.shape[0]
            if roundish:
                amount = rng.choice(round_amounts, n, p=round_p / round_p.sum())
            else:
                amount = np.maximum(100, rng.lognormal(np.log(8000), 0.8, n)).astype(np.int64)
            elderly = pop.age[payer] >= 65
            channel = np.where(elderly & (rng.random(n) < 0.35), COUNTER, MOBILE)
            t = times(rng, n, days, "shopping")
            # some senders choose the banks' "arrives in 2 hours" option for transfers
            settle = np.where(rng.random(n) < 0.03, 2 * HOUR, rng.integers(SECOND, 12 * SECOND, n))
            settle = np.where(channel == COUNTER, rng.integers(40 * SECOND, 240 * SECOND, n), settle)
            ledger.transfers(t, main[payer], main[payee], amount, channel, True, settle)


def salaries_rent_bills(rng: np.random.Generator, city: City) -> None:
    ledger, clock, pop, numbering, params = city.ledger, city.clock, city.pop, city.numbering, city.params
    days = clock.days
    main = pop.main_account
    dom = np.array([(clock.start.date().toordinal() + d) for d in range(days)])
    from datetime import date

    day_of_month = np.array([date.fromordinal(int(o)).day for o in dom])
    # salaries: each company pays everyone on its payday, in one burst from its account
    for w, members in enumerate(pop.workplace_members):
        if pop.workplace_school[w] or members.shape[0] == 0:
            continue
        payday = int(rng.integers(1, 29))
        hit = np.flatnonzero(day_of_month == payday)
        if hit.shape[0] == 0:
            continue
        bank = numbering.bank()
        company = ledger.account(numbering.account(bank), bank)
        staff = members[main[members] >= 0]
        t0 = int(hit[0]) * DAY + int(rng.integers(10 * HOUR, 16 * HOUR))
        t = t0 + np.cumsum(rng.integers(SECOND, 20 * SECOND, staff.shape[0]))
        amount = (rng.lognormal(np.log(5500), 0.45, staff.shape[0]) * 100).astype(np.int64)
        ledger.transfers(t, company, main[staff], amount, ONLINE, rng=rng)
    # rent: tenants pay a landlord (a resident or not) on their day of the month
    heads = np.flatnonzero((pop.age >= 22) & (pop.age < 45) & (main >= 0))
    _, first = np.unique(pop.household[heads], return_index=True)
    heads = heads[np.sort(first)]
    tenants = heads[rng.random(heads.shape[0]) < 0.3]
    n_landlords = max(1, tenants.shape[0] // 3)
    older = np.flatnonzero((pop.age >= 45) & (pop.age <= 75) & (main >= 0))
    landlords = []
    for _ in range(n_landlords):
        if rng.random() < 0.5 and older.shape[0]:
            landlords.append(int(main[older[rng.integers(older.shape[0])]]))
        else:
            bank = numbering.bank()
            landlords.append(ledger.account(numbering.account(bank), bank))
    landlords_a = np.array(landlords)
    for p in tenants:
        hit = np.flatnonzero(day_of_month == int(rng.integers(1, 29)))
        if hit.shape[0] == 0:
            continue
        t = int(hit[0]) * DAY + int(rng.integers(8 * HOUR, 22 * HOUR))
        amount = int(rng.integers(12, 46)) * 10_000
        ledger.transfers(
            np.array([t]), main[p], landlords_a[rng.integers(landlords_a.shape[0])], amount, MOBILE, rng=rng
        )
    # bills: power, water, gas, phone top-ups to a few utility accounts
    utilities = []
    for bank in ("ICBC", "CCB", "ABC", "BOC"):
        utilities.append(ledger.account(numbering.account(bank), bank))
    payers = np.flatnonzero(main >= 0)
    k = rng.poisson(0.04 * params["activity"] * days, payers.shape[0])
    payer = np.repeat(payers, k)
    n = payer.shape[0]
    amount = (rng.lognormal(np.log(120), 0.6, n) * 100).astype(np.int64) // 100 * 100 + 100
    ledger.transfers(
        times(rng, n, days, "shopping"),
        main[payer],
        np.array(utilities)[rng.integers(0, len(utilities), n)],
        amount,
        THIRD_PARTY,
        rng=rng,
    )


def bank_notices(rng: np.random.Generator, city: City) -> None:
    """The payer's bank texts its customer after each completed transfer (and the payee's bank
    the receiver, outside QR-code payments)."""
    ledger, pop = city.ledger, city.pop
    tx = ledger.transfer_columns()
    owner = np.array(ledger.account_owner)
    bank_names = list(SERVICE_LINES)
    service = {b: ledger.line("+86" + SERVICE_LINES[b], "domestic") for b in bank_names}
    bank_of = np.array([service[b] for b in ledger.account_bank])
    done = tx["ok"] == 1
    t_done = tx["t"] + tx["settle"]
    for side, extra in ((tx["payer"], done), (tx["payee"], done & (tx["channel"] != THIRD_PARTY))):
        who = owner[side]
        m = extra & (who >= 0)
        m[m] &= pop.notices[who[m]] & (pop.phone[who[m]] >= 0)
        idx = np.flatnonzero(m)
        t = t_done[idx] + rng.integers(2 * SECOND, 9 * SECOND, idx.shape[0])
        ledger.calls(t, bank_of[side[idx]], pop.phone[who[idx]], False, 0, sms=True)
