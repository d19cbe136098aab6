"""Why the first fraudulent payment of an episode is missed: a miss analysis on a city with a
ground truth (training cities only; see models/default.py).

For every transfer scoring point the city's replay reaches (the default rule set and model, as
``zt replay`` decides), keep the features, the model's score, the enforcing rules and what the
truth says of the transfer (the first fraudulent one of its victim, a later one, a mule card's,
an honest one), with what the pipeline had seen of the fraud lines before it, and the tasks.

    python -m bench.first_payment CITY.jsonl ... --out DIR   # one DIR/<city>.pkl each
    python -m bench.first_payment --report DIR               # the figures of the analysis

Nothing here decides: it reads the core's observer, like training does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from models.features import POINT_FEATURES
from models.scorecard import Truth, read_fraud_calls, read_txns, truth_path

TRANSFER = POINT_FEATURES["transfer"]


def collect(events: Path, ruleset: Any = "default", scorer: Any = "default",
            policy: Any = None) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    from models.default import packaged
    from rules.engine import RuleSet, default_ruleset_path
    from streams.core import Core
    from streams.replay import read_lines

    if ruleset == "default":
        ruleset = RuleSet.load(default_ruleset_path())
    if scorer == "default":
        scorer = packaged()
    rows: list[tuple[Any, ...]] = []
    x: list[list[float]] = []

    def observe(s: Any) -> None:
        if s.point != "transfer":
            return
        enforce = [h.rule_id for h in s.hits if h.mode == "enforce"]
        shadow = [h.rule_id for h in s.hits if h.mode != "enforce"]
        rows.append((s.person_id, s.txn_id, s.t_ms, s.model_score or 0.0, s.risk,
                     ",".join(enforce), ",".join(shadow)))
        x.append([float(s.features[n]) for n in TRANSFER])

    core = Core(ruleset=ruleset, scorer=scorer, observer=observe, batch=1024, policy=policy)
    tasks: list[dict[str, Any]] = []

    def keep(out: list[Any]) -> None:
        for t in out:
            tasks.append({"person_id": t.person_id, "action": t.action, "txn_id": t.txn_id,
                          "account": t.account, "created_ms": t.created_ms,
                          "codes": [r.code for r in t.reasons]})

    for line in read_lines(events):
        if line.value is not None:
            keep(core.feed(line.topic, line.value))
    keep(core.finish())
    df = pd.DataFrame(x, columns=list(TRANSFER))
    meta = pd.DataFrame(rows, columns=["person_id", "txn_id", "t_ms", "model_score", "risk",
                                       "enforce", "shadow"])
    return pd.concat([df, meta], axis=1), tasks


def label(events: Path, df: pd.DataFrame, tasks: list[dict[str, Any]]) -> pd.DataFrame:
    truth = Truth.read(truth_path(events))
    txns = read_txns(events)
    calls = read_fraud_calls(events, truth.fraud_numbers)
    first_task: dict[str, int] = {}
    for t in tasks:
        first_task[t["person_id"]] = min(t["created_ms"], first_task.get(t["person_id"], t["created_ms"]))
    # the first fraudulent transfer that completed, per victim (as the scorecard judges)
    first_loss: dict[str, tuple[int, str]] = {}
    for f in truth.fraud.values():
        txn = txns.get(f.txn_id)
        if txn is None or txn.completed is None:
            continue
        prev = first_loss.get(f.person_id)
        if prev is None or txn.completed < prev[0]:
            first_loss[f.person_id] = (txn.completed, f.txn_id)
    first_txns = {tid for _, tid in first_loss.values()}
    kind, ftype, idx, init, done, warned, calls_before, calls_any, call_gap = ([] for _ in range(9))
    for pid, tid, t in zip(df["person_id"], df["txn_id"], df["t_ms"], strict=True):
        f = truth.fraud.get(tid)
        txn = txns.get(tid)
        if f is not None:
            kind.append("first" if tid in first_txns else "fraud_later")
        elif tid in truth.mule_txns or (txn is not None and (
                txn.payer in truth.mule_accounts or txn.payee in truth.mule_accounts)):
            kind.append("mule")
        else:
            kind.append("honest")
        ftype.append(f.fraud_type if f else truth.victims.get(pid, ""))
        idx.append(f.index if f else 0)
        i = txn.initiated if txn else None
        c = txn.completed if txn else None
        init.append(i if i is not None else -1)
        done.append(c if c is not None else -1)
        ft = first_task.get(pid)
        warned.append(ft is not None and c is not None and ft < c)
        cs = calls.get(pid, [])
        ended = [e for s, e, _ in cs if e <= t]
        calls_before.append(len(ended))
        calls_any.append(len(cs))
        started = [s for s, e, _ in cs if s <= t]
        call_gap.append((t - max(started)) / 60_000 if started else np.nan)
    out = df.assign(kind=kind, fraud_type=ftype, index=idx, initiated=init, completed=done,
                    warned_before_completed=warned, fraud_calls_ended_before=calls_before,
                    fraud_calls_total=calls_any, min_since_fraud_call_start=call_gap)
    out.attrs.update(persons=truth.persons, days=truth.days,
                     victims_with_loss=len(first_loss),
                     warned_before_loss=sum(
                         first_task.get(p) is not None and first_task[p] < c
                         for p, (c, _) in first_loss.items()))
    return out


def report(frames: dict[str, pd.DataFrame]) -> None:
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 40)
    allf = pd.concat([f.assign(city=name) for name, f in frames.items()], ignore_index=True)
    first = allf[allf.kind == "first"]
    missed = first[~first.warned_before_completed]
    print(f"first fraudulent transfers: {len(first)}, warned before completed "
          f"{first.warned_before_completed.mean():.3f}, missed {len(missed)}")
    honest_new = allf[(allf.kind == "honest") & (allf.payee_new == 1) & (allf.payee_own == 0)]
    cols = ["amount_cny", "amount_ratio_usual", "person_age", "person_history_days",
            "payee_registered", "payee_age_days", "payee_distinct_payers_24h",
            "payee_drain_share_24h", "unknown_calls_24h", "longest_unknown_call_72h",
            "minutes_since_unknown_call", "hour_of_day", "transfers_24h", "model_score"]
    q = [0.1, 0.25, 0.5, 0.75, 0.9]
    for name, part in (("missed first payments", missed),
                       ("caught first payments", first[first.warned_before_completed]),
                       ("honest first payments to new payees", honest_new)):
        print(f"\n== {name}: {len(part)}")
        print(part[cols].quantile(q).T.round(2))
    m = missed.assign(secs=(missed.completed - missed.initiated) / 1000)
    print("\nmissed: fraud call ended before the transfer point:",
          (m.fraud_calls_ended_before > 0).mean().round(3),
          "| any answered fraud call at all:", (m.fraud_calls_total > 0).mean().round(3),
          "| a call had started (still on the line):",
          (m.min_since_fraud_call_start.notna() & (m.fraud_calls_ended_before == 0)).mean().round(3))
    print("missed: seconds initiated -> completed", m.secs.quantile(q).round(0).tolist(),
          "(-1 initiated: none seen)", (m.initiated < 0).mean().round(3))
    print("missed by type:\n", missed.fraud_type.value_counts().to_string())
    print("missed by city:\n", missed.city.value_counts().to_string())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cities", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=Path("first-payment"))
    ap.add_argument("--report", type=Path)
    ap.add_argument("--rules", type=Path, help="a rule set (default: the packaged one)")
    ap.add_argument("--policy", type=Path, help="a policy file (default: the packaged one)")
    a = ap.parse_args(argv)
    if a.report:
        frames = {p.stem: pd.read_pickle(p) for p in sorted(a.report.glob("*.pkl"))}
        report(frames)
        return 0
    a.out.mkdir(parents=True, exist_ok=True)
    for city in a.cities:
        from rules.engine import RuleSet
        from streams.ladder import Policy

        df, tasks = collect(city, RuleSet.load(a.rules) if a.rules else "default",
                            policy=Policy.load(a.policy) if a.policy else None)
        df = label(city, df, tasks)
        df.to_pickle(a.out / f"{city.name.removesuffix('.jsonl')}.pkl")
        (a.out / f"{city.name.removesuffix('.jsonl')}.tasks.json").write_bytes(orjson.dumps(tasks))
        print(city.name, len(df), "transfer points;", len(tasks), "tasks;",
              f"warned before loss {df.attrs['warned_before_loss']}/{df.attrs['victims_with_loss']}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
