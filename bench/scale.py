"""`cxrules run` on one process, Dask and Spark over the same customers, in one run.

    python bench/scale.py                    # 2,000,000 customers, 2 workers for Dask and Spark
    python bench/scale.py --rows 200000 --workers 2

The customers are written once as 16 Parquet files sorted by spend (each file one band of it,
the case that needs the whole table's percentile). Each engine runs in a fresh process, timed
from its start to its last file written; CPU seconds are the process and every descendant it
under it (Dask's worker processes, Spark's JVM and Python workers), sampled from /proc. Printed:
rows/s and CPU seconds per million rows per engine, beside the single process (the obvious
alternative), and whether each engine's results equal the single process's row for row.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

AS_OF = "2026-11-23 09:30"


def make(folder: Path, rows: int, files: int = 16) -> None:
    rng = np.random.default_rng(2026)
    spend = np.where(rng.random(rows) < 0.4, rng.choice([0.0, 120.0, 2000.0, 5000.0, 600000.0], rows),
                     np.round(rng.gamma(1.2, 6000.0, rows), 2))
    spend.sort()
    base = np.datetime64("2025-01-01")
    last = base + rng.integers(0, 690, rows).astype("timedelta64[D]")
    first = last - rng.integers(0, 1500, rows).astype("timedelta64[D]")
    contact = last + rng.integers(0, 30, rows).astype("timedelta64[D]")
    tiers = np.array(["VIP", "Potential", "High value", "Regular", "New"], dtype=object)
    t = pa.table({
        "customer_id": pa.array(np.arange(rows, dtype=np.int64)),
        "last_purchase": pa.array(last, pa.date32()),
        "first_purchase": pa.array(first, pa.date32()),
        "last_contact": pa.array(contact, pa.date32()),
        "frequency": pa.array(rng.integers(0, 15, rows)),
        "monetary": pa.array(spend),
        "previous_tier": pa.array(tiers[rng.integers(0, 5, rows)]),
        "rising_months": pa.array(rng.integers(0, 4, rows)),
    })
    folder.mkdir()
    step = -(-rows // files)
    for i in range(files):
        pq.write_table(t.slice(i * step, step), folder / f"part-{i:02d}.parquet")


def one(engine: str, src: str, out: str, workers: int) -> None:
    """The child: one engine, as `cxrules run` runs it."""
    from cxrules import rulesets
    from cxrules.run import run

    rs = rulesets.load_or_raise(rulesets.bundled_rules_dir())
    kw = {"workers": workers} if engine == "dask" else {"master": f"local[{workers}]"} if engine == "spark" else {}
    rep = run(src, out, rs, as_of=dt.datetime(2026, 11, 23, 9, 30), key="customer_id", engine=engine, **kw)
    if engine == "spark":
        from pyspark.sql import SparkSession

        SparkSession.getActiveSession().stop()
    print(rep.rows, rep.rows_with_problems)


def _tree_cpu(root: int, seen: dict) -> None:
    """CPU seconds so far of `root` and its descendants, per process, into `seen` (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])
        cpu[int(d)] = (int(fields[11]) + int(fields[12])) / tick
    for pid, c in cpu.items():
        p = pid
        while p not in (0, 1, root) and p in parent:
            p = parent[p]
        if p == root:
            seen[pid] = max(seen.get(pid, 0.0), c)


def timed(engine: str, src: Path, out: Path, workers: int) -> tuple[float, float, int]:
    """Wall and CPU seconds (the child and every process under it: Dask's workers, Spark's JVM
    and Python workers, sampled from /proc every 0.2 s) and the rows done."""
    t = time.perf_counter()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    p = subprocess.Popen([sys.executable, __file__, "--one", engine, str(src), str(out), str(workers)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: dict = {}
    while p.poll() is None:
        _tree_cpu(p.pid, seen)
        time.sleep(0.2)
    wall = time.perf_counter() - t
    stdout, stderr = p.communicate()
    if p.returncode:
        sys.exit(f"{engine} failed:\n{stderr[-3000:]}")
    rows = int(stdout.split()[-2])
    return wall, sum(seen.values()), rows


def results(path: Path) -> pa.Table:
    return pq.read_table(path).sort_by("customer_id")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--one", nargs=4, metavar=("ENGINE", "SRC", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        one(a.one[0], a.one[1], a.one[2], int(a.one[3]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        make(tmp / "in", a.rows)
        print(f"{a.rows:,} customers in 16 Parquet files sorted by spend ({time.perf_counter() - t:.1f} s to make); "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; Dask and Spark with {a.workers} workers")
        print(f"{'engine':<8} {'wall s':>8} {'rows/s':>10} {'CPU s':>8} {'CPU s / M rows':>15}  same as local")
        ref = None
        for engine in ("local", "dask", "spark"):
            out = tmp / (f"{engine}.parquet" if engine == "local" else engine)
            wall, cpu, rows = timed(engine, tmp / "in", out, a.workers)
            got = results(out)
            same = "reference" if ref is None else ("yes, every row and column" if got.equals(ref) else "NO")
            ref = got if ref is None else ref
            print(f"{engine:<8} {wall:8.1f} {rows / wall:10,.0f} {cpu:8.1f} {cpu / rows * 1e6:15.1f}  {same}", flush=True)
        print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
