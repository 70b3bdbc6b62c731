"""Hostile input is bounded: zip bombs, ambiguous packages, YAML alias bombs, control characters.

Each refusal is checked as a user sees it: the exact message, the exit code, and the
workbook left byte for byte as it was. The 4 MB zip bomb runs in a child process whose
peak memory (max RSS, from wait4) must stay under 500 MB; its wall time is bench/hostile.py's.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from lxml import etree

from cxrules import package_guard
from cxrules.cli import cli, printable
from cxrules.loader import load_rules
from cxrules.xlsx_read import WorkbookError, open_workbook
from cxrules.xlsx_write import BarChart, ChartSeries, ColumnWrite, Highlight, NewSheet, SheetEdit, write_workbook

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
AS_OF = "2026-11-23 10:00"
MIB = 1 << 20
_spec = importlib.util.spec_from_file_location("bench_hostile", ROOT / "bench" / "hostile.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch):
    for var in (package_guard.ENV_PART, package_guard.ENV_TOTAL, package_guard.ENV_RATIO):
        monkeypatch.delenv(var, raising=False)


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


# Linux carries a process's peak RSS across fork and exec: a child forked from this (large)
# test process would report this process's size. A small launcher starts cxrules instead and
# reports the wait4 figure of its own child, whose peak starts from the launcher's few MB.
_LAUNCHER = """
import os, resource, signal, sys
cap = int(sys.argv[1]) * 1024 * 1024
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    signal.alarm(int(sys.argv[3]))  # kept across exec: a child past its time is ended
    os.execv(sys.executable, [sys.executable, "-m", "cxrules.cli", *sys.argv[4:]])
