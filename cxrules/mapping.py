"""Which header feeds which input: fuzzy matching of a sheet's own headers to the names
the rules know, in English and Chinese."""
from __future__ import annotations

import difflib
import re

from .values import norm_header

_WORD = re.compile(r"[a-z]+|\d+|[\u3400-\u9fff]")


def _tokens(s: str) -> list[str]:
    """Words, numbers and single CJK characters: '消费金额' and '年消费额' share 消, 费, 额."""
    return _WORD.findall(str(s).casefold())


def similarity(header: str, alias: str) -> float:
    """0..1: how surely `header` names the same thing as `alias`."""
    a, b = norm_header(header), norm_header(alias)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    ta, tb = _tokens(header), _tokens(alias)
    overlap = 0.0
    if ta and tb:
        common = sum(min(ta.count(t), tb.count(t)) for t in set(tb))
        overlap = common / max(len(tb), 1) * (common / max(len(ta), 1)) ** 0.25
    contained = 0.9 if (b in a or a in b) and min(len(a), len(b)) >= 3 else 0.0
    return round(max(ratio, overlap, contained), 2)


def closest(headers: dict[int, str], aliases: list[str]) -> tuple[int, str, float] | None:
    """The (column, header, score) among `headers` that looks most like one of `aliases`."""
    best = None
    for col, text in headers.items():
        score = max((similarity(text, a) for a in aliases), default=0.0)
        if score > 0.5 and (best is None or score > best[2]):
            best = (col, text, score)
    return best
