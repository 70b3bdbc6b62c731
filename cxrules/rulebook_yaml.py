"""Rule files as a rules workbook sees them, and the YAML a changed workbook gives back.

A rules workbook (cxrules/rulebook.py) shows every value of a rule file as a text: a
scalar as the manager wrote it (`>= 5`, `VIP`, `14d`), a list or mapping as YAML flow
text (`[Tier, 客户层级]`). `read_file` turns a file into those texts, keeping the YAML
node each came from; `render_*` writes documents afresh; `Editor` changes a file in place.

Import edits the file's text at the character offsets the YAML parser reports
(yamlsrc records where each node starts and ends), rather than loading and dumping it
with a round-trip YAML library: a dump re-spaces every flow row (`- [">= 7", VIP,  ...]`
lines are aligned by hand in the rule files) and so would change lines whose cells did not
change. Here a changed cell changes its own text only, and the spaces after it absorb the
difference so the columns stay aligned; a new row is aligned like the row above it.
What cannot be edited in place (a column added to a table, a row written as a block
mapping that gains a key) is written afresh: that one row, or that one document.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from .yamlsrc import Map, Node, Scalar, Seq, YamlSyntaxError, parse_documents

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader

PROPS = ("title", "hit", "description")
INPUT_ATTRS = ("type", "label", "columns", "from", "decision", "output", "allowed", "optional", "values", "description")
OUTPUT_ATTRS = ("type", "label", "columns", "allowed", "highlight", "values", "description")
ATTRS = ("type", "label", "columns", "from", "decision", "output", "allowed", "optional", "values", "highlight", "description")
ENTRY_KINDS = ("fields", "calendars", "values")


# ----------------------------------------------------------------- the texts of a file
@dataclass
class Col:
    name: str
    role: str  # input / output
    attrs: dict = field(default_factory=dict)  # attribute -> text ("" or absent: not given)
    node: Node | None = None  # its spec in the file


@dataclass
class Row:
    cells: list  # one text per column ("" = blank or not given)
    note: str = ""
    node: Node | None = None
    refs: list | None = None  # workbook cells the texts came from (cells..., note)

    def key(self):
        return (tuple(self.cells), self.note)


@dataclass
class TableDoc:
    decision: str
    file: str
    props: dict = field(default_factory=dict)  # title, hit, description -> text
    cols: list = field(default_factory=list)
    due: list = field(default_factory=list)  # [(name, text)]
    rules: list = field(default_factory=list)
    examples: list = field(default_factory=list)  # [Row] whose cells follow ex_keys
    ex_keys: list = field(default_factory=list)
    node: Map | None = None
    refs: dict = field(default_factory=dict)  # ("prop", k) / ("attr", col, k) / ("due", name) -> workbook cell
    sheet: str | None = None
    ex_sheet: str | None = None

    @property
    def inputs(self):
        return [c for c in self.cols if c.role == "input"]

    @property
    def outputs(self):
        return [c for c in self.cols if c.role == "output"]


@dataclass
class Entry:
    """One field, calendar or value's spellings: a row of the fields, calendars or values sheet."""

    kind: str
    file: str
    name: str
    attrs: dict = field(default_factory=dict)  # for values: {"spellings": text}
    node: Node | None = None  # the entry's value
    key: Node | None = None
    parent: Map | None = None  # the fields:/calendars:/values: mapping it is in
    ref: str | None = None  # workbook row (check)
    refs: dict = field(default_factory=dict)


@dataclass
class FileSrc:
    name: str
    text: str
    bom: bool = False
    docs: list = field(default_factory=list)  # TableDoc, or (kind, Map) for fields/calendars/values documents
    entries: list = field(default_factory=list)

    @property
    def newline(self) -> str:
        return "\r\n" if "\r\n" in self.text else "\n"


def node_text(node, src: str) -> str:
    """What a workbook cell shows for a value: a scalar's text, a list or mapping as flow YAML."""
    if node is None:
        return ""
    if isinstance(node, Scalar):
        return "" if node.is_null else node.text.strip()
    if getattr(node, "flow", False) and node.start >= 0:
        return re.sub(r"^&\S+\s+", "", src[node.start:node.end])  # without its &anchor
    return flow_text(node)


def flow_text(node) -> str:
    if isinstance(node, Scalar):
        return scalar(node.text) if not node.is_null else "~"
    if isinstance(node, Seq):
        return "[" + ", ".join(flow_text(i) for i in node.items) + "]"
    if isinstance(node, Map):
        return "{" + ", ".join(f"{scalar(k)}: {flow_text(v)}" for k, (_, v) in node.entries.items()) + "}"
    return ""


