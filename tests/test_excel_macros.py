"""The ribbon's macros, run against a Book built from an xlwings client payload.

`xw.Book(json=...)` is xlwings' remote-interpreter book; `set_mock_caller()` makes it what
`xw.Book.caller()` returns, and `book.json()` lists the actions Excel would apply.
"""
import datetime as dt
import shutil

import pytest

pytest.importorskip("xlwings", reason="the Excel layer needs xlwings 0.37.8, which needs Python 3.11+")
import xlwings as xw

from cxrules import excel, rulesets

AS_OF = dt.datetime(2026, 11, 23, 10, 0)


def iso(d):
    if not isinstance(d, dt.datetime):
        d = dt.datetime(d.year, d.month, d.day)
    return d.isoformat() + ".000Z"


def sheet(name, rows):
    width = max(len(r) for r in rows)
    values = [[("" if v is None else iso(v) if isinstance(v, dt.date) else v) for v in r] + [""] * (width - len(r)) for r in rows]
    return {"name": name, "values": values, "pictures": [], "tables": []}


CUSTOMERS = [
    ["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Last contact", "First purchase", "Previous tier"],
    ["Ann", dt.date(2026, 11, 13), 6, 8000, dt.date(2026, 11, 1), dt.date(2024, 1, 5), None],
    ["Bo", dt.date(2026, 11, 20), 12, 620000, dt.date(2026, 10, 1), dt.date(2020, 3, 1), "VIP"],
    [None, None, None, None, None, None, None],
    ["Cy", "not a date", 1, 100, dt.date(2026, 11, 1), dt.date(2026, 1, 1), None],
]
CASES = [
    ["Case", "Severity", "Tier", "Case type", "Opened at", "Status"],
    ["C-1", "Urgent", "Regular", "Question", dt.datetime(2026, 11, 10, 9), "Open"],  # long overdue
    ["C-2", "Normal", "VIP", "Complaint", dt.datetime(2026, 11, 23, 9), "Open"],  # due later today
    ["C-3", "Minor", "Regular", "Question", dt.datetime(2026, 11, 2, 9), "Closed"],  # closed: never overdue
]


def payload(active=0, extra=()):
    sheets = [sheet("Customers", CUSTOMERS), sheet("Cases", CASES), sheet("Notes", [["Anything", "else"]]), *extra]
    return {
        "client": "Microsoft Office Scripts",
        "version": xw.__version__,
        "book": {"name": "Ops.xlsx", "active_sheet_index": active, "selection": "A1"},
        "names": [],
        "sheets": sheets,
    }


def remote_engine():
    """xlwings registers its remote engine at import if a key is set; with the key set
    only here, register it now (the import validates the key again)."""
    if "remote" not in [e.name for e in xw.engines]:
        from xlwings.pro import _xlremote

        xw.engines.add(xw.Engine(impl=_xlremote.engine))


@pytest.fixture(autouse=True)
def setup(monkeypatch):
    monkeypatch.setenv("XLWINGS_LICENSE_KEY", "noncommercial")
    remote_engine()
    monkeypatch.setenv("CXRULES_RULES", str(rulesets.bundled_rules_dir()))
    monkeypatch.setattr(excel, "now_in", lambda tz: AS_OF)
    yield
    if hasattr(xw.Book, "_mock_caller"):
        del xw.Book._mock_caller


def caller(active=0, extra=()):
    book = xw.Book(json=payload(active, extra))
    book.set_mock_caller()
    return book


def actions(book, func=None, sheet=None):
    out = book.json()["actions"]
    return [a for a in out if (func is None or a["func"] == func) and (sheet is None or a["sheet_position"] == sheet)]


def column_values(book, sheet, header):
    """The values the actions write under a header written on row 1 of `sheet`."""
    heads = [a for a in actions(book, "setValues", sheet) if a["start_row"] == 0 and a["values"] == [[header]]]
    assert heads, f"no header {header!r} written on sheet {sheet}"
    c = heads[-1]["start_column"]
    body = [a for a in actions(book, "setValues", sheet) if a["start_column"] == c and a["start_row"] == 1]
    return c, [r[0] for r in body[-1]["values"]]


def alerts(book):
    return [a["args"][0] for a in actions(book, "alert")]


