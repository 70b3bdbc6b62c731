"""Rules as a workbook: `cxrules rules export`, `cxrules rules import`, `cxrules check rules.xlsx`."""
import dataclasses
import difflib
import shutil
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrules import rulebook, rulesets
from cxrules.cli import cli
from cxrules.loader import load_rules
from cxrules.rulebook_yaml import read_file, scalar
from cxrules.testing import run_examples
from cxrules.yamlsrc import parse_documents

HERE = Path(__file__).resolve().parent
FOLDERS = {
    "bundled": rulesets.bundled_rules_dir(),
    "examples": HERE / "examples" / "rules",
    "shapes": HERE / "rulebook",  # every shape the loader reads: lists of specs, block rows, null cells, CRLF, BOM
}


def _copy(folder, tmp_path, name="rules") -> Path:
    dst = tmp_path / name
    shutil.copytree(folder, dst)
    return dst


def _export(folder, tmp_path) -> Path:
    xlsx = tmp_path / "rules.xlsx"
    rulebook.export_book(folder, xlsx)
    return xlsx


def _bytes(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def _model(folder):
    """A rule set without where things were written: what the rules mean."""
    rs, problems = load_rules(folder)
    assert not problems.errors, problems.errors

    def plain(x):
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return (type(x).__name__, {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)
                                       if f.name not in ("loc", "cell_locs", "line", "file", "_readers")})
        if isinstance(x, dict):
            return {repr(k): plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(i) for i in x]
        if isinstance(x, (set, frozenset)):
            return sorted(x)
        return x

    cals = {n: {k: plain(v) for k, v in vars(c).items() if k not in ("tz", "_cache")} for n, c in rs.calendars.items()}
    examples = [(r.table, r.index, r.passed) for r in run_examples(rs)]
    return plain(rs.tables), plain(rs.fields), plain(rs.aliases), cals, rs.timezone, examples


def _diff(before: str, after: str) -> list[str]:
    return [x.rstrip("\r\n") for x in difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
            if x[:1] in "+-" and not x.startswith(("+++", "---"))]


def _cell(ws, text):
    """The cell holding text (as the workbook shows it)."""
    hits = [c for row in ws.iter_rows() for c in row if rulebook.cell_text(c.value) == text]
    assert len(hits) == 1, (text, [c.coordinate for c in hits])
    return hits[0]


def _append_rule(ws, values):
    """A row typed below the rule table, and the table grown over it, as Excel does."""
    name = next(n for n in ws.tables if n.startswith("rules_"))
    t = ws.tables[name]
    first, last = t.ref.split(":")
    col = "".join(ch for ch in last if ch.isalpha())
    row = int(last[len(col):]) + 1
    for j, v in enumerate(values, 1):
        ws.cell(row, j, v)
    t.ref = f"{first}:{col}{row}"
    return row


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("name", list(FOLDERS))
def test_export_then_import_changes_no_byte(tmp_path, name):
    rules = _copy(FOLDERS[name], tmp_path)
    before = _bytes(rules)
    res = rulebook.import_book(_export(rules, tmp_path), rules)
    assert res.changed == [] and res.created == [] and res.rewritten == []
    assert _bytes(rules) == before


@pytest.mark.parametrize("name", list(FOLDERS))
def test_import_into_an_empty_folder_gives_the_same_rules(tmp_path, name):
    xlsx = _export(FOLDERS[name], tmp_path)
    fresh = tmp_path / "fresh"
    res = rulebook.import_book(xlsx, fresh)
    assert sorted(res.created) == sorted(p.name for p in FOLDERS[name].glob("*.yaml"))
    assert _model(fresh) == _model(FOLDERS[name])
    assert all(passed for _, _, passed in _model(fresh)[-1])