_, status, ru = os.wait4(pid, 0)
open(sys.argv[2], "w").write(str(ru.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(args, cwd, cap_mb=3000, timeout=120):
    """cxrules in a child process under an address-space cap, so a regression fails the test
    instead of filling the machine: (exit code, stdout, stderr, peak RSS in MB)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        rss_file = os.path.join(tmp, "rss")
        p = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(cap_mb), rss_file, str(timeout), *map(str, args)], cwd=cwd, env=env,
                             stdout=out, stderr=err)
        p.wait()
        out.seek(0)
        err.seek(0)
        rss = int(open(rss_file).read()) / 1024 if os.path.exists(rss_file) else float("inf")
        return p.returncode, out.read().decode(), err.read().decode(), rss


# ------------------------------------------------------------------ small packages, built by hand
CUSTOMERS = [["Customer ID", "Last purchase", "Orders 12m", "Spend 12m"], ["C1", 46300, 6, 8000], ["C2", 46000, 1, 50]]


def sheet_xml(rows, pad=b"") -> bytes:
    body = "".join(bench._row(i, r) for i, r in enumerate(rows, 1))
    return (bench.HEAD_XML + "<sheetData>" + body).encode() + pad + b"</sheetData></worksheet>"


def package(path, parts):
    """Write (name, bytes[, zip method]) parts in order; the same name may come twice."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name
        with zipfile.ZipFile(path, "w") as zf:
            for name, data, *method in parts:
                zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, method[0] if method else zipfile.ZIP_DEFLATED)
    return path


def base_parts(rows=CUSTOMERS, wb_rels=bench.WB_RELS, pad=b""):
    return [("[Content_Types].xml", bench.CT), ("_rels/.rels", bench.RELS), ("xl/workbook.xml", bench.WB),
            ("xl/_rels/workbook.xml.rels", wb_rels), ("xl/worksheets/sheet1.xml", sheet_xml(rows, pad))]


def refused(path, *extra, message, env=None):
    """recalc exits 1 with exactly this message, and the file is byte for byte as it was."""
    before = Path(path).read_bytes()
    r = run("recalc", path, "--as-of", AS_OF, "--rules", RULES, *extra, env=env)
    assert r.output == f"Error: {message}\n"
    assert r.exit_code == 1
    assert Path(path).read_bytes() == before


# ------------------------------------------------------------------ zip bombs
def test_a_4mb_zip_bomb_is_refused_before_it_is_unpacked_within_500mb(tmp_path):
    bomb = bench.make_bomb(tmp_path / "bomb.xlsx", 4000)
    info = zipfile.ZipFile(bomb).getinfo("xl/worksheets/sheet1.xml")
    assert 3.5e6 < bomb.stat().st_size < 5e6 and info.file_size > 4e9
    before = bomb.read_bytes()
    code, out, err, rss = run_child(["recalc", "bomb.xlsx", "--rules", RULES], tmp_path)
    assert err == (
        f"Error: bomb.xlsx: refused as a possible zip bomb: its part xl/worksheets/sheet1.xml unpacks to "
        f"{info.file_size / 1e9:.1f} GB from {info.compress_size / 1e6:.1f} MB, {info.file_size / info.compress_size:.0f} times its "
        "packed size (the limit is 100); if you trust the file, raise the limit with --max-ratio (or CXRULES_MAX_RATIO)\n")
    assert (code, out) == (1, "")
    assert rss < 500
    assert bomb.read_bytes() == before


def test_a_zip_entry_that_unpacks_past_its_declared_size_is_refused(tmp_path):
    bomb = bench.make_bomb(tmp_path / "liar.xlsx", 64, declared_mb=1)
    refused(bomb, message=f"{bomb}: refused as a possible zip bomb: its part xl/worksheets/sheet1.xml unpacks to more than "
                          "the 1.0 MB its zip entry declares")


def test_a_trusted_file_passes_with_a_raised_ratio(tmp_path):
    p = package(tmp_path / "sparse.xlsx", base_parts(pad=b" " * (8 * MIB)))
    info = zipfile.ZipFile(p).getinfo("xl/worksheets/sheet1.xml")
    ratio = info.file_size / info.compress_size
    assert ratio > 500
    refused(p, message=f"{p}: refused as a possible zip bomb: its part xl/worksheets/sheet1.xml unpacks to {info.file_size / 1e6:.1f} MB "
                       f"from {info.compress_size / 1e3:.1f} KB, {ratio:.0f} times its packed size (the limit is 100); "
                       "if you trust the file, raise the limit with --max-ratio (or CXRULES_MAX_RATIO)")
    before = p.read_bytes()
    r = run("recalc", p, "--as-of", AS_OF, "--rules", RULES, "--max-ratio", "2000", "-s")
    assert r.exit_code == 0, r.output
    assert p.read_bytes() != before
    ws = openpyxl.load_workbook(p)["Customers"]
    assert [c.value for c in ws[1]][4] == "Tier" and ws["E2"].value == "High value"


def test_part_and_total_size_limits_name_their_option_and_variable(tmp_path):
    rows = CUSTOMERS + [[f"C{i}", 46000 + i % 300, i % 9, i * 7 % 9000] for i in range(3, 20000)]
    p = package(tmp_path / "big.xlsx", base_parts(rows))
    size = zipfile.ZipFile(p).getinfo("xl/worksheets/sheet1.xml").file_size
    total = sum(i.file_size for i in zipfile.ZipFile(p).infolist())
    part_msg = (f"{p}: refused as a possible zip bomb: its part xl/worksheets/sheet1.xml unpacks to {size / 1e6:.1f} MB "
                "(the limit is 1.0 MB per part); if you trust the file, raise the limit with --max-part-size (or CXRULES_MAX_PART_SIZE)")
    refused(p, "--max-part-size", "1M", message=part_msg)
    refused(p, message=part_msg, env={"CXRULES_MAX_PART_SIZE": "1MB"})
    refused(p, "--max-total-size", "2M", message=f"{p}: refused as a possible zip bomb: its parts unpack to {total / 1e6:.1f} MB in all "
                                                 "(the limit is 2.0 MB); if you trust the file, raise the limit with --max-total-size (or CXRULES_MAX_TOTAL_SIZE)")
    # the option wins over the variable, and a raised limit lets the file through
    r = run("recalc", p, "--as-of", AS_OF, "--rules", RULES, "--dry-run", "--max-part-size", "1G", env={"CXRULES_MAX_PART_SIZE": "1M"})
    assert r.exit_code == 0, r.output


def test_limit_values_that_are_not_sizes_are_refused(tmp_path):
    p = package(tmp_path / "c.xlsx", base_parts())
    r = run("recalc", p, "--rules", RULES, "--max-part-size", "lots")
    assert r.exit_code == 2
    assert r.output.endswith("Error: Invalid value for '--max-part-size': 'lots' is not a size; write it like 500M or 4G\n")
    r = run("recalc", p, "--rules", RULES, env={"CXRULES_MAX_RATIO": "0.5"})
    assert (r.exit_code, r.output) == (1, "Error: the environment variable CXRULES_MAX_RATIO: '0.5' is not a ratio; write it like 100 or 500\n")


# ------------------------------------------------------------------ ambiguous packages
@pytest.mark.parametrize("second, shown", [
    ("xl/worksheets/sheet1.xml", "'xl/worksheets/sheet1.xml' twice"),
    ("xl/worksheets/Sheet1.xml", "'xl/worksheets/sheet1.xml' and 'xl/worksheets/Sheet1.xml'"),
    ("xl\\worksheets\\sheet1.xml", "'xl/worksheets/sheet1.xml' and 'xl\\worksheets\\sheet1.xml'"),
    ("xl/./worksheets/sheet1.xml", "'xl/worksheets/sheet1.xml' and 'xl/./worksheets/sheet1.xml'"),
])
def test_two_parts_of_one_name_are_refused(tmp_path, second, shown):
    p = package(tmp_path / "dup.xlsx", base_parts() + [(second, sheet_xml([["Spend 12m"], [1]]))])
    refused(p, message=f"{p}: refused: it holds two parts of one name ({shown}); programs disagree on which one counts, so cxrules does not read it")


@pytest.mark.parametrize("name", ["../evil.xml", "/etc/evil.xml", "xl/../../evil.xml", "C:/evil.xml"])
def test_part_names_outside_the_package_are_refused(tmp_path, name):
    p = package(tmp_path / "out.xlsx", base_parts() + [(name, b"<x/>")])
    refused(p, message=f"{p}: refused: it holds a part named '{name}', which points outside the workbook; a workbook's parts are inside it")


@pytest.mark.parametrize("target", ["../../outside.xml", "%2E%2E/%2e%2e/outside.xml", "..\\..\\outside.xml", "/../outside.xml"])
def test_relationship_targets_outside_the_package_are_refused(tmp_path, target):
    rels = bench.WB_RELS.replace('Target="worksheets/sheet1.xml"', f'Target="{target}"')
    p = package(tmp_path / "rel.xlsx", base_parts(wb_rels=rels))
    refused(p, message=f"{p}: refused: relationship rId1 in xl/_rels/workbook.xml.rels points outside the workbook ('{target}'); "
                       "a workbook's parts are inside it")


def test_external_links_and_absolute_targets_inside_the_package_are_fine(tmp_path):
    rels = bench.WB_RELS.replace('Target="worksheets/sheet1.xml"', 'Target="/xl/worksheets/sheet1.xml"').replace(
        "</Relationships>", '<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/externalLinkPath" '
        'Target="../../Finance/budget.xlsx" TargetMode="External"/></Relationships>')
    p = package(tmp_path / "ok.xlsx", base_parts(wb_rels=rels))
    r = run("recalc", p, "--as-of", AS_OF, "--rules", RULES, "--dry-run")
    assert r.exit_code == 0, r.output


def test_zip_methods_excel_never_uses_are_refused(tmp_path):
    p = package(tmp_path / "bz.xlsx", base_parts() + [("xl/styles.xml", b"<styleSheet/>" * 100, zipfile.ZIP_BZIP2)])
    refused(p, message=f"{p}: its part xl/styles.xml is packed with zip method 12, which Excel never uses; open it in Excel and save it again")


def test_parts_that_share_packed_bytes_are_refused(tmp_path):
    p = package(tmp_path / "overlap.xlsx", base_parts() + [("xl/sharedStrings.xml", b"<sst/>")])
    data = bytearray(p.read_bytes())
    sheet_at = zipfile.ZipFile(p).getinfo("xl/worksheets/sheet1.xml").header_offset
    # point the last entry's directory record at the sheet's bytes
    last = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, last + 42, sheet_at)
    p.write_bytes(bytes(data))
    refused(p, message=f"{p}: refused as a possible zip bomb: its parts xl/worksheets/sheet1.xml and xl/sharedStrings.xml share packed bytes")


