"""Checking passwords without letting anyone guess them: throttling, lockout, equal cost.

* A client (by address) gets ``client_burst`` password checks, refilled at ``client_per_min`` a
  minute; past that an attempt is refused before any hashing (429). A password verified before
  (an API client's HTTP Basic on every request) costs nothing and spends no budget.
* A user name with ``lock_after`` failures within ``lock_s`` seconds is locked for ``lock_s``:
  even the right password is refused until then (429). Unknown names are tracked the same way, so
  a lockout says nothing about whether a name exists.
* An unknown name is checked against a stand-in hash of the same cost as a real one.
* PBKDF2 runs on one thread of its own, off the request threads: guessing can slow logins, not
  the pages and the API of people already logged in. A password verified once is remembered as
  a keyed digest (memory only).

The state is per process (a service run as several replicas counts each one's attempts).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum

from services.desk.users import User, stand_in_hash, verify

MAX_TRACKED = 10_000  # names and clients remembered; the oldest are forgotten first


class Verdict(Enum):
    OK = "ok"
    FAILED = "failed"
    LOCKED = "locked"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class LoginPolicy:
    lock_after: int = 5
    lock_s: float = 900.0
    client_burst: int = 20
    client_per_min: float = 20.0


class _Bounded(OrderedDict):
    def touch(self, key: str, default: object) -> object:
        if key in self:
            self.move_to_end(key)
        else:
            self[key] = default
            while len(self) > MAX_TRACKED:
                self.popitem(last=False)
        return self[key]


class LoginGuard:
    def __init__(self, users: dict[str, User], policy: LoginPolicy | None = None):
        self.users = users
        self.policy = policy or LoginPolicy()
        self._stand_in = stand_in_hash(users)
        self._pepper = secrets.token_bytes(16)
        self._known: set[bytes] = set()
        self._failures: _Bounded = _Bounded()  # name -> deque of failure times
        self._locked: dict[str, float] = {}
        self._buckets: _Bounded = _Bounded()  # client -> [tokens, last refill]
        self._lock = threading.Lock()
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="desk-hash")

    def close(self) -> None:
        self._hasher.shutdown(wait=False, cancel_futures=True)

    # -- the budget -------------------------------------------------------------------------
    def _take_token(self, client: str, now: float) -> bool:
        p = self.policy
        bucket = self._buckets.touch(client, [float(p.client_burst), now])
        tokens = min(p.client_burst, bucket[0] + (now - bucket[1]) * p.client_per_min / 60.0)
        if tokens < 1.0:
            bucket[0], bucket[1] = tokens, now
            return False
        bucket[0], bucket[1] = tokens - 1.0, now
        return True

    def locked_for(self, name: str, now: float | None = None) -> float:
        """Seconds until ``name`` may try again (0: not locked)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            until = self._locked.get(name, 0.0)
            if until <= now:
                self._locked.pop(name, None)
                return 0.0
            return until - now

    def _failed(self, name: str, now: float) -> None:
        p = self.policy
        with self._lock:
            times = self._failures.touch(name, deque())
            times.append(now)
            while times and times[0] < now - p.lock_s:
                times.popleft()
            if len(times) >= p.lock_after:
                self._locked[name] = now + p.lock_s
                times.clear()

    def _quick(self, name: str, password: str) -> bytes:
        return hmac.new(self._pepper, f"{name}\x1f{password}".encode(), hashlib.sha256).digest()

    # -- checking ---------------------------------------------------------------------------
    async def check(self, name: str, password: str, client: str) -> tuple[Verdict, User | None]:
        now = time.monotonic()
        if self.locked_for(name, now):
            return Verdict.LOCKED, None
        user = self.users.get(name)
        quick = self._quick(name, password)
        if user is not None and quick in self._known:
            return Verdict.OK, user  # a password verified before: no hashing, no budget spent
        with self._lock:
            allowed = self._take_token(client, now)
        if not allowed:
            return Verdict.THROTTLED, None
        stored = user.password_hash if user is not None else self._stand_in
        good = await asyncio.get_running_loop().run_in_executor(self._hasher, verify,
                                                                password, stored)
        if good and user is not None:
            with self._lock:
                self._known.add(quick)
                self._failures.pop(name, None)
            return Verdict.OK, user
        self._failed(name, time.monotonic())
        return Verdict.FAILED, None
