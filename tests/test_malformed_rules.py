"""Malformed rule files: every mistake a manager is likely to make is reported once, in
plain words, at the right place, with a suggestion where one helps, and never as a
Python traceback.

Each file in tests/malformed/ holds one realistic mistake (duplicate_decision_a.yaml is
the valid partner of duplicate_decision_b.yaml). EXPECTED gives, per file, the one
problem it must produce: file, line, table, row, column, code, severity and message
exactly, and a piece of text the suggestion must contain (None: the message says it all).

Decisions on borderline spellings:
- '3days' is not a duration (durations are 30s, 90m, 2h, 3d, 1w; parse_duration refuses
  trailing words), so it is reported, with the accepted forms.
- '5,000' in a number cell is refused rather than read as 5000 or as the list 5, 000.
"""
from __future__ import annotations

import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from cxrules.loader import load_rules

HERE = Path(__file__).parent / "malformed"
PARTNERS = {"duplicate_decision_b.yaml": ["duplicate_decision_a.yaml"]}  # loaded together
VALID = {"duplicate_decision_a.yaml"}

# (file, line, table, row, column, code, severity, message, the suggestion must contain)
EXPECTED = [
    ('bad_date_cell.yaml', 8, 'campaign', 1, 'joined', 'cell', 'error',
     "'2026-13-01' is not a date; write it like 2026-11-23",
     None),
    ('bad_duration.yaml', 9, 'reminder', 1, 'wait', 'cell', 'error',
     "'3days' is not a duration; write it like 30s, 90m, 2h, 3d or 1w",
     '30s, 90m, 2h, 3d, 1w'),
    ('boolean_cell.yaml', 8, 'care_call', 1, 'vip', 'cell', 'error',
     "'maybe' is not true or false",
     None),
    ('calendar_bad_hours.yaml', 4, None, None, 'hours', 'calendar', 'error',
     "calendar 'late_shift': working hours '18:00-09:00' end before they start",
     'two intervals'),
    ('calendar_bad_timezone.yaml', 3, None, None, 'timezone', 'calendar', 'error',
     "calendar 'shanghai_office': unknown time zone 'Asia/Shanghia'",
     "did you mean 'Asia/Shanghai'?"),
    ('calendar_unknown_holidays.yaml', 6, None, None, 'holidays', 'calendar', 'error',
     "calendar 'mainland': no public holidays are known for 'China'",
     "did you mean 'CN'?"),
    ('calendar_unknown_workday.yaml', 5, None, None, 'workdays', 'calendar', 'error',
     "calendar 'six_day': 'stu' is not a day of the week",
     'mon, tue, wed, thu, fri, sat or sun'),
    ('cell_read_as_list.yaml', 9, 'order_band', 1, 'order_count', 'cell', 'error',
     'the cell [2..4] was read as a YAML list',
     'put it in quotes: "[2..4]"'),
    ('collect_sum_text.yaml', 6, 'gifts', None, 'gift', 'aggregate', 'error',
     "'collect sum' cannot sum text output 'gift'",
     'make it a number'),
    ('dash_with_values.yaml', 8, 'gift_card', 1, 'tier', 'cell', 'error',
     "'-' (anything) cannot be combined with other values in one cell",
     None),
    ('decision_loop.yaml', 13, 'pong', None, 'ping', 'loop', 'error',
     'decisions form a loop: ping -> pong -> ping',
     'cannot depend on itself'),
    ('due_add_not_duration.yaml', 14, 'survey_chase', None, 'chase_on', 'type', 'error',
     "due 'chase_on' adds 'days', which is number, not a duration",
     None),
    ('due_unknown_calendar.yaml', 16, 'nps_callback', None, 'call_by', 'unknown-calendar', 'error',
     "due 'call_by' uses calendar 'weekday', which is neither a calendar nor an output of this table",
     "did you mean 'weekdays'?"),
    ('due_unknown_from.yaml', 14, 'csat_survey', None, 'survey_on', 'unknown-field', 'error',
     "due 'survey_on' counts from 'order_complete', which is neither a field nor an input column",
     "did you mean 'order_completed'?"),
    ('due_without_calendar.yaml', 12, 'community_invite', None, 'invite_on', 'unknown-calendar', 'error',
     "due 'invite_on' names no calendar, and there is no 'everyday' calendar to count in",
     'add calendar: NAME'),
    ('duplicate_decision_b.yaml', 2, 'contact_window', None, None, 'duplicate', 'error',
     "decision 'contact_window' is defined twice (also at duplicate_decision_a.yaml:1)",
     None),
    ('duplicate_key.yaml', 7, 'repurchase', None, None, 'duplicate-key', 'error',
     "'hit' is given twice in decision 'repurchase' (first on line 2); the second one is ignored",
     None),
    ('empty.yaml', 1, None, None, None, 'empty', 'warning',
     'the file is empty',
     None),
    ('empty_range.yaml', 8, 'complaint_step', 1, 'complaints', 'cell', 'error',
     'the range [5..2] is empty: 5 is larger than 2; write the smaller end first',
     None),
    ('example_unknown_column.yaml', 13, 'staff_bonus', 1, 'achievment', 'unknown-column', 'error',
     "the example names 'achievment', which is not an input or output of 'staff_bonus'",
     "did you mean 'achievement'?"),
    ('example_wrong_type.yaml', 11, 'referral', 1, 'referred', 'examples', 'error',
     "example value of 'referred': 'two' is not a number",
     None),
    ('from_unknown_calendar.yaml', 12, 'ticket_age', None, 'open_for', 'unknown-calendar', 'error',
     "unknown calendar 'ofice'",
     "did you mean 'office'?"),
    ('from_unknown_field.yaml', 7, 'onboarding', None, 'age', 'unknown-field', 'error',
     "days_since() reads 'signup_dat', which is neither a field nor an input column",
     "did you mean 'signup_date'?"),
    ('from_unknown_function.yaml', 4, 'dormant', None, 'idle', 'from', 'error',
     "unknown derivation 'days_snice()'",
     "did you mean 'days_since'?"),
    ('from_wrong_argument_count.yaml', 4, 'first_response', None, 'waited', 'from', 'error',
     'business_hours_since() takes 2 arguments, got 1',
     'business_hours_since(FIELD, CALENDAR)'),
    ('fullwidth_operator.yaml', 9, 'churn_alert', 1, 'churn_rate', 'cell', 'error',
     "'≥ 5' starts with ≥; write >= 5 instead",
     None),
    ('hit_bad_collect_operator.yaml', 2, 'bonus_points', None, None, 'hit', 'error',
     "unknown collect operator 'avg'",
     'collect sum, collect min, collect max or collect count'),
    ('hit_typo.yaml', 2, 'nps_class', None, None, 'hit', 'error',
     "unknown hit policy 'frist'",
     "did you mean 'first'?"),
    ('input_from_and_decision.yaml', 14, 'lapse_journey', None, 'lapsed', 'source', 'error',
     "input 'lapsed' has both 'from:' and 'decision:'; keep one",
     None),
    ('no_decision_key.yaml', 1, None, None, None, 'document', 'error',
     "this document has no 'decision:', 'fields:' or 'calendars:' key",
     "did you mean 'decision'?"),
    ('no_rules.yaml', 1, 'vip_visit', None, None, 'rules', 'error',
     "the table has no 'rules:'",
     'add rules:'),
    ('not_empty.yaml', 8, 'exclusions', 1, 'status', 'cell', 'error',
     'not() needs something inside, e.g. not(VIP) or not(< 30)',
     None),
    ('not_utf8.yaml', 1, None, None, None, 'encoding', 'error',
     'the file is not UTF-8 text',
     'save it as UTF-8'),
    ('number_cell_with_words.yaml', 8, 'frt', 1, 'minutes', 'cell', 'error',
     "'five' is not a number",
     'set type: text'),
    ('priority_without_allowed.yaml', 2, 'alert', None, None, 'priority', 'error',
     "a priority table ranks rows by the order of an output's allowed values, but no output has 'allowed:'",
     'add allowed: [highest, ..., lowest]'),
    ('reversed_operator.yaml', 8, 'survey_followup', 1, 'nps', 'cell', 'error',
     "'=< 6' starts with =<; write <= 6 instead",
     None),
    ('row_too_short.yaml', 12, 'cadence', 2, None, 'row-length', 'error',
     'the row has 3 cells but the table has 2 inputs and 2 outputs (tier, tenure, every, channel)',
     "write '-' for 'anything'"),
    ('row_unknown_input.yaml', 10, 'win_back', 1, 'recency', 'unknown-column', 'error',
     "unknown column 'recency' in the row",
     "did you mean 'recent'?"),
    ('text_compared_by_size.yaml', 8, 'survey', 1, 'days_open', 'cell', 'error',
     "'< 30' compares by size, which needs a number, date, date-time or duration input, not text",
     'set its type (number, date, duration)'),
    ('thousands_separator.yaml', 8, 'voucher', 1, 'spend', 'cell', 'error',
     "'5,000' reads as several numbers because of the comma; write 5000 without the thousands separator",
     None),
    ('unknown_decision.yaml', 14, 'segment_offer', None, 'segment', 'unknown-decision', 'error',
     "input 'segment' reads decision 'segmnt', which no rule file defines",
     "did you mean 'segment'?"),
    ('unknown_decision_output.yaml', 14, 'risk_action', None, 'risk', 'unknown-output', 'error',
     "decision 'risk' has no output 'risk'",
     'output: risk_level'),
    ('unknown_input_key.yaml', 4, 'survey_score', None, 'csat', 'unknown-key', 'error',
     "unknown key 'colums' in input 'csat'",
     "did you mean 'columns'?"),
    ('unknown_type.yaml', 4, 'refund_cap', None, 'price', 'type', 'error',
     "unknown type 'numbr' for 'price'",
     "did you mean 'number'?"),
    ('yaml_colon_in_value.yaml', 3, None, None, None, 'yaml', 'error',
     "not valid YAML: a value holds ': ', which YAML reads as the start of a new key",
     'must be put in quotes'),
    ('yaml_tab_indent.yaml', 5, None, None, None, 'yaml', 'error',
     'not valid YAML: a tab is used to indent this line',
     'indent with spaces, not tabs'),
    ('yaml_unclosed_quote.yaml', 9, None, None, None, 'yaml', 'error',
     "not valid YAML: the [...] that starts on this line does not close on it (did not find expected ',' or ']')",
     'never closed'),
    ('yaml_unquoted_comparison.yaml', 9, None, None, None, 'yaml', 'error',
     "not valid YAML: a value cannot start with '>' unless it is in quotes",
     'in quotes, e.g. ">= 5"'),
    ('yaml_unquoted_open_range.yaml', 9, None, None, None, 'yaml', 'error',
     "not valid YAML: the [...] that starts on this line does not close on it (did not find expected ',' or ']')",
     '"[2..4]"'),
]
FIELDS = ("file", "line", "table", "row", "column", "code", "severity", "message")


