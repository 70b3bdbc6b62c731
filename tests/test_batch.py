"""The batch core (cxrules.batch), the local engine and `cxrules run` over Parquet and CSV."""
from __future__ import annotations

import datetime as dt
import json
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cxrules import datafiles, rulesets
from cxrules.batch import PROBLEMS, BatchError, Job, TableStats, run_local
from cxrules.cli import cli
from cxrules.evaluation import ArgumentError, Evaluator, _percentiles
from cxrules.keys import KeyCheck
from scale_data import AS_OF, BAD_KEYS, KEY, bad_keys, customers, whole_table_results, write_parts

RULES = rulesets.bundled_rules_dir()


@pytest.fixture(scope="module")
def rs():
    return rulesets.load_or_raise(RULES)


@pytest.fixture(scope="module")
def table():
    return customers(3000)


@pytest.fixture(scope="module")
def job(rs, table):
    return Job(rs, table.column_names, as_of=AS_OF, key=KEY)


@pytest.fixture(scope="module")
def expected(job, table):
    return pa.Table.from_batches([whole_table_results(job, table)])


def local(job, table, chunk=700):
    return pa.Table.from_batches(list(run_local(job, table, chunk=chunk)))


def test_job_reads_headers_and_rule_names_and_runs_what_the_columns_allow(job):
    assert job.reads["monetary"] == "Spend 12m" and job.reads["last_purchase"] == "Last purchase"
    assert job.reads["first_purchase"] == "first_purchase"
    assert job.decisions == ["tier", "contact"]
    assert [t.name for t in job.table_inputs] == ["spend_rank"]
    assert "spend_rank" not in job.reads  # the stale column is no input


def test_decision_option_runs_it_and_what_it_reads(rs, table):
    assert Job(rs, table.column_names, as_of=AS_OF, key=KEY, decisions=["tier"]).decisions == ["tier"]
    assert Job(rs, table.column_names, as_of=AS_OF, key=KEY, decisions="contact").decisions == ["tier", "contact"]
    with pytest.raises(BatchError, match="decision 'escalation' cannot run"):
        Job(rs, table.column_names, as_of=AS_OF, key=KEY, decisions=["escalation"])
    with pytest.raises(BatchError, match="no decision named 'tiers'.*tier"):
        Job(rs, table.column_names, as_of=AS_OF, key=KEY, decisions=["tiers"])


def test_local_in_chunks_equals_the_evaluator_on_the_whole_table(job, table, expected):
    got = local(job, table, chunk=700)  # five parts, each one band of spend
    assert got.schema == expected.schema
    assert got.equals(expected)
    tiers = got.column("tier").to_pylist()
    assert tiers.count("High value") > 100 and "Top 20 % by spend" in got.column("reason").to_pylist()


def test_ranking_each_part_alone_would_change_tiers(job, table, expected):
    """Why the table values exist: the evaluator on each part alone ranks within the part."""
    cols_of = lambda t: {name: t.column(col).to_pylist() for name, col in job.reads.items()}  # noqa: E731
    changed = 0
    for start in range(0, table.num_rows, 700):
        part = table.slice(start, 700)
        ev = job.evaluator().evaluate_columns(cols_of(part), part.num_rows, job.decisions, job.as_of)
        want = expected.column("tier").to_pylist()[start:start + 700]
        changed += sum(a != b for a, b in zip(ev.columns["tier"], want))
    assert changed > 20


def test_types_dates_durations_problems_keyed_by_row(job, expected):
    schema = expected.schema
    assert schema.field(KEY).type == pa.string()
    assert schema.field("every").type == pa.string() and schema.field("next_contact").type == pa.timestamp("us")
    assert set(expected.column("every").drop_null().to_pylist()) <= {"1d", "3d", "7d", "14d", "30d", "60d", "90d", "180d", "365d", "1w", "2w"}
    assert isinstance(expected.column("next_contact").drop_null()[0].as_py(), dt.datetime)
    rows = expected.to_pylist()
    nan_row = next(r for r in rows if r[PROBLEMS] and any(p["name"] == "monetary" for p in r[PROBLEMS]))
    assert nan_row["tier"] is None and nan_row[PROBLEMS][0]["severity"] == "error"
    assert sum(1 for r in rows if r[PROBLEMS]) < len(rows) // 5  # the good rows are untouched


