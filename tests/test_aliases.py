"""Value aliases (`values:`): the spellings a team writes read as the values the tables use."""
import datetime as dt
from pathlib import Path

import pytest

from cxrules import rulesets
from cxrules.evaluation import Evaluator
from cxrules.loader import load_rules
from cxrules.testing import run_examples

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.datetime(2026, 11, 23, 10, 0)

TABLE = """
decision: handling
hit: first
inputs:
  severity: {type: text, allowed: [Urgent, Normal], columns: [Severity, 严重程度]}
  status:   {type: text, columns: [Status, 状态]}
outputs:
  owner:  {type: text, columns: [Owner, 负责人]}
  notify: {type: text, columns: [Notify, 提醒方式], values: {SMS: 短信提醒}}
rules:
  - [紧急,    "not(Closed)", Red team, SMS]
  - ["-",     "-",           Desk,     "-"]
examples:
  - {severity: 紧急, status: 处理中, owner: Red team}
  - {severity: Urgent, status: 已关闭, owner: Desk}
---
values:
  Urgent: 紧急
  Closed: [已关闭, 关闭]
  In progress: 处理中
  Red team: 红色通道
  SMS: 短信
"""


@pytest.fixture
def rs(tmp_path):
    (tmp_path / "t.yaml").write_text(TABLE, encoding="utf-8")
    rs, problems = load_rules(tmp_path, base=tmp_path)
    assert not problems, [str(p) for p in problems]
    return rs


def test_cells_with_a_spelling_read_as_the_value_before_allowed_and_the_rules(rs):
    ev = Evaluator(rs).evaluate([{"severity": "紧急", "status": " 处理中 "}, {"severity": "紧急", "status": "关闭"},
                                 {"severity": "特急", "status": "Open"}], None, AS_OF)
    assert ev.columns["severity"][:2] == ["Urgent", "Urgent"]
    assert ev.columns["status"][:2] == ["In progress", "Closed"]
    assert ev.columns["owner"] == ["Red team", "Desk", None]  # the rule cell 紧急 reads as Urgent too
    (p,) = ev.problems  # only the spelling nobody listed is refused
    assert p.index == 2 and p.message == "'特急' is not one of the allowed values of severity (Urgent, Normal)"


def test_examples_may_use_spellings(rs):
    results = run_examples(rs)
    assert results and all(r.passed for r in results), [r for r in results if not r.passed]


def test_written_form_follows_the_workbook_language_and_a_column_may_have_its_own(rs):
    al = rs.aliases
    assert al.written("owner", "Red team", zh=True) == "红色通道"
    assert al.written("owner", "Red team", zh=False) == "Red team"
    assert al.written("notify", "SMS", zh=True) == "短信提醒"  # the output's own spelling wins
    assert al.written("channel", "SMS", zh=True) == "短信"
    assert al.written("owner", ["Red team", "Desk"], zh=True) == ["红色通道", "Desk"]  # no spelling: as it is
    assert al.written("status", "已关闭", zh=False) == "Closed"


@pytest.mark.parametrize("doc, message", [
    ("values:\n  Urgent: 紧急\n  Normal: 紧急\n", "'紧急' is a spelling of both 'Urgent' (v.yaml:2) and 'Normal'"),
    ("values:\n  Urgent: [Normal]\n  Normal: 一般\n", "'Normal' is a value of its own and also listed as a spelling of 'Urgent'"),
    ("values:\n  Urgent: 紧急\n  Urgent: 急\n", "'Urgent' is given twice in values (first on line 2); its spellings go in one list"),
    ("values: [紧急]\n", "values must map each value to its other spellings, e.g. {Urgent: 紧急, Resolved: [已解决, 已处理]}"),
    ("values:\n  Urgent:\n", "'Urgent' in values has no other spelling"),
])
def test_ambiguous_or_malformed_values_are_errors_with_their_line(tmp_path, doc, message):
    (tmp_path / "v.yaml").write_text(doc, encoding="utf-8")
    _, problems = load_rules(tmp_path / "v.yaml", base=tmp_path)
    assert [p.message for p in problems] == [message]
    assert problems.items[0].file == "v.yaml" and problems.items[0].line


def test_bundled_rules_list_chinese_spellings_and_the_shared_examples_load_unchanged():
    rs = rulesets.load_or_raise(ROOT / "rules")
    for name, value, zh in [("severity", "Urgent", "紧急"), ("status", "Resolved", "已解决"), ("tier", "VIP", "贵宾客户"),
                            ("kind", "Complaint", "投诉"), ("channel", "WeChat", "微信")]:
        assert rs.aliases.read(name, zh) == value and rs.aliases.written(name, value, zh=True) == zh
    examples = rulesets.load_or_raise(ROOT / "tests" / "examples" / "rules")
    assert not examples.aliases and all(r.passed for r in run_examples(examples))
