"""`cxrules recalc` and the file system: what it refuses to replace, what it keeps, and the
one line it prints when the file system is in the way. Each failure leaves the original
byte for byte as it was."""
import contextlib
import datetime as dt
import errno
import io
import os
import signal
import socket
import stat
import tempfile
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

import cxrules.xlsx_write as xw
from cxrules.cli import cli
from cxrules.workbook import WorkbookError, open_workbook, write_workbook

AS_OF = "2026-11-23 10:00"
RULES = Path(__file__).resolve().parents[1] / "rules"
posix = pytest.mark.skipif(os.name == "nt", reason="POSIX file-system semantics")
root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")


def recalc(*args):
    argv = ["recalc", *map(str, args), "--as-of", AS_OF, "--rules", str(RULES), "-s"]
    return CliRunner().invoke(cli, argv)


def error(r) -> str:
    """The whole of stderr, which must be one 'Error:' line and nothing else."""
    assert "Traceback" not in r.output and "This is a bug" not in r.output, r.output
    return r.stderr


def sheets(path) -> list[str]:
    with open_workbook(path) as wb:
        return [s.name for s in wb.sheets]


HEADER = ["Customer", "Last purchase", "Orders 12m", "Spend 12m", "Last contact"]


def customers(ws, first="C"):
    ws.append(HEADER)
    for k in range(60):
        ws.append([f"{first}{k}", dt.date(2026, 11, 20) - dt.timedelta(days=9 * k), k % 7, 300 * k, dt.date(2026, 10, 1)])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    wb = openpyxl.Workbook()
    wb.active.title = "Customers"
    customers(wb.active)
    p = tmp_path_factory.mktemp("wb") / "small.xlsx"
    wb.save(p)
    return p


@pytest.fixture
def book(small, tmp_path):
    p = tmp_path / "book.xlsx"
    p.write_bytes(small.read_bytes())
    return p


@contextlib.contextmanager
def within(seconds):
    """Fail instead of hanging: opening a FIFO for reading blocks until a writer comes."""
    def stop(*_):
        raise TimeoutError("cxrules blocked")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ --output and --force
@pytest.mark.parametrize("name,content", [("notes.txt", b"call Mrs Li back\n"), ("report.xlsx", b"id,tier\n1,Gold\n")])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_output_that_is_not_a_workbook_is_never_overwritten(book, tmp_path, name, content, force):
    out = tmp_path / name
    out.write_bytes(content)
    original = book.read_bytes()
    r = recalc(book, "-o", out, *force)
    assert r.exit_code == 1
    assert error(r) == f"Error: {out}: exists and is not a workbook, so cxrules will not overwrite it; choose another --output name\n"
    assert out.read_bytes() == content and book.read_bytes() == original


def test_existing_workbook_output_is_replaced_only_with_force(book, small, tmp_path):
    out = tmp_path / "out.xlsx"
    out.write_bytes(small.read_bytes())
    before = out.read_bytes()
    r = recalc(book, "-o", out)
    assert r.exit_code == 1
    assert error(r) == f"Error: {out}: already exists; add --force to replace it, or choose another --output name\n"
    assert out.read_bytes() == before
    r = recalc(book, "-o", out, "--force")
    assert r.exit_code == 0, r.output
    assert "CX summary" in sheets(out) and "CX summary" not in sheets(book)
    # the same rule through a folder: the file inside it is the output
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "book.xlsx").write_bytes(before)
    r = recalc(book, "-o", folder)
    assert r.exit_code == 1
    assert error(r) == f"Error: {folder / 'book.xlsx'}: already exists; add --force to replace it, or choose another --output name\n"
    assert (folder / "book.xlsx").read_bytes() == before


def test_output_naming_the_workbook_itself_is_in_place(book):
    r = recalc(book, "-o", book)
    assert r.exit_code == 0, r.output
    assert "CX summary" in sheets(book)


