"""Value aliases: the other spellings a team writes for the text values the tables use.

A `values:` document (shared by every table) or a `values:` key on one input, output or
field maps a value to its other spellings:

    values:
      Urgent: 紧急
      Resolved: [已解决, 已处理]

A workbook cell holding a spelling reads as the value (before `allowed:` is checked and
before the engine sees it); a workbook whose headers are Chinese gets the first Chinese
spelling of each output value written, an English one the value itself. Rule cells,
examples and `allowed:` lists written with a spelling read as the value too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .values import norm_text


def has_cjk(s) -> bool:
    return isinstance(s, str) and any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in s)


@dataclass
class Aliases:
    """value -> spellings, shared and per name (input, output or field)."""

    shared: dict[str, list[str]] = field(default_factory=dict)
    scoped: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    _readers: dict = field(default_factory=dict, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.shared or self.scoped)

    def _table(self, name: str | None) -> dict[str, list[str]]:
        if name in self.scoped:
            return {**self.shared, **self.scoped[name]}
        return self.shared

    def reader(self, name: str | None) -> dict[str, str]:
        """Spelling (as compared: case and outer spaces ignored) -> value, for a column."""
        r = self._readers.get(name)
        if r is None:
            r = {}
            for value, spellings in self._table(name).items():
                for s in spellings:
                    r[norm_text(s)] = value
            self._readers[name] = r
        return r

    def read(self, name: str | None, text):
        """A cell's text as the value it spells (unchanged when it spells none)."""
        if not isinstance(text, str):
            return text
        return self.reader(name).get(norm_text(text), text)

    def written(self, name: str | None, value, zh: bool):
        """An output value as written on a Chinese (zh) or English workbook."""
        if isinstance(value, list):
            return [self.written(name, v, zh) for v in value]
        if not isinstance(value, str) or has_cjk(value) == zh:
            return value
        table = self._table(name)
        spellings = table.get(value)
        if spellings is None:  # a value the rules wrote in other capitals
            key = norm_text(value)
            spellings = next((v for k, v in table.items() if norm_text(k) == key), None)
            if spellings is None:  # the value is itself a spelling: its other spellings
                canon = self.reader(name).get(key)
                spellings = ([canon] + table.get(canon, [])) if canon is not None else []
        return next((s for s in spellings if has_cjk(s) == zh), value)


def canonical_rule_texts(rs) -> None:
    """Rule cells, allowed lists, examples and `unless` tests written with a spelling read
    as its value, as workbook cells do (so `紧急` in a rule cell matches a cell holding 紧急)."""
    from .model import Cmp, Test

    al = rs.aliases
    if not al:
        return

    def test(name, t: Test) -> Test:  # cells hold text as compared (casefolded)
        atoms = tuple(Cmp(a.op, norm_text(al.read(name, a.value))) if isinstance(a, Cmp) and isinstance(a.value, str) else a
                      for a in t.atoms)
        return t if atoms == t.atoms else Test(atoms, t.negated, t.text)

    for t in rs.tables.values():
        text_in = [i.type == "text" for i in t.inputs]
        text_out = [o.type == "text" for o in t.outputs]
        for i in t.inputs:
            if i.allowed and i.type == "text":
                i.allowed = [al.read(i.name, v) for v in i.allowed]
        for o in t.outputs:
            if o.allowed and o.type == "text":
                o.allowed = [al.read(o.name, v) for v in o.allowed]
            if o.highlight and o.type == "text":
                o.highlight = {al.read(o.name, k): v for k, v in o.highlight.items()}
        for r in t.rules:
            r.tests = [test(i.name, x) if text_in[k] else x for k, (i, x) in enumerate(zip(t.inputs, r.tests))]
            r.outputs = [al.read(o.name, v) if text_out[k] else v for k, (o, v) in enumerate(zip(t.outputs, r.outputs))]
        for ex in t.examples:
            ex.inputs = {k: al.read(k, v) for k, v in ex.inputs.items()}
            ex.expected = {k: al.read(k, v) for k, v in ex.expected.items()}
        for d in t.due:
            d.unless = {k: test(k, x) for k, x in d.unless.items()}
