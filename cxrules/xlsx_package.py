"""The workbook-level parts cxrules edits: workbook.xml, its relationships, content types,
app.xml, and the package's relationships and custom properties (the stamp).

Each is an lxml tree (xmlparts.XmlPart), so what we add takes whatever prefixes the
writer of the workbook chose, and a part we do not change keeps its bytes.
"""
from __future__ import annotations

import dataclasses
import posixpath
import re
import zipfile

from lxml import etree

from .xlsx_read import (
    NS_CUSTOM_PROPS,
    REL_CALCCHAIN,
    REL_CUSTOM_PROPS,
    Rel,
    WorkbookError,
    parse_rels,
    parse_sheets,
    rels_path,
    resolve_target,
    workbook_part,
)
from .xmlparts import NS_CT, NS_MAIN, NS_PKG_REL, NS_REL, NS_VT, PartError, XmlPart, child, children, element, q

WORKBOOK_ORDER = (
    "fileVersion", "fileSharing", "workbookPr", "workbookProtection", "bookViews", "sheets", "functionGroups",
    "externalReferences", "definedNames", "calcPr", "oleSize", "customWorkbookViews", "pivotCaches", "smartTagPr",
    "smartTagTypes", "webPublishing", "fileRecoveryPr", "webPublishObjects", "extLst",
)
CT_FILE = "[Content_Types].xml"
ROOT_RELS = "_rels/.rels"
CUSTOM_PROPS_PART = "docProps/custom.xml"
CT_CUSTOM_PROPS = "application/vnd.openxmlformats-officedocument.custom-properties+xml"
FMTID_USER = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"  # the format id Office gives every user-defined property
# characters XML 1.0 cannot hold: written the way Excel writes them in text (_x001B_)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def rel_target(from_part: str, to_part: str) -> str:
    return posixpath.relpath(to_part, posixpath.dirname(from_part) or ".")


def new_rels(name: str) -> XmlPart:
    return XmlPart.new(name, f'<Relationships xmlns="{NS_PKG_REL}"/>')


def add_rel(rels: XmlPart, type_: str, target: str) -> str:
    """Append a relationship; returns its new Id."""
    ids = {r.get("Id", "") for r in rels.root}
    n = 1
    while f"rId{n}" in ids:
        n += 1
    rid = f"rId{n}"
    element(rels.root, NS_PKG_REL, "Relationship", {"Id": rid, "Type": type_, "Target": target})
    rels.dirty = True
    return rid


def remove_rels(rels: XmlPart, pred) -> int:
    gone = [r for r in rels.root if isinstance(r.tag, str) and pred(r)]
    for r in gone:
        rels.root.remove(r)
    rels.dirty |= bool(gone)
    return len(gone)


