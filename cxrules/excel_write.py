"""Sheets in and edits out through xlwings, for the ribbon's buttons; the xlsx twin is xlsx_write.

Reading: SheetData from an open workbook (Excel errors of every kind as CellError, tables
with their column names, the columns cxrules owns as the workbook records them).

Writing follows `cxrules recalc`'s rules (xlsx_write): a formula in a target cell is kept,
tables take the new columns beside them, the columns written are recorded in the sheet's
`_cxrules_columns` name, cxrules' own sheets carry `_cxrules_made` and a person's sheet of
the same name is never replaced. `apply` first works out every write, reading only, and
then makes them: few COM calls (adjacent columns in one block), with screen updating and
automatic calculation paused and restored, also after an error.

Conditional formats: FormatConditions.Add reads its formula in the user's language and
list separator (a German Excel wants UND(...;...)), so the rule's formula is instead the
name of a sheet-level defined name: Names.Add reads RefersTo in English A1 notation in
every language (xlwings' Names.add docs say so), and a bare name reads the same everywhere.

Coordinates as in cxrules.workbook: rows are Excel row numbers, columns 0-based.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Callable

from .excel import com_error_text, is_com_error
from .problems import WARNING, CxError, Problem
from .values import EXCEL_ERRORS, Duration, display
from .workbook import CellError, NewSheet, SheetData, SheetEdit, Table, col_letter
from .xlsx_read import OWNED_NAME, parse_owned
from .xlsx_write import (
    MARKER,
    MAX_TEXT,
    WriteReport,
    _clean_sheet_name,
    _free_name,
    _named_as,
    _quote_sheet,
    _report_kept_formulas,
    table_extensions,
)

DATE_FMT, DATETIME_FMT, DURATION_FMT = "yyyy-mm-dd", "yyyy-mm-dd hh:mm", "[h]:mm:ss"
_FORMATS = {"date": DATE_FMT, "datetime": DATETIME_FMT, "duration": DURATION_FMT}
_COMPARISON = re.compile(r"^(>=|<=|<>|>|<|=)\s*(-?\d+(?:\.\d+)?)$")
CF_NAME = "_cxrules_if_"  # + a hash of the rule's formula: one defined name per rule

Op = Callable[[], None]


# ------------------------------------------------------------------ reading
@dataclass
class BookState:
    """What the workbook's defined names say about cxrules' earlier runs, and what reading
    the sheets found (tables), for the writes."""

    owned: dict[str, set[tuple[int, int]]] = field(default_factory=dict)  # sheet -> header cells
    any_owned: bool = False
    made: dict[str, str] = field(default_factory=dict)  # sheet -> the name cxrules asked for
    names: dict[tuple[str | None, str], object] = field(default_factory=dict)  # (sheet, name) -> xlwings Name
    tables: dict[str, list[Table]] = field(default_factory=dict)
    sheet_names: list[str] = field(default_factory=list)

    @property
    def own_sheets(self) -> set[str]:
        """Sheets an earlier run made, under whatever name: never data."""
        from .recalc import OWN_SHEETS

        return {s for s, asked in self.made.items() if asked in OWN_SHEETS}

    def owned_cells(self, sheet: str) -> set[tuple[int, int]] | None:
        """As Workbook.owned_cells: None (all output columns are ours) only for a workbook
        cxrules wrote before it recorded ownership."""
        if not self.any_owned and self.made:
            return None
        return set(self.owned.get(sheet, set()))


def _unquote(scope: str) -> str:
    if scope.startswith("'") and scope.endswith("'"):
        return scope[1:-1].replace("''", "'")
    return scope


def read_book(book) -> BookState:
    state = BookState(sheet_names=[s.name for s in book.sheets])
    try:
        names = list(book.names)
    except Exception:  # noqa: BLE001 - an engine that lists no names: nothing recorded
        names = []
    for n in names:
        try:
            full, value = n.name, n.refers_to or ""
        except Exception:  # noqa: BLE001 - a name Excel cannot show (e.g. of a closed link)
            continue
        scope, sep, local = full.rpartition("!")
        sheet = _unquote(scope) if sep else None
        state.names[(sheet, local)] = n
        if local == OWNED_NAME and sheet is not None:
            state.any_owned = True
            state.owned.setdefault(sheet, set()).update(parse_owned(value))
        elif local == MARKER and sheet is not None:
            v = value.strip().lstrip("=").strip()
            if v[:1] == v[-1:] == '"' and len(v) >= 2:
                state.made[sheet] = v[1:-1].replace('""', '"')
    return state


def _cell_in(v):
    if v.__class__ is str and v[:1] == "#" and v in EXCEL_ERRORS:
        return CellError(v)
    if is_com_error(v):
        return CellError(com_error_text(v))
    return v


def read_sheet(sheet, state: BookState | None = None) -> SheetData:
    """A worksheet's used range as SheetData: every kind of Excel error as CellError (COM
    hands the newer ones as ints), its tables, and the columns cxrules owns."""
    rng = sheet.used_range
    values = rng.options(ndim=2, err_to_str=True).value or [[]]
    rows = []
    for r in values:
        if any((v.__class__ is str and v[:1] == "#") or v.__class__ is int for v in r):
            r = [_cell_in(v) for v in r]
        rows.append(list(r))
    data = SheetData(sheet.name, rows, rng.row, rng.column - 1)
    data.tables = _tables(sheet, data)
    if state is not None:
        state.tables[sheet.name] = data.tables
        data.owned = state.owned_cells(sheet.name)
    return data


def _tables(sheet, data: SheetData) -> list[Table]:
    out = []
    try:
        tables = list(sheet.tables)
    except Exception:  # noqa: BLE001 - engines without table support: header search still works
        return out
    for t in tables:
        try:
            r = t.range
            ref = (r.row, r.column - 1, r.last_cell.row, r.last_cell.column - 1)
            headers = 1 if t.show_headers else 0
            columns = tuple("" if data.value(ref[0], c) is None else str(data.value(ref[0], c)) for c in range(ref[1], ref[3] + 1)) if headers else ()
            out.append(Table(t.name, ref, headers, 1 if t.show_totals else 0, columns))
        except Exception:  # noqa: BLE001
            continue
    return out


# ------------------------------------------------------------------ values out
def cell_value(v, kind: str = "general"):
    """A value as xlwings writes it: durations and lists as text, errors as their code,
    a date-time in a date column as its day (as the file writer does)."""
    if v is None:
        return None
    if isinstance(v, CellError):
        return v.code
    if isinstance(v, Duration):
        return display(v) if kind != "duration" else v.total_seconds() / 86400
    if isinstance(v, dt.timedelta):
        return v.total_seconds() / 86400
    if isinstance(v, list):
        return ", ".join(display(x) for x in v) or None
    if kind == "text" and not isinstance(v, str):
        return display(v)
    if kind == "date" and isinstance(v, dt.datetime):
        return v.date()
    return v


def _width(header: str | None, kind: str) -> float:
    text = len(header or "") + sum(1 for ch in header or "" if ord(ch) > 0x2E7F)
    return max(10.0, text + 2, {"date": 11, "datetime": 17, "duration": 10}.get(kind, 0))


def highlight_formula(h, sheet: str | None) -> str:
    """The rule as an English formula for a defined name: the tested cell is the one in the
    formatted cell's row (ROW()), so it does not depend on the active cell. A name's
    references name their sheet; sheet None gives the formula as rules were written
    before they went through names."""
    col = col_letter(h.test_col)
    where = f"{_quote_sheet(sheet)}!" if sheet is not None else ""
    test = f"INDEX({where}${col}:${col},ROW())"
    v = h.equals
    if isinstance(v, bool):
        return f"={test}={'TRUE' if v else 'FALSE'}"
    if isinstance(v, (int, float)):
        return f"={test}={int(v) if float(v).is_integer() else v}"
    m = _COMPARISON.match(str(v))
    if m:  # recalc writes the days-overdue test as '>0'
        return f"=AND(ISNUMBER({test}),{test}{m.group(1)}{m.group(2)})"
    text = str(v).replace('"', '""')
    return f'={test}="{text}"'


def cf_name(h, sheet: str) -> str:
    """The defined name that holds a rule's formula: the same for the same rule, so a rerun
    replaces it."""
    return CF_NAME + hashlib.sha1(highlight_formula(h, sheet).encode("utf-8")).hexdigest()[:10]


# ------------------------------------------------------------------ planning the writes
def _formula_rows(sheet, col: int, top: int, bottom: int) -> set[int]:
    """Rows of column `col` (rows top..bottom) whose cell holds a formula: COM's
    Range.Formula gives '=...' for those. Empty where the engine cannot tell."""
    try:
        f = sheet.range((top, col + 1), (bottom, col + 1)).formula
    except NotImplementedError:  # xlwings Server and Lite read formulas asynchronously only
        return set()
    if not isinstance(f, (list, tuple)):
        f = ((f,),)
    out = set()
    for i, r in enumerate(f):
        v = r[0] if isinstance(r, (list, tuple)) else r
        if isinstance(v, str) and v.startswith("="):
            out.add(top + i)
    return out


@dataclass
class _Run:
    """Cells of one column, rows top..top+len(values)-1."""

    col: int
    top: int
    values: list

    @property
    def bottom(self) -> int:
        return self.top + len(self.values) - 1


def _runs(col: int, top: int, values: list, keep: set[int]) -> list[_Run]:
    """The cells to write around the formula cells in `keep`, one run of rows each."""
    out, start = [], None
    for i in range(len(values) + 1):
        ok = i < len(values) and top + i not in keep
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            out.append(_Run(col, top + start, values[start:i]))
            start = None
    return out


def _blocks(runs: list[_Run]) -> list[list[_Run]]:
    """Adjacent columns over the same rows: one 2-D write each."""
    out: list[list[_Run]] = []
    for r in sorted(runs, key=lambda r: (r.top, r.bottom, r.col)):
        last = out[-1][-1] if out else None
        if last is not None and (last.top, last.bottom, last.col + 1) == (r.top, r.bottom, r.col):
            out[-1].append(r)
        else:
            out.append([r])
    return out


def _spans(items) -> list[tuple]:
    """(key, top, bottom, first col, last col) from (key, top, bottom, col) items: adjacent
    columns with the same key over the same rows are one range, so one COM call."""
    out: list[tuple] = []
    for k, top, bottom, col in sorted(items, key=lambda x: (x[1], x[2], x[3])):
        if out and out[-1][:3] == (k, top, bottom) and out[-1][4] + 1 == col:
            out[-1] = (k, top, bottom, out[-1][3], col)
        else:
            out.append((k, top, bottom, col, col))
    return out


def _merge(edits: list[SheetEdit]) -> list[SheetEdit]:
    merged: dict[str, SheetEdit] = {}
    for e in edits:
        m = merged.setdefault(e.sheet, SheetEdit(e.sheet))
        m.columns.extend(e.columns)
        m.highlights.extend(e.highlights)
        if e.owned is not None:
            m.owned = (m.owned or set()) | set(e.owned)
    return list(merged.values())


def _rng(sheet, top: int, bottom: int, c1: int, c2: int):
    return sheet.range((top, c1 + 1), (bottom, c2 + 1))


def _set_name(sheet, state: BookState, name: str, refers_to: str) -> Op:
    """A sheet-level defined name, made or changed; hidden where the engine can (COM)."""
    existing = state.names.get((sheet.name, name))

    def op():
        if existing is not None:
            existing.refers_to = refers_to
            return
        n = sheet.names.add(name, refers_to)
        with contextlib.suppress(Exception):  # only COM has Visible; a visible name still works
            n.api.Visible = False

    return op


def _earlier_rules(rng, formulas: set[str]) -> list:
    """Conditional formats an earlier run made with one of these formulas, where the engine lists them."""
    try:
        return [r for r in rng.conditional_formats if getattr(r, "formula", None) in formulas]
    except Exception:  # noqa: BLE001 - e.g. xlwings Server books cannot read rules synchronously
        return []


def _edit_ops(book, e: SheetEdit, state: BookState, wr: WriteReport) -> list[Op]:
    """The writes of one sheet's edit, in order; reads (formulas, earlier rules) happen here."""
    sheet = book.sheets[e.sheet]
    resizes = table_extensions(state.tables.get(e.sheet, []), e, e.sheet, wr)  # may keep a table's header
    runs: list[_Run] = []
    formats, wraps, widths = [], [], []
    kept: list[tuple[int, int]] = []
    long_cols: set[int] = set()
    for c in sorted(e.columns, key=lambda c: (c.col, c.first_row)):
        values = []
        for k, v in enumerate(c.values):
            v = cell_value(v, c.kind)
            if v.__class__ is str and len(v) > MAX_TEXT:
                if c.col not in long_cols:
                    long_cols.add(c.col)
                    wr.problems.append(Problem(
                        f"a text in column {col_letter(c.col)} (row {c.first_row + k}) is longer than Excel's {MAX_TEXT} characters; it was cut",
                        WARNING, "text-too-long", sheet=e.sheet, row=c.first_row + k, column=col_letter(c.col),
                        suggestion="shorten that result in the rule file; Excel cannot hold a longer text in one cell"))
                v = v[:MAX_TEXT]
            values.append(v)
        head = c.header is not None
        top = min(c.header_row, c.first_row) if head else c.first_row
        bottom = max(c.header_row, c.first_row + len(values) - 1)
        keep = _formula_rows(sheet, c.col, top, bottom) if values or head else set()
        kept.extend((r, c.col) for r in sorted(keep))
        if head and c.header_row == c.first_row - 1:  # header and values: one run of rows
            runs.extend(_runs(c.col, c.header_row, [c.header] + values, keep))
        else:
            if head:
                runs.extend(_runs(c.col, c.header_row, [c.header], keep))
            runs.extend(_runs(c.col, c.first_row, values, keep))
        body = _runs(c.col, c.first_row, values, keep)
        fmt = c.num_fmt or _FORMATS.get(c.kind)
        formats.extend((fmt, r.top, r.bottom, r.col) for r in body if fmt)
        wraps.extend((True, r.top, r.bottom, r.col) for r in body if c.wrap)
        if head and c.header_row not in keep:
            widths.append((c.width or _width(c.header, c.kind), 1, 1, c.col))
    _report_kept_formulas(kept, e.sheet, wr)

    ops: list[Op] = []
    for block in _blocks(runs):
        rng = _rng(sheet, block[0].top, block[0].bottom, block[0].col, block[-1].col)
        grid = [list(row) for row in zip(*(r.values for r in block))]
        ops.append(lambda rng=rng, grid=grid: setattr(rng, "value", grid))
    for fmt, top, bottom, c1, c2 in _spans(formats):
        ops.append(lambda rng=_rng(sheet, top, bottom, c1, c2), fmt=fmt: setattr(rng, "number_format", fmt))
    for _, top, bottom, c1, c2 in _spans(wraps):
        ops.append(lambda rng=_rng(sheet, top, bottom, c1, c2): setattr(rng, "wrap_text", True))
    for w, _, _, c1, c2 in _spans(widths):
        ops.append(lambda rng=_rng(sheet, 1, 1, c1, c2), w=w: setattr(rng, "column_width", w))
    for h in e.highlights:
        ops.extend(_highlight_ops(sheet, h, state))
    for t, c2, _ in resizes:
        r1, c1, r2, _ = t.ref

        def resize(t=t, r1=r1, c1=c1, r2=r2, c2=c2):
            sheet.tables[t.name].resize(_rng(sheet, r1, r2, c1, c2))

        ops.append(resize)
    if e.owned is not None:
        ops.append(_owned_op(sheet, e.owned, state))
    return ops


