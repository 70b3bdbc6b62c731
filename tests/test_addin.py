"""The CX Rules add-in file: ribbon, VBA, settings sheet, and the build that makes it."""
import importlib.util
import inspect
import io
import random
import re
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("xlwings", reason="the Excel layer needs xlwings 0.37.8, which needs Python 3.11+")

from cxrules import excel

ADDIN = Path(__file__).resolve().parents[1] / "addin"
XLAM = ADDIN / "cxrules.xlam"
NS_UI = "{http://schemas.microsoft.com/office/2006/01/customui}"
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _load(name):
    spec = importlib.util.spec_from_file_location(f"cx_addin_{name}", ADDIN / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    sys.path.insert(0, str(ADDIN))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ADDIN))
    return mod


ovba = _load("ovba")
build = _load("build")


@pytest.fixture(scope="module")
def xlam():
    with zipfile.ZipFile(XLAM) as z:
        return {n: z.read(n) for n in z.namelist()}


def vba_text(name):
    return build.module_file(name).read_text(encoding="ascii")


def subs(text):
    """Sub/Function name -> its parameter text."""
    return {m.group(2): m.group(3) for m in re.finditer(r"^(?:Public |Private )?(Sub|Function) (\w+)\(([^)]*)\)", text, re.M)}


def sub_body(text, name):
    m = re.search(rf"^(?:Public )?Sub {name}\(.*?\)\n(.*?)^End Sub", text, re.M | re.S)
    return m.group(1)


# ------------------------------------------------------------------ the ribbon
def test_ribbon_xml_parses_and_has_the_cx_rules_tab(xlam):
    root = ET.fromstring(xlam["customUI/customUI.xml"])
    tabs = root.findall(f".//{NS_UI}tab")
    assert [t.get("label") for t in tabs] == ["CX Rules"]
    assert xlam["customUI/customUI.xml"] == (ADDIN / "customUI.xml").read_bytes().replace(b"\r\n", b"\n")
    rels = ET.fromstring(xlam["_rels/.rels"])
    targets = {r.get("Target"): r.get("Type") for r in rels}
    assert targets["customUI/customUI.xml"].endswith("/ui/extensibility")


def test_every_button_names_a_vba_sub_that_runs_a_macro_that_exists(xlam):
    root = ET.fromstring(xlam["customUI/customUI.xml"])
    buttons = root.findall(f".//{NS_UI}button")
    assert {b.get("label") for b in buttons} >= {"Recalculate", "Flag overdue", "Check rules", "Reload rules"}
    ribbon = vba_text("RibbonCxRules")
    callbacks = subs(ribbon)
    xlwings_subs = subs(vba_text("xlwings"))
    cx = vba_text("CxRules")
    macros = {m.__name__ for m in excel.MACROS}
    ran = set()
    for b in buttons:
        module, _, sub = b.get("onAction").partition(".")
        assert module == "RibbonCxRules", b.get("id")
        assert callbacks.get(sub) == "control As IRibbonControl", f"{sub} is not a ribbon callback"
        body = sub_body(ribbon, sub)
        for macro in re.findall(r'CxRun "(\w+)"', body):
            assert macro in macros and callable(getattr(excel, macro))
            ran.add(macro)
        for call in re.findall(r"^\s+(\w+)\s*$", body, re.M):
            assert call in xlwings_subs or call in subs(cx) or call in subs(vba_text("CxFunctionHelp")), call
    assert ran == macros  # every macro has a button


def test_cxrun_runs_the_macros_of_cxrules_excel():
    body = sub_body(vba_text("CxRules"), "CxRun")
    assert 'RunPython "import cxrules.excel; cxrules.excel." & macroName & "()"' in body
    for macro in re.findall(r'CxRun "(\w+)"', vba_text("CxRules")):
        assert macro in {m.__name__ for m in excel.MACROS}
    for m in excel.MACROS:
        assert not inspect.signature(m).parameters  # RunPython passes no arguments


