"""Engine throughput: rows/s over 100k rows, cxrules' driver against the stock durable-rules host.

    python bench/engine.py [--rows 100000] [--stock-rows 20000]

Prints, in one run:
  1. one table (tier) through cxrules' chunked driver, engine only (rows already encoded);
  2. one table end to end (raw workbook-like rows: coercion, derived inputs, hit policy); rows
     whose inputs no cell of the table can tell apart share one engine evaluation;
  3. all default decisions chained, end to end, for customer rows and for case rows;
  4. the same tier ruleset through the stock host, `durable.engine.Host.post()` one row at a time
     (the obvious alternative), on --stock-rows rows (it is slow), and a chained stock run;
  5. the engine path when nearly every row is distinct: banded tables of 100 and 1,000 rule rows
     over three continuous inputs, 100k rows, end to end in a fresh process each time (rule
     registration included), medians of --repeat runs; beside the stock host on the same table,
     and, with --against DIR, beside the cxrules in DIR (e.g. a checkout of the branch base).
Targets: at least 100k rows/s for one table; the banded tables at least twice the branch base.

    python bench/engine.py --only-banded --against /path/to/base/checkout
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if __name__ == "__main__" and "--band-child" in sys.argv:  # the tree to measure comes first on the path
    sys.path.insert(0, sys.argv[sys.argv.index("--band-child") + 3])

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


def stock_host(compiled, rows, facts=False):
    """The stock durable-rules host: register the same ruleset, post() (or assert_fact) each row."""
    from durable.engine import Host, MessageNotHandledException

    fired = []
    definition = {}
    for name, rule in compiled.definition.items():
        r = dict(rule)
        r["run"] = (lambda n: (lambda c: fired.append(n)))(name)
        definition[name] = r
    host = Host()
    rs_name = compiled.name + "_stock"
    host.register_rulesets({rs_name: definition})
    t = time.perf_counter()
    for k, row in enumerate(rows):
        msg = {"_k": k, "id": k}
        msg.update(row)
        try:
            if facts:  # all-match tables: a fact fires every matching rule, then is retracted
                host.assert_fact(rs_name, msg)
                host.retract_fact(rs_name, msg)
            else:
                host.post(rs_name, msg)
        except MessageNotHandledException:
            pass
    return time.perf_counter() - t, fired


# ------------------------------------------------------------------ banded tables: nearly every row distinct
def banded_yaml(n_rules: int, seed: int = 3) -> str:
    """n_rules rows over three continuous inputs, each cell a random band [a..b); the last row
    catches the rest (first hit)."""
    rnd = random.Random(seed)
    lines = ["decision: band", "title: Banded", "hit: first", "inputs:", "  x: {type: number, columns: [X]}",
             "  y: {type: number, columns: [Y]}", "  z: {type: number, columns: [Z]}", "outputs:",
             "  grade: {type: text, columns: [Grade]}", "  score: {type: number, columns: [Score]}", "rules:"]
    for k in range(n_rules - 1):
        cells = []
        for _ in range(3):
            a = round(rnd.uniform(0, 1000), 2)
            cells.append(f'"[{a}..{round(a + rnd.uniform(50, 600), 2)})"')
        lines.append(f"  - [{', '.join(cells)}, G{k}, {k}]")
    lines.append('  - ["-", "-", "-", none, -1]')
    return "\n".join(lines) + "\n"


def banded_columns(n: int, seed: int = 5) -> dict:
    rnd = random.Random(seed)
    return {k: [round(rnd.uniform(0, 1200), 1) for _ in range(n)] for k in "xyz"}


def band_child(rules_dir: str, n: int, tree: str, stock: int) -> None:
    """One measurement in this process: cxrules from `tree` end to end, or the stock host."""
    from cxrules import rulesets as rsets
    from cxrules.evaluation import Evaluator as Ev

    rs = rsets.load_or_raise(rules_dir)
    cols = banded_columns(n)
    if stock:
        from cxrules.compiler import compile_table as ct

        comp = ct(rs.tables["band"])
        rows = [{k: v for k, v in zip(comp.keys, t)} for t in zip(cols["x"][:stock], cols["y"][:stock], cols["z"][:stock])]
        secs, _ = stock_host(comp, rows)
        print(json.dumps({"rows_s": stock / secs}))
        return
    ev = Ev(rs)
    importlib.import_module("numpy")  # before the clock in both trees: start-up is measured by bench/recalc.py

    t = time.perf_counter()
    r = ev.evaluate_columns(cols, n, ["band"], AS_OF)
    secs = time.perf_counter() - t
    import cxrules

    print(json.dumps({"rows_s": n / secs, "distinct": r.distinct["band"], "tree": str(Path(cxrules.__file__).parents[1])}))


def banded(a) -> None:
    import compileall

    for tree in [str(Path(__file__).resolve().parents[1])] + ([a.against] if a.against else []):
        compileall.compile_dir(str(Path(tree) / "cxrules"), quiet=1)  # as installing does
    print(f"banded tables, {a.band_rows:,} rows over 3 continuous inputs, each run a fresh process, "
          f"median of {a.repeat}  [load {' '.join(f'{x:.2f}' for x in os.getloadavg())}]")
    here = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as tmp:
        for n_rules, stock in ((100, 5000), (1000, 1000)):
            d = Path(tmp) / f"r{n_rules}"
            d.mkdir()
            (d / "band.yaml").write_text(banded_yaml(n_rules), encoding="utf-8")
            trees = [("cxrules (this tree)", here)] + ([(f"cxrules ({a.against})", a.against)] if a.against else [])
            got: dict = {label: [] for label, _ in trees}
            distinct = None
            for _ in range(a.repeat):  # interleaved
                for label, tree in trees:
                    r = _band_run(d, a.band_rows, tree, 0)
                    assert Path(r["tree"]).resolve() == Path(tree).resolve(), (r["tree"], tree)  # measured what it says
                    got[label].append(r["rows_s"])
                    distinct = r.get("distinct", distinct)
            print(f"  {n_rules:>5} rule rows ({distinct:,} distinct combinations of {a.band_rows:,} rows)")
            med = {label: statistics.median(v) for label, v in got.items()}
            for label, v in got.items():
                print(f"    {label:<40} {med[label]:>10,.0f} rows/s  ({', '.join(f'{x:,.0f}' for x in v)})")
            st = _band_run(d, a.band_rows, here, stock)["rows_s"]
            print(f"    {'stock host, post() per row':<40} {st:>10,.0f} rows/s  ({stock:,} rows)")
            if a.against:
                base = med[f"cxrules ({a.against})"]
                print(f"    {'this tree / the other':<40} {med['cxrules (this tree)'] / base:>10.2f} x   (target at least 2 x)")


def _band_run(rules_dir, n, tree, stock) -> dict:
    p = subprocess.run([sys.executable, __file__, "--band-child", str(rules_dir), str(n), tree, str(stock)],
                       capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--stock-rows", type=int, default=20_000)
    ap.add_argument("--rules", default=str(rulesets.bundled_rules_dir()))
    ap.add_argument("--band-rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--against", help="another tree of cxrules to measure the banded tables with (the branch base)")
    ap.add_argument("--only-banded", action="store_true")
    ap.add_argument("--band-child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.band_child:
        rules_dir, n, tree, stock = a.band_child
        return band_child(rules_dir, int(n), tree, int(stock))
    if a.only_banded:
        return banded(a)
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
    enc_rows = encoded(full, tier, comp)
    eng = default_engine()
    eng.run(comp, enc_rows[:1000])  # register + warm up
    secs, fired = timed(lambda: eng.run(comp, enc_rows))
    print(f"  one table (tier), engine driver only      {n / secs:>10,.0f} rows/s  ({secs:.2f} s)")
    secs, r = timed(lambda: ev.evaluate(cust, "tier", AS_OF))
    print(f"  one table (tier), end to end              {n / secs:>10,.0f} rows/s  ({secs:.2f} s; "
          f"{r.distinct['tier']:,} input combinations the rules can tell apart went to the engine)")
    secs, _ = timed(lambda: ev.evaluate(cust, ["tier", "contact"], AS_OF))
    print(f"  customers: tier -> contact (+next date)   {n / secs:>10,.0f} rows/s  ({secs:.2f} s)")
    case_dec = ["escalation", "escalation_level", "compensation_points", "compensation"]
    secs, case_result = timed(lambda: ev.evaluate(case_rows, case_dec, AS_OF))
    print(f"  cases: 4 chained decisions (+deadlines)   {n / secs:>10,.0f} rows/s  ({secs:.2f} s)")

    m = min(a.stock_rows, n)
    secs, stock_fired = stock_host(comp, enc_rows[:m])
    print(f"  one table (tier), stock host post()/row   {m / secs:>10,.0f} rows/s  ({secs:.2f} s for {m} rows)")
    same = sorted(fired[:m]) == sorted(stock_fired)
    print(f"  same rules fired by both hosts on {m} rows: {'yes' if same else 'NO'}")
    # The chain through the stock host: each table's rows posted one by one, in order.
    total = 0.0
    for name in case_result.tables:
        t = rs.tables[name]
        c = compile_table(t)
        s, _ = stock_host(c, encoded(case_result, t, c)[:m], facts=not c.as_events)
        total += s
    print(f"  cases: 4 chained, stock host post()/row   {m / total:>10,.0f} rows/s  ({total:.2f} s for {m} rows)")
    banded(a)


def encoded(result, table, comp):
    cols = [result.columns[i.name] for i in table.inputs]
    return [{k: encode(v, i.type) for k, i, v in zip(comp.keys, table.inputs, vals) if v is not None} for vals in zip(*cols)]


if __name__ == "__main__":
    main()
