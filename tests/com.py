"""What Excel hands Python through COM, as xlwings 0.37.8 delivers it: a harness for tests
without Excel.

Derived from xlwings' own code, not guessed:

* A worksheet function's argument that is a range is read by `xlwings.udfs.call_udf` with
  `conversion.read(Range, None, options)`: the options of its `@xw.arg`, the range's
  `Range.Value` through COM, then `_xlwindows._clean_value_data_element` on each cell.
  An argument that is not a range (a literal, an expression, an array constant) goes
  through `conversion.read(None, value, options)`: the same cleaning, no range.
* COM's `Range.Value` (pywin32): numbers as float, text as str, TRUE/FALSE as bool, a blank
  as None, a date-formatted cell as a pywintypes datetime (a datetime subclass), a
  currency-formatted cell as Decimal, an error as the int 0x800A0000 + its XlCVError code
  (as a signed 32-bit number). A formula's result in the call (DATE(), NOW(), TODAY(),
  another function's result) is a number: Excel has no date type in formulas.
* `_clean_value_data_element`: '' and None -> None; datetimes kept (tz dropped); the seven
  errors in `_xlwindows.cell_errors` -> their text with err_to_str (else None); any other
  int, the newer errors included, stays an int.
* An omitted optional argument is the int -2147352572 (DISP_E_PARAMNOTFOUND); call_udf puts
  the Python default in its place. The reserved argument `caller` gets the calling cell.
* A range of a whole column (B:B) is 1,048,576 rows.

Ranges come from a book built with `xw.Book(json=...)` (xlwings' remote engine, the one
that records the actions a macro would apply), its cells holding COM's raw values and its
cleaning stage swapped for the Windows one above (`com_engine`). Formulas, which that
engine cannot read synchronously, are served as COM's Range.Formula would give them.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

import xlwings as xw
from xlwings import conversion
from xlwings.pro import _xlremote

from cxrules import excel

BASE = -2146828288  # 0x800A0000 as a signed 32-bit int
XL_CV_ERROR = {  # XlCVError: the codes Excel's object model documents
    "#NULL!": 2000, "#DIV/0!": 2007, "#VALUE!": 2015, "#REF!": 2023, "#NAME?": 2029, "#NUM!": 2036, "#N/A": 2042,
    "#GETTING_DATA": 2043, "#SPILL!": 2045, "#CONNECT!": 2046, "#BLOCKED!": 2047, "#UNKNOWN!": 2048,
    "#FIELD!": 2049, "#CALC!": 2050,
}
# xlwings/_xlwindows.py: cell_errors, the only ones err_to_str names
CELL_ERRORS = {BASE + XL_CV_ERROR[t]: t for t in ("#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!")}
MISSING = -2147352572
MAX_ROWS = 1048576
BUSY = BASE + 2051  # #BUSY! has no documented XlCVError value: any code 2000-2100 is an error


_ERROR_TEXT = {BASE + code: text for text, code in XL_CV_ERROR.items()}


def err(text: str) -> int:
    """An Excel error as COM's Range.Value hands it."""
    return BASE + XL_CV_ERROR[text]


def serial(d) -> float:
    """A date as a formula hands it (DATE(), TODAY(), NOW()): days since 1899-12-30."""
    if not isinstance(d, dt.datetime):
        d = dt.datetime(d.year, d.month, d.day)
    return (d - dt.datetime(1899, 12, 30)).total_seconds() / 86400


def _clean(value, datetime_builder, empty_as, number_builder, err_to_str):
    """xlwings/_xlwindows.py: _clean_value_data_element."""
    if value in ("", None):
        return empty_as
    elif isinstance(value, dt.datetime):
        return datetime_builder(month=value.month, day=value.day, year=value.year, hour=value.hour,
                                minute=value.minute, second=value.second, microsecond=value.microsecond, tzinfo=None)
    elif number_builder is not None and isinstance(value, float):
        value = number_builder(value)
    elif isinstance(value, int) and value in CELL_ERRORS:
        return CELL_ERRORS[value] if err_to_str else None
    return value


def com_clean_value_data(data, datetime_builder, empty_as, number_builder, err_to_str):
    return [[_clean(c, datetime_builder, empty_as, number_builder, err_to_str) for c in row] for row in data]


