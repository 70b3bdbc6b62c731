"""Package parts as XML, namespace-correct whatever prefixes their writer chose.

Small parts (workbook.xml, relationships, content types, app.xml) are edited as lxml
trees: new elements and attributes take the prefix in scope for their namespace, or
declare one, so a part written by openpyxl (xmlns:r on each <sheet>), by a .NET writer
(x:workbook) or by Excel comes out well-formed and meaning what it should. Big parts
(sheets) are streamed; when their writer bound the main namespace to a prefix, they are
first rewritten to the default namespace (same names, same meaning) so the byte-level
sheet writer sees the form it expects.
"""
from __future__ import annotations

import os
import re

from lxml import etree

from .problems import CxError

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
NS_CT = "http://schemas.openxmlformats.org/package/2006/content-types"
NS_EXT_PROPS = "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"
NS_VT = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
DECL = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

# entities are never expanded, nothing is fetched: a part is data, not instructions
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False)
_DECL = re.compile(rb"^\s*(<\?xml\b[^>]*\?>)(\s*)")


class PartError(CxError):
    """A package part that is not well-formed XML."""


def q(ns: str, tag: str) -> str:
    return "{%s}%s" % (ns, tag)


class XmlPart:
    """One small part as a tree; to_bytes() gives the original bytes when nothing changed."""

    def __init__(self, name: str, data: bytes):
        self.name, self.data = name, data
        try:
            self.root = etree.fromstring(data, _PARSER)
        except etree.XMLSyntaxError as e:
            raise PartError(f"part {name} is not well-formed XML ({e.msg}, line {e.lineno})") from None
        except (LookupError, ValueError) as e:  # an encoding no one knows, or text lxml refuses
            raise PartError(f"part {name} cannot be read as XML ({e})") from None
        self.dirty = False
        m = _DECL.match(data)
        enc = re.search(rb'encoding="([^"]*)"', m.group(1)) if m else None
        if m and (enc is None or enc.group(1).lower().replace(b"-", b"") == b"utf8"):
            self.decl = m.group(1) + (m.group(2) or b"")
        else:  # no declaration, or another encoding: ours says what we write
            self.decl = DECL

    @classmethod
    def new(cls, name: str, root_xml: str) -> "XmlPart":
        p = cls(name, DECL + root_xml.encode("utf-8"))
        p.dirty = True
        return p

    def to_bytes(self) -> bytes:
        if not self.dirty:
            return self.data
        return self.decl + etree.tostring(self.root.getroottree(), encoding="UTF-8", xml_declaration=False)

    def __bytes__(self) -> bytes:
        return self.to_bytes()


def children(el, ns: str, tag: str) -> list:
    return el.findall(q(ns, tag))


def child(el, ns: str, tag: str):
    return el.find(q(ns, tag))


def insert_in_order(parent, new, order: tuple[str, ...]) -> None:
    """Put `new` where the schema's sequence `order` (local names) wants it among parent's children."""
    name = etree.QName(new).localname
    later = set(order[order.index(name) + 1:]) if name in order else set()
    for k, c in enumerate(parent):
        if isinstance(c.tag, str) and etree.QName(c).localname in later:
            parent.insert(k, new)
            return
    parent.append(new)


def element(parent, ns: str, tag: str, attrs: dict | None = None, ns_attrs: list | None = None, before=None, order=None):
    """A new child element. ns_attrs: [(namespace, local, value, preferred prefix)]; a
    namespace not in scope is declared on the element with the preferred prefix."""
    nsmap = {}
    scope = parent.nsmap
    for ans, _, _, pre in ns_attrs or ():
        if ans in scope.values() and any(p is not None and u == ans for p, u in scope.items()):
            continue
        p = pre
        k = 1
        while p in scope and scope[p] != ans:
            p, k = f"{pre}{k}", k + 1
        nsmap[p] = ans
    el = etree.Element(q(ns, tag), nsmap=nsmap or None)
    for k, v in (attrs or {}).items():
        el.set(k, v)
    for ans, local, v, _ in ns_attrs or ():
        el.set(q(ans, local), v)
    if before is not None:
        before.addprevious(el)
    elif order is not None:
        insert_in_order(parent, el, order)
    else:
        parent.append(el)
    return el


# ------------------------------------------------------------------ prefixed main namespace
_FIRST_EL = re.compile(rb"<(?![?!/])([A-Za-z_][\w.-]*)(?::([A-Za-z_][\w.-]*))?([^>]*)>")


def main_prefix(head: bytes, ns: str = NS_MAIN) -> bytes | None:
    """The prefix the part's root element binds to `ns` and is named with, if any."""
    m = _FIRST_EL.search(head)
    if not m or m.group(2) is None:
        return None
    pre = m.group(1)
    decl = re.search(rb"\sxmlns:" + re.escape(pre) + rb'\s*=\s*["\']([^"\']*)["\']', m.group(3))
    return pre if decl and decl.group(1) == ns.encode() else None


