"""Excel through xlwings: the CX_* worksheet functions and the CX Rules ribbon's macros.

The only module that imports xlwings. It is thin: cell values in, the library does the
work, values out. A worksheet function never raises: a problem becomes short
'#CX: ...' text in the cell it concerns, and the other rows are still computed.

The rules folder is $CXRULES_RULES (the add-in copies its `CXRULES_RULES` setting there
before Python starts), else the bundled rules. Rule files are reloaded when edited
(rulesets.RuleCache), so an edit takes effect at the next calculation.
"""
from __future__ import annotations

import datetime as dt
import functools
from itertools import chain
from operator import itemgetter
from pathlib import Path

import xlwings as xw

from . import rulesets
from .evaluation import Evaluator, now_in
from .problems import CxError, RuleSetError
from .recalc import DAYS_OVERDUE_LABELS, ISSUES_SHEET, OWN_SHEETS, RecalcReport, plan
from .values import EXCEL_ERRORS, Duration, ValueProblem, coerce, display, norm_header, out_of_range, parse_duration, shown
from .vocabulary import describe

CATEGORY = "CX Rules"
ERR = "#CX: "
MAX_MESSAGE = 120
CHECK_SHEET = "CX rule check"
CONF_SHEETS = ("cxrules.conf", "_cxrules.conf", "xlwings.conf", "_xlwings.conf")


# ------------------------------------------------------------------ settings and rules
def rules_folder() -> Path:
    """$CXRULES_RULES, else ./rules if it holds rule files, else the bundled rules."""
    return rulesets.default_rules_dir()


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


