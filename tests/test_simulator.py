"""The synthetic city: reproducible by seed, contract-valid, and shaped as its parameters say."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest

from streams.contract import validate
from streams.eventtime import parse
from streams.simulator import config, simulate
from streams.simulator.naive import evaluate

PERSONS, DAYS, SEED = 3000, 6, 20260301
# More fraud than the default city, so a small one holds every type several times.
BOOST = {"fraud": {"episodes_per_100k_per_day": 400}}


def read(path: Path) -> list[dict]:
    with open(path, "rb") as f:
        return [orjson.loads(line) for line in f]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("city")
    out, truth = d / "city.jsonl", d / "truth.jsonl"
    result = simulate(PERSONS, DAYS, SEED, out, truth, overrides=BOOST)
    rows = read(truth)
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    return {"out": out, "truth": truth, "records": read(out), "truth_rows": by_kind,
            "result": result, "cfg": config.load(overrides=BOOST)}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{x}.jsonl" for x in "abc")
    ta, tb = tmp_path / "ta.jsonl", tmp_path / "tb.jsonl"
    simulate(600, 2, 7, a, ta)
    simulate(600, 2, 7, b, tb)
    simulate(600, 2, 8, c)
    assert a.read_bytes() == b.read_bytes()
    assert ta.read_bytes() == tb.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_every_record_valid_in_event_time_order(city: dict) -> None:
    recs = city["records"]
    prev = 0
    ids = set()
    for r in recs:
        validate(r["topic"], r["value"])
        v = r["value"]
        assert v["event_time"].endswith("+08:00")
        t = parse(v["event_time"]).ms
        assert t >= prev
        prev = t
        assert v["event_id"] not in ids
        ids.add(v["event_id"])
    topics = [r["topic"] for r in recs]
    assert topics[:PERSONS] == ["registry"] * PERSONS  # registry first, then traffic
    assert set(topics) == {"registry", "watchlist", "calls", "transactions", "case-reports"}


def test_identifiers_look_chinese(city: dict) -> None:
    banks = set(city["cfg"]["population"]["banks"])
    for r in city["records"][:PERSONS]:
        v = r["value"]
        assert all(m.startswith("+861") and len(m) == 14 for m in v["msisdns"])
        for a in v["accounts"]:
            assert a["bank"] in banks and 16 <= len(a["account"]) <= 19
        assert v["district"].startswith("3716")


def test_transfers_move_through_states(city: dict) -> None:
    seen: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in city["records"]:
        if r["topic"] == "transactions":
            v = r["value"]
            assert isinstance(v["amount_fen"], int) and v["amount_fen"] > 0
            seen[v["txn_id"]].append((parse(v["event_time"]).ms, v["status"]))
    ends = Counter()
    for states in seen.values():
        assert states[0][1] == "initiated"
        assert len(states) == 2, states
        ends[states[1][1]] += 1
        assert 2_000 <= states[1][0] - states[0][0] <= 61_000
    assert ends["completed"] > 50 * ends["failed"] > 0


def test_every_fraud_type_with_victims_of_the_right_ages(city: dict) -> None:
    types = city["cfg"]["fraud"]["types"]
    victims = city["truth_rows"]["victim"]
    assert {v["fraud_type"] for v in victims} == set(types)
    for v in victims:
        assert types[v["fraud_type"]]["ages"][v["age_group"]] > 0, v
    games = [v["age"] for v in victims if v["fraud_type"] == "game_item_trade"]
    care = [v["age"] for v in victims if v["fraud_type"] == "elderly_care"]
    assert max(games) <= 22 and statistics.median(care) >= 60
    # Elderly people and students are the most targeted: more victims per head than adults.
    hit = Counter(v["age_group"] for v in victims)
    groups = city["cfg"]["population"]["age_groups"]
    heads = Counter(next(g for g, x in groups.items() if x["ages"][0] <= 2026 - r["value"][
        "birth_year"] <= x["ages"][1]) for r in city["records"][:PERSONS])
    rate = {g: hit[g] / heads[g] for g in heads}
    assert rate["elderly"] > rate["adult"] and rate["student"] > rate["adult"]


def test_rhythms(city: dict) -> None:
    """Fake customer service pays within the hour; pig butchering only after days."""
    txns = defaultdict(list)
    for r in city["truth_rows"]["fraud_txn"]:
        txns[r["episode_id"]].append(parse(r["time"]).ms)
    for v in city["truth_rows"]["victim"]:
        if not txns[v["episode_id"]]:
            continue
        wait_h = (min(txns[v["episode_id"]]) - parse(v["start_time"]).ms) / 3_600_000
        if v["fraud_type"] == "fake_customer_service":
            assert wait_h < 1
        if v["fraud_type"] == "pig_butchering":
            assert wait_h >= 3 * 24


def test_mules_drain_within_minutes(city: dict) -> None:
    fc = city["cfg"]["fraud"]
    delays = [d["delay_s"] for d in city["truth_rows"]["mule_txn"]]
    assert len(delays) > 20
    assert min(delays) >= 30
    assert max(delays) <= fc["drain_delay_max_min"] * 60 + fc["drain_splits"][1] * 20
    assert 60 <= statistics.median(delays) <= 10 * 60
    mules = city["truth_rows"]["mule_account"]
    assert {m["local"] for m in mules} == {True, False}
    # Rented local cards are in their holder's registry record; out-of-town ones are not.
    registered = {a["account"] for r in city["records"][:PERSONS] for a in r["value"]["accounts"]}
    for m in mules:
        assert (m["account"] in registered) == m["local"]
    onward = {d["txn_id"] for d in city["truth_rows"]["mule_txn"]}
    payers = {r["value"]["payer_account"] for r in city["records"]
              if r["topic"] == "transactions" and r["value"]["txn_id"] in onward}
    assert payers <= {m["account"] for m in mules}


def test_watch_lists_know_part_and_learn_late(city: dict) -> None:
    lines = city["truth_rows"]["fraud_number"]
    start = parse(city["records"][0]["value"]["event_time"]).ms
    known = [ln for ln in lines if ln["watchlisted_time"]]
    late = [ln for ln in known if parse(ln["watchlisted_time"]).ms > start]
    assert 0.1 <= len(known) / len(lines) <= 0.9
    assert late
    assert {ln["origin"] for ln in lines} == {"virtual", "international", "voip", "domestic"}
    adds = [r["value"] for r in city["records"] if r["topic"] == "watchlist"]
    listed = {a["value"] for a in adds if a["op"] == "add"}
    assert {ln["msisdn"] for ln in known} <= listed


def test_case_reports_come_hours_after_the_loss(city: dict) -> None:
    txn_time = {r["txn_id"]: parse(r["time"]).ms for r in city["truth_rows"]["fraud_txn"]}
    amount = {r["txn_id"]: r["amount_fen"] for r in city["truth_rows"]["fraud_txn"]}
    reports = [r["value"] for r in city["records"] if r["topic"] == "case-reports"]
    assert len(reports) >= 10
    for rep in reports:
        last = max(txn_time[t] for t in rep["txn_ids"])
        assert parse(rep["event_time"]).ms - last >= 2 * 3_600_000
        assert rep["loss_fen"] == sum(amount[t] for t in rep["txn_ids"])


def test_benign_lookalikes_in_configured_share(city: dict) -> None:
    lc = city["cfg"]["lookalikes"]
    look = Counter(r["type"] for r in city["truth_rows"]["lookalike"])
    assert look["courier_line"] == round(PERSONS * lc["couriers_per_10k"] / 10_000)
    assert look["telemarketer_line"] == round(PERSONS * lc["telemarketers_per_10k"] / 10_000)
    large = sum(look[k] for k in lc["large_payment_kinds"])
    adults = sum(1 for r in city["records"][:PERSONS]
                 if 2026 - r["value"]["birth_year"] >= 23 and r["value"]["accounts"])
    expected = adults * lc["large_payment"] * DAYS
    assert 0.4 * expected <= large <= 2.0 * expected
    txns = sum(1 for r in city["records"] if r["topic"] == "transactions") / 2
    assert 0.0005 <= (large + look["savings_move"]) / txns <= 0.05
    assert city["result"].city.truth.counts["elderly_long_family_calls"] > 0
    assert city["result"].city.truth.counts["bank_line_calls"] > 0


def test_naive_two_rule_detector_does_poorly(city: dict) -> None:
    r = evaluate(city["out"], city["truth"], large_cny=5000, warmup_days=2)
    assert r["watchlisted_call"]["precision"] < 0.3
    assert r["large_new_payee"]["precision"] < 0.5
    assert r["large_new_payee"]["txn_recall"] < 0.6
    assert r["both"]["episode_recall_before_first_transfer"] < 0.9


def test_config_rejects_unknown_parameters(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError):
        config.load(overrides={"fraud": {"episodes_per_day": 3}})
    f = tmp_path / "city.yaml"
    f.write_text("calls:\n  answered: 1.5\n")
    with pytest.raises(config.ConfigError):
        config.load(f)
