"""Working calendars: what a user sees when deadlines are counted in working time."""
import datetime as dt
from datetime import date, datetime as T

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrules import calendars
from cxrules.calendars import Calendar, CalendarProblem, parse_calendar
from cxrules.values import Duration

H = lambda n: Duration.of(hours=n)  # noqa: E731
D = lambda n: Duration.of(days=n)  # noqa: E731

BUSINESS = {
    "timezone": "Asia/Shanghai",
    "hours": ["09:00-12:00", "13:30-18:00"],
    "workdays": ["mon", "tue", "wed", "thu", "fri"],
    "holidays": "CN",
}


def make(raw: dict, name: str = "cal") -> Calendar:
    cal, problems = parse_calendar(name, raw)
    assert problems == [], problems
    return cal


@pytest.fixture(scope="module")
def biz() -> Calendar:
    return make(BUSINESS, "business")


# --- business hours -------------------------------------------------------

@pytest.mark.parametrize(
    "start, amount, expected",
    [
        (T(2026, 3, 4, 10), H(1), T(2026, 3, 4, 11)),
        (T(2026, 3, 4, 11), H(1), T(2026, 3, 4, 12)),  # ends at the lunch break, not after it
        (T(2026, 3, 4, 11), H(2), T(2026, 3, 4, 14, 30)),  # across lunch
        (T(2026, 3, 4, 12, 30), H(1), T(2026, 3, 4, 14, 30)),  # starts in lunch
        (T(2026, 3, 4, 8), H(1), T(2026, 3, 4, 10)),  # before opening
        (T(2026, 3, 4, 19), H(1), T(2026, 3, 5, 10)),  # after closing
        (T(2026, 3, 4, 17), H(1), T(2026, 3, 4, 18)),  # exactly at closing
        (T(2026, 3, 7, 10), H(1), T(2026, 3, 9, 10)),  # Saturday
        (T(2026, 3, 8, 23, 59), H(1), T(2026, 3, 9, 10)),  # Sunday night
        (T(2026, 3, 6, 17), H(2), T(2026, 3, 9, 10)),  # Friday 17:00 + 2h
        (T(2026, 3, 6, 10), D(1), T(2026, 3, 9, 10)),  # Friday 10:00 + 1d
        (T(2026, 3, 4, 10), H(24), T(2026, 3, 9, 11, 30)),  # 24 working hours = 3.2 days
        (T(2026, 3, 4, 10), Duration.of(days=1, hours=2), T(2026, 3, 5, 12)),
        (T(2026, 3, 4, 12, 30), D(1), T(2026, 3, 5, 13, 30)),  # lunch start moves first
        (T(2026, 3, 7, 15), D(1), T(2026, 3, 10, 9)),  # Saturday: from Monday 09:00
        (T(2026, 3, 2, 10), Duration.of(weeks=1), T(2026, 3, 9, 10)),
        (T(2026, 3, 2, 10), Duration.of(weeks=2), T(2026, 3, 16, 10)),
        (T(2026, 3, 4, 11), Duration.of(days=0.5), T(2026, 3, 4, 16, 15)),  # half of 7.5h
        (T(2026, 3, 4, 11, 15), Duration.of(minutes=50, seconds=30), T(2026, 3, 4, 13, 35, 30)),
        (T(2026, 3, 4, 12, 30), Duration(), T(2026, 3, 4, 13, 30)),  # zero: next working moment
    ],
)
def test_business_add(biz, start, amount, expected):
    assert biz.add(start, amount) == expected


def test_negative_amounts_go_back(biz):
    assert biz.add(T(2026, 3, 9, 10), H(-2)) == T(2026, 3, 6, 17)
    assert biz.add(T(2026, 3, 9, 10), D(-1)) == T(2026, 3, 6, 10)
    assert biz.add(T(2026, 3, 9, 8), H(-1)) == T(2026, 3, 6, 17)
    assert biz.add(date(2026, 3, 9), D(-1)) == date(2026, 3, 6)
    assert biz.add(date(2026, 3, 7), D(-1)) == date(2026, 3, 6)


def test_next_working_time(biz):
    assert biz.next_working_time(T(2026, 3, 4, 10)) == T(2026, 3, 4, 10)
    assert biz.next_working_time(T(2026, 3, 4, 12)) == T(2026, 3, 4, 13, 30)
    assert biz.next_working_time(T(2026, 3, 6, 18)) == T(2026, 3, 9, 9)
    assert biz.next_working_time(T(2026, 9, 30, 18)) == T(2026, 10, 8, 9)  # National Day week
    assert biz.next_working_time(date(2026, 3, 7)) == T(2026, 3, 9, 9)


def test_date_start_means_start_of_day(biz):
    assert biz.add(date(2026, 3, 6), D(1)) == date(2026, 3, 9)  # Friday + 1 working day
    assert biz.add(date(2026, 3, 7), D(1)) == date(2026, 3, 10)  # Saturday counts from Monday
    assert biz.add(date(2026, 3, 7), D(0)) == date(2026, 3, 9)
    assert biz.add(date(2026, 3, 7), H(2)) == T(2026, 3, 9, 11)
    assert biz.add(date(2026, 3, 4), Duration.of(days=1, hours=1)) == T(2026, 3, 5, 10)
    assert biz.elapsed(date(2026, 3, 6), date(2026, 3, 9)) == H(7.5)


