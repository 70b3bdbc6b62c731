"""Journeys and contact caps in a rules workbook: sheets, edits back to YAML, checks by cell."""
import dataclasses
import shutil

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cxrules import rulebook, rulesets
from cxrules.cli import cli
from cxrules.rulebook_yaml import START_COLS, JourneyDoc, read_file
from cxrules.testing import run_examples

from test_rulebook import _bytes, _cell, _diff, _model

BUNDLED = rulesets.bundled_rules_dir()
JOURNEYS = ["new_customer", "lapsed", "order_survey", "complaint_callback", "vip_follow_up"]


@pytest.fixture
def rules(tmp_path):
    dst = tmp_path / "rules"
    shutil.copytree(BUNDLED, dst)
    return dst


@pytest.fixture
def xlsx(rules, tmp_path):
    path = tmp_path / "rules.xlsx"
    rulebook.export_book(rules, path)
    return path


def _steps(ws):
    """(header row, {column name: letter}) of a journey sheet's step table."""
    name = next(n for n in ws.tables if n.startswith("steps_"))
    first = ws.tables[name].ref.split(":")[0]
    row = int(first[1:])
    return row, {c.value: c.column_letter for c in ws[row] if c.value}


def _step_row(ws, step):
    head, _ = _steps(ws)
    return next(r for r in range(head + 1, ws.max_row + 1) if ws.cell(r, 1).value == step)


def test_each_journey_has_a_sheet_and_an_examples_sheet_and_caps_a_table(xlsx):
    wb = openpyxl.load_workbook(xlsx)
    for j in JOURNEYS:
        assert j in wb.sheetnames and f"{j} examples" in wb.sheetnames
        assert f"steps_{j}" in wb[j].tables and f"examples_{j}" in wb[f"{j} examples"].tables
    ws = wb["lapsed"]
    top = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(2, 13)}
    assert top == {"journey": "lapsed", "title": "Lapsed-customer journey", "columns": "[Win-back journey, 挽回旅程]",
                   "description": None, "file": "journeys.yaml", "only_if": None, "caps": "[reach_70, no_sms_vip]",
                   "start from": "last_purchase", "start wait": "90d", "start step": "Lapsed", "start description": None}
    leave = ws.tables["leave_lapsed"].ref
    assert [[c.value for c in row] for row in ws[leave]] == [
        ["leave", "on", "after", "step", "description"],
        [1, "replied_on", "Survey with CNY 10 coupon", "Replied to the survey", None],
        [2, "last_purchase", None, "Purchased", None]]
    head, col = _steps(ws)
    assert list(col) == ["step", "action", "channel", "owner", "done", "wait", "within", "from", "only_if", "next", "description"]
    assert [ws.cell(head + k, 1).value for k in (1, 2, 3)] == ["Survey with CNY 10 coupon", "CNY 50-off-200 coupon", "High churn risk"]
    assert ws[f"{col['wait']}{head + 2}"].value == "7d" and ws[f"{col['owner']}{head + 3}"].value == "Senior employee"
    assert wb["complaint_callback"][f"{col['only_if']}{_step_row(wb['complaint_callback'], 'Review case')}"].value == '{score: "< 8"}'

    def drop_down(column):
        dv = next(d for d in ws.data_validations.dataValidation if str(d.sqref).startswith(f"{col[column]}{head + 1}:"))
        c1, c2 = dv.formula1.lstrip("=").split("!")[1].replace("$", "").split(":")
        return [c.value for row in wb["_lists"][c1:c2] for c in row]

    assert drop_down("channel") == ["SMS", "WeChat", "Phone", "Internal"]
    assert drop_down("next") == ["Survey with CNY 10 coupon", "CNY 50-off-200 coupon", "High churn risk", "end"]
    assert drop_down("from") == ["start", "Survey with CNY 10 coupon", "CNY 50-off-200 coupon", "High churn risk"]
    assert "winback_call_on" in drop_down("done") and "pushes_30d" not in drop_down("done")  # date fields only
    caps = wb["contact_caps"]
    assert [c.value for c in caps[1]][:8] == ["file", "cap", "label", "only_if", "at_most", "sent", "eligible", "channels"]
    assert [c.value for c in caps[3]][:2] == ["journeys.yaml", "no_sms_vip"] and caps["H3"].value == "[SMS]"


