"""Recalculating workbooks in place: find the data, evaluate the rules, write the results.

Sheets are matched to decisions without configuration: a decision runs on a sheet when
more than half of the columns and fields it reads are there (and its upstream decisions
run there too). Results go to the columns that already carry an output's header, or to
new columns after the last one. Overdue rows and escalation levels are coloured by
conditional formats; a `CX summary` sheet and an `Issues` sheet are (re)written.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import __version__
from .evaluation import Evaluator, RowProblem, now_in
from .files import check_destination
from .loader import COLOURS
from .model import RuleSet
from .problems import ERROR, WARNING, Problem
from .values import Duration, ValueProblem, display
from .workbook import (
    BarChart,
    CellError,
    CellFormat,
    ChartSeries,
    ColumnWrite,
    Header,
    Highlight,
    NewSheet,
    SheetEdit,
    col_letter,
    find_regions,
    range_ref,
    open_workbook,
    write_workbook,
)
from .xlsx_write import MAX_COL

SUMMARY_SHEET = "CX summary"
ISSUES_SHEET = "Issues"
OWN_SHEETS = (SUMMARY_SHEET, ISSUES_SHEET)
FONT = {"FFC7CE": "9C0006", "FFD8A8": "7F3F00", "FFF2A8": "7F6000", "C6EFCE": "006100"}
OVERDUE_FILL = COLOURS["red"]
DAYS_OVERDUE = "days_overdue"
DAYS_OVERDUE_LABELS = ["Days overdue", "逾期天数"]
MAX_ISSUES_ON_SHEET = 50_000


@dataclass
class SheetResult:
    sheet: str
    rows: int = 0
    header_row: int | None = None
    region: str | None = None  # the range (A1:F20) when a sheet holds several
    decisions: list[str] = field(default_factory=list)
    columns_written: list[str] = field(default_factory=list)
    columns_added: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # decision -> columns not found
    problems: int = 0
    overdue: int = 0
    counts: dict[str, Counter] = field(default_factory=dict)  # output label -> value counts
    sums: dict[str, float] = field(default_factory=dict)
    refused: Problem | None = None  # why nothing was written on this sheet


@dataclass
class RecalcReport:
    path: str
    output: str
    as_of: dt.datetime
    written: bool = False
    sheets: list[SheetResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # sheets with nothing to compute
    problems: list[Problem] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sheets)

    @property
    def refused(self) -> list[Problem]:
        """Sheets whose results could not be written, each with its reason."""
        return [s.refused for s in self.sheets if s.refused]

    def to_dict(self) -> dict:
        return {
            "workbook": self.path,
            "output": self.output,
            "as_of": self.as_of.isoformat(sep=" "),
            "written": self.written,
            "rows": self.rows,
            "sheets": [
                {
                    "sheet": s.sheet, "region": s.region, "rows": s.rows, "header_row": s.header_row, "decisions": s.decisions,
                    "columns_written": s.columns_written, "columns_added": s.columns_added, "missing": s.missing,
                    "problems": s.problems, "overdue": s.overdue, "written": s.refused is None,
                    "counts": {k: dict(v) for k, v in s.counts.items()}, "sums": s.sums,
                }
                for s in self.sheets
            ],
            "skipped": self.skipped,
            "problems": [p.to_dict() for p in self.problems],
        }


Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _noop(stage: str, done: int, total: int) -> None:
    pass


# ------------------------------------------------------------------ what a sheet can supply
def wanted_columns(rs: RuleSet) -> dict[str, list[str]]:
    """Name -> header aliases of everything the rules read from or write to a sheet."""
    want: dict[str, list[str]] = {}

    def add(name, cols):
        lst = want.setdefault(name, [])
        for c in cols:
            if c not in lst:
                lst.append(c)

    for f in rs.fields.values():
        add(f.name, f.columns)
    for t in rs.tables.values():
        for i in t.inputs:
            if i.source == "column":
                add(i.name, i.columns)
        for o in t.outputs:
            add(o.name, o.columns)
        for d in t.due:
            add(d.name, d.columns)
    add(DAYS_OVERDUE, DAYS_OVERDUE_LABELS)
    return want


def applicable(rs: RuleSet, found: set[str], blocked: frozenset = frozenset()) -> tuple[list[str], dict[str, list[str]]]:
    """Decisions a sheet can run (in evaluation order), and the inputs each one misses.

    Evidence is the sheet's own columns: an output header (e.g. Tier, written by an
    earlier run) proves nothing. A decision that reads other decisions runs where they
    run and at least one of its own columns is there; any other decision runs where
    more than half of its columns are there. A blocked decision does not run; its
    outputs are on the sheet as the person wrote them, for the decisions that read them.
    """
    outputs = {n for t in rs.tables.values() for n in t.result_names}
    runs: list[str] = []
    missing: dict[str, list[str]] = {}
    for t in rs.order():
        if t.name in blocked:
            continue
        upstream = [i.decision for i in t.inputs if i.decision]
        if any(u not in runs and u not in blocked for u in upstream):
            continue
        own = [(i.derive.field if i.derive else i.name, i.name) for i in t.inputs if not i.decision]
        own += [(d.source, d.source) for d in t.due]
        evidence = [(key, n) for key, n in own if key not in outputs or key in rs.fields]
        have = [n for key, n in evidence if key in found]
        ok = (bool(have) or not evidence) if upstream else len(have) * 2 > len(evidence)
        if ok:
            runs.append(t.name)
            lack = [n for key, n in own if key not in found]
            if lack:
                missing[t.name] = lack
    return runs, missing


# ------------------------------------------------------------------ the job
def recalc(
    path,
    evaluator: Evaluator,
    as_of: dt.datetime | None = None,
    output=None,
    dry_run: bool = False,
    dayfirst: bool = False,
    progress: Progress = _noop,
    header_row: int | None = None,
    force: bool = False,
) -> RecalcReport:
    """Recalculate one workbook; returns what was done. Raises WorkbookError if the file
    cannot be read or written (it is then left exactly as it was). An existing `output`
    other than the workbook itself is replaced only with `force`."""
    with _paused_gc():
        return _recalc(path, evaluator, as_of, output, dry_run, dayfirst, progress, header_row, force)


@contextlib.contextmanager
def _paused_gc():
    """Millions of cell values make every full cyclic-GC pass scan them all, again and
    again (1M rows: 5x slower); the job makes no reference cycles worth collecting."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _recalc(path, evaluator, as_of, output, dry_run, dayfirst, progress, header_row=None, force=False) -> RecalcReport:
    rs = evaluator.rs
    src = Path(path)
    dst = Path(output) if output else src
    as_of = as_of or now_in(rs.timezone)
    report = RecalcReport(str(src), str(dst), as_of)
    with open_workbook(src) as wb:
        if not dry_run:  # refuse before the work, not after it
            check_destination(src, dst, force)
        sheets = [s for s in wb.worksheets if s.name not in OWN_SHEETS]

        def read():
            for k, sheet in enumerate(sheets):
                progress(f"reading {sheet.name}", k, len(sheets))
                yield wb.read_sheet(sheet.name)

        edits, new_sheets = plan(read(), evaluator, as_of, report, dayfirst, header_row)
    if not report.sheets or dry_run:
        return report
    progress("writing", len(sheets), len(sheets))
    wr = write_workbook(src, dst, edits, new_sheets)
    report.problems.extend(wr.problems)
    report.written = True
    return report