def _safe(f):
    """Any exception becomes '#CX: ...' text; functools.wraps keeps the signature xlwings reads."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - a cell must show text, never a traceback
            return _error_text(e)

    return wrapper


# ------------------------------------------------------------------ cells in
# COM hands an Excel error as an int, 0x800A0000 + its XlCVError code; xlwings' err_to_str
# names only the seven oldest, so e.g. #SPILL! arrives as the int -2146826243: a number.
_COM_ERROR_BASE = -2146828288
_COM_ERRORS = {_COM_ERROR_BASE + code: text for code, text in (
    (2000, "#NULL!"), (2007, "#DIV/0!"), (2015, "#VALUE!"), (2023, "#REF!"), (2029, "#NAME?"), (2036, "#NUM!"),
    (2042, "#N/A"), (2043, "#GETTING_DATA"), (2045, "#SPILL!"), (2046, "#CONNECT!"), (2047, "#BLOCKED!"),
    (2048, "#UNKNOWN!"), (2049, "#FIELD!"), (2050, "#CALC!"))}


def _cell_in(v):
    """A cell as COM gave it, an Excel error code read as the error (numbers come as floats)."""
    if v.__class__ is int and _COM_ERROR_BASE + 2000 <= v <= _COM_ERROR_BASE + 2100:
        return _COM_ERRORS.get(v) or ValueProblem(f"the cell holds an Excel error (code {v - _COM_ERROR_BASE})")
    return v


def _cells_in(values) -> list:
    """A list of cells as _cell_in reads them (a copy); COM gives ints only for errors."""
    if int not in set(map(type, values)):  # the common case, checked at C speed
        return list(values)
    return [_cell_in(v) if v.__class__ is int else v for v in values]


def _is_blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _column(x) -> tuple[list, bool]:
    """(values, was_single): a cell, a 1-D list, one column or one row of cells."""
    if not isinstance(x, (list, tuple)):
        return [_cell_in(x)], True
    if not x:
        return [], False
    if not isinstance(x[0], (list, tuple)):
        return _cells_in(x), len(x) == 1
    if all(len(r) == 1 for r in x):
        return _cells_in(list(map(itemgetter(0), x))), len(x) == 1
    if len(x) == 1:
        return _cells_in(x[0]), len(x[0]) == 1
    raise CxError(f"give one column of cells, not {len(x)} rows by {max(len(r) for r in x)} columns")


def _grid(x) -> list[list]:
    if not isinstance(x, (list, tuple)):
        return [[_cell_in(x)]]
    if x and not isinstance(x[0], (list, tuple)):
        return [_cells_in(x)]
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
    """normalised header -> input/field name, from rule names, labels and column aliases."""
    rs = ev.rs
    keys: dict[str, str] = {}

    def add(name, *aliases):
        for a in (name, *aliases):
            if a:
                keys.setdefault(norm_header(a), name)

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
    while len(rows) > 1 and blank[-1]:  # whole-column references: trailing blank rows are not data
        rows.pop()
        blank.pop()
    return rows, blank


def _last_value(values: list) -> int:
    for i in range(len(values) - 1, -1, -1):
        if not _is_blank(values[i]):
            return i
    return -1


def _rows_from_columns(named: dict) -> tuple[list[dict], list[bool], bool]:
    """Rows from arguments that are each a cell or a column; a single cell repeats down.

    A row is blank (and gets blank outputs) when every column argument is blank there.
    """
    cols, n = {}, None
    for name, x in named.items():
        if x is None:
            continue
        values, one = _column(x)
        if not one:
            if n is not None and len(values) != n:
                raise CxError(f"the columns have different lengths ({n} and {len(values)} rows); give ranges of the same height")
            n = len(values)
        cols[name] = (values, one)
    single = n is None
    n = n or 1
    if not single:  # whole-column references (B:B): rows after the last value are not data
        n = max([_last_value(v) + 1 for v, one in cols.values() if not one] + [1])
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
        rows.append(rec)
        blank.append(empty)
    return rows, blank, single


def _table(ev: Evaluator, decision):
    decision = _argument("decision", decision)
    t = ev.rs.tables.get(str(decision).strip()) if not _is_blank(decision) else None
    if t is None:
        from .problems import did_you_mean

        hint = did_you_mean(str(decision), ev.rs.tables)
        raise CxError(f"no decision named '{shown(decision)}'" + (f"; {hint}" if hint else f"; decisions: {', '.join(ev.rs.tables)}"))
    return t


# ------------------------------------------------------------------ cells out
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


def _evaluate(rows, blank, decision, outputs, as_of, given_wins=False, labels=None) -> list[list]:
    ev = evaluator()
    decision = _table(ev, decision).name
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


def _decide(decision, outputs, as_of, given_wins=False, labels=None, **named):
    """`named`: input name -> argument; `labels`: input name -> argument name where they differ."""
    rows, blank, single = _rows_from_columns(named)
    return _shape(_evaluate(rows, blank, decision, outputs, as_of, given_wins, labels), single)


# ------------------------------------------------------------------ worksheet functions
@xw.func(category=CATEGORY)
@xw.arg("decision", err_to_str=True, doc="Name of the decision, e.g. \"tier\" (see CX_DECISIONS()).")
@xw.arg("data", ndim=2, err_to_str=True, doc="A range whose first row is a header, e.g. A1:F5000; headers may be column names, labels or input names.")
@xw.arg("as_of", err_to_str=True, doc="Optional: the moment 'now' is (default: now in the rules' time zone).")
@_safe
def CX_DECIDE(decision, data, as_of=None):
    """Evaluates a decision for every row of a range with a header row; spills all its outputs under a header. Columns in the range are used as given (a Tier column is not recomputed)."""
    ev = evaluator()
    t = _table(ev, decision)
    names = t.result_names
    labels = [t.output(n).label if t.output(n) else next(d.label for d in t.due if d.name == n) for n in names]
    headers: dict = {}
    rows, blank = _rows_from_table(ev, data, headers)
    return [labels] + _evaluate(rows, blank, t.name, names, as_of, True, headers)


@xw.func(category=CATEGORY)
@xw.arg("last_purchase", ndim=2, err_to_str=True, doc="Date of the last purchase: a cell or a column.")
@xw.arg("orders_12m", ndim=2, err_to_str=True, doc="Orders in the last 12 months: a cell or a column.")
@xw.arg("spend_12m", ndim=2, err_to_str=True, doc="Spend in the last 12 months: a cell or a column (the top-20 % rule ranks within the rows given).")
@xw.arg("previous_tier", ndim=2, err_to_str=True, doc="Optional: tier last period.")
@xw.arg("rising_months", ndim=2, err_to_str=True, doc="Optional: months of rising spend.")
@xw.arg("as_of", err_to_str=True, doc="Optional: the moment 'now' is (default: now).")
@_safe
def CX_TIER(last_purchase, orders_12m, spend_12m, previous_tier=None, rising_months=None, as_of=None):
    """Customer tier (VIP, High value, Potential, New, Churn risk, Regular), one per row given."""
    return _decide("tier", ["tier"], as_of, labels={"frequency": "orders_12m", "monetary": "spend_12m"},
                   last_purchase=last_purchase, frequency=orders_12m, monetary=spend_12m,
                   previous_tier=previous_tier, rising_months=rising_months)


@xw.func(category=CATEGORY)
@xw.arg("last_contact", ndim=2, err_to_str=True, doc="Date of the last contact: a cell or a column.")
@xw.arg("tier", ndim=2, err_to_str=True, doc="The customer's tier (e.g. from CX_TIER): a cell or a column.")
@xw.arg("first_purchase", ndim=2, err_to_str=True, doc="Optional: date of the first purchase (new customers get a welcome call).")
@xw.arg("previous_tier", ndim=2, err_to_str=True, doc="Optional: tier last period.")
@xw.arg("as_of", err_to_str=True, doc="Optional: the moment 'now' is (default: now).")
@_safe
def CX_NEXT_CONTACT(last_contact, tier, first_purchase=None, previous_tier=None, as_of=None):
    """Next contact date from the tier's contact cadence, one per row given."""
    return _decide("contact", ["next_contact"], as_of, True, last_contact=last_contact, tier=tier,
                   first_purchase=first_purchase, previous_tier=previous_tier)


