"""Problems are data: what went wrong, where, and what to do about it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One problem, with as much of its location as is known.

    Rule-file problems carry file/line/table/row/column; workbook problems carry
    sheet/row/column (row numbers as Excel shows them, columns as letters or headers).
    """

    message: str
    severity: str = ERROR
    code: str = "invalid"
    file: str | None = None
    line: int | None = None
    table: str | None = None
    row: int | None = None
    column: str | None = None
    sheet: str | None = None
    suggestion: str | None = None
    cell: str | None = None  # with sheet: the cell, e.g. D7 (a rules workbook's problems)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.sheet and self.cell:
            parts.append(cell_ref(self.sheet, self.cell))
        elif self.sheet:
            parts.append(f"sheet '{self.sheet}'")
        if self.table:
            parts.append(f"table '{self.table}'")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column '{self.column}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        text = f"{self.where()}: {self.severity}: {self.message}" if self.where() else f"{self.severity}: {self.message}"
        if self.suggestion:
            text += f" ({self.suggestion})"
        return text

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def cell_ref(sheet: str, cell: str) -> str:
    """A cell as Excel names it: tier!D7, 'tier examples'!B3."""
    plain = sheet.replace("_", "").isalnum() and not sheet[:1].isdigit()
    return f"{sheet}!{cell}" if plain else "'" + sheet.replace("'", "''") + f"'!{cell}"


@dataclass
class Problems:
    """An ordered collection of problems; adding never raises."""

    items: list[Problem] = field(default_factory=list)

    def add(self, message: str, **where) -> Problem:
        p = Problem(message, **where)
        self.items.append(p)
        return p

    def append(self, p: Problem) -> None:
        self.items.append(p)

    def extend(self, ps: Iterable[Problem]) -> None:
        self.items.extend(ps)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if not p.is_error]

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


class CxError(Exception):
    """An error a user caused and can fix; its text is shown as is, never a traceback."""


class RuleSetError(CxError):
    """A rule set that cannot be used; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        errors = [p for p in self.problems if p.is_error]
        head = str(errors[0]) if errors else "the rule set has errors"
        more = f" (and {len(errors) - 1} more; run 'cxrules check')" if len(errors) > 1 else ""
        super().__init__(head + more)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A suggestion for a misspelt name, or None."""
    import difflib

    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return f"did you mean '{lowered[word.lower()]}'?"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
        close = [lowered[c] for c in close]
    return f"did you mean '{close[0]}'?" if close else None