def plan(sheets, evaluator: Evaluator, as_of: dt.datetime, report: RecalcReport, dayfirst: bool = False,
         header_row: int | None = None):
    """What recalculating these sheets writes: (sheet edits, new sheets); fills `report`.

    `sheets` yields SheetData, from a file or from a workbook open in Excel; the caller
    applies the edits with the xlsx writer or through xlwings.
    """
    rs = evaluator.rs
    want = wanted_columns(rs)
    edits: list[SheetEdit] = []
    for data in sheets:
        if data.name in OWN_SHEETS:
            continue
        regions, found_problems = find_regions(data, want, header_row=header_row)
        report.problems.extend(found_problems)
        several = len(regions) > 1
        done = 0
        results = _outputs(rs) | {DAYS_OVERDUE}
        for header in regions:
            header.ref = _range_label(data, header, results)
            where = f"the range {header.ref}" if several else "this sheet"
            found = set(header.columns)
            runs, missing = applicable(rs, found)
            if not runs:
                if several:
                    report.problems.append(Problem(
                        f"the range {header.ref} has none of the columns the decisions read; it was left as it is",
                        WARNING, "range-skipped", sheet=data.name, row=header.row, column=col_letter(header.first_col + header.lo)))
                continue
            report.problems.extend(header.problems)
            first, last = _data_span(data, header)
            kept = _kept_columns(rs, data, header, runs, first, last)
            if kept:
                blocked = frozenset(d for d, _ in kept.values() if d)
                runs, missing = applicable(rs, found, blocked)
                for name, (dec, col) in kept.items():
                    what = (f"so decision '{dec}' did not run on {where} and the column was kept "
                            f"(the decisions that use it read it as it is)") if dec else "so it was kept"
                    report.problems.append(Problem(
                        f"column {col_letter(col)} ('{header.texts.get(name, name)}') holds data cxrules did not write, {what}",
                        WARNING, "column-kept", sheet=data.name, row=header.row, column=col_letter(col),
                        suggestion="to let cxrules fill it, clear the column or rename its header; to keep your values, nothing to do"))
                if not runs:
                    continue
            blocker = _no_room(rs, data, header, runs, kept, first, last)
            if blocker:
                report.problems.append(Problem(
                    f"{where[0].upper() + where[1:]} has no room for its results: {blocker}; it was left as it is",
                    WARNING, "no-room", sheet=data.name, row=header.row, column=col_letter(header.first_col + header.lo),
                    suggestion="leave empty columns to the right of the table (one more than it needs, to keep the tables apart), or move the other table"))
                continue
            edit, result = _recalc_sheet(rs, evaluator, data, header, runs, missing, as_of, dayfirst, report, (first, last), kept)
            result.region = header.ref if several else None
            report.sheets.append(result)
            done += 1
            if edit.columns:
                edits.append(edit)
        if not done:
            report.skipped.append(data.name)
    if not report.sheets:
        report.problems.append(Problem(
            "no sheet has the columns the rules read; nothing was changed",
            WARNING, "no-data", file=report.path,
            suggestion="check the headers against 'cxrules decisions' (e.g. Last purchase, Orders 12m, Spend 12m, Severity, Opened at)",
        ))
        return [], []
    return edits, [summary_sheet(report, rs), issues_sheet(report)]


