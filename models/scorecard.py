"""The users' figures of a run, judged against a city's ground truth.

A city (ours, ``zt simulate``, or an independent one, ``bench/worlds``) writes its events and a
truth file: who was defrauded (``victim`` rows) and which transfers went to the fraudsters
(``fraud_txn`` rows). The warning tasks of a run are judged by their *timing* against those
transfers, as the centre would judge them afterwards:

* **warned before loss**: a victim with money lost got a task before their first fraudulent
  transfer completed (a hold on that very transfer counts: it can still stop it);
* **warned before the first transfer**: a task before that transfer was even initiated;
* **money intercepted**: of the fraud money that completed (or would have, without a hold), the
  share with a hold on its transfer created before it completed, or a stop-payment of it (its
  transfer, or its payee account) within ``stop_window_min`` after it completed;
* **person precision**: of the persons warned, the share who are victims;
* **non-victims warned** per 10,000 residents a day, and **wrong money tasks** (holds and
  stop-payments on transfers that were not fraud) per 10,000 residents a day.

Both figures of money and of victims are split by fraud type and by a transfer's index within
its episode (the first payment, the second, the third and later).

>>> truth = Truth(persons=10_000, days=1.0, victims={"P1": "police_impersonation"},
...               fraud={"T1": FraudTxn("T1", "P1", "police_impersonation", 1, 500_000, "6222")})
>>> txns = {"T1": Txn(initiated=1_000, completed=61_000, payee="6222")}
>>> tasks = [{"person_id": "P1", "action": "hold", "txn_id": "T1", "created_ms": 1_000},
...          {"person_id": "P9", "action": "call", "txn_id": None, "created_ms": 5_000}]
>>> card = judge(tasks, truth, txns)
>>> card.figures["warned_before_loss"], card.figures["money_intercepted"]
(1.0, 1.0)
>>> card.figures["person_precision"], card.figures["non_victims_warned_per_10k_day"]
(0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.eventtime import to_ms

MINUTE = 60_000
DAY = 86_400_000
INDEX_BANDS = ("1st", "2nd", "3rd+")


@dataclass(frozen=True)
class FraudTxn:
    txn_id: str
    person_id: str
    fraud_type: str
    index: int  # 1-based within its episode
    amount_fen: int
    payee: str


@dataclass
class Truth:
    """What happened in the city: its size, its victims and their fraudulent transfers."""

    persons: int
    days: float
    victims: dict[str, str]  # person -> fraud type (of their first episode)
    fraud: dict[str, FraudTxn]  # txn_id -> the transfer
    source: str = ""
    # Mule cards ("two cards") and the money they pass on: a task on them is not a wrong one,
    # nor is a warning to a resident whose rented card is one (a "two cards" lead).
    mule_accounts: set[str] = field(default_factory=set)
    mule_txns: set[str] = field(default_factory=set)
    mule_holders: set[str] = field(default_factory=set)
    fraud_numbers: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, path: str | Path) -> Truth:
        """Read a truth file of ``zt simulate`` or of ``bench/worlds`` (the same rows)."""
        persons, days, source = 0, 0.0, ""
        victims: dict[str, str] = {}
        rows: list[dict[str, Any]] = []
        mule_accounts: set[str] = set()
        mule_txns: set[str] = set()
        mule_holders: set[str] = set()
        fraud_numbers: set[str] = set()
        with open(path, "rb") as f:
            for raw in f:
                row = orjson.loads(raw)
                kind = row.get("kind")
                if kind == "run":
                    persons, days = int(row["persons"]), float(row["days"])
                    source = str(row.get("setting") or row.get("generator") or "zt simulate")
                elif kind == "victim":
                    victims.setdefault(row["person_id"], row["fraud_type"])
                elif kind == "fraud_txn" and row.get("txn_id"):
                    rows.append(row)
                elif kind == "mule_account":
                    mule_accounts.add(row["account"])
                    mule_accounts.update(row.get("second_level") or ())
                    if row.get("holder"):
                        mule_holders.add(row["holder"])
                elif kind == "mule_txn" and row.get("txn_id"):
                    mule_txns.add(row["txn_id"])
                elif kind == "fraud_number":
                    fraud_numbers.add(row["msisdn"])
        if not persons:
            raise ValueError(f"{path}: no 'run' row (is this a truth file?)")
        # The index of a transfer within its episode: given, or by time.
        by_episode: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_episode.setdefault(row["episode_id"], []).append(row)
        fraud: dict[str, FraudTxn] = {}
        for eps in by_episode.values():
            eps.sort(key=lambda r: (to_ms(r["time"]), r["txn_id"]))
            for i, row in enumerate(eps, 1):
                fraud[row["txn_id"]] = FraudTxn(
                    row["txn_id"], row["person_id"], row["fraud_type"], int(row.get("index") or i),
                    int(row["amount_fen"]), str(row.get("payee_account") or ""))
        return cls(persons, days, victims, fraud, source, mule_accounts, mule_txns, mule_holders,
                   fraud_numbers)


@dataclass
class Txn:
    """A transfer's life in the events file (times in ms; None: that state never came)."""

    initiated: int | None = None
    completed: int | None = None
    payee: str = ""
    payer: str = ""


