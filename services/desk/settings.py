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

from services.desk.users import User, demo_users, load_users
from streams import settings as stream_settings

log = logging.getLogger(__name__)

DEFAULT_DB = ".zt/desk.sqlite3"


@dataclass(frozen=True)
class DeskSettings:
    bootstrap: str
    database_url: str
    secret: str
    users: dict[str, User] = field(repr=False)
    group_id: str = "zt-desk"
    consume: bool = True  # tests of the API alone may run without a broker
    poll_ms: int = 2000  # how often the pages ask for new tasks
    session_max_age_s: int = 12 * 3600
    secure_cookies: bool = False  # set behind TLS


def database_url(db: str) -> str:
    if "://" in db:
        return db
    path = Path(db).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _desk_table(config: str | None) -> dict:
    return stream_settings.config_file(config).get("desk", {})


def load(bootstrap: str | None = None, db: str | None = None, users: str | None = None,
         secret: str | None = None, config: str | None = None, demo: bool = False,
         group_id: str | None = None) -> DeskSettings:
    conf = _desk_table(config)
    users_file = users or os.environ.get("ZT_DESK_USERS") or conf.get("users")
    if users_file:
        who = load_users(users_file)
    elif demo:
        who = demo_users()
    else:
        raise ValueError("no desk users configured: give --users FILE (or ZT_DESK_USERS, or "
                         "[desk] users in zt.toml), or --demo for the demo logins")
    key = secret or os.environ.get("ZT_DESK_SECRET") or conf.get("secret")
    if not key:
        # Sessions then last as long as this process: fine for a demo, wrong for production.
        log.warning("no ZT_DESK_SECRET set: using a random session secret for this run")
        key = secrets.token_urlsafe(32)
    return DeskSettings(
        bootstrap=stream_settings.load(bootstrap, config).bootstrap,
        database_url=database_url(db or os.environ.get("ZT_DESK_DB") or conf.get("db")
                                  or DEFAULT_DB),
        secret=key,
        users=who,
        group_id=group_id or conf.get("group_id") or f"{os.environ.get('ZT_GROUP', 'zt')}-desk",
    )
