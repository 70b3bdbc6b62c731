"""The CX_ worksheet functions, called directly as Excel's function server calls them."""
import datetime as dt
import shutil

import pytest

pytest.importorskip("xlwings", reason="the Excel layer needs xlwings 0.37.8, which needs Python 3.11+")

from cxrules import excel, rulesets

AS_OF = dt.datetime(2026, 11, 23, 10, 0)


@pytest.fixture(autouse=True)
def bundled_rules(monkeypatch):
    monkeypatch.setenv("CXRULES_RULES", str(rulesets.bundled_rules_dir()))


def is_err(v):
    return isinstance(v, str) and v.startswith("#CX: ")


def col(*values):
    return [[v] for v in values]


# ------------------------------------------------------------------ CX_TIER
def test_tier_single_cells():
    assert excel.CX_TIER(dt.date(2026, 11, 13), 6, 8000, None, None, AS_OF) == "High value"
    assert excel.CX_TIER(dt.date(2026, 11, 13), 12, 620000, None, None, AS_OF) == "VIP"


def test_tier_columns_spill_one_row_per_row_with_blanks_and_bad_values():
    got = excel.CX_TIER(
        col(dt.date(2026, 11, 13), None, dt.date(2025, 1, 1), "not a date", dt.date(2026, 11, 20)),
        col(6, None, 1, 2, "many"),
        col(8000, None, 50, 3000, 100),
        None, None, AS_OF,
    )
    assert len(got) == 5 and all(len(r) == 1 for r in got)
    assert got[0] == ["High value"]
    assert got[1] == [""]  # a blank row gives a blank cell
    assert got[2] == ["Churn risk"]
    assert is_err(got[3][0]) and "not a date" in got[3][0] and "last_purchase" in got[3][0]
    assert is_err(got[4][0]) and "not a number" in got[4][0]


def test_tier_one_dimensional_lists_and_excel_dates_as_serials():
    got = excel.CX_TIER([46339.0, 46339.0], [6.0, 1.0], [8000.0, 120.0], None, None, AS_OF)  # 2026-11-13
    assert [r[0] for r in got] == ["High value", "Regular"]


def test_tier_mismatched_columns_and_a_block_are_one_message():
    assert is_err(excel.CX_TIER(col(1, 2), col(1, 2, 3), col(1, 2)))
    msg = excel.CX_TIER([[1, 2], [3, 4]], 1, 1)
    assert is_err(msg) and "one column" in msg


def test_excel_error_cells_are_row_messages():
    got = excel.CX_TIER(col(dt.date(2026, 11, 13), "#DIV/0!"), col(6, 6), col(8000, 8000), None, None, AS_OF)
    assert got[0] == ["High value"]
    assert is_err(got[1][0]) and "#DIV/0!" in got[1][0]


def test_function_never_raises():
    assert is_err(excel.CX_TIER(object(), 1, 1))
    assert is_err(excel.CX_DECIDE("tier", None))
    assert is_err(excel.CX_DUE(dt.date(2026, 1, 1), "1d", calendar=object()))


# ------------------------------------------------------------------ CX_DECIDE
def test_decide_spills_every_output_under_a_header():
    data = [["Last purchase", "Orders 12m", "Spend 12m"],
            [dt.date(2026, 11, 13), 6, 8000],
            [None, None, None],
            ["bad", 1, 1]]
    got = excel.CX_DECIDE("tier", data, AS_OF)
    assert got[0] == ["Tier", "Tier reason"]
    assert got[1] == ["High value", "RFM high value"]
    assert got[2] == ["", ""]
    assert is_err(got[3][0]) and is_err(got[3][1])


def test_decide_reads_chinese_headers_and_input_names():
    got = excel.CX_DECIDE("tier", [["recency", "frequency", "monetary", "spend_rank"], [10, 6, 8000, 50]])
    assert got[1][0] == "High value"
    zh = excel.CX_DECIDE("escalation", [["严重程度", "创建时间"], ["Urgent", dt.datetime(2026, 11, 20, 17)]])
    assert zh[0][:2] == ["Respond within", "Resolve within"]
    row = dict(zip(zh[0], zh[1]))
    assert row["Respond within"] == "2h" and row["Respond by"] == dt.datetime(2026, 11, 20, 19)


