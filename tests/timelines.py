"""Hand-built event timelines for core tests: one small city, records built by name."""

from __future__ import annotations

from typing import Any

from streams.eventtime import fmt, parse

T0 = parse("2026-03-01T09:00:00+08:00").ms
OFFSET = 480
LINE = "+8617012345678"  # a fraud line
VICTIM_MSISDN = "+8613912345678"
VICTIM_ACCOUNT = "6222020200112233445"


def at(minutes: float) -> str:
    return fmt(T0 + int(minutes * 60_000), OFFSET)


def person(pid: str = "P1", birth_year: int = 1980, msisdn: str = VICTIM_MSISDN,
           account: str = VICTIM_ACCOUNT, district: str = "371602", eid: str | None = None) -> tuple:
    return ("registry", {"event_id": eid or f"reg-{pid}", "event_time": at(-600), "op": "upsert",
                         "person_id": pid, "birth_year": birth_year, "district": district,
                         "msisdns": [msisdn], "accounts": [{"bank": "ICBC", "account": account}]})


def listed(value: str = LINE, minute: float = -60, op: str = "add", confidence: float = 0.9,
           eid: str | None = None) -> tuple:
    return ("watchlist", {"event_id": eid or f"wl-{op}-{value}-{minute}", "event_time": at(minute),
                          "op": op, "kind": "msisdn", "value": value, "category": "fraud_number",
                          "source": "national_center", "confidence": confidence})


def call(minute: float, duration_s: int, caller: str = LINE, callee: str = VICTIM_MSISDN,
         answered: bool = True, kind: str = "voice", eid: str | None = None,
         origin: str = "virtual") -> tuple:
    v: dict[str, Any] = {"event_id": eid or f"cdr-{minute}-{caller}-{callee}", "event_time": at(minute),
                         "carrier": "CMCC", "kind": kind, "caller": caller, "callee": callee,
                         "duration_s": duration_s, "caller_origin": origin}
    if kind == "voice":
        v["answered"] = answered
    return ("calls", v)


def transfer(minute: float, amount_fen: int, payee: str = "6217000010099887766",
             payer: str = VICTIM_ACCOUNT, status: str = "initiated", txn: str | None = None,
             eid: str | None = None) -> tuple:
    txn = txn or f"TX-{minute}-{payee}-{amount_fen}"
    return ("transactions", {"event_id": eid or f"tx-{txn}-{status}", "event_time": at(minute),
                             "txn_id": txn, "status": status, "bank": "ICBC", "payer_account": payer,
                             "payee_account": payee, "payee_bank": "CCB", "amount_fen": amount_fen,
                             "currency": "CNY", "channel": "mobile_app"})


def outcome(minute: float, task_id: str, result: str, amount_fen: int | None = None,
            actor: str = "desk:371602") -> tuple:
    v: dict[str, Any] = {"event_id": f"out-{task_id}-{result}-{minute}", "event_time": at(minute),
                         "task_id": task_id, "actor": actor, "result": result}
    if amount_fen is not None:
        v["amount_fen"] = amount_fen
    return ("task-outcomes", v)


def report(minute: float, person_id: str = "P1", accounts: tuple[str, ...] = (),
           txns: tuple[str, ...] = (), loss_fen: int = 0) -> tuple:
    return ("case-reports", {"event_id": f"case-{person_id}-{minute}", "event_time": at(minute),
                             "report_id": f"R-{person_id}-{minute}", "person_id": person_id,
                             "fraud_type": "impersonation_police", "txn_ids": list(txns),
                             "loss_fen": loss_fen, "fraud_msisdns": [], "fraud_accounts": list(accounts)})
