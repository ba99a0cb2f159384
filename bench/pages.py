"""Benchmark the client pages and the client API at full scale against a hand-written SQL baseline.

    DATABASE_URL=postgres://crm:crm@127.0.0.1/crm_bench \
        .venv/bin/python -m bench.pages [--repeat 15]

Needs a database seeded with `bench.seed` (1,000,000 clients / 20,000,000 purchases). Each
scenario is one full request through django.test.Client (middleware, view, template) by a
logged-in user (ops: every client; an RM: a typical book; a branch manager: a branch), timed
alternately with a baseline: the equivalent hand-written SQL returning the same rows (plus the
count the page needs), run with a raw cursor and fetched. Prints medians, the ratio and the
product's p90, then EXPLAIN (ANALYZE, BUFFERS) summaries of the product's queries for the three
slowest scenarios, and flags any sequential scan of a big table in any scenario.

Read-only on the data: it creates the `bench_ops` user if missing, logs in (session rows), and
the client 360 page writes its PII-viewed audit row, as the product does. Needs the scoring
tables (clients migrations, through 0011_score_sort_index) and, for the score scenarios to mean
anything, a finished scoring run (ScoringCurrent set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta

BIG_TABLES = {"clients_client", "clients_transaction", "clients_holding"}

# The columns the list page displays (or needs to link and badge a row), for the baseline.
LIST_COLS = """c.id, c.client_no, c.name, c.phone, c.birth_date, c.aum, c.risk_level,
    c.risk_expires_on, c.status, c.opened_on, c.last_purchase_on, cs.tier, cs.total_score,
    u.username, b.name"""
LIST_FROM = """clients_client c LEFT JOIN core_branch b ON b.id = c.branch_id
    LEFT JOIN core_user u ON u.id = c.rm_id
    LEFT JOIN clients_currentscore cs ON cs.client_id = c.id"""
API_COLS = """c.id, c.client_no, c.name, c.gender, c.birth_date, c.phone, c.email, c.city,
    b.code, u.username, c.risk_level, c.risk_expires_on, c.investor_type, c.status, c.aum,
    cs.total_score"""


def _pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _walk(node, depth=0):
    yield node, depth
    for child in node.get("Plans", []):
        yield from _walk(child, depth + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--rm", default="rm001")
    parser.add_argument("--bm", default="bm_sh01")
    args = parser.parse_args(argv)

    os.environ["DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client as HttpClient
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from rest_framework.pagination import Cursor

    from clients.api.clients import ClientPagination
    from core.models import User
    from core.services import staff_user_upsert

    if connection.vendor != "postgresql":
        print("PostgreSQL only (DATABASE_URL=postgres://...)", file=sys.stderr)
        return 2
    assert not settings.DEBUG

    def q(sql, params=None):
        with connection.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    notes = []
    pointer = q("SELECT as_of, scheme_id FROM clients_scoringcurrent WHERE id = 1")
    if not pointer:
        print("no scoring run has finished (clients_scoringcurrent is empty)", file=sys.stderr)
        return 2
    as_of, scheme_id = pointer[0]
    n_scored = q("SELECT count(*) FROM clients_clientscore WHERE as_of = %s AND scheme_id = %s",
                 [as_of, scheme_id])[0][0]
    notes.append(f"current scores {as_of} scheme {scheme_id}: {n_scored:,} clients scored")
    n_clients = q("SELECT reltuples::bigint FROM pg_class WHERE relname = 'clients_client'")[0][0]
    print(f"database {connection.settings_dict['NAME']}: ~{n_clients:,} clients")

    ops = User.objects.filter(username="bench_ops").first()
    if ops is None:
        ops, _ = staff_user_upsert(username="bench_ops", role="ops")
        notes.append("created user bench_ops (ops)")
    rm = User.objects.get(username=args.rm)
    bm = User.objects.filter(username=args.bm).first() or User.objects.filter(
        username__startswith="bm_").order_by("username").first()
    clients = {}
    for user in (ops, rm, bm):
        c = HttpClient()
        c.force_login(user)
        clients[user.username] = c

    today = timezone.localdate()
    lo, hi = settings.SERVICE_LEVEL_AFFLUENT_MIN, settings.SERVICE_LEVEL_HNW_MIN
    # Search terms taken from existing clients (deterministic: the seeded data of seed 42).
    phone_tail, full_name = q("SELECT phone_tail, name FROM clients_client WHERE id = "
                              "(SELECT min(id) + 123456 FROM clients_client)")[0]
    name_prefix = full_name[:2]
    hot_client_id, hot_txns = q(
        "SELECT t.client_id, count(*) FROM clients_transaction t JOIN clients_client c "
        "ON c.id = t.client_id WHERE c.rm_id = %s GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
        [rm.pk])[0]
    hot_no = q("SELECT client_no FROM clients_client WHERE id = %s", [hot_client_id])[0][0]
    book = q("SELECT count(*) FROM clients_client WHERE rm_id = %s", [rm.pk])[0][0]
    branch_n = q("SELECT count(*) FROM clients_client WHERE branch_id = %s", [bm.branch_id])[0][0]
    max_id = q("SELECT max(id) FROM clients_client")[0][0]
    pager = ClientPagination()
    pager.base_url = "http://testserver/api/v1/clients/"
    deep_url = pager.encode_cursor(Cursor(offset=0, reverse=False, position=str(max_id - 100)))
    deep_url = deep_url.replace("http://testserver", "")
    print(f"{rm.username}: {book:,} clients; {bm.username}: branch of {branch_n:,} clients; "
          f"phone tail {phone_tail}; name prefix {name_prefix}; 360 client {hot_no} "
          f"({hot_txns} purchases); API cursor at id {max_id - 100:,}")

    cap = 10_001

    def listing(where, params, order, offset=0, count="capped"):
        """Baseline of one list page: the displayed rows (+1 for has_next) and its count."""
        def run(cur):
            cur.execute(f"SELECT {LIST_COLS} FROM {LIST_FROM} WHERE {where} ORDER BY {order} "
                        f"LIMIT 26 OFFSET {offset}", params)
            cur.fetchall()
            if count == "estimate":
                cur.execute("SELECT reltuples::bigint FROM pg_class "
                            "WHERE oid = 'clients_client'::regclass")
            else:
                cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM clients_client c "
                            f"WHERE {where} LIMIT {cap}) s", params)
            cur.fetchall()
        return run

    def detail_baseline(cur):
        since = timezone.now() - timedelta(days=365)
        cur.execute("SELECT c.*, b.name, u.username FROM clients_client c "
                    "LEFT JOIN core_branch b ON b.id = c.branch_id "
                    "LEFT JOIN core_user u ON u.id = c.rm_id "
                    "WHERE c.rm_id = %s AND c.client_no = %s", [rm.pk, hot_no])
        cid = cur.fetchall()[0][0]
        cur.execute("SELECT h.as_of, h.quantity, h.market_value, p.product_code, p.name, "
                    "p.product_type, p.risk_level FROM clients_holding h JOIN clients_product p "
                    "ON p.id = h.product_id WHERE h.client_id = %s AND h.as_of = "
                    "(SELECT max(as_of) FROM clients_holding WHERE client_id = %s) "
                    "ORDER BY h.market_value DESC",
                    [cid, cid])
        cur.fetchall()
        cur.execute("SELECT t.txn_id, t.traded_at, t.amount, t.revenue, t.channel, "
                    "p.product_code, p.name FROM clients_transaction t "
                    "JOIN clients_product p ON p.id = t.product_id "
                    "WHERE t.client_id = %s ORDER BY t.traded_at DESC, t.id DESC LIMIT 20", [cid])
        cur.fetchall()
        cur.execute("SELECT i.*, u.username FROM clients_interaction i LEFT JOIN core_user u "
                    "ON u.id = i.author_id WHERE i.client_id = %s ORDER BY i.occurred_at DESC "
                    "LIMIT 50", [cid])
        cur.fetchall()
        cur.execute("SELECT sum(revenue), sum(revenue) FILTER (WHERE traded_at >= %s) "
                    "FROM clients_transaction WHERE client_id = %s", [since, cid])
        cur.fetchall()
        cur.execute("SELECT s.*, sc.version FROM clients_clientscore s JOIN clients_scoringscheme "
                    "sc ON sc.id = s.scheme_id WHERE s.client_id = %s "
                    "ORDER BY s.as_of DESC, sc.version DESC LIMIT 12", [cid])
        cur.fetchall()

    def api(where, params):
        def run(cur):
            cur.execute(f"SELECT {API_COLS} FROM {LIST_FROM} WHERE {where} ORDER BY c.id "
                        f"LIMIT 51", params)
            cur.fetchall()
        return run

    # Score sorts, hand-written: the pointer, then the scored clients through the index on
    # (as_of, scheme, total_score, client) - the same plan the product aims for; an RM's book
    # (counted exactly) sorts its own rows.
    SCORED_FROM = f"""{LIST_FROM} JOIN clients_clientscore s ON s.client_id = c.id
        AND s.as_of = %s AND s.scheme_id = %s"""

    def by_score(where, params, offset=0, count="capped", limit=26, cols=LIST_COLS,
                 score="s.total_score"):
        def run(cur):
            cur.execute("SELECT as_of, scheme_id FROM clients_scoringcurrent WHERE id = 1")
            ptr = list(cur.fetchone())
            if count == "estimate":
                cur.execute("SELECT reltuples::bigint FROM pg_class "
                            "WHERE oid = 'clients_client'::regclass")
            elif count == "capped":
                cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM clients_client c "
                            f"WHERE {where} LIMIT {cap}) s", params)
            cur.fetchall()
            cur.execute(f"SELECT {cols} FROM {SCORED_FROM} WHERE {where} "
                        f"ORDER BY {score} DESC, c.id DESC LIMIT {limit} OFFSET {offset}",
                        ptr + params)
            cur.fetchall()
        return run

    not_expired = "(c.risk_expires_on < %s OR c.risk_expires_on IS NULL)"
    search = "(c.client_no LIKE %s OR c.name LIKE %s OR c.phone_tail = %s)"
    scenarios = [
        ("ops list p1", "bench_ops", "/clients/",
         listing("true", [], "c.name, c.id", count="estimate")),
        ("ops list p200", "bench_ops", "/clients/?page=200",
         listing("true", [], "c.name, c.id", offset=199 * 25, count="estimate")),
        ("ops search phone tail", "bench_ops", f"/clients/?q={phone_tail}",
         listing(search, [phone_tail + "%", phone_tail + "%", phone_tail], "c.name, c.id")),
        ("ops search name prefix", "bench_ops", f"/clients/?q={name_prefix}",
         listing("(c.client_no LIKE %s OR c.name LIKE %s)", [name_prefix + "%"] * 2,
                 "c.name, c.id")),
        ("ops C3+affluent by -aum", "bench_ops",
         "/clients/?risk_level=C3&service_level=affluent&sort=-aum",
         listing("c.risk_level = 'C3' AND c.aum >= %s AND c.aum < %s", [lo, hi],
                 "c.aum DESC, c.id DESC")),
        ("ops expired assessment", "bench_ops", "/clients/?expired=yes",
         listing(not_expired, [today], "c.name, c.id")),
        ("RM list by name", rm.username, "/clients/",
         listing("c.rm_id = %s", [rm.pk], "c.name, c.id")),
        ("RM list by -aum", rm.username, "/clients/?sort=-aum",
         listing("c.rm_id = %s", [rm.pk], "c.aum DESC, c.id DESC")),
        ("BM list p1", bm.username, "/clients/",
         listing("c.branch_id = %s", [bm.branch_id], "c.name, c.id")),
        ("RM client 360", rm.username, f"/clients/{hot_no}/", detail_baseline),
        ("API ops first page", "bench_ops", "/api/v1/clients/", api("true", [])),
        ("API ops page at ~1Mth", "bench_ops", deep_url, api("c.id > %s", [max_id - 100])),
        ("ops tier development", "bench_ops", "/clients/?tier=development",
         listing("EXISTS (SELECT 1 FROM clients_currentscore x WHERE x.client_id = c.id "
                 "AND x.tier = 'development')", [], "c.name, c.id")),
        ("ops by -score p1", "bench_ops", "/clients/?sort=-total_score",
         by_score("true", [], count="estimate")),
        ("ops by -score p200", "bench_ops", "/clients/?sort=-total_score&page=200",
         by_score("true", [], offset=199 * 25, count="estimate")),
        ("RM list by -score", rm.username, "/clients/?sort=-total_score",
         by_score("c.rm_id = %s", [rm.pk], score="s.total_score + 0")),
        ("API ops by -score", "bench_ops", "/api/v1/clients/?ordering=-total_score",
         by_score("true", [], count="none", limit=51, cols=API_COLS)),
    ]

    def product(user, url):
        r = clients[user].get(url)
        if r.status_code != 200:
            raise SystemExit(f"{url} as {user}: HTTP {r.status_code}")
        if hasattr(r, "render") and not r.is_rendered:  # DRF responses render lazily
            r.render()
        _ = r.content
        return r

    # Warm up (caches, templates, plans), then alternate product/baseline in the same loop.
    for _name, user, url, base in scenarios:
        product(user, url)
        with connection.cursor() as cur:
            base(cur)
    times = {name: ([], []) for name, *_ in scenarios}
    for rep in range(args.repeat):
        for name, user, url, base in scenarios:
            order = (0, 1) if rep % 2 == 0 else (1, 0)
            for which in order:
                t0 = time.perf_counter()
                if which == 0:
                    product(user, url)
                else:
                    with connection.cursor() as cur:
                        base(cur)
                times[name][which].append((time.perf_counter() - t0) * 1000)

    print(f"\n{args.repeat} runs each, product (full request: middleware + view + template) and "
          f"baseline (hand-written SQL, raw cursor, fetched) alternating")
    header = f"{'scenario':<26} {'product ms':>10} {'baseline ms':>11} {'ratio':>6} {'p90 ms':>7}"
    print(header + "\n" + "-" * len(header))
    rows = []
    for name, *_ in scenarios:
        p, b = times[name]
        pm, bmed = statistics.median(p), statistics.median(b)
        rows.append((name, pm, bmed, pm / bmed if bmed else float("inf"), _pct(p, 0.9)))
        print(f"{name:<26} {pm:>10.1f} {bmed:>11.2f} {pm / bmed:>6.1f} {_pct(p, 0.9):>7.1f}")

    # Plans: the product's own SQL, captured from one request per scenario.
    print("\nPlans of the product's queries (EXPLAIN; big-table sequential scans flagged)")
    slowest = {r[0] for r in sorted(rows, key=lambda r: -r[1])[:3]}
    for name, user, url, _ in scenarios:
        with CaptureQueriesContext(connection) as ctx:
            product(user, url)
        sqls = [x["sql"] for x in ctx.captured_queries
                if x["sql"].lstrip().upper().startswith("SELECT") and "clients_" in x["sql"]]
        analyze = name in slowest
        if analyze:
            print(f"\n== {name} ({len(ctx.captured_queries)} queries in the request, "
                  f"{len(sqls)} on client tables)")
        for sql in sqls:
            opts = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
            plan = q(f"EXPLAIN ({opts}) {sql}")[0][0]
            plan = plan if isinstance(plan, list) else json.loads(plan)
            root = plan[0]["Plan"]
            seqs = [n for n, _ in _walk(root) if n["Node Type"] == "Seq Scan"
                    and n.get("Relation Name") in BIG_TABLES]
            if analyze:
                print(f"  {sql[:150]}{'…' if len(sql) > 150 else ''}")
                print(f"    root {root['Node Type']}: {plan[0].get('Execution Time', 0):.2f} ms, "
                      f"rows {root.get('Actual Rows')}, shared hit {root.get('Shared Hit Blocks')}"
                      f" read {root.get('Shared Read Blocks')}")
                for n, depth in _walk(root):
                    if depth and (n.get("Relation Name") in BIG_TABLES or "Sort" in n["Node Type"]):
                        print(f"    {'  ' * depth}{n['Node Type']}"
                              f"{' on ' + n['Relation Name'] if n.get('Relation Name') else ''}"
                              f"{' using ' + n['Index Name'] if n.get('Index Name') else ''}: "
                              f"rows {n.get('Actual Rows')}, "
                              f"{n.get('Actual Total Time', 0):.2f} ms")
            for n in seqs:
                print(f"  !! {name}: Seq Scan on {n['Relation Name']} in: {sql[:120]}")

    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; " + "; ".join(notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
