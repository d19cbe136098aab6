"""Hand-built event timelines for core tests: one small city, records built by name."""

from __future__ import annotations

from typing import Any

from streams import contract
from streams.core import Core, availability_ms
from streams.eventtime import fmt, parse, to_ms

T0 = parse("2026-03-01T09:00:00+08:00").ms
OFFSET = 480
LINE = "+8617012345678"  # a fraud line
VICTIM_MSISDN = "+8613912345678"
VICTIM_ACCOUNT = "6222020200112233445"


def at(minutes: float) -> str:
    return fmt(T0 + int(minutes * 60_000), OFFSET)


def person(pid: str = "P1", birth_year: int = 1980, msisdn: str = VICTIM_MSISDN,
           account: str = VICTIM_ACCOUNT, district: str = "371602", eid: str | None = None,
           minute: float = -600) -> tuple:
    return ("registry", {"event_id": eid or f"reg-{pid}", "event_time": at(minute), "op": "upsert",
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


FAMILY_ACCOUNT = "6222020200999888777"
WEEK = 7 * 24 * 60  # minutes


def history(pid: str = "P1", payer: str = VICTIM_ACCOUNT, days: float = 7, **who: Any) -> list[tuple]:
    """A person registered ``days`` ago who has paid family since: the pipeline knows their
    usual payees (with no history, every payee is new)."""
    start = -days * 24 * 60
    return [person(pid, account=payer, minute=start - 60, **who),
            transfer(start, 50_000, payee=FAMILY_ACCOUNT, payer=payer, txn=f"H-{pid}-1",
                     status="completed"),
            transfer(start / 2, 60_000, payee=FAMILY_ACCOUNT, payer=payer, txn=f"H-{pid}-2",
                     status="completed")]


class Run:
    """Feed records one by one, reacting to tasks like a desk would (by a callback)."""

    def __init__(self, **core: Any) -> None:
        self.core = Core(**core)
        self.tasks: list[dict] = []
        self.ticks = 0

    def feed(self, *records) -> list[dict]:
        """Feed ``records``, then a tick 3 s after the last one so the watermark (2 s) passes
        them: a call between two strangers nobody registered, which concerns no person."""
        last = max(availability_ms(t, v, to_ms(v["event_time"])) for t, v in records)
        self.ticks += 1
        tick = ("calls", {"event_id": f"tick-{self.ticks}", "event_time": fmt(last + 3000, 480),
                          "carrier": "CMCC", "kind": "sms", "caller": "+8613000000000",
                          "callee": "+8613000000001", "duration_s": 0, "caller_origin": "domestic"})
        new = []
        for topic, value in [*records, tick]:
            contract.validate(topic, value)
            new += [t.to_record() for t in self.core.feed(topic, value)]
        for t in new:
            contract.validate("warning-tasks", t)
        self.tasks += new
        return new

    def finish(self) -> list[dict]:
        new = [t.to_record() for t in self.core.finish()]
        self.tasks += new
        return new

    def actions(self) -> list[tuple[str, str]]:
        return [(t["action"], t["reasons"][0]["code"]) for t in self.tasks]

    @property
    def stats(self):
        return self.core.decider.ladder.stats