def located(p) -> tuple:
    return tuple(getattr(p, f) for f in FIELDS)


def load(name: str):
    paths = [HERE / n for n in PARTNERS.get(name, [])] + [HERE / name]
    return load_rules(paths, base=HERE)


@pytest.mark.parametrize("expected", EXPECTED, ids=[e[0][: -len(".yaml")] for e in EXPECTED])
def test_each_mistake_is_reported_once_in_plain_words(expected):
    rs, problems = load(expected[0])  # never raises
    assert [located(p) for p in problems] == [expected[:8]], "\n".join(map(str, problems))
    (p,) = problems
    hint = expected[8]
    if hint is not None:
        assert p.suggestion and hint in p.suggestion, p.suggestion
    # what a manager reads must not show Python internals
    shown = str(p)
    assert not re.search(r"Traceback|\w+(Error|Exception)\b|\bNone\b|<class|\\x[0-9a-f]{2}", shown), shown
    assert shown.startswith(f"{p.file}:{p.line}"), shown


def test_every_malformed_file_has_an_expectation():
    files = {f.name for f in HERE.glob("*.yaml")}
    expected = {e[0] for e in EXPECTED}
    assert files - VALID == expected
    assert len(expected) >= 35
    assert len(expected) == len(EXPECTED)  # one problem per file


