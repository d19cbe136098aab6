"""The people of the city: ages, districts, lines, accounts, and who they call and pay.

Everything is held in numpy arrays indexed by person (and an account table indexed by account
id), so that a day's normal traffic can be drawn for everyone at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Config, shares
from .numbers import NumberBook

FAMILY, FRIEND, COLLEAGUE = 0, 1, 2
CONTACT_KINDS = ("family", "friend", "colleague")


@dataclass
class Csr:
    """A list of integer lists: row i is ``ids[off[i]:off[i+1]]``."""

    off: np.ndarray
    ids: np.ndarray

    @classmethod
    def from_pairs(cls, rows: np.ndarray, ids: np.ndarray, n: int) -> Csr:
        order = np.lexsort((ids, rows))
        counts = np.bincount(rows, minlength=n)
        off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=off[1:])
        return cls(off, ids[order])

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.off[i]:self.off[i + 1]]

    def pick(self, rows: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One uniform entry of each row in ``rows`` (u in [0, 1)); ok is False for empty rows."""
        start = self.off[rows]
        deg = self.off[rows + 1] - start
        ok = deg > 0
        pos = start + np.minimum((u * deg).astype(np.int64), np.maximum(deg - 1, 0))
        pos = np.where(ok, pos, 0)
        out = self.ids[pos] if len(self.ids) else np.zeros(len(rows), dtype=np.int64)
        return out, ok


class Accounts:
    """The account table: every account the city's money touches, by integer id."""

    def __init__(self) -> None:
        self.number: list[str] = []
        self.bank: list[str] = []
        self.owner: list[int] = []  # person index, or -1 for companies and out-of-town holders

    def add(self, numbers: list[str], banks: list[str], owners: list[int]) -> np.ndarray:
        start = len(self.number)
        self.number += numbers
        self.bank += banks
        self.owner += owners
        return np.arange(start, start + len(numbers), dtype=np.int64)


