"""`cxrules recalc` as a user runs it: outputs in the sheet, problems, exit codes, safety."""
import datetime as dt
import json
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from cxrules import recalc as recalc_mod
from cxrules import rulesets
from cxrules.cli import cli
from cxrules.evaluation import Evaluator
from cxrules.samples import write_sample

AS_OF = "2026-11-23 10:00"
RULES = Path(__file__).resolve().parents[1] / "rules"


def run(*args):
    return CliRunner(mix_stderr=False).invoke(cli, [str(a) for a in args]) if _has_mix() else CliRunner().invoke(cli, [str(a) for a in args])


def _has_mix():
    import inspect

    return "mix_stderr" in inspect.signature(CliRunner.__init__).parameters


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("wb")
    return write_sample(d / "small.xlsx", 2026, "en", n_customers=120, n_cases=50)


@pytest.fixture
def book(small, tmp_path):
    p = tmp_path / "book.xlsx"
    p.write_bytes(small.read_bytes())
    return p


def simple_book(path, rows, header=("Customer", "Last purchase", "Orders 12m", "Spend 12m", "Last contact"), title=None):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    if title:
        ws.append([title])
        ws.append([])
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    wb.save(path)
    return path


def values(path, sheet):
    wb = openpyxl.load_workbook(path)
    return [list(r) for r in wb[sheet].iter_rows(values_only=True)]


def test_recalc_writes_typed_outputs_in_place(tmp_path):
    p = simple_book(tmp_path / "c.xlsx", [
        ["A", dt.date(2026, 11, 20), 6, 8000, dt.date(2026, 11, 1)],
        ["B", dt.date(2026, 3, 1), 1, 50, dt.date(2026, 11, 20)],
    ], title="Customers - November")
    r = run("recalc", p, "--as-of", AS_OF, "--rules", RULES)
    assert r.exit_code == 0, r.output
    rows = values(p, "Customers")
    assert rows[0][0] == "Customers - November"
    head = rows[2]
    assert head[:5] == ["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Last contact"]
    assert head[5:] == ["Tier", "Tier reason", "Contact every", "Channel", "Contact purpose", "Contact owner", "Next contact",
                        "Days overdue"]
    a, b = rows[3], rows[4]
    assert a[5:12] == ["High value", "RFM high value", "7d", "Phone", "Weekly reminder to the account owner", "Account manager",
                       dt.datetime(2026, 11, 8)]
    assert a[12] == 15  # next contact 2026-11-08 passed 15 days before the 23rd
    assert b[5] == "Churn risk" and b[11] == dt.datetime(2026, 11, 27) and b[12] is None
    wb = openpyxl.load_workbook(p)
    assert wb["Customers"]["L4"].number_format == "yyyy-mm-dd"
    assert wb.sheetnames == ["Customers", "CX summary", "Contact plan", "Issues"]
    assert "Customers" in r.output and "tier, contact" in r.output


def test_existing_output_columns_are_reused_and_rerun_is_stable(book, tmp_path):
    r1 = run("recalc", book, "--as-of", AS_OF, "--rules", RULES, "--silent")
    assert r1.exit_code == 0 and r1.output == ""
    first = values(book, "Customers")
    r2 = run("recalc", book, "--as-of", AS_OF, "--rules", RULES, "--json")
    assert r2.exit_code == 0
    rep = json.loads(r2.output)["reports"][0]
    cust = next(s for s in rep["sheets"] if s["sheet"] == "Customers")
    assert cust["columns_added"] == [] and "Tier" in cust["columns_written"]
    assert values(book, "Customers") == first  # same inputs, same as-of: same workbook contents
    assert openpyxl.load_workbook(book).sheetnames.count("CX summary") == 1


def test_untouched_parts_are_byte_identical(book):
    before = _parts(book)
    r = run("recalc", book, "--as-of", AS_OF, "--rules", RULES, "-s")
    assert r.exit_code == 0
    after = _parts(book)
    owned = {"xl/workbook.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml", "xl/styles.xml",
             "xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml", "xl/worksheets/sheet4.xml",  # 4: the measures' alerts
             "docProps/app.xml",
             "_rels/.rels"}  # it gains the stamp's custom properties
    for name, data in before.items():
        if name in owned:
            continue
        assert after.get(name) == data, name
    # the Notes sheet (its chart, comments, formulas) is untouched
    assert after["xl/worksheets/sheet3.xml"] == before["xl/worksheets/sheet3.xml"]


def _parts(p):
    with zipfile.ZipFile(p) as z:
        return {n: z.read(n) for n in z.namelist()}