def _highlight_ops(sheet, h, state: BookState) -> list[Op]:
    c1 = h.test_col if h.first_col is None else h.first_col
    c2 = h.test_col if h.last_col is None else h.last_col
    rng = _rng(sheet, h.first_row, h.last_row, c1, c2)
    name = cf_name(h, sheet.name)
    formula = "=" + name  # a bare name: the same text in every Excel language
    ops = [_set_name(sheet, state, name, highlight_formula(h, sheet.name))]
    legacy = highlight_formula(h, None)  # the rule as earlier versions wrote it
    ops.extend(r.delete for r in _earlier_rules(rng, {formula, legacy}))
    ops.append(lambda: rng.conditional_formats.add_custom(formula, fill_color="#" + h.fill,
                                                          font_color="#" + h.font_color if h.font_color else None))
    return ops


def _owned_op(sheet, owned: set[tuple[int, int]], state: BookState) -> Op:
    """Record the columns cxrules owns on the sheet, as the file writer does."""
    q = _quote_sheet(sheet.name)
    value = ",".join(f"{q}!${col_letter(c)}${r}" for r, c in sorted(owned, key=lambda rc: (rc[1], rc[0])))
    existing = state.names.get((sheet.name, OWNED_NAME))
    if not value:
        return existing.delete if existing is not None else (lambda: None)
    return _set_name(sheet, state, OWNED_NAME, "=" + value)


