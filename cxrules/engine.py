"""The lean driver over durable-rules' C engine; the only module that imports it.

Rows go in chunks, each with a unique key, into one state per ruleset; actions are
drained with start_action / complete_and_start_action. The stock Python host
(`durable.lang.post`) is not used: it runs one row at a time, raises on rows no rule
matches and loses batched actions (see docs/engine.md).
"""
from __future__ import annotations

import re
import sys
import threading

import orjson

from .compiler import KEY, Compiled
from .problems import CxError

try:
    import durable_rules_engine as _dre
except (ImportError, OSError) as e:  # not installed, or a build that cannot load here (the PyPI build on 3.13)
    _dre = None
    _import_error: Exception | None = e
else:
    _import_error = None

CHUNK = 250  # the engine slows sharply with thousands of messages in one state call
_ROW_ERRORS = (orjson.JSONEncodeError,) + ((_dre.error,) if _dre is not None else ())  # what one bad row can cause; anything else is a bug


class EngineError(Exception):
    """The C engine refused something; names the ruleset and the code it answered."""


class EngineUnavailable(CxError):
    """durable-rules cannot be loaded in this Python; the message says how to fix it."""


def unavailable_reason() -> str | None:
    """Why the engine cannot be used here, with the fix; None when it loaded."""
    if _import_error is None:
        return None
    detail = str(_import_error).strip().splitlines()[0] if str(_import_error).strip() else type(_import_error).__name__
    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if isinstance(_import_error, ModuleNotFoundError):
        what = f"durable-rules, the rule engine, is not installed in this Python ({sys.executable})"
    elif "PyEval_CallObject" in detail:
        what = f"durable-rules 2.0.28 as built from PyPI does not work on Python {py} ({detail})"
    else:
        what = f"durable-rules, the rule engine, cannot be loaded in Python {py} ({detail})"
    exe = f'"{sys.executable}"' if " " in sys.executable else sys.executable
    return (f"{what}. Install the patched durable-rules wheel for this Python: {exe} -m pip install --force-reinstall "
            "--no-deps --only-binary durable-rules --find-links WHEELS durable-rules==2.0.28, where WHEELS is the "
            "wheels folder of the cxrules bundle, or vendor/durable-rules/dist after "
            "'python vendor/durable-rules/build.py' in a cxrules clone (see docs/install.md)")


def require() -> None:
    """Raise EngineUnavailable (one sentence naming the fix) if the engine cannot be used."""
    reason = unavailable_reason()
    if reason:
        raise EngineUnavailable(reason)


class Engine:
    """Registered rulesets by content name; one per process (the C engine is not thread-safe)."""

    def __init__(self):
        require()
        self._handles: dict[str, int] = {}
        self._lock = threading.Lock()

    def handle(self, compiled: Compiled) -> int:
        h = self._handles.get(compiled.name)
        if h is None:
            try:
                h = _dre.create_ruleset(compiled.name, _json(compiled.definition))
            except Exception as e:  # the engine answers only an error code
                raise EngineError(f"the rule engine refused ruleset {compiled.name}: {e}") from None
            self._handles[compiled.name] = h
        return h

    def run(self, compiled: Compiled, rows: list[dict]) -> list:
        """Matching rule names for each row, in order.

        `rows` are dicts of engine keys (`i0`, `i1`, ...) to encoded values, blanks left
        out; or, all of them, those dicts as JSON without the braces ('"i0":1.5,"i1":"vip"'). For event tables each entry is one rule name (or "nomatch"); for fact
        tables it is the list of matching rule names in row order (empty if none). A row
        the engine cannot take gets a `Refused` instead; the other rows are unaffected.
        """
        h = self.handle(compiled)
        n = len(rows)
        with self._lock:
            if compiled.as_events:
                out: list = [None] * n
                for start in range(0, n, CHUNK):
                    _events(h, rows, start, min(n, start + CHUNK), out)
                return out
            out = [[] for _ in range(n)]
            pri = compiled.pri
            for start in range(0, n, CHUNK):
                _facts(h, rows, start, min(n, start + CHUNK), out)
            for names in out:
                if names.__class__ is list and len(names) > 1:  # a rule fires once per true alternative of an $or: count it once
                    names[:] = sorted(set(names), key=pri.__getitem__)
            return out