# ------------------------------------------------------------------ Recalculate
def test_recalculate_writes_values_number_formats_and_colours():
    book = caller()
    report = excel.recalculate()
    assert [s.sheet for s in report.sheets] == ["Customers", "Cases"]
    assert report.skipped == ["Notes"]

    # the client receives dates as text; the number format makes Excel show them as dates
    _, tiers = column_values(book, 0, "Tier")
    assert tiers == ["High value", "VIP", "", ""]  # a blank row, and a bad row (listed on Issues)
    c_next, nexts = column_values(book, 0, "Next contact")
    assert nexts[:2] == ["2026-11-08", "2026-10-15"]
    fmts = [(a["start_column"], a["args"][0]) for a in actions(book, "setNumberFormat", 0)]
    assert (c_next, "yyyy-mm-dd") in fmts

    _, respond = column_values(book, 1, "Respond by")
    assert respond == ["2026-11-10 11:00:00", "2026-11-23 14:30:00", "2026-11-03 09:00:00"]
    c_resolve, resolve = column_values(book, 1, "Resolve by")
    assert (c_resolve, "yyyy-mm-dd hh:mm") in [(a["start_column"], a["args"][0]) for a in actions(book, "setNumberFormat", 1)]
    c_late, late = column_values(book, 1, "Days overdue")
    assert late == [round(12 + 23 / 24, 6), "", ""]  # 12 days 23 hours, to the minute
    c_level, levels = column_values(book, 1, "Level")
    assert levels == [3, 0, 0]

    cfs = actions(book, "addConditionalFormat", 1)
    by_formula = {a["args"][0]["formula"]: a for a in cfs}
    lvl = f"=INDEX(${chr(65 + c_level)}:${chr(65 + c_level)},ROW())"
    assert by_formula[lvl + "=3"]["args"][0]["fill_color"] == "#ffc7ce"
    assert by_formula[lvl + "=1"]["args"][0]["fill_color"] == "#fff2a8"
    assert by_formula[lvl + "=3"]["start_row"] == 1 and by_formula[lvl + "=3"]["row_count"] == 3
    late_col = chr(65 + c_late)
    overdue = by_formula[f"=AND(ISNUMBER(INDEX(${late_col}:${late_col},ROW())),INDEX(${late_col}:${late_col},ROW())>0)"]
    assert overdue["args"][0]["fill_color"] == "#ffc7ce" and overdue["start_column"] == 0  # the whole row
    assert overdue["column_count"] == by_formula[lvl + "=3"]["column_count"] > c_late


def test_recalculate_adds_summary_and_issues_sheets_and_says_what_it_did():
    book = caller()
    excel.recalculate()
    added = [a["args"][1] for a in actions(book, "addSheet")]
    assert added == ["CX summary", "Issues"]
    summary_pos, issues_pos = 3, 4
    summary = actions(book, "setValues", summary_pos)[0]["values"]
    assert summary[0][0] == "CX summary"
    assert any(r[:2] == ["Customers", 3] for r in summary)
    issues = actions(book, "setValues", issues_pos)[0]["values"]
    assert issues[0][:5] == ["Sheet", "Row", "Column", "Severity", "Problem"]
    assert ["Customers", 5, "Last purchase", "error"] == issues[1][:4]
    assert any(a["args"] == [True] or a["args"] == ["bold", True] for a in actions(book, "setFontProperty", issues_pos))
    assert actions(book, "activateSheet")[-1]["args"] == [0]  # back where the person was
    msg = alerts(book)[-1]
    assert msg.startswith("Recalculated 6 rows on 2 sheet(s) as of 2026-11-23 10:00; 3 overdue; 1 problem(s)")  # 2 contacts, 1 case


def test_recalculate_replaces_its_own_sheets_on_the_next_run():
    book = caller(extra=[sheet("CX summary", [["old"]]), sheet("Issues", [["old"]])])
    excel.recalculate()
    assert not actions(book, "addSheet")
    assert {a["sheet_position"] for a in actions(book, "sheetClear")} == {3, 4}


def test_recalculate_with_nothing_to_do_changes_nothing():
    book = xw.Book(json={**payload(), "sheets": [sheet("Notes", [["Anything"], ["else"]])]})
    book.set_mock_caller()
    excel.recalculate()
    assert not actions(book, "setValues")
    assert "nothing was changed" in alerts(book)[-1]


