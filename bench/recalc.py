"""Batch recalculation: cxrules recalc beside the machine's limit and the obvious alternatives.

    python bench/recalc.py                  # 100k customers + 20k cases; 10k customers whole process
    python bench/recalc.py --max            # also the 1,048,575-row maximum (cxrules and the limit)
    python bench/recalc.py --repeat 5 --skip-alternatives

Every method runs in a fresh process (its peak memory is its own max RSS) and is timed from
its first import to its last byte written (cxrules' modules compiled beforehand, as installing
does); the runs of cxrules and of the limit's three parts
are interleaved, and medians are printed, with the machine's load before and after.

The limit is what this machine does for the same job with no checks and no generality:
  read     python-calamine reads every sheet and the columns become numpy arrays;
  splice   each sheet's XML is streamed through, the new cells (XML made once per distinct
           value, the row number put in per row) are put before each </row>, and the zip is
           written at cxrules' compression level, other parts copied as they are;
  compute  the same decisions as vectorised numpy over the loaded arrays (a lower bound: the
           business calendar counts whole working days).
The alternatives are what an analyst writes: pandas (read_excel, the decisions vectorised,
xlsxwriter to write) and openpyxl (load, a loop over the rows, save).
Targets (issue 12): 100k + 20k at most 1.3x the limit; 1,048,575 rows at most 1.3x the
limit in at most 1 GB; 10k customers, whole process, at most 0.8 s.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import random
import shutil
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
AS_OF = dt.datetime(2026, 11, 23, 10, 0)
EPOCH = dt.datetime(1899, 12, 30)

CUST_HEAD = ["Customer ID", "Name", "First purchase", "Last purchase", "Orders 12m", "Spend 12m", "Previous tier",
             "Months of rising spend", "Last contact"]
CASE_HEAD = ["Case ID", "Customer ID", "Opened at", "Severity", "Tier", "Case type", "Status", "Prior complaints"]


# ------------------------------------------------------------------ a fast .xlsx maker (bench only)
def _col(n):
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def _cell(ref, v):
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return f'<c r="{ref}" s="2"><v>{(v - EPOCH).total_seconds() / 86400:.6f}</v></c>'
    if isinstance(v, dt.date):
        return f'<c r="{ref}" s="1"><v>{(v - EPOCH.date()).days}</v></c>'
    if isinstance(v, (int, float)):
        return f'<c r="{ref}"><v>{v}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(v))}</t></is></c>'


def _sheet_xml(head, rows):
    cols = [_col(j) for j in range(len(head))]
    yield '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    yield '<row r="1">' + "".join(_cell(f"{c}1", h) for c, h in zip(cols, head)) + "</row>"
    for i, r in enumerate(rows, 2):
        yield f'<row r="{i}">' + "".join(_cell(f"{c}{i}", v) for c, v in zip(cols, r)) + "</row>"
    yield "</sheetData></worksheet>"


def make_workbook(path, sheets):
    """sheets: [(name, header, row iterator)] -> a minimal valid .xlsx, streamed."""
    ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
          '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
          + "".join(f'<Override PartName="/xl/worksheets/sheet{k}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for k in range(1, len(sheets) + 1))
          + "</Types>")
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
    wb = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
          + "".join(f'<sheet name="{n}" sheetId="{k}" r:id="rId{k}"/>' for k, (n, _, _) in enumerate(sheets, 1)) + "</sheets></workbook>")
    wrels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
             + "".join(f'<Relationship Id="rId{k}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{k}.xml"/>' for k in range(1, len(sheets) + 1))
             + f'<Relationship Id="rId{len(sheets) + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>')
    styles = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
              '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/><numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm"/></numFmts>'
              '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
              '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
              '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
              '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", ct)
        z.writestr("_rels/.rels", rels)
        z.writestr("xl/workbook.xml", wb)
        z.writestr("xl/_rels/workbook.xml.rels", wrels)
        z.writestr("xl/styles.xml", styles)
        for k, (_, head, rows) in enumerate(sheets, 1):
            with z.open(f"xl/worksheets/sheet{k}.xml", "w", force_zip64=True) as f:
                buf = []
                for part in _sheet_xml(head, rows):
                    buf.append(part)
                    if len(buf) >= 2000:
                        f.write("".join(buf).encode())
                        buf = []
                f.write("".join(buf).encode())


def customers(n, rnd):
    tiers = ["VIP", "High value", "Potential", "New", "Churn risk", "Regular", None, None]
    today = AS_OF.date()
    for i in range(n):
        yield [f"C{i:07d}", f"Customer {i}", today - dt.timedelta(days=rnd.randint(30, 2000)),
               today - dt.timedelta(days=int(rnd.expovariate(1 / 60))), rnd.randint(0, 12),
               round(rnd.lognormvariate(7.8, 1.2), 2), rnd.choice(tiers), rnd.randint(0, 3),
               today - dt.timedelta(days=rnd.randint(0, 120))]


def cases(n, rnd):
    for i in range(n):
        yield [f"CS{i:07d}", f"C{rnd.randint(0, 99999):07d}", AS_OF - dt.timedelta(minutes=rnd.randint(0, 20 * 24 * 60)),
               rnd.choices(["Urgent", "Complex", "Normal", "Minor"], [1, 4, 15, 6])[0],
               rnd.choice(["VIP", "High value", "Regular", "Regular", "Potential"]), rnd.choice(["Complaint", "Question", "Repair"]),
               rnd.choice(["Open", "In progress", "Resolved", "Closed", "Closed"]), rnd.randint(0, 4)]


# ------------------------------------------------------------------ the decisions, vectorised (limit and pandas)
TIERS = ["Churn risk", "VIP", "High value", "High value", "High value", "Potential", "New", "Churn risk", "Churn risk", "Regular"]
REASONS = ["No purchase for 3 months after being high value", "Annual spend of 500000 or more", "RFM high value",
           "Promoted - spend rose two months in a row", "Top 20 % by spend", "RFM potential", "First purchase this week",
           "RFM churn risk", "Dormant - no purchase for 6 months", "No other row applies"]


def customers_np(c):
    """c: header -> numpy array. The tier and contact decisions, next contact and days overdue."""
    import numpy as np

    today = np.datetime64(AS_OF.date(), "D")
    recency = (today - c["Last purchase"]).astype(np.int64)
    tenure = (today - c["First purchase"]).astype(np.int64)
    freq, spend, rising = c["Orders 12m"], c["Spend 12m"], np.nan_to_num(c["Months of rising spend"])
    prev = c["Previous tier"]
    srt = np.sort(spend)
    rank = 100.0 * np.searchsorted(srt, spend) / max(len(spend) - 1, 1)
    hv_before = (prev == "VIP") | (prev == "High value")
    conds = [hv_before & (recency > 90), spend >= 500000, (recency < 30) & (freq >= 5) & (spend >= 5000),
             (prev == "Potential") & (rising >= 2) & (recency <= 90), (recency <= 90) & (rank >= 80),
             (recency < 30) & (freq >= 2) & (freq <= 4) & (spend >= 2000) & (spend < 5000),
             (recency < 7) & (freq == 1) & (spend < 2000), (recency > 90) & (freq <= 1) & (spend < 1000), recency > 180]
    k = np.select(conds, np.arange(9), 9)
    tier = np.array(TIERS, dtype=object)[k]
    reason = np.array(REASONS, dtype=object)[k]
    vip, hv, pot, new, churn = (tier == "VIP"), (tier == "High value"), (tier == "Potential"), (tier == "New"), (tier == "Churn risk")
    every = np.select([vip, hv, pot, new & (tenure <= 7), new, churn, tier == "Regular"], [14, 7, 7, 1, 3, 7, 90], 30)
    channel = np.select([vip, hv, pot, new, churn & hv_before], ["Phone (account manager)", "Phone", "WeChat", "SMS", "Phone"], "SMS")
    purpose = np.select([vip, hv, pot, new & (tenure <= 7), new, churn & hv_before, churn, tier == "Regular"],
                        ["Care call", "Weekly reminder", "Light touch", "Welcome", "Follow-up", "Win-back call", "Win-back journey", "Quarterly push"], "Check in")
    nxt = c["Last contact"] + every.astype("timedelta64[D]")
    late = (today - nxt).astype(np.int64)
    return {"Tier": tier, "Tier reason": reason, "Contact every": every, "Channel": channel, "Contact purpose": purpose,
            "Next contact": nxt, "Days overdue": np.where(late > 0, late, 0)}


def cases_np(c):
    """The case decisions: deadlines (business days counted whole), escalation level, compensation."""
    import numpy as np

    now = np.datetime64(AS_OF, "s")
    sev, tier, kind, status = c["Severity"], c["Tier"], c["Case type"], c["Status"]
    opened = c["Opened at"].astype("datetime64[s]")
    urgent, complex_, vip, complaint = sev == "Urgent", sev == "Complex", tier == "VIP", kind == "Complaint"
    conds = [urgent, complex_, vip, complaint, sev == "Normal", sev == "Minor"]
    respond_h = np.select(conds, [2, 8, 4, 8, 8, 8], 8)
    resolve_h = np.select(conds, [24, 16, 8, 24, 24, 40], 24)
    owner = np.select(conds, ["Red channel team", "Expert panel", "Management", "Complaints desk", "Service desk", "Service desk"], "Service desk")
    days = opened.astype("datetime64[D]")
    respond_by = np.where(urgent, opened + (respond_h * 3600).astype("timedelta64[s]"),
                          np.busday_offset(days, np.ceil(respond_h / 7.5).astype(int), roll="forward").astype("datetime64[s]")
                          + (opened - days.astype("datetime64[s]")))
    resolve_by = np.where(urgent, opened + (resolve_h * 3600).astype("timedelta64[s]"),
                          np.busday_offset(days, np.ceil(resolve_h / 7.5).astype(int), roll="forward").astype("datetime64[s]")
                          + (opened - days.astype("datetime64[s]")))
    done = (status == "Resolved") | (status == "Closed")
    hours = (now - opened).astype(np.int64) / 3600
    level = np.where(done, 0, np.select([hours >= 168, hours >= 72, hours >= 24], [3, 2, 1], 0))
    notify = np.array(["", "Pop-up", "SMS", "Supervisor"], dtype=object)[level]
    points = (np.select([sev == "Minor", sev == "Normal", complex_, urgent], [1, 2, 3, 4], 0) + np.where(vip, 2, 0)
              + ((tier == "High value") | (tier == "Potential")) + (np.nan_to_num(c["Prior complaints"]) >= 2) + (level >= 2))
    offer = np.select([(points >= 7) & vip, points >= 7, points >= 5, points >= 3, points >= 1],
                      ["Gift + management follow-up", "Free service + call", "One month extension", "Coupon CNY 50", "Coupon CNY 10"], "")
    value = np.select([(points >= 7) & vip, points >= 7, points >= 5, points >= 3, points >= 1], [800, 500, 200, 50, 10], 0)
    late = np.maximum((now - respond_by).astype(np.int64), (now - resolve_by).astype(np.int64)) / 86400
    return {"Respond within": respond_h, "Resolve within": resolve_h, "Clock": np.where(urgent, "everyday", "business"),
            "Owner": owner, "Respond by": respond_by, "Resolve by": resolve_by, "Level": level, "Notify": notify,
            "Compensation points": points, "Offer": offer, "Offer value": value,
            "Days overdue": np.where(~done & (late > 0), np.round(late, 2), 0)}


DECIDE = {"Customers": customers_np, "Cases": cases_np}


def _arrays(rows):
    """calamine rows (header first) -> header -> numpy array: dates as datetime64, numbers as
    float64 (NaN blank), texts as objects."""
    import numpy as np

    head, body = rows[0], rows[1:]
    out = {}
    for j, h in enumerate(head):
        col = [r[j] if j < len(r) else "" for r in body]
        sample = next((v for v in col if v != ""), None)
        if isinstance(sample, (dt.date, dt.datetime)):
            unit = "s" if isinstance(sample, dt.datetime) else "D"
            out[h] = np.array([v if v != "" else None for v in col], dtype=f"datetime64[{unit}]")
        elif isinstance(sample, (int, float)) and not isinstance(sample, bool):
            out[h] = np.array([v if v != "" else np.nan for v in col], dtype=np.float64)
        else:
            out[h] = np.array(col, dtype=object)
    return out


# ------------------------------------------------------------------ the methods (each in its own process)
def run_cxrules(path, rules):
    from cxrules import rulesets
    from cxrules.evaluation import Evaluator
    from cxrules.recalc import recalc

    ev = Evaluator(rulesets.load_or_raise(rules))
    rep = recalc(path, ev, AS_OF)
    return {"rows": rep.rows, "problems": len(rep.problems)}


def run_phases(path, rules):
    """cxrules once more, its time split into phases (wall time; a small sheet is read by a
    thread while the one before is evaluated, and a big sheet's source is checked by a child
    process meanwhile, so phases overlap and 'write' includes any wait for that check)."""
    import functools

    from cxrules import evaluation, package_guard, recalc as rc, rulesets, xlsx_read, xlsx_write
    from cxrules.evaluation import Evaluator

    spent: dict = {}

    def timed(mod, name, label):
        f = getattr(mod, name)

        @functools.wraps(f)
        def g(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                spent[label] = spent.get(label, 0) + time.perf_counter() - t
        setattr(mod, name, g)
        return g

    xlsx_read.vet_package = timed(package_guard, "vet_package", "zip guard")
    xlsx_write.vet_package = package_guard.vet_package
    timed(package_guard, "check_inflation", "zip guard")  # the parts but the sheets (a sheet's read checks its own)
    timed(xlsx_read, "scan_sheet_xml", "guard scan (used area, errors)")
    timed(xlsx_read.Workbook, "read_sheet", "read (guard scan + calamine)")
    timed(evaluation.Evaluator, "evaluate_columns", "evaluate")
    timed(rc, "_recalc_sheet", "evaluate + results per sheet")
    timed(rc, "write_workbook", "write (splice, pack, check)")
    t = time.perf_counter()
    ev = Evaluator(rulesets.load_or_raise(rules))
    spent["rules"] = time.perf_counter() - t
    rc.recalc(path, ev, AS_OF)
    return {"rows": 0, "phases": spent}


def run_read(path, rules):
    import python_calamine as cal

    wb = cal.CalamineWorkbook.from_path(str(path))
    n = 0
    for name in wb.sheet_names:
        rows = wb.get_sheet_by_name(name).to_python(skip_empty_area=True)
        cols = _arrays(rows)
        n += len(rows) - 1
    return {"rows": n, "columns": len(cols)}


def run_compute(path, rules):
    """Loads the arrays untimed, then times the decisions alone."""
    import python_calamine as cal

    wb = cal.CalamineWorkbook.from_path(str(path))
    loaded = {name: _arrays(wb.get_sheet_by_name(name).to_python(skip_empty_area=True)) for name in wb.sheet_names}
    t = time.perf_counter()
    n = 0
    for name, cols in loaded.items():
        out = DECIDE[name](cols)
        n += len(next(iter(out.values())))
    return {"rows": n, "seconds": time.perf_counter() - t}


# the columns cxrules adds to each sheet, with values of the kinds it writes there
SPLICE_COLS = {
    "Customers": ["text:6", "text:10", "text:7", "text:5", "text:9", "text:6", "date:400", "number:120"],
    "Cases": ["text:4", "text:4", "text:2", "text:5", "datetime", "datetime", "number:4", "text:4", "number:10", "text:6",
              "number:6", "float"],
}


def run_splice(path, rules):
    """Stream each sheet's XML, put the new cells before every </row>, write the zip."""
    import re
    from itertools import chain, repeat
    import numpy as np

    src = zipfile.ZipFile(path)
    out_path = str(path) + ".out"
    rnd = np.random.default_rng(1)
    row_re = re.compile(rb'<row r="(\d+)"')
    with zipfile.ZipFile(out_path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zout:
        names = {f"xl/worksheets/sheet{k}.xml": s for k, s in enumerate(("Customers", "Cases"), 1)}
        for info in src.infolist():
            sheet = names.get(info.filename)
            if sheet is None:
                zout.writestr(info, src.read(info.filename))
                continue
            n = max(info.file_size // 300, 1) + 10  # enough values for every row
            kinds = SPLICE_COLS[sheet]
            first = 10  # the new columns start at K
            cells = []  # per column: XML after r="..." per row, made once per distinct value
            for j, kind in enumerate(kinds):
                what, _, m = kind.partition(":")
                if what == "text":
                    distinct = [b' t="inlineStr"><is><t>Value %d of %s</t></is></c>' % (v, kind.encode()) for v in range(int(m))]
                elif what == "date":
                    distinct = [b' s="1"><v>%d</v></c>' % (46300 + v) for v in range(int(m))]
                elif what == "number":
                    distinct = [b"><v>%d</v></c>" % v for v in range(int(m))]
                else:
                    distinct = None
                if distinct is not None:
                    pick = rnd.integers(0, len(distinct), n).tolist()
                    cells.append([distinct[p] for p in pick])
                else:  # a value per row: formatted per row
                    xs = (46300 + rnd.random(n) * 40).tolist()
                    cells.append([b' s="2"><v>' + repr(x).encode() + b"</v></c>" for x in xs])
            refs = [b'<c r="' + _col(first + j).encode() for j in range(len(kinds))]
            zi = zipfile.ZipInfo(info.filename, info.date_time)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi._compresslevel = 1
            with src.open(info) as fin, zout.open(zi, "w", force_zip64=True) as w:
                carry = b""
                while True:
                    data = fin.read(8 << 20)
                    buf = carry + data
                    cut = buf.rfind(b"</row>") + 6 if data else len(buf)
                    body, carry = buf[:cut], buf[cut:]
                    nums = row_re.findall(body)
                    if nums:
                        r0 = int(nums[0])
                        nb = [x + b'"' for x in nums]
                        cols = []
                        for ref, col in zip(refs, cells):
                            cols += [repeat(ref, len(nums)), nb, col[r0 : r0 + len(nums)]]
                        cols.append(repeat(b"</row>", len(nums)))
                        pieces = body.split(b"</row>")
                        body = b"".join(chain.from_iterable(zip(pieces, map(b"".join, zip(*cols))))) + pieces[-1]
                    w.write(body)
                    if not data:
                        break
    os.replace(out_path, path)
    return {"rows": 0}


def run_pandas(path, rules):
    """pandas reads (its default engine), the decisions vectorised, xlsxwriter writes."""
    import numpy as np
    import pandas as pd

    frames = pd.read_excel(path, sheet_name=None)
    n = 0
    with pd.ExcelWriter(str(path) + ".out.xlsx", engine="xlsxwriter") as xw:
        for name, df in frames.items():
            cols = {}
            for h in df.columns:
                s = df[h]
                if pd.api.types.is_datetime64_any_dtype(s):
                    cols[h] = s.values.astype("datetime64[s]" if name == "Cases" else "datetime64[D]")
                elif pd.api.types.is_numeric_dtype(s):
                    cols[h] = s.to_numpy(dtype=np.float64)
                else:
                    cols[h] = s.to_numpy(dtype=object)
            for k, v in DECIDE[name](cols).items():
                df[k] = v
            df.to_excel(xw, sheet_name=name, index=False)
            n += len(df)
    os.replace(str(path) + ".out.xlsx", path)
    return {"rows": n}


def run_openpyxl(path, rules):
    """openpyxl loads the workbook, a loop over the rows decides (the tier and a due date per
    customer, a level and deadline per case), and saves it."""
    import openpyxl

    wb = openpyxl.load_workbook(path)
    n = 0
    today = AS_OF.date()
    for ws in wb.worksheets:
        head = [c.value for c in ws[1]]
        at = {h: k for k, h in enumerate(head)}
        col0 = len(head) + 1
        for i, row in enumerate(ws.iter_rows(min_row=2, values_only=True), 2):
            if ws.title == "Customers":
                last = row[at["Last purchase"]]
                recency = (today - (last.date() if isinstance(last, dt.datetime) else last)).days if last else 999
                spend, freq = row[at["Spend 12m"]] or 0, row[at["Orders 12m"]] or 0
                tier = ("VIP" if spend >= 500000 else "High value" if recency < 30 and freq >= 5 and spend >= 5000
                        else "Churn risk" if recency > 180 else "Regular")
                every = {"VIP": 14, "High value": 7, "Churn risk": 7}.get(tier, 90)
                lc = row[at["Last contact"]]
                nxt = (lc.date() if isinstance(lc, dt.datetime) else lc) + dt.timedelta(days=every) if lc else None
                vals = [tier, "reason", f"{every}d", "SMS", "purpose", nxt, max((today - nxt).days, 0) if nxt else None]
            else:
                opened = row[at["Opened at"]]
                hours = (AS_OF - opened).total_seconds() / 3600 if opened else 0
                level = 3 if hours >= 168 else 2 if hours >= 72 else 1 if hours >= 24 else 0
                vals = ["1d", "3d", "business", "Service desk", opened, opened, level, "SMS", 2, "Coupon", 10, 0.5]
            for j, v in enumerate(vals):
                ws.cell(i, col0 + j, v)
            n += 1
    wb.save(path)
    return {"rows": n}


METHODS = {"imports": None, "cxrules": run_cxrules, "phases": run_phases, "read": run_read, "splice": run_splice, "compute": run_compute,
           "pandas": run_pandas, "openpyxl": run_openpyxl}


def child(method, path, rules):
    if method in ("read", "splice", "compute"):  # the limit pays its imports once, in "imports"
        importlib.import_module("numpy")
        importlib.import_module("python_calamine")
    if method == "imports":
        t = time.perf_counter()
        importlib.import_module("numpy")
        importlib.import_module("python_calamine")
        print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": 0, "rows": 0}))
        return
    t = time.perf_counter()
    out = METHODS[method](path, rules)
    out.setdefault("seconds", time.perf_counter() - t)
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def measure(method, src, rules, tmp):
    path = Path(tmp) / f"{method}.xlsx"
    shutil.copy(src, path)
    p = subprocess.run([sys.executable, __file__, "--child", method, str(path), rules], capture_output=True, text=True)
    path.unlink(missing_ok=True)
    if p.returncode:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr else "failed"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def whole_process(src, rules, tmp):
    """`python -m cxrules.cli recalc` on a copy, wall time of the whole process."""
    path = Path(tmp) / "whole.xlsx"
    shutil.copy(src, path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "cxrules.cli", "recalc", str(path), "--rules", rules, "--as-of",
                        AS_OF.strftime("%Y-%m-%d %H:%M"), "--silent"], capture_output=True, text=True, env=env, cwd=tmp)
    secs = time.perf_counter() - t
    path.unlink(missing_ok=True)
    return {"seconds": secs, "peak_mb": 0, "rows": 0} if p.returncode in (0, 1) else {"error": p.stderr.strip()[-200:]}


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def compare(title, src, rules, tmp, repeat, alternatives):
    """Interleaved runs of cxrules and the limit's parts; medians; then the alternatives once."""
    print(f"{title}  [{load()} before]")
    runs: dict[str, list] = {m: [] for m in ("cxrules", "imports", "read", "splice", "compute")}
    for _ in range(repeat):
        for m in runs:
            runs[m].append(measure(m, src, rules, tmp))
    med = {}
    for m, rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            print(f"  {m:<34} failed: {rs[0]['error']}")
            return
        med[m] = {"seconds": statistics.median(r["seconds"] for r in ok), "peak_mb": max(r["peak_mb"] for r in ok),
                  "all": [r["seconds"] for r in ok]}
    limit = sum(med[m]["seconds"] for m in ("imports", "read", "splice", "compute"))
    for m, label in (("imports", "limit: imports (numpy, calamine)"), ("read", "limit: read (calamine + arrays)"), ("splice", "limit: splice (+ new cells, zip)"),
                     ("compute", "limit: compute (numpy)")):
        _show(label, med[m], repeat)
    print(f"  {'limit: total':<34} {limit:>7.2f} s")
    _show("cxrules recalc", med["cxrules"], repeat)
    print(f"  {'cxrules / limit':<34} {med['cxrules']['seconds'] / limit:>7.2f} x   (target at most 1.3 x)")
    ph = measure("phases", src, rules, tmp)
    if "phases" in ph:
        print("  cxrules, one more run in phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in ph["phases"].items()))
    for m, label in alternatives:
        r = measure(m, src, rules, tmp)
        if "error" in r:
            print(f"  {label:<34} failed: {r['error']}")
        else:
            _show(label, {"seconds": r["seconds"], "peak_mb": r["peak_mb"], "all": [r["seconds"]]}, 1)
            print(f"  {'':<34} {r['seconds'] / limit:>7.2f} x the limit, {r['seconds'] / med['cxrules']['seconds']:.1f} x cxrules")
    print(f"  [{load()} after]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs of cxrules and the limit (medians)")
    ap.add_argument("--max", action="store_true", help="also a 1,048,575-row customer sheet (cxrules and the limit)")
    ap.add_argument("--skip-alternatives", action="store_true")
    ap.add_argument("--whole", type=int, default=10_000, help="customers for the whole-process run (0: none)")
    ap.add_argument("--rules", default=str(ROOT / "rules"))
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "PATH", "RULES"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    rnd = random.Random(11)
    import compileall

    compileall.compile_dir(str(ROOT / "cxrules"), quiet=1)  # as installing does: no run pays for compiling
    print(f"cxrules recalc benchmark, Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        if a.whole:
            small = Path(tmp) / "small.xlsx"
            make_workbook(small, [("Customers", CUST_HEAD, customers(a.whole, random.Random(12)))])
            print(f"{a.whole:,} customers, whole process (python -m cxrules.cli recalc)  [{load()}]")
            w = [whole_process(small, a.rules, tmp) for _ in range(max(a.repeat, 5))]
            ok = [r["seconds"] for r in w if "error" not in r]
            if ok:
                print(f"  {'whole process':<34} {statistics.median(ok):>7.2f} s   median of {len(ok)} "
                      f"({', '.join(f'{x:.2f}' for x in ok)}); target at most 0.8 s")
            else:
                print(f"  whole process failed: {w[0]['error']}")
        if a.customers or a.cases:
            src = Path(tmp) / "src.xlsx"
            t = time.perf_counter()
            sheets = [("Customers", CUST_HEAD, customers(a.customers, rnd))]
            if a.cases:
                sheets.append(("Cases", CASE_HEAD, cases(a.cases, rnd)))
            make_workbook(src, sheets)
            alts = [] if a.skip_alternatives else [("pandas", "pandas + xlsxwriter"), ("openpyxl", "openpyxl")]
            compare(f"{a.customers:,} customers + {a.cases:,} cases ({src.stat().st_size / 1e6:.1f} MB, made in "
                    f"{time.perf_counter() - t:.1f} s), {a.repeat} interleaved runs", src, a.rules, tmp, a.repeat, alts)
            src.unlink()
        if a.max:
            big = Path(tmp) / "max.xlsx"
            t = time.perf_counter()
            make_workbook(big, [("Customers", CUST_HEAD, customers(1_048_575, rnd))])
            compare(f"1,048,575 customers ({big.stat().st_size / 1e6:.1f} MB, made in {time.perf_counter() - t:.1f} s), "
                    f"{a.repeat} interleaved runs; target also at most 1 GB", big, a.rules, tmp, a.repeat, [])


def _show(label, r, repeat):
    spread = f" ({', '.join(f'{x:.2f}' for x in r['all'])})" if len(r["all"]) > 1 else ""
    print(f"  {label:<34} {r['seconds']:>7.2f} s   peak {r['peak_mb']:>6.0f} MB{spread}")


if __name__ == "__main__":
    main()
