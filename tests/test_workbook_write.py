"""Writing into workbooks: cells, styles, tables, formulas, new sheets, atomic replace."""
from __future__ import annotations

import datetime as dt
import os
import re
import stat
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.table import Table as XlTable

import cxrules.xlsx_write as xw
from cxrules.values import Duration
from cxrules.workbook import (
    CellError,
    CellFormat,
    ColumnWrite,
    Highlight,
    NewSheet,
    SheetEdit,
    WorkbookError,
    open_workbook,
    write_workbook,
)

REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def package(path: Path, sheet_xml: str, *, workbook_pr: str = "", calc_chain: str | None = None, styles: bool = True) -> Path:
    """A small package written by hand, for XML that openpyxl would not produce."""
    ct = ['<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>',
          '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>',
          '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>']
    rels = [f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>']
    parts = {}
    if styles:
        ct.append('<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>')
        rels.append(f'<Relationship Id="rId2" Type="{REL}/styles" Target="styles.xml"/>')
        parts["xl/styles.xml"] = xw.MINIMAL_STYLES.decode()
    if calc_chain is not None:
        ct.append('<Override PartName="/xl/calcChain.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain+xml"/>')
        rels.append(f'<Relationship Id="rId3" Type="{REL}/calcChain" Target="calcChain.xml"/>')
        parts["xl/calcChain.xml"] = f'<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{calc_chain}</calcChain>'
    parts.update({
        "[Content_Types].xml": f'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">{"".join(ct)}</Types>',
        "_rels/.rels": f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{REL}">{workbook_pr}<sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{"".join(rels)}</Relationships>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{REL}">{sheet_xml}</worksheet>',
    })
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in parts.items():
            z.writestr(k, v)
    return path


def sheet_xml(path: Path, part: str = "xl/worksheets/sheet1.xml") -> str:
    return zipfile.ZipFile(path).read(part).decode()


def read(path: Path, sheet: str = "Data"):
    with open_workbook(path) as wb:
        return wb.read_sheet(sheet)


def cases(tmp_path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Cases"
    ws.append(["Customer", "Opened", "Severity", "Owner"])
    for i in range(1, 6):
        ws.append([f"c{i}", dt.datetime(2026, 11, i, 9), i % 3, "amy"])
    for c in ws[1]:
        c.font = Font(bold=True)
        c.fill = PatternFill("solid", fgColor="DDEBF7")
    ws["B1"].number_format = "@"
    p = tmp_path / "cases.xlsx"
    wb.save(p)
    return p


# ------------------------------------------------------------------ cells
def test_new_columns_types_and_formats(tmp_path):
    p = cases(tmp_path)
    cols = [
        ColumnWrite(4, 1, "Level", 2, [1, 2.5, None, float("nan"), float("inf")], "number"),
        ColumnWrite(5, 1, "Due", 2, [dt.date(2026, 12, 1), dt.datetime(2026, 12, 2, 15, 0), "not a date"], "date"),
        ColumnWrite(6, 1, "Wait", 2, [Duration.of(hours=30), dt.timedelta(minutes=90)], "duration"),
        ColumnWrite(7, 1, "Mixed", 2, [True, CellError("#N/A"), dt.time(9, 30), dt.datetime(2026, 1, 1, 8), "x"], "general"),
    ]
    rep = write_workbook(p, p, [SheetEdit("Cases", cols)])
    assert not rep.problems
    ws = openpyxl.load_workbook(p)["Cases"]
    assert [ws.cell(1, c).value for c in range(5, 9)] == ["Level", "Due", "Wait", "Mixed"]
    assert ws["E1"].font.b and ws["E1"].fill.fgColor.rgb == "00DDEBF7"  # looks like the header left of it
    assert [ws.cell(r, 5).value for r in range(2, 7)] == [1, 2.5, None, None, "#NUM!"]
    assert ws["F2"].value == dt.datetime(2026, 12, 1) and ws["F2"].number_format == "yyyy-mm-dd"
    assert ws["F3"].value == dt.datetime(2026, 12, 2)  # a date column keeps the date
    assert ws["F4"].value == "not a date"
    assert ws["G2"].number_format == "[h]:mm:ss" and ws["G2"].value == dt.timedelta(hours=30)
    assert ws["H2"].value is True and ws["H3"].value == "#N/A" and ws["H4"].value == dt.time(9, 30)
    assert ws["H5"].number_format == "yyyy-mm-dd hh:mm"
    d = read(p, "Cases")
    assert d.value(3, 7) == CellError("#N/A")
    assert d.value(2, 5) == dt.date(2026, 12, 1)
    x = sheet_xml(p)
    assert re.search(r'<dimension ref="A1:H6"\s*/>', x)


def test_overwrite_existing_column_keeps_look(tmp_path):
    p = cases(tmp_path)
    wb = openpyxl.load_workbook(p)
    wb["Cases"]["C3"].fill = PatternFill("solid", fgColor="FFC000")
    wb.save(p)
    write_workbook(p, p, [SheetEdit("Cases", [ColumnWrite(2, 1, None, 2, [dt.date(2026, 1, 1), None, 7], "date")])])
    ws = openpyxl.load_workbook(p)["Cases"]
    assert ws["C1"].value == "Severity"  # header None: left as it is
    assert ws["C2"].value == dt.datetime(2026, 1, 1) and ws["C2"].number_format == "yyyy-mm-dd"
    assert ws["C3"].value is None and ws["C3"].fill.fgColor.rgb == "00FFC000"  # cleared, colour kept
    assert ws["C4"].value == 7 and ws["C5"].value == 1  # rows past the values untouched
    assert [ws.cell(2, c).value for c in (1, 2, 4)] == ["c1", dt.datetime(2026, 11, 1, 9), "amy"]
    x = sheet_xml(p)
    for row in re.findall(r"<row [^>]*>(.*?)</row>", x):  # cells stay in column order
        refs = re.findall(r'<c r="([A-Z]+)\d+"', row)
        assert refs == sorted(refs, key=lambda s: (len(s), s))


def test_rows_are_created_where_missing(tmp_path):
    p = package(tmp_path / "gaps.xlsx", '<dimension ref="A1:A5"/><sheetData><row r="1"><c r="A1"><v>1</v></c></row>'
                '<row r="3" spans="1:1"><c r="A3"><v>3</v></c></row><row r="5"><c r="A5"><v>5</v></c></row></sheetData>')
    write_workbook(p, p, [SheetEdit("Data", [ColumnWrite(1, 1, "B", 2, list(range(2, 9)), "number")])])
    d = read(p)
    assert [r[:2] for r in d.rows] == [[1, "B"], [None, 2], [3, 3], [None, 4], [5, 5], [None, 6], [None, 7], [None, 8]]
    x = sheet_xml(p)
    assert re.findall(r'<row r="(\d+)"', x) == [str(i) for i in range(1, 9)]
    assert '<dimension ref="A1:B8"/>' in x and 'spans="1:2"' in x


def test_rows_and_cells_without_r(tmp_path):
    p = package(tmp_path / "nor.xlsx", "<sheetData><row><c><v>1</v></c><c><v>2</v></c></row><row/><row><c><v>3</v></c></row></sheetData>")
    write_workbook(p, p, [SheetEdit("Data", [ColumnWrite(1, 1, None, 2, ["x", "y"], "text")])])
    d = read(p)
    assert d.rows == [[1, 2], [None, "x"], [3, "y"]]


def test_column_between_existing_cells(tmp_path):
    p = package(tmp_path / "mid.xlsx", '<sheetData><row r="1"><c r="A1"><v>1</v></c><c r="D1"><v>4</v></c></row></sheetData>')
    write_workbook(p, p, [SheetEdit("Data", [ColumnWrite(2, 1, "C", 2, [9], "number"), ColumnWrite(1, 1, "B", 2, [8], "number")])])
    assert '<c r="A1"><v>1</v></c><c r="B1" t="inlineStr"><is><t>B</t></is></c><c r="C1" t="inlineStr"><is><t>C</t></is></c><c r="D1"><v>4</v></c>' in sheet_xml(p)
    assert read(p).rows == [[1, "B", "C", 4], [None, 8, 9, None]]


def test_long_text_is_cut_with_a_warning(tmp_path):
    p = cases(tmp_path)
    rep = write_workbook(p, p, [SheetEdit("Cases", [ColumnWrite(4, 1, "Note", 2, ["ok", "x" * 40000, "y" * 40000], "text")])])
    assert [q.code for q in rep.problems] == ["text-too-long"] and rep.problems[0].row == 3
    assert len(read(p, "Cases").value(3, 4)) == xw.MAX_TEXT


def test_text_escaping():
    assert xw._inline("a<b&c") == "<is><t>a&lt;b&amp;c</t></is>"
    assert xw._inline(" x") == '<is><t xml:space="preserve"> x</t></is>'
    assert xw._inline("a\x01_x0041_") == "<is><t>a_x0001__x005F_x0041_</t></is>"
    assert xw.encode("", "text", False) is None
    assert xw.encode(float("nan"), "number", False) is None


_ESCAPED = st.lists(st.one_of(st.characters(), st.sampled_from(["_x0041_", "_x", "_", "&", "<", '"', "\r", "\ud800", "\uffff"]))).map("".join)


@settings(max_examples=300)
@given(_ESCAPED)
def test_a_text_with_nothing_to_escape_is_the_text_itself_and_any_other_is_escaped(s):
    """The quick test for 'nothing to escape' never passes over a character that needs it."""
    want = re.sub("[\x00-\x08\x0b-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)",
                  lambda m: "_x005F_" if m.group(0) == "_" else "_x%04X_" % ord(m.group(0)), s)
    want = re.sub("[\ud800-\udfff]", "\ufffd", want)
    want = want.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    assert xw._ooxml_text(s) == want


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30), min_size=1, max_size=8))
def test_text_round_trip(tmp_path_factory, texts):
    p = package(tmp_path_factory.mktemp("rt") / "t.xlsx", '<sheetData><row r="1"><c r="A1"><v>0</v></c></row></sheetData>')
    write_workbook(p, p, [SheetEdit("Data", [ColumnWrite(0, 1, None, 2, texts, "text")])])
    d = read(p)
    got = [d.value(r, 0) for r in range(2, 2 + len(texts))]
    assert got == texts


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 400), st.integers(0, 3))
def test_streaming_does_not_depend_on_chunks(size, skip):
    rows = "".join(f'<row r="{r}" spans="1:2"><c r="A{r}"><v>{r}</v></c><c r="B{r}" t="inlineStr"><is><t>row {r}</t></is></c></row>'
                   if r % 5 else f'<row r="{r}"/>' if r % 2 else f'<row r="{r}"><c r="A{r}" s="0"/></row>'
                   for r in range(1, 40) if r % 7 != skip)
    xml = (f'<?xml version="1.0"?><worksheet xmlns="x"><dimension ref="A1:B39"/><sheetData>{rows}</sheetData>'
           '<conditionalFormatting sqref="A1"><cfRule type="cellIs" dxfId="0" priority="3" operator="greaterThan"><formula>5</formula></cfRule></conditionalFormatting>'
           '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>').encode()
    edit = SheetEdit("S", [ColumnWrite(2, 1, "C", 5, list(range(30)), "number"), ColumnWrite(1, 1, None, 3, ["x", None, "z"], "text")],
                     [Highlight(2, 3, "FFEB9C", 5, 34, 0, 2)])

    def run(chunks):
        out = []
        xw.SheetRewriter(edit, xw.Styles(None), False, "S", xw.WriteReport()).run(iter(chunks), out.append)
        return b"".join(out)

    whole = run([xml])
    assert run([xml[i: i + size] for i in range(0, len(xml), size)]) == whole
    existing = {r for r in range(1, 40) if r % 7 != skip}
    assert [int(x) for x in re.findall(rb'<row r="(\d+)"', whole)] == sorted(existing | {1, 3, 5} | set(range(5, 35)))
    assert b'priority="4"' in whole and whole.index(b"$C5=3") < whole.index(b"<pageMargins")