def test_failure_mid_write_leaves_the_original_intact(book, monkeypatch):
    original = book.read_bytes()
    import cxrules.xlsx_write as xw_mod

    real = xw_mod.SheetRewriter.run

    def boom(self, chunks, write):
        write(b"<partial")
        raise OSError("disk full")

    monkeypatch.setattr(xw_mod.SheetRewriter, "run", boom)
    r = run("recalc", book, "--as-of", AS_OF, "--rules", RULES)
    assert r.exit_code == 1
    assert book.read_bytes() == original
    assert sorted(x.name for x in book.parent.iterdir()) == ["book.xlsx"]  # no temp file left behind
    monkeypatch.setattr(xw_mod.SheetRewriter, "run", real)


def test_open_in_excel_is_refused(book):
    lock = book.parent / ("~$" + book.name)
    lock.write_bytes(b"\x00" * 165)
    original = book.read_bytes()
    r = run("recalc", book, "--as-of", AS_OF, "--rules", RULES)
    assert r.exit_code == 1
    assert "open in Excel" in (r.output + (r.stderr if hasattr(r, "stderr") else ""))
    assert book.read_bytes() == original


def test_xls_and_missing_files_get_clear_errors(tmp_path):
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
    r = run("recalc", xls, tmp_path / "nope.xlsx", "--rules", RULES)
    assert r.exit_code == 1
    out = r.output + (r.stderr if hasattr(r, "stderr") else "")
    assert ".xlsx" in out and "Traceback" not in out
    assert "nope.xlsx" in out


def test_dry_run_writes_nothing(book):
    original = book.read_bytes()
    r = run("recalc", book, "--as-of", AS_OF, "--rules", RULES, "--dry-run")
    assert r.exit_code == 0
    assert "would write" in r.output
    assert book.read_bytes() == original


def test_output_option(book, tmp_path):
    out = tmp_path / "out.xlsx"
    original = book.read_bytes()
    r = run("recalc", book, "--as-of", AS_OF, "--rules", RULES, "-o", out, "-s")
    assert r.exit_code == 0
    assert book.read_bytes() == original and out.exists()
    r = run("recalc", book, book, "-o", tmp_path / "x.xlsx", "--rules", RULES)
    assert r.exit_code == 2 and "give a folder" in r.output


def test_bad_cells_are_row_problems_and_other_rows_compute(tmp_path):
    p = simple_book(tmp_path / "bad.xlsx", [
        ["good", dt.date(2026, 11, 20), 6, 8000, dt.date(2026, 11, 1)],
        ["text in number", dt.date(2026, 11, 20), "many", 8000, dt.date(2026, 11, 1)],
        ["number as text", dt.date(2026, 11, 20), "6", "8,000", dt.date(2026, 11, 1)],
        ["date as text", "2026/11/20", 6, 8000, "2026年11月1日"],
        ["day first", "20/11/2026", 6, 8000, dt.date(2026, 11, 1)],
        ["error", dt.date(2026, 11, 20), 6, "#N/A", dt.date(2026, 11, 1)],
        ["blank", None, None, None, None],
    ])
    r = run("recalc", p, "--as-of", AS_OF, "--rules", RULES, "--json")
    assert r.exit_code == 0
    probs = {(x["row"], x["column"]): x for x in json.loads(r.output)["reports"][0]["problems"]}
    assert probs[(3, "Orders 12m")]["message"] == "'many' is not a number" and probs[(3, "Orders 12m")]["severity"] == "error"
    assert probs[(4, "Spend 12m")]["message"] == "number stored as text ('8,000'); read as 8000"
    assert probs[(5, "Last contact")]["severity"] == "warning"
    assert probs[(6, "Last purchase")]["message"] == "'20/11/2026' is not a date; write it like 2026-11-23"
    assert probs[(7, "Spend 12m")]["message"] == "the cell holds the Excel error #N/A"
    rows = values(p, "Customers")
    tiers = [row[5] for row in rows[1:]]
    assert tiers[:6] == ["High value", None, "High value", "High value", None, None]
    issues = values(p, "Issues")
    assert issues[0] == ["Sheet", "Row", "Column", "Severity", "Problem", "What to do"]
    assert ["Customers", 3, "Orders 12m", "error", "'many' is not a number",
            "type a number (1200, 1,200.50 or ¥1200), or clear the cell if it is not known"] in issues
    r = run("recalc", p, "--as-of", AS_OF, "--rules", RULES, "--dayfirst", "--json")
    probs = {(x["row"], x["column"]): x for x in json.loads(r.output)["reports"][0]["problems"]}
    assert probs[(6, "Last purchase")]["severity"] == "warning"
    assert values(p, "Customers")[5][5] == "High value"


