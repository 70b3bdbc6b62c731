"""Workbooks: the only module family that touches xlsx bytes.

Reading is in xlsx_read (values from python-calamine, the rest from the XML), writing in
xlsx_write (streamed, in place, atomic). This module is the public face of both, plus
find_header.

Coordinates everywhere: rows are Excel row numbers (1-based), columns are 0-based
indexes (A = 0); rows[i][j] of a SheetData is row first_row + i, column first_col + j.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .problems import WARNING, Problem
from .values import norm_header
from .xlsx_read import (
    CellError,
    Sheet,
    SheetData,
    Table,
    Workbook,
    WorkbookError,
    cell_ref,
    col_index,
    col_letter,
    open_workbook,
    parse_range,
    range_ref,
)
from .xlsx_write import (
    KINDS,
    BarChart,
    CellFormat,
    ChartSeries,
    ColumnWrite,
    Highlight,
    NewSheet,
    SheetEdit,
    WriteReport,
    write_workbook,
)

__all__ = [
    "BarChart", "CellError", "CellFormat", "ChartSeries", "ColumnWrite", "Header", "Highlight", "KINDS",
    "NewSheet", "Sheet", "SheetData", "SheetEdit", "Table", "Workbook", "WorkbookError", "WriteReport",
    "cell_ref", "col_index", "col_letter", "find_header", "open_workbook", "parse_range", "range_ref",
    "write_workbook",
]


@dataclass
class Header:
    """The header row found: index into rows, and for each key found its index in the row."""

    index: int  # rows[index] is the header row
    row: int  # its Excel row number
    columns: dict[str, int]  # key -> j (rows[i][j])
    first_col: int = 0  # sheet column of j == 0
    texts: dict[str, str] = field(default_factory=dict)  # key -> the header as written
    missing: list[str] = field(default_factory=list)  # keys not found
    problems: list[Problem] = field(default_factory=list)
    table: str | None = None  # the Excel table whose header this is

    def col(self, key: str) -> int:
        """The sheet column index (A = 0) of a key, for ColumnWrite.col."""
        return self.first_col + self.columns[key]

    def letter(self, key: str) -> str:
        return col_letter(self.col(key))

    @property
    def width(self) -> int:
        return max(self.columns.values(), default=-1) + 1


def _cell_text(v) -> str | None:
    if v is None or isinstance(v, CellError):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    return s or None


def _match_row(row: Sequence, aliases: Mapping[str, set[str]], lo: int = 0, hi: int | None = None):
    """key -> [j, ...] of the cells in row[lo:hi] that name it."""
    found: dict[str, list[int]] = {}
    hi = len(row) if hi is None else min(hi, len(row))
    for j in range(max(lo, 0), hi):
        t = _cell_text(row[j])
        if t is None:
            continue
        n = norm_header(t)
        for key, names in aliases.items():
            if n in names:
                found.setdefault(key, []).append(j)
    return found


def find_header(rows, wanted: Mapping[str, Sequence[str]], max_scan: int = 30) -> Header | None:
    """Find the header row: the one (among the first max_scan) naming most of `wanted`.

    `wanted` maps a key to the headers that may name it (Chinese or English; case,
    spaces and underscores are ignored). `rows` is a SheetData (then Excel tables and
    merged cells are used, and rows/columns are known) or a plain list of rows.
    Returns None when no row names any key.
    """
    data = rows if isinstance(rows, SheetData) else None
    grid = data.rows if data else rows
    first_row, first_col = (data.first_row, data.first_col) if data else (1, 0)
    sheet = data.name if data else None
    aliases = {k: {norm_header(a) for a in v} - {""} for k, v in wanted.items()}

    best = None  # (score, -i, i, found, table)
    # an Excel table's header row wins over any other row
    for t in data.tables if data else []:
        if not t.header_rows:
            continue
        i = t.ref[0] - first_row
        if 0 <= i < len(grid):
            found = _match_row(grid[i], aliases, t.ref[1] - first_col, t.ref[3] - first_col + 1)
            if found and (best is None or len(found) > best[0]):
                best = (len(found), -i, i, found, t.name)
    if best is None:
        for i, row in enumerate(grid[:max_scan]):
            found = _match_row(row, aliases)
            if found and (best is None or (len(found), -i) > best[:2]):
                best = (len(found), -i, i, found, None)
    if best is None:
        return None
    _, _, i, found, table = best
    row_no = first_row + i
    h = Header(i, row_no, {}, first_col, table=table)
    used: dict[int, str] = {}
    for key in wanted:
        js = found.get(key)
        if not js:
            h.missing.append(key)
            continue
        j = js[0]
        h.columns[key] = j
        h.texts[key] = _cell_text(grid[i][j]) or ""
        if len(js) > 1:
            others = ", ".join(col_letter(first_col + x) for x in js[1:])
            h.problems.append(Problem(
                f"'{h.texts[key]}' is a header of more than one column ({col_letter(first_col + j)} and {others}); "
                f"column {col_letter(first_col + j)} is used",
                WARNING, "duplicate-header", sheet=sheet, row=row_no, column=col_letter(first_col + j),
                suggestion="rename or delete the other column"))
        if j in used:
            h.problems.append(Problem(
                f"column {col_letter(first_col + j)} ('{h.texts[key]}') is read both as '{used[j]}' and as '{key}'",
                WARNING, "header-twice", sheet=sheet, row=row_no, column=col_letter(first_col + j)))
        used.setdefault(j, key)
    for r1, c1, r2, c2 in data.merged if data else []:
        if r1 <= row_no <= r2 and c2 > c1:
            js = [j for j in used if c1 <= first_col + j <= c2]
            if js or any(_cell_text(grid[i][c - first_col]) for c in range(c1, c2 + 1) if 0 <= c - first_col < len(grid[i])):
                span = range_ref(r1, c1, r2, c2)
                h.problems.append(Problem(
                    f"header cells {span} are merged; only column {col_letter(c1)} has a header, "
                    f"columns {col_letter(c1 + 1)}{'-' + col_letter(c2) if c2 > c1 + 1 else ''} have none",
                    WARNING, "merged-header", sheet=sheet, row=row_no, column=col_letter(c1),
                    suggestion="unmerge the cells and give each column its own header"))
    return h
