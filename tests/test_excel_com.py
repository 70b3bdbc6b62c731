"""The worksheet functions fed exactly what Excel hands them through COM and xlwings' UDF
conversion (tests/com.py says where each value comes from), one test per way they broke."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from decimal import Decimal

import pytest

pytest.importorskip("xlwings", reason="the Excel layer needs xlwings 0.37.8, which needs Python 3.11+")

import com  # noqa: E402
from com import BUSY, MAX_ROWS, MISSING, book, call, err, read_arg, serial, sheet, xlfunc
from cxrules import excel, rulesets
from cxrules.evaluation import Evaluator

AS_OF = dt.datetime(2026, 11, 23, 10, 0)
D = dt.datetime(2026, 11, 13)  # a date-formatted cell: COM hands a datetime


@pytest.fixture(autouse=True)
def com_and_bundled_rules(monkeypatch):
    com.com_engine(monkeypatch)
    monkeypatch.setenv("CXRULES_RULES", str(rulesets.bundled_rules_dir()))
    yield
    import xlwings as xw

    if hasattr(xw.Book, "_mock_caller"):
        del xw.Book._mock_caller


def customers(*rows):
    return book(sheet("Customers", [["Last purchase", "Orders 12m", "Spend 12m"], *rows]))


def cols(b, *letters, rows=None):
    s = b.sheets[0]
    return [s.range(f"{c}:{c}") if rows is None else s.range(f"{c}{rows[0]}:{c}{rows[1]}") for c in letters]


# ------------------------------------------------------------------ every kind of cell
def test_each_kind_of_cell_reaches_its_row_as_what_it_is():
    b = customers(
        [D, 6.0, 8000.0],                                 # a date cell, numbers as floats
        [serial(D), 6.0, Decimal("8000.00")],             # a serial without date format; a currency cell
        [None, None, None],                               # blank
        [D, True, 8000.0],                                # TRUE
        ["2026-11-13", "6", " 8000 "],                    # text
        [D, err("#N/A"), 8000.0],                         # a classic error (xlwings: text)
        [D, err("#CALC!"), 8000.0],                       # a newer one (xlwings: an int)
    )
    got = call("CX_TIER", *cols(b, "A", "B", "C"), MISSING, MISSING, AS_OF)
    assert got == [["Tier"], ["High value"], ["High value"], [""],
                   ["#CX: orders_12m: 'True' is not a number"], ["High value"],
                   ["#CX: orders_12m: the cell holds the Excel error #N/A"],
                   ["#CX: orders_12m: the cell holds the Excel error #CALC!"]]


@pytest.mark.parametrize("code", sorted(com.XL_CV_ERROR))
def test_every_excel_error_is_that_error_never_a_number(code):
    # orders = #CALC! used to give "High value": the int read as orders
    b = customers([D, 6.0, 8000.0], [D, err(code), 8000.0])
    got = call("CX_TIER", *cols(b, "A", "B", "C"), MISSING, MISSING, AS_OF)
    assert got[2] == [f"#CX: orders_12m: the cell holds the Excel error {code}"]
    assert got[1] == ["High value"]


def test_an_error_without_a_documented_code_is_still_an_error():
    b = customers([D, BUSY, 8000.0])
    assert call("CX_TIER", *cols(b, "A", "B", "C"), MISSING, MISSING, AS_OF)[1] == [
        "#CX: orders_12m: the cell holds an Excel error (code 2051)"]


@pytest.mark.parametrize("code", ["#N/A", "#SPILL!", "#BLOCKED!"])
def test_an_error_in_a_one_cell_argument_is_one_message(code):
    b = customers([D, 6.0, 8000.0])
    assert call("CX_TIER", *cols(b, "A", "B", "C"), MISSING, MISSING, err(code)) == f"#CX: as_of: the cell holds the Excel error {code}"
    assert call("CX_DUE", D, "4h", err(code)) == f"#CX: calendar: the cell holds the Excel error {code}"
    assert call("CX_DECIDE", err(code), b.sheets[0].range("A1:C2")) == f"#CX: decision: the cell holds the Excel error {code}"


def test_omitted_arguments_and_array_constants_as_excel_passes_them():
    assert call("CX_NPS", ((9.0,), (3.0,), (None,), (7.0,))) == [["Promoter"], ["Detractor"], [""], ["Passive"]]
    assert call("CX_DUE", D, 1.0) == dt.date(2026, 11, 16)  # calendar omitted: business, Friday + 1 working day
    assert call("CX_TIER", D, 6.0, 8000.0, MISSING, MISSING, AS_OF) == "High value"


# ------------------------------------------------------------------ texts in returned arrays
def _units(s: str) -> int:
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


@pytest.fixture
def long_note(tmp_path, monkeypatch):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "note.yaml").write_text(
        "decision: note\nhit: first\ninputs:\n  score: {type: number, columns: [Score]}\noutputs:\n  note: {type: text}\n"
        f'rules:\n  - ["> 5", "{"Z" * 300}"]\n  - ["-", short]\n', encoding="utf-8")
    monkeypatch.setenv("CXRULES_RULES", str(folder))


def test_a_text_of_300_characters_comes_back_shorter_than_256(long_note):
    # one string over 255 characters turns the whole returned array into #VALUE! (xlwings issue 456)
    got = call("CX_DECIDE", "note", ((("Score",), (9.0,), (1.0,))))
    assert got[0] == ["Note"] and got[2] == ["short"]
    assert len(got[1][0]) < 256 and _units(got[1][0]) <= 254
    assert got[1][0] == "Z" * 253 + "\u2026"  # cut where it shows: the ellipsis says there was more
    one = call("CX_EXPLAIN", "note", ((("Score", 9.0),)))
    assert _units(one) <= 254 and one.startswith("rule row 1 fired (note.yaml:") and one.endswith("\u2026")


def test_cx_decisions_the_first_step_fits_every_cell():
    got = call("CX_DECISIONS")
    longest = max((c for r in got for c in r if isinstance(c, str)), key=_units)
    assert _units(longest) == 254 and longest.endswith("\u2026")  # the tier decision's 'Reads' is ~330 characters
    assert all(_units(c) <= 254 for r in got for c in r if isinstance(c, str))


def test_characters_past_the_basic_plane_count_twice():
    s = "\U0001F600" * 200  # 400 UTF-16 units
    got = excel.fit_text(s)
    assert _units(got) <= 254 and got.endswith("\u2026") and got[:-1] == "\U0001F600" * 126


# ------------------------------------------------------------------ settings read at each call
def _two_rule_folders(tmp_path):
    """A: the bundled rules; B: VIP from 300,000 instead of 500,000."""
    a, b = tmp_path / "A", tmp_path / "B"
    shutil.copytree(rulesets.bundled_rules_dir(), a)
    shutil.copytree(rulesets.bundled_rules_dir(), b)
    tier = b / "tier.yaml"
    tier.write_text(tier.read_text(encoding="utf-8").replace('">= 500000"', '">= 300000"'), encoding="utf-8")
    return a, b


def _conf_book(folder):
    return book(sheet("Customers", [["Last purchase", "Orders 12m", "Spend 12m"], [D, 12.0, 400000.0]]),
                sheet("cxrules.conf", [["CXRULES_RULES", str(folder)]]))


def test_the_workbook_rules_folder_is_read_at_each_call(tmp_path, monkeypatch):
    a, b = _two_rule_folders(tmp_path)
    monkeypatch.setenv("CXRULES_RULES", str(a))  # as the old add-in left it in the server's environment
    for folder, tier in ((b, "VIP"), (a, "High value"), (b, "VIP")):  # the sheet edited between calls
        wb = _conf_book(folder)
        s = wb.sheets[0]
        assert call("CX_TIER", s["A2"], s["B2"], s["C2"], MISSING, MISSING, AS_OF, caller=s["E2"]) == tier


def test_the_add_in_settings_file_is_read_at_each_call(tmp_path, monkeypatch):
    a, b = _two_rule_folders(tmp_path)
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "profile"))
    conf = tmp_path / "profile" / ".cxrules" / "cxrules.conf"
    conf.parent.mkdir(parents=True)
    wb = book(sheet("Customers", [["x"]]))
    caller = wb.sheets[0]["E2"]
    for folder, tier in ((a, "High value"), (b, "VIP")):
        conf.write_text(f'"Interpreter_Win","C:\\py\\pythonw.exe"\n"CXRULES_RULES","{folder}"\n', encoding="utf-8")
        assert call("CX_TIER", D, 12.0, 400000.0, MISSING, MISSING, AS_OF, caller=caller) == tier
    assert excel.settings(wb).source == str(conf)


def test_the_workbook_mapping_is_read_at_each_call():
    data = [["Date of last buy", "Bestellungen", "Umsatz"], [D, 6.0, 8000.0]]
    plain = book(sheet("Customers", data))
    msg = call("CX_DECIDE", "tier", plain.sheets[0].range("A:C"), AS_OF, caller=plain.sheets[0]["E1"])
    assert msg.startswith("#CX: no header in the first row names an input")
    mapped = book(sheet("Customers", data), sheet("CX settings", [["Header", "Reads as"], ["Umsatz", "monetary"],
                                                                   ["Date of last buy", "last_purchase"],
                                                                   ["Bestellungen", "frequency"]]))
    got = call("CX_DECIDE", "tier", mapped.sheets[0].range("A:C"), AS_OF, caller=mapped.sheets[0]["E1"])
    assert got[1] == ["High value", "RFM high value"]
    s = mapped.sheets[0]  # and a header row of per-decision arguments names them too
    assert call("CX_TIER", s.range("A:A"), s.range("B:B"), s.range("C:C"), MISSING, MISSING, AS_OF, caller=s["E1"]) == [
        ["Tier"], ["High value"]]


# ------------------------------------------------------------------ whole columns and tables
N = 10_000


def big_customers():
    rows = []
    for i in range(N):
        if i % 1000 == 500:
            rows.append([None, None, None])  # a blank row among the data
        else:
            rows.append([D - dt.timedelta(days=i % 300), float(i % 15), float((i * 37) % 9000) * 10])
    return customers(*rows)


def test_a_whole_column_is_cut_to_the_used_rows_before_it_is_read():
    b = big_customers()
    options = xlfunc("CX_TIER")["args"][0]["options"]
    assert len(read_arg(b.sheets[0].range("B:B"), options)) == N + 1  # header and data: what COM reads
    assert len(read_arg(b.sheets[0].range("B:B"), {"ndim": 2, "err_to_str": True})) == MAX_ROWS  # xlwings' plain reader
    assert len(read_arg(b.sheets[0].range("B5:B20000"), options)) == N + 1 - 4  # a range below the data too


def test_a_whole_column_call_has_its_header_and_rows_where_the_sheet_has_them(monkeypatch):
    b = big_customers()
    whole = call("CX_TIER", *cols(b, "A", "B", "C"), MISSING, MISSING, AS_OF)
    body = call("CX_TIER", *cols(b, "A", "B", "C", rows=(2, N + 1)), MISSING, MISSING, AS_OF)
    assert whole[0] == ["Tier"]  # the header row gets the output's header
    assert whole[1:] == body  # then row for row what the data rows give
    assert whole[501] == [""]  # the blank row 502 stays blank
    # and only those rows reach the evaluator, never the sheet's million (bench/excel.py has the timings)
    seen = []
    evaluate = Evaluator.evaluate
    monkeypatch.setattr(Evaluator, "evaluate", lambda self, rows, *a, **k: seen.append(len(rows)) or evaluate(self, rows, *a, **k))
    call("CX_TIER", *cols(b, "A", "B", "C"), MISSING, MISSING, AS_OF)
    assert seen == [N - N // 1000]  # the data rows, the blank ones not even handed over


def test_a_million_rows_handed_over_untrimmed_are_not_walked_row_by_row(monkeypatch):
    # what a caller that does not trim hands over (xlwings' own reader): the blank tail is
    # found by comparing slices at C speed, not by looking at each of its million rows
    b = big_customers()
    plain = {"ndim": 2, "err_to_str": True}
    a, o, s = (read_arg(r, plain) for r in cols(b, "A", "B", "C"))
    assert len(a) == MAX_ROWS
    looked = []
    blank_row = excel._blank_row
    monkeypatch.setattr(excel, "_blank_row", lambda r: looked.append(1) or blank_row(r))
    got = excel.CX_TIER(a, o, s, None, None, AS_OF)
    assert got == call("CX_TIER", *cols(b, "A", "B", "C"), MISSING, MISSING, AS_OF)
    assert len(looked) < 3 * 1000


def test_header_rows_are_recognised_in_every_per_decision_function():
    b = book(sheet("Cases", [
        [None, None, None, None],
        ["Opened at", "Severity", "Status", "NPS score"],
        [dt.datetime(2026, 11, 20, 17), "Normal", "Open", 9.0],
        [None, None, None, None],
        [dt.datetime(2026, 11, 22, 9), "Urgent", "Closed", 3.0],
    ]))
    s = b.sheets[0]
    a, sev, st, nps = (s.range(f"{c}:{c}") for c in "ABCD")
    assert call("CX_LEVEL", a, st, AS_OF) == [[""], ["Level"], [1], [""], [0]]  # 65 hours open; a closed case
    assert call("CX_NPS", nps) == [[""], ["NPS group"], ["Promoter"], [""], ["Detractor"]]
    assert call("CX_DEADLINES", a, sev)[:3] == [["", ""], ["Respond by", "Resolve by"],
                                               [dt.datetime(2026, 11, 23, 17), dt.datetime(2026, 11, 25, 17)]]
    assert call("CX_DUE", a, "1d")[:3] == [[""], ["Due"], [dt.datetime(2026, 11, 23, 17)]]
    # a table column without its header: the first row is data
    assert call("CX_NPS", s.range("D3:D5")) == [["Promoter"], [""], ["Detractor"]]


def test_a_header_in_chinese_gets_the_chinese_header():
    b = book(sheet("客户", [["最近购买日期", "消费次数", "消费金额"], [D, 6.0, 8000.0]]))
    assert call("CX_TIER", *cols(b, "A", "B", "C"), MISSING, MISSING, AS_OF) == [["客户层级"], ["High value"]]


def test_text_that_is_no_header_is_still_a_row_of_its_own():
    b = customers(["soon", 6.0, 8000.0])
    got = call("CX_TIER", *cols(b, "A", "B", "C"), MISSING, MISSING, AS_OF)
    assert got[0] == ["Tier"] and got[1][0].startswith("#CX: last_purchase: 'soon' is not a date")


# ------------------------------------------------------------------ now, today and as_of
def test_as_of_takes_now_today_and_a_cell_as_excel_passes_them():
    b = book(sheet("Cases", [["Opened at", "Status", "As of"], [dt.datetime(2026, 11, 20, 9), "Open", AS_OF]]))
    s = b.sheets[0]
    assert call("CX_LEVEL", s["A2"], s["B2"], serial(AS_OF)) == 2  # NOW() written in the call: a serial number
    assert call("CX_LEVEL", s["A2"], s["B2"], serial(dt.date(2026, 11, 28))) == 3  # TODAY(): a whole number
    assert call("CX_LEVEL", s["A2"], s["B2"], s["C2"]) == 2  # a cell holding NOW(), date-formatted
    assert call("CX_LEVEL", s["A2"], s["B2"], "2026-11-20 10:00") == 0


def test_cx_now_is_volatile_and_on_the_rules_clock(monkeypatch):
    monkeypatch.setattr(excel, "now_in", lambda tz: dt.datetime(2026, 11, 23, 10, 0) if tz == "Asia/Shanghai" else None)
    assert call("CX_NOW") == dt.datetime(2026, 11, 23, 10, 0)
    assert xlfunc("CX_NOW")["volatile"] is True
    b = book(sheet("Cases", [["Opened at", "Status"], [dt.datetime(2026, 11, 20, 9), "Open"]]))
    s = b.sheets[0]
    assert call("CX_LEVEL", s["A2"], s["B2"], serial(call("CX_NOW"))) == 2  # =CX_LEVEL(A2, B2, CX_NOW())


def test_functions_that_depend_on_now_say_how_to_keep_them_current():
    for name in ("CX_TIER", "CX_NEXT_CONTACT", "CX_LEVEL", "CX_DECIDE", "CX_EXPLAIN"):
        doc = next(a["doc"] for a in xlfunc(name)["args"] if a["name"] == "as_of")
        assert all(w in doc for w in ("NOW()", "TODAY()", "CX_NOW()")), name


def test_the_calling_cell_is_never_an_argument_in_excel():
    for f in excel.FUNCTIONS:
        info = xlfunc(f.__name__)
        assert info["args"][-1]["name"] == "caller", f.__name__
    wrappers = (com.Path(__file__).resolve().parents[1] / "addin" / "vba" / "xlwings_udfs.bas").read_text(encoding="ascii")
    assert re.search(r"^Function CX_TIER\(last_purchase, orders_12m, spend_12m, Optional previous_tier, "
                     r"Optional rising_months, Optional as_of\)$", wrappers, re.M)
    assert "Array(last_purchase, orders_12m, spend_12m, previous_tier, rising_months, as_of, Nothing)" in wrappers


# ------------------------------------------------------------------ journeys
def test_cx_journey_spills_step_since_next_action_channel_owner_deferred_and_due():
    b = book(sheet("Customers", [["Last purchase", "Win-back survey sent on", "Replied on", "Tier", "Pushes sent 30d", "Eligible pushes 30d"],
                                 [dt.datetime(2026, 8, 1), dt.datetime(2026, 10, 30), None, "Regular", None, None],
                                 [dt.datetime(2026, 8, 1), dt.datetime(2026, 10, 30), dt.datetime(2026, 11, 2), None, None, None],
                                 [dt.datetime(2026, 8, 1), dt.datetime(2026, 10, 30), None, "High value", 8.0, 10.0],
                                 [None, None, None, None, None, None],
                                 ["early Nov", None, None, None, None, None]]))
    got = call("CX_JOURNEY", "lapsed", b.sheets[0].range("A1:F6"), dt.datetime(2026, 11, 7, 9))
    assert got[0] == ["Win-back journey: step", "Win-back journey: since", "Win-back journey: next action", "Win-back journey: channel",
                      "Win-back journey: owner", "Win-back journey: deferred", "Win-back journey: due"]
    assert got[1] == ["CNY 50-off-200 coupon", dt.date(2026, 11, 6), "Send a CNY 50 off 200 coupon", "SMS", "", "", dt.date(2026, 11, 6)]
    assert got[2][:3] == ["Replied to the survey", dt.date(2026, 11, 2), ""]
    assert got[3][5] == "Deferred - high value is reached on at most 70 % of eligible pushes"
    assert got[4] == [""] * 7
    assert got[5][0].startswith("#CX: ") and "early Nov" in got[5][0]
    assert call("CX_JOURNEY", "tier", b.sheets[0].range("A1:F2")).startswith("#CX: 'tier' is a decision, not a journey")
    why = call("CX_EXPLAIN", "lapsed", b.sheets[0].range("A1:F3"), dt.datetime(2026, 11, 7, 9))
    assert why[0] == ["journey 'lapsed' (journeys.yaml:82): lapsed_step=CNY 50-off-200 coupon, lapsed_since=2026-11-06, "
                      "lapsed_next_action=Send a CNY 50 off 200 coupon, lapsed_channel=SMS, lapsed_due=2026-11-06"]
    assert call("CX_EXPLAIN", "lapsed", b.sheets[0].range("A1:F2"), dt.datetime(2026, 10, 1)) == "not in journey 'lapsed' (journeys.yaml:82) as of this moment"
