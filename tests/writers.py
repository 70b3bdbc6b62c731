"""Customer and case workbooks written by the tools people export with: one function per writer.

Each function takes a folder and returns the path of the workbook it wrote there. Every
workbook holds the same data (CUSTOMERS, CASES), in sheets named after what they hold
where the writer lets us name them, plus a NOTES sheet cxrules has no reason to touch.
Nothing binary is committed: the corpus is made when the tests run.

A writer whose package is missing raises (ImportError, or RuntimeError for soffice):
a missing writer is a failing setup, not a skip.
"""
from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

D, T = dt.date, dt.datetime

AS_OF = T(2026, 11, 23, 10, 0)  # a Monday
CUSTOMER_HEADERS = ["Customer ID", "Name", "First purchase", "Last purchase", "Orders 12m", "Spend 12m",
                    "Previous tier", "Months of rising spend", "Last contact", "Region"]
CUSTOMER_TYPES = ["text", "text", "date", "date", "int", "number", "text", "int", "date", "text"]
CUSTOMERS = [
    ["C001", "Wang Fang", D(2021, 3, 15), D(2026, 11, 10), 20, 600000.0, "VIP", 0, D(2026, 11, 12), "Shanghai"],
    ["C002", "李娜", D(2024, 6, 1), D(2026, 11, 1), 6, 8000.5, "Regular", 1, D(2026, 11, 1), "北京"],
    ["C003", "O'Brien & Sons <Ltd>", D(2019, 1, 20), D(2026, 7, 1), 9, 60000.0, "High value", None, D(2026, 10, 20), "Hong Kong"],
    ["C004", "Chen Jie", D(2025, 12, 1), D(2026, 11, 5), 3, 3000.0, "Regular", 1, D(2026, 11, 6), "Chengdu"],
    ["C005", "Zhao Lei", D(2022, 2, 2), D(2026, 9, 15), 3, 2500.25, "Potential", 2, D(2026, 9, 30), "Wuhan"],
    ["C006", "Liu Yang", D(2026, 11, 19), D(2026, 11, 20), 1, 120.0, None, None, None, "Shenzhen"],
    ["C007", "Sun Mei", D(2020, 5, 5), D(2025, 10, 1), 1, 80.0, None, 0, D(2025, 12, 1), "Xi'an"],
    ["C008", "Zhou Tao", D(2023, 8, 8), D(2026, 8, 1), 3, 1500.0, "Regular", 0, D(2026, 8, 2), "Nanjing"],
    ["C009", "Wu Xin", D(2018, 4, 1), D(2026, 10, 15), 4, 45000.0, "Regular", 1, D(2026, 10, 16), "Suzhou"],
    ["C010", "Xu Jing", None, D(2026, 11, 21), 2, 2000.0, None, None, None, None],
    ["C011", "Ma Chao", D(2024, 1, 1), D(2026, 11, 22), 7, 9999.99, "High value", 3, D(2026, 11, 16), "Tianjin"],
]
CASE_HEADERS = ["Case ID", "Customer ID", "Opened at", "Severity", "Tier", "Case type", "Status",
                "Prior complaints", "Failure type", "NPS score"]
CASE_TYPES = ["text", "text", "datetime", "text", "text", "text", "text", "int", "text", "int"]
CASES = [
    ["K001", "C001", T(2026, 11, 20, 17, 0), "Urgent", "VIP", "Complaint", "Open", 3, "Money loss", 3],
    ["K002", "C002", T(2026, 11, 20, 17, 0), "Normal", "High value", "Repair", "Open", 0, "Faulty product", 8],
    ["K003", "C003", T(2026, 11, 10, 9, 30), "Complex", "Regular", "Question", "Resolved", 1, None, 10],
    ["K004", "C004", T(2026, 11, 23, 8, 15), "Minor", "Potential", "Complaint", "Open", None, "Neglect", None],
    ["K005", "C005", T(2026, 11, 12, 11, 59), "Normal", "VIP", "Repair", "Open", 2, "Failed service", 6],
    ["K006", "C006", T(2026, 11, 19, 12, 0), "Urgent", "New", "Repair", "In progress", 0, "Faulty product", 7],
    ["K007", "C007", T(2026, 11, 22, 23, 45), "Normal", "Regular", "Question", "Closed", 0, None, 9],
    ["K008", "C009", T(2026, 11, 18, 14, 30), "Complex", "High value", "Complaint", "In progress", 1, "Money loss", None],
    ["K009", "C010", T(2026, 11, 20, 10, 0), "Minor", "Potential", "Question", "Open", 0, None, 5],  # open exactly 72 h
    ["K010", "C011", T(2026, 11, 22, 10, 0), "Minor", "High value", "Question", "Open", 0, "Neglect", 9],  # exactly 24 h
]
NOTES = [["About this workbook"], ["Made by the cxrules tests; every customer and case is made up."], ["Rows", len(CUSTOMERS) + len(CASES)]]
FORMULA_HEADER = "Spend per order"  # a formula column on the customer sheet of some writers
SHEETS = ("Customers", "Cases", "Notes")


