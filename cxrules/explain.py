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


def explain(ev: Evaluator, decision: str, values: dict, as_of: dt.datetime | None = None) -> list[TableExplanation]:
    """Explanations for `decision` and the decisions it reads, in evaluation order."""
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
        for p in e.problems:
            lines.append(f"  problem: {p}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _r(x) -> str:
    return {True: "yes", False: "no", None: "unknown (blank)"}[x]


def _v(v) -> str:
    return "(blank)" if v is None else display(v)
