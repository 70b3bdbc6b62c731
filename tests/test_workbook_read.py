"""Reading workbooks: refusals, values, Excel errors, formulas, tables, find_header."""
from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.table import Table as XlTable

from cxrules.workbook import CellError, WorkbookError, find_header, open_workbook

CT = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)


def make_xlsx(path: Path, sheet_data: str, tail: str = "", name: str = "Data") -> Path:
    """A minimal package with one sheet whose <sheetData> content is given as XML."""
    parts = {
        "[Content_Types].xml": CT,
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{sheet_data}</sheetData>{tail}</worksheet>",
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in parts.items():
            z.writestr(k, v)
    return path


def _save(wb: openpyxl.Workbook, path: Path) -> Path:
    wb.save(path)
    return path


# ------------------------------------------------------------------ refusals
def test_missing_file(tmp_path):
    with pytest.raises(WorkbookError, match="no such file"):
        open_workbook(tmp_path / "nope.xlsx")


def test_old_xls_refused(tmp_path):
    p = tmp_path / "old.xls"
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(WorkbookError, match=r"save it as \.xlsx"):
        open_workbook(p)


def test_encrypted_refused(tmp_path):
    # Excel saves a password-protected workbook as an OLE2 file holding EncryptionInfo
    p = tmp_path / "secret.xlsx"
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 500 + "EncryptionInfo".encode("utf-16-le") + b"\0" * 100)
    with pytest.raises(WorkbookError, match="password") as e:
        open_workbook(p)
    assert "secret.xlsx" in str(e.value)
    q = tmp_path / "ole.xlsx"  # an OLE2 file with an .xlsx name, encryption unknown
    q.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(WorkbookError, match="password"):
        open_workbook(q)


