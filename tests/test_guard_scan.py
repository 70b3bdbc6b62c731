"""The guard scan before python-calamine reads a sheet: the used area (calamine lays out rows x
columns of it and aborts the process on a huge one) and the questions the error / formula scan
asks of each piece, held to exact references on generated sheet XML."""
from __future__ import annotations

import io
import re
import threading
import xml.etree.ElementTree as ET
import zipfile

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from cxrules.xlsx_read import (
    MAX_COL, MAX_GRID_CELLS, MAX_ROW, NS_MAIN, UsedArea, WorkbookError, _ahead, _Marks, _NO_REF, cell_ref, col_index,
    col_letter, iter_row_chunks, range_ref, scan_sheet_xml,
)

PART = "xl/worksheets/sheet1.xml"
HEAD = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{NS_MAIN}" xmlns:x="{NS_MAIN}">'
        '<dimension ref="A1"/><sheetData>')
TAIL = '</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>'


# ------------------------------------------------------------------ the exact reference
def reference(xml: bytes):
    """The verdict from every cell position, read with ElementTree: with a cell placed by
    counting (no r=), where Excel places each cell; else every r= of a row or a cell (a row's
    own r= counts as a row of the area too), read as letters then digits."""
    root = ET.fromstring(xml)
    local = lambda name: name.rsplit("}", 1)[-1]  # noqa: E731
    rows: list[int] = []
    cols: list[int] = []
    cells = [el for el in root.iter() if local(el.tag) == "c"]
    if any(c.get("r") is None for c in cells):
        row_no = 0
        for row in (el for el in root.iter() if local(el.tag) == "row"):
            try:
                row_no = int(row.get("r") or row_no + 1)
            except ValueError:
                return ("damaged",)
            col_no = -1
            for c in (el for el in row if local(el.tag) == "c"):
                r = c.get("r")
                if not r:  # (r="" too)
                    col_no += 1
                else:
                    m = re.fullmatch(r"([A-Za-z]{1,3})([0-9]+)", r)
                    if not m:
                        return ("damaged",)
                    row_no, col_no = int(m.group(2)), col_index(m.group(1))
                rows.append(row_no)
                cols.append(col_no)
    else:
        for el in root.iter():
            for name, value in el.attrib.items():
                m = re.match(r"([A-Za-z]*)([0-9]*)(?:['\"]|\Z)", value)  # A1' counts as A1: a quote may end it
                if local(name) == "r" and local(el.tag) in ("row", "c") and m:
                    if m.group(2):
                        rows.append(int(m.group(2)))
                    if m.group(1):  # (8 letters or more: one column far past the grid, not spelled out)
                        cols.append(col_index(m.group(1)) if len(m.group(1)) < 8 else 1 << 40)
    r1, r2 = (min(rows), max(rows)) if rows else (0, -1)  # (-1: no row at all)
    c1, c2 = (min(cols), max(cols)) if cols else (0, 0)  # rows without cells: column A
    if r2 > MAX_ROW or c2 >= MAX_COL:
        return ("outside", cell_ref(r2, c2))
    if rows and (r2 - r1 + 1) * (c2 - c1 + 1) > MAX_GRID_CELLS:
        return ("too big", range_ref(r1, c1, r2, c2))
    return ("allowed",)


def _zip(xml: bytes) -> zipfile.ZipFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(PART, xml)
    return zipfile.ZipFile(io.BytesIO(buf.getvalue()))


def outcome(area: UsedArea, zf: zipfile.ZipFile):
    try:
        area.check("book.xlsx", "Sheet1", zf, PART)
    except WorkbookError as e:
        msg = str(e)
        assert msg.startswith("book.xlsx: sheet 'Sheet1' ") and "\n" not in msg, msg
        m = re.search(r"cell (\S+) is outside Excel's grid", msg)
        if m:
            return ("outside", m.group(1))
        m = re.search(r"has cells across (\S+) \(([\d,]+) rows x ([\d,]+) columns\), more than cxrules reads", msg)
        assert m, msg
        return ("too big", m.group(1))
    except ValueError:  # a cell reference that is not one: read_sheet reports the sheet as damaged
        return ("damaged",)
    return ("allowed",)


