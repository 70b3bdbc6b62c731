"""Recalculating workbooks in place: find the data, evaluate the rules, write the results.

Sheets are matched to decisions without configuration: a decision runs on a sheet when
more than half of the columns and fields it reads are there (and its upstream decisions
run there too). Results go to the columns that already carry an output's header, or to
new columns after the last one. Overdue rows and escalation levels are coloured by
conditional formats; a `CX summary` sheet and an `Issues` sheet are (re)written, in
Chinese (`CX 汇总`, `问题`, output values by their Chinese spellings) when the headers are.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import gc
import math
import operator
import os
from collections import Counter
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter
from pathlib import Path
from typing import Callable

from . import contact_plan
from .advice import advice
from .aliases import has_cjk
from . import __version__
from .evaluation import Evaluator, RowProblem, now_in
from .files import check_destination
from .i18n import Translator
from .loader import COLOURS
from .mapping import SETTINGS_SHEET, SETTINGS_SHEETS, Mapping, read_settings
from .model import RuleSet
from .problems import ERROR, WARNING, Problem
from .stamp import Stamp, make_stamp
from .values import Duration, ValueProblem, display, norm_header
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
from .xlsx_write import MAX_COL, text_width

LANGS = ("en", "zh")
SUMMARY_SHEET = "CX summary"
ISSUES_SHEET = "Issues"
# the names of cxrules' sheets in every language: never read as data, and replaced whatever
# language an earlier run wrote them in
SUMMARY_SHEETS = tuple(dict.fromkeys(Translator(lang)(SUMMARY_SHEET) for lang in LANGS))
ISSUES_SHEETS = tuple(dict.fromkeys(Translator(lang)(ISSUES_SHEET) for lang in LANGS))
IMPACT_SHEET = "CX impact"  # cxrules impact's report (Excel's Preview rule change writes it into the workbook)
IMPACT_ROWS_SHEET = "CX impact rows"
IMPACT_SHEETS = tuple(dict.fromkeys(Translator(lang)(n) for n in (IMPACT_SHEET, IMPACT_ROWS_SHEET) for lang in LANGS))
OWN_SHEETS = SUMMARY_SHEETS + ISSUES_SHEETS + SETTINGS_SHEETS + IMPACT_SHEETS + contact_plan.PLAN_SHEETS
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
    reads: dict[str, str] = field(default_factory=dict)  # rule name -> the header that feeds it
    decisions: list[str] = field(default_factory=list)
    columns_written: list[str] = field(default_factory=list)
    columns_added: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # decision -> columns not found
    problems: int = 0
    overdue: int = 0
    counts: dict[str, Counter] = field(default_factory=dict)  # output label -> value counts
    sums: dict[str, float] = field(default_factory=dict)
    # due label -> {"by": the output grouped by, "counts": {its value: [overdue, due today, due this week]}}
    due: dict[str, dict] = field(default_factory=dict)
    refused: Problem | None = None  # why nothing was written on this sheet


@dataclass
class RecalcReport:
    path: str
    output: str
    as_of: dt.datetime
    written: bool = False
    sheets: list[SheetResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # sheets with nothing to compute
    not_run: list[Problem] = field(default_factory=list)  # decisions that apply but lacked a column
    problems: list[Problem] = field(default_factory=list)
    language: str = "en"  # of the headers: the sheets cxrules makes and the values it writes follow it
    issues_sheet: str = ISSUES_SHEET  # its name in that language
    stamp: Stamp | None = None  # what the results are recorded as made from (summary sheet, document properties)
    contacts: list = field(default_factory=list)  # contact_plan.Contact: the call list's first, per range
    contact_tally: object = None  # contact_plan.Tally: every contact of the next 4 weeks, counted
    plans_contacts: bool = False  # a contact source ran on some sheet: the Contact plan sheet is written

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
            "language": self.language,
            "rows": self.rows,
            "sheets": [
                {
                    "sheet": s.sheet, "region": s.region, "rows": s.rows, "header_row": s.header_row, "decisions": s.decisions,
                    "reads": s.reads,
                    "columns_written": s.columns_written, "columns_added": s.columns_added, "missing": s.missing,
                    "problems": s.problems, "overdue": s.overdue, "written": s.refused is None,
                    "counts": {k: dict(v) for k, v in s.counts.items()}, "sums": s.sums, "due": s.due,
                }
                for s in self.sheets
            ],
            "skipped": self.skipped,
            "problems": [p.to_dict() for p in self.problems],
            "stamp": self.stamp.to_dict() if self.stamp else None,
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


def applicable(rs: RuleSet, found: set[str], blocked: frozenset = frozenset()):
    """Decisions a sheet can run (in evaluation order), the optional inputs each one
    misses, and the decisions that apply but cannot run: decision -> what they lack
    (input or field names of required columns, or 'decision:NAME' for an upstream one).

    Evidence is the sheet's own columns: an output header (e.g. Tier, written by an
    earlier run) proves nothing. A decision that reads other decisions runs where they
    run and at least one of its own columns is there; any other decision runs where
    more than half of its columns are there. A blocked decision does not run; its
    outputs are on the sheet as the person wrote them, for the decisions that read them.
    """
    outputs = {n for t in rs.tables.values() for n in t.result_names}
    runs: list[str] = []
    made: set[str] = set()
    missing: dict[str, list[str]] = {}
    cannot: dict[str, list[str]] = {}
    for t in rs.order():
        if t.name in blocked:
            continue
        upstream = [i.decision for i in t.inputs if i.decision]
        if any(u not in runs and u not in blocked and u not in cannot for u in upstream):
            continue
        own = [(i.derive.field if i.derive else i.name, i.name, _optional(rs, i)) for i in t.inputs if not i.decision]
        # the date and group a derivation over dated rows reads are needed as much as its value
        own += [(f, f, f in rs.fields and rs.fields[f].optional) for i in t.inputs if i.derive for f in i.derive.reads[1:]]
        own += [(d.source, d.source, d.source in rs.fields and rs.fields[d.source].optional) for d in t.due]
        # evidence: the distinct required columns (optional ones only when nothing is required)
        evidence = list(dict.fromkeys(key for key, _, opt in own if not opt and (key not in outputs or key in rs.fields)))
        if not evidence:
            evidence = list(dict.fromkeys(key for key, _, _ in own if key not in outputs or key in rs.fields))
        have = [key for key in evidence if key in found]
        ok = (bool(have) or not evidence) if upstream else len(have) * 2 > len(evidence)
        if not ok:
            continue
        lack = [(key, n, opt) for key, n, opt in own if key not in found and key not in made]  # made: computed on this sheet first
        required = list(dict.fromkeys(key for key, _, opt in lack if not opt))
        stuck = [f"decision:{u}" for u in upstream if u in cannot]
        if required or stuck:
            cannot[t.name] = required + stuck
            continue
        runs.append(t.name)
        made.update(t.result_names)
        if lack:
            missing[t.name] = [n for _, n, _ in lack]
    return runs, missing, cannot


def _not_run(rs: RuleSet, data, header: Header, dec: str, lacks: list[str], where: str) -> Problem:
    """A decision that applies but lacks a required column: what is missing, the header
    that looks closest, and how to map it."""
    from .mapping import closest

    used = set(header.columns.values())
    hi = header.hi if header.hi is not None else len(data.rows[header.index]) - 1
    row = data.rows[header.index]
    free = {j: str(row[j]).strip() for j in range(header.lo, min(hi, len(row) - 1) + 1)
            if j not in used and row[j] is not None and str(row[j]).strip()}
    parts, hint = [], None
    for key in lacks:
        if key.startswith("decision:"):
            parts.append(f"it reads decision '{key[9:]}', which could not run either")
            continue
        names = rs.fields[key].columns if key in rs.fields else next(
            (i.columns for t in rs.tables.values() for i in t.inputs if i.name == key and i.columns), [key])
        label = next((i.label for t in rs.tables.values() for i in t.inputs if i.name == key), names[0] if names else key)
        text = f"no column for {label} (a header such as {' or '.join(repr(n) for n in names[:3])})"
        near = closest(free, names)
        if near is not None:
            j, h, _ = near
            text += f"; the closest header is '{h}' in column {col_letter(header.first_col + j)}"
            hint = hint or (h, key)
        parts.append(text)
    suggestion = "add the column, or map an existing header to it"
    if hint:
        suggestion = (f"map it: --map \"{hint[0]}={hint[1]}\" on the command line, or write it in the "
                      f"'{SETTINGS_SHEET}' sheet ('cxrules map' proposes the mapping)")
    return Problem(f"decision '{dec}' did not run on {where}: {'; '.join(parts)}; its earlier results were kept",
                   ERROR, "decision-not-run", sheet=data.name, row=header.row, column=col_letter(header.first_col + header.lo),
                   table=dec, suggestion=suggestion)


def _optional(rs: RuleSet, i) -> bool:
    """May a sheet lack this input's column? The input says so, or the field it derives from."""
    if i.optional:
        return True
    key = i.derive.field if i.derive else None
    return key is not None and key in rs.fields and rs.fields[key].optional


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
    limits=None,
    mapping: Mapping | None = None,
) -> RecalcReport:
    """Recalculate one workbook; returns what was done. Raises WorkbookError if the file
    cannot be read or written (it is then left exactly as it was). An existing `output`
    other than the workbook itself is replaced only with `force`. limits: a
    package_guard.Limits against zip bombs (None: from the environment, else defaults).
    mapping: headers mapped to rule names (e.g. from --map); it wins over the workbook's
    own settings sheet."""
    with _paused_gc():
        return _recalc(path, evaluator, as_of, output, dry_run, dayfirst, progress, header_row, force, limits, mapping)


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