def test_output_that_is_neither_a_workbook_name_nor_a_folder(book, tmp_path):
    original = book.read_bytes()
    r = recalc(book, "-o", tmp_path / "results")
    assert r.exit_code == 1
    assert error(r) == (f"Error: {tmp_path / 'results'}: is not a workbook name and there is no such folder; "
                        "name the output .xlsx (or .xlsm), or create the folder first\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx"] and book.read_bytes() == original


# ------------------------------------------------------------------ read-only, owner, links
def test_read_only_workbook_is_refused_even_for_root(book, small, tmp_path):
    original = book.read_bytes()
    os.chmod(book, 0o444)
    r = recalc(book)
    assert r.exit_code == 1
    assert error(r) == f"Error: {book}: is read-only, so cxrules will not replace it; make it writable, or write the results elsewhere with --output\n"
    assert book.read_bytes() == original and stat.S_IMODE(book.stat().st_mode) == 0o444
    # an existing read-only --output is not replaced either, --force or not
    out = tmp_path / "out.xlsx"
    out.write_bytes(small.read_bytes())
    os.chmod(out, 0o444)
    r = recalc(book, "-o", out, "--force")
    assert r.exit_code == 1
    assert error(r) == f"Error: {out}: is read-only, so cxrules will not replace it; make it writable, or write the results elsewhere with --output\n"
    assert out.read_bytes() == small.read_bytes()
    # reading it is fine: a dry run or a new output
    assert recalc(book, "--dry-run").exit_code == 0
    r = recalc(book, "-o", tmp_path / "copy.xlsx")
    assert r.exit_code == 0 and book.read_bytes() == original
    assert stat.S_IMODE((tmp_path / "copy.xlsx").stat().st_mode) == 0o644  # the workbook's mode, writable by you


@posix
def test_workbook_in_a_read_only_folder_is_refused(book, tmp_path):
    original = book.read_bytes()
    os.chmod(tmp_path, 0o555)
    try:
        r = recalc(book)
        listing = sorted(p.name for p in tmp_path.iterdir())
    finally:
        os.chmod(tmp_path, 0o755)
    assert r.exit_code == 1
    assert error(r) == (f"Error: {book}: its folder {tmp_path} is read-only, so cxrules cannot write there; "
                        "make the folder writable, or write the results elsewhere with --output\n")
    assert book.read_bytes() == original and listing == ["book.xlsx"]


@posix
@root
@pytest.mark.parametrize("how", ["in place", "--output --force"])
def test_owner_group_and_mode_of_a_replaced_workbook_are_kept(book, small, tmp_path, how):
    target = book if how == "in place" else tmp_path / "out.xlsx"
    if target != book:
        target.write_bytes(small.read_bytes())
    os.chown(target, 4321, 4322)
    os.chmod(target, 0o640)
    before = target.read_bytes()
    r = recalc(book) if target == book else recalc(book, "-o", target, "--force")
    assert r.exit_code == 0, r.output
    st = target.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4322, 0o640)
    assert target.read_bytes() != before and "CX summary" in sheets(target)


@posix
def test_owner_that_cannot_be_kept_is_refused(book, tmp_path, monkeypatch):
    original = book.read_bytes()
    message = (f"Error: {book}: belongs to another user or group, and cxrules cannot give the new file the same owner; "
               "run it as that user, or write the results elsewhere with --output\n")
    # a user who is not the owner: refused before any work
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    r = recalc(book)
    assert r.exit_code == 1 and error(r) == message
    assert book.read_bytes() == original
    monkeypatch.undo()
    if os.geteuid() != 0:
        return
    # the owner cannot be given to the new file (chown refused): refused, nothing replaced

    def no_chown(*a, **k):
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    os.chown(book, 4321, 4321)
    monkeypatch.setattr(os, "chown", no_chown)
    r = recalc(book)
    assert r.exit_code == 1 and error(r) == message.replace(str(book), os.path.realpath(book))
    assert book.read_bytes() == original and sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx"]


