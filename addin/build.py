"""Build addin/cxrules.xlam from the xlwings custom add-in template and the text sources here.

    python addin/build.py            # regenerate vba/ files that come from code, then build
    python addin/build.py --check    # exit 1 if cxrules.xlam or a generated file is stale

Runs anywhere (no Excel needed). Inputs:
  * the template `quickstart_addin_ribbon.xlam` shipped inside the installed xlwings package
    (what `xlwings quickstart NAME --addin --ribbon` copies), for its workbook parts,
    its VBA references and its `Dictionary` class;
  * customUI.xml (the CX Rules ribbon tab), cxrules.conf (the settings sheet), and the VBA
    modules in vba/: written by hand (CxRules.bas, RibbonCxRules.bas, ThisWorkbook.cls,
    Sheet2.cls) or generated here (xlwings.bas from xlwings' own custom add-in module,
    xlwings_udfs.bas by xlwings' own UDF wrapper generator, CxFunctionHelp.bas from the
    function docs in cxrules/excel.py, Dictionary.cls from the template).
The VBA project is written source only (see ovba.py): Excel compiles it on first open.
The output is byte-for-byte reproducible for the same inputs.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import sys
import types
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:  # this checkout's cxrules, not another one installed
    sys.path.insert(1, str(HERE.parent))
import ovba  # noqa: E402

PROJECT = "cxrules"  # xlwings' PROJECT_NAME: the settings sheet is PROJECT.conf
VBA_PROJECT_NAME = "CxRules"
UDF_MODULE = "cxrules.excel"
OUTPUT = HERE / "cxrules.xlam"
VBA_DIR = HERE / "vba"
CONF_SHEET = f"{PROJECT}.conf"
# (module, kind): the order of the VBA project
MODULES = [
    ("ThisWorkbook", "document"), ("Sheet2", "document"), ("Dictionary", "document"),
    ("xlwings", "procedural"), ("CxRules", "procedural"), ("RibbonCxRules", "procedural"),
    ("CxFunctionHelp", "procedural"), ("xlwings_udfs", "procedural"),
]
GENERATED = ("xlwings.bas", "xlwings_udfs.bas", "CxFunctionHelp.bas", "Dictionary.cls")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def module_file(name: str) -> Path:
    kind = dict(MODULES)[name]
    return VBA_DIR / (name + (".cls" if kind == "document" else ".bas"))


def xlwings_dir() -> Path:
    import xlwings

    return Path(xlwings.__file__).resolve().parent


def template_path() -> Path:
    return xlwings_dir() / "quickstart_addin_ribbon.xlam"


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def lf(text: str) -> str:
    return text.replace("\r\n", "\n")


# ------------------------------------------------------------------ generated VBA
# The xlwings DLL keeps one Python server per command line, and the template's XLPyCommand
# puts the active workbook's path in it: every workbook would get its own server, and
# Restart Python would stop only the active workbook's. cxrules is an installed package,
# so the workbook's folder need not be on sys.path: that slot is left empty.
_ONE_SERVER = (
    'PYTHONPATH = AddExcelDir & ";" & ActiveWorkbook.FullName & ";" & ThisWorkbook.FullName & ";" & GetConfig("ONEDRIVE_CONSUMER_WIN")',
    'PYTHONPATH = AddExcelDir & ";" & "" & ";" & ThisWorkbook.FullName & ";" & GetConfig("ONEDRIVE_CONSUMER_WIN")',
)


def xlwings_module() -> str:
    """xlwings' custom add-in module with this add-in's PROJECT_NAME, and one Python
    server for all workbooks (_ONE_SERVER)."""
    text = (xlwings_dir() / "xlwings_custom_addin.bas").read_text(encoding="utf-8")
    text, n = re.subn(r'(Public Const PROJECT_NAME As String = )"[^"]*"', rf'\1"{PROJECT}"', text)
    if n != 1:
        raise SystemExit("xlwings_custom_addin.bas has no PROJECT_NAME constant: is this xlwings version supported?")
    if text.count(_ONE_SERVER[0]) != 1:
        raise SystemExit("xlwings_custom_addin.bas: XLPyCommand is not as expected: is this xlwings version supported?")
    return lf(text.replace(*_ONE_SERVER))


def dictionary_class() -> str:
    with zipfile.ZipFile(template_path()) as z:
        return lf(ovba.module_sources(z.read("xl/vbaProject.bin"))["Dictionary"])


@contextlib.contextmanager
def _udf_machinery():
    """xlwings.udfs and the real @xw.func decorators, also off Windows (pywin32 stubbed)."""
    stubs = {}
    for name in ("pythoncom", "pywintypes", "win32com", "win32com.client"):
        try:
            __import__(name)
        except ImportError:
            m = types.ModuleType(name)
            m.CoInitialize = lambda: None
            m.com_error = type("com_error", (Exception,), {})
            m.Dispatch = lambda *a, **k: None
            stubs[name] = m
    saved_modules = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    import xlwings

    saved = {k: getattr(xlwings, k) for k in ("func", "arg", "ret")}
    try:
        udfs = importlib.import_module("xlwings.udfs")
        xlwings.func, xlwings.arg, xlwings.ret = udfs.xlfunc, udfs.xlarg, udfs.xlret
        yield udfs
    finally:
        for k, v in saved.items():
            setattr(xlwings, k, v)
        for k, v in saved_modules.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        if stubs:
            sys.modules.pop("xlwings.udfs", None)


def udf_module_with_metadata(udfs) -> types.ModuleType:
    """cxrules/excel.py loaded afresh under the real decorators, so functions carry __xlfunc__."""
    import cxrules

    path = Path(cxrules.__file__).resolve().parent / "excel.py"
    spec = importlib.util.spec_from_file_location("cxrules._excel_with_udf_metadata", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


class _AddinBook:
    Name = f"{PROJECT}.xlam"  # the generator calls ActiveWorkbook for add-ins


def udf_wrappers() -> str:
    """The xlwings_udfs module exactly as xlwings' ImportPythonUDFsToAddin writes it."""
    with _udf_machinery() as udfs:
        module = udf_module_with_metadata(udfs)
        buf = io.StringIO()
        vba = udfs.VBAWriter(buf)
        vba.writeln('Attribute VB_Name = "xlwings_udfs"')
        vba.writeln("'Autogenerated code by xlwings - changes will be lost with next import!")
        vba.writeln("""#Const App = "Microsoft Excel" 'Adjust when using outside of Excel""")
        udfs.generate_vba_wrapper(UDF_MODULE, module, buf, _AddinBook())
    return lf(buf.getvalue())


