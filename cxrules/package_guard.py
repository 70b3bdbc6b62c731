"""Vetting a workbook's zip package before anything unpacks it.

An .xlsx is a zip file; a hostile one can unpack a few megabytes into gigabytes (a zip
bomb), hold two entries of one name that different readers resolve differently, or
point a relationship outside the package. `vet_package` reads the zip's central directory
and the relationship parts, then unpacks each part once with bounded output, and refuses
such files in one plain line before python-calamine or cxrules reads a sheet.

Limits (each can be raised, see Limits.from_env and `cxrules recalc --help`):
- ratio: real sheet XML packs 6-15:1 (the sample workbooks 7:1, a 100k-row bench sheet
  6:1, 100k identical rows from xlsxwriter / openpyxl 12-15:1); a zip bomb packs about
  1000:1, deflate's maximum. 100:1 leaves a wide margin and is Apache POI's default.
  Parts under 1 MB are not held to it: they cannot do harm, and small XML packs well.
- part size: a 1,048,576-row sheet of 9 columns unpacks to about 0.4 GB; 2 GB per part
  and 4 GB in all leave room for wide sheets and stop anything that would take minutes.
- entries and central directory: zipfile reads the whole directory into memory, so its
  size is checked from the end record first (a real workbook has tens of parts).
A declared size can lie, so `inflate=True` also unpacks every part once, with bounded
output, and refuses a part that holds more than it declares (python-calamine reads the
file itself; zipfile already stops at the declared size).

Written here, not taken from a library: neither zipfile nor python-calamine checks any
of this before unpacking, and OOXML's rules (part names, relationship targets) need the
package's structure.
"""
from __future__ import annotations

import os
import posixpath
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from .problems import CxError
from .xlsx_read import WorkbookError, attrs

GB, MB = 1000**3, 1000**2
RATIO_FLOOR = 1 * MB  # parts smaller than this are not held to the ratio
MAX_ENTRIES = 100_000
MAX_DIRECTORY = 64 * MB
ENV_PART, ENV_TOTAL, ENV_RATIO = "CXRULES_MAX_PART_SIZE", "CXRULES_MAX_TOTAL_SIZE", "CXRULES_MAX_RATIO"
_CHUNK = 1 << 20


class PackageError(WorkbookError):
    """A package refused by the guard; the text is one line naming the file and the cause."""


@dataclass(frozen=True)
class Limits:
    part_size: int = 2 * GB  # unpacked bytes of any one part
    total_size: int = 4 * GB  # unpacked bytes of all parts together
    ratio: float = 100  # unpacked / packed size of any part over RATIO_FLOOR

    @classmethod
    def from_env(cls, environ=None, **given) -> "Limits":
        """Limits from keyword arguments (None: not given), else the environment, else defaults."""
        env = os.environ if environ is None else environ
        out = {}
        for key, var, parse in (("part_size", ENV_PART, parse_size), ("total_size", ENV_TOTAL, parse_size), ("ratio", ENV_RATIO, parse_ratio)):
            v = given.get(key)
            if v is None and env.get(var, "").strip():
                try:
                    v = parse(env[var])
                except ValueError as e:
                    raise CxError(f"the environment variable {var}: {e}") from None
            if v is not None:
                out[key] = v
        return cls(**out)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.I)


