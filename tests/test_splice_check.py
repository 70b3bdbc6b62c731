"""A big sheet whose source a child process found plain is written with only the writer's
own XML parsed (cxrules.splice_check); any other sheet is parsed whole as it is written.
Both routes must write the same bytes, and refuse the same broken results."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import writers
from cxrules import rulesets, xlsx_write, xmlparts
from cxrules.evaluation import Evaluator
from cxrules.recalc import recalc
from cxrules.splice_check import FragmentCheck, Plain, SourceCheck
from cxrules.workbook import WorkbookError
from cxrules.xmlparts import PartError

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.datetime(2026, 11, 23, 10, 0)
SAMPLE = ROOT / "workbooks" / "sample_en.xlsx"


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(rulesets.load_or_raise(ROOT / "rules"))


class Routes:
    """Records which route each written sheet took."""

    def __init__(self, monkeypatch, splice: bool):
        self.taken: dict[str, bool] = {}
        if splice:  # every sheet counts as big, and the child's answer is always waited for
            monkeypatch.setattr(xmlparts, "CHECK_ELSEWHERE_FROM", 0)
            monkeypatch.setattr(xlsx_write, "_CHECK_GRACE", 120)
        real = xlsx_write._trusted

        def spy(source_checks, part, info, head):
            got = real(source_checks, part, info, head)
            self.taken[part] = got is not None
            return got

        monkeypatch.setattr(xlsx_write, "_trusted", spy)


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}


def _both_routes(src: Path, tmp_path: Path, evaluator, monkeypatch):
    """(result of the whole-parse route, of the splice route, the routes the second took)."""
    out = {}
    for splice in (False, True):
        with monkeypatch.context() as m:
            routes = Routes(m, splice)
            book = tmp_path / ("splice" if splice else "whole") / src.name  # the same name: the summary shows it
            book.parent.mkdir(exist_ok=True)
            shutil.copy(src, book)
            try:
                recalc(book, evaluator, as_of=AS_OF)
                out[splice] = _parts(book)
            except WorkbookError as e:
                out[splice] = str(e).replace(str(book), "BOOK")
    return out[False], out[True], routes.taken


@pytest.mark.parametrize("writer", ["openpyxl", "xlsxwriter", "xlsxwriter-constant-memory", "pyexcelerate", "excel", "sample"])
def test_a_plain_sheet_is_written_the_same_by_both_routes(writer, tmp_path, evaluator, monkeypatch):
    made = tmp_path / "made"
    made.mkdir()
    src = SAMPLE if writer == "sample" else writers.WRITERS[writer](made)
    whole, splice, taken = _both_routes(src, tmp_path, evaluator, monkeypatch)
    assert isinstance(whole, dict), whole
    assert taken and all(taken.values()), taken  # every data sheet went the splice route
    assert splice == whole
    # and the result is plain again: a second run takes the same route to the same bytes
    again = tmp_path / "again.xlsx"
    again.write_bytes((tmp_path / "splice" / src.name).read_bytes())
    routes = Routes(monkeypatch, True)
    recalc(again, evaluator, as_of=AS_OF)
    assert all(routes.taken.values())


def _sample_with(tmp_path: Path, edit) -> Path:
    """The sample workbook with its customers sheet's XML edited."""
    part = "xl/worksheets/sheet1.xml"
    parts = _parts(SAMPLE)
    parts[part] = edit(parts[part])
    out = tmp_path / "edited.xlsx"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return out


def _in_third_row(xml: bytes, piece: bytes) -> bytes:
    """piece put right after the third row's start tag."""
    at = xml.index(b">", xml.index(b'<row r="3"')) + 1
    return xml[:at] + piece + xml[at:]


# well-formed sources the writer's byte-level splice must not take for plain
TRAPS = {
    "a comment holding a row end": lambda x: _in_third_row(x, b"<!-- </row><row r='9'> -->"),
    "a CDATA section holding a row end": lambda x: _in_third_row(x, b'<c r="Z3" t="inlineStr"><is><t><![CDATA[</row>]]></t></is></c>'),
    "a processing instruction": lambda x: _in_third_row(x, b"<?cx </row>?>"),
    "a row end tag with a space": lambda x: x.replace(b"</row>", b"</row >", 3),
    "a row in a cell": lambda x: _in_third_row(x, b'<c r="Z3" t="inlineStr"><is><row r="5"/><t>x</t></is></c>'),
    "an element named like a row": lambda x: _in_third_row(x, b"<rowish/>"),
    "a '>' in a row's attribute": lambda x: x.replace(b'<row r="4"', b'<row r="4" x=">"', 1),
    "not UTF-8": lambda x: b'<?xml version="1.0" encoding="ISO-8859-1"?>' + x,
}


