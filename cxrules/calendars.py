"""Working calendars: which moments are working time, and duration arithmetic over them.

A calendar has a time zone, daily working hours (wall clock, possibly several
intervals for a lunch break), working weekdays, optional public holidays of a
country (for CN also the make-up working days on weekends, 调休) and lists of extra
holidays / extra working days.

Internally every moment is an integer count of microseconds since 1970-01-01 UTC
("abs"), so working time is real elapsed time even across a DST change; wall-clock
times are converted through per-year tables that are built once and cached.
"""
from __future__ import annotations

import datetime as dt
import difflib
import operator
import re
from bisect import bisect_left, bisect_right, insort
from functools import cached_property, lru_cache
from itertools import repeat
from zoneinfo import ZoneInfo, available_timezones

from .problems import Problem, did_you_mean
from .values import Duration

KEYS = ("timezone", "hours", "workdays", "holidays", "extra_holidays", "extra_workdays")

US = 1_000_000  # microseconds per second
DAY_US = 86_400 * US
_ONE_US = dt.timedelta(microseconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MAX_EMPTY_YEARS = 5  # searching further than this for working time means there is none
_MAX_ORD = dt.date.max.toordinal()
_SLOW = object()  # a fast path's "not my case": use the general path
_SPAN_DAYS = _MAX_ORD  # calendar days in the years 1-9999: no amount longer has an answer
_FAR, _FAR_US = 36_500, 36_500 * DAY_US  # amounts up to a century need no reach check


def _within_reach(start, n: int, T: int) -> None:
    """OverflowError now for an amount that cannot end in the years 1-9999 from `start`, rather
    than after loading every year up to 9999 (seconds each): a day holds at most one working day."""
    o = start.toordinal()
    ahead, behind = _MAX_ORD - o + 1, o
    if n > ahead or -n > behind or T > ahead * DAY_US or -T > behind * DAY_US:
        raise OverflowError("date value out of range")


_UNIX = dt.datetime(1970, 1, 1)
_UNIX_ORD = _UNIX.toordinal()
_US = dt.timedelta(microseconds=1)


class CalendarProblem(ValueError):
    """One problem in a calendar definition, tied to the YAML key it belongs to."""

    def __init__(self, key: str, message: str, suggestion: str | None = None):
        super().__init__(message)
        self.key = key
        self.message = message
        self.suggestion = suggestion

    def __str__(self) -> str:
        return f"{self.message} ({self.suggestion})" if self.suggestion else self.message

    def __repr__(self) -> str:
        return f"CalendarProblem({self.key!r}, {self.message!r}, {self.suggestion!r})"

    def as_problem(self, **where) -> Problem:
        return Problem(self.message, code="calendar", suggestion=self.suggestion, **where)


class NoWorkingTime(ValueError):
    """A calendar search ran through years without finding any working time."""


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

_DAY_ABBR = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {n: i for names in (_DAY_ABBR, _DAY_FULL) for i, n in enumerate(names)}
_DAY_INDEX.update({"tues": 1, "wednes": 2, "thur": 3, "thurs": 3})
for _i, _c in enumerate("一二三四五六日"):
    for _p in ("周", "星期", "礼拜"):
        _DAY_INDEX[_p + _c] = _i
for _p in ("星期", "礼拜"):
    _DAY_INDEX[_p + "天"] = 6
_DAY_RANGE = re.compile(r"^\s*(\S+?)\s*(?:-|–|~|～|\.\.|至|到)\s*(\S+)\s*$")

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*(?:-|–|~|～|至|到)\s*(\d{1,2}):(\d{2})\s*$")
_DATE = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\s*$|^\s*(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?\s*$")
_UTC_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?00)?$", re.I)
_TZ_ALIASES = {
    "beijing": "Asia/Shanghai", "china": "Asia/Shanghai", "cst": "Asia/Shanghai", "北京": "Asia/Shanghai",
    "中国": "Asia/Shanghai", "北京时间": "Asia/Shanghai", "shanghai": "Asia/Shanghai", "hong kong": "Asia/Hong_Kong",
    "taipei": "Asia/Taipei", "tokyo": "Asia/Tokyo", "singapore": "Asia/Singapore", "london": "Europe/London",
    "berlin": "Europe/Berlin", "paris": "Europe/Paris", "new york": "America/New_York", "est": "America/New_York",
    "pst": "America/Los_Angeles", "cet": "Europe/Berlin", "z": "UTC",
}


@lru_cache(maxsize=None)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def _tz_suggestion(name: str) -> str | None:
    key = name.strip().lower().replace("_", " ")
    if key in _TZ_ALIASES:
        return f"did you mean '{_TZ_ALIASES[key]}'?"
    m = _UTC_OFFSET.match(name.strip())
    if m:
        hours = int(m.group(2))
        if hours == 0:
            return "did you mean 'UTC'?"
        # Etc/GMT zones have the POSIX sign: UTC+8 is Etc/GMT-8.
        return f"did you mean 'Etc/GMT{'-' if m.group(1) == '+' else '+'}{hours}'?"
    zones = _zones()
    hit = did_you_mean(name, zones)
    if hit:
        return hit
    # A bare city name ('Shangai') against the city part of each zone.
    cities = {z.rsplit("/", 1)[-1]: z for z in sorted(zones) if "/" in z}
    hit = did_you_mean(name.strip().replace(" ", "_"), cities)
    if hit:
        city = hit.split("'")[1]
        return f"did you mean '{cities[city]}'?"
    return "write a zone like 'Asia/Shanghai' or 'UTC'"


def _parse_clock(h: str, m: str, allow_24: bool) -> int | None:
    hh, mm = int(h), int(m)
    if allow_24 and hh == 24 and mm == 0:
        return 86_400
    if hh > 23 or mm > 59:
        return None
    return hh * 3600 + mm * 60


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [p for p in (s.strip() for s in value.split(",")) if p]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def _parse_hours(name: str, value, problems: list) -> list[tuple[int, int]]:
    if not isinstance(value, (str, list, tuple)):
        problems.append(CalendarProblem("hours", f"calendar '{name}': hours must be a list like [\"09:00-12:00\", \"13:30-18:00\"]"))
        return []
    items = _as_list(value)
    if not items:
        problems.append(CalendarProblem("hours", f"calendar '{name}': hours is empty, so there is no working time", "write e.g. [\"09:00-18:00\"]"))
        return []
    out: list[tuple[int, int, str]] = []
    for item in items:
        text = str(item).strip()
        m = _HOURS.match(text) if isinstance(item, str) else None
        if not m:
            problems.append(CalendarProblem("hours", f"calendar '{name}': working hours '{text}' are not like 09:00-18:00", "write start and end as HH:MM-HH:MM, in quotes"))
            continue
        start = _parse_clock(m.group(1), m.group(2), allow_24=False)
        end = _parse_clock(m.group(3), m.group(4), allow_24=True)
        if start is None or end is None:
            bad = f"{m.group(1)}:{m.group(2)}" if start is None else f"{m.group(3)}:{m.group(4)}"
            problems.append(CalendarProblem("hours", f"calendar '{name}': '{bad}' in working hours '{text}' is not a time of day", "hours go from 00:00 to 23:59; 24:00 may end the day"))
            continue
        if end <= start:
            problems.append(CalendarProblem("hours", f"calendar '{name}': working hours '{text}' end before they start", "for hours past midnight write two intervals, e.g. '22:00-24:00' and '00:00-06:00'"))
            continue
        out.append((start, end, text))
    good: list[tuple[int, int]] = []
    for (s0, e0, t0), (s1, e1, t1) in zip(out, out[1:]):
        if s1 < e0 and s0 < e1:
            problems.append(CalendarProblem("hours", f"calendar '{name}': working hours '{t0}' and '{t1}' overlap", "merge them into one interval"))
        elif s1 < s0:
            order = ", ".join(f"'{t}'" for _, _, t in sorted(out))
            problems.append(CalendarProblem("hours", f"calendar '{name}': working hours '{t1}' come before '{t0}'", f"list them in order: {order}"))
    for s, e, _ in sorted(out):
        if good and s <= good[-1][1]:  # touching intervals are one interval
            good[-1] = (good[-1][0], max(e, good[-1][1]))
        else:
            good.append((s, e))
    return good


def _day_of_week(text: str) -> int | None:
    return _DAY_INDEX.get(text.strip().lower())


def _parse_workdays(name: str, value, problems: list) -> frozenset[int]:
    items = _as_list(value)
    if not items:
        problems.append(CalendarProblem("workdays", f"calendar '{name}': workdays is empty, so there is no working time", "write e.g. [mon, tue, wed, thu, fri]"))
        return frozenset()
    days: set[int] = set()
    for item in items:
        text = str(item).strip()
        d = _day_of_week(text)
        if d is not None:
            days.add(d)
            continue
        m = _DAY_RANGE.match(text)
        if m and _day_of_week(m.group(1)) is not None and _day_of_week(m.group(2)) is not None:
            a, b = _day_of_week(m.group(1)), _day_of_week(m.group(2))
            days.update((a + k) % 7 for k in range((b - a) % 7 + 1))
            continue
        close = difflib.get_close_matches(text.lower(), _DAY_ABBR + _DAY_FULL, n=1, cutoff=0.7)
        hint = f"did you mean '{close[0]}'?" if close else "write mon, tue, wed, thu, fri, sat or sun"
        problems.append(CalendarProblem("workdays", f"calendar '{name}': '{text}' is not a day of the week", hint))
    return frozenset(days)


class _Countries:
    """holidays.list_supported_countries(), read lazily: its codes come from the registry, and
    a country's module (for its regions) is imported only when asked for; importing every
    country's module takes longer than the rest of a run at 10k rows."""

    @cached_property
    def codes(self) -> list[str]:
        from . import holiday_cache

        def compute():
            from holidays.registry import EntityLoader

            return EntityLoader.get_country_codes(True)

        return holiday_cache.names("codes", compute)

    def __contains__(self, code) -> bool:
        return code in set(self.codes)

    def __iter__(self):
        return iter(self.codes)

    def __getitem__(self, code: str) -> list[str]:
        from . import holiday_cache

        def compute():
            import holidays

            return getattr(holidays, code).subdivisions

        return holiday_cache.names(f"regions|{code}", compute)


@lru_cache(maxsize=None)
def _countries() -> _Countries:
    return _Countries()


def _country_suggestion(code: str) -> str | None:
    from holidays import registry

    key = re.sub(r"[\s_]+", "", code).lower()
    for module, (cls, alpha2, alpha3, *_) in registry.COUNTRIES.items():
        if key in (module.replace("_", ""), cls.lower(), alpha3.lower()):
            return f"did you mean '{alpha2}'?"
    return did_you_mean(code.upper(), _countries().codes) or "use a two-letter country code such as CN, HK, US or DE"


def _parse_holidays(name: str, value, problems: list) -> tuple[str, str | None] | None:
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("", "none", "no")):
        return None
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        problems.append(CalendarProblem("holidays", f"calendar '{name}': holidays must be one country code, such as CN", "put further days off in extra_holidays"))
        return None
    text = value.strip()
    code, _, sub = text.partition("-")
    code = code.strip().upper()
    countries = _countries()
    if code not in countries:
        problems.append(CalendarProblem("holidays", f"calendar '{name}': no public holidays are known for '{text}'", _country_suggestion(text)))
        return None
    if not sub:
        return code, None
    subs = {s.lower(): s for s in countries[code]}
    if sub.strip().lower() not in subs:
        hint = did_you_mean(sub.strip(), countries[code])
        hint = hint.replace("'", f"'{code}-", 1) if hint else (f"'{code}' has no regions" if not subs else f"regions of {code}: " + ", ".join(countries[code][:12]))
        problems.append(CalendarProblem("holidays", f"calendar '{name}': '{sub.strip()}' is not a region of {code}", hint))
        return None
    return code, subs[sub.strip().lower()]