def _vba_string(s: str) -> str:
    s = " ".join(s.split())[:255]
    return '"' + s.replace('"', '""') + '"'


def function_help() -> str:
    """CxFunctionHelp: Application.MacroOptions for each CX_ function (what ImportPythonUDFs
    registers through COM), so the function wizard shows the docs right after install."""
    with _udf_machinery() as udfs:
        module = udf_module_with_metadata(udfs)
        funcs = [getattr(module, n) for n in dir(module) if hasattr(getattr(module, n), "__xlfunc__")]
    lines = [
        'Attribute VB_Name = "CxFunctionHelp"',
        "' Generated by addin/build.py from the docs of cxrules/excel.py: do not edit.",
        "Option Explicit",
        "",
        "Public Sub CxRegisterFunctions()",
        "    ' Descriptions for Excel's function wizard (Shift+F3)",
        "    On Error Resume Next",
    ]
    for f in funcs:
        info = f.__xlfunc__
        args = [a["doc"] for a in info["args"] if not a["vba"] and a["name"] != "caller"]  # caller: xlwings fills it
        lines.append(f"""    Application.MacroOptions Macro:="'" & ThisWorkbook.Name & "'!{info['name']}", _""")
        lines.append(f"        Description:={_vba_string(info['ret']['doc'])}, _")
        if args:
            lines.append(f"        Category:={_vba_string(str(info['category']))}, _")
            lines.append("        ArgumentDescriptions:=Array(" + ", _\n            ".join(_vba_string(a) for a in args) + ")")
        else:
            lines.append(f"        Category:={_vba_string(str(info['category']))}")
    lines += ["End Sub", ""]
    return "\n".join(lines)


def generated_sources() -> dict[str, str]:
    return {
        "xlwings.bas": xlwings_module(),
        "xlwings_udfs.bas": udf_wrappers(),
        "CxFunctionHelp.bas": function_help(),
        "Dictionary.cls": dictionary_class(),
    }


# ------------------------------------------------------------------ the VBA project
def vba_sources() -> dict[str, str]:
    """Module name -> source as stored in the binary (CRLF)."""
    return {name: crlf(module_file(name).read_text(encoding="ascii")) for name, _ in MODULES}


def vba_project(template_bin: bytes, sources: dict[str, str]) -> bytes:
    streams = ovba.read_cfb(template_bin)
    project = ovba.parse_dir(ovba.decompress(streams["VBA/dir"]))
    ovba.set_project_name(project, VBA_PROJECT_NAME)
    kept = {m.name: m for m in project.modules}
    modules = []
    for name, kind in MODULES:
        m = kept.get(name)
        modules.append(ovba.Module(name, name, kind, 0, m.records if m and m.kind == kind else []))
    project.modules = modules
    out = {"VBA/_VBA_PROJECT": ovba.VBA_PROJECT_SOURCE_ONLY, "VBA/dir": ovba.compress(ovba.build_dir(project))}
    for name, _ in MODULES:
        out["VBA/" + name] = ovba.compress(sources[name].encode(project.codepage))
    out["PROJECT"] = project_stream(streams["PROJECT"].decode(project.codepage)).encode(project.codepage)
    wm = b"".join(n.encode(project.codepage) + b"\0" + n.encode("utf-16-le") + b"\0\0" for n, _ in MODULES) + b"\0\0"
    out["PROJECTwm"] = wm
    return ovba.write_cfb(out)


