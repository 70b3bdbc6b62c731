"""The rules on Dask: `evaluate(ddf, rules, as_of=..., key=...)` gives a Dask DataFrame of
results (the key, each result, the row's problems), Arrow-typed, lazily.

Each partition goes through cxrules.batch as an Arrow record batch. A percentile is ranked
over the whole table first: every partition's values counted (a value_counts across
partitions, exact, ties included), the counts handed to every partition once.
"""
from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa

from .batch import Job, TableStats
from .keys import EXAMPLES, PLACES, KeyReport, blank_mask, place
from .model import RuleSet


def job_for(ddf: dd.DataFrame, rules: RuleSet, *, as_of, key: str, decisions=None, dayfirst: bool = False) -> Job:
    return Job(rules, list(ddf.columns), as_of=as_of, key=key, decisions=decisions, dayfirst=dayfirst)


def _arrow(df: pd.DataFrame) -> pa.RecordBatch:
    return pa.RecordBatch.from_pandas(df, preserve_index=False)


def _pandas(batch) -> pd.DataFrame:
    return batch.to_pandas(types_mapper=pd.ArrowDtype)


def _keys(df: pd.DataFrame, job: Job) -> pd.DataFrame:
    return pd.DataFrame(job.rank_keys(_arrow(df)), index=df.index)


def table_stats(ddf: dd.DataFrame, job: Job) -> dict[str, TableStats]:
    """Each percentile's counts over the whole Dask DataFrame, computed in one pass."""
    if not job.table_inputs:
        return {}
    meta = pd.DataFrame({t.name: pd.Series([], dtype="float64") for t in job.table_inputs})
    keys = ddf.map_partitions(_keys, job, meta=meta)
    counts = dask.compute(*[keys[t.name].dropna().value_counts() for t in job.table_inputs])
    out = {}
    for t, c in zip(job.table_inputs, counts):
        c = c.sort_index()
        out[t.name] = TableStats(c.index.to_numpy(dtype=np.float64), c.to_numpy(dtype=np.int64))
    return out


def _evaluate(df: pd.DataFrame, job: Job, stats: dict) -> pd.DataFrame:
    return _pandas(job.evaluate(job.with_ranks(_arrow(df), stats)))


def evaluate(ddf: dd.DataFrame, rules: RuleSet | Job, *, as_of=None, key: str | None = None, decisions=None,
             dayfirst: bool = False) -> dd.DataFrame:
    """The results of every row of `ddf`, one partition per partition (lazy; the table's
    percentiles are counted when this is called)."""
    job = rules if isinstance(rules, Job) else job_for(ddf, rules, as_of=as_of, key=key, decisions=decisions, dayfirst=dayfirst)
    stats = dask.delayed(table_stats(ddf, job), pure=True)  # shared by every partition, sent once
    key_type = pa.Schema.from_pandas(ddf._meta, preserve_index=False).field(job.key).type
    meta = _pandas(job.schema(key_type).empty_table())
    return ddf.map_partitions(_evaluate, job, stats, meta=meta)


# ------------------------------------------------------------------ keys
def _blank(s: pd.Series) -> pd.Series:
    return pd.Series(np.asarray(blank_mask(pa.array(s, from_pandas=True))), index=s.index)


def key_counts(ddf: dd.DataFrame, key: str):
    """Lazy (duplicated keys, their rows, blank rows, up to EXAMPLES duplicated keys -> rows):
    a value_counts reduced across the partitions, never the key column on the client."""
    k = ddf[key]
    blank = k.map_partitions(_blank, meta=(key, "bool"))
    counts = k[~blank].value_counts(split_out=max(1, ddf.npartitions))
    many = counts[counts > 1]
    return many.size, many.sum(), blank.sum(), many.nlargest(EXAMPLES)


def _places(s: pd.Series, values: list, partition_info=None) -> pd.DataFrame:
    blank = _blank(s).to_numpy()
    hit = blank | s.isin(values).fillna(False).to_numpy(dtype=bool)
    rows = np.flatnonzero(hit)
    keys = [None if blank[i] else s.iloc[i] for i in rows]
    part = partition_info["number"] if partition_info else -1
    return pd.DataFrame({"key": pd.Series(keys, dtype=object), "part": part, "row": rows + 1})


def key_report(ddf: dd.DataFrame, key: str, counted, files: list | None = None) -> KeyReport:
    """The report from key_counts' computed values; where the keys are is looked up (one
    more pass over the key column) only when something is wrong. `files`: each partition's
    file, when partitions are files."""
    dup, dup_rows, blank, ex = counted
    rep = KeyReport(key, duplicated=int(dup), duplicate_rows=int(dup_rows or 0), blank=int(blank))
    if not rep:
        return rep
    values = list(ex.index)
    meta = pd.DataFrame({"key": pd.Series([], dtype=object), "part": pd.Series([], dtype="int64"),
                         "row": pd.Series([], dtype="int64")})
    found = ddf[key].map_partitions(_places, values, meta=meta).map_partitions(
        lambda d: d.groupby(d["key"].isna()).head(PLACES * EXAMPLES), meta=meta).compute()

    def where(rows) -> list[str]:
        return [place(files[p], r) if files else f"partition {p}, row {r}" for p, r in rows[:PLACES]]

    by_key: dict = {}
    blank_rows = []
    for k, p, r in found.itertuples(index=False):
        (blank_rows if k is None or k is pd.NA else by_key.setdefault(k, [])).append((p, r))
    rep.add_examples([(v, n, where(by_key.get(v, []))) for v, n in ex.items()], where(blank_rows))
    return rep
