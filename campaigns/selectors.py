"""Reads of campaigns: lists, the target list (scoped), the live preview and the results."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clients.models import CashFlow, Product, Transaction
from core.access import client_scope_q
from core.models import AuditAction
from core.services import audit_record
from outreach.calendar import trading_day_after
from outreach.models import CONTACTED_STATUSES, Contact, ContactSource, ContactStatus
from outreach.selectors import contact_policy_get

from . import stats
from .models import CONTROL, Campaign, CampaignMember, GoalMetric
from .targeting import launch_day_for, target_counts


def campaign_list(*, status: str = "", q: str = "") -> QuerySet[Campaign]:
    qs = Campaign.objects.select_related("author", "approved_by").order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(name__icontains=q) | qs.filter(code__icontains=q)
    return qs


def campaign_get(*, code: str, user=None) -> Campaign:
    campaign = Campaign.objects.select_related("author", "approved_by").filter(code=code).first()
    if campaign is None:
        if user is not None:
            audit_record(action=AuditAction.ACCESS_DENIED, actor=user, object_type="campaign",
                         object_id=str(code)[:128])
        raise Http404("No such campaign.")
    return campaign


def journey_summary(*, campaign: Campaign) -> dict | None:
    """Where an always-on campaign stands (the detail page): members in the journey now, who
    entered on its last day (and who was kept out then), who left on their goal, re-entries,
    and when it advances next. One aggregate over the campaign's members; None before launch
    or for a one-off campaign. Counts over the whole list, like the results."""
    if not campaign.always_on or campaign.launch_day is None:
        return None
    last = campaign.journey_day
    eligible = Q(exclusion_reason="")
    counts = CampaignMember.objects.filter(campaign=campaign).aggregate(
        in_journey=Count("id", filter=eligible & Q(exited_at__isnull=True)),
        left_on_goal=Count("id", filter=eligible & Q(exited_at__isnull=False)),
        reentered=Count("id", filter=eligible & Q(round__gt=0)),
        entered_last=Count("id", filter=eligible & Q(entry_day=last)),
        kept_out_last=Count("id", filter=~eligible & Q(entry_day=last)))
    today = timezone.localdate()
    if last is None or last < today:
        upcoming = trading_day_after(today, 0)
    else:
        upcoming = trading_day_after(last, 1)
    return {**counts, "journey_day": last, "next_day": upcoming,
            "hour": settings.JOURNEY_HOUR}


def campaign_members(*, campaign: Campaign, user, arm: str = "",
                     excluded: bool | None = None) -> QuerySet[CampaignMember]:
    """The target list as `user` may see it (core.access: an RM their book), each member
    with their contacts in this campaign."""
    qs = (CampaignMember.objects.filter(campaign=campaign)
          .filter(client_scope_q(user, prefix="client__"))
          .select_related("client")
          .prefetch_related(Prefetch(
              "client__contacts", to_attr="campaign_contacts",
              queryset=Contact.objects.filter(source=ContactSource.CAMPAIGN,
                                              source_id=campaign.pk).order_by("step")))
          .order_by("id"))
    if arm:
        qs = qs.filter(arm=arm)
    if excluded is True:
        qs = qs.exclude(exclusion_reason="")
    elif excluded is False:
        qs = qs.filter(exclusion_reason="")
    return qs


def campaign_preview(*, campaign: Campaign, today: dt.date | None = None) -> dict:
    """Before launch: the audience, how many each exclusion reason takes (in order) and the
    minimum detectable effect at the size that remains and the holdout share."""
    day = launch_day_for(today or timezone.localdate())
    counts = target_counts(campaign=campaign, day=day, policy=contact_policy_get())
    eligible = counts.pop("", 0)
    control = round(eligible * campaign.holdout_pct / 100)
    shares = [v["share"] for v in campaign.steps[0]["variants"]] if campaign.steps else [100]
    smallest = (eligible - control) * min(shares) // 100
    return {"audience": eligible + sum(counts.values()), "eligible": eligible,
            "excluded": counts, "launch_day": day,
            "mde": _pair_mde(control=control, variant=smallest, baseline=BASELINE_RATE)}


# Conversion rate assumed for the minimum detectable effect before launch: the share of
# clients who buy an offered product in 30 days without a campaign (brokerage wealth
# products run at a few percent).
BASELINE_RATE = 0.05


def _quoted(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _window_end(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"{column} + make_interval(days => %s)"
    return f"datetime({column}, '+' || %s || ' days')"


def _outcomes_sql(campaign: Campaign, *, client_ids: list[int] | None = None
                  ) -> tuple[str, list]:
    """The one statement of what came of each eligible member (all, or those of
    `client_ids`): (client_id, arm, contacted, delivered, responded, converted_at, revenue).
    Members are joined to their contacts in this campaign and to their purchases of the offered
    products within the window after the first contact (the holdout and the never-contacted:
    after they entered the list, i.e. launch or a journey's entry); converted_at is the first
    such purchase. For a goal without products: any purchase. Their cash flows in the same
    window give the net inflow; net-inflow and AUM goals convert on the first deposit when it
    is positive."""
    members, contacts, txns = _quoted(CampaignMember), _quoted(Contact), _quoted(Transaction)
    flows = _quoted(CashFlow)
    # Money goals convert on the first deposit of a window whose net inflow is positive (AUM
    # history is not kept: an AUM goal is judged by the money that came in).
    converted = ("CASE WHEN f.net_inflow > 0 THEN f.first_in END"
                 if (campaign.goal or {}).get("metric") in (GoalMetric.NET_INFLOW,
                                                            GoalMetric.AUM)
                 else "p.converted_at")
    contacted = ", ".join(["%s"] * len(CONTACTED_STATUSES))
    delivered = (ContactStatus.DELIVERED, ContactStatus.RESPONDED)
    product_ids = list(Product.objects.filter(product_code__in=campaign.products)
                       .values_list("pk", flat=True))
    products_sql = (f"AND t.product_id IN ({', '.join(['%s'] * len(product_ids))})"
                    if product_ids else "")
    some = client_ids is not None
    members_sql = f"AND client_id IN ({', '.join(['%s'] * len(client_ids))})" \
        if some and client_ids else ("AND 1 = 0" if some else "")
    window = int((campaign.goal or {}).get("window_days", 30))
    sql = f"""
        WITH m AS (
            SELECT client_id, arm, entered_at FROM {members}
            WHERE campaign_id = %s AND exclusion_reason = '' {members_sql}
        ), c AS (
            SELECT client_id,
                   MAX(CASE WHEN status IN ({contacted}) THEN 1 ELSE 0 END) AS contacted,
                   MAX(CASE WHEN status IN (%s, %s) THEN 1 ELSE 0 END) AS delivered,
                   MAX(CASE WHEN status = %s THEN 1 ELSE 0 END) AS responded,
                   MIN(CASE WHEN status IN ({contacted}) THEN at END) AS first_at
            FROM {contacts} WHERE source = %s AND source_id = %s {members_sql}
            GROUP BY client_id
        ), b AS (
            SELECT m.client_id, m.arm, COALESCE(c.contacted, 0) AS contacted,
                   COALESCE(c.delivered, 0) AS delivered, COALESCE(c.responded, 0) AS responded,
                   CASE WHEN m.arm = %s THEN m.entered_at
                        ELSE COALESCE(c.first_at, m.entered_at) END AS start
            FROM m LEFT JOIN c ON c.client_id = m.client_id
        ), p AS (
            SELECT b.client_id, MIN(t.traded_at) AS converted_at, SUM(t.revenue) AS revenue
            FROM b
            JOIN {txns} t ON t.client_id = b.client_id AND t.traded_at >= b.start
                 AND t.traded_at < {_window_end('b.start')} {products_sql}
            GROUP BY b.client_id
        ), f AS (
            SELECT b.client_id, SUM(x.amount) AS net_inflow,
                   MIN(CASE WHEN x.amount > 0 THEN x.at END) AS first_in
            FROM b
            JOIN {flows} x ON x.client_id = b.client_id AND x.at >= b.start
                 AND x.at < {_window_end('b.start')}
            GROUP BY b.client_id
        )
        SELECT b.client_id, b.arm, b.contacted, b.delivered, b.responded,
               {converted} AS converted_at, p.revenue, f.net_inflow
        FROM b LEFT JOIN p ON p.client_id = b.client_id
               LEFT JOIN f ON f.client_id = b.client_id
    """
    ids = list(client_ids or [])
    params = [campaign.pk, *ids, *CONTACTED_STATUSES, *delivered, ContactStatus.RESPONDED,
              *CONTACTED_STATUSES, ContactSource.CAMPAIGN, campaign.pk, *ids, CONTROL,
              window, *product_ids, window]
    return sql, params


def _arm_rows(campaign: Campaign) -> list[tuple]:
    """(arm, members, contacted, delivered, responded, converted, revenue, net inflow) per arm,
    one query
    over _outcomes_sql."""
    sql, params = _outcomes_sql(campaign)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT o.arm, COUNT(*), SUM(o.contacted), SUM(o.delivered), SUM(o.responded),
                   SUM(CASE WHEN o.converted_at IS NULL THEN 0 ELSE 1 END),
                   COALESCE(SUM(o.revenue), 0), COALESCE(SUM(o.net_inflow), 0)
            FROM ({sql}) o GROUP BY o.arm ORDER BY o.arm""", params)
        return cursor.fetchall()


