"""The writer on workbooks Excel saved: everything it does not own comes out identical."""
from __future__ import annotations

import datetime as dt
import html
import re
import shutil
import zipfile
import xml.etree.ElementTree as ET
from pathlib import Path

import openpyxl
import pytest

from cxrules.workbook import (
    BarChart,
    CellFormat,
    ChartSeries,
    ColumnWrite,
    Highlight,
    NewSheet,
    SheetEdit,
    col_letter,
    open_workbook,
    write_workbook,
)
from cxrules.xlsx_read import parse_rels, rels_path, sheet_tables, workbook_part

CORPUS = Path(__file__).resolve().parent / "corpus" / "excel-made"
FILES = sorted(CORPUS.glob("*.xls*"))

NUMBERS = [1, 2.5, None, -4, 1e-7]
DATES = [dt.date(2026, 1, 2), dt.date(1999, 12, 31), None, dt.date(2026, 11, 23), dt.date(2000, 2, 29)]
STAMPS = [dt.datetime(2026, 1, 2, 9, 30), None, dt.datetime(2026, 11, 23, 23, 59), dt.datetime(2000, 1, 1), dt.datetime(2026, 3, 1, 12, 0)]
TEXTS = ["escalate", "<b>&amp; \"q\"", " lead space", "中文 客户", "line\nbreak"]


def _cells(xml: bytes) -> dict[str, bytes]:
    return {m.group(1).decode(): m.group(0) for m in re.finditer(rb'<c r="([A-Z]+\d+)"[^>]*?(?:/>|>.*?</c>)', xml, re.S)}


def _outside_sheet_data(xml: bytes) -> tuple[bytes, bytes]:
    a = re.search(rb"<sheetData\b[^>]*?/?>", xml)
    b = xml.find(b"</sheetData>")
    return xml[: a.start()], xml[b + len(b"</sheetData>") :] if b >= 0 else xml[a.end() :]