class Package:
    """Workbook-level parts held as trees, plus the zip's bookkeeping of what changes."""

    def __init__(self, zin: zipfile.ZipFile, path=""):
        self.zin = zin
        self.path = path
        self.names = set(zin.namelist())
        self.wb_part = workbook_part(zin)
        if self.wb_part not in self.names:
            raise WorkbookError(f"{path}: is not an Excel workbook inside (no workbook part); save it from Excel as .xlsx")
        self.wb_rels_part = rels_path(self.wb_part)
        self.wb = self._load(self.wb_part)
        if etree.QName(self.wb.root).namespace != NS_MAIN:
            raise WorkbookError(f"{path}: its workbook part is not a SpreadsheetML workbook; save it from Excel as 'Excel Workbook (.xlsx)'")
        self.wb_rels = self._load(self.wb_rels_part) if self.wb_rels_part in self.names else new_rels(self.wb_rels_part)
        if CT_FILE not in self.names:
            raise WorkbookError(f"{path}: has no content types part; open it in Excel, let it repair, and save it again")
        self.ct = self._load(CT_FILE)
        self.rels = parse_rels(self.wb_rels.data.decode("utf-8", "replace"), self.wb_part)
        self.sheets = parse_sheets(self.wb.data.decode("utf-8", "replace"), self.rels)
        self.changed: dict[str, object] = {}  # existing part -> new bytes or chunks
        self.removed: set[str] = set()
        self.new_parts: dict[str, object] = {}  # name -> bytes or iterable of bytes
        self.renamed: dict[str, str] = {}  # sheet names changed: old -> new (app.xml titles follow)
        self.root_rels: XmlPart | None = None  # _rels/.rels, loaded when a part is linked from it
        pr = child(self.wb.root, NS_MAIN, "workbookPr")
        self.date1904 = pr is not None and (pr.get("date1904") or "0").lower() in ("1", "true")

    def _load(self, name: str) -> XmlPart:
        try:
            return XmlPart(name, self.zin.read(name))
        except PartError as e:
            raise WorkbookError(f"{self.path}: is damaged: {e}; open it in Excel, let it repair, and save it again") from None

    def read_part(self, name: str) -> XmlPart | None:
        return self._load(name) if name in self.names else None

    # parts
    def rel_of_type(self, type_: str) -> Rel | None:
        return next((r for r in self.rels if r.type == type_), None)

    def remove_part(self, part: str) -> None:
        self.removed.add(part)
        self.new_parts.pop(part, None)
        rp = rels_path(part)
        if rp in self.names:
            self.removed.add(rp)

    def add_part(self, part: str, data, ctype: str | None) -> None:
        self.removed.discard(part)
        if part in self.names:
            self.changed[part] = data
        else:
            self.new_parts[part] = data
        if ctype:
            self.ct_set(part, ctype)

    def taken(self) -> set[str]:
        return (self.names - self.removed) | set(self.new_parts)

    def drop_calc_chain(self) -> bool:
        rel = self.rel_of_type(REL_CALCCHAIN)
        if rel is None:
            return False
        self.remove_part(rel.part)
        remove_rels(self.wb_rels, lambda r: r.get("Type") == REL_CALCCHAIN)
        return True

    # content types: an entry keeps its place, so reruns give the same bytes
    def _override(self, part: str):
        want = "/" + part.lower()
        return next((o for o in children(self.ct.root, NS_CT, "Override") if (o.get("PartName") or "").lower() == want), None)

    def ct_set(self, part: str, ctype: str) -> None:
        o = self._override(part)
        if o is None:
            element(self.ct.root, NS_CT, "Override", {"PartName": "/" + part, "ContentType": ctype})
            self.ct.dirty = True
        elif o.get("ContentType") != ctype:
            o.set("ContentType", ctype)
            self.ct.dirty = True

    def ct_remove(self, part: str) -> None:
        o = self._override(part)
        if o is not None:
            self.ct.root.remove(o)
            self.ct.dirty = True

    # sheets
    def add_sheet(self, name: str, target: str) -> tuple[str, int]:
        """A new worksheet entry pointing at target (relative to the workbook part)."""
        from .xlsx_read import REL_WORKSHEET

        sheets = child(self.wb.root, NS_MAIN, "sheets")
        if sheets is None:
            sheets = element(self.wb.root, NS_MAIN, "sheets", order=WORKBOOK_ORDER)
        rid = add_rel(self.wb_rels, REL_WORKSHEET, target)
        sheet_id = max([s.sheet_id for s in self.sheets] + [0]) + 1
        element(sheets, NS_MAIN, "sheet", {"name": name, "sheetId": str(sheet_id)}, [(NS_REL, "id", rid, "r")])
        self.wb.dirty = True
        return rid, sheet_id

    def rename_sheet(self, sheet, name: str):
        """A sheet cxrules made, renamed (its own sheet, in the workbook's language now)."""
        sheets = child(self.wb.root, NS_MAIN, "sheets")
        for el in children(sheets, NS_MAIN, "sheet") if sheets is not None else []:
            if el.get("name") == sheet.name:
                el.set("name", name)
                self.wb.dirty = True
        self.renamed[sheet.name] = name
        k = next(k for k, s in enumerate(self.sheets) if s is sheet)
        self.sheets[k] = dataclasses.replace(sheet, name=name)
        return self.sheets[k]

    # defined names
    def defined_names(self) -> list:
        dn = child(self.wb.root, NS_MAIN, "definedNames")
        return [] if dn is None else children(dn, NS_MAIN, "definedName")

    def remove_defined_name(self, el) -> None:
        parent = el.getparent()
        parent.remove(el)
        if not len(parent):
            parent.getparent().remove(parent)
        self.wb.dirty = True

    def add_defined_name(self, name: str, value: str, local_sheet: int | None = None, hidden: bool = True) -> None:
        dns = [d for d in children(self.wb.root, NS_MAIN, "definedNames")]
        if not dns:
            dns = [element(self.wb.root, NS_MAIN, "definedNames", order=WORKBOOK_ORDER)]
        a = {"name": name}
        if local_sheet is not None:
            a["localSheetId"] = str(local_sheet)
        if hidden:
            a["hidden"] = "1"
        el = element(dns[0], NS_MAIN, "definedName", a)
        el.text = value
        self.wb.dirty = True

    def set_defined_name_value(self, el, value: str) -> None:
        if el.text != value:
            el.text = value
            self.wb.dirty = True

    # custom document properties
    def set_custom_properties(self, props: dict[str, str | None]) -> str | None:
        """Set these custom properties (None: remove it), keeping every other one, its pid and
        its place; the part and its relationship are made when the package has none. Returns
        why they could not be set, or None. Unchanged values leave the part's bytes alone."""
        if ROOT_RELS not in self.names:
            return "the workbook has no package relationships (_rels/.rels)"
        if self.root_rels is None:
            try:
                self.root_rels = self._load(ROOT_RELS)
            except WorkbookError:
                return "the workbook's package relationships (_rels/.rels) are damaged"
        rel = next((r for r in self.root_rels.root if isinstance(r.tag, str) and r.get("Type") == REL_CUSTOM_PROPS
                    and r.get("TargetMode") != "External"), None)
        part = resolve_target("", rel.get("Target") or "") if rel is not None else None
        if part is not None and part in self.names and part not in self.removed:
            try:
                xml = self._load(part)
            except WorkbookError:
                return f"the workbook's custom document properties ({part}) are damaged"
            if xml.root.tag != q(NS_CUSTOM_PROPS, "Properties"):
                return f"the workbook's custom document properties ({part}) are not in the form Office writes"
            made = False
        else:
            if all(v is None for v in props.values()):
                return None
            if part is None:
                part, n = CUSTOM_PROPS_PART, 2
                taken = {p.casefold() for p in self.taken()}
                while part.casefold() in taken:  # an unlinked part of that name is someone else's
                    part, n = f"docProps/custom{n}.xml", n + 1
                add_rel(self.root_rels, REL_CUSTOM_PROPS, rel_target("", part))
            xml = XmlPart.new(part, f'<Properties xmlns="{NS_CUSTOM_PROPS}" xmlns:vt="{NS_VT}"/>')
            made = True
        _update_properties(xml, props)
        if xml.dirty:
            self.add_part(part, xml.to_bytes(), CT_CUSTOM_PROPS if made else None)
        return None

    def finish(self) -> None:
        for part in self.removed:  # here, not at removal: a part made again keeps its entry's place
            self.ct_remove(part)
        for p in (self.wb, self.wb_rels, self.ct, self.root_rels):
            if p is not None and p.dirty:
                self.add_part(p.name, p.to_bytes(), None)


