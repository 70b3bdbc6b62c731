"""Excel through xlwings: the CX_* worksheet functions and the CX Rules ribbon's macros.

The only module that imports xlwings. It is thin: cell values in, the library does the
work, values out. A worksheet function never raises: a problem becomes short
'#CX: ...' text in the cell it concerns, and the other rows are still computed.

Settings are read here, by Python, at every call and button press (see `settings`):
the rules folder from the add-in's settings, the header mapping from the workbook's
CX settings sheet. Rule files are reloaded when edited (rulesets.RuleCache), so an edit
takes effect at the next calculation.

Values arrive as xlwings' COM conversion hands them (see tests/com.py): numbers as
floats, date-formatted cells as datetimes, blanks as None, the seven oldest errors as
text, newer ones (#SPILL!, #CALC!, ...) as large negative ints.
"""
from __future__ import annotations

import contextlib
import contextvars
import csv
import datetime as dt
import functools
import inspect
import os
import re
import sys
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path

import xlwings as xw
from xlwings.conversion import Accessor, ReadValueFromRangeStage, ValueAccessor

from . import rulesets
from .evaluation import Evaluator, now_in
from .mapping import SETTINGS_SHEETS, Mapping, read_settings
from .problems import CxError, Problem, RuleSetError
from .recalc import DAYS_OVERDUE_LABELS, OWN_SHEETS, RecalcReport, plan
from .values import EXCEL_ERRORS, Duration, ValueProblem, coerce, display, norm_header, out_of_range, parse_duration, shown
from .vocabulary import describe

CATEGORY = "CX Rules"
ERR = "#CX: "
MAX_MESSAGE = 120
CHECK_SHEET = "CX rule check"
CONF_SHEET = "cxrules.conf"  # the add-in's settings sheet in a workbook (xlwings: PROJECT_NAME.conf)
CONF_SHEETS = (CONF_SHEET, "_cxrules.conf", "xlwings.conf", "_xlwings.conf")
RULES_SETTING = "CXRULES_RULES"
# xlwings returns every result as a VBA array, and a VBA array holding a string longer
# than 255 characters shows #VALUE! in all its cells (xlwings issue 456)
MAX_TEXT_OUT = 254  # UTF-16 units, the ellipsis included
ELLIPSIS = "\u2026"


# ------------------------------------------------------------------ settings
@dataclass
class Settings:
    """What a call reads from the workbook and the add-in's settings."""

    rules: Path
    source: str  # where the rules folder was set, for messages
    mapping: Mapping = field(default_factory=Mapping)
    problems: list[Problem] = field(default_factory=list)
    sheet: str | None = None  # the calling cell's sheet (its mapping rows apply)


_current: contextvars.ContextVar[Settings | None] = contextvars.ContextVar("cxrules_excel_settings", default=None)
_files: dict[str, tuple[tuple, dict[str, str]]] = {}  # path -> ((mtime, size), KEY -> value)


def _expand(value: str) -> str:
    """%VAR% as Windows expands it (the add-in's GetConfig does), and ~."""
    value = re.sub(r"%([^%]+)%", lambda m: os.environ.get(m.group(1), m.group(0)), value.strip())
    return os.path.expanduser(value)


def _conf_file(path: Path) -> dict[str, str]:
    """An xlwings settings file ("KEY","VALUE" lines), re-read only when it changes."""
    try:
        st = path.stat()
    except OSError:
        return {}
    sig = (st.st_mtime_ns, st.st_size)
    hit = _files.get(str(path))
    if hit and hit[0] == sig:
        return hit[1]
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in csv.reader(f):
                if len(row) >= 2 and row[0].strip():
                    out.setdefault(row[0].strip().upper(), row[1])
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    _files[str(path)] = (sig, out)
    return out


def user_conf_path() -> Path:
    """The add-in's settings file, where its GetConfig looks for it: %USERPROFILE% on
    Windows, Excel's sandbox folder on the Mac."""
    profile = os.environ.get("USERPROFILE")
    if profile:
        return Path(profile) / ".cxrules" / "cxrules.conf"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Containers" / "com.microsoft.Excel" / "Data" / "cxrules.conf"
    return Path.home() / ".cxrules" / "cxrules.conf"


def _sheet(book, names):
    for n in names:
        try:
            return book.sheets[n]
        except Exception:  # noqa: BLE001 - no such sheet (COM raises, other engines too)
            continue
    return None


def _sheet_rows(sheet) -> list[list]:
    v = sheet.used_range.options(ndim=2, err_to_str=True).value
    return v or []


def _conf_sheet(book) -> dict[str, str]:
    """The workbook's cxrules.conf sheet: keys in A, values in B, down to the first blank key."""
    s = _sheet(book, (CONF_SHEET,))
    if s is None:
        return {}
    out: dict[str, str] = {}
    for r in _sheet_rows(s):
        if not r or r[0] is None or not str(r[0]).strip():
            break
        out.setdefault(str(r[0]).strip().upper(), "" if len(r) < 2 or r[1] is None else str(r[1]))
    return out


def _book_folder(book) -> Path | None:
    try:
        full = book.fullname
    except Exception:  # noqa: BLE001
        return None
    if not full or "://" in full or not os.path.isabs(full):
        return None  # not saved yet, or on SharePoint/OneDrive by URL
    return Path(full).parent


def settings(book=None, sheet: str | None = None) -> Settings:
    """The rules folder and the mapping for a workbook, read now.

    Rules folder, first found: CXRULES_RULES in the workbook's cxrules.conf sheet, in a
    cxrules.conf file beside the workbook, in the add-in's settings file
    (%USERPROFILE%\\.cxrules\\cxrules.conf), the CXRULES_RULES environment variable, else
    the bundled rules. A relative folder is relative to the workbook. Mapping: the
    workbook's CX settings sheet, as `cxrules recalc` reads it.
    """
    folder = source = None
    from_conf = False
    base = _book_folder(book) if book is not None else None
    mapping, problems = Mapping(), []
    candidates = []
    if book is not None:
        candidates.append((lambda: _conf_sheet(book), f"the {CONF_SHEET} sheet of this workbook"))
    if base is not None:
        candidates.append((lambda: _conf_file(base / "cxrules.conf"), f"{base / 'cxrules.conf'}"))
    candidates.append((lambda: _conf_file(user_conf_path()), str(user_conf_path())))
    for read, where in candidates:
        value = read().get(RULES_SETTING, "").strip()
        if value:
            folder, source, from_conf = _expand(value), where, True
            break
    if folder is None:
        env = os.environ.get(rulesets.ENV_VAR)
        folder, source = (env, f"the {rulesets.ENV_VAR} environment variable") if env else (rulesets.default_rules_dir(), "the default")
    path = Path(folder)
    if not path.is_absolute() and base is not None and from_conf:
        path = base / path
    if book is not None:
        s = _sheet(book, SETTINGS_SHEETS)
        if s is not None:
            mapping, problems = read_settings(_sheet_rows(s), s.name)
    return Settings(path, source, mapping, problems, sheet)


