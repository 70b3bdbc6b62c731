"""The rules over tables past one sheet: Arrow record batches in and out, the one path that
the single process (`run_local`), Dask (cxrules.dask) and Spark (cxrules.spark) share.

A `Job` is what every worker needs and nothing more: the checked rule set, a fixed as-of
(evaluating on both sides of midnight would give two answers), the row key, and which data
column feeds which name. It pickles; each worker process builds its Evaluator from it once
(an Evaluator holds the engine and a lock and cannot travel).

A percentile (`percentile(monetary)`) is a property of the whole table, not of a part: it is
computed once over all rows (`TableStats`, or each engine's own distributed rank) and handed
to every part in a column named TABLE_PREFIX + input name. `evaluate` reads those columns
only as table values and never as row data, so a stale `spend_rank` column in the data
changes nothing; a part without them is refused rather than ranked on its own.
"""
from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .evaluation import Evaluator
from .model import RuleSet
from .problems import CxError, did_you_mean
from .values import coercer, norm_header

TABLE_PREFIX = "__cxrules_table__"
PROBLEMS = "problems"
PROBLEM_TYPE = pa.list_(pa.struct([("name", pa.string()), ("decision", pa.string()),
                                   ("severity", pa.string()), ("message", pa.string())]))
_ARROW = {"text": pa.string(), "number": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(),
          "datetime": pa.timestamp("us"), "duration": pa.string()}  # durations as written: "14d", "4h"


class BatchError(CxError, ValueError):
    """A job that cannot run on this data: one sentence naming what and how to fix it."""


@dataclass(frozen=True)
class TableInput:
    """A derived input that is a property of the whole table: its name, the name it ranks and
    the data column holding that."""

    name: str
    source: str
    column: str


def percentile(below: np.ndarray, count: int) -> np.ndarray:
    """The percentile evaluation gives a value with `below` smaller ones among `count`:
    100 * below / (count - 1), 100 for a lone value (evaluation._percentiles)."""
    if count == 1:
        return np.full(len(below), 100.0)
    return 100.0 * below.astype(np.float64) / (count - 1)


class TableStats:
    """Exact counts of the ranked values of a whole table, from its parts in any order:
    distinct values and how many rows hold each (what a percentile needs, ties included)."""

    def __init__(self, values=None, counts=None):
        self.values = np.empty(0) if values is None else np.asarray(values, dtype=np.float64)
        self.counts = np.empty(0, dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)

    @classmethod
    def of(cls, keys: np.ndarray) -> "TableStats":
        v, c = np.unique(keys[~np.isnan(keys)], return_counts=True)
        return cls(v, c)

    def merged(self, other: "TableStats") -> "TableStats":
        v, inv = np.unique(np.concatenate([self.values, other.values]), return_inverse=True)
        c = np.zeros(len(v), dtype=np.int64)
        np.add.at(c, inv.reshape(-1), np.concatenate([self.counts, other.counts]))
        return TableStats(v, c)

    def ranks(self, keys: np.ndarray) -> pa.Array:
        """Each key's percentile in the whole table (null for a blank)."""
        total = int(self.counts.sum())
        before = np.concatenate([[0], np.cumsum(self.counts)])
        blank = np.isnan(keys)
        below = before[np.searchsorted(self.values, np.where(blank, 0, keys), side="left")]
        return pa.array(percentile(below, max(total, 1)), mask=blank, type=pa.float64())


# one Evaluator per worker process and job (a job's copies share its token)
_EVALUATORS: OrderedDict[str, Evaluator] = OrderedDict()
_EVALUATORS_LOCK = threading.Lock()