def test_round_trip_of_the_bundled_rules_with_journeys(rules, xlsx, tmp_path):
    before = _bytes(rules)
    res = rulebook.import_book(xlsx, rules)
    assert res.changed == [] and res.rewritten == [] and _bytes(rules) == before
    fresh = tmp_path / "fresh"
    rulebook.import_book(xlsx, fresh)  # every document written afresh from the sheets
    model = _model(fresh)
    assert model == _model(BUNDLED)
    ran = model[-1]
    assert {t for t, _, _ in ran} >= set(JOURNEYS) and all(passed for _, _, passed in ran)
    assert len([1 for t, _, _ in ran if t in JOURNEYS]) == 43
    r = CliRunner().invoke(cli, ["check", str(xlsx)])
    rs = rulesets.load_or_raise(BUNDLED)
    n = sum(1 for t in rs.tables.values() if not hasattr(t, "journey"))
    assert r.exit_code == 0 and r.output.strip() == f"0 errors, 0 warnings in 1 file ({n} decisions, {len(JOURNEYS)} journeys)"


def test_a_wait_edited_in_the_workbook_is_that_one_line(rules, xlsx):
    before = (rules / "journeys.yaml").read_text(encoding="utf-8")
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["lapsed"]
    _, col = _steps(ws)
    ws[f"{col['wait']}{_step_row(ws, 'CNY 50-off-200 coupon')}"] = "10d"
    ws["B10"] = "60d"  # start wait
    wb["contact_caps"]["E2"] = "60 %"  # a cap's share
    wb.save(xlsx)
    res = rulebook.import_book(xlsx, rules)
    assert res.changed == ["journeys.yaml"] and not res.rewritten
    assert _diff(before, (rules / "journeys.yaml").read_text(encoding="utf-8")) == [
        "-    at_most: 70 %                  # deferred once pushes sent >= 70 % of eligible pushes",
        "+    at_most: 60 %                  # deferred once pushes sent >= 70 % of eligible pushes",
        "-start: {from: last_purchase, wait: 90d, step: Lapsed}",
        "+start: {from: last_purchase, wait: 60d, step: Lapsed}",
        "-    wait: 7d",
        "+    wait: 10d",
    ]
    j = rulesets.load_or_raise(rules).tables["lapsed"].journey
    assert j.steps[1].wait.seconds == 10 * 86400 and j.start_wait.seconds == 60 * 86400


def test_a_step_added_and_settings_changed(rules, xlsx):
    before = (rules / "journeys.yaml").read_text(encoding="utf-8")
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["order_survey"]
    head, col = _steps(ws)
    t = ws.tables["steps_order_survey"]
    row = head + 2  # typed below the table: Excel grows it
    for k, v in {"step": "Thank-you call", "action": "Call to thank for the answers", "channel": "Phone",
                 "owner": "Care team", "done": "callback_at", "within": "48h", "only_if": "{score: \">= 9\"}"}.items():
        ws[f"{col[k]}{row}"] = v
    t.ref = f"A{head}:{t.ref.split(':')[1][0]}{row}"
    ws[f"{col['next']}{head + 1}"] = "Thank-you call"  # next: named explicitly
    ws["B5"] = "A survey 3 days after an order"  # description added
    wb.save(xlsx)
    res = rulebook.import_book(xlsx, rules)
    assert res.changed == ["journeys.yaml"] and not res.rewritten
    assert _diff(before, (rules / "journeys.yaml").read_text(encoding="utf-8")) == [
        "+    next: Thank-you call",
        "+  - step: Thank-you call",
        "+    within: 48h",
        "+    action: Call to thank for the answers",
        "+    channel: Phone",
        "+    owner: Care team",
        "+    done: callback_at",
        '+    only_if: {score: ">= 9"}',
        "+description: A survey 3 days after an order",
    ]
    rs = rulesets.load_or_raise(rules)
    j = rs.tables["order_survey"].journey
    assert [s.name for s in j.steps] == ["Satisfaction survey", "Thank-you call"] and j.steps[1].owner == "Care team"
    assert j.steps[1].only_if["score"].text == ">= 9" and j.steps[1].within.seconds == 48 * 3600
    assert all(r.passed for r in run_examples(rs, ["order_survey"]))


