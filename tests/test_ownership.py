"""cxrules writes only the columns it owns: a person's data and formulas are never replaced."""
from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from books import make_book, sheet_values

from cxrules import rulesets
from cxrules.cli import cli
from cxrules.evaluation import Evaluator
from cxrules.recalc import recalc
from cxrules.xlsx_read import OWNED_NAME, open_workbook

RULES = Path(__file__).resolve().parents[1] / "rules"
AS_OF = dt.datetime(2026, 11, 23, 10, 0)
CASES = ["Case ID", "Opened at", "Severity", "Case type", "Status", "Tier", "Last purchase", "Orders 12m", "Spend 12m"]


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(rulesets.load_or_raise(RULES))


def _book(path: Path, header, rows, title="Cases") -> Path:
    return make_book(path, header, rows, title)


_sheet = sheet_values


def _col(rows, name):
    j = rows[0].index(name)
    return [r[j] for r in rows[1:]]


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def test_a_crm_tier_on_a_cases_sheet_is_kept_and_read_by_the_case_decisions(tmp_path, evaluator):
    """The cases sheet carries spend columns too, so 'tier' could run there; the CRM's
    Tier column is data cxrules did not write: it stays, and the deadlines use it."""
    rows = [
        ["C1", dt.datetime(2026, 11, 20, 9), "Normal", "Complaint", "Open", "VIP", dt.datetime(2026, 5, 1), 1, 100],
        ["C2", dt.datetime(2026, 11, 20, 9), "Urgent", "Complaint", "Open", "Regular", dt.datetime(2026, 11, 1), 20, 900000],
    ]
    path = _book(tmp_path / "cases.xlsx", CASES, rows)
    rep = recalc(path, evaluator, as_of=AS_OF)
    got = _sheet(path, "Cases")
    assert _col(got, "Tier") == ["VIP", "Regular"]  # the rules would say Churn risk / VIP
    assert "Tier reason" not in got[0]
    kept = [p for p in rep.problems if p.code == "column-kept"]
    assert [(p.sheet, p.row, p.column, p.message) for p in kept] == [(
        "Cases", 1, "F",
        "column F ('Tier') holds data cxrules did not write, so decision 'tier' did not run on this sheet "
        "and the column was kept (the decisions that use it read it as it is)")]
    assert kept[0].suggestion == "to let cxrules fill it, clear the column or rename its header; to keep your values, nothing to do"
    # the deadlines come from the sheet's tiers, as the rules give them for those tiers
    want = evaluator.evaluate([{"severity": r[2], "kind": r[3], "status": r[4], "tier": r[5], "opened_at": r[1]} for r in rows],
                              ["escalation"], AS_OF)
    assert _col(got, "Respond by") == want.columns["respond_by"]
    assert _col(got, "Owner") == want.columns["owner"] and want.columns["owner"][0] == "Management"
    assert "tier" not in rep.sheets[0].decisions and "escalation" in rep.sheets[0].decisions


def test_the_cli_says_what_was_kept(tmp_path):
    path = _book(tmp_path / "cases.xlsx", CASES,
                 [["C1", dt.datetime(2026, 11, 20, 9), "Normal", "Complaint", "Open", "VIP", dt.datetime(2026, 5, 1), 1, 100]])
    r = CliRunner().invoke(cli, ["recalc", str(path), "--as-of", "2026-11-23 10:00", "--rules", str(RULES)])
    assert r.exit_code == 0, r.output
    assert "column F ('Tier') holds data cxrules did not write" in r.output


def test_columns_cxrules_wrote_are_recorded_and_rewritten_next_time(tmp_path, evaluator):
    head = ["Customer", "Last purchase", "Orders 12m", "Spend 12m"]
    path = _book(tmp_path / "c.xlsx", head, [["A", dt.datetime(2026, 11, 1), 14, 600000], ["B", dt.datetime(2025, 1, 1), 1, 10]], "Customers")
    recalc(path, evaluator, as_of=AS_OF)
    with open_workbook(path) as wb:
        owned = wb.owned_cells("Customers")
    got = _sheet(path, "Customers")
    assert owned == {(1, got[0].index("Tier")), (1, got[0].index("Tier reason"))}
    assert b'name="%s" localSheetId="0" hidden="1">Customers!$E$1,Customers!$F$1<' % OWNED_NAME.encode() in _parts(path)["xl/workbook.xml"]
    # a person types over a result: the next run puts the rules' answer back
    wb = openpyxl.load_workbook(path)
    wb["Customers"]["E2"] = "typed"
    wb.save(path)
    rep = recalc(path, evaluator, as_of=AS_OF)
    assert _col(_sheet(path, "Customers"), "Tier") == ["VIP", "Churn risk"]
    assert not [p for p in rep.problems if p.code == "column-kept"]


