"""Always-on campaigns (journeys, shared/DOMAIN.md "Scenarios"): every trading day, from beat,
one transaction per campaign under the caps lock, all set-based:

1. exit: members whose goal is met since they entered leave the journey (conversion: bought
   an offered product, or anything when none is offered; funded; net inflow: money in; a
   response; for the risk-assessment scenario also a renewed assessment);
2. re-entry: a member whose journey is over (left, or past its last step) and whose last entry
   is at least `reentry_cooldown_days` old enters again if they are in the audience now (a new
   `round`, same arm); an excluded client is looked at afresh after the cooldown;
   A holiday-greeting journey (scenario "holiday") enters and re-enters only on the last trading
   day before the Spring Festival, Mid-Autumn or National Day (the official calendar).
3. entry: the audience's clients who are not members yet enter today through the launch's own
   target list (campaigns.targeting.members_freeze: the same exclusions, suitability, caps and
   stratified arms -- the same code, not a copy);
4. advance: for each step, the members whose step is due today (their entry day plus the
   steps' delays in trading days) get its contact in the ledger, then the step goes out
   through launch.step_dispatch (caps, consent, the RM's call list, the outbox). A step with
   `"when": "no_response"` goes only to members whose previous step's contact got no
   response.

A killed worker leaves nothing half-done (one transaction), and a re-run adds nothing twice:
members are unique per (campaign, client), contacts per (campaign, step number, client), and
the ledger's step number is round * STEP_STRIDE + step index.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from clients.models import CashFlow, Client, Product, Transaction
from outreach.calendar import greeting_holiday_ahead, trading_days
from outreach.caps import caps_lock
from outreach.models import Contact, ContactSource, ContactStatus
from outreach.selectors import contact_policy_get
from outreach.services import contacts_plan
from segments.models import SegmentMembership
from segments.scenarios import threshold

from .models import (
    CONTROL,
    EXEMPT_SCENARIOS,
    STEP_STRIDE,
    Campaign,
    CampaignMember,
    GoalMetric,
    Scenario,
)
from .models import CampaignStatus as S
from .targeting import _segment_ids, members_freeze

NO_RESPONSE = "no_response"


def _q(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def entry_cutoff(today: dt.date, delay: int) -> dt.date | None:
    """The latest entry day whose step, `delay` trading days after entry, is due by `today`
    (entry days are trading days). None when no trading day is that far back."""
    span = 2 * delay + 30
    while span < 4000:
        days = trading_days(today - dt.timedelta(days=span), today)
        if len(days) > delay:
            return days[-1 - delay]
        span *= 2
    return None


def _in_audience_sql(campaign: Campaign) -> tuple[str, list]:
    """SQL condition on `m.client_id`: in an included segment and in no excluded one."""
    audience = campaign.audience or {}
    include = _segment_ids(audience.get("include") or []) or [0]
    exclude = _segment_ids(audience.get("exclude") or [])
    table = _q(SegmentMembership)
    sql = (f"EXISTS (SELECT 1 FROM {table} s WHERE s.client_id = m.client_id "
           f"AND s.segment_id IN ({', '.join(['%s'] * len(include))}))")
    params: list = list(include)
    if exclude:
        sql += (f" AND NOT EXISTS (SELECT 1 FROM {table} s WHERE s.client_id = m.client_id "
                f"AND s.segment_id IN ({', '.join(['%s'] * len(exclude))}))")
        params += exclude
    return sql, params


def _goal_met_sql(campaign: Campaign, today: dt.date) -> tuple[str, list] | None:
    """SQL condition on member `m`: the journey's goal is met since `m.entered_at`."""
    metric = (campaign.goal or {}).get("metric")
    conditions: list[str] = []
    params: list = []
    if metric == GoalMetric.CONVERSION:
        ids = list(Product.objects.filter(product_code__in=campaign.products)
                   .values_list("pk", flat=True))
        products = (f" AND t.product_id IN ({', '.join(['%s'] * len(ids))})" if ids else "")
        conditions.append(f"EXISTS (SELECT 1 FROM {_q(Transaction)} t WHERE t.client_id = "
                          f"m.client_id AND t.traded_at >= m.entered_at{products})")
        params += ids
    elif metric == GoalMetric.FUNDED:
        # A first deposit on or after the day of entry (a date: the same day counts); a
        # client funded before entering stays for the rest of the welcome.
        conditions.append(f"EXISTS (SELECT 1 FROM {_q(Client)} c WHERE c.id = m.client_id "
                          f"AND c.first_funded_on >= m.entry_day)")
    elif metric in (GoalMetric.NET_INFLOW, GoalMetric.AUM):
        conditions.append(f"(SELECT COALESCE(SUM(f.amount), 0) FROM {_q(CashFlow)} f "
                          f"WHERE f.client_id = m.client_id AND f.at >= m.entered_at) > 0")
    elif metric == GoalMetric.RESPONSE:
        conditions.append(f"EXISTS (SELECT 1 FROM {_q(Contact)} k WHERE k.client_id = "
                          f"m.client_id AND k.source = %s AND k.source_id = m.campaign_id "
                          f"AND k.status = %s AND k.step >= m.round * {STEP_STRIDE})")
        params += [ContactSource.CAMPAIGN, ContactStatus.RESPONDED]
    if campaign.scenario == Scenario.RISK_EXPIRING:  # the assessment was renewed
        renewed_until = today + dt.timedelta(days=int(threshold("RISK_EXPIRY_DAYS")))
        conditions.append(f"EXISTS (SELECT 1 FROM {_q(Client)} c WHERE c.id = m.client_id "
                          f"AND c.risk_expires_on > %s)")
        params.append(renewed_until)
    if not conditions:
        return None
    return "(" + " OR ".join(conditions) + ")", params


