"""Who a campaign reaches, set-based: the audience with each client's exclusion reason (or
none), the offered product they are suitable for and their value tier -- one queryset that the
designer's live preview counts and the launch inserts (INSERT ... SELECT), so the two agree.

Exclusions come in a fixed order, the first that applies is the one recorded: closed, no
consent for the first step's channel, opted out, no contact details, risk assessment missing
or expired (only when products are offered), unsuitable for every offered product, then the
contact policy -- taken by a higher-priority campaign, or capped. Exemptions: service messages
(the risk-assessment scenario) skip the caps but are counted.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from clients.models import Client, ClientStatus, Product
from clients.suitability import assessment_valid_q, suitable_for_q
from outreach.calendar import is_trading_day, trading_day_after
from outreach.caps import over_cap_q, taken_by_higher_priority
from outreach.reach import consent_q, contact_details_q, opted_out
from segments.models import SegmentMembership

from .models import CONTROL, EXEMPT_SCENARIOS, Campaign, CampaignMember, ExclusionReason

R = ExclusionReason
BASIS = 10_000  # arm boundaries in basis points of a stratum


def launch_day_for(today: dt.date) -> dt.date:
    """Step 0 runs on the first trading day from `today` on."""
    return today if is_trading_day(today) else trading_day_after(today, 1)


def _in_segments(codes: list[str]) -> Exists:
    return Exists(SegmentMembership.objects.filter(client_id=OuterRef("pk"),
                                                   segment__code__in=codes))


def audience_queryset(campaign: Campaign) -> QuerySet[Client]:
    audience = campaign.audience or {}
    qs = Client.objects.filter(_in_segments(audience.get("include") or []))
    if audience.get("exclude"):
        qs = qs.exclude(_in_segments(audience["exclude"]))
    return qs


def offered_products(campaign: Campaign) -> list[Product]:
    by_code = {p.product_code: p
               for p in Product.objects.filter(product_code__in=campaign.products)}
    return [by_code[c] for c in campaign.products if c in by_code]


def target_queryset(*, campaign: Campaign, day: dt.date, policy: dict) -> QuerySet[Client]:
    """The audience annotated with `reason` ('' = eligible), `offered` (product code) and
    `stratum` (value tier, '' when unscored), for step 0 planned on `day`."""
    channel = campaign.steps[0]["channel"]
    products = offered_products(campaign)
    whens = [
        When(status=ClientStatus.CLOSED, then=Value(R.CLOSED)),
        When(~consent_q(channel), then=Value(R.NO_CONSENT)),
        When(opted_out(channel), then=Value(R.UNSUBSCRIBED)),
        When(~contact_details_q(channel), then=Value(R.NO_CONTACT)),
    ]
    if products:
        suitable_any = Q(pk__in=[])
        for product in products:
            suitable_any |= suitable_for_q(product_risk_level=product.risk_level, today=day)
        whens += [When(~assessment_valid_q(today=day), then=Value(R.RISK_EXPIRED)),
                  When(~suitable_any, then=Value(R.UNSUITABLE))]
    if campaign.scenario not in EXEMPT_SCENARIOS:
        over = over_cap_q(policy=policy, channel=channel, day=day,
                          exclude={"source": "campaign", "source_id": campaign.pk})
        higher = taken_by_higher_priority(policy=policy, channel=channel, day=day,
                                          priority=campaign.priority)
        # One CASE branch, so the cap subqueries run once per client (not again for
        # "capped" after "higher_priority" found the client not over).
        whens.append(When(over, then=Case(When(higher, then=Value(R.HIGHER_PRIORITY)),
                                          default=Value(R.CAPPED), output_field=CharField())))
    offered = Case(*[When(suitable_for_q(product_risk_level=p.risk_level, today=day),
                          then=Value(p.product_code)) for p in products],
                   default=Value(""), output_field=CharField()) if products else Value("")
    return audience_queryset(campaign).annotate(
        reason=Case(*whens, default=Value(""), output_field=CharField()),
        offered=offered,
        stratum=Coalesce(F("current_score__tier"), Value(""), output_field=CharField()))


def target_counts(*, campaign: Campaign, day: dt.date, policy: dict) -> dict[str, int]:
    """{reason: clients} over the audience ('' = eligible): the designer's live preview."""
    rows = (target_queryset(campaign=campaign, day=day, policy=policy)
            .values("reason").annotate(n=Count("pk")).order_by())
    return {row["reason"]: row["n"] for row in rows}


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def members_freeze(*, campaign: Campaign, day: dt.date, policy: dict, now: dt.datetime) -> int:
    """Insert one member row per audience client (reason, offered product, tier; no arm yet).
    A client already on the list keeps their row: a re-run adds nothing twice. Rows go in in
    client order: the indexes and the foreign-key checks at commit then walk their pages in
    order (1M members: ~30% faster than the join's order)."""
    qs = target_queryset(campaign=campaign, day=day, policy=policy).values_list(
        "pk", "stratum", "reason", "offered")
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(CampaignMember)} (campaign_id, client_id, tier, arm, "
            f"exclusion_reason, product_code, entered_at) "
            f"SELECT %s, t.pk, t.stratum, '', t.reason, t.offered, %s FROM ({sql}) AS t "
            f"WHERE true ORDER BY t.pk "
            f"ON CONFLICT (campaign_id, client_id) DO NOTHING",
            [campaign.pk, now, *params])
        return cursor.rowcount


