"""Deterministic demo data: branches, staff, clients, products, holdings, 24 months of purchases
and of cash flows.

Why a generator of its own rather than factories: the same code must seed a 3,000-client demo
on SQLite in seconds and a 1,000,000-client / 20,000,000-purchase benchmark on PostgreSQL in
minutes. So every column is drawn with vectorised numpy from one seeded generator (same
``clients`` + ``seed`` + as-of date -> identical rows), and rows are written set-based: COPY on
PostgreSQL, executemany on SQLite. The ORM is used only for the handful of staff users, through
``core.services.staff_user_upsert`` so roles are assigned exactly as everywhere else.

Dates are relative to the as-of date (default: today in Asia/Shanghai): purchases fall in the
``months`` before it and end yesterday, risk assessments expire two years after they were taken.
Cash flows: each funded client's first deposit on its first_funded_on, then a few deposits,
withdrawals and transfers a year up to yesterday, netting to about the client's AUM; a few
percent of clients made a large deposit in the last trading days (the cash-inflow scenario),
and some fixed-income and wealth-management positions mature within two weeks (the
product-maturity scenario).
"""

from __future__ import annotations

import io
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta

import chinese_calendar
import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from core.models import Branch, Role, User
from core.services import staff_user_upsert

# Tables this generator fills; `demo_wipe` empties them (and, on PostgreSQL, whatever
# references them, e.g. segment memberships and campaign targets, through CASCADE).
# clients_clientscore has no database FK to clients (see its model), so it is named explicitly:
# RESTART IDENTITY reuses client ids, and old scores must not attach to new clients.
CLIENT_TABLES = ("clients_transaction", "clients_cashflow", "clients_holding",
                 "clients_clientscore", "clients_client", "clients_product")
# Tables whose secondary indexes and constraints are dropped during a big COPY and rebuilt after.
BULK_TABLES = ("clients_client", "clients_holding", "clients_transaction", "clients_cashflow")
BULK_THRESHOLD_ROWS = 200_000
RISK_VALID_DAYS = 730
DEFAULT_TXN_PER_CLIENT = 20
CLIENTS_PER_RM = 350
MAX_RMS = 1000
TXN_CHUNK_ROWS = 2_000_000
UTC_OFFSET_SECONDS = 8 * 3600  # Asia/Shanghai has no daylight saving time
# Cash flows after the first deposit, per client and year (dormant and closed clients: fewer).
CASH_FLOWS_PER_YEAR = {"active": 3.0, "dormant": 1.0}
# Share of active funded clients with a large deposit (30-60% of AUM) in the last trading days.
LARGE_INFLOW_SHARE = 0.03
LARGE_INFLOW_TRADING_DAYS = 4  # inside "the last 5 trading days", whether today counts or not
# A wealth-management position's holding period ends 1..POSITION_TERM_DAYS days after the
# as-of date, so about one in thirteen matures within the next two weeks.
POSITION_TERM_DAYS = 180

# --- reference data -------------------------------------------------------------------------
# (code, name, city, weight): flagship branches carry more clients.
BRANCHES = [
    ("SH01", "上海陆家嘴营业部", "上海", 9), ("BJ01", "北京金融街营业部", "北京", 8),
    ("SZ01", "深圳福田营业部", "深圳", 7), ("GZ01", "广州天河营业部", "广州", 6),
    ("HZ01", "杭州钱江新城营业部", "杭州", 5), ("SH02", "上海淮海中路营业部", "上海", 5),
    ("BJ02", "北京中关村营业部", "北京", 5), ("NJ01", "南京新街口营业部", "南京", 4),
    ("CD01", "成都天府大道营业部", "成都", 4), ("WH01", "武汉中北路营业部", "武汉", 4),
    ("SU01", "苏州工业园区营业部", "苏州", 4), ("XA01", "西安高新路营业部", "西安", 3),
    ("CQ01", "重庆解放碑营业部", "重庆", 3), ("TJ01", "天津友谊路营业部", "天津", 3),
    ("CS01", "长沙芙蓉中路营业部", "长沙", 3), ("XM01", "厦门鹭江道营业部", "厦门", 3),
    ("QD01", "青岛香港中路营业部", "青岛", 3), ("NB01", "宁波江东北路营业部", "宁波", 2),
    ("ZZ01", "郑州金水路营业部", "郑州", 2), ("HF01", "合肥政务区营业部", "合肥", 2),
]
OTHER_CITIES = ["东莞", "佛山", "无锡", "济南", "沈阳", "大连", "福州", "昆明", "南昌", "石家庄"]

# Surnames weighted roughly by frequency in China (王李张刘陈 cover ~30%).
SURNAMES = [
    ("王", "wang", 7.1), ("李", "li", 7.0), ("张", "zhang", 6.7), ("刘", "liu", 5.4),
    ("陈", "chen", 4.5), ("杨", "yang", 3.1), ("黄", "huang", 2.3), ("赵", "zhao", 2.0),
    ("吴", "wu", 1.9), ("周", "zhou", 1.9), ("徐", "xu", 1.4), ("孙", "sun", 1.4),
    ("马", "ma", 1.2), ("朱", "zhu", 1.2), ("胡", "hu", 1.1), ("郭", "guo", 1.1),
    ("何", "he", 1.0), ("林", "lin", 0.9), ("罗", "luo", 0.9), ("高", "gao", 0.9),
    ("郑", "zheng", 0.8), ("梁", "liang", 0.7), ("谢", "xie", 0.6), ("宋", "song", 0.6),
    ("唐", "tang", 0.6), ("许", "xu", 0.5), ("韩", "han", 0.5), ("冯", "feng", 0.5),
    ("邓", "deng", 0.5), ("曹", "cao", 0.5), ("彭", "peng", 0.5), ("曾", "zeng", 0.5),
    ("肖", "xiao", 0.4), ("田", "tian", 0.4), ("董", "dong", 0.4), ("潘", "pan", 0.4),
    ("袁", "yuan", 0.4), ("蔡", "cai", 0.4), ("蒋", "jiang", 0.4), ("余", "yu", 0.4),
    ("欧阳", "ouyang", 0.05), ("司马", "sima", 0.02),
]
GIVEN_MALE = [
    ("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"),
    ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("浩然", "haoran"),
    ("子轩", "zixuan"), ("宇航", "yuhang"), ("建国", "jianguo"), ("志强", "zhiqiang"),
    ("国平", "guoping"), ("文博", "wenbo"), ("俊杰", "junjie"), ("嘉豪", "jiahao"),
    ("一鸣", "yiming"), ("天佑", "tianyou"), ("振华", "zhenhua"), ("海峰", "haifeng"),
    ("晨阳", "chenyang"),
]
GIVEN_FEMALE = [
    ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("艳", "yan"),
    ("婷", "ting"), ("雪", "xue"), ("慧", "hui"), ("秀英", "xiuying"), ("桂兰", "guilan"),
    ("梓涵", "zihan"), ("欣怡", "xinyi"), ("诗涵", "shihan"), ("雨婷", "yuting"),
    ("晓燕", "xiaoyan"), ("美玲", "meiling"), ("佳琪", "jiaqi"), ("思远", "siyuan"),
    ("若曦", "ruoxi"), ("婉清", "wanqing"), ("丹", "dan"), ("玉兰", "yulan"), ("可馨", "kexin"),
]
EMAIL_DOMAINS = ["163.com", "126.com", "sina.com", "foxmail.com", "outlook.com", "gmail.com",
                 "139.com", "yeah.net"]