def _settings_now() -> Settings:
    return _current.get() or settings()


def rules_folder() -> Path:
    return _settings_now().rules


def evaluator() -> Evaluator:
    return rulesets.cache.evaluator(rules_folder())


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _error_text(e: Exception) -> str:
    if isinstance(e, RuleSetError):
        return ERR + _short(f"the rules in {rules_folder()} have errors: {e}")
    if isinstance(e, (CxError, ValueError)):
        return ERR + _short(str(e))
    return ERR + _short(f"{type(e).__name__}: {e}")  # a bug; still not a traceback


def _book_of(caller):
    """(workbook, sheet name) of the calling cell; (None, None) when called from Python."""
    sheet = getattr(caller, "sheet", None)
    if sheet is None:
        return None, None
    return sheet.book, sheet.name


def _safe(f):
    """Settings read for this call; any exception becomes '#CX: ...' text; texts fit a
    VBA array. functools.wraps keeps the signature xlwings reads (`caller` is xlwings'
    reserved argument: the calling cell, never shown in Excel)."""
    params = list(inspect.signature(f).parameters)
    at = params.index("caller") if "caller" in params else None

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        caller = args[at] if at is not None and len(args) > at else kwargs.get("caller")
        try:
            s = settings(*_book_of(caller))
        except Exception as e:  # noqa: BLE001 - e.g. the workbook could not be read
            return _fitted(_error_text(e))
        token = _current.set(s)
        try:
            return _fitted(f(*args, **kwargs))
        except Exception as e:  # noqa: BLE001 - a cell must show text, never a traceback
            return _fitted(_error_text(e))
        finally:
            _current.reset(token)

    return wrapper


# ------------------------------------------------------------------ cells out
def fit_text(s: str) -> str:
    """A text short enough for a VBA array: cut with a visible ellipsis."""
    if len(s) * 2 <= MAX_TEXT_OUT:
        return s
    units = len(s.encode("utf-16-le", "surrogatepass")) // 2
    if units <= MAX_TEXT_OUT:
        return s
    out, n = [], 0
    for ch in s:
        w = 2 if ord(ch) > 0xFFFF else 1
        if n + w > MAX_TEXT_OUT - 1:
            break
        out.append(ch)
        n += w
    return "".join(out).rstrip() + ELLIPSIS


def _fitted(x):
    """Every text of a result fitted (xlwings hands even one cell back as an array)."""
    if x.__class__ is str:
        return fit_text(x) if len(x) * 2 > MAX_TEXT_OUT else x
    if isinstance(x, list):
        for row in x:
            if isinstance(row, list):
                for j, v in enumerate(row):
                    if v.__class__ is str and len(v) * 2 > MAX_TEXT_OUT:
                        row[j] = fit_text(v)
        if x and not isinstance(x[0], list):
            for j, v in enumerate(x):
                if v.__class__ is str and len(v) * 2 > MAX_TEXT_OUT:
                    x[j] = fit_text(v)
    return x


# ------------------------------------------------------------------ cells in
# COM hands an Excel error as an int, 0x800A0000 + its XlCVError code; xlwings' err_to_str
# names only the seven oldest, so e.g. #SPILL! arrives as the int -2146826243: a number.
_COM_ERROR_BASE = -2146828288
COM_ERRORS = {_COM_ERROR_BASE + code: text for code, text in (
    (2000, "#NULL!"), (2007, "#DIV/0!"), (2015, "#VALUE!"), (2023, "#REF!"), (2029, "#NAME?"), (2036, "#NUM!"),
    (2042, "#N/A"), (2043, "#GETTING_DATA"), (2045, "#SPILL!"), (2046, "#CONNECT!"), (2047, "#BLOCKED!"),
    (2048, "#UNKNOWN!"), (2049, "#FIELD!"), (2050, "#CALC!"))}


def is_com_error(v) -> bool:
    return v.__class__ is int and _COM_ERROR_BASE + 2000 <= v <= _COM_ERROR_BASE + 2100


def com_error_text(v: int) -> str:
    """The error's text; codes without a documented name (e.g. #BUSY!) by their code."""
    return COM_ERRORS.get(v) or f"#ERROR {v - _COM_ERROR_BASE}"


def _cell_in(v):
    """A cell as COM gave it, an Excel error code read as the error (numbers come as floats)."""
    if is_com_error(v):
        return COM_ERRORS.get(v) or ValueProblem(f"the cell holds an Excel error (code {v - _COM_ERROR_BASE})")
    return v


def _cells_in(values) -> list:
    """A list of cells as _cell_in reads them (a copy); COM gives ints only for errors."""
    if int not in set(map(type, values)):  # the common case, checked at C speed
        return list(values)
    return [_cell_in(v) if v.__class__ is int else v for v in values]


def _is_blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _blank_row(r) -> bool:
    if isinstance(r, (list, tuple)):
        return all(_is_blank(v) for v in r)
    return _is_blank(r)


def used_height(rows) -> int:
    """How many of `rows` (rows of cells, or single cells) reach the last one not blank.

    A whole column (B:B) is a million rows, nearly all blank: the blank tail is found in
    growing slices compared at C speed, not cell by cell.
    """
    n = len(rows)
    end = n
    if n > 64:
        last = rows[-1]
        blank = type(last)([None] * len(last)) if isinstance(last, (list, tuple)) else None
        step = 256
        while end:
            start = max(0, end - step)
            seg = rows[start:end]
            if seg.count(blank) == len(seg):
                end = start
                step *= 4
            elif step > 256:  # the data is in there: look closer
                step //= 16
            else:
                break
    while end and _blank_row(rows[end - 1]):  # the rest (and text of spaces) one by one
        end -= 1
    return end


def _trim_to_used_rows(c) -> None:
    """xlwings conversion stage, before the range is read: a range taller than the
    sheet's used range (B:B, a table column with room below) is cut to it, so a million
    blank rows never cross COM."""
    rng = c.range
    if rng is None:
        return
    try:
        rows = rng.shape[0]
        if rows < 2:
            return
        used = rng.sheet.used_range
        last = used.row + used.shape[0] - 1
    except Exception:  # noqa: BLE001 - an engine that cannot say: read the range as given
        return
    keep = last - rng.row + 1
    if keep < rows:
        c.range = rng.resize(max(keep, 1))


