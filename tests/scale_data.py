"""Customers for the batch engines' tests: a few thousand rows sorted by spend (so each
partition holds one band of it), with ties, blanks and bad cells."""
from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa

AS_OF = dt.datetime(2026, 11, 23, 9, 30)
KEY = "customer_id"


def customers(n: int = 3000, seed: int = 15) -> pa.Table:
    rnd = random.Random(seed)
    spend = []
    for _ in range(n):
        r = rnd.random()
        # ties on purpose: many rows on a few amounts, the rest spread out
        spend.append(rnd.choice([0.0, 120.0, 2000.0, 4999.99, 5000.0, 600000.0]) if r < 0.5 else float(rnd.randint(0, 30000)))
    spend.sort()  # clustered: the first partitions the smallest spenders, the last the largest
    for i in rnd.sample(range(n), n // 50):
        spend[i] = None  # blank spend: no rank
    spend[n // 3] = float("nan")  # a bad value: a problem of its row, and no rank
    day = dt.date(2025, 1, 1)
    last = [day + dt.timedelta(days=rnd.randint(0, 690)) for _ in range(n)]
    first = [d - dt.timedelta(days=rnd.randint(0, 1500)) for d in last]
    contact = [None if rnd.random() < 0.1 else d + dt.timedelta(days=rnd.randint(0, 30)) for d in last]
    return pa.table({
        KEY: pa.array([f"C{i:06d}" for i in range(n)]),
        "Last purchase": pa.array(last, pa.date32()),
        "first_purchase": pa.array(first, pa.date32()),
        "last_contact": pa.array(contact, pa.date32()),
        "Orders 12m": pa.array([rnd.randint(0, 14) for _ in range(n)], pa.int64()),
        "Spend 12m": pa.array(spend, pa.float64(), from_pandas=False),
        "Previous tier": pa.array([rnd.choice(["VIP", "Potential", "High value", "Regular", None, "潜力客户"]) for _ in range(n)]),
        "rising_months": pa.array([rnd.choice([None, 0, 1, 2, 3]) for _ in range(n)], pa.int64()),
        # a stale percentile from an earlier run: never read in place of the whole table's rank
        "spend_rank": pa.array([99.0] * n),
    })


def whole_table_results(job, table: pa.Table) -> pa.RecordBatch:
    """What the single-process Evaluator gives over the whole table at once, per column
    (problems as the batch core lists them)."""
    from cxrules.batch import _pylist

    cols = {name: _pylist(table.column(col)) for name, col in job.reads.items()}
    ev = job.evaluator().evaluate_columns(cols, table.num_rows, job.decisions, job.as_of)
    return job.results(table.column(job.key).combine_chunks(), ev)


# bad_keys: three keys on more than one row, each across files of 1000 rows (7 rows in all),
# and two rows without a key (null, and spaces only)
BAD_KEYS = {"duplicated": 3, "duplicate_rows": 7, "blank": 2}


def bad_keys(table: pa.Table) -> pa.Table:
    ids = table.column(KEY).to_pylist()
    ids[1500] = ids[2500] = ids[10]  # three files
    ids[2999] = ids[20]
    ids[1200] = ids[999]
    ids[700], ids[2100] = None, "  "
    return table.set_column(table.schema.get_field_index(KEY), KEY, pa.array(ids))


def write_parts(table: pa.Table, folder, fmt: str = "parquet", rows: int = 1000):
    """`table` as files of `rows` rows each in `folder` (p0, p1, ...)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(0, table.num_rows, rows):
        part = table.slice(i, rows)
        if fmt == "csv":
            pacsv.write_csv(part, folder / f"p{i // rows}.csv")
        else:
            pq.write_table(part, folder / f"p{i // rows}.parquet")
    return folder
