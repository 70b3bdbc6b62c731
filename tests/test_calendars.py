"""Working calendars: what a user sees when deadlines are counted in working time."""
import datetime as dt
from datetime import date, datetime as T

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    assert biz.next_working_time(T(2026, 9, 30, 18)) == T(2026, 10, 9, 9)  # National Day week, Oct 8 a make-up? no: Oct 8 is off in 2026?
