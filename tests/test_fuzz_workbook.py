"""Broken and hostile workbooks: whatever is done to the XML inside, recalc either writes a
workbook that opens or refuses in a sentence, leaving the file exactly as it was.

Each example mutates the parts of a small workbook from tests/writers.py (byte flips,
truncation, deleted or doubled tags and attributes, other namespace prefixes, huge numbers,
bad cell references, missing parts, junk in relationships) and recalculates it in a worker
process, so that a native crash (Rust panic, abort, memory blow-up) is seen as a failure
instead of taking pytest down. The examples are the same on every run; set
CXRULES_FUZZ_EXAMPLES (and CXRULES_FUZZ_RANDOM=1) to search further.
"""
from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import warnings
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import writers

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
EXAMPLES = int(os.environ.get("CXRULES_FUZZ_EXAMPLES", "50"))  # per base workbook: 200 in all
TIMEOUT = 30  # seconds for one recalc of a small workbook: more is a hang
BASES = ["openpyxl", "xlsxwriter", "excel", "pyexcelerate"]

# The worker recalculates one file per request and says how it ended. Anything that is not
# a CxError (WorkbookError, RuleSetError, ...) is a crash; BaseException too (a Rust panic
# arrives as pyo3's PanicException, which is not an Exception).
WORKER = r"""
import json, resource, sys, traceback, datetime as dt
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a blow-up ends as MemoryError, not a swapping machine
from cxrules import rulesets
from cxrules.evaluation import Evaluator
from cxrules.problems import CxError
from cxrules.recalc import recalc
if sys.argv[3] == "splice":  # every sheet's source checked by a child, and its answer waited for
    from cxrules import xlsx_write, xmlparts
    xmlparts.CHECK_ELSEWHERE_FROM, xlsx_write._CHECK_GRACE = 0, 120
ev = Evaluator(rulesets.load_or_raise(sys.argv[1]))
as_of = dt.datetime.fromisoformat(sys.argv[2])
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    path = json.loads(line)["path"]
    try:
        recalc(path, ev, as_of)
        out = {"outcome": "ok"}
    except CxError as e:
        out = {"outcome": "refused", "message": str(e)}
    except BaseException as e:
        out = {"outcome": "crash", "type": type(e).__name__, "traceback": traceback.format_exc()}
    print(json.dumps(out), flush=True)
"""


class Worker:
    def __init__(self, route: str = "whole"):
        self.proc, self.route = None, route

    def start(self):
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONFAULTHANDLER="1")
        self.err = tempfile.TemporaryFile()  # a file, not a pipe: a chatty worker never blocks on it
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(RULES), writers.AS_OF.isoformat(), self.route],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, env=env, text=True)
        assert json.loads(self._line(120)) == {"ready": True}

    def _line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.stop()
            raise TimeoutError
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.err.seek(0)
            err = self.err.read()
            err = (err if len(err) < 4000 else err[:2000] + b"\n...\n" + err[-2000:]).decode(errors="replace")  # the cause is at the top
            self.proc = None
            raise ChildProcessError(f"the recalc process died (exit {code}):\n{err}")
        return line

    def recalc(self, path: Path) -> dict:
        if self.proc is None:
            self.start()
        self.proc.stdin.write(json.dumps({"path": str(path)}) + "\n")
        self.proc.stdin.flush()
        try:
            return json.loads(self._line(TIMEOUT))
        except TimeoutError:
            return {"outcome": "hang"}
        except ChildProcessError as e:
            return {"outcome": "died", "traceback": str(e)}

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module", params=["whole", "splice"], ids=["parsed whole", "splice route"])
def worker(request):
    """A sheet's result is parsed whole as it is written, or (splice route) its source is
    checked by a child process and only the writer's own XML parsed."""
    w = Worker(request.param)
    w.start()
    yield w
    w.stop()


class Bases(dict):
    def __repr__(self) -> str:  # hypothesis prints its arguments with a failure
        return f"<the {', '.join(self)} workbooks>"


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    out = Bases()
    for name in BASES:
        path = writers.WRITERS[name](tmp_path_factory.mktemp(name))
        with zipfile.ZipFile(path) as z:
            out[name] = {i.filename: z.read(i.filename) for i in z.infolist()}
    return out


# ------------------------------------------------------------------ mutations
HUGE = [b"1e308", b"-1e308", b"1E+400", b"99999999999999999999999", b"4294967296", b"-1", b"-0", b"NaN", b"INF",
        b"1048577", b"16385", b"0", b"2147483648", b"0x10", b"1.5"]
BAD_REFS = [b"A0", b"XFE1", b"A1048577", b"XFD1048576", b"ZZZZ1", b"", b"A", b"1", b"A1:XFE2", b"$A$1", b"a1",
            b"A1:A0", b"B2:A1", b"A-1", b"\xe4\xb8\xad1", b"A1 B2"]
