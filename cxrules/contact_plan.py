"""The Contact plan sheet: contacts due per day and channel for the next 4 weeks (a table
and a stacked column chart, for staffing), and today's call list (due today or overdue),
sorted by tier and then overdue first, with owner and channel: the sheet an agent opens
in the morning.

Contacts come from sources: each names, by rule names, a due date and the channel, owner,
priority and purpose computed beside it. A source counts on every sheet where its due date
is computed. SOURCES lists the decisions' (the contact cadence); every journey of the rule
set adds its own (its next action, channel, owner and due; a contact its `deferred` column
holds back is not due). A customer with a cadence contact and a journey action due is on
the list twice: two things to do.
"""
from __future__ import annotations

import datetime as dt
import math
import operator
from collections import Counter
from dataclasses import dataclass
from itertools import compress, repeat
from operator import attrgetter, itemgetter
from typing import NamedTuple

from .values import display, norm_header
from .xlsx_write import BarChart, CellFormat, ChartSeries, NewSheet, text_width

PLAN_SHEET = "Contact plan"
DAYS = 28  # the next 4 weeks, today included
# rows of the call list on the sheet: a day's calls for a large team; the rest are counted in
# the table above and found by sorting the customer sheet on its Days overdue column
MAX_CALLS = 5_000
FIT_ROWS = 2_000  # column widths fitted to the sheet's first rows


@dataclass(frozen=True)
class Source:
    """Contacts: `due` (a due date's name) with the outputs beside it on the same row."""

    due: str
    channel: str
    owner: str | None = None
    priority: str | None = None  # an output with `allowed:`: its order ranks the call list (tier)
    purpose: str | None = None
    held: str | None = None  # a result that, filled in, holds the contact back (a journey's deferred)


SOURCES: list[Source] = [
    Source(due="next_contact", channel="channel", owner="contact_owner", priority="tier", purpose="purpose"),
]

# Who to call: columns of the customer's sheet shown on the call list (not read by any rule).
IDENTITY = [
    ("customer_id", "Customer ID", ("Customer ID", "客户编号", "Customer", "客户ID")),
    ("name", "Name", ("Name", "姓名", "客户姓名", "Customer name")),
    ("phone", "Phone", ("Phone", "联系电话", "电话", "Mobile", "手机")),
]


class Contact(NamedTuple):
    sheet: str
    row: int  # Excel row
    due: object  # date or datetime, as the sheet's due column shows it
    late: bool  # overdue at as_of
    days_overdue: float
    channel: object
    owner: object
    priority: object
    purpose: object
    who: tuple  # IDENTITY values
    source: Source
    rank: int  # the priority's place in its allowed list


_make = tuple.__new__  # Contact from a tuple of its fields, without a Python call per contact


def sources(rs) -> list[Source]:
    """SOURCES, then one per journey of the rule set (journeys.py names its results)."""
    out = list(SOURCES)
    for t in rs.tables.values():
        j = getattr(t, "journey", None)
        if j is None:
            continue
        has = set(j.results())
        out.append(Source(due=j.result("due"), channel=j.result("channel"),
                          owner=j.result("owner") if "owner" in has else None, priority="tier",
                          purpose=j.result("next_action"), held=j.result("deferred") if "deferred" in has else None))
    return out


def active(rs, runs) -> list[Source]:
    """The sources whose due date one of these decisions computes."""
    made = {n for r in runs for n in rs.tables[r].result_names}
    return [s for s in sources(rs) if s.due in made]


def identity(data, header, block, keep) -> dict[str, list]:
    """The IDENTITY columns of the kept rows of `block` (the range's data rows), by header;
    packed from PACK_FROM rows (a hundred thousand IDs as str objects: about 10 MB, a
    million: about 100 MB)."""
    row = data.rows[header.index]
    hi = header.hi if header.hi is not None else len(row) - 1
    by_text = {}
    for j in range(header.lo, min(hi, len(row) - 1) + 1):
        if isinstance(row[j], str):
            by_text.setdefault(norm_header(row[j]), j)
    out = {}
    for key, _label, aliases in IDENTITY:
        j = next((by_text[norm_header(a)] for a in aliases if norm_header(a) in by_text), None)
        if j is not None:
            rows = block if len(keep) == len(block) else list(map(block.__getitem__, keep))
            if rows and min(map(len, rows)) > j:  # calamine's rows are all as wide
                col = list(map(itemgetter(j), rows))
            else:
                col = [r[j] if j < len(r) else None for r in rows]
            # as shown: an Excel error by its code, a number stored as text as typed
            if not all(t is type(None) or issubclass(t, _SHOWN) for t in set(map(type, col))):
                col = [v if v is None or isinstance(v, _SHOWN) else str(getattr(v, "code", v)) for v in col]
            out[key] = packed(col) if len(col) >= PACK_FROM else col
    return out


