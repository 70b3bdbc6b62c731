"""Replaying a journey from dated facts: each row's step, since, next action, due date and
deferral, a column at a time (numpy), as of the run's moment; and the journeys' examples.

Nothing is stored between runs (see journeys.py): the same dates and moment always give
the same results. Moments are seconds since 1970 as doubles, NaN for a blank; each step
of a journey is one pass over the rows still walking it.
"""
from __future__ import annotations

import datetime as dt

from .journeys import COMPLETED, START, Journey, JourneyTable
from .problems import ERROR

_UNIX = dt.datetime(1970, 1, 1)
_EPOCH_ORD = dt.date(1970, 1, 1).toordinal()
_DAY = 86400.0


def run(evaluator, table: JourneyTable, ctx) -> None:
    """Compute the journey's results for every row into ctx.ev.columns."""
    from .columnar import coded, np

    j, ev, n = table.journey, ctx.ev, ctx.ev.n
    rs = evaluator.rs
    bad = set(ctx.bad_rows)
    facts = {}
    encoded = ctx.__dict__.setdefault("journey_facts", {})  # journeys share facts (pushes sent): each encoded once
    for f in j.fields():
        ftype = rs.fields[f].type
        column = ctx.column(f, ftype, numbered=True)
        if f not in encoded:
            encoded[f] = _seconds(column, ftype, ctx.numberings.get(f))
        facts[f] = encoded[f]
        bad |= ctx.bad.get(f, set())
    tags: dict = {}
    if table.conditions is not None:
        evaluator._run_table(table.conditions, ctx, lambda name: False, shared=True)
        held = ev.columns[table.conditions.outputs[0].name]
        for i in table.conditions.inputs:
            bad |= ctx.bad.get(i.name, set())
        # the rows of a combination share the rule rows that matched: each combination looked at once
        fired = coded(ev.fired.get(table.conditions.name))
        if fired is not None:
            rule_of = {r.index: r for r in table.conditions.rules}
            lists = [[rule_of[k].outputs[0] for k in x] if x else None for x in fired[0]]
            inv = fired[1]
        else:
            ids = np.fromiter(map(id, held), np.int64, n)
            _, first, inv = np.unique(ids, return_index=True, return_inverse=True)
            lists, inv = [held[i] for i in first.tolist()], inv.reshape(-1)
        for r in table.conditions.rules:
            tag = r.outputs[0]
            tags[tag] = np.array([bool(x) and tag in x for x in lists], bool)[inv]
    ok = np.ones(n, bool)
    if bad:
        ok[sorted(bad)] = False
    _odd_dates(table, ctx, facts, ok)
    names, got = walk(j, facts, tags, _encode_moment(ctx.as_of), ok)
    _write(table, ev, ctx, names, got, bad, n)
    ev.fired[table.name] = [None] * n


def _odd_dates(table: JourneyTable, ctx, facts: dict, ok) -> None:
    """Warn of dates the replay leaves out without a word: one after the moment of the run
    (not happened yet: usually a mistyped year), and a leave event before the step it answers
    (a reply dated before its survey was sent). Each once per row and column, across journeys;
    the dates of a step or event only for rows whose journey has started by then (a run as of
    an earlier moment says 'not in the journey', not a warning for each later date)."""
    from .columnar import np
    from .evaluation import RowProblem  # it imports this module
    from .problems import WARNING
    from .values import display

    j, ev, now = table.journey, ctx.ev, _encode_moment(ctx.as_of)
    warned = ctx.__dict__.setdefault("journey_warned", set())
    when = display(ctx.as_of)

    def add(i: int, name: str, msg: str) -> None:
        if (i, name) not in warned:
            warned.add((i, name))
            ev.problems.append(RowProblem(i, name, msg, table.name, WARNING, suggestion="correct the date if it is mistyped"))

    def value(name, i):
        v = ctx.column(name, ctx.evaluator.rs.fields[name].type)[i]
        return display(v)

    with np.errstate(invalid="ignore"):
        started = ok & (facts[j.start_from] + _secs(j.start_wait, 0) <= now)
    for f, a in facts.items():
        if ctx.evaluator.rs.fields[f].type not in ("date", "datetime"):
            continue
        with np.errstate(invalid="ignore"):
            late = np.flatnonzero((ok if f == j.start_from else started) & (a > now))
        for i in late.tolist():
            add(i, f, f"{ctx.label(f)} ({value(f, i)}) is after the moment of the run ({when}), so it does not count yet")
    done_of = {s.name: s.done for s in j.steps if s.done}
    for lv in j.leave:
        step = done_of.get(lv.after)
        if step is None:
            continue
        with np.errstate(invalid="ignore"):
            early = np.flatnonzero(started & (facts[lv.on] < facts[step]) & (facts[lv.on] <= now))
        for i in early.tolist():
            add(i, lv.on, f"{ctx.label(lv.on)} ({value(lv.on, i)}) is before {ctx.label(step)} ({value(step, i)}), "
                          f"so it does not count")


