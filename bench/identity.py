"""Recalc results byte for byte: this tree's cxrules against another tree's (the branch base).

    python bench/identity.py --base /path/to/other/tree [--keep DIR]

Recalculates, with a fixed --as-of and this tree's rules, the sample workbooks, the Excel-made
corpus (tests/corpus), the workbooks tests/writers.py makes (LibreOffice's when soffice is
there), and two generated sheets (one with odd cells), each once and then once more on its
own result; then compares every zip part (names, order and unpacked bytes) between the two
trees. Prints one line per difference and exits 1 if there is any.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-23 10:00"


def corpus(folder: Path) -> list[Path]:
    """The workbooks to recalc, made or copied into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in sorted((ROOT / "workbooks").glob("sample_*.xlsx")) + sorted((ROOT / "tests/corpus/excel-made").glob("*.xls[xm]")):
        dst = folder / p.name
        shutil.copy(p, dst)
        out.append(dst)
    sys.path.insert(0, str(ROOT / "tests"))
    import writers

    for name, fn in writers.WRITERS.items():
        sub = folder / f"w_{name}"
        sub.mkdir(exist_ok=True)
        try:
            p = fn(sub)
        except Exception as e:  # noqa: BLE001 - a writer missing here is left out, and said
            print(f"  (writer {name} left out: {type(e).__name__}: {e})")
            continue
        dst = folder / f"w_{name}{p.suffix}"
        shutil.move(p, dst)
        out.append(dst)
    sys.path.insert(0, str(ROOT / "bench"))
    import recalc as rb

    rnd = random.Random(5)
    dst = folder / "gen_plain.xlsx"
    rb.make_workbook(dst, [("Customers", rb.CUST_HEAD, rb.customers(3000, rnd)), ("Cases", rb.CASE_HEAD, rb.cases(800, rnd))])
    out.append(dst)

    def odd(rows):
        for k, r in enumerate(rows):
            if k % 97 == 3:
                r[4] = "seven"  # text in a number column
            if k % 89 == 5:
                r[3] = "2026-11-02"  # a date stored as text
            if k % 83 == 7:
                r[5] = -1e300
            if k % 31 == 0:
                r = [None] * len(r)  # a blank line between rows
            yield r

    dst = folder / "gen_odd.xlsx"
    rb.make_workbook(dst, [("Customers", rb.CUST_HEAD, odd(rb.customers(2000, rnd))), ("Cases", rb.CASE_HEAD, odd(rb.cases(500, rnd)))])
    out.append(dst)
    return out


def run(tree: Path, books: list[Path], into: Path) -> dict[str, Path]:
    """Recalc copies of `books` with cxrules from `tree`, twice; {label: result path}."""
    into.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(tree), XLWINGS_LICENSE_KEY="noncommercial")
    out = {}
    for b in books:
        first = into / b.name
        second = into / ("again_" + b.name)
        args = [sys.executable, "-m", "cxrules.cli", "recalc", "--as-of", AS_OF, "--rules", str(ROOT / "rules"), "--silent"]
        p = subprocess.run(args + [str(b), "--output", str(first), "--force"], env=env, capture_output=True, text=True, cwd=into)
        if not first.exists():
            out[b.name] = None
            print(f"  {tree.name}: {b.name}: not written ({(p.stderr or p.stdout).strip()[:200]})")
            continue
        out[b.name] = first
        subprocess.run(args + [str(first), "--output", str(second), "--force"], env=env, capture_output=True, text=True, cwd=into)
        out["again " + b.name] = second if second.exists() else None
    return out


def compare(a: Path | None, b: Path | None) -> list[str]:
    if a is None or b is None:
        return [] if a is b else ["written by one tree only"]
    za, zb = zipfile.ZipFile(a), zipfile.ZipFile(b)
    na, nb = za.namelist(), zb.namelist()
    if na != nb:
        return [f"parts differ: {sorted(set(na) ^ set(nb)) or 'same names, other order'}"]
    return [f"part {n} differs" for n in na if za.read(n) != zb.read(n)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the other tree (a checkout of the branch base)")
    ap.add_argument("--keep", help="keep the workbooks in this folder")
    a = ap.parse_args()
    tmp = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="cx-identity-"))
    try:
        books = corpus(tmp / "in")
        base = run(Path(a.base).resolve(), books, tmp / "base")
        head = run(ROOT, books, tmp / "head")
        bad = 0
        for label in base:
            diffs = compare(base[label], head.get(label))
            for d in diffs:
                print(f"DIFF {label}: {d}")
            bad += bool(diffs)
        print(f"{len(base)} recalcs compared ({len(books)} workbooks, each twice): "
              f"{'all byte-identical' if not bad else f'{bad} differ'}")
        return 1 if bad else 0
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