def unprefix_stream(chunks, prefix: bytes, ns: str = NS_MAIN):
    """Yield the part with elements of prefix:* written in the default namespace.

    The prefix stays declared (attributes or QName values may use it); the root gains
    xmlns="ns". Refused (PartError) when the default namespace is already taken or the
    part holds CDATA, where the text is not markup.
    """
    open_pat = re.compile(rb"<(/?)" + re.escape(prefix) + rb":")
    sub = lambda mm: b"<" + mm.group(1)  # noqa: E731
    it = iter(chunks)
    head = b""
    for chunk in it:  # the root's start tag gains the default namespace
        head += chunk
        m = _FIRST_EL.search(head)
        if m:
            break
    else:
        raise PartError("no root element")
    if re.search(rb"\sxmlns\s*=", m.group(3)):
        raise PartError("the default namespace is already used")
    end = m.end() - (2 if m.group(0).endswith(b"/>") else 1)
    carry = head[:end] + b' xmlns="' + ns.encode() + b'"' + head[end:]
    for chunk in it:
        buf = carry + chunk
        cut = buf.rfind(b"<")  # keep a possibly cut '</x:' for the next round
        if cut >= 0 and len(buf) - cut <= len(prefix) + 2:
            buf, carry = buf[:cut], buf[cut:]
        else:
            carry = b""
        if b"<![CDATA[" in buf:
            raise PartError("a part with CDATA sections and a prefixed namespace cannot be rewritten")
        yield open_pat.sub(sub, buf)
    if b"<![CDATA[" in carry:
        raise PartError("a part with CDATA sections and a prefixed namespace cannot be rewritten")
    yield open_pat.sub(sub, carry)


def unprefix(data: bytes, ns: str = NS_MAIN) -> bytes:
    """unprefix_stream for a whole part; the part unchanged if it uses no prefix for ns."""
    pre = main_prefix(data[:4096], ns)
    if pre is None:
        return data
    return b"".join(unprefix_stream([data], pre, ns))


# ------------------------------------------------------------------ checking what we wrote
class WellFormed:
    """The same check fed piece by piece, as a part is written (no second read)."""

    def __init__(self, name: str):
        import xml.parsers.expat

        self.name = name
        self._expat = xml.parsers.expat
        self.parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")

    def _fail(self, e) -> PartError:
        if isinstance(e, self._expat.ExpatError):
            return PartError(f"part {self.name} would not be well-formed XML ({self._expat.ErrorString(e.code)}, line {e.lineno})")
        return PartError(f"part {self.name} would not be readable XML ({e})")

    def feed(self, data: bytes) -> None:
        try:
            self.parser.Parse(data, False)
        except (self._expat.ExpatError, LookupError, ValueError) as e:
            raise self._fail(e) from None

    def close(self) -> None:
        try:
            self.parser.Parse(b"", True)
        except (self._expat.ExpatError, LookupError, ValueError) as e:
            raise self._fail(e) from None


# The same expat check, run by a child Python beside the writer: the bytes go down a pipe
# from a thread (a write releases the GIL), so checking costs the writer almost nothing
# where a second core is free. Its answer is the in-process check's, word for word.
_CHECKER = r"""
import sys, xml.parsers.expat as x
p = x.ParserCreate(namespace_separator=" ")
inp, out = sys.stdin.buffer, sys.stdout
try:
    while True:
        b = inp.read(1 << 20)
        if not b:
            break
        p.Parse(b, False)
    p.Parse(b"", True)
    out.write("ok")
except x.ExpatError as e:
    out.write("xml\t%s\t%d" % (x.ErrorString(e.code), e.lineno))
except (LookupError, ValueError) as e:
    out.write("read\t%s" % (e,))
out.flush()
while inp.read(1 << 20):  # take the rest, so the writer never blocks on a full pipe
    pass
"""
CHECK_ELSEWHERE_FROM = 4 << 20  # a part this big is checked by a child process (when one starts)


class WellFormedElsewhere:
    """WellFormed in a child process; feed() hands the bytes to a thread that pipes them."""

    def __init__(self, name: str):
        import queue
        import subprocess
        import sys
        import threading

        self.name = name
        exe = sys.executable or ""
        if not os.path.basename(exe).lower().startswith("python"):  # embedded (inside Excel): no child
            raise OSError("no Python to run the check in")
        self.proc = subprocess.Popen([exe, "-I", "-S", "-c", _CHECKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._pipe, daemon=True)
        self.thread.start()

    def _pipe(self) -> None:
        while True:
            b = self.queue.get()
            if b is None:
                break
            if self.error is None:
                try:
                    self.proc.stdin.write(b)
                except BaseException as e:  # noqa: BLE001 - said by close()
                    self.error = e
        try:
            self.proc.stdin.close()
        except OSError as e:
            self.error = self.error or e

    def feed(self, data: bytes) -> None:
        self.queue.put(bytes(data))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        answer = self.proc.stdout.read().decode("utf-8", "replace")
        self.proc.wait()
        if answer == "ok" and self.error is None:
            return
        kind, _, rest = answer.partition("\t")
        if kind == "xml":
            what, _, line = rest.rpartition("\t")
            raise PartError(f"part {self.name} would not be well-formed XML ({what}, line {line})")
        if kind == "read":
            raise PartError(f"part {self.name} would not be readable XML ({rest})")
        raise PartError(f"part {self.name} could not be checked ({self.error or 'the checking process stopped'})")

    def abort(self) -> None:
        """Stop the child and the thread (after close() there is nothing left to stop)."""
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except OSError:
                pass
            self.queue.put(None)
            self.thread.join()
            self.proc.wait()


def well_formed_checker(name: str, size: int):
    """A checker for a part of about `size` bytes: in a child process when it is big."""
    if size >= CHECK_ELSEWHERE_FROM:
        try:
            return WellFormedElsewhere(name)
        except OSError:
            pass
    return WellFormed(name)


def check_well_formed(chunks, name: str) -> None:
    """Parse the part's bytes with namespaces checked (an unbound prefix is an error, as it
    is for Excel); PartError naming the part if they are not well-formed XML."""
    import xml.parsers.expat

    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    try:
        for c in chunks:
            parser.Parse(c, False)
        parser.Parse(b"", True)
    except xml.parsers.expat.ExpatError as e:
        raise PartError(f"part {name} would not be well-formed XML ({xml.parsers.expat.ErrorString(e.code)}, line {e.lineno})") from None
    except (LookupError, ValueError) as e:  # e.g. encoding="UTF-1e308"
        raise PartError(f"part {name} would not be readable XML ({e})") from None
