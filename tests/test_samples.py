"""The sample workbooks: reproducible, every tier and escalation level, bad cells reported."""
import collections
import datetime as dt
import re
import zipfile
from pathlib import Path

import pytest

from cxrules import rulesets
from cxrules.evaluation import Evaluator
from cxrules.problems import ERROR
from cxrules.samples import AS_OF, SHEETS, Formula, build_sample, write_sample, write_samples
from cxrules.workbook import CellError, col_index, find_header, open_workbook

ROOT = Path(__file__).resolve().parents[1]
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def rs():
    return rulesets.load_or_raise(ROOT / "rules")


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    paths = write_samples(out)
    assert paths == [out / "sample_en.xlsx", out / "sample_zh.xlsx"]
    return {"en": paths[0], "zh": paths[1]}


def aliases(rs) -> dict[str, list[str]]:
    """Every workbook column the rule set reads: field and input names -> header aliases."""
    wanted: dict[str, set] = {}
    for name, f in rs.fields.items():
        wanted.setdefault(name, set()).update(f.columns)
    for t in rs.tables.values():
        for i in t.inputs:
            if i.source == "column":
                wanted.setdefault(i.name, set()).update(i.columns)
    return {k: sorted(v) for k, v in wanted.items()}


def read(path, sheet, rs):
    """(header, rows keyed by field/input name, sheet data) as a batch job would read them."""
    with open_workbook(path) as wb:
        data = wb.read_sheet(sheet)
    h = find_header(data, aliases(rs))
    rows = [{k: (r[j] if j < len(r) else None) for k, j in h.columns.items()} for r in data.rows[h.index + 1:]]
    return h, rows, data


@pytest.fixture(scope="module")
def evaluated(books, rs):
    """lang -> {"customers"/"cases": (header, rows, evaluation)}, evaluated once."""
    ev = Evaluator(rs)
    out = {}
    for lang, path in books.items():
        out[lang] = {}
        for part, decisions in (("customers", ["tier", "contact"]), ("cases", None)):
            h, rows, _ = read(path, SHEETS[lang][part], rs)
            if part == "cases":
                decisions = [t for t in rs.tables if t not in ("tier", "contact")]
            out[lang][part] = (h, rows, ev.evaluate(rows, decisions, AS_OF))
    return out


# ------------------------------------------------------------------ reproducible
def test_same_seed_gives_the_same_bytes(books, tmp_path):
    again = write_sample(tmp_path / "again.xlsx", lang="en")
    assert again.read_bytes() == books["en"].read_bytes()
    a = write_sample(tmp_path / "a.xlsx", 7, "zh", n_customers=200, n_cases=60)
    b = write_sample(tmp_path / "b.xlsx", 7, "zh", n_customers=200, n_cases=60)
    assert a.read_bytes() == b.read_bytes()


def test_another_seed_or_moment_gives_another_book(tmp_path):
    small = dict(n_customers=200, n_cases=60)
    one = write_sample(tmp_path / "1.xlsx", 1, "en", **small).read_bytes()
    two = write_sample(tmp_path / "2.xlsx", 2, "en", **small).read_bytes()
    later = write_sample(tmp_path / "3.xlsx", 1, "en", AS_OF + dt.timedelta(days=1), **small).read_bytes()
    assert len({one, two, later}) == 3


def test_package_has_fixed_times_and_cached_values(books):
    for lang, path in books.items():
        with zipfile.ZipFile(path) as z:
            assert {i.date_time for i in z.infolist()} == {(2026, 11, 23, 10, 0, 0)}
            core = z.read("docProps/core.xml").decode()
            assert core.count("2026-11-23T02:00:00Z") == 2  # 10:00 in Shanghai
            names = set(z.namelist())
            assert "xl/sharedStrings.xml" in names and "xl/charts/chart1.xml" in names
            assert any(n.startswith("xl/comments") for n in names)
        with open_workbook(path) as wb:
            for sheet in wb.worksheets:
                assert wb.read_sheet(sheet.name).formula_cells_without_value == [], (lang, sheet.name)


# ------------------------------------------------------------------ layout and language
def test_layouts_and_languages(books, rs):
    h, rows, data = read(books["en"], "Customers", rs)
    assert (h.row, h.table) == (3, None)  # under a title row and a blank row
    assert data.value(1, 0).startswith("Customer list")
    assert all(not CJK.search(t) for t in h.texts.values())
    h, rows, data = read(books["zh"], "客户", rs)
    assert (h.row, h.table) == (1, "tblCustomers")
    assert h.texts["monetary"] == "年消费额" and all(CJK.search(t) for t in h.texts.values())
    for lang, path in books.items():
        with open_workbook(path) as wb:
            assert [s.name for s in wb.sheets] == list(SHEETS[lang].values())
        for part in ("customers", "cases"):
            h, rows, _ = read(path, SHEETS[lang][part], rs)
            assert not h.problems
            n = 3000 if part == "customers" else 600
            assert len(rows) == n
            needed = {"customers": {"first_purchase", "last_purchase", "last_contact", "frequency", "monetary", "previous_tier", "rising_months"},
                      "cases": {"opened_at", "severity", "tier", "kind", "status", "prior_complaints", "failure", "score"}}[part]
            assert needed <= set(h.columns)


def test_dates_are_excel_dates_with_date_formats(books, rs):
    _, rows, _ = read(books["en"], "Customers", rs)
    kinds = collections.Counter(type(r["last_purchase"]).__name__ for r in rows)
    assert kinds["date"] > 2950
    _, rows, _ = read(books["zh"], "工单", rs)
    opened = [r["opened_at"] for r in rows if isinstance(r["opened_at"], dt.datetime)]
    assert len(opened) > 590 and all(t.second == 0 and t <= AS_OF for t in opened)
    assert any(t.weekday() >= 5 for t in opened) and any(t.hour < 7 for t in opened)
    assert any(AS_OF - t < dt.timedelta(hours=3) for t in opened)
    with zipfile.ZipFile(books["zh"]) as z:
        styles = z.read("xl/styles.xml").decode()
    assert 'formatCode="yyyy/m/d"' in styles and 'formatCode="yyyy-mm-dd hh:mm"' in styles


