"""The rule examples and the Excel-made corpus are copied into tests/ so a fresh clone
tests alone; where the shared originals sit beside the repository, the copies must match."""
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
PAIRS = [(HERE / "examples" / "rules", SHARED / "examples" / "rules"),
         (HERE / "corpus" / "excel-made", SHARED / "corpus" / "excel-made")]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("copy,original", PAIRS, ids=["examples", "corpus"])
def test_copies_match_the_shared_originals(copy, original):
    assert _files(copy), f"{copy} is empty"
    if not original.is_dir():
        pytest.skip("no shared/ beside this clone: the copies are the reference")
    assert _files(copy) == _files(original)
