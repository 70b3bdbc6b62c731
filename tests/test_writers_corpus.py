"""Workbooks written by ten tools, recalculated as a user would: what openpyxl and LibreOffice
then show, which parts of the file changed, and whether a rerun changes anything.

The corpus is made by tests/writers.py when the module runs. Expected results come from the
library's Evaluator on the same rows the writers were given, so they follow the bundled
rules; a few hand-checked values guard against both sides being wrong together.
"""
from __future__ import annotations

import datetime as dt
import json
import posixpath
import re
import shutil
import warnings
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.utils.datetime import from_excel
from click.testing import CliRunner

import writers
from cxrules import rulesets
from cxrules.cli import cli
from cxrules.evaluation import Evaluator
from cxrules.values import Duration, display

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
AS_OF = writers.AS_OF
AS_OF_TEXT = AS_OF.strftime("%Y-%m-%d %H:%M")

# the test's own reading of its input: header -> the name the rules give that column
CUSTOMER_INPUTS = {"First purchase": "first_purchase", "Last purchase": "last_purchase", "Orders 12m": "frequency",
                   "Spend 12m": "monetary", "Previous tier": "previous_tier", "Months of rising spend": "rising_months",
                   "Last contact": "last_contact"}
CASE_INPUTS = {"Opened at": "opened_at", "Severity": "severity", "Tier": "tier", "Case type": "kind", "Status": "status",
               "Prior complaints": "prior_complaints", "Failure type": "failure", "NPS score": "score"}
CUSTOMER_DECISIONS = ["tier", "contact"]
CASE_DECISIONS = ["escalation", "escalation_level", "compensation_points", "compensation", "remedy", "nps"]
DAYS_OVERDUE = "Days overdue"
OWN_SHEETS = {"CX summary", "Contact plan", "Issues"}

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
      "pr": "http://schemas.openxmlformats.org/package/2006/relationships",
      "ct": "http://schemas.openxmlformats.org/package/2006/content-types"}
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
# element order Excel insists on (ECMA-376 CT_Workbook, CT_Worksheet); out of order or twice = "repair"
WORKBOOK_ORDER = ["fileVersion", "fileSharing", "workbookPr", "workbookProtection", "bookViews", "sheets", "functionGroups",
                  "externalReferences", "definedNames", "calcPr", "oleSize", "customWorkbookViews", "pivotCaches", "smartTagPr",
                  "smartTagTypes", "webPublishing", "fileRecoveryPr", "webPublishObjects", "extLst"]
WORKSHEET_ORDER = ["sheetPr", "dimension", "sheetViews", "sheetFormatPr", "cols", "sheetData", "sheetCalcPr", "sheetProtection",
                   "protectedRanges", "scenarios", "autoFilter", "sortState", "dataConsolidate", "customSheetViews", "mergeCells",
                   "phoneticPr", "conditionalFormatting", "dataValidations", "hyperlinks", "printOptions", "pageMargins", "pageSetup",
                   "headerFooter", "rowBreaks", "colBreaks", "customProperties", "cellWatches", "ignoredErrors", "smartTags", "drawing",
                   "legacyDrawing", "legacyDrawingHF", "drawingHF", "picture", "oleObjects", "controls", "webPublishItems", "tableParts",
                   "extLst"]
REPEATABLE = {"conditionalFormatting"}


# ------------------------------------------------------------------ the corpus, recalculated once
@dataclass
class Run:
    writer: str
    source: Path | None = None  # as the writer wrote it
    first: Path | None = None  # after one recalc (in place, on a copy)
    second: Path | None = None  # the first result recalculated again
    setup_error: str | None = None
    cli: list[tuple[int, str]] = field(default_factory=list)  # (exit code, output) per run
    reports: list[dict] = field(default_factory=list)


def _recalc(path: Path) -> tuple[int, str, dict | None]:
    r = CliRunner().invoke(cli, ["recalc", str(path), "--as-of", AS_OF_TEXT, "--rules", str(RULES), "--json"])
    out = r.output  # stdout and stderr as a terminal shows them
    report = None
    try:
        report = json.loads(r.stdout[r.stdout.index("{"):])
    except ValueError:
        pass
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        out += f"\n{type(r.exception).__name__}: {r.exception}"
    return r.exit_code, out, report


