"""The README's examples do what it says they do."""
from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from cxrules.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_python_api_example_prints_what_its_comments_say(monkeypatch):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    said = [m.group(1).strip() for m in re.finditer(r"print\(.*?\)\s*#\s*(\[.*\])", code)]
    assert said and out.getvalue().splitlines()[0] == said[0] == "['VIP', 'High value']"
    assert out.getvalue().splitlines()[1] == "[]"


def test_the_main_job_line_recalculates_the_sample(tmp_path, monkeypatch):
    line = README.split("```sh\n", 1)[1].splitlines()[0]
    args = shlex.split(line.split(".venv/bin/cxrules ", 1)[1])
    assert args[:2] == ["recalc", "workbooks/sample_en.xlsx"] and "--as-of" in args
    out = args.index("--output")
    args[out + 1] = str(tmp_path / "sample_en.recalc.xlsx")
    monkeypatch.chdir(ROOT)
    r = CliRunner().invoke(cli, args + ["-s"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sample_en.recalc.xlsx").stat().st_size > 100_000


def _commands(group, prefix=()):
    import click

    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def test_the_command_table_lists_every_command_and_only_real_ones():
    rows = re.findall(r"^\| `cxrules ([^`]*)`", README, re.M)
    named = {tuple(w for w in row.split() if re.fullmatch(r"[a-z]+", w))[:2] for row in rows}
    paths = {path for path, _ in _commands(cli)}
    for path in paths:
        assert path in named or path[:1] in named and len(path) == 1, f"cxrules {' '.join(path)} is not in README's command table"
    for row in named:
        assert row in paths or row[:1] in paths or row == (), f"README's command table names cxrules {' '.join(row)}, which is no command"


def test_every_option_of_every_command_is_documented():
    docs = README + "".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    missing = [f"cxrules {' '.join(path)} {opt}" for path, cmd in _commands(cli) for p in cmd.params
               for opt in p.opts if opt.startswith("--") and opt != "--help" and opt not in docs]
    assert not missing, missing