# --- public holidays and make-up days (CN) ---------------------------------

def test_national_day_week_2026(biz):
    for day in range(1, 8):
        assert not biz.is_working_day(date(2026, 10, day))
    assert biz.add(T(2026, 9, 30, 17), H(2)) == T(2026, 10, 8, 10)
    assert biz.add(T(2026, 9, 30, 10), D(1)) == T(2026, 10, 8, 10)
    # Oct 10 (Saturday) is a make-up working day, so one week is done by Tuesday
    assert biz.add(T(2026, 9, 30, 10), Duration.of(weeks=1)) == T(2026, 10, 13, 10)
    assert biz.elapsed(T(2026, 9, 30, 17), T(2026, 10, 8, 10)) == H(2)


def test_national_day_2025(biz):
    # 2025: Oct 1-8 off (National Day and Mid-Autumn), Sep 28 (Sun) and Oct 11 (Sat) worked
    assert biz.add(T(2025, 9, 30, 17), H(2)) == T(2025, 10, 9, 10)
    assert biz.add(T(2025, 9, 30, 10), D(2)) == T(2025, 10, 10, 10)
    assert biz.is_working_day(date(2025, 9, 28))
    assert biz.is_working_day(date(2025, 10, 11))


def test_spring_festival_2026(biz):
    # Feb 15-23 off; Saturdays Feb 14 and Feb 28 are make-up working days
    assert biz.is_working_day(date(2026, 2, 14))
    assert biz.is_working_day(date(2026, 2, 28))
    for day in (16, 17, 18, 19, 20, 23):
        assert not biz.is_working_day(date(2026, 2, day))
    assert biz.add(T(2026, 2, 13, 17), H(2)) == T(2026, 2, 14, 10)  # into the make-up Saturday
    assert biz.add(T(2026, 2, 14, 17), H(2)) == T(2026, 2, 24, 10)
    assert biz.elapsed(T(2026, 2, 14, 9), T(2026, 2, 24, 9)) == H(7.5)


@pytest.mark.parametrize(
    "day, working",
    [
        (date(2026, 1, 1), False), (date(2026, 1, 2), False), (date(2026, 1, 4), True),  # Sunday worked
        (date(2026, 4, 6), False), (date(2026, 5, 5), False), (date(2026, 5, 9), True),
        (date(2026, 9, 20), True), (date(2026, 10, 10), True), (date(2026, 10, 11), False),
        (date(2026, 3, 7), False), (date(2026, 3, 9), True),
        (dt.datetime(2026, 9, 20, 15), True),
    ],
)
def test_working_days_2026(biz, day, working):
    assert biz.is_working_day(day) is working


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_make_up_days_come_from_the_holidays_package(biz, year):
    official = holidays.country_holidays("CN", years=year)
    make_up = [d for d in official.weekend_workdays if d.year == year]
    assert make_up, "the package lists CN make-up days"
    for d in make_up:
        assert d.weekday() >= 5 and biz.is_working_day(d)
    for d in official:
        assert not biz.is_working_day(d)


def test_extra_holidays_and_workdays():
    cal = make({**BUSINESS, "extra_holidays": ["2026-03-09"], "extra_workdays": [date(2026, 3, 14)]})
    assert cal.add(T(2026, 3, 6, 17), H(2)) == T(2026, 3, 10, 10)  # Monday is off
    assert cal.add(T(2026, 3, 13, 17), H(2)) == T(2026, 3, 14, 10)  # Saturday is worked
    assert not cal.is_working_day(date(2026, 3, 9))
    assert cal.is_working_day(date(2026, 3, 14))
    # extra days override the country's list both ways
    over = make({**BUSINESS, "extra_workdays": ["2026-10-08"], "extra_holidays": ["2026-02-14"]})
    assert over.is_working_day(date(2026, 10, 8)) and not over.is_working_day(date(2026, 2, 14))


def test_extra_holiday_runs_and_chinese_dates():
    cal = make({"workdays": ["mon-fri"], "extra_holidays": ["2026-03-09..2026-03-11", "2026年3月13日"]})
    assert [cal.is_working_day(date(2026, 3, d)) for d in range(9, 14)] == [False, False, False, True, False]


# --- elapsed ----------------------------------------------------------------

