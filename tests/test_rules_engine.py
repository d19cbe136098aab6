"""The rule engine: compile errors with their lines, evaluation, descriptions, the packaged set."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.features import CATALOG, POINT_FEATURES
from rules.engine import Hit, RuleSet, RuleSetError, default_ruleset_path

HEADER = """\
name: test
version: 3
owner: tests
description: rules for tests
rules:
"""


def ruleset(body: str) -> RuleSet:
    return RuleSet.from_text(HEADER + textwrap.dedent(body), "t.yaml")


def error(body: str) -> RuleSetError:
    with pytest.raises(RuleSetError) as e:
        ruleset(body)
    return e.value


# A valid rule at lines 6-10 of the file; tests replace one of its lines.
RULE = """\
  - id: R-BIG
    point: transfer
    description: "{amount_cny} CNY to a new payee"
    when: amount_cny >= 10000 and payee_new
    score: 0.6
"""


def with_line(n: int, text: str) -> str:
    """RULE with its n-th line (0-based, after the id line) replaced."""
    lines = RULE.splitlines()
    lines[n] = text
    return "\n".join(lines) + "\n"


def features(point: str, **values: float) -> dict[str, float]:
    f = dict.fromkeys(POINT_FEATURES[point], 0.0)
    f.update(values)
    return f


# --- loading ---------------------------------------------------------------------------------

def test_a_valid_file_loads_with_its_version():
    rs = ruleset(RULE)
    assert rs.version == "test-v3"
    [rule] = rs.rules
    assert (rule.id, rule.code, rule.mode, rule.action, rule.owner, rule.line) == (
        "R-BIG", "BIG", "enforce", None, "tests", 6)


def test_a_string_version_is_kept():
    rs = RuleSet.from_text(HEADER.replace("version: 3", "version: 2026.03-b") + RULE)
    assert rs.version == "test-2026.03-b"


@pytest.mark.parametrize(("when", "reason"), [
    ("amount_cny >= ", "syntax error"),
    ("amount_cny >= 1 and", "syntax error"),
    ("amount_kny > 5", "unknown feature amount_kny"),
    ("call_minutes > 5", "feature call_minutes is not available at this scoring point"),
    ("payee_new.real", "attribute access not allowed"),
    ("amount_cny.__class__", "attribute access not allowed"),
    ("__import__('os')", "calling __import__ is not allowed"),
    ("open('x')", "calling open is not allowed"),
    ("(lambda: 1)()", "not allowed"),
    ("(lambda x: x)", "lambda not allowed"),
    ("[x for x in (1, 2)]", "comprehensions not allowed"),
    ("amount_cny ** 99", "the power operator ** not allowed"),
    ("amount_cny if payee_new else 0", "if-expressions not allowed"),
    ("payee_new in (1, 2)", "not allowed"),
    ("features['amount_cny']", "not allowed"),
    ("(x := 3)", "assignment not allowed"),
    ("min(amount_cny)", "min() takes two or more plain arguments"),
    ("abs(amount_cny, 2)", "abs() takes one plain argument"),
    ("max(amount_cny, key=1)", "max() takes two or more plain arguments"),
    ("f'{amount_cny}'", "f-strings not allowed"),
    ("None", "constant None not allowed"),
])
def test_a_bad_condition_is_refused_with_its_line(when: str, reason: str):
    e = error(with_line(3, f"    when: {when!r}" if "'" not in when else f'    when: "{when}"'))
    assert e.line == 9
    assert reason in e.reason
    assert e.path == "t.yaml" and str(e).startswith("t.yaml:9: ")


def test_a_multi_line_condition_reports_the_line_inside_it():
    body = with_line(3, "    when: |\n      payee_new\n      and amount_cny.real > 3")
    e = error(body)
    assert e.line == 11 and "attribute access" in e.reason
    e = error(with_line(3, "    when: |\n      payee_new and\n      amount_cny >"))
    assert e.line == 11 and "syntax error" in e.reason
    rs = ruleset(with_line(3, "    when: |\n      payee_new  # a comment\n      and amount_cny > 3"))
    assert rs.rules[0].when.names == ("payee_new", "amount_cny")


@pytest.mark.parametrize(("n", "text", "reason"), [
    (1, "    point: checkout", "point 'checkout' must be one of contact, transfer"),
    (2, '    description: "{amount_kny} CNY"', "unknown feature {amount_kny}"),
    (2, '    description: "{call_minutes} min"', "not available at this scoring point"),
    (2, '    description: "{amount_cny.__class__}"', "must be a plain feature name"),
    (2, '    description: "{amount_cny!r}"', "conversion !r not allowed"),
    (2, '    description: "{amount_cny:zz}"', "bad format"),
    (2, '    description: "{amount_cny"', "description"),
    (4, "    score: 1.5", "score 1.5 must be from 0 to 1"),
    (4, "    score: yes", "score must be a number"),
    (4, '    score: "max(0.5, amount_kny)"', "score: unknown feature amount_kny"),
    (4, "    scroe: 0.5", "unknown rule field 'scroe'"),
])
def test_a_bad_field_is_refused_with_its_line(n: int, text: str, reason: str):
    e = error(with_line(n, text))
    assert e.line == 6 + n, e
    assert reason in e.reason


def test_missing_fields_action_mode_and_ids():
    assert error(RULE + "    action: arrest\n").line == 11
    assert "action 'arrest'" in error(RULE + "    action: arrest\n").reason
    assert error(RULE + "    mode: loud\n").line == 11
    e = error(RULE + RULE)
    assert (e.line, e.reason) == (11, "rule id R-BIG is already used on line 6")
    e = error("\n".join(ln for ln in RULE.splitlines() if "when" not in ln) + "\n")
    assert (e.line, e.reason) == (6, "rule R-BIG: missing field 'when'")
    e = error(RULE.replace("R-BIG", "R BIG!"))
    assert e.line == 6 and "rule id" in e.reason


def test_bad_headers_and_bad_yaml():
    with pytest.raises(RuleSetError) as e:
        RuleSet.from_text(HEADER.replace("owner: tests\n", "") + RULE)
    assert e.value.line == 1 and "missing field 'owner'" in e.value.reason
    with pytest.raises(RuleSetError) as e:
        RuleSet.from_text(HEADER + "  - id: [unclosed\n")
    assert e.value.line == 7 and "not valid YAML" in e.value.reason
    with pytest.raises(RuleSetError) as e:
        RuleSet.from_text(HEADER + RULE + "    score: 0.7\n")
    assert (e.value.line, e.value.reason) == (11, "duplicate key 'score'")
    with pytest.raises(RuleSetError) as e:
        RuleSet.from_text(HEADER.replace("rules:\n", "rules: []\n"))
    assert e.value.line == 5 and "non-empty list" in e.value.reason
    with pytest.raises(RuleSetError) as e:
        RuleSet.from_text("- just\n- a list\n")
    assert e.value.line == 1
    with pytest.raises(RuleSetError) as e:
        RuleSet.from_text(HEADER + RULE + "extra: 1\n")
    assert e.value.line == 11 and "unknown header field 'extra'" in e.value.reason
    with pytest.raises(RuleSetError) as e:
        RuleSet.from_text(HEADER + "  - !!python/object:os.system {}\n")
    assert e.value.line == 6


def test_a_missing_file(tmp_path):
    with pytest.raises(RuleSetError) as e:
        RuleSet.load(tmp_path / "none.yaml")
    assert e.value.line is None and "cannot read" in e.value.reason


# --- evaluation ------------------------------------------------------------------------------

def test_hits_carry_the_rule_and_the_filled_in_description():
    rs = ruleset(RULE + """\
  - id: R-WATCH
    code: TRANSFER_TO_WATCHLISTED_ACCOUNT
    point: transfer
    description: "{amount_cny} CNY, {minutes_since_unknown_call} min after a call; listed {payee_listed}"
    when: payee_listed
    score: "min(1, 0.5 + amount_cny / 100000)"
    action: hold
    mode: shadow
