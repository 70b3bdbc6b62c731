"""Sample workbooks: made-up customers and cases to try cxrules on, in English and Chinese.

A sample is drawn from random.Random(seed) alone, so the same seed, language, size and
`as_of` give the same bytes: document properties and zip entry times are fixed and the
zip is rewritten after openpyxl. Each book holds

- a customers sheet whose rows give every tier of the bundled rules and next contact
  dates both overdue and not (in English under a title row, header on row 3; in Chinese
  as an Excel table);
- a cases sheet opened over the last 20 days, nights and weekends included, so every
  escalation level occurs;
- a notes sheet with text, formulas (with cached values), comments and a chart: things
  cxrules does not own and must keep;
- about 1 % bad cells of the kinds people type, each listed in `SampleBook.bad` and on
  the notes sheet: text in number columns, numbers and dates stored as text, Excel
  errors (formula =NA() with the cached error), blanks, formulas with cached values,
  values outside an allowed list.
"""
from __future__ import annotations

import datetime as dt
import io
import math
import random
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from .xlsx_read import col_letter

AS_OF = dt.datetime(2026, 11, 23, 10, 0)
SEED = 2026
LANGS = ("en", "zh")
TIMEZONE = "Asia/Shanghai"  # the bundled rules' zone; as_of is read in it

# ------------------------------------------------------------------ columns
# (key, English header, Chinese header, kind). Keys are the bundled rules' input and
# field names where a rule reads the column; the headers are among their aliases.
CUSTOMER_COLUMNS = [
    ("customer_id", "Customer ID", "客户编号", "id"),
    ("name", "Name", "姓名", "text"),
    ("first_purchase", "First purchase", "首次购买日期", "date"),
    ("last_purchase", "Last purchase", "最近消费日期", "date"),
    ("frequency", "Orders 12m", "消费次数", "int"),
    ("monetary", "Spend 12m", "年消费额", "money"),
    ("previous_tier", "Previous tier", "上期层级", "text"),
    ("rising_months", "Months of rising spend", "消费连续增长月数", "int"),
    ("last_contact", "Last contact", "上次回访日期", "date"),
    ("region", "Region", "地区", "text"),
    ("phone", "Phone", "联系电话", "text"),
    # journeys (rules/journeys.yaml): the dates the team fills in as it works
    ("signed_up_on", "Signed up on", "注册日期", "date"),
    ("welcome_sent_on", "Welcome coupon sent on", "欢迎券发放日期", "date"),
    ("guide_sent_on", "Guide sent on", "新手指南发送日期", "date"),
    ("invite_sent_on", "Community invite sent on", "社群邀请日期", "date"),
    ("survey_sent_on", "Win-back survey sent on", "挽回问卷发送日期", "date"),
    ("replied_on", "Replied on", "回复日期", "date"),
    ("coupon_50_sent_on", "CNY 50 coupon sent on", "50元券发放日期", "date"),
    ("winback_call_on", "Senior callback on", "资深员工回访日期", "date"),
    ("order_completed_on", "Order completed on", "订单完成日期", "date"),
    ("order_survey_sent_on", "Satisfaction survey sent on", "满意度调查发送日期", "date"),
    ("pushes_30d", "Pushes sent 30d", "30天推送次数", "int"),
    ("eligible_pushes_30d", "Eligible pushes 30d", "30天可推送次数", "int"),
]
CASE_COLUMNS = [
    ("case_id", "Case ID", "工单编号", "id"),
    ("customer_id", "Customer ID", "客户编号", "id"),
    ("opened_at", "Opened at", "受理时间", "datetime"),
    ("severity", "Severity", "严重程度", "text"),
    ("tier", "Tier", "客户层级", "text"),
    ("kind", "Case type", "工单类型", "text"),
    ("status", "Status", "状态", "text"),
    ("prior_complaints", "Prior complaints", "历史投诉次数", "int"),
    ("failure", "Failure type", "问题类型", "text"),
    ("score", "NPS score", "推荐评分", "int"),
    ("resolved_at", "Resolved at", "解决时间", "datetime"),
    ("callback_at", "Callback at", "回访时间", "datetime"),
    ("review_opened_on", "Review opened on", "复盘立案日期", "date"),
    ("vip_problem", "Problem raised in callback", "回访提出问题", "text"),
    ("management_follow_up_at", "Management follow-up at", "管理层跟进时间", "datetime"),
]
MEASURE_COLUMNS = [
    ("measure_date", "Measure date", "指标日期", "date"),
    ("department", "Department", "部门", "text"),
    ("net_promoter_score", "Net Promoter Score", "净推荐值", "score"),
    ("churn_percent", "Churn rate (%)", "流失率(%)", "score"),
    ("negative_feedback", "Negative feedback", "负面反馈数", "int"),
]
SHEETS = {
    "en": {"customers": "Customers", "cases": "Cases", "notes": "Notes", "measures": "Measures"},
    "zh": {"customers": "客户", "cases": "工单", "notes": "备注", "measures": "指标"},
}
FORMATS = {
    "en": {"date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm", "money": "#,##0.00", "int": "0", "score": "0.0"},
    "zh": {"date": "yyyy/m/d", "datetime": "yyyy-mm-dd hh:mm", "money": "#,##0.00", "int": "0", "score": "0.0"},
}

# ------------------------------------------------------------------ bad cells
# kind -> (English, Chinese, does evaluating the row report a row problem for the cell?)
BAD_KINDS = {
    "text-number": ("text in a number column", "数字列中填了文字", True),
    "number-as-text": ("number stored as text (read as the number)", "以文本形式存储的数字（按数字读取）", False),
    "date-as-text": ("date stored as text (read as the date)", "以文本形式存储的日期（按日期读取）", False),
    "bad-date": ("text that is not a date", "日期列中填了非日期文字", True),
    "error": ("Excel error value", "Excel 错误值", True),
    "blank": ("blank in a required column", "必填列为空", False),
    "formula": ("formula (its cached value is read)", "公式（读取缓存值）", False),
    "not-allowed": ("value outside the allowed list", "不在允许值列表中的值", True),
}


@dataclass(frozen=True)
class Formula:
    """A formula cell written with its cached value (`error` for an Excel error such as #N/A)."""

    text: str  # without the leading '='
    cached: object
    error: bool = False


