"""The rule condition language: a safe subset of Python expressions over named features.

Parsed once with ``ast`` (no ``eval``, no ``compile``), checked against a whitelist, then turned
into a tree of small Python closures, one per node, that evaluate it exactly as ``simpleeval``
does from the pre-parsed tree (same order, same short-circuits, same errors) at a quarter of the
cost: a rule set is evaluated at every scoring point. Allowed: numbers, strings, ``True``/``False``, feature
names, arithmetic (``+ - * /``), comparisons (``< <= > >= == !=``, chains too), ``and``, ``or``,
``not``, and calls of ``min``, ``max``, ``abs``. Everything else (attributes, subscripts, other
calls, lambdas, comprehensions, ``**``, ``if``-expressions) is refused when the rule file loads.

>>> c = compile_expr("amount_cny >= 10000 and payee_new", {"amount_cny", "payee_new"})
>>> c.names
('amount_cny', 'payee_new')
>>> c.evaluate({"amount_cny": 48000.0, "payee_new": 1.0})
1.0
>>> bool(c.evaluate({"amount_cny": 500.0, "payee_new": 1.0}))
False
"""

from __future__ import annotations

import ast
import operator as op
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from simpleeval import DEFAULT_OPERATORS, MAX_STRING_LENGTH, IterableTooLong, NameNotDefined, SimpleEval

FUNCTIONS: dict[str, Any] = {"min": min, "max": max, "abs": abs}
_ARITY = {"min": (2, 16), "max": (2, 16), "abs": (1, 1)}
_ARITY_WORDS = {"min": "two or more plain arguments", "max": "two or more plain arguments",
                "abs": "one plain argument"}

# Only these operators exist in the evaluator as well, so a tree that slipped past the check
# would still fail closed.
_OPERATORS: dict[type, Any] = {
    ast.Add: op.add, ast.Sub: op.sub, ast.Mult: op.mul, ast.Div: op.truediv,
    ast.USub: op.neg, ast.UAdd: op.pos, ast.Not: op.not_,
    ast.Eq: op.eq, ast.NotEq: op.ne, ast.Lt: op.lt, ast.LtE: op.le, ast.Gt: op.gt, ast.GtE: op.ge,
}
assert all(k in DEFAULT_OPERATORS for k in _OPERATORS)  # the library knows each of them

_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.BinOp, ast.Compare,
          ast.Name, ast.Load, ast.Constant, ast.Call, *_OPERATORS)
_WHAT = {  # plain words for what was refused
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambda",
    ast.IfExp: "if-expressions", ast.Pow: "the power operator **", ast.NamedExpr: "assignment",
    ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions",
    ast.DictComp: "comprehensions", ast.SetComp: "comprehensions", ast.List: "lists",
    ast.Tuple: "tuples", ast.Dict: "dicts", ast.Set: "sets", ast.JoinedStr: "f-strings",
    ast.Starred: "star arguments", ast.In: "'in'", ast.NotIn: "'not in'", ast.Is: "'is'",
    ast.IsNot: "'is not'", ast.FloorDiv: "'//'", ast.Mod: "'%'",
}


class ExprError(ValueError):
    """A condition that cannot be compiled; ``lineno`` is 1-based within the expression."""

    def __init__(self, reason: str, lineno: int = 1):
        super().__init__(reason)
        self.reason = reason
        self.lineno = lineno


class _Evaluator(SimpleEval):
    """simpleeval restricted to the whitelist: no attribute, subscript or f-string handlers."""

    def __init__(self) -> None:
        super().__init__(operators=dict(_OPERATORS), functions=dict(FUNCTIONS), names={})
        self.nodes = {t: h for t, h in self.nodes.items()
                      if t in (ast.Name, ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare,
                               ast.Call, ast.Constant)}


