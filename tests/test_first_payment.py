"""The first payment of an episode, on hand-built timelines: a large first payment to a
resident's account that appeared days ago (a rented card before it has drained anything) is held
at the transfer point on its own, with no call record seen; honest look-alikes are not."""

from __future__ import annotations

from rules.engine import RuleSet, default_ruleset_path
from tests.timelines import Run, call, history, person, transfer

CODE = "LARGE_FIRST_PAYMENT_TO_NEW_RESIDENT_ACCOUNT"
RENTED = "6222020200444455556"  # a resident's card, rented out
HOLDER_LINE = "+8613944445555"


def city(**who) -> Run:
    """P1 with a week of history (usual payment ~550 CNY); P2, a resident who holds RENTED."""
    run = Run(ruleset=RuleSet.load(default_ruleset_path()))
    run.feed(*history(), person("P2", msisdn=HOLDER_LINE, account=RENTED, **who))
    return run


def holds(run: Run) -> list[tuple[str, str]]:
    return [(t["txn_id"], t["reasons"][0]["code"]) for t in run.tasks if t["action"] == "hold"]


def test_a_large_first_payment_to_a_resident_s_new_account_is_held_without_any_call():
    run = city()
    run.feed(transfer(0, 3_000_000, payee=RENTED, txn="T1"))  # 30,000 CNY, ~55x the usual
    assert holds(run) == [("T1", CODE)]
    [task] = [t for t in run.tasks if t["action"] == "hold"]
    assert "30,000" in task["reasons"][0]["detail"]  # in the desks' language, with the amount


def test_the_same_payment_to_an_account_in_use_for_days_is_not_held():
    run = city()
    # The holder's account has paid and been paid for five days: not a card rented this week.
    run.feed(transfer(-5 * 1440, 20_000, payee="6217000010000000001", payer=RENTED, txn="old",
                      status="completed"))
    run.feed(transfer(0, 3_000_000, payee=RENTED, txn="T1"))
    assert holds(run) == []


def test_a_payment_to_someone_the_person_calls_or_a_usual_sized_one_is_not_held():
    run = city()
    run.feed(call(-120, 300, caller="+8613912345678", callee=HOLDER_LINE))  # they talk
    run.feed(transfer(0, 3_000_000, payee=RENTED, txn="T1"))
    other = city()
    other.feed(transfer(0, 1_000_000, payee=RENTED, txn="T2"))  # 10,000 CNY: under the bar
    assert holds(run) == [] and holds(other) == []


def test_a_person_with_no_history_yet_is_not_held_every_payee_is_new_to_them():
    run = Run(ruleset=RuleSet.load(default_ruleset_path()))
    run.feed(person(minute=-30), person("P2", msisdn=HOLDER_LINE, account=RENTED))
    run.feed(transfer(0, 3_000_000, payee=RENTED, txn="T1"))
    assert holds(run) == []


def test_a_young_account_others_paid_today_is_seen_by_a_shadow_rule_that_holds_nothing():
    rows = []
    run = Run(ruleset=RuleSet.load(default_ruleset_path()),
              observer=lambda s: rows.append(s) if s.point == "transfer" else None)
    card = "6217000077770001"  # no resident holds it
    run.feed(*history())
    # Another payer used the card six hours ago: the card is that old.
    run.feed(transfer(-360, 800_000, payee=card, payer="6222999900002222", txn="other",
                      status="completed"))
    run.feed(transfer(0, 1_200_000, payee=card, txn="T1"))  # 12,000 CNY, ~22x the usual
    [mine] = [r for r in rows if r.txn_id == "T1"]
    assert ("R-YOUNG-ACCOUNT-OTHERS-PAY", "shadow") in [(h.rule_id, h.mode) for h in mine.hits]
    assert holds(run) == []  # shadow: counted, never a task (it costs our cities wrong holds)
