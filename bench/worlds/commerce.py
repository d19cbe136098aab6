"""Shops and the money of trade: residents pay local merchants by QR code, merchants sweep the
day's takings to the owner's own card in the evening and pay suppliers every few days (some sweep
every hour), and neighbourhood group-buy leaders collect from dozens of neighbours each morning
and pay the supplier within the hour. Paid by many, paying on: benign look-alikes of mules.
"""

from __future__ import annotations

import numpy as np

from .city import City
from .clock import DAY, HOUR, MINUTE, times
from .ledger import MOBILE, ONLINE, THIRD_PARTY, Ledger, Txn
from .numbering import Numbering

# category: (median CNY, sigma, popularity)
CATEGORIES = {
    "grocery": (35, 0.7, 5.0),
    "restaurant": (80, 0.6, 4.0),
    "pharmacy": (60, 0.7, 1.5),
    "clinic": (200, 0.8, 0.6),
    "hairdresser": (60, 0.4, 1.0),
    "hardware": (150, 0.9, 0.6),
    "clothing": (220, 0.6, 1.0),
    "tutoring": (1800, 0.4, 0.15),
    "phone_shop": (600, 1.0, 0.4),
}


def _supplier(ledger: Ledger, numbering: Numbering) -> int:
    bank = numbering.bank()
    return ledger.account(numbering.account(bank), bank)


def merchants(rng: np.random.Generator, city: City) -> None:
    ledger, clock, pop, numbering, params = city.ledger, city.clock, city.pop, city.numbering, city.params
    n, days = pop.n, clock.days
    owners_pool = np.flatnonzero((pop.age >= 25) & (pop.age <= 65) & (pop.main_account >= 0))
    count = max(5, round(params["merchants_per_10k"] * n / 10_000))
    owners = rng.choice(owners_pool, min(count, owners_pool.shape[0]), replace=False)
    cats = list(CATEGORIES)
    pop_w = np.array([CATEGORIES[c][2] for c in cats])
    cat = rng.choice(len(cats), owners.shape[0], p=pop_w / pop_w.sum())
    fast = rng.random(owners.shape[0]) < params["fast_sweep_merchant_share"] * min(
        params["lookalike_scale"], 2
    )
    acct = np.empty(owners.shape[0], dtype=np.int64)
    for j, o in enumerate(owners):
        bank = numbering.bank()
        acct[j] = ledger.account(numbering.account(bank), bank, int(o))
        pop.accounts[o].append(int(acct[j]))  # a sole trader's business card, in their name
        ledger.fact(
            {
                "kind": "lookalike",
                "type": "fast_sweep_merchant" if fast[j] else "merchant",
                "person_id": pop.person_id(int(o)),
                "account": ledger.account_number[acct[j]],
                "category": cats[cat[j]],
            }
        )
    district = pop.district[owners]
    weight = pop_w[cat] * rng.lognormal(0, 0.8, owners.shape[0])

    # purchases
    main = pop.main_account
    buyers = np.flatnonzero((main >= 0) & (pop.age >= 16))
    rate = np.where(pop.age[buyers] >= 65, 0.35, 0.7) * params["activity"]
    k = rng.poisson(rate * days)
    buyer = np.repeat(buyers, k)
    nb = buyer.shape[0]
    local = rng.random(nb) < 0.7
    shop = np.empty(nb, dtype=np.int64)
    cum_all = np.cumsum(weight) / weight.sum()
    shop[~local] = np.searchsorted(cum_all, rng.random(int((~local).sum())), side="right")
    for d in range(len(pop.districts)):
        sel = np.flatnonzero(local & (pop.district[buyer] == d))
        cand = np.flatnonzero(district == d)
        if cand.shape[0] == 0:
            cand = np.arange(owners.shape[0])
        cum = np.cumsum(weight[cand]) / weight[cand].sum()
        shop[sel] = cand[
            np.minimum(np.searchsorted(cum, rng.random(sel.shape[0]), side="right"), cand.shape[0] - 1)
        ]
    shop = np.minimum(shop, owners.shape[0] - 1)
    med = np.array([CATEGORIES[c][0] for c in cats])[cat[shop]]
    sig = np.array([CATEGORIES[c][1] for c in cats])[cat[shop]]
    amount = np.maximum(100, rng.lognormal(np.log(med * 100.0), sig)).astype(np.int64)
    t = times(rng, nb, days, "shopping")
    channel = np.where(rng.random(nb) < 0.75, THIRD_PARTY, MOBILE)
    ledger.transfers(t, main[buyer], acct[shop], amount, channel, rng=rng)

    # sweeps: evening to the owner's own card, or every hour for the fast ones; suppliers paid
    personal = main[owners]
    for j in range(owners.shape[0]):
        mine = shop == j
        if not mine.any():
            continue
        tj, aj = t[mine], amount[mine]
        supplier = _supplier(ledger, numbering)
        if fast[j]:
            bucket = tj // HOUR
            for b in np.unique(bucket):
                total = int(aj[bucket == b].sum())
                at = int(b) * HOUR + HOUR + int(rng.integers(2 * MINUTE, 15 * MINUTE))
                to = supplier if rng.random() < 0.3 else int(personal[j])
                ledger.transfers(np.array([at]), int(acct[j]), to, int(total * 0.95), MOBILE, rng=rng)
            continue
        day = tj // DAY
        for d in np.unique(day):
            total = int(aj[day == d].sum())
            at = int(d) * DAY + int(rng.integers(21 * HOUR, 23 * HOUR + 30 * MINUTE))
            ledger.transfers(
                np.array([at]), int(acct[j]), int(personal[j]), int(total * 0.9), MOBILE, rng=rng
            )
            if rng.random() < 0.35:
                at = int(d) * DAY + int(rng.integers(9 * HOUR, 17 * HOUR))
                ledger.transfers(
                    np.array([at]),
                    int(personal[j]),
                    supplier,
                    max(100, int(total * rng.uniform(0.8, 2.5))),
                    ONLINE,
                    rng=rng,
                )


