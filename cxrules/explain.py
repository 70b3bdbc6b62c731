"""Explaining one row: for each rule row, which cells matched and which did not."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .evaluation import Evaluator
from .model import Table, test_truth
from .values import display, encode


@dataclass
class CellCheck:
    input: str
    cell: str
    value: object
    result: bool | None  # None: unknown (compared with a blank)


@dataclass
class RowCheck:
    index: int
    line: int | None
    cells: list[CellCheck]
    outputs: dict
    note: str | None

    @property
    def matched(self) -> bool:
        return all(c.result is True for c in self.cells)


@dataclass
class TableExplanation:
    table: str
    title: str
    hit: str
    inputs: dict
    rows: list[RowCheck]
    fired: object
    result: dict
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def explain(ev: Evaluator, decision: str, values: dict, as_of: dt.datetime | None = None, *, typed: bool = False) -> list[TableExplanation]:
    """Explanations for `decision` and the decisions it reads, in evaluation order.

    typed: the values were typed by a person (text like '3000'), so they are read by each
    input's type without the 'stored as text' warnings a workbook cell would get. A
    percentile input (e.g. spend_rank) ranks a row among a sheet's rows: one row alone
    has no rank, so it is blank unless given.
    """
    values = dict(values)
    notes = []
    for t in ev.rs.requires(decision):
        for i in t.inputs:
            if i.derive and i.derive.func == "percentile" and i.name not in values:
                values[i.name] = None
                notes.append(f"{i.name} is a percentile over a sheet's rows, so one row has none; "
                             f"give it (e.g. {i.name}=85) to see the rows that test it")
    if typed:
        values = _typed(ev, decision, values, notes)
    r = ev.evaluate([values], decision, as_of, given_wins=True)
    out = []
    for name in r.tables:
        t: Table = ev.rs.tables[name]
        row = r.row(0)
        ins = {i.name: row.get(i.name) for i in t.inputs}
        checks = []
        for rule in t.rules:
            cells = [CellCheck(i.name, test.text, ins[i.name], test_truth(test, encode(ins[i.name], i.type))) for i, test in zip(t.inputs, rule.tests)]
            checks.append(RowCheck(rule.index, rule.loc.line, cells, {o.name: v for o, v in zip(t.outputs, rule.outputs)}, rule.note))
        result = {n: row.get(n) for n in t.result_names}
        probs = [p.message for p in r.problems if p.table in (None, name)]
        out.append(TableExplanation(name, t.title, t.hit_text, ins, checks, r.fired.get(name, [None])[0], result, probs))
    if out:
        out[0].notes = notes
    return out


def _typed(ev: Evaluator, decision: str, values: dict, notes: list) -> dict:
    """Typed text read by the type of the input or field it names; a value that does not
    read stays text, so the evaluation reports it as for a cell."""
    from .values import ValueProblem, coerce

    types = {f.name: f.type for f in ev.rs.fields.values()}
    for t in ev.rs.requires(decision):
        for i in t.inputs:
            types.setdefault(i.name, i.type)
    out = {}
    for k, v in values.items():
        if isinstance(v, str) and k in types:
            try:
                v = coerce(v, types[k])
            except ValueProblem:
                pass
        out[k] = v
    return out


def render(explanations: list[TableExplanation]) -> str:
    lines = []
    for e in explanations:
        lines.append(f"{e.title} ({e.table}, hit policy {e.hit})")
        lines.append("  inputs: " + (", ".join(f"{k}={_v(v)}" for k, v in e.inputs.items()) or "none"))
        fired = e.fired if isinstance(e.fired, list) else ([e.fired] if e.fired else [])
        for rc in e.rows:
            mark = "=>" if rc.index in fired else ("ok" if rc.matched else "  ")
            cells = "  ".join(f"{c.input} {c.cell!s}: {_r(c.result)}" for c in rc.cells)
            outs = ", ".join(f"{k}={_v(v)}" for k, v in rc.outputs.items())
            lines.append(f"  {mark} row {rc.index}: {cells}  -> {outs}")
        lines.append("  result: " + ", ".join(f"{k}={_v(v)}" for k, v in e.result.items()))
        for n in e.notes:
            lines.append(f"  note: {n}")
        for p in e.problems:
            lines.append(f"  problem: {p}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _r(x) -> str:
    return {True: "yes", False: "no", None: "unknown (blank)"}[x]


def _v(v) -> str:
    return "(blank)" if v is None else display(v)
