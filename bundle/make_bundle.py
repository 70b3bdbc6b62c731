"""Assemble the offline bundle: every wheel cxrules needs on one platform for Python 3.10-3.13,
the Excel add-in, the installer and the install guide; then prove it installs with no index.

    python bundle/make_bundle.py --cxrules-wheel dist/cxrules-0.1.0-py3-none-any.whl \\
        --engine-wheels wheelhouse --interpreter PY310 --interpreter PY311 ... --out DIR [--zip]
    python bundle/make_bundle.py --resolve-only --cxrules-wheel WHEEL --platform win_amd64

Run on the platform the bundle is for (the release workflow: on Windows, with Python 3.10-3.13
set up; .ci/release-check: on Linux): each --interpreter downloads its own wheels with `pip
download --only-binary :all:`, so dependency markers (pywin32 on Windows, numpy by Python
version) are those of the PCs that will install it. --engine-wheels holds the patched
durable-rules wheels (cibuildwheel's, or vendor/durable-rules/dist). The check at the end is
`pip install --dry-run --no-index --find-links wheels cxrules[excel]` by each interpreter.
Python 3.10 gets cxrules without the Excel extra: xlwings 0.37.8, the add-in's, needs 3.11+.

--resolve-only (any machine, no engine wheels): do the other dependencies have wheels for
--platform on Python 3.10-3.13? pip then reads markers for the machine it runs on, so
platform-only dependencies of the target (pywin32) are not covered: a quick check, not a bundle.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


class Failed(Exception):
    pass


def pip(python, *args) -> str:
    cmd = [str(python), "-m", "pip", "--disable-pip-version-check", *map(str, args)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode:
        raise Failed(f"{python} -m pip {' '.join(map(str, args[:3]))} ... failed:\n{p.stdout.strip()[-3000:]}")
    return p.stdout


def version_of(python) -> str:
    return subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          stdout=subprocess.PIPE, text=True, check=True).stdout.strip()


def requirement(wheel: Path, python: str) -> str:
    """The wheel, with the Excel extra from Python 3.11 on (xlwings 0.37.8 needs it)."""
    return f"{wheel}[excel]" if tuple(map(int, python.split("."))) >= (3, 11) else str(wheel)


def make(cxrules_wheel: Path, engine_wheels: Path, out: Path, interpreters) -> Path:
    if out.exists():
        raise Failed(f"{out} exists; give a new folder")
    if not list(engine_wheels.glob("durable_rules-*.whl")):
        raise Failed(f"no durable-rules wheels in {engine_wheels}")
    wheels = out / "wheels"
    wheels.mkdir(parents=True)
    shutil.copy2(cxrules_wheel, wheels)
    mine = wheels / cxrules_wheel.name
    pythons = {}
    for py in interpreters:
        v = version_of(py)
        pythons[v] = py
        print(f"  wheels for Python {v} ({py}) ...", flush=True)
        pip(py, "download", "--quiet", "--only-binary", ":all:", "--dest", wheels,
            "--find-links", engine_wheels, "--find-links", wheels, requirement(mine, v))
    (out / "addin").mkdir()
    shutil.copy2(ROOT / "addin" / "cxrules.xlam", out / "addin")
    for name in ("install.py", "install.cmd"):
        shutil.copy2(ROOT / "bundle" / name, out)
    shutil.copy2(ROOT / "docs" / "install.md", out / "INSTALL.md")
    shutil.copy2(ROOT / "LICENSE", out)
    for v, py in pythons.items():  # what an offline PC does, minus the install itself
        pip(py, "install", "--dry-run", "--quiet", "--ignore-installed", "--no-index", "--find-links", wheels,
            "--only-binary", ":all:", requirement(mine, v))
    n = len(list(wheels.glob("*.whl")))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"bundle {out}: {n} wheels, {size / 1e6:.0f} MB; cxrules installs from it with --no-index "
          f"on Python {', '.join(sorted(pythons))} (the Excel extra on 3.11+)")
    return out


def resolve(cxrules_wheel: Path, platforms, pythons=PYTHONS) -> None:
    """The other dependencies' wheels for `platforms`; a placeholder that only names
    durable-rules 2.0.28 stands in for the engine. Writes nothing but temp files."""
    with tempfile.TemporaryDirectory() as tmp:
        links = Path(tmp) / "links"
        links.mkdir()
        shutil.copy2(cxrules_wheel, links)
        _placeholder_engine(links)
        for v in pythons:
            pip(sys.executable, "install", "--dry-run", "--quiet", "--only-binary", ":all:",
                *[a for p in platforms for a in ("--platform", p)], "--python-version", v, "--implementation", "cp",
                "--target", Path(tmp) / "t", "--find-links", links, requirement(links / cxrules_wheel.name, v))
    print(f"cxrules' dependencies (the Excel extra on 3.11+) have wheels for {' / '.join(platforms)} on Python "
          f"{', '.join(pythons)} (markers read for this machine; the engine not included)")


def _placeholder_engine(folder: Path) -> None:
    name = "durable_rules-2.0.28.dist-info"
    files = {f"{name}/METADATA": "Metadata-Version: 2.1\nName: durable_rules\nVersion: 2.0.28\n",
             f"{name}/WHEEL": "Wheel-Version: 1.0\nGenerator: make_bundle\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{name}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{name}/RECORD,,\n"
    with zipfile.ZipFile(folder / "durable_rules-2.0.28-py3-none-any.whl", "w") as z:
        for n, text in files.items():
            z.writestr(n, text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cxrules-wheel", type=Path, required=True)
    ap.add_argument("--engine-wheels", type=Path, help="folder with the patched durable-rules wheels")
    ap.add_argument("--interpreter", action="append", default=[], help="a Python the bundle is for (repeat for each version)")
    ap.add_argument("--out", type=Path, help="a new folder for the bundle")
    ap.add_argument("--zip", action="store_true", help="also write OUT.zip")
    ap.add_argument("--resolve-only", action="store_true", help="only check the other dependencies' wheels for --platform")
    ap.add_argument("--platform", action="append", help="with --resolve-only: pip platform tag, repeatable (default: win_amd64)")
    a = ap.parse_args(argv)
    try:
        if a.resolve_only:
            resolve(a.cxrules_wheel, a.platform or ["win_amd64"])
            return 0
        if not (a.engine_wheels and a.out and a.interpreter):
            ap.error("--engine-wheels, --interpreter and --out are needed to make a bundle")
        out = make(a.cxrules_wheel, a.engine_wheels, a.out, a.interpreter)
    except Failed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if a.zip:
        print(shutil.make_archive(str(out), "zip", out.parent, out.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
