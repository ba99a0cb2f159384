"""Benchmark segment membership refresh and the builder's live count at scale (PostgreSQL).

    DATABASE_URL=postgres://crm:crm@127.0.0.1/crm_bench .venv/bin/python -m bench.segments

In the same run, alternating, `--reps` times (medians reported):
(a) the product: `segments_refresh_all` over the persona, tier and service-level segments,
    run synchronously, from empty membership;
(b) the baseline: one hand-written `INSERT INTO segments_segmentmembership … SELECT … FROM
    clients_client WHERE <the rule in SQL>` per segment, from empty membership — its row counts
    are checked against the product's, segment by segment;
(c) the product again right after (a): a refresh where nothing changed.
Then the builder's live count (`segment_preview`, as ops) of the issue's example rule and of
each persona. Needs the database migrated; scores clients first if nobody has a current score.
Writes only the segments tables (and, when missing, scores).

The tier segments read the current scores, so a scoring run finishing mid-benchmark would make
the two sides select different clients: the current-score pointer is read at the start and
checked after every measured step; the benchmark refuses to start while a scoring run is active
and aborts (exit 3) if the pointer moves.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

EXAMPLE = {"all": [{"field": "age", "op": "between", "value": [60, 69]},
                   {"field": "risk_level", "op": "in", "value": ["C1", "C2"]},
                   {"field": "holds_product_type", "op": "eq", "value": "fixed_income"},
                   {"any": [{"field": "days_since_last_purchase", "op": "gt", "value": 90},
                            {"field": "days_since_last_purchase", "op": "is_null",
                             "value": True}]}]}
KINDS = ("persona", "tier", "service_level")


def _years_before(day, years):
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def baseline_statements(today, settings) -> dict[str, tuple[str, list]]:
    """code -> (WHERE clause over clients_client c, params): the rules written by hand."""
    lo, hi = settings.SERVICE_LEVEL_AFFLUENT_MIN, settings.SERVICE_LEVEL_HNW_MIN

    def age(a, b):
        return ("c.birth_date <= %s AND c.birth_date > %s",
                [_years_before(today, a), _years_before(today, b + 1)])

    tier = ("EXISTS (SELECT 1 FROM clients_currentscore s WHERE s.client_id = c.id "
            "AND s.tier = %s)")
    sql = {
        "silver_haired": age(60, 69),
        "stay_at_home_mother": ("c.gender = 'F' AND c.occupation = 'homemaker' AND "
                                "c.has_children", []),
        "gen_z": ("c.birth_date >= '1995-01-01' AND c.birth_date <= '2009-12-31'", []),
        "college_student": ("c.occupation = 'student' AND " + age(18, 24)[0], age(18, 24)[1]),
        "independent_woman": ("c.gender = 'F' AND c.occupation IN ('employee', 'professional', "
                              "'executive') AND " + age(25, 49)[0], age(25, 49)[1]),
        "sme_owner": ("c.occupation = 'business_owner'", []),
        "tech_executive": ("c.occupation = 'executive' AND c.industry = 'technology'", []),
        "high_net_worth": ("c.aum >= %s", [hi]),
        "tier_guiding": (tier, ["guiding"]),
        "tier_development": (tier, ["development"]),
        "tier_potential": (tier, ["potential"]),
        "tier_long_tail": (tier, ["long_tail"]),
        "level_mass": ("c.aum < %s", [lo]),
        "level_affluent": ("c.aum >= %s AND c.aum < %s", [lo, hi]),
        "level_hnw": ("c.aum >= %s", [hi]),
    }
    return sql


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from clients.models import Client, CurrentScore
    from clients.scoring.models import ScoringCurrent, ScoringRun
    from core.services import staff_user_upsert
    from segments.models import Segment, SegmentMembership, SegmentRefresh
    from segments.services import segment_preview, segment_refresh_many, segments_refresh_all

    if connection.vendor != "postgresql":
        print("warning: not PostgreSQL; the figures say little", file=sys.stderr)
    clients = Client.objects.count()
    if not CurrentScore.objects.exists():
        print("no current scores: scoring every client first (manage.py score_clients)")
        call_command("score_clients")
    active_runs = list(ScoringRun.objects.filter(status__in=ScoringRun.ACTIVE)
                       .values_list("pk", "as_of", "status"))
    if active_runs:
        print(f"a scoring run is active {active_runs}: it would change the tier segments' "
              "scores during the benchmark; wait for it to finish", file=sys.stderr)
        return 3

    def pointer() -> tuple:
        """The current-score pointer and a fingerprint of the score rows: a scoring run of
        the same date rewrites the rows without moving the pointer."""
        with connection.cursor() as cur:
            cur.execute("SELECT MAX(id), COUNT(*) FROM clients_clientscore")
            rows = cur.fetchone()
        running = ScoringRun.objects.filter(status__in=ScoringRun.ACTIVE).exists()
        return (ScoringCurrent.objects.filter(pk=1).values_list(
            "as_of", "scheme_id", "run_id", "updated_at").first(), rows, running)

    snapshot = pointer()

    def check_pointer(step: str) -> None:
        now = pointer()
        if now != snapshot:
            print(f"ABORT after {step}: the current scores changed during the benchmark "
                  f"(pointer, (max id, rows) of the scores, a run active: {snapshot} -> "
                  f"{now}); a scoring run wrote scores meanwhile, so the product and the "
                  "baseline no longer select the same clients. Re-run on a quiet database.",
                  file=sys.stderr)
            raise SystemExit(3)

    segments = list(Segment.objects.filter(kind__in=KINDS, is_active=True))
    ids = [s.pk for s in segments]
    today = timezone.localdate()
    hand = baseline_statements(today, settings)
    missing = {s.code for s in segments} - hand.keys()
    if missing:
        print(f"no baseline for {sorted(missing)}", file=sys.stderr)
        return 2

    def clear() -> None:
        """Empty membership of the measured segments, the table and indexes as after a
        TRUNCATE when nothing else has members (no dead rows left for either side)."""
        others = SegmentMembership.objects.exclude(segment_id__in=ids).exists()
        with connection.cursor() as cur:
            if others:
                cur.execute("DELETE FROM segments_segmentmembership WHERE segment_id = ANY(%s)",
                            [ids])
            else:
                cur.execute("TRUNCATE segments_segmentmembership")
            cur.execute("VACUUM ANALYZE segments_segmentmembership")

    per_segment: dict[str, dict[str, list[float]]] = {"a": {}, "b": {}, "c": {}}

    def product(which: str | None = None) -> tuple[float, dict[str, int]]:
        started = time.perf_counter()
        refreshes = segments_refresh_all(trigger="bench", kinds=KINDS, queue=False)
        if len(refreshes) != len(segments):
            # segments_refresh_all skips a segment being refreshed elsewhere (e.g. by the
            # refresh a scoring run queues): that one would race with this measurement.
            busy = sorted({s.code for s in segments} - {r.segment.code for r in refreshes})
            print(f"ABORT: {busy} are being refreshed by another process; re-run when they "
                  "have finished", file=sys.stderr)
            raise SystemExit(3)
        segment_refresh_many(refresh_ids=[r.pk for r in refreshes])
        seconds = time.perf_counter() - started
        sizes = dict(Segment.objects.filter(pk__in=ids).values_list("code", "size"))
        rows = SegmentRefresh.objects.filter(pk__in=[r.pk for r in refreshes]).values_list(
            "segment__code", "status", "error", "started_at", "finished_at")
        bad = [(code, error) for code, status, error, _s, _f in rows if status != "succeeded"]
        if bad:
            raise SystemExit(f"refresh failed: {bad}")
        if which:
            for code, _st, _e, begun, ended in rows:
                per_segment[which].setdefault(code, []).append(
                    (ended - begun).total_seconds())
        return seconds, sizes

    def baseline() -> tuple[float, dict[str, int]]:
        counts = {}
        now = timezone.now()
        started = time.perf_counter()
        with connection.cursor() as cur:
            for segment in segments:
                where, params = hand[segment.code]
                begun = time.perf_counter()
                cur.execute(
                    "INSERT INTO segments_segmentmembership (segment_id, client_id, "
                    "rule_version, since) SELECT %s, c.id, %s, %s FROM clients_client c "
                    f"WHERE {where}", [segment.pk, segment.rule_version, now, *params])
                counts[segment.code] = cur.rowcount
                per_segment["b"].setdefault(segment.code, []).append(
                    time.perf_counter() - begun)
        return time.perf_counter() - started, counts

    connection.ensure_connection()
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
    print(f"clients {clients:,}; PostgreSQL {version}; segments {len(segments)}; "
          f"load average {os.getloadavg()}; current scores {snapshot}")
    times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    check_pointer("the start")
    active = list(SegmentRefresh.objects.filter(segment_id__in=ids, status="running")
                  .values_list("segment__code", flat=True))
    if active:
        print(f"ABORT: {active} are being refreshed by another process; re-run when they have "
              "finished", file=sys.stderr)
        return 3
    for rep in range(args.reps):
        order = ("product", "baseline") if rep % 2 == 0 else ("baseline", "product")
        for which in order:
            clear()
            if which == "product":
                seconds, sizes = product("a")
                check_pointer(f"(a) of repetition {rep + 1}")
                times["a"].append(seconds)
                again, sizes_again = product("c")
                check_pointer(f"(c) of repetition {rep + 1}")
                times["c"].append(again)
                assert sizes_again == sizes
                product_sizes = sizes
            else:
                seconds, base_counts = baseline()
                check_pointer(f"(b) of repetition {rep + 1}")
                times["b"].append(seconds)
        check_pointer(f"repetition {rep + 1}")
        diff = {c: (product_sizes[c], base_counts[c]) for c in product_sizes
                if product_sizes[c] != base_counts[c]}
        if diff:
            print(f"MISMATCH product vs baseline: {diff}", file=sys.stderr)
            return 1
        print(f"rep {rep + 1}: (a) {times['a'][-1]:.2f}s  (b) {times['b'][-1]:.2f}s  "
              f"(c) {times['c'][-1]:.2f}s  load {os.getloadavg()[0]:.2f}", flush=True)
    # leave the product's membership in place
    clear()
    product()
    a, b, c = (statistics.median(times[k]) for k in "abc")
    print("\nsegment                  members (product = baseline)   median s: (a)   (b)   (c)")
    for code in sorted(product_sizes):
        medians = "  ".join(f"{statistics.median(per_segment[k].get(code) or [0]):5.2f}"
                            for k in "abc")
        print(f"{code:<24} {product_sizes[code]:>10,}                         {medians}")
    print(f"\n(a) product full refresh      median {a:7.2f} s  {[round(t, 2) for t in times['a']]}")
    print(f"(b) hand-written INSERT…SELECT median {b:7.2f} s  {[round(t, 2) for t in times['b']]}")
    print(f"(c) product, nothing changed  median {c:7.2f} s  {[round(t, 2) for t in times['c']]}")
    print(f"(a)/(b) = {a / b:.2f} (goal <= 1.5); (c)/(a) = {c / a:.2f} (goal <= 0.2)")

    ops, _ = staff_user_upsert(username="bench_ops", role="ops")
    print("\nlive count (segment_preview as ops), median of 3")
    rules = [("example (issue)", EXAMPLE)] + [
        (s.code, s.rule) for s in Segment.objects.filter(kind="persona").order_by("code")]
    for name, rule in rules:
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            result = segment_preview(rule=rule, user=ops)
            samples.append(time.perf_counter() - started)
        print(f"{name:<24} count {result['count']:>9,}  {statistics.median(samples) * 1000:7.0f} ms"
              f"  max {max(samples) * 1000:6.0f} ms")
    print(f"\nload average at the end {os.getloadavg()}; today {today}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
