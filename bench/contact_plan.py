"""What the Contact plan sheet costs a recalc: the same workbook with and without it.

    python bench/contact_plan.py                    # 100k customers, 5 interleaved runs
    python bench/contact_plan.py --customers 10000 --repeat 3

The customers sheet is bench/recalc.py's. Each run is a fresh process; the figures are its
CPU time (less sensitive than the wall clock to other work on a shared machine) and wall
time for `recalc`, medians printed. "without" is the same code with no contact source
active (contact_plan.active gives none), so the difference is the plan alone: collecting
the contacts, the per-day table, the sorted call list and writing the sheet and its chart.
The CPU time of contact_plan.collect alone (every contact counted, the call list's first
chosen) is printed too.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

CHILD = """
import datetime as dt, shutil, sys, time
from cxrules import contact_plan, rulesets
from cxrules.evaluation import Evaluator
from cxrules.recalc import recalc
src, work, mode, rules = sys.argv[1:5]
if mode == "without":
    contact_plan.active = lambda rs, runs: []
spent = [0.0]  # CPU in contact_plan.collect: the contacts counted and the call list chosen
inner = contact_plan.collect
def timed(*a, **k):
    t = time.process_time()
    try:
        return inner(*a, **k)
    finally:
        spent[0] += time.process_time() - t
contact_plan.collect = timed
ev = Evaluator(rulesets.load_or_raise(rules))
shutil.copy(src, work)
c, w = time.process_time(), time.perf_counter()
rep = recalc(work, ev, dt.datetime(2026, 11, 23, 10))
print(time.process_time() - c, time.perf_counter() - w, rep.contact_tally.total if rep.contact_tally else 0, spent[0])
"""


def main():
    import recalc as base  # bench/recalc.py: the workbook maker

    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rules", default=str(ROOT / "rules"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "customers.xlsx"
        base.make_workbook(src, [("Customers", base.CUST_HEAD, base.customers(a.customers, random.Random(12)))])
        runs: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
        collecting: list[float] = []
        contacts = 0
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "cxrules")], check=False)
        for _ in range(a.repeat):
            for mode in runs:  # interleaved: both see the same machine
                out = subprocess.run([sys.executable, "-c", CHILD, str(src), str(Path(tmp) / f"{mode}.xlsx"), mode, a.rules],
                                     capture_output=True, text=True, check=True)
                cpu, wall, n, spent = out.stdout.split()
                runs[mode].append((float(cpu), float(wall)))
                if mode == "with":
                    collecting.append(float(spent))
                contacts = max(contacts, int(n))
    print(f"Contact plan cost, {a.customers:,} customers ({contacts:,} contacts overdue or due in 4 weeks), "
          f"{a.repeat} interleaved runs, load {os.getloadavg()[0]:.2f}")
    med = {m: (statistics.median(c for c, _ in r), statistics.median(w for _, w in r)) for m, r in runs.items()}
    for mode, (cpu, wall) in med.items():
        print(f"  recalc {mode:8s} the Contact plan   CPU {cpu:5.2f} s   wall {wall:5.2f} s")
    cpu = med["with"][0] / med["without"][0] - 1
    print(f"  the plan adds {med['with'][0] - med['without'][0]:.2f} s CPU ({cpu:+.0%}), of which collecting the contacts "
          f"(counted per day and channel, the call list's first chosen) {statistics.median(collecting):.3f} s")


if __name__ == "__main__":
    main()