class UsedRows(Accessor):
    """The converter of range arguments: xlwings' own value reader with the range cut to
    the used rows first."""

    @classmethod
    def reader(cls, options):
        return ValueAccessor.reader(options).insert_stage(_trim_to_used_rows, before=ReadValueFromRangeStage)


def _as_2d(x) -> list:
    """A 2-D argument's rows up to the last one not blank (xlwings hands ndim=2 lists)."""
    if not isinstance(x, (list, tuple)):
        return [[x]]
    if x and not isinstance(x[0], (list, tuple)):
        return [list(x)]
    return x[: used_height(x)]


def _column(x) -> tuple[list, bool, int]:
    """(values, was_single, height as given): a cell, a 1-D list, one column or one row of
    cells. `values` stop at the last value; a block of several columns is an error."""
    if not isinstance(x, (list, tuple)):
        return [_cell_in(x)], True, 1
    if not x:
        return [], False, 0
    if not isinstance(x[0], (list, tuple)):  # 1-D, as Python callers give it
        return _cells_in(x[: used_height(x)]), len(x) == 1, len(x)
    if len(x) == 1:
        return _cells_in(x[0]), len(x[0]) == 1, len(x[0])
    part = x[: used_height(x)]
    if set(map(len, part)) - {1}:
        width = max(map(len, x))
        if width > 1:
            raise CxError(f"give one column of cells, not {len(x)} rows by {width} columns")
    return _cells_in(list(map(itemgetter(0), part))), False, len(x)


def _grid(x) -> list[list]:
    x = _as_2d(x)
    if int not in set(map(type, chain.from_iterable(x))):
        return [list(r) for r in x]
    return [_cells_in(r) for r in x]


def _argument(name: str, value):
    """A one-cell argument: an Excel error in it is one message for the call."""
    value = _cell_in(value)
    if isinstance(value, ValueProblem):
        raise CxError(f"{name}: {value}")
    if isinstance(value, str) and value.strip() in EXCEL_ERRORS:
        raise CxError(f"{name}: the cell holds the Excel error {value.strip()}")
    return value


def _as_of(value) -> dt.datetime | None:
    """None (now), a date-time cell, a date, or a serial number as NOW(), TODAY() and
    CX_NOW() give it when written in the call."""
    value = _argument("as_of", value)
    if _is_blank(value):
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    try:
        return coerce(value, "datetime")
    except ValueProblem as e:
        raise CxError(f"as_of: {e}") from None


def _header_keys(ev: Evaluator) -> dict[str, str]:
    """normalised header -> input/field name, from rule names, labels, column aliases and
    the workbook's mapping (for the calling cell's sheet)."""
    rs = ev.rs
    keys: dict[str, str] = {}

    def add(name, *aliases):
        for a in (name, *aliases):
            if a:
                keys.setdefault(norm_header(a), name)

    s = _current.get()
    if s is not None and s.mapping:
        for e in s.mapping.entries:
            if e.sheet is None or (s.sheet and e.sheet.casefold() == s.sheet.casefold()):
                keys[norm_header(e.header)] = e.name
    for f in rs.fields.values():
        add(f.name, *f.columns)
    for t in rs.tables.values():
        for i in t.inputs:
            add(i.name, i.label, *i.columns)
        for o in t.outputs:
            add(o.name, o.label, *o.columns)
        for d in t.due:
            add(d.name, d.label, *d.columns)
    return keys


def _rows_from_table(ev: Evaluator, data, labels: dict | None = None) -> tuple[list[dict], list[bool]]:
    """Rows (name -> raw value) from a range whose first row is a header; and which rows are blank.

    `labels` gets the header of each name read, for row messages.
    """
    grid = _grid(data)
    if len(grid) < 2:
        if len(grid) == 1 and isinstance(data, (list, tuple)) and len(data) > 1:
            grid.append([None] * len(grid[0]))  # a header over blank rows: one blank row
        else:
            raise CxError("give a range with a header row and at least one row of data")
    keys = _header_keys(ev)
    cols = []
    unknown = []
    for j, h in enumerate(grid[0]):
        if _is_blank(h) or isinstance(h, ValueProblem):
            continue
        k = keys.get(norm_header(h))
        if k is None:
            unknown.append(shown(h, 40))
        else:
            cols.append((j, k))
            if labels is not None:
                labels.setdefault(k, shown(h, 40))
    if not cols:
        raise CxError("no header in the first row names an input of the rules" + (f" ({', '.join(unknown[:3])})" if unknown else ""))
    rows, blank = [], []
    for r in grid[1:]:
        rec = {k: r[j] for j, k in cols if j < len(r) and not _is_blank(r[j])}
        rows.append(rec)
        blank.append(not rec)
    return rows, blank


def _columns(named: dict, keys: dict[str, str] | None = None):
    """Arguments that are each a cell or a column, side by side.

    Returns (cols: name -> (values, single), n rows, single: every argument one cell,
    header: the index of the header row or None). Columns stop at the last value of any;
    the first row not blank is a header when its cells are text and one of them is a
    header the rules know (`keys`) or an argument's own name.
    """
    cols, height = {}, None
    for name, x in named.items():
        if x is None:
            continue
        values, one, h = _column(x)
        if not one:
            if height is not None and h != height:
                raise CxError(f"the columns have different lengths ({height} and {h} rows); give ranges of the same height")
            height = h
        cols[name] = (values, one)
    single = height is None
    n = 1 if single else max([len(v) for v, one in cols.values() if not one] + [1])
    for name, (v, one) in cols.items():
        if not one and len(v) < n:
            cols[name] = (v + [None] * (n - len(v)), one)
    header = None
    if not single and keys is not None:
        many = [v for v, one in cols.values() if not one]
        first = next((i for i in range(n) if not all(_is_blank(v[i]) for v in many)), None)
        if first is not None:
            cells = [v[first] for v in many]
            if all(_is_blank(c) or isinstance(c, str) for c in cells) and any(
                    isinstance(c, str) and norm_header(c) in keys for c in cells):
                header = first
    return cols, n, single, header


def _rows_from_columns(cols: dict, n: int, single: bool, header: int | None) -> tuple[list[dict], list[bool]]:
    """Rows (name -> value) of _columns' result; a single cell repeats down. A row is blank
    (and gets blank outputs) when every column argument is blank there; so is the header."""
    rows, blank = [], []
    for i in range(n):
        rec = {}
        empty = True
        for k, (v, one) in cols.items():
            x = v[0] if one else v[i]
            if not _is_blank(x):
                rec[k] = x
                if not one or single:
                    empty = False
        if i == header:
            rec, empty = {}, True
        rows.append(rec)
        blank.append(empty)
    return rows, blank