def verdict_scanned(xml: bytes, cuts: list[int]):
    """As Workbook.read_sheet: scan_sheet_xml over the part's bytes in pieces cut anywhere."""
    zf = _zip(xml)
    ends = sorted(set(cuts)) + [len(xml)]
    pieces = [xml[a:b] for a, b in zip([0] + ends, ends) if b > a]
    area = UsedArea()
    try:
        scan_sheet_xml(zf, PART, area.see, pieces=pieces)
    except ValueError:  # an error or formula cell whose reference is not one (damaged): the area saw every piece
        pass
    return outcome(area, zf)


def verdict_fed(xml: bytes, row_ends: list[int]):
    """UsedArea fed directly, in pieces cut after some of the </row>s; and how it read them."""
    zf = _zip(xml)
    ends = sorted(set(row_ends)) + [len(xml)]
    area = UsedArea()
    for a, b in zip([0] + ends, ends):
        if b > a:
            area.see(xml[a:b])
    how = "by counting" if area.counted else "again (odd spelling)" if area.odd else "again (far)" if area.far else "at once"
    return outcome(area, zf), how


# ------------------------------------------------------------------ generated sheets
LETTERS = st.one_of(
    st.sampled_from(["A", "B", "Z", "AA", "ZZ", "AAA", "XFC", "XFD"]),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=3),
)
FAR_LETTERS = st.one_of(  # past column XFD, or in lower case (read as upper case)
    st.sampled_from(["XFE", "XGA", "ZZZ", "AAAA", "xfd", "xfe", "zz", "Ab"]),
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=4),
)
ROWS = st.one_of(st.integers(1, 30), st.integers(1, 200_000), st.integers(MAX_ROW - 3, MAX_ROW))
FAR_ROWS = st.one_of(  # 7 digits past the grid's edge, 8 digits, row 0
    st.integers(MAX_ROW + 1, MAX_ROW + 3), st.integers(1_000_000, 9_999_999), st.integers(10_000_000, 99_999_999), st.just(0))


@st.composite
def corner(draw):
    """A cell at the far corner of an area of about MAX_GRID_CELLS from A1: either side of the limit."""
    col = draw(st.sampled_from([25, 701, 702, 16383, 9999]) | st.integers(26, MAX_COL - 1))
    row = MAX_GRID_CELLS // (col + 1) + draw(st.integers(-1, 2))
    return col_letter(col), row


@st.composite
def ref(draw, far: bool):
    kind = draw(st.sampled_from(["plain"] * 6 + ["corner"] * 2 + ["zero"] + (["far row", "far column", "digits", "not one"] if far else [])))
    if kind == "not one":  # not a reference, or one only up to a quote
        return draw(st.sampled_from(["A1x", "12AB", "A1.5", "XFD1048577Z", "ABCDEFGH12", "A1'", "XFE1'", "A1048577'x", "\u00c91",
                                     "A\u00e91", "1e5", "A 1", "", "A", "AAAAA"]))
    if kind == "corner":
        letters, row = draw(corner())
        return f"{letters}{row}"
    if kind == "digits":  # no column letters: a row number alone
        return str(draw(ROWS))
    letters = draw(FAR_LETTERS if kind == "far column" else LETTERS)
    row = draw(FAR_ROWS if kind == "far row" else ROWS)
    return f"{letters}{'0' * draw(st.integers(1, 3)) if kind == 'zero' else ''}{row}"  # leading zeros: the same row


ODD_SPELLINGS = ["r='{}'", 'r = "{}"', 'r ="{}"', "r= '{}'", 'r\n="{}"', 'r\t=\t"{}"']
BODIES = ["<v>1</v>", "", "<v>#N/A</v>", "<f>SUM(A1:A2)</f>", "<is><t>plain</t></is>"]
BODIES_WITH_EQ = ["<f>A1=B1</f><v>0</v>", "<is><t>x = y</t></is>"]  # an '=' in text: the references are read again


