"""Coded columns: a list that also knows which table entry each row holds, trusted only
while nobody has changed it."""
import datetime as dt
import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cxrules.columnar import Coded, coded, mapped, numbered, scatter

values = st.one_of(st.none(), st.text(max_size=3), st.integers(-3, 3), st.floats(allow_nan=False))


@given(st.lists(values, max_size=6), st.lists(st.integers(-1, 5), max_size=40))
def test_scatter_holds_the_entries_by_code_and_blank_for_minus_one(per, pos):
    pos = [p if p < len(per) else -1 for p in pos]
    col = scatter(per, np.array(pos, dtype=np.int64))
    assert col == [per[p] if p >= 0 else None for p in pos]
    table, codes = coded(col)
    assert [table[c] for c in codes.tolist()] == list(col)


@given(st.lists(st.one_of(st.none(), st.text(max_size=2), st.dates(dt.date(2026, 1, 1), dt.date(2026, 1, 9))), max_size=40))
def test_numbered_gives_each_distinct_value_once_in_the_order_first_seen(values):
    table, codes = numbered(values)
    assert [table[c] for c in codes.tolist()] == values
    assert table == list(dict.fromkeys(values))


def test_numbered_refuses_a_value_that_cannot_be_a_key():
    with pytest.raises(TypeError):
        numbered([1, [2]])


MUTATIONS = [
    lambda c: c.__setitem__(0, "x"), lambda c: c.__setitem__(slice(0, 1), ["x"]), lambda c: c.__delitem__(0),
    lambda c: c.append("x"), lambda c: c.extend(["x"]), lambda c: c.insert(0, "x"), lambda c: c.pop(),
    lambda c: c.remove("a"), lambda c: c.reverse(), lambda c: c.sort(key=str), lambda c: c.clear(),
    lambda c: c.__iadd__(["x"]), lambda c: c.__imul__(2),
]


@pytest.mark.parametrize("change", MUTATIONS)
def test_any_change_to_the_list_drops_its_codes(change):
    col = Coded(["a", "b", None], np.array([0, 1, 2, 0]))
    assert coded(col) is not None
    change(col)
    assert coded(col) is None  # readers then take the values as they are


def test_mapped_converts_each_entry_once_and_stays_coded():
    col = Coded(["a", "b"], np.array([0, 1] * 500))
    calls = []
    out = mapped(col, lambda v: calls.append(v) or v.upper())
    assert out == ["A", "B"] * 500 and sorted(calls) == ["a", "b"]
    assert coded(out)[0] == ["A", "B"]
    plain = mapped(["a", "a"], str.upper)
    assert plain == ["A", "A"] and coded(plain) is None
    assert mapped(col, lambda v: v) is col  # nothing changed: the column itself, not a copy


def test_a_coded_column_goes_to_another_process_as_a_plain_list():
    col = Coded(["a", None], np.array([0, 1, 0]))
    back = pickle.loads(pickle.dumps(col))
    assert back == ["a", None, "a"] and type(back) is list


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_sample_recalculated_by_code_is_byte_identical_to_one_recalculated_value_by_value(tmp_path, monkeypatch, lang):
    """Every reader of a Coded column (writer, conversions, widths, overdue days, due counts)
    gives what its per-value path gives: the whole workbook, byte for byte."""
    import zipfile
    from pathlib import Path

    from cxrules import columnar, rulesets
    from cxrules.evaluation import Evaluator
    from cxrules.recalc import recalc
    from cxrules.samples import AS_OF, write_sample

    ev = Evaluator(rulesets.load_or_raise(Path(__file__).resolve().parents[1] / "rules"))
    books = {}
    for how in ("coded", "plain"):
        (tmp_path / how).mkdir()
        path = write_sample(tmp_path / how / "book.xlsx", lang=lang, n_customers=400, n_cases=120)
        if how == "plain":
            monkeypatch.setattr(columnar, "coded", lambda values: None)
        recalc(path, ev, as_of=AS_OF)
        with zipfile.ZipFile(path) as z:
            books[how] = {n: z.read(n) for n in z.namelist()}
    assert books["coded"].keys() == books["plain"].keys()
    for name in books["coded"]:
        assert books["coded"][name] == books["plain"][name], name


# ------------------------------------------------------------------ due dates by (start, amount)
def _calendars():
    from cxrules.calendars import Calendar, parse_calendar

    business, problems = parse_calendar("business", {"hours": "09:00-18:00", "workdays": ["mon", "tue", "wed", "thu", "fri"],
                                                     "holidays": "CN"})
    assert not problems
    return {"everyday": Calendar.everyday("Asia/Shanghai"), "business": business}


CALENDARS = _calendars()
STARTS = st.one_of(st.dates(dt.date(2026, 9, 25), dt.date(2026, 10, 12)),
                   st.datetimes(dt.datetime(2026, 9, 25), dt.datetime(2026, 10, 12)),
                   st.sampled_from([dt.date(9999, 12, 30), dt.datetime(9999, 12, 31, 17)]))  # past year 9999: that row's error


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(CALENDARS)), st.lists(STARTS, min_size=1, max_size=6), st.data())
def test_due_dates_worked_out_once_a_pair_are_those_of_each_row(cal_name, starts, data):
    from cxrules.evaluation import _add_by_pair
    from cxrules.values import Duration

    cal = CALENDARS[cal_name]
    amounts = [Duration.of(days=1), Duration.of(hours=4), Duration.of(days=7), Duration.of(minutes=-90)]
    n = data.draw(st.integers(64, 200))
    pick = data.draw(st.lists(st.integers(0, len(starts) - 1), min_size=n, max_size=n))
    acodes = np.array(data.draw(st.lists(st.integers(0, len(amounts) - 1), min_size=n, max_size=n)), np.int64)
    base, amount = [starts[i] for i in pick], Coded(amounts, acodes)
    got, want = _add_by_pair(cal, base, amount), cal.add_many(base, list(amount))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, Exception):
            assert type(g) is type(w) and str(g) == str(w)
        else:
            assert g == w and type(g) is type(w)
    if len(set(base)) * len(amounts) <= n // 2:
        assert coded(got) is not None  # few pairs: each worked out once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["Gold", "VIP", None, 1, 1.0, True, 2.5]), min_size=1, max_size=6), st.data())
def test_a_coded_column_is_counted_as_its_values_are(table, data):
    """The summary's counts of a Coded column: the Counter of its values, in the same order
    (equal entries merged where the first of them appears)."""
    from collections import Counter

    from cxrules.recalc import _counted

    codes = data.draw(st.lists(st.integers(0, len(table) - 1), min_size=1, max_size=40))
    col = Coded(table, np.array(codes))
    got, want = _counted(col), Counter(list(col))
    assert got == want and list(got) == list(want)
    assert [type(k) for k in got] == [type(k) for k in want]