class Job:
    """What to evaluate over a table: the rules, a fixed as-of, the row key, and which data
    column feeds which name. Made on the driver from the data's column names; pickles."""

    def __init__(self, rules: RuleSet, columns, *, as_of, key: str, decisions=None, dayfirst: bool = False,
                 text_native: bool = False):
        from .recalc import applicable

        if not isinstance(as_of, (dt.datetime, dt.date)):
            raise BatchError("a fixed as-of is required (e.g. 2026-11-23 09:30): parts evaluated at different "
                             "moments would disagree about days since, hours since and due dates")
        self.rules = rules
        self.as_of = _as_of(rules, as_of)
        self.key = key
        self.dayfirst = dayfirst
        self.text_native = text_native  # CSV: every value is text, read per row by the rules' types
        columns = list(columns)
        if key not in columns:
            hint = did_you_mean(key, columns) or f"the columns are {', '.join(columns[:12])}"
            raise BatchError(f"no column '{key}' to key the rows by; {hint}")
        self.reads = _resolve(rules, [c for c in columns if c != key and not c.startswith(TABLE_PREFIX)])
        found = set(self.reads)
        runs, self.missing, cannot = applicable(rules, found)
        if decisions:
            wanted = [decisions] if isinstance(decisions, str) else list(decisions)
            need: set[str] = set()
            for d in wanted:
                if d not in rules.tables:
                    raise BatchError(f"no decision named '{d}'; " + (did_you_mean(d, rules.tables) or f"decisions: {', '.join(rules.tables)}"))
                need |= {t.name for t in rules.requires(d)}
            stuck = {d: cannot.get(d, []) for d in need if d not in runs}
            if stuck:
                d, lacks = next(iter(stuck.items()))
                raise BatchError(f"decision '{d}' cannot run on this data: it needs "
                                 f"{', '.join(lacks or ['more of its columns'])} (no such column)")
            runs = [d for d in runs if d in need]
            cannot = {}
        elif not runs:
            raise BatchError("no decision can run on these columns; name the columns as 'cxrules decisions' lists them "
                             "(a rule name such as monetary, or a header such as Spend 12m)")
        self.decisions = runs
        self.cannot = cannot  # decisions that apply but lack a column: not run
        # outputs of the decisions run are computed, never read from the data
        results = {n for d in runs for n in rules.tables[d].result_names}
        self.reads = {n: c for n, c in self.reads.items() if n not in results}
        for d in runs:
            for i in rules.tables[d].inputs:
                if i.derive is not None and i.derive.date is not None:
                    # a row's result depends on the rows of other days, which another part may hold
                    raise BatchError(f"decision '{d}' reads {i.name} = {i.derive}, which compares each row with the rows of "
                                     "other days; run it with cxrules recalc on the sheet of measures, or leave it out "
                                     "with --decision")
        self.table_inputs = []
        for d in runs:
            for i in rules.tables[d].inputs:
                if i.derive and i.derive.func == "percentile" and i.name not in {t.name for t in self.table_inputs}:
                    src = i.derive.field
                    if src not in self.reads:
                        continue  # blank column: every rank blank, in every part alike
                    self.table_inputs.append(TableInput(i.name, src, self.reads[src]))
        self.outputs = []  # (name, arrow type, how a value is written)
        for d in runs:
            t = rules.tables[d]
            for o in t.outputs:
                self.outputs.append((o.name, *_arrow_type(t.output_type(o.name), t.is_multi)))
            for due in t.due:
                self.outputs.append((due.name, pa.timestamp("us"), _timestamp))
        clash = {self.key, PROBLEMS} & {n for n, _, _ in self.outputs}
        if clash:
            raise BatchError(f"the result column '{clash.pop()}' would have the name of the key or of the problems column; "
                             "key the rows by another column")
        self.token = uuid.uuid4().hex

    # ------------------------------------------------------------------ travelling
    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_evaluator"}

    def evaluator(self) -> Evaluator:
        """This process's Evaluator for the job, built on first use."""
        ev = self.__dict__.get("_evaluator")
        if ev is None:
            with _EVALUATORS_LOCK:
                ev = _EVALUATORS.get(self.token)
                if ev is None:
                    ev = _EVALUATORS[self.token] = Evaluator(self.rules)
                    while len(_EVALUATORS) > 4:
                        _EVALUATORS.popitem(last=False)
            self._evaluator = ev
        return ev

    # ------------------------------------------------------------------ the global pass
    def rank_keys(self, batch) -> dict[str, np.ndarray]:
        """For each table input, what it ranks in each row as a double, NaN where the row has
        no usable value (read as the evaluator reads it: a bad cell is blank, not ranked)."""
        out = {}
        for t in self.table_inputs:
            out[t.name] = _numbers(batch.column(t.column), coercer("number", self.dayfirst, self.rules.timezone))
        return out

    def stats(self, batch) -> dict[str, TableStats]:
        return {name: TableStats.of(k) for name, k in self.rank_keys(batch).items()}

    def with_ranks(self, batch, stats: dict[str, TableStats]):
        """`batch` with its table values added (from the whole table's stats)."""
        keys = self.rank_keys(batch)
        for t in self.table_inputs:
            batch = batch.append_column(TABLE_PREFIX + t.name, stats[t.name].ranks(keys[t.name]))
        return batch

    # ------------------------------------------------------------------ a part
    def schema(self, key_type: pa.DataType) -> pa.Schema:
        """The results' schema: the key, each result, the row's problems."""
        return pa.schema([(self.key, key_type)] + [(n, t) for n, t, _ in self.outputs] + [(PROBLEMS, PROBLEM_TYPE)])

    def evaluate(self, batch) -> pa.RecordBatch:
        """The results of one part (an Arrow RecordBatch or Table holding the table values)."""
        if isinstance(batch, pa.Table):
            batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else pa.RecordBatch.from_pylist([], schema=batch.schema)
        n = batch.num_rows
        names = set(batch.schema.names)
        table_values = {}
        for t in self.table_inputs:
            col = TABLE_PREFIX + t.name
            if col not in names:
                raise BatchError(f"{t.name} is a percentile of the whole table, and this part does not carry it "
                                 f"(column {col}); add it first with Job.with_ranks from the whole table's stats")
            table_values[t.name] = _pylist(batch.column(col))
        columns = {name: _pylist(batch.column(col)) for name, col in self.reads.items()}
        ev = self.evaluator().evaluate_columns(columns, n, self.decisions, self.as_of, dayfirst=self.dayfirst,
                                               table_values=table_values, text_native=self.text_native)
        return self.results(batch.column(self.key), ev)

    def results(self, keys: pa.Array, ev) -> pa.RecordBatch:
        """An Evaluation of rows as a batch of results keyed by `keys` (one per row)."""
        n = ev.n
        arrays = [keys]
        for name, type_, conv in self.outputs:
            values = ev.columns.get(name) or [None] * n
            arrays.append(pa.array(conv(values) if conv else values, type=type_))
        per_row: list = [None] * n
        for p in ev.problems:
            msg = p.message + (f" ({p.suggestion})" if p.suggestion else "")
            if per_row[p.index] is None:
                per_row[p.index] = []
            per_row[p.index].append({"name": p.name, "decision": p.table, "severity": p.severity, "message": msg})
        arrays.append(pa.array(per_row, type=PROBLEM_TYPE))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema(keys.type))