class Refused:
    """The answer for a row the engine refused or dropped (see _events)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self):
        return f"Refused({self.reason!r})"


def _events(h, rows, start, stop, out):
    """Assert rows[start:stop] as events; every event fires exactly one rule (nomatch at worst).

    The engine stops reading a batch at the first message it cannot parse and still answers
    OK, so a row without an answer was dropped: each such row is then tried alone.
    """
    error = None
    try:
        _dre.assert_events(h, _payload(rows, start, stop))
    except _ROW_ERRORS as e:  # orjson or the engine refusing one row of the batch
        error = e
    _drain_into(h, out)
    if error is None and None not in out[start:stop]:
        return
    for k in range(start, stop):
        if out[k] is None:
            error = None
            try:
                _dre.assert_events(h, _payload(rows, k, k + 1))
            except _ROW_ERRORS as e:
                error = e
            _drain_into(h, out)
            if out[k] is None:
                out[k] = Refused(_reason(error))


def _drain_into(h, out) -> None:
    """out[row key] = the rule that fired, for every action waiting (the _drain loop, inline:
    it runs once per row)."""
    result = _dre.start_action(h)
    if not result:
        return
    match, complete = _ACTION.match, _dre.complete_and_start_action
    text, action = result[1], result[2]
    while text:
        m = match(text)
        if m is not None:
            out[int(m.group(2))] = m.group(1)
        text = complete(h, action)


def _facts(h, rows, start, stop, out):
    """Assert rows[start:stop] as facts, drain, retract; as in _events, a dropped row is tried alone."""
    error = payload = None
    seen = []  # every fact fires nomatch once: the rows the engine read
    try:
        payload = _payload(rows, start, stop)
        _dre.assert_facts(h, payload)
    except _ROW_ERRORS as e:
        error = e
    for rule, k in _drain(h):
        if rule != "nomatch":
            out[k].append(rule)
        else:
            seen.append(k)
    if payload is not None:
        try:
            _dre.retract_facts(h, payload)
        except _dre.error:  # a batch the engine read only in part
            if error is None:
                raise
    if error is None and len(seen) == stop - start:
        return
    read = set(seen)
    for k in range(start, stop):
        if k in read:
            continue
        error = one = None
        got, ok = [], False
        try:
            one = _payload(rows, k, k + 1)
            _dre.assert_facts(h, one)
        except _ROW_ERRORS as e:
            error = e
        for rule, _ in _drain(h):
            if rule != "nomatch":
                got.append(rule)
            else:
                ok = True
        if one is not None:
            try:
                _dre.retract_facts(h, one)
            except _dre.error:  # never asserted
                pass
        out[k] = got if ok else Refused(_reason(error))


def _payload(rows, start, stop) -> str:
    if start < stop and rows[start].__class__ is str:  # rows given as JSON already (see body)
        return "[" + ",".join(f'{{"{KEY}":{k},{rows[k]}}}' if rows[k] else f'{{"{KEY}":{k}}}' for k in range(start, stop)) + "]"
    return _json([{KEY: k, **rows[k]} for k in range(start, stop)])


def key_json(key: str, v) -> str:
    """'"key":value' as _json writes it in a message."""
    return _json({key: v})[1:-1]


def _reason(e: Exception | None) -> str:
    if e is None:
        return "the engine dropped it"
    text = str(e) or type(e).__name__
    return text.encode("ascii", "backslashreplace").decode("ascii")[:100]


# orjson writes 1e16 and 2e-07 as "1e16" and "2e-7"; the engine's JSON parser reads a
# number without a '.' as an integer and stops at the 'e', so the message is refused and
# the rest of the chunk is lost. Give such numbers a '.': "1.0e16".
_EXPONENT = re.compile(r'("(?:i\d+|_k)":-?\d+)(?=[eE])')


def _json(obj) -> str:
    text = orjson.dumps(obj).decode()
    return _EXPONENT.sub(r"\1.0", text) if "e" in text or "E" in text else text


_ACTION = re.compile(r'\{"([^"]+)":\{"m":\{"_k":\s*(\d+)')


def _parse(action: str):
    """(rule name, row key) from an action '{"r3":{"m":{"_k": 12, ...}}}'."""
    m = _ACTION.match(action)
    if m is None:  # the engine's own state fact: not a row
        return None, None
    return m.group(1), int(m.group(2))


def _drain(h):
    result = _dre.start_action(h)
    if not result:
        return
    rule, k = _parse(result[1])
    if k is not None:
        yield rule, k
    action = result[2]
    while True:
        nxt = _dre.complete_and_start_action(h, action)
        if not nxt:
            return
        rule, k = _parse(nxt)
        if k is not None:
            yield rule, k


def self_test() -> None:
    """One row through a one-rule ruleset, as the driver runs rows; EngineUnavailable if the
    engine cannot load or answers wrong (for `cxrules doctor`)."""
    require()
    global _self_tests
    _self_tests += 1  # a ruleset name can be registered once per process
    try:
        h = _dre.create_ruleset(f"cxrules_self_test_{_self_tests}", _json({"one": {"all": [{"m": {"x": 1}}]}}))
        _dre.assert_events(h, _json([{KEY: 0, "x": 1}]))
        got = list(_drain(h))
    except Exception as e:  # noqa: BLE001 - any failure here is the answer
        raise EngineUnavailable(f"durable-rules loads but does not run a rule ({type(e).__name__}: {e}); reinstall it as docs/install.md says") from None
    if got != [("one", 0)]:
        raise EngineUnavailable(f"durable-rules loads but answered {got!r} for a one-rule test; reinstall it as docs/install.md says")


_self_tests = 0
_engine: Engine | None = None


def default_engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = Engine()
    return _engine