def walk(j: Journey, facts: dict, tags: dict, now: float, rows):
    """Each row's place in the journey: (names, columns) where columns hold, per row, the
    code of its step's name in `names` (-1 outside the journey), since and due (seconds,
    NaN blank), the index of the next step in the path (-1 none) and the cap deferring it (-1 none).

    facts: field -> float array (seconds for moments, plain numbers for counts, NaN blank);
    tags: condition tag -> bool array (the only_if tests that hold); rows: bool array of
    rows to compute."""
    from .columnar import np

    n = len(rows)
    nan = np.full(n, np.nan)
    path = j.path()
    names: list = []

    def code(name):
        if name not in names:
            names.append(name)
        return names.index(name)

    def held(tag, tests):
        return tags.get(tag, np.zeros(n, bool)) if tests else np.ones(n, bool)

    def fact(name):
        return facts[name] if name else nan

    def valid(d, frm):
        with np.errstate(invalid="ignore"):
            return ~np.isnan(d) & (d >= frm) & (d <= now)

    def earliest(mask_and_dates):
        """(date, label code) of the earliest of several (mask, dates, label) per row."""
        when, what = nan.copy(), np.full(n, -1)
        for mask, e, label in mask_and_dates:
            with np.errstate(invalid="ignore"):
                better = mask & (np.isnan(when) | (e < when))
            when = np.where(better, e, when)
            what = np.where(better, code(label), what)
        return when, what

    base = fact(j.start_from)
    inside = rows & ~np.isnan(base) & held("journey", j.only_if)
    start = base + _secs(j.start_wait, 0)
    step = np.full(n, -1)
    since, due, nxt = nan.copy(), nan.copy(), np.full(n, -1)
    with np.errstate(invalid="ignore"):
        # the dates of an earlier round whose start has moved since (a purchase): did an event end it?
        first = fact(path[0].done) if path and path[0].done else nan
        stale = inside & (first < start) & (first <= now) & (now < start)
        when, what = earliest([(stale & valid(fact(lv.on), first), fact(lv.on), lv.label) for lv in j.leave])
        ended = stale & (what >= 0)
        step[ended], since[ended] = what[ended], when[ended]
        active = inside & (now >= start)
    walking = active.copy()
    cur, cur_since, last = np.full(n, code(j.start_label)), start.copy(), start.copy()
    anchors = {START: start}
    for k, s in enumerate(path):
        here = walking & held(f"step:{s.name}", s.only_if)
        if s.anchor == START or (s.anchor is None and k == 0):
            at = start
        elif s.anchor:
            at = np.where(np.isnan(anchors.get(s.anchor, nan)), last, anchors.get(s.anchor, nan))
        else:
            at = last
        reached = at + _secs(s.wait, 0) if s.within is None else at
        when_due = at + _secs(s.within if s.within is not None else s.wait, 0)
        done = fact(s.done)
        did = valid(done, start)
        stop = here & ~did
        waiting = stop & (now < reached)
        at_step = stop & ~waiting
        step = np.where(waiting, cur, np.where(at_step, code(s.name), step))
        since = np.where(waiting, cur_since, np.where(at_step, reached, since))
        due = np.where(stop, when_due, due)
        nxt = np.where(stop, k, nxt)
        walking &= ~stop
        moved = here & did
        anchors[s.name] = np.where(moved, done, nan)
        cur = np.where(moved, code(s.name), cur)
        cur_since = np.where(moved, np.fmin(reached, done), cur_since)
        last = np.where(moved, done, last)
    completed = walking
    step = np.where(completed, code(COMPLETED), step)
    since = np.where(completed, last, since)
    # an event on or after its point, up to now, takes the customer out (after completion: no longer)
    with np.errstate(invalid="ignore"):
        when, what = earliest([(active & valid(fact(lv.on), anchors.get(lv.after, nan)) & (~completed | (fact(lv.on) <= last)),
                                fact(lv.on), lv.label) for lv in j.leave])
    left = active & (what >= 0)
    step = np.where(left, what, step)
    since = np.where(left, when, since)
    due = np.where(left, np.nan, due)
    nxt = np.where(left, -1, nxt)
    return names, {"step": step, "since": since, "due": due, "next": nxt, "deferred": _deferred(j, path, facts, tags, nxt)}