@pytest.fixture(scope="module")
def lo_profile(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lo-profile")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, lo_profile) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("corpus")
    runs: dict[str, Run] = {}
    for name, make in writers.WRITERS.items():
        run = runs[name] = Run(name)
        folder = base / name
        folder.mkdir()
        try:
            run.source = make(folder, lo_profile) if make is writers.libreoffice_writer else make(folder)
        except Exception as e:  # a writer that cannot run fails its own tests, not the others'
            run.setup_error = f"{type(e).__name__}: {e}"
            continue
        (folder / "first").mkdir()
        (folder / "second").mkdir()
        run.first = folder / "first" / run.source.name
        run.second = folder / "second" / run.source.name
        shutil.copy(run.source, run.first)
        for path in (run.first, run.second):
            code, out, report = _recalc(path)
            run.cli.append((code, out))
            run.reports.append(report or {})
            if path is run.first:
                shutil.copy(run.first, run.second)
    return runs


@pytest.fixture(scope="module")
def libreoffice_view(corpus, lo_profile, tmp_path_factory) -> dict[str, tuple[Path | None, Path | None]]:
    """Each source and its first-run result as LibreOffice loads them (saved back as .xlsx),
    all in one soffice run: writer -> (source as seen, result as seen)."""
    stage = tmp_path_factory.mktemp("lo-in")
    pairs = {}
    for n, r in corpus.items():
        if r.first is not None and r.first.exists():
            pairs[n] = (stage / f"source-{n}.xlsx", stage / f"result-{n}.xlsx")
            shutil.copy(r.source, pairs[n][0])
            shutil.copy(r.first, pairs[n][1])
    if not pairs:
        return {}
    got = writers.soffice_convert([p for pair in pairs.values() for p in pair], tmp_path_factory.mktemp("lo-out"),
                                  "xlsx:Calc MS Excel 2007 XML", lo_profile)
    return {n: (got[a], got[b]) for n, (a, b) in pairs.items()}


def _run(corpus, writer) -> Run:
    run = corpus[writer]
    if run.setup_error:
        pytest.fail(f"the {writer} writer could not make its workbook: {run.setup_error}")
    return run


def _recalculated(corpus, writer) -> Run:
    run = _run(corpus, writer)
    code, out = run.cli[0]
    if code != 0:
        pytest.fail(f"cxrules recalc failed on the {writer} workbook (exit {code}):\n{out}")
    return run


WRITER_NAMES = list(writers.WRITERS)


# ------------------------------------------------------------------ expectations
@dataclass
class Expected:
    inputs: dict[str, str]
    decisions: list[str]
    data: list[list]
    headers: list[str]
    columns: dict[str, list] = field(default_factory=dict)  # output header -> value per data row
    problems: list[tuple[int, str]] = field(default_factory=list)  # (data row index, message)


@pytest.fixture(scope="module")
def expected() -> dict[str, Expected]:
    rs = rulesets.load_or_raise(RULES)
    ev = Evaluator(rs)
    out = {}
    for kind, inputs, decisions, data, headers in (
        ("customers", CUSTOMER_INPUTS, CUSTOMER_DECISIONS, writers.CUSTOMERS, writers.CUSTOMER_HEADERS),
        ("cases", CASE_INPUTS, CASE_DECISIONS, writers.CASES, writers.CASE_HEADERS),
    ):
        rows = [{inputs[h]: v for h, v in zip(headers, r) if h in inputs} for r in data]
        res = ev.evaluate(rows, decisions, AS_OF)
        e = out[kind] = Expected(inputs, decisions, data, headers)
        dues = []
        for t in (rs.tables[d] for d in decisions):
            for o in list(t.outputs) + list(t.due):
                e.columns[_english(o.columns)] = [_norm(v) for v in res.columns[o.name]]
            dues += [d.name for d in t.due]
        if dues:
            e.columns[DAYS_OVERDUE] = [_days_overdue(res, dues, i) for i in range(len(data))]
        e.problems = [(p.index, p.message) for p in res.problems]
    return out


def _english(aliases: list[str]) -> str:
    return next(a for a in aliases if a.isascii())


def _days_overdue(res, dues: list[str], i: int):
    """How late the row's most overdue deadline is, in days (None: nothing is late)."""
    late = []
    for name in dues:
        v = res.columns[name][i]
        if v is None or i in res.settled.get(name, ()):
            continue
        days = (AS_OF - v).total_seconds() / 86400 if isinstance(v, dt.datetime) else (AS_OF.date() - v).days
        if days > 0:
            late.append(days)
    return max(late) if late else None


def _norm(v):
    """A value as a person reads it off the sheet, whatever type the reader gives."""
    if v is None or v == "":
        return None
    if isinstance(v, Duration):
        return display(v)
    if isinstance(v, list):
        return ", ".join(display(x) for x in v) or None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dt.datetime):
        return (v + dt.timedelta(microseconds=500_000)).replace(microsecond=0)  # to the second
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day)
    return v


