"""Benchmark newsletter dispatch against plain smtplib, on PostgreSQL and Redis.

    DATABASE_URL=postgres://crm:crm@127.0.0.1/crm REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m bench.dispatch --messages 20000

Uses (creating and migrating it) the database `crm_dispatchbench` on DATABASE_URL's server,
with --messages clients (email, consent, three holdings each) in a static segment. A local
aiosmtpd sink runs in a subprocess and counts messages and bytes. Timed in the same run:
(a) the product: edition_dispatch_start (freeze) + dispatch through ONE real Celery worker
process (`celery worker --pool=solo`) until the sink counted every message; (b) the baseline:
the same number of pre-rendered messages (one product message, byte for byte) sent with plain
smtplib over one reused connection; (c) the product with TWO worker processes. With --reps N
the sequence (a), (b), (c) repeats, so product and baseline alternate on the same sink.
Rate limits are off.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BENCH_DB = "crm_dispatchbench"
ROOT = Path(__file__).resolve().parent.parent


def _sink_main(port: int, count, size, ready) -> None:
    import asyncio  # noqa: F401  (aiosmtpd's loop)

    from aiosmtpd.controller import Controller

    class Counter:
        async def handle_DATA(self, server, session, envelope):
            with count.get_lock():
                count.value += 1
            with size.get_lock():
                size.value += len(envelope.content)
            return "250 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


class Sink:
    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.count, self.size, ready = mp.Value("l", 0), mp.Value("q", 0), mp.Event()
        self.proc = mp.Process(target=_sink_main, args=(self.port, self.count, self.size, ready),
                               daemon=True)
        self.proc.start()
        ready.wait(30)

    def reset(self):
        with self.count.get_lock():
            self.count.value = 0
        with self.size.get_lock():
            self.size.value = 0

    def wait_for(self, n: int, timeout: float = 3600) -> float:
        deadline = time.monotonic() + timeout
        while self.count.value < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"sink counted {self.count.value} of {n}")
            time.sleep(0.01)
        return time.perf_counter()

    def stop(self):
        self.proc.terminate()


def bench_database_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + BENCH_DB))


def ensure_database(url: str) -> None:
    import psycopg2

    parts = urlsplit(url)
    admin = psycopg2.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                             user=parts.username, password=parts.password, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{BENCH_DB}"')
    admin.close()


EDITORIAL = """
## 宏观与利率 / Macro and rates

{para}

### 信用市场 / Credit

| 品种 | 观点 | 期限 |
|---|---|---|
| 国债 | 中性偏多 | 5-10年 |
| 高等级信用 | 超配 | 1-3年 |
| 权益 | 均衡 | - |

