"""The desk service's settings: a flag beats ``ZT_DESK_*`` variables, which beat the ``[desk]``
table of the config file (``zt.toml``), which beats the defaults.

``db`` is a file path (SQLite) or a SQLAlchemy URL, e.g.
``postgresql+psycopg://zt:secret@127.0.0.1:5432/zt_desk``.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from services.desk.clock import MODES
from services.desk.logins import LoginPolicy
from services.desk.users import DEMO_BANKS, DEMO_DISTRICTS, User, demo_users, load_users
from streams import settings as stream_settings

log = logging.getLogger(__name__)

DEFAULT_DB = ".zt/desk.sqlite3"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class DeskSettings:
    bootstrap: str
    database_url: str
    secret: str
    users: dict[str, User] = field(repr=False)
    group_id: str = "zt-desk"
    consume: bool = True  # tests of the API alone may run without a broker
    session_max_age_s: int = 12 * 3600
    secure_cookies: bool = False  # on by default outside loopback (``load``)
    clock: str = "wall"  # wall | stream (``services.desk.clock``)
    auto_assign: bool = True
    dispatch_every_s: float = 2.0
    live_every_s: float = 1.0  # how often a live page's stream looks for changes
    logins: LoginPolicy = field(default_factory=LoginPolicy)


def database_url(db: str) -> str:
    if "://" in db:
        return db
    path = Path(db).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _desk_table(config: str | None) -> dict:
    return stream_settings.config_file(config).get("desk", {})


def _flag(text: str | bool | None) -> bool | None:
    if text is None or isinstance(text, bool):
        return text
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not on or off")


def _names(text: str | list[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if not text:
        return default
    items = text if isinstance(text, list) else text.split(",")
    return tuple(dict.fromkeys(i.strip() for i in items if i.strip()))


def load(bootstrap: str | None = None, db: str | None = None, users: str | None = None,
         secret: str | None = None, config: str | None = None, demo: bool = False,
         group_id: str | None = None, host: str = "127.0.0.1",
         secure_cookies: bool | None = None, clock: str | None = None,
         demo_districts: str | None = None, demo_banks: str | None = None) -> DeskSettings:
    conf = _desk_table(config)
    users_file = users or os.environ.get("ZT_DESK_USERS") or conf.get("users")
    if users_file:
        who = load_users(users_file)
    elif demo:
        who = demo_users(
            _names(demo_districts or os.environ.get("ZT_DESK_DEMO_DISTRICTS")
                   or conf.get("demo_districts"), DEMO_DISTRICTS),
            _names(demo_banks or os.environ.get("ZT_DESK_DEMO_BANKS") or conf.get("demo_banks"),
                   DEMO_BANKS))
    else:
        raise ValueError("no desk users configured: give --users FILE (or ZT_DESK_USERS, or "
                         "[desk] users in zt.toml), or --demo for the demo logins")
    key = secret or os.environ.get("ZT_DESK_SECRET") or conf.get("secret")
    if not key:
        # Sessions then last as long as this process: fine for a demo, wrong for production.
        log.warning("no ZT_DESK_SECRET set: using a random session secret for this run")
        key = secrets.token_urlsafe(32)
    secure = next((v for v in (_flag(secure_cookies),
                               _flag(os.environ.get("ZT_DESK_SECURE_COOKIES")),
                               _flag(conf.get("secure_cookies"))) if v is not None),
                  host not in LOOPBACK)  # a cookie sent in the clear off this machine: never
    mode = clock or os.environ.get("ZT_DESK_CLOCK") or conf.get("clock") or "wall"
    if mode not in MODES:
        raise ValueError(f"desk clock {mode!r}: wall (live operation) or stream (a replayed or "
                         "simulated past)")
    return DeskSettings(
        bootstrap=stream_settings.load(bootstrap, config).bootstrap,
        database_url=database_url(db or os.environ.get("ZT_DESK_DB") or conf.get("db")
                                  or DEFAULT_DB),
        secret=key,
        users=who,
        group_id=group_id or conf.get("group_id") or f"{os.environ.get('ZT_GROUP', 'zt')}-desk",
        secure_cookies=secure,
        clock=mode,
    )
