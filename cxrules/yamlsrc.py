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
    # where the node's text starts and ends in the file's text (character offsets), so that
    # a rules workbook's import can change one cell's text and leave the rest as it was
    start: int = field(default=-1, kw_only=True, compare=False, repr=False)
    end: int = field(default=-1, kw_only=True, compare=False, repr=False)
    shared: bool = field(default=False, kw_only=True, compare=False, repr=False)  # anchored (&name), or inside one


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
    flow: bool = False

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


# Aliases (*name) repeat what an anchor (&name) holds. A "billion laughs" file of a few
# hundred bytes nests them to a billion values, and `&a [*a]` repeats forever, so the
# tree is built here from the parser's events (PyYAML's own composer has no bound):
# an alias shares its anchor's node and adds the anchor's size to a budget.
MAX_ALIAS_VALUES = 10_000  # values aliases may add to one file; a real reuse adds tens
MAX_DEPTH = 64  # lists and mappings inside each other; rule files use about 5


def _too_deep(line, col) -> YamlSyntaxError:
    return YamlSyntaxError(f"lists and mappings are nested more than {MAX_DEPTH} deep here", line, col,
                           "a rule file needs only a few levels; check the brackets and the indentation")


class _Builder:
    """Located nodes from the parser's events, with aliases and nesting bounded."""

    def __init__(self, text: str):
        self.text = text
        self.added = 0  # values repeated by aliases so far, in the whole file

    def documents(self) -> list[Node]:
        ld = _Loader(self.text)
        try:
            docs = []
            ld.get_event()  # stream start
            while not ld.check_event(yaml.StreamEndEvent):
                ld.get_event()  # document start
                docs.append(self._node(ld))
                ld.get_event()  # document end
            return docs
        finally:
            ld.dispose()

    def _node(self, ld) -> Node:
        anchors: dict[str, tuple[Node, int]] = {}  # anchor -> (node, size); per document
        open_anchors: dict[str, Node] = {}  # anchors whose list or mapping is not closed yet
        # stack entries: [node, size so far, anchor, pending key node (mappings)]
        stack: list[list] = []
        while True:
            ev = ld.get_event()
            size = 1
            if isinstance(ev, yaml.AliasEvent):
                name = ev.anchor
                mark = ev.start_mark
                if name in open_anchors:
                    raise YamlSyntaxError(
                        f"the alias *{name} is inside the &{name} it repeats, so it would repeat forever",
                        mark.line + 1, mark.column + 1, f"remove *{name}, or move it out of the part marked &{name}")
                if name not in anchors:
                    raise yaml.composer.ComposerError(None, None, f"found undefined alias {name!r}", mark)
                node, size = anchors[name]
                self.added += size
                if self.added > MAX_ALIAS_VALUES:
                    raise YamlSyntaxError(
                        f"the YAML aliases (*name) in this file repeat more than {MAX_ALIAS_VALUES} values; "
                        "cxrules refuses files that grow like this (a 'billion laughs' file)",
                        mark.line + 1, mark.column + 1, "write the values out, or use &anchors and *aliases only for short lists")
            elif isinstance(ev, yaml.ScalarEvent):
                tag = ev.tag
                if tag is None or tag == "!":
                    tag = ld.resolve(yaml.ScalarNode, ev.value, ev.implicit)
                m = ev.start_mark
                node = Scalar(m.line + 1, m.column + 1, ev.value, ev.style in ("'", '"'), tag or "",
                              start=m.index, end=ev.end_mark.index)
                self._anchor(ev, node, 1, anchors)
            elif isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                m = ev.start_mark
                if len(stack) >= MAX_DEPTH:
                    raise _too_deep(m.line + 1, m.column + 1)
                if isinstance(ev, yaml.SequenceStartEvent):
                    node = Seq(m.line + 1, m.column + 1, [], bool(ev.flow_style), start=m.index)
                else:
                    node = Map(m.line + 1, m.column + 1, flow=bool(ev.flow_style), start=m.index)
                if ev.anchor is not None:
                    self._anchor(ev, node, 0, anchors)
                    open_anchors[ev.anchor] = node
                stack.append([node, 1, ev.anchor, None])
                continue
            else:  # the end of a list or mapping
                node, size, name, _ = stack.pop()
                node.end = ev.end_mark.index if node.flow else _last_end(node)
                if name is not None:
                    anchors[name] = (node, size)
                    del open_anchors[name]
                    _mark_shared(node)
            if not stack:
                return node
            top = stack[-1]
            top[1] += size
            parent = top[0]
            if isinstance(parent, Seq):
                parent.items.append(node)
            elif top[3] is None:
                top[3] = node
            else:
                kn, top[3] = top[3], None
                key = kn.text if isinstance(kn, Scalar) else f"<{type(kn).__name__.lower()}>"
                if key in parent.entries:
                    parent.duplicates.append((kn, parent.entries[key][0].line))
                else:
                    parent.entries[key] = (kn, node)

    @staticmethod
    def _anchor(ev, node: Node, size: int, anchors: dict) -> None:
        if ev.anchor is None:
            return
        node.shared = True
        if ev.anchor in anchors:
            first = anchors[ev.anchor][0]
            raise YamlSyntaxError(f"the anchor &{ev.anchor} is defined twice (first on line {first.line})",
                                  ev.start_mark.line + 1, ev.start_mark.column + 1, "give each anchor its own name")
        anchors[ev.anchor] = (node, size)


def _mark_shared(node: Node) -> None:
    """An anchored value and everything in it may be repeated elsewhere by an alias. An
    anchor inside it (and so any alias) is marked already: each node is visited once."""
    node.shared = True
    for child in (node.items if isinstance(node, Seq) else [v for _, v in node.entries.values()] if isinstance(node, Map) else []):
        if not child.shared:
            _mark_shared(child)


def _last_end(node: Node) -> int:
    """A block list or mapping ends where its last value does (the parser's own end mark
    is at the next token, past comments and blank lines)."""
    if isinstance(node, Seq) and node.items:
        return node.items[-1].end
    if isinstance(node, Map) and node.entries:
        return list(node.entries.values())[-1][1].end
    return node.start


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
        return _Builder(text).documents()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = (e.problem or e.context or "not valid YAML").strip()
        lines = text.splitlines()
        ch = lines[line - 1][col - 1 : col] if line and col and line <= len(lines) else ""
        if problem == "found character that cannot start any token":  # in plain words
            problem = "a tab is used to indent this line" if ch == "\t" else f"a value cannot start with '{ch}' unless it is in quotes"
        elif problem == "exceeded maximum nesting depth":  # libyaml's own bound, past ours
            raise _too_deep(line, col) from None
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
