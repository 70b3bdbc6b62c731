"""Text on the sheets cxrules makes, in the workbook's language.

Messages are made in English where a problem is found (values, evaluation, recalc, the
writer) and stay English on the command line. The Issues and CX summary sheets of a
workbook whose headers are Chinese show them through a catalogue,
cxrules/locale/zh/LC_MESSAGES/cxrules.po, read with Babel. A msgid is an English text or
a message template whose {placeholders} stand for the parts that vary; `translate`
matches a message against the templates and fills the msgstr with the same parts, so the
code that makes a message never changes for a translation. A message without a template
stays English (a test checks the samples' messages all have one).

Placeholders, by the start of their name:
  {msg...}    another message (the reason inside a longer one): translated in turn, also
              when it is several joined by '; ' or ', '
  {label...}  a column's label or a rule name: its Chinese header from the rule set
  {values}    values joined by ', ': each in the workbook's language (value aliases)
  {list...}   items joined by ', ', ' and ', ' or ': the joining words translated
  other       kept as they are (numbers, cells, quoted text)

Babel reads the catalogue; matching English messages to templates is our own (Babel,
like gettext, only looks up exact msgids).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "cxrules"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass
class Template:
    """An English message template as a pattern: which parts vary, and what must be there."""

    msgid: str
    pattern: re.Pattern
    names: list[str]
    literal: str  # the longest fixed piece: a fast test before the pattern

    @classmethod
    def of(cls, msgid: str) -> "Template":
        parts, names, seen, pos = [], [], set(), 0
        pieces = []
        for m in _PLACEHOLDER.finditer(msgid):
            lit = msgid[pos:m.start()]
            parts.append(re.escape(lit))
            pieces.append(lit)
            name = m.group(1)
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            if name not in seen:
                names.append(name)
            seen.add(name)
            pos = m.end()
        parts.append(re.escape(msgid[pos:]))
        pieces.append(msgid[pos:])
        return cls(msgid, re.compile("".join(parts), re.S), names, max(pieces, key=len))

    @property
    def weight(self) -> int:
        """More fixed text: a more specific template, tried first."""
        return len(_PLACEHOLDER.sub("", self.msgid))

    def match(self, text: str) -> dict | None:
        if self.literal not in text:
            return None
        m = self.pattern.fullmatch(text)
        return m.groupdict() if m else None


@functools.lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """msgid -> msgstr of the language's catalogue (empty for English or a missing one)."""
    from babel.messages.pofile import read_po

    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang == "en" or not path.is_file():
        return {}
    with open(path, "rb") as f:
        cat = read_po(f, locale=lang, domain=DOMAIN)
    return {m.id: m.string for m in cat if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


@functools.lru_cache(maxsize=None)
def templates(lang: str) -> list[tuple[Template, str]]:
    out = [(Template.of(k), v) for k, v in catalogue(lang).items() if _PLACEHOLDER.search(k)]
    out.sort(key=lambda t: -t[0].weight)
    return out


_JOINS = {"zh": [(re.compile(r" and (\d+) more$"), r" 等另外 \1 个"), (re.compile(r", "), "、"),
                 (re.compile(r" and "), " 和 "), (re.compile(r" or "), " 或 ")]}


class Translator:
    """English text -> the language of a workbook. `label` and `value` translate the
    names and values inside messages (from the rule set); English needs neither."""

    def __init__(self, lang: str = "en", label: Callable[[str], str] | None = None, value: Callable[[str], str] | None = None):
        self.lang = lang
        self.words = catalogue(lang)
        self.label = label or (lambda s: s)
        self.value = value or (lambda s: s)
        self._memo: dict[str, str | None] = {}

    def __call__(self, text):
        """A heading, word or message; as it is when the catalogue has nothing for it."""
        if not isinstance(text, str) or not self.words:
            return text
        got = self.message(text)
        return text if got is None else got

    def fmt(self, msgid: str, **parts) -> str:
        """A template of ours filled in: English as it is, else its msgstr with the parts
        translated by their names (see the module's docstring)."""
        msgstr = self.words.get(msgid)
        if msgstr is None:
            return msgid.format(**parts)
        return _PLACEHOLDER.sub(lambda m: self.part(m.group(1), str(parts[m.group(1)])), msgstr)

    def message(self, text: str) -> str | None:
        """The translation, or None when no msgid or template fits."""
        if text in self._memo:
            return self._memo[text]
        got = self.words.get(text)
        if got is None:
            for tpl, msgstr in templates(self.lang):
                parts = tpl.match(text)
                if parts is not None:
                    got = _PLACEHOLDER.sub(lambda m: self.part(m.group(1), parts.get(m.group(1), m.group(0))), msgstr)
                    break
        if len(self._memo) < 100_000:
            self._memo[text] = got
        return got

    def part(self, name: str, text: str) -> str:
        if name.startswith("msg"):
            # several messages joined first: a template's last part would take them all
            for sep, joined in (("; ", "；"), (", ", "，")):
                pieces = text.split(sep)
                if len(pieces) > 1:
                    done = [self.message(p) for p in pieces]
                    if all(d is not None for d in done):
                        return joined.join(done)
            whole = self.message(text)
            return text if whole is None else whole
        if name.startswith("label"):
            return self.label(text)
        if name == "values":
            return self.joins(", ".join(self.value(v) for v in text.split(", ")))
        if name.startswith("list"):
            return self.joins(text)
        return text

    def joins(self, text: str) -> str:
        for pat, rep in _JOINS.get(self.lang, []):
            text = pat.sub(rep, text)
        return text
