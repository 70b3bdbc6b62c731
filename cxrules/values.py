"""The six value types of rule files and workbooks: parsing, coercion, display.

A value is always one of: None (blank), float/int (number), str (text), bool,
datetime.date (date), datetime.datetime (naive, in the rule set's time zone),
Duration (duration).
"""
from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

TYPES = ("number", "text", "boolean", "date", "datetime", "duration")

EXCEL_EPOCH = dt.datetime(1899, 12, 30)
EXCEL_ERRORS = frozenset(
    {"#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NUM!", "#NAME?", "#NULL!", "#SPILL!", "#CALC!", "#GETTING_DATA", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!"}
)


# How a message names each type ("... is not a number").
WHAT = {"number": "a number", "text": "text", "boolean": "true or false", "date": "a date", "datetime": "a date and time", "duration": "a duration"}


def shown(value, limit: int = 60) -> str:
    """A value as a message quotes it: lone surrogates escaped, long text cut.

    Messages are printed and written to workbooks; a lone surrogate (from a bad decode)
    would make both fail, and a 1 MB cell would swamp the report.
    """
    if isinstance(value, str):
        s = value
    else:
        try:
            s = str(value)
        except Exception:  # noqa: BLE001 - an int past Python's 4300-digit str limit, a broken __str__
            if isinstance(value, int):
                return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
            return f"a {type(value).__name__}"
    if not s.isascii():
        s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s if len(s) <= limit else s[: limit - 3] + "..."


class ValueProblem(ValueError):
    """A value that does not fit its type; the message says what was expected.

    A reader that already knows a cell is unusable (a formula never calculated) passes a
    ValueProblem as the cell's value: reading it raises it, like any other bad cell.
    """

    def __init__(self, message: str, suggestion: str | None = None):
        super().__init__(message)
        self.suggestion = suggestion


@dataclass(frozen=True, eq=False)
class Duration:
    """A length of time as written: weeks and days stay apart from clock time.

    In a business calendar `d`/`w` count working days and `h`/`m`/`s` count working
    time, so the parts are kept; comparisons use the clock length (1d = 24h, 1w = 7d).
    """

    seconds: float = 0.0  # clock length, the ordering key
    weeks: int = 0
    days: float = 0
    time: float = 0.0  # h/m/s part in seconds

    @classmethod
    def of(cls, weeks: int = 0, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> "Duration":
        time = hours * 3600 + minutes * 60 + seconds
        return cls(weeks * 604800 + days * 86400 + time, weeks, days, time)

    @classmethod
    def from_seconds(cls, seconds: float) -> "Duration":
        return cls(seconds, 0, 0, seconds)

    def total_seconds(self) -> float:
        return self.seconds

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    def __str__(self) -> str:
        return format_duration(self)

    def __bool__(self) -> bool:
        return self.seconds != 0

    # Equal and ordered by clock length: 7d == 168h.
    def __eq__(self, other):
        return isinstance(other, Duration) and self.seconds == other.seconds

    def __hash__(self):
        return hash(self.seconds)

    def __lt__(self, other):
        return self.seconds < other.seconds

    def __le__(self, other):
        return self.seconds <= other.seconds

    def __gt__(self, other):
        return self.seconds > other.seconds

    def __ge__(self, other):
        return self.seconds >= other.seconds


_DUR_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.I)
_DUR_FULL = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[wdhms]\s*)+$", re.I)
_ISO_DUR = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.I,
)


def parse_duration(text: str) -> Duration:
    """'30s', '90m', '2h', '3d', '1w', '1d 12h', '1h30m' or ISO 8601 'PT2H'."""
    s = str(text).strip()
    if _DUR_FULL.match(s):
        parts = {"w": 0.0, "d": 0.0, "h": 0.0, "m": 0.0, "s": 0.0}
        for num, unit in _DUR_PART.findall(s):
            parts[unit.lower()] += float(num)
        w = parts["w"]
        weeks = int(w) if w == int(w) else 0
        days = parts["d"] + (w - weeks) * 7
        return Duration.of(weeks, _int_if_whole(days), parts["h"], parts["m"], parts["s"])
    m = _ISO_DUR.match(s)
    if m and s.upper() not in ("P", "PT"):
        g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
        return Duration.of(int(g["w"]), _int_if_whole(g["d"]), g["h"], g["m"], g["s"])
    raise ValueProblem(f"'{shown(text)}' is not a duration; write it like 30s, 90m, 2h, 3d or 1w")


def _int_if_whole(x: float):
    return int(x) if float(x).is_integer() else x


