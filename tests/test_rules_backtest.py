"""Backtest metrics on hand-built scoring points and case reports."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rules.backtest import CaseReport, Point, compare, measure
from rules.engine import Hit

H = 3_600_000


def hit(rule: str = "R-A", mode: str = "enforce") -> Hit:
    return Hit(rule, rule.removeprefix("R-"), "reason", 0.8, "call", mode)


def test_flags_count_persons_once_at_their_first_enforce_hit():
    pts = [
        Point("P1", 1 * H, (hit(), hit("R-B"))),
        Point("P1", 5 * H, (hit(),)),
        Point("P2", 2 * H, (hit("R-S", "shadow"),)),  # shadow: counted, flags nobody
        Point("P3", 3 * H, ()),
        Point("P4", 9 * H, (hit("R-B"),)),
    ]
    reports = [CaseReport("P1", 4 * H, "fake_loan"), CaseReport("P2", 4 * H, "rebate_tasks"),
               CaseReport("P4", 8 * H, "fake_loan"), CaseReport("P5", 8 * H, "fake_loan")]
    m = measure(pts, reports, label="x", rule_order=[("R-A", "enforce"), ("R-B", "enforce"),
                                                     ("R-S", "shadow"), ("R-Z", "enforce")])
    assert m.flagged == 2  # P1 and P4
    assert m.true_positives == 1  # P1 reported after the flag; P4 flagged after the report
    assert m.victims == 4 and m.recall == 0.25 and m.precision == 0.5
    assert m.shadow_flagged == 1
    rules = {r.rule_id: (r.hits, r.persons, r.confirmed) for r in m.rules}
    assert rules == {"R-A": (2, 1, 1), "R-B": (2, 2, 1), "R-S": (1, 1, 1), "R-Z": (0, 0, 0)}
    assert [r.rule_id for r in m.rules] == ["R-A", "R-B", "R-S", "R-Z"]
    assert m.by_type == {"fake_loan": (3, 1), "rebate_tasks": (1, 0)}
    js = m.to_json()
    assert js["precision"] == 0.5 and js["rules"][3]["precision"] is None


def test_the_warm_up_flags_nobody_and_its_reports_are_no_victims():
    pts = [Point("P1", 1 * H, (hit(),)), Point("P2", 30 * H, (hit(),))]
    reports = [CaseReport("P1", 2 * H), CaseReport("P2", 40 * H)]
    m = measure(pts, reports, label="x", since_ms=24 * H)
    assert (m.flagged, m.true_positives, m.victims) == (1, 1, 1)


def test_a_later_report_counts_even_after_an_earlier_one():
    pts = [Point("P1", 10 * H, (hit(),))]
    reports = [CaseReport("P1", 5 * H), CaseReport("P1", 20 * H)]
    m = measure(pts, reports, label="x")
    assert (m.flagged, m.true_positives, m.victims, m.recall) == (1, 1, 1, 1.0)


def test_nothing_flagged_and_no_reports():
    m = measure([], [], label="x")
    assert m.precision is None and m.recall is None and m.flagged == 0


def test_the_difference_between_two_rule_sets():
    reports = [CaseReport("P1", 10 * H), CaseReport("P2", 10 * H)]
    base = measure([Point("P1", 1 * H, (hit(),)), Point("P3", 1 * H, (hit("R-OLD"),))], reports,
                   label="base", rule_order=[("R-A", "enforce"), ("R-OLD", "enforce")])
    new = measure([Point("P1", 1 * H, (hit(),)), Point("P2", 1 * H, (hit("R-NEW"),)),
                   Point("P2", 2 * H, (hit(),))], reports, label="new")
    d = compare(new, base)
    assert (d.newly_flagged, d.no_longer_flagged, d.newly_caught, d.no_longer_caught) == (1, 1, 1, 0)
    assert d.rules_added == ["R-NEW"] and d.rules_removed == ["R-OLD"]
    assert d.hits_delta == {"R-A": 1}
    assert d.precision_delta == 0.5 and d.recall_delta == 0.5
    assert d.to_json()["recall_delta"] == 0.5 and d.modes_changed == {}
    shadowed = measure([Point("P1", 1 * H, (hit(mode="shadow"),))], reports, label="s")
    assert compare(shadowed, base).modes_changed == {"R-A": "enforce"}


events = st.lists(st.tuples(st.sampled_from(["P1", "P2", "P3", "P4"]), st.integers(0, 100),
                            st.sampled_from(["enforce", "shadow", None])), max_size=30)
reports_st = st.lists(st.tuples(st.sampled_from(["P1", "P2", "P3", "P5"]), st.integers(0, 100)),
                      max_size=8)


@given(events, reports_st, st.integers(0, 60))
def test_the_metrics_agree_with_their_definitions(evs, reps, since):
    pts = [Point(p, t, (hit(mode=m),) if m else ()) for p, t, m in evs]
    reports = [CaseReport(p, t) for p, t in reps]
    m = measure(pts, reports, label="x", since_ms=since)
    first = {}
    for p, t, mode in evs:
        if mode == "enforce" and t >= since:
            first[p] = min(t, first.get(p, t))
    victims = {p for p, t in reps if t >= since}
    caught = {p for p, t in first.items() if any(q == p and rt > t for q, rt in reps)}
    assert m.flagged == len(first)
    assert m.true_positives == len(caught)
    assert m.victims == len(victims)
    assert caught <= victims  # every true positive is a victim flagged before a report
    assert 0 <= (m.precision or 0) <= 1 and 0 <= (m.recall or 0) <= 1
