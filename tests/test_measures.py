"""Derived inputs over dated rows (cxrules/measures.py) and the bundled alerts over measures."""
import datetime as dt
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxrules import measures, rulesets
from cxrules.evaluation import Evaluator
from cxrules.rulesets import load as load_paths
from cxrules.unary import parse_test

ROOT = Path(__file__).resolve().parents[1]
D0 = dt.date(2026, 11, 1)
AS_OF = dt.datetime(2026, 11, 23, 10, 0)


def day(k):
    return D0 + dt.timedelta(days=k)


@pytest.fixture(scope="module")
def ev():
    return Evaluator(rulesets.load_or_raise(ROOT / "rules"))


def alerts(ev, rows):
    """The bundled alert tables over measure rows given as dicts."""
    cols = {k: [r.get(k) for r in rows] for k in ("measure_date", "department", "net_promoter_score", "churn_percent", "negative_feedback")}
    out = ev.evaluate_columns(cols, len(rows), ["nps_alert", "churn_alert", "feedback_alert"], AS_OF)
    return out


# ------------------------------------------------------------------ the derivations themselves
def test_week_over_week_compares_with_the_same_group_seven_days_earlier():
    values = [75, 80, 71.25, 84, 50]
    dates = [day(0), day(0), day(7), day(7), day(8)]
    groups = ["A", "B", "A", "B", "A"]
    out, problems = measures.week_over_week(values, dates, groups)
    assert out == [None, None, -5.0, 5.0, None]  # A: 75 -> 71.25 is exactly -5 %; day 8 has no day 1
    assert problems == []


def test_week_over_week_without_groups_and_with_blanks_and_zero():
    out, _ = measures.week_over_week([0, None, 10, 12, 3], [day(0), day(1), day(7), day(8), None])
    assert out == [None, None, None, None, None]  # earlier 0, earlier blank, no date
    out, _ = measures.week_over_week([-40, -50], [day(0), day(7)])
    assert out == [None, -25.0]  # a negative NPS falling further is a fall


def test_two_rows_for_one_day_are_a_problem_of_both_not_a_guess():
    out, problems = measures.week_over_week([60, 61, 50], [day(0), day(0), day(7)], ["A", "A", "A"], "NPS", "Department")
    assert out == [None, None, None]
    assert sorted(i for i, _ in problems) == [0, 1, 2]
    assert "2 rows are dated 2026-11-01 for Department A" in problems[0][1]
    # the same row pasted twice is one value, not a problem
    out, problems = measures.week_over_week([60, 60, 57], [day(0), day(0), day(7)], ["A", "A", "A"])
    assert (out, problems) == ([None, None, -5.0], [])
    out, problems = measures.days_in_a_row([6, 6, 6], [day(0), day(0), day(1)], parse_test("> 5", "number"), "number")
    assert (out, problems) == ([1, 1, 2], [])


def test_days_in_a_row_counts_consecutive_days_and_a_gap_breaks_the_run():
    test = parse_test("> 5", "number")
    rates = [5.1, 6, 7, 5.0, 5.5, 5.6, 9]
    dates = [day(0), day(1), day(2), day(3), day(4), day(5), day(7)]  # no row on day 6
    out, problems = measures.days_in_a_row(rates, dates, test, "number")
    assert out == [1, 2, 3, 0, 1, 2, 1]
    assert problems == []


def test_days_in_a_row_keeps_departments_apart_and_ignores_row_order():
    test = parse_test("> 5", "number")
    rows = [(day(0), "A", 6), (day(1), "A", 6), (day(2), "A", 6), (day(0), "B", 6), (day(1), "B", 4), (day(2), "B", 6)]
    rng = random.Random(1)
    rng.shuffle(rows)
    out, _ = measures.days_in_a_row([r[2] for r in rows], [r[0] for r in rows], test, "number", [r[1] for r in rows])
    got = {(r[1], r[0]): n for r, n in zip(rows, out)}
    assert got[("A", day(2))] == 3 and got[("B", day(2))] == 1 and got[("B", day(1))] == 0