def read_fraud_calls(events: str | Path, fraud_numbers: set[str]
                     ) -> dict[str, list[tuple[int, int, int]]]:
    """Per registered person: (start, end, seconds) of each answered call from a fraud line."""
    owner: dict[str, str] = {}
    out: dict[str, list[tuple[int, int, int]]] = {}
    with open(events, "rb") as f:
        for raw in f:
            if b'"registry"' in raw:
                v = orjson.loads(raw)["value"]
                for m in v.get("msisdns") or ():
                    owner[m] = v["person_id"]
            elif b'"calls"' in raw:
                v = orjson.loads(raw)["value"]
                if v["caller"] in fraud_numbers and v.get("answered") and v["callee"] in owner:
                    start, seconds = to_ms(v["event_time"]), int(v["duration_s"])
                    out.setdefault(owner[v["callee"]], []).append(
                        (start, start + seconds * 1000, seconds))
    return out


def read_targeted(events: str | Path, fraud_numbers: set[str], min_s: int = 60) -> set[str]:
    """Persons who answered a call of at least ``min_s`` from a fraud line: targeted by fraud,
    whether or not they went on to pay (a warning to them is a warning at the right moment)."""
    return {person for person, calls in read_fraud_calls(events, fraud_numbers).items()
            if any(seconds >= min_s for _, _, seconds in calls)}


def read_txns(events: str | Path, only: set[str] | None = None) -> dict[str, Txn]:
    """Each transfer's initiated and completed times (of ``only`` these txn_ids, if given)."""
    out: dict[str, Txn] = {}
    with open(events, "rb") as f:
        for raw in f:
            if b'"transactions"' not in raw:
                continue
            rec = orjson.loads(raw)
            if rec.get("topic") != "transactions":
                continue
            v = rec["value"]
            tid = v["txn_id"]
            if only is not None and tid not in only:
                continue
            txn = out.get(tid)
            if txn is None:
                txn = out[tid] = Txn(payee=v["payee_account"], payer=v["payer_account"])
            t = to_ms(v["event_time"])
            if v["status"] == "initiated":
                txn.initiated = t if txn.initiated is None else min(txn.initiated, t)
            elif v["status"] == "completed":
                txn.completed = t
    return out


def read_tasks(path: str | Path) -> Iterator[dict[str, Any]]:
    """Warning tasks of a tasks file, each with ``created_ms``."""
    with open(path, "rb") as f:
        for raw in f:
            if raw.strip():
                task = orjson.loads(raw)
                task["created_ms"] = to_ms(task["created_time"])
                yield task


@dataclass
class Scorecard:
    figures: dict[str, float | int | None]
    by_type: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    by_index: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    missed: list[dict[str, Any]] = field(default_factory=list)  # fraud money not intercepted

    def as_dict(self) -> dict[str, Any]:
        return {"figures": self.figures, "by_type": self.by_type, "by_index": self.by_index}