def _table(ev: Evaluator, decision):
    decision = _argument("decision", decision)
    t = ev.rs.tables.get(str(decision).strip()) if not _is_blank(decision) else None
    if t is None:
        from .problems import did_you_mean

        hint = did_you_mean(str(decision), ev.rs.tables)
        raise CxError(f"no decision named '{shown(decision)}'" + (f"; {hint}" if hint else f"; decisions: {', '.join(ev.rs.tables)}"))
    return t


# ------------------------------------------------------------------ results
def _cell(v):
    """A result as Excel shows it: durations as text like 14d, lists joined, blank as ''."""
    if v is None:
        return ""
    if isinstance(v, Duration):
        return display(v)
    if isinstance(v, list):
        return ", ".join(display(x) for x in v)
    return v


def _row_messages(problems, n: int, labels: dict | None = None) -> list[str | None]:
    """Each row's first problem, naming the argument or header the user gave (`labels`: name -> it)."""
    out: list[str | None] = [None] * n
    for p in problems:
        if out[p.index] is None:
            name = labels.get(p.name, p.name) if labels and p.name else p.name
            out[p.index] = ERR + _short(f"{name}: {p.message}" if name and name not in p.message else p.message)
    return out


def _evaluate(ev: Evaluator, rows, blank, decision, outputs, as_of, given_wins=False, labels=None) -> list[list]:
    as_of = _as_of(as_of)
    todo = [i for i, b in enumerate(blank) if not b]
    r = ev.evaluate([rows[i] for i in todo], decision, as_of, given_wins=given_wins)
    msgs = _row_messages(r.problems, len(todo), labels)
    blank_col = [None] * len(todo)
    cols = [r.columns.get(name) or blank_col for name in outputs]
    out = [[""] * len(outputs) for _ in rows]
    plain = (str, int, float, dt.date)
    for k, i in enumerate(todo):
        row, msg = out[i], msgs[k]
        for j, c in enumerate(cols):
            v = c[k]
            if v is None:
                if msg:
                    row[j] = msg
            else:
                row[j] = v if isinstance(v, plain) else _cell(v)
    return out


def _shape(out: list[list], single: bool):
    """One cell for one row and one output; else the rows (Excel spills them)."""
    if single and len(out) == 1:
        return out[0][0] if len(out[0]) == 1 else out[0]
    if out and len(out[0]) == 1:
        return [[r[0]] for r in out]
    return out


def _titles(ev: Evaluator, decision: str, outputs, texts) -> list[str]:
    """The outputs' headers, for a header row of the arguments: Chinese if the headers are."""
    t = ev.rs.tables[decision]
    zh = any(isinstance(x, str) and re.search("[\u3400-\u9fff]", x) for x in texts)
    out = []
    for name in outputs:
        o = t.output(name) or next(d for d in t.due if d.name == name)
        cjk = [c for c in o.columns if re.search("[\u3400-\u9fff]", c)]
        out.append(cjk[0] if zh and cjk else o.label)
    return out


def _decide(decision, outputs, as_of, given_wins=False, labels=None, **named):
    """`named`: input name -> argument; `labels`: input name -> argument name where they differ."""
    ev = evaluator()
    decision = _table(ev, decision).name
    keys = _header_keys(ev)
    keys.update({norm_header(a): a for a in [*named, *(labels or {}).values()]})
    cols, n, single, header = _columns(named, keys)
    rows, blank = _rows_from_columns(cols, n, single, header)
    out = _evaluate(ev, rows, blank, decision, outputs, as_of, given_wins, labels)
    if header is not None:
        out[header] = _titles(ev, decision, outputs, [v[header] for v, one in cols.values() if not one])
    return _shape(out, single)


def _column_arg(name: str, doc: str):
    """A cell-or-column argument: cut to the used rows before it is read, errors as text."""
    return xw.arg(name, UsedRows, ndim=2, err_to_str=True, doc=doc)


AS_OF_DOC = ("Optional: the moment 'now' is. NOW(), TODAY() or CX_NOW() keep the result current; "
             "without it, now at the last calculation.")


# ------------------------------------------------------------------ worksheet functions
@xw.func(category=CATEGORY)
@xw.arg("decision", err_to_str=True, doc="Name of the decision, e.g. \"tier\" (see CX_DECISIONS()).")
@xw.arg("data", UsedRows, ndim=2, err_to_str=True, doc="A range whose first row is a header, e.g. Customers[#All] or A1:F5000; headers may be column names, labels or input names.")
@xw.arg("as_of", err_to_str=True, doc=AS_OF_DOC)
@_safe
def CX_DECIDE(decision, data, as_of=None, caller=None):
    """Evaluates a decision for every row of a range with a header row; spills all its outputs under a header. Columns in the range are used as given (a Tier column is not recomputed)."""
    ev = evaluator()
    t = _table(ev, decision)
    names = t.result_names
    labels = [t.output(n).label if t.output(n) else next(d.label for d in t.due if d.name == n) for n in names]
    headers: dict = {}
    rows, blank = _rows_from_table(ev, data, headers)
    return [labels] + _evaluate(ev, rows, blank, t.name, names, as_of, True, headers)


@xw.func(category=CATEGORY)
@xw.arg("journey", err_to_str=True, doc="Name of the journey, e.g. \"lapsed\" or \"new_customer\" (see rules/journeys.yaml).")
@xw.arg("data", UsedRows, ndim=2, err_to_str=True, doc="A range whose first row is a header, e.g. Customers[#All]: the journey's date columns (signed up on, coupon sent on, ...).")
@xw.arg("as_of", err_to_str=True, doc=AS_OF_DOC)
@_safe
def CX_JOURNEY(journey, data, as_of=None, caller=None):
    """Where each customer is in a journey, computed from the dated columns: spills step, since, next action, channel, owner, due and deferred under a header."""
    ev = evaluator()
    t = _table(ev, journey)
    if not hasattr(t, "journey"):
        names = [n for n, x in ev.rs.tables.items() if hasattr(x, "journey")]
        raise CxError(f"'{t.name}' is a decision, not a journey; use CX_DECIDE, or one of: {', '.join(names)}")
    names = t.result_names
    headers: dict = {}
    rows, blank = _rows_from_table(ev, data, headers)
    texts = [x for x in (data[0] if data and isinstance(data[0], list) else []) if isinstance(x, str)]
    return [_titles(ev, t.name, names, texts)] + _evaluate(ev, rows, blank, t.name, names, as_of, False, headers)


