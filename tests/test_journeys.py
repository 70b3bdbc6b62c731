"""Journeys: bundled examples, replay from dated facts, check findings, recalc columns."""
import datetime as dt
import shutil
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrules.checker import check_ruleset
from cxrules.evaluation import Evaluator
from cxrules.loader import load_rules
from cxrules.recalc import recalc
from cxrules.testing import run_examples

RULES = Path(__file__).resolve().parent.parent / "rules"
JOURNEYS = ("new_customer", "lapsed", "order_survey", "complaint_callback", "vip_follow_up")


@pytest.fixture(scope="module")
def rs():
    rs, problems = load_rules(RULES)
    assert not [p for p in problems if p.is_error], problems.items
    return rs


@pytest.fixture(scope="module")
def ev(rs):
    return Evaluator(rs)


def test_bundled_journey_examples_pass_and_cover_every_step(rs, ev):
    results = [r for r in run_examples(rs, list(JOURNEYS), ev)]
    failed = [r.describe() for r in results if not r.passed]
    assert not failed, "\n".join(failed)
    for name in JOURNEYS:
        j = rs.tables[name].journey
        seen = {r.expected.get("step") for r in results if r.table == name}
        assert {s.name for s in j.steps} | {"Completed"} <= seen, name
    assert {"Replied to the survey", "Purchased"} <= {r.expected.get("step") for r in results if r.table == "lapsed"}
    assert any(r.expected.get("deferred") for r in results if r.table == "new_customer")


def test_an_example_that_is_wrong_fails(rs, ev):
    t = rs.tables["lapsed"]
    e = t.examples[4]  # day 7 after the survey: the CNY 50 coupon
    wrong = type(e)(e.index, dict(e.inputs, as_of=dt.datetime(2026, 11, 5, 10)), e.expected, e.loc)
    t2 = type(t)(**{**t.__dict__, "examples": [wrong]})
    from cxrules.journey_replay import run_examples as run_j
    (r,) = run_j(ev, t2)
    assert not r.passed and "step" in r.mismatches


def _one(ev, journey, as_of, **facts):
    r = ev.evaluate([facts], journey, as_of)
    return {k[len(journey) + 1:]: v[0] for k, v in r.columns.items() if k.startswith(journey + "_") and not k.startswith("_")}


@pytest.mark.parametrize("day, step, due", [
    (3, "Welcome coupon", dt.date(2026, 11, 4)),  # the day before the 3-day wait ends
    (4, "Guide", dt.date(2026, 11, 4)),  # the day of
    (5, "Guide", dt.date(2026, 11, 4)),  # the day after: still due, now overdue
])
def test_guide_wait_edges(ev, day, step, due):
    got = _one(ev, "new_customer", dt.datetime(2026, 11, day, 9), signed_up_on=dt.date(2026, 11, 1), welcome_sent_on=dt.date(2026, 11, 1))
    assert (got["step"], got["due"], got["next_action"]) == (step, due, "Send the getting-started guide")


def test_reply_ends_the_lapsed_journey_and_a_late_reply_does_not_resurrect_it(ev):
    base = dict(last_purchase=dt.date(2026, 8, 1), survey_sent_on=dt.date(2026, 10, 30))
    got = _one(ev, "lapsed", dt.datetime(2026, 11, 10), replied_on=dt.date(2026, 11, 2), **base)
    assert got["step"] == "Replied to the survey" and got["next_action"] is None and got["due"] is None
    # a reply dated after the moment of the run has not happened yet
    got = _one(ev, "lapsed", dt.datetime(2026, 11, 1), replied_on=dt.date(2026, 11, 2), **base)
    assert got["step"] == "Survey with CNY 10 coupon" and got["due"] == dt.date(2026, 11, 6)


def test_caps_defer_and_say_why(ev):
    facts = dict(signed_up_on=dt.date(2026, 11, 1), welcome_sent_on=dt.date(2026, 11, 1), tier="High value", eligible_pushes_30d=10)
    at = dt.datetime(2026, 11, 4, 9)
    assert _one(ev, "new_customer", at, pushes_30d=7, **facts)["deferred"].startswith("Deferred - high value")
    assert _one(ev, "new_customer", at, pushes_30d=6, **facts)["deferred"] is None
    vip = dict(facts, tier="VIP")
    assert _one(ev, "new_customer", at, **vip)["deferred"] == "Deferred - no SMS to VIPs"


