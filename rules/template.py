"""Rule descriptions with feature values filled in, formatted for a desk officer.

``{feature}`` takes the feature's default format for its unit (amounts with thousands
separators, minutes and counts as whole numbers, flags as yes/no, shares as percentages);
``{feature:spec}`` takes a Python format spec instead. Field names are checked when the rule file
loads: only features of the rule's scoring point, no attributes, indexes or conversions.

>>> t = compile_template("{amount_cny} CNY, {call_minutes}-minute call", {"amount_cny": "CNY",
...                      "call_minutes": "minutes"})
>>> t.render({"amount_cny": 48000.0, "call_minutes": 41.7})
'48,000 CNY, 41-minute call'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter


class TemplateError(ValueError):
    pass


def default_format(name: str, unit: str, value: float) -> str:
    if unit == "flag":
        return "yes" if value else "no"
    if unit == "minutes":
        return f"{math.floor(value):,d}"  # "a 41-minute call" even at 41 min 50 s, like a clock
    if unit in ("CNY", "count", "years", "hour"):
        return f"{value:,.0f}"
    if unit == "probability":
        return f"{value:.2f}"
    if unit == "ratio" and ("share" in name or "rate" in name):
        return f"{value:.0%}"
    if unit in ("ratio", "days"):
        return f"{value:.1f}" if abs(value) < 10 else f"{value:,.0f}"
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[tuple[str, str | None, str, str], ...]  # (literal, name, spec, unit)

    def render(self, features: Mapping[str, float]) -> str:
        out: list[str] = []
        for literal, name, spec, unit in self.parts:
            out.append(literal)
            if name is None:
                continue
            value = features.get(name)
            if value is None:
                out.append("?")  # a missing value must not lose the whole reason
            elif spec:
                out.append(format(float(value), spec))
            else:
                out.append(default_format(name, unit, float(value)))
        return "".join(out)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for _, n, _, _ in self.parts if n is not None)


def compile_template(text: str, units: Mapping[str, str],
                     known: Mapping[str, str] | None = None) -> Template:
    """``units``: the features allowed here, with their units; ``known``: all features."""
    parts: list[tuple[str, str | None, str, str]] = []
    try:
        parsed = list(Formatter().parse(text))
    except ValueError as e:
        raise TemplateError(f"description: {e} (write {{{{ and }}}} for literal braces)") from None
    for literal, field, spec, conversion in parsed:
        if field is None:
            parts.append((literal, None, "", ""))
            continue
        if conversion:
            raise TemplateError(f"description: conversion !{conversion} not allowed in "
                                f"{{{field}}}")
        if not field.isidentifier():
            raise TemplateError(f"description: {{{field}}} must be a plain feature name")
        if field not in units:
            if known and field in known:
                raise TemplateError(f"description: feature {field} is not available at this "
                                    "scoring point")
            raise TemplateError(f"description: unknown feature {{{field}}}")
        if spec:
            if "{" in spec:
                raise TemplateError(f"description: nested fields not allowed in {{{field}}}")
            try:
                format(1.0, spec)
            except ValueError as e:
                raise TemplateError(f"description: bad format {spec!r} for {field}: {e}") from None
        parts.append((literal, field, spec or "", units[field]))
    return Template(tuple(parts))
