"""The durable-rules path against a small, independent reference evaluator.

Decision tables are generated as structured data (inputs, cells as lists of atoms,
outputs, hit policy), rendered to YAML text, loaded with `load_rules` and evaluated with
`Evaluator` on the C engine. The reference below evaluates the same structured tables
directly, following docs (rule-files.md, DMN 1.4 simple unary tests, FEEL three-valued
logic) rather than cxrules' own model/compiler code:

- `-` or an empty cell matches anything, blanks included;
- a cell is a disjunction of atoms (comparison, interval, value, `blank`), Kleene-or'd;
- against a blank, an ordering comparison or an interval is *unknown*, `=` is false,
  `!=` is true, `blank` is true; `not(...)` of unknown stays unknown; a row matches only
  when every cell is true;
- text compares case-insensitively (and ignoring surrounding spaces);
- hit policies and their reporting as documented in cxrules/evaluation.py (no match: a
  warning and blank outputs for single-hit tables, an empty list / count 0 / blank
  sum/min/max for collect; unique overlaps and disagreeing `any` rows: an error and blank
  outputs; priority: by the position of each output value in its `allowed` list, a `-`
  after every allowed value, ties by row order).
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrules.evaluation import Evaluator
from cxrules.loader import load_rules

# ----------------------------------------------------------------------------- values
# Each type has a pool of constants: (value as the reference compares it, spellings).
EXCEL_EPOCH = dt.date(1899, 12, 30)
D0 = dt.date(2026, 1, 1)

NUMBERS = [-3, 0, 1, 2, 2.5, 5, 7, 10, 12.75, 100]
TEXTS = ["VIP", "Gold", "Regular", "Churn risk", "贵宾", "Smith, J"]
DATES = [D0 + dt.timedelta(days=n) for n in (0, 1, 15, 31, 59, 365)]
# seconds -> spellings of the same clock length
DURATIONS = {
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
    if type_ == "text":
        return v.strip().casefold()
    return v


def pool(type_):
    return {
        "number": NUMBERS,
        "text": TEXTS,
        "boolean": [True, False],
        "date": DATES,
        "duration": sorted(DURATIONS),
    }[type_]


@st.composite
def spelling(draw, v, type_):
    """How a constant is written inside a cell."""
    if type_ == "number":
        if isinstance(v, int) and draw(st.booleans()):
            return f"{v}.0"
        return repr(v) if isinstance(v, float) else str(v)
    if type_ == "text":
        if "," in v:
            return draw(st.sampled_from([f'"{v}"', f"'{v}'"]))
        return draw(st.sampled_from([v, f'"{v}"', f"'{v}'"]))
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
    atoms: list = field(default_factory=list)  # empty and not negated: '-'
    negated: bool = False
    text: str = "-"


def atom_truth(a, v):
    """True / False / None (unknown): FEEL semantics of one atom against a value."""
    if isinstance(a, Blank):
        return v is None
    if isinstance(a, Cmp):
        if v is None:
            return {"=": False, "!=": True}.get(a.op)
        x = a.value
        return {
            "=": v == x,
            "!=": v != x,
            "<": v < x if a.op == "<" else None,
            "<=": v <= x if a.op == "<=" else None,
            ">": v > x if a.op == ">" else None,
            ">=": v >= x if a.op == ">=" else None,
        }[a.op]
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
        ops = ["=", "!=", "<", "<=", ">", ">="] if type_ in ORDERED else ["=", "!="]
        op = draw(st.sampled_from(ops))
        sp = draw(st.sampled_from([" ", ""]))
        return Cmp(op, norm(v, type_)), f"{op}{sp}{vs}"
    w = draw(st.sampled_from(pool(type_)))
    lo, hi = sorted([v, w])
    los, his = draw(spelling(lo, type_)), draw(spelling(hi, type_))
    lb = draw(st.sampled_from(["[", "(", "]"]))
    hb = draw(st.sampled_from(["]", ")", "["] if last else ["]", ")"]))
    return Rng(lo, hi, lb == "[", hb == "]"), f"{lb}{los}..{his}{hb}"


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
    parts = [draw(atoms(type_, last=(j == n - 1))) for j in range(n)]
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
    rules: list  # (cells, outputs, as_mapping)

    def yaml(self) -> str:
        q = lambda s: json.dumps(s, ensure_ascii=False)  # noqa: E731  (JSON strings are YAML)
        out = [f"decision: {self.name}"]
        if self.hit_text is not None:
            out.append(f"hit: {q(self.hit_text)}")
        out.append("inputs:")
        for n, t in self.inputs:
            out.append(f"  {n}: {{type: {t}}}")
        out.append("outputs:")
        for n, t, allowed in self.outputs:
            extra = f", allowed: [{', '.join(q(_out_text(a)) for a in allowed)}]" if allowed else ""
            out.append(f"  {n}: {{type: {t}{extra}}}")
        out.append("rules:")
        for cs, os_, as_map in self.rules:
            texts = [c.text for c in cs] + ["-" if o is None else _out_text(o) for o in os_]
            if as_map:
                names = [n for n, _ in self.inputs] + [n for n, _, _ in self.outputs]
                pairs = [f"{n}: {q(t)}" for n, t, c in zip(names, texts, cs + [None] * len(os_)) if c is None or c.atoms or c.negated]
                out.append("  - {" + ", ".join(pairs) + "}")
            else:
                out.append("  - [" + ", ".join(q(t) for t in texts) + "]")
        return "\n".join(out) + "\n"


def _out_text(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


@st.composite
def specs(draw):
    hit = draw(st.sampled_from(list(HIT_SPELLINGS)))
    hit_text = draw(st.sampled_from(HIT_SPELLINGS[hit]))
    n_in = draw(st.integers(1, 3))
    inputs = [(f"in{k}", draw(st.sampled_from(TYPES))) for k in range(n_in)]
    n_out = draw(st.integers(1, 2))
    outputs = []
    for k in range(n_out):
        if hit in ("collect sum", "collect min", "collect max"):
            t = "number"
        else:
            t = draw(st.sampled_from(["number", "text"]))
        allowed = None
        if hit == "priority" and (k == 0 or draw(st.booleans())):
            allowed = draw(st.permutations(OUT_NUMBERS if t == "number" else OUT_TEXTS))[: draw(st.integers(2, 4))]
        outputs.append((f"out{k}", t, allowed))
    rules = []
    for _ in range(draw(st.integers(1, 8))):
        cs = [draw(cells(t)) for _, t in inputs]
        os_ = []
        for _, t, allowed in outputs:
            choices = allowed or (OUT_NUMBERS if t == "number" else OUT_TEXTS)
            os_.append(draw(st.one_of(st.none(), st.sampled_from(choices)) if draw(st.integers(0, 5)) == 0 else st.sampled_from(choices)))
        rules.append((cs, os_, draw(st.integers(0, 4)) == 0))
    return Spec(f"t{next(_counter)}", hit, hit_text, inputs, outputs, rules)


def constants(spec: Spec, k: int) -> list:
    """Every constant the table's cells compare input k with (for boundary values)."""
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
    """(raw value as a workbook row gives it, the reference's typed value)."""
    type_ = spec.inputs[k][1]
    if draw(st.integers(0, 6)) == 0:
        return draw(st.sampled_from([None, "", "   "])), None
    consts = constants(spec, k)
    if type_ == "number":
        base = draw(st.sampled_from(consts or NUMBERS)) if draw(st.booleans()) else draw(st.sampled_from(NUMBERS))
        v = base + draw(st.sampled_from([0, 0, 0, 1, -1, 0.5, -0.5]))
        raw = draw(st.sampled_from([v, float(v), str(v)]))
        return raw, v
    if type_ == "text":
        if consts and draw(st.booleans()):
            base = draw(st.sampled_from([c for c in TEXTS if c.casefold() in consts] or TEXTS))
        else:
            base = draw(st.sampled_from(TEXTS + ["Other", "vip gold"]))
        raw = draw(st.sampled_from([base, base.upper(), base.lower(), base.title(), f"  {base} "]))
        return raw, raw.strip().casefold()
    if type_ == "boolean":
        v = draw(st.booleans())
        raw = draw(st.sampled_from([v, "TRUE" if v else "FALSE", "yes" if v else "no", int(v)]))
        return raw, v
    if type_ == "date":
        base = draw(st.sampled_from(consts or DATES)) if draw(st.booleans()) else draw(st.sampled_from(DATES))
        v = base + dt.timedelta(days=draw(st.sampled_from([0, 0, 1, -1])))
        raw = draw(st.sampled_from([v, v.isoformat(), (v - EXCEL_EPOCH).days, dt.datetime(v.year, v.month, v.day)]))
        return raw, v
    base = draw(st.sampled_from(consts or sorted(DURATIONS))) if draw(st.booleans()) else draw(st.sampled_from(sorted(DURATIONS)))
    secs = base + draw(st.sampled_from([0, 0, 1800, -1800]))
    if secs in DURATIONS and draw(st.booleans()):
        raw = draw(st.sampled_from(DURATIONS[secs]))
    elif secs % 21600 == 0 and draw(st.booleans()):
        raw = secs / 86400  # Excel keeps durations as days
    else:
        raw = f"{secs // 60}m" if secs >= 0 else None
        if raw is None:
            return None, None
    return raw, secs


