"""bench/engine.py on two builds of durable-rules 2.0.28, in one run: cxrules' patched build
against the stock build from PyPI.

    python bench/engine_builds.py [--python python3.12] [--rows 100000] [--stock-rows 20000] [--repeat 2]

Two venvs with the same Python and the same cxrules dependencies (in .venvs/bench-*):
  patched  the wheel of vendor/durable-rules/build.py: the patch, Python's own CFLAGS (-O3 with
           pyenv or python.org builds) kept, gcc 14's default errors on;
  stock    `pip wheel --no-binary :all: durable-rules==2.0.28` with no CFLAGS set: PyPI's sdist
           as a user's pip builds it (its setup.py replaces CFLAGS, so no -O at all).
bench/engine.py runs in each, alternately, --repeat times; each line's best rows/s is kept and
both are printed side by side, with the compiler line of each build. The stock build cannot load
on Python 3.13, so use 3.10-3.12 (the default is the Python running this script).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "vendor" / "durable-rules" / "dist"
LINE = re.compile(r"^\s{2}(\S.*?)\s{2,}([\d,]+) rows/s")


def sh(cmd, **kw) -> str:
    p = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode:
        sys.exit(f"{' '.join(map(str, cmd[:5]))} ... failed:\n{p.stdout[-3000:]}")
    return p.stdout


def compile_line(log: str) -> str:
    return next((ln.strip() for ln in log.splitlines() if "src/rulespy/rules.c" in ln and " -c " in ln), "(not shown)")


def venv(python: str, name: str) -> Path:
    path = ROOT / ".venvs" / f"bench-{name}"
    py = path / "bin" / "python"
    if not py.exists():
        sh([python, "-m", "venv", path])
        sh([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    return py


def patched(python: str) -> tuple[Path, str]:
    py = venv(python, "patched")
    print(sh([py, ROOT / "vendor" / "durable-rules" / "build.py"]).strip())
    sh([py, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", "--only-binary", "durable-rules",
        "--find-links", DIST, "durable-rules==2.0.28"])
    sh([py, "-m", "pip", "install", "--quiet", "--only-binary", "durable-rules", "--find-links", DIST, "-e", ROOT])
    tag = "cp%d%d" % tuple(map(int, sh([py, "-c", "import sys; print(*sys.version_info[:2])"]).split()))
    log = next(DIST.glob(f"build-{tag}-*.log")).read_text(encoding="utf-8", errors="replace")
    return py, compile_line(log)


def stock(python: str) -> tuple[Path, str]:
    py = venv(python, "stock")
    env = {k: v for k, v in os.environ.items() if k not in ("CFLAGS", "CPPFLAGS", "LDFLAGS")}
    with tempfile.TemporaryDirectory() as tmp:
        log = sh([py, "-m", "pip", "wheel", "-v", "--no-deps", "--no-cache-dir", "--no-binary", ":all:", "-w", tmp,
                  "durable-rules==2.0.28"], env=env)
        sh([py, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", "--only-binary", "durable-rules",
            "--no-index", "--find-links", tmp, "durable-rules==2.0.28"])
        sh([py, "-m", "pip", "install", "--quiet", "--only-binary", "durable-rules", "--find-links", tmp, "-e", ROOT])
    return py, compile_line(log)


def figures(output: str) -> dict[str, int]:
    out = {}
    for ln in output.splitlines():
        m = LINE.match(ln)
        if m:
            out[m.group(1)] = int(m.group(2).replace(",", ""))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="the Python of both venvs (3.10-3.12; default: this one)")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--stock-rows", type=int, default=20_000, help="rows for the stock-host lines of bench/engine.py")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each build, alternating; the best of each line is kept")
    a = ap.parse_args()
    builds = {"patched": patched(a.python), "stock": stock(a.python)}
    best: dict[str, dict[str, int]] = {name: {} for name in builds}
    cmd = [ROOT / "bench" / "engine.py", "--rows", a.rows, "--stock-rows", a.stock_rows]
    header = ""
    for k in range(a.repeat):
        for name, (py, _) in builds.items():
            out = sh([py, *cmd])
            header = header or out.splitlines()[0]
            print(f"-- run {k + 1}, {name} build:\n{out.rstrip()}\n")
            for label, value in figures(out).items():
                best[name][label] = max(best[name].get(label, 0), value)
    print(header)
    for name, (_, line) in builds.items():
        print(f"  {name:<8} compiled: {line[:160]}")
    print(f"\n  {'rows/s, best of ' + str(a.repeat):<44}{'patched':>10}{'stock':>10}{'ratio':>8}")
    for label, value in best["patched"].items():
        other = best["stock"].get(label)
        ratio = f"{value / other:.2f}x" if other else "-"
        print(f"  {label:<44}{value:>10,}{other or 0:>10,}{ratio:>8}")


if __name__ == "__main__":
    main()
