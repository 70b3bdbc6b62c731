"""Checking a recalculated workbook: are its results still what the rules give?

`verify` reads the stamp recalc left in the workbook's custom document properties,
recomputes with the stamped as-of and options exactly as recalc would (recalc.plan, nothing
written), and compares each value recalc would write with the value in that cell. Only the
columns the workbook records as cxrules' own are compared: a column of the person's is
theirs whatever it holds. It also says whether the rules' content hash is the stamped one.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from . import __version__
from .evaluation import Evaluator
from .recalc import Progress, RecalcReport, _noop, _paused_gc, data_sheets, plan, workbook_mapping
from .stamp import Stamp, StampError, git_revision, rules_hash
from .values import Duration, display
from .workbook import CellError, col_index, col_letter, open_workbook
from .xlsx_write import MAX_TEXT

_PLAIN = (str, bool, int, float, dt.date, dt.datetime, type(None))  # types whose equality is the cell's
MAX_LISTED = 10_000  # differences kept in the report; the counts are always complete
_EPOCH = dt.datetime(1899, 12, 30)


@dataclass
class Difference:
    """A result cell whose value is not what the rules give now."""

    sheet: str
    row: int
    column: str  # its letter
    header: str  # the column's header
    stamped: Any  # the value in the cell
    recomputed: Any  # the value recalc would write

    def to_dict(self) -> dict:
        return {"sheet": self.sheet, "row": self.row, "column": self.column, "header": self.header,
                "stamped": _plain(self.stamped), "recomputed": _plain(self.recomputed)}


@dataclass
class VerifyReport:
    path: str
    rules_hash: str  # of the rules verified against
    rules_revision: str | None
    stamp: Stamp | None = None  # None: the workbook has none
    recalculated: bool = False  # it has sheets an earlier cxrules made (stamped or not)
    rows: int = 0  # data rows recomputed
    cells: int = 0  # result cells compared
    differing: int = 0  # result cells that differ
    differing_rows: int = 0
    differences: list[Difference] = field(default_factory=list)  # the first MAX_LISTED
    not_checked: list[str] = field(default_factory=list)  # results that could not be compared, and why

    @property
    def hash_matches(self) -> bool:
        return self.stamp is not None and self.stamp.rules_hash == self.rules_hash

    @property
    def results_match(self) -> bool:
        return self.stamp is not None and not self.differing and not self.not_checked

    @property
    def ok(self) -> bool:
        """Every result and the rules' hash as stamped."""
        return self.results_match and self.hash_matches

    @property
    def no_stamp_message(self) -> str:
        why = (" (it was recalculated by a cxrules that did not stamp its results, or in Excel)" if self.recalculated
               else " (cxrules never recalculated it)")
        return f"{self.path}: has no cxrules stamp{why}, so there is nothing to verify; run cxrules recalc on it first"

    def to_dict(self) -> dict:
        return {
            "workbook": self.path,
            "stamped": self.stamp is not None,
            "match": self.ok,
            "results_match": self.results_match,
            "hash_matches": self.hash_matches,
            "message": None if self.stamp else self.no_stamp_message,
            "stamp": self.stamp.to_dict() if self.stamp else None,
            "rules": {"hash": self.rules_hash, "revision": self.rules_revision, "cxrules": __version__},
            "rows": self.rows,
            "cells": self.cells,
            "differing_cells": self.differing,
            "differing_rows": self.differing_rows,
            "differences": [d.to_dict() for d in self.differences],
            "not_checked": self.not_checked,
        }


def verify(path, evaluator: Evaluator, limits=None, progress: Progress = _noop) -> VerifyReport:
    """Recompute a stamped workbook with its stamped as-of and options and compare. Raises
    WorkbookError when it cannot be read, StampError when its stamp cannot be read back."""
    rs = evaluator.rs
    rep = VerifyReport(str(path), rules_hash(rs.sources), git_revision([s.path for s in rs.sources]))
    with _paused_gc(), open_workbook(path, limits) as wb:
        rep.recalculated = bool(wb.cxrules_sheets)
        try:
            stamp = Stamp.from_properties(wb.custom_properties())
        except StampError as e:
            raise StampError(f"{path}: {e}") from None
        if stamp is None:
            return rep
        rep.stamp = stamp
        args = stamp.replay()
        planned = RecalcReport(str(path), str(path), stamp.as_of, stamp=stamp)
        mapping = workbook_mapping(wb, planned).merged(args["mapping"])
        sheets = data_sheets(wb)
        rows_seen: set[tuple[str, int]] = set()

        def read():
            for k, sheet in enumerate(sheets):
                progress(f"checking {sheet.name}", k, len(sheets))
                yield wb.read_sheet(sheet.name)

        def compare(data, edits) -> None:
            start = len(rep.differences)
            for edit in edits:
                for cw in edit.columns:
                    _compare_column(rep, data, cw, rows_seen)
            rep.differences[start:] = sorted(rep.differences[start:], key=lambda d: (d.row, col_index(d.column)))

        plan(read(), evaluator, stamp.as_of, planned, args["dayfirst"], args["header_row"], mapping, sheet_done=compare)
    rep.rows = planned.rows
    rep.differing_rows = len(rows_seen)
    for p in planned.not_run + planned.refused:  # results of these were not recomputed, so not checked
        rep.not_checked.append(f"sheet '{p.sheet}': {p.message}")
    rep.not_checked = list(dict.fromkeys(rep.not_checked))  # a column missing from stacked ranges, said once
    return rep


