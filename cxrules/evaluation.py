"""Evaluating a rule set over rows: inputs read and derived, tables run as stages in
dependency order on the engine, hit policies applied, due dates computed.

A bad cell becomes a row problem and blanks the outputs that depend on it; every
other row and every other output is still computed.
"""
from __future__ import annotations

import bisect
import dataclasses
import itertools
import datetime as dt
import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .compiler import Compiled, compile_table, engine_value
from .engine import Engine, Refused, default_engine, key_json
from .model import ANY, COLLECT, FIRST, PRIORITY, UNIQUE, Cmp, Range, RuleSet, Table, matches
from .problems import ERROR, WARNING, CxError, did_you_mean
from .values import WHAT, Duration, ValueProblem, a_type, bad_text, coercer, display, encode, encoder, out_of_range, shown

_NOT_TEXT = ("number", "date", "datetime")
# A table of this many rule rows or more, with this many combinations per rule row to
# check, is shown to the engine in parts (columnar.Partition): per combination only the
# rule rows that can match it. The engine's time per combination grows with the rows it holds.
PARTITION_MIN_RULES = 24
PARTITION_MIN_COMBINATIONS = 20
# Python types a sheet column may hold that need no conversion for an input type
_CLEAN = {
    "number": {int, float, type(None)},
    "date": {dt.date, type(None)},
    "datetime": {dt.datetime, type(None)},
    "boolean": {bool, type(None)},
}


class ArgumentError(CxError, ValueError):
    """An argument of evaluate() / evaluate_columns() that no row can be evaluated with."""


