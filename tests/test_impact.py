"""cxrules impact: a rule change's effect on real rows, checked against an independent count.

The independent count: `cxrules recalc --output` on two copies of the sample workbook, one
with each rule set, read back with openpyxl and compared cell by cell in the test.
"""
import datetime as dt
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from books import make_book
from cxrules import rulesets
from cxrules.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "workbooks" / "sample_en.xlsx"
AS_OF = "2026-11-23 10:00"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def changed_rules(folder: Path) -> Path:
    """The bundled rules with a lower VIP line, a faster High value cadence and a bigger coupon."""
    shutil.copytree(rulesets.bundled_rules_dir(), folder)
    edit(folder / "tier.yaml", '">= 500000"', '">= 100000"')
    edit(folder / "contact.yaml", '[High value, "-",               "-",     7d,    Phone,',
         '[High value, "-",               "-",     3d,    Phone,')
    edit(folder / "compensation.yaml", '[">= 1", "-",  Coupon CNY 10,                                  10]',
         '[">= 1", "-",  Coupon CNY 10,                                  15]')
    return folder


def recalculated(rules: Path, dst: Path) -> dict[str, list[dict]]:
    """The sample recalculated with `rules`, each data sheet as a list of {header: value}."""
    r = run("recalc", SAMPLE, "--rules", rules, "--as-of", AS_OF, "--output", dst, "--silent")
    assert r.exit_code == 0, r.output
    wb = openpyxl.load_workbook(dst)
    out = {}
    for name, header_row in (("Customers", 3), ("Cases", 1)):
        ws = wb[name]
        rows = list(ws.iter_rows(min_row=header_row, values_only=True))
        head = rows[0]
        out[name] = [dict(zip(head, r), _row=header_row + 1 + i) for i, r in enumerate(rows[1:]) if any(v is not None for v in r)]
    return out


