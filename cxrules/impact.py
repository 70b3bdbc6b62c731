"""What a rule change does to real rows, before it goes live.

`impact` evaluates two rule sets (the one in force, `base`, and the edited one, `new`)
over the same workbooks' rows and the same as-of moment, exactly as recalc would
(recalc.plan: the same sheets, ranges, mapping and decisions; nothing is written), and
compares the results row by row. It reports, for each decision's outputs, how many rows
change and a from -> to table (tier Gold -> VIP: 12); for due dates, how far they move
and which rows become overdue or stop being overdue; per week and group (contacts by
channel, cases by owner) how many are due before and after, and the steady rate a
cadence gives (contacts per week); totals of number outputs (compensation cost); and the
rows behind every figure (workbook, sheet, row, key column).
"""
from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .evaluation import Evaluator, now_in
from .mapping import Mapping
from .model import RuleSet
from .recalc import DAYS_OVERDUE, DAYS_OVERDUE_LABELS, RecalcReport, _due_value, data_sheets, plan, workbook_mapping
from .stamp import Stamp
from .values import Duration, display
from .verify import _plain, _same
from .workbook import open_workbook

BLANK = "(blank)"
MOVED = "moved"  # a due date's from -> to is 'moved' -> how far ('+3 days')
EARLIER = "earlier"  # the week bucket of due dates before the as-of week
MAX_ROWS_PER_FIGURE = 10_000  # rows listed behind one figure in JSON and the report; counts stay complete
_KEY_HEADER = re.compile(r"(^|[\s_-])(id|no\.?|number|key|code)$|编号|号码|单号|^id", re.IGNORECASE)


@dataclass(frozen=True)
class RowRef:
    """A row behind a figure."""

    workbook: str
    sheet: str
    row: int
    key: object  # the row's key cell (Customer ID, Case ID, ...)

    def to_dict(self) -> dict:
        return {"workbook": self.workbook, "sheet": self.sheet, "row": self.row, "key": _plain(self.key)}


@dataclass
class Change:
    """One result of one decision (an output, a due date, or days overdue) compared."""

    decision: str
    name: str
    label: str
    kind: str  # "output", "due" or "overdue"
    rows: int = 0  # rows where either side computed it
    changed: int = 0
    # from -> to (for a due date: how far it moved) -> the rows
    transitions: dict[tuple[str, str], list[RowRef]] = field(default_factory=dict)

    def add(self, frm: str, to: str, ref: RowRef) -> None:
        self.changed += 1
        self.transitions.setdefault((frm, to), []).append(ref)

    def table(self) -> list[tuple[str, str, int]]:
        """(from, to, rows), most rows first."""
        return sorted(((f, t, len(r)) for (f, t), r in self.transitions.items()), key=lambda x: (-x[2], x[0], x[1]))

    def to_dict(self) -> dict:
        return {"decision": self.decision, "name": self.name, "label": self.label, "kind": self.kind,
                "rows": self.rows, "changed": self.changed,
                "transitions": [{"from": f, "to": t, "count": len(refs),
                                 "rows": [r.to_dict() for r in refs[:MAX_ROWS_PER_FIGURE]]}
                                for (f, t, _), refs in ((x, self.transitions[x[:2]]) for x in self.table())]}