def test_stale_column_of_the_same_name_never_overrides_the_table_value(rs, job, table):
    part = table.slice(0, 600)  # the smallest spenders: ranked low in the whole table
    stats = job.stats(table)
    with_ranks = job.with_ranks(part.combine_chunks().to_batches()[0], stats)
    assert with_ranks.schema.field("spend_rank").type == pa.float64()  # the stale column is still there...
    got = job.evaluate(with_ranks)
    reasons = got.column("reason").to_pylist()
    assert "Top 20 % by spend" not in reasons  # ...and 99 in it is never read
    # the same through the Evaluator's own argument
    ev = job.evaluator()
    cols = {"monetary": [1000.0, 1000.0], "last_purchase": [dt.date(2026, 11, 1)] * 2, "frequency": [3, 3], "spend_rank": [99.0, 99.0]}
    res = ev.evaluate_columns(cols, 2, ["tier"], AS_OF, table_values={"spend_rank": [10.0, 90.0]})
    assert res.columns["tier"] == ["Regular", "High value"] and res.columns["spend_rank"] == [10.0, 90.0]


def test_a_part_without_its_table_values_is_refused(job, table):
    with pytest.raises(BatchError, match="percentile of the whole table"):
        job.evaluate(table.slice(0, 10))


def test_table_values_argument_is_checked(rs):
    ev = Evaluator(rs)
    with pytest.raises(ArgumentError, match="no derived input"):
        ev.evaluate_columns({"monetary": [1]}, 1, ["tier"], AS_OF, table_values={"monetary": [1.0]})
    with pytest.raises(ArgumentError, match="must hold 1 values"):
        ev.evaluate_columns({"monetary": [1]}, 1, ["tier"], AS_OF, table_values={"spend_rank": [1.0, 2.0]})


def test_a_fixed_as_of_is_required(rs):
    with pytest.raises(BatchError, match="fixed as-of is required"):
        Job(rs, ["id", "monetary"], as_of=None, key="id")


def test_job_errors_name_the_fix(rs):
    with pytest.raises(BatchError, match="no column 'id'.*customer_id"):
        Job(rs, ["customer_id", "monetary"], as_of=AS_OF, key="id")
    with pytest.raises(BatchError, match="no decision can run"):
        Job(rs, ["id", "colour"], as_of=AS_OF, key="id")
    with pytest.raises(BatchError, match="both read as monetary"):
        Job(rs, ["id", "Spend 12m", "spend 12M "], as_of=AS_OF, key="id")


def test_job_pickles_and_builds_one_evaluator_per_process(job, table, expected):
    a, b = pickle.loads(pickle.dumps(job)), pickle.loads(pickle.dumps(job))
    assert "_evaluator" not in pickle.loads(pickle.dumps(a)).__dict__
    assert a.evaluator() is b.evaluator()
    assert local(a, table, chunk=1000).equals(expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from([0.0, 1.5, 7.0, 7.0, 1e6]), st.floats(-1e9, 1e9)), min_size=1, max_size=60),
       st.integers(1, 7))
def test_stats_from_parts_rank_as_the_evaluator_ranks_the_whole(values, parts):
    keys = np.array([np.nan if v is None else v for v in values])
    stats = TableStats()
    for chunk in np.array_split(keys, parts):
        stats = stats.merged(TableStats.of(chunk))
    got = stats.ranks(keys).to_pylist()
    want = _percentiles(values)
    if want is None:  # fewer than two values: the evaluator's own fallback
        want = [None if v is None else 100.0 for v in values]
    assert got == want


