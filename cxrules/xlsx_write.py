"""Writing results into .xlsx/.xlsm workbooks in place, touching only the parts we own.

Edited sheets are rewritten by streaming through their XML; every other zip entry is
copied byte for byte (its compressed bytes too). The file is replaced atomically.
Coordinates: rows are Excel row numbers (1-based), columns 0-based indexes (A = 0).

Choices:
- Text goes in as inline strings, so sharedStrings.xml is never rewritten.
- Row colours are conditional formats (formula on the row's own cell), not cell fills:
  they follow the rows when a person sorts, show in Excel's rule manager, and a rerun
  replaces them (same formula) instead of piling up. Legends use the same colours as
  cell fills (CellFormat.fill), so they match.
- Overwriting a formula cell drops calcChain.xml (Excel rebuilds it) rather than editing
  it: its entries inherit sheet ids from the entry before, so removing one is fragile.
- Sheets we make carry a hidden sheet-local defined name (MARKER); only those are
  replaced on the next run, a person's sheet of the same name never is. One made under
  its name in another language (NewSheet.also) is renamed, not made twice.
- An edited sheet's header row is frozen and printed on every page only where the sheet
  has no pane and no print titles: a sheet's views and page setup are the person's.
"""
from __future__ import annotations

import copy
import datetime as dt
from itertools import chain, compress, count, repeat
import operator
from operator import add as _add
import math
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import __version__, files
from .package_guard import vet_package
from .problems import WARNING, Problem
from .values import Duration, display
from .xlsx_package import Package, add_rel, check_failed, new_rels, rel_target, update_app_titles, verify_written
from .xmlparts import CHECK_ELSEWHERE_FROM, PartError, main_prefix, unprefix, unprefix_stream, well_formed_checker
from .xlsx_read import (
    NS_MAIN,
    OWNED_NAME,
    NS_REL,
    REL_STYLES,
    CellError,
    Sheet,
    Table,
    WorkbookError,
    _xml_unescape,
    cell_ref,
    check_not_open,
    check_readable,
    col_index,
    col_letter,
    parse_range,
    parse_rels,
    range_ref,
    read_text,
    rels_path,
    sheet_tables,
)

KINDS = ("number", "text", "date", "datetime", "boolean", "duration", "general")
MAX_ROW, MAX_COL = 1048576, 16384
MARKER = "_cxrules_made"  # hidden sheet-local defined name on sheets cxrules made
VERSION_NAME = "_cxrules_version"  # hidden workbook-level defined name: the cxrules that wrote the workbook
CT_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
CT_DRAWING = "application/vnd.openxmlformats-officedocument.drawing+xml"
CT_CHART = "application/vnd.openxmlformats-officedocument.drawingml.chart+xml"
CT_STYLES = "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"
REL_DRAWING = NS_REL + "/drawing"
REL_CHART = NS_REL + "/chart"


# ------------------------------------------------------------------ the API
@dataclass
class ColumnWrite:
    """One output column: header at header_row (if given) and values from first_row down.

    None clears a cell. kind decides the number format; a value that does not fit the
    kind (text in a date column, say) is written as what it is.
    """

    col: int
    header_row: int
    header: str | None
    first_row: int
    values: Sequence
    kind: str = "general"
    width: float | None = None  # column width for a new column (None: from header and kind)
    num_fmt: str | None = None  # number format for numbers (None: the cell's own, dates cleared)
    wrap: bool = False  # a new column's texts wrap (longer than its width)


@dataclass
class Highlight:
    """Colour rows whose cell in test_col equals `equals`: a conditional format, so it
    follows the rows when a person re-sorts, and shows in Excel's rule manager.

    `equals` is a number, text or boolean; text like '>0' or '<=3' compares with a number.
    """

    test_col: int
    equals: Any
    fill: str  # RGB like 'FFEB9C'
    first_row: int
    last_row: int
    first_col: int | None = None  # span coloured; None: test_col only
    last_col: int | None = None
    font_color: str | None = None


@dataclass
class SheetEdit:
    sheet: str
    columns: list[ColumnWrite] = field(default_factory=list)
    highlights: list[Highlight] = field(default_factory=list)
    # header cells (row, col) of every column cxrules owns on the sheet after this write,
    # recorded in the workbook (OWNED_NAME); None leaves the record as it is
    owned: set[tuple[int, int]] | None = None
    # the data's header row: frozen on screen and printed on every page, unless the sheet
    # already has a pane or print titles (those are the person's, never changed)
    header_row: int | None = None


@dataclass(frozen=True)
class CellFormat:
    num_fmt: str | None = None
    bold: bool = False
    fill: str | None = None
    font_color: str | None = None
    wrap: bool = False


@dataclass
class ChartSeries:
    """Values in column `col`, rows first..last (indexes into NewSheet.rows)."""

    first: int
    last: int
    col: int
    name: str | None = None  # None: the cell above `first`


@dataclass
class BarChart:
    title: str
    categories: tuple[int, int, int]  # (first, last, col) indexes into NewSheet.rows
    series: list[ChartSeries]
    anchor: tuple[int, int] = (1, 4)  # (row index, col) of the top-left corner
    size: tuple[int, int] = (8, 16)  # (columns, rows) covered
    horizontal: bool = True
    stacked: bool = False  # the series' bars on top of each other (a total per category)
    date_format: str = "mm-dd ddd"  # categories that are days show so on the axis


@dataclass
class NewSheet:
    """A sheet cxrules makes (and replaces on the next run): rows[i][j] goes to row i+1, column j."""

    name: str
    rows: list[list]
    widths: dict[int, float] | None = None  # None: fitted to the contents
    formats: dict[tuple[int, int], CellFormat] = field(default_factory=dict)  # (i, j)
    row_formats: dict[int, CellFormat] = field(default_factory=dict)  # i -> format for the row
    freeze_rows: int = 0  # also printed on every page
    autofilter: bool = False  # filter buttons on rows[0]
    charts: list[BarChart] = field(default_factory=list)
    col_formats: dict[int, CellFormat] = field(default_factory=dict)  # j -> format of the column's cells
    fit_width: bool = False  # printed landscape, one page wide
    also: tuple[str, ...] = ()  # its names in other languages: a sheet an earlier run made under one is this one
    # called with the writer's problems about the edited sheets just before this sheet is
    # written, so an Issues sheet lists them too
    complete: Any = None


@dataclass
class WriteReport:
    problems: list[Problem] = field(default_factory=list)
    sheet_names: dict[str, str] = field(default_factory=dict)  # asked -> written


# ------------------------------------------------------------------ values to XML
# XML 1.0 cannot hold these at all, and UTF-8 cannot hold lone surrogates: where text has
# no _xHHHH_ form (attributes, formulas, chart titles), esc shows them as U+FFFD
_NOT_XML = [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0xD800, 0xE000), 0xFFFE, 0xFFFF]
_XML_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", **{chr(c): "\ufffd" for c in _NOT_XML}})
_CTRL = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")  # \r too: XML would read it as \n
_SURR = re.compile("[\ud800-\udfff]")
_DATE_FMT, _DATETIME_FMT, _DURATION_FMT, _TIME_FMT = "yyyy-mm-dd", "yyyy-mm-dd hh:mm", "[h]:mm:ss", "hh:mm:ss"
_EPOCH = dt.datetime(1899, 12, 30)
MAX_TEXT = 32767
SPLICE_PIECE = 2 << 20  # bytes of an edited sheet spliced at a time: a piece and its rows stay in the cache (8 MB: 0.3 s slower at 100,000 rows)


def esc(s: str) -> str:
    return s.translate(_XML_ESC)


# anything _ooxml_text changes: most texts (names, IDs) have none, and are returned as they are
_OOXML_PLAIN = re.compile('[\x00-\x08\x0b-\x1f&<>"\ud800-\udfff\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)')


def _ooxml_text(s: str) -> str:
    """Control characters as Excel writes them (_x0001_); a literal '_x0041_' stays literal."""
    if not _OOXML_PLAIN.search(s):
        return s
    if _CTRL.search(s):
        s = _CTRL.sub(lambda m: "_x005F_" if m.group(0) == "_" else "_x%04X_" % ord(m.group(0)), s)
    if _SURR.search(s):
        s = _SURR.sub("\ufffd", s)
    return esc(s)


def _inline(s: str) -> str:
    sp = ' xml:space="preserve"' if s[:1].isspace() or s[-1:].isspace() or "\n" in s else ""
    return f"<is><t{sp}>{_ooxml_text(s)}</t></is>"


def _num(x) -> str | None:
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return None
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _serial(v, date1904: bool) -> float:
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.replace(tzinfo=None)
        d = v - _EPOCH
        x = d.days + (d.seconds + d.microseconds / 1e6) / 86400
    else:
        x = float((v - _EPOCH.date()).days)
    return x - 1462 if date1904 else x


def encode(v, kind: str, date1904: bool):
    """(format need, t attribute, inner XML) for a value; None for a blank cell.

    Needs: 'keep' the cell's format, 'num' a non-date format, or a format code.
    """
    if v is None or (type(v) is str and not v):
        return None
    if kind == "text" and not isinstance(v, (str, CellError)):
        v = display(v)
    if isinstance(v, str):
        if len(v) > MAX_TEXT:
            v = v[:MAX_TEXT]
        return "keep", ' t="inlineStr"', _inline(v)
    if isinstance(v, bool):
        return "keep", ' t="b"', "<v>1</v>" if v else "<v>0</v>"
    if isinstance(v, CellError):
        return "keep", ' t="e"', f"<v>{esc(v.code)}</v>"
    if isinstance(v, dt.datetime):
        if kind == "date":
            return _DATE_FMT, "", f"<v>{_num(_serial(v.date(), date1904))}</v>"
        return _DATETIME_FMT, "", f"<v>{_num(round(_serial(v, date1904), 10))}</v>"
    if isinstance(v, dt.date):
        return (_DATETIME_FMT if kind == "datetime" else _DATE_FMT), "", f"<v>{_num(_serial(v, date1904))}</v>"
    if isinstance(v, dt.time):
        x = (v.hour * 3600 + v.minute * 60 + v.second + v.microsecond / 1e6) / 86400
        return _TIME_FMT, "", f"<v>{_num(x)}</v>"
    if isinstance(v, (Duration, dt.timedelta)):
        return _DURATION_FMT, "", f"<v>{_num(v.total_seconds() / 86400)}</v>"
    try:
        s = _num(v)
    except (TypeError, ValueError):
        return "keep", ' t="inlineStr"', _inline(str(v))
    if s is None:
        if v != v:  # NaN: nothing to show
            return None
        return "keep", ' t="e"', "<v>#NUM!</v>"
    return (_DURATION_FMT if kind == "duration" else "num"), "", f"<v>{s}</v>"


# ------------------------------------------------------------------ small XML helpers
def set_attr(tag: bytes, name: bytes, value: bytes) -> bytes:
    """tag with attribute name=value (replaced or added); works on start tags."""
    pat = re.compile(rb"(\s" + re.escape(name) + rb'=")[^"]*(")')
    if pat.search(tag):
        return pat.sub(lambda m: m.group(1) + value + m.group(2), tag, count=1)
    end = len(tag) - (2 if tag.endswith(b"/>") else 1)
    return tag[:end] + b" " + name + b'="' + value + b'"' + tag[end:]


_ATTR_PATS: dict[bytes, re.Pattern] = {}


def get_attr(tag: bytes, name: bytes) -> bytes | None:
    pat = _ATTR_PATS.get(name)
    if pat is None:
        pat = _ATTR_PATS[name] = re.compile(rb"\s" + re.escape(name) + rb'="([^"]*)"')
    m = pat.search(tag)
    return m.group(1) if m else None


_WIDE = re.compile("[\u2e80-\U0010ffff]")


def text_width(s: str) -> float:
    """Width in Excel's character units: CJK and other wide characters count double."""
    return len(s) if s.isascii() else len(s) + len(_WIDE.findall(s))


def _kind_width(kind: str) -> float:
    return {"date": 11, "datetime": 17, "duration": 10}.get(kind, 0)


# ------------------------------------------------------------------ sheet views
MAX_FROZEN = 10  # a header further down would freeze half a laptop screen: not frozen
_SHEETVIEWS = re.compile(rb"<sheetViews\b[^>]*?(?:/>|>.*?</sheetViews>)", re.S)
_SHEETVIEW = re.compile(rb"<sheetView\b[^>]*?(/?)>")
_AFTER_VIEWS = re.compile(rb"<(?:sheetFormatPr|cols|sheetData)\b")


def freeze_header(head: bytes, row: int) -> bytes:
    """The sheet's head with rows 1..row frozen, when the person has no pane of their own.

    The sheet's views are the person's: a view that already has a pane (frozen or split),
    or that is scrolled down (its top-left cell below row 1), is left exactly as it is.
    """
    pane = b'<pane ySplit="%d" topLeftCell="A%d" activePane="bottomLeft" state="frozen"/>' % (row, row + 1)
    m = _SHEETVIEWS.search(head)
    if m is None:
        at = _AFTER_VIEWS.search(head)
        if at is None:
            return head
        views = b'<sheetViews><sheetView workbookViewId="0">' + pane + b"</sheetView></sheetViews>"
        return head[: at.start()] + views + head[at.start() :]
    views = m.group(0)
    if b"<pane" in views:
        return head

    def add(v):
        tag = v.group(0)
        top = get_attr(tag, b"topLeftCell")
        if top and re.sub(rb"^[A-Z]+", b"", top) not in (b"1", b""):
            return tag
        if v.group(1):  # <sheetView .../>
            return tag[:-2] + b">" + pane + b"</sheetView>"
        return tag + pane

    new = _SHEETVIEW.sub(add, views)
    return head[: m.start()] + new + head[m.end() :]