def test_a_bad_date_is_a_row_problem_and_other_rows_compute(ev):
    rows = [{"signed_up_on": "soon"}, {"signed_up_on": dt.date(2026, 11, 1)}]
    r = ev.evaluate(rows, "new_customer", dt.datetime(2026, 11, 2))
    assert r.columns["new_customer_step"] == [None, "Welcome coupon"]
    assert any(p.index == 0 and p.name == "signed_up_on" for p in r.problems)


@pytest.mark.parametrize("given_as", ["date", "datetime", "text", "mixed"])
def test_a_date_column_of_any_cell_kind_walks_as_its_dates(ev, given_as):
    """Dates as date cells, midnight datetimes, text, or a mix of the three: the same steps;
    text is read, with a warning for each such cell."""
    days = [dt.date(2026, 11, 1), dt.date(2026, 10, 1), None, dt.date(2026, 11, 3)] * 20
    kinds = {"date": lambda d, i: d, "datetime": lambda d, i: dt.datetime(d.year, d.month, d.day),
             "text": lambda d, i: d.isoformat(), "mixed": lambda d, i: [d, dt.datetime(d.year, d.month, d.day), d.isoformat()][i % 3]}
    rows = [{"signed_up_on": None if d is None else kinds[given_as](d, i)} for i, d in enumerate(days)]
    r = ev.evaluate(rows, "new_customer", dt.datetime(2026, 11, 5, 9))
    want = ev.evaluate([{"signed_up_on": d} for d in days], "new_customer", dt.datetime(2026, 11, 5, 9))
    for k in ("new_customer_step", "new_customer_due", "new_customer_since"):
        assert r.columns[k] == want.columns[k], k
    as_text = sorted(p.index for p in r.problems if "stored as text" in p.message)
    assert as_text == [i for i, row in enumerate(rows) if isinstance(row["signed_up_on"], str)]


# ------------------------------------------------------------------ replay
HEADER = ["Customer ID", "Signed up on", "Welcome coupon sent on", "Guide sent on", "Community invite sent on",
          "Last purchase", "Win-back survey sent on", "Replied on", "CNY 50 coupon sent on", "Senior callback on"]
DAY0 = dt.date(2026, 9, 1)
days = st.one_of(st.none(), st.integers(0, 120))


def _book(path, rows):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(HEADER)
    for k, r in enumerate(rows):
        ws.append([f"C{k}"] + [None if d is None else DAY0 + dt.timedelta(days=d) for d in r])
    for row in ws.iter_rows(min_row=2):
        for c in row[1:]:
            c.number_format = "yyyy-mm-dd"
    wb.save(path)


def _results(path):
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = list(wb["Customers"].iter_rows(values_only=True))
    keep = [j for j, h in enumerate(rows[0]) if h and "journey:" in str(h)]
    assert keep
    return [[r[j] for j in keep] for r in rows[1:]]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(*[days] * 9), min_size=1, max_size=4),
       times=st.lists(st.integers(0, 200), min_size=2, max_size=4))
def test_results_depend_only_on_dated_facts_and_as_of(tmp_path_factory, ev, rows, times):
    """A workbook recalculated at one moment after another gives, at each, what a fresh run gives."""
    d = tmp_path_factory.mktemp("replay")
    _book(d / "orig.xlsx", rows)
    shutil.copy(d / "orig.xlsx", d / "rolling.xlsx")
    for t in times:
        at = dt.datetime.combine(DAY0, dt.time(10)) + dt.timedelta(days=t)
        recalc(d / "rolling.xlsx", ev, at)
        shutil.copy(d / "orig.xlsx", d / "fresh.xlsx")
        recalc(d / "fresh.xlsx", ev, at)
        assert _results(d / "rolling.xlsx") == _results(d / "fresh.xlsx")


# ------------------------------------------------------------------ check
FIELDS = """fields:
  a_on: {type: date, columns: [A on]}
  b_on: {type: date, columns: [B on]}
  c_on: {type: date, columns: [C on]}
  d_on: {type: date, columns: [D on]}
"""