def test_elapsed(biz):
    assert biz.elapsed(T(2026, 3, 6, 11), T(2026, 3, 9, 14)) == H(9)  # across weekend and lunches
    assert biz.elapsed(T(2026, 3, 4, 11), T(2026, 3, 4, 14)) == H(1.5)
    assert biz.elapsed(T(2026, 3, 4, 12, 10), T(2026, 3, 4, 13, 20)) == H(0)
    assert biz.elapsed(T(2026, 3, 7, 10), T(2026, 3, 8, 15)) == H(0)
    assert biz.elapsed(T(2026, 3, 4, 10), T(2026, 3, 4, 10)) == H(0)
    assert biz.elapsed(T(2026, 3, 9, 10), T(2026, 3, 6, 17)) == H(-2)
    assert biz.elapsed(T(2026, 3, 4, 10), T(2026, 3, 4, 10, 0, 30)) == Duration.of(seconds=30)
    # a year of work: 2026 in CN has 250 working days including make-up days
    days = sum(biz.is_working_day(date(2026, 1, 1) + dt.timedelta(k)) for k in range(365))
    assert biz.elapsed(date(2026, 1, 1), date(2027, 1, 1)) == H(7.5 * days)


def test_elapsed_returns_duration(biz):
    d = biz.elapsed(T(2026, 3, 6, 11), T(2026, 3, 9, 14))
    assert isinstance(d, Duration) and d.hours == 9 and str(d) == "9h"


# --- everyday calendars and DST ---------------------------------------------

def test_everyday_is_plain_clock_time():
    cal = make({"timezone": "Asia/Shanghai"})
    assert cal.is_everyday
    assert cal.add(T(2026, 3, 7, 23), H(2)) == T(2026, 3, 8, 1)
    assert cal.add(T(2026, 3, 7, 23), D(1)) == T(2026, 3, 8, 23)
    assert cal.add(T(2026, 3, 7, 23), Duration.of(weeks=1)) == T(2026, 3, 14, 23)
    assert cal.add(date(2026, 3, 7), D(3)) == date(2026, 3, 10)
    assert cal.add(date(2026, 3, 7), H(3)) == T(2026, 3, 7, 3)
    assert cal.add(T(2026, 10, 1, 10), H(1)) == T(2026, 10, 1, 11)  # no holidays here
    assert cal.elapsed(T(2026, 3, 7, 23), T(2026, 3, 9, 1)) == H(26)
    assert cal.elapsed(date(2026, 3, 9), date(2026, 3, 7)) == H(-48)
    assert cal.next_working_time(T(2026, 3, 7, 3)) == T(2026, 3, 7, 3)


def test_defaults_are_everyday_utc():
    cal = make({})
    assert (cal.timezone, cal.is_everyday, cal.hours, cal.workdays) == ("UTC", True, ((0, 86400),), frozenset(range(7)))
    assert make(None).is_everyday


@pytest.mark.parametrize(
    "zone, start, amount, expected",
    [
        # spring forward: 24h of real time is 25h on the wall clock
        ("Europe/Berlin", T(2026, 3, 28, 12), H(24), T(2026, 3, 29, 13)),
        ("Europe/Berlin", T(2026, 3, 28, 12), D(1), T(2026, 3, 29, 12)),
        ("Europe/Berlin", T(2026, 3, 29, 1, 30), H(1), T(2026, 3, 29, 3, 30)),
        ("Europe/Berlin", date(2026, 3, 29), H(24), T(2026, 3, 30, 1)),
        # fall back: 24h of real time is 23h on the wall clock
        ("Europe/Berlin", T(2026, 10, 24, 12), H(24), T(2026, 10, 25, 11)),
        ("America/New_York", T(2026, 3, 7, 12), H(24), T(2026, 3, 8, 13)),
        ("America/New_York", T(2026, 10, 31, 12), H(24), T(2026, 11, 1, 11)),
        ("Europe/Berlin", T(2026, 7, 1, 12), H(24), T(2026, 7, 2, 12)),
    ],
)
def test_everyday_across_dst(zone, start, amount, expected):
    assert make({"timezone": zone}).add(start, amount) == expected


def test_everyday_elapsed_across_dst():
    cal = make({"timezone": "Europe/Berlin"})
    assert cal.elapsed(date(2026, 3, 29), date(2026, 3, 30)) == H(23)
    assert cal.elapsed(T(2026, 10, 25), T(2026, 10, 26)) == H(25)
    assert cal.elapsed(T(2026, 3, 28, 12), T(2026, 3, 29, 13)) == H(24)


def test_business_calendar_in_dst_zone():
    night = make({"timezone": "Europe/Berlin", "hours": ["00:00-04:00"], "workdays": ["sun"]})
    # Sunday 00:00-04:00 holds 3 real hours in spring, 5 in autumn
    assert night.elapsed(T(2026, 3, 29), T(2026, 3, 29, 4)) == H(3)
    assert night.elapsed(T(2026, 10, 25), T(2026, 10, 25, 4)) == H(5)
    assert night.add(T(2026, 3, 29), H(3)) == T(2026, 3, 29, 4)
    assert night.add(T(2026, 3, 29), H(4)) == T(2026, 4, 5, 1)
    assert night.add(T(2026, 10, 25), H(4)) == T(2026, 10, 25, 3)
    office = make({"timezone": "America/New_York", "hours": ["09:00-17:00"], "workdays": ["mon-fri"], "holidays": "US"})
    assert office.add(T(2026, 3, 6, 16), H(2)) == T(2026, 3, 9, 10)  # wall-clock hours kept over DST
    assert office.elapsed(T(2026, 3, 6, 9), T(2026, 3, 9, 17)) == H(16)
    assert office.add(T(2026, 7, 2, 16), H(2)) == T(2026, 7, 6, 10)  # July 3 observed holiday


