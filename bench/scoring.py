"""Benchmark value scoring against one hand-written SQL statement, on PostgreSQL (DATABASE_URL).

    DATABASE_URL=postgres://crm:crm@127.0.0.1/crm_bench \\
        .venv/bin/python -m bench.scoring --reuse

Without --reuse the demo generator first REPLACES the database's clients and purchases with
--clients / --transactions rows. Then, alternating, --repeat times: (a) the product's scoring
run end to end in this process (eager Celery) and (b) the baseline: one INSERT ... SELECT that
aggregates the window and bands with CASE into a table shaped like clients_clientscore. Last,
(c) the run through 1 and 2 real Celery worker processes (Redis at --broker).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

BASELINE_TABLE = "bench_clientscore"
BARE_TABLE = "bench_clientscore_bare"


def clear_product_rows(as_of, scheme_id) -> None:
    """Untimed, like the baseline's TRUNCATE: remove the date's rows so (a) writes into the same
    state as a nightly run for a new date (a re-run of a date also deletes, timed as 're-run')."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("DELETE FROM clients_clientscore WHERE as_of = %s AND scheme_id = %s",
                    [as_of, scheme_id])
        cur.execute("VACUUM ANALYZE clients_clientscore")


def _case(column: str, bounds: list) -> str:
    parts = " ".join(f"WHEN {column} >= {float(b)!r} THEN {i + 2}"
                     for i, b in reversed(list(enumerate(bounds))))
    return f"CASE {parts} ELSE 1 END"


def baseline_sql(scheme, run_id: int, as_of, start, end, table: str = BASELINE_TABLE) -> str:
    m = scheme.window_months
    precedence = {
        "guiding": f"f_score >= {scheme.high_score}",
        "development": f"a_score >= {scheme.high_score}",
        "potential": f"recency IS NOT NULL AND recency <= {scheme.recent_days}",
        "long_tail": "TRUE",
    }
    tier = "CASE " + " ".join(f"WHEN {precedence[r]} THEN '{r}'"
                              for r in scheme.tier_precedence) + " END"
    return f"""
    INSERT INTO {table} (client_id, scheme_id, run_id, as_of, amount, purchases,
        frequency, benefit, recency_days, amount_score, frequency_score, benefit_score,
        total_score, tier)
    SELECT id, {scheme.pk}, {run_id}, DATE '{as_of}', amount, purchases, frequency, benefit,
           recency, a_score, f_score, b_score, a_score + f_score + b_score, {tier}
    FROM (
        SELECT c.id, COALESCE(t.amount, 0) AS amount, COALESCE(t.purchases, 0) AS purchases,
               ROUND(COALESCE(t.purchases, 0)::numeric / {m}, 4) AS frequency,
               COALESCE(t.benefit, 0) AS benefit,
               DATE '{as_of}' - (t.last_at AT TIME ZONE 'Asia/Shanghai')::date AS recency,
               {_case("COALESCE(t.amount, 0)", scheme.amount_bounds)} AS a_score,
               {_case(f"COALESCE(t.purchases, 0)::numeric / {m}", scheme.frequency_bounds)}
                   AS f_score,
               {_case("COALESCE(t.benefit, 0)", scheme.benefit_bounds)} AS b_score
        FROM clients_client c
        LEFT JOIN (
            SELECT client_id, SUM(amount) AS amount, COUNT(*) AS purchases,
                   SUM(revenue) AS benefit, MAX(traded_at) AS last_at
            FROM clients_transaction
            WHERE traded_at >= '{start.isoformat()}' AND traded_at < '{end.isoformat()}'
            GROUP BY client_id
        ) t ON t.client_id = c.id
    ) s
    """


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=20_000_000)
    parser.add_argument("--reuse", action="store_true",
                        help="score the data already in the database instead of seeding")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-clients", type=int, default=250_000)
    parser.add_argument("--workers", default="1,2", help="worker-process counts for (c); '' skips")
    parser.add_argument("--broker", default=os.environ.get("REDIS_URL",
                                                           "redis://127.0.0.1:6379/0"))
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.pop("CELERY_BROKER_URL", None)  # (a) runs eagerly in this process
    import django

    django.setup()
    from django.db import connection

    from clients.scoring.engine import window_bounds
    from clients.scoring.models import ClientScore, ScoringRun
    from clients.scoring.selectors import scheme_current
    from clients.scoring.services import scoring_run_start
    from config.celery import app

    if connection.vendor != "postgresql":
        print("error: the benchmark needs PostgreSQL (DATABASE_URL)", file=sys.stderr)
        return 2
    if not args.reuse:
        from clients.demo import DemoSpec, demo_seed

        print(f"seeding {args.clients:,} clients / {args.transactions:,} purchases ...",
              flush=True)
        demo_seed(spec=DemoSpec(clients=args.clients, transactions=args.transactions),
                  reset=True)
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM clients_client")
        clients = cur.fetchone()[0]
        cur.execute("SELECT COUNT(*), (MAX(traded_at) AT TIME ZONE 'Asia/Shanghai')::date "
                    "FROM clients_transaction")
        purchases, as_of = cur.fetchone()
        cur.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        cur.execute(f"CREATE TABLE {BASELINE_TABLE} (LIKE clients_clientscore INCLUDING ALL)")
        cur.execute(f"DROP TABLE IF EXISTS {BARE_TABLE}")
        cur.execute(f"CREATE TABLE {BARE_TABLE} (LIKE clients_clientscore INCLUDING IDENTITY "
                    "INCLUDING DEFAULTS)")
    scheme = scheme_current()
    start, end = window_bounds(as_of=as_of, months=scheme.window_months)
    print(f"{clients:,} clients, {purchases:,} purchases; as of {as_of}, scheme v{scheme.version}"
          f", window [{start}, {end}), chunks of {args.chunk_clients:,} clients", flush=True)

    # (a) times the scoring run only: receivers of scoring_run_succeeded (segment refresh) are
    # downstream work with a benchmark of their own (bench/segments.py), so they are detached.
    from clients.scoring.signals import scoring_run_succeeded

    scoring_run_succeeded.receivers = []
    scoring_run_succeeded.sender_receivers_cache.clear()
    app.conf.task_always_eager = True
    product, baseline, bare, timings = [], [], [], []
    for rep in range(args.repeat):
        ScoringRun.objects.filter(as_of=as_of, status__in=ScoringRun.ACTIVE).update(
            status="failed")
        clear_product_rows(as_of, scheme.pk)
        t0 = time.perf_counter()
        run = scoring_run_start(as_of=as_of, trigger="command", chunk_clients=args.chunk_clients)
        product.append(time.perf_counter() - t0)
        run.refresh_from_db()
        assert run.status == "succeeded", run.error
        timings.append(run.timings)
        with connection.cursor() as cur:
            cur.execute(f"TRUNCATE {BASELINE_TABLE}")
            t0 = time.perf_counter()
            cur.execute(baseline_sql(scheme, run.pk, as_of, start, end))
            baseline.append(time.perf_counter() - t0)
            cur.execute(f"TRUNCATE {BARE_TABLE}")
            t0 = time.perf_counter()
            cur.execute(baseline_sql(scheme, run.pk, as_of, start, end, table=BARE_TABLE))
            bare.append(time.perf_counter() - t0)
        print(f"rep {rep + 1}: product {product[-1]:.1f}s {run.timings}  "
              f"baseline {baseline[-1]:.1f}s  bare-table baseline {bare[-1]:.1f}s", flush=True)
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {BASELINE_TABLE} b JOIN clients_clientscore s "
                    "ON s.client_id = b.client_id AND s.as_of = b.as_of AND s.scheme_id = "
                    "b.scheme_id AND s.amount_score = b.amount_score AND s.frequency_score = "
                    "b.frequency_score AND s.benefit_score = b.benefit_score AND s.tier = b.tier")
        agree = cur.fetchone()[0]
    rows = ClientScore.objects.filter(as_of=as_of, scheme=scheme).count()
    med_a, med_b = statistics.median(product), statistics.median(baseline)
    med_bare = statistics.median(bare)
    print(f"\n(a) product {[round(x, 1) for x in product]} median {med_a:.1f}s  "
          f"(b) baseline {[round(x, 1) for x in baseline]} median {med_b:.1f}s  "
          f"ratio (a)/(b) {med_a / med_b:.2f}")
    print(f"baseline into a bare table (no indexes/constraints) {[round(x, 1) for x in bare]} "
          f"median {med_bare:.1f}s; ratio (a)/(bare) {med_a / med_bare:.2f}")
    # A re-run of the same date (its DELETE of the date's rows included), once, for the record.
    ScoringRun.objects.filter(as_of=as_of, status__in=ScoringRun.ACTIVE).update(
        status="failed")
    t0 = time.perf_counter()
    run = scoring_run_start(as_of=as_of, trigger="command", chunk_clients=args.chunk_clients)
    rerun = time.perf_counter() - t0
    run.refresh_from_db()
    print(f"re-run of the same date (replacing its 1 row per client): {rerun:.1f}s "
          f"{run.timings}", flush=True)
    print(f"rows {rows:,}; baseline agrees on bands and tier for {agree:,}")
    print(f"peak RSS of this process {peak_rss_mb():,.0f} MB")

    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    for n in counts:
        seconds = _with_workers(n, args, as_of)
        print(f"(c) {n} worker process(es): {seconds:.1f}s", flush=True)
    return 0