def _same(got, want) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return abs(got - want) <= 0.05 + abs(want) * 1e-12  # days overdue are shown to a tenth
    return got == want


# ------------------------------------------------------------------ reading a sheet by its headers
@dataclass
class Table:
    sheet: str
    header_row: int
    cols: dict[str, int]  # header -> 1-based column
    rows: dict[str, int]  # ID -> Excel row


def _tables(wb, kinds=("customers", "cases")) -> dict[str, Table]:
    """Where the customers and the cases are: the sheet, header row and row of each ID."""
    out = {}
    for kind, marker, key, data in (("customers", "Spend 12m", "Customer ID", writers.CUSTOMERS), ("cases", "Severity", "Case ID", writers.CASES)):
        if kind not in kinds:
            continue
        ids = {r[0] for r in data}
        for ws in wb.worksheets:
            head = next((r for r, row in enumerate(ws.iter_rows(max_row=40, values_only=True), start=1) if marker in row), None)
            if head is None:
                continue
            cols: dict[str, int] = {}
            for c in ws[head]:
                if isinstance(c.value, str) and c.value.strip():
                    cols.setdefault(c.value.strip(), c.column)
            rows = {}
            for r in range(head + 1, ws.max_row + 1):
                v = ws.cell(r, cols[key]).value
                if v in ids:
                    rows[v] = r
            out[kind] = Table(ws.title, head, cols, rows)
            break
    return out