def _share(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _band(index: int) -> str:
    return INDEX_BANDS[min(index, 3) - 1]


def judge(tasks: Iterable[dict[str, Any]], truth: Truth, txns: dict[str, Txn],
          stop_window_min: float = 10, targeted: set[str] | None = None) -> Scorecard:
    """The users' figures of ``tasks`` (dicts with person_id, action, txn_id, account,
    created_ms) against ``truth``; ``txns`` gives the transfers' times and accounts (every
    transfer a money task names, to tell a wrong task from one on a mule card)."""
    window = int(stop_window_min * MINUTE)
    first_task: dict[str, int] = {}
    holds: dict[str, int] = {}  # txn -> earliest hold
    stops: dict[str, list[int]] = {}  # txn or payee account -> stop-payment times
    wrong_money = mule_money = 0
    for task in tasks:
        pid, t, action = task["person_id"], task["created_ms"], task["action"]
        if pid not in first_task or t < first_task[pid]:
            first_task[pid] = t
        if action not in ("hold", "stop_payment"):
            continue
        tid = task.get("txn_id")
        if tid not in truth.fraud:
            txn = txns.get(tid)
            on_mule = tid in truth.mule_txns or (txn is not None and (
                txn.payer in truth.mule_accounts or txn.payee in truth.mule_accounts))
            if on_mule:
                mule_money += 1
            else:
                wrong_money += 1
        if action == "hold":
            holds[tid] = min(t, holds.get(tid, t))
        else:
            stops.setdefault(tid, []).append(t)
            if task.get("account"):
                stops.setdefault(task["account"], []).append(t)

    money = {"all": [0, 0]}
    by_type: dict[str, list[int]] = {}
    by_index: dict[str, list[int]] = {b: [0, 0] for b in INDEX_BANDS}
    first_loss: dict[str, tuple[int, int | None]] = {}  # victim -> (completed, initiated) of 1st
    missed: list[dict[str, Any]] = []
    for f in truth.fraud.values():
        txn = txns.get(f.txn_id)
        if txn is None or (txn.completed is None and f.txn_id not in holds):
            continue  # failed or never sent: no money at stake
        done = txn.completed
        held = f.txn_id in holds and (done is None or holds[f.txn_id] < done)
        stopped = done is not None and any(
            done <= s <= done + window for key in (f.txn_id, f.payee or txn.payee)
            for s in stops.get(key, ()))
        got = f.amount_fen if held or stopped else 0
        for acc in (money["all"], by_type.setdefault(f.fraud_type, [0, 0]),
                    by_index[_band(f.index)]):
            acc[0] += got
            acc[1] += f.amount_fen
        if not got:
            missed.append({"txn_id": f.txn_id, "person_id": f.person_id, "type": f.fraud_type,
                           "index": f.index, "amount_fen": f.amount_fen})
        if done is not None:
            prev = first_loss.get(f.person_id)
            if prev is None or done < prev[0]:
                first_loss[f.person_id] = (done, txn.initiated)

    def warned(pid: str, before: int | None) -> bool:
        t = first_task.get(pid)
        return t is not None and before is not None and t < before

    victims_lost = list(first_loss)
    before_loss = [p for p in victims_lost if warned(p, first_loss[p][0])]
    before_first = [p for p in victims_lost if warned(p, first_loss[p][1])]
    warned_persons = set(first_task)
    non_victims = [p for p in warned_persons if p not in truth.victims]
    holders = [p for p in non_victims if p in truth.mule_holders]
    on_fraud_call = [p for p in non_victims if targeted and p in targeted]
    scale = 10_000 / truth.persons / max(truth.days, 1e-9)
    figures: dict[str, float | int | None] = {
        "victims": len(truth.victims),
        "victims_with_loss": len(victims_lost),
        "warned_before_loss": _share(len(before_loss), len(victims_lost)),
        "warned_before_first_transfer": _share(len(before_first), len(victims_lost)),
        "fraud_money_fen": money["all"][1],
        "money_intercepted": _share(*money["all"]),
        "persons_warned": len(warned_persons),
        "person_precision": _share(len(warned_persons) - len(non_victims), len(warned_persons)),
        "non_victims_warned_per_10k_day": round(len(non_victims) * scale, 3),
        "non_victims_on_a_fraud_call": len(on_fraud_call),
        "person_precision_with_fraud_calls": _share(
            len(warned_persons) - len(non_victims) + len(on_fraud_call), len(warned_persons)),
        "mule_holders_warned": len(holders),
        "money_tasks_on_mule_cards": mule_money,
        "wrong_money_tasks": wrong_money,
        "wrong_money_tasks_per_10k_day": round(wrong_money * scale, 3),
    }
    types: dict[str, dict[str, float | int | None]] = {}
    for ftype, (got, total) in sorted(by_type.items()):
        lost = [p for p in victims_lost if truth.victims.get(p) == ftype]
        types[ftype] = {"victims_with_loss": len(lost),
                        "warned_before_loss": _share(sum(p in before_loss for p in lost), len(lost)),
                        "money_fen": total, "money_intercepted": _share(got, total)}
    index = {b: {"money_fen": v[1], "money_intercepted": _share(*v)} for b, v in by_index.items()}
    missed.sort(key=lambda m: -m["amount_fen"])
    return Scorecard(figures, types, index, missed)


def naive_tasks(events: str | Path) -> list[dict[str, Any]]:
    """The naive two-rule detector's alerts as tasks: a call on an answered call from a listed
    number, a hold on a transfer of 5,000 CNY or more to a new payee."""
    from streams.simulator.naive import detect

    return [{"person_id": a.person, "action": "call" if a.txn_id is None else "hold",
             "txn_id": a.txn_id, "account": None, "created_ms": a.t} for a in detect(events)]


def truth_path(events: str | Path) -> Path:
    """The truth file written beside a city's events (``city.jsonl`` -> ``city.truth.jsonl``)."""
    p = Path(events)
    return p.with_name(p.name.removesuffix(".gz").removesuffix(".jsonl") + ".truth.jsonl")
