"""Files and the file system: what may be read or replaced, and replacing it safely.

Policy (docs/recalc.md, "Files"):
- Only regular files are read or replaced; a FIFO, device or socket is refused from its
  stat, never opened (opening a FIFO blocks).
- `--output` never replaces a file that is not a workbook, and an existing workbook only
  with force. Writing in place needs no force.
- A read-only workbook or folder is refused. Read-only is judged from the mode bits as
  well as os.access, because os.access says yes to root for any file.
- A replaced file keeps its owner, group and mode; when they cannot be kept the file is
  left alone. A file with several hard links is refused: replacing one name would leave
  the others holding the old workbook. A symlink stays; the file it points to is replaced.
- Temp files `.~cxrules-XXXXXXXX.tmp` beside the destination are locked while written;
  one left by a killed run (unlocked, untouched for STALE_AFTER seconds) is removed by
  the next write into that folder. Scratch data goes to an unnamed file in TMPDIR.
"""
from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import time
import zipfile
from pathlib import Path

from .xlsx_read import OK_SUFFIXES, WorkbookError, workbook_part

try:
    import fcntl
except ImportError:  # Windows: an open temp file cannot be deleted there anyway
    fcntl = None

TEMP_PREFIX, TEMP_SUFFIX = ".~cxrules-", ".tmp"
_TEMP_NAME = re.compile(r"\.~cxrules-[a-z0-9_]{8}\.tmp")  # what mkstemp makes with that prefix
TEMP_NAME_LEN = len(TEMP_PREFIX) + 8 + len(TEMP_SUFFIX)
STALE_AFTER = 60  # seconds; a live run writes its temp file continuously
_EDQUOT = getattr(errno, "EDQUOT", None)


class TempFolderError(OSError):
    """An OSError of the scratch file in TMPDIR (told apart from the destination's disk)."""


# ------------------------------------------------------------------ looking at paths
def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _limit(path: Path, name: str, default: int) -> int:
    p = path
    while True:
        try:
            return os.pathconf(str(p), name)
        except (OSError, ValueError, AttributeError):
            if p.parent == p:
                return default
            p = p.parent


def too_long(path, extra: int = 0) -> str:
    """Why `path` is too long: one of its names, or the whole path (plus `extra` bytes)."""
    path = Path(os.path.abspath(path))
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    name_max = _limit(path.parent, "PC_NAME_MAX", 255)
    if longest > name_max:
        return f"the file name is too long for this file system ({longest} bytes; at most {name_max}); choose a shorter name"
    path_max = _limit(path.parent, "PC_PATH_MAX", 4096)
    return f"the path is too long for this system ({len(os.fsencode(str(path))) + extra} bytes; at most {path_max - 1}); use a shorter folder or name"


def _stat(path, name=None) -> os.stat_result | None:
    """os.stat, or None if nothing is there; other failures are a WorkbookError."""
    name = name or path
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise WorkbookError(f"{name}: {too_long(path)}") from None
        raise WorkbookError(f"{name}: cannot be reached ({e.strerror}); check the name and that you may open its folder") from None


def is_dir(path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def check_input(path) -> None:
    """A workbook to read must be a regular file; decided without opening it."""
    st = _stat(path)
    if st is None:
        raise WorkbookError(f"{path}: no such file; check the name and folder")
    if stat.S_ISDIR(st.st_mode):
        raise WorkbookError(f"{path}: is a folder, not a workbook")
    kind = _kind(st.st_mode)
    if kind:
        raise WorkbookError(f"{path}: is {kind}, not a workbook file; give the path of an .xlsx file")
    if not os.access(path, os.R_OK):
        raise WorkbookError(f"{path}: cannot be read (permission denied); check you may read it")


def read_only(path, st: os.stat_result) -> bool:
    if not st.st_mode & 0o222:  # what Explorer and `chmod a-w` mean by read-only, root or not
        return True
    return not os.access(path, os.W_OK)


def _folder_read_only(folder: Path) -> bool:
    st = _stat(folder)
    if st is None:
        return False
    if os.name == "nt":  # Windows ignores the read-only attribute of folders
        return not os.access(folder, os.W_OK)
    return read_only(folder, st)


def is_workbook(path) -> bool:
    """A zip package with a workbook part, named like a workbook: something cxrules may replace."""
    if Path(path).suffix.lower() not in OK_SUFFIXES:
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            return "[Content_Types].xml" in names and workbook_part(zf) in names
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, UnicodeDecodeError):
        return False


