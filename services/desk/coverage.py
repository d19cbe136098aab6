"""Is every open task seen by someone? A task belongs to its district's desks (calls, visits)
or its bank's liaisons (holds, stop-payments); it is uncovered when no user has that district or
bank (``no_user``: a configuration gap) or none of them is on shift (``no_one_on_shift``).

The gauge ``zt_desk_uncovered_tasks`` and the ops board read this; alerts fire on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.desk.models import Task
from services.desk.storage import scope_of
from services.desk.users import User

WHY = ("no_user", "no_one_on_shift")
ROLES = ("desk", "bank")


@dataclass
class Gap:
    role: str  # desk or bank
    scope: str  # the district or the bank
    why: str
    tasks: int
    oldest_created_ms: int


def gaps(tasks: Iterable[Task], users: dict[str, User], on_shift: set[str]) -> list[Gap]:
    """Uncovered open tasks, grouped by district or bank."""
    staff: dict[tuple[str, str], set[str]] = {}
    for u in users.values():
        if u.works_desk or u.kind == "bank":
            staff.setdefault(("bank" if u.kind == "bank" else "desk", u.scope), set()).add(u.name)
    found: dict[tuple[str, str], Gap] = {}
    for t in tasks:
        if t.status == "done":
            continue
        key = scope_of(t)
        names = staff.get(key)
        why = "no_user" if not names else ("no_one_on_shift" if not names & on_shift else None)
        if why is None:
            continue
        gap = found.setdefault(key, Gap(key[0], key[1], why, 0, t.created_ms))
        gap.tasks += 1
        gap.oldest_created_ms = min(gap.oldest_created_ms, t.created_ms)
    return sorted(found.values(), key=lambda g: (WHY.index(g.why), g.role, g.scope))


def uncovered(found: list[Gap]) -> dict[tuple[str, str], int]:
    """(role, why) -> open tasks, every pair present (0 where none)."""
    out = {(r, w): 0 for r in ROLES for w in WHY}
    for g in found:
        out[(g.role, g.why)] += g.tasks
    return out