# ------------------------------------------------------------------ what the rules make of them
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_tier_occurs_in_a_realistic_spread(evaluated, rs, lang):
    _, rows, ev = evaluated[lang]["customers"]
    tiers = collections.Counter(t for t in ev.columns["tier"] if t is not None)
    allowed = rs.tables["tier"].output("tier").allowed
    assert set(tiers) == set(allowed)
    n = len(rows)
    assert 0.01 * n <= tiers["VIP"] <= 0.05 * n
    assert tiers.most_common(1)[0][0] == "Regular" and tiers["Regular"] > 0.4 * n
    for t in ("High value", "Potential", "New", "Churn risk"):
        assert tiers[t] >= 0.03 * n, t


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_next_contacts_both_overdue_and_not(evaluated, lang):
    _, _, ev = evaluated[lang]["customers"]
    nexts = [d for d in ev.columns["next_contact"] if d is not None]
    today = AS_OF.date()
    day = lambda d: d.date() if isinstance(d, dt.datetime) else d  # noqa: E731
    overdue = sum(1 for d in nexts if day(d) < today)
    assert 0.15 * len(nexts) < overdue < 0.6 * len(nexts)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_escalation_level_occurs(evaluated, lang):
    _, _, ev = evaluated[lang]["cases"]
    levels = collections.Counter(lv for lv in ev.columns["level"] if lv is not None)
    assert set(levels) == {0, 1, 2, 3}
    assert min(levels.values()) >= 10
    assert any(r is not None for r in ev.columns["respond_by"]) and any(o for o in ev.columns["offer"])


# ------------------------------------------------------------------ bad cells
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bad_cells_are_in_the_book_as_planted(books, lang):
    book = build_sample(lang=lang)
    kinds = collections.Counter(b.kind for b in book.bad)
    assert set(kinds) == {"text-number", "number-as-text", "date-as-text", "bad-date", "error", "blank", "formula", "not-allowed"}
    n_customers = sum(1 for b in book.bad if b.sheet == SHEETS[lang]["customers"])
    assert 0.005 * 3000 <= n_customers <= 0.02 * 3000
    with open_workbook(books[lang]) as wb:
        sheets = {s: wb.read_sheet(s) for s in (SHEETS[lang]["customers"], SHEETS[lang]["cases"])}
        notes = wb.read_sheet(SHEETS[lang]["notes"])
    listed = {(r[0], r[1]) for r in notes.rows if len(r) > 1}
    for b in book.bad:
        got = sheets[b.sheet].value(b.row, col_index(b.cell.rstrip("0123456789")))
        if b.kind == "error":
            assert got == CellError("#N/A"), b
        elif b.kind == "formula":
            assert isinstance(b.written, Formula) and got == b.written.cached == b.value, b
        elif b.kind == "blank":
            assert got is None, b
        else:
            assert isinstance(got, str) and got == b.written, b
        assert (b.sheet, b.cell) in listed  # the notes sheet lists it


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bad_cells_give_the_expected_row_problems_and_nothing_else(evaluated, lang):
    book = build_sample(lang=lang)
    for part in ("customers", "cases"):
        h, rows, ev = evaluated[lang][part]
        mine = [b for b in book.bad if b.sheet == SHEETS[lang][part]]
        errors = {(p.index, p.name): p for p in ev.problems if p.severity == ERROR}
        expected = {(b.row - h.row - 1, b.key): b for b in mine if b.problem}
        assert set(errors) == set(expected)  # every bad cell reported, no good cell reported
        for key, b in expected.items():
            msg = errors[key].message
            if b.kind == "error":
                assert "#N/A" in msg
            elif b.kind == "not-allowed":
                assert "is not one of the allowed values" in msg
            else:
                assert f"'{b.written}' is not a " in msg
        for b in mine:
            if b.problem:
                continue
            i = b.row - h.row - 1
            assert ev.columns[b.key][i] == b.value, b  # read as the value it stands for (None for blanks)
        # Read correctly but worth a look: text-stored numbers and dates, and blank start
        # dates of deadlines / next contacts, are warnings on exactly their cells.
        warned = {(p.index, p.name) for p in ev.problems if p.severity != ERROR}
        expect = {(b.row - h.row - 1, b.key) for b in mine
                  if b.kind in ("number-as-text", "date-as-text") or (b.kind == "blank" and b.key in ("last_contact", "opened_at"))}
        assert warned == expect


def test_committed_samples_are_current(books):
    """workbooks/sample_*.xlsx hold what write_samples makes now (cell by cell)."""
    for lang, fresh in books.items():
        committed = ROOT / "workbooks" / fresh.name
        assert committed.exists(), f"{committed} is missing; run write_samples('workbooks')"
        with open_workbook(committed) as a, open_workbook(fresh) as b:
            assert [s.name for s in a.sheets] == [s.name for s in b.sheets]
            for s in b.worksheets:
                assert a.read_sheet(s.name).rows == b.read_sheet(s.name).rows, (
                    f"{committed} is out of date; regenerate it with write_samples('workbooks')")


def test_refuses_an_unknown_language_or_a_too_small_sample():
    with pytest.raises(ValueError, match="lang must be one of en, zh"):
        build_sample(lang="fr")
    with pytest.raises(ValueError, match="at least 100 customers"):
        build_sample(n_customers=10)