def test_a_leave_event_and_an_example_edited(rules, xlsx):
    before = (rules / "journeys.yaml").read_text(encoding="utf-8")
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["lapsed"]
    ws["E16"] = "a purchase ends the round"
    ex = wb["lapsed examples"]
    step = [c.column for c in ex[4] if c.value == "step"][0]
    ex.cell(5, step).value = "Lapsed"  # day 89 said '-': now a failing example, written all the same
    wb.save(xlsx)
    rulebook.import_book(xlsx, rules)
    assert _diff(before, (rules / "journeys.yaml").read_text(encoding="utf-8")) == [
        "-  - {on: last_purchase, step: Purchased}",
        "+  - {on: last_purchase, step: Purchased, description: a purchase ends the round}",
        '-  - {as_of: 2026-10-29, last_purchase: 2026-08-01, step: "-"}                                    # day 89',
        '+  - {as_of: 2026-10-29, last_purchase: 2026-08-01, step: "Lapsed"}                                    # day 89',  # its quotes kept
    ]


def test_bad_journey_cells_are_named_by_sheet_and_cell(xlsx, rules):
    before = _bytes(rules)
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["new_customer"]
    _, col = _steps(ws)
    wait = ws[f"{col['wait']}{_step_row(ws, 'Guide')}"]
    wait.value = "three days"
    nxt = ws[f"{col['next']}{_step_row(ws, 'Welcome coupon')}"]
    nxt.value = "Gide"
    cap = _cell(wb["contact_caps"], "[SMS]")
    cap.value = "[SMS"
    wb.save(xlsx)
    problems, _ = rulebook.check_book(xlsx)
    assert (problems.errors[0].sheet, problems.errors[0].cell) == ("contact_caps", cap.coordinate)  # a list that does not parse
    cap.value = "[SMS]"
    wb.save(xlsx)
    problems, _ = rulebook.check_book(xlsx)
    errors = {(p.sheet, p.cell): p for p in problems.errors}
    assert set(errors) == {("new_customer", wait.coordinate), ("new_customer", nxt.coordinate)}
    assert "'three days'" in errors[("new_customer", wait.coordinate)].message
    assert "next: 'Gide' is not a step" in errors[("new_customer", nxt.coordinate)].message
    assert errors[("new_customer", nxt.coordinate)].suggestion == "did you mean 'Guide'?"
    r = CliRunner().invoke(cli, ["check", str(xlsx)])
    assert r.exit_code == 1 and f"rules.xlsx, new_customer!{wait.coordinate}, table 'new_customer', column 'Guide': error: wait:" in r.output
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 1 and "nothing was written" in r.output and _bytes(rules) == before


def test_journey_check_findings_are_named_by_cell(xlsx):
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["lapsed"]
    _, col = _steps(ws)
    coupon, churn = (_step_row(ws, s) for s in ("CNY 50-off-200 coupon", "High churn risk"))
    ws[f"{col['next']}{coupon}"] = "Survey with CNY 10 coupon"  # a loop, and the last step reached by none
    new = wb["new_customer"]
    invite = _step_row(new, "Community invite")
    new[f"{col['wait']}{invite}"] = "3d"  # due with the guide, 3 days from start
    cc = wb["complaint_callback"]
    nps = _step_row(cc, "NPS callback")
    cc[f"{col['done']}{nps}"] = None  # the review case's wait counts from a date never filled
    wb.save(xlsx)
    problems, _ = rulebook.check_book(xlsx)
    found = {(p.code, p.sheet, p.cell) for p in problems}
    assert ("journey-loop", "lapsed", f"{col['next']}{coupon}") in found
    assert ("journey-unreachable", "lapsed", f"A{churn}") in found
    assert ("journey-together", "new_customer", f"A{invite}") in found
    assert ("journey-no-exit", "complaint_callback", f"A{nps}") in found
    r = CliRunner().invoke(cli, ["check", str(xlsx)])
    assert r.exit_code == 1 and f"rules.xlsx, lapsed!{col['next']}{coupon}, table 'lapsed', column 'CNY 50-off-200 coupon': error: journey 'lapsed' loops" in r.output