JUNK_TARGETS = [b"../../../../etc/passwd", b"", b"/", b"http://example.invalid/x.xml", b"worksheets/sheet1.xml",
                b"sheet99.xml", b"%zz", b"C:\\x.xml", b"/xl/workbook.xml", b"..", b"xl/worksheets/"]
JUNK_TYPES = [b"", b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet",
              b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles",
              b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings", b"junk"]
TAG = re.compile(rb"<([\w:.-]+)\b[^<>]*?(/?)>")
ATTR = re.compile(rb"\s([\w:.-]+)\s*=\s*\"[^\"]*\"")
NUMBER = re.compile(rb"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
REF = re.compile(rb"\b((?:s?q?ref|r|topLeftCell|activeCell))=\"([^\"]*)\"")


def _pick(draw, seq):
    return seq[draw(st.integers(0, len(seq) - 1))]


def flip(data: bytes, draw) -> bytes:
    if not data:
        return data
    i = draw(st.integers(0, len(data) - 1))
    return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]


def truncate(data: bytes, draw) -> bytes:
    return data[: draw(st.integers(0, max(len(data) - 1, 0)))]


def _element(data: bytes, m) -> tuple[int, int]:
    """The span of the element whose start tag m matched (its start tag alone if no end is found)."""
    if m.group(2) == b"/":
        return m.start(), m.end()
    end = data.find(b"</" + m.group(1) + b">", m.end())
    return (m.start(), end + len(m.group(1)) + 3) if end >= 0 else (m.start(), m.end())


def delete_element(data: bytes, draw) -> bytes:
    tags = [m for m in TAG.finditer(data) if not m.group(1).startswith((b"?", b"!"))]
    if not tags:
        return data
    m = _pick(draw, tags)
    a, b = _element(data, m) if draw(st.booleans()) else (m.start(), m.end())  # whole element, or its start tag only
    return data[:a] + data[b:]


def duplicate_element(data: bytes, draw) -> bytes:
    tags = [m for m in TAG.finditer(data) if not m.group(1).startswith((b"?", b"!"))]
    if not tags:
        return data
    a, b = _element(data, _pick(draw, tags))
    return data[:b] + data[a:b] + data[b:]


def delete_attribute(data: bytes, draw) -> bytes:
    attrs = list(ATTR.finditer(data))
    if not attrs:
        return data
    m = _pick(draw, attrs)
    return data[: m.start()] + data[m.end():]


def duplicate_attribute(data: bytes, draw) -> bytes:
    attrs = list(ATTR.finditer(data))
    if not attrs:
        return data
    m = _pick(draw, attrs)
    return data[: m.end()] + m.group(0) + data[m.end():]


def prefix_default_namespace(data: bytes, draw) -> bytes:
    """The same XML with the default namespace given a prefix: valid, and what strict
    writers do. Readers that match '<row' by text miss every element."""
    p = _pick(draw, [b"x", b"main", b"r", b"s"])
    m = re.search(rb"<([\w.-]+)(\s[^>]*?)?\sxmlns=\"([^\"]*)\"", data)
    if not m:
        return data
    data = re.sub(rb"<(/?)([A-Za-z_][\w.-]*)(?=[\s/>])", lambda t: b"<" + t.group(1) + p + b":" + t.group(2), data)
    return data.replace(b' xmlns="', b" xmlns:" + p + b'="', 1)


def rename_prefix(data: bytes, draw) -> bytes:
    """Rename a declared prefix everywhere (valid), or only in its declaration (unbound prefix)."""
    decls = re.findall(rb"xmlns:([\w.-]+)=", data)
    if not decls:
        return data
    old = _pick(draw, decls)
    new = _pick(draw, [b"rel", b"x", b"r2", b"ns0"])
    if draw(st.booleans()):
        return re.sub(rb"(?<=[<\s/])" + re.escape(old) + rb":", new + b":", data).replace(b"xmlns:" + old + b"=", b"xmlns:" + new + b"=")
    return data.replace(b"xmlns:" + old + b"=", b"xmlns:" + new + b"=")


def drop_namespace(data: bytes, draw) -> bytes:
    decls = list(re.finditer(rb"\sxmlns(?::[\w.-]+)?=\"[^\"]*\"", data))
    if not decls:
        return data
    m = _pick(draw, decls)
    return data[: m.start()] + data[m.end():]


def huge_number(data: bytes, draw) -> bytes:
    nums = list(NUMBER.finditer(data))
    if not nums:
        return data
    m = _pick(draw, nums)
    return data[: m.start()] + _pick(draw, HUGE) + data[m.end():]


def bad_ref(data: bytes, draw) -> bytes:
    refs = list(REF.finditer(data))
    if not refs:
        return data
    m = _pick(draw, refs)
    return data[: m.start(2)] + _pick(draw, BAD_REFS) + data[m.end(2):]


def junk_rel(data: bytes, draw) -> bytes:
    rels = list(re.finditer(rb"<Relationship\b[^>]*>", data))
    if not rels:
        return data
    m = _pick(draw, rels)
    tag = m.group(0)
    how = draw(st.integers(0, 3))
    if how == 0:
        tag = re.sub(rb'Target="[^"]*"', lambda _: b'Target="' + _pick(draw, JUNK_TARGETS) + b'"', tag)
    elif how == 1:
        tag = re.sub(rb'Type="[^"]*"', lambda _: b'Type="' + _pick(draw, JUNK_TYPES) + b'"', tag)
    elif how == 2:
        tag = re.sub(rb'Id="[^"]*"', b'Id="rId1"', tag)
    else:
        tag = tag.replace(b"<Relationship ", b'<Relationship TargetMode="External" ', 1)
    return data[: m.start()] + tag + data[m.end():]


def entity(data: bytes, draw) -> bytes:
    """An undeclared entity, or a DTD with an entity expansion (a small 'billion laughs')."""
    if draw(st.booleans()):
        i = data.find(b"</", len(data) // 2)
        return data if i < 0 else data[:i] + b"&bogus;" + data[i:]
    dtd = (b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
           b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>')
    i = data.find(b"?>")
    data = data[: i + 2] + dtd + data[i + 2:] if i >= 0 else dtd + data
    j = data.find(b"</", len(data) // 2)
    return data if j < 0 else data[:j] + b"&d;" + data[j:]


# well-formed XML the writer's byte-level splice could mistake for rows (splice_check finds them)
SPLICE_TRAPS = [b"<!-- </row><row r='2'> -->", b"<?pi </row>?>", b'<c r="ZZ9" t="inlineStr"><is><t><![CDATA[</row><row>]]></t></is></c>',
                b"<rowx/>", b'<c r="ZZ9" t="inlineStr"><is><row r="7"/></is></c>']


def splice_trap(data: bytes, draw) -> bytes:
    """Something row-like inside a row, or a row end tag spelt with a space."""
    ends = [m.start() for m in re.finditer(rb"</row>", data)]
    if not ends:
        return data
    at = _pick(draw, ends)
    if draw(st.integers(0, 5)) == 0:
        return data[:at] + b"</row >" + data[at + 6:]
    return data[:at] + _pick(draw, SPLICE_TRAPS) + data[at:]


PART_MUTATIONS = [flip, truncate, delete_element, duplicate_element, delete_attribute, duplicate_attribute,
                  prefix_default_namespace, rename_prefix, drop_namespace, huge_number, bad_ref, junk_rel, entity, splice_trap]


def mutate(parts: list[tuple[str, bytes]], draw) -> tuple[list[tuple[str, bytes]], list[str]]:
    """One to three mutations; returns the new entries and what was done, for the report."""
    done = []
    for _ in range(draw(st.integers(1, 3))):
        names = [n for n, _ in parts]
        xml = [n for n in names if n.endswith((".xml", ".rels"))]
        kind = draw(st.integers(0, len(PART_MUTATIONS) + 1))
        if kind == len(PART_MUTATIONS):  # a missing part
            n = _pick(draw, names)
            parts = [(a, b) for a, b in parts if a != n]
            done.append(f"removed {n}")
        elif kind == len(PART_MUTATIONS) + 1:  # the same part twice in the zip
            n = _pick(draw, names)
            parts = parts + [(n, dict(parts)[n])]
            done.append(f"zip entry {n} twice")
        else:
            f = PART_MUTATIONS[kind]
            if f is junk_rel:
                xml = [n for n in xml if n.endswith(".rels")] or xml
            n = _pick(draw, xml)
            parts = [(a, f(b, draw) if a == n else b) for a, b in parts]
            done.append(f"{f.__name__} in {n}")
    return parts, done


def _zip(parts: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for n, b in parts:
                z.writestr(n, b)
    return buf.getvalue()


def _entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}


def _well_formed(data: bytes) -> bool:
    try:
        ET.fromstring(data)
        return True
    except (ET.ParseError, LookupError, ValueError):  # LookupError: an encoding="..." Python does not know
        return False


def _openpyxl_opens(path: Path) -> str | None:
    """None if openpyxl opens the file, else what it said."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            openpyxl.load_workbook(path).close()
        return None
    except Exception as e:  # openpyxl raises anything on a broken file; that is the finding
        return f"{type(e).__name__}: {e}"


# ------------------------------------------------------------------ the property
@pytest.mark.parametrize("base", BASES)
# no shrinking: the message names the mutations, and shrinking a failure costs minutes
@settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("CXRULES_FUZZ_RANDOM"), database=None,
          phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_recalc_never_crashes_and_never_corrupts(base, bases, worker, tmp_path_factory, data):
    parts, done = mutate(list(bases[base].items()), data.draw)
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / f"{base}.xlsx"
    original = _zip(parts)
    path.write_bytes(original)
    got = worker.recalc(path)
    what = f"{base} workbook, {'; '.join(done)}"

    assert got["outcome"] not in ("crash", "died", "hang"), f"{what}: recalc {got['outcome']}:\n{got.get('traceback', '')}"
    if got["outcome"] == "refused":
        msg = got["message"]
        assert path.name in msg and len(msg) > len(str(path)) + 10, f"{what}: the refusal says too little: {msg!r}"
        assert "Traceback" not in msg and "This is a bug" not in msg, f"{what}: {msg}"
        assert path.read_bytes() == original, f"{what}: recalc refused ({msg}) but changed the file"
        assert [p.name for p in folder.iterdir()] == [path.name], f"{what}: recalc refused ({msg}) and left files behind"
        return

    # written: every XML part is well-formed unless it was already broken and left alone,
    # and a file openpyxl could open still opens
    before = dict(parts)
    after = _entries(path)
    bad = [f"{n} ({'a new part' if n not in before else 'well-formed before' if _well_formed(before[n]) else 'malformed before, and edited'})"
           for n, b in after.items() if n.endswith((".xml", ".rels")) and not _well_formed(b) and before.get(n) != b]
    assert bad == [], f"{what}: recalc wrote malformed XML: {', '.join(bad)}"
    input_copy = folder / "input.xlsx"
    input_copy.write_bytes(original)
    if _openpyxl_opens(input_copy) is None:
        assert _openpyxl_opens(path) is None, f"{what}: openpyxl opens the input but not the result: {_openpyxl_opens(path)}"


# ------------------------------------------------------------------ what the fuzzing found in reading
def _edit(parts: dict[str, bytes], name: str, old: bytes, new: bytes) -> dict[str, bytes]:
    assert old in parts[name], f"{name} no longer holds {old!r}: update the case"
    return {**parts, name: parts[name].replace(old, new, 1)}


def _far_cell(ref: bytes):
    def edit(p):
        return _edit(p, "xl/worksheets/sheet3.xml", b"</sheetData>", b'<row r="1048576"><c r="%s"><v>1</v></c></row></sheetData>' % ref)
    return edit


FOUND = {
    # each crashed recalc (or aborted the process) before the reader checked for it
    "content types not UTF-8": (lambda p: _edit(p, "[Content_Types].xml", b"<Types", b"\xff<Types"), "part [Content_Types].xml is not well-formed XML"),
    "a sheet listed twice": (lambda p: _edit(p, "xl/workbook.xml", b"</sheets>", b'<sheet name="customers" sheetId="9" r:id="rId1"/></sheets>'),
                             "lists the sheet 'customers' twice"),
    "a sheet without its part": (lambda p: {n: b for n, b in p.items() if n != "xl/worksheets/sheet3.xml"}, "is not in the file"),
    "a table without a range": (lambda p: _edit(p, "xl/tables/table1.xml", b'ref="A1:J11"', b'ref=""'), "has no valid range"),
    "a value in XFD1048576": (_far_cell(b"XFD1048576"), "more than cxrules reads in one sheet"),
    "a cell past column XFD": (_far_cell(b"XFE1048576"), "is outside Excel's grid"),
    "a cell one row past the grid": (_far_cell(b"A1048577"), "is outside Excel's grid"),
    "a cell in row 1,049,999": (_far_cell(b"B1049999"), "is outside Excel's grid"),
    "shared strings that claim 2**32 texts": (
        lambda p: {**p, "xl/sharedStrings.xml": re.sub(rb'uniqueCount="\d+"', b'uniqueCount="4294967296"', p["xl/sharedStrings.xml"])},
        "claims 4,294,967,296 texts"),
}


@pytest.mark.parametrize("case", list(FOUND))
def test_damaged_workbooks_found_by_fuzzing_are_refused_in_a_sentence(case, bases, worker, tmp_path):
    edit, words = FOUND[case]
    parts = edit(dict(bases["xlsxwriter"]))
    path = tmp_path / "damaged.xlsx"
    original = _zip(list(parts.items()))
    path.write_bytes(original)
    got = worker.recalc(path)
    assert got["outcome"] == "refused", f"{case}: {got}"
    assert words in got["message"] and str(path) in got["message"], got["message"]
    assert path.read_bytes() == original
