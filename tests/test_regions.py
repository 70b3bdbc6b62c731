"""Several tables on one sheet: each is found and handled, or refused with a note naming
it; rows of one are never read as rows of another, and no column of one is written from
another."""
from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from openpyxl.worksheet.table import Table

from cxrules import rulesets
from cxrules.cli import cli
from cxrules.evaluation import Evaluator
from cxrules.recalc import recalc

RULES = Path(__file__).resolve().parents[1] / "rules"
AS_OF = dt.datetime(2026, 11, 23, 10, 0)
CUST = ["Customer", "Last purchase", "Orders 12m", "Spend 12m"]
C_ROWS = [["A", dt.datetime(2026, 11, 1), 14, 600000], ["B", dt.datetime(2025, 1, 1), 1, 10], ["C", dt.datetime(2026, 11, 15), 6, 8000]]
C_ROWS2 = [["D", dt.datetime(2026, 11, 20), 1, 100], ["E", dt.datetime(2026, 10, 30), 3, 3000]]
CASE = ["Case ID", "Opened at", "Severity", "Case type", "Status", "Tier"]
K_ROWS = [["K1", dt.datetime(2026, 11, 20, 9), "Urgent", "Complaint", "Open", "VIP"],
          ["K2", dt.datetime(2026, 11, 2, 9), "Minor", "Question", "Open", "Regular"],
          ["K3", dt.datetime(2026, 11, 22, 9), "Normal", "Complaint", "Resolved", "VIP"],
          ["K4", dt.datetime(2026, 11, 21, 9), "Complex", "Complaint", "Open", "VIP"]]


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(rulesets.load_or_raise(RULES))


def _put(ws, top: int, left: int, rows):
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            ws.cell(top + i, left + j, v)


def _grid(path: Path, sheet: str = "Data") -> list[list]:
    return [list(r) for r in openpyxl.load_workbook(path)[sheet].iter_rows(values_only=True)]


def _expect(evaluator, rows, names, decision, key):
    return evaluator.evaluate([dict(zip(names, r)) for r in rows], [decision], AS_OF).columns[key]


CUST_KEYS = ["customer", "last_purchase", "frequency", "monetary"]


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def test_stacked_ranges_are_each_computed_from_their_own_rows(tmp_path, evaluator):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    _put(ws, 1, 1, [CUST] + C_ROWS)
    _put(ws, 6, 1, [CUST] + C_ROWS2)  # a blank row 5 between
    path = tmp_path / "stacked.xlsx"
    wb.save(path)
    rep = recalc(path, evaluator, as_of=AS_OF)
    assert [(s.region, s.rows) for s in rep.sheets] == [("A1:D4", 3), ("A6:D8", 2)]
    assert not [p for p in rep.problems if p.severity == "error"]  # the second header is not a bad data row
    g = _grid(path)
    assert g[0][4] == "Tier" and g[5][4] == "Tier"
    # the percentile ('top 20 % by spend') is each range's own
    assert [r[4] for r in g[1:4]] == _expect(evaluator, C_ROWS, CUST_KEYS, "tier", "tier")
    assert [r[4] for r in g[6:8]] == _expect(evaluator, C_ROWS2, CUST_KEYS, "tier", "tier")
    assert g[4] == [None] * len(g[4])  # the blank row stays blank
    first = _parts(path)
    recalc(path, evaluator, as_of=AS_OF)
    assert _parts(path) == first


