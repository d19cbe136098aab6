"""A naive two-rule detector, to show what the city's hard cases do to simple rules.

Rule 1: an answered call from a number on the watch list (as known at that moment).
Rule 2: a transfer of at least ``large_cny`` to a payee the payer account never paid before
(after a warm-up during which payees are only learnt).

It reads a replay file and scores its alerts against the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.eventtime import parse


@dataclass
class Alert:
    rule: str
    person: str
    t: int
    txn_id: str | None = None


def detect(replay: str | Path, large_cny: int = 5000, warmup_days: int = 3) -> list[Alert]:
    line_owner: dict[str, str] = {}
    acc_owner: dict[str, str] = {}
    watched: set[str] = set()
    paid: set[tuple[str, str]] = set()
    alerts: list[Alert] = []
    t0: int | None = None
    large = large_cny * 100
    with open(replay, "rb") as f:
        for raw in f:
            rec = orjson.loads(raw)
            topic, v = rec["topic"], rec["value"]
            t = parse(v["event_time"]).ms
            if t0 is None:
                t0 = t
            if topic == "registry":
                for m in v.get("msisdns", []):
                    line_owner[m] = v["person_id"]
                for a in v.get("accounts", []):
                    acc_owner[a["account"]] = v["person_id"]
            elif topic == "watchlist":
                (watched.add if v["op"] == "add" else watched.discard)(v["value"])
            elif topic == "calls":
                if v["kind"] == "voice" and v.get("answered") and v["caller"] in watched:
                    who = line_owner.get(v["callee"])
                    if who:
                        alerts.append(Alert("watchlisted_call", who, t))
            elif topic == "transactions" and v["status"] == "initiated":
                pair = (v["payer_account"], v["payee_account"])
                new = pair not in paid
                paid.add(pair)
                who = acc_owner.get(v["payer_account"])
                if (new and who and v["amount_fen"] >= large
                        and t - t0 >= warmup_days * 86_400_000):
                    alerts.append(Alert("large_new_payee", who, t, v["txn_id"]))
    return alerts


def evaluate(replay: str | Path, truth: str | Path, large_cny: int = 5000,
             warmup_days: int = 3) -> dict[str, Any]:
    """Precision and recall of each rule and of both together, against the ground truth."""
    alerts = detect(replay, large_cny, warmup_days)
    episodes: list[dict[str, Any]] = []
    fraud_txns: dict[str, dict[str, Any]] = {}
    t_start: int | None = None
    with open(truth, "rb") as f:
        for raw in f:
            row = orjson.loads(raw)
            if row["kind"] == "run":
                t_start = parse(row["start"]).ms
            elif row["kind"] == "victim":
                episodes.append(row)
            elif row["kind"] == "fraud_txn" and row["txn_id"]:
                fraud_txns[row["txn_id"]] = row
    assert t_start is not None
    cut = t_start + warmup_days * 86_400_000
    windows: dict[str, list[tuple[int, int]]] = {}
    for ep in episodes:
        windows.setdefault(ep["person_id"], []).append(
            (parse(ep["start_time"]).ms - 3_600_000, parse(ep["end_time"]).ms))

    def in_episode(a: Alert) -> bool:
        return any(s <= a.t <= e for s, e in windows.get(a.person, ()))

    out: dict[str, Any] = {"large_cny": large_cny, "warmup_days": warmup_days}
    for rule in ("watchlisted_call", "large_new_payee"):
        got = [a for a in alerts if a.rule == rule and a.t >= cut]
        tp = sum(in_episode(a) for a in got)
        out[rule] = {"alerts": len(got), "true": tp,
                     "precision": round(tp / len(got), 3) if got else None}
    # Transfer level: rule 2 against the fraudulent transfers initiated after the warm-up.
    flagged = {a.txn_id for a in alerts if a.rule == "large_new_payee"}
    fraud_after = {k for k, r in fraud_txns.items() if parse(r["time"]).ms >= cut}
    hit = len(flagged & fraud_after)
    out["large_new_payee"]["fraud_txns"] = len(fraud_after)
    out["large_new_payee"]["txn_recall"] = (round(hit / len(fraud_after), 3)
                                            if fraud_after else None)
    # Episode level: a victim whose episode (with a loss, after warm-up) raised any alert before
    # the first money left counts as caught in time.
    eps = [e for e in episodes if e["attempted_txn_ids"] and parse(e["start_time"]).ms >= cut]
    caught = caught_in_time = 0
    by_person: dict[str, list[Alert]] = {}
    for a in alerts:
        by_person.setdefault(a.person, []).append(a)
    for e in eps:
        s, end = parse(e["start_time"]).ms - 3_600_000, parse(e["end_time"]).ms
        first = min((parse(fraud_txns[t]["time"]).ms for t in e["attempted_txn_ids"]
                     if t in fraud_txns), default=end)
        mine = [a.t for a in by_person.get(e["person_id"], []) if s <= a.t <= end]
        caught += bool(mine)
        caught_in_time += any(t <= first for t in mine)
    all_alerts = [a for a in alerts if a.t >= cut]
    tp = sum(in_episode(a) for a in all_alerts)
    out["both"] = {
        "alerts": len(all_alerts), "precision": round(tp / len(all_alerts), 3) if all_alerts
        else None, "episodes": len(eps),
        "episode_recall": round(caught / len(eps), 3) if eps else None,
        "episode_recall_before_first_transfer": round(caught_in_time / len(eps), 3) if eps
        else None,
    }
    return out


def main() -> None:
    """``python -m streams.simulator.naive REPLAY TRUTH [LARGE_CNY] [WARMUP_DAYS]``"""
    import json
    import sys

    args = sys.argv[1:]
    if len(args) < 2:
        raise SystemExit(main.__doc__)
    extra = [int(x) for x in args[2:4]]
    print(json.dumps(evaluate(args[0], args[1], *extra), indent=2))


if __name__ == "__main__":
    main()
