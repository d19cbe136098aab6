"""Mule accounts (rented or sold "two cards"): first-level accounts take the victims' money and
pass it on within minutes to second-level accounts, which pass it on again to a third level.
Some first-level accounts serve many victims for a day or two, others one victim only; a share
belong to residents who sold their cards. Before its first use a card is tested with a few
small transfers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .city import City
from .clock import HOUR, SECOND, lognormal_ms
from .ledger import MOBILE, ONLINE

MULE_BANK_SHARE = {
    "ICBC": 0.12,
    "CCB": 0.12,
    "ABC": 0.14,
    "BOC": 0.06,
    "BOCOM": 0.06,
    "CMB": 0.06,
    "PSBC": 0.14,
    "RCB": 0.2,
    "CITIC": 0.05,
    "SPDB": 0.05,
}


@dataclass
class Mule:
    account: int
    level: int
    group: str
    reused: bool
    resident: int = -1
    since: int = 0  # a reused mule serves new victims from then
    until: int = 0  # until then
    credits: list[tuple[int, int]] = field(default_factory=list)


class MuleNetwork:
    def __init__(self, rng: np.random.Generator, city: City, exclude: set[int]):
        self.rng, self.ledger, self.numbering, self.pop = rng, city.ledger, city.numbering, city.pop
        self.params, self.clock = city.params, city.clock
        pop = city.pop
        self.mules: list[Mule] = []
        self.by_account: dict[int, Mule] = {}
        self._active: dict[str, list[Mule]] = {}
        self._level2: dict[str, list[Mule]] = {}
        self._level3: dict[str, list[Mule]] = {}
        # residents young enough to sell their cards, and never this city's victims
        sellers = np.flatnonzero((pop.age >= 18) & (pop.age <= 32))
        self._sellers = [int(s) for s in sellers if int(s) not in exclude]
        self.rng.shuffle(self._sellers)

    def _new(self, level: int, group: str, reused: bool, since: int = 0, until: int = 0) -> Mule:
        bank = self.numbering.bank(MULE_BANK_SHARE)
        resident = -1
        if level == 1 and self._sellers and self.rng.random() < self.params["resident_mule_share"]:
            resident = self._sellers.pop()
        acct = self.ledger.account(self.numbering.account(bank), bank, resident)
        if resident >= 0:
            self.pop.accounts[resident].append(acct)  # a card opened in their name, for sale
        m = Mule(acct, level, group, reused, resident, since, until)
        self.mules.append(m)
        self.by_account[acct] = m
        return m

    def payee(self, group: str, t: int) -> int:
        """The account a fraud group gives a victim at time t."""
        if self.rng.random() < self.params["mule_reuse"]:
            live = [m for m in self._active.setdefault(group, []) if m.since <= t < m.until]
            if len(live) < 2 or self.rng.random() < 0.25:
                since = t - int(self.rng.integers(0, 12 * HOUR))
                m = self._new(1, group, True, since, since + int(self.rng.integers(12, 72)) * HOUR)
                self._active[group].append(m)
                return m.account
            return live[int(self.rng.integers(len(live)))].account
        return self._new(1, group, False).account

    def platform(self, group: str) -> int:
        """An account that pays victims their first "rebates" or "withdrawals"."""
        return self._pick(self._level2, group, 2).account

    def _pick(self, pools: dict[str, list[Mule]], group: str, level: int) -> Mule:
        pool = pools.setdefault(group, [])
        if len(pool) < 3 or self.rng.random() < 0.15:
            pool.append(self._new(level, group, True))
        return pool[int(self.rng.integers(len(pool)))]

    def credit(self, account: int, t: int, amount: int) -> None:
        self.by_account[account].credits.append((t, amount))

    def move_money(self) -> None:
        """Test transfers before first use, then each mule drains what it got onward."""
        end = self.clock.end
        drain_med = self.params["drain_minutes"]
        for level in (1, 2):  # level 2 is complete once level 1 has drained into it
            for m in [m for m in self.mules if m.level == level and m.credits]:
                m.credits.sort()
                if level == 1:
                    first = m.credits[0][0]
                    for _ in range(int(self.rng.integers(1, 3))):
                        t = first - int(self.rng.integers(3 * HOUR, 30 * HOUR))
                        if t >= 0:
                            self.ledger.transfer(
                                t,
                                self._pick(self._level2, m.group, 2).account,
                                m.account,
                                int(self.rng.integers(100, 5_000)),
                                MOBILE,
                                self.rng,
                            )
                med = drain_med if level == 1 else drain_med * 8
                pending, due = 0, None
                for t, amount in [*m.credits, (end + 10 * HOUR, 0)]:
                    if due is not None and t > due:
                        self._drain(m, due, pending)
                        pending, due = 0, None
                    if amount == 0:
                        break
                    pending += amount
                    if due is None:
                        due = t + max(30 * SECOND, lognormal_ms(self.rng, med, 0.6))

    def _drain(self, m: Mule, t: int, amount: int) -> None:
        if t >= self.clock.end or m.level >= 3:
            return
        pools = self._level2 if m.level == 1 else self._level3
        out = int(amount * self.rng.uniform(0.97, 0.999))
        k = int(self.rng.integers(1, 4))
        cuts = np.sort(self.rng.random(k - 1))
        shares = np.diff(np.concatenate([[0.0], cuts, [1.0]]))
        for j, s in enumerate(shares):
            part = int(out * s)
            if part <= 0:
                continue
            nxt = self._pick(pools, m.group, m.level + 1)
            tj = t + j * int(self.rng.integers(5, 90)) * SECOND
            channel = ONLINE if part >= 5_000_000 else MOBILE
            self.ledger.transfer(tj, m.account, nxt.account, part, channel, self.rng)
            nxt.credits.append((tj + 30 * SECOND, part))

    def facts(self) -> None:
        for m in self.mules:
            if m.credits:
                row = {
                    "kind": "mule_account",
                    "account": self.ledger.account_number[m.account],
                    "bank": self.ledger.account_bank[m.account],
                    "level": m.level,
                    "group": m.group,
                    "reused": m.reused,
                }
                if m.resident >= 0:
                    row["person_id"] = self.pop.person_id(m.resident)
                self.ledger.fact(row, order=5)

    def first_use(self, m: Mule) -> int | None:
        return min(t for t, _ in m.credits) if m.credits else None
