"""Days overdue and the CX summary's due counts, a column at a time (by code when a column is
Coded), against the per-row reckoning they replace: the same numbers of the same kinds."""
import datetime as dt
from collections import Counter
from itertools import compress, repeat
from types import SimpleNamespace as NS

import numpy as np
from hypothesis import given, settings, strategies as st

from cxrules import recalc
from cxrules.columnar import Coded

AS_OF = dt.datetime(2026, 11, 23, 10)
MOMENTS = st.one_of(
    st.none(),
    st.integers(-3, 5).map(lambda d: AS_OF.date() - dt.timedelta(days=d)),
    st.integers(-1800, 3600).map(lambda m: AS_OF - dt.timedelta(minutes=m)),
    st.integers(-3, 5).map(lambda d: dt.datetime.combine(AS_OF.date() - dt.timedelta(days=d), dt.time(0))),
)


def per_row_overdue(rs, dues, ev):
    out = [None] * ev.n
    for _, d in dues:
        values = ev.columns.get(d.name) or []
        lateness = {v: recalc._lateness(rs, d, v, AS_OF) for v in set(values) if v is not None}
        lates = list(map(lateness.get, values))
        for i in ev.settled.get(d.name, ()):
            if i < len(lates):
                lates[i] = None
        for i, late in enumerate(lates):
            if late is not None and late > 0:
                out[i] = max(out[i] or 0, late)
    return out


def as_column(values, coded: bool):
    if not coded:
        return list(values)
    table = list(dict.fromkeys(values)) or [None]
    return Coded(table, np.array([table.index(v) for v in values], dtype=np.int64))


@st.composite
def sheets(draw):
    n = draw(st.integers(0, 30))
    k = draw(st.integers(1, 3))
    rs = NS(fields={"from_day": NS(type="date"), "from_moment": NS(type="datetime")}, tables={})
    ev = NS(n=n, columns={}, settled={})
    runs = []
    for j in range(k):
        d = NS(name=f"due{j}", source=draw(st.sampled_from(["from_day", "from_moment"])))
        rs.tables[f"t{j}"] = NS(due=[d])
        runs.append(f"t{j}")
        ev.columns[d.name] = as_column(draw(st.lists(MOMENTS, min_size=n, max_size=n)), draw(st.booleans()))
        ev.settled[d.name] = set(draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=n))) if n else set()
    return rs, runs, ev


@settings(max_examples=300, deadline=None)
@given(sheets())
def test_days_overdue_by_column_is_the_per_row_reckoning(sheet):
    rs, runs, ev = sheet
    dues = [(rs.tables[r], d) for r in runs for d in rs.tables[r].due]
    got = recalc._days_overdue(rs, runs, ev, AS_OF)
    want = per_row_overdue(rs, dues, ev)
    assert got == want
    assert list(map(type, got)) == list(map(type, want))  # 2 days, not 2.0: the cell reads the same


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_due_pairs_by_code_are_counted_as_per_row(data):
    n = data.draw(st.integers(0, 30))
    groups = data.draw(st.lists(st.sampled_from(["Phone", "SMS", None, "Email"]), min_size=n, max_size=n))
    values = data.draw(st.lists(MOMENTS, min_size=n, max_size=n))
    settled = set(data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=n))) if n else set()
    with_groups = data.draw(st.booleans())
    got = recalc._coded_pairs(as_column(groups, True) if with_groups else None, as_column(values, True), settled)
    keep = [i not in settled for i in range(n)]
    want = Counter(compress(zip(groups if with_groups else repeat(None), values), keep))
    assert list(got.items()) == list(want.items())  # the same pairs, counted, in the order first seen
    assert recalc._coded_pairs(groups if with_groups else None, values, settled) is None  # plain lists: counted per row


def test_a_due_column_shorter_than_the_sheet_counts_the_rows_it_has():
    rs = NS(fields={}, tables={"t": NS(due=[NS(name="due", source="x")])})
    ev = NS(n=3, columns={"due": [AS_OF.date() - dt.timedelta(days=2), None]}, settled={})
    assert recalc._days_overdue(rs, ["t"], ev, AS_OF) == [2, None, None]