def test_side_by_side_ranges_with_room_each_get_their_results(tmp_path, evaluator):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    _put(ws, 1, 1, [CUST] + C_ROWS)  # A-D; E, F, G, H free
    _put(ws, 1, 9, [CASE] + K_ROWS)  # I-N
    path = tmp_path / "side.xlsx"
    wb.save(path)
    rep = recalc(path, evaluator, as_of=AS_OF)
    assert [(s.region, s.rows) for s in rep.sheets] == [("A1:D4", 3), ("I1:N5", 4)]
    g = _grid(path)
    assert g[0][4:7] == ["Tier", "Tier reason", None]  # G stays empty: the ranges stay apart
    assert [r[4] for r in g[1:4]] == _expect(evaluator, C_ROWS, CUST_KEYS, "tier", "tier")
    head = g[0]
    assert head[8:14] == CASE and "Respond by" in head[14:]
    want = _expect(evaluator, K_ROWS, ["case", "opened_at", "severity", "kind", "status", "tier"], "escalation", "respond_by")
    assert [r[head.index("Respond by")] for r in g[1:5]] == want
    assert g[4][4] is None  # customers have 3 rows: row 5 of the customer columns is not written
    first = _parts(path)
    rep2 = recalc(path, evaluator, as_of=AS_OF)
    assert [(s.region, s.rows) for s in rep2.sheets] == [("A1:D4", 3), ("I1:N5", 4)]
    assert _parts(path) == first


def test_a_range_without_room_is_refused_with_a_note_and_the_other_is_done(tmp_path, evaluator):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    _put(ws, 1, 1, [CUST] + C_ROWS)  # A-D, one free column E
    _put(ws, 1, 6, [CASE] + K_ROWS)  # F-K
    path = tmp_path / "tight.xlsx"
    wb.save(path)
    before = _grid(path)
    rep = recalc(path, evaluator, as_of=AS_OF)
    assert [s.region for s in rep.sheets] == ["F1:K5"]
    notes = [p for p in rep.problems if p.code == "no-room"]
    assert [(p.sheet, p.row, p.column, p.message) for p in notes] == [(
        "Data", 1, "A",
        "The range A1:D4 has no room for its results: it needs 2 new columns right of column D, "
        "and column F already holds other data; it was left as it is")]
    g = _grid(path)
    assert [r[:11] for r in g[:5]] == [r[:11] for r in before[:5]]  # customers and the case columns untouched
    assert "Respond by" in g[0][11:]


def test_two_excel_tables_on_a_sheet(tmp_path, evaluator):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    _put(ws, 1, 1, [CUST] + C_ROWS)
    _put(ws, 7, 1, [CUST] + C_ROWS2)
    ws.add_table(Table(displayName="North", ref="A1:D4"))
    ws.add_table(Table(displayName="South", ref="A7:D9"))
    path = tmp_path / "tables.xlsx"
    wb.save(path)
    rep = recalc(path, evaluator, as_of=AS_OF)
    assert [(s.region, s.rows) for s in rep.sheets] == [("A1:D4", 3), ("A7:D9", 2)]
    book = openpyxl.load_workbook(path)
    tables = {t.displayName: t.ref for t in book["Data"].tables.values()}
    assert tables == {"North": "A1:F4", "South": "A7:F9"}  # each table took its own new columns
    g = _grid(path)
    assert [r[4] for r in g[1:4]] == _expect(evaluator, C_ROWS, CUST_KEYS, "tier", "tier")
    assert [r[4] for r in g[7:9]] == _expect(evaluator, C_ROWS2, CUST_KEYS, "tier", "tier")
    assert g[4][4] is None and g[5][4] is None


def test_a_header_below_the_rows_searched_is_named_and_the_option_reads_it(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    for r in range(1, 36):
        ws.cell(r, 1, f"note {r}")
    _put(ws, 40, 1, [CUST] + C_ROWS)
    path = tmp_path / "low.xlsx"
    wb.save(path)
    before = path.read_bytes()
    r = CliRunner().invoke(cli, ["recalc", str(path), "--as-of", "2026-11-23 10:00", "--rules", str(RULES)])
    assert r.exit_code == 0, r.output
    assert ("sheet 'Data', row 40, column 'A': warning: the headers in columns A-D seem to be on row 40, below the first 30 rows "
            "where cxrules looks for them; that range was not read") in r.output
    assert "--header-row 40" in r.output
    assert path.read_bytes() == before
    r = CliRunner().invoke(cli, ["recalc", str(path), "--as-of", "2026-11-23 10:00", "--rules", str(RULES), "--header-row", "40"])
    assert r.exit_code == 0, r.output
    g = _grid(path)
    assert g[39][4] == "Tier" and g[40][4] == "VIP"
