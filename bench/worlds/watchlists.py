"""Watch lists: the national centre, the carriers and the banks know part of the fraud lines and
mule accounts before they are used; others are learnt from their behaviour some hours later, or
from a case report that names them. Some benign telemarketing lines are listed on complaints,
at low confidence, and half of them removed again.
"""

from __future__ import annotations

import numpy as np

from .city import City
from .clock import DAY, HOUR, MINUTE, lognormal_ms
from .fraud import Fraud

FIRST_RECORD = -2 * DAY + MINUTE  # nothing is listed before the registry is loaded


def _listing(
    rng: np.random.Generator,
    params: dict,
    first_use: int,
    reported: int | None,
    prior_share: float,
    learn_share: float,
) -> tuple[int, str] | None:
    """When an item gets listed, and by whom; None: not within the city's time."""
    if rng.random() < prior_share:
        return max(FIRST_RECORD, first_use - lognormal_ms(rng, 24 * 60, 1.0)), "national_center"
    best = None
    if rng.random() < learn_share:
        best = (first_use + lognormal_ms(rng, params["watch_learn_hours"] * 60, 0.8), "carrier_or_bank")
    if reported is not None:
        t = reported + lognormal_ms(rng, params["watch_report_hours"] * 60, 0.7)
        if best is None or t < best[0]:
            best = (t, "local_center")
    return best


def build(rng: np.random.Generator, city: City, fraud: Fraud, benign_lines: list[int]) -> None:
    ledger, clock, params = city.ledger, city.clock, city.params
    reported_line: dict[int, int] = {}
    reported_account: dict[int, int] = {}
    for t, lines, accounts in fraud.reports:
        for x in lines:
            reported_line[x] = min(t, reported_line.get(x, t))
        for a in accounts:
            reported_account[a] = min(t, reported_account.get(a, t))

    def add(t: int, kind: str, value: str, category: str, source: str) -> None:
        if t >= clock.end:
            return
        conf = {"national_center": (0.85, 0.99), "local_center": (0.9, 1.0), "carrier_or_bank": (0.6, 0.9)}[
            source
        ]
        if source == "carrier_or_bank":
            source = "bank" if kind == "account" else "carrier"
        ledger.record(
            "watchlist",
            t,
            {
                "op": "add",
                "kind": kind,
                "value": value,
                "category": category,
                "source": source,
                "confidence": round(float(rng.uniform(*conf)), 2),
            },
        )

    for fl in fraud.lines.lines:
        got = _listing(
            rng,
            params,
            fl.since,
            reported_line.get(fl.line),
            params["watch_prior_lines"],
            params["watch_learn_share"],
        )
        if got:
            add(got[0], "msisdn", ledger.line_number[fl.line], "fraud_number", got[1])
            if fl.blaster and rng.random() < 0.5:  # the link's domain too
                add(
                    got[0] + MINUTE,
                    "domain",
                    f"{ledger.line_number[fl.line][-6:]}-refund.top",
                    "fraud_domain",
                    got[1],
                )
    for m in fraud.mules.mules:
        first = fraud.mules.first_use(m)
        if first is None:
            continue
        prior = params["watch_prior_mules"] * (1.0 if m.level == 1 else 0.3)
        learn = params["watch_learn_share"] * (1.0 if m.level == 1 else 0.5)
        got = _listing(rng, params, first, reported_account.get(m.account), prior, learn)
        if got:
            add(got[0], "account", ledger.account_number[m.account], "mule_account", got[1])
    for line in benign_lines:
        if rng.random() < params["watch_benign_lines"]:
            t = int(rng.integers(FIRST_RECORD, clock.end))
            ledger.record(
                "watchlist",
                t,
                {
                    "op": "add",
                    "kind": "msisdn",
                    "value": ledger.line_number[line],
                    "category": "fraud_number",
                    "source": "carrier_complaints",
                    "confidence": round(float(rng.uniform(0.35, 0.6)), 2),
                },
            )
            if rng.random() < 0.5:
                t2 = t + int(rng.integers(12 * HOUR, 3 * DAY))
                if t2 < clock.end:
                    ledger.record(
                        "watchlist",
                        t2,
                        {
                            "op": "remove",
                            "kind": "msisdn",
                            "value": ledger.line_number[line],
                            "category": "fraud_number",
                            "source": "carrier_complaints",
                            "confidence": 0.0,
                        },
                    )