def spend_per_order(row: list) -> float:
    return row[5] / row[4]


def _formula(excel_row: int) -> str:
    """Spend 12m / Orders 12m of the same row (columns F and E)."""
    return f"=F{excel_row}/E{excel_row}"


def _as_datetime(v):
    return T(v.year, v.month, v.day) if type(v) is dt.date else v


# ------------------------------------------------------------------ Python writers
def openpyxl_writer(folder: Path) -> Path:
    """openpyxl: a title above the header, typed cells, a formula column without cached values."""
    import openpyxl

    path = Path(folder) / "openpyxl.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = SHEETS[0]
    ws.append(["Customer list - export of 2026-11-23"])
    ws.append([])
    ws.append(CUSTOMER_HEADERS + [FORMULA_HEADER])
    for row in CUSTOMERS:
        ws.append(row + [_formula(ws.max_row + 1)])
    for r in ws.iter_rows(min_row=4):
        for c in r:
            if isinstance(c.value, dt.date):
                c.number_format = "yyyy-mm-dd"
    ws2 = wb.create_sheet(SHEETS[1])
    ws2.append(CASE_HEADERS)
    for row in CASES:
        ws2.append(row)
    for r in ws2.iter_rows(min_row=2, min_col=3, max_col=3):
        r[0].number_format = "yyyy-mm-dd hh:mm"
    ws3 = wb.create_sheet(SHEETS[2])
    for row in NOTES:
        ws3.append(row)
    wb.save(path)
    return path


def _frames():
    import pandas as pd

    customers = pd.DataFrame(CUSTOMERS, columns=CUSTOMER_HEADERS)
    cases = pd.DataFrame(CASES, columns=CASE_HEADERS)
    for col, kind in zip(CUSTOMER_HEADERS, CUSTOMER_TYPES):
        if kind == "date":
            customers[col] = pd.to_datetime(customers[col])
    cases["Opened at"] = pd.to_datetime(cases["Opened at"])
    notes = pd.DataFrame([r + [None] * (2 - len(r)) for r in NOTES])
    return customers, cases, notes


def pandas_openpyxl(folder: Path) -> Path:
    """pandas.to_excel, engine openpyxl (the default): NaN for blanks, datetime columns, a formula column."""
    import pandas as pd

    path = Path(folder) / "pandas-openpyxl.xlsx"
    customers, cases, notes = _frames()
    customers[FORMULA_HEADER] = [_formula(i + 2) for i in range(len(customers))]
    with pd.ExcelWriter(path, engine="openpyxl", date_format="yyyy-mm-dd", datetime_format="yyyy-mm-dd hh:mm") as xw:
        customers.to_excel(xw, sheet_name=SHEETS[0], index=False)
        cases.to_excel(xw, sheet_name=SHEETS[1], index=False)
        notes.to_excel(xw, sheet_name=SHEETS[2], index=False, header=False)
    return path


def pandas_xlsxwriter(folder: Path) -> Path:
    """pandas.to_excel, engine xlsxwriter, with the index written (Customer ID as the index)."""
    import pandas as pd

    path = Path(folder) / "pandas-xlsxwriter.xlsx"
    customers, cases, notes = _frames()
    customers = customers.set_index("Customer ID")
    with pd.ExcelWriter(path, engine="xlsxwriter", datetime_format="yyyy-mm-dd hh:mm", date_format="yyyy-mm-dd") as xw:
        customers.to_excel(xw, sheet_name=SHEETS[0])
        cases.to_excel(xw, sheet_name=SHEETS[1], index=False)
        notes.to_excel(xw, sheet_name=SHEETS[2], index=False, header=False)
    return path


