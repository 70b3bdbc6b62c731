"""What to do about a row problem made without a suggestion.

Cells are read in values.py and evaluation.py, which say what is wrong but not what to
do (the same messages serve rule files, the command line and Excel). The Issues sheet
fills its "What to do" column from here: each entry is an English message template (as
in the catalogues, see i18n) and the advice for the messages it matches.
"""
from __future__ import annotations

import functools

from .i18n import Template

ADVICE = [
    ("'{text}' is not a number", "type a number (1200, 1,200.50 or ¥1200), or clear the cell if it is not known"),
    ("'{text}' is not a date; write it like 2026-11-23", "type a date such as 2026-11-23, 2026/11/23 or 2026年11月23日, or clear the cell"),
    ("'{text}' is not a date and time; write it like 2026-11-23 09:30", "type a date and time such as 2026-11-23 09:30, or clear the cell"),
    ("'{text}' is not a date", "type a date such as 2026-11-23, or clear the cell"),
    ("{text} is not a date", "type a date such as 2026-11-23, or clear the cell"),
    ("'{text}' is a time of day without a date", "type the date too, e.g. 2026-11-23 09:30"),
    ("'{text}' is not a duration; write it like 30s, 90m, 2h, 3d or 1w", "type a duration such as 2h or 3d, or clear the cell"),
    ("'{text}' is not a duration", "type a duration such as 2h or 3d, or clear the cell"),
    ("'{text}' is not true or false", "type TRUE or FALSE (是 or 否 work too), or clear the cell"),
    ("'{text}' is a date, not a number", "type the number; if the column holds dates, check that its header is the right one"),
    ("'{text}' is a duration, not a number", "type the number; if the column holds durations, check that its header is the right one"),
    ("the cell holds the Excel error {code}", "fix the formula, or the cells it reads, so that it gives a value; or clear the cell"),
    ("'{text}' is not one of the allowed values of {label} ({values})",
     "type one of the allowed values; if it is another spelling of one, list it under values: in the rule files"),
    ("no rule row of '{table}' matched this row",
     "check the row's values; to give rows like it a result, end the table with a row of '-' in the rule file"),
    ("rule rows {list_rows} of '{table}' all match this row (a unique table allows one)",
     "make the table's rows exclusive ('cxrules check' shows where they overlap), or change its hit policy"),
    ("rule rows {list_rows} of '{table}' all match this row (an 'any' table needs them to agree)",
     "make the matching rows give the same results, or change the table's hit policy"),
    ("{label_field} is blank, so {label_due} cannot be computed", "fill in the date it counts from, if it is known"),
    ("'{calendar}' gives '{name}', which is not a calendar", "make that output name one of the calendars in the rule files"),
    ("cannot compute {label}: {msg_error}", "check the start date and the duration on this row"),
    ("number stored as text ('{text}'); read as {value}",
     "nothing to do: it was read as the number; to quiet this, convert the cell to a number in Excel"),
    ("date stored as text ('{text}'); read as {value}",
     "nothing to do: it was read as the date; to quiet this, type the cell as a date in Excel"),
    ("column {col} ('{header}') is read both as '{name}' and as '{name2}'",
     "give each its own column, or map one of them to another header in the 'CX settings' sheet"),
]


@functools.lru_cache(maxsize=1)
def _compiled() -> list[tuple[Template, str]]:
    out = [(Template.of(t), a) for t, a in ADVICE]
    out.sort(key=lambda x: -x[0].weight)
    return out


def advice(message: str) -> str | None:
    """The advice for a message, or None when no entry fits."""
    for tpl, text in _compiled():
        if tpl.match(message) is not None:
            return text
    return None