@st.composite
def cell(draw, style):
    spelling = draw(st.sampled_from(ODD_SPELLINGS)) if "odd" in style and draw(st.booleans()) else 'r="{}"'
    r = None if "counted" in style and draw(st.booleans()) else draw(ref("far" in style))
    if r is not None and "'" in r:  # a value with a ' in it stays in double quotes
        spelling = 'r="{}"'
    attrs = [spelling.format(r)] if r is not None else []
    if draw(st.booleans()):
        attrs.insert(draw(st.integers(0, len(attrs))), 's="1"')  # r= not always first
    body = draw(st.sampled_from(BODIES + (BODIES_WITH_EQ if "eq" in style else [])))
    if body == "<v>#N/A</v>":
        attrs.append('t="e"')
    tag = "x:c" if "prefixed" in style else "c"
    return f"<{tag} {' '.join(attrs)}>{body}</{tag}>" if attrs else f"<{tag}>{body}</{tag}>"


@st.composite
def sheet(draw):
    """Usually as a writer writes it; now and then with references spelled oddly, cells placed
    by counting, '=' in text, references past the grid, or a namespace prefix."""
    style = {k for k in ("odd", "counted", "eq", "far", "prefixed") if draw(st.integers(0, 4 if k == "far" else 6)) == 0}
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        r = draw(st.one_of(st.none(), ROWS, corner().map(lambda c: c[1]), *([FAR_ROWS] if "far" in style else [])))
        spelling = draw(st.sampled_from(['r="{}"'] + (ODD_SPELLINGS if "odd" in style else [])))
        tag = "x:row" if "prefixed" in style else "row"
        open_tag = f'<{tag} {spelling.format(r)} spans="1:3">' if r is not None else f"<{tag}>"
        rows.append(open_tag + "".join(draw(st.lists(cell(style), max_size=5))) + f"</{tag}>")
    return (HEAD + "".join(rows) + TAIL).encode()


@settings(max_examples=250, deadline=None)
@given(sheet(), st.data())
@example((HEAD + '<row r="1"><c r="A1"><v>1</v></c></row><row r="6103"><c r="XFD6103"/></row>' + TAIL).encode(), None)
@example((HEAD + '<row r="1"><c r="A1"><v>1</v></c></row><row r="6104"><c r="XFD6104"/></row>' + TAIL).encode(), None)
@example((HEAD + "<row r='1'><c r = 'A1'><v>1</v></c></row><row r='6104'><c r='XFD6104'/></row>" + TAIL).encode(), None)
@example((HEAD + '<row r="1"><c r="a1"><v>1</v></c></row><row r="1048576"><c r="zz1048576"/></row>' + TAIL).encode(), None)
@example((HEAD + '<row r="1"><c r="A1"/></row><row r="1048576"><c r ="XFE1048576"/></row>' + TAIL).encode(), None)
@example((HEAD + '<row r="1"><c><v>1</v></c><c/></row><row r="1048577"><c><v>1</v></c></row>' + TAIL).encode(), None)
@example((HEAD + '<row r="1048576"><c r="A1048576"/><c r="B01048577"/></row>' + TAIL).encode(), None)
@example((HEAD + '<row r="1"><c r="A00001"/></row><row r="6104"><c r="XFD6104"/></row>' + TAIL).encode(), None)
@example((HEAD + '<row r="1"><c r="A1"/><c r="AAAA1"/></row>' + TAIL).encode(), None)
@example((HEAD + '<row><c r="AAAAA"/><c r="A1\'"/><c r="XFE2\'x"/></row>' + TAIL).encode(), None)
def test_the_used_area_verdict_is_the_exact_one(xml, data):
    want = reference(xml)
    cuts = data.draw(st.lists(st.integers(1, len(xml) - 1), max_size=6), label="cuts") if data else []
    row_ends = [m.end() for m in re.finditer(rb"</(?:x:)?row>", xml)]
    row_cuts = data.draw(st.lists(st.sampled_from(row_ends), max_size=4), label="row ends") if data and row_ends else row_ends
    fed, how = verdict_fed(xml, row_cuts)
    assert verdict_scanned(xml, cuts) == want
    assert fed == want
    event(want[0])
    event("references read " + how)