def _range_label(data, header: Header, results: set) -> str:
    """The range as a person sees it, header to last row, without the result columns
    cxrules added (so a rerun names it the same)."""
    mine = {j for k, j in header.columns.items() if k in results}
    mine |= {c - header.first_col for r, c in (data.owned or ()) if r == header.row}
    hi = header.hi if header.hi is not None else header.width - 1
    while hi > header.lo and hi in mine:
        hi -= 1
    last = header.row + max((header.end if header.end is not None else len(data.rows)) - header.index - 1, 0)
    return range_ref(header.row, header.first_col + header.lo, last, header.first_col + hi)


def _data_span(data, header: Header) -> tuple[int, int]:
    """rows[first:last] are the data rows: below the header, to the range's end."""
    first = header.index + 1
    last = len(data.rows) if header.end is None else header.end
    if header.table:
        tbl = next((t for t in data.tables if t.name == header.table), None)
        if tbl:
            last = min(last, tbl.ref[2] - data.first_row + 1 - tbl.totals_rows)
    return first, last


def _kept_columns(rs: RuleSet, data, header: Header, runs, first: int, last: int) -> dict[str, tuple[str | None, int]]:
    """Outputs whose column on this sheet holds a person's data: name -> (decision, sheet column).

    A column is cxrules' own when the workbook records it (data.owned), when the workbook
    records nothing (None: written before ownership was kept), or when it is empty below
    its header (then cxrules takes it). Anything else is the person's and is never written.
    """
    owned = data.owned
    if owned is None:
        return {}
    names = [(n, d.name) for n in runs for d in rs.tables[n].due] + [(n, o.name) for n in runs for o in rs.tables[n].outputs]
    names.append((None, DAYS_OVERDUE))
    kept: dict[str, tuple[str | None, int]] = {}
    rows = data.rows[first:last]
    for dec, name in names:
        j = header.columns.get(name)
        if j is None or name in kept:
            continue
        col = header.first_col + j
        if (header.row, col) in owned:
            continue
        if any(j < len(r) and r[j] is not None for r in rows):
            kept[name] = (dec, col)
    return kept