def test_last_days_counts_and_sums_the_window_ending_on_the_rows_day():
    values = [1, 2, None, 4, 8]
    dates = [day(0), day(3), day(5), day(6), day(7)]
    assert measures.last_days(values, dates, 7, total=True)[0] == [1, 3, 3, 7, 14]  # day 7: days 1..7
    assert measures.last_days(values, dates, 7, total=False)[0] == [1, 2, 2, 3, 3]
    assert measures.last_days(values, dates, 1, total=True)[0] == [1, 2, 0, 4, 8]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.sampled_from("AB"), st.one_of(st.none(), st.integers(0, 9))), max_size=25),
       st.integers(1, 10))
def test_last_days_equals_a_plain_count(rows, n):
    dates, groups, values = [day(r[0]) for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    sums, _ = measures.last_days(values, dates, n, True, groups)
    counts, _ = measures.last_days(values, dates, n, False, groups)
    for i, (d, g, _v) in enumerate(rows):
        window = [v for (d2, g2, v) in rows if g2 == g and d - n < d2 <= d and v is not None]
        assert sums[i] == sum(window) and counts[i] == len(window)


# ------------------------------------------------------------------ the bundled alerts over rows
def series(dep, start, nps=None, churn=None, neg=None):
    n = max(len(x) for x in (nps or [], churn or [], neg or []))
    return [{"measure_date": day(start + k), "department": dep,
             "net_promoter_score": (nps or [None] * n)[k], "churn_percent": (churn or [None] * n)[k],
             "negative_feedback": (neg or [None] * n)[k]} for k in range(n)]


def test_nps_alert_fires_at_exactly_five_percent_down_and_not_just_under(ev):
    rows = series("A", 0, nps=[60, 60, 60, 60, 60, 60, 60, 57, 57.01, 70]) + series("B", 0, nps=[60] * 7 + [50])
    out = ev and alerts(ev, rows)
    got = out.columns["nps_alert"]
    assert got[7] == "Root-cause analysis"  # 60 -> 57: -5 %
    assert got[8] is None  # 60 -> 57.01: -4.98 %
    assert got[9] is None  # up
    assert got[:7] == [None] * 7  # no week-earlier row yet
    assert got[17] == "Root-cause analysis"  # B's own drop, not compared with A
    assert out.columns["rca_due"][7] == dt.date(2026, 11, 9)  # 24 h after the day: the next day


def test_churn_alert_on_the_third_day_above_five_percent(ev):
    rows = series("A", 0, churn=[5.0, 5.1, 6.0, 7.2, 4.9, 5.5, 5.5])
    got = alerts(ev, rows).columns["churn_alert"]
    assert got == [None, None, None, "Churn above 5 % three days running", None, None, None]


def test_feedback_alert_when_the_last_seven_days_reach_thirty(ev):
    rows = series("A", 0, neg=[10, 5, 5, 5, 4, 0, 1, 0]) + series("B", 0, neg=[29])
    out = alerts(ev, rows)
    got = out.columns["improvement_plan"]
    # A: 29 on day 5, 30 on day 6 (days 0-6), 20 on day 7 (day 0 has left the window)
    assert got[:8] == [None] * 6 + ["Department improvement plan", None]
    assert got[8] is None  # B: 29
    assert out.columns["plan_due"][6] == dt.date(2026, 11, 9)  # 48 h after the day


def test_a_duplicate_day_is_a_row_problem_and_the_other_rows_still_run(ev):
    rows = series("A", 0, churn=[6, 6, 6]) + series("A", 2, churn=[4]) + series("B", 0, churn=[6, 6, 6])
    out = alerts(ev, rows)
    assert out.columns["churn_alert"][4:] == [None, None, "Churn above 5 % three days running"]  # B
    assert {p.index for p in out.problems if "rows are dated 2026-11-03" in p.message} == {2, 3}


# ------------------------------------------------------------------ cxrules check on bad from:
BAD = {
    "week_over_weak(net_promoter_score, measure_date)": "unknown derivation 'week_over_weak()'",
    "week_over_week(net_promoter_score)": "week_over_week() takes 2 arguments and an optional 'by GROUP', got 1",
    "week_over_week(department, measure_date)": "week_over_week() needs a number field, but 'department' is text",
    "week_over_week(net_promoter_score, department)": "needs a date or datetime field to date the rows, but 'department' is text",
    "week_over_week(net_promoter_score, measure_dat)": "reads 'measure_dat' as its date, which is neither a field nor an input column",
    "week_over_week(net_promoter_score, measure_date, by dept)": "reads 'dept' as its group, which is neither a field nor an input column",
    "sum_last_days(net_promoter_score, measure_date, seven)": "the number of days must be a whole number from 1 to 3660, not 'seven'",
    "count_last_days(net_promoter_score, measure_date, 0)": "the number of days must be a whole number from 1 to 3660, not '0'",
    "days_in_a_row(net_promoter_score, measure_date, > five)": "days_in_a_row(): the test '> five' for 'net_promoter_score': 'five' is not a number",
}


@pytest.mark.parametrize("frm", BAD)
def test_check_names_a_bad_derivation_with_file_and_line(tmp_path, frm):
    src = (ROOT / "rules" / "alerts.yaml").read_text(encoding="utf-8").split("---")[0]
    (tmp_path / "a.yaml").write_text(src + f"""---
decision: probe
inputs:
  x: {{type: number, from: "{frm}"}}
outputs:
  y: {{type: text}}
rules:
  - ["-", ok]
""", encoding="utf-8")
    rs, problems = load_paths([tmp_path])
    errors = [p for p in problems if p.severity == "error"]
    assert len(errors) == 1, [p.message for p in errors]
    p = errors[0]
    assert BAD[frm] in p.message
    assert p.suggestion  # what to write instead
    line = (tmp_path / "a.yaml").read_text(encoding="utf-8").splitlines().index(f'  x: {{type: number, from: "{frm}"}}') + 1
    assert (p.file.endswith("a.yaml"), p.line, p.table, p.column) == (True, line, "probe", "x")


def test_a_test_with_commas_and_a_group_read_right(tmp_path):
    (tmp_path / "a.yaml").write_text("""fields:
  day: {type: date, columns: [Day]}
  status: {type: text, columns: [Status]}
  team: {type: text, columns: [Team]}
---
decision: red_days
hit: first
inputs:
  n: {type: number, from: "days_in_a_row(status, day, Red, Amber, by team)"}
outputs:
  y: {type: text}
rules:
  - [">= 2", two]
  - ["-", "-"]
""", encoding="utf-8")
    rs, problems = load_paths([tmp_path])
    assert not [p for p in problems if p.severity == "error"], [p.message for p in problems]
    d = rs.tables["red_days"].inputs[0].derive
    assert (d.field, d.date, d.by, d.test.text) == ("status", "day", "team", "Red, Amber")
    out = Evaluator(rs).evaluate_columns({"day": [day(0), day(1), day(2)], "status": ["red", "Amber", "Green"], "team": ["T"] * 3},
                                         3, ["red_days"], AS_OF)
    assert out.columns["n"] == [1, 2, 0]


def test_the_duplicate_day_message_reads_in_chinese(ev):
    from cxrules.recalc import translator

    rows = series("物流配送部", 0, churn=[6, 7])
    rows[1]["measure_date"] = day(0)
    out = alerts(ev, rows)
    (msg,) = {p.message for p in out.problems}
    assert msg == "2 rows are dated 2026-11-01 for Department Delivery, so the days in a row of Churn rate (%) cannot tell which to use; keep one row per day"
    tr = translator(ev.rs, "zh")
    assert tr(msg) == "部门为 物流配送部 的行中有 2 行日期都是 2026-11-01，无法确定用哪一行计算流失率(%)的连续天数；每天只保留一行"
    assert tr("remove or merge the duplicate row") == "删除或合并重复的行"


def test_a_blank_department_is_a_row_problem_not_a_lost_alert(ev):
    """Compared only with other blank rows, its churn run or NPS drop would vanish without a word."""
    rows = series("A", 0, churn=[6, 6, 6]) + series("B", 0, churn=[6, 6, 6])
    rows[5]["department"] = None
    out = alerts(ev, rows)
    assert out.columns["churn_alert"][:3] == [None, None, "Churn above 5 % three days running"]  # A still runs
    assert out.columns["churn_alert"][5] is None
    said = {(p.message, p.suggestion) for p in out.problems if p.index == 5}
    assert ("Department is blank, so Churn rate (%) cannot be compared with other days", "fill in Department") in said
    assert not [p for p in out.problems if p.index != 5]
    from cxrules.recalc import translator

    tr = translator(ev.rs, "zh")
    assert tr("Department is blank, so Churn rate (%) cannot be compared with other days") == "部门为空，无法将流失率(%)与其他日期比较"
    assert tr("fill in Department") == "请填写部门"
