"""Chinese throughout: a workbook with Chinese headers gets Chinese values, sheet names,
headings and messages; an English one stays English; the command line stays English."""
from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from cxrules import rulesets
from cxrules.cli import cli
from cxrules.evaluation import Evaluator
from cxrules.i18n import LOCALE_DIR, Translator, catalogue
from cxrules.recalc import recalc, translator

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
AS_OF = dt.datetime(2026, 11, 23, 10, 0)
CJK = re.compile(r"[\u3400-\u9fff]")
# words a Chinese message may keep: product and format names, options, the settings sheet
LATIN_OK = {"Excel", "cxrules", "TRUE", "FALSE", "values", "json", "map", "header", "row", "recalc", "check",
            "decisions", "unique", "any", "CX", "settings", "XFD", "RFM"}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def english_words(text: str) -> list[str]:
    """Words of English left in a translated text, once quoted parts (cell contents, names
    of tables and headers) and the words a Chinese text keeps are set aside."""
    bare = re.sub(r"“[^”]*”|'[^']*'|\"[^\"]*\"|#[A-Z/0!?]+|\b[A-Z]{1,3}\d*\b", "", text)  # quotes, errors, cells
    return [w for w in re.findall(r"[A-Za-z]{2,}", bare) if w not in LATIN_OK]


@pytest.fixture(scope="module")
def rs():
    return rulesets.load_or_raise(RULES)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """The committed samples recalculated as a user would: lang -> path."""
    d = tmp_path_factory.mktemp("lang")
    out = {}
    for lang in ("en", "zh"):
        p = d / f"sample_{lang}.xlsx"
        shutil.copy(ROOT / "workbooks" / p.name, p)
        r = run("recalc", p, "--as-of", "2026-11-23 10:00", "--rules", RULES)
        assert r.exit_code == 0, r.output
        out[lang] = (p, r.output)
    return out


_BOOKS: dict = {}


def _rows(path, sheet):
    """A sheet's values, each recalculated sample read once."""
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _BOOKS:
        wb = openpyxl.load_workbook(path, read_only=True)
        _BOOKS[key] = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}
        wb.close()
    return _BOOKS[key][sheet]


def _names(path):
    return openpyxl.load_workbook(path, read_only=True).sheetnames


def _column(rows, header):
    j = rows[0].index(header)
    return [r[j] for r in rows[1:] if r[j] is not None]


# ------------------------------------------------------------------ the samples
def test_chinese_sample_in_chinese_values_sheet_names_and_messages_out(samples, rs):
    path, output = samples["zh"]
    assert _names(path) == ["客户", "工单", "备注", "指标", "CX 汇总", "回访计划", "问题"]
    customers, cases = _rows(path, "客户"), _rows(path, "工单")
    tiers = set(_column(customers, "客户层级"))
    assert tiers == {"贵宾客户", "高价值客户", "潜力客户", "新客户", "流失风险客户", "普通客户"}
    assert set(_column(customers, "回访渠道")) == {"电话（客户经理）", "电话", "微信", "短信"}
    assert all(CJK.search(v) for v in _column(customers, "分层依据") + _column(customers, "回访目的"))
    assert set(_column(cases, "负责人")) <= {"红色通道小组", "专家组", "管理层", "投诉处理组", "服务台"}
    assert set(_column(cases, "补救方式")) <= {"立即赔付损失", "换货", "重新服务", "负责人致歉"}
    # Chinese values in: 紧急, 已解决, 贵宾客户 ... read as the rules' values; only the two planted
    # values nobody listed (特急, 物流丢件) are refused
    refused = [r[4] for r in _rows(path, "问题")[1:] if "允许值" in (r[4] or "")]
    assert len(refused) == 2 and any("“特急”" in m for m in refused) and any("“物流丢件”" in m for m in refused)
    # resolved cases (已解决 / 已关闭) are never overdue but for a late callback or VIP follow-up (journeys)
    head = cases[0]
    status, late = _column(cases, "状态"), [r[head.index("逾期天数")] for r in cases[1:]]
    followed = [any(r[head.index(c)] is not None and r[head.index(c)] < AS_OF for c in ("投诉回访：到期日", "贵宾跟进：到期日")) for r in cases[1:]]
    assert not [s for s, d, f in zip((r[head.index("状态")] for r in cases[1:]), late, followed) if d and s in ("已解决", "已关闭") and not f]
    assert any(d and f for d, f in zip(late, followed))
    assert "已解决" in status
    # the command line stays English, and names the Issues sheet as it is called
    assert "more problems (see the '问题' sheet, or --json)" in output and not CJK.search(output.split("\n")[0])


