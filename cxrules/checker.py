"""Meaning-level checks of a loaded rule set: overlaps, unreachable rows, gaps, allowed values.

Each input's possible values are cut into elementary pieces at every boundary its cells
mention (points, the open intervals between them, and blank; for text each literal, "any
other text" and blank). Every cell is evaluated with `model.test_truth` on one value of
each piece, so a rule row becomes a box: one set of pieces per input, kept as a bitmask.
The checker therefore agrees with the engine's semantics (not(...), blanks, open ends)
by construction. Overlaps are box intersections; unreachable rows and gaps are found by
recursive box subtraction, which never enumerates the whole product of pieces.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from .compiler import priority_rank
from .model import ANY, COLLECT, FIRST, PRIORITY, SINGLE_HIT, UNIQUE, Cmp, Input, Range, RuleSet, Table, test_truth
from .problems import ERROR, WARNING, Problem, did_you_mean
from .unary import split_values, unquote
from .values import Duration, display, encode, format_duration, norm_text

BUDGET = 300_000  # subtraction steps (about 1 µs each) per check of one table; beyond it: "too large"
MAX_GAP_BOXES = 400  # uncovered boxes collected before giving up on counting them
SHOWN_GAPS = 5  # gap problems per table; the rest are counted in one more problem

_DAY = 86400
_EPOCH = dt.date(1970, 1, 1)
_NEUTRAL = {"number": 1, "date": (dt.date(2026, 1, 1) - _EPOCH).days, "datetime": (dt.datetime(2026, 1, 1, 9) - dt.datetime(1970, 1, 1)).total_seconds(), "duration": 3600}
# The step added beside an open end, so examples stay readable (45, not 30.0000001).
_UNIT = {"number": 1, "date": 1, "datetime": _DAY, "duration": 3600}


class _TooLarge(Exception):
    pass


class _Budget:
    def __init__(self, steps: int = BUDGET):
        self.left = steps

    def spend(self, n: int = 1):
        self.left -= n
        if self.left < 0:
            raise _TooLarge


# ----------------------------------------------------------------- one input's pieces
@dataclass
class _Piece:
    kind: str  # lt, pt, between, gt, all, blank, value, other
    rep: Any  # an encoded value inside the piece (None = blank)
    lo: Any = None
    hi: Any = None


@dataclass
class Domain:
    """The pieces of one input's values, in value order, blank last."""

    input: Input
    pieces: list[_Piece]
    ordered: bool
    finite: bool  # only the listed values can occur (allowed, or what a decision gives)
    spelling: dict = field(default_factory=dict)  # encoded text -> as written
    blank_possible: bool = True
    integral: bool = False  # a number column whose cells name only whole numbers
    origin: str = ""  # for finite domains: where the values come from, in words

    def __post_init__(self):
        self.full = (1 << len(self.pieces)) - 1
        self.blank = 1 << (len(self.pieces) - 1)
        self.nonblank = self.full & ~self.blank
        # Where the cells name only whole numbers, values between them (4.5 between [2..4]
        # and >= 5) are set apart: counts never hold them, so such gaps are reported once, quietly.
        self.whole = 0
        for k, p in enumerate(self.pieces[:-1]):
            if not (self.integral and isinstance(p.rep, float) and not p.rep.is_integer()):
                self.whole |= 1 << k
        # Examples prefer an inside value, then a boundary, then an open end, then a fraction; blank last.
        rank = {"between": 0, "value": 0, "pt": 1, "other": 2, "lt": 3, "gt": 3, "all": 3, "blank": 9}
        self.preference = sorted(range(len(self.pieces)), key=lambda k: (rank[self.pieces[k].kind] if self.whole >> k & 1 or k == len(self.pieces) - 1 else 4, k))

    def mask(self, test) -> int:
        m = 0
        for k, p in enumerate(self.pieces):
            if test_truth(test, p.rep) is True:
                m |= 1 << k
        return m

    def pick(self, mask: int) -> Any:
        for k in self.preference:
            if mask >> k & 1:
                return self.pieces[k].rep
        raise ValueError("empty piece set")

    def show(self, v) -> str:
        if v is None:
            return "blank"
        t = self.input.type
        if t == "text":
            if isinstance(v, _Other):
                return "(any other text)"
            return self.spelling.get(v, v)
        return show_value(v, t)

    def describe(self, mask: int) -> str | None:
        """A piece set in words ('in [30..90]', '>= 2000 or blank', '= VIP'); None if it is every value."""
        ps = self.pieces
        for k in range(1, len(ps) - 2):  # a fraction between two covered values is not worth a word
            if not self.whole >> k & 1 and mask >> (k - 1) & 1 and mask >> (k + 1) & 1:
                mask |= 1 << k
        if mask & self.nonblank == self.nonblank:
            return None  # blanks are reported on their own
        parts: list[str] = []
        if self.ordered:
            k = 0
            while k < len(ps) - 1:
                if not mask >> k & 1:
                    k += 1
                    continue
                j = k
                while j + 1 < len(ps) - 1 and mask >> (j + 1) & 1:
                    j += 1
                parts.append(self._interval(ps[k], ps[j]))
                k = j + 1
        else:
            inside = [self.show(p.rep) for k, p in enumerate(ps[:-1]) if mask >> k & 1 and p.kind != "other"]
            if any(p.kind == "other" and mask >> k & 1 for k, p in enumerate(ps[:-1])):
                out = [self.show(p.rep) for k, p in enumerate(ps[:-1]) if not mask >> k & 1]
                parts.append(f"!= {out[0]}" if len(out) == 1 else f"is not {_and(out, 'or')}")
            elif inside:
                parts.append(f"= {inside[0]}" if len(inside) == 1 else f"is {_and(inside, 'or')}")
        if mask & self.blank:
            parts.append("is blank")
        return " or ".join(parts)

    def _interval(self, a: _Piece, b: _Piece) -> str:
        t = self.input.type
        lo = None if a.kind in ("lt", "all") else a.lo
        lo_closed = a.kind == "pt"
        hi = None if b.kind in ("gt", "all") else b.hi
        hi_closed = b.kind == "pt"
        if lo is None and hi is None:
            return "is not blank"
        if lo is None:
            return f"{'<=' if hi_closed else '<'} {show_value(hi, t)}"
        if hi is None:
            return f"{'>=' if lo_closed else '>'} {show_value(lo, t)}"
        if lo == hi:
            return f"= {show_value(lo, t)}"
        return f"in {'[' if lo_closed else '('}{show_value(lo, t)}..{show_value(hi, t)}{']' if hi_closed else ')'}"

    def values_text(self) -> str:
        return ", ".join(self.show(p.rep) for p in self.pieces if p.kind == "value")


