"""The durable-rules path against a small, independent reference evaluator.

Decision tables are generated as structured data (typed inputs, cells as lists of atoms,
outputs, a hit policy), rendered to YAML text, loaded with `load_rules` and evaluated
with `Evaluator` on the C engine. The reference below evaluates the same structured
tables directly. It follows the documents (rule-files.md; DMN 1.4 simple unary tests;
FEEL three-valued logic), not cxrules' model or compiler:

- `-` or an empty cell matches anything, blanks included;
- a cell is a disjunction of atoms (comparison, interval, value, `blank`), or'd with
  Kleene logic; `not(...)` negates it, and `not(unknown)` stays unknown;
- against a blank, an ordering comparison or an interval is unknown, `=` is false,
  `!=` is true, `blank` is true; a rule row matches only when every cell is true;
- text compares case-insensitively, ignoring surrounding spaces;
- hit policies and their reporting as cxrules/evaluation.py documents them: a single-hit
  table (first, unique, priority, any) that no row matches gives a warning and blank
  outputs; two rows of a unique table, or two disagreeing rows of an any table, give an
  error and blank outputs; priority ranks rows by the position of each output's value in
  its `allowed` list (a `-` after every allowed value; ties by row order); rule order and
  collect give the list of non-blank values of the matching rows, in row order (empty,
  without a warning, when nothing matches); collect count counts those values (0 when
  none), collect sum/min/max give a blank when there is none.

KNOWN_BUGS lists bugs found by this test whose fix is pending. While a bug is listed the
generator stays clear of it (so everything else keeps being checked) and a deterministic
test below, marked xfail(strict=True), shows it. Once fixed, that test passes, strict
xfail turns it into a failure: remove the marker and the entry here.
"""
from __future__ import annotations

import datetime as dt
import atexit
import itertools
import json
import os
import shutil
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrules import columnar, evaluation
from cxrules.evaluation import Evaluator
from cxrules.loader import load_rules

KNOWN_BUGS: set = set()  # none pending

# ----------------------------------------------------------------------------- values
EXCEL_EPOCH = dt.date(1899, 12, 30)
D0 = dt.date(2026, 1, 1)

NUMBERS = [-3, 0, 1, 2, 2.5, 5, 7, 10, 12.75, 100]
TEXTS = ["VIP", "Gold", "Regular", "Churn risk", "贵宾", "Smith, J", "Kid's club"]
DATES = [D0 + dt.timedelta(days=n) for n in (0, 1, 15, 31, 59, 365)]
DURATIONS = {  # seconds -> spellings of that clock length
    0: ["0m"],
    1800: ["30m"],
    5400: ["90m", "1h30m"],
    7200: ["2h", "120m"],
    43200: ["12h"],
    86400: ["1d", "24h"],
    129600: ["36h", "1d 12h"],
    259200: ["3d", "72h"],
    604800: ["1w", "7d"],
}
ORDERED = ("number", "date", "duration")
TYPES = ("number", "text", "boolean", "date", "duration")


def norm(v, type_):
    """The reference's comparable form of a typed value (None = blank)."""
    if v is None:
        return None
    return v.strip().casefold() if type_ == "text" else v


def pool(type_):
    return {"number": NUMBERS, "text": TEXTS, "boolean": [True, False], "date": DATES, "duration": sorted(DURATIONS)}[type_]


@st.composite
def spelling(draw, v, type_):
    """How a constant is written inside a cell."""
    if type_ == "number":
        if isinstance(v, int) and draw(st.booleans()):
            return f"{v}.0"
        return repr(v) if isinstance(v, float) else str(v)
    if type_ == "text":
        if "," in v or ("'" in v and "apostrophe" in KNOWN_BUGS):
            return f'"{v}"'
        return draw(st.sampled_from([v, f'"{v}"'] + ([f"'{v}'"] if "'" not in v else [])))
    if type_ == "boolean":
        return draw(st.sampled_from(["true", "True", "TRUE"] if v else ["false", "False", "FALSE"]))
    if type_ == "date":
        return draw(st.sampled_from([v.isoformat(), v.strftime("%Y/%m/%d")]))
    return draw(st.sampled_from(DURATIONS[v]))