def test_every_message_on_the_chinese_issues_sheet_is_chinese(samples):
    rows = _rows(samples["zh"][0], "问题")
    assert rows[0] == ["工作表", "行", "列", "级别", "问题", "处理建议"]
    assert len(rows) > 25
    for sheet, row, column, severity, message, todo in rows[1:]:
        assert severity in ("错误", "警告"), severity
        for text in (message, todo):
            assert text and CJK.search(text) and not english_words(text), (row, column, text)


def test_exact_translations_of_a_few_messages(samples, rs):
    rows = {(r[0], r[1], r[2], r[4]): r[3:] for r in _rows(samples["zh"][0], "问题")[1:]}
    assert ["错误", "“无”不是数字", "请填写数字（如 1200、1,200.50 或 ¥1200）；不知道时请清空单元格"] in rows.values()
    assert ["警告", "上次回访日期为空，无法计算下次回访", "如果知道，请填写计算起点的日期"] in rows.values()
    # a label in a message is the header the sheet has (受理时间), not another the rules list (创建时间)
    assert ["警告", "受理时间为空，无法计算响应时限", "如果知道，请填写计算起点的日期"] in rows.values()
    assert ["错误", "单元格中是 Excel 错误值 #N/A", "请修正公式或其引用的单元格，使其得出数值；或清空单元格"] in rows.values()
    tr = translator(rs, "zh")
    assert tr("'特急' is not one of the allowed values of severity (Urgent, Complex, Normal, Minor)") == \
        "“特急”不是严重程度的允许值（紧急、复杂、一般、轻微）"
    assert tr("decision 'tier' did not run on this sheet: no column for Spend in the last 12 months (CNY) "
              "(a header such as 'Spend 12m' or '消费金额'); the closest header is '消费额（元）' in column D; "
              "its earlier results were kept") == (
        "决策“tier”未在本表运行：没有消费金额列（表头如 'Spend 12m' 或 '消费金额'）；"
        "最接近的表头是 D 列的“消费额（元）”；之前的结果保持不变")
    assert tr("3 cells of column F hold a formula (F2, F3, F4, F5, F6 and 2 more); cxrules never writes a value over "
              "a formula, so they were kept") == \
        "F 列有 3 个单元格是公式（F2、F3、F4、F5、F6 等另外 2 个）；cxrules 从不用值覆盖公式，因此保持不变"
    assert tr("a message nobody wrote a template for") == "a message nobody wrote a template for"


def test_english_sample_stays_english(samples):
    path, _ = samples["en"]
    assert _names(path) == ["Customers", "Cases", "Notes", "Measures", "CX summary", "Contact plan", "Issues"]
    customers = _rows(path, "Customers")[2:]  # header on row 3
    for header in ("Tier", "Tier reason", "Channel", "Contact purpose"):
        assert not [v for v in _column(customers, header) if CJK.search(str(v))], header
    issues = _rows(path, "Issues")
    assert issues[0] == ["Sheet", "Row", "Column", "Severity", "Problem", "What to do"]
    for r in issues[1:]:
        # cells may hold Chinese dates as typed; the words around them are English
        assert not CJK.search(re.sub(r"'[^']*'|2026年11月23日|是 or 否", "", r[4] + r[5])), r
    summary = _rows(path, "CX summary")
    assert summary[0][0] == "CX summary" and not [c for r in summary for c in r if isinstance(c, str) and CJK.search(c)]


# ------------------------------------------------------------------ every kind of problem, in Chinese
SAT_RULES = """
decision: satisfaction
hit: unique
inputs:
  csat: {type: number, columns: [满意度, CSAT]}
outputs:
  band: {type: text, columns: [满意度分组, CSAT band]}
rules:
  - ["[1..3]", 低]
  - ["[3..5]", 高]
"""
CUSTOMERS = ["客户", "最近消费日期", "消费次数", "年消费额", "上次回访日期", "首次消费日期"]