def test_test_names_the_cell_of_a_failing_journey_example(xlsx):
    ex = openpyxl.load_workbook(xlsx)
    ws = ex["order_survey examples"]
    due = [c.column_letter for c in ws[4] if c.value == "due"][0]
    ws[f"{due}5"] = "2026-11-24"
    ex.save(xlsx)
    r = CliRunner().invoke(cli, ["test", str(xlsx), "-d", "order_survey"])
    assert r.exit_code == 1
    assert r.output.startswith(f"FAIL rules.xlsx, 'order_survey examples'!{due}5: order_survey example 1")
    assert "  due: expected 2026-11-24, got 2026-11-23" in r.output
    assert r.output.strip().endswith("3 passed, 1 failed")


def test_a_journey_sheet_copied_and_renamed_is_a_new_journey(rules, xlsx):
    wb = openpyxl.load_workbook(xlsx)
    copy = wb.copy_worksheet(wb["order_survey"])
    copy["B2"], copy["B3"], copy["B4"] = "return_survey", "Survey after a return", "[Return survey, 退货回访]"
    head, col = _steps(wb["order_survey"])
    copy[f"{col['wait']}{head + 1}"] = "5d"
    wb.save(xlsx)
    before = (rules / "journeys.yaml").read_text(encoding="utf-8")
    res = rulebook.import_book(xlsx, rules)
    after = (rules / "journeys.yaml").read_text(encoding="utf-8")
    assert res.changed == ["journeys.yaml"] and after.startswith(before)
    assert after[len(before):].startswith("---\njourney: return_survey\ntitle: Survey after a return\n")
    j = rulesets.load_or_raise(rules).tables["return_survey"].journey
    assert j.steps[0].wait.seconds == 5 * 86400 and j.start_label == "Order completed"


def test_a_first_leave_event_and_steps_moved(rules, xlsx):
    before = (rules / "journeys.yaml").read_text(encoding="utf-8")
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["complaint_callback"]
    ref = ws.tables["leave_complaint_callback"].ref
    row = int(ref.split(":")[1][1:])  # the empty row of a journey without leave events
    ws[f"B{row}"], ws[f"C{row}"], ws[f"D{row}"] = "review_opened_on", "start", "Escalated to a review"
    new = wb["new_customer"]
    guide, invite = _step_row(new, "Guide"), _step_row(new, "Community invite")
    rows = [[c.value for c in new[r]] for r in (guide, invite)]
    for r, values in zip((guide, invite), reversed(rows)):  # the invite moved above the guide
        for c, v in enumerate(values, 1):
            new.cell(r, c).value = v
    wb.save(xlsx)
    res = rulebook.import_book(xlsx, rules)
    assert not res.rewritten
    after = (rules / "journeys.yaml").read_text(encoding="utf-8")
    guide_lines = ["  - step: Guide", "    wait: 3d", "    from: start", "    action: Send the getting-started guide",
                   "    channel: SMS", "    done: guide_sent_on"]
    # the guide's lines moved below the invite's, as they were; the leave events above steps:
    assert _diff(before, after) == ["-" + x for x in guide_lines] + ["+" + x for x in guide_lines] + [
        "+leave:", "+  - {on: review_opened_on, after: start, step: Escalated to a review}"]
    assert after.index("  - step: Community invite") < after.index("  - step: Guide")
    rs = rulebook.load_rules(rules)[0]
    assert [s.name for s in rs.tables["new_customer"].journey.steps] == ["Welcome coupon", "Community invite", "Guide"]
    assert rs.tables["complaint_callback"].journey.leave[0].label == "Escalated to a review"