def _update_properties(xml: XmlPart, props: dict[str, str | None]) -> None:
    """Each named property set to a text value (vt:lpwstr) or removed; a new one gets the
    next free pid (Office numbers them from 2) and goes last."""
    root = xml.root
    tag = q(NS_CUSTOM_PROPS, "property")
    existing = [p for p in root if p.tag == tag]
    pids = [int(p.get("pid")) for p in existing if (p.get("pid") or "").isdigit()]
    next_pid = max(pids + [1]) + 1
    for name, value in props.items():
        mine = [p for p in existing if (p.get("name") or "").casefold() == name.casefold()]
        for extra in mine[1:] if value is not None else mine:
            root.remove(extra)
            xml.dirty = True
        if value is None:
            continue
        value = _NOT_XML.sub(lambda m: f"_x{ord(m.group()):04X}_", value)
        if mine:
            el = mine[0]
            kids = list(el)
            if len(kids) == 1 and kids[0].tag == q(NS_VT, "lpwstr") and (kids[0].text or "") == value:
                continue
            for c in kids:
                el.remove(c)
            el.text = None
        else:
            el = etree.SubElement(root, tag)
            for k, v in (("fmtid", FMTID_USER), ("pid", str(next_pid)), ("name", name)):
                el.set(k, v)
            next_pid += 1
        # the vt prefix in scope is used; where none is, one is declared on the value
        nsmap = None if NS_VT in el.nsmap.values() else {"vt": NS_VT}
        etree.SubElement(el, q(NS_VT, "lpwstr"), nsmap=nsmap).text = value
        xml.dirty = True