# ------------------------------------------------------------------ sheet rewriting
_INF = (float("inf"), float("-inf"))
_COLS: dict[bytes, int] = {}
_ROW_R = re.compile(rb'\sr="(\d+)"')
_CELL = re.compile(rb"<c\b([^>]*?)(/>|>(.*?)</c>)", re.S)
_CELL_RA = re.compile(rb'\sr="([A-Z]{1,3})(\d+)"')
_SHEETDATA = re.compile(rb"<sheetData\b[^>]*?(/?)>")
_MEMO_TYPES = (str, int, bool, float, dt.date, dt.datetime)  # values a column repeats; hashable
_FACTOR_TYPES = {type(None), *_MEMO_TYPES}
_OTHER_ROW = re.compile(rb'<row(?! r="\d)')  # a row whose first attribute is not its number


_HEAD = re.compile(rb"([A-Z]{1,3})\d")  # the start of a reference: column letters, then the row's first digit
_ROW_NUM = re.compile(rb'<row r="(\d+)"')
_SPANS = re.compile(rb'(<row\b[^>]*?) spans="([^"]*)"')  # in a row's tag, not in a cell's text
_TAIL_AFTER_CF = re.compile(
    rb"<(?:dataValidations|hyperlinks|printOptions|pageMargins|pageSetup|headerFooter|rowBreaks|colBreaks|"
    rb"customProperties|cellWatches|ignoredErrors|smartTags|drawing|legacyDrawing|legacyDrawingHF|picture|"
    rb"oleObjects|controls|webPublishItems|tableParts|extLst|mc:AlternateContent)\b|</worksheet>"
)


