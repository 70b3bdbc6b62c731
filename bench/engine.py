"""Engine throughput: rows/s over 100k rows, cxrules' driver against the stock durable-rules host.

    python bench/engine.py [--rows 100000] [--stock-rows 20000]

Prints, in one run:
  1. one table (tier) through cxrules' chunked driver, engine only (rows already encoded);
  2. one table end to end (raw workbook-like rows: coercion, derived inputs, hit policy);
  3. all default decisions chained, end to end, for customer rows and for case rows;
  4. the same tier ruleset through the stock host, `durable.engine.Host.post()` one row at a time
     (the obvious alternative), on --stock-rows rows (it is slow), and a chained stock run.
Target: at least 100k rows/s for one table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cxrules import rulesets  # noqa: E402
from cxrules.compiler import compile_table  # noqa: E402
from cxrules.engine import default_engine  # noqa: E402
from cxrules.evaluation import Evaluator  # noqa: E402
from cxrules.values import encode  # noqa: E402

AS_OF = dt.datetime(2026, 11, 23, 10, 0)


def customers(n, rnd):
    tiers = ["VIP", "High value", "Potential", "New", "Churn risk", "Regular", None]
    out = []
    for i in range(n):
        out.append({
            "last_purchase": AS_OF.date() - dt.timedelta(days=rnd.randint(0, 400)),
            "first_purchase": AS_OF.date() - dt.timedelta(days=rnd.randint(200, 2000)),
            "last_contact": AS_OF.date() - dt.timedelta(days=rnd.randint(0, 120)),
            "frequency": rnd.randint(0, 12),
            "monetary": round(rnd.lognormvariate(8, 1.2), 2),
            "previous_tier": rnd.choice(tiers),
            "rising_months": rnd.randint(0, 3),
        })
    return out


def cases(n, rnd):
    out = []
    for i in range(n):
        out.append({
            "severity": rnd.choice(["Urgent", "Complex", "Normal", "Minor"]),
            "tier": rnd.choice(["VIP", "High value", "Regular", "Potential"]),
            "kind": rnd.choice(["Complaint", "Question", "Repair"]),
            "status": rnd.choice(["Open", "Open", "In progress", "Resolved", "Closed"]),
            "opened_at": AS_OF - dt.timedelta(hours=rnd.uniform(0, 400)),
            "prior_complaints": rnd.randint(0, 4),
        })
    return out


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


def stock_host(table, compiled, rows):
    """The stock durable-rules host: register the same ruleset, post() each row."""
    from durable.engine import Host, MessageNotHandledException

    fired = []
    definition = {}
    for name, rule in compiled.definition.items():
        r = dict(rule)
        r["run"] = (lambda n: (lambda c: fired.append(n)))(name)
        definition[name] = r
    host = Host()
    host.register_rulesets({compiled.name + "_stock": definition})
    t = time.perf_counter()
    unhandled = 0
    for k, row in enumerate(rows):
        msg = {"_k": k, "id": k}
        msg.update(row)
        try:
            host.post(compiled.name + "_stock", msg)
        except MessageNotHandledException:
            unhandled += 1
    return time.perf_counter() - t, fired


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--stock-rows", type=int, default=20_000)
    ap.add_argument("--rules", default=str(rulesets.bundled_rules_dir()))
    a = ap.parse_args()
    rnd = random.Random(7)
    rs = rulesets.load_or_raise(a.rules)
    ev = Evaluator(rs)
    n = a.rows
    cust = customers(n, rnd)
    case_rows = cases(n, rnd)
    print(f"cxrules engine benchmark: {n} rows, rules {a.rules}, Python {sys.version.split()[0]}")

    # Pre-encode the tier inputs once, to time the engine driver alone.
    full = ev.evaluate(cust, "tier", AS_OF)
    tier = rs.tables["tier"]
    comp = compile_table(tier)
    enc_rows = []
    for i in range(n):
        enc_rows.append({k: encode(full.columns[inp.name][i], inp.type) for k, inp in zip(comp.keys, tier.inputs) if full.columns[inp.name][i] is not None})
    eng = default_engine()
    eng.run(comp, enc_rows[:1000])  # register + warm up
    secs, fired = timed(lambda: eng.run(comp, enc_rows))
    print(f"  one table (tier), engine driver only      {n / secs:>10,.0f} rows/s  ({secs:.2f} s)")
    secs, _ = timed(lambda: ev.evaluate(cust, "tier", AS_OF))
    print(f"  one table (tier), end to end              {n / secs:>10,.0f} rows/s  ({secs:.2f} s)")
    secs, _ = timed(lambda: ev.evaluate(cust, ["tier", "contact"], AS_OF))
    print(f"  customers: tier -> contact (+next date)   {n / secs:>10,.0f} rows/s  ({secs:.2f} s)")
    case_dec = ["escalation", "escalation_level", "compensation_points", "compensation"]
    secs, _ = timed(lambda: ev.evaluate(case_rows, case_dec, AS_OF))
    print(f"  cases: 4 chained decisions (+deadlines)   {n / secs:>10,.0f} rows/s  ({secs:.2f} s)")

    m = min(a.stock_rows, n)
    secs, stock_fired = stock_host(tier, comp, enc_rows[:m])
    print(f"  one table (tier), stock host post()/row   {m / secs:>10,.0f} rows/s  ({secs:.2f} s for {m} rows)")
    ours = [f for f in fired[:m]]
    same = sorted(ours) == sorted(stock_fired)
    print(f"  same rules fired by both hosts on {m} rows: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