def test_corrupt_refused(tmp_path):
    p = tmp_path / "broken.xlsx"
    p.write_bytes(b"PK\x03\x04 this is not really a zip file" * 10)
    with pytest.raises(WorkbookError, match="damaged"):
        open_workbook(p)
    q = tmp_path / "cut.xlsx"
    good = make_xlsx(tmp_path / "good.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>').read_bytes()
    q.write_bytes(good[: len(good) // 2])
    with pytest.raises(WorkbookError, match="damaged"):
        open_workbook(q)


def test_not_a_workbook(tmp_path):
    p = tmp_path / "notes.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(WorkbookError, match="not an Excel workbook"):
        open_workbook(p)
    z = tmp_path / "other.xlsx"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("hello.txt", "hi")
    with pytest.raises(WorkbookError, match="not an Excel workbook"):
        open_workbook(z)


def test_open_in_excel_refused(tmp_path):
    p = make_xlsx(tmp_path / "cases.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>')
    (tmp_path / "~$cases.xlsx").write_bytes(b"owner")
    with pytest.raises(WorkbookError, match="close it in Excel first"):
        open_workbook(p)


def test_unknown_sheet_suggests(tmp_path):
    p = make_xlsx(tmp_path / "a.xlsx", '<row r="1"><c r="A1"><v>1</v></c></row>', name="Cases")
    with open_workbook(p) as wb, pytest.raises(WorkbookError, match="did you mean 'Cases'"):
        wb.read_sheet("cases2")


# ------------------------------------------------------------------ values
def test_values_and_positions(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Cases"
    ws["C4"], ws["D4"], ws["E4"], ws["F4"] = "Opened", "Amount", "VIP", "Wait"
    ws["C5"] = dt.datetime(2026, 11, 23, 9, 30)
    ws["D5"] = 12.5
    ws["E5"] = True
    ws["F5"] = dt.timedelta(hours=30)
    ws["F5"].number_format = "[h]:mm:ss"
    ws.sheet_state = "visible"
    hidden = wb.create_sheet("Old")
    hidden.sheet_state = "hidden"
    with open_workbook(_save(wb, tmp_path / "v.xlsx")) as w:
        assert [(s.name, s.index, s.visible) for s in w.sheets] == [("Cases", 0, True), ("Old", 1, False)]
        d = w.read_sheet("Cases")
    assert (d.first_row, d.first_col) == (4, 2)
    assert d.rows[0] == ["Opened", "Amount", "VIP", "Wait"]
    assert d.rows[1][:3] == [dt.datetime(2026, 11, 23, 9, 30), 12.5, True]
    assert d.rows[1][3] == dt.timedelta(hours=30)
    assert d.cell_ref(1, 1) == "D5" and d.value(5, 3) == 12.5


def test_excel_errors_are_not_text(tmp_path):
    p = make_xlsx(tmp_path / "e.xlsx",
                  '<row r="2"><c r="B2" t="e"><v>#N/A</v></c><c r="C2" t="inlineStr"><is><t>#N/A</t></is></c>'
                  '<c r="D2" t="e"><f>1+"a"</f><v>#VALUE!</v></c><c r="E2" t="str"><f>"#N/A"</f><v>#N/A</v></c><c r="F2"><v>3</v></c></row>')
    with open_workbook(p) as wb:
        d = wb.read_sheet("Data")
    row = d.rows[0]
    assert d.first_row == 2 and d.first_col == 1
    assert row[0] == CellError("#N/A") and str(row[0]) == "#N/A"
    assert row[1] == "#N/A" and isinstance(row[1], str)
    assert row[2] == CellError("#VALUE!")
    assert row[3] == "#N/A" and isinstance(row[3], str)  # a formula's text result
    assert row[4] == 3


def test_formula_without_value(tmp_path):
    p = make_xlsx(tmp_path / "f.xlsx",
                  '<row r="1"><c r="A1"><v>1</v></c><c r="B1"><f>A1+1</f></c><c r="C1"><f>A1+1</f><v>2</v></c>'
                  '<c r="D1" t="str"><f>""</f><v></v></c><c r="E1"><f t="shared" ref="E1:E2" si="0">A1*2</f><v/></c></row>'
                  '<row r="2"><c r="E2"><f t="shared" si="0"/></c></row>')
    with open_workbook(p) as wb:
        d = wb.read_sheet("Data")
    assert d.formula_cells_without_value == [(1, 1), (1, 4), (2, 4)]


def test_formula_without_value_openpyxl(tmp_path):
    wb = openpyxl.Workbook()
    wb.active["A1"] = 2
    wb.active["A2"] = "=A1*2"  # openpyxl writes no cached value
    with open_workbook(_save(wb, tmp_path / "o.xlsx")) as w:
        assert w.read_sheet("Sheet").formula_cells_without_value == [(2, 0)]


def test_cells_without_r_attributes(tmp_path):
    p = make_xlsx(tmp_path / "n.xlsx", '<row><c><v>1</v></c><c t="e"><v>#N/A</v></c></row><row><c/><c><f>A1</f></c></row>')
    with open_workbook(p) as wb:
        d = wb.read_sheet("Data")
    assert d.rows[0] == [1, CellError("#N/A")]
    assert d.formula_cells_without_value == [(2, 1)]


def test_tables_and_merged(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Report"])
    ws.merge_cells("A1:C1")
    ws.append([])
    ws.append(["Customer", "Tier", "Spend"])
    ws.append(["a", "gold", 3])
    ws.append(["b", "silver", 4])
    t = XlTable(displayName="Customers", ref="A3:C5")
    ws.add_table(t)
    with open_workbook(_save(wb, tmp_path / "t.xlsx")) as w:
        d = w.read_sheet("Sheet")
    assert [(x.name, x.ref, x.header_rows, x.columns) for x in d.tables] == [("Customers", (3, 0, 5, 2), 1, ("Customer", "Tier", "Spend"))]
    assert d.merged == [(1, 0, 1, 2)]
    h = find_header(d, {"tier": ["Tier"], "spend": ["Spend"]})
    assert h.row == 3 and h.table == "Customers" and h.columns == {"tier": 1, "spend": 2}


# ------------------------------------------------------------------ find_header
WANT = {"customer": ["Customer", "客户"], "opened": ["Opened at", "创建时间"], "severity": ["Severity", "严重程度"]}


def test_header_below_a_title():
    rows = [["Weekly cases", None, None], [None, None, None], ["Customer", "Opened at", "Severity"], ["c1", 1, 2]]
    h = find_header(rows, WANT)
    assert (h.index, h.row) == (2, 3)
    assert h.columns == {"customer": 0, "opened": 1, "severity": 2}
    assert not h.problems and not h.missing


def test_chinese_headers_and_missing():
    rows = [["客户", "创建时间", "备注"], ["张三", 1, None]]
    h = find_header(rows, WANT)
    assert h.columns == {"customer": 0, "opened": 1} and h.missing == ["severity"]
    assert h.texts["opened"] == "创建时间"


def test_aliases_ignore_case_spaces_underscores():
    rows = [["  CUSTOMER ", "opened_AT", "Se ve_rity"]]
    h = find_header(rows, WANT)
    assert h.columns == {"customer": 0, "opened": 1, "severity": 2}


def test_best_row_wins():
    rows = [["Customer", "notes"], [None], ["Customer", "Opened at", "Severity"]]
    assert find_header(rows, WANT).index == 2
    assert find_header([["x"], [1, 2]], WANT) is None
    assert find_header([[None]] * 40 + [["Customer"]], WANT, max_scan=30) is None


def test_duplicated_header_is_reported():
    rows = [["Customer", "Severity", "customer", "Opened at"]]
    h = find_header(rows, WANT)
    assert h.columns["customer"] == 0
    [p] = h.problems
    assert p.code == "duplicate-header" and "column A is used" in p.message and "C" in p.message


def test_merged_header_is_reported(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Customer", "Opened at", None, "Severity"])
    ws.merge_cells("B1:C1")
    ws.append(["c", 1, 2, 3])
    with open_workbook(_save(wb, tmp_path / "m.xlsx")) as w:
        d = w.read_sheet("Sheet")
    h = find_header(d, WANT)
    assert h.columns == {"customer": 0, "opened": 1, "severity": 3}
    [p] = h.problems
    assert p.code == "merged-header" and "B1:C1" in p.message and p.sheet == "Sheet"


def test_table_header_preferred(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Customer", "Opened at", "Severity"])  # a stray header-like row above
    ws.append([])
    ws.append(["Customer", "Opened at", "Notes"])
    ws.append(["c", 1, "x"])
    ws.add_table(XlTable(displayName="Cases", ref="A3:C4"))
    with open_workbook(_save(wb, tmp_path / "p.xlsx")) as w:
        d = w.read_sheet("Sheet")
    h = find_header(d, WANT)
    assert h.row == 3 and h.table == "Cases" and h.missing == ["severity"]


# ------------------------------------------------------------------ long sheets: repeated values shared
@pytest.mark.parametrize("top_left", ["A1", "C5"])
def test_a_long_sheet_read_with_shared_values_gives_the_same_cells_of_the_same_kinds(tmp_path, monkeypatch, top_left):
    """Above SHARE_FROM rows, a column of few texts or dates holds one object per value; every
    cell reads as before, and a number, a truth value or a date in a text column keeps its kind."""
    from cxrules import xlsx_read

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    col = openpyxl.utils.column_index_from_string("".join(ch for ch in top_left if ch.isalpha()))
    row0 = int("".join(ch for ch in top_left if ch.isdigit()))
    ws.cell(row0, col, "Tier"), ws.cell(row0, col + 1, "Since"), ws.cell(row0, col + 2, "Name"), ws.cell(row0, col + 3, "Score")
    odd = {300: 1, 301: 1.0, 302: True, 303: dt.date(2026, 1, 1), 304: "", 305: None}
    for i in range(1, 400):
        tier = odd.get(i, ["VIP", "Regular", "New"][i % 3])
        ws.cell(row0 + i, col, tier)
        ws.cell(row0 + i, col + 1, dt.date(2026, 1, 1 + i % 20) if i != 350 else "not a date")
        ws.cell(row0 + i, col + 2, f"Customer {i}")
        ws.cell(row0 + i, col + 3, i % 4 if i != 360 else True)
    path = tmp_path / "long.xlsx"
    wb.save(path)
    with open_workbook(path) as w:
        plain = w.read_sheet("Data")
    monkeypatch.setattr(xlsx_read, "SHARE_FROM", 10)
    monkeypatch.setattr(xlsx_read, "_SAMPLE", 50)  # the odd cells come after the rows looked at
    with open_workbook(path) as w:
        shared = w.read_sheet("Data")
    assert (shared.first_row, shared.first_col) == (plain.first_row, plain.first_col) == (row0, col - 1)
    assert shared.rows == plain.rows
    assert [list(map(type, r)) for r in shared.rows] == [list(map(type, r)) for r in plain.rows]
    tiers = [r[0] for r in shared.rows[1:] if r[0] == "VIP"]
    assert len({id(t) for t in tiers}) == 1  # one object for the value, not one a cell
    dates = [r[1] for r in shared.rows[1:] if r[1] == dt.date(2026, 1, 5)]
    assert len(dates) > 1 and len({id(d) for d in dates}) == 1