def test_aware_datetimes_are_converted(biz):
    aware = T(2026, 3, 6, 9, tzinfo=dt.timezone.utc)  # 17:00 in Shanghai
    assert biz.add(aware, H(2)) == T(2026, 3, 9, 10)


# --- parse problems -----------------------------------------------------------

def problems_of(raw: dict) -> list[tuple[str, str, str | None]]:
    cal, problems = parse_calendar("biz", raw)
    assert cal is None and problems
    assert all(isinstance(p, CalendarProblem) and isinstance(p, ValueError) for p in problems)
    return [(p.key, p.message, p.suggestion) for p in problems]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"timezne": "UTC"}, ("timezne", "calendar 'biz': unknown setting 'timezne'", "did you mean 'timezone'?")),
        ({"hollidays": "CN"}, ("hollidays", "calendar 'biz': unknown setting 'hollidays'", "did you mean 'holidays'?")),
        ({"colour": "red"}, ("colour", "calendar 'biz': unknown setting 'colour'",
                             "the settings are timezone, hours, workdays, holidays, extra_holidays, extra_workdays")),
        ({"timezone": "Asia/Shangai"}, ("timezone", "calendar 'biz': unknown time zone 'Asia/Shangai'", "did you mean 'Asia/Shanghai'?")),
        ({"timezone": "Beijing"}, ("timezone", "calendar 'biz': unknown time zone 'Beijing'", "did you mean 'Asia/Shanghai'?")),
        ({"timezone": "Shanghai"}, ("timezone", "calendar 'biz': unknown time zone 'Shanghai'", "did you mean 'Asia/Shanghai'?")),
        ({"timezone": "UTC+8"}, ("timezone", "calendar 'biz': unknown time zone 'UTC+8'", "did you mean 'Etc/GMT-8'?")),
        ({"timezone": "utc"}, ("timezone", "calendar 'biz': unknown time zone 'utc'", "did you mean 'UTC'?")),
        ({"hours": ["9-12"]}, ("hours", "calendar 'biz': working hours '9-12' are not like 09:00-18:00",
                               "write start and end as HH:MM-HH:MM, in quotes")),
        ({"hours": ["18:00-09:00"]}, ("hours", "calendar 'biz': working hours '18:00-09:00' end before they start",
                                      "for hours past midnight write two intervals, e.g. '22:00-24:00' and '00:00-06:00'")),
        ({"hours": ["09:00-09:00"]}, ("hours", "calendar 'biz': working hours '09:00-09:00' end before they start",
                                      "for hours past midnight write two intervals, e.g. '22:00-24:00' and '00:00-06:00'")),
        ({"hours": ["09:00-25:00"]}, ("hours", "calendar 'biz': '25:00' in working hours '09:00-25:00' is not a time of day",
                                      "hours go from 00:00 to 23:59; 24:00 may end the day")),
        ({"hours": ["09:60-12:00"]}, ("hours", "calendar 'biz': '09:60' in working hours '09:60-12:00' is not a time of day",
                                      "hours go from 00:00 to 23:59; 24:00 may end the day")),
        ({"hours": ["09:00-12:00", "11:00-14:00"]}, ("hours", "calendar 'biz': working hours '09:00-12:00' and '11:00-14:00' overlap",
                                                     "merge them into one interval")),
        ({"hours": ["13:30-18:00", "09:00-12:00"]}, ("hours", "calendar 'biz': working hours '09:00-12:00' come before '13:30-18:00'",
                                                     "list them in order: '09:00-12:00', '13:30-18:00'")),
        ({"hours": []}, ("hours", "calendar 'biz': hours is empty, so there is no working time", 'write e.g. ["09:00-18:00"]')),
        ({"hours": 9}, ("hours", 'calendar \'biz\': hours must be a list like ["09:00-12:00", "13:30-18:00"]', None)),
        ({"workdays": ["mon", "fryday"]}, ("workdays", "calendar 'biz': 'fryday' is not a day of the week", "did you mean 'friday'?")),
        ({"workdays": ["weekend"]}, ("workdays", "calendar 'biz': 'weekend' is not a day of the week",
                                     "write mon, tue, wed, thu, fri, sat or sun")),
        ({"workdays": []}, ("workdays", "calendar 'biz': workdays is empty, so there is no working time",
                            "write e.g. [mon, tue, wed, thu, fri]")),
        ({"holidays": "XX"}, ("holidays", "calendar 'biz': no public holidays are known for 'XX'",
                              "use a two-letter country code such as CN, HK, US or DE")),
        ({"holidays": "China"}, ("holidays", "calendar 'biz': no public holidays are known for 'China'", "did you mean 'CN'?")),
        ({"holidays": ["CN", "HK"]}, ("holidays", "calendar 'biz': holidays must be one country code, such as CN",
                                      "put further days off in extra_holidays")),
        ({"holidays": "US-XX"}, ("holidays", "calendar 'biz': 'XX' is not a region of US",
                                 "regions of US: AK, AL, AR, AS, AZ, CA, CO, CT, DC, DE, FL, GA")),
        ({"extra_holidays": ["2026-02-30"]}, ("extra_holidays", "calendar 'biz': '2026-02-30' in extra_holidays is not a date",
                                              "write it like 2026-10-08, or 2026-10-01..2026-10-07 for a run of days")),
        ({"extra_workdays": ["next saturday"]}, ("extra_workdays", "calendar 'biz': 'next saturday' in extra_workdays is not a date",
                                                 "write it like 2026-10-08, or 2026-10-01..2026-10-07 for a run of days")),
        ({"extra_holidays": ["2026-10-07..2026-10-01"]}, ("extra_holidays", "calendar 'biz': in extra_holidays, '2026-10-07..2026-10-01' ends before it starts",
                                                          "write it as '2026-10-01..2026-10-07'")),
        ({"extra_holidays": ["2026-10-08"], "extra_workdays": ["2026-10-08"]},
         ("extra_workdays", "calendar 'biz': 2026-10-08 is both an extra holiday and an extra workday", "keep it in one list")),
    ],
)
def test_parse_problem(raw, expected):
    assert problems_of(raw) == [expected]