def _new_columns(rs: RuleSet, header: Header, runs, kept) -> int:
    """How many columns the results need to the right of the range."""
    names = {o.name for n in runs for o in rs.tables[n].outputs} | {d.name for n in runs for d in rs.tables[n].due}
    if any(rs.tables[n].due for n in runs):
        names.add(DAYS_OVERDUE)
    return len([x for x in names if x not in header.columns and x not in kept])


def _no_room(rs: RuleSet, data, header: Header, runs, kept, first: int, last: int) -> str | None:
    """Why the range's new columns cannot go to its right, or None when they can.

    New columns start right of the range. Anything already there in the range's rows
    (another range, an Excel table) is never written over; a range with something to
    its right also keeps one empty column after its results, so the two stay apart.
    """
    k = _new_columns(rs, header, runs, kept)
    if not k:
        return None
    start = (header.hi if header.hi is not None else header.width - 1) + 1  # grid column index
    i1, i2 = header.index, max(last, header.index + 1)
    occupied = [t for t in data.tables if not (t.ref[2] < data.first_row + i1 or t.ref[0] > data.first_row + i2 - 1)
                and t.ref[3] >= data.first_col + start and t.name != header.table]
    first_used = min([t.ref[1] - data.first_col for t in occupied], default=None)
    for r in data.rows[i1:i2]:
        for j in range(start, len(r)):
            if r[j] is not None:
                if first_used is None or j < first_used:
                    first_used = j
                break
    if first_used is None:
        return None
    if first_used - start >= k + 1:
        return None
    what = next((f"table '{t.name}'" for t in occupied if t.ref[1] - data.first_col == first_used), None)
    col = col_letter(data.first_col + first_used)
    return (f"it needs {k} new column{'s' if k > 1 else ''} right of column {col_letter(data.first_col + start - 1)}, "
            f"and column {col} already holds {what or 'other data'}")


