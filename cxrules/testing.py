"""Running a rule set's `examples:`: expected vs got, with the rule row that fired."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .evaluation import Evaluator
from .model import RuleSet, Table
from .values import display

# Examples describe rules, not the clock: derived inputs are given, so any fixed day works.
EXAMPLE_AS_OF = dt.datetime(2026, 1, 1, 12, 0)


@dataclass
class ExampleResult:
    table: str
    index: int
    file: str | None
    line: int | None
    inputs: dict
    expected: dict
    got: dict
    fired: object
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.problems

    @property
    def mismatches(self) -> list[str]:
        return [k for k, v in self.expected.items() if not _same(v, self.got.get(k))]

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else self.table
        given = ", ".join(f"{k}={display(v)}" for k, v in self.inputs.items())
        lines = [f"{where}: {self.table} example {self.index} ({given})"]
        for k in self.mismatches:
            lines.append(f"  {k}: expected {_show(self.expected[k])}, got {_show(self.got.get(k))}")
        for p in self.problems:
            lines.append(f"  problem: {p}")
        lines.append(f"  rule row that fired: {_fired(self.fired)}")
        return "\n".join(lines)


def _same(a, b) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(1, abs(a))
    if isinstance(a, dt.date) and isinstance(b, dt.date):
        as_dt = lambda d: d if isinstance(d, dt.datetime) else dt.datetime(d.year, d.month, d.day)  # noqa: E731
        return as_dt(a) == as_dt(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _show(v) -> str:
    return "(blank)" if v is None or v == [] else display(v)


def _fired(f) -> str:
    if f is None or f == []:
        return "none"
    if isinstance(f, list):
        return "rows " + ", ".join(str(x) for x in f)
    return f"row {f}"


def run_examples(rs: RuleSet, tables: list[str] | None = None, evaluator: Evaluator | None = None) -> list[ExampleResult]:
    ev = evaluator or Evaluator(rs)
    results = []
    for t in rs.order():
        if tables and t.name not in tables:
            continue
        results.extend(run_table_examples(ev, t))
    return results


def run_table_examples(ev: Evaluator, table: Table) -> list[ExampleResult]:
    if not table.examples:
        return []
    if hasattr(table, "journey"):
        from .journey_replay import run_examples

        return run_examples(ev, table)
    rows = [dict(e.inputs) for e in table.examples]
    out = []
    # One evaluation per example: examples may give different subsets of inputs.
    for e, row in zip(table.examples, rows):
        r = ev.evaluate([row], table.name, EXAMPLE_AS_OF, given_wins=True)
        got = {k: r.columns.get(k, [None])[0] for k in e.expected}
        probs = [p.message for p in r.problems if p.severity == "error"]
        out.append(ExampleResult(table.name, e.index, e.loc.file, e.loc.line, e.inputs, e.expected, got, r.fired.get(table.name, [None])[0], probs))
    return out