def test_hard_linked_workbook_is_refused(book, tmp_path):
    other = tmp_path / "also book.xlsx"
    os.link(book, other)
    original = book.read_bytes()
    r = recalc(book)
    assert r.exit_code == 1
    assert error(r) == (f"Error: {book}: has 2 hard links (other names for the same file); replacing it would leave those "
                        "with the old workbook, so cxrules will not; write the results elsewhere with --output, or remove the other links\n")
    assert book.read_bytes() == original and other.read_bytes() == original
    assert os.path.samefile(book, other)


@posix
def test_symlink_is_kept_and_the_file_it_points_to_is_replaced(book, tmp_path):
    link = tmp_path / "link.xlsx"
    link.symlink_to(book.name)
    r = recalc(link)
    assert r.exit_code == 0, r.output
    assert link.is_symlink() and os.readlink(link) == "book.xlsx"
    assert "CX summary" in sheets(book)


# ------------------------------------------------------------------ temp files
@posix
def test_temp_file_of_a_killed_run_is_removed_one_in_use_is_kept(book, tmp_path):
    import fcntl

    hour_ago = time.time() - 3600
    killed, fresh, locked = (tmp_path / f".~cxrules-{n}.tmp" for n in ("killed12", "fresh123", "locked12"))
    for p in (killed, fresh, locked):
        p.write_bytes(b"PK\x03\x04 half a workbook")
    for p in (killed, locked):
        os.utime(p, (hour_ago, hour_ago))
    with open(locked, "r+b") as held:  # a running cxrules holds its temp file locked
        fcntl.flock(held, fcntl.LOCK_EX)
        r = recalc(book)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [".~cxrules-fresh123.tmp", ".~cxrules-locked12.tmp", "book.xlsx"]
    assert "CX summary" in sheets(book)


# ------------------------------------------------------------------ not a file
@posix
def test_fifo_as_workbook_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.xlsx"
    os.mkfifo(fifo)
    with within(20):
        r = recalc(fifo)
    assert r.exit_code == 1
    assert error(r) == f"Error: {fifo}: is a named pipe (FIFO), not a workbook file; give the path of an .xlsx file\n"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@posix
