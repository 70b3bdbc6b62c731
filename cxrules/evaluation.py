"""Evaluating a rule set over rows: inputs read and derived, tables run as stages in
dependency order on the engine, hit policies applied, due dates computed.

A bad cell becomes a row problem and blanks the outputs that depend on it; every
other row and every other output is still computed.
"""
from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .compiler import Compiled, compile_table
from .engine import Engine, default_engine
from .model import ANY, COLLECT, FIRST, PRIORITY, UNIQUE, Cmp, Range, RuleSet, Table, matches
from .problems import ERROR, WARNING
from .values import Duration, ValueProblem, coercer, display, encode, encoder

_NOT_TEXT = ("number", "date", "datetime")
# Python types a sheet column may hold that need no conversion for an input type
_CLEAN = {
    "number": {int, float, type(None)},
    "date": {dt.date, type(None)},
    "datetime": {dt.datetime, type(None)},
    "boolean": {bool, type(None)},
}


@dataclass(frozen=True)
class RowProblem:
    index: int  # position of the row in the rows given (0-based)
    name: str | None  # the input, field or output it concerns
    message: str
    table: str | None = None
    severity: str = ERROR
    suggestion: str | None = None


@dataclass
class Evaluation:
    """Columns of values, one entry per row given."""

    n: int
    columns: dict[str, list] = field(default_factory=dict)  # inputs, derived values, outputs, due dates
    fired: dict[str, list] = field(default_factory=dict)  # table -> rule row(s) that gave the result
    problems: list[RowProblem] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    distinct: dict[str, int] = field(default_factory=dict)  # table -> distinct input combinations
    settled: dict[str, set] = field(default_factory=dict)  # due name -> rows its `unless` excuses

    def row(self, i: int) -> dict:
        return {k: v[i] for k, v in self.columns.items()}


def now_in(tz: str) -> dt.datetime:
    return dt.datetime.now(ZoneInfo(tz)).replace(tzinfo=None, microsecond=0)


