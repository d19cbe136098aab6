"""A shift at the desk in a real headless Chromium (Debian's), against the real broker: a police
officer, a supervisor, a bank liaison and ops, each in Chinese and in English, on a desktop
(1366 px) and on a phone (390 px). Live pages without reloading, the alerts of a new
priority-1 task, the work itself, and what a phone needs (cards, 44 px targets, tel: links).

With ``ZT_DESK_SCREENSHOTS=DIR`` the tests also save the main pages there (docs/img/desk_*.png
come from such a run)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests
from desk_fixtures import (  # noqa: F401
    PASSWORD,
    Served,
    chromium,
    make_settings,
    outcomes_for,
    produce,
    task,
    wait_for,
)

from services.desk.i18n import Words
from services.desk.storage import now_ms
from streams.contract import check
from streams.eventtime import fmt

pytestmark = pytest.mark.integration
PHONE = "+8613987654321"
COMBOS = [("zh_CN", 1366), ("zh_CN", 390), ("en", 1366), ("en", 390)]
SHOTS = os.environ.get("ZT_DESK_SCREENSHOTS")


@pytest.fixture(scope="module")
def desk(broker, tmp_path_factory) -> Iterator[Served]:
    import uuid

    unique = uuid.uuid4().hex[:8]
    district, bank = f"D{unique}", f"B{unique}"
    settings = make_settings(str(tmp_path_factory.mktemp("desk") / "desk.sqlite3"),
                             broker.bootstrap, district, bank, consume=True,
                             group_id=f"zt-desk-{unique}")
    with Served(settings) as served:
        served.district, served.bank = district, bank
        wait_for(lambda: served.app.state.intake.ready.is_set(), what="the intake's partitions")
        yield served


@pytest.fixture
def page_for(chromium, desk):  # noqa: F811
    pages = []

    def make(lang: str, width: int):
        chromium.clear_cookies()
        chromium.grant_permissions(["notifications"], origin=desk.url)
        p = chromium.new_page()
        p.set_viewport_size({"width": width, "height": 900 if width > 500 else 844})
        if lang != "zh_CN":
            p.goto(f"{desk.url}/login?lang={lang}")
        pages.append(p)
        return p

    yield make
    for p in pages:
        p.close()


def api(desk: Served, method: str, path: str, user: str, body: dict | None = None) -> dict:
    r = requests.request(method, desk.url + path, auth=(user, PASSWORD), json=body, timeout=10)
    assert r.status_code < 400, r.text
    return r.json()


def log_in(page, desk: Served, name: str, start: str) -> None:
    page.goto(desk.url + start)
    assert "/login" in page.url  # nothing without a login
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(desk.url + start)


def fresh_task(desk: Served, action: str = "call", minutes: int = 5, **over) -> dict:
    """A task created a moment ago (wall clock), due in ``minutes``."""
    now = now_ms()
    return task(desk.district, action, created_time=fmt(now - 5_000, 480),
                due_time=fmt(now + minutes * 60_000, 480), **over)


def shot(page, name: str, lang: str, width: int) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"desk_{name}_{lang}_{width}.png"), full_page=True)


def fits_a_phone(page, width: int) -> None:
    """No sideways scrolling, and every control is at least 44 px by 44 px."""
    if width > 500:
        return
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    small = page.evaluate("""() => [...document.querySelectorAll(
        'main button, main a.task-link, main a.tel, main label.choice, main select, header button,'
        + ' main input:not([type=hidden]):not([type=radio])')]
        .filter(e => e.offsetParent !== null)
        .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect()])
        .filter(([, r]) => r.height < 44 || r.width < 44).map(([h]) => h)""")
    assert small == []


# -- a police officer ---------------------------------------------------------------------------
@pytest.mark.parametrize("lang, width", COMBOS)
def test_an_officer_is_alerted_calls_tries_again_and_dissuades(page_for, desk: Served, broker,
                                                               lang: str, width: int) -> None:
    w = Words(lang)
    page = page_for(lang, width)
    log_in(page, desk, "officer", "/desk")
    api(desk, "POST", "/api/shift", "officer2", {"on": False})  # the officer alone on shift
    rec = fresh_task(desk, contact_msisdn=PHONE, priority=1)
    produce(broker.bootstrap, [rec])  # after the page loaded: it must come by itself
    row = page.locator(f"tr[data-task-id='{rec['task_id']}']")
    row.wait_for()
    # the alerts: the count in the title, a sound, a notification, words for a screen reader
    wait_for(lambda: page.title().startswith("("), what="the count in the title")
    wait_for(lambda: int(page.evaluate("document.body.dataset.beeps || 0")) >= 1, what="a sound")
    assert int(page.evaluate("document.body.dataset.notified || 0")) >= 1
    wait_for(lambda: page.locator("#announce").inner_text(), what="the announcement")
    assert w.gettext("New priority-1 task") in page.locator("#announce").inner_text()
    # given to the officer, who is on shift: the card says so without a reload
    wait_for(lambda: "officer" in row.inner_text(), what="the task given to the officer")
    assert w.gettext(w.gettext("Dissuasion call")) in row.inner_text()
    shot(page, "queue", lang, width)
    fits_a_phone(page, width)
    row.locator("a.task-link").click()
    page.wait_for_url(f"**/desk/tasks/{rec['task_id']}")
    tel = page.locator("#phone a.tel")
    assert tel.get_attribute("href") == f"tel:{PHONE}"
    due = page.locator("#due .countdown").inner_text()
    assert ("后到期" if lang == "zh_CN" else "due in") in due and ":" in due
    # no answer yet: try again in 2 minutes, before the call escalates
    page.check("form.attempt input[value=busy]")
    page.fill("#retry-in", "2")
    page.click("#record-attempt")
    page.locator("#retry").wait_for()
    assert w.gettext("Line busy") in page.locator("#attempts").inner_text()
    shot(page, "task", lang, width)
    fits_a_phone(page, width)
    page.check("form.outcome input[value=dissuaded]")
    page.fill("form.outcome textarea[name=note]", "agreed not to pay")
    page.click("#record")
    assert w.gettext("Dissuaded: reached, agreed not to pay") in page.locator("#outcome").inner_text()
    assert page.locator("#due .countdown").count() == 0  # the countdown stops at the outcome
    assert page.locator("#due .done-at").count() == 1
    (raw,) = outcomes_for(broker.bootstrap, rec["task_id"])
    got = check("task-outcomes", raw)
    assert got.ok, got.reason
    assert (got.value["result"], got.value["actor"], got.value["note"]) == (
        "dissuaded", f"desk:{desk.district}", "agreed not to pay")
    # history: done tasks stay findable, by the task's or the episode's id
    page.goto(f"{desk.url}/desk?view=done&q={rec['episode_id']}")
    assert page.locator(f"tr[data-task-id='{rec['task_id']}']").count() == 1
    fits_a_phone(page, width)


@pytest.mark.parametrize("lang, width", COMBOS)
def test_a_visit_carries_the_registry_record_and_the_episode(page_for, desk: Served, broker,
                                                             lang: str, width: int) -> None:
    w = Words(lang)
    call = fresh_task(desk, priority=1, contact_msisdn=PHONE)
    visit = fresh_task(desk, "visit", minutes=60, priority=1, person_id=call["person_id"],
                       episode_id=call["episode_id"])
    visit.pop("contact_msisdn", None)
    person = {"event_id": f"reg-{call['person_id']}", "event_time": call["created_time"],
              "op": "upsert", "person_id": call["person_id"], "birth_year": 1948,
              "district": desk.district, "msisdns": [PHONE, "+8613900000002"], "accounts": []}
    produce(broker.bootstrap, [person], topic="registry")
    produce(broker.bootstrap, [call, visit])
    page = page_for(lang, width)
    log_in(page, desk, "officer", "/desk")
    api(desk, "POST", "/api/shift", "officer2", {"on": False})
    wait_for(lambda: desk.app.state.store.person(call["person_id"]), what="the registry copy")
    wait_for(lambda: api(desk, "GET", f"/api/desk/tasks/{visit['task_id']}", "officer")
             ["claimed_by"] == "officer", what="the visit given to the officer")
    page.goto(f"{desk.url}/desk/tasks/{visit['task_id']}")
    person_text = page.locator("#person").inner_text()
    assert "1948" in person_text and desk.district in person_text
    assert [page.locator("#person a.tel").nth(i).get_attribute("href") for i in range(2)] == [
        f"tel:{PHONE}", "tel:+8613900000002"]
    timeline = page.locator("#timeline").inner_text()
    assert w.gettext("%(action)s task created", action=w.gettext("Dissuasion call")) in timeline
    assert w.gettext("%(action)s task created", action=w.gettext("Face-to-face visit")) in timeline
    fits_a_phone(page, width)
    page.check("form.outcome input[value=visited]")
    page.click("#record")
    assert w.gettext("Visited face to face") in page.locator("#outcome").inner_text()
    assert "tel:" not in page.locator("#person").inner_html()  # numbers masked again once done


# -- a supervisor ------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang, width", COMBOS)
def test_a_supervisor_sees_who_holds_what_and_reassigns(page_for, desk: Served, broker,
                                                        lang: str, width: int) -> None:
    w = Words(lang)
    for name in ("officer", "officer2"):
        api(desk, "POST", "/api/shift", name, {"on": True})
    page = page_for(lang, width)
    log_in(page, desk, "supervisor", "/desk")
    rec = fresh_task(desk, priority=2)
    produce(broker.bootstrap, [rec])
    row = page.locator(f"tr[data-task-id='{rec['task_id']}']")
    row.wait_for()
    wait_for(lambda: "officer" in row.inner_text(), what="the task given to an officer")
    holder = api(desk, "GET", f"/api/desk/tasks/{rec['task_id']}", "officer")["claimed_by"]
    other = "officer2" if holder == "officer" else "officer"
    row.locator("a.task-link").click()
    page.wait_for_url(f"**/desk/tasks/{rec['task_id']}")
    assert w.gettext("In the hands of %(who)s.", who=holder) in page.locator("#held").inner_text()
    page.select_option("#hand-to", other)
    page.click("#reassign")
    wait_for(lambda: other in page.locator("#status").inner_text(), what="the new holder")
    fits_a_phone(page, width)
    trail = [a.what for a in desk.app.state.store.audit_log(task_id=rec["task_id"])]
    assert "reassign" in trail and "assign" in trail


@pytest.mark.parametrize("lang, width", [("zh_CN", 390), ("en", 1366)])
def test_a_claim_race_leaves_the_officer_on_the_task_with_the_reason(page_for, desk: Served,
                                                                     lang: str, width: int) -> None:
    w = Words(lang)
    for name in ("officer", "officer2"):
        api(desk, "POST", "/api/shift", name, {"on": False})
    rec = fresh_task(desk)
    desk.app.state.store.add_task(rec)
    page = page_for(lang, width)
    log_in(page, desk, "officer", "/desk")
    api(desk, "POST", "/api/shift", "officer", {"on": False})  # nothing given automatically
    # A stale page (a phone that lost its live stream); a live one would have swapped the
    # claim button for the colleague's name by itself.
    page.route("**/api/live**", lambda route: route.abort())
    page.goto(f"{desk.url}/desk/tasks/{rec['task_id']}")
    page.locator("#claim").wait_for()
    api(desk, "POST", f"/api/desk/tasks/{rec['task_id']}/claim", "officer2")  # a colleague first
    with page.expect_response(lambda r: r.request.method == "POST") as got:
        page.click("#claim")
    assert got.value.status == 409
    error = page.locator("#error").inner_text()
    assert error == w.gettext("task %(task)s is in the hands of %(who)s", task=rec["task_id"],
                              who="officer2")
    assert page.locator("#held").count() == 1 and page.locator("h1").count() == 1


# -- a bank liaison ------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang, width", COMBOS)
def test_a_liaison_holds_no_more_than_was_requested(page_for, desk: Served, broker, lang: str,
                                                    width: int) -> None:
    w = Words(lang)
    page = page_for(lang, width)
    log_in(page, desk, "liaison", "/bank")
    api(desk, "POST", "/api/shift", "liaison2", {"on": False})
    rec = fresh_task(desk, "hold", minutes=2, priority=1, bank=desk.bank, amount_fen=814_900)
    produce(broker.bootstrap, [rec])
    row = page.locator(f"tr[data-task-id='{rec['task_id']}']")
    row.wait_for()
    assert w.money(814_900) in row.inner_text() and "6222***********3445" in row.inner_text()
    fits_a_phone(page, width)
    row.locator("a.task-link").click()
    page.wait_for_url(f"**/bank/requests/{rec['task_id']}")
    assert page.locator("#account").inner_text() == rec["account"]
    assert "+86" not in page.content() and rec["person_id"] not in page.content()
    assert page.input_value("#amount") == "8149.00"  # prefilled with the amount requested
    shot(page, "bank", lang, width)
    page.fill("#amount", "99999999")
    page.fill("textarea[name=note]", "checked twice")
    with page.expect_response(lambda r: r.request.method == "POST") as got:
        page.click("#confirm")
    assert got.value.status == 422
    assert w.gettext("at most %(most)s CNY was requested: a bank may report less, never more",
                     most="8,149.00") == page.locator("#error").inner_text()
    assert page.input_value("#amount") == "99999999"  # what was typed is still there
    assert page.input_value("textarea[name=note]") == "checked twice"
    fits_a_phone(page, width)
    page.fill("#amount", "5000")
    page.click("#confirm")
    assert w.money(500_000) in page.locator("#outcome").inner_text()
    (raw,) = outcomes_for(broker.bootstrap, rec["task_id"])
    value = orjson.loads(raw)
    assert check("task-outcomes", raw).ok
    assert (value["result"], value["amount_fen"], value["actor"]) == (
        "held", 500_000, f"bank:{desk.bank}")


# -- ops ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang, width", COMBOS)
def test_ops_sees_tasks_nobody_can_see_and_follows_them(page_for, desk: Served, broker,
                                                        lang: str, width: int) -> None:
    w = Words(lang)
    page = page_for(lang, width)
    # The board's first stream is cut, as a flaky network would: the task arrives before the
    # page listens, and the page must still show it when its stream comes back.
    cut: list[str] = []
    page.route("**/api/live**", lambda route: (cut.append(route.request.url), route.abort())
               if not cut else route.continue_())
    log_in(page, desk, "ops", "/ops")
    orphan_district = f"X{now_ms() % 10**9}"
    rec = task(orphan_district, contact_msisdn=PHONE, created_time=fmt(now_ms(), 480),
               due_time=fmt(now_ms() + 300_000, 480))
    produce(broker.bootstrap, [rec])
    wait_for(lambda: desk.app.state.store.ops_tasks(search=rec["task_id"]), what="the task stored")
    alarm = page.locator("#uncovered")
    wait_for(lambda: orphan_district in alarm.inner_text() if alarm.count() else False,
             what="the task on the board, live")
    assert w.gettext("no user has this district or bank") in alarm.inner_text()
    shot(page, "ops", lang, width)
    fits_a_phone(page, width)
    alarm.locator(f"a:has-text('{orphan_district}')").click()
    page.locator(f"tr[data-task-id='{rec['task_id']}'] a").click()
    page.wait_for_url(f"**/ops/tasks/{rec['task_id']}")
    content = page.content()
    assert PHONE not in content and "4321" not in content and rec["person_id"] not in content
    assert rec["reasons"][0]["detail"] not in content
    assert orphan_district in page.locator("dl.facts").inner_text()
    fits_a_phone(page, width)
    text = requests.get(desk.url + "/metrics", auth=("ops", PASSWORD), timeout=5).text
    assert 'zt_desk_uncovered_tasks{role="desk",why="no_user"}' in text


# -- an attacker -------------------------------------------------------------------------------------------
def test_a_cross_site_form_cannot_claim_a_task(page_for, desk: Served) -> None:
    rec = fresh_task(desk)
    desk.app.state.store.add_task(rec)
    page = page_for("zh_CN", 1366)
    log_in(page, desk, "officer", "/desk")
    api(desk, "POST", "/api/shift", "officer", {"on": False})
    api(desk, "POST", "/api/shift", "officer2", {"on": False})
    # another site's page (here: a page of no origin) posts a form to the desk
    page.set_content(f"""<form method="post" action="{desk.url}/api/desk/tasks/{rec['task_id']}/claim">
        <button id="go">win a prize</button></form>""")
    with page.expect_response(lambda r: r.request.method == "POST") as got:
        page.click("#go")
    assert got.value.status in (401, 403)
    assert api(desk, "GET", f"/api/desk/tasks/{rec['task_id']}", "officer")["status"] == "open"