# ------------------------------------------------------------------ the settings sheet
def test_settings_sheet_names_the_function_module(xlam):
    wb = ET.fromstring(xlam["xl/workbook.xml"])
    assert [s.get("name") for s in wb.findall(".//m:sheet", NS)] == ["cxrules.conf"]
    assert 'Public Const PROJECT_NAME As String = "cxrules"' in vba_text("xlwings")  # the sheet xlwings reads
    strings = [si.findtext("m:t", namespaces=NS) for si in ET.fromstring(xlam["xl/sharedStrings.xml"]).findall("m:si", NS)]
    cells = {}
    for c in ET.fromstring(xlam["xl/worksheets/sheet1.xml"]).findall(".//m:c", NS):
        v = c.findtext("m:v", namespaces=NS)
        cells[c.get("r")] = strings[int(v)] if c.get("t") == "s" else (v == "1" if c.get("t") == "b" else v)
    settings = {cells[f"A{r}"]: cells.get(f"B{r}") for r in range(1, 1 + sum(1 for k in cells if k.startswith("A")))}
    assert settings["UDF Modules"] == "cxrules.excel"
    assert settings["Use UDF Server"] is True
    assert list(settings) == [k for k, _ in build.read_conf()]  # no gaps: xlwings reads A1 down to the first blank


# ------------------------------------------------------------------ the VBA project
def test_vba_in_the_binary_matches_the_text_sources(xlam):
    stored = ovba.module_sources(xlam["xl/vbaProject.bin"])
    assert list(stored) == [n for n, _ in build.MODULES]
    for name, text in stored.items():
        assert text.replace("\r\n", "\n") == vba_text(name), name


def test_vba_matches_when_read_by_oletools(xlam):
    olevba = pytest.importorskip("oletools.olevba")
    parser = olevba.VBA_Parser("cxrules.xlam", data=XLAM.read_bytes())
    got = {name.rsplit(".", 1)[0]: code for _, _, name, code in parser.extract_macros()}
    assert set(got) == {n for n, _ in build.MODULES}
    for name, code in got.items():
        assert code.replace("\r\n", "\n") == vba_text(name), name


def test_vba_project_is_source_only_and_named(xlam):
    streams = ovba.read_cfb(xlam["xl/vbaProject.bin"])
    assert streams["VBA/_VBA_PROJECT"] == ovba.VBA_PROJECT_SOURCE_ONLY  # Excel compiles from the text
    project = ovba.parse_dir(ovba.decompress(streams["VBA/dir"]))
    assert project.name == "CxRules"
    assert all(m.offset == 0 for m in project.modules)
    text = streams["PROJECT"].decode("cp1252")
    assert 'Name="CxRules"' in text and "Module=RibbonCxRules" in text and "Document=ThisWorkbook/&H00000000" in text


def test_vba_project_reads_back_with_olefile_when_available(xlam):
    olefile = pytest.importorskip("olefile")
    ole = olefile.OleFileIO(io.BytesIO(xlam["xl/vbaProject.bin"]))
    ours = ovba.read_cfb(xlam["xl/vbaProject.bin"])
    for path, data in ours.items():
        assert ole.openstream(path).read() == data


def test_function_wrappers_cover_every_worksheet_function_with_docs():
    udfs = vba_text("xlwings_udfs")
    names = {f.__name__ for f in excel.FUNCTIONS}
    declared = set(re.findall(r"^Function (CX_\w+)\(", udfs, re.M))
    assert declared == names
    assert 'XLPy.CallUDF("cxrules.excel", ' in udfs
    help_ = vba_text("CxFunctionHelp")
    for n in names:
        assert f"'!{n}\"" in help_
    with build._udf_machinery() as udfs_mod:
        module = build.udf_module_with_metadata(udfs_mod)
    for n in names:
        info = getattr(module, n).__xlfunc__
        assert info["category"] == "CX Rules"
        assert not info["ret"]["doc"].startswith("Python function"), n  # a real docstring
        for a in info["args"]:
            if a["name"] != "caller":  # xlwings fills it with the calling cell; Excel never shows it
                assert not a["doc"].startswith("Positional argument"), f"{n}({a['name']}) has no doc"
        assert "Positional argument" not in help_


def procedures() -> dict[str, str]:
    """Every Sub and Function of the add-in's VBA (name casefolded -> body, comments and
    strings removed): VBA names are case-insensitive."""
    out = {}
    for name, _ in build.MODULES:
        text = vba_text(name)
        for m in re.finditer(r"^(?:Public |Private |Friend )?(?:Sub|Function) (\w+)\(.*?\)[^\n]*\n(.*?)^End (?:Sub|Function)",
                             text, re.M | re.S):
            body = re.sub(r'"[^"\n]*"', '""', m.group(2))
            body = re.sub(r"(?m)^\s*'.*$|\s'[^\n]*$", "", body)
            out[m.group(1).casefold()] = body
    return out


