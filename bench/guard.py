"""The guard scan before python-calamine reads a sheet: the previous implementation beside
the current one, on bench/recalc.py's 100k customers + 20k cases workbook.

    python bench/guard.py                 # median of 5 interleaved runs per sheet
    python bench/guard.py --repeat 9 --max  # also the 1,048,575-row sheet, and peak memory

Each run is what Workbook.read_sheet does before calamine: unpack the sheet part with
package_guard.inflated (zip-bomb limits, CRC), scan_sheet_xml (error cells, formula cells
without values) fed to UsedArea.see, then UsedArea.check (the used area). The previous and
the current scan run one after the other, each repetition, so a busy machine slows both
alike; both CPU time (all threads of the process) and wall time are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import recalc as recalc_bench  # noqa: E402  bench/recalc.py: its workbook maker

from cxrules import xlsx_read  # noqa: E402
from cxrules.package_guard import inflated  # noqa: E402
from cxrules.xlsx_read import (  # noqa: E402  unchanged since: used as they are
    _CELL_R, _ERR_CELL, _F_ANY, _F_NO_V, _ROW_END, MAX_COL, MAX_ROW, WorkbookError, _read_pieces, _scan_slow, _used_area,
    _used_area_counted, cell_ref, col_index, range_ref,
)


# ============================================================ the previous implementation
# (cxrules/xlsx_read.py before the numpy scan and the unpacking thread: what it replaced, copied
# unchanged; the exact passes it falls back on are imported, they did not change)
# calamine lays a sheet out as one block of cells from its first used row and column to its
# last (about 32 bytes a cell), and reserves room for as many shared strings as the part
# says it has. A number it cannot allocate aborts the process (no exception, no message),
# so both are checked first.
MAX_GRID_CELLS = 100_000_000
# Searches for the usual spelling r="A1" (a literal prefix keeps them fast): the longest
# column letters and row numbers bound the area. A reference spelled otherwise, or a cell
# placed by counting (no reference), leads to the exact count when the bound is too big.
_LETTERS_AT_LEAST = [(n, re.compile(rb'r="[A-Za-z]{%d,}\d' % n)) for n in (4, 3, 2)]
# two-letter columns: a first letter from N on means columns up to ZZ (26 x 26 + 26), ...
_FIRST_LETTER = [(top, re.compile(rb'r="[%s-Z][A-Z]\d' % bytes([c]))) for c, top in ((ord("N"), 26), (ord("G"), 13), (ord("D"), 6), (ord("B"), 3))]
_DIGITS_AT_LEAST = [(d, re.compile(rb'r="[A-Za-z]{0,3}\d{%d}' % d)) for d in (7, 6, 5, 4, 3, 2)]  # 8+ digits: 7 finds them
# either of the two above (two letters or more, more digits than d): one pass where, as usual, neither is there
_MORE = {d: re.compile(rb'r="(?:[A-Za-z]{2,}\d|[A-Za-z]{0,3}\d{%d})' % (d + 1)) for d in range(1, 7)}
_BEYOND = re.compile(rb'r="(?:[A-Za-z]{0,3}(?:[2-9]\d{6}|1[1-9]\d{5}|10[5-9]\d{4}|1049\d{3}|1048[6-9]\d\d|10485[89]\d|104857[7-9]|\d{8})|(?:XF[E-Z]|X[G-Z][A-Z]|[YZ][A-Z]{2}|[A-Z]{4})\d)')
_NO_REF_FIRST = [re.compile(rb'<c(?:>|\s(?!r="))'), re.compile(rb':c(?:>|\s(?!r="))')]
_NO_REF = [re.compile(rb'<c(?:>|\s(?![^>]*?\br\s*=))'), re.compile(rb':c(?:>|\s(?![^>]*?\br\s*=))')]
_ANY_REF = re.compile(rb'\br\s*=\s*["\']([A-Za-z]*)(\d*)["\']')


class UsedArea:
    """Fed the sheet's XML piece by piece; check() refuses a sheet whose cells span more than
    MAX_GRID_CELLS, or lie outside Excel's grid."""

    def __init__(self):
        self.letters, self.first, self.digits, self.counted, self.odd, self.beyond = 1, 1, 1, False, False, False

    def see(self, chunk: bytes) -> None:
        news = not (self.letters < 4 and self.digits < 7) or _MORE[self.digits].search(chunk) is not None
        if news and self.letters < 4 and _LETTERS_AT_LEAST[-1][1].search(chunk):  # any column past Z at all
            self.letters = next((n for n, p in _LETTERS_AT_LEAST if n > self.letters and p.search(chunk)), self.letters)
        if self.letters == 2:
            self.first = next((c for c, p in _FIRST_LETTER if c > self.first and p.search(chunk)), self.first)
        if news and self.digits < 7 and _DIGITS_AT_LEAST[6 - self.digits][1].search(chunk):  # more digits than so far: how many
            self.digits = next((d for d, p in _DIGITS_AT_LEAST if d > self.digits and p.search(chunk)), self.digits)
        if (self.digits == 7 or self.letters >= 3) and not self.beyond:
            self.beyond = bool(_BEYOND.search(chunk)) or self.letters > 3
        if not self.counted and any(p.search(chunk) for p in _NO_REF_FIRST):  # "<c r=" in every writer seen
            self.counted = any(p.search(chunk) for p in _NO_REF)
        self.odd = self.odd or chunk.count(b"=") != chunk.count(b'="')  # r = 'A1' and the like, or '=' in text

    def check(self, path, sheet: str, zf: zipfile.ZipFile, part: str) -> None:
        if not (self.beyond or self.counted or self.odd):
            width = {1: 26, 2: 26 + 26 * self.first, 3: MAX_COL}[self.letters]
            if min(10**self.digits - 1, MAX_ROW) * width <= MAX_GRID_CELLS:
                return
        r1, c1, r2, c2 = _used_area_counted(zf, part) if self.counted else _used_area(zf, part)
        if r2 > MAX_ROW or c2 >= MAX_COL:
            raise WorkbookError(f"{path}: sheet '{sheet}' is damaged: cell {cell_ref(r2, c2)} is outside Excel's grid (XFD1048576 is the last cell); "
                                "open it in Excel, let it repair, and save it again")
        if r2 >= r1 and (r2 - r1 + 1) * (c2 - c1 + 1) > MAX_GRID_CELLS:
            area = range_ref(r1, c1, r2, c2)
            raise WorkbookError(
                f"{path}: sheet '{sheet}' has cells across {area} ({r2 - r1 + 1:,} rows x {c2 - c1 + 1:,} columns), more than cxrules "
                f"reads in one sheet ({MAX_GRID_CELLS:,} cells); delete the cells far from the data (Ctrl+End in Excel goes to the last one) and save it")