def _exit(campaign: Campaign, *, today: dt.date, now: dt.datetime) -> int:
    met = _goal_met_sql(campaign, today)
    if met is None:
        return 0
    sql, params = met
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(CampaignMember)} SET exited_at = %s WHERE id IN ("
            f"SELECT m.id FROM {_q(CampaignMember)} m WHERE m.campaign_id = %s "
            f"AND m.exclusion_reason = '' AND m.exited_at IS NULL AND {sql})",
            [now, campaign.pk, *params])
        return cursor.rowcount


def _journey_over_sql(campaign: Campaign, today: dt.date) -> tuple[str, list]:
    """Condition on member `m`: left the journey, or its last step is past."""
    total = sum(int(s.get("delay_trading_days") or 0) for s in campaign.steps)
    cutoff = entry_cutoff(today, total)
    if cutoff is None:
        return "m.exited_at IS NOT NULL", []
    return "(m.exited_at IS NOT NULL OR m.entry_day < %s)", [cutoff]


def _reenter(campaign: Campaign, *, today: dt.date, now: dt.datetime) -> tuple[int, int]:
    """(members who entered again, excluded clients looked at afresh)."""
    cooldown_start = today - dt.timedelta(days=campaign.reentry_cooldown_days)
    over, over_params = _journey_over_sql(campaign, today)
    audience, audience_params = _in_audience_sql(campaign)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(CampaignMember)} SET round = round + 1, entry_day = %s, "
            f"entered_at = %s, exited_at = NULL WHERE id IN ("
            f"SELECT m.id FROM {_q(CampaignMember)} m WHERE m.campaign_id = %s "
            f"AND m.exclusion_reason = '' AND m.entry_day <= %s AND {over} AND {audience})",
            [today, now, campaign.pk, cooldown_start, *over_params, *audience_params])
        again = cursor.rowcount
        cursor.execute(
            f"DELETE FROM {_q(CampaignMember)} WHERE campaign_id = %s "
            f"AND exclusion_reason <> '' AND entry_day <= %s",
            [campaign.pk, cooldown_start])
        return again, cursor.rowcount


