"""The checker: overlaps, unreachable rows, gaps, allowed values, unused names.

Tables are written as YAML in tmp_path and loaded with the real loader; each test states
the exact problems a manager sees. Examples are cross-checked against model.matches and,
where it matters, against the engine itself.
"""
from __future__ import annotations

import random
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrules import checker
from cxrules.checker import analyse_ruleset, analyse_table, check_ruleset
from cxrules.loader import load_rules
from cxrules.model import matches
from cxrules.problems import ERROR, WARNING, Problem

EXAMPLES = Path(__file__).resolve().parent / "examples" / "rules"
DEFAULT_HINT = "add a last row with '-' in every input to give such rows a default"
BLANK_HINT = DEFAULT_HINT + ", or make sure the value is always filled in"


def load(tmp_path, *docs, name="rules.yaml"):
    """Write YAML text to tmp_path/name, load the folder, and insist it loads cleanly."""
    (tmp_path / name).write_text(dedent(docs[0]).lstrip("\n"), encoding="utf-8")
    for n, extra in enumerate(docs[1:]):
        (tmp_path / f"extra{n}.yaml").write_text(dedent(extra).lstrip("\n"), encoding="utf-8")
    rs, probs = load_rules(tmp_path, base=tmp_path)
    assert list(probs) == []
    return rs


def check(tmp_path, *docs, codes=None):
    problems = check_ruleset(load(tmp_path, *docs))
    return [p for p in problems if codes is None or p.code in codes]


FIELDS = """
fields:
  last_purchase: {type: date, columns: [Last purchase]}
"""


def tier_text(hit="first", catch_all=True) -> str:
    text = (EXAMPLES / "tier.yaml").read_text(encoding="utf-8").replace("hit: first", f"hit: {hit}")
    if not catch_all:
        text = text.replace('  - ["-",     "-",       "-",             Regular]\n', "")
    return text.split("examples:")[0]


# ----------------------------------------------------------------- the shared examples
def test_example_rules_report_only_the_blank_severity():
    rs, probs = load_rules(EXAMPLES, base=EXAMPLES)
    assert list(probs) == []
    assert check_ruleset(rs) == [
        Problem(
            "no row matches when severity is blank, e.g. severity=blank, tier=(any other text)",
            WARNING, "blank-gap", "escalation.yaml", 2, "escalation", column="severity", suggestion=BLANK_HINT,
        )
    ]
    an = analyse_ruleset(rs)
    # tier ends with an all-'-' row, so it has no gap of any kind
    assert an["tier"].findings == []
    # contact's tier can only be what the tier table gives, never blank
    contact_tier = an["contact"].domains[0]
    assert not contact_tier.blank_possible
    assert contact_tier.values_text() == "VIP, Potential, New, Churn risk, Regular"


def test_example_blank_severity_falls_through_in_the_engine():
    from cxrules.evaluation import Evaluator

    rs, _ = load_rules(EXAMPLES)
    ev = Evaluator(rs).evaluate([{"severity": None, "tier": "Regular"}], "escalation")
    assert ev.fired["escalation"] == [None]
    assert [p.message for p in ev.problems] == ["no rule row of 'escalation' matched this row"]


def test_tier_made_unique_overlaps_the_catch_all(tmp_path):
    probs = check(tmp_path, tier_text("unique"), FIELDS)
    assert probs == [
        Problem(
            "row 5 overlaps rows 1, 2, 3 and 4; e.g. rows 1 and 5 both match recency=20, frequency=5, monetary=5000",
            ERROR, "overlap", "rules.yaml", 17, "tier", 5,
            suggestion="a unique table allows one matching row: make the rows exclusive, or use hit: first if row 1 should win",
        )
    ]


