"""The Contact plan sheet and the alerts over measures, on the recalculated sample workbooks."""
import collections
import datetime as dt
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import writers
from cxrules import contact_plan, rulesets
from cxrules.evaluation import Evaluator
from cxrules.recalc import recalc
from cxrules.samples import AS_OF, write_sample

ROOT = Path(__file__).resolve().parents[1]
PLAN = {"en": "Contact plan", "zh": "回访计划"}
MEASURES = {"en": "Measures", "zh": "指标"}
CUSTOMERS = {"en": ("Customers", 3), "zh": ("客户", 1)}  # sheet, header row
HEAD = {"en": ("Next contact", "Channel", "Tier"), "zh": ("下次回访", "回访渠道", "客户层级")}
TIERS = {"en": ["VIP", "High value", "Potential", "New", "Churn risk", "Regular"],
         "zh": ["贵宾客户", "高价值客户", "潜力客户", "新客户", "流失风险客户", "普通客户"]}


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(rulesets.load_or_raise(ROOT / "rules"))


@pytest.fixture(scope="module")
def done(tmp_path_factory, evaluator):
    """lang -> (recalculated sample, report), 3000 customers as shipped."""
    out = {}
    for lang in ("en", "zh"):
        path = write_sample(tmp_path_factory.mktemp(lang) / f"sample_{lang}.xlsx", lang=lang)
        out[lang] = (path, recalc(path, evaluator, as_of=AS_OF))
    return out


def plan_sheet(path, lang):
    """(the per-day table: {row label: [counts per channel..., total]}, channels, call list rows)."""
    ws = openpyxl.load_workbook(path)[PLAN[lang]]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    top = next(i for i, r in enumerate(rows) if r[0] in ("Date", "日期"))
    width = next(j for j, v in enumerate(rows[top]) if v in ("Total", "合计"))
    channels = rows[top][1:width]
    table = {}
    i = top + 1
    while rows[i][0] not in ("Total", "合计"):
        key = rows[i][0].date() if isinstance(rows[i][0], dt.datetime) else "overdue"
        table[key] = rows[i][1:width + 1]
        i += 1
    head = next(k for k in range(i, len(rows)) if rows[k][0] in ("Tier", "客户层级"))
    calls = [r for r in rows[head + 1:] if r[0] is not None or r[1] is not None]
    return table, channels, calls, rows


CASES = {"en": "Cases", "zh": "工单"}
JOURNEY = {"en": (": due", ": channel", ": deferred"), "zh": ("：到期日", "：渠道", "：暂缓原因")}


def contacts_by_hand(path, lang):
    """Every contact the sheets show, counted with pandas from the columns themselves: the
    next contact and its channel, and each journey's due and channel where its deferred
    column (if any) is blank. [(sheet, row, due, overdue, channel)]"""
    today = AS_OF.date()
    due_h, channel_h, _ = HEAD[lang]
    out = []
    for sheet, header_row in (CUSTOMERS[lang], (CASES[lang], 1)):
        df = pd.read_excel(path, sheet_name=sheet, header=header_row - 1, engine="openpyxl")
        d, c, h = JOURNEY[lang]
        pairs = [(due_h, channel_h, None)] if due_h in df.columns else []
        pairs += [(x, x[: -len(d)] + c, x[: -len(d)] + h) for x in df.columns if isinstance(x, str) and x.endswith(d)]
        for due, channel, held in pairs:
            col = pd.to_datetime(df[due], errors="coerce")
            dated = (col.dropna().dt.time == dt.time(0)).all()  # a day, due all that day; else a moment
            for k, v in col.items():
                if pd.isna(v) or (held in df.columns and pd.notna(df[held][k])):
                    continue
                late = v.date() < today if dated else v.to_pydatetime() < AS_OF
                out.append((sheet, header_row + 1 + k, v.date(), late, df[channel][k]))
    return out