# ----------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Cmp:
    op: str  # = != < <= > >=
    value: object


@dataclass(frozen=True)
class Rng:
    lo: object
    hi: object
    lo_closed: bool
    hi_closed: bool


@dataclass(frozen=True)
class Blank:
    pass


@dataclass
class Cell:
    atoms: list = field(default_factory=list)  # no atoms and not negated: '-'
    negated: bool = False
    text: str = "-"


def atom_truth(a, v):
    """True / False / None (unknown): one atom against a value, as FEEL has it."""
    if isinstance(a, Blank):
        return v is None
    if isinstance(a, Cmp):
        if v is None:
            return {"=": False, "!=": True}.get(a.op)  # ordering against blank: unknown
        x = a.value
        if a.op == "=":
            return v == x
        if a.op == "!=":
            return v != x
        if a.op == "<":
            return v < x
        if a.op == "<=":
            return v <= x
        if a.op == ">":
            return v > x
        return v >= x
    if v is None:
        return None
    above = v >= a.lo if a.lo_closed else v > a.lo
    below = v <= a.hi if a.hi_closed else v < a.hi
    return above and below


def cell_truth(c: Cell, v):
    if not c.atoms and not c.negated:
        return True
    acc = False
    for a in c.atoms:
        t = atom_truth(a, v)
        if t is True:
            acc = True
            break
        if t is None:
            acc = None
    if c.negated:
        return None if acc is None else not acc
    return acc