def _load(path: Path, data_only: bool = False):
    """openpyxl's view of a file, and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wb = openpyxl.load_workbook(path, data_only=data_only)
    return wb, sorted({str(w.message) for w in caught})


def _check_results(wb, expected: dict[str, Expected], who: str) -> list[str]:
    """Every output cell against the expectation; returns the differences, in words."""
    bad = []
    tables = _tables(wb)
    for kind, e in expected.items():
        t = tables.get(kind)
        if t is None:
            bad.append(f"{who}: the {kind} sheet is gone")
            continue
        ws = wb[t.sheet]
        for header, values in e.columns.items():
            col = t.cols.get(header)
            if col is None:
                bad.append(f"{who}: sheet {t.sheet!r} has no column {header!r}")
                continue
            for row, want in zip(e.data, values):
                r = t.rows.get(row[0])
                if r is None:
                    bad.append(f"{who}: sheet {t.sheet!r} lost the row of {row[0]}")
                    break
                got = _norm(ws.cell(r, col).value)
                if not _same(got, want):
                    bad.append(f"{who}: {t.sheet}!{get_column_letter(col)}{r} ({header} of {row[0]}) is {got!r}, expected {want!r}")
    return bad


# ------------------------------------------------------------------ the corpus itself
@pytest.mark.parametrize("writer", WRITER_NAMES)
def test_each_writer_wrote_the_rows_it_was_given(corpus, writer):
    """The premise of every other test: each tool's file holds the test's data."""
    run = _run(corpus, writer)
    wb, _ = _load(run.source)
    tables = _tables(wb)
    assert set(tables) == {"customers", "cases"}, f"{writer}: sheets {wb.sheetnames}"
    for kind, data, headers in (("customers", writers.CUSTOMERS, writers.CUSTOMER_HEADERS), ("cases", writers.CASES, writers.CASE_HEADERS)):
        t = tables[kind]
        ws = wb[t.sheet]
        assert len(t.rows) == len(data)
        for row in data:
            for h, v in zip(headers, row):
                got = ws.cell(t.rows[row[0]], t.cols[h]).value
                if isinstance(v, dt.date) and isinstance(got, (int, float)):  # a serial number in a General cell
                    got = from_excel(got)
                assert _norm(got) == _norm(v), f"{writer}: {t.sheet} {h} of {row[0]}"


def test_hand_checked_expectations(expected):
    """A few results worked out by hand from the rule files, so the Evaluator is not the only judge."""
    cu, ca = expected["customers"], expected["cases"]

    def of(e, header, id_):
        return e.columns[header][[r[0] for r in e.data].index(id_)]

    assert of(cu, "Tier", "C001") == "VIP"  # spend 600000 >= 500000
    assert of(cu, "Tier", "C003") == "Churn risk"  # was High value, nothing bought since July
    assert of(cu, "Next contact", "C002") == dt.datetime(2026, 11, 8)  # High value: last contact + 7 days
    assert of(cu, DAYS_OVERDUE, "C002") == 15
    assert of(ca, "Respond by", "K001") == dt.datetime(2026, 11, 20, 19, 0)  # Urgent: 2 h round the clock
    assert of(ca, "Resolve by", "K001") == dt.datetime(2026, 11, 21, 17, 0)
    assert of(ca, "Level", "K005") == 3.0  # open 11 days
    assert of(ca, "Level", "K009") == 2.0  # open exactly 72 h
    assert of(ca, "Level", "K010") == 1.0  # open exactly 24 h


# ------------------------------------------------------------------ (a) openpyxl
@pytest.mark.parametrize("writer", WRITER_NAMES)
def test_recalc_reports_success(corpus, writer):
    run = _run(corpus, writer)
    for k, ((code, out), report) in enumerate(zip(run.cli, run.reports), start=1):
        assert code == 0, f"run {k} on the {writer} workbook exited {code}:\n{out}"
        assert report.get("reports") and report["reports"][0]["written"], f"run {k}: {out}"
        sheets = {s["sheet"]: s for s in report["reports"][0]["sheets"]}
        assert len(sheets) == 2, f"run {k} computed sheets {list(sheets)}"
        assert all(s["rows"] in (len(writers.CUSTOMERS), len(writers.CASES)) for s in sheets.values())


@pytest.mark.parametrize("writer", WRITER_NAMES)
def test_openpyxl_opens_the_result_and_sees_the_results(corpus, expected, writer):
    run = _recalculated(corpus, writer)
    before, warned_before = _load(run.source)
    after, warned_after = _load(run.first)  # raises if the package or an XML part is broken
    assert [w for w in warned_after if w not in warned_before] == [], "openpyxl warns about the result, not the input"
    assert after.sheetnames[: len(before.sheetnames)] == before.sheetnames
    assert set(after.sheetnames[len(before.sheetnames):]) == OWN_SHEETS
    assert _check_results(after, expected, "openpyxl") == []
    stamp = {p.name: p.value for p in after.custom_doc_props.props}
    assert (stamp.get("cxrules as of"), stamp.get("cxrules rules hash", "")[:7]) == (AS_OF.isoformat(sep=" "), "sha256:")

    # what the user had is still there, formulas included
    for ws in before.worksheets:
        ws2 = after[ws.title]
        for row in ws.iter_rows():
            for c in row:
                if c.value is not None:
                    assert ws2.cell(c.row, c.column).value == c.value, f"{ws.title}!{c.coordinate} changed"

    # every row problem is listed on the Issues sheet at its row
    issues = [r for r in after["Issues"].iter_rows(values_only=True)]
    head = list(issues[0])
    listed = {(r[head.index("Sheet")], r[head.index("Row")], r[head.index("Problem")]) for r in issues[1:]}
    tables = _tables(after)
    for kind, e in expected.items():
        t = tables[kind]
        for i, message in e.problems:
            assert (t.sheet, t.rows[e.data[i][0]], message) in listed


# ------------------------------------------------------------------ (b) LibreOffice
@pytest.mark.parametrize("writer", WRITER_NAMES)
def test_libreoffice_opens_the_result_and_sees_the_results(corpus, libreoffice_view, expected, writer):
    _recalculated(corpus, writer)
    source, seen = libreoffice_view[writer]
    assert source is not None, f"LibreOffice cannot load the {writer} workbook even before cxrules"
    assert seen is not None, f"LibreOffice could not load the recalculated {writer} workbook"
    wb, _ = _load(seen, data_only=True)
    before, _ = _load(source, data_only=True)
    assert wb.sheetnames[: len(before.sheetnames)] == before.sheetnames, "LibreOffice lost or reordered sheets"
    assert set(wb.sheetnames[len(before.sheetnames):]) == OWN_SHEETS
    assert _check_results(wb, expected, "LibreOffice") == []
    # the user's cells show what they showed before; formulas are recalculated on load
    changed = []
    for ws in before.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.value is not None and wb[ws.title].cell(c.row, c.column).value != c.value:
                    changed.append(f"{ws.title}!{c.coordinate}: {c.value!r} -> {wb[ws.title].cell(c.row, c.column).value!r}")
    assert changed == []


# ------------------------------------------------------------------ (c) parts cxrules does not own
def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert len(names) == len(set(names)), f"{path.name} has duplicate zip entries"
        return {n: z.read(n) for n in names}


def _rels(parts: dict[str, bytes], part: str) -> list[tuple[str, str, str]]:
    """(Id, Type, resolved target) of a part's relationships; external ones left out."""
    d, b = posixpath.split(part)
    name = posixpath.join(d, "_rels", b + ".rels")
    if name not in parts:
        return []
    out = []
    for r in ET.fromstring(parts[name]).findall("pr:Relationship", NS):
        if r.get("TargetMode") == "External":
            continue
        t = r.get("Target", "")
        t = t.lstrip("/") if t.startswith("/") else posixpath.normpath(posixpath.join(d, t))
        out.append((r.get("Id"), r.get("Type"), t))
    return out


