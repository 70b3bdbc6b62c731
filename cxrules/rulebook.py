"""Rules as a workbook: every decision table on its own sheet, and back to YAML.

`export_book` writes a rules workbook: a sheet per decision table (its title, hit policy,
description, file and due dates at the top; one column per input and output with a row
per attribute: role, type, unit, label, columns, from, ...; then the rule rows as an
Excel table, with drop-down lists of allowed values), a sheet of examples per table, and
the fields, calendars and values (other spellings) as tables of their own.
`import_book` writes a changed workbook back into the rule files, changing only the text
of what changed (rulebook_yaml.Editor). `check_book` checks a rules workbook with the
loader and checker and names each problem's sheet and cell.
Every text is shown as the rule file has it, so what is not changed comes back the same.
"""
from __future__ import annotations

import datetime as dt
import difflib
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import __version__
from .loader import load_rules, rule_files
from .problems import CxError, Problem, Problems
from .rulebook_yaml import (
    ATTRS,
    CAP_ATTRS,
    ENTRY_KINDS,
    INPUT_ATTRS,
    JOURNEY_PROPS,
    LEAVE_COLS,
    OUTPUT_ATTRS,
    PROPS,
    START_COLS,
    STEP_COLS,
    Col,
    Editor,
    Entry,
    FileSrc,
    JourneyDoc,
    Out,
    Row,
    Structural,
    TableDoc,
    check_flow,
    example_text,
    leave_text,
    read_file,
    render_entries,
    render_journey,
    render_table,
    row_text,
    scalar,
    spec_text,
    specs_of,
    step_lines,
    value_yaml,
)
from .values import TYPES, display
from .yamlsrc import Map, Scalar, Seq, YamlSyntaxError

MARKER = "cxrules rules workbook"
HITS = ("first", "unique", "priority", "any", "rule order", "collect", "collect sum", "collect min", "collect max", "collect count")
ATTR_ROWS = ("type", "unit") + ATTRS[1:]  # `unit` is shown, never read back
ENTRY_COLUMNS = {
    "fields": ("field", ("type", "label", "columns", "optional", "values", "description")),
    "calendars": ("calendar", ("timezone", "hours", "workdays", "holidays", "extra_holidays", "extra_workdays")),
    "contact_caps": ("cap", CAP_ATTRS),
    "values": ("value", ("spellings",)),
}
# What each row of a table sheet is, in English and Chinese (a cell comment).
HELP = {
    "decision": "The table's name; other tables and Excel refer to it. 决策表名称",
    "title": "A human name, shown in reports. 标题",
    "hit": "Which row wins: first, unique, priority, any, rule order, collect (sum/min/max/count). 命中策略",
    "description": "What the table is for. 说明",
    "file": "The rule file the table is in. 所在规则文件",
    "due": "A due date: {from: FIELD, add: OUTPUT, calendar: NAME}. 到期时间",
    "role": "input (what the table looks at) or output (what it decides). 输入 / 输出",
    "type": "number, text, boolean, date, datetime or duration. 类型",
    "unit": "How values are written (shown only). 单位与写法（仅显示）",
    "label": "The column's name for people. 显示名称",
    "columns": "Workbook headers it may have, e.g. [Tier, 客户层级]. 工作簿列名",
    "from": "A derivation: days_since(FIELD), hours_since(FIELD), business_hours_since(FIELD, CALENDAR), percentile(FIELD). 派生",
    "decision ": "Read the output of another table. 读取其他决策表的输出",
    "output": "Which output of that table (default: the same name). 读取的输出",
    "allowed": "The values it may have, e.g. [VIP, Regular]. 允许的值",
    "optional": "true: a sheet without the column still runs (blank). 可选列",
    "values": "Other spellings for this column only, e.g. {SMS: 短信提醒}. 其他写法",
    "highlight": "Row colours by value, e.g. {3: red}. 高亮颜色",
    "description ": "What the column means. 说明",
}
IN_FILL, OUT_FILL = "DDEBF7", "E2EFDA"
# The rows and columns of a journey sheet, in English and Chinese (a cell comment).
JOURNEY_HELP = {
    "journey": "The journey's name: its columns are NAME_step, NAME_due, ... 旅程名称",
    "title": "A human name, shown in reports. 标题",
    "columns": "The header prefix of its columns, English and Chinese, e.g. [Win-back journey, 挽回旅程]. 列名前缀",
    "description": "What the journey is for. 说明",
    "file": "The rule file the journey is in. 所在规则文件",
    "only_if": "Only rows whose cells match, e.g. {tier: VIP}. 适用条件",
    "caps": "Contact caps (sheet contact_caps) that apply, e.g. [reach_70, no_sms_vip]. 触达上限",
    "start from": "The date field a customer enters on; blank: not in the journey. 进入日期字段",
    "start wait": "Enter this long after that date, e.g. 90d. 进入前等待",
    "start step": "The step column's value before the first step is reached. 初始步骤名称",
    "start description": "What the start means. 说明",
    "leave": "Events that take a customer out: a date in 'on' on or after 'after' (start or a step). 退出事件",
    "step": "The steps in order: a customer goes on when the step's 'done' column holds a date. "
            "wait: reached this long after the step before (or 'from') was done; within: reached at once, due this long after; "
            "next: the step after (default the one below) or end. 步骤",
}
JOURNEY_TOP = ("journey",) + JOURNEY_PROPS[:3] + ("file",) + JOURNEY_PROPS[3:] + tuple(f"start {k}" for k in START_COLS)


class RulebookError(CxError):
    pass


# ----------------------------------------------------------------- reading the rule files
@dataclass
class Source:
    folder: Path
    files: list  # FileSrc, in load order

    @property
    def tables(self) -> list[TableDoc]:
        return [d for f in self.files for d in f.docs if isinstance(d, TableDoc)]

    @property
    def journeys(self) -> list[JourneyDoc]:
        return [d for f in self.files for d in f.docs if isinstance(d, JourneyDoc)]

    @property
    def entries(self) -> list[Entry]:
        return [e for f in self.files for e in f.entries]


def _exportable(f: FileSrc) -> None:
    """Rows a sheet cannot show as they are: refused, so an import never changes them unasked."""
    for j in [d for d in f.docs if isinstance(d, JourneyDoc)]:
        for what, rows, like in (("step", j.steps, "{step: Guide, action: ...}"), ("leave: entry", j.leave, "{on: FIELD, step: NAME}"),
                                 ("example", j.examples, "{as_of: 2026-11-01, ...}")):
            for k, r in enumerate(rows, 1):
                if not isinstance(r.node, Map):
                    raise RulebookError(f"{f.name}:{r.node.line}: {what} {k} of journey '{j.name}' is not a mapping like "
                                        f"{like}; fix it (cxrules check) before export or import")
    for t in [d for d in f.docs if isinstance(d, TableDoc)]:
        for k, r in enumerate(t.rules, 1):
            if isinstance(r.node, Seq) and len(r.cells) != len(t.cols) or not isinstance(r.node, (Seq, Map)):
                raise RulebookError(f"{f.name}:{r.node.line}: row {k} of '{t.decision}' does not have one cell per input and "
                                    f"output ({len(t.cols)}); fix it (cxrules check) before export or import")
        for k, r in enumerate(t.examples, 1):
            if not isinstance(r.node, Map):
                raise RulebookError(f"{f.name}:{r.node.line}: example {k} of '{t.decision}' is not a mapping like "
                                    "{tier: VIP}; fix it (cxrules check) before export or import")


def read_source(folder) -> Source:
    folder = Path(folder)
    if not folder.exists():
        raise RulebookError(f"no such rules folder: {folder}")
    src = Source(folder, [])
    for p in rule_files(folder):
        try:
            src.files.append(read_file(p.name, p.read_bytes()))
            _exportable(src.files[-1])
        except YamlSyntaxError as e:
            raise RulebookError(f"{p}:{e.line}: {e.message}; fix it (cxrules check) before export or import") from None
        except UnicodeDecodeError:
            raise RulebookError(f"{p}: is not UTF-8 text; save it as UTF-8") from None
        except OSError as e:
            raise RulebookError(f"{p}: cannot be read ({e.strerror})") from None
    return src


# ----------------------------------------------------------------- writing the workbook
def _number(text: str):
    """The number a cell may hold for `text`, if it reads back as exactly that text."""
    try:
        x = float(text) if any(c in text for c in ".eE") else int(text)
    except (ValueError, TypeError):
        return None
    return x if abs(x) < 1e15 and cell_text(x) == text else None  # Excel keeps 15 digits