def _check_replaceable(shown, real: Path, st: os.stat_result) -> None:
    """The checks for a file that is there and is about to be replaced."""
    if read_only(real, st):
        raise WorkbookError(f"{shown}: is read-only, so cxrules will not replace it; make it writable, or write the results elsewhere with --output")
    if st.st_nlink > 1:
        raise WorkbookError(
            f"{shown}: has {st.st_nlink} hard links (other names for the same file); replacing it would leave those "
            "with the old workbook, so cxrules will not; write the results elsewhere with --output, or remove the other links")
    if hasattr(os, "geteuid") and os.geteuid() != 0 and (
            st.st_uid != os.geteuid() or st.st_gid not in (os.getegid(), *os.getgroups())):
        raise WorkbookError(_owner_message(shown))


def check_replaceable(path: Path) -> None:
    """Refuse, before anything is written, an existing file that replace() would refuse."""
    real = Path(os.path.realpath(path))
    _check_replaceable(path, real, os.stat(real))


def _owner_message(shown) -> str:
    return (f"{shown}: belongs to another user or group, and cxrules cannot give the new file the same owner; "
            "run it as that user, or write the results elsewhere with --output")


def check_destination(src, dst, force: bool = False) -> None:
    """Refuse, before any work, a destination cxrules must not replace or cannot write.

    `dst` is the workbook itself when writing in place, else the `--output` file.
    """
    real = Path(os.path.realpath(dst))  # a symlink stays; the file it points to is replaced
    st = _stat(real, dst)
    folder = real.parent
    if st is None:
        if real.suffix.lower() not in OK_SUFFIXES:
            raise WorkbookError(f"{dst}: is not a workbook name and there is no such folder; name the output .xlsx (or .xlsm), or create the folder first")
        fst = _stat(folder, dst)
        if fst is None or not stat.S_ISDIR(fst.st_mode):
            raise WorkbookError(f"{dst}: the folder {folder} does not exist; create it first")
    else:
        kind = _kind(st.st_mode)
        if kind == "a folder":  # a command that takes a folder has put the workbook's name in it already
            raise WorkbookError(f"{dst}: is a folder; give --output the name of a workbook file, e.g. {Path(dst) / 'report.xlsx'}")
        if kind:
            raise WorkbookError(f"{dst}: is {kind}, not a workbook file; --output must name a workbook file or a folder")
        sst = _stat(src)
        in_place = sst is not None and os.path.samestat(st, sst)
        if not in_place:
            if not is_workbook(real):
                raise WorkbookError(f"{dst}: exists and is not a workbook, so cxrules will not overwrite it; choose another --output name")
            if not force:
                raise WorkbookError(f"{dst}: already exists; add --force to replace it, or choose another --output name")
        _check_replaceable(dst, real, st)
    if _folder_read_only(folder):
        raise WorkbookError(f"{dst}: its folder {folder} is read-only, so cxrules cannot write there; make the folder writable, or write the results elsewhere with --output")
    if len(os.fsencode(str(folder))) + 1 + TEMP_NAME_LEN >= _limit(folder, "PC_PATH_MAX", 4096):
        raise WorkbookError(_temp_too_long(dst, folder))


def _temp_too_long(dst, folder: Path) -> str:
    return f"{dst}: the temporary file beside it cannot be made: {too_long(folder, 1 + TEMP_NAME_LEN)}"