def test_the_writer_vets_the_package_too(tmp_path):
    p = package(tmp_path / "dup.xlsx", base_parts() + [("xl/worksheets/Sheet1.xml", b"<x/>")])
    before = p.read_bytes()
    with pytest.raises(WorkbookError) as e:
        write_workbook(p, p, [SheetEdit("Customers", [ColumnWrite(4, 1, "Tier", 2, ["VIP", "New"], "text")])])
    assert str(e.value) == (f"{p}: refused: it holds two parts of one name ('xl/worksheets/sheet1.xml' and 'xl/worksheets/Sheet1.xml'); "
                            "programs disagree on which one counts, so cxrules does not read it")
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["dup.xlsx"]


def test_a_package_of_too_many_parts_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(package_guard, "MAX_ENTRIES", 5)
    p = package(tmp_path / "many.xlsx", base_parts() + [("xl/media/x.png", b"x")])
    refused(p, message=f"{p}: refused: it holds 6 parts; a workbook has tens, and cxrules reads at most 5")


def test_the_excel_made_corpus_passes_the_guard():
    files = sorted((ROOT / "tests" / "corpus" / "excel-made").glob("*.xls*")) + sorted((ROOT / "workbooks").glob("*.xlsx"))
    assert len(files) > 40
    for f in files:
        package_guard.vet_package(f)