def format_duration(d: Duration) -> str:
    """The shortest text that reads back as the same duration."""
    if d.seconds < 0:
        return "-" + format_duration(Duration(-d.seconds, -d.weeks, -d.days, -d.time))
    out = []
    if d.weeks:
        out.append(f"{d.weeks}w")
    if d.days:
        out.append(f"{_num_text(d.days)}d")
    h, rem = divmod(d.time, 3600)
    m, s = divmod(rem, 60)
    if h:
        out.append(f"{int(h)}h")
    if m:
        out.append(f"{int(m)}m")
    if s or not out:
        out.append(f"{_num_text(s)}s")
    return "".join(out)


def _num_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_number(text) -> float | int:
    if isinstance(text, bool):
        raise ValueProblem(f"'{text}' is not a number")
    if isinstance(text, (int, float)):
        return text
    s = str(text).strip().replace("\u00a0", "")
    t = s.replace(",", "").replace("_", "")
    if t.startswith(("¥", "￥", "$", "€")):
        t = t[1:]
    pct = t.endswith("%")
    if pct:
        t = t[:-1]
    if _NUMBER.match(t):
        try:  # whole numbers stay exact ints, however long
            n = int(t) if not pct and "." not in t and "e" not in t.lower() else float(t)
        except ValueError:  # past Python's 4300-digit limit
            raise ValueProblem(f"'{shown(text)}' has too many digits to be a number") from None
        if n.__class__ is float and not math.isfinite(n):  # '1e400'
            raise ValueProblem(f"'{shown(text)}' is too large a number")
        return n / 100 if pct else n
    raise ValueProblem(f"'{shown(text)}' is not a number")


_TRUE = {"true", "yes", "y", "1", "是", "对", "true()"}
_FALSE = {"false", "no", "n", "0", "否", "不", "false()"}


def parse_boolean(text) -> bool:
    if isinstance(text, bool):
        return text
    if isinstance(text, (int, float)) and text in (0, 1):
        return bool(text)
    s = str(text).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueProblem(f"'{shown(text)}' is not true or false")


_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_CN_DATE = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$")
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$")
_CN_TIME = re.compile(r"^(\d{1,2})\s*[时點点:]\s*(\d{1,2})\s*分?(?:\s*(\d{1,2})\s*秒)?$")


def _date_part(s: str, dayfirst: bool) -> dt.date:
    m = _ISO_DATE.match(s) or _CN_DATE.match(s)
    if m:
        y, mo, d = (int(x) for x in m.groups())
        return dt.date(y, mo, d)
    m = _DMY.match(s)
    if m:
        a, b, y = (int(x) for x in m.groups())
        day, month = (a, b) if dayfirst else (b, a)
        return dt.date(y, month, day)
    raise ValueError


def _time_part(s: str) -> dt.time:
    m = _TIME.match(s)
    if m:
        h, mi, sec, frac = m.groups()
        return dt.time(int(h), int(mi), int(sec or 0), int((frac or "0").ljust(6, "0")))
    m = _CN_TIME.match(s)
    if m:
        h, mi, sec = m.groups()
        return dt.time(int(h), int(mi), int(sec or 0))
    raise ValueError


def parse_date(text, dayfirst: bool = False) -> dt.date:
    """2026-11-23, 2026/11/23, 2026年11月23日, 11/23/2026 (23/11/2026 with dayfirst)."""
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    s = str(text).strip()
    try:
        return _date_part(s, dayfirst)
    except ValueError:
        pass
    try:
        d = parse_datetime(s, dayfirst)
    except ValueProblem:
        raise ValueProblem(f"'{shown(text)}' is not a date; write it like 2026-11-23") from None
    return d.date()


def parse_datetime(text, dayfirst: bool = False) -> dt.datetime:
    """A date, optionally followed by a time ('2026-11-23 09:30', ISO 'T' form too)."""
    if isinstance(text, dt.datetime):
        return text.replace(tzinfo=None) if text.tzinfo is None else text
    if isinstance(text, dt.date):
        return dt.datetime(text.year, text.month, text.day)
    s = str(text).strip()
    try:
        m = re.match(r"^(.*?日|[\d/.\-]+)(?:[ T]+(.*))?$", s)
        if not m:
            raise ValueError
        d = _date_part(m.group(1).strip(), dayfirst)
        t = _time_part(m.group(2).strip()) if m.group(2) else dt.time()
        return dt.datetime.combine(d, t)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(s)
        return parsed
    except ValueError:
        raise ValueProblem(f"'{shown(text)}' is not a date and time; write it like 2026-11-23 09:30") from None


def excel_serial_to_datetime(x: float) -> dt.datetime:
    """Excel shows times to the millisecond: a serial written with 15 digits (17:00 as
    46346.7083333333) is 17:00, not 16:59:59.999997."""
    return EXCEL_EPOCH + dt.timedelta(milliseconds=round(float(x) * 86400000))


def datetime_to_excel_serial(d) -> float:
    if isinstance(d, dt.datetime):
        return (d.replace(tzinfo=None) - EXCEL_EPOCH).total_seconds() / 86400
    return float((d - EXCEL_EPOCH.date()).days)


