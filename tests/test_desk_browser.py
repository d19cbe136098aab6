"""Desk officers and bank liaisons in a real headless Chromium, against the real broker."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from desk_fixtures import (  # noqa: F401
    PASSWORD,
    Served,
    chromium,
    make_settings,
    outcomes_for,
    produce,
    task,
)

from streams.contract import check

pytestmark = pytest.mark.integration
PHONE = "+8613987654321"


@pytest.fixture
def desk(broker, unique: str, tmp_path) -> Iterator[Served]:
    settings = make_settings(str(tmp_path / "desk.sqlite3"), broker.bootstrap, f"D{unique}",
                             f"B{unique}", consume=True, group_id=f"zt-desk-{unique}",
                             auto_assign=False)
    with Served(settings) as served:
        served.district, served.bank = f"D{unique}", f"B{unique}"
        yield served


@pytest.fixture
def page(chromium):  # noqa: F811
    chromium.clear_cookies()
    p = chromium.new_page()
    yield p
    p.close()


def log_in(page, desk: Served, name: str, start: str) -> None:
    page.goto(desk.url + start)
    assert "/login" in page.url  # nothing without a login
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(desk.url + start)


def test_officer_sees_new_task_claims_it_and_dissuades(page, desk: Served, broker) -> None:
    log_in(page, desk, "officer", "/desk")
    rec = task(desk.district, contact_msisdn=PHONE, priority=1)
    produce(broker.bootstrap, [rec])  # after the page loaded: it must appear by itself
    row = page.locator(f"tr[data-task-id='{rec['task_id']}']")
    row.wait_for()
    assert "+86139****4321" in row.inner_text() and PHONE not in page.content()
    assert "逾期" in row.locator(".countdown").inner_text()  # the test task's due time is past
    row.locator("a").click()
    page.wait_for_url(f"**/desk/tasks/{rec['task_id']}")
    assert "接到涉诈号码来电" in page.content()
    assert PHONE not in page.locator("#phone").inner_text()
    page.click("#claim")
    page.locator("#record").wait_for()
    assert page.locator("#phone").inner_text().startswith(PHONE)
    page.check("input[value=dissuaded]")
    page.fill("form.outcome textarea[name=note]", "agreed not to pay")
    page.click("#record")
    assert "劝阻成功" in page.locator("#outcome").inner_text()

    (raw,) = outcomes_for(broker.bootstrap, rec["task_id"])
    got = check("task-outcomes", raw)
    assert got.ok, got.reason
    assert got.value["result"] == "dissuaded" and got.value["actor"] == f"desk:{desk.district}"
    assert got.value["note"] == "agreed not to pay"


def test_liaison_confirms_a_hold_with_an_amount(page, desk: Served, broker) -> None:
    rec = task(desk.district, "hold", bank=desk.bank, amount_fen=4_800_000)
    log_in(page, desk, "liaison", "/bank")
    produce(broker.bootstrap, [rec])
    row = page.locator(f"tr[data-task-id='{rec['task_id']}']")
    row.wait_for()
    assert "48,000.00 元" in row.inner_text() and "6222***********3445" in row.inner_text()
    row.locator("a").click()
    page.wait_for_url(f"**/bank/requests/{rec['task_id']}")
    assert page.locator("#account").inner_text() == rec["account"]
    assert "+86" not in page.content() and rec["person_id"] not in page.content()
    page.check("input[value=held]")
    page.fill("#amount", "48000")
    page.click("#confirm")
    assert "48,000.00 元" in page.locator("#outcome").inner_text()

    (raw,) = outcomes_for(broker.bootstrap, rec["task_id"])
    value = orjson.loads(raw)
    assert check("task-outcomes", raw).ok
    assert (value["result"], value["amount_fen"], value["actor"]) == (
        "held", 4_800_000, f"bank:{desk.bank}")


def test_desk_cannot_open_another_districts_task(page, desk: Served) -> None:
    theirs = task("OTHER", contact_msisdn=PHONE)
    desk.app.state.store.add_task(theirs)
    log_in(page, desk, "officer", "/desk")
    resp = page.goto(f"{desk.url}/desk/tasks/{theirs['task_id']}")
    assert resp is not None and resp.status == 404
    assert "未找到" in page.content()
    assert theirs["person_id"] not in page.content() and "4321" not in page.content()
    assert page.locator(f"tr[data-task-id='{theirs['task_id']}']").count() == 0