TEXTS = st.text(alphabet=st.sampled_from(list("aZ09 -,:#'\"]()<>=.!&*}%@|?客户~") + ["\\"]), min_size=1, max_size=10).map(str.strip)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_any_edit_of_journey_cells_reads_back(data):
    """Any step, leave, start or setting cell of any journey set to any text (blank: the key
    removed) reads back as set, the lines of what did not change kept."""
    src = rulebook.read_source(BUNDLED)
    f = next(f for f in src.files if f.name == "journeys.yaml")
    journeys = []
    for j in src.journeys:
        def edit(cells, first=0):
            return [data.draw(TEXTS) if k >= first and data.draw(st.integers(0, 5)) == 0 else c for k, c in enumerate(cells)]

        steps = [dataclasses.replace(r, cells=[r.cells[0] or "x"] + edit(r.cells, 1)[1:]) for r in j.steps]
        leave = [dataclasses.replace(r, cells=edit(r.cells)) for r in j.leave]
        leave = [r for r in leave if any(r.cells)]
        start = {k: v for k, v in zip(START_COLS, edit([j.start.get(k, "") for k in START_COLS])) if v}
        props = {k: v for k, v in j.props.items() if k not in ("columns", "caps", "only_if")}  # kept as lists / maps
        props.update({k: v for k, v in zip(("title", "description"), edit([props.get("title", ""), props.get("description", "")])) if v})
        journeys.append(dataclasses.replace(j, steps=steps, leave=leave, start=start, props=props))
    res = rulebook.plan_import(rulebook.Book(journeys=journeys), src)
    text = res.texts.get("journeys.yaml", f.text)
    back = {d.name: d for d in read_file("journeys.yaml", text.encode("utf-8")).docs if isinstance(d, JourneyDoc)}
    for j in journeys:
        b = back[j.name]
        assert [r.cells for r in b.steps] == [r.cells for r in j.steps]
        assert [r.cells for r in b.leave] == [r.cells for r in j.leave]
        assert b.start == j.start and {k: v for k, v in b.props.items() if k in ("title", "description")} == \
            {k: v for k, v in j.props.items() if k in ("title", "description")}
    if not res.rewritten:  # comments stay
        assert [x for x in f.text.splitlines() if x.startswith("#")] == [x for x in text.splitlines() if x.startswith("#")]


def test_a_journey_renamed_deleted_or_copied_unrenamed(rules, xlsx):
    before = _bytes(rules)
    wb = openpyxl.load_workbook(xlsx)
    wb.copy_worksheet(wb["lapsed"]).title = "lapsed again"
    wb.save(xlsx)
    problems, _ = rulebook.check_book(xlsx)
    assert [(p.sheet, p.cell, p.message) for p in problems.errors] == [("lapsed again", "B2", "journey 'lapsed' is also on sheet 'lapsed'")]
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 1 and _bytes(rules) == before
    wb = openpyxl.load_workbook(xlsx)
    del wb["lapsed again"], wb["order_survey"], wb["order_survey examples"]  # a sheet deleted: the journey is kept
    wb["new_customer"]["B2"] = "welcome"  # renamed on its sheet; its examples sheet still says new_customer
    wb.save(xlsx)
    text = (rules / "journeys.yaml").read_text(encoding="utf-8")
    r = CliRunner().invoke(cli, ["rules", "import", str(xlsx), str(rules)])
    assert r.exit_code == 0 and "journey 'order_survey' has no sheet in the workbook; kept as it is" in r.output
    assert _diff(text, (rules / "journeys.yaml").read_text(encoding="utf-8")) == ["-journey: new_customer", "+journey: welcome"]
    rs = rulesets.load_or_raise(rules)
    assert "welcome" in rs.tables and "order_survey" in rs.tables and len(rs.tables["welcome"].examples) == 14