def _hash_expression(column: str) -> str:
    """A deterministic pseudo-random order key of (campaign, client), the same on both
    databases (md5; SQLite gets it from core.apps)."""
    return f"md5(%s || CAST({column} AS TEXT))"


def arms_assign(*, campaign: Campaign) -> int:
    """Give every eligible member without an arm its arm: within each value tier, members
    ordered by md5(campaign code, client id) are split by the holdout and the variants'
    shares from a random start (systematic allocation), so each tier is split in the same
    proportions and the same campaign and client always land in the same arm."""
    variants = campaign.steps[0]["variants"]
    treated = BASIS - campaign.holdout_pct * BASIS // 100
    bounds, edge = [], 0
    if campaign.holdout_pct:
        edge = BASIS - treated
        bounds.append((edge, CONTROL))
    for i, variant in enumerate(variants):
        edge = BASIS if i == len(variants) - 1 else edge + treated * variant["share"] // 100
        bounds.append((edge, variant["code"]))
    case = " ".join(f"WHEN pos < {edge} THEN %s" for edge, _ in bounds[:-1])
    arm_sql = f"CASE {case} ELSE %s END" if case else "%s"
    arm_params = [arm for _, arm in bounds]
    table = _table(CampaignMember)
    seed = campaign.code + ":"
    # A random start per tier: md5(code:tier) mod BASIS.
    start_of = {tier: int(hashlib.md5((seed + tier).encode()).hexdigest()[:8], 16) % BASIS
                for tier in _tiers(campaign)}
    start_sql = "CASE " + " ".join("WHEN tier = %s THEN %s" for _ in start_of) + " ELSE 0 END" \
        if start_of else "0"
    start_params = [v for item in start_of.items() for v in item]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET arm = x.arm FROM ("
            f"  SELECT id, {arm_sql} AS arm FROM ("
            f"    SELECT id, ((row_number() OVER (PARTITION BY tier ORDER BY "
            f"        {_hash_expression('client_id')}, client_id) - 1) * {BASIS} "
            f"        / count(*) OVER (PARTITION BY tier) + {start_sql}) %% {BASIS} AS pos"
            f"    FROM {table} WHERE campaign_id = %s AND exclusion_reason = '' AND arm = ''"
            f"  ) AS r ORDER BY id"  # rows updated in table order, not in md5 order: ~40% faster
            f") AS x WHERE {table}.id = x.id",
            [*arm_params, seed, *start_params, campaign.pk])
        return cursor.rowcount


def _tiers(campaign: Campaign) -> list[str]:
    return list(CampaignMember.objects.filter(campaign=campaign, exclusion_reason="")
                .values_list("tier", flat=True).distinct().order_by("tier"))