@dataclass(frozen=True)
class BadCell:
    """One planted bad cell: where it is, what it is, and what reading it should give."""

    sheet: str
    cell: str  # e.g. "F57"
    row: int  # Excel row number
    key: str  # the column key (the rule set's input or field name)
    header: str
    kind: str  # a key of BAD_KINDS
    written: object  # what the cell holds (a Formula for formulas and errors, None for blanks)
    value: object = None  # for kinds read without a problem: the value it must read as

    @property
    def problem(self) -> bool:
        return BAD_KINDS[self.kind][2]


@dataclass
class SampleBook:
    """A sample before it is written: rows of cell values keyed by column key."""

    lang: str
    seed: int
    as_of: dt.datetime
    customers: list[dict] = field(default_factory=list)
    cases: list[dict] = field(default_factory=list)
    bad: list[BadCell] = field(default_factory=list)
    customers_header_row: int = 1
    cases_header_row: int = 1
    measures: list[dict] = field(default_factory=list)

    @property
    def sheets(self) -> dict[str, str]:
        return SHEETS[self.lang]


# ------------------------------------------------------------------ vocabularies
PINYIN_SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu", "Hu",
                   "Guo", "He", "Gao", "Lin", "Luo", "Zheng", "Liang", "Xie", "Song", "Tang", "Han", "Feng", "Deng", "Cao", "Peng"]
PINYIN_GIVEN = ["Wei", "Fang", "Na", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang", "Yong", "Yan", "Jie", "Juan", "Tao",
                "Ming", "Chao", "Xiuying", "Xia", "Ping", "Gang", "Hui", "Yu", "Hao", "Xin", "Yiting", "Zixuan", "Haoran", "Yuxin", "Jiahao"]
ENGLISH_GIVEN = ["Emily", "David", "Grace", "Kevin", "Amy", "Jason", "Linda", "Michael", "Sophie", "Eric", "Vivian", "Tony",
                 "Cindy", "Frank", "Helen", "Jack", "Lucy", "Peter", "Sally", "Vincent"]
HAN_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万严武戴孔汤"
HAN_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英霞平刚桂华玉兰萍红鹏辉建国宇浩晨欣怡涵轩婷雪琳佳瑶子博文斌俊凯鑫"
REGIONS = [("Shanghai", "上海", 14), ("Beijing", "北京", 12), ("Guangzhou", "广州", 9), ("Shenzhen", "深圳", 10), ("Hangzhou", "杭州", 8),
           ("Chengdu", "成都", 7), ("Wuhan", "武汉", 6), ("Nanjing", "南京", 6), ("Xi'an", "西安", 5), ("Chongqing", "重庆", 5),
           ("Suzhou", "苏州", 5), ("Tianjin", "天津", 4), ("Changsha", "长沙", 4), ("Qingdao", "青岛", 3), ("Xiamen", "厦门", 2)]

# archetype -> (share of customers, the tier the team last recorded for it)
ARCHETYPES = [
    ("vip", 0.025, "VIP"),
    ("lapsed_high", 0.02, "Churn risk"),
    ("high_value", 0.08, "High value"),
    ("promoted", 0.015, "High value"),
    ("big_spender", 0.10, None),  # High value when bought within 90 days (top 20 % by spend), else Regular
    ("potential", 0.10, "Potential"),
    ("new", 0.05, "New"),
    ("churn", 0.06, "Churn risk"),
    ("dormant", 0.05, "Churn risk"),
    ("regular", None, "Regular"),  # the rest
]
RECORDED_TIER = {arch: tier for arch, _share, tier in ARCHETYPES}
# The values a Chinese team writes: spellings the bundled rules list under `values:`
ZH_VALUES = {
    "VIP": "贵宾客户", "High value": "高价值客户", "Potential": "潜力客户", "New": "新客户", "Churn risk": "流失风险客户",
    "Regular": "普通客户", "Urgent": "紧急", "Complex": "复杂", "Normal": "一般", "Minor": "轻微",
    "Complaint": "投诉", "Question": "咨询", "Repair": "维修", "Open": "待处理", "In progress": "处理中",
    "Resolved": "已解决", "Closed": "已关闭", "Money loss": "资金损失", "Faulty product": "产品故障",
    "Failed service": "服务失误", "Neglect": "怠慢",
}
ZH_KEYS = ("previous_tier", "severity", "tier", "kind", "status", "failure")
CADENCE = {"VIP": 14, "High value": 7, "Potential": 7, "New": 3, "Churn risk": 7, "Regular": 90}


def _pick(rng: random.Random, weighted):
    """One item of [(item, weight), ...]."""
    items, weights = zip(*weighted)
    return rng.choices(items, weights)[0]


def _money(rng: random.Random, lo: float, hi: float) -> float:
    """A spend between lo and hi, log-uniform (most near lo), to the fen."""
    return round(math.exp(rng.uniform(math.log(lo), math.log(hi))), 2)


def _name(rng: random.Random, lang: str) -> str:
    if lang == "zh":
        given = rng.choice(HAN_GIVEN) + (rng.choice(HAN_GIVEN) if rng.random() < 0.7 else "")
        return rng.choice(HAN_SURNAMES) + given
    surname = rng.choice(PINYIN_SURNAMES)
    if rng.random() < 0.3:
        return f"{rng.choice(ENGLISH_GIVEN)} {surname}"
    return f"{surname} {rng.choice(PINYIN_GIVEN)}"


def _phone(rng: random.Random, lang: str) -> str:
    digits = "1" + rng.choice("35789") + "".join(rng.choice("0123456789") for _ in range(9))
    if lang == "zh":
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    return f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}"


