"""The rule engine: rule sets as data files, compiled once, evaluated at each scoring point.

A rule set is a YAML file (``rules/sets/*.yaml``, format in docs/rules.md): a header (``name``,
``version``, ``owner``, ``description``) and a list of ``rules``, each a condition over the
features of one scoring point (``models.features``) with a description for desk officers, a
score, an optional action hint and a mode (``enforce`` raises tasks, ``shadow`` is only counted).
Loading checks everything and refuses a bad file with its line and the reason; ``RuleSetWatcher``
swaps in a new version of a file while a worker runs and keeps the old one when the new is bad.

>>> rs = RuleSet.from_text('''
... name: demo
... version: 1
... owner: city-centre
... description: a one-rule example
... rules:
...   - id: R-BIG-NEW-PAYEE
...     point: transfer
...     description: "{amount_cny} CNY to an account never paid before"
...     when: amount_cny >= 10000 and payee_new
...     score: 0.6
...     action: hold
... ''')
>>> rs.version
'demo-v1'
>>> [h.reason for h in rs.evaluate("transfer", {"amount_cny": 48000.0, "payee_new": 1.0})]
['48,000 CNY to an account never paid before']
>>> rs.evaluate("transfer", {"amount_cny": 48000.0, "payee_new": 0.0})
[]
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from models.features import CATALOG, POINT_FEATURES, POINTS
from rules.expr import Compiled, ExprError, compile_expr, new_evaluator
from rules.located import LocatedError, LocatedList, LocatedMap, inner_line, load_located
from rules.template import Template, TemplateError, compile_template
from streams.words import LANGUAGES

log = logging.getLogger("zt.rules")

ACTIONS = ("call", "visit", "hold", "stop_payment")
MODES = ("enforce", "shadow")
HEADER_KEYS = {"name", "version", "owner", "description", "rules"}
RULE_KEYS = {"id", "code", "point", "description", "when", "score", "action", "mode", "owner",
             "version"}
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class RuleSetError(Exception):
    """A rule file that cannot be used: where (``path``, 1-based ``line`` or None) and why."""

    def __init__(self, path: str | Path | None, line: int | None, reason: str):
        self.path = str(path) if path is not None else None
        self.line = line
        self.reason = reason
        where = self.path or "<rules>"
        super().__init__(f"{where}:{line}: {reason}" if line else f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule that fired at a scoring point: what the core turns into task reasons."""

    rule_id: str
    code: str  # reason code for the task, UPPER_SNAKE
    reason: str  # the rule's description with the feature values filled in
    score: float  # 0-1
    action: str | None  # hint: call, visit, hold, stop_payment, or None
    mode: str  # enforce or shadow


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    code: str
    point: str
    description: str  # in the first language the file gives
    when: Compiled
    score: float | Compiled  # a constant, or an expression over the same features
    action: str | None
    mode: str
    owner: str
    version: str
    line: int
    template: Template
    # the description in each language the file gives it in (``streams/words.py``)
    templates: dict[str, Template] = field(default_factory=dict)

    def score_of(self, features: Mapping[str, float]) -> float:
        if isinstance(self.score, float):
            return self.score
        return min(max(float(self.score.evaluate(features)), 0.0), 1.0)