def _compare_column(rep: VerifyReport, data, cw, rows_seen: set) -> None:
    owned = data.owned
    header = data.value(cw.header_row, cw.col)
    if cw.header is not None:  # recalc would add this column: the workbook has no results for it
        rep.not_checked.append(f"sheet '{data.name}' has no column '{cw.header}', which the rules write")
        return
    if owned is not None and (cw.header_row, cw.col) not in owned:
        # an empty column under a result's header: recalc would fill it and make it its own
        rep.not_checked.append(f"sheet '{data.name}': column {col_letter(cw.col)} ('{header}') holds no results; "
                               "the rules write it")
        return
    rows, j = data.rows, cw.col - data.first_col
    quick = _PLAIN if cw.kind != "text" else (str, type(None))  # a text column's 5 is written '5'
    rep.cells += len(cw.values)
    for k, want in enumerate(cw.values):
        i = cw.first_row + k - data.first_row
        got = rows[i][j] if 0 <= i < len(rows) and 0 <= j < len(rows[i]) else None
        if got.__class__ is want.__class__ and got.__class__ in quick and got == want:
            continue  # most cells: the very value written, read back
        want = _as_written(want, cw.kind)
        if _same(got, want):
            continue
        row = cw.first_row + k
        rep.differing += 1
        rows_seen.add((data.name, row))
        if len(rep.differences) < MAX_LISTED:
            rep.differences.append(Difference(data.name, row, col_letter(cw.col), str(header or ""),
                                              _as_shown(got, cw.kind), want))


def _as_written(v, kind: str):
    """A value recalc would write, as the writer puts it into the cell (xlsx_write.encode)."""
    if v is None or (v.__class__ is str and not v) or (isinstance(v, float) and math.isnan(v)):
        return None
    if kind == "text" and not isinstance(v, (str, CellError)):
        v = display(v)
    if kind == "date" and isinstance(v, dt.datetime):
        v = v.date()
    if isinstance(v, str) and len(v) > MAX_TEXT:
        v = v[:MAX_TEXT]
    return v


def _as_shown(v, kind: str):
    """A cell's value as it shows: a date column's midnight is a day."""
    if kind == "date" and isinstance(v, dt.datetime) and v.time() == dt.time(0):
        return v.date()
    return v


def _key(v):
    """What a cell holds, comparable whatever form it was read in: numbers, dates, times and
    durations as numbers (Excel stores them so; a person's number format does not matter)."""
    if v is None or (v.__class__ is str and not v):
        return None
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, CellError):
        return ("e", v.code)
    if isinstance(v, str):
        return ("s", v)
    if isinstance(v, dt.datetime):
        return ("n", (v.replace(tzinfo=None) - _EPOCH).total_seconds() / 86400)
    if isinstance(v, dt.date):
        return ("n", float((v - _EPOCH.date()).days))
    if isinstance(v, dt.time):
        return ("n", (v.hour * 3600 + v.minute * 60 + v.second + v.microsecond / 1e6) / 86400)
    if isinstance(v, (Duration, dt.timedelta)):
        return ("n", v.total_seconds() / 86400)
    if isinstance(v, (int, float)):
        return ("n", float(v))
    return ("s", display(v))


def _same(got, want) -> bool:
    a, b = _key(got), _key(want)
    if a is None or b is None:
        return a is b
    if a[0] != b[0]:
        return False
    if a[0] == "n":  # stored to Excel's precision: a millisecond is 1.2e-8 of a day
        return math.isclose(a[1], b[1], rel_tol=1e-12, abs_tol=1e-8)
    return a[1] == b[1]


def _plain(v):
    """A value for JSON: text, numbers and booleans as they are, dates in ISO form."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v.isoformat()
    return display(v)


def shown(v) -> str:
    """A value in a message: text quoted (so '12' and 12 differ), a blank said."""
    if v is None or (v.__class__ is str and not v):
        return "(blank)"
    if isinstance(v, str):
        return repr(v) if "'" in v else f"'{v}'"
    return display(v)
