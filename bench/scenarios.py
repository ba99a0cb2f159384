"""Benchmark the daily scenario evaluation and a journey's day at scale (PostgreSQL).

    DATABASE_URL=postgres://crm:crm@127.0.0.1/crm_bench .venv/bin/python -m bench.scenarios

In the same run, alternating, `--reps` times (medians reported):
(a) the product: `segments_refresh_all` over the seven scenario segments, run synchronously,
    from empty membership;
(b) the baseline: one hand-written `INSERT INTO segments_segmentmembership … SELECT … FROM
    clients_client WHERE <the scenario in SQL>` per scenario, from empty membership -- its
    row counts are checked against the product's, scenario by scenario.
Then a journey's day for `--journey` clients (default 100,000) entering an always-on
campaign with an SMS first step, alternating with a bare INSERT … SELECT of the same members
and contacts (no exclusions, caps or dispatch): the product's day is `journey_advance`
(entry with every exclusion and the caps, stratified arms, the step's contacts reserved and
queued). That ratio is recorded, not a target.
Needs the database migrated and seeded (bench.seed); writes only the segments tables, and the
journey's own campaign, members and contacts (removed at the end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time


def baseline_statements(today: dt.date) -> dict[str, tuple[str, list]]:
    """code -> (WHERE over clients_client c, params): the scenarios written by hand, at the
    default thresholds."""
    from django.utils import timezone

    from segments.rules import inflow_window_start, trading_day_ahead
    from segments.scenarios import threshold

    start = timezone.make_aware(dt.datetime.combine(inflow_window_start(today), dt.time.min))
    maturity_end = trading_day_ahead(today, int(threshold("MATURITY_TRADING_DAYS")) + 1)
    birthdays = []
    for n in range(int(threshold("BIRTHDAY_DAYS")) + 1):
        day = today + dt.timedelta(days=n)
        birthdays.append(day.strftime("%m%d"))
        if day.month == 2 and day.day == 28 and not (day.year % 4 == 0 and (
                day.year % 100 != 0 or day.year % 400 == 0)):
            birthdays.append("0229")
    live = "c.status <> 'closed'"
    return {
        "scn_onboarding": (f"{live} AND c.opened_on >= %s",
                           [today - dt.timedelta(days=int(threshold("ONBOARDING_DAYS")))]),
        "scn_zombie_account": (
            f"{live} AND c.opened_on <= %s AND (c.first_funded_on IS NULL OR NOT EXISTS "
            "(SELECT 1 FROM clients_transaction t WHERE t.client_id = c.id))",
            [today - dt.timedelta(days=int(threshold("ZOMBIE_MIN_DAYS")))]),
        "scn_dormant": (f"{live} AND c.last_purchase_on <= %s AND c.aum >= %s",
                        [today - dt.timedelta(days=int(threshold("DORMANT_DAYS"))),
                         threshold("DORMANT_MIN_AUM")]),
        "scn_cash_inflow": (
            f"{live} AND c.id IN (SELECT f.client_id FROM clients_cashflow f "
            "JOIN clients_client a ON a.id = f.client_id WHERE f.kind = 'deposit' AND "
            "f.at >= %s GROUP BY f.client_id, a.aum HAVING SUM(f.amount) >= %s OR "
            "SUM(f.amount) >= a.aum * %s / 100)",
            [start, threshold("INFLOW_MIN"), threshold("INFLOW_PCT_AUM")]),
        "scn_product_maturity": (
            f"{live} AND EXISTS (SELECT 1 FROM clients_holding h JOIN clients_product p ON "
            "p.id = h.product_id WHERE h.client_id = c.id AND h.as_of = (SELECT MAX(l.as_of) "
            "FROM clients_holding l WHERE l.client_id = c.id) AND "
            "COALESCE(h.maturity_date, p.maturity_date) >= %s AND "
            "COALESCE(h.maturity_date, p.maturity_date) < %s)", [today, maturity_end]),
        "scn_risk_expiring": (f"{live} AND c.risk_expires_on <= %s",
                              [today + dt.timedelta(days=int(threshold("RISK_EXPIRY_DAYS")))]),
        "scn_birthday": (f"{live} AND to_char(c.birth_date, 'MMDD') = ANY(%s)", [birthdays]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--journey", type=int, default=100_000)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from clients.models import CashFlow, Client
    from segments.models import Segment, SegmentKind, SegmentRefresh
    from segments.services import segment_refresh_many, segments_refresh_all

    if connection.vendor != "postgresql":
        print("warning: not PostgreSQL; the figures say little", file=sys.stderr)
    today = timezone.localdate()
    hand = baseline_statements(today)
    segments = list(Segment.objects.filter(kind=SegmentKind.SCENARIO, is_active=True))
    ids = [s.pk for s in segments]
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM clients_transaction")
        purchases = cur.fetchone()[0]
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"clients {Client.objects.count():,}; purchases {purchases:,}; cash flows "
          f"{CashFlow.objects.count():,}; PostgreSQL {version}; scenarios {len(segments)}; "
          f"load {' '.join(load)}")

    def clear() -> None:
        with connection.cursor() as cur:
            cur.execute("DELETE FROM segments_segmentmembership WHERE segment_id = ANY(%s)",
                        [ids])
            cur.execute("VACUUM ANALYZE segments_segmentmembership")

    def product() -> tuple[float, dict[str, int]]:
        started = time.perf_counter()
        refreshes = segments_refresh_all(trigger="bench", kinds=[SegmentKind.SCENARIO],
                                         queue=False)
        segment_refresh_many(refresh_ids=[r.pk for r in refreshes])
        seconds = time.perf_counter() - started
        bad = list(SegmentRefresh.objects.filter(pk__in=[r.pk for r in refreshes])
                   .exclude(status="succeeded").values_list("segment__code", "error"))
        if bad:
            raise SystemExit(f"refresh failed: {bad}")
        return seconds, dict(Segment.objects.filter(pk__in=ids).values_list("code", "size"))

    def baseline() -> tuple[float, dict[str, int]]:
        counts = {}
        now = timezone.now()
        started = time.perf_counter()
        with connection.cursor() as cur:
            for segment in segments:
                where, params = hand[segment.code]
                cur.execute(
                    "INSERT INTO segments_segmentmembership (segment_id, client_id, "
                    "rule_version, since) SELECT %s, c.id, %s, %s FROM clients_client c "
                    f"WHERE {where}", [segment.pk, segment.rule_version, now, *params])
                counts[segment.code] = cur.rowcount
        return time.perf_counter() - started, counts

    a_times, b_times = [], []
    for rep in range(args.reps):
        clear()
        seconds, sizes = product()
        a_times.append(seconds)
        clear()
        b_seconds, counts = baseline()
        b_times.append(b_seconds)
        if sizes != counts:
            print(f"MISMATCH product {sizes} vs hand-written {counts}", file=sys.stderr)
            return 1
        print(f"rep {rep + 1}: product {seconds:.2f} s, hand-written {b_seconds:.2f} s; "
              f"members {counts}")
    clear()
    product()  # leave the scenarios filled
    a, b = statistics.median(a_times), statistics.median(b_times)
    print(f"scenarios, median of {args.reps}: product {a:.2f} s, hand-written {b:.2f} s, "
          f"ratio {a / b:.2f} (goal <= 1.5)")
    journey(args, connection, today)
    return 0


def journey(args, connection, today: dt.date) -> None:
    from django.utils import timezone

    from campaigns.journeys import journey_advance
    from campaigns.models import Campaign, CampaignMember
    from clients.models import Client
    from core.models import User
    from outreach.calendar import is_trading_day, trading_day_after
    from outreach.models import Contact
    from segments.models import Segment, SegmentKind, SegmentMembership

    day = today if is_trading_day(today) else trading_day_after(today, 1)
    author = User.objects.order_by("pk").first()
    segment, _ = Segment.objects.get_or_create(
        code="bench-journey", defaults={"kind": SegmentKind.STATIC, "name_en": "bench journey",
                                        "name_zh": "bench journey"})
    SegmentMembership.objects.filter(segment=segment).delete()
    chosen = list(Client.objects.filter(consent_sms=True, status="active").exclude(phone="")
                  .order_by("pk").values_list("pk", flat=True)[:args.journey])
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, client_id=pk) for pk in chosen], batch_size=10_000)
    Campaign.objects.filter(code="bench-journey").delete()
    campaign = Campaign.objects.create(
        code="bench-journey", name="bench journey", scenario="onboarding", always_on=True,
        goal={"metric": "response", "target": 0.1, "window_days": 30},
        audience={"include": ["bench-journey"], "exclude": []}, products=[], priority=9,
        holdout_pct=10, status="running", author=author, launched_at=timezone.now(),
        launch_day=day, steps=[{"channel": "sms", "delay_trading_days": 0, "variants": [
            {"code": "A", "share": 100, "subject": "", "body": "{name}您好。回TD退订"}]}])

    def reset() -> None:
        Contact.objects.filter(source="campaign", source_id=campaign.pk).delete()
        CampaignMember.objects.filter(campaign=campaign).delete()
        Campaign.objects.filter(pk=campaign.pk).update(journey_day=None)
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE campaigns_campaignmember")
            cur.execute("VACUUM ANALYZE outreach_contact")

    def bare() -> tuple[float, int]:
        started = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(
                "INSERT INTO campaigns_campaignmember (campaign_id, client_id, tier, arm, "
                "exclusion_reason, product_code, entered_at, entry_day, round) "
                "SELECT %s, s.client_id, '', CASE WHEN ('x' || substr(md5(%s || s.client_id),"
                " 1, 8))::bit(32)::int %% 10 = 0 THEN 'control' ELSE 'A' END, '', '', now(), "
                "%s, 0 FROM segments_segmentmembership s WHERE s.segment_id = %s",
                [campaign.pk, campaign.code, day, segment.pk])
            cur.execute(
                "INSERT INTO outreach_contact (client_id, source, source_id, step, channel, "
                "variant, content_version, priority, exempt, status, planned_on, provider_id, "
                "error, title, body, attempts, created_at) SELECT m.client_id, 'campaign', "
                "%s, 0, 'sms', m.arm, 1, 9, false, 'queued', %s, '', '', '', '', 0, now() "
                "FROM campaigns_campaignmember m WHERE m.campaign_id = %s AND m.arm <> "
                "'control'", [campaign.pk, day, campaign.pk])
            rows = cur.rowcount
        return time.perf_counter() - started, rows

    p_times, b_times = [], []
    try:
        for rep in range(args.reps):
            reset()
            campaign.refresh_from_db()
            started = time.perf_counter()
            counts = journey_advance(campaign=campaign, today=day)
            p_times.append(time.perf_counter() - started)
            reset()
            seconds, rows = bare()
            b_times.append(seconds)
            print(f"journey rep {rep + 1}: product {p_times[-1]:.2f} s ({counts}), bare "
                  f"{seconds:.2f} s ({rows:,} contacts)")
    finally:
        reset()
        Campaign.objects.filter(pk=campaign.pk).delete()
        segment.delete()
    a, b = statistics.median(p_times), statistics.median(b_times)
    print(f"journey day, {len(chosen):,} clients entering, median of {args.reps}: product "
          f"{a:.2f} s, bare INSERT … SELECT {b:.2f} s, ratio {a / b:.2f} (recorded)")


if __name__ == "__main__":
    sys.exit(main())