def _with_workers(n: int, args, as_of) -> float:
    from django.conf import settings
    from django.db import connection

    from clients.scoring.models import ScoringRun
    from clients.scoring.selectors import scheme_current
    from clients.scoring.services import scoring_run_start
    from config.celery import app

    clear_product_rows(as_of, scheme_current().pk)
    db = connection.settings_dict
    url = (f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
           f"{db['PORT'] or 5432}/{db['NAME']}")
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": args.broker,
           "CELERY_TASK_DEFAULT_QUEUE": queue}
    logs = Path(settings.BASE_DIR) / "var"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool=solo",
         "--loglevel=WARNING", "--without-gossip", "--without-mingle", "-n",
         f"{queue}-{i}@%h"], cwd=settings.BASE_DIR, env=env,
        stdout=open(logs / f"{queue}-{i}.log", "w"), stderr=subprocess.STDOUT)
        for i in range(n)]
    try:
        time.sleep(8)  # let the workers connect before timing
        app.conf.update(task_always_eager=False, broker_url=args.broker,
                        task_default_queue=queue)
        app._pool = None
        app.amqp._producer_pool = None
        t0 = time.perf_counter()
        run = scoring_run_start(as_of=as_of, trigger="command", chunk_clients=args.chunk_clients)
        while True:
            run.refresh_from_db()
            if run.status in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert run.status == "succeeded", run.error
        return time.perf_counter() - t0
    finally:
        ScoringRun.objects.filter(status__in=ScoringRun.ACTIVE).update(status="failed")
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    raise SystemExit(main())
