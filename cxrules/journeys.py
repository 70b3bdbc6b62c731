"""Journeys: steps with waits, event-driven contacts and contact caps, replayed from dated facts.

A journey's state is never stored. The step a customer is in, since when, the next
action and its due date are computed at each run from the dates the team fills in
(signed up on, coupon sent on, replied on, ...) and the moment of the run (--as-of):
a lost file loses nothing, and a run at any moment gives what a fresh run then gives.

Where durable-rules does the work: every condition a manager writes (a journey's or a
step's `only_if:`, a cap's `only_if:`) is a unary test over a column, compiled into one
`collect` decision table per journey and run by the engine over the distinct
combinations, like any table. durable-rules' own sequences, timers and per-customer
state are not used: its timers run on the wall clock (a run --as-of a past date could
not replay them), its state lives in the engine's memory (the lost file again) and more
than 1024 states fail; and the waits compare one column's date with another's (replied
on or after the survey was sent), which its rules compare only with constants. That
walk through the dated chain is plain date arithmetic (journey_replay.py).

This module holds the model, the loading of `journey:` and `contact_caps:` documents and
the checks of a journey's shape; journey_replay.py computes the results.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .model import COLLECT, Due, Input, Loc, Output, Rule, Table, Test
from .problems import WARNING, did_you_mean
from .unary import parse_test
from .values import ValueProblem, coerce, parse_duration
from .yamlsrc import Map, Scalar, Seq

JOURNEY_KEYS = ("journey", "title", "columns", "start", "only_if", "leave", "steps", "caps", "examples", "description")
START_KEYS = ("from", "wait", "step", "description")
STEP_KEYS = ("step", "wait", "within", "from", "action", "channel", "owner", "done", "only_if", "next", "description")
LEAVE_KEYS = ("on", "after", "step", "description")
CAP_KEYS = ("label", "only_if", "at_most", "sent", "eligible", "channels", "description")
RESULTS = ("step", "since", "next_action", "channel", "owner", "deferred", "due")  # in the order they are written
# English and Chinese header words for each result, after the journey's own column prefix.
RESULT_WORDS = {
    "step": ("step", "步骤"), "since": ("since", "起始日期"), "next_action": ("next action", "下一步行动"),
    "channel": ("channel", "渠道"), "owner": ("owner", "负责人"), "due": ("due", "到期日"),
    "deferred": ("deferred", "暂缓原因"),
}
STARTED, COMPLETED = "Started", "Completed"
START, END = "start", "end"
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass
class Step:
    name: str
    action: str | None
    channel: str | None
    owner: str | None
    done: str | None  # the field the team fills when the action was done
    wait: object = None  # Duration: reached this long after `anchor`
    within: object = None  # Duration: reached at `anchor`, due this long after it
    anchor: str | None = None  # START, a step's name, or None for the step before
    only_if: dict = field(default_factory=dict)  # name -> Test
    next: str | None = None  # a step's name, END, or None for the step below
    loc: Loc = field(default_factory=Loc)
    next_line: int | None = None


@dataclass
class Leave:
    on: str  # a date field: a date in it ends the journey
    after: str  # START or the step whose done date it counts from
    label: str
    loc: Loc = field(default_factory=Loc)


@dataclass
class Cap:
    name: str
    label: str
    only_if: dict = field(default_factory=dict)
    at_most: float | None = None  # share of eligible pushes (0.7)
    sent: str | None = None
    eligible: str | None = None
    channels: list = field(default_factory=list)
    loc: Loc = field(default_factory=Loc)


@dataclass
class Journey:
    name: str
    title: str
    columns: list  # [English prefix, Chinese prefix]
    start_from: str
    start_wait: object
    start_label: str
    steps: list  # Step, in file order
    leave: list = field(default_factory=list)
    only_if: dict = field(default_factory=dict)
    caps: list = field(default_factory=list)  # Cap
    loc: Loc = field(default_factory=Loc)
    timed: str = "date"  # the type of since and due: datetime when it reads a date-time field

    def path(self) -> list:
        """The steps a customer goes through, following `next:` (stops at a loop)."""
        by = {s.name: k for k, s in enumerate(self.steps)}
        out, seen, k = [], set(), 0 if self.steps else None
        while k is not None and k not in seen and k < len(self.steps):
            seen.add(k)
            s = self.steps[k]
            out.append(s)
            if s.next == END:
                break
            k = by.get(s.next) if s.next else k + 1
        return out

    def fields(self) -> list:
        names = [self.start_from] + [s.done for s in self.steps if s.done] + [lv.on for lv in self.leave]
        for c in self.caps:
            names += [x for x in (c.sent, c.eligible) if x]
        return list(dict.fromkeys(names))

    def result(self, what: str) -> str:
        return f"{self.name}_{what}"

    def results(self) -> list:
        """The results it writes: owner only if a step names one, deferred only if caps apply."""
        return [r for r in RESULTS if (r != "owner" or any(s.owner for s in self.steps)) and (r != "deferred" or self.caps)]


@dataclass
class JourneyTable(Table):
    """A journey as the rest of cxrules sees a decision: inputs it reads, outputs it writes."""

    journey: Journey | None = None
    conditions: Table | None = None  # the collect table of its only_if tests (run on the engine)
    reads: tuple = ()  # fields it reads (for `check`'s unused-field warning)

    def output_type(self, name: str) -> str:
        if self.journey is not None and name == self.journey.result("due"):
            return self.journey.timed  # a day when it counts from dates
        return super().output_type(name)


# ------------------------------------------------------------------ loading
def load_document(ld, doc: Map, file: str) -> None:
    """A `journey:` or `contact_caps:` document; resolved once every file is read."""
    pending = ld.__dict__.setdefault("journey_docs", [])
    if "contact_caps" in doc.keys():
        for k in doc.keys():
            if k != "contact_caps":
                ld.err(f"unknown key '{k}' beside contact_caps", file, doc.key_node(k), code="unknown-key")
        pending.append(("caps", doc.get("contact_caps"), file))
    else:
        pending.append(("journey", doc, file))


def resolve(ld) -> None:
    """Build every journey (after fields and tables are known) and add it to the rule set."""
    docs = ld.__dict__.get("journey_docs", [])
    caps: dict[str, Cap] = {}
    for kind, node, file in docs:
        if kind == "caps":
            _caps_of(ld, node, file, caps)
    for kind, node, file in docs:
        if kind == "journey":
            j = _journey_of(ld, node, file, caps)
            if j is not None:
                _check(ld, j)
                ld.rs.tables[j.name] = _table_of(ld, j, node, file)


def _text(ld, node, file, what, **where):
    return ld.text_of(node, file, what, **where)


def _duration(ld, node, file, what, **where):
    t = _text(ld, node, file, what, **where)
    if t is None:
        return None
    try:
        return parse_duration(t)
    except ValueProblem as e:
        ld.err(f"{what}: {e}", file, node, suggestion="write a duration such as 3d, 72h or 2w", code="duration", **where)
        return None


def _field(ld, node, file, what, types=("date", "datetime"), **where) -> str | None:
    name = _text(ld, node, file, what, **where)
    if name is None:
        return None
    f = ld.rs.fields.get(name)
    if f is None:
        ld.err(f"{what} names '{name}', which is not a field", file, node, suggestion=did_you_mean(name, ld.rs.fields) or "declare it under fields: with its type and columns", code="unknown-field", **where)
        return None
    if f.type not in types:
        ld.err(f"{what} needs a {' or '.join(types)} field, but '{name}' is {f.type}", file, node, code="type", **where)
        return None
    return name


def _condition_type(ld, name):
    """(type, columns) of a name an only_if: may test: a field, a column input, or an output."""
    if name in ld.rs.fields:
        f = ld.rs.fields[name]
        return f.type, f.columns
    for t in ld.rs.tables.values():
        for i in t.inputs:
            if i.name == name and i.source == "column":
                return i.type, i.columns
        o = t.output(name)
        if o is not None and not isinstance(t, JourneyTable):
            return t.output_type(name), o.columns
    return None, None


def _only_if(ld, node, file, **where) -> dict:
    if node is None:
        return {}
    if not isinstance(node, Map):
        ld.err("only_if: must map names to cells, e.g. {tier: VIP}", file, node, code="only-if", **where)
        return {}
    out = {}
    for name, (kn, vn) in node.entries.items():
        type_, _ = _condition_type(ld, name)
        if type_ is None:
            known = list(ld.rs.fields) + [o.name for t in ld.rs.tables.values() for o in t.outputs]
            ld.err(f"only_if: tests '{name}', which is neither a field nor a decision's output", file, kn, suggestion=did_you_mean(name, known) or "declare it under fields:", code="unknown-field", **where)
            continue
        raw = vn.text if isinstance(vn, Scalar) else None
        if raw is None:
            ld.err(f"only_if: '{name}' needs one cell, e.g. \">= 8\" or VIP", file, vn, code="only-if", **where)
            continue
        try:
            out[name] = parse_test(raw, type_)
        except ValueProblem as e:
            ld.err(f"only_if: '{name}': {e}", file, vn, code="cell", **where)
    return out


def _caps_of(ld, node, file, caps):
    if not isinstance(node, Map):
        ld.err("contact_caps: must map each cap's name to its settings", file, node, code="caps")
        return
    for name, (kn, spec) in node.entries.items():
        where = {"column": name}
        if not isinstance(spec, Map):
            ld.err(f"cap '{name}' must be a mapping with label, only_if and at_most or channels", file, spec, code="caps", **where)
            continue
        ld.unknown_keys(spec, CAP_KEYS, file, f"cap '{name}'", **where)
        cap = Cap(name, _text(ld, spec.get("label"), file, "label", **where) or name, _only_if(ld, spec.get("only_if"), file, **where), loc=Loc(file, kn.line))
        share = _text(ld, spec.get("at_most"), file, "at_most", **where)
        if share is not None:
            m = _PERCENT.match(share)
            if not m or not 0 <= float(m.group(1)) <= 100:
                ld.err(f"at_most must be a share such as 70 %, not '{share}'", file, spec.get("at_most"), code="caps", **where)
            else:
                cap.at_most = float(m.group(1)) / 100
            cap.sent = _field(ld, spec.get("sent"), file, "sent", ("number",), **where)
            cap.eligible = _field(ld, spec.get("eligible"), file, "eligible", ("number",), **where)
            if not spec.get("sent") or not spec.get("eligible"):
                ld.err(f"cap '{name}' with at_most needs sent: and eligible: (number fields: pushes sent and eligible)", file, kn, code="caps", **where)
        cap.channels = ld.text_list(spec.get("channels"), file, "channels", **where)
        if share is None and not cap.channels:
            ld.err(f"cap '{name}' limits nothing: give at_most: (with sent: and eligible:) or channels:", file, kn, code="caps", **where)
        caps[name] = cap


def _journey_of(ld, doc: Map, file, caps) -> Journey | None:
    name = _text(ld, doc.get("journey"), file, "journey")
    if not name or not re.match(r"^[A-Za-z_]\w*$", name):
        ld.err("'journey:' needs a name of letters, digits and _, e.g. journey: new_customer", file, doc.get("journey") or doc, code="name")
        return None
    where = {"table": name}
    ld.unknown_keys(doc, JOURNEY_KEYS, file, f"journey '{name}'", **where)
    if name in ld.rs.tables:
        ld.err(f"'{name}' is defined twice (also at {ld.rs.tables[name].loc.file}:{ld.rs.tables[name].loc.line})", file, doc.get("journey"), code="duplicate", **where)
        return None
    title = _text(ld, doc.get("title"), file, "title", **where) or name.replace("_", " ").capitalize()
    columns = ld.text_list(doc.get("columns"), file, "columns", **where) or [title]
    start = doc.get("start")
    if not isinstance(start, Map):
        ld.err(f"journey '{name}' needs start: {{from: FIELD}}, the date a customer enters it", file, start or doc, code="journey", **where)
        return None
    ld.unknown_keys(start, START_KEYS, file, "start", **where)
    start_from = _field(ld, start.get("from"), file, "start: from", **where)
    if start.get("from") is None:
        ld.err("start: needs from: FIELD, the date a customer enters the journey", file, start, code="journey", **where)
    j = Journey(name, title, columns, start_from, _duration(ld, start.get("wait"), file, "start: wait", **where),
                _text(ld, start.get("step"), file, "start: step", **where) or STARTED, [], loc=Loc(file, doc.get("journey").line))
    j.only_if = _only_if(ld, doc.get("only_if"), file, **where)
    steps = doc.get("steps")
    if not isinstance(steps, Seq) or not steps.items:
        ld.err(f"journey '{name}' needs steps: a list of {{step, action, channel, done}}", file, steps or doc, code="journey", **where)
        return None
    for sn in steps.items:
        if not isinstance(sn, Map):
            ld.err("each step must be a mapping like {step: Guide, wait: 3d, action: ..., channel: SMS, done: guide_sent_on}", file, sn, code="journey", **where)
            continue
        ld.unknown_keys(sn, STEP_KEYS, file, "a step", **where)
        sname = _text(ld, sn.get("step"), file, "step", **where)
        if not sname:
            ld.err("a step needs a name: step: NAME", file, sn, code="journey", **where)
            continue
        w = dict(where, column=sname)
        if any(s.name == sname for s in j.steps) or sname in (START, END):
            ld.err(f"step '{sname}' is named twice (or is a reserved word: start, end)", file, sn.get("step"), code="duplicate", **w)
            continue
        s = Step(sname, _text(ld, sn.get("action"), file, "action", **w), _text(ld, sn.get("channel"), file, "channel", **w),
                 _text(ld, sn.get("owner"), file, "owner", **w), _field(ld, sn.get("done"), file, "done", **w) if sn.get("done") is not None else None,
                 _duration(ld, sn.get("wait"), file, "wait", **w), _duration(ld, sn.get("within"), file, "within", **w),
                 _text(ld, sn.get("from"), file, "from", **w), _only_if(ld, sn.get("only_if"), file, **w),
                 _text(ld, sn.get("next"), file, "next", **w), Loc(file, sn.line), sn.get("next").line if sn.get("next") is not None else None)
        if s.wait is not None and s.within is not None:
            ld.err(f"step '{sname}' has both wait: and within:; a step is reached after a wait, or at once with a deadline", file, sn.get("within"), code="journey", **w)
        if not s.action:
            ld.err(f"step '{sname}' needs action: what the team does", file, sn, code="journey", **w)
        j.steps.append(s)
    names = {s.name for s in j.steps}
    for s in j.steps:
        w = dict(where, column=s.name)
        if s.next and s.next != END and s.next not in names:
            ld.err(f"step '{s.name}': next: '{s.next}' is not a step of this journey", file, line=s.next_line, suggestion=did_you_mean(s.next, names) or "name a step, or end", code="journey", **w)
            s.next = END
        if s.anchor and s.anchor != START and s.anchor not in names:
            ld.err(f"step '{s.name}': from: '{s.anchor}' is neither start nor a step", file, line=s.loc.line, suggestion=did_you_mean(s.anchor, names), code="journey", **w)
            s.anchor = None
    leave = doc.get("leave")
    for ln in (leave.items if isinstance(leave, Seq) else [] if leave is None else [leave]):
        if not isinstance(ln, Map):
            ld.err("each leave: entry must be a mapping like {on: replied_on, after: Survey, step: Replied}", file, ln, code="journey", **where)
            continue
        ld.unknown_keys(ln, LEAVE_KEYS, file, "a leave: entry", **where)
        on = _field(ld, ln.get("on"), file, "leave: on", **where)
        after = _text(ld, ln.get("after"), file, "leave: after", **where) or START
        if after != START and after not in names:
            ld.err(f"leave: after: '{after}' is neither start nor a step", file, ln.get("after"), suggestion=did_you_mean(after, names), code="journey", **where)
            continue
        if on:
            j.leave.append(Leave(on, after, _text(ld, ln.get("step"), file, "leave: step", **where) or f"Left: {on}", Loc(file, ln.line)))
    for cn in ld.text_list(doc.get("caps"), file, "caps", **where):
        if cn not in caps:
            ld.err(f"journey '{name}' names cap '{cn}', which contact_caps: does not define", file, doc.get("caps"), suggestion=did_you_mean(cn, caps), code="caps", **where)
        else:
            j.caps.append(caps[cn])
    if start_from is None:
        return None
    return j


def _check(ld, j: Journey) -> None:
    """The mistakes a manager makes in a journey: a loop, a step nobody reaches, a wait
    no one can leave, two steps that come due together."""
    file, where = j.loc.file, {"table": j.name}
    by = {s.name: k for k, s in enumerate(j.steps)}
    # a loop: next: back to a step already passed (one done column per step cannot record a second pass)
    seen, k = [], 0
    while k is not None and k < len(j.steps):
        s = j.steps[k]
        if k in seen:
            prev = j.steps[seen[-1]]
            cycle = " -> ".join(j.steps[x].name for x in seen[seen.index(k):]) + f" -> {s.name}"
            ld.err(f"journey '{j.name}' loops: {cycle}; a customer would pass a step twice, and its done: column holds one date",
                   file, line=prev.next_line or prev.loc.line, code="journey-loop", suggestion="end the journey (next: end) or start a new journey for the second round", column=prev.name, **where)
            break
        seen.append(k)
        if s.next == END:
            break
        k = by.get(s.next) if s.next else k + 1
    on_path = {j.steps[x].name for x in seen}
    for s in j.steps:
        if s.name not in on_path:
            ld.err(f"step '{s.name}' of journey '{j.name}' cannot be reached: no step leads to it", file, line=s.loc.line, severity=WARNING,
                   code="journey-unreachable", suggestion="point a step's next: at it, or remove it", column=s.name, **where)
    path = [j.steps[x] for x in seen]
    order = {s.name: n for n, s in enumerate(path)}
    for n, s in enumerate(path):
        if s.anchor and s.anchor != START and order.get(s.anchor, n) >= n:
            ld.err(f"step '{s.name}' waits from step '{s.anchor}', which comes after it", file, line=s.loc.line, code="journey-loop",
                   suggestion="count the wait from start or from a step before it", column=s.name, **where)
        base = _anchor_step(path, n)
        if base is not None and base.done is None and (s.wait is not None or s.within is not None or n < len(path)):
            ld.err(f"step '{base.name}' has no done: column, so the wait before '{s.name}' never starts and customers stay in '{base.name}' for ever",
                   file, line=base.loc.line, code="journey-no-exit", suggestion=f"add done: FIELD to '{base.name}', the date the team did it", column=base.name, **where)
    seen_at: dict = {}
    for n, s in enumerate(path):
        base = _anchor_step(path, n)
        key = (base.name if base is not None else START, _length(s.wait), _length(s.within), tuple(sorted((k, t.text) for k, t in s.only_if.items())))
        if key in seen_at:
            other = seen_at[key]
            ld.err(f"steps '{other.name}' and '{s.name}' of journey '{j.name}' fire together: both come due {_when(s)} after {key[0]}",
                   file, line=s.loc.line, severity=WARNING, code="journey-together", suggestion="give one of them a longer wait, or merge them into one step", column=s.name, **where)
        seen_at[key] = s


def _anchor_step(path, n):
    """The step whose done date step n's wait counts from (None: the journey's start)."""
    s = path[n]
    if s.anchor == START:
        return None
    if s.anchor:
        return next((p for p in path if p.name == s.anchor), None)
    return path[n - 1] if n else None


def _length(d):
    return None if d is None else d.seconds


def _when(s: Step) -> str:
    d = s.wait if s.wait is not None else s.within
    return str(d) if d is not None else "at once"


def _table_of(ld, j: Journey, doc: Map, file) -> JourneyTable:
    rs = ld.rs
    en, zh = j.columns[0], (j.columns[1] if len(j.columns) > 1 else j.columns[0])
    timed = "datetime" if any(rs.fields[f].type == "datetime" for f in j.fields() if f in rs.fields and rs.fields[f].type in ("date", "datetime")) else "date"
    inputs = []
    for f in j.fields():
        fd = rs.fields.get(f)
        if fd is not None:
            # the start and the done columns are the evidence that a sheet runs this journey
            needed = f == j.start_from or any(s.done == f for s in j.steps)
            inputs.append(Input(f, fd.type, fd.columns[0] if fd.columns else f, list(fd.columns), loc=Loc(file, doc.line), optional=not needed))
    conds = {}
    for where in [j.only_if] + [s.only_if for s in j.steps] + [c.only_if for c in j.caps]:
        conds.update({k: v for k, v in where.items()})
    cond_inputs = []
    for name in conds:
        type_, cols = _condition_type(ld, name)
        cond_inputs.append(Input(name, type_, name, list(cols or [name]), loc=Loc(file, doc.line), optional=True))
    types = {"step": "text", "since": timed, "next_action": "text", "channel": "text", "owner": "text", "deferred": "text"}
    headers = {r: [f"{en}: {RESULT_WORDS[r][0]}", f"{zh}：{RESULT_WORDS[r][1]}"] for r in RESULTS}
    outputs = [Output(j.result(r), types[r], headers[r][0], headers[r], loc=Loc(file, doc.line)) for r in j.results() if r != "due"]
    # the due date is a due date like any table's: recalc counts it in Days overdue and the CX summary
    due = Due(j.result("due"), j.start_from, "", "", headers["due"][0], headers["due"], Loc(file, doc.line))
    j.timed = timed
    # the values the step column can take: the CX summary counts them
    outputs[0].allowed = list(dict.fromkeys([j.start_label] + [s.name for s in j.path()] + [COMPLETED] + [lv.label for lv in j.leave]))
    table = JourneyTable(j.name, j.title, "first", None, inputs + [i for i in cond_inputs if i.name not in {x.name for x in inputs}], outputs, [], [due],
                         loc=Loc(file, doc.get("journey").line), journey=j, reads=tuple(j.fields()) + tuple(conds))
    table.conditions = _conditions_table(j, cond_inputs)
    table.examples = _examples_of(ld, doc.get("examples"), j, table, file)
    return table


def _conditions_table(j: Journey, inputs: list) -> Table | None:
    """One collect table: a rule row per only_if (the journey's, each step's, each cap's)."""
    tagged = [("journey", j.only_if)] + [(f"step:{s.name}", s.only_if) for s in j.steps] + [(f"cap:{c.name}", c.only_if) for c in j.caps]
    tagged = [(tag, tests) for tag, tests in tagged if tests]
    if not tagged:
        return None
    out = Output(f"_{j.name}_conditions", "text", "conditions")
    rules = [Rule(n + 1, [tests.get(i.name, Test()) for i in inputs], [tag]) for n, (tag, tests) in enumerate(tagged)]
    return Table(f"_{j.name}_conditions", f"{j.title} conditions", COLLECT, None, list(inputs), [out], rules, loc=j.loc)


def _examples_of(ld, node, j: Journey, table: JourneyTable, file) -> list:
    timed = j.timed
    from .model import Example

    if node is None:
        return []
    if not isinstance(node, Seq):
        ld.err("examples: must be a list of {as_of, FIELD: date, ..., step: ...}", file, node, code="examples", table=j.name)
        return []
    known = {i.name: i.type for i in table.inputs}
    out = []
    for n, en in enumerate(node.items, 1):
        if not isinstance(en, Map):
            ld.err("an example must be a mapping", file, en, code="examples", table=j.name, row=n)
            continue
        inputs, expected = {}, {}
        for k, (kn, vn) in en.entries.items():
            raw = vn.text if isinstance(vn, Scalar) and not vn.is_null else None
            if k == "as_of":
                type_ = "datetime"
            elif k in j.results():
                type_ = timed if k == "due" else table.output(j.result(k)).type
            elif k in known:
                type_ = known[k]
            else:
                ld.err(f"example {n} gives '{k}', which journey '{j.name}' does not read or write", file, kn, code="examples", table=j.name, row=n,
                       suggestion=did_you_mean(k, list(known) + j.results() + ["as_of"]))
                continue
            try:
                v = None if raw is None or raw.strip() == "-" else coerce(raw, type_)
            except ValueProblem as e:
                ld.err(f"example {n}, '{k}': {e}", file, vn, code="examples", table=j.name, row=n)
                continue
            if k in j.results():
                expected[j.result(k)] = v
            else:
                inputs[k] = v
        if "as_of" not in inputs:
            ld.err(f"example {n} needs as_of: the moment it is computed at", file, en, code="examples", table=j.name, row=n)
            continue
        out.append(Example(n, inputs, expected, Loc(file, en.line)))
    return out