def test_counts_per_day_and_channel_match_a_count_of_the_due_columns(done):
    today = AS_OF.date()
    for lang, (path, _rep) in done.items():
        mine = contacts_by_hand(path, lang)
        table, channels, _calls, _rows = plan_sheet(path, lang)
        assert len(table) == 1 + contact_plan.DAYS
        late = collections.Counter(ch for _, _, _, is_late, ch in mine if is_late)
        on_day = collections.Counter((d, ch) for _, _, d, is_late, ch in mine if not is_late)
        for j, ch in enumerate(channels):
            assert table["overdue"][j] == late[ch], (lang, ch)
            for k in range(contact_plan.DAYS):
                d = today + dt.timedelta(days=k)
                assert table[d][j] == on_day[(d, ch)], (lang, ch, d)
        horizon = today + dt.timedelta(days=contact_plan.DAYS - 1)
        window = [x for x in mine if x[3] or x[2] <= horizon]
        assert set(channels) == {x[4] for x in window}
        assert sum(row[-1] for row in table.values()) == len(window)
        assert table[today][-1] > 0 and table["overdue"][-1] > 0


def test_the_call_list_is_every_contact_due_today_or_overdue_by_tier_then_overdue_first(done):
    for lang, (path, _rep) in done.items():
        table, _channels, calls, _rows = plan_sheet(path, lang)
        assert len(calls) == table["overdue"][-1] + table[AS_OF.date()][-1]
        ranks = [TIERS[lang].index(c[0]) if c[0] in TIERS[lang] else 99 for c in calls]
        assert ranks == sorted(ranks) and len(set(ranks)) >= 5
        for tier in set(ranks):
            late = [c[1] or 0 for c, r in zip(calls, ranks) if r == tier]
            assert late == sorted(late, reverse=True)  # overdue first, most overdue first
        # each row is a contact of that sheet row: its due day and channel are there
        mine = collections.defaultdict(set)
        for sheet, row, day, _late, ch in contacts_by_hand(path, lang):
            mine[(sheet, row)].add((day, ch))
        for c in calls:
            assert (c[2].date(), c[3]) in mine[(c[-2], c[-1])], c
        assert {c[-2] for c in calls} == {CUSTOMERS[lang][0], CASES[lang]}


def test_the_sheet_has_a_stacked_chart_of_the_four_weeks(done):
    for lang, (path, _rep) in done.items():
        wb = openpyxl.load_workbook(path)
        assert wb.sheetnames[-3:] == [("CX summary", "CX 汇总")[lang == "zh"], PLAN[lang], ("Issues", "问题")[lang == "zh"]]
        ws = wb[PLAN[lang]]
        (chart,) = ws._charts
        assert chart.grouping == "stacked" and chart.type == "col"
        _table, channels, _calls, _rows = plan_sheet(path, lang)
        assert len(chart.series) == len(channels)
        ref = chart.series[0].cat.numRef.f
        assert ref.endswith(f"$A${_first_day_row(ws)}:$A${_first_day_row(ws) + contact_plan.DAYS - 1}")


def _first_day_row(ws):
    return next(r[0].row for r in ws.iter_rows() if isinstance(r[0].value, dt.datetime))


def test_alerts_fire_at_the_samples_as_of_and_nowhere_else(done):
    want = {
        "en": {("Online store", "NPS alert"), ("Delivery", "Churn alert"), ("Online store", "Improvement plan")},
        "zh": {("线上商城部", "NPS预警"), ("物流配送部", "流失预警"), ("线上商城部", "整改计划")},
    }
    for lang, (path, _rep) in done.items():
        df = pd.read_excel(path, sheet_name=MEASURES[lang], engine="openpyxl")
        date_h, dep_h = ("Measure date", "Department") if lang == "en" else ("指标日期", "部门")
        fired = set()
        for alert in {h for _, h in want[lang]}:
            for _, r in df[df[alert].notna()].iterrows():
                assert r[date_h].date() == AS_OF.date(), (lang, alert, r[date_h])
                fired.add((r[dep_h], alert))
        assert fired == want[lang]
        last = df[pd.to_datetime(df[date_h]).dt.date == AS_OF.date()]
        due_h = "Analysis due" if lang == "en" else "根因分析截止"
        assert set(last[due_h].dropna()) == {pd.Timestamp(2026, 11, 24)}