def _check(tmp_path, steps: str):
    (tmp_path / "j.yaml").write_text(FIELDS + "---\njourney: demo\nstart: {from: a_on}\nsteps:\n" + steps, encoding="utf-8")
    rs, problems = load_rules(tmp_path / "j.yaml", base=tmp_path)
    return list(problems) + (check_ruleset(rs) if not problems.errors else [])


def _lines(tmp_path, steps):
    return [(p.code, p.file, p.line, p.severity) for p in _check(tmp_path, steps) if p.code.startswith("journey")]


def test_check_finds_a_loop(tmp_path):
    steps = ("  - {step: One, action: a, done: b_on}\n"
             "  - {step: Two, wait: 3d, action: b, done: c_on, next: One}\n")
    assert _lines(tmp_path, steps) == [("journey-loop", "j.yaml", 11, "error")]


def test_check_finds_a_step_nobody_reaches(tmp_path):
    steps = ("  - {step: One, action: a, done: b_on, next: Three}\n"
             "  - {step: Two, wait: 3d, action: b, done: c_on}\n"
             "  - {step: Three, wait: 3d, action: c, done: d_on}\n")
    assert _lines(tmp_path, steps) == [("journey-unreachable", "j.yaml", 11, "warning")]


def test_check_finds_a_wait_with_no_exit(tmp_path):
    steps = ("  - {step: One, action: a}\n"
             "  - {step: Two, wait: 3d, action: b, done: c_on}\n")
    assert _lines(tmp_path, steps) == [("journey-no-exit", "j.yaml", 10, "error")]


def test_check_finds_two_steps_that_fire_together(tmp_path):
    steps = ("  - {step: One, action: a, done: b_on}\n"
             "  - {step: Two, wait: 3d, from: start, action: b, done: c_on}\n"
             "  - {step: Three, wait: 3d, from: start, action: c, done: d_on}\n")
    assert _lines(tmp_path, steps) == [("journey-together", "j.yaml", 12, "warning")]


def test_a_sound_journey_has_no_findings(tmp_path):
    steps = ("  - {step: One, action: a, done: b_on}\n"
             "  - {step: Two, wait: 3d, action: b, done: c_on}\n"
             "  - {step: Three, wait: 7d, from: start, action: c, done: d_on}\n")
    assert _check(tmp_path, steps) == []


def test_unknown_names_are_said_with_their_line(tmp_path):
    steps = "  - {step: One, action: a, done: b_onn}\n"
    (p,) = [p for p in _check(tmp_path, steps) if p.is_error]
    assert (p.line, p.code) == (10, "unknown-field") and "b_on" in p.suggestion


# ------------------------------------------------------------------ recalc
def test_recalc_writes_journey_columns_in_english_and_chinese(tmp_path, ev):
    for lang, header, want in (("en", ["Signed up on", "Welcome coupon sent on", "Guide sent on", "Community invite sent on", "Tier"], "Guide"),
                               ("zh", ["注册日期", "欢迎券发放日期", "新手指南发送日期", "社群邀请日期", "客户层级"], "新手指南")):
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(header)
        ws.append([dt.date(2026, 11, 1), dt.date(2026, 11, 1), None, None, None])
        ws.append([dt.date(2026, 11, 1), dt.date(2026, 11, 1), None, None, "VIP"])  # SMS held back: not overdue
        ws.append([dt.date(2026, 11, 1), dt.date(2026, 11, 1), dt.date(2026, 11, 4), None, None])  # invite due on the 8th
        path = tmp_path / f"{lang}.xlsx"
        wb.save(path)
        recalc(path, ev, dt.datetime(2026, 11, 5, 9))
        rows = list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))
        got = [dict(zip(rows[0], r)) for r in rows[1:]]
        step, due, deferred, late = (("New-customer journey: step", "New-customer journey: due", "New-customer journey: deferred", "Days overdue")
                                     if lang == "en" else ("新客户旅程：步骤", "新客户旅程：到期日", "新客户旅程：暂缓原因", "逾期天数"))
        assert got[0][step] == want and got[0][due] == dt.datetime(2026, 11, 4) and got[0][late] == 1
        assert got[1][deferred] in ("Deferred - no SMS to VIPs", "暂缓：贵宾客户不发短信") and not got[1][late]
        assert got[2][due] == dt.datetime(2026, 11, 8) and not got[2][late]