PACK_FROM = 200_000  # rows: a range this long holds its IDs and names packed (as the reader shares from 200,000)


_SHOWN = (str, int, float, dt.date)


class Packed:
    """A column of texts (or of whole numbers, or of numbers), blanks among them, held as one
    string and where each row's ends (or as a numpy array): a million customers' IDs and
    names are only wanted for the few thousand calls listed, and as str objects they would
    hold about 140 MB while the rules run. A row's value is made again when read."""

    __slots__ = ("text", "ends", "numbers", "blank")

    def __init__(self, text, ends, numbers, blank):
        self.text, self.ends, self.numbers, self.blank = text, ends, numbers, blank

    def __len__(self):
        return len(self.ends if self.numbers is None else self.numbers)

    def __getitem__(self, i):
        if self.blank is not None and self.blank[i]:
            return None
        if self.numbers is not None:
            return self.numbers[i].item()
        return self.text[int(self.ends[i - 1]) if i else 0:int(self.ends[i])]


def packed(col: list):
    """col as a Packed column when all its values are texts, or ints, or floats (and blanks);
    else col itself."""
    from .columnar import np

    kinds = set(map(type, col))
    blank = type(None) in kinds and np.fromiter(map(operator.is_, col, repeat(None)), bool, len(col))
    kinds.discard(type(None))
    if blank is not False and blank.all() or len(kinds) != 1:
        return col
    present = col if blank is False else [v for v in col if v is not None]
    kind = kinds.pop()
    if kind is str:
        sizes = np.fromiter(map(len, present), np.int64, len(present))
        if blank is not False:
            sizes, filled = np.zeros(len(col), np.int64), sizes
            sizes[~blank] = filled
        ends = np.cumsum(sizes)
        return Packed("".join(present), ends.astype(np.int32) if len(ends) and ends[-1] < 2 ** 31 else ends, None,
                      None if blank is False else blank)
    if kind in (int, float):
        try:
            numbers = np.zeros(len(col), np.int64 if kind is int else np.float64)
            numbers[slice(None) if blank is False else ~blank] = present
        except OverflowError:  # an int past 64 bits: kept as it is
            return col
        return Packed(None, None, numbers, None if blank is False else blank)
    return col