def test_workbook_has_a_table_per_decision_with_types_and_drop_downs(tmp_path):
    wb = openpyxl.load_workbook(_export(FOLDERS["bundled"], tmp_path))
    rs = rulesets.load_or_raise(FOLDERS["bundled"])
    for t in [t for t in rs.tables.values() if not hasattr(t, "journey")]:  # journeys: tests/test_rulebook_journeys.py
        assert t.name in wb.sheetnames and f"{t.name} examples" in wb.sheetnames
        ws = wb[t.name]
        assert f"rules_{t.name}" in ws.tables and f"examples_{t.name}" in wb[f"{t.name} examples"].tables
        ref = ws.tables[f"rules_{t.name}"].ref
        head = [c.value for c in ws[ref.split(":")[0][1:]]]
        assert head[: len(t.inputs) + len(t.outputs) + 2] == ["rule"] + [i.name for i in t.inputs] + [o.name for o in t.outputs] + ["note"]
        assert _cell(ws, "hit").offset(0, 1).value == t.hit_text or t.hit_text.startswith(_cell(ws, "hit").offset(0, 1).value)
    ws = wb["tier"]
    col = {c.value: c.column_letter for c in _cell(ws, "role").parent[_cell(ws, "role").row] if c.value}
    type_row = _cell(ws, "type").row
    assert ws[f"E{type_row}"].value == "number"
    assert [c.value for c in ws[_cell(ws, "role").row]][1:9] == ["input"] * 6 + ["output"] * 2
    unit = _cell(ws, "unit").row
    assert ws[f"D{unit}"].value == "days"  # recency: days_since(last_purchase)
    lists = wb["_lists"]
    tier_col = [c.column_letter for c in ws[ws.tables["rules_tier"].ref.split(":")[0][1:]] if c.value == "tier"][0]
    dv = next(d for d in ws.data_validations.dataValidation if f"{tier_col}" in str(d.sqref) and d.type == "list" and str(d.sqref).startswith(tier_col))
    sheet, cells = dv.formula1.lstrip("=").split("!")
    c1, c2 = cells.replace("$", "").split(":")
    values = [c.value for row in lists[c1:c2] for c in row]
    assert values == ["VIP", "High value", "Potential", "New", "Churn risk", "Regular"]
    assert wb["_lists"].sheet_state == "hidden"
    assert {"fields", "calendars", "values"} <= set(wb.sheetnames)
    assert col  # the role row names each column


