"""cxrules.dask gives, row for row and column for column, what the single-process evaluator
gives on the same table, with partitions that each hold one band of spend."""
from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import dask
import dask.dataframe as dd

from cxrules import rulesets
from cxrules.batch import Job
from cxrules.cli import cli
import cxrules.dask as cxdask
from scale_data import AS_OF, BAD_KEYS, KEY, bad_keys, customers, whole_table_results, write_parts

RULES = rulesets.bundled_rules_dir()


@pytest.fixture(scope="module")
def table():
    return customers(3000)


@pytest.fixture(scope="module")
def expected(table):
    rs = rulesets.load_or_raise(RULES)
    return pa.Table.from_batches([whole_table_results(Job(rs, table.column_names, as_of=AS_OF, key=KEY), table)])


def test_dask_equals_the_single_process_on_clustered_partitions(table, expected):
    rs = rulesets.load_or_raise(RULES)
    ddf = dd.from_pandas(table.to_pandas(types_mapper=pd.ArrowDtype), npartitions=5, sort=False)
    res = cxdask.evaluate(ddf, rs, as_of=AS_OF, key=KEY)
    with dask.config.set(scheduler="processes", num_workers=2):  # the job travels pickled
        got = pa.Table.from_pandas(res.compute(), preserve_index=False)
    assert got.schema == expected.schema
    assert got.sort_by(KEY).equals(expected)


def test_cli_run_with_dask_writes_a_folder_of_parts(tmp_path, table, expected):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        pq.write_table(table.slice(i * 1000, 1000), src / f"p{i}.parquet")
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["run", str(src), str(out), "--engine", "dask", "--workers", "2", "--as-of", "2026-11-23 09:30",
                                 "--key", KEY, "--rules", str(RULES)])
    assert r.exit_code == 0, r.output
    assert "3000 rows" in r.output and "(dask" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert pq.read_table(out).sort_by(KEY).equals(expected)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_cli_run_with_dask_counts_duplicate_and_blank_keys_as_the_local_engine(tmp_path, table, fmt):
    src = write_parts(bad_keys(table), tmp_path / "in", fmt)
    got = {}
    for engine in ("local", "dask"):
        out = tmp_path / (f"out-{engine}" + (".parquet" if engine == "local" else ""))
        r = CliRunner().invoke(cli, ["run", str(src), str(out), "--engine", engine, "--as-of", "2026-11-23 09:30", "--key", KEY,
                                     "--rules", str(RULES), "--json", "--strict"] + (["--workers", "2"] if engine == "dask" else []))
        assert r.exit_code == 1, r.output
        got[engine] = json.loads(r.output)["keys"]
        assert pq.read_table(out).num_rows == 3000
    assert {k: got["dask"][k] for k in BAD_KEYS} == BAD_KEYS
    assert got["dask"] == got["local"]  # the same examples, files and rows too