PHONE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
                  "152", "153", "155", "156", "158", "159", "177", "180", "185", "186", "187",
                  "188", "189", "199"]
EMPLOYERS = {
    "technology": ["华为技术有限公司", "腾讯科技有限公司", "阿里巴巴集团", "字节跳动", "中芯国际",
                   "科大讯飞", "海康威视", "宁德时代", "大疆创新", "商汤科技"],
    "finance": ["招商银行", "中国平安", "中信证券", "工商银行", "易方达基金"],
    "manufacturing": ["美的集团", "格力电器", "上汽集团", "三一重工", "海尔智家"],
    "public_sector": ["市财政局", "区人民政府", "国家电网", "中国移动"],
    "education": ["复旦大学", "浙江大学", "市第一中学", "新东方"],
    "healthcare": ["瑞金医院", "华西医院", "恒瑞医药", "迈瑞医疗"],
    "other": ["个体经营", "自由职业"],
}
FUND_HOUSES = ["华夏", "易方达", "南方", "嘉实", "广发", "富国", "汇添富", "博时", "招商",
               "工银瑞信",
               "中欧", "景顺长城"]
FUND_THEMES = ["消费升级", "医疗健康", "新能源", "科技创新", "价值精选", "稳健增长", "红利优选",
               "沪深300", "中证500", "高端制造", "半导体", "港股通"]
STOCKS = [
    ("600519", "贵州茅台", "R4"), ("601318", "中国平安", "R4"), ("600036", "招商银行", "R3"),
    ("000858", "五粮液", "R4"), ("300750", "宁德时代", "R5"), ("002594", "比亚迪", "R5"),
    ("601012", "隆基绿能", "R5"), ("000333", "美的集团", "R4"), ("600276", "恒瑞医药", "R4"),
    ("601398", "工商银行", "R3"), ("600900", "长江电力", "R3"), ("000001", "平安银行", "R3"),
    ("688981", "中芯国际", "R5"), ("002415", "海康威视", "R4"), ("601888", "中国中免", "R4"),
    ("600030", "中信证券", "R4"), ("000651", "格力电器", "R4"), ("601166", "兴业银行", "R3"),
    ("300059", "东方财富", "R5"), ("600309", "万华化学", "R4"), ("002230", "科大讯飞", "R5"),
    ("601899", "紫金矿业", "R4"), ("600887", "伊利股份", "R3"), ("000725", "京东方A", "R4"),
    ("603259", "药明康德", "R5"), ("601088", "中国神华", "R3"), ("600028", "中国石化", "R3"),
    ("300760", "迈瑞医疗", "R4"), ("601633", "长城汽车", "R4"), ("688111", "金山办公", "R5"),
]
# Revenue to the firm as a share of the amount paid (commission, subscription, advisory or
# distribution fee), by product type.
REVENUE_RATE = {
    "stock": 0.0003, "fund": 0.006, "fixed_income": 0.0008, "money_market": 0.0002,
    "wealth_management": 0.005, "advisory_service": 0.012, "structured": 0.008,
    "private_fund": 0.015,
}
SALES_CHANNELS = np.array(["app", "rm", "web", "branch", "phone"])
SALES_CHANNEL_P = np.array([0.52, 0.18, 0.10, 0.12, 0.08])


@dataclass(frozen=True)
class DemoSpec:
    """What to generate. Same spec (and as-of date) -> the same rows, byte for byte."""

    clients: int
    seed: int = 42
    transactions: int | None = None
    transactions_per_client: float | None = None
    months: int = 24
    as_of: date | None = None
    # Usernames for the first RM slots (demo logins such as "rm", "rm2"); both sit in SH01.
    named_rms: tuple[str, ...] = ()
    txn_chunk_rows: int = TXN_CHUNK_ROWS

    @property
    def total_transactions(self) -> int:
        if self.transactions is not None:
            return int(self.transactions)
        per = self.transactions_per_client
        return int(round(self.clients * (DEFAULT_TXN_PER_CLIENT if per is None else per)))


@dataclass
class DemoReport:
    clients: int = 0
    products: int = 0
    holdings: int = 0
    transactions: int = 0
    cash_flows: int = 0
    rms: int = 0
    branches: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.timings.values())


class DemoDataExists(Exception):
    """Raised instead of mixing generated rows into existing client data."""


# --- public entry points --------------------------------------------------------------------
def demo_is_empty() -> bool:
    from clients.models import CashFlow, Client, Holding, Product, Transaction

    return not any(m.objects.exists() for m in (Client, Product, Holding, Transaction, CashFlow))


def demo_wipe() -> None:
    """Delete clients, products, holdings, purchases and cash flows (and rows that depend on
    them)."""
    from clients.models import CashFlow, Client, Holding, Product, Transaction

    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(f"TRUNCATE {', '.join(CLIENT_TABLES)} RESTART IDENTITY CASCADE")
        return
    with transaction.atomic():
        CashFlow.objects.all().delete()
        Transaction.objects.all().delete()
        Holding.objects.all().delete()
        Client.objects.all().delete()
        Product.objects.all().delete()


def demo_seed(*, spec: DemoSpec, reset: bool = False,
              log: Callable[[str], None] | None = None) -> DemoReport:
    """Generate and write the demo data set; refuse to add to existing client data."""
    log = log or (lambda _msg: None)
    report = DemoReport()
    timer = _Timer(report, log)
    if not reset and not demo_is_empty():
        raise DemoDataExists(
            "The database already holds clients, products, holdings or transactions; "
            "run with --reset to replace them with demo data.")
    as_of = spec.as_of or timezone.localdate()
    with timer("staff"):
        branches, rm_ids, rm_branch = _staff_upsert(spec)
    report.branches, report.rms = len(branches), len(rm_ids)
    with timer("generate clients"):
        products = _products(as_of)
        people = _clients(spec, as_of, branches, rm_ids, rm_branch)
        holdings = _holdings(spec, people, products, as_of)
    report.products, report.clients, report.holdings = (len(products), len(people.frame),
                                                        len(holdings))
    writer = _writer_for(spec)
    with writer.session(log, reset=reset):
        with timer("write clients"):
            writer.write("clients_product", products.frame)
            writer.write("clients_client", people.frame)
            writer.write("clients_holding", holdings)
        with timer("generate+write transactions"):
            report.transactions = writer.write_chunks(
                "clients_transaction", _transaction_chunks(spec, people, products, as_of))
        with timer("generate+write cash flows"):
            report.cash_flows = writer.write_chunks(
                "clients_cashflow", _cash_flow_chunks(spec, people, as_of))
        with timer("indexes+constraints"):
            writer.finish()
    with timer("analyze"):
        writer.analyze()
    return report


