"""The Contact plan's and the journeys' column-at-a-time paths give what the per-row paths
give, on odd inputs: blanks, text in a date output, dates beside date-times (midnight and
not), aware moments, ties in the sort, contacts held back or settled, more due than MAX_CALLS."""
import collections
import datetime as dt
import math
from unittest import mock
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrules import contact_plan, rulesets
from cxrules.columnar import Coded
from cxrules.journey_replay import _encode_moment, _seconds

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.datetime(2026, 11, 23, 10, 0)
TODAY = AS_OF.date()


@pytest.fixture(scope="module")
def rs():
    return rulesets.load_or_raise(ROOT / "rules")


def _day(k):
    return TODAY + dt.timedelta(days=k)


# due values: around as_of (overdue, today, the 4 weeks, past them), as dates, midnights,
# moments before and after as_of, text and numbers in a date output, blanks
dues = st.one_of(
    st.none(),
    st.integers(-40, 40).map(_day),
    st.integers(-40, 40).map(lambda k: dt.datetime.combine(_day(k), dt.time(0))),
    st.tuples(st.integers(-3, 3), st.integers(0, 23), st.sampled_from([0, 1, 47, 59])).map(
        lambda t: dt.datetime.combine(_day(t[0]), dt.time(t[1], t[2]))),
    st.sampled_from(["soon", "2026-11-20", 7]),
)
texts = st.one_of(st.none(), st.sampled_from(["Phone", "SMS", "Visit", "VIP", "High value", "Regular", "odd", "贵宾客户"]), st.integers(0, 2),
                  st.sampled_from([True, 1.0]))  # equal to 1, but shown otherwise


@st.composite
def sheets(draw, names):
    n = draw(st.integers(0, 40))
    col = lambda s: draw(st.lists(s, min_size=n, max_size=n))  # noqa: E731
    columns = {name: col(dues if kind == "due" else texts) for name, kind in names}
    held = {name: col(st.one_of(st.none(), st.just("capped"))) for name, kind in names if kind == "held"}
    columns.update(held)
    settled = {name: set(draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=5))) for name, kind in names if kind == "due"}
    ids = {k: col(st.one_of(st.none(), st.integers(0, 3), st.text(max_size=3))) for k, _, _ in contact_plan.IDENTITY}
    first = draw(st.integers(2, 5))
    return SimpleNamespace(n=n, columns=columns, settled=settled), ids, list(range(first, first + n))


@st.composite
def coded_columns(draw, ev):
    """ev with some columns Coded as rule outputs are: a table in another order than the rows,
    equal values in several entries, entries no row holds."""
    for name, col in list(ev.columns.items()):
        if not draw(st.booleans()):
            continue
        n = len(col)
        if not any(v is not None for v in col) and draw(st.booleans()):
            ev.columns[name] = Coded([], np.zeros(n, dtype=np.int64))  # blanks, no table entry
            continue
        spare = draw(st.lists(st.one_of(dues, texts), max_size=3))
        perm = draw(st.permutations(range(n + len(spare))))
        table = [None] * (n + len(spare))
        for i, v in enumerate(col + spare):
            table[perm[i]] = v
        ev.columns[name] = Coded(table, np.array(perm[:n], dtype=np.int64))
        assert ev.columns[name] == col
    return ev


def _names(srcs):
    out = []
    for s in srcs:
        out.append((s.due, "due"))
        out += [(x, "text") for x in (s.channel, s.owner, s.priority, s.purpose) if x]
        if s.held:
            out.append((s.held, "held"))
    return list(dict.fromkeys(out))


