"""YAML with a line number on every value.

Scalars are kept as the text the manager wrote (with whether it was quoted), so that
each cell is read by its column's declared type, not by YAML's guess ("No" stays text,
"1:30" stays a time, "2026-11-23" is a date only where a date is expected).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml

try:  # the C parser is much faster on large rule sets
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader


@dataclass
class Node:
    line: int  # 1-based
    col: int  # 1-based


@dataclass
class Scalar(Node):
    text: str
    quoted: bool = False
    tag: str = ""

    @property
    def is_null(self) -> bool:
        return not self.quoted and self.tag.endswith(":null")

    @property
    def value(self):
        """Best-effort plain value (for names and keys); None for null."""
        if self.is_null:
            return None
        return self.text


@dataclass
class Seq(Node):
    items: list = field(default_factory=list)
    flow: bool = False


@dataclass
class Map(Node):
    # key text -> (key node, value node), in file order
    entries: dict = field(default_factory=dict)
    duplicates: list = field(default_factory=list)  # (key scalar, first line)

    def get(self, key, default=None):
        e = self.entries.get(key)
        return e[1] if e else default

    def key_node(self, key):
        e = self.entries.get(key)
        return e[0] if e else None

    def keys(self):
        return list(self.entries)


class YamlSyntaxError(Exception):
    def __init__(self, message: str, line: int | None, col: int | None, hint: str | None = None):
        super().__init__(message)
        self.message, self.line, self.col, self.hint = message, line, col, hint


def _convert(node) -> Node:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.ScalarNode):
        return Scalar(line, col, node.value, node.style in ("'", '"'), node.tag or "")
    if isinstance(node, yaml.SequenceNode):
        return Seq(line, col, [_convert(n) for n in node.value], bool(node.flow_style))
    if isinstance(node, yaml.MappingNode):
        m = Map(line, col)
        for k, v in node.value:
            kn = _convert(k)
            key = kn.text if isinstance(kn, Scalar) else f"<{type(kn).__name__.lower()}>"
            if key in m.entries:
                m.duplicates.append((kn, m.entries[key][0].line))
                continue
            m.entries[key] = (kn, _convert(v))
        return m
    raise TypeError(node)


def _hint(problem: str, text: str, line: int | None) -> str | None:
    src = text.splitlines()[line - 1] if line and 0 < line <= len(text.splitlines()) else ""
    if "\t" in src:
        return "indent with spaces, not tabs"
    if src.count('"') % 2:
        return 'a quote (") on this line is never closed: close it, e.g. "VIP, Gold", or remove it'
    if any(tok in src for tok in (" >", "[>", "[<", " [", "[[", "(", "]")) or "flow" in problem:
        return 'put cells that start with >, <, [, ( or contain a comma in quotes, e.g. ">= 5" or "[2..4]"'
    if "mapping values" in problem or "new key" in problem:
        return "a value that contains ': ' must be put in quotes"
    return None


def parse_documents(text: str) -> list[Node]:
    """Every YAML document of a file, as located nodes; raises YamlSyntaxError."""
    try:
        docs = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = (e.problem or e.context or "not valid YAML").strip()
        lines = text.splitlines()
        ch = lines[line - 1][col - 1 : col] if line and col and line <= len(lines) else ""
        if problem == "found character that cannot start any token":  # in plain words
            problem = "a tab is used to indent this line" if ch == "\t" else f"a value cannot start with '{ch}' unless it is in quotes"
        elif problem == "mapping values are not allowed in this context":
            problem = "a value holds ': ', which YAML reads as the start of a new key"
        ctx = e.context_mark
        if ctx and e.problem_mark and "flow" in (e.context or "") and ctx.line < e.problem_mark.line:
            # a [...] row that does not close on its own line: the mistake is where it starts
            line, col = ctx.line + 1, ctx.column + 1
            brackets = "{...}" if "mapping" in e.context else "[...]"
            problem = f"the {brackets} that starts on this line does not close on it ({problem})"
        raise YamlSyntaxError(f"not valid YAML: {problem}", line, col, _hint(problem, text, line)) from None
    except yaml.YAMLError as e:
        raise YamlSyntaxError(f"not valid YAML: {e}", None, None) from None
    return [_convert(d) for d in docs if d is not None]