def _recalc(path, evaluator, as_of, output, dry_run, dayfirst, progress, header_row=None, force=False, limits=None,
            mapping=None) -> RecalcReport:
    rs = evaluator.rs
    src = Path(path)
    dst = Path(output) if output else src
    as_of = as_of or now_in(rs.timezone)
    report = RecalcReport(str(src), str(dst), as_of)
    # the options given, not the workbook's own mapping sheet: that travels with the workbook
    report.stamp = make_stamp(rs, as_of, dayfirst, header_row, mapping)
    with open_workbook(src, limits) as wb:
        if not dry_run:  # refuse before the work, not after it
            check_destination(src, dst, force)
        sheets = data_sheets(wb)
        mapping = workbook_mapping(wb, report).merged(mapping or Mapping())
        wb.check_sources = not dry_run  # big sheets' own XML checked beside the work, for the write

        edits, new_sheets = plan(_read_ahead(wb, sheets, progress), evaluator, as_of, report, dayfirst, header_row, mapping,
                                 release_rows=True)
        checks = wb.take_source_checks()
    try:
        if not report.sheets or dry_run:
            return report
        progress("writing", len(sheets), len(sheets))
        wr = write_workbook(src, dst, edits, new_sheets, limits, properties=report.stamp.properties(), source_checks=checks)
    finally:
        for check in checks.values():
            check.abort()
    report.problems.extend(wr.problems)
    report.issues_sheet = wr.sheet_names.get(report.issues_sheet, report.issues_sheet)
    report.written = True
    return report


AHEAD_MAX = 64 << 20  # bytes of sheet XML: a sheet this small is read while the one before is worked on