# ------------------------------------------------------------------ formulas
def test_formulas_in_a_written_column_are_kept_and_said(tmp_path):
    p = package(tmp_path / "cc.xlsx", '<sheetData><row r="1"><c r="A1"><v>1</v></c><c r="B1"><f>A1*2</f><v>2</v></c><c r="C1"><f>A1*3</f><v>3</v></c></row>'
                '<row r="2"><c r="A2"><v>2</v></c><c r="B2"><v>7</v></c></row></sheetData>',
                calc_chain='<c r="B1" i="1"/><c r="C1"/>')
    before = zipfile.ZipFile(p).read("xl/calcChain.xml")
    rep = write_workbook(p, p, [SheetEdit("Data", [ColumnWrite(1, 1, None, 1, [5, 6], "number")])])
    z = zipfile.ZipFile(p)
    assert z.read("xl/calcChain.xml") == before  # every formula is still where the chain says
    x = sheet_xml(p)
    assert '<c r="B1"><f>A1*2</f><v>2</v></c>' in x and "<f>A1*3</f>" in x
    assert [(q.code, q.row, q.column, q.message) for q in rep.problems] == [
        ("formula-kept", 1, "B", "1 cell of column B holds a formula (B1); cxrules never writes a value over a formula, so they were kept")]
    ws = openpyxl.load_workbook(p)["Data"]
    assert ws["B1"].value == "=A1*2" and ws["B2"].value == 6