def test_all_problems_are_collected():
    keys = [k for k, _, _ in problems_of({
        "timezone": "Mars/Olympus", "hours": ["9-5", "18:00-09:00"], "workdays": ["funday"],
        "holidays": "ZZ", "extra_holidays": ["soon"], "extra_workdays": ["2026-13-01"], "tz": "UTC",
    })]
    assert keys == ["tz", "timezone", "hours", "hours", "workdays", "holidays", "extra_holidays", "extra_workdays"]


def test_calendar_must_be_a_mapping():
    cal, problems = parse_calendar("biz", ["09:00-18:00"])
    assert cal is None and problems[0].key == "biz"


def test_problem_reads_well():
    (p,) = parse_calendar("biz", {"timezone": "Asia/Shangai"})[1]
    assert str(p) == "calendar 'biz': unknown time zone 'Asia/Shangai' (did you mean 'Asia/Shanghai'?)"
    assert p.as_problem(file="rules.yaml", line=3).suggestion == "did you mean 'Asia/Shanghai'?"


@pytest.mark.parametrize(
    "raw, check",
    [
        ({"hours": ["09:00-24:00"]}, lambda c: c.hours == ((32400, 86400),)),
        ({"hours": "09:00-12:00, 13:00-18:00"}, lambda c: c.hours == ((32400, 43200), (46800, 64800))),
        ({"hours": ["09:00-12:00", "12:00-13:00"]}, lambda c: c.hours == ((32400, 46800),)),  # touching: one interval
        ({"hours": ["09:00 - 12:00", "13:30~18:00"]}, lambda c: c.hours == ((32400, 43200), (48600, 64800))),
        ({"workdays": ["Monday", "TUE", "wednesday", "thu", "Fri"]}, lambda c: c.workdays == frozenset(range(5))),
        ({"workdays": "mon-fri"}, lambda c: c.workdays == frozenset(range(5))),
        ({"workdays": ["sat-mon"]}, lambda c: c.workdays == frozenset({5, 6, 0})),
        ({"workdays": ["周一", "周二", "星期三", "周四", "周五"]}, lambda c: c.workdays == frozenset(range(5))),
        ({"holidays": "cn"}, lambda c: c.holidays == "CN"),
        ({"holidays": "US-CA"}, lambda c: c.holidays == "US-CA"),
        ({"holidays": None}, lambda c: c.holidays is None and c.is_everyday),
        ({"extra_holidays": [date(2026, 1, 5), "2026/01/06", "2026年1月7日"]},
         lambda c: c.extra_holidays == {date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)} and not c.is_everyday),
        ({"extra_workdays": ["2026-01-03"]}, lambda c: c.is_everyday),
        ({"timezone": "Etc/GMT-8"}, lambda c: c.tz.utcoffset(T(2026, 1, 1)) == dt.timedelta(hours=8)),
    ],
)
def test_parse_accepts(raw, check):
    assert check(make(raw))


# --- properties ---------------------------------------------------------------

def _reference_add(cal: Calendar, start: T, minutes: int) -> T:
    """Walk day by day over wall-clock intervals (valid in a zone without DST)."""
    t, rem = start, dt.timedelta(minutes=minutes)
    while True:
        day = T.combine(t.date(), dt.time())
        if cal.is_working_day(day):
            for s, e in cal.hours:
                a, b = day + dt.timedelta(seconds=s), day + dt.timedelta(seconds=e)
                if b <= t:
                    continue
                s0 = max(a, t)
                if rem <= b - s0:
                    return s0 + rem
                rem -= b - s0
        t = day + dt.timedelta(days=1)


