"""Rule sets named by a folder, a file, or a git revision of a rules folder.

`impact` compares two rule sets, and the one in force is often the one committed: a spec
that is not a path on disk is read as git's `REV:PATH` (PATH as git reads it: from the
repository's top, or from the current folder when it starts with ./) or as a bare `REV`,
meaning that revision of a rules folder on disk (the folder the other side names, else
the default rules). The tree is copied out of git (`git archive`) into a temporary folder
and loaded from there; problems name the files as `REV:path/file.yaml`.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from .loader import rule_files
from .model import RuleSet
from .problems import CxError, RuleSetError
from .stamp import rules_hash

GIT_TIMEOUT = 30.0  # seconds: archiving a rules folder is quick; a hung git must not hang the command


class RevisionError(CxError):
    """A git revision that cannot be read: git missing, not a repository, no such revision or path."""


@dataclass
class Rules:
    """A loaded rule set and how to name it in reports."""

    rs: RuleSet
    label: str  # the spec as given (a path, or REV:PATH)
    hash: str  # content hash (stamp.rules_hash)
    revision: str | None = None  # the commit, for a git spec


def is_path(spec: str) -> bool:
    """A spec names something on disk (or a Windows drive path) rather than a git revision."""
    return Path(spec).exists() or (os.name == "nt" and re.match(r"^[A-Za-z]:[\\/]", spec) is not None)


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # a caller's GIT_DIR must not redirect us
    env["GIT_OPTIONAL_LOCKS"] = "0"
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, env=env,
                              stdin=subprocess.DEVNULL, creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except FileNotFoundError:
        raise RevisionError("git is not installed (or not on PATH), so a git revision of the rules cannot be read; "
                            "give a rules folder instead") from None
    except subprocess.TimeoutExpired:
        raise RevisionError(f"git did not answer within {GIT_TIMEOUT:.0f} s in {cwd}") from None
    except OSError as e:
        raise RevisionError(f"could not run git in {cwd}: {e.strerror or e}") from None


def _first_line(r: subprocess.CompletedProcess) -> str:
    text = (r.stderr or r.stdout or b"").decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else f"git exited with {r.returncode}"


def resolve_git(spec: str, folder: Path | None) -> tuple[Path, str, str, str]:
    """(the repository's top folder, the object's id, the commit, REV:PATH) for a spec;
    a bare revision names `folder` at that revision. Raises RevisionError."""
    if ":" in spec:
        rev, path = spec.split(":", 1)
        cwd = Path.cwd()
        obj = spec
    else:
        rev = spec
        base = (folder if folder is not None and folder.is_dir() else (folder.parent if folder is not None else None))
        if base is None:
            raise RevisionError(f"'{spec}' is neither a folder nor a file, and no rules folder is known to read it from; "
                                "give REV:PATH, e.g. HEAD~1:rules")
        cwd = base.resolve()
        top = _git(cwd, "rev-parse", "--show-toplevel")
        if top.returncode:
            raise RevisionError(f"'{spec}' is not a folder or file, and {base} is not in a git repository, so it "
                                "cannot be read as a git revision either; give a rules folder, or REV:PATH inside a repository")
        prefix = _git(cwd, "rev-parse", "--show-prefix").stdout.decode("utf-8", "replace").strip()
        path = prefix.rstrip("/")
        if folder is not None and not folder.is_dir():  # a single rule file: that file at the revision
            path = f"{prefix}{folder.name}"
        obj = f"{rev}:{path}" if path else f"{rev}:"
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top.returncode:
        raise RevisionError(f"'{spec}' is not a folder or file here, and {cwd} is not in a git repository, so it "
                            "cannot be read as a git revision either; give a rules folder, or run in the repository")
    commit = _git(cwd, "rev-parse", "--verify", "--quiet", f"{rev or 'HEAD'}^{{commit}}")
    if commit.returncode:
        raise RevisionError(f"no revision '{rev}' in the git repository at {top.stdout.decode().strip()} "
                            f"(a branch, tag or commit such as HEAD~1 or v1.2)")
    oid = _git(cwd, "rev-parse", "--verify", "--quiet", obj)
    if oid.returncode:
        raise RevisionError(f"revision '{rev}' has no '{path}' in the git repository at {top.stdout.decode().strip()} "
                            "(PATH is from the repository's top, or from here when it starts with ./)")
    # git archive of a tree runs from the top: in a subfolder it would look for that subfolder inside the tree
    return Path(top.stdout.decode().strip()), oid.stdout.decode().strip(), commit.stdout.decode().strip(), obj


def _extract(cwd: Path, obj: str, dest: Path, name: str) -> None:
    kind = _git(cwd, "cat-file", "-t", obj).stdout.decode().strip()
    if kind == "blob":
        blob = _git(cwd, "cat-file", "blob", obj)
        (dest / (Path(name).name or "rules.yaml")).write_bytes(blob.stdout)
        return
    if kind != "tree":
        raise RevisionError(f"'{obj}' is a {kind} in git, not a folder or file")
    r = _git(cwd, "archive", "--format=tar", obj)
    if r.returncode:
        raise RevisionError(f"git could not read '{obj}': {_first_line(r)}")
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]  # no links out of the folder
        tar.extractall(dest, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))


def load(spec, other: Path | None = None) -> Rules:
    """The rule set a spec names: a folder or file on disk, else a git revision (see the
    module's docstring; `other` is the folder a bare revision refers to). Raises
    RuleSetError (with each problem located) or RevisionError."""
    from .rulesets import load_or_raise

    spec = str(spec)
    if is_path(spec):
        rs = load_or_raise(Path(spec))
        return Rules(rs, spec, rules_hash(rs.sources))
    top, oid, commit, label = resolve_git(spec, other)
    with tempfile.TemporaryDirectory(prefix="cxrules-rev-") as tmp:
        root = Path(tmp)
        _extract(top, oid, root, label.split(":", 1)[1])
        if not rule_files(root):
            raise RevisionError(f"'{label}' in git holds no .yaml rule files")
        try:
            rs = load_or_raise(root)
        except RuleSetError as e:
            raise RuleSetError([_renamed(p, root, label) for p in e.problems]) from None
        rs.files = [_name(f, root, label) for f in rs.files]
        return Rules(rs, label, rules_hash(rs.sources), commit)


def _name(file: str | None, root: Path, label: str) -> str | None:
    if not file:
        return file
    with contextlib.suppress(ValueError):
        rel = Path(file).resolve().relative_to(root.resolve())
        if label.lower().endswith((".yaml", ".yml")) and PurePosixPath(label.split(":", 1)[1]).name == rel.as_posix():
            return label  # REV:PATH named the file itself
        return f"{label.rstrip('/')}/{rel.as_posix()}" if not label.endswith(":") else f"{label}{rel.as_posix()}"
    name = Path(file).name
    return f"{label.rstrip('/')}/{name}" if not label.endswith(":") else f"{label}{name}"


def _renamed(p, root: Path, label: str):
    return replace(p, file=_name(p.file, root, label)) if p.file else p





def load_pair(new_spec, base_spec=None) -> tuple[Rules, Rules]:
    """(new, base): base defaults to the rules the other commands use. A bare revision on
    one side names the other side's folder at that revision (or the default rules')."""
    from .rulesets import default_rules_dir

    default = default_rules_dir()
    base_spec = str(base_spec) if base_spec else str(default)
    new_spec = str(new_spec)
    new_dir = Path(new_spec) if is_path(new_spec) else default
    base_dir = Path(base_spec) if is_path(base_spec) else (new_dir if is_path(new_spec) else default)
    return load(new_spec, base_dir), load(base_spec, new_dir)