def _same(a, b):
    """Equal contacts with values of the same types (a date is not a midnight)."""
    assert a == b
    assert [tuple(map(type, c)) for c in a] == [tuple(map(type, c)) for c in b]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_collect_matches_the_per_row_reading(rs, data):
    srcs = contact_plan.sources(rs)[:3]  # the cadence (a `due:` date) and journeys (held back by caps)
    ev, ids, rows = data.draw(sheets(_names(srcs)))
    want = collect_per_row(rs, srcs, ev, ids, "Customers", rows, AS_OF)
    _same(contact_plan.collect(rs, srcs, data.draw(coded_columns(ev)), ids, "Customers", rows, AS_OF), want)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_call_order_and_counts_match_the_per_row_sort(rs, data):
    srcs = contact_plan.sources(rs)[:3]
    contacts = []
    for sheet in ("Customers", "Cases", "客户"):  # rows repeat across sheets and sources: ties on every key but place
        ev, ids, rows = data.draw(sheets(_names(srcs)))
        contacts += contact_plan.collect(rs, srcs, ev, ids, sheet, rows, AS_OF)
    contacts += data.draw(st.permutations(contacts))[: len(contacts) // 3]  # the very same contact twice
    _same(contact_plan.call_order(contacts, TODAY), contact_plan.call_order_per_row(contacts, TODAY))
    channels, _days, counts = contact_plan.per_day(contacts, AS_OF)
    by_hand = collections.Counter(("overdue" if c.late else contact_plan._day(c.due), c.channel) for c in contacts)
    assert counts == by_hand and list(counts) == list(by_hand)  # the same order: ties among channels stay put
    assert set(channels) == {ch for _, ch in by_hand}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_counted_and_first_calls_kept_match_sorting_every_contact(rs, data):
    """Ranges of several sheets collected with a tally, then merged as recalc does: the call
    list is the first MAX_CALLS of every contact sorted per row, and the tally counts every
    contact as a Counter over them would (same keys, same order, same channel values)."""
    srcs = contact_plan.sources(rs)[:3]
    max_calls = data.draw(st.integers(1, 12))
    tally = contact_plan.Tally()
    kept, every = [], []
    for sheet in data.draw(st.lists(st.sampled_from(["Customers", "Cases", "客户"]), min_size=1, max_size=3)):
        ev, ids, rows = data.draw(sheets(_names(srcs)))
        every += collect_per_row(rs, srcs, ev, ids, sheet, rows, AS_OF)
        ev = data.draw(coded_columns(ev))
        ids = {k: contact_plan.packed(v) for k, v in ids.items()}  # as recalc holds them
        with mock.patch.object(contact_plan, "MAX_CALLS", max_calls):
            got = contact_plan.collect(rs, srcs, ev, ids, sheet, rows, AS_OF, tally)
        assert len(got) <= max_calls
        kept += got
    _same(contact_plan.call_order(kept, TODAY)[:max_calls], contact_plan.call_order_per_row(every, TODAY)[:max_calls])
    by_hand = collections.Counter(("overdue" if c.late else contact_plan._day(c.due), c.channel) for c in every)
    assert tally.counts == by_hand and list(tally.counts) == list(by_hand)
    assert [type(ch) for _, ch in tally.counts] == [type(ch) for _, ch in by_hand]  # a channel 1 is not shown as True
    assert tally.total == len(every)
    assert tally.channel_source == {c.channel: c.source.channel for c in every}


identities = st.one_of(
    st.lists(st.one_of(st.none(), st.text(max_size=6))),
    st.lists(st.one_of(st.none(), st.integers(-2 ** 70, 2 ** 70))),
    st.lists(st.one_of(st.none(), st.integers(-2 ** 63, 2 ** 63 - 1))),
    st.lists(st.one_of(st.none(), st.floats(allow_nan=False))),
    st.lists(st.one_of(st.none(), st.text(max_size=3), st.integers(0, 9), st.booleans(), st.dates())),
)


@settings(max_examples=150, deadline=None)
@given(identities)
def test_identity_columns_held_packed_give_back_each_value(col):
    """Customer IDs and names are held packed while the rules run: each row reads back the
    very value, of the very type (a text '7' is not the number 7, -0.0 stays -0.0)."""
    got = contact_plan.packed(list(col))
    back = [got[i] for i in range(len(got))]
    assert len(got) == len(col) and back == col
    assert [type(v) for v in back] == [type(v) for v in col]
    assert [math.copysign(1, v) for v in back if type(v) is float] == [math.copysign(1, v) for v in col if type(v) is float]


def test_more_due_than_the_call_list_shows_sort_alike(rs):
    """Thousands due, a few hundred distinct keys: the numpy sort is stable as Python's."""
    srcs = contact_plan.sources(rs)[:1]
    n = contact_plan.MAX_CALLS + 700
    tiers = ["VIP", "Regular", None, "odd", "High value"]
    due = [None if k % 11 == 0 else _day(-(k % 9)) if k % 3 else dt.datetime.combine(_day(0), dt.time(k % 24)) for k in range(n)]
    ev = SimpleNamespace(n=n, columns={"next_contact": due, "channel": [["Phone", "SMS", None][k % 3] for k in range(n)],
                                       "tier": [tiers[k % 5] for k in range(n)]}, settled={"next_contact": {5, 7}})
    contacts = contact_plan.collect(rs, srcs, ev, {}, "Customers", list(range(4, 4 + n)), AS_OF)
    ev.columns["channel"] = ev.columns["channel"][1:] + ["Visit"]  # the same rows again, by another channel: ties
    contacts += contact_plan.collect(rs, srcs, ev, {}, "Customers", list(range(4, 4 + n)), AS_OF)
    calls = contact_plan.call_order(contacts, TODAY)
    assert len(calls) > contact_plan.MAX_CALLS
    _same(calls, contact_plan.call_order_per_row(contacts, TODAY))


def _seconds_per_value(values):
    return np.array([np.nan if v is None else _encode_moment(v) for v in values], dtype=np.float64)


moments = st.one_of(
    st.none(),
    st.dates(dt.date(1950, 1, 1), dt.date(2090, 1, 1)),
    st.datetimes(dt.datetime(1950, 1, 1), dt.datetime(2090, 1, 1)),
    st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2030, 1, 1), timezones=st.sampled_from(
        [dt.timezone.utc, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=-5))])),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(moments, max_size=30), st.sampled_from(["date", "datetime"]))