@xw.func(category=CATEGORY)
@_column_arg("last_purchase", "Date of the last purchase: a cell or a column.")
@_column_arg("orders_12m", "Orders in the last 12 months: a cell or a column.")
@_column_arg("spend_12m", "Spend in the last 12 months: a cell or a column (the top-20 % rule ranks within the rows given).")
@_column_arg("previous_tier", "Optional: tier last period.")
@_column_arg("rising_months", "Optional: months of rising spend.")
@xw.arg("as_of", err_to_str=True, doc=AS_OF_DOC)
@_safe
def CX_TIER(last_purchase, orders_12m, spend_12m, previous_tier=None, rising_months=None, as_of=None, caller=None):
    """Customer tier (VIP, High value, Potential, New, Churn risk, Regular), one per row given."""
    return _decide("tier", ["tier"], as_of, labels={"frequency": "orders_12m", "monetary": "spend_12m"},
                   last_purchase=last_purchase, frequency=orders_12m, monetary=spend_12m,
                   previous_tier=previous_tier, rising_months=rising_months)


@xw.func(category=CATEGORY)
@_column_arg("last_contact", "Date of the last contact: a cell or a column.")
@_column_arg("tier", "The customer's tier (e.g. from CX_TIER): a cell or a column.")
@_column_arg("first_purchase", "Optional: date of the first purchase (new customers get a welcome call).")
@_column_arg("previous_tier", "Optional: tier last period.")
@xw.arg("as_of", err_to_str=True, doc=AS_OF_DOC)
@_safe
def CX_NEXT_CONTACT(last_contact, tier, first_purchase=None, previous_tier=None, as_of=None, caller=None):
    """Next contact date from the tier's contact cadence, one per row given."""
    return _decide("contact", ["next_contact"], as_of, True, last_contact=last_contact, tier=tier,
                   first_purchase=first_purchase, previous_tier=previous_tier)


@xw.func(category=CATEGORY)
@_column_arg("opened_at", "When the case was opened (date and time): a cell or a column.")
@_column_arg("severity", "Urgent, Complex, Normal or Minor: a cell or a column.")
@_column_arg("tier", "Optional: the customer's tier (VIP cases are faster).")
@_column_arg("case_type", "Optional: case type (e.g. Complaint).")
@_safe
def CX_DEADLINES(opened_at, severity, tier=None, case_type=None, caller=None):
    """Respond-by and resolve-by deadlines of a case, in working time where the rules say so; two columns per row."""
    return _decide("escalation", ["respond_by", "resolve_by"], None, labels={"kind": "case_type"},
                   opened_at=opened_at, severity=severity, tier=tier, kind=case_type)


@xw.func(category=CATEGORY)
@_column_arg("opened_at", "When the case was opened: a cell or a column.")
@_column_arg("status", "Case status (Resolved and Closed cases do not escalate): a cell or a column.")
@xw.arg("as_of", err_to_str=True, doc=AS_OF_DOC)
@_safe
def CX_LEVEL(opened_at, status, as_of=None, caller=None):
    """Escalation level 0-3 (24 h / 72 h / 7 days open), one per row given."""
    return _decide("escalation_level", ["level"], as_of, opened_at=opened_at, status=status)


@xw.func(category=CATEGORY)
@_column_arg("severity", "Case severity: a cell or a column.")
@_column_arg("tier", "The customer's tier: a cell or a column.")
@_column_arg("prior_complaints", "Optional: number of earlier complaints.")
@_column_arg("level", "Optional: escalation level (e.g. from CX_LEVEL).")
@_safe
def CX_OFFER(severity, tier, prior_complaints=None, level=None, caller=None):
    """Compensation offer from the compensation ladder, one per row given."""
    return _decide("compensation", ["offer"], None, True, severity=severity, tier=tier, prior_complaints=prior_complaints, level=level)


@xw.func(category=CATEGORY)
@_column_arg("score", "NPS score 0-10: a cell or a column.")
@_safe
def CX_NPS(score, caller=None):
    """NPS group (Promoter, Passive, Detractor), one per row given."""
    return _decide("nps", ["nps_group"], None, score=score)


def _duration(d) -> Duration:
    """Text like 4h or 1d 12h; a number counts days as '1d' does (working days in a business calendar)."""
    if isinstance(d, bool):
        raise ValueProblem(f"'{d}' is not a duration")
    if isinstance(d, (int, float)) and d - d == 0:  # NaN and ±inf go to coerce, which says why not
        whole = int(d)
        return Duration.of(days=whole if whole == d else d)
    return parse_duration(d) if isinstance(d, str) and d.strip() not in EXCEL_ERRORS else coerce(d, "duration")


DUE_TITLE = "Due"


@xw.func(category=CATEGORY)
@_column_arg("start", "A date or date and time: a cell or a column.")
@_column_arg("duration", "A duration like 4h, 1d, 2w or 1d 12h (a number counts days): a cell or a column.")
@xw.arg("calendar", err_to_str=True, doc="Optional: a calendar of the rules, e.g. business or everyday (default: business).")
@_safe
def CX_DUE(start, duration, calendar="business", caller=None):
    """The due date: start plus duration in a working calendar (working hours, holidays, make-up days)."""
    ev = evaluator()
    rs = ev.rs
    calendar = _argument("calendar", calendar)
    name = "business" if _is_blank(calendar) else str(calendar).strip()
    cal = rs.calendars.get(name)
    if cal is None:
        raise CxError(f"no calendar named '{shown(name)}'; calendars: {', '.join(rs.calendars) or 'none'}")
    keys = _header_keys(ev)
    keys.update({"start": "start", "duration": "duration", norm_header(DUE_TITLE): "due"})
    cols, n, single, header = _columns({"start": start, "duration": duration}, keys)
    (starts, s1), (durs, s2) = cols["start"], cols["duration"]
    out = []
    for i in range(n):
        s = starts[0 if s1 else i]
        d = durs[0 if s2 else i]
        if i == header:
            out.append([DUE_TITLE])
        elif _is_blank(s) or _is_blank(d):
            out.append([""])
        else:
            try:
                amount = _duration(d)
                out.append([cal.add(_day_or_moment(_start(s), amount), amount)])
            except Exception:  # noqa: BLE001 - again, to say which argument is at fault
                out.append([_due_cell(cal, s, d)])
    return out[0][0] if single else out


def _start(s):
    return coerce(s, "date" if isinstance(s, dt.date) and not isinstance(s, dt.datetime) else "datetime")


def _day_or_moment(start, amount: Duration):
    """COM hands a date cell as a date-time at midnight (and TODAY() as a whole number):
    plus whole days it is a day, and so is the due; plus hours it counts from midnight."""
    if isinstance(start, dt.datetime) and start.time() == dt.time(0) and not amount.time and float(amount.days).is_integer():
        return start.date()
    return start


