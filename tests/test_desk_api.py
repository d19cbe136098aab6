"""The desk's JSON API and pages through HTTP (in process): authentication, scoping, masking,
the audit log, problems for bad input, and metrics. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from desk_fixtures import basic, db_url, make_settings, postgres_url, task  # noqa: F401
from fastapi.testclient import TestClient

from services.desk.app import create_app
from services.desk.intake import TaskIntake
from services.desk.storage import TaskStore

D, B = "371602", "ICBC"
PHONE = "+8613912345678"


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:  # noqa: F811
    app = create_app(make_settings(db_url, "127.0.0.1:1", D, B))
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False,
                    headers={"Accept-Language": "en"}) as c:
        c.cookies.set("zt_desk_lang", "en")  # these tests read English; tests/test_desk_i18n.py Chinese
        yield c
    app.state.store.close()


def store_of(c: TestClient) -> TaskStore:
    return c.app.state.store  # type: ignore[attr-defined]


def add(c: TestClient, *recs: dict) -> list[str]:
    for r in recs:
        store_of(c).add_task(r)
    return [r["task_id"] for r in recs]


def test_every_route_needs_a_login(client: TestClient) -> None:
    for path in ("/api/me", "/api/desk/tasks", "/api/desk/tasks/x", "/api/bank/requests",
                 "/api/ops/overview", "/openapi.json", "/metrics"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"]
    assert client.get("/api/me", auth=("officer", "wrong")).status_code == 401
    assert client.post("/api/desk/tasks/x/claim").status_code == 401
    for page in ("/", "/desk", "/bank", "/ops", "/desk/tasks/x"):
        r = client.get(page)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), page
    assert client.get("/healthz").json() == {"status": "ok"}


def test_desk_sees_its_district_only(client: TestClient) -> None:
    mine, theirs = add(client, task(D), task("999999"))
    r = client.get("/api/desk/tasks", auth=basic("officer"))
    assert [t["task_id"] for t in r.json()] == [mine]
    r = client.get(f"/api/desk/tasks/{theirs}", auth=basic("officer"))
    assert r.status_code == 404 and "no task" in r.json()["detail"]
    assert client.post(f"/api/desk/tasks/{theirs}/claim", auth=basic("officer")).status_code == 404
    assert client.get(f"/api/desk/tasks/{mine}", auth=basic("other-desk")).status_code == 404
    # other roles may not use the desk's routes at all
    assert client.get("/api/desk/tasks", auth=basic("liaison")).status_code == 403
    assert client.get("/api/desk/tasks", auth=basic("ops")).status_code == 403


def test_phone_masked_until_claimed_by_you(client: TestClient) -> None:
    (tid,) = add(client, task(D, contact_msisdn=PHONE))
    masked = "+86139****5678"
    assert client.get("/api/desk/tasks", auth=basic("officer")).json()[0]["contact_msisdn"] == masked
    detail = client.get(f"/api/desk/tasks/{tid}", auth=basic("officer")).json()
    assert detail["contact_msisdn"] == masked and detail["phone_masked"]
    assert detail["reasons"][0]["label"] == "Called by a watch-listed number"
    claimed = client.post(f"/api/desk/tasks/{tid}/claim", auth=basic("officer")).json()
    assert claimed["contact_msisdn"] == PHONE and claimed["status"] == "claimed"
    assert client.get(f"/api/desk/tasks/{tid}", auth=basic("officer")).json()["contact_msisdn"] \
        == PHONE
    # still masked in the list, and for a colleague who did not claim it
    assert client.get("/api/desk/tasks", auth=basic("officer")).json()[0]["contact_msisdn"] == masked
    assert client.get(f"/api/desk/tasks/{tid}", auth=basic("officer2")).json()[
        "contact_msisdn"] == masked
    r = client.post(f"/api/desk/tasks/{tid}/claim", auth=basic("officer2"))
    assert r.status_code == 409 and "in the hands of officer" in r.json()["detail"]
    login(client, "officer")
    assert PHONE not in client.get("/desk").text


def test_outcome_and_audit_log(client: TestClient) -> None:
    (tid,) = add(client, task(D))
    client.post(f"/api/desk/tasks/{tid}/claim", auth=basic("officer"))
    r = client.post(f"/api/desk/tasks/{tid}/outcome", auth=basic("officer"),
                    json={"result": "dissuaded", "note": "she hung up on them"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["actor"] == f"desk:{D}" and out["result"] == "dissuaded" and not out["published"]
    again = client.post(f"/api/desk/tasks/{tid}/outcome", auth=basic("officer"),
                        json={"result": "refused"})
    assert again.status_code == 409
    assert client.get("/api/desk/tasks", auth=basic("officer")).json() == []
    done = client.get("/api/desk/tasks?include_done=true", auth=basic("officer")).json()
    assert done[0]["result"] == "dissuaded"
    log = [(a.user, a.role, a.what, a.task_id) for a in store_of(client).audit_log()]
    assert ("officer", f"desk:{D}", "claim", tid) in log
    assert ("officer", f"desk:{D}", "outcome", tid) in log
    reads = [a for a in store_of(client).audit_log() if a.what == "read" and a.task_id == tid]
    assert reads and reads[0].at_ms > 0


def test_liaison_sees_only_what_it_needs(client: TestClient) -> None:
    hold, other_bank, call = add(client, task(D, "hold", bank=B, amount_fen=4_800_000),
                                 task(D, "hold", bank="CCB"), task(D))
    rows = client.get("/api/bank/requests", auth=basic("liaison")).json()
    assert [r["task_id"] for r in rows] == [hold]
    row = rows[0]
    assert row["account"] == "6222***********3445" and row["amount_fen"] == 4_800_000
    for secret in ("person_id", "contact_msisdn", "district", "reasons", "episode_id"):
        assert secret not in row
    detail = client.get(f"/api/bank/requests/{hold}", auth=basic("liaison")).json()
    assert detail["account"] == "6222020200112233445" and "person_id" not in detail
    for tid in (other_bank, call):
        assert client.get(f"/api/bank/requests/{tid}", auth=basic("liaison")).status_code == 404
    assert client.get(f"/api/bank/requests/{hold}", auth=basic("other-bank")).status_code == 404
    log = [(a.user, a.what, a.task_id) for a in store_of(client).audit_log()]
    assert ("liaison", "read", hold) in log


def test_liaison_confirms_with_amount_or_reason(client: TestClient) -> None:
    hold, stop = add(client, task(D, "hold", bank=B), task(D, "stop_payment", bank=B))
    url = f"/api/bank/requests/{hold}/outcome"
    r = client.post(url, auth=basic("liaison"), json={"result": "held"})
    assert r.status_code == 422 and "amount" in r.json()["detail"]
    r = client.post(url, auth=basic("liaison"), json={"result": "held", "amount_fen": -1})
    assert r.status_code == 422 and "amount_fen" in r.json()["detail"]
    r = client.post(url, auth=basic("liaison"), json={"result": "held", "amount_fen": 4_800_000})
    assert r.status_code == 200 and r.json()["amount_fen"] == 4_800_000
    url = f"/api/bank/requests/{stop}/outcome"
    r = client.post(url, auth=basic("liaison"), json={"result": "failed"})
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    r = client.post(url, auth=basic("liaison"), json={"result": "failed", "note": "account closed"})
    assert r.status_code == 200 and r.json()["note"] == "account closed"


@pytest.mark.parametrize("body", [None, "not json", {"result": "held"}, {"result": 3},
                                  {"result": "dissuaded", "note": "x" * 2001},
                                  {"result": "dissuaded", "extra": 1}, [], {"result": None}])
def test_bad_input_is_a_4xx_problem(client: TestClient, body: object) -> None:
    (tid,) = add(client, task(D))
    client.post(f"/api/desk/tasks/{tid}/claim", auth=basic("officer"))
    kw = {"content": body} if isinstance(body, str) else {"json": body}
    r = client.post(f"/api/desk/tasks/{tid}/outcome", auth=basic("officer"), **kw)
    assert r.status_code == 422
    problem = r.json()
    assert problem["status"] == 422 and problem["title"] and problem["detail"]
    assert client.get("/api/desk/tasks/" + "x" * 200, auth=basic("officer")).status_code == 422
    assert client.get("/api/desk/tasks?limit=0", auth=basic("officer")).status_code == 422


def test_ops_reads_counts_only(client: TestClient) -> None:
    add(client, task(D), task(D, "hold", bank=B))
    ov = client.get("/api/ops/overview", auth=basic("ops")).json()
    assert sum(c["count"] for c in ov["tasks"]) == 2
    assert client.get("/api/bank/requests", auth=basic("ops")).status_code == 403
    login(client, "ops")
    assert client.get("/ops").status_code == 200


def test_metrics_for_ops(client: TestClient) -> None:
    add(client, task(D), task(D))
    assert client.get("/metrics", auth=basic("officer")).status_code == 403
    text = client.get("/metrics", auth=basic("ops")).text
    assert 'zt_desk_open_tasks{action="call"} 2.0' in text
    assert "zt_desk_tasks_stored_total" in text and "zt_desk_outcomes_published_total" in text
    assert "371602" not in text and "T-" not in text  # no districts, tasks or people as labels


def test_intake_counts_invalid_and_duplicate_records(client: TestClient) -> None:
    app = client.app
    intake = TaskIntake("127.0.0.1:1", app.state.store, app.state.metrics)
    rec = task(D)
    import orjson

    intake.handle(orjson.dumps(rec))
    intake.handle(orjson.dumps(rec))
    intake.handle(b"{not json")
    intake.handle(orjson.dumps({**task(D), "priority": 9}))
    intake.handle(orjson.dumps({k: v for k, v in task(D).items() if k != "contact_msisdn"}))
    intake.handle(orjson.dumps(task(D, "hold", amount_fen=2**63 + 5)))  # valid, past BIGINT
    assert (intake.stored, intake.duplicates, intake.rejected) == (1, 1, 4)
    text = client.get("/metrics", auth=basic("ops")).text
    assert 'zt_desk_tasks_rejected_total{reason="malformed"} 1.0' in text
    assert 'zt_desk_tasks_stored_total{action="call"} 1.0' in text
    assert "zt_desk_tasks_duplicate_total 1.0" in text
    assert 'zt_desk_tasks_rejected_total{reason="unstorable"} 1.0' in text


def login(c: TestClient, name: str, password: str = "test-pass") -> str:
    """Log in through the form; the client keeps the session cookie."""
    r = c.post("/login", data={"username": name, "password": password, "next": "/"})
    assert r.status_code == 303, r.text
    return r.cookies["zt_desk_session"]


def test_login_form_and_session(client: TestClient) -> None:
    r = client.post("/login", data={"username": "officer", "password": "nope"})
    assert r.status_code == 401 and "wrong user name or password" in r.text
    r = client.post("/login", data={"username": "officer", "password": "test-pass",
                                    "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.cookies["zt_desk_session"]
    client.cookies.delete("zt_desk_session")
    client.cookies.set("zt_desk_session", cookie[:-4] + "0000")  # forged signature
    assert client.get("/api/me").status_code == 401
    client.cookies.delete("zt_desk_session")
    client.cookies.set("zt_desk_session", cookie)
    assert client.get("/").headers["location"] == "/desk"
    assert client.get("/api/me").json()["role"] == f"desk:{D}"
    # a form without the session's CSRF token is refused
    (tid,) = add(client, task(D))
    r = client.post(f"/desk/tasks/{tid}/claim", data={"csrf": "x"})
    assert r.status_code == 403
    r = client.get("/bank")
    assert r.status_code == 403 and "bank login" in r.text
    log = [(a.user, a.what) for a in store_of(client).audit_log()]
    assert ("officer", "login_failed") in log and ("officer", "login") in log
