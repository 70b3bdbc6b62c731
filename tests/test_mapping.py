"""A team's own headers: missing required columns stop their decision loudly, and a mapping
kept with the workbook (or given with --map) feeds those headers to the rules."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from books import make_book, sheet_values

from cxrules import rulesets
from cxrules.cli import cli
from cxrules.evaluation import Evaluator
from cxrules.mapping import Entry, parse_option, read_settings, similarity

RULES = Path(__file__).resolve().parents[1] / "rules"
AS_OF = "2026-11-23 10:00"
AS_OF_DT = dt.datetime(2026, 11, 23, 10, 0)
CRM = ["Customer name", "Last order date", "Number of orders", "Total spend 2025", "First order date", "Last contacted"]
CRM_ROWS = [["A", dt.datetime(2026, 11, 1), 14, 600000, dt.datetime(2020, 1, 1), dt.datetime(2026, 11, 10)],
            ["B", dt.datetime(2025, 1, 1), 1, 10, dt.datetime(2024, 1, 1), dt.datetime(2026, 6, 1)],
            ["C", dt.datetime(2026, 11, 15), 6, 8000, dt.datetime(2023, 5, 1), dt.datetime(2026, 11, 1)]]
NAMES = ["customer", "last_purchase", "frequency", "monetary", "first_purchase", "last_contact"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _book(path: Path, header, rows, title="CRM export") -> Path:
    return make_book(path, header, rows, title)


_sheet = sheet_values


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(rulesets.load_or_raise(RULES))


def _want_tiers(evaluator, rows):
    return evaluator.evaluate([dict(zip(NAMES, r)) for r in rows], ["tier"], AS_OF_DT).columns["tier"]


def test_a_crm_export_is_not_silently_skipped(tmp_path):
    path = _book(tmp_path / "crm.xlsx", CRM, CRM_ROWS)
    before = path.read_bytes()
    r = run("recalc", path, "--as-of", AS_OF, "--rules", RULES)
    assert r.exit_code == 1
    assert ("sheet 'CRM export': error: no header the rules know, but some look close: 'Last contacted' (Last contact), "
            "'Last order date' (Last purchase), 'Total spend 2025' (Spend in the last 12 months (CNY)), "
            "'First order date' (First purchase); nothing was computed on this sheet") in r.output
    assert "run 'cxrules map' on the workbook" in r.output and '--map "Last contacted=last_contact"' in r.output
    assert path.read_bytes() == before


def test_map_writes_a_mapping_that_recalc_then_uses(tmp_path, evaluator):
    path = _book(tmp_path / "crm.xlsx", CRM, CRM_ROWS)
    r = run("map", path, "--rules", RULES)
    assert r.exit_code == 0, r.output
    assert "wrote 5 mappings into its 'CX settings' sheet" in r.output
    settings = _sheet(path, "CX settings")
    assert settings[0] == ["Header", "Reads as", "Sheet", "Confidence", "Note"]
    got = {row[0]: (row[1], row[2], row[3]) for row in settings[1:]}
    assert got == {
        "Last contacted": ("last_contact", "CRM export", 0.9),
        "Last order date": ("last_purchase", "CRM export", 0.81),
        "Total spend 2025": ("monetary", "CRM export", 0.81),
        "First order date": ("first_purchase", "CRM export", 0.81),
        "Number of orders": ("frequency", "CRM export", 0.54),
    }
    r = run("recalc", path, "--as-of", AS_OF, "--rules", RULES, "--dry-run")
    assert r.exit_code == 0, r.output
    assert ("reads on 'CRM export': 'Last order date' -> last_purchase, 'First order date' -> first_purchase, "
            "'Last contacted' -> last_contact, 'Number of orders' -> frequency, 'Total spend 2025' -> monetary") in r.output
    r = run("recalc", path, "--as-of", AS_OF, "--rules", RULES)
    assert r.exit_code == 0, r.output
    g = _sheet(path, "CRM export")
    assert [row[g[0].index("Tier")] for row in g[1:]] == _want_tiers(evaluator, CRM_ROWS)
    assert "CX settings" in openpyxl.load_workbook(path).sheetnames  # kept, never replaced by recalc
    # a person's correction in the sheet wins over a second proposal
    wb = openpyxl.load_workbook(path)
    wb["CX settings"]["B6"] = "frequency"
    wb.save(path)
    r = run("map", path, "--rules", RULES, "--dry-run")
    assert "nothing to map" in r.output


def test_a_renamed_required_column_stops_its_decision_and_keeps_its_results(tmp_path, evaluator):
    head = ["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Last contact"]
    rows = [r[:4] + [r[5]] for r in CRM_ROWS]
    path = _book(tmp_path / "c.xlsx", head, rows, "Customers")
    assert run("recalc", path, "--as-of", AS_OF, "--rules", RULES).exit_code == 0
    wb = openpyxl.load_workbook(path)
    wb["Customers"]["D1"] = "Spend 12m (CNY)"
    wb.save(path)
    before = path.read_bytes()
    r = run("recalc", path, "--as-of", AS_OF, "--rules", RULES)
    assert r.exit_code == 1
    assert ("sheet 'Customers', table 'tier', row 1, column 'A': error: decision 'tier' did not run on this sheet: "
            "no column for Spend in the last 12 months (CNY) (a header such as 'Spend 12m' or '消费金额' or '年消费额'); "
            "the closest header is 'Spend 12m (CNY)' in column D; its earlier results were kept "
            "(map it: --map \"Spend 12m (CNY)=monetary\" on the command line, or write it in the 'CX settings' sheet "
            "('cxrules map' proposes the mapping))") in r.output
    assert "decision 'contact' did not run on this sheet: it reads decision 'tier', which could not run either" in r.output
    assert path.read_bytes() == before  # nothing else ran, so nothing was written
    r = run("recalc", path, "--as-of", AS_OF, "--rules", RULES, "--map", "Spend 12m (CNY)=monetary")
    assert r.exit_code == 0, r.output
    g = _sheet(path, "Customers")
    assert [row[g[0].index("Tier")] for row in g[1:]] == _want_tiers(evaluator, CRM_ROWS)


def test_a_map_to_an_unknown_name_is_an_error_with_a_hint(tmp_path):
    path = _book(tmp_path / "crm.xlsx", CRM, CRM_ROWS)
    r = run("recalc", path, "--as-of", AS_OF, "--rules", RULES, "--map", "Total spend 2025=monetry", "--dry-run")
    assert "'Total spend 2025' is mapped to 'monetry', which no rule reads or writes (did you mean 'monetary'?)" in r.output
    r = run("recalc", path, "--rules", RULES, "--map", "no equals sign")
    assert r.exit_code == 2 and "--map 'no equals sign' is not HEADER=name" in r.output


def test_chinese_headers_are_proposed_too():
    assert similarity("年消费金额", "消费金额") >= 0.9
    assert similarity("订单数", "购买次数") >= 0.9
    assert similarity("最近下单日期", "最近购买日期") >= 0.6
    assert similarity("客户名称", "消费金额") < 0.5


def test_settings_sheet_rows_and_the_option_parse():
    m, problems = read_settings([["Notes for the team"], ["Header", "Reads as", "Sheet"], ["Spend (CNY)", "monetary", None],
                                 [None, None, None], ["Orders", None, None], ["下单次数", "frequency", "客户"]])
    assert m.entries == [Entry("Spend (CNY)", "monetary"), Entry("下单次数", "frequency", "客户")]
    assert [(p.row, p.message) for p in problems] == [(5, "a mapping row needs both the header and the name it reads as")]
    cli_map = parse_option(["Spend (CNY)=frequency", "Cases!Prio=severity", "a=b=monetary"])
    assert cli_map.entries == [Entry("Spend (CNY)", "frequency"), Entry("Prio", "severity", "Cases"), Entry("a=b", "monetary")]
    merged = m.merged(cli_map)
    assert Entry("Spend (CNY)", "frequency") in merged.entries and Entry("Spend (CNY)", "monetary") not in merged.entries
    w = merged.wanted({"monetary": ["Spend 12m"], "frequency": ["Orders 12m"], "severity": ["Severity"]}, "Cases")
    assert w == {"monetary": ["a=b", "Spend 12m"], "frequency": ["Spend (CNY)", "Orders 12m"], "severity": ["Prio", "Severity"]}


@pytest.fixture
def excel_env(monkeypatch):
    xw = pytest.importorskip("xlwings", reason="the Excel layer needs xlwings 0.37.8, which needs Python 3.11+")
    from cxrules import excel

    monkeypatch.setenv("XLWINGS_LICENSE_KEY", "noncommercial")
    if "remote" not in [e.name for e in xw.engines]:
        from xlwings.pro import _xlremote

        xw.engines.add(xw.Engine(impl=_xlremote.engine))
    monkeypatch.setenv("CXRULES_RULES", str(RULES))
    monkeypatch.setattr(excel, "now_in", lambda tz: AS_OF_DT)
    yield xw, excel
    if hasattr(xw.Book, "_mock_caller"):
        del xw.Book._mock_caller


def test_the_recalculate_button_reads_the_settings_sheet(excel_env, evaluator, monkeypatch):
    import com

    xw, excel = excel_env
    com.com_engine(monkeypatch)
    settings = [["Header", "Reads as"], ["Last order date", "last_purchase"], ["Number of orders", "frequency"],
                ["Total spend 2025", "monetary"], ["First order date", "first_purchase"], ["Last contacted", "last_contact"]]
    rows = [[float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in r] for r in CRM_ROWS]
    book = com.book(com.sheet("CRM export", [CRM] + rows), com.sheet("CX settings", settings))
    report = excel.recalculate()
    assert [s.sheet for s in report.sheets] == ["CRM export"]
    assert report.sheets[0].reads["monetary"] == "Total spend 2025"
    cells = com.Replay(book).values("CRM export")
    c = next(col for (r, col), v in cells.items() if r == 1 and v == "Tier")
    assert [cells.get((r, c)) for r in range(2, len(CRM_ROWS) + 2)] == _want_tiers(evaluator, CRM_ROWS)


def test_the_summary_says_which_decisions_did_not_run(tmp_path):
    from cxrules.samples import write_sample

    path = write_sample(tmp_path / "s.xlsx", 2026, "en", n_customers=100, n_cases=40)
    wb = openpyxl.load_workbook(path)
    ws = wb["Customers"]
    col = next(c for c in ws[3] if c.value == "Spend 12m")  # under a title and a blank row
    col.value = "Spend 12m (CNY)"
    wb.save(path)
    r = run("recalc", path, "--as-of", AS_OF, "--rules", RULES)
    assert r.exit_code == 1
    summary = _sheet(path, "CX summary")
    at = next(i for i, row in enumerate(summary) if row[0] == "Did not run")
    assert summary[at + 1][:2] == ["Sheet", "Decision"] and summary[at + 1][5] == "Why"
    assert [(row[0], row[1]) for row in summary[at + 2:at + 4]] == [("Customers", "tier"), ("Customers", "contact")]
    assert summary[at + 2][5].startswith("decision 'tier' did not run on this sheet: no column for Spend in the last 12 months")
    issues = _sheet(path, "Issues")
    assert any(row[4] and row[4].startswith("decision 'tier' did not run") and row[5] for row in issues)


def test_a_chinese_crm_export_is_mapped_and_computed(tmp_path, evaluator):
    head = ["客户名称", "最近下单日期", "订单数", "年消费金额", "首次下单日期", "上次联系日期"]
    path = _book(tmp_path / "zh.xlsx", head, CRM_ROWS, "客户导出")
    r = run("map", path, "--rules", RULES)
    assert r.exit_code == 0, r.output
    got = {row[0]: row[1] for row in _sheet(path, "CX settings")[1:]}
    assert got["最近下单日期"] == "last_purchase" and got["订单数"] == "frequency" and got["年消费金额"] == "monetary"
    r = run("recalc", path, "--as-of", AS_OF, "--rules", RULES)
    assert r.exit_code == 0, r.output
    g = _sheet(path, "客户导出")
    assert "客户层级" in g[0]  # Chinese headers get Chinese result columns
    tiers = [row[g[0].index("客户层级")] for row in g[1:]]
    ev = Evaluator(rulesets.load_or_raise(RULES))
    want = _want_tiers(ev, CRM_ROWS)
    assert [ev.rs.aliases.written("tier", t, True) for t in want] == tiers
