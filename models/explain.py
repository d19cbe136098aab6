"""Why the classifier scored a point high, in plain words from the features that drove it.

A desk officer cannot act on "the classifier puts the risk at 0.87". For each feature this
module knows its *quiet* value (what an unremarkable moment looks like: no new payee, the usual
amount, no call from a stranger) and a phrase. The features that drove a score are found by
occlusion: each is set back to its quiet value and the row scored again, all in one vectorised
call; those whose quieting lowers the score most are told, in the catalog's words. The same row
always gives the same words.

>>> import types
>>> class Toy:  # risk grows with the amount ratio and a new payee
...     def features(self, point): return ("amount_ratio_usual", "payee_new", "hour_of_day")
...     def score_matrix(self, point, x):
...         return (x[:, 0] / 20).clip(0, 0.6) + 0.3 * x[:, 1]
>>> explain(Toy(), "transfer", {"amount_ratio_usual": 14.0, "payee_new": 1.0, "hour_of_day": 3})
"14x this person's usual amount; to an account the person never paid before"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from models.features import FEATURES, NONE_MIN


def _flag(text: str) -> Callable[[float], str | None]:
    return lambda v: text if v >= 0.5 else None


def _num(template: str, quiet_below: float | None = None) -> Callable[[float], str | None]:
    return lambda v: None if quiet_below is not None and v < quiet_below else template.format(v=v)


def _minutes_since(v: float) -> str | None:
    if v >= NONE_MIN:
        return None
    return f"{v:,.0f} minutes after a call from an unknown line ended"


# name -> (quiet value, phrase for a value; None when the value says nothing worth telling)
SAYS: dict[str, tuple[float, Callable[[float], str | None]]] = {
    "person_age": (40.0, lambda v: f"a {v:.0f}-year-old" if v >= 60 or v < 20 else None),
    "hour_of_day": (14.0, lambda v: f"at {v:02.0f}:00 at night" if v < 6 or v >= 23 else None),
    "person_history_days": (30.0, lambda v: (f"only {v:.1f} days of this person's history known"
                                             if v < 3 else None)),
    "call_minutes": (2.0, _num("a {v:,.0f}-minute call", quiet_below=5)),
    "caller_known": (1.0, lambda v: None),
    "caller_listed": (0.0, _flag("from a watch-listed number")),
    "caller_listed_confidence": (0.0, lambda v: None),
    "origin_virtual": (0.0, _flag("from a virtual-operator (170/171) number")),
    "origin_international": (0.0, _flag("from an international number")),
    "origin_voip": (0.0, _flag("from an internet (VoIP) line")),
    "line_fanout_24h": (2.0, _num("from a line that called {v:,.0f} different numbers in 24 h",
                                  quiet_below=10)),
    "line_answer_rate_24h": (0.85, lambda v: (f"whose calls were answered only {v:.0%} of the time"
                                              if v < 0.5 else None)),
    "line_short_share_24h": (0.2, lambda v: (f"hung up on within a minute in {v:.0%} of its calls"
                                             if v >= 0.5 else None)),
    "line_registered": (1.0, lambda v: "from a line no resident holds" if v < 0.5 else None),
    "line_elderly_share_24h": (0.2, lambda v: (f"{v:.0%} of whose answered calls reached elderly "
                                               "people" if v >= 0.4 else None)),
    "line_sms_url_24h": (0.0, _num("that sent {v:,.0f} texts with links in 24 h", quiet_below=1)),
    "caller_reported": (0.0, _flag("from a number a victim reported")),
    "unknown_calls_24h": (0.0, _num("{v:,.0f} calls from unknown lines in 24 h", quiet_below=2)),
    "longest_unknown_call_72h": (0.0, _num("after a {v:,.0f}-minute call from an unknown line",
                                           quiet_below=10)),
    "minutes_since_unknown_call": (NONE_MIN, _minutes_since),
    "listed_contact_72h": (0.0, _flag("a watch-listed number called the person in the last 72 h")),
    "amount_cny": (300.0, _num("a {v:,.0f} CNY payment", quiet_below=1000)),
    "amount_ratio_usual": (1.0, lambda v: f"{v:,.0f}x this person's usual amount" if v >= 3 else None),
    "payee_new": (0.0, _flag("to an account the person never paid before")),
    "payee_own": (0.0, lambda v: None),
    "payee_listed": (0.0, _flag("to a watch-listed account")),
    "payee_registered": (1.0, lambda v: "to an account no resident holds" if v < 0.5 else None),
    "payee_holder_known": (1.0, lambda v: None),
    "payee_first_paid_days": (90.0, lambda v: (f"to a payee first paid {v:.1f} days ago"
                                               if 0 < v < 3 else None)),
    "payee_reported": (0.0, _flag("to an account a victim reported")),
    "payee_distinct_payers_24h": (0.0, _num("to an account {v:,.0f} others paid in 24 h",
                                            quiet_below=2)),
    "payee_drain_share_24h": (0.0, lambda v: (f"to an account that passed on {v:.0%} of its money "
                                              "within 30 minutes" if v >= 0.3 else None)),
    "payee_onward_share_24h": (0.0, lambda v: (f"to an account that paid on {v:.0%} of what it "
                                               "received in 24 h" if v >= 0.5 else None)),
    "payee_held_7d": (0.0, _num("to an account banks held {v:,.0f} transfers to this week",
                                quiet_below=1)),
    "payee_age_days": (90.0, lambda v: f"to an account first seen {v:.1f} days ago" if v < 3 else None),
    "transfers_24h": (1.0, _num("the {v:,.0f}th transfer in 24 h", quiet_below=3)),
    "amount_24h_cny": (300.0, _num("{v:,.0f} CNY sent in 24 h", quiet_below=5000)),
    "own_move_24h": (0.0, _flag("after moving savings between the person's own accounts")),
}
assert set(SAYS) == {f.name for f in FEATURES}, "every feature needs its quiet value and phrase"


def explain(scorer: Any, point: str, row: dict[str, float], k: int = 3,
            min_drop: float = 0.01) -> str:
    """The phrases of the (at most) ``k`` features whose quiet value lowers the score most."""
    names = scorer.features(point)
    x = np.array([[float(row.get(n, np.nan)) for n in names]])
    quiet = np.repeat(x, len(names), axis=0)
    for i, n in enumerate(names):
        quiet[i, i] = SAYS[n][0]
    scores = scorer.score_matrix(point, np.vstack([x, quiet]))
    drops = scores[0] - scores[1:]
    # The phrases of the features that are not quiet, those whose quieting lowers the score
    # most first; when no single one does (features that vouch for each other), the first few.
    said: list[tuple[bool, str]] = []
    for i in np.argsort(-drops, kind="stable"):
        phrase = SAYS[names[i]][1](float(x[0, i]))
        if phrase:
            said.append((bool(drops[i] >= min_drop), phrase))
    driving = [p for strong, p in said if strong]
    return "; ".join((driving or [p for _, p in said])[:k])