def test_a_rerun_is_byte_identical_and_a_persons_sheet_of_that_name_is_kept(tmp_path, evaluator):
    path = write_sample(tmp_path / "s.xlsx", n_customers=100, n_cases=40)
    wb = openpyxl.load_workbook(path)
    wb.create_sheet("Contact plan")["A1"] = "my own plan"
    wb.save(path)
    recalc(path, evaluator, as_of=AS_OF)
    first = _parts(path)
    recalc(path, evaluator, as_of=AS_OF)
    assert _parts(path) == first
    wb = openpyxl.load_workbook(path)
    assert wb["Contact plan"]["A1"].value == "my own plan" and wb["Contact plan"].max_row == 1
    assert wb["Contact plan (2)"]["A1"].value == "Contact plan"
    assert wb.sheetnames.count("Contact plan (2)") == 1
    # a later as-of replaces the sheet: the 4 weeks start that day
    recalc(path, evaluator, as_of=AS_OF + dt.timedelta(days=3))
    ws = openpyxl.load_workbook(path)["Contact plan (2)"]
    assert _first_day(ws) == AS_OF.date() + dt.timedelta(days=3)
    assert len(ws._charts) == 1


def _first_day(ws):
    return next(r[0].value for r in ws.iter_rows() if isinstance(r[0].value, dt.datetime)).date()