@xw.func(category=CATEGORY)
@xw.arg("opened_at", ndim=2, err_to_str=True, doc="When the case was opened (date and time): a cell or a column.")
@xw.arg("severity", ndim=2, err_to_str=True, doc="Urgent, Complex, Normal or Minor: a cell or a column.")
@xw.arg("tier", ndim=2, err_to_str=True, doc="Optional: the customer's tier (VIP cases are faster).")
@xw.arg("case_type", ndim=2, err_to_str=True, doc="Optional: case type (e.g. Complaint).")
@_safe
def CX_DEADLINES(opened_at, severity, tier=None, case_type=None):
    """Respond-by and resolve-by deadlines of a case, in working time where the rules say so; two columns per row."""
    return _decide("escalation", ["respond_by", "resolve_by"], None, labels={"kind": "case_type"},
                   opened_at=opened_at, severity=severity, tier=tier, kind=case_type)


@xw.func(category=CATEGORY)
@xw.arg("opened_at", ndim=2, err_to_str=True, doc="When the case was opened: a cell or a column.")
@xw.arg("status", ndim=2, err_to_str=True, doc="Case status (Resolved and Closed cases do not escalate): a cell or a column.")
@xw.arg("as_of", err_to_str=True, doc="Optional: the moment 'now' is (default: now).")
@_safe
def CX_LEVEL(opened_at, status, as_of=None):
    """Escalation level 0-3 (24 h / 72 h / 7 days open), one per row given."""
    return _decide("escalation_level", ["level"], as_of, opened_at=opened_at, status=status)


@xw.func(category=CATEGORY)
@xw.arg("severity", ndim=2, err_to_str=True, doc="Case severity: a cell or a column.")
@xw.arg("tier", ndim=2, err_to_str=True, doc="The customer's tier: a cell or a column.")
@xw.arg("prior_complaints", ndim=2, err_to_str=True, doc="Optional: number of earlier complaints.")
@xw.arg("level", ndim=2, err_to_str=True, doc="Optional: escalation level (e.g. from CX_LEVEL).")
@_safe
def CX_OFFER(severity, tier, prior_complaints=None, level=None):
    """Compensation offer from the compensation ladder, one per row given."""
    return _decide("compensation", ["offer"], None, True, severity=severity, tier=tier, prior_complaints=prior_complaints, level=level)


@xw.func(category=CATEGORY)
@xw.arg("score", ndim=2, err_to_str=True, doc="NPS score 0-10: a cell or a column.")
@_safe
def CX_NPS(score):
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


