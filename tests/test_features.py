"""Feature values on hand-built event sequences, through the real core (one definition)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from models.features import CATALOG, POINT_FEATURES
from streams import contract
from streams.core import Core, Scored
from tests.timelines import LINE, VICTIM_ACCOUNT, VICTIM_MSISDN, call, listed, person, transfer

MULE = "6217000099990001"


def observe(records, batch: int = 1) -> tuple[list[Scored], list[dict]]:
    seen: list[Scored] = []
    core = Core(observer=seen.append, batch=batch)
    tasks = []
    for topic, value in records:
        contract.validate(topic, value)
        tasks.extend(core.feed(topic, value))
    tasks.extend(core.finish())
    return seen, [t.to_record() for t in tasks]


def test_every_point_has_every_catalog_feature_of_that_point():
    seen, _ = observe([person(), listed(), call(0, 600), transfer(30, 100_000)])
    assert {s.point for s in seen} == {"contact", "transfer"}
    for s in seen:
        assert tuple(s.features) == POINT_FEATURES[s.point]
        assert all(isinstance(v, float) for v in s.features.values())
    for f in CATALOG.values():
        assert f.meaning and f.unit and f.points


def test_a_fraud_sequence_reads_as_one():
    # A 41-minute call from a listed virtual line, then 48,000 CNY to a new payee 23 minutes later,
    # after five ordinary 200 CNY payments.
    history = [transfer(-3000 + i * 400, 20_000, payee="6222000011112222", status="completed")
               for i in range(5)]
    seen, _ = observe([person(birth_year=1951), listed(), *history, call(0, 41 * 60),
                       transfer(41 + 23, 4_800_000, payee=MULE)])
    contact = next(s for s in seen if s.point == "contact")
    assert contact.features["call_minutes"] == 41.0
    assert contact.features["caller_listed"] == 1.0
    assert contact.features["origin_virtual"] == 1.0
    assert contact.features["person_age"] == 75.0
    assert contact.features["unknown_calls_24h"] == 1.0
    pay = [s for s in seen if s.point == "transfer"][-1]
    f = pay.features
    assert f["payee_new"] == 1.0 and f["payee_own"] == 0.0
    assert f["amount_cny"] == 48_000.0
    assert f["amount_ratio_usual"] == 240.0
    assert f["minutes_since_unknown_call"] == 23.0
    assert f["longest_unknown_call_72h"] == 41.0
    assert f["listed_contact_72h"] == 1.0
    assert f["transfers_24h"] == 1.0  # the earlier ones are days older


def test_a_call_is_known_only_when_it_ends():
    # The transfer starts 10 minutes into a 30-minute call: no carrier could have sent the
    # call's record yet, so the transfer must not see it.
    seen, _ = observe([person(), call(0, 1800), transfer(10, 500_000)])
    pay = next(s for s in seen if s.point == "transfer")
    assert pay.features["unknown_calls_24h"] == 0.0
    assert pay.features["minutes_since_unknown_call"] == 10_080.0


def test_known_lines_are_not_unknown_contacts():
    friend = "+8613800001111"
    seen, _ = observe([person(), call(-60, 30, caller=VICTIM_MSISDN, callee=friend, origin="domestic"),
                       call(0, 900, caller=friend, origin="domestic")])
    assert [s.point for s in seen] == []  # the person called that line before: no contact point


def test_line_fan_out_and_answer_rate_count_strangers():
    strangers = [f"+861390000{i:04d}" for i in range(12)]
    records = [person()] + [call(i, 20, callee=s, answered=i % 3 != 0) for i, s in enumerate(strangers)]
    seen, _ = observe([*records, call(30, 400)])
    f = seen[-1].features
    assert f["line_fanout_24h"] == 13.0  # twelve strangers and our person
    assert round(f["line_answer_rate_24h"], 3) == round(9 / 13, 3)
    assert round(f["line_short_share_24h"], 3) == round(8 / 9, 3)


def test_mule_account_features():
    other_payers = [f"62220202{i:010d}" for i in range(4)]
    inflow = [transfer(i, 1_000_000, payee=MULE, payer=p, status="completed", txn=f"IN{i}")
              for i, p in enumerate(other_payers)]
    drain = transfer(10, 3_900_000, payee="6217000055554444", payer=MULE, status="completed",
                     txn="OUT1")
    seen, _ = observe([person(), *inflow, drain, transfer(60, 800_000, payee=MULE)])
    f = seen[-1].features
    assert f["payee_distinct_payers_24h"] == 4.0
    assert f["payee_drain_share_24h"] == 0.975
    assert f["payee_registered"] == 0.0
    assert round(f["payee_age_days"] * 24 * 60) == 60


def test_own_accounts():
    second = "6222020200112233999"
    reg = person()
    reg[1]["accounts"].append({"bank": "ICBC", "account": second})
    seen, _ = observe([reg, transfer(0, 9_000_000, payee=second, payer=VICTIM_ACCOUNT),
                       transfer(30, 9_000_000, payee=MULE, payer=second)])
    own, then = [s.features for s in seen]
    assert own["payee_own"] == 1.0 and own["payee_new"] == 0.0
    assert then["own_move_24h"] == 1.0


city = [person(), person("P2", 1949, "+8613911112222", "6222020200100000002"), listed(),
        call(0, 600), call(5, 1500, callee="+8613911112222"), call(7, 90, caller="+8616500001111"),
        transfer(20, 4_000_000, payee=MULE), transfer(21, 4_000_000, payee=MULE, status="completed"),
        transfer(40, 2_000_000, payee=MULE, payer="6222020200100000002"),
        call(50, 700, caller="+8616500001111")]


@given(st.integers(1, 20))
@settings(max_examples=20, deadline=None)
def test_batching_changes_nothing(batch: int):
    assert observe(city, batch=batch)[1] == observe(city, batch=1)[1]
    assert [s.features for s in observe(city, batch=batch)[0]] == [s.features for s in observe(city)[0]]


P2_MSISDN, P2_ACCOUNT = "+8613911112222", "6222020200100000002"
dense = [person(), person("P2", 1949, P2_MSISDN, P2_ACCOUNT), listed(), listed(MULE, minute=-5)]
for k in range(10):  # records 0.06 s apart: a worker may receive neighbours in either order
    m = 10 + k * 0.001
    dense.append(call(m - 6, 360, callee=VICTIM_MSISDN if k % 2 else P2_MSISDN,
                      caller=LINE if k % 3 else f"+861650000{k:04d}"))
    dense.append(transfer(m, 100_000 * (k + 1), payee=MULE if k % 2 else "6222000011112222",
                          payer=P2_ACCOUNT if k % 3 else VICTIM_ACCOUNT))


@given(st.randoms(use_true_random=False))
@settings(max_examples=40, deadline=None)
def test_arrival_order_within_the_lateness_changes_nothing(rnd: random.Random):
    from streams.eventtime import to_ms

    def jittered(rec: tuple) -> float:
        return to_ms(rec[1]["event_time"]) + rnd.uniform(0, 150)  # lateness is 200 ms

    shuffled = sorted(dense, key=jittered)
    seen_a, tasks_a = observe(dense)
    seen_b, tasks_b = observe(shuffled)
    assert tasks_b == tasks_a
    assert [(s.event_id, s.features) for s in seen_b] == [(s.event_id, s.features) for s in seen_a]


def test_the_dense_timeline_has_points_and_tasks_to_compare():
    seen, tasks = observe(dense)
    assert len(seen) >= 15 and len(tasks) >= 2


def test_a_line_called_by_the_person_from_another_registered_line_is_still_new_to_them():
    seen, _ = observe([person(), listed(), call(0, 600, caller=LINE)])
    assert seen[0].features["caller_known"] == 0.0