@pytest.mark.parametrize("doc, line, words", [
    ("contact_caps:\n  c1: {label: x, at_most: lots, sent: n_on, eligible: n_on}\n", 8, "at_most must be a share such as 70 %"),
    ("contact_caps:\n  c1: {label: x}\n", 8, "limits nothing"),
    ("journey: j\nstart: {from: a_on}\ncaps: [c9]\nsteps:\n  - {step: One, action: a, done: b_on}\n", 9, "names cap 'c9'"),
    ("journey: j\nstart: {from: a_on}\nleave:\n  - {on: b_on, after: Two}\nsteps:\n  - {step: One, action: a, done: b_on}\n", 10, "leave: after: 'Two'"),
    ("journey: j\nstart: {from: a_on, wait: soon}\nsteps:\n  - {step: One, action: a, done: b_on}\n", 8, "start: wait"),
    ("journey: j\nstart: {from: a_on}\nsteps:\n  - {step: One, action: a, done: b_on, only_if: {tierr: VIP}}\n", 10, "only_if: tests 'tierr'"),
    ("journey: j\nstart: {from: a_on}\nsteps:\n  - {step: One, done: b_on}\nexamples:\n  - {as_of: 2026-11-01, stepp: One}\n", 10, "needs action:"),
])
def test_journey_mistakes_are_one_line_each_with_their_line(tmp_path, doc, line, words):
    (tmp_path / "j.yaml").write_text(FIELDS.replace("d_on: {type: date", "n_on: {type: number") + "---\n" + doc, encoding="utf-8")
    rs, problems = load_rules(tmp_path / "j.yaml", base=tmp_path)
    hits = [p for p in problems if words in p.message]
    assert hits and hits[0].line == line and hits[0].file == "j.yaml" and "\n" not in hits[0].message, [str(p) for p in problems]


def test_check_cli_reports_a_journey_loop_without_a_traceback(tmp_path):
    from click.testing import CliRunner
    from cxrules.cli import cli

    (tmp_path / "j.yaml").write_text(FIELDS + "---\njourney: demo\nstart: {from: a_on}\nsteps:\n"
                                     "  - {step: One, action: a, done: b_on}\n  - {step: Two, wait: 3d, action: b, done: c_on, next: One}\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["check", str(tmp_path / "j.yaml")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "j.yaml:11" in r.output and "loops: One -> Two -> One" in r.output


def test_dates_the_replay_leaves_out_are_warned_by_row(ev):
    """A survey dated next year (a mistyped year) and a reply dated before its survey would
    otherwise change the step without a word; the other rows get no warning."""
    from cxrules.recalc import translator

    base = dict(last_purchase=dt.date(2026, 8, 1))
    rows = [dict(base, survey_sent_on=dt.date(2027, 10, 30)),
            dict(base, survey_sent_on=dt.date(2026, 10, 30), replied_on=dt.date(2026, 10, 20)),
            dict(base, survey_sent_on=dt.date(2026, 10, 30), replied_on=dt.date(2026, 11, 2))]
    r = ev.evaluate(rows, "lapsed", dt.datetime(2026, 11, 10))
    said = sorted((p.index, p.name, p.severity, p.message) for p in r.problems)
    assert said == [
        (0, "survey_sent_on", "warning", "Win-back survey sent on (2027-10-30) is after the moment of the run (2026-11-10 00:00), so it does not count yet"),
        (1, "replied_on", "warning", "Replied on (2026-10-20) is before Win-back survey sent on (2026-10-30), so it does not count"),
    ]
    assert r.columns["lapsed_step"] == ["Survey with CNY 10 coupon", "CNY 50-off-200 coupon", "Replied to the survey"]
    tr = translator(ev.rs, "zh")
    assert tr(said[1][3]) == "回复日期（2026-10-20）早于挽回问卷发送日期（2026-10-30），不计入"
    assert tr(said[0][3]).endswith("晚于本次计算的时刻（2026-11-10 00:00），暂不计入")