# ------------------------------------------------------------------ customers
def _customer(rng: random.Random, arch: str, today: dt.date) -> tuple[dict, str]:
    """One customer of an archetype, and the tier the team last recorded for it."""
    prev, rising = None, _pick(rng, [(0, 55), (1, 30), (2, 10), (3, 5)])
    tier = RECORDED_TIER[arch]
    fresh = False
    if arch == "vip":
        recency, freq = rng.randint(0, 45), rng.randint(8, 60)
        spend = _money(rng, 500_000, 2_500_000)
        prev = _pick(rng, [("VIP", 85), ("High value", 15)])
    elif arch == "lapsed_high":
        recency, freq = rng.randint(91, 240), rng.randint(1, 8)
        spend = _money(rng, 3_000, 400_000)
        prev = _pick(rng, [("VIP", 25), ("High value", 75)])
    elif arch == "high_value":
        recency, freq = rng.randint(0, 29), rng.randint(5, 40)
        spend = _money(rng, 5_000, 150_000)
        prev = _pick(rng, [("High value", 60), ("Potential", 20), ("Regular", 15), ("VIP", 5)])
    elif arch == "promoted":
        recency, freq = rng.randint(30, 90), rng.randint(2, 4)
        spend = _money(rng, 2_000, 4_999)
        prev, rising = "Potential", rng.randint(2, 4)
    elif arch == "big_spender":
        recency, freq = rng.randint(31, 150), rng.randint(2, 10)
        spend = _money(rng, 5_000, 40_000)
        prev = _pick(rng, [("Regular", 60), ("Potential", 25), ("High value", 15)]) if recency <= 90 else "Regular"
        tier = "High value" if recency <= 90 else "Regular"
    elif arch == "potential":
        recency, freq = rng.randint(0, 29), rng.randint(2, 4)
        spend = _money(rng, 2_000, 4_999.99)
        prev = _pick(rng, [("Potential", 40), ("Regular", 35), ("New", 25)])
        if prev == "Potential":
            rising = min(rising, 1)
    elif arch == "new":
        recency, freq = rng.randint(0, 6), 1
        spend = _money(rng, 49, 1_999)
        fresh = rng.random() < 0.8
        prev = None if fresh else _pick(rng, [("Churn risk", 60), ("Regular", 40)])
        rising = 0
    elif arch == "churn":
        recency = rng.randint(91, 420)
        freq = 1 if recency <= 365 else 0
        spend = _money(rng, 30, 999) if freq else 0
        prev = _pick(rng, [("Regular", 50), ("New", 20), ("Churn risk", 20), (None, 10)])
        rising = 0
    elif arch == "dormant":
        recency = rng.randint(181, 700)
        freq = rng.randint(1, 4) if recency <= 365 else 0
        spend = _money(rng, 100, 8_000) if freq else 0
        prev = _pick(rng, [("Regular", 50), ("Potential", 20), ("Churn risk", 30)])
        rising = 0
    else:  # regular
        prev = _pick(rng, [("Regular", 75), ("Potential", 10), ("New", 8), ("Churn risk", 4), (None, 3)])
        if prev == "Potential":
            rising = min(rising, 1)
        if rng.random() < 0.4:  # bought lately, but not in the potential or high-value box
            recency = rng.randint(0, 29)
            freq, spend = _pick(rng, [
                ((1, _money(rng, 200, 4_500)), 40),
                ((rng.randint(5, 12), _money(rng, 800, 4_900)), 35),
                ((rng.randint(2, 4), _money(rng, 100, 1_999)), 25),
            ])
        else:
            recency, freq = rng.randint(30, 180), rng.randint(1, 8)
            spend = _money(rng, 100, 4_900)
    last = today - dt.timedelta(days=recency)
    if fresh:
        first = last
    elif arch == "new":
        first = last - dt.timedelta(days=rng.randint(400, 1500))
    else:
        first = last - dt.timedelta(days=rng.randint(max(30, 10 * freq), 2500))
    cadence = CADENCE[tier]
    if arch == "new" and fresh:
        cadence = 1
    since = rng.randint(0, int(cadence * 1.6) + 1)
    contact = max(first, today - dt.timedelta(days=since))
    return {
        "first_purchase": first, "last_purchase": last, "frequency": freq, "monetary": spend,
        "previous_tier": prev, "rising_months": rising, "last_contact": contact,
    }, tier


def _customers(rng: random.Random, lang: str, n: int, today: dt.date) -> tuple[list[dict], list[str]]:
    plan = []
    for arch, share, _ in ARCHETYPES:
        if share is not None:
            plan += [arch] * max(1, round(share * n))
    plan += ["regular"] * (n - len(plan))
    rng.shuffle(plan)
    rows, tiers = [], []
    regions = [((en, zh), w) for en, zh, w in REGIONS]
    for i, arch in enumerate(plan):
        values, tier = _customer(rng, arch, today)
        region = _pick(rng, regions)
        row = {"customer_id": f"C{100001 + i}", "name": _name(rng, lang), **values,
               "region": region[0] if lang == "en" else region[1], "phone": _phone(rng, lang)}
        rows.append(row)
        tiers.append(tier)
    return rows, tiers


# ------------------------------------------------------------------ cases
def _opened_at(rng: random.Random, as_of: dt.datetime) -> dt.datetime:
    """A moment in the last 20 days: more on weekdays and recent days, some nights."""
    while True:
        days = _pick(rng, [(d, (3.0 if d == 0 else 1.6 if d <= 2 else 1.0)) for d in range(20)])
        day = as_of.date() - dt.timedelta(days=days)
        weekend = day.weekday() >= 5
        if weekend and rng.random() < 0.45:
            continue
        hour = _pick(rng, [(h, 6 if 9 <= h < 18 else 2 if 18 <= h < 23 else 0.6) for h in range(24)])
        t = dt.datetime.combine(day, dt.time(hour, rng.randint(0, 59)))
        if t <= as_of - dt.timedelta(minutes=5):
            return t


def _status(rng: random.Random, age_hours: float) -> str:
    if age_hours < 24:
        w = [("Open", 65), ("In progress", 30), ("Resolved", 5)]
    elif age_hours < 72:
        w = [("Open", 30), ("In progress", 40), ("Resolved", 25), ("Closed", 5)]
    elif age_hours < 168:
        w = [("Open", 12), ("In progress", 20), ("Resolved", 40), ("Closed", 28)]
    else:
        w = [("Open", 4), ("In progress", 7), ("Resolved", 29), ("Closed", 60)]
    return _pick(rng, w)


