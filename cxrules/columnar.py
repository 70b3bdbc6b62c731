"""Whole columns at once for the evaluation: each cell's class (what a table's cells can
tell apart), rows grouped by their combination of classes, results scattered back, and
the rule rows the engine needs to see for a group.

numpy does the per-row work; Python runs once per distinct combination (and per rule row
when a table is planned). Where numpy cannot be exact (ints past 2**53, values of mixed
kinds) `classes` answers None and the caller takes its per-value path.
"""
from __future__ import annotations

import datetime as dt
import operator
from collections import defaultdict
from itertools import count, repeat

import numpy as np

from .model import test_truth

_EXACT = 2 ** 53
_EPOCH_ORD = dt.date(1970, 1, 1).toordinal()
_UNIX = dt.datetime(1970, 1, 1)
_SECONDS = dt.timedelta.total_seconds
_NUMERIC = {int, float, type(None)}


def exact_floats(values) -> np.ndarray | None:
    """values (ints, floats, None) as float64 with NaN for None, or None if a value would not
    be exact as a double."""
    if not set(map(type, values)) <= _NUMERIC:
        return None
    try:
        a = np.array(values, dtype=np.float64)
    except (OverflowError, TypeError, ValueError):
        return None
    if len(a) and np.nanmax(np.abs(a), initial=0) > _EXACT:
        return None
    return a


def encoded(values: list, type_: str) -> np.ndarray | None:
    """A column of typed values as the engine compares them (values.encode), as doubles with
    NaN for a blank; None when that would not be exact."""
    types = set(map(type, values))
    blank = type(None) in types and np.fromiter(map(operator.is_, values, repeat(None)), bool, len(values))
    if type_ == "date" and types <= {dt.date, type(None)}:
        present = [v for v in values if v is not None] if blank is not False else values
        out = np.full(len(values), np.nan)
        days = np.fromiter(map(dt.date.toordinal, present), np.float64, len(present)) - _EPOCH_ORD  # as values.encode
        if blank is False:
            return days
        out[~blank] = days
        return out
    if type_ == "datetime" and types <= {dt.datetime, type(None)}:
        present = [v for v in values if v is not None] if blank is not False else values
        if any(v.tzinfo is not None for v in present):
            return None
        secs = np.fromiter(map(_SECONDS, map(operator.sub, present, repeat(_UNIX))), np.float64, len(present))
        if blank is False:
            return secs
        out = np.full(len(values), np.nan)
        out[~blank] = secs
        return out
    if type_ == "number":
        return exact_floats(values)
    return None


def ordered_classes(a: np.ndarray, marks: list) -> np.ndarray | None:
    """Each value's class among the sorted `marks`: 2j below marks[j], 2j+1 on it (as
    evaluation._canonical keys them), -1 for a blank."""
    m = exact_floats(marks) if marks else np.empty(0)
    if m is None:
        return None
    j = np.searchsorted(m, a, side="left")
    codes = 2 * j
    if len(m):
        codes += m[np.minimum(j, len(m) - 1)] == a
    codes[np.isnan(a)] = -1
    return codes


def first_of_each(codes: np.ndarray) -> dict:
    """class -> the first row holding it (codes are small: no sort needed)."""
    rows = np.flatnonzero(codes >= 0)
    if not len(rows):
        return {}
    first = np.full(int(codes.max()) + 1, len(codes), dtype=np.int64)
    np.minimum.at(first, codes[rows], rows)
    return {c: i for c, i in enumerate(first.tolist()) if i < len(codes)}


def equal_classes(values: list, marks) -> tuple[np.ndarray, dict] | None:
    """(codes, reps) for a column compared by equality: each literal of the table its own
    class (numbered as first seen), every other value class 0, a blank -1; reps: the value
    the engine gets for each class, the first seen."""
    out = [0] * len(values)
    ids: dict = {}
    reps: dict = {}
    try:
        for i, v in enumerate(values):
            if v is None:
                out[i] = -1
            elif v in marks:
                c = ids.get(v)
                if c is None:
                    c = ids[v] = len(ids) + 1
                    reps[c] = v
                out[i] = c
            elif 0 not in reps:
                reps[0] = v
    except TypeError:  # an unhashable value: the per-value path says what it is
        return None
    return np.array(out, dtype=np.int64), reps


def numbered(values: list) -> tuple[list, np.ndarray]:
    """(table, codes): the distinct values (None too) in the order first seen, and each row's
    place among them; numbered in one pass at C speed. TypeError for a value that cannot be
    a key (a list)."""
    number = defaultdict(count().__next__)
    codes = np.fromiter(map(number.__getitem__, values), np.int64, len(values))
    return list(number), codes


