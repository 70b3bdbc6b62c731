"""The `cxrules` command: thin over the library; the only module that imports click."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__, rulesets
from .problems import CxError, RuleSetError

RULES_HELP = "Rule file or folder (default: ./rules, else the bundled rules)."


def _rules_path(path):
    return Path(path) if path else rulesets.default_rules_dir()


def _summary(n_err, n_warn, n_files):
    s = lambda n, w: f"{n} {w}{'' if n == 1 else 's'}"  # noqa: E731
    return f"{s(n_err, 'error')}, {s(n_warn, 'warning')} in {s(n_files, 'file')}"


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CxError as e:  # library errors are the user's to fix: a sentence, not a traceback
            raise click.ClickException(str(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cxrules")
def cli():
    """Customer-experience rules as decision tables, for Excel workbooks."""


@cli.command()
@click.argument("rules", required=False, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
def check(rules, as_json):
    """Check rule files: syntax, types, names, overlaps, gaps, unreachable rows, loops.

    Exits 1 if there are errors; warnings alone exit 0.
    """
    path = _rules_path(rules)
    rs, problems = rulesets.load(path)
    errors, warnings = problems.errors, problems.warnings
    if as_json:
        click.echo(json.dumps({
            "rules": str(path),
            "files": rs.files,
            "errors": len(errors),
            "warnings": len(warnings),
            "problems": [p.to_dict() for p in problems],
        }, ensure_ascii=False, indent=2))
    else:
        for p in problems:
            click.echo(str(p))
        n = len(rs.tables)
        click.echo(_summary(len(errors), len(warnings), len(rs.files)) + f" ({n} decision{'' if n == 1 else 's'})")
    sys.exit(1 if errors else 0)


@cli.command("test")
@click.argument("rules", required=False, type=click.Path())
@click.option("--decision", "-d", multiple=True, help="Only the examples of this decision (repeatable).")
@click.option("--verbose", "-v", is_flag=True, help="List passing examples too.")
def test_cmd(rules, decision, verbose):
    """Run every `examples:` row of the rule files; show expected vs got for failures."""
    from .testing import run_examples

    rs = _load_or_exit(rules)
    unknown = [d for d in decision if d not in rs.tables]
    if unknown:
        raise click.UsageError(f"no decision named '{unknown[0]}'; decisions are: {', '.join(rs.tables)}")
    results = run_examples(rs, list(decision) or None)
    failed = [r for r in results if not r.passed]
    for r in results:
        if not r.passed:
            click.echo("FAIL " + r.describe())
        elif verbose:
            click.echo(f"ok   {r.table} example {r.index}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if not results:
        click.echo("no examples found: add 'examples:' to the decision tables")
    sys.exit(1 if failed else 0)


@cli.command()
@click.argument("decision")
@click.argument("values", nargs=-1)
@click.option("--rules", type=click.Path(), help=RULES_HELP)
@click.option("--as-of", "as_of", help="The moment 'now' is, e.g. 2026-11-23 09:30 (default: now).")
def explain(decision, values, rules, as_of):
    """Show, for each rule row, which cells match NAME=VALUE inputs, and the result.

    \b
    Example:
      cxrules explain tier recency=45 frequency=3 monetary=3000
    """
    from .evaluation import Evaluator
    from .explain import explain as do_explain, render

    rs = _load_or_exit(rules)
    if decision not in rs.tables:
        from .problems import did_you_mean

        hint = did_you_mean(decision, rs.tables)
        raise click.UsageError(f"no decision named '{decision}'" + (f"; {hint}" if hint else f"; decisions are: {', '.join(rs.tables)}"))
    given = {}
    for v in values:
        if "=" not in v:
            raise click.UsageError(f"'{v}' is not NAME=VALUE, e.g. recency=45")
        k, _, val = v.partition("=")
        given[k.strip()] = val.strip() or None
    known = _known_names(rs, decision)
    for k in given:
        if k not in known:
            from .problems import did_you_mean

            hint = did_you_mean(k, known)
            raise click.UsageError(f"'{decision}' reads no input or field '{k}'" + (f"; {hint}" if hint else f"; it reads: {', '.join(sorted(known))}"))
    click.echo(render(do_explain(Evaluator(rs), decision, given, _as_of(as_of))), nl=False)


@cli.command()
@click.option("--rules", type=click.Path(), help=RULES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def decisions(rules, as_json):
    """List the decisions, their inputs (with the workbook columns they read) and outputs."""
    from .vocabulary import describe

    rs = _load_or_exit(rules)
    info = describe(rs)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    for d in info:
        click.echo(f"{d['decision']}: {d['title']} (hit policy {d['hit']})")
        for i in d["inputs"]:
            click.echo(f"  in   {i['name']} ({i['type']}) <- {i['source']}")
        for o in d["outputs"]:
            click.echo(f"  out  {o['name']} ({o['type']}) -> {', '.join(o['columns'])}")


@cli.command()
@click.argument("workbooks", nargs=-1, required=True, type=click.Path())
@click.option("--rules", type=click.Path(), help=RULES_HELP)
@click.option("--as-of", "as_of", help="The moment 'now' is, e.g. '2026-11-23 09:30' (default: now in the rules' time zone).")
@click.option("--output", "-o", type=click.Path(), help="Write here instead of in place (a file for one workbook, or a folder).")
@click.option("--force", is_flag=True, help="Replace an existing workbook named by --output.")
@click.option("--dry-run", is_flag=True, help="Compute and report, but write nothing.")
@click.option("--dayfirst", is_flag=True, help="Read dates written as text like 23/11/2026 day first.")
@click.option("--header-row", type=click.IntRange(1, 1048576), help="The row of the headers, when they are below the first 30 rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--silent", "-s", is_flag=True, help="No progress bar and no summary table.")
@click.option("--strict", is_flag=True, help="Exit 1 if any row has a problem (default: only if a workbook fails).")
def recalc(workbooks, rules, as_of, output, force, dry_run, dayfirst, header_row, as_json, silent, strict):
    """Recalculate workbooks in place: tiers, next contacts, deadlines, escalation, offers.

    Each workbook is written to a temporary file beside it and replaced in one step, or
    left untouched. Overdue rows are coloured; a 'CX summary' and an 'Issues' sheet are
    added. Row problems are listed, and the other rows are still computed.
    """
    from .evaluation import Evaluator
    from .files import is_dir
    from .recalc import recalc as do_recalc

    if output and len(workbooks) > 1 and not is_dir(output):
        raise click.UsageError("--output names one file, but several workbooks were given; give a folder, or leave --output out to write in place")
    rs = _load_or_exit(rules)
    ev = Evaluator(rs)
    moment = _as_of(as_of)
    reports, failed = [], []
    show = not silent and not as_json and sys.stderr.isatty()
    for wb in workbooks:
        dst = None
        if output:
            dst = Path(output) / Path(wb).name if is_dir(output) else Path(output)
        bar = _Progress(Path(wb).name) if show else None
        try:
            rep = do_recalc(wb, ev, moment, dst, dry_run=dry_run, dayfirst=dayfirst, header_row=header_row,
                            progress=bar or (lambda *a: None), force=force)
        except CxError as e:
            failed.append((wb, str(e)))
            click.echo(f"Error: {e}", err=True)
            continue
        except Exception as e:  # a bug must not stop the other workbooks; the file is untouched
            msg = f"{wb}: cxrules failed ({type(e).__name__}: {e}); the workbook was not changed. This is a bug: please report it with the workbook if you can"
            failed.append((wb, msg))
            click.echo(f"Error: {msg}", err=True)
            continue
        finally:
            if bar:
                bar.close()
        reports.append(rep)
        for p in rep.refused:  # a sheet left unwritten fails the run, said like the other failures
            click.echo(f"Error: {wb}: sheet '{p.sheet}': {p.message}; {p.suggestion}", err=True)
    if as_json:
        click.echo(json.dumps({"reports": [r.to_dict() for r in reports], "failed": [{"workbook": w, "error": e} for w, e in failed]},
                              ensure_ascii=False, indent=2, default=str))
    elif not silent:
        for rep in reports:
            _print_report(rep, dry_run)
    problems = sum(len(r.problems) for r in reports)
    refused = any(r.refused for r in reports)
    sys.exit(1 if failed or refused or (strict and problems) else 0)


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False), default="workbooks")
@click.option("--seed", type=int, default=2026, show_default=True, help="The same seed makes the same files.")
def sample(folder, seed):
    """Write the sample workbooks (customers and cases, English and Chinese headers)."""
    from .samples import write_samples

    Path(folder).mkdir(parents=True, exist_ok=True)
    for p in write_samples(folder, seed):
        click.echo(str(p))


@cli.command()
@click.argument("folder", type=click.Path(), default="rules")
@click.option("--force", is_flag=True, help="Write into an existing folder, replacing rule files of the same names (others are kept).")
def init(folder, force):
    """Copy the bundled rule files into FOLDER (default: ./rules) to edit them.

    Commands run in the folder that holds ./rules use those rules.
    """
    import shutil

    src = rulesets.bundled_rules_dir()
    dst = Path(folder)
    names = [p.name for p in sorted(src.glob("*.yaml"))]
    if not names:
        raise click.ClickException(f"this cxrules has no bundled rules in {src}; reinstall it (docs/install.md)")
    if dst.exists() and not dst.is_dir():
        raise click.ClickException(f"{dst} is a file, not a folder; give a folder name")
    if dst.is_dir():
        if dst.resolve() == src.resolve():
            raise click.ClickException(f"{dst} is the bundled rules folder itself; give another folder")
        if any(dst.iterdir()) and not force:
            raise click.ClickException(f"{dst} already exists and is not empty; nothing was written. Give a new folder, "
                                       f"or add --force to replace the bundled rule files in it (other files are kept)")
    try:
        dst.mkdir(parents=True, exist_ok=True)
        for n in names:
            shutil.copyfile(src / n, dst / n)
    except OSError as e:
        raise click.ClickException(f"could not write the rules into {dst}: {e.strerror or e}") from None
    click.echo(f"wrote {len(names)} rule files into {dst}: {', '.join(names)}")
    shown = str(dst) if " " not in str(dst) else f'"{dst}"'
    click.echo(f"Edit them (docs/rules.md), then: cxrules check {shown} && cxrules test {shown}")


@cli.command()
@click.option("--rules", type=click.Path(), help=RULES_HELP)
@click.option("--excel", is_flag=True, help="Also require the Excel add-in (Windows).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(rules, excel, as_json):
    """Check this installation: Python, the rule engine, xlwings, the rules, the Excel add-in.

    Says what to do about each problem. Exits 0 only when all is well.
    """
    from .doctor import run

    checks = run(rules, excel=excel)
    problems = [c for c in checks if not c.ok]
    if as_json:
        click.echo(json.dumps({"ok": not problems, "checks": [c.to_dict() for c in checks]}, ensure_ascii=False, indent=2))
    else:
        width = max(len(c.topic) for c in checks)
        for c in checks:
            mark = "ok" if c.ok and not c.info else ("--" if c.ok else "PROBLEM")
            click.echo(f"{mark:<8} {c.topic:<{width}}  {c.found}")
            if c.fix:
                click.echo(f"{'':<8} {'':<{width}}  what to do: {c.fix}")
        n = len(problems)
        click.echo("All is well." if not n else f"{n} problem{'' if n == 1 else 's'} found; each says what to do.")
    sys.exit(1 if problems else 0)


class _Progress:
    """A progress bar on stderr that appears only for work that takes a while."""

    def __init__(self, label):
        self.label, self.bar, self.done = label, None, 0

    def __call__(self, stage, done, total):
        if self.bar is None:
            self.bar = click.progressbar(length=max(total, 1), label=f"{self.label}: {stage}", file=sys.stderr, show_eta=False)
            self.bar.__enter__()
        self.bar.label = f"{self.label}: {stage}"
        self.bar.update(done - self.done)
        self.done = done

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _print_report(rep, dry_run):
    verb = "would write" if dry_run else ("wrote" if rep.written else "left unchanged")
    click.echo(f"{rep.path}: {verb} {rep.output if rep.written or dry_run else ''}".rstrip() + f" (as of {rep.as_of:%Y-%m-%d %H:%M})")
    head = ["sheet", "rows", "decisions", "new columns", "overdue", "problems"]
    table = [[s.sheet + (f" {s.region}" if s.region else ""), str(s.rows), ", ".join(s.decisions), str(len(s.columns_added)), str(s.overdue), str(s.problems)] for s in rep.sheets]
    widths = [max(len(h), *(len(r[k]) for r in table)) if table else len(h) for k, h in enumerate(head)]
    click.echo("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r in table:
        click.echo("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    for s in rep.sheets:
        for dec, cols in s.missing.items():
            click.echo(f"  note: sheet '{s.sheet}' has no column for {', '.join(cols)} ({dec}); those inputs are blank")
    if rep.skipped:
        click.echo(f"  not changed (no rule columns): {', '.join(rep.skipped)}")
    refused = rep.refused
    listed = [p for p in rep.problems if p not in refused] if refused else rep.problems  # those went to stderr
    shown = listed[:20]
    for p in shown:
        click.echo("  " + str(p))
    if len(listed) > len(shown):
        click.echo(f"  ... and {len(listed) - len(shown)} more problems (see the Issues sheet, or --json)")


def _known_names(rs, decision) -> set:
    names = set()
    for t in rs.requires(decision):
        for i in t.inputs:
            names.add(i.name)
            if i.derive:
                names.add(i.derive.field)
        for d in t.due:
            names.add(d.source)
    return names


def _as_of(text):
    if not text:
        return None
    from .values import ValueProblem, parse_datetime

    try:
        return parse_datetime(text)
    except ValueProblem as e:
        raise click.BadParameter(str(e), param_hint="--as-of") from None


def _load_or_exit(rules):
    path = _rules_path(rules)
    try:
        return rulesets.load_or_raise(path)
    except RuleSetError as e:
        for p in e.problems:
            if p.is_error:
                click.echo(str(p), err=True)
        raise click.ClickException(f"the rules in {path} have errors; fix them first (cxrules check {path})") from None


def main():
    cli()


if __name__ == "__main__":
    main()
