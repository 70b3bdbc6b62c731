"""cxrules.spark (mapInArrow, local with 2 workers) gives, row for row and column for column,
what the single-process evaluator gives on the same table, with partitions that each hold one
band of spend; the percentile is an exact distributed rank."""
from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cxrules import rulesets
from cxrules.batch import TABLE_PREFIX, Job
from cxrules.cli import cli
from scale_data import AS_OF, BAD_KEYS, KEY, bad_keys, customers, whole_table_results, write_parts

RULES = rulesets.bundled_rules_dir()


@pytest.fixture(scope="module")
def table():
    return customers(3000)


@pytest.fixture(scope="module")
def expected(table):
    rs = rulesets.load_or_raise(RULES)
    return pa.Table.from_batches([whole_table_results(Job(rs, table.column_names, as_of=AS_OF, key=KEY), table)])


@pytest.fixture(scope="module")
def source(tmp_path_factory, table):
    src = tmp_path_factory.mktemp("spark") / "in"
    src.mkdir()
    for i in range(3):  # three files, each one band of spend
        pq.write_table(table.slice(i * 1000, 1000), src / f"p{i}.parquet")
    return src


def test_spark_equals_the_single_process_on_clustered_partitions(spark, source, expected):
    import cxrules.spark as cxspark

    rs = rulesets.load_or_raise(RULES)
    sdf = spark.read.parquet(str(source)).coalesce(3)  # partitions keep the files' spend bands
    assert sdf.rdd.getNumPartitions() >= 2
    got = cxspark.evaluate(sdf, rs, as_of=AS_OF, key=KEY).toArrow()
    assert got.schema == expected.schema
    assert got.sort_by(KEY).equals(expected)


def test_spark_rank_equals_the_whole_table_percentile_with_ties(spark, source, table):
    import cxrules.spark as cxspark

    rs = rulesets.load_or_raise(RULES)
    job = Job(rs, table.column_names, as_of=AS_OF, key=KEY)
    ranked = cxspark.with_ranks(spark.read.parquet(str(source)), job).select(KEY, TABLE_PREFIX + "spend_rank").toArrow()
    want = job.with_ranks(table.combine_chunks().to_batches()[0], job.stats(table))
    want = pa.Table.from_batches([want]).select([KEY, TABLE_PREFIX + "spend_rank"]).sort_by(KEY)
    assert ranked.sort_by(KEY).column(1).to_pylist() == want.column(1).to_pylist()
    ranks = want.column(1).to_pylist()
    assert len(set(r for r in ranks if r is not None)) < len(ranks) // 2  # ties: many rows share a rank


def test_cli_run_with_spark(spark, source, tmp_path, expected):
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["run", str(source), str(out), "--engine", "spark", "--as-of", "2026-11-23 09:30",
                                 "--key", KEY, "--rules", str(RULES), "--silent", "--json"])
    assert r.exit_code == 0, r.output
    assert '"rows": 3000' in r.output and '"duplicated": 0' in r.output and '"blank": 0' in r.output
    assert pq.read_table(out).sort_by(KEY).equals(expected)


def test_spark_counts_duplicate_and_blank_keys_as_the_local_engine(spark, tmp_path, table):
    import cxrules.spark as cxspark
    from cxrules.datafiles import inputs
    from cxrules.keys import KeyCheck

    src = write_parts(bad_keys(table), tmp_path / "in", "csv")
    rep = cxspark.key_report(spark.read.csv(str(src), header=True), KEY)
    assert {k: getattr(rep, k) for k in BAD_KEYS} == BAD_KEYS
    local = KeyCheck(KEY)
    batches = inputs(src).by_file()
    for b in batches.to_batches():
        local.add(b, batches.file)
    want = local.report()
    assert [(e["key"], e["rows"]) for e in rep.examples] == [(e["key"], e["rows"]) for e in want.examples]
    # Spark names the files, not the rows
    assert rep.examples[0]["where"] == [str(src / f"p{i}.csv") for i in range(3)]
    assert rep.examples[-1]["where"] == [str(src / "p0.csv"), str(src / "p2.csv")]


def test_cli_run_over_csv_gives_what_the_local_engine_gives(spark, table, tmp_path):
    # text that some CSV readers take for a blank ('nan', 'NULL', 'N/A') is read alike by both: as written
    src = write_parts(table, tmp_path / "in", "csv")
    lines = (src / "p1.csv").read_text().splitlines()
    spend = lines[0].split(",").index('"Spend 12m"')
    for n, text in ((5, "NULL"), (6, "N/A")):
        cells = lines[n].split(",")
        cells[spend] = text
        lines[n] = ",".join(cells)
    (src / "p1.csv").write_text("\n".join(lines) + "\n")
    outs = {}
    for engine, out in (("local", tmp_path / "out.parquet"), ("spark", tmp_path / "out")):
        r = CliRunner().invoke(cli, ["run", str(src), str(out), "--engine", engine, "--as-of", "2026-11-23 09:30",
                                     "--key", KEY, "--rules", str(RULES), "--silent", "--json"])
        assert r.exit_code == 0, r.output
        outs[engine] = pq.read_table(out).sort_by(KEY)
    assert outs["spark"].equals(outs["local"])
    texts = {}
    for engine, out in (("local", tmp_path / "out.csv"), ("spark", tmp_path / "parts.csv")):
        r = CliRunner().invoke(cli, ["run", str(src), str(out), "--engine", engine, "--as-of", "2026-11-23 09:30",
                                     "--key", KEY, "--rules", str(RULES), "--silent"])
        assert r.exit_code == 0, r.output
        files = [out] if engine == "local" else sorted(out.glob("part-*.csv"))  # Spark writes a folder of parts
        rows = [row for f in files for row in list(csv.reader(Path(f).read_text().splitlines()))[1:]]
        texts[engine] = sorted(rows)
    assert texts["spark"] == texts["local"]  # each cell's text too (quoting aside): dates and date-times alike
    messages = [x["message"] for p in outs["local"].column("problems").to_pylist() if p for x in p]
    assert {f"'{t}' is not a number" for t in ("nan", "NULL", "N/A")} <= {m for m in messages if m.endswith("is not a number")}


def test_a_spark_that_does_not_start_is_one_line_not_a_traceback(source, tmp_path):
    # a fresh process: in this one the session's Spark is already running and would be reused
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "cxrules.cli", "run", str(source), str(tmp_path / "out"), "--engine", "spark",
                        "--master", "bogus://nowhere", "--as-of", "2026-11-23 09:30", "--key", KEY, "--silent"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr + r.stdout
    assert "Spark did not start with master 'bogus://nowhere'" in r.stderr + r.stdout or "needs Java" in r.stderr + r.stdout
    assert not (tmp_path / "out").exists()
