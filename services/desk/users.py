"""Users and roles, and their passwords (PBKDF2, never stored in the clear).

Users come from a TOML file::

    [[user]]
    name = "desk-371602"
    role = "desk:371602"
    password_hash = "pbkdf2_sha256$200000$<salt hex>$<hash hex>"   # from `hash_password`

``password = "..."`` in the clear is accepted too, for demos only.

>>> u = User("desk-371602", "desk:371602", hash_password("pw", iterations=1000))
>>> (u.kind, u.scope, u.check("pw"), u.check("nope"))
('desk', '371602', True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROLE = re.compile(r"^(desk|bank):([A-Za-z0-9_.-]{1,64})$|^ops$")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # no ':' so it fits HTTP Basic

# Demo logins printed by `zt demo`; never use them outside a demo.
DEMO = (
    ("desk-371602", "desk:371602", "demo-desk"),
    ("desk-371603", "desk:371603", "demo-desk"),
    ("bank-icbc", "bank:ICBC", "demo-bank"),
    ("bank-ccb", "bank:CCB", "demo-bank"),
    ("ops", "ops", "demo-ops"),
)


def hash_password(password: str, iterations: int = 200_000) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def _verify(password: str, stored: str) -> bool:
    try:
        algo, iters, salt, want = stored.split("$")
    except ValueError:
        return False
    if algo != "pbkdf2_sha256":
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iters))
    return hmac.compare_digest(got.hex(), want)


@dataclass
class User:
    name: str
    role: str
    password_hash: str
    # PBKDF2 is slow on purpose; an API client sends Basic on every request, so a password
    # already verified once is remembered as a fast keyed digest (memory only).
    _known: set[bytes] = field(default_factory=set, repr=False)
    _pepper: bytes = field(default_factory=lambda: secrets.token_bytes(16), repr=False)

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"user name {self.name!r}: letters, digits, '_', '.', '-' only")
        if not ROLE.match(self.role):
            raise ValueError(f"user {self.name}: role {self.role!r} is not desk:<district>, "
                             "bank:<bank> or ops")

    @property
    def kind(self) -> str:
        return self.role.split(":", 1)[0]

    @property
    def scope(self) -> str:
        """The district of a desk, the bank of a liaison, '' for ops."""
        return self.role.split(":", 1)[1] if ":" in self.role else ""

    def check(self, password: str) -> bool:
        quick = hmac.new(self._pepper, password.encode(), "sha256").digest()
        if quick in self._known:
            return True
        if _verify(password, self.password_hash):
            self._known.add(quick)
            return True
        return False


def demo_users() -> dict[str, User]:
    return {n: User(n, r, hash_password(p, iterations=20_000)) for n, r, p in DEMO}


def load_users(path: str | Path) -> dict[str, User]:
    """Read users from a TOML file; raise ValueError with the reason when it is wrong."""
    with Path(path).open("rb") as f:
        data = tomllib.load(f)
    users: dict[str, User] = {}
    for entry in data.get("user", []):
        name, role = entry.get("name"), entry.get("role")
        if not name or not role:
            raise ValueError(f"{path}: every [[user]] needs a name and a role")
        stored = entry.get("password_hash") or (
            hash_password(entry["password"], iterations=20_000) if "password" in entry else None)
        if not stored:
            raise ValueError(f"{path}: user {name} has no password_hash")
        users[name] = User(name, role, stored)
    if not users:
        raise ValueError(f"{path}: no [[user]] entries")
    return users


if __name__ == "__main__":  # python -m services.desk.users PASSWORD -> a password_hash line
    import sys

    print(hash_password(sys.argv[1]))