def members_converted_at(*, campaign: Campaign, client_ids: list[int]) -> dict[int, object]:
    """When each of these members converted (the results' rule, _outcomes_sql), or None."""
    if campaign.launched_at is None or not client_ids:
        return {}
    sql, params = _outcomes_sql(campaign, client_ids=client_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT o.client_id, o.converted_at FROM ({sql}) o", params)
        rows = cursor.fetchall()
    return {client_id: _aware(at) for client_id, at in rows}


def _aware(value):
    """A timestamp from raw SQL as an aware datetime (SQLite returns UTC text)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value


def _funded_members(campaign: Campaign) -> QuerySet[CampaignMember]:
    """The eligible members whose account was first funded within the window after launch."""
    start = timezone.localtime(campaign.launched_at).date()
    end = start + dt.timedelta(days=int((campaign.goal or {}).get("window_days", 30)))
    return CampaignMember.objects.filter(
        campaign=campaign, exclusion_reason="", client__first_funded_on__gte=start,
        client__first_funded_on__lt=end)


def _funded_rows(campaign: Campaign) -> dict[str, int]:
    """Members per arm whose account was first funded within the window after launch."""
    return dict(_funded_members(campaign).values_list("arm").annotate(n=Count("id"))
                .order_by())


def _converted_by(metric: str) -> str:
    """Which outcome of a member counts as converted for the goal `metric`: the first funding
    (funded), a response (response), else the goal's event of _outcomes_sql (converted_at)."""
    return {GoalMetric.FUNDED: "funded", GoalMetric.RESPONSE: "responded"}.get(metric,
                                                                                "bought")


MEMBER_OUTCOMES = ("members", "contacted", "converted")


def campaign_outcome_client_ids(*, campaign: Campaign, outcome: str):
    """The client ids of the members counted in `outcome` (MEMBER_OUTCOMES) by
    campaign_results, summed over the arms: the eligible members, those contacted, those
    converted (the goal's rule). A subquery for `client_id__in` / `pk__in` (one statement,
    whatever the size of the list)."""
    if outcome not in MEMBER_OUTCOMES:
        raise ValueError(outcome)
    eligible = CampaignMember.objects.filter(campaign=campaign, exclusion_reason="")
    if campaign.launched_at is None:
        return eligible.none().values("client_id")
    if outcome == "members":
        return eligible.values("client_id")
    rule = "contacted" if outcome == "contacted" else _converted_by(
        (campaign.goal or {}).get("metric", GoalMetric.CONVERSION))
    if rule == "funded":
        return _funded_members(campaign).values("client_id")
    where = {"contacted": "o.contacted = 1", "responded": "o.responded = 1",
             "bought": "o.converted_at IS NOT NULL"}[rule]
    sql, params = _outcomes_sql(campaign)
    return RawSQL(f"SELECT o.client_id FROM ({sql}) o WHERE {where}", params)


def campaign_results(*, campaign: Campaign) -> dict:
    """shared/API.md "results": per arm the funnel and conversion, each variant's uplift
    against the holdout with an exact test and an interval, the sample-ratio check and the
    minimum detectable effect. Converted means the goal's event: bought an offered product in
    the window (conversion), money in (net inflow, AUM: a positive net inflow in the window,
    converted on the first deposit), first funding (funded), a response (response)."""
    if campaign.launched_at is None:
        return {"arms": [], "uplift": [], "srm": {"p_value": None, "flagged": False},
                "mde": None, "metric": (campaign.goal or {}).get("metric")}
    metric = (campaign.goal or {}).get("metric", GoalMetric.CONVERSION)
    rows = _arm_rows(campaign)
    funded = _funded_rows(campaign) if metric == GoalMetric.FUNDED else {}
    arms = []
    for arm, members, contacted, delivered, responded, bought, revenue, net_inflow in rows:
        converted = {"funded": funded.get(arm, 0), "responded": int(responded or 0),
                     "bought": int(bought or 0)}[_converted_by(metric)]
        arms.append({"arm": arm, "members": members, "contacted": int(contacted or 0),
                     "delivered": int(delivered or 0), "responded": int(responded or 0),
                     "converted": converted, "conversion_rate": stats.rate(converted, members),
                     "revenue": round(float(revenue or 0), 2),
                     "net_inflow": round(float(net_inflow or 0), 2)})
    by_arm = {a["arm"]: a for a in arms}
    control = by_arm.get(CONTROL)
    uplift = []
    for arm in arms:
        if arm["arm"] == CONTROL:
            continue
        result = stats.uplift(variant_conversions=arm["converted"],
                              variant_members=arm["members"],
                              control_conversions=control["converted"] if control else 0,
                              control_members=control["members"] if control else 0)
        uplift.append({"variant": arm["arm"], **result})
    expected = {}
    if campaign.steps:
        treated = 100 - campaign.holdout_pct
        expected = {v["code"]: treated * v["share"] / 100 for v in campaign.steps[0]["variants"]}
        if campaign.holdout_pct:
            expected[CONTROL] = campaign.holdout_pct
    baseline = control["conversion_rate"] if control and control["conversion_rate"] else \
        BASELINE_RATE
    smallest = min((a["members"] for a in arms if a["arm"] != CONTROL), default=0)
    return {"metric": metric, "arms": arms, "uplift": uplift,
            "srm": stats.srm(observed={a: by_arm.get(a, {}).get("members", 0) for a in expected},
                             expected_shares=expected),
            "mde": _pair_mde(control=control["members"] if control else 0, variant=smallest,
                             baseline=baseline)}


def _pair_mde(*, control: int, variant: int, baseline: float) -> float | None:
    """The minimum detectable effect of one variant against the holdout: each comparison
    has only that variant's members (the smallest variant is the one that limits)."""
    members = control + variant
    if not control or not variant:
        return None
    return stats.mde(members=members, holdout_pct=100 * control / members,
                     baseline_rate=baseline)
