"""The worksheet functions never lose a batch for one value: the exact values COM hands
over (classic and new Excel errors, odd text) are messages for their own rows."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

pytest.importorskip("xlwings", reason="the Excel layer needs xlwings 0.37.8, which needs Python 3.11+")

from com import addin_build  # noqa: E402
from cxrules import calendars, excel, rulesets  # noqa: E402

AS_OF = dt.datetime(2026, 11, 23, 10, 0)

# ------------------------------------------------------------------ worksheet functions
SPILL = -2146826243  # #SPILL! as COM hands it: xlwings' err_to_str knows only the seven oldest errors
CALC = -2146826238  # #CALC!
NA = "#N/A"  # the seven oldest arrive as text (err_to_str)


@pytest.fixture
def bundled(monkeypatch):
    monkeypatch.setenv("CXRULES_RULES", str(rulesets.bundled_rules_dir()))


def col(*values):
    return [[v] for v in values]


def test_excel_errors_com_hands_as_numbers_are_row_messages(bundled):
    d = dt.datetime(2026, 11, 13)
    got = excel.CX_TIER(col(d, d, d), col(6.0, SPILL, 6.0), col(8000.0, 8000.0, CALC), None, None, AS_OF)
    assert got == [["High value"], ["#CX: orders_12m: the cell holds the Excel error #SPILL!"],
                   ["#CX: spend_12m: the cell holds the Excel error #CALC!"]]
    assert excel.CX_NPS(col(9.0, -2146828288 + 2051)) == [["Promoter"], ["#CX: score: the cell holds an Excel error (code 2051)"]]


def test_excel_errors_in_one_cell_arguments_are_one_message_for_the_call(bundled):
    d = dt.datetime(2026, 11, 13)
    assert excel.CX_TIER(d, 6.0, 8000.0, None, None, NA) == "#CX: as_of: the cell holds the Excel error #N/A"
    assert excel.CX_TIER(d, 6.0, 8000.0, None, None, SPILL) == "#CX: as_of: the cell holds the Excel error #SPILL!"
    assert excel.CX_DECIDE(SPILL, [["Spend 12m"], [1.0]]) == "#CX: decision: the cell holds the Excel error #SPILL!"
    assert excel.CX_DUE(d, "4h", NA) == "#CX: calendar: the cell holds the Excel error #N/A"


def test_every_argument_asks_xlwings_for_excel_errors_as_text():
    # without err_to_str, xlwings hands #N/A in as_of as None: "now", silently
    build = addin_build()
    with build._udf_machinery() as udfs:
        module = build.udf_module_with_metadata(udfs)
    for f in excel.FUNCTIONS:
        for a in getattr(module, f.__name__).__xlfunc__["args"]:
            if a["name"] == "caller":  # xlwings' reserved argument: the calling cell, not a value
                continue
            assert a["options"].get("err_to_str"), f"{f.__name__}({a['name']})"


def test_row_messages_name_the_argument_or_the_header(bundled, monkeypatch):
    d = dt.datetime(2026, 11, 13)
    assert excel.CX_TIER(col(d, d), col(6.0, 6.0), col(8000.0, "lots"), None, None, AS_OF)[1] == ["#CX: spend_12m: 'lots' is not a number"]
    got = excel.CX_DECIDE("tier", [["Last purchase", "Orders 12m", "消费金额"], [d, 6.0, "lots"]], AS_OF)
    assert got[1] == ["#CX: 消费金额: 'lots' is not a number"] * 2
    got = excel.CX_DEADLINES(col(d, d), col("Urgent", "Urgent"), None, col(None, "x\udc80"))
    assert got[1] == [r"#CX: case_type: 'x\udc80' is not valid text ('\udc80' is left by a wrong decode); decode it with its real encoding"] * 2
    assert excel.CX_DUE(col(d, "soon", d), col("4h", "4h", "x"), "everyday") == [
        [dt.datetime(2026, 11, 13, 4, 0)],
        ["#CX: start: 'soon' is not a date and time; write it like 2026-11-23 09:30"],
        ["#CX: duration: 'x' is not a duration; write it like 30s, 90m, 2h, 3d or 1w"]]
    assert excel.CX_DUE(d, 1e300, "everyday") == "#CX: cannot compute the due date: the date falls outside the years 1 to 9999"
    # said before walking 8,000 years of working days (12 s): the day-by-day path is never taken
    monkeypatch.setattr(calendars.Calendar, "_add_parts", lambda *a: pytest.fail("walked the calendar"))
    assert excel.CX_DUE(d, 1e308, "business") == "#CX: cannot compute the due date: the date falls outside the years 1 to 9999"


# Values COM can hand a worksheet function (NaN and inf cannot come from Excel).
COM_ODD = [SPILL, CALC, NA, "#VALUE!", 1e308, -1e308, 5e-324, 2958466.0, -1.0, True, Decimal("8000.00"),
           "V\udc80IP", "\x00\x1b[31m", "x" * 32767, "１２", dt.time(9, 30), dt.datetime(9999, 12, 31, 23, 59)]

CALLS = {  # function -> a call of it whose column arguments are made by `c` from one good value
    "CX_TIER": lambda c: excel.CX_TIER(c(dt.datetime(2026, 11, 13)), c(6.0), c(8000.0), c("Regular"), c(1.0), AS_OF),
    "CX_NEXT_CONTACT": lambda c: excel.CX_NEXT_CONTACT(c(dt.datetime(2026, 11, 1)), c("VIP"), c(dt.datetime(2020, 1, 1)), c("VIP"), AS_OF),
    "CX_DEADLINES": lambda c: excel.CX_DEADLINES(c(dt.datetime(2026, 11, 20, 17)), c("Normal"), c("VIP"), c("Complaint")),
    "CX_LEVEL": lambda c: excel.CX_LEVEL(c(dt.datetime(2026, 11, 20, 17)), c("Open"), AS_OF),
    "CX_OFFER": lambda c: excel.CX_OFFER(c("Urgent"), c("VIP"), c(1.0), c(2.0)),
    "CX_NPS": lambda c: excel.CX_NPS(c(9.0)),
    "CX_DUE": lambda c: excel.CX_DUE(c(dt.datetime(2026, 11, 20, 17)), c("4h"), "business"),
}
N_ARGS = {"CX_TIER": 5, "CX_NEXT_CONTACT": 4, "CX_DEADLINES": 4, "CX_LEVEL": 2, "CX_OFFER": 4, "CX_NPS": 1, "CX_DUE": 2}


@pytest.mark.parametrize("name", list(CALLS))
def test_every_worksheet_function_keeps_the_other_rows_when_one_cell_is_odd(bundled, name):
    good = CALLS[name](lambda v: col(v, v, v))
    for arg in range(N_ARGS[name]):
        for odd in COM_ODD:
            k = [0]

            def column(v, arg=arg, odd=odd):  # the arg-th column argument gets `odd` in its middle row
                here, k[0] = k[0], k[0] + 1
                return col(v, odd, v) if here == arg else col(v, v, v)

            got = CALLS[name](column)
            assert isinstance(got, list) and len(got) == 3, (name, arg, odd, got)
            assert got[0] == good[0] and got[2] == good[2], (name, arg, odd)
            for v in got[1]:
                assert not isinstance(v, str) or not v.startswith("#CX") or len(v) <= 125
                if isinstance(v, str):
                    v.encode("utf-8")  # a message never carries a lone surrogate: it could not be logged or saved


@pytest.mark.parametrize("name", ["CX_DECIDE", "CX_EXPLAIN"])
def test_range_functions_keep_the_other_rows_when_one_cell_is_odd(bundled, name):
    header = ["Last purchase", "Orders 12m", "Spend 12m", "Previous tier"]
    row = [dt.datetime(2026, 11, 13), 6.0, 8000.0, "Regular"]
    call = getattr(excel, name)
    top = 1 if name == "CX_DECIDE" else 0  # CX_DECIDE spills a header row first
    good = call("tier", [header, row, row, row], AS_OF)
    for j in range(len(header)):
        for odd in COM_ODD:
            got = call("tier", [header, row, row[:j] + [odd] + row[j + 1:], row], AS_OF)
            assert len(got) == len(good) and [got[top], got[top + 2]] == [good[top], good[top + 2]], (name, header[j], odd)
            for v in got[top + 1]:
                if isinstance(v, str):
                    v.encode("utf-8")