@pytest.mark.parametrize("trap", TRAPS)
def test_a_sheet_that_is_not_plain_is_parsed_whole(trap, tmp_path, evaluator, monkeypatch):
    src = _sample_with(tmp_path, TRAPS[trap])
    assert _parts(src) != _parts(SAMPLE)
    check = SourceCheck(src, "xl/worksheets/sheet1.xml")
    assert check.verdict() is None  # the child saw the trap
    whole, splice, taken = _both_routes(src, tmp_path, evaluator, monkeypatch)
    assert taken["xl/worksheets/sheet1.xml"] is False
    assert splice == whole  # the same bytes, or the same refusal


def test_the_child_finds_the_sample_plain_and_names_its_bytes():
    with zipfile.ZipFile(SAMPLE) as z:
        info = z.getinfo("xl/worksheets/sheet1.xml")
    assert SourceCheck(SAMPLE, info.filename).verdict() == Plain(info.CRC, info.file_size)


def test_a_malformed_source_is_refused_by_both_routes(tmp_path, evaluator, monkeypatch):
    src = _sample_with(tmp_path, lambda x: _in_third_row(x, b"<c r='A3'><v>1</v>"))  # a cell left open
    assert SourceCheck(src, "xl/worksheets/sheet1.xml").verdict() is None
    whole, splice, _ = _both_routes(src, tmp_path, evaluator, monkeypatch)
    assert isinstance(whole, str) and splice == whole


def test_a_source_changed_after_its_check_is_parsed_whole(tmp_path, evaluator, monkeypatch):
    """The verdict names the bytes it read (CRC and size); other bytes get the whole parse."""
    book = tmp_path / "book.xlsx"
    shutil.copy(SAMPLE, book)
    routes = Routes(monkeypatch, True)
    monkeypatch.setattr(SourceCheck, "verdict", lambda self, wait=0: Plain(1, 2))
    recalc(book, evaluator, as_of=AS_OF)
    assert routes.taken and not any(routes.taken.values())


# bugs in the writer's own XML: the splice route parses all of it
BUGS = {
    "a cell value": ("_rest", lambda real: lambda self, k, v, tv: (real(self, k, v, tv) or b"/>").replace(b"</c>", b"</v>")),
    "a header row": ("_edit_row", lambda real: lambda self, row, tag, content, ops: real(self, row, tag, content, ops).replace(b"</row>", b"")),
    "the tail": ("tail", lambda real: lambda self, tail: real(self, tail).replace(b"</worksheet>", b"</sheet>")),
    "the head": ("head", lambda real: lambda self, head: real(self, head).replace(b"<sheetData>", b"<sheetData><x>")),
}


@pytest.mark.parametrize("bug", BUGS)
@pytest.mark.parametrize("splice", [False, True], ids=["whole parse", "splice route"])
def test_a_bug_in_the_writers_own_xml_is_refused(bug, splice, tmp_path, evaluator, monkeypatch):
    name, make = BUGS[bug]
    routes = Routes(monkeypatch, splice)
    monkeypatch.setattr(xlsx_write.SheetRewriter, name, make(getattr(xlsx_write.SheetRewriter, name)))
    book = tmp_path / "book.xlsx"
    shutil.copy(SAMPLE, book)
    before = book.read_bytes()
    with pytest.raises(WorkbookError) as e:
        recalc(book, evaluator, as_of=AS_OF)
    assert "the result failed its own check" in str(e.value) and "would not be well-formed XML" in str(e.value)
    assert book.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["book.xlsx"]
    assert all(routes.taken.values()) is splice


