"""Parsing input cells (DMN simple unary tests) and output cells of a given type.

Nothing here evaluates text as code: a cell is split into values and operators by a
small hand-written scanner and each value is parsed by its declared type.
"""
from __future__ import annotations

import re

from .model import ANYTHING, Blank, Cmp, Range, Test
from .values import ValueProblem, encode, parse_literal

ORDERED = ("number", "date", "datetime", "duration")
_OP = re.compile(r"^(<=|>=|!=|<>|==|=|<|>)\s*(.*)$", re.S)
_RANGE = re.compile(r"^([\[\]\(])\s*(.+?)\s*\.\.\s*(.+?)\s*([\[\]\)])$", re.S)
_THOUSANDS = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")


def is_dash(text) -> bool:
    return text is None or str(text).strip() in ("", "-")


def split_values(text: str) -> list[str]:
    """Split on commas outside quotes and brackets; keep quotes for the caller."""
    parts, buf, quote, depth = [], [], None, 0
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
        elif ch in "\"'" and not "".join(buf).rstrip()[-1:].isalnum():  # O'Brien: an apostrophe
            quote = ch
            buf.append(ch)
        elif ch == "[" and depth and ".." in "".join(buf):  # [2000..5000[ : an open upper end
            depth -= 1
            buf.append(ch)
        elif ch == "]" and not "".join(buf).strip():  # ]1..9] : an open lower end
            depth += 1
            buf.append(ch)
        elif ch in "[(":
            depth += 1
            buf.append(ch)
        elif ch in "])":
            depth = max(0, depth - 1)
            buf.append(ch)
        elif ch in ",，" and depth == 0:  # a full-width comma separates values too
            parts.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    if quote:
        raise ValueProblem(f"the quote {quote} in '{text}' is never closed")
    parts.append("".join(buf).strip())
    return parts


def unquote(s: str) -> tuple[str, bool]:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return s[1:-1], True
    return s, False


def _value(raw: str, type_: str):
    text, quoted = unquote(raw)
    if not text and not quoted:
        raise ValueProblem("a value is missing (two commas in a row, or a comma at the end?)")
    return encode(parse_literal(text, type_), type_)


def parse_test(raw, type_: str) -> Test:
    """An input cell of the given type; raises ValueProblem in plain words."""
    if is_dash(raw):
        return ANYTHING
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    text = str(raw).strip()
    negated = False
    m = re.match(r"^not\s*\((.*)\)$", text, re.S | re.I)
    if m:
        negated, body = True, m.group(1).strip()
        if not body:
            raise ValueProblem("not() needs something inside, e.g. not(VIP) or not(< 30)")
    else:
        body = text
    if type_ == "number" and _THOUSANDS.match(body):
        raise ValueProblem(
            f"'{body}' reads as several numbers because of the comma; write {body.replace(',', '')} without the thousands separator"
        )
    parts = split_values(body)
    if type_ == "number":  # '>= 5,000' would read as '>= 5' or '= 0'
        for a, b in zip(parts, parts[1:]):
            if re.fullmatch(r"\d{3}(\.\d+)?", b) and re.search(r"\d$", a) and f"{a},{b}" in body:
                n = re.search(r"[\d,.]+$", f"{a},{b}").group(0)
                raise ValueProblem(f"'{n}' reads as several numbers because of the comma; write {n.replace(',', '')} without the thousands separator")
    atoms = []
    for part in parts:
        atoms.append(_atom(part, type_))
    if negated and any(isinstance(a, Blank) for a in atoms) and len(atoms) == 1:
        pass  # not(blank) is fine
    return Test(tuple(atoms), negated, text)


def _atom(part: str, type_: str):
    if not part:
        raise ValueProblem("a value is missing (two commas in a row, or a comma at the end?)")
    if part.lower() == "blank":
        return Blank()
    if part == "-":
        raise ValueProblem("'-' (anything) cannot be combined with other values in one cell")
    if re.match(r"^not\s*\(", part, re.I):
        raise ValueProblem("not(...) must be the whole cell, e.g. not(VIP, Gold)")
    m = _RANGE.match(part)
    if m and ".." in part:
        if type_ not in ORDERED:
            raise ValueProblem(f"a range like {part} needs a number, date, date-time or duration input, not {type_}")
        lo_b, lo, hi, hi_b = m.groups()
        a, b = _value(lo, type_), _value(hi, type_)
        if a > b:
            raise ValueProblem(f"the range {part} is empty: {lo} is larger than {hi}; write the smaller end first")
        if a == b and not (lo_b == "[" and hi_b == "]"):
            raise ValueProblem(f"the range {part} is empty: it starts and ends at {lo} but leaves that end out; write {lo} or [{lo}..{hi}]")
        return Range(a, b, lo_b == "[", hi_b == "]")
    if ".." in part and type_ in ORDERED and not unquote(part)[1]:
        raise ValueProblem(f"'{part}' is not a range; write it like [2..4], [2000..5000) or (1..9]")
    m = re.match(r"^(=>|=<|[≥≤＞＜＝])", part)
    if m:  # a reversed or full-width operator would otherwise read as "'> 5' is not a number"
        fix = {"=>": ">=", "=<": "<=", "≥": ">=", "≤": "<=", "＞": ">", "＜": "<", "＝": "="}[m.group(1)]
        raise ValueProblem(f"'{part}' starts with {m.group(1)}; write {fix}{part[len(m.group(1)):]} instead")
    m = _OP.match(part)
    if m and not unquote(part)[1]:
        op, rest = m.groups()
        op = {"<>": "!=", "==": "="}.get(op, op)
        if not rest.strip():
            raise ValueProblem(f"'{part}' compares with nothing; write it like {op} 30")
        if op in ("<", "<=", ">", ">=") and type_ not in ORDERED:
            raise ValueProblem(f"'{part}' compares by size, which needs a number, date, date-time or duration input, not {type_}")
        return Cmp(op, _value(rest, type_))
    return Cmp("=", _value(part, type_))


def parse_output(raw, type_: str):
    """An output cell: a literal of the output's type, or None for '-'."""
    if is_dash(raw):
        return None
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    text, _ = unquote(str(raw))
    return parse_literal(text, type_)