def _xlsxwriter(path: Path, options: dict, table: bool) -> Path:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), options)
    date_f = wb.add_format({"num_format": "yyyy-mm-dd"})
    stamp_f = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    bold = wb.add_format({"bold": True})

    def put(ws, r, c, v):
        if v is None:
            return
        if isinstance(v, dt.datetime):
            ws.write_datetime(r, c, v, stamp_f)
        elif isinstance(v, dt.date):
            ws.write_datetime(r, c, _as_datetime(v), date_f)
        else:
            ws.write(r, c, v)

    ws = wb.add_worksheet(SHEETS[0])
    ws.write_row(0, 0, CUSTOMER_HEADERS + [FORMULA_HEADER], bold)
    for i, row in enumerate(CUSTOMERS, start=1):
        for j, v in enumerate(row):
            put(ws, i, j, v)
        ws.write_formula(i, len(row), _formula(i + 1))  # no value given: xlsxwriter stores 0
    ws = wb.add_worksheet(SHEETS[1])
    if table:
        ws.add_table(0, 0, len(CASES), len(CASE_HEADERS) - 1, {"name": "CaseList", "columns": [{"header": h} for h in CASE_HEADERS]})
    else:
        ws.write_row(0, 0, CASE_HEADERS, bold)
    for i, row in enumerate(CASES, start=1):
        for j, v in enumerate(row):
            put(ws, i, j, v)
    ws = wb.add_worksheet(SHEETS[2])
    for i, row in enumerate(NOTES):
        ws.write_row(i, 0, row)
    wb.close()
    return path


def xlsxwriter_writer(folder: Path) -> Path:
    """xlsxwriter: shared strings, the cases as an Excel table, formulas with placeholder results."""
    return _xlsxwriter(Path(folder) / "xlsxwriter.xlsx", {}, table=True)


def xlsxwriter_constant_memory(folder: Path) -> Path:
    """xlsxwriter with constant_memory=True: inline strings, rows streamed to disk."""
    return _xlsxwriter(Path(folder) / "xlsxwriter-constant-memory.xlsx", {"constant_memory": True}, table=False)


def polars_writer(folder: Path) -> Path:
    """polars.DataFrame.write_excel: each frame as an Excel table, a formula column, three sheets."""
    import polars as pl
    import xlsxwriter

    path = Path(folder) / "polars.xlsx"
    customers = pl.DataFrame([dict(zip(CUSTOMER_HEADERS, r)) for r in CUSTOMERS], schema={
        h: {"text": pl.String, "date": pl.Date, "int": pl.Int64, "number": pl.Float64}[k] for h, k in zip(CUSTOMER_HEADERS, CUSTOMER_TYPES)
    })
    cases = pl.DataFrame([dict(zip(CASE_HEADERS, r)) for r in CASES], schema={
        h: {"text": pl.String, "datetime": pl.Datetime("us"), "int": pl.Int64}[k] for h, k in zip(CASE_HEADERS, CASE_TYPES)
    })
    notes = pl.DataFrame({"About this workbook": [str(r[0]) for r in NOTES[1:]]})
    with xlsxwriter.Workbook(str(path)) as wb:
        customers.write_excel(wb, SHEETS[0], formulas={FORMULA_HEADER: "=[@[Spend 12m]]/[@[Orders 12m]]"},
                              dtype_formats={pl.Date: "yyyy-mm-dd"}, float_precision=2)
        cases.write_excel(wb, SHEETS[1], dtype_formats={pl.Datetime: "yyyy-mm-dd hh:mm"})
        notes.write_excel(wb, SHEETS[2], autofilter=False)
    return path


def rustpy_xlsxwriter_writer(folder: Path) -> Path:
    """rustpy-xlsxwriter (the Python binding of rust_xlsxwriter): records, a formula column."""
    import rustpy_xlsxwriter as rx

    path = Path(folder) / "rustpy-xlsxwriter.xlsx"
    customers = [dict(zip(CUSTOMER_HEADERS, [_as_datetime(v) for v in r])) for r in CUSTOMERS]
    cases = [dict(zip(CASE_HEADERS, r)) for r in CASES]
    notes = [{"About this workbook": str(r[0])} for r in NOTES[1:]]
    rx.write_worksheets([(SHEETS[0], customers), (SHEETS[1], cases), (SHEETS[2], notes)], str(path),
                        datetime_format="yyyy-mm-dd hh:mm", bold_headers=True,
                        formula_columns={SHEETS[0]: {FORMULA_HEADER: "=F{row}/E{row}"}})
    return path