class Population:
    """Persons with their registry data and their normal social and payment ties."""

    def __init__(self, n: int, cfg: Config, rng: np.random.Generator, book: NumberBook):
        pc = cfg["population"]
        self.n = n
        self.year = int(cfg["start"][:4])
        groups, gp = shares(pc["age_groups"], "share")
        self.group_names = groups
        self.group = rng.choice(len(groups), size=n, p=gp)
        lo = np.array([pc["age_groups"][g]["ages"][0] for g in groups])
        hi = np.array([pc["age_groups"][g]["ages"][1] for g in groups])
        self.age = rng.integers(lo[self.group], hi[self.group] + 1)
        self.birth_year = self.year - self.age

        dnames, dp = shares(pc["districts"])
        self.district_names = dnames
        self.district = rng.choice(len(dnames), size=n, p=dp)
        cnames, cp = shares(pc["carriers"])
        self.carrier_names = cnames
        self.carrier = rng.choice(len(cnames), size=n, p=cp)

        # Lines: one each, a second for a few (same carrier: a family plan or a work phone).
        carriers = [cnames[c] for c in self.carrier.tolist()]
        self.phone = book.carrier_mobiles(carriers)
        second = np.flatnonzero(rng.random(n) < pc["second_line_share"]).tolist()
        extra = book.carrier_mobiles([carriers[i] for i in second])
        self.lines: list[list[str]] = [[p] for p in self.phone]
        for i, num in zip(second, extra, strict=True):
            self.lines[i].append(num)
        self.line_owner = {num: i for i, ls in enumerate(self.lines) for num in ls}

        # Accounts: one to three cards; some minors have none.
        self.accounts = Accounts()
        bnames, bp = shares(pc["banks"])
        k = rng.choice(3, size=n, p=np.asarray(pc["accounts_per_person"]) / 1.0) + 1
        minor = self.group == groups.index("minor") if "minor" in groups else np.zeros(n, bool)
        k[minor] = (rng.random(int(minor.sum())) < pc["minor_account_share"]).astype(int)
        owners = np.repeat(np.arange(n), k)
        banks = [bnames[b] for b in rng.choice(len(bnames), size=len(owners), p=bp).tolist()]
        ids = self.accounts.add(book.cards(banks), banks, owners.tolist())
        self.acc = Csr.from_pairs(owners, ids, n)
        self.extra: dict[int, list[int]] = {}  # rented cards opened later (mule holders)
        self.n_acc = k
        self._contacts(cfg, rng)
        self._payees(cfg, rng, book)

    # --- ties --------------------------------------------------------------------------------
    def _contacts(self, cfg: Config, rng: np.random.Generator) -> None:
        pc = cfg["population"]
        n = self.n
        g = self.group_names
        adult_code = g.index("adult")
        src: list[np.ndarray] = []
        dst: list[np.ndarray] = []
        kind: list[np.ndarray] = []

        def add(a: np.ndarray, b: np.ndarray, k: int) -> None:
            keep = a != b
            src.append(a[keep])
            dst.append(b[keep])
            kind.append(np.full(int(keep.sum()), k, dtype=np.int8))

        # Households: persons of a district cut into groups of 1-5.
        order = np.lexsort((rng.random(n), self.district))
        lo, hi = pc["household_size"]
        sizes = rng.integers(lo, hi + 1, size=n)
        hh = np.repeat(np.arange(n), sizes)[:n]
        household = np.empty(n, dtype=np.int64)
        household[order] = hh
        self.household = household
        for shift in range(1, hi):
            a = order[:-shift]
            b = order[shift:]
            same = household[a] == household[b]
            add(a[same], b[same], FAMILY)

        # Parents and grown children across households: each young person and each elderly
        # person is tied to adults of the same district.
        adults_by_d = [np.flatnonzero((self.group == adult_code) & (self.district == d))
                       for d in range(len(self.district_names))]
        for code, links in ((g.index("minor"), 2), (g.index("student"), 2),
                            (g.index("elderly"), 2)):
            who = np.flatnonzero(self.group == code)
            for _ in range(links):
                d = self.district[who]
                pool_sizes = np.array([len(adults_by_d[x]) for x in d.tolist()])
                ok = pool_sizes > 0
                pick = (rng.random(len(who)) * np.maximum(pool_sizes, 1)).astype(np.int64)
                other = np.array([adults_by_d[x][p] if s else -1 for x, p, s in
                                  zip(d.tolist(), pick.tolist(), ok.tolist(), strict=True)],
                                 dtype=np.int64)
                add(who[ok], other[ok], FAMILY)

        # Friends: mostly in the same district and the same age group.
        m = rng.poisson(pc["friends_mean"] / 2, size=n)
        a = np.repeat(np.arange(n), m)
        key = self.district * 10 + self.group
        by_key = np.argsort(key, kind="stable")
        sk = key[by_key]
        starts = np.searchsorted(sk, key[a], "left")
        ends = np.searchsorted(sk, key[a], "right")
        local = by_key[starts + (rng.random(len(a)) * (ends - starts)).astype(np.int64)]
        far = rng.integers(0, n, size=len(a))
        b = np.where(rng.random(len(a)) < 0.8, local, far)
        add(a, b, FRIEND)

        # Colleagues: working adults in workplaces of 5-60.
        workers = np.flatnonzero((self.group == adult_code) & (rng.random(n) < 0.8))
        workers = workers[np.argsort(rng.random(len(workers)))]
        wlo, whi = pc["workplace_size"]
        wsizes = rng.integers(wlo, whi + 1, size=max(1, len(workers) // wlo + 1))
        wp = np.repeat(np.arange(len(wsizes)), wsizes)[:len(workers)]
        self.workplace = np.full(n, -1, dtype=np.int64)
        self.workplace[workers] = wp
        m = rng.poisson(pc["colleagues_mean"] / 2, size=len(workers))
        a = np.repeat(workers, m)
        wa = self.workplace[a]
        wstart = np.searchsorted(wp, wa, "left")
        wend = np.searchsorted(wp, wa, "right")
        b = workers[wstart + (rng.random(len(a)) * (wend - wstart)).astype(np.int64)]
        add(a, b, COLLEAGUE)

        s = np.concatenate(src + dst)
        d = np.concatenate(dst + src)
        k = np.concatenate(kind + kind)
        # One tie per pair, the closest kind winning (family over friend over colleague).
        pair = s.astype(np.int64) * n + d
        order = np.lexsort((k, pair))
        pair, k = pair[order], k[order]
        first = np.ones(len(pair), dtype=bool)
        first[1:] = pair[1:] != pair[:-1]
        pair, k = pair[first], k[first]
        s, d = pair // n, pair % n
        self.contact = Csr.from_pairs(s, d, n)
        self.contact_kind = k[np.lexsort((d, s))]
        # Calls favour family: family ties appear three times in the pool calls are drawn from.
        fam = k == FAMILY
        cs = np.concatenate([s, s[fam], s[fam]])
        cd = np.concatenate([d, d[fam], d[fam]])
        ck = np.concatenate([k, k[fam], k[fam]])
        order = np.lexsort((ck, cd, cs))
        self.call_pool = Csr.from_pairs(cs, cd, n)
        self.call_pool_kind = ck[order]

    def _payees(self, cfg: Config, rng: np.random.Generator, book: NumberBook) -> None:
        pc = cfg["population"]
        n = self.n
        bnames, bp = shares(pc["banks"])
        # Merchants and employers: company accounts.
        n_merch = max(5, n * pc["merchants_per_1000"] // 1000)
        mbanks = [bnames[b] for b in rng.choice(len(bnames), size=n_merch, p=bp).tolist()]
        self.merchants = self.accounts.add(book.corporate(n_merch), mbanks, [-1] * n_merch)
        n_emp = int(self.workplace.max()) + 1 if (self.workplace >= 0).any() else 1
        ebanks = [bnames[b] for b in rng.choice(len(bnames), size=n_emp, p=bp).tolist()]
        self.employer_acc = self.accounts.add(book.corporate(n_emp), ebanks, [-1] * n_emp)
        pbank = "PSBC" if "PSBC" in bnames else bnames[0]
        self.pension_acc = int(self.accounts.add(book.corporate(1), [pbank], [-1])[0])

        # Each person pays 3-6 usual merchants.
        m = rng.integers(3, 7, size=n)
        rows = np.repeat(np.arange(n), m)
        self.merchant_payees = Csr.from_pairs(rows, self.merchants[
            rng.integers(0, n_merch, size=len(rows))], n)
        # Family payees: the first account of each family contact.
        fam = self.contact_kind == FAMILY
        rows = np.repeat(np.arange(n), np.diff(self.contact.off))[fam]
        other = self.contact.ids[fam]
        first_acc = self.first_account(other)
        ok = first_acc >= 0
        self.family_payees = Csr.from_pairs(rows[ok], first_acc[ok], n)
        # Renters pay a landlord (another adult of the city) every month.
        adult = np.flatnonzero(self.group == self.group_names.index("adult"))
        renters = adult[rng.random(len(adult)) < pc["renter_share"]]
        landlords = self.first_account(adult[rng.integers(0, len(adult), size=len(renters))])
        ok = (landlords >= 0) & (self.first_account(renters) >= 0)
        self.renters, self.landlord_acc = renters[ok], landlords[ok]
        self.known_payees = Csr.from_pairs(self.renters, self.landlord_acc, n)

    # --- lookups -----------------------------------------------------------------------------
    def first_account(self, persons: np.ndarray) -> np.ndarray:
        start = self.acc.off[persons]
        has = self.acc.off[persons + 1] > start
        return np.where(has, self.acc.ids[np.where(has, start, 0)], -1)

    def account_list(self, i: int) -> list[int]:
        return self.acc.row(i).tolist()

    def registry_value(self, i: int) -> dict:
        acc = self.accounts
        return {
            "op": "upsert",
            "person_id": person_id(i),
            "birth_year": int(self.birth_year[i]),
            "district": self.district_names[int(self.district[i])],
            "msisdns": list(self.lines[i]),
            "accounts": [{"bank": acc.bank[a], "account": acc.number[a]}
                         for a in self.acc.row(i).tolist() + self.extra.get(i, [])],
        }


def person_id(i: int) -> str:
    return f"P{i:07d}"