class _Other(str):
    """The representative of "any text no cell names"."""


def show_value(v, type_: str) -> str:
    """An encoded value as a manager reads it: dates ISO, durations 7d / 72h."""
    if v is None:
        return "blank"
    if type_ == "date":
        return (_EPOCH + dt.timedelta(days=int(v))).isoformat()
    if type_ == "datetime":
        return display(dt.datetime(1970, 1, 1) + dt.timedelta(seconds=v))
    if type_ == "duration":
        if v and v % _DAY == 0 and abs(v) >= 4 * _DAY:
            return f"{int(v // _DAY)}d"
        return format_duration(Duration.from_seconds(v))
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return display(v)


def _decoded(v, type_: str):
    """An encoded value back as a typed value (the engine's input form)."""
    if v is None or isinstance(v, _Other):
        return v
    if type_ == "date":
        return _EPOCH + dt.timedelta(days=int(v))
    if type_ == "datetime":
        return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=v)
    if type_ == "duration":
        return Duration.from_seconds(v)
    return v


def _steps(type_: str, width: float, grid: float | None) -> list[float]:
    if type_ == "number":
        top = math.ceil(math.log10(width)) if width > 0 else 0
        out = [10.0**e for e in range(top, -7, -1)]
    elif type_ == "date":
        out = [1]
    else:  # seconds: whole days, hours, minutes, seconds
        out = [_DAY, 3600, 60, 1, 0.001]
    return [s for s in out if grid is None or s >= grid and (s / grid).is_integer()] if grid else out


def _between(a, b, type_: str, grid: float | None):
    """The roundest value strictly between a and b, nearest the middle; None if none."""
    mid = (a + b) / 2
    for s in _steps(type_, b - a, grid):
        k_lo, k_hi = math.floor(a / s) + 1, math.ceil(b / s) - 1
        if k_lo <= k_hi:
            k = min(max(math.floor(mid / s + 0.5), k_lo), k_hi)
            v = k * s
            v = int(v) if s >= 1 and float(v).is_integer() else round(v, 6)
            if a < v < b:  # float rounding may land on an end; then try a finer step
                return v
    return None if grid or not a < mid < b else mid


def _on_grid(v, grid) -> bool:
    return grid is None or float(v / grid).is_integer()


