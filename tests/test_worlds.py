"""bench.worlds, the independent city generator: its records keep the contract and its order, its
truth agrees with its events, it is deterministic, and each named setting changes what it says."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import jsonschema_rs
import pytest

from bench.worlds import SETTINGS, generate, truth_path_for
from bench.worlds.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT.parent / "shared" / "contract" / "schemas"
TOPICS = ("registry", "watchlist", "calls", "transactions", "case-reports")
# small cities with many victims, so a few seconds hold enough episodes to compare settings
SMALL = {"persons": 1000, "days": 5, "seed": 7}
DENSE = {"victims_per_10k_day": 120.0}
CALL_LED = ("impersonation_police", "fake_customer_service")


class City:
    def __init__(self, events: Path):
        self.events = [json.loads(x) for x in events.read_text().splitlines()]
        self.truth = [json.loads(x) for x in truth_path_for(events).read_text().splitlines()]
        self.by_topic: dict[str, list[dict]] = defaultdict(list)
        for r in self.events:
            self.by_topic[r["topic"]].append(r["value"])
        self.rows: dict[str, list[dict]] = defaultdict(list)
        for r in self.truth:
            self.rows[r["kind"]].append(r)
        self.person_of_line = {m: r["person_id"] for r in self.by_topic["registry"] for m in r["msisdns"]}
        self.person_of_account = {
            a["account"]: r["person_id"] for r in self.by_topic["registry"] for a in r["accounts"]
        }
        self.phones: dict[str, list[str]] = {r["person_id"]: r["msisdns"] for r in self.by_topic["registry"]}
        self.fraud_lines = {r["msisdn"] for r in self.rows["fraud_number"]}

    def lookalikes(self, kind: str) -> list[dict]:
        return [r for r in self.rows["lookalike"] if r["type"] == kind]

    def fraud_contacts(self, person_id: str) -> list[dict]:
        phones = set(self.phones[person_id])
        return [
            c for c in self.by_topic["calls"] if c["callee"] in phones and c["caller"] in self.fraud_lines
        ]

    def episode_contacts(self, victim: dict) -> list[dict]:
        """The fraudsters' records in a victim's episode: what opened it (at its start time), and
        answered calls of 5 minutes or more until the last transfer (cold calls to anyone are
        shorter)."""
        last = max(ts(f["time"]) for f in self.rows["fraud_txn"] if f["episode_id"] == victim["episode_id"])
        return [
            c
            for c in self.fraud_contacts(victim["person_id"])
            if c["event_time"] == victim["start_time"]
            or (c["duration_s"] >= 300 and ts(victim["start_time"]) <= ts(c["event_time"]) <= last)
        ]


def ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, City]:
    out = {}
    for name in SETTINGS:
        path = tmp_path_factory.mktemp("worlds") / f"{name}.jsonl"
        generate(name, SMALL["persons"], SMALL["days"], SMALL["seed"], path, overrides=DENSE)
        out[name] = City(path)
    return out


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_record_keeps_the_contract_and_the_order(cities: dict[str, City], name: str):
    city = cities[name]
    validators = {
        t: jsonschema_rs.validator_for(
            json.loads((SCHEMAS / f"{t}.schema.json").read_text()), validate_formats=True
        )
        for t in TOPICS
    }
    for r in city.events:
        assert set(r) == {"topic", "value"}
        errors = [e.message for e in validators[r["topic"]].iter_errors(r["value"])]
        assert not errors, (r, errors)
    times = [ts(r["value"]["event_time"]) for r in city.events]
    assert times == sorted(times)
    topics = [r["topic"] for r in city.events]
    n_reg = topics.count("registry")
    assert n_reg == SMALL["persons"] and set(topics[:n_reg]) == {"registry"}
    assert all(topics.count(t) > 0 for t in TOPICS)
    ids = [r["value"]["event_id"] for r in city.events]
    assert len(ids) == len(set(ids))


def test_each_transfer_is_initiated_then_completed_or_failed(cities: dict[str, City]):
    states: dict[str, list[dict]] = defaultdict(list)
    for v in cities["baseline"].by_topic["transactions"]:
        states[v["txn_id"]].append(v)
    for txn_id, seq in states.items():
        assert seq[0]["status"] == "initiated", txn_id
        assert len(seq) == 2 and seq[1]["status"] in ("completed", "failed"), seq
        assert ts(seq[1]["event_time"]) > ts(seq[0]["event_time"])
        same = ("payer_account", "payee_account", "amount_fen", "bank", "payee_bank", "channel")
        assert all(seq[0][k] == seq[1][k] for k in same)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_truth_agrees_with_the_events(cities: dict[str, City], name: str):
    city = cities[name]
    run = city.truth[0]
    assert run == {
        "kind": "run",
        "generator": "bench.worlds",
        "setting": name,
        "persons": SMALL["persons"],
        "days": SMALL["days"],
        "seed": SMALL["seed"],
        "start": run["start"],
        "overrides": DENSE,
    }
    txns: dict[str, dict[str, dict]] = defaultdict(dict)
    for v in city.by_topic["transactions"]:
        txns[v["txn_id"]][v["status"]] = v
    victims = {r["episode_id"]: r for r in city.rows["victim"]}
    assert len(victims) >= 20
    assert all(r["person_id"] in city.phones for r in victims.values())
    assert len({r["person_id"] for r in victims.values()}) == len(victims)
    by_episode: dict[str, list[dict]] = defaultdict(list)
    for f in city.rows["fraud_txn"]:
        by_episode[f["episode_id"]].append(f)
        ep = victims[f["episode_id"]]
        assert (f["person_id"], f["fraud_type"]) == (ep["person_id"], ep["fraud_type"])
        init = txns[f["txn_id"]]["initiated"]
        assert init["event_time"] == f["time"] and ts(f["time"]) >= ts(ep["start_time"])
        assert init["payee_account"] == f["payee_account"] and init["amount_fen"] == f["amount_fen"]
        assert city.person_of_account[init["payer_account"]] == f["person_id"]
        assert f["status"] in txns[f["txn_id"]]
    for ep_id, rows in by_episode.items():
        assert [r["index"] for r in rows] == list(range(1, len(rows) + 1)), ep_id
    assert set(by_episode) == set(victims)  # every victim attempted at least one transfer
    completed = {f["txn_id"]: f for f in city.rows["fraud_txn"] if f["status"] == "completed"}
    reports = city.by_topic["case-reports"]
    assert len(reports) >= 0.3 * len(victims)  # reports of late or slow frauds fall after the last day
    for rep in reports:
        mine = [completed[t] for t in rep["txn_ids"]]
        assert all(m["person_id"] == rep["person_id"] for m in mine)
        assert rep["loss_fen"] == sum(m["amount_fen"] for m in mine)
        assert set(rep["fraud_accounts"]) >= {m["payee_account"] for m in mine}
        assert all(ts(rep["event_time"]) > ts(m["time"]) for m in mine)
    payees = {v["payee_account"] for v in city.by_topic["transactions"]}
    assert all(m["account"] in payees for m in city.rows["mule_account"])


def test_a_city_of_residents_with_fraud_lines_and_mules_among_them(cities: dict[str, City]):
    city = cities["baseline"]
    voice = [c for c in city.by_topic["calls"] if c["kind"] == "voice"]
    between = sum(c["caller"] in city.person_of_line and c["callee"] in city.person_of_line for c in voice)
    assert between / len(voice) > 0.6
    # returned missed calls: someone called back within an hour after an unanswered call
    missed = {
        (c["caller"], c["callee"]) for c in voice if not c["answered"] and c["caller"] in city.person_of_line
    }
    assert sum((c["callee"], c["caller"]) in missed for c in voice) > 0.2 * len(missed)
    # fraud lines cold-call many strangers, mostly briefly, and are rarely called back
    fan_out: dict[str, set[str]] = defaultdict(set)
    for c in voice:
        if c["caller"] in city.fraud_lines:
            fan_out[c["caller"]].add(c["callee"])
    assert sorted(len(s) for s in fan_out.values())[len(fan_out) // 2] >= 20
    calls_back = sum(c["callee"] in city.fraud_lines for c in voice)
    assert calls_back < 0.1 * sum(c["caller"] in city.fraud_lines for c in voice)
    # first-level mules pass most of what they get on within 30 minutes
    level1 = {m["account"] for m in city.rows["mule_account"] if m["level"] == 1}
    done = [v for v in city.by_topic["transactions"] if v["status"] == "completed"]
    got = {a: [ts(v["event_time"]) for v in done if v["payee_account"] == a] for a in level1}
    out = {a: [ts(v["event_time"]) for v in done if v["payer_account"] == a] for a in level1}
    quick = sum(any(0 <= o - g <= 1800 for o in out[a] for g in got[a]) for a in level1 if got[a])
    assert quick >= 0.8 * sum(1 for a in level1 if got[a])
    reused = [m for m in city.rows["mule_account"] if m["level"] == 1 and m["reused"]]
    paid_by = {
        m["account"]: {f["person_id"] for f in city.rows["fraud_txn"] if f["payee_account"] == m["account"]}
        for m in reused
    }
    assert any(len(p) >= 2 for p in paid_by.values())
    # the typology without any call record
    for v in city.rows["victim"]:
        if v["fraud_type"] == "impersonation_acquaintance":
            assert not city.episode_contacts(v)


def _paid_during_call(city: City) -> tuple[int, int]:
    """(transfers of call-led victims initiated while a call from a fraud line was on, all such)."""
    during = total = 0
    for f in city.rows["fraud_txn"]:
        if f["fraud_type"] not in CALL_LED:
            continue
        t = ts(f["time"])
        calls = [c for c in city.fraud_contacts(f["person_id"]) if c["duration_s"] >= 600]
        total += 1
        during += any(ts(c["event_time"]) <= t < ts(c["event_time"]) + c["duration_s"] for c in calls)
    return during, total


def test_settings_change_what_they_say(cities: dict[str, City]):
    base = cities["baseline"]
    d, n = _paid_during_call(cities["during-call-payers"])
    bd, bn = _paid_during_call(base)
    assert n >= 15 and d / n >= 0.8 and bd / bn <= 0.7, (d, n, bd, bn)

    def per_episode(city: City) -> float:
        return len(city.rows["fraud_txn"]) / len(city.rows["victim"])

    def share(city: City, types: tuple[str, ...]) -> float:
        return sum(v["fraud_type"] in types for v in city.rows["victim"]) / len(city.rows["victim"])

    pig = cities["pig-heavy"]
    assert (
        share(pig, ("pig_butchering", "rebate_task")) > share(base, ("pig_butchering", "rebate_task")) + 0.2
    )
    assert per_episode(pig) > per_episode(base)

    def listed_before_use(city: City) -> float:
        listed = {}
        for w in city.by_topic["watchlist"]:
            if w["op"] == "add":
                listed.setdefault(w["value"], ts(w["event_time"]))
        first_use = {}
        for f in city.rows["fraud_txn"]:
            first_use.setdefault(f["payee_account"], ts(f["time"]))
        return sum(a in listed and listed[a] < t for a, t in first_use.items()) / len(first_use)

    assert listed_before_use(cities["low-watchlist"]) < listed_before_use(base) - 0.1

    def median_birth(city: City) -> int:
        years = sorted(r["birth_year"] for r in city.by_topic["registry"])
        return years[len(years) // 2]

    assert median_birth(cities["elderly-city"]) <= median_birth(base) - 5
    many = cities["many-lookalikes"]
    kinds = ("courier", "telemarketer", "large_new_payee", "savings_move")  # 3x the rate of each
    assert sum(len(many.lookalikes(k)) for k in kinds) >= 2 * sum(len(base.lookalikes(k)) for k in kinds)

    def silent(city: City) -> float:
        return sum(not city.episode_contacts(v) for v in city.rows["victim"]) / len(city.rows["victim"])

    assert silent(cities["chat-only"]) >= 0.7 and silent(base) <= 0.4


def _cli(tmp: Path, seed: int, hashseed: str) -> str:
    out = tmp / f"c{seed}-{hashseed}.jsonl"
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.worlds",
            "--setting",
            "many-lookalikes",
            "--persons",
            "300",
            "--days",
            "2",
            "--seed",
            str(seed),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    digest = hashlib.sha256(out.read_bytes() + truth_path_for(out).read_bytes())
    return digest.hexdigest()


def test_same_arguments_same_bytes(tmp_path: Path):
    # different string hashing in each process: nothing may depend on set or dict-of-str order
    assert _cli(tmp_path, 3, "1") == _cli(tmp_path, 3, "2")
    assert _cli(tmp_path, 3, "1") != _cli(tmp_path, 4, "1")


def test_cli_writes_events_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "city.jsonl"
    assert (
        main(
            ["--setting", "elderly-city", "--persons", "200", "--days", "1", "--seed", "5", "--out", str(out)]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    run = json.loads(truth_path_for(out).read_text().splitlines()[0])
    assert run["kind"] == "run" and run["setting"] == "elderly-city" and run["persons"] == 200
    assert run["start"] == "2026-04-06T00:00:00.000+08:00"
    assert summary["records"]["registry"] == 200
    assert sum(summary["records"].values()) == len(out.read_text().splitlines())
    with pytest.raises(ValueError, match="unknown setting"):
        generate("nowhere", 200, 1, 1, out)