def test_decide_unknown_decision_and_headers():
    msg = excel.CX_DECIDE("tierr", [["a"], [1]])
    assert is_err(msg) and "did you mean 'tier'" in msg
    msg = excel.CX_DECIDE("tier", [["Name", "Phone"], ["a", "1"]])
    assert is_err(msg) and "header" in msg
    assert is_err(excel.CX_DECIDE("tier", [["Spend 12m"]]))  # no data row


def test_decide_as_of_text_and_bad_as_of():
    data = [["Opened at", "Status"], [dt.datetime(2026, 11, 20, 9), "Open"]]
    assert excel.CX_DECIDE("escalation_level", data, "2026-11-20 10:00")[1][0] == 0
    assert excel.CX_DECIDE("escalation_level", data, "2026-11-28 10:00")[1][0] == 3
    assert is_err(excel.CX_DECIDE("escalation_level", data, "soon"))


# ------------------------------------------------------------------ one function per decision
def test_next_contact_single_and_column():
    assert excel.CX_NEXT_CONTACT(dt.date(2026, 11, 1), "VIP") == dt.date(2026, 11, 15)
    got = excel.CX_NEXT_CONTACT(col(dt.date(2026, 11, 1), None, dt.date(2026, 11, 1)), col("Regular", None, "Unheard of"))
    assert got[0] == [dt.date(2027, 1, 30)]
    assert got[1] == [""]
    assert is_err(got[2][0]) and "allowed values of tier" in got[2][0]


def test_next_contact_single_tier_repeats_down_a_column():
    got = excel.CX_NEXT_CONTACT(col(dt.date(2026, 11, 1), dt.date(2026, 11, 2)), "High value")
    assert got == [[dt.date(2026, 11, 8)], [dt.date(2026, 11, 9)]]


def test_deadlines_two_columns_in_business_time():
    # Friday 17:00, one working day to respond, three to resolve
    assert excel.CX_DEADLINES(dt.datetime(2026, 11, 20, 17), "Normal") == [dt.datetime(2026, 11, 23, 17), dt.datetime(2026, 11, 25, 17)]
    got = excel.CX_DEADLINES(col(dt.datetime(2026, 11, 20, 17), None, dt.datetime(2026, 11, 20, 17)), col("Urgent", None, "Severe"))
    assert got[0] == [dt.datetime(2026, 11, 20, 19), dt.datetime(2026, 11, 21, 17)]
    assert got[1] == ["", ""]
    assert is_err(got[2][0]) and "allowed" in got[2][0]


def test_level_single_column_and_closed_cases():
    assert excel.CX_LEVEL(dt.datetime(2026, 11, 22, 9), "Open", AS_OF) == 1
    got = excel.CX_LEVEL(col(dt.datetime(2026, 11, 10), dt.datetime(2026, 11, 10), None, "yesterday"), col("Open", "Closed", None, "Open"), AS_OF)
    assert got[:3] == [[3], [0], [""]]
    assert is_err(got[3][0])


def test_offer_uses_a_given_level():
    assert excel.CX_OFFER("Urgent", "VIP", 3, 3) == "Gift + management follow-up within 24 h"
    got = excel.CX_OFFER(col("Minor", None, "Normal"), col("Regular", None, "High value"), col(0, None, 1), col(0, None, 2))
    assert got == [["Coupon CNY 10"], [""], ["Coupon CNY 50"]]


def test_nps_groups_and_bad_scores():
    got = excel.CX_NPS(col(10, 7, None, "x", 11))
    assert [r[0] for r in got[:3]] == ["Promoter", "Passive", ""]
    assert is_err(got[3][0]) and is_err(got[4][0])
    assert excel.CX_NPS(9) == "Promoter"


# ------------------------------------------------------------------ CX_DUE
def test_due_in_calendars():
    fri = dt.datetime(2026, 11, 20, 17)
    assert excel.CX_DUE(fri, "1d") == dt.datetime(2026, 11, 23, 17)  # business by default
    assert excel.CX_DUE(fri, "4h", "business") == dt.datetime(2026, 11, 23, 12)
    assert excel.CX_DUE(fri, "1d", "everyday") == dt.datetime(2026, 11, 21, 17)
    assert excel.CX_DUE(dt.date(2026, 9, 30), 1, "business") == dt.date(2026, 10, 8)  # National Day week off
    assert excel.CX_DUE(dt.date(2026, 9, 30), "1d", "business") == dt.date(2026, 10, 8)