@dataclass(frozen=True)
class RowProblem:
    index: int  # position of the row in the rows given (0-based)
    name: str | None  # the input, field or output it concerns
    message: str
    table: str | None = None
    severity: str = ERROR
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"row {self.index}" + (f", {self.name}" if self.name else "")
        return f"{where}: {self.severity}: {self.message}" + (f" ({self.suggestion})" if self.suggestion else "")


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
        self._partitions: dict = {}
        self._leaf_compiled: dict = {}

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

        A value that cannot be used (text in a number column, NaN, a list, ...) and a row
        that is not a dict are problems of their row; the other rows are evaluated. Arguments
        no row can be evaluated with (rows that are not a list, an unknown decision, an
        `as_of` that is not a date and time) raise ArgumentError before any work.
        """
        rows = _rows_arg(rows)
        names, as_of = self._arguments(decisions, as_of)
        source = _RowSource(rows)
        return self._evaluate(source, len(rows), names, as_of, given_wins, dayfirst, source.bad, {})

    def evaluate_columns(self, columns, n: int, decisions=None, as_of: dt.datetime | None = None, *, given_wins=False,
                         dayfirst: bool = False, table_values: Mapping | None = None, text_native: bool = False) -> Evaluation:
        """`evaluate` over columns: `columns` maps a name to its n raw values (faster for sheets).

        text_native: every value arrives as text (a CSV file), so a number or date written as
        text is the normal case and gets no 'stored as text' warning.

        given_wins: True, or the names (a set) whose given values win over computing them.
        table_values: derived inputs computed over a whole table of which these rows are a
        part (percentile ranks, by cxrules.batch): name -> n values. They are used instead of
        deriving from these rows alone; a column of the same name in `columns` never replaces them.
        """
        if n.__class__ is not int or n < 0:
            raise ArgumentError(f"n must be the number of rows (an int of 0 or more), not {_described(n)}")
        if not (hasattr(columns, "get") and hasattr(columns, "__contains__")):
            raise ArgumentError(f"columns must map names to lists of values, not {_described(columns)}")
        if isinstance(columns, Mapping):
            for name, col in columns.items():
                if not hasattr(col, "__len__") or not hasattr(col, "__getitem__") or isinstance(col, (str, bytes, Mapping)):
                    raise ArgumentError(f"column '{shown(name)}' must be a list of values, not {_described(col)}")
                if len(col) != n:
                    raise ArgumentError(f"column '{shown(name)}' has {len(col)} values for {n} rows")
        names, as_of = self._arguments(decisions, as_of)
        table = self._table_values(table_values, n)
        return self._evaluate(columns, n, names, as_of, given_wins, dayfirst, {}, table, text_native)

    def _table_values(self, given, n: int) -> dict:
        """`table_values` checked: each a derived input of the rules, n numbers or blanks."""
        if given is None:
            return {}
        if not isinstance(given, Mapping):
            raise ArgumentError(f"table_values must map derived input names to lists of values, not {_described(given)}")
        derived = {i.name for t in self.rs.tables.values() for i in t.inputs if i.derive}
        out = {}
        for name, col in given.items():
            if name not in derived:
                hint = did_you_mean(str(name), derived) or f"derived inputs: {', '.join(sorted(derived)) or 'none'}"
                raise ArgumentError(f"table_values names '{shown(str(name))}', which is no derived input of the rules; {hint}")
            if not hasattr(col, "__len__") or isinstance(col, (str, bytes, Mapping)) or len(col) != n:
                raise ArgumentError(f"table_values['{shown(name)}'] must hold {n} values, one per row")
            col = list(col)
            if not set(map(type, col)) <= {int, float, type(None)} or not _finite(col):
                raise ArgumentError(f"table_values['{shown(name)}'] must hold numbers or None")
            out[name] = col
        return out

    def _arguments(self, decisions, as_of) -> tuple[list[str], dt.datetime]:
        """The decision names and the moment of `evaluate`, or one ArgumentError naming the bad argument."""
        tables = self.rs.tables
        if decisions is None:
            names = list(tables)
        elif isinstance(decisions, str):
            names = [decisions]
        elif isinstance(decisions, Iterable) and not isinstance(decisions, (bytes, Mapping)):
            names = list(decisions)
        else:
            raise ArgumentError(f"decisions must be a decision name or a list of names, not {_described(decisions)}")
        for name in names:
            if not isinstance(name, str):
                raise ArgumentError(f"decisions must be decision names, not {_described(name)}")
            if name not in tables:
                hint = did_you_mean(name, tables) or f"decisions: {', '.join(tables)}"
                raise ArgumentError(f"no decision named '{shown(name)}'; {hint}")
        tz = self.rs.timezone
        if as_of is None:
            return names, now_in(tz)
        if isinstance(as_of, dt.datetime) and as_of == as_of:  # NaT is a datetime unequal to itself
            if as_of.tzinfo is not None and as_of.utcoffset() is not None:  # the same moment, on the rules' clock
                as_of = as_of.astimezone(ZoneInfo(tz))
            return names, as_of.replace(tzinfo=None)
        if isinstance(as_of, dt.date) and not isinstance(as_of, dt.datetime):
            return names, dt.datetime(as_of.year, as_of.month, as_of.day)
        raise ArgumentError(f"as_of must be a date and time (datetime), or None for now; it is {_described(as_of)}")

    def _evaluate(self, source, n: int, names: list[str], as_of: dt.datetime, given_wins, dayfirst: bool, bad_rows: dict,
                  table_values: dict, text_native: bool = False) -> Evaluation:
        rs = self.rs
        ev = Evaluation(n)
        bad: dict[str, set] = {}  # name -> rows whose value is unusable
        ctx = _Context(self, source, ev, bad, as_of, dayfirst)
        ctx.table_values = table_values
        ctx.text_native = text_native
        for i, why in bad_rows.items():
            ev.problems.append(RowProblem(i, None, why))
        ctx.bad_rows = set(bad_rows)
        if given_wins is True:
            wins = ctx.given
        elif given_wins:
            chosen = set(given_wins)
            wins = lambda name: name in chosen and ctx.given(name)  # noqa: E731
        else:
            wins = lambda name: False  # noqa: E731
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
    def _run_table(self, table: Table, ctx: "_Context", wins, shared: bool = False):
        """shared: a collect table's lists may be shared by the rows of a combination (a
        journey's own only_if table, read by no one else); else each row gets its own."""
        if hasattr(table, "journey"):  # dated steps, not a decision table (see journeys.py)
            from .journey_replay import run

            return run(self, table, ctx)
        ev, n = ctx.ev, ctx.ev.n
        cols, rows_bad = [], set(ctx.bad_rows)
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
            cols.append(values)
        codes, reps, exact = [], [], []
        for inp, values, p in zip(table.inputs, cols, self.pieces(table)):
            c, r, ok = _classes(values, inp.type, p)
            codes.append(c)
            reps.append(r)
            exact.append(ok)
        compiled = self.compiled(table)
        keys = compiled.keys
        # Rules are a pure function of the inputs: each distinct combination of what the
        # cells can tell apart goes to the engine once; its rows share the result.
        from . import columnar

        pos, firsts = columnar.group(codes, n)
        if rows_bad:
            pos[sorted(rows_bad)] = -1
        rows = _bodies(keys, codes, reps, firsts)
        part = self.partition(table, len(rows))
        firsts_codes = [cs[firsts] for cs in codes] if part is not None else None
        del codes  # a column's worth each: not kept while the engine runs
        if part is not None and all(exact[k] for k in part.inputs):
            got = self._run_parts(table, part, rows, firsts_codes, reps)
        else:
            got = self.engine.run(compiled, rows)
        ev.distinct[table.name] = len(rows)
        self._apply_hit(table, got, pos, rows_bad, ctx, shared)
        self._due(table, ctx, rows_bad)

    def partition(self, table: Table, combinations: int):
        """The table's Partition when it is big enough, and has enough rows to check, for
        showing the engine only part of it per combination to pay; else None."""
        if len(table.rules) < PARTITION_MIN_RULES or combinations < PARTITION_MIN_COMBINATIONS * len(table.rules):
            return None
        if table.name not in self._partitions:
            from . import columnar

            part = columnar.Partition(table, self.pieces(table))
            self._partitions[table.name] = part if len(part.leaves) > 1 else None
        return self._partitions[table.name]

    def _run_parts(self, table: Table, part, rows: list, codes: list, reps: list) -> list:
        """engine.run over the whole table, each combination shown only its leaf's rule rows."""
        from .columnar import np

        leaf_of = part.assign(codes, reps)
        got: list = [None] * len(rows)
        order = np.argsort(leaf_of, kind="stable")
        cuts = np.flatnonzero(np.diff(leaf_of[order])) + 1
        for idx in np.split(order, cuts):
            if not len(idx):
                continue
            leaf = int(leaf_of[idx[0]])
            c = self._leaf_compiled.get((table.name, leaf))
            if c is None:
                sub = dataclasses.replace(table, rules=[table.rules[i] for i in part.leaves[leaf]])
                c = self._leaf_compiled[(table.name, leaf)] = compile_table(sub)
            ids = idx.tolist()
            for i, g in zip(ids, self.engine.run(c, [rows[i] for i in ids])):
                got[i] = g
        return got

    def _resolve(self, table: Table, fired, by_name) -> tuple:
        """(rule row(s), output values, problem, severity) for one engine answer."""
        nomatch = f"no rule row of '{table.name}' matched this row"
        none = (None,) * len(table.outputs)
        if fired.__class__ is Refused:  # cannot happen for values evaluate() accepts; never loses the other rows
            return None, none, f"the rule engine could not evaluate this row ({fired.reason}); please report this as a cxrules bug", ERROR
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
            if table.hit == COLLECT and table.aggregate:
                outs.append(_aggregate(table.aggregate, [m.outputs[j] for m in matched if m.outputs[j] is not None]))
            else:  # one entry per matching row, blanks too: the n-th entries of every output go together
                outs.append([m.outputs[j] for m in matched])
        return [m.index for m in matched], tuple(outs), None, None

    def _apply_hit(self, table: Table, got: list, pos, rows_bad: set, ctx: "_Context", shared: bool = False):
        """pos: per row its combination (an int array; -1 for a row with a bad input)."""
        from . import columnar

        ev = ctx.ev
        by_name = {f"r{r.index}": r for r in table.rules}
        memo: dict = {}
        res = []
        for g in got:  # answers repeat (the rule that fired): resolve each once
            key = g if g.__class__ is str else tuple(g) if g.__class__ is list else None
            r = memo.get(key) if key is not None else None
            if r is None:
                r = self._resolve(table, g, by_name)
                if key is not None:
                    memo[key] = r
            res.append(r)
        at = pos.tolist()
        for k, o in enumerate(table.outputs):
            col_u = [r[1][k] for r in res]
            if table.is_multi and not shared:  # lists: each row its own
                col_u.append(None)
                ev.columns[o.name] = [list(col_u[j]) if j >= 0 else None for j in at]
            else:
                ev.columns[o.name] = columnar.scatter(col_u, pos)
        ev.fired[table.name] = columnar.scatter([r[0] for r in res], pos)
        bad_out = set(rows_bad)
        if any(r[2] for r in res):
            hit = columnar.objects([bool(r[2]) for r in res] + [False]).astype(bool)
            for i in columnar.np.flatnonzero(hit[pos]).tolist():
                j = at[i]
                ev.problems.append(RowProblem(i, None, res[j][2], table.name, res[j][3]))
                bad_out.add(i)
        for o in table.outputs:
            ctx.bad[o.name] = bad_out

    def _due_rows(self, d, table: Table, ctx: "_Context", base, amount, bad: set, fixed, names, todo: dict, notes: dict) -> None:
        """_due's rows to compute by calendar, and its notes, a column at a time (the
        calendar named per row looked up once per name); todo left empty if names are
        not all hashable (the per-row loop then does it)."""
        from .columnar import np

        n = len(base)
        skip = np.fromiter(map(operator.is_, amount, itertools.repeat(None)), bool, n)
        if bad:
            skip[sorted(bad)] = True
        no_base = np.fromiter(map(operator.is_, base, itertools.repeat(None)), bool, n) & ~skip
        for i in np.flatnonzero(no_base).tolist():
            notes[i] = RowProblem(i, d.source, f"{ctx.label(d.source)} is blank, so {d.label} cannot be computed", table.name, WARNING)
        live = ~skip & ~no_base
        if fixed is not None:
            if live.any():
                todo[id(fixed)] = (fixed, np.flatnonzero(live).tolist())
            return
        if names:
            ids: dict = {}
            try:
                code = np.fromiter(map(ids.setdefault, names, itertools.count()), np.int64, n)
            except TypeError:  # a name that is not text: the per-row loop says so
                notes.clear()
                return
        else:
            ids, code = {None: 0}, np.zeros(n, dtype=np.int64)
        rows_of: dict = {}
        for cname, first in ids.items():
            rows = live & (code == first)
            if not rows.any():
                continue
            cal = self.rs.calendars.get(cname) if cname else None
            if cal is None:
                for i in np.flatnonzero(rows).tolist():
                    notes[i] = RowProblem(i, d.name, f"'{d.calendar}' gives '{cname}', which is not a calendar", table.name)
                    bad.add(i)
                continue
            rows_of.setdefault(id(cal), (cal, []))[1].append(np.flatnonzero(rows))
        for key, (cal, parts) in sorted(rows_of.items(), key=lambda kv: min(int(p[0]) for p in kv[1][1])):
            todo[key] = (cal, np.sort(np.concatenate(parts)).tolist())

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
            if fixed is not None and not bad and None not in amount and None not in base:
                todo[id(fixed)] = (fixed, range(n))  # every row, as they are: no per-row gathering
            elif n >= 64:
                self._due_rows(d, table, ctx, base, amount, bad, fixed, names, todo, notes)
            for i in range(n) if not todo and not notes else ():
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
                got = _add_by_pair(cal, base, amount) if rows.__class__ is range else cal.add_many([base[i] for i in rows], [amount[i] for i in rows])
                if rows.__class__ is range and not any(isinstance(r, Exception) for r in _entries(got)):
                    out = got
                    continue
                for i, r in zip(rows, got):
                    if isinstance(r, Exception):  # that row's ValueError / OverflowError
                        notes[i] = RowProblem(i, d.name, f"cannot compute {d.name}: {out_of_range(r)}", table.name)
                        bad.add(i)
                    else:
                        out[i] = r
            ev.problems.extend(notes[i] for i in sorted(notes))
            ev.columns[d.name] = out
            ctx.bad[d.name] = bad
            if d.unless:
                tests = [(ctx.column(name, ctx.field_type(name)), t, ctx.field_type(name)) for name, t in d.unless.items()]
                ev.settled[d.name] = _all_match(tests, n)


