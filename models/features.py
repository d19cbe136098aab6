"""The one feature definition: every feature the rules and the classifier see.

Each feature has a name, a one-line meaning and a unit, and belongs to a scoring point:

* ``contact``: an answered voice call to a registered person has ended (contact risk, before any
  transfer);
* ``transfer``: a registered person's transfer is initiated (or completes with no initiated
  state seen): transaction risk, while a hold can still stop it.

The values are computed once, by the streaming state in ``streams/state.py``, in the workers and
in replay alike; training reads them by replaying events through the same code (``Core`` with an
observer), so training and scoring can never drift apart. Numbers only (flags are 0/1), so a rule
and a model read the same vector.

There is no "call in progress" feature: the contract stamps a call with its start, but a carrier
can only send the record when the call ends, so a transfer made during a call cannot see it live;
replay holds each call back until its end for the same reason. "Just ended" is
``minutes_since_unknown_call``.
"""

from __future__ import annotations

from dataclasses import dataclass

POINTS = ("contact", "transfer")
NONE_MIN = 10_080.0  # "minutes since" when there was no such event: one week


@dataclass(frozen=True)
class Feature:
    name: str
    meaning: str
    unit: str
    points: tuple[str, ...]


def _f(name: str, meaning: str, unit: str, *points: str) -> Feature:
    return Feature(name, meaning, unit, points or POINTS)


FEATURES: tuple[Feature, ...] = (
    # the person
    _f("person_age", "age of the person in years at the event", "years"),
    _f("hour_of_day", "local hour of the event (0-23)", "hour"),
    _f("person_history_days", "days of the person's history the stage holds (since their first "
       "event it remembers): with none, every payee is new and every amount usual", "days"),
    # the call at a contact point, and the calling line
    _f("call_minutes", "duration of this answered call", "minutes", "contact"),
    _f("caller_known", "the person has called this line before, or it is a registered "
       "resident's line", "flag", "contact"),
    _f("caller_listed", "the calling line is on the watch list when the call ends", "flag", "contact"),
    _f("caller_listed_confidence", "confidence of that watch-list entry (0 if none)", "probability",
       "contact"),
    _f("origin_virtual", "the calling line is a virtual-operator number (170/171)", "flag", "contact"),
    _f("origin_international", "the calling line is international", "flag", "contact"),
    _f("origin_voip", "the calling line is VoIP", "flag", "contact"),
    _f("line_fanout_24h", "distinct numbers this line called in the last 24 h", "count", "contact"),
    _f("line_answer_rate_24h", "share of this line's calls in the last 24 h that were answered",
       "ratio", "contact"),
    _f("line_short_share_24h", "share of this line's answered calls in the last 24 h shorter than "
       "1 minute", "ratio", "contact"),
    _f("line_registered", "the calling line belongs to a registered resident", "flag", "contact"),
    _f("line_elderly_share_24h", "share of this line's answered calls in the last 24 h that "
       "reached a resident aged 60 or more", "ratio", "contact"),
    _f("line_sms_url_24h", "texts with a link this line sent in the last 24 h", "count", "contact"),
    _f("caller_reported", "a victim's case report named the calling line before the call ended",
       "flag", "contact"),
    # the person's recent contacts from unknown lines (both points)
    _f("unknown_calls_24h", "answered calls from unknown lines to the person in the last 24 h",
       "count"),
    _f("longest_unknown_call_72h", "longest answered call from an unknown line in the last 72 h",
       "minutes"),
    _f("minutes_since_unknown_call", "minutes since the last answered call from an unknown line "
       "ended (one week if none)", "minutes"),
    _f("listed_contact_72h", "an answered call from a watch-listed line in the last 72 h", "flag"),
    # the transfer
    _f("amount_cny", "amount of this transfer", "CNY", "transfer"),
    _f("amount_ratio_usual", "amount divided by the person's usual (median) transfer; 1 with no "
       "history", "ratio", "transfer"),
    _f("payee_new", "the person never paid this account before", "flag", "transfer"),
    _f("payee_own", "the payee account is the person's own", "flag", "transfer"),
    _f("payee_listed", "the payee account is on the watch list", "flag", "transfer"),
    _f("payee_registered", "a registered resident holds the payee account", "flag", "transfer"),
    _f("payee_holder_known", "the resident who holds the payee account is someone the person "
       "calls (they called one of the holder's lines in the last 90 days)", "flag", "transfer"),
    _f("payee_first_paid_days", "days since the person first paid this payee (0 if never)",
       "days", "transfer"),
    _f("payee_reported", "a victim's case report named the payee account before this transfer",
       "flag", "transfer"),
    _f("payee_distinct_payers_24h", "distinct accounts that paid the payee in the last 24 h",
       "count", "transfer"),
    _f("payee_drain_share_24h", "share of the money into the payee in the last 24 h that left it "
       "again within 30 minutes", "ratio", "transfer"),
    _f("payee_onward_share_24h", "share of the money into the payee in the last 24 h that it "
       "has paid on since", "ratio", "transfer"),
    _f("payee_held_7d", "transfers to the payee that a bank held or reversed in the last 7 days",
       "count", "transfer"),
    _f("payee_age_days", "days since the payee account was first seen", "days", "transfer"),
    _f("transfers_24h", "transfers the person initiated in the last 24 h, this one included",
       "count", "transfer"),
    _f("amount_24h_cny", "amount the person transferred in the last 24 h, this one included",
       "CNY", "transfer"),
    _f("own_move_24h", "the person moved money between own accounts in the last 24 h", "flag",
       "transfer"),
)

CATALOG: dict[str, Feature] = {f.name: f for f in FEATURES}
POINT_FEATURES: dict[str, tuple[str, ...]] = {
    p: tuple(f.name for f in FEATURES if p in f.points) for p in POINTS
}
CALL_FEATURES = frozenset(  # the ablation "without call signals" drops these
    f.name for f in FEATURES
    if f.name.startswith(("call_", "caller_", "origin_", "line_", "unknown_", "longest_unknown",
                          "minutes_since_unknown", "listed_contact"))
)


def vector(point: str, features: dict[str, float]) -> list[float]:
    """The features of ``point`` in catalog order (the classifier's input)."""
    return [float(features[name]) for name in POINT_FEATURES[point]]