def _as_of(rules: RuleSet, as_of) -> dt.datetime:
    """The moment on the rules' clock, as evaluate() takes it."""
    from zoneinfo import ZoneInfo

    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is not None and as_of.utcoffset() is not None:
            as_of = as_of.astimezone(ZoneInfo(rules.timezone))
        return as_of.replace(tzinfo=None)
    return dt.datetime(as_of.year, as_of.month, as_of.day)


def _resolve(rules: RuleSet, columns: list[str]) -> dict[str, str]:
    """Name the rules read -> the data column holding it: a column named as the rules name it
    (monetary), else one with one of its headers (Spend 12m, 消费金额)."""
    from .recalc import wanted_columns

    want = wanted_columns(rules)
    exact = {c: c for c in columns if c in want}
    by_header: dict[str, str] = {}
    for name, aliases in want.items():
        keys = {norm_header(a) for a in aliases} | {norm_header(name)}
        for c in columns:
            if norm_header(c) in keys and name not in exact:
                if name in by_header and by_header[name] != c:
                    raise BatchError(f"columns '{by_header[name]}' and '{c}' both read as {name}; rename or drop one")
                by_header[name] = c
    out = dict(by_header)
    out.update(exact)
    return out


def _arrow_type(type_: str, multi: bool):
    t = _ARROW.get(type_, pa.string())
    conv = _durations if type_ == "duration" else _timestamp if type_ == "datetime" else None
    if multi:
        inner = conv
        return pa.list_(t), (lambda vs: [None if v is None else (inner(v) if inner else v) for v in vs])
    return t, conv