def _one_date(item) -> dt.date | None:
    if isinstance(item, dt.datetime):
        return item.date()
    if isinstance(item, dt.date):
        return item
    m = _DATE.match(str(item))
    if not m:
        return None
    y, mo, d = (int(x) for x in (m.group(1, 2, 3) if m.group(1) else m.group(4, 5, 6)))
    try:
        return dt.date(y, mo, d)
    except ValueError:
        return None


def _parse_dates(name: str, key: str, value, problems: list) -> frozenset[dt.date]:
    out: set[dt.date] = set()
    for item in _as_list(value):
        d = _one_date(item)
        if d is not None:
            out.add(d)
            continue
        # 'A..B' is a run of days, e.g. a company shutdown week.
        parts = str(item).split("..")
        if len(parts) == 2:
            a, b = _one_date(parts[0]), _one_date(parts[1])
            if a and b and a <= b:
                out.update(a + dt.timedelta(days=k) for k in range((b - a).days + 1))
                continue
            if a and b:
                problems.append(CalendarProblem(key, f"calendar '{name}': in {key}, '{item}' ends before it starts", f"write it as '{b}..{a}'"))
                continue
        problems.append(CalendarProblem(key, f"calendar '{name}': '{item}' in {key} is not a date", "write it like 2026-10-08, or 2026-10-01..2026-10-07 for a run of days"))
    return frozenset(out)


def parse_calendar(name: str, raw: dict | None) -> tuple["Calendar | None", list[CalendarProblem]]:
    """A Calendar from one YAML mapping, or None and every problem found in it."""
    problems: list[CalendarProblem] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(CalendarProblem(name, f"calendar '{name}' must be a mapping of settings ({', '.join(KEYS)})"))
        return None, problems
    for key in raw:
        if key not in KEYS:
            hint = did_you_mean(str(key), KEYS) or f"the settings are {', '.join(KEYS)}"
            problems.append(CalendarProblem(str(key), f"calendar '{name}': unknown setting '{key}'", hint))

    tz_name = raw.get("timezone", "UTC")
    if not isinstance(tz_name, str) or tz_name.strip() not in _zones():
        problems.append(CalendarProblem("timezone", f"calendar '{name}': unknown time zone '{tz_name}'", _tz_suggestion(str(tz_name))))
    else:
        tz_name = tz_name.strip()

    hours = _parse_hours(name, raw.get("hours", ["00:00-24:00"]), problems)
    workdays = _parse_workdays(name, raw.get("workdays", list(_DAY_ABBR)), problems)
    country = _parse_holidays(name, raw.get("holidays"), problems)
    extra_h = _parse_dates(name, "extra_holidays", raw.get("extra_holidays"), problems)
    extra_w = _parse_dates(name, "extra_workdays", raw.get("extra_workdays"), problems)
    both = sorted(extra_h & extra_w)
    if both:
        problems.append(CalendarProblem("extra_workdays", f"calendar '{name}': {', '.join(map(str, both))} is both an extra holiday and an extra workday", "keep it in one list"))
    if problems:
        return None, problems
    return Calendar(name, tz_name, hours, workdays, country, extra_h, extra_w), []