# ------------------------------------------------------------------ sheets cxrules makes
def _new_sheet_ops(book, ns: NewSheet, state: BookState, names_used: set[str], wr: WriteReport) -> tuple[str, list[Op]]:
    """(the sheet's name, its writes): cxrules' sheet from an earlier run (by its mark) is
    cleared and rewritten, renamed if it was made in another language; a person's sheet of
    that name is left alone and this one gets 'Name (2)'."""
    asked = _clean_sheet_name(ns.name)
    marked = {a.casefold(): s for s, a in state.made.items() if s in state.sheet_names}
    target = marked.get(asked.casefold())
    for other in ns.also:
        target = target or marked.get(_clean_sheet_name(other).casefold())
    ops: list[Op] = []
    if target is not None:
        name = target
        if not _named_as(target, asked):
            names_used.discard(target.casefold())
            name = _free_name(asked, names_used, wr)
            names_used.add(name.casefold())

            def rename(old=target, new=name):
                book.sheets[old].name = new

            ops.append(rename)
        old_charts = []
        with contextlib.suppress(Exception):  # engines that list no charts
            old_charts = list(book.sheets[target].charts)
        ops.append(lambda: book.sheets[name].clear())
        ops.extend(ch.delete for ch in old_charts)
    else:
        name = _free_name(asked, names_used, wr)
        names_used.add(name.casefold())
        ops.append(lambda: book.sheets.add(name, after=book.sheets[len(book.sheets) - 1]))
    if target is None or state.made.get(target) != asked:  # mark it as cxrules' sheet
        existing = state.names.get((target, MARKER)) if target is not None else None
        value = '="' + asked.replace('"', '""') + '"'

        def mark():
            if existing is not None:
                existing.refers_to = value
                return
            n = book.sheets[name].names.add(MARKER, value)
            with contextlib.suppress(Exception):  # only COM has Visible
                n.api.Visible = False

        ops.append(mark)
    ops.append(lambda: _write_new_sheet(book.sheets[name], ns))
    return name, ops


