"""Benchmark newsletter dispatch against smtplib and two Django peers, on PostgreSQL and Redis.

    pip install -r bench/requirements.txt   # django-post-office, django-mailer (bench only)
    DATABASE_URL=postgres://crm:crm@127.0.0.1/crm REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m bench.dispatch --messages 5000 --reps 3

Uses (creating and migrating it) the database `crm_dispatchbench` on DATABASE_URL's server,
with --messages clients (email, consent, three holdings each) in a static segment. A local
aiosmtpd sink runs in a subprocess and counts messages and bytes; every contender sends to the
same sink, in the same run, one after the other, each rep in the same order:

  product      edition_dispatch_start (freeze) + dispatch through real Celery worker processes
               (`--pool=solo`, one per --workers entry) until the sink counted every message:
               personal rendering, the outbox claim, a durable mark before each next message
  smtplib      pre-rendered product messages (one product message, byte for byte) over one
               reused connection, nothing recorded
  durable      smtplib plus one durable PostgreSQL commit per message (bench.dispatch_peers)
  post-office  django-post-office: bulk queue + send, one process; and send-only, 2 processes
  mailer       django-mailer: queue + send_all

At the end: the medians of the reps, the ratios the goals are stated in, the machine's cost of
one durable commit, and where one product message's time goes (in-process timers).
Rate limits are off.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import socket
import statistics
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
    sent = edition.deliveries.filter(status="sent").count()
    return t1 - t0, sent, edition.id


def profile(edition_id: int, count: int = 1000) -> dict:
    """Milliseconds per message of each step a worker runs, in-process (no SMTP, no marks)."""
    from newsletters import rendering
    from newsletters.models import Edition

    edition = Edition.objects.select_related("publication").get(pk=edition_id)
    deliveries = list(edition.deliveries.all().select_related("client__rm")
                      .order_by("id")[:count])
    for delivery in deliveries:
        delivery.edition = edition
    content = rendering.EditionContent.of(edition)
    spent = {"personal data": 0.0, "render (Jinja2, html + text)": 0.0,
             "message (Django EmailMultiAlternatives -> bytes)": 0.0}
    for start in range(0, len(deliveries), 200):
        chunk = deliveries[start:start + 200]
        t = time.perf_counter()
        contexts = rendering.delivery_contexts(edition=edition, clients=[d.client for d in chunk],
                                               content=content)
        spent["personal data"] += time.perf_counter() - t
        for delivery in chunk:
            t = time.perf_counter()
            rendered = rendering.render_edition(edition=edition, delivery=delivery,
                                                context=contexts[delivery.client_id],
                                                content=content)
            t2 = time.perf_counter()
            rendering.message_bytes(delivery=delivery, rendered=rendered)
            spent["render (Jinja2, html + text)"] += t2 - t
            spent["message (Django EmailMultiAlternatives -> bytes)"] += time.perf_counter() - t2
    return {k: v / max(1, len(deliveries)) * 1000 for k, v in spent.items()}


def _median(values):
    return statistics.median(values) if values else float("nan")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--broker", default=os.environ.get("REDIS_URL",
                                                           "redis://127.0.0.1:6379/0"))
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--peers", default="post-office,mailer",
                        help="comma-separated: post-office, mailer (empty: smtplib only)")
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args(argv)

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL (the bench uses crm_dispatchbench there)")
    db_url = bench_database_url(url)
    ensure_database(db_url)
    queue = f"bench-dispatch-{uuid.uuid4().hex[:6]}"
    sink = Sink()
    os.environ.update({"DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "bench.settings_dispatch",
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
    from bench import dispatch_peers as peers

    workers_list = [int(w) for w in args.workers.split(",")]
    rates: dict[str, list[float]] = {}
    sample = None
    edition_id = None

    def record(rep: int, name: str, seconds: float, note: str = "") -> None:
        rate = n / seconds
        rates.setdefault(name, []).append(rate)
        print(f"rep {rep} {name}: {n} messages in {seconds:.1f}s = {rate:.0f} msg/s{note}; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)

    for rep in range(1, args.reps + 1):
        for workers in workers_list:
            seconds, sent, edition_id = run_product(segment, sink, n, workers, env, queue)
            size = sink.size.value / max(1, n) / 1024
            record(rep, f"product, {workers} worker(s)", seconds,
                   f" ({size:.1f} KB, rows marked sent {sent})")
        if sample is None:
            sample = peers.sample_from(edition_id)
        record(rep, "smtplib, 1 connection", peers.smtplib_bare(sink, n, sample))
        record(rep, "smtplib + durable commit per message",
               peers.smtplib_durable(sink, n, sample, db_url))
        if "post-office" in args.peers:
            record(rep, "django-post-office queue+send, 1 process",
                   peers.post_office_queue_send(sink, n, sample, processes=1))
            record(rep, "django-post-office send-only, 2 processes",
                   peers.post_office_send_only(sink, n, sample, processes=2))
        if "mailer" in args.peers:
            record(rep, "django-mailer queue+send", peers.mailer_queue_send(sink, n, sample))

    commit_ms = _median([peers.commit_cost_ms(db_url) for _ in range(3)])
    print(f"\nmedians of {args.reps} rep(s), {n} messages of {len(sample.raw) / 1024:.1f} KB:")
    medians = {name: _median(values) for name, values in rates.items()}
    for name, rate in medians.items():
        print(f"  {name:45s} {rate:6.0f} msg/s  (reps: "
              f"{', '.join(f'{r:.0f}' for r in rates[name])})")
    print(f"one durable commit of a row's mark, alone: {commit_ms:.2f} ms")
    bare = medians["smtplib, 1 connection"]
    durable = medians["smtplib + durable commit per message"]
    for workers in workers_list:
        product = medians[f"product, {workers} worker(s)"]
        line = (f"product, {workers} worker(s): {product / bare:.2f} of smtplib (goal >= 0.5), "
                f"{product / durable:.2f} of smtplib + durable commit (goal >= 0.8)")
        for name in ("django-post-office queue+send, 1 process",
                     "django-post-office send-only, 2 processes", "django-mailer queue+send"):
            if name in medians:
                line += f", {product / medians[name]:.2f}x {name.split(',')[0]}" + (
                    f" ({name.split(', ')[1]})" if ", " in name else "")
        print(line)
    print("\nwhere one product message's time goes (in-process, 1,000 messages, ms):")
    steps = profile(edition_id)
    for step, ms in steps.items():
        print(f"  {step:50s} {ms:.3f}")
    wall = 1000 / medians[f"product, {workers_list[0]} worker(s)"]
    print(f"  {'= worker CPU for one message':50s} {sum(steps.values()):.3f}")
    print(f"  {'wall time per message, ' + str(workers_list[0]) + ' worker (median)':50s} "
          f"{wall:.3f}  (the rest: SMTP replies, marks, claims)")
    print(f"load average: {os.getloadavg()}")
    sink.stop()


if __name__ == "__main__":
    main()