# ------------------------------------------------------------------ temp files
def remove_stale_temps(folder: Path) -> None:
    """Remove the temp files of killed runs from `folder`."""
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not _TEMP_NAME.fullmatch(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < STALE_AFTER:
                continue
            if _locked(entry.path):
                continue
            os.unlink(entry.path)
        except OSError:  # gone already, or not ours to remove: leave it
            continue


def _locked(path: str) -> bool:
    """True if a running cxrules holds the temp file (or if that cannot be known)."""
    if fcntl is None:
        return False
    fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # releases our lock too


def make_temp(dst: Path) -> tuple[int, str]:
    """A temp file beside dst, locked while this run writes it: (fd, path)."""
    remove_stale_temps(dst.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=str(dst.parent))
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:  # the temp name can be longer than the workbook's
            raise WorkbookError(_temp_too_long(dst, dst.parent)) from None
        raise
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # no locks on this file system: the age rule still protects the file
    return fd, tmp


class _Scratch:
    """A file in TMPDIR whose OSErrors say so (TempFolderError), for a message naming it."""

    def __init__(self, f, folder: str):
        self._f, self.folder = f, folder

    def __getattr__(self, name):
        attr = getattr(self._f, name)
        if not callable(attr):
            return attr

        def call(*a, **k):
            try:
                return attr(*a, **k)
            except TempFolderError:
                raise
            except OSError as e:
                raise TempFolderError(e.errno, e.strerror or str(e), self.folder) from e

        return call

    def close(self):
        try:
            self._f.close()  # closes the file even when its last flush fails
        except OSError:
            pass  # the scratch data is thrown away: a failed flush of it changes nothing


def scratch_file() -> _Scratch:
    folder = tempfile.gettempdir()
    try:
        return _Scratch(tempfile.TemporaryFile(), folder)
    except OSError as e:
        raise TempFolderError(e.errno, e.strerror or str(e), folder) from e


# ------------------------------------------------------------------ replacing
def replace(tmp: str, dst: Path, like: Path) -> None:
    """Move tmp over dst in one step, keeping dst's owner, group and mode.

    A new file gets the mode of `like` (the workbook read), made writable for its owner.
    """
    st = _stat(dst)
    if st is not None:
        kind = _kind(st.st_mode)
        if kind:
            raise WorkbookError(f"{dst}: is {kind}, not a workbook file; --output must name a workbook file or a folder")
        _check_replaceable(dst, dst, st)
        own = os.stat(tmp)
        if hasattr(os, "chown") and (own.st_uid, own.st_gid) != (st.st_uid, st.st_gid):
            try:
                os.chown(tmp, st.st_uid, st.st_gid)  # before chmod: chown clears setuid/setgid bits
            except PermissionError:
                raise WorkbookError(_owner_message(dst)) from None
        mode = stat.S_IMODE(st.st_mode)
    else:
        try:
            mode = (stat.S_IMODE(os.stat(like).st_mode) & 0o777) | stat.S_IWUSR
        except OSError:
            mode = None
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, dst)
    if hasattr(os, "O_DIRECTORY"):
        try:
            dfd = os.open(str(dst.parent), os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass


def write_error(src, dst: Path, e: OSError) -> WorkbookError:
    """One line naming the real cause of an OSError met while writing; nothing was changed."""
    if isinstance(e, TempFolderError):
        if e.errno in (errno.ENOSPC, _EDQUOT):
            return WorkbookError(f"{src}: no space left in the temporary folder {e.filename}; free space there or set TMPDIR to another folder; the workbook was not changed")
        return WorkbookError(f"{src}: the temporary folder {e.filename} cannot be used ({e.strerror}); set TMPDIR to another folder; the workbook was not changed")
    if e.errno in (errno.ENOSPC, _EDQUOT):
        return WorkbookError(f"{dst}: no space left on the disk of {dst.parent}; free space there, or write the results elsewhere with --output; the workbook was not changed")
    if e.errno == errno.ENAMETOOLONG:
        return WorkbookError(f"{dst}: {too_long(dst)}")
    if e.errno == errno.EROFS:
        return WorkbookError(f"{dst}: is on a read-only file system; write the results elsewhere with --output")
    if isinstance(e, PermissionError):
        return WorkbookError(f"{dst}: cannot be written ({e.strerror}); close it in Excel, or check you may write to that folder")
    return WorkbookError(f"{dst}: could not be written ({e.strerror or e}); the workbook was not changed")