def cell_text(v) -> str:
    """A workbook cell as the text a rule file would hold."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, dt.datetime):
        if (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0):
            return v.date().isoformat()
        return v.strftime("%Y-%m-%d %H:%M:%S" if v.second else "%Y-%m-%d %H:%M")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dt.time):
        return v.strftime("%H:%M")
    return str(v).strip()


def _unit(col: Col, model_col) -> str:
    t = (model_col.type if model_col is not None else col.attrs.get("type", "")) or "text"
    if "type" not in col.attrs and col.attrs.get("decision"):  # the type comes from the other table
        return f"{t}, as decision {col.attrs['decision']} gives it"
    frm = col.attrs.get("from", "")
    if t == "number" and frm.startswith("days_since"):
        return "days"
    if t == "number" and "hours_since" in frm:
        return "hours"
    if frm.startswith("percentile"):
        return "0-100"
    return {"duration": "30s 90m 2h 3d 1w", "date": "YYYY-MM-DD", "datetime": "YYYY-MM-DD hh:mm",
            "boolean": "true / false"}.get(t, "")


def _allowed(col: Col, model_col) -> list[str]:
    if model_col is not None and model_col.allowed:
        return [display(v) for v in model_col.allowed]
    text = col.attrs.get("allowed", "")
    if text.startswith("["):
        from .yamlsrc import parse_documents

        try:
            node = parse_documents("x: " + text)[0].get("x")
            return [i.text for i in node.items if isinstance(i, Scalar)]
        except (YamlSyntaxError, AttributeError, IndexError):
            return []
    return [text] if text else []


class _Lists:
    """Drop-down lists, each a column of a hidden sheet (an inline list cannot hold commas)."""

    def __init__(self, wb):
        self.ws = wb.create_sheet("_lists")
        self.ws.sheet_state = "hidden"
        self.n = 0
        self.seen: dict[tuple, str] = {}

    def ref(self, values) -> str:
        key = tuple(values)
        if key not in self.seen:
            from openpyxl.utils import get_column_letter

            self.n += 1
            for i, v in enumerate(values, 1):
                _put(self.ws, i, self.n, v, numeric=False)
            c = get_column_letter(self.n)
            self.seen[key] = f"_lists!${c}$1:${c}${max(1, len(values))}"
        return self.seen[key]


def _validation(ws, lists: _Lists, values, ranges: str, strict: bool):
    from openpyxl.worksheet.datavalidation import DataValidation

    if not values:
        return
    dv = DataValidation(type="list", formula1="=" + lists.ref(values), allow_blank=True,
                        showErrorMessage=strict, errorStyle="warning",
                        error="Not one of the allowed values; keep it only if you mean it. 不是允许的值",
                        errorTitle="cxrules")
    ws.add_data_validation(dv)
    dv.add(ranges)


def _put(ws, r: int, c: int, text, numeric: bool = True):
    """Write a text, as a number when it is one that reads back as the same text; a text
    starting with '=' (the test `= 1`) stays a text, never a formula."""
    if text == "" or text is None:
        return ws.cell(r, c)
    x = _number(text) if numeric and isinstance(text, str) else None
    cell = ws.cell(r, c, x if x is not None else text)
    if isinstance(cell.value, str) and cell.data_type == "f":
        cell.data_type = "s"
    return cell


def _add_table(ws, prefix: str, name: str, used: set, ref: str, headers: list, style: str) -> None:
    """An Excel table over ref; none when two headers are the same (Excel would call the file damaged)."""
    from openpyxl.worksheet.table import Table, TableStyleInfo

    if len({h.casefold() for h in headers}) < len(headers) or not all(headers):
        return
    tab = Table(displayName=_table_name(prefix, name, used), ref=ref)
    tab.tableStyleInfo = TableStyleInfo(name=style, showRowStripes=True)
    ws.add_table(tab)


def _table_name(prefix: str, name: str, used: set) -> str:
    import re

    base = re.sub(r"[^\w]", "_", f"{prefix}_{name}" if name else prefix)
    out, k = base, 2
    while out.lower() in used:
        out, k = f"{base}_{k}", k + 1
    used.add(out.lower())
    return out


def _sheet_title(name: str, used: set) -> str:
    import re

    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "sheet"
    out, k = base, 2
    while out.lower() in used:
        suffix = f" ({k})"
        out, k = base[: 31 - len(suffix)] + suffix, k + 1
    used.add(out.lower())
    return out


def _write_table(wb, t: TableDoc, model, lists: _Lists, titles: set, tnames: set):
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(_sheet_title(t.decision, titles))
    bold = Font(bold=True)
    ws.cell(1, 1, f"{t.decision}: {t.props.get('title', '')}".rstrip(": ")).font = Font(bold=True, size=14)
    r = 2
    for k in ("decision",) + PROPS + ("file",):
        ws.cell(r, 1, k).font = bold
        ws.cell(r, 1).comment = Comment(HELP[k], "cxrules")
        text = t.decision if k == "decision" else t.file if k == "file" else t.props.get(k, "")
        _put(ws, r, 2, text, numeric=False)
        if k == "hit":
            _validation(ws, lists, list(HITS), f"B{r}", strict=False)
        r += 1
    for name, text in t.due:
        ws.cell(r, 1, "due").font = bold
        ws.cell(r, 1).comment = Comment(HELP["due"], "cxrules")
        _put(ws, r, 2, name, numeric=False)
        _put(ws, r, 3, text, numeric=False)
        r += 1
    r += 1
    mcols = {}
    if model is not None:
        mcols = {i.name: i for i in model.inputs} | {o.name: o for o in model.outputs}
    cols = t.cols
    ncol = len(cols)
    ws.cell(r, 1, "role").font = bold
    ws.cell(r, 1).comment = Comment(HELP["role"], "cxrules")
    for j, c in enumerate(cols, 2):
        cell = ws.cell(r, j, c.role)
        cell.fill = PatternFill("solid", fgColor=IN_FILL if c.role == "input" else OUT_FILL)
        cell.font = bold
    first_attr = r + 1
    for a in ATTR_ROWS:
        r += 1
        ws.cell(r, 1, a).font = bold
        ws.cell(r, 1).comment = Comment(HELP.get(a + " " if a in ("decision", "description") else a, ""), "cxrules")
        for j, c in enumerate(cols, 2):
            if a == "unit":
                ws.cell(r, j, _unit(c, mcols.get(c.name))).font = Font(italic=True, color="808080")
            else:
                _put(ws, r, j, c.attrs.get(a, ""), numeric=False)
        if a == "type" and ncol:
            _validation(ws, lists, list(TYPES), f"B{r}:{get_column_letter(ncol + 1)}{r}", strict=True)
        if a == "optional" and ncol:
            _validation(ws, lists, ["true", "false"], f"B{r}:{get_column_letter(ncol + 1)}{r}", strict=True)
    ws.row_dimensions.group(first_attr, r, hidden=False, outline_level=1)
    r += 1
    head = r
    headers = ["rule"] + [c.name for c in cols] + ["note"]
    for j, h in enumerate(headers, 1):
        _put(ws, head, j, h, numeric=False)
    for k, row in enumerate(t.rules, 1):
        ws.cell(head + k, 1, k)
        for j, (c, text) in enumerate(zip(cols, row.cells), 2):
            _put(ws, head + k, j, text)
        _put(ws, head + k, ncol + 2, row.note, numeric=False)
    last = head + max(1, len(t.rules))
    end_col = get_column_letter(len(headers))
    _add_table(ws, "rules", t.decision, tnames, f"A{head}:{end_col}{last}", headers, "TableStyleMedium2")
    body_end = max(last, head + 200)  # a manager adds rows below: they get the lists too
    for j, c in enumerate(cols, 2):
        values = _allowed(c, mcols.get(c.name))
        if values:
            col = get_column_letter(j)
            _validation(ws, lists, (["-"] if c.role == "input" else []) + values, f"{col}{head + 1}:{col}{body_end}",
                        strict=c.role == "output")
    ws.column_dimensions["A"].width = 13
    for j, h in enumerate(headers[1:], 2):
        texts = [h] + [row.cells[j - 2] if j - 2 < len(row.cells) else row.note for row in t.rules]
        attrs = [v for v in (cols[j - 2].attrs.values() if j - 2 < len(cols) else []) if v]
        wide = max(max(len(x) for x in texts) + 3, min(28, max([len(x) for x in attrs] or [0])))
        ws.column_dimensions[get_column_letter(j)].width = min(45, max(8, wide))
    left = Alignment(horizontal="left")
    for row in ws.iter_rows(min_row=head + 1, max_row=last, min_col=2, max_col=len(headers)):
        for cell in row:  # numbers and texts alike, as in the rule file
            cell.alignment = left
    ws.freeze_panes = "B1"
    return ws


def _write_journey(wb, j: JourneyDoc, lists: _Lists, choices: dict, titles: set, tnames: set):
    """A journey's sheet: settings at the top, then its leave events and its steps as tables."""
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(_sheet_title(j.name, titles))
    bold = Font(bold=True)
    ws.cell(1, 1, f"{j.name}: {j.props.get('title', '')}".rstrip(": ")).font = Font(bold=True, size=14)
    r = 2
    for k in JOURNEY_TOP:
        ws.cell(r, 1, k).font = bold
        ws.cell(r, 1).comment = Comment(JOURNEY_HELP[k], "cxrules")
        text = (j.name if k == "journey" else j.file if k == "file" else j.start.get(k[6:], "") if k.startswith("start ")
                else j.props.get(k, ""))
        _put(ws, r, 2, text, numeric=False)
        if k == "start from":
            _validation(ws, lists, choices["dates"], f"B{r}", strict=False)
        r += 1
    names = [row.cells[0] for row in j.steps if row.cells[0]]
    r += 1
    head = r
    for c, h in enumerate(("leave",) + LEAVE_COLS, 1):
        ws.cell(head, c, h).font = bold
    ws.cell(head, 1).comment = Comment(JOURNEY_HELP["leave"], "cxrules")
    for k, row in enumerate(j.leave, 1):
        ws.cell(head + k, 1, k)
        for c, text in enumerate(row.cells, 2):
            _put(ws, head + k, c, text, numeric=False)
    last = head + max(1, len(j.leave))
    _add_table(ws, "leave", j.name, tnames, f"A{head}:{get_column_letter(len(LEAVE_COLS) + 1)}{last}", ["leave", *LEAVE_COLS], "TableStyleLight9")
    _validation(ws, lists, choices["dates"], f"B{head + 1}:B{last + 3}", strict=False)
    _validation(ws, lists, ["start"] + names, f"C{head + 1}:C{last + 3}", strict=False)
    r = last + 4  # room to add leave events above the steps
    for c, h in enumerate(STEP_COLS, 1):
        ws.cell(r, c, h).font = bold
    ws.cell(r, 1).comment = Comment(JOURNEY_HELP["step"], "cxrules")
    for k, row in enumerate(j.steps, 1):
        for c, text in enumerate(row.cells, 1):
            _put(ws, r + k, c, text, numeric=False)
    last = r + max(1, len(j.steps))
    end_col = get_column_letter(len(STEP_COLS))
    _add_table(ws, "steps", j.name, tnames, f"A{r}:{end_col}{last}", list(STEP_COLS), "TableStyleMedium2")
    body_end = max(last, r + 100)
    for col, values in (("channel", choices["channels"]), ("owner", choices["owners"]), ("done", choices["dates"]),
                        ("from", ["start"] + names), ("next", names + ["end"])):
        letter = get_column_letter(STEP_COLS.index(col) + 1)
        _validation(ws, lists, values, f"{letter}{r + 1}:{letter}{body_end}", strict=False)
    left = Alignment(horizontal="left")
    for row in ws.iter_rows(min_row=2, max_row=last, min_col=2, max_col=len(STEP_COLS)):
        for cell in row:
            cell.alignment = left
    for c, h in enumerate(STEP_COLS, 1):
        texts = [h] + [row.cells[c - 1] for row in j.steps] + ([row.cells[c - 2] for row in j.leave if c - 2 < len(LEAVE_COLS)] if c > 1 else [])
        ws.column_dimensions[get_column_letter(c)].width = min(45, max(10, max(len(x) for x in texts) + 3))
    ws.column_dimensions["A"].width = max(18, ws.column_dimensions["A"].width)
    return ws


