"""An impact report shown: lines for the terminal, sheets (for a report workbook or for
Excel's "Preview rule change"), and a new .xlsx file holding those sheets."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from .impact import BLANK, EARLIER, MOVED, ImpactReport, describe
from .i18n import Translator
from .model import RuleSet
from .recalc import IMPACT_ROWS_SHEET, IMPACT_SHEET, LANGS, level_chart, translator
from .values import display
from .workbook import BarChart, CellFormat, ChartSeries, NewSheet
from .xlsx_write import text_width

SUMMARY = IMPACT_SHEET
ROWS = IMPACT_ROWS_SHEET
ROWS_SHOWN = 20  # changed rows listed in the terminal; --json and the report list more
WEEKS_SHOWN = 8  # weeks from the as-of week in the terminal (earlier and later ones summed)
MAX_ROWS_ON_SHEET = 100_000
BOLD = CellFormat(bold=True)


def _n(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def _rules_line(label: str, h: str) -> str:
    return f"{label} ({h[:15]}...)" if h else label


# ------------------------------------------------------------------ terminal
def text_lines(rep: ImpactReport, rows_shown: int = ROWS_SHOWN) -> list[str]:
    books = ", ".join(os.path.basename(w) for w in rep.workbooks)
    out = [f"Impact of {_rules_line(rep.new, rep.new_hash)}",
           f"  against {_rules_line(rep.base, rep.base_hash)}",
           f"  on {books}, as of {rep.as_of:%Y-%m-%d %H:%M}: {describe(rep)}"]
    for note in rep.notes:
        out.append(f"  note: {note}")
    if rep.problems_before != rep.problems_after:
        out.append(f"  rows with problems: {rep.problems_before} -> {rep.problems_after}")
    if not rep.changed:
        return out
    for c in rep.changes:
        if not c.changed or c.kind == "overdue":
            continue
        verb = "move" if c.kind == "due" else "change"
        out.append("")
        out.append(f"{c.label} ({c.decision}): {c.changed} of {c.rows} rows {verb}")
        rows = [[f, t, str(n)] if f != MOVED else ["moved by", t, str(n)] for f, t, n in c.table()]
        out += _table(["from", "to", "rows"], rows[:15])
        if len(rows) > 15:
            out.append(f"  ... and {len(rows) - 15} more (--json lists them all)")
    if rep.became_overdue or rep.no_longer_overdue:
        out.append("")
        out.append(f"Overdue: {len(rep.became_overdue)} rows become overdue, {len(rep.no_longer_overdue)} stop being overdue")
    for s in rep.schedules:
        if s.before == s.after and s.rate_before == s.rate_after:
            continue
        groups = s.groups()
        out.append("")
        out.append(f"{s.due} per week" + (f", by {s.by}" if s.by else "") + " (before -> after)")
        weeks = _weeks_shown(s, rep.as_of)
        rows = []
        for title, keys in weeks:
            rows.append([title] + [f"{sum(s.before[(w, g)] for w in keys)} -> {sum(s.after[(w, g)] for w in keys)}" for g in groups])
        if s.has_rate:
            rows.append(["per week at the cadence"] + [f"{_n(s.rate_before[g])} -> {_n(s.rate_after[g])}" for g in groups])
        out += _table(["week"] + [g or "-" for g in groups], rows)
    changed_totals = [t for t in rep.totals if t.before != t.after]
    if changed_totals:
        out.append("")
        out.append("Totals (before -> after)")
        out += _table(["result", "before", "after", "difference"],
                      [[t.label, _n(t.before), _n(t.after), ("+" if t.after >= t.before else "") + _n(t.after - t.before)]
                       for t in changed_totals])
    out.append("")
    out.append(f"Rows that change ({len(rep.changed_rows)}):")
    labels = {c.name: c.label for c in rep.changes}
    for ref, ch in rep.changed_rows[:rows_shown]:
        what = "; ".join(f"{labels[k]} {_shown(a)} -> {_shown(b)}" for k, (a, b) in ch.items())
        out.append(f"  {os.path.basename(ref.workbook)} {ref.sheet} row {ref.row}" + (f" ({ref.key})" if ref.key is not None else "") + f": {what}")
    if len(rep.changed_rows) > rows_shown:
        out.append(f"  ... and {len(rep.changed_rows) - rows_shown} more (--json or --output lists them)")
    return out


def _shown(v) -> str:
    from .impact import _text

    return _text(v)


def _weeks_shown(s, as_of: dt.datetime) -> list[tuple[str, list[str]]]:
    weeks = s.weeks()
    monday = (as_of.date() - dt.timedelta(days=as_of.weekday()))
    shown = [(monday + dt.timedelta(weeks=k)).isoformat() for k in range(WEEKS_SHOWN)]
    out = []
    if EARLIER in weeks:
        out.append(("earlier (overdue)", [EARLIER]))
    out += [(f"week of {w}", [w]) for w in shown if w in weeks]
    later = [w for w in weeks if w != EARLIER and w > shown[-1]]
    if later:
        out.append(("later", later))
    return out


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max([text_width(h)] + [text_width(r[k]) for r in rows]) for k, h in enumerate(head)]

    def line(cells):
        return "  " + "  ".join(c + " " * (w - text_width(c)) for c, w in zip(cells, widths)).rstrip()

    return [line(head)] + [line(r) for r in rows]


# ------------------------------------------------------------------ sheets
def sheets(rep: ImpactReport, rs: RuleSet | None = None, lang: str | None = None) -> list[NewSheet]:
    """The report as two sheets: the summary (tables, each with its chart beside it) and
    every changed cell (one line each, filterable). Texts in the workbook's language."""
    lang = lang or rep.language
    tr = translator(rs, lang) if rs is not None else Translator(lang)
    zh = lang == "zh"

    def value(name, v: str) -> str:
        if v == BLANK:
            return tr(BLANK)
        return rs.aliases.written(name, v, zh) if rs is not None and rs.aliases else v

    rows: list[list] = []
    row_formats: dict[int, CellFormat] = {}
    charts: list[BarChart] = []

    def add(row=(), bold=False) -> int:
        rows.append(list(row))
        if bold:
            row_formats[len(rows) - 1] = BOLD
        return len(rows) - 1

    def chart(title, top, first, last, series):
        end = level_chart(charts, title, top, first, last, series)
        while len(rows) < end:
            add()

    add([tr("Rule change impact")], True)
    add([tr("Workbook"), ", ".join(os.path.basename(w) for w in rep.workbooks)])
    add([tr("As of"), display(rep.as_of)])
    add([tr("Rules in force"), rep.base])
    add([tr("Rules hash"), rep.base_hash])
    add([tr("New rules"), rep.new])
    add([tr("Rules hash"), rep.new_hash])
    add([tr("Rows compared"), rep.rows])
    add([tr("Rows that change"), len(rep.changed_rows)])
    if not rep.changed:
        add([tr("No change: the new rules give the same results on every row")], True)
    if rep.problems_before or rep.problems_after:
        add([tr("Rows with problems"), rep.problems_before, rep.problems_after])
    for note in rep.notes:
        add([tr("note"), note])
    add()
    add([tr("Result"), tr("Decision"), tr("Rows"), tr("Changed")], True)
    for c in rep.changes:
        if c.kind != "overdue":
            add([tr.label(c.label), c.decision, c.rows, c.changed])
    add([tr("Become overdue"), None, None, len(rep.became_overdue)])
    add([tr("No longer overdue"), None, None, len(rep.no_longer_overdue)])
    add()
    if rep.totals:
        add([tr("Totals"), tr("Before"), tr("After"), tr("Difference")], True)
        for t in rep.totals:
            add([tr.label(t.label), t.before, t.after, t.after - t.before])
        add()
    for c in rep.changes:
        if not c.changed or c.kind == "overdue":
            continue
        head = tr.fmt("{label}: from -> to", label=c.label)
        top = add([head, tr("Rows")], True)
        first = len(rows)
        for f, t, n in c.table()[:40]:
            text = (tr("moved by") + " " + t) if f == MOVED else f"{value(c.name, f)} -> {value(c.name, t)}"
            add([text, n])
        chart(head, top, first, len(rows) - 1, [ChartSeries(first, len(rows) - 1, 1, tr("Rows"))])
        add()
    for s in rep.schedules:
        groups = s.groups()
        by = tr.label(s.by) if s.by else ""
        if s.has_rate:
            head = tr.fmt("{label_due} per week at the cadence, by {label_by}", label_due=s.due, label_by=s.by or "")
            top = add([head, tr("Before"), tr("After")], True)
            first = len(rows)
            for g in groups:
                add([value(s.group_name, g) if g else "-", round(s.rate_before[g], 2), round(s.rate_after[g], 2)])
            chart(head, top, first, len(rows) - 1, [ChartSeries(first, len(rows) - 1, 1, tr("Before")),
                                                   ChartSeries(first, len(rows) - 1, 2, tr("After"))])
            add()
        head = tr.fmt("{label_due} per week", label_due=s.due)
        top = add([head, tr("Before"), tr("After")], True)
        first = len(rows)
        for w in s.weeks():
            add([tr("earlier (overdue)") if w == EARLIER else w,
                 sum(s.before[(w, g)] for g in groups), sum(s.after[(w, g)] for g in groups)])
        last = len(rows) - 1
        chart(head, top, first, last, [ChartSeries(first, last, 1, tr("Before")), ChartSeries(first, last, 2, tr("After"))])
        add()
        if s.by:
            add([tr.fmt("{label_due} per week, by {label_by}", label_due=s.due, label_by=s.by), by, tr("Before"), tr("After")], True)
            for w in s.weeks():
                for g in groups:
                    if s.before[(w, g)] or s.after[(w, g)]:
                        add([tr("earlier (overdue)") if w == EARLIER else w, value(s.group_name, g), s.before[(w, g)], s.after[(w, g)]])
            add()
    widths = {0: min(max(text_width(str(r[0])) for r in rows if r and r[0] is not None and len(r) > 1) * 1.1 + 2, 48),
              1: 16, 2: 12, 3: 12, 4: 2}
    summary = NewSheet(tr(SUMMARY), rows, widths=widths, row_formats=row_formats, charts=charts, fit_width=True,
                       also=_others(SUMMARY, lang))

    head = [tr("Workbook"), tr("Sheet"), tr("Row"), tr("Key"), tr("Result"), tr("From"), tr("To")]
    lines: list[list] = [head]
    labels = {c.name: c.label for c in rep.changes}
    cut = False
    for ref, ch in rep.changed_rows:
        if len(lines) > MAX_ROWS_ON_SHEET:
            cut = True
            break
        for name, (a, b) in ch.items():
            lines.append([os.path.basename(ref.workbook), ref.sheet, ref.row, ref.key, tr.label(labels[name]),
                          _cell(name, a, value), _cell(name, b, value)])
    if cut:
        lines.append([None, None, None, None, tr("note"), tr("more rows are not listed"), tr("use --json to see them all")])
    changed = NewSheet(tr(ROWS), lines, widths={0: 18, 1: 14, 2: 8, 3: 14, 4: 22, 5: 30, 6: 30},
                       row_formats={0: BOLD}, freeze_rows=1, autofilter=True, also=_others(ROWS, lang))
    return [summary, changed]