class SheetRewriter:
    """Streams one worksheet's XML, writing the edit's columns and highlights into it."""

    def __init__(self, edit: SheetEdit, styles: Styles, date1904: bool, sheet_name: str, report: WriteReport):
        self.edit, self.styles, self.date1904, self.name, self.report = edit, styles, date1904, sheet_name, report
        self.cols = sorted(edit.columns, key=lambda c: c.col)
        self.col_set = {c.col for c in self.cols}
        lo, hi = MAX_ROW + 1, 0
        for c in self.cols:
            rows = ([c.header_row] if c.header is not None else []) + ([c.first_row, c.first_row + len(c.values) - 1] if len(c.values) else [])
            if rows:
                lo, hi = min(lo, *rows), max(hi, *rows)
        self.lo, self.hi = lo, hi
        self.min_col = min(self.col_set) if self.col_set else MAX_COL
        self.formulas_kept: list[tuple[int, int]] = []  # (row, col) of cells left as the person wrote them
        self.col_ranges: list[tuple[int, int, int]] = []
        self.style_cache: dict[tuple[int, str], int] = {}
        self.refs = {c.col: col_letter(c.col) for c in self.cols}
        self.warned: set[int] = set()
        self.autofilter: tuple[int, int, int, int] | None = None  # the sheet filter's new range
        self.own = None  # a splice_check.FragmentCheck: parses only what is made here (the source was checked)

    def ops(self, row: int):
        """[(col, ColumnWrite, value, is_header)] for this row, in column order."""
        out = []
        for c in self.cols:
            if c.header is not None and row == c.header_row:
                out.append((c.col, c, c.header, True))
            else:
                i = row - c.first_row
                if 0 <= i < len(c.values):
                    out.append((c.col, c, c.values[i], False))
        return out

    def style(self, base: int, need: str) -> int:
        key = (base, need)
        s = self.style_cache.get(key)
        if s is None:
            if need == "keep":
                s = base
            elif need == "num":
                s = self.styles.without_date_format(base)
            else:
                s = self.styles.with_num_fmt(base, need)
            self.style_cache[key] = s
        return s

    def too_long(self, row: int, col: int) -> None:
        if col not in self.warned:
            self.warned.add(col)
            self.report.problems.append(Problem(
                f"a text in column {col_letter(col)} (row {row}) is longer than Excel's {MAX_TEXT} characters; it was cut",
                WARNING, "text-too-long", sheet=self.name, row=row, column=col_letter(col),
                suggestion="shorten that result in the rule file; Excel cannot hold a longer text in one cell"))

    def cell(self, row: int, col: int, c: ColumnWrite, v, is_header: bool, base: int) -> bytes | None:
        if v.__class__ is str and len(v) > MAX_TEXT:
            self.too_long(row, col)
        enc = encode(v, "text" if is_header else c.kind, self.date1904)
        ref = self.refs[col]
        if enc is None:  # clear the value, keep the cell's look
            return f'<c r="{ref}{row}" s="{base}"/>'.encode() if base else None
        need, t, inner = enc
        if need == "num" and c.num_fmt and not is_header:
            need = c.num_fmt
        s = self.style(base, need)
        sa = f' s="{s}"' if s else ""
        return f'<c r="{ref}{row}"{sa}{t}>{inner}</c>'.encode("utf-8")

    # -- the head: dimension and cols
    def head(self, head: bytes) -> bytes:
        m = re.search(rb"<cols>(.*?)</cols>", head, re.S)
        existing = []
        if m:
            for cm in re.finditer(rb"<col\b[^>]*>", m.group(1)):
                a = cm.group(0)
                lo, hi = int(get_attr(a, b"min") or 0), int(get_attr(a, b"max") or 0)
                existing.append((lo, hi))
                st = get_attr(a, b"style")
                if st:
                    self.col_ranges.append((lo - 1, hi - 1, int(st)))
        new_cols = []
        for c in self.cols:
            if c.header is None:
                continue
            n = c.col + 1
            if any(lo <= n <= hi for lo, hi in existing) or any(k == n for k, _ in new_cols):
                continue
            w = c.width or max(text_width(c.header) * 1.1 + 2, _kind_width(c.kind))
            style = b""
            if c.wrap:  # the column's cells take the style of its <col>
                st = self.styles.cell_format(CellFormat(wrap=True), None)
                self.col_ranges.append((c.col, c.col, st))
                style = b' style="%d"' % st
            if w > 9.5 or c.width or c.wrap:
                new_cols.append((n, b'<col min="%d" max="%d" width="%s"%s customWidth="1"/>' % (n, n, _num(round(min(w, 80), 2)).encode(), style)))
        if new_cols:
            if m:
                inner = m.group(1)
                items = [(int(get_attr(x.group(0), b"min") or 0), x.group(0)) for x in re.finditer(rb"<col\b[^>]*?(?:/>|>.*?</col>)", inner, re.S)]
                merged = sorted(items + new_cols, key=lambda t: t[0])
                head = head[: m.start(1)] + b"".join(x for _, x in merged) + head[m.end(1) :]
            else:
                sd = head.rfind(b"<sheetData")
                head = head[:sd] + b"<cols>" + b"".join(x for _, x in new_cols) + b"</cols>" + head[sd:]
        if self.hi:
            dm = re.search(rb'<dimension\b[^>]*\bref="([^"]*)"', head)
            if dm:
                try:
                    r1, c1, r2, c2 = parse_range(dm.group(1).decode())
                except ValueError:
                    r1, c1, r2, c2 = self.lo, self.min_col, self.hi, max(self.col_set)
                nr = range_ref(min(r1, self.lo), min(c1, self.min_col), max(r2, self.hi), max(c2, max(self.col_set)))
                head = head[: dm.start(1)] + nr.encode() + head[dm.end(1) :]
        if self.edit.header_row and self.edit.header_row <= MAX_FROZEN:
            head = freeze_header(head, self.edit.header_row)
        return head

    # -- rows
    def base_style(self, col: int, row_tag: bytes) -> int:
        if b"customFormat=" in row_tag and get_attr(row_tag, b"customFormat") in (b"1", b"true"):
            s = get_attr(row_tag, b"s")
            if s:
                return int(s)
        return self.col_style(col)

    def col_style(self, col: int) -> int:
        for lo, hi, st in self.col_ranges:
            if lo <= col <= hi:
                return st
        return 0

    def new_row(self, row: int) -> bytes | None:
        cells = []
        for col, c, v, is_header in self.ops(row):
            base = self.col_style(col)
            if is_header and not base:
                base = self.col_style(col - 1)
            x = self.cell(row, col, c, v, is_header, base)
            if x:
                cells.append(x)
        if not cells:
            return None
        x = b'<row r="%d">' % row + b"".join(cells) + b"</row>"
        if self.own is not None:
            self.own.add(x)
        return x

    def edit_row(self, row: int, tag: bytes, content: bytes, ops) -> bytes:
        """tag: '<row ...>' start tag; content: the cells (a row of ours: checked when own is)."""
        x = self._edit_row(row, tag, content, ops)
        if self.own is not None:
            self.own.add(x)
        return x

    def _edit_row(self, row: int, tag: bytes, content: bytes, ops) -> bytes:
        if not ops:
            return tag + content + b"</row>"
        last = max(content.rfind(b"<c "), content.rfind(b"<c>"))
        last_col = -1
        if last >= 0:
            m = _CELL_RA.match(content, last + 2)
            last_col = col_index(m.group(1)) if m else MAX_COL
        out = []
        if last_col < ops[0][0]:
            # fast path: all our cells go after the existing ones
            left = content[last:] if last >= 0 else b""
            ls = get_attr(left[: left.find(b">") + 1], b"s") if left else None
            prev = (last_col, int(ls) if ls else 0)
            for col, c, v, is_header in ops:
                base = self.base_style(col, tag)
                if is_header and prev[0] == col - 1:
                    base = prev[1]
                x = self.cell(row, col, c, v, is_header, base)
                if x:
                    out.append(x)
                prev = (col, base if is_header else -1)
            return self.fix_spans(tag, ops) + content + b"".join(out) + b"</row>"
        # general path: merge by column
        k, col_no, prev = 0, -1, (-2, 0)

        def insert(pc, c, v, is_header):
            base = self.base_style(pc, tag)
            if is_header and prev[0] == pc - 1:
                base = prev[1]
            x = self.cell(row, pc, c, v, is_header, base)
            if x:
                out.append(x)
            return (pc, base)

        for m in _CELL.finditer(content):
            a = m.group(1)
            rm = _CELL_RA.search(a)
            col_no = col_index(rm.group(1)) if rm else col_no + 1
            while k < len(ops) and ops[k][0] < col_no:
                prev = insert(*ops[k])
                k += 1
            cell = m.group(0)
            if not rm:  # keep positions explicit once we insert cells
                cell = b'<c r="%s%d"' % (col_letter(col_no).encode(), row) + cell[2:]
            s_attr = get_attr(a, b"s")
            s_val = int(s_attr) if s_attr else 0
            if k < len(ops) and ops[k][0] == col_no:
                pc, c, v, is_header = ops[k]
                if b"<f" in (m.group(3) or b""):  # a person's formula is never replaced by a value
                    self.formulas_kept.append((row, col_no))
                    out.append(cell)
                else:
                    x = self.cell(row, pc, c, v, is_header, s_val)
                    if x:
                        out.append(x)
                k += 1
            else:
                out.append(cell)
            prev = (col_no, s_val)
        while k < len(ops):
            prev = insert(*ops[k])
            k += 1
        return self.fix_spans(tag, ops) + b"".join(out) + b"</row>"

    def fix_spans(self, tag: bytes, ops) -> bytes:
        sp = get_attr(tag, b"spans")
        if sp and re.fullmatch(rb"\d+:\d+", sp):
            a, b = (int(x) for x in sp.split(b":"))
            na, nb = min(a, ops[0][0] + 1), max(b, ops[-1][0] + 1)
            if (na, nb) != (a, b):
                tag = set_attr(tag, b"spans", b"%d:%d" % (na, nb))
        return tag

    # -- the tail: conditional formats
    def tail(self, tail: bytes) -> bytes:
        tail = self.extend_autofilter(tail)
        hl = self.edit.highlights
        if not hl:
            return tail
        blocks, formulas = [], set()
        for h in hl:
            c1 = h.test_col if h.first_col is None else h.first_col
            c2 = h.test_col if h.last_col is None else h.last_col
            sq = range_ref(h.first_row, c1, h.last_row, c2)
            formula = cf_formula(h)
            formulas.add(esc(formula).encode())
            dxf = self.styles.dxf(h.fill, h.font_color)
            blocks.append(
                f'<conditionalFormatting sqref="{sq}"><cfRule type="expression" dxfId="{dxf}" priority="0">'
                f"<formula>{esc(formula)}</formula></cfRule></conditionalFormatting>".encode()
            )

        def ours(m) -> bool:  # a block written by an earlier run: same formulas
            fs = re.findall(rb"<formula>(.*?)</formula>", m.group(0), re.S)
            return bool(fs) and all(f in formulas for f in fs) and m.group(0).count(b"<cfRule") == len(fs)

        # drop earlier runs' blocks, then insert ours where the schema wants them
        tail = re.sub(rb"<conditionalFormatting\b.*?</conditionalFormatting>", lambda m: b"" if ours(m) else m.group(0), tail, flags=re.S)
        prio = max([int(x) for x in re.findall(rb'\spriority="(\d+)"', tail)] + [0])
        for k in range(len(blocks)):
            prio += 1
            blocks[k] = blocks[k].replace(b'priority="0"', b'priority="%d"' % prio, 1)
        at = _TAIL_AFTER_CF.search(tail)
        pos = at.start() if at else len(tail)
        return tail[:pos] + b"".join(blocks) + tail[pos:]

    def extend_autofilter(self, tail: bytes) -> bytes:
        """New columns right of the sheet's filter, headed on its first row, get filter buttons."""
        m = re.search(rb'<autoFilter\b[^>]*?\sref="([^"]+)"', tail)
        if not m:
            return tail
        try:
            r1, c1, r2, c2 = parse_range(m.group(1).decode())
        except ValueError:
            return tail
        c2_0 = c2
        for c in self.cols:
            if c.header is not None and c.header_row == r1 and c.col == c2 + 1:
                c2 = c.col
        if c2 == c2_0:
            return tail
        self.autofilter = (r1, c1, r2, c2)
        return tail[: m.start(1)] + range_ref(r1, c1, r2, c2).encode() + tail[m.end(1) :]

    # -- the whole stream
    def run(self, chunks, write) -> None:
        """chunks: iterator of bytes of the source sheet XML; write: sink for bytes."""
        buf = b""
        it = iter(chunks)
        m = None
        for chunk in it:  # find <sheetData>
            buf += chunk
            m = _SHEETDATA.search(buf)
            if m:
                break
        if m is None:
            raise WorkbookError(f"sheet '{self.name}' has no cells part (sheetData); open the workbook in Excel and save it again")
        head = buf[: m.end()]
        rest = buf[m.end() :]
        empty = m.group(1) == b"/"
        if empty:
            head = head[: m.start()] + b"<sheetData>"
        head = self.head(head)
        own = self.own
        if own is not None:
            own.head(head)
        write(head)
        self.prepare()
        next_row = self.lo  # first row we may still need to create
        prev_row = 0
        tail = None
        if empty:
            tail = rest + b"".join(it)
        else:
            carry = rest
            done = False
            while not done:
                end = carry.find(b"</sheetData>")
                if end >= 0:
                    body, tail_part = carry[:end], carry[end + len(b"</sheetData>") :]
                    done = True
                else:
                    # cut after the last whole row: '</row>', or a '<row .../>' after it
                    cut = carry.rfind(b"</row>")
                    cut = cut + 6 if cut >= 0 else -1
                    ls = carry.rfind(b"<row")
                    if ls > cut:
                        gt = carry.find(b">", ls)
                        if gt > 0 and carry[gt - 1] == 47:
                            cut = gt + 1
                    nxt = next(it, None)
                    if nxt is None:
                        raise WorkbookError(f"sheet '{self.name}' is cut short; open the workbook in Excel and save it again")
                    if cut <= 0:
                        carry += nxt
                        continue
                    body, carry = carry[:cut], carry[cut:] + nxt
                next_row, prev_row = self.rows_fast(body, write, next_row, prev_row)
            tail = tail_part + b"".join(it)
        # rows below the last existing one
        while next_row <= self.hi:
            x = self.new_row(next_row)
            if x:
                write(x)
            next_row += 1
        write(b"</sheetData>")
        tail = self.tail(tail)
        if own is not None:
            own.finish(tail)
        write(tail)

    def rows_fast(self, body: bytes, write, next_row: int, prev_row: int) -> tuple[int, int]:
        """rows(), with the usual case spliced a whole piece at a time: consecutive rows that
        each get our cells right of their last one, every row and cell carrying its r=."""
        if not self.uniform or not self.cols or b"customFormat" in body or b"<c>" in body:
            return self.rows(body, write, next_row, prev_row)
        first, last = self.first0, self.first0 + self.len0 - 1
        nums = _ROW_NUM.findall(body)
        if not nums:
            return self.rows(body, write, next_row, prev_row)
        # rows up to the last header row (or before our values start) take the general path
        head_end = 0
        k = 0
        while k < len(nums) and (int(nums[k]) < first or int(nums[k]) in self.header_rows):
            k += 1
        if k:
            if k == len(nums):
                return self.rows(body, write, next_row, prev_row)
            head_end = body.find(b"<row", body.find(b"</row>", body.find(b'<row r="%s"' % nums[k - 1])) + 6)
            if head_end < 0:
                return self.rows(body, write, next_row, prev_row)
            next_row, prev_row = self.rows(body[:head_end], write, next_row, prev_row)
            nums = nums[k:]
        r0, r1 = int(nums[0]), int(nums[-1])
        rest = body[head_end:]
        n = len(nums)
        if (r1 - r0 + 1 != n or r0 != max(next_row, prev_row + 1) or r1 > last or r0 <= prev_row
                or list(map(int, nums)) != list(range(r0, r1 + 1)) or _OTHER_ROW.search(rest) or any(h in range(r0, r1 + 1) for h in self.header_rows)):
            return self.rows(rest, write, next_row, prev_row)
        if b' spans="' in rest:
            rest = _SPANS.sub(self._spans, rest)
        enc = self.encoded
        if enc is None:
            enc = self.encoded = [self.encode_column(k) for k in self.krange]
        i0 = r0 - self.first0
        pieces = rest.split(b"</row>")
        if len(pieces) != n + 1 or not self._all_left(pieces[:-1]):  # a row closed as <row .../>, or a cell of ours
            return self.rows(rest, write, next_row, prev_row)
        nums_b = [x + b'"' for x in nums]
        inserts = self._by_blanks(enc, i0, nums_b)
        if inserts is None:
            cols: list = []  # per cell: its reference's column, row number, and the rest; joined per row
            for k in self.krange:
                part = enc[k][i0 : i0 + n]
                ref = self.refs_b[k]
                if None in part:  # a blank cell: nothing of it
                    blanks = part.count(None)
                    if blanks < n:
                        cols.append([ref + r + x if x is not None else b"" for r, x in zip(nums_b, part)])
                else:
                    cols += [repeat(ref, n), nums_b, part]
            cols.append(repeat(b"</row>", n))
            inserts = map(b"".join, zip(*cols))
        write(b"".join(chain.from_iterable(zip(pieces, inserts))) + pieces[-1])
        return r1 + 1, r1

    def _by_blanks(self, enc: list, i0: int, nums_b: list) -> list[bytes] | None:
        """Each row's cells (and its </row>), made per group of rows blank in the same
        columns: every cell of a group joined at C speed, none made per cell. A journey's
        columns are mostly blank, in a few patterns. None: no such columns, or too many
        patterns (then cell by cell)."""
        from .columnar import np, objects

        n = len(nums_b)
        if n < 64:
            return None
        sparse, blank_of, getters = [], {}, {}
        for k in self.krange:
            e = enc[k]
            if e.__class__ is _EncodedByCode:
                codes = e.codes[i0 : i0 + n]
                holes = np.fromiter(map(operator.is_, e.table, repeat(None)), bool, len(e.table))
                blank = holes[codes] if holes.any() else None
                getters[k] = lambda idx, t=e.table, c=codes: t[c[idx]].tolist()
            else:
                part = e[i0 : i0 + n]
                blank = np.fromiter(map(operator.is_, part, repeat(None)), bool, n) if None in part else None
                getters[k] = lambda idx, p=part: objects(p)[idx].tolist()
            if blank is not None and blank.any():
                if blank.all():
                    getters.pop(k)
                    continue
                blank_of[k] = len(sparse)
                sparse.append(blank)
        if not sparse or len(sparse) > 62:
            return None
        key = np.zeros(n, np.int64)
        for j, blank in enumerate(sparse):
            key |= (~blank).astype(np.int64) << j
        patterns, inv = np.unique(key, return_inverse=True)
        if len(patterns) > n // 32:  # groups too small to gain
            return None
        inv = inv.reshape(-1)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(patterns) + 1)).tolist()
        nums = objects(nums_b)
        out = np.empty(n, object)
        for p, bits in enumerate(patterns.tolist()):
            idx = order[bounds[p] : bounds[p + 1]]
            m = len(idx)
            nb = nums[idx].tolist()
            cols: list = []
            for k, get in getters.items():  # in column order
                j = blank_of.get(k)
                if j is None or bits >> j & 1:
                    cols += [repeat(self.refs_b[k], m), nb, get(idx)]
            cols.append(repeat(b"</row>", m))
            out[idx] = objects(list(map(b"".join, zip(*cols))))
        return out.tolist()

    def _all_left(self, rows: list[bytes]) -> bool:
        """Does each row's last cell name its place (r="A1", in capitals) left of our first
        column? Then our cells go after it. Looked up at C speed, then per distinct start."""
        last = list(map(bytes.rfind, rows, repeat(b"<c")))
        named = list(map(bytes.rfind, rows, repeat(b'<c r="')))
        if last != named:  # a last cell without its reference first
            return False
        width = len(col_letter(self.min_col)) + 1
        if -1 in named:  # rows without cells: nothing to look at there
            heads = {r[k + 6 : k + 6 + width] for r, k in zip(rows, named) if k >= 0}
        else:
            heads = set(map(bytes.__getitem__, rows, map(slice, map(_add, named, repeat(6)), map(_add, named, repeat(6 + width)))))
        ok = self.__dict__.setdefault("_left_heads", {})
        for h in heads:  # e.g. b'I1' (a cell of column I): at most a few hundred kinds
            good = ok.get(h)
            if good is None:
                m = _HEAD.match(h)
                good = ok[h] = m is not None and col_index(m.group(1)) < self.min_col
            if not good:
                return False
        return True

    def _spans(self, m) -> bytes:
        old = m.group(2)
        new = self.spans_cache.get(old)
        if new is None:
            new = self.spans_cache[old] = self.fix_spans(b'<row spans="' + old + b'">', [(c.col,) for c in self.cols])[12:-2]
        return m.group(1) + b' spans="' + new + b'"'

    def rows(self, body: bytes, write, next_row: int, prev_row: int) -> tuple[int, int]:
        # a whole piece before or after the rows we edit: copy it as it is
        first = body.find(b"<row")
        if first >= 0:
            fm = _ROW_R.search(body, first, body.find(b">", first) + 1)
            last = body.rfind(b"<row")
            lm = _ROW_R.search(body, last, body.find(b">", last) + 1)
            if fm and lm:
                f, l = int(fm.group(1)), int(lm.group(1))
                if f > prev_row and (l < self.lo or f > self.hi):
                    while f > self.hi and next_row <= self.hi:
                        x = self.new_row(next_row)
                        if x:
                            write(x)
                        next_row += 1
                    write(body)
                    return next_row, l
        out = []
        lo, hi = self.lo, self.hi
        find = body.find
        cells_for, header_rows, min_col = self.cells_for, self.header_rows, self.min_col
        pos = 0  # body[pos:] not yet looked at
        copied = 0  # body[copied:...] not yet written out: rows kept as they are
        while True:
            st = find(b"<row", pos)
            if st < 0:
                break
            gt = find(b">", st)
            closed = body[gt - 1] == 47  # '<row .../>': a row without cells
            if closed:
                end = ce = gt + 1
            else:
                ce = find(b"</row>", gt)
                if ce < 0:
                    raise WorkbookError(f"sheet '{self.name}' is damaged near row {prev_row + 1}; open the workbook in Excel and save it again")
                end = ce + 6
            has_r = body.startswith(b'<row r="', st)
            if has_r:
                row = int(body[st + 8 : find(b'"', st + 8)])
                rm = True
            else:
                rm = _ROW_R.search(body, st, gt)
                row = int(rm.group(1)) if rm else prev_row + 1
            prev_row = row
            pos = end
            if next_row < row and next_row <= hi:
                out.append(body[copied:st])
                copied = st
                while next_row < row and next_row <= hi:
                    x = self.new_row(next_row)
                    if x:
                        out.append(x)
                    next_row += 1
            if next_row == row:
                next_row += 1
            in_edit = lo <= row <= hi
            if rm and not in_edit:
                continue  # copied with its neighbours
            if has_r and in_edit and not closed and row not in header_rows and find(b"customFormat", st, gt) < 0:
                # fast path: our cells go right of the row's last cell, just before '</row>'
                lc = body.rfind(b"<c ", gt, ce)
                ok = True
                if lc >= 0:
                    m = _CELL_RA.match(body, lc + 2)
                    if m is None or find(b"<c>", lc, ce) >= 0:
                        ok = False
                    else:
                        L = m.group(1)
                        c = _COLS.get(L)
                        if c is None:
                            c = _COLS[L] = col_index(L)
                        ok = c < min_col
                if ok:
                    cells = cells_for(row)
                    if cells:
                        sp = find(b' spans="', st, gt)
                        if sp >= 0:
                            q = find(b'"', sp + 8)
                            old = body[sp + 8 : q]
                            new = self.spans_cache.get(old)
                            if new is None:
                                new = self.spans_cache[old] = self.fix_spans(b'<row spans="' + old + b'">', [(c.col,) for c in self.cols])[12:-2]
                            if new != old:
                                out.append(body[copied : sp + 8])
                                out.append(new)
                                copied = q
                        out.append(body[copied:ce])
                        out.extend(cells)
                        copied = ce
                        if len(out) > 8192:
                            write(b"".join(out))
                            out = []
                    continue
            tag = body[st : gt - 1] + b">" if closed else body[st : gt + 1]
            if not rm:  # rows we add carry r=, so every row must
                tag = b'<row r="%d"' % row + tag[4:]
            content = b"" if closed else body[gt + 1 : ce]
            out.append(body[copied:st])
            out.append(self.edit_row(row, tag, content, self.ops(row) if in_edit else []))
            copied = end
            if len(out) > 8192:
                write(b"".join(out))
                out = []
        out.append(body[copied:])
        write(b"".join(out))
        return next_row, prev_row

    # -- the common case, fast: values for new columns right of a row's last cell
    def prepare(self) -> None:
        """After head(): per-column style prefixes for the usual value types."""
        self.header_rows = {c.header_row for c in self.cols if c.header is not None}
        self.lbytes = [col_letter(c.col).encode() for c in self.cols]
        self.bases = [self.col_style(c.col) for c in self.cols]
        self.num_pre, self.txt_pre, self.dt_pre = [], [], []
        for c, base in zip(self.cols, self.bases):
            self.dt_pre.append(None)
            sn = self.style(base, _DURATION_FMT if c.kind == "duration" else c.num_fmt or "num")
            self.num_pre.append(b' s="%d"' % sn if sn else b"")
            self.txt_pre.append(b' s="%d"' % base if base else b"")
        self.spans_cache: dict[bytes, bytes] = {}
        self.rcache: list[dict] = [{} for _ in self.cols]
        self.refs_b = [b'<c r="' + x for x in self.lbytes]
        self.vals = [c.values for c in self.cols]
        self.krange = range(len(self.cols))
        self.uniform = len({(c.first_row, len(c.values)) for c in self.cols}) == 1
        self.encoded = None  # per column, made on first use
        self.first0 = self.cols[0].first_row if self.cols else 0
        self.len0 = len(self.cols[0].values) if self.cols else 0

    def rest(self, k: int, v) -> bytes | None:
        """A cell's bytes after its r="..." for column k (base style = the column's)."""
        tv = type(v)
        if tv is str or tv is int:  # output columns repeat a few values: remember them
            cache = self.rcache[k]
            x = cache.get(v) if tv is str else cache.get((v,))
            if x is None:
                x = self._rest(k, v, tv)
                if len(cache) < 20000:
                    cache[v if tv is str else (v,)] = x
            return x
        return self._rest(k, v, tv)

    def _rest(self, k: int, v, tv) -> bytes | None:
        kind = self.cols[k].kind
        if tv is int and kind in ("number", "general"):
            return self.num_pre[k] + b"><v>%d</v></c>" % v
        if tv is float and kind in ("number", "general") and v == v and v not in _INF:
            x = b"%d" % v if v.is_integer() and abs(v) < 1e15 else repr(v).encode()
            return self.num_pre[k] + b"><v>" + x + b"</v></c>"
        if tv is str and kind != "duration":
            if not v:
                return self._rest(k, None, type(None))
            if len(v) > MAX_TEXT:
                if self.cols[k].col not in self.warned:
                    self.too_long(self.cols[k].first_row + self.vals[k].index(v), self.cols[k].col)
                v = v[:MAX_TEXT]
            return self.txt_pre[k] + b' t="inlineStr">' + _inline(v).encode("utf-8") + b"</c>"
        if v is None:
            base = self.bases[k]
            return b' s="%d"/>' % base if base else None
        if tv is dt.datetime and kind in ("datetime", "general") and v.tzinfo is None:
            d = v - _EPOCH
            x = d.days + (d.seconds + d.microseconds / 1e6) / 86400 - (1462 if self.date1904 else 0)
            pre = self.dt_pre[k]
            if pre is None:
                sd = self.style(self.bases[k], _DATETIME_FMT)
                pre = self.dt_pre[k] = b' s="%d"' % sd if sd else b""
            return pre + b"><v>" + _num(round(x, 10)).encode() + b"</v></c>"
        enc = encode(v, kind, self.date1904)
        if enc is None:
            return None
        need, t, inner = enc
        if need == "num" and self.cols[k].num_fmt:
            need = self.cols[k].num_fmt
        st = self.style(self.bases[k], need)
        return (b' s="%d"' % st if st else b"") + t.encode() + b">" + inner.encode("utf-8") + b"</c>"

    def encode_column(self, k: int) -> list:
        """rest() of every value of column k; repeated values (texts, levels, dates) once."""
        from .columnar import coded, objects

        vals = self.vals[k]
        c = coded(vals)
        if c is not None:  # rule outputs and journey results: each table entry encoded once
            table = [self.rest(k, v) for v in c[0]]
            if self.own is not None:
                self.own.cells(table)
            return _EncodedByCode(objects(table), c[1])
        kinds = set(map(type, vals))
        if len(kinds - {type(None)}) <= 1 and kinds <= _FACTOR_TYPES:
            # one type of hashable value: number the distinct ones at C speed, encode each once
            first: dict = {}
            at = list(map(first.setdefault, vals, count()))
            rest = self.rest
            table = {i: rest(k, v) for v, i in first.items()}
            if self.own is not None:
                self.own.cells(table.values())
            return list(map(table.__getitem__, at))
        rest = self.rest
        memo: dict = {}
        out = []
        append = out.append
        for v in vals:
            key = (v.__class__, v) if v is None or v.__class__ in _MEMO_TYPES else None
            if key is None:
                append(rest(k, v))
                continue
            x = memo.get(key, memo)
            if x is memo:
                x = memo[key] = rest(k, v)
            append(x)
        if self.own is not None:
            self.own.cells(set(out))
        return out

    def cells_for(self, row: int) -> list[bytes]:
        """Our cells for a data row, with the columns' own styles."""
        rowb = b'%d"' % row
        cells = []
        rest, refs = self.rest, self.refs_b
        if self.uniform:
            i = row - self.first0
            if 0 <= i < self.len0:
                enc = self.encoded
                if enc is None:
                    enc = self.encoded = [self.encode_column(k) for k in self.krange]
                for k in self.krange:
                    x = enc[k][i]
                    if x is not None:
                        cells.append(refs[k] + rowb + x)
        else:
            for k, c in enumerate(self.cols):
                i = row - c.first_row
                if 0 <= i < len(c.values):
                    x = rest(k, c.values[i])
                    if x is not None:
                        cells.append(refs[k] + rowb + x)
            if self.own is not None:
                for x in cells:
                    self.own.add(x)
        return cells