def parse_literal(text, type_: str, dayfirst: bool = False):
    """A rule-file literal of the given type (raises ValueProblem with plain words)."""
    if type_ == "number":
        return parse_number(text)
    if type_ == "text":
        return str(text).strip()
    if type_ == "boolean":
        return parse_boolean(text)
    if type_ == "date":
        return parse_date(text, dayfirst)
    if type_ == "datetime":
        return parse_datetime(text, dayfirst)
    if type_ == "duration":
        return parse_duration(text)
    raise ValueProblem(f"unknown type '{type_}'")


_CONTAINERS = (list, tuple, dict, set, frozenset)
_BYTES = (bytes, bytearray, memoryview)
_TEXT_OK = (int, float, numbers.Number, dt.date, dt.time, dt.timedelta, Duration)


def a_type(value) -> str:
    """'a list', 'an object': the kind of a value a message names."""
    name = type(value).__name__
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def bad_text(s: str) -> str | None:
    """Why `s` cannot be used as text (a lone surrogate), or None.

    A lone surrogate is what decoding bytes with the wrong encoding leaves behind
    (errors='surrogateescape'); such text cannot be encoded, compared or written.
    """
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"'{shown(s)}' is not valid text ({s[e.start]!a} is left by a wrong decode); decode it with its real encoding"
    return None


def out_of_range(e: Exception) -> str:
    """An error of date arithmetic as a person reads it (OverflowError texts are C's)."""
    return "the date falls outside the years 1 to 9999" if isinstance(e, OverflowError) else str(e)


def _local(d: dt.datetime, tz: str | None) -> dt.datetime:
    """An aware date-time as the naive wall time of the rule set's time zone."""
    if d.tzinfo is None or d.utcoffset() is None:
        return d.replace(tzinfo=None)
    return d.astimezone(ZoneInfo(tz)).replace(tzinfo=None) if tz else d.replace(tzinfo=None)


def _check_kind(value, type_: str) -> None:
    """ValueProblem for a value no type reads: a reader's own problem, NaN, ±inf, NaT, bytes, a list."""
    if isinstance(value, ValueProblem):
        raise value
    what = WHAT.get(type_, type_)
    if isinstance(value, float):
        if value != value:  # pandas' blank; None is cxrules' blank
            raise ValueProblem(f"NaN is not {what}; use None for a blank cell")
        if value in (math.inf, -math.inf):
            raise ValueProblem(f"{value} is not a finite number" if type_ == "number" else f"{value} is not {what}")
    elif isinstance(value, dt.date) and value != value:  # pandas' NaT
        raise ValueProblem(f"NaT is not {what}; use None for a blank cell")
    elif isinstance(value, _BYTES):
        raise ValueProblem(f"{shown(value)} is bytes, not {what}; decode it to text first")
    elif isinstance(value, _CONTAINERS):
        raise ValueProblem(f"{shown(value)} is {a_type(value)}, not {what}; give one value per cell")


