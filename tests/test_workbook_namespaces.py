"""Workbooks whose writers spelled the XML namespaces their own way come out of recalc
readable, with every part cxrules wrote well-formed and meaning what it should."""
from __future__ import annotations

import datetime as dt
import posixpath
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from lxml import etree

from cxrules import rulesets
from cxrules.evaluation import Evaluator
from cxrules.recalc import recalc
from cxrules.xmlparts import NS_MAIN, NS_REL

RULES = Path(__file__).resolve().parents[1] / "rules"
AS_OF = dt.datetime(2026, 11, 23, 10, 0)
HEADER = ["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Last contact"]
ROWS = [
    ["A", dt.datetime(2026, 11, 1), 14, 600000, dt.datetime(2026, 11, 10)],
    ["B", dt.datetime(2026, 3, 1), 1, 200, None],
    ["C", dt.datetime(2026, 10, 20), 5, 9000, dt.datetime(2026, 9, 1)],
]


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(rulesets.load_or_raise(RULES))


def _openpyxl_book(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(HEADER)
    for r in ROWS:
        ws.append(r)
    ws.column_dimensions["B"].width = 14
    ws["G1"] = "Notes"
    wb.save(path)
    return path


def _rewrite(path: Path, edit) -> None:
    """Apply edit(name, bytes) -> bytes to every part, keeping the zip otherwise as it is."""
    with zipfile.ZipFile(path) as z:
        parts = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            z.writestr(info, edit(info.filename, data))


def _prefix_main(name: str, data: bytes) -> bytes:
    """The main namespace bound to 'x:' (as .NET writers do), packages' own to 'pr:' / 'ct:'."""
    for ns, pre in ((NS_MAIN, b"x"), ("http://schemas.openxmlformats.org/package/2006/relationships", b"pr"),
                    ("http://schemas.openxmlformats.org/package/2006/content-types", b"ct")):
        decl = b'xmlns="' + ns.encode() + b'"'
        if decl not in data:
            continue
        data = data.replace(decl, b"xmlns:" + pre + b'="' + ns.encode() + b'"')
        data = re.sub(rb"<(/?)(?![?!])([A-Za-z_][\w.-]*)(?=[\s/>])", lambda m: b"<" + m.group(1) + pre + b":" + m.group(2), data)
    return data


def _r_on_each_sheet(name: str, data: bytes) -> bytes:
    """xmlns:r declared only on each <sheet> (older openpyxl), not on the root."""
    if name != "xl/workbook.xml":
        return data
    decl = b' xmlns:r="' + NS_REL.encode() + b'"'
    data = data.replace(decl, b"", 1)
    return re.sub(rb"<sheet\b", b"<sheet" + decl, data)


def _empty_defined_names(name: str, data: bytes) -> bytes:
    if name != "xl/workbook.xml" or b"<definedNames" in data:
        return data
    return data.replace(b"</sheets>", b"</sheets><definedNames/>", 1)


VARIANTS = {
    "openpyxl": [],
    "empty-definedNames": [_empty_defined_names],
    "xmlns-r-on-each-sheet": [_r_on_each_sheet],
    "prefixed-main-namespace": [_prefix_main],
    "both": [_r_on_each_sheet, _prefix_main],
}


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_recalc_of_a_differently_spelled_workbook_is_readable(variant, tmp_path, evaluator):
    path = _openpyxl_book(tmp_path / f"{variant}.xlsx")
    for edit in VARIANTS[variant]:
        _rewrite(path, edit)
    before = _parts(path)
    rep = recalc(path, evaluator, as_of=AS_OF)
    assert rep.written and [s.sheet for s in rep.sheets] == ["Customers"]
    after = _parts(path)

    # every XML part parses, and the workbook's names are where the schema wants them
    for name, data in after.items():
        if name.endswith((".xml", ".rels")):
            etree.fromstring(data)
    wb = etree.fromstring(after["xl/workbook.xml"])
    assert len(wb.findall(f"{{{NS_MAIN}}}definedNames")) <= 1
    names = [etree.QName(c).localname for c in wb]
    assert names.index("sheets") < names.index("definedNames")
    rels = {r.get("Id"): r.get("Target") for r in etree.fromstring(after["xl/_rels/workbook.xml.rels"])}
    sheets = wb.find(f"{{{NS_MAIN}}}sheets")
    titles = []
    for s in sheets:
        rid = s.get(f"{{{NS_REL}}}id")  # the attribute is in the relationships namespace, whatever its prefix
        assert rid in rels, (s.get("name"), etree.tostring(s))
        t = rels[rid]
        assert (t.lstrip("/") if t.startswith("/") else posixpath.normpath("xl/" + t)) in after
        titles.append(s.get("name"))
    assert titles == ["Customers", "CX summary", "Contact plan", "Issues"]

    # the results, as openpyxl reads them, are the rules' answers
    book = openpyxl.load_workbook(path)
    got = [list(r) for r in book["Customers"].iter_rows(values_only=True)]
    head = got[0]
    assert head[:5] == HEADER and head[6] == "Notes"
    expect = evaluator.evaluate([dict(zip(["customer", "last_purchase", "frequency", "monetary", "last_contact"], r)) for r in ROWS],
                                ["tier"], AS_OF)
    tiers = [r[head.index("Tier")] for r in got[1:]]
    assert tiers == expect.columns["tier"] and tiers[0] == "VIP"
    # the stamp, linked from the package's relationships in their writer's prefixes
    assert {p.name: p.value for p in book.custom_doc_props.props}["cxrules as of"] == "2026-11-23 10:00:00"

    # parts cxrules does not own are the writer's bytes
    for name in before:
        if name.startswith("docProps/core") or name == "xl/theme/theme1.xml":
            assert after[name] == before[name]

    # a second run changes nothing
    recalc(path, evaluator, as_of=AS_OF)
    assert _parts(path) == after


def test_prefixed_sheet_is_written_in_the_default_namespace_with_the_same_meaning(tmp_path, evaluator):
    path = _openpyxl_book(tmp_path / "x.xlsx")
    _rewrite(path, _prefix_main)
    assert b"<x:worksheet" in _parts(path)["xl/worksheets/sheet1.xml"]
    recalc(path, evaluator, as_of=AS_OF)
    sheet = etree.fromstring(_parts(path)["xl/worksheets/sheet1.xml"])
    assert sheet.tag == f"{{{NS_MAIN}}}worksheet"
    cells = {c.get("r"): c for c in sheet.iter(f"{{{NS_MAIN}}}c")}
    assert cells["A2"].find(f"{{{NS_MAIN}}}v") is not None or cells["A2"].find(f"{{{NS_MAIN}}}is") is not None
    assert "H1" in cells and "H2" in cells  # new columns after G (Notes)


def _without_styles(path: Path) -> None:
    """Drop styles.xml (as minimal writers do) and leave cells naming style ids."""
    with zipfile.ZipFile(path) as z:
        parts = [(i, z.read(i.filename)) for i in z.infolist() if i.filename != "xl/styles.xml"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            if info.filename == "[Content_Types].xml":
                data = re.sub(rb'<Override PartName="/xl/styles.xml"[^>]*/>', b"", data)
            elif info.filename == "xl/_rels/workbook.xml.rels":
                data = re.sub(rb'<Relationship [^>]*styles"[^>]*/>', b"", data)
            elif info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<c r="A2"', b'<c r="A2" s="3"', 1).replace(b'<c r="A3"', b'<c r="A3" s="5"', 1)
            z.writestr(info, data)


def test_a_package_without_styles_keeps_its_cells_look_and_reruns_identically(tmp_path, evaluator):
    path = _openpyxl_book(tmp_path / "bare.xlsx")
    _without_styles(path)
    assert "xl/styles.xml" not in _parts(path)
    recalc(path, evaluator, as_of=AS_OF)
    first = _parts(path)
    styles = etree.fromstring(first["xl/styles.xml"])
    xfs = styles.find(f"{{{NS_MAIN}}}cellXfs")
    # cells named formats 3 and 5 before; those formats are plain defaults, ours come after
    assert len(xfs) > 6 and int(xfs.get("count")) == len(xfs)
    for xf in list(xfs)[:6]:
        assert (xf.get("numFmtId"), xf.get("fontId"), xf.get("fillId")) == ("0", "0", "0")
    ct = first["[Content_Types].xml"]
    assert ct.count(b'PartName="/xl/styles.xml"') == 1
    openpyxl.load_workbook(path)
    recalc(path, evaluator, as_of=AS_OF)
    assert _parts(path) == first


def test_a_writer_bug_fails_safe_with_the_original_untouched(tmp_path, evaluator, monkeypatch):
    """Every part cxrules wrote is parsed back before the original is replaced."""
    from click.testing import CliRunner

    from cxrules import xlsx_write
    from cxrules.cli import cli

    path = _openpyxl_book(tmp_path / "book.xlsx")
    before = path.read_bytes()
    real = xlsx_write.new_sheet_xml

    def broken(*args, **kwargs):  # a bug that leaves an element open
        for piece in real(*args, **kwargs):
            yield piece.replace(b"</sheetData>", b"<row></sheetData>")

    monkeypatch.setattr(xlsx_write, "new_sheet_xml", broken)
    r = CliRunner().invoke(cli, ["recalc", str(path), "--as-of", "2026-11-23 10:00", "--rules", str(RULES)])
    assert r.exit_code == 1
    assert (f"{path}: the result failed its own check (part xl/worksheets/sheet2.xml would not be well-formed XML "
            "(mismatched tag, line 2)), so the workbook was not changed; please report this with the workbook") in r.output
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx"]  # no temp file left


@pytest.mark.parametrize("elsewhere", [False, True], ids=["checked in process", "checked by a child process"])
def test_a_sheet_rewrite_bug_fails_safe_too(tmp_path, evaluator, monkeypatch, elsewhere):
    """The rewritten sheet is parsed as it is written (a big one by a child process, with
    the same answer)."""
    from cxrules import xlsx_write, xmlparts
    from cxrules.workbook import WorkbookError

    if elsewhere:  # as for a sheet of several MB
        monkeypatch.setattr(xmlparts, "CHECK_ELSEWHERE_FROM", 0)
        monkeypatch.setattr(xlsx_write, "CHECK_ELSEWHERE_FROM", 0)

    path = _openpyxl_book(tmp_path / "book.xlsx")
    before = path.read_bytes()
    real = xlsx_write.SheetRewriter.tail
    monkeypatch.setattr(xlsx_write.SheetRewriter, "tail", lambda self, tail: real(self, tail).replace(b"</worksheet>", b"</sheet>"))
    with pytest.raises(WorkbookError) as e:
        recalc(path, evaluator, as_of=AS_OF)
    assert str(e.value) == (f"{path}: the result failed its own check (part xl/worksheets/sheet1.xml would not be well-formed XML "
                            "(mismatched tag, line 1)), so the workbook was not changed; please report this with the workbook")
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx"]
    if elsewhere:  # and a good one passes
        monkeypatch.undo()
        monkeypatch.setattr(xmlparts, "CHECK_ELSEWHERE_FROM", 0)
        monkeypatch.setattr(xlsx_write, "CHECK_ELSEWHERE_FROM", 0)
        assert recalc(path, evaluator, as_of=AS_OF).written
