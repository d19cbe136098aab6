"""A day of normal life, drawn for everyone at once: calls among contacts, payments to known
payees, the monthly rhythm (salary, pension, rent, allowances), and the benign look-alikes that
fool naive detectors (couriers, telemarketers, bank service lines, large first-time payments,
savings moved between one's own accounts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .clock import DAY, HOUR, MINUTE, SECOND
from .config import shares
from .numbers import BANK_SERVICE_LINES, CARRIER_PREFIXES, VIRTUAL_PREFIXES
from .population import FAMILY
from .records import CallBlock, TxnBlock

if TYPE_CHECKING:
    from .city import City


def hour_times(rng: np.random.Generator, n: int, day_start: int, profile) -> np.ndarray:
    p = np.asarray(profile, dtype=float)
    hours = rng.choice(24, size=n, p=p / p.sum())
    return day_start + hours * HOUR + rng.integers(0, HOUR // SECOND, size=n) * SECOND


def lognormal(rng: np.random.Generator, median, sigma: float, n: int) -> np.ndarray:
    return np.exp(np.log(median) + sigma * rng.standard_normal(n))


def fen(cny: np.ndarray, whole_yuan: bool = True) -> np.ndarray:
    x = np.maximum(cny, 1.0)
    return (np.round(x) * 100).astype(np.int64) if whole_yuan else np.round(x * 100).astype(
        np.int64)


class Services:
    """Lines that call many strangers for honest reasons: couriers and telemarketers."""

    def __init__(self, city: City, rng: np.random.Generator):
        lc = city.cfg["lookalikes"]
        n = city.pop.n
        book = city.book
        carriers = list(CARRIER_PREFIXES)
        self.couriers = book.mobiles(max(1, round(n * lc["couriers_per_10k"] / 10_000)),
                                     CARRIER_PREFIXES["CMCC"] + CARRIER_PREFIXES["CUCC"])
        self.courier_district = rng.integers(0, len(city.pop.district_names),
                                             size=len(self.couriers))
        k = max(1, round(n * lc["telemarketers_per_10k"] / 10_000))
        virtual = rng.random(k) < lc["telemarketer_virtual_share"]
        nv = int(virtual.sum())
        vnums = book.mobiles(nv, VIRTUAL_PREFIXES)
        dnums = book.mobiles(k - nv, CARRIER_PREFIXES[carriers[0]])
        self.telemarketers = vnums + dnums
        self.telemarketer_origin = ["virtual"] * nv + ["domestic"] * (k - nv)
        # Out-of-town relatives and friends: lines outside the registry.
        self.external = book.mobiles(max(10, n // 5), sum(CARRIER_PREFIXES.values(), ()))
        # Car dealers, schools, developers and agents: paid large sums, once, by many people.
        k = max(10, n // 200)
        banks, bp = shares(city.cfg["population"]["banks"])
        b = [banks[x] for x in rng.choice(len(banks), size=k, p=bp).tolist()]
        self.big_payees = city.pop.accounts.add(book.corporate(k), b, [-1] * k)
        self.sellers = book.mobiles(k, CARRIER_PREFIXES["CMCC"] + CARRIER_PREFIXES["CTCC"])


class Background:
    """Draws one day's normal traffic as time-sorted blocks."""

    def __init__(self, city: City):
        self.city = city
        self.cfg = city.cfg
        pop = city.pop
        g = pop.group_names
        self.call_rate = np.array([self.cfg["calls"]["per_day"][x] for x in g])[pop.group]
        self.txn_rate = np.array([self.cfg["transfers"]["per_day"][x] for x in g])[pop.group]
        self.txn_rate[pop.n_acc == 0] = 0.0
        self.elderly = pop.group == g.index("elderly")
        self.adult = pop.group == g.index("adult")
        self.student = pop.group == g.index("student")
        self.carrier_of = [pop.carrier_names[c] for c in pop.carrier.tolist()]
        self.acc_number = np.array(pop.accounts.number, dtype=object)
        self.acc_bank = np.array(pop.accounts.bank, dtype=object)
        self.chan_names, self.chan_p = shares(self.cfg["transfers"]["channels"])

    # --- calls -------------------------------------------------------------------------------
    def calls(self, rng: np.random.Generator, day: int, block: CallBlock) -> None:
        city, pop, cc = self.city, self.city.pop, self.cfg["calls"]
        start = city.clock.t0 + day * DAY
        m = rng.poisson(self.call_rate)
        caller = np.repeat(np.arange(pop.n), m)
        k = len(caller)
        # The tie kind of each picked contact decides its typical duration.
        start_pos = pop.call_pool.off[caller]
        deg = pop.call_pool.off[caller + 1] - start_pos
        pos = start_pos + np.minimum((rng.random(k) * deg).astype(np.int64),
                                     np.maximum(deg - 1, 0))
        ok = deg > 0
        pos = np.where(ok, pos, 0)
        callee = pop.call_pool.ids[pos]
        tie = pop.call_pool_kind[pos]
        external = (~ok) | (rng.random(k) < cc["external_share"])
        t = hour_times(rng, k, start, cc["hours"])
        sms = rng.random(k) < cc["sms_share"]
        answered = (rng.random(k) < cc["answered"]) & ~sms
        med = np.array([cc["duration_median_s"][x] for x in ("family", "friend", "colleague")])
        dur = np.clip(lognormal(rng, med[tie], cc["duration_sigma"], k), 3, 7200)
        long_family = (tie == FAMILY) & (self.elderly[caller] | self.elderly[callee]) & (
            rng.random(k) < cc["elderly_long_family_call"])
        dur = np.where(long_family, rng.uniform(1200, 3600, k), dur)
        dur = np.where(answered, dur, 0).astype(np.int64)
        city.truth.count("elderly_long_family_calls", int((long_family & answered).sum()))

        phones = pop.phone
        ext = city.services.external
        ext_pick = rng.integers(0, len(ext), size=k).tolist()
        incoming = rng.random(k) < 0.5  # an out-of-town contact calls in, or is called
        c_list, e_list = caller.tolist(), callee.tolist()
        callers, callees, carriers = [], [], []
        for i, (a, b, x, inc) in enumerate(zip(c_list, e_list, external.tolist(),
                                               incoming.tolist(), strict=True)):
            if x:
                if inc:
                    callers.append(ext[ext_pick[i]])
                    callees.append(phones[a])
                else:
                    callers.append(phones[a])
                    callees.append(ext[ext_pick[i]])
                carriers.append(self.carrier_of[a])
            else:
                callers.append(phones[a])
                callees.append(phones[b])
                carriers.append(self.carrier_of[b])
        block.add(t, callers, callees, carriers, sms, answered, dur, "domestic")

        # Missed calls returned: the callee calls back within the hour or two.
        back = np.flatnonzero(~answered & ~sms & ~external & (rng.random(k) < cc["callback"]))
        lo, hi = cc["callback_delay_min"]
        tb = t[back] + rng.integers(lo * 60, hi * 60 + 1, size=len(back)) * SECOND
        ans = rng.random(len(back)) < 0.9
        db = np.where(ans, np.clip(lognormal(rng, 90, 0.9, len(back)), 3, 3600), 0).astype(
            np.int64)
        block.add(tb, [callees[i] for i in back.tolist()], [callers[i] for i in back.tolist()],
                  [self.carrier_of[c_list[i]] for i in back.tolist()], False, ans, db,
                  "domestic")

    def service_calls(self, rng: np.random.Generator, day: int, block: CallBlock) -> None:
        city, pop, lc = self.city, self.city.pop, self.cfg["lookalikes"]
        start = city.clock.t0 + day * DAY
        work_hours = [0] * 8 + [1] * 13 + [0] * 3
        # Couriers: dozens of brief answered calls a day, each to someone in their district.
        sv = city.services
        lo, hi = lc["courier_calls_per_day"]
        m = rng.integers(lo, hi + 1, size=len(sv.couriers))
        who = np.repeat(np.arange(len(sv.couriers)), m)
        k = len(who)
        by_d = np.argsort(pop.district, kind="stable")
        sd = pop.district[by_d]
        d = sv.courier_district[who]
        a = np.searchsorted(sd, d, "left")
        b = np.searchsorted(sd, d, "right")
        target = by_d[a + (rng.random(k) * (b - a)).astype(np.int64)]
        ans = rng.random(k) < lc["courier_answered"]
        dlo, dhi = lc["courier_duration_s"]
        dur = np.where(ans, rng.integers(dlo, dhi + 1, size=k), 0)
        block.add(hour_times(rng, k, start, work_hours), [sv.couriers[i] for i in who.tolist()],
                  [pop.phone[i] for i in target.tolist()],
                  [self.carrier_of[i] for i in target.tolist()], False, ans, dur, "domestic")
        # Telemarketers: hundreds of calls citywide, mostly declined; a few long sales pitches.
        lo, hi = lc["telemarketer_calls_per_day"]
        m = rng.integers(lo, hi + 1, size=len(sv.telemarketers))
        who = np.repeat(np.arange(len(sv.telemarketers)), m)
        k = len(who)
        target = rng.integers(0, pop.n, size=k)
        ans = rng.random(k) < lc["telemarketer_answered"]
        dlo, dhi = lc["telemarketer_duration_s"]
        dur = rng.integers(dlo, dhi + 1, size=k)
        dur = np.where(rng.random(k) < 0.05, rng.integers(300, 900, size=k), dur)
        dur = np.where(ans, dur, 0)
        sms = rng.random(k) < 0.15
        block.add(hour_times(rng, k, start, work_hours),
                  [sv.telemarketers[i] for i in who.tolist()],
                  [pop.phone[i] for i in target.tolist()],
                  [self.carrier_of[i] for i in target.tolist()], sms, ans & ~sms,
                  np.where(sms, 0, dur), [sv.telemarketer_origin[i] for i in who.tolist()],
                  url=sms & (rng.random(k) < 0.5))
        # Bank service lines: long calls about cards, loans, wealth products; both directions.
        has = np.flatnonzero(pop.n_acc > 0)
        who = has[rng.random(len(has)) < lc["bank_line_calls"]]
        k = len(who)
        acc, _ = pop.acc.pick(who, rng.random(k))
        lines = [BANK_SERVICE_LINES[pop.accounts.bank[a]] for a in acc.tolist()]
        out = rng.random(k) < 0.5
        lo, hi = lc["bank_line_duration_min"]
        dur = rng.integers(lo * 60, hi * 60 + 1, size=k)
        phones = [pop.phone[i] for i in who.tolist()]
        block.add(hour_times(rng, k, start, work_hours),
                  [ln if o else p for ln, p, o in zip(lines, phones, out.tolist(), strict=True)],
                  [p if o else ln for ln, p, o in zip(lines, phones, out.tolist(), strict=True)],
                  [self.carrier_of[i] for i in who.tolist()], False, True, dur, "domestic")
        city.truth.count("bank_line_calls", k)

    # --- transfers ---------------------------------------------------------------------------
    def _txns(self, rng, block: TxnBlock, t, payer_acc, payee_acc, amount, channel=None,
              fail: float | None = None) -> list[str]:
        k = len(t)
        if k == 0:
            return []
        tc = self.cfg["transfers"]
        lo, hi = tc["complete_delay_s"]
        t_end = t + rng.integers(lo * 1000, hi * 1000 + 1, size=k)
        fail_p = tc["fail_share"] if fail is None else fail
        end = np.where(rng.random(k) < fail_p, "failed", "completed")
        if channel is None:
            channel = np.asarray(self.chan_names, dtype=object)[
                rng.choice(len(self.chan_names), size=k, p=self.chan_p)]
        banks = self.acc_bank[payer_acc].tolist()
        ids = self.city.txn_ids(banks)
        block.add(t, t_end, ids, banks, self.acc_number[payer_acc].tolist(),
                  self.acc_number[payee_acc].tolist(), self.acc_bank[payee_acc].tolist(),
                  amount, channel, end)
        return ids

    def transfers(self, rng: np.random.Generator, day: int, block: TxnBlock) -> None:
        city, pop, tc = self.city, self.city.pop, self.cfg["transfers"]
        start = city.clock.t0 + day * DAY
        m = rng.poisson(self.txn_rate)
        payer = np.repeat(np.arange(pop.n), m)
        k = len(payer)
        payer_acc, _ = pop.acc.pick(payer, rng.random(k))
        cats, cat_p = shares(tc["payee_mix"])
        cat = rng.choice(len(cats), size=k, p=cat_p)
        payee = np.full(k, -1, dtype=np.int64)
        for c, csr in ((cats.index("family"), pop.family_payees),
                       (cats.index("known"), pop.known_payees)):
            sel = np.flatnonzero(cat == c)
            got, ok = csr.pick(payer[sel], rng.random(len(sel)))
            payee[sel[ok]] = got[ok]
            cat[sel[~ok]] = cats.index("merchant")
        sel = np.flatnonzero(payee < 0)
        got, _ = pop.merchant_payees.pick(payer[sel], rng.random(len(sel)))
        payee[sel] = got
        cat[sel] = cats.index("merchant")
        med = np.array([tc["amount_median_cny"][c] for c in cats])
        amount = np.minimum(lognormal(rng, med[cat], tc["amount_sigma"], k), tc["amount_max_cny"])
        merchant = cat == cats.index("merchant")
        amount = np.where(merchant, fen(amount, whole_yuan=False), fen(amount))
        channel = np.asarray(self.chan_names, dtype=object)[
            rng.choice(len(self.chan_names), size=k, p=self.chan_p)]
        channel = np.where(merchant & (rng.random(k) < 0.5), "third_party", channel)
        self._txns(rng, block, hour_times(rng, k, start, tc["hours"]), payer_acc, payee,
                   amount, channel)
        self._monthly(rng, day, block)

    def _monthly(self, rng: np.random.Generator, day: int, block: TxnBlock) -> None:
        city, pop, tc = self.city, self.city.pop, self.cfg["transfers"]
        start = city.clock.t0 + day * DAY
        dom = city.clock.date_of_day(day).day
        office = [0] * 9 + [1] * 8 + [0] * 7
        if dom == tc["salary"]["day"]:
            w = np.flatnonzero((pop.workplace >= 0) & (pop.n_acc > 0))
            lo, hi = tc["salary"]["amount"]
            self._txns(rng, block, hour_times(rng, len(w), start, office),
                       pop.employer_acc[pop.workplace[w]], pop.first_account(w),
                       fen(rng.uniform(lo, hi, len(w))), "online_banking", fail=0.0)
        if dom == tc["pension"]["day"]:
            e = np.flatnonzero(self.elderly & (pop.n_acc > 0))
            lo, hi = tc["pension"]["amount"]
            self._txns(rng, block, hour_times(rng, len(e), start, office),
                       np.full(len(e), pop.pension_acc), pop.first_account(e),
                       fen(rng.uniform(lo, hi, len(e))), "online_banking", fail=0.0)
        if dom == tc["rent"]["day"] and len(pop.renters):
            lo, hi = tc["rent"]["amount"]
            r = pop.renters
            self._txns(rng, block, hour_times(rng, len(r), start, tc["hours"]),
                       pop.first_account(r), pop.landlord_acc, fen(rng.uniform(lo, hi, len(r))),
                       "mobile_app")
        if dom == tc["allowance"]["day"]:
            s = np.flatnonzero(self.student & (pop.n_acc > 0))
            parent_acc, ok = pop.family_payees.pick(s, rng.random(len(s)))
            s, parent_acc = s[ok], parent_acc[ok]
            lo, hi = tc["allowance"]["amount"]
            self._txns(rng, block, hour_times(rng, len(s), start, tc["hours"]), parent_acc,
                       pop.first_account(s), fen(rng.uniform(lo, hi, len(s))), "mobile_app")

    def lookalike_payments(self, rng: np.random.Generator, day: int, calls: CallBlock,
                           block: TxnBlock) -> None:
        """Legitimate large first-time payments, often after moving savings or a long call."""
        city, pop, lc = self.city, self.city.pop, self.cfg["lookalikes"]
        start = city.clock.t0 + day * DAY
        truth = city.truth
        who = np.flatnonzero((self.adult | self.elderly) & (pop.n_acc > 0)
                             & (rng.random(pop.n) < lc["large_payment"]))
        kinds, kp = shares(lc["large_payment_kinds"], "share")
        for i in who.tolist():
            kind = kinds[int(rng.choice(len(kinds), p=kp))]
            lo, hi = lc["large_payment_kinds"][kind]["amount"]
            amount = round(rng.uniform(lo, hi)) * 100
            t = start + int(rng.integers(9 * 3600, 18 * 3600)) * SECOND
            j = int(rng.integers(0, len(city.services.big_payees)))
            payee = int(city.services.big_payees[j])
            accs = pop.account_list(i)
            payer = accs[0]
            if len(accs) > 1 and rng.random() < lc["savings_move_before_large"]:
                tm = t - int(rng.integers(10, 180)) * MINUTE
                ids = self._txns(rng, block, np.array([tm]), np.array([accs[1]]),
                                 np.array([payer]), np.array([amount]), "mobile_app", fail=0.0)
                truth.lookalike("savings_move", txn_id=ids[0], person=i)
            if rng.random() < lc["seller_call_before_large"]:
                tc = max(start + 8 * HOUR, t - int(rng.integers(20, 8 * 60)) * MINUTE)
                seller = city.services.sellers[j]
                calls.add(np.array([tc]), [seller], [pop.phone[i]], self.carrier_of[i], False,
                          True, int(rng.integers(300, 1800)), "domestic")
            ch = "counter" if rng.random() < 0.3 else "online_banking"
            ids = self._txns(rng, block, np.array([t]), np.array([payer]), np.array([payee]),
                             np.array([amount]), ch, fail=0.0)
            truth.lookalike(kind, txn_id=ids[0], person=i, amount_fen=amount)
        # Savings moved between one's own accounts, for nothing worse than a better rate.
        multi = np.flatnonzero((pop.n_acc > 1) & (rng.random(pop.n) < lc["savings_move"]))
        lo, hi = lc["savings_move_amount"]
        for i in multi.tolist():
            accs = pop.account_list(i)
            a, b = rng.choice(len(accs), size=2, replace=False).tolist()
            t = start + int(rng.integers(8 * 3600, 22 * 3600)) * SECOND
            ids = self._txns(rng, block, np.array([t]), np.array([accs[a]]), np.array([accs[b]]),
                             np.array([int(rng.uniform(lo, hi)) * 100]), "mobile_app", fail=0.0)
            truth.lookalike("savings_move", txn_id=ids[0], person=i)
