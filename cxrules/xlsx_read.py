"""Reading .xlsx/.xlsm workbooks: values through python-calamine, the rest from the XML.

Coordinates: rows are Excel row numbers (1-based), columns are 0-based indexes (A = 0).
"""
from __future__ import annotations

import datetime as dt
import itertools
import operator
import posixpath
import queue
import re
import threading
import xml.etree.ElementTree as ET
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import python_calamine as _cal

from .problems import CxError

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL_WORKSHEET = NS_REL + "/worksheet"
REL_CHARTSHEET = NS_REL + "/chartsheet"
REL_TABLE = NS_REL + "/table"
REL_STYLES = NS_REL + "/styles"
REL_CALCCHAIN = NS_REL + "/calcChain"
REL_OFFICE_DOC = NS_REL + "/officeDocument"
REL_CUSTOM_PROPS = NS_REL + "/custom-properties"
NS_CUSTOM_PROPS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"

OK_SUFFIXES = (".xlsx", ".xlsm", ".xltx", ".xltm")
MAX_ROW, MAX_COL = 1048576, 16384
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _xml_unescape(s: str, entities: dict[str, str]) -> str:
    """xml.sax.saxutils.unescape, whose module imports urllib, http and email (13 ms a run)."""
    s = s.replace("&lt;", "<").replace("&gt;", ">")
    for k, v in entities.items():
        s = s.replace(k, v)
    return s.replace("&amp;", "&")


class WorkbookError(CxError):
    """A workbook that cannot be read or written; the text says which file and what to do."""


class DamagedPart(zipfile.BadZipFile):
    """A part of the package that cannot be read (not UTF-8 text, a table whose range is not
    a range). A BadZipFile, so every caller that reports a damaged package reports this too."""


@dataclass(frozen=True)
class CellError:
    """An Excel error value such as #N/A, distinct from the text '#N/A' typed by a person."""

    code: str

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True)
class Sheet:
    name: str
    index: int  # position among the workbook's sheets (chart sheets count)
    visible: bool
    kind: str = "worksheet"  # worksheet | chartsheet | dialogsheet | macrosheet
    state: str = "visible"  # visible | hidden | veryHidden
    part: str = field(default="", repr=False, compare=False)  # zip name, e.g. xl/worksheets/sheet1.xml
    rid: str = field(default="", repr=False, compare=False)
    sheet_id: int = field(default=0, repr=False, compare=False)


@dataclass(frozen=True)
class Table:
    """An Excel table (ListObject). ref = (first_row, first_col, last_row, last_col)."""

    name: str
    ref: tuple[int, int, int, int]
    header_rows: int = 1
    totals_rows: int = 0
    columns: tuple[str, ...] = ()
    part: str = field(default="", repr=False, compare=False)

    @property
    def header_row(self) -> int | None:
        return self.ref[0] if self.header_rows else None


@dataclass
class SheetData:
    """One sheet's cells. rows[i][j] is Excel row first_row + i, column first_col + j."""

    name: str
    rows: list[list]
    first_row: int = 1
    first_col: int = 0
    tables: list[Table] = field(default_factory=list)
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (row, col) of cells holding a formula but no cached value (never calculated)
    formula_cells_without_value: list[tuple[int, int]] = field(default_factory=list)
    # header cells (row, col) of the columns cxrules wrote on earlier runs; None: not
    # recorded (a workbook from before ownership was kept, or one open in Excel)
    owned: set[tuple[int, int]] | None = None
    # (row, col) of formula cells whose stored value is a placeholder: the workbook asks to
    # be calculated when opened (fullCalcOnLoad), as writers that do not calculate do
    formula_placeholders: list[tuple[int, int]] = field(default_factory=list)
    # False: no cell holds an Excel error (#N/A...), so no column needs looking through for one
    error_cells: bool | None = None

    def excel_row(self, i: int) -> int:
        return self.first_row + i

    def column(self, j: int) -> int:
        return self.first_col + j

    def cell_ref(self, i: int, j: int) -> str:
        return cell_ref(self.first_row + i, self.first_col + j)

    def value(self, row: int, col: int):
        """The value at Excel row `row`, column index `col` (None outside the data)."""
        i, j = row - self.first_row, col - self.first_col
        if 0 <= i < len(self.rows) and 0 <= j < len(self.rows[i]):
            return self.rows[i][j]
        return None


# ------------------------------------------------------------------ cell references
_LETTERS: dict[int, str] = {}


def col_letter(col: int) -> str:
    """0 -> 'A', 25 -> 'Z', 26 -> 'AA'."""
    s = _LETTERS.get(col)
    if s is None:
        n, out = col + 1, ""
        while n:
            n, r = divmod(n - 1, 26)
            out = chr(65 + r) + out
        _LETTERS[col] = s = out
    return s


def col_index(letters: str | bytes) -> int:
    if isinstance(letters, bytes):
        letters = letters.decode("ascii")
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


def cell_ref(row: int, col: int) -> str:
    return f"{col_letter(col)}{row}"


_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d+)$")


def parse_ref(ref: str) -> tuple[int, int]:
    m = _REF.match(ref.strip())
    if not m:
        raise ValueError(f"not a cell reference: {ref}")
    return int(m.group(2)), col_index(m.group(1))


def parse_range(ref: str) -> tuple[int, int, int, int]:
    a, _, b = ref.partition(":")
    r1, c1 = parse_ref(a)
    r2, c2 = parse_ref(b) if b else (r1, c1)
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


def range_ref(r1: int, c1: int, r2: int, c2: int) -> str:
    a, b = cell_ref(r1, c1), cell_ref(r2, c2)
    return a if a == b else f"{a}:{b}"


# ------------------------------------------------------------------ package parts
_ATTR = re.compile(r'([\w:.-]+)\s*=\s*("([^"]*)"|\'([^\']*)\')')


def attrs(tag: str) -> dict[str, str]:
    """Attributes of one start tag, unescaped; prefixes kept (r:id)."""
    out = {}
    for m in _ATTR.finditer(tag):
        v = m.group(3) if m.group(3) is not None else m.group(4)
        out[m.group(1)] = _xml_unescape(v, {"&quot;": '"', "&apos;": "'"})
    return out


def rels_path(part: str) -> str:
    d, b = posixpath.split(part)
    return posixpath.join(d, "_rels", b + ".rels")


def resolve_target(source_part: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source_part), target))