def _owned_parts(parts: dict[str, bytes], data_sheets: list[str]) -> set[str]:
    """What recalc may rewrite (see xlsx_write.write_workbook): the sheets it writes results
    into and their tables, the workbook part and its rels, content types, styles, the
    calculation chain and docProps/app.xml. New parts are its own too."""
    root = _rels(parts, "")
    wb_part = next(t for _, ty, t in root if ty == REL + "/officeDocument")
    owned = {wb_part, posixpath.join(posixpath.dirname(wb_part), "_rels", posixpath.basename(wb_part) + ".rels"), "[Content_Types].xml"}
    owned |= {t for _, ty, t in root if ty.endswith("/extended-properties")}
    # the stamp goes into the custom properties; _rels/.rels gains their relationship when a workbook has none
    owned |= {"_rels/.rels", "docProps/custom.xml"} | {t for _, ty, t in root if ty == REL + "/custom-properties"}
    wb_rels = _rels(parts, wb_part)
    owned |= {t for _, ty, t in wb_rels if ty in (REL + "/styles", REL + "/calcChain")}
    if not any(ty == REL + "/styles" for _, ty, _ in wb_rels):
        owned.add("xl/styles.xml")  # where it makes a styles part (pyexcelerate leaves an unlinked one there)
    by_id = {i: t for i, _, t in wb_rels}
    for s in ET.fromstring(parts[wb_part]).find("m:sheets", NS):
        if s.get("name") in data_sheets:
            part = by_id[s.get(f"{{{REL}}}id")]
            owned.add(part)
            owned |= {t for _, ty, t in _rels(parts, part) if ty == REL + "/table"}
    return owned


def _order_problems(xml: bytes, order: list[str]) -> list[str]:
    """Top-level elements given twice or out of the order the schema gives. For XML that does
    not parse, the start tags are counted instead (nested elements of those names are rare)."""
    try:
        tags = [c.tag.rsplit("}", 1)[-1] for c in ET.fromstring(xml)]
    except ET.ParseError:
        tags = [t for t in order for _ in re.findall(rb"<(?:\w+:)?%s[\s/>]" % t.encode(), xml)]
    out = [f"<{t}> {tags.count(t)} times" for t in order if tags.count(t) > 1 and t not in REPEATABLE]
    known = [t for t in tags if t in order]
    if known != sorted(known, key=order.index):
        out.append(f"elements out of order: {tags}")
    return out