@pytest.fixture(scope="module")
def sample_impact(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("impact")
    new = changed_rules(tmp / "new")
    before = recalculated(rulesets.bundled_rules_dir(), tmp / "before.xlsx")
    after = recalculated(new, tmp / "after.xlsx")
    r = run("impact", SAMPLE, "--rules", new, "--base", rulesets.bundled_rules_dir(), "--as-of", AS_OF, "--json",
            "--output", tmp / "report.xlsx")
    assert r.exit_code == 0, r.output
    return json.loads(r.output), before, after, tmp


def change(rep, label):
    return next(c for c in rep["changes"] if c["label"] == label)


def transitions(c) -> dict:
    return {(t["from"], t["to"]): t["count"] for t in c["transitions"]}


def pairs(before, after, sheet):
    assert [r["_row"] for r in before[sheet]] == [r["_row"] for r in after[sheet]]
    return list(zip(before[sheet], after[sheet]))


def test_tier_transitions_match_two_recalculated_copies(sample_impact):
    rep, before, after, _ = sample_impact
    want = Counter((b["Tier"], a["Tier"]) for b, a in pairs(before, after, "Customers") if b["Tier"] != a["Tier"])
    assert want and set(want) == {("High value", "VIP")}  # the test's own edit does something
    assert transitions(change(rep, "Tier")) == dict(want)
    ids = {a["Customer ID"] for b, a in pairs(before, after, "Customers") if b["Tier"] != a["Tier"]}
    rows = [r for t in change(rep, "Tier")["transitions"] for r in t["rows"]]
    assert {r["key"] for r in rows} == ids and {r["sheet"] for r in rows} == {"Customers"}


def test_cadence_channel_and_next_contact_match(sample_impact):
    rep, before, after, _ = sample_impact
    ps = pairs(before, after, "Customers")
    for label in ("Contact every", "Channel", "Contact purpose"):
        want = Counter((b[label], a[label]) for b, a in ps if b[label] != a[label])
        assert transitions(change(rep, label)) == dict(want), label
    moved = Counter(f"{'+' if d > 0 else '-'}{abs(d)} day{'s' if abs(d) != 1 else ''}"
                    for d in ((a["Next contact"] - b["Next contact"]).days for b, a in ps
                              if b["Next contact"] and a["Next contact"] and b["Next contact"] != a["Next contact"]))
    assert moved and {t: n for (_, t), n in transitions(change(rep, "Next contact")).items()} == dict(moved)


def test_overdue_rows_match(sample_impact):
    rep, before, after, _ = sample_impact
    became, stopped = set(), set()
    for sheet in ("Customers", "Cases"):
        for b, a in pairs(before, after, sheet):
            lb, la = bool(b.get("Days overdue")), bool(a.get("Days overdue"))
            if la and not lb:
                became.add((sheet, a["_row"]))
            if lb and not la:
                stopped.add((sheet, a["_row"]))
    assert became and stopped
    assert {(r["sheet"], r["row"]) for r in rep["overdue"]["became_rows"]} == became
    assert {(r["sheet"], r["row"]) for r in rep["overdue"]["no_longer_rows"]} == stopped
    assert (rep["overdue"]["became"], rep["overdue"]["no_longer"]) == (len(became), len(stopped))


def test_contacts_per_week_by_channel_before_and_after(sample_impact):
    rep, before, after, _ = sample_impact
    monday = dt.date(2026, 11, 23)

    def per_week(rows):
        c = Counter()
        for r in rows:
            day = r["Next contact"]
            if day is not None:
                day = day.date() if isinstance(day, dt.datetime) else day
                start = day - dt.timedelta(days=day.weekday())
                c[("earlier" if start < monday else start.isoformat(), r["Channel"])] += 1
        return c

    s = next(s for s in rep["schedules"] if s["due"] == "Next contact")
    assert s["by"] == "Channel"
    got_b = {(w["week"], w["group"]): w["before"] for w in s["weeks"] if w["before"]}
    got_a = {(w["week"], w["group"]): w["after"] for w in s["weeks"] if w["after"]}
    assert got_b == dict(per_week(before["Customers"]))
    assert got_a == dict(per_week(after["Customers"]))
    assert got_a != got_b
    # the steady rate: 7 days / the cadence, per channel
    rate = Counter()
    for r in after["Customers"]:
        if r["Contact every"]:
            rate[r["Channel"]] += 7 / int(r["Contact every"].rstrip("d"))
    assert {g: v["after"] for g, v in s["per_week_at_cadence"].items()} == {g: round(v, 2) for g, v in rate.items()}


def test_compensation_cost_before_and_after(sample_impact):
    rep, before, after, _ = sample_impact
    total = next(t for t in rep["totals"] if t["label"] == "Offer value (CNY)")
    b = sum(r["Offer value"] or 0 for r in before["Cases"])
    a = sum(r["Offer value"] or 0 for r in after["Cases"])
    assert a > b
    assert (total["before"], total["after"]) == (b, a)


def test_every_changed_row_is_listed(sample_impact):
    rep, before, after, _ = sample_impact
    want = set()
    for sheet in ("Customers", "Cases"):
        for b, a in pairs(before, after, sheet):
            keys = set(b) - {"_row", "Days overdue"}
            if any(b[k] != a[k] for k in keys) or bool(b.get("Days overdue")) != bool(a.get("Days overdue")):
                want.add((sheet, a["_row"]))
    assert {(r["sheet"], r["row"]) for r in rep["rows_changed"]} == want
    assert rep["changed_rows"] == len(want) and not rep["no_change"]


def test_report_workbook_has_summary_charts_and_changed_rows(sample_impact):
    rep, _, _, tmp = sample_impact
    wb = openpyxl.load_workbook(tmp / "report.xlsx")
    assert wb.sheetnames == ["CX impact", "CX impact rows"]
    summary = wb["CX impact"]
    assert len(summary._charts) >= 3
    cells = {r[0]: r[1:] for r in summary.iter_rows(values_only=True) if r and r[0]}
    assert cells["Rows that change"][0] == rep["changed_rows"]
    assert cells["High value -> VIP"][0] == transitions(change(rep, "Tier"))[("High value", "VIP")]
    lines = list(wb["CX impact rows"].iter_rows(values_only=True))
    assert lines[0] == ("Workbook", "Sheet", "Row", "Key", "Result", "From", "To")
    assert len(lines) - 1 == sum(len(r["changes"]) for r in rep["rows_changed"])
    tier = [x for x in lines[1:] if x[4] == "Tier"]
    assert {x[3] for x in tier} == {r["key"] for t in change(rep, "Tier")["transitions"] for r in t["rows"]}
    assert all((x[5], x[6]) == ("High value", "VIP") for x in tier)


def test_terminal_report_names_the_transitions(tmp_path):
    new = changed_rules(tmp_path / "new")
    r = run("impact", SAMPLE, "--rules", new, "--as-of", AS_OF)
    assert r.exit_code == 0, r.output
    assert "Tier (tier):" in r.output and "High value  VIP" in r.output
    assert "Next contact per week, by Channel (before -> after)" in r.output
    assert "Rows that change (" in r.output and "Customers row" in r.output


def test_identical_rules_say_no_change(tmp_path):
    same = tmp_path / "same"
    shutil.copytree(rulesets.bundled_rules_dir(), same)
    r = run("impact", SAMPLE, "--rules", same, "--base", rulesets.bundled_rules_dir(), "--as-of", AS_OF)
    assert r.exit_code == 0, r.output
    assert "no change: the new rules give the same results on all 3663 rows" in r.output
    assert "Rows that change" not in r.output


def test_a_bad_new_rule_set_is_a_located_error(tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(rulesets.bundled_rules_dir(), bad)
    edit(bad / "tier.yaml", "hit: first", "hit: sometimes")
    r = run("impact", SAMPLE, "--rules", bad, "--as-of", AS_OF)
    assert r.exit_code == 1
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
    first = r.output.splitlines()[0]
    assert "tier.yaml:" in first and "sometimes" in first


def test_a_missing_workbook_is_one_line(tmp_path):
    r = run("impact", tmp_path / "nope.xlsx", "--rules", rulesets.bundled_rules_dir())
    assert r.exit_code == 1 and "nope.xlsx" in r.output and "Traceback" not in r.output


def test_an_existing_report_is_replaced_only_with_force(tmp_path):
    out = tmp_path / "report.xlsx"
    shutil.copy(SAMPLE, out)
    book = small_book(tmp_path)
    r = run("impact", book, "--rules", rulesets.bundled_rules_dir(), "--as-of", AS_OF, "--output", out)
    assert r.exit_code == 1 and "--force" in r.output
    assert openpyxl.load_workbook(out).sheetnames[0] == "Customers"
    r = run("impact", book, "--rules", rulesets.bundled_rules_dir(), "--as-of", AS_OF, "--output", out, "--force")
    assert r.exit_code == 0 and openpyxl.load_workbook(out).sheetnames == ["CX impact", "CX impact rows"]


# ------------------------------------------------------------------ git revisions
HEAD = ["Customer ID", "Last purchase", "Orders 12m", "Spend 12m", "Last contact"]


def small_book(tmp_path: Path) -> Path:
    rows = [["C1", dt.datetime(2026, 11, 13), 6, 8000, dt.datetime(2026, 11, 18)],  # High value
            ["C2", dt.datetime(2026, 11, 20), 12, 200000, dt.datetime(2026, 11, 1)],  # High value; VIP at 100000
            ["C3", dt.datetime(2026, 10, 1), 2, 900, dt.datetime(2026, 11, 1)]]
    return make_book(tmp_path / "customers.xlsx", HEAD, rows, "Customers")


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": __import__("os").environ["PATH"], "HOME": str(cwd)})


@pytest.fixture
def repo(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(rulesets.bundled_rules_dir(), root / "rules")
    git(root, "init", "-q")
    git(root, "add", "rules")
    git(root, "commit", "-q", "-m", "rules in force")
    git(root, "tag", "v1")
    edit(root / "rules" / "tier.yaml", '">= 500000"', '">= 100000"')  # the working copy: a lower VIP line
    monkeypatch.chdir(root)
    monkeypatch.delenv("CXRULES_RULES", raising=False)
    return root


@pytest.mark.parametrize("base", ["HEAD", "v1", "HEAD:rules", "v1:./rules"])
def test_base_as_a_git_revision(repo, tmp_path, base):
    book = small_book(tmp_path)
    r = run("impact", book, "--rules", "rules", "--base", base, "--as-of", AS_OF, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    tier = change(rep, "Tier")
    assert transitions(tier) == {("High value", "VIP"): 1} and tier["transitions"][0]["rows"][0]["key"] == "C2"
    assert rep["base"]["rules"].endswith("rules") and ":" in rep["base"]["rules"]


def test_new_rules_as_a_git_revision(repo, tmp_path):
    git(repo, "commit", "-q", "-am", "lower VIP line")
    edit(repo / "rules" / "tier.yaml", '">= 100000"', '">= 500000"')  # the working copy back as it was
    r = run("impact", small_book(tmp_path), "--rules", "HEAD:rules", "--base", "rules", "--as-of", AS_OF, "--json")
    assert r.exit_code == 0, r.output
    assert transitions(change(json.loads(r.output), "Tier")) == {("High value", "VIP"): 1}


def test_a_missing_revision_or_path_is_one_line(repo, tmp_path):
    book = small_book(tmp_path)
    r = run("impact", book, "--rules", "rules", "--base", "v9")
    assert r.exit_code == 1 and "no revision 'v9'" in r.output and len(r.output.strip().splitlines()) == 1
    r = run("impact", book, "--rules", "rules", "--base", "HEAD:nothing")
    assert r.exit_code == 1 and "has no 'nothing'" in r.output and len(r.output.strip().splitlines()) == 1


def test_a_bad_rule_file_at_a_revision_is_named_by_revision(repo, tmp_path):
    edit(repo / "rules" / "tier.yaml", "hit: first", "hit: sometimes")
    git(repo, "commit", "-q", "-am", "broken")
    r = run("impact", small_book(tmp_path), "--rules", "HEAD:rules", "--base", "v1:rules")
    assert r.exit_code == 1 and r.output.startswith("HEAD:rules/tier.yaml:")


def test_no_git_is_one_line(repo, tmp_path, monkeypatch):
    book = small_book(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    r = run("impact", book, "--rules", "rules", "--base", "HEAD")
    assert r.exit_code == 1 and "git is not installed" in r.output and "Traceback" not in r.output


def test_a_folder_outside_git_and_no_such_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(rulesets.bundled_rules_dir(), tmp_path / "rules")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    r = run("impact", small_book(tmp_path), "--rules", "rules", "--base", "nowhere")
    assert r.exit_code == 1 and "not in a git repository" in r.output


def test_a_chinese_workbook_gets_a_chinese_report(tmp_path):
    new = changed_rules(tmp_path / "new")
    out = tmp_path / "report.xlsx"
    r = run("impact", ROOT / "workbooks" / "sample_zh.xlsx", "--rules", new, "--as-of", AS_OF, "--json", "--output", out)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["CX 规则变更影响", "CX 变更明细"]
    cells = {row[0]: row[1:] for row in wb["CX 规则变更影响"].iter_rows(values_only=True) if row and row[0]}
    assert cells["高价值客户 -> 贵宾客户"][0] == transitions(change(rep, "Tier"))[("High value", "VIP")] > 0
    assert cells["结果变化的行数"][0] == rep["changed_rows"]


def test_swapping_the_rule_sets_swaps_every_figure(tmp_path):
    new = changed_rules(tmp_path / "new")
    book = small_book(tmp_path)
    old = rulesets.bundled_rules_dir()
    there = json.loads(run("impact", book, "--rules", new, "--base", old, "--as-of", AS_OF, "--json").output)
    back = json.loads(run("impact", book, "--rules", old, "--base", new, "--as-of", AS_OF, "--json").output)
    for c in there["changes"]:
        d = change(back, c["label"])
        assert d["changed"] == c["changed"]
        if c["kind"] != "due":
            assert {(t, f): n for (f, t), n in transitions(c).items()} == transitions(d)
    assert (there["overdue"]["became"], there["overdue"]["no_longer"]) == (back["overdue"]["no_longer"], back["overdue"]["became"])
    for t, u in zip(there["totals"], back["totals"]):
        assert (t["before"], t["after"]) == (u["after"], u["before"])
    assert there["changed_rows"] == back["changed_rows"] > 0


def test_an_output_that_is_a_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    import cxrules.impact

    def no_work(*a, **k):
        raise AssertionError("the rows were evaluated before --output was checked")

    monkeypatch.setattr(cxrules.impact, "impact", no_work)
    folder = tmp_path / "reports"
    folder.mkdir()
    r = run("impact", small_book(tmp_path), "--rules", rulesets.bundled_rules_dir(), "--as-of", AS_OF, "--output", folder)
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert r.output == f"Error: {folder}: is a folder; give --output the name of a workbook file, e.g. {folder / 'report.xlsx'}\n"
    assert list(folder.iterdir()) == []


def test_a_single_rule_file_at_a_revision_is_named_once(repo, tmp_path):
    r = run("impact", small_book(tmp_path), "--rules", "HEAD:rules/tier.yaml", "--base", "v1:rules")
    assert r.exit_code == 1 and r.output.startswith("HEAD:rules/tier.yaml:11, table 'tier'"), r.output