# ---------------------------------------------------------------------------
# Holidays
# ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _country_year(code: str, subdiv: str | None, year: int) -> tuple[frozenset, frozenset]:
    """(days off, make-up working days) of one country in one year (kept between runs by
    holiday_cache: the holidays package costs more to import than the year to compute)."""
    from . import holiday_cache

    got = holiday_cache.get(code, subdiv, year)
    if got is not None:
        return got
    import holidays

    h = holidays.country_holidays(code, subdiv=subdiv, years=year)
    # `weekend_workdays` holds the 调休 make-up days: this year's are added when the
    # year is populated, cross-year ones (e.g. a Dec 29 for next year's New Year) on init.
    got = frozenset(h.keys()), frozenset(d for d in h.weekend_workdays if d.year == year)
    holiday_cache.put(code, subdiv, year, got)
    return got


# ---------------------------------------------------------------------------
# Calendar
# ---------------------------------------------------------------------------


class _Year:
    """One calendar year of precomputed days, indexed by ordinal - o0."""

    __slots__ = ("o0", "n", "base", "shift", "ivs", "cum", "wd", "working", "fixed")

    def __init__(self, cal: "Calendar", year: int):
        o0 = dt.date(year, 1, 1).toordinal()
        n = dt.date(year + 1, 1, 1).toordinal() - o0 if year < 9999 else 365
        self.o0, self.n = o0, n
        base = [cal._zone_abs(o0 + i, 0) for i in range(n)]
        base.append(cal._zone_abs(o0 + n, 0) if year < 9999 else base[-1] + DAY_US)
        shift = [base[i + 1] - base[i] != DAY_US for i in range(n)]
        off, makeup = _country_year(*cal.country, year) if cal.country else ((), ())
        ivs, working, cum, wd = [], [], [0], []
        total = 0
        for i in range(n):
            o = o0 + i
            d = dt.date.fromordinal(o)
            if d in cal.extra_workdays:
                w = True
            elif d in cal.extra_holidays:
                w = False
            elif d in makeup:
                w = True
            else:
                w = d.weekday() in cal.workdays and d not in off
            day: list[tuple[int, int]] = []
            if w:
                b = base[i]
                if not shift[i]:
                    day = [(b + s, b + e) for s, e in cal.hours_us]
                else:
                    last = None
                    for s, e in cal.hours_us:
                        a, z = cal._zone_abs(o, s), cal._zone_abs(o, e)
                        if last is not None and a < last:  # wall times in a DST gap can overlap
                            a = last
                        if z > a:
                            day.append((a, z))
                            last = z
            span = sum(z - a for a, z in day)
            total += span
            cum.append(total)
            if span:
                wd.append(o)
            ivs.append(tuple(day))
            working.append(w)
        self.base, self.shift, self.ivs, self.cum, self.wd, self.working = base, shift, ivs, cum, wd, working
        self.fixed = not any(shift)


