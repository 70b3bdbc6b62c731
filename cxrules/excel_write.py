"""Sheets in and edits out through xlwings: SheetData from an open workbook, and the
SheetEdit / NewSheet plans of recalc.plan applied to it (values, number formats,
fills, conditional colours). Used by cxrules.excel only; the xlsx twin is xlsx_write.

Coordinates as in cxrules.workbook: rows are Excel row numbers, columns 0-based.
"""
from __future__ import annotations

import datetime as dt
import re

from .values import Duration, display
from .workbook import CellError, NewSheet, SheetData, SheetEdit, Table, col_letter

DATE_FMT, DATETIME_FMT, DURATION_FMT = "yyyy-mm-dd", "yyyy-mm-dd hh:mm", "[h]:mm:ss"
_FORMATS = {"date": DATE_FMT, "datetime": DATETIME_FMT, "duration": DURATION_FMT}
_COMPARISON = re.compile(r"^(>=|<=|<>|>|<|=)\s*(-?\d+(?:\.\d+)?)$")


# ------------------------------------------------------------------ reading
def read_sheet(sheet) -> SheetData:
    """A worksheet's used range as SheetData (Excel errors as CellError)."""
    rng = sheet.used_range
    values = rng.options(ndim=2, err_to_str=True).value or [[]]
    rows = [[CellError(v) if isinstance(v, str) and v.startswith("#") and _is_error(v) else v for v in r] for r in values]
    return SheetData(sheet.name, rows, rng.row, rng.column - 1, _tables(sheet))


def _is_error(v: str) -> bool:
    from .values import EXCEL_ERRORS

    return v in EXCEL_ERRORS


def _tables(sheet) -> list[Table]:
    out = []
    try:
        tables = list(sheet.tables)
    except Exception:  # noqa: BLE001 - engines without table support: header search still works
        return out
    for t in tables:
        try:
            r = t.range
            out.append(Table(t.name, (r.row, r.column - 1, r.last_cell.row, r.last_cell.column - 1),
                             1 if t.show_headers else 0, 1 if t.show_totals else 0))
        except Exception:  # noqa: BLE001
            continue
    return out


# ------------------------------------------------------------------ writing
def cell_value(v, kind: str = "general"):
    """A value as xlwings writes it: durations and lists as text, errors as their code."""
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
    return v


def _width(header: str | None, kind: str) -> float:
    text = len(header or "") + sum(1 for ch in header or "" if ord(ch) > 0x2E7F)
    return max(10.0, text + 2, {"date": 11, "datetime": 17, "duration": 10}.get(kind, 0))


def apply(book, edits: list[SheetEdit], new_sheets: list[NewSheet]) -> None:
    for e in edits:
        apply_edit(book.sheets[e.sheet], e)
    for ns in new_sheets:
        write_new_sheet(book, ns)


def apply_edit(sheet, edit: SheetEdit) -> None:
    for c in edit.columns:
        x = c.col + 1
        if c.header is not None:
            sheet.range((c.header_row, x)).value = c.header
            sheet.range((c.header_row, x)).column_width = c.width or _width(c.header, c.kind)
        if not len(c.values):
            continue
        last = c.first_row + len(c.values) - 1
        rng = sheet.range((c.first_row, x), (last, x))
        rng.value = [[cell_value(v, c.kind)] for v in c.values]
        fmt = _FORMATS.get(c.kind)
        if fmt:
            rng.number_format = fmt
        if c.wrap:
            rng.wrap_text = True
    for h in edit.highlights:
        add_highlight(sheet, h)


def highlight_formula(h) -> str:
    """The conditional-format formula: no relative reference, so it does not depend on
    the active cell (COM reads relative references from it; Office.js from the range)."""
    col = col_letter(h.test_col)
    test = f"INDEX(${col}:${col},ROW())"
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


def add_highlight(sheet, h) -> None:
    c1 = h.test_col if h.first_col is None else h.first_col
    c2 = h.test_col if h.last_col is None else h.last_col
    rng = sheet.range((h.first_row, c1 + 1), (h.last_row, c2 + 1))
    formula = highlight_formula(h)
    _drop_earlier(rng, formula)
    rng.conditional_formats.add_custom(formula, fill_color="#" + h.fill, font_color="#" + h.font_color if h.font_color else None)


def _drop_earlier(rng, formula: str) -> None:
    """Delete the same rule written by an earlier run, where the engine can list rules."""
    try:
        rules = list(rng.conditional_formats)
    except Exception:  # noqa: BLE001 - e.g. xlwings Server books cannot read rules synchronously
        return
    for r in rules:
        try:
            if getattr(r, "formula", None) == formula:
                r.delete()
        except Exception:  # noqa: BLE001
            continue


def write_new_sheet(book, ns: NewSheet) -> None:
    """(Re)write one of cxrules' own sheets: cleared if it exists, else added at the end."""
    names = [s.name for s in book.sheets]
    other = next((n for n in ns.also if n in names and ns.name not in names), None)
    if other is not None:  # made by an earlier run in the workbook's other language
        book.sheets[other].name = ns.name
        names = [s.name for s in book.sheets]
    if ns.name in names:
        sheet = book.sheets[ns.name]
        sheet.clear()
    else:
        sheet = book.sheets.add(ns.name, after=book.sheets[len(names) - 1])
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
    for j, f in ns.col_formats.items():
        _format(sheet.range((1, j + 1), (len(ns.rows), j + 1)), f)
    widths = ns.widths or _auto_widths(ns.rows)
    for j, w in widths.items():
        sheet.range((1, j + 1)).column_width = w
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
        s = ch.series[0]
        top = sheet.range((ch.anchor[0] + 1, ch.anchor[1] + 1))
        chart = sheet.charts.add(top.left, top.top, width=ch.size[0] * 48, height=ch.size[1] * 15)
        chart.set_source_data(sheet.range((first + 1, col + 1), (last + 1, s.col + 1)))
        chart.chart_type = "bar_clustered" if ch.horizontal else "column_clustered"
        chart.name = ch.title[:31]
    except Exception:  # noqa: BLE001 - a chart is a nicety; values are what matter
        pass