class RuleSet:
    """A compiled rule set. ``evaluate`` returns every hit, enforce and shadow, in file order."""

    def __init__(self, name: str, version: str, owner: str, description: str,
                 rules: tuple[Rule, ...], path: Path | None = None, digest: str = ""):
        self.name = name
        self.version = version
        self.owner = owner
        self.description = description
        self.rules = rules
        self.path = path
        self.digest = digest  # sha256 of the file's bytes: two loads of one file compare equal
        self.by_point: dict[str, tuple[Rule, ...]] = {
            p: tuple(r for r in rules if r.point == p) for p in POINTS}
        self.errors: Counter[str] = Counter()  # evaluation errors per rule id (rule did not fire)

    def __repr__(self) -> str:
        return f"RuleSet({self.version!r}, {len(self.rules)} rules)"

    @classmethod
    def load(cls, path: str | Path) -> RuleSet:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise RuleSetError(path, None, f"cannot read the file: {e.strerror or e}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RuleSetError(path, None, f"not UTF-8 text: {e}") from None
        return cls.from_text(text, path)

    @classmethod
    def from_text(cls, text: str, path: str | Path | None = None) -> RuleSet:
        where = Path(path) if path is not None else None
        try:
            doc = load_located(text)
        except LocatedError as e:
            raise RuleSetError(where, e.line, e.reason) from None
        digest = hashlib.sha256(text.encode()).hexdigest()
        return _compile(doc, where, digest)

    def evaluate(self, point: str, features: Mapping[str, float],
                 language: str | None = None) -> list[Hit]:
        """Every rule of ``point`` that fires, with its description in ``language`` where the
        file gives one (else in its first)."""
        try:
            rules = self.by_point[point]
        except KeyError:
            raise ValueError(f"unknown scoring point {point!r}; one of {POINTS}") from None
        hits: list[Hit] = []
        for rule in rules:
            try:
                if not rule.when.evaluate(features):
                    continue
                score = rule.score_of(features)
            except Exception as e:  # a division by zero, a feature the core did not supply
                self._failed(rule, e)
                continue
            template = rule.templates.get(language, rule.template) if language else rule.template
            hits.append(Hit(rule.id, rule.code, template.render(features), score,
                            rule.action, rule.mode))
        return hits

    def _failed(self, rule: Rule, e: Exception) -> None:
        self.errors[rule.id] += 1
        if self.errors[rule.id] == 1:  # once per rule, not once per event
            log.warning("rule %s of %s could not be evaluated (%s: %s); it does not fire "
                        "where this happens", rule.id, self.version, type(e).__name__, e)


def default_ruleset_path() -> Path:
    """The rule set in force by default: the packaged ``rules/sets/city.yaml``."""
    return Path(str(resources.files("rules").joinpath("sets", "city.yaml")))


# --- compiling a file ------------------------------------------------------------------------

def _compile(doc: Any, path: Path | None, digest: str) -> RuleSet:
    def fail(line: int | None, reason: str) -> RuleSetError:
        return RuleSetError(path, line, reason)

    if not isinstance(doc, LocatedMap):
        raise fail(getattr(doc, "line", 1), "a rule file is a mapping with name, version, owner, "
                   "description and rules")
    _only(doc, HEADER_KEYS, "header field", fail)
    name = _text(doc, "name", fail)
    if not _NAME.match(name):
        raise fail(doc.lines["name"], f"name {name!r} must be lower case letters, digits, '-', "
                   "'_' or '.'")
    version = _version(doc, fail)
    owner = _text(doc, "owner", fail)
    description = _text(doc, "description", fail)
    rules_node = doc.get("rules")
    if not isinstance(rules_node, LocatedList) or not rules_node:
        raise fail(doc.lines.get("rules", doc.line), "rules must be a non-empty list")
    evaluator = new_evaluator()
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for item, line in zip(rules_node, rules_node.lines, strict=True):
        rule = _rule(item, line, owner, evaluator, fail)
        if rule.id in seen:
            raise fail(item.lines["id"], f"rule id {rule.id} is already used on line "
                       f"{seen[rule.id]}")
        seen[rule.id] = item.lines["id"]
        rules.append(rule)
    return RuleSet(name, f"{name}-{version}", owner, description, tuple(rules), path, digest)


Fail = Callable[[int | None, str], RuleSetError]


def _text(m: LocatedMap, key: str, fail: Fail, required: bool = True) -> str:
    if key not in m:
        if not required:
            return ""
        raise fail(m.line, f"missing field {key!r}")
    v = m[key]
    if not isinstance(v, str) or not v.strip():
        raise fail(m.lines[key], f"{key} must be a non-empty string")
    return v.strip()


def _version(m: LocatedMap, fail: Fail) -> str:
    if "version" not in m:
        raise fail(m.line, "missing field 'version'")
    v = m["version"]
    if isinstance(v, bool) or not isinstance(v, int | str) or (isinstance(v, int) and v < 1):
        raise fail(m.lines["version"], "version must be a positive whole number or a string "
                   "like v3")
    text = str(v).strip()
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", text):
        raise fail(m.lines["version"], f"version {text!r}: letters, digits, '.', '-', '_' only")
    return f"v{text}" if isinstance(v, int) else text


def _only(node: LocatedMap, allowed: set[str], what: str, fail: Fail) -> None:
    """Refuse a key ``node`` may not have, at its line."""
    for key in node:
        if key not in allowed:
            raise fail(node.lines[key], f"unknown {what} {key!r}; expected one of "
                       f"{', '.join(sorted(allowed))}")


def _rule(item: Any, line: int, owner: str, evaluator: Any, fail: Fail) -> Rule:
    if not isinstance(item, LocatedMap):
        raise fail(line, "each rule is a mapping (id, point, description, when, score, ...)")
    _only(item, RULE_KEYS, "rule field", fail)
    rid = _text(item, "id", fail)
    if not _ID.match(rid):
        raise fail(item.lines["id"], f"rule id {rid!r}: a letter, then letters, digits, '-', '_' "
                   "or '.'")
    code = _text(item, "code", fail, required=False) or re.sub(
        r"[^A-Z0-9]+", "_", rid.upper().removeprefix("R-")).strip("_")
    if not _CODE.match(code):
        raise fail(item.lines.get("code", item.line), f"code {code!r} must be UPPER_SNAKE_CASE")
    point = _text(item, "point", fail)
    if point not in POINTS:
        raise fail(item.lines["point"], f"point {point!r} must be one of {', '.join(POINTS)}")
    allowed = POINT_FEATURES[point]
    descriptions = _descriptions(item, fail)
    templates: dict[str, Template] = {}
    for language, text in descriptions.items():
        try:
            templates[language] = compile_template(text, {n: CATALOG[n].unit for n in allowed},
                                                   {n: f.unit for n, f in CATALOG.items()})
        except TemplateError as e:
            raise fail(item.lines["description"], f"{language}: {e}") from None
    description, template = next(iter(descriptions.values())), next(iter(templates.values()))

    def expr(key: str) -> Compiled:
        try:
            return compile_expr(item[key], allowed, evaluator, CATALOG)
        except ExprError as e:
            raise fail(inner_line(item.nodes[key], e.lineno), f"{key}: {e.reason}") from None

    if "when" not in item:
        raise fail(item.line, f"rule {rid}: missing field 'when'")
    if not isinstance(item["when"], str):
        raise fail(item.lines["when"], "when must be a condition, written as text")
    when = expr("when")
    if "score" not in item:
        raise fail(item.line, f"rule {rid}: missing field 'score'")
    raw = item["score"]
    score: float | Compiled
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise fail(item.lines["score"], "score must be a number from 0 to 1 or an expression")
    if isinstance(raw, str):
        score = expr("score")
    else:
        score = float(raw)
        if not 0.0 <= score <= 1.0:
            raise fail(item.lines["score"], f"score {raw} must be from 0 to 1")
    action = item.get("action")
    if action is not None and action not in ACTIONS:
        raise fail(item.lines["action"], f"action {action!r} must be one of {', '.join(ACTIONS)} "
                   "or left out")
    mode = item.get("mode", "enforce")
    if mode not in MODES:
        raise fail(item.lines["mode"], f"mode {mode!r} must be enforce or shadow")
    rule_owner = _text(item, "owner", fail, required=False) or owner
    version = str(item.get("version", 1))
    if isinstance(item.get("version"), bool) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$",
                                                             version):
        raise fail(item.lines.get("version", item.line), f"version {version!r} is not a version")
    return Rule(rid, code, point, description, when, score, action, mode, rule_owner, version,
                line, template, templates)