def _read_ahead(wb, sheets, progress):
    """Each sheet's data in turn; the next one, when small, is read by a thread while this one
    is worked on (calamine parses without holding the GIL, on the core the work leaves idle)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        ahead = None
        for k, sheet in enumerate(sheets):
            progress(f"reading {sheet.name}", k, len(sheets))
            data = ahead.result() if ahead is not None else wb.read_sheet(sheet.name)
            ahead = None
            if k + 1 < len(sheets) and wb.sheet_size(sheets[k + 1].name) <= AHEAD_MAX:
                ahead = pool.submit(wb.read_sheet, sheets[k + 1].name)
            yield data


def data_sheets(wb) -> list:
    """The worksheets that may hold data: its own sheets, by name or by the mark an earlier
    run left (a name taken by a person's sheet made it 'Issues (2)'), are never data."""
    own = set(OWN_SHEETS) | {name for name, asked in wb.cxrules_sheets.items() if asked in OWN_SHEETS}
    return [s for s in wb.worksheets if s.name not in own]


def workbook_mapping(wb, report: RecalcReport | None = None) -> Mapping:
    """The mapping kept in the workbook's settings sheet (empty if it has none)."""
    for s in wb.worksheets:
        if s.name in SETTINGS_SHEETS:
            m, problems = read_settings(wb.read_sheet(s.name).rows, s.name)
            if report is not None:
                report.problems.extend(problems)
            return m
    return Mapping()


def plan(sheets, evaluator: Evaluator, as_of: dt.datetime, report: RecalcReport, dayfirst: bool = False,
         header_row: int | None = None, mapping: Mapping | None = None,
         sheet_done: Callable[[object, list[SheetEdit]], None] | None = None, release_rows: bool = False,
         computed: Callable | None = None):
    """What recalculating these sheets writes: (sheet edits, new sheets); fills `report`.

    `sheets` yields SheetData, from a file or from a workbook open in Excel; the caller
    applies the edits with the xlsx writer or through xlwings. sheet_done(data, edits) is
    called after each sheet with the edits made for it (verify compares them there, so no
    sheet's cells are held longer than its own turn). release_rows: a sheet's cells are not
    needed after its last range is computed (its rows are emptied then, so a big sheet is
    not held beside its results). computed(data, header, excel_rows, ev, runs) is called for
    each range evaluated, with the evaluation's own values (impact compares two rule sets so).
    """
    rs = evaluator.rs
    if report.stamp is None:
        report.stamp = make_stamp(rs, as_of, dayfirst, header_row)
    want = wanted_columns(rs)
    mapping = mapping or Mapping()
    report.problems.extend(mapping.check(want, SETTINGS_SHEET))
    edits: list[SheetEdit] = []
    langs: list[int] = []  # per range computed: 1 when its headers are Chinese
    for data in sheets:
        if data.name in OWN_SHEETS:
            continue
        regions, found_problems = find_regions(data, mapping.wanted(want, data.name), header_row=header_row)
        report.problems.extend(found_problems)
        several = len(regions) > 1
        done = 0
        edits_before = len(edits)
        results = _outputs(rs) | {DAYS_OVERDUE}
        for header in regions:
            header.ref = _range_label(data, header, results)
            where = f"the range {header.ref}" if several else "this sheet"
            found = set(header.columns)
            runs, missing, cannot = applicable(rs, found)
            if not runs and not cannot:
                if several:
                    report.problems.append(Problem(
                        f"the range {header.ref} has none of the columns the decisions read; it was left as it is",
                        WARNING, "range-skipped", sheet=data.name, row=header.row, column=col_letter(header.first_col + header.lo),
                        suggestion="nothing to do if it holds no customers or cases; else give it the headers the rules read ('cxrules decisions' lists them)"))
                continue
            report.problems.extend(header.problems)
            first, last = _data_span(data, header)
            kept = _kept_columns(rs, data, header, runs, first, last)
            if kept:
                blocked = frozenset(d for d, _ in kept.values() if d)
                runs, missing, cannot = applicable(rs, found, blocked)
                for name, (dec, col) in kept.items():
                    what = (f"so decision '{dec}' did not run on {where} and the column was kept "
                            f"(the decisions that use it read it as it is)") if dec else "so it was kept"
                    report.problems.append(Problem(
                        f"column {col_letter(col)} ('{header.texts.get(name, name)}') holds data cxrules did not write, {what}",
                        WARNING, "column-kept", sheet=data.name, row=header.row, column=col_letter(col),
                        suggestion="to let cxrules fill it, clear the column or rename its header; to keep your values, nothing to do"))
            for dec, lacks in cannot.items():
                p = _not_run(rs, data, header, dec, lacks, where)
                report.problems.append(p)
                report.not_run.append(p)
            if not runs:
                continue
            blocker = _no_room(rs, data, header, runs, kept, first, last)
            if blocker:
                report.problems.append(Problem(
                    f"{where[0].upper() + where[1:]} has no room for its results: {blocker}; it was left as it is",
                    WARNING, "no-room", sheet=data.name, row=header.row, column=col_letter(header.first_col + header.lo),
                    suggestion="leave empty columns to the right of the table (one more than it needs, to keep the tables apart), or move the other table"))
                continue
            edit, result = _recalc_sheet(rs, evaluator, data, header, runs, missing, as_of, dayfirst, report, (first, last), kept,
                                         release_rows and header is regions[-1], computed)
            langs.append(_lang(header))
            result.region = header.ref if several else None
            report.sheets.append(result)
            done += 1
            if edit.columns:
                edits.append(edit)
        if sheet_done is not None:
            sheet_done(data, edits[edits_before:])
        if not done:
            report.skipped.append(data.name)
        if not regions:  # no header the rules know: say so if some look close
            near = propose_mapping([data], rs, mapping, 0.6)
            if near:
                shown = ", ".join(f"'{x.header}' ({x.label})" for x in near[:4])
                p = Problem(f"no header the rules know, but {'some look' if len(near) > 1 else 'one looks'} close: {shown}; "
                            "nothing was computed on this sheet", ERROR, "unmapped-headers", sheet=data.name,
                            suggestion=f"run 'cxrules map' on the workbook to write a mapping into its '{SETTINGS_SHEET}' sheet, "
                                       f"or pass --map \"{near[0].header}={near[0].name}\"")
                report.problems.append(p)
                report.not_run.append(p)
    if not report.sheets:
        if report.not_run:  # said above, sheet by sheet
            return [], []
        report.problems.append(Problem(
            "no sheet has the columns the rules read; nothing was changed",
            WARNING, "no-data", file=report.path,
            suggestion="check the headers against 'cxrules decisions' (e.g. Last purchase, Orders 12m, Spend 12m, Severity, Opened at)",
        ))
        return [], []
    report.language = "zh" if sum(langs) * 2 > len(langs) else "en"
    issues = issues_sheet(report, rs)
    report.issues_sheet = issues.name
    made = [summary_sheet(report, rs)]
    if report.plans_contacts:
        made.append(contact_plan.plan_sheet(report, rs, translator(rs, report.language, report), report.contacts,
                                            report.contact_tally))
    return edits, made + [issues]


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
    rows = data.rows[i1:i2]
    for r in rows if max(map(len, rows), default=0) > start else ():  # calamine's rows end at the range's last column
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


def _recalc_sheet(rs, evaluator, data, header: Header, runs, missing, as_of, dayfirst, report: RecalcReport, span, kept,
                  release: bool = False, computed=None):
    sheet = data.name
    result = SheetResult(sheet, header_row=header.row, decisions=list(runs), missing={},
                         reads={k: header.texts.get(k, k) for k in header.columns})
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
    columns = _columns(block, reads)
    keep = _filled_rows(columns, len(block))
    if len(keep) != len(block):
        columns = {k: [c[i] for i in keep] for k, c in columns.items()}
    top = data.first_row + first
    # rows without a gap: a range, not a million ints
    excel_rows = range(top, top + len(keep)) if len(keep) == len(block) else [top + i for i in keep]
    sources = contact_plan.active(rs, runs)
    ids = contact_plan.identity(data, header, block, keep) if sources else {}
    del keep  # a million row indexes, not wanted past here
    if release:
        del block
        data.rows = []
    problems: list[Problem] = []
    no_value = set(data.formula_cells_without_value)
    placeholders = set(data.formula_placeholders)
    no_value |= placeholders
    for key, j in reads.items():
        col = columns[key]
        if data.error_cells is not False and CellError in set(map(type, col)):
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
    del columns  # the cells read: the evaluation keeps what it still needs (not held through the plan and the write)
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
    if computed is not None:
        computed(data, header, excel_rows, ev, runs)
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
    from .columnar import coded

    for name, label, aliases, kind in outputs:
        if name in col_of or name in kept:
            continue
        values = ev.columns.get(name, [None] * len(excel_rows))
        if kind == "due":
            c = coded(values)
            kind = "datetime" if any(issubclass(k, dt.datetime) for k in set(map(type, c[0] if c else values))) else "date"
        if name in header.columns:
            col, title = header.col(name), None
            result.columns_written.append(header.texts.get(name, label))
        else:
            col, title = next_col, _title(label, aliases, lang)
            next_col += 1
            result.columns_added.append(title)
        col_of[name] = col
        if any(isinstance(v, (Duration, list)) for v in values[:1000]) or kind == "text":
            # outputs are shared objects of the rule rows: convert each once; text in the
            # sheet's language (the value's Chinese spelling on a sheet with Chinese headers)
            conv = (lambda v, n=name: _cell_value(rs.aliases.written(n, v, lang == 1))) if rs.aliases else _cell_value
            out_values = _converted(values, conv)
        else:
            out_values = values
        cw = _scatter(col, header.row, title, excel_rows, out_values, kind)
        if name == DAYS_OVERDUE and any(isinstance(x, float) and not x.is_integer() for x in values if x):
            cw.num_fmt = "0.00"  # deadlines with times: parts of a day show (47 minutes: 0.03)
        if title is not None:
            cw.width, cw.wrap = _fit_width(title, out_values, kind)
        edit.columns.append(cw)
        _count(result, rs, runs, name, label, values)
    _due_counts(result, rs, runs, ev, as_of)
    if sources:
        report.plans_contacts = True
        if report.contact_tally is None:
            report.contact_tally = contact_plan.Tally()
        report.contacts.extend(contact_plan.collect(rs, sources, ev, ids, sheet, excel_rows, as_of, report.contact_tally))
    _highlights(edit, rs, runs, col_of, header, excel_rows, next_col, lang == 1)
    edit.owned = set(data.owned or ()) | {(header.row, c) for c in col_of.values()}
    edit.header_row = header.row
    return edit, result


def _columns(block: list[list], reads: dict[str, int]) -> dict[str, list]:
    """The columns `reads` names (name -> index in a row) of the rows in `block`."""
    if block and reads and min(map(len, block)) > max(reads.values()):  # calamine's rows are all as wide
        return {k: list(map(itemgetter(j), block)) for k, j in reads.items()}
    return {k: [r[j] if j < len(r) else None for r in block] for k, j in reads.items()}


def _filled_rows(columns: dict[str, list], n: int) -> list[int]:
    """Indexes of the rows with a value in at least one of the columns."""
    if not columns:
        return []
    if any(None not in col for col in columns.values()):  # a column filled in every row (an ID): all are
        return list(range(n))
    import numpy as np

    blank = np.ones(n, dtype=bool)
    for col in columns.values():
        blank &= np.fromiter(map(operator.is_, col, repeat(None)), bool, n)
    return np.flatnonzero(~blank).tolist()


def _converted(values: list, conv) -> list:
    """[conv(v)] for outputs, which are a few objects shared by many rows: each converted once
    (the column itself when nothing changes)."""
    from .columnar import coded, mapped

    if coded(values) is not None:  # each entry once; a new column only when one of them changes
        return mapped(values, lambda v: conv(v) if v is not None else None)
    if set(map(type, values)) <= {str, type(None)}:  # texts hash at C speed (cached): by value
        distinct = set(values)
        distinct.discard(None)
        by_value = {v: conv(v) for v in distinct}
        if all(by_value[v] is v for v in distinct):
            return values
        by_value[None] = None
        return list(map(by_value.__getitem__, values))
    objs = dict(zip(map(id, values), values))
    table = {i: (conv(v) if v is not None else None) for i, v in objs.items()}
    if all(table[i] is v for i, v in objs.items()):
        return values
    return list(map(table.__getitem__, map(id, values)))


MAX_WIDTH = 50  # a new column no wider than this (about a third of a laptop screen); longer texts wrap


def _fit_width(title: str, values, kind: str) -> tuple[float, bool]:
    """(width, wrap) of a new column: as wide as its header and its values (CJK characters
    count double), with room for a filter button; texts wider than MAX_WIDTH wrap."""
    widest = text_width(title) + 2
    fixed = {"date": 10, "datetime": 16}.get(kind)
    from .columnar import coded, np

    c = coded(values)
    some = [c[0][i] for i in np.unique(c[1][:20000]).tolist()] if c is not None else values[:20000]
    try:  # a few distinct values (tiers, dates): each measured once
        if len(set(map(type, some)) - {type(None)}) <= 1:  # equal values are of one type: by value
            some = list(set(some))
        else:
            some = [v for _, v in set(zip(map(type, some), some))]
    except TypeError:  # lists (collect tables): each as it is
        pass
    seen: set = set()
    for v in some:
        if v is None or v.__class__ is bool or (v.__class__ in (str, int, float) and v in seen):
            continue
        if v.__class__ in (str, int, float):
            seen.add(v)
        if fixed and isinstance(v, dt.date):
            n = fixed
        else:
            n = text_width(v if isinstance(v, str) else display(v))
        widest = max(widest, n)
    w = round(widest * 1.1 + 1, 1)
    return min(max(w, 10), MAX_WIDTH), w > MAX_WIDTH


def _due_counts(result: SheetResult, rs: RuleSet, runs, ev, as_of: dt.datetime) -> None:
    """For each due date: how many rows are overdue, due today and due this week (today to
    Sunday), by the table's first text output that is not a calendar (contacts by channel,
    cases by owner). Rows a due's `unless` excuses (resolved cases) are left out."""
    today = as_of.date()
    sunday = today + dt.timedelta(days=6 - today.weekday())
    for name in runs:
        t = rs.tables[name]
        calendars = {d.calendar for d in t.due}
        by = None if t.is_multi else next((o for o in t.outputs if o.type == "text" and o.name not in calendars), None)
        groups = ev.columns.get(by.name) if by else None
        for d in t.due:
            values = ev.columns.get(d.name) or []
            settled = ev.settled.get(d.name, ())
            counts: dict[str, list[int]] = {}
            # rows share a few (group, due) pairs: count the pairs, then weigh each once
            pairs = _coded_pairs(groups, values, settled)
            if pairs is None:
                keep = [True] * len(values)
                for i in settled:
                    if i < len(keep):
                        keep[i] = False
                pairs = Counter(compress(zip(groups if groups else repeat(None), values), keep))
            pairs = {gv: k for gv, k in pairs.items() if gv[1] is not None}
            for (g, v), k in pairs.items():
                c = counts.setdefault(display(g) if g is not None else "(blank)", [0, 0, 0])
                v = _due_value(rs, d, v)
                day = v.date() if isinstance(v, dt.datetime) else v
                late = v < as_of if isinstance(v, dt.datetime) else day < today
                c[0] += k * late  # overdue, due today and due this week are apart: a row counts once
                c[1] += k * (day == today and not late)
                c[2] += k * (today <= day <= sunday and not late)
            result.due[d.label] = {"by": by.label if by else None, "counts": counts}


def _coded_pairs(groups, values, settled) -> Counter | None:
    """Counter(zip(groups, values)) of the rows not settled, counted by code when both
    columns are Coded (journeys' steps and dues); None when they are not."""
    from .columnar import coded, counts_in_order, np

    cv = coded(values)
    cg = coded(groups) if groups else ([None], np.zeros(len(values), np.int64))
    if cv is None or cg is None:
        return None
    (gt, gc), (vt, vc) = cg, cv
    key = gc * len(vt) + vc
    if settled:
        keep = np.ones(len(key), bool)
        keep[[i for i in settled if 0 <= i < len(key)]] = False
        key = key[keep]
    out: Counter = Counter()  # in the order pairs first appear, as Counter counts them
    for k, n in counts_in_order(key):
        out[(gt[k // len(vt)], vt[k % len(vt)])] += n
    return out


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
    if isinstance(v, list):  # a blank entry shows as '-', so the n-th entries of two columns still line up
        return ", ".join("-" if x is None else display(x) for x in v) or None
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


def _due_value(rs: RuleSet, d, v):
    """A due date counted from a date (a next contact from the last contact) is a day: it
    is due all that day, not overdue from its midnight."""
    if isinstance(v, dt.datetime) and v.time() == dt.time(0) and d.source in rs.fields and rs.fields[d.source].type == "date":
        return v.date()
    return v


def _lateness(rs: RuleSet, d, v, as_of: dt.datetime):
    v = _due_value(rs, d, v)
    if isinstance(v, dt.datetime):
        # to the minute, never rounded to nothing: 47 minutes late is late
        secs = (as_of - v).total_seconds()
        late = math.ceil(secs / 60) / 1440 if secs > 0 else 0
        return round(late, 6)
    return (as_of.date() - v).days


def _days_overdue(rs: RuleSet, runs, ev, as_of: dt.datetime):
    dues = [(rs.tables[n], d) for n in runs for d in rs.tables[n].due]
    if not dues:
        return None
    try:
        out = _days_overdue_columnar(rs, dues, ev, as_of)
        if out is not None:
            return out
    except TypeError:  # a due value that cannot be a key: one row at a time
        pass
    out = [None] * ev.n
    for t, d in dues:
        values = ev.columns.get(d.name) or []
        settled = ev.settled.get(d.name, ())
        lateness = {v: _lateness(rs, d, v, as_of) for v in set(values) if v is not None}
        lates = list(map(lateness.get, values))  # None for a blank
        for i in settled:
            if i < len(lates):
                lates[i] = None
        for i in [i for i, late in enumerate(lates) if late is not None and late > 0]:
            out[i] = max(out[i] or 0, lates[i])
    return out


def _days_overdue_columnar(rs: RuleSet, dues, ev, as_of: dt.datetime):
    """_days_overdue a column at a time: each distinct due date's lateness reckoned once,
    the rows' greatest picked by numpy (the first due's on a tie, as max() keeps it); None
    when a due column is not one value a row."""
    from .columnar import coded, np, numbered, objects

    n = ev.n
    best, src, entry = np.zeros(n), np.full(n, -1), np.zeros(n, np.int64)
    tables = []
    for k, (t, d) in enumerate(dues):
        values = ev.columns.get(d.name) or [None] * n
        # a calendar's dues numbered by value (equal dates are equally late); TypeError: unhashable
        table, codes = coded(values) or numbered(values)
        if len(codes) != n:
            return None
        lates = [_lateness(rs, d, v, as_of) if v is not None else None for v in table]
        tables.append(objects(lates))
        late = np.array([x if x is not None and x > 0 else 0 for x in lates], np.float64)[codes]
        settled = [i for i in ev.settled.get(d.name, ()) if 0 <= i < n]
        if settled:
            late[settled] = 0
        better = late > best
        best = np.where(better, late, best)
        src = np.where(better, k, src)
        entry = np.where(better, codes, entry)
    out = np.full(n, None, dtype=object)
    for k, lates in enumerate(tables):
        at = src == k
        out[at] = lates[entry[at]]
    return out.tolist()


def _highlights(edit: SheetEdit, rs, runs, col_of, header: Header, excel_rows, next_col, zh: bool = False):
    """Rows coloured by an output's `highlight:`, and overdue rows red all along (customers
    and cases alike). Where both apply the output's colour wins (it comes first): the rule
    file asked for it, and the days-overdue number still shows on the row."""
    if not excel_rows:
        return
    first_row, last_row = excel_rows[0], excel_rows[-1]
    last_col = max(next_col - 1, max(col_of.values(), default=0))
    first_col = header.first_col
    rows = []
    for name in runs:
        for o in rs.tables[name].outputs:
            if o.highlight and o.name in col_of:
                for value, fill in o.highlight.items():
                    shown = rs.aliases.written(o.name, value, zh) if isinstance(value, str) else value
                    rows.append(Highlight(col_of[o.name], shown, fill, first_row, last_row, first_col, last_col, FONT.get(fill)))
    if DAYS_OVERDUE in col_of:
        c = col_of[DAYS_OVERDUE]
        rows.append(Highlight(c, ">0", OVERDUE_FILL, first_row, last_row, first_col, last_col, FONT[OVERDUE_FILL]))
    edit.highlights.extend(rows)


def _count(result: SheetResult, rs, runs, name, label, values):
    for n in runs:
        t = rs.tables[n]
        o = t.output(name)
        if o is None or name in {d.calendar for d in t.due}:  # a calendar's name is not worth a count
            continue
        if not o.allowed and o.type != "number":  # nothing of it is kept (a journey's dates and actions)
            return
        # count first, word later
        raw = Counter(tuple(v) if isinstance(v, list) else v for v in values) if t.is_multi else _counted(values)
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
    return Problem(p.message, p.severity, "row", sheet=sheet, row=excel_rows[p.index], column=column, table=p.table,
                   suggestion=p.suggestion or advice(p.message))


# ------------------------------------------------------------------ the sheets cxrules owns
def translator(rs: RuleSet | None, lang: str, report: RecalcReport | None = None) -> Translator:
    """The catalogue of `lang`, with Chinese headers for the labels and names in messages
    (the workbook's own where its sheets have them), and value spellings for the values."""
    if lang == "en" or rs is None:
        return Translator(lang)
    seen = {k: v for s in (report.sheets if report else []) for k, v in s.reads.items() if has_cjk(v)}
    headers = _headers_zh(rs, seen)
    return Translator(lang, label=lambda s: headers.get(norm_header(s), s),
                      value=lambda v: rs.aliases.written(None, v, zh=True))


def _headers_zh(rs: RuleSet, seen: dict[str, str] | None = None) -> dict[str, str]:
    """Names, labels and English headers -> the Chinese header of the same column: the one a
    sheet has (`seen`: name -> header), else the first Chinese one the rules list."""
    out: dict[str, str] = {}
    seen = seen or {}

    def add(keys, columns):
        zh = seen.get(keys[0]) or next((c for c in columns if has_cjk(c)), None)
        if zh:
            for k in list(keys) + [c for c in columns if not has_cjk(c)]:
                out.setdefault(norm_header(k), zh)

    for f in rs.fields.values():
        add([f.name], f.columns)
    for t in rs.tables.values():
        for i in t.inputs:
            add([i.name, i.label], i.columns)
        for o in t.outputs:
            add([o.name, o.label], o.columns)
        for d in t.due:
            add([d.name, d.label], d.columns)
    add([DAYS_OVERDUE], DAYS_OVERDUE_LABELS)
    return out


def _other_names(name: str, lang: str) -> tuple[str, ...]:
    return tuple(Translator(x)(name) for x in LANGS if x != lang)


CHARTS_MAX = 8
CHART_COLS = 7  # a chart's width in columns (of the default width)
CHART_ROWS = 10  # and its least height in rows
CHART_AT = 5  # the column charts start in (F): tables in A-D, a narrow gap in E


def level_chart(charts: list, title: str, top: int, first: int, last: int, series) -> int:
    """A bar chart level with the table headed at rows[top], its values rows[first..last], tall
    enough that every bar keeps its label; the row its table must be padded to (top when none
    is added: no rows, or CHARTS_MAX reached)."""
    if last < first or len(charts) >= CHARTS_MAX:
        return top
    height = max(CHART_ROWS, last - top + 3, round((last - first + 1) * (1.2 + 0.8 * len(series))) + 5)
    charts.append(BarChart(title, (first, last, 0), series, anchor=(top, CHART_AT), size=(CHART_COLS, height)))
    return top + height


def summary_sheet(report: RecalcReport, rs: RuleSet) -> NewSheet:
    """The CX summary: what was computed where, the colours' meaning, what is due per
    channel (or owner), and counts per tier and level, each table with its chart beside
    it; labels in column A, figures right beside them, all within a laptop screen's width."""
    lang = report.language
    tr = translator(rs, lang, report)
    zh = lang == "zh"
    rows: list[list] = []
    formats: dict[tuple[int, int], CellFormat] = {}
    row_formats: dict[int, CellFormat] = {}
    charts: list[BarChart] = []
    bold = CellFormat(bold=True)

    def add(row=(), fmt=None) -> int:
        rows.append(list(row))
        if fmt is not None:
            row_formats[len(rows) - 1] = fmt
        return len(rows) - 1

    def chart(title, top, first, last, series):
        end = level_chart(charts, title, top, first, last, series)
        while len(rows) < end:  # the table padded to the chart's height
            add()

    def value(name, v):
        return tr("(blank)") if v == "(blank)" else rs.aliases.written(name, v, zh)

    add([tr(SUMMARY_SHEET)], CellFormat(bold=True))
    add([tr("Workbook"), os.path.basename(report.path)])
    add([tr("As of"), display(report.as_of)])  # text: it runs on to the right, beside its label
    add([tr("Rules"), _rules_folder(rs, tr)])
    stamp = report.stamp
    add(["cxrules", stamp.version if stamp else __version__])
    if stamp:  # the rest of the stamp (docs/recalc.md); the document's custom properties hold it too
        add([tr("Rules hash"), stamp.rules_hash])
        if stamp.revision:
            add([tr("Rules revision (git)"), stamp.revision])
        if stamp.options:
            add([tr("Options"), stamp.options_text])
    add()
    add([tr("Sheet"), tr("Rows"), tr("Overdue"), tr("Problems"), None, tr("Decisions")], bold)
    for s in report.sheets:
        add([s.sheet + (f" {s.region}" if s.region else ""), s.rows, s.overdue, s.problems, None, ", ".join(s.decisions)])
    add()
    if report.not_run:  # decisions that apply but could not run: their earlier results are stale
        add([tr("Did not run")], bold)
        add([tr("Sheet"), tr("Decision"), None, None, None, tr("Why")], bold)
        red = CellFormat(fill=OVERDUE_FILL, font_color=FONT[OVERDUE_FILL])
        for p in report.not_run:
            i = add([p.sheet, p.table, None, None, None, tr(p.message)])
            formats[(i, 0)] = red
        add()

    # what the colours on the sheets mean, before anything else needs them
    add([tr("Legend: rows are coloured so")], bold)
    for t in rs.tables.values():
        if not any(t.name in s.decisions for s in report.sheets):
            continue
        for o in t.outputs:
            for v, fill in o.highlight.items():
                # alone on its row: a long value runs on to the right instead of under the next column
                i = add([f"{tr.label(o.label)} {value(o.name, display(v))}"])
                formats[(i, 0)] = CellFormat(fill=fill, font_color=FONT.get(fill))
    i = add([f"{tr.label(DAYS_OVERDUE_LABELS[0])} > 0", tr("a deadline or contact date has passed: the row is red")])
    formats[(i, 0)] = CellFormat(fill=OVERDUE_FILL, font_color=FONT[OVERDUE_FILL])
    add()

    def due_table(s, due_label, d):
        by = d["by"]
        head = tr.fmt("{sheet}: {label_due}, per {label_by}", sheet=s.sheet, label_due=due_label, label_by=by) if by else \
            tr.fmt("{sheet}: {label_due}", sheet=s.sheet, label_due=due_label)
        top = add([head], bold)
        add([tr.label(by) if by else "", tr("Overdue"), tr("Due today"), tr("Due this week")], bold)
        first = len(rows)
        name = _output_name(rs, by)
        for g, (late, today, week) in sorted(d["counts"].items(), key=lambda kv: (-kv[1][2], -kv[1][1], kv[0])):
            add([value(name, g), late, today, week])
        last = len(rows) - 1
        totals = [sum(c[k] for c in d["counts"].values()) for k in range(3)]
        add([tr("Total")] + totals, bold)
        chart(head, top, first, last, [ChartSeries(first, last, 2, tr("Due today")), ChartSeries(first, last, 3, tr("Due this week"))])
        add()

    def count_table(s, label, counts):
        head = tr.fmt("{sheet}: {label}", sheet=s.sheet, label=label)
        top = add([head, tr("Count")] + ([tr("Total")] if label in s.sums else []), bold)
        first = len(rows)
        name = _output_name(rs, label)
        for v, n in sorted(counts.items(), key=_count_order(rs, label)):
            row = [value(name, v), n]
            if label in s.sums:
                try:
                    row.append(float(v) * n)
                except ValueError:
                    row.append(None)
            add(row)
        last = len(rows) - 1
        chart(head, top, first, last, [ChartSeries(first, last, 1, tr("Count"))])
        add()

    # due today and this week, per channel (contacts) or owner (cases); then counts per tier,
    # level, ... as of today; the journeys' (their steps) after the decisions'
    journey = {x.label for t in rs.tables.values() if hasattr(t, "journey") for x in [*t.outputs, *t.due]}
    for journeys in (False, True):
        for s in report.sheets:
            for due_label, d in s.due.items():
                if d["counts"] and (due_label in journey) == journeys:
                    due_table(s, due_label, d)
        for s in report.sheets:
            for label, counts in s.counts.items():
                if (label in journey) == journeys:
                    count_table(s, label, counts)
    # Labels set column A (a heading alone on its row runs on to the right), the tables'
    # headings B-D; file names, paths and the decisions run on to the right too.
    widths = {0: min(max(text_width(str(r[0])) for r in rows if len(r) > 1 and r[0] is not None) * 1.1 + 1, 36)}
    for j in (1, 2, 3):
        widths[j] = max([text_width(str(rows[k][j])) * 1.1 + 1 for k in row_formats if len(rows[k]) > j and rows[k][j]] + [10])
    widths[4] = 2
    return NewSheet(tr(SUMMARY_SHEET), rows, widths=widths, formats=formats, row_formats=row_formats, charts=charts,
                    fit_width=True, also=_other_names(SUMMARY_SHEET, lang))


def _output_name(rs: RuleSet, label: str | None) -> str | None:
    for t in rs.tables.values():
        for o in t.outputs:
            if o.label == label:
                return o.name
    return None


def _rules_folder(rs: RuleSet, tr: Translator | None = None) -> str:
    files = sorted(set(rs.files))
    if not files:
        return ""
    folder = os.path.dirname(os.path.commonprefix(files)) if len(files) > 1 else files[0]
    if len(files) == 1:
        return folder
    return tr.fmt("{path} ({n} files)", path=folder or ".", n=len(files)) if tr else f"{folder or '.'} ({len(files)} files)"


def _counted(values: list) -> Counter:
    """Counter(values), counting the shared objects of rule rows by identity first when they
    are Durations (whose hash is Python code); a Coded column by its codes (the same counts,
    in the same order: each value where it first appears)."""
    from .columnar import coded, counts_in_order

    c = coded(values)
    if c is not None:
        table, codes = c
        out: Counter = Counter()
        for k, n in counts_in_order(codes):
            out[table[k]] += n
        return out
    if Duration not in set(map(type, values)):
        return Counter(values)
    by_id = Counter(map(id, values))
    objs = dict(zip(map(id, values), values))
    out: Counter = Counter()
    for i, k in by_id.items():
        out[objs[i]] += k
    return out


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


ISSUES_HEAD = ["Sheet", "Row", "Column", "Severity", "Problem", "What to do"]
ISSUES_WIDTHS = {0: 14, 1: 8, 2: 18, 3: 9, 4: 60, 5: 50}  # Problem and What to do wrap: fits a laptop screen


def issues_sheet(report: RecalcReport, rs: RuleSet | None = None) -> NewSheet:
    """Every problem with where it is and what to do, in the workbook's language. Problems
    the writer finds (formulas kept, long texts) join the list just before it is written."""
    tr = translator(rs, report.language, report)
    # every column wraps (and so aligns to the top), so a row's cells line up with its long texts
    ns = NewSheet(tr(ISSUES_SHEET), _issue_rows(report.problems, tr), widths=dict(ISSUES_WIDTHS),
                  row_formats={0: CellFormat(bold=True)}, col_formats={j: CellFormat(wrap=True) for j in ISSUES_WIDTHS},
                  freeze_rows=1, autofilter=True, fit_width=True, also=_other_names(ISSUES_SHEET, report.language))

    def complete(written: list[Problem]) -> None:
        if written:
            ns.rows = _issue_rows(report.problems + written, tr)

    ns.complete = complete
    return ns


def _issue_rows(problems: list[Problem], tr: Translator) -> list[list]:
    rows: list[list] = [[tr(h) for h in ISSUES_HEAD]]
    for p in problems[:MAX_ISSUES_ON_SHEET]:
        todo = p.suggestion or advice(p.message)
        rows.append([p.sheet or p.file, p.row, p.column, tr(p.severity), tr(p.message), tr(todo)])
    if len(problems) > MAX_ISSUES_ON_SHEET:
        n = len(problems) - MAX_ISSUES_ON_SHEET
        rows.append([None, None, None, tr("note"), tr(f"{n} more problems are not listed"), tr("run cxrules recalc with --json to see them all")])
    if len(rows) == 1:
        rows.append([None, None, None, None, tr("No problems found"), tr("nothing to do")])
    return rows


# ------------------------------------------------------------------ proposing a mapping
@dataclass
class Proposal:
    sheet: str
    column: str  # letter
    header: str
    name: str  # the rule name it would read as
    label: str
    confidence: float


def _labels(rs: RuleSet) -> dict[str, str]:
    out = {f.name: (f.columns[0] if f.columns else f.name) for f in rs.fields.values()}
    for t in rs.tables.values():
        for i in t.inputs:
            if i.source == "column":
                out.setdefault(i.name, i.label)
    return out


def _guess_header_row(data, max_scan: int = 30) -> int | None:
    """With no known header: the first row of mostly text cells (two at least)."""
    for i, row in enumerate(data.rows[:max_scan]):
        texts = [v for v in row if isinstance(v, str) and v.strip()]
        if len(texts) >= 2 and len(texts) * 2 >= len([v for v in row if v is not None]):
            return i
    return None


def propose_mapping(sheets, rs: RuleSet, mapping: Mapping | None = None, min_confidence: float = 0.5) -> list[Proposal]:
    """For each sheet, headers that look like columns the rules read but do not match them."""
    from .mapping import propose

    want = wanted_columns(rs)
    outputs = _outputs(rs) | {DAYS_OVERDUE}
    readable = [k for k in want if k not in outputs]
    labels = _labels(rs)
    mapping = mapping or Mapping()
    out: list[Proposal] = []
    for data in sheets:
        if data.name in OWN_SHEETS:
            continue
        w = mapping.wanted(want, data.name)
        regions, _ = find_regions(data, w)
        spots = [(h.index, h.lo, h.hi, set(h.columns.values()), set(h.columns)) for h in regions]
        if not spots:
            i = _guess_header_row(data)
            if i is None:
                continue
            spots = [(i, 0, len(data.rows[i]) - 1, set(), set())]
        for i, lo, hi, used, found in spots:
            row = data.rows[i]
            hi = len(row) - 1 if hi is None else min(hi, len(row) - 1)
            free = {j: str(row[j]).strip() for j in range(lo, hi + 1)
                    if j not in used and isinstance(row[j], str) and row[j].strip()}
            needed = [k for k in readable if k not in found]
            for name, j, text, score in propose(free, w, needed, labels):
                if score >= min_confidence:
                    out.append(Proposal(data.name, col_letter(data.first_col + j), text, name, labels.get(name, name), score))
    return out


def save_mapping(path, entries, limits=None) -> str:
    """Write the settings sheet (Header | Reads as | Sheet | Confidence | Note) into the
    workbook; returns the sheet's name. A settings sheet a person made is never replaced."""
    from .mapping import settings_rows
    from .xlsx_read import open_workbook as _open

    with _open(path, limits) as wb:
        for s in wb.worksheets:
            if s.name in SETTINGS_SHEETS and s.name not in wb.cxrules_sheets:
                from .xlsx_read import WorkbookError

                raise WorkbookError(f"{path}: its '{s.name}' sheet was made by hand, so cxrules does not rewrite it; "
                                    "add the rows printed above to it yourself")
        lang = 1 if any(any("\u4e00" <= ch <= "\u9fff" for ch in str(v)) for s in wb.worksheets[:3]
                        for v in (wb.read_sheet(s.name).rows or [[]])[0]) else 0
    rows = settings_rows(entries, lang)
    ns = NewSheet(SETTINGS_SHEET, rows, row_formats={0: CellFormat(bold=True)}, freeze_rows=1)
    rep = write_workbook(path, path, [], [ns], limits)
    return rep.sheet_names.get(SETTINGS_SHEET, SETTINGS_SHEET)