class Calendar:
    """A working calendar. Build one with parse_calendar().

    add(start, amount):
      * Everyday calendar (open 00:00-24:00 every day, no holidays): weeks and days
        are calendar days (same wall-clock time), the h/m/s part is real elapsed time,
        so across a DST change 24h is not always the same wall-clock time next day.
        A date plus whole days is a date.
      * Business calendar: a start outside working time first moves to the next
        working moment; each week counts len(workdays) working days; days count
        working days (same wall-clock time on the Nth next working day, moved forward
        if that is not working time); then h/m/s count working time only (real
        elapsed time, across lunch breaks, nights, weekends and holidays). Working
        time ends exactly at closing: 17:00 + 1h is 18:00 the same day.
        A date start is the start of that day; a date plus whole days is the date of
        the Nth working day after the first working day on or after it.
      * A fraction of a day is that fraction of one day's working hours (24h in an
        everyday calendar), counted as working time.
      * Negative amounts go backwards symmetrically (a start outside working time
        moves back to the previous closing time); a date minus N whole days is the
        Nth working day before it.
      * A zero amount moves a start to the next working moment.
    Results are naive datetimes, wall clock in the calendar's zone.
    """

    def __init__(self, name: str, timezone: str = "UTC", hours=((0, 86_400),), workdays=frozenset(range(7)),
                 country: tuple[str, str | None] | None = None, extra_holidays=frozenset(), extra_workdays=frozenset()):
        self.name = name
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.hours = tuple((int(s), int(e)) for s, e in hours)  # seconds of the day
        self.hours_us = tuple((s * US, e * US) for s, e in self.hours)
        self.workdays = frozenset(workdays)  # 0 = Monday
        self.country = country
        self.holidays = None if country is None else (country[0] if not country[1] else f"{country[0]}-{country[1]}")
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)
        self.day_seconds = sum(e - s for s, e in self.hours)
        self.is_everyday = (self.hours == ((0, 86_400),) and len(self.workdays) == 7
                            and country is None and not self.extra_holidays)
        self._init_caches()

    def _init_caches(self) -> None:
        self._years: dict[int, _Year] = {}
        self._ymap: dict[int, _Year] = {}  # ordinal -> its loaded year
        self._shifts: list[int] = []  # sorted ordinals of loaded days that are not 24h long (DST)
        self._recs: dict[int, tuple] = {}  # ordinal -> _day_rec()
        self._pcache: dict[tuple, tuple[int, int]] = {}  # _parts() by the amount's value
        self._kernels: dict[bool, object] = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_years", "_ymap", "_shifts", "_recs", "_pcache", "_kernels"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_caches()

    def __repr__(self) -> str:
        return f"<Calendar {self.name!r} {self.timezone}{' everyday' if self.is_everyday else ''}>"

    @classmethod
    def everyday(cls, timezone: str = "UTC", name: str = "everyday") -> "Calendar":
        return cls(name, timezone)

    # -- conversions -------------------------------------------------------

    def _zone_abs(self, o: int, sod: int) -> int:
        """abs of wall-clock time `sod` µs into day `o` (fold=0 for gaps and repeats)."""
        local = dt.datetime.fromordinal(o) + dt.timedelta(microseconds=sod)
        return (local.replace(tzinfo=self.tz) - _EPOCH) // _ONE_US

    def _zone_local(self, x: int) -> dt.datetime:
        return (_EPOCH + dt.timedelta(microseconds=x)).astimezone(self.tz).replace(tzinfo=None)

    def _year(self, o: int) -> _Year:
        y = self._ymap.get(o)
        if y is None:
            y = self._load_year(dt.date.fromordinal(o).year)
        return y

    def _load_year(self, year: int) -> _Year:
        y = self._years.get(year)
        if y is None:
            y = self._years[year] = _Year(self, year)
            ymap = self._ymap
            for i in range(y.n):
                ymap[y.o0 + i] = y
            for i, s in enumerate(y.shift):
                if s:
                    insort(self._shifts, y.o0 + i)
        return y

    def _day_rec(self, o: int) -> tuple:
        """(kind, base, midnight, year, index, working days <= o in that year) of day o, cached.

        kind: 0 a 24h day without working time, 1 a 24h day with the calendar's
        hours (so its intervals are base + hours_us), 2 a day with a DST change.
        """
        r = self._recs.get(o)
        if r is None:
            y = self._year(o)
            i = o - y.o0
            kind = 2 if y.shift[i] else (1 if y.ivs[i] else 0)
            r = self._recs[o] = (kind, y.base[i], dt.datetime.fromordinal(o), y, i, bisect_right(y.wd, o))
        return r

    def _abs(self, o: int, sod: int) -> int:
        y = self._year(o)
        i = o - y.o0
        return y.base[i] + sod if not y.shift[i] else self._zone_abs(o, sod)

    def _local(self, o: int, x: int) -> dt.datetime:
        y = self._year(o)
        i = o - y.o0
        if not y.shift[i]:
            return dt.datetime.fromordinal(o) + dt.timedelta(microseconds=x - y.base[i])
        return self._zone_local(x)

    def _sod(self, o: int, x: int) -> int:
        """Wall-clock µs into day `o` of abs x (24:00 stays on day o)."""
        y = self._year(o)
        i = o - y.o0
        if not y.shift[i]:
            return x - y.base[i]
        return (self._zone_local(x) - dt.datetime.fromordinal(o)) // _ONE_US

    def _split(self, t) -> tuple[int, int]:
        if isinstance(t, dt.datetime):
            if t.tzinfo is not None:
                t = t.astimezone(self.tz)
            return t.toordinal(), ((t.hour * 60 + t.minute) * 60 + t.second) * US + t.microsecond
        if isinstance(t, dt.date):
            return t.toordinal(), 0
        raise TypeError(f"expected a date or datetime, got {type(t).__name__}")

    # -- day searches ------------------------------------------------------

    def _following(self, y: _Year) -> _Year:
        return self._year(y.o0 + y.n)

    def _preceding(self, y: _Year) -> _Year:
        return self._year(y.o0 - 1)

    def _nth_after(self, o: int, n: int) -> int:
        """The n-th (n >= 1) day after o with working time."""
        y = self._year(o)
        k = bisect_right(y.wd, o)
        if n <= len(y.wd) - k:
            return y.wd[k + n - 1]
        n -= len(y.wd) - k
        for _ in range(1_000_000):
            y = self._following(y)
            if n <= len(y.wd):
                return y.wd[n - 1]
            n -= len(y.wd)
            if not y.wd and not self._has_work_within(y, forward=True):
                break
        raise NoWorkingTime(f"calendar '{self.name}' has no working time after {dt.date.fromordinal(o)}")

    def _nth_before(self, o: int, n: int) -> int:
        """The n-th (n >= 1) day before o with working time."""
        y = self._year(o)
        k = bisect_left(y.wd, o)
        if n <= k:
            return y.wd[k - n]
        n -= k
        for _ in range(1_000_000):
            y = self._preceding(y)
            if n <= len(y.wd):
                return y.wd[len(y.wd) - n]
            n -= len(y.wd)
            if not y.wd and not self._has_work_within(y, forward=False):
                break
        raise NoWorkingTime(f"calendar '{self.name}' has no working time before {dt.date.fromordinal(o)}")

    def _has_work_within(self, y: _Year, forward: bool) -> bool:
        """Whether any of the next few years (from an empty one) has working time."""
        for _ in range(_MAX_EMPTY_YEARS):
            y = self._following(y) if forward else self._preceding(y)
            if y.wd:
                return True
        return False

    def _next_wd(self, o: int) -> int:
        return self._nth_after(o, 1)

    def _prev_wd(self, o: int) -> int:
        return self._nth_before(o, 1)

    def _shift_days(self, o: int, x: int, n: int, forward: bool) -> tuple[int, int]:
        """Same wall-clock time n working days on, from the nearest working moment."""
        if forward:
            o, x = self._fwd(o, x, 0)
            sod = self._sod(o, x)
            o = self._nth_after(o, n)
            return self._fwd(o, self._abs(o, sod), 0)
        o, x = self._bwd(o, x, 0)
        sod = self._sod(o, x)
        o = self._nth_before(o, n)
        return self._bwd(o, self._abs(o, sod), 0)

    # -- moving through working time --------------------------------------

    def _fwd(self, o: int, x: int, T: int) -> tuple[int, int]:
        """Day and abs after T >= 0 µs of working time from abs x on day o."""
        y = self._year(o)
        i = o - y.o0
        for a, b in y.ivs[i]:
            if b <= x:
                continue
            s = a if a > x else x
            if T <= b - s:
                return o, s + T
            T -= b - s
        if T == 0:
            o = self._next_wd(o)
            y = self._year(o)
            return o, y.ivs[o - y.o0][0][0]
        i += 1
        while True:
            cum = y.cum
            target = cum[i] + T
            j = bisect_left(cum, target, i)
            if j <= y.n:
                k = j - 1
                rem = target - cum[k]
                for a, b in y.ivs[k]:
                    if rem <= b - a:
                        return y.o0 + k, a + rem
                    rem -= b - a
                return y.o0 + k, y.ivs[k][-1][1]  # unreachable but safe
            T -= cum[y.n] - cum[i]
            if not y.wd and not self._has_work_within(y, forward=True):
                raise NoWorkingTime(f"calendar '{self.name}' has no working time after {dt.date.fromordinal(o)}")
            y = self._following(y)
            i = 0

    def _bwd(self, o: int, x: int, T: int) -> tuple[int, int]:
        """Day and abs T >= 0 µs of working time before abs x on day o."""
        y = self._year(o)
        i = o - y.o0
        for a, b in reversed(y.ivs[i]):
            if a >= x:
                continue
            e = b if b < x else x
            if T <= e - a:
                return o, e - T
            T -= e - a
        if T == 0:
            o = self._prev_wd(o)
            y = self._year(o)
            return o, y.ivs[o - y.o0][-1][1]
        while True:
            cum = y.cum
            target = cum[i] - T
            k = bisect_right(cum, target, 0, i) - 1
            if k >= 0:
                rem = cum[k + 1] - target
                for a, b in reversed(y.ivs[k]):
                    if rem <= b - a:
                        return y.o0 + k, b - rem
                    rem -= b - a
                return y.o0 + k, y.ivs[k][0][0]  # unreachable but safe
            T -= cum[i]
            if not y.wd and not self._has_work_within(y, forward=False):
                raise NoWorkingTime(f"calendar '{self.name}' has no working time before {dt.date.fromordinal(o)}")
            y = self._preceding(y)
            i = y.n

    def _between(self, o1: int, o2: int) -> int:
        """Working µs in whole days o1 <= day < o2."""
        total = 0
        while o1 < o2:
            y = self._year(o1)
            end = min(o2, y.o0 + y.n)
            total += y.cum[end - y.o0] - y.cum[o1 - y.o0]
            o1 = end
        return total

    # -- public ------------------------------------------------------------

    def is_working_day(self, d: dt.date) -> bool:
        """A working weekday that is not a holiday, or a make-up / extra working day."""
        if isinstance(d, dt.datetime):
            d = d.date()
        o = d.toordinal()
        y = self._year(o)
        return y.working[o - y.o0]

    def is_working_time(self, t: dt.datetime) -> bool:
        o, sod = self._split(t)
        x = self._abs(o, sod)
        y = self._year(o)
        return any(a <= x < b for a, b in y.ivs[o - y.o0])

    def next_working_time(self, t) -> dt.datetime:
        """t itself if it is working time, else the next opening time."""
        o, sod = self._split(t)
        if self.is_everyday:
            return dt.datetime.fromordinal(o) + dt.timedelta(microseconds=sod)
        return self._local(*self._fwd(o, self._abs(o, sod), 0))

    def _parts(self, amount) -> tuple[int, int]:
        """(whole days, working µs) of a Duration in this calendar."""
        if isinstance(amount, dt.timedelta):
            return 0, amount // _ONE_US
        weeks, days, time = amount.weeks, amount.days, amount.time
        if not (weeks or days or time) and amount.seconds:
            time = amount.seconds  # built with Duration(seconds) only
        n = int(days)
        frac = days - n
        per_week = 7 if self.is_everyday else len(self.workdays)
        per_day = 86_400 if self.is_everyday else self.day_seconds
        n, T = weeks * per_week + n, round((time + frac * per_day) * US)
        if not (-_SPAN_DAYS <= n <= _SPAN_DAYS and -_SPAN_DAYS * DAY_US <= T <= _SPAN_DAYS * DAY_US):
            raise OverflowError("date value out of range")  # from any start: see _add_parts
        return n, T

    def _parts_of(self, amount) -> tuple[int, int]:
        """_parts(), cached by the amount's value and the types of its parts."""
        if isinstance(amount, dt.timedelta):
            return 0, amount // _ONE_US
        w, d, t, s = amount.weeks, amount.days, amount.time, amount.seconds
        key = (self.is_everyday, w, d, t, s, type(w), type(d), type(t), type(s))
        cache = self._pcache
        try:
            p = cache.get(key)
        except TypeError:  # an unhashable part
            return self._parts(amount)
        if p is None:
            p = self._parts(amount)
            if len(cache) >= 4096:
                cache.clear()
            cache[key] = p
        return p

    def add(self, start, amount: Duration):
        """start + amount in this calendar; see the class docstring for the rules."""
        n, T = self._parts_of(amount)
        if isinstance(start, dt.datetime) and start.tzinfo is not None:
            start = start.astimezone(self.tz).replace(tzinfo=None)
        if not (-_FAR < n < _FAR and -_FAR_US < T < _FAR_US) and isinstance(start, dt.date):
            _within_reach(start, n, T)
        t = type(start)
        if t is dt.datetime or t is dt.date:
            try:
                r = self._kernel()(start, n, T)
            except Exception:  # the general path gives the real answer or error
                r = _SLOW
            if r is not _SLOW:
                return r
        return self._add_parts(start, n, T)

    def add_many(self, starts, amounts) -> list:
        """[add(s, a) for s, a in zip(starts, amounts)], fast, and without stopping at errors.

        * Element i is None if starts[i] or amounts[i] is None.
        * Where add() would raise ValueError (e.g. NoWorkingTime) or OverflowError
          (a result past year 9999), element i is that exception instance, not raised:
          test with isinstance(r, Exception); str(r) is the message add() would give.
        * Other exceptions (TypeError for a start that is not a date, an amount that
          is not a Duration) are raised, as add() raises them.
        Every other element equals add()'s answer, with the same type (date or datetime).
        Amounts are usually a few Duration objects shared by many rows: each distinct
        object is taken apart once.
        """
        if not isinstance(amounts, (list, tuple)):
            amounts = list(amounts)  # keeps every amount alive: the parts cache is by id()
        if len(starts) != len(amounts):
            raise ValueError(f"add_many: {len(starts)} starts but {len(amounts)} amounts")
        bulk = self._everyday_bulk(starts, amounts) if self.is_everyday and len(starts) >= 64 else None
        if bulk is not None:
            return bulk
        pre = self._business_bulk(starts, amounts) if not self.is_everyday and len(starts) >= 64 else None
        kernel = self._kernel()
        general = self._add_parts
        parts_of = self._parts_of
        tz = self.tz
        datetime, date, slow = dt.datetime, dt.date, _SLOW
        by_id: dict[int, tuple[int, int]] = {}
        out = []
        append = out.append
        for start, amount, got in zip(starts, amounts, pre if pre is not None else repeat(slow)):
            if got is not slow:  # answered in bulk (None for a blank)
                append(got)
                continue
            if start is None or amount is None:
                append(None)
                continue
            try:
                p = by_id.get(id(amount))
                if p is None:
                    p = by_id[id(amount)] = parts_of(amount)
                n, T = p
                t = type(start)
                if t is datetime:
                    if start.tzinfo is not None:
                        start = start.astimezone(tz).replace(tzinfo=None)
                    try:
                        r = kernel(start, n, T)
                    except Exception:
                        r = slow
                elif t is date:
                    try:
                        r = kernel(start, n, T)
                    except Exception:
                        r = slow
                else:
                    if isinstance(start, datetime) and start.tzinfo is not None:
                        start = start.astimezone(tz).replace(tzinfo=None)
                    r = slow
                if r is slow:
                    r = general(start, n, T)
            except (ValueError, OverflowError) as e:
                r = e
            append(r)
        return out

    def _everyday_bulk(self, starts, amounts) -> list | None:
        """add_many round the clock, a column at a time with numpy; None wherever the per-row
        path could answer otherwise (aware or mixed starts, a date plus hours, a UTC offset
        change, the ends of time, an amount that is not a duration)."""
        kinds = set(map(type, starts)) - {type(None)}
        if len(kinds) != 1 or not kinds <= {dt.date, dt.datetime}:
            return None
        kind = kinds.pop()
        if kind is dt.datetime and any(s is not None and s.tzinfo is not None for s in starts):
            return None
        import numpy as np

        ids = dict(zip(map(id, amounts), amounts))  # a few Durations, shared by many rows
        parts: dict = {}
        try:
            for i, a in ids.items():
                parts[i] = (0, 0) if a is None else self._parts_of(a)
        except Exception:  # noqa: BLE001 - the per-row path says what is wrong, row by row
            return None
        if any(abs(x) > 4_000_000 or abs(y) > 1 << 62 for x, y in parts.values()):
            return None
        order = sorted(parts)
        at = np.searchsorted(np.array(order, dtype=np.uint64), np.fromiter(map(id, amounts), np.uint64, len(amounts)))
        n = np.array([parts[k][0] for k in order], dtype=np.int64)[at].astype("timedelta64[D]")
        T = np.array([parts[k][1] for k in order], dtype=np.int64)[at]
        blank = (np.fromiter(map(operator.is_, starts, repeat(None)), bool, len(starts))
                 | np.fromiter(map(operator.is_, amounts, repeat(None)), bool, len(amounts)))
        live = ~blank
        keep = blank.tolist()
        present = [x for x, b in zip(starts, keep) if not b]
        lo, hi = dt.date(1, 1, 4), dt.date(9999, 12, 28)  # away from the ends of time
        if kind is dt.date:
            if T.any():
                return None
            days = np.zeros(len(starts), dtype=np.int64)
            days[live] = np.fromiter(map(dt.date.toordinal, present), np.int64, len(present))
            r = days + n.astype(np.int64)
            if live.any() and (r[live].min() < lo.toordinal() or r[live].max() > hi.toordinal()):
                return None
            out = list(map(dt.date.fromordinal, np.where(live, r, 1).tolist()))
        else:
            us = np.zeros(len(starts), dtype=np.int64)
            us[live] = np.fromiter(map(operator.floordiv, map(operator.sub, present, repeat(_UNIX)), repeat(_US)), np.int64, len(present))
            t = us + n.astype(np.int64) * 86_400_000_000
            r = t + T
            first, last = (_UNIX_ORD - lo.toordinal()) * -86_400_000_000, (hi.toordinal() - _UNIX_ORD) * 86_400_000_000
            if live.any() and (min(t[live].min(), r[live].min()) < first or max(t[live].max(), r[live].max()) > last):
                return None
            busy = live & (T != 0)
            y1 = t[busy].astype("datetime64[us]").astype("datetime64[Y]").astype(np.int64) + 1970
            y2 = r[busy].astype("datetime64[us]").astype("datetime64[Y]").astype(np.int64) + 1970
            for a, b in set(zip(y1.tolist(), y2.tolist())):
                if not self._fixed_between(a, b):
                    return None
            out = list(map(operator.add, repeat(_UNIX), map(dt.timedelta, repeat(0), repeat(0), np.where(live, r, 0).tolist())))
        for i in np.flatnonzero(blank).tolist():
            out[i] = None
        return out

    def _business_bulk(self, starts, amounts) -> list | None:
        """add_many for naive date-times in a business calendar, a column at a time with numpy:
        the business kernel's steps (to the next working moment, n working days on, then T of
        working time through the day's hours) for every row at once, Python only once per
        distinct day. A list with each row's answer, None for a blank, and _SLOW for the rows
        the per-row path answers (a day with a DST change, negative amounts, the ends of time,
        an amount that is not a duration); None when no row is for this path."""
        H = self.hours_us
        D = sum(e - s for s, e in H)
        if not H or D <= 0 or set(map(type, starts)) - {dt.datetime, type(None)}:
            return None
        if any(s is not None and s.tzinfo is not None for s in starts):
            return None
        import numpy as np

        rows = len(starts)
        parts: dict = {}
        for a in dict(zip(map(id, amounts), amounts)).values():
            try:
                p = (0, 0) if a is None else self._parts_of(a)
            except Exception:  # noqa: BLE001 - the per-row path says what is wrong
                p = (-1, -1)
            parts[id(a)] = p if type(p[0]) is int and type(p[1]) is int else (-1, -1)
        order = sorted(parts)
        at = np.searchsorted(np.array(order, dtype=np.uint64), np.fromiter(map(id, amounts), np.uint64, rows))
        n = np.array([parts[k][0] for k in order], dtype=object)[at]
        T = np.array([parts[k][1] for k in order], dtype=object)[at]
        blank = (np.fromiter(map(operator.is_, starts, repeat(None)), bool, rows)
                 | np.fromiter(map(operator.is_, amounts, repeat(None)), bool, rows))
        big = D << 22  # days to count stay below 2**23 (see per_day)
        ok = ~blank & (n >= 0).astype(bool) & (T >= 0).astype(bool) & ((n > 0) | (T > 0)).astype(bool)
        ok &= (n < 4_000_000).astype(bool) & (T < big).astype(bool)
        idx = np.flatnonzero(ok)
        out: list = [_SLOW] * rows
        for i in np.flatnonzero(blank).tolist():
            out[i] = None
        if not len(idx):
            return out
        n, T = n[idx].astype(np.int64), T[idx].astype(np.int64)
        present = [starts[i] for i in idx.tolist()]
        us = np.fromiter(map(operator.floordiv, map(operator.sub, present, repeat(_UNIX)), repeat(_US)), np.int64, len(present))
        o = us // DAY_US + _UNIX_ORD
        sod = us - (o - _UNIX_ORD) * DAY_US
        good = np.ones(len(idx), dtype=bool)
        recs, day_rec, nth_after, shifts = self._recs, self._day_rec, self._nth_after, self._shifts
        s_h = np.array([a for a, _ in H], dtype=np.int64)
        e_h = np.array([b for _, b in H], dtype=np.int64)

        def per_day(keys, f):
            """f(*key) once per distinct key (rows of int arrays); -1 where it cannot answer."""
            key = keys[0] if len(keys) == 1 else keys[0] * (1 << 23) + keys[1]  # ordinals and counts < 2**23
            uniq, inv = np.unique(key, return_inverse=True)
            got = []
            for k in uniq.tolist():
                try:
                    got.append(f(k) if len(keys) == 1 else f(*divmod(k, 1 << 23)))
                except Exception:  # noqa: BLE001 - the per-row path gives the answer or error
                    got.append(-1)
            return np.array(got, dtype=np.int64)[inv.reshape(-1)]

        def rec(x):
            return recs.get(x) or day_rec(x)

        def next_wd(x, k):  # the k-th day with working time after day x (the kernel's lookup)
            r = rec(x)
            wd, j = r[3].wd, r[5] + k - 1
            return wd[j] if j < len(wd) else nth_after(x, k)

        kind = per_day([o], lambda x: rec(x)[0])
        good &= (kind == 0) | (kind == 1)
        # n working days on: from the next working moment, the same clock time
        move = good & (n > 0)
        if move.any():
            open_after = sod[:, None] < e_h[None, :]  # hours that close after the start's clock time
            has = open_after.any(axis=1) & (kind == 1)
            first = np.argmax(open_after, axis=1)
            snapped = np.maximum(s_h[first], sod)
            off = move & ~has  # a day without work, or after closing: the next working day's opening
            o1 = o.copy()
            if off.any():
                o1[off] = per_day([o[off]], lambda x: next_wd(x, 1))
                good[off] &= o1[off] >= 0
            sod = np.where(move, np.where(has, snapped, H[0][0]), sod)
            k1 = per_day([o1[off]], lambda x: rec(x)[0]) if off.any() else None
            if k1 is not None:
                good[off] &= k1 == 1
            m = move & good
            o2 = o.copy()
            if m.any():
                o2[m] = per_day([o1[m], n[m]], next_wd)
                good[m] &= o2[m] >= 0
            m &= good
            k2 = np.zeros(len(o), dtype=np.int64)
            if m.any():
                k2[m] = per_day([o2[m]], lambda x: rec(x)[0])
            good &= ~move | (k2 == 1)
            o = np.where(move, o2, o)
            kind = np.where(move, 1, kind)
        # T of working time: first through what is left of the day, then whole days of D
        avail = np.where(kind[:, None] == 1, np.clip(e_h[None, :] - np.maximum(s_h[None, :], sod[:, None]), 0, None), 0)
        cum = np.cumsum(avail, axis=1)
        today = good & (T > 0) & (cum[:, -1] >= T)
        seg = np.argmax(cum >= T[:, None], axis=1)
        before = np.take_along_axis(cum, seg[:, None], axis=1)[:, 0] - np.take_along_axis(avail, seg[:, None], axis=1)[:, 0]
        end_o, end_sod = o.copy(), sod.copy()
        end_sod[today] = (np.maximum(s_h[seg], sod) + T - before)[today]
        later = good & (T > 0) & ~today
        if later.any():
            rest = T - cum[:, -1]
            k = -(-rest // D)
            o3 = np.full(len(o), -1, dtype=np.int64)

            def on(x, kk):
                y = next_wd(x, kk)
                i = bisect_right(shifts, x)
                if i < len(shifts) and shifts[i] <= y:  # a DST change on the way
                    return -1
                return y if rec(y)[0] == 1 else -1

            o3[later] = per_day([o[later], k[later]], on)
            good &= ~later | (o3 >= 0)
            left = rest - (k - 1) * D
            full = np.cumsum(e_h - s_h)
            seg2 = np.minimum(np.searchsorted(full, left, side="left"), len(full) - 1)
            end_o = np.where(later, o3, end_o)
            end_sod = np.where(later, s_h[seg2] + left - (full[seg2] - (e_h - s_h)[seg2]), end_sod)
        good &= end_o < _MAX_ORD - 1  # answers within datetime's years
        done = np.flatnonzero(good)
        if len(done):
            t = ((end_o[done] - _UNIX_ORD) * DAY_US + end_sod[done]).astype("datetime64[us]").tolist()
            for i, v in zip(idx[done].tolist(), t):
                out[i] = v
        return out

    def _add_parts(self, start, n: int, T: int):
        """add() of (whole days, working µs), by the general path; aware starts already converted."""
        is_date = not isinstance(start, dt.datetime)
        if isinstance(start, dt.date):  # anything else is the TypeError below
            _within_reach(start, n, T)
        if self.is_everyday:
            return self._add_everyday(start, n, T, is_date)
        o, sod = self._split(start)
        if is_date and T == 0:
            if n >= 0:
                y = self._year(o)
                first = o if y.ivs[o - y.o0] else self._next_wd(o)
                return dt.date.fromordinal(self._nth_after(first, n) if n else first)
            return dt.date.fromordinal(self._nth_before(o, -n))
        x = self._abs(o, sod)
        if n > 0:
            o, x = self._shift_days(o, x, n, forward=True)
        elif n < 0:
            o, x = self._shift_days(o, x, -n, forward=False)
        if T > 0 or (T == 0 and n == 0):
            o, x = self._fwd(o, x, T)
        elif T < 0:
            o, x = self._bwd(o, x, -T)
        return self._local(o, x)

    # -- fast paths ----------------------------------------------------------
    #
    # A kernel takes a naive datetime or a date (exact types), whole days n and
    # working µs T, and returns add()'s answer, or _SLOW when the case is not one it
    # knows to be exact (a day with a DST change on the way, negative amounts in a
    # business calendar, ...); then the general path answers. A kernel that raises
    # also hands over to the general path, which gives the real answer or error.

    def _kernel(self):
        every = self.is_everyday  # read each time: tests switch it off to force the general path
        k = self._kernels.get(every)
        if k is None:
            k = self._kernels[every] = self._everyday_kernel() if every else self._business_kernel()
        return k

    def _everyday_kernel(self):
        datetime, date, timedelta = dt.datetime, dt.date, dt.timedelta
        shifts = self._shifts
        fixed_years: dict[tuple[int, int], bool] = {}
        day_td: dict[int, dt.timedelta] = {}
        us_td: dict[int, dt.timedelta] = {}
        cal = self

        def fixed(y1: int, y2: int) -> bool:
            f = cal._fixed_between(y1, y2)
            if not f and -2 <= y2 - y1 <= 2:
                for year in range(min(y1, y2), max(y1, y2) + 1):
                    cal._load_year(year)  # so that _shifts covers the span
            fixed_years[y1, y2] = f
            return f

        def add1(start, n, T):
            if type(start) is date:
                if T == 0:
                    if not n:
                        return start
                    d = day_td.get(n)
                    if d is None:
                        d = day_td[n] = timedelta(days=n)
                    return start + d
                start = datetime(start.year, start.month, start.day)
            if n:
                d = day_td.get(n)
                if d is None:
                    d = day_td[n] = timedelta(days=n)
                t = start + d
            else:
                t = start
            if T == 0:
                return t
            d = us_td.get(T)
            if d is None:
                d = us_td[T] = timedelta(microseconds=T)
            guess = t + d
            y1, y2 = t.year, guess.year
            f = fixed_years.get((y1, y2))
            if f is None:
                f = fixed(y1, y2)
            if f:
                return guess
            if -2 <= y2 - y1 <= 2:
                # No DST change on the days from t to guess: one UTC offset, so the
                # wall clock moves by exactly the elapsed time. (Not within 2 days of
                # the ends of time, where the general path's UTC instant overflows.)
                o1, o2 = t.toordinal(), guess.toordinal()
                if o1 > o2:
                    o1, o2 = o2, o1
                if o1 <= 2 or o2 >= _MAX_ORD - 2:
                    return _SLOW
                i = bisect_left(shifts, o1)
                if i == len(shifts) or shifts[i] > o2:
                    return guess
            return _SLOW

        return add1

    def _business_kernel(self):
        datetime, timedelta = dt.datetime, dt.timedelta
        fromordinal = dt.date.fromordinal
        H = self.hours_us
        D = sum(e - s for s, e in H)
        if not H or D <= 0:
            return lambda start, n, T: _SLOW
        H0 = H[0][0]
        recs, day_rec, nth_after, shifts = self._recs, self._day_rec, self._nth_after, self._shifts
        sod_td: dict[int, dt.timedelta] = {}

        def at(r, sod):
            d = sod_td.get(sod)
            if d is None:
                if len(sod_td) >= 100_000:
                    sod_td.clear()
                d = sod_td[sod] = timedelta(microseconds=sod)
            return r[2] + d

        def add1(start, n, T):
            if n < 0 or T < 0:
                return _SLOW
            o = start.toordinal()
            r = recs.get(o) or day_rec(o)
            kind = r[0]
            if kind == 2:
                return _SLOW
            if type(start) is datetime:
                sod = ((start.hour * 60 + start.minute) * 60 + start.second) * US + start.microsecond
            elif T == 0:  # a date plus whole working days is a date
                if not kind:
                    wd, j = r[3].wd, r[5]
                    o = wd[j] if j < len(wd) else nth_after(o, 1)
                    if not n:
                        return fromordinal(o)
                    r = recs.get(o) or day_rec(o)
                elif not n:
                    return fromordinal(o)
                wd, j = r[3].wd, r[5] + n - 1
                return fromordinal(wd[j] if j < len(wd) else nth_after(o, n))
            else:
                sod = 0
            if n:
                # to the next working moment, then the same wall-clock time n working days on
                if kind:
                    for s, e in H:
                        if e > sod:
                            if s > sod:
                                sod = s
                            break
                    else:
                        kind = 0
                if not kind:
                    wd, j = r[3].wd, r[5]
                    o = wd[j] if j < len(wd) else nth_after(o, 1)
                    sod = H0
                    r = recs.get(o) or day_rec(o)
                    if r[0] != 1:
                        return _SLOW
                wd, j = r[3].wd, r[5] + n - 1
                o = wd[j] if j < len(wd) else nth_after(o, n)
                r = recs.get(o) or day_rec(o)
                if r[0] != 1:
                    return _SLOW
                if T == 0:
                    return at(r, sod)
                kind = 1
            # T of working time on from (o, sod)
            if kind:
                for s, e in H:
                    if e <= sod:
                        continue
                    if s > sod:
                        sod = s
                    if T <= e - sod:
                        return at(r, sod + T)
                    T -= e - sod
            wd, j = r[3].wd, r[5]
            if T == 0:  # a zero amount after the day's last closing: the next opening
                o = wd[j] if j < len(wd) else nth_after(o, 1)
                r = recs.get(o) or day_rec(o)
                return at(r, H0) if r[0] == 1 else _SLOW
            k = -(-T // D)  # every working day on the way holds D
            T -= (k - 1) * D
            j += k - 1
            o2 = wd[j] if j < len(wd) else nth_after(o, k)
            if shifts:
                i = bisect_right(shifts, o)
                if i < len(shifts) and shifts[i] <= o2:
                    return _SLOW
            r = recs.get(o2) or day_rec(o2)
            if r[0] != 1:
                return _SLOW
            for s, e in H:
                if T <= e - s:
                    return at(r, s + T)
                T -= e - s
            return _SLOW

        return add1

    def _add_everyday(self, start, n: int, T: int, is_date: bool):
        if is_date:
            if T == 0:
                return start + dt.timedelta(days=n) if n else start
            start = dt.datetime(start.year, start.month, start.day)
        t = start + dt.timedelta(days=n) if n else start
        if T == 0:
            return t
        guess = t + dt.timedelta(microseconds=T)
        if self._fixed_between(t.year, guess.year):
            return guess
        o, sod = self._split(t)
        return self._zone_local(self._abs(o, sod) + T)

    def _fixed_between(self, y1: int, y2: int) -> bool:
        """No UTC offset change in these years, so wall clock and elapsed time agree."""
        if y1 > y2:
            y1, y2 = y2, y1
        if y2 - y1 > 2:
            return False
        for year in range(y1, y2 + 1):
            y = self._years.get(year)
            if y is None:
                y = self._year(dt.date(year, 1, 1).toordinal())
            if not y.fixed:
                return False
        return True

    def elapsed(self, start, end) -> Duration:
        """Working time from start to end (negative if end is earlier); dates mean midnight."""
        o1, s1 = self._split(start)
        o2, s2 = self._split(end)
        if self.is_everyday:
            if self._fixed_between(start.year, end.year):
                us = (o2 - o1) * DAY_US + s2 - s1
            else:
                us = self._abs(o2, s2) - self._abs(o1, s1)
            return Duration.from_seconds(us / US)
        r1, r2 = self._day_rec(o1), self._day_rec(o2)
        if r1[0] != 2 and r2[0] != 2:
            # Both days are 24h long: working time before each moment since its New Year,
            # plus the whole years in between.
            y1, y2 = r1[3], r2[3]
            w1 = y1.cum[r1[4]] + (self._inday(s1) if r1[0] else 0)
            w2 = y2.cum[r2[4]] + (self._inday(s2) if r2[0] else 0)
            while y1.o0 < y2.o0:
                w2 += y1.cum[y1.n]
                y1 = self._following(y1)
            while y2.o0 < y1.o0:
                w1 += y2.cum[y2.n]
                y2 = self._following(y2)
            return Duration.from_seconds((w2 - w1) / US)
        return Duration.from_seconds(self._elapsed_seconds(start, end))

    def _inday(self, sod: int) -> int:
        """Working µs before wall-clock time sod on a 24h working day."""
        return sum((e if e < sod else sod) - s for s, e in self.hours_us if s < sod)

    def _elapsed_seconds(self, start, end) -> float:
        """elapsed() in seconds, by the general path."""
        o1, s1 = self._split(start)
        o2, s2 = self._split(end)
        if self.is_everyday:
            if self._fixed_between(start.year, end.year):
                us = (o2 - o1) * DAY_US + s2 - s1
            else:
                us = self._abs(o2, s2) - self._abs(o1, s1)
            return us / US
        x1, x2 = self._abs(o1, s1), self._abs(o2, s2)
        sign = 1
        if x2 < x1:
            o1, x1, o2, x2, sign = o2, x2, o1, x1, -1
        y = self._year(o1)
        ivs1 = y.ivs[o1 - y.o0]
        if o1 == o2:
            us = sum(max(0, min(b, x2) - max(a, x1)) for a, b in ivs1)
        else:
            us = sum(b - max(a, x1) for a, b in ivs1 if b > x1)
            y = self._year(o2)
            us += sum(min(b, x2) - a for a, b in y.ivs[o2 - y.o0] if a < x2)
            us += self._between(o1 + 1, o2)
        return sign * us / US

    def elapsed_many(self, starts, end, seconds: bool = False) -> list:
        """[elapsed(s, end) for s in starts], fast, and without stopping at errors.

        * Element i is None if starts[i] is None (all of them if end is None).
        * With seconds=True each element is elapsed(s, end).seconds (a float), and no
          Duration is built: cheaper when only the length is wanted.
        * Errors as in add_many(): a ValueError or OverflowError is returned in place
          of its element; other exceptions (a start that is not a date) are raised.
        """
        if end is None:
            return [None] * len(starts)
        try:
            one = self._elapsed_kernel(end)
        except Exception:  # e.g. an end the fast path cannot place: all by the general path
            one = None
        general = self._elapsed_seconds
        make = None if seconds else Duration.from_seconds
        slow = _SLOW
        out = []
        append = out.append
        for start in starts:
            if start is None:
                append(None)
                continue
            try:
                try:
                    us = one(start) if one is not None else slow
                except Exception:
                    us = slow
                secs = general(start, end) if us is slow else us / US
                append(secs if make is None else make(secs))
            except (ValueError, OverflowError) as e:
                append(e)
        return out

    def _elapsed_kernel(self, end):
        """A function start -> elapsed µs to `end` (or _SLOW), with what depends on end worked out once."""
        datetime, date = dt.datetime, dt.date
        o2, s2 = self._split(end)
        recs, day_rec = self._recs, self._day_rec
        if self.is_everyday:
            ey = end.year
            x2 = self._abs(o2, s2)
            fixed_from: dict[int, bool] = {}
            fixed_between = self._fixed_between

            def every1(start):
                t = type(start)
                if t is datetime:
                    if start.tzinfo is not None:
                        return _SLOW
                    s1 = ((start.hour * 60 + start.minute) * 60 + start.second) * US + start.microsecond
                elif t is date:
                    s1 = 0
                else:
                    return _SLOW
                o1 = start.toordinal()
                y1 = start.year
                f = fixed_from.get(y1)
                if f is None:
                    f = fixed_from[y1] = fixed_between(y1, ey)
                if f:
                    return (o2 - o1) * DAY_US + s2 - s1
                r = recs.get(o1) or day_rec(o1)
                if r[0] == 2:
                    return _SLOW
                return x2 - (r[1] + s1)

            return every1

        r2 = day_rec(o2)
        if r2[0] == 2:
            return None
        Y2 = r2[3]
        w2 = Y2.cum[r2[4]] + (self._inday(s2) if r2[0] else 0)
        offsets: dict[int, int] = {Y2.o0: 0}  # year's o0 -> working µs from its New Year to Y2's (signed)
        inday: dict[int, int] = {}
        H = self.hours_us
        cal = self

        def offset(y) -> int:
            total, z, sign = 0, y, -1
            if y.o0 > Y2.o0:
                z, sign = Y2, 1
            end_o0 = max(y.o0, Y2.o0)
            while z.o0 < end_o0:
                total += z.cum[z.n]
                z = cal._following(z)
            offsets[y.o0] = sign * total
            return sign * total

        def biz1(start):
            t = type(start)
            if t is datetime:
                if start.tzinfo is not None:
                    return _SLOW
                s1 = ((start.hour * 60 + start.minute) * 60 + start.second) * US + start.microsecond
            elif t is date:
                s1 = 0
            else:
                return _SLOW
            o1 = start.toordinal()
            r = recs.get(o1) or day_rec(o1)
            kind = r[0]
            if kind == 2:
                return _SLOW
            y = r[3]
            off = offsets.get(y.o0)
            if off is None:
                off = offset(y)
            w1 = off + y.cum[r[4]]
            if kind and s1:
                w = inday.get(s1)
                if w is None:
                    if len(inday) >= 100_000:
                        inday.clear()
                    w = inday[s1] = sum((e if e < s1 else s1) - s for s, e in H if s < s1)
                w1 += w
            return w2 - w1

        return biz1