def _attrs(spec, src, allowed) -> dict:
    if isinstance(spec, Scalar):  # the shorthand `name: number`
        return {"type": spec.text} if not spec.is_null else {}
    if not isinstance(spec, Map):
        return {}
    return {k: node_text(v, src) for k, (_, v) in spec.entries.items()}


def specs_of(node):
    """(name, key node, spec node) of inputs:/outputs:/due: in either spelling the loader accepts."""
    if isinstance(node, Map):
        return [(k, kn, v) for k, (kn, v) in node.entries.items()]
    out = []
    if isinstance(node, Seq):
        for it in node.items:
            if isinstance(it, Map) and len(it.entries) == 1:
                out.extend((k, kn, v) for k, (kn, v) in it.entries.items())
            elif isinstance(it, Scalar):
                out.append((it.text, it, None))
    return out


def table_of(doc: Map, src: str, file: str) -> TableDoc:
    name = doc.get("decision")
    t = TableDoc(name.text if isinstance(name, Scalar) else "", file, node=doc)
    for k in PROPS:
        if doc.get(k) is not None:
            t.props[k] = node_text(doc.get(k), src)
    for role, key, allowed in (("input", "inputs", INPUT_ATTRS), ("output", "outputs", OUTPUT_ATTRS)):
        for n, kn, spec in specs_of(doc.get(key)):
            t.cols.append(Col(n, role, _attrs(spec, src, allowed), spec))
    t.due = [(n, node_text(spec, src)) for n, kn, spec in specs_of(doc.get("due"))]
    names = [c.name for c in t.cols]
    rules = doc.get("rules")
    for r in (rules.items if isinstance(rules, Seq) else []):
        if isinstance(r, Seq):
            cells = [node_text(c, src) for c in r.items]
            t.rules.append(Row(cells, "", r))
        elif isinstance(r, Map):
            t.rules.append(Row([node_text(r.get(n), src) for n in names], node_text(r.get("note"), src), r))
        else:
            t.rules.append(Row([node_text(r, src)], "", r))
    examples = doc.get("examples")
    keys: list = []
    for ex in (examples.items if isinstance(examples, Seq) else []):
        for k in (ex.keys() if isinstance(ex, Map) else []):
            if k not in keys:
                keys.append(k)
    order = {n: i for i, n in enumerate(names)}
    t.ex_keys = sorted(keys, key=lambda k: (order.get(k, len(order)), keys.index(k)))
    for ex in (examples.items if isinstance(examples, Seq) else []):
        cells = [node_text(ex.get(k), src) if isinstance(ex, Map) else "" for k in t.ex_keys]
        t.examples.append(Row(cells, "", ex))
    return t


def read_file(name: str, raw: bytes) -> FileSrc:
    """A rule file's tables and entries; raises YamlSyntaxError or UnicodeDecodeError."""
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    f = FileSrc(name, text, bom)
    for doc in parse_documents(text):
        if isinstance(doc, Map) and "decision" in doc.keys():
            f.docs.append(table_of(doc, text, name))
        elif isinstance(doc, Map):
            f.docs.append(("entries", doc))
            for kind in ENTRY_KINDS:
                m = doc.get(kind)
                if not isinstance(m, Map):
                    continue
                for k, (kn, v) in m.entries.items():
                    attrs = {"spellings": node_text(v, text)} if kind == "values" else _attrs(v, text, ())
                    f.entries.append(Entry(kind, name, k, attrs, v, kn, m))
        else:
            f.docs.append(("other", doc))
    return f


# ----------------------------------------------------------------- writing values
def _plain_ok(text: str) -> bool:
    """Whether text can stand unquoted in a flow list and reads back as the same text."""
    if not text or text != text.strip() or "\n" in text or text[0] in "-?:,[]{}#&*!|><=('\"%@`" or re.search(r"[,\[\]{}]|: |:$| #", text):
        return False
    try:
        ld = _Loader("[" + text + "]")
        try:
            evs = [ld.get_event() for _ in range(5)]
        finally:
            ld.dispose()
    except yaml.YAMLError:
        return False
    ev = evs[3]
    if not isinstance(ev, yaml.ScalarEvent) or ev.value != text or not isinstance(evs[4], yaml.SequenceEndEvent):
        return False
    return ld.resolve(yaml.ScalarNode, text, (True, False)) != "tag:yaml.org,2002:null"