@dataclass
class Schedule:
    """A due date counted per week and per group (next contacts by channel), both sides."""

    decision: str
    due: str  # its label
    by: str | None  # the label of the output grouped by
    group_name: str | None = None  # its name
    add_name: str = ""  # the duration output the date adds (a cadence: contact every 7d)
    cadence: bool = False  # counted from a date (the last contact): it recurs, so it has a rate per week
    before: Counter = field(default_factory=Counter)  # (week, group) -> rows due
    after: Counter = field(default_factory=Counter)
    rate_before: Counter = field(default_factory=Counter)  # group -> due per week at the cadence (7 days / interval)
    rate_after: Counter = field(default_factory=Counter)

    @property
    def has_rate(self) -> bool:
        return bool(self.rate_before or self.rate_after)

    def weeks(self) -> list[str]:
        ws = {w for w, _ in self.before} | {w for w, _ in self.after}
        return sorted(ws, key=lambda w: "" if w == EARLIER else w)

    def groups(self) -> list[str]:
        gs = Counter()
        for (_, g), n in (self.before + self.after).items():
            gs[g] += n
        for g in set(self.rate_before) | set(self.rate_after):
            gs[g] += 0
        return [g for g, _ in sorted(gs.items(), key=lambda x: (-x[1], x[0]))]

    def to_dict(self) -> dict:
        return {"decision": self.decision, "due": self.due, "by": self.by,
                "weeks": [{"week": w, "group": g, "before": self.before[(w, g)], "after": self.after[(w, g)]}
                          for w in self.weeks() for g in self.groups() if self.before[(w, g)] or self.after[(w, g)]],
                "per_week_at_cadence": {g: {"before": round(self.rate_before[g], 2), "after": round(self.rate_after[g], 2)}
                                        for g in self.groups()} if self.has_rate else None}


@dataclass
class Total:
    """A number output summed over the rows (compensation cost), both sides."""

    decision: str
    name: str
    label: str
    before: float = 0.0
    after: float = 0.0

    def to_dict(self) -> dict:
        return {"decision": self.decision, "name": self.name, "label": self.label, "before": self.before,
                "after": self.after, "difference": self.after - self.before}


@dataclass
class ImpactReport:
    workbooks: list[str]
    as_of: dt.datetime
    base: str  # how each rule set was given
    new: str
    base_hash: str = ""
    new_hash: str = ""
    rows: int = 0  # rows compared
    changes: list[Change] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    totals: list[Total] = field(default_factory=list)
    became_overdue: list[RowRef] = field(default_factory=list)
    no_longer_overdue: list[RowRef] = field(default_factory=list)
    changed_rows: list[tuple[RowRef, dict]] = field(default_factory=list)  # row -> {result name: (from, to)}
    problems_before: int = 0  # row problems each side found
    problems_after: int = 0
    notes: list[str] = field(default_factory=list)  # decisions that did not run, sheets not compared
    language: str = "en"  # of the (first) workbook's headers: the report workbook's texts follow it

    @property
    def changed(self) -> bool:
        return bool(self.changed_rows)

    def change(self, name: str) -> Change | None:
        return next((c for c in self.changes if c.name == name), None)

    def label(self, name: str) -> str:
        c = self.change(name)
        return c.label if c is not None else name

    def to_dict(self) -> dict:
        return {
            "workbooks": self.workbooks, "as_of": self.as_of.isoformat(sep=" "),
            "base": {"rules": self.base, "hash": self.base_hash},
            "new": {"rules": self.new, "hash": self.new_hash},
            "rows": self.rows, "changed_rows": len(self.changed_rows), "no_change": not self.changed,
            "changes": [c.to_dict() for c in self.changes],
            "overdue": {"became": len(self.became_overdue), "no_longer": len(self.no_longer_overdue),
                        "became_rows": [r.to_dict() for r in self.became_overdue[:MAX_ROWS_PER_FIGURE]],
                        "no_longer_rows": [r.to_dict() for r in self.no_longer_overdue[:MAX_ROWS_PER_FIGURE]]},
            "schedules": [s.to_dict() for s in self.schedules],
            "totals": [t.to_dict() for t in self.totals],
            "rows_changed": [dict(r.to_dict(), changes={self.label(k): {"from": _plain(a), "to": _plain(b)} for k, (a, b) in ch.items()})
                             for r, ch in self.changed_rows[:MAX_ROWS_PER_FIGURE]],
            "problems": {"before": self.problems_before, "after": self.problems_after},
            "notes": self.notes,
        }