def _formula(self):
    """COM's Range.Formula: '=...' for a formula cell, else the value as text ('' if blank)."""
    formulas = self.sheet.api.get("formulas", {})
    values = self.api
    out = []
    for i, row in enumerate(values):
        out.append(tuple(formulas.get((self.row + i, self.column - 1 + j), "" if v is None else str(v))
                         for j, v in enumerate(row)))
    if len(out) == 1 and len(out[0]) == 1:
        return out[0][0]
    return tuple(out)


def _range_api(self):
    """The remote engine's Range.api without rebuilding (and hashing) the whole sheet's
    values at each call: a range is a cheap handle in COM too, and the book's values do
    not change while a macro runs (writes are only recorded)."""
    values = self.sheet.api.get("_cx_values")
    if values is None:
        values = self.sheet.api["_cx_values"] = tuple(tuple(r) for r in self.sheet.api["values"])
    return _xlremote.get_range_api.__wrapped__(values, self.arg1, self.arg2)


def _conditional_formats(self):
    """COM's Range.FormatConditions: the sheet's rules that apply to a cell of the range."""
    from xlwings.utils import a1_to_tuples

    r1, c1 = self.arg1
    r2, c2 = self.arg2 or self.arg1
    mine = []
    for entry in self.sheet.api.get("cx_rules", []):
        (a1, b1), (a2, b2) = a1_to_tuples(entry["address"])
        if not (a2 < r1 or a1 > r2 or b2 < c1 or b1 > c2):
            mine.append(entry)
    return _xlremote.ConditionalFormats(self, mine)


def com_engine(monkeypatch) -> None:
    """The remote engine reads cells and formulas as COM does."""
    monkeypatch.setenv("XLWINGS_LICENSE_KEY", "noncommercial")
    if "remote" not in [e.name for e in xw.engines]:
        xw.engines.add(xw.Engine(impl=_xlremote.engine))
    monkeypatch.setattr(_xlremote.Engine, "clean_value_data", staticmethod(com_clean_value_data))
    monkeypatch.setattr(_xlremote.Range, "formula", property(_formula, _xlremote.Range.formula.fset))
    monkeypatch.setattr(_xlremote.Range, "api", property(_range_api))
    monkeypatch.setattr(_xlremote.Range, "conditional_formats", property(_conditional_formats))


def sheet(name, rows, *, tables=(), formulas=None, rules=()):
    """A sheet of the book: rows of COM values from A1 (None for blank); formulas by
    (row, 0-based column); conditional formats as (applies-to range, formula)."""
    width = max((len(r) for r in rows), default=0)
    values = [list(r) + [None] * (width - len(r)) for r in rows] or [[]]
    return {"name": name, "values": values, "pictures": [], "tables": list(tables), "formulas": dict(formulas or {}),
            "cx_rules": [{"type": "Custom", "formula": f, "address": ref, "stop_if_true": False} for ref, f in rules]}


def table(name, ref, *, totals=False):
    """An Excel table (ListObject) over `ref` (A1:D4) with a header row."""
    top, bottom = ref.split(":")
    col1, col2 = "".join(c for c in top if c.isalpha()), "".join(c for c in bottom if c.isalpha())
    r1, r2 = int(top[len(col1):]), int(bottom[len(col2):])
    last = r2 - 1 if totals else r2
    return {"name": name, "range_address": ref, "header_row_range_address": f"{col1}{r1}:{col2}{r1}",
            "data_body_range_address": f"{col1}{r1 + 1}:{col2}{last}" if last > r1 else None,
            "total_row_range_address": f"{col1}{r2}:{col2}{r2}" if totals else None,
            "show_headers": True, "show_totals": totals, "show_autofilter": True, "table_style": "TableStyleMedium2"}


def name(text, refers_to, sheet_index=None):
    """A defined name; sheet-level when `sheet_index` is given."""
    local = sheet_index is not None
    return {"name": text, "refers_to": refers_to, "sheet_index": None, "address": None, "book_scope": not local,
            "scope_sheet_index": sheet_index, "scope_sheet_name": None}


def book(*sheets, names=(), active=0, calculation="Automatic", filename="Ops.xlsx") -> xw.Book:
    """A workbook as the add-in's macros see it, set as xw.Book.caller()."""
    payload = {"client": "Microsoft Office Scripts", "version": xw.__version__,
               "book": {"name": filename, "active_sheet_index": active, "selection": "A1", "calculation": calculation},
               "names": [dict(n) for n in names], "sheets": list(sheets)}
    for n in payload["names"]:
        if n["scope_sheet_index"] is not None:
            n["scope_sheet_name"] = payload["sheets"][n["scope_sheet_index"]]["name"]
    payload["_cx_original_sheets"] = [{**s, "values": [list(r) for r in s["values"]], "tables": [dict(t) for t in s["tables"]]}
                                      for s in payload["sheets"]]
    b = xw.Book(json=payload)
    b.set_mock_caller()
    return b


