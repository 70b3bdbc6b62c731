"""Cells are read as Excel shows them: times to the millisecond, placeholders of writers
that do not calculate taken for what they are."""
from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxrules import rulesets
from cxrules.evaluation import Evaluator
from cxrules.recalc import recalc
from cxrules.values import coerce, excel_serial_to_datetime

RULES = Path(__file__).resolve().parents[1] / "rules"
AS_OF = dt.datetime(2026, 11, 23, 10, 0)


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(rulesets.load_or_raise(RULES))


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(9999, 12, 31)).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
       st.integers(min_value=10, max_value=17))
def test_a_serial_written_with_fewer_digits_is_the_time_excel_shows(d, digits):
    x = (d - dt.datetime(1899, 12, 30)).total_seconds() / 86400
    written = float(f"{x:.{digits}g}")  # what a writer that keeps `digits` significant digits stores
    got = excel_serial_to_datetime(written)
    # Excel shows milliseconds; fewer digits may move it by less than what they can hold
    # (and x itself, some million days as a double, is off by up to 20 µs)
    assert got.microsecond % 1000 == 0
    assert abs((got - d).total_seconds()) <= max(0.001, abs(written - x) * 86400 + 0.0005 + 0.00002)
    if digits >= 15 and d.year < 2200:
        assert got == d


def test_fifteen_digits_of_five_pm_are_five_pm():
    assert excel_serial_to_datetime(46346.7083333333) == dt.datetime(2026, 11, 20, 17, 0)
    assert coerce(46346.7083333333, "datetime") == dt.datetime(2026, 11, 20, 17, 0)


def _set_cell_xml(path: Path, ref: str, xml: str) -> None:
    with zipfile.ZipFile(path) as z:
        parts = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            if info.filename == "xl/worksheets/sheet1.xml":
                data, n = re.subn(rb'<c r="%s"[^>]*?(?:/>|>.*?</c>)' % ref.encode(), xml.encode(), data)
                assert n == 1
            z.writestr(info, data)


def test_a_general_cell_date_time_gives_the_deadline_excel_would(tmp_path, evaluator):
    """Opened 20 Nov 2026 at 17:00, written as a General number with 15 digits: an urgent
    VIP case's deadline counts from 17:00, not from a microsecond before."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Cases"
    ws.append(["Case ID", "Opened at", "Severity", "Case type", "Status", "Tier"])
    ws.append(["K1", 0, "Normal", "Complaint", "Open", "VIP"])
    path = tmp_path / "cases.xlsx"
    wb.save(path)
    _set_cell_xml(path, "B2", '<c r="B2"><v>46346.7083333333</v></c>')
    recalc(path, evaluator, as_of=AS_OF)
    got = [list(r) for r in openpyxl.load_workbook(path)["Cases"].iter_rows(values_only=True)]
    want = evaluator.evaluate([{"severity": "Normal", "kind": "Complaint", "status": "Open", "tier": "VIP",
                                "opened_at": dt.datetime(2026, 11, 20, 17, 0)}], ["escalation"], AS_OF)
    assert got[1][got[0].index("Respond by")] == want.columns["respond_by"][0]


def test_a_general_cell_midnight_is_that_day(tmp_path, evaluator):
    """A purchase at midnight of 17 Nov 2026 stored as 46342.9999999999 (a computed serial
    kept to 15 digits) was made on the 17th: 6 days before the 23rd, so the customer is New."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(["Customer", "Last purchase", "Orders 12m", "Spend 12m"])
    ws.append(["A", 0, 1, 120])
    for k in range(4):  # bigger spenders, so A is not in the top 20 %
        ws.append([f"B{k}", dt.datetime(2026, 11, 1), 6, 50000 + k])
    path = tmp_path / "midnight.xlsx"
    wb.save(path)
    _set_cell_xml(path, "B2", '<c r="B2"><v>46342.9999999999</v></c>')
    recalc(path, evaluator, as_of=AS_OF)
    got = [list(r) for r in openpyxl.load_workbook(path)["Customers"].iter_rows(values_only=True)]
    assert got[1][4:6] == ["New", "First purchase this week"]


