"""Demo campaigns (`demo_setup` calls `demo_extend`): the whole loop for a newcomer.

- a finished campaign (SMS then an RM call) launched seven weeks ago, with contacts, call
  outcomes and purchases in the attribution window, so the results page shows arms, uplift
  against the holdout with intervals, and the export;
- a running campaign whose first step (an RM call) is on `rm`'s and `rm2`'s call lists today
  and whose follow-up email goes out through the email outbox on the next trading day (beat);
- a draft submitted for approval, waiting for compliance.

Everything goes through the services (create, submit, approve, launch, steps); only the finished
campaign's dates are moved back afterwards, as if it had run then. Run again, it adds nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from clients.models import Product, Transaction
from core.models import User
from outreach.calendar import trading_day_after
from outreach.models import Contact, ContactStatus, RMTask, TaskOutcome, TaskStatus

from . import services
from .launch import campaign_launch_run, campaign_steps_run
from .models import CONTROL, Campaign, CampaignMember, CampaignStatus

FINISHED, RUNNING, WAITING = "demo-autumn-bond", "demo-silver-income", "demo-genz-fund-day"
DAYS_AGO = 50


def _product(risk: str) -> Product | None:
    return (Product.objects.filter(is_active=True, risk_level=risk,
                                   product_type__in=("fixed_income", "wealth_management",
                                                     "public_fund"))
            .order_by("product_code").first())


def _campaign(code: str, data: dict, *, ops, compliance, approve: bool = True,
              launch: bool = True) -> Campaign | None:
    if Campaign.objects.filter(code=code).exists():
        return None
    campaign = services.campaign_create(data={"code": code, **data}, actor=ops)
    services.campaign_submit(campaign=campaign, actor=ops)
    if approve:
        services.campaign_approve(campaign=campaign, actor=compliance,
                                  comment="话术合规，产品风险等级已核对。")
    if launch:
        with transaction.atomic():
            job = services.campaign_launch(campaign=campaign, actor=ops)
        campaign_launch_run(launch_id=job.pk)
        campaign.refresh_from_db()
    return campaign


def demo_extend(*, log: Callable[[str], None] = print) -> None:
    ops = User.objects.filter(username="ops").first()
    compliance = User.objects.filter(username="compliance").first()
    bond, fund = _product("R2"), _product("R3")
    if ops is None or compliance is None or bond is None or fund is None:
        return
    finished = _campaign(FINISHED, {
        "name": "潜力与发展客户·秋季稳健债券", "scenario": "ad_hoc",
        "goal": {"metric": "conversion", "target": 0.08, "window_days": 30},
        "audience": {"include": ["tier_potential", "tier_development"], "exclude": []},
        "products": [bond.product_code], "priority": 3, "holdout_pct": 20,
        "steps": [
            {"channel": "sms", "delay_trading_days": 0, "variants": [
                {"code": "A", "share": 50, "body": "{name}您好，{product_name}（风险等级"
                                                   "{product_risk_level}）本周开放申购，"
                                                   "详询您的客户经理{rm_name}。退订回TD"},
                {"code": "B", "share": 50, "body": "{name}您好，您的客户经理{rm_name}为您"
                                                   "准备了秋季资产配置建议，欢迎回电。退订回TD"}]},
            {"channel": "phone", "delay_trading_days": 3, "variants": [
                {"code": "A", "share": 100, "subject": "跟进秋季稳健债券",
                 "body": "您好{name}，我是{rm_name}。前几天给您发了{product_name}的信息，"
                         "想听听您对稳健类产品的想法。"}]}],
    }, ops=ops, compliance=compliance)
    if finished is not None:
        _finish(finished, bond)
        log(f"campaigns: finished demo campaign {FINISHED} with results")
    running = _campaign(RUNNING, {
        "name": "银发客群·稳健收益回访", "scenario": "ad_hoc",
        "goal": {"metric": "conversion", "target": 0.05, "window_days": 30},
        "audience": {"include": ["silver_haired"], "exclude": ["high_net_worth"]},
        "products": [bond.product_code], "priority": 5, "holdout_pct": 10,
        "steps": [{"channel": "phone", "delay_trading_days": 0, "variants": [
            {"code": "A", "share": 50, "subject": "稳健收益回访",
             "body": "{name}您好，我是您的客户经理{rm_name}。近期{product_name}"
                     "（{product_risk_level}）开放申购，想和您聊聊到期资金的安排。"},
            {"code": "B", "share": 50, "subject": "资产检视邀约",
             "body": "{name}您好，我是{rm_name}，想约您做一次持仓检视，顺便介绍"
                     "{product_name}。"}]},
            # The next trading day the beat sends a follow-up email through the email outbox.
            {"channel": "email", "delay_trading_days": 1, "variants": [
                {"code": "A", "share": 50, "subject": "{name}，通话要点回顾",
                 "body": "{name}您好，感谢与{rm_name}的沟通。{product_name}（{product_risk_level}）"
                         "的产品说明请见附页，如有疑问可随时联系您的客户经理。"},
                {"code": "B", "share": 50, "subject": "持仓检视预约",
                 "body": "{name}您好，{rm_name}为您预留了持仓检视时段，届时将一并介绍"
                         "{product_name}。"}]}],
    }, ops=ops, compliance=compliance)
    if running is not None:
        campaign_steps_run(today=running.launch_day)
        log(f"campaigns: running demo campaign {RUNNING} with RM call lists")
    waiting = _campaign(WAITING, {
        "name": "Z世代·基金定投节", "scenario": "ad_hoc",
        "goal": {"metric": "conversion", "target": 0.03, "window_days": 14},
        "audience": {"include": ["gen_z"], "exclude": []},
        "products": [fund.product_code], "priority": 6, "holdout_pct": 15,
        "steps": [{"channel": "app_push", "delay_trading_days": 0, "variants": [
            {"code": "A", "share": 100, "subject": "定投节来了",
             "body": "{name}，每月小额定投{product_name}，长期积累。投资有风险，入市需谨慎。"}]}],
    }, ops=ops, compliance=compliance, approve=False, launch=False)
    if waiting is not None:
        log(f"campaigns: demo campaign {WAITING} waiting for compliance")
    _journeys(ops=ops, compliance=compliance, log=log)


def _journeys(*, ops, compliance, log: Callable[[str], None]) -> None:
    """The shipped onboarding journey approved and running (today's newcomers entered, their
    SMS queued); the zombie-account journey submitted, waiting for compliance."""
    from segments.models import SegmentKind
    from segments.services import segment_refresh_run, segments_refresh_all

    from .journeys import journey_advance

    onboarding = Campaign.objects.filter(code="journey-onboarding", status="draft").first()
    if onboarding is not None:
        # The scenarios filled now, not when a worker gets to the refresh queued after scoring:
        # the launch freezes whoever is new today.
        for refresh in segments_refresh_all(kinds=[SegmentKind.SCENARIO], queue=False):
            segment_refresh_run(refresh_id=refresh.pk)
        services.campaign_submit(campaign=onboarding, actor=ops)
        services.campaign_approve(campaign=onboarding, actor=compliance,
                                  comment="新客旅程话术合规。")
        with transaction.atomic():
            job = services.campaign_launch(campaign=onboarding, actor=ops)
        campaign_launch_run(launch_id=job.pk)
        onboarding.refresh_from_db()
        journey_advance(campaign=onboarding, today=onboarding.launch_day)
        members = CampaignMember.objects.filter(campaign=onboarding)
        log(f"campaigns: onboarding journey running ({members.count()} new clients on it, "
            f"{members.filter(exclusion_reason='').count()} reachable)")
    zombie = Campaign.objects.filter(code="journey-zombie-reactivation", status="draft").first()
    if zombie is not None:
        services.campaign_submit(campaign=zombie, actor=ops)
        log("campaigns: zombie-account journey waiting for compliance")


def _finish(campaign: Campaign, product: Product) -> None:
    """Move the launched campaign back DAYS_AGO days and play it out: both steps made, calls
    answered, and purchases of the offered product in the window -- more in the treated arms
    than in the holdout, variant A ahead of B."""
    rng = random.Random(7)
    now = timezone.now()
    launched = now - dt.timedelta(days=DAYS_AGO)
    launch_day = timezone.localtime(launched).date()
    second_day = trading_day_after(launch_day, 3)
    Campaign.objects.filter(pk=campaign.pk).update(
        launched_at=launched, launch_day=launch_day, steps_done=2,
        status=CampaignStatus.COMPLETED, completed_at=now - dt.timedelta(days=2))
    campaign.events.create(action=CampaignStatus.COMPLETED)
    members = list(CampaignMember.objects.filter(campaign=campaign, exclusion_reason="")
                   .values_list("client_id", "arm"))
    treated = [(c, a) for c, a in members if a != CONTROL]
    Contact.objects.filter(source="campaign", source_id=campaign.pk, step=0).update(
        planned_on=launch_day, status=ContactStatus.DELIVERED,
        at=launched + dt.timedelta(hours=2))
    calls = [Contact(client_id=c, source="campaign", source_id=campaign.pk, step=1,
                     channel="phone", variant=a, content_version=campaign.content_version,
                     priority=campaign.priority, planned_on=second_day,
                     status=rng.choice([ContactStatus.RESPONDED, ContactStatus.DELIVERED,
                                        ContactStatus.SENT]),
                     at=launched + dt.timedelta(days=4))
             for c, a in treated]
    Contact.objects.bulk_create(calls, ignore_conflicts=True)
    first_call = dict(Contact.objects.filter(source_id=campaign.pk, step=1)
                      .values_list("client_id", "pk"))
    tasks = [RMTask(client_id=c, assignee=None, source="campaign", title="跟进秋季稳健债券",
                    status=TaskStatus.DONE, due_on=second_day,
                    outcome=rng.choice([TaskOutcome.REACHED, TaskOutcome.INTERESTED,
                                        TaskOutcome.NO_ANSWER, TaskOutcome.BOUGHT]),
                    outcome_at=launched + dt.timedelta(days=4), done_at=launched
                    + dt.timedelta(days=4), origin_type="outreach.contact",
                    origin_id=str(first_call[c])) for c, _a in treated if c in first_call]
    RMTask.objects.bulk_create(tasks, ignore_conflicts=True)
    rates = {CONTROL: 0.04, "A": 0.14, "B": 0.09}
    txns = []
    for i, (client_id, arm) in enumerate(members):
        if rng.random() < rates.get(arm, 0):
            amount = Decimal(rng.choice([50_000, 100_000, 200_000, 300_000]))
            txns.append(Transaction(
                txn_id=f"DEMO-CMP-{campaign.pk}-{i}", client_id=client_id, product=product,
                traded_at=launched + dt.timedelta(days=rng.randint(5, 25), hours=3),
                amount=amount, revenue=(amount * Decimal("0.003")).quantize(Decimal("0.01")),
                channel="app"))
    Transaction.objects.bulk_create(txns, ignore_conflicts=True)
