"""Languages of the desk: Chinese (zh_CN) first, English available.

Messages are gettext catalogs (``locale/<lang>/LC_MESSAGES/desk.po``) compiled in memory with
Babel when this module is imported, so a fresh checkout needs no build step. The English
message ids are the source text; English needs no catalog. Times, durations and money are
formatted with Babel's locale data in the task's own offset.

>>> zh, en = Words("zh_CN"), Words("en")
>>> zh.when(1796623500000, 480), en.when(1796623500000, 480)
('12月7日 14:05', '7 Dec 14:05')
>>> zh.duration(278 * 86400_000 + 2 * 3600_000 + 15 * 60_000), en.duration(185_000)
('278天2小时', '3 min, 5 sec')
>>> zh.due(1796623500000, 1796623500000 - 180_000, 480)
'14:05（3分钟后到期）'
>>> zh.due(1796623500000, 1796623500000 + 2 * 86400_000 + 60_000, 480)
'12月7日 14:05（已逾期2天）'
>>> zh.money(814_950), en.money(814_950)
('8,149.50 元', '8,149.50 CNY')
>>> zh.gettext("Dissuasion call")
'劝阻电话'
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from babel.dates import format_datetime
from babel.lists import format_list
from babel.support import NullTranslations
from babel.units import format_unit
from starlette.requests import Request

from streams.words import compile_catalog

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"zh_CN": "中文", "en": "English"}
DEFAULT = "zh_CN"
COOKIE = "zt_desk_lang"
_UNITS = (("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000), ("second", 1000))


@cache
def translations(lang: str) -> NullTranslations:
    return compile_catalog(LOCALE_DIR / lang / "LC_MESSAGES" / "desk.po", lang)


def pick(query: str | None, cookie: str | None, accept: str | None) -> str:
    """The language of a request: ``?lang=``, then the cookie, then Accept-Language, then
    Chinese.

    >>> pick(None, None, "en-GB,en;q=0.9"), pick(None, "en", "zh"), pick(None, None, None)
    ('en', 'en', 'zh_CN')
    """
    for choice in (query, cookie):
        if choice in LANGUAGES:
            return choice
    ranked = []
    for part in (accept or "").split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            ranked.append((float(q or 1), tag.strip().lower()))
        except ValueError:
            continue
    for _, tag in sorted(ranked, reverse=True):
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


class Words:
    """Messages and formats of one language."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self.t = translations(self.lang)
        self.html_lang = "zh-CN" if self.lang == "zh_CN" else "en"

    def gettext(self, msg: str, **params: object) -> str:
        out = self.t.gettext(msg)
        return out % params if params else out

    def ngettext(self, one: str, many: str, n: int, **params: object) -> str:
        return self.t.ngettext(one, many, n) % {"num": n, **params}

    def _dt(self, ms: int, offset_min: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(minutes=offset_min)))

    def when(self, ms: int | None, offset_min: int) -> str:
        """'12月7日 14:05' / '7 Dec 14:05' in the task's offset."""
        if ms is None:
            return ""
        # Translators: a date and time as Babel (CLDR) patterns, e.g. "M月d日 HH:mm".
        return format_datetime(self._dt(ms, offset_min), self.gettext("d MMM HH:mm"),
                               locale=self.lang)

    def clock(self, ms: int, offset_min: int) -> str:
        return format_datetime(self._dt(ms, offset_min), "HH:mm", locale=self.lang)

    def duration(self, ms: int) -> str:
        """The two largest units: '278天2小时', '3 min, 5 sec'; never '6682:15:25'."""
        ms = abs(ms)
        parts: list[tuple[str, int]] = []
        for unit, size in _UNITS:
            n, ms = divmod(ms, size)
            if n or parts:
                parts.append((unit, n))
            if len(parts) == 2:
                break
        shown = [(u, n) for u, n in parts if n] or [("second", 0)]
        return format_list([format_unit(n, f"duration-{u}", length="short", locale=self.lang)
                            for u, n in shown],
                           style="unit-narrow" if self.lang == "zh_CN" else "unit-short",
                           locale=self.lang)

    def at(self, ms: int, now_ms: int, offset_min: int) -> str:
        """The time alone on the same day as now, else with the date."""
        same_day = self._dt(ms, offset_min).date() == self._dt(now_ms, offset_min).date()
        return self.clock(ms, offset_min) if same_day else self.when(ms, offset_min)

    def due(self, due_ms: int, now_ms: int, offset_min: int) -> str:
        """'14:05（3分钟后到期）' or, once past, '12月7日 14:05（已逾期2天）'."""
        at = self.at(due_ms, now_ms, offset_min)
        left = due_ms - now_ms
        if left >= 0:
            return self.gettext("%(at)s (due in %(left)s)", at=at, left=self.duration(left))
        return self.gettext("%(at)s (overdue by %(late)s)", at=at, late=self.duration(left))

    def money(self, fen: int | None) -> str:
        if fen is None:
            return ""
        return self.gettext("%(amount)s CNY", amount=f"{fen // 100:,}.{fen % 100:02d}")


def words_of(request: Request) -> Words:
    """The words of a request's language (chosen once per request): ``?lang=``, the cookie, and
    for the API Accept-Language; else Chinese."""
    if "words" not in request.scope:
        # Pages are Chinese unless the user chose English; the API follows Accept-Language.
        api = request.url.path.startswith(("/api/", "/metrics", "/openapi"))
        request.scope["words"] = Words(pick(request.query_params.get("lang"),
                                            request.cookies.get(COOKIE),
                                            request.headers.get("accept-language") if api else None))
    return request.scope["words"]
