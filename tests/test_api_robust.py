"""One bad value never loses a batch: the Python API and the worksheet functions.

A value that cannot be used is a problem of its own row (located, with an exact message);
the other rows of the same call are evaluated as if it were not there. Arguments no row can
be evaluated with are one ArgumentError, raised before any work.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import textwrap
import types
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrules import engine
from cxrules.compiler import compile_table
from cxrules.evaluation import ArgumentError, Evaluator
from cxrules.loader import load_rules
from cxrules.problems import CxError

AS_OF = dt.datetime(2026, 11, 23, 10, 0)

FILES = {
    "fields.yaml": """\
        fields:
          joined:    {type: date, columns: [Joined]}
          opened_at: {type: datetime, columns: [Opened at]}
        calendars:
          everyday:
            timezone: Asia/Shanghai
            hours: ["00:00-24:00"]
            workdays: [mon, tue, wed, thu, fri, sat, sun]
        """,
    # every value type, a derived input, a due date; `first` runs rows as engine events
    "offer.yaml": """\
        decision: offer
        hit: first
        inputs:
          spend:  {type: number, columns: [Spend 12m]}
          tier:   {type: text, columns: [Tier]}
          member: {type: boolean, columns: [Member]}
          wait:   {type: duration, columns: [Wait]}
          since:  {type: number, from: days_since(joined)}
        outputs:
          offer:  {type: text}
          within: {type: duration}
        due:
          reply_by: {from: opened_at, add: within, calendar: everyday}
        rules:
          - [">= 100000000000000000000", "-", "-", "-", "-", Whale, 1h]
          - [">= 5000",  "VIP, 贵宾",   "-",   "-",     "-",     Upgrade, 4h]
          - ["-",        "-",          true,  ">= 2h", "-",     Voucher, 1d]
          - ["[1..999]", "-",          "-",   "-",     "> 365", Welcome back, 2d]
          - ["-",        "-",          "-",   "-",     "-",     None,    3d]
        """,
    # `collect` runs rows as engine facts
    "tags.yaml": """\
        decision: tags
        hit: collect
        inputs:
          spend: {type: number, columns: [Spend 12m]}
          tier:  {type: text, columns: [Tier]}
        outputs:
          tag: {type: text}
        rules:
          - [">= 1000", "-", big]
          - ["-", "VIP, Gold", loyal]
          - ["< 0", "-", negative]
        """,
}


@pytest.fixture(scope="module")
def ev(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rules")
    for name, text in FILES.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    rs, problems = load_rules(folder)
    assert not problems.errors, [str(p) for p in problems]
    return Evaluator(rs)


GOOD = {"spend": 6000, "tier": "VIP", "member": True, "wait": "3h", "joined": dt.date(2026, 1, 5),
        "opened_at": dt.datetime(2026, 11, 20, 9, 0)}


def problems_of(r, i=None):
    return [(p.index, p.name, p.message) for p in r.problems if i is None or p.index == i]


def errors_of(r):
    return [(p.index, p.name, p.message) for p in r.problems if p.severity == "error"]


def run_with_one_bad(ev, column, value):
    """GOOD, GOOD with `value` in `column`, GOOD again: the bad row is the middle one."""
    return ev.evaluate([GOOD, {**GOOD, column: value}, GOOD], ["offer", "tags"], AS_OF)


def assert_good_rows_untouched(r):
    for i in (0, 2):
        assert r.columns["offer"][i] == "Upgrade"
        assert r.columns["reply_by"][i] == dt.datetime(2026, 11, 20, 13, 0)
        assert r.columns["tag"][i] == ["big", "loyal"]
        assert problems_of(r, i) == []


# ------------------------------------------------------------------ the Python API: values
@pytest.mark.parametrize("column, value, message", [
    ("spend", math.nan, "NaN is not a number; use None for a blank cell"),
    ("tier", math.nan, "NaN is not text; use None for a blank cell"),
    ("member", math.nan, "NaN is not true or false; use None for a blank cell"),
    ("wait", math.nan, "NaN is not a duration; use None for a blank cell"),
    ("joined", math.nan, "NaN is not a date; use None for a blank cell"),
    ("opened_at", math.nan, "NaN is not a date and time; use None for a blank cell"),
])
def test_nan_is_a_problem_of_its_row_only(ev, column, value, message):
    r = run_with_one_bad(ev, column, value)
    assert problems_of(r, 1) == [(1, column, message)]
    assert_good_rows_untouched(r)


def test_pandas_blanks_nan_and_nat_are_problems_and_the_readme_recipe_avoids_them(ev):
    pd = pytest.importorskip("pandas")
    # the blanks pandas itself puts in (pandas 2 keeps None in a text column, pandas 3 makes it NaN)
    df = pd.DataFrame({"spend": [6000, float("nan")], "tier": ["VIP", float("nan")], "joined": pd.to_datetime(["2026-01-05", None])})
    r = ev.evaluate(df.to_dict("records"), "offer", AS_OF)
    assert errors_of(r) == [(1, "spend", "NaN is not a number; use None for a blank cell"),
                                 (1, "tier", "NaN is not text; use None for a blank cell"),
                                 (1, "joined", "NaT is not a date; use None for a blank cell")]
    assert r.columns["offer"] == ["Upgrade", None]
    r = ev.evaluate(df.astype(object).where(df.notna(), None).to_dict("records"), "offer", AS_OF)
    assert r.columns["offer"] == ["Upgrade", "None"] and errors_of(r) == []


@pytest.mark.parametrize("column, value, message", [
    ("spend", math.inf, "inf is not a finite number"),
    ("spend", -math.inf, "-inf is not a finite number"),
    ("wait", math.inf, "inf is not a duration"),
    ("wait", 1e305, "'1e+305' is too long a duration"),  # days: 8.6e309 seconds
    ("joined", -math.inf, "-inf is not a date"),
    ("opened_at", math.inf, "inf is not a date and time"),
])
def test_infinity_is_a_problem_of_its_row_only(ev, column, value, message):
    r = run_with_one_bad(ev, column, value)
    assert problems_of(r, 1) == [(1, column, message)]
    assert_good_rows_untouched(r)


def test_whole_numbers_past_64_bits_are_compared_exactly(ev):
    # the engine holds 64-bit ints and doubles; 10**20 - 1 would round to 1e20 as a double
    spends = [10**20 - 1, 10**20, 10**20 + 1, 2**64, 2**70, 10**5000, -(10**400), 6000, 2**53 + 1]
    r = ev.evaluate([{**GOOD, "spend": s} for s in spends], ["offer", "tags"], AS_OF)
    assert r.columns["offer"] == ["Upgrade", "Whale", "Whale", "Upgrade", "Whale", "Whale", "Voucher", "Upgrade", "Upgrade"]
    assert r.columns["tag"][6] == ["loyal", "negative"]
    assert problems_of(r) == []


def test_text_with_a_lone_surrogate_is_a_problem_and_messages_stay_printable(ev):
    bad = b"VIP\xff".decode("utf-8", "surrogateescape")  # what a wrong decode leaves: 'VIP\udcff'
    r = run_with_one_bad(ev, "tier", bad)
    assert problems_of(r, 1) == [(1, "tier", r"'VIP\udcff' is not valid text ('\udcff' is left by a wrong decode); "
                                             "decode it with its real encoding")]
    assert_good_rows_untouched(r)
    r = run_with_one_bad(ev, "spend", "12" + bad)
    assert problems_of(r, 1) == [(1, "spend", r"'12VIP\udcff' is not a number")]
    str(r.problems[0]).encode("utf-8")  # a message never carries the surrogate itself


@pytest.mark.parametrize("column, value, message", [
    ("spend", [1, 2], "[1, 2] is a list, not a number; give one value per cell"),
    ("tier", {"a": 1}, "{'a': 1} is a dict, not text; give one value per cell"),
    ("tier", b"VIP", "b'VIP' is bytes, not text; decode it to text first"),
    ("member", (True,), "(True,) is a tuple, not true or false; give one value per cell"),
    ("spend", dt.time(9, 30), "'09:30:00' is a time, not a number"),
    ("tier", types.SimpleNamespace(x=1), "'namespace(x=1)' is a SimpleNamespace, not text"),
    ("joined", 10**5000, "a number of about 5001 digits is not a date"),
    ("tier", 10**5000, "a number of about 5001 digits is too long to read as text"),
    ("spend", "9" * 5000, "'" + "9" * 57 + "...' has too many digits to be a number"),
], ids=["list", "dict", "bytes", "tuple", "time", "object", "huge-int-date", "huge-int-text", "huge-digits"])
def test_values_of_the_wrong_kind_are_problems_of_their_row(ev, column, value, message):
    r = run_with_one_bad(ev, column, value)
    assert problems_of(r, 1) == [(1, column, message)]
    assert_good_rows_untouched(r)


class Broken:
    def __str__(self):
        raise RuntimeError("no text")


def test_a_value_that_breaks_its_reader_is_still_only_its_rows_problem(ev):
    r = run_with_one_bad(ev, "spend", Broken())
    assert problems_of(r, 1) == [(1, "spend", "'a Broken' is a Broken, not a number")]
    r = run_with_one_bad(ev, "joined", Broken())
    assert problems_of(r, 1) == [(1, "joined", "'a Broken' cannot be read as a date (RuntimeError)")]
    assert_good_rows_untouched(r)


@pytest.mark.parametrize("row, message", [
    (None, "the row is None, not a dict; give each row as a dict of column names to values"),
    ([6000, "VIP"], "the row is a list, not a dict; give each row as a dict of column names to values"),
    ("spend=6000", "the row is the text 'spend=6000', not a dict; give each row as a dict of column names to values"),
    (6000, "the row is an int, not a dict; give each row as a dict of column names to values"),
])
def test_a_row_that_is_not_a_dict_is_a_problem_of_that_row(ev, row, message):
    r = ev.evaluate([GOOD, row, GOOD], ["offer", "tags"], AS_OF)
    assert problems_of(r, 1) == [(1, None, message)]
    assert [r.columns[c][1] for c in ("offer", "within", "reply_by", "tag")] == [None, None, None, None]
    assert_good_rows_untouched(r)


def test_any_mapping_is_a_row(ev):
    r = ev.evaluate([types.MappingProxyType(GOOD)], "offer", AS_OF)
    assert r.columns["offer"] == ["Upgrade"] and problems_of(r) == []


def test_aware_date_times_are_read_on_the_rules_clock(ev):
    utc = dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 in Shanghai
    r = ev.evaluate([{**GOOD, "opened_at": utc}], "offer", AS_OF)
    assert r.columns["reply_by"] == [dt.datetime(2026, 11, 20, 13, 0)]
    r = ev.evaluate([{**GOOD, "joined": dt.datetime(2025, 11, 22, 20, 0, tzinfo=dt.timezone.utc)}], "offer",
                    dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc))  # both 2025-11-23 / 2026-11-23 in Shanghai
    assert r.columns["since"] == [365]


def test_a_row_problem_prints_with_its_row_and_column(ev):
    r = run_with_one_bad(ev, "spend", math.nan)
    assert str(r.problems[0]) == "row 1, spend: error: NaN is not a number; use None for a blank cell"


# ------------------------------------------------------------------ the Python API: arguments
@pytest.mark.parametrize("as_of, message", [
    (math.nan, "as_of must be a date and time (datetime), or None for now; it is NaN"),
    (math.inf, "as_of must be a date and time (datetime), or None for now; it is inf"),
    ("2026-11-23", "as_of must be a date and time (datetime), or None for now; it is the text '2026-11-23'"),
    (46349.0, "as_of must be a date and time (datetime), or None for now; it is the float 46349.0"),
])
def test_a_bad_as_of_is_one_error_for_the_call(ev, as_of, message):
    with pytest.raises(ArgumentError) as e:
        ev.evaluate([GOOD], "offer", as_of)
    assert str(e.value) == message and isinstance(e.value, CxError)


def test_nat_as_of_is_one_error_and_a_date_means_its_midnight(ev):
    pd = pytest.importorskip("pandas")
    with pytest.raises(ArgumentError, match=r"^as_of must be a date and time \(datetime\), or None for now; it is NaT$"):
        ev.evaluate([GOOD], "offer", pd.NaT)
    assert ev.evaluate([GOOD], "offer", dt.date(2026, 11, 23)).columns["since"] == [322]


@pytest.mark.parametrize("decisions, message", [
    ("ofer", "no decision named 'ofer'; did you mean 'offer'?"),
    ("refund", "no decision named 'refund'; decisions: offer, tags"),
    (5, "decisions must be a decision name or a list of names, not the int 5"),
    (["offer", None], "decisions must be decision names, not None"),
    ({"offer": 1}, "decisions must be a decision name or a list of names, not the dict {'offer': 1}"),
])
def test_a_bad_decisions_argument_is_one_error_for_the_call(ev, decisions, message):
    with pytest.raises(ArgumentError) as e:
        ev.evaluate([GOOD], decisions, AS_OF)
    assert str(e.value) == message


@pytest.mark.parametrize("rows, message", [
    (None, "rows must be a list of dicts (column name -> value), not None"),
    (GOOD, "rows must be a list of dicts (column name -> value), not the dict " + str(GOOD)[:57] + "...; to evaluate one row, pass [row]"),
    ("rows", "rows must be a list of dicts (column name -> value), not the text 'rows'"),
])
def test_a_bad_rows_argument_is_one_error_for_the_call(ev, rows, message):
    with pytest.raises(ArgumentError) as e:
        ev.evaluate(rows, "offer", AS_OF)
    assert str(e.value) == message


def test_rows_may_be_any_iterable_but_not_a_dataframe(ev):
    assert ev.evaluate((r for r in [GOOD]), "offer", AS_OF).columns["offer"] == ["Upgrade"]
    pd = pytest.importorskip("pandas")
    with pytest.raises(ArgumentError, match=re.escape("for a pandas DataFrame pass df.astype(object).where(df.notna(), None).to_dict('records')")):
        ev.evaluate(pd.DataFrame([GOOD]), "offer", AS_OF)


def test_evaluate_columns_checks_its_arguments(ev):
    with pytest.raises(ArgumentError, match=r"^column 'spend' has 2 values for 3 rows$"):
        ev.evaluate_columns({"spend": [1, 2]}, 3, "offer", AS_OF)
    with pytest.raises(ArgumentError, match=r"^n must be the number of rows \(an int of 0 or more\), not the float 2.0$"):
        ev.evaluate_columns({"spend": [1, 2]}, 2.0, "offer", AS_OF)
    r = ev.evaluate_columns({"spend": [6000, math.nan], "tier": ["VIP", "VIP"]}, 2, "offer", AS_OF)
    assert r.columns["offer"] == ["Upgrade", None]
    assert errors_of(r) == [(1, "spend", "NaN is not a number; use None for a blank cell")]


# ------------------------------------------------------------------ the engine driver
def _engine_and_table(ev, name):
    eng, comp = engine.default_engine(), compile_table(ev.rs.tables[name])
    eng.handle(comp)  # registered while its literals are written right
    return eng, comp


@pytest.mark.parametrize("table", ["offer", "tags"])
def test_the_engine_refuses_one_row_never_its_batch(ev, table):
    eng, comp = _engine_and_table(ev, table)
    good = {"i0": 6000, "i1": "vip"}
    rows = [good, {"i0": 2**70}, good, {"i1": "\ud800"}, good] * 100  # 500 rows: two batches
    out = eng.run(comp, rows)
    refused = [(k, o.reason) for k, o in enumerate(out) if isinstance(o, engine.Refused)]
    assert refused[:2] == [(1, "Integer exceeds 64-bit range"), (3, "str is not valid UTF-8: surrogates not allowed")]
    assert len(refused) == 200
    want = "r2" if table == "offer" else ["r1", "r2"]
    assert all(out[k] == want for k in range(0, 500) if k % 5 in (0, 2, 4))


@pytest.mark.parametrize("table", ["offer", "tags"])
def test_rows_the_engine_drops_silently_are_found_and_retried_alone(ev, table, monkeypatch):
    # The engine stops reading a batch at a message it cannot parse and still answers OK:
    # without the '1e16' -> '1.0e16' repair, every row after it used to come back unanswered.
    eng, comp = _engine_and_table(ev, table)
    monkeypatch.setattr(engine, "_EXPONENT", re.compile(r"(x)(?!x)x"))  # the repair, switched off
    rows = [{"i0": 10.0}, {"i0": 1e16}, {"i0": 6000, "i1": "vip"}, {"i0": -1}]
    out = eng.run(comp, rows)
    assert isinstance(out[1], engine.Refused) and out[1].reason == "the engine dropped it"
    if table == "offer":
        assert [out[0], out[2], out[3]] == ["r5", "r2", "r5"]
    else:
        assert [out[0], out[2], out[3]] == [[], ["r1", "r2"], ["r3"]]


def test_a_refused_row_is_an_error_of_that_row(ev, monkeypatch):
    _engine_and_table(ev, "offer")
    monkeypatch.setattr(engine, "_EXPONENT", re.compile(r"(x)(?!x)x"))
    rows = [{"spend": 1e16}, {"spend": 500, "joined": dt.date(2020, 1, 1)}, {"spend": 10}]
    r = ev.evaluate(rows, "offer", AS_OF)
    assert r.columns["offer"] == [None, "Welcome back", "None"]
    assert errors_of(r) == [(0, None, "the rule engine could not evaluate this row (the engine dropped it); "
                                      "please report this as a cxrules bug")]


def test_rule_literals_past_32_bits_go_to_the_engine_as_doubles(ev):
    # durable-rules reads a rule's whole numbers with atol: 32 bits on Windows (LLP64); and
    # this one, 10**20 read exactly, is past 64 bits: as an int it could not be sent at all
    cond = compile_table(ev.rs.tables["offer"]).definition["r1"]["all"][0]["m"]
    assert cond == {"$gte": {"i0": 1e20}} and type(cond["$gte"]["i0"]) is float


# ------------------------------------------------------------------ property: hostile rows
class Loud:
    """An object every operation on which fails."""

    def __str__(self):
        raise RuntimeError("no")

    def __bool__(self):
        raise RuntimeError("no")

    def __eq__(self, other):
        raise RuntimeError("no")

    __hash__ = None


good_values = {
    "spend": st.one_of(st.integers(-10, 10**6), st.floats(-1e6, 1e6, allow_nan=False), st.integers(), st.sampled_from(["1,200", "15%", " 42 "])),
    "tier": st.sampled_from(["VIP", "vip ", "贵宾", "Gold", "Kid's club", "a\x00b", "😀", "#hash"]),
    "member": st.sampled_from([True, False, "yes", "No", 1, 0.0]),
    "wait": st.sampled_from(["2h", "90m", "1d 12h", 0.5, dt.timedelta(hours=3)]),
    "joined": st.dates(dt.date(1990, 1, 1), dt.date(2026, 11, 23)),
    "opened_at": st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2030, 1, 1)),
}
hostile_values = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 2**64, -(2**70), 10**5000, b"VIP", bytearray(b"1"), [1], {"a": 1}, {1}, (),
                     object(), Loud(), Decimal("NaN"), Decimal("1E+400"), "\ud800", "12\udcff", "", "   ", "#N/A",
                     dt.time(1, 2), dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), dt.date.max, dt.datetime.min]),
    st.text(max_size=5),
    st.floats(),
    st.integers(),
)
good_rows = st.fixed_dictionaries({}, optional=good_values)
hostile_rows = st.one_of(
    st.tuples(st.sampled_from(sorted(good_values)), hostile_values, good_rows).map(lambda t: {**t[2], t[0]: t[1]}),
    st.sampled_from([None, [], ["spend", 1], "spend", 7, Loud(), {1: 2, None: "x"}]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(good_rows, hostile_rows), min_size=1, max_size=8))
def test_property_each_row_gets_what_it_gets_alone(ev, rows):
    """Good rows are untouched by hostile ones; a hostile row gets one located error or a valid result."""
    decisions = ["offer", "tags"]
    together = ev.evaluate(rows, decisions, AS_OF)
    names = ["offer", "within", "reply_by", "tag"]
    for i, row in enumerate(rows):
        alone = ev.evaluate([row], decisions, AS_OF)
        assert [together.columns[n][i] for n in names] == [alone.columns[n][0] for n in names], (i, row)
        mine = [(p.name, p.message, p.severity) for p in together.problems if p.index == i]
        assert mine == [(p.name, p.message, p.severity) for p in alone.problems], (i, row)
        errors = [p for p in together.problems if p.index == i and p.severity == "error"]
        assert len(errors) <= 1, (row, errors)
        for p in errors:  # located: at the value's column, a due date computed from it, or the whole row
            str(p).encode("utf-8")
            assert p.name in (set(row) | {"reply_by"} if isinstance(row, dict) else {None}), (row, p)