def reachable(start: str, procs: dict[str, str]) -> set[str]:
    """The procedures a procedure may call, itself included."""
    seen, todo = set(), [start.casefold()]
    while todo:
        p = todo.pop()
        if p in seen or p not in procs:
            continue
        seen.add(p)
        todo.extend(w.casefold() for w in re.findall(r"\b\w+\b", procs[p]) if w.casefold() in procs)
    return seen


def test_workbook_open_never_needs_a_workbook():
    # opened from XLSTART, the add-in runs Workbook_Open before any workbook is open:
    # ActiveWorkbook is Nothing, and touching it is a runtime error box at every start
    procs = procedures()
    calls = reachable("Workbook_Open", procs)
    assert "cxregisterfunctions" in calls
    touching = sorted(p for p in calls if "activeworkbook" in procs[p].casefold())
    assert touching == []
    assert "on error resume next" in procs["workbook_open"].casefold()  # the help is a nicety: never an error box


def test_every_button_checks_for_a_workbook_before_python():
    procs = procedures()
    ribbon = subs(vba_text("RibbonCxRules"))
    for cb in ribbon:
        calls = reachable(cb, procs)
        if not any("activeworkbook" in procs[p].casefold() for p in calls):
            continue
        guarded = "cxrun" if "cxrun" in calls else cb.casefold()
        first = next(ln.strip() for ln in procs[guarded].splitlines() if ln.strip())
        assert first == "If Not CxNeedWorkbook Then Exit Sub", cb
    assert "activeworkbook is nothing" in procs["cxneedworkbook"].casefold()


def test_settings_are_not_handed_to_python_through_the_environment():
    # the xlwings DLL copies Excel's environment once per server: a setting put there is
    # never seen again; Python reads the settings itself at each call (test_excel_com)
    for name, _ in build.MODULES:
        assert "SetEnvironmentVariable" not in vba_text(name), name
    assert 'GetConfig("CXRULES_RULES"' not in vba_text("CxRules")


def test_one_python_server_for_every_workbook():
    # the DLL keeps a server per command line: XLPyCommand must not name the active workbook
    body = re.search(r"^Function XLPyCommand\(\)\n(.*?)^End Function", vba_text("xlwings"), re.M | re.S).group(1)
    assert "ActiveWorkbook" not in body
    assert 'PYTHONPATH = AddExcelDir & ";" & "" & ";" & ThisWorkbook.FullName' in body


def test_cx_now_is_volatile_in_excel():
    m = re.search(r"^Function CX_NOW\(\)\n(.*?)^End Function", vba_text("xlwings_udfs"), re.M | re.S)
    assert m.group(1).splitlines()[0].strip() == "Application.Volatile"
    for name in ("CX_TIER", "CX_LEVEL", "CX_DECIDE"):  # the big calls stay non-volatile: as_of=CX_NOW() makes them current
        m = re.search(rf"^Function {name}\(.*?\n(.*?)^End Function", vba_text("xlwings_udfs"), re.M | re.S)
        assert "Application.Volatile" not in m.group(1)


# ------------------------------------------------------------------ the build
def test_the_committed_addin_is_what_the_build_makes():
    assert build.stale() == [], "run: python addin/build.py"


def test_build_is_reproducible():
    assert build.build_bytes() == build.build_bytes()


def test_compression_round_trips_including_incompressible_chunks():
    rnd = random.Random(5)
    samples = [b"", b"a", b"abc" * 5000, bytes(rnd.getrandbits(8) for _ in range(9000)),
               vba_text("xlwings").encode("ascii"), bytes(range(256)) * 40]
    for data in samples:
        assert ovba.decompress(ovba.compress(data)) == data
    olevba = pytest.importorskip("oletools.olevba")
    for data in samples[1:]:
        assert bytes(olevba.decompress_stream(bytearray(ovba.compress(data)))) == data


def test_compound_file_round_trips():
    streams = {"PROJECT": b"x" * 10, "VBA/dir": b"d" * 5000, "VBA/big": bytes(range(256)) * 100, "VBA/empty": b"",
               **{f"VBA/m{k}": bytes([k]) * (k * 97) for k in range(20)}}
    assert ovba.read_cfb(ovba.write_cfb(streams)) == streams


def test_install_command_pins_the_xlwings_the_addin_was_built_with():
    version = re.search(r'Public Const XLWINGS_VERSION As String = "([^"]+)"', vba_text("xlwings")).group(1)
    install = (ADDIN / "install.cmd").read_text(encoding="ascii")
    assert f'"xlwings=={version}"' in install
    assert 'xlwings addin install --file "%HERE%cxrules.xlam"' in install