class _EncodedByCode:
    """A Coded column's cells, made a piece of rows at a time from its table (a million
    rows' list is not held while the sheet is written): enc[i] and enc[a:b] as a list's."""

    __slots__ = ("table", "codes")

    def __init__(self, table, codes):
        self.table, self.codes = table, codes

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i):
        if i.__class__ is slice:
            return self.table[self.codes[i]].tolist()
        return self.table[self.codes[i]]


_COMPARISON = re.compile(r"^(>=|<=|<>|>|<|=)\s*(-?\d+(?:\.\d+)?)$")


def cf_formula(h: Highlight) -> str:
    """The rule's formula, relative to the first row of its range. A text value such as
    '>0' is a comparison with a number (blank and text cells never match it)."""
    x = f"${col_letter(h.test_col)}{h.first_row}"
    v = h.equals
    if isinstance(v, str):
        m = _COMPARISON.match(v.strip())
        if m:
            return f"AND(ISNUMBER({x}),{x}{m.group(1)}{m.group(2)})"
    return f"{x}={_cf_literal(v)}"


def _cf_literal(v) -> str:
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return _num(v) or "0"
    return _formula_text(str(v))


_FORMULA_CTRL = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]")


def _formula_text(s: str) -> str:
    """A text literal for a formula. Control characters, which the cell holds as _x001B_
    and XML cannot hold raw, are joined in as CHAR(27); lone surrogates as U+FFFD, as in the cell."""
    s = _SURR.sub("\ufffd", s)
    parts, at = [], 0
    for m in _FORMULA_CTRL.finditer(s):
        if m.start() > at:
            parts.append('"' + s[at : m.start()].replace('"', '""') + '"')
        c = ord(m.group(0))
        parts.append(f"CHAR({c})" if c < 256 else f"UNICHAR({c})")
        at = m.end()
    if at < len(s) or not parts:
        parts.append('"' + s[at:].replace('"', '""') + '"')
    return "&".join(parts)


# ------------------------------------------------------------------ styles.xml
_BUILTIN_FMTS = {"General": 0, "0": 1, "0.00": 2, "#,##0": 3, "#,##0.00": 4, "0%": 9, "0.00%": 10, "@": 49}
_DATE_IDS = set(range(14, 23)) | set(range(27, 37)) | {45, 46, 47} | set(range(50, 59))
_SECTIONS = (b"numFmts", b"fonts", b"fills", b"borders", b"cellStyleXfs", b"cellXfs", b"cellStyles", b"dxfs", b"tableStyles", b"colors", b"extLst")
_ITEM = {b"numFmts": b"numFmt", b"fonts": b"font", b"fills": b"fill", b"cellXfs": b"xf", b"dxfs": b"dxf"}
MINIMAL_STYLES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b'<fonts count="1"><font><sz val="11"/><color theme="1"/><name val="Calibri"/><family val="2"/><scheme val="minor"/></font></fonts>'
    b'<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    b'<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    b'<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    b'<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    b'<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    b'<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/></styleSheet>'
)


def is_date_format(code: str) -> bool:
    """Does this number format show a date or time? ('[h]:mm' durations count too.)"""
    s = re.sub(r'"[^"]*"|\\.|\[(?![hms]+\])[^\]]*\]', "", code)
    s = s.split(";")[0].lower()
    return bool(re.search(r"[ymdhs]", s)) and "general" not in s


def argb(rgb: str) -> str:
    s = rgb.strip().lstrip("#").upper()
    if not re.fullmatch(r"[0-9A-F]{6}|[0-9A-F]{8}", s):
        raise ValueError(f"not a colour: {rgb!r} (write it like FFEB9C)")
    return s if len(s) == 8 else "FF" + s


