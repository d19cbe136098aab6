"""The residents: ages, households, districts, phone lines and bank accounts (the real-name
registry), workplaces and schools, and the social ties people call along: spouses, parents and
teenagers at home, grown children and their elderly parents, friends, colleagues, contacts in
other cities and children abroad.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .clock import DAY
from .ledger import Ledger
from .numbering import ABROAD_FAMILY, RESIDENT_BANK_SHARE, Numbering
from .settings import AGE_BANDS

SPOUSE, HOME, KIN, FRIEND, COLLEAGUE = range(5)
# the elderly keep their money in the postal and agricultural banks more than the young
ELDERLY_BANK_SHARE = {**RESIDENT_BANK_SHARE, "PSBC": 0.25, "RCB": 0.18, "ABC": 0.2, "CMB": 0.02}


@dataclass
class Population:
    n: int
    age: np.ndarray
    birth_year: np.ndarray
    district: np.ndarray  # index into districts
    districts: tuple[str, ...]
    household: np.ndarray
    workplace: np.ndarray  # -1: none
    workplace_school: np.ndarray  # per workplace: a school class, not a company
    workplace_members: list[np.ndarray]
    phone: np.ndarray  # primary line id, -1: none
    phones: list[list[int]]
    accounts: list[list[int]]  # account ids, first is the everyday one
    app_limit_fen: np.ndarray  # daily limit of the mobile app channel
    notices: np.ndarray  # gets the bank's SMS notice of each transfer
    tie_a: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tie_b: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tie_kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tie_long: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    out_person: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    out_line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    out_abroad: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def main_account(self) -> np.ndarray:
        return np.array([a[0] if a else -1 for a in self.accounts], dtype=np.int64)

    def person_id(self, i: int) -> str:
        return f"R{i + 1:06d}"


def _ages(rng: np.random.Generator, n: int, weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    band = rng.choice(len(AGE_BANDS), n, p=w / w.sum())
    lo = np.array([b[0] for b in AGE_BANDS])[band]
    hi = np.array([b[1] for b in AGE_BANDS])[band]
    return lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64)


def _households(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    """Couples of similar age, teenagers and students living with parents 20-40 years older,
    some widowed elderly living with a grown child, the rest alone."""
    n = age.shape[0]
    hh = np.full(n, -1, dtype=np.int64)
    adults = np.flatnonzero(age >= 25)
    coupled = adults[rng.random(adults.shape[0]) < 0.64]
    coupled = coupled[np.argsort(age[coupled] + rng.normal(0, 2.5, coupled.shape[0]), kind="stable")]
    n_pairs = coupled.shape[0] // 2
    hh[coupled[: 2 * n_pairs]] = np.repeat(np.arange(n_pairs), 2)
    head_age = age[coupled[0 : 2 * n_pairs : 2]]
    order = np.argsort(head_age, kind="stable")
    sorted_age = head_age[order]
    nxt = n_pairs

    def join(person: int, lo: int, hi: int) -> bool:
        a, b = np.searchsorted(sorted_age, [lo, hi + 1])
        if b <= a:
            return False
        hh[person] = order[a + rng.integers(0, b - a)]
        return True

    for p in np.flatnonzero((age >= 14) & (age <= 24)):
        stay = 0.9 if age[p] < 18 else 0.45
        if rng.random() < stay:
            join(int(p), int(age[p]) + 22, int(age[p]) + 40)
    for p in np.flatnonzero((age >= 70) & (hh < 0)):
        if rng.random() < 0.3:
            join(int(p), int(age[p]) - 45, int(age[p]) - 25)
    alone = np.flatnonzero(hh < 0)
    hh[alone] = nxt + np.arange(alone.shape[0])
    return hh


def _pairs(a: np.ndarray, b: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Undirected, deduplicated, without self-pairs, in a fixed order."""
    m = a != b
    lo, hi = np.minimum(a[m], b[m]), np.maximum(a[m], b[m])
    key = np.unique(lo * n + hi)
    return key // n, key % n