def scalar(text: str, quote: str | None = None) -> str:
    """A YAML scalar reading back as `text`: plain when it can be (or when `quote` is None
    and it can), else in the quotes asked for, else double quotes."""
    if quote is None and _plain_ok(text):
        return text
    if quote == "'" and "\n" not in text:
        return "'" + text.replace("'", "''") + "'"
    import json

    return json.dumps(text, ensure_ascii=False)


def value_yaml(text: str) -> str:
    """An attribute's text as YAML: flow text ([..], {..}) as it is, else a scalar."""
    t = text.strip()
    if t[:1] in "[{":
        check_flow(t)
        return t
    return scalar(text)


def check_flow(t: str) -> None:
    try:
        docs = parse_documents("x: " + t)
    except YamlSyntaxError as e:
        raise ValueError(f"'{t}' is not a YAML list or mapping: {e.message}") from None
    v = docs[0].get("x") if docs and isinstance(docs[0], Map) else None
    if not isinstance(v, (Seq, Map)) or len(docs) != 1:
        raise ValueError(f"'{t}' is not a YAML list or mapping")


# ----------------------------------------------------------------- writing documents afresh
class Out:
    """Lines of YAML, each with the workbook cells its values came from (for `check`)."""

    def __init__(self):
        self.lines: list[str] = []
        self.origins: list[list] = []  # per line: [(name, cell ref)]

    def add(self, line: str, origins=()):
        self.lines.append(line)
        self.origins.append(list(origins))

    def text(self, nl="\n") -> str:
        return nl.join(self.lines) + nl


def _flow_map(pairs) -> str:
    return "{" + ", ".join(f"{scalar(k)}: {v}" for k, v in pairs) + "}"


def spec_text(attrs: dict, order) -> str:
    keys = [k for k in order if attrs.get(k, "") != ""] + [k for k in attrs if k not in order and attrs[k] != ""]
    return _flow_map((k, value_yaml(attrs[k])) for k in keys)


def row_text(cells: list, names: list, note: str = "", ref_starts: list | None = None) -> str:
    """A rule row: `[a, b, c]` (aligned to ref_starts, the cells' offsets in a row above),
    or `{name: a, ..., note: ...}` when it has a note."""
    if note:
        pairs = [(n, scalar(c)) for n, c in zip(names, cells) if c not in ("", "-")] + [("note", scalar(note))]
        return _flow_map(pairs)
    parts = [scalar(c) if c != "" else '"-"' for c in cells]
    out = "["
    for i, p in enumerate(parts):
        if i:
            out += ","
            want = ref_starts[i] if ref_starts and i < len(ref_starts) else None
            out += " " * max(1, (want - len(out)) if want is not None else 1)
        out += p
    return out + "]"


def example_text(cells: list, keys: list) -> str:
    return _flow_map((k, scalar(c)) for k, c in zip(keys, cells) if c != "")


def render_table(t: TableDoc, out: Out) -> None:
    r = t.refs
    out.add(f"decision: {scalar(t.decision)}", [("decision", r.get(("prop", "decision")))])
    for k in PROPS:
        if t.props.get(k, "") != "":
            out.add(f"{k}: {value_yaml(t.props[k])}", [(k, r.get(("prop", k)))])
    for role, key, order in (("input", "inputs", INPUT_ATTRS), ("output", "outputs", OUTPUT_ATTRS)):
        cols = [c for c in t.cols if c.role == role]
        out.add(f"{key}:")
        width = max([len(scalar(c.name)) for c in cols] or [0]) + 1
        for c in cols:
            origins = [(c.name, r.get(("attr", c.name, "name")))] + [(a, r.get(("attr", c.name, a))) for a in c.attrs]
            out.add(f"  {(scalar(c.name) + ':').ljust(width)} {spec_text(c.attrs, order)}", origins)
    if t.due:
        out.add("due:")
        for n, text in t.due:
            out.add(f"  {scalar(n)}: {value_yaml(text) if text else '{}'}", [(n, r.get(("due", n)))])
    names = [c.name for c in t.cols]
    out.add("rules:")
    texts = [[scalar(c) if c != "" else '"-"' for c in row.cells] for row in t.rules]
    widths = [max([len(x[i]) for x in texts if i < len(x)] or [0]) for i in range(len(names))]
    starts, pos = [], 1
    for w in widths:
        starts.append(pos)
        pos += w + 2
    for row in t.rules:
        out.add("  - " + row_text(row.cells, names, row.note, starts), list(zip(names + ["note"], row.refs or [])))
    if t.examples:
        out.add("examples:")
        for ex in t.examples:
            out.add("  - " + example_text(ex.cells, t.ex_keys), [(k, ref, "examples") for k, ref in zip(t.ex_keys, ex.refs or [])])


