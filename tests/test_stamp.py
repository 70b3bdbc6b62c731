"""Every recalculated workbook is stamped (version, rules hash and git revision, as-of, options)
in its summary sheet and custom document properties, and `cxrules verify` replays it."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from lxml import etree
from openpyxl.packaging.custom import IntProperty, StringProperty

import cxrules
from cxrules.cli import cli
from cxrules.workbook import open_workbook

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-23 10:00"
HEADER = ["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Last contact"]
ROWS = [
    ["A", dt.datetime(2026, 11, 1), 14, 600000, dt.datetime(2026, 11, 10)],  # VIP by spend
    ["B", dt.datetime(2026, 11, 13), 8, 200000, dt.datetime(2026, 11, 1)],  # high value; VIP once the line is 100000
    ["C", dt.datetime(2026, 3, 1), 1, 200, None],  # churn risk
]
NS_CUSTOM = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
NS_VT = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"


@pytest.fixture
def rules(tmp_path) -> Path:
    """A copy of the bundled rules outside any git work tree."""
    return Path(shutil.copytree(ROOT / "rules", tmp_path / "rules"))


def _book(path: Path, props=(), rows=ROWS, header=HEADER) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(header)
    for r in rows:
        ws.append(r)
    for p in props:
        wb.custom_doc_props.append(p)
    wb.save(path)
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _recalc(book, rules, *more, as_of=AS_OF):
    r = run("recalc", book, "--as-of", as_of, "--rules", rules, "-s", *more)
    assert r.exit_code == 0, r.output
    return r


def _hash_by_hand(folder: Path) -> str:
    """The hash as docs/recalc.md says to compute it."""
    listing = ""
    for f in sorted(folder.glob("*.yaml"), key=lambda p: p.name):
        data = f.read_bytes().removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        listing += f"{hashlib.sha256(data).hexdigest()}  {f.name}\n"
    return "sha256:" + hashlib.sha256(listing.encode()).hexdigest()


def _props(book: Path) -> dict:
    return {p.name: p.value for p in openpyxl.load_workbook(book).custom_doc_props.props}


def _pids(book: Path) -> dict:
    root = etree.fromstring(zipfile.ZipFile(book).read("docProps/custom.xml"))
    return {p.get("name"): p.get("pid") for p in root}


def _summary(book: Path) -> list[list]:
    rows = openpyxl.load_workbook(book)["CX summary"].iter_rows(values_only=True)
    return [[v for v in r if v is not None] for r in rows]


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


# ------------------------------------------------------------------ the stamp
def test_the_stamp_is_in_the_summary_sheet_and_the_custom_properties(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx")
    _recalc(book, rules)
    digest = _hash_by_hand(rules)
    assert _props(book) == {"cxrules version": cxrules.__version__, "cxrules rules hash": digest,
                            "cxrules as of": "2026-11-23 10:00:00"}
    assert _summary(book)[:7] == [
        ["CX summary"], ["Workbook", "book.xlsx"], ["As of", "2026-11-23 10:00"], ["Rules", f"{rules} (10 files)"],
        ["cxrules", cxrules.__version__], ["Rules hash", digest], [],
    ]
    # the package links the part, and gives it its content type
    z = zipfile.ZipFile(book)
    assert b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties" ' \
           b'Target="docProps/custom.xml"' in z.read("_rels/.rels")
    assert b'<Override PartName="/docProps/custom.xml" ContentType="application/vnd.openxmlformats-officedocument.' \
           b'custom-properties+xml"/>' in z.read("[Content_Types].xml")


def test_the_rules_hash_ignores_line_ends_a_bom_and_the_folder_but_not_an_edit(tmp_path, rules):
    windows = tmp_path / "elsewhere" / "rules-crlf"
    windows.mkdir(parents=True)
    for f in rules.glob("*.yaml"):
        (windows / f.name).write_bytes(b"\xef\xbb\xbf" + f.read_bytes().replace(b"\n", b"\r\n"))
    books = [_book(tmp_path / f"{k}.xlsx") for k in range(3)]
    _recalc(books[0], rules)
    _recalc(books[1], windows)
    tier = rules / "tier.yaml"
    tier.write_text(tier.read_text(encoding="utf-8") + "# reviewed in Q4\n", encoding="utf-8")
    _recalc(books[2], rules)
    hashes = [_props(b)["cxrules rules hash"] for b in books]
    assert hashes[0] == hashes[1] == _hash_by_hand(windows) != hashes[2] == _hash_by_hand(rules)


def test_options_that_change_results_are_stamped_and_replayed_by_verify(tmp_path, rules):
    """03/11/2026 is the 3rd of November with --dayfirst (a recent buyer), the 11th of March
    without (a lapsed one); 'Total spend' reads as the spend only through --map."""
    header = ["Customer", "Last purchase", "Orders 12m", "Total spend", "Last contact"]
    rows = [["A", "03/11/2026", 8, 8000, dt.datetime(2026, 11, 10)], ["B", "01/11/2026", 1, 100, None]]
    book, plain = _book(tmp_path / "book.xlsx", rows=rows, header=header), _book(tmp_path / "plain.xlsx", rows=rows, header=header)
    _recalc(book, rules, "--dayfirst", "--map", "Customers!Total spend=monetary")
    _recalc(plain, rules, "--map", "Customers!Total spend=monetary")
    tiers = [[r[5] for r in openpyxl.load_workbook(b)["Customers"].iter_rows(min_row=2, values_only=True)] for b in (book, plain)]
    assert tiers == [["High value", "Regular"], ["Churn risk", "Churn risk"]]  # the option matters here

    assert _props(book)["cxrules options"] == "--dayfirst --map 'Customers!Total spend=monetary'"
    assert ["Options", "--dayfirst --map 'Customers!Total spend=monetary'"] in _summary(book)
    r = run("verify", book, "--rules", rules)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1] == "  recomputed with the stamped options: --dayfirst --map 'Customers!Total spend=monetary'"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_git_revision_of_the_rules_is_stamped_and_marked_dirty_after_an_edit(tmp_path, rules, monkeypatch):
    def git(*args):
        return subprocess.run(["git", "-C", str(rules), "-c", "user.name=t", "-c", "user.email=t@example.com",
                               "-c", "commit.gpgsign=false", *args], check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "rules")
    first = git("rev-parse", "HEAD")
    (rules / "README.txt").write_text("not a rule file")  # uncommitted, but not rules: not dirty
    book = _book(tmp_path / "book.xlsx")
    _recalc(book, rules)
    assert _props(book)["cxrules rules revision"] == first
    assert ["Rules revision (git)", first] in _summary(book)

    # a later commit that leaves the rule files alone leaves the stamp alone
    before = _bytes(book)
    git("add", "README.txt")
    git("commit", "-qm", "readme")
    assert git("rev-parse", "HEAD") != first
    _recalc(book, rules)
    assert _bytes(book) == before

    tier = rules / "tier.yaml"
    tier.write_text(tier.read_text(encoding="utf-8") + "# draft\n", encoding="utf-8")
    _recalc(book, rules)
    assert _props(book)["cxrules rules revision"] == first + "-dirty"

    # without git the stamp has no revision, and the one an earlier run wrote is taken away
    empty = tmp_path / "no-git"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    _recalc(book, rules)
    assert "cxrules rules revision" not in _props(book)
    assert not [r for r in _summary(book) if r[:1] == ["Rules revision (git)"]]


def test_custom_properties_a_workbook_has_are_kept_and_a_rerun_writes_the_same_bytes(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx", [StringProperty(name="Project", value="Q4 review"), IntProperty(name="Batch", value=7)])
    _recalc(book, rules)
    props = _props(book)
    assert (props["Project"], props["Batch"]) == ("Q4 review", 7)
    assert _pids(book) == {"Project": "2", "Batch": "3", "cxrules version": "4", "cxrules rules hash": "5", "cxrules as of": "6"}
    first = _bytes(book)
    _recalc(book, rules)
    assert _bytes(book) == first

    # another as-of: only ours change, each keeping its pid and place
    _recalc(book, rules, as_of="2026-11-24 09:30")
    assert _props(book) == {**props, "cxrules as of": "2026-11-24 09:30:00"}
    assert list(_pids(book).items()) == [("Project", "2"), ("Batch", "3"), ("cxrules version", "4"),
                                         ("cxrules rules hash", "5"), ("cxrules as of", "6")]


def _rewrite_part(book: Path, name: str, data: bytes) -> None:
    with zipfile.ZipFile(book) as z:
        parts = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as z:
        for info, old in parts:
            z.writestr(info, data if info.filename == name else old)


def test_custom_properties_in_a_writers_own_prefixes_are_updated_in_them(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx", [StringProperty(name="Project", value="Q4 review")])
    _rewrite_part(book, "docProps/custom.xml", (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<op:Properties xmlns:op="{NS_CUSTOM}" xmlns:v="{NS_VT}">'
        '<op:property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="Project"><v:lpwstr>Q4 review</v:lpwstr>'
        '</op:property></op:Properties>').encode())
    _recalc(book, rules)
    xml = zipfile.ZipFile(book).read("docProps/custom.xml")
    root = etree.fromstring(xml)
    assert [(etree.QName(p).namespace, [etree.QName(c).namespace for c in p]) for p in root] == [(NS_CUSTOM, [NS_VT])] * 4
    assert b"<op:property" in xml and b"<v:lpwstr>sha256:" in xml and b"xmlns:vt" not in xml
    assert _props(book)["Project"] == "Q4 review" and _props(book)["cxrules as of"] == "2026-11-23 10:00:00"
    first = _bytes(book)
    _recalc(book, rules)
    assert _bytes(book) == first


def test_damaged_custom_properties_are_left_as_they_are_and_said(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx", [StringProperty(name="Project", value="Q4 review")])
    _rewrite_part(book, "docProps/custom.xml", b"<Properties><property")
    r = run("recalc", book, "--as-of", AS_OF, "--rules", rules)
    assert r.exit_code == 0, r.output
    assert ("  warning: the workbook's custom document properties (docProps/custom.xml) are damaged, so the stamp "
            "(version, rules hash, as-of) is only on the summary sheet (open the workbook in Excel and save it, "
            "then run cxrules again)") in r.output.splitlines()
    assert zipfile.ZipFile(book).read("docProps/custom.xml") == b"<Properties><property"
    with open_workbook(book) as wb:  # openpyxl cannot open it: it reads the damaged part
        assert ["Rules hash", _hash_by_hand(rules)] in [r[:2] for r in wb.read_sheet("CX summary").rows]


# ------------------------------------------------------------------ cxrules verify
def test_verify_passes_on_a_fresh_result(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx")
    _recalc(book, rules)
    r = run("verify", book, "--rules", rules)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        f"{book}: the results match the rules (as of 2026-11-23 10:00; 24 result cells in 3 rows)",
        f"  rules hash {_hash_by_hand(rules)} ({rules}), as stamped",
    ]


def test_verify_names_the_cells_a_person_changed(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx")
    _recalc(book, rules)
    wb = openpyxl.load_workbook(book)
    ws = wb["Customers"]
    assert (ws["F2"].value, ws["L4"].value) == ("VIP", None)
    ws["F2"] = "Regular"  # a tier typed over
    ws["L4"] = dt.datetime(2026, 12, 1)  # a next contact filled in by hand
    wb.save(book)
    r = run("verify", book, "--rules", rules)
    assert r.exit_code == 1
    assert r.output.splitlines() == [
        f"{book}: 2 result cells in 2 rows differ from what the rules give (as of 2026-11-23 10:00)",
        f"  rules hash {_hash_by_hand(rules)} ({rules}), as stamped",
        "  Customers row 2, column F (Tier): stamped 'Regular', recomputed 'VIP'",
        "  Customers row 4, column L (Next contact): stamped 2026-12-01, recomputed (blank)",
    ]
    out = json.loads(run("verify", book, "--rules", rules, "--json").output)
    assert (out["match"], out["results_match"], out["hash_matches"]) == (False, False, True)
    assert out["differences"] == [
        {"sheet": "Customers", "row": 2, "column": "F", "header": "Tier", "stamped": "Regular", "recomputed": "VIP"},
        {"sheet": "Customers", "row": 4, "column": "L", "header": "Next contact", "stamped": "2026-12-01", "recomputed": None},
    ]


def test_verify_after_a_rule_change_says_the_hash_changed_and_which_rows_differ(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx")
    _recalc(book, rules)
    stamped = _hash_by_hand(rules)
    tier = rules / "tier.yaml"
    text = tier.read_text(encoding="utf-8")
    assert text.count('">= 500000"') == 1
    tier.write_text(text.replace('">= 500000"', '">= 100000"'), encoding="utf-8")  # the VIP line lowered
    r = run("verify", book, "--rules", rules)
    assert r.exit_code == 1
    # only B (row 3, spend 200000) moves: High value -> VIP, and its contact plan with it
    assert r.output.splitlines() == [
        f"{book}: 7 result cells in 1 row differ from what the rules give (as of 2026-11-23 10:00)",
        f"  rules hash {_hash_by_hand(rules)} ({rules}); the stamp says {stamped}: the rule files changed since",
        "  Customers row 3, column F (Tier): stamped 'High value', recomputed 'VIP'",
        "  Customers row 3, column G (Tier reason): stamped 'RFM high value', recomputed 'Annual spend of 500000 or more'",
        "  Customers row 3, column H (Contact every): stamped '7d', recomputed '14d'",
        "  Customers row 3, column I (Channel): stamped 'Phone', recomputed 'Phone (account manager)'",
        "  Customers row 3, column J (Contact purpose): stamped 'Weekly reminder to the account owner', "
        "recomputed 'Care call - not a sales call'",
        "  Customers row 3, column L (Next contact): stamped 2026-11-08, recomputed 2026-11-15",
        "  Customers row 3, column M (Days overdue): stamped 15, recomputed 8",
    ]


def test_verify_with_a_rule_file_edited_but_the_same_results_fails_on_the_hash(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx")
    _recalc(book, rules)
    stamped = _hash_by_hand(rules)
    with open(rules / "contact.yaml", "a", encoding="utf-8") as f:
        f.write("# cadence reviewed, nothing changed\n")
    r = run("verify", book, "--rules", rules)
    assert r.exit_code == 1
    assert r.output.splitlines() == [
        f"{book}: the results match, but the rules are not the ones stamped (as of 2026-11-23 10:00; 24 result cells in 3 rows)",
        f"  rules hash {_hash_by_hand(rules)} ({rules}); the stamp says {stamped}: the rule files changed since",
    ]


def test_verify_of_a_workbook_never_recalculated_says_so_in_one_line(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx")
    r = run("verify", book, "--rules", rules)
    assert r.exit_code == 1
    assert r.output == (f"{book}: has no cxrules stamp (cxrules never recalculated it), so there is nothing to verify; "
                        "run cxrules recalc on it first\n")
    out = json.loads(run("verify", book, "--rules", rules, "--json").output)
    assert (out["stamped"], out["match"], out["message"]) == (False, False, r.output.strip())


def test_verify_of_a_stamp_edited_by_hand_says_which_property(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx")
    _recalc(book, rules)
    wb = openpyxl.load_workbook(book)
    props = wb.custom_doc_props
    as_of = next(p for p in props.props if p.name == "cxrules as of")
    as_of.value = "last Monday"
    wb.save(book)
    r = run("verify", book, "--rules", rules)
    assert r.exit_code == 1
    assert r.output == (f"Error: {book}: its stamp's 'cxrules as of' property ('last Monday') is not a date and time "
                        "(it was edited); recalculate it with cxrules recalc\n")


def test_verify_of_a_workbook_whose_result_column_was_deleted_says_what_was_not_checked(tmp_path, rules):
    book = _book(tmp_path / "book.xlsx")
    _recalc(book, rules)
    wb = openpyxl.load_workbook(book)
    assert wb["Customers"]["F1"].value == "Tier"
    wb["Customers"].delete_cols(6)
    wb.save(book)
    r = run("verify", book, "--rules", rules)
    assert r.exit_code == 1
    assert r.output.splitlines() == [
        f"{book}: some results could not be checked (as of 2026-11-23 10:00)",
        f"  rules hash {_hash_by_hand(rules)} ({rules}), as stamped",
        "  not checked: sheet 'Customers' has no column 'Tier', which the rules write",
    ]