# ------------------------------------------------------------------ computing one side
@dataclass
class _Side:
    """What one rule set gives: (workbook, sheet, row) -> {name: value}, and the rows whose
    due dates are excused (`unless`: resolved cases)."""

    values: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    settled: set = field(default_factory=set)  # (workbook, sheet, row, due name)
    decisions: dict = field(default_factory=dict)  # (workbook, sheet, row) -> decisions run there
    problems: int = 0
    language: str = "en"


def _names(rs: RuleSet, runs) -> list[str]:
    out = []
    for n in runs:
        t = rs.tables[n]
        out += [o.name for o in t.outputs] + [d.name for d in t.due]
    return out


def _key_column(data, header) -> int | None:
    """The range's key column (index into a row): a header like 'Customer ID' or '编号', else its first."""
    row = data.rows[header.index] if header.index < len(data.rows) else []
    hi = header.hi if header.hi is not None else len(row) - 1
    cells = [(j, str(row[j]).strip()) for j in range(header.lo, min(hi, len(row) - 1) + 1)
             if row[j] is not None and str(row[j]).strip()]
    return next((j for j, text in cells if _KEY_HEADER.search(text)), cells[0][0] if cells else None)


def _side(book: str, sheets, ev: Evaluator, as_of: dt.datetime, dayfirst, header_row, mapping, notes: list[str]) -> _Side:
    side = _Side()
    rs = ev.rs

    def computed(data, header, excel_rows, res, runs):
        names = _names(rs, runs) + ([DAYS_OVERDUE] if DAYS_OVERDUE in res.columns else [])
        cols = {n: res.columns.get(n) for n in names}
        kj = _key_column(data, header)
        settled = {d: res.settled.get(d, ()) for d in (x.name for n in runs for x in rs.tables[n].due)}
        for i, r in enumerate(excel_rows):
            at = (book, data.name, r)
            side.values[at] = {n: (c[i] if c is not None else None) for n, c in cols.items()}
            side.decisions[at] = tuple(runs)
            if kj is not None:
                cells = data.rows[r - data.first_row]
                side.keys[at] = cells[kj] if kj < len(cells) else None
            for d, rows in settled.items():
                if i in rows:
                    side.settled.add(at + (d,))

    report = RecalcReport(book, book, as_of)
    report.stamp = Stamp(__version__, "", as_of)  # nothing is written: no need to ask git for the rules' revision
    plan(iter(sheets), ev, as_of, report, dayfirst, header_row, mapping, computed=computed)
    side.problems = sum(1 for p in report.problems if p.code == "row")
    side.language = report.language
    for p in report.not_run:
        notes.append(f"{Path(book).name}: {p}")
    return side