def test_fragments_are_checked_each_in_its_own_element():
    """Two halves of an element in two places must not pass as one."""
    head = b'<?xml version="1.0"?><worksheet xmlns="m" xmlns:x14ac="e"><sheetData>'
    ok = FragmentCheck("s.xml", head)
    ok.add(b'<row r="1" x14ac:dyDescent="0.25"><c r="A1"><v>1</v></c></row>')  # the root's prefixes are in scope
    ok.cells([b"><v>2</v></c>", None])
    ok.head(head)
    ok.finish(b"</worksheet>")
    halves = FragmentCheck("s.xml", head)
    halves.add(b"<c>")
    halves.add(b"</c>")
    with pytest.raises(PartError, match="would not be well-formed"):
        halves.flush()
    lost = FragmentCheck("s.xml", head)
    with pytest.raises(PartError, match="namespaces"):
        lost.head(b'<worksheet xmlns="m"><sheetData>')


# ------------------------------------------------------------------ the child's verdict, against a reference
ITEMS = {
    "row": b'<row r="1" spans="1:2"><c r="A1"><v>1</v></c></row>',
    "bare row": b"<row><c><v>1</v></c></row>",
    "closed row": b'<row r="2"/>',
    "single quotes": b"<row r='3' ht='15'><c r='A3'><v>1</v></c></row>",
    "row in a group": b'<g><row r="4"><c r="A4"/></row></g>',
    "text": b" \n ",
    "comment": b"<!-- x -->",
    "pi": b"<?x y?>",
    "cdata": b'<row r="5"><c r="A5" t="inlineStr"><is><t><![CDATA[a]]></t></is></c></row>',
    "row in a row": b'<row r="6"><c r="A6"/><row r="7"/></row>',
    "open row in a row": b'<row r="6"><row r="7"></row></row>',
    "rowish": b"<rowx/>",
    "rowish in a row": b'<row r="8"><c r="A8"><is><rowx/></is></c></row>',
    "gt in a value": b'<row r="9" x="a&gt;b>"/>',
    "spaced end": b'<row r="10"></row >',
    "second sheetData": b"<g><sheetData/></g>",
}
BAD = {"comment", "pi", "cdata", "row in a row", "open row in a row", "rowish", "rowish in a row", "gt in a value",
       "spaced end", "second sheetData"}


def _sheet(items: list[str], tail: bytes) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            b"<sheetData>" + b"".join(ITEMS[i] for i in items) + b"</sheetData>" + tail + b"</worksheet>")


@given(items=st.lists(st.sampled_from(sorted(ITEMS)), max_size=8),
       tail=st.sampled_from([b"", b'<rowBreaks count="1"><brk id="3"/></rowBreaks>', b"<pageMargins left='0.7'/>"]))
@settings(max_examples=int(os.environ.get("CXRULES_SPLICE_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_child_finds_a_sheet_plain_exactly_when_its_rows_are(items, tail, tmp_path):
    """Plain: nothing the splice could take for a row's end, no row in a row, one sheetData;
    rows in other elements, closed rows, single quotes and page breaks after the rows are fine."""
    xml = _sheet(items, tail)
    path = tmp_path / f"t{abs(hash((tuple(items), tail)))}.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", xml)
    got = SourceCheck(path, "xl/worksheets/sheet1.xml").verdict()
    assert (got is not None) == (not BAD & set(items)), (items, tail)


@pytest.mark.parametrize("splice", [False, True], ids=["whole parse", "splice route"])
def test_a_cells_text_that_looks_like_a_rows_spans_is_kept(splice, tmp_path, evaluator, monkeypatch):
    """A row's spans are widened for the new columns; the same words in a cell's text are data."""
    import openpyxl

    text = ' spans="1:2"'
    src = _sample_with(tmp_path, lambda x: x.replace(b'<row r="5">', b'<row r="5" spans="1:2">', 1).replace(
        b'<row r="6">', b'<row r="6"><c r="Z6" t="inlineStr"><is><t>' + text.encode() + b"</t></is></c>", 1))
    Routes(monkeypatch, splice)
    book = tmp_path / "book.xlsx"
    shutil.copy(src, book)
    recalc(book, evaluator, as_of=AS_OF)
    ws = openpyxl.load_workbook(book)["Customers"]
    assert ws["Z6"].value == text
    with zipfile.ZipFile(book) as z:
        xml = z.read("xl/worksheets/sheet1.xml")
    assert b'<row r="5" spans="1:2">' not in xml  # the row's own spans now reach the new columns