# ----------------------------------------------------------------------------- the reference
def _and(items):
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def reference(spec: Spec, values: list[list]):
    """(outputs per output name, fired, problems) as the documented semantics give them."""
    n = len(values)
    outs = {o: [None] * n for o, _, _ in spec.outputs}
    fired = [None] * n
    problems = []
    name = spec.name
    for i, vals in enumerate(values):
        matched = [(k + 1, os_) for k, (cs, os_, _) in enumerate(spec.rules) if all(cell_truth(c, v) is True for c, v in zip(cs, vals))]
        if spec.hit in ("first", "priority", "unique", "any"):
            if not matched:
                problems.append((i, None, f"no rule row of '{name}' matched this row", name, "warning"))
                continue
            if spec.hit == "priority":

                def rank(m):
                    r = []
                    for (_, _, allowed), v in zip(spec.outputs, m[1]):
                        if allowed:
                            r.append(allowed.index(v) if v in allowed else len(allowed))
                    return (tuple(r), m[0])

                matched.sort(key=rank)
            elif spec.hit in ("unique", "any") and len(matched) > 1:
                if spec.hit == "unique" or any(m[1] != matched[0][1] for m in matched):
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
            agg = spec.hit.split(" ")[1] if " " in spec.hit and spec.hit != "rule order" else None
            if agg == "count":
                outs[o][i] = len(vs)
            elif agg == "sum":
                total = 0
                for v in vs:
                    total = total + v
                outs[o][i] = total if vs else None
            elif agg == "min":
                outs[o][i] = min(vs) if vs else None
            elif agg == "max":
                outs[o][i] = max(vs) if vs else None
            else:
                outs[o][i] = vs
    return outs, fired, problems