def test_strict_exits_1_on_row_problems(tmp_path):
    p = simple_book(tmp_path / "bad.xlsx", [["x", dt.date(2026, 11, 20), "many", 8000, dt.date(2026, 11, 1)]])
    assert run("recalc", p, "--as-of", AS_OF, "--rules", RULES, "-s").exit_code == 0
    assert run("recalc", p, "--as-of", AS_OF, "--rules", RULES, "-s", "--strict").exit_code == 1


def test_a_workbook_without_rule_columns_is_left_alone(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(["Product", "Price"])
    wb.active.append(["pen", 3])
    p = tmp_path / "other.xlsx"
    wb.save(p)
    original = p.read_bytes()
    r = run("recalc", p, "--rules", RULES)
    assert r.exit_code == 0
    assert "no sheet has the columns the rules read; nothing was changed" in r.output
    assert p.read_bytes() == original


def test_duplicated_and_merged_headers_are_reported(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Spend 12m", "Last contact"])
    ws.append(["A", dt.date(2026, 11, 20), 6, 8000, 1, dt.date(2026, 11, 1)])
    p = tmp_path / "dup.xlsx"
    wb.save(p)
    r = run("recalc", p, "--as-of", AS_OF, "--rules", RULES, "--json")
    probs = json.loads(r.output)["reports"][0]["problems"]
    assert any("is a header of more than one column (D and E); column D is used" in x["message"] for x in probs)
    assert values(p, "Customers")[1][6] == "High value"


def test_plan_is_the_same_code_path_for_any_reader(small):
    """recalc.plan takes SheetData from anywhere (the Excel layer feeds it from xlwings)."""
    from cxrules.workbook import open_workbook

    ev = Evaluator(rulesets.load_or_raise(RULES))
    with open_workbook(small) as wb:
        sheets = [wb.read_sheet(s.name) for s in wb.worksheets]
    report = recalc_mod.RecalcReport(str(small), str(small), dt.datetime(2026, 11, 23, 10))
    edits, new = recalc_mod.plan(sheets, ev, report.as_of, report)
    assert [e.sheet for e in edits] == ["Customers", "Cases", "Measures"]
    assert [n.name for n in new] == ["CX summary", "Contact plan", "Issues"]
    levels = next(e for e in edits if e.sheet == "Cases").highlights
    assert {h.equals for h in levels} >= {1, 2, 3}


def test_formula_without_a_cached_value_is_a_row_problem(tmp_path):
    p = simple_book(tmp_path / "f.xlsx", [
        ["A", dt.date(2026, 11, 20), 6, "=2000*4", dt.date(2026, 11, 1)],  # openpyxl saves no cached value
        ["B", dt.date(2026, 11, 20), 6, 8000, dt.date(2026, 11, 1)],
    ])
    r = run("recalc", p, "--as-of", AS_OF, "--rules", RULES, "--json")
    assert r.exit_code == 0
    probs = [x for x in json.loads(r.output)["reports"][0]["problems"] if x["row"] == 2]
    assert [(x["column"], x["message"], x["severity"]) for x in probs] == [
        ("Spend 12m", "the formula in D2 has no calculated value", "error")]
    assert probs[0]["suggestion"] == "open the workbook in Excel, let it calculate, and save it"
    rows = values(p, "Customers")
    assert rows[1][3] == "=2000*4"  # the formula itself is kept
    assert rows[1][5] is None and rows[2][5] == "High value"


def test_a_damaged_later_sheet_is_refused_with_its_name_and_nothing_is_written(book):
    """A later sheet's damage is said, naming it, after the first sheet was computed; the
    workbook is left as it was."""
    from cxrules.xlsx_read import open_workbook

    with open_workbook(book) as wb:
        assert [s.name for s in wb.worksheets][:2] == ["Customers", "Cases"]
        part = wb.sheet("Cases").part
    with zipfile.ZipFile(book) as z:
        parts = {i.filename: z.read(i.filename) for i in z.infolist()}
    parts[part] = parts[part].replace(b"</sheetData>", b'<row r="2000000"><c r="A2000000"><v>1</v></c></row></sheetData>')
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    before = book.read_bytes()
    r = run("recalc", book, "--rules", RULES, "--as-of", AS_OF)
    assert r.exit_code != 0
    out = r.output + (r.stderr if _has_mix() else "")
    assert "sheet 'Cases'" in out and "outside Excel's grid" in out and "Traceback" not in out
    assert book.read_bytes() == before