def _write_examples(wb, t: TableDoc, titles: set, tnames: set):
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(_sheet_title(f"{t.decision} examples", titles))
    ws.cell(1, 1, f"Examples of {t.decision} (cxrules test runs them) 测试用例").font = Font(bold=True, size=14)
    ws.cell(2, 1, "examples of").font = Font(bold=True)
    _put(ws, 2, 2, t.decision, numeric=False)
    head = 4
    headers = ["example"] + list(t.ex_keys)
    for j, h in enumerate(headers, 1):
        _put(ws, head, j, h, numeric=False)
    for k, ex in enumerate(t.examples, 1):
        ws.cell(head + k, 1, k)
        for j, text in enumerate(ex.cells, 2):
            _put(ws, head + k, j, text)
    _add_table(ws, "examples", t.decision, tnames, f"A{head}:{get_column_letter(len(headers))}{head + max(1, len(t.examples))}",
               headers, "TableStyleMedium4")
    for j, h in enumerate(headers, 1):
        texts = [h] + [ex.cells[j - 2] for ex in t.examples if j >= 2]
        ws.column_dimensions[get_column_letter(j)].width = min(40, max(9, max(len(x) for x in texts) + 3))


def _write_entries(wb, kind: str, entries: list, titles: set, tnames: set):
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(_sheet_title(kind, titles))
    what, attrs = ENTRY_COLUMNS[kind]
    extra = [a for e in entries for a in e.attrs if a not in attrs]
    headers = ["file", what] + list(attrs) + list(dict.fromkeys(extra))
    for j, h in enumerate(headers, 1):
        ws.cell(1, j, h).font = Font(bold=True)
    for k, e in enumerate(entries, 2):
        _put(ws, k, 1, e.file, numeric=False)
        _put(ws, k, 2, e.name, numeric=False)
        for j, a in enumerate(headers[2:], 3):
            _put(ws, k, j, e.attrs.get(a, ""), numeric=False)
    _add_table(ws, kind, "", tnames, f"A1:{get_column_letter(len(headers))}{1 + max(1, len(entries))}", headers, "TableStyleMedium7")
    for j, h in enumerate(headers, 1):
        texts = [h] + [e.file if j == 1 else e.name if j == 2 else e.attrs.get(h, "") for e in entries]
        ws.column_dimensions[get_column_letter(j)].width = min(60, max(10, max(len(x) for x in texts) + 2))


def build_workbook(src: Source):
    """The rules workbook (openpyxl) for a rule folder's texts."""
    import openpyxl
    from openpyxl.styles import Font

    rs, problems = load_rules(src.folder)
    wb = openpyxl.Workbook()
    about = wb.active
    about.title = "about"
    lines = [
        MARKER, f"cxrules {__version__}; rules from {src.folder.name}/ ({len(src.files)} files)", "",
        "Each decision table is a sheet: its title, hit policy and due dates at the top, one column per input",
        "(blue) and output (green) with its type, label, columns, allowed values..., then the rule rows.",
        "Its examples are on the sheet '<decision> examples'; fields, calendars and values (other spellings)",
        "have sheets of their own. Cells hold what the rule file holds: '>= 5', '[2..4]', 'VIP, Gold', '-', 14d.",
        "Each journey is a sheet too: its start and settings at the top, its leave events and steps as tables,",
        "its examples on '<journey> examples'; contact caps are on the sheet contact_caps.",
        "Edit, add or delete rows, then:  cxrules check rules.xlsx   and   cxrules rules import rules.xlsx rules",
        "每个决策表一个工作表；编辑后运行 cxrules check rules.xlsx 检查，再用 cxrules rules import 写回规则文件。",
    ]
    for i, line in enumerate(lines, 1):
        about.cell(i, 1, line)
    about["A1"].font = Font(bold=True, size=14)
    about.column_dimensions["A"].width = 110
    lists = _Lists(wb)
    titles, tnames = {"about", "_lists"}, set()
    from openpyxl.utils.exceptions import IllegalCharacterError

    for t in src.tables:
        model = rs.tables.get(t.decision)
        if model is not None and model.loc.file and Path(model.loc.file).name != t.file:
            model = None  # a table defined twice: the model is the other one
        try:
            _write_table(wb, t, model, lists, titles, tnames)
            _write_examples(wb, t, titles, tnames)
        except IllegalCharacterError:
            raise RulebookError(f"{t.file}: table '{t.decision}' holds a control character (e.g. \\x07), which a "
                                "workbook cannot hold; remove it from the rule file") from None
    choices = _journey_choices(src, rs)
    for j in src.journeys:
        try:
            _write_journey(wb, j, lists, choices, titles, tnames)
            _write_examples(wb, j, titles, tnames)
        except IllegalCharacterError:
            raise RulebookError(f"{j.file}: journey '{j.name}' holds a control character (e.g. \\x07), which a "
                                "workbook cannot hold; remove it from the rule file") from None
    for kind in ENTRY_KINDS:
        try:
            _write_entries(wb, kind, [e for e in src.entries if e.kind == kind], titles, tnames)
        except IllegalCharacterError:
            raise RulebookError(f"the {kind} hold a control character (e.g. \\x07), which a workbook cannot hold; "
                                "remove it from the rule file") from None
    wb.move_sheet("_lists", offset=len(wb.sheetnames))
    return wb


def _journey_choices(src: Source, rs) -> dict:
    """The drop-down lists of journey sheets: date fields, and the channels and owners in use."""
    from .yamlsrc import parse_documents

    dates = [n for n, f in rs.fields.items() if f.type in ("date", "datetime")]
    chans = [r.cells[STEP_COLS.index("channel")] for j in src.journeys for r in j.steps]
    for e in src.entries:
        if e.kind == "contact_caps" and e.attrs.get("channels", "").startswith("["):
            try:
                chans += [i.text for i in parse_documents("x: " + e.attrs["channels"])[0].get("x").items]
            except (YamlSyntaxError, AttributeError):
                pass
    owners = [r.cells[STEP_COLS.index("owner")] for j in src.journeys for r in j.steps]
    return {"dates": dates, "channels": list(dict.fromkeys(c for c in chans if c)), "owners": list(dict.fromkeys(o for o in owners if o))}