def test_shared_formula_master_is_kept_with_its_dependents(tmp_path):
    rows = ('<row r="1"><c r="A1"><v>1</v></c><c r="B1"><f t="shared" ref="B1:B3" si="0">A1*2</f><v>2</v></c></row>'
            '<row r="2"><c r="A2"><v>2</v></c><c r="B2"><f t="shared" si="0"/><v>4</v></c></row>'
            '<row r="3"><c r="A3"><v>3</v></c><c r="B3"><f t="shared" si="0"/><v>6</v></c></row>')
    p = package(tmp_path / "sf.xlsx", f"<sheetData>{rows}</sheetData>")
    rep = write_workbook(p, p, [SheetEdit("Data", [ColumnWrite(1, 1, None, 1, ["done", "x", "y"], "text")])])
    assert rows in sheet_xml(p)
    assert [q.message for q in rep.problems] == [
        "3 cells of column B hold a formula (B1, B2, B3); cxrules never writes a value over a formula, so they were kept"]
    ws = openpyxl.load_workbook(p)["Data"]
    assert ws["B1"].value == "=A1*2" and ws["B2"].value is not None


def test_date1904(tmp_path):
    p = package(tmp_path / "mac.xlsx", '<sheetData><row r="1"><c r="A1"><v>1</v></c></row></sheetData>', workbook_pr='<workbookPr date1904="1"/>')
    write_workbook(p, p, [SheetEdit("Data", [ColumnWrite(1, 1, None, 1, [dt.date(2026, 11, 23)], "date")])])
    assert f"<v>{(dt.date(2026, 11, 23) - dt.date(1899, 12, 30)).days - 1462}</v>" in sheet_xml(p)
    assert read(p).rows[0][1] == dt.date(2026, 11, 23)


