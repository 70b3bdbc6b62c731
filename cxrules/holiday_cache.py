"""Public holidays kept on disk between runs.

Asking the `holidays` package for one country's year imports its module for every country
(about 80 ms), more than reading the rules takes; a year once computed is kept in a small
file per version of the package, so a later run (a new process: the command line, a batch
job) reads it back instead. The file is only ever a copy: a missing, unreadable or damaged
one is computed afresh, and a folder that cannot be written is simply not used.

CXRULES_CACHE_DIR names the folder (empty: keep nothing); else the user's cache folder.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

Days = tuple[frozenset, frozenset]  # (days off, make-up working days)


def cache_dir() -> Path | None:
    own = os.environ.get("CXRULES_CACHE_DIR")
    if own is not None:
        return Path(own) if own.strip() else None
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return Path(base) / "cxrules" / "cache" if base else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home folder known
            return None
    return Path(base) / "cxrules"


@lru_cache(maxsize=None)
def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("holidays")
    except PackageNotFoundError:
        return None


def _file() -> Path | None:
    folder, v = cache_dir(), _version()
    if folder is None or v is None:
        return None
    return folder / f"holidays-{''.join(c if c.isalnum() or c in '.-' else '_' for c in v)}.json"


def _key(code: str, subdiv: str | None, year: int) -> str:
    return f"{code}|{subdiv or ''}|{year}"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_loaded: dict[Path, dict] = {}


def _get(key: str):
    path = _file()
    if path is None:
        return None
    if path not in _loaded:
        _loaded[path] = _read(path)
    return _loaded[path].get(key)


def _put(key: str, value) -> None:
    path = _file()
    if path is None:
        return
    data = _read(path)  # what other runs added meanwhile
    data[key] = value
    _loaded[path] = data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".holidays-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, path)  # whole or not at all: a reader never sees half a file
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        pass  # a folder we may not write: nothing is kept


def get(code: str, subdiv: str | None, year: int) -> Days | None:
    """The year's days as put() kept them, or None."""
    try:
        off, makeup = _get(_key(code, subdiv, year))
        return frozenset(map(dt.date.fromisoformat, off)), frozenset(map(dt.date.fromisoformat, makeup))
    except (TypeError, ValueError):  # absent, or not what this module writes
        return None


def put(code: str, subdiv: str | None, year: int, days: Days) -> None:
    _put(_key(code, subdiv, year), [sorted(d.isoformat() for d in days[0]), sorted(d.isoformat() for d in days[1])])


def names(key: str, compute) -> list[str]:
    """A list of names kept under `key` (the country codes, a country's regions), else compute()'s, kept."""
    got = _get(key)
    if isinstance(got, list) and all(isinstance(x, str) for x in got):
        return got
    got = list(compute())
    _put(key, got)
    return got