def test_rfm_overlap_at_monetary_5000(tmp_path):
    # The CRM plan's thresholds: M = 5000 is both "high value" (>= 5000) and "potential" (2000-5000).
    probs = check(tmp_path, """
        decision: rfm
        hit: unique
        inputs:
          recency: {type: number}
          frequency: {type: number}
          monetary: {type: number}
        outputs:
          tier: {type: text}
        rules:
          - ["< 30", ">= 5", ">= 5000",      High value]
          - ["< 30", ">= 2", "[2000..5000]", Potential]
          - ["< 7",  "1",    "< 2000",       New]
          - ["> 90", "1",    "< 1000",       Churn risk]
    """, codes={"overlap"})
    assert probs == [
        Problem(
            "rows 1 and 2 both match recency=20, frequency=5, monetary=5000",
            ERROR, "overlap", "rules.yaml", 11, "rfm", 2,
            suggestion="a unique table allows one matching row: make the rows exclusive, or use hit: first if row 1 should win",
        )
    ]


def test_tier_without_catch_all_has_the_recency_30_to_90_gap(tmp_path):
    probs = check(tmp_path, tier_text(catch_all=False), FIELDS)
    gap = lambda msg, **kw: Problem(msg, WARNING, kw.pop("code", "gap"), "rules.yaml", 2, "tier", suggestion=kw.pop("hint", DEFAULT_HINT), **kw)  # noqa: E731
    assert probs == [
        gap("no row matches recency in [30..90]; e.g. recency=60, frequency=3, monetary=1500"),
        gap("no row matches recency > 90, frequency < 1 or >= 2; e.g. recency=91, frequency=3, monetary=1500"),
        gap("no row matches recency > 90, frequency = 1, monetary >= 1000; e.g. recency=91, frequency=1, monetary=1500"),
        gap("no row matches recency in [7..30), frequency <= 1; e.g. recency=20, frequency=1, monetary=1500"),
        gap("no row matches recency < 7, frequency < 1; e.g. recency=6, frequency=0, monetary=1500; 3 more uncovered regions not listed"),
        gap(
            "no row matches some values between whole numbers, e.g. recency=20, frequency=1.5, monetary=1500",
            column="frequency",
            hint="ignore this if frequency always holds whole numbers; otherwise make neighbouring ranges meet, like < 5 and >= 5",
        ),
        gap("no row matches when recency, frequency or monetary is blank, e.g. recency=blank, frequency=3, monetary=1500", code="blank-gap", hint=BLANK_HINT),
    ]


def test_gap_example_falls_through_in_the_engine(tmp_path):
    from cxrules.evaluation import Evaluator

    rs = load(tmp_path, tier_text(catch_all=False), FIELDS)
    an = analyse_table(rs.tables["tier"], rs)
    rows = [an.example_values(f) for f in an.findings if f.kind in ("gap", "fraction-gap", "blank-gap")]
    assert rows[0] == {"recency": 60, "frequency": 3, "monetary": 1500}
    ev = Evaluator(rs).evaluate(rows, "tier", given_wins=True)
    assert ev.fired["tier"] == [None] * len(rows)


# ----------------------------------------------------------------- unreachable rows
def test_first_row_hidden_by_the_union_of_earlier_rows(tmp_path):
    probs = check(tmp_path, """
        decision: discount
        hit: first
        inputs:
          spend: {type: number}
          channel: {type: text}
        outputs:
          rate: {type: number}
        rules:
          - ["< 1000",      "-", 0]
          - [">= 1000",     "-", 5]
          - ["[500..2000]", App, 10]
          - ["< 500",       "-", 1]
          - ["-",           "-", 2]
    """)
    # Row 5 is not hidden: '-' also matches a blank spend, which rows 1 and 2 do not.
    assert probs == [
        Problem("row 3 can never be used: rows 1 and 2 come first and together match everything row 3 matches",
                WARNING, "unreachable", "rules.yaml", 11, "discount", 3, suggestion="delete row 3, or move it above row 1 if it should win"),
        Problem("row 4 can never be used: row 1 comes first and matches everything row 4 matches",
                WARNING, "unreachable", "rules.yaml", 12, "discount", 4, suggestion="delete row 4, or move it above row 1 if it should win"),
    ]


def test_priority_row_that_always_loses(tmp_path):
    probs = check(tmp_path, """
        decision: alert
        hit: priority
        inputs:
          hours: {type: number}
        outputs:
          level: {type: text, allowed: [High, Medium, Low]}
        rules:
          - [">= 24", Medium]
          - [">= 48", Low]
          - [">= 72", High]
          - ["-",     Low]
    """)
    assert probs == [
        Problem("row 2 can never be used: row 1 wins by priority and matches everything row 2 matches",
                WARNING, "unreachable", "rules.yaml", 9, "alert", 2, suggestion="delete row 2, or change its outputs or the allowed order if it should win"),
    ]


