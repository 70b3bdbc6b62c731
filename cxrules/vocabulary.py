"""What a rule set reads and writes, for people: decisions, inputs, columns, types."""
from __future__ import annotations

from .model import RuleSet


def input_source(i) -> str:
    if i.decision:
        return f"decision {i.decision}" + (f".{i.output}" if i.output and i.output != i.name else "")
    if i.derive:
        return f"{i.derive}"
    return "column " + " / ".join(i.columns)


def describe(rs: RuleSet) -> list[dict]:
    out = []
    for t in rs.order():
        out.append({
            "decision": t.name,
            "title": t.title,
            "hit": t.hit_text,
            "file": t.loc.file,
            "line": t.loc.line,
            "inputs": [{"name": i.name, "label": i.label, "type": i.type, "source": input_source(i), "columns": i.columns} for i in t.inputs],
            "outputs": [{"name": o.name, "label": o.label, "type": t.output_type(o.name), "columns": o.columns} for o in t.outputs]
            + [{"name": d.name, "label": d.label, "type": "datetime", "columns": d.columns, "due": f"{d.source} + {d.add} in {d.calendar}" if d.add else f"the next step of journey {t.name}"} for d in t.due],
        })
    return out