def _ordered_pieces(points, type_: str, grid, lo_bound, hi_bound) -> list[_Piece]:
    pts = sorted(set(points) | {b for b in (lo_bound, hi_bound) if b is not None})
    unit = _UNIT[type_]
    if grid:
        unit = max(unit, grid)
    if not pts:
        neutral = _NEUTRAL[type_]
        return [_Piece("all", neutral if _on_grid(neutral, grid) else 0)]
    out = []
    if lo_bound is None:
        p = pts[0]
        rep = (math.ceil(p / unit) - 1) * unit  # 6 below 7, and 7 below 7.5
        if not rep < p:  # too large a number for the unit to count
            rep = p - abs(p)
        out.append(_Piece("lt", int(rep) if float(rep).is_integer() else rep, hi=p))
    for k, p in enumerate(pts):
        inside = (lo_bound is None or p >= lo_bound) and (hi_bound is None or p <= hi_bound)
        if inside and _on_grid(p, grid):
            out.append(_Piece("pt", p, lo=p, hi=p))
        if k + 1 < len(pts):
            q = pts[k + 1]
            if (lo_bound is None or p >= lo_bound) and (hi_bound is None or q <= hi_bound):
                rep = _between(p, q, type_, grid)
                if rep is not None:
                    out.append(_Piece("between", rep, lo=p, hi=q))
    if hi_bound is None:
        p = pts[-1]
        rep = (math.floor(p / unit) + 1) * unit
        if not rep > p:
            rep = p + abs(p)
        out.append(_Piece("gt", int(rep) if float(rep).is_integer() else rep, lo=p))
    return out


# ----------------------------------------------------------------- building domains
@dataclass
class _Source:
    """What the checker knows of an input's possible values beyond its cells."""

    values: list | None = None  # the only values that can occur (encoded), if known
    spelling: dict = field(default_factory=dict)
    blank_possible: bool = True
    grid: float | None = None  # values are multiples of this (days_since, dates)
    lo: Any = None
    hi: Any = None
    origin: str = ""  # words for "the values <input> can take"


def _source(inp: Input, rs: RuleSet | None) -> _Source:
    src = _Source()
    t = inp.type
    if t == "date":
        src.grid = 1
    if inp.derive is not None:
        if inp.derive.func == "days_since":
            src.grid = 1 if t == "number" else _DAY
        elif inp.derive.func == "percentile":
            src.lo, src.hi = 0, 100
        elif inp.derive.func in ("days_in_a_row", "count_last_days"):
            src.grid, src.lo = 1, 0
    up = rs.tables.get(inp.decision) if (rs is not None and inp.decision) else None
    if up is not None:
        out = inp.output or inp.name
        o = up.output(out)
        if o is None:  # a due date: computed, blank when its base is blank
            pass
        elif up.hit in SINGLE_HIT:
            k = up.outputs.index(o)
            vals = [r.outputs[k] for r in up.rules]
            src.values = _unique([encode(v, t) for v in vals if v is not None])
            src.spelling = {encode(v, t): display(v) for v in vals if isinstance(v, str)}
            # Only a '-' row gives a blank: where no row matches, the evaluator marks the row
            # unusable and skips the tables that read it (the gap is reported upstream, once).
            src.blank_possible = any(v is None for v in vals)
            src.origin = f"decision '{up.name}' gives"
        elif up.hit == COLLECT and up.aggregate == "count":
            src.grid, src.lo, src.blank_possible = 1, 0, False
        elif up.hit == COLLECT and up.aggregate:
            k = up.outputs.index(o)
            src.blank_possible = not any(all(x.is_any for x in r.tests) and r.outputs[k] is not None for r in up.rules)
    if inp.allowed:
        allowed = [encode(a, t) for a in inp.allowed]
        spell = {encode(a, t): display(a) for a in inp.allowed if isinstance(a, str)}
        if src.values is None:
            src.values, src.origin = _unique(allowed), "allowed"
        else:  # values outside allowed are refused before the table runs
            src.values = [v for v in src.values if v in set(allowed)]
        src.spelling = {**src.spelling, **spell}
    if src.values is not None and t == "boolean":
        src.values = None
    return src


def _unique(xs):
    seen, out = set(), []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def _literals(table: Table, col: int) -> tuple[list, list]:
    """Boundary values and equality literals mentioned in one input column."""
    points, lits = [], []
    for r in table.rules:
        for a in r.tests[col].atoms:
            if isinstance(a, Cmp):
                points.append(a.value)
                if a.op in ("=", "!="):
                    lits.append(a.value)
            elif isinstance(a, Range):
                points += [a.lo, a.hi]
    return points, lits


def _cell_spelling(table: Table, col: int) -> dict:
    out = {}
    for r in table.rules:
        for part in _cell_values(r.tests[col].text):
            out.setdefault(norm_text(part), part)
    return out


def _cell_values(text: str) -> list[str]:
    s = (text or "").strip()
    if s.lower().startswith("not") and s.endswith(")") and "(" in s:
        s = s[s.index("(") + 1 : -1]
    try:
        return [unquote(p)[0] for p in split_values(s) if p]
    except ValueError:
        return []