def _write_new_sheet(sheet, ns: NewSheet) -> None:
    width = max((len(r) for r in ns.rows), default=0)
    if not width:
        return
    grid = [[cell_value(v) for v in r] + [None] * (width - len(r)) for r in ns.rows]
    sheet.range((1, 1)).value = grid
    for i, f in ns.row_formats.items():
        n = len(ns.rows[i]) if i < len(ns.rows) else 0
        if n:
            _format(sheet.range((i + 1, 1), (i + 1, n)), f)
    for (i, j), f in ns.formats.items():
        _format(sheet.range((i + 1, j + 1)), f)
    for f, _, _, c1, c2 in _spans((f, 1, 1, j) for j, f in ns.col_formats.items()):
        _format(sheet.range((1, c1 + 1), (len(ns.rows), c2 + 1)), f)
    widths = ns.widths or _auto_widths(ns.rows)
    for w, _, _, c1, c2 in _spans((w, 1, 1, j) for j, w in widths.items()):
        sheet.range((1, c1 + 1), (1, c2 + 1)).column_width = w
    if ns.freeze_rows:
        try:
            sheet.freeze_panes.freeze_at(sheet.range((ns.freeze_rows + 1, 1)))
        except Exception:  # noqa: BLE001 - not every engine freezes panes
            pass
    for ch in ns.charts:
        _chart(sheet, ns, ch)