def iter_row_chunks(zf: zipfile.ZipFile, part: str, size: int = 8 << 20, pieces=None):
    """The sheet XML in pieces that each end after a </row> (the last piece ends the file);
    from `pieces` (the part's bytes, unpacked by the caller) if given."""
    it = iter(pieces if pieces is not None else _read_pieces(zf, part, size))
    rest = b""
    while True:
        data = next(it, b"")
        if not data:
            if rest:
                yield rest
            return
        buf = rest + data
        cut = buf.rfind(_ROW_END)
        if cut < 0:
            rest = buf
            continue
        cut += len(_ROW_END)
        yield buf[:cut]
        rest = buf[cut:]


def scan_sheet_xml(zf: zipfile.ZipFile, part: str, observe=None, all_formulas: bool = False, pieces=None):
    """Error cells {(row, col): '#N/A'}, formula cells without a cached value, and (with
    all_formulas) every formula cell, whose values are placeholders.

    `observe` is called with every piece of the XML, so one pass serves other scans too;
    `pieces`: the part's bytes as the caller unpacks them (default: read from `zf`).
    """
    errors: dict[tuple[int, int], str] = {}
    no_value: set[tuple[int, int]] = set()
    every: set[tuple[int, int]] = set()
    chunks = iter_row_chunks(zf, part, pieces=pieces)
    slow = False
    for chunk in chunks:
        if observe is not None:
            observe(chunk)
        if slow:
            continue
        has_err = b't="e"' in chunk
        has_f = b"<f" in chunk
        if not (has_err or has_f):
            continue
        if has_err:
            for m in _ERR_CELL.finditer(chunk):
                r = _CELL_R.search(m.group(0))
                if r is None:
                    slow = True
                    break
                errors[(int(r.group(2)), col_index(r.group(1)))] = m.group(1).decode("utf-8").strip()
        if has_f and all_formulas and not slow:
            for m in _F_ANY.finditer(chunk):
                r = _CELL_R.search(m.group(1))
                if r is None:
                    slow = True
                    break
                every.add((int(r.group(2)), col_index(r.group(1))))
        if has_f and not slow:
            for m in _F_NO_V.finditer(chunk):
                a = m.group(1)
                if m.group(2) and b't="str"' in a:  # an empty text result is a value
                    continue
                r = _CELL_R.search(a)
                if r is None:
                    slow = True
                    break
                no_value.add((int(r.group(2)), col_index(r.group(1))))
    return _scan_slow(zf, part, all_formulas) if slow else (errors, no_value, every)


# ============================================================ the bench
def previous(path, zf, part):
    area = UsedArea()
    out = scan_sheet_xml(zf, part, area.see, False, inflated(path, zf.getinfo(part), 8 << 20))
    area.check(path, part, zf, part)
    return out


