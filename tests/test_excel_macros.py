"""The ribbon's macros on a live workbook, as Excel hands it over through COM (tests/com.py).

`xw.Book(json=...)` is xlwings' remote-engine book: `book.json()` lists, in order, the
actions Excel would apply, and com.Replay applies them to the cells.
"""
import datetime as dt
import re
import shutil

import pytest

pytest.importorskip("xlwings", reason="the Excel layer needs xlwings 0.37.8, which needs Python 3.11+")
import xlwings as xw

import com
from com import Replay, book, err, name, sheet, table
from cxrules import excel, excel_write, rulesets
from cxrules.evaluation import Evaluator
from cxrules.recalc import recalc

AS_OF = dt.datetime(2026, 11, 23, 10, 0)

CUSTOMERS = [
    ["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Last contact", "First purchase", "Previous tier"],
    ["Ann", dt.datetime(2026, 11, 13), 6.0, 8000.0, dt.datetime(2026, 11, 1), dt.datetime(2024, 1, 5), None],
    ["Bo", dt.datetime(2026, 11, 20), 12.0, 620000.0, dt.datetime(2026, 10, 1), dt.datetime(2020, 3, 1), "VIP"],
    [None, None, None, None, None, None, None],
    ["Cy", "not a date", 1.0, 100.0, dt.datetime(2026, 11, 1), dt.datetime(2026, 1, 1), None],
]
CASES = [
    ["Case", "Severity", "Tier", "Case type", "Opened at", "Status"],
    ["C-1", "Urgent", "Regular", "Question", dt.datetime(2026, 11, 10, 9), "Open"],  # long overdue
    ["C-2", "Normal", "VIP", "Complaint", dt.datetime(2026, 11, 23, 9), "Open"],  # due later today
    ["C-3", "Minor", "Regular", "Question", dt.datetime(2026, 11, 2, 9), "Closed"],  # closed: never overdue
]
NOTES = [["Anything", "else"]]


@pytest.fixture(autouse=True)
def setup(monkeypatch):
    com.com_engine(monkeypatch)
    monkeypatch.setenv("CXRULES_RULES", str(rulesets.bundled_rules_dir()))
    monkeypatch.setattr(excel, "now_in", lambda tz: AS_OF)
    yield
    if hasattr(xw.Book, "_mock_caller"):
        del xw.Book._mock_caller


def ops_book(active=0, extra=(), names=(), **kw):
    return book(sheet("Customers", CUSTOMERS), sheet("Cases", CASES), sheet("Notes", NOTES), *extra, names=names,
                active=active, **kw)


def actions(b, func=None, sheet=None):
    return [a for a in b.json()["actions"] if (func is None or a["func"] == func) and (sheet is None or a["sheet_position"] == sheet)]


def a1(a):
    """An action's range as Excel writes it (A1 or A1:B2)."""
    if a["start_row"] is None:
        return None
    r, c = a["start_row"] + 1, a["start_column"]
    top = f"{chr(65 + c)}{r}"
    if a["row_count"] == 1 and a["column_count"] == 1:
        return top
    return f"{top}:{chr(65 + c + a['column_count'] - 1)}{r + a['row_count'] - 1}"


def alerts(b):
    return [a["args"][0] for a in actions(b, "alert")]


def column(r: Replay, sheet_name, header, header_row=1):
    cells = r.values(sheet_name)
    c = next(c for (row, c), v in cells.items() if row == header_row and v == header)
    last = max(row for row, _ in cells)
    return c, [cells.get((row, c)) for row in range(header_row + 1, last + 1)]


# ------------------------------------------------------------------ Recalculate: the exact actions
@pytest.fixture
def level_rules(tmp_path, monkeypatch):
    """Only the escalation level: few enough actions to list them all."""
    folder = tmp_path / "rules"
    folder.mkdir()
    for f in ("fields.yaml", "calendars.yaml", "escalation_level.yaml"):
        shutil.copy(rulesets.bundled_rules_dir() / f, folder / f)
    monkeypatch.setenv("CXRULES_RULES", str(folder))
    return folder