def test_an_empty_output_column_a_person_made_is_filled_and_taken(tmp_path, evaluator):
    head = ["Customer", "Tier", "Last purchase", "Orders 12m", "Spend 12m"]
    path = _book(tmp_path / "c.xlsx", head, [["A", None, dt.datetime(2026, 11, 1), 14, 600000]], "Customers")
    recalc(path, evaluator, as_of=AS_OF)
    assert _col(_sheet(path, "Customers"), "Tier") == ["VIP"]
    with open_workbook(path) as wb:
        assert (1, 1) in wb.owned_cells("Customers")


def test_a_formula_in_an_owned_column_is_kept(tmp_path, evaluator):
    head = ["Customer", "Last purchase", "Orders 12m", "Spend 12m"]
    path = _book(tmp_path / "c.xlsx", head, [["A", dt.datetime(2026, 11, 1), 14, 600000], ["B", dt.datetime(2025, 1, 1), 1, 10]], "Customers")
    recalc(path, evaluator, as_of=AS_OF)
    wb = openpyxl.load_workbook(path)
    wb["Customers"]["E3"] = '=IF(D3>5,"Mine","Other")'
    wb.save(path)
    rep = recalc(path, evaluator, as_of=AS_OF)
    ws = openpyxl.load_workbook(path)["Customers"]
    assert ws["E3"].value == '=IF(D3>5,"Mine","Other")' and ws["E2"].value == "VIP"
    assert [(p.code, p.row, p.column) for p in rep.problems if p.code == "formula-kept"] == [("formula-kept", 3, "E")]


def test_a_workbook_from_before_ownership_was_recorded_keeps_working(tmp_path, evaluator):
    """Earlier runs left the _cxrules_made marker but no record of columns: the columns
    under output headers are taken as cxrules' own, as they were."""
    head = ["Customer", "Last purchase", "Orders 12m", "Spend 12m"]
    path = _book(tmp_path / "c.xlsx", head, [["A", dt.datetime(2026, 11, 1), 14, 600000]], "Customers")
    recalc(path, evaluator, as_of=AS_OF)
    parts = _parts(path)
    wbx = parts["xl/workbook.xml"]
    start = wbx.index(b'<definedName name="%s"' % OWNED_NAME.encode())
    end = wbx.index(b"</definedName>", start) + len(b"</definedName>")
    with zipfile.ZipFile(path, "w") as z:
        for n, data in parts.items():
            z.writestr(n, wbx[:start] + wbx[end:] if n == "xl/workbook.xml" else data)
    wb = openpyxl.load_workbook(path)
    wb["Customers"]["E2"] = "old value"
    wb.save(path)
    with open_workbook(path) as book:
        assert book.owned_cells("Customers") is None
    rep = recalc(path, evaluator, as_of=AS_OF)
    assert _col(_sheet(path, "Customers"), "Tier") == ["VIP"]
    assert not [p for p in rep.problems if p.code == "column-kept"]
    with open_workbook(path) as book:
        assert book.owned_cells("Customers") == {(1, 4), (1, 5)}


def test_a_persons_days_overdue_column_is_kept(tmp_path, evaluator):
    head = ["Case ID", "Opened at", "Severity", "Case type", "Status", "Tier", "Days overdue"]
    path = _book(tmp_path / "c.xlsx", head, [["C1", dt.datetime(2026, 11, 1, 9), "Urgent", "Complaint", "Open", "VIP", "see note"]])
    rep = recalc(path, evaluator, as_of=AS_OF)
    assert _col(_sheet(path, "Cases"), "Days overdue") == ["see note"]
    assert [p.message for p in rep.problems if p.code == "column-kept"] == [
        "column G ('Days overdue') holds data cxrules did not write, so it was kept"]


def test_second_run_with_the_same_as_of_is_byte_identical(tmp_path, evaluator):
    path = _book(tmp_path / "cases.xlsx", CASES,
                 [["C1", dt.datetime(2026, 11, 20, 9), "Normal", "Complaint", "Open", "VIP", dt.datetime(2026, 5, 1), 1, 100]])
    recalc(path, evaluator, as_of=AS_OF)
    first = _parts(path)
    recalc(path, evaluator, as_of=AS_OF)
    assert _parts(path) == first