class Styles:
    """Appends what we need to styles.xml; existing indexes never change."""

    def __init__(self, xml: bytes | None, used_xfs: int = 1):
        """used_xfs: for a package without styles, how many cell formats its cells name
        (s="N"); that many default formats come first, so those cells keep their look."""
        self.created = xml is None
        self.xml = xml if xml is not None else MINIMAL_STYLES
        if xml is None and used_xfs > 1:
            xf = b'<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            self.xml = self.xml.replace(b'<cellXfs count="1">' + xf, b'<cellXfs count="%d">' % used_xfs + xf * used_xfs)
        if re.search(rb"<\w+:styleSheet\b", self.xml[:500]):
            raise WorkbookError("styles.xml uses a namespace prefix")
        for sec in _SECTIONS:  # two lists of one kind: which one Excel reads is anyone's guess
            if len(re.findall(rb"<" + sec + rb"[\s>/]", self.xml)) > 1:
                raise WorkbookError(f"styles.xml has two <{sec.decode()}> lists")
        self.items: dict[bytes, list[bytes]] = {}
        self.added: dict[bytes, list[bytes]] = {k: [] for k in _ITEM}
        for sec, item in _ITEM.items():
            m = self._section(sec)
            inner = m.group(3) if m and m.group(3) else b""
            self.items[sec] = re.findall(rb"<" + item + rb"\b[^>]*?(?:/>|>.*?</" + item + rb">)", inner, re.S)
        self.fmt_ids: dict[str, int] = dict(_BUILTIN_FMTS)
        self.fmt_codes: dict[int, str] = {}
        for nf in self.items[b"numFmts"]:
            i, code = get_attr(nf, b"numFmtId"), get_attr(nf, b"formatCode")
            if i is not None and code is not None:
                c = _xml_unescape(code.decode("utf-8"), {"&quot;": '"', "&apos;": "'"})
                self.fmt_ids.setdefault(c, int(i))
                self.fmt_codes[int(i)] = c
        self._cache: dict = {}

    @property
    def changed(self) -> bool:
        return self.created or any(self.added.values())

    def _section(self, sec: bytes, xml: bytes | None = None):
        return re.search(rb"<" + sec + rb"\b([^>]*?)(/>|>(.*?)</" + sec + rb">)", self.xml if xml is None else xml, re.S)

    def _all(self, sec: bytes) -> list[bytes]:
        return self.items[sec] + self.added[sec]

    def _add(self, sec: bytes, item: bytes) -> int:
        allx = self._all(sec)
        if item in allx:
            return allx.index(item)
        self.added[sec].append(item)
        return len(allx)

    # number formats
    def num_fmt_id(self, code: str) -> int:
        if code in self.fmt_ids:
            return self.fmt_ids[code]
        used = set(self.fmt_codes) | {get_attr(x, b"numFmtId") and int(get_attr(x, b"numFmtId")) for x in self.added[b"numFmts"]}
        i = max([163, *(u for u in used if u and u < 60000)]) + 1  # an absurd id in a damaged part is not a base
        self.added[b"numFmts"].append(f'<numFmt numFmtId="{i}" formatCode="{esc(code)}"/>'.encode())
        self.fmt_ids[code] = i
        self.fmt_codes[i] = code
        return i

    def xf_num_fmt(self, s: int) -> int:
        xfs = self._all(b"cellXfs")
        if s >= len(xfs):
            return 0
        v = get_attr(xfs[s][: xfs[s].find(b">") + 1], b"numFmtId")
        return int(v) if v else 0

    def is_date_style(self, s: int) -> bool:
        i = self.xf_num_fmt(s)
        return i in _DATE_IDS or (i in self.fmt_codes and is_date_format(self.fmt_codes[i]))

    # cell formats
    def _xf(self, base: int, **changes) -> int:
        key = (base, tuple(sorted(changes.items())))
        if key in self._cache:
            return self._cache[key]
        xfs = self._all(b"cellXfs")
        src = xfs[base] if base < len(xfs) else xfs[0] if xfs else b'<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        end = src.find(b">") + 1
        tag, rest = src[:end], src[end:]
        for name, val in changes.items():
            if name == "wrap":
                continue
            tag = set_attr(tag, name.encode(), str(val).encode())
            flag = {"numFmtId": b"applyNumberFormat", "fillId": b"applyFill", "fontId": b"applyFont"}[name]
            tag = set_attr(tag, flag, b"1")
        if changes.get("wrap"):
            tag = set_attr(tag, b"applyAlignment", b"1")
            if b"<alignment" in rest:
                rest = re.sub(rb"<alignment\b", b'<alignment wrapText="1"', rest.replace(b' wrapText="0"', b""), count=1) if b"wrapText" not in rest else rest
            else:
                if tag.endswith(b"/>"):
                    tag, rest = tag[:-2] + b">", b"</xf>"
                rest = b'<alignment vertical="top" wrapText="1"/>' + rest
        i = self._add(b"cellXfs", tag + rest)
        self._cache[key] = i
        return i

    def with_num_fmt(self, base: int, code: str) -> int:
        return self._xf(base, numFmtId=self.num_fmt_id(code))

    def without_date_format(self, base: int) -> int:
        return self._xf(base, numFmtId=0) if self.is_date_style(base) else base

    def fill_id(self, rgb: str) -> int:
        item = f'<fill><patternFill patternType="solid"><fgColor rgb="{argb(rgb)}"/><bgColor indexed="64"/></patternFill></fill>'
        return self._add(b"fills", item.encode())

    def font_id(self, bold: bool, color: str | None) -> int:
        fonts = self._all(b"fonts")
        base = fonts[0] if fonts else b'<font><sz val="11"/><name val="Calibri"/></font>'
        f = re.sub(rb"<b\s*/>|<b\s+val=\"[^\"]*\"\s*/>", b"", base)
        if bold:
            f = re.sub(rb"^(<font\b[^>]*>)", rb"\1<b/>", f)
        if color:
            f = re.sub(rb"<color\b[^>]*/>", b"", f)
            c = f'<color rgb="{argb(color)}"/>'.encode()
            f = f.replace(b"<name", c + b"<name", 1) if b"<name" in f else f.replace(b"</font>", c + b"</font>")
        return self._add(b"fonts", f)

    def cell_format(self, fmt: CellFormat | None, auto_code: str | None) -> int:
        """An xf for a cell in a sheet we make, from font 0 / xf 0."""
        key = ("cf", fmt, auto_code)
        if key in self._cache:
            return self._cache[key]
        ch: dict = {}
        code = (fmt.num_fmt if fmt and fmt.num_fmt else None) or auto_code
        if code:
            ch["numFmtId"] = self.num_fmt_id(code)
        if fmt and fmt.fill:
            ch["fillId"] = self.fill_id(fmt.fill)
        if fmt and (fmt.bold or fmt.font_color):
            ch["fontId"] = self.font_id(fmt.bold, fmt.font_color)
        if fmt and fmt.wrap:
            ch["wrap"] = True
        i = self._xf(0, **ch) if ch else 0
        self._cache[key] = i
        return i

    def dxf(self, fill: str, font_color: str | None = None) -> int:
        font = f'<font><color rgb="{argb(font_color)}"/></font>' if font_color else ""
        item = f'<dxf>{font}<fill><patternFill><bgColor rgb="{argb(fill)}"/></patternFill></fill></dxf>'
        return self._add(b"dxfs", item.encode())

    def to_bytes(self) -> bytes:
        xml = self.xml
        for sec in _ITEM:
            new = self.added[sec]
            if not new:
                continue
            m = self._section(sec, xml)
            count = len(self.items[sec]) + len(new)
            if m:
                open_tag = set_attr(b"<" + sec + m.group(1) + b">", b"count", str(count).encode())
                inner = m.group(3) or b""
                xml = xml[: m.start()] + open_tag + inner + b"".join(new) + b"</" + sec + b">" + xml[m.end() :]
            else:
                block = b"<" + sec + b' count="%d">' % count + b"".join(new) + b"</" + sec + b">"
                later = _SECTIONS[_SECTIONS.index(sec) + 1 :]
                pos = None
                for s2 in later:
                    m2 = re.search(rb"<" + s2 + rb"\b", xml)
                    if m2:
                        pos = m2.start()
                        break
                if pos is None:
                    pos = xml.rfind(b"</styleSheet>")
                xml = xml[:pos] + block + xml[pos:]
        return xml


# ------------------------------------------------------------------ tables
def _table_name(s: str) -> str:
    """A table column name: Excel wants line breaks in it written as _x000a_."""
    return _ooxml_text(s).replace("\n", "_x000a_").replace("\r", "_x000d_").replace("\t", "_x0009_")


def table_extensions(tables: list[Table], edit: SheetEdit, sheet: str, report: WriteReport) -> list[tuple[Table, int, list[str]]]:
    """Which tables the edit's new columns join: (table, its new last column, the headers
    added). A new column written just right of a table, with its header on the table's
    header row, joins it. Headers inside a table keep the table's column name (formulas
    may refer to it by name): such a column's header is set to None here. Shared by the
    file writer and the Excel layer, so both extend the same tables."""
    out = []
    for t in tables:
        if t.header_rows != 1:
            continue
        r1, c1, r2, c2 = t.ref
        names = list(t.columns)
        added = []
        for cw in sorted(edit.columns, key=lambda c: c.col):
            if cw.header is None or cw.header_row != r1:
                continue
            if c1 <= cw.col <= c2:
                old = names[cw.col - c1] if cw.col - c1 < len(names) else None
                if old is not None and old != cw.header:
                    report.problems.append(Problem(
                        f"column {col_letter(cw.col)} is column '{old}' of table '{t.name}'; its header was kept "
                        f"(not changed to '{cw.header}') so formulas that name it keep working",
                        WARNING, "table-header-kept", sheet=sheet, row=r1, column=col_letter(cw.col),
                        suggestion="nothing to do: the results are in that column under the table's own name"))
                    cw.header = None
                continue
            if cw.col != c2 + 1:
                continue
            if any(o is not t and o.ref[1] <= cw.col <= o.ref[3] and not (o.ref[2] < r1 or o.ref[0] > r2) for o in tables):
                continue
            if cw.header.strip().casefold() in {n.strip().casefold() for n in names} or not cw.header.strip():
                report.problems.append(Problem(
                    f"the new column '{cw.header}' was not added to table '{t.name}': the table already has a column of that name",
                    WARNING, "table-duplicate-header", sheet=sheet, row=r1, column=col_letter(cw.col),
                    suggestion="rename the table's own column of that name, then run again"))
                continue
            names.append(cw.header)
            added.append(cw.header)
            c2 += 1
        if added:
            out.append((t, c2, added))
    return out


def extend_tables(zin: zipfile.ZipFile, tables: list[Table], edit: SheetEdit, sheet: str, report: WriteReport) -> dict[str, bytes]:
    """The table parts table_extensions changes, rewritten."""
    out: dict[str, bytes] = {}
    for t, c2, added in table_extensions(tables, edit, sheet, report):
        r1, c1, r2, _ = t.ref
        names = list(t.columns) + added
        xml = unprefix(zin.read(t.part))
        ids = [int(x) for x in re.findall(rb'<tableColumn\b[^>]*?\sid="(\d+)"', xml)]
        nid = max(ids + [0])
        cols = b"".join(b'<tableColumn id="%d" name="%s"/>' % (nid + k + 1, _table_name(n).encode("utf-8")) for k, n in enumerate(added))
        xml = re.sub(rb"</tableColumns>", lambda m: cols + m.group(0), xml, count=1)
        xml = re.sub(rb"(<tableColumns\b[^>]*?\scount=\")\d+", lambda m: m.group(1) + str(len(names)).encode(), xml, count=1)
        new_ref = range_ref(r1, c1, r2, c2).encode()
        xml = re.sub(rb'(<table\b[^>]*?\sref=")[^"]*', lambda m: m.group(1) + new_ref, xml, count=1)

        def af(m, c2=c2):
            a1, b1, a2, _ = parse_range(m.group(2).decode())
            return m.group(1) + range_ref(a1, b1, a2, c2).encode()

        xml = re.sub(rb'(<autoFilter\b[^>]*?\sref=")([^"]*)', af, xml, count=1)
        out[t.part] = xml
    return out


# ------------------------------------------------------------------ small helpers for package edits
def _quote_sheet(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) and not re.fullmatch(r"[A-Za-z]{1,3}\d+", name):
        return name
    return "'" + name.replace("'", "''") + "'"


def _clean_sheet_name(name: str) -> str:
    s = re.sub(r"[\[\]:*?/\\\x00-\x1f\x7f\ud800-\udfff]", "_", name).strip().strip("'")[:31] or "Sheet"
    return s


def _next_name(names: set[str], pattern: str) -> str:
    n = 1
    while pattern % n in names:
        n += 1
    return pattern % n


# ------------------------------------------------------------------ sheets we make
_WS_OPEN = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<worksheet xmlns="{NS_MAIN}" xmlns:r="{NS_REL}">'
)


def _auto_widths(rows: list[list], sample: int = 2000) -> dict[int, float]:
    w: dict[int, float] = {}
    for row in rows[:sample]:
        for j, v in enumerate(row):
            if v is None:
                continue
            n = text_width(display(v)) if not isinstance(v, (dt.date, dt.time)) else 16 if isinstance(v, dt.datetime) else 10
            w[j] = max(w.get(j, 0), n)
    return {j: min(max(n * 1.1 + 2, 8), 60) for j, n in w.items() if n * 1.1 + 2 > 8.43}


def _lines(v, width: float) -> int:
    """Lines a wrapped text takes in a column `width` characters wide (an estimate)."""
    if not isinstance(v, str) or not v:
        return 1
    return sum(max(1, math.ceil(text_width(part) / width)) for part in v.split("\n"))


def _need(v) -> str:
    """The format need encode() gives a value of kind 'general' (without encoding it)."""
    if isinstance(v, dt.datetime):
        return _DATETIME_FMT
    if isinstance(v, dt.date):
        return _DATE_FMT
    if isinstance(v, dt.time):
        return _TIME_FMT
    if isinstance(v, (Duration, dt.timedelta)):
        return _DURATION_FMT
    return "keep"


_RUN_MIN = 32  # rows: fewer are made row by row


def _column_runs(ns: NewSheet) -> list[tuple[int, int]]:
    """(first, end) of each run of at least _RUN_MIN rows (a call list, an Issues list) of one
    length, without a row format, with cell formats only among their values and no wrapped
    column: such rows are made a column at a time."""
    if any(f.wrap for f in ns.col_formats.values()):
        return []
    rows, rfmts = ns.rows, ns.row_formats
    widest: dict[int, int] = {}  # row -> its rightmost formatted cell
    for (i, j) in ns.formats:
        if j > widest.get(i, -1):
            widest[i] = j
    runs = []
    i, n = 0, len(rows)
    while i < n:
        width = len(rows[i])
        k = i
        while k < n and len(rows[k]) == width and k not in rfmts and widest.get(k, -1) < width:
            k += 1
        if width and k - i >= _RUN_MIN:
            runs.append((i, k))
        i = max(k, i + 1)
    return runs


def _column_layout(ns: NewSheet) -> dict[int, tuple[int, list[list]]]:
    """{first: (end, per column each row's cell format)} of each of _column_runs; made once
    for a sheet's styles and its XML."""
    runs = _column_runs(ns)
    if not runs:
        return {}
    by_row: dict[int, list] = {}
    for (i, j), f in ns.formats.items():
        if f is not None:
            by_row.setdefault(i, []).append((j, f))
    layout = {}
    for first, end in runs:
        # each row's own format, else its column's
        fcols = [[ns.col_formats.get(j)] * (end - first) for j in range(len(ns.rows[first]))]
        for i in range(first, end) if len(by_row) > end - first else by_row:
            if first <= i < end:
                for j, f in by_row.get(i, ()):
                    fcols[j][i - first] = f
        layout[first] = (end, fcols)
    return layout