# ------------------------------------------------------------------ YAML alias bombs
BILLION_LAUGHS = "decision: laughs\n" + 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))


@pytest.mark.parametrize("text, line", [
    (BILLION_LAUGHS, "bomb.yaml:6: error: the YAML aliases (*name) in this file repeat more than 10000 values; cxrules refuses files "
                     "that grow like this (a 'billion laughs' file) (write the values out, or use &anchors and *aliases only for short lists)"),
    ("decision: loop\nrules: &r [*r]\n", "bomb.yaml:2: error: the alias *r is inside the &r it repeats, so it would repeat forever "
                                         "(remove *r, or move it out of the part marked &r)"),
    ("decision: deep\nrules: " + "[" * 500 + "]" * 500 + "\n", "bomb.yaml:2: error: lists and mappings are nested more than 64 deep here "
                                                               "(a rule file needs only a few levels; check the brackets and the indentation)"),
])
def test_yaml_bombs_are_refused_with_file_and_line_in_bounded_time(tmp_path, text, line):
    (tmp_path / "bomb.yaml").write_text(text, encoding="utf-8")
    code, out, err, _ = run_child(["check", "bomb.yaml"], tmp_path, cap_mb=1000, timeout=60)
    assert (code, err) == (1, "")
    assert out == line + "\n1 error, 0 warnings in 1 file (0 decisions)\n"


def test_a_short_alias_is_still_allowed(tmp_path):
    p = tmp_path / "tier.yaml"
    p.write_text("decision: tier\nhit: first\ninputs:\n  spend: {type: number, columns: &spend [Spend, 消费金额]}\n"
                 "  spend_last_year: {type: number, columns: *spend}\noutputs:\n  tier: {type: text}\n"
                 'rules:\n  - [">= 5000", "-", VIP]\n  - ["-", "-", Regular]\n', encoding="utf-8")
    rs, problems = load_rules(p)
    assert [str(x) for x in problems] == []
    assert rs.tables["tier"].inputs[1].columns == ["Spend", "消费金额"]


# ------------------------------------------------------------------ control characters
BAD = "a\x00b\x01c\x1b[31md\x7fe\x9bf\ud800g\ufffeh\r_x0041_"


def _all_parts_parse(path):
    with zipfile.ZipFile(path) as z:
        for n in z.namelist():
            if n.endswith((".xml", ".rels", ".vml")):
                etree.fromstring(z.read(n))  # strict: raises on any character XML cannot hold


def test_control_characters_in_cells_charts_formats_and_names_never_reach_xml_raw(tmp_path):
    p = tmp_path / "t.xlsx"
    shutil.copy(ROOT / "tests" / "corpus" / "excel-made" / "table01.xlsx", p)
    edit = SheetEdit("Sheet1", [ColumnWrite(6, 3, "Head\x02er", 4, [BAD] * 10, "text")],
                     [Highlight(6, BAD, "FFC7CE", 4, 13), Highlight(6, "\x1b", "FFC7CE", 4, 13)])
    rows = [["Tit\x03le"], ["cat\x04", 3], ["c\x1bat", 5], [BAD, 1]]
    chart = BarChart("Chart\x05 title", (1, 3, 0), [ChartSeries(1, 3, 1, "Se\x06ries")])
    rep = write_workbook(p, p, [edit], [NewSheet("Sum\x07mary", rows, charts=[chart])])
    assert rep.sheet_names == {"Sum\x07mary": "Sum_mary"}
    _all_parts_parse(p)
    assert openpyxl.load_workbook(p).sheetnames == ["Sheet1", "Sum_mary"]
    z = zipfile.ZipFile(p)
    sheet = z.read("xl/worksheets/sheet1.xml").decode()
    cell = "a_x0000_b_x0001_c_x001B_[31md\x7fe\x9bf\ufffdg_xFFFE_h_x000D__x005F_x0041_"
    assert f'<c r="G4" t="inlineStr"><is><t>{cell}</t></is></c>' in sheet
    assert ('<formula>$G4=&quot;a&quot;&amp;CHAR(0)&amp;&quot;b&quot;&amp;CHAR(1)&amp;&quot;c&quot;&amp;CHAR(27)&amp;&quot;[31md\x7fe\x9bf\ufffdg&quot;'
            '&amp;UNICHAR(65534)&amp;&quot;h&quot;&amp;CHAR(13)&amp;&quot;_x0041_&quot;</formula>') in sheet
    assert "<formula>$G4=CHAR(27)</formula>" in sheet
    assert '<tableColumn id="5" name="Head_x0002_er"/>' in z.read("xl/tables/table1.xml").decode()
    chart_xml = z.read("xl/charts/chart1.xml").decode()
    for text in ("<a:t>Chart\ufffd title</a:t>", "<c:v>Se_x0006_ries</c:v>", "<c:v>cat_x0004_</c:v>", "<c:v>c_x001B_at</c:v>", f"<c:v>{cell}</c:v>"):
        assert text in chart_xml
    # cxrules reads its own cells back as written, so the next run sees the same text
    # (python-calamine leaves _xFFFE_, a non-character, as it is)
    with open_workbook(p) as wb:
        assert wb.read_sheet("Sheet1").value(4, 6) == BAD.replace("\ud800", "\ufffd").replace("\ufffe", "_xFFFE_")


