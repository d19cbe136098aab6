"""The city's ledger: every line, account, call, transfer and other record the generator makes,
held as numpy columns until the end, then ordered by event time and written as a replay file
(`{"topic": ..., "value": ...}` per line) beside its ground truth.

Identifiers that a detector sees (event ids, txn ids, report ids) are numbered in output order,
never in the order the generator made things, so an id says nothing about fraud or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from .clock import SECOND, Clock

CHANNELS = ("mobile_app", "online_banking", "counter", "atm", "third_party")
MOBILE, ONLINE, COUNTER, ATM, THIRD_PARTY = range(5)
# how long a bank takes from order to money moved, per channel: (low, high) in ms
SETTLE_MS = {
    MOBILE: (1_000, 12_000),
    ONLINE: (3_000, 30_000),
    COUNTER: (40_000, 240_000),
    ATM: (5_000, 20_000),
    THIRD_PARTY: (1_000, 5_000),
}
TOPIC_RANK = {"registry": 0, "watchlist": 1, "calls": 2, "transactions": 3, "case-reports": 4}


@dataclass(frozen=True)
class At:
    """A time (ms from the city's start) inside a record or truth row, formatted when written."""

    ms: int


@dataclass(frozen=True)
class Txn:
    """A transfer (its handle) inside a record or truth row, written as its txn_id."""

    handle: int


class Ledger:
    def __init__(self, clock: Clock):
        self.clock = clock
        self.line_number: list[str] = []
        self.line_origin: list[str] = []
        self.line_owner: list[int] = []
        self._line_ids: dict[str, int] = {}
        self.account_number: list[str] = []
        self.account_bank: list[str] = []
        self.account_owner: list[int] = []
        self._call_chunks: list[tuple[np.ndarray, ...]] = []
        self._call_rows: list[tuple] = []
        self._txn_chunks: list[tuple[np.ndarray, ...]] = []
        self._txn_rows: list[tuple] = []
        self.n_transfers = 0
        self._busy: list[tuple[int, int, int, int]] = []
        self.records: list[tuple[int, str, dict]] = []
        self.truth: list[tuple[int, int, dict]] = []

    # --- lines and accounts -------------------------------------------------------------
    def line(self, number: str, origin: str, owner: int = -1) -> int:
        i = self._line_ids.get(number)
        if i is None:
            i = self._line_ids[number] = len(self.line_number)
            self.line_number.append(number)
            self.line_origin.append(origin)
            self.line_owner.append(owner)
        return i

    def account(self, number: str, bank: str, owner: int = -1) -> int:
        self.account_number.append(number)
        self.account_bank.append(bank)
        self.account_owner.append(owner)
        return len(self.account_number) - 1

    # --- calls and SMS ------------------------------------------------------------------
    def calls(self, t, caller, callee, answered, duration, sms=False, url=False) -> None:
        """Many voice calls (or SMS when `sms`) at once; scalars broadcast."""
        t = np.asarray(t, dtype=np.int64)
        n = t.shape[0]
        if n == 0:
            return
        cols = (t, caller, callee, answered, duration, sms, url)
        dtypes = (np.int64, np.int64, np.int64, bool, np.int64, bool, bool)
        self._call_chunks.append(
            tuple(
                np.broadcast_to(np.asarray(c, dtype=d), (n,)).copy()
                for c, d in zip(cols, dtypes, strict=True)
            )
        )

    def call(self, t: int, caller: int, callee: int, answered: bool, duration_s: int) -> None:
        self._call_rows.append((t, caller, callee, answered, duration_s if answered else 0, False, False))

    def sms(self, t: int, sender: int, to: int, url: bool = False) -> None:
        self._call_rows.append((t, sender, to, False, 0, True, url))

    def busy(self, line: int, t0: int, t1: int, on_call_with: int) -> None:
        """`line` is held on a call with `on_call_with` from t0 to t1: others reaching it meet a
        busy line (unanswered), and it makes no other call meanwhile."""
        self._busy.append((line, t0, t1, on_call_with))

    # --- transfers ----------------------------------------------------------------------
    def _flush_txn_rows(self) -> None:
        if self._txn_rows:
            cols = list(zip(*self._txn_rows, strict=True))
            self._txn_chunks.append(tuple(np.array(c, dtype=np.int64) for c in cols))
            self._txn_rows = []

    def transfers(
        self,
        t,
        payer,
        payee,
        amount_fen,
        channel,
        ok=True,
        settle_ms=None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Many transfers at once (initiated at `t`, completed or failed `settle_ms` later);
        returns their handles. Without `settle_ms`, draws the channel's usual delay."""
        self._flush_txn_rows()
        t = np.asarray(t, dtype=np.int64)
        n = t.shape[0]
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        channel = np.broadcast_to(np.asarray(channel, dtype=np.int64), (n,)).copy()
        if settle_ms is None:
            assert rng is not None
            settle_ms = np.zeros(n, dtype=np.int64)
            for c, (lo, hi) in SETTLE_MS.items():
                m = channel == c
                settle_ms[m] = rng.integers(lo, hi, int(m.sum()))
        cols = (t, payer, payee, amount_fen, channel, np.asarray(ok, dtype=np.int64), settle_ms)
        chunk = tuple(np.broadcast_to(np.asarray(c, dtype=np.int64), (n,)).copy() for c in cols)
        assert (chunk[3] > 0).all(), "amounts are positive"
        self._txn_chunks.append(chunk)
        handles = np.arange(self.n_transfers, self.n_transfers + n)
        self.n_transfers += n
        return handles

    def transfer(
        self,
        t: int,
        payer: int,
        payee: int,
        amount_fen: int,
        channel: int,
        rng: np.random.Generator,
        ok: bool = True,
        settle_ms: int | None = None,
    ) -> int:
        if settle_ms is None:
            lo, hi = SETTLE_MS[channel]
            settle_ms = int(rng.integers(lo, hi))
            if ok and amount_fen >= 5_000_000 and channel != COUNTER:
                settle_ms += int(rng.integers(0, 60 * SECOND))  # large-value system
            if not ok:
                settle_ms = int(rng.integers(1_000, 6_000))
        assert amount_fen > 0
        self._txn_rows.append((t, payer, payee, int(amount_fen), channel, int(ok), settle_ms))
        self.n_transfers += 1
        return self.n_transfers - 1

    def transfer_columns(self) -> dict[str, np.ndarray]:
        self._flush_txn_rows()
        names = ("t", "payer", "payee", "amount", "channel", "ok", "settle")
        if not self._txn_chunks:
            return {k: np.zeros(0, dtype=np.int64) for k in names}
        return {k: np.concatenate([c[i] for c in self._txn_chunks]) for i, k in enumerate(names)}

    # --- other records and the truth ----------------------------------------------------
    def record(self, topic: str, t: int, value: dict) -> None:
        self.records.append((int(t), topic, value))

    def fact(self, row: dict, t: int = 0, order: int = 9) -> None:
        """A ground-truth row; written sorted by (order, t)."""
        self.truth.append((order, int(t), row))

    # --- writing ------------------------------------------------------------------------
    def _call_columns(self) -> list[np.ndarray]:
        chunks = list(self._call_chunks)
        if self._call_rows:
            cols = list(zip(*self._call_rows, strict=True))
            dtypes = (np.int64, np.int64, np.int64, bool, np.int64, bool, bool)
            chunks.append(tuple(np.array(c, dtype=d) for c, d in zip(cols, dtypes, strict=True)))
        if not chunks:
            return [np.zeros(0, dtype=np.int64)] * 7
        cols = [np.concatenate([c[i] for c in chunks]) for i in range(7)]
        t, caller, callee, answered, dur, sms, url = cols
        # a line held on a long call is busy for everyone else
        keep = np.ones(t.shape[0], dtype=bool)
        for line, t0, t1, other in self._busy:
            inside = (t > t0) & (t < t1)
            reached = inside & (callee == line) & (caller != other) & ~sms
            answered[reached] = False
            dur[reached] = 0
            keep &= ~(inside & (caller == line) & (callee != other) & ~sms)
        keep &= (t >= 0) & (t < self.clock.end)
        dur[~answered & ~sms] = 0
        return [c[keep] for c in (t, caller, callee, answered, dur, sms, url)]

    def write(self, events_path: Path, truth_path: Path, run_row: dict) -> dict[str, int]:
        """Writes the replay file and its truth; returns record counts per topic."""
        from .numbering import carrier_of

        fmt = self.clock.fmt
        ct, ccaller, ccallee, cans, cdur, csms, curl = self._call_columns()
        tx = self.transfer_columns()
        keep = tx["t"] < self.clock.end
        # txn ids in initiation order
        order = np.lexsort((np.arange(tx["t"].shape[0]), tx["t"]))
        order = order[keep[order]]
        txn_id = np.full(tx["t"].shape[0], "", dtype=object)
        banks = np.array(self.account_bank, dtype=object)
        for seq, h in enumerate(order):
            txn_id[h] = f"{banks[tx['payer'][h]]}{seq + 1:010d}"

        numbers = np.array(self.line_number, dtype=object)
        carriers = [carrier_of(n) for n in self.line_number]
        origin = self.line_origin
        accounts = self.account_number

        # one sort over everything: (time, topic rank, creation order)
        nt = order.shape[0]
        rec_t = np.array([r[0] for r in self.records], dtype=np.int64)
        rec_rank = np.array([TOPIC_RANK[r[1]] for r in self.records], dtype=np.int64)
        t_all = np.concatenate([ct, tx["t"][order], tx["t"][order] + tx["settle"][order], rec_t])
        rank = np.concatenate([np.full(ct.shape[0], 2), np.full(2 * nt, 3), rec_rank])
        src = np.concatenate(
            [
                np.zeros(ct.shape[0], np.int64),
                np.ones(nt, np.int64),
                np.full(nt, 2, np.int64),
                np.full(rec_t.shape[0], 3, np.int64),
            ]
        )
        idx = np.concatenate(
            [np.arange(ct.shape[0]), np.arange(nt), np.arange(nt), np.arange(rec_t.shape[0])]
        )
        final = np.lexsort((idx, src, rank, t_all))

        counts = {k: 0 for k in TOPIC_RANK}

        def resolve(v):
            if isinstance(v, At):
                return fmt(v.ms)
            if isinstance(v, Txn):
                return str(txn_id[v.handle])
            if isinstance(v, list):
                return [resolve(x) for x in v]
            return v

        with open(events_path, "wb") as out:
            buf: list[bytes] = []
            for k in final:
                s, i, t = src[k], idx[k], t_all[k]
                if s == 0:
                    caller, callee = int(ccaller[i]), int(ccallee[i])
                    counts["calls"] += 1
                    value = {
                        "event_id": f"cdr{counts['calls']:09d}",
                        "event_time": fmt(t),
                        "carrier": carriers[callee] or carriers[caller] or "CMCC",
                        "kind": "sms" if csms[i] else "voice",
                        "caller": numbers[caller],
                        "callee": numbers[callee],
                    }
                    if csms[i]:
                        value["duration_s"] = 0
                        value["caller_origin"] = origin[caller]
                        value["sms_has_url"] = bool(curl[i])
                    else:
                        value["answered"] = bool(cans[i])
                        value["duration_s"] = int(cdur[i])
                        value["caller_origin"] = origin[caller]
                    topic = "calls"
                elif s in (1, 2):
                    h = order[i]
                    payer, payee = int(tx["payer"][h]), int(tx["payee"][h])
                    counts["transactions"] += 1
                    status = "initiated" if s == 1 else ("completed" if tx["ok"][h] else "failed")
                    value = {
                        "event_id": f"txe{counts['transactions']:09d}",
                        "event_time": fmt(t),
                        "txn_id": txn_id[h],
                        "status": status,
                        "bank": banks[payer],
                        "payer_account": accounts[payer],
                        "payee_account": accounts[payee],
                        "payee_bank": banks[payee],
                        "amount_fen": int(tx["amount"][h]),
                        "currency": "CNY",
                        "channel": CHANNELS[tx["channel"][h]],
                    }
                    topic = "transactions"
                else:
                    _, topic, raw = self.records[i]
                    counts[topic] += 1
                    value = {"event_id": f"{_PREFIX[topic]}{counts[topic]:07d}", "event_time": fmt(t)}
                    if topic == "case-reports":
                        value["report_id"] = f"CR-{counts[topic]:06d}"
                    value.update({key: resolve(v) for key, v in raw.items()})
                buf.append(orjson.dumps({"topic": topic, "value": value}))
                if len(buf) >= 4096:
                    out.write(b"\n".join(buf) + b"\n")
                    buf = []
            if buf:
                out.write(b"\n".join(buf) + b"\n")

        rows = sorted(self.truth, key=lambda r: (r[0], r[1]))
        with open(truth_path, "wb") as out:
            out.write(orjson.dumps(run_row) + b"\n")
            for _, _, row in rows:
                out.write(orjson.dumps({k: resolve(v) for k, v in row.items()}) + b"\n")
        return counts


_PREFIX = {"registry": "reg", "watchlist": "wl", "case-reports": "case"}