def new_sheet_styles(ns: NewSheet, styles: Styles, layout: dict | None = None) -> dict:
    """Every style the sheet needs, made now: styles.xml is written before the sheet.
    layout: the sheet's _column_layout, when already made."""
    cache: dict = {}
    needs: dict = {}
    fmts, rfmts, cfmts = ns.formats, ns.row_formats, ns.col_formats
    for fmt in cfmts.values():
        cache.setdefault((fmt, "keep"), styles.cell_format(fmt, None))
    cells_of = {i for i, _ in fmts}
    seen: set = set()  # (format's id, value's type): many cells share a few
    layout = _column_layout(ns) if layout is None else layout
    rows = ns.rows
    i = 0
    while i < len(rows):
        run = layout.get(i)
        if run is not None:  # a column at a time: its (format, type) pairs found at C speed
            end, fcols = run
            firsts: dict = {}  # new pair -> (its first cell, row by row), format, value
            for j, (fcol, col) in enumerate(zip(fcols, zip(*rows[i:end]))):
                for fid, cls in set(zip(map(id, fcol), map(type, col))) - seen:
                    q = next(q for q, (f, v) in enumerate(zip(fcol, col)) if id(f) == fid and v.__class__ is cls)
                    if (fid, cls) not in firsts or (q, j) < firsts[(fid, cls)][0]:
                        firsts[(fid, cls)] = ((q, j), fcol[q], col[q])
            # styles made in the order the row-by-row pass meets them: the same numbers
            for both, (_, fmt, v) in sorted(firsts.items(), key=lambda x: x[1][0]):
                seen.add(both)
                need = needs.get(v.__class__)
                if need is None:
                    need = needs[v.__class__] = _need(v)
                key = (fmt, need)
                if key not in cache:
                    cache[key] = styles.cell_format(fmt, None if need == "keep" else need)
            i = end
            continue
        row, at = rows[i], i
        rf = rfmts.get(i)
        many = i in cells_of
        i += 1
        for j, v in enumerate(row):
            fmt = fmts.get((at, j), rf) if many else rf
            if fmt is None and cfmts:
                fmt = cfmts.get(j)
            both = (id(fmt), v.__class__)
            if both in seen:
                continue
            seen.add(both)
            need = needs.get(v.__class__)  # the need depends on the type alone
            if need is None:
                need = needs[v.__class__] = _need(v)
            key = (fmt, need)
            if key not in cache:
                cache[key] = styles.cell_format(fmt, None if key[1] == "keep" else key[1])
    for (i, j), fmt in fmts.items():  # formatted cells beyond a row's values
        key = (fmt, "keep")
        if key not in cache:
            cache[key] = styles.cell_format(fmt, None)
    return cache


def new_sheet_xml(ns: NewSheet, cache: dict, date1904: bool, drawing_rid: str | None, layout: dict | None = None):
    """The sheet's XML in pieces (a big Issues sheet is never one string). layout: the
    sheet's _column_layout, when already made."""
    rows = ns.rows
    width = max((len(r) for r in rows), default=0)
    dim = range_ref(1, 0, max(len(rows), 1), max(width - 1, 0))
    fit = '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>' if ns.fit_width else ""
    head = [_WS_OPEN, f'{fit}<dimension ref="{dim}"/><sheetViews><sheetView workbookViewId="0">']
    if ns.freeze_rows:
        top = cell_ref(ns.freeze_rows + 1, 0)
        head.append(f'<pane ySplit="{ns.freeze_rows}" topLeftCell="{top}" activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="{top}" sqref="{top}"/>')
    head.append('</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>')
    widths = ns.widths if ns.widths is not None else _auto_widths(rows)
    cfmts = ns.col_formats
    if widths or cfmts:
        cols = []
        for j in sorted(set(widths) | set(cfmts)):
            w = widths.get(j, 8.43)
            st = cache[(cfmts[j], "keep")] if j in cfmts else 0
            style = f' style="{st}"' if st else ""
            cols.append(f'<col min="{j + 1}" max="{j + 1}" width="{_num(round(w, 2))}"{style} customWidth="1"/>')
        head.append("<cols>" + "".join(cols) + "</cols>")
    head.append("<sheetData>")
    yield "".join(head).encode("utf-8")
    # wrapped columns: rows tall enough for their text (not every program fits them on opening)
    wrapped = [(j, max(widths.get(j, 8.43) - 1, 1)) for j, f in cfmts.items() if f.wrap]
    fmts, rfmts = ns.formats, ns.row_formats
    extra: dict[int, list[int]] = {}
    for (i, j) in fmts:
        extra.setdefault(i, []).append(j)
    width = max([width] + [j + 1 for (_, j) in fmts])
    letters = [col_letter(j) for j in range(width)]
    out = []
    # a plan's or summary's values repeat (tiers, channels, days): each value in each format
    # made once, as the cell's XML after its reference (None: no cell)
    tails: dict = {}

    def cell_tail(fmt, v):
        cls = v.__class__
        if (cls is str and 0 < len(v) <= MAX_TEXT) or cls is int:  # names and row numbers: as encode() has them
            s = cache[(fmt, "keep")]
            sa = f' s="{s}"' if s else ""
            return f'{sa} t="inlineStr">{_inline(v)}</c>' if cls is str else f"{sa}><v>{v}</v></c>"
        enc = encode(v, "general", date1904)
        if enc is None:
            if fmt is None:
                return None
            s = cache[(fmt, "keep")]
            return f' s="{s}"/>' if s else ""
        s = cache[(fmt, _need(v))]
        sa = f' s="{s}"' if s else ""
        return f"{sa}{enc[1]}>{enc[2]}</c>"

    layout = _column_layout(ns) if layout is None else layout
    i, n_rows = 0, max(len(rows), max(extra, default=-1) + 1)
    while i < n_rows:
        run = layout.get(i)
        if run is not None:
            end, fcols = run
            made = _run_xml(rows[i:end], i, fcols, letters, tails, cell_tail)
            if made is not None:
                out += made
                i = end
                if len(out) >= 2000:
                    yield "".join(out).encode("utf-8")
                    out = []
                continue
        row = rows[i] if i < len(rows) else []
        r, at = f"{i + 1}", i
        i += 1
        cells = []
        rf = rfmts.get(at)
        ex = extra.get(at)
        exf = None if ex is None else {j: fmts[(at, j)] for j in ex}  # only a row in `extra` has cell formats
        if exf is not None and max(exf) >= len(row):  # formatted cells right of the values
            js = ((j, row[j] if j < len(row) else None) for j in sorted(set(range(len(row))) | set(exf)))
        else:
            js = enumerate(row)
        for j, v in js:
            fmt = rf if exf is None else exf.get(j, rf)
            if fmt is None and cfmts:
                fmt = cfmts.get(j)
            cls = v.__class__
            key = (id(fmt), cls, v) if cls is not dt.datetime else (id(fmt), cls, v, v.tzinfo)  # equal moments, other zones
            try:
                t = tails[key]
            except KeyError:
                t = tails[key] = cell_tail(fmt, v)
            except TypeError:  # unhashable
                t = cell_tail(fmt, v)
            if t is None:
                continue
            cells.append(f'<c r="{letters[j]}{r}"{t}' if t else "")
        lines = max([_lines(row[j], w) for j, w in wrapped if j < len(row)] + [1]) if wrapped else 1
        ht = f' ht="{15 * lines}" customHeight="1"' if lines > 1 else ""
        if cells:
            out.append(f'<row r="{r}"{ht}>' + "".join(cells) + "</row>")
        if len(out) >= 2000:
            yield "".join(out).encode("utf-8")
            out = []
    tail = ["</sheetData>"]
    if ns.autofilter and rows:
        tail.append(f'<autoFilter ref="{range_ref(1, 0, len(rows), max(width - 1, 0))}"/>')
    tail.append('<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>')
    if ns.fit_width:
        tail.append('<pageSetup orientation="landscape" fitToWidth="1" fitToHeight="0"/>')
    if drawing_rid:
        tail.append(f'<drawing r:id="{drawing_rid}"/>')
    tail.append("</worksheet>")
    yield ("".join(out) + "".join(tail)).encode("utf-8")


def _run_xml(block: list[list], first: int, fcols: list[list], letters: list[str], tails: dict, cell_tail) -> list[str] | None:
    """new_sheet_xml's rows for a run of _column_runs, a column at a time: each cell's XML
    after its reference looked up by (format, type, value) at C speed, each new one made by
    cell_tail; a row's cells joined at C speed. None: a value this cannot look up (a moment
    with a time zone, a value that is not a key), then row by row."""
    m = len(block)
    refs = [f"{first + 1 + q}" for q in range(m)]
    quoted = [r + '"' for r in refs]
    parts: list = []  # per row, joined: its cells in column order
    gaps = []  # columns with rows that have no cell there
    for j, (fcol, col) in enumerate(zip(fcols, zip(*block))):
        kinds = set(map(type, col))
        if dt.datetime in kinds and any(v.tzinfo is not None for v in col if v.__class__ is dt.datetime):
            return None  # equal moments in other zones are other cells: the row-by-row keys
        keys = list(zip(map(id, fcol), map(type, col), col))
        try:
            got = list(map(tails.get, keys))
        except TypeError:  # a value that is not a key
            return None
        if None in got:  # values met for the first time (and blank cells): made once each
            fmt_of = {id(f): f for f in fcol}
            for q in compress(range(m), map(operator.is_, got, repeat(None))):
                k = keys[q]
                t = tails.get(k, tails)
                if t is tails:
                    t = tails[k] = cell_tail(fmt_of[k[0]], k[2])
                got[q] = t
        pre = f'<c r="{letters[j]}'
        if None in got or "" in got:  # no cell here in some rows
            parts.append([pre + r + t if t else "" for r, t in zip(quoted, got)])
            if None in got:
                gaps.append(got)
        else:
            parts += [repeat(pre, m), quoted, got]
    made = list(map("".join, zip(repeat('<row r="'), refs, repeat('">'), *parts, repeat("</row>"))))
    if len(gaps) == len(block[0]):  # a row with no cell in any column is left out
        made = [x for x, ts in zip(made, zip(*gaps)) if any(t is not None for t in ts)]
    return made


def drawing_xml(charts: list[BarChart]) -> bytes:
    anchors = []
    for k, ch in enumerate(charts):
        (r, c), (w, h) = ch.anchor, ch.size
        anchors.append(
            f"<xdr:twoCellAnchor><xdr:from><xdr:col>{c}</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>{r}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:from>"
            f"<xdr:to><xdr:col>{c + w}</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>{r + h}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:to>"
            f'<xdr:graphicFrame macro=""><xdr:nvGraphicFramePr><xdr:cNvPr id="{k + 2}" name="Chart {k + 1}"/><xdr:cNvGraphicFramePr/></xdr:nvGraphicFramePr>'
            '<xdr:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/></xdr:xfrm><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/chart">'
            f'<c:chart xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" xmlns:r="{NS_REL}" r:id="rId{k + 1}"/>'
            "</a:graphicData></a:graphic></xdr:graphicFrame><xdr:clientData/></xdr:twoCellAnchor>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<xdr:wsDr xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
        + "".join(anchors) + "</xdr:wsDr>"
    ).encode("utf-8")


