"""The rules on Spark: `evaluate(sdf, rules, as_of=..., key=...)` gives a DataFrame of results
(the key, each result, the row's problems) through `mapInArrow`, one Evaluator per Python worker.

A percentile is ranked over the whole table with an exact, distributed rank, never a window
over one partition: the values read as the rules read them (mapInArrow), counted per distinct
value (groupBy), range-partitioned, summed within each range partition and offset by the
totals of the ranges before it (a handful of numbers on the driver), then joined back.
"""
from __future__ import annotations

import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from .batch import TABLE_PREFIX, Job
from .keys import EXAMPLES, PLACES, KeyReport
from .model import RuleSet

_KEY = "__cxrules_rank_key__"


def job_for(sdf: DataFrame, rules: RuleSet, *, as_of, key: str, decisions=None, dayfirst: bool = False) -> Job:
    return Job(rules, sdf.columns, as_of=as_of, key=key, decisions=decisions, dayfirst=dayfirst)


def _with_key(job: Job, name: str):
    def add(batches):
        for b in batches:
            yield b.append_column(_KEY, pa.array(job.rank_keys(b)[name], from_pandas=True, type=pa.float64()))
    return add


def with_ranks(sdf: DataFrame, job: Job) -> DataFrame:
    """`sdf` with a column TABLE_PREFIX + name per percentile input: each row's percentile in
    the whole DataFrame, ties sharing the lowest rank, as the single process computes it."""
    for t in job.table_inputs:
        schema = from_arrow_schema(to_arrow_schema(sdf.schema).append(pa.field(_KEY, pa.float64())))
        keyed = sdf.mapInArrow(_with_key(job, t.name), schema)
        counts = keyed.where(F.col(_KEY).isNotNull()).groupBy(_KEY).agg(F.count(F.lit(1)).alias("n"))
        # range partitions hold ascending runs of values; fixed once so both uses agree
        ranged = counts.repartitionByRange(_KEY).withColumn("part", F.spark_partition_id()).localCheckpoint()
        totals = {r["part"]: r["n"] for r in ranged.groupBy("part").agg(F.sum("n").alias("n")).collect()}
        offset, before = 0, {}
        for p in sorted(totals):
            before[p] = offset
            offset += totals[p]
        count = offset
        offsets = F.create_map(*[x for p, o in before.items() for x in (F.lit(p), F.lit(o))]) if before else None
        w = Window.partitionBy("part").orderBy(_KEY).rowsBetween(Window.unboundedPreceding, -1)
        below = ranged.select(_KEY, (F.coalesce(F.sum("n").over(w), F.lit(0)) + offsets[F.col("part")]).alias("below")) \
            if offsets is not None else ranged.select(_KEY, F.lit(0).alias("below"))
        if count == 1:
            rank = F.when(F.col("below").isNotNull(), F.lit(100.0))
        else:  # the same double operations as batch.percentile: (100 * below) / (count - 1)
            rank = F.col("below").cast("double") * F.lit(100.0) / F.lit(float(max(count - 1, 1)))
        sdf = keyed.join(below, on=_KEY, how="left").withColumn(TABLE_PREFIX + t.name, rank).drop(_KEY, "below")
    return sdf


def _evaluate(job: Job):
    def run(batches):
        for b in batches:
            yield job.evaluate(b)
    return run


def evaluate(sdf: DataFrame, rules: RuleSet | Job, *, as_of=None, key: str | None = None, decisions=None,
             dayfirst: bool = False) -> DataFrame:
    """The results of every row of `sdf` (lazy, but for the percentiles' counts)."""
    job = rules if isinstance(rules, Job) else job_for(sdf, rules, as_of=as_of, key=key, decisions=decisions, dayfirst=dayfirst)
    key_type = to_arrow_schema(sdf.select(job.key).schema).field(job.key).type
    ranked = with_ranks(sdf, job)
    return ranked.mapInArrow(_evaluate(job), from_arrow_schema(job.schema(key_type)))


# ------------------------------------------------------------------ keys
def _file(uri: str) -> str:
    """A file Spark names as a URI, as the user gave it: a local path for file:."""
    from urllib.parse import unquote, urlparse

    u = urlparse(uri)
    return unquote(u.path) if u.scheme in ("", "file") else uri


def key_report(sdf: DataFrame, key: str) -> KeyReport:
    """Keys on more than one row (a groupBy(key).count() over the cluster) and rows without a
    key; only the counts and a few examples come to the driver, with the files holding them."""
    k = sdf[key]  # a column object: a name with a dot in it is still one column
    blank = k.isNull() | (F.trim(k.cast("string")) == "") if dict(sdf.dtypes)[key] == "string" else k.isNull()
    counts = sdf.where(~blank).groupBy(k.alias("k")).count().where(F.col("count") > 1)
    got = counts.agg(F.count(F.lit(1)).alias("keys"), F.sum("count").alias("rows")).collect()[0]
    rep = KeyReport(key, duplicated=got["keys"], duplicate_rows=int(got["rows"] or 0),
                    blank=sdf.where(blank).count())
    if not rep:
        return rep
    ex = counts.orderBy(F.col("count").desc(), "k").limit(EXAMPLES).collect()
    values = [r["k"] for r in ex]
    where: dict = {}
    if values:
        files = sdf.where(k.isin(values)).select(k.alias("k"), F.input_file_name().alias("f")).distinct() \
            .orderBy("k", "f").collect()
        for r in files:
            if r["f"]:
                where.setdefault(r["k"], []).append(_file(r["f"]))
    blank_files = [_file(r["f"]) for r in sdf.where(blank).select(F.input_file_name().alias("f")).distinct()
                   .orderBy("f").limit(PLACES).collect() if r["f"]]
    rep.add_examples([(r["k"], r["count"], where.get(r["k"], [])) for r in ex], blank_files)
    return rep