def test_cell_that_matches_nothing(tmp_path):
    # A value the decision it reads can never give: the row is dead.
    probs = check(tmp_path, """
        decision: t
        hit: first
        inputs:
          score: {type: number, allowed: [1, 2, 3]}
        outputs:
          out: {type: number}
        rules:
          - ["7",  1]
          - ["-",  2]
    """)
    assert probs == [Problem("'7' is not an allowed score", ERROR, "allowed", "rules.yaml", 8, "t", 1, "score", suggestion="score can be: 1, 2, 3")]


def test_empty_range_is_refused_when_loading(tmp_path):
    (tmp_path / "rules.yaml").write_text(dedent("""
        decision: t
        hit: first
        inputs:
          score: {type: number}
        outputs:
          out: {type: number}
        rules:
          - ["[5..5)", 1]
    """).lstrip("\n"), encoding="utf-8")
    rs, probs = load_rules(tmp_path, base=tmp_path)
    assert [(p.line, p.row, p.column, p.message) for p in probs] == [
        (8, 1, "score", "the range [5..5) is empty: it starts and ends at 5 but leaves that end out; write 5 or [5..5]")]


# ----------------------------------------------------------------- not(...) and blanks
def test_not_list_matches_blank_so_no_gap(tmp_path):
    # FEEL: not(VIP, Gold) is true for a blank (equality with blank is false, negated).
    assert check(tmp_path, """
        decision: t
        hit: first
        inputs:
          tier: {type: text}
        outputs:
          out: {type: number}
        rules:
          - [VIP,             1]
          - [Gold,            2]
          - ["not(VIP, Gold)", 3]
    """) == []


def test_not_comparison_does_not_match_blank(tmp_path):
    # not(< 30) is unknown for a blank, so a blank recency falls through (once, on its own).
    assert check(tmp_path, """
        decision: t
        hit: first
        inputs:
          recency: {type: number}
        outputs:
          out: {type: number}
        rules:
          - ["< 30",      1]
          - ["not(< 30)", 2]
    """) == [
        Problem("no row matches when recency is blank, e.g. recency=blank", WARNING, "blank-gap", "rules.yaml", 1, "t", column="recency", suggestion=BLANK_HINT),
    ]


def test_blank_and_not_blank_cover_everything(tmp_path):
    assert check(tmp_path, """
        decision: t
        hit: unique
        inputs:
          day: {type: date}
          flag: {type: boolean}
        outputs:
          out: {type: number}
        rules:
          - ["blank",      "-",              1]
          - ["not(blank)", "true, false",    2]
          - ["not(blank)", "blank",          3]
    """) == []


def test_not_equal_matches_blank(tmp_path):
    assert check(tmp_path, """
        decision: t
        hit: first
        inputs:
          n: {type: number}
        outputs:
          out: {type: number}
        rules:
          - ["1",    1]
          - ["!= 1", 2]
    """) == []


def test_unique_overlap_on_blank_only(tmp_path):
    assert check(tmp_path, """
        decision: t
        hit: unique
        inputs:
          kind: {type: text}
        outputs:
          out: {type: number}
        rules:
          - ["-",     1]
          - ["blank", 2]
    """) == [
        Problem("rows 1 and 2 both match kind=blank", ERROR, "overlap", "rules.yaml", 9, "t", 2,
                suggestion="a unique table allows one matching row: make the rows exclusive, or use hit: first if row 1 should win"),
    ]


def test_blanks_that_fall_through_only_together(tmp_path):
    assert check(tmp_path, """
        decision: t
        hit: first
        inputs:
          kind: {type: text}
          score: {type: number}
        outputs:
          out: {type: number}
        rules:
          - ["-",          ">= 0", 1]
          - ["-",          "< 0",  2]
          - ["not(blank)", "-",    3]
    """) == [
        Problem("no row matches when kind and score are both blank, e.g. kind=blank, score=blank", WARNING, "blank-gap", "rules.yaml", 1, "t",
                suggestion=BLANK_HINT),
    ]