> 投资有风险，过往业绩不代表未来表现。
"""
PARA = ("本周债券收益率在央行流动性投放后小幅下行，十年期国债在2.3%附近震荡。我们维持久期中性、"
        "信用下沉谨慎的观点，建议关注高等级短久期品种的票息价值。\n\nEquity markets consolidated "
        "after a strong month; we keep a balanced allocation with a tilt to dividend payers "
        "and quality growth, and would add on weakness rather than chase. ")


def seed(n: int):
    """Clients with email and consent, three holdings each, a static segment, products."""
    from clients.models import Client, Holding, Product
    from core.models import Branch, Role
    from core.services import staff_user_upsert
    from segments.models import Segment, SegmentMembership

    segment = Segment.objects.filter(code="bench-dispatch").first()
    if segment is not None and segment.memberships.count() == n:
        return segment
    Branch.objects.get_or_create(code="BENCH", defaults={"name": "Bench"})
    rm, _ = staff_user_upsert(username="bench_rm", role=Role.RM, branch_code="BENCH",
                              display_name="王经理")
    products = []
    for i, (ptype, risk) in enumerate([("fixed_income", "R2"), ("fund", "R3"),
                                       ("wealth_management", "R2"), ("stock", "R4"), ("fund", "R1"),
                                       ("fixed_income", "R3")]):
        p, _ = Product.objects.get_or_create(
            product_code=f"BP{i:03d}", defaults={"name": f"稳健精选{i}号", "product_type": ptype,
                                                 "risk_level": risk})
        products.append(p)
    Client.objects.filter(client_no__startswith="DB").delete()
    branch = Branch.objects.get(code="BENCH")
    today = dt.date(2026, 11, 1)
    Client.objects.bulk_create([
        Client(client_no=f"DB{i:08d}", name=f"客户{i}", gender="F", email=f"c{i}@bench.example",
               consent_email=True, rm=rm, branch=branch, risk_level="C4",
               risk_assessed_on=today - dt.timedelta(days=30),
               risk_expires_on=today + dt.timedelta(days=700), aum=Decimal("6000000"))
        for i in range(n)], batch_size=5000)
    ids = list(Client.objects.filter(client_no__startswith="DB").values_list("id", flat=True))
    Holding.objects.bulk_create([
        Holding(client_id=cid, product=products[(cid + k) % len(products)], as_of=today,
                quantity=Decimal("1000"), market_value=Decimal(100000 * (k + 1)))
        for cid in ids for k in range(3)], batch_size=10000)
    if segment is None:
        segment = Segment.objects.create(code="bench-dispatch", kind="static",
                                         name_en="Dispatch bench", name_zh="发送基准")
    segment.memberships.all().delete()
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, client_id=cid) for cid in ids], batch_size=10000)
    return segment


def new_edition(segment):
    from core.models import User
    from newsletters.models import Edition, EditionSection, EditionStatus, Publication

    publication, _ = Publication.objects.get_or_create(
        slug="bench-weekly", defaults={"name": "HNW Weekly Insight", "audience": segment,
                                       "from_name": "Research Desk",
                                       "from_email": "insight@broker.example",
                                       "reply_to": "replies@broker.example"})
    number = (publication.editions.order_by("-number").values_list("number", flat=True)
              .first() or 0) + 1
    author = User.objects.get(username="bench_rm")
    edition = Edition.objects.create(publication=publication, number=number,
                                     subject=f"本周市场观点 #{number}", preheader="Rates, credit",
                                     status=EditionStatus.APPROVED, author=author,
                                     approved_version=1)
    body = EDITORIAL.format(para=PARA)
    codes = [f"BP{i:03d}" for i in range(6)]
    EditionSection.objects.bulk_create([
        EditionSection(edition=edition, position=1, kind="editorial", title="市场观点",
                       body=body),
        EditionSection(edition=edition, position=2, kind="research", title="研究报告",
                       data={"title": "2027年度策略", "summary": PARA[:260],
                             "url": "https://research.broker.example/r/2027"}),
        EditionSection(edition=edition, position=3, kind="holdings", title="您的持仓",
                       data={"intro": "您的主要持仓与我们的观点：", "top_n": 5,
                             "notes_by_type": {"fixed_income": PARA[:90],
                                               "fund": PARA[:90], "stock": PARA[:90],
                                               "wealth_management": PARA[:90]}}),
        EditionSection(edition=edition, position=4, kind="picks", title="精选产品",
                       data={"product_codes": codes, "notes": {c: PARA[:60] for c in codes}}),
        EditionSection(edition=edition, position=5, kind="rm_note", title="理财经理寄语",
                       data={"fallback": "如需调整配置，欢迎随时联系我。"}),
    ])
    from newsletters.approval import approval_fields

    Edition.objects.filter(pk=edition.pk).update(**approval_fields(edition))  # as approved
    edition.refresh_from_db()
    return edition


def start_worker(env: dict, queue: str, name: str) -> subprocess.Popen:
    log = open(ROOT / "var" / f"bench-dispatch-{name}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool=solo",
         "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", f"{name}@%h"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def run_product(segment, sink, n, workers: int, env: dict, queue: str) -> tuple[float, int, int]:
    from newsletters.dispatch import edition_dispatch_start
    from newsletters.models import Delivery

    procs = [start_worker(env, queue, f"w{i}-{uuid.uuid4().hex[:4]}") for i in range(workers)]
    time.sleep(6)  # worker start-up is not dispatch
    edition = new_edition(segment)
    sink.reset()
    t0 = time.perf_counter()
    edition_dispatch_start(edition=edition, actor=None)
    t1 = sink.wait_for(n)
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(30)
    sent = Delivery.objects.filter(edition=edition, status="sent").count()
    return t1 - t0, sent, edition.id


def sample_message(edition_id: int) -> bytes:
    """One product message, byte for byte as a worker sends it, for the baseline."""
    from newsletters import rendering
    from newsletters.models import Delivery

    delivery = (Delivery.objects.filter(status="sent", edition_id=edition_id)
                .select_related("edition__publication", "client__rm").first())
    edition = delivery.edition
    context = rendering.delivery_context(edition=edition, client=delivery.client)
    rendered = rendering.render_edition(edition=edition, context=context, delivery=delivery)
    return rendering.message_bytes(delivery=delivery, rendered=rendered)[2]


def run_baseline(sink, n: int, raw: bytes) -> float:
    sink.reset()
    t0 = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", sink.port)
    for i in range(n):
        smtp.sendmail("insight@broker.example", [f"c{i}@bench.example"], raw)
    smtp.quit()
    return sink.wait_for(n) - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--broker", default=os.environ.get("REDIS_URL",
                                                           "redis://127.0.0.1:6379/0"))
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args(argv)

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL (the bench uses crm_dispatchbench there)")
    db_url = bench_database_url(url)
    ensure_database(db_url)
    queue = f"bench-dispatch-{uuid.uuid4().hex[:6]}"
    sink = Sink()
    os.environ.update({"DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "config.settings.local",
                       "DEBUG": "false", "CELERY_BROKER_URL": args.broker,
                       "CELERY_TASK_DEFAULT_QUEUE": queue, "LOG_LEVEL": "WARNING",
                       "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
                       "NEWSLETTER_RATE_PER_SECOND": "0", "NEWSLETTER_RATE_PER_HOUR": "0"})
    if args.chunk_size:
        os.environ["NEWSLETTER_CHUNK_SIZE"] = str(args.chunk_size)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    n = args.messages
    t = time.perf_counter()
    segment = seed(n)
    print(f"data: {n} clients ready in {time.perf_counter() - t:.1f}s "
          f"(chunk size {settings.NEWSLETTER_CHUNK_SIZE})", flush=True)
    env = dict(os.environ)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    workers_list = [int(w) for w in args.workers.split(",")]
    raw = None
    for rep in range(1, args.reps + 1):
        # product and baseline alternate against the same sink process, in the same run
        for workers in workers_list:
            seconds, sent, edition_id = run_product(segment, sink, n, workers, env, queue)
            size = sink.size.value / max(1, n) / 1024
            print(f"rep {rep} (a) product, {workers} worker process(es): {n} messages in "
                  f"{seconds:.1f}s = {n / seconds:.0f} msg/s; avg size {size:.1f} KB; "
                  f"rows sent {sent}; load {os.getloadavg()[0]:.1f}", flush=True)
            if raw is None:
                raw = sample_message(edition_id)
            if workers == workers_list[0]:
                base = run_baseline(sink, n, raw)
                print(f"rep {rep} (b) baseline, smtplib one connection: {n} messages of "
                      f"{len(raw) / 1024:.1f} KB in {base:.1f}s = {n / base:.0f} msg/s; "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
                print(f"rep {rep} ratio (a)/(b), {workers} worker(s): "
                      f"{(n / seconds) / (n / base):.2f} (goal >= 0.5)", flush=True)
    print(f"load average: {os.getloadavg()}")
    sink.stop()


if __name__ == "__main__":
    main()