# ------------------------------------------------------------------ worksheet functions as Excel calls them
def addin_build():
    """addin/build.py as a module (it is a script beside the add-in, not part of the package)."""
    folder = Path(__file__).resolve().parents[1] / "addin"
    spec = importlib.util.spec_from_file_location("cx_addin_build_com", folder / "build.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(folder))
    return mod


def _metadata():
    mod = addin_build()
    with mod._udf_machinery() as udfs:
        module = mod.udf_module_with_metadata(udfs)
    return {n: getattr(module, n).__xlfunc__ for n in dir(module) if hasattr(getattr(module, n), "__xlfunc__")}


_XLFUNC: dict | None = None


def xlfunc(name: str) -> dict:
    """The function's metadata as the @xw.func / @xw.arg decorators record it on Windows."""
    global _XLFUNC
    if _XLFUNC is None:
        _XLFUNC = _metadata()
    return _XLFUNC[name]


def read_arg(arg, options):
    """One argument as call_udf converts it: a Range is read through COM, anything else is
    the Variant Excel passed."""
    if isinstance(arg, xw.Range):
        return conversion.read(arg, None, options)
    return conversion.read(None, arg, options, engine_name="remote")


def call(name: str, *args, caller=None):
    """excel.NAME called as xlwings.udfs.call_udf calls it from a cell; omitted trailing
    arguments are MISSING, as Excel passes them."""
    info = xlfunc(name)
    params = info["args"]
    given = list(args) + [MISSING] * (len([p for p in params if p["name"] != "caller"]) - len(args))
    out = []
    k = 0
    for p in params:
        if p["name"] == "caller":
            out.append(caller)
            continue
        a = given[k]
        k += 1
        out.append(p.get("optional") if isinstance(a, int) and a == MISSING else read_arg(a, p["options"]))
    return getattr(excel, name)(*out)


# ------------------------------------------------------------------ what the actions do to the cells
class Replay:
    """The book's cells after applying the recorded actions, as Excel would: values, number
    formats, sheets added, renamed and cleared, names, conditional formats, table sizes."""

    def __init__(self, b: xw.Book):
        self.calls = b.json()["actions"]
        self.names: dict[tuple[str | None, str], str] = {}
        self.sheets = []
        self._start(b)
        for a in self.calls:
            getattr(self, "do_" + a["func"], self.other)(a)

    def _start(self, b):
        payload = b.api
        # the sheets as they were before the macro: the engine changes b.api as it records
        for s in payload["_cx_original_sheets"]:
            cells = {}
            for i, row in enumerate(s["values"]):
                for j, v in enumerate(row):
                    if v not in (None, ""):
                        cells[(i + 1, j)] = _ERROR_TEXT.get(v, v) if v.__class__ is int else v
            cells.update(s.get("formulas", {}))  # a formula cell: Excel keeps the formula
            self.sheets.append({"name": s["name"], "cells": cells, "formats": {}, "cf": [], "tables": {
                t["name"]: t["range_address"] for t in s.get("tables", [])}})

    def sheet(self, name):
        return next(s for s in self.sheets if s["name"] == name)

    def _cells(self, a):
        for i in range(a["row_count"]):
            for j in range(a["column_count"]):
                yield a["start_row"] + 1 + i, a["start_column"] + j, i, j

    def do_setValues(self, a):
        s = self.sheets[a["sheet_position"]]
        vals = a["values"]
        for r, c, i, j in self._cells({**a, "row_count": len(vals), "column_count": len(vals[0])}):
            v = vals[i][j]
            if v in (None, ""):
                s["cells"].pop((r, c), None)
            else:
                s["cells"][(r, c)] = v

    def do_setNumberFormat(self, a):
        s = self.sheets[a["sheet_position"]]
        for r, c, _, _ in self._cells(a):
            s["formats"][(r, c)] = a["args"][0]

    def do_addSheet(self, a):
        self.sheets.insert(a["args"][0], {"name": a["args"][1], "cells": {}, "formats": {}, "cf": [], "tables": {}})

    def do_setSheetName(self, a):
        self.sheets[a["sheet_position"]]["name"] = a["args"][0]

    def do_sheetClear(self, a):
        s = self.sheets[a["sheet_position"]]
        s["cells"], s["formats"], s["cf"] = {}, {}, []

    def do_namesAdd(self, a):
        scope = self.sheets[a["sheet_position"]]["name"] if a["sheet_position"] is not None else None
        self.names[(scope, a["args"][0])] = a["args"][1]

    def do_setNameRefersTo(self, a):
        name, book_scope, scope_index, value = a["args"]
        self.names[(None if book_scope else self.sheets[scope_index]["name"], name)] = value

    def do_addConditionalFormat(self, a):
        self.sheets[a["sheet_position"]]["cf"].append((a["start_row"] + 1, a["start_column"], a["row_count"],
                                                       a["column_count"], a["args"][0]))

    def do_resizeTable(self, a):
        s = self.sheets[a["sheet_position"]]
        t = list(s["tables"])[a["args"][0]]
        s["tables"][t] = a["args"][1].replace("$", "")

    def other(self, a):
        pass

    def values(self, sheet_name) -> dict[tuple[int, int], object]:
        return dict(self.sheet(sheet_name)["cells"])

    def grid(self, sheet_name) -> list[list]:
        cells = self.sheet(sheet_name)["cells"]
        if not cells:
            return []
        rows = max(r for r, _ in cells)
        cols = max(c for _, c in cells) + 1
        return [[cells.get((r, c)) for c in range(cols)] for r in range(1, rows + 1)]


# ------------------------------------------------------------------ a workbook file as Excel would hand it over
def payload_sheets_from_xlsx(path, formula_values=None):
    """(sheets, names) of an .xlsx as book() takes them: each cell as COM's Range.Value
    gives it (numbers as floats, dates as datetimes, errors as their ints); formulas as
    COM's Range.Formula gives them, their value from `formula_values` ((sheet, row, col)
    -> value: what Excel would have calculated); tables; defined names as RefersTo shows
    them (with '=')."""
    import openpyxl

    wb = openpyxl.load_workbook(path)
    sheets, names = [], []
    for k, ws in enumerate(wb.worksheets):
        rows, formulas = [], {}
        for r in ws.iter_rows():
            row = []
            for c in r:
                v = c.value
                if c.data_type == "f":
                    formulas[(c.row, c.column - 1)] = v
                    v = (formula_values or {}).get((ws.title, c.row, c.column - 1))
                elif c.data_type == "e":
                    v = err(v)
                elif isinstance(v, bool) or v is None or isinstance(v, str):
                    pass
                elif isinstance(v, (int, float)):
                    v = float(v)
                elif isinstance(v, dt.date) and not isinstance(v, dt.datetime):
                    v = dt.datetime(v.year, v.month, v.day)
                row.append(v)
            rows.append(row)
        tables = [table(t.displayName, t.ref, totals=bool(t.totalsRowCount)) for t in ws.tables.values()]
        sheets.append(sheet(ws.title, rows, tables=tables, formulas=formulas))
        for n, d in ws.defined_names.items():
            names.append(name(n, "=" + d.attr_text, k))
    for n, d in wb.defined_names.items():
        names.append(name(n, "=" + d.attr_text))
    return sheets, names


def _norm(v):
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return round(float(v), 9)
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time(0) else v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def xlsx_cells(path) -> dict[str, dict[tuple[int, int], object]]:
    """Sheet -> (row, col) -> value of a workbook file, formulas as their text."""
    import openpyxl

    wb = openpyxl.load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        cells = {}
        for r in ws.iter_rows():
            for c in r:
                v = _norm(c.value)
                if v is not None:
                    cells[(c.row, c.column - 1)] = v
        out[ws.title] = cells
    return out


def xlsx_formats(path) -> dict[str, dict[tuple[int, int], str]]:
    import openpyxl

    wb = openpyxl.load_workbook(path)
    return {ws.title: {(c.row, c.column - 1): c.number_format for r in ws.iter_rows() for c in r} for ws in wb.worksheets}


def replay_cells(r: Replay) -> dict[str, dict[tuple[int, int], object]]:
    """Sheet -> (row, col) -> value after the actions, formulas as their text (Excel keeps them)."""
    out = {}
    for s in r.sheets:
        cells = {k: _norm(v) for k, v in s["cells"].items()}
        out[s["name"]] = {k: v for k, v in cells.items() if v is not None}
    return out