def _descriptions(item: LocatedMap, fail: Fail) -> dict[str, str]:
    """A rule's description: one text, or one per language (``zh_CN: ...``, ``en: ...``)."""
    raw = item.get("description")
    if isinstance(raw, str):
        return {"": _text(item, "description", fail)}
    if not isinstance(raw, dict) or not raw:
        raise fail(item.lines.get("description", item.line), "description must be a text, or a "
                   f"text per language ({', '.join(LANGUAGES)})")
    out = {}
    for language, text in raw.items():
        if language not in LANGUAGES:
            raise fail(item.lines["description"], f"description: language {language!r} is not "
                       f"one of {', '.join(LANGUAGES)}")
        if not isinstance(text, str) or not text.strip():
            raise fail(item.lines["description"], f"description.{language} must be a non-empty "
                       "text")
        out[language] = text.strip()
    return out


# --- hot reload ------------------------------------------------------------------------------

class RuleSetWatcher:
    """The rule set of a file as it is now, reloaded when the file changes.

    ``current()`` is cheap: it looks at the file (``stat``) at most once per ``interval_s``.
    A new file that does not load is reported (log with its line, ``on_error``) and the running
    set stays in force; the same broken file is reported once, not at every look. Replace a rule
    file atomically (write a temporary file, then rename it over the old one), so a reader never
    sees half a file.
    """

    def __init__(self, path: str | Path, on_error: Callable[[RuleSetError], None] | None = None,
                 *, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 on_load: Callable[[RuleSet], None] | None = None):
        self.path = Path(path)
        self.on_error = on_error
        self.on_load = on_load
        self.interval_s = interval_s
        self._clock = clock
        self._sig = self._stat()
        self._set = RuleSet.load(self.path)  # nothing to fall back on yet: a bad file raises
        self._checked = clock()
        self.reloads = 0
        self.failures = 0

    def current(self) -> RuleSet:
        now = self._clock()
        if now - self._checked < self.interval_s:
            return self._set
        self._checked = now
        sig = self._stat()
        if sig == self._sig:
            return self._set
        self._sig = sig
        try:
            if sig is None:
                raise RuleSetError(self.path, None, "the rule file disappeared")
            new = RuleSet.load(self.path)
        except RuleSetError as e:
            self.failures += 1
            log.error("rule set rejected, %s stays in force: %s", self._set.version, e)
            if self.on_error is not None:
                self.on_error(e)
            return self._set
        if new.digest != self._set.digest:
            log.warning("rule set %s in force (was %s)", new.version, self._set.version)
            self._set = new
            self.reloads += 1
            if self.on_load is not None:
                self.on_load(new)
        return self._set

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)
