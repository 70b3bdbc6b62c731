"""Checking a big spliced sheet without parsing all it writes.

The writer splices a sheet: the source's bytes go out as they are, with our cells put
before each row's end tag, whole rows of ours put between rows or in place of a row, and
the parts before and after the rows rewritten. The output is well-formed when

1. the source is well-formed, has no comment, CDATA section, processing instruction or
   DOCTYPE (so every `<row` and `</row>` in it is a tag), is UTF-8, and its rows are
   plain: direct children of its one sheetData, none inside another, no `>` in a row's
   attribute values, every row end tag spelt `</row>`. A child process checks this while
   the workbook is read (SourceCheck), on the core the reading leaves idle;
2. everything of ours is well-formed where it goes: each cell, each row, and the head
   and tail around the rows. FragmentCheck parses those, a batch at a time, each wrapped
   in its own element inside the sheet's own root tag (so its namespaces are in scope).

A sheet whose source cannot be shown plain (or whose check did not finish) is parsed
whole as it is written, as before (xmlparts.well_formed_checker).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

from .xmlparts import PartError, check_well_formed

# Run as `python -I -S -c _CHILD ZIP PART`; prints "ok CRC SIZE", "plain-no REASON" or "bad REASON".
_CHILD = r"""
import re, sys, zipfile, xml.parsers.expat as x
path, part = sys.argv[1], sys.argv[2]
def say(s):
    sys.stdout.write(s); sys.stdout.flush(); sys.exit(0)
odd = []
def flag(what):
    def h(*a):
        odd.append(what)
    return h
p = x.ParserCreate(namespace_separator=" ")
p.CommentHandler = flag("a comment")
p.StartCdataSectionHandler = flag("a CDATA section")
p.ProcessingInstructionHandler = flag("a processing instruction")
p.StartDoctypeDeclHandler = flag("a DOCTYPE")
def decl(version, encoding, standalone):
    if encoding and encoding.lower().replace("-", "").replace("_", "") != "utf8":
        odd.append("encoding " + encoding)
p.XmlDeclHandler = decl
# With no comment, CDATA or PI (expat says so), every '<' starts a tag: these count tags.
ATTRS = rb'(?:\s+[^\s=/>]+\s*=\s*(?:"[^"<>]*"|\'[^\'<>]*\'))*\s*'
ROW_TAG = re.compile(rb"<row" + ATTRS + rb"/?>")  # a row start tag with no '>' in its values
DATA_TAG = re.compile(rb"<sheetData" + ATTRS + rb"(/?)>")
ROW = b"<row"
state = 0  # 0 before the rows, 1 among them, 2 after
rest = b""
def rows(b):
    if b"<sheetData" in b:
        odd.append("a second sheetData")
    elif b.count(b"<row") != len(ROW_TAG.findall(b)):
        odd.append("a row tag spelt otherwise")
    elif b.count(b"</row") != b.count(b"</row>"):
        odd.append("a row end tag spelt otherwise")
    else:  # before each row end: rows closed at once, then the row it ends (no row in a row)
        pieces = b.split(b"</row>")
        n = len(pieces) - 1
        counts = list(map(bytes.count, pieces, [ROW] * len(pieces)))
        for k in [k for k, c in enumerate(counts) if c != 1] + [n]:
            tags = ROW_TAG.findall(pieces[k])
            closed = [t.endswith(b"/>") for t in tags]
            if (not all(closed)) if k == n else (not tags or closed[-1] or not all(closed[:-1])):
                odd.append("a row inside a row")
                return
def see(b, last):
    global state, rest
    b = rest + b
    rest = b""
    if state == 0:
        i = b.find(b"<sheetData")
        if i < 0:
            rest = b[-16:] if not last else b""
            return
        m = DATA_TAG.match(b, i)
        if m is None:
            if last or len(b) - i > 65536:
                odd.append("a sheetData tag spelt otherwise")
            else:
                rest = b[i:]
            return
        state = 1 if not m.group(1) else 2
        b = b[m.end():]
    if state == 1:
        j = b.find(b"</sheetData>")
        if j >= 0:
            rows(b[:j])
            state, b = 2, b[j:]
        else:
            cut = b.rfind(b"</row>")
            cut = cut + 6 if cut >= 0 else 0
            if last:
                cut = len(b)
            rows(b[:cut])
            rest = b[cut:]
            return
    if state == 2 and b.count(b"<sheetData") + rest.count(b"<sheetData"):
        odd.append("a second sheetData")
