"""Parquet and CSV files (or folders of them) for `cxrules run`: what to read, how its types
are fixed, and writing the results so that the destination is replaced whole or not at all.

A CSV's columns are read as text, by every engine, and each value is read by the type the
rules give it, row by row: a bad date in row 5000 is that row's problem, where a column type
inferred from the first rows would fail the whole file (or a later file of the folder).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .batch import PROBLEMS
from .problems import CxError

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


class DataFileError(CxError, OSError):
    """Input that cannot be read or a destination that cannot be written: says which and why."""


def _skip(row) -> str:
    """A CSV line whose fields do not match the header: left out (the scan has named it)."""
    return "skip"


@dataclass
class Inputs:
    files: list[str]
    format: str  # parquet or csv
    schema: pa.Schema
    malformed: list = None  # CSV: "FILE, line N: ..." of each line left out (see scan_csv)

    def dataset(self) -> ds.Dataset:
        if self.format == "csv":
            return ds.dataset(self.files, format=ds.CsvFileFormat(convert_options=self.csv_options(), parse_options=self.parse_options()),
                              schema=self.schema)
        return ds.dataset(self.files, format="parquet")

    def by_file(self) -> "FileBatches":
        return FileBatches(self.dataset())

    def csv_options(self) -> pacsv.ConvertOptions:
        # an empty field is a blank cell, as in a sheet; any other text ('nan', 'NULL', 'N/A') is
        # read as written, as Spark reads it, and typed (or refused) by the rules
        return pacsv.ConvertOptions(column_types=self.schema, strings_can_be_null=True, null_values=[""])

    def parse_options(self) -> pacsv.ParseOptions:
        return pacsv.ParseOptions(invalid_row_handler=_skip)

    def read_csv(self, path: str) -> pa.Table:
        return pacsv.read_csv(path, convert_options=self.csv_options(), parse_options=self.parse_options())

    def scan_csv(self) -> None:
        """Find, before any engine reads them, the lines whose fields do not match the header (a
        short row, an unclosed quote): each is named and left out, and the other rows run."""
        self.malformed = []

        def seen(row) -> str:
            self.malformed.append(f"{path}, line {row.number if row.number is not None else '?'}: {row.actual_columns} fields "
                                  f"where the header has {row.expected_columns}")
            return "skip"

        for path in self.files:
            try:
                with pacsv.open_csv(path, read_options=pacsv.ReadOptions(use_threads=False),  # threads lose the line numbers
                                    convert_options=self.csv_options(), parse_options=pacsv.ParseOptions(invalid_row_handler=seen)) as r:
                    for _ in r:
                        pass
            except (pa.ArrowInvalid, OSError) as e:
                raise DataFileError(f"{path}: cannot be read as CSV ({str(e).splitlines()[0]})") from None


class FileBatches:
    """A dataset's record batches file by file, re-readable; `file` is the file of the batch
    last given (so a row's place can be named)."""

    def __init__(self, dataset: ds.Dataset):
        self.dataset = dataset
        self.file = None

    def to_batches(self):
        for frag in self.dataset.get_fragments():
            self.file = frag.path
            yield from frag.to_batches(schema=self.dataset.schema)


def inputs(path) -> Inputs:
    """The Parquet or CSV files at `path`: a file, or a folder of them (searched below too;
    names starting with . or _ are skipped, as Spark and Dask leave such files)."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"{path}: no such file or folder")
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in FORMATS
                       and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts))
        if not files:
            raise DataFileError(f"{path}: the folder holds no .parquet or .csv files")
    else:
        if p.suffix.lower() not in FORMATS:
            raise DataFileError(f"{path}: not a .parquet or .csv file; give Parquet or CSV files, or a folder of them")
        files = [str(p)]
    kinds = {FORMATS[Path(f).suffix.lower()] for f in files}
    if len(kinds) > 1:
        raise DataFileError(f"{path}: the folder holds both Parquet and CSV files; give one kind")
    fmt = kinds.pop()
    try:
        schema = pq.read_schema(files[0]) if fmt == "parquet" else _csv_schema(files[0])
    except (pa.ArrowInvalid, OSError) as e:
        raise DataFileError(f"{files[0]}: cannot be read as {fmt.upper()} ({str(e).splitlines()[0]})") from None
    inp = Inputs(files, fmt, schema)
    if fmt == "csv":
        inp.scan_csv()
    return inp


def _csv_schema(path: str) -> pa.Schema:
    """Every column of the CSV's header as text."""
    with pacsv.open_csv(path, parse_options=pacsv.ParseOptions(invalid_row_handler=_skip)) as r:  # the first block only
        names = r.schema.names
    return pa.schema([(n, pa.string()) for n in names])


def output_format(path, folder: bool = False) -> str:
    """csv or parquet, by OUT's name. A file (the local engine) must say which: Parquet bytes
    in a file named .xlsx or .txt would be opened by the wrong program; a folder of part
    files (Dask, Spark) is Parquet unless it is named .csv."""
    suffix = Path(path).suffix.lower()
    if not folder and suffix not in FORMATS:
        raise DataFileError(f"{path}: name the output .parquet or .csv (the local engine writes one file of either kind)")
    return "csv" if suffix == ".csv" else "parquet"


def for_csv(batch: pa.RecordBatch) -> pa.RecordBatch:
    """CSV holds no lists: a list output as its items joined by ', ', problems as
    'severity: name: message' joined by '; '."""
    arrays, fields = [], []
    for f, col in zip(batch.schema, batch.columns):
        if f.name == PROBLEMS:
            col = pa.array([None if ps is None else "; ".join(
                f"{p['severity']}: {p['name'] + ': ' if p['name'] else ''}{p['message']}" for p in ps) for ps in col.to_pylist()],
                type=pa.string())
        elif pa.types.is_list(f.type):
            col = pa.array([None if v is None else ", ".join("" if x is None else str(x) for x in v) for v in col.to_pylist()],
                           type=pa.string())
        arrays.append(col)
        fields.append(pa.field(f.name, col.type))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


class Destination:
    """Results written to a temporary sibling, put in place by commit() (a file or a folder
    replaced whole), or removed by discard(): a failed run leaves OUT as it was."""

    def __init__(self, path, force: bool = False, folder: bool = False):
        self.path = Path(path)
        if self.path.exists() and not force:
            raise DataFileError(f"{path} exists; give --force to replace it, or another name")
        if self.path.exists() and self.path.is_dir() != folder:
            kind = "a folder" if self.path.is_dir() else "a file"
            raise DataFileError(f"{path} is {kind}, and the results would be {'a folder' if folder else 'a file'}; give another name")
        parent = self.path.parent
        if not parent.is_dir():
            raise DataFileError(f"{parent}: no such folder to write {self.path.name} into")
        self.folder = folder
        try:
            fd, tmp = tempfile.mkstemp(prefix=".~cxrules-", suffix=".tmp", dir=parent)
        except OSError as e:  # a read-only folder, a full disk: said before any row is read
            raise DataFileError(f"{parent}: cannot write {self.path.name} there ({e.strerror or e}); "
                                "make the folder writable, or give OUT in another folder") from None
        os.close(fd)
        if folder:
            os.unlink(tmp)  # engines create the folder themselves
        self.tmp = Path(tmp)

    def commit(self) -> None:
        if not self.folder:
            os.replace(self.tmp, self.path)
            return
        old = None
        if self.path.exists():
            old = self.path.with_name(self.tmp.name + ".old")
            os.rename(self.path, old)
        os.rename(self.tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            self.tmp.unlink()


class Writer:
    """Record batches into one Parquet or CSV file."""

    def __init__(self, path, fmt: str, schema: pa.Schema):
        self.fmt = fmt
        if fmt == "csv":
            self.w = pacsv.CSVWriter(str(path), for_csv(pa.RecordBatch.from_pylist([], schema=schema)).schema)
        else:
            self.w = pq.ParquetWriter(str(path), schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self.w.write_batch(for_csv(batch) if self.fmt == "csv" else batch)

    def close(self) -> None:
        self.w.close()