def test_journey_dates_encoded_once_each_match_the_per_value_reading(values, type_):
    values = values + values[: len(values) // 2]  # repeated dates, as on a real sheet
    assert np.array_equal(_seconds(values, type_), _seconds_per_value(values), equal_nan=True)


def collect_per_row(rs, sources, ev, ids: dict[str, list], sheet: str, excel_rows: list[int],
                    as_of: dt.datetime) -> list:
    """contact_plan.collect, a contact at a time: what its columnar path must give."""
    from cxrules.contact_plan import DAYS, IDENTITY, Contact, _rank
    from cxrules.recalc import _due_value, _lateness

    today = as_of.date()
    horizon = today + dt.timedelta(days=DAYS - 1)
    out: list[Contact] = []
    blank = [None] * ev.n
    for s in sources:
        d = next((x for t in rs.tables.values() for x in t.due if x.name == s.due), None)
        dues = ev.columns.get(s.due) or blank
        settled = ev.settled.get(s.due, ())
        cols = [ev.columns.get(n) or blank if n else blank for n in (s.channel, s.owner, s.priority, s.purpose)]
        held = ev.columns.get(s.held) or blank if s.held else blank
        rank = _rank(rs, s.priority)
        for i, v in enumerate(dues):
            if v is None or i in settled or held[i] is not None or not isinstance(v, dt.date):
                continue
            w = _due_value(rs, d, v) if d is not None else v
            day = w.date() if isinstance(w, dt.datetime) else w
            late = w < as_of if isinstance(w, dt.datetime) else day < today
            if not late and day > horizon:
                continue
            late_by = 0
            if late:
                late_by = _lateness(rs, d, w, as_of) if d is not None else (
                    round(math.ceil((as_of - w).total_seconds() / 60) / 1440, 6) if isinstance(w, dt.datetime) else (today - w).days)
            out.append(Contact(sheet, excel_rows[i], w, late, late_by, *(c[i] for c in cols),
                               tuple(ids.get(k, blank)[i] for k, _, _ in IDENTITY), s, rank(cols[2][i])))
    return out
