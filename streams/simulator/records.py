"""Blocks of calls and transfers drawn together, sorted by time, turned into records lazily.

Columns are plain Python lists (``ndarray.tolist()``) because per-row indexing of lists is
several times faster than of numpy arrays, and each record is built only when it goes out.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np


class CallBlock:
    """Accumulates calls; ``batch()`` sorts them into a stream for the engine."""

    def __init__(self) -> None:
        self.parts: list[tuple] = []

    def add(self, t, caller, callee, carrier, sms, answered, duration, origin, url=None) -> None:
        n = len(t)
        if n == 0:
            return

        def col(x, fill=None):
            if isinstance(x, np.ndarray):
                return x.tolist()
            if isinstance(x, list):
                return x
            return [x if fill is None else fill] * n

        self.parts.append((np.asarray(t, dtype=np.int64), col(caller), col(callee), col(carrier),
                           col(sms), col(answered), col(duration), col(origin),
                           col(url) if url is not None else [False] * n))

    def batch(self) -> CallBatch:
        return CallBatch(self.parts)


class CallBatch:
    def __init__(self, parts: list[tuple]):
        if not parts:
            self.times: list[int] = []
            return
        t = np.concatenate([p[0] for p in parts])
        order = np.argsort(t, kind="stable")
        self.times = t[order].tolist()
        o = order.tolist()
        cols = [list(chain.from_iterable(p[k] for p in parts)) for k in range(1, 9)]
        (self.caller, self.callee, self.carrier, self.sms, self.answered, self.duration,
         self.origin, self.url) = ([c[i] for i in o] for c in cols)

    def make(self, i: int) -> tuple[str, dict[str, Any]]:
        if self.sms[i]:
            v = {"carrier": self.carrier[i], "kind": "sms", "caller": self.caller[i],
                 "callee": self.callee[i], "duration_s": 0, "caller_origin": self.origin[i]}
            if self.url[i]:
                v["sms_has_url"] = True
            return "calls", v
        return "calls", {"carrier": self.carrier[i], "kind": "voice", "caller": self.caller[i],
                         "callee": self.callee[i], "answered": self.answered[i],
                         "duration_s": self.duration[i], "caller_origin": self.origin[i]}


class TxnBlock:
    """Accumulates transfers; each gives two records: ``initiated`` and its end state."""

    def __init__(self) -> None:
        self.parts: list[tuple] = []

    def add(self, t, t_end, txn_id, bank, payer, payee, payee_bank, amount, channel, end):
        n = len(t)
        if n == 0:
            return

        def col(x):
            return x.tolist() if isinstance(x, np.ndarray) else (x if isinstance(x, list)
                                                                 else [x] * n)

        self.parts.append((np.asarray(t, dtype=np.int64), np.asarray(t_end, dtype=np.int64),
                           col(txn_id), col(bank), col(payer), col(payee), col(payee_bank),
                           col(amount), col(channel), col(end)))

    def batch(self) -> TxnBatch:
        return TxnBatch(self.parts)


class TxnBatch:
    def __init__(self, parts: list[tuple]):
        if not parts:
            self.times: list[int] = []
            return
        t0 = np.concatenate([p[0] for p in parts])
        t1 = np.concatenate([p[1] for p in parts])
        n = len(t0)
        t = np.concatenate([t0, t1])
        order = np.argsort(t, kind="stable")
        self.times = t[order].tolist()
        self.row = (order % n).tolist()
        self.state = (order >= n).tolist()
        (self.txn_id, self.bank, self.payer, self.payee, self.payee_bank, self.amount,
         self.channel, self.end) = (list(chain.from_iterable(p[k] for p in parts))
                                   for k in range(2, 10))

    def make(self, i: int) -> tuple[str, dict[str, Any]]:
        r = self.row[i]
        return "transactions", {
            "txn_id": self.txn_id[r],
            "status": self.end[r] if self.state[i] else "initiated",
            "bank": self.bank[r], "payer_account": self.payer[r], "payee_account": self.payee[r],
            "payee_bank": self.payee_bank[r], "amount_fen": self.amount[r], "currency": "CNY",
            "channel": self.channel[r],
        }


def txn_record(txn_id: str, status: str, bank: str, payer: str, payee: str, payee_bank: str,
               amount: int, channel: str) -> dict[str, Any]:
    return {"txn_id": txn_id, "status": status, "bank": bank, "payer_account": payer,
            "payee_account": payee, "payee_bank": payee_bank, "amount_fen": amount,
            "currency": "CNY", "channel": channel}
