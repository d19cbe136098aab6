"""Fixtures of the desk service's tests: real PostgreSQL, real Chromium, a served app.

PostgreSQL is a private cluster (initdb) of Debian's package on a free port of 127.0.0.1, with
its own role, password and database, stopped and deleted after the session; it never touches
the system cluster. Chromium is Debian's /usr/bin/chromium, driven by Playwright (no browser
download). Either is skipped only when it truly cannot run here, and never when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.desk.settings import DeskSettings, database_url
from services.desk.users import User, hash_password
from streams.broker import free_port
from streams.contract import example

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PASSWORD = "test-pass"


def unavailable(what: str) -> None:
    """Skip with the reason, except in CI, where a missing real part is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must run this test)")
    pytest.skip(what)


# -- users, tasks, settings -----------------------------------------------------------------
def users_for(district: str, bank: str) -> dict[str, User]:
    """A desk of ``district`` (two officers and their supervisor), a desk elsewhere, two
    liaisons of ``bank`` and one of another bank, and ops; all with PASSWORD. Cheap hashes:
    these are tests."""
    roles = {"officer": f"desk:{district}", "officer2": f"desk:{district}",
             "supervisor": f"supervisor:{district}", "other-desk": "desk:OTHER",
             "liaison": f"bank:{bank}", "liaison2": f"bank:{bank}",
             "other-bank": "bank:OTHERBANK", "ops": "ops"}
    return {n: User(n, r, hash_password(PASSWORD, iterations=1000)) for n, r in roles.items()}


def make_settings(db: str, bootstrap: str, district: str, bank: str, consume: bool = False,
                  group_id: str = "zt-desk", **over: Any) -> DeskSettings:
    """Settings of a test service: live pages look every 0.2 s, the dispatcher every 0.2 s."""
    return DeskSettings(bootstrap=bootstrap, database_url=database_url(db),
                        secret="test-secret-" + district, users=users_for(district, bank),
                        group_id=group_id, consume=consume, live_every_s=0.2,
                        dispatch_every_s=0.2, **over)


_seq = iter(range(10**9))


def task(district: str, action: str = "call", **over: Any) -> dict[str, Any]:
    """A contract-valid warning task for ``district``; ``over`` replaces fields."""
    rec = example("warning-tasks")
    n = next(_seq)
    rec.update(task_id=f"T-{district}-{n}", episode_id=f"E-{district}-{n}", district=district,
               action=action, person_id=f"P{n:07d}")
    if action in ("call", "visit"):
        for k in ("bank", "txn_id", "account", "amount_fen"):
            rec.pop(k, None)
        rec["contact_msisdn"] = "+8613912345678"
    rec.update(over)
    return rec


def basic(name: str) -> tuple[str, str]:
    return (name, PASSWORD)


@pytest.fixture
def who() -> dict[str, User]:
    """The test users of district 371602 and bank ICBC (``users_for``)."""
    return users_for("371602", "ICBC")


# -- PostgreSQL -------------------------------------------------------------------------------
def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _install_postgresql() -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
                   env=env, capture_output=True, timeout=300, check=False)


class PrivatePostgres:
    """initdb + pg_ctl on 127.0.0.1:<free port>; a role and a database with a password."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="zt-desk-pg-"))
        self.data = self.dir / "data"
        self.owner = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.owner:  # the server refuses to run as root
            cmd = ["runuser", "-u", self.owner, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True, **kw)

    def start(self) -> str:
        if self.owner:
            pw = pwd.getpwnam(self.owner)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                f"-c unix_socket_directories={self.dir} -c fsync=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"),
                  "-w", "-t", "30", "start")
        sql = ("CREATE ROLE zt LOGIN PASSWORD 'zt-test';"
               "CREATE DATABASE zt_desk OWNER zt;")
        for stmt in sql.split(";")[:-1]:
            self._run("psql", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres",
                      "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", stmt)
        return f"postgresql+psycopg://zt:zt-test@127.0.0.1:{self.port}/zt_desk"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bindir = _pg_bin()
    if bindir is None:
        _install_postgresql()
        bindir = _pg_bin()
    if bindir is None:
        unavailable("PostgreSQL is not installed and could not be (apt-get install postgresql)")
    pg = PrivatePostgres(bindir)
    try:
        url = pg.start()
    except (subprocess.CalledProcessError, OSError) as e:
        pg.stop()
        err = getattr(e, "stderr", "") or str(e)
        unavailable(f"PostgreSQL could not be started: {err.strip()[:500]}")
    yield url
    pg.stop()


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a SQLite file and on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "desk.sqlite3")
    url = request.getfixturevalue("postgres_url")
    _reset_postgres(url)
    return url


# -- a served app -----------------------------------------------------------------------------
class Served:
    def __init__(self, settings: DeskSettings):
        import uvicorn

        from services.desk.app import create_app

        self.settings = settings
        self.app = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the desk service did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.app.state.stopping.set()  # open live streams end at once
        self.server.should_exit = True
        self.thread.join(15)


def with_settings(s: DeskSettings, **changes: Any) -> DeskSettings:
    return dataclasses.replace(s, **changes)


# -- Chromium ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium context (Debian's binary, a new user-data-dir) for the session.

    While it lives, Playwright's sync API keeps an asyncio loop running in the main thread, so
    a test after it cannot ``asyncio.run()`` in-process (tests/test_idle_partitions.py steps
    its coroutine by hand for that reason)."""
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (extra 'dev')")
    pw = sync_playwright().start()
    try:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=CHROMIUM_ARGS, timeout=30_000)
    except Exception as e:
        pw.stop()
        unavailable(f"Chromium could not be started: {e}")
    context.set_default_timeout(15_000)
    yield context
    context.close()
    pw.stop()


# -- the broker's side ----------------------------------------------------------------------
def produce(bootstrap: str, records: list[Any], topic: str = "warning-tasks") -> None:
    """Send records (dicts as JSON, bytes as they are) keyed by task_id, and wait for acks."""
    import orjson
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for rec in records:
            raw = rec if isinstance(rec, bytes) else orjson.dumps(rec)
            key = rec.get("task_id", "x").encode() if isinstance(rec, dict) else b"bad"
            producer.send(topic, key=key, value=raw).get(timeout=10)
    finally:
        producer.close(timeout=5)


def outcomes_for(bootstrap: str, task_id: str, timeout_s: float = 20.0) -> list[bytes]:
    """The raw task-outcomes records about ``task_id`` (reads the topic from the start)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=500)
    try:
        parts = consumer.partitions_for_topic("task-outcomes") or {0}
        tps = [TopicPartition("task-outcomes", p) for p in parts]
        consumer.assign(tps)  # no group: nothing to join, and nothing committed
        consumer.seek_to_beginning(*tps)
        found: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while not found and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=300).values():
                found += [r.value for r in recs if r.key == task_id.encode()]
        return found
    finally:
        consumer.close()


def wait_for(check: Any, timeout_s: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture
def store(db_url: str) -> Iterator[Any]:
    """A TaskStore on SQLite, then on PostgreSQL (``db_url``)."""
    from services.desk.storage import TaskStore

    s = TaskStore(database_url(db_url))
    yield s
    s.close()
