"""An independent synthetic city for measuring fraud detection: residents who call and pay each
other, benign look-alikes, seven fraud typologies with their own rhythms, mule chains, watch
lists and case reports, as a replay file of the event contract plus its ground truth.

Written from the contract, the domain notes and public knowledge of the fraud only (README.md
beside this file), so that a detector tuned on the project's own simulator can be measured on a
world it has not seen.

>>> from bench.worlds.settings import SETTINGS
>>> sorted(SETTINGS)[:3]
['baseline', 'chat-only', 'during-call-payers']
"""

from __future__ import annotations

import zlib
from datetime import datetime
from pathlib import Path

import numpy as np

from . import commerce, everyday, lookalikes, population, watchlists
from .city import City
from .clock import Clock
from .fraud import Fraud
from .ledger import Ledger
from .numbering import Numbering
from .settings import SETTINGS, setting

__all__ = ["SETTINGS", "generate", "truth_path_for"]


def truth_path_for(events: Path) -> Path:
    """city.jsonl -> city.truth.jsonl"""
    name = events.name[: -len(".jsonl")] if events.name.endswith(".jsonl") else events.name
    return events.with_name(name + ".truth.jsonl")


def generate(
    setting_name: str, persons: int, days: int, seed: int, out: Path, overrides: dict | None = None
) -> dict:
    """Writes the city's events to `out` and its truth beside it; returns a summary."""
    if persons < 50 or days < 1:
        raise ValueError("a city needs at least 50 persons and 1 day")
    params = setting(setting_name, overrides)
    start = datetime.fromisoformat(params["start"])
    clock = Clock(start, days)
    # one independent stream per part: changing one part does not reshuffle the others
    streams = np.random.SeedSequence([seed, zlib.crc32(setting_name.encode())]).spawn(9)
    rng = [np.random.default_rng(s) for s in streams]
    ledger = Ledger(clock)
    numbering = Numbering(rng[0])

    pop = population.build(rng[1], persons, params, numbering, ledger, start.year)
    city = City(ledger, clock, pop, numbering, params)
    everyday.social_calls(rng[2], city)
    everyday.platform_sms(rng[2], city)
    everyday.family_money(rng[3], city)
    everyday.salaries_rent_bills(rng[3], city)
    commerce.merchants(rng[4], city)
    commerce.group_buy_leaders(rng[4], city)
    telemarketers = lookalikes.cold_callers(rng[5], city)
    bank_lines = lookalikes.service_lines(rng[5], city)
    lookalikes.elderly_long_calls(ledger, pop)
    lookalikes.big_payments(rng[5], city, bank_lines)
    fraud = Fraud(rng[6], city)
    fraud.run()
    fraud.lines.facts()
    fraud.mules.facts()
    watchlists.build(rng[7], city, fraud, telemarketers)
    everyday.bank_notices(rng[8], city)
    population.registry_records(pop, ledger)  # last: it lists the cards residents sold as mules

    run = {
        "kind": "run",
        "generator": "bench.worlds",
        "setting": setting_name,
        "persons": persons,
        "days": days,
        "seed": seed,
        "start": clock.fmt(0),
    }
    if overrides:
        run["overrides"] = overrides
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts = ledger.write(out, truth_path_for(out), run)
    victims: dict[str, int] = {}
    for ep in fraud.episodes:
        victims[ep.typology] = victims.get(ep.typology, 0) + 1
    return {
        "events": str(out),
        "truth": str(truth_path_for(out)),
        "records": counts,
        "victims": victims,
        "loss_fen": sum(ep.loss_fen for ep in fraud.episodes),
    }