@st.composite
def atoms(draw, type_, last=True):
    """(reference atom, text) for one atom of a cell of the given type."""
    kinds = ["value", "cmp", "blank"] + (["range", "range", "cmp"] if type_ in ORDERED else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "blank":
        return Blank(), draw(st.sampled_from(["blank", "Blank", "BLANK"]))
    v = draw(st.sampled_from(pool(type_)))
    vs = draw(spelling(v, type_))
    if kind == "value":
        return Cmp("=", norm(v, type_)), vs
    if kind == "cmp":
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="] if type_ in ORDERED else ["=", "!="]))
        return Cmp(op, norm(v, type_)), f"{op}{draw(st.sampled_from([' ', '']))}{vs}"
    lo, hi = sorted([v, draw(st.sampled_from(pool(type_)))])
    if lo == hi:  # [5..5] is 5; (5..5) is refused as empty
        lb, hb = "[", "]"
    else:
        lb = draw(st.sampled_from(["[", "(", "]"]))
        hb = draw(st.sampled_from(["]", ")", "["] if last or "interval-in-list" not in KNOWN_BUGS else ["]", ")"]))
    text = f"{lb}{draw(spelling(lo, type_))}..{draw(spelling(hi, type_))}{hb}"
    return Rng(lo, hi, lb == "[", hb == "]"), text


@st.composite
def cells(draw, type_):
    kind = draw(st.sampled_from(["any", "any", "one", "one", "one", "list", "not", "blank", "notblank"]))
    if kind == "any":
        return Cell(text=draw(st.sampled_from(["-", "", " - "])))
    if kind == "blank":
        return Cell([Blank()], False, "blank")
    if kind == "notblank":
        return Cell([Blank()], True, draw(st.sampled_from(["not(blank)", "not( blank )", "NOT(blank)"])))
    n = 1 if kind == "one" else draw(st.integers(1 if kind == "not" else 2, 3))
    parts = [draw(atoms(type_, last=j == n - 1)) for j in range(n)]
    body = ", ".join(t for _, t in parts)
    if kind == "not":
        return Cell([a for a, _ in parts], True, f"not({body})")
    return Cell([a for a, _ in parts], False, body)


# ----------------------------------------------------------------------------- tables
HIT_SPELLINGS = {
    "first": ["first", "First", "F"],
    "unique": ["unique", "U", None],  # None: no hit key (unique is the default)
    "priority": ["priority", "P"],
    "any": ["any", "A"],
    "rule order": ["rule order", "R", "rule_order"],
    "collect": ["collect", "C"],
    "collect sum": ["collect sum", "C+"],
    "collect min": ["collect min", "C<"],
    "collect max": ["collect max", "C>"],
    "collect count": ["collect count", "C#"],
}
SINGLE_HIT = ("first", "priority", "unique", "any")
OUT_NUMBERS = [0, 1, 2, 2.5, 10, -4]
OUT_TEXTS = ["VIP", "Regular", "Potential", "New", "Coupon CNY 10"]
_counter = itertools.count()


@dataclass
class Spec:
    name: str
    hit: str
    hit_text: str | None
    inputs: list  # (name, type)
    outputs: list  # (name, type, allowed or None)
    rules: list  # (cells, output values, written as a mapping?)

    def yaml(self) -> str:
        q = lambda s: json.dumps(s, ensure_ascii=False)  # noqa: E731  (a JSON string is a YAML string)
        out = [f"decision: {self.name}"]
        if self.hit_text is not None:
            out.append(f"hit: {q(self.hit_text)}")
        out.append("inputs:")
        out += [f"  {n}: {{type: {t}}}" for n, t in self.inputs]
        out.append("outputs:")
        for n, t, allowed in self.outputs:
            extra = f", allowed: [{', '.join(q(out_text(a)) for a in allowed)}]" if allowed else ""
            out.append(f"  {n}: {{type: {t}{extra}}}")
        out.append("rules:")
        for cs, vals, as_map in self.rules:
            texts = [c.text for c in cs] + ["-" if v is None else out_text(v) for v in vals]
            if as_map:  # missing inputs match anything, missing outputs give no value
                names = [n for n, _ in self.inputs] + [n for n, _, _ in self.outputs]
                kept = [f"{n}: {q(t)}" for n, t, c in zip(names, texts, cs + [None] * len(vals)) if c is None or c.atoms or c.negated]
                out.append("  - {" + ", ".join(kept) + "}")
            else:
                out.append("  - [" + ", ".join(q(t) for t in texts) + "]")
        return "\n".join(out) + "\n"


def out_text(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def case_variant(draw, s):
    return draw(st.sampled_from([s, s.upper(), s.lower(), s.title()]))


@st.composite
def specs(draw):
    hit = draw(st.sampled_from(list(HIT_SPELLINGS)))
    inputs = [(f"in{k}", draw(st.sampled_from(TYPES))) for k in range(draw(st.integers(1, 3)))]
    outputs = []
    for k in range(draw(st.integers(1, 2))):
        t = "number" if hit in ("collect sum", "collect min", "collect max") else draw(st.sampled_from(["number", "text"]))
        allowed = None
        if hit == "priority" and (k == 0 or draw(st.booleans())):
            allowed = draw(st.permutations(OUT_NUMBERS if t == "number" else OUT_TEXTS))[: draw(st.integers(2, 4))]
        outputs.append((f"out{k}", t, allowed))
    rules = []
    for _ in range(draw(st.integers(1, 8))):
        cs = [draw(cells(t)) for _, t in inputs]
        vals = []
        for _, t, allowed in outputs:
            v = draw(st.sampled_from(allowed or (OUT_NUMBERS if t == "number" else OUT_TEXTS)))
            if allowed and t == "text":  # ranked case-insensitively
                v = case_variant(draw, v)
            vals.append(None if draw(st.integers(0, 5)) == 0 else v)
        rules.append((cs, vals, draw(st.integers(0, 4)) == 0))
    return Spec(f"prop{next(_counter)}", hit, draw(st.sampled_from(HIT_SPELLINGS[hit])), inputs, outputs, rules)


def constants(spec: Spec, k: int) -> list:
    """Every constant the cells of input k compare with (for boundary values)."""
    out = []
    for cs, _, _ in spec.rules:
        for a in cs[k].atoms:
            if isinstance(a, Cmp):
                out.append(a.value)
            elif isinstance(a, Rng):
                out += [a.lo, a.hi]
    return out


@st.composite
def raw_value(draw, spec: Spec, k: int):
    """(the value as a workbook row gives it, the typed value the reference compares)."""
    type_ = spec.inputs[k][1]
    if draw(st.integers(0, 6)) == 0:
        return draw(st.sampled_from([None, "", "   "])), None
    consts = constants(spec, k)
    near = draw(st.booleans())
    if type_ == "number":
        if "exponent-numbers" not in KNOWN_BUGS and draw(st.integers(0, 20)) == 0:
            v = draw(st.sampled_from([1e16, -1e16, 2e-07, -3e-05, 1e22]))
        else:
            v = draw(st.sampled_from(consts if near and consts else NUMBERS)) + draw(st.sampled_from([0, 0, 0, 1, -1, 0.5, -0.5]))
        return draw(st.sampled_from([v, float(v), str(v)])), v
    if type_ == "text":
        texts = [t for t in TEXTS if t.casefold() in consts] if near else []
        base = draw(st.sampled_from(texts or TEXTS + ["Other", "vip gold"]))
        raw = draw(st.sampled_from([base, base.upper(), base.lower(), base.title(), f"  {base} "]))
        return raw, raw
    if type_ == "boolean":
        v = draw(st.booleans())
        return draw(st.sampled_from([v, "TRUE" if v else "FALSE", "yes" if v else "no", int(v)])), v
    if type_ == "date":
        v = draw(st.sampled_from(consts if near and consts else DATES)) + dt.timedelta(days=draw(st.sampled_from([0, 0, 1, -1])))
        raw = draw(st.sampled_from([v, v.isoformat(), (v - EXCEL_EPOCH).days, dt.datetime(v.year, v.month, v.day)]))
        return raw, v
    secs = draw(st.sampled_from(consts if near and consts else sorted(DURATIONS))) + draw(st.sampled_from([0, 0, 1800, -1800]))
    if secs < 0:
        return None, None
    if secs in DURATIONS and draw(st.booleans()):
        return draw(st.sampled_from(DURATIONS[secs])), secs
    if secs % 21600 == 0 and draw(st.booleans()):
        return secs / 86400, secs  # Excel keeps durations as days
    return f"{secs // 60}m", secs


# ----------------------------------------------------------------------------- the reference
def _and(items):
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def reference(spec: Spec, values: list[list]):
    """(outputs by name, fired, problems) for rows of typed values, as documented."""
    n, name = len(values), spec.name
    outs = {o: [None] * n for o, _, _ in spec.outputs}
    fired: list = [None] * n
    problems = []
    agg = spec.hit.split(" ")[1] if spec.hit.startswith("collect ") else None
    for i, vals in enumerate(values):
        matched = [(k + 1, vs) for k, (cs, vs, _) in enumerate(spec.rules) if all(cell_truth(c, v) is True for c, v in zip(cs, vals))]
        if spec.hit in SINGLE_HIT:
            if not matched:
                problems.append((i, None, f"no rule row of '{name}' matched this row", name, "warning"))
                continue
            if spec.hit == "priority":

                def rank(m):
                    r = []
                    for (_, t, allowed), v in zip(spec.outputs, m[1]):
                        if allowed:
                            keys = [norm(a, t) for a in allowed]
                            r.append(keys.index(norm(v, t)) if v is not None and norm(v, t) in keys else len(keys))
                    return tuple(r), m[0]

                matched.sort(key=rank)
            elif spec.hit in ("unique", "any") and len(matched) > 1 and (spec.hit == "unique" or any(m[1] != matched[0][1] for m in matched)):
                why = "a unique table allows one" if spec.hit == "unique" else "an 'any' table needs them to agree"
                problems.append((i, None, f"rule rows {_and([m[0] for m in matched])} of '{name}' all match this row ({why})", name, "error"))
                continue
            fired[i] = matched[0][0]
            for (o, _, _), v in zip(spec.outputs, matched[0][1]):
                outs[o][i] = v
            continue
        fired[i] = [m[0] for m in matched]
        for j, (o, _, _) in enumerate(spec.outputs):
            vs = [m[1][j] for m in matched if m[1][j] is not None]
            if not agg:  # lists keep one entry per matching row, blanks too, so outputs stay aligned
                vs = [m[1][j] for m in matched]
            if agg == "count":
                outs[o][i] = len(vs)
            elif agg == "sum":
                total = vs[0] if vs else None
                for v in vs[1:]:
                    total += v
                outs[o][i] = total
            elif agg in ("min", "max"):
                outs[o][i] = (min if agg == "min" else max)(vs) if vs else None
            else:
                outs[o][i] = vs
    return outs, fired, problems


def duplicate_firing_applies(spec: Spec, vals: list) -> bool:
    """Would the known duplicate-firing bug show on this row? It does when a rule of a fact
    table matches in two ways: two true alternatives of a list cell, or, inside not(),
    a value equal to both ends of an empty interval such as (5..5)."""
    if spec.hit in ("first", "priority"):
        return False
    for cs, _, _ in spec.rules:
        if all(cell_truth(c, v) is True for c, v in zip(cs, vals)):
            for c, v in zip(cs, vals):
                if not c.negated and sum(atom_truth(a, v) is True for a in c.atoms) > 1:
                    return True
                if c.negated and any(isinstance(a, Rng) and a.lo == a.hi == v for a in c.atoms):
                    return True
    return False


# ----------------------------------------------------------------------------- harness
_DIR = Path(tempfile.mkdtemp(prefix="cxrules-property-"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)


def evaluate(spec: Spec, raw_rows: list[list]):
    path = _DIR / f"{spec.name}.yaml"
    path.write_text(spec.yaml(), encoding="utf-8")
    rs, problems = load_rules(path)
    assert not problems.errors, "\n".join(map(str, problems)) + "\n" + spec.yaml()
    rows = [{n: raw for (n, _), raw in zip(spec.inputs, raws)} for raws in raw_rows]
    return Evaluator(rs).evaluate(rows, [spec.name])


def check(spec: Spec, rows: list[tuple[list, list]]):
    ev = evaluate(spec, [raws for raws, _ in rows])
    want_outs, want_fired, want_problems = reference(spec, [vals for _, vals in rows])
    # what the hit policy reports (reading values may add notes of its own, not checked here)
    got_problems = [(p.index, p.name, p.message, p.table, p.severity) for p in ev.problems if p.table == spec.name and p.name is None]
    for i, (raws, vals) in enumerate(rows):
        if "duplicate-firing" in KNOWN_BUGS and duplicate_firing_applies(spec, vals):
            continue
        got = ({o: ev.columns[o][i] for o in want_outs}, ev.fired[spec.name][i], [p for p in got_problems if p[0] == i])
        want = ({o: v[i] for o, v in want_outs.items()}, want_fired[i], [p for p in want_problems if p[0] == i])
        assert got == want, f"row {raws!r}\n{spec.yaml()}\nengine:    {got}\nreference: {want}"


@st.composite
def cases(draw):
    spec = draw(specs())
    rows = []
    for _ in range(draw(st.integers(1, 25))):
        pairs = [draw(raw_value(spec, k)) for k in range(len(spec.inputs))]
        rows.append(([raw for raw, _ in pairs], [norm(v, t) for (_, v), (_, t) in zip(pairs, spec.inputs)]))
    return spec, rows


@settings(
    max_examples=int(os.environ.get("CXRULES_PROPERTY_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_engine_agrees_with_reference(case):
    spec, rows = case
    check(spec, rows)


@settings(
    max_examples=int(os.environ.get("CXRULES_PROPERTY_EXAMPLES", "400")) // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_engine_shown_the_table_in_parts_agrees_with_reference(case):
    """Big tables with many rows go to the engine in parts (the rule rows that can match);
    forced here on every table, down to one rule row a part."""
    spec, rows = case
    saved = evaluation.PARTITION_MIN_RULES, evaluation.PARTITION_MIN_COMBINATIONS, columnar.LEAF
    evaluation.PARTITION_MIN_RULES, evaluation.PARTITION_MIN_COMBINATIONS, columnar.LEAF = 0, 0, 1
    try:
        check(spec, rows)
    finally:
        evaluation.PARTITION_MIN_RULES, evaluation.PARTITION_MIN_COMBINATIONS, columnar.LEAF = saved


# ----------------------------------------------------------------------------- regressions
def run(tmp_path, yaml_text, rows, decision):
    (tmp_path / "rules.yaml").write_text(textwrap.dedent(yaml_text), encoding="utf-8")
    rs, problems = load_rules(tmp_path / "rules.yaml")
    assert not problems.errors, [str(p) for p in problems]
    return Evaluator(rs).evaluate(rows, decision)


THREE_VALUED = """\
decision: blanks
hit: rule order
inputs:
  n: {type: number}
outputs:
  row: {type: text}
rules:
  - ["not(< 5)",        "not(< 5)"]
  - ["not(5)",          "not(5)"]
  - ["!= 5",            "!= 5"]
  - ["< 5, blank",      "< 5, blank"]
  - ["not(< 5, blank)", "not(< 5, blank)"]
  - ["not(< 5, 7)",     "not(< 5, 7)"]
  - ["[1..9]",          "[1..9]"]
  - ["not([1..9])",     "not([1..9])"]
  - ["blank",           "blank"]
  - ["not(blank)",      "not(blank)"]
  - ["-",               "dash"]
  - ["",                "empty"]
"""


def test_three_valued_logic_against_a_blank(tmp_path):
    """An ordering test or an interval against a blank is unknown, and so is its not()."""
    r = run(tmp_path, THREE_VALUED, [{"n": None}, {"n": ""}, {"n": "  "}, {"n": 5}], "blanks")
    blank = ["not(5)", "!= 5", "< 5, blank", "blank", "dash", "empty"]
    five = ["not(< 5)", "not(< 5, blank)", "not(< 5, 7)", "[1..9]", "not(blank)", "dash", "empty"]
    assert r.columns["row"] == [blank, blank, blank, five]
    assert r.problems == []


def test_interval_ends_and_equal_boundaries(tmp_path):
    text = """\
    decision: ends
    hit: collect
    inputs:
      n: {type: number}
    outputs:
      row: {type: text}
    rules:
      - ["[2..4]", "[2..4]"]
      - ["(2..4]", "(2..4]"]
      - ["]2..4]", "]2..4]"]
      - ["[2..4)", "[2..4)"]
      - ["[2..4[", "[2..4["]
      - ["(2..4)", "(2..4)"]
      - ["]2..4[", "]2..4["]
      - ["[2.0..4.0]", "[2.0..4.0]"]
    """
    r = run(tmp_path, text, [{"n": 2}, {"n": 2.0}, {"n": "4"}, {"n": 3}, {"n": 4.0001}], "ends")
    closed_lo = ["[2..4]", "[2..4)", "[2..4[", "[2.0..4.0]"]
    closed_hi = ["[2..4]", "(2..4]", "]2..4]", "[2.0..4.0]"]
    assert r.columns["row"] == [closed_lo, closed_lo, closed_hi, ["[2..4]", "(2..4]", "]2..4]", "[2..4)", "[2..4[", "(2..4)", "]2..4[", "[2.0..4.0]"], []]


def test_text_ignores_case_and_spaces_dates_and_durations_compare_by_value(tmp_path):
    text = """\
    decision: kinds
    hit: first
    inputs:
      tier: {type: text}
      since: {type: date}
      open_for: {type: duration}
    outputs:
      row: {type: number}
    rules:
      - ["not(VIP, 'Smith, J')", "-",            "-",           1]
      - ["-",                    ">= 2026-01-16", "-",           2]
      - ["-",                    "-",            "[1d..36h)",   3]
      - ["-",                    "-",            "-",           4]
    """
    rows = [
        {"tier": "  vIp "},  # VIP -> not row 1
        {"tier": "smith, j", "since": "2026-01-16"},
        {"tier": "VIP", "since": dt.date(2026, 1, 15), "open_for": "24h"},
        {"tier": "VIP", "open_for": 1.5},  # 1.5 days = 36h, the open end
        {"tier": "Gold"},
    ]
    r = run(tmp_path, text, rows, "kinds")
    assert r.columns["row"] == [4, 2, 3, 4, 1]


def test_priority_ties_by_row_order_and_dash_ranks_last(tmp_path):
    text = """\
    decision: pick
    hit: priority
    inputs:
      n: {type: number}
    outputs:
      level: {type: text, allowed: [High, Medium, Low]}
      row: {type: number}
    rules:
      - ["-",    "-",    1]
      - ["> 0",  Low,    2]
      - ["> 5",  Medium, 3]
      - ["> 10", Medium, 4]
    """
    r = run(tmp_path, text, [{"n": -1}, {"n": 1}, {"n": 7}, {"n": 11}], "pick")
    assert r.columns["row"] == [1, 2, 3, 3]
    assert r.fired["pick"] == [1, 2, 3, 3]


@pytest.mark.parametrize(
    "hit, out_type, want",
    [
        ("rule order", "text", [[], ["a", None]]),  # one entry per fired row (1 and 3), blanks too
        ("collect", "text", [[], ["a", None]]),
        ("collect count", "text", [0, 1]),
        ("collect sum", "number", [None, 2]),
        ("collect min", "number", [None, 2]),
        ("collect max", "number", [None, 2]),
    ],
)
def test_collect_of_nothing(tmp_path, hit, out_type, want):
    text = f"""\
    decision: nothing
    hit: {hit}
    inputs:
      n: {{type: number}}
    outputs:
      x: {{type: {out_type}}}
    rules:
      - ["> 100", {"a" if out_type == "text" else 2}]
      - ["< 0",   "-"]
      - ["> 150", "-"]
    """
    r = run(tmp_path, text, [{"n": 1}, {"n": 200}], "nothing")
    assert r.columns["x"] == want
    assert r.fired["nothing"] == [[], [1, 3]]
    assert r.problems == []  # matching nothing is not a problem for a collecting table


@pytest.mark.parametrize("hit", ["collect", "rule order"])
def test_lists_of_several_outputs_stay_aligned(tmp_path, hit):
    text = f"""\
    decision: offers
    hit: {hit}
    inputs:
      n: {{type: number}}
    outputs:
      offer: {{type: text}}
      value: {{type: number}}
    rules:
      - ["> 0",  Voucher, 50]
      - ["> 10", Call,    "-"]
      - ["> 20", Gift,    300]
    """
    r = run(tmp_path, text, [{"n": 30}, {"n": 15}], "offers")
    assert r.columns["offer"] == [["Voucher", "Call", "Gift"], ["Voucher", "Call"]]
    assert r.columns["value"] == [[50, None, 300], [50, None]]  # the 3rd value is the Gift's


def test_unique_and_any_report_the_rows_that_clash(tmp_path):
    text = """\
    decision: u
    hit: unique
    inputs:
      n: {type: number}
    outputs:
      x: {type: number}
    rules:
      - ["< 5", 1]
      - ["< 9", 1]
      - ["< 7", 2]
    ---
    decision: a
    hit: any
    inputs:
      m: {type: number}
    outputs:
      y: {type: number}
    rules:
      - ["< 5", 1]
      - ["< 9", 1.0]
      - ["< 3", 2]
    """
    (tmp_path / "rules.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    rs, problems = load_rules(tmp_path / "rules.yaml")
    r = Evaluator(rs).evaluate([{"n": 4, "m": 4}, {"n": 8, "m": 8}, {"n": 1, "m": 1}, {"n": 10, "m": 10}])
    assert r.columns["x"] == [None, 1, None, None]
    assert r.columns["y"] == [1, 1, None, None]
    assert sorted((p.index, p.table, p.severity, p.message) for p in r.problems) == [
        (0, "u", "error", "rule rows 1, 2 and 3 of 'u' all match this row (a unique table allows one)"),
        (2, "a", "error", "rule rows 1, 2 and 3 of 'a' all match this row (an 'any' table needs them to agree)"),
        (2, "u", "error", "rule rows 1, 2 and 3 of 'u' all match this row (a unique table allows one)"),
        (3, "a", "warning", "no rule row of 'a' matched this row"),
        (3, "u", "warning", "no rule row of 'u' matched this row"),
    ]


# ----------------------------------------------------------------------------- known bugs
DUPLICATE = """\
decision: dup_{hit_name}
hit: {hit}
inputs:
  n: {{type: number}}
outputs:
  points: {{type: number}}
rules:
  - ["< 5, < 10", 1]
  - ["[0..3], [2..4]", 2]
"""


@pytest.mark.parametrize("hit, want", [("collect sum", [3, 1]), ("collect count", [2, 1]), ("rule order", [[1, 2], [1]]), ("unique", [None, 1])])
def test_bug_duplicate_firing_of_list_cells(tmp_path, hit, want):
    r = run(tmp_path, DUPLICATE.format(hit=hit, hit_name=hit.replace(" ", "_")), [{"n": 2.5}, {"n": 7}], None)
    assert r.columns["points"] == want
    fired = r.fired[f"dup_{hit.replace(' ', '_')}"]
    assert fired == ([None, 1] if hit == "unique" else [[1, 2], [1]])
    if hit == "unique":
        assert [p.message for p in r.problems] == ["rule rows 1 and 2 of 'dup_unique' all match this row (a unique table allows one)"]


@pytest.mark.parametrize("cell", ["[1..5[, 7", "]1..5[, 7", "(1..5[, 7", "not(]1..5[, 7)"])
def test_bug_interval_open_with_bracket_inside_a_list(tmp_path, cell):
    text = f"""\
    decision: open_end
    hit: first
    inputs:
      n: {{type: number}}
    outputs:
      x: {{type: number}}
    rules:
      - ["{cell}", 1]
      - ["-", 0]
    """
    r = run(tmp_path, text, [{"n": 3}, {"n": 5}, {"n": 7}], "open_end")
    hit = [1, 0, 1] if not cell.startswith("not") else [0, 1, 0]
    assert r.columns["x"] == hit


def test_bug_apostrophe_in_a_text_value(tmp_path):
    text = """\
    decision: club
    hit: first
    inputs:
      segment: {type: text}
    outputs:
      x: {type: number}
    rules:
      - ["Kid's club, Manager's pick", 1]
      - ["-", 0]
    """
    r = run(tmp_path, text, [{"segment": "kid's CLUB"}, {"segment": "Manager's pick"}, {"segment": "Other"}], "club")
    assert r.columns["x"] == [1, 1, 0]


def test_priority_rank_ignores_text_case(tmp_path):
    """'low' ranks as the allowed value Low (text compares case-insensitively)."""
    text = """\
    decision: level
    hit: priority
    inputs:
      n: {type: number}
    outputs:
      level: {type: text, allowed: [High, Medium, Low]}
    rules:
      - ["> 0", low]
      - ["> 5", medium]
      - ["> 9", HIGH]
    """
    r = run(tmp_path, text, [{"n": 1}, {"n": 6}, {"n": 10}], "level")
    assert r.columns["level"] == ["low", "medium", "HIGH"]
    assert r.fired["level"] == [1, 2, 3]


def test_bug_numbers_in_exponent_form(tmp_path):
    text = """\
    decision: size
    hit: first
    inputs:
      n: {type: number}
    outputs:
      size: {type: text}
    rules:
      - ["< 0",    negative]
      - ["0",      zero]
      - ["(0..1)", small]
      - [">= 1",   large]
    """
    rows = [{"n": 3}, {"n": 2e-07}, {"n": 5}, {"n": 1e16}, {"n": -3e-05}, {"n": 0}]
    r = run(tmp_path, text, rows, "size")
    assert r.columns["size"] == ["large", "small", "large", "large", "negative", "zero"]
    assert r.problems == []


@pytest.mark.parametrize("hit", ["first", "collect count"])
def test_bug_tables_of_64_or_more_matching_rows(tmp_path, hit):
    rows = "\n".join(f'  - ["[{i}..{i + 1})", {i}]' for i in range(100))
    text = f"decision: band\nhit: {hit}\ninputs:\n  n: {{type: number}}\noutputs:\n  b: {{type: number}}\nrules:\n{rows}\n"
    r = run(tmp_path, text, [{"n": 0.5}, {"n": 63.5}, {"n": 99.5}], "band")
    assert r.columns["b"] == ([0, 63, 99] if hit == "first" else [1, 1, 1])
