"""Users and roles, and their passwords (PBKDF2, never stored in the clear).

Users come from a TOML file::

    [[user]]
    name = "desk-371602"
    role = "desk:371602"          # desk:<district>, supervisor:<district>, bank:<bank> or ops
    password_hash = "pbkdf2_sha256$200000$<salt hex>$<hash hex>"   # from `hash_password`

``password = "..."`` in the clear is accepted too, for demos only.

>>> u = User("desk-371602", "desk:371602", hash_password("pw", iterations=1000))
>>> (u.kind, u.scope, u.works_desk, verify("pw", u.password_hash), verify("no", u.password_hash))
('desk', '371602', True, True, False)
>>> User("sup-1", "supervisor:371602", "x").district
'371602'
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROLE = re.compile(r"^(desk|supervisor|bank):([A-Za-z0-9_.-]{1,64})$|^ops$")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # no ':' so it fits HTTP Basic
DEFAULT_ITERATIONS = 200_000
DEMO_ITERATIONS = 20_000

# Demo logins printed by `zt demo`; never use them outside a demo. `demo_users` adds a desk,
# a second officer and a supervisor for every district, and a liaison for every bank, it is given.
DEMO_DISTRICTS = ("371602", "371603")
DEMO_BANKS = ("ICBC", "CCB")
DEMO_PASSWORDS = {"desk": "demo-desk", "supervisor": "demo-super", "bank": "demo-bank",
                  "ops": "demo-ops"}


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def iterations_of(stored: str) -> int:
    try:
        return int(stored.split("$")[1])
    except (IndexError, ValueError):
        return DEFAULT_ITERATIONS


def verify(password: str, stored: str) -> bool:
    """Slow on purpose (PBKDF2); the caller runs it off the request threads (``logins``)."""
    try:
        algo, iters, salt, want = stored.split("$")
    except ValueError:
        return False
    if algo != "pbkdf2_sha256":
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iters))
    return hmac.compare_digest(got.hex(), want)


def stand_in_hash(users: dict[str, User]) -> str:
    """A hash of a random password at the users' usual cost: checked for an unknown name, so
    an unknown and a known name cost the same and cannot be told apart by timing."""
    common = Counter(iterations_of(u.password_hash) for u in users.values()).most_common(1)
    return hash_password(secrets.token_urlsafe(16), common[0][0] if common else DEFAULT_ITERATIONS)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"user name {self.name!r}: letters, digits, '_', '.', '-' only")
        if not ROLE.match(self.role):
            raise ValueError(f"user {self.name}: role {self.role!r} is not desk:<district>, "
                             "supervisor:<district>, bank:<bank> or ops")

    def __repr__(self) -> str:
        return f"User({self.name!r}, {self.role!r})"

    @property
    def kind(self) -> str:
        return self.role.split(":", 1)[0]

    @property
    def scope(self) -> str:
        """The district of a desk or a supervisor, the bank of a liaison, '' for ops."""
        return self.role.split(":", 1)[1] if ":" in self.role else ""

    @property
    def works_desk(self) -> bool:
        """Officers and their supervisors work the district's call and visit tasks."""
        return self.kind in ("desk", "supervisor")

    @property
    def district(self) -> str | None:
        return self.scope if self.works_desk else None

    @property
    def bank(self) -> str | None:
        return self.scope if self.kind == "bank" else None


def demo_users(districts: tuple[str, ...] = DEMO_DISTRICTS,
               banks: tuple[str, ...] = DEMO_BANKS) -> dict[str, User]:
    return {name: User(name, role, hash_password(pw, iterations=DEMO_ITERATIONS))
            for name, role, pw in demo_logins(districts, banks)}


def demo_logins(districts: tuple[str, ...] = DEMO_DISTRICTS,
                banks: tuple[str, ...] = DEMO_BANKS) -> list[tuple[str, str, str]]:
    """(name, role, password) of the demo logins: two officers and a supervisor a district, a
    liaison a bank, one ops."""
    out: list[tuple[str, str, str]] = []
    for d in districts:
        out += [(f"desk-{d}", f"desk:{d}", DEMO_PASSWORDS["desk"]),
                (f"desk-{d}-2", f"desk:{d}", DEMO_PASSWORDS["desk"]),
                (f"supervisor-{d}", f"supervisor:{d}", DEMO_PASSWORDS["supervisor"])]
    out += [(f"bank-{b.lower()}", f"bank:{b}", DEMO_PASSWORDS["bank"]) for b in banks]
    out.append(("ops", "ops", DEMO_PASSWORDS["ops"]))
    return out


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
            hash_password(entry["password"], iterations=DEMO_ITERATIONS)
            if "password" in entry else None)
        if not stored:
            raise ValueError(f"{path}: user {name} has no password_hash")
        users[name] = User(name, role, stored)
    if not users:
        raise ValueError(f"{path}: no [[user]] entries")
    return users


if __name__ == "__main__":  # python -m services.desk.users PASSWORD -> a password_hash line
    import sys

    print(hash_password(sys.argv[1]))