def _due_members_sql(campaign: Campaign, index: int, cutoff: dt.date,
                     round_: int) -> tuple[str, list]:
    """Members (client_id, variant) of entry `round_` whose step `index` is due."""
    sql = (f"SELECT m.client_id, m.arm AS variant FROM {_q(CampaignMember)} m "
           f"WHERE m.campaign_id = %s AND m.exclusion_reason = '' AND m.arm <> %s "
           f"AND m.exited_at IS NULL AND m.round = %s AND m.entry_day <= %s")
    params: list = [campaign.pk, CONTROL, round_, cutoff]
    if index > 0 and campaign.steps[index].get("when") == NO_RESPONSE:
        sql += (f" AND EXISTS (SELECT 1 FROM {_q(Contact)} k WHERE k.client_id = m.client_id "
                f"AND k.source = %s AND k.source_id = %s AND k.step = %s AND k.status <> %s)")
        params += [ContactSource.CAMPAIGN, campaign.pk, round_ * STEP_STRIDE + index - 1,
                   ContactStatus.RESPONDED]
    return sql, params


def journeys_due(now: dt.datetime | None = None) -> bool:
    """Journeys advance once a trading day, from JOURNEY_HOUR (Asia/Shanghai) on: after the
    nightly scoring and segment refresh have put clients in their scenarios."""
    from django.conf import settings

    local = timezone.localtime(now or timezone.now())
    return local.hour >= settings.JOURNEY_HOUR


def journey_advance(*, campaign: Campaign, today: dt.date) -> dict:
    """One trading day of one always-on campaign (see the module's docstring)."""
    from .launch import bulk_transaction_tune, step_dispatch

    now = timezone.now()
    counts = {"exited": 0, "reentered": 0, "entered": 0, "queued": 0, "calls": 0}
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != S.RUNNING or not locked.always_on \
                or (locked.journey_day is not None and locked.journey_day >= today):
            return counts
        caps_lock()
        bulk_transaction_tune()
        counts["exited"] = _exit(locked, today=today, now=now)
        # A holiday greeting enters its audience on the last trading day before the holiday.
        if locked.scenario != Scenario.HOLIDAY or greeting_holiday_ahead(today):
            counts["reentered"], _fresh = _reenter(locked, today=today, now=now)
            before = CampaignMember.objects.filter(campaign=locked).count()
            members_freeze(campaign=locked, day=today, policy=contact_policy_get(), now=now)
            counts["entered"] = CampaignMember.objects.filter(campaign=locked).count() - before
        delay = 0
        rounds = list(CampaignMember.objects.filter(campaign=locked, exclusion_reason="",
                                                    exited_at=None)
                      .values_list("round", flat=True).distinct().order_by())
        for index, step in enumerate(locked.steps):
            delay += int(step.get("delay_trading_days") or 0)
            cutoff = entry_cutoff(today, delay)
            if cutoff is None:
                continue
            for round_ in rounds:
                step_no = round_ * STEP_STRIDE + index
                sql, params = _due_members_sql(locked, index, cutoff, round_)
                contacts_plan(source=ContactSource.CAMPAIGN, source_id=locked.pk, step=step_no,
                              channel=step["channel"], priority=locked.priority,
                              exempt=locked.scenario in EXEMPT_SCENARIOS, planned_on=today,
                              content_version=locked.content_version, members_sql=sql,
                              params=params)
                queued, calls = step_dispatch(locked, index, step_no=step_no, today=today,
                                              check_caps=True)
                counts["queued"] += queued
                counts["calls"] += calls
        locked.journey_day = today
        locked.save(update_fields=["journey_day", "updated_at"])
        if any(counts.values()):
            locked.events.create(action="journey_day", detail={"day": today.isoformat(),
                                                               **counts})
    return counts
