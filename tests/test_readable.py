"""Results a person can read: columns as wide as what they hold, the header frozen and
printed on every page, a summary that fits a laptop screen with each figure beside its
label and each chart beside its table, due counts per channel, overdue rows coloured."""
from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest

from cxrules import rulesets
from cxrules.evaluation import Evaluator
from cxrules.recalc import recalc
from cxrules.samples import write_sample
from cxrules.workbook import find_header, open_workbook
from cxrules.xlsx_write import text_width

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
AS_OF = dt.datetime(2026, 11, 23, 10, 0)  # a Monday: this week runs to Sunday the 29th
CUSTOMERS = ["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Last contact", "First purchase"]
ROWS = [["A", dt.datetime(2026, 11, 1), 14, 600000, dt.datetime(2026, 11, 10), dt.datetime(2020, 1, 1)],
        ["B", dt.datetime(2025, 1, 1), 1, 10, dt.datetime(2026, 6, 1), dt.datetime(2024, 1, 1)],
        ["C", dt.datetime(2026, 11, 20), 1, 100, dt.datetime(2026, 11, 22), dt.datetime(2026, 11, 20)]]
SCREEN = 150  # characters of column width a laptop screen shows without scrolling sideways (about 1100 px)


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(rulesets.load_or_raise(RULES))


def _book(path: Path, header, rows, title="Customers", above=()) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r in above:
        ws.append(list(r))
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    wb.save(path)
    return path


def _widths(ws) -> dict[str, str | float]:
    """Header text -> its column's width."""
    out = {}
    for row in ws.iter_rows(max_row=5):
        for c in row:
            if isinstance(c.value, str) and c.value:
                out[c.value] = ws.column_dimensions[c.column_letter].width
    return out


# ------------------------------------------------------------------ columns
def test_new_columns_are_as_wide_as_their_content_and_cjk_counts_double(tmp_path, evaluator):
    en = _book(tmp_path / "en.xlsx", CUSTOMERS, ROWS)
    zh = _book(tmp_path / "zh.xlsx", ["客户", "最近消费日期", "消费次数", "消费金额", "上次回访日期", "首次消费日期"], ROWS)
    for p in (en, zh):
        recalc(p, evaluator, as_of=AS_OF)
    ws = openpyxl.load_workbook(en)["Customers"]
    w = _widths(ws)
    reasons = [r[7] for r in ws.iter_rows(min_row=2, values_only=True) if r[7]]
    assert "Annual spend of 500000 or more" in reasons
    assert w["Tier reason"] >= max(map(len, reasons)) and w["Tier reason"] < 50
    assert w["Next contact"] >= len("2026-11-08 00:00")
    ws = openpyxl.load_workbook(zh)["Customers"]
    w = _widths(ws)
    reasons = [r[7] for r in ws.iter_rows(min_row=2, values_only=True) if r[7]]
    assert "年消费 50 万元及以上" in reasons
    assert w["分层依据"] >= max(text_width(r) for r in reasons) >= 2 * len("年消费万元及以上")  # two units a character
    assert w["分层依据"] > w["客户层级"] >= 2 * len("流失风险客户")


def test_a_text_longer_than_a_third_of_the_screen_wraps(tmp_path):
    long = "Call within the hour, apologise, offer the replacement and confirm the delivery date in writing"
    (tmp_path / "r.yaml").write_text(f"""
decision: care
hit: first
inputs:
  spend: {{type: number, columns: [Spend]}}
outputs:
  advice: {{type: text, columns: [Advice]}}
rules:
  - [">= 100", "{long}"]
  - ["-", Nothing]
""", encoding="utf-8")
    ev = Evaluator(rulesets.load_or_raise(tmp_path / "r.yaml"))
    p = _book(tmp_path / "b.xlsx", ["Customer", "Spend"], [["A", 500], ["B", 5]])
    recalc(p, ev, as_of=AS_OF)
    ws = openpyxl.load_workbook(p)["Customers"]
    assert ws["C2"].value == long and ws.column_dimensions["C"].width == 50
    assert ws["C2"].alignment.wrap_text and ws["C3"].alignment.wrap_text


