"""Chinese first: every message the desk shows has its zh_CN translation in the catalog (the
same placeholders), pages are Chinese unless English is chosen, and times, durations and money
read as people there read them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from desk_fixtures import PASSWORD, make_settings, task
from fastapi.testclient import TestClient

from services.desk.app import create_app
from services.desk.i18n import LOCALE_DIR, Words

DESK = Path(__file__).resolve().parents[1] / "services" / "desk"
KEYWORDS = {"_": None, "gettext": None, "N_": None, "Invalid": None, "Conflict": None,
            "NotFound": None, "Forbidden": None, "Unauthorized": None, "TooMany": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def used_messages() -> set[str]:
    method_map = [("**/migrations/**", "ignore"), ("**.py", "python"),
                  ("**/templates/**.html", "jinja2")]
    found = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(str(DESK), method_map,
                                                                keywords=KEYWORDS):
        found.add(msg if isinstance(msg, str) else msg[0])
    return found


def test_every_message_has_its_chinese() -> None:
    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "desk.po").open("rb") as f:
        catalog = read_po(f)
    zh = {m.id: m.string for m in catalog if m.id}
    used = used_messages()
    assert len(used) > 150
    assert used - set(zh) == set(), "run pybabel extract/update (docs/desk.md)"
    for msg in used:
        assert zh[msg], f"no translation for {msg!r}"
        assert sorted(PLACEHOLDER.findall(msg)) == sorted(PLACEHOLDER.findall(zh[msg])), msg
    assert "Dissuasion call" in used and zh["Dissuasion call"] == "劝阻电话"


def test_durations_have_days_and_never_run_to_thousands_of_hours() -> None:
    zh, en = Words("zh_CN"), Words("en")
    late = 6682 * 3_600_000 + 15 * 60_000 + 25_000  # the "6682:15:25"
    assert zh.duration(late) == "278天10小时" and en.duration(late) == "278 days, 10 hr"
    due = 1_796_623_500_000  # 2026-12-07 14:05 +08:00
    assert zh.due(due, due - 3 * 60_000, 480) == "14:05（3分钟后到期）"
    assert en.due(due, due + late, 480) == "7 Dec 14:05 (overdue by 278 days, 10 hr)"


@pytest.fixture
def client(tmp_path) -> TestClient:
    app = create_app(make_settings(str(tmp_path / "desk.sqlite3"), "127.0.0.1:1", "371602",
                                   "ICBC"))
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False,
                    headers={"Accept-Language": "en-US,en;q=0.9"}) as c:
        yield c


def test_pages_are_chinese_unless_english_is_chosen(client: TestClient) -> None:
    rec = task("371602", reasons=[{"code": "CALL_FROM_WATCHLISTED_NUMBER", "detail": "d"}])
    client.app.state.store.add_task(rec)
    login = client.get("/login")
    assert '<html lang="zh-CN">' in login.text and "用户名" in login.text  # whatever the browser
    client.post("/login", data={"username": "officer", "password": PASSWORD})
    page = client.get(f"/desk/tasks/{rec['task_id']}").text
    assert "劝阻电话" in page and "接到涉诈号码来电" in page and "认领此任务" in page
    assert re.search(r"\d+月\d+日 \d\d:\d\d（已逾期\d+天", page)  # the example task is long past
    english = client.get(f"/desk/tasks/{rec['task_id']}?lang=en")
    assert english.cookies["zt_desk_lang"] == "en"
    assert "Dissuasion call" in english.text and "Called by a watch-listed number" in english.text
    assert "Dissuasion call" in client.get("/desk").text  # the choice stays
    assert client.get("/desk?lang=zh_CN").text.count("劝阻电话") >= 1
    # the API follows Accept-Language
    r = client.get("/api/desk/tasks/nope", auth=("officer", PASSWORD),
                   headers={"Accept-Language": "zh-CN"})
    assert r.json()["detail"] == "您的队列中没有任务 nope" and r.json()["title"] == "未找到"