def _format(rng, f) -> None:
    if f.num_fmt:
        rng.number_format = f.num_fmt
    if f.fill:
        rng.color = "#" + f.fill
    if f.bold:
        rng.font.bold = True
    if f.font_color:
        rng.font.color = "#" + f.font_color
    if f.wrap:
        rng.wrap_text = True


def _auto_widths(rows: list[list], sample: int = 2000) -> dict[int, float]:
    widths: dict[int, float] = {}
    for r in rows[:sample]:
        for j, v in enumerate(r):
            if v is None:
                continue
            text = display(v) if not isinstance(v, str) else v
            widths[j] = max(widths.get(j, 8.0), min(60.0, len(text) + 2.0))
    return widths


def _chart(sheet, ns: NewSheet, ch) -> None:
    try:
        first, last, col = ch.categories
        stacked = getattr(ch, "stacked", False)
        s = ch.series[-1] if stacked else ch.series[0]  # stacked: every channel, side by side in the table
        top = sheet.range((ch.anchor[0] + 1, ch.anchor[1] + 1))
        chart = sheet.charts.add(top.left, top.top, width=ch.size[0] * 48, height=ch.size[1] * 15)
        chart.set_source_data(sheet.range((first + 1, col + 1), (last + 1, s.col + 1)))
        chart.chart_type = ("bar_" if ch.horizontal else "column_") + ("stacked" if stacked else "clustered")
        chart.name = ch.title[:31]
    except Exception:  # noqa: BLE001 - a chart is a nicety; values are what matter
        pass


