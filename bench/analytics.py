"""Benchmark the analytics rollups and selectors at scale (PostgreSQL).

    DATABASE_URL=postgres://crm:crm@127.0.0.1:5432/crm_bench .venv/bin/python -m bench.analytics

On the data already in the database (bench.seed: 1M clients / 20M purchases), in one run:
(1) a full rebuild of the rollups (time, peak RSS of this process, size of the tables);
(2) an incremental refresh after a day of new purchases (the average daily count of the last
    90 days, for random clients, txn_id prefix BENCH-AN-), against (1): goal <= 0.2; and one
    with nothing new; the day's purchases are then deleted and their clients refreshed again
    (the script's own cleanup: the database ends as it began, plus the analytics tables);
(2b) the largest persona losing --moved-members members and getting them back, each followed by
    an incremental refresh (the segment figures and persona pairs moved);
(3) every selector with no filter, a branch filter, an RM filter and a rule-segment filter,
    as ops: the product's p95 over --reps runs against hand-written SQL on the base tables
    computing the same figures (kpis, retention, funnel: checked equal), with the ratio.
Writes only the analytics tables (created by `migrate analytics` when missing) and the
BENCH-AN- transactions it deletes again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import sys
import time


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(round(0.95 * len(ordered) + 0.5)) - 1))]


def timed(fn, reps: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(reps):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return p95(times), result


def fetch(sql: str, params=()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


# --- hand-written SQL on the base tables ---------------------------------------------------------
TZ = "Asia/Shanghai"


def client_where(dims: dict) -> tuple[str, list]:
    """The filters on clients_client c (current branch, RM, tier, segment)."""
    parts, params = ["TRUE"], []
    if dims.get("branch_id"):
        parts.append("c.branch_id = %s")
        params.append(dims["branch_id"])
    if dims.get("rm_id"):
        parts.append("c.rm_id = %s")
        params.append(dims["rm_id"])
    if dims.get("tier"):
        parts.append("EXISTS (SELECT 1 FROM clients_currentscore s WHERE s.client_id = c.id "
                     "AND s.tier = %s)")
        params.append(dims["tier"])
    if dims.get("segment_id"):
        parts.append("c.id IN (SELECT client_id FROM segments_segmentmembership "
                     "WHERE segment_id = %s)")
        params.append(dims["segment_id"])
    return " AND ".join(parts), params


def baseline_kpis(dims: dict, date_from: dt.date, date_to: dt.date, as_of: dt.date) -> list:
    from analytics.selectors import _periods

    where, params = client_where(dims)
    periods = _periods(date_from, date_to, "month")
    out = []
    ends = [min(end, as_of) for _label, _start, end in periods]
    opened = {r[0]: r[1:] for r in fetch(
        f"SELECT CAST(date_trunc('month', c.opened_on) AS date), COUNT(*), "
        f"COUNT(c.first_funded_on) FROM clients_client c WHERE {where} "
        f"AND c.opened_on BETWEEN %s AND %s GROUP BY 1", [*params, date_from, date_to])}
    cumulative = fetch(
        f"SELECT e, COUNT(c.id), COALESCE(SUM(c.aum), 0) FROM unnest(%s::date[]) e "
        f"LEFT JOIN clients_client c ON (c.opened_on IS NULL OR c.opened_on <= e) AND {where} "
        f"GROUP BY e ORDER BY e", [[end for _l, _s, end in periods], *params])
    revenue = {r[0]: r[1] for r in fetch(
        f"SELECT CAST(date_trunc('month', t.traded_at AT TIME ZONE %s) AS date), "
        f"SUM(t.revenue) FROM clients_transaction t JOIN clients_client c ON c.id = t.client_id "
        f"WHERE {where} AND t.traded_at >= %s AND t.traded_at < %s GROUP BY 1",
        [TZ, *params, _start_of(date_from), _start_of(date_to + dt.timedelta(days=1))])}
    active = dict(fetch(
        f"SELECT e, (SELECT COUNT(DISTINCT t.client_id) FROM clients_transaction t "
        f"JOIN clients_client c ON c.id = t.client_id WHERE {where} "
        f"AND t.traded_at >= ((e - 29)::timestamp AT TIME ZONE %s) "
        f"AND t.traded_at < ((e + 1)::timestamp AT TIME ZONE %s)) "
        f"FROM unnest(%s::date[]) e", [*params, TZ, TZ, ends]))
    for (label, start, _end), (_e, clients, aum), last in zip(periods, cumulative, ends,
                                                             strict=True):
        month = dt.date(start.year, start.month, 1)
        new, funded = opened.get(month, (0, 0))
        out.append({"period": label, "clients": clients, "active_clients": active[last],
                    "aum": round(float(aum), 2), "revenue": round(float(revenue.get(month) or 0),
                                                                    2),
                    "new_accounts": new, "funded_rate": round(funded / new, 4) if new else None})
    return out


def _start_of(day: dt.date):
    from django.utils import timezone

    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def baseline_retention(dims: dict, first: dt.date, last: dt.date, as_of: dt.date) -> list:
    where, params = client_where(dims)
    end = dt.date(last.year + (last.month == 12), last.month % 12 + 1, 1)
    sizes = dict(fetch(
        f"SELECT CAST(date_trunc('month', c.opened_on) AS date), COUNT(*) FROM clients_client c "
        f"WHERE {where} AND c.opened_on >= %s AND c.opened_on < %s GROUP BY 1",
        [*params, first, end]))
    active = {(r[0], r[1]): r[2] for r in fetch(
        f"SELECT CAST(date_trunc('month', c.opened_on) AS date), "
        f"CAST(date_trunc('month', t.traded_at AT TIME ZONE %s) AS date), "
        f"COUNT(DISTINCT t.client_id) FROM clients_transaction t "
        f"JOIN clients_client c ON c.id = t.client_id WHERE {where} "
        f"AND c.opened_on >= %s AND c.opened_on < %s "
        f"AND t.traded_at < ((%s::date + 1)::timestamp AT TIME ZONE %s) GROUP BY 1, 2",
        [TZ, *params, first, end, as_of, TZ])}
    out = []
    cohort = first
    while cohort <= last:
        size = sizes.get(cohort, 0)
        if size:
            reach = min((as_of.year - cohort.year) * 12 + as_of.month - cohort.month, 24)
            shares = []
            for k in range(reach + 1):
                index = cohort.year * 12 + cohort.month - 1 + k
                month = dt.date(index // 12, index % 12 + 1, 1)
                shares.append(round(active.get((cohort, month), 0) / size, 4))
            out.append({"cohort": f"{cohort.year}-{cohort.month:02d}", "size": size,
                        "retention": shares})
        cohort = dt.date(cohort.year + (cohort.month == 12), cohort.month % 12 + 1, 1)
    return out


def baseline_funnel(dims: dict, date_from: dt.date, date_to: dt.date) -> list:
    where, params = client_where(dims)
    local = f"CAST(t.traded_at AT TIME ZONE '{TZ}' AS date)"
    rows = fetch(
        f"WITH opened AS (SELECT c.id, c.opened_on, c.first_funded_on FROM clients_client c "
        f"WHERE {where} AND c.opened_on BETWEEN %s AND %s), "
        f"ranked AS (SELECT t.client_id, {local} AS day, p.product_type, "
        f"ROW_NUMBER() OVER (PARTITION BY t.client_id ORDER BY t.traded_at, t.id) AS n "
        f"FROM clients_transaction t JOIN opened o ON o.id = t.client_id "
        f"JOIN clients_product p ON p.id = t.product_id), "
        f"per AS (SELECT o.id, o.opened_on, o.first_funded_on, "
        f"MIN(r.day) AS first_day, MIN(r.day) FILTER (WHERE r.n = 2) AS second_day, "
        f"MIN(r.day) FILTER (WHERE r.product_type = 'advisory_service') AS advisory_day "
        f"FROM opened o LEFT JOIN ranked r ON r.client_id = o.id "
        f"GROUP BY o.id, o.opened_on, o.first_funded_on), "
        f"steps AS (SELECT *, LEAST(second_day, advisory_day) AS repeat_day FROM per) "
        f"SELECT COUNT(*), COUNT(*) FILTER (WHERE first_funded_on IS NOT NULL), "
        f"COUNT(*) FILTER (WHERE first_funded_on IS NOT NULL AND first_day IS NOT NULL), "
        f"COUNT(*) FILTER (WHERE first_funded_on IS NOT NULL AND first_day IS NOT NULL "
        f"AND repeat_day IS NOT NULL), "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY first_funded_on - opened_on) "
        f"FILTER (WHERE first_funded_on IS NOT NULL), "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY first_day - first_funded_on) "
        f"FILTER (WHERE first_funded_on IS NOT NULL AND first_day IS NOT NULL), "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY repeat_day - first_day) "
        f"FILTER (WHERE first_funded_on IS NOT NULL AND first_day IS NOT NULL "
        f"AND repeat_day IS NOT NULL) FROM steps", [*params, date_from, date_to])
    opened, funded, bought, repeat, m1, m2, m3 = rows[0]
    counts, medians = [opened, funded, bought, repeat], [None, m1, m2, m3]
    out = []
    for i, step in enumerate(("opened", "funded", "first_purchase", "repeat_purchase")):
        out.append({"step": step, "clients": counts[i],
                    "conversion_from_previous": (round(counts[i] / counts[i - 1], 4)
                                                 if i and counts[i - 1] else None),
                    "median_days_from_previous": (None if medians[i] is None
                                                  else round(float(medians[i]), 1))})
    return out


def baseline_segments(dims: dict, date_from: dt.date, date_to: dt.date,
                      active_day: dt.date) -> list:
    """segment_comparison's figures for the active personas, from clients, memberships and
    transactions."""
    from segments.models import Segment, SegmentKind

    where, params = client_where(dims)
    out = []
    for segment in Segment.objects.filter(is_active=True, kind=SegmentKind.PERSONA).order_by(
            "code"):
        member = ("JOIN segments_segmentmembership sm ON sm.client_id = c.id "
                  "AND sm.segment_id = %s")
        (clients, funded, aum), = fetch(
            f"SELECT COUNT(*), COUNT(c.first_funded_on), COALESCE(SUM(c.aum), 0) "
            f"FROM clients_client c {member} WHERE {where}", [segment.pk, *params])
        (revenue,), = fetch(
            f"SELECT COALESCE(SUM(t.revenue), 0) FROM clients_transaction t "
            f"JOIN clients_client c ON c.id = t.client_id {member} WHERE {where} "
            f"AND t.traded_at >= %s AND t.traded_at < %s",
            [segment.pk, *params, _start_of(date_from),
             _start_of(date_to + dt.timedelta(days=1))])
        (active,), = fetch(
            f"SELECT COUNT(DISTINCT t.client_id) FROM clients_transaction t "
            f"JOIN clients_client c ON c.id = t.client_id {member} WHERE {where} "
            f"AND t.traded_at >= %s AND t.traded_at < %s",
            [segment.pk, *params, _start_of(active_day - dt.timedelta(days=29)),
             _start_of(active_day + dt.timedelta(days=1))])
        out.append({"code": segment.code, "name": segment.name, "clients": clients,
                    "active_clients": active, "aum": round(float(aum), 2),
                    "revenue": round(float(revenue), 2),
                    "funded_rate": round(funded / clients, 4) if clients else None})
    return out


# --- the run -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--baseline-reps", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true",
                        help="reuse the rollups of a previous run (no full rebuild timing)")
    parser.add_argument("--full-seconds", type=float, default=None,
                        help="with --skip-full: the full rebuild's time, for the ratio")
    parser.add_argument("--skip-selectors", action="store_true")
    parser.add_argument("--moved-members", type=int, default=20000,
                        help="memberships of the largest persona moved out and back in (2b)")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.pop("CELERY_BROKER_URL", None)  # refreshes run in this process
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from analytics import selectors
    from analytics.models import AnalyticsRefresh
    from analytics.selectors import Filters
    from analytics.services import refresh_clients, refresh_run, refresh_start
    from core.models import User

    if connection.vendor != "postgresql":
        print("error: the benchmark needs PostgreSQL (DATABASE_URL)", file=sys.stderr)
        return 2
    call_command("migrate", "analytics", verbosity=0)
    print(f"load average at start: {open('/proc/loadavg').read().strip()}", flush=True)
    (clients, purchases), = fetch("SELECT (SELECT COUNT(*) FROM clients_client), "
                                  "(SELECT COUNT(*) FROM clients_transaction)")
    print(f"data: {clients:,} clients, {purchases:,} purchases", flush=True)

    # (1) full rebuild
    if not args.skip_full:
        AnalyticsRefresh.objects.filter(status__in=AnalyticsRefresh.ACTIVE).update(
            status="failed", error="bench: superseded")
        started = time.perf_counter()
        refresh = refresh_start(full=True, queue=False, trigger="bench")
        refresh = refresh_run(refresh_id=refresh.pk)
        full_s = time.perf_counter() - started
        assert refresh.status == "succeeded", refresh.error
        print(f"(1) full rebuild: {full_s:.1f} s, {refresh.progress_total} chunks; peak RSS of "
              f"this process {peak_rss_mb():,.0f} MB", flush=True)
        for table in ("clientfunnel", "clientday", "clientmonthactivity", "dailyfigures",
                      "dailybranchfigures", "cohortactivity", "cohortbranch",
                      "segmentmember", "segmentdailyfigures", "segmentcohortactivity",
                      "segmentpairfigures"):
            (rows, size), = fetch(f"SELECT COUNT(*), pg_size_pretty(pg_total_relation_size("
                                  f"'analytics_{table}')) FROM analytics_{table}")
            print(f"    analytics_{table}: {rows:,} rows, {size}")
    else:
        full_s = args.full_seconds

    # (2) incremental after a day of purchases
    (per_day,), = fetch("SELECT COUNT(*) / 90 FROM clients_transaction "
                        "WHERE traded_at >= (SELECT MAX(traded_at) FROM clients_transaction) "
                        "- interval '90 days'")
    (low, high), = fetch("SELECT MIN(id), MAX(id) FROM clients_client")
    (product_id,), = fetch("SELECT id FROM clients_product ORDER BY id LIMIT 1")
    rng = random.Random(13)
    day_ids = [rng.randint(low, high) for _ in range(per_day)]
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO clients_transaction (txn_id, client_id, product_id, traded_at, amount, "
            "revenue, channel) SELECT 'BENCH-AN-' || g.i, c.id, %s, %s, 10000, 50, 'app' "
            "FROM unnest(%s::bigint[]) WITH ORDINALITY AS g(cid, i) "
            "JOIN clients_client c ON c.id = g.cid", [product_id, now, day_ids])
        added = cursor.rowcount
    try:
        started = time.perf_counter()
        refresh = refresh_run(refresh_id=refresh_start(queue=False, trigger="bench").pk)
        incremental_s = time.perf_counter() - started
        print(f"(2) incremental after {added:,} new purchases: {incremental_s:.1f} s, "
              f"{refresh.touched:,} clients touched, timings {refresh.timings}", flush=True)
        if full_s:
            print(f"    incremental / full = {incremental_s / full_s:.3f} (goal <= 0.2)")
        started = time.perf_counter()
        refresh = refresh_run(refresh_id=refresh_start(queue=False, trigger="bench").pk)
        print(f"    incremental with nothing new: {time.perf_counter() - started:.1f} s "
              f"({refresh.touched} touched)", flush=True)
    finally:
        touched = [r[0] for r in fetch("SELECT DISTINCT client_id FROM clients_transaction "
                                       "WHERE txn_id LIKE 'BENCH-AN-%%'")]
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM clients_transaction WHERE txn_id LIKE %s",
                           ["BENCH-AN-%"])
        refresh_clients(client_ids=touched)
        print(f"    cleanup: day's purchases deleted, {len(touched):,} clients refreshed",
              flush=True)

    # (2b) a segment's members moving: memberships of the largest persona taken away (as a
    # refresh of the persona would), the rollups refreshed, the memberships put back and the
    # rollups refreshed again (the database ends as it began).
    (persona_id, persona_code), = fetch(
        "SELECT id, code FROM segments_segment WHERE kind = 'persona' "
        "ORDER BY size DESC, code LIMIT 1")
    moved = fetch("SELECT client_id, rule_version, since FROM segments_segmentmembership "
                  "WHERE segment_id = %s ORDER BY client_id LIMIT %s",
                  [persona_id, args.moved_members])
    for step in ("left", "back"):
        with transaction.atomic(), connection.cursor() as cursor:
            if step == "left":
                cursor.execute("DELETE FROM segments_segmentmembership WHERE segment_id = %s "
                               "AND client_id = ANY(%s)",
                               [persona_id, [row[0] for row in moved]])
            else:
                cursor.executemany(
                    "INSERT INTO segments_segmentmembership (segment_id, client_id, "
                    "rule_version, since) VALUES (%s, %s, %s, %s)",
                    [[persona_id, *row] for row in moved])
        started = time.perf_counter()
        refresh = refresh_run(refresh_id=refresh_start(queue=False, trigger="bench").pk)
        print(f"(2b) {len(moved):,} members of {persona_code} {step}: refresh "
              f"{time.perf_counter() - started:.1f} s, timings {refresh.timings}", flush=True)

    if args.skip_selectors:
        return 0
    # (3) selectors vs hand-written SQL
    ops = User(username="bench-ops", is_active=True)
    ops._cached_role = "ops"  # in memory only: nothing is written
    as_of = dt.date.fromisoformat(selectors.freshness()["as_of"])
    date_to = as_of
    date_from = selectors._months_back(date_to, 12) + dt.timedelta(days=1)
    (branch_id, branch_code), = fetch(
        "SELECT b.id, b.code FROM core_branch b JOIN clients_client c ON c.branch_id = b.id "
        "GROUP BY b.id, b.code ORDER BY COUNT(*) DESC LIMIT 1")
    (rm_id, rm_name, book), = fetch(
        "SELECT u.id, u.username, COUNT(*) FROM core_user u JOIN clients_client c "
        "ON c.rm_id = u.id JOIN core_user_groups ug ON ug.user_id = u.id "
        "JOIN auth_group g ON g.id = ug.group_id AND g.name = 'rm' "
        "GROUP BY u.id, u.username ORDER BY COUNT(*) DESC LIMIT 1")
    # The largest segment defined by a rule (a persona is a rule segment seeded by the product)
    segment = fetch("SELECT s.id, s.code, s.kind, s.size FROM segments_segment s "
                    "WHERE s.size > 0 AND s.rule IS NOT NULL AND s.kind IN ('rule', 'persona') "
                    "ORDER BY (s.kind = 'rule') DESC, s.size DESC LIMIT 1")
    variants = [("none", {}, {}), (f"branch {branch_code}", {"branch": branch_code},
                                   {"branch_id": branch_id}),
                (f"rm {rm_name} ({book:,} clients)", {"rm": rm_name}, {"rm_id": rm_id})]
    if segment:
        seg_id, seg_code, seg_kind, seg_size = segment[0]
        variants.append((f"{seg_kind} segment {seg_code} ({seg_size:,})", {"segment": seg_code},
                         {"segment_id": seg_id}))
    else:
        print("    no segment with members: the segment filter is not measured")
    print(f"(3) window {date_from} .. {date_to}, as of {as_of}; p95 of {args.reps} runs "
          f"(product) and of {args.baseline_reps} (hand-written SQL)", flush=True)
    print(f"    {'selector':<20} {'filter':<40} {'product':>9} {'SQL':>9} {'ratio':>7} equal")
    for name, params, dims in variants:
        filters = Filters(date_from=date_from, date_to=date_to, **params)
        cases = [
            ("kpi_series", lambda f=filters: selectors.kpi_series(user=ops, filters=f)["series"],
             lambda d=dims: baseline_kpis(d, date_from, date_to, as_of)),
            ("retention", lambda f=filters: selectors.retention(user=ops, filters=f)["cohorts"],
             lambda d=dims: baseline_retention(
                 d, dt.date(date_to.year - 1 + (date_to.month == 12), date_to.month % 12 + 1, 1),
                 dt.date(date_to.year, date_to.month, 1), as_of)),
            ("funnel", lambda f=filters: selectors.funnel(user=ops, filters=f)["steps"],
             lambda d=dims: baseline_funnel(d, date_from, date_to)),
            ("tier_migration", lambda f=filters: selectors.tier_migration(user=ops, filters=f),
             None),
            ("segment_comparison",
             lambda f=filters: selectors.segment_comparison(user=ops, filters=f)["segments"],
             lambda d=dims: baseline_segments(d, date_from, date_to, min(date_to, as_of))),
            ("channels", lambda f=filters: selectors.channels(user=ops, filters=f), None),
            ("newsletters", lambda f=filters: selectors.newsletters(user=ops, filters=f), None),
            ("campaigns_overview",
             lambda f=filters: selectors.campaigns_overview(user=ops, filters=f), None),
        ]
        for selector, product, baseline in cases:
            product_s, product_answer = timed(product, args.reps)
            if baseline is None:
                print(f"    {selector:<20} {name:<40} {product_s:>8.3f}s {'-':>9} {'-':>7} -",
                      flush=True)
                continue
            baseline_s, baseline_answer = timed(baseline, args.baseline_reps)
            equal = product_answer == baseline_answer
            print(f"    {selector:<20} {name:<40} {product_s:>8.3f}s {baseline_s:>8.2f}s "
                  f"{baseline_s / product_s:>6.0f}x {'yes' if equal else 'NO'}", flush=True)
            if not equal:
                diff = [(a, b) for a, b in zip(product_answer, baseline_answer, strict=False)
                        if a != b][:3]
                print(f"      first differences (product, SQL): {diff}")
    print(f"peak RSS of this process {peak_rss_mb():,.0f} MB; load average at end: "
          f"{open('/proc/loadavg').read().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