Closure = Callable[[Mapping[str, float]], Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A checked, pre-parsed expression; ``evaluate`` runs its closures (``simpleeval`` is
    what they follow: ``evaluate_tree`` walks the same tree with it)."""

    source: str
    tree: ast.expr
    names: tuple[str, ...]  # the feature names it reads, in first-use order
    evaluator: _Evaluator
    run: Closure = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.run is None:
            object.__setattr__(self, "run", _closure(self.tree, self.source))

    def evaluate(self, features: Mapping[str, float]) -> Any:
        return self.run(features)

    def evaluate_tree(self, features: Mapping[str, float]) -> Any:
        """The same, by simpleeval walking the tree (the reference the closures are held to)."""
        ev = self.evaluator
        ev.names = features  # one evaluator per rule set; the worker's loop is single-threaded
        return ev.eval(self.source, previously_parsed=self.tree)


def _closure(node: ast.expr, source: str) -> Closure:
    """A closure evaluating ``node`` as simpleeval's handler for it would (the tree is checked:
    only the node types of the whitelist reach here)."""
    if isinstance(node, ast.Name):
        name = node.id

        def lookup(f: Mapping[str, float]) -> Any:
            try:
                return f[name]
            except (TypeError, KeyError):
                raise NameNotDefined(name, source) from None
        return lookup
    if isinstance(node, ast.Constant):
        value = node.value
        if hasattr(value, "__len__") and len(value) > MAX_STRING_LENGTH:
            def too_long(f: Mapping[str, float]) -> Any:
                raise IterableTooLong(f"Literal in statement is too long! ({len(value)}, when "
                                      f"{MAX_STRING_LENGTH} is max)")
            return too_long
        return lambda f: value
    if isinstance(node, ast.UnaryOp):
        unary, operand = _OPERATORS[type(node.op)], _closure(node.operand, source)
        return lambda f: unary(operand(f))
    if isinstance(node, ast.BinOp):
        binary = _OPERATORS[type(node.op)]
        left, right = _closure(node.left, source), _closure(node.right, source)
        return lambda f: binary(left(f), right(f))
    if isinstance(node, ast.BoolOp):
        return _boolean([_closure(v, source) for v in node.values], isinstance(node.op, ast.Or))
    if isinstance(node, ast.Compare):
        first = _closure(node.left, source)
        steps = [(_OPERATORS[type(o)], _closure(c, source))
                 for o, c in zip(node.ops, node.comparators, strict=True)]
        if len(steps) == 1:
            (compare, other), = steps
            return lambda f: compare(first(f), other(f))

        def chain(f: Mapping[str, float]) -> Any:
            right = first(f)
            out: Any = True
            for compare, other in steps:
                if not out:
                    break
                left, right = right, other(f)
                out = compare(left, right)
            return out
        return chain
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        function = FUNCTIONS[node.func.id]
        args = [_closure(a, source) for a in node.args]
        return lambda f: function(*[a(f) for a in args])
    raise ExprError(f"{type(node).__name__} not allowed in a condition")  # (checked before)


def _boolean(values: list[Closure], stop_on: bool) -> Closure:
    """``and`` (``stop_on`` False) or ``or`` (True) over closures: the last value evaluated, as
    Python gives it, stopping at the first whose truth is ``stop_on``."""
    if len(values) == 2:
        a, b = values
        return (lambda f: a(f) or b(f)) if stop_on else (lambda f: a(f) and b(f))

    def run(f: Mapping[str, float]) -> Any:
        out: Any = False
        for v in values:
            out = v(f)
            if bool(out) is stop_on:
                break
        return out
    return run


def compile_expr(source: str, allowed: Collection[str], evaluator: _Evaluator | None = None,
                 known: Collection[str] = ()) -> Compiled:
    """Parse and check ``source``; ``allowed`` are the feature names it may read. ``known`` names
    that exist but are not allowed here (another scoring point's features) get a clearer error."""
    if not isinstance(source, str) or not source.strip():
        raise ExprError("the condition is empty")
    text = source.strip()
    try:
        # In parentheses, so a condition may run over several lines (a YAML block, say).
        module = ast.parse(f"({text}\n)", mode="eval")
    except SyntaxError as e:
        last = text.count("\n") + 1  # an error at the closing parenthesis is on the last line
        raise ExprError(f"syntax error: {e.msg}", min(e.lineno or 1, last)) from None
    names: dict[str, tuple[int, int]] = {}  # name -> first position in the source
    for node in ast.walk(module):
        line = getattr(node, "lineno", 1)
        if not isinstance(node, _NODES):
            what = _WHAT.get(type(node), type(node).__name__)
            raise ExprError(f"{what} not allowed in a condition", line)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                shown = node.func.id if isinstance(node.func, ast.Name) else "this"
                raise ExprError(f"calling {shown} is not allowed; only "
                                f"{', '.join(FUNCTIONS)} may be called", line)
            want = _ARITY[node.func.id]
            if node.keywords or not want[0] <= len(node.args) <= want[1]:
                raise ExprError(f"{node.func.id}() takes {_ARITY_WORDS[node.func.id]}", line)
        elif isinstance(node, ast.Name):
            if node.id in FUNCTIONS and _is_callee(module, node):
                continue
            if node.id not in allowed:
                if node.id in known:
                    raise ExprError(f"feature {node.id} is not available at this scoring point",
                                    line)
                raise ExprError(f"unknown feature {node.id}", line)
            pos = (node.lineno, node.col_offset)
            names[node.id] = min(pos, names.get(node.id, pos))
        elif isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str):
            raise ExprError(f"constant {node.value!r} not allowed", line)
    ordered = tuple(sorted(names, key=names.__getitem__))
    return Compiled(text, module.body, ordered, evaluator or _Evaluator())


def _is_callee(module: ast.Expression, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(module))


def new_evaluator() -> _Evaluator:
    """One evaluator is shared by all expressions of a rule set (it only holds the names)."""
    return _Evaluator()
