"""A zip bomb workbook: cxrules recalc against the obvious readers, each in its own process.

    python bench/hostile.py [--unpacked-mb 4000] [--cap-mb 3000] [--timeout 60]

Builds a valid .xlsx of about 4 MB whose sheet part unpacks to about 4 GB (a header row,
then gigabytes of blanks between rows; the blanks are streamed into the deflater and never
held in memory), then runs:
  1. `cxrules recalc` on it (the guard should refuse it before anything is unpacked);
  2. the obvious alternatives on the same file: openpyxl.load_workbook, python-calamine,
     pandas.read_excel. Each runs under an address-space cap (--cap-mb) and a time limit,
     so it cannot harm the machine: it fails at the cap instead of swapping.
Prints each one's exit, peak memory (max RSS of that process, from wait4) and wall time.
Targets for cxrules: under 500 MB and under 5 s.
"""
from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20

CT = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
      '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
      '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
WB = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
      'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>')
WB_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
           '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
HEAD = ["Customer ID", "Last purchase", "Orders 12m", "Spend 12m"]
HEAD_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


def _row(r, values):
    cells = "".join(f'<c r="{chr(65 + j)}{r}" t="inlineStr"><is><t>{v}</t></is></c>' if isinstance(v, str) else f'<c r="{chr(65 + j)}{r}"><v>{v}</v></c>'
                    for j, v in enumerate(values))
    return f'<row r="{r}">{cells}</row>'


def make_bomb(path, unpacked_mb: int = 4000, declared_mb: int | None = None) -> Path:
    """A valid workbook whose sheet part unpacks to about unpacked_mb MiB of blanks between
    two rows. declared_mb: let the zip entry claim that size instead (a lying entry)."""
    prefix = (HEAD_XML + "<sheetData>" + _row(1, HEAD)).encode()
    suffix = (_row(2, ["C0000001", 46000, 3, 1200]) + "</sheetData></worksheet>").encode()
    blank = b" " * MIB
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = z.compress(prefix) + z.flush(zlib.Z_FULL_FLUSH)
    # after a full flush the deflater starts afresh, so every MiB of blanks packs to the same bytes
    unit = z.compress(blank) + z.flush(zlib.Z_FULL_FLUSH)
    tail = z.compress(suffix) + z.flush()
    crc = zlib.crc32(prefix)
    for _ in range(unpacked_mb):
        crc = zlib.crc32(blank, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + unpacked_mb * MIB + len(suffix)
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("[Content_Types].xml", CT), ("_rels/.rels", RELS), ("xl/workbook.xml", WB), ("xl/_rels/workbook.xml.rels", WB_RELS)):
            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), text, zipfile.ZIP_DEFLATED)
        # the packed bytes go in as they are (zipfile would deflate them itself)
        zi = zipfile.ZipInfo("xl/worksheets/sheet1.xml", (2026, 1, 1, 0, 0, 0))
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi.file_size = declared_mb * MIB if declared_mb is not None else size
        zi.compress_size = len(head) + unpacked_mb * len(unit) + len(tail)
        zi.CRC = crc
        zf.fp.seek(zf.start_dir)
        zi.header_offset = zf.fp.tell()
        big = zipfile.ZIP64_LIMIT  # 2 GiB on Python 3.10, where the header must say zip64 past it
        zf.fp.write(zi.FileHeader(zip64=zi.file_size > big or zi.compress_size > big))
        zf.fp.write(head)
        for _ in range(unpacked_mb):
            zf.fp.write(unit)
        zf.fp.write(tail)
        zf.filelist.append(zi)
        zf.NameToInfo[zi.filename] = zi
        zf.start_dir = zf.fp.tell()
        zf._didModify = True
    return path


def run_capped(cmd, cap_mb: int | None, timeout: float, env=None):
    """Run cmd; returns (exit code or signal name, peak RSS in MB, seconds, stderr tail)."""

    def limits():
        if cap_mb:
            resource.setrlimit(resource.RLIMIT_AS, (cap_mb * MIB, cap_mb * MIB))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    t = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limits, env=env)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        secs = time.perf_counter() - t
        err.seek(0)
        tail = err.read().decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    code = p.returncode if p.returncode >= 0 else signal.Signals(-p.returncode).name
    if code == "SIGKILL" and secs >= timeout:
        code = f"killed after {timeout:.0f} s"
    return code, ru.ru_maxrss / 1024, secs, tail[0][:160]


ALTERNATIVES = {
    "openpyxl.load_workbook": "import openpyxl,sys; wb = openpyxl.load_workbook(sys.argv[1]); print(wb.active.max_row)",
    "openpyxl read_only": "import openpyxl,sys; wb = openpyxl.load_workbook(sys.argv[1], read_only=True); print(sum(1 for _ in wb.active.iter_rows()))",
    "python-calamine": "import python_calamine as c,sys; print(len(c.CalamineWorkbook.from_path(sys.argv[1]).get_sheet_by_index(0).to_python()))",
    "pandas.read_excel": "import pandas,sys; print(len(pandas.read_excel(sys.argv[1])))",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--unpacked-mb", type=int, default=4000, help="MiB the sheet part unpacks to")
    ap.add_argument("--cap-mb", type=int, default=3000, help="address-space cap for each alternative")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--skip-alternatives", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        bomb = Path(tmp) / "bomb.xlsx"
        t = time.perf_counter()
        make_bomb(bomb, a.unpacked_mb)
        info = zipfile.ZipFile(bomb).getinfo("xl/worksheets/sheet1.xml")
        print(f"bomb: {bomb.stat().st_size / 1e6:.1f} MB file, sheet part unpacks to {info.file_size / 1e9:.2f} GB "
              f"({info.file_size / info.compress_size:.0f}:1), made in {time.perf_counter() - t:.1f} s")
        before = bomb.read_bytes()
        runs = [("cxrules recalc", [sys.executable, "-m", "cxrules.cli", "recalc", str(bomb)], 4000)]
        if not a.skip_alternatives:
            runs += [(label, [sys.executable, "-c", code, str(bomb)], a.cap_mb) for label, code in ALTERNATIVES.items()]
        print(f"{'method':24s} {'exit':>22s} {'peak RSS':>10s} {'wall':>8s}  last line of stderr")
        for label, cmd, cap in runs:
            code, rss, secs, tail = run_capped(cmd, cap, a.timeout, env)
            print(f"{label:24s} {str(code):>22s} {rss:7.0f} MB {secs:6.2f} s  {tail}")
        print("bomb unchanged" if bomb.read_bytes() == before else "BOMB CHANGED")


if __name__ == "__main__":
    main()