def _recalc_sheet(rs, evaluator, data, header: Header, runs, missing, as_of, dayfirst, report: RecalcReport, span, kept):
    sheet = data.name
    result = SheetResult(sheet, header_row=header.row, decisions=list(runs), missing={})
    for dec, names in missing.items():
        t = rs.tables[dec]
        labels = []
        for n in names:
            i = next((x for x in t.inputs if x.name == n), None)
            key = i.derive.field if i is not None and i.derive else n
            cols = rs.fields[key].columns if key in rs.fields else (i.columns if i is not None else [])
            labels.append(cols[0] if cols else key)
        result.missing[dec] = labels
    first, last = span
    block = data.rows[first:last]
    # Only the columns the rules read, column by column; rows with none of them are not data.
    old_results = _outputs(rs)
    reads = {k: j for k, j in header.columns.items() if k not in old_results or k in kept}
    columns = {k: [r[j] if j < len(r) else None for r in block] for k, j in reads.items()}
    filled = [any(c[i] is not None for c in columns.values()) for i in range(len(block))]
    keep = [i for i, f in enumerate(filled) if f]
    if len(keep) != len(block):
        columns = {k: [c[i] for i in keep] for k, c in columns.items()}
    excel_rows = [data.first_row + first + i for i in keep]
    problems: list[Problem] = []
    no_value = set(data.formula_cells_without_value)
    placeholders = set(data.formula_placeholders)
    no_value |= placeholders
    for key, j in reads.items():
        col = columns[key]
        for i, v in enumerate(col):
            if v is not None and v.__class__ is CellError:
                col[i] = v.code
        if no_value:
            for i, r in enumerate(excel_rows):
                if (r, data.first_col + j) in no_value:  # a bad cell for that row, not a blank
                    ref = f"{col_letter(data.first_col + j)}{r}"
                    col[i] = ValueProblem(
                        f"the formula in {ref} was saved by a program that does not calculate (its value is only a placeholder)"
                        if (r, data.first_col + j) in placeholders else f"the formula in {ref} has no calculated value",
                        "open the workbook in Excel, let it calculate, and save it")
    result.rows = len(excel_rows)
    ev = evaluator.evaluate_columns(columns, len(excel_rows), runs, as_of, dayfirst=dayfirst, given_wins=set(kept))
    for p in ev.problems:
        problems.append(_row_problem(p, sheet, excel_rows, header))
    problems.sort(key=lambda p: (p.row or 0, p.column or ""))
    result.problems = len(problems)
    report.problems.extend(problems)

    # where each output goes
    edit = SheetEdit(sheet)
    next_col = header.first_col + (header.hi if header.hi is not None else header.width - 1) + 1
    outputs: list[tuple[str, str, list[str], str]] = []  # (name, label, aliases, kind)
    for name in runs:
        t = rs.tables[name]
        for o in t.outputs:
            outputs.append((o.name, o.label, o.columns, _kind(t.output_type(o.name), t.is_multi)))
        for d in t.due:
            outputs.append((d.name, d.label, d.columns, "due"))
    overdue = _days_overdue(rs, runs, ev, as_of)
    if overdue is not None:
        outputs.append((DAYS_OVERDUE, DAYS_OVERDUE_LABELS[_lang(header)], DAYS_OVERDUE_LABELS, "number"))
        ev.columns[DAYS_OVERDUE] = overdue
        result.overdue = sum(1 for x in overdue if x)
    col_of: dict[str, int] = {}
    lang = _lang(header)
    new: dict[str, str] = {}  # outputs that need a new column -> its title
    for name, label, aliases, _ in outputs:
        if name not in header.columns and name not in kept:
            new.setdefault(name, _title(label, aliases, lang))
    if next_col + len(new) > MAX_COL:  # XFD is Excel's last column: leave the sheet as it is
        free = max(MAX_COL - next_col, 0)
        why = ("the sheet already uses column XFD, Excel's last" if not free else
               f"only {free} column{'s are' if free > 1 else ' is'} left after {col_letter(next_col - 1)} (XFD is Excel's last)")
        result.refused = Problem(
            f"no free column for {len(new)} new results ({', '.join(new.values())}): {why}; nothing was written on this sheet",
            ERROR, "no-free-column", sheet=sheet,
            suggestion="clear the unused cells at the far right of the sheet, or add these headers to columns it has, and run again")
        report.problems.append(result.refused)
        result.overdue = 0
        return SheetEdit(sheet), result
    for name, label, aliases, kind in outputs:
        if name in col_of or name in kept:
            continue
        values = ev.columns.get(name, [None] * len(excel_rows))
        if kind == "due":
            kind = "datetime" if any(isinstance(v, dt.datetime) for v in values) else "date"
        if name in header.columns:
            col, title = header.col(name), None
            result.columns_written.append(header.texts.get(name, label))
        else:
            col, title = next_col, _title(label, aliases, lang)
            next_col += 1
            result.columns_added.append(title)
        col_of[name] = col
        if any(isinstance(v, (Duration, list)) for v in values[:1000]) or kind == "text":
            memo: dict = {}  # outputs are shared objects of the rule rows: convert each once
            out_values = [v if v is None or v.__class__ is str else memo.get(id(v)) or memo.setdefault(id(v), _cell_value(v)) for v in values]
        else:
            out_values = values
        edit.columns.append(_scatter(col, header.row, title, excel_rows, out_values, kind))
        _count(result, rs, runs, name, label, values)
    _highlights(edit, rs, runs, col_of, header, excel_rows, next_col)
    edit.owned = set(data.owned or ()) | {(header.row, c) for c in col_of.values()}
    return edit, result


def _outputs(rs: RuleSet) -> set:
    """Output names that no table reads from a column: a sheet's old results, not inputs."""
    reads = {i.name for t in rs.tables.values() for i in t.inputs if i.source == "column"} | set(rs.fields)
    return {n for t in rs.tables.values() for n in t.result_names} - reads