def _messy_book(path: Path) -> Path:
    """Chinese headers and one of each thing that goes wrong in a team's workbook."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "客户"
    ws.append(CUSTOMERS)
    d = dt.datetime
    ws.append(["甲", d(2026, 11, 1), 14, 600000, d(2026, 11, 10), d(2020, 1, 1)])
    ws.append(["乙", d(2026, 11, 1), "很多", 600000, d(2026, 11, 10), d(2020, 1, 1)])  # not a number
    ws.append(["丙", "上个月", 3, "3,000", d(2026, 11, 10), d(2020, 1, 1)])  # not a date, number as text
    ws.append(["壬", d(2026, 11, 1), 3, 3000, None, d(2020, 1, 1)])  # no last contact: no next contact
    ws.append(["丁", "2026/11/02", 3, "#N/A", d(2026, 11, 10), d(2020, 1, 1)])  # date as text, Excel error
    ws.append(["戊", d(2026, 11, 1), "=1+1", 500, d(2026, 11, 10), d(2020, 1, 1)])  # formula never calculated
    cases = wb.create_sheet("工单")
    cases.append(["工单编号", "受理时间", "严重程度", "工单类型", "状态", "客户层级", "负责人"])
    cases.append(["G1", d(2026, 11, 20, 9), "紧急", "投诉", "待处理", "贵宾客户", "张三"])  # the owner is a person's
    cases.append(["G2", d(2026, 11, 20, 9), "紧急", "投诉", "已解决", "普通客户", None])
    crm = wb.create_sheet("导出")  # the spend column under another name: tier cannot run
    crm.append(["客户", "最近消费日期", "消费次数", "消费额（元）", "上次回访日期"])
    crm.append(["己", d(2026, 11, 1), 14, 600000, d(2026, 11, 10)])
    tight = wb.create_sheet("并排")  # two ranges with one free column between; a severity nobody listed
    for r in [CUSTOMERS[:4] + [None, "工单编号", "受理时间", "严重程度", "工单类型", "状态", "客户层级"],
              ["庚", d(2026, 11, 1), 14, 600000, None, "G9", d(2026, 11, 20, 9), "特急", "咨询", "处理中", "普通客户"]]:
        tight.append(r)
    low = wb.create_sheet("说明")
    for k in range(35):
        low.append([f"说明 {k + 1}"])
    for r in [[], [], [], [], CUSTOMERS[:4], ["辛", d(2026, 11, 1), 3, 3000]]:
        low.append(r)
    sat = wb.create_sheet("满意度")
    sat.append(["工单编号", "满意度"])
    sat.append(["G1", 3])  # two rows of a unique table
    sat.append(["G2", 9])  # no row
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    d = tmp_path_factory.mktemp("messy")
    rules = d / "rules"
    shutil.copytree(RULES, rules)
    (rules / "satisfaction.yaml").write_text(SAT_RULES, encoding="utf-8")
    ev = Evaluator(rulesets.load_or_raise(rules))
    path = _messy_book(d / "团队.xlsx")
    recalc(path, ev, as_of=AS_OF)
    wb = openpyxl.load_workbook(path)  # a formula where cxrules wrote before: kept, and said
    wb["客户"]["G3"] = '=IF(C3>5,"贵宾客户","普通客户")'
    wb.save(path)
    rep = recalc(path, ev, as_of=AS_OF)
    return path, rep


def test_every_kind_of_problem_is_on_the_issues_sheet_in_chinese_with_what_to_do(messy):
    path, rep = messy
    codes = {p.code for p in rep.problems}
    assert {"row", "column-kept", "formula-kept", "decision-not-run", "no-room", "header-too-low"} <= codes
    english = {p.message for p in rep.problems if p.code == "row"}
    for kind in ("is not a number", "is not a date", "number stored as text", "date stored as text", "is blank, so",
                 "Excel error", "has no calculated value", "not one of the allowed values", "no rule row",
                 "all match this row"):
        assert any(kind in m for m in english), kind
    rows = _rows(path, "问题")
    assert len(rows) - 1 == len(rep.problems)  # the writer's own notes (formulas kept) are listed too
    for sheet, row, column, severity, message, todo in rows[1:]:
        for text in (message, todo):
            assert text and CJK.search(text) and not english_words(text), (sheet, row, text)


def test_rerun_in_the_other_language_replaces_cxrules_sheets_and_never_a_persons(tmp_path, rs):
    ev = Evaluator(rs)
    path = tmp_path / "book.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(["Customer", "Last purchase", "Orders 12m", "Spend 12m"])
    ws.append(["A", dt.datetime(2026, 11, 1), 14, 600000])
    wb.create_sheet("问题")["A1"] = "我自己的笔记"  # a person's sheet that has the Chinese name
    wb.save(path)
    recalc(path, ev, as_of=AS_OF)
    assert openpyxl.load_workbook(path).sheetnames == ["Customers", "问题", "CX summary", "Issues"]
    wb = openpyxl.load_workbook(path)
    for cell, text in zip(wb["Customers"][1], ["客户", "最近消费日期", "消费次数", "消费金额", "客户层级"]):
        cell.value = text  # the team switched to Chinese headers
    wb.save(path)
    rep = recalc(path, ev, as_of=AS_OF)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Customers", "问题", "CX 汇总", "问题 (2)"]  # renamed, not added
    assert book["问题"]["A1"].value == "我自己的笔记"
    assert book["Customers"]["E2"].value == "贵宾客户" and rep.language == "zh"
    assert [s.sheet for s in rep.sheets] == ["Customers"]  # its own sheets are not read as data
    with zipfile.ZipFile(path) as z:
        workbook = z.read("xl/workbook.xml").decode()
    assert "CX summary" not in workbook and workbook.count("_cxrules_made") == 2
    assert [p.code for p in rep.problems] == ["sheet-name-taken"]
    assert recalc(path, ev, as_of=AS_OF).problems == []  # a rerun finds them by their mark, and reads none as data
    assert openpyxl.load_workbook(path).sheetnames == book.sheetnames


# Messages the samples and the messy book above do not make, as the code words them.
RARER = [
    "the formula in C7 was saved by a program that does not calculate (its value is only a placeholder)",
    "no free column for 2 new results (客户层级, 分层依据): only 1 column is left after XFC (XFD is Excel's last); "
    "nothing was written on this sheet",
    "no free column for 9 new results (客户层级, 分层依据): the sheet already uses column XFD, Excel's last; nothing was written on this sheet",
    "no header the rules know, but some look close: 'Total spend 2025' (Spend in the last 12 months (CNY)), "
    "'Number of orders' (Orders in the last 12 months); nothing was computed on this sheet",
    "the range A1:D4 has none of the columns the decisions read; it was left as it is",
    "decision 'contact' did not run on the range A1:F9: it reads decision 'tier', which could not run either; its earlier results were kept",
    "'Spend' is mapped to 'monetry', which no rule reads or writes",
    "a mapping row needs both the header and the name it reads as",
    "'Tier' is a header of more than one column (E and G, H); column E is used",
    "column E ('Tier') is read both as 'tier' and as 'previous_tier'",
    "header cells A1:C1 are merged; only column A has a header, columns B-C have none",
    "row 4 (--header-row) names none of the columns the rules read in columns A-F",
    "a text in column K (row 9) is longer than Excel's 32767 characters; it was cut",
    "column F is column 'Level' of table 'Cases'; its header was kept (not changed to '升级级别') so formulas that name it keep working",
    "the new column 'Tier' was not added to table 'T1': the table already has a column of that name",
    "the workbook already has its own sheet '问题', so cxrules wrote '问题 (2)'",
    "rule rows 2 and 3 of 'remedy' all match this row (an 'any' table needs them to agree)",
    "'clock' gives 'nights', which is not a calendar",
    "'10:30:00' is a time of day without a date",
    "'yes please' is not true or false",
    "'3 days' is not a duration; write it like 30s, 90m, 2h, 3d or 1w",
    "'2026-11-23' is a date, not a number",
]


@pytest.mark.parametrize("message", RARER)
def test_rarer_messages_have_templates_too(rs, message):
    got = translator(rs, "zh").message(message)
    assert got is not None and CJK.search(got) and not english_words(got), got


# ------------------------------------------------------------------ the catalogue itself
def test_catalogue_is_read_with_babel_and_keeps_every_placeholder():
    from babel.messages.pofile import read_po

    with open(LOCALE_DIR / "zh" / "LC_MESSAGES" / "cxrules.po", "rb") as f:
        cat = read_po(f)
    assert len(catalogue("zh")) == len([m for m in cat if m.id]) > 100
    for msgid, msgstr in catalogue("zh").items():
        names = lambda s: sorted(set(re.findall(r"\{(\w+)\}", s)))  # noqa: E731
        assert names(msgid) == names(msgstr), msgid
        assert msgstr != msgid, msgid
    assert Translator("en")("'x' is not a number") == "'x' is not a number"