# ------------------------------------------------------------------ cxrules run
def _run(*args):
    return CliRunner().invoke(cli, ["run", *map(str, args), "--rules", str(RULES)])


def test_cli_run_parquet_to_parquet_and_csv_folder_to_csv(tmp_path, rs, table, expected):
    src = tmp_path / "in.parquet"
    pq.write_table(table, src, row_group_size=1000)
    r = _run(src, tmp_path / "out.parquet", "--as-of", "2026-11-23 09:30", "--key", KEY)
    assert r.exit_code == 0, r.output
    assert "3000 rows" in r.output and "tier, contact" in r.output
    assert pq.read_table(tmp_path / "out.parquet").equals(expected)
    folder = tmp_path / "csv"
    folder.mkdir()
    pacsv.write_csv(table.slice(0, 1500), folder / "a.csv")
    pacsv.write_csv(table.slice(1500), folder / "b.csv")
    r = _run(folder, tmp_path / "out.csv", "--as-of", "2026-11-23 09:30", "--key", KEY, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["rows"] == 3000
    back = pacsv.read_csv(tmp_path / "out.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    read = datafiles.inputs(folder).dataset().to_table()  # as run reads it (NaN comes back as the text 'nan': a row problem)
    want = whole_table_results(Job(rs, read.column_names, as_of=AS_OF, key=KEY), read)
    for name in ("tier", "reason", "every", "channel"):
        assert back.column(name).to_pylist() == want.column(name).to_pylist()
    assert back.column("tier").to_pylist()[:900] == expected.column("tier").to_pylist()[:900]


def test_cli_run_refuses_clearly(tmp_path, table):
    src = tmp_path / "in.parquet"
    pq.write_table(table.slice(0, 50), src)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"keep me")
    r = _run(src, out, "--as-of", "2026-11-23", "--key", KEY)
    assert r.exit_code == 1 and "exists; give --force" in r.output and out.read_bytes() == b"keep me"
    r = _run(src, tmp_path / "o.parquet", "--as-of", "2026-11-23", "--key", "id")
    assert r.exit_code == 1 and "no column 'id'" in r.output and not (tmp_path / "o.parquet").exists()
    r = _run(src, tmp_path / "o.parquet", "--key", KEY)
    assert r.exit_code == 2 and "--as-of" in r.output
    r = _run(tmp_path / "nothing.parquet", tmp_path / "o.parquet", "--as-of", "2026-11-23", "--key", KEY)
    assert r.exit_code == 1 and "no such file or folder" in r.output
    r = _run(src, tmp_path / "o.parquet", "--as-of", "2026-11-23", "--key", KEY, "--workers", "2")
    assert r.exit_code == 2 and "--engine dask" in r.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".~cxrules")]  # no temp left behind


def test_measures_over_dated_rows_are_refused_in_parts(rs):
    cols = ["id", "Measure date", "Department", "Net Promoter Score", "Churn rate (%)", "Negative feedback"]
    with pytest.raises(BatchError, match=r"decision 'nps_alert' reads nps_change = week_over_week\(net_promoter_score, "
                                         r"measure_date, by department\), which compares each row with the rows of other days"):
        Job(rs, cols, as_of=AS_OF, key="id")