@pytest.mark.parametrize("src", FILES, ids=lambda p: p.name)
def test_write_into_excel_made_workbook(src: Path, tmp_path: Path):
    path = tmp_path / src.name
    shutil.copy(src, path)
    with open_workbook(path) as wb:
        sheet = wb.worksheets[0]
        before = wb.read_sheet(sheet.name)
        date1904 = wb.date1904
    used = [before.first_col + len(r) for r in before.rows] + [c2 + 1 for _, _, _, c2 in before.merged] + [t.ref[3] + 1 for t in before.tables]
    col = max(used + [0])
    hr = before.first_row
    edit = SheetEdit(sheet.name, [
        ColumnWrite(col, hr, "Score", hr + 1, NUMBERS, "number"),
        ColumnWrite(col + 1, hr, "Due", hr + 1, DATES, "date"),
        ColumnWrite(col + 2, hr, "Next contact", hr + 1, STAMPS, "datetime"),
        ColumnWrite(col + 3, hr, "Action", hr + 1, TEXTS, "text"),
        ColumnWrite(col + 4, hr, "VIP", hr + 1, [True, False, None, True, False], "boolean"),
    ], [Highlight(col, 1, "FFEB9C", hr + 1, hr + 5, col, col + 4), Highlight(col, ">2", "FFC7CE", hr + 1, hr + 5)])
    issues = NewSheet("Issues", [["Sheet", "Row", "Column", "Problem"], [sheet.name, hr + 1, "A", "a problem"]],
                      row_formats={0: CellFormat(bold=True)}, freeze_rows=1, autofilter=True)
    summary = NewSheet("CX summary", [["Level", "Count"], ["none", 3], ["level 1", 2]], formats={(2, 0): CellFormat(fill="FFEB9C")},
                       charts=[BarChart("Levels", (1, 2, 0), [ChartSeries(1, 2, 1)])])

    zin = zipfile.ZipFile(src)
    orig = {i.filename: i for i in zin.infolist()}
    report = write_workbook(path, path, [edit], [issues, summary])
    zout = zipfile.ZipFile(path)
    assert zout.testzip() is None
    out = {i.filename: i for i in zout.infolist()}

    # the parts we may change; every other part is byte-identical, compressed bytes too
    wbp = workbook_part(zin)
    wb_rels = parse_rels(zin.read(rels_path(wbp)).decode(), wbp)
    owned = {sheet.part, wbp, rels_path(wbp), "[Content_Types].xml", "docProps/app.xml"}
    owned |= {r.part for r in wb_rels if r.type.endswith("/styles")}
    owned |= {t.part for t in sheet_tables(zin, sheet.part)}
    for name, info in orig.items():
        if name in owned:
            continue
        assert name in out, f"{name} was lost"
        assert zout.read(name) == zin.read(name), f"{name} changed"
        assert (out[name].CRC, out[name].compress_size) == (info.CRC, info.compress_size)
    kept = [n for n in zout.namelist() if n in orig]
    assert kept == [n for n in zin.namelist() if n in kept], "entries were reordered"
    assert not [p for p in report.problems if p.code == "formula-kept"]  # the new column holds no formula
    for name in set(out) - set(orig) | (owned & set(out)):
        if name.endswith((".xml", ".rels")):
            ET.fromstring(zout.read(name))  # well-formed

    app = zout.read("docProps/app.xml").decode() if "docProps/app.xml" in out else ""
    if "<TitlesOfParts>" in app:
        assert "<vt:lpstr>Issues</vt:lpstr><vt:lpstr>CX summary</vt:lpstr>" in app

    # the edited sheet: every other cell and element exactly as it was
    old_xml, new_xml = zin.read(sheet.part), zout.read(sheet.part)
    old_cells, new_cells = _cells(old_xml), _cells(new_xml)
    ours = {f"{col_letter(c)}{r}" for c in range(col, col + 5) for r in range(hr, hr + 6)}
    for ref, cell in old_cells.items():
        if ref not in ours:
            assert new_cells.get(ref) == cell, f"cell {ref} changed"
    old_head, old_tail = _outside_sheet_data(old_xml)
    new_head, new_tail = _outside_sheet_data(new_xml)
    strip = lambda x: re.sub(rb'<dimension ref="[^"]*"/>|<cols>.*?</cols>', b"", x)  # noqa: E731
    assert strip(new_head) == strip(old_head)
    test = re.escape(f"${col_letter(col)}${hr + 1}".replace("$" + str(hr + 1), str(hr + 1)).encode())
    ours_cf = rb"<conditionalFormatting [^>]*><cfRule [^>]*><formula>[^<]*" + test + rb"[^<]*</formula></cfRule></conditionalFormatting>"
    af = lambda x: re.sub(rb'(<autoFilter ref=")[^"]*', rb"\1", x)  # noqa: E731  (a filter right of the data grows)
    assert af(re.sub(ours_cf, b"", new_tail)) == af(old_tail)
    assert new_tail.count(b"<conditionalFormatting") == old_tail.count(b"<conditionalFormatting") + 2
    # existing styles keep their indexes
    styles = next(r.part for r in wb_rels if r.type.endswith("/styles"))
    old_xfs = re.search(rb"<cellXfs\b[^>]*>(.*?)</cellXfs>", zin.read(styles), re.S).group(1)
    assert re.search(rb"<cellXfs\b[^>]*>(.*?)</cellXfs>", zout.read(styles), re.S).group(1).startswith(old_xfs)

    # read back with calamine: values and types; old values unchanged
    with open_workbook(path) as wb:
        after = wb.read_sheet(sheet.name)
        names = [s.name for s in wb.sheets]
        assert names[: len(orig_names(zin))] == orig_names(zin)
        assert set(wb.cxrules_sheets) == {"Issues", "CX summary"}
        assert wb.read_sheet("Issues").rows[1][3] == "a problem"
    assert after.value(hr, col) == "Score" and after.value(hr, col + 3) == "Action"
    for i in range(5):
        r = hr + 1 + i
        assert after.value(r, col) == NUMBERS[i]
        assert after.value(r, col + 1) == DATES[i]
        got = after.value(r, col + 2)
        if type(got) is dt.date:  # calamine gives a date for midnight
            got = dt.datetime.combine(got, dt.time())
        assert got == STAMPS[i] or (STAMPS[i] and abs((got - STAMPS[i]).total_seconds()) < 0.01)
        assert after.value(r, col + 3) == TEXTS[i]
        assert after.value(r, col + 4) == [True, False, None, True, False][i]
    for i, row in enumerate(before.rows):
        for j, v in enumerate(row):
            if before.first_col + j < col:
                assert after.value(before.first_row + i, before.first_col + j) == v

    # and with openpyxl: number formats
    ox = openpyxl.load_workbook(path)
    ws = ox[sheet.name]
    assert ws.cell(hr + 1, col + 2).number_format == "yyyy-mm-dd"
    assert ws.cell(hr + 2, col + 2).value.date() == DATES[1]
    assert ws.cell(hr + 1, col + 3).number_format == "yyyy-mm-dd hh:mm"
    assert ws.cell(hr + 1, col + 3).value == STAMPS[0]
    assert ws.cell(hr + 2, col + 1).value == 2.5
    assert ws.cell(hr + 1, col + 4).value == TEXTS[0]
    assert ws.cell(hr + 1, col + 5).value is True
    assert len(ws.conditional_formatting) >= 2
    assert ox["Issues"].freeze_panes == "A2" and ox["Issues"]["A1"].font.b
    assert ox["CX summary"]["A3"].fill.fgColor.rgb == "FFFFEB9C"
    assert len(ox["CX summary"]._charts) == 1
    assert not date1904  # the 1904 date system is tested in test_workbook_write


def orig_names(z: zipfile.ZipFile) -> list[str]:
    wbp = workbook_part(z)
    return [html.unescape(n) for n in re.findall(r'<sheet\b[^>]*?\bname="([^"]*)"', z.read(wbp).decode())]


def test_second_run_replaces_our_sheets_and_rules(tmp_path: Path):
    path = tmp_path / "chart_bar01.xlsx"
    shutil.copy(CORPUS / "chart_bar01.xlsx", path)
    summary = NewSheet("CX summary", [["Level", "Count"], ["none", 3], ["level 1", 2]], charts=[BarChart("Levels", (1, 2, 0), [ChartSeries(1, 2, 1)])])
    edit = SheetEdit("Sheet1", [ColumnWrite(3, 1, "Level", 2, [1, 2, 3, 1], "number")], [Highlight(3, 1, "FFEB9C", 2, 5, 0, 3)])
    write_workbook(path, path, [edit], [summary])
    first = zipfile.ZipFile(path)
    names1, styles1 = sorted(first.namelist()), first.read("xl/styles.xml")
    write_workbook(path, path, [edit], [summary])
    second = zipfile.ZipFile(path)
    assert sorted(second.namelist()) == names1  # no stray drawings or charts
    assert second.read("xl/styles.xml") == styles1  # styles reused, not appended again
    sheet = second.read("xl/worksheets/sheet1.xml")
    assert sheet.count(b"<conditionalFormatting") == 1
    wbx = second.read("xl/workbook.xml").decode()
    assert wbx.count('name="CX summary"') == 1 and wbx.count("_cxrules_made") == 1
