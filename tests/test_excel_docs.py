"""docs/excel.md's worked examples give what it says, called as Excel calls them (tests/com.py)."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

pytest.importorskip("xlwings", reason="the Excel layer needs xlwings 0.37.8, which needs Python 3.11+")
import xlwings as xw  # noqa: E402

import com  # noqa: E402
from com import MISSING, book, call, serial, sheet
from cxrules import excel, rulesets

DOC = (Path(__file__).resolve().parents[1] / "docs" / "excel.md").read_text(encoding="utf-8")
H1 = dt.datetime(2026, 11, 23, 10, 0)
T = dt.datetime


@pytest.fixture(autouse=True)
def sheets(monkeypatch):
    com.com_engine(monkeypatch)
    monkeypatch.setenv("CXRULES_RULES", str(rulesets.bundled_rules_dir()))
    monkeypatch.setattr(excel, "now_in", lambda tz: H1)
    b = book(sheet("Customers", [["Last purchase", "Orders 12m", "Spend 12m", "Last contact", None, None, None, H1],
                                 [T(2026, 11, 13), 6.0, 8000.0, T(2026, 11, 1)],
                                 [T(2026, 11, 20), 12.0, 620000.0, T(2026, 10, 1)]]),
             sheet("Cases", [["Case", "Opened at", "Severity", "Status", "NPS score"],
                             ["C-1", T(2026, 11, 10, 9), "Urgent", "Open", 10.0],
                             ["C-2", T(2026, 11, 20, 17), "Normal", "Open", 7.0],
                             ["C-3", T(2026, 11, 22, 9), "Minor", "Closed", None],
                             ["C-4", T(2026, 9, 30), "Minor", "Open", 3.0]]),
             sheet("Pairs", [["recency", 10.0], ["frequency", 6.0], ["monetary", 8000.0], ["spend_rank", 50.0]]))
    yield b.sheets["Customers"], b.sheets["Cases"], b.sheets["Pairs"]
    if hasattr(xw.Book, "_mock_caller"):
        del xw.Book._mock_caller


def documented(text: str) -> None:
    squeeze = lambda s: re.sub(r"\s+", " ", s)  # noqa: E731
    assert squeeze(text) in squeeze(DOC), text


def test_the_example_sheets_are_the_ones_documented():
    documented("| 2 | 2026-11-13 | 6 | 8000 | 2026-11-01 |")
    documented("| 5 | C-4 | 2026-09-30 | Minor | Open | 3 |")
    documented("H1 holds `2026-11-23 10:00`")


def test_cx_decisions(sheets):
    got = call("CX_DECISIONS")
    documented("=CX_DECISIONS() -> Decision | Title | Reads | Writes | Rule file")
    assert got[0] == ["Decision", "Title", "Reads", "Writes", "Rule file"]
    row = next(r for r in got if r[0] == "escalation_level")
    assert row[1] == "Escalation level" and row[4] == "escalation_level.yaml:3"
    assert row[2].startswith("status (text) <- column Status / 状态; ") and row[3] == "level (number); notify (text)"
    documented("one row per decision (16 with the bundled rules: 11 tables and 5 journeys)")
    assert len(got) == 1 + 16


def test_cx_tier(sheets):
    c, _, _ = sheets
    documented("E1: =CX_TIER(A:A, B:B, C:C, , , $H$1) -> E1 Tier, E2 High value, E3 VIP")
    assert call("CX_TIER", c.range("A:A"), c.range("B:B"), c.range("C:C"), MISSING, MISSING, c["H1"]) == [
        ["Tier"], ["High value"], ["VIP"]]


def test_cx_decide(sheets):
    c, _, _ = sheets
    documented('=CX_DECIDE("tier", A1:C3, $H$1) -> Tier | Tier reason')
    documented("High value | RFM high value")
    documented("VIP | Annual spend of 500000 or more")
    assert call("CX_DECIDE", "tier", c.range("A1:C3"), c["H1"]) == [
        ["Tier", "Tier reason"], ["High value", "RFM high value"], ["VIP", "Annual spend of 500000 or more"]]


def test_cx_next_contact(sheets):
    c, _, _ = sheets
    documented('=CX_NEXT_CONTACT(D2, "VIP") -> 2026-11-15')
    assert call("CX_NEXT_CONTACT", c["D2"], "VIP") == dt.date(2026, 11, 15)
    documented("=CX_NEXT_CONTACT(D2:D3, E2#, , , $H$1) -> 2026-11-08, 2026-10-15")
    tiers = call("CX_TIER", c.range("A2:A3"), c.range("B2:B3"), c.range("C2:C3"), MISSING, MISSING, c["H1"])
    assert call("CX_NEXT_CONTACT", c.range("D2:D3"), tiers, MISSING, MISSING, c["H1"]) == [
        [dt.date(2026, 11, 8)], [dt.date(2026, 10, 15)]]


def test_cx_deadlines(sheets):
    _, k, _ = sheets
    documented("=CX_DEADLINES(Cases!B3, Cases!C3) -> 2026-11-23 17:00 | 2026-11-25 17:00")
    assert call("CX_DEADLINES", k["B3"], k["C3"]) == [T(2026, 11, 23, 17), T(2026, 11, 25, 17)]


def test_cx_level_with_cx_now(sheets):
    _, k, _ = sheets
    documented("F1: =CX_LEVEL(Cases!B:B, Cases!D:D, CX_NOW()) -> F1 Level, then 3, 1, 0, 3 (as of 2026-11-23 10:00)")
    now = serial(call("CX_NOW"))  # a function's result reaches the next one as a number
    assert call("CX_LEVEL", k.range("B:B"), k.range("D:D"), now) == [["Level"], [3], [1], [0], [3]]


def test_cx_now(monkeypatch):
    documented("=CX_NOW() -> 2026-11-23 10:00 (Asia/Shanghai, the bundled rules' zone)")
    monkeypatch.setattr(excel, "now_in", lambda tz: {"Asia/Shanghai": H1}[tz])
    assert call("CX_NOW") == H1


def test_cx_offer():
    documented('=CX_OFFER("Urgent", "VIP", 3, 3) -> Gift + management follow-up within 24 h')
    assert call("CX_OFFER", "Urgent", "VIP", 3.0, 3.0) == "Gift + management follow-up within 24 h"


def test_cx_nps(sheets):
    _, k, _ = sheets
    documented("G1: =CX_NPS(Cases!E:E) -> G1 NPS group, then Promoter, Passive, (blank), Detractor")
    assert call("CX_NPS", k.range("E:E")) == [["NPS group"], ["Promoter"], ["Passive"], [""], ["Detractor"]]


def test_cx_due(sheets):
    _, k, _ = sheets
    documented('=CX_DUE(Cases!B3, "4h") -> 2026-11-23 12:00')
    assert call("CX_DUE", k["B3"], "4h") == T(2026, 11, 23, 12)
    documented("=CX_DUE(Cases!B5, 1) -> 2026-10-08")
    assert call("CX_DUE", k["B5"], 1.0) == dt.date(2026, 10, 8)
    documented('=CX_DUE(Cases!B3, "1d", "everyday") -> 2026-11-21 17:00')
    assert call("CX_DUE", k["B3"], "1d", "everyday") == T(2026, 11, 21, 17)


def test_cx_explain(sheets):
    c, _, p = sheets
    documented('=CX_EXPLAIN("tier", A1:C3, $H$1) -> rule row 3 fired (tier.yaml:22): tier=High value, reason=RFM high value '
               "rule row 2 fired (tier.yaml:21): tier=VIP, reason=Annual spend of 500000 or more")
    assert call("CX_EXPLAIN", "tier", c.range("A1:C3"), c["H1"]) == [
        ["rule row 3 fired (tier.yaml:22): tier=High value, reason=RFM high value"],
        ["rule row 2 fired (tier.yaml:21): tier=VIP, reason=Annual spend of 500000 or more"]]
    documented('=CX_EXPLAIN("tier", J1:K4) with J1:K4 = recency 10 / frequency 6 / monetary 8000 / spend_rank 50 '
               "-> rule row 3 fired (tier.yaml:22): tier=High value, reason=RFM high value")
    assert call("CX_EXPLAIN", "tier", p.range("A1:B4")) == "rule row 3 fired (tier.yaml:22): tier=High value, reason=RFM high value"


def test_every_function_has_a_section_and_a_worked_example():
    for f in excel.FUNCTIONS:
        m = re.search(rf"^### {f.__name__}\((.*?)\)\n(.*?)(?=^### |^## )", DOC, re.M | re.S)
        assert m, f.__name__
        assert "```text" in m.group(2) and f"={f.__name__}(" in m.group(2), f.__name__