def _reference_elapsed(cal: Calendar, start: T, end: T) -> float:
    total, day = 0.0, T.combine(start.date(), dt.time())
    while day <= end:
        if cal.is_working_day(day):
            for s, e in cal.hours:
                a, b = max(day + dt.timedelta(seconds=s), start), min(day + dt.timedelta(seconds=e), end)
                total += max(0.0, (b - a).total_seconds())
        day += dt.timedelta(days=1)
    return total


CALENDARS = {
    "cn": make(BUSINESS, "cn"),
    "short": make({"timezone": "Asia/Tokyo", "hours": ["10:00-11:00", "14:00-14:30", "23:00-24:00"], "workdays": ["tue", "sat"],
                   "extra_holidays": ["2025-06-03..2025-07-15"], "extra_workdays": ["2025-12-25"]}, "short"),
    "berlin": make({"timezone": "Europe/Berlin", "hours": ["07:00-12:00", "13:00-19:00"], "workdays": ["mon-sat"], "holidays": "DE"}, "berlin"),
}
starts = st.datetimes(min_value=T(2024, 6, 1), max_value=T(2027, 6, 1)).map(lambda t: t.replace(second=0, microsecond=0))
minutes = st.integers(min_value=0, max_value=60 * 400)
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(name=st.sampled_from(sorted(CALENDARS)), start=starts, m=minutes)
def test_elapsed_undoes_add(name, start, m):
    cal = CALENDARS[name]
    s = cal.next_working_time(start)
    end = cal.add(s, Duration.of(minutes=m))
    assert cal.elapsed(s, end) == Duration.of(minutes=m)
    assert cal.elapsed(end, s) == Duration.of(minutes=-m)
    assert cal.add(end, Duration.of(minutes=-m)) <= s or m == 0


@PROPS
@given(name=st.sampled_from(sorted(CALENDARS)), start=starts, a=minutes, b=minutes, days=st.integers(0, 30))
def test_add_is_monotonic(name, start, a, b, days):
    cal = CALENDARS[name]
    a, b = sorted((a, b))
    assert cal.add(start, Duration.of(minutes=a)) <= cal.add(start, Duration.of(minutes=b))
    assert cal.add(start, Duration.of(days=days)) <= cal.add(start, Duration.of(days=days + 1))
    assert cal.add(start, Duration.of(days=days, minutes=a)) <= cal.add(start, Duration.of(days=days, minutes=b))


@PROPS
@given(name=st.sampled_from(["cn", "short"]), start=starts, m=minutes, other=starts)
def test_matches_day_by_day_reference(name, start, m, other):
    cal = CALENDARS[name]
    assert cal.add(start, Duration.of(minutes=m)) == _reference_add(cal, start, m)
    lo, hi = sorted((start, other))
    if (hi - lo).days < 200:
        assert cal.elapsed(lo, hi).seconds == _reference_elapsed(cal, lo, hi)


def _general(zone: str) -> Calendar:
    """An everyday calendar forced onto the business path."""
    cal = Calendar("general", zone)
    cal.is_everyday = False
    return cal


@PROPS
@given(zone=st.sampled_from(["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York"]),
       start=starts.filter(lambda t: 5 <= t.hour <= 22), days=st.integers(-40, 40), m=st.integers(-5000, 5000))
def test_everyday_fast_path_matches_general_path(zone, start, days, m):
    fast, slow = make({"timezone": zone}), _general(zone)
    assert fast.is_everyday
    for amount in (Duration.of(days=days), Duration.of(minutes=m), Duration.of(days=abs(days), minutes=abs(m))):
        assert fast.add(start, amount) == slow.add(start, amount)
    end = start + dt.timedelta(days=days, minutes=m)
    assert fast.elapsed(start, end) == slow.elapsed(start, end)
    # and it is real elapsed time
    utc = [t.replace(tzinfo=fast.tz).astimezone(dt.timezone.utc) for t in (start, end)]  # same-zone subtraction would be wall clock
    real = (utc[1] - utc[0]).total_seconds()
    assert fast.elapsed(start, end).seconds == real


# --- batches: add_many / elapsed_many ---------------------------------------------

BATCH_CALENDARS = {
    **CALENDARS,
    "everyday_utc": make({}),
    "everyday_shanghai": make({"timezone": "Asia/Shanghai"}),
    "everyday_berlin": make({"timezone": "Europe/Berlin"}),
    "everyday_new_york": make({"timezone": "America/New_York"}),
    "general_berlin": _general("Europe/Berlin"),
    "berlin_nights": make({"timezone": "Europe/Berlin", "hours": ["00:00-04:00", "22:00-24:00"], "workdays": ["sat-mon"]}),
}
_DST_DAYS = [T(2025, 3, 30), T(2025, 10, 26), T(2026, 3, 29), T(2026, 10, 25), T(2026, 3, 8), T(2026, 11, 1)]
_DAYS_OFF = [T(2026, 10, 1), T(2026, 10, 7), T(2026, 2, 14), T(2026, 2, 17), T(2025, 12, 25), T(2026, 1, 1), T(2026, 5, 1)]
# Clock times where the calendars above open, close or break (and DST changes happen), in minutes.
_CLOCK = [0, 60, 120, 150, 180, 240, 420, 540, 600, 660, 720, 780, 810, 840, 870, 1080, 1140, 1320, 1380, 1439]
_aligned = st.builds(lambda d, k, m, e: d + dt.timedelta(days=k, minutes=m + e),
                     st.sampled_from(_DST_DAYS + _DAYS_OFF + [T(2026, 3, 4), T(2025, 12, 31), T(2026, 12, 31)]),
                     st.integers(-3, 2), st.sampled_from(_CLOCK), st.sampled_from([-1, 0, 0, 0, 1]))