def test_due_columns_blanks_and_bad_values():
    got = excel.CX_DUE(col(dt.datetime(2026, 11, 20, 17), None, "someday", dt.datetime(2026, 11, 20, 17)), col("2h", "2h", "2h", "soon"), "everyday")
    assert got[0] == [dt.datetime(2026, 11, 20, 19)]
    assert got[1] == [""]
    assert is_err(got[2][0]) and is_err(got[3][0])
    assert excel.CX_DUE(col(dt.datetime(2026, 11, 20, 17)) + [[None]] * 1000, "2h", "everyday") == [[dt.datetime(2026, 11, 20, 19)]]
    msg = excel.CX_DUE(dt.datetime(2026, 11, 20), "1d", "moon")
    assert is_err(msg) and "business" in msg


# ------------------------------------------------------------------ CX_EXPLAIN and CX_DECISIONS
def test_explain_name_value_pairs_names_the_rule_row_and_line():
    got = excel.CX_EXPLAIN("tier", [["recency", 10], ["frequency", 6], ["monetary", 8000], ["spend_rank", 50]])
    assert got.startswith("rule row 3 fired (tier.yaml:")
    assert "tier=High value" in got


def test_explain_rows_of_a_range():
    got = excel.CX_EXPLAIN("escalation_level", [["Status", "Opened at"], ["Open", dt.datetime(2026, 11, 10)], [None, None], ["Closed", dt.datetime(2026, 11, 10)]], AS_OF)
    assert got[0][0].startswith("rule row 2 fired") and "level=3" in got[0][0]
    assert got[1] == [""]
    assert got[2][0].startswith("rule row 1 fired")


def test_explain_no_match_and_unknown_decision():
    assert is_err(excel.CX_EXPLAIN("nps", [["score", 99]]))
    assert is_err(excel.CX_EXPLAIN("nope", [["score", 9]]))


def test_decisions_lists_inputs_and_outputs():
    got = excel.CX_DECISIONS()
    assert got[0] == ["Decision", "Title", "Reads", "Writes", "Rule file"]
    rows = {r[0]: r for r in got[1:]}
    assert {"tier", "contact", "escalation", "escalation_level", "compensation", "nps"} <= set(rows)
    assert "days_since(last_purchase)" in rows["tier"][2]
    assert "next_contact" in rows["contact"][3]
    assert rows["tier"][4].startswith("tier.yaml:")


# ------------------------------------------------------------------ the rules folder
def test_rules_folder_setting_and_edits_take_effect_at_the_next_call(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(rulesets.bundled_rules_dir(), rules)
    monkeypatch.setenv("CXRULES_RULES", str(rules))
    assert excel.rules_folder() == rules
    assert excel.CX_TIER(dt.date(2026, 11, 13), 12, 400000, None, None, AS_OF) == "High value"
    tier = rules / "tier.yaml"
    tier.write_text(tier.read_text(encoding="utf-8").replace('">= 500000"', '">= 300000"'), encoding="utf-8")
    assert excel.CX_TIER(dt.date(2026, 11, 13), 12, 400000, None, None, AS_OF) == "VIP"


def test_rules_with_errors_show_in_the_cell(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(rulesets.bundled_rules_dir(), rules)
    (rules / "survey.yaml").write_text("decision: nps\nhit: sometimes\n", encoding="utf-8")
    monkeypatch.setenv("CXRULES_RULES", str(rules))
    msg = excel.CX_NPS(9)
    assert is_err(msg) and "errors" in msg and len(msg) <= len(excel.ERR) + excel.MAX_MESSAGE


def test_whole_column_references_stop_at_the_last_value():
    n = 50_000  # as B:B gives, blank after the data
    last = col(dt.date(2026, 11, 13), None, dt.date(2026, 11, 13)) + [[None]] * n
    orders = col(6, None, 6) + [[None]] * n
    spend = col(8000, None, 8000) + [[None]] * n
    got = excel.CX_TIER(last, orders, spend, None, None, AS_OF)
    assert got == [["High value"], [""], ["High value"]]
    got = excel.CX_DECIDE("nps", [["NPS score"], [9], [None], [3]] + [[None]] * n)
    assert got == [["NPS group", "Open a review case"], ["Promoter", False], ["", ""], ["Detractor", True]]