def _due_cell(cal, s, d):
    """One row of CX_DUE: the due date, or a message naming the argument at fault."""
    try:
        start_v = _start(s)
    except Exception as e:  # noqa: BLE001 - this row's message, not the call's
        return ERR + _short(f"start: {e}")
    try:
        amount = _duration(d)
    except Exception as e:  # noqa: BLE001
        return ERR + _short(f"duration: {e}")
    try:
        return cal.add(_day_or_moment(start_v, amount), amount)
    except (ValueError, OverflowError) as e:
        return ERR + _short(f"cannot compute the due date: {out_of_range(e)}")


@xw.func(category=CATEGORY)
@xw.arg("decision", err_to_str=True, doc="Name of the decision, e.g. \"tier\".")
@xw.arg("data", UsedRows, ndim=2, err_to_str=True, doc="A range with a header row and data rows, or two columns of name / value pairs.")
@xw.arg("as_of", err_to_str=True, doc=AS_OF_DOC)
@_safe
def CX_EXPLAIN(decision, data, as_of=None, caller=None):
    """Says which rule row fired for each row (file and line), and its result; one line per row."""
    ev = evaluator()
    t = _table(ev, decision)
    decision = t.name
    grid = _grid(data)
    keys = _header_keys(ev)
    names = [r[0] for r in grid if r and not _is_blank(r[0])]
    headers: dict = {}
    if grid and len(grid[0]) == 2 and names and all(norm_header(x) in keys for x in names):  # name / value pairs
        rows, blank = [{keys[norm_header(r[0])]: r[1] for r in grid if not _is_blank(r[0]) and not _is_blank(r[1])}], [False]
        headers = {keys[norm_header(x)]: shown(x, 40) for x in names}
    else:
        rows, blank = _rows_from_table(ev, data, headers)
    todo = [i for i, b in enumerate(blank) if not b]
    r = ev.evaluate([rows[i] for i in todo], decision, _as_of(as_of), given_wins=True)
    msgs = _row_messages([p for p in r.problems if p.severity == "error" or p.table == decision], len(todo), headers)
    by_index = {rule.index: rule for rule in t.rules}
    out = [[""] for _ in rows]
    for k, i in enumerate(todo):
        fired = r.fired.get(decision, [None] * len(todo))[k]
        results = ", ".join(f"{n}={display(r.columns[n][k])}" for n in t.result_names if r.columns.get(n) and r.columns[n][k] is not None)
        if hasattr(t, "journey"):  # no rule rows: where the dates put the row
            where = f"journey '{decision}' ({Path(t.loc.file).name}:{t.loc.line})" if t.loc.file else f"journey '{decision}'"
            out[i][0] = msgs[k] or (f"{where}: {results}" if results else f"not in {where} as of this moment")
            continue
        if fired is None or fired == []:
            out[i][0] = msgs[k] or ERR + f"no rule row of '{decision}' matched"
            continue
        fired = fired if isinstance(fired, list) else [fired]
        where = "; ".join(f"{Path(by_index[x].loc.file).name}:{by_index[x].loc.line}" for x in fired if by_index[x].loc.file)
        rows_txt = ("rule row " if len(fired) == 1 else "rule rows ") + ", ".join(str(x) for x in fired)
        note = by_index[fired[0]].note
        out[i][0] = f"{rows_txt} fired ({where}): {results}" + (f" - {note}" if note else "")
    return out[0][0] if len(out) == 1 else out


@xw.func(category=CATEGORY)
@_safe
def CX_DECISIONS(caller=None):
    """Lists the decisions of the rules: name, title, the inputs each reads and the outputs it writes."""
    out = [["Decision", "Title", "Reads", "Writes", "Rule file"]]
    for d in describe(evaluator().rs):
        reads = "; ".join(f"{i['name']} ({i['type']}) <- {i['source']}" for i in d["inputs"])
        writes = "; ".join(f"{o['name']} ({o['type']})" for o in d["outputs"])
        out.append([d["decision"], d["title"], reads, writes, f"{Path(d['file']).name}:{d['line']}" if d["file"] else ""])
    return out


@xw.func(category=CATEGORY, volatile=True)
@_safe
def CX_NOW(caller=None):
    """Now on the rules' clock (their time zone), recalculated at every recalculation: give it as as_of to keep results current."""
    return now_in(evaluator().rs.timezone)


FUNCTIONS = (CX_DECIDE, CX_JOURNEY, CX_TIER, CX_NEXT_CONTACT, CX_DEADLINES, CX_LEVEL, CX_OFFER, CX_NPS, CX_DUE, CX_EXPLAIN, CX_DECISIONS, CX_NOW)


# ------------------------------------------------------------------ macros (RunPython)
def _caller():
    return xw.Book.caller()


def _message(book, text: str, title: str = "CX Rules") -> None:
    """A message box in Excel; status bar text where boxes are not available."""
    try:
        book.app.alert(text, title=title)
    except Exception:  # noqa: BLE001 - e.g. an engine without alerts: the status bar is enough
        try:
            book.app.status_bar = text
        except Exception:  # noqa: BLE001
            pass


def _run_macro(body):
    """Macros report problems in a message box, never with a traceback."""

    @functools.wraps(body)
    def macro():
        book = _caller()
        try:
            s = settings(book)
        except Exception as e:  # noqa: BLE001
            _message(book, f"cxrules could not read this workbook's settings ({type(e).__name__}: {e}).", "CX Rules")
            return None
        token = _current.set(s)
        try:
            return body(book)
        except CxError as e:
            _message(book, str(e), "CX Rules: nothing was changed")
        except Exception as e:  # noqa: BLE001
            _message(book, f"cxrules failed ({type(e).__name__}: {e}). This is a bug: please report it.", "CX Rules")
        finally:
            _current.reset(token)

    del macro.__wrapped__  # RunPython calls it with no arguments; its signature says so
    return macro


def _evaluator_or_raise() -> Evaluator:
    try:
        return evaluator()
    except RuleSetError as e:
        raise CxError(f"the rules in {rules_folder()} have errors; press Check rules to see them. First: {e}") from None


def _plan(book, sheets, as_of=None):
    """Everything the button will write, computed before anything is written."""
    from . import excel_write

    ev = _evaluator_or_raise()
    s = _settings_now()
    as_of = as_of or now_in(ev.rs.timezone)
    report = RecalcReport(book.fullname, book.fullname, as_of)
    report.problems.extend(s.problems)
    state = excel_write.read_book(book)
    skip = set(OWN_SHEETS) | set(CONF_SHEETS) | state.own_sheets
    data = (excel_write.read_sheet(sh, state) for sh in sheets if sh.name not in skip)
    edits, new_sheets = plan(data, ev, as_of, report, mapping=s.mapping)
    return ev, report, edits, new_sheets, state


