"""Decision tables -> durable-rules ruleset definitions (plain JSON, no code).

One ruleset per table. Each rule row becomes a durable rule named `r<row>`; a
catch-all rule `nomatch` with the largest priority tells "no row matched".

- `first` and `priority` tables are asserted as events: an event fires only its
  lowest-`pri` matching rule, so `pri` is the row number (first) or the rank of the
  row's outputs in the outputs' `allowed` order (priority).
- every other policy needs all matching rows: rows are asserted as facts, which fire
  every matching rule, and are retracted afterwards.

Blank input cells are absent keys. A cell is a disjunction of atoms with FEEL's
three-valued logic; `not(...)` holds when every atom is false (not unknown), so each
atom compiles to a "true" and a "false" condition.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from .model import FIRST, PRIORITY, Blank, Cmp, Table, Test, test_truth
from .values import encode

KEY = "_k"  # the unique row key; the engine's own state fact never has it
_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_NEG = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


@dataclass(frozen=True)
class Compiled:
    name: str  # "<table>_<content hash>": edited rules get a new ruleset
    definition: dict
    as_events: bool
    keys: tuple  # engine key of each input, in input order
    pri: dict  # rule name -> priority (for ordering all-match results)


_INT32 = 2 ** 31


def engine_value(v):
    """A literal as the engine reads it exactly: durable-rules parses rule literals with atol,
    which is 32 bits on Windows, so larger whole numbers go as doubles (exact to 2**53)."""
    if v.__class__ is int and not -_INT32 < v < _INT32:
        try:
            return float(v)
        except OverflowError:
            return v
    return v


def _present(k):
    return {"$ex": {k: 1}}


def _blank(k):
    return {"$nex": {k: 1}}


def _any_of(conds):
    return conds[0] if len(conds) == 1 else {"$or": conds}


def _all_of(conds):
    return conds[0] if len(conds) == 1 else {"$and": conds}


def atom_true(a, k):
    if isinstance(a, Blank):
        return _blank(k)
    if isinstance(a, Cmp):
        if a.op == "=":
            return {k: engine_value(a.value)}
        if a.op == "!=":
            return _any_of([_blank(k), {"$neq": {k: engine_value(a.value)}}])
        return {_OPS[a.op]: {k: engine_value(a.value)}}
    lo = {("$gte" if a.lo_closed else "$gt"): {k: engine_value(a.lo)}}
    hi = {("$lte" if a.hi_closed else "$lt"): {k: engine_value(a.hi)}}
    return _all_of([lo, hi])


def atom_false(a, k):
    """Holds when the atom is false (a blank makes ordering atoms unknown, not false)."""
    if isinstance(a, Blank):
        return _present(k)
    if isinstance(a, Cmp):
        if a.op == "=":
            return _any_of([_blank(k), {"$neq": {k: engine_value(a.value)}}])
        if a.op == "!=":
            return {k: engine_value(a.value)}
        return {_OPS[_NEG[a.op]]: {k: engine_value(a.value)}}
    below = {("$lt" if a.lo_closed else "$lte"): {k: engine_value(a.lo)}}
    above = {("$gt" if a.hi_closed else "$gte"): {k: engine_value(a.hi)}}
    return _any_of([below, above])


def test_condition(t: Test, k) -> dict | None:
    if t.is_any:
        return None
    if t.negated:
        return _all_of([atom_false(a, k) for a in t.atoms])
    return _any_of([atom_true(a, k) for a in t.atoms])


def priority_rank(table: Table, outputs: list) -> tuple:
    """Smaller ranks first: by each output's position in its `allowed` list."""
    rank = []
    for o, v in zip(table.outputs, outputs):
        if o.allowed:  # compared as rules compare (text ignores case)
            keys = [encode(a, o.type) for a in o.allowed]
            key = encode(v, o.type)
            rank.append(keys.index(key) if key in keys else len(keys))
    return tuple(rank)


GUARD_FANOUT = 8


def _guards(position: int, n_rules: int) -> list:
    """Always-true conditions that hang the rule rows in a tree of at most 8 per node.

    The C engine keeps the alpha nodes a row satisfies on a stack of 64 (MAX_STACK_SIZE in
    events.c; error 303): a value satisfying the first cell of 64 rows would fail. Each
    guard is a distinct test the row key always passes (keys are >= 0; the engine's own
    state fact has no key), shared by the rows of one group.
    """
    out, level, size = [], 1, GUARD_FANOUT
    while size < n_rules:
        out.insert(0, {"$gt": {KEY: -1 - (level * 1_000_000 + position // size)}})
        level += 1
        size *= GUARD_FANOUT
    return out


def compile_table(table: Table) -> Compiled:
    keys = tuple(f"i{n}" for n in range(len(table.inputs)))
    definition: dict = {}
    pri: dict = {}
    as_events = table.hit in (FIRST, PRIORITY)
    if table.hit == PRIORITY:
        order = sorted(table.rules, key=lambda r: (priority_rank(table, r.outputs), r.index))
        rank = {r.index: n for n, r in enumerate(order)}
    else:
        rank = {r.index: n for n, r in enumerate(table.rules)}
    for position, rule in enumerate(table.rules):
        conds = _guards(position, len(table.rules))
        conds += [c for c in (test_condition(t, k) for t, k in zip(rule.tests, keys)) if c is not None]
        # A rule that holds on an all-blank row would also match the engine's state fact.
        if not conds or all(test_truth(t, None) is True for t in rule.tests):
            conds.append(_present(KEY))
        name = f"r{rule.index}"
        definition[name] = {"all": [{"m": _all_of(conds)}], "pri": rank[rule.index]}
        pri[name] = rank[rule.index]
    definition["nomatch"] = {"all": [{"m": _present(KEY)}], "pri": len(table.rules) + 1}
    digest = hashlib.sha256(orjson.dumps([table.hit, definition], option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return Compiled(f"{table.name}_{digest}", definition, as_events, keys, pri)