def build_domain(table: Table, col: int, rs: RuleSet | None = None) -> Domain:
    inp = table.inputs[col]
    t = inp.type
    src = _source(inp, rs)
    points, lits = _literals(table, col)
    spelling = {**_cell_spelling(table, col), **src.spelling} if t == "text" else {}
    if t == "boolean":
        pieces = [_Piece("value", True), _Piece("value", False)]
        finite = True
    elif src.values is not None:
        pieces = [_Piece("value", v) for v in src.values]
        finite = True
    elif t == "text":
        lits = _unique(lits)
        other, n = "other text", 1
        while other in lits:
            other, n = f"other text {n}", n + 1
        pieces = [_Piece("value", v) for v in lits] + [_Piece("other", _Other(other))]
        finite = False
    else:
        pieces = _ordered_pieces(points, t, src.grid, src.lo, src.hi)
        finite = False
    pieces.append(_Piece("blank", None))
    integral = t == "number" and all(float(p).is_integer() for p in points)
    return Domain(inp, pieces, t not in ("text", "boolean") and src.values is None, finite, spelling, src.blank_possible, integral, src.origin)


# ----------------------------------------------------------------- boxes
def _volume(box) -> int:
    v = 1
    for m in box:
        v *= m.bit_count()
    return v


def _meets(a, b) -> bool:
    for x, y in zip(a, b):
        if not x & y:
            return False
    return True


def _inter(a, b):
    return tuple(x & y for x, y in zip(a, b))


def _contains(outer, inner) -> bool:
    for x, y in zip(outer, inner):
        if y & ~x:
            return False
    return True


def _uncovered(box, boxes, budget: _Budget, limit: int | None = 1):
    """Disjoint boxes covering `box` minus the union of `boxes` (up to `limit` of them).

    Box subtraction with an explicit stack: `box \\ b` is, for each input k, the part
    that agrees with b before k and leaves b at k. Only boxes that meet `box` are kept,
    largest first, so a catch-all row ends the search at once.
    """
    boxes = sorted((_inter(b, box) for b in boxes if _meets(b, box)), key=_volume, reverse=True)
    out = []
    stack = [(box, 0)]
    n = len(boxes)
    while stack:
        cur, i = stack.pop()
        start = i
        while i < n and not _meets(cur, boxes[i]):
            i += 1
        budget.spend(1 + i - start)
        if i == n:
            out.append(cur)
            if limit is not None and len(out) >= limit:
                return out, True
            continue
        b = boxes[i]
        pieces = []
        prefix = list(cur)
        for k in range(len(cur)):
            rest = cur[k] & ~b[k]
            if rest:
                pieces.append((tuple(prefix[:k]) + (rest,) + cur[k + 1 :], i + 1))
            prefix[k] = cur[k] & b[k]
        budget.spend(len(pieces))
        stack.extend(reversed(pieces))
    return out, False


def _covered(box, boxes, budget) -> bool:
    return not _uncovered(box, boxes, budget, 1)[0]


def _merge(boxes: list) -> list:
    """Join uncovered boxes that differ in one input only, so a gap reads as one region."""
    if not boxes:
        return boxes
    d = len(boxes[0])
    changed = True
    while changed and len(boxes) > 1:
        changed = False
        for k in range(d):
            groups: dict = {}
            for pos, b in enumerate(boxes):
                groups.setdefault(b[:k] + b[k + 1 :], []).append(pos)
            if all(len(g) == 1 for g in groups.values()):
                continue
            merged = []
            for g in sorted(groups.values()):
                m = 0
                for pos in g:
                    m |= boxes[pos][k]
                first = boxes[g[0]]
                merged.append(first[:k] + (m,) + first[k + 1 :])
            boxes = merged
            changed = True
    return boxes


# ----------------------------------------------------------------- findings
@dataclass
class Finding:
    """One result of the analysis of a table, before it is worded as a Problem."""

    kind: str  # overlap, conflict, hidden, empty-cell, gap, fraction-gap, blank-gap, too-large
    rows: tuple = ()  # rule indexes (1-based, as in the file)
    example: dict = field(default_factory=dict)  # input name -> encoded value (None = blank)
    inputs: tuple = ()  # the inputs concerned (blank-gap, empty-cell)
    more: int = 0  # gaps: further regions not listed (-1 = too many to count)
    what: str = ""  # too-large: which check
    box: tuple = ()  # gaps: the uncovered region, one piece set per input
    together: bool = False  # blank-gap: only when these inputs are blank at the same time


