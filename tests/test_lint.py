"""The code is pyflakes clean: no unused imports or variables, no undefined names."""
import io
from pathlib import Path

from pyflakes.api import checkRecursive
from pyflakes.reporter import Reporter

ROOT = Path(__file__).resolve().parents[1]


def test_pyflakes_finds_nothing():
    out = io.StringIO()
    n = checkRecursive([str(ROOT / d) for d in ("cxrules", "tests", "bench")], Reporter(out, out))
    assert n == 0, out.getvalue()