def parse_size(text: str) -> int:
    """'500M', '4G', '2.5GB', '1GiB' or a number of bytes -> bytes."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"'{text}' is not a size; write it like 500M or 4G")
    unit = m.group(2).lower()
    base = 1024 if m.group(3).lower().startswith("i") else 1000
    n = int(float(m.group(1)) * base ** " kmgt".index(unit or " "))
    if n <= 0:
        raise ValueError(f"'{text}' is not a size; write it like 500M or 4G")
    return n


def parse_ratio(text: str) -> float:
    try:
        x = float(str(text).strip().removesuffix(":1"))
    except ValueError:
        x = 0
    if not x >= 1 or x == float("inf"):
        raise ValueError(f"'{text}' is not a ratio; write it like 100 or 500")
    return x


def show_size(n: int) -> str:
    for unit, k in (("GB", GB), ("MB", MB), ("KB", 1000)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{n} bytes"


def _raise_hint(option: str, var: str) -> str:
    return f"if you trust the file, raise the limit with {option} (or {var})"


def vet_package(path, limits: Limits | None = None, inflate: bool = True) -> None:
    """Refuse, with a PackageError naming the file and the cause, a zip package that is a
    zip bomb or is ambiguous. inflate: also check that no part holds more than it declares."""
    path = Path(path)
    limits = limits or Limits.from_env()
    name = str(path)
    with open(path, "rb") as f:
        _check_directory(f, name)
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise PackageError(f"{name}: is damaged ({e}); open it in Excel, let it repair, and save it again") from None
        with zf:
            infos = zf.infolist()
            _check_names(infos, name)
            _check_sizes(infos, name, limits)
            _check_overlap(infos, name)
            for info in infos:
                if info.filename.endswith(".rels"):
                    _check_rels(zf, info, name)
            if inflate:
                for info in infos:
                    _check_inflation(f, info, name)


def check_inflation(path, skip=()) -> None:
    """vet_package's check that no part holds more than it declares, for every part but those
    in `skip` (parts whose reader unpacks them with inflated(), which checks the same)."""
    name = str(path)
    with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
        for info in zf.infolist():
            if info.filename not in skip:
                _check_inflation(f, info, name)


def inflatable(info: zipfile.ZipInfo) -> bool:
    """Can inflated() read this part (deflated, not encrypted)?"""
    return info.compress_type == zipfile.ZIP_DEFLATED and not info.flag_bits & 1 and not info.filename.endswith("/")


def inflated(path, info: zipfile.ZipInfo, size: int = _CHUNK):
    """The unpacked bytes of a deflated part, in pieces of at most `size`, checked as they
    come: PackageError if it holds more than its entry declares (as vet_package says it),
    zipfile.BadZipFile if its CRC is wrong (as zipfile says it).
    One unpacking serves the guard and the reader."""
    with open(path, "rb") as f:
        yield from _inflate(f, info, str(path), size, check_crc=True)


def _inflate(f, info: zipfile.ZipInfo, name: str, size: int, check_crc: bool):
    """A deflated part's bytes read from its local entry with bounded output (see inflated)."""
    f.seek(info.header_offset)
    h = f.read(30)
    if h[:4] != b"PK\x03\x04":
        raise PackageError(f"{name}: is damaged (the zip entry of {info.filename} is missing); open it in Excel, let it repair, and save it again")
    n, m = struct.unpack("<HH", h[26:30])
    f.seek(info.header_offset + 30 + n + m)
    d = zlib.decompressobj(-15)
    left, out, limit, crc = info.compress_size, 0, info.file_size, 0
    buf = b""
    try:
        while not d.eof:
            if not buf:
                if not left:
                    break
                buf = f.read(min(left, _CHUNK))
                if not buf:
                    break
                left -= len(buf)
            piece = d.decompress(buf, size)
            buf = d.unconsumed_tail
            out += len(piece)
            if out > limit:
                raise PackageError(
                    f"{name}: refused as a possible zip bomb: its part {info.filename} unpacks to more than the "
                    f"{show_size(limit)} its zip entry declares")
            if piece:
                if check_crc:
                    crc = zlib.crc32(piece, crc)
                yield piece
    except zlib.error as e:
        raise PackageError(f"{name}: is damaged ({info.filename}: {e}); open it in Excel, let it repair, and save it again") from None
    if check_crc and crc != info.CRC:  # (a part shorter than it declares is read as it is, as zipfile reads it)
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")


def _check_directory(f, name: str) -> None:
    end = getattr(zipfile, "_EndRecData", None)  # private, but stable since Python 2
    if end is None:
        return
    try:
        rec = end(f)
    except (OSError, struct.error):
        return  # zipfile reports it
    f.seek(0)
    if not rec:
        return
    entries, size = rec[zipfile._ECD_ENTRIES_TOTAL], rec[zipfile._ECD_SIZE]
    if entries > MAX_ENTRIES:
        raise PackageError(f"{name}: refused: it holds {entries} parts; a workbook has tens, and cxrules reads at most {MAX_ENTRIES}")
    if size > MAX_DIRECTORY:
        raise PackageError(f"{name}: refused: its zip directory is {show_size(size)}; a workbook's is a few KB, and cxrules reads at most {show_size(MAX_DIRECTORY)}")


def _norm(n: str) -> str:
    return n.replace("\\", "/")


def _check_names(infos, name: str) -> None:
    seen: dict[str, str] = {}
    for info in infos:
        n = info.filename
        p = _norm(n)
        if p.startswith("/") or re.match(r"^[A-Za-z]:", p) or ".." in p.split("/"):
            raise PackageError(f"{name}: refused: it holds a part named '{n}', which points outside the workbook; a workbook's parts are inside it")
        key = posixpath.normpath(p).casefold()  # 'xl/./a.xml' is 'xl/a.xml' to a package reader
        if key in seen:
            same = f"'{n}' twice" if seen[key] == n else f"'{seen[key]}' and '{n}'"
            raise PackageError(
                f"{name}: refused: it holds two parts of one name ({same}); programs disagree on which one counts, "
                "so cxrules does not read it")
        seen[key] = n