@dataclass
class TableAnalysis:
    table: Table
    domains: list[Domain]
    boxes: list  # per rule: tuple of masks
    findings: list[Finding] = field(default_factory=list)

    def of(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def example_values(self, f: Finding) -> dict:
        """The example as typed values, the form the evaluator and model.matches use after encode."""
        return {d.input.name: _decoded(f.example.get(d.input.name), d.input.type) for d in self.domains}


def analyse_table(table: Table, rs: RuleSet | None = None, budget: int | None = None) -> TableAnalysis:
    """Overlaps, hidden rows and gaps of one table (no wording; see check_ruleset).

    `rs` tells what inputs read from other decisions can be; without it any value of the
    input's type is assumed.
    """
    budget = budget or BUDGET
    domains = [build_domain(table, k, rs) for k in range(len(table.inputs))]
    boxes = [tuple(d.mask(t) for d, t in zip(domains, r.tests)) for r in table.rules]
    an = TableAnalysis(table, domains, boxes)
    rules = table.rules
    live = [k for k, b in enumerate(boxes) if all(b)]

    def example(box):
        return {d.input.name: d.pick(m) for d, m in zip(domains, box)}

    for k, b in enumerate(boxes):
        dead = tuple(d.input.name for d, m in zip(domains, b) if not m)
        if dead:
            an.findings.append(Finding("empty-cell", (rules[k].index,), inputs=dead))

    # overlaps: unique tables, and any tables whose matching rows disagree
    if table.hit in (UNIQUE, ANY):
        for pos, j in enumerate(live):
            clash = [i for i in live[:pos] if _meets(boxes[i], boxes[j]) and (table.hit == UNIQUE or rules[i].outputs != rules[j].outputs)]
            if clash:
                i = clash[0]
                kind = "overlap" if table.hit == UNIQUE else "conflict"
                # rows: every earlier clashing row, then this one; the example is for the first pair
                an.findings.append(Finding(kind, tuple(rules[x].index for x in clash) + (rules[j].index,), example(_inter(boxes[i], boxes[j]))))

    # hidden rows: first in file order, priority in the engine's order
    if table.hit in (FIRST, PRIORITY):
        order = live
        if table.hit == PRIORITY:
            order = sorted(live, key=lambda k: (priority_rank(table, rules[k].outputs), rules[k].index))
        bud, mini = _Budget(budget), _Budget(budget // 2)
        try:
            for pos, j in enumerate(order):
                before = [i for i in order[:pos] if _meets(boxes[i], boxes[j])]
                if not before:
                    continue
                whole = next((i for i in before if _contains(boxes[i], boxes[j])), None)
                if whole is not None:
                    an.findings.append(Finding("hidden", (rules[whole].index, rules[j].index)))
                    continue
                if not _covered(boxes[j], [boxes[i] for i in before], bud):
                    continue
                # Name a minimal set of rows that hide it: drop the latest ones while still covered
                # (on a small budget of its own: a longer list is still a true answer).
                keep = list(before)
                try:
                    for i in reversed(before if mini.left > 0 else []):
                        rest = [x for x in keep if x != i]
                        if rest and _covered(boxes[j], [boxes[x] for x in rest], mini):
                            keep = rest
                except _TooLarge:
                    pass
                an.findings.append(Finding("hidden", tuple(rules[i].index for i in sorted(keep, key=lambda x: rules[x].index)) + (rules[j].index,)))
        except _TooLarge:
            an.findings.append(Finding("too-large", what="unreachable rows"))

    # gaps: single-hit tables only; blanks apart, once per input
    if table.hit in SINGLE_HIT and rules:
        live_boxes = [boxes[k] for k in live]
        universe = tuple(d.nonblank for d in domains)
        bud = _Budget(budget)
        try:
            whole = tuple(d.whole for d in domains)
            if all(whole):
                found, cut = _uncovered(whole, live_boxes, bud, MAX_GAP_BOXES)
                found = _merge(found)
                shown = found[:SHOWN_GAPS]
                for n, g in enumerate(shown):
                    more = 0
                    if n == len(shown) - 1:  # the last one shown counts the rest (-1: too many to count)
                        more = -1 if cut else len(found) - len(shown)
                    an.findings.append(Finding("gap", (), example(g), more=more, box=g))
            # Values between whole numbers: one quieter report, as counts rarely hold them.
            if all(universe) and whole != universe:
                w, _ = _uncovered(universe, live_boxes + ([whole] if all(whole) else []), bud, 1)
                if w:
                    ex = example(w[0])
                    names = tuple(d.input.name for d in domains if not (d.whole & w[0][domains.index(d)]))
                    an.findings.append(Finding("fraction-gap", (), ex, inputs=names))
            blanks, first_example = [], None
            for k, d in enumerate(domains):
                if not d.blank_possible:
                    continue
                box = universe[:k] + (d.blank,) + universe[k + 1 :]
                if not all(box):
                    continue
                w, _ = _uncovered(box, live_boxes, bud, 1)
                if w:
                    blanks.append(d.input.name)
                    first_example = first_example or example(w[0])
            if blanks:
                an.findings.append(Finding("blank-gap", (), first_example, inputs=tuple(blanks)))
            else:  # no single blank falls through; several at once still may
                full = tuple(d.nonblank | (d.blank if d.blank_possible else 0) for d in domains)
                w, _ = _uncovered(full, live_boxes + [universe], bud, 1)
                if w:
                    ex = example(w[0])
                    names = tuple(n for n, v in ex.items() if v is None)
                    an.findings.append(Finding("blank-gap", (), ex, inputs=names, together=True))
        except _TooLarge:
            an.findings.append(Finding("too-large", what="gaps"))
    return an


# ----------------------------------------------------------------- wording
def _and(items, word="and") -> str:
    items = [str(x) for x in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


def _rows(indexes, most: int = 6) -> str:
    if len(indexes) > most:
        return "rows " + ", ".join(str(x) for x in indexes[: most - 1]) + f" and {len(indexes) - most + 1} more"
    return ("row " if len(indexes) == 1 else "rows ") + _and(indexes)


def _example_text(an: TableAnalysis, ex: dict) -> str:
    return ", ".join(f"{d.input.name}={d.show(ex.get(d.input.name))}" for d in an.domains) or "any input"


def _region_text(an: TableAnalysis, box) -> str:
    said = [(d.input.name, d.describe(m)) for d, m in zip(an.domains, box)]
    said = [f"{n} {w}" for n, w in said if w]
    return ", ".join(said) if said else "any input"


def _outputs_text(table: Table, a, b) -> str:
    diffs = []
    for o, x, y in zip(table.outputs, a.outputs, b.outputs):
        if x != y:
            diffs.append(f"{o.name}: {display(x) or '-'} vs {display(y) or '-'}")
    return "; ".join(diffs)


def _problems_of(an: TableAnalysis, skip_cells: set) -> list[Problem]:
    t = an.table
    by_index = {r.index: r for r in t.rules}
    out = []
    for f in an.findings:
        if f.kind in ("overlap", "conflict"):
            *earlier, j = f.rows
            i = earlier[0]
            rj = by_index[j]
            ex = _example_text(an, f.example)
            head = f"rows {i} and {j} both match {ex}" if len(earlier) == 1 else f"row {j} overlaps {_rows(earlier)}; e.g. rows {i} and {j} both match {ex}"
            if f.kind == "overlap":
                msg, hint = head, f"a unique table allows one matching row: make the rows exclusive, or use hit: first if row {i} should win"
            else:
                msg = head + f", but they give different results ({_outputs_text(t, by_index[i], rj)})"
                hint = "an 'any' table needs matching rows to agree: make the rows exclusive or give them the same result"
            out.append(Problem(msg, ERROR, "overlap", rj.loc.file, rj.loc.line, t.name, j, suggestion=hint))
        elif f.kind == "hidden":
            *hiders, j = f.rows
            rj = by_index[j]
            if t.hit == PRIORITY:
                who = f"{_rows(hiders)} {'wins' if len(hiders) == 1 else 'win'} by priority"
                hint = f"delete row {j}, or change its outputs or the allowed order if it should win"
            else:
                who = f"{_rows(hiders)} {'comes' if len(hiders) == 1 else 'come'} first"
                hint = f"delete row {j}, or move it above row {hiders[0]} if it should win"
            how = "matches" if len(hiders) == 1 else "together match"
            msg = f"row {j} can never be used: {who} and {how} everything row {j} matches"
            out.append(Problem(msg, WARNING, "unreachable", rj.loc.file, rj.loc.line, t.name, j, suggestion=hint))
        elif f.kind == "empty-cell":
            r = by_index[f.rows[0]]
            for name in f.inputs:
                col = [i.name for i in t.inputs].index(name)
                if (r.index, name) in skip_cells:
                    continue  # an allowed-value problem already explains it
                d = an.domains[col]
                cell = r.tests[col].text
                if d.finite and d.values_text():
                    why = f"matches none of the values {name} can take ({d.values_text()})"
                elif d.finite:
                    why = f"matches no value {name} can take"
                else:
                    why = "matches no value"
                line = r.cell_locs[col].line if col < len(r.cell_locs) else r.loc.line
                out.append(Problem(f"row {r.index} can never be used: its {name} cell '{cell}' {why}", WARNING, "unreachable", r.loc.file, line, t.name, r.index, name, suggestion="fix the cell or delete the row"))
        elif f.kind == "gap":
            msg = f"no row matches {_region_text(an, f.box)}; e.g. {_example_text(an, f.example)}"
            if f.more:
                more = "many" if f.more < 0 else str(f.more)
                msg += f"; {more} more uncovered region{'s' if f.more != 1 else ''} not listed"
            out.append(Problem(msg, WARNING, "gap", t.loc.file, t.loc.line, t.name, suggestion=_default_hint(t)))
        elif f.kind == "fraction-gap":
            names = f.inputs
            msg = f"no row matches some values between whole numbers, e.g. {_example_text(an, f.example)}"
            hint = f"ignore this if {_and(names, 'and')} always {'holds' if len(names) == 1 else 'hold'} whole numbers; otherwise make neighbouring ranges meet, like < 5 and >= 5"
            out.append(Problem(msg, WARNING, "gap", t.loc.file, t.loc.line, t.name, column=names[0] if len(names) == 1 else None, suggestion=hint))
        elif f.kind == "blank-gap":
            names = f.inputs
            both = "both" if len(names) == 2 else "all"
            when = f"{_and(names, 'and')} are {both} blank" if f.together else f"{_and(names, 'or')} is blank"
            msg = f"no row matches when {when}, e.g. {_example_text(an, f.example)}"
            col = names[0] if len(names) == 1 else None
            out.append(Problem(msg, WARNING, "blank-gap", t.loc.file, t.loc.line, t.name, column=col, suggestion=_default_hint(t) + ", or make sure the value is always filled in"))
        elif f.kind == "too-large":
            msg = f"not checked for {f.what}: table too large ({len(t.rules)} rows, {len(t.inputs)} inputs)"
            out.append(Problem(msg, WARNING, "too-large", t.loc.file, t.loc.line, t.name))
    return out


def _default_hint(t: Table) -> str:
    return "add a last row with '-' in every input to give such rows a default" if t.hit in (FIRST, PRIORITY) else "add rows for these inputs"


# ----------------------------------------------------------------- value checks
def _allowed_problems(t: Table, domains: list[Domain]) -> tuple[list[Problem], set]:
    """Cells naming values an input or output cannot have; also the (row, input) cells flagged."""
    out, flagged = [], set()
    for r in t.rules:
        for col, (inp, test) in enumerate(zip(t.inputs, r.tests)):
            d = domains[col]
            if inp.type == "boolean" or not d.finite:
                continue
            known = {p.rep for p in d.pieces if p.kind == "value"}
            allowed = {encode(a, inp.type) for a in inp.allowed} if inp.allowed else None
            written = {norm_text(w): w for w in _cell_values(test.text)} if inp.type == "text" else {}
            for a in test.atoms:
                if not (isinstance(a, Cmp) and a.op in ("=", "!=")) or a.value in known:
                    continue
                shown = written.get(a.value, show_value(a.value, inp.type))
                line = r.cell_locs[col].line if col < len(r.cell_locs) else r.loc.line
                if allowed is not None and a.value not in allowed:
                    choices = [display(x) for x in inp.allowed]
                    msg, sev = f"'{shown}' is not an allowed {inp.name}", ERROR
                else:  # allowed, or no list at all, but the decision it comes from never gives it
                    choices = [d.show(p.rep) for p in d.pieces if p.kind == "value"]
                    msg, sev = f"'{shown}' is never a value of {inp.name}: {d.origin} {', '.join(choices) or 'no value'}", WARNING
                hint = did_you_mean(str(shown), choices) or (f"{inp.name} can be: {', '.join(choices)}" if choices else None)
                out.append(Problem(msg, sev, "allowed", r.loc.file, line, t.name, r.index, inp.name, suggestion=hint))
                flagged.add((r.index, inp.name))
        for col, (o, v) in enumerate(zip(t.outputs, r.outputs)):
            if not o.allowed or v is None:
                continue
            if encode(v, o.type) in {encode(a, o.type) for a in o.allowed}:
                continue
            k = len(t.inputs) + col
            line = r.cell_locs[k].line if k < len(r.cell_locs) else r.loc.line
            choices = [display(a) for a in o.allowed]
            hint = did_you_mean(display(v), choices) or f"{o.name} can be: {', '.join(choices)}"
            out.append(Problem(f"'{display(v)}' is not an allowed {o.name}", ERROR, "allowed", r.loc.file, line, t.name, r.index, o.name, suggestion=hint))
    return out, flagged


def _calendar_problems(t: Table, rs: RuleSet) -> list[Problem]:
    """A due date whose calendar comes from an output: every row must name a calendar."""
    out = []
    for d in t.due:
        if d.calendar in rs.calendars or t.output(d.calendar) is None:
            continue
        oc = [o.name for o in t.outputs].index(d.calendar)
        oa = [o.name for o in t.outputs].index(d.add) if t.output(d.add) else None
        for r in t.rules:
            v = r.outputs[oc]
            k = len(t.inputs) + oc
            line = r.cell_locs[k].line if k < len(r.cell_locs) else r.loc.line
            if v is None:
                if oa is not None and r.outputs[oa] is not None:
                    out.append(Problem(f"row {r.index} gives {d.add} but no {d.calendar}, so {d.name} cannot be computed", ERROR, "unknown-calendar", r.loc.file, line, t.name, r.index, d.calendar, suggestion=f"write one of: {', '.join(rs.calendars)}"))
            elif v not in rs.calendars:
                out.append(Problem(f"'{v}' is not a calendar, so {d.name} cannot be computed", ERROR, "unknown-calendar", r.loc.file, line, t.name, r.index, d.calendar, suggestion=did_you_mean(str(v), rs.calendars) or (f"calendars are: {', '.join(rs.calendars)}" if rs.calendars else "define it under calendars:")))
    return out


def _unused_problems(rs: RuleSet) -> list[Problem]:
    out = []
    read = set()
    for t in rs.tables.values():
        for i in t.inputs:
            if i.derive is not None:
                read.update(i.derive.reads)
        read.update(d.source for d in t.due)
        read.update(getattr(t, "reads", ()))
        if not t.rules:
            continue
        for col, i in enumerate(t.inputs):
            if all(r.tests[col].is_any for r in t.rules):
                out.append(Problem(f"input '{i.name}' is '-' in every row, so it never changes the result", WARNING, "unused", i.loc.file, i.loc.line, t.name, column=i.name, suggestion="remove it, or add rows that use it"))
        for col, o in enumerate(t.outputs):
            if all(r.outputs[col] is None for r in t.rules):
                out.append(Problem(f"output '{o.name}' is '-' in every row, so it is always empty", WARNING, "unused", o.loc.file, o.loc.line, t.name, column=o.name, suggestion="give it values, or remove it"))
    for name, f in rs.fields.items():
        if name not in read:
            out.append(Problem(f"field '{name}' is declared but no rule reads it", WARNING, "unused", f.loc.file, f.loc.line, column=name, suggestion="remove it, or use it in from: or due:"))
    return out


def _spelling_problems(rs: RuleSet) -> list[Problem]:
    """A text value written once for an input with no allowed: list, close to a value
    written elsewhere for an input of the same name (or allowed for an output of that
    name): most likely a typo, which would silently never match."""
    import difflib

    seen: dict[str, dict[str, list]] = {}  # input name -> normalised value -> [(table, rule, col)]
    spelled: dict[tuple[str, str], str] = {}
    for t in rs.tables.values():
        for col, i in enumerate(t.inputs):
            if i.type != "text" or i.allowed:
                continue
            for r in t.rules:
                for w in _cell_values(r.tests[col].text):
                    if w in ("-", ""):
                        continue
                    k = norm_text(w)
                    seen.setdefault(i.name, {}).setdefault(k, []).append((t, r, col))
                    spelled.setdefault((i.name, k), w)
    out = []
    for name, values in seen.items():
        known = {k: len(v) for k, v in values.items()}
        for t in rs.tables.values():  # values an output of that name may take count as written
            o = t.output(name)
            for a in (o.allowed or []) if o else []:
                known[norm_text(str(a))] = known.get(norm_text(str(a)), 0) + 2
                spelled.setdefault((name, norm_text(str(a))), str(a))
        for k, places in values.items():
            if known[k] > 1:
                continue
            others = [x for x in known if x != k and known[x] > 1]
            near = difflib.get_close_matches(k, others, n=1, cutoff=0.8)
            if not near:
                continue
            t, r, col = places[0]
            line = r.cell_locs[col].line if col < len(r.cell_locs) else r.loc.line
            want = spelled[(name, near[0])]
            out.append(Problem(f"'{spelled[(name, k)]}' is written only here for {name}; elsewhere it is '{want}'",
                               WARNING, "spelling", r.loc.file, line, t.name, r.index, name,
                               suggestion=f"did you mean '{want}'? Or list the values in allowed: to have them checked"))
    return out


# ----------------------------------------------------------------- entry point
def analyse_ruleset(rs: RuleSet, budget: int | None = None) -> dict[str, TableAnalysis]:
    """Every table analysed, each knowing what the decisions it reads can give."""
    return {t.name: analyse_table(t, rs, budget) for t in rs.tables.values() if not hasattr(t, "journey")}


def check_ruleset(rs: RuleSet) -> list[Problem]:
    """Meaning-level problems of a loaded rule set, table by table, then unused names."""
    problems: list[Problem] = []
    analyses = analyse_ruleset(rs)
    for t in rs.tables.values():  # report in file order
        an = analyses.get(t.name)
        if an is None:  # a journey: its mistakes are found as it loads (journeys._check)
            continue
        value_probs, flagged = _allowed_problems(t, an.domains)
        problems += value_probs
        problems += _calendar_problems(t, rs)
        problems += _problems_of(an, flagged)
    problems += _spelling_problems(rs)
    problems += _unused_problems(rs)
    return problems
