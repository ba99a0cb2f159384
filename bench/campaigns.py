"""Benchmark the campaign engine at scale (PostgreSQL): a launch over a 1M-client audience and
the results of a 1M-member campaign, each against hand-written SQL giving the same rows.

    DATABASE_URL=postgres://crm:crm@127.0.0.1/crm_bench .venv/bin/python -m bench.campaigns --reps 3

Needs the database migrated and seeded (bench.seed); scores clients and refreshes the persona,
tier and service-level segments first when nobody has a current score / the segments have no
members.

Setup (through the services, as ops and compliance users): the default contact policy; 2% of
the clients opted out of SMS; two SMS campaigns launched over persona segments -- one of a
higher priority (3) than the measured one, one of a lower priority (7), half of whose contacts
(even client ids) are then marked sent -- so the measured launch finds counted ledger contacts
of every kind: a higher priority's ("higher_priority"), a lower priority's already sent
("capped") and a lower priority's only planned (taken back for the treated, their member of
the lower campaign then "higher_priority"). The measured campaign: audience level_mass +
level_affluent + level_hnw (every client), an SMS step with variants A/B 50/50, a 10% holdout,
products [R3 fund, R2 bond] (suitability per client, the first suitable one offered),
priority 5.

In the same run, alternating which goes first, `--reps` times (medians reported):
(a) the product: a new campaign created, submitted, approved and launched through
    campaigns.services (the queued task is held back), then `campaign_launch_run` run
    synchronously -- only that is timed (freeze with arms + take back + reserve, one
    transaction), with the launch's own `timings`;
(b) the baseline: one hand-written SQL script, one transaction, with the same two session
    settings as the launch (jit off, work_mem 256MB): INSERT … SELECT of the members with the
    exclusion CASE written by hand (the ledger aggregated once per client and joined, with the
    lower priorities' takeable contacts counted apart) and the arm drawn in the same statement
    by window functions (the same md5 order key and per-tier start, computed in SQL from the
    product campaign's code); the take-back (the fewest takeable contacts per treated client,
    cancelled, and the lower campaign's members marked, in one statement); the ledger INSERT …
    SELECT -- into a second campaign row. Checked equal: every member's (client, tier, arm,
    exclusion reason, offered product), every ledger row's (client, step, channel, variant,
    content version, priority, exempt, status, planned day), and the lower campaign's contacts
    (client, status, error) and members (client, arm, exclusion reason) after the launch.
Before each side the other side's rows are deleted (members and ledger rows by campaign / source
id: the ledger holds the setup campaigns' rows), the lower campaign's taken contacts and
members put back, both tables VACUUM ANALYZEd and a CHECKPOINT taken.
(c) results: `campaign_results` of the launched campaign (its contacts marked sent / delivered /
    responded / failed in bulk, launch moved 35 days back, purchases of the offered products
    inserted for a few % of members, inside and outside the 30-day window) against one
    hand-written SQL statement giving the per-arm members, contacted, delivered, responded,
    converted and revenue -- checked equal; one untimed pass of each first (warm reads), then
    alternating. The inserted purchases are deleted at the end.

`--explain` (after a run): EXPLAIN (ANALYZE, BUFFERS, WAL) of the product's own launch
statements, as it issues them (in a rolled-back transaction, constraints IMMEDIATE so the
foreign-key checks show), and of its results query.

Writes: campaigns, members and ledger rows of campaigns coded bench-*, opt-outs with source
"bench-campaigns" (removed and re-made on every run), and temporarily clients_transaction rows
whose txn_id starts with BENCHCMP-.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from contextlib import contextmanager
from decimal import Decimal
from unittest import mock

PREFIX = "bench-"
OPTOUT_SOURCE = "bench-campaigns"
TXN_PREFIX = "BENCHCMP-"
AUDIENCE = ["level_mass", "level_affluent", "level_hnw"]
HIGHER, LOWER = "silver_haired", "gen_z"  # persona segments of the setup campaigns
KINDS = ("persona", "tier", "service_level")
RESULTS_SHIFT_DAYS = 35
COUNTED = ("planned", "queued", "sent", "delivered", "responded")
CONTACTED = ("sent", "delivered", "responded")


def campaign_data(code: str, *, include: list[str], priority: int, products: list[str],
                  holdout: int = 10) -> dict:
    return {
        "code": code, "name": f"基准测试 {code}", "scenario": "ad_hoc",
        "goal": {"metric": "conversion", "target": 0.05, "window_days": 30},
        "audience": {"include": include, "exclude": []},
        "products": products, "priority": priority, "holdout_pct": holdout,
        "steps": [{"channel": "sms", "delay_trading_days": 0, "variants": [
            {"code": "A", "share": 50,
             "body": "{name}您好，{product_name}（风险等级{product_risk_level}）本周开放申购，"
                     "详询您的客户经理{rm_name}。退订回TD"},
            {"code": "B", "share": 50,
             "body": "{name}您好，您的客户经理{rm_name}为您准备了年末资产配置建议。退订回TD"}]}],
    }


# --- (b) the hand-written launch --------------------------------------------------------

# The default contact policy (checked in force at setup): 2 contacts a week on all channels,
# 1 SMS a week -> a contact planned on day D must fit every 7-day window containing D. A
# contact of a lower-priority campaign (> 5) that has not gone out (planned or queued, not
# claimed, never tried, not exempt, not a call its RM closed) can be taken back.
TAKEABLE = """(source = 'campaign' AND priority > %(priority)s AND NOT exempt
    AND status IN ('planned', 'queued') AND claimed_at IS NULL AND attempts = 0
    AND NOT (channel IN ('phone', 'wechat') AND EXISTS (
        SELECT 1 FROM outreach_rmtask t WHERE t.origin_type = 'outreach.contact'
        AND t.origin_id = x.id::text AND t.status <> 'open')))"""

MEMBERS_SQL = """
WITH l AS (
    SELECT client_id,
           count(*) FILTER (WHERE channel = 'sms') AS sms,
           count(*) FILTER (WHERE channel = 'sms' AND """ + TAKEABLE + """) AS sms_takeable,
           count(*) AS all_channels,
           count(*) FILTER (WHERE """ + TAKEABLE + """) AS all_takeable,
           bool_or(source = 'campaign' AND priority < %(priority)s) AS higher
    FROM outreach_contact x
    WHERE status IN ('planned', 'queued', 'sent', 'delivered', 'responded')
      AND planned_on BETWEEN %(window_lo)s AND %(window_hi)s
      AND NOT (source = 'campaign' AND source_id = %(campaign)s)
    GROUP BY client_id
), t AS (
    SELECT c.id, COALESCE(s.tier, '') AS tier,
           CASE WHEN c.status = 'closed' THEN 'closed'
                WHEN NOT c.consent_sms THEN 'no_consent'
                WHEN o.id IS NOT NULL THEN 'unsubscribed'
                WHEN c.phone = '' THEN 'no_contact'
                WHEN c.risk_expires_on IS NULL OR c.risk_expires_on < %(day)s
                     OR c.risk_level NOT IN ('C1', 'C2', 'C3', 'C4', 'C5') THEN 'risk_expired'
                WHEN c.risk_level = 'C1' THEN 'unsuitable'
                WHEN l.sms - l.sms_takeable >= 1 OR l.all_channels - l.all_takeable >= 2 THEN
                     CASE WHEN l.higher THEN 'higher_priority' ELSE 'capped' END
                ELSE '' END AS reason,
           CASE WHEN c.risk_expires_on >= %(day)s AND c.risk_level IN ('C3', 'C4', 'C5')
                     THEN %(product_r3)s
                WHEN c.risk_expires_on >= %(day)s AND c.risk_level = 'C2' THEN %(product_r2)s
                ELSE '' END AS product
    FROM clients_client c
    LEFT JOIN clients_currentscore s ON s.client_id = c.id
    LEFT JOIN outreach_optout o ON o.client_id = c.id AND o.channel = 'sms'
    LEFT JOIN l ON l.client_id = c.id
    WHERE EXISTS (SELECT 1 FROM segments_segmentmembership m
                  WHERE m.client_id = c.id AND m.segment_id = ANY(%(segments)s))
)
-- Holdout 10%%, A/B 50/50 of the rest: positions 0-999 control, 1000-5499 A, 5500-9999 B; each
-- tier's eligible in md5(code:client) order (bytewise) from a start of md5(code:tier) mod 10000.
INSERT INTO campaigns_campaignmember
    (campaign_id, client_id, tier, arm, exclusion_reason, product_code, entered_at)