@xw.func(category=CATEGORY)
@xw.arg("start", ndim=2, err_to_str=True, doc="A date or date and time: a cell or a column.")
@xw.arg("duration", ndim=2, err_to_str=True, doc="A duration like 4h, 1d, 2w or 1d 12h (a number counts days): a cell or a column.")
@xw.arg("calendar", err_to_str=True, doc="Optional: a calendar of the rules, e.g. business or everyday (default: business).")
@_safe
def CX_DUE(start, duration, calendar="business"):
    """The due date: start plus duration in a working calendar (working hours, holidays, make-up days)."""
    rs = evaluator().rs
    calendar = _argument("calendar", calendar)
    name = "business" if _is_blank(calendar) else str(calendar).strip()
    cal = rs.calendars.get(name)
    if cal is None:
        raise CxError(f"no calendar named '{shown(name)}'; calendars: {', '.join(rs.calendars) or 'none'}")
    starts, s1 = _column(start)
    durs, s2 = _column(duration)
    if not s1 and not s2 and len(starts) != len(durs):
        raise CxError(f"start and duration have different lengths ({len(starts)} and {len(durs)} rows)")
    n = max([1] + [_last_value(v) + 1 for v, one in ((starts, s1), (durs, s2)) if not one])
    out = []
    for i in range(n):
        s = starts[0 if s1 else i]
        d = durs[0 if s2 else i]
        if _is_blank(s) or _is_blank(d):
            out.append([""])
            continue
        try:
            out.append([cal.add(coerce(s, "datetime" if not (isinstance(s, dt.date) and not isinstance(s, dt.datetime)) else "date"), _duration(d))])
        except Exception:  # noqa: BLE001 - again, to say which argument is at fault
            out.append([_due_cell(cal, s, d)])
    return out[0][0] if s1 and s2 else out


def _due_cell(cal, s, d):
    """One row of CX_DUE: the due date, or a message naming the argument at fault."""
    try:
        start_v = coerce(s, "datetime" if not (isinstance(s, dt.date) and not isinstance(s, dt.datetime)) else "date")
    except Exception as e:  # noqa: BLE001 - this row's message, not the call's
        return ERR + _short(f"start: {e}")
    try:
        amount = _duration(d)
    except Exception as e:  # noqa: BLE001
        return ERR + _short(f"duration: {e}")
    try:
        return cal.add(start_v, amount)
    except (ValueError, OverflowError) as e:
        return ERR + _short(f"cannot compute the due date: {out_of_range(e)}")


@xw.func(category=CATEGORY)
@xw.arg("decision", err_to_str=True, doc="Name of the decision, e.g. \"tier\".")
@xw.arg("data", ndim=2, err_to_str=True, doc="A range with a header row and data rows, or two columns of name / value pairs.")
@xw.arg("as_of", err_to_str=True, doc="Optional: the moment 'now' is (default: now).")
@_safe
def CX_EXPLAIN(decision, data, as_of=None):
    """Says which rule row fired for each row (file and line), and its result; one line per row."""
    ev = evaluator()
    t = _table(ev, decision)
    decision = t.name
    grid = _grid(data)
    keys = _header_keys(ev)
    names = [r[0] for r in grid if r and not _is_blank(r[0])]
    headers: dict = {}
    if len(grid[0]) == 2 and names and all(norm_header(x) in keys for x in names):  # name / value pairs
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
def CX_DECISIONS():
    """Lists the decisions of the rules: name, title, the inputs each reads and the outputs it writes."""
    out = [["Decision", "Title", "Reads", "Writes", "Rule file"]]
    for d in describe(evaluator().rs):
        reads = "; ".join(f"{i['name']} ({i['type']}) <- {i['source']}" for i in d["inputs"])
        writes = "; ".join(f"{o['name']} ({o['type']})" for o in d["outputs"])
        out.append([d["decision"], d["title"], reads, writes, f"{Path(d['file']).name}:{d['line']}" if d["file"] else ""])
    return out


FUNCTIONS = (CX_DECIDE, CX_TIER, CX_NEXT_CONTACT, CX_DEADLINES, CX_LEVEL, CX_OFFER, CX_NPS, CX_DUE, CX_EXPLAIN, CX_DECISIONS)


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
            return body(book)
        except CxError as e:
            _message(book, str(e), "CX Rules: nothing was changed")
        except Exception as e:  # noqa: BLE001
            _message(book, f"cxrules failed ({type(e).__name__}: {e}). This is a bug: please report it.", "CX Rules")

    del macro.__wrapped__  # RunPython calls it with no arguments; its signature says so
    return macro