def chart_xml(ch: BarChart, ns: NewSheet, sheet_name: str, uid: int) -> bytes:
    q = _quote_sheet(sheet_name)

    def cell(i, j):
        return ns.rows[i][j] if 0 <= i < len(ns.rows) and j < len(ns.rows[i]) else None

    def area(first, last, j):
        return f"{q}!${col_letter(j)}${first + 1}:${col_letter(j)}${last + 1}"

    cf, cl, cc = ch.categories
    cats = [cell(i, cc) for i in range(cf, cl + 1)]
    cat_fmt = '<c:numFmt formatCode="General" sourceLinked="1"/>'
    if cats and all(isinstance(v, dt.date) for v in cats):  # days: numbers shown as days on the axis
        cat_fmt = f'<c:numFmt formatCode="{esc(ch.date_format)}" sourceLinked="0"/>'
        pts = "".join(f'<c:pt idx="{k}"><c:v>{_num(_serial(v, False))}</c:v></c:pt>' for k, v in enumerate(cats))
        cat = (f"<c:cat><c:numRef><c:f>{esc(area(cf, cl, cc))}</c:f><c:numCache><c:formatCode>{esc(ch.date_format)}</c:formatCode>"
               f'<c:ptCount val="{len(cats)}"/>{pts}</c:numCache></c:numRef></c:cat>')
    else:
        pts = "".join(f'<c:pt idx="{k}"><c:v>{_ooxml_text(display(v))}</c:v></c:pt>' for k, v in enumerate(cats) if v is not None)
        cat = f"<c:cat><c:strRef><c:f>{esc(area(cf, cl, cc))}</c:f><c:strCache><c:ptCount val=\"{len(cats)}\"/>{pts}</c:strCache></c:strRef></c:cat>"
    sers = []
    for k, s in enumerate(ch.series):
        name = s.name if s.name is not None else cell(s.first - 1, s.col)
        tx = ""
        if s.name is None and name is not None:
            ref = f"{q}!${col_letter(s.col)}${s.first}"
            tx = f'<c:tx><c:strRef><c:f>{esc(ref)}</c:f><c:strCache><c:ptCount val="1"/><c:pt idx="0"><c:v>{_ooxml_text(display(name))}</c:v></c:pt></c:strCache></c:strRef></c:tx>'
        elif name is not None:
            tx = f"<c:tx><c:v>{_ooxml_text(str(name))}</c:v></c:tx>"
        vals = [cell(i, s.col) for i in range(s.first, s.last + 1)]
        vp = "".join(f'<c:pt idx="{n}"><c:v>{_num(v)}</c:v></c:pt>' for n, v in enumerate(vals) if isinstance(v, (int, float)) and not isinstance(v, bool) and _num(v))
        sers.append(
            f'<c:ser><c:idx val="{k}"/><c:order val="{k}"/>{tx}<c:invertIfNegative val="0"/>{cat}'
            f'<c:val><c:numRef><c:f>{esc(area(s.first, s.last, s.col))}</c:f><c:numCache><c:formatCode>General</c:formatCode><c:ptCount val="{len(vals)}"/>{vp}</c:numCache></c:numRef></c:val></c:ser>'
        )
    a1, a2 = 50010000 + uid * 2, 50010001 + uid * 2
    bar_dir = "bar" if ch.horizontal else "col"
    overlap = '<c:overlap val="100"/>' if ch.stacked else ""
    legend = '<c:legend><c:legendPos val="b"/><c:overlay val="0"/></c:legend>' if len(ch.series) > 1 else ""
    title = (
        f'<c:title><c:tx><c:rich><a:bodyPr/><a:lstStyle/><a:p><a:pPr><a:defRPr sz="1200" b="1"/></a:pPr><a:r><a:rPr lang="en-US" sz="1200" b="1"/><a:t>{esc(ch.title)}</a:t></a:r></a:p></c:rich></c:tx><c:overlay val="0"/></c:title><c:autoTitleDeleted val="0"/>'
        if ch.title else '<c:autoTitleDeleted val="1"/>'
    )
    # horizontal bars: first category on top, value axis below
    cat_orient, val_cross = ("maxMin", "max") if ch.horizontal else ("minMax", "autoZero")
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="{NS_REL}">'
        f'<c:lang val="en-US"/><c:roundedCorners val="0"/><c:chart>{title}<c:plotArea><c:layout/>'
        f'<c:barChart><c:barDir val="{bar_dir}"/><c:grouping val="{"stacked" if ch.stacked else "clustered"}"/><c:varyColors val="0"/>{"".join(sers)}'
        f'<c:gapWidth val="80"/>{overlap}<c:axId val="{a1}"/><c:axId val="{a2}"/></c:barChart>'
        f'<c:catAx><c:axId val="{a1}"/><c:scaling><c:orientation val="{cat_orient}"/></c:scaling><c:delete val="0"/><c:axPos val="{"l" if ch.horizontal else "b"}"/>'
        f'{cat_fmt}<c:tickLblPos val="nextTo"/><c:crossAx val="{a2}"/><c:crosses val="autoZero"/><c:auto val="1"/><c:lblAlgn val="ctr"/><c:lblOffset val="100"/><c:noMultiLvlLbl val="0"/></c:catAx>'
        f'<c:valAx><c:axId val="{a2}"/><c:scaling><c:orientation val="minMax"/></c:scaling><c:delete val="0"/><c:axPos val="{"b" if ch.horizontal else "l"}"/><c:majorGridlines/>'
        f'<c:numFmt formatCode="General" sourceLinked="1"/><c:tickLblPos val="nextTo"/><c:crossAx val="{a1}"/><c:crosses val="{val_cross}"/><c:crossBetween val="between"/></c:valAx>'
        f'</c:plotArea>{legend}<c:plotVisOnly val="1"/><c:dispBlanksAs val="gap"/></c:chart></c:chartSpace>'
    ).encode("utf-8")


# ------------------------------------------------------------------ zip plumbing
def _raw_copy(fsrc, info: zipfile.ZipInfo, zdst: zipfile.ZipFile, name: str | None = None) -> None:
    """Copy one entry's compressed bytes as they are (no recompression)."""
    fsrc.seek(info.header_offset)
    h = fsrc.read(30)
    if h[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    n, m = struct.unpack("<HH", h[26:30])
    fsrc.seek(info.header_offset + 30 + n + m)
    zi = copy.copy(info)
    if name is not None:
        zi.filename = zi.orig_filename = name
    zi.flag_bits &= ~0x08  # sizes go into the local header, so no data descriptor
    strip = getattr(zipfile, "_strip_extra", None)
    if strip is not None and zi.extra:
        zi.extra = strip(zi.extra, (1,))  # FileHeader adds its own zip64 field if needed
    zdst.fp.seek(zdst.start_dir)
    zi.header_offset = zdst.fp.tell()
    zdst.fp.write(zi.FileHeader())
    left = info.compress_size
    while left:
        b = fsrc.read(min(left, 1 << 20))
        if not b:
            raise zipfile.BadZipFile(f"{info.filename} is cut short")
        zdst.fp.write(b)
        left -= len(b)
    zdst.filelist.append(zi)
    zdst.NameToInfo[zi.filename] = zi
    zdst.start_dir = zdst.fp.tell()
    zdst._didModify = True


def _can_raw_copy(info: zipfile.ZipInfo) -> bool:
    return not (info.flag_bits & 0x01) and info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _new_info(name: str, like: zipfile.ZipInfo | None) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, like.date_time if like else (1980, 1, 1, 0, 0, 0))
    zi.compress_type = zipfile.ZIP_DEFLATED
    if like is not None:
        zi.external_attr, zi.create_system = like.external_attr, like.create_system
    return zi


def _write_part(zout: zipfile.ZipFile, name: str, data, like: zipfile.ZipInfo | None, big: bool = False) -> None:
    zi = _new_info(name, like)
    if isinstance(data, (bytes, bytearray)):
        zout.writestr(zi, data, compresslevel=1 if len(data) > (4 << 20) else 6)
        return
    # a sheet we make (a Contact plan, an Issues list) over 1 MB is packed as fast as an
    # edited one: its first MB tells
    data = iter(data)
    head, size = [], 0
    for piece in data:
        head.append(piece)
        size += len(piece)
        if size > (1 << 20):
            break
    zi._compresslevel = 1 if big or size > (1 << 20) else 6
    with zout.open(zi, "w", force_zip64=big) as w:
        for piece in chain(head, data):
            w.write(piece)