@dataclass
class Rel:
    id: str
    type: str
    target: str  # as written
    part: str  # resolved zip name ("" for external)
    external: bool = False


def parse_rels(text: str, source_part: str) -> list[Rel]:
    out = []
    for m in re.finditer(r"<(?:\w+:)?Relationship\b[^>]*>", text):
        a = attrs(m.group(0))
        ext = a.get("TargetMode") == "External"
        target = a.get("Target", "")
        out.append(Rel(a.get("Id", ""), a.get("Type", ""), target, "" if ext else resolve_target(source_part, target), ext))
    return out


def read_text(zf: zipfile.ZipFile, name: str) -> str | None:
    try:
        data = zf.read(name)
    except KeyError:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DamagedPart(f"{name} is not UTF-8 text") from None


def workbook_part(zf: zipfile.ZipFile) -> str:
    text = read_text(zf, "_rels/.rels") or ""
    for rel in parse_rels(text, ""):
        if rel.type.endswith("/officeDocument"):
            return rel.part
    return "xl/workbook.xml"


def parse_sheets(wb_xml: str, wb_rels: list[Rel]) -> list[Sheet]:
    by_id = {r.id: r for r in wb_rels}
    sheets = []
    for i, m in enumerate(re.finditer(r"<(?:\w+:)?sheet\b[^>]*>", wb_xml)):
        a = attrs(m.group(0))
        rid = next((v for k, v in a.items() if k.endswith(":id") or k == "id"), "")
        rel = by_id.get(rid)
        kind = "worksheet"
        if rel is not None:
            kind = rel.type.rsplit("/", 1)[-1]
            if kind not in ("worksheet", "chartsheet", "dialogsheet"):
                kind = "macrosheet" if "macro" in kind.lower() else kind
        state = a.get("state", "visible")
        sheets.append(Sheet(a.get("name", ""), i, state == "visible", kind, state, rel.part if rel else "", rid, int(a.get("sheetId", "0") or 0)))
    return sheets


def parse_table(text: str, part: str) -> Table:
    m = re.search(r"<(?:\w+:)?table\b[^>]*>", text)
    a = attrs(m.group(0)) if m else {}
    cols = tuple(attrs(c.group(0)).get("name", "") for c in re.finditer(r"<(?:\w+:)?tableColumn\b[^>]*>", text))
    try:
        ref = parse_range(a.get("ref", "A1"))
        header_rows, totals_rows = int(a.get("headerRowCount", "1")), int(a.get("totalsRowCount", "0"))
    except ValueError:
        raise DamagedPart(f"the table in {part} has no valid range ({a.get('ref')!r})") from None
    if not (1 <= ref[0] and ref[2] <= MAX_ROW and ref[3] < MAX_COL and header_rows >= 0 and totals_rows >= 0):
        raise DamagedPart(f"the table in {part} has no valid range ({a.get('ref')!r})")
    return Table(a.get("displayName") or a.get("name", ""), ref, header_rows, totals_rows, cols, part)


def sheet_tables(zf: zipfile.ZipFile, sheet_part: str) -> list[Table]:
    text = read_text(zf, rels_path(sheet_part))
    if not text:
        return []
    out: list[Table] = []
    for rel in parse_rels(text, sheet_part):
        if rel.type == REL_TABLE and not rel.external and rel.part not in {t.part for t in out}:
            t = read_text(zf, rel.part)
            if t:
                out.append(parse_table(t, rel.part))
    for k, a in enumerate(out):  # Excel never saves overlapping tables; their rows would be read twice
        for b in out[k + 1:]:
            if not (a.ref[2] < b.ref[0] or b.ref[2] < a.ref[0] or a.ref[3] < b.ref[1] or b.ref[3] < a.ref[1]):
                raise WorkbookError(f"tables '{a.name}' and '{b.name}' of one sheet overlap, which Excel never saves; "
                                    "open the workbook in Excel, let it repair, and save it again")
    return out


# ------------------------------------------------------------------ columns cxrules owns
# A hidden sheet-local defined name lists the header cells of the columns cxrules wrote.
# Excel moves a name's references when a person inserts or deletes rows and columns, so
# the record follows the columns; a deleted column becomes #REF! and is dropped.
OWNED_NAME = "_cxrules_columns"
_OWNED_REF = re.compile(r"(?:'(?:[^']|'')*'|[^'!,]+)!\$?([A-Za-z]{1,3})\$?(\d+)")


def parse_owned(value: str) -> set[tuple[int, int]]:
    out = set()
    for m in _OWNED_REF.finditer(value):
        out.add((int(m.group(2)), col_index(m.group(1))))
    return out


# ------------------------------------------------------------------ checks before opening
def lock_file(path: Path) -> Path | None:
    """Excel keeps '~$name' beside a workbook while it is open."""
    lock = path.with_name("~$" + path.name)
    try:
        return lock if lock.exists() else None
    except OSError:  # '~$' made the name too long: Excel could not have made that lock either
        return None


def check_readable(path: Path) -> None:
    """Refuse, in plain words, files cxrules cannot use."""
    from .files import check_input

    name = str(path)
    check_input(path)  # a regular file: a FIFO or device is refused before it is opened
    suffix = path.suffix.lower()
    if path.name.startswith("~$"):
        raise WorkbookError(f"{name}: is Excel's lock file, not a workbook; use the workbook beside it")
    with open(path, "rb") as f:
        head = f.read(8)
        ole = head == OLE2_MAGIC
        encrypted = False
        if ole:
            f.seek(0)
            encrypted = "EncryptionInfo".encode("utf-16-le") in f.read(4 << 20)
    if ole and encrypted:
        raise WorkbookError(
            f"{name}: is protected with a password (encrypted), so it cannot be read; in Excel use "
            "File > Info > Protect Workbook > Encrypt with Password, clear the password, and save"
        )
    if suffix == ".xls":
        raise WorkbookError(f"{name}: is an old Excel 97-2003 workbook (.xls); open it in Excel and save it as .xlsx (Excel Workbook)")
    if suffix == ".xlsb":
        raise WorkbookError(f"{name}: is an Excel binary workbook (.xlsb); open it in Excel and save it as .xlsx (Excel Workbook)")
    if ole:
        raise WorkbookError(
            f"{name}: is not an .xlsx inside: it is either protected with a password or an old .xls workbook renamed; "
            "open it in Excel, remove any password (File > Info > Protect Workbook), and save it as .xlsx (Excel Workbook)"
        )
    if suffix not in OK_SUFFIXES:
        raise WorkbookError(f"{name}: is not an Excel workbook (.xlsx or .xlsm); save it from Excel as .xlsx")
    if not zipfile.is_zipfile(path):
        raise WorkbookError(f"{name}: is damaged or not really an Excel workbook (it is not a zip package); open it in Excel, let it repair, and save it again")