def _evaluator_or_raise() -> Evaluator:
    try:
        return evaluator()
    except RuleSetError as e:
        raise CxError(f"the rules in {rules_folder()} have errors; press Check rules to see them. First: {e}") from None


def _plan(book, sheets, as_of=None):
    from .excel_write import read_sheet

    ev = _evaluator_or_raise()
    as_of = as_of or now_in(ev.rs.timezone)
    report = RecalcReport(book.fullname, book.fullname, as_of)
    data = (read_sheet(s) for s in sheets if s.name not in OWN_SHEETS and s.name not in CONF_SHEETS)
    edits, new_sheets = plan(data, ev, as_of, report, mapping=_mapping(book, report))
    return ev, report, edits, new_sheets


def _mapping(book, report):
    """The header mapping kept in the workbook's CX settings sheet, as `cxrules recalc` reads it."""
    from .excel_write import read_sheet
    from .mapping import SETTINGS_SHEETS, Mapping, read_settings

    for s in book.sheets:
        if s.name in SETTINGS_SHEETS:
            m, problems = read_settings(read_sheet(s).rows, s.name)
            report.problems.extend(problems)
            return m
    return Mapping()


@_run_macro
def recalculate(book):
    """Recalculate this workbook in place, as `cxrules recalc` does: columns, colours, CX summary and Issues sheets."""
    from .excel_write import apply

    active = book.sheets.active.name
    _, report, edits, new_sheets = _plan(book, list(book.sheets))
    if not report.sheets:
        _message(book, "No sheet has the columns the rules read (e.g. Last purchase, Orders 12m, Spend 12m, Severity, Opened at); nothing was changed.")
        return report
    apply(book, edits, new_sheets)
    book.sheets[active].activate()
    problems = len(report.problems)
    _message(book, f"Recalculated {report.rows} rows on {len(report.sheets)} sheet(s) as of {report.as_of:%Y-%m-%d %H:%M}; "
                   f"{sum(s.overdue for s in report.sheets)} overdue; {problems} problem(s)" + (f" (see the {ISSUES_SHEET} sheet)." if problems else "."))
    return report


@_run_macro
def flag_overdue(book):
    """Recompute due dates on the active sheet and colour every overdue row red."""
    from .excel_write import apply

    sheet = book.sheets.active
    _, report, edits, _ = _plan(book, [sheet])
    if not report.sheets:
        _message(book, f"Sheet '{sheet.name}' has no columns the rules read; nothing was changed.")
        return report
    for e in edits:
        cols = [c.col for c in e.columns]
        for h in e.highlights:
            if h.equals == ">0":  # the days-overdue test: colour the whole row
                h.first_col = min([h.first_col] + [x.first_col for x in e.highlights if x.first_col is not None] + cols)
                h.last_col = max([h.last_col] + [x.last_col for x in e.highlights if x.last_col is not None] + cols)
    apply(book, edits, [])
    s = report.sheets[0]
    if s.overdue:
        _message(book, f"{s.overdue} overdue row(s) on '{sheet.name}' as of {report.as_of:%Y-%m-%d %H:%M}, coloured red.")
    else:
        has_due = any(lbl in s.columns_written + s.columns_added for lbl in DAYS_OVERDUE_LABELS)
        _message(book, f"No overdue rows on '{sheet.name}'." if has_due else f"Sheet '{sheet.name}' has no deadlines or contact dates to check.")
    return report


@_run_macro
def check_rules(book):
    """Check the rule files and run their examples; the report goes to the 'CX rule check' sheet."""
    from .excel_write import apply
    from .testing import run_examples
    from .workbook import CellFormat, NewSheet

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
    apply(book, [], [NewSheet(CHECK_SHEET, rows, formats={(0, 0): CellFormat(bold=True)}, row_formats={2: CellFormat(bold=True)}, freeze_rows=3)])
    _message(book, summary + ".")
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
    _message(book, f"Rules reloaded from {rules_folder()}: {len(ev.rs.tables)} decisions in {len(ev.rs.files)} file(s).")
    return ev


MACROS = (recalculate, flag_overdue, check_rules, reload_rules)


if __name__ == "__main__":  # debugging from Python: python -m cxrules.excel BOOK.xlsx
    import sys

    xw.Book(sys.argv[1]).set_mock_caller()
    recalculate()