def test_decision_input_is_blank_only_where_its_table_gives_no_value(tmp_path):
    up = """
        decision: tier
        hit: first
        inputs:
          spend: {type: number}
        outputs:
          tier: {type: text}
        rules:
          - [">= 5000", VIP]
          - ["< 5000",  Regular]
    """
    down = """
        decision: contact
        hit: first
        inputs:
          tier: {decision: tier}
        outputs:
          every: {type: duration}
        rules:
          - [VIP,     7d]
          - [Regular, 30d]
    """
    # A blank spend falls through 'tier'; the evaluator then skips 'contact' for that row,
    # so the gap is reported once, where it is.
    probs = check(tmp_path, up + "---" + down)
    assert [(p.table, p.code, p.message) for p in probs] == [("tier", "blank-gap", "no row matches when spend is blank, e.g. spend=blank")]
    # A row that gives no tier ('-') does make contact's tier blank.
    dashed = up.replace('  - ["< 5000",  Regular]', '  - ["< 5000",  Regular]\n          - [blank, "-"]')
    probs = check(tmp_path, dashed + "---" + down)
    assert [(p.table, p.code, p.line, p.message) for p in probs] == [("contact", "blank-gap", 12, "no row matches when tier is blank, e.g. tier=blank")]


# ----------------------------------------------------------------- dates and durations
def test_dates_and_durations(tmp_path):
    probs = check(tmp_path, """
        decision: reminder
        hit: unique
        inputs:
          due: {type: date}
          open_for: {type: duration}
        outputs:
          level: {type: number}
        rules:
          - ["< 2026-01-01",             "< 72h",     1]
          - ["[2026-01-01..2026-12-31]", ">= 72h",    2]
          - [">= 2026-06-01",            "[24h..7d]", 3]
    """)
    gap = lambda msg: Problem(msg, WARNING, "gap", "rules.yaml", 1, "reminder", suggestion="add rows for these inputs")  # noqa: E731
    assert probs == [
        Problem("rows 2 and 3 both match due=2026-09-16, open_for=5d", ERROR, "overlap", "rules.yaml", 11, "reminder", 3,
                suggestion="a unique table allows one matching row: make the rows exclusive, or use hit: first if row 2 should win"),
        gap("no row matches due < 2026-01-01, open_for >= 72h; e.g. due=2025-12-31, open_for=5d"),
        gap("no row matches due > 2026-12-31, open_for < 24h or > 7d; e.g. due=2027-01-01, open_for=23h"),
        gap("no row matches due in [2026-01-01..2026-06-01), open_for < 72h; e.g. due=2026-03-18, open_for=48h"),
        gap("no row matches due in [2026-06-01..2026-12-31], open_for < 24h; e.g. due=2026-09-16, open_for=23h"),
        Problem("no row matches when due or open_for is blank, e.g. due=blank, open_for=48h", WARNING, "blank-gap", "rules.yaml", 1, "reminder",
                suggestion="add rows for these inputs, or make sure the value is always filled in"),
    ]


def test_whole_days_and_percentiles_have_no_false_gaps(tmp_path):
    # days_since gives whole days, so <= 6 and >= 7 meet; percentiles run from 0 to 100.
    assert check(tmp_path, """
        decision: t
        hit: first
        inputs:
          age: {type: number, from: days_since(last_purchase)}
          rank: {type: number, from: percentile(spend)}
        outputs:
          out: {type: number}
        rules:
          - ["<= 6", "[0..20), blank", 1]
          - ["<= 6", "[20..100]",      2]
          - [">= 7", "-",         3]
          - [blank,  "-",         4]
    """, """
        fields:
          last_purchase: {type: date}
          spend: {type: number}
    """) == []


def test_whole_number_boundaries_in_a_plain_column_report_fractions_once(tmp_path):
    assert check(tmp_path, """
        decision: t
        hit: first
        inputs:
          orders: {type: number}
        outputs:
          out: {type: number}
        rules:
          - ["<= 6", 1]
          - [">= 7", 2]
          - [blank,  3]
    """) == [
        Problem("no row matches some values between whole numbers, e.g. orders=6.5", WARNING, "gap", "rules.yaml", 1, "t", column="orders",
                suggestion="ignore this if orders always holds whole numbers; otherwise make neighbouring ranges meet, like < 5 and >= 5"),
    ]