def test_recalculate_applies_exactly_these_actions_in_order(level_rules):
    b = book(sheet("Cases", [["Case", "Opened at", "Status"],
                             ["C-1", dt.datetime(2026, 11, 10, 9), "Open"],
                             ["C-2", dt.datetime(2026, 11, 22, 9), "Open"],
                             ["C-3", dt.datetime(2026, 11, 2, 9), "Closed"]]),
             sheet("Notes", NOTES))
    excel.recalculate()
    got = []
    for a in actions(b):
        args = a["args"]
        if a["func"] == "addConditionalFormat":
            args = [args[0]["formula"], args[0]["fill_color"]]
        if a["func"] == "setValues":
            args = a["values"] if a["sheet_position"] == 0 else len(a["values"])
        if a["func"] == "alert":
            args = args[0].splitlines()[0]
        got.append((a["func"], a["sheet_position"], a1(a), args))
    lvl = {n: "_cxrules_if_" + excel_write.hashlib.sha1(f"=INDEX(Cases!$D:$D,ROW())={n}".encode()).hexdigest()[:10] for n in (1, 2, 3)}
    assert got == [
        # nothing is written before everything is computed; then Excel waits
        ("setScreenUpdating", None, None, [False]),
        ("setCalculation", None, None, ["Manual"]),
        # both new columns, header and values, in one write
        ("setValues", 0, "D1:E4", [["Level", "Notify"], [3, "Supervisor"], [1, "Pop-up"], [0, ""]]),
        ("setColumnWidth", 0, "D1", [10]),
        ("setColumnWidth", 0, "E1", [12.0]),
        # each colour: its test as an English formula in a defined name, the rule names the name
        ("namesAdd", 0, None, [lvl[1], "=INDEX(Cases!$D:$D,ROW())=1"]),
        ("addConditionalFormat", 0, "A2:E4", [f"={lvl[1]}", "#fff2a8"]),
        ("namesAdd", 0, None, [lvl[2], "=INDEX(Cases!$D:$D,ROW())=2"]),
        ("addConditionalFormat", 0, "A2:E4", [f"={lvl[2]}", "#ffd8a8"]),
        ("namesAdd", 0, None, [lvl[3], "=INDEX(Cases!$D:$D,ROW())=3"]),
        ("addConditionalFormat", 0, "A2:E4", [f"={lvl[3]}", "#ffc7ce"]),
        # the columns cxrules owns, as `cxrules recalc` records them
        ("namesAdd", 0, None, ["_cxrules_columns", "=Cases!$D$1,Cases!$E$1"]),
        ("addSheet", None, None, [2, "CX summary"]),
        ("namesAdd", 2, None, ["_cxrules_made", '="CX summary"']),
        ("setValues", 2, "A1:F28", 28),  # the summary (with its stamp rows), padded to its chart's height
        ("setFontProperty", 2, "A1", ["bold", True]),
        ("setFontProperty", 2, "A8:F8", ["bold", True]),
        ("setFontProperty", 2, "A11", ["bold", True]),
        ("setFontProperty", 2, "A17:B17", ["bold", True]),
        ("setRangeColor", 2, "A12", ["#FFF2A8"]),
        ("setFontProperty", 2, "A12", ["color", "#7F6000"]),
        ("setRangeColor", 2, "A13", ["#FFD8A8"]),
        ("setFontProperty", 2, "A13", ["color", "#7F3F00"]),
        ("setRangeColor", 2, "A14", ["#FFC7CE"]),
        ("setFontProperty", 2, "A14", ["color", "#9C0006"]),
        ("setRangeColor", 2, "A15", ["#FFC7CE"]),
        ("setFontProperty", 2, "A15", ["color", "#9C0006"]),
        ("setColumnWidth", 2, "A1", [18.6]),
        ("setColumnWidth", 2, "B1:D1", [10]),
        ("setColumnWidth", 2, "E1", [2]),
        ("addSheet", None, None, [3, "Issues"]),
        ("namesAdd", 3, None, ["_cxrules_made", '="Issues"']),
        ("setValues", 3, "A1:F2", 2),
        ("setFontProperty", 3, "A1:F1", ["bold", True]),
        ("setWrapText", 3, "A1:F2", [True]),
        ("setColumnWidth", 3, "A1", [14]),
        ("setColumnWidth", 3, "B1", [8]),
        ("setColumnWidth", 3, "C1", [18]),
        ("setColumnWidth", 3, "D1", [9]),
        ("setColumnWidth", 3, "E1", [60]),
        ("setColumnWidth", 3, "F1", [50]),
        ("freezePaneAtRange", 3, None, ["$A$2"]),
        ("activateSheet", 0, None, [0]),  # back where the person was
        # restored as they were, then the message
        ("setCalculation", None, None, ["Automatic"]),
        ("setScreenUpdating", None, None, [True]),
        ("alert", None, None, "Recalculated 3 rows on 1 sheet(s) as of 2026-11-23 10:00; 0 overdue."),
    ]


def test_screen_updating_and_calculation_come_back_after_a_failed_write(monkeypatch):
    def broken(sheet, ns):
        raise RuntimeError("disk full")

    monkeypatch.setattr(excel_write, "_write_new_sheet", broken)
    b = ops_book()
    excel.recalculate()
    funcs = [a["func"] for a in actions(b)]
    assert funcs[:2] == ["setScreenUpdating", "setCalculation"]
    assert [(a["func"], a["args"]) for a in actions(b)][-3:-1] == [("setCalculation", ["Automatic"]), ("setScreenUpdating", [True])]
    assert "disk full" in alerts(b)[-1] and "This is a bug" in alerts(b)[-1]
    assert funcs[-1] == "alert" and funcs.count("setScreenUpdating") == 2


def test_manual_calculation_is_left_manual():
    b = ops_book(calculation="Manual")
    excel.recalculate()
    assert not actions(b, "setCalculation")
    assert [a["args"] for a in actions(b, "setScreenUpdating")] == [[False], [True]]