def _customers_csv(path, n, bad=None):
    rows = [f"C{i},2026-10-01,{i % 20},{1000 * i}" for i in range(n)]
    if bad:
        rows[bad[0]] = bad[1]
    path.write_text("customer_id,last_purchase,Orders 12m,Spend 12m\n" + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.mark.parametrize("bad", ["C4998,2026-02-30,3,5000", "C4998,2026-10-01,many,5000"])
def test_cli_run_a_bad_value_deep_in_a_csv_is_its_row_problem_only(tmp_path, bad):
    """A column type taken from a CSV's first rows would fail a later file (or row) whole."""
    folder = tmp_path / "in"
    folder.mkdir()
    _customers_csv(folder / "a.csv", 100)
    _customers_csv(folder / "b.csv", 6000, (4998, bad))
    r = _run(folder, tmp_path / "out.csv", "--as-of", "2026-11-23 09:30", "--key", "customer_id", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["rows"] == 6100 and json.loads(r.output)["rows_with_problems"] == 1
    out = pacsv.read_csv(tmp_path / "out.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=True)).to_pylist()
    flagged = [row for row in out if row[PROBLEMS]]
    assert [row["customer_id"] for row in flagged] == ["C4998"] and flagged[0]["tier"] is None
    assert "is not a" in flagged[0][PROBLEMS] and "stored as text" not in flagged[0][PROBLEMS]
    assert sum(1 for row in out if row["tier"]) == 6099


@pytest.mark.parametrize("name", ["out.xlsx", "out"])
def test_cli_run_refuses_an_output_name_that_does_not_say_parquet_or_csv(tmp_path, name):
    _customers_csv(tmp_path / "in.csv", 10)
    r = _run(tmp_path / "in.csv", tmp_path / name, "--as-of", "2026-11-23 09:30", "--key", "customer_id")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert r.output == f"Error: {tmp_path / name}: name the output .parquet or .csv (the local engine writes one file of either kind)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_cli_run_a_malformed_csv_line_is_named_and_left_out_and_the_other_rows_run(tmp_path, engine):
    """Arrow stops a whole read at a line whose fields do not match the header (a traceback
    before); the line is named by file and line instead, and the other rows are evaluated."""
    folder = tmp_path / "in"
    folder.mkdir()
    _customers_csv(folder / "a.csv", 50)
    _customers_csv(folder / "b.csv", 300, (249, "C249,2026-10-01,3"))
    out = tmp_path / ("out.csv" if engine == "local" else "out")
    r = _run(folder, out, "--as-of", "2026-11-23 09:30", "--key", "customer_id", "--engine", engine, "-s")
    assert r.exit_code == 0 and r.output == "", r.output
    r = _run(folder, out, "--as-of", "2026-11-23 09:30", "--key", "customer_id", "--engine", engine, "--force")
    assert r.exit_code == 0, r.output
    assert f"  left out: {folder / 'b.csv'}, line 251: 3 fields where the header has 4; fix the line and run again\n" in r.output
    assert "349 rows" in r.output
    r = _run(folder, out, "--as-of", "2026-11-23 09:30", "--key", "customer_id", "--engine", engine, "--force", "--json", "--strict")
    assert r.exit_code == 1 and json.loads(r.output)["malformed"] == [f"{folder / 'b.csv'}, line 251: 3 fields where the header has 4"]


def test_cli_run_an_output_folder_it_cannot_write_is_one_line(tmp_path, monkeypatch):
    """Root writes into a read-only folder, so the refusal the system gives others is made here."""
    import tempfile

    def refused(*a, **k):
        raise PermissionError(13, "Permission denied")

    _customers_csv(tmp_path / "in.csv", 10)
    monkeypatch.setattr(tempfile, "mkstemp", refused)
    r = _run(tmp_path / "in.csv", tmp_path / "out.csv", "--as-of", "2026-11-23 09:30", "--key", "customer_id")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert r.output == (f"Error: {tmp_path}: cannot write out.csv there (Permission denied); "
                        "make the folder writable, or give OUT in another folder\n")


# ------------------------------------------------------------------ keys
@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "", " ", None]), max_size=40),
       st.lists(st.integers(1, 7), min_size=1, max_size=8))
