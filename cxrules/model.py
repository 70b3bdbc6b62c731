"""The rule-set model: plain dataclasses, no I/O.

Input cells are DMN "simple unary tests". A cell is a disjunction of atoms, possibly
negated; it is evaluated with three-valued logic as in FEEL: an ordering comparison
against a blank is unknown, equality against a blank is false, and a cell matches only
when it is true.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .aliases import Aliases

# Hit policies
FIRST, UNIQUE, PRIORITY, ANY, RULE_ORDER, COLLECT = "first", "unique", "priority", "any", "rule order", "collect"
HIT_POLICIES = (FIRST, UNIQUE, PRIORITY, ANY, RULE_ORDER, COLLECT)
AGGREGATES = ("sum", "min", "max", "count")
SINGLE_HIT = (FIRST, UNIQUE, PRIORITY, ANY)


@dataclass(frozen=True)
class Loc:
    file: str | None = None
    line: int | None = None


# ----------------------------------------------------------------- unary tests
@dataclass(frozen=True)
class Cmp:
    """`op value`; op is one of = != < <= > >=."""

    op: str
    value: Any


@dataclass(frozen=True)
class Range:
    lo: Any
    hi: Any
    lo_closed: bool
    hi_closed: bool


@dataclass(frozen=True)
class Blank:
    pass


Atom = Cmp | Range | Blank


@dataclass(frozen=True)
class Test:
    """A whole input cell. `atoms` empty and not negated means `-` (anything)."""

    atoms: tuple = ()
    negated: bool = False
    text: str = "-"

    @property
    def is_any(self) -> bool:
        return not self.atoms and not self.negated


ANYTHING = Test()


def atom_truth(atom, v) -> bool | None:
    """True / False / None (unknown) for one atom against a value (None = blank)."""
    if isinstance(atom, Blank):
        return v is None
    if isinstance(atom, Cmp):
        if v is None:
            if atom.op == "=":
                return False
            if atom.op == "!=":
                return True
            return None
        op, x = atom.op, atom.value
        if op == "=":
            return v == x
        if op == "!=":
            return v != x
        if op == "<":
            return v < x
        if op == "<=":
            return v <= x
        if op == ">":
            return v > x
        return v >= x
    if v is None:
        return None
    lo_ok = v >= atom.lo if atom.lo_closed else v > atom.lo
    hi_ok = v <= atom.hi if atom.hi_closed else v < atom.hi
    return lo_ok and hi_ok


def test_truth(test: Test, v) -> bool | None:
    """Kleene disjunction of the atoms, negated if the cell is `not(...)`."""
    if test.is_any:
        return True
    result: bool | None = False
    for a in test.atoms:
        t = atom_truth(a, v)
        if t is True:
            result = True
            break
        if t is None:
            result = None
    if test.negated:
        return None if result is None else not result
    return result


def matches(test: Test, v) -> bool:
    return test_truth(test, v) is True


# ----------------------------------------------------------------- the tables
@dataclass
class Field:
    """A workbook column that derivations (`from:`) and `due` read."""

    name: str
    type: str
    columns: list[str]
    loc: Loc = field(default_factory=Loc)
    optional: bool = False  # a sheet without its column still runs what reads it (blank)


@dataclass(frozen=True)
class Derivation:
    """`from:` one of a closed vocabulary: days_since, hours_since, business_hours_since,
    percentile, and over dated rows (measures.py) week_over_week, days_in_a_row,
    count_last_days, sum_last_days."""

    func: str
    field: str
    calendar: str | None = None
    line: int | None = field(default=None, compare=False)
    date: str | None = None  # over dated rows: the field that dates each row
    by: str | None = None  # ...compared only with rows of the same value here (a department)
    days: int | None = None  # count_last_days / sum_last_days: the window, this row's day included
    test: Test | None = None  # days_in_a_row: what the value must be on each day
    text: str | None = field(default=None, compare=False)  # as written

    def __str__(self) -> str:
        if self.text:
            return self.text
        args = self.field + (f", {self.calendar}" if self.calendar else "")
        return f"{self.func}({args})"

    @property
    def reads(self) -> tuple[str, ...]:
        """Every field it reads: the value, the date and the group."""
        return tuple(x for x in (self.field, self.date, self.by) if x)


@dataclass
class Input:
    name: str
    type: str
    label: str
    columns: list[str] = field(default_factory=list)
    derive: Derivation | None = None
    decision: str | None = None  # read an output of another table...
    output: str | None = None  # ...this one (default: the input's own name)
    allowed: list | None = None
    loc: Loc = field(default_factory=Loc)
    optional: bool = False  # blank is a real value here: a sheet without the column still runs

    @property
    def source(self) -> str:
        if self.decision:
            return "decision"
        if self.derive:
            return "derived"
        return "column"


@dataclass
class Output:
    name: str
    type: str
    label: str
    columns: list[str] = field(default_factory=list)
    allowed: list | None = None
    loc: Loc = field(default_factory=Loc)
    highlight: dict = field(default_factory=dict)  # value -> RGB fill of the rows that get it


@dataclass
class Due:
    """A date output: `from` FIELD plus the duration OUTPUT in CALENDAR (a name or a text output)."""

    name: str
    source: str
    add: str
    calendar: str
    label: str
    columns: list[str] = field(default_factory=list)
    loc: Loc = field(default_factory=Loc)
    unless: dict = field(default_factory=dict)  # name -> Test: rows where all match are never overdue


@dataclass
class Rule:
    index: int  # 1-based, as the manager counts rows
    tests: list[Test]
    outputs: list  # typed values; None = no value
    note: str | None = None
    loc: Loc = field(default_factory=Loc)
    cell_locs: list[Loc] = field(default_factory=list)


@dataclass
class Example:
    index: int
    inputs: dict
    expected: dict
    loc: Loc = field(default_factory=Loc)


@dataclass
class Table:
    name: str
    title: str
    hit: str
    aggregate: str | None
    inputs: list[Input]
    outputs: list[Output]
    rules: list[Rule]
    due: list[Due] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    loc: Loc = field(default_factory=Loc)

    @property
    def hit_text(self) -> str:
        return f"{self.hit} {self.aggregate}" if self.aggregate else self.hit

    def output(self, name: str) -> Output | None:
        return next((o for o in self.outputs if o.name == name), None)

    @property
    def result_names(self) -> list[str]:
        return [o.name for o in self.outputs] + [d.name for d in self.due]

    def output_type(self, name: str) -> str:
        """The type of an output as other tables see it (collect/rule order give lists)."""
        o = self.output(name)
        if o is None:
            return next(("datetime" for d in self.due if d.name == name), "text")
        if self.hit == COLLECT and self.aggregate == "count":
            return "number"
        return o.type

    @property
    def is_multi(self) -> bool:
        """Outputs are lists (rule order, collect without an aggregate)."""
        return self.hit == RULE_ORDER or (self.hit == COLLECT and self.aggregate is None)


@dataclass(frozen=True)
class RuleSource:
    """A rule file as it was read: what the rule set's content hash is made of."""

    name: str  # the file's name (no folder: the hash is the same wherever the rules are)
    path: str  # where it was read from, absolute
    digest: str  # SHA-256 of its normalised bytes (stamp.normalise)