def _cases(rng: random.Random, lang: str, n: int, as_of: dt.datetime, customers: list[dict], tiers: list[str]) -> list[dict]:
    times = [_opened_at(rng, as_of) for _ in range(n)]
    for k in range(min(6, n)):  # a few in the last hours
        times[k] = as_of - dt.timedelta(minutes=rng.randint(10, 180))
    times.sort()
    # valuable customers raise more cases
    weight = {"VIP": 6, "High value": 3, "Potential": 1.5, "New": 1.5, "Churn risk": 0.5, "Regular": 1}
    who = rng.choices(range(len(customers)), [weight[t] for t in tiers], k=n)
    per_day: dict[dt.date, int] = {}
    rows = []
    for i, (t, c) in enumerate(zip(times, who)):
        per_day[t.date()] = per_day.get(t.date(), 0) + 1
        case_id = f"CS-{10001 + i}" if lang == "en" else f"GD{t:%Y%m%d}{per_day[t.date()]:03d}"
        kind = _pick(rng, [("Complaint", 35), ("Question", 40), ("Repair", 25)])
        status = _status(rng, (as_of - t).total_seconds() / 3600)
        if kind == "Complaint":
            failure = _pick(rng, [("Money loss", 25), ("Faulty product", 25), ("Failed service", 30), ("Neglect", 20)])
        elif kind == "Repair":
            failure = _pick(rng, [("Faulty product", 70), ("Failed service", 30)])
        else:
            failure = _pick(rng, [(None, 85), ("Neglect", 15)])
        score = None
        if status in ("Resolved", "Closed") and rng.random() < 0.75:
            score = _pick(rng, [(s, w) for s, w in zip(range(11), [2, 1, 1, 2, 2, 4, 5, 8, 14, 22, 20])])
        rows.append({
            "case_id": case_id, "customer_id": customers[c]["customer_id"], "opened_at": t,
            "severity": _pick(rng, [("Urgent", 4), ("Complex", 14), ("Normal", 62), ("Minor", 20)]),
            "tier": tiers[c], "kind": kind, "status": status,
            "prior_complaints": _pick(rng, [(0, 70), (1, 18), (2, 8), (3, 3), (5, 1)]),
            "failure": failure, "score": score,
        })
    return rows


# ------------------------------------------------------------------ journeys
def _done(rng: random.Random, due: dt.date, today: dt.date, p: float) -> dt.date | None:
    """The day the team did a step due on `due`: mostly on time, sometimes a day late, some not yet."""
    if due > today or rng.random() > p:
        return None
    return min(today, due + dt.timedelta(days=_pick(rng, [(0, 70), (1, 25), (2, 5)])))


def _journey_facts(rng: random.Random, customers: list[dict], tiers: list[str], cases: list[dict], as_of: dt.datetime, lang: str) -> None:
    """Dated facts for rules/journeys.yaml, so that every step of every journey occurs."""
    today = as_of.date()
    for row, tier in zip(customers, tiers):
        recency = (today - row["last_purchase"]).days
        fresh = row["first_purchase"] == row["last_purchase"] and recency <= 6
        if fresh or (tier in ("VIP", "High value") and rng.random() < 0.08):  # new, or newly joined the app
            up = today - dt.timedelta(days=rng.randint(0, 14))
            row["signed_up_on"] = up
            row["welcome_sent_on"] = w = _done(rng, up, today, 0.9)
            if w:
                row["guide_sent_on"] = g = _done(rng, up + dt.timedelta(days=3), today, 0.85)
                if g:
                    row["invite_sent_on"] = _done(rng, up + dt.timedelta(days=7), today, 0.85)
        if recency >= 90:
            start = row["last_purchase"] + dt.timedelta(days=90)
            row["survey_sent_on"] = sv = _done(rng, start, today, 0.85)
            if sv and rng.random() < 0.3:
                row["replied_on"] = min(today, sv + dt.timedelta(days=rng.randint(1, 9)))
            if sv and not row.get("replied_on"):
                row["coupon_50_sent_on"] = c = _done(rng, sv + dt.timedelta(days=7), today, 0.85)
                if c:
                    row["winback_call_on"] = _done(rng, c + dt.timedelta(days=14), today, 0.6)
        elif recency < 30 and not fresh and rng.random() < 0.03:  # won back: the survey went out, then a purchase
            row["survey_sent_on"] = row["last_purchase"] - dt.timedelta(days=rng.randint(3, 12))
        if recency <= 8:
            done = min(today, row["last_purchase"] + dt.timedelta(days=rng.randint(0, 2)))
            row["order_completed_on"] = done
            row["order_survey_sent_on"] = _done(rng, done + dt.timedelta(days=3), today, 0.7)
        if tier in ("VIP", "High value"):
            sent = rng.randint(0, 12)
            row["pushes_30d"], row["eligible_pushes_30d"] = sent, sent + rng.randint(1, 10)
    yes, no = ("Yes", "No") if lang == "en" else ("是", "否")
    for row in cases:
        if row["kind"] != "Complaint" or row["status"] not in ("Resolved", "Closed"):
            continue
        span = (as_of - row["opened_at"]).total_seconds() / 3600
        resolved = row["opened_at"] + dt.timedelta(hours=rng.uniform(0.5, max(0.6, span * 0.7)))
        resolved = resolved.replace(second=0, microsecond=0)
        row["resolved_at"] = resolved
        if row["score"] is None:
            continue
        left = (as_of - resolved).total_seconds() / 3600
        callback = (resolved + dt.timedelta(hours=rng.uniform(0.2, min(left, 80)))).replace(second=0, microsecond=0)
        row["callback_at"] = callback
        if row["score"] < 8 and (as_of - callback).days >= 1 and rng.random() < 0.5:
            row["review_opened_on"] = callback.date() + dt.timedelta(days=rng.randint(0, 1))
        if row["tier"] == "VIP":
            raised = rng.random() < 0.6
            row["vip_problem"] = yes if raised else no
            if raised and rng.random() < 0.5:
                at = callback + dt.timedelta(hours=rng.randint(2, 20))
                if at <= as_of:
                    row["management_follow_up_at"] = at


# ------------------------------------------------------------------ planting bad cells
def _date_text(d: dt.date, style: str) -> str:
    if style == "slash":
        return f"{d:%Y/%m/%d}"
    if style == "han":
        return f"{d.year}年{d.month}月{d.day}日"
    return d.isoformat()