def pyexcelerate_writer(folder: Path) -> Path:
    """pyexcelerate: whole sheets from lists, datetimes with its default date style."""
    from pyexcelerate import Workbook

    path = Path(folder) / "pyexcelerate.xlsx"
    wb = Workbook()
    rows = [CUSTOMER_HEADERS + [FORMULA_HEADER]] + [[_as_datetime(v) for v in r] + [_formula(i + 2)] for i, r in enumerate(CUSTOMERS)]
    wb.new_sheet(SHEETS[0], data=rows)
    wb.new_sheet(SHEETS[1], data=[CASE_HEADERS] + [list(r) for r in CASES])
    wb.new_sheet(SHEETS[2], data=[list(r) for r in NOTES])
    wb.save(str(path))
    return path


# ------------------------------------------------------------------ LibreOffice
def soffice_convert(files, outdir: Path, fmt: str, profile: Path, timeout: float = 180) -> dict[Path, Path | None]:
    """Convert files with one headless LibreOffice run; source -> converted file (None: it failed).

    A private profile keeps runs apart from any LibreOffice a person has open, and the
    timeout bounds a LibreOffice that hangs on a bad file.
    """
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if exe is None:
        raise RuntimeError("LibreOffice (soffice) is not installed; .ci/run installs it (apt-get install libreoffice-calc)")
    files = [Path(f) for f in files]
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ext = fmt.split(":", 1)[0]
    _recalc_on_load(Path(profile))
    env = dict(os.environ, HOME=str(profile), SAL_USE_VCLPLUGIN="svp")
    cmd = [exe, f"-env:UserInstallation={Path(profile).resolve().as_uri()}", "--headless", "--norestore", "--nologo",
           "--nolockcheck", "--convert-to", fmt, "--outdir", str(outdir), *map(str, files)]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=env)
    out: dict[Path, Path | None] = {}
    for f in files:
        target = outdir / (f.stem + "." + ext)
        out[f] = target if target.exists() and target.stat().st_size else None
    if not any(out.values()):
        raise RuntimeError(f"LibreOffice converted nothing (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
    return out


def _recalc_on_load(profile: Path) -> None:
    """Make LibreOffice calculate every formula when it loads a file (its default keeps the
    cached results), so what it shows of a formula is what the formula gives."""
    xcu = profile / "user" / "registrymodifications.xcu"
    if xcu.exists():
        return
    xcu.parent.mkdir(parents=True, exist_ok=True)
    xcu.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        '<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse">'
        "<value>0</value></prop></item>\n</oor:items>\n")


def libreoffice_writer(folder: Path, profile: Path | None = None) -> Path:
    """LibreOffice Calc itself: the openpyxl workbook opened and saved as .xlsx by soffice,
    so every part is LibreOffice's (and it calculates the formula column)."""
    folder = Path(folder)
    src_dir = folder / "lo-src"
    src_dir.mkdir(exist_ok=True)
    src = openpyxl_writer(src_dir)
    src = src.rename(src_dir / "libreoffice.xlsx")
    profile = profile or folder / "lo-profile"
    got = soffice_convert([src], folder, "xlsx:Calc MS Excel 2007 XML", profile)[src]
    if got is None:
        raise RuntimeError("LibreOffice did not write the workbook")
    return got


# ------------------------------------------------------------------ Excel
EXCEL_MADE = Path(__file__).resolve().parent / "corpus" / "excel-made" / "defined_name01.xlsx"