# ------------------------------------------------------------------ applying
def prepare(book, edits: list[SheetEdit], new_sheets: list[NewSheet], report, state: BookState) -> list[Op]:
    """Every write, in order, worked out before any is made (this only reads). The writer's
    problems (formulas kept, tables, long texts) join report.problems and the Issues
    sheet, as they do in `cxrules recalc`."""
    wr = WriteReport()
    ops: list[Op] = []
    for e in _merge(edits):
        ops.extend(_edit_ops(book, e, state, wr))
    for ns in new_sheets:
        if ns.complete is not None:
            ns.complete(list(wr.problems))
    names_used = {n.casefold() for n in state.sheet_names}
    for ns in new_sheets:
        name, sheet_ops = _new_sheet_ops(book, ns, state, names_used, wr)
        ops.extend(sheet_ops)
        if report is not None and ns.name == getattr(report, "issues_sheet", None):
            report.issues_sheet = name
    if report is not None:
        report.problems.extend(wr.problems)
        stamp = getattr(report, "stamp", None)
        if new_sheets and stamp is not None:  # a whole-book recalc: stamp it as `cxrules recalc` does
            ops.append(_properties_op(book, stamp.properties()))
    return ops


MSO_PROPERTY_TYPE_STRING = 4  # Office's msoPropertyTypeString


def _properties_op(book, props: dict[str, str | None]) -> Op:
    """The stamp as custom document properties (File > Info > Properties > Advanced), through
    COM's DocumentProperties. An engine without it (xlwings' remote engines) leaves the stamp
    in the summary sheet alone."""
    def op():
        found = getattr(book.api, "CustomDocumentProperties", None)
        if found is None:
            return
        have = {}
        for i in range(1, found.Count + 1):
            p = found.Item(i)
            have[p.Name.casefold()] = p
        for name, value in props.items():
            old = have.get(name.casefold())
            if old is not None:
                old.Delete()  # a property's type cannot change: replaced, not edited
            if value is not None:
                found.Add(Name=name, LinkToContent=False, Type=MSO_PROPERTY_TYPE_STRING, Value=value)
    return op


@contextlib.contextmanager
def paused(app):
    """Screen updating off and calculation manual while writing; both as they were after,
    also when a write fails. An engine that cannot read a setting leaves it alone."""
    try:
        screen = app.screen_updating
    except Exception:  # noqa: BLE001 - xlwings Server cannot read it back (it is on then)
        screen = True
    try:
        calc = app.calculation
    except Exception:  # noqa: BLE001 - a client that does not send it
        calc = None
    app.screen_updating = False
    if calc not in (None, "manual"):
        app.calculation = "manual"
    failed = None
    try:
        yield
    finally:
        if calc not in (None, "manual"):
            try:
                app.calculation = calc
            except Exception as e:  # noqa: BLE001 - said below; screen updating still comes back
                failed = f"Excel did not switch calculation back to {calc} ({e}); set it under Formulas > Calculation Options"
        try:
            app.screen_updating = screen
        except Exception as e:  # noqa: BLE001
            failed = failed or f"Excel did not switch screen updating back on ({e}); restart Excel if the window does not redraw"
    if failed:
        raise CxError(failed)


def apply(book, edits: list[SheetEdit], new_sheets: list[NewSheet], report=None, state: BookState | None = None,
          activate: str | None = None) -> None:
    """Work out every write, then make them with the screen and calculation paused."""
    state = state or read_book(book)
    ops = prepare(book, edits, new_sheets, report, state)
    with paused(book.app):
        for op in ops:
            op()
        if activate is not None:
            book.sheets[activate].activate()
