"""Reading and writing VBA projects (vbaProject.bin) without Excel.

Three small formats, after Microsoft's published specifications:
  * [MS-CFB] compound files: a reader, and a writer for version 3 files;
  * [MS-OVBA] 2.4.1 compression of the module source and of the `dir` stream;
  * [MS-OVBA] 2.3.4.2 the `dir` stream's records (project name, references, modules).

A project written here is source only: `_VBA_PROJECT` has version 0xFFFF and no
performance cache, and each module stream is its compressed source at offset 0, so
Office compiles the modules from the text on first open. The xlwings add-in templates
are built the same way (their `_VBA_PROJECT` is the same 7 bytes).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

# ------------------------------------------------------------------ MS-OVBA compression
_CHUNK = 4096


def _copy_token_bits(position: int) -> int:
    """Bits of the offset part of a copy token at `position` bytes into the chunk."""
    bits = max((position - 1).bit_length(), 4)
    return min(bits, 12)


def decompress(data: bytes) -> bytes:
    if not data or data[0] != 1:
        raise ValueError("not an MS-OVBA compressed container (signature byte is not 1)")
    out = bytearray()
    pos = 1
    while pos < len(data):
        header = struct.unpack_from("<H", data, pos)[0]
        size = (header & 0x0FFF) + 3
        compressed = header & 0x8000
        if (header >> 12) & 0x7 != 0b011:
            raise ValueError(f"bad chunk signature at byte {pos}")
        end = min(pos + size, len(data))
        pos += 2
        start = len(out)
        if not compressed:
            out += data[pos:pos + _CHUNK]
            pos += _CHUNK
            continue
        while pos < end:
            flags = data[pos]
            pos += 1
            for bit in range(8):
                if pos >= end:
                    break
                if not flags >> bit & 1:
                    out.append(data[pos])
                    pos += 1
                    continue
                token = struct.unpack_from("<H", data, pos)[0]
                pos += 2
                bits = _copy_token_bits(len(out) - start)
                length = (token & (0xFFFF >> bits)) + 3
                offset = (token >> (16 - bits)) + 1
                src = len(out) - offset
                for k in range(length):  # may overlap itself
                    out.append(out[src + k])
    return bytes(out)


def compress(data: bytes) -> bytes:
    out = bytearray(b"\x01")
    for c0 in range(0, len(data), _CHUNK):
        chunk = data[c0:c0 + _CHUNK]
        body = _compress_chunk(chunk)
        if len(body) + 2 > 4098 or (len(body) > _CHUNK and len(chunk) == _CHUNK):
            if len(chunk) != _CHUNK:
                raise ValueError("an incompressible final chunk cannot be stored")
            out += struct.pack("<H", 0x3000 | (_CHUNK + 2 - 3)) + chunk  # raw chunk
            continue
        out += struct.pack("<H", 0xB000 | (len(body) + 2 - 3)) + body
    return bytes(out)


def _compress_chunk(chunk: bytes) -> bytes:
    out = bytearray()
    pos, n = 0, len(chunk)
    heads: dict[bytes, list[int]] = {}  # 3-byte prefix -> earlier positions
    while pos < n:
        flag_at = len(out)
        out.append(0)
        flags = 0
        for bit in range(8):
            if pos >= n:
                break
            best_len, best_off = 0, 0
            if pos > 0 and pos + 3 <= n:
                bits = _copy_token_bits(pos)
                max_len = (0xFFFF >> bits) + 3
                for cand in reversed(heads.get(chunk[pos:pos + 3], ())[-64:]):
                    off = pos - cand
                    if off > (1 << bits):
                        break
                    k = 3
                    limit = min(max_len, n - pos)
                    while k < limit and chunk[cand + k] == chunk[pos + k]:
                        k += 1
                    if k > best_len:
                        best_len, best_off = k, off
                        if k == limit:
                            break
            if best_len >= 3:
                bits = _copy_token_bits(pos)
                out += struct.pack("<H", ((best_off - 1) << (16 - bits)) | (best_len - 3))
                flags |= 1 << bit
                step = best_len
            else:
                out.append(chunk[pos])
                step = 1
            for p in range(pos, pos + step):
                if p + 3 <= n:
                    heads.setdefault(chunk[p:p + 3], []).append(p)
            pos += step
        out[flag_at] = flags
    return bytes(out)


# ------------------------------------------------------------------ MS-CFB reading
FREE, END, FATSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")


def read_cfb(data: bytes) -> dict[str, bytes]:
    """Every stream of a compound file: 'VBA/dir' -> bytes (storages joined with '/')."""
    if data[:8] != _MAGIC:
        raise ValueError("not a compound file")
    sector_shift, mini_shift = struct.unpack_from("<HH", data, 30)
    ssize, msize = 1 << sector_shift, 1 << mini_shift
    n_fat, first_dir = struct.unpack_from("<II", data, 44)
    cutoff, first_minifat, n_minifat, first_difat, n_difat = struct.unpack_from("<IIIII", data, 56)
    difat = list(struct.unpack_from("<109I", data, 76))
    s = first_difat
    while s not in (END, FREE) and n_difat:
        entries = struct.unpack_from(f"<{ssize // 4}I", data, 512 + s * ssize)
        difat += entries[:-1]
        s = entries[-1]
        n_difat -= 1
    fat: list[int] = []
    for sec in difat[:n_fat]:
        fat += struct.unpack_from(f"<{ssize // 4}I", data, 512 + sec * ssize)

    def chain(start):
        seen = set()
        while start not in (END, FREE):
            if start in seen:
                raise ValueError("loop in a sector chain")
            seen.add(start)
            yield start
            start = fat[start]

    def big(start, size=None):
        b = b"".join(data[512 + s * ssize: 512 + (s + 1) * ssize] for s in chain(start))
        return b if size is None else b[:size]

    dir_bytes = big(first_dir)
    entries = []
    for k in range(len(dir_bytes) // 128):
        e = dir_bytes[k * 128:(k + 1) * 128]
        nlen = struct.unpack_from("<H", e, 64)[0]
        name = e[:max(nlen - 2, 0)].decode("utf-16-le")
        kind = e[66]
        left, right, child = struct.unpack_from("<III", e, 68)
        start, size = struct.unpack_from("<IQ", e, 116)
        entries.append((name, kind, left, right, child, start, size & 0xFFFFFFFF))
    root = entries[0]
    ministream = big(root[5], root[6]) if root[5] != END else b""
    minifat: list[int] = []
    if n_minifat:
        mf = big(first_minifat)
        minifat = list(struct.unpack_from(f"<{len(mf) // 4}I", mf))

    def small(start, size):
        out, s = [], start
        while s not in (END, FREE) and len(out) * msize < size:
            out.append(ministream[s * msize:(s + 1) * msize])
            s = minifat[s]
        return b"".join(out)[:size]

    streams: dict[str, bytes] = {}

    def walk(i, prefix):
        if i == FREE or i >= len(entries):
            return
        name, kind, left, right, child, start, size = entries[i]
        walk(left, prefix)
        walk(right, prefix)
        path = prefix + name
        if kind == 2:
            streams[path] = small(start, size) if size < cutoff else big(start, size)
        elif kind == 1:
            walk(child, path + "/")

    walk(root[4], "")
    return streams


# ------------------------------------------------------------------ MS-CFB writing
def _cfb_key(name: str):
    return (len(name), name.upper())


@dataclass
class _Node:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    data: bytes = b""
    children: dict = field(default_factory=dict)
    left: int = FREE
    right: int = FREE
    child: int = FREE
    red: bool = False
    start: int = END
    size: int = 0


def write_cfb(streams: dict[str, bytes]) -> bytes:
    """A version 3 compound file holding these streams ('VBA/dir' makes storage 'VBA')."""
    root = _Node("Root Entry", 5)
    for path, data in streams.items():
        node = root
        *dirs, leaf = path.split("/")
        for d in dirs:
            node = node.children.setdefault(d, _Node(d, 1))
        node.children[leaf] = _Node(leaf, 2, data)
    nodes = [root]

    def number(node):
        for c in node.children.values():
            nodes.append(c)
        for c in node.children.values():
            number(c)

    number(root)
    index = {id(n): i for i, n in enumerate(nodes)}

    def tree(node):  # a balanced red-black tree of the children, nil links one level apart
        kids = sorted(node.children.values(), key=lambda n: _cfb_key(n.name))
        if not kids:
            return
        depth: dict[int, int] = {}

        def build(lo, hi, d):
            if lo > hi:
                return FREE
            mid = (lo + hi) // 2
            k = kids[mid]
            depth[id(k)] = d
            k.left = build(lo, mid - 1, d + 1)
            k.right = build(mid + 1, hi, d + 1)
            return index[id(k)]

        node.child = build(0, len(kids) - 1, 0)
        deepest = max(depth.values())
        for k in kids:  # every path to a nil link then has the same number of black nodes
            k.red = depth[id(k)] == deepest > 0
        for k in kids:
            tree(k)

    tree(root)
    ssize, msize, cutoff = 512, 64, 4096
    sectors: list[bytes] = []
    fat: list[int] = []

    def put(data: bytes) -> int:
        if not data:
            return END
        first = len(sectors)
        count = (len(data) + ssize - 1) // ssize
        for k in range(count):
            sectors.append(data[k * ssize:(k + 1) * ssize].ljust(ssize, b"\0"))
            fat.append(first + k + 1 if k < count - 1 else END)
        return first

    # small streams go to the mini stream, in 64-byte mini sectors
    mini = bytearray()
    minifat: list[int] = []
    for n in nodes:
        if n.kind == 2 and len(n.data) < cutoff:
            n.size = len(n.data)
            if not n.data:
                continue
            n.start = len(mini) // msize
            count = (len(n.data) + msize - 1) // msize
            for k in range(count):
                minifat.append(n.start + k + 1 if k < count - 1 else END)
            mini += n.data.ljust(count * msize, b"\0")
    root.start, root.size = put(bytes(mini)), len(mini)
    for n in nodes:
        if n.kind == 2 and len(n.data) >= cutoff:
            n.start, n.size = put(n.data), len(n.data)
    entries = bytearray()
    for n in nodes:
        name = n.name.encode("utf-16-le") + b"\0\0"
        if len(name) > 64:
            raise ValueError(f"stream name too long: {n.name}")
        e = name.ljust(64, b"\0") + struct.pack("<HBB", len(name), n.kind, 0 if n.red else 1)
        e += struct.pack("<III", n.left, n.right, n.child) + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
        e += struct.pack("<IQ", n.start if n.kind != 1 else 0, n.size)
        entries += e
    while len(entries) % ssize:
        entries += (b"\0" * 64 + struct.pack("<HBB", 0, 0, 0) + struct.pack("<III", FREE, FREE, FREE)).ljust(128, b"\0")
    first_dir = put(bytes(entries))
    mf = b"".join(struct.pack("<I", x) for x in minifat)
    if minifat:
        mf = mf.ljust(((len(mf) + ssize - 1) // ssize) * ssize, b"\xff")
    first_minifat = put(mf) if minifat else END
    n_minifat = len(mf) // ssize if minifat else 0
    # the FAT covers itself too
    n_fat = 1
    while (len(sectors) + n_fat) > n_fat * (ssize // 4):
        n_fat += 1
    if n_fat > 109:
        raise ValueError("file too large for a header-only DIFAT")
    fat_first = len(sectors)
    fat += [FATSECT] * n_fat
    fat += [FREE] * (n_fat * (ssize // 4) - len(fat))
    fat_bytes = b"".join(struct.pack("<I", x) for x in fat)
    for k in range(n_fat):
        sectors.append(fat_bytes[k * ssize:(k + 1) * ssize])
    difat = [fat_first + k for k in range(n_fat)] + [FREE] * (109 - n_fat)
    header = _MAGIC + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
    header += struct.pack("<IIIIIIIII", 0, n_fat, first_dir, 0, cutoff, first_minifat, n_minifat, END, 0)
    header += struct.pack("<109I", *difat)
    assert len(header) == 512, len(header)
    return header + b"".join(sectors)


# ------------------------------------------------------------------ the dir stream
@dataclass
class Module:
    name: str
    stream: str
    kind: str  # 'procedural' or 'document' (document and class modules)
    offset: int = 0
    records: list = field(default_factory=list)  # [(id, payload)] as read


@dataclass
class Project:
    info: list  # [(id, payload)] PROJECTINFORMATION and PROJECTREFERENCES records
    modules: list[Module]
    cookie: bytes = b"\xff\xff"
    codepage: str = "cp1252"

    @property
    def name(self) -> str:
        return next(p for i, p in self.info if i == 0x0004).decode(self.codepage)


def parse_dir(data: bytes) -> Project:
    """The decompressed `dir` stream as records; PROJECTVERSION's odd layout is kept whole."""
    recs = []
    pos = 0
    while pos < len(data):
        rid, size = struct.unpack_from("<HI", data, pos)
        pos += 6
        if rid == 0x0009:  # PROJECTVERSION: Reserved(4) is followed by 6 bytes, not 4
            size = 6
        recs.append((rid, data[pos:pos + size]))
        pos += size
    k = next(i for i, (rid, _) in enumerate(recs) if rid == 0x000F)
    info = recs[:k]
    codepage = "cp%d" % struct.unpack("<H", next(p for i, p in info if i == 0x0003))[0]
    cookie = recs[k + 1][1]
    modules: list[Module] = []
    cur: list = []
    for rid, payload in recs[k + 2:]:
        if rid == 0x0010:  # end of the dir stream
            break
        cur.append((rid, payload))
        if rid == 0x002B:
            d = dict(cur)
            kind = "procedural" if 0x0021 in d else "document"
            offset = struct.unpack("<I", d[0x0031])[0]
            modules.append(Module(d[0x0019].decode(codepage), d[0x001A].decode(codepage), kind, offset, cur))
            cur = []
    return Project(info, modules, cookie, codepage)