# ------------------------------------------------------------------ header row
def test_the_header_row_is_frozen_and_printed_on_every_page(tmp_path, evaluator):
    p = _book(tmp_path / "c.xlsx", CUSTOMERS, ROWS, above=[["Customers - November"], []])
    recalc(p, evaluator, as_of=AS_OF)
    wb = openpyxl.load_workbook(p)
    ws = wb["Customers"]
    assert ws.freeze_panes == "A4"  # title and header stay on screen
    assert ws.print_title_rows == "$3:$3"  # the header, not the title, on every printed page
    issues = wb["Issues"]
    assert issues.freeze_panes == "A2" and issues.print_title_rows == "$1:$1"
    before = zipfile.ZipFile(p).read("xl/worksheets/sheet1.xml")
    recalc(p, evaluator, as_of=AS_OF)
    assert zipfile.ZipFile(p).read("xl/worksheets/sheet1.xml") == before


def test_a_persons_own_pane_and_print_titles_are_kept(tmp_path, evaluator):
    p = tmp_path / "own.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    for r in [CUSTOMERS] + ROWS:
        ws.append(r)
    ws.freeze_panes = "B2"  # frozen at the name column too
    ws.print_title_rows = "1:2"
    wb.save(p)
    recalc(p, evaluator, as_of=AS_OF)
    ws = openpyxl.load_workbook(p)["Customers"]
    assert ws.freeze_panes == "B2" and ws.print_title_rows == "$1:$2"


def test_a_header_far_down_is_printed_but_not_frozen(tmp_path, evaluator):
    p = _book(tmp_path / "low.xlsx", CUSTOMERS, ROWS, above=[[f"note {k}"] for k in range(11)])
    recalc(p, evaluator, as_of=AS_OF)
    ws = openpyxl.load_workbook(p)["Customers"]
    assert ws.freeze_panes is None and ws.print_title_rows == "$12:$12"


# ------------------------------------------------------------------ the sample, recalculated
@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("readable")
    p = write_sample(d / "small.xlsx", 2026, "en", n_customers=400, n_cases=80)
    shutil.copy(p, d / "before.xlsx")
    ev = Evaluator(rulesets.load_or_raise(RULES))
    rep = recalc(p, ev, as_of=AS_OF)
    return p, d / "before.xlsx", rep, ev


def _charts(path: Path, sheet_part: str) -> list[dict]:
    """Each chart on a sheet: its title and the cells its corners sit in (0-based)."""
    with zipfile.ZipFile(path) as z:
        rels = z.read(sheet_part.replace("worksheets/", "worksheets/_rels/") + ".rels").decode()
        drawing = "xl/" + re.search(r'Target="\.\./(drawings/drawing\d+\.xml)"', rels).group(1)
        dxml = z.read(drawing).decode()
        drels = z.read(drawing.replace("drawings/", "drawings/_rels/") + ".rels").decode()
        targets = dict(re.findall(r'Id="(rId\d+)"[^>]*Target="\.\./(charts/chart\d+\.xml)"', drels))
        out = []
        for a in re.findall(r"<xdr:twoCellAnchor>.*?</xdr:twoCellAnchor>", dxml, re.S):
            nums = [int(x) for x in re.findall(r"<xdr:(?:col|row)>(\d+)</xdr:(?:col|row)>", a)]
            rid = re.search(r'r:id="(rId\d+)"', a).group(1)
            title = re.search(r"<a:t>(.*?)</a:t>", z.read("xl/" + targets[rid]).decode()).group(1)
            out.append({"title": title, "col": nums[0], "row": nums[1], "col2": nums[2], "row2": nums[3]})
        return out