# ----------------------------------------------------------------- any tables
def test_any_table_conflicts_only_when_results_differ(tmp_path):
    assert check(tmp_path, """
        decision: route
        hit: any
        inputs:
          severity: {type: text, allowed: [Urgent, Minor]}
        outputs:
          team: {type: text}
        rules:
          - [Urgent,          Red]
          - ["Urgent, Minor", Red]
          - ["-",             Blue]
    """) == [
        Problem("row 3 overlaps rows 1 and 2; e.g. rows 1 and 3 both match severity=Urgent, but they give different results (team: Red vs Blue)",
                ERROR, "overlap", "rules.yaml", 10, "route", 3,
                suggestion="an 'any' table needs matching rows to agree: make the rows exclusive or give them the same result"),
    ]


# ----------------------------------------------------------------- allowed values
def test_allowed_outputs_and_inputs_with_did_you_mean(tmp_path):
    probs = check(tmp_path, """
        decision: triage
        hit: first
        inputs:
          channel: {type: text, allowed: [Phone, Email, Chat]}
        outputs:
          severity: {type: text, allowed: [Urgent, Complex, Normal, Minor]}
        rules:
          - [Phone,         Urgnet]
          - ["Emial, Chat", Normal]
          - ["-",           Trivial]
    """)
    assert probs == [
        Problem("'Urgnet' is not an allowed severity", ERROR, "allowed", "rules.yaml", 8, "triage", 1, "severity", suggestion="did you mean 'Urgent'?"),
        Problem("'Emial' is not an allowed channel", ERROR, "allowed", "rules.yaml", 9, "triage", 2, "channel", suggestion="did you mean 'Email'?"),
        Problem("'Trivial' is not an allowed severity", ERROR, "allowed", "rules.yaml", 10, "triage", 3, "severity",
                suggestion="severity can be: Urgent, Complex, Normal, Minor"),
    ]


def test_inputs_from_a_decision_inherit_its_values(tmp_path):
    probs = check(tmp_path, """
        decision: tier
        hit: first
        inputs:
          spend: {type: number}
        outputs:
          tier: {type: text, allowed: [VIP, Regular]}
          band: {type: text}
        rules:
          - [">= 5000", VIP,     A]
          - ["-",       Regular, B]
        ---
        decision: offer
        hit: first
        inputs:
          tier: {decision: tier}
          band: {decision: tier}
        outputs:
          coupon: {type: number}
        rules:
          - [Vip, "-", 50]
          - [Gold, "-", 30]
          - ["-", "A, C", 10]
    """, codes={"allowed"})
    assert probs == [
        Problem("'Gold' is not an allowed tier", ERROR, "allowed", "rules.yaml", 21, "offer", 2, "tier", suggestion="tier can be: VIP, Regular"),
        Problem("'C' is never a value of band: decision 'tier' gives A, B", WARNING, "allowed", "rules.yaml", 22, "offer", 3, "band", suggestion="band can be: A, B"),
    ]


def test_a_row_for_a_value_the_decision_never_gives(tmp_path):
    probs = check(tmp_path, """
        decision: up
        hit: first
        inputs:
          n: {type: number}
        outputs:
          band: {type: text}
        rules:
          - ["< 5", Low]
          - ["-",   High]
        ---
        decision: down
        hit: first
        inputs:
          band: {decision: up}
        outputs:
          out: {type: number}
        rules:
          - [Low,    1]
          - [High,   2]
          - [Medium, 3]
    """)
    # The allowed-value warning explains the dead row; no second "can never be used".
    # Nor is there a gap: 'up' always gives Low or High, never a blank.
    assert probs == [
        Problem("'Medium' is never a value of band: decision 'up' gives Low, High", WARNING, "allowed", "rules.yaml", 20, "down", 3, "band",
                suggestion="band can be: Low, High"),
    ]


