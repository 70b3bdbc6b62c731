"""`cxrules run`: the rules over Parquet or CSV files in one process, on Dask or on Spark,
results written beside them (the key, each result, each row's problems). Keys on more than
one row and rows without a key are counted by each engine (cxrules.keys) and reported.

All three go through cxrules.batch, so they give the same results row for row; the engines
differ only in how the parts are spread and how the percentiles are ranked over the whole table.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import pyarrow as pa

from . import datafiles
from .batch import PROBLEMS, Job, run_local
from .keys import KeyCheck, KeyReport
from .model import RuleSet
from .problems import CxError

ENGINES = ("local", "dask", "spark")


class RunError(CxError):
    """An engine that cannot be used here: names the extra to install."""


@dataclass
class RunReport:
    engine: str
    output: str
    rows: int = 0
    rows_with_problems: int = 0
    decisions: list[str] = field(default_factory=list)
    not_run: dict[str, list[str]] = field(default_factory=dict)  # decision -> the columns it lacks
    missing: dict[str, list[str]] = field(default_factory=dict)  # decision -> optional inputs read as blank
    seconds: float = 0.0
    malformed: list[str] = field(default_factory=list)  # CSV lines left out: "FILE, line N: ..."
    keys: KeyReport | None = None  # keys on more than one row, rows without one


def run(src, out, rules: RuleSet, *, as_of, key: str, engine: str = "local", decisions=None, dayfirst: bool = False,
        force: bool = False, progress=None, workers: int | None = None, scheduler: str | None = None,
        master: str | None = None) -> RunReport:
    """Evaluate the rules over the Parquet or CSV at `src`, write the results to `out`: one file
    for the local engine (.csv or .parquet by its name), a folder of part files for Dask and Spark.

    progress: None for quiet, or progress(stage, done_rows, total_rows) for the local engine;
    Dask and Spark then show their own progress on stderr."""
    if engine not in ENGINES:
        raise RunError(f"no engine '{engine}'; engines: {', '.join(ENGINES)}")
    start = time.perf_counter()
    inp = datafiles.inputs(src)
    job = Job(rules, inp.schema.names, as_of=as_of, key=key, decisions=decisions, dayfirst=dayfirst,
              text_native=inp.format == "csv")
    rep = RunReport(engine, str(out), decisions=list(job.decisions), not_run=dict(job.cannot), missing=dict(job.missing),
                    malformed=list(inp.malformed or []))
    fmt = datafiles.output_format(out, folder=engine != "local")
    dest = datafiles.Destination(out, force=force, folder=engine != "local")
    try:
        if engine == "local":
            _local(inp, job, dest, fmt, rep, progress)
        elif engine == "dask":
            _dask(inp, job, dest, fmt, rep, progress, workers, scheduler)
        else:
            _spark(inp, job, dest, fmt, rep, progress, master)
        dest.commit()
    except BaseException:
        dest.discard()
        raise
    rep.seconds = time.perf_counter() - start
    return rep


def as_dict(rep: RunReport) -> dict:
    """The report as --json prints it."""
    d = dict(rep.__dict__)
    d["keys"] = rep.keys.as_dict() if rep.keys is not None else None
    return d


def _count(batch, rep: RunReport) -> None:
    rep.rows += batch.num_rows
    rep.rows_with_problems += batch.num_rows - batch.column(PROBLEMS).null_count


def _local(inp, job: Job, dest, fmt: str, rep: RunReport, progress) -> None:
    told = (lambda done, total: progress("evaluating", done, total)) if progress else None
    w = datafiles.Writer(dest.tmp, fmt, job.schema(inp.schema.field(job.key).type))
    src = inp.by_file()
    keys = KeyCheck(job.key)
    try:
        for b in run_local(job, src, progress=told, seen=lambda b: keys.add(b, src.file)):
            _count(b, rep)
            w.write(b)
    finally:
        w.close()
    rep.keys = keys.report()


# ------------------------------------------------------------------ Dask
def _dask(inp, job: Job, dest, fmt: str, rep: RunReport, progress, workers, scheduler) -> None:
    try:
        import dask
        import dask.dataframe as dd

        from . import dask as cxdask
    except ImportError as e:
        raise RunError(f"the Dask engine needs Dask ({e.name} is not installed): pip install 'cxrules[dask]'") from None
    if inp.format == "parquet":
        ddf = dd.read_parquet(inp.files, dtype_backend="pyarrow")
    else:
        ddf = dd.from_map(_csv_part, inp.files, inp=inp)
    client = None
    if scheduler:
        from distributed import Client

        client = Client(scheduler)
        settings = {}
    else:
        settings = {"scheduler": "processes", "num_workers": workers or os.cpu_count()}
    os.mkdir(dest.tmp)
    try:
        with dask.config.set(settings):
            res = cxdask.evaluate(ddf, job)
            schema = job.schema(inp.schema.field(job.key).type)
            ext = "csv" if fmt == "csv" else "parquet"
            parts = [dask.delayed(_write_part)(p, str(dest.tmp / f"part-{i:05d}.{ext}"), fmt, schema)
                     for i, p in enumerate(res.to_delayed())]
            keyed = cxdask.key_counts(ddf, job.key)  # the key column only, reduced across workers
            if progress and client is None:
                from dask.diagnostics import ProgressBar

                with ProgressBar(out=sys.stderr):
                    counts = dask.compute(*parts)
                    counted = dask.compute(*keyed)
            else:
                counts = dask.compute(*parts)
                counted = dask.compute(*keyed)
            # where the bad keys are, by file: one partition per file (Dask may join small Parquet files)
            by_file = ddf if inp.format == "csv" else dd.from_map(_parquet_part, inp.files, columns=[job.key])
            rep.keys = cxdask.key_report(by_file, job.key, counted, files=inp.files)
    finally:
        if client is not None:
            client.close()
    rep.rows = sum(c[0] for c in counts)
    rep.rows_with_problems = sum(c[1] for c in counts)


def _csv_part(path: str, inp) -> "object":
    import pandas as pd

    return inp.read_csv(path).to_pandas(types_mapper=pd.ArrowDtype)


def _parquet_part(path: str, columns: list[str] | None = None) -> "object":
    import pandas as pd
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=columns).to_pandas(types_mapper=pd.ArrowDtype)


def _write_part(df, path: str, fmt: str, schema: pa.Schema) -> tuple[int, int]:
    t = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    w = datafiles.Writer(path, fmt, schema)
    try:
        for b in t.to_batches():
            w.write(b)
    finally:
        w.close()
    return t.num_rows, t.num_rows - t.column(PROBLEMS).null_count


# ------------------------------------------------------------------ Spark
def spark_session(master: str | None = None, progress: bool = False):
    """The active SparkSession, or a new one (local[*] unless `master`) whose Python workers
    run this Python (where cxrules is installed)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise RunError(f"the Spark engine needs PySpark ({e.name} is not installed): pip install 'cxrules[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    import shutil

    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        raise RunError("the Spark engine needs Java (a JDK 17 or 21), and there is no 'java' here: install one "
                       "(e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
    b = SparkSession.builder.appName("cxrules").master(master or "local[*]")
    b = b.config("spark.ui.showConsoleProgress", "true" if progress else "false").config("spark.ui.enabled", "false")
    b = b.config("spark.sql.shuffle.partitions", str(4 * (os.cpu_count() or 1)))  # the rank's small shuffles: not 200 tasks each
    try:
        return b.getOrCreate()
    except Exception as e:  # noqa: BLE001 - PySpark's own errors (a bad master, a JVM that did not start)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].rstrip(".")
        raise RunError(f"Spark did not start with master '{master or 'local[*]'}': {first}; check --master "
                       "(local[*], spark://HOST:7077, yarn) and the Java installation") from None


def _spark(inp, job: Job, dest, fmt: str, rep: RunReport, progress, master) -> None:
    spark = spark_session(master, bool(progress))
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from . import spark as cxspark

    if inp.format == "parquet":
        sdf = spark.read.parquet(*inp.files)
    else:
        sdf = spark.read.csv(inp.files, header=True, schema=from_arrow_schema(inp.schema), enforceSchema=False,
                             mode="DROPMALFORMED")  # as the other engines: the lines scan_csv named are left out
    res = cxspark.evaluate(sdf, job)
    rep.keys = cxspark.key_report(sdf, job.key)
    if fmt == "csv":
        flat = datafiles.for_csv(pa.RecordBatch.from_pylist([], schema=job.schema(inp.schema.field(job.key).type))).schema
        res = res.mapInArrow(lambda bs: (datafiles.for_csv(b) for b in bs), from_arrow_schema(flat))
        # date-times written as the local engine's CSV writer (pyarrow) writes them
        (res.write.option("header", True).option("timestampFormat", "yyyy-MM-dd HH:mm:ss.SSSSSS")
         .option("timestampNTZFormat", "yyyy-MM-dd HH:mm:ss.SSSSSS").csv(str(dest.tmp)))
        back = spark.read.option("header", True).csv(str(dest.tmp))
    else:
        res.write.parquet(str(dest.tmp))
        back = spark.read.parquet(str(dest.tmp))
    got = back.agg(F.count(F.lit(1)).alias("rows"), F.count(PROBLEMS).alias("problems")).collect()[0]
    rep.rows, rep.rows_with_problems = got["rows"], got["problems"]