def _check_sizes(infos, name: str, limits: Limits) -> None:
    total = 0
    for info in infos:
        n, size, packed = info.filename, info.file_size, info.compress_size
        if info.flag_bits & 0x01:
            raise PackageError(f"{name}: its part {n} is encrypted inside the zip, which Excel never does; open it in Excel and save it again")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise PackageError(
                f"{name}: its part {n} is packed with zip method {info.compress_type}, which Excel never uses; open it in Excel and save it again")
        if size > RATIO_FLOOR and size > limits.ratio * max(packed, 1):
            raise PackageError(
                f"{name}: refused as a possible zip bomb: its part {n} unpacks to {show_size(size)} from {show_size(packed)}, "
                f"{size / max(packed, 1):.0f} times its packed size (the limit is {limits.ratio:g}); {_raise_hint('--max-ratio', ENV_RATIO)}")
        if size > limits.part_size:
            raise PackageError(
                f"{name}: refused as a possible zip bomb: its part {n} unpacks to {show_size(size)} "
                f"(the limit is {show_size(limits.part_size)} per part); {_raise_hint('--max-part-size', ENV_PART)}")
        total += size
    if total > limits.total_size:
        raise PackageError(
            f"{name}: refused as a possible zip bomb: its parts unpack to {show_size(total)} in all "
            f"(the limit is {show_size(limits.total_size)}); {_raise_hint('--max-total-size', ENV_TOTAL)}")


def _check_overlap(infos, name: str) -> None:
    """Entries that share packed bytes are the trick of the densest zip bombs. (An entry takes
    at least its 30-byte local header and its packed bytes; its name is left out, as its
    length on disk depends on the name's encoding.)"""
    prev = None
    for info in sorted(infos, key=lambda i: i.header_offset):
        if prev is not None and info.header_offset < prev.header_offset + 30 + prev.compress_size:
            raise PackageError(f"{name}: refused as a possible zip bomb: its parts {prev.filename} and {info.filename} share packed bytes")
        prev = info


_REL = re.compile(rb"<(?:\w+:)?Relationship\b[^>]*>")


def _check_rels(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
    """Every internal relationship target must resolve inside the package."""
    d, b = posixpath.split(_norm(info.filename))
    if posixpath.basename(d) != "_rels":
        return
    source_dir = posixpath.dirname(d)  # targets are relative to the source part's folder
    carry = b""
    try:
        with zf.open(info) as fin:
            while True:
                data = fin.read(_CHUNK)
                buf = carry + data
                cut = buf.rfind(b">") + 1 if data else len(buf)
                if len(buf) - cut > _CHUNK:  # one tag longer than a megabyte: not relationships
                    cut = len(buf)
                for m in _REL.finditer(buf, 0, cut):
                    a = attrs(m.group(0).decode("utf-8", "replace"))
                    if a.get("TargetMode") == "External":
                        continue
                    target = a.get("Target", "")
                    if _outside(source_dir, target):
                        raise PackageError(
                            f"{name}: refused: relationship {a.get('Id', '?')} in {info.filename} points outside the workbook "
                            f"('{target}'); a workbook's parts are inside it")
                carry = buf[cut:]
                if not data:
                    return
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
        raise PackageError(f"{name}: is damaged ({e}); open it in Excel, let it repair, and save it again") from None


def _outside(source_dir: str, target: str) -> bool:
    t = _norm(unquote(target))
    if re.match(r"^[A-Za-z]:/|^//", t):
        return True
    full = t if t.startswith("/") else posixpath.join("/", source_dir, t)
    # normpath would clip '/../x' to '/x': walk the segments instead
    depth = 0
    for seg in full.split("/"):
        if seg == "..":
            depth -= 1
            if depth < 0:
                return True
        elif seg not in ("", "."):
            depth += 1
    return False


def _check_inflation(f, info: zipfile.ZipInfo, name: str) -> None:
    """Unpack one part with bounded output; refuse it if it holds more than it declares."""
    if info.compress_type != zipfile.ZIP_DEFLATED or info.filename.endswith("/"):
        return  # stored parts cannot grow
    for _ in _inflate(f, info, name, _CHUNK, check_crc=False):
        pass