def test_calendar_taken_from_an_output_must_exist(tmp_path):
    probs = check(tmp_path, """
        decision: deadline
        hit: first
        inputs:
          severity: {type: text}
        outputs:
          within: {type: duration}
          clock: {type: text}
        due:
          respond_by: {from: opened_at, add: within, calendar: clock}
        rules:
          - [Urgent, 2h,  bussiness]
          - [Normal, 24h, "-"]
          - ["-",    "-", "-"]
    """, """
        fields:
          opened_at: {type: datetime}
        calendars:
          business:
            timezone: Asia/Shanghai
            hours: ["09:00-18:00"]
            workdays: [mon, tue, wed, thu, fri]
    """, codes={"unknown-calendar"})
    assert probs == [
        Problem("'bussiness' is not a calendar, so respond_by cannot be computed", ERROR, "unknown-calendar", "rules.yaml", 11, "deadline", 1, "clock",
                suggestion="did you mean 'business'?"),
        Problem("row 2 gives within but no clock, so respond_by cannot be computed", ERROR, "unknown-calendar", "rules.yaml", 12, "deadline", 2, "clock",
                suggestion="write one of: business"),
    ]


# ----------------------------------------------------------------- unused names
def test_unused_field_input_and_output(tmp_path):
    probs = check(tmp_path, """
        decision: t
        hit: first
        inputs:
          a: {type: number}
          b: {type: text}
        outputs:
          x: {type: number}
          y: {type: text}
        rules:
          - ["< 1", "-", 1, "-"]
          - ["-",   "-", 2, "-"]
    """, """
        fields:
          last_contact: {type: date}
    """, codes={"unused"})
    assert probs == [
        Problem("input 'b' is '-' in every row, so it never changes the result", WARNING, "unused", "rules.yaml", 5, "t", column="b",
                suggestion="remove it, or add rows that use it"),
        Problem("output 'y' is '-' in every row, so it is always empty", WARNING, "unused", "rules.yaml", 8, "t", column="y",
                suggestion="give it values, or remove it"),
        Problem("field 'last_contact' is declared but no rule reads it", WARNING, "unused", "extra0.yaml", 2, column="last_contact",
                suggestion="remove it, or use it in from: or due:"),
    ]


