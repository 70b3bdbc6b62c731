"""Workbooks: the only module family that touches xlsx bytes.

Reading is in xlsx_read (values from python-calamine, the rest from the XML), writing in
xlsx_write (streamed, in place, atomic). This module is the public face of both, plus
find_header.

Coordinates everywhere: rows are Excel row numbers (1-based), columns are 0-based
indexes (A = 0); rows[i][j] of a SheetData is row first_row + i, column first_col + j.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from itertools import compress, repeat
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
    "cell_ref", "col_index", "col_letter", "find_header", "find_regions", "open_workbook", "parse_range", "range_ref",
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
    # the region: rows[index + 1:end] are its data rows, row cells [lo, hi] its columns
    lo: int = 0
    hi: int | None = None
    end: int | None = None
    ref: str = ""  # how the range is named in messages (A1:F20)

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
    width = max(map(len, grid), default=0)
    return _header_at(grid, i, aliases, 0, width - 1, first_row, first_col, sheet, table, data.merged if data else ())


def _merged_header(h: Header, merged, grid, used, sheet) -> None:
    i, row_no, first_col = h.index, h.row, h.first_col
    for r1, c1, r2, c2 in merged:
        if r1 <= row_no <= r2 and c2 > c1:
            js = [j for j in used if c1 <= first_col + j <= c2]
            if js or any(_cell_text(grid[i][c - first_col]) for c in range(c1, c2 + 1) if 0 <= c - first_col < len(grid[i])):
                span = range_ref(r1, c1, r2, c2)
                h.problems.append(Problem(
                    f"header cells {span} are merged; only column {col_letter(c1)} has a header, "
                    f"columns {col_letter(c1 + 1)}{'-' + col_letter(c2) if c2 > c1 + 1 else ''} have none",
                    WARNING, "merged-header", sheet=sheet, row=row_no, column=col_letter(c1),
                    suggestion="unmerge the cells and give each column its own header"))


# ------------------------------------------------------------------ several tables on a sheet
MAX_SCAN = 30  # rows searched for the first header of a range


def _blank(row, lo: int, hi: int) -> bool:
    if lo == 0 and len(row) <= hi + 1:
        return row.count(None) == len(row)  # C speed: a million rows in milliseconds
    part = row[lo:hi + 1]
    return part.count(None) == len(part)


def _plain_bands(grid, masked) -> list[tuple[int, int]]:
    """Column ranges [lo, hi] of cells outside Excel tables, split at fully empty columns."""
    width = max(map(len, grid), default=0)
    used = []
    for j in range(width):
        used.append(any(j < len(r) and r[j] is not None and not masked(i, j) for i, r in enumerate(grid)))
    bands, start = [], None
    for j, u in enumerate(used + [False]):
        if u and start is None:
            start = j
        elif not u and start is not None:
            bands.append((start, j - 1))
            start = None
    return bands


def _header_at(grid, i, aliases, lo, hi, first_row, first_col, sheet, table=None, merged=()) -> Header:
    found = _match_row(grid[i], aliases, lo, hi + 1)
    h = Header(i, first_row + i, {}, first_col, table=table, lo=lo, hi=hi)
    used: dict[int, str] = {}
    for key in aliases:
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
                WARNING, "duplicate-header", sheet=sheet, row=h.row, column=col_letter(first_col + j),
                suggestion="rename or delete the other column"))
        if j in used:
            h.problems.append(Problem(
                f"column {col_letter(first_col + j)} ('{h.texts[key]}') is read both as '{used[j]}' and as '{key}'",
                WARNING, "header-twice", sheet=sheet, row=h.row, column=col_letter(first_col + j)))
        used.setdefault(j, key)
    _merged_header(h, merged, grid, used, sheet)
    return h


def find_regions(data: SheetData, wanted: Mapping[str, Sequence[str]], max_scan: int = MAX_SCAN,
                 header_row: int | None = None) -> tuple[list[Header], list[Problem]]:
    """Every table of data on a sheet: its header row, its columns and its rows.

    Excel tables are regions of their own. Other cells split into bands at fully empty
    columns (side-by-side ranges); in a band the first header is the row among the
    first `max_scan` naming most of `wanted` (or `header_row`, an Excel row number), and
    a later row after a blank row that names at least two of them, all in text, starts
    another range below (stacked ranges). Returns the regions in sheet order and the
    problems found (e.g. a header below the rows searched).
    """
    grid, first_row, first_col, sheet = data.rows, data.first_row, data.first_col, data.name
    aliases = {k: {norm_header(a) for a in v} - {""} for k, v in wanted.items()}
    regions: list[Header] = []
    problems: list[Problem] = []
    boxes = []  # (i1, j1, i2, j2) of Excel tables, grid indexes
    for t in data.tables:
        i1, j1, i2, j2 = t.ref[0] - first_row, t.ref[1] - first_col, t.ref[2] - first_row, t.ref[3] - first_col
        boxes.append((i1, j1, i2, j2))
        if not t.header_rows or not 0 <= i1 < len(grid):
            continue
        if _match_row(grid[i1], aliases, j1, j2 + 1):
            h = _header_at(grid, i1, aliases, j1, j2, first_row, first_col, sheet, t.name, data.merged)
            h.end = min(len(grid), i2 + 1 - t.totals_rows)
            regions.append(h)

    def masked(i, j):
        return any(a <= i <= c and b <= j <= d for a, b, c, d in boxes)

    grid_m = grid
    if boxes:  # plain ranges never see a table's cells
        grid_m = [[None if masked(i, j) else v for j, v in enumerate(r)] if any(a <= i <= c for a, _, c, _ in boxes) else r
                  for i, r in enumerate(grid)]
    top = grid_m[:max_scan] if header_row is None else grid_m[header_row - first_row:header_row - first_row + 1]
    bands: list[tuple[int, int]] = []
    for lo, hi in _plain_bands(grid_m, lambda i, j: False):
        # a band naming nothing (notes, a lookup list) belongs with the range on its left
        if bands and not any(_match_row(r, aliases, lo, hi + 1) for r in top):
            bands[-1] = (bands[-1][0], hi)
        else:
            bands.append((lo, hi))
    for lo, hi in bands:
        starts: list[int] = []
        if header_row is not None:
            i = header_row - first_row
            if 0 <= i < len(grid_m) and _match_row(grid_m[i], aliases, lo, hi + 1):
                starts.append(i)
            else:
                problems.append(Problem(
                    f"row {header_row} (--header-row) names none of the columns the rules read in columns "
                    f"{col_letter(first_col + lo)}-{col_letter(first_col + hi)}",
                    WARNING, "header-row-empty", sheet=sheet, row=header_row, column=col_letter(first_col + lo),
                    suggestion="check the row number of the headers"))
                continue
        else:
            best = None
            for i, row in enumerate(grid_m[:max_scan]):
                n = len(_match_row(row, aliases, lo, hi + 1))
                if n and (best is None or n > best[0]):
                    best = (n, i)
            if best is None:
                low = next((i for i in range(max_scan, len(grid_m)) if len(_match_row(grid_m[i], aliases, lo, hi + 1)) >= 2), None)
                if low is not None:
                    problems.append(Problem(
                        f"the headers in columns {col_letter(first_col + lo)}-{col_letter(first_col + hi)} seem to be on row "
                        f"{first_row + low}, below the first {max_scan} rows where cxrules looks for them; that range was not read",
                        WARNING, "header-too-low", sheet=sheet, row=first_row + low, column=col_letter(first_col + lo),
                        suggestion=f"run with --header-row {first_row + low}, or delete the rows above the headers"))
                continue
            starts.append(best[1])
        i0 = starts[0]
        if lo == 0 and max(map(len, grid_m), default=0) <= hi + 1:  # whole rows: counted at C speed
            blank = list(map(operator.eq, map(operator.countOf, grid_m, repeat(None)), map(len, grid_m)))
        else:
            blank = [_blank(r, lo, hi) for r in grid_m]
        # stacked ranges start after a blank row
        after_blank = [i for i in compress(range(1, len(blank)), map(operator.gt, blank, blank[1:])) if i >= i0 + 2]
        for i in after_blank:
            row = grid_m[i]
            if len(_match_row(row, aliases, lo, hi + 1)) >= 2 and all(
                    v is None or isinstance(v, str) for v in row[lo:hi + 1]):
                starts.append(i)
        for k, i in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(grid_m)
            while end > i + 1 and blank[end - 1]:
                end -= 1
            h = _header_at(grid_m, i, aliases, lo, hi, first_row, first_col, sheet, None, data.merged)
            h.end = end
            regions.append(h)
    regions.sort(key=lambda h: (h.row, h.first_col + h.lo))
    return regions, problems