def project_stream(template: str) -> str:
    """The PROJECT stream: the template's ID and protection state, our modules and name."""
    keep = [ln for ln in template.split("\r\n") if re.match(r"(ID|HelpContextID|VersionCompatible32|CMG|DPB|GC)=", ln)]
    ident = keep[0]
    rest = keep[1:]
    lines = [ident]
    for name, kind in MODULES:
        if name == "Dictionary":
            lines.append("Class=Dictionary")
        elif kind == "document":
            lines.append(f"Document={name}/&H00000000")
        else:
            lines.append(f"Module={name}")
    lines.append(f'Name="{VBA_PROJECT_NAME}"')
    lines += rest
    lines += ["", "[Host Extender Info]", "&H00000001={3832D640-CF90-11CF-8E43-00A0C911005A};VBE;&H00000000", "", "[Workspace]"]
    lines += [f"{name}=0, 0, 0, 0, C" for name, _ in MODULES]
    return "\r\n".join(lines) + "\r\n"


# ------------------------------------------------------------------ the settings sheet
def read_conf(path: Path = HERE / "cxrules.conf") -> list[tuple[str, str]]:
    """xlwings config file lines: "KEY","VALUE"."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r'\s*"([^"]*)"\s*,\s*"([^"]*)"\s*', line)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def settings_parts(conf: list[tuple[str, str]]) -> tuple[bytes, bytes]:
    """sheet1.xml and sharedStrings.xml of the settings sheet (keys in A, values in B)."""
    strings: list[str] = []

    def sst(s: str) -> int:
        if s not in strings:
            strings.append(s)
        return strings.index(s)

    rows = []
    for r, (k, v) in enumerate(conf, start=1):
        cells = f'<c r="A{r}" s="1" t="s"><v>{sst(k)}</v></c>'
        if v.lower() in ("true", "false"):
            cells += f'<c r="B{r}" s="1" t="b"><v>{1 if v.lower() == "true" else 0}</v></c>'
        elif v:
            cells += f'<c r="B{r}" s="1" t="s"><v>{sst(v)}</v></c>'
        rows.append(f'<row r="{r}">{cells}</row>')
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheetPr codeName="Sheet2" /><dimension ref="A1:B{len(conf)}" />'
        '<sheetViews><sheetView tabSelected="1" workbookViewId="0" /></sheetViews>'
        '<sheetFormatPr defaultColWidth="8.875" defaultRowHeight="15.75" />'
        '<cols><col min="1" max="1" width="18" style="1" customWidth="1" /><col min="2" max="2" width="40" style="1" customWidth="1" /></cols>'
        f'<sheetData>{"".join(rows)}</sheetData>'
        '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3" /></worksheet>'
    )
    shared = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" uniqueCount="{len(strings)}">'
        + "".join(f"<si><t>{escape(s)}</t></si>" for s in strings) + "</sst>"
    )
    return sheet.encode("utf-8"), shared.encode("utf-8")


# ------------------------------------------------------------------ the add-in
def build_bytes() -> bytes:
    parts: dict[str, bytes] = {}
    with zipfile.ZipFile(template_path()) as z:
        names = z.namelist()
        for n in names:
            parts[n] = z.read(n)
    parts["xl/vbaProject.bin"] = vba_project(parts["xl/vbaProject.bin"], vba_sources())
    parts["customUI/customUI.xml"] = (HERE / "customUI.xml").read_bytes().replace(b"\r\n", b"\n")
    wb = parts["xl/workbook.xml"].decode("utf-8")
    wb = re.sub(r'<sheet name="[^"]*"', f'<sheet name="{CONF_SHEET}"', wb, count=1)
    wb = re.sub(r"<mc:AlternateContent\b.*?</mc:AlternateContent>", "", wb, flags=re.S)  # the template author's path
    parts["xl/workbook.xml"] = wb.encode("utf-8")
    parts["xl/worksheets/sheet1.xml"], parts["xl/sharedStrings.xml"] = settings_parts(read_conf())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for n in names:
            info = zipfile.ZipInfo(n, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            out.writestr(info, parts[n])
    return buf.getvalue()


def write_generated() -> list[str]:
    changed = []
    for fname, text in generated_sources().items():
        p = VBA_DIR / fname
        if not p.exists() or p.read_text(encoding="ascii") != text:
            p.write_text(text, encoding="ascii", newline="\n")
            changed.append(fname)
    return changed


def stale() -> list[str]:
    """What --check finds out of date."""
    out = []
    for fname, text in generated_sources().items():
        p = VBA_DIR / fname
        if not p.exists() or p.read_text(encoding="ascii") != text:
            out.append(f"addin/vba/{fname}")
    if not OUTPUT.exists() or OUTPUT.read_bytes() != build_bytes():
        out.append("addin/cxrules.xlam")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    args = ap.parse_args(argv)
    if args.check:
        bad = stale()
        for b in bad:
            print(f"stale: {b} (run: python addin/build.py)")
        return 1 if bad else 0
    for f in write_generated():
        print(f"regenerated addin/vba/{f}")
    OUTPUT.write_bytes(build_bytes())
    print(f"wrote {OUTPUT.relative_to(HERE.parent)} (xlwings {__import__('xlwings').__version__} template)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