# ----------------------------------------------------------------- size
def wide_table(n_inputs=8, n_rows=60, seed=7, dash=0.2, hit="first") -> str:
    """A realistic wide table: numeric and text inputs, most cells constrained, no catch-all."""
    rnd = random.Random(seed)
    lines = ["decision: wide", f"hit: {hit}", "inputs:"]
    lines += [f"  i{k}: {{type: {'number' if k % 2 == 0 else 'text'}}}" for k in range(n_inputs)]
    lines += ["outputs:", "  out: {type: number}", "rules:"]
    for r in range(n_rows):
        cells = []
        for k in range(n_inputs):
            if rnd.random() < dash:
                cells.append('"-"')
            elif k % 2 == 0:
                a = rnd.randrange(0, 100, 10)
                cells.append(rnd.choice([f'"< {a}"', f'">= {a}"', f'"[{a}..{a + 20})"', f'"{a}"', f'"not({a})"']))
            else:
                cells.append(rnd.choice(['"A"', '"B"', '"A, C"', '"not(A)"', '"D"', '"blank"']))
        lines.append("  - [" + ", ".join(cells) + f", {r}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("hit", ["first", "unique"])
def test_wide_table_is_checked_whole_within_the_budget(tmp_path, hit):
    rs = load(tmp_path, wide_table(hit=hit))
    probs = check_ruleset(rs)
    assert any(p.code == "gap" for p in probs) and not any(p.code == "too-large" for p in probs)
    assert len([p for p in probs if p.code == "gap"]) <= checker.SHOWN_GAPS + 1


def test_too_large_is_said_not_hung(tmp_path, monkeypatch):
    monkeypatch.setattr(checker, "BUDGET", 200)
    probs = check(tmp_path, wide_table(), codes={"too-large"})
    assert probs == [
        Problem("not checked for unreachable rows: table too large (60 rows, 8 inputs)", WARNING, "too-large", "rules.yaml", 1, "wide"),
        Problem("not checked for gaps: table too large (60 rows, 8 inputs)", WARNING, "too-large", "rules.yaml", 1, "wide"),
    ]


# ----------------------------------------------------------------- property: examples are true
NUM_CELLS = ["-", "< {a}", "<= {a}", "> {a}", ">= {a}", "{a}", "!= {a}", "[{a}..{b}]", "({a}..{b})", "[{a}..{b})",
             "not(< {a})", "not({a}, {b})", "blank", "not(blank)", "{a}, {b}", "< {a}, > {b}", "not([{a}..{b}])"]
TEXT_CELLS = ["-", "A", "B", "A, B", "not(A)", "not(A, C)", "blank", "not(blank)", "!= B", "C"]
BOOL_CELLS = ["-", "true", "false", "blank", "not(true)", "not(blank)"]
CELLS = {
    "number": NUM_CELLS,
    "duration": [c.replace("{a}", "{a}h").replace("{b}", "{b}h") for c in NUM_CELLS],
    "date": [c.replace("{a}", "2026-01-1{a}").replace("{b}", "2026-01-1{b}") for c in NUM_CELLS],
    "text": TEXT_CELLS,
    "boolean": BOOL_CELLS,
}
_JAN10 = 20463  # 2026-01-10 as a day number (values.encode)
SAMPLES = {  # encoded values, as model.matches compares them
    "number": [None] + [x / 2 for x in range(-2, 15)],
    "duration": [None] + [x * 1800 for x in range(-2, 15)],
    "date": [None] + [_JAN10 + x for x in range(-1, 8)],
    "text": [None, "a", "b", "c", "zz"],
    "boolean": [None, True, False],
}


@st.composite
def small_tables(draw):
    types = draw(st.lists(st.sampled_from(["number", "number", "duration", "date", "text", "boolean"]), min_size=1, max_size=3))
    hit = draw(st.sampled_from(["first", "unique", "any", "priority"]))
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        cells = []
        for t in types:
            a, b = sorted(draw(st.lists(st.integers(0, 6), min_size=2, max_size=2, unique=True)))  # (a..a) is refused by the loader
            cells.append('"' + draw(st.sampled_from(CELLS[t])).format(a=a, b=b) + '"')
        cells.append(draw(st.sampled_from(["X", "Y"])))
        rows.append("  - [" + ", ".join(cells) + "]")
    text = "\n".join(
        ["decision: t", f"hit: {hit}", "inputs:"]
        + [f"  i{k}: {{type: {t}}}" for k, t in enumerate(types)]
        + ["outputs:", "  out: {type: text, allowed: [X, Y]}", "rules:"] + rows
    )
    return text + "\n", types


def _matching(table, point):
    return [r.index for r in table.rules if all(matches(t, v) for t, v in zip(r.tests, point))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(small_tables())
def test_property_examples_are_true(tmp_path_factory, case):
    text, types = case
    folder = tmp_path_factory.mktemp("p")
    (folder / "t.yaml").write_text(text, encoding="utf-8")
    rs, probs = load_rules(folder)
    assert not probs.errors, [str(p) for p in probs]
    table = rs.tables["t"]
    an = analyse_table(table, rs)
    names = [i.name for i in table.inputs]
    point = lambda f: [f.example[n] for n in names]  # noqa: E731

    for f in an.findings:
        if f.kind in ("overlap", "conflict"):
            i, j = f.rows[0], f.rows[-1]
            assert {i, j} <= set(_matching(table, point(f))), (f, text)
        elif f.kind in ("gap", "fraction-gap", "blank-gap"):
            assert _matching(table, point(f)) == [], (f, text)

    # Every sample point: a hidden row is matched only where a row that hides it also matches;
    # with no gap reported, some row matches; with no overlap reported (unique), at most one.
    import itertools

    hidden = {f.rows[-1]: f.rows[:-1] for f in an.of("hidden")}
    gaps = [f for f in an.findings if f.kind in ("gap", "fraction-gap", "blank-gap", "too-large")]
    overlaps = an.of("overlap") + an.of("conflict")
    for p in itertools.product(*(SAMPLES[t] for t in types)):
        m = _matching(table, p)
        for j, hiders in hidden.items():
            if j in m:
                assert set(hiders) & set(m), (p, j, text)
        if not gaps:
            assert m, (p, text)
        if table.hit == "unique" and not overlaps:
            assert len(m) <= 1, (p, text)