""")
    f = features("transfer", amount_cny=48000.4, payee_new=1.0, payee_listed=1.0,
                 minutes_since_unknown_call=23.9)
    assert rs.evaluate("transfer", f) == [
        Hit("R-BIG", "BIG", "48,000 CNY to a new payee", 0.6, None, "enforce"),
        Hit("R-WATCH", "TRANSFER_TO_WATCHLISTED_ACCOUNT", "48,000 CNY, 23 min after a call; listed yes",
            pytest.approx(0.980004), "hold", "shadow"),
    ]
    assert rs.evaluate("contact", features("contact")) == []
    with pytest.raises(ValueError):
        rs.evaluate("checkout", f)


def test_a_rule_that_cannot_be_evaluated_does_not_fire_and_is_counted():
    rs = ruleset(with_line(3, "    when: amount_cny / amount_ratio_usual > 2"))
    f = features("transfer", amount_cny=100.0, amount_ratio_usual=0.0)
    assert rs.evaluate("transfer", f) == []
    assert rs.errors["R-BIG"] == 1
    assert len(rs.evaluate("transfer", features("transfer", amount_cny=100.0,
                                                amount_ratio_usual=1.0))) == 1


def test_the_packaged_rule_set_loads_and_covers_both_points():
    rs = RuleSet.load(default_ruleset_path())
    assert rs.version.startswith("city-v")
    assert {r.point for r in rs.rules} == {"contact", "transfer"}
    assert any(r.mode == "shadow" for r in rs.rules)
    for r in rs.rules:  # every feature a rule reads is in the catalog, at its point
        assert set(r.when.names) <= set(POINT_FEATURES[r.point])


def test_the_first_decision_path_is_a_rule():
    rs = RuleSet.load(default_ruleset_path())
    call = features("contact", call_minutes=21.5, caller_listed=1.0, caller_listed_confidence=0.9)
    [hit] = [h for h in rs.evaluate("contact", call) if h.code == "CALL_FROM_WATCHLISTED_NUMBER"]
    assert (hit.score, hit.action, hit.mode) == (0.9, "call", "enforce")
    assert hit.reason == "接听了预警名单号码的来电21分钟（名单置信度0.90）"  # the file's first language
    [en] = [h for h in rs.evaluate("contact", call, "en") if h.code == hit.code]
    assert en.reason.startswith("21-minute answered call from a watch-listed number")
    low = dict(call, caller_listed_confidence=0.3)
    assert [h.score for h in rs.evaluate("contact", low) if h.rule_id == "R-CALL-FROM-LISTED-LINE"] \
        == [0.5]
    short = dict(call, call_minutes=4.99)
    assert not [h for h in rs.evaluate("contact", short) if h.rule_id == "R-CALL-FROM-LISTED-LINE"]
    unlisted = dict(call, caller_listed=0.0)
    assert not [h for h in rs.evaluate("contact", unlisted)
                if h.rule_id == "R-CALL-FROM-LISTED-LINE"]


def test_a_safe_account_transfer_hits_with_a_plain_reason():
    rs = RuleSet.load(default_ruleset_path())
    f = features("transfer", amount_cny=48000.0, payee_new=1.0, longest_unknown_call_72h=41.2,
                 minutes_since_unknown_call=23.0, amount_ratio_usual=60.0, person_age=70.0)
    [hit] = [h for h in rs.evaluate("transfer", f, "en") if h.code == "SAFE_ACCOUNT_TRANSFER"]
    assert hit.reason.startswith("48,000 CNY to an account never paid before, 23 minutes after a "
                                 "41-minute call from an unknown line")
    assert hit.action == "hold"


# --- properties ------------------------------------------------------------------------------

values = st.floats(min_value=0, max_value=1e7, allow_nan=False)


@given(st.fixed_dictionaries({n: values for n in POINT_FEATURES["transfer"]}))
def test_the_packaged_set_never_fails_on_any_transfer(f):
    rs = RULESET
    hits = rs.evaluate("transfer", f)
    ids = [r.id for r in rs.by_point["transfer"]]
    assert [h.rule_id for h in hits] == [i for i in ids if i in {h.rule_id for h in hits}]
    assert all(0.0 <= h.score <= 1.0 and h.reason and h.mode in ("enforce", "shadow")
               for h in hits)
    assert not rs.errors


@given(st.fixed_dictionaries({n: values for n in POINT_FEATURES["contact"]}))
def test_the_packaged_set_never_fails_on_any_contact(f):
    hits = RULESET.evaluate("contact", f)
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert not RULESET.errors


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
       st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_conditions_agree_with_python_on_the_same_numbers(a: float, b: float):
    rs = ruleset(with_line(3, "    when: amount_cny - 2 * amount_24h_cny >= max(0, abs(amount_cny))"
                           " / 4 or not amount_cny < amount_24h_cny"))
    f = features("transfer", amount_cny=a, amount_24h_cny=b)
    expected = a - 2 * b >= max(0, abs(a)) / 4 or not a < b
    assert bool(rs.evaluate("transfer", f)) == expected


@given(st.sampled_from(sorted(CATALOG)), st.sampled_from(["contact", "transfer"]))
def test_a_feature_is_accepted_exactly_where_the_catalog_offers_it(name: str, point: str):
    body = (RULE.replace("point: transfer", f"point: {point}")
            .replace("amount_cny >= 10000 and payee_new", f"{name} > 0")
            .replace("{amount_cny} CNY to a new payee", "a rule"))
    if point in CATALOG[name].points:
        assert ruleset(body).rules[0].when.names == (name,)
    else:
        assert error(body).line == 9


RULESET = RuleSet.load(default_ruleset_path())


def _random_condition(rnd, names: list[str], depth: int = 0) -> str:
    """A random condition of the whole language: names, numbers, arithmetic, chains, and/or/not,
    min/max/abs."""
    if depth > 3 or rnd.random() < 0.25:
        return rnd.choice([rnd.choice(names), str(rnd.choice([0, 1, 0.5, -2, 3.25, 1e9]))])
    kind = rnd.randrange(6)
    sub = [_random_condition(rnd, names, depth + 1) for _ in range(rnd.randint(2, 3))]
    if kind == 0:
        return f"({sub[0]} {rnd.choice(['+', '-', '*', '/'])} {sub[1]})"
    if kind == 1:
        ops = [rnd.choice(["<", "<=", ">", ">=", "==", "!="]) for _ in sub[1:]]
        return "(" + sub[0] + "".join(f" {o} {s}" for o, s in zip(ops, sub[1:], strict=True)) + ")"
    if kind == 2:
        return "(" + f" {rnd.choice(['and', 'or'])} ".join(sub) + ")"
    if kind == 3:
        return f"({rnd.choice(['not ', '-', '+'])}{sub[0]})"
    if kind == 4:
        return f"{rnd.choice(['min', 'max'])}({', '.join(sub)})"
    return f"abs({sub[0]})"


def test_conditions_evaluate_exactly_as_simpleeval_walks_them():
    """The closures a condition compiles to give what simpleeval gives from the same tree:
    the same value (type included) or an error where it errs (a missing feature, / 0)."""
    import math
    import random

    from rules.expr import compile_expr

    rnd = random.Random(7)
    names = list(POINT_FEATURES["transfer"][:6])
    values = [0.0, 1.0, -1.0, 2.5, 1e9, float("nan")]
    for _ in range(3000):
        c = compile_expr(_random_condition(rnd, names), set(names))
        for _ in range(5):
            features = {n: rnd.choice(values) for n in names if rnd.random() > 0.05}
            try:
                want: object = c.evaluate_tree(features)
            except Exception as e:  # any error: the closures must err too
                want = type(e)
            try:
                got: object = c.evaluate(features)
            except Exception as e:
                got = type(e)
            same = (type(got) is type(want) and
                    (got == want or (isinstance(got, float) and math.isnan(got)
                                     and math.isnan(want))))  # type: ignore[arg-type]
            assert same, (c.source, features, want, got)


def test_a_description_may_be_given_per_language_and_an_unknown_language_is_refused():
    text = """
name: t
version: 1
owner: me
description: per-language descriptions
rules:
  - id: R-A
    point: transfer
    description:
      zh_CN: "转账{amount_cny}元"
      en: "{amount_cny} CNY"
    when: amount_cny > 1
    score: 0.5
"""
    rs = RuleSet.from_text(text)
    row = features("transfer", amount_cny=48000.0)
    assert [h.reason for h in rs.evaluate("transfer", row, "zh_CN")] == ["转账48,000元"]
    assert [h.reason for h in rs.evaluate("transfer", row, "en")] == ["48,000 CNY"]
    with pytest.raises(RuleSetError, match="language 'fr'"):
        RuleSet.from_text(text.replace('      en: "', '      fr: "'))