batch_starts = st.one_of(
    st.none(),
    st.dates(min_value=date(2024, 6, 1), max_value=date(2027, 6, 1)),
    starts,  # whole minutes, any time of day: before opening, lunch, nights, weekends
    st.datetimes(min_value=T(2024, 6, 1), max_value=T(2027, 6, 1)),  # seconds and microseconds
    _aligned,  # at and next to opening, closing and DST times, on and next to DST days and days off
    _aligned.map(lambda t: t.date()),
    _aligned.map(lambda t: t.replace(tzinfo=dt.timezone.utc)),
)
batch_amounts = st.one_of(
    st.none(),
    st.builds(lambda m: Duration.of(minutes=m), st.integers(-3000, 40_000)),
    st.builds(lambda m: Duration.of(minutes=30 * m), st.integers(0, 400)),  # lands on opening and closing times
    st.builds(lambda k, h: Duration.of(hours=k * h), st.integers(1, 12), st.sampled_from([2.5, 6, 7.5, 11, 24])),  # whole working days
    st.builds(lambda d: Duration.of(days=d), st.integers(-20, 100)),
    st.builds(lambda w, d, m: Duration.of(weeks=w, days=d, minutes=30 * m), st.integers(0, 3), st.integers(0, 5), st.integers(0, 60)),
    st.sampled_from([H(2), H(4), D(1), D(3), Duration.of(weeks=1), D(0.5), D(2.5), H(7.5), Duration(), Duration(3600.0),
                     D(1.0), H(-2), D(-1), dt.timedelta(hours=5)]),
)


@st.composite
def batches(draw):
    """Rows of (start, amount), the amounts shared from a small pool as in a workbook column."""
    pool = draw(st.lists(batch_amounts, min_size=1, max_size=4))
    rows = draw(st.lists(st.tuples(batch_starts, st.integers(0, len(pool) - 1)), min_size=1, max_size=30))
    return [s for s, _ in rows], [pool[k] for _, k in rows]


def _outcome(f, *args):
    try:
        return f(*args)
    except (ValueError, OverflowError) as e:
        return e


def _same(a, b) -> bool:
    if isinstance(a, Exception) or isinstance(b, Exception):
        return type(a) is type(b) and str(a) == str(b)
    return type(a) is type(b) and a == b


def _general_add(cal: Calendar, start, amount):
    """add() by the general path only (no fast paths)."""
    if isinstance(start, dt.datetime) and start.tzinfo is not None:
        start = start.astimezone(cal.tz).replace(tzinfo=None)
    return cal._add_parts(start, *cal._parts(amount))


@PROPS
@given(batch=batches())
def test_add_many_is_add_per_row(batch):
    starts_, amounts = batch
    for name, cal in BATCH_CALENDARS.items():
        got = cal.add_many(starts_, amounts)
        assert len(got) == len(starts_)
        for s, a, g in zip(starts_, amounts, got):
            if s is None or a is None:
                assert g is None
                continue
            assert _same(g, _outcome(cal.add, s, a)), (name, s, a)
            assert _same(g, _outcome(_general_add, cal, s, a)), (name, s, a)