class Evaluator:
    """Evaluates one loaded, error-free rule set."""

    def __init__(self, ruleset: RuleSet, engine: Engine | None = None):
        self.rs = ruleset
        self.engine = engine or default_engine()
        self._compiled: dict[str, Compiled] = {}
        self._pieces: dict[str, list] = {}

    def compiled(self, table: Table) -> Compiled:
        c = self._compiled.get(table.name)
        if c is None:
            c = self._compiled[table.name] = compile_table(table)
        return c

    def pieces(self, table: Table) -> list:
        """For each input, what its cells can tell apart (see _canonical)."""
        p = self._pieces.get(table.name)
        if p is None:
            p = self._pieces[table.name] = [_distinctions(table, k) for k in range(len(table.inputs))]
        return p

    # ----------------------------------------------------------------- API
    def evaluate(self, rows: list[dict], decisions=None, as_of: dt.datetime | None = None, *, given_wins: bool = False, dayfirst: bool = False) -> Evaluation:
        """Evaluate `decisions` (default: all) and what they depend on.

        `rows` map input, field or output names to raw values (as read from a sheet).
        With `given_wins`, a value given for a derived or decision input is used as is
        instead of being computed (examples, explain); otherwise it is recomputed.
        """
        return self.evaluate_columns(_RowSource(rows), len(rows), decisions, as_of, given_wins=given_wins, dayfirst=dayfirst)

    def evaluate_columns(self, columns, n: int, decisions=None, as_of: dt.datetime | None = None, *, given_wins=False, dayfirst: bool = False) -> Evaluation:
        """`evaluate` over columns: `columns` maps a name to its n raw values (faster for sheets).

        given_wins: True, or the names (a set) whose given values win over computing them.
        """
        rs = self.rs
        as_of = as_of or now_in(rs.timezone)
        ev = Evaluation(n)
        bad: dict[str, set] = {}  # name -> rows whose value is unusable
        ctx = _Context(self, columns, ev, bad, as_of, dayfirst)
        if given_wins is True:
            wins = ctx.given
        elif given_wins:
            chosen = set(given_wins)
            wins = lambda name: name in chosen and ctx.given(name)  # noqa: E731
        else:
            wins = lambda name: False  # noqa: E731
        names = list(rs.tables) if decisions is None else ([decisions] if isinstance(decisions, str) else list(decisions))
        need: set[str] = set()

        def walk(name):
            if name in need or name not in rs.tables:
                return
            need.add(name)
            for i in rs.tables[name].inputs:
                if i.decision and not wins(i.name):
                    walk(i.decision)

        for name in names:
            walk(name)
        tables = [t for t in rs.order() if t.name in need]
        ev.tables = [t.name for t in tables]
        for t in tables:
            self._run_table(t, ctx, wins)
        return ev

    # ----------------------------------------------------------------- stages
    def _run_table(self, table: Table, ctx: "_Context", wins):
        ev, n = ctx.ev, ctx.ev.n
        cols, rows_bad = [], set()
        for inp in table.inputs:
            if inp.decision and not wins(inp.name):
                key = inp.output or inp.name
                values = ctx.ev.columns.get(key)
                if values is None:
                    values = ctx.column(inp.name, inp.type)
                else:
                    rows_bad |= ctx.bad.get(key, set())
                if inp.name != key:
                    ev.columns[inp.name] = values
            elif inp.derive and not wins(inp.name):
                values = ctx.derived(inp)
                rows_bad |= ctx.bad.get(inp.name, set())
            else:
                values = ctx.column(inp.name, inp.type)
                rows_bad |= ctx.bad.get(inp.name, set())
            if inp.allowed:
                ctx.check_allowed(inp, values, table)
                rows_bad |= ctx.bad.get(inp.name, set())
            enc = encoder(inp.type)
            cols.append([enc(v) if v is not None else None for v in values])
        cols = [_canonical(c, p) for c, p in zip(cols, self.pieces(table))]
        compiled = self.compiled(table)
        keys = compiled.keys
        # Rules are a pure function of the inputs: each distinct combination of input
        # values goes to the engine once, and its result is shared by the rows that have it.
        index: dict = {}
        distinct: list = []
        pos = [-1] * n
        get = index.get
        for i, t in enumerate(zip(*cols) if cols else [() for _ in range(n)]):
            j = get(t)
            if j is None:
                j = index[t] = len(distinct)
                distinct.append(t)
            pos[i] = j
        for i in rows_bad:
            pos[i] = -1
        got = self.engine.run(compiled, [{k: v for k, v in zip(keys, t) if v is not None} for t in distinct])
        ev.distinct[table.name] = len(distinct)
        self._apply_hit(table, got, pos, rows_bad, ctx)
        self._due(table, ctx, rows_bad)

    def _resolve(self, table: Table, fired, by_name) -> tuple:
        """(rule row(s), output values, problem, severity) for one engine answer."""
        nomatch = f"no rule row of '{table.name}' matched this row"
        none = (None,) * len(table.outputs)
        if table.hit in (FIRST, PRIORITY):
            if fired == "nomatch" or fired is None:
                return None, none, nomatch, WARNING
            rule = by_name[fired]
            return rule.index, tuple(rule.outputs), None, None
        matched = [by_name[x] for x in fired]
        if table.hit in (UNIQUE, ANY):
            if not matched:
                return None, none, nomatch, WARNING
            if len(matched) > 1 and (table.hit == UNIQUE or any(m.outputs != matched[0].outputs for m in matched[1:])):
                rows_txt = _and([str(m.index) for m in matched])
                why = "a unique table allows one" if table.hit == UNIQUE else "an 'any' table needs them to agree"
                return None, none, f"rule rows {rows_txt} of '{table.name}' all match this row ({why})", ERROR
            return matched[0].index, tuple(matched[0].outputs), None, None
        outs = []
        for j in range(len(table.outputs)):
            vals = [m.outputs[j] for m in matched if m.outputs[j] is not None]
            outs.append(_aggregate(table.aggregate, vals) if table.hit == COLLECT and table.aggregate else vals)
        return [m.index for m in matched], tuple(outs), None, None

    def _apply_hit(self, table: Table, got: list, pos: list, rows_bad: set, ctx: "_Context"):
        ev = ctx.ev
        by_name = {f"r{r.index}": r for r in table.rules}
        res = [self._resolve(table, g, by_name) for g in got]
        which_u = [r[0] for r in res] + [None]  # index -1: a row with a bad input
        for k, o in enumerate(table.outputs):
            col_u = [r[1][k] for r in res] + [None]
            if table.is_multi:  # lists: each row its own
                ev.columns[o.name] = [list(col_u[j]) if j >= 0 else None for j in pos]
            else:
                ev.columns[o.name] = [col_u[j] for j in pos]
        ev.fired[table.name] = [which_u[j] for j in pos]
        bad_out = set(rows_bad)
        if any(r[2] for r in res):
            for i, j in enumerate(pos):
                if j >= 0 and res[j][2]:
                    ev.problems.append(RowProblem(i, None, res[j][2], table.name, res[j][3]))
                    bad_out.add(i)
        for o in table.outputs:
            ctx.bad[o.name] = bad_out

    def _due(self, table: Table, ctx: "_Context", rows_bad: set):
        ev, n = ctx.ev, ctx.ev.n
        for d in table.due:
            base = ctx.column(d.source, ctx.field_type(d.source))
            amount = ev.columns[d.add]
            bad = set(ctx.bad.get(d.source, set())) | ctx.bad.get(d.add, set())
            fixed = self.rs.calendars.get(d.calendar)
            names = None if fixed else ev.columns.get(d.calendar)
            out = [None] * n
            # Rows to compute, by calendar (one batch per calendar), then problems in row order.
            todo: dict[int, tuple] = {}  # id(calendar) -> (calendar, rows)
            notes: dict[int, RowProblem] = {}
            for i in range(n):
                if i in bad or amount[i] is None:
                    continue
                if base[i] is None:
                    notes[i] = RowProblem(i, d.source, f"{ctx.label(d.source)} is blank, so {d.label} cannot be computed", table.name, WARNING)
                    continue
                cal = fixed
                if cal is None:
                    cname = names[i] if names else None
                    cal = self.rs.calendars.get(cname) if cname else None
                    if cal is None:
                        notes[i] = RowProblem(i, d.name, f"'{d.calendar}' gives '{cname}', which is not a calendar", table.name)
                        bad.add(i)
                        continue
                todo.setdefault(id(cal), (cal, []))[1].append(i)
            for cal, rows in todo.values():
                for i, r in zip(rows, cal.add_many([base[i] for i in rows], [amount[i] for i in rows])):
                    if isinstance(r, Exception):  # that row's ValueError / OverflowError
                        notes[i] = RowProblem(i, d.name, f"cannot compute {d.name}: {r}", table.name)
                        bad.add(i)
                    else:
                        out[i] = r
            ev.problems.extend(notes[i] for i in sorted(notes))
            ev.columns[d.name] = out
            ctx.bad[d.name] = bad
            if d.unless:
                tests = [(ctx.column(name, ctx.field_type(name)), t, ctx.field_type(name)) for name, t in d.unless.items()]
                ev.settled[d.name] = {i for i in range(n) if all(matches(t, encode(col[i], ty)) for col, t, ty in tests)}