def _done_and_skipped(report: RecalcReport, head: str) -> str:
    """The message after a button: what was written, then what was left alone and why."""
    lines = [head]
    lines.append("Sheets: " + "; ".join(
        f"{s.sheet}{' ' + s.region if s.region else ''} ({s.rows} rows" + (", not written: " + s.refused.message if s.refused else "") + ")"
        for s in report.sheets) + ".")
    if report.skipped:
        lines.append("Skipped (no columns the rules read): " + ", ".join(report.skipped) + ".")
    kept = {"column-kept": "Kept as you wrote them", "formula-kept": "Formulas kept", "decision-not-run": "Did not run",
            "no-room": "Left alone", "range-skipped": "Left alone", "table-header-kept": "Table headers kept",
            "sheet-name-taken": "Sheet names taken"}
    for code, title in kept.items():
        ps = [p for p in report.problems if p.code == code]
        if ps:
            lines.append(f"{title}: " + "; ".join(f"{p.sheet} {p.column or ''}".strip() + f" ({_short(p.message)})" for p in ps[:3])
                         + (f"; and {len(ps) - 3} more" if len(ps) > 3 else "") + ".")
    n = len(report.problems)
    lines.append(f"{n} problem(s) in all" + (f": see the {report.issues_sheet} sheet." if n else "."))
    return "\n".join(lines)


@_run_macro
def recalculate(book):
    """Recalculate this workbook in place, as `cxrules recalc` does: columns, colours, CX summary and Issues sheets."""
    from .excel_write import apply

    active = book.sheets.active.name
    _, report, edits, new_sheets, state = _plan(book, list(book.sheets))
    if not report.sheets:
        why = "; ".join(_short(p.message) for p in report.not_run[:3])
        _message(book, "No sheet has the columns the rules read (e.g. Last purchase, Orders 12m, Spend 12m, Severity, Opened at); "
                       "nothing was changed." + (f"\n{why}" if why else ""))
        return report
    apply(book, edits, new_sheets, report, state, activate=active)
    report.written = True
    _message(book, _done_and_skipped(report, f"Recalculated {report.rows} rows on {len(report.sheets)} sheet(s) as of "
                                             f"{report.as_of:%Y-%m-%d %H:%M}; {sum(s.overdue for s in report.sheets)} overdue."))
    return report


@_run_macro
def flag_overdue(book):
    """Recompute due dates on the active sheet and colour every overdue row red."""
    from .excel_write import apply

    sheet = book.sheets.active
    _, report, edits, _, state = _plan(book, [sheet])
    if not report.sheets:
        _message(book, f"Sheet '{sheet.name}' has no columns the rules read; nothing was changed.")
        return report
    for e in edits:
        cols = [c.col for c in e.columns]
        for h in e.highlights:
            if h.equals == ">0":  # the days-overdue test: colour the whole row
                h.first_col = min([h.first_col] + [x.first_col for x in e.highlights if x.first_col is not None] + cols)
                h.last_col = max([h.last_col] + [x.last_col for x in e.highlights if x.last_col is not None] + cols)
    apply(book, edits, [], report, state)
    s = report.sheets[0]
    if s.overdue:
        _message(book, f"{s.overdue} overdue row(s) on '{sheet.name}' as of {report.as_of:%Y-%m-%d %H:%M}, coloured red.")
    else:
        has_due = any(lbl in s.columns_written + s.columns_added for lbl in DAYS_OVERDUE_LABELS)
        _message(book, f"No overdue rows on '{sheet.name}'." if has_due else f"Sheet '{sheet.name}' has no deadlines or contact dates to check.")
    return report


def _rules_book_grids(book):
    """The sheets of a rules workbook (cxrules rules export) as values, or None for another workbook."""
    from .rulebook import MARKER

    about = _sheet(book, ("about",))
    rows = _sheet_rows(about) if about is not None else []
    if not rows or not rows[0] or str(rows[0][0] or "").strip().lower() != MARKER:
        return None
    return [(s.name, _rows_from_a1(s)) for s in book.sheets if s.name != CHECK_SHEET]


def _rows_from_a1(sheet) -> list[list]:
    """A sheet's values as from A1 (its used range may start lower or further right), so
    the cells a check names are the cells Excel shows."""
    rng = sheet.used_range
    rows = rng.options(ndim=2, err_to_str=True).value or []
    top, left = rng.row - 1, rng.column - 1
    return [[] for _ in range(top)] + [[None] * left + list(r) for r in rows]


def _check_rules_book(book, grids):
    """Check this rules workbook and run its examples; each problem named by its sheet and cell."""
    from . import rulebook
    from .excel_write import apply, read_book
    from .problems import cell_ref
    from .workbook import CellFormat, NewSheet

    problems, n, ran = rulebook.check(rulebook.read_grids(grids), book.name, examples=True)
    failed = [(r, p) for r, p in ran if p is not None]
    rows = [["Severity", "Cell", "Decision", "Row", "Column", "Problem", "What to do"]]
    for p in list(problems) + [f for _, f in failed]:
        where = cell_ref(p.sheet, p.cell) if p.sheet and p.cell else (p.sheet or "")
        rows.append(["example" if p.code == "example" else p.severity, where, p.table, p.row, p.column, p.message, p.suggestion])
    n_err, n_warn = len(problems.errors), len(problems.warnings)
    summary = f"{n_err} error(s), {n_warn} warning(s), {len(failed)} failed example(s) in the {n} decision table(s) of this rules workbook"
    if len(rows) == 1:
        rows.append([None, None, None, None, None, "No problems found", None])
    report = RecalcReport(book.fullname, book.fullname, dt.datetime.now())
    apply(book, [], [NewSheet(CHECK_SHEET, [[summary], []] + rows, formats={(0, 0): CellFormat(bold=True)},
                              row_formats={2: CellFormat(bold=True)}, freeze_rows=3)], report, read_book(book))
    first = [f"{r[1]}: {_short(r[5])}" for r in rows[1:4] if r[1]]
    _message(book, summary + (":\n" + "\n".join(first) if first else ".") + (f"\nSee the '{CHECK_SHEET}' sheet." if first else ""))
    return problems