def update_app_titles(app: XmlPart, worksheet_names: list[str], added: list[str], renamed: dict | None = None) -> bool:
    """docProps/app.xml lists sheet titles; add ours to the worksheet group and follow
    renamed ones (worksheet_names: the names after renaming). False: left alone."""
    from .xmlparts import NS_EXT_PROPS

    root = app.root
    hp, tp = child(root, NS_EXT_PROPS, "HeadingPairs"), child(root, NS_EXT_PROPS, "TitlesOfParts")
    if hp is None or tp is None or not (added or renamed):
        return False
    hv, tv = child(hp, NS_VT, "vector"), child(tp, NS_VT, "vector")
    if hv is None or tv is None:
        return False
    variants = children(hv, NS_VT, "variant")
    titles = children(tv, NS_VT, "lpstr")
    for t in titles:
        if renamed and t.text in renamed:
            t.text = renamed[t.text]
            app.dirty = True
    if not added:
        return app.dirty
    start = 0
    for k in range(0, len(variants) - 1, 2):
        cnt = variants[k + 1].find(q(NS_VT, "i4"))
        if cnt is None or not (cnt.text or "").strip().isdigit():
            return app.dirty
        n = int(cnt.text.strip())
        if start + n > len(titles):  # counts that do not add up: leave the titles to Excel
            return False
        if [t.text or "" for t in titles[start:start + n]] == worksheet_names:
            anchor = titles[start + n - 1] if n else None
            for a in reversed(added):
                el = etree.Element(q(NS_VT, "lpstr"))
                el.text = a
                if anchor is not None:
                    anchor.addnext(el)
                else:
                    tv.insert(start, el)
            cnt.text = str(n + len(added))
            tv.set("size", str(len(titles) + len(added)))
            app.dirty = True
            return True
        start += n
    return app.dirty


def check_failed(src, what: str) -> WorkbookError:
    return WorkbookError(f"{src}: the result failed its own check ({what}), so the workbook was not changed; "
                         "please report this with the workbook")


def verify_written(path, written: set[str], src, parsed: frozenset = frozenset()) -> None:
    """Re-open the package at `path` and parse every part cxrules wrote into it (those in
    `parsed` were checked as they were written).

    Raises WorkbookError naming the part; the caller then leaves the original as it was.
    """
    from .xmlparts import check_well_formed

    def fail(what: str):
        raise check_failed(src, what) from None

    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            for name in sorted(written):
                if name not in names:
                    fail(f"part {name} is missing")
                if not name.endswith((".xml", ".rels", ".vml")) or name in parsed:
                    continue
                with z.open(name) as f:
                    try:
                        check_well_formed(iter(lambda: f.read(1 << 20), b""), name)
                    except PartError as e:
                        fail(str(e))
            pkg = Package(z, src)
            for s in pkg.sheets:
                if s.part and s.part not in names:
                    fail(f"sheet '{s.name}' points at {s.part}, which is not in the package")
            for o in children(pkg.ct.root, NS_CT, "Override"):
                part = (o.get("PartName") or "").lstrip("/")
                if part in written and part not in names:
                    fail(f"content type for a missing part {part}")
    except (zipfile.BadZipFile, OSError, KeyError) as e:
        fail(f"the package cannot be re-opened: {e}")
