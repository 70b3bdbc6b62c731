"""Evaluating rule sets over rows: what a user sees in the results."""
import datetime as dt
import textwrap

import pytest

from cxrules.evaluation import Evaluator
from cxrules.loader import load_rules
from cxrules.problems import RuleSetError
from cxrules import rulesets
from cxrules.values import Duration

AS_OF = dt.datetime(2026, 11, 23, 10, 0)


def load(tmp_path, text, name="rules.yaml"):
    (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    rs, problems = load_rules(tmp_path)
    assert not problems.errors, [str(p) for p in problems]
    return Evaluator(rs)


SPEND = """\
decision: tier
hit: {hit}
inputs:
  spend: {{type: number, columns: [Spend]}}
  kind:  {{type: text, columns: [Kind]}}
outputs:
  tier: {{type: text, allowed: [VIP, Gold, Regular]}}
  points: {{type: number}}
rules:
  - [">= 5000", "-",            VIP,     3]
  - [">= 1000", "Shop, Online", Gold,    2]
  - ["< 1000",  "-",            Regular, 1]
"""


def test_bad_cell_blanks_only_its_row(tmp_path):
    ev = load(tmp_path, SPEND.format(hit="first"))
    rows = [{"spend": 6000}, {"spend": "lots"}, {"spend": "1,500", "kind": "shop"}, {"spend": "#N/A"}, {"spend": 10}]
    r = ev.evaluate(rows, "tier", AS_OF)
    assert r.columns["tier"] == ["VIP", None, "Gold", None, "Regular"]
    assert r.columns["points"] == [3, None, 2, None, 1]
    msgs = {(p.index, p.name): p.message for p in r.problems}
    assert msgs[(1, "spend")] == "'lots' is not a number"
    assert msgs[(3, "spend")] == "the cell holds the Excel error #N/A"


def test_no_match_is_reported_per_row_not_raised(tmp_path):
    ev = load(tmp_path, SPEND.format(hit="first"))
    r = ev.evaluate([{"spend": 2000, "kind": "Phone"}, {"spend": 9000}, {}], "tier", AS_OF)
    assert r.columns["tier"] == [None, "VIP", None]
    assert [(p.index, p.message, p.severity) for p in r.problems] == [
        (0, "no rule row of 'tier' matched this row", "warning"),
        (2, "no rule row of 'tier' matched this row", "warning"),
    ]
    assert r.fired["tier"] == [None, 1, None]


def test_identical_rows_are_not_collapsed(tmp_path):
    ev = load(tmp_path, SPEND.format(hit="first"))
    rows = [{"spend": 6000}] * 1234 + [{"spend": 10}] * 766
    r = ev.evaluate(rows, "tier", AS_OF)
    assert r.columns["tier"].count("VIP") == 1234
    assert r.columns["tier"].count("Regular") == 766


def test_unique_violation_blanks_the_row_and_names_the_rows(tmp_path):
    ev = load(tmp_path, SPEND.format(hit="unique"))
    r = ev.evaluate([{"spend": 6000, "kind": "Online"}, {"spend": 6000, "kind": "Phone"}], "tier", AS_OF)
    assert r.columns["tier"] == [None, "VIP"]
    assert r.problems[0].message == "rule rows 1 and 2 of 'tier' all match this row (a unique table allows one)"
    assert r.problems[0].severity == "error"


def test_priority_picks_by_allowed_order_not_row_order(tmp_path):
    ev = load(tmp_path, """\
        decision: tier
        hit: priority
        inputs:
          spend: {type: number}
        outputs:
          tier: {type: text, allowed: [VIP, Gold, Regular]}
        rules:
          - ["-",       Regular]
          - [">= 1000", Gold]
          - [">= 5000", VIP]
        """)
    r = ev.evaluate([{"spend": 6000}, {"spend": 1500}, {"spend": 5}], "tier", AS_OF)
    assert r.columns["tier"] == ["VIP", "Gold", "Regular"]
    assert r.fired["tier"] == [3, 2, 1]


COLLECT = """\
decision: points
hit: {hit}
inputs:
  spend: {{type: number}}
  kind:  {{type: text}}
outputs:
  points: {{type: number}}
rules:
  - [">= 5000", "-",            3]
  - [">= 1000", "Shop, Online", 2]
  - ["-",       "-",            1]
  - ["< 0",     "-",            9]
"""


@pytest.mark.parametrize("hit, want", [
    ("collect sum", [6, 1, None]), ("collect max", [3, 1, None]), ("collect min", [1, 1, None]),
    ("collect count", [3, 1, 0]), ("rule order", [[3, 2, 1], [1], []]), ("collect", [[3, 2, 1], [1], []]),
])
def test_collect_policies(tmp_path, hit, want):
    ev = load(tmp_path, COLLECT.format(hit=hit).replace('["-",       "-",            1]', '["-", not(blank), 1]'))
    r = ev.evaluate([{"spend": 6000, "kind": "Shop"}, {"spend": 10, "kind": "x"}, {"spend": 10}], "points", AS_OF)
    assert r.columns["points"] == want
    assert r.fired["points"][0] == [1, 2, 3]


def test_text_matches_ignore_case_and_spaces(tmp_path):
    ev = load(tmp_path, SPEND.format(hit="first"))
    r = ev.evaluate([{"spend": 1500, "kind": "  ONLINE "}], "tier", AS_OF)
    assert r.columns["tier"] == ["Gold"]


def test_derived_inputs_and_percentile(tmp_path):
    ev = load(tmp_path, """\
        fields:
          last_purchase: {type: date, columns: [Last purchase]}
        ---
        decision: rank
        hit: first
        inputs:
          recency: {type: number, from: days_since(last_purchase)}
          spend:   {type: number}
          top:     {type: number, from: percentile(spend)}
        outputs:
          label: {type: text}
        rules:
          - ["> 90", "-", "-", Lapsed]
          - ["-", "-", ">= 80", Top]
          - ["-", "-", "-", Other]
        """)
    rows = [{"spend": s, "last_purchase": "2026-11-01"} for s in range(1, 11)]
    rows[0]["last_purchase"] = dt.date(2026, 8, 1)
    r = ev.evaluate(rows, "rank", AS_OF)
    assert r.columns["recency"][:2] == [114, 22]
    assert r.columns["top"][9] == 100.0 and r.columns["top"][1] == pytest.approx(100 / 9)
    # top 20 % of ten customers is two (Excel's PERCENTRANK.INC x 100)
    assert r.columns["label"] == ["Lapsed"] + ["Other"] * 7 + ["Top"] * 2


def test_edited_rules_reload_under_a_new_name(tmp_path):
    ev1 = load(tmp_path, SPEND.format(hit="first"))
    c1 = ev1.compiled(ev1.rs.tables["tier"]).name
    ev2 = load(tmp_path, SPEND.format(hit="first").replace(">= 5000", ">= 7000"))
    c2 = ev2.compiled(ev2.rs.tables["tier"]).name
    assert c1 != c2
    assert ev1.evaluate([{"spend": 6000}], "tier", AS_OF).columns["tier"] == ["VIP"]
    assert ev2.evaluate([{"spend": 6000, "kind": "Shop"}], "tier", AS_OF).columns["tier"] == ["Gold"]


def test_rule_cache_picks_up_an_edit(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(SPEND.format(hit="first"), encoding="utf-8")
    cache = rulesets.RuleCache()
    assert cache.evaluator(tmp_path).evaluate([{"spend": 6000}], "tier", AS_OF).columns["tier"] == ["VIP"]
    p.write_text(SPEND.format(hit="first").replace('">= 5000", "-",            VIP', '">= 5000", "-",            Gold'), encoding="utf-8")
    assert cache.evaluator(tmp_path).evaluate([{"spend": 6000}], "tier", AS_OF).columns["tier"] == ["Gold"]
    p.write_text("decision: [", encoding="utf-8")
    with pytest.raises(RuleSetError) as e:
        cache.evaluator(tmp_path)
    assert "t.yaml:" in str(e.value) and "not valid YAML" in str(e.value)


def test_chained_default_decisions_and_due_dates():
    ev = Evaluator(rulesets.load_or_raise(rulesets.bundled_rules_dir()))
    rows = [
        {"severity": "Normal", "tier": "Regular", "status": "Open", "opened_at": dt.datetime(2026, 11, 20, 17, 0), "prior_complaints": 0},
        {"severity": "Urgent", "tier": "VIP", "status": "Open", "opened_at": "2026-11-15 09:00", "prior_complaints": 3},
        {"severity": "Minor", "tier": "Regular", "status": "Closed", "opened_at": "2026/11/01 09:00"},
    ]
    r = ev.evaluate(rows, ["escalation", "compensation"], AS_OF)
    assert r.columns["respond_by"][0] == dt.datetime(2026, 11, 23, 17, 0)
    assert r.columns["resolve_by"][1] == dt.datetime(2026, 11, 16, 9, 0)
    assert r.columns["level"] == [1, 3, 0]
    assert r.columns["points"] == [2, 8, 1]
    assert r.columns["value"] == [10, 800, 10]
    assert r.columns["open_for"][0] == Duration.of(hours=65)
    assert [(p.index, p.message, p.severity) for p in r.problems] == [
        (1, "date stored as text ('2026-11-15 09:00'); read as 2026-11-15 09:00", "warning"),
        (2, "date stored as text ('2026/11/01 09:00'); read as 2026-11-01 09:00", "warning"),
    ]


DEADLINE = """\
decision: deadline
hit: first
inputs:
  kind: {type: text, columns: [Kind]}
outputs:
  within: {type: duration}
  clock: {type: text}
due:
  by: {from: opened_at, add: within, calendar: clock, label: By, columns: [By]}
rules:
  - [A, 4h, business]
  - [B, 1d, everyday]
  - [C, 2h, nowhere]
  - [D, 3h, ""]
  - ["-", "", business]
---
fields:
  opened_at: {type: datetime, columns: [Opened at]}
---
calendars:
  business: {timezone: Asia/Shanghai, hours: ["09:00-12:00", "13:30-18:00"], workdays: [mon, tue, wed, thu, fri]}
  everyday: {timezone: Asia/Shanghai, hours: ["00:00-24:00"]}
"""


def test_deadlines_of_a_long_column_are_those_of_each_row_alone(tmp_path):
    """A column of rows (calendars named per row, looked up once per name) gives each row
    the due date and the problems it gets when evaluated alone: blank starts, names that
    are no calendar, rows with a bad cell."""
    ev = load(tmp_path, DEADLINE)
    kinds = ["A", "B", "C", "D", "E", None]
    rows = [{"kind": kinds[k % 6], "opened_at": None if k % 7 == 3 else "seven" if k % 11 == 5 else dt.datetime(2026, 11, 2) + dt.timedelta(hours=5 * k)}
            for k in range(90)]
    whole = ev.evaluate(rows, None, AS_OF)
    alone = [ev.evaluate([r], None, AS_OF) for r in rows]
    assert whole.columns["by"] == [a.columns["by"][0] for a in alone]
    assert sorted((p.index, p.name, p.message) for p in whole.problems) == sorted(
        (i, p.name, p.message) for i, a in enumerate(alone) for p in a.problems)
    assert any("'nowhere', which is not a calendar" in p.message for p in whole.problems)
    assert any("is blank, so By cannot be computed" in p.message for p in whole.problems)
    assert sum(v is not None for v in whole.columns["by"]) > 20


ALLOWED = """\
decision: points
hit: first
inputs:
  level: {type: text, columns: [Level], allowed: [Gold, Silver]}
  when: {type: date, columns: [When], allowed: [2026-11-01, 2026-11-02]}
outputs:
  points: {type: number}
rules:
  - ["-", "-", 1]
"""


def test_a_value_not_allowed_is_a_problem_of_each_of_its_rows_and_only_theirs(tmp_path):
    """Allowed values are looked at once per distinct value; every row holding one that is
    not allowed still gets its problem, the others none."""
    from hypothesis import given, settings, strategies as st

    ev = load(tmp_path, ALLOWED)
    levels = st.sampled_from([None, "Gold", "Silver", "gold", "Bronze"])
    days = st.sampled_from([None, dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)])

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(levels, days), min_size=1, max_size=30))
    def check(rows):
        r = ev.evaluate([{"level": a, "when": b} for a, b in rows], "points", AS_OF)
        said = sorted((p.index, p.name) for p in r.problems if "allowed" in p.message)
        want = sorted([(i, "level") for i, (a, _) in enumerate(rows) if a == "Bronze"] +
                      [(i, "when") for i, (_, b) in enumerate(rows) if b == dt.date(2026, 11, 3)])
        assert said == want

    check()