def test_summary_has_each_figure_beside_its_label_and_each_chart_beside_its_table(sample):
    path, _, rep, _ = sample
    wb = openpyxl.load_workbook(path)
    ws = wb["CX summary"]
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    sheets = {r[0]: r[1:4] for r in grid if r and r[0] in ("Customers", "Cases")}
    assert list(sheets["Customers"]) == [400, rep.sheets[0].overdue, rep.sheets[0].problems]
    # figures only in B-D, right of their label in A
    for r in grid:
        for j, v in enumerate(r):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                assert 1 <= j <= 3 and r[0] is not None, r
    part = next(f"xl/worksheets/sheet{k}.xml" for k in range(1, 9)
                if "CX summary" in zipfile.ZipFile(path).read(f"xl/worksheets/sheet{k}.xml").decode("utf-8", "ignore")
                or k == wb.sheetnames.index("CX summary") + 1)
    charts = _charts(path, part)
    assert {c["title"] for c in charts} >= {"Customers: Tier", "Cases: Level", "Customers: Next contact, per Channel"}
    heads = {r[0]: i for i, r in enumerate(grid) if r and isinstance(r[0], str)}
    tops = sorted(heads[c["title"]] for c in charts)
    for c in charts:
        top = heads[c["title"]]
        assert c["row"] == top and c["col"] == 5  # level with its table's heading, right of its columns (A-D)
        nxt = min([t for t in tops if t > top], default=None)
        assert nxt is None or c["row2"] <= nxt  # clear of the next table and its chart
    widths = [ws.column_dimensions[x].width for x in "ABCDE"]
    assert sum(widths) + 7 * 8.43 <= SCREEN  # tables and charts side by side, no sideways scrolling


def _read(path, sheet, rs):
    with open_workbook(path) as wb:
        data = wb.read_sheet(sheet)
    want = {}
    for f in rs.fields.values():
        want.setdefault(f.name, list(f.columns))
    for t in rs.tables.values():
        for i in t.inputs:
            if i.source == "column":
                want.setdefault(i.name, list(i.columns))
    h = find_header(data, want)
    return [{k: (r[j] if j < len(r) else None) for k, j in h.columns.items()} for r in data.rows[h.index + 1:]]


def test_contacts_due_today_and_this_week_per_channel_agree_with_the_evaluator(sample):
    path, before, _, ev = sample
    rows = _read(before, "Customers", ev.rs)
    got = ev.evaluate(rows, ["tier", "contact"], AS_OF)
    sunday = dt.date(2026, 11, 29)
    want: dict[str, list[int]] = {}
    for channel, due in zip(got.columns["channel"], got.columns["next_contact"]):
        if due is None:
            continue
        c = want.setdefault(channel, [0, 0, 0])
        day = due.date() if isinstance(due, dt.datetime) else due
        c[0] += due < AS_OF if isinstance(due, dt.datetime) else day < AS_OF.date()
        c[1] += day == AS_OF.date()
        c[2] += AS_OF.date() <= day <= sunday
    grid = [list(r) for r in openpyxl.load_workbook(path)["CX summary"].iter_rows(values_only=True)]
    i = next(k for k, r in enumerate(grid) if r[0] == "Customers: Next contact, per Channel")
    assert grid[i + 1][:4] == ["Channel", "Overdue", "Due today", "Due this week"]
    shown = {}
    for r in grid[i + 2:]:
        if r[0] == "Total":
            assert r[1:4] == [sum(c[k] for c in want.values()) for k in range(3)]
            break
        shown[r[0]] = list(r[1:4])
    assert shown == want
    assert sum(c[1] for c in want.values()) and sum(c[2] for c in want.values()) > sum(c[1] for c in want.values())


def test_every_issue_says_what_to_do(sample):
    path, _, rep, _ = sample
    rows = [list(r) for r in openpyxl.load_workbook(path)["Issues"].iter_rows(values_only=True)]
    assert len(rows) > 5
    assert all(r[5] for r in rows[1:]), [r for r in rows if not r[5]]
    ws = openpyxl.load_workbook(path)["Issues"]
    assert ws["E2"].alignment.wrap_text and ws["F2"].alignment.wrap_text
    assert sum(ws.column_dimensions[x].width for x in "ABCDEF") <= SCREEN + 10


def test_overdue_customers_stand_out_as_rows_like_cases(sample):
    path, _, _, _ = sample
    wb = openpyxl.load_workbook(path)
    for name in ("Customers", "Cases"):
        ws = wb[name]
        header = next(r for r in ws.iter_rows(max_row=5) if any(c.value == "Days overdue" for c in r))
        late = next(c.column_letter for c in header if c.value == "Days overdue")
        last = header[-1].column_letter
        spans = [str(cf.sqref) for cf in ws.conditional_formatting for rule in cf.rules
                 if any(f"${late}" in f and ">0" in f for f in rule.formula)]
        assert len(spans) == 1 and re.fullmatch(rf"A{header[0].row + 1}:{last}\d+", spans[0]), (name, spans)