SELECT %(campaign)s, t.id, t.tier, COALESCE(a.arm, ''), t.reason, t.product, %(now)s
FROM t LEFT JOIN (
    SELECT id, CASE WHEN pos < 1000 THEN 'control' WHEN pos < 5500 THEN 'A' ELSE 'B' END AS arm
    FROM (SELECT id,
                 ((row_number() OVER (PARTITION BY tier ORDER BY md5(%(seed)s || id::text)
                                      COLLATE "C", id) - 1)
                  * 10000 / count(*) OVER (PARTITION BY tier)
                  + ('x' || substr(md5(%(seed)s || tier), 1, 8))::bit(32)::bigint %% 10000)
                 %% 10000 AS pos
          FROM t WHERE reason = '') r
) a ON a.id = t.id
ORDER BY t.id
"""

# Per treated client: how far over each cap (SMS: 1 a week, all: 2 a week); its takeable
# contacts, SMS first (they count for both caps), lowest priority, latest, newest first; each
# taken while a cap it counts for is still over -- when taking back frees the client at all.
TAKE_BACK_SQL = """
WITH treated AS (
    SELECT client_id FROM campaigns_campaignmember
    WHERE campaign_id = %(campaign)s AND exclusion_reason = '' AND arm <> 'control'
), need AS (
    SELECT client_id, count(*) FILTER (WHERE channel = 'sms') AS sms, count(*) - 1 AS all_channels
    FROM outreach_contact
    WHERE client_id IN (SELECT client_id FROM treated)
      AND status IN ('planned', 'queued', 'sent', 'delivered', 'responded')
      AND planned_on BETWEEN %(window_lo)s AND %(window_hi)s
      AND NOT (source = 'campaign' AND source_id = %(campaign)s)
    GROUP BY client_id
), ranked AS (
    SELECT x.id, x.source_id, x.client_id, (x.channel = 'sms')::int AS sms, n.sms AS sms_need,
           n.all_channels AS all_need,
           coalesce(sum((x.channel = 'sms')::int) OVER before, 0) AS sms_before,
           count(*) OVER before AS all_before,
           sum((x.channel = 'sms')::int) OVER client AS sms_takeable,
           count(*) OVER client AS all_takeable
    FROM outreach_contact x JOIN need n ON n.client_id = x.client_id
    WHERE x.planned_on BETWEEN %(window_lo)s AND %(window_hi)s AND """ + TAKEABLE + """
    WINDOW client AS (PARTITION BY x.client_id),
           before AS (client ORDER BY (x.channel = 'sms') DESC, x.priority DESC,
                      x.planned_on DESC, x.id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), taken AS (
    UPDATE outreach_contact SET status = 'cancelled', error = %(marker)s
    WHERE id IN (SELECT id FROM ranked
                 WHERE sms_need <= sms_takeable AND all_need <= all_takeable
                   AND ((sms = 1 AND sms_before < sms_need) OR all_before < all_need))
    RETURNING source_id, client_id
)
UPDATE campaigns_campaignmember m SET exclusion_reason = 'higher_priority'
FROM taken WHERE m.campaign_id = taken.source_id AND m.client_id = taken.client_id
  AND m.exclusion_reason = ''
"""

LEDGER_SQL = """
INSERT INTO outreach_contact
    (client_id, source, source_id, step, channel, variant, content_version, priority, exempt,
     status, planned_on, provider_id, error, title, body, attempts, created_at)
SELECT client_id, 'campaign', %(campaign)s, 0, 'sms', arm, %(content_version)s, %(priority)s,
       false, 'planned', %(day)s, '', '', '', '', 0, %(now)s
FROM campaigns_campaignmember
WHERE campaign_id = %(campaign)s AND exclusion_reason = '' AND arm <> 'control'
"""

# --- (c) the hand-written results -------------------------------------------------------

RESULTS_SQL = """
WITH c AS (
    SELECT client_id,
           bool_or(status IN ('sent', 'delivered', 'responded')) AS contacted,
           bool_or(status IN ('delivered', 'responded')) AS delivered,
           bool_or(status = 'responded') AS responded,
           min(at) FILTER (WHERE status IN ('sent', 'delivered', 'responded')) AS first_at
    FROM outreach_contact
    WHERE source = 'campaign' AND source_id = %(campaign)s
    GROUP BY client_id
), m AS (
    SELECT m.client_id, m.arm, c.contacted, c.delivered, c.responded,
           CASE WHEN m.arm = 'control' THEN %(launched)s
                ELSE COALESCE(c.first_at, %(launched)s) END AS start
    FROM campaigns_campaignmember m LEFT JOIN c ON c.client_id = m.client_id
    WHERE m.campaign_id = %(campaign)s AND m.exclusion_reason = ''
), p AS (
    SELECT m.client_id, sum(t.revenue) AS revenue
    FROM m JOIN clients_transaction t ON t.client_id = m.client_id
    WHERE t.product_id = ANY(%(products)s)
      AND t.traded_at >= %(launched)s
      AND t.traded_at >= m.start AND t.traded_at < m.start + interval '30 days'
    GROUP BY m.client_id
)
SELECT m.arm, count(*), count(*) FILTER (WHERE m.contacted),
       count(*) FILTER (WHERE m.delivered), count(*) FILTER (WHERE m.responded),
       count(p.client_id), COALESCE(sum(p.revenue), 0)
FROM m LEFT JOIN p ON p.client_id = m.client_id
GROUP BY m.arm ORDER BY m.arm
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--explain", action="store_true",
                        help="only print EXPLAIN (ANALYZE, BUFFERS) of the product's launch "
                             "statements (rolled back) and results query, on the campaign "
                             "an earlier run left")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from campaigns import services
    from campaigns.launch import campaign_launch_run
    from campaigns.models import Campaign, CampaignLaunch
    from campaigns.selectors import campaign_results
    from campaigns.targeting import launch_day_for
    from clients.models import Client, CurrentScore, Product
    from core.models import JobStatus
    from core.services import staff_user_upsert
    from outreach.selectors import DEFAULT_POLICY, contact_policy_get
    from outreach.services import contact_policy_set
    from segments.models import Segment, SegmentMembership
    from segments.services import segment_refresh_many, segments_refresh_all

    if connection.vendor != "postgresql":
        print("this benchmark needs PostgreSQL", file=sys.stderr)
        return 2

    def sql(statement: str, params=None, *, fetch: bool = False):
        with connection.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if fetch else cur.rowcount

    def load() -> str:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())

    @contextmanager
    def no_task():
        """campaign_launch queues the launch task after commit (eagerly without a broker):
        held back, so the benchmark runs and times campaign_launch_run itself."""
        with mock.patch("campaigns.services.campaign_launch_task.delay"):
            yield

    def create_approved(code: str, **kwargs) -> Campaign:
        campaign = services.campaign_create(data=campaign_data(code, **kwargs), actor=ops)
        services.campaign_submit(campaign=campaign, actor=ops)
        return services.campaign_approve(campaign=campaign, actor=compliance,
                                         comment="benchmark")

    def launch_job(campaign: Campaign) -> CampaignLaunch:
        with no_task():
            return services.campaign_launch(campaign=campaign, actor=ops)

    def delete_rows(campaign_id: int) -> tuple[int, int]:
        members = sql("DELETE FROM campaigns_campaignmember WHERE campaign_id = %s",
                      [campaign_id])
        contacts = sql("DELETE FROM outreach_contact WHERE source = 'campaign' "
                       "AND source_id = %s", [campaign_id])
        return members, contacts

    def settle() -> None:
        sql("VACUUM ANALYZE campaigns_campaignmember")
        sql("VACUUM ANALYZE outreach_contact")
        sql("CHECKPOINT")

    if args.explain:
        return explain(sql)

    # --- setup ---------------------------------------------------------------------------
    started = time.perf_counter()
    version = sql("SHOW server_version", fetch=True)[0][0]
    clients = Client.objects.count()
    print(f"PostgreSQL {version}; clients {clients:,}; load average {load()}; "
          f"today {timezone.localdate()}", flush=True)
    if not CurrentScore.objects.exists():
        print("no current scores: scoring every client first (manage.py score_clients)")
        call_command("score_clients")
    segments = {s.code: s for s in Segment.objects.filter(code__in=[*AUDIENCE, HIGHER, LOWER])}
    if set(segments) != {*AUDIENCE, HIGHER, LOWER}:
        print(f"missing segments: {sorted({*AUDIENCE, HIGHER, LOWER} - set(segments))}",
              file=sys.stderr)
        return 2
    if not SegmentMembership.objects.filter(segment__code__in=AUDIENCE).exists():
        print("segments have no members: refreshing persona, tier and service-level segments")
        refreshes = segments_refresh_all(trigger="bench", kinds=KINDS, queue=False)
        segment_refresh_many(refresh_ids=[r.pk for r in refreshes])
    audience_ids = [segments[c].pk for c in AUDIENCE]

    ops, _ = staff_user_upsert(username="bench_ops", role="ops")
    compliance, _ = staff_user_upsert(username="bench_compliance", role="compliance")

    # Leftovers of an earlier run (also one that died half-way).
    old = list(Campaign.objects.filter(code__startswith=PREFIX).values_list("pk", flat=True))
    if old:
        sql("DELETE FROM outreach_contact WHERE source = 'campaign' AND source_id = ANY(%s)",
            [old])
        sql("DELETE FROM campaigns_campaignmember WHERE campaign_id = ANY(%s)", [old])
        Campaign.objects.filter(pk__in=old).delete()
    sql("DELETE FROM clients_transaction WHERE txn_id >= %s AND txn_id < %s "
        "AND txn_id LIKE %s", [TXN_PREFIX, TXN_PREFIX[:-1] + ".", TXN_PREFIX + "%"])
    sql("DELETE FROM outreach_optout WHERE source = %s", [OPTOUT_SOURCE])
    others = sql("SELECT count(*) FROM outreach_contact", fetch=True)[0][0]

    if contact_policy_get()["caps"] != DEFAULT_POLICY["caps"]:
        contact_policy_set(data={"caps": DEFAULT_POLICY["caps"],
                                 "quiet_hours": DEFAULT_POLICY["quiet_hours"]}, actor=ops)
    assert contact_policy_get()["caps"] == DEFAULT_POLICY["caps"]
    optouts = sql("INSERT INTO outreach_optout (client_id, channel, source, created_at) "
                  "SELECT id, 'sms', %s, now() FROM clients_client WHERE id %% 50 = 7 "
                  "ON CONFLICT DO NOTHING", [OPTOUT_SOURCE])

    def demo_product(risk: str) -> Product:
        return (Product.objects.filter(is_active=True, risk_level=risk, product_type__in=(
            "fixed_income", "wealth_management", "public_fund")).order_by("product_code")
            .first())

    fund, bond = demo_product("R3"), demo_product("R2")
    products = [fund.product_code, bond.product_code]
    setup_launches = {}
    for code, include, priority in ((f"{PREFIX}higher", HIGHER, 3),
                                    (f"{PREFIX}lower", LOWER, 7)):
        campaign = create_approved(code, include=[include], priority=priority,
                                   products=[bond.product_code])
        launch = campaign_launch_run(launch_id=launch_job(campaign).pk)
        setup_launches[code] = launch.counts
    lower = campaign  # half of its contacts went out: those stay; the rest can be taken back
    sent = sql("UPDATE outreach_contact SET status = 'sent', at = now() WHERE source = "
               "'campaign' AND source_id = %s AND client_id %% 2 = 0", [lower.pk])
    baseline_campaign = services.campaign_create(
        data=campaign_data(f"{PREFIX}baseline", include=AUDIENCE, priority=5,
                           products=products), actor=ops)
    ledger_setup = sql("SELECT count(*) FROM outreach_contact WHERE source = 'campaign' "
                       "AND source_id IN (SELECT id FROM campaigns_campaign WHERE code "
                       "LIKE %s)", [PREFIX + "%"], fetch=True)[0][0]
    print(f"setup {time.perf_counter() - started:.1f}s: audience {AUDIENCE}; products "
          f"{products} ({fund.risk_level}, {bond.risk_level}); SMS opt-outs {optouts:,}; "
          f"other ledger rows {others:,}")
    for code, counts in setup_launches.items():
        print(f"  {code}: members {counts['members']:,}, eligible {counts['eligible']:,}, "
              f"arms {counts['arms']}, excluded {counts['excluded']}")
    print(f"  ledger rows of the setup campaigns: {ledger_setup:,} ({PREFIX}lower's marked "
          f"sent: {sent:,})", flush=True)

    def lower_restore() -> None:
        """What a measured launch took back from the lower campaign, put back."""
        sql("UPDATE outreach_contact SET status = 'planned', error = '' WHERE source = "
            "'campaign' AND source_id = %s AND status = 'cancelled'", [lower.pk])
        sql("UPDATE campaigns_campaignmember SET exclusion_reason = '' WHERE campaign_id = %s "
            "AND exclusion_reason = 'higher_priority' AND arm <> ''", [lower.pk])
        sql("DELETE FROM campaigns_campaignevent WHERE campaign_id = %s "
            "AND action = 'taken_back'", [lower.pk])

    settle()

    # --- (a)/(b) launch ----------------------------------------------------------------------
    member_cols = "client_id, tier, arm, exclusion_reason, product_code"
    contact_cols = ("client_id, source, step, channel, variant, content_version, priority, "
                    "exempt, status, planned_on")

    lower_member_cols = "client_id, arm, exclusion_reason"
    lower_contact_cols = "client_id, status, error"

    def compared(campaign_id: int):
        return (("members", "campaigns_campaignmember", member_cols, "campaign_id = %s",
                 campaign_id),
                ("ledger", "outreach_contact", contact_cols,
                 "source = 'campaign' AND source_id = %s", campaign_id),
                ("lower_members", "campaigns_campaignmember", lower_member_cols,
                 "campaign_id = %s", lower.pk),
                ("lower_ledger", "outreach_contact", lower_contact_cols,
                 "source = 'campaign' AND source_id = %s", lower.pk))

    def snapshot(campaign_id: int) -> None:
        for name, table, cols, where, pk in compared(campaign_id):
            sql(f"DROP TABLE IF EXISTS bench_{name}")
            sql(f"CREATE TEMP TABLE bench_{name} AS SELECT {cols} FROM {table} WHERE {where}",
                [pk])

    def differences(campaign_id: int) -> dict:
        out = {}
        for name, table, cols, where, pk in compared(campaign_id):
            mine = f"SELECT {cols} FROM {table} WHERE {where}"
            saved = f"SELECT {cols} FROM bench_{name}"
            out[name] = sql(f"SELECT (SELECT count(*) FROM ({mine}) a), "
                            f"(SELECT count(*) FROM ({saved}) b), "
                            f"(SELECT count(*) FROM ({mine} EXCEPT ALL {saved}) d1), "
                            f"(SELECT count(*) FROM ({saved} EXCEPT ALL {mine}) d2)",
                            [pk] * 3, fetch=True)[0]
        return out

    def run_product(campaign: Campaign, launch_id: int) -> dict:
        before = load()
        begun = time.perf_counter()
        launch = campaign_launch_run(launch_id=launch_id)
        seconds = time.perf_counter() - begun
        if launch is None or launch.status != JobStatus.SUCCEEDED:
            raise SystemExit(f"launch failed: {launch and launch.error}")
        return {"seconds": seconds, "timings": launch.timings, "counts": launch.counts,
                "load": (before, load())}

    def run_baseline(product_campaign: Campaign) -> dict:
        day = launch_day_for(timezone.localdate())
        params = {"campaign": baseline_campaign.pk, "priority": product_campaign.priority,
                  "window_lo": day - dt.timedelta(days=6), "window_hi": day + dt.timedelta(days=6),
                  "day": day, "product_r3": fund.product_code, "product_r2": bond.product_code,
                  "now": timezone.now(), "segments": audience_ids,
                  "seed": product_campaign.code + ":",
                  "marker": f"higher priority: {product_campaign.code}",
                  "content_version": product_campaign.content_version}
        steps = {}
        before = load()
        begun = time.perf_counter()
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SET LOCAL jit = off")
                cur.execute("SET LOCAL work_mem = '256MB'")
                for name, statement in (("members", MEMBERS_SQL), ("take_back", TAKE_BACK_SQL),
                                        ("ledger", LEDGER_SQL)):
                    mark = time.perf_counter()
                    cur.execute(statement, params)
                    steps[name] = round(time.perf_counter() - mark, 3)
            mark = time.perf_counter()
        steps["commit"] = round(time.perf_counter() - mark, 3)
        return {"seconds": time.perf_counter() - begun, "timings": steps,
                "load": (before, load())}

    runs = []
    final = None  # the product campaign whose rows stay for (c)
    for rep in range(args.reps):
        campaign = create_approved(f"{PREFIX}launch-{rep + 1}", include=AUDIENCE, priority=5,
                                   products=products)
        launch_id = launch_job(campaign).pk
        campaign.refresh_from_db()
        # alternate, the last repetition ending with the product (its rows stay for (c))
        order = ("baseline", "product") if (args.reps - 1 - rep) % 2 == 0 \
            else ("product", "baseline")
        result = {"rep": rep + 1, "order": order}
        for i, side in enumerate(order):
            lower_restore()
            settle()
            if side == "product":
                result["product"] = run_product(campaign, launch_id)
                result["arm_tiers"] = sql(
                    "SELECT tier, arm, count(*) FROM campaigns_campaignmember WHERE "
                    "campaign_id = %s AND exclusion_reason = '' GROUP BY 1, 2 ORDER BY 1, 2",
                    [campaign.pk], fetch=True)
                own = campaign.pk
            else:
                result["baseline"] = run_baseline(campaign)
                own = baseline_campaign.pk
            if i == 0:
                snapshot(own)
                delete_rows(own)
            else:
                result["check"] = differences(own)
                keep = side == "product" and rep == args.reps - 1
                if keep:
                    final = campaign
                else:
                    delete_rows(own)
        ok = all(v[0] == v[1] and v[2] == 0 and v[3] == 0 for v in result["check"].values())
        result["equal"] = ok
        runs.append(result)
        p, b = result["product"], result["baseline"]
        print(f"rep {rep + 1} ({' then '.join(order)}): product {p['seconds']:.2f}s "
              f"{p['timings']} load {p['load'][0]} -> {p['load'][1]}; baseline "
              f"{b['seconds']:.2f}s {b['timings']} load {b['load'][0]} -> {b['load'][1]}; "
              f"ratio {p['seconds'] / b['seconds']:.2f}; rows (members, ledger, lower's "
              f"members, lower's ledger) "
              + ", ".join(f"{v[0]:,}" for v in result["check"].values())
              + f"; equal {ok}", flush=True)
        if not ok:
            print(f"MISMATCH product vs baseline (count, count, only left, only right): "
                  f"{result['check']}", file=sys.stderr)
            return 1
    for name, *_rest in compared(0):
        sql(f"DROP TABLE IF EXISTS bench_{name}")
    if final is None:  # the last side run was the baseline: launch once more for (c)
        campaign = create_approved(f"{PREFIX}launch-{args.reps + 1}", include=AUDIENCE,
                                   priority=5, products=products)
        lower_restore()
        settle()
        extra = run_product(campaign, launch_job(campaign).pk)
        print(f"extra product launch for (c), not in the medians: {extra['seconds']:.2f}s "
              f"{extra['timings']}")
        final = campaign
    final.refresh_from_db()

    counts = runs[-1]["product"]["counts"]
    print(f"\nlaunch counts (product, last rep): members {counts['members']:,}, eligible "
          f"{counts['eligible']:,}, arms {counts['arms']}, taken back "
          f"{counts.get('taken_back', {})}")
    print("excluded: " + ", ".join(f"{k} {v:,}" for k, v in counts["excluded"].items()))
    print("eligible per tier and arm: " + "; ".join(
        f"{t or '(unscored)'}/{a} {n:,}" for t, a, n in runs[-1]["arm_tiers"]))

    # --- (c) results -----------------------------------------------------------------------
    shift = dt.timedelta(days=RESULTS_SHIFT_DAYS)
    Campaign.objects.filter(pk=final.pk).update(launched_at=final.launched_at - shift)
    final.refresh_from_db()
    launched = final.launched_at
    # contacts: ~2% failed, 3% sent, 4% responded, the rest delivered; at launch + 0-4 h
    marked = sql(
        "UPDATE outreach_contact SET status = CASE WHEN h < 2 THEN 'failed' WHEN h < 5 "
        "THEN 'sent' WHEN h < 9 THEN 'responded' ELSE 'delivered' END, "
        "at = %s + (client_id %% 240) * interval '1 minute' "
        "FROM (SELECT id AS cid, (client_id * 7919) %% 100 AS h FROM outreach_contact "
        "WHERE source = 'campaign' AND source_id = %s) x "
        "WHERE id = x.cid", [launched, final.pk])
    ids = dict(Product.objects.filter(product_code__in=products)
               .values_list("product_code", "pk"))
    # purchases of the member's offered product: control 3%, A 5%, B 4% in the window
    # (2-27 days after launch), plus 1% of everyone 31-33 days after (outside it)
    bought = sql(
        "INSERT INTO clients_transaction (txn_id, client_id, product_id, traded_at, amount, "
        "revenue, channel) "
        "SELECT %s || m.client_id || '-' || k, m.client_id, "
        "CASE m.product_code WHEN %s THEN %s ELSE %s END, "
        "%s + CASE k WHEN 1 THEN (2 + m.client_id %% 25) ELSE (31 + m.client_id %% 3) END "
        "* interval '1 day' + (m.client_id %% 600) * interval '1 minute', "
        "10000 + (m.client_id %% 50) * 1000, (10000 + (m.client_id %% 50) * 1000) * 0.008, 'app' "
        "FROM campaigns_campaignmember m CROSS JOIN (VALUES (1), (2)) v(k) "
        "WHERE m.campaign_id = %s AND m.exclusion_reason = '' AND CASE k "
        "WHEN 1 THEN (m.client_id * 2654435761) %% 1000 < CASE m.arm WHEN 'control' THEN 30 "
        "WHEN 'A' THEN 50 ELSE 40 END "
        "ELSE (m.client_id * 40503) %% 100 = 0 END",
        [TXN_PREFIX, fund.product_code, ids[fund.product_code], ids[bond.product_code],
         launched, final.pk])
    sql("ANALYZE clients_transaction")
    settle()
    print(f"\n(c) results of {final.code}: launch moved {RESULTS_SHIFT_DAYS} days back to "
          f"{timezone.localtime(launched):%Y-%m-%d %H:%M}; contacts marked {marked:,}; "
          f"purchases inserted {bought:,}", flush=True)

    result_runs = []
    params = {"campaign": final.pk, "launched": launched,
              "products": [ids[c] for c in products]}
    # One untimed pass of each first: the page is read again and again, the figures compare
    # warm reads (the first read after the settle pulls ~120k purchase pages from disk).
    for side in ("product", "baseline"):
        begun = time.perf_counter()
        campaign_results(campaign=final) if side == "product" else sql(RESULTS_SQL, params,
                                                                       fetch=True)
        print(f"warm-up {side}: {time.perf_counter() - begun:.2f}s (not counted)")
    for rep in range(args.reps):
        order = ("product", "baseline") if rep % 2 == 0 else ("baseline", "product")
        row = {}
        for side in order:
            before = load()
            begun = time.perf_counter()
            if side == "product":
                results = campaign_results(campaign=final)
                row["product"] = (time.perf_counter() - begun, (before, load()))
                product_rows = [(a["arm"], a["members"], a["contacted"], a["delivered"],
                                 a["responded"], a["converted"], a["revenue"])
                                for a in results["arms"]]
            else:
                hand = sql(RESULTS_SQL, params, fetch=True)
                row["baseline"] = (time.perf_counter() - begun, (before, load()))
                hand_rows = [(arm, *map(int, counts[:5]),
                              float(Decimal(counts[5]).quantize(Decimal("0.01"))))
                             for arm, *counts in hand]
        row["equal"] = product_rows == hand_rows
        result_runs.append(row)
        print(f"results rep {rep + 1} ({' then '.join(order)}): product "
              f"{row['product'][0]:.2f}s load {row['product'][1][0]} -> "
              f"{row['product'][1][1]}; baseline {row['baseline'][0]:.2f}s load "
              f"{row['baseline'][1][0]} -> {row['baseline'][1][1]}; ratio "
              f"{row['product'][0] / row['baseline'][0]:.2f}; equal {row['equal']}", flush=True)
        if not row["equal"]:
            print(f"MISMATCH results: product {product_rows} vs hand {hand_rows}",
                  file=sys.stderr)
            return 1
    print("per arm (arm, members, contacted, delivered, responded, converted, revenue):")
    for r in product_rows:
        print(f"  {r}")
    print(f"uplift: {[(u['variant'], round(u.get('p_value') or 0, 4)) for u in results['uplift']]}"
          f"; srm {results['srm']}")
    removed = sql("DELETE FROM clients_transaction WHERE txn_id >= %s AND txn_id < %s "
                  "AND txn_id LIKE %s", [TXN_PREFIX, TXN_PREFIX[:-1] + ".", TXN_PREFIX + "%"])
    assert removed == bought, (removed, bought)
    sql("ANALYZE clients_transaction")

    # --- summary -------------------------------------------------------------------------------
    pa = statistics.median(r["product"]["seconds"] for r in runs)
    pb = statistics.median(r["baseline"]["seconds"] for r in runs)
    print("\nlaunch (1M-client audience)      median s  runs")
    print(f"(a) product campaign_launch_run  {pa:8.2f}  "
          f"{[round(r['product']['seconds'], 2) for r in runs]}")
    for r in runs:
        r["product"]["timings"]["rest"] = round(r["product"]["seconds"] - sum(
            r["product"]["timings"][k] for k in ("freeze", "take_back", "reserve")), 3)
    for phase in ("freeze", "take_back", "reserve", "rest"):
        values = [r["product"]["timings"][phase] for r in runs]
        print(f"      {phase:<26} {statistics.median(values):8.2f}  {values}"
              + ("  (counts, saves, commit: the deferred FK checks)" if phase == "rest" else ""))
    print(f"(b) hand-written SQL script      {pb:8.2f}  "
          f"{[round(r['baseline']['seconds'], 2) for r in runs]}")
    for phase in ("members", "take_back", "ledger", "commit"):
        values = [r["baseline"]["timings"][phase] for r in runs]
        print(f"      {phase:<26} {statistics.median(values):8.2f}  {values}")
    ra = statistics.median(r["product"]["seconds"] / r["baseline"]["seconds"] for r in runs)
    print(f"(a)/(b) of the medians {pa / pb:.2f} (median of per-rep ratios {ra:.2f}); goal "
          f"<= 1.5 and (a) <= 10 s")
    ca = statistics.median(r["product"][0] for r in result_runs)
    cb = statistics.median(r["baseline"][0] for r in result_runs)
    print(f"\nresults (1M-member campaign)    product {ca:.2f}s "
          f"{[round(r['product'][0], 2) for r in result_runs]}; hand-written {cb:.2f}s "
          f"{[round(r['baseline'][0], 2) for r in result_runs]}; ratio {ca / cb:.2f} "
          f"(goal <= 1.5)")
    print(f"\nload average at the end {load()}; PostgreSQL {version}")
    return 0