def _lang(header: Header) -> int:
    """0 for English headers, 1 for Chinese: new columns follow the sheet's language."""
    texts = " ".join(header.texts.values())
    return 1 if any("\u4e00" <= ch <= "\u9fff" for ch in texts) else 0


def _title(label: str, aliases: list[str], lang: int) -> str:
    if lang == 1:
        zh = [a for a in aliases if any("\u4e00" <= ch <= "\u9fff" for ch in a)]
        if zh:
            return zh[0]
    en = [a for a in aliases if not any("\u4e00" <= ch <= "\u9fff" for ch in a)]
    return en[0] if en else label


def _kind(type_: str, multi: bool) -> str:
    if multi:
        return "text"
    return {"number": "number", "text": "text", "boolean": "boolean", "date": "date", "datetime": "datetime", "duration": "text"}[type_]


def _cell_value(v):
    if isinstance(v, Duration):
        return display(v)
    if isinstance(v, list):
        return ", ".join(display(x) for x in v) or None
    return v


def _scatter(col, header_row, title, excel_rows, values, kind) -> ColumnWrite:
    """A ColumnWrite over the data rows; rows between (blank lines) keep what they hold."""
    if not excel_rows:
        return ColumnWrite(col, header_row, title, header_row + 1, [], kind)
    first = excel_rows[0]
    span = excel_rows[-1] - first + 1
    if span == len(excel_rows):
        return ColumnWrite(col, header_row, title, first, values, kind)
    out = [None] * span  # blank lines between data rows stay blank
    for r, v in zip(excel_rows, values):
        out[r - first] = v
    return ColumnWrite(col, header_row, title, first, out, kind)


def _days_overdue(rs: RuleSet, runs, ev, as_of: dt.datetime):
    dues = [(rs.tables[n], d) for n in runs for d in rs.tables[n].due]
    if not dues:
        return None
    out = [None] * ev.n
    for t, d in dues:
        values = ev.columns.get(d.name) or []
        settled = ev.settled.get(d.name, ())
        for i, v in enumerate(values):
            if v is None:
                continue
            if i in settled:
                continue
            if isinstance(v, dt.datetime):
                late = (as_of - v).total_seconds() / 86400
            else:
                late = (as_of.date() - v).days
            if late > 0:
                days = int(late) if late == int(late) else round(late, 1)
                out[i] = max(out[i] or 0, days)
    return out


def _highlights(edit: SheetEdit, rs, runs, col_of, header: Header, excel_rows, next_col):
    if not excel_rows:
        return
    first_row, last_row = excel_rows[0], excel_rows[-1]
    last_col = max(next_col - 1, max(col_of.values(), default=0))
    first_col = header.first_col
    for name in runs:
        for o in rs.tables[name].outputs:
            if o.highlight and o.name in col_of:
                for value, fill in o.highlight.items():
                    edit.highlights.append(Highlight(col_of[o.name], value, fill, first_row, last_row, first_col, last_col, FONT.get(fill)))
    if DAYS_OVERDUE in col_of:
        c = col_of[DAYS_OVERDUE]
        edit.highlights.append(Highlight(c, ">0", OVERDUE_FILL, first_row, last_row, c, c, FONT[OVERDUE_FILL]))


def _count(result: SheetResult, rs, runs, name, label, values):
    for n in runs:
        t = rs.tables[n]
        o = t.output(name)
        if o is None:
            continue
        # count first, word later
        raw = Counter(tuple(v) if isinstance(v, list) else v for v in values) if t.is_multi else Counter(values)
        shown = Counter()
        for v, k in raw.items():
            shown[display(v) if v is not None else "(blank)"] += k
        if o.allowed:
            result.counts[label] = shown
        elif o.type == "number":
            if len(raw) <= 13:
                result.counts[label] = shown
            result.sums[label] = float(sum(v * k for v, k in raw.items() if isinstance(v, (int, float))))
        return


def _row_problem(p: RowProblem, sheet: str, excel_rows, header: Header) -> Problem:
    column = header.texts.get(p.name) if p.name else None
    if column is None and p.name:
        column = p.name
    return Problem(p.message, p.severity, "row", sheet=sheet, row=excel_rows[p.index], column=column, table=p.table, suggestion=p.suggestion)