def _add_by_pair(cal, base: list, amount: list) -> list:
    """cal.add_many(base, amount) with each distinct (start, amount) worked out once, the
    answer Coded by pair, when the pairs are few (dates a rule adds a few cadences to);
    otherwise row by row. Amounts are a rule's outputs (Coded); starts are numbered here."""
    from .columnar import Coded, coded, np, numbered

    n = len(base)
    ca = coded(amount)
    if ca is None or n < 64:
        return cal.add_many(base, amount)
    try:
        starts, bc = numbered(base)
    except TypeError:  # a start that cannot be a key: add_many says what it is
        return cal.add_many(base, amount)
    amounts, ac = ca
    if len(starts) > n // 2:  # moments, nearly one a row: nothing to share
        return cal.add_many(base, amount)
    pairs, at = np.unique(bc * len(amounts) + ac, return_inverse=True)
    if len(pairs) > n // 2:
        return cal.add_many(base, amount)
    keys = pairs.tolist()
    m = len(amounts)
    return Coded(cal.add_many([starts[k // m] for k in keys], [amounts[k % m] for k in keys]), at.reshape(-1))


def _entries(values: list) -> list:
    """The values to look at once each: a Coded column's table, else the values."""
    from .columnar import coded

    c = coded(values)
    return c[0] if c is not None else values


_OTHER = object()
_EXACT = 2 ** 53  # the engine compares numbers as doubles: larger ints are not exact there


def _finite(values) -> bool:
    """No NaN or ±inf among the numbers (None allowed): their sum is finite only then."""
    try:
        total = sum(filter(None, values))
    except OverflowError:  # an int too large for a float next to a float: look closer
        return False
    return total - total == 0  # an overflowing sum of finite values just takes the slow path


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


def _bodies(keys, codes: list, reps: list, firsts) -> list:
    """The engine's message for each combination: as JSON (each class's value written once),
    or as dicts when a value has no JSON form (the engine then refuses those rows alone)."""
    from .columnar import objects

    at = [cs[firsts] for cs in codes]  # each combination's class in each input
    try:
        texts = [{c: key_json(k, v) for c, v in r.items()} for k, r in zip(keys, reps)]
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        columns = [[r.get(c) for c in cs.tolist()] for cs, r in zip(at, reps)]
        return [{k: v for k, v in zip(keys, t) if v is not None} for t in zip(*columns)] if columns else [{} for _ in firsts]
    if not at:
        return [""] * len(firsts)
    cols = []
    for cs, t in zip(at, texts):
        lut = objects([t.get(c, "") for c in range(max(t, default=-1) + 2)])  # the last: a blank (code -1)
        cols.append(lut[cs])
    if all((cs >= 0).all() for cs in at):  # no blanks: joined by numpy's + over objects (C loops)
        out = cols[0]
        for col in cols[1:]:
            out = out + "," + col
        return out.tolist()
    return [",".join(filter(None, t)) for t in zip(*(c.tolist() for c in cols))]


def _classes(values: list, type_: str, pieces):
    """(codes, reps, exact) of one input column: per row its class (-1 blank), the value the
    engine gets for each class, and whether the codes are the table's own classes (else
    they number the distinct canonical values)."""
    from . import columnar

    kind, marks = pieces
    enc = encoder(type_)
    e = None
    if kind == "ordered":
        a = columnar.encoded(values, type_)
        if a is None:
            e = [enc(v) if v is not None else None for v in values]
            a = columnar.exact_floats(e)
        codes = columnar.ordered_classes(a, marks) if a is not None else None
        if codes is not None:
            return codes, {c: enc(values[i]) for c, i in columnar.first_of_each(codes).items()}, True
    else:
        got = _equal_classes(values, enc, marks)
        if got is not None:
            return got[0], got[1], True
    if e is None:
        e = [enc(v) if v is not None else None for v in values]
    codes, reps = columnar.factorize(_canonical(e, pieces))
    return codes, reps, False


def _equal_classes(values: list, enc, marks):
    """columnar.equal_classes of the encoded values, each distinct value encoded once."""
    from . import columnar

    np = columnar.np
    ids: dict = {}
    try:
        first = list(map(ids.setdefault, values, itertools.count()))  # the first row of each value
        lut = np.zeros(len(values), dtype=np.int64)
        lits: dict = {}
        reps: dict = {}
        for v, i in ids.items():  # in the order rows show them
            if v is None:
                lut[i] = -1
                continue
            x = enc(v)
            if x in marks:
                c = lits.get(x)
                if c is None:
                    c = lits[x] = len(lits) + 1
                    reps[c] = x
            else:
                c = 0
                reps.setdefault(0, x)
            lut[i] = c
    except TypeError:  # an unhashable value (a list from a collect table): the per-value path
        return None
    return lut[np.array(first, dtype=np.int64)], reps


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
                r = seen[key] = v if v.__class__ is not int or -_EXACT <= v <= _EXACT else _stand_in(v, marks, key)
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


def _stand_in(v: int, marks: list, key: int):
    """For an int past 2**53: a value the engine compares exactly that no cell tells from `v`.

    Python compares `v` with the cells' values exactly (bisect); the engine would round it to
    a double, or refuse it past 64 bits. Candidates are checked against both a cell's exact
    value and the engine's view of it. If there is none, `v` goes as it is and the engine
    refuses that row alone.
    """
    j, on_mark = divmod(key, 2)
    if on_mark:
        m = engine_value(marks[j])  # what the compiled rule holds: equal in the engine
        return m if m.__class__ is not int or -_EXACT <= m <= _EXACT else v
    bounds = [(marks[j - 1], 1)] if j > 0 else []
    if j < len(marks):
        bounds.append((marks[j], -1))
    tries = []
    for x in [v] + [m for m, _ in bounds]:
        try:
            tries.append(float(x))
        except OverflowError:
            pass
    tries += [math.nextafter(t, math.inf) for t in tries] + [math.nextafter(t, -math.inf) for t in tries] + [0.0]
    for c in tries:  # float/int comparisons are exact in Python
        if math.isfinite(c) and all(c > m and c > engine_value(m) if side > 0 else c < m and c < engine_value(m)
                                    for m, side in bounds):
            return c
    return v


def _and(items):
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _days_since(src: list, today: int) -> list:
    """today - v.toordinal() for each date of src (None stays None), with numpy for dates."""
    from . import columnar

    a = columnar.encoded(src, "date") if set(map(type, src)) <= {dt.date, type(None)} else None
    if a is None:
        return [today - v.toordinal() if v is not None else None for v in src]
    np = columnar.np
    blank = np.isnan(a)
    # a few thousand distinct days among a million rows: each an int once, the rows Coded
    days, codes = np.unique(np.where(blank, np.inf, a), return_inverse=True)
    table = [None if d == np.inf else (today - _EPOCH_ORDINAL) - int(d) for d in days.tolist()]
    return columnar.Coded(table, codes.reshape(-1))


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _percentiles(src: list) -> list | None:
    """100 * (values below v) / (count - 1) for each v of src (None stays None), with numpy;
    None when doubles would not be exact, or fewer than two values."""
    from . import columnar

    a = columnar.exact_floats(src)
    if a is None:
        return None
    np = columnar.np
    p = np.sort(a[~np.isnan(a)])
    if len(p) < 2:
        return None
    x = 100.0 * np.searchsorted(p, a, side="left") / (len(p) - 1)
    out = columnar.objects(x.tolist())
    out[np.isnan(a)] = None
    return out.tolist()


def _all_match(tests: list, n: int) -> set:
    """Rows where every (column, test, type) holds; each distinct value tested once."""
    rows = None
    for col, t, ty in tests:
        memo: dict = {}
        hit = set()
        for i, v in enumerate(col):
            try:
                m = memo.get(v)
                if m is None:
                    m = memo[v] = matches(t, encode(v, ty))
            except TypeError:  # unhashable
                m = matches(t, encode(v, ty))
            if m:
                hit.add(i)
        rows = hit if rows is None else rows & hit
    return rows if rows is not None else set(range(n))


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


def _described(x) -> str:
    """A wrong argument as an error message names it."""
    if x is None:
        return "None"
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if x != x else str(x)
    if isinstance(x, dt.datetime) and x != x:
        return "NaT"
    if isinstance(x, str):
        return f"the text '{shown(x)}'"
    return f"the {type(x).__name__} {shown(x)}"


def _rows_arg(rows) -> list:
    if isinstance(rows, list):
        return rows
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # iterating a DataFrame gives its column names
        raise ArgumentError("rows must be a list of dicts; for a pandas DataFrame pass "
                            "df.astype(object).where(df.notna(), None).to_dict('records')")
    if rows is None or isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
        hint = "; to evaluate one row, pass [row]" if isinstance(rows, Mapping) else ""
        raise ArgumentError(f"rows must be a list of dicts (column name -> value), not {_described(rows)}{hint}")
    return list(rows)


def _row_kind(r) -> str:
    if r is None:
        return "None"
    if isinstance(r, str):
        return f"the text '{shown(r)}'"
    return a_type(r)


class _RowSource:
    """Row dicts seen as columns (what `evaluate` is given) for the column-wise stages.

    A row that is not a mapping reads as blank and is listed in `bad` (index -> why).
    """

    def __init__(self, rows: list):
        self.bad: dict[int, str] = {}
        if set(map(type, rows)) - {dict}:  # rare: find the rows that are not dicts
            rows = list(rows)
            for i, r in enumerate(rows):
                if type(r) is dict:
                    continue
                try:
                    rows[i] = dict(r) if isinstance(r, Mapping) else None
                except Exception:  # noqa: BLE001 - a Mapping that cannot be read
                    rows[i] = None
                if rows[i] is None:
                    rows[i] = {}
                    self.bad[i] = f"the row is {_row_kind(r)}, not a dict; give each row as a dict of column names to values"
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


def _read_texts(source: list, conv) -> list | None:
    """[conv(v)] for a column of texts, each distinct text read once; None if one cannot be
    read (the per-row path then says so for each row)."""
    first: dict = {}
    at = list(map(first.setdefault, source, itertools.count()))
    got = {}
    for v, i in first.items():
        if v is None:
            got[i] = None
            continue
        try:
            got[i] = conv(v)
        except Exception:  # noqa: BLE001 - reported row by row by the caller's path
            return None
    return list(map(got.__getitem__, at))


class _Failed:
    """A cell's reading that raised: the error, kept to be said for every row with that cell."""

    __slots__ = ("error",)

    def __init__(self, error: Exception):
        self.error = error


class _Context:
    """Per-evaluation cache of coerced and derived columns and of unusable cells."""

    def __init__(self, evaluator: Evaluator, rows, ev: Evaluation, bad, as_of, dayfirst):
        self.evaluator, self.rows, self.ev, self.bad, self.as_of, self.dayfirst = evaluator, rows, ev, bad, as_of, dayfirst
        self.bad_rows: set[int] = set()  # rows that are not dicts: every output blank
        self.table_values: dict[str, list] = {}  # derived inputs computed over the whole table
        self._given: dict[str, bool] = {}
        self.text_native = False  # values come as text (CSV): no 'stored as text' warnings
        self.numberings: dict[str, tuple[list, object]] = {}  # column(numbered=True): (distinct values, codes)

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

    def column(self, name: str, type_: str, numbered: bool = False) -> list:
        """The column as type_'s values, each bad cell blank and said (a problem of its row).
        numbered: for a date or datetime column, also keep its numbering (numberings[name])."""
        ev = self.ev
        if name in ev.columns:
            return ev.columns[name]
        out = []
        append = out.append
        bad = self.bad.setdefault(name, set())
        conv = coercer(type_, self.dayfirst, self.evaluator.rs.timezone)
        if type_ == "text" and self.evaluator.rs.aliases:
            conv = _spelt(conv, self.evaluator.rs.aliases.reader(name))
        source = self.rows.get(name)
        if source is None:
            ev.columns[name] = out = [None] * ev.n
            return out
        if numbered and type_ in ("date", "datetime") and source.__class__ is list:
            # numbered at once: the types of the few distinct dates tell (only a date
            # subclass can equal a date, and is one)
            from .columnar import numbered as number

            try:
                keys, codes = number(source)
            except TypeError:  # an unhashable value: the per-value path says what it is
                pass
            else:
                if set(map(type, keys)) <= _CLEAN[type_]:
                    self.numberings[name] = keys, codes
                    ev.columns[name] = source
                    return source
        types = set(map(type, source))
        if types <= _CLEAN.get(type_, set()) and (float not in types or _finite(source)):
            # nothing to convert or report (NaN and ±inf are reported as bad values)
            ev.columns[name] = out = source if source.__class__ is list else list(source)
            return out
        if type_ == "text" and types <= {str, type(None)}:
            quick = _read_texts(source, conv)
            if quick is not None:
                out = quick
                self._check_text(name, out, bad)
                ev.columns[name] = out
                return out
        memo: dict = {}  # texts repeat (tiers, statuses): each read once
        for i, raw in enumerate(source):
            if raw is None:
                append(None)
                continue
            v = memo.get(raw, memo) if raw.__class__ is str else memo
            if v is memo:
                try:
                    v = conv(raw)
                except Exception as e:  # noqa: BLE001 - kept, and said for each row that has it
                    v = _Failed(e)
                if raw.__class__ is str:
                    memo[raw] = v
            if v.__class__ is _Failed:
                e = v.error
                append(None)
                bad.add(i)
                if isinstance(e, ValueProblem):
                    ev.problems.append(RowProblem(i, name, str(e), suggestion=e.suggestion))
                else:  # a value no reader foresaw (a broken __str__, ...): its row only
                    ev.problems.append(RowProblem(i, name, f"'{shown(raw)}' cannot be read as {WHAT.get(type_, type_)} ({type(e).__name__})"))
                continue
            append(v)
            if type(raw) is str and type_ in _NOT_TEXT and v is not None and not self.text_native:
                # Excel's green triangle: right value, wrong kind of cell
                what = "number" if type_ == "number" else "date"
                ev.problems.append(RowProblem(i, name, f"{what} stored as text ('{raw.strip()}'); read as {display(v)}", None, WARNING))
        if type_ == "text":
            self._check_text(name, out, bad)
        ev.columns[name] = out
        return out

    def _check_text(self, name: str, out: list, bad: set):
        """Text holding a lone surrogate is a problem of its row (checked for the whole column at once)."""
        try:
            "".join(filter(None, out)).encode("utf-8")
            return
        except UnicodeEncodeError:
            pass
        for i, v in enumerate(out):
            why = bad_text(v) if v else None
            if why:
                out[i] = None
                bad.add(i)
                self.ev.problems.append(RowProblem(i, name, why))

    def check_allowed(self, inp, values, table):
        allowed = {encode(a, inp.type) for a in inp.allowed}
        bad = self.bad.setdefault(inp.name, set())
        try:  # each distinct value looked at once: when all are allowed, no row is
            distinct = set(_entries(values))
            distinct.discard(None)
            if all(encode(v, inp.type) in allowed for v in distinct):
                return
        except TypeError:  # an unhashable value: row by row
            pass
        shown = ", ".join(str(a) for a in inp.allowed)
        ok: dict = {}
        for i, v in enumerate(values):
            if v is None or i in bad:
                continue
            try:
                good = ok.get(v)
                if good is None:
                    good = ok[v] = encode(v, inp.type) in allowed
            except TypeError:  # unhashable
                good = encode(v, inp.type) in allowed
            if not good:
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
        whole = self.table_values.get(inp.name)
        if whole is not None:  # computed over the whole table; the source's bad cells stay blank
            out = [None if i in bad else v for i, v in enumerate(whole)] if bad else whole
        elif d.date is not None:
            out = self._dated(inp, src, bad)
        elif d.func == "percentile":
            out = _percentiles(src)
            if out is None:
                present = sorted(v for v in src if v is not None)
                m = len(present)
                out = [None] * len(src)
                for i, v in enumerate(src):
                    if v is not None:
                        out[i] = 100.0 if m == 1 else 100.0 * bisect.bisect_left(present, v) / (m - 1)
        elif d.func == "days_since":
            today = as_of.toordinal()  # calendar days: a date-time counts by its date
            out = _days_since(src, today)
            if inp.type == "duration":
                memo: dict = {}
                out = [memo[x] if x in memo else memo.setdefault(x, Duration.of(days=x)) if x is not None else None for x in out]
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

    def _dated(self, inp, src: list, bad: set) -> list:
        """A derivation over dated rows (measures.py); rows whose date or group cannot be
        read drop out of every window and get no value."""
        from . import measures

        d = inp.derive
        dates = self.column(d.date, self.field_type(d.date))
        groups = self.column(d.by, self.field_type(d.by)) if d.by else None
        unusable = self.bad.get(d.date, set()) | (self.bad.get(d.by, set()) if d.by else set())
        if unusable:
            bad |= unusable
            dates = [None if i in unusable else v for i, v in enumerate(dates)]
        if self.bad.get(d.field):  # a value that cannot be read is not a blank: its own row has no result
            bad |= self.bad[d.field]
        label, group = self.label(d.field), (self.label(d.by) if d.by else None)
        if d.by:  # a blank group would be compared with the other blank rows only: an alert silently lost
            lost = [i for i, (g, day) in enumerate(zip(groups, dates)) if g is None and day is not None]
            for i in lost:
                self.ev.problems.append(RowProblem(i, inp.name, f"{group} is blank, so {label} cannot be compared with other days",
                                                   suggestion=f"fill in {group}"))
            if lost:
                bad |= set(lost)
                dates = [None if g is None else v for g, v in zip(groups, dates)]
        if d.func == "week_over_week":
            out, problems = measures.week_over_week(src, dates, groups, label, group)
        elif d.func == "days_in_a_row":
            out, problems = measures.days_in_a_row(src, dates, d.test, self.field_type(d.field), groups, label, group)
        else:
            out, problems = measures.last_days(src, dates, d.days, d.func == "sum_last_days", groups)
        for i, msg in problems:
            out[i] = None
            bad.add(i)
            self.ev.problems.append(RowProblem(i, inp.name, msg, suggestion="remove or merge the duplicate row"))
        for i in bad:
            if i < len(out):
                out[i] = None
        return out