def _cell_order_problems(xml: bytes) -> list[str]:
    """Rows ascending, cells ascending within their row and in it: Excel repairs anything else."""
    out, last_row = [], 0
    data = ET.fromstring(xml).find("m:sheetData", NS)
    for row in data if data is not None else []:
        r = int(row.get("r", last_row + 1))
        if r <= last_row:
            out.append(f"row {r} after row {last_row}")
        last_row, last_col = r, -1
        for c in row:
            ref = c.get("r")
            if ref is None:
                continue
            col = column_index_from_string(ref.rstrip("0123456789"))
            if int(ref[len(ref.rstrip("0123456789")):]) != r or col <= last_col:
                out.append(f"cell {ref} in row {r} after column {last_col}")
            last_col = col
    return out


@pytest.mark.parametrize("writer", WRITER_NAMES)
def test_parts_cxrules_does_not_own_are_byte_identical(corpus, writer):
    run = _recalculated(corpus, writer)
    before, after = _parts(run.source), _parts(run.first)
    data_sheets = [s["sheet"] for s in run.reports[0]["reports"][0]["sheets"]]
    owned = _owned_parts(before, data_sheets)
    problems = [f"{n} was lost" for n in before if n not in owned and n not in after]
    problems += [f"{n} changed" for n in before if n not in owned and n in after and after[n] != before[n]]

    # what it did write is well-formed, namespace-correct and in the order Excel expects
    wrote = [n for n in after if n not in before or after[n] != before[n]]
    parsed = set()
    for n in wrote:
        if n.endswith((".xml", ".rels", ".vml")):
            try:
                ET.fromstring(after[n])
                parsed.add(n)
            except ET.ParseError as e:
                problems.append(f"{n} is not well-formed XML: {e}")
    wb_part = next(t for _, ty, t in _rels(before, "") if ty == REL + "/officeDocument")
    problems += [f"{wb_part}: {p}" for p in _order_problems(after[wb_part], WORKBOOK_ORDER)
                 if p not in _order_problems(before[wb_part], WORKBOOK_ORDER)]
    for _, ty, part in _rels(before, wb_part):
        if ty == REL + "/worksheet" and part in parsed:
            old = _order_problems(before[part], WORKSHEET_ORDER) + _cell_order_problems(before[part])
            problems += [f"{part}: {p}" for p in _order_problems(after[part], WORKSHEET_ORDER) + _cell_order_problems(after[part]) if p not in old]
    if not any("[Content_Types].xml" in p or ".rels " in p for p in problems):
        problems += sorted(_package_problems(after) - _package_problems(before))
    assert not problems, "\n".join(problems)


def _package_problems(parts: dict[str, bytes]) -> set[str]:
    """What makes Excel refuse or repair a package: content types and relationships that
    point nowhere, parts without a content type, duplicate ids."""
    out = set()
    ct = ET.fromstring(parts["[Content_Types].xml"])
    defaults = {d.get("Extension", "").lower() for d in ct.findall("ct:Default", NS)}
    overrides = [o.get("PartName", "").lstrip("/") for o in ct.findall("ct:Override", NS)]
    for o in overrides:
        if overrides.count(o) > 1:
            out.add(f"content type of {o} given twice")
        if o not in parts:
            out.add(f"content type for missing part {o}")
    for n in parts:
        if n != "[Content_Types].xml" and not n.endswith("/") and n not in overrides and n.rsplit(".", 1)[-1].lower() not in defaults:
            out.add(f"no content type for {n}")
    for n in parts:
        if n.endswith(".rels"):
            src = posixpath.join(posixpath.dirname(posixpath.dirname(n)), posixpath.basename(n)[: -len(".rels")])
            rels = _rels(parts, "" if n == "_rels/.rels" else src)
            ids = [i for i, _, _ in rels]
            out |= {f"{n}: id {i} twice" for i in ids if ids.count(i) > 1}
            out |= {f"{n}: target {t} is missing" for _, _, t in rels if t not in parts}
    return out


# ------------------------------------------------------------------ (d) a rerun
@pytest.mark.parametrize("writer", WRITER_NAMES)
def test_second_run_with_the_same_as_of_changes_nothing(corpus, writer):
    run = _recalculated(corpus, writer)
    code, out = run.cli[1]
    assert code == 0, f"the second run failed (exit {code}):\n{out}"
    first, second = _parts(run.first), _parts(run.second)
    assert list(second) == list(first), "the second run added, dropped or reordered parts"
    assert [n for n in first if first[n] != second[n]] == []