def _durations(values: list) -> list:
    memo: dict = {}
    return [None if v is None else memo[v] if v in memo else memo.setdefault(v, str(v)) for v in values]


def _timestamp(values: list) -> list:
    """Due dates are date-times; one computed from a date alone is that day's midnight."""
    return [dt.datetime(v.year, v.month, v.day) if v.__class__ is dt.date else v for v in values]


def _pylist(arr) -> list:
    """An Arrow column as the Python values a sheet gives: numbers without nulls through
    numpy (far faster), the rest as Arrow converts them."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        if not arr.null_count:
            return arr.to_numpy(zero_copy_only=False).tolist()
        vals = np.array(arr.fill_null(0).to_numpy(zero_copy_only=False).tolist(), dtype=object)
        vals[np.asarray(arr.is_null())] = None
        return vals.tolist()
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
    if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.string())
    return arr.to_pylist()


def _numbers(arr, conv) -> np.ndarray:
    """A column as doubles read as evaluation reads numbers; NaN for blanks and bad cells."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        a = arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False).astype(np.float64)
        a[~np.isfinite(a)] = np.nan  # NaN and ±inf are bad values there
        return a
    out = np.full(len(arr), np.nan)
    memo: dict = {}
    for i, v in enumerate(_pylist(arr)):
        if v is None:
            continue
        x = memo.get(v, memo) if v.__class__ is str else memo
        if x is memo:
            try:
                x = float(conv(v))
            except Exception:  # noqa: BLE001 - a bad cell: its row says so when evaluated
                x = np.nan
            if v.__class__ is str:
                memo[v] = x
        out[i] = x
    return out


# ------------------------------------------------------------------ one process
def run_local(job: Job, batches, progress=None, chunk: int = 200_000, seen=None):
    """Every record batch's results, in order: two passes over `batches` (a re-iterable of
    RecordBatches or a pyarrow Dataset / Table): the table's stats, then each chunk evaluated.
    progress(done_rows, total_rows) after each chunk; seen(batch) for each batch of the
    first pass (the keys are checked there, before any result is made)."""
    parts = _batches(batches)
    stats = {t.name: TableStats() for t in job.table_inputs}
    total = 0
    for b in parts():
        total += b.num_rows
        if seen:
            seen(b)
        for name, s in job.stats(b).items():
            stats[name] = stats[name].merged(s)
    done = 0
    for b in parts():
        for start in range(0, b.num_rows, chunk) if b.num_rows else ():
            part = b.slice(start, chunk)
            yield job.evaluate(job.with_ranks(part, stats))
            done += part.num_rows
            if progress:
                progress(done, total)


def _batches(source):
    if isinstance(source, pa.RecordBatch):
        return lambda: iter([source])
    if isinstance(source, pa.Table):
        return lambda: iter(source.to_batches())
    if hasattr(source, "to_batches"):  # a pyarrow Dataset: read twice rather than held
        return lambda: iter(source.to_batches())
    items = list(source)
    return lambda: iter(items)


__all__ = ["Job", "TableStats", "TableInput", "BatchError", "run_local", "percentile", "TABLE_PREFIX", "PROBLEMS",
           "PROBLEM_TYPE"]