def _plan_customers(lang: str, as_of: dt.datetime):
    """(kind, key, how) for the customers sheet: `how` makes the cell from the row's value,
    and for kinds read without a problem also gives the value it must read as."""
    zh = lang == "zh"
    text = lambda en, cn: (lambda v: cn if zh else en)  # noqa: E731
    return [
        ("text-number", "monetary", text("n/a", "无")),
        ("text-number", "monetary", text("about 300", "约300")),
        ("text-number", "frequency", text("n/a", "不详")),
        ("text-number", "rising_months", text("unknown", "未知")),
        ("number-as-text", "monetary", lambda v: (str(round(v)), round(v))),
        ("number-as-text", "monetary", lambda v: (f"{v:,.2f}", v)),
        ("number-as-text", "frequency", lambda v: (str(v), v)),
        ("date-as-text", "last_purchase", lambda v: (_date_text(v, "slash"), v)),
        ("date-as-text", "last_purchase", lambda v: (_date_text(v, "iso"), v)),
        ("date-as-text", "last_purchase", lambda v: (_date_text(v, "han"), v)),
        ("date-as-text", "first_purchase", lambda v: (_date_text(v, "iso"), v)),
        ("date-as-text", "last_contact", lambda v: (_date_text(v, "slash"), v)),
        ("bad-date", "last_purchase", text("early Nov", "上月底")),
        ("bad-date", "last_contact", lambda v: f"{as_of.year}-02-30"),
        ("bad-date", "first_purchase", lambda v: str(v.year)),
        ("error", "monetary", lambda v: Formula("NA()", "#N/A", True)),
        ("error", "monetary", lambda v: Formula("NA()", "#N/A", True)),
        ("error", "last_purchase", lambda v: Formula("NA()", "#N/A", True)),
        ("blank", "last_purchase", None),
        ("blank", "last_purchase", None),
        ("blank", "monetary", None),
        ("blank", "frequency", None),
        ("blank", "last_contact", None),
        ("blank", "last_contact", None),
        ("formula", "monetary", None),
        ("formula", "frequency", None),
    ]


def _plan_cases(lang: str):
    zh = lang == "zh"
    text = lambda en, cn: (lambda v: cn if zh else en)  # noqa: E731
    return [
        ("date-as-text", "opened_at", lambda v: (f"{v:%Y-%m-%d %H:%M}", v)),
        ("date-as-text", "opened_at", lambda v: (f"{v:%Y/%m/%d} {v.hour}:{v.minute:02d}", v)),
        ("bad-date", "opened_at", text("yesterday pm", "昨天下午")),
        ("blank", "opened_at", None),
        ("not-allowed", "severity", text("Urgnet", "特急")),
        ("blank", "severity", None),
        ("blank", "status", None),
        ("text-number", "prior_complaints", text("n/a", "无")),
        ("number-as-text", "prior_complaints", lambda v: (str(v), v)),
        ("formula", "prior_complaints", None),
        ("error", "score", lambda v: Formula("NA()", "#N/A", True)),
        ("text-number", "score", text("8 or 9", "8分")),
        ("not-allowed", "failure", text("Lost parcel", "物流丢件")),
    ]


MEASURE_DAYS = 21
DEPARTMENTS = ["After-sales", "Delivery", "Online store"]
ZH_DEPARTMENTS = {"After-sales": "售后服务部", "Delivery": "物流配送部", "Online store": "线上商城部"}


def _measures(seed: int, lang: str, today: dt.date) -> list[dict]:
    """Daily measures per department for the 21 days to `today`, made so that at `today`
    each bundled alert fires once and its edge case does not:

    - NPS: Online store exactly 5 % below a week earlier (alert); After-sales 4.7 % below (none);
    - churn above 5 %: Delivery three days running (alert); After-sales two days (none);
    - negative feedback in the last 7 days: Online store 30 or more (plan); the others below.
    Before those days the figures move within ±1 point and stay below every threshold. A
    random stream of its own, so the customers and cases are those of a book without it.
    """
    rng = random.Random(seed * 7919 + 1)
    base = {"After-sales": (64.0, 3.6, 2), "Delivery": (58.0, 4.0, 3), "Online store": (60.0, 3.2, 2)}
    last = {"After-sales": (61.0, [5.3, 5.8], [3, 2, 4]), "Delivery": (57.0, [5.2, 5.6, 6.1], [3, 3, 3]),
            "Online store": (57.0, [], [7, 8, 9])}
    rows = []
    for k in range(MEASURE_DAYS):
        day = today - dt.timedelta(days=MEASURE_DAYS - 1 - k)
        back = (today - day).days  # 0 today
        for dep in DEPARTMENTS:
            nps, churn, neg = base[dep]
            nps = round(nps + rng.uniform(-1, 1), 1)
            churn = round(churn + rng.uniform(-0.5, 0.5), 1)
            neg = neg + rng.randint(0, 1)
            end_nps, end_churn, end_neg = last[dep]
            if back == 7:
                nps = {"After-sales": 64.0, "Delivery": 58.0, "Online store": 60.0}[dep]  # a week before the last day
            if back == 0:
                nps = end_nps
            if back < len(end_churn):
                churn = end_churn[len(end_churn) - 1 - back]
            elif back == len(end_churn):
                churn = 4.5  # the day before a run: at or below 5 %
            if back < len(end_neg):
                neg = end_neg[len(end_neg) - 1 - back]
            rows.append({"measure_date": day, "department": ZH_DEPARTMENTS[dep] if lang == "zh" else dep,
                         "net_promoter_score": nps, "churn_percent": churn, "negative_feedback": neg})
    return rows


def _formula_for(rng: random.Random, value):
    """A sum someone typed instead of the number; its cached value is the number."""
    whole = int(round(value))
    a = rng.randint(1, whole - 1)
    return Formula(f"{a}+{whole - a}", whole), whole


