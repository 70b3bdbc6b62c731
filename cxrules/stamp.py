"""What a recalculated workbook records about how its results were made, to check them later.

A stamp holds the cxrules version, the rule set's content hash (and its git revision when
the rules are in a git work tree), the as-of moment, and the recalc options that change
results (--dayfirst, --header-row, --map). recalc writes it into the CX summary sheet and
the document's custom properties; `cxrules verify` reads it back and recomputes.

The content hash is "sha256:" and the SHA-256 of a listing of the rule files, one line per
file sorted by file name: the SHA-256 of the file's normalised bytes in hex, two spaces, the
file's name, a newline (the lines `sha256sum` prints). Normalised: a UTF-8 byte order mark
dropped, CRLF and lone CR line ends made LF. So the hash is the same on Windows and Linux,
after a git checkout that converts line ends, and wherever the folder is; any other edit of
a rule file (comments and spacing too), and a file added, removed or renamed, changes it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shlex
import subprocess
from dataclasses import dataclass

from .problems import CxError

HASH_PREFIX = "sha256:"
GIT_TIMEOUT = 5.0  # seconds per git call: a stamp never waits long for git

# the custom document properties a stamp is written as (File > Info > Properties > Advanced)
PROP_VERSION = "cxrules version"
PROP_HASH = "cxrules rules hash"
PROP_REVISION = "cxrules rules revision"
PROP_AS_OF = "cxrules as of"
PROP_OPTIONS = "cxrules options"
PROPERTIES = (PROP_VERSION, PROP_HASH, PROP_REVISION, PROP_AS_OF, PROP_OPTIONS)


class StampError(CxError):
    """A stamp that cannot be read back (edited by hand, or from a newer cxrules)."""


def normalise(data: bytes) -> bytes:
    """A rule file's bytes as hashed: no UTF-8 byte order mark, LF line ends."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def file_digest(data: bytes) -> str:
    return hashlib.sha256(normalise(data)).hexdigest()


def rules_hash(sources) -> str:
    """The content hash of a rule set from its RuleSource list (see the module's docstring)."""
    listing = "".join(f"{digest}  {name}\n" for name, digest in sorted((s.name, s.digest) for s in sources))
    return HASH_PREFIX + hashlib.sha256(listing.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------ git
def _git(folder: str, *args: str) -> str | None:
    """git's output, or None when git is missing, fails or takes too long."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # a caller's GIT_DIR must not redirect us
    env["GIT_OPTIONAL_LOCKS"] = "0"  # status must not take the index lock from a git the person is running
    try:
        r = subprocess.run(["git", "-C", folder, *args], capture_output=True, timeout=GIT_TIMEOUT, env=env,
                           stdin=subprocess.DEVNULL, creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return r.stdout.decode("utf-8", "replace") if r.returncode == 0 else None


def git_revision(paths: list[str]) -> str | None:
    """The last commit that changed these files, in the git work tree holding them, with
    '-dirty' after it when any of them differs from what is committed (edited, staged or
    never committed); None when no commit holds them, or git is missing or does not answer.
    The last commit that changed them, not HEAD: commits elsewhere in the repository leave
    the stamp (and so a rerun's bytes) as they were."""
    if not paths:
        return None
    folder = os.path.commonpath([os.path.dirname(p) for p in paths])
    head = (_git(folder, "log", "-1", "--format=%H", "--", *paths) or "").strip()
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", head):
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=all", "--ignored", "--", *paths)
    if status is None:
        return None
    lines = [line for line in status.splitlines() if line.strip()]
    if sum(line[:2] in ("??", "!!") for line in lines) >= len(paths):  # the commit does not hold these rules
        return None
    return head + ("-dirty" if lines else "")


# ------------------------------------------------------------------ the stamp
@dataclass(frozen=True)
class Stamp:
    version: str
    rules_hash: str
    as_of: dt.datetime
    revision: str | None = None
    options: tuple[str, ...] = ()  # recalc's options that change results, as on the command line

    @property
    def options_text(self) -> str:
        return shlex.join(self.options)

    @property
    def as_of_text(self) -> str:
        return self.as_of.isoformat(sep=" ")

    def properties(self) -> dict[str, str | None]:
        """As custom document properties; None removes one an earlier stamp wrote."""
        return {PROP_VERSION: self.version, PROP_HASH: self.rules_hash, PROP_REVISION: self.revision,
                PROP_AS_OF: self.as_of_text, PROP_OPTIONS: self.options_text or None}

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> "Stamp | None":
        """The stamp in a workbook's custom properties; None when it has none."""
        got = {k.casefold(): (v or "").strip() for k, v in props.items()}
        as_of, digest = got.get(PROP_AS_OF.casefold()), got.get(PROP_HASH.casefold())
        if not as_of and not digest:
            return None
        if not as_of or not digest:
            missing = PROP_AS_OF if not as_of else PROP_HASH
            raise StampError(f"its stamp has no '{missing}' property (it was edited); recalculate it with cxrules recalc")
        try:
            moment = dt.datetime.fromisoformat(as_of)
        except ValueError:
            raise StampError(f"its stamp's '{PROP_AS_OF}' property ('{as_of}') is not a date and time (it was edited); "
                             "recalculate it with cxrules recalc") from None
        try:
            options = tuple(shlex.split(got.get(PROP_OPTIONS.casefold(), "")))
        except ValueError as e:
            raise StampError(f"its stamp's '{PROP_OPTIONS}' property cannot be read ({e})") from None
        stamp = cls(got.get(PROP_VERSION.casefold(), ""), digest, moment, got.get(PROP_REVISION.casefold()) or None, options)
        stamp.replay()  # an option it cannot replay is said now, not halfway through
        return stamp

    def replay(self) -> dict:
        """The recalc arguments its options stand for: dayfirst, header_row, mapping."""
        from .mapping import parse_option

        out: dict = {"dayfirst": False, "header_row": None, "mapping": None}
        maps: list[str] = []
        args = list(self.options)
        while args:
            a = args.pop(0)
            if a == "--dayfirst":
                out["dayfirst"] = True
            elif a == "--header-row" and args and args[0].isdigit():
                out["header_row"] = int(args.pop(0))
            elif a == "--map" and args:
                maps.append(args.pop(0))
            else:
                raise StampError(f"its stamp records an option this cxrules cannot replay ('{a}'); "
                                 f"it was stamped by cxrules {self.version or '(unknown)'}")
        try:
            out["mapping"] = parse_option(maps)
        except ValueError as e:
            raise StampError(f"its stamp records a mapping that cannot be read: {e}") from None
        return out

    def to_dict(self) -> dict:
        return {"version": self.version, "rules_hash": self.rules_hash, "rules_revision": self.revision,
                "as_of": self.as_of_text, "options": self.options_text}


def make_stamp(rs, as_of: dt.datetime, dayfirst: bool = False, header_row: int | None = None, mapping=None) -> Stamp:
    """The stamp of results computed now from `rs` (a RuleSet) with these recalc options."""
    from . import __version__

    options: list[str] = []
    if dayfirst:
        options.append("--dayfirst")
    if header_row:
        options += ["--header-row", str(header_row)]
    for e in mapping.entries if mapping else ():
        options += ["--map", f"{e.sheet}!{e.header}={e.name}" if e.sheet else f"{e.header}={e.name}"]
    return Stamp(__version__, rules_hash(rs.sources), as_of, git_revision([s.path for s in rs.sources]), tuple(options))