@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
def test_non_file_as_output_is_refused_without_blocking(book, tmp_path, kind):
    out = tmp_path / f"{kind}.xlsx"
    words = {"fifo": "a named pipe (FIFO)", "socket": "a socket", "device": "a device"}[kind]
    sock = None
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(out))
    else:
        try:
            os.mknod(out, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
        except PermissionError:
            pytest.skip("may not make device files here")
    original = book.read_bytes()
    mode = os.lstat(out).st_mode
    try:
        with within(20):
            r = recalc(book, "-o", out, "--force")
    finally:
        if sock:
            sock.close()
    assert r.exit_code == 1
    assert error(r) == f"Error: {out}: is {words}, not a workbook file; --output must name a workbook file or a folder\n"
    assert os.lstat(out).st_mode == mode and book.read_bytes() == original


# ------------------------------------------------------------------ long names
@posix
def test_too_long_file_names_get_one_line(book, tmp_path):
    original = book.read_bytes()
    out = tmp_path / ("x" * 300 + ".xlsx")
    r = recalc(book, "-o", out)
    assert r.exit_code == 1
    assert error(r) == f"Error: {out}: the file name is too long for this file system (305 bytes; at most 255); choose a shorter name\n"
    r = recalc(out)
    assert r.exit_code == 1
    assert error(r) == f"Error: {out}: the file name is too long for this file system (305 bytes; at most 255); choose a shorter name\n"
    assert book.read_bytes() == original and sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx"]


@posix
def test_longest_name_is_written_in_place(book, tmp_path):
    longest = tmp_path / ("b" * 250 + ".xlsx")  # 255 bytes: Excel's '~$' lock name would not fit
    book.rename(longest)
    r = recalc(longest)
    assert r.exit_code == 0, r.output
    assert "CX summary" in sheets(longest)


@posix
def test_folder_too_deep_for_the_temp_file_beside_the_output(book, tmp_path):
    """The output's path fits, the temp file's (a longer name) does not."""
    deep = tmp_path
    while len(str(deep)) < 4080 - 201:
        deep = deep / ("d" * 200)
    deep = deep / ("e" * (4080 - len(str(deep)) - 1))
    os.makedirs(deep)
    assert len(os.fsencode(str(deep))) == 4080
    out = deep / "o.xlsx"
    original = book.read_bytes()
    r = recalc(book, "-o", out)
    assert r.exit_code == 1
    why = "the temporary file beside it cannot be made: the path is too long for this system (4103 bytes; at most 4095); use a shorter folder or name"
    assert error(r) == f"Error: {out}: {why}\n"
    # the writer says the same when called without that check first
    with pytest.raises(WorkbookError) as e:
        write_workbook(book, out, [])
    assert str(e.value) == f"{os.path.realpath(out)}: {why}"
    assert list(deep.iterdir()) == [] and book.read_bytes() == original


# ------------------------------------------------------------------ full disks
class _FullAfter(io.BytesIO):
    """A scratch file on a disk that fills up after a few bytes."""

    def write(self, b):
        if self.tell() + len(b) > 512:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(b)


def test_full_tmpdir_names_the_temporary_folder(book, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda *a, **k: _FullAfter())
    original = book.read_bytes()
    r = recalc(book)
    assert r.exit_code == 1
    assert error(r) == (f"Error: {book}: no space left in the temporary folder {scratch}; free space there or set TMPDIR "
                        "to another folder; the workbook was not changed\n")
    assert book.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx", "scratch"]


def test_full_disk_of_the_destination_names_its_folder(book, tmp_path, monkeypatch):
    real, calls = xw._raw_copy, []

    def fills_up(*a, **k):  # every raw copy writes into the temp file beside the workbook
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*a, **k)

    monkeypatch.setattr(xw, "_raw_copy", fills_up)
    original = book.read_bytes()
    r = recalc(book)
    assert r.exit_code == 1
    folder = os.path.realpath(tmp_path)
    assert error(r) == (f"Error: {os.path.realpath(book)}: no space left on the disk of {folder}; free space there, or write "
                        "the results elsewhere with --output; the workbook was not changed\n")
    assert book.read_bytes() == original and sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx"]


# ------------------------------------------------------------------ no free column
NEW = "Tier, Tier reason, Contact every, Channel, Contact purpose, Contact owner, Next contact, Days overdue"


@pytest.mark.parametrize("last,why", [
    ("XFD", "the sheet already uses column XFD, Excel's last"),
    ("XFA", "only 3 columns are left after XFA (XFD is Excel's last)"),
])
def test_sheet_without_a_free_column_is_left_and_the_others_written(tmp_path, last, why):
    wb = openpyxl.Workbook()
    wide = wb.active
    wide.title = "Wide"
    customers(wide)
    wide[f"{last}1"] = "far right"
    customers(wb.create_sheet("Customers"), "D")
    p = tmp_path / "wide.xlsx"
    wb.save(p)
    with zipfile.ZipFile(p) as z:
        wide_xml = z.read("xl/worksheets/sheet1.xml")
    r = recalc(p)
    assert r.exit_code == 1
    assert error(r) == (f"Error: {p}: sheet 'Wide': no free column for 8 new results ({NEW}): {why}; nothing was written "
                        "on this sheet; clear the unused cells at the far right of the sheet, or add these headers to columns "
                        "it has, and run again\n")
    with zipfile.ZipFile(p) as z:
        assert z.testzip() is None
        assert z.read("xl/worksheets/sheet1.xml") == wide_xml  # that sheet is left byte for byte
    with open_workbook(p) as book:
        assert book.read_sheet("Customers").rows[0][5:7] == ["Tier", "Tier reason"]
        issues = book.read_sheet("Issues").rows
    assert any(row[0] == "Wide" and str(row[4]).startswith("no free column for 8 new results") for row in issues)
