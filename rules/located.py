"""YAML with line numbers: every mapping remembers where it and each of its values start.

A rule file's errors must point at a line an analyst can open, so the file is composed into
yaml's node graph (which keeps marks) and built into plain values by hand. Safe tags only;
duplicate keys are refused (the plain loader would silently keep the last one).

>>> doc = load_located("name: city\\nrules:\\n  - id: R-1\\n    score: 0.5\\n")
>>> doc.line, doc["rules"][0].line, doc["rules"][0].lines["score"]
(1, 3, 4)
"""

from __future__ import annotations

from typing import Any

import yaml


class LocatedError(ValueError):
    def __init__(self, reason: str, line: int | None):
        super().__init__(reason)
        self.reason = reason
        self.line = line


class LocatedMap(dict[str, Any]):
    """A mapping with the 1-based line of itself (``line``), of each value (``lines``) and the
    node of each value (``nodes``, to map a position inside a block scalar to a file line)."""

    line: int
    lines: dict[str, int]
    nodes: dict[str, yaml.Node]


class LocatedList(list[Any]):
    line: int
    lines: list[int]


def load_located(text: str) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            raise LocatedError(f"not valid YAML: {e.problem or e}",
                               mark.line + 1 if mark else None) from None
        except yaml.YAMLError as e:
            raise LocatedError(f"not valid YAML: {e}", None) from None
        if node is None:
            raise LocatedError("the file is empty", 1)
        return _build(loader, node, set())
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, open_: set[int]) -> Any:
    line = node.start_mark.line + 1
    if id(node) in open_:
        raise LocatedError("a recursive alias is not allowed", line)
    if isinstance(node, yaml.CollectionNode):
        open_ = open_ | {id(node)}
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # merge keys (<<) as the safe loader does
        out = LocatedMap()
        out.line, out.lines, out.nodes = line, {}, {}
        for knode, vnode in node.value:
            key = _build(loader, knode, open_)
            if not isinstance(key, str):
                raise LocatedError(f"key {key!r} must be a string", knode.start_mark.line + 1)
            if key in out:
                raise LocatedError(f"duplicate key {key!r}", knode.start_mark.line + 1)
            out[key] = _build(loader, vnode, open_)
            out.lines[key] = vnode.start_mark.line + 1
            out.nodes[key] = vnode
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LocatedList(_build(loader, item, open_) for item in node.value)
        seq.line, seq.lines = line, [item.start_mark.line + 1 for item in node.value]
        return seq
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as e:
        raise LocatedError(f"not valid YAML: {e.problem}", line) from None


def inner_line(node: yaml.Node, lineno: int) -> int:
    """File line of line ``lineno`` (1-based) of a scalar's text: literal blocks (``|``) keep
    their lines; folded and plain scalars are one line, reported at their start."""
    start = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.style == "|":
        return start + lineno  # the text begins on the line after the '|' indicator
    return start
