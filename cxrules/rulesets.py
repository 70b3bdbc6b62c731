"""Finding, loading and caching rule sets (what the CLI and Excel both use)."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from .evaluation import Evaluator
from .loader import load_rules, rule_files
from .model import RuleSet
from .problems import Problems, RuleSetError

ENV_VAR = "CXRULES_RULES"


def bundled_rules_dir() -> Path:
    """The rules shipped with cxrules: the repository's rules/ folder, which an installed
    wheel carries as cxrules/bundled_rules (setup.cfg maps it there)."""
    here = Path(__file__).resolve().parent
    packaged = here / "bundled_rules"
    return packaged if packaged.is_dir() else here.parent / "rules"


def default_rules_dir() -> Path:
    """$CXRULES_RULES, else ./rules if it holds rule files, else the bundled rules."""
    return default_rules_origin()[0]


def default_rules_origin() -> tuple[Path, str]:
    """The default rules and, in words, why they are the ones used."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env), f"${ENV_VAR}"
    local = Path("rules")
    if local.is_dir() and rule_files(local):
        return local, "./rules in the current folder"
    return bundled_rules_dir(), "the rules bundled with cxrules"


def load(paths=None, check: bool = True) -> tuple[RuleSet, Problems]:
    """Load and (by default) check a rule set; never raises for bad rule files."""
    rs, problems = load_rules(paths if paths else default_rules_dir())
    if check and not problems.errors:
        from .checker import check_ruleset

        problems.extend(check_ruleset(rs))
    return rs, problems


def load_or_raise(paths=None) -> RuleSet:
    rs, problems = load(paths, check=False)
    if problems.errors:
        raise RuleSetError(problems)
    return rs


def _signature(path: Path) -> tuple:
    files = rule_files(path) if path.is_dir() else [path]
    sig = []
    for f in files:
        try:
            st = f.stat()
            sig.append((str(f), st.st_mtime_ns, st.st_size))
        except OSError:
            sig.append((str(f), None, None))
    return tuple(sig)


class RuleCache:
    """The current rule set of a folder: reloaded when a file is edited, added or removed.

    Compiled rulesets are named by content, so an edit registers new ones without a restart.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple, Evaluator]] = {}

    def evaluator(self, path=None) -> Evaluator:
        p = Path(path) if path else default_rules_dir()
        key = str(p.resolve())
        sig = _signature(p)
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] == sig:
                return hit[1]
            ev = Evaluator(load_or_raise(p))
            self._cache[key] = (sig, ev)
            return ev

    def clear(self):
        with self._lock:
            self._cache.clear()


cache = RuleCache()