def coerce(value, type_: str, dayfirst: bool = False, tz: str | None = None):
    """A workbook cell's value as the given type; None for blank.

    Raises ValueProblem for values that cannot be read as that type (text in a number
    column, an Excel error, a date that is not a date, NaN, a list, bytes, ...).
    A date-time with a time zone is read in `tz` (the rule set's zone) when given.
    """
    if value is None:
        return None
    t = type(value)
    if t is str:
        s = value.strip()
        if not s:
            return None
        if s in EXCEL_ERRORS:
            raise ValueProblem(f"the cell holds the Excel error {s}")
        value = s
    elif t is not int and t is not dt.datetime and t is not dt.date and t is not bool:  # the rare kinds
        if isinstance(value, str):  # a str subclass (numpy.str_, a str enum): its text
            return coerce(str.__str__(value), type_, dayfirst, tz)
        _check_kind(value, type_)
    if type_ == "number":
        if isinstance(value, (dt.date, dt.datetime)):
            raise ValueProblem(f"'{shown(value)}' is a date, not a number")
        if isinstance(value, Duration):
            raise ValueProblem(f"'{value}' is a duration, not a number")
        if not isinstance(value, (str, numbers.Number)):
            raise ValueProblem(f"'{shown(value)}' is {a_type(value)}, not a number")
        return parse_number(value)
    if type_ == "text":
        if isinstance(value, str):
            why = bad_text(value) if not value.isascii() else None
            if why:
                raise ValueProblem(why)
            return value
        if not isinstance(value, _TEXT_OK):
            raise ValueProblem(f"'{shown(value)}' is {a_type(value)}, not text")
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, dt.datetime):
            return _local(value, tz).isoformat(sep=" ")
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        try:
            return str(value)
        except ValueError:  # an int past Python's 4300-digit limit
            raise ValueProblem(f"{shown(value)} is too long to read as text") from None
    if type_ == "boolean":
        return parse_boolean(value)
    if type_ in ("date", "datetime"):
        if isinstance(value, bool):
            raise ValueProblem(f"'{value}' is not a date")
        if isinstance(value, (int, float)):
            if not 1 <= value < 2958466:
                raise ValueProblem(f"{shown(value)} is not a date")
            d = excel_serial_to_datetime(value)
            return d.date() if type_ == "date" else d
        if isinstance(value, dt.time):
            raise ValueProblem(f"'{value}' is a time of day without a date")
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = _local(value, tz)
        if type_ == "date":
            return parse_date(value, dayfirst)
        d = parse_datetime(value, dayfirst)
        return _local(d, tz) if d.tzinfo is not None else d
    if type_ == "duration":
        if isinstance(value, Duration):
            d = value
        elif isinstance(value, dt.timedelta):
            d = Duration.from_seconds(value.total_seconds())
        elif isinstance(value, bool):
            raise ValueProblem(f"'{value}' is not a duration")
        elif isinstance(value, (int, float)):  # Excel keeps durations as days
            try:
                d = Duration.from_seconds(float(value) * 86400)
            except OverflowError:
                d = Duration.from_seconds(math.inf)
        elif isinstance(value, dt.time):
            d = Duration.from_seconds(value.hour * 3600 + value.minute * 60 + value.second)
        else:
            d = parse_duration(value)
        try:
            finite = math.isfinite(d.seconds)
        except OverflowError:  # an int of seconds past any float
            finite = False
        if not finite:
            raise ValueProblem(f"{shown(d.seconds)} seconds is too long a duration" if value is d else f"'{shown(value)}' is too long a duration")
        return d
    raise ValueProblem(f"unknown type '{type_}'")


def display(value, type_: str | None = None) -> str:
    """A value as a person reads it in a report."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.10g}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M") if value.second == 0 else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Duration):
        return format_duration(value)
    if isinstance(value, list):
        return ", ".join(display(v) for v in value)
    return str(value)


_EPOCH_ORD = dt.date(1970, 1, 1).toordinal()


def encode(value, type_: str):
    """The comparable form of a typed value, as rules and the engine compare it.

    Text compares case-insensitively (as Excel does), dates as day numbers, date-times
    as seconds, durations as seconds; all since 1970-01-01.
    """
    if value is None:
        return None
    if type_ == "text":
        return norm_text(value) if isinstance(value, str) else value
    if type_ == "number":
        return value
    if type_ == "duration":
        return value.seconds
    if type_ == "date":
        if isinstance(value, dt.datetime):
            value = value.date()
        return value.toordinal() - _EPOCH_ORD
    if type_ == "datetime":
        if not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        return (value.replace(tzinfo=None) - dt.datetime(1970, 1, 1)).total_seconds()
    return value


_UNIX = dt.datetime(1970, 1, 1)


def encoder(type_: str):
    """A fast `encode` for one type, for whole columns of already-typed values."""
    if type_ == "text":
        return lambda v: v.strip().casefold() if isinstance(v, str) else v
    if type_ == "duration":
        return lambda v: v.seconds
    if type_ == "date":
        return lambda v: v.toordinal() - _EPOCH_ORD
    if type_ == "datetime":
        return lambda v: (v - _UNIX).total_seconds() if type(v) is dt.datetime else encode(v, "datetime")
    return lambda v: v


def coercer(type_: str, dayfirst: bool = False, tz: str | None = None):
    """A fast `coerce` for one type: values already of the type skip the general path.

    Text is returned unchecked for lone surrogates: the caller checks a whole column at once.
    """
    slow = lambda v: coerce(v, type_, dayfirst, tz)  # noqa: E731
    if type_ == "number":
        def number(v):
            t = type(v)
            if t is int or (t is float and v - v == 0):  # not NaN or ±inf
                return v
            return slow(v)
        return number
    if type_ == "text":
        def text(v):
            if type(v) is str:
                s = v.strip()
                if s and s[0] != "#":
                    return s
            return slow(v)
        return text
    if type_ == "date":
        def date(v):
            t = type(v)
            if t is dt.date:
                return v
            if t is dt.datetime and v.tzinfo is None:  # Excel hands dates over as date-times
                return v.date()
            return slow(v)
        return date
    if type_ == "datetime":
        return lambda v: v if type(v) is dt.datetime and v.tzinfo is None else slow(v)
    return slow


def norm_text(s: str) -> str:
    """Text as compared: Excel compares text case-insensitively, and so do rules."""
    return s.strip().casefold()


def norm_header(s) -> str:
    """A column header as matched: case, spaces and underscores ignored."""
    return re.sub(r"[\s_]+", "", str(s)).casefold()