def test_styles_part_created_when_missing(tmp_path):
    p = package(tmp_path / "ns.xlsx", '<sheetData><row r="1"><c r="A1"><v>1</v></c></row></sheetData>', styles=False)
    write_workbook(p, p, [SheetEdit("Data", [ColumnWrite(1, 1, None, 1, [dt.date(2026, 1, 1)], "date")])])
    z = zipfile.ZipFile(p)
    assert "xl/styles.xml" in z.namelist() and b"styles" in z.read("xl/_rels/workbook.xml.rels")
    assert openpyxl.load_workbook(p)["Data"]["B1"].number_format == "yyyy-mm-dd"


# ------------------------------------------------------------------ tables and highlights
def _table_book(tmp_path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Customer", "Tier", "Spend"])
    ws.append(["a", "gold", 3])
    ws.append(["b", "silver", 4])
    ws.add_table(XlTable(displayName="Customers", ref="A1:C3"))
    p = tmp_path / "table.xlsx"
    wb.save(p)
    return p


def test_new_column_joins_table(tmp_path):
    p = _table_book(tmp_path)
    rep = write_workbook(p, p, [SheetEdit("Sheet", [ColumnWrite(3, 1, "Offer", 2, ["voucher", None], "text"), ColumnWrite(4, 1, "Due", 2, [dt.date(2026, 1, 1)], "date")])])
    assert not rep.problems
    t = openpyxl.load_workbook(p)["Sheet"].tables["Customers"]
    assert t.ref == "A1:E3" and t.autoFilter.ref == "A1:E3"
    assert [c.name for c in t.tableColumns] == ["Customer", "Tier", "Spend", "Offer", "Due"]
    assert [c.id for c in t.tableColumns] == [1, 2, 3, 4, 5]
    with open_workbook(p) as wb:
        assert wb.read_sheet("Sheet").tables[0].ref == (1, 0, 3, 4)


def test_table_column_names_are_kept(tmp_path):
    p = _table_book(tmp_path)
    rep = write_workbook(p, p, [SheetEdit("Sheet", [ColumnWrite(1, 1, "Level", 2, ["x", "y"], "text"), ColumnWrite(3, 1, "tier", 2, [1, 2], "number")])])
    codes = sorted(q.code for q in rep.problems)
    assert codes == ["table-duplicate-header", "table-header-kept"]
    ws = openpyxl.load_workbook(p)["Sheet"]
    assert ws["B1"].value == "Tier" and ws["B2"].value == "x"
    assert ws.tables["Customers"].ref == "A1:C3" and ws["D1"].value == "tier"


def test_highlights_are_conditional_formats(tmp_path):
    p = cases(tmp_path)
    hl = [Highlight(4, 1, "FFF2A8", 2, 6, 0, 4), Highlight(4, 3, "#FFC7CE", 2, 6, 0, 4, "9C0006"), Highlight(5, ">0", "FFC7CE", 2, 6)]
    edit = SheetEdit("Cases", [ColumnWrite(4, 1, "Level", 2, [1, 0, 3, 1, 2], "number"), ColumnWrite(5, 1, "Days overdue", 2, [None, 2, None, 0.5, None], "number")], hl)
    write_workbook(p, p, [edit])
    write_workbook(p, p, [edit])  # again: the same rules, not twice as many
    x = sheet_xml(p)
    assert x.count("<conditionalFormatting") == 3
    assert '<conditionalFormatting sqref="A2:E6"><cfRule type="expression" dxfId="0" priority="1"><formula>$E2=1</formula>' in x
    assert "<formula>AND(ISNUMBER($F2),$F2&gt;0)</formula>" in x
    styles = zipfile.ZipFile(p).read("xl/styles.xml").decode()
    assert styles.count("<dxf>") == 3 and '<font><color rgb="FF9C0006"/></font>' in styles
    ws = openpyxl.load_workbook(p)["Cases"]
    rules = {r.formula[0]: r for cf in ws.conditional_formatting for r in cf.rules}
    assert rules["$E2=3"].dxf.fill.bgColor.rgb == "FFFFC7CE"


def test_sheet_filter_takes_new_columns(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Region", "Volume"])
    ws.append(["East", 3])
    ws.auto_filter.ref = "A1:B2"
    p = tmp_path / "f.xlsx"
    wb.save(p)
    write_workbook(p, p, [SheetEdit("Sheet", [ColumnWrite(2, 1, "Level", 2, [1]), ColumnWrite(3, 1, "Due", 2, [2])])])
    assert openpyxl.load_workbook(p)["Sheet"].auto_filter.ref == "A1:D2"


# ------------------------------------------------------------------ sheets we make
def test_new_sheets_and_their_names(tmp_path):
    p = cases(tmp_path)
    wb = openpyxl.load_workbook(p)
    wb.create_sheet("Issues")["A1"] = "my own notes"
    wb.save(p)
    sheet = NewSheet("Issues", [["Sheet", "Row", "Problem"], ["Cases", 3, "bad date"]], freeze_rows=1, autofilter=True,
                     row_formats={0: CellFormat(bold=True)}, formats={(1, 2): CellFormat(fill="FFC7CE", wrap=True)})
    rep = write_workbook(p, p, [], [sheet])
    assert rep.sheet_names == {"Issues": "Issues (2)"} and rep.problems[0].code == "sheet-name-taken"
    rep = write_workbook(p, p, [], [sheet])  # the next run replaces its own sheet
    assert rep.sheet_names == {"Issues": "Issues (2)"} and not rep.problems
    ox = openpyxl.load_workbook(p)
    assert ox.sheetnames == ["Cases", "Issues", "Issues (2)"]
    assert ox["Issues"]["A1"].value == "my own notes"
    ws = ox["Issues (2)"]
    assert ws["C2"].value == "bad date" and ws["C2"].alignment.wrap_text and ws["A1"].font.b
    assert ws.auto_filter.ref == "A1:C2" and ws.freeze_panes == "A2"
    with open_workbook(p) as w:
        assert w.cxrules_sheets == {"Issues (2)": "Issues"}


def test_a_new_sheets_cell_formats_win_over_its_row_format_and_reach_past_its_values(tmp_path):
    p = cases(tmp_path)
    red, bold = CellFormat(fill="FFC7CE"), CellFormat(bold=True)
    rows = [["Tier", "Days"], ["VIP", 3, "x"], ["Plain row"], [], ["Potential", 2]]
    sheet = NewSheet("Plan", rows, row_formats={1: bold, 4: bold},
                     formats={(1, 1): red, (2, 3): red, (3, 0): red, (4, 1): red})
    write_workbook(p, p, [], [sheet])
    ws = openpyxl.load_workbook(p)["Plan"]
    assert ws["A2"].font.b and ws["C2"].font.b and ws["C2"].value == "x"  # the row's format
    assert ws["B2"].fill.fgColor.rgb.endswith("FFC7CE") and not ws["B2"].font.b  # the cell's own wins
    assert ws["A3"].value == "Plain row" and ws["D3"].fill.fgColor.rgb.endswith("FFC7CE") and ws["D3"].value is None
    assert ws["B3"].fill.fgColor.rgb in (None, "00000000")  # no cell between the value and the formatted one
    assert ws["A4"].fill.fgColor.rgb.endswith("FFC7CE")  # a formatted cell in an empty row
    assert ws["A5"].font.b and ws["B5"].value == 2 and ws["B5"].fill.fgColor.rgb.endswith("FFC7CE")
    with zipfile.ZipFile(p) as z:
        xml = z.read(next(n for n in z.namelist() if n.startswith("xl/worksheets/") and b"Plain row" in z.read(n)))
    assert b'r="B3"' not in xml and b'r="C3"' not in xml


def test_new_sheet_values(tmp_path):
    p = cases(tmp_path)
    rows = [["As of", dt.datetime(2026, 11, 23, 8, 0)], ["Day", dt.date(2026, 11, 23)], ["Wait", Duration.of(hours=2)], ["Ratio", 0.25], [], ["x", None, "far"]]
    write_workbook(p, p, [], [NewSheet("CX summary", rows, formats={(1, 1): CellFormat(num_fmt="d mmm yyyy"), (3, 1): CellFormat(num_fmt="0%")})])
    ws = openpyxl.load_workbook(p)["CX summary"]
    assert ws["B1"].number_format == "yyyy-mm-dd hh:mm" and ws["B2"].number_format == "d mmm yyyy"
    assert ws["B3"].value == dt.timedelta(hours=2) and ws["B4"].number_format == "0%"
    assert ws["C6"].value == "far" and ws.column_dimensions["B"].width > 10


# ------------------------------------------------------------------ refusals and atomic replace
def test_refuses_chart_sheet_unknown_sheet_and_lock(tmp_path):
    p = cases(tmp_path)
    with pytest.raises(WorkbookError, match="no sheet 'Nope'"):
        write_workbook(p, p, [SheetEdit("Nope", [ColumnWrite(0, 1, "x", 2, [1])])])
    (tmp_path / "~$cases.xlsx").write_text("x")
    with pytest.raises(WorkbookError, match="close it in Excel first"):
        write_workbook(p, p, [SheetEdit("Cases", [ColumnWrite(9, 1, "x", 2, [1])])])
    with pytest.raises(ValueError, match="kind"):
        xw._check_edit(SheetEdit("Cases", [ColumnWrite(9, 1, "x", 2, [1], "money")]), "x")


def test_other_destination_and_permissions(tmp_path):
    p = cases(tmp_path)
    os.chmod(p, 0o640)
    before = p.read_bytes()
    out = tmp_path / "out" / "result.xlsx"
    out.parent.mkdir()
    write_workbook(p, out, [SheetEdit("Cases", [ColumnWrite(4, 1, "Level", 2, [1])])])
    assert p.read_bytes() == before
    assert openpyxl.load_workbook(out)["Cases"]["E2"].value == 1
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    with pytest.raises(WorkbookError, match="could not be written"):
        write_workbook(p, tmp_path / "missing" / "x.xlsx", [])


@pytest.mark.parametrize("where", ["copy", "sheet", "new-part"])
def test_failure_mid_write_leaves_original(tmp_path, monkeypatch, where):
    p = cases(tmp_path)
    before = p.read_bytes()
    calls = {"n": 0}

    def boom(*a, **k):
        calls["n"] += 1
        raise RuntimeError("disk full")

    if where == "copy":
        real = xw._raw_copy

        def flaky(*a, **k):  # fail after a few entries went out
            calls["n"] += 1
            if calls["n"] == 4:
                raise OSError(28, "No space left on device")
            return real(*a, **k)

        monkeypatch.setattr(xw, "_raw_copy", flaky)
    elif where == "sheet":
        monkeypatch.setattr(xw.SheetRewriter, "tail", boom)
    else:
        monkeypatch.setattr(xw, "new_sheet_xml", lambda *a, **k: iter([b"<worksheet>", boom()]))
    with pytest.raises((WorkbookError, RuntimeError)):
        write_workbook(p, p, [SheetEdit("Cases", [ColumnWrite(4, 1, "Level", 2, [1, 2])])], [NewSheet("Issues", [["x"]])])
    assert calls["n"] >= 1
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["cases.xlsx"]


# ------------------------------------------------------------------ rows blank in the same columns, joined as groups
_SPARSE_VALUES = st.sampled_from(["Welcome coupon", "SMS", None, None, None, 3, dt.date(2026, 11, 23)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(64, 500), st.data())
def test_rows_grouped_by_their_blank_columns_are_the_rows_made_cell_by_cell(n, data):
    """Columns with blank cells (a journey's are mostly blank) are made per group of rows
    blank in the same columns: the sheet must be byte for byte the one made cell by cell."""
    from cxrules.columnar import Coded, np

    few = data.draw(st.booleans())  # rows of a few shapes (grouped), or any (many groups: cell by cell)
    if few:
        shapes = data.draw(st.lists(st.tuples(st.lists(_SPARSE_VALUES, min_size=1, max_size=3), st.sampled_from([0, 1, 2])),
                                    min_size=1, max_size=n // 32))
        picked = [shapes[i] for i in data.draw(st.lists(st.integers(0, len(shapes) - 1), min_size=n, max_size=n))]
        pattern, codes = [p for p, _ in picked], [c for _, c in picked]
    else:
        pattern = data.draw(st.lists(st.lists(_SPARSE_VALUES, min_size=1, max_size=3), min_size=n, max_size=n))
        codes = data.draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n))
    table = ["Welcome coupon", None, "SMS"]
    codes = np.array(codes)
    dense = Coded(["Call", "Mail"], np.arange(n) % 2)
    rows = "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in range(1, n + 2))
    xml = f'<?xml version="1.0"?><worksheet xmlns="x"><dimension ref="A1:A{n + 1}"/><sheetData>{rows}</sheetData></worksheet>'.encode()
    columns = [ColumnWrite(2, 1, "Step", 2, dense, "text"),
               ColumnWrite(3, 1, "Next", 2, Coded(table, codes), "text"),  # blank by code
               ColumnWrite(4, 1, "Due", 2, [p[0] for p in pattern], "general"),  # blank in a plain list
               ColumnWrite(5, 1, "Never", 2, [None] * n, "text"),
               ColumnWrite(6, 1, "Owner", 2, Coded(["Ann", None], np.zeros(n, int)), "text"),  # a blank entry no row holds
               ColumnWrite(7, 1, "Channel", 2, [p[-1] for p in pattern], "general")]
    grouped = []

    def run(by_blanks):
        out = []
        rewriter = xw.SheetRewriter(SheetEdit("S", columns), xw.Styles(None), False, "S", xw.WriteReport())
        if by_blanks:
            real = rewriter._by_blanks
            rewriter._by_blanks = lambda *a: grouped.append(real(*a)) or grouped[-1]
        else:
            rewriter._by_blanks = lambda *a: None
        rewriter.run(iter([xml]), out.append)
        return b"".join(out)

    assert run(True) == run(False)
    holes = [[c == 1 for c in codes.tolist()], [p[0] is None for p in pattern], [p[-1] is None for p in pattern]]
    if few:  # the grouped path is the one taken when a column is blank in some rows, not all
        assert (grouped[0] is not None) == any(any(h) and not all(h) for h in holes)


# ------------------------------------------------------------------ new sheets' long runs of rows, a column at a time
_FORMATS = [CellFormat(bold=True), CellFormat(fill="FFC7CE", font_color="9C0006"), CellFormat(num_fmt="0.00"),
            CellFormat(bold=True), CellFormat(num_fmt="yyyy-mm-dd ddd"), CellFormat(), CellFormat(wrap=True)]
_CELLS = st.one_of(st.none(), st.sampled_from(["", " lead", "a&b", "x\ny", "_x0041_", "Ann", "Ann"]),
                   st.text(max_size=6), st.integers(-3, 3), st.booleans(), st.sampled_from([1.5, float("nan"), 2.0]),
                   st.sampled_from([dt.date(2026, 11, 2), dt.datetime(2026, 11, 2, 9, 30), dt.time(8, 15), Duration(3600)]),
                   st.sampled_from([dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
                                    dt.datetime(2026, 11, 2, 1, 30, tzinfo=dt.timezone.utc)]))  # one moment, two zones


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_new_sheets_long_runs_made_a_column_at_a_time_are_the_rows_made_one_by_one(data):
    """A call list or an Issues list (runs of rows of one length) is made a column at a time:
    its XML and the styles it adds are those of making it row by row."""
    rows = []
    for k in range(data.draw(st.integers(1, 3))):  # blocks: a long run first, then any rows
        width = data.draw(st.integers(1 if k == 0 else 0, 4))
        pool = data.draw(st.lists(st.lists(_CELLS, min_size=width, max_size=width), min_size=1, max_size=4))
        rows += [list(pool[k]) for k in data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=40 if k == 0 else 0, max_size=80))]
    n = len(rows)
    cell = st.tuples(st.integers(0, n - 1), st.integers(0, 5))
    formats = data.draw(st.dictionaries(cell, st.sampled_from(_FORMATS), max_size=40))
    row_formats = data.draw(st.dictionaries(st.sampled_from([0, 1, n - 1]), st.sampled_from(_FORMATS), max_size=2))
    wrap = data.draw(st.booleans()) and data.draw(st.booleans())
    col_formats = data.draw(st.dictionaries(st.integers(0, 4), st.sampled_from(_FORMATS[:6] + [_FORMATS[6]] * wrap), max_size=2))
    ns = NewSheet("S", rows, formats=formats, row_formats=row_formats, col_formats=col_formats)
    if not any(f.wrap for f in col_formats.values()) and not any(j >= len(rows[i]) for i, j in formats if 2 <= i < 38):
        assert xw._column_runs(ns)  # the first block's middle is a run

    assert _new_sheet_made(ns, True) == _new_sheet_made(ns, False)


def _new_sheet_made(ns, by_column: bool):
    styles = xw.Styles(None)
    with pytest.MonkeyPatch.context() as mp:
        if not by_column:
            mp.setattr(xw, "_column_runs", lambda ns: [])
        cache = xw.new_sheet_styles(ns, styles)
        return b"".join(xw.new_sheet_xml(ns, cache, False, None)), styles.to_bytes()


def test_a_run_with_one_moment_in_two_zones_and_cells_with_nothing_to_write():
    east, utc = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))), dt.datetime(2026, 11, 2, 1, 30, tzinfo=dt.timezone.utc)
    rows = [[east if i % 2 else utc, "" if i % 3 else "x", float("nan")] for i in range(40)]
    ns = NewSheet("S", rows, col_formats={1: CellFormat(), 2: CellFormat(bold=True)})
    assert xw._column_runs(ns) == [(0, 40)]
    xml, _ = _new_sheet_made(ns, True)
    assert (xml, _) == _new_sheet_made(ns, False)
    assert xml.count(b"<v>46328.395833") == 20 and xml.count(b"<v>46328.0625") == 20  # each its wall time


@given(st.text())
def test_text_width_counts_a_wide_character_twice_and_any_other_once(s):
    assert xw.text_width(s) == sum(2 if ord(ch) >= 0x2E80 else 1 for ch in s)