# --- staff ----------------------------------------------------------------------------------
def _staff_sizes(n_clients: int) -> tuple[int, int]:
    n_branches = int(np.clip(n_clients // 300, 1, len(BRANCHES)))
    n_rms = int(min(MAX_RMS, max(n_branches + 1, math.ceil(n_clients / CLIENTS_PER_RM))))
    return n_branches, n_rms


def _staff_upsert(spec: DemoSpec) -> tuple[list[Branch], np.ndarray, np.ndarray]:
    """Branches, one manager per branch and the RMs; returns RM ids and each RM's branch index."""
    from core.services import branch_upsert

    n_branches, n_rms = _staff_sizes(spec.clients)
    branches = [branch_upsert(code=code, name=name, city=city)[0]
                for code, name, city, _w in BRANCHES[:n_branches]]
    for b in branches:
        staff_user_upsert(username=f"bm_{b.code.lower()}", role=Role.BRANCH_MANAGER,
                          branch_code=b.code, display_name=f"{b.city}{b.code[-2:]}负责人")
    # The first two RM slots sit in the flagship branch (the demo logins' branch); the rest go
    # round the branches so each has at least one RM.
    rm_branch = np.array([0, 0] + [j % n_branches for j in range(1, n_rms - 1)])[:n_rms]
    names = list(spec.named_rms) + [f"rm{j + 1:03d}" for j in range(len(spec.named_rms), n_rms)]
    existing = dict(User.objects.filter(username__in=names).values_list("username", "id"))
    ids = []
    for j, username in enumerate(names[:n_rms]):
        branch = branches[rm_branch[j]]
        if username in existing and User.objects.filter(
                pk=existing[username], branch=branch, groups__name=Role.RM).exists():
            ids.append(existing[username])
            continue
        surname = SURNAMES[j % len(SURNAMES)][0]
        user, _ = staff_user_upsert(username=username, role=Role.RM, branch_code=branch.code,
                                    display_name=f"{surname}经理{j + 1}")
        ids.append(user.pk)
    return branches, np.array(ids, dtype=np.int64), rm_branch


# --- products -------------------------------------------------------------------------------
@dataclass
class _Products:
    frame: pd.DataFrame
    risk: np.ndarray  # 1..5
    rate: np.ndarray  # revenue share of amount
    price: np.ndarray
    by_risk: np.ndarray  # product indexes sorted by risk level
    upto: np.ndarray  # upto[c] = how many products have risk <= c (c = 0..5)

    def __len__(self) -> int:
        return len(self.frame)


# Days from the as-of date to the maturity of the products that mature: treasury bonds (G),
# the firm's income certificates (Q) -- the first of each within two weeks -- and the contract
# end of the collective asset-management plans (W).
TREASURY_MATURITY_DAYS = (9, 45, 120, 250, 400, 560, 730, 900, 1100, 1400, 1800, 2500)
CERTIFICATE_MATURITY_DAYS = (6, 12, 30, 60, 90, 120, 150, 180, 240, 270, 330, 365)


def _products(as_of: date) -> _Products:
    """About 300 products over every type and risk level, with plausible Chinese names; the
    treasury bonds, income certificates and asset-management plans mature."""
    rows: list[tuple[str, str, str, str, float]] = []

    def add(code: str, name: str, ptype: str, risk: str, price: float) -> None:
        rows.append((code, name, ptype, risk, price))

    for code, name, risk in STOCKS:
        add(code, name, "stock", risk, 8.0 + (int(code) % 997) / 3)
    n = 0
    for house in FUND_HOUSES:
        for k, theme in enumerate(FUND_THEMES):
            n += 1
            kind, risk = (("指数增强", "R4") if theme in ("沪深300", "中证500") else
                          ("股票", "R4") if k % 3 == 0 else ("混合", "R3") if k % 3 == 1 else
                          ("灵活配置混合", "R3"))
            if theme in ("半导体", "新能源") and k % 2:
                risk = "R5"
            add(f"0{10000 + n:05d}", f"{house}{theme}{kind}A", "fund", risk, 0.8 + (n % 30) / 10)
    for j, house in enumerate(FUND_HOUSES):
        add(f"M{j:05d}", f"{house}现金宝货币A", "money_market", "R1", 1.0)
        add(f"B{j:05d}", f"{house}纯债债券A", "fixed_income", "R2", 1.0 + j / 50)
        add(f"B{j + 100:05d}", f"{house}短债债券C", "fixed_income", "R1", 1.0 + j / 80)
    for j in range(12):
        add(f"G{j:05d}", f"{2021 + j % 5}年记账式附息国债（{j + 1:02d}期）", "fixed_income", "R1",
            100.0)
        add(f"Q{j:05d}", f"本公司收益凭证稳利{j + 1}号", "fixed_income", "R2", 1.0)
    for j in range(30):
        risk = ("R2", "R3", "R2", "R3", "R4")[j % 5]
        add(f"W{j:05d}", f"稳享{j + 1}号集合资产管理计划", "wealth_management", risk, 1.0)
    for j, (label, risk) in enumerate([("稳健组合", "R2"), ("平衡组合", "R3"), ("进取组合", "R4"),
                                       ("养老规划", "R2"), ("子女教育规划", "R2"),
                                       ("家族财富顾问", "R3"), ("ETF轮动策略", "R4"),
                                       ("股权激励规划", "R3"), ("高端投顾年度服务", "R3"),
                                       ("智能定投", "R3")]):
        add(f"A{j:05d}", f"基金投顾·{label}", "advisory_service", risk, 1.0)
    for j in range(30):
        kind, risk = (("雪球结构", "R4"), ("鲨鱼鳍", "R3"), ("二元增强", "R3"))[j % 3]
        add(f"S{j:05d}", f"{kind}收益凭证第{j + 1}期", "structured", risk, 1.0)
    for j in range(40):
        style, risk = (("量化对冲", "R4"), ("指数增强", "R5"), ("股票多头", "R5"),
                       ("CTA", "R4"), ("债券优选", "R3"))[j % 5]
        house = FUND_HOUSES[j % len(FUND_HOUSES)]
        add(f"P{j:05d}", f"{house}资本{style}{j % 8 + 1}号私募证券投资基金",
            "private_fund", risk, 1.0 + (j % 7) / 5)
    frame = pd.DataFrame(rows, columns=["product_code", "name", "product_type", "risk_level",
                                        "price"])
    now = _now_text()
    frame.insert(0, "id", np.arange(1, len(frame) + 1, dtype=np.int64))
    frame["is_active"] = True
    series, number = frame["product_code"].str[0], frame["product_code"].str[1:].astype(int)
    term = np.select(
        [series == "G", series == "Q", series == "W"],
        [np.take(TREASURY_MATURITY_DAYS, number.clip(upper=len(TREASURY_MATURITY_DAYS) - 1)),
         np.take(CERTIFICATE_MATURITY_DAYS,
                 number.clip(upper=len(CERTIFICATE_MATURITY_DAYS) - 1)),
         365 + 37 * number], -1)
    frame["maturity_date"] = _nullable_dates(_days(as_of) + term, term > 0)
    frame["created_at"] = now
    frame["updated_at"] = now
    risk = frame["risk_level"].str[1].astype(int).to_numpy()
    by_risk = np.argsort(risk, kind="stable")
    upto = np.array([(risk <= c).sum() for c in range(6)])
    rate = frame["product_type"].map(REVENUE_RATE).to_numpy(dtype=float)
    price = frame.pop("price").to_numpy(dtype=float)
    return _Products(frame=frame, risk=risk, rate=rate, price=price, by_risk=by_risk, upto=upto)


# --- clients --------------------------------------------------------------------------------
@dataclass
class _People:
    frame: pd.DataFrame
    funded: np.ndarray  # bool
    risk: np.ndarray  # 0 (none) .. 5
    aum_cents: np.ndarray
    txn_start: np.ndarray  # day numbers (days since epoch)
    txn_end: np.ndarray
    txn_count: np.ndarray
    last_day: np.ndarray  # last purchase day for clients with purchases
    first_funded: np.ndarray  # day number of the first deposit (0 when never funded)
    status: np.ndarray
    window_start: int  # first day of the purchase (and cash-flow) history


def _days(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _as_dates(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]")


def _pick(rng: np.random.Generator, values: list, p: np.ndarray | list | None, n: int):
    p = None if p is None else np.asarray(p, dtype=float) / np.sum(p)
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p)]


def _clients(spec: DemoSpec, as_of: date, branches: list[Branch], rm_ids: np.ndarray,
             rm_branch: np.ndarray) -> _People:
    """Every column of every client, vectorised; personas are filled by construction."""
    n = spec.clients
    rng = np.random.default_rng([spec.seed, 1])
    today = _days(as_of)
    ids = np.arange(1, n + 1, dtype=np.int64)

    # Age mix: enough 18-24, Gen Z and 60-69 for every persona; ages in whole years plus a day.
    age_bands = np.array([[18, 25], [25, 35], [35, 50], [50, 60], [60, 70], [70, 82]])
    band = rng.choice(len(age_bands), size=n, p=[0.11, 0.22, 0.29, 0.16, 0.15, 0.07])
    age = rng.integers(age_bands[band, 0], age_bands[band, 1])
    birth = today - np.floor((age + rng.random(n)) * 365.2425).astype(np.int64) - 1
    female = rng.random(n) < 0.49
    gender = np.where(female, "F", "M")

    occupation = np.full(n, "employee", dtype=object)
    u = rng.random(n)
    young, old = age < 25, age >= 60
    working = ~young & ~old
    occupation[young & (u < 0.6)] = "student"
    occupation[young & (u >= 0.9)] = "other"
    occupation[working & (u < 0.12)] = "business_owner"
    occupation[working & (u >= 0.12) & (u < 0.20)] = "executive"
    occupation[working & (u >= 0.20) & (u < 0.35)] = "professional"
    occupation[working & female & (u >= 0.35) & (u < 0.47)] = "homemaker"
    occupation[working & (u >= 0.95)] = "other"
    occupation[old & (u < 0.72)] = "retired"
    occupation[old & (u >= 0.72) & (u < 0.84)] = "business_owner"
    industries = ["technology", "finance", "manufacturing", "public_sector", "education",
                  "healthcare", "other"]
    industry = _pick(rng, industries, [22, 14, 18, 14, 10, 10, 12], n)
    exec_tech = (occupation == "executive") & (rng.random(n) < 0.45)
    industry[exec_tech] = "technology"
    no_industry = np.isin(occupation, ["student", "homemaker", "retired"])
    industry[no_industry] = ""
    has_children = np.where(age >= 28, rng.random(n) < 0.72, rng.random(n) < 0.05)
    homemaker = occupation == "homemaker"
    has_children[homemaker] = rng.random(int(homemaker.sum())) < 0.9

    # Anchors: one client per persona whatever N and seed, so small demos show every persona.
    anchors = {"silver": 0, "homemaker": 1, "genz": 2, "student": 3, "woman": 4, "sme": 5,
               "tech": 6, "hnw": 7}
    anchor_at = {k: (v * max(n // len(anchors), 1)) % n for k, v in anchors.items()}
    for key, i in anchor_at.items():
        if key == "silver":
            age[i], occupation[i], industry[i] = 64, "retired", ""
        elif key == "homemaker":
            age[i], female[i], occupation[i], has_children[i], industry[i] = (
                36, True, "homemaker", True, "")
        elif key == "genz":
            age[i] = as_of.year - 2000
        elif key == "student":
            age[i], occupation[i], industry[i] = 20, "student", ""
        elif key == "woman":
            age[i], female[i], occupation[i] = 33, True, "employee"
        elif key == "sme":
            age[i], occupation[i] = 45, "business_owner"
        elif key == "tech":
            age[i], occupation[i], industry[i] = 41, "executive", "technology"
        birth[i] = today - int((age[i] + 0.5) * 365.2425)
    gender = np.where(female, "F", "M")
    education = np.where(
        occupation == "student", _pick(rng, ["college", "bachelor", "master"], [2, 6, 2], n),
        _pick(rng, ["high_school", "college", "bachelor", "master", "doctorate"],
              [22, 24, 36, 15, 3], n))
    education[(age >= 60) & (rng.random(n) < 0.5)] = "high_school"

    # Names: weighted surnames; given names by gender.
    s_idx = rng.choice(len(SURNAMES), size=n, p=_norm([w for *_x, w in SURNAMES]))
    g_m = rng.integers(0, len(GIVEN_MALE), n)
    g_f = rng.integers(0, len(GIVEN_FEMALE), n)
    s_han = np.array([s for s, _p, _w in SURNAMES])[s_idx]
    s_pin = np.array([p for _s, p, _w in SURNAMES])[s_idx]
    g_han = np.where(female, np.array([g for g, _p in GIVEN_FEMALE])[g_f],
                     np.array([g for g, _p in GIVEN_MALE])[g_m])
    g_pin = np.where(female, np.array([p for _g, p in GIVEN_FEMALE])[g_f],
                     np.array([p for _g, p in GIVEN_MALE])[g_m])
    name = np.char.add(s_han, g_han)

    # Branch and RM: 95% of clients sit in an RM's book, the rest are self-directed.
    n_b = len(branches)
    rm_w = rng.lognormal(0, 0.25, len(rm_ids))
    rm_w[: len(spec.named_rms)] *= 1.15
    rm_idx = rng.choice(len(rm_ids), size=n, p=rm_w / rm_w.sum())
    has_rm = rng.random(n) < 0.95
    b_w = np.array([w for *_x, w in BRANCHES[:n_b]], dtype=float)
    branch_idx = np.where(has_rm, rm_branch[rm_idx], rng.choice(n_b, size=n, p=b_w / b_w.sum()))
    branch_ids = np.array([b.pk for b in branches], dtype=np.int64)[branch_idx]
    rm = np.where(has_rm, rm_ids[rm_idx], -1)
    branch_city = np.array([b.city for b in branches])[branch_idx]
    city = np.where(rng.random(n) < 0.85, branch_city, _pick(rng, OTHER_CITIES, None, n))
    # Core-system style numbers: a two-digit branch prefix and a nine-digit serial (unique).
    client_no = (10 + branch_idx) * 10**9 + ids

    # Account history: opened within 15 years (recent years heavier) and after turning 18.
    opened = today - np.minimum(rng.exponential(1500, n), 15 * 365).astype(np.int64) - 3
    opened = np.maximum(opened, birth + int(18 * 365.25) + 1)
    opened = np.minimum(opened, today - 3)
    never_funded = rng.random(n) < 0.12
    never_funded[list(anchor_at.values())] = False
    funded = ~never_funded
    first_funded = np.where(funded, np.minimum(opened + rng.exponential(12, n).astype(np.int64),
                                               today - 2), 0)
    status = _pick(rng, ["active", "dormant", "closed"], [0.88, 0.10, 0.02], n)
    status[list(anchor_at.values())] = "active"

    # AUM: log-normal, shifted by life stage; a few % reach the 5M high-net-worth bar.
    mu = np.log(140_000) + np.select(
        [occupation == "student", occupation == "business_owner", occupation == "executive",
         age >= 60, occupation == "homemaker"], [-1.6, 0.9, 0.8, 0.35, 0.1], 0.0)
    aum = np.exp(rng.normal(mu, 1.75))
    aum[anchor_at["hnw"]] = 8_800_000.0
    aum = np.clip(aum, 1_000, 3e9)
    aum_cents = np.where(funded & (status != "closed"), np.round(aum * 100), 0).astype(np.int64)
    investor_type = np.where((aum_cents >= 500_000_000) & (rng.random(n) < 0.6), "professional",
                             "ordinary")

    # Risk questionnaire valid two years: ~19% expired, ~3% expiring in the next 30 days.
    risk = np.clip(np.round(rng.normal(2.9, 1.05, n) + (aum > 2e6) * 0.6 - (age >= 60) * 0.7),
                   1, 5).astype(np.int64)
    assessed = np.maximum(today - rng.integers(0, 900, n), opened)
    unassessed = never_funded & (rng.random(n) < 0.3)
    risk[unassessed] = 0
    risk_level = np.where(risk > 0, np.char.add("C", risk.astype(str)), "")

    # Purchases: a heavy-tailed count per funded client, dormant/closed ones end long ago.
    window_start = today - int(round(spec.months * 365.2425 / 12))
    end = np.where(status == "active", today - 1,
                   today - 181 - rng.integers(0, 360, n))
    start = np.maximum(first_funded, window_start)
    can_buy = funded & (start <= end)
    weight = rng.lognormal(0, 1.1, n) * np.where(status == "active", 1.0, 0.35) * can_buy
    total = spec.total_transactions if can_buy.any() else 0
    count = (rng.multinomial(total, weight / weight.sum()) if total else np.zeros(n, np.int64))
    count = count.astype(np.int64)
    # The last purchase day is the max of `count` uniform days: sample it directly
    # (U ** (1/count)) so client rows can be written before their purchases are drawn.
    span = (end - start + 1).clip(min=1)
    last = start + np.minimum(np.floor(span * rng.random(n) ** (1 / np.maximum(count, 1))),
                              span - 1).astype(np.int64)
    last_purchase = np.where(count > 0, last, 0)

    phone = (np.array(PHONE_PREFIXES)[rng.integers(0, len(PHONE_PREFIXES), n)].astype(object)
             + pd.Series((ids * 48_271 + spec.seed * 7919) % 10**8).map("{:08d}".format)
             .to_numpy(dtype=object))
    phone_tail = pd.Series(phone).str[-4:].to_numpy(dtype=object)
    qq = rng.random(n) < 0.3
    local = np.where(qq, (rng.integers(10_000_000, 2_999_999_999, n)).astype(str),
                     np.char.add(np.char.add(s_pin, "."), np.char.add(g_pin,
                                 (ids % 997).astype(str))))
    domain = np.where(qq, "qq.com", _pick(rng, EMAIL_DOMAINS, None, n).astype(str))
    email = np.char.add(np.char.add(local.astype(str), "@"), domain.astype(str))
    email[rng.random(n) < 0.12] = ""
    employer_pool = {k: np.array(v) for k, v in EMPLOYERS.items()}
    employer = np.full(n, "", dtype=object)
    for key, pool in employer_pool.items():
        mask = (industry == key) & ~np.isin(occupation, ["student", "homemaker", "retired"])
        employer[mask] = pool[rng.integers(0, len(pool), int(mask.sum()))]
    employer[occupation == "business_owner"] = np.char.add(
        city[occupation == "business_owner"].astype(str), "某贸易有限公司")

    c_email = rng.random(n) < 0.45
    c_sms = rng.random(n) < 0.6
    c_phone = rng.random(n) < 0.35
    asked = c_email | c_sms | c_phone | (rng.random(n) < 0.3)
    consent_at = (np.maximum(opened, today - 1000) * 86400
                  + rng.integers(0, 86400 * 300, n)).clip(max=(today - 1) * 86400)
    source = _pick(rng, ["branch", "app", "web", "referral", "bank", "other"],
                   [18, 45, 8, 14, 12, 3], n)
    now = _now_text()

    frame = pd.DataFrame({
        "id": ids,
        "created_at": now,
        "updated_at": now,
        "client_no": client_no,
        "name": name,
        "gender": gender,
        "birth_date": _as_dates(birth),
        "phone": phone,
        "phone_tail": phone_tail,
        "email": email,
        "id_number": "",  # PIPL data minimisation: the demo never holds ID numbers
        "city": city,
        "occupation": occupation,
        "industry": industry,
        "employer": employer,
        "education": education,
        "has_children": has_children,
        "opened_on": _as_dates(opened),
        "branch_id": branch_ids,
        "rm_id": pd.Series(rm).where(rm > 0).astype("Int64"),
        "status": status,
        "source_channel": source,
        "risk_level": risk_level,
        "risk_assessed_on": _nullable_dates(assessed, risk > 0),
        "risk_expires_on": _nullable_dates(assessed + RISK_VALID_DAYS, risk > 0),
        "investor_type": investor_type,
        "aum": aum_cents / 100,
        "first_funded_on": _nullable_dates(first_funded, funded),
        "last_purchase_on": _nullable_dates(last_purchase, count > 0),
        "consent_email": c_email,
        "consent_sms": c_sms,
        "consent_phone": c_phone,
        "consent_updated_at": pd.Series(
            np.where(asked, consent_at, 0).astype("datetime64[s]")).where(asked),
    })
    return _People(frame=frame, funded=funded, risk=risk, aum_cents=aum_cents, txn_start=start,
                   txn_end=end, txn_count=count, last_day=last, first_funded=first_funded,
                   status=status.astype(str), window_start=window_start)


def _nullable_dates(days: np.ndarray, present: np.ndarray) -> pd.Series:
    return pd.Series(_as_dates(days)).where(present)


def _norm(weights: list[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def _now_text() -> str:
    return timezone.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- holdings -------------------------------------------------------------------------------
def _holdings(spec: DemoSpec, people: _People, products: _Products, as_of: date) -> pd.DataFrame:
    """A few suitable positions per client with assets; market values sum exactly to AUM."""
    rng = np.random.default_rng([spec.seed, 2])
    holders = np.flatnonzero(people.aum_cents > 0)
    risk = np.maximum(people.risk[holders], 1)
    pool = products.upto[risk]
    k = np.minimum(1 + rng.binomial(5, 0.35, len(holders))
                   + (people.aum_cents[holders] > 500_000_000) * 2, pool)
    owner = np.repeat(holders, k)
    first = np.repeat(np.cumsum(k) - k, k)
    slot = np.arange(len(owner)) - first
    start = np.repeat(rng.integers(0, 1 << 30, len(holders)), k)
    pool_rep = np.repeat(pool, k)
    product_idx = products.by_risk[(start + slot) % pool_rep]  # consecutive -> distinct
    w = rng.exponential(1.0, len(owner))
    share = w / np.repeat(np.add.reduceat(w, np.cumsum(k) - k), k)
    cents = np.floor(share * people.aum_cents[owner]).astype(np.int64)
    is_first = slot == 0
    shortfall = people.aum_cents[holders] - np.add.reduceat(cents, np.cumsum(k) - k)
    cents[is_first] += shortfall
    price = products.price[product_idx]
    # A bond or certificate matures with its product; a position in an asset-management plan
    # at the end of its own holding period (up to POSITION_TERM_DAYS after today).
    maturity = products.frame["maturity_date"].to_numpy(dtype="datetime64[D]")[product_idx]
    own_term = products.frame["product_type"].to_numpy()[product_idx] == "wealth_management"
    term = np.random.default_rng([spec.seed, 6]).integers(1, POSITION_TERM_DAYS + 1, len(owner))
    maturity[own_term] = _as_dates(_days(as_of) + term[own_term])
    return pd.DataFrame({
        "id": np.arange(1, len(owner) + 1, dtype=np.int64),
        "as_of": np.datetime64(as_of - timedelta(days=1), "D"),
        "quantity": np.round(cents / 100 / price, 4),
        "market_value": cents / 100,
        "maturity_date": pd.Series(maturity),
        "client_id": people.frame["id"].to_numpy()[owner],
        "product_id": products.frame["id"].to_numpy()[product_idx],
    })


# --- transactions ---------------------------------------------------------------------------
def _transaction_chunks(spec: DemoSpec, people: _People, products: _Products,
                        as_of: date) -> Iterator[pd.DataFrame]:
    """Purchases in chunks of whole clients (~txn_chunk_rows rows) to bound memory."""
    counts = people.txn_count
    cum = np.cumsum(counts)
    total = int(cum[-1]) if len(cum) else 0
    bounds = np.searchsorted(cum, np.arange(spec.txn_chunk_rows, total, spec.txn_chunk_rows),
                             side="left") + 1
    edges = [0, *sorted(set(bounds.tolist())), len(counts)]
    next_id = 1
    client_ids = people.frame["id"].to_numpy()
    amount_base = np.clip(people.aum_cents / 100 * 0.06, 2_000, 5_000_000)
    amount_base[people.aum_cents == 0] = 20_000
    risk = np.maximum(people.risk, 1)
    for chunk_no, (c0, c1) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        cnt = counts[c0:c1]
        m = int(cnt.sum())
        if m == 0:
            continue
        rng = np.random.default_rng([spec.seed, 3, chunk_no])
        owner = np.repeat(np.arange(c0, c1), cnt)
        seg_start = np.repeat(np.cumsum(cnt) - cnt, cnt)
        is_last = (np.arange(m) - seg_start) == 0
        start, last = people.txn_start[owner], people.last_day[owner]
        day = start + np.floor(rng.random(m) * (last - start + 1)).astype(np.int64)
        day[is_last] = last[is_last]
        # Seconds after local midnight: trading hours heavier, app purchases into the evening.
        sec = np.where(rng.random(m) < 0.7, rng.integers(9 * 3600 + 1800, 15 * 3600, m),
                       rng.integers(8 * 3600, 22 * 3600, m))
        traded = (day * 86400 + sec - UTC_OFFSET_SECONDS).astype("datetime64[s]")
        pool = products.upto[risk[owner]]
        pick = np.floor(rng.random(m) ** 1.6 * pool).astype(np.int64)
        product_idx = products.by_risk[pick]
        amount = np.round(np.clip(rng.lognormal(np.log(amount_base[owner]), 1.1), 100, 5e8), 2)
        revenue = np.round(amount * products.rate[product_idx] * rng.uniform(0.6, 1.4, m), 2)
        channel = SALES_CHANNELS[rng.choice(len(SALES_CHANNELS), size=m, p=SALES_CHANNEL_P)]
        ids = np.arange(next_id, next_id + m, dtype=np.int64)
        next_id += m
        yield pd.DataFrame({
            "id": ids,
            "txn_id": 9_000_000_000_000 + ids,
            "traded_at": traded,
            "amount": amount,
            "revenue": revenue,
            "channel": channel,
            "client_id": client_ids[owner],
            "product_id": products.frame["id"].to_numpy()[product_idx],
        })


# --- cash flows -----------------------------------------------------------------------------
_DEPOSIT, _WITHDRAWAL, _TRANSFER = "deposit", "withdrawal", "transfer"
_BANK_HOURS = (9 * 3600, 16 * 3600)  # bank-securities transfers: 9:00-16:00 Beijing time


@dataclass
class _TradingDays:
    """The official trading days from day number `first` on (weekdays that are not public
    holidays; a year the calendar does not know yet: its weekdays), as day numbers."""

    first: int
    days: np.ndarray  # the trading days, ascending
    through: np.ndarray  # through[i]: how many trading days there are up to day first + i

    @classmethod
    def between(cls, first: int, last: int) -> _TradingDays:
        span = np.arange(first, last + 1)
        trading = (span + 3) % 7 < 5  # day 0, 1970-01-01, was a Thursday
        epoch = date(1970, 1, 1)
        for i in np.flatnonzero(trading):
            try:
                trading[i] = not chinese_calendar.is_holiday(epoch + timedelta(days=int(span[i])))
            except NotImplementedError:
                pass
        return cls(first, span[trading], np.cumsum(trading))

    def last_before(self, day: int, count: int) -> np.ndarray:
        """The (at most) `count` trading days before `day`, latest first."""
        known = self.days[self.days < day]
        return known[::-1][:count]

    def pick(self, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
        """For each lo..hi, the trading day at quantile u (0 <= u < 1) among its trading days;
        a range without one keeps the calendar day at u."""
        before = np.where(lo > self.first, self.through[np.maximum(lo - 1 - self.first, 0)], 0)
        upto = self.through[hi - self.first]
        count = upto - before
        chosen = self.days[np.minimum(before + np.floor(u * count).astype(np.int64),
                                      len(self.days) - 1)]
        return np.where(count > 0, chosen,
                        lo + np.floor(u * (hi - lo + 1)).astype(np.int64))


def _cash_flow_chunks(spec: DemoSpec, people: _People, as_of: date) -> Iterator[pd.DataFrame]:
    """Deposits, withdrawals and transfers in chunks of whole clients (~txn_chunk_rows rows).

    Every funded client's first deposit is on its first_funded_on; then CASH_FLOWS_PER_YEAR
    flows at random trading days of the purchase window, sized to the client's AUM; the first
    deposit is what makes the flows net to 80-105% of the AUM (the rest is market movement).
    LARGE_INFLOW_SHARE of active clients also deposited 30-60% of their AUM on one of the last
    LARGE_INFLOW_TRADING_DAYS trading days; a closed account's money went out when it closed.
    """
    n = len(people.funded)
    today = _days(as_of)
    rng = np.random.default_rng([spec.seed, 4])
    status, first = people.status, people.first_funded
    funded = people.funded
    closed = funded & (status == "closed")
    still_open = funded & ~closed
    aum = people.aum_cents / 100
    base = np.where(closed, np.exp(rng.normal(np.log(60_000), 1.2, n)).clip(1_000, 5e7), aum)
    lo = np.maximum(first + 1, people.window_start)
    hi = np.minimum(people.txn_end, today - 1)
    span = np.clip(hi - lo + 1, 0, None)
    rate = np.select([status == "active", status == "dormant"],
                     [CASH_FLOWS_PER_YEAR["active"], CASH_FLOWS_PER_YEAR["dormant"]], 0.0)
    extra = np.where(still_open, rng.poisson(rate * span / 365.2425), 0).astype(np.int64)
    target = np.where(still_open, aum * rng.uniform(0.8, 1.05, n), 0.0)

    calendar = _TradingDays.between(people.window_start - 15, today)
    recent = calendar.last_before(today, LARGE_INFLOW_TRADING_DAYS)
    large = still_open & (status == "active") & (rng.random(n) < LARGE_INFLOW_SHARE)
    large_day = np.maximum(recent[rng.integers(0, len(recent), n)], first)
    large_amount = np.where(large, np.ceil(base * rng.uniform(0.3, 0.6, n) / 100) * 100, 0.0)
    closing_day = np.minimum(np.maximum(people.txn_end, first + 1), today - 1)
    closed_amount = np.maximum(np.round(base, -2), 1_000)

    counts = funded.astype(np.int64) + extra + large + closed
    cum = np.cumsum(counts)
    total = int(cum[-1]) if n else 0
    bounds = np.searchsorted(cum, np.arange(spec.txn_chunk_rows, total, spec.txn_chunk_rows),
                             side="left") + 1
    edges = [0, *sorted(set(bounds.tolist())), n]
    client_ids = people.frame["id"].to_numpy()
    next_id = 1
    for chunk_no, (c0, c1) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        m = int(counts[c0:c1].sum())
        if m == 0:
            continue
        crng = np.random.default_rng([spec.seed, 5, chunk_no])
        k = c1 - c0
        # the flows after the first deposit
        owner = np.repeat(np.arange(c0, c1), extra[c0:c1])
        local = owner - c0
        day = calendar.pick(lo[owner], hi[owner], crng.random(len(owner)))
        u = crng.random(len(owner))
        kind = np.where(u < 0.52, _DEPOSIT, np.where(u < 0.92, _WITHDRAWAL, _TRANSFER))
        inflow = (kind == _DEPOSIT) | ((kind == _TRANSFER) & (crng.random(len(owner)) < 0.5))
        size = np.minimum(base[owner] * crng.lognormal(np.log(0.08), 0.9, len(owner)),
                          base[owner])
        size = np.maximum(np.where(size >= 1_000, np.round(size, -2), np.round(size)), 100.0)
        ins = np.bincount(local, weights=np.where(inflow, size, 0.0), minlength=k)
        outs = np.bincount(local, weights=np.where(inflow, 0.0, size), minlength=k)
        # The first deposit makes up the difference to the target; where later deposits alone
        # overshoot it, they are scaled down so the first stays at least a tenth of it.
        t, big = target[c0:c1], large_amount[c0:c1]
        floor = np.maximum(0.1 * t, 100.0)
        over = (ins > 0) & (t - ins + outs - big < floor)
        scale = np.where(over, np.clip((t + outs - big - floor) / np.maximum(ins, 1.0), 0.05, 1),
                         1.0)
        size = np.where(inflow, np.maximum(np.round(size * scale[local], 2), 1.0), size)
        ins = np.bincount(local, weights=np.where(inflow, size, 0.0), minlength=k)
        first_amount = np.where(closed[c0:c1], closed_amount[c0:c1],
                                np.round(np.maximum(t - ins + outs - big, 100.0), 2))

        who = np.arange(c0, c1)
        f_owner = who[funded[c0:c1]]
        g_owner = who[large[c0:c1]]
        x_owner = who[closed[c0:c1]]
        owners = np.concatenate([f_owner, owner, g_owner, x_owner])
        days = np.concatenate([first[f_owner], day, large_day[g_owner], closing_day[x_owner]])
        amounts = np.concatenate([first_amount[f_owner - c0], np.where(inflow, size, -size),
                                  large_amount[g_owner], -closed_amount[x_owner]])
        kinds = np.concatenate([np.full(len(f_owner), _DEPOSIT), kind,
                                np.full(len(g_owner), _DEPOSIT),
                                np.full(len(x_owner), _WITHDRAWAL)])
        seconds = crng.integers(*_BANK_HOURS, len(owners))
        order = np.argsort(owners, kind="stable")
        ids = np.arange(next_id, next_id + m, dtype=np.int64)
        next_id += m
        yield pd.DataFrame({
            "id": ids,
            "flow_id": 8_000_000_000_000 + ids,
            "at": ((days * 86400 + seconds - UTC_OFFSET_SECONDS)[order]).astype("datetime64[s]"),
            "amount": amounts[order],
            "kind": kinds[order],
            "client_id": client_ids[owners[order]],
        })


# --- writers --------------------------------------------------------------------------------
class _Timer:
    def __init__(self, report: DemoReport, log: Callable[[str], None]):
        self.report, self.log = report, log

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        self.log(f"{phase} ...")
        yield
        took = time.perf_counter() - t0
        self.report.timings[phase] = self.report.timings.get(phase, 0.0) + took
        self.log(f"{phase}: {took:.1f}s")


def _writer_for(spec: DemoSpec) -> _Writer:
    if connection.vendor == "postgresql":
        return _PostgresWriter(bulk=spec.total_transactions >= BULK_THRESHOLD_ROWS)
    return _SqliteWriter()


class _Writer:
    @contextmanager
    def session(self, log: Callable[[str], None], *, reset: bool) -> Iterator[None]:
        with transaction.atomic():
            if reset:
                demo_wipe()
            yield

    def write(self, table: str, frame: pd.DataFrame) -> int:
        raise NotImplementedError

    def write_chunks(self, table: str, chunks: Iterator[pd.DataFrame]) -> int:
        return sum(self.write(table, chunk) for chunk in chunks)

    def finish(self) -> None:
        """Reset id sequences past the explicit ids the generator wrote."""

    def analyze(self) -> None:
        pass


class _SqliteWriter(_Writer):
    def write(self, table: str, frame: pd.DataFrame) -> int:
        cols = list(frame.columns)
        data = {}
        for col in cols:
            s = frame[col]
            if pd.api.types.is_datetime64_any_dtype(s):
                fmt = "%Y-%m-%d" if col.endswith(("_on", "_date")) or col == "as_of" \
                    else "%Y-%m-%d %H:%M:%S"
                data[col] = s.dt.strftime(fmt).astype(object).where(s.notna(), None)
            elif s.dtype == object:
                data[col] = s
            else:  # tolist() yields Python scalars, which sqlite3 can bind
                data[col] = pd.Series(s.tolist(), dtype=object).where(s.notna().to_numpy(), None)
        rows = list(zip(*(data[c].tolist() for c in cols), strict=True))
        sql = (f"INSERT INTO {table} ({', '.join(cols)}) "
               f"VALUES ({', '.join(['%s'] * len(cols))})")
        with connection.cursor() as cur:
            cur.executemany(sql, rows)
        return len(rows)


class _PostgresWriter(_Writer):
    """COPY in one transaction; big loads drop secondary indexes first and rebuild them after.

    All of it runs in one transaction, so a crash mid-load rolls back to the tables exactly as
    the migrations left them. The definitions are read from the catalogue just before the drop
    and replayed verbatim, so whatever the migrations created is what comes back.
    """

    def __init__(self, *, bulk: bool):
        self.bulk = bulk
        self.saved_constraints: list[tuple[str, str, str]] = []
        self.saved_indexes: list[str] = []
        self.log: Callable[[str], None] = lambda _m: None
        self.freeze = False

    @contextmanager
    def session(self, log: Callable[[str], None], *, reset: bool) -> Iterator[None]:
        self.log = log
        # Truncated in this same transaction, the tables can take COPY ... FREEZE: rows land
        # already frozen, so the first reader does not rewrite 20M rows to set hint bits.
        self.freeze = reset
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")
                cur.execute("SET LOCAL maintenance_work_mem = '1GB'")
                cur.execute("SET LOCAL max_parallel_maintenance_workers = 2")
                cur.execute("SET LOCAL TIME ZONE 'UTC'")
            if reset:
                demo_wipe()
            if self.bulk:
                with connection.cursor() as cur:
                    # ALTER TABLE refuses to run under pending deferred FK checks (e.g. from
                    # staff rows written earlier in an enclosing transaction): fire them now.
                    cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
                self._drop_secondary()
            yield

    def _drop_secondary(self) -> None:
        with connection.cursor() as cur:
            for table in BULK_TABLES:
                # Foreign keys and unique constraints (not the PK, nor a unique key an FK
                # relies on); CHECKs stay: cheap per row, and their text survives unchanged.
                cur.execute(
                    """
                    SELECT c.conname, pg_get_constraintdef(c.oid)
                    FROM pg_constraint c
                    WHERE c.conrelid = %s::regclass AND c.contype IN ('f', 'u')
                      AND NOT (c.contype = 'u' AND EXISTS (
                          SELECT 1 FROM pg_constraint f
                          WHERE f.contype = 'f' AND f.conindid = c.conindid))
                    ORDER BY c.contype = 'f', c.conname
                    """, [table])
                for name, definition in cur.fetchall():
                    self.saved_constraints.append((table, name, definition))
                    cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
                cur.execute(
                    """
                    SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                    FROM pg_index i
                    WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
                      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                    """, [table])
                for name, definition in cur.fetchall():
                    self.saved_indexes.append(definition)
                    cur.execute(f"DROP INDEX {name}")
        self.log(f"dropped {len(self.saved_indexes)} indexes and "
                 f"{len(self.saved_constraints)} constraints for the load")

    def write(self, table: str, frame: pd.DataFrame) -> int:
        self._copy(table, list(frame.columns), _csv(frame))
        return len(frame)

    def write_chunks(self, table: str, chunks: Iterator[pd.DataFrame]) -> int:
        """Format chunk n+1 in a thread while PostgreSQL ingests chunk n (two cores, two jobs)."""
        buffers: queue.Queue = queue.Queue(maxsize=2)
        columns: list[str] = []
        counted = [0]

        def produce() -> None:
            try:
                for chunk in chunks:
                    if not columns:
                        columns.extend(chunk.columns)
                    counted[0] += len(chunk)
                    buffers.put(_csv(chunk))
            except BaseException as exc:  # surfaced in the consumer
                buffers.put(exc)
            buffers.put(None)

        worker = threading.Thread(target=produce, name="demo-csv", daemon=True)
        worker.start()
        while (item := buffers.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            self._copy(table, columns, item)
            self.log(f"  {table}: {counted[0]:,} rows formatted")
        worker.join()
        return counted[0]

    def _copy(self, table: str, columns: list[str], data: str) -> None:
        text_cols = ", ".join(c for c in columns if c in _TEXT_COLUMNS)
        force = f", FORCE_NOT_NULL ({text_cols})" if text_cols else ""
        freeze = ", FREEZE" if self.freeze else ""
        sql = (f"COPY {table} ({', '.join(columns)}) FROM STDIN "
               f"WITH (FORMAT csv{freeze}{force})")
        with connection.cursor() as cur:
            cur.copy_expert(sql, io.StringIO(data), 1 << 20)

    def finish(self) -> None:
        with connection.cursor() as cur:
            # Fire deferred FK checks now: an index cannot be built under pending triggers.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for definition in self.saved_indexes:
                cur.execute(definition)
            for table, name, definition in self.saved_constraints:
                cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            for table in CLIENT_TABLES:
                cur.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)", [table])

    def analyze(self) -> None:
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {', '.join(CLIENT_TABLES)}")


# Character columns: an empty CSV field must load as '' (blank), not NULL.
_TEXT_COLUMNS = {
    "client_no", "name", "gender", "phone", "phone_tail", "email", "id_number", "city",
    "occupation", "industry", "employer", "education", "status", "source_channel", "risk_level",
    "investor_type", "product_code", "product_type", "txn_id", "channel", "flow_id", "kind",
}


def _csv(frame: pd.DataFrame) -> str:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False)
    return buf.getvalue()


# --- the demo's history: what a user of `make run` finds on the interactions and imports pages
DEMO_IMPORT_NAME = "demo-products.csv"
_DEMO_NOTES = [
    ("call", "reached", "季度回访：客户关注债券基金到期再投资。"),
    ("meeting", "interested", "面谈：介绍稳健理财组合，客户有兴趣，下周再约。"),
    ("call", "no_answer", ""),
    ("call", "follow_up", "客户出差中，约定月底再联系。"),
    ("note", "none", "客户偏好电话沟通，不看邮件。"),
]


def demo_extend(*, log: Callable[[str], None] = print) -> None:
    """Interactions in the books of the demo RMs and one finished import; run again, adds
    nothing (demo_setup calls every app's `demo.demo_extend`, lowest layer first)."""
    _demo_interactions(log)
    _demo_import(log)


def _demo_interactions(log: Callable[[str], None]) -> None:
    from clients.models import Client, Interaction
    from clients.services import interaction_log

    rms = list(User.objects.filter(username__in=("rm", "rm2")).order_by("username"))
    now = timezone.now()
    made = 0
    for rm in rms:
        if Interaction.objects.filter(author=rm).exists():
            continue
        clients = list(Client.objects.filter(rm=rm).order_by("-aum")[:12])
        for i, client in enumerate(clients):
            for j, (kind, outcome, note) in enumerate(_DEMO_NOTES[i % 3: i % 3 + 2]):
                interaction_log(client=client, author=rm, kind=kind, outcome=outcome,
                                note=note, occurred_at=now - timedelta(days=3 + 9 * i + 4 * j))
                made += 1
    if made:
        log(f"Logged {made} demo interactions.")


def _demo_import(log: Callable[[str], None]) -> None:
    """A products file (the demo's own products, so nothing changes) imported by ops through
    the real import job: the imports page lists a finished job with its file."""
    from django.core.files.base import ContentFile

    from clients.import_services import import_job_create, import_job_run
    from clients.ingest.specs import SPECS
    from clients.models import ImportJob, ImportKind, Product
    from core.spreadsheet import csv_bytes

    if ImportJob.objects.filter(original_name=DEMO_IMPORT_NAME).exists():
        return
    spec = SPECS[ImportKind.PRODUCTS]
    rows = [spec.names]
    for p in Product.objects.order_by("product_code")[:40]:
        values = {"product_code": p.product_code, "name": p.name, "product_type": p.product_type,
                  "risk_level": p.risk_level, "is_active": "yes" if p.is_active else "no",
                  "maturity_date": p.maturity_date.isoformat() if p.maturity_date else ""}
        rows.append([values.get(name, "") for name in spec.names])
    ops = User.objects.filter(username="ops").first()
    job = import_job_create(kind=ImportKind.PRODUCTS, file=ContentFile(csv_bytes(rows)),
                            user=ops, original_name=DEMO_IMPORT_NAME, queue=False)
    job = import_job_run(job_id=job.pk) or job
    job.refresh_from_db()
    log(f"Demo import {DEMO_IMPORT_NAME}: {job.status} ({job.rows_total} rows).")