# both sides of each limit, through each way of reading the references
SIDES = [
    # (cells, verdict); every sheet also has a cell in A1
    ('<c r="XFD6103"/>', ("allowed",)),
    ('<c r="XFD6104"/>', ("too big", "A1:XFD6104")),
    ('<c r="ZZ142450"/>', ("allowed",)),
    ('<c r="ZZ142451"/>', ("too big", "A1:ZZ142451")),
    ('<c r="Z1048576"/>', ("allowed",)),
    ('<c r="Z1048577"/>', ("outside", "Z1048577")),
    ('<c r="XFE1"/>', ("outside", "XFE1")),
    ('<c r="A99999999"/>', ("outside", "A99999999")),
    ('<c r="AAAA1"/>', ("outside", "AAAA1")),
]


@pytest.mark.parametrize("far, want", SIDES)
@pytest.mark.parametrize("how", ["usual", "single quotes", "spaces", "lower case", "text with =", "row refs only in rows"])
def test_both_sides_of_each_limit_whichever_way_the_references_are_written(far, want, how):
    first = '<c r="A1"><v>1</v></c>'
    if how == "single quotes":
        far = far.replace('"', "'")
    elif how == "spaces":
        far = far.replace("r=", "r = ")
    elif how == "lower case":
        far, want = far.lower(), (want[0], *(w.upper() for w in want[1:]))
    elif how == "text with =":
        first = '<c r="A1" t="inlineStr"><is><t>a=b</t></is></c>'
    row = re.search(r"\d+", far).group(0)
    xml = (HEAD + f'<row r="1">{first}</row><row r="{row}">{far}</row>' + TAIL).encode()
    if how == "row refs only in rows":  # the far cell placed by counting: column A of its row
        xml = xml.replace(far.encode(), b"<c><v>1</v></c>")
        want = ("outside", f"A{row}") if int(row) > MAX_ROW else ("allowed",)
    assert reference(xml) == want
    assert verdict_scanned(xml, []) == want
    assert verdict_fed(xml, [])[0] == want


def test_usual_references_are_read_once_as_words(monkeypatch):
    """A sheet as writers write it (upper or lower case, up to 7 bytes a reference) is read
    in the one pass of the scan: no byte-by-byte reading, no second pass over the part."""
    from cxrules import xlsx_read

    def not_here(*a, **k):
        raise AssertionError("read again")

    for name in ("_used_area", "_used_area_counted"):
        monkeypatch.setattr(xlsx_read, name, not_here)
    monkeypatch.setattr(UsedArea, "_refs_long", not_here)
    rows = "".join(f'<row r="{r}" spans="1:3"><c r="{c}{r}" s="1"><v>1</v></c><c r="{c.lower()}{r}" t="e"><v>#N/A</v></c></row>'
                   for r, c in ((1, "A"), (2, "XFD"), (99, "Zz"), (6103, "B"), (99999, "AB")))
    xml = (HEAD + rows + TAIL).encode()
    area = UsedArea()
    scan_sheet_xml(_zip(xml), PART, area.see, pieces=[xml])
    assert area.area() == (1, 0, 99999, MAX_COL - 1)
    with pytest.raises(WorkbookError, match=r"has cells across A1:XFD99999 \(99,999 rows x 16,384 columns\)"):
        area.check("book.xlsx", "Sheet1", None, PART)


