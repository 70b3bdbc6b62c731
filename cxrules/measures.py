"""Derived inputs over dated rows: a sheet of daily or weekly measures (NPS, churn rate,
negative feedback per department), where a row's value depends on the rows of other days.

Each function takes the columns already read and typed (value, date, group) and gives one
value per row plus the problems of single rows: (row index, message). Rows are compared
with rows of the same group only (`by GROUP`; without it the sheet is one group), by
calendar day (a date-time counts by its date), relative to each row's own date, so the
result for a row never depends on --as-of or on the order of the rows.

- week_over_week: the percent change from the row dated 7 days earlier: (v - p) / |p| * 100
  (an NPS of 71.25 after 75 is -5); blank without that row, or when either value is blank
  or the earlier one is 0.
- days_in_a_row: how many days in a row, ending on this row's day, the value passed the
  test (0 when it does not today; a day without a row breaks the run).
- count_last_days: rows dated in the N days ending on this row's day whose value is not blank.
- sum_last_days: the sum of the value over those rows.

week_over_week and days_in_a_row need one value per group and day: rows of the same day
with the same value are one (a row pasted twice); with different values they are a problem
of each of them (their results stay blank), never a guess.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from .model import Test, matches
from .values import display, encode

Problems = list[tuple[int, str]]


def _day(v) -> int | None:
    if v is None:
        return None
    return v.toordinal()  # datetime is a date: its own day


def _keyed(dates, groups):
    """(group, day) -> row indexes, rows without a date left out."""
    index: dict[tuple, list[int]] = defaultdict(list)
    days = [_day(d) for d in dates]
    groups = groups if groups is not None else [None] * len(days)
    for i, (g, d) in enumerate(zip(groups, days)):
        if d is not None:
            index[(g, d)].append(i)
    return index, days, groups


def _one(index, key, values) -> tuple[object, bool]:
    """(the value of that group and day, whether its rows agree on it)."""
    rows = index[key]
    first = values[rows[0]]
    return first, all(values[i] == first for i in rows[1:])


def _same_day(index, g, d, what: str, label: str, group_label: str | None) -> str:
    rows = index[(g, d)]
    whose = f" for {group_label} {display(g)}" if group_label and g is not None else ""
    return (f"{len(rows)} rows are dated {dt.date.fromordinal(d).isoformat()}{whose}, so {what} of {label} "
            f"cannot tell which to use; keep one row per day")


def week_over_week(values, dates, groups=None, label: str = "the value", group_label: str | None = None) -> tuple[list, Problems]:
    index, days, groups = _keyed(dates, groups)
    out: list = [None] * len(values)
    problems: Problems = []
    for i, (v, d, g) in enumerate(zip(values, days, groups)):
        if d is None or v is None:
            continue
        if not _one(index, (g, d), values)[1]:
            problems.append((i, _same_day(index, g, d, "the change week over week", label, group_label)))
            continue
        if (g, d - 7) not in index:
            continue
        p, ok = _one(index, (g, d - 7), values)
        if not ok:
            problems.append((i, _same_day(index, g, d - 7, "the change week over week", label, group_label)))
            continue
        if p is None or p == 0:
            continue
        # rounded so that a change of exactly 5 % reads as 5, not 5.000000000000004
        out[i] = round((v - p) / abs(p) * 100, 9)
    return out, problems


def days_in_a_row(values, dates, test: Test, type_: str, groups=None, label: str = "the value",
                  group_label: str | None = None) -> tuple[list, Problems]:
    index, days, groups = _keyed(dates, groups)
    passed: dict[tuple, bool] = {}
    problems: Problems = []
    dup: set = set()
    for key in index:
        v, ok = _one(index, key, values)
        if not ok:
            dup.add(key)
            continue
        passed[key] = matches(test, encode(v, type_) if v is not None else None)
    run: dict[tuple, int] = {}
    for g, d in sorted(passed, key=lambda k: k[1]):  # earlier days first: each run counted once
        run[(g, d)] = run.get((g, d - 1), 0) + 1 if passed[(g, d)] else 0
    out: list = [None] * len(values)
    for i, (d, g) in enumerate(zip(days, groups)):
        if d is None:
            continue
        if (g, d) in dup:
            problems.append((i, _same_day(index, g, d, "the days in a row", label, group_label)))
            continue
        out[i] = run[(g, d)]
    return out, problems


def last_days(values, dates, days: int, total: bool, groups=None) -> tuple[list, Problems]:
    """count_last_days (total False) or sum_last_days (total True)."""
    index, day_of, groups = _keyed(dates, groups)
    per_day: dict = defaultdict(lambda: [0, 0])  # (group, day) -> [count, sum]
    for (g, d), rows in index.items():
        c = per_day[(g, d)]
        for i in rows:
            v = values[i]
            if v is not None:
                c[0] += 1
                c[1] += v if total else 0
    by_group: dict = defaultdict(list)
    for g, d in per_day:
        by_group[g].append(d)
    window: dict[tuple, float] = {}
    for g, ds in by_group.items():
        ds.sort()
        lo, acc = 0, 0
        for hi, d in enumerate(ds):  # a sliding window over the group's days
            acc += per_day[(g, d)][1 if total else 0]
            while ds[lo] <= d - days:
                acc -= per_day[(g, ds[lo])][1 if total else 0]
                lo += 1
            window[(g, d)] = acc
    out: list = [None] * len(values)
    for i, (d, g) in enumerate(zip(day_of, groups)):
        if d is not None:
            w = window[(g, d)]
            out[i] = round(w, 9) if isinstance(w, float) else w
    return out, []