try:
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(part)
        with z.open(info) as f:
            while True:
                b = f.read(1 << 22)
                p.Parse(b, not b)
                see(b, not b)
                if odd:
                    say("plain-no\t" + odd[0])
                if not b:
                    break
except x.ExpatError as e:
    say("bad\t%s\t%d" % (x.ErrorString(e.code), e.lineno))
except Exception as e:
    say("plain-no\t" + type(e).__name__)
if state != 2:
    say("plain-no\tno sheetData")
say("ok\t%d\t%d" % (info.CRC, info.file_size))
"""


@dataclass(frozen=True)
class Plain:
    """The source part the child found plain: its CRC and size name the bytes it read."""

    crc: int
    size: int


class SourceCheck:
    """The child process checking one part of a workbook on disk; verdict() waits for it."""

    def __init__(self, path, part: str):
        exe = sys.executable or ""
        if not os.path.basename(exe).lower().startswith("python"):  # embedded (inside Excel): no child
            raise OSError("no Python to run the check in")
        self.part = part
        self.proc = subprocess.Popen([exe, "-I", "-S", "-c", _CHILD, os.fspath(path), part], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._verdict: Plain | None | bool = False  # False: not asked yet

    def verdict(self, wait: float = 600) -> Plain | None:
        """Plain(crc, size) when the source is plain and well-formed, else None (parse it
        all). A check still running after `wait` seconds is stopped: None."""
        if self._verdict is False:
            try:
                out = self.proc.communicate(timeout=wait)[0].decode("utf-8", "replace")
            except (OSError, subprocess.SubprocessError):
                self.abort()
                out = ""
            kind, _, rest = out.partition("\t")
            self._verdict = None
            if kind == "ok":
                crc, _, size = rest.partition("\t")
                if crc.isdigit() and size.isdigit():
                    self._verdict = Plain(int(crc), int(size))
        return self._verdict

    def abort(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.kill()
                self.proc.wait()
            except OSError:
                pass


def start_source_check(path, part: str) -> SourceCheck | None:
    try:
        return SourceCheck(path, part)
    except OSError:
        return None


_ROOT = re.compile(rb"<([A-Za-z_][\w.-]*)\b[^>]*>")
_DECLS = re.compile(rb"""\sxmlns(?::[\w.-]+)?\s*=\s*("[^"]*"|'[^']*')""")
_WRAP = b"cxrules-piece"
_BATCH = 1 << 20


class FragmentCheck:
    """Parses what the writer makes of its own, in batches, inside the sheet's root tag."""

    def __init__(self, name: str, head: bytes):
        self.name = name
        m = _ROOT.search(head)  # the first element: the child found no comment, DOCTYPE or PI before it
        if m is None:
            raise PartError(f"part {name} has no root element")
        self.root_tag, self.root_name = m.group(0), m.group(1)
        self.pending: list[bytes] = []
        self.size = 0
        self.head_out: bytes | None = None

    def add(self, piece: bytes) -> None:
        self.pending.append(piece)
        self.size += len(piece)
        if self.size > _BATCH:
            self.flush()

    def cells(self, rests) -> None:
        """Cells by what follows their reference (the writer's per-value XML)."""
        for r in rests:
            if r is not None:
                self.add(b'<c r="A1"' + r)

    def flush(self) -> None:
        if not self.pending:
            return
        body = b"".join(b"<%s>%s</%s>" % (_WRAP, p, _WRAP) for p in self.pending)
        self.pending, self.size = [], 0
        check_well_formed([self.root_tag + body + b"</" + self.root_name + b">"], self.name)

    def head(self, head_out: bytes) -> None:
        """The rewritten part before the rows; it must keep the source root's namespaces."""
        m = _ROOT.search(head_out)
        if m is None or not set(_DECLS.findall(self.root_tag)) <= set(_DECLS.findall(m.group(0))):
            raise PartError(f"part {self.name} would lose its root element's namespaces")
        self.head_out = head_out

    def finish(self, tail_out: bytes) -> None:
        """The head and tail as one sheet with no rows, after the last batch of ours."""
        self.flush()
        if self.head_out is None:
            raise PartError(f"part {self.name} was written without its head")
        check_well_formed([self.head_out + b"</sheetData>" + tail_out], self.name)