def explain(sql) -> int:
    """--explain: EXPLAIN (ANALYZE, BUFFERS) of the product's own statements, as it issues
    them, on the campaign a measured run left in place: the launch's statements re-run in a
    transaction that is rolled back (its rows deleted and what it took back from the lower
    campaign put back first; the launch's session settings; constraints IMMEDIATE, so the
    foreign-key checks show as trigger times), then the results query."""
    from django.db import connection, transaction
    from django.utils import timezone

    from campaigns.launch import _LAUNCH_SETTINGS, _member_variants_sql, _take_back, step_day
    from campaigns.models import EXEMPT_SCENARIOS, Campaign
    from campaigns.selectors import _arm_rows
    from campaigns.targeting import launch_day_for, members_freeze
    from outreach.models import ContactSource
    from outreach.selectors import contact_policy_get
    from outreach.services import contacts_plan

    launched = next((c for c in Campaign.objects.filter(
        code__startswith=PREFIX + "launch-", launched_at__isnull=False).order_by("-pk")
        if c.members.exists()), None)
    # The launch statements run for the baseline's campaign row (same audience, products,
    # steps; no rows of its own), with the launched campaign's ledger rows deleted in the
    # rolled-back transaction: the caps then see the same ledger as the measured launches.
    campaign = Campaign.objects.filter(code=PREFIX + "baseline").first()
    if launched is None or campaign is None or not launched.members.exists():
        print("no launched bench campaign with members: run the benchmark first",
              file=sys.stderr)
        return 2
    print(f"launch statements for {campaign.code}, results of {launched.code}; "
          f"load average {os.getloadavg()}")

    def explaining(execute, statement, params, many, context,
                   kinds=("INSERT", "UPDATE", "WITH", "CREATE TEMPORARY")):
        if not statement.lstrip().upper().startswith(kinds) \
                or " RETURNING " in statement:  # Django reads the rows back
            return execute(statement, params, many, context)
        print(f"\n{statement.split()[0]} …{statement[-120:]!r}")
        result = execute("EXPLAIN (ANALYZE, BUFFERS, WAL) " + statement, params, many, context)
        for (line,) in context["cursor"].fetchall():
            print("    " + line)
        return result

    class Rollback(Exception):
        pass

    day = launch_day_for(timezone.localdate())
    try:
        with transaction.atomic():
            sql("SET CONSTRAINTS ALL IMMEDIATE")
            for statement in _LAUNCH_SETTINGS:
                sql(statement)
            sql("DELETE FROM outreach_contact WHERE source = 'campaign' AND source_id = %s",
                [launched.pk])
            lower = Campaign.objects.get(code=PREFIX + "lower")
            sql("UPDATE outreach_contact SET status = 'planned', error = '' WHERE source = "
                "'campaign' AND source_id = %s AND status = 'cancelled'", [lower.pk])
            sql("UPDATE campaigns_campaignmember SET exclusion_reason = '' WHERE campaign_id = "
                "%s AND exclusion_reason = 'higher_priority' AND arm <> ''", [lower.pk])
            with connection.execute_wrapper(explaining):
                policy = contact_policy_get()
                members_freeze(campaign=campaign, day=day, policy=policy, now=timezone.now())
                _take_back(campaign=campaign, day=day, policy=policy)
                members, params = _member_variants_sql(campaign)
                campaign.launch_day = day
                contacts_plan(source=ContactSource.CAMPAIGN, source_id=campaign.pk, step=0,
                              channel=campaign.steps[0]["channel"],
                              priority=campaign.priority,
                              exempt=campaign.scenario in EXEMPT_SCENARIOS,
                              planned_on=step_day(campaign, 0),
                              content_version=campaign.content_version,
                              members_sql=members, params=params)
            raise Rollback
    except Rollback:
        pass
    def explaining_reads(execute, statement, params, many, context):
        return explaining(execute, statement, params, many, context,
                          kinds=("SELECT", "WITH"))

    with connection.execute_wrapper(explaining_reads):
        _arm_rows(launched)
    print(f"\nload average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
