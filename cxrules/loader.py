"""Loading a rule set: YAML files -> checked model, collecting every problem with its place."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from . import calendars as calmod
from .aliases import canonical_rule_texts
from .model import (
    AGGREGATES,
    COLLECT,
    HIT_POLICIES,
    PRIORITY,
    Derivation,
    Due,
    Example,
    Field,
    Input,
    Loc,
    Output,
    Rule,
    RuleSet,
    RuleSource,
    Table,
)
from .problems import ERROR, WARNING, Problem, Problems, did_you_mean
from .stamp import file_digest
from .unary import is_dash, parse_output, parse_test
from .values import TYPES, ValueProblem, norm_text, parse_literal
from .yamlsrc import Map, Scalar, Seq, YamlSyntaxError, parse_documents

TABLE_KEYS = ("decision", "title", "hit", "inputs", "outputs", "due", "rules", "examples", "description")
INPUT_KEYS = ("type", "label", "columns", "from", "decision", "output", "allowed", "optional", "values", "description")
OUTPUT_KEYS = ("type", "label", "columns", "allowed", "highlight", "values", "description")
DUE_KEYS = ("from", "add", "calendar", "label", "columns", "unless", "description")
COLOURS = {
    "red": "FFC7CE", "orange": "FFD8A8", "yellow": "FFF2A8", "green": "C6EFCE", "blue": "BDD7EE",
    "grey": "D9D9D9", "gray": "D9D9D9", "purple": "E4D4F4",
}
FIELD_KEYS = ("type", "label", "columns", "optional", "values", "description")
DERIVATIONS = {
    # name: (arguments, default type, allowed types)
    "days_since": (1, "number", ("number", "duration")),
    "hours_since": (1, "duration", ("duration", "number")),
    "business_hours_since": (2, "duration", ("duration", "number")),
    "percentile": (1, "number", ("number",)),
    # over dated rows (measures.py): (FIELD, DATE, ...) and an optional last `by GROUP`
    "week_over_week": (2, "number", ("number",)),
    "days_in_a_row": (3, "number", ("number",)),
    "count_last_days": (3, "number", ("number",)),
    "sum_last_days": (3, "number", ("number",)),
}
DATED = ("week_over_week", "days_in_a_row", "count_last_days", "sum_last_days")
FORMS = {
    "days_since": "days_since(FIELD)", "hours_since": "hours_since(FIELD)",
    "business_hours_since": "business_hours_since(FIELD, CALENDAR)", "percentile": "percentile(FIELD)",
    "week_over_week": "week_over_week(FIELD, DATE) or week_over_week(FIELD, DATE, by GROUP)",
    "days_in_a_row": "days_in_a_row(FIELD, DATE, > 5) or days_in_a_row(FIELD, DATE, > 5, by GROUP)",
    "count_last_days": "count_last_days(FIELD, DATE, 7) or count_last_days(FIELD, DATE, 7, by GROUP)",
    "sum_last_days": "sum_last_days(FIELD, DATE, 7) or sum_last_days(FIELD, DATE, 7, by GROUP)",
}
_BY = re.compile(r"^by\s+(\S.*)$", re.I)
HIT_ALIASES = {
    "u": "unique", "f": "first", "p": "priority", "a": "any", "r": "rule order", "c": "collect",
    "c+": "collect sum", "c<": "collect min", "c>": "collect max", "c#": "collect count",
    "ruleorder": "rule order", "rule_order": "rule order", "rule-order": "rule order",
}
_DERIVE = re.compile(r"^\s*([A-Za-z_]\w*)\s*\(\s*(.*?)\s*\)\s*$")
_NAME = re.compile(r"^[A-Za-z_\u4e00-\u9fff][\w\u4e00-\u9fff]*$")


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


class _Loader:
    def __init__(self):
        self.rs = RuleSet()
        self.problems = Problems()
        self.pending: list[tuple[Table, Map, str]] = []  # tables whose cells need types first
        self.specs: dict[int, tuple] = {}  # id(input) -> (declared type, its YAML mapping)
        self.spelt: dict[tuple, tuple] = {}  # (scope, spelling as compared) -> (value, file, line)

    # ------------------------------------------------------------- problems
    def err(self, msg, file, node=None, *, table=None, row=None, column=None, suggestion=None, severity=ERROR, code="invalid", line=None):
        self.problems.append(
            Problem(msg, severity, code, file, line if line is not None else (node.line if node is not None else None), table, row, column, suggestion=suggestion)
        )

    def unknown_keys(self, m: Map, allowed, file, what, **where):
        for key in m.keys():
            if key not in allowed:
                self.err(f"unknown key '{key}' in {what}", file, m.key_node(key), suggestion=did_you_mean(key, allowed) or f"use one of: {', '.join(allowed)}", code="unknown-key", **where)
        for kn, first in m.duplicates:
            self.err(f"'{kn.text}' is given twice in {what} (first on line {first}); the second one is ignored", file, kn, code="duplicate-key", **where)

    def text_of(self, node, file, what, **where) -> str | None:
        if node is None:
            return None
        if isinstance(node, Scalar):
            return None if node.is_null else node.text.strip()
        self.err(f"{what} must be a single value, not a {'list' if isinstance(node, Seq) else 'mapping'}", file, node, **where)
        return None

    def flag_of(self, node, file, what, **where) -> bool:
        """yes/no keys such as optional: true (absent: no)."""
        t = self.text_of(node, file, what, **where)
        if t is None:
            return False
        v = t.casefold()
        if v in ("true", "yes", "on", "是"):
            return True
        if v in ("false", "no", "off", "否"):
            return False
        self.err(f"{what} must be true or false, not '{t}'", file, node, suggestion=f"write {what}: true", code="flag", **where)
        return False

    def text_list(self, node, file, what, **where) -> list[str]:
        if node is None:
            return []
        if isinstance(node, Scalar):
            return [] if node.is_null else [node.text.strip()]
        if isinstance(node, Seq):
            out = []
            for it in node.items:
                t = self.text_of(it, file, f"each entry of {what}", **where)
                if t is not None:
                    out.append(t)
            return out
        self.err(f"{what} must be a list like [Tier, 客户层级]", file, node, **where)
        return []

    # ------------------------------------------------------------- files
    def load_file(self, path: Path, shown: str):
        self.rs.files.append(shown)
        try:
            raw = path.read_bytes()
        except OSError as e:
            self.err(f"cannot read the file: {e.strerror}", shown, code="io")
            return
        # hashed as read, so a stamp names exactly the content that was evaluated
        self.rs.sources.append(RuleSource(path.name, str(path.resolve()), file_digest(raw)))
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            self.err("the file is not UTF-8 text", shown, line=line, suggestion="save it as UTF-8 in your editor", code="encoding")
            return
        try:
            docs = parse_documents(text)
        except YamlSyntaxError as e:
            self.err(e.message, shown, line=e.line, suggestion=e.hint, code="yaml")
            return
        if not docs:
            self.err("the file is empty", shown, line=1, severity=WARNING, code="empty")
        for doc in docs:
            self.load_document(doc, shown)

    def load_document(self, doc, file):
        if not isinstance(doc, Map):
            self.err("a rule file document must be a mapping that starts with 'decision:', 'journey:', 'fields:' or 'calendars:'", file, doc, code="document")
            return
        keys = doc.keys()
        if "decision" in keys:
            self.load_table(doc, file)
        elif "journey" in keys or "contact_caps" in keys:
            from . import journeys

            journeys.load_document(self, doc, file)
        elif "fields" in keys or "calendars" in keys or "values" in keys:
            for k in keys:
                if k == "fields":
                    self.load_fields(doc.get(k), file)
                elif k == "calendars":
                    self.load_calendars(doc.get(k), file)
                elif k == "values":
                    self.add_values(None, doc.get(k), file, "values")
                else:
                    self.err(f"unknown key '{k}' beside fields/calendars/values", file, doc.key_node(k), suggestion=did_you_mean(k, ["fields", "calendars", "values"]), code="unknown-key")
        else:
            hint = did_you_mean(keys[0], ["decision", "fields", "calendars", "values"]) if keys else None
            self.err("this document has no 'decision:', 'fields:' or 'calendars:' key", file, doc, suggestion=hint, code="document")

    # ------------------------------------------------------------- fields & calendars
    def load_fields(self, node, file):
        if not isinstance(node, Map):
            self.err("fields: must map each field name to {type, columns}", file, node, code="fields")
            return
        for name, (kn, spec) in node.entries.items():
            if not isinstance(spec, Map):
                self.err(f"field '{name}' must be a mapping like {{type: date, columns: [Last purchase]}}", file, spec, column=name, code="fields")
                continue
            self.unknown_keys(spec, FIELD_KEYS, file, f"field '{name}'", column=name)
            type_ = self.type_of(spec, file, name, default="text")
            if name in self.rs.fields:
                self.err(f"field '{name}' is defined twice (also at {self.rs.fields[name].loc.file}:{self.rs.fields[name].loc.line})", file, kn, column=name, code="duplicate")
                continue
            label = self.text_of(spec.get("label"), file, "label") or _label(name)
            cols = self.text_list(spec.get("columns"), file, "columns", column=name) or [label, name]
            self.rs.fields[name] = Field(name, type_, cols, Loc(file, kn.line), self.flag_of(spec.get("optional"), file, "optional", column=name))
            self.add_values(name, spec.get("values"), file, f"values of field '{name}'", column=name)

    def load_calendars(self, node, file):
        if not isinstance(node, Map):
            self.err("calendars: must map each calendar name to its settings", file, node, code="calendar")
            return
        for name, (kn, spec) in node.entries.items():
            if not isinstance(spec, Map):
                self.err(f"calendar '{name}' must be a mapping with timezone, hours, workdays, holidays", file, spec, column=name, code="calendar")
                continue
            if name in self.rs.calendars:
                self.err(f"calendar '{name}' is defined twice", file, kn, column=name, code="duplicate")
                continue
            raw = {k: _plain(v) for k, (_, v) in spec.entries.items()}
            cal, probs = calmod.parse_calendar(name, raw)
            for p in probs:
                where = spec.get(p.key) if p.key in spec.entries else spec.key_node(p.key)
                msg = p.message if p.message.startswith(f"calendar '{name}'") else f"calendar '{name}': {p.message}"
                self.err(msg, file, where or kn, column=p.key, suggestion=p.suggestion, code="calendar")
            if cal is not None and not probs:
                self.rs.calendars[name] = cal
            else:
                self.rs.calendars.setdefault(name, None)

    # ------------------------------------------------------------- value aliases
    def add_values(self, scope, node, file, what, **where):
        """`values: {VALUE: spelling or [spellings]}`: other spellings of text values, shared by
        every table (scope None) or for one input, output or field (scope: its name)."""
        if node is None:
            return
        if not isinstance(node, Map):
            self.err(f"{what} must map each value to its other spellings, e.g. {{Urgent: 紧急, Resolved: [已解决, 已处理]}}",
                     file, node, code="values", **where)
            return
        for kn, first in node.duplicates:
            self.err(f"'{kn.text}' is given twice in {what} (first on line {first}); its spellings go in one list",
                     file, kn, code="duplicate-key", suggestion=f"write {kn.text}: [spelling, other spelling]", **where)
        al = self.rs.aliases
        table = al.shared if scope is None else al.scoped.setdefault(scope, {})
        for value, (kn, vn) in node.entries.items():
            value = value.strip()
            spellings = self.text_list(vn, file, f"the spellings of '{value}'", **where)
            if not spellings:
                self.err(f"'{value}' in {what} has no other spelling", file, kn, code="values",
                         suggestion=f"write {value}: 紧急, or {value}: [spelling, other spelling]", **where)
                continue
            mine = table.setdefault(value, [])
            for sp in spellings:
                key = (scope, norm_text(sp))
                seen = self.spelt.get(key)
                if norm_text(sp) == norm_text(value):
                    continue
                if seen is not None and norm_text(seen[0]) != norm_text(value):
                    self.err(f"'{sp}' is a spelling of both '{seen[0]}' ({seen[1]}:{seen[2]}) and '{value}'", file, vn,
                             code="values", suggestion="a cell can only read as one value: keep the spelling under one of them", **where)
                    continue
                self.spelt[key] = (value, file, vn.line)
                if sp not in mine:
                    mine.append(sp)

    def check_values(self):
        """A spelling that is itself another value would make a cell ambiguous."""
        al = self.rs.aliases
        for (scope, sp), (value, file, line) in self.spelt.items():
            values = {norm_text(v): v for v in list(al.shared) + list(al.scoped.get(scope, {}) if scope else [])}
            other = values.get(sp)
            if other is not None and norm_text(other) != norm_text(value):
                self.err(f"'{other}' is a value of its own and also listed as a spelling of '{value}'", file, line=line,
                         code="values", suggestion=f"remove '{other}' from the spellings of '{value}'")
        self.rs.aliases._readers.clear()

    # ------------------------------------------------------------- tables
    def type_of(self, spec: Map, file, name, default, **where):
        node = spec.get("type")
        t = self.text_of(node, file, "type", **where)
        if t is None:
            return default
        t = t.lower()
        if t not in TYPES:
            self.err(f"unknown type '{t}' for '{name}'", file, node, suggestion=did_you_mean(t, TYPES) or f"use one of: {', '.join(TYPES)}", code="type", **where)
            return default
        return t

    def allowed_of(self, spec: Map, type_, file, name, **where):
        node = spec.get("allowed")
        if node is None:
            return None
        values = []
        items = node.items if isinstance(node, Seq) else [node]
        for it in items:
            if not isinstance(it, Scalar) or it.is_null:
                self.err(f"each allowed value of '{name}' must be a single value", file, it, **where)
                continue
            try:
                values.append(parse_literal(it.text, type_))
            except ValueProblem as e:
                self.err(f"allowed value of '{name}': {e}", file, it, **where)
        return values

    def load_table(self, doc: Map, file):
        name = self.text_of(doc.get("decision"), file, "decision")
        if not name:
            self.err("'decision:' needs a name, e.g. decision: tier", file, doc.get("decision") or doc, code="name")
            return
        where = {"table": name}
        if not _NAME.match(name):
            self.err(f"'{name}' is not a usable decision name: use letters, digits and _ only", file, doc.get("decision"), code="name", **where)
        self.unknown_keys(doc, TABLE_KEYS, file, f"decision '{name}'", **where)
        if name in self.rs.tables:
            other = self.rs.tables[name].loc
            self.err(f"decision '{name}' is defined twice (also at {other.file}:{other.line})", file, doc.get("decision"), code="duplicate", **where)
            return
        title = self.text_of(doc.get("title"), file, "title", **where) or _label(name)
        hit, agg = self.hit_of(doc, file, name)
        inputs = self.inputs_of(doc.get("inputs"), file, name, doc.line)
        outputs = self.outputs_of(doc.get("outputs"), file, name, doc.line)
        seen = {}
        for io in inputs + outputs:
            if io.name in seen:
                self.err(f"'{io.name}' is both an input and an output", file, line=io.loc.line, code="duplicate", column=io.name, **where)
            seen[io.name] = io
        if hit == PRIORITY and not any(o.allowed for o in outputs):
            self.err("a priority table ranks rows by the order of an output's allowed values, but no output has 'allowed:'", file, doc.get("hit"), code="priority", suggestion="add allowed: [highest, ..., lowest] to the output", **where)
        if agg in ("sum", "min", "max"):
            for o in outputs:
                if o.type not in ("number", "duration", "date", "datetime") or (agg == "sum" and o.type in ("date", "datetime")):
                    self.err(f"'collect {agg}' cannot {agg} {o.type} output '{o.name}'", file, line=o.loc.line, column=o.name, code="aggregate", suggestion="make it a number, or use plain 'collect'", **where)
        table = Table(name, title, hit, agg, inputs, outputs, [], [], [], Loc(file, doc.get("decision").line))
        self.rs.tables[name] = table
        self.pending.append((table, doc, file))

    def hit_of(self, doc, file, table):
        node = doc.get("hit")
        text = self.text_of(node, file, "hit", table=table)
        if text is None:
            return "unique", None
        t = " ".join(text.lower().split())
        t = HIT_ALIASES.get(t.replace(" ", ""), HIT_ALIASES.get(t, t))
        parts = t.split()
        if t in HIT_POLICIES:
            return t, None
        if parts and parts[0] == COLLECT and len(parts) == 2:
            if parts[1] in AGGREGATES:
                return COLLECT, parts[1]
            self.err(f"unknown collect operator '{parts[1]}'", file, node, table=table, suggestion="use collect sum, collect min, collect max or collect count", code="hit")
            return COLLECT, None
        self.err(f"unknown hit policy '{text}'", file, node, table=table, suggestion=did_you_mean(t, HIT_POLICIES) or "use first, unique, priority, any, rule order or collect (sum/min/max/count)", code="hit")
        return "first", None

    def _specs(self, node, file, table, what):
        if node is None:
            return []
        if isinstance(node, Seq):  # also accept a list of {name: spec}
            out = []
            for it in node.items:
                if isinstance(it, Map) and len(it.entries) == 1:
                    out.extend((k, kn, v) for k, (kn, v) in it.entries.items())
                elif isinstance(it, Scalar):
                    out.append((it.text, it, Map(it.line, it.col)))
                else:
                    self.err(f"each of {what} must be 'name: {{type: ...}}'", file, it, table=table, code=what)
            return out
        if isinstance(node, Map):
            for kn, first in node.duplicates:
                self.err(f"{what[:-1]} '{kn.text}' is given twice (first on line {first})", file, kn, table=table, code="duplicate")
            return [(k, kn, v) for k, (kn, v) in node.entries.items()]
        self.err(f"{what} must map each name to its settings", file, node, table=table, code=what)
        return []

    def inputs_of(self, node, file, table, at: int) -> list[Input]:
        out = []
        specs = self._specs(node, file, table, "inputs")
        if not specs:
            self.err("the table has no inputs", file, node, table=table, code="inputs", line=None if node else at,
                     suggestion="add inputs: with what the table looks at, e.g. spend: {type: number, columns: [Spend 12m]}")
        for name, kn, spec in specs:
            where = {"table": table, "column": name}
            if isinstance(spec, Scalar) and not spec.is_null:  # shorthand `name: number`
                spec = Map(spec.line, spec.col, {"type": (spec, spec)})
            if not isinstance(spec, Map):
                spec = Map(kn.line, kn.col)
            if not _NAME.match(name):
                self.err(f"'{name}' is not a usable input name: use letters, digits and _ only", file, kn, code="name", **where)
            self.unknown_keys(spec, INPUT_KEYS, file, f"input '{name}'", **where)
            label = self.text_of(spec.get("label"), file, "label", **where) or _label(name)
            dec = self.text_of(spec.get("decision"), file, "decision", **where)
            frm_node = spec.get("from")
            frm = self.text_of(frm_node, file, "from", **where)
            derive = None
            if dec and frm:
                self.err(f"input '{name}' has both 'from:' and 'decision:'; keep one", file, frm_node, code="source", **where)
                frm = None  # read as the decision, so the from: raises no further problems
            if frm:
                derive = self.derivation(frm, frm_node, file, where)
            # a from: that could not be read is still a derived (numeric) input: no second error
            default = DERIVATIONS[derive.func][1] if derive else ("number" if frm else "text")
            type_ = self.type_of(spec, file, name, default, **where) if not (dec and spec.get("type") is None) else None
            if derive and type_ not in DERIVATIONS[derive.func][2]:
                ok = " or ".join(DERIVATIONS[derive.func][2])
                self.err(f"{derive.func}() gives a {ok}, but input '{name}' is {type_}", file, spec.get("type"), suggestion=f"set type: {DERIVATIONS[derive.func][1]}", code="type", **where)
            cols = self.text_list(spec.get("columns"), file, "columns", **where)
            if cols and (dec or frm):
                self.err(f"input '{name}' reads {'another decision' if dec else 'a derived value'}, so its 'columns:' are not used", file, spec.get("columns"), severity=WARNING, code="source", **where)
            if not cols and not dec and not frm:
                cols = [label, name]
            inp = Input(name, type_ or "text", label, cols, derive=derive, decision=dec, loc=Loc(file, kn.line),
                        optional=self.flag_of(spec.get("optional"), file, "optional", **where))
            inp.output = (self.text_of(spec.get("output"), file, "output", **where) or name) if dec else None
            self.specs[id(inp)] = (type_, spec)  # resolved once other tables are known
            self.add_values(name, spec.get("values"), file, f"values of input '{name}'", **where)
            if type_:
                inp.allowed = self.allowed_of(spec, type_, file, name, **where)
            out.append(inp)
        return out

    def derivation(self, text, node, file, where) -> Derivation | None:
        m = _DERIVE.match(text)
        if not m:
            self.err(f"'from: {text}' is not one of the derivations", file, node, suggestion="write " + ", ".join(f.split(" or ")[0] for f in FORMS.values()), code="from", **where)
            return None
        func, args = m.group(1), [a.strip() for a in m.group(2).split(",")] if m.group(2).strip() else []
        if func not in DERIVATIONS:
            self.err(f"unknown derivation '{func}()'", file, node, suggestion=did_you_mean(func, DERIVATIONS) or "use " + ", ".join(DERIVATIONS), code="from", **where)
            return None
        if func in DATED:
            return self.dated(func, args, text, node, file, where)
        n = DERIVATIONS[func][0]
        if len(args) != n:
            self.err(f"{func}() takes {n} argument{'s' if n > 1 else ''}, got {len(args)}", file, node, suggestion=f"write {FORMS[func]}", code="from", **where)
            return None
        return Derivation(func, args[0], args[1] if n == 2 else None, node.line)

    def dated(self, func, args, text, node, file, where) -> Derivation | None:
        """week_over_week(FIELD, DATE), days_in_a_row(FIELD, DATE, TEST), count_last_days /
        sum_last_days(FIELD, DATE, N), each with an optional last argument `by GROUP`. The
        test is typed once the field's type is known (resolve_inputs)."""
        by = None
        if args and _BY.match(args[-1]):
            by = _BY.match(args[-1]).group(1).strip()
            args = args[:-1]
        n = DERIVATIONS[func][0]
        if func == "days_in_a_row" and len(args) > n:  # a test may hold commas: "Red, Amber"
            args = args[: n - 1] + [", ".join(args[n - 1:])]
        if len(args) != n or not all(args):
            self.err(f"{func}() takes {n} arguments and an optional 'by GROUP', got {len(args)}", file, node, suggestion=f"write {FORMS[func]}", code="from", **where)
            return None
        for a in args[:2] + ([by] if by else []):
            if not _NAME.match(a):
                self.err(f"{func}(): '{a}' is not a field name", file, node, suggestion=f"write {FORMS[func]}", code="from", **where)
                return None
        days = None
        if func in ("count_last_days", "sum_last_days"):
            try:
                days = int(args[2])
                ok = str(days) == args[2].lstrip("+") and 1 <= days <= 3660
            except ValueError:
                ok = False
            if not ok:
                self.err(f"{func}(): the number of days must be a whole number from 1 to 3660, not '{args[2]}'", file, node, suggestion=f"write {FORMS[func]}", code="from", **where)
                return None
        return Derivation(func, args[0], None, node.line, date=args[1], by=by, days=days,
                          test=args[2] if func == "days_in_a_row" else None, text=" ".join(text.split()))

    def outputs_of(self, node, file, table, at: int) -> list[Output]:
        out = []
        specs = self._specs(node, file, table, "outputs")
        if not specs:
            self.err("the table has no outputs", file, node, table=table, code="outputs", line=None if node else at,
                     suggestion="add outputs: with what the table decides, e.g. tier: {type: text}")
        for name, kn, spec in specs:
            where = {"table": table, "column": name}
            if isinstance(spec, Scalar) and not spec.is_null:
                spec = Map(spec.line, spec.col, {"type": (spec, spec)})
            if not isinstance(spec, Map):
                spec = Map(kn.line, kn.col)
            if not _NAME.match(name):
                self.err(f"'{name}' is not a usable output name: use letters, digits and _ only", file, kn, code="name", **where)
            self.unknown_keys(spec, OUTPUT_KEYS, file, f"output '{name}'", **where)
            type_ = self.type_of(spec, file, name, "text", **where)
            label = self.text_of(spec.get("label"), file, "label", **where) or _label(name)
            cols = self.text_list(spec.get("columns"), file, "columns", **where) or [label, name]
            allowed = self.allowed_of(spec, type_, file, name, **where)
            highlight = self.highlight_of(spec.get("highlight"), type_, file, name, where)
            self.add_values(name, spec.get("values"), file, f"values of output '{name}'", **where)
            out.append(Output(name, type_, label, cols, allowed, Loc(file, kn.line), highlight))
        return out

    def highlight_of(self, node, type_, file, name, where) -> dict:
        """`highlight: {VALUE: colour}`: rows whose output has VALUE are filled with the colour."""
        if node is None:
            return {}
        if not isinstance(node, Map):
            self.err(f"highlight of '{name}' must map values to colours, e.g. {{3: red, 2: orange}}", file, node, code="highlight", **where)
            return {}
        out = {}
        for key, (kn, vn) in node.entries.items():
            try:
                value = parse_literal(key, type_)
            except ValueProblem as e:
                self.err(f"highlight of '{name}': {e}", file, kn, code="highlight", **where)
                continue
            colour = (self.text_of(vn, file, "colour", **where) or "").strip()
            rgb = COLOURS.get(colour.lower()) or (colour.lstrip("#").upper() if re.fullmatch(r"#?[0-9A-Fa-f]{6}", colour) else None)
            if rgb is None:
                self.err(f"'{colour}' is not a colour", file, vn, code="highlight", suggestion=did_you_mean(colour, COLOURS) or "use red, orange, yellow, green, blue, grey, purple or a hex code like #FFC7CE", **where)
                continue
            out[value] = rgb
        return out

    def unless_of(self, node, file, name, where) -> dict:
        """`unless: {status: "Resolved, Closed"}`: rows where every test holds are never overdue."""
        if node is None:
            return {}
        if not isinstance(node, Map):
            self.err(f"'unless' of due '{name}' must map columns to tests, e.g. {{status: \"Resolved, Closed\"}}", file, node, code="due", **where)
            return {}
        fields = self.known_fields()
        out = {}
        for key, (kn, vn) in node.entries.items():
            if key not in fields:
                self.err(f"'unless' of due '{name}' reads '{key}', which is neither a field nor an input column", file, kn, suggestion=did_you_mean(key, fields), code="unknown-field", **where)
                continue
            text = None if not isinstance(vn, Scalar) or vn.is_null else vn.text
            try:
                out[key] = parse_test(text, fields[key])
            except ValueProblem as e:
                self.err(f"'unless' of due '{name}': {e}", file, vn, code="cell", **where)
        return out

    # ------------------------------------------------------------- second pass
    def resolve(self):
        rs = self.rs
        for table, doc, file in self.pending:
            self.resolve_inputs(table, file)
        from . import journeys

        journeys.resolve(self)  # after the tables: a journey's only_if may test their outputs
        self.find_loops()
        for table, doc, file in self.pending:
            table.due = self.due_of(doc.get("due"), table, file)
        for table, doc, file in self.pending:
            table.rules = self.rules_of(doc.get("rules"), table, file)
            table.examples = self.examples_of(doc.get("examples"), table, file)
        self.check_values()
        canonical_rule_texts(rs)
        zones = [c.timezone for c in rs.calendars.values() if c is not None]
        rs.timezone = zones[0] if zones else "UTC"
        rs.calendars = {k: v for k, v in rs.calendars.items() if v is not None}

    def resolve_inputs(self, table: Table, file):
        rs = self.rs
        for inp in table.inputs:
            where = {"table": table.name, "column": inp.name}
            declared, spec = self.specs[id(inp)]
            if inp.decision:
                src = rs.tables.get(inp.decision)
                if src is None:
                    self.err(f"input '{inp.name}' reads decision '{inp.decision}', which no rule file defines", file, line=inp.loc.line, suggestion=did_you_mean(inp.decision, rs.tables), code="unknown-decision", **where)
                    inp.type = declared or "text"
                    continue
                out = inp.output
                if out not in src.result_names:
                    self.err(f"decision '{src.name}' has no output '{out}'", file, line=inp.loc.line, suggestion=did_you_mean(out, src.result_names) or f"its outputs are: {', '.join(src.result_names)}; name one with output:, e.g. {{decision: {src.name}, output: {(src.result_names or ['NAME'])[0]}}}", code="unknown-output", **where)
                    inp.type = declared or "text"
                    continue
                if src.is_multi:
                    self.err(f"decision '{src.name}' gives a list ({src.hit_text}), which another table cannot read", file, line=inp.loc.line, suggestion="use a single-result hit policy or collect with sum/min/max/count there", code="multi", **where)
                t = src.output_type(out)
                if declared and declared != t:
                    self.err(f"input '{inp.name}' is declared {declared}, but decision '{src.name}' gives {t}", file, line=inp.loc.line, suggestion=f"remove the type or set type: {t}", code="type", **where)
                inp.type = t
                if inp.allowed is None:
                    o = src.output(out)
                    inp.allowed = list(o.allowed) if o and o.allowed else None
                    if spec.get("allowed") is not None:
                        inp.allowed = self.allowed_of(spec, t, file, inp.name, **where)
            if inp.derive:
                d = inp.derive
                fields = self.known_fields()
                if d.field not in fields:
                    self.err(f"{d.func}() reads '{d.field}', which is neither a field nor an input column", file, line=d.line, suggestion=did_you_mean(d.field, fields) or "declare it under fields:", code="unknown-field", **where)
                else:
                    ftype = fields[d.field]
                    want = {"percentile": ("number",), "week_over_week": ("number",), "sum_last_days": ("number",),
                            "days_in_a_row": None, "count_last_days": None}.get(d.func, ("date", "datetime"))
                    if want and ftype not in want:
                        hint = f"write {FORMS[d.func]} with a {' or '.join(want)} field as FIELD" if d.func in DATED else None
                        self.err(f"{d.func}() needs a {' or '.join(want)} field, but '{d.field}' is {ftype}", file, line=d.line, code="type", suggestion=hint, **where)
                    if isinstance(d.test, str):
                        try:
                            inp.derive = d = dataclasses.replace(d, test=parse_test(d.test, ftype))
                        except ValueProblem as e:
                            self.err(f"{d.func}(): the test '{d.test}' for '{d.field}': {e}", file, line=d.line, code="from", suggestion=f"write {FORMS[d.func]}", **where)
                            inp.derive = d = dataclasses.replace(d, test=None)
                if isinstance(d.test, str):  # its field is unknown: said above
                    inp.derive = d = dataclasses.replace(d, test=None)
                for role, name in (("date", d.date), ("group", d.by)):
                    if name is None:
                        continue
                    if name not in fields:
                        self.err(f"{d.func}() reads '{name}' as its {role}, which is neither a field nor an input column", file, line=d.line, suggestion=did_you_mean(name, fields) or "declare it under fields:", code="unknown-field", **where)
                    elif role == "date" and fields[name] not in ("date", "datetime"):
                        dates = [n for n, ty in fields.items() if ty in ("date", "datetime")]
                        self.err(f"{d.func}() needs a date or datetime field to date the rows, but '{name}' is {fields[name]}", file, line=d.line, code="type",
                                 suggestion=f"the second argument is the rows' date: one of {', '.join(dates)}" if dates else "declare the date column under fields: with type: date", **where)
                if d.calendar is not None and d.calendar not in rs.calendars:
                    self.err(f"unknown calendar '{d.calendar}'", file, line=d.line, suggestion=did_you_mean(d.calendar, rs.calendars) or "define it under calendars:", code="unknown-calendar", **where)

    def known_fields(self) -> dict[str, str]:
        """Field name -> type: declared fields, then column inputs of any table."""
        out = {n: f.type for n, f in self.rs.fields.items()}
        for t in self.rs.tables.values():
            for i in t.inputs:
                if i.source == "column" and i.name not in out:
                    out[i.name] = i.type
        return out

    def find_loops(self):
        rs, state, reported = self.rs, {}, set()

        def visit(name, path):
            state[name] = 1
            t = rs.tables[name]
            for i in t.inputs:
                nxt = i.decision
                if nxt not in rs.tables:
                    continue
                if state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt] if nxt in path else [name, nxt]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.err(f"decisions form a loop: {' -> '.join(cycle)}", t.loc.file, line=i.loc.line, table=name, column=i.name, suggestion="a table cannot depend on itself, directly or through others", code="loop")
                elif state.get(nxt) is None:
                    visit(nxt, path + [nxt])
            state[name] = 2

        for n in list(rs.tables):
            if n not in state:
                visit(n, [n])
        if reported:  # break the loops so evaluation order stays finite
            looped = set().union(*reported)
            for t in rs.tables.values():
                for i in t.inputs:
                    if t.name in looped and i.decision in looped:
                        i.decision = None

    def due_of(self, node, table: Table, file) -> list[Due]:
        out = []
        if node is None:
            return out
        fields = self.known_fields()
        for name, kn, spec in self._specs(node, file, table.name, "due"):
            where = {"table": table.name, "column": name}
            if not isinstance(spec, Map):
                self.err(f"due '{name}' must be {{from: FIELD, add: OUTPUT, calendar: NAME}}", file, spec, code="due", **where)
                continue
            self.unknown_keys(spec, DUE_KEYS, file, f"due '{name}'", **where)
            frm = self.text_of(spec.get("from"), file, "from", **where)
            add = self.text_of(spec.get("add"), file, "add", **where)
            cal = self.text_of(spec.get("calendar"), file, "calendar", **where) or "everyday"
            ok = True
            if not frm:
                self.err(f"due '{name}' needs 'from:', the date field it counts from", file, spec, code="due", **where)
                ok = False
            elif frm not in fields:
                self.err(f"due '{name}' counts from '{frm}', which is neither a field nor an input column", file, spec.get("from"), suggestion=did_you_mean(frm, fields) or "declare it under fields:", code="unknown-field", **where)
                ok = False
            elif fields[frm] not in ("date", "datetime"):
                self.err(f"due '{name}' counts from '{frm}', which is {fields[frm]}, not a date", file, spec.get("from"), code="type", **where)
                ok = False
            o = table.output(add) if add else None
            if not add:
                self.err(f"due '{name}' needs 'add:', the duration output to add", file, spec, code="due", **where)
                ok = False
            elif o is None:
                self.err(f"due '{name}' adds '{add}', which is not an output of this table", file, spec.get("add"), suggestion=did_you_mean(add, [x.name for x in table.outputs]), code="unknown-output", **where)
                ok = False
            elif o.type != "duration":
                self.err(f"due '{name}' adds '{add}', which is {o.type}, not a duration", file, spec.get("add"), code="type", **where)
                ok = False
            if cal not in self.rs.calendars:
                co = table.output(cal)
                if co is None:
                    known = list(self.rs.calendars) + [x.name for x in table.outputs if x.type == "text"]
                    if spec.get("calendar") is None:  # the manager wrote no calendar: say so, not "'everyday' is unknown"
                        self.err(f"due '{name}' names no calendar, and there is no 'everyday' calendar to count in", file, spec, suggestion="add calendar: NAME to the due, or define an 'everyday' calendar under calendars:", code="unknown-calendar", **where)
                    else:
                        self.err(f"due '{name}' uses calendar '{cal}', which is neither a calendar nor an output of this table", file, spec.get("calendar"), suggestion=did_you_mean(cal, known) or "define it under calendars:", code="unknown-calendar", **where)
                    ok = False
                elif co.type != "text":
                    self.err(f"due '{name}' takes its calendar from output '{cal}', which must be text", file, spec.get("calendar"), code="type", **where)
                    ok = False
            label = self.text_of(spec.get("label"), file, "label", **where) or _label(name)
            cols = self.text_list(spec.get("columns"), file, "columns", **where) or [label, name]
            if name in table.result_names or name in [i.name for i in table.inputs]:
                self.err(f"'{name}' is already an input or output of this table", file, kn, code="duplicate", **where)
                ok = False
            unless = self.unless_of(spec.get("unless"), file, name, where)
            if ok:
                out.append(Due(name, frm, add, cal, label, cols, Loc(file, kn.line), unless))
        return out

    def cell_nodes(self, row, table: Table, file, rno) -> list | None:
        n_in, n_out = len(table.inputs), len(table.outputs)
        if isinstance(row, Seq):
            cells = list(row.items)
            if len(cells) != n_in + n_out:
                names = ", ".join([i.name for i in table.inputs] + [o.name for o in table.outputs])
                self.err(f"the row has {len(cells)} cells but the table has {n_in} inputs and {n_out} outputs ({names})", file, row, table=table.name, row=rno, code="row-length", suggestion="write '-' for 'anything' or 'no value' rather than leaving a cell out")
                return None
            return cells
        if isinstance(row, Map):
            names = [i.name for i in table.inputs] + [o.name for o in table.outputs]
            for k in row.keys():
                if k not in names and k != "note":
                    self.err(f"unknown column '{k}' in the row", file, row.key_node(k), table=table.name, row=rno, column=k, suggestion=did_you_mean(k, names), code="unknown-column")
            for kn, first in row.duplicates:
                self.err(f"'{kn.text}' is given twice in the row (first on line {first})", file, kn, table=table.name, row=rno, code="duplicate-key")
            return [row.get(n) for n in names]
        self.err("a rule row must be a list of cells [..] or a mapping {input: test, ..., output: value}", file, row, table=table.name, row=rno, code="row")
        return None

    def rules_of(self, node, table: Table, file) -> list[Rule]:
        out: list[Rule] = []
        where = {"table": table.name}
        if node is None:
            self.err("the table has no 'rules:'", file, line=table.loc.line, code="rules", suggestion='add rules: with one row per case, e.g. - [">= 5", VIP]', **where)
            return out
        if not isinstance(node, Seq):
            self.err("rules: must be a list of rows", file, node, code="rules", **where)
            return out
        if not node.items:
            self.err("the table has no rule rows", file, node, code="rules", **where)
        for rno, row in enumerate(node.items, 1):
            cells = self.cell_nodes(row, table, file, rno)
            if cells is None:
                continue
            note = None
            if isinstance(row, Map) and row.get("note") is not None:
                note = self.text_of(row.get("note"), file, "note", table=table.name, row=rno)
            tests, outs, locs, bad = [], [], [], False
            n_in = len(table.inputs)
            for ci, cell in enumerate(cells):
                col = table.inputs[ci] if ci < n_in else table.outputs[ci - n_in]
                cw = {"table": table.name, "row": rno, "column": col.name}
                line = cell.line if cell is not None else row.line
                locs.append(Loc(file, line))
                if isinstance(cell, (Seq, Map)):
                    shown = "[" + ", ".join(getattr(x, "text", "?") for x in cell.items) + "]" if isinstance(cell, Seq) else "{...}"
                    self.err(f"the cell {shown} was read as a YAML {'list' if isinstance(cell, Seq) else 'mapping'}", file, cell, suggestion=f'put it in quotes: "{shown}"', code="cell", **cw)
                    bad = True
                    continue
                text = None if cell is None or cell.is_null else cell.text
                try:
                    if ci < n_in:
                        tests.append(parse_test(text, col.type))
                    else:
                        outs.append(parse_output(text, col.type))
                except ValueProblem as e:
                    self.err(str(e), file, line=line, code="cell", suggestion=_cell_hint(col, text), **cw)
                    bad = True
            if not bad:
                out.append(Rule(rno, tests, outs, note, Loc(file, row.line), locs))
        return out

    def examples_of(self, node, table: Table, file) -> list[Example]:
        out: list[Example] = []
        if node is None:
            return out
        if not isinstance(node, Seq):
            self.err("examples: must be a list of {input: value, ..., output: value}", file, node, table=table.name, code="examples")
            return out
        upstream = {}
        for t in self.rs.requires(table.name)[:-1]:
            for i in t.inputs:
                upstream.setdefault(i.name, i)
        outputs = {o.name: o for o in table.outputs}
        dues = {d.name: d for d in table.due}
        # Fields that derived inputs and due dates read may be given too.
        known = self.known_fields()
        for t in self.rs.requires(table.name):
            for f in [f for i in t.inputs if i.derive for f in i.derive.reads] + [d.source for d in t.due]:
                if f in known and f not in upstream:
                    upstream[f] = Field(f, known[f], [])
        for eno, ex in enumerate(node.items, 1):
            where = {"table": table.name, "row": eno}
            if not isinstance(ex, Map):
                self.err("each example must be a mapping like {tier: VIP, every: 14d}", file, ex, code="examples", **where)
                continue
            ins, exp, bad = {}, {}, False
            names = [i.name for i in table.inputs] + list(outputs) + list(dues) + list(upstream)
            for k, (kn, v) in ex.entries.items():
                col = next((i for i in table.inputs if i.name == k), None) or outputs.get(k) or upstream.get(k)
                if k in dues:
                    type_, target = "datetime", exp
                elif col is None:
                    self.err(f"the example names '{k}', which is not an input or output of '{table.name}'", file, kn, suggestion=did_you_mean(k, names), code="unknown-column", column=k, **where)
                    bad = True
                    continue
                else:
                    type_, target = col.type, (exp if k in outputs else ins)
                if not isinstance(v, Scalar):
                    self.err(f"the example value of '{k}' must be a single value", file, v, column=k, code="examples", **where)
                    bad = True
                    continue
                try:
                    target[k] = None if v.is_null or is_dash(v.text) else parse_literal(v.text, type_)
                except ValueProblem as e:
                    self.err(f"example value of '{k}': {e}", file, v, column=k, code="examples", **where)
                    bad = True
            if not exp:
                self.err("the example gives no expected output", file, ex, code="examples", severity=WARNING, suggestion=f"add one of: {', '.join(outputs)}", **where)
            if not bad:
                out.append(Example(eno, ins, exp, Loc(file, ex.line)))
        return out