class Tally:
    """Every contact of the plan counted, {(day or 'overdue', channel): count}, with each
    channel's source (the last one's channel output, for its values' spellings): with a
    tally, collect keeps as objects only the calls the list can show (a million customers'
    contacts as objects would hold about 150 MB while the workbook is written)."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.channel_source: dict = {}
        self.total = 0


def collect(rs, sources: list[Source], ev, ids: dict[str, list], sheet: str, excel_rows, as_of: dt.datetime,
            tally: Tally | None = None) -> list[Contact]:
    """The contacts of one range that are overdue or due within DAYS of as_of. With a tally,
    all of them are counted there, and only the first MAX_CALLS of this range's call list
    (call_order) are returned: the sheet's list is the first MAX_CALLS of all ranges'.
    Without one, every contact, source by source, in row order. excel_rows ascend.

    A column at a time: per row only numpy arrays (each row's due date, channel and priority
    as a class of equal values, held and settled rows); each distinct due date is read once
    and each priority ranked once, the tally counted by bincount, the call list chosen by a
    lexsort over numbers, and only the contacts returned made as objects."""
    from .columnar import np

    today = as_of.date()
    blank = [None] * ev.n
    found: list[_Found] = []
    for s in sources:
        dues = ev.columns.get(s.due) or blank
        if dues is blank:
            continue
        readings, of_row = _readings(rs, s, dues, as_of)
        take = np.array([g is not None for g in readings], bool)[of_row]
        settled = ev.settled.get(s.due, ())
        if settled:
            take[[i for i in settled if 0 <= i < len(take)]] = False
        held = ev.columns.get(s.held) if s.held else None
        if held:
            take &= _blanks(held)
        rows = np.flatnonzero(take)
        if not len(rows):
            continue
        cols = [ev.columns.get(x) or blank if x else blank for x in (s.channel, s.owner, s.priority, s.purpose)]
        ranks = _ranks(rs, s.priority, cols[2], rows)
        if tally is not None:
            # 0: overdue; else 1 + days from today (a contact not overdue is due today or later)
            day = np.array([0 if g is None or g[1] else 1 + (_day(g[0]) - today).days for g in readings], np.int64)
            day = day[of_row[rows]]
            _count(tally, s, day, rows, cols[0], today)
            listed = day <= 1  # the call list's: overdue or due today
            rows, ranks = rows[listed], ranks[listed]
        if len(rows):
            found.append(_Found(s, rows, readings, of_row, cols, [ids.get(k, blank) for k, _, _ in IDENTITY], ranks))
    if tally is None:  # every contact, as the sources give them
        return [c for f in found for c in _contacts(sheet, excel_rows, f, np.arange(len(f.rows)))]
    if not found:
        return []
    keys = _sort_keys(found)  # days overdue are ints and floats (_lateness): numpy holds them exactly
    best = np.lexsort(keys)[:MAX_CALLS]
    at = np.concatenate([np.arange(len(f.rows)) for f in found])[best]
    source = keys[0][best]
    out: list = [None] * len(best)
    for k in np.unique(source).tolist():  # each source's contacts made together, then put in their places
        mine = np.flatnonzero(source == k)
        for j, c in zip(mine.tolist(), _contacts(sheet, excel_rows, found[k], at[mine])):
            out[j] = c
    return out


class _Found(NamedTuple):
    """A source's contacts in one range: its rows, and what collect read for them."""

    source: Source
    rows: object  # indexes of the range's rows (numpy), ascending
    readings: list  # (due as the sheet reads it, overdue, days overdue) or None, per class of due values
    of_row: object  # each row's due class (numpy)
    cols: list  # channel, owner, priority, purpose columns
    who: list  # IDENTITY columns
    ranks: object  # the priority's rank of each of `rows` (numpy)


def _readings(rs, s: Source, dues: list, as_of: dt.datetime):
    """([(due as the sheet reads it, overdue, days overdue) or None past the 4 weeks, per
    class], each row's class): each distinct due value read once, as recalc reads it."""
    from .columnar import numbered
    from .recalc import _due_value, _lateness  # the sheet's own reading of due dates

    today = as_of.date()
    horizon = today + dt.timedelta(days=DAYS - 1)
    d = next((x for t in rs.tables.values() for x in t.due if x.name == s.due), None)

    def reading(v):
        if not isinstance(v, dt.date):  # a blank, or not a date (a text in a date output): not a contact
            return None
        w = _due_value(rs, d, v) if d is not None else v
        day = w.date() if isinstance(w, dt.datetime) else w
        late = w < as_of if isinstance(w, dt.datetime) else day < today
        if late:
            late_by = _lateness(rs, d, w, as_of) if d is not None else (
                round(math.ceil((as_of - w).total_seconds() / 60) / 1440, 6) if isinstance(w, dt.datetime) else (today - w).days)
        return None if not late and day > horizon else (w, late, late_by if late else 0)

    table, codes = _coded(dues) or numbered(dues)  # a few hundred dates among many rows
    memo = {}  # a Coded table may hold one date many times (once per combination of inputs)
    return [memo[v] if v in memo else memo.setdefault(v, reading(v)) for v in table], codes


def _coded(values: list):
    """columnar.coded's (table, codes), but None for a table with no entry (all blanks)."""
    from .columnar import coded

    c = coded(values)
    return c if c is not None and len(c[0]) else None


def _blanks(values: list):
    """A numpy mask of the blank (None) values."""
    from .columnar import np

    c = _coded(values)
    if c is not None:
        return np.array([v is None for v in c[0]], bool)[c[1]]
    return np.fromiter(map(operator.is_, values, repeat(None)), bool, len(values))


def _classes(values: list, rows):
    """(each of `rows`' class of equal values, numbered from 0, how many classes): a Coded
    column's few table entries looked at, a list's values numbered by a dict."""
    from .columnar import np, numbered

    c = _coded(values)
    if c is not None:
        ids: dict = {}
        number = np.array([ids.setdefault(v, len(ids)) for v in c[0]], np.int64)
        return number[c[1][rows]], len(ids)
    table, codes = numbered(list(map(values.__getitem__, rows.tolist())))
    return codes, len(table)