def _rec(rid: int, payload: bytes) -> bytes:
    if rid == 0x0009:
        return struct.pack("<HI", rid, 4) + payload
    return struct.pack("<HI", rid, len(payload)) + payload


def module_records(m: Module, codepage: str) -> list:
    """The MODULE records of a module at offset 0 (source only); records read from a
    template are kept (a class's description, say), with the offset set to 0."""
    if m.records:
        return [(rid, struct.pack("<I", 0) if rid == 0x0031 else payload) for rid, payload in m.records]
    name = m.name.encode(codepage)
    uname = m.name.encode("utf-16-le")
    sname = m.stream.encode(codepage)
    out = [(0x0019, name), (0x0047, uname), (0x001A, sname), (0x0032, m.stream.encode("utf-16-le")),
           (0x001C, b""), (0x0048, b""), (0x0031, struct.pack("<I", 0)), (0x001E, struct.pack("<I", 0)),
           (0x002C, b"\xff\xff"), (0x0021 if m.kind == "procedural" else 0x0022, b"")]
    # 0x0032 is a 'Reserved' id followed by the unicode stream name: same layout as a record
    out.append((0x002B, b""))
    return out


def build_dir(p: Project) -> bytes:
    out = bytearray()
    for rid, payload in p.info:
        out += _rec(rid, payload)
    out += struct.pack("<HIH", 0x000F, 2, len(p.modules))
    out += _rec(0x0013, p.cookie)
    for m in p.modules:
        for rid, payload in module_records(m, p.codepage):
            out += _rec(rid, payload)
    out += struct.pack("<HI", 0x0010, 0)
    return bytes(out)


def set_project_name(p: Project, name: str) -> None:
    p.info = [(rid, name.encode(p.codepage) if rid == 0x0004 else payload) for rid, payload in p.info]


# ------------------------------------------------------------------ whole projects
VBA_PROJECT_SOURCE_ONLY = bytes.fromhex("cc61ffff000100")  # version 0xFFFF: compile from source


def module_sources(bin_bytes: bytes) -> dict[str, str]:
    """Module name -> source text (CRLF line ends as stored) of a vbaProject.bin."""
    streams = read_cfb(bin_bytes)
    project = parse_dir(decompress(streams["VBA/dir"]))
    out = {}
    for m in project.modules:
        raw = streams["VBA/" + m.stream]
        out[m.name] = decompress(raw[m.offset:]).decode(project.codepage)
    return out


def project_name(bin_bytes: bytes) -> str:
    return parse_dir(decompress(read_cfb(bin_bytes)["VBA/dir"])).name