def test_all_files_together_report_every_problem_once():
    """Loading the whole folder loses nothing and adds nothing: one problem per file."""
    rs, problems = load_rules(HERE, base=HERE)
    assert Counter(located(p) for p in problems) == Counter(e[:8] for e in EXPECTED)
    assert len(problems.errors) == len(EXPECTED) - 1 and len(problems.warnings) == 1  # empty.yaml
    # the valid parts still load: the partner decision and the tables with a bad cell
    assert "contact_window" in rs.tables and "order_band" in rs.tables


@pytest.mark.parametrize("folder", [Path(__file__).parent.parent / "rules", Path(__file__).parent / "examples" / "rules"], ids=["bundled", "shared-examples"])
def test_good_rule_files_still_load_without_errors(folder):
    """The message fixes made for these files leave good rule files alone."""
    rs, problems = load_rules(folder)
    assert [str(p) for p in problems.errors] == []


def test_bug_thousands_separator_after_an_operator(tmp_path):
    (tmp_path / "voucher.yaml").write_text(textwrap.dedent("""\
        decision: big_spender
        hit: first
        inputs:
          spend: {type: number}
        outputs:
          voucher: {type: number}
        rules:
          - [">= 5,000", 200]
          - ["-",        0]
        """), encoding="utf-8")
    rs, problems = load_rules(tmp_path, base=tmp_path)
    assert [located(p) for p in problems] == [
        ("voucher.yaml", 8, "big_spender", 1, "spend", "cell", "error",
         "'5,000' reads as several numbers because of the comma; write 5000 without the thousands separator"),
    ]
