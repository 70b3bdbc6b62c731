"""`cxrules doctor`: is this installation able to work, and if not, what to do.

Each check is data (what was found, whether it is a problem, what to do); the CLI prints
them. Nothing here changes the machine.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import __version__

ADDIN_FILE = "cxrules.xlam"
ADDIN_XLWINGS = "0.37.8"  # the add-in calls the xlwings DLL of exactly this version (addin/build.py)
CONF_NAME = "cxrules.conf"  # the add-in's settings file, %USERPROFILE%\.cxrules\cxrules.conf (docs/excel.md)


@dataclass
class Check:
    topic: str
    found: str
    ok: bool = True
    fix: str | None = None
    info: bool = False  # shown, but not checked here (e.g. the add-in off Windows)

    def to_dict(self) -> dict:
        return {"topic": self.topic, "ok": self.ok, "found": self.found, "fix": self.fix}


def run(rules=None, excel: bool = False, windows: bool | None = None, appdata=None, home=None) -> list[Check]:
    """All checks. `excel`: the Excel add-in must be installed (Windows). `windows`, `appdata`
    and `home` default to this machine's; tests give them to check the add-in anywhere."""
    windows = sys.platform == "win32" if windows is None else windows
    checks = [
        Check("cxrules", f"{__version__} ({Path(__file__).resolve().parent})"),
        Check("Python", f"{sys.version.split()[0]} ({sys.executable})"),
        engine_check(),
        xlwings_check(windows or excel),
        rules_check(rules),
    ]
    if windows:
        appdata = Path(appdata or os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
        home = Path(home or os.environ.get("USERPROFILE") or Path.home())
        checks.extend(addin_checks(appdata, home, excel))
    else:
        checks.append(Check("Excel add-in", "not checked: the add-in is for Excel on Windows (docs/excel.md)", info=True))
    return checks


def _dist_version(*names) -> str | None:
    for n in names:
        try:
            return metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return None


def engine_check() -> Check:
    from . import engine

    version = _dist_version("durable-rules", "durable_rules")
    name = f"durable-rules {version}" if version else "durable-rules"
    try:
        engine.self_test()
    except engine.EngineUnavailable as e:
        return Check("rule engine", f"{name}: cannot be used", ok=False, fix=str(e))
    return Check("rule engine", f"{name}: loads and runs a test rule")


def xlwings_check(for_excel: bool) -> Check:
    version = _dist_version("xlwings")
    if version is None:
        return Check("xlwings", 'not installed (needed only for Excel: pip install "cxrules[excel]")')
    if version != ADDIN_XLWINGS and for_excel:
        return Check("xlwings", f"{version}; the CX Rules add-in needs {ADDIN_XLWINGS}", ok=False,
                     fix=f'{_pip()} install "xlwings=={ADDIN_XLWINGS}" (or rebuild the add-in for {version}: python addin/build.py)')
    return Check("xlwings", version)


def rules_check(rules=None) -> Check:
    from . import rulesets
    from .loader import rule_files

    if rules:
        path, origin = Path(rules), "given on the command line"
    else:
        path, origin = rulesets.default_rules_origin()
    where = f"{path} ({origin})"
    if not path.exists():
        fix = (f"set ${rulesets.ENV_VAR} to a folder of rule files, or remove it to use the bundled rules"
               if origin.startswith("$") else "give an existing rule file or folder")
        return Check("rules", f"{where}: no such file or folder", ok=False, fix=fix)
    files = rule_files(path)
    if not files:
        return Check("rules", f"{where}: no rule files (*.yaml) in it", ok=False,
                     fix=f"put the rule files there, or write the bundled ones with: cxrules init {path}")
    rs, problems = rulesets.load(path)
    errors, warnings = len(problems.errors), len(problems.warnings)
    found = f"{where}: {len(rs.files)} files, {len(rs.tables)} decisions, {errors} errors, {warnings} warnings"
    if errors:
        return Check("rules", found, ok=False, fix=f"cxrules check {path}  lists each error with its file and line; fix those lines")
    return Check("rules", found)


def addin_locations(appdata: Path) -> list[Path]:
    """Where xlwings addin install puts the add-in: the user's XLSTART, or (--glob) Excel's own."""
    places = [appdata / "Microsoft" / "Excel" / "XLSTART"]
    for var in ("ProgramFiles", "ProgramFiles(x86)"):
        root = os.environ.get(var)
        if root:
            places += [Path(root) / "Microsoft Office" / "root" / "Office16" / "XLSTART", Path(root) / "Microsoft Office" / "Office16" / "XLSTART"]
    return [p / ADDIN_FILE for p in places]


def addin_checks(appdata: Path, home: Path, required: bool) -> list[Check]:
    places = addin_locations(appdata)
    addin = next((p for p in places if p.is_file()), None)
    install = "run install.cmd of the cxrules bundle (docs/install.md), or: xlwings addin install --file cxrules.xlam"
    if addin is None:
        if required:
            return [Check("Excel add-in", f"not installed ({places[0]} is missing)", ok=False, fix=install)]
        return [Check("Excel add-in", f"not installed ({places[0]}); needed only for Excel: {install}")]
    out = [Check("Excel add-in", f"installed: {addin}")]
    if _dist_version("xlwings") is None:
        out.append(Check("xlwings", "the add-in is installed but this Python has no xlwings", ok=False,
                         fix=f'{_pip()} install "xlwings=={ADDIN_XLWINGS}"'))
    out.append(interpreter_check(home))
    return out


def read_conf(path: Path) -> dict[str, str]:
    """xlwings settings file: one `"KEY","VALUE"` a line; keys casefolded (xlwings ignores their case)."""
    out = {}
    try:  # the add-in reads it in the ANSI code page
        text = path.read_text(encoding="mbcs" if sys.platform == "win32" else "utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return out
    for line in text.splitlines():
        key, sep, value = line.strip().partition('","')
        if sep:
            out[key.strip('"').casefold()] = value.strip('"')
    return out


def interpreter_check(home: Path) -> Check:
    conf = home / ".cxrules" / CONF_NAME
    interpreter = read_conf(conf).get("interpreter_win")
    if interpreter:  # the add-in expands %VARIABLES%
        interpreter = os.path.expandvars(interpreter)
    if not interpreter:
        found = shutil.which("pythonw")
        if not found:
            return Check("add-in Python", f"no Interpreter_Win in {conf}, and no pythonw on PATH", ok=False,
                         fix=f'write "Interpreter_Win","C:\\path\\to\\venv\\Scripts\\pythonw.exe" into {conf} (install.cmd of the bundle does)')
        interpreter = found
        source = "pythonw on PATH (no Interpreter_Win setting)"
    else:
        source = f"Interpreter_Win in {conf}"
    path = Path(interpreter)
    if not path.is_file():
        return Check("add-in Python", f"{interpreter} ({source}) does not exist", ok=False,
                     fix=f"run install.cmd of the bundle again, or set Interpreter_Win in {conf} to the pythonw.exe that has cxrules")
    # pythonw prints nothing: ask the console python beside it
    console = path.with_name(path.name.replace("pythonw", "python")) if "pythonw" in path.name.lower() else path
    probe = "import cxrules, cxrules.engine as e; e.require(); print(cxrules.__version__)"
    try:
        r = subprocess.run([str(console), "-c", probe], capture_output=True, text=True, timeout=60)
        ok = r.returncode == 0
        answer = r.stdout.strip() if ok else (r.stderr.strip().splitlines() or ["no output"])[-1]
    except (OSError, subprocess.TimeoutExpired) as e:
        ok, answer = False, f"{type(e).__name__}: {e}"
    if not ok:
        return Check("add-in Python", f"{interpreter} ({source}) cannot run cxrules: {answer}", ok=False,
                     fix="run install.cmd of the bundle again; it installs cxrules into a venv and points the add-in at it")
    same = "this Python" if _same_env(console, Path(sys.executable)) else "another Python than this one"
    return Check("add-in Python", f"{interpreter} ({source}; {same}), cxrules {answer}")


def _same_env(a: Path, b: Path) -> bool:
    try:
        return a.resolve().parent == b.resolve().parent
    except OSError:
        return False


def _pip() -> str:
    exe = f'"{sys.executable}"' if " " in sys.executable else sys.executable
    return f"{exe} -m pip"