def _first(codes, n: int):
    """The first position of each of the n codes (len(codes) where it is absent)."""
    from .columnar import np

    first = np.full(n, len(codes), np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return first


def _count(tally: Tally, s: Source, day, rows, channels: list, today: dt.date) -> None:
    """Count the contacts of these rows (day: 0 overdue, else 1 + days from today) per day and
    channel, as a Counter over each row's (day or 'overdue', channel) would: keys in the order
    of their first row, each key's channel the value of that row."""
    from .columnar import np

    ch, n_ch = _classes(channels, rows)
    pair = day * n_ch + ch
    counts = np.bincount(pair)
    first = _first(pair, len(counts))
    present = np.flatnonzero(counts)
    order = present[np.argsort(first[present], kind="stable")]
    for p, k in zip(order.tolist(), counts[order].tolist()):
        d = p // n_ch
        channel = channels[int(rows[first[p]])]
        tally.counts[("overdue" if d == 0 else today + dt.timedelta(days=d - 1), channel)] += k
    for i in _first(ch, n_ch).tolist():
        if i < len(rows):  # a class of a Coded column's table no row here holds: none
            tally.channel_source[channels[int(rows[i])]] = s.channel
    tally.total += len(rows)


def _ranks(rs, priority: str | None, values: list, rows):
    """The rank (call_order's tier) of each of `rows`: each class of equal values ranked once,
    by its first row's value."""
    from .columnar import np

    rank = _rank(rs, priority)
    cls, n = _classes(values, rows)
    by_class = [rank(values[int(rows[i])]) if i < len(rows) else 0 for i in _first(cls, n).tolist()]
    return np.array(by_class, np.int64)[cls] if n else np.zeros(0, np.int64)


def _sort_keys(found: list[_Found]) -> list:
    """call_order's keys for lexsort, least significant first: source, row, due moment (each
    distinct one ranked once), days overdue (most first), overdue first, priority's rank.
    One range: one sheet, and rows ascend with excel rows."""
    from .columnar import np

    used = [np.unique(f.of_row[f.rows]).tolist() for f in found]
    moment = {m: k for k, m in enumerate(sorted({_sortable(f.readings[e][0]) for f, es in zip(found, used) for e in es}))}
    parts = []
    for k, f in enumerate(found):
        g = f.readings
        late = np.array([x is not None and x[1] for x in g], bool)[f.of_row[f.rows]]
        late_by = np.array([x[2] if x is not None else 0 for x in g], np.float64)[f.of_row[f.rows]]
        due = np.array([moment.get(_sortable(x[0]), -1) if x is not None else -1 for x in g], np.int64)[f.of_row[f.rows]]
        parts.append((np.full(len(f.rows), k, np.int64), f.rows.astype(np.int64), due, -late_by, ~late, f.ranks))
    return [np.concatenate(p) for p in zip(*parts)]


def _contacts(sheet: str, excel_rows, f: _Found, at) -> list[Contact]:
    """The contacts of f.rows[at], in that order."""
    rows = f.rows[at].tolist()
    if not rows:
        return []
    got = list(map(f.readings.__getitem__, f.of_row[f.rows[at]].tolist()))
    pick = [list(map(c.__getitem__, rows)) for c in f.cols]
    whos = zip(*(map(w.__getitem__, rows) for w in f.who)) if f.who else repeat(())
    fields = zip(repeat(sheet), map(excel_rows.__getitem__, rows), *zip(*got), *pick, whos, repeat(f.source),
                 f.ranks[at].tolist())
    return list(map(_make, repeat(Contact), fields))


def _rank(rs, source_name: str | None):
    """value -> its place in the priority output's allowed list (others after)."""
    t = rs.producer(source_name) if source_name else None
    o = t.output(source_name) if t else None
    order = {display(v).casefold(): k for k, v in enumerate(o.allowed or [])} if o else {}
    memo: dict = {None: len(order) + 1}

    def rank(v):
        r = memo.get(v)
        if r is None:
            r = memo[v] = order.get(display(v).casefold(), len(order))
        return r

    return rank


def call_order(contacts: list[Contact], today: dt.date) -> list[Contact]:
    """Due today or overdue, by priority (tier), then overdue first (most overdue first),
    then by due time and place."""
    from .columnar import np

    late, due_of = attrgetter("late"), attrgetter("due")
    # overdue, or due today: each due date of the others looked at once (a few hundred among many)
    today_or_before = {v: _day(v) <= today for v in dict.fromkeys(map(due_of, compress(contacts, map(operator.not_, map(late, contacts)))))}
    keep = map(operator.or_, map(late, contacts), map(today_or_before.get, map(due_of, contacts), repeat(True)))
    due = list(compress(contacts, keep))
    if not due:
        return due
    # the sort's keys as numbers (each distinct due date and sheet ranked once), sorted stably
    dues = dict.fromkeys(map(due_of, due))
    moments = {m: k for k, m in enumerate(sorted(set(map(_sortable, dues))))}
    for v in dues:
        dues[v] = moments[_sortable(v)]
    sheets = {x: k for k, x in enumerate(sorted(set(map(attrgetter("sheet"), due))))}
    n = len(due)
    try:
        keys = (np.fromiter(map(attrgetter("row"), due), np.int64, n),
                np.fromiter(map(sheets.__getitem__, map(attrgetter("sheet"), due)), np.int64, n),
                np.fromiter(map(dues.__getitem__, map(due_of, due)), np.int64, n),
                -np.fromiter(map(attrgetter("days_overdue"), due), np.float64, n),
                ~np.fromiter(map(late, due), bool, n),
                np.fromiter(map(attrgetter("rank"), due), np.int64, n))
    except (TypeError, ValueError, OverflowError):  # not plain numbers: Python compares them
        return call_order_per_row(contacts, today)
    return list(map(due.__getitem__, np.lexsort(keys).tolist()))


def call_order_per_row(contacts: list[Contact], today: dt.date) -> list[Contact]:
    """call_order by Python's sort: what the numpy path must give (tests compare them)."""
    due = [c for c in contacts if c.late or _day(c.due) <= today]
    return sorted(due, key=lambda c: (c.rank, not c.late, -c.days_overdue, _sortable(c.due), c.sheet, c.row))


def _memo(fn):
    memo: dict = {}

    def get(v):
        try:
            return memo[v]
        except KeyError:
            x = memo[v] = fn(v)
            return x

    return get


def _day(v) -> dt.date:
    return v.date() if isinstance(v, dt.datetime) else v


def _sortable(v) -> dt.datetime:
    return v if isinstance(v, dt.datetime) else dt.datetime(v.year, v.month, v.day)


def per_day(contacts: list[Contact], as_of: dt.datetime) -> tuple[list, list[dt.date], dict]:
    """(channels by count, the DAYS days, {(day or 'overdue', channel): count}); channels
    of every source are counted together (a phone call is a phone call)."""
    day = _memo(_day)  # a few hundred due dates among many contacts
    return _by_channel(Counter(("overdue" if c.late else day(c.due), c.channel) for c in contacts), as_of)


def _by_channel(counts: Counter, as_of: dt.datetime) -> tuple[list, list[dt.date], dict]:
    today = as_of.date()
    days = [today + dt.timedelta(days=k) for k in range(DAYS)]
    totals: dict = {}
    for (_, ch), k in counts.items():
        totals[ch] = totals.get(ch, 0) + k
    channels = sorted(totals, key=lambda ch: (-totals[ch], display(ch)))
    return channels, days, counts


def plan_sheet(report, rs, tr, contacts: list[Contact], tally: Tally | None = None) -> NewSheet:
    """The sheet, in the workbook's language (tr, value spellings on a Chinese workbook).
    contacts: every contact; or, with the tally that counted them all, what collect kept."""
    as_of = report.as_of
    zh = report.language == "zh"

    spelt: dict = {}  # a few values on many rows: each spelt once

    def value(name, v):
        if v is None or not name or not isinstance(v, str):
            return v
        key = (name, v)
        got = spelt.get(key)
        if got is None:
            got = spelt[key] = rs.aliases.written(name, v, zh)
        return got

    rows: list[list] = []
    formats: dict[tuple[int, int], CellFormat] = {}
    row_formats: dict[int, CellFormat] = {}
    bold = CellFormat(bold=True)
    red = CellFormat(fill="FFC7CE", font_color="9C0006")
    red_part = CellFormat(num_fmt="0.00", fill="FFC7CE", font_color="9C0006")  # late by a moment: parts of a day show
    day_fmt = CellFormat(num_fmt="yyyy-mm-dd ddd")
    moment = CellFormat(num_fmt="yyyy-mm-dd hh:mm")

    def add(row=(), fmt=None) -> int:
        rows.append(list(row))
        if fmt is not None:
            row_formats[len(rows) - 1] = fmt
        return len(rows) - 1

    if tally is None:
        channels, days, counts = per_day(contacts, as_of)
        sources = dict(zip(map(attrgetter("channel"), contacts), map(attrgetter("source"), contacts)))  # the last one's
        chan_name = {ch: s.channel for ch, s in sources.items()}
        n_all = len(contacts)
    else:
        channels, days, counts = _by_channel(tally.counts, as_of)
        chan_name, n_all = tally.channel_source, tally.total
    calls = call_order(contacts, as_of.date())
    n_late = sum(k for (d, _), k in counts.items() if d == "overdue")
    n_today = sum(k for (d, _), k in counts.items() if d == as_of.date())  # not overdue, due today
    n_calls = n_late + n_today  # due today or overdue: the list, before it is cut at MAX_CALLS
    add([tr(PLAN_SHEET)], CellFormat(bold=True))
    add([tr("As of"), display(as_of)])
    add([tr("Due today"), n_today])
    i = add([tr("Overdue"), n_late])
    if n_late:
        formats[(i, 1)] = red
    add()

    # contacts due per day and channel
    top = add([tr("Contacts due per day and channel, next 4 weeks")], bold)
    add([tr("Date")] + [value(chan_name[ch], ch) if ch is not None else tr("(blank)") for ch in channels] + [tr("Total")], bold)
    i = add([tr("Overdue")] + [counts.get(("overdue", ch), 0) for ch in channels] + [n_late])
    formats[(i, 0)] = red
    first = len(rows)
    for d in days:
        i = add([d] + [counts.get((d, ch), 0) for ch in channels] + [sum(counts.get((d, ch), 0) for ch in channels)])
        formats[(i, 0)] = day_fmt
    last = len(rows) - 1
    add([tr("Total")] + [sum(counts.get((k, ch), 0) for k in ["overdue"] + days) for ch in channels] + [n_all], bold)
    charts = []
    if channels:
        series = [ChartSeries(first, last, j + 1, rows[top + 1][j + 1]) for j in range(len(channels))]
        charts.append(BarChart(tr("Contacts due per day and channel, next 4 weeks"), (first, last, 0), series,
                               anchor=(top, len(channels) + 3), size=(12, DAYS + 4), horizontal=False, stacked=True))
    add()

    # today's call list
    add([tr.fmt("Today's call list: {n} contacts due today or overdue, by tier, overdue first", n=n_calls)], bold)
    head = [tr("Tier"), tr("Days overdue"), tr("Due"), tr("Channel"), tr("Owner")] + [tr(lbl) for _, lbl, _ in IDENTITY] + \
        [tr("Purpose"), tr("Sheet"), tr("Row")]
    add(head, bold)
    for c in calls[:MAX_CALLS]:
        s = c.source
        i = add([value(s.priority, c.priority), c.days_overdue or None, c.due, value(s.channel, c.channel),
                 value(s.owner, c.owner), *c.who, value(s.purpose, c.purpose), c.sheet, c.row])
        if c.late:
            formats[(i, 1)] = red if float(c.days_overdue).is_integer() else red_part
        if isinstance(c.due, dt.datetime):
            formats[(i, 2)] = moment
    if n_calls > MAX_CALLS:
        add([tr.fmt("{n} more contacts are not listed: sort the customer sheet by Days overdue to see them all",
                    n=n_calls - MAX_CALLS)])
    if not calls:
        add([tr("No contact is due today")])

    widths: dict[int, float] = {0: 16}
    seen: set = set()
    for i, r in enumerate(rows[:FIT_ROWS]):  # the first rows show how wide a column must be
        if i in row_formats and len(r) == 1:  # a heading runs on to the right
            continue
        for j, v in enumerate(r):
            if v is not None and not isinstance(v, dt.date) and (j, v) not in seen:
                seen.add((j, v))
                widths[j] = min(max(widths.get(j, 8), text_width(display(v)) * 1.1 + 2), 40)
    # the due column holds days, and moments (a callback within 72 h) where a source has them
    widths[2] = max(widths.get(2, 8), 18 if any(isinstance(c.due, dt.datetime) for c in calls[:MAX_CALLS]) else 13)
    return NewSheet(tr(PLAN_SHEET), rows, widths=widths, formats=formats, row_formats=row_formats, charts=charts,
                    fit_width=True, also=tuple(x for x in _names() if x != tr(PLAN_SHEET)))


def _names() -> tuple[str, ...]:
    from .i18n import Translator

    return tuple(dict.fromkeys(Translator(lang)(PLAN_SHEET) for lang in ("en", "zh")))


PLAN_SHEETS = _names()