def check_not_open(path: Path) -> None:
    lock = lock_file(path)
    if lock is not None:
        raise WorkbookError(
            f"{path}: is open in Excel (lock file {lock.name} beside it); close it in Excel first "
            f"(if Excel is not running, delete {lock.name})"
        )


# ------------------------------------------------------------------ the workbook
class Workbook:
    """An open workbook: sheet list, values and the facts rules need (tables, merges, errors)."""

    def __init__(self, path: Path, zf: zipfile.ZipFile, book, wb_part: str, wb_xml: str, sheets: list[Sheet]):
        self.path = path
        self._zf = zf
        self._names = set(zf.namelist())
        self._book = book
        self._deferred: set[str] = set()  # sheet parts whose read also checks their size (package_guard.inflated)
        # big sheet parts checked by a child process while they are read (splice_check)
        self.source_checks: dict = {}
        self.check_sources = False
        self.workbook_part = wb_part
        self.sheets = sheets
        self._wb_xml = wb_xml
        m = re.search(r"<(?:\w+:)?workbookPr\b[^>]*>", wb_xml)
        self.date1904 = bool(m) and attrs(m.group(0)).get("date1904", "0").lower() in ("1", "true")
        m = re.search(r"<(?:\w+:)?calcPr\b[^>]*>", wb_xml)
        # xlsxwriter, pandas and polars write 0 for every formula and set this flag
        self.full_calc_on_load = bool(m) and attrs(m.group(0)).get("fullCalcOnLoad", "0").lower() in ("1", "true")

    # lookups
    @property
    def worksheets(self) -> list[Sheet]:
        return [s for s in self.sheets if s.kind == "worksheet"]

    def sheet(self, name: str) -> Sheet:
        for s in self.sheets:
            if s.name == name:
                return s
        for s in self.sheets:
            if s.name.casefold() == str(name).casefold():
                return s
        from .problems import did_you_mean

        hint = did_you_mean(str(name), [s.name for s in self.sheets])
        names = ", ".join(f"'{s.name}'" for s in self.sheets)
        raise WorkbookError(f"{self.path}: has no sheet '{name}'" + (f"; {hint}" if hint else f"; its sheets are {names}"))

    def owned_cells(self, name: str) -> set[tuple[int, int]] | None:
        """Header cells of the columns cxrules wrote on this sheet (see OWNED_NAME).

        None when the workbook records no ownership at all but cxrules wrote it before
        (its sheets carry the _cxrules_made marker): then columns under an output's
        header are taken as cxrules' own, as they were.
        """
        index = next((s.index for s in self.sheets if s.name == name), None)
        out: set[tuple[int, int]] = set()
        any_owned = False
        for a, v in self._defined_names():
            if a.get("name") != OWNED_NAME:
                continue
            any_owned = True
            if a.get("localSheetId") == str(index):
                out |= parse_owned(v)
        if not any_owned and self.cxrules_sheets:
            return None
        return out

    def _defined_names(self):
        for m in re.finditer(r"<(?:\w+:)?definedName\b([^>]*)>([^<]*)</(?:\w+:)?definedName>", self._wb_xml):
            yield attrs(m.group(1)), _xml_unescape(m.group(2), {"&quot;": '"', "&apos;": "'"}).strip()

    @property
    def cxrules_sheets(self) -> dict[str, str]:
        """Sheets cxrules made on an earlier run: sheet name -> the name it was asked for."""
        out = {}
        for m in re.finditer(r"<(?:\w+:)?definedName\b([^>]*)>([^<]*)</(?:\w+:)?definedName>", self._wb_xml):
            a = attrs(m.group(1))
            i = a.get("localSheetId", "")
            v = _xml_unescape(m.group(2), {"&quot;": '"'}).strip()
            if a.get("name") == "_cxrules_made" and i.isdigit() and int(i) < len(self.sheets) and v[:1] == v[-1:] == '"':
                out[self.sheets[int(i)].name] = v[1:-1].replace('""', '"')
        return out

    def tables(self, name: str) -> list[Table]:
        return sheet_tables(self._zf, self.sheet(name).part)

    def custom_properties(self) -> dict[str, str]:
        """The document's custom properties (Excel: File > Info > Properties > Advanced >
        Custom), name -> value as its text; empty when it has none."""
        from .xmlparts import PartError, XmlPart

        rel = next((r for r in parse_rels(read_text(self._zf, "_rels/.rels") or "", "")
                    if r.type == REL_CUSTOM_PROPS and not r.external), None)
        if rel is None or rel.part not in self._names:
            return {}
        try:
            root = XmlPart(rel.part, self._zf.read(rel.part)).root
        except PartError as e:
            raise WorkbookError(f"{self.path}: its custom document properties are damaged ({e}); "
                                "open it in Excel and save it again") from None
        out: dict[str, str] = {}
        for p in root.findall(f"{{{NS_CUSTOM_PROPS}}}property"):
            value = next((c for c in p if isinstance(c.tag, str)), None)
            if p.get("name") is not None:
                out.setdefault(p.get("name"), (value.text or "") if value is not None else "")
        return out

    def read_sheet(self, name: str) -> SheetData:
        sh = self.sheet(name)
        if sh.kind != "worksheet":
            raise WorkbookError(f"{self.path}: sheet '{sh.name}' is a {sh.kind.replace('sheet', ' sheet')}, not a sheet of cells")
        if sh.part not in self._names:
            raise WorkbookError(f"{self.path}: is damaged: sheet '{sh.name}' is listed, but its part {sh.part or '(none)'} is not in the file; "
                                "open it in Excel, let it repair, and save it again")
        from .package_guard import PackageError, inflated  # it imports this module

        try:
            area = UsedArea()
            pieces = inflated(self.path, self._zf.getinfo(sh.part), 8 << 20) if sh.part in self._deferred else None
            errors, no_value, placeholders = scan_sheet_xml(self._zf, sh.part, area.see, self.full_calc_on_load, pieces)
            area.check(self.path, sh.name, self._zf, sh.part)  # before calamine lays the sheet out
            tables = sheet_tables(self._zf, sh.part)
        except PackageError:  # says the file and the part already
            raise
        except WorkbookError as e:
            raise WorkbookError(f"{self.path}: sheet '{sh.name}': {e}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, ET.ParseError) as e:
            raise WorkbookError(f"{self.path}: sheet '{sh.name}' is damaged ({e}); open it in Excel, let it repair, and save it again") from None
        except OSError as e:  # the file itself (reopened to unpack the sheet) went away
            raise WorkbookError(f"{self.path}: sheet '{sh.name}' cannot be read ({e.strerror or e})") from None
        if self.check_sources and sh.part not in self.source_checks:  # after the scan: it unpacks in a thread too
            self._start_source_check(sh.part)
        try:
            cs = self._book.get_sheet_by_name(sh.name)
            start = cs.start
            rows = _calamine_rows(cs, start)
            merged_raw = cs.merged_cell_ranges or []
            del cs  # calamine's own copy of the cells, before ours are made over
        except _cal.CalamineError as e:
            raise WorkbookError(f"{self.path}: sheet '{sh.name}' cannot be read ({e}); open it in Excel and save it again") from None
        first_row, first_col = (start[0] + 1, start[1]) if start else (1, 0)
        # calamine gives '' for blank cells (rows holding one found at C speed)
        for i in itertools.compress(range(len(rows)), map(operator.contains, rows, itertools.repeat(""))):
            rows[i] = [None if v == "" else v for v in rows[i]]
        while rows and not any(v is not None for v in rows[-1]):
            rows.pop()
        for (r, c), code in errors.items():
            i, j = r - first_row, c - first_col
            if i < 0 or j < 0:  # outside calamine's area: shift the grid
                rows, first_row, first_col = _grow(rows, first_row, first_col, r, c)
                i, j = r - first_row, c - first_col
            while len(rows) <= i:
                rows.append([])
            row = rows[i]
            if len(row) <= j:
                row.extend([None] * (j + 1 - len(row)))
            row[j] = CellError(code)
        merged = [(a[0] + 1, a[1], b[0] + 1, b[1]) for a, b in merged_raw]
        return SheetData(sh.name, rows, first_row, first_col, tables, merged, sorted(no_value),
                         self.owned_cells(sh.name), sorted(placeholders - no_value), error_cells=bool(errors))

    def sheet_size(self, name: str) -> int:
        """The unpacked size of a sheet's XML as its zip entry declares it (0 if it has none)."""
        part = self.sheet(name).part
        return self._zf.getinfo(part).file_size if part in self._names else 0

    def _start_source_check(self, part: str) -> None:
        from .splice_check import start_source_check
        from .xmlparts import CHECK_ELSEWHERE_FROM

        if self._zf.getinfo(part).file_size >= CHECK_ELSEWHERE_FROM:
            check = start_source_check(self.path, part)
            if check is not None:
                self.source_checks[part] = check

    def take_source_checks(self) -> dict:
        """The checks started so far, now the caller's to end (close() ends the rest)."""
        out, self.source_checks = self.source_checks, {}
        return out

    def close(self) -> None:
        for check in self.source_checks.values():
            check.abort()
        try:
            self._book.close()
        except Exception:
            pass
        self._zf.close()

    def __enter__(self) -> "Workbook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


SHARE_FROM = 200_000  # rows: a sheet this long has its repeated texts and dates shared as it is read
_SAMPLE = 2_000  # rows looked at to find the columns worth sharing
_SHARED_TYPES = (str, dt.date, dt.datetime)  # equal only to their own kind: sharing never changes a type


def _calamine_rows(cs, start) -> list[list]:
    """calamine's rows from the first used one (its to_python(skip_empty_area=True)). In a
    long sheet, a column of a few distinct texts or dates (tiers, statuses, days) gets one
    object per distinct value instead of one a cell, row by row as the rows are made:
    a million rows hold about 150 MB less at their peak, while calamine's own copy is alive."""
    if cs.height < SHARE_FROM or start is None:
        return cs.to_python(skip_empty_area=True)
    rows_it = itertools.islice(cs.iter_rows(), start[0], None)  # it starts at row 1: skip the empty ones above
    rows = list(itertools.islice(rows_it, _SAMPLE))
    shared = []
    for j in range(max(map(len, rows), default=0)):
        seen = {r[j] for r in rows[1:] if j < len(r)}
        seen.discard("")
        kinds = {v.__class__ for v in seen}
        if len(kinds) == 1 and 0 < len(seen) <= 256 and next(iter(kinds)) in _SHARED_TYPES:
            shared.append((j, next(iter(kinds)), {}))
    for j, kind, memo in shared:
        for r in rows:
            v = r[j]
            if v.__class__ is kind:
                r[j] = memo.setdefault(v, v)
    append = rows.append
    for r in rows_it:
        for j, kind, memo in shared:
            v = r[j]
            if v.__class__ is kind:  # a number in a text column keeps its own object (1 == 1.0 == True)
                r[j] = memo.setdefault(v, v)
        append(r)
    if len(rows) != cs.height:  # not the rows to_python gives: read them as it does
        return cs.to_python(skip_empty_area=True)
    return rows


def _grow(rows, first_row, first_col, r, c):
    nr, nc = min(first_row, r), min(first_col, c)
    dc = first_col - nc
    rows = [[None] * dc + row for row in rows] if dc else rows
    rows = [[] for _ in range(first_row - nr)] + rows
    return rows, nr, nc


def check_sheet_list(path: Path, sheets: list[Sheet]) -> None:
    """Two sheets of one name (Excel ignores case), or one part listed as two sheets: the
    rows would be read, and written, twice."""
    names: set[str] = set()
    parts: set[str] = set()
    for s in sheets:
        if s.name.casefold() in names:
            raise WorkbookError(f"{path}: is damaged: it lists the sheet '{s.name}' twice; open it in Excel, let it repair, and save it again")
        if s.part and s.part in parts:
            raise WorkbookError(f"{path}: is damaged: two sheets are stored in the same part ({s.part}); open it in Excel, let it repair, and save it again")
        names.add(s.name.casefold())
        parts.add(s.part)


def open_workbook(path, limits=None) -> Workbook:
    """limits: a package_guard.Limits for zip bombs (None: from the environment, else defaults)."""
    from .package_guard import check_inflation, inflatable, vet_package  # it imports this module

    path = Path(path)
    check_readable(path)
    check_not_open(path)
    vet_package(path, limits, inflate=False)  # zipfile stops at declared sizes: the parts below read safely
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise WorkbookError(f"{path}: is damaged ({e}); open it in Excel, let it repair, and save it again") from None
    try:
        wb_part = workbook_part(zf)
        wb_xml = read_text(zf, wb_part)
        if wb_xml is None:
            raise WorkbookError(f"{path}: is not an Excel workbook (no workbook part inside); save it from Excel as .xlsx")
        if "purl.oclc.org/ooxml/spreadsheetml" in wb_xml[:2000]:
            raise WorkbookError(f"{path}: is saved as 'Strict Open XML Spreadsheet'; open it in Excel and save it as 'Excel Workbook (.xlsx)'")
        rels = parse_rels(read_text(zf, rels_path(wb_part)) or "", wb_part)
        sheets = parse_sheets(wb_xml, rels)
        check_sheet_list(path, sheets)
        check_shared_strings(path, zf, wb_part)
        # a sheet's own read checks that it holds no more than it declares, as it unpacks it
        # for the guard scan (one unpacking less); every other part before calamine opens it
        names = set(zf.namelist())
        deferred = {s.part for s in sheets if s.kind == "worksheet" and s.part in names and inflatable(zf.getinfo(s.part))}
        check_inflation(path, deferred)
        book = _cal.CalamineWorkbook.from_path(str(path))
    except WorkbookError:
        zf.close()
        raise
    except (_cal.CalamineError, zipfile.BadZipFile, zlib.error, EOFError, KeyError, UnicodeDecodeError, ValueError, OSError) as e:
        zf.close()
        raise WorkbookError(f"{path}: is damaged or not a workbook Excel saved ({e}); open it in Excel, let it repair, and save it again") from None
    wb = Workbook(path, zf, book, wb_part, wb_xml, sheets)
    wb._deferred = deferred
    return wb


# ------------------------------------------------------------------ what calamine would allocate
# calamine lays a sheet out as one block of cells from its first used row and column to its
# last (about 32 bytes a cell), and reserves room for as many shared strings as the part
# says it has. A number it cannot allocate aborts the process (no exception, no message),
# so both are checked first.
MAX_GRID_CELLS = 100_000_000
# The used area is that of every reference _ANY_REF reads (rows' own r= too). UsedArea reads
# the usual spelling r="A1" with numpy as the sheet is scanned; a reference spelled otherwise
# (r = 'A1'), one that may be past Excel's grid, or a cell placed by counting (no r=) leads
# to an exact pass of its own over the part (_used_area, _used_area_counted).
# A cell's start tag without r=: <c>, <c s="1">, <x:c> (not the end tag </x:c>).
_NO_REF = [re.compile(rb'<c(?:>|\s(?![^>]*?\br\s*=))'), re.compile(rb'<[\w.-]+:c(?:>|\s(?![^>]*?\br\s*=))')]
_ANY_REF = re.compile(rb'\br\s*=\s*["\']([A-Za-z]*)(\d*)["\']')
# A reference past the grid, spelled r="A1": the grid's edge as a regex (tests hold it to MAX_ROW and MAX_COL).
_BEYOND = re.compile(rb'r="(?:[A-Za-z]{0,3}(?:[2-9]\d{6}|1[1-9]\d{5}|10[5-9]\d{4}|1049\d{3}|1048[6-9]\d\d|10485[89]\d|104857[7-9]|\d{8})|(?:XF[E-Z]|X[G-Z][A-Z]|[YZ][A-Z]{2}|[A-Z]{4})\d)')


class UsedArea:
    """Fed the sheet's XML piece by piece; check() refuses a sheet whose cells span more than
    MAX_GRID_CELLS, or lie outside Excel's grid."""

    def __init__(self):
        self.r1 = self.c1 = 1 << 62
        self.r2 = self.c2 = -1
        # counted: a cell without r= (_used_area_counted decides); odd: an '=' with a space
        # before it or no " after it (r = 'A1' and the like, or one in text); far: a reference
        # that may be past the grid
        self.counted, self.odd, self.far = False, False, False

    def see(self, chunk: bytes, marks: "_Marks | None" = None) -> None:
        if self.counted:  # the exact count reads the part again anyway
            return
        m = marks if marks is not None else _Marks(chunk)
        np, before, after = _NP, m.before, m.after
        self.odd = self.odd or bool((after != 34).any() or _is_space(before).any())
        refs = np.compress((before == 114) & (after == 34), m.eq)  # the '=' of r="
        prior = m.a[refs - 2]  # the byte before the r
        self.counted = m.cell_without_ref(chunk, refs, prior)
        if self.counted or self.odd or self.far:
            return
        at = np.compress(~_is_word(prior), refs) + 2  # \br as _ANY_REF reads it (not attr="..."): the values
        if len(at):
            self._refs(m.a, at)

    def _refs(self, a, at) -> None:
        """The rows and columns of the references whose values start at `at`, as _ANY_REF
        reads them (letters, digits, a quote); far if one may be past Excel's grid. Values of
        up to 7 bytes (Z999999, XFD9999) are read as 8-byte words whose bytes are all tested
        at once (a letter? a digit? the quote?); longer ones byte by byte (_refs_long)."""
        np = _NP
        high, one = _U64(0x8080808080808080), _U64(0x0101010101010101)
        word = np.ndarray((len(a) - 7,), "<u8", a, strides=(1,))[at]  # the value's first 8 bytes, first lowest
        folded = word | _U64(0x2020202020202020)  # letters in lower case
        low = word | high
        # per byte (all below 0x80): the high bit of (b | 0x80) - n is b >= n, of (m | 0x80) - b is b <= m
        letter = ((folded | high) - one * 0x61) & ((one * 0x7A | high) - folded) & high
        digit = (low - one * 0x30) & ((one * 0x39 | high) - word) & high
        quote = (low - one * 0x22) & ((one * 0x22 | high) - word) & high
        inside = ((quote & (~quote + _U64(1))) - _U64(1)) & high  # the bytes before the first quote (all: none)
        lead = letter & inside
        # ASCII, a quote, letters or digits before it, the letters first (no letter's byte after one that is not)
        fast = (((word & high) | (((letter | digit) & inside) ^ inside) | ((lead >> _U64(8)) & ~lead)) == 0) & (quote != 0)
        letters, size = _count(lead), _count(inside)
        if not fast.all():  # a long value, or one _ANY_REF may not read: byte by byte
            self._refs_long(a, at[~fast])
            if self.far:
                return
            word, folded, letters, size = word[fast], folded[fast], letters[fast], size[fast]
        self._extremes(size - letters, word >> (letters << _U64(3)), letters, folded)

    def _refs_long(self, a, at) -> None:
        """As _refs, for values of any length: 16 bytes of each, tested byte by byte."""
        np = _NP
        w = np.lib.stride_tricks.as_strided(a, shape=(len(a) - 15, 16), strides=(1, 1))[at]  # 16 bytes of each value
        alpha = (((w | 32) - 97) < 26).view("<u8")  # per byte 1 or 0, 8 to a word (uint8 wraps below 'a')
        digit = ((w - 48) < 10).view("<u8")
        letters = _run(alpha[:, 0])
        shift = letters.astype(np.uint64) << _U64(3)
        digits = _run(_from(digit, shift))  # after the letters
        if letters.max() > 3 or digits.max() > 7:  # column AAAA or row 10,000,000 on: the exact pass says where
            self.far = True
            return
        end = w[np.arange(len(at)), letters + digits]
        ok = (end == 34) | (end == 39)
        words = w[ok].view("<u8")
        self._extremes(digits[ok].astype(np.uint64), _from(words, shift[ok]), letters[ok].astype(np.uint64),
                       words[:, 0] | _U64(0x2020202020202020))

    def _extremes(self, digits, number, letters, text) -> None:
        """Update the first and last row and column with references of `digits` digits and
        `letters` letters, whose bytes are `number` (the digits) and `text` (the letters, in
        lower case), the first in the lowest byte."""
        if ((digits > 1) & ((number & _U64(255)) == 48)).any():  # a leading zero: more digits is not a later row
            self.far = True
            return
        # more digits is a later row, more letters a later column; of one length, the bytes in
        # order (read big-endian) are in the numbers' order: the length, then those bytes, is a key
        for n, raw, first, last, read in ((digits, number, "r1", "r2", int), (letters, text, "c1", "c2", col_index)):
            key = (n << _U64(56)) | ((raw.byteswap() >> (_U64(63) - (n << _U64(3)))) >> _U64(1))
            key = _NP.compress(n > 0, key)
            if not len(key):
                continue
            lo, hi = (int(x) for x in (key.min(), key.max()))
            lo, hi = (read((k & ((1 << 56) - 1)).to_bytes(k >> 56, "big")) for k in (lo, hi))
            setattr(self, first, min(getattr(self, first), lo))
            setattr(self, last, max(getattr(self, last), hi))

    def area(self) -> tuple[int, int, int, int]:
        """What _used_area reads (valid unless counted, odd or far)."""
        return self.r1, self.c1, self.r2, max(self.c2, self.c1 if self.c1 < 1 << 62 else 0)

    def check(self, path, sheet: str, zf: zipfile.ZipFile, part: str) -> None:
        if self.counted:
            r1, c1, r2, c2 = _used_area_counted(zf, part)
        elif self.odd or self.far:
            r1, c1, r2, c2 = _used_area(zf, part)
        else:
            r1, c1, r2, c2 = self.area()
        if r2 > MAX_ROW or c2 >= MAX_COL:
            raise WorkbookError(f"{path}: sheet '{sheet}' is damaged: cell {cell_ref(r2, c2)} is outside Excel's grid (XFD1048576 is the last cell); "
                                "open it in Excel, let it repair, and save it again")
        if r2 >= r1 and (r2 - r1 + 1) * (c2 - c1 + 1) > MAX_GRID_CELLS:
            area = range_ref(r1, c1, r2, c2)
            raise WorkbookError(
                f"{path}: sheet '{sheet}' has cells across {area} ({r2 - r1 + 1:,} rows x {c2 - c1 + 1:,} columns), more than cxrules "
                f"reads in one sheet ({MAX_GRID_CELLS:,} cells); delete the cells far from the data (Ctrl+End in Excel goes to the last one) and save it")


def _U64(n: int):
    return _NP.uint64(n)


def _count(marks):
    """Per word, how many of its bytes have their high bit set (`marks` has no other bits set)."""
    return ((marks >> _U64(7)) * _U64(0x0101010101010101)) >> _U64(56)  # the bytes summed into the highest


def _run(words):
    """Per little-endian word of bytes 1 or 0, how many of its first bytes are 1."""
    return _LEADING_ONES[(words * _U64(0x8040201008040201)) >> _U64(56)]  # bytes 0..7 become bits 7..0


def _from(words, shift):
    """The 8 bytes from bit `shift` (0 to 24) of each pair of little-endian words."""
    return (words[:, 0] >> shift) | ((words[:, 1] << (_U64(63) - shift)) << _U64(1))  # (<< 64 in two steps: 0)


def check_used_area(path, sheet: str, zf: zipfile.ZipFile, part: str) -> None:
    area = UsedArea()
    for chunk in iter_row_chunks(zf, part):
        area.see(chunk)
    area.check(path, sheet, zf, part)


def _used_area(zf: zipfile.ZipFile, part: str) -> tuple[int, int, int, int]:
    """First and last row and column of the cell references (rows' own r= count too)."""
    r1 = c1 = 1 << 62
    r2 = c2 = -1
    for chunk in iter_row_chunks(zf, part):
        refs = _ANY_REF.findall(chunk)
        rows = [int(b) for _, b in refs if b]
        cols = [col_index(a) if len(a) < 8 else 1 << 40 for a in {a for a, _ in refs if a}]
        if rows:
            r1, r2 = min(r1, min(rows)), max(r2, max(rows))
        if cols:
            c1, c2 = min(c1, min(cols)), max(c2, max(cols))
    return r1, c1, r2, max(c2, c1 if c1 < 1 << 62 else 0)


def _used_area_counted(zf: zipfile.ZipFile, part: str) -> tuple[int, int, int, int]:
    """The used area of a sheet whose cells may have no reference (placed one after another)."""
    r1 = c1 = 1 << 30
    r2 = c2 = -1
    row_no, col_no = 0, -1
    with zf.open(part) as f:
        for ev, el in ET.iterparse(f, events=("start", "end")):
            tag = el.tag.rsplit("}", 1)[-1]
            if ev == "start":
                if tag == "row":
                    row_no = int(el.get("r") or row_no + 1)
                    col_no = -1
                elif tag == "c":
                    r = el.get("r")
                    row_no, col_no = parse_ref(r) if r else (row_no, col_no + 1)
                    r1, r2, c1, c2 = min(r1, row_no), max(r2, row_no), min(c1, col_no), max(c2, col_no)
            elif tag in ("c", "row"):
                el.clear()
    return r1, c1, r2, c2


def check_shared_strings(path, zf: zipfile.ZipFile, wb_part: str) -> None:
    """A shared-strings part that claims more texts than it has bytes is damaged (calamine
    would reserve room for them all). calamine reads it beside the workbook part, by name."""
    want = posixpath.join(posixpath.dirname(wb_part), "sharedStrings.xml").casefold()
    for info in zf.infolist():
        if info.filename.casefold() != want:
            continue
        with zf.open(info) as f:
            head = f.read(8192)
        m = re.search(rb"<(?:[\w.-]+:)?sst\b[^>]*?\buniqueCount\s*=\s*[\"']\s*\+?(\d+)", head)
        if m and int(m.group(1)) > max(info.file_size, 1024):
            raise WorkbookError(f"{path}: is damaged: its shared strings part claims {int(m.group(1)):,} texts in {info.file_size:,} bytes; "
                                "open it in Excel, let it repair, and save it again")


# ------------------------------------------------------------------ fast XML scan
_CELL_R = re.compile(rb'\br="([A-Z]{1,3})([0-9]+)"')
_ERR_CELL = re.compile(rb'<c\b[^>]*?\bt="e"[^>]*>(?:<f\b[^>]*?(?:/>|>[^<]*</f>))?\s*<v>([^<]*)</v>')
_F_ANY = re.compile(rb'<c\b([^>]*)>\s*<f\b')
_F_NO_V = re.compile(rb'<c\b([^>]*)>\s*<f\b[^>]*?(?:/>|>[^<]*</f>)\s*(<v\s*/>|<v>\s*</v>)?\s*</c>')
_ROW_END = b"</row>"
_ROW_END_TAG = re.compile(rb"</(?:[\w.-]+:)?row>")  # </row>, or </x:row> with a namespace prefix
_BEHIND, _AHEAD = 8, 24  # zero bytes around a piece (no letter, digit, space or quote)
_NP = None  # numpy, imported on first use with the byte tables below (not with this module)
_LEADING_ONES = None


def _np():
    global _NP, _LEADING_ONES
    if _NP is None:
        import numpy

        _LEADING_ONES = numpy.array([8 - len(f"{i:08b}".lstrip("1")) for i in range(256)], numpy.uint8)
        _NP = numpy
    return _NP


def _is_space(b):
    """re's \\s for bytes (space, \\t \\n \\v \\f \\r), per byte of a uint8 array (arithmetic: a
    lookup table indexed by the bytes costs several times more)."""
    return ((b - _NP.uint8(9)) < 5) | (b == 32)


def _is_word(b):
    """re's \\w for bytes (letters, digits, _), per byte of a uint8 array."""
    return (((b | _NP.uint8(32)) - _NP.uint8(97)) < 26) | ((b - _NP.uint8(48)) < 10) | (b == 95)


class _Space:
    """Buffers a scan reuses from piece to piece: fresh ones for each piece cost about as much
    as the comparisons made in them (the kernel hands out and clears new pages)."""

    def __init__(self):
        self.buf = self.cmp = None

    def padded(self, chunk: bytes):
        """The piece's bytes with zeros before and after, so that looking a few bytes behind or
        ahead of a mark needs no bounds check; marks are positions in this array."""
        np, n = _NP, _BEHIND + len(chunk) + _AHEAD
        if self.buf is None or len(self.buf) < n:
            self.buf = np.zeros(n + (n >> 3), np.uint8)
            self.cmp = np.zeros(len(self.buf), bool)
        a = self.buf[:n]
        a[_BEHIND:n - _AHEAD] = np.frombuffer(chunk, np.uint8)
        a[:_BEHIND] = a[n - _AHEAD:] = 0
        return a

    def same(self, n: int):
        """A scratch array for a comparison's result."""
        return self.cmp[:n]


class _Marks:
    """Where the '=' of one piece of sheet XML are and what is either side of them, found
    once with numpy for every scan of the piece (numpy compares at memory speed; a bytes
    search per question costs several times more)."""

    __slots__ = ("a", "eq", "before", "after", "space")

    def __init__(self, chunk: bytes, space: "_Space | None" = None):
        np = _np()
        self.space = space = space or _Space()
        self.a = a = space.padded(chunk)
        self.eq = eq = np.flatnonzero(np.equal(a, 61, out=space.same(len(a))))  # '='
        self.before, self.after = a[eq - 1], a[eq + 1]

    def _halves(self):
        """The piece as 2-byte words, from an even and from an odd position."""
        a = self.a
        return [(k, a[k:k + (len(a) - k) // 2 * 2].view("<u2")) for k in (0, 1)]

    def count(self, two: bytes) -> int:
        """How often the 2 bytes occur."""
        np, v = _NP, int.from_bytes(two, "little")
        return sum(int(np.count_nonzero(np.equal(h, v, out=self.space.same(len(h))))) for _, h in self._halves())

    def find(self, two: bytes):
        """Where the 2 bytes occur."""
        np, v = _NP, int.from_bytes(two, "little")
        return np.concatenate([np.flatnonzero(h == v) * 2 + k for k, h in self._halves()])

    def has(self, text: bytes) -> bool:
        """Does the piece hold `text` (2 bytes, or one that holds '=')?"""
        if b"=" not in text:
            return self.count(text) > 0
        np, a, k = _NP, self.a, text.index(b"=")  # 1 <= k <= _BEHIND
        at = np.compress(self.before == text[k - 1], self.eq)
        for i, ch in enumerate(text):
            if i not in (k - 1, k):
                at = np.compress(a[at + i - k] == ch, at)
        return len(at) > 0

    def cell_without_ref(self, chunk: bytes, refs, prior) -> bool:
        """A cell placed by counting: <c> or <c ...> (or <x:c ...>) without r=, as _NO_REF
        finds it. refs: where the '=' of each r=" is; prior: the byte before its r."""
        np, a = _NP, self.a
        prefixed = b":" in chunk and self.count(b":c")  # (':' is rare: memchr says so at once)
        if not prefixed and np.count_nonzero((prior == 32) & (a[refs - 3] == 99) & (a[refs - 4] == 60)) == self.count(b"<c"):
            return False  # every <c is <c r=" (as in every writer seen)
        for c in (self.find(b"<c"), self.find(b":c")):
            nxt = a[c + 2]
            cell = (nxt == 62) | _is_space(nxt)  # <c> or <c followed by a space: a cell's start tag
            c, spaced = c[cell], _is_space(nxt[cell])
            usual = spaced & (a[c + 3] == 114) & (a[c + 4] == 61) & (a[c + 5] == 34)  # <c r="
            # _NO_REF's cheap first question, as it was asked with a regex; then, rarely, the full test
            if not usual.all():
                return any(p.search(chunk) for p in _NO_REF)
        return False


def _read_pieces(zf: zipfile.ZipFile, part: str, size: int):
    with zf.open(part) as f:
        yield from iter(lambda: f.read(size), b"")


def _ahead(pieces):
    """The pieces of `pieces`, the next one made in a thread while the caller works on this
    one: inflating (zlib) and checking the CRC release the GIL, so both cores work. An
    exception raised making a piece is raised here, after the pieces before it."""
    q: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def make():
        it = iter(pieces)
        try:
            for piece in it:
                if not put((piece, None)):
                    return
            put((None, None))
        except BaseException as e:  # handed over, raised in the caller's thread
            put((None, e))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # the generator's file, in the thread that ran it

    t = threading.Thread(target=make, name="cxrules-unpack", daemon=True)
    t.start()
    try:
        while True:
            piece, error = q.get()
            if error is not None:
                raise error
            if piece is None:
                return
            yield piece
    finally:
        stop.set()
        t.join()


def _row_end(data: bytes, pos: int, block: int) -> int:
    """Where a piece from `pos` ends: after the last row end tag that ends within `block` bytes,
    else after the first one; -1: none."""
    i = data.rfind(_ROW_END, pos, pos + block)  # as every writer but a few write them: at once, near the end
    if i >= 0:
        return i + len(_ROW_END)
    last = None
    if block:
        for last in _ROW_END_TAG.finditer(data, pos, pos + block):  # a namespace prefix (or one long row)
            pass
    if last is None:
        i = data.find(_ROW_END, pos)
        last = _ROW_END_TAG.search(data, pos, i + len(_ROW_END) if i >= 0 else len(data))
    return last.end() if last else -1


def iter_row_chunks(zf: zipfile.ZipFile, part: str, size: int = 8 << 20, pieces=None, block: int = 512 << 10):
    """The sheet XML in pieces of about `block` bytes that each end after a row's end tag (the
    last piece ends the file; a longer row is one piece); from `pieces` (the part's bytes,
    unpacked by the caller) if given. The next piece is unpacked in a thread while this one
    is used. (Pieces of half a megabyte keep numpy's work on them in the processor's cache.)"""
    it = _ahead(pieces if pieces is not None else _read_pieces(zf, part, size))
    rest = b""
    try:
        while True:
            data = next(it, b"")
            if not data:
                if rest:
                    yield rest
                return
            pos = 0
            if rest:  # the row begun in the last piece, alone (not copied onto this whole piece)
                pos = _row_end(data, 0, 0)
                if pos < 0:
                    rest += data
                    continue
                yield rest + data[:pos]
            while True:
                cut = _row_end(data, pos, block)
                if cut < 0:
                    break
                yield data[pos:cut] if pos or cut < len(data) else data
                pos = cut
            rest = data[pos:]
    finally:
        it.close()


def scan_sheet_xml(zf: zipfile.ZipFile, part: str, observe=None, all_formulas: bool = False, pieces=None):
    """Error cells {(row, col): '#N/A'}, formula cells without a cached value, and (with
    all_formulas) every formula cell, whose values are placeholders.

    `observe(piece, marks)` is called with every piece of the XML and its _Marks, so one
    pass serves other scans too (UsedArea.see); `pieces`: the part's bytes as the caller
    unpacks them (default: read from `zf`).
    """
    errors: dict[tuple[int, int], str] = {}
    no_value: set[tuple[int, int]] = set()
    every: set[tuple[int, int]] = set()
    chunks = iter_row_chunks(zf, part, pieces=pieces)
    slow = False
    space = _Space()
    for chunk in chunks:
        marks = _Marks(chunk, space)
        if observe is not None:
            observe(chunk, marks)
        if slow:
            continue
        has_err = marks.has(b't="e"')
        has_f = marks.has(b"<f")
        if not (has_err or has_f):
            continue
        if has_err:
            for m in _ERR_CELL.finditer(chunk):
                r = _CELL_R.search(m.group(0))
                if r is None:
                    slow = True
                    break
                errors[(int(r.group(2)), col_index(r.group(1)))] = m.group(1).decode("utf-8").strip()
        if has_f and all_formulas and not slow:
            for m in _F_ANY.finditer(chunk):
                r = _CELL_R.search(m.group(1))
                if r is None:
                    slow = True
                    break
                every.add((int(r.group(2)), col_index(r.group(1))))
        if has_f and not slow:
            for m in _F_NO_V.finditer(chunk):
                a = m.group(1)
                if m.group(2) and b't="str"' in a:  # an empty text result is a value
                    continue
                r = _CELL_R.search(a)
                if r is None:
                    slow = True
                    break
                no_value.add((int(r.group(2)), col_index(r.group(1))))
    return _scan_slow(zf, part, all_formulas) if slow else (errors, no_value, every)


def _scan_slow(zf: zipfile.ZipFile, part: str, all_formulas: bool = False):
    """For sheets whose cells lack r="A1" attributes (not written by Excel)."""
    errors, no_value, every = {}, set(), set()
    q = "{%s}" % NS_MAIN
    row_no, col_no = 0, -1
    with zf.open(part) as f:
        for ev, el in ET.iterparse(f, events=("start", "end")):
            tag = el.tag
            if ev == "start":
                if tag == q + "row":
                    row_no = int(el.get("r") or row_no + 1)
                    col_no = -1
                elif tag == q + "c":
                    r = el.get("r")
                    col_no = parse_ref(r)[1] if r else col_no + 1
                continue
            if tag == q + "c":
                f_el, v_el = el.find(q + "f"), el.find(q + "v")
                if el.get("t") == "e" and v_el is not None:
                    errors[(row_no, col_no)] = (v_el.text or "").strip()
                if f_el is not None and (v_el is None or (not v_el.text and el.get("t") != "str")):
                    no_value.add((row_no, col_no))
                if f_el is not None and all_formulas:
                    every.add((row_no, col_no))
                el.clear()
            elif tag == q + "row":
                el.clear()
    return errors, no_value, every