# ------------------------------------------------------------------ the sheets cxrules owns
def summary_sheet(report: RecalcReport, rs: RuleSet) -> NewSheet:
    bold = CellFormat(bold=True)
    rows: list[list] = [["CX summary"], ["Workbook", os.path.basename(report.path)],
                        ["As of", report.as_of], ["Rules", _rules_folder(rs)], ["cxrules", __version__], []]
    formats = {(0, 0): CellFormat(bold=True)}
    formats[(2, 1)] = CellFormat(num_fmt="yyyy-mm-dd hh:mm")
    row_formats = {}
    charts = []
    rows.append(["Sheet", "Rows", "Decisions", "Overdue", "Problems"])
    row_formats[len(rows) - 1] = bold
    for s in report.sheets:
        rows.append([s.sheet + (f" {s.region}" if s.region else ""), s.rows, ", ".join(s.decisions), s.overdue, s.problems])
    rows.append([])
    for s in report.sheets:
        for label, counts in s.counts.items():
            rows.append([f"{s.sheet}: {label}", "Count"] + (["Total"] if label in s.sums else []))
            row_formats[len(rows) - 1] = bold
            start = len(rows)
            for value, n in sorted(counts.items(), key=_count_order(rs, label)):
                row = [value, n]
                if label in s.sums:
                    try:
                        row.append(float(value) * n)
                    except ValueError:
                        row.append(None)
                rows.append(row)
            end = len(rows) - 1
            if end >= start and len(charts) < 4:
                charts.append(BarChart(f"{s.sheet}: {label}", (start, end, 0), [ChartSeries(start, end, 1, "Count")],
                                       anchor=(1 + 18 * len(charts), 7), size=(8, 16)))
            rows.append([])
    rows.append(["Legend"])
    row_formats[len(rows) - 1] = bold
    for t in rs.tables.values():
        if not any(t.name in s.decisions for s in report.sheets):
            continue
        for o in t.outputs:
            for value, fill in o.highlight.items():
                rows.append([f"{o.label} {display(value)}", "row coloured"])
                formats[(len(rows) - 1, 0)] = CellFormat(fill=fill, font_color=FONT.get(fill))
    rows.append(["Days overdue > 0", "a deadline or contact date has passed"])
    formats[(len(rows) - 1, 0)] = CellFormat(fill=OVERDUE_FILL, font_color=FONT[OVERDUE_FILL])
    return NewSheet(SUMMARY_SHEET, rows, formats=formats, row_formats=row_formats, charts=charts)


def _rules_folder(rs: RuleSet) -> str:
    files = sorted(set(rs.files))
    if not files:
        return ""
    folder = os.path.dirname(os.path.commonprefix(files)) if len(files) > 1 else files[0]
    return f"{folder or '.'} ({len(files)} files)" if len(files) > 1 else folder


def _count_order(rs: RuleSet, label: str):
    order = {}
    for t in rs.tables.values():
        for o in t.outputs:
            if o.label == label and o.allowed:
                order = {display(v): k for k, v in enumerate(o.allowed)}

    def key(item):
        value = item[0]
        if value in order:
            return (0, order[value], "")
        try:
            return (1, float(value), "")
        except ValueError:
            return (2, 0, value)

    return key


def issues_sheet(report: RecalcReport) -> NewSheet:
    rows: list[list] = [["Sheet", "Row", "Column", "Severity", "Problem", "What to do"]]
    for p in report.problems[:MAX_ISSUES_ON_SHEET]:
        rows.append([p.sheet or p.file, p.row, p.column, p.severity, p.message, p.suggestion])
    if len(report.problems) > MAX_ISSUES_ON_SHEET:
        rows.append([None, None, None, "note", f"{len(report.problems) - MAX_ISSUES_ON_SHEET} more problems are not listed", None])
    if len(rows) == 1:
        rows.append([None, None, None, None, "No problems found", None])
    return NewSheet(ISSUES_SHEET, rows, row_formats={0: CellFormat(bold=True)}, freeze_rows=1, autofilter=True)