class _Behind:
    """Calls `write` with each piece from a thread (zlib packs and the file writes without
    the GIL), so the next rows are spliced meanwhile; its errors come back on put or close."""

    def __init__(self, write):
        import queue
        import threading

        self.write, self.error, self.done = write, None, False
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            b = self.queue.get()
            if b is None:
                return
            if self.error is None:
                try:
                    self.write(b)
                except BaseException as e:  # noqa: BLE001 - raised in the writer's thread by put/close
                    self.error = e

    def put(self, b: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(b)

    def close(self) -> None:
        self.done = True
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        if not self.done:
            self.done = True
            self.queue.put(None)
            self.thread.join()


# ------------------------------------------------------------------ write_workbook
def _report_kept_formulas(kept: list[tuple[int, int]], sheet: str, report: WriteReport) -> None:
    by_col: dict[int, list[int]] = {}
    for r, c in kept:
        by_col.setdefault(c, []).append(r)
    for c, rows in sorted(by_col.items()):
        refs = ", ".join(cell_ref(r, c) for r in rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        report.problems.append(Problem(
            f"{len(rows)} cell{'s' if len(rows) > 1 else ''} of column {col_letter(c)} hold{'' if len(rows) > 1 else 's'} "
            f"a formula ({refs}); cxrules never writes a value over a formula, so they were kept",
            WARNING, "formula-kept", sheet=sheet, row=rows[0], column=col_letter(c),
            suggestion="delete the formulas in that column if cxrules should fill it"))


def _record_owned(pkg: Package, sh: Sheet, owned: set[tuple[int, int]]) -> None:
    """The sheet's OWNED_NAME: its header cells, sorted so a rerun writes the same bytes."""
    q = _quote_sheet(sh.name)
    value = ",".join(f"{q}!${col_letter(c)}${r}" for r, c in sorted(owned, key=lambda rc: (rc[1], rc[0])))
    mine = [d for d in pkg.defined_names() if d.get("name") == OWNED_NAME and d.get("localSheetId") == str(sh.index)]
    for d in mine[1:]:
        pkg.remove_defined_name(d)
    if not value:
        if mine:
            pkg.remove_defined_name(mine[0])
    elif mine:
        pkg.set_defined_name_value(mine[0], value)
    else:
        pkg.add_defined_name(OWNED_NAME, value, sh.index)


PRINT_TITLES = "_xlnm.Print_Titles"


def _print_titles(pkg: Package, sh: Sheet, row: int, replace: bool) -> None:
    """Print row `row` on every page. A person's print titles are kept unless `replace`
    (sheets cxrules makes): they are part of the page setup the person chose."""
    mine = [d for d in pkg.defined_names() if d.get("name") == PRINT_TITLES and d.get("localSheetId") == str(sh.index)]
    if mine and not replace:
        return
    for d in mine:
        pkg.remove_defined_name(d)
    pkg.add_defined_name(PRINT_TITLES, f"{_quote_sheet(sh.name)}!${row}:${row}", sh.index, hidden=False)


_S_ATTR = re.compile(rb'<(?:\w+:)?c\b[^>]*?\ss="(\d+)"')


def _styles_named(zin: zipfile.ZipFile, pkg: Package) -> int:
    """How many cell formats the sheets of a package without a styles part name."""
    top = 0
    for sh in pkg.sheets:
        if sh.part in pkg.names:
            with zin.open(sh.part) as f:
                carry = b""
                for chunk in iter(lambda: f.read(8 << 20), b""):
                    buf = carry + chunk
                    cut = buf.rfind(b"<")  # a cell cut at the chunk's end is read with the next
                    buf, carry = (buf[:cut], buf[cut:]) if cut >= 0 else (buf, b"")
                    top = max([top] + [int(x) for x in _S_ATTR.findall(buf)])
                top = max([top] + [int(x) for x in _S_ATTR.findall(carry)])
    return top + 1


def _check_edit(e: SheetEdit, where: str) -> None:
    spans: dict[int, list[tuple[int, int]]] = {}  # col -> row spans written (ranges stacked on a sheet)
    for c in e.columns:
        if c.kind not in KINDS:
            raise ValueError(f"{where}: unknown column kind {c.kind!r}; use one of {', '.join(KINDS)}")
        if not 0 <= c.col < MAX_COL:
            raise ValueError(f"{where}: column index {c.col} is outside the sheet")
        last = c.first_row + len(c.values) - 1
        lo = min(c.header_row, c.first_row) if c.header is not None else c.first_row
        hi = max(last, c.header_row if c.header is not None else last)
        if any(not (hi < a or lo > b) for a, b in spans.get(c.col, [])):
            raise ValueError(f"{where}: column {col_letter(c.col)} is written twice in the same rows")
        spans.setdefault(c.col, []).append((lo, hi))
        if c.first_row < 1 or last > MAX_ROW or not 1 <= c.header_row <= MAX_ROW:
            raise WorkbookError(f"{where}: column {col_letter(c.col)} would go past Excel's last row ({MAX_ROW})")
        if c.header is not None and c.first_row <= c.header_row <= last:
            raise ValueError(f"{where}: the header of column {col_letter(c.col)} is inside its values")
    for h in e.highlights:
        argb(h.fill)
        if h.font_color:
            argb(h.font_color)


def write_workbook(src_path, dst_path, edits: Sequence[SheetEdit] = (), new_sheets: Sequence[NewSheet] = (), limits=None,
                   properties: dict[str, str | None] | None = None, source_checks: dict | None = None) -> WriteReport:
    """Write edits and new sheets from src_path into dst_path (may be the same file).

    The result is written to a temporary file beside dst_path and moved over it at the
    end; on any failure dst_path is left as it was. limits: see open_workbook.
    properties: custom document properties to set (None as a value removes one); the
    workbook's other custom properties are kept. source_checks: {sheet part:
    splice_check.SourceCheck} started while the workbook was read; a sheet its check
    found plain has only what the writer makes of its own parsed (splice_check).
    """
    src, dst = Path(src_path), Path(os.path.realpath(dst_path))
    check_readable(src)
    check_not_open(src)
    vet_package(src, limits, inflate=False)  # zipfile stops at declared sizes, which this bounds
    check_not_open(dst)
    report = WriteReport()
    merged: dict[str, SheetEdit] = {}
    headers: dict[str, set] = {}
    for e in edits:
        m = merged.setdefault(e.sheet, SheetEdit(e.sheet))
        m.columns.extend(copy.copy(c) for c in e.columns)
        m.highlights.extend(e.highlights)
        if e.owned is not None:
            m.owned = (m.owned or set()) | set(e.owned)
        headers.setdefault(e.sheet, set()).add(e.header_row)
    for name, rows in headers.items():  # ranges stacked on a sheet: no one header to freeze
        merged[name].header_row = rows.pop() if len(rows) == 1 else None
    for e in merged.values():
        _check_edit(e, f"{src}: sheet '{e.sheet}'")
    tmp = None
    scratch = zscratch = zs = None
    try:
        with zipfile.ZipFile(src) as zin, open(src, "rb") as fsrc:
            pkg = Package(zin, src)
            styles_rel = pkg.rel_of_type(REL_STYLES)
            try:
                if styles_rel and styles_rel.part in pkg.names:
                    styles = Styles(unprefix(zin.read(styles_rel.part)))
                else:
                    styles = Styles(None, _styles_named(zin, pkg))
            except (WorkbookError, PartError):
                raise WorkbookError(f"{src}: was not saved by Excel in the usual form; open it in Excel and save it, then try again") from None
            by_name = {s.name.casefold(): s for s in pkg.sheets}

            # 1. edited sheets, streamed into a scratch zip
            scratch = files.scratch_file()
            zscratch = zipfile.ZipFile(scratch, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
            edited: dict[str, str] = {}  # part -> name in scratch
            for e in merged.values():
                sh = by_name.get(e.sheet.casefold())
                if sh is None:
                    raise WorkbookError(f"{src}: has no sheet '{e.sheet}'")
                if sh.kind != "worksheet" or sh.part not in pkg.names:
                    raise WorkbookError(f"{src}: sheet '{sh.name}' is a {sh.kind}, cxrules can only write into sheets of cells")
                try:
                    tables = sheet_tables(zin, sh.part)
                except WorkbookError as e:
                    raise WorkbookError(f"{src}: sheet '{sh.name}': {e}") from None
                for part, xml in extend_tables(zin, tables, e, sh.name, report).items():
                    pkg.changed[part] = xml
                with zin.open(sh.part) as f:
                    head = f.read(4096)
                prefix = main_prefix(head)
                rw = SheetRewriter(e, styles, pkg.date1904, sh.name, report)
                info = zin.getinfo(sh.part)
                big = info.file_size > (1 << 30)
                zi = _new_info(sh.part, info)
                zi._compresslevel = 1 if info.file_size > (1 << 20) else 6
                try:
                    with zin.open(sh.part) as fin, zscratch.open(zi, "w", force_zip64=big) as w:
                        chunks = iter(lambda: fin.read(SPLICE_PIECE), b"")
                        # parsed as it is written (no second read); a big part is packed by a
                        # thread and checked by a child process while the next rows are spliced
                        rw.own = _trusted(source_checks, sh.part, info, head) if prefix is None else None
                        checker = None if rw.own else well_formed_checker(sh.part, info.file_size)
                        packer = _Behind(w.write) if info.file_size >= CHECK_ELSEWHERE_FROM else None
                        put = packer.put if packer else w.write

                        def sink(b, put=put, checker=checker):
                            put(b)
                            checker.feed(b)

                        try:
                            rw.run(unprefix_stream(chunks, prefix) if prefix else chunks, sink if checker else put)
                            if packer:
                                packer.close()
                            if checker:
                                checker.close()
                        except PartError as e:
                            if e.args[0].startswith(f"part {sh.part} would not"):
                                raise check_failed(src, str(e)) from None
                            raise
                        finally:
                            if packer:
                                packer.abort()
                            if checker is not None and hasattr(checker, "abort"):
                                checker.abort()
                except WorkbookError as e:
                    if str(e).startswith(f"{src}: "):  # already says which file
                        raise
                    raise WorkbookError(f"{src}: {e}") from None
                except PartError as e:
                    raise WorkbookError(f"{src}: sheet '{sh.name}' cannot be rewritten ({e}); open the workbook in Excel and save it, then try again") from None
                edited[sh.part] = sh.part
                if rw.autofilter:
                    r1, c1, r2, c2 = rw.autofilter
                    ref = f"{_quote_sheet(sh.name)}!${col_letter(c1)}${r1}:${col_letter(c2)}${r2}"
                    for d in pkg.defined_names():
                        if d.get("name") == "_xlnm._FilterDatabase" and d.get("localSheetId") == str(sh.index):
                            pkg.set_defined_name_value(d, ref)
                _report_kept_formulas(rw.formulas_kept, sh.name, report)
                if e.owned is not None:
                    _record_owned(pkg, sh, e.owned)
                if e.header_row:
                    _print_titles(pkg, sh, e.header_row, replace=False)
            zscratch.close()

            # 2. custom document properties, before the Issues sheet is completed: it lists why they could not be set
            if properties:
                why = pkg.set_custom_properties(properties)
                if why:
                    report.problems.append(Problem(
                        f"{why}, so the stamp (version, rules hash, as-of) is only on the summary sheet",
                        WARNING, "properties-not-written",
                        suggestion="open the workbook in Excel and save it, then run cxrules again"))

            # 3. sheets we make
            for ns in new_sheets:
                if ns.complete is not None:
                    ns.complete(list(report.problems))
            if new_sheets:
                _add_new_sheets(pkg, list(new_sheets), styles, report)

            # 4. styles
            if styles.changed:
                data = styles.to_bytes()
                if styles_rel is None or styles_rel.part not in pkg.names:
                    part = "xl/styles.xml"
                    add_rel(pkg.wb_rels, REL_STYLES, rel_target(pkg.wb_part, part))
                    pkg.add_part(part, data, CT_STYLES)
                else:
                    pkg.changed[styles_rel.part] = data
            _record_version(pkg)
            pkg.finish()

            # 5. assemble beside the destination, then move it over
            fd, tmp = files.make_temp(dst)
            with os.fdopen(fd, "wb") as fout:
                with zipfile.ZipFile(fout, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zout:
                    zs = zipfile.ZipFile(scratch) if edited else None
                    for info in zin.infolist():
                        name = info.filename
                        if name in pkg.removed:
                            continue
                        if name in edited:
                            _raw_copy(scratch, zs.getinfo(name), zout)
                        elif name in pkg.changed:
                            _write_part(zout, name, pkg.changed[name], info)
                        elif _can_raw_copy(info):
                            _raw_copy(fsrc, info, zout)
                        else:
                            zout.writestr(info, zin.read(name))
                    for name, data in pkg.new_parts.items():
                        _write_part(zout, name, data, None)
                fout.flush()
                os.fsync(fout.fileno())
            verify_written(tmp, set(edited) | set(pkg.changed) | set(pkg.new_parts), src, frozenset(edited))
            _replace(tmp, dst, src)
            tmp = None
    except WorkbookError:
        raise
    except (zipfile.BadZipFile, KeyError, struct.error, zlib.error, ValueError, EOFError) as e:  # a part that does not read as Excel writes it
        raise WorkbookError(f"{src}: is damaged ({e}); open it in Excel, let it repair, and save it again") from None
    except OSError as e:  # disk full, TMPDIR full, folder gone, ...: nothing was changed
        raise files.write_error(src, dst, e) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        for z in (zs, zscratch):
            if z is not None:
                try:
                    z.close()
                except (OSError, ValueError):
                    pass
        if scratch is not None:
            scratch.close()
    return report


def _trusted(source_checks, part: str, info: zipfile.ZipInfo, head: bytes):
    """A FragmentCheck when the part's source check found these very bytes plain, else None."""
    from .splice_check import FragmentCheck

    check = (source_checks or {}).get(part)
    if check is None:
        return None
    plain = check.verdict(wait=_CHECK_GRACE)  # not done by now: parsing all that is written is as quick
    if plain is None or plain.crc != info.CRC or plain.size != info.file_size:
        return None
    try:
        return FragmentCheck(part, head)
    except PartError:
        return None


_CHECK_GRACE = 0.25  # seconds


def _record_version(pkg: Package) -> None:
    """One workbook-level VERSION_NAME holding this cxrules' version, the last defined name
    (names of our sheets are re-added on each run: after them, a rerun writes the same bytes)."""
    value = '"' + __version__ + '"'
    names = pkg.defined_names()
    mine = [d for d in names if (d.get("name") or "").casefold() == VERSION_NAME and d.get("localSheetId") is None]
    if len(mine) == 1 and mine[0] is names[-1] and mine[0].text == value:
        return
    for d in mine:
        pkg.remove_defined_name(d)
    pkg.add_defined_name(VERSION_NAME, value)


def _replace(tmp: str, dst: Path, src: Path) -> None:
    check_not_open(dst)
    files.replace(tmp, dst, src)


def _free_name(asked: str, names_used: set[str], report: WriteReport) -> str:
    """`asked`, or 'asked (2)' and so on when a person's sheet has that name (said once)."""
    name, n = asked, 2
    while name.casefold() in names_used:
        suffix = f" ({n})"
        name = asked[: 31 - len(suffix)] + suffix
        n += 1
    if name != asked:
        report.problems.append(Problem(
            f"the workbook already has its own sheet '{asked}', so cxrules wrote '{name}'",
            WARNING, "sheet-name-taken", sheet=name,
            suggestion=f"rename your sheet '{asked}' if cxrules should use that name; nothing else to do"))
    return name


def _named_as(name: str, asked: str) -> bool:
    """Is `name` what _free_name gives for `asked` (itself, or with ' (n)' after it)?"""
    m = re.fullmatch(r"(.*) \(\d+\)", name)
    return name.casefold() == asked.casefold() or (m is not None and asked.casefold().startswith(m.group(1).casefold()))


def _add_new_sheets(pkg: Package, new_sheets: list[NewSheet], styles: Styles, report: WriteReport) -> None:
    names_used = {s.name.casefold() for s in pkg.sheets}
    marked: dict[str, int] = {}  # asked name (casefolded) -> sheet index
    for d in pkg.defined_names():
        i = d.get("localSheetId", "")
        if d.get("name") == MARKER and i.isdigit():
            v = (d.text or "").strip()
            if v.startswith('"') and v.endswith('"'):
                marked[v[1:-1].replace('""', '"').casefold()] = int(i)
    app_added: list[str] = []
    for ns in new_sheets:
        asked = _clean_sheet_name(ns.name)
        idx = marked.get(asked.casefold())
        for other in ns.also:  # made by an earlier run in another language
            if idx is None:
                idx = marked.get(_clean_sheet_name(other).casefold())
        sheet = pkg.sheets[idx] if idx is not None and idx < len(pkg.sheets) else None
        if sheet is not None and sheet.kind == "worksheet" and sheet.part:
            if not _named_as(sheet.name, asked):  # an earlier run's name in another language
                names_used.discard(sheet.name.casefold())
                name = _free_name(asked, names_used, report)
                names_used.add(name.casefold())
                sheet = pkg.rename_sheet(sheet, name)
            name, part, index = sheet.name, sheet.part, sheet.index
            # our sheet from an earlier run: drop its drawing and charts, and its names
            old_rels = pkg.read_part(rels_path(part))
            for rel in parse_rels(old_rels.data.decode("utf-8", "replace") if old_rels else "", part):
                if rel.type == REL_DRAWING and rel.part in pkg.names:
                    for r2 in parse_rels(read_text(pkg.zin, rels_path(rel.part)) or "", rel.part):
                        if not r2.external and r2.part in pkg.names:
                            pkg.remove_part(r2.part)
                    pkg.remove_part(rel.part)
            if rels_path(part) in pkg.names:
                pkg.removed.add(rels_path(part))
            for d in pkg.defined_names():
                if d.get("localSheetId") == str(index) and d.get("name") in (MARKER, "_xlnm._FilterDatabase", PRINT_TITLES):
                    pkg.remove_defined_name(d)
        else:
            name = _free_name(asked, names_used, report)
            names_used.add(name.casefold())
            part = _next_name({p.casefold() for p in pkg.taken()}, "xl/worksheets/sheet%d.xml")
            index = len(pkg.sheets)
            rid, sheet_id = pkg.add_sheet(name, rel_target(pkg.wb_part, part))
            pkg.sheets.append(Sheet(name, index, True, "worksheet", "visible", part, rid, sheet_id))
            app_added.append(name)
        report.sheet_names[ns.name] = name
        pkg.add_defined_name(MARKER, '"' + asked.replace('"', '""') + '"', index)
        if ns.autofilter and ns.rows:
            width = max(len(r) for r in ns.rows)
            ref = f"{_quote_sheet(name)}!$A$1:${col_letter(max(width - 1, 0))}${len(ns.rows)}"
            pkg.add_defined_name("_xlnm._FilterDatabase", ref, index)
        if ns.freeze_rows:
            pkg.add_defined_name(PRINT_TITLES, f"{_quote_sheet(name)}!$1:${ns.freeze_rows}", index, hidden=False)
        drawing_rid = None
        if ns.charts:
            taken = {p.casefold() for p in pkg.taken()}
            drawing = _next_name(taken, "xl/drawings/drawing%d.xml")
            sheet_rels = new_rels(rels_path(part))
            drawing_rid = add_rel(sheet_rels, REL_DRAWING, rel_target(part, drawing))
            drels = new_rels(rels_path(drawing))
            for k, ch in enumerate(ns.charts):
                chart = _next_name({p.casefold() for p in pkg.taken()}, "xl/charts/chart%d.xml")
                add_rel(drels, REL_CHART, rel_target(drawing, chart))
                pkg.add_part(chart, chart_xml(ch, ns, name, k + 17 * index), CT_CHART)
            pkg.add_part(drawing, drawing_xml(ns.charts), CT_DRAWING)
            pkg.add_part(rels_path(drawing), drels.to_bytes(), None)
            pkg.add_part(rels_path(part), sheet_rels.to_bytes(), None)
        layout = _column_layout(ns)
        pkg.add_part(part, new_sheet_xml(ns, new_sheet_styles(ns, styles, layout), pkg.date1904, drawing_rid, layout), CT_WORKSHEET)
    app_rel = next((r for r in parse_rels(read_text(pkg.zin, "_rels/.rels") or "", "") if r.type.endswith("/extended-properties")), None)
    if (app_added or pkg.renamed) and app_rel and app_rel.part in pkg.names:
        try:
            app = pkg.read_part(app_rel.part)
        except WorkbookError:
            app = None  # a damaged app.xml is the writer's; Excel rebuilds the titles
        ws_names = [s.name for s in pkg.sheets if s.kind == "worksheet" and s.name not in app_added]
        if app is not None and update_app_titles(app, ws_names, app_added, pkg.renamed):
            pkg.changed[app_rel.part] = app.to_bytes()
