"""The desk service's defences, each a gap found by probing it as an attacker would (issue 21):
login throttling and lockout with every failure audited (form and HTTP Basic), the same cost
for unknown and known names, password hashing off the request threads, Secure cookies,
security headers on every response, no state change from another site (CSRF), and the
documented scope of hold tasks."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

import pytest
from desk_fixtures import PASSWORD, basic, make_settings, task
from fastapi.testclient import TestClient

import services.desk.users as users_module
from services.desk.app import create_app
from services.desk.auth import COOKIE, csrf_token
from services.desk.logins import LoginPolicy
from services.desk.settings import load

D, B = "371602", "ICBC"


def make_client(tmp_path, **over) -> TestClient:
    app = create_app(make_settings(str(tmp_path / "desk.sqlite3"), "127.0.0.1:1", D, B, **over))
    c = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False,
                   headers={"Accept-Language": "en"})
    c.cookies.set("zt_desk_lang", "en")
    return c


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    with make_client(tmp_path) as c:
        yield c


def audit(c: TestClient) -> list[tuple[str, str, str | None]]:
    return [(a.user, a.what, a.detail) for a in c.app.state.store.audit_log()]


def form_login(c: TestClient, name: str, password: str):
    return c.post("/login", data={"username": name, "password": password, "next": "/"})


@pytest.fixture
def hashing(monkeypatch) -> list[tuple[int, str]]:
    """Every PBKDF2 the service runs: (iterations, thread name)."""
    calls: list[tuple[int, str]] = []
    real = hashlib.pbkdf2_hmac

    def counted(name, password, salt, iterations, *a):
        calls.append((iterations, threading.current_thread().name))
        return real(name, password, salt, iterations, *a)

    monkeypatch.setattr(users_module.hashlib, "pbkdf2_hmac", counted)
    return calls


def test_wrong_passwords_lock_the_name_even_for_the_right_one(tmp_path) -> None:
    with make_client(tmp_path, logins=LoginPolicy(lock_after=5, lock_s=600)) as c:
        for _ in range(5):
            assert form_login(c, "officer", "guess").status_code == 401
        r = form_login(c, "officer", PASSWORD)
        assert r.status_code == 429 and "too many failed logins" in r.text
        assert int(r.headers["Retry-After"]) > 500
        assert c.get("/api/me", auth=basic("officer")).status_code == 429  # Basic too
        log = audit(c)
        assert [w for _, w, _ in log].count("login_failed") == 5
        assert ("officer", "login_locked", "form from testclient") in log
        assert ("officer", "login_locked", "basic from testclient") in log
        assert ("officer", "login") not in [(u, w) for u, w, _ in log]
        # the colleague is not locked out
        assert c.get("/api/me", auth=basic("officer2")).status_code == 200


def test_a_lock_ends(tmp_path) -> None:
    import time

    with make_client(tmp_path, logins=LoginPolicy(lock_after=2, lock_s=0.5)) as c:
        for _ in range(2):
            form_login(c, "officer", "guess")
        assert form_login(c, "officer", PASSWORD).status_code == 429
        time.sleep(0.6)
        assert form_login(c, "officer", PASSWORD).status_code == 303


def test_basic_failures_are_counted_and_audited(client: TestClient) -> None:
    for _ in range(3):
        assert client.get("/api/desk/tasks", auth=("officer", "nope")).status_code == 401
    assert client.get("/api/me", auth=("nobody", "nope")).status_code == 401
    log = audit(client)
    assert log.count(("officer", "login_failed", "basic from testclient")) == 3
    assert ("nobody", "login_failed", "basic from testclient") in log
    text = client.get("/metrics", auth=basic("ops")).text
    assert 'zt_desk_logins_total{result="failed"} 4.0' in text


def test_unknown_names_cost_what_known_names_cost_off_the_request_threads(
        client: TestClient, hashing: list[tuple[int, str]]) -> None:
    known = users_module.iterations_of(client.app.state.settings.users["officer"].password_hash)
    form_login(client, "officer", "wrong")
    form_login(client, "no-such-user", "wrong")
    client.get("/api/me", auth=("no-such-user-2", "wrong"))
    assert [n for n, _ in hashing] == [known, known, known]
    assert all(t.startswith("desk-hash") for _, t in hashing), hashing


def test_a_client_guessing_many_names_is_throttled_before_any_hashing(
        tmp_path, hashing: list[tuple[int, str]]) -> None:
    with make_client(tmp_path, logins=LoginPolicy(client_burst=5, client_per_min=1)) as c:
        hashing.clear()  # the test users' own hashes
        codes = [form_login(c, f"name-{i}", "guess").status_code for i in range(8)]
        assert codes == [401] * 5 + [429] * 3
        assert len(hashing) == 5
        assert [w for _, w, _ in audit(c)].count("login_throttled") == 3


def test_an_api_client_with_the_right_password_spends_no_budget(
        tmp_path, hashing: list[tuple[int, str]]) -> None:
    with make_client(tmp_path, logins=LoginPolicy(client_burst=3, client_per_min=1)) as c:
        hashing.clear()
        for _ in range(30):
            assert c.get("/api/desk/tasks", auth=basic("officer")).status_code == 200
        assert len(hashing) == 1  # verified once, then remembered


def test_secure_cookies_by_default_off_loopback(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("ZT_DESK_SECURE_COOKIES", raising=False)
    kw = {"demo": True, "db": str(tmp_path / "d.sqlite3"), "secret": "k"}
    assert load(host="127.0.0.1", **kw).secure_cookies is False
    assert load(host="10.1.2.3", **kw).secure_cookies is True
    assert load(host="0.0.0.0", **kw).secure_cookies is True
    assert load(host="10.1.2.3", secure_cookies=False, **kw).secure_cookies is False
    monkeypatch.setenv("ZT_DESK_SECURE_COOKIES", "on")
    assert load(host="127.0.0.1", **kw).secure_cookies is True
    with make_client(tmp_path, secure_cookies=True) as c:
        cookie = form_login(c, "officer", PASSWORD).headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_security_headers_on_every_response(client: TestClient) -> None:
    client.app.state.store.add_task(rec := task(D))
    cookie = form_login(client, "officer", PASSWORD).cookies[COOKIE]
    client.cookies.set(COOKIE, cookie)
    responses = [client.get(p) for p in ("/login", "/desk", f"/desk/tasks/{rec['task_id']}",
                                         "/desk/tasks/nope", "/api/desk/tasks", "/api/nope",
                                         "/healthz", "/static/desk.js")]
    responses.append(client.post("/api/desk/tasks/x/claim"))  # refused: no CSRF token
    for r in responses:
        h = r.headers
        assert "frame-ancestors 'none'" in h["content-security-policy"], r.url
        assert "script-src 'self'" in h["content-security-policy"]
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "same-origin"
        if "/static/" not in str(r.url):
            assert h["cache-control"] == "no-store", r.url


def test_a_session_cannot_change_anything_without_the_csrf_token(client: TestClient) -> None:
    (rec,) = [task(D)]
    client.app.state.store.add_task(rec)
    cookie = form_login(client, "officer", PASSWORD).cookies[COOKIE]
    client.cookies.set(COOKIE, cookie)
    url = f"/api/desk/tasks/{rec['task_id']}/claim"
    r = client.post(url)  # what a cross-site form riding on the cookie would send
    assert r.status_code == 403 and "reload" in r.json()["detail"]
    r = client.post(url, headers={"X-CSRF-Token": "0" * 32})
    assert r.status_code == 403
    token = csrf_token(client.app.state.settings.secret, cookie)
    r = client.post(url, headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and r.json()["claimed_by"] == "officer"
    assert client.get("/api/desk/tasks").status_code == 200  # reading needs no token


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1.evil.example"])
def test_no_state_change_from_another_site(client: TestClient, origin: str) -> None:
    rec = task(D)
    client.app.state.store.add_task(rec)
    url = f"/api/desk/tasks/{rec['task_id']}/claim"
    r = client.post(url, auth=basic("officer"), headers={"Origin": origin})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    r = client.post("/login", data={"username": "officer", "password": PASSWORD},
                    headers={"Origin": origin})
    assert r.status_code == 403
    r = client.post(url, auth=basic("officer"), headers={"Referer": origin + "/x"})
    assert r.status_code == 403
    assert client.get(f"/api/desk/tasks/{rec['task_id']}",
                      auth=basic("officer")).json()["status"] == "open"
    r = client.post(url, auth=basic("officer"), headers={"Origin": "http://127.0.0.1"})
    assert r.status_code == 200


def test_a_desk_cannot_read_its_districts_hold_tasks(client: TestClient) -> None:
    hold = task(D, "hold", bank=B, amount_fen=814_900)
    client.app.state.store.add_task(hold)
    tid = hold["task_id"]
    assert client.get(f"/api/desk/tasks/{tid}", auth=basic("officer")).status_code == 404
    assert client.get(f"/api/desk/tasks/{tid}", auth=basic("supervisor")).status_code == 404
    assert client.get("/api/desk/tasks?view=all", auth=basic("officer")).json() == []
    assert client.post(f"/api/desk/tasks/{tid}/claim", auth=basic("officer")).status_code == 404
    client.cookies.set(COOKIE, form_login(client, "officer", PASSWORD).cookies[COOKIE])
    r = client.get(f"/desk/tasks/{tid}")
    assert r.status_code == 404 and hold["account"] not in r.text
    assert client.get(f"/api/bank/requests/{tid}", auth=basic("liaison")).status_code == 200


def test_a_bank_cannot_report_more_than_was_requested(client: TestClient) -> None:
    hold = task(D, "hold", bank=B, amount_fen=814_900)
    stop = task(D, "stop_payment", bank=B, amount_fen=7_091_400)
    for r in (hold, stop):
        client.app.state.store.add_task(r)
    url = f"/api/bank/requests/{hold['task_id']}/outcome"
    r = client.post(url, auth=basic("liaison"),
                    json={"result": "held", "amount_fen": 9_999_999_900})
    assert r.status_code == 422 and "at most 8,149.00 CNY was requested" in r.json()["detail"]
    r = client.post(url, auth=basic("liaison"), json={"result": "held", "amount_fen": 0})
    assert r.status_code == 422 and "'failed'" in r.json()["detail"]
    r = client.post(f"/api/bank/requests/{stop['task_id']}/outcome", auth=basic("liaison"),
                    json={"result": "stopped", "amount_fen": 10**14})
    assert r.status_code == 422
    ov = client.get("/api/ops/overview", auth=basic("ops")).json()
    assert ov["outcomes"] == []  # nothing over-claimed reached ops' figures
    r = client.post(url, auth=basic("liaison"), json={"result": "held", "amount_fen": 500_000})
    assert r.status_code == 200 and r.json()["amount_fen"] == 500_000  # less is fine
    # the page says it in the liaison's language and keeps what was typed
    cookie = form_login(client, "liaison", PASSWORD).cookies[COOKIE]  # the client keeps it
    client.cookies.set("zt_desk_lang", "zh_CN")
    page = client.post(f"/bank/requests/{stop['task_id']}/outcome",
                       data={"csrf": csrf_token(client.app.state.settings.secret, cookie),
                             "result": "stopped", "amount_yuan": "80000", "note": "核实中"})
    assert page.status_code == 422
    assert "请求金额为 70,914.00 元：银行可登记更少，不能更多" in page.text
    assert 'value="80000"' in page.text and "核实中" in page.text