def test_key_check_streaming_in_batches_counts_as_the_whole_column(keys, cuts):
    from collections import Counter

    check, start, n = KeyCheck("id"), 0, 0
    while start < len(keys):
        part = keys[start:start + cuts[n % len(cuts)]]
        check.add(pa.record_batch({"id": pa.array(part, pa.string())}), f"f{n % 3}")
        start, n = start + len(part), n + 1
    rep = check.report()
    present = Counter(k for k in keys if k is not None and k.strip())
    assert rep.blank == sum(1 for k in keys if k is None or not k.strip())
    assert rep.duplicated == sum(1 for c in present.values() if c > 1)
    assert rep.duplicate_rows == sum(c for c in present.values() if c > 1)
    assert len(rep.examples) <= 5 and bool(rep) == bool(rep.blank or rep.duplicated)
    for e in rep.examples:
        assert e["rows"] == (rep.blank if e["key"] is None else present[e["key"]])


def test_key_check_names_the_file_and_row_of_each_example():
    check = KeyCheck("id")
    check.add(pa.record_batch({"id": pa.array([1, 2, 3], pa.int64())}), "a.parquet")
    check.add(pa.record_batch({"id": pa.array([4, None], pa.int64())}), "a.parquet")
    check.add(pa.record_batch({"id": pa.array([7, 2], pa.int64())}), "b.parquet")
    rep = check.report()
    assert rep.as_dict() == {"column": "id", "duplicated": 1, "duplicate_rows": 2, "blank": 1, "examples": [
        {"key": 2, "rows": 2, "where": ["a.parquet, row 2", "b.parquet, row 2"]},
        {"key": None, "rows": 1, "where": ["a.parquet, row 5"]}]}
    assert rep.summary() == ("id: 1 key on more than one row (2 rows) and 1 row without a key; the results cannot be joined "
                             "back one to one (every row was still evaluated): 2 on 2 rows (a.parquet, row 2; b.parquet, row 2), "
                             "blank on 1 row (a.parquet, row 5)")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_cli_run_names_duplicate_and_blank_keys_and_still_writes_every_row(tmp_path, table, fmt):
    src = write_parts(bad_keys(table), tmp_path / "in", fmt)
    out = tmp_path / "out.parquet"
    r = _run(src, out, "--as-of", "2026-11-23 09:30", "--key", KEY)
    assert r.exit_code == 0, r.output
    warning = [line for line in r.output.splitlines() if line.startswith("  warning: ")]
    assert len(warning) == 1 and "3 keys on more than one row (7 rows) and 2 rows without a key" in warning[0]
    assert f"'C000010' on 3 rows ({src / f'p0.{fmt}'}, row 11; {src / f'p1.{fmt}'}, row 501; {src / f'p2.{fmt}'}, row 501)" in warning[0]
    assert f"blank on 2 rows ({src / f'p0.{fmt}'}, row 701; {src / f'p2.{fmt}'}, row 101)" in warning[0]
    assert pq.read_table(out).num_rows == 3000
    r = _run(src, out, "--as-of", "2026-11-23 09:30", "--key", KEY, "--json", "--strict", "--force")
    assert r.exit_code == 1
    keys = json.loads(r.output)["keys"]
    assert {k: keys[k] for k in BAD_KEYS} == BAD_KEYS
    assert [e["key"] for e in keys["examples"]] == ["C000010", "C000020", "C000999", None]
    assert pq.read_table(out).num_rows == 3000  # written all the same


def test_cli_run_with_unique_keys_says_nothing_of_them(tmp_path, table):
    src = write_parts(table.slice(0, 200), tmp_path / "in", rows=100)
    r = _run(src, tmp_path / "out.csv", "--as-of", "2026-11-23 09:30", "--key", KEY, "--decision", "tier")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output and "key" not in r.output.split("\n", 1)[1]
    r = _run(src, tmp_path / "out.csv", "--as-of", "2026-11-23 09:30", "--key", KEY, "--json", "--force", "--decision", "tier")
    assert json.loads(r.output)["keys"] == {"column": KEY, "duplicated": 0, "duplicate_rows": 0, "blank": 0, "examples": []}
