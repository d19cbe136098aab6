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
>>> row = {"amount_ratio_usual": 14.0, "payee_new": 1.0, "hour_of_day": 3}
>>> explain(Toy(), "transfer", row)
"14x this person's usual amount; to an account the person never paid before"
>>> explain(Toy(), "transfer", row, Words("zh_CN"))
'金额为本人平时的14倍；收款账户本人从未转过账'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from models.features import FEATURES, NONE_MIN
from streams.words import Words, mark


def _never(v: float) -> bool:
    return False


def _set(v: float) -> bool:
    return v >= 0.5


def _at_least(x: float) -> Callable[[float], bool]:
    return lambda v: v >= x


def _below(x: float) -> Callable[[float], bool]:
    return lambda v: v < x


# name -> (quiet value, whether a value is worth telling, its phrase: a message id of the
# reasons' catalog, ``streams/locale``, with the value as {v})
SAYS: dict[str, tuple[float, Callable[[float], bool], str]] = {
    "person_age": (40.0, lambda v: v >= 60 or v < 20, mark("a {v:.0f}-year-old")),
    "hour_of_day": (14.0, lambda v: v < 6 or v >= 23, mark("at {v:02.0f}:00 at night")),
    "person_history_days": (30.0, _below(3), mark("only {v:.1f} days of this person's history known")),
    "call_minutes": (2.0, _at_least(5), mark("a {v:,.0f}-minute call")),
    "caller_known": (1.0, _never, ""),
    "caller_listed": (0.0, _set, mark("from a watch-listed number")),
    "caller_listed_confidence": (0.0, _never, ""),
    "origin_virtual": (0.0, _set, mark("from a virtual-operator (170/171) number")),
    "origin_international": (0.0, _set, mark("from an international number")),
    "origin_voip": (0.0, _set, mark("from an internet (VoIP) line")),
    "line_fanout_24h": (2.0, _at_least(10), mark("from a line that called {v:,.0f} different numbers "
                                                 "in 24 h")),
    "line_answer_rate_24h": (0.85, _below(0.5), mark("whose calls were answered only {v:.0%} of the "
                                                      "time")),
    "line_short_share_24h": (0.2, _at_least(0.5), mark("hung up on within a minute in {v:.0%} of its "
                                                       "calls")),
    "line_registered": (1.0, _below(0.5), mark("from a line no resident holds")),
    "line_elderly_share_24h": (0.2, _at_least(0.4), mark("{v:.0%} of whose answered calls reached "
                                                         "elderly people")),
    "line_sms_url_24h": (0.0, _at_least(1), mark("that sent {v:,.0f} texts with links in 24 h")),
    "caller_reported": (0.0, _set, mark("from a number a victim reported")),
    "unknown_calls_24h": (0.0, _at_least(2), mark("{v:,.0f} calls from unknown lines in 24 h")),
    "longest_unknown_call_72h": (0.0, _at_least(10), mark("after a {v:,.0f}-minute call from an "
                                                          "unknown line")),
    "minutes_since_unknown_call": (NONE_MIN, _below(NONE_MIN), mark(
        "{v:,.0f} minutes after a call from an unknown line ended")),
    "listed_contact_72h": (0.0, _set, mark("a watch-listed number called the person in the last "
                                           "72 h")),
    "amount_cny": (300.0, _at_least(1000), mark("a {v:,.0f} CNY payment")),
    "amount_ratio_usual": (1.0, _at_least(3), mark("{v:,.0f}x this person's usual amount")),
    "payee_new": (0.0, _set, mark("to an account the person never paid before")),
    "payee_own": (0.0, _never, ""),
    "payee_listed": (0.0, _set, mark("to a watch-listed account")),
    "payee_registered": (1.0, _below(0.5), mark("to an account no resident holds")),
    "payee_holder_known": (1.0, _never, ""),
    "payee_first_paid_days": (90.0, lambda v: 0 < v < 3, mark("to a payee first paid {v:.1f} days "
                                                              "ago")),
    "payee_reported": (0.0, _set, mark("to an account a victim reported")),
    "payee_distinct_payers_24h": (0.0, _at_least(2), mark("to an account {v:,.0f} others paid in "
                                                          "24 h")),
    "payee_drain_share_24h": (0.0, _at_least(0.3), mark("to an account that passed on {v:.0%} of its "
                                                        "money within 30 minutes")),
    "payee_onward_share_24h": (0.0, _at_least(0.5), mark("to an account that paid on {v:.0%} of what "
                                                         "it received in 24 h")),
    "payee_held_7d": (0.0, _at_least(1), mark("to an account banks held {v:,.0f} transfers to this "
                                              "week")),
    "payee_age_days": (90.0, _below(3), mark("to an account first seen {v:.1f} days ago")),
    "transfers_24h": (1.0, _at_least(3), mark("the {v:,.0f}th transfer in 24 h")),
    "amount_24h_cny": (300.0, _at_least(5000), mark("{v:,.0f} CNY sent in 24 h")),
    "own_move_24h": (0.0, _set, mark("after moving savings between the person's own accounts")),
}
assert set(SAYS) == {f.name for f in FEATURES}, "every feature needs its quiet value and phrase"


def explain(scorer: Any, point: str, row: dict[str, float], words: Words | None = None,
            k: int = 3, min_drop: float = 0.01) -> str:
    """The phrases of the (at most) ``k`` features whose quiet value lowers the score most."""
    words = words or Words("en")
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
        _, worth, phrase = SAYS[names[i]]
        v = float(x[0, i])
        if phrase and worth(v):
            said.append((bool(drops[i] >= min_drop), words.text(phrase).format(v=v)))
    driving = [p for strong, p in said if strong]
    return words.join((driving or [p for _, p in said])[:k])
