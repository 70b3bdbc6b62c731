"""Small workbooks for tests, written by openpyxl, and their cells read back."""
from __future__ import annotations

from pathlib import Path

import openpyxl


def make_book(path: Path, header, rows, title: str) -> Path:
    """One sheet: a header row, then the rows."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    wb.save(path)
    return path


def sheet_values(path: Path, title: str) -> list[list]:
    return [list(r) for r in openpyxl.load_workbook(path)[title].iter_rows(values_only=True)]