def _cell_hint(col, text) -> str | None:
    if col.type == "text" and text and re.match(r"^\s*(<|>|\[|\()", text):
        return f"'{col.name}' is a text column; set its type (number, date, duration) to compare by size"
    if col.type == "duration":
        return "durations are written like 30s, 90m, 2h, 3d, 1w"
    if col.type == "number" and text and re.search(r"[A-Za-z\u4e00-\u9fff]", text):
        return f"'{col.name}' is a number column; if it holds words, set type: text"
    return None


def _plain(node):
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, Seq):
        return [_plain(i) for i in node.items]
    if isinstance(node, Map):
        return {k: _plain(v) for k, (_, v) in node.entries.items()}
    return None


def rule_files(path) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml")))
    return [p]


def load_rules(paths, base: Path | None = None) -> tuple[RuleSet, Problems]:
    """Load one or more rule files or folders; returns the rule set and every problem.

    The rule set is usable for evaluation only when there are no errors.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    ld = _Loader()
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            ld.err(f"no such file or folder: {p}", str(p), code="io", suggestion="give a rule file or the folder that holds them (e.g. rules/)")
            continue
        found = rule_files(p)
        if p.is_dir() and not found:
            ld.err("the folder holds no .yaml rule files", str(p), code="io")
        files.extend(found)
    for f in files:
        ld.load_file(f, _shown(f, base))
    ld.resolve()
    return ld.rs, ld.problems


def _shown(path: Path, base: Path | None) -> str:
    try:
        return str(path.resolve().relative_to((base or Path.cwd()).resolve()))
    except ValueError:
        return str(path)