def export_book(rules, dst) -> dict:
    """Write the rules workbook for a rule folder; replaces dst in one step."""
    from . import files

    src = read_source(rules)
    if not src.files:
        raise RulebookError(f"{rules}: holds no .yaml rule files")
    dst = Path(dst)
    if dst.suffix.lower() != ".xlsx":
        raise RulebookError(f"{dst}: a rules workbook is an .xlsx file; give a name ending in .xlsx")
    if dst.is_dir():
        raise RulebookError(f"{dst}: is a folder; give the workbook's file name")
    if dst.exists() and not _is_rules_book(dst):  # a customer workbook named rules.xlsx, or any other file
        raise RulebookError(f"{dst}: exists and is not a rules workbook, so cxrules will not overwrite it; give another name")
    wb = build_workbook(src)
    fd, tmp = files.make_temp(dst)
    os.close(fd)
    try:
        wb.save(tmp)
        files.replace(tmp, dst, like=src.folder / src.files[0].name)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise files.write_error(dst, dst, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"workbook": str(dst), "tables": len(src.tables), "journeys": len(src.journeys), "files": len(src.files),
            "entries": len(src.entries)}


def _is_rules_book(path: Path) -> bool:
    """Whether a file is a rules workbook (one `export` may write over again)."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - not a workbook openpyxl can read: not a rules workbook
        return False
    try:
        return any(_marker([list(r) for r in ws.iter_rows(max_row=1, values_only=True)], 0) == MARKER for ws in wb.worksheets)
    finally:
        wb.close()


# ----------------------------------------------------------------- reading the workbook
@dataclass
class Book:
    tables: list = field(default_factory=list)  # TableDoc
    entries: list = field(default_factory=list)  # Entry
    problems: list = field(default_factory=list)
    entry_sheets: dict = field(default_factory=dict)  # fields/calendars/values -> its sheet
    journeys: list = field(default_factory=list)  # JourneyDoc


def _ref(r: int, c: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"{get_column_letter(c + 1)}{r + 1}"


def _at(grid, r, c) -> str:
    return cell_text(grid[r][c]) if r < len(grid) and c < len(grid[r]) else ""


def _marker(grid, r) -> str:
    return _at(grid, r, 0).strip().lower()


def _flow_ok(book: Book, sheet: str, ref: str, text: str) -> bool:
    if text.strip()[:1] not in "[{":
        return True
    try:
        check_flow(text.strip())
        return True
    except ValueError as e:
        book.problems.append(Problem(str(e), code="cell", sheet=sheet, cell=ref,
                                     suggestion="write a list as [A, B] and a mapping as {key: value}, or clear the cell"))
        return False


def _file_ok(book: Book, sheet: str, ref: str, text: str) -> bool:
    """A rule file's name: a plain name in the rules folder, never a path out of it."""
    import re

    if re.fullmatch(r"[^/\\:*?\"<>|\x00-\x1f]+\.ya?ml", text) and text.strip(". ") == text.strip() and not text.startswith("."):
        return True
    book.problems.append(Problem(f"'{text}' is not a rule file name", code="sheet", sheet=sheet, cell=ref,
                                 suggestion="write a file name in the rules folder, e.g. tier.yaml"))
    return False


def _read_table(book: Book, name: str, grid) -> TableDoc | None:
    t = TableDoc("", "")
    t.sheet = name
    r, n = 1, len(grid)
    role_row = head = None
    while r < n:
        m = _marker(grid, r)
        if m in ("decision", "title", "hit", "description", "file") and role_row is None:
            text = _at(grid, r, 1)
            if m == "decision":
                t.decision = text
            elif m == "file":
                t.file = text if not text or _file_ok(book, name, _ref(r, 1), text) else ""
            elif text and _flow_ok(book, name, _ref(r, 1), text):
                t.props[m] = text
            t.refs[("prop", m)] = _ref(r, 1)
        elif m == "due":
            text = _at(grid, r, 2)
            if _flow_ok(book, name, _ref(r, 2), text):
                t.due.append((_at(grid, r, 1), text))
                t.refs[("due", _at(grid, r, 1))] = _ref(r, 2)
        elif m == "role":
            role_row = r
        elif m == "rule":
            head = r
            break
        r += 1
    if not t.decision:
        book.problems.append(Problem("the sheet has no decision name next to 'decision'", code="sheet", sheet=name, cell="B2"))
        return None
    if head is None or role_row is None:
        book.problems.append(Problem("the sheet has no 'role' row or no rule table (a row starting with 'rule')", code="sheet", sheet=name, cell="A1"))
        return None
    width = max(len(grid[head]), 1)
    headers = [_at(grid, head, c) for c in range(width)]
    while headers and headers[-1] == "":
        headers.pop()
    has_note = bool(headers) and headers[-1].lower() == "note"
    names = headers[1:-1] if has_note else headers[1:]
    attr_rows = {}
    for rr in range(role_row + 1, head):
        m = _marker(grid, rr)
        if m in ATTRS:
            attr_rows[m] = rr
    for j, cname in enumerate(names, 1):
        if not cname:
            book.problems.append(Problem("a column of the rule table has no name", code="sheet", sheet=name, cell=_ref(head, j)))
            return None
        role = _at(grid, role_row, j).lower() or "input"
        if role not in ("input", "output"):
            book.problems.append(Problem(f"role '{role}' of column '{cname}': write input or output", code="sheet", sheet=name, cell=_ref(role_row, j)))
            role = "input"
        c = Col(cname, role)
        t.refs[("attr", cname, "name")] = _ref(head, j)
        for a, rr in attr_rows.items():
            text = _at(grid, rr, j)
            if text and _flow_ok(book, name, _ref(rr, j), text):
                c.attrs[a] = text
                t.refs[("attr", cname, a)] = _ref(rr, j)
        t.cols.append(c)
    note_col = len(names) + 1
    if not t.file:
        t.file = f"{t.decision}.yaml"
        if not _file_ok(book, name, t.refs.get(("prop", "file"), "B6"), t.file):
            return None
    for rr in range(head + 1, n):
        cells = [_at(grid, rr, j) for j in range(1, len(names) + 1)]
        note = _at(grid, rr, note_col) if has_note else ""
        if not any(cells) and not note:
            continue  # an emptied row (the table is the last thing on its sheet)
        refs = [_ref(rr, j) for j in range(1, len(names) + 1)] + [_ref(rr, note_col)]
        t.rules.append(Row(cells, note, refs=refs))
    return t


def _read_journey(book: Book, name: str, grid) -> JourneyDoc | None:
    j = JourneyDoc("", "")
    j.sheet = name
    n = len(grid)
    leave_head = step_head = None
    for r in range(1, n):
        m = _marker(grid, r)
        if m == "leave" and leave_head is None and step_head is None:
            leave_head = r
        elif m == "step" and _at(grid, r, 1).lower() == "action":
            step_head = r
            break
        elif leave_head is None and m in JOURNEY_TOP:
            text = _at(grid, r, 1)
            ref = _ref(r, 1)
            if m == "journey":
                j.name = text
                j.refs[("prop", "decision")] = ref
            elif m == "file":
                j.file = text if not text or _file_ok(book, name, ref, text) else ""
                j.refs[("prop", "file")] = ref
            elif m.startswith("start "):
                j.refs[("start", m[6:])] = ref
                if text and _flow_ok(book, name, ref, text):
                    j.start[m[6:]] = text
            else:
                j.refs[("prop", m)] = ref
                if text and _flow_ok(book, name, ref, text):
                    j.props[m] = text
    if not j.name:
        book.problems.append(Problem("the sheet has no journey name next to 'journey'", code="sheet", sheet=name, cell="B2"))
        return None
    if step_head is None:
        book.problems.append(Problem("the sheet has no step table (a row starting with 'step', 'action')", code="sheet", sheet=name, cell="A1"))
        return None
    if not j.file:
        j.file = f"{j.name}.yaml"
        if not _file_ok(book, name, j.refs.get(("prop", "file"), "B6"), j.file):
            return None

    def table(head, stop, keys, first):
        """Rows under a header row, each as cells in `keys` order (columns found by their header)."""
        headers = {}
        for c in range(first, len(grid[head])):
            h = _at(grid, head, c)
            if not h:
                continue
            if h not in keys or h in headers:
                book.problems.append(Problem(f"column '{h}' is {'there twice' if h in headers else 'not one of: ' + ', '.join(keys)}",
                                             code="sheet", sheet=name, cell=_ref(head, c)))
                continue
            headers[h] = c
        rows = []
        for rr in range(head + 1, stop):
            refs = [_ref(rr, headers[k]) if k in headers else None for k in keys]
            cells = [_at(grid, rr, headers[k]) if k in headers else "" for k in keys]
            if not any(cells):
                continue
            for k, text, ref in zip(keys, cells, refs):
                if text and not _flow_ok(book, name, ref, text):
                    cells[keys.index(k)] = ""
            rows.append(Row(cells, "", refs=refs))
        return rows

    if leave_head is not None:
        j.leave = table(leave_head, step_head, LEAVE_COLS, 1)
    j.steps = table(step_head, n, STEP_COLS, 0)
    for row in j.steps:
        if row.cells[0]:
            j.refs.setdefault(("attr", row.cells[0], "name"), row.refs[0])
    return j