# ----------------------------------------------------------------------------- harness
_DIR = Path(tempfile.mkdtemp(prefix="cxrules-prop-"))


def run_both(spec: Spec, rows: list[tuple[list, list]]):
    path = _DIR / f"{spec.name}.yaml"
    path.write_text(spec.yaml(), encoding="utf-8")
    rs, problems = load_rules(path)
    assert not problems.errors, "\n".join(map(str, problems)) + "\n" + spec.yaml()
    raw_rows = [{n: raw for (n, _), raw in zip(spec.inputs, raws)} for raws, _ in rows]
    ev = Evaluator(rs).evaluate(raw_rows, [spec.name])
    got_outs = {o: ev.columns[o] for o, _, _ in spec.outputs}
    got_problems = sorted((p.index, p.name, p.message, p.table, p.severity) for p in ev.problems)
    want_outs, want_fired, want_problems = reference(spec, [vals for _, vals in rows])
    return (got_outs, ev.fired[spec.name], got_problems), (want_outs, want_fired, sorted(want_problems))


def check(spec: Spec, rows):
    got, want = run_both(spec, rows)
    for i in range(len(rows)):
        g = ({o: v[i] for o, v in got[0].items()}, got[1][i], [p for p in got[2] if p[0] == i])
        w = ({o: v[i] for o, v in want[0].items()}, want[1][i], [p for p in want[2] if p[0] == i])
        assert g == w, f"row {rows[i][0]!r}\n{spec.yaml()}\nengine:    {g}\nreference: {w}"


@st.composite
def cases(draw):
    spec = draw(specs())
    rows = []
    for _ in range(draw(st.integers(1, 25))):
        pairs = [draw(raw_value(spec, k)) for k in range(len(spec.inputs))]
        rows.append(([r for r, _ in pairs], [norm(v, t) for (_, v), (_, t) in zip(pairs, spec.inputs)]))
    return spec, rows


@settings(max_examples=int(os.environ.get("CXRULES_PROPERTY_EXAMPLES", "400")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_engine_agrees_with_reference(case):
    spec, rows = case
    check(spec, rows)
