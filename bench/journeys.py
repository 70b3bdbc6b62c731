"""What issue 13 costs a batch recalculation: the 100k-customer + 20k-case workbook of
bench/recalc.py with the journeys' date columns, recalculated by cxrules with the full bundled
rules (journeys, the Contact plan sheet, alerts), beside the same workbook recalculated as
before issue 13: the rules without rules/journeys.yaml and rules/alerts.yaml (the date columns
are then plain data) and the Contact plan off.

    python bench/journeys.py                      # 100k customers + 20k cases, 3 runs each
    python bench/journeys.py --customers 10000 --repeat 5

Each run is a fresh process, timed (wall clock, CPU, and the main thread's CPU) from its start to its last byte
written; runs of the two alternate, and medians are printed with the load before and after.
On a shared machine the CPU time is the figure to compare. Every generated customer has
signed up and bought, so all rows walk the new-customer and win-back journeys: the most
the journeys can cost.
Target (issue 13): journeys on slow the 100k-customer recalc by at most 20 %.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import recalc as base  # noqa: E402  (bench/recalc.py: its workbook maker and sheets)

AS_OF = base.AS_OF
JOURNEY_HEAD = ["Signed up on", "Welcome coupon sent on", "Guide sent on", "Community invite sent on", "Win-back survey sent on",
                "Replied on", "CNY 50 coupon sent on", "Senior callback on", "Order completed on", "Satisfaction survey sent on",
                "Pushes sent 30d", "Eligible pushes 30d"]
CASE_EXTRA = ["Resolved at", "Callback at", "NPS score"]


def _maybe(rnd, p, d):
    return d if d is not None and d <= AS_OF.date() and rnd.random() < p else None


def customers(n, rnd):
    today = AS_OF.date()
    for row in base.customers(n, rnd):
        last = row[3]
        up = today - dt.timedelta(days=rnd.randint(0, 400))
        w = _maybe(rnd, 0.9, up)
        g = _maybe(rnd, 0.85, up + dt.timedelta(days=3)) if w else None
        inv = _maybe(rnd, 0.85, up + dt.timedelta(days=7)) if g else None
        start = last + dt.timedelta(days=90)
        sv = _maybe(rnd, 0.85, start)
        rep = _maybe(rnd, 0.3, sv + dt.timedelta(days=rnd.randint(1, 9))) if sv else None
        c = _maybe(rnd, 0.85, sv + dt.timedelta(days=7)) if sv and not rep else None
        cb = _maybe(rnd, 0.6, c + dt.timedelta(days=14)) if c else None
        done = last if (today - last).days <= 10 else None
        os_ = _maybe(rnd, 0.7, done + dt.timedelta(days=3)) if done else None
        sent = rnd.randint(0, 12)
        yield row + [up, w, g, inv, sv, rep, c, cb, done, os_, sent, sent + rnd.randint(1, 10)]


def cases(n, rnd):
    for row in base.cases(n, rnd):
        resolved = row[2] + dt.timedelta(hours=rnd.randint(1, 48)) if row[6] in ("Resolved", "Closed") else None
        if resolved is not None and resolved > AS_OF:
            resolved = None
        callback = resolved + dt.timedelta(hours=rnd.randint(1, 80)) if resolved and rnd.random() < 0.7 else None
        if callback is not None and callback > AS_OF:
            callback = None
        yield row + [resolved, callback, rnd.randint(0, 10) if callback else None]


def run_once(src: Path, rules: Path, tmp: Path, plan: bool = True) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, the main thread's CPU seconds) of one recalc in a fresh
    process; CPU time is what a busy machine disturbs least, and the main thread's is the
    run's critical path (reading ahead and packing run beside it). plan=False: no contact
    source is active, so no Contact plan."""
    book = tmp / "run.xlsx"
    shutil.copy(src, book)
    code = ("import time; t=time.perf_counter(); from cxrules.rulesets import load_or_raise; from cxrules.evaluation import Evaluator; "
            "from cxrules import contact_plan; from cxrules.recalc import recalc; import datetime as dt, sys; "
            + ("" if plan else "contact_plan.active = lambda rs, runs: []; ") +
            f"recalc(sys.argv[1], Evaluator(load_or_raise(sys.argv[2])), dt.datetime({AS_OF.year}, {AS_OF.month}, {AS_OF.day}, {AS_OF.hour})); "
            "print(time.thread_time())")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(book), str(rules)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), float(done.stdout.split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "cxrules")], check=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rnd = random.Random(13)
        src = tmp / "book.xlsx"
        base.make_workbook(src, [("Customers", base.CUST_HEAD + JOURNEY_HEAD, customers(a.customers, rnd)),
                                 ("Cases", base.CASE_HEAD + CASE_EXTRA, cases(a.cases, rnd))])
        before = tmp / "rules_before_issue13"
        shutil.copytree(ROOT / "rules", before)
        (before / "journeys.yaml").unlink()
        (before / "alerts.yaml").unlink()
        on, off = [], []
        load = os.getloadavg()[0]
        for _ in range(a.repeat):  # interleaved: both see the same machine
            off.append(run_once(src, before, tmp, plan=False))
            on.append(run_once(src, ROOT / "rules", tmp))
        print(f"{a.customers:,} customers + {a.cases:,} cases, median of {a.repeat} interleaved runs "
              f"(whole process, seconds; load {load:.1f} before, {os.getloadavg()[0]:.1f} after)")
        print("                                                          wall      CPU  main thread CPU")
        w_off, c_off, m_off = (statistics.median(x[k] for x in off) for k in range(3))
        w_on, c_on, m_on = (statistics.median(x[k] for x in on) for k in range(3))
        print(f"  before issue 13 (no journeys, no alerts, no plan)   {w_off:7.2f}  {c_off:7.2f}  {m_off:7.2f}")
        print(f"  all bundled rules (journeys, alerts, Contact plan)  {w_on:7.2f}  {c_on:7.2f}  {m_on:7.2f}   "
              f"(CPU {(c_on / c_off - 1) * 100:+.0f} %, wall {(w_on / w_off - 1) * 100:+.0f} %, "
              f"main thread {(m_on / m_off - 1) * 100:+.0f} %; target at most +20 %)")
        w_off, c_off, m_off = (min(x[k] for x in off) for k in range(3))
        w_on, c_on, m_on = (min(x[k] for x in on) for k in range(3))
        print(f"  fastest of each (a busy neighbour slows a run, never speeds it): "
              f"CPU {(c_on / c_off - 1) * 100:+.0f} %, wall {(w_on / w_off - 1) * 100:+.0f} %, main thread {(m_on / m_off - 1) * 100:+.0f} %")
        print("  each run's CPU, before / all: " + "  ".join(f"{x[1]:.2f}/{y[1]:.2f}" for x, y in zip(off, on)))
        print("  each run's main thread CPU, before / all: " + "  ".join(f"{x[2]:.2f}/{y[2]:.2f}" for x, y in zip(off, on)))


if __name__ == "__main__":
    main()