def _read_examples(book: Book, name: str, grid) -> tuple[str, list, list] | None:
    dec = _at(grid, 1, 1)
    head = next((r for r in range(2, len(grid)) if _marker(grid, r) == "example"), None)
    if not dec or head is None:
        book.problems.append(Problem("an examples sheet needs the decision in B2 and a header row starting with 'example'", code="sheet", sheet=name, cell="A1"))
        return None
    keys = [_at(grid, head, c) for c in range(1, len(grid[head]))]
    while keys and keys[-1] == "":
        keys.pop()
    for j, k in enumerate(keys, 1):
        if k == "" or k in keys[: j - 1]:
            book.problems.append(Problem(f"the examples' column {'has no name' if not k else repr(k) + ' is there twice'}", code="sheet",
                                         sheet=name, cell=_ref(head, j), suggestion="name each column once: an input or output of the table"))
            return None
    rows = []
    for rr in range(head + 1, len(grid)):
        cells = [_at(grid, rr, j) for j in range(1, len(keys) + 1)]
        if not any(cells):
            continue
        rows.append(Row(cells, "", refs=[_ref(rr, j) for j in range(1, len(keys) + 1)]))
    return dec, keys, rows


def _read_entries(book: Book, name: str, grid, kind: str) -> None:
    book.entry_sheets[kind] = name
    headers = [_at(grid, 0, c) for c in range(len(grid[0]))]
    for rr in range(1, len(grid)):
        file, key = _at(grid, rr, 0), _at(grid, rr, 1)
        rest = {h: _at(grid, rr, j) for j, h in enumerate(headers[2:], 2) if h}
        if not key and not any(rest.values()):
            continue
        if file and not _file_ok(book, name, _ref(rr, 0), file):
            continue
        e = Entry(kind, file or f"{kind}.yaml", key, ref=_ref(rr, 1))
        for j, h in enumerate(headers[2:], 2):
            text = rest.get(h, "")
            if h and text and _flow_ok(book, name, _ref(rr, j), text):
                e.attrs[h] = text
                e.refs[h] = _ref(rr, j)
        if not key:
            book.problems.append(Problem(f"a row of the {kind} sheet has no name", code="sheet", sheet=name, cell=_ref(rr, 1)))
            continue
        book.entries.append(e)


def read_grids(grids) -> Book:
    """A rules workbook from its sheets' values: [(sheet name, rows of cell values from A1)]."""
    book = Book()
    examples = {}
    if not any(_marker(g, 0) == MARKER for _, g in grids):
        raise RulebookError(f"this is not a rules workbook (its 'about' sheet does not start with '{MARKER}'); "
                            "make one with: cxrules rules export rules rules.xlsx")
    for name, grid in grids:
        grid = [list(r) for r in grid if r is not None]
        if not grid or name == "_lists":
            continue
        kinds = {ENTRY_COLUMNS[k][0]: k for k in ENTRY_KINDS}
        if _marker(grid, 1) == "decision":
            t = _read_table(book, name, grid)
            if t is not None:
                book.tables.append(t)
        elif _marker(grid, 1) == "journey":
            j = _read_journey(book, name, grid)
            if j is not None:
                book.journeys.append(j)
        elif _marker(grid, 1) == "examples of":
            ex = _read_examples(book, name, grid)
            if ex is not None:
                examples[ex[0]] = (name, ex[1], ex[2])
        elif _marker(grid, 0) == "file" and _at(grid, 0, 1).lower() in kinds:
            _read_entries(book, name, grid, kinds[_at(grid, 0, 1).lower()])
    seen: dict = {}
    for group in (book.tables, book.journeys):
        for t in list(group):
            if t.decision in seen:  # a copied sheet not yet renamed
                what = "journey" if isinstance(t, JourneyDoc) else "decision"
                book.problems.append(Problem(f"{what} '{t.decision}' is also on sheet '{seen[t.decision]}'", code="sheet", sheet=t.sheet,
                                             cell=t.refs.get(("prop", "decision"), "B2"), suggestion=f"give this {'table' if what == 'decision' else what} a name of its own"))
                group.remove(t)
            seen.setdefault(t.decision, t.sheet)
    every = book.tables + book.journeys
    for t in every:
        if t.decision in examples:
            t.ex_sheet, t.ex_keys, t.examples = examples.pop(t.decision)
    for t in every:  # renamed on its sheet: its examples sheet still names the old one
        old = next((d for d, (name, _, _) in examples.items() if name == f"{t.sheet} examples"), None)
        if t.ex_sheet is None and old is not None and old not in {x.decision for x in every}:
            t.ex_sheet, t.ex_keys, t.examples = examples.pop(old)
    for dec, (name, _, _) in examples.items():
        book.problems.append(Problem(f"examples of '{dec}', but no sheet has that decision or journey", code="sheet", sheet=name, cell="B2"))
    return book