def _deferred(j: Journey, path: list, facts: dict, tags: dict, nxt):
    """Per row, the index of the first cap that holds its next contact back (-1: it may go ahead)."""
    from .columnar import np

    n = len(nxt)
    out = np.full(n, -1)
    has = nxt >= 0
    for k, c in enumerate(j.caps):
        hit = np.zeros(n, bool)
        if c.channels:
            banned = np.array([s.channel is not None and any(s.channel.casefold() == x.casefold() for x in c.channels) for s in path] + [False])
            hit |= banned[np.where(has, nxt, len(path))]
        if c.at_most is not None:
            sent, eligible = facts[c.sent], facts[c.eligible]
            with np.errstate(invalid="ignore"):
                hit |= (eligible != 0) & ~np.isnan(eligible) & (sent >= c.at_most * eligible)
        if c.only_if:
            hit &= tags.get(f"cap:{c.name}", np.zeros(n, bool))
        out = np.where((out < 0) & has & hit, k, out)
    return out


def _write(table: JourneyTable, ev, ctx, names: list, got: dict, bad: set, n: int) -> None:
    """The columns as lists of values, built with numpy: texts picked by code, moments decoded once each."""
    from .columnar import Coded, np

    j = table.journey
    path = j.path()
    date_out = j.timed == "date"
    step, nxt, deferred = got["step"], got["next"], got["deferred"]

    def pick(texts: list, codes):  # codes -1: blank
        return Coded(list(texts) + [None], np.where(codes >= 0, codes, len(texts)))

    def moments(a, mask):
        mask = mask & ~np.isnan(a)
        if not mask.any():
            return Coded([None], np.zeros(n, np.int64))
        uniq, inv = np.unique(a[mask], return_inverse=True)
        codes = np.full(n, len(uniq), np.int64)
        codes[mask] = inv.reshape(-1)
        return Coded([_decode_moment(float(x), date_out) for x in uniq.tolist()] + [None], codes)

    has = nxt >= 0
    cols = {
        "step": pick(names, step),
        "since": moments(got["since"], step >= 0),
        "next_action": pick([s.action for s in path], nxt),
        "channel": pick([s.channel for s in path], nxt),
        "owner": pick([s.owner for s in path], nxt),
        "due": moments(got["due"], has),
        "deferred": pick([c.label for c in j.caps], np.where(has, deferred, -1)),
    }
    for r in j.results():
        ev.columns[j.result(r)] = cols[r]
        ctx.bad[j.result(r)] = bad
    ev.settled[j.result("due")] = set(np.flatnonzero(has & (deferred >= 0)).tolist())  # held back by a cap: not overdue


def _seconds(values: list, type_: str, numbering=None):
    """A typed column as doubles (NaN blank): moments as seconds since 1970, numbers as they
    are. numbering: the column's (distinct values, codes) when known."""
    from .columnar import encoded, exact_floats, np, numbered

    if type_ in ("date", "datetime"):
        # a few hundred distinct dates among many rows: each encoded once (aware moments
        # equal across zones but encoded by their wall time: the per-value path)
        keys, codes = numbering or numbered(values)
        kinds = set(map(type, keys)) - {type(None)}
        if kinds <= {dt.date, dt.datetime} and not any(v.tzinfo for v in keys if v.__class__ is dt.datetime):
            present = [v for v in keys if v is not None]
            enc = encoded(present, "date") * _DAY if kinds <= {dt.date} else encoded(present, "datetime") if kinds <= {dt.datetime} else None
            secs = iter(enc.tolist() if enc is not None else map(_encode_moment, present))
            return np.array([np.nan if v is None else next(secs) for v in keys], np.float64)[codes]
        kind = "date" if set(map(type, values)) <= {dt.date, type(None)} else "datetime"
        a = encoded(values, kind)
        if a is not None:
            return a * _DAY if kind == "date" else a
        return np.array([np.nan if v is None else _encode_moment(v) for v in values], dtype=np.float64)
    a = exact_floats(values)
    return a if a is not None else np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _encode_moment(v) -> float:
    if not isinstance(v, dt.datetime):
        v = dt.datetime(v.year, v.month, v.day)
    return (v.replace(tzinfo=None) - _UNIX).total_seconds()


def _decode_moment(x: float, as_date: bool):
    t = _UNIX + dt.timedelta(seconds=x)
    return t.date() if as_date else t


def _secs(d, default):
    return default if d is None else d.seconds


# ------------------------------------------------------------------ examples
def run_examples(evaluator, table: JourneyTable) -> list:
    from .testing import ExampleResult

    out = []
    for e in table.examples:
        row = {k: v for k, v in e.inputs.items() if k != "as_of"}
        r = evaluator.evaluate([row], table.name, e.inputs["as_of"])
        got = {k: r.columns.get(k, [None])[0] for k in e.expected}
        probs = [p.message for p in r.problems if p.severity == ERROR]
        shown = {k.removeprefix(table.name + "_"): v for k, v in e.expected.items()}
        got_shown = {k.removeprefix(table.name + "_"): v for k, v in got.items()}
        out.append(ExampleResult(table.name, e.index, e.loc.file, e.loc.line, e.inputs, shown, got_shown, None, probs))
    return out