def _plant(rng, rows, plan, columns, sheet, first_row, lang, kind_check):
    """Put the planned bad cells in distinct random rows (chosen so the kind makes sense)."""
    col_of = {key: j for j, (key, *_r) in enumerate(columns)}
    header_of = {key: (en if lang == "en" else zh) for key, en, zh, _k in columns}
    used: set[int] = set()
    bad = []
    for kind, key, how in plan:
        for _ in range(200):
            i = rng.randrange(len(rows))
            if i not in used and kind_check(kind, key, rows[i]):
                break
        else:
            raise ValueError(f"the sample is too small to plant a '{kind}' cell in {key}")
        used.add(i)
        original = rows[i][key]
        value = None
        if kind == "blank":
            written = None
        elif kind == "formula":
            written, value = _formula_for(rng, original)
        elif BAD_KINDS[kind][2]:
            written = how(original)
        else:
            written, value = how(original)
        rows[i][key] = written
        row_no = first_row + i
        bad.append(BadCell(sheet, f"{col_letter(col_of[key])}{row_no}", row_no, key, header_of[key], kind, written, value))
    bad.sort(key=lambda b: (b.row, b.cell))
    return bad


def _fits_customer(kind, key, row) -> bool:
    v = row[key]
    if v is None:
        return False
    if kind == "number-as-text" and key == "monetary":
        return v >= 1000
    if kind == "formula":
        return v >= 10 if key == "monetary" else v >= 2
    return True


def _fits_case(kind, key, row) -> bool:
    v = row[key]
    if key == "prior_complaints" and kind in ("number-as-text", "formula"):
        return v >= 1 if kind == "number-as-text" else v >= 2
    if key == "failure":
        return v is not None
    if key == "score":
        return v is not None
    return True