@dataclass
class RuleSet:
    tables: dict[str, Table] = field(default_factory=dict)
    fields: dict[str, Field] = field(default_factory=dict)
    calendars: dict[str, Any] = field(default_factory=dict)  # name -> calendars.Calendar
    files: list[str] = field(default_factory=list)
    sources: list[RuleSource] = field(default_factory=list)  # the files read, in the order loaded
    timezone: str = "UTC"
    aliases: Aliases = field(default_factory=Aliases)  # other spellings of text values

    def producer(self, name: str) -> Table | None:
        """The table whose output (or due date) is called `name`."""
        for t in self.tables.values():
            if name in t.result_names:
                return t
        return None

    def order(self) -> list[Table]:
        """Tables in dependency order (a table after the tables it reads)."""
        seen: dict[str, bool] = {}
        out: list[Table] = []

        def visit(t: Table):
            if t.name in seen:
                return
            seen[t.name] = False
            for i in t.inputs:
                if i.decision and i.decision in self.tables:
                    visit(self.tables[i.decision])
            seen[t.name] = True
            out.append(t)

        for t in self.tables.values():
            visit(t)
        return out

    def requires(self, name: str) -> list[Table]:
        """`name` and every table it depends on, in evaluation order."""
        need: set[str] = set()

        def walk(n: str):
            if n in need or n not in self.tables:
                return
            need.add(n)
            for i in self.tables[n].inputs:
                if i.decision:
                    walk(i.decision)

        walk(name)
        return [t for t in self.order() if t.name in need]