@PROPS
@given(batch=batches())
def test_add_many_of_a_long_column_is_add_per_row(batch):
    """A long column of dates, or of date-times, round the clock is added with numpy."""
    starts_, amounts = batch
    for kind in (date, dt.datetime):
        rows = [(s, a) for s, a in zip(starts_, amounts) if s is None or type(s) is kind]
        if not rows:
            continue
        rows = rows * (64 // len(rows) + 1)
        col, amts = [s for s, _ in rows], [a for _, a in rows]
        for name, cal in BATCH_CALENDARS.items():
            got = cal.add_many(col, amts)
            for s, a, g in zip(col, amts, got):
                if s is None or a is None:
                    assert g is None
                    continue
                assert _same(g, _outcome(cal.add, s, a)), (name, s, a)


@settings(PROPS, max_examples=80)
@given(batch=batches())
def test_a_long_column_of_naive_times_in_business_hours_is_add_per_row(batch):
    """Business calendars add a long column of naive date-times with numpy (days looked up
    once each): the answers are add()'s and the general path's, row by row."""
    starts_, amounts = batch
    rows = [(s, a) for s, a in zip(starts_, amounts) if s is None or (type(s) is dt.datetime and s.tzinfo is None)]
    if not rows:
        return
    rows = rows * (64 // len(rows) + 1)
    col, amts = [s for s, _ in rows], [a for _, a in rows]
    for name, cal in BATCH_CALENDARS.items():
        if cal.is_everyday:
            continue
        got = cal.add_many(col, amts)
        for s, a, g in zip(col, amts, got):
            if s is None or a is None:
                assert g is None
                continue
            assert _same(g, _outcome(cal.add, s, a)), (name, s, a)
            assert _same(g, _outcome(_general_add, cal, s, a)), (name, s, a)


def test_business_hours_in_bulk_answer_most_rows(biz):
    """The bulk path itself answers ordinary rows (not only hands them to the per-row path)."""
    starts_ = [T(2026, 3, 2) + dt.timedelta(minutes=37 * k) for k in range(200)]
    amounts = [H(2), H(8), D(1), Duration.of(days=1, hours=3)] * 50
    pre = biz._business_bulk(starts_, amounts)
    assert sum(p is not calendars._SLOW for p in pre) == 200
    assert pre == [biz.add(s, a) for s, a in zip(starts_, amounts)]


@PROPS
@given(batch=batches(), end=st.one_of(starts, _aligned, st.dates(min_value=date(2024, 6, 1), max_value=date(2027, 6, 1))))
def test_elapsed_many_is_elapsed_per_row(batch, end):
    starts_ = batch[0]
    for name, cal in BATCH_CALENDARS.items():
        got, secs = cal.elapsed_many(starts_, end), cal.elapsed_many(starts_, end, seconds=True)
        for s, g, x in zip(starts_, got, secs):
            if s is None:
                assert g is None and x is None
                continue
            want = cal.elapsed(s, end)
            assert isinstance(g, Duration) and g == want and (g.weeks, g.days, g.time) == (want.weeks, want.days, want.time)
            assert x == want.seconds == cal._elapsed_seconds(s, end), (name, s, end)


def test_add_many_examples(biz):
    got = biz.add_many([T(2026, 3, 4, 11), date(2026, 3, 7), None, T(2026, 9, 30, 17), T(2026, 3, 4, 10)],
                       [H(2), D(1), H(1), H(2), None])
    assert got == [T(2026, 3, 4, 14, 30), date(2026, 3, 10), None, T(2026, 10, 8, 10), None]
    everyday = make({"timezone": "Europe/Berlin"})
    assert everyday.add_many([date(2026, 3, 7), T(2026, 3, 28, 12), T(2026, 3, 28, 12)], [D(14), H(24), D(1)]) == [
        date(2026, 3, 21), T(2026, 3, 29, 13), T(2026, 3, 29, 12)]
    assert biz.add_many([], []) == [] and biz.elapsed_many([], T(2026, 3, 4)) == []


def test_elapsed_many_examples(biz):
    assert biz.elapsed_many([T(2026, 3, 6, 11), None, date(2026, 3, 6), T(2026, 3, 10, 9)], T(2026, 3, 9, 14)) == [
        H(9), None, H(11), H(-4)]
    assert biz.elapsed_many([T(2026, 3, 6, 11)], T(2026, 3, 9, 14), seconds=True) == [9 * 3600.0]
    assert biz.elapsed_many([T(2026, 3, 6, 11)], None) == [None]


def test_a_failing_row_does_not_stop_the_batch(biz):
    everyday = make({})
    got = everyday.add_many([date(9999, 12, 31), date(2026, 3, 7)], [D(5), D(5)])
    assert isinstance(got[0], OverflowError) and str(got[0]) == "date value out of range"
    assert got[1] == date(2026, 3, 12)
    got = biz.add_many([T(9999, 12, 30, 10), T(2026, 3, 6, 17)], [H(40), H(2)])
    assert isinstance(got[0], ValueError) and got[1] == T(2026, 3, 9, 10)
    chile = make({"timezone": "America/Santiago"})  # 9999-12-31 23:00 there is past the last UTC moment
    got = chile.add_many([date(9999, 12, 31), date(9999, 12, 30)], [H(23), H(23)])
    assert isinstance(got[0], OverflowError) and got[1] == T(9999, 12, 30, 23)
    never = Calendar("never", workdays=frozenset())
    got = never.add_many([T(2026, 3, 4), None], [H(1), H(1)])
    assert type(got[0]).__name__ == "NoWorkingTime" and str(got[0]) == _outcome(never.add, T(2026, 3, 4), H(1)).args[0]
    assert got[1] is None


def test_batches_refuse_what_add_refuses(biz):
    with pytest.raises(ValueError, match="2 starts but 1 amounts"):
        biz.add_many([T(2026, 3, 4), T(2026, 3, 5)], [H(1)])
    with pytest.raises(TypeError):
        biz.add_many(["2026-03-04"], [H(1)])
    with pytest.raises(TypeError):
        biz.elapsed_many(["2026-03-04"], T(2026, 3, 5))