# ------------------------------------------------------------------ the book
def build_sample(seed: int = SEED, lang: str = "en", as_of: dt.datetime = AS_OF, n_customers: int = 3000, n_cases: int = 600) -> SampleBook:
    """The rows, bad cells and layout of one sample, without writing it."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, not '{lang}'")
    if n_customers < 100 or n_cases < 40:
        raise ValueError("a sample needs at least 100 customers and 40 cases to show every tier and level")
    rng = random.Random(seed)
    book = SampleBook(lang, seed, as_of)
    book.customers_header_row = 3 if lang == "en" else 1  # en: title and blank row above; zh: an Excel table
    book.cases_header_row = 1
    customers, tiers = _customers(rng, lang, n_customers, as_of.date())
    cases = _cases(rng, lang, n_cases, as_of, customers, tiers)
    # a stream of its own, so the columns above are drawn as before
    _journey_facts(random.Random(f"{seed}-journeys"), customers, tiers, cases, as_of, lang)
    if lang == "zh":  # a Chinese team writes its values in Chinese too
        for row in customers + cases:
            for key in ZH_KEYS:
                if row.get(key) in ZH_VALUES:
                    row[key] = ZH_VALUES[row[key]]
    sheets = SHEETS[lang]
    book.bad = _plant(rng, customers, _plan_customers(lang, as_of), CUSTOMER_COLUMNS, sheets["customers"],
                      book.customers_header_row + 1, lang, _fits_customer)
    book.bad += _plant(rng, cases, _plan_cases(lang), CASE_COLUMNS, sheets["cases"], book.cases_header_row + 1, lang, _fits_case)
    book.customers, book.cases = customers, cases
    book.measures = _measures(seed, lang, as_of.date())
    return book


def write_sample(path, seed: int = SEED, lang: str = "en", as_of: dt.datetime = AS_OF, n_customers: int = 3000, n_cases: int = 600) -> Path:
    """Write one sample workbook; the same arguments always give the same bytes."""
    path = Path(path)
    book = build_sample(seed, lang, as_of, n_customers, n_cases)
    data = _render(book)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_samples(out_dir, seed: int = SEED, as_of: dt.datetime = AS_OF) -> list[Path]:
    """Write sample_en.xlsx and sample_zh.xlsx into out_dir."""
    out = Path(out_dir)
    return [write_sample(out / f"sample_{lang}.xlsx", seed, lang, as_of) for lang in LANGS]


# ------------------------------------------------------------------ rendering
NOTES_TEXT = {
    "en": [
        "About this workbook",
        "Sample data made by cxrules (seed {seed}, as of {as_of:%Y-%m-%d %H:%M}); every customer and case is made up.",
        "Customers: one row per customer; orders and spend cover the last 12 months, in CNY.",
        "Cases: service cases opened in the last 20 days; cxrules fills in deadlines, escalation levels and offers.",
        "Measures: daily NPS, churn rate and negative feedback per department; cxrules writes the alerts beside them.",
        "Try: cxrules recalc {file}",
    ],
    "zh": [
        "关于本工作簿",
        "cxrules 生成的示例数据（种子 {seed}，截至 {as_of:%Y-%m-%d %H:%M}）；客户与工单均为虚构。",
        "客户：每位客户一行；消费次数与年消费额为近 12 个月，单位：元。",
        "工单：近 20 天受理的服务工单；cxrules 会填写响应与解决时限、升级级别和补偿方案。",
        "指标：各部门每日的净推荐值、流失率和负面反馈数；cxrules 在旁边写出预警。",
        "试一试：cxrules recalc {file}",
    ],
}
NOTES_LABELS = {
    "en": {"summary": "Summary", "customers": "Customers", "cases": "Cases", "open": "Open cases",
           "by_severity": "Cases by severity", "count": "Cases", "chart": "Cases by severity",
           "bad_title": "Cells with known problems (planted so that cxrules can be seen reporting them)",
           "bad_head": ["Sheet", "Cell", "Column", "Problem", "As typed"],
           "title": "Customer list - export of {as_of:%Y-%m-%d %H:%M}",
           "comment_spend": "Paid orders of the last 12 months in CNY, net of refunds.",
           "comment_count": "Counts the Customer ID column; keep it filled.",
           "blank": "(blank)"},
    "zh": {"summary": "汇总", "customers": "客户数", "cases": "工单数", "open": "未结工单",
           "by_severity": "按严重程度统计", "count": "工单数", "chart": "各严重程度工单数",
           "bad_title": "已知有问题的单元格（特意放入，用来查看 cxrules 的报告）",
           "bad_head": ["工作表", "单元格", "列", "问题", "填写内容"],
           "title": "",
           "comment_spend": "近 12 个月已付款订单金额（元），已扣除退款。",
           "comment_count": "统计客户编号列；请勿留空。",
           "blank": "（空）"},
}
SEVERITIES = ["Urgent", "Complex", "Normal", "Minor"]


def _render(book: SampleBook) -> bytes:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.table import Table, TableStyleInfo

    lang, sheets, fmt = book.lang, book.sheets, FORMATS[book.lang]
    labels = NOTES_LABELS[lang]
    formulas: dict[str, dict[str, Formula]] = {}  # sheet -> cell -> formula with its cached value
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDEBF7")

    wb = Workbook()
    wb.remove(wb.active)

    def put(ws, row, col, value, kind):
        c = ws.cell(row=row, column=col)
        if isinstance(value, Formula):
            c.value = "=" + value.text
            formulas.setdefault(ws.title, {})[c.coordinate] = value
        else:
            c.value = value
        if kind in fmt and not isinstance(value, str):
            c.number_format = fmt[kind]
        return c

    def table_sheet(title, columns, rows, header_row, widths):
        ws = wb.create_sheet(title)
        for j, (key, en, zh, _kind) in enumerate(columns, 1):
            c = ws.cell(row=header_row, column=j, value=en if lang == "en" else zh)
            c.font, c.fill = bold, head_fill
            ws.column_dimensions[col_letter(j - 1)].width = widths.get(_kind, 14)
        for i, r in enumerate(rows, header_row + 1):
            for j, (key, _en, _zh, kind) in enumerate(columns, 1):
                put(ws, i, j, r.get(key), kind)
        ws.freeze_panes = f"A{header_row + 1}"
        return ws

    widths = {"id": 14, "text": 16, "date": 14, "datetime": 18, "money": 14, "int": 12}
    hr = book.customers_header_row
    last_col = col_letter(len(CUSTOMER_COLUMNS) - 1)
    cust = table_sheet(sheets["customers"], CUSTOMER_COLUMNS, book.customers, hr, widths)
    spend_col = next(j for j, c in enumerate(CUSTOMER_COLUMNS, 1) if c[0] == "monetary")
    cust.cell(row=hr, column=spend_col).comment = Comment(labels["comment_spend"], "CX team")
    if lang == "en":
        cust["A1"] = labels["title"].format(as_of=book.as_of)
        cust["A1"].font = Font(bold=True, size=14)
        cust.merge_cells(f"A1:{last_col}1")
        cust.auto_filter.ref = f"A{hr}:{last_col}{hr + len(book.customers)}"
    else:
        t = Table(displayName="tblCustomers", ref=f"A{hr}:{last_col}{hr + len(book.customers)}")
        t.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
        cust.add_table(t)

    cases = table_sheet(sheets["cases"], CASE_COLUMNS, book.cases, book.cases_header_row, widths)
    case_last = col_letter(len(CASE_COLUMNS) - 1)
    cases.auto_filter.ref = f"A{book.cases_header_row}:{case_last}{book.cases_header_row + len(book.cases)}"

    # notes: text, formulas with cached values, a comment and a chart
    notes = wb.create_sheet(sheets["notes"])
    for letter, width in zip("ABCDE", (22, 12, 18, 36, 18)):
        notes.column_dimensions[letter].width = width
    for k, line in enumerate(NOTES_TEXT[lang], 1):
        notes.cell(row=k, column=1, value=line.format(seed=book.seed, as_of=book.as_of, file=f"sample_{lang}.xlsx"))
    notes["A1"].font = Font(bold=True, size=14)
    r0 = len(NOTES_TEXT[lang]) + 2
    notes.cell(row=r0, column=1, value=labels["summary"]).font = bold
    q = lambda s: "'" + s.replace("'", "''") + "'"  # noqa: E731
    cust_ref, case_ref = q(sheets["customers"]), q(sheets["cases"])
    id_rng = f"{cust_ref}!$A${hr + 1}:$A${hr + len(book.customers)}"
    ch = book.cases_header_row
    col = {key: col_letter(j - 1) for j, (key, *_x) in enumerate(CASE_COLUMNS, 1)}
    sev_rng = f"{case_ref}!${col['severity']}${ch + 1}:${col['severity']}${ch + len(book.cases)}"
    status_rng = f"{case_ref}!${col['status']}${ch + 1}:${col['status']}${ch + len(book.cases)}"
    n_ids = sum(1 for r in book.customers if r["customer_id"] is not None)
    word = (lambda v: ZH_VALUES[v]) if book.lang == "zh" else (lambda v: v)  # noqa: E731
    n_open = sum(1 for r in book.cases if isinstance(r["status"], str) and r["status"].casefold() in (word("Open").casefold(), word("In progress").casefold()))
    summary = [
        (labels["customers"], Formula(f"COUNTA({id_rng})", n_ids)),
        (labels["cases"], Formula(f"COUNTA({case_ref}!${col['case_id']}${ch + 1}:${col['case_id']}${ch + len(book.cases)})", len(book.cases))),
        (labels["open"], Formula(f'COUNTIF({status_rng},"{word("Open")}")+COUNTIF({status_rng},"{word("In progress")}")', n_open)),
    ]
    for k, (label, f) in enumerate(summary, r0 + 1):
        notes.cell(row=k, column=1, value=label)
        put(notes, k, 2, f, "int")
    notes.cell(row=r0 + 1, column=2).comment = Comment(labels["comment_count"], "CX team")
    s0 = r0 + len(summary) + 2
    notes.cell(row=s0, column=1, value=labels["by_severity"]).font = bold
    notes.cell(row=s0, column=2, value=labels["count"]).font = bold
    for k, sev in enumerate(map(word, SEVERITIES), s0 + 1):
        n = sum(1 for r in book.cases if isinstance(r["severity"], str) and r["severity"].casefold() == sev.casefold())
        notes.cell(row=k, column=1, value=sev)
        put(notes, k, 2, Formula(f"COUNTIF({sev_rng},A{k})", n), "int")
    chart = BarChart()
    chart.type, chart.style, chart.title, chart.legend = "col", 10, labels["chart"], None
    chart.add_data(Reference(notes, min_col=2, min_row=s0, max_row=s0 + len(SEVERITIES)), titles_from_data=True)
    chart.set_categories(Reference(notes, min_col=1, min_row=s0 + 1, max_row=s0 + len(SEVERITIES)))
    chart.height, chart.width = 6.5, 11
    notes.add_chart(chart, "G7")  # beside the list of bad cells (columns A-E)
    b0 = s0 + len(SEVERITIES) + 2
    notes.cell(row=b0, column=1, value=labels["bad_title"]).font = bold
    for j, h in enumerate(labels["bad_head"], 1):
        notes.cell(row=b0 + 1, column=j, value=h).font = bold
    for k, b in enumerate(book.bad, b0 + 2):
        shown = labels["blank"] if b.written is None else ("=" + b.written.text if isinstance(b.written, Formula) else str(b.written))
        kind_text = BAD_KINDS[b.kind][0 if lang == "en" else 1]
        for j, v in enumerate([b.sheet, b.cell, b.header, kind_text, shown], 1):
            c = notes.cell(row=k, column=j, value=v)
            if v.startswith("="):  # the text of a formula, not a formula
                c.data_type, c.quotePrefix = "s", True

    # measures last, so the other sheets keep their parts
    meas = table_sheet(sheets["measures"], MEASURE_COLUMNS, book.measures, 1, {"date": 14, "text": 16, "score": 20, "int": 18})
    meas.auto_filter.ref = f"A1:{col_letter(len(MEASURE_COLUMNS) - 1)}{1 + len(book.measures)}"

    wb.properties.creator = "cxrules"
    buf = io.BytesIO()
    wb.save(buf)
    return _fix_package(buf.getvalue(), formulas, [s.title for s in wb.worksheets], book.as_of,
                        "cxrules sample workbook" if lang == "en" else "cxrules 示例工作簿")


# ------------------------------------------------------------------ package post-processing
_INLINE = re.compile(r'<c r="([A-Z]+[0-9]+)"((?: s="[0-9]+")?) t="inlineStr"><is><t(?: xml:space="preserve")?>([^<]*)</t></is></c>')
_FORMULA_CELL = re.compile(r'<c r="([A-Z]+[0-9]+)"((?: s="[0-9]+")?)><f>([^<]*)</f>(?:<v ?/>|<v></v>)</c>')
CT_SST = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
REL_SST = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"


def _cached(f: Formula) -> tuple[str, str]:
    """(type attribute, <v> text) of a formula's cached value."""
    v = f.cached
    if f.error:
        return ' t="e"', escape(str(v))
    if isinstance(v, str):
        return ' t="str"', escape(v)
    if isinstance(v, bool):
        return ' t="b"', "1" if v else "0"
    return "", repr(v) if isinstance(v, float) else str(v)