@_run_macro
def check_rules(book):
    """Check the rules and run their examples: this workbook's when it is a rules workbook (each
    problem named by its sheet and cell), else the rule files; the report goes to the 'CX rule check' sheet."""
    from .excel_write import apply, read_book
    from .testing import run_examples
    from .workbook import CellFormat, NewSheet

    grids = _rules_book_grids(book)
    if grids is not None:
        return _check_rules_book(book, grids)
    folder = rules_folder()
    rs, problems = rulesets.load(folder)
    rows = [["Severity", "File", "Line", "Decision", "Problem", "What to do"]]
    for p in problems:
        rows.append([p.severity, Path(p.file).name if p.file else None, p.line, p.table, p.message, p.suggestion])
    failed = []
    if not problems.errors:
        failed = [r for r in run_examples(rs) if not r.passed]
        for r in failed:
            rows.append(["example", Path(r.file).name if r.file else None, r.line, r.table, r.describe(), "fix the rule row or the example"])
    n_err, n_warn = len(problems.errors), len(problems.warnings)
    summary = f"{n_err} error(s), {n_warn} warning(s), {len(failed)} failed example(s) in {len(rs.files)} file(s) of {folder}"
    if len(rows) == 1:
        rows.append([None, None, None, None, "No problems found", None])
    rows.insert(0, [summary])
    rows.insert(1, [])
    report = RecalcReport(book.fullname, book.fullname, dt.datetime.now())
    apply(book, [], [NewSheet(CHECK_SHEET, rows, formats={(0, 0): CellFormat(bold=True)}, row_formats={2: CellFormat(bold=True)}, freeze_rows=3)],
          report, read_book(book))
    _message(book, summary + f" (rules folder set by {_settings_now().source}).")
    return problems


@_run_macro
def reload_rules(book):
    """Forget the loaded rules, load them again and recalculate every CX_ function."""
    rulesets.cache.clear()
    ev = _evaluator_or_raise()
    try:
        book.app.api.CalculateFull()  # UDFs whose inputs did not change recalculate too
    except Exception:  # noqa: BLE001 - engines without a COM api
        book.app.calculate()
    _message(book, f"Rules reloaded from {rules_folder()} (set by {_settings_now().source}): "
                   f"{len(ev.rs.tables)} decisions in {len(ev.rs.files)} file(s).")
    return ev


NEW_RULES_SETTING = "CXRULES_NEW_RULES"  # the rules to preview, in the cxrules.conf sheet or file
NEW_RULES_NAME = "CX_NEW_RULES"  # or in a cell of this name


def _new_rules_spec(book) -> tuple[str | None, str]:
    """The new rules to preview and where that was set: the cell named CX_NEW_RULES, else
    CXRULES_NEW_RULES in the workbook's cxrules.conf sheet, in a cxrules.conf beside it, or
    in the add-in's settings file. A relative folder is relative to the workbook."""
    value, where = None, ""
    v = _named_cell(book, NEW_RULES_NAME)
    if v is not None and str(v).strip():
        value, where = str(v).strip(), f"the cell named {NEW_RULES_NAME}"
    base = _book_folder(book)
    if value is None:
        candidates = [(lambda: _conf_sheet(book), f"the {CONF_SHEET} sheet of this workbook")]
        if base is not None:
            candidates.append((lambda: _conf_file(base / "cxrules.conf"), str(base / "cxrules.conf")))
        candidates.append((lambda: _conf_file(user_conf_path()), str(user_conf_path())))
        for read, at in candidates:
            v = read().get(NEW_RULES_SETTING, "").strip()
            if v:
                value, where = _expand(v), at
                break
    if value and base is not None and not os.path.isabs(value) and (base / value).exists():
        value = str(base / value)
    return value, where


def _named_cell(book, name: str):
    """The value of the cell a workbook-level name refers to; None when there is no such name."""
    try:
        n = book.names[name]
    except Exception:  # noqa: BLE001 - no such name (COM raises, other engines too)
        return None
    try:
        return n.refers_to_range.value
    except Exception:  # noqa: BLE001 - engines that cannot resolve it: read =Sheet!$B$1 ourselves
        m = re.fullmatch(r"=?(?:'((?:[^']|'')+)'|([^!]+))!\$?([A-Z]{1,3})\$?(\d+)", (n.refers_to or "").strip())
        if not m:
            return None
        sheet = (m.group(1) or "").replace("''", "'") or m.group(2)
        with contextlib.suppress(Exception):
            return book.sheets[sheet].range(f"{m.group(3)}{m.group(4)}").value
        return None


@_run_macro
def preview_rule_change(book):
    """Evaluate the new rules (the cell named CX_NEW_RULES, or CXRULES_NEW_RULES in the
    cxrules.conf sheet) beside the rules in force over this workbook's data, as
    `cxrules impact` does; the report goes to the 'CX impact' and 'CX impact rows' sheets.
    Nothing else in the workbook changes."""
    from .excel_write import apply, read_book, read_sheet
    from .impact import describe as what_changes, impact_sheets
    from .impact_report import sheets as report_sheets
    from .revisions import load_pair

    spec, where = _new_rules_spec(book)
    if not spec:
        _message(book, f"Which rules should be previewed? Put their folder (or a git revision such as HEAD~1:rules) in a "
                       f"cell named {NEW_RULES_NAME}, or as {NEW_RULES_SETTING} in column A of a '{CONF_SHEET}' sheet with "
                       f"the folder in column B; then press Preview rule change again. Nothing was changed.")
        return None
    try:
        new, base = load_pair(spec, rules_folder())
    except RuleSetError as e:
        first = next((p for p in e.problems if p.is_error), None)
        raise CxError(f"the rules to preview ({spec}, set in {where}) have errors; fix them first. First: {first}") from None
    s = _settings_now()
    state = read_book(book)
    skip = set(OWN_SHEETS) | set(CONF_SHEETS) | state.own_sheets | {CHECK_SHEET}
    data = [read_sheet(sh, state) for sh in book.sheets if sh.name not in skip]
    rep = impact_sheets([(book.name, data, s.mapping)], Evaluator(new.rs), Evaluator(base.rs), now_in(base.rs.timezone),
                        base_label=base.label, new_label=new.label)
    report = RecalcReport(book.fullname, book.fullname, rep.as_of)
    made = report_sheets(rep, new.rs)
    apply(book, [], made, report, state)
    shown = made[0].name
    _message(book, f"Preview of {new.label} against {base.label} as of {rep.as_of:%Y-%m-%d %H:%M}: {what_changes(rep)}. "
                   f"See the '{shown}' sheet; nothing else was changed.")
    return rep


MACROS = (recalculate, flag_overdue, check_rules, reload_rules, preview_rule_change)


if __name__ == "__main__":  # debugging from Python: python -m cxrules.excel BOOK.xlsx
    xw.Book(sys.argv[1]).set_mock_caller()
    recalculate()