def test_nothing_is_written_when_the_work_fails_before_writing(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaput")

    monkeypatch.setattr(excel, "plan", boom)
    b = ops_book()
    excel.recalculate()
    assert [a["func"] for a in actions(b)] == ["alert"]
    assert "This is a bug" in alerts(b)[-1] and "kaput" in alerts(b)[-1]


def test_conditional_formats_read_the_same_in_every_excel_language():
    # FormatConditions.Add reads its formula in the user's language and separator (UND(...;...)
    # in German); a bare defined name reads the same everywhere, and Names.Add reads English
    b = ops_book()
    excel.recalculate()
    cfs = actions(b, "addConditionalFormat")
    names = {a["args"][0]: a["args"][1] for a in actions(b, "namesAdd")}
    assert cfs
    for a in cfs:
        f = a["args"][0]["formula"]
        assert re.fullmatch(r"=_cxrules_if_[0-9a-f]{10}", f), f
        english = names[f[1:]]
        assert english.startswith("=") and ";" not in english and re.search(r"\b(INDEX|AND|ISNUMBER|ROW)\(", english)
    overdue = [v for v in names.values() if ">0" in v]
    assert overdue == ["=AND(ISNUMBER(INDEX(Customers!$O:$O,ROW())),INDEX(Customers!$O:$O,ROW())>0)",
                       "=AND(ISNUMBER(INDEX(Cases!$R:$R,ROW())),INDEX(Cases!$R:$R,ROW())>0)"]


def test_a_rerun_replaces_its_own_colour_rules_and_leaves_a_persons():
    first = book(sheet("Cases", CASES))
    excel.recalculate()
    ours = [("A2:R4", cf[4]["formula"]) for cf in Replay(first).sheet("Cases")["cf"]]
    legacy = ("A2:R4", "=INDEX($G:$G,ROW())=3")  # as the version before names wrote it
    mine = ("A2:A4", '=$A2="C-1"')
    b = book(sheet("Cases", CASES, rules=ours + [legacy, mine]))
    excel.recalculate()
    deleted = [a["args"][1]["formula"] for a in actions(b, "deleteConditionalFormat")]
    assert sorted(deleted) == sorted([f for _, f in ours] + [legacy[1]])
    assert len(actions(b, "addConditionalFormat")) == len(ours)  # one of each again, not one more


# ------------------------------------------------------------------ Recalculate: what lands in the cells
def test_recalculate_writes_values_number_formats_and_colours():
    b = ops_book()
    report = excel.recalculate()
    assert [s.sheet for s in report.sheets] == ["Customers", "Cases"]
    assert report.skipped == ["Notes"]
    r = Replay(b)
    _, tiers = column(r, "Customers", "Tier")
    assert tiers == ["High value", "VIP", None, None]  # a blank row, and a bad row (listed on Issues)
    c_next, nexts = column(r, "Customers", "Next contact")
    assert nexts[:2] == ["2026-11-08", "2026-10-15"]
    assert r.sheet("Customers")["formats"][(2, c_next)] == "yyyy-mm-dd"
    _, respond = column(r, "Cases", "Respond by")
    assert respond == ["2026-11-10 11:00:00", "2026-11-23 14:30:00", "2026-11-03 09:00:00"]
    c_resolve, _ = column(r, "Cases", "Resolve by")
    assert r.sheet("Cases")["formats"][(2, c_resolve)] == "yyyy-mm-dd hh:mm"
    c_late, late = column(r, "Cases", "Days overdue")
    assert late == [round(12 + 23 / 24, 6), None, None]  # 12 days 23 hours, to the minute
    assert r.sheet("Cases")["formats"][(2, c_late)] == "0.00"
    _, levels = column(r, "Cases", "Level")
    assert levels == [3, 0, 0]
    fills = [(cf[0], cf[1], cf[2], cf[3], cf[4]["fill_color"]) for cf in r.sheet("Cases")["cf"]]
    assert (2, 0, 3, c_late + 1, "#ffc7ce") in fills  # overdue: the whole row, A to the last result
    assert fills.count((2, 0, 3, c_late + 1, "#ffc7ce")) == 2  # level 3 is red too


def test_recalculate_adds_summary_and_issues_sheets_and_says_what_it_did():
    b = ops_book()
    excel.recalculate()
    r = Replay(b)
    assert [s["name"] for s in r.sheets] == ["Customers", "Cases", "Notes", "CX summary", "Contact plan", "Issues"]
    summary = r.grid("CX summary")
    assert summary[0][0] == "CX summary"
    assert any(row[:2] == ["Customers", 3] for row in summary)
    issues = r.grid("Issues")
    assert issues[0][:5] == ["Sheet", "Row", "Column", "Severity", "Problem"]
    assert issues[1][:4] == ["Customers", 5, "Last purchase", "error"]
    assert r.names[("Issues", "_cxrules_made")] == '="Issues"'
    msg = alerts(b)[-1].splitlines()
    assert msg[0] == "Recalculated 6 rows on 2 sheet(s) as of 2026-11-23 10:00; 3 overdue."  # 2 contacts, 1 case
    assert msg[1] == "Sheets: Customers (3 rows); Cases (3 rows)."
    assert msg[2] == "Skipped (no columns the rules read): Notes."
    assert msg[-1] == "1 problem(s) in all: see the Issues sheet."


def test_the_message_says_what_was_kept_and_what_did_not_run():
    cases = [row[:2] + row[3:] for row in CASES]  # no Tier column: the deadlines cannot run
    crm = [["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Tier"],
           ["Ann", dt.datetime(2026, 11, 13), 6.0, 8000.0, "Gold"]]  # the CRM's own tiers
    b = book(sheet("Customers", crm), sheet("Cases", cases))
    excel.recalculate()
    msg = alerts(b)[-1]
    assert "Kept as you wrote them: Customers E (column E ('Tier') holds data cxrules did not write" in msg
    assert "Did not run: Cases A (decision 'compensation_points' did not run" in msg
    assert Replay(b).values("Customers")[(2, 4)] == "Gold"


MEASURES = [["Measure date", "Department", "Net Promoter Score", "Churn rate (%)", "Negative feedback"]] + [
    [dt.datetime(2026, 11, 16 + k), "Delivery", nps, churn, neg]
    for k, (nps, churn, neg) in enumerate([(60, 4, 3), (60, 4, 3), (60, 4, 3), (60, 4, 3), (60, 5.5, 3), (60, 6, 3), (60, 7, 3), (57, 5.2, 12)])]


def test_recalculate_writes_the_alerts_over_measures_and_the_contact_plan():
    b = ops_book(extra=[sheet("Measures", MEASURES)])
    excel.recalculate()
    r = Replay(b)
    assert [s["name"] for s in r.sheets] == ["Customers", "Cases", "Notes", "Measures", "CX summary", "Contact plan", "Issues"]
    _, nps = column(r, "Measures", "NPS alert")
    _, churn = column(r, "Measures", "Churn alert")
    _, plan = column(r, "Measures", "Improvement plan")
    assert nps == [None] * 7 + ["Root-cause analysis"]  # 60 -> 57 a week later: -5 %
    assert churn == [None] * 6 + ["Churn above 5 % three days running"] * 2  # 11-21, 11-22 and 11-23 above 5 %
    assert plan == [None] * 7 + ["Department improvement plan"]  # 3 x 6 + 12 = 30 in the last 7 days
    _, due = column(r, "Measures", "Analysis due")
    assert due[-1] == "2026-11-24"  # 24 h after the day
    grid = r.grid("Contact plan")
    assert grid[0][0] == "Contact plan"
    head = next(i for i, row in enumerate(grid) if row[:2] == ["Tier", "Days overdue"])
    calls = [row for row in grid[head + 1:] if any(v is not None for v in row)]
    # Ann (High value, contact every 7 days from 11-01) and Bo (VIP, 14 days from 10-01) are overdue
    assert [(row[0], row[3], row[4], row[-1]) for row in calls] == [
        ("VIP", "Phone (account manager)", "Account manager", 3), ("High value", "Phone", "Account manager", 2)]


def test_recalculate_replaces_its_own_sheets_on_the_next_run():
    made = [name("_cxrules_made", '="CX summary"', 3), name("_cxrules_made", '="Contact plan"', 4),
            name("_cxrules_made", '="Issues"', 5)]
    b = ops_book(extra=[sheet("CX summary", [["old"]]), sheet("Contact plan", [["old"]]), sheet("Issues", [["old"]])], names=made)
    excel.recalculate()
    assert not actions(b, "addSheet")
    assert {a["sheet_position"] for a in actions(b, "sheetClear")} == {3, 4, 5}
    assert Replay(b).grid("Contact plan")[0][0] == "Contact plan"
    assert Replay(b).grid("Issues")[0][0] == "Sheet"


def test_a_persons_sheet_of_the_same_name_is_never_replaced():
    b = ops_book(extra=[sheet("Issues", [["my own notes"]])])
    report = excel.recalculate()
    r = Replay(b)
    assert r.grid("Issues") == [["my own notes"]]
    assert r.grid("Issues (2)")[0][0] == "Sheet"
    assert report.issues_sheet == "Issues (2)"
    assert "see the Issues (2) sheet" in alerts(b)[-1]
    taken = [p for p in report.problems if p.code == "sheet-name-taken"]
    assert taken and taken[0].message == "the workbook already has its own sheet 'Issues', so cxrules wrote 'Issues (2)'"


def test_a_formula_in_an_output_column_is_never_replaced():
    owned = name("_cxrules_columns", "=Cases!$G$1,Cases!$H$1", 1)  # Level and Notify: cxrules' own from an earlier run
    cases = [CASES[0] + ["Level", "Notify"], CASES[1] + [3.0, "Supervisor"], CASES[2] + [0.0, None], CASES[3] + [0.0, None]]
    b = book(sheet("Customers", CUSTOMERS), sheet("Cases", cases, formulas={(3, 6): "=IF(F3=\"Open\",1,0)"}), sheet("Notes", NOTES),
             names=[owned])
    report = excel.recalculate()
    r = Replay(b)
    cells = r.values("Cases")
    assert cells[(3, 6)] == '=IF(F3="Open",1,0)'  # the person's formula is still there
    assert (cells[(2, 6)], cells[(4, 6)]) == (3, 0)  # the rows around it are written
    assert not any(a["sheet_position"] == 1 and a["start_column"] <= 6 < a["start_column"] + a["column_count"]
                   and a["start_row"] <= 2 < a["start_row"] + a["row_count"] for a in actions(b, "setValues"))
    kept = [p for p in report.problems if p.code == "formula-kept"]
    assert [(p.sheet, p.row, p.column) for p in kept] == [("Cases", 3, "G")]
    assert ["Cases", 3, "G", "warning"] in [row[:4] for row in r.grid("Issues")]
    assert "Formulas kept: Cases G" in alerts(b)[-1]


def test_a_persons_data_under_an_output_header_is_kept():
    cases = [CASES[0] + ["Level"], CASES[1] + ["high"], CASES[2] + [None], CASES[3] + ["low"]]
    b = book(sheet("Cases", cases))
    report = excel.recalculate()
    cells = Replay(b).values("Cases")
    assert [cells.get((r, 6)) for r in (2, 3, 4)] == ["high", None, "low"]
    assert [p.column for p in report.problems if p.code == "column-kept"] == ["G"]


def test_ownership_is_recorded_and_the_next_run_writes_its_own_columns():
    b = ops_book()
    excel.recalculate()
    r = Replay(b)
    owned = {k: v for k, v in r.names.items() if k[1] == "_cxrules_columns"}
    assert set(owned) == {("Customers", "_cxrules_columns"), ("Cases", "_cxrules_columns")}
    assert owned[("Cases", "_cxrules_columns")].startswith("=Cases!$G$1,Cases!$H$1,")
    # the next run on that workbook: its own columns are rewritten, not kept as a person's
    sheets = [sheet(s["name"], [[s["cells"].get((i, j)) for j in range(20)] for i in range(1, 8)]) for s in r.sheets]
    made = [name(n, v, [s["name"] for s in r.sheets].index(scope)) for (scope, n), v in r.names.items() if scope]
    b2 = book(*sheets, names=made)
    report = excel.recalculate()
    assert not [p for p in report.problems if p.code == "column-kept"]
    assert not actions(b2, "addSheet")
    assert len([a for a in actions(b2, "setValues", 1) if a["start_column"] >= 6]) == 1  # all results in one write


def test_a_table_takes_the_new_columns():
    b = book(sheet("Cases", CASES, tables=[table("CaseList", "A1:F4")]))
    excel.recalculate()
    r = Replay(b)
    assert r.sheet("Cases")["tables"]["CaseList"] == "A1:R4"
    assert actions(b, "resizeTable")[0]["args"] == [0, "$A$1:$R$4"]


def test_a_mapped_header_inside_a_table_keeps_its_name():
    cases = [CASES[0] + ["Escalation"], *[row + [None] for row in CASES[1:]]]
    b = book(sheet("Cases", cases, tables=[table("CaseList", "A1:G4")]),
             sheet("CX settings", [["Header", "Reads as"], ["Escalation", "level"]]))
    excel.recalculate()
    r = Replay(b)
    assert r.values("Cases")[(1, 6)] == "Escalation"  # not renamed to Level: formulas may name it
    assert [r.values("Cases").get((i, 6)) for i in (2, 3, 4)] == [3, 0, 0]
    assert r.sheet("Cases")["tables"]["CaseList"] == "A1:R4"


def test_newer_excel_errors_in_a_sheet_are_errors():
    rows = [CUSTOMERS[0], CUSTOMERS[1][:2] + [err("#CALC!")] + CUSTOMERS[1][3:], CUSTOMERS[2]]
    b = book(sheet("Customers", rows))
    report = excel.recalculate()
    _, tiers = column(Replay(b), "Customers", "Tier")
    assert tiers == [None, "VIP"]  # not "High value" from reading the error as a number
    assert [(p.row, p.column, p.message) for p in report.problems if p.code == "row"][:1] == [
        (2, "Orders 12m", "the cell holds the Excel error #CALC!")]


def test_recalculate_with_nothing_to_do_changes_nothing():
    b = book(sheet("Notes", [["Anything"], ["else"]]))
    excel.recalculate()
    assert [a["func"] for a in actions(b)] == ["alert"]
    assert "nothing was changed" in alerts(b)[-1]


def test_recalculate_with_broken_rules_shows_a_message_not_a_traceback(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(rulesets.bundled_rules_dir(), rules)
    (rules / "tier.yaml").write_text("decision: tier\nhit: maybe\n", encoding="utf-8")
    monkeypatch.setenv("CXRULES_RULES", str(rules))
    b = ops_book()
    excel.recalculate()
    assert [a["func"] for a in actions(b)] == ["alert"]
    assert "have errors" in alerts(b)[-1] and "Check rules" in alerts(b)[-1]


def test_the_workbook_names_its_rules_folder(tmp_path):
    rules = tmp_path / "strict"
    shutil.copytree(rulesets.bundled_rules_dir(), rules)
    tier = rules / "tier.yaml"
    tier.write_text(tier.read_text(encoding="utf-8").replace('">= 500000"', '">= 7000"'), encoding="utf-8")
    b = ops_book(extra=[sheet("cxrules.conf", [["CXRULES_RULES", str(rules)]])])
    report = excel.recalculate()
    _, tiers = column(Replay(b), "Customers", "Tier")
    assert tiers[0] == "VIP"
    assert "cxrules.conf" not in [s.sheet for s in report.sheets] + report.skipped


# ------------------------------------------------------------------ Recalculate and cxrules recalc: the same cells
def _parity_workbook(path):
    import openpyxl
    from openpyxl.worksheet.table import Table as XTable

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    for row in CUSTOMERS:  # and a person's own Next contact column: kept by both
        ws.append(row + (["Spend per order", "Next contact"] if row[0] == "Customer" else [None, "call" if row[0] else None]))
    for r in range(2, len(CUSTOMERS) + 1):
        if ws.cell(r, 3).value:
            ws.cell(r, 8).value = f"=D{r}/C{r}"  # a formula the rules do not read
    ws.cell(6, 3).value = "#N/A"  # an error cell (openpyxl writes it as one)
    cs = wb.create_sheet("Cases")
    for row in CASES:
        cs.append(row)
    cs.add_table(XTable(displayName="CaseList", ref="A1:F4"))
    cs2 = wb.create_sheet("Notes")
    for row in NOTES:
        cs2.append(row)
    for w in (ws, cs):
        for row in w.iter_rows(min_row=2):
            for c in row:
                if isinstance(c.value, dt.datetime):
                    c.number_format = "yyyy-mm-dd hh:mm"
    wb.save(path)
    return path


def _same_cells(path, tmp_path, name_):
    """Recalculate on the workbook as Excel hands it over, and cxrules recalc on the file."""
    values = {("Customers", r, 7): CUSTOMERS[r - 1][3] / CUSTOMERS[r - 1][2] for r in (2, 3, 5)}  # what Excel calculated
    sheets, names = com.payload_sheets_from_xlsx(path, values)
    b = book(*sheets, names=names, filename=name_)
    excel.recalculate()
    out = tmp_path / name_
    shutil.copy(path, out)
    recalc(out, Evaluator(rulesets.load_or_raise(rulesets.bundled_rules_dir())), as_of=AS_OF)
    return com.replay_cells(Replay(b)), com.xlsx_cells(out), Replay(b), out


def test_recalculate_and_cxrules_recalc_give_the_same_cells(tmp_path):
    src = _parity_workbook(tmp_path / "src.xlsx")
    excel_cells, file_cells, r, out = _same_cells(src, tmp_path, "ops.xlsx")
    # the person's own Next contact column keeps the contact decision from running: no contacts, no plan
    assert list(excel_cells) == list(file_cells) == ["Customers", "Cases", "Notes", "CX summary", "Issues"]
    for s in file_cells:
        assert excel_cells[s] == file_cells[s], s
    assert excel_cells["Customers"][(2, 7)] == "=D2/C2"  # formulas where they were, in both
    assert r.sheet("Cases")["tables"]["CaseList"] == "A1:R4"  # the table took the new columns in both
    import openpyxl

    assert openpyxl.load_workbook(out)["Cases"].tables["CaseList"].ref == "A1:R4"
    formats = com.xlsx_formats(out)
    for s in ("Customers", "Cases"):  # every number format Recalculate set, the file has too
        for cell, fmt in r.sheet(s)["formats"].items():
            if cell in file_cells[s]:
                assert formats[s][cell] == fmt, (s, cell)


def test_and_again_on_the_recalculated_workbook(tmp_path):
    # a second run reads the ownership and the sheet marks the first one recorded
    src = _parity_workbook(tmp_path / "src.xlsx")
    _, _, _, once = _same_cells(src, tmp_path, "once.xlsx")
    excel_cells, file_cells, _, _ = _same_cells(once, tmp_path, "twice.xlsx")
    # the person's own Next contact column keeps the contact decision from running: no contacts, no plan
    assert list(excel_cells) == list(file_cells) == ["Customers", "Cases", "Notes", "CX summary", "Issues"]
    for s in file_cells:
        assert excel_cells[s] == file_cells[s], s


# ------------------------------------------------------------------ Flag overdue
def test_flag_overdue_colours_whole_rows_of_the_active_sheet_only():
    b = ops_book(active=1)
    report = excel.flag_overdue()
    assert [s.sheet for s in report.sheets] == ["Cases"]
    assert not actions(b, "setValues", 0)  # other sheets untouched
    assert not actions(b, "addSheet")
    r = Replay(b)
    c_late, _ = column(r, "Cases", "Days overdue")
    rows = [cf for cf in r.sheet("Cases")["cf"] if cf[4]["formula"] == "=" + next(
        n for (s, n), v in r.names.items() if s == "Cases" and ">0" in v)]
    assert len(rows) == 1
    _, start_col, _, ncols, cf = rows[0]
    assert start_col == 0 and ncols - 1 >= c_late
    assert cf["fill_color"] == "#ffc7ce" and cf["font_color"] == "#9c0006"
    assert alerts(b)[-1] == "1 overdue row(s) on 'Cases' as of 2026-11-23 10:00, coloured red."
    assert [a["func"] for a in actions(b)][:2] == ["setScreenUpdating", "setCalculation"]


def test_flag_overdue_on_a_sheet_without_rule_columns():
    b = ops_book(active=2)
    excel.flag_overdue()
    assert not actions(b, "setValues")
    assert "has no columns the rules read" in alerts(b)[-1]


def test_flag_overdue_with_nothing_overdue(monkeypatch):
    monkeypatch.setattr(excel, "now_in", lambda tz: dt.datetime(2026, 11, 10, 9, 30))
    b = ops_book(active=1)
    excel.flag_overdue()
    assert alerts(b)[-1] == "No overdue rows on 'Cases'."


# ------------------------------------------------------------------ Check rules and Reload rules
def test_check_rules_reports_to_a_sheet():
    b = ops_book()
    excel.check_rules()
    assert [a["args"][1] for a in actions(b, "addSheet")] == ["CX rule check"]
    rows = Replay(b).grid("CX rule check")
    assert rows[0][0].startswith("0 error(s)")
    assert rows[2][:5] == ["Severity", "File", "Line", "Decision", "Problem"]
    assert alerts(b)[-1].startswith("0 error(s)") and "rules folder set by the CXRULES_RULES environment variable" in alerts(b)[-1]


def test_check_rules_lists_errors_with_file_and_line(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(rulesets.bundled_rules_dir(), rules)
    nps = rules / "survey.yaml"
    nps.write_text(nps.read_text(encoding="utf-8").replace("hit: unique", "hit: sometimes"), encoding="utf-8")
    monkeypatch.setenv("CXRULES_RULES", str(rules))
    b = ops_book()
    excel.check_rules()
    rows = Replay(b).grid("CX rule check")
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
    b = ops_book()
    excel.check_rules()
    rows = Replay(b).grid("CX rule check")
    failed = [r for r in rows[3:] if r[0] == "example"]
    assert len(failed) == 1 and failed[0][1] == "survey.yaml" and "expected Passive, got Promoter" in failed[0][4]


def test_check_rules_on_a_rules_workbook_names_sheet_and_cell(tmp_path):
    import openpyxl

    from cxrules import rulebook

    xlsx = tmp_path / "rules.xlsx"
    rulebook.export_book(rulesets.bundled_rules_dir(), xlsx)
    wb = openpyxl.load_workbook(xlsx)
    bad = next(c for row in wb["tier"].iter_rows() for c in row if c.value == "[2..4]")
    bad.value = "[2..four]"
    wb.save(xlsx)
    sheets, names = com.payload_sheets_from_xlsx(xlsx)
    b = book(*sheets, names=names, filename="rules.xlsx")
    excel.check_rules()
    rows = Replay(b).grid("CX rule check")
    assert rows[0][0].startswith("1 error(s), 0 warning(s), 0 failed example(s) in the 11 decision table(s) and 5 journey(s) of this rules workbook")
    assert rows[2] == ["Severity", "Cell", "Decision", "Row", "Column", "Problem", "What to do"]
    assert rows[3][:6] == ["error", f"tier!{bad.coordinate}", "tier", 6, "frequency", "'four' is not a number"]
    assert f"tier!{bad.coordinate}: 'four' is not a number" in alerts(b)[-1]


def test_check_rules_on_a_rules_workbook_runs_its_examples(tmp_path):
    import openpyxl

    from cxrules import rulebook

    xlsx = tmp_path / "rules.xlsx"
    rulebook.export_book(rulesets.bundled_rules_dir(), xlsx)
    wb = openpyxl.load_workbook(xlsx)
    ex = wb["nps examples"]
    assert [c.value for c in ex[4]][:3] == ["example", "score", "nps_group"] and ex["B5"].value == 10
    ex["C5"] = "Passive"  # an example that now fails: score 10 is a Promoter
    wb.save(xlsx)
    sheets, names = com.payload_sheets_from_xlsx(xlsx)
    b = book(*sheets, names=names, filename="rules.xlsx")
    excel.check_rules()
    rows = Replay(b).grid("CX rule check")
    assert rows[0][0].startswith("0 error(s), 0 warning(s), 1 failed example(s)")
    assert rows[3][:5] == ["example", "'nps examples'!C5", "nps", 1, "nps_group"]
    assert "expected Passive, got Promoter" in rows[3][5]


def test_check_rules_on_a_clean_rules_workbook(tmp_path):
    from cxrules import rulebook

    xlsx = tmp_path / "rules.xlsx"
    rulebook.export_book(rulesets.bundled_rules_dir(), xlsx)
    sheets, names = com.payload_sheets_from_xlsx(xlsx)
    b = book(*sheets, names=names, filename="rules.xlsx")
    excel.check_rules()
    assert Replay(b).grid("CX rule check")[0][0].startswith("0 error(s), 0 warning(s), 0 failed example(s)")
    assert alerts(b)[-1].endswith("of this rules workbook.")


def test_reload_rules_recalculates_and_confirms():
    b = ops_book()
    excel.reload_rules()
    assert actions(b, "calculate")
    assert alerts(b)[-1].startswith("Rules reloaded from ")


def test_every_macro_takes_no_arguments_and_uses_the_caller():
    import inspect

    for m in excel.MACROS:
        assert not inspect.signature(m).parameters, m.__name__
        assert m.__doc__


# ------------------------------------------------------------------ the stamp in the document's properties
class _Property:
    def __init__(self, owner, name, value, type_):
        self.owner, self.Name, self.Value, self.Type = owner, name, value, type_

    def Delete(self):
        self.owner.items.remove(self)


class _DocumentProperties:
    """Office's DocumentProperties collection as COM exposes it: 1-based Item, Add by keyword,
    Add refusing a name already there (Excel raises), Delete on the property."""

    def __init__(self, props):
        self.items = [_Property(self, n, v, t) for n, v, t in props]

    @property
    def Count(self):
        return len(self.items)

    def Item(self, i):
        return self.items[i - 1]

    def Add(self, Name, LinkToContent, Type, Value):
        assert LinkToContent is False
        if any(p.Name.casefold() == Name.casefold() for p in self.items):
            raise RuntimeError(f"a property named {Name} exists")
        self.items.append(_Property(self, Name, Value, Type))


class _ComApi(dict):
    pass


def test_a_recalculated_book_is_stamped_in_its_document_properties_too():
    from cxrules.stamp import Stamp, rules_hash

    b = ops_book()
    props = _DocumentProperties([("Department", "CX", 4), ("cxrules as of", 46000.0, 5)])  # a person's; an older stamp's
    api = _ComApi(b.impl._api)
    api.CustomDocumentProperties = props
    b.impl._api = api
    excel.recalculate()
    got = {p.Name: p.Value for p in props.items}
    assert got["Department"] == "CX"
    stamp = Stamp.from_properties({k: v for k, v in got.items() if k != "Department"})
    assert stamp.as_of == AS_OF
    assert stamp.rules_hash == rules_hash(rulesets.load_or_raise(str(rulesets.bundled_rules_dir())).sources)
    assert all(p.Type == 4 for p in props.items)  # text, the old number-typed one replaced
    assert len(props.items) == 1 + sum(v is not None for v in stamp.properties().values())  # no options: none written
    assert "cxrules options" not in got
    summary = Replay(b).grid("CX summary")
    assert any(row[:2] == ["Rules hash", stamp.rules_hash] for row in summary)


def test_a_book_without_document_properties_is_still_recalculated():
    b = ops_book()  # xlwings' remote engines have no DocumentProperties: the summary sheet holds the stamp
    excel.recalculate()
    assert any(row[0] == "Rules hash" for row in Replay(b).grid("CX summary"))

# ------------------------------------------------------------------ Preview rule change
def _vip_rules(tmp_path):
    rules = tmp_path / "new rules"
    shutil.copytree(rulesets.bundled_rules_dir(), rules)
    tier = rules / "tier.yaml"
    tier.write_text(tier.read_text(encoding="utf-8").replace('">= 500000"', '">= 8000"'), encoding="utf-8")
    return rules


def test_preview_rule_change_writes_the_impact_sheets(tmp_path):
    rules = _vip_rules(tmp_path)
    conf = sheet("cxrules.conf", [["CXRULES_NEW_RULES", str(rules)]])
    b = ops_book(extra=[conf])
    excel.preview_rule_change()
    assert [a["args"][1] for a in actions(b, "addSheet")] == ["CX impact", "CX impact rows"]
    r = Replay(b)
    rows = r.grid("CX impact rows")
    assert rows[0] == ["Workbook", "Sheet", "Row", "Key", "Result", "From", "To"]
    tier = [x for x in rows[1:] if x[4] == "Tier"]
    # independently: Ann (spend 8000, High value) reaches the new VIP line of 8000; Bo is VIP already; Cy's date is bad
    assert [(x[1], x[2], x[3], x[5], x[6]) for x in tier] == [("Customers", 2, "Ann", "High value", "VIP")]
    summary = {row[0]: row[1:] for row in r.grid("CX impact") if row and row[0]}
    assert summary["High value -> VIP"][0] == 1
    assert "Preview of" in alerts(b)[-1] and "row" in alerts(b)[-1] and "'CX impact'" in alerts(b)[-1]
    # the data sheets are as they were
    assert not [a for a in b.json()["actions"] if a.get("sheet_position") in (0, 1, 2) and a["func"] == "setValues"]


def test_preview_rule_change_reads_a_named_cell(tmp_path):
    rules = _vip_rules(tmp_path)
    conf = sheet("Setup", [["New rules", str(rules)]])
    b = ops_book(extra=[conf], names=[name("CX_NEW_RULES", "=Setup!$B$1")])
    excel.preview_rule_change()
    assert "Preview of" in alerts(b)[-1]


def test_preview_rule_change_without_new_rules_says_where_to_put_them():
    b = ops_book()
    excel.preview_rule_change()
    assert not actions(b, "addSheet")
    assert "CX_NEW_RULES" in alerts(b)[-1] and "Nothing was changed" in alerts(b)[-1]


def test_preview_rule_change_with_broken_rules_is_a_message(tmp_path):
    rules = _vip_rules(tmp_path)
    tier = rules / "tier.yaml"
    tier.write_text(tier.read_text(encoding="utf-8").replace("hit: first", "hit: sometimes"), encoding="utf-8")
    b = ops_book(extra=[sheet("cxrules.conf", [["CXRULES_NEW_RULES", str(rules)]])])
    excel.preview_rule_change()
    assert not actions(b, "addSheet")
    assert "have errors" in alerts(b)[-1] and "tier.yaml" in alerts(b)[-1] and "sometimes" in alerts(b)[-1]


def test_recalculate_writes_journey_columns_and_counts_their_overdue():
    journey = [["Customer", "Last purchase", "Win-back survey sent on", "Replied on", "CNY 50 coupon sent on", "Senior callback on"],
               ["Di", dt.datetime(2026, 8, 1), dt.datetime(2026, 10, 30), None, None, None],  # the CNY 50 coupon, due 2026-11-06
               ["Ed", dt.datetime(2026, 8, 1), dt.datetime(2026, 10, 30), dt.datetime(2026, 11, 2), None, None]]  # replied
    b = book(sheet("Winback", journey))
    report = excel.recalculate()
    assert [s.sheet for s in report.sheets] == ["Winback"] and "lapsed" in report.sheets[0].decisions
    r = Replay(b)
    _, steps = column(r, "Winback", "Win-back journey: step")
    assert steps == ["CNY 50-off-200 coupon", "Replied to the survey"]
    _, due = column(r, "Winback", "Win-back journey: due")
    assert due == ["2026-11-06", None]
    _, late = column(r, "Winback", "Days overdue")
    assert late == [17, None]
