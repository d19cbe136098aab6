"""The words of the tasks' reasons, in the language of the desks that read them.

Reasons are written for police officers and bank staff: Chinese by default (``language`` in
``streams/policy.yaml``), English available. The English text is the message id; translations
are a gettext catalog (``streams/locale/<lang>/LC_MESSAGES/reasons.po``) compiled in memory with
Babel at first use, so a fresh checkout needs no build step. Placeholders are named and filled
after translation, so a translator may reorder them. The language is part of the policy, the
same in the workers and in replay, so both write the same bytes.

>>> zh, en = Words("zh_CN"), Words("en")
>>> en.say("the person is {age} years old; elderly people are among the most targeted", age=71)
'the person is 71 years old; elderly people are among the most targeted'
>>> zh.say("the person is {age} years old; elderly people are among the most targeted", age=71)
'当事人71岁，老年人是诈骗的主要目标之一'
>>> zh.join(["a", "b"]), en.join(["a", "b"])
('a；b', 'a; b')
"""

from __future__ import annotations

import io
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("zh_CN", "en")


def compile_catalog(po: Traversable, language: str) -> NullTranslations:
    """A gettext catalog (``.po``) compiled in memory with Babel; no catalog, no translation
    (the English message ids are the text)."""
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=language)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


@cache
def _translations(language: str) -> NullTranslations:
    return compile_catalog(resources.files("streams") / "locale" / language / "LC_MESSAGES"
                           / "reasons.po", language)


class Words:
    """Reason texts in one language: ``say(msgid, **values)``."""

    __slots__ = ("_gettext", "language", "separator")

    def __init__(self, language: str = "zh_CN"):
        if language not in LANGUAGES:
            raise ValueError(f"language {language!r}: choose one of {', '.join(LANGUAGES)}")
        self.language = language
        self._gettext = _translations(language).gettext
        self.separator = "；" if language == "zh_CN" else "; "

    def say(self, msgid: str, **values: object) -> str:
        return self._gettext(msgid).format(**values)

    def text(self, msgid: str) -> str:
        """A message with no placeholders (a template to fill later, e.g. a feature's phrase)."""
        return self._gettext(msgid)

    def join(self, parts: list[str]) -> str:
        return self.separator.join(parts)


def mark(msgid: str) -> str:
    """Marks a message for the catalog where it is defined and translated later."""
    return msgid