def excel_writer(folder: Path) -> Path:
    """Excel's own package: defined_name01.xlsx as Excel 2007 saved it (three sheets,
    sheet-local and global defined names, a filter, printer settings, app.xml titles),
    with the customers put into 'Sheet2' and the cases into 'Sheet 3' the way Excel
    stores cells: shared strings, serial dates with a date style, formulas with their
    calculated values. Every other part keeps Excel's bytes."""
    path = Path(folder) / "excel.xlsx"
    zin = zipfile.ZipFile(EXCEL_MADE)
    parts = {i.filename: zin.read(i.filename) for i in zin.infolist()}
    sst = parts["xl/sharedStrings.xml"].decode()
    strings = re.findall(r"<si>.*?</si>", sst)
    index: dict[str, int] = {}

    def s(text: str) -> int:
        if text not in index:
            index[text] = len(strings)
            strings.append(f'<si><t xml:space="preserve">{html.escape(text, quote=False)}</t></si>')
        return index[text]

    styles = parts["xl/styles.xml"].decode()
    # Excel adds an xf per number format a person picks: 14 (date) and 22 (date and time)
    styles = styles.replace('<cellXfs count="1">', '<cellXfs count="3">').replace(
        "</cellXfs>", '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
                      '<xf numFmtId="22" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>')
    parts["xl/styles.xml"] = styles.encode()
    refs = 0

    def cell(ref: str, v, formula: str | None = None) -> str:
        nonlocal refs
        if formula is not None:
            return f"<c r=\"{ref}\"><f>{formula}</f><v>{_serial_text(v)}</v></c>"
        if v is None:
            return ""
        if isinstance(v, str):
            refs += 1
            return f'<c r="{ref}" t="s"><v>{s(v)}</v></c>'
        if isinstance(v, dt.datetime):
            return f'<c r="{ref}" s="2"><v>{_serial_text(v)}</v></c>'
        if isinstance(v, dt.date):
            return f'<c r="{ref}" s="1"><v>{_serial_text(v)}</v></c>'
        return f'<c r="{ref}"><v>{_serial_text(v)}</v></c>'

    def sheet_data(header, rows, formula=False) -> str:
        out = []
        width = len(header) + (1 if formula else 0)
        for i, row in enumerate([header + ([FORMULA_HEADER] if formula else [])] + rows, start=1):
            cells = [cell(f"{_letter(j)}{i}", v) for j, v in enumerate(row)]
            if formula and i > 1:
                cells.append(cell(f"{_letter(len(row))}{i}", spend_per_order(row), _formula(i)[1:]))
            out.append(f'<row r="{i}" spans="1:{width}">' + "".join(cells) + "</row>")
        return "<sheetData>" + "".join(out) + "</sheetData>", f"A1:{_letter(width - 1)}{len(rows) + 1}"

    for part, header, rows, formula in (("xl/worksheets/sheet2.xml", CUSTOMER_HEADERS, CUSTOMERS, True),
                                        ("xl/worksheets/sheet3.xml", CASE_HEADERS, CASES, False)):
        xml = parts[part].decode()
        data, dim = sheet_data(header, rows, formula)
        xml = re.sub(r"<sheetData/>|<sheetData>.*</sheetData>", lambda _: data, xml, count=1, flags=re.S)
        xml = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="{dim}"/>', xml, count=1)
        parts[part] = xml.encode()
    count = int(re.search(r'count="(\d+)"', sst).group(1)) + refs
    parts["xl/sharedStrings.xml"] = re.sub(r"<si>.*</si>", lambda _: "".join(strings), sst, count=1, flags=re.S).replace(
        re.search(r'count="\d+" uniqueCount="\d+"', sst).group(0), f'count="{count}" uniqueCount="{len(strings)}"').encode()
    with zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, parts[info.filename])
    return path


def _letter(col: int) -> str:
    out, n = "", col + 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def _serial_text(v) -> str:
    if isinstance(v, dt.datetime):
        x = (v - T(1899, 12, 30)).total_seconds() / 86400
    elif isinstance(v, dt.date):
        x = (v - D(1899, 12, 30)).days
    else:
        x = v
    return repr(float(x)).removesuffix(".0") if isinstance(x, float) else str(x)


# name -> writer; the test corpus is every one of them
WRITERS = {
    "openpyxl": openpyxl_writer,
    "pandas-openpyxl": pandas_openpyxl,
    "pandas-xlsxwriter": pandas_xlsxwriter,
    "xlsxwriter": xlsxwriter_writer,
    "xlsxwriter-constant-memory": xlsxwriter_constant_memory,
    "libreoffice": libreoffice_writer,
    "polars": polars_writer,
    "rustpy-xlsxwriter": rustpy_xlsxwriter_writer,
    "pyexcelerate": pyexcelerate_writer,
    "excel": excel_writer,
}
