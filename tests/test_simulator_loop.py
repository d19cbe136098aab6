"""The closed loop: desks, banks and people answer warning tasks; the pipeline off is the
counterfactual city."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from streams.contract import validate
from streams.eventtime import fmt, parse
from streams.simulator import simulate
from streams.simulator.respond import null_core
from streams.simulator.run import closed_loop

BOOST = {"fraud": {"episodes_per_100k_per_day": 400}}


class PayeeCore:
    """A stand-in core for the loop's mechanics: any transfer of 2,000 CNY or more to an account
    outside the registry gets a call, a hold and a stop-payment task at once."""

    def __init__(self) -> None:
        self.owner: dict[str, tuple[str, str, str]] = {}
        self.n = 0

    def feed(self, topic: str, v: dict[str, Any]) -> list[dict[str, Any]]:
        if topic == "registry":
            for a in v["accounts"]:
                self.owner[a["account"]] = (v["person_id"], v["district"], v["msisdns"][0])
            return []
        if (topic != "transactions" or v["status"] != "initiated" or v["amount_fen"] < 200_000
                or v["payee_account"] in self.owner or v["payer_account"] not in self.owner):
            return []
        pid, district, phone = self.owner[v["payer_account"]]
        t = parse(v["event_time"])
        base = {"created_time": v["event_time"], "episode_id": f"E-{pid}", "person_id": pid,
                "district": district, "priority": 1, "risk_score": 0.9,
                "due_time": fmt(t.ms + 120_000, t.offset_min),
                "reasons": [{"code": "TEST", "detail": "large transfer to an outside account"}],
                "evidence": [v["event_id"]], "model_version": "test", "ruleset_version": "test"}
        tasks = []
        actions: list[tuple[str, dict[str, Any]]] = [("call", {"contact_msisdn": phone})]
        if v["amount_fen"] >= 1_000_000:
            actions.append(("visit", {}))
        for action, extra in (
            *actions,
            ("hold", {"bank": v["bank"], "txn_id": v["txn_id"], "account": v["payer_account"],
                      "amount_fen": v["amount_fen"]}),
            ("stop_payment", {"bank": v["payee_bank"], "txn_id": v["txn_id"],
                              "account": v["payee_account"], "amount_fen": v["amount_fen"]}),
        ):
            self.n += 1
            task = dict(base, task_id=f"T-{self.n}", action=action, **extra)
            validate("warning-tasks", task)
            tasks.append(task)
        return tasks

    def finish(self) -> list[dict[str, Any]]:
        return []


def test_pipeline_off_is_the_counterfactual(tmp_path: Path) -> None:
    a, b = tmp_path / "plain.jsonl", tmp_path / "loop.jsonl"
    simulate(1500, 3, 11, a, overrides=BOOST)
    r = closed_loop(1500, 3, 11, b, null_core(), overrides=BOOST).report
    assert a.read_bytes() == b.read_bytes()
    assert r["loss_with_pipeline_fen"] == r["loss_without_pipeline_fen"] > 0
    assert r["warnings"] == 0


def test_desks_and_banks_cut_losses(tmp_path: Path) -> None:
    out = tmp_path / "loop.jsonl"
    loop = closed_loop(3000, 5, 3, out, PayeeCore, overrides=BOOST)
    r = loop.report
    assert r["warnings"] > 0 and r["dissuasion_calls"] > 0
    assert r["holds"] > 0 and r["held_fen"] > 0
    assert r["loss_with_pipeline_fen"] < r["loss_without_pipeline_fen"]
    assert r["loss_prevented_fen"] == r["loss_without_pipeline_fen"] - r["loss_with_pipeline_fen"]
    assert 0 <= r["zero_transfer_rate"] <= 1
    outcomes = []
    prev = 0
    for line in out.open("rb"):
        rec = orjson.loads(line)
        validate(rec["topic"], rec["value"])
        t = parse(rec["value"]["event_time"]).ms
        assert t >= prev
        prev = t
        if rec["topic"] == "task-outcomes":
            outcomes.append(rec["value"])
    assert {o["result"] for o in outcomes} >= {"held", "dissuaded", "visited", "stopped"}
    assert r["visits"] > 0
    # A stop-payment recovers only what the mule had not moved on.
    for mule in loop.city.fraud.mules:
        assert mule.stopped_fen + mule.drained_fen <= mule.received_fen
    # Held transfers never complete, and a held transfer appears as such in the records.
    held = {p.txn_id for ep in loop.city.fraud.episodes for p in ep.payments
            if p.status == "held"}
    statuses = {}
    for line in out.open("rb"):
        rec = orjson.loads(line)
        if rec["topic"] == "transactions" and rec["value"]["txn_id"] in held:
            statuses.setdefault(rec["value"]["txn_id"], []).append(rec["value"]["status"])
    assert held and all(s == ["initiated", "held"] for s in statuses.values())


def test_loop_runs_with_the_real_core(tmp_path: Path) -> None:
    from streams.core import Core

    loop = closed_loop(1500, 3, 5, tmp_path / "loop.jsonl", Core, overrides=BOOST)
    r = loop.report
    assert r["loss_without_pipeline_fen"] >= r["loss_with_pipeline_fen"] >= 0
    created = {}
    for task in loop.responder.tasks:
        validate("warning-tasks", task)
        created[task["task_id"]] = parse(task["created_time"]).ms
    # Desks and banks never act before the evidence of a task existed.
    for line in (tmp_path / "loop.jsonl").open("rb"):
        rec = orjson.loads(line)
        if rec["topic"] == "task-outcomes":
            assert parse(rec["value"]["event_time"]).ms >= created[rec["value"]["task_id"]]


def test_cli_city_and_closed_loop(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from streams.simulator.cli import simulate as command

    app = typer.Typer()
    app.command()(command)
    app.command("noop")(lambda: None)  # two commands, so the sub-command name is used
    runner = CliRunner()
    out = tmp_path / "city.jsonl"
    r = runner.invoke(app, ["simulate", "--persons", "400", "--days", "2", "--out", str(out),
                            "--quiet"])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 0 and (tmp_path / "city.truth.jsonl").exists()
    r = runner.invoke(app, ["simulate", "--persons", "1500", "--days", "3", "--respond",
                            "--out", str(tmp_path / "loop.jsonl"), "--plots",
                            str(tmp_path / "plots"), "--quiet"])
    assert r.exit_code == 0, r.output
    report = orjson.loads((tmp_path / "plots" / "report.json").read_bytes())
    assert {"zero_transfer_rate", "loss_prevented_fen", "holds", "visits"} <= set(report)
    for png in ("losses_by_type.png", "episode.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:4] == b"\x89PNG"