def test_placeholder_values_of_a_writer_that_does_not_calculate_are_not_read(tmp_path, evaluator):
    """xlsxwriter, pandas and polars store 0 for every formula and ask Excel to calculate
    on opening (fullCalcOnLoad): that 0 is not the spend."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(["Customer", "Last purchase", "Orders 12m", "Spend 12m"])
    ws.append(["A", dt.datetime(2026, 11, 1), 6, 9000])
    ws.append(["B", dt.datetime(2026, 11, 1), 6, 0])
    path = tmp_path / "placeholder.xlsx"
    wb.save(path)
    assert b'fullCalcOnLoad="1"' in zipfile.ZipFile(path).read("xl/workbook.xml")
    _set_cell_xml(path, "D3", '<c r="D3"><f>4500*2</f><v>0</v></c>')
    rep = recalc(path, evaluator, as_of=AS_OF)
    rows = [(p.row, p.column, p.message, p.severity) for p in rep.problems if p.code == "row"]
    assert rows == [(3, "Spend 12m", "the formula in D3 was saved by a program that does not calculate "
                                     "(its value is only a placeholder)", "error")]
    got = [list(r) for r in openpyxl.load_workbook(path)["Customers"].iter_rows(values_only=True)]
    assert got[1][4] == "High value" and got[2][4] is None  # the good row is computed, the other left blank
    assert got[2][3] == "=4500*2"


def test_a_case_one_minute_past_its_deadline_is_overdue_everywhere(tmp_path, evaluator):
    """In the column, in its red format's test (>0) and in the summary's count."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Cases"
    ws.append(["Case ID", "Opened at", "Severity", "Case type", "Status", "Tier"])
    ws.append(["K1", dt.datetime(2026, 11, 20, 9), "Normal", "Complaint", "Open", "VIP"])
    ws.append(["K2", dt.datetime(2026, 11, 23, 9, 30), "Normal", "Complaint", "Open", "VIP"])
    path = tmp_path / "late.xlsx"
    wb.save(path)
    due = evaluator.evaluate([{"severity": "Normal", "kind": "Complaint", "status": "Open", "tier": "VIP",
                               "opened_at": dt.datetime(2026, 11, 20, 9)}], ["escalation"], AS_OF).columns["respond_by"][0]
    as_of = due + dt.timedelta(minutes=1)
    rep = recalc(path, evaluator, as_of=as_of)
    book = openpyxl.load_workbook(path)
    got = [list(r) for r in book["Cases"].iter_rows(values_only=True)]
    late = got[1][got[0].index("Days overdue")]
    assert late == round(1 / 1440, 6) and got[2][got[0].index("Days overdue")] is None
    col = openpyxl.utils.get_column_letter(got[0].index("Days overdue") + 1)
    assert book["Cases"][f"{col}2"].number_format == "0.00"
    rules = [r for cf in book["Cases"].conditional_formatting for r in cf.rules]
    assert any(f"${col}2>0" in (r.formula or [""])[0] for r in rules)  # the red test, true for 1/1440
    assert rep.sheets[0].overdue == 1
    summary = [list(r) for r in book["CX summary"].iter_rows(values_only=True)]
    head = next(i for i, r in enumerate(summary) if r[:4] == ["Sheet", "Rows", "Overdue", "Problems"])
    assert summary[head + 1][0] == "Cases" and summary[head + 1][2] == 1
    by_owner = next(i for i, r in enumerate(summary) if r[0] == "Cases: Respond by, per Owner")
    assert summary[by_owner + 1][:4] == ["Owner", "Overdue", "Due today", "Due this week"]
    assert summary[by_owner + 2][:4] == ["Management", 1, 0, 0]


def test_a_contact_due_today_is_due_not_overdue(tmp_path, evaluator):
    """Next contact is a day: at 10:00 on that day it is due today, not overdue."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Last contact"])
    row = {"last_purchase": dt.datetime(2026, 11, 1), "frequency": 1, "monetary": 100, "last_contact": dt.datetime(2026, 1, 1)}
    every = evaluator.evaluate([row], ["contact"], AS_OF).columns["every"][0]
    last = dt.datetime.combine(AS_OF.date(), dt.time()) - dt.timedelta(seconds=every.total_seconds())
    ws.append(["A", row["last_purchase"], 1, 100, last])
    path = tmp_path / "today.xlsx"
    wb.save(path)
    rep = recalc(path, evaluator, as_of=AS_OF)
    got = [list(r) for r in openpyxl.load_workbook(path)["Customers"].iter_rows(values_only=True)]
    nxt = got[1][got[0].index("Next contact")]
    assert (nxt.date() if isinstance(nxt, dt.datetime) else nxt) == AS_OF.date()
    assert got[1][got[0].index("Days overdue")] is None and rep.sheets[0].overdue == 0
    counts = rep.sheets[0].due["Next contact"]["counts"]
    assert sum(c[0] for c in counts.values()) == 0 and sum(c[1] for c in counts.values()) == 1


@given(st.one_of(st.integers(1_048_000, 1_050_100), st.integers(1, 10**9)), st.sampled_from(["", "A", "Z", "AB", "XFD", "XFE", "ZZZ"]))
def test_a_reference_is_beyond_the_grid_exactly_when_its_row_or_column_is(row, letters):
    # the fast scan's verdict on a 7-digit-or-longer row or a 3-letter column: one row or column out is out
    from cxrules.xlsx_read import _BEYOND, MAX_COL, MAX_ROW

    col = 0
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    chunk = b'<c r="%s%d">' % (letters.encode(), row)
    if len(str(row)) >= 7 or len(letters) == 3:
        assert bool(_BEYOND.search(chunk)) == (row > MAX_ROW or col > MAX_COL)