def _fix_package(data: bytes, formulas: dict[str, dict[str, Formula]], titles: list[str], as_of: dt.datetime, title: str) -> bytes:
    """Make openpyxl's package look like Excel's and be reproducible.

    Text goes into a shared string table, formulas get their cached values (errors as
    t="e"), document properties get fixed times, and the zip is rewritten with fixed
    entry times in a fixed order.
    """
    src = zipfile.ZipFile(io.BytesIO(data))
    parts = {n: src.read(n) for n in src.namelist()}
    strings: dict[str, int] = {}
    total = 0

    def shared(m):
        nonlocal total
        total += 1
        idx = strings.setdefault(m.group(3), len(strings))
        return f'<c r="{m.group(1)}"{m.group(2)} t="s"><v>{idx}</v></c>'

    for k, title_ in enumerate(titles, 1):
        name = f"xl/worksheets/sheet{k}.xml"
        xml = parts[name].decode("utf-8")
        xml = _INLINE.sub(shared, xml)
        mine = formulas.get(title_, {})

        def cached(m):
            f = mine.get(m.group(1))
            if f is None:
                raise ValueError(f"formula in {title_}!{m.group(1)} has no cached value")
            t, v = _cached(f)
            return f'<c r="{m.group(1)}"{m.group(2)}{t}><f>{m.group(3)}</f><v>{v}</v></c>'

        xml, n = _FORMULA_CELL.subn(cached, xml)
        if n != len(mine):
            raise ValueError(f"{title_}: {len(mine)} formulas written, {n} found in the sheet XML")
        parts[name] = xml.encode("utf-8")
    keep = ' xml:space="preserve"'
    sst = "".join(f"<si><t{keep if s != s.strip() else ''}>{s}</t></si>" for s in strings)
    parts["xl/sharedStrings.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{total}" uniqueCount="{len(strings)}">{sst}</sst>'
    ).encode("utf-8")
    ct = parts["[Content_Types].xml"].decode("utf-8")
    if "/xl/sharedStrings.xml" not in ct:
        ct = ct.replace("</Types>", f'<Override PartName="/xl/sharedStrings.xml" ContentType="{CT_SST}" /></Types>')
    parts["[Content_Types].xml"] = ct.encode("utf-8")
    rels = parts["xl/_rels/workbook.xml.rels"].decode("utf-8")
    if REL_SST not in rels:
        rels = rels.replace("</Relationships>", f'<Relationship Id="rIdSharedStrings" Target="sharedStrings.xml" Type="{REL_SST}" /></Relationships>')
    parts["xl/_rels/workbook.xml.rels"] = rels.encode("utf-8")
    # the formulas now carry their values, as Excel saves them: no recalculation on load
    parts["xl/workbook.xml"] = re.sub(rb'\s*fullCalcOnLoad="1"', b"", parts["xl/workbook.xml"])
    stamp = as_of.replace(tzinfo=ZoneInfo(TIMEZONE)).astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts["docProps/core.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{escape(title)}</dc:title><dc:creator>cxrules</dc:creator><cp:lastModifiedBy>cxrules</cp:lastModifiedBy>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>'
    ).encode("utf-8")
    first = ["[Content_Types].xml", "_rels/.rels", "docProps/app.xml", "docProps/core.xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels"]
    order = [n for n in first if n in parts] + sorted(n for n in parts if n not in first)
    out = io.BytesIO()
    when = (as_of.year, as_of.month, as_of.day, as_of.hour, as_of.minute, 0)
    with zipfile.ZipFile(out, "w") as z:
        for name in order:
            info = zipfile.ZipInfo(name, when)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            z.writestr(info, parts[name], compresslevel=6)
    return out.getvalue()