def read_workbook(path) -> Book:
    import openpyxl

    from .files import check_input

    path = Path(path)
    check_input(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - openpyxl raises many kinds for a damaged file
        raise RulebookError(f"{path}: cannot be read as a workbook ({type(e).__name__}: {e})") from None
    try:
        grids = [(ws.title, list(ws.iter_rows(values_only=True))) for ws in wb.worksheets]
    finally:
        wb.close()
    book = read_grids(grids)
    book.problems[:0] = _unreadable_cells(path, [name for name, grid in grids if _is_rules_sheet(name, grid)])
    return book


def _is_rules_sheet(name: str, grid) -> bool:
    grid = [list(r) for r in grid if r is not None]
    return bool(grid) and name != "_lists" and (_marker(grid, 1) in ("decision", "journey", "examples of")
                                                 or _marker(grid, 0) == "file")


def _unreadable_cells(path: Path, sheets: list) -> list:
    """Cells whose value cannot be taken as a rule file's text: an Excel error (#N/A), a formula
    never calculated (its value unknown), merged cells (Excel keeps the first cell's value
    only). openpyxl reads the first as the text '#N/A' and the other two as blank cells."""
    from .xlsx_read import CellError, WorkbookError, cell_ref, open_workbook, range_ref

    out = []
    try:
        with open_workbook(path) as wb:
            for name in sheets:
                data = wb.read_sheet(name)
                for i, row in enumerate(data.rows):
                    for j, v in enumerate(row):
                        if isinstance(v, CellError):
                            out.append(Problem(f"the cell holds the Excel error {v.code}; type the value it should have",
                                               code="cell", sheet=name, cell=data.cell_ref(i, j)))
                for r, c in data.formula_cells_without_value:
                    out.append(Problem("a formula that was never calculated, so its value is unknown; type the value, "
                                       "or open the workbook in Excel and save it", code="cell", sheet=name, cell=cell_ref(r, c)))
                for r1, c1, r2, c2 in data.merged:
                    if r2 > 1:  # merging the title row is only looks
                        out.append(Problem(f"merged cells {range_ref(r1, c1, r2, c2)}: each cell of a rules sheet is read on its own "
                                           "and Excel keeps only the first one's value; unmerge them and type each cell",
                                           code="cell", sheet=name, cell=cell_ref(r1, c1)))
    except WorkbookError as e:
        raise RulebookError(str(e)) from None
    return out


# ----------------------------------------------------------------- writing rule files
def _ex_map(keys, cells) -> dict:
    return {k: c for k, c in zip(keys, cells) if c != ""}


class _FileEdit:
    def __init__(self, f: FileSrc):
        self.f = f
        self.ed = Editor(f.text)
        self.nl = f.newline
        self.appended: list[str] = []


def _render_doc(t: TableDoc, nl: str) -> str:
    out = Out()
    render_table(t, out)
    return out.text(nl).rstrip("\r\n")


def _edit_rows(fe: _FileEdit, seq, base: list, new: list, row_fn, edit_fn):
    """Rows of rules: or examples:, matched as a diff: changed rows edited cell by cell,
    new rows written like the row above them, deleted rows removed with their lines, and a
    moved row moved with its line (its comment too)."""
    ed = fe.ed
    if not isinstance(seq, Seq) or seq.flow or not seq.items:
        if [r.key() for r in base] != [r.key() for r in new]:
            raise Structural("rows not in a block list")
        return
    sm = difflib.SequenceMatcher(a=[r.key() for r in base], b=[r.key() for r in new], autojunk=False)
    edits, deleted, inserts = [], [], []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        olds, news = base[i1:i2], new[j1:j2]
        matched = _pairs(olds, news) if tag == "replace" else []
        edits += [(olds[x], news[y]) for x, y in matched]
        deleted += [r for x, r in enumerate(olds) if x not in {m for m, _ in matched}]
        # new rows go after the last old row matched before them (or the block's old rows)
        by_new = dict((y, x) for x, y in matched)
        last = -1
        for y, r in enumerate(news):
            if y in by_new:
                last = by_new[y]
            else:
                inserts.append((i1 + last if last >= 0 else i1 - 1, r))
    lines: dict = {}
    for r in deleted:
        ed.own(r.node)
        if not ed.alone(r.node):
            raise Structural("row shares its line")
        s, e = ed.line_start(r.node.start), ed.line_end(r.node.end)
        ed.replace(s, e, "")
        lines.setdefault(r.key(), []).append(ed.text[s:e])
    for old, nw in edits:
        edit_fn(old, nw)
    groups: dict[int, list] = {}
    for after, r in inserts:
        groups.setdefault(after, []).append(r)
    for after, added in groups.items():
        _insert_rows(fe, base, after, added, row_fn, lines)


def _pairs(olds: list, news: list) -> list[tuple[int, int]]:
    """The changed rows that are edits of each other: a matching in order that keeps the most
    equal cells (a deleted row beside an edited one must not take the edit)."""
    n, m = len(olds), len(news)

    def same(a, b):
        x, y = olds[a].key(), news[b].key()
        return sum(p == q for p, q in zip(x[0], y[0])) + (x[1] == y[1]) + 1

    best = [[0] * (m + 1) for _ in range(n + 1)]
    for a in range(n - 1, -1, -1):
        for b in range(m - 1, -1, -1):
            best[a][b] = max(best[a + 1][b], best[a][b + 1], same(a, b) + best[a + 1][b + 1])
    out, a, b = [], 0, 0
    while a < n and b < m:
        if best[a][b] == same(a, b) + best[a + 1][b + 1]:
            out.append((a, b))
            a, b = a + 1, b + 1
        elif best[a][b] == best[a + 1][b]:
            a += 1
        else:
            b += 1
    return out


def _insert_rows(fe: _FileEdit, base: list, after: int, added: list, row_fn, moved: dict) -> None:
    """New rows after base[after] (before the first row when after is -1), indented and
    aligned like the row above them."""
    ed = fe.ed
    if after >= 0:
        prev = base[after].node
        at = ed.line_end(prev.end)
        prefix_ref = prev
    else:
        prefix_ref = base[0].node
        at = ed.line_start(prefix_ref.start)
    prefix = ed.text[ed.line_start(prefix_ref.start):prefix_ref.start]
    if prefix.strip() != "-":
        raise Structural("row prefix")
    text = "".join(moved[r.key()].pop(0) if moved.get(r.key()) else prefix + row_fn(r, prefix_ref) + fe.nl for r in added)
    if at == len(ed.text) and not ed.text.endswith("\n"):
        text = fe.nl + text.rstrip("\r\n")
    ed.replace(at, at, text)


def _edit_table(fe: _FileEdit, b: TableDoc, t: TableDoc) -> None:
    ed, nl = fe.ed, fe.nl
    if [(c.name, c.role) for c in b.cols] != [(c.name, c.role) for c in t.cols]:
        raise Structural("columns changed")
    if [n for n, _ in b.due] != [n for n, _ in t.due]:
        raise Structural("due dates changed")
    if b.decision != t.decision:  # renamed on its sheet
        ed.set_scalar(b.node.get("decision"), t.decision)
    ed.sync_map(b.node, b.props, t.props, nl, order=("decision",) + PROPS)
    for bc, nc in zip(b.cols, t.cols):
        known = {k: v for k, v in bc.attrs.items() if k in ATTRS}  # a misspelt key has no row: kept as it is
        if known == nc.attrs:
            continue
        if isinstance(bc.node, Map):
            ed.sync_map(bc.node, known, nc.attrs, nl, order=ATTRS)
        elif isinstance(bc.node, Scalar) and not bc.node.is_null:
            ed.own(bc.node)
            ed.replace(bc.node.start, bc.node.end, spec_text(nc.attrs, INPUT_ATTRS if nc.role == "input" else OUTPUT_ATTRS))
        else:
            raise Structural("spec")
    for (n, old), (_, new), (_, _, node) in zip(b.due, t.due, specs_of(b.node.get("due"))):
        if old != new:
            if node is None or not new:
                raise Structural("due")
            ed.set_value(node, new)
    names = [c.name for c in t.cols]

    def rule_row(r: Row, ref) -> str:
        starts = None
        if isinstance(ref, Seq) and ref.flow:
            starts = [c.start - ref.start for c in ref.items]
        return row_text(r.cells, names, r.note, starts)

    def edit_rule(old: Row, new: Row) -> None:
        node = old.node
        if isinstance(node, Seq) and len(node.items) == len(new.cells) and not new.note:
            for cn, o, n in zip(node.items, old.cells, new.cells):
                if o != n:
                    ed.set_scalar(cn, n or "-", aligned=node.flow)
        elif isinstance(node, Map):
            ed.sync_map(node, dict(zip(names + ["note"], old.cells + [old.note])),
                        dict(zip(names + ["note"], new.cells + [new.note])), nl, order=tuple(names) + ("note",), row=True)
        else:
            ed.own(node)
            ed.replace(node.start, node.end, row_text(new.cells, names, new.note))

    _edit_rows(fe, b.node.get("rules"), b.rules, t.rules, rule_row, edit_rule)
    _edit_examples(fe, b, t)


def _edit_examples(fe: _FileEdit, b, t) -> None:
    """The examples of a table or journey (b: as in the file, t: as on the sheet)."""
    ed, nl = fe.ed, fe.nl
    # Examples are compared by name, so a column added, moved or deleted on the sheet
    # changes only the examples that have a value in it.
    keys = list(dict.fromkeys(t.ex_keys + b.ex_keys))

    def by_key(ks, cells) -> list:
        m = _ex_map(ks, cells)
        return [m.get(k, "") for k in keys]

    base_ex = [Row(by_key(b.ex_keys, r.cells), "", r.node) for r in b.examples]
    new_ex = [Row(by_key(t.ex_keys, r.cells), "") for r in t.examples]
    ex_node = b.node.get("examples")
    if not new_ex:
        if ex_node is not None and base_ex:
            ed.remove_key(b.node, "examples")  # none left: the key goes too
        return
    if not base_ex:  # the first examples: after the table's last line
        if ex_node is not None:
            ed.remove_key(b.node, "examples")
        at = ed.line_end(b.node.end)
        text = "examples:" + nl + "".join(f"  - {example_text(r.cells, keys)}{nl}" for r in new_ex)
        ed.replace(at, at, text if ed.text[:at].endswith("\n") else nl + text)
        return

    def ex_row(r: Row, ref) -> str:
        return example_text(r.cells, keys)

    def edit_ex(old: Row, new: Row) -> None:
        if isinstance(old.node, Map):
            ed.sync_map(old.node, _ex_map(keys, old.cells), _ex_map(keys, new.cells), nl, order=tuple(keys), row=True)
        else:
            ed.own(old.node)
            ed.replace(old.node.start, old.node.end, example_text(new.cells, keys))

    _edit_rows(fe, ex_node, base_ex, new_ex, ex_row, edit_ex)


def _edit_journey(fe: _FileEdit, b: JourneyDoc, j: JourneyDoc) -> None:
    """A journey's changed cells edited in its document: settings, start, leave events, steps, examples."""
    from .journeys import JOURNEY_KEYS, START_KEYS, STEP_KEYS

    ed, nl = fe.ed, fe.nl
    if b.name != j.name:  # renamed on its sheet
        ed.set_scalar(b.node.get("journey"), j.name)
    ed.sync_map(b.node, b.props, j.props, nl, order=JOURNEY_KEYS)
    if b.start != j.start:
        start = b.node.get("start")
        if not isinstance(start, Map):
            raise Structural("start")
        ed.sync_map(start, b.start, j.start, nl, order=START_KEYS)

    def as_map(cols, row: Row) -> dict:
        return {k: v for k, v in zip(cols, row.cells) if v != ""}

    def edit_as_map(cols, order):
        def edit(old: Row, new: Row) -> None:
            if not isinstance(old.node, Map):
                raise Structural("not a mapping")
            ed.sync_map(old.node, as_map(cols, old), as_map(cols, new), nl, order=order)
        return edit

    leave = b.node.get("leave")
    if [r.key() for r in b.leave] != [r.key() for r in j.leave]:
        steps_key = b.node.key_node("steps") if "steps" in b.node.keys() else None
        if not j.leave:
            ed.remove_key(b.node, "leave")
        elif leave is None and steps_key is not None and not b.node.flow:  # the first leave events: above steps:
            at = ed.line_start(steps_key.start)
            pad = " " * (steps_key.start - at)
            ed.replace(at, at, f"{pad}leave:{nl}" + "".join(f"{pad}  - {leave_text(r.cells)}{nl}" for r in j.leave))
        elif not b.leave or not isinstance(leave, Seq):
            raise Structural("leave")
        else:
            _edit_rows(fe, leave, b.leave, j.leave, lambda r, ref: leave_text(r.cells), edit_as_map(LEAVE_COLS, LEAVE_COLS))

    def step_row(r: Row, ref) -> str:
        if isinstance(ref, Map) and ref.flow:
            return spec_text(dict(zip(STEP_COLS, r.cells)), STEP_KEYS)
        indent = ref.start - ed.line_start(ref.start)
        return fe.nl.join(step_lines(r.cells, indent))

    _edit_rows(fe, b.node.get("steps"), b.steps, j.steps, step_row, edit_as_map(STEP_COLS, STEP_KEYS))
    _edit_examples(fe, b, j)


def _render_journey_doc(j: JourneyDoc, nl: str) -> str:
    out = Out()
    render_journey(j, out)
    return out.text(nl).rstrip("\r\n")


def _edit_entries(fe: _FileEdit, base: list, new: list, kind: str) -> None:
    """Fields, calendars or values of one file: changed ones edited, deleted ones removed,
    new ones added to the mapping that holds the others (or a new document)."""
    ed, nl = fe.ed, fe.nl
    by_name = {e.name: e for e in base}
    order = ENTRY_COLUMNS[kind][1]
    for e in new:
        b = by_name.get(e.name)
        if b is None or b.attrs == e.attrs:
            continue
        if kind == "values":
            ed.set_value(b.node, e.attrs.get("spellings", "") or "~")
        elif isinstance(b.node, Map):
            ed.sync_map(b.node, b.attrs, e.attrs, nl, order=order)
        else:
            raise Structural("entry")
    names = {e.name for e in new}
    for b in base:
        if b.name not in names:
            ed.remove_key(b.parent, b.name)
    added = [e for e in new if e.name not in by_name]
    if not added:
        return
    if base:
        for e in added:
            ed.add_key(base[-1].parent, e.name, _entry_yaml(e), nl)
    else:
        fe.appended.append(nl.join([f"{kind}:"] + [f"  {scalar(e.name)}: {_entry_yaml(e)}" for e in added]))


def _entry_yaml(e: Entry) -> str:
    if e.kind == "values":
        return value_yaml(e.attrs["spellings"]) if e.attrs.get("spellings") else "~"
    return spec_text(e.attrs, ENTRY_COLUMNS[e.kind][1])


def _rewrite_entries(fe: _FileEdit, book: Book, kinds: list) -> None:
    """The file's fields/calendars/values documents written afresh from the workbook (the
    kinds without a sheet from the file itself)."""
    placed = set()
    docs = [d for d in fe.f.docs if isinstance(d, tuple) and d[0] == "entries"]
    for _, doc in docs:
        out = Out()
        for kind in doc.keys():
            if kind not in ENTRY_KINDS:
                continue
            if kind in kinds:
                mine = {e.name for e in fe.f.entries if e.kind == kind and e.parent is doc.get(kind)}
                first = kind not in placed
                entries = [e for e in book.entries if e.kind == kind and e.file == fe.f.name
                           and (e.name in mine or (first and e.name not in {x.name for x in fe.f.entries if x.kind == kind}))]
                placed.add(kind)
            else:
                entries = [e for e in fe.f.entries if e.kind == kind and e.parent is doc.get(kind)]
            render_entries(kind, entries, out)
        fe.ed.replace(doc.start, doc.end, out.text(fe.nl).rstrip("\r\n"))
    for kind in kinds:
        if kind not in placed:
            entries = [e for e in book.entries if e.kind == kind and e.file == fe.f.name]
            if entries:
                out = Out()
                render_entries(kind, entries, out)
                fe.appended.append(out.text(fe.nl).rstrip("\r\n"))


@dataclass
class ImportResult:
    changed: list = field(default_factory=list)  # file names written
    created: list = field(default_factory=list)
    rewritten: list = field(default_factory=list)  # (file, decision): written afresh, not edited
    kept: list = field(default_factory=list)  # decisions in the files but not in the workbook
    kept_journeys: list = field(default_factory=list)  # journeys likewise
    kept_examples: list = field(default_factory=list)  # tables and journeys whose examples sheet is not in the workbook
    old_errors: int = 0  # errors the rule files already had, still there
    texts: dict = field(default_factory=dict)  # file name -> new text


def plan_import(book: Book, src: Source) -> ImportResult:
    """The new text of each rule file; nothing is written."""
    res = ImportResult()
    edits = {f.name: _FileEdit(f) for f in src.files}
    base_tables = {}
    for f in src.files:
        for d in f.docs:
            if isinstance(d, TableDoc):
                base_tables.setdefault(d.decision, (f, d))
    new_files: dict[str, list[str]] = {}
    # a sheet whose decision was renamed: the table of its file that no sheet names, with the same columns
    named = {t.decision for t in book.tables}
    orphans = [fb for d, fb in base_tables.items() if d not in named]
    matched = {}
    for t in book.tables:
        if t.decision in base_tables:
            matched[id(t)] = base_tables[t.decision]
            continue
        for k, (f, b) in enumerate(orphans):
            if f.name == t.file and [c.name for c in b.cols] == [c.name for c in t.cols]:
                matched[id(t)] = orphans.pop(k)
                break
    for t in book.tables:
        _place(matched.get(id(t)), t, t.decision, edits, new_files, res, _edit_table, _render_doc)
    res.kept = [b.decision for f, b in orphans]
    _plan_journeys(book, src, edits, new_files, res)
    kinds = [k for k in ENTRY_KINDS if k in book.entry_sheets]  # a kind without its sheet is kept as it is
    for fname, fe in edits.items():
        mark, amark = len(fe.ed.edits), len(fe.appended)
        try:
            for kind in kinds:
                _edit_entries(fe, [e for e in src.entries if e.kind == kind and e.file == fname],
                              [e for e in book.entries if e.kind == kind and e.file == fname], kind)
        except Structural:
            del fe.ed.edits[mark:], fe.appended[amark:]
            _rewrite_entries(fe, book, kinds)
            res.rewritten.append((fname, ", ".join(kinds)))
    for kind in kinds:
        for fname in dict.fromkeys(e.file for e in book.entries if e.kind == kind and e.file not in edits):
            out = Out()
            render_entries(kind, [e for e in book.entries if e.kind == kind and e.file == fname], out)
            new_files.setdefault(fname, []).append(out.text().rstrip("\n"))
    for name, fe in edits.items():
        text = fe.ed.result()
        for doc in fe.appended:
            if not text.endswith("\n"):
                text += fe.nl
            text += "---" + fe.nl + doc + fe.nl
        if text != fe.f.text:
            res.texts[name] = text
            res.changed.append(name)
    for name, docs in new_files.items():
        res.texts[name] = ("\n---\n".join(docs)) + "\n"
        res.created.append(name)
    return res


def _keep_examples(b, t, res) -> None:
    """A table or journey whose examples sheet is gone (deleted, or its B2 and header row
    deleted) keeps the examples of its file, as a deleted table sheet keeps its table:
    deleting them is emptying the sheet's rows."""
    if t.ex_sheet is None and b.examples:
        t.ex_keys, t.examples = b.ex_keys, b.examples
        res.kept_examples.append(t.decision)


def _place(fb, doc, name: str, edits: dict, new_files: dict, res, edit, render) -> None:
    """One table or journey of the workbook into the files: edited in place in the document
    `fb` = (file, its document) it came from (written afresh there when the edit is not a
    cell-level one), else appended to its file, else into a new file."""
    if fb is not None:
        f, b = fb
        _keep_examples(b, doc, res)
        fe = edits[f.name]
        mark = len(fe.ed.edits)
        try:
            edit(fe, b, doc)
        except Structural:
            del fe.ed.edits[mark:]
            fe.ed.replace(b.node.start, b.node.end, render(doc, fe.nl))
            res.rewritten.append((f.name, name))
    elif doc.file in edits:
        edits[doc.file].appended.append(render(doc, edits[doc.file].nl))
    else:
        new_files.setdefault(doc.file, []).append(render(doc, "\n"))


def _plan_journeys(book: Book, src: Source, edits: dict, new_files: dict, res) -> None:
    """Journeys: edited in place where they are, appended to their file when new; one renamed on
    its sheet is the journey of its file that no sheet names, with the same steps."""
    base = {}
    for f in src.files:
        for d in f.docs:
            if isinstance(d, JourneyDoc):
                base.setdefault(d.name, (f, d))
    named = {j.name for j in book.journeys}
    orphans = [fb for n, fb in base.items() if n not in named]
    for j in book.journeys:
        fb = base.get(j.name)
        if fb is None:
            fb = next((o for o in orphans if o[0].name == j.file and [r.cells[0] for r in o[1].steps] == [r.cells[0] for r in j.steps]), None)
            if fb is not None:
                orphans.remove(fb)
        _place(fb, j, j.name, edits, new_files, res, _edit_journey, _render_journey_doc)
    res.kept_journeys = [b.name for f, b in orphans]


def _errors(folder) -> list[Problem]:
    """The errors `cxrules check` finds in a rules folder (the loader's, then the checker's)."""
    from .checker import check_ruleset

    rs, problems = load_rules(folder, base=Path(folder))
    return problems.errors or [p for p in check_ruleset(rs) if p.is_error]


def import_book(xlsx, rules) -> ImportResult:
    """Write a rules workbook back into the rule folder: only changed files are written,
    each in one step, and only after the whole new rule set loads without errors."""
    from . import files

    book = read_workbook(xlsx)
    if book.problems:
        raise RulebookError(f"{xlsx}: {book.problems[0].where()}: {book.problems[0].message}; nothing was written"
                            + (f" (and {len(book.problems) - 1} more; run 'cxrules check {xlsx}')" if len(book.problems) > 1 else ""))
    folder = Path(rules)
    if folder.exists() and not folder.is_dir():
        raise RulebookError(f"{folder}: import writes into a rules folder; give a folder")
    src = read_source(folder) if folder.is_dir() else Source(folder, [])
    try:
        res = plan_import(book, src)
    except (Structural, ValueError) as e:  # an edit that could not be placed: say so, write nothing
        raise RulebookError(f"{xlsx}: the changes could not be written into {folder} ({e}); nothing was written; "
                            "please report this with the workbook") from None
    by_name = {f.name: f for f in src.files}
    with tempfile.TemporaryDirectory() as tmp:
        for f in src.files:
            (Path(tmp) / f.name).write_text(res.texts.get(f.name, f.text), encoding="utf-8", newline="")
        for n in res.created:
            (Path(tmp) / n).write_text(res.texts[n], encoding="utf-8", newline="")
        problems = _errors(tmp) if res.texts else []
        # errors the rule files had before are not the workbook's: they stay, and are counted
        had = {(p.table, p.message) for p in _errors(folder)} if src.files and res.texts else set()
        new_errors = [p for p in problems if (p.table, p.message) not in had]
        res.old_errors = len(problems) - len(new_errors)
        if new_errors:
            p, n = new_errors[0], len(new_errors)
            raise RulebookError(f"the workbook's rules have {n} error{'s' if n > 1 else ''}, e.g. "
                                + (f"table '{p.table}': " if p.table else "") + f"{p.message}; run 'cxrules check {xlsx}' "
                                "to see each by sheet and cell; nothing was written")
    folder.mkdir(parents=True, exist_ok=True)
    # every file is written beside itself and checked before the first is put in place: a file
    # that cannot be replaced (read-only, another owner) leaves the folder as it was, not half new
    staged: list = []
    try:
        for name, text in res.texts.items():
            f = by_name.get(name)
            data = (b"\xef\xbb\xbf" if f is not None and f.bom else b"") + text.encode("utf-8")
            dst = folder / name
            if dst.exists():
                files.check_replaceable(dst)
            fd, tmpf = files.make_temp(dst)
            staged.append((tmpf, dst))
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            except OSError as e:
                raise files.write_error(dst, dst, e) from None
        while staged:
            tmpf, dst = staged[0]
            try:
                files.replace(tmpf, dst, like=dst if dst.exists() else (folder / src.files[0].name if src.files else dst))
            except OSError as e:
                raise files.write_error(dst, dst, e) from None
            staged.pop(0)
    finally:
        for tmpf, _ in staged:
            Path(tmpf).unlink(missing_ok=True)
    return res


# ----------------------------------------------------------------- checking a workbook
def render_book(book: Book, folder: Path) -> dict:
    """Write the workbook's rule files afresh into folder; returns (file, line) -> [(name, cell, text)]."""
    origins: dict = {}
    per_file: dict[str, list] = {}
    for t in book.tables:
        per_file.setdefault(t.file, []).append(("table", t))
    for j in book.journeys:
        per_file.setdefault(j.file, []).append(("journey", j))
    for kind in ENTRY_KINDS:
        for fname in dict.fromkeys(e.file for e in book.entries if e.kind == kind):
            per_file.setdefault(fname, []).append(("entries", (kind, [e for e in book.entries if e.kind == kind and e.file == fname])))
    for fname, docs in per_file.items():
        lines: list[str] = []
        for k, (what, d) in enumerate(docs):
            out = Out()
            if what == "table":
                render_table(d, out)
                sheet = d.sheet
                texts = _cell_texts(d)
            elif what == "journey":
                render_journey(d, out)
                sheet = d.sheet
                texts = _journey_cell_texts(d)
            else:
                render_entries(d[0], d[1], out)
                sheet = book.entry_sheets.get(d[0], d[0])
                texts = {(ref, False): text for e in d[1] for a, text in e.attrs.items() for ref in [e.refs.get(a)]}
            if k:
                lines.append("---")
            for line, org in zip(out.lines, out.origins):
                lines.append(line)
                origins[(fname, len(lines))] = [(o[0], o[1], texts.get((o[1], len(o) > 2), ""), d.ex_sheet if len(o) > 2 else sheet)
                                                for o in org if o[1]]
        (folder / fname).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return origins


def _cell_texts(t: TableDoc) -> dict:
    """(cell, on the examples sheet) -> its text."""
    out = {}
    for r in t.rules:
        for ref, text in zip(r.refs or [], r.cells + [r.note]):
            out[(ref, False)] = text
    for r in t.examples:
        for ref, text in zip(r.refs or [], r.cells):
            out[(ref, True)] = text
    for c in t.cols:
        for a, text in c.attrs.items():
            out[(t.refs.get(("attr", c.name, a)), False)] = text
    return out


def _journey_cell_texts(j: JourneyDoc) -> dict:
    out = {(j.refs.get(("prop", k)), False): text for k, text in j.props.items()}
    out.update({(j.refs.get(("start", k)), False): text for k, text in j.start.items()})
    out[(j.refs.get(("prop", "decision")), False)] = j.name
    for r in j.leave + j.steps:
        for ref, text in zip(r.refs or [], r.cells):
            out[(ref, False)] = text
    for r in j.examples:
        for ref, text in zip(r.refs or [], r.cells):
            out[(ref, True)] = text
    return out


def check_book(path) -> tuple[Problems, int]:
    """Every problem of a rules workbook, named by sheet and cell; and the number of tables."""
    problems, n, _ = check(read_workbook(path), Path(path).name)
    return problems, n


def check_book_counts(path) -> tuple[Problems, int, int]:
    """check_book, with the number of journeys too."""
    book = read_workbook(path)
    problems, n, _ = check(book, Path(path).name)
    return problems, n, len(book.journeys)


def check(book: Book, shown: str, examples: bool | list = False) -> tuple[Problems, int, list]:
    """A rules workbook's problems placed on its cells: it is written as rule files into a
    scratch folder, loaded and checked there, and each problem's file line taken back to
    the cell it came from. With `examples` (True, or the decisions to run), also the results
    of its examples: [(ExampleResult, a Problem at its cell, or None when it passed)]."""
    from .checker import check_ruleset

    problems = Problems()
    for p in book.problems:
        problems.append(replace(p, file=shown))
    sheets = {t.decision: t for t in book.tables + book.journeys}
    journeys = {j.name for j in book.journeys}
    ran = []
    with tempfile.TemporaryDirectory() as tmp:
        origins = render_book(book, Path(tmp))
        rs, found = load_rules(tmp, base=Path(tmp))
        items = list(found)
        if not found.errors:
            items += check_ruleset(rs)
            if examples:
                from .testing import run_examples

                for r in run_examples(rs, examples if isinstance(examples, list) else None):
                    if r.passed:
                        ran.append((r, None))
                        continue
                    msg = r.describe().split("\n", 1)[1].strip() if "\n" in r.describe() else r.describe()
                    col = (r.mismatches or [None])[0]
                    if r.table in journeys and col and col.startswith(r.table + "_"):
                        col = col[len(r.table) + 1:]  # lapsed_due is the examples' due column
                    p = Problem(f"example {r.index} fails: {' '.join(msg.split())}", code="example", file=r.file,
                                line=r.line, table=r.table, row=r.index, column=col)
                    ran.append((r, _placed(p, origins, sheets, shown)))
    for p in items:
        problems.append(_placed(p, origins, sheets, shown))
    return problems, len(book.tables), ran


def _placed(p: Problem, origins: dict, sheets: dict, shown: str) -> Problem:
    """The problem at the workbook cell its file line came from: the cell whose text the
    message quotes, else the cell of its column, else the table's column header."""
    org = origins.get((p.file, p.line)) or []
    t = sheets.get(p.table)
    pick = next(((ref, sheet) for n, ref, text, sheet in org if text and f"'{text}'" in p.message), None)
    if pick is None and p.column:
        pick = next(((ref, sheet) for n, ref, text, sheet in org if n == p.column), None)
        if pick is None and isinstance(t, JourneyDoc) and org:  # a journey's line is one step setting: its cell
            pick = (org[0][1], org[0][3])
        if pick is None and t is not None and ("attr", p.column, "name") in t.refs:
            pick = (t.refs[("attr", p.column, "name")], t.sheet)
    if pick is None and org:
        pick = (org[0][1], org[0][3])
    if pick is None and t is not None:
        pick = (t.refs.get(("prop", "decision"), "B2"), t.sheet)
    if pick is None:
        return replace(p, file=shown, line=None)
    return replace(p, file=shown, line=None, sheet=pick[1], cell=pick[0])
