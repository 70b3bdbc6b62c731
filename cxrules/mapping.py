"""Which header feeds which input: a team's own headers mapped to the names the rules read.

A mapping lives with the workbook, in a sheet a person edits in Excel (SETTINGS_SHEET:
one row per header, 'Header' and 'Reads as'), and can be given on the command line
(--map "Spend 12m (CNY)=monetary"). `propose` suggests one from a sheet's headers by
fuzzy matching in English and Chinese, with a confidence.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .problems import ERROR, WARNING, Problem, did_you_mean
from .values import norm_header

SETTINGS_SHEET = "CX settings"
SETTINGS_SHEETS = (SETTINGS_SHEET, "CX 设置")
HEAD = ["Header", "Reads as", "Sheet", "Confidence", "Note"]
HEAD_ZH = ["列名", "规则输入", "工作表", "把握", "说明"]
_HEAD_KEYS = {"header": 0, "列名": 0, "readsas": 1, "规则输入": 1, "input": 1, "sheet": 2, "工作表": 2}

# words that name the same thing in a header: each maps to one canonical token
_SYNONYMS = {
    "order": "buy", "orders": "buys", "purchase": "buy", "purchases": "buys", "bought": "buy", "buy": "buy",
    "spend": "spend", "spent": "spend", "spending": "spend", "amount": "spend", "revenue": "spend", "sales": "spend",
    "value": "spend", "total": "", "sum": "", "cny": "", "rmb": "", "yuan": "", "the": "", "of": "", "in": "",
    "number": "count", "no": "count", "count": "count", "#": "count", "qty": "count",
    "date": "when", "day": "when", "time": "when", "at": "when", "on": "when",
    "opened": "open", "created": "open", "raised": "open", "logged": "open", "open": "open",
    "customer": "client", "client": "client", "cust": "client",
    "case": "ticket", "ticket": "ticket", "complaint": "ticket", "issue": "ticket",
    "severity": "priority", "priority": "priority", "urgency": "priority",
    "type": "kind", "category": "kind", "kind": "kind",
    "last": "last", "latest": "last", "recent": "last", "most": "",
    "first": "first", "earliest": "first",
    "contact": "call", "callback": "call", "call": "call", "followup": "call",
    "months": "month", "month": "month", "m": "month", "mo": "month", "12m": "year", "12": "year", "annual": "year",
    "year": "year", "yearly": "year", "2024": "year", "2025": "year", "2026": "year",
    "status": "state", "state": "state",
    "score": "score", "rating": "score",
    "tier": "tier", "level": "tier", "segment": "tier", "grade": "tier",
    "previous": "prev", "prior": "prev", "last period": "prev",
}
_ZH_SYNONYMS = {"购": "买", "买": "买", "订": "买", "单": "", "消": "买", "费": "", "金": "钱", "额": "钱", "钱": "钱",
                "时": "日", "间": "", "日": "日", "期": "", "数": "数", "次": "数", "量": "数", "客": "客", "户": "",
                "最": "", "近": "近", "上": "近", "首": "首", "次数": "数"}
_QUALIFIERS = {"year", "month", "count", "last", "first", "when", "近", "首", "日", "数"}
_WORD = re.compile(r"[a-z]+|\d+|#|[\u3400-\u9fff]")


def _canon(s: str) -> list[str]:
    out = []
    for w in _WORD.findall(str(s).casefold()):
        if "\u3400" <= w <= "\u9fff":
            c = _ZH_SYNONYMS.get(w, w)
        else:
            c = _SYNONYMS.get(w, w)
        if c:
            out.append(c)
    return out


def similarity(header: str, alias: str) -> float:
    """0..1: how surely `header` names what `alias` names."""
    a, b = norm_header(header), norm_header(alias)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    sa, sb = set(_canon(header)), set(_canon(alias))
    overlap = 0.0
    if sa and sb:  # shared words, qualifiers (12m, last, date) weighing half
        w = lambda ts: sum(0.5 if t in _QUALIFIERS else 1.0 for t in ts)  # noqa: E731
        common = w(sa & sb)
        overlap = 2 * common / (w(sa) + w(sb)) * 0.95 if common else 0.0
    contained = 0.9 if (b in a or a in b) and min(len(a), len(b)) >= 3 else 0.0
    return round(max(ratio * 0.9, overlap, contained), 2)


def closest(headers: dict[int, str], aliases: list[str]) -> tuple[int, str, float] | None:
    """The (column, header, score) among `headers` that looks most like one of `aliases`."""
    best = None
    for col, text in headers.items():
        score = max((similarity(text, a) for a in aliases), default=0.0)
        if score > 0.5 and (best is None or score > best[2]):
            best = (col, text, score)
    return best


# ------------------------------------------------------------------ the mapping itself
@dataclass(frozen=True)
class Entry:
    header: str
    name: str
    sheet: str | None = None  # None: every sheet


class Mapping:
    """Header -> rule name, from the settings sheet and the command line (which wins)."""

    def __init__(self, entries: list[Entry] | None = None):
        self.entries = list(entries or [])

    def __bool__(self) -> bool:
        return bool(self.entries)

    def merged(self, other: "Mapping") -> "Mapping":
        """Entries of `other` replace ours for the same header and sheet."""
        keys = {(norm_header(e.header), e.sheet) for e in other.entries}
        return Mapping([e for e in self.entries if (norm_header(e.header), e.sheet) not in keys] + other.entries)

    def wanted(self, want: dict[str, list[str]], sheet: str | None = None) -> dict[str, list[str]]:
        """`want` (name -> header aliases) with this sheet's mapped headers added to their names
        and taken away from any other name, so one header feeds one input."""
        mine = [e for e in self.entries if e.sheet is None or e.sheet.casefold() == (sheet or "").casefold()]
        if not mine:
            return want
        taken = {norm_header(e.header) for e in mine}
        out = {k: [a for a in v if norm_header(a) not in taken] for k, v in want.items()}
        for e in mine:
            if e.name in out:
                out[e.name] = [e.header] + out[e.name]
        return out

    def check(self, names, where: str) -> list[Problem]:
        """Entries naming nothing the rules read."""
        out = []
        for e in self.entries:
            if e.name not in names:
                hint = did_you_mean(e.name, list(names))
                out.append(Problem(f"'{e.header}' is mapped to '{e.name}', which no rule reads or writes", ERROR, "mapping",
                                   sheet=where, column=e.header,
                                   suggestion=hint or "run 'cxrules decisions' for the names the rules use"))
        return out


def parse_option(texts) -> Mapping:
    """--map "HEADER=name" (repeatable; the last '=' splits, so a header may hold '=')."""
    entries = []
    for t in texts or ():
        header, sep, name = str(t).rpartition("=")
        if not sep or not header.strip() or not name.strip():
            raise ValueError(f"--map '{t}' is not HEADER=name; write it like --map \"Spend 12m (CNY)=monetary\"")
        sheet = None
        if "!" in header and not header.startswith("!"):  # Sheet!Header limits it to one sheet
            sheet, _, header = header.partition("!")
        entries.append(Entry(header.strip(), name.strip(), sheet.strip() if sheet else None))
    return Mapping(entries)


def read_settings(rows: list[list], sheet: str = SETTINGS_SHEET) -> tuple[Mapping, list[Problem]]:
    """The mapping a person keeps in the settings sheet: a header row, then Header | Reads as
    | Sheet (optional) rows. Blank rows and rows without both cells are skipped."""
    entries, problems = [], []
    cols = None
    for i, row in enumerate(rows):
        cells = [("" if v is None else str(v).strip()) for v in row]
        if cols is None:
            found = {_HEAD_KEYS[norm_header(c)]: j for j, c in enumerate(cells) if norm_header(c) in _HEAD_KEYS}
            if 0 in found and 1 in found:
                cols = found
            continue
        get = lambda k: cells[cols[k]] if k in cols and cols[k] < len(cells) else ""  # noqa: E731
        header, name, only = get(0), get(1), get(2)
        if not header and not name:
            continue
        if not header or not name:
            problems.append(Problem("a mapping row needs both the header and the name it reads as", WARNING, "mapping",
                                    sheet=sheet, row=i + 1, suggestion="fill both cells, or clear the row"))
            continue
        entries.append(Entry(header, name, only or None))
    return Mapping(entries), problems


def settings_rows(entries: list[tuple[Entry, float | None, str]], lang: int = 0) -> list[list]:
    """The settings sheet's cells: (entry, confidence, note) rows under the header."""
    rows = [list(HEAD_ZH if lang else HEAD)]
    for e, conf, note in entries:
        rows.append([e.header, e.name, e.sheet, conf, note or None])
    return rows


def propose(free: dict[int, str], wanted: dict[str, list[str]], names_needed: list[str], labels: dict[str, str]):
    """For each name in names_needed, the free header that looks most like it:
    [(name, column, header, confidence)], each header used once, surest first."""
    scored = []
    for name in names_needed:
        aliases = list(wanted.get(name, [])) + ([labels[name]] if name in labels else []) + [name.replace("_", " ")]
        for col, text in free.items():
            score = max(similarity(text, a) for a in aliases)
            if score >= 0.5:
                scored.append((score, name, col, text))
    scored.sort(key=lambda t: (-t[0], t[2]))
    out, used_names, used_cols = [], set(), set()
    for score, name, col, text in scored:
        if name in used_names or col in used_cols:
            continue
        used_names.add(name)
        used_cols.add(col)
        out.append((name, col, text, score))
    return out