# ------------------------------------------------------------------ comparing
def _norm(v):
    if isinstance(v, list):
        return tuple(_norm(x) for x in v)
    if isinstance(v, Duration):
        return display(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    if v.__class__ is str and not v:
        return None
    return v


def _equal(a, b) -> bool:
    a, b = _norm(a), _norm(b)
    if isinstance(a, tuple) or isinstance(b, tuple):
        return a == b
    return _same(a, b)


def _text(v) -> str:
    v = _norm(v)
    if v is None:
        return BLANK
    if isinstance(v, tuple):
        return ", ".join("-" if x is None else display(x) for x in v)
    return display(v)


def _day_of(rs: RuleSet, d, v):
    return _due_value(rs, d, v) if d is not None else v


def _shift(a, b) -> str:
    """How far a due date moved: '+3 days', '-4 h 30 min'."""
    if isinstance(a, dt.datetime) != isinstance(b, dt.datetime):
        a = a if isinstance(a, dt.datetime) else dt.datetime.combine(a, dt.time())
        b = b if isinstance(b, dt.datetime) else dt.datetime.combine(b, dt.time())
    delta = b - a
    secs = delta.total_seconds()
    sign = "+" if secs > 0 else "-"
    secs = abs(secs)
    if secs % 86400 == 0:
        days = int(secs // 86400)
        return f"{sign}{days} day{'s' if days != 1 else ''}"
    h, rest = divmod(round(secs / 60), 60)
    return f"{sign}{h} h {rest} min" if rest else f"{sign}{h} h"


def _week(day: dt.date, monday: dt.date) -> str:
    start = day - dt.timedelta(days=day.weekday())
    return EARLIER if start < monday else start.isoformat()


def impact(workbooks, new: Evaluator, base: Evaluator, as_of: dt.datetime | None = None, *, dayfirst: bool = False,
           header_row: int | None = None, mapping: Mapping | None = None, limits=None,
           base_label: str = "", new_label: str = "", progress=None) -> ImpactReport:
    """Compare what `base` and `new` give over the workbooks' rows (nothing is written).
    Raises WorkbookError when a workbook cannot be read."""

    def books():
        for k, book in enumerate(workbooks):
            if progress:
                progress(f"reading {Path(book).name}", k, len(workbooks))
            with open_workbook(book, limits) as wb:
                sheets = [wb.read_sheet(s.name) for s in data_sheets(wb)]
                own = workbook_mapping(wb)
            yield str(book), sheets, own.merged(mapping or Mapping())

    return impact_sheets(books(), new, base, as_of, dayfirst=dayfirst, header_row=header_row,
                         base_label=base_label, new_label=new_label)


def impact_sheets(books, new: Evaluator, base: Evaluator, as_of: dt.datetime | None = None, *, dayfirst: bool = False,
                  header_row: int | None = None, base_label: str = "", new_label: str = "") -> ImpactReport:
    """impact over sheets already read: `books` yields (name, [SheetData], Mapping), from
    files or from a workbook open in Excel."""
    from .stamp import rules_hash

    as_of = as_of or now_in(new.rs.timezone)
    rep = ImpactReport([], as_of, base_label, new_label, rules_hash(base.rs.sources), rules_hash(new.rs.sources))
    before, after = _Side(), _Side()
    for k, (book, sheets, m) in enumerate(books):
        rep.workbooks.append(book)
        for side, ev, notes in ((before, base, []), (after, new, rep.notes)):
            got = _side(book, sheets, ev, as_of, dayfirst, header_row, m, notes)
            side.values.update(got.values)
            side.keys.update(got.keys)
            side.settled |= got.settled
            side.decisions.update(got.decisions)
            side.problems += got.problems
            side.language = got.language if not k else side.language
    rep.problems_before, rep.problems_after = before.problems, after.problems
    rep.language = after.language
    _compare(rep, before, after, base.rs, new.rs)
    return rep


def _meta(base: RuleSet, new: RuleSet) -> dict[str, tuple[str, str, str, object]]:
    """name -> (decision, label, kind, the Due or Output): the new rules' words win."""
    out: dict = {}
    for rs in (base, new):
        for t in rs.order():
            for o in t.outputs:
                out[o.name] = (t.name, o.label, "output", o)
            for d in t.due:
                out[d.name] = (t.name, d.label, "due", d)
    out[DAYS_OVERDUE] = ("", DAYS_OVERDUE_LABELS[0], "overdue", None)
    return out


def _compare(rep: ImpactReport, before: _Side, after: _Side, base: RuleSet, new: RuleSet) -> None:
    meta = _meta(base, new)
    rank = {name: k for k, name in enumerate(meta)}
    changes: dict[str, Change] = {}
    totals: dict[str, Total] = {}
    for rs in (base, new):
        for t in rs.order():
            for o in t.outputs:
                if o.type == "number" and not t.is_multi and o.name not in totals:
                    totals[o.name] = Total(t.name, o.name, o.label)
    schedules = _schedules(base, new)
    rows = list(dict.fromkeys([*before.values, *after.values]))  # workbook, sheet and row order as read
    rep.rows = len(rows)
    for at in rows:
        b, a = before.values.get(at, {}), after.values.get(at, {})
        ref = RowRef(at[0], at[1], at[2], after.keys.get(at, before.keys.get(at)))
        row_changes: dict = {}
        for name in sorted(b.keys() | a.keys(), key=rank.__getitem__):
            dec, label, kind, obj = meta[name]
            vb, va = b.get(name), a.get(name)
            if name in totals:
                for side_v, attr in ((vb, "before"), (va, "after")):
                    if isinstance(side_v, (int, float)) and not isinstance(side_v, bool) and not math.isnan(side_v):
                        setattr(totals[name], attr, getattr(totals[name], attr) + side_v)
            if kind == "due":
                sb, sa = at + (name,) in before.settled, at + (name,) in after.settled
                sched = schedules.get(name)
                if sched is not None:
                    _schedule_row(sched, obj, base, vb, sb, b, rep.as_of, sched.before)
                    _schedule_row(sched, obj, new, va, sa, a, rep.as_of, sched.after)
                if sb and sa:  # a resolved case's deadline matters to no one
                    continue
            c = changes.get(name)
            if c is None:
                c = changes[name] = Change(dec, name, label, kind)
            c.rows += 1
            if kind == "overdue":
                late_b, late_a = bool(vb and vb > 0), bool(va and va > 0)
                if late_b != late_a:
                    (rep.became_overdue if late_a else rep.no_longer_overdue).append(ref)
                    c.add("overdue" if late_b else "not overdue", "overdue" if late_a else "not overdue", ref)
                    row_changes[name] = (vb, va)
                continue
            if _equal(vb, va):
                continue
            if kind == "due" and vb is not None and va is not None:
                c.add(MOVED, _shift(_day_of(base, obj, vb), _day_of(new, obj, va)), ref)
            else:
                c.add(_text(vb), _text(va), ref)
            row_changes[name] = (vb, va)
        if row_changes:
            rep.changed_rows.append((ref, row_changes))
    rep.changes = sorted(changes.values(), key=lambda c: rank[c.name])
    rep.totals = list(totals.values())
    rep.schedules = [s for s in schedules.values() if s.before or s.after]


def _schedules(base: RuleSet, new: RuleSet) -> dict[str, Schedule]:
    """due name -> its Schedule, grouped by the table's first text output that is not a
    calendar (as the CX summary groups them: contacts by channel, cases by owner)."""
    out: dict[str, Schedule] = {}
    for rs in (new, base):
        for t in rs.order():
            calendars = {d.calendar for d in t.due}
            by = None if t.is_multi else next((o for o in t.outputs if o.type == "text" and o.name not in calendars), None)
            for d in t.due:
                if d.name not in out:
                    cadence = d.source in rs.fields and rs.fields[d.source].type == "date" and not d.unless
                    out[d.name] = Schedule(t.name, d.label, by.label if by else None, by.name if by else None, d.add, cadence)
    return out


def _schedule_row(s: Schedule, d, rs: RuleSet, v, settled: bool, values: dict, as_of: dt.datetime, counts: Counter) -> None:
    if settled:
        return
    group = _text(values.get(s.group_name)) if s.group_name else ""
    every = values.get(s.add_name) if s.cadence else None
    secs = every.total_seconds() if isinstance(every, (Duration, dt.timedelta)) else None
    if secs and secs > 0:  # the cadence holds even where the last contact is not known
        rate = s.rate_before if counts is s.before else s.rate_after
        rate[group] += 7 * 86400 / secs
    if v is None or not isinstance(v, dt.date):
        return
    day = _due_value(rs, d, v)
    day = day.date() if isinstance(day, dt.datetime) else day
    monday = as_of.date() - dt.timedelta(days=as_of.weekday())
    counts[(_week(day, monday), group)] += 1


def describe(rep: ImpactReport) -> str:
    """One line: what changes, or that nothing does."""
    if not rep.changed:
        return f"no change: the new rules give the same results on all {rep.rows} rows"
    n = len(rep.changed_rows)
    return f"{n} of {rep.rows} row{'s' if rep.rows != 1 else ''} change"


def week_label(w: str) -> str:
    return "earlier (overdue)" if w == EARLIER else f"week of {w}"