def test_a_refused_sheet_is_refused_before_calamine_with_its_name_and_the_cells(tmp_path):
    """Through open_workbook and read_sheet, as recalc uses them (the part unpacked in a thread)."""
    import openpyxl

    from cxrules.xlsx_read import open_workbook

    path = tmp_path / "wide.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Wide"
    wb.active.append(["a", "b"])
    wb.save(path)
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"]
    parts["xl/worksheets/sheet1.xml"] = sheet.replace(b"</sheetData>", b'<row r="6104"><c r="XFD6104"><v>1</v></c></row></sheetData>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in parts.items():
            z.writestr(n, b)
    with open_workbook(path) as book, pytest.raises(WorkbookError) as e:
        book.read_sheet("Wide")
    assert f"{path}: sheet 'Wide' has cells across A1:XFD6104 (6,104 rows x 16,384 columns)" in str(e.value)


# ------------------------------------------------------------------ the questions asked of a piece
PIECE = st.lists(st.sampled_from(["<c", ":c", "<x:c", "</x:c>", " r=\"", "r=", "=", "\"", "'", ">", "<", " ", "\t", "\n", "t=\"e\"",
                                  "<f", "<f>", "x", "A1", "s=\"1\"", "</row>", "c", "r"]), max_size=40).map(lambda p: "".join(p).encode())


@settings(max_examples=300, deadline=None)
@given(PIECE, st.sampled_from([b't="e"', b"<f", b"<c", b":c"]))
def test_a_piece_holds_a_text_exactly_when_a_bytes_search_finds_it(piece, text):
    assert _Marks(piece).has(text) == (text in piece)


_NO_REF_FIRST = [re.compile(rb'<c(?:>|\s(?!r="))'), re.compile(rb':c(?:>|\s(?!r="))')]  # the regex the scan asked first


@settings(max_examples=300, deadline=None)
@given(PIECE)
def test_a_cell_placed_by_counting_is_found_exactly_as_the_regexes_find_it(piece):
    marks = _Marks(piece)
    refs = marks.eq[(marks.before == ord("r")) & (marks.after == ord('"'))]
    want = any(p.search(piece) for p in _NO_REF_FIRST) and any(p.search(piece) for p in _NO_REF)
    assert marks.cell_without_ref(piece, refs, marks.a[refs - 2]) == want


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"row>", b"")) | st.sampled_from([b"</row>", b"</x:row>", b"<row>", b"row>"]),
                max_size=30),
       st.integers(1, 64), st.integers(1, 64))
def test_row_chunks_are_the_part_cut_after_row_end_tags(bits, size, block):
    xml = b"".join(bits)
    pieces = [xml[i:i + size] for i in range(0, len(xml), size)]
    chunks = list(iter_row_chunks(None, PART, pieces=pieces, block=block))
    assert b"".join(chunks) == xml
    assert all(chunks) and all(re.search(rb"</(x:)?row>$", c) for c in chunks[:-1])
    # a piece holds more than one row end only within its first `block` bytes (or across two unpacked pieces)
    assert sum(len(c) > block + 6 and len(re.findall(rb"</(?:x:)?row>", c)) > 1 for c in chunks) <= len(pieces)


# ------------------------------------------------------------------ unpacking ahead, in a thread
def test_pieces_made_ahead_come_in_order_and_a_failure_comes_after_them():
    made = []

    def pieces():
        for k in range(3):
            made.append(k)
            yield b"piece %d" % k
        raise zipfile.BadZipFile("Bad CRC-32 for file 'xl/worksheets/sheet1.xml'")

    got = []
    with pytest.raises(zipfile.BadZipFile, match="Bad CRC-32"):
        for p in _ahead(pieces()):
            got.append(p)
    assert got == [b"piece 0", b"piece 1", b"piece 2"]


def test_a_reader_that_stops_early_stops_the_thread_and_closes_the_pieces():
    closed = threading.Event()

    def pieces():
        try:
            while True:
                yield b"x" * 1000
        finally:
            closed.set()

    before = threading.active_count()
    it = _ahead(pieces())
    assert next(it) == b"x" * 1000
    it.close()
    assert closed.is_set() and threading.active_count() == before