_OTHER = object()


def _distinctions(table: Table, k: int):
    """('ordered', sorted boundaries) or ('equal', literal set) of input k's cells, or None.

    Two values between the same two boundaries (or both equal to one) satisfy exactly
    the same cells, so the engine need only see one of them.
    """
    inp = table.inputs[k]
    values = set()
    for rule in table.rules:
        for a in rule.tests[k].atoms:
            if isinstance(a, Cmp):
                values.add(a.value)
            elif isinstance(a, Range):
                values.update((a.lo, a.hi))
    if inp.type in ("number", "date", "datetime", "duration"):
        return ("ordered", sorted(values))
    return ("equal", values)


def _canonical(values: list, pieces) -> list:
    """Each value replaced by the first value seen that the table's cells cannot tell from it."""
    kind, marks = pieces
    seen: dict = {}
    out = []
    append = out.append
    if kind == "ordered":
        bl, n = bisect.bisect_left, len(marks)
        for v in values:
            if v is None:
                append(None)
                continue
            j = bl(marks, v)
            key = 2 * j + 1 if j < n and marks[j] == v else 2 * j
            r = seen.get(key)
            if r is None:
                r = seen[key] = v
            append(r)
    else:
        for v in values:
            if v is None or v in marks:
                append(v)
                continue
            r = seen.get(_OTHER)
            if r is None:
                r = seen[_OTHER] = v
            append(r)
    return out


def _and(items):
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _aggregate(agg: str, vals: list):
    if agg == "count":
        return len(vals)
    if not vals:
        return None
    if agg == "sum":
        if isinstance(vals[0], Duration):
            return Duration.from_seconds(sum(v.seconds for v in vals))
        return sum(vals)
    return min(vals) if agg == "min" else max(vals)


class _RowSource:
    """Row dicts seen as columns (what `evaluate` is given) for the column-wise stages."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self._names = None

    def __contains__(self, name) -> bool:
        if self._names is None:
            self._names = set().union(*self.rows) if self.rows else set()
        return name in self._names

    def get(self, name):
        if name not in self:
            return None
        return [r.get(name) for r in self.rows]


def _spelt(conv, reader: dict):
    """Text cells read through the rules' value aliases: a cell holding 紧急 reads as Urgent."""
    if not reader:
        return conv

    def read(v):
        s = conv(v)
        return reader.get(s.strip().casefold(), s) if s.__class__ is str else s

    return read