# ------------------------------------------------------------------ edits come back as the expected diff
def test_changed_threshold_and_added_row_give_exactly_that_diff(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    before = (rules / "tier.yaml").read_text(encoding="utf-8")
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["tier"]
    _cell(ws, ">= 500000").value = ">= 600000"
    _append_rule(ws, [None, "-", "-", "> 365", "-", "-", "-", "Churn risk", "Lost - no purchase for a year"])
    wb.save(xlsx)
    res = rulebook.import_book(xlsx, rules)
    assert res.changed == ["tier.yaml"] and not res.rewritten
    assert _diff(before, (rules / "tier.yaml").read_text(encoding="utf-8")) == [
        '-  - ["-",                   "-",    "-",     "-",       ">= 500000",      "-",        VIP,        Annual spend of 500000 or more]',
        '+  - ["-",                   "-",    "-",     "-",       ">= 600000",      "-",        VIP,        Annual spend of 500000 or more]',
        '+  - ["-",                   "-",    "> 365", "-",       "-",              "-",        Churn risk, Lost - no purchase for a year]',
    ]
    rs = rulesets.load_or_raise(rules)
    assert rs.tables["tier"].rules[1].tests[4].text == ">= 600000" and len(rs.tables["tier"].rules) == 11
    assert all(r.passed for r in run_examples(rs))


def test_edits_of_every_kind_change_only_their_lines(tmp_path):
    rules = _copy(FOLDERS["shapes"], tmp_path)
    shapes = (rules / "shapes.yaml").read_text(encoding="utf-8")
    due_raw = (rules / "due.yaml").read_bytes()
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["套餐"]
    _cell(ws, "c+").value = "collect max"  # the hit policy
    _cell(ws, "Points: summed over the rows that match").value = None  # description removed: its line goes
    role = _cell(ws, "role").row
    label = _cell(ws, "label").row
    ws.cell(label, 2).value = "Plan"  # a label for `plan: text`: the spec becomes a mapping
    head = _cell(ws, "rule").row
    ws.cell(head + 1, 7).value = "the best plan"  # a note on a [..] row: the row is written as a mapping
    ws.cell(head + 2, 2).value = "Silver"  # a cell of a {..} row
    ws.cell(head + 3, 3).value = "[1..3]"  # a cell of a block mapping row
    ws.cell(head + 5, 6).value = 0.75  # a number typed in Excel
    assert ws.cell(role, 6).value == "output"
    ex = wb["套餐 examples"]
    _cell(ex, "金卡").value = "金"  # an example's value (block mapping)
    _cell(ex, "example").offset(2, 0).parent.delete_rows(_cell(ex, "example").row + 1)  # the first example deleted
    wb["values"].cell(3, 3).value = "[银卡, 银]"  # spellings of Silver
    ws = wb["due_shapes"]
    _cell(ws, "1d").value = "2d"
    cal = wb["calendars"]
    hours = [c for c in cal[1] if c.value == "hours"][0].column
    office = _cell(cal, "office").row
    cal.cell(office, hours).value = '["09:00-12:00", "14:00-18:00"]'
    wb.save(xlsx)
    res = rulebook.import_book(xlsx, rules)
    assert sorted(res.changed) == ["due.yaml", "shapes.yaml"] and not res.rewritten
    assert _diff(shapes, (rules / "shapes.yaml").read_text(encoding="utf-8")) == [
        "-hit: c+",
        '-description: "Points: summed over the rows that match"',
        "+hit: collect max",
        "-  - plan: text                       # a list of {name: spec}, a spec as its type only",
        "+  - plan: {type: text, label: Plan}                       # a list of {name: spec}, a spec as its type only",
        '-  - [Gold,             "-",      "-",    "-",   3]',
        '-  - {plan: "Silver, Bronze", points: 2, note: "a, b: a note"}',
        "+  - {plan: Gold, points: 3, note: the best plan}",
        '+  - {plan: "Silver", points: 2, note: "a, b: a note"}',
        '-    score: "[1..2]"',
        '+    score: "[1..3]"',
        "-  - ['-',              '(1..3]', blank,  \"= 1\", 0.50]",
        "+  - ['-',              '(1..3]', blank,  \"= 1\", 0.75]",
        "-  - {plan: Gold, score: 1, since: 3, level: 2, points: 4}",
        "-  - plan: 金卡",
        "+  - plan: 金",
        "-  Silver: 银卡",
        "+  Silver: [银卡, 银]",
    ]
    due = (rules / "due.yaml").read_bytes()
    assert due.startswith(b"\xef\xbb\xbf") and due.count(b"\r\n") == due.count(b"\n")  # BOM and CRLF kept
    assert _diff(due_raw.decode("utf-8-sig"), due.decode("utf-8-sig")) == [
        '-  - ["-",    1d, office]',
        '+  - ["-",    2d, office]',
        "-    hours:",
        '-      - "09:00-12:00"',
        '-      - "13:30-18:00"',
        '+    hours: ["09:00-12:00", "14:00-18:00"]',
    ]
    rs = rulesets.load_or_raise(rules)
    assert rs.tables["套餐"].hit == "collect" and rs.tables["套餐"].aggregate == "max"
    assert rs.tables["套餐"].rules[0].note == "the best plan"
    assert rs.calendars["office"].hours == ((9 * 3600, 12 * 3600), (14 * 3600, 18 * 3600))


def test_a_new_column_rewrites_that_table_only(tmp_path):
    rules = _copy(FOLDERS["shapes"], tmp_path)
    before = (rules / "shapes.yaml").read_text(encoding="utf-8")
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["grade"]
    ws.insert_cols(3)  # an input after joined_days
    ws.cell(_cell(ws, "role").row, 3).value = "input"
    ws.cell(_cell(ws, "type").row, 3).value = "text"
    head = _cell(ws, "rule").row
    ws.cell(head, 3).value = "segment"
    for r in range(head + 1, head + 4):
        ws.cell(r, 3).value = "-"
    wb.save(xlsx)
    res = rulebook.import_book(xlsx, rules)
    assert res.rewritten == [("shapes.yaml", "grade")]
    after = (rules / "shapes.yaml").read_text(encoding="utf-8")
    cut = before.index("\ndecision: grade")
    assert after[:cut] == before[:cut]  # the first table, its comments and layout, untouched
    assert after[after.index("---", cut):] == before[before.index("---", cut):]  # and the document after it
    rs = rulesets.load_or_raise(rules)
    assert [i.name for i in rs.tables["grade"].inputs] == ["joined_days", "segment"]


def test_a_moved_row_keeps_its_comment_and_an_emptied_row_is_deleted(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    before = {n: (rules / n).read_text(encoding="utf-8") for n in ("survey.yaml", "tier.yaml")}
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["nps"]
    head = _cell(ws, "rule").row
    rows = [[c.value for c in ws[head + i]] for i in range(1, 6)]
    for i, row in enumerate([rows[4]] + rows[:4], 1):  # the last row moved to the top
        for j, v in enumerate(row, 1):
            ws.cell(head + i, j, v)
    ws = wb["tier"]
    for c in ws[_cell(ws, "rule").row + 3]:  # the third row emptied, its number too: the rows below stay
        c.value = None
    wb.save(xlsx)
    rulebook.import_book(xlsx, rules)
    assert _diff(before["survey.yaml"], (rules / "survey.yaml").read_text(encoding="utf-8")) == [
        '+  - [blank,     "-",       "-"]        # not surveyed yet',
        '-  - [blank,     "-",       "-"]        # not surveyed yet',
    ]
    assert _diff(before["tier.yaml"], (rules / "tier.yaml").read_text(encoding="utf-8")) == [
        '-  - ["-",                   "-",    "< 30",  ">= 5",    ">= 5000",        "-",        High value, RFM high value]',
    ]


def test_a_table_for_a_new_file_creates_it(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    copy = wb.copy_worksheet(wb["remedy"])
    copy["B2"], copy["B6"] = "remedy_cn", "remedy_cn.yaml"
    _cell(copy, "remedy").value = "补救"  # a Chinese output name
    wb.save(xlsx)
    res = rulebook.import_book(xlsx, rules)
    assert res.created == ["remedy_cn.yaml"] and res.changed == []
    t = rulesets.load_or_raise(rules).tables["remedy_cn"]
    assert [o.name for o in t.outputs] == ["补救"] and len(t.rules) == 5


def test_a_new_sheet_is_a_new_table_in_its_file(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    copy = wb.copy_worksheet(wb["nps"])
    copy.title = "nps2"
    _cell(copy, "nps").value = "nps_strict"
    for name in ("nps_group", "review"):
        _cell(copy, name).value = name + "2"
    wb.save(xlsx)
    before = (rules / "survey.yaml").read_text(encoding="utf-8")
    res = rulebook.import_book(xlsx, rules)
    after = (rules / "survey.yaml").read_text(encoding="utf-8")
    assert res.changed == ["survey.yaml"] and after.startswith(before)
    assert after[len(before):].startswith("---\ndecision: nps_strict\n")
    assert "nps_strict" in rulesets.load_or_raise(rules).tables


def test_a_value_an_alias_repeats_is_not_edited_in_place(tmp_path):
    rules = _copy(FOLDERS["shapes"], tmp_path)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["套餐"]
    allowed = _cell(ws, "allowed").row
    assert ws.cell(allowed, 3).value == ws.cell(allowed, 5).value == "[0, 1, 2, 3]"  # score &levels, level *levels
    ws.cell(allowed, 5).value = "[0, 1, 2]"
    wb.save(xlsx)
    res = rulebook.import_book(xlsx, rules)
    assert res.rewritten == [("shapes.yaml", "套餐")]  # editing &levels would change score too
    t = rulesets.load_or_raise(rules).tables["套餐"]
    assert [i.allowed for i in t.inputs if i.name in ("score", "level")] == [[0, 1, 2, 3], [0, 1, 2]]


def test_renamed_decision_examples_all_deleted_then_added_again(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    before = (rules / "compensation.yaml").read_text(encoding="utf-8")
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    wb["remedy"]["B2"] = "recovery"  # the decision's name, on its sheet
    wb["remedy examples"].delete_rows(5, 2)  # every example
    wb.save(xlsx)
    res = rulebook.import_book(xlsx, rules)
    assert res.changed == ["compensation.yaml"] and not res.kept and not res.rewritten
    middle = (rules / "compensation.yaml").read_text(encoding="utf-8")
    assert _diff(before, middle) == [
        "-decision: remedy",
        "+decision: recovery",
        "-examples:",
        "-  - {failure: Faulty product, remedy: Exchange the product}",
        "-  - {failure: Neglect, remedy: Apology from the owner}",
    ]
    wb = openpyxl.load_workbook(_export(rules, tmp_path))
    ex = wb["recovery examples"]
    ex["B4"], ex["C4"], ex["B5"], ex["C5"] = "failure", "remedy", "Neglect", "Apology from the owner"
    wb.save(xlsx)
    rulebook.import_book(xlsx, rules)
    assert _diff(middle, (rules / "compensation.yaml").read_text(encoding="utf-8")) == [
        "+examples:",
        "+  - {failure: Neglect, remedy: Apology from the owner}",
    ]
    rs = rulesets.load_or_raise(rules)
    assert "recovery" in rs.tables and "remedy" not in rs.tables and len(rs.tables["recovery"].examples) == 1


def test_fields_values_and_example_columns_added_and_removed(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    names = ("fields.yaml", "survey.yaml", "contact.yaml", "calendars.yaml")
    before = {n: (rules / n).read_text(encoding="utf-8") for n in names}
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    fields = wb["fields"]
    fields.append(["fields.yaml", "closed_at", "datetime", None, "[Closed at, 关闭时间]"])
    fields.tables["fields"].ref = f"A1:H{fields.max_row}"
    vals = wb["values"]
    vals.delete_rows(_cell(vals, "Detractor").row)  # a value's spellings removed
    ex = wb["contact examples"]
    assert [c.value for c in ex[4]][:6] == ["example", "tier", "previous_tier", "tenure", "every", "channel"]
    new = next(c for c in range(1, 40) if ex.cell(4, c).value is None)  # the first column after the examples'
    ex.cell(4, new).value, ex.cell(5, new).value = "purpose", "Care call - not a sales call"  # a new example column, filled in one example
    ex["D7"] = None  # and a value cleared in another
    cal = wb["calendars"]
    cal.cell(_cell(cal, "business").row, [c.column for c in cal[1] if c.value == "extra_holidays"][0]).value = "[2026-12-31]"
    wb.save(xlsx)
    res = rulebook.import_book(xlsx, rules)
    assert sorted(res.changed) == sorted(names) and not res.rewritten
    after = {n: (rules / n).read_text(encoding="utf-8") for n in names}
    assert _diff(before["fields.yaml"], after["fields.yaml"]) == ["+  closed_at: {type: datetime, columns: [Closed at, 关闭时间]}"]
    assert _diff(before["survey.yaml"], after["survey.yaml"]) == ["-  Detractor: 贬损者"]
    assert _diff(before["contact.yaml"], after["contact.yaml"]) == [
        "-  - {tier: VIP, tenure: 400, every: 14d, channel: Phone (account manager), contact_owner: Account manager}",
        "+  - {tier: VIP, tenure: 400, every: 14d, channel: Phone (account manager), contact_owner: Account manager, "
        "purpose: Care call - not a sales call}",
        "-  - {tier: New, tenure: 9, every: 3d, channel: SMS}",
        "+  - {tier: New, every: 3d, channel: SMS}",
    ]
    assert _diff(before["calendars.yaml"], after["calendars.yaml"]) == [
        "-    extra_holidays: []      # e.g. [2026-12-31] for a company day off",
        "+    extra_holidays: [2026-12-31]      # e.g. [2026-12-31] for a company day off",
    ]
    rs = rulesets.load_or_raise(rules)
    assert "closed_at" in rs.fields and "Detractor" not in rs.aliases.shared
    assert all(r.passed for r in run_examples(rs))


# ------------------------------------------------------------------ check and errors
def test_check_names_the_sheet_and_cell_of_a_bad_cell(tmp_path):
    xlsx = _export(FOLDERS["bundled"], tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    bad = _cell(wb["tier"], "[2..4]")
    bad.value = "[2..four]"
    fields = wb["fields"]
    typo = fields.cell(_cell(fields, "opened_at").row, [c.column for c in fields[1] if c.value == "type"][0])
    assert typo.value == "datetime"
    typo.value = "datetme"
    wb.save(xlsx)
    problems, n = rulebook.check_book(xlsx)
    errors = {(p.sheet, p.cell): p for p in problems.errors}
    assert ("tier", bad.coordinate) in errors and "'four' is not a number" in errors[("tier", bad.coordinate)].message
    assert ("fields", typo.coordinate) in errors
    r = CliRunner().invoke(cli, ["check", str(xlsx)])
    assert r.exit_code == 1
    assert f"rules.xlsx, tier!{bad.coordinate}, table 'tier', row 6, column 'frequency': error: 'four' is not a number" in r.output
    assert f"fields!{typo.coordinate}" in r.output


def test_check_of_an_unchanged_workbook_says_what_check_of_the_folder_says(tmp_path):
    xlsx = _export(FOLDERS["examples"], tmp_path)
    problems, n = rulebook.check_book(xlsx)
    _, folder = rulesets.load(FOLDERS["examples"])
    assert [(p.severity, p.message) for p in problems] == [(p.severity, p.message) for p in folder]
    assert all(p.sheet and p.cell for p in problems) and n == 6


def test_test_runs_a_rules_workbooks_examples_and_names_the_failing_cell(tmp_path):
    xlsx = _export(FOLDERS["bundled"], tmp_path)
    r = CliRunner().invoke(cli, ["test", str(xlsx)])
    n = len(run_examples(rulesets.load_or_raise(FOLDERS["bundled"])))  # the journeys' examples too
    assert r.exit_code == 0 and r.output.strip().endswith(f"{n} passed, 0 failed") and n > 48
    wb = openpyxl.load_workbook(xlsx)
    cell = _cell(wb["nps examples"], "Promoter")
    cell.value = "Passive"
    wb.save(xlsx)
    r = CliRunner().invoke(cli, ["test", str(xlsx), "-d", "nps"])
    assert r.exit_code == 1
    assert r.output.startswith(f"FAIL rules.xlsx, 'nps examples'!{cell.coordinate}: nps example 1 (score=10)\n"
                               "  nps_group: expected Passive, got Promoter")
    assert r.output.strip().endswith("3 passed, 1 failed")


def test_import_of_a_workbook_with_errors_writes_nothing(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    before = _bytes(rules)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    _cell(wb["contact"], "14d").value = "14 days"
    _cell(wb["nps"], "[8..9)").value = "[8..9)"  # and a good edit beside it
    _cell(wb["nps"], "Promoter").value = "Promoters"
    wb.save(xlsx)
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 1 and "'14 days' is not a duration" in r.output and "nothing was written" in r.output
    assert "Traceback" not in r.output
    assert _bytes(rules) == before


def test_import_refuses_what_check_refuses_and_a_sheet_copied_but_not_renamed(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    before = _bytes(rules)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    cal = wb["calendars"]
    cal.delete_rows(_cell(cal, "business").row)  # escalation still counts in it
    wb.save(xlsx)
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 1 and "'business' is not a calendar" in r.output and _bytes(rules) == before
    wb = openpyxl.load_workbook(_export(rules, tmp_path))
    wb.copy_worksheet(wb["nps"]).title = "second nps"
    wb.save(xlsx)
    problems, _ = rulebook.check_book(xlsx)
    assert [(p.sheet, p.cell, p.message) for p in problems.errors] == [("second nps", "B2", "decision 'nps' is also on sheet 'nps'")]
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 1 and "'second nps'!B2" in r.output and _bytes(rules) == before


def test_a_bad_list_in_a_cell_is_named_by_cell(tmp_path):
    xlsx = _export(FOLDERS["bundled"], tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    c = _cell(wb["tier"], "[Tier, 客户层级]")
    c.value = "[Tier, 客户层级"
    wb.save(xlsx)
    problems, _ = rulebook.check_book(xlsx)
    assert [(p.sheet, p.cell) for p in problems.errors] == [("tier", c.coordinate)]
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(tmp_path / "out")])
    assert r.exit_code == 1 and f"tier!{c.coordinate}" in r.output and not (tmp_path / "out").exists()


def test_a_file_name_out_of_the_rules_folder_is_refused(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    wb["nps"]["B6"] = "../outside.yaml"
    elsewhere = tmp_path / "elsewhere" / "fields.yaml"  # an absolute path, out of the rules folder
    wb["fields"]["A2"] = str(elsewhere)
    wb.save(xlsx)
    problems, _ = rulebook.check_book(xlsx)
    assert [(p.sheet, p.cell) for p in problems.errors][:2] == [("nps", "B6"), ("fields", "A2")]
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 1 and "nps!B6: '../outside.yaml' is not a rule file name" in r.output
    assert not (tmp_path / "outside.yaml").exists() and not elsewhere.exists()


def test_errors_the_files_had_before_do_not_stop_an_import_nor_get_lost(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "m.yaml").write_text("decision: m\ninputs:\n  a: {type: text, lable: x}\noutputs:\n  b: text\nrules:\n  - [x, y]\n",
                                  encoding="utf-8")
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    _cell(wb["m"], "y").value = "z"
    wb.save(xlsx)
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 0 and "already had 1 error(s)" in r.output
    assert (rules / "m.yaml").read_text(encoding="utf-8").endswith("  a: {type: text, lable: x}\noutputs:\n  b: text\nrules:\n  - [x, z]\n")


def test_a_row_a_sheet_cannot_show_is_refused_at_export(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "m.yaml").write_text("decision: m\ninputs:\n  a: text\noutputs:\n  b: text\nrules:\n  - [x, y, z]\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["rules", "export", str(rules), str(tmp_path / "m.xlsx")])
    assert r.exit_code == 1 and "m.yaml:7: row 1 of 'm' does not have one cell per input and output" in r.output
    assert not (tmp_path / "m.xlsx").exists()


def test_a_workbook_that_is_not_a_rules_workbook_is_refused(tmp_path):
    x = tmp_path / "other.xlsx"
    wb = openpyxl.Workbook()
    wb.active["A1"] = "Customer"
    wb.save(x)
    r = CliRunner().invoke(cli, ["check", str(x)])
    assert r.exit_code == 1 and "not a rules workbook" in r.output and "Traceback" not in r.output


def test_cli_export_and_import(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    x = tmp_path / "book.xlsx"
    r = CliRunner().invoke(cli, ["rules", "export", str(rules), str(x)])
    assert r.exit_code == 0 and "11 decision tables" in r.output and x.exists()
    r = CliRunner().invoke(cli, ["rules", "import", str(x), str(rules)])
    assert r.exit_code == 0 and "nothing changed" in r.output
    r = CliRunner().invoke(cli, ["rules", "export", str(rules), str(tmp_path / "book.txt")])
    assert r.exit_code == 1 and ".xlsx" in r.output


def test_a_cell_starting_with_equals_stays_a_text_not_a_formula(tmp_path):
    wb = openpyxl.load_workbook(_export(FOLDERS["shapes"], tmp_path))
    c = _cell(wb["套餐"], "= 1")
    assert c.data_type == "s"
    assert isinstance(_cell(wb["套餐"], "0.50").value, str) and wb["套餐"].cell(_cell(wb["套餐"], "rule").row + 1, 6).value == 3  # 0.50 is not 0.5


def test_import_without_a_folder_never_writes_into_the_bundled_rules(tmp_path, monkeypatch):
    xlsx = _export(FOLDERS["bundled"], tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CXRULES_RULES", raising=False)
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx)])
    assert r.exit_code == 2 and "give the rules folder to write into" in r.output
    (tmp_path / "rules").mkdir()
    shutil.copy(FOLDERS["bundled"] / "tier.yaml", tmp_path / "rules")
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx)])  # ./rules: the tables it lacks are added
    assert r.exit_code == 0 and "created rules/fields.yaml" in r.output.replace("\\", "/")


# ------------------------------------------------------------------ values written back read back the same
TEXTS = st.text(alphabet=st.sampled_from(list("aZ09 -,:#'\"[]()<>=.!&*{}%@|?客户~") + ["\\", "\t"]), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TEXTS)
def test_any_text_written_as_a_scalar_reads_back_as_itself(text):
    text = text.strip()
    if not text:
        return
    for q in (None, '"', "'"):
        doc = parse_documents(f"x: [{scalar(text, q)}, y]\n")[0]
        assert doc.get("x").items[0].text == text and not doc.get("x").items[0].is_null


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 7), TEXTS), min_size=1, max_size=4))
def test_edited_rule_cells_read_back_and_other_lines_stay(edits):
    src = rulebook.read_source(FOLDERS["bundled"])
    tier = next(t for t in src.tables if t.decision == "tier")
    f = next(f for f in src.files if f.name == "tier.yaml")
    new = dataclasses.replace(tier, rules=[dataclasses.replace(r, cells=list(r.cells)) for r in tier.rules])
    for row, col, text in edits:
        new.rules[row].cells[col] = text.strip() or "-"
    book = rulebook.Book(tables=[new])
    res = rulebook.plan_import(book, src)
    text = res.texts.get("tier.yaml", f.text)
    back = read_file("tier.yaml", text.encode("utf-8")).docs[0]
    assert [r.cells for r in back.rules] == [r.cells for r in new.rules]
    touched = {new.rules[row].node.line for row, _, _ in edits}
    old_lines, new_lines = f.text.splitlines(), text.splitlines()
    assert len(old_lines) == len(new_lines)
    assert [i + 1 for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b] == sorted(
        ln for ln in touched if old_lines[ln - 1] != new_lines[ln - 1])


CELL_TEXTS = st.one_of(st.just(""), st.just("-"), TEXTS)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_edit_of_rows_notes_and_examples_reads_back(data):
    """Rows written as lists, {..}, block mappings, with null cells; examples as {..} and
    block mappings; any cell or note set to any text (blank included) reads back as set."""
    src = rulebook.read_source(FOLDERS["shapes"])
    tables = []
    for t in src.tables:
        rows = [dataclasses.replace(r, cells=list(r.cells)) for r in t.rules]
        for r in rows:
            for i in range(len(r.cells)):
                if data.draw(st.booleans()):
                    r.cells[i] = data.draw(CELL_TEXTS).strip()
            if data.draw(st.integers(0, 4)) == 0:
                r.note = data.draw(TEXTS).strip()
        exs = [dataclasses.replace(r, cells=[data.draw(CELL_TEXTS).strip() if data.draw(st.booleans()) else c for c in r.cells])
               for r in t.examples]
        tables.append(dataclasses.replace(t, rules=rows, examples=[e for e in exs if any(e.cells)]))
    res = rulebook.plan_import(rulebook.Book(tables=tables), src)
    back = {}
    for f in src.files:
        text = res.texts.get(f.name, f.text)
        back.update({t.decision: t for t in read_file(f.name, text.encode("utf-8")).docs if not isinstance(t, tuple)})

    def rows(t):
        return [([c or "-" for c in r.cells], r.note) for r in t.rules]

    def examples(t):
        return [{k: c for k, c in zip(t.ex_keys, r.cells) if c} for r in t.examples]

    for t in tables:
        assert rows(back[t.decision]) == rows(t)
        assert examples(back[t.decision]) == examples(t)


# ------------------------------------------------------------------ LibreOffice
def _filled(ws) -> list:
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    while rows and not any(v is not None for v in rows[-1]):
        rows.pop()
    return rows


@pytest.mark.skipif(shutil.which("soffice") is None and shutil.which("libreoffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_opens_the_workbooks_and_their_saves_import_unchanged(tmp_path):
    import writers

    books = {}
    for name in ("bundled", "shapes"):
        rules = _copy(FOLDERS[name], tmp_path, name)
        rulebook.export_book(rules, tmp_path / f"{name}.xlsx")
        books[name] = (rules, _bytes(rules), tmp_path / f"{name}.xlsx")
    got = writers.soffice_convert([x for _, _, x in books.values()], tmp_path / "lo", "xlsx:Calc MS Excel 2007 XML", tmp_path / "profile")
    for name, (rules, before, xlsx) in books.items():
        saved = got[xlsx]
        assert saved is not None, name
        wb, ours = openpyxl.load_workbook(saved), openpyxl.load_workbook(xlsx)
        assert wb.sheetnames == ours.sheetnames
        for sheet in [ours.sheetnames[1]] + [s for s in ("lapsed", "lapsed examples", "contact_caps") if s in ours.sheetnames]:
            assert _filled(wb[sheet]) == _filled(ours[sheet]), sheet
        res = rulebook.import_book(saved, rules)
        assert res.changed == [] and _bytes(rules) == before, name


def _cell_error(ws, ref, code="#N/A"):
    ws[ref] = code
    ws[ref].data_type = "e"


@pytest.mark.parametrize("edit, where, says", [
    # B17:C17 is the 'optional' row of tier's first two inputs: C17 holds 'true'
    (lambda ws: ws.merge_cells("B17:C17"), "tier!B17", "merged cells B17:C17"),
    (lambda ws: ws.__setitem__("C17", "=1+2"), "tier!C17", "a formula that was never calculated"),
    (lambda ws: _cell_error(ws, "C22"), "tier!C22", "the cell holds the Excel error #N/A"),
])
def test_import_refuses_a_cell_it_cannot_read_and_names_it(tmp_path, edit, where, says):
    """openpyxl reads a merged-away cell and an uncalculated formula as blank, an error as the text
    '#N/A': an import would drop `optional: true` or write '#N/A' into a rule without a word."""
    rules = _copy(FOLDERS["bundled"], tmp_path)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["tier"]
    assert (ws["A17"].value, ws["C17"].value, ws["A21"].value) == ("optional", "true", "rule")
    edit(ws)
    wb.save(xlsx)
    before = _bytes(rules)
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 1 and f"{where}: {says}" in r.output and "nothing was written" in r.output, r.output
    assert _bytes(rules) == before
    r = CliRunner().invoke(cli, ["check", str(xlsx)])
    assert r.exit_code == 1 and f"rules.xlsx, {where}: error: {says}" in r.output, r.output


def test_a_merged_title_row_is_only_looks(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    wb["tier"].merge_cells("A1:H1")
    wb.save(xlsx)
    before = _bytes(rules)
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 0 and "nothing changed" in r.output, r.output
    assert _bytes(rules) == before


@pytest.mark.parametrize("how", ["sheet deleted", "top rows deleted"])
def test_examples_without_their_sheet_are_kept_and_said(tmp_path, how):
    """As a deleted table sheet keeps its table: losing a sheet must not delete a table's examples."""
    rules = _copy(FOLDERS["bundled"], tmp_path)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    if how == "sheet deleted":
        del wb["tier examples"]
        del wb["lapsed examples"]
    else:
        wb["tier examples"].delete_rows(1, 3)
        wb["lapsed examples"].delete_rows(1, 3)
    wb.save(xlsx)
    before = _bytes(rules)
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 0, r.output
    assert "the examples of 'tier' have no sheet in the workbook; kept as they are" in r.output
    assert "the examples of 'lapsed' have no sheet in the workbook; kept as they are" in r.output
    assert _bytes(rules) == before


def test_emptying_an_examples_sheet_removes_the_examples(tmp_path):
    rules = _copy(FOLDERS["bundled"], tmp_path)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["tier examples"]
    head = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "example")
    for row in ws.iter_rows(min_row=head + 1):
        for c in row:
            c.value = None
    wb.save(xlsx)
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 0, r.output
    assert "examples:" not in (rules / "tier.yaml").read_text(encoding="utf-8")


def test_a_rule_file_that_cannot_be_replaced_leaves_every_file_as_it_was(tmp_path):
    """Two files changed, the second read-only: the first must not be written alone."""
    import os

    rules = _copy(FOLDERS["bundled"], tmp_path)
    xlsx = _export(rules, tmp_path)
    wb = openpyxl.load_workbook(xlsx)
    for name in ("compensation", "tier"):  # compensation.yaml comes first in the folder
        ws = wb[name]
        ws["A5"].offset(0, 1).value = f"edited {name}"  # the description cell
    wb.save(xlsx)
    assert [ws["A5"].value for ws in (wb["compensation"], wb["tier"])] == ["description", "description"]
    os.chmod(rules / "tier.yaml", 0o444)
    before = _bytes(rules)
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert f"{rules / 'tier.yaml'}: is read-only" in r.output
    assert _bytes(rules) == before  # compensation.yaml not written alone, no temp file left
    os.chmod(rules / "tier.yaml", 0o644)
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 0 and "edited tier" in (rules / "tier.yaml").read_text(encoding="utf-8"), r.output
    assert "edited compensation" in (rules / "compensation.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", ["a customer workbook", "not a workbook"])
def test_export_never_overwrites_a_file_that_is_not_a_rules_workbook(tmp_path, kind):
    dst = tmp_path / "rules.xlsx"
    if kind == "a customer workbook":
        shutil.copy(HERE.parent / "workbooks" / "sample_en.xlsx", dst)
    else:
        dst.write_bytes(b"notes")
    before = dst.read_bytes()
    r = CliRunner().invoke(cli, ["rules", "export", str(FOLDERS["bundled"]), str(dst)])
    assert r.exit_code == 1 and r.output == f"Error: {dst}: exists and is not a rules workbook, so cxrules will not overwrite it; give another name\n"
    assert dst.read_bytes() == before
    dst.unlink()
    rulebook.export_book(FOLDERS["bundled"], dst)
    r = CliRunner().invoke(cli, ["rules", "export", str(FOLDERS["bundled"]), str(dst)])  # a rules workbook: written again
    assert r.exit_code == 0, r.output
