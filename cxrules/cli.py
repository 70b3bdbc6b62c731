"""The `cxrules` command: thin over the library; the only module that imports click."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from . import __version__, rulesets
from .problems import CxError, RuleSetError

RULES_HELP = "Rule file or folder (default: ./rules, else the bundled rules)."


# Text from workbooks and rule files (cell text, sheet and file names, rule cells) reaches
# the terminal: escape sequences, carriage returns and bidi overrides in it are shown as
# \x1b, \x0d, \u202e, never obeyed. Newlines and tabs stay: they lay out the output.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text) -> str:
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", str(text))


def _echo(text="", **kw):
    click.echo(printable(text), **kw)


def _echo_json(obj, **kw):
    """JSON escapes C0 itself; the rest go in as \\u escapes, which read back the same."""
    text = json.dumps(obj, ensure_ascii=False, indent=2, **kw)
    click.echo(_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


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
            raise click.ClickException(printable(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cxrules")
def cli():
    """Customer-experience rules as decision tables, for Excel workbooks."""


def _rules_arg(positional, option):
    """check and test take the rules as an argument or, like every command, as --rules."""
    if positional and option and Path(positional) != Path(option):
        raise click.UsageError(f"the rules are given twice ({positional} and --rules {option}); give one")
    return positional or option


@cli.command()
@click.argument("rules", required=False, type=click.Path())
@click.option("--rules", "rules_opt", type=click.Path(), help=RULES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
def check(rules, rules_opt, as_json):
    """Check rule files, or a rules workbook (rules.xlsx): syntax, types, names, overlaps, gaps, unreachable rows, loops.

    Exits 1 if there are errors; warnings alone exit 0.
    """
    path = _rules_path(_rules_arg(rules, rules_opt))
    if path.suffix.lower() in (".xlsx", ".xlsm"):  # a rules workbook: problems by sheet and cell
        from .rulebook import check_book_counts

        problems, n, k = check_book_counts(path)
        files = [path.name]
    else:
        rs, problems = rulesets.load(path)
        k = sum(1 for t in rs.tables.values() if hasattr(t, "journey"))
        files, n = rs.files, len(rs.tables) - k
    errors, warnings = problems.errors, problems.warnings
    if as_json:
        _echo_json({
            "rules": str(path),
            "files": files,
            "errors": len(errors),
            "warnings": len(warnings),
            "problems": [p.to_dict() for p in problems],
        })
    else:
        for p in problems:
            _echo(str(p))
        _echo(_summary(len(errors), len(warnings), len(files)) + f" ({n} decision{'' if n == 1 else 's'}"
              + (f", {k} journey{'' if k == 1 else 's'})" if k else ")"))
    sys.exit(1 if errors else 0)


def _test_book(path: Path, decision, verbose):
    """`cxrules test rules.xlsx`: the examples of a rules workbook, each failure named by its cell."""
    from .problems import cell_ref
    from .rulebook import check, read_workbook

    book = read_workbook(path)
    names = [t.decision for t in book.tables + book.journeys]
    unknown = [d for d in decision if d not in names]
    if unknown:
        raise click.UsageError(f"no decision or journey named '{unknown[0]}'; they are: {', '.join(names)}")
    problems, _, ran = check(book, path.name, examples=list(decision) or True)
    if problems.errors:
        for p in problems.errors:
            _echo(str(p), err=True)
        raise click.ClickException(printable(f"the rules in {path} have errors; fix them first (cxrules check {path})"))
    for r, p in ran:
        if p is not None:
            where = cell_ref(p.sheet, p.cell) if p.sheet and p.cell else r.table
            _echo(f"FAIL {path.name}, {where}: " + r.describe().split(": ", 1)[1])
        elif verbose:
            _echo(f"ok   {r.table} example {r.index}")
    failed = sum(p is not None for _, p in ran)
    _echo(f"{len(ran) - failed} passed, {failed} failed")
    if not ran:
        _echo("no examples found: add rows to the '<table> examples' sheets")
    sys.exit(1 if failed else 0)


@cli.group("rules")
def rules_group():
    """Rules as a workbook: export every decision table and journey to a sheet, import the edited workbook."""


@rules_group.command("export")
@click.argument("args", nargs=-1, type=click.Path())
def rules_export(args):
    """Write the rules as a workbook: cxrules rules export [RULES] rules.xlsx."""
    from .rulebook import export_book

    if len(args) not in (1, 2):
        raise click.UsageError("give the workbook to write, and before it the rules folder if not ./rules: "
                               "cxrules rules export [RULES] rules.xlsx")
    rules, dst = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    src = _rules_path(rules)
    rep = export_book(src, dst)
    _echo(f"wrote {dst}: {rep['tables']} decision tables" + (f", {rep['journeys']} journeys" if rep["journeys"] else "")
          + f" from {rep['files']} files in {src}")


@rules_group.command("import")
@click.argument("workbook", type=click.Path())
@click.argument("rules", required=False, type=click.Path())
def rules_import(workbook, rules):
    """Write a rules workbook back into the rule files (changed lines only)."""
    from .rulebook import import_book

    if rules:
        folder = Path(rules)
    else:
        folder, _ = rulesets.default_rules_origin()
        if folder == rulesets.bundled_rules_dir():  # never into cxrules' own copy
            raise click.UsageError("give the rules folder to write into: cxrules rules import rules.xlsx RULES "
                                   "(there is no ./rules here; 'cxrules init' makes one)")
    res = import_book(workbook, folder)
    for name in res.changed:
        _echo(f"changed {folder / name}")
    for name in res.created:
        _echo(f"created {folder / name}")
    for name, dec in res.rewritten:
        _echo(f"  {name}: '{dec}' written afresh (its columns or layout changed)")
    for dec in res.kept:
        _echo(f"  decision '{dec}' has no sheet in the workbook; kept as it is")
    for name in res.kept_journeys:
        _echo(f"  journey '{name}' has no sheet in the workbook; kept as it is")
    for name in res.kept_examples:
        _echo(f"  the examples of '{name}' have no sheet in the workbook; kept as they are")
    if res.old_errors:
        _echo(f"  the rule files already had {res.old_errors} error(s) the workbook did not fix; see cxrules check {folder}")
    if not res.changed and not res.created:
        _echo(f"nothing changed in {folder}")


@cli.command("test")
@click.argument("rules", required=False, type=click.Path())
@click.option("--rules", "rules_opt", type=click.Path(), help=RULES_HELP)
@click.option("--decision", "-d", multiple=True, help="Only the examples of this decision (repeatable).")
@click.option("--verbose", "-v", is_flag=True, help="List passing examples too.")
def test_cmd(rules, rules_opt, decision, verbose):
    """Run every `examples:` row of the rule files (or of a rules workbook); show expected vs got for failures."""
    from .testing import run_examples

    given = _rules_arg(rules, rules_opt)
    if given and Path(given).suffix.lower() in (".xlsx", ".xlsm"):
        return _test_book(Path(given), decision, verbose)
    rs = _load_or_exit(given)
    unknown = [d for d in decision if d not in rs.tables]
    if unknown:
        raise click.UsageError(f"no decision named '{unknown[0]}'; decisions are: {', '.join(rs.tables)}")
    results = run_examples(rs, list(decision) or None)
    failed = [r for r in results if not r.passed]
    for r in results:
        if not r.passed:
            _echo("FAIL " + r.describe())
        elif verbose:
            _echo(f"ok   {r.table} example {r.index}")
    _echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if not results:
        _echo("no examples found: add 'examples:' to the decision tables")
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
    _echo(render(do_explain(Evaluator(rs), decision, given, _as_of(as_of), typed=True)), nl=False)


@cli.command()
@click.option("--rules", type=click.Path(), help=RULES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def decisions(rules, as_json):
    """List the decisions, their inputs (with the workbook columns they read) and outputs."""
    from .vocabulary import describe

    rs = _load_or_exit(rules)
    info = describe(rs)
    if as_json:
        _echo_json(info)
        return
    for d in info:
        _echo(f"{d['decision']}: {d['title']} (hit policy {d['hit']})")
        for i in d["inputs"]:
            _echo(f"  in   {i['name']} ({i['type']}) <- {i['source']}")
        for o in d["outputs"]:
            _echo(f"  out  {o['name']} ({o['type']}) -> {', '.join(o['columns'])}")


def _size_option(ctx, param, value):
    from .package_guard import parse_size

    try:
        return None if value is None else parse_size(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _ratio_option(ctx, param, value):
    from .package_guard import parse_ratio

    try:
        return None if value is None else parse_ratio(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@cli.command()
@click.argument("workbooks", nargs=-1, required=True, type=click.Path())
@click.option("--rules", type=click.Path(), help=RULES_HELP)
@click.option("--as-of", "as_of", help="The moment 'now' is, e.g. '2026-11-23 09:30' (default: now in the rules' time zone).")
@click.option("--output", "-o", type=click.Path(), help="Write here instead of in place (a file for one workbook, or a folder).")
@click.option("--force", is_flag=True, help="Replace an existing workbook named by --output.")
@click.option("--dry-run", is_flag=True, help="Compute and report, but write nothing.")
@click.option("--dayfirst", is_flag=True, help="Read dates written as text like 23/11/2026 day first.")
@click.option("--header-row", type=click.IntRange(1, 1048576), help="The row of the headers, when they are below the first 30 rows.")
@click.option("--map", "maps", multiple=True, metavar='"HEADER=name"',
              help="Read a header as one of the rules' names, e.g. --map \"Spend 12m (CNY)=monetary\" (repeatable; Sheet!Header for one sheet). Wins over the workbook's CX settings sheet.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--silent", "-s", is_flag=True, help="No progress bar and no summary table.")
@click.option("--strict", is_flag=True, help="Exit 1 if any row has a problem (default: only if a workbook fails).")
@click.option("--max-part-size", metavar="SIZE", callback=_size_option,
              help="Zip bomb guard: refuse a workbook with a part that unpacks to more than SIZE (default 2G; or set CXRULES_MAX_PART_SIZE).")
@click.option("--max-total-size", metavar="SIZE", callback=_size_option,
              help="Zip bomb guard: refuse a workbook that unpacks to more than SIZE in all (default 4G; or set CXRULES_MAX_TOTAL_SIZE).")
@click.option("--max-ratio", metavar="N", callback=_ratio_option,
              help="Zip bomb guard: refuse a workbook with a part over 1 MB packed more than N to 1 (default 100; or set CXRULES_MAX_RATIO).")
def recalc(workbooks, rules, as_of, output, force, dry_run, dayfirst, header_row, maps, as_json, silent, strict, max_part_size, max_total_size, max_ratio):
    """Recalculate workbooks in place: tiers, next contacts, deadlines, escalation, offers.

    Each workbook is written to a temporary file beside it and replaced in one step, or
    left untouched. Overdue rows are coloured; a 'CX summary' and an 'Issues' sheet are
    added ('CX 汇总' and '问题', in Chinese, when the headers are). Row problems are
    listed, and the other rows are still computed.
    """
    from .evaluation import Evaluator
    from .files import is_dir
    from .package_guard import Limits
    from .recalc import recalc as do_recalc

    limits = Limits.from_env(part_size=max_part_size, total_size=max_total_size, ratio=max_ratio)
    mapping = _mapping_option(maps)
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
                            progress=bar or (lambda *a: None), force=force, limits=limits, mapping=mapping)
        except CxError as e:
            failed.append((wb, str(e)))
            _echo(f"Error: {e}", err=True)
            continue
        except Exception as e:  # a bug must not stop the other workbooks; the file is untouched
            msg = f"{wb}: cxrules failed ({type(e).__name__}: {e}); the workbook was not changed. This is a bug: please report it with the workbook if you can"
            failed.append((wb, msg))
            _echo(f"Error: {msg}", err=True)
            continue
        finally:
            if bar:
                bar.close()
        reports.append(rep)
        for p in rep.refused:  # a sheet left unwritten fails the run, said like the other failures
            click.echo(f"Error: {wb}: sheet '{p.sheet}': {p.message}; {p.suggestion}", err=True)
    if as_json:
        _echo_json({"reports": [r.to_dict() for r in reports], "failed": [{"workbook": w, "error": e} for w, e in failed]}, default=str)
    elif not silent:
        for rep in reports:
            _print_report(rep, dry_run)
    problems = sum(len(r.problems) for r in reports)
    refused = any(r.refused or r.not_run for r in reports)  # a decision that applies but could not run fails the run
    sys.exit(1 if failed or refused or (strict and problems) else 0)


@cli.command("run")
@click.argument("source", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--as-of", "as_of", required=True, help="The moment 'now' is, fixed for every row, e.g. '2026-11-23 09:30' (required).")
@click.option("--key", required=True, metavar="COLUMN", help="The column that names each row (customer or case id); the results carry it.")
@click.option("--engine", type=click.Choice(["local", "dask", "spark"]), default="local", show_default=True,
              help="One process, Dask (pip install 'cxrules[dask]') or Spark (pip install 'cxrules[spark]', needs Java).")
@click.option("--rules", type=click.Path(), help=RULES_HELP)
@click.option("--decision", "-d", "decisions", multiple=True, help="Only this decision and those it reads (repeatable; default: every one the columns allow).")
@click.option("--dayfirst", is_flag=True, help="Read dates written as text like 23/11/2026 day first.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.option("--workers", type=click.IntRange(1, 1024), help="Dask: worker processes on this machine (default: one per core).")
@click.option("--scheduler", metavar="ADDRESS", help="Dask: a running cluster's scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--master", metavar="URL", help="Spark: the master (default: the active session, else local[*]).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--silent", "-s", is_flag=True, help="No progress and no summary.")
@click.option("--strict", is_flag=True, help="Exit 1 if any row has a problem, a CSV line is left out, or a key is on more than one row or blank.")
def run_cmd(source, out, as_of, key, engine, rules, decisions, dayfirst, force, workers, scheduler, master, as_json, silent, strict):
    """Evaluate the rules over Parquet or CSV (a file or a folder of them) too big for a sheet.

    Writes the key, every result and each row's problems to OUT: one file (.parquet, or .csv
    by its name) for the local engine, a folder of part files for Dask and Spark. OUT is
    replaced whole or not at all. Percentiles rank each row in the whole table.
    """
    from .run import as_dict, run

    if engine != "dask" and (workers or scheduler):
        raise click.UsageError("--workers and --scheduler are for --engine dask")
    if engine != "spark" and master:
        raise click.UsageError("--master is for --engine spark")
    if scheduler and workers:
        raise click.UsageError("--workers starts workers on this machine; a cluster given by --scheduler has its own; give one")
    rs = _load_or_exit(rules)
    moment = _as_of(as_of)
    show = not silent and not as_json and sys.stderr.isatty()
    bar = _Progress(Path(source).name) if show and engine == "local" else None
    try:
        rep = run(source, out, rs, as_of=moment, key=key, engine=engine, decisions=list(decisions) or None, dayfirst=dayfirst,
                  force=force, progress=bar or (show or None), workers=workers, scheduler=scheduler, master=master)
    finally:
        if bar:
            bar.close()
    if as_json:
        _echo_json(as_dict(rep))
    elif not silent:
        _echo(f"{source} -> {rep.output} ({rep.engine}, as of {moment:%Y-%m-%d %H:%M}): {rep.rows} rows, "
              f"{rep.rows_with_problems} with problems, {', '.join(rep.decisions)} in {rep.seconds:.1f} s")
        for dec, lacks in rep.not_run.items():
            _echo(f"  not run: {dec} (no column for {', '.join(lacks)})")
        for dec, names in rep.missing.items():
            _echo(f"  note: no column for {', '.join(names)} ({dec}); read as blank")
        for line in rep.malformed[:20]:
            _echo(f"  left out: {line}; fix the line and run again")
        if len(rep.malformed) > 20:
            _echo(f"  left out: {len(rep.malformed) - 20} more such lines (--json lists them all)")
        if rep.keys:
            _echo(f"  warning: {rep.keys.summary()}")
    sys.exit(1 if strict and (rep.rows_with_problems or rep.malformed or rep.keys) else 0)


@cli.command("verify")
@click.argument("workbook", type=click.Path())
@click.option("--rules", type=click.Path(), help=RULES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_cmd(workbook, rules, as_json):
    """Check a recalculated workbook: recompute it as of its stamped moment and say whether
    its results still match the rules, and which cells differ if not.

    Exits 0 when every result matches and the rules are the ones stamped (same content
    hash), 1 otherwise (also for a workbook cxrules never stamped).
    """
    from .evaluation import Evaluator
    from .package_guard import Limits
    from .verify import verify

    rs = _load_or_exit(rules)
    bar = _Progress(Path(workbook).name) if not as_json and sys.stderr.isatty() else None
    try:
        rep = verify(workbook, Evaluator(rs), Limits.from_env(), progress=bar or (lambda *a: None))
    finally:
        if bar:
            bar.close()
    if as_json:
        _echo_json(rep.to_dict())
    else:
        _print_verify(rep, _rules_path(rules))
    sys.exit(0 if rep.ok else 1)


@cli.command("impact")
@click.argument("workbooks", nargs=-1, required=True, type=click.Path())
@click.option("--rules", "new", required=True,
              help="The new rules: a folder or file, or a git revision (REV:PATH, e.g. my-branch:rules).")
@click.option("--base", help="The rules in force (default: ./rules, else the bundled rules): a folder or file, "
                             "REV:PATH (HEAD~1:rules), or a revision (v1.2) of the rules folder.")
@click.option("--as-of", "as_of", help="The moment 'now' is, e.g. '2026-11-23 09:30' (default: now in the rules' time zone).")
@click.option("--output", "-o", type=click.Path(), help="Also write the report as a workbook (summary, charts, changed rows).")
@click.option("--force", is_flag=True, help="Replace an existing workbook named by --output.")
@click.option("--dayfirst", is_flag=True, help="Read dates written as text like 23/11/2026 day first.")
@click.option("--header-row", type=click.IntRange(1, 1048576), help="The row of the headers, when they are below the first 30 rows.")
@click.option("--map", "maps", multiple=True, metavar='"HEADER=name"', help="Read a header as a rule name (repeatable), as recalc does.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def impact_cmd(workbooks, new, base, as_of, output, force, dayfirst, header_row, maps, as_json):
    """Show what a rule change does before it goes live: both rule sets evaluated over the
    same rows and as-of; what changes per decision (from -> to), due dates that move, rows
    that become or stop being overdue, due per week by channel or owner, totals (offer
    values), and the rows behind each figure. Nothing in the workbooks is changed.

    Exits 0 when the report is made (whether or not anything changes), 1 on an error.
    """
    from .evaluation import Evaluator
    from .impact import impact
    from .impact_report import check_output, sheets, text_lines, write_xlsx
    from .package_guard import Limits
    from .revisions import load_pair

    mapping = _mapping_option(maps)
    moment = _as_of(as_of)
    if output:
        check_output(output, workbooks[0], force)  # before any work
    try:
        rules_new, rules_base = load_pair(new, base)
    except RuleSetError as e:
        for p in e.problems:
            if p.is_error:
                _echo(str(p), err=True)
        raise click.ClickException(printable("the rules have errors; fix them first (cxrules check)")) from None
    bar = _Progress("impact") if not as_json and sys.stderr.isatty() else None
    try:
        rep = impact(workbooks, Evaluator(rules_new.rs), Evaluator(rules_base.rs), moment, dayfirst=dayfirst,
                     header_row=header_row, mapping=mapping, limits=Limits.from_env(),
                     base_label=rules_base.label, new_label=rules_new.label, progress=bar)
    finally:
        if bar:
            bar.close()
    if output:
        write_xlsx(sheets(rep, rules_new.rs), output, like=workbooks[0], force=force)
    if as_json:
        d = rep.to_dict()
        d["report"] = output
        _echo_json(d)
        return
    for line in text_lines(rep):
        _echo(line)
    if output:
        _echo(f"report written to {output}")


VERIFY_SHOWN = 50  # differences printed; --json lists more


def _print_verify(rep, rules_path) -> None:
    if rep.stamp is None:
        _echo(rep.no_stamp_message)
        return
    from .values import display
    from .verify import shown

    st = rep.stamp
    when = f"as of {display(st.as_of)}"
    n, rows = rep.differing, rep.differing_rows
    if rep.ok:
        _echo(f"{rep.path}: the results match the rules ({when}; {rep.cells} result cells in {rep.rows} rows)")
    elif n:
        _echo(f"{rep.path}: {n} result cell{'s' if n != 1 else ''} in {rows} row{'s' if rows != 1 else ''} "
              f"differ{'s' if n == 1 else ''} from what the rules give ({when})")
    elif rep.not_checked:
        _echo(f"{rep.path}: some results could not be checked ({when})")
    else:
        _echo(f"{rep.path}: the results match, but the rules are not the ones stamped ({when}; "
              f"{rep.cells} result cells in {rep.rows} rows)")
    if rep.hash_matches:
        _echo(f"  rules hash {rep.rules_hash} ({rules_path}), as stamped")
    else:
        _echo(f"  rules hash {rep.rules_hash} ({rules_path}); the stamp says {st.rules_hash}: the rule files changed since")
    if st.revision:
        now = "" if rep.rules_revision == st.revision else f"; the rules are at {rep.rules_revision or 'no git revision'} now"
        _echo(f"  stamped rules revision (git): {st.revision}{now}")
    if st.version != __version__:
        _echo(f"  stamped by cxrules {st.version or '(unknown)'}; this is cxrules {__version__}")
    if st.options:
        _echo(f"  recomputed with the stamped options: {st.options_text}")
    for d in rep.differences[:VERIFY_SHOWN]:
        _echo(f"  {d.sheet} row {d.row}, column {d.column} ({d.header}): stamped {shown(d.stamped)}, recomputed {shown(d.recomputed)}")
    if n > VERIFY_SHOWN:
        _echo(f"  ... and {n - VERIFY_SHOWN} more (--json lists up to {len(rep.differences)})")
    for text in rep.not_checked:
        _echo(f"  not checked: {text}")


def _mapping_option(maps):
    from .mapping import parse_option

    try:
        return parse_option(maps)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


@cli.command("map")
@click.argument("workbook", type=click.Path())
@click.option("--rules", type=click.Path(), help=RULES_HELP)
@click.option("--dry-run", is_flag=True, help="Show the proposal, write nothing.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Propose only headers at least this sure (0 to 1).")
def map_cmd(workbook, rules, dry_run, min_confidence):
    """Propose which of the workbook's headers feed which of the rules' inputs, and write
    the mapping into its 'CX settings' sheet, where recalc and the Excel buttons read it.

    Edit the sheet in Excel to correct it: one row per header (Header, Reads as, and
    optionally the Sheet it applies to).
    """
    from .mapping import Entry
    from .recalc import propose_mapping, save_mapping, workbook_mapping
    from .xlsx_read import open_workbook

    rs = _load_or_exit(rules)
    with open_workbook(workbook) as wb:
        existing = workbook_mapping(wb)
        sheets = [wb.read_sheet(s.name) for s in wb.worksheets]
    found = propose_mapping(sheets, rs, existing, min_confidence)
    if not found:
        _echo(f"{workbook}: every header the rules read is found (or none looks close enough); nothing to map")
        return
    head = ["sheet", "column", "header", "reads as", "confidence"]
    rows = [[p.sheet, p.column, p.header, f"{p.name} ({p.label})", f"{p.confidence:.0%}"] for p in found]
    widths = [max(len(h), *(len(printable(r[k])) for r in rows)) for k, h in enumerate(head)]
    _echo("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r in rows:
        _echo("  " + "  ".join(printable(c).ljust(w) for c, w in zip(r, widths)))
    if dry_run:
        return
    keys = {(e.header.casefold(), e.sheet) for e in existing.entries}
    new = [(Entry(p.header, p.name, p.sheet), round(p.confidence, 2), "proposed by cxrules map; check it")
           for p in found if (p.header.casefold(), p.sheet) not in keys]
    entries = [(e, None, None) for e in existing.entries] + new
    name = save_mapping(workbook, entries)
    _echo(f"{workbook}: wrote {len(new)} mapping{'' if len(new) == 1 else 's'} into its '{name}' sheet; "
          "check them in Excel, then run cxrules recalc")


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False), default="workbooks")
@click.option("--seed", type=int, default=2026, show_default=True, help="The same seed makes the same files.")
def sample(folder, seed):
    """Write the sample workbooks (customers and cases, English and Chinese headers)."""
    from .samples import write_samples

    Path(folder).mkdir(parents=True, exist_ok=True)
    for p in write_samples(folder, seed):
        _echo(str(p))


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
            self.bar = click.progressbar(length=max(total, 1), label=printable(f"{self.label}: {stage}"), file=sys.stderr, show_eta=False)
            self.bar.__enter__()
        self.bar.label = printable(f"{self.label}: {stage}")
        self.bar.update(done - self.done)
        self.done = done

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _print_report(rep, dry_run):
    verb = "would write" if dry_run else ("wrote" if rep.written else "left unchanged")
    _echo(f"{rep.path}: {verb} {rep.output if rep.written or dry_run else ''}".rstrip() + f" (as of {rep.as_of:%Y-%m-%d %H:%M})")
    head = ["sheet", "rows", "decisions", "new columns", "overdue", "problems"]
    table = [[printable(c) for c in (s.sheet + (f" {s.region}" if s.region else ""), s.rows, ", ".join(s.decisions),
                                     len(s.columns_added), s.overdue, s.problems)] for s in rep.sheets]
    widths = [max(len(h), *(len(r[k]) for r in table)) if table else len(h) for k, h in enumerate(head)]
    _echo("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r in table:
        _echo("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    if dry_run:  # which header feeds which name, so a mapping can be checked before writing
        for s in rep.sheets:
            pairs = ", ".join(f"'{h}' -> {n}" for n, h in s.reads.items())
            _echo(f"  reads on '{s.sheet}'{' ' + s.region if s.region else ''}: {pairs}")
    for s in rep.sheets:
        for dec, cols in s.missing.items():
            _echo(f"  note: sheet '{s.sheet}' has no column for {', '.join(cols)} ({dec}); those inputs are blank")
    if rep.skipped:
        _echo(f"  not changed (no rule columns): {', '.join(rep.skipped)}")
    refused = rep.refused
    listed = [p for p in rep.problems if p not in refused] if refused else rep.problems  # those went to stderr
    shown = listed[:20]
    for p in shown:
        _echo("  " + str(p))
    if len(listed) > len(shown):
        _echo(f"  ... and {len(listed) - len(shown)} more problems (see the '{printable(rep.issues_sheet)}' sheet, or --json)")


def _known_names(rs, decision) -> set:
    names = set()
    for t in rs.requires(decision):
        for i in t.inputs:
            names.add(i.name)
            if i.derive:
                names.update(i.derive.reads)
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
                _echo(str(p), err=True)
        raise click.ClickException(printable(f"the rules in {path} have errors; fix them first (cxrules check {path})")) from None


def main():
    cli()


if __name__ == "__main__":
    main()