def current(path, zf, part):
    area = xlsx_read.UsedArea()
    out = xlsx_read.scan_sheet_xml(zf, part, area.see, False, inflated(path, zf.getinfo(part), 8 << 20))
    area.check(path, part, zf, part)
    return out


SCANS = {"previous": previous, "current": current}


def timed(f, *args):
    w, c = time.perf_counter(), time.process_time()
    out = f(*args)
    return time.perf_counter() - w, time.process_time() - c, out


def compare(path: Path, sheets: list[str], repeat: int) -> None:
    with zipfile.ZipFile(path) as zf:
        for k, name in enumerate(sheets, 1):
            part = f"xl/worksheets/sheet{k}.xml"
            times: dict[str, list] = {label: [] for label in SCANS}
            found = {}
            for _ in range(repeat):  # interleaved
                for label, f in SCANS.items():
                    wall, cpu, found[label] = timed(f, path, zf, part)
                    times[label].append((wall, cpu))
            assert found["previous"] == found["current"], f"{name}: the scans disagree"
            print(f"sheet '{name}' ({zf.getinfo(part).file_size / 1e6:.1f} MB of XML), median of {repeat}:")
            med = {}
            for label, t in times.items():
                med[label] = statistics.median(w for w, _ in t), statistics.median(c for _, c in t)
                print(f"  {label:<9} wall {med[label][0] * 1000:7.1f} ms   CPU {med[label][1] * 1000:7.1f} ms"
                      f"   (wall {', '.join(f'{w * 1000:.0f}' for w, _ in t)})")
            (pw, pc), (cw, cc) = med["previous"], med["current"]
            print(f"  previous / current: wall {pw / cw:.2f}x, CPU {pc / cc:.2f}x")
            # the current scan's two halves apart: what each core does when a second one is free
            unpack = [timed(lambda: sum(map(len, inflated(path, zf.getinfo(part), 8 << 20))))[1] for _ in range(repeat)]
            unpacked = list(inflated(path, zf.getinfo(part), 8 << 20))
            scan = [timed(lambda: xlsx_read.scan_sheet_xml(zf, part, xlsx_read.UsedArea().see, False, unpacked))[1] for _ in range(repeat)]
            print(f"  current, apart: unpacking {statistics.median(unpack) * 1000:.1f} ms CPU (its thread), "
                  f"the scan {statistics.median(scan) * 1000:.1f} ms CPU (the caller's)")


def peaks(path: Path) -> None:
    """Each scan once in a fresh process: the most memory it held at once (tracemalloc, numpy's
    arrays included) and the process's peak RSS."""
    for label in SCANS:
        p = subprocess.run([sys.executable, __file__, "--child", label, str(path)], capture_output=True, text=True, check=True)
        got = json.loads(p.stdout)
        print(f"  {label:<9} held at most {got['held_mb']:5.0f} MB while scanning; process peak RSS {got['peak_mb']:.0f} MB "
              f"({got['rss_before_mb']:.0f} MB before the scan)")


def child(label: str, path: str) -> None:
    import tracemalloc

    rss = lambda key: int(re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024  # noqa: E731
    before = rss("VmRSS")
    tracemalloc.start()
    with zipfile.ZipFile(path) as zf:
        SCANS[label](path, zf, "xl/worksheets/sheet1.xml")
    held = tracemalloc.get_traced_memory()[1] / 1e6
    print(json.dumps({"held_mb": held, "peak_mb": rss("VmHWM"), "rss_before_mb": before}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--max", action="store_true", help="also a 1,048,575-row customer sheet, and each scan's peak memory on it")
    ap.add_argument("--child", nargs=2, metavar=("SCAN", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    load = lambda: " ".join(f"{x:.2f}" for x in os.getloadavg())  # noqa: E731
    print(f"guard scan before calamine, Python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.xlsx"
        rnd = random.Random(11)  # as bench/recalc.py
        sheets = [("Customers", recalc_bench.CUST_HEAD, recalc_bench.customers(a.customers, rnd))]
        if a.cases:
            sheets.append(("Cases", recalc_bench.CASE_HEAD, recalc_bench.cases(a.cases, rnd)))
        recalc_bench.make_workbook(src, sheets)
        print(f"{a.customers:,} customers + {a.cases:,} cases ({src.stat().st_size / 1e6:.1f} MB)")
        compare(src, [n for n, _, _ in sheets], a.repeat)
        if a.max:
            big = Path(tmp) / "max.xlsx"
            recalc_bench.make_workbook(big, [("Customers", recalc_bench.CUST_HEAD, recalc_bench.customers(1_048_575, rnd))])
            print(f"1,048,575 customers ({big.stat().st_size / 1e6:.1f} MB)")
            compare(big, ["Customers"], max(1, a.repeat // 2))
            peaks(big)
    print(f"load after {load()}")


if __name__ == "__main__":
    main()