def test_recalculate_with_broken_rules_shows_a_message_not_a_traceback(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(rulesets.bundled_rules_dir(), rules)
    (rules / "tier.yaml").write_text("decision: tier\nhit: maybe\n", encoding="utf-8")
    monkeypatch.setenv("CXRULES_RULES", str(rules))
    book = caller()
    excel.recalculate()
    assert not actions(book, "setValues")
    assert "have errors" in alerts(book)[-1] and "Check rules" in alerts(book)[-1]


def test_a_bug_in_a_macro_becomes_a_message(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaput")

    monkeypatch.setattr(excel, "plan", boom)
    book = caller()
    excel.recalculate()
    assert "This is a bug" in alerts(book)[-1] and "kaput" in alerts(book)[-1]


# ------------------------------------------------------------------ Flag overdue
def test_flag_overdue_colours_whole_rows_of_the_active_sheet_only():
    book = caller(active=1)
    report = excel.flag_overdue()
    assert [s.sheet for s in report.sheets] == ["Cases"]
    assert not actions(book, "setValues", 0)  # other sheets untouched
    assert not actions(book, "addSheet")
    c_late, late = column_values(book, 1, "Days overdue")
    rows = [a for a in actions(book, "addConditionalFormat", 1) if ">0" in a["args"][0]["formula"]]
    assert len(rows) == 1
    cf = rows[0]
    assert cf["start_column"] == 0 and cf["start_column"] + cf["column_count"] - 1 >= c_late
    assert cf["args"][0]["fill_color"] == "#ffc7ce" and cf["args"][0]["font_color"] == "#9c0006"
    assert alerts(book)[-1] == "1 overdue row(s) on 'Cases' as of 2026-11-23 10:00, coloured red."


def test_flag_overdue_on_a_sheet_without_rule_columns():
    book = caller(active=2)
    excel.flag_overdue()
    assert not actions(book, "setValues")
    assert "has no columns the rules read" in alerts(book)[-1]


def test_flag_overdue_with_nothing_overdue(monkeypatch):
    monkeypatch.setattr(excel, "now_in", lambda tz: dt.datetime(2026, 11, 10, 9, 30))
    book = caller(active=1)
    excel.flag_overdue()
    assert alerts(book)[-1] == "No overdue rows on 'Cases'."


# ------------------------------------------------------------------ Check rules and Reload rules
def test_check_rules_reports_to_a_sheet():
    book = caller()
    excel.check_rules()
    assert [a["args"][1] for a in actions(book, "addSheet")] == ["CX rule check"]
    rows = actions(book, "setValues", 3)[0]["values"]
    assert rows[0][0].startswith("0 error(s)")
    assert rows[2][:5] == ["Severity", "File", "Line", "Decision", "Problem"]
    assert alerts(book)[-1].startswith("0 error(s)")


def test_check_rules_lists_errors_with_file_and_line(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(rulesets.bundled_rules_dir(), rules)
    nps = rules / "survey.yaml"
    nps.write_text(nps.read_text(encoding="utf-8").replace("hit: unique", "hit: sometimes"), encoding="utf-8")
    monkeypatch.setenv("CXRULES_RULES", str(rules))
    book = caller()
    excel.check_rules()
    rows = actions(book, "setValues", 3)[0]["values"]
    errors = [r for r in rows[3:] if r[0] == "error"]
    assert errors and errors[0][1] == "survey.yaml" and isinstance(errors[0][2], int)
    assert "sometimes" in errors[0][4]
    assert not rows[0][0].startswith("0 error(s)")


def test_check_rules_runs_the_examples(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(rulesets.bundled_rules_dir(), rules)
    nps = rules / "survey.yaml"
    nps.write_text(nps.read_text(encoding="utf-8").replace("{score: 10, nps_group: Promoter", "{score: 10, nps_group: Passive"), encoding="utf-8")
    monkeypatch.setenv("CXRULES_RULES", str(rules))
    book = caller()
    excel.check_rules()
    rows = actions(book, "setValues", 3)[0]["values"]
    failed = [r for r in rows[3:] if r[0] == "example"]
    assert len(failed) == 1 and failed[0][1] == "survey.yaml" and "expected Passive, got Promoter" in failed[0][4]


def test_reload_rules_recalculates_and_confirms():
    book = caller()
    excel.reload_rules()
    assert actions(book, "calculate")
    assert alerts(book)[-1].startswith("Rules reloaded from ")


def test_every_macro_takes_no_arguments_and_uses_the_caller():
    import inspect

    for m in excel.MACROS:
        assert not inspect.signature(m).parameters, m.__name__
        assert m.__doc__