def _parts(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def test_libreoffice_opens_the_plan_and_its_chart(tmp_path, evaluator):
    out = {}
    for lang in ("en", "zh"):
        path = write_sample(tmp_path / f"small_{lang}.xlsx", lang=lang, n_customers=120, n_cases=40)
        recalc(path, evaluator, as_of=AS_OF)
        out[lang] = path
    got = writers.soffice_convert(list(out.values()), tmp_path / "lo", "xlsx:Calc MS Excel 2007 XML", tmp_path / "profile")
    for lang, path in out.items():
        seen = got[path]
        assert seen is not None, f"LibreOffice could not open {path.name}"
        mine, lo = plan_sheet(path, lang), plan_sheet(seen, lang)
        assert lo[0] == mine[0] and lo[1] == mine[1]  # the same table, as LibreOffice read it
        assert len(lo[2]) == len(mine[2])
        ws = openpyxl.load_workbook(seen)[PLAN[lang]]
        assert len(ws._charts) == 1 and len(ws._charts[0].series) == len(mine[1])
        alerts = openpyxl.load_workbook(seen)[MEASURES[lang]]
        assert any(c.value in ("Root-cause analysis", "根因分析") for row in alerts.iter_rows() for c in row)


def test_a_workbook_without_contacts_gets_no_plan(tmp_path, evaluator):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Cases"
    ws.append(["Case ID", "Opened at", "Severity", "Case type", "Status", "Tier"])
    ws.append(["C1", dt.datetime(2026, 11, 20, 9), "Normal", "Complaint", "Open", "VIP"])
    path = tmp_path / "cases.xlsx"
    wb.save(path)
    recalc(path, evaluator, as_of=AS_OF)
    assert openpyxl.load_workbook(path).sheetnames == ["Cases", "CX summary", "Issues"]


def test_sources_name_results_of_the_bundled_rules(evaluator):
    rs = evaluator.rs
    got = contact_plan.sources(rs)
    assert got[0].due == "next_contact"
    # every journey adds its next action, held back by its deferred column when it has caps
    journeys = [t.journey for t in rs.tables.values() if getattr(t, "journey", None)]
    assert [s.due for s in got[1:]] == [j.result("due") for j in journeys] and len(journeys) == 5
    assert {s.held for s in got[1:]} >= {"new_customer_deferred", "lapsed_deferred"}
    for s in got:
        t = rs.producer(s.due)
        assert t is not None and s.due in [d.name for d in t.due]
        for name in (s.channel, s.owner, s.priority, s.purpose):
            assert name is None or rs.producer(name) is not None, name


def test_a_long_call_list_is_cut_and_says_how_many_more(tmp_path, evaluator, monkeypatch):
    path = write_sample(tmp_path / "s.xlsx", n_customers=100, n_cases=40)
    monkeypatch.setattr(contact_plan, "MAX_CALLS", 10)
    recalc(path, evaluator, as_of=AS_OF)
    table, _channels, calls, rows = plan_sheet(path, "en")
    due = table["overdue"][-1] + table[AS_OF.date()][-1]
    assert len(calls) == 11 and calls[:10] == sorted(calls[:10], key=lambda c: TIERS["en"].index(c[0]))
    assert calls[10][0] == f"{due - 10} more contacts are not listed: sort the customer sheet by Days overdue to see them all"
    assert any(str(r[0]).startswith(f"Today's call list: {due} contacts due today or overdue") for r in rows)


def test_another_source_is_one_entry(tmp_path, monkeypatch):
    """A result that plans contacts (a journey's next step, say) joins the plan by one Source."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "followup.yaml").write_text("""decision: followup
hit: first
inputs:
  tier: {decision: tier}
outputs:
  followup_on:      {type: date, label: Follow-up on, columns: [Follow-up on]}
  followup_channel: {type: text, label: Follow-up channel, columns: [Follow-up channel]}
rules:
  - [VIP, 2026-11-23, Visit]
  - ["-", "-", "-"]
""", encoding="utf-8")
    ev = Evaluator(rulesets.load_or_raise(rules))
    monkeypatch.setattr(contact_plan, "SOURCES", contact_plan.SOURCES + [
        contact_plan.Source(due="followup_on", channel="followup_channel", priority="tier")])
    path = write_sample(tmp_path / "s.xlsx", n_customers=150, n_cases=40)
    rep = recalc(path, ev, as_of=AS_OF)
    vips = sum(1 for c in rep.contacts if c.source.due == "followup_on" and c.priority == "VIP")  # due today: listed
    assert vips
    table, channels, calls, _ = plan_sheet(path, "en")
    assert "Visit" in channels
    visits = table[AS_OF.date()][channels.index("Visit")]
    assert visits == sum(1 for c in rep.contacts if c.channel == "Visit") > 0
    assert sum(1 for c in calls if c[3] == "Visit") == visits


@pytest.mark.parametrize("sample", ["sample_en.xlsx", "sample_zh.xlsx"])
@pytest.mark.parametrize("max_calls", [contact_plan.MAX_CALLS, 7, 1])
def test_contacts_counted_and_the_call_lists_first_kept_give_the_same_sheet(sample, max_calls, tmp_path, monkeypatch):
    """recalc counts every contact and keeps as objects only the first MAX_CALLS calls of
    each range; the Contact plan is byte for byte the one made from every contact (the
    first with IDs and names held packed, as a long range holds them; the second not)."""
    ev = Evaluator(rulesets.load_or_raise(Path(__file__).resolve().parents[1] / "rules"))
    src = Path(__file__).resolve().parents[1] / "workbooks" / sample
    monkeypatch.setattr(contact_plan, "MAX_CALLS", max_calls)
    out = {}
    for counted in (True, False):
        book = tmp_path / ("counted" if counted else "kept") / sample
        book.parent.mkdir()
        shutil.copy(src, book)
        with monkeypatch.context() as m:
            if not counted:
                m.setattr(contact_plan, "Tally", lambda: None)  # every contact an object
            else:
                m.setattr(contact_plan, "PACK_FROM", 0)
            rep = recalc(book, ev, as_of=AS_OF)
        with zipfile.ZipFile(book) as z:
            out[counted] = {n: z.read(n) for n in z.namelist()}
        if counted:
            assert rep.contact_tally.total > len(rep.contacts) > 0
            assert all(c.late or contact_plan._day(c.due) <= AS_OF.date() for c in rep.contacts)
    assert out[True] == out[False]
