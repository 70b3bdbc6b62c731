"""Reading cells and literals by type: what a workbook or rule file may hold."""
import datetime as dt

import pytest
from hypothesis import given, strategies as st

from cxrules.model import Blank, Cmp, Range, matches
from cxrules.unary import parse_output, parse_test
from cxrules.values import (Duration, ValueProblem, coerce, display, encode, format_duration,
                            parse_duration)


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("90m", 5400), ("2h", 7200), ("3d", 259200), ("1w", 604800), ("1d 12h", 129600),
    ("1h30m", 5400), ("PT2H", 7200), ("P1DT1H", 90000), (" 7D ", 604800), ("1.5h", 5400),
])
def test_durations(text, seconds):
    assert parse_duration(text).seconds == seconds


@pytest.mark.parametrize("text", ["3days", "h", "", "2x", "P", "1 hour"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ValueProblem, match="write it like 30s, 90m, 2h, 3d or 1w"):
        parse_duration(text)


@given(st.integers(0, 5), st.integers(0, 30), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_duration_text_round_trips(w, d, h, m, s):
    dur = Duration.of(weeks=w, days=d, hours=h, minutes=m, seconds=s)
    back = parse_duration(format_duration(dur))
    assert back == dur and (back.weeks, back.days) == (dur.weeks, dur.days)


def test_durations_compare_by_clock_length():
    assert parse_duration("7d") == parse_duration("168h")
    assert parse_duration("72h") < parse_duration("1w")


@pytest.mark.parametrize("raw, type_, want", [
    ("1,200", "number", 1200), ("  42 ", "number", 42), ("¥3,000.50", "number", 3000.5), ("15%", "number", 0.15),
    (3.0, "text", "3"), ("2026-11-23", "date", dt.date(2026, 11, 23)), ("2026/11/23", "date", dt.date(2026, 11, 23)),
    ("2026年11月23日", "date", dt.date(2026, 11, 23)), ("11/23/2026", "date", dt.date(2026, 11, 23)),
    (46349.0, "date", dt.date(2026, 11, 23)), ("2026-11-23 09:30", "datetime", dt.datetime(2026, 11, 23, 9, 30)),
    ("2026年11月23日 9时30分", "datetime", dt.datetime(2026, 11, 23, 9, 30)), (46349.5, "datetime", dt.datetime(2026, 11, 23, 12)),
    ("是", "boolean", True), ("No", "boolean", False), (0.5, "duration", Duration.of(hours=12)), ("  ", "number", None),
])
def test_coerce_reads_what_workbooks_hold(raw, type_, want):
    assert coerce(raw, type_) == want


def test_dayfirst_switch():
    assert coerce("23/11/2026", "date", dayfirst=True) == dt.date(2026, 11, 23)
    with pytest.raises(ValueProblem, match="is not a date"):
        coerce("23/11/2026", "date")


@pytest.mark.parametrize("raw, type_, msg", [
    ("about 300", "number", "'about 300' is not a number"),
    ("#N/A", "number", "the cell holds the Excel error #N/A"),
    ("#VALUE!", "date", "the cell holds the Excel error #VALUE!"),
    ("soon", "date", "'soon' is not a date; write it like 2026-11-23"),
    (dt.date(2026, 1, 1), "number", "is a date, not a number"),
    ("maybe", "boolean", "'maybe' is not true or false"),
])
def test_coerce_errors_are_plain_words(raw, type_, msg):
    with pytest.raises(ValueProblem, match=msg.replace("(", r"\(").replace(")", r"\)")):
        coerce(raw, type_)


def test_cells_parse_to_unary_tests():
    assert parse_test("[2..4]", "number").atoms == (Range(2, 4, True, True),)
    assert parse_test("]1..9[", "number").atoms == (Range(1, 9, False, False),)
    assert parse_test("Resolved, Closed", "text").atoms == (Cmp("=", "resolved"), Cmp("=", "closed"))
    assert parse_test('"A, B", C', "text").atoms == (Cmp("=", "a, b"), Cmp("=", "c"))
    t = parse_test("not(blank)", "number")
    assert t.negated and t.atoms == (Blank(),)
    assert parse_test(">= 7d", "duration").atoms == (Cmp(">=", 604800),)
    assert parse_test("< 2026-01-01", "date").atoms == (Cmp("<", encode(dt.date(2026, 1, 1), "date")),)
    assert parse_test("-", "number").is_any and parse_test(None, "text").is_any
    assert parse_output("-", "number") is None and parse_output("2h", "duration") == Duration.of(hours=2)


@pytest.mark.parametrize("cell, type_, msg", [
    ("[5..2]", "number", "the range [5..2] is empty: 5 is larger than 2; write the smaller end first"),
    ("< VIP", "text", "'< VIP' compares by size, which needs a number, date, date-time or duration input, not text"),
    ("5,000", "number", "'5,000' reads as several numbers because of the comma; write 5000 without the thousands separator"),
    ("not()", "number", "not() needs something inside, e.g. not(VIP) or not(< 30)"),
    ("1, , 2", "number", "a value is missing (two commas in a row, or a comma at the end?)"),
    ("-, 1", "number", "'-' (anything) cannot be combined with other values in one cell"),
    ("[1..x]", "number", "'x' is not a number"),
    (">=", "number", "'>=' compares with nothing; write it like >= 30"),
    ('"VIP', "text", "the quote \" in '\"VIP' is never closed"),
])
def test_bad_cells(cell, type_, msg):
    with pytest.raises(ValueProblem) as e:
        parse_test(cell, type_)
    assert str(e.value) == msg


def test_three_valued_blank_semantics():
    lt = parse_test("< 30", "number")
    assert not matches(lt, None) and not matches(parse_test("not(< 30)", "number"), None)
    assert matches(parse_test("not(VIP)", "text"), None) and matches(parse_test("!= 1", "number"), None)
    assert matches(parse_test("blank", "number"), None) and not matches(parse_test("1", "number"), None)


def test_display():
    assert display(Duration.of(days=14)) == "14d"
    assert display(dt.datetime(2026, 11, 23, 9, 30)) == "2026-11-23 09:30"
    assert display(3.0) == "3" and display(None) == "" and display(True) == "true"
