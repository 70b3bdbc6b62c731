"""Duplicate and blank row keys in `cxrules run`'s input.

The key is what the results are joined back on (no engine keeps row order), so a key on two
rows, or a row without one, breaks that join. The rows are still evaluated and written (a bad
row never stops the good ones); the run names them. Each engine counts them its own way:
`KeyCheck` while the local engine streams its batches (holding the key column only), Dask a
distributed value_counts (cxrules.dask), Spark a groupBy(key).count() (cxrules.spark). All of
them call a key blank alike: null, or text of spaces only.
"""
from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

EXAMPLES = 5  # examples named in a report, blanks included
PLACES = 3  # places named per example


@dataclass
class KeyReport:
    """What a run found wrong with its keys: key values on more than one row, rows without one."""

    column: str
    duplicated: int = 0  # key values that more than one row holds
    duplicate_rows: int = 0  # the rows holding them
    blank: int = 0  # rows without a key
    examples: list[dict] = field(default_factory=list)  # {"key": value or None for blank, "rows": n, "where": [...]}

    def __bool__(self) -> bool:
        return bool(self.duplicated or self.blank)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line for the run's summary (empty when every key is there once)."""
        if not self:
            return ""
        said = []
        if self.duplicated:
            said.append(f"{self.duplicated} key{'s' if self.duplicated != 1 else ''} on more than one row "
                        f"({self.duplicate_rows} rows)")
        if self.blank:
            said.append(f"{self.blank} row{'s' if self.blank != 1 else ''} without a key")
        shown = []
        for e in self.examples:
            what = "blank" if e["key"] is None else repr(e["key"])
            places = f" ({'; '.join(e['where'])})" if e["where"] else ""
            shown.append(f"{what} on {e['rows']} row{'s' if e['rows'] != 1 else ''}{places}")
        return (f"{self.column}: {' and '.join(said)}; the results cannot be joined back one to one "
                f"(every row was still evaluated): {', '.join(shown)}")

    def add_examples(self, dups: list[tuple], blank_where: list[str]) -> None:
        """dups: (key, rows, places) of some duplicated keys; blank_where: where blank keys are."""
        room = EXAMPLES - (1 if self.blank else 0)
        for k, n, where in sorted(dups, key=lambda d: (str(d[0]),))[:room]:
            self.examples.append({"key": plain(k), "rows": int(n), "where": list(where)[:PLACES]})
        if self.blank:
            self.examples.append({"key": None, "rows": self.blank, "where": list(blank_where)[:PLACES]})


def plain(v):
    """A key value as JSON holds it."""
    return v if v is None or isinstance(v, (str, int, float, bool)) else str(v)


def blank_mask(col) -> pa.Array:
    """True where a key is blank: null, or text of spaces only."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    mask = pc.is_null(col)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_string_view(col.type):
        mask = pc.or_kleene(mask, pc.equal(pc.utf8_trim_whitespace(col), ""))
    return mask.fill_null(True)


def place(file, row: int) -> str:
    return f"{file}, row {row}" if file else f"row {row}"


class KeyCheck:
    """The keys of batches as they stream past (file by file), checked at the end. Holds the
    key column and where each file starts, nothing else of the rows."""

    def __init__(self, column: str):
        self.column = column
        self.chunks: list[pa.Array] = []
        self.starts: list[int] = []  # first row (over all files) of each file in self.files
        self.files: list = []
        self.rows = 0
        self.blank = 0
        self.blank_where: list[str] = []

    def add(self, batch, file=None) -> None:
        if not self.files or self.files[-1] != file:
            self.files.append(file)
            self.starts.append(self.rows)
        col = batch.column(self.column)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        blank = blank_mask(col)
        n = pc.sum(blank).as_py() or 0
        if n:
            if len(self.blank_where) < PLACES:
                for i in pc.indices_nonzero(blank).to_pylist()[:PLACES - len(self.blank_where)]:
                    self.blank_where.append(place(file, self.rows + i - self.starts[-1] + 1))
            self.blank += n
            col = pc.if_else(blank, pa.scalar(None, col.type), col)  # left out of the count below
        self.chunks.append(col)
        self.rows += len(col)

    def report(self) -> KeyReport:
        rep = KeyReport(self.column, blank=self.blank)
        if not self.chunks:
            return rep
        keys = pa.chunked_array(self.chunks)
        counts = pc.value_counts(keys.drop_null())
        many = counts.filter(pc.greater(counts.field("counts"), 1))
        rep.duplicated = len(many)
        rep.duplicate_rows = int(pc.sum(many.field("counts")).as_py() or 0)
        dups = []
        if len(many):
            ex = many.slice(0, EXAMPLES)
            values = ex.field("values")
            where: dict = {v: [] for v in values.to_pylist()}
            hits = pc.indices_nonzero(pc.is_in(keys, value_set=values).combine_chunks()).to_pylist()
            picked = keys.take(pa.array(hits, pa.int64())).to_pylist() if hits else []
            for i, v in zip(hits, picked):
                if len(where[v]) < PLACES:
                    f = bisect.bisect_right(self.starts, i) - 1
                    where[v].append(place(self.files[f], i - self.starts[f] + 1))
            dups = [(v, n, where[v]) for v, n in zip(values.to_pylist(), ex.field("counts").to_pylist())]
        rep.add_examples(dups, self.blank_where)
        return rep


__all__ = ["KeyReport", "KeyCheck", "blank_mask", "place", "plain", "EXAMPLES", "PLACES"]
