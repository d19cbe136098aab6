"""Fuzzing the desk's JSON API from its OpenAPI description: whatever comes in, no 5xx.

Every operation gets valid and invalid (negative) inputs, as each role, a bounded number of
examples each. (schemathesis' ``from_fixture`` does not work with pytest 9, so the operations'
strategies are driven by hypothesis directly.)
"""

from __future__ import annotations

import base64

import pytest
import requests
import schemathesis
from desk_fixtures import PASSWORD, Served, make_settings, task
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

D, B = "371602", "ICBC"
EXAMPLES = 10


@pytest.mark.parametrize("role", ["officer", "liaison", "ops"])
def test_no_server_errors(tmp_path, role: str) -> None:
    served = Served(make_settings(str(tmp_path / "desk.sqlite3"), "127.0.0.1:1", D, B))
    app, store = served.app, served.app.state.store
    seeded = []
    # Real ids too, so some cases reach claims and outcomes and not only "not found"; half the
    # calls claimed by the officer, so its outcomes can succeed.
    for i, rec in enumerate([task(D) for _ in range(30)] +
                            [task(D, "hold", bank=B) for _ in range(30)]):
        store.add_task(rec)
        seeded.append(rec["task_id"])
        if rec["action"] == "call" and i % 2:
            store.claim(app.state.settings.users["officer"], rec["task_id"])
    auth = {"Authorization": "Basic " + base64.b64encode(f"{role}:{PASSWORD}".encode()).decode()}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=auth)
    calls = 0
    http = requests.Session()
    with served:
        for result in schema.get_all_operations():
            op = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @given(case=op.as_strategy(generation_mode=mode))
                @settings(max_examples=EXAMPLES, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                def run(case) -> None:
                    nonlocal calls
                    params = case.path_parameters or {}
                    if "task_id" in params and len(str(case.body)) % 2:
                        params["task_id"] = seeded[len(str(case.query)) % len(seeded)]
                    response = case.call(base_url=served.url, session=http, headers=auth)
                    calls += 1
                    assert response.status_code < 500, (
                        f"{case.method} {case.formatted_path} {case.body!r}: {response.text}")
                    if response.status_code >= 400:
                        assert response.json()["detail"], "every error says what is wrong"

                run()
    assert calls >= EXAMPLES