class _Context:
    """Per-evaluation cache of coerced and derived columns and of unusable cells."""

    def __init__(self, evaluator: Evaluator, rows, ev: Evaluation, bad, as_of, dayfirst):
        self.evaluator, self.rows, self.ev, self.bad, self.as_of, self.dayfirst = evaluator, rows, ev, bad, as_of, dayfirst
        self._given: dict[str, bool] = {}

    def given(self, name: str) -> bool:
        g = self._given.get(name)
        if g is None:
            g = self._given[name] = name in self.rows
        return g

    def label(self, name: str) -> str:
        """How a person knows a field: its first column header."""
        f = self.evaluator.rs.fields.get(name)
        return f.columns[0] if f and f.columns else name

    def field_type(self, name: str) -> str:
        rs = self.evaluator.rs
        if name in rs.fields:
            return rs.fields[name].type
        for t in rs.tables.values():
            for i in t.inputs:
                if i.name == name and i.source == "column":
                    return i.type
        return "text"

    def column(self, name: str, type_: str) -> list:
        ev = self.ev
        if name in ev.columns:
            return ev.columns[name]
        out = []
        append = out.append
        bad = self.bad.setdefault(name, set())
        conv = coercer(type_, self.dayfirst)
        if type_ == "text" and self.evaluator.rs.aliases:
            conv = _spelt(conv, self.evaluator.rs.aliases.reader(name))
        source = self.rows.get(name)
        if source is None:
            ev.columns[name] = out = [None] * ev.n
            return out
        types = set(map(type, source))
        if types <= _CLEAN.get(type_, set()) and not (float in types and any(v != v for v in source if type(v) is float)):
            # nothing to convert or report (NaN would need reading as blank)
            ev.columns[name] = out = list(source)
            return out
        for i, raw in enumerate(source):
            if raw is None:
                append(None)
                continue
            try:
                v = conv(raw)
            except ValueProblem as e:
                append(None)
                bad.add(i)
                ev.problems.append(RowProblem(i, name, str(e), suggestion=e.suggestion))
                continue
            append(v)
            if type(raw) is str and type_ in _NOT_TEXT and v is not None:
                # Excel's green triangle: right value, wrong kind of cell
                what = "number" if type_ == "number" else "date"
                ev.problems.append(RowProblem(i, name, f"{what} stored as text ('{raw.strip()}'); read as {display(v)}", None, WARNING))
        ev.columns[name] = out
        return out

    def check_allowed(self, inp, values, table):
        allowed = {encode(a, inp.type) for a in inp.allowed}
        bad = self.bad.setdefault(inp.name, set())
        shown = ", ".join(str(a) for a in inp.allowed)
        for i, v in enumerate(values):
            if v is not None and i not in bad and encode(v, inp.type) not in allowed:
                bad.add(i)
                self.ev.problems.append(RowProblem(i, inp.name, f"'{v}' is not one of the allowed values of {inp.name} ({shown})", table.name))

    def derived(self, inp) -> list:
        ev = self.ev
        if inp.name in ev.columns:
            return ev.columns[inp.name]
        d = inp.derive
        src = self.column(d.field, self.field_type(d.field))
        bad = self.bad.setdefault(inp.name, set())
        bad |= self.bad.get(d.field, set())
        as_of = self.as_of
        out: list = [None] * len(src)
        if d.func == "percentile":
            present = sorted(v for v in src if v is not None)
            m = len(present)
            for i, v in enumerate(src):
                if v is not None:
                    out[i] = 100.0 if m == 1 else 100.0 * bisect.bisect_left(present, v) / (m - 1)
        elif d.func == "days_since":
            today = as_of.toordinal()  # calendar days: a date-time counts by its date
            out = [today - v.toordinal() if v is not None else None for v in src]
            if inp.type == "duration":
                out = [Duration.of(days=x) if x is not None else None for x in out]
        else:
            cal = self.evaluator.rs.calendars.get(d.calendar) if d.calendar else None
            for i, v in enumerate(src):
                if v is None:
                    continue
                start = v if isinstance(v, dt.datetime) else dt.datetime(v.year, v.month, v.day)
                if cal is None:
                    secs = (as_of - start).total_seconds()
                else:
                    secs = cal.elapsed(start, as_of).seconds
                out[i] = Duration.from_seconds(secs) if inp.type == "duration" else secs / 3600
        ev.columns[inp.name] = out
        return out