def counts_in_order(codes: np.ndarray) -> list[tuple[int, int]]:
    """(code, how many rows hold it) for each code present, in the order the codes first
    appear: what Counter over the rows would give, keyed by code."""
    used, first, counts = np.unique(codes, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return list(zip(used[order].tolist(), counts[order].tolist()))


def factorize(values: list) -> tuple[np.ndarray, dict]:
    """(codes, reps) for values already canonical: equal values share a code."""
    ids: dict = {}
    reps: dict = {}
    out = [0] * len(values)
    for i, v in enumerate(values):
        if v is None:
            out[i] = -1
            continue
        c = ids.get(v)
        if c is None:
            c = ids[v] = len(ids)
            reps[c] = v
        out[i] = c
    return np.array(out, dtype=np.int64), reps


def group(codes: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(pos, firsts): each row's combination, numbered in order of first appearance, and the
    first row of each combination."""
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    key = np.zeros(n, dtype=np.int64)
    for c in codes:
        size = int(c.max()) + 2
        if int(key.max()) * size >= 1 << 62:  # keep the key small: number the combinations so far
            key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
        key = key * size + (c + 1)
    top = int(key.max()) + 1
    if top <= 4 * n + 1024:  # few possible keys: number them by counting, not sorting
        seen = np.zeros(top, dtype=bool)
        seen[key] = True
        dense = np.cumsum(seen) - 1
        inv = dense[key]
        first = np.full(int(dense[-1]) + 1, n, dtype=np.int64)
        np.minimum.at(first, inv, np.arange(n))
    else:
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inv.reshape(-1)], first[order]


def objects(values) -> np.ndarray:
    """A 1-d object array of `values` (lists and tuples stay single items)."""
    return np.fromiter(values, dtype=object, count=len(values))


class Coded(list):
    """A column of values that repeat (a rule's outputs, a journey's steps and dates) that
    also knows, per row, which of a few `table` entries it holds: `codes` (int array) with
    self[i] is table[codes[i]]. Readers that see it count, encode or convert each entry once
    instead of each row. Any change to the list drops the codes (codes None): it is then a
    plain list."""

    __slots__ = ("codes", "table")

    def __init__(self, table: list, codes: np.ndarray):
        super().__init__(objects(table)[codes].tolist() if len(table) else [None] * len(codes))
        self.table = table
        # a code a row in 4 bytes (a million rows' column: 4 MB, not 8)
        self.codes = codes.astype(np.int32) if codes.dtype != np.int32 and len(table) < 1 << 31 else codes

    def __reduce__(self):  # to another process as a plain list
        return list, (list(self),)


def _changing(name: str):
    base = getattr(list, name)

    def changed(self, *a, **k):
        self.codes = None
        return base(self, *a, **k)

    changed.__name__ = name
    return changed


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert", "pop", "remove",
              "reverse", "sort", "clear"):
    setattr(Coded, _name, _changing(_name))


def coded(values) -> tuple[list, np.ndarray] | None:
    """(table, codes) of a Coded column that has not been changed since it was made, else None."""
    codes = getattr(values, "codes", None)
    return (values.table, codes) if codes is not None and len(codes) == len(values) else None


def mapped(values: list, fn) -> list:
    """[fn(v) for v in values] for a Coded column: fn called once per table entry, the result
    Coded too; the column itself when fn returns each entry as it is."""
    c = coded(values)
    if c is None:
        return [fn(v) for v in values]
    table = [fn(v) for v in c[0]]
    return values if all(map(operator.is_, table, c[0])) else Coded(table, c[1])


def scatter(per_combination: list, pos: np.ndarray) -> list:
    """[per_combination[p] for p in pos], None where p is -1; Coded by combination."""
    m = len(per_combination)
    return Coded(per_combination + [None], np.where(pos < 0, m, pos) if m else np.zeros(len(pos), np.int64))


# ------------------------------------------------------------------ partitions of a big table
LEAF = 16  # rule rows a part may keep without being split further
GROUPS = 4  # parts one split makes
DEPTH = 4


class _Other:
    """A value equal to no literal: the class of texts a table does not name."""

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    def __hash__(self):
        return 0


def _truth(table, k: int, pieces):
    """(kind, truth over the classes of input k, truth at a blank, class of a literal) for
    every rule row; None when this input cannot split the rows exactly."""
    kind, marks = pieces
    rules = table.rules
    blank = np.array([test_truth(r.tests[k], None) is not False for r in rules], dtype=bool)
    if kind == "ordered":
        m = exact_floats(marks)
        if m is None:
            return None
        reps, sure = [], []
        for c in range(2 * len(m) + 1):
            j, on = divmod(c, 2)
            if on:
                rep = m[j]
            elif not len(m):
                rep = 0.0
            elif j == 0:
                rep = m[0] - max(1.0, abs(m[0]))
            elif j == len(m):
                rep = m[-1] + max(1.0, abs(m[-1]))
            else:
                rep = m[j - 1] / 2 + m[j] / 2
            reps.append(rep)
            sure.append(bool(on or ((j == 0 or m[j - 1] < rep) and (j == len(m) or rep < m[j]))))
        r = np.array(reps, dtype=np.float64)
        unsure = ~np.array(sure)
        rows = []
        for rule in rules:
            t = rule.tests[k]
            if t.is_any:
                rows.append(np.ones(len(r), dtype=bool))
                continue
            acc = np.zeros(len(r), dtype=bool)
            for a in t.atoms:
                acc |= _atom(a, r)
            if t.negated:
                acc = ~acc
            rows.append(acc | unsure)  # no double between two marks: keep every row there
        return kind, np.array(rows, dtype=bool).reshape(len(rules), len(r)), blank, None
    if len(marks) > 64:
        return None
    lits = sorted(marks, key=repr)
    reps = [_Other()] + lits
    mat = np.array([[test_truth(rule.tests[k], v) is not False for v in reps] for rule in rules], dtype=bool)
    return kind, mat.reshape(len(rules), len(reps)), blank, {v: c + 1 for c, v in enumerate(lits)}


def _atom(a, r: np.ndarray) -> np.ndarray:
    from .model import Blank, Cmp

    if isinstance(a, Blank):
        return np.zeros(len(r), dtype=bool)
    if isinstance(a, Cmp):
        x = float(a.value)
        return {"=": r == x, "!=": r != x, "<": r < x, "<=": r <= x, ">": r > x, ">=": r >= x}[a.op]
    lo, hi = float(a.lo), float(a.hi)
    return ((r >= lo) if a.lo_closed else (r > lo)) & ((r <= hi) if a.hi_closed else (r < hi))


class Partition:
    """A decision tree over the classes of a table's inputs whose leaves hold the rule rows
    that can match there: a row outside a leaf has a cell that is not true for every value
    in it, so the engine, shown only the leaf's rows, fires what it fires on the whole table.
    Made from the table alone, once."""

    def __init__(self, table, pieces: list):
        self.inputs = {}
        for k, p in enumerate(pieces):
            try:
                t = _truth(table, k, p)
            except (TypeError, ValueError, OverflowError):
                t = None
            if t is not None:
                self.inputs[k] = t
        self.leaves: list[tuple[int, ...]] = []
        self.root = self._node(np.arange(len(table.rules)), 0)

    def _node(self, rows: np.ndarray, depth: int):
        if len(rows) <= LEAF or depth >= DEPTH or not self.inputs:
            return self._leaf(rows)
        best = None
        for k, (kind, mat, blank, _) in self.inputs.items():
            sub = mat[rows]
            nc = sub.shape[1]
            bounds = np.unique(np.linspace(0, nc, min(GROUPS, nc) + 1).astype(int))
            covers = [rows[sub[:, lo:hi].any(axis=1)] for lo, hi in zip(bounds[:-1], bounds[1:])]
            score = sum(len(c) for c in covers) / len(covers)
            if best is None or score < best[0]:
                best = (score, k, bounds, covers, rows[blank[rows]])
        score, k, bounds, covers, blank_rows = best
        if score > 0.75 * len(rows):  # the engine's time hardly falls: one ruleset is cheaper
            return self._leaf(rows)
        group_of = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
        children = [self._node(c, depth + 1) for c in covers]
        return ("split", k, group_of, children, self._node(blank_rows, depth + 1))

    def _leaf(self, rows: np.ndarray):
        self.leaves.append(tuple(int(x) for x in rows))
        return ("leaf", len(self.leaves) - 1)

    def assign(self, codes: list[np.ndarray], reps: list[dict]) -> np.ndarray:
        """The leaf of each combination, from its class codes (classes() of each input)."""
        d = len(codes[0]) if codes else 0
        out = np.zeros(d, dtype=np.int64)
        local = {}
        for k, (kind, _, _, lit) in self.inputs.items():
            c = codes[k]
            if kind != "ordered":  # first-seen numbers -> the literal's class here
                table = np.zeros(max(reps[k], default=0) + 2, dtype=np.int64)
                for code, v in reps[k].items():
                    table[code + 1] = lit.get(v, 0) if code else 0
                table[0] = -1
                c = table[c + 1]
            local[k] = c
        self._walk(self.root, np.arange(d), local, out)
        return out

    def _walk(self, node, idx: np.ndarray, local: dict, out: np.ndarray) -> None:
        if not len(idx):
            return
        if node[0] == "leaf":
            out[idx] = node[1]
            return
        _, k, group_of, children, blank = node
        c = local[k][idx]
        is_blank = c < 0
        self._walk(blank, idx[is_blank], local, out)
        g = group_of[np.maximum(c, 0)]
        for n, child in enumerate(children):
            self._walk(child, idx[~is_blank & (g == n)], local, out)