def group_buy_leaders(rng: np.random.Generator, city: City) -> None:
    ledger, clock, pop, numbering, params = city.ledger, city.clock, city.pop, city.numbering, city.params
    main = pop.main_account
    pool = np.flatnonzero((pop.age >= 28) & (pop.age <= 55) & (main >= 0))
    count = rng.poisson(params["group_buy_leaders_per_10k"] * params["lookalike_scale"] * pop.n / 10_000)
    for leader in rng.choice(pool, min(count, pool.shape[0]), replace=False):
        supplier = _supplier(ledger, numbering)
        neighbours = np.flatnonzero((pop.district == pop.district[leader]) & (main >= 0) & (pop.age >= 25))
        neighbours = neighbours[neighbours != leader]
        handles = []
        for d in range(clock.days):
            k = min(rng.poisson(25), neighbours.shape[0])
            if k == 0:
                continue
            payers = rng.choice(neighbours, k, replace=False)
            t = d * DAY + rng.integers(7 * HOUR + 30 * MINUTE, 11 * HOUR, k)
            amount = (rng.integers(15, 150, k) * 100).astype(np.int64)
            ledger.transfers(
                t,
                main[payers],
                main[leader],
                amount,
                np.where(rng.random(k) < 0.6, THIRD_PARTY, MOBILE),
                rng=rng,
            )
            at = d * DAY + 11 * HOUR + int(rng.integers(30 * MINUTE, 100 * MINUTE))
            handles.append(
                Txn(
                    int(
                        ledger.transfers(
                            np.array([at]),
                            int(main[leader]),
                            supplier,
                            int(amount.sum() * 0.88),
                            MOBILE,
                            rng=rng,
                        )[0]
                    )
                )
            )
        ledger.fact(
            {
                "kind": "lookalike",
                "type": "group_buy_leader",
                "person_id": pop.person_id(int(leader)),
                "account": ledger.account_number[main[leader]],
                "supplier_txn_ids": handles,
            }
        )