def build(
    rng: np.random.Generator, n: int, params: dict, numbering: Numbering, ledger: Ledger, start_year: int
) -> Population:
    age = _ages(rng, n, params["age_weights"])
    birth_year = start_year - age - (rng.random(n) < 0.3)
    hh = _households(rng, age)
    n_hh = int(hh.max()) + 1
    dw = rng.dirichlet(np.full(len(params["districts"]), 6.0))
    hh_district = rng.choice(len(dw), n_hh, p=dw)
    district = hh_district[hh]

    # workplaces: school classes for students, companies of varied size for workers
    workplace = np.full(n, -1, dtype=np.int64)
    students = np.flatnonzero((age >= 15) & (age <= 22) & (rng.random(n) < 0.65))
    workers = np.flatnonzero((age >= 23) & (age <= 62) & (rng.random(n) < 0.78))
    n_classes = max(1, students.shape[0] // 30)
    workplace[students] = rng.integers(0, n_classes, students.shape[0])
    sizes = np.clip(rng.lognormal(np.log(9), 1.0, max(1, workers.shape[0] // 9)), 2, 250).astype(int)
    owner = np.repeat(np.arange(sizes.shape[0]), sizes)[: workers.shape[0]]
    if owner.shape[0] < workers.shape[0]:
        owner = np.concatenate([owner, rng.integers(0, sizes.shape[0], workers.shape[0] - owner.shape[0])])
    workplace[rng.permutation(workers)] = n_classes + owner
    n_wp = int(workplace.max()) + 1
    members = np.argsort(workplace, kind="stable")
    members = members[workplace[members] >= 0]
    bounds = np.searchsorted(workplace[members], np.arange(n_wp + 1))
    workplace_members = [members[bounds[w] : bounds[w + 1]] for w in range(n_wp)]
    workplace_school = np.arange(n_wp) < n_classes

    # lines and accounts (the registry)
    has_phone = rng.random(n) < np.where(age >= 80, 0.85, np.where(age < 18, 0.92, 0.995))
    phones: list[list[int]] = []
    phone = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        lines: list[int] = []
        if has_phone[i]:
            lines.append(ledger.line(numbering.mobile(), "domestic", i))
            if 25 <= age[i] <= 59 and rng.random() < 0.12:
                lines.append(ledger.line(numbering.mobile(), "domestic", i))
            phone[i] = lines[0]
        phones.append(lines)
    accounts: list[list[int]] = []
    for i in range(n):
        k = 0
        if age[i] < 18:
            k = int(rng.random() < 0.4)
        elif rng.random() < 0.98 or not has_phone[i]:
            k = 1 + int(rng.random() < 0.55) + int(rng.random() < 0.12)
        share = ELDERLY_BANK_SHARE if age[i] >= 60 else RESIDENT_BANK_SHARE
        accs = []
        banks_used: list[str] = []
        for _ in range(k):
            bank = numbering.bank(share)
            if bank in banks_used:  # a second card is usually at another bank
                bank = numbering.bank(share)
            banks_used.append(bank)
            accs.append(ledger.account(numbering.account(bank), bank, i))
        accounts.append(accs)
    app_limit = rng.choice(np.array([2_000_000, 5_000_000, 20_000_000]), n, p=[0.15, 0.55, 0.3])
    notices = rng.random(n) < 0.7

    pop = Population(
        n=n,
        age=age,
        birth_year=birth_year,
        district=district,
        districts=tuple(params["districts"]),
        household=hh,
        workplace=workplace,
        workplace_school=workplace_school,
        workplace_members=workplace_members,
        phone=phone,
        phones=phones,
        accounts=accounts,
        app_limit_fen=app_limit,
        notices=notices,
    )
    _ties(rng, pop, params, numbering, ledger)
    return pop


def _ties(
    rng: np.random.Generator, pop: Population, params: dict, numbering: Numbering, ledger: Ledger
) -> None:
    n, age, hh = pop.n, pop.age, pop.household
    a_list, b_list, k_list = [], [], []

    # household: spouses (both adults) and parent-teen
    order = np.argsort(hh, kind="stable")
    bounds = np.flatnonzero(np.diff(hh[order])) + 1
    for grp in np.split(order, bounds):
        if grp.shape[0] < 2:
            continue
        for x in range(grp.shape[0]):
            for y in range(x + 1, grp.shape[0]):
                p, q = grp[x], grp[y]
                both_adult = abs(int(age[p]) - int(age[q])) < 15 and min(age[p], age[q]) >= 25
                a_list.append(p)
                b_list.append(q)
                k_list.append(SPOUSE if both_adult else HOME)

    # grown children in other households and their elderly parents
    by_age = np.argsort(age, kind="stable")
    sorted_age = age[by_age]
    elderly = np.flatnonzero(age >= 58)
    for p in elderly:
        lo, hi = np.searchsorted(sorted_age, [int(age[p]) - 38, int(age[p]) - 22 + 1])
        if hi <= lo:
            continue
        for _ in range(1 + rng.poisson(0.7)):
            c = by_age[lo + rng.integers(0, hi - lo)]
            if hh[c] != hh[p]:
                a_list.append(c)
                b_list.append(p)
                k_list.append(KIN)

    # friends: mostly same district and similar age
    key = pop.district * 1000 + age + rng.normal(0, 4, n)
    pos = np.argsort(key, kind="stable")
    stubs = rng.poisson(5.5, n) + 1
    src = np.repeat(np.arange(n), stubs)
    rank = np.empty(n, dtype=np.int64)
    rank[pos] = np.arange(n)
    off = rng.integers(-40, 41, src.shape[0])
    dst = pos[np.clip(rank[src] + off, 0, n - 1)]
    far = rng.random(src.shape[0]) < 0.15
    dst[far] = rng.integers(0, n, int(far.sum()))
    fa, fb = _pairs(src, dst, n)

    # colleagues and classmates
    ca, cb = [], []
    for mem in pop.workplace_members:
        if mem.shape[0] < 2:
            continue
        k = min(4, mem.shape[0] - 1)
        s = np.repeat(mem, k)
        d = mem[rng.integers(0, mem.shape[0], s.shape[0])]
        ca.append(s)
        cb.append(d)
    ca_, cb_ = _pairs(
        np.concatenate(ca) if ca else np.zeros(0, np.int64),
        np.concatenate(cb) if cb else np.zeros(0, np.int64),
        n,
    )

    fam_a, fam_b = np.array(a_list, dtype=np.int64), np.array(b_list, dtype=np.int64)
    fam_k = np.array(k_list, dtype=np.int64)
    tie_a = np.concatenate([fam_a, fa, ca_])
    tie_b = np.concatenate([fam_b, fb, cb_])
    tie_k = np.concatenate([fam_k, np.full(fa.shape[0], FRIEND), np.full(ca_.shape[0], COLLEAGUE)])
    # one tie per pair, the closest kind wins (family before friend before colleague)
    pair = np.minimum(tie_a, tie_b) * n + np.maximum(tie_a, tie_b)
    _, first = np.unique(pair, return_index=True)
    first = np.sort(first)
    tie_a, tie_b, tie_k = tie_a[first], tie_b[first], tie_k[first]
    both_phones = (pop.phone[tie_a] >= 0) & (pop.phone[tie_b] >= 0)
    pop.tie_a, pop.tie_b, pop.tie_kind = tie_a, tie_b, tie_k
    # the long, frequent calls between some elderly parents and a grown child
    pop.tie_long = (
        (tie_k == KIN)
        & (age[tie_b] >= 65)
        & both_phones
        & (rng.random(tie_a.shape[0]) < params["elderly_long_call_share"])
    )

    # contacts in other cities, and children abroad
    with_phone = np.flatnonzero(pop.phone >= 0)
    k = rng.poisson(1.6, with_phone.shape[0])
    out_p = np.repeat(with_phone, k)
    out_l = np.array(
        [ledger.line(numbering.mobile(), "domestic") for _ in range(out_p.shape[0])], dtype=np.int64
    )
    old = with_phone[
        (age[with_phone] >= 60) & (rng.random(with_phone.shape[0]) < params["abroad_child_share"])
    ]
    abroad_l = np.array(
        [ledger.line(numbering.foreign(ABROAD_FAMILY), "international") for _ in range(old.shape[0])],
        dtype=np.int64,
    )
    pop.out_person = np.concatenate([out_p, old])
    pop.out_line = np.concatenate([out_l, abroad_l])
    pop.out_abroad = np.concatenate([np.zeros(out_p.shape[0], bool), np.ones(old.shape[0], bool)])


def registry_records(pop: Population, ledger: Ledger) -> None:
    """One upsert per resident, two days before the city's start (the registry is known first)."""
    for i in range(pop.n):
        ledger.record(
            "registry",
            -2 * DAY,
            {
                "op": "upsert",
                "person_id": pop.person_id(i),
                "birth_year": int(pop.birth_year[i]),
                "district": pop.districts[pop.district[i]],
                "msisdns": [ledger.line_number[x] for x in pop.phones[i]],
                "accounts": [
                    {"bank": ledger.account_bank[a], "account": ledger.account_number[a]}
                    for a in pop.accounts[i]
                ],
            },
        )