def _others(name: str, lang: str) -> tuple[str, ...]:
    """The sheet's names in the other languages: a report an earlier run wrote under one is replaced."""
    return tuple(Translator(x)(name) for x in LANGS if x != lang)


def _cell(name, v, value):
    from .impact import _norm, _text

    v = _norm(v)
    if v is None:
        return None
    if isinstance(v, (int, float, dt.date)) and not isinstance(v, bool):
        return v
    return value(name, _text(v))


# ------------------------------------------------------------------ a report workbook
def check_output(path, like=None, force: bool = False) -> None:
    """Refuse, before the rows are evaluated, a report destination write_xlsx could not use."""
    from .files import check_destination

    check_destination(like or path, Path(path), force)


def write_xlsx(sheets_: list[NewSheet], path, like=None, force: bool = False) -> Path:
    """A new workbook of these sheets (charts included), written beside and moved over
    `path` in one step, or not at all. An existing file is replaced only with `force`;
    a new one gets the mode of `like` (the workbook read)."""
    import openpyxl
    from openpyxl.chart import BarChart as XBar, Reference
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from .files import make_temp, replace

    from .files import check_destination

    dst = Path(path)
    check_destination(like or dst, dst, force)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for ns in sheets_:
        ws = wb.create_sheet(ns.name[:31])
        for r in ns.rows:
            ws.append([_xl(v) for v in r])
        for i, f in ns.row_formats.items():
            if f.bold:
                for cell in ws[i + 1]:
                    cell.font = Font(bold=True)
        for (i, j), f in ns.formats.items():
            if f.bold:
                ws.cell(i + 1, j + 1).font = Font(bold=True)
        for j, w in (ns.widths or {}).items():
            ws.column_dimensions[get_column_letter(j + 1)].width = w
        for i, r in enumerate(ns.rows):
            for j, v in enumerate(r):
                if isinstance(v, dt.datetime):
                    ws.cell(i + 1, j + 1).number_format = "yyyy-mm-dd hh:mm"
                elif isinstance(v, dt.date):
                    ws.cell(i + 1, j + 1).number_format = "yyyy-mm-dd"
        if ns.freeze_rows:
            ws.freeze_panes = ws.cell(ns.freeze_rows + 1, 1)
        if ns.autofilter and ns.rows:
            ws.auto_filter.ref = f"A1:{get_column_letter(max(len(ns.rows[0]), 1))}{len(ns.rows)}"
        for ch in ns.charts:
            c = XBar()
            c.type = "bar" if ch.horizontal else "col"
            c.title = ch.title
            first, last, col = ch.categories
            for s in ch.series:
                data = Reference(ws, min_col=s.col + 1, min_row=s.first + 1, max_row=s.last + 1)
                c.add_data(data, titles_from_data=False)
                c.series[-1].tx = None
                if s.name:
                    from openpyxl.chart.series import SeriesLabel

                    c.series[-1].tx = SeriesLabel(v=s.name)
            c.set_categories(Reference(ws, min_col=col + 1, min_row=first + 1, max_row=last + 1))
            c.width, c.height = ch.size[0] * 2.3, ch.size[1] * 0.5
            ws.add_chart(c, f"{get_column_letter(ch.anchor[1] + 1)}{ch.anchor[0] + 1}")
    fd, tmp = make_temp(dst)
    try:
        with os.fdopen(fd, "wb") as f:
            wb.save(f)
        replace(tmp, dst, Path(like) if like else dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return dst


def _xl(v):
    if isinstance(v, tuple):
        return ", ".join(map(str, v))
    if v is not None and not isinstance(v, (str, int, float, bool, dt.date, dt.time)):
        return display(v)
    return v