def render_entries(kind: str, entries: list, out: Out) -> None:
    out.add(f"{kind}:")
    for e in entries:
        origins = [(e.name, e.ref)] + [(a, e.refs.get(a)) for a in e.attrs]
        if kind == "values":
            out.add(f"  {scalar(e.name)}: {value_yaml(e.attrs.get('spellings', '')) or '~'}", origins)
        elif kind == "calendars":
            out.add(f"  {scalar(e.name)}:", origins[:1])
            for a, v in e.attrs.items():
                if v != "":
                    out.add(f"    {a}: {value_yaml(v)}", [(a, e.refs.get(a))])
        else:
            out.add(f"  {scalar(e.name)}: {spec_text(e.attrs, ('type', 'label', 'columns', 'optional', 'values', 'description'))}", origins)


# ----------------------------------------------------------------- editing in place
class Structural(Exception):
    """A change that cannot be made as an edit of the text in place."""


class Editor:
    """Replacements of spans of a file's text, applied together."""

    def __init__(self, text: str):
        self.text = text
        self.edits: list[tuple[int, int, str]] = []

    def replace(self, start: int, end: int, new: str) -> None:
        for s, e, _ in self.edits:  # two edits of one span: the caller writes it afresh instead
            if start < e and s < end or (start == end and s < start < e) or (s == e and start < s < end):
                raise Structural("overlapping edits")
        self.edits.append((start, end, new))

    @staticmethod
    def own(*nodes) -> None:
        """Refuse to edit a value an alias (*name) may repeat: the edit would change it there too."""
        if any(getattr(n, "shared", False) for n in nodes if n is not None):
            raise Structural("anchored value")

    def result(self) -> str:
        out, pos = [], 0
        for s, e, new in sorted(self.edits, key=lambda x: (x[0], x[1])):
            if s < pos:
                raise Structural("overlapping edits")
            out.append(self.text[pos:s])
            out.append(new)
            pos = e
        out.append(self.text[pos:])
        return "".join(out)

    # lines
    def line_start(self, i: int) -> int:
        return self.text.rfind("\n", 0, i) + 1

    def line_end(self, i: int) -> int:
        """The offset after the newline of the line holding i (its comment included)."""
        j = self.text.find("\n", i)
        return len(self.text) if j < 0 else j + 1

    def alone(self, node: Node, lead=r"\s*(-\s+)?") -> bool:
        """Whether node's lines hold nothing else (but a `- ` before it and a comment after)."""
        ls = self.line_start(node.start)
        if not re.fullmatch(lead, self.text[ls:node.start]):
            return False
        rest = self.text[node.end:self.line_end(node.end)]
        return bool(re.fullmatch(r"\s*(#.*)?\s*", rest))

    # one value
    def set_scalar(self, node: Node, new: str, aligned: bool = False) -> None:
        """Replace a value by the scalar `new`, in the quotes it had; in an aligned flow
        row, the spaces after it grow or shrink so the next cells keep their column."""
        if not isinstance(node, Scalar):
            raise Structural("not a single value")
        self.own(node)
        old = self.text[node.start:node.end]
        q = old[0] if old[:1] in "'\"" else None
        rep = scalar(new, q) if q else scalar(new)
        self.replace(node.start, node.end, rep)
        if aligned:
            m = re.match(r"(\s*,)( +)(?=\S)", self.text[node.end:])
            if m and len(m.group(2)) > 1:
                delta = len(rep) - len(old)
                spaces = max(1, len(m.group(2)) - delta)
                self.replace(node.end + len(m.group(1)), node.end + m.end(), " " * spaces)

    def set_value(self, node: Node, text: str) -> None:
        """An attribute: a scalar keeps its quotes; a list or mapping is replaced by the flow text."""
        self.own(node)
        if text.strip()[:1] in "[{":
            check_flow(text.strip())
            self.replace(node.start, node.end, text.strip())
        elif isinstance(node, Scalar):
            self.set_scalar(node, text)
        else:
            self.replace(node.start, node.end, scalar(text))

    # keys of a mapping
    def add_key(self, m: Map, key: str, value_yaml_text: str, nl: str, after: str | None = None) -> None:
        self.own(m)
        if m.flow:
            close = m.end - 1
            if self.text[close] != "}":
                raise Structural("unexpected mapping end")
            sep = ", " if m.entries else ""
            self.replace(close, close, f"{sep}{scalar(key)}: {value_yaml_text}")
            return
        if not m.entries:
            raise Structural("empty block mapping")
        entries = list(m.entries.values())
        first_key = entries[0][0]
        indent = first_key.start - self.line_start(first_key.start)
        prev = m.entries.get(after) if after in m.entries else entries[-1]
        at = self.line_end(prev[1].end if prev[1].end >= 0 else prev[0].end)
        self.replace(at, at, " " * indent + f"{scalar(key)}: {value_yaml_text}" + nl)

    def remove_key(self, m: Map, key: str) -> None:
        kn, vn = m.entries[key]
        self.own(m, vn)
        if m.flow:
            keys = list(m.entries)
            i = keys.index(key)
            if i + 1 < len(keys):  # up to the next key
                self.replace(kn.start, m.entries[keys[i + 1]][0].start, "")
            elif i > 0:  # from the end of the previous value
                prev = m.entries[keys[i - 1]][1]
                self.replace(prev.end, vn.end if vn.end >= kn.end else kn.end, "")
            else:
                self.replace(kn.start, max(vn.end, kn.end), "")
            return
        end = max(vn.end, kn.end)
        ls = self.line_start(kn.start)
        if self.text[ls:kn.start].strip() or not re.fullmatch(r"\s*(#.*)?\s*", self.text[end:self.line_end(end)]):
            raise Structural("entry shares its line")
        self.replace(ls, self.line_end(end), "")

    def sync_map(self, m: Map, old: dict, new: dict, nl: str, order=(), row: bool = False) -> None:
        """Make the mapping's keys hold `new` (texts) where they hold `old`."""
        changed = {k for k in set(old) | set(new) if old.get(k, "") != new.get(k, "")}
        if m.flow and any(k not in m.entries or new.get(k, "") == "" for k in changed):
            self._rebuild_flow(m, old, new, changed, order, row)
            return
        for k in list(new) + [k for k in old if k not in new]:
            o, n = old.get(k, ""), new.get(k, "")
            if o == n:
                continue
            if k in m.entries and n != "":
                kn, node = m.entries[k]
                if row:
                    self.set_scalar(node, n)
                elif isinstance(node, (Seq, Map)) and not node.flow and n.strip()[:1] in "[{":
                    self.own(node)
                    check_flow(n.strip())  # a block list becomes a flow list on the key's line
                    self.replace(kn.end, node.end, ": " + n.strip())
                else:
                    self.set_value(node, n)
            elif k in m.entries:
                self.remove_key(m, k)
            else:
                before = [x for x in order if x in m.entries and order.index(x) < order.index(k)] if k in order else []
                self.add_key(m, k, scalar(n) if row else value_yaml(n), nl, before[-1] if before else None)

    def _rebuild_flow(self, m: Map, old: dict, new: dict, changed: set, order, row: bool) -> None:
        """A {..} mapping that gains or loses keys, written again: the pairs that did not
        change as they were, the changed ones with their new value, new ones in `order`."""
        self.own(m)
        pairs: list[tuple[str, str]] = []
        for k, (kn, vn) in m.entries.items():
            if k not in changed:
                pairs.append((k, self.text[kn.start:max(kn.end, vn.end)]))
            elif new.get(k, "") != "":
                v = new[k]
                if row:
                    was = self.text[vn.start:vn.end]
                    q = was[0] if was[:1] in "'\"" else None
                    rep = scalar(v, q) if q else scalar(v)
                else:
                    rep = value_yaml(v)
                pairs.append((k, self.text[kn.start:kn.end] + ": " + rep))
        for k in [k for k in new if k in changed and k not in m.entries and new[k] != ""]:
            text = f"{scalar(k)}: {scalar(new[k]) if row else value_yaml(new[k])}"
            at = len(pairs)
            if k in order:  # after the last key that comes before it
                for i, (p, _) in enumerate(pairs):
                    if p in order and order.index(p) < order.index(k):
                        at = i + 1
                    elif p in order:
                        break
            pairs.insert(at, (k, text))
        self.replace(m.start, m.end, "{" + ", ".join(t for _, t in pairs) + "}")

