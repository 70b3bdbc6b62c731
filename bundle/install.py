"""Install cxrules from this offline bundle: no internet, no compiler.

    install.cmd                          (Windows: finds Python 3.10-3.13 and runs this file)
    python install.py [--target DIR] [--rules FOLDER] [--all-users] [--no-addin]

1. a venv in DIR (default: %LOCALAPPDATA%\\cxrules, or ~/.local/share/cxrules elsewhere) with
   cxrules and its dependencies from wheels/ (pip install --no-index --find-links wheels);
   kept as it is when it already has this version, so a second user of a shared DIR only
   does steps 2 and 3;
2. the CX Rules add-in into Excel's start-up folder (xlwings addin install; --all-users:
   Excel's own XLSTART, for every user, needs an elevated prompt);
3. the add-in's settings in %USERPROFILE%\\.cxrules\\cxrules.conf: Interpreter_Win, the
   venv's pythonw.exe, and CXRULES_RULES when --rules is given. Other settings are kept.
Then `cxrules doctor` says whether all is well. Steps 2 and 3 are for Windows (and are
skipped with --no-addin). Exit code 0 only when everything worked.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WHEELS = HERE / "wheels"
ADDIN = HERE / "addin" / "cxrules.xlam"
SUPPORTED = ((3, 10), (3, 13))
WINDOWS = sys.platform == "win32"


class Failed(Exception):
    pass


def bundle_version() -> str:
    found = sorted(WHEELS.glob("cxrules-*-py3-none-any.whl"))
    if not found:
        raise Failed(f"no cxrules wheel in {WHEELS}: is this the whole bundle?")
    return found[-1].name.split("-")[1]


def default_target() -> Path:
    if WINDOWS:
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "cxrules"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "cxrules"


def scripts(venv: Path) -> Path:
    return venv / ("Scripts" if WINDOWS else "bin")


def exe(venv: Path, name: str) -> Path:
    return scripts(venv) / (name + (".exe" if WINDOWS else ""))


def run(cmd, what: str) -> str:
    print(f"  {what} ...", flush=True)
    p = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode:
        raise Failed(f"{what} failed:\n{p.stdout.strip()[-3000:]}")
    return p.stdout


def installed_version(venv: Path) -> str | None:
    py = exe(venv, "python")
    if not py.is_file():
        return None
    p = subprocess.run([str(py), "-c", "import cxrules; print(cxrules.__version__)"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


def install_venv(target: Path, version: str) -> Path:
    venv = target / "venv"
    have = installed_version(venv)
    if have == version:
        print(f"1. cxrules {version} is already installed in {venv}")
        return venv
    print(f"1. installing cxrules {version} into {venv}" + (f" (replacing {have})" if have else ""))
    if not exe(venv, "python").is_file():
        run([sys.executable, "-m", "venv", venv], "creating the venv")
    run([exe(venv, "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "--find-links", WHEELS,
         "--only-binary", ":all:", "--upgrade", f"cxrules[excel]=={version}"], "installing the wheels (offline)")
    return venv


def install_addin(venv: Path, all_users: bool) -> None:
    print("2. installing the CX Rules add-in into Excel (Excel starts hidden for a moment)")
    cmd = [exe(venv, "xlwings"), "addin", "install", "--file", ADDIN] + (["--glob"] if all_users else [])
    try:
        out = run(cmd, "xlwings addin install")
    except Failed as e:
        raise Failed(f"{e}\nIs Excel installed, and closed? For --all-users, run from an elevated Command Prompt.") from None
    if out.strip():
        print("   " + out.strip().replace("\n", "\n   "))


def conf_path(home: Path | None = None) -> Path:
    home = home or Path(os.environ.get("USERPROFILE") or Path.home())
    return home / ".cxrules" / "cxrules.conf"


def setting_value(path: Path) -> str:
    """A path as the add-in will read it: %LOCALAPPDATA%\\... when it lies there, so the file
    stays plain ASCII (the add-in reads it in the ANSI code page) and follows the user."""
    local = os.environ.get("LOCALAPPDATA")
    if WINDOWS and local:
        try:
            return "%LOCALAPPDATA%\\" + str(path.resolve().relative_to(Path(local).resolve()))
        except ValueError:
            pass
    return str(path)


def write_settings(conf: Path, values: dict[str, str]) -> None:
    """Set KEY lines of an xlwings settings file ("KEY","VALUE" a line), keeping the others."""
    encoding = "mbcs" if WINDOWS else "utf-8"
    lines = []
    if conf.is_file():
        lines = conf.read_text(encoding=encoding, errors="replace").splitlines()
    keys = {k.casefold() for k in values}
    kept = [ln for ln in lines if ln.strip() and _key(ln).casefold() not in keys]
    new = kept + [f'"{k}","{v}"' for k, v in values.items()]
    conf.parent.mkdir(parents=True, exist_ok=True)
    try:
        conf.write_text("\r\n".join(new) + "\r\n", encoding=encoding, newline="")
    except UnicodeEncodeError:
        raise Failed(f"{conf}: a path has characters the add-in cannot read here; install with --target on a plain path, e.g. C:\\cxrules") from None


def _key(line: str) -> str:
    m = re.match(r'\s*"([^"]*)"', line)
    return m.group(1) if m else line.split(",", 1)[0].strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Install cxrules from this offline bundle.")
    ap.add_argument("--target", type=Path, help=f"folder for the venv (default: {default_target()})")
    ap.add_argument("--rules", help="the rules folder the add-in uses (e.g. a shared folder); default: the bundled rules")
    ap.add_argument("--all-users", action="store_true", help="install the add-in for every user of this PC (elevated prompt)")
    ap.add_argument("--no-addin", action="store_true", help="install cxrules only, not the Excel add-in and its settings")
    ap.add_argument("--home", type=Path, help=argparse.SUPPRESS)  # tests: where .cxrules\\cxrules.conf goes
    a = ap.parse_args(argv)
    v = sys.version_info[:2]
    if not SUPPORTED[0] <= v <= SUPPORTED[1]:
        print(f"This bundle has wheels for Python 3.10 to 3.13; this is Python {v[0]}.{v[1]} ({sys.executable}). "
              "Install one of those versions, then run install.cmd again.")
        return 1
    if WINDOWS and not a.no_addin and v < (3, 11):
        print(f"The Excel add-in needs Python 3.11 or later (its xlwings 0.37.8 does); this is Python {v[0]}.{v[1]}. "
              "Install Python 3.11, 3.12 or 3.13 and run install.cmd again, or add --no-addin for the command line only.")
        return 1
    try:
        version = bundle_version()
        venv = install_venv((a.target or default_target()).absolute(), version)
        addin = not a.no_addin
        if addin:
            if WINDOWS:
                install_addin(venv, a.all_users)
            else:
                print("2. the Excel add-in is for Windows: skipped")
            conf = conf_path(a.home)
            values = {"Interpreter_Win": setting_value(exe(venv, "pythonw" if WINDOWS else "python"))}
            if a.rules:
                values["CXRULES_RULES"] = str(Path(a.rules).absolute())
            write_settings(conf, values)
            print(f"3. add-in settings written to {conf}: " + ", ".join(f"{k} = {v}" for k, v in values.items()))
    except Failed as e:
        print(f"\nInstallation failed: {e}")
        return 1
    print("\ncxrules doctor:")
    env = dict(os.environ)
    if a.rules:
        env["CXRULES_RULES"] = str(Path(a.rules).absolute())
    cmd = [str(exe(venv, "cxrules")), "doctor"] + (["--excel"] if addin and WINDOWS else [])
    if a.home:
        env["USERPROFILE"] = str(a.home)
    code = subprocess.run(cmd, env=env).returncode
    print(f"\n{'Done' if code == 0 else 'Installed, but doctor found problems (above)'}. cxrules is in {venv}; "
          f"the command is {exe(venv, 'cxrules')}")
    return code


if __name__ == "__main__":
    sys.exit(main())