RULE_WITH_ESCAPES = r'''decision: band
hit: first
inputs:
  spend: {type: number, columns: [Spend 12m]}
outputs:
  band: {type: text, label: "Band\e]0;x\a", allowed: ["\e[31mBig\x01", Small], columns: [Band], highlight: {"\e[31mBig\x01": red}}
rules:
  - [">= 100", "\e[31mBig\x01"]
  - ["-", Small]
'''


def test_rule_text_and_cell_text_with_escapes_are_safe_in_the_workbook_and_the_terminal(tmp_path):
    (tmp_path / "band.yaml").write_text(RULE_WITH_ESCAPES, encoding="utf-8")
    # the cell holds ESC ] 0 ; pwned BEL ESC [ 2 J, written the Excel way
    rows = [["Customer ID", "Spend 12m"], ["C1", 150], ["C2", 5], ["C3", "_x001B_]0;pwned_x0007__x001B_[2J"]]
    p = package(tmp_path / "c.xlsx", base_parts(rows))
    r = run("recalc", p, "--as-of", AS_OF, "--rules", tmp_path / "band.yaml")
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "\x07" not in r.output
    assert "  sheet 'Customers', row 4, column 'Spend 12m': error: '\\x1b]0;pwned\\x07\\x1b[2J' is not a number" in r.output
    _all_parts_parse(p)
    wb = openpyxl.load_workbook(p)
    assert wb.sheetnames == ["Customers", "CX summary", "Issues"]
    z = zipfile.ZipFile(p)
    sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert '<c r="C2" t="inlineStr"><is><t>_x001B_[31mBig_x0001_</t></is></c>' in sheet
    assert "<formula>$C2=CHAR(27)&amp;&quot;[31mBig&quot;&amp;CHAR(1)</formula>" in sheet
    assert "<c:v>_x001B_[31mBig_x0001_</c:v>" in z.read("xl/charts/chart1.xml").decode()


def test_file_names_with_escapes_are_printed_visibly(tmp_path):
    p = package(tmp_path / "evil\x1b[31m.xlsx", base_parts() + [("xl/worksheets/sheet1.xml", b"<x/>")])
    before = p.read_bytes()
    r = run("recalc", p, "--rules", RULES)
    assert r.exit_code == 1
    assert r.output.startswith(f"Error: {tmp_path}/evil\\x1b[31m.xlsx: refused: it holds two parts of one name")
    assert p.read_bytes() == before


def test_printable_shows_what_a_terminal_would_obey():
    assert printable("ok\ttab\nline") == "ok\ttab\nline"
    assert printable("\x1b[2J\r\x9b1m\x7f\u202eabc\ud800") == "\\x1b[2J\\x0d\\x9b1m\\x7f\\u202eabc\\ud800"


def _with_sheet_entry(p, change):
    """The package at p with sheet1's central-directory entry changed by change(bytearray, at)."""
    data = bytearray(p.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        n = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + n] == b"xl/worksheets/sheet1.xml":
            change(data, at)
        at = data.find(b"PK\x01\x02", at + 1)
    p.write_bytes(bytes(data))
    return p


def test_a_sheet_with_a_wrong_checksum_is_damaged(tmp_path):
    """The sheet is unpacked once for the guard and the scan: a wrong CRC is still said,
    naming the sheet, and nothing is written."""
    p = _with_sheet_entry(package(tmp_path / "crc.xlsx", base_parts()), lambda d, at: d.__setitem__(slice(at + 16, at + 20), b"\0\0\0\0"))
    refused(p, message=f"{p}: sheet 'Customers' is damaged (Bad CRC-32 for file 'xl/worksheets/sheet1.xml'); "
                       "open it in Excel, let it repair, and save it again")
