"""The city: population, honest services, fraudsters, and the day-by-day schedule of events."""

from __future__ import annotations

from typing import Any

import numpy as np

from .clock import DAY, Clock
from .config import Config
from .engine import Engine
from .fraud import Fraud
from .numbers import NumberBook
from .population import Population
from .records import CallBlock, TxnBlock
from .traffic import Background, Services
from .truth import Truth


def generator(seed: int, *key: int) -> np.random.Generator:
    """An independent stream for one purpose, so parts of the city never share draws."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


class RegistryBatch:
    """Everyone's registry record at the start: the first records of every run."""

    def __init__(self, pop: Population, t0: int):
        self.pop = pop
        self.times = [t0] * pop.n

    def make(self, i: int) -> tuple[str, dict[str, Any]]:
        return "registry", self.pop.registry_value(i)


class City:
    def __init__(self, persons: int, days: int, seed: int, cfg: Config):
        if persons < 10 or days < 1:
            raise ValueError("a city needs at least 10 persons and 1 day")
        self.cfg = cfg
        self.seed = seed
        self.days = days
        self.clock = Clock(cfg["start"], cfg["utc_offset_minutes"])
        self.engine = Engine(self.clock, self.clock.t0 + days * DAY)
        self.truth = Truth()
        self.holds: dict[str, int] = {}  # txn_id -> when a bank's hold took effect
        self._txn_serial = 0
        rng = generator(seed, 0)
        self.book = NumberBook(rng)
        self.pop = Population(persons, cfg, rng, self.book)
        self.services = Services(self, rng)
        self.fraud = Fraud(self, generator(seed, 2))
        self.background = Background(self)

    def txn_ids(self, banks: list[str]) -> list[str]:
        s = self._txn_serial
        self._txn_serial += len(banks)
        return [f"{b}-{s + j:010d}" for j, b in enumerate(banks)]

    def start(self) -> None:
        eng, t0 = self.engine, self.clock.t0
        eng.stream(RegistryBatch(self.pop, t0))
        self.fraud.schedule_watchlist()
        for d in range(self.days):
            eng.at(t0 + d * DAY, self._day, d)

    def _day(self, t: int, day: int) -> None:
        rng = generator(self.seed, 1, day)
        calls, txns = CallBlock(), TxnBlock()
        bg = self.background
        bg.calls(rng, day, calls)
        bg.service_calls(rng, day, calls)
        bg.transfers(rng, day, txns)
        bg.lookalike_payments(rng, day, calls, txns)
        self.fraud.cold_calls(generator(self.seed, 2, day, 0), day, calls)
        self.engine.stream(calls.batch())
        self.engine.stream(txns.batch())
        self.fraud.new_episodes(day)
