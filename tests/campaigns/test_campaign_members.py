"""The target list over the API: converted_at per member follows the results' rule."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.launch import campaign_steps_run
from campaigns.models import CampaignMember
from campaigns.selectors import campaign_results
from outreach.models import Contact, ContactStatus
from tests.factories import ProductFactory, TransactionFactory

from .conftest import a_trading_day

pytestmark = pytest.mark.django_db


def test_each_member_says_when_they_converted_as_the_results_count_it(launched, bond, ops_user,
                                                                     logged_in):
    campaign_steps_run(today=a_trading_day())
    Contact.objects.filter(source_id=launched.pk).update(status=ContactStatus.DELIVERED,
                                                         at=timezone.now())
    by_arm = {}
    for member in CampaignMember.objects.filter(campaign=launched).select_related("client"):
        by_arm.setdefault(member.arm, []).append(member.client)
    later = timezone.now().replace(microsecond=0) + dt.timedelta(minutes=5)
    for n, client in enumerate(by_arm["A"][:3]):
        TransactionFactory(client=client, product=bond, traded_at=later + dt.timedelta(hours=n),
                           revenue=Decimal("10.00"))
        TransactionFactory(client=client, product=bond, traded_at=later + dt.timedelta(days=2))
    TransactionFactory(client=by_arm["control"][0], product=bond, traded_at=later)
    TransactionFactory(client=by_arm["B"][0], product=ProductFactory(product_code="OTHER"),
                       traded_at=later)  # not an offered product
    TransactionFactory(client=by_arm["B"][1], product=bond,
                       traded_at=timezone.now() + dt.timedelta(days=40))  # after the window

    api = logged_in(ops_user)
    rows, url = [], "/api/v1/campaigns/spring-bond/members/?excluded=false"
    while url:
        page = api.get(url).json()
        rows += page["results"]
        url = page["next"]
    converted = {r["client_no"]: parse_datetime(r["converted_at"]) for r in rows
                 if r["converted_at"]}
    expected = {c.client_no: later + dt.timedelta(hours=n) for n, c in enumerate(by_arm["A"][:3])}
    expected[by_arm["control"][0].client_no] = later
    assert converted == expected  # the first qualifying purchase, none for the B clients
    arms = {a["arm"]: a["converted"] for a in campaign_results(campaign=launched)["arms"]}
    assert sum(arms.values()) == len(converted)


def _flow(client, at, amount, n=[0]):  # noqa: B006 - a counter for unique flow ids
    from clients.models import CashFlow

    n[0] += 1
    kind = "deposit" if amount > 0 else "withdrawal"
    return CashFlow.objects.create(flow_id=f"CF{n[0]}", client=client, at=at,
                                   amount=Decimal(amount), kind=kind)


def test_a_net_inflow_goal_converts_on_money_in_within_the_window(audience, bond, ops_author,
                                                                  compliance_user):
    from campaigns import services
    from tests.campaigns.conftest import campaign_data, launch_now

    campaign = services.campaign_create(data=campaign_data(
        goal={"metric": "net_inflow", "target": 1_000_000, "window_days": 30}),
        actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    campaign = launch_now(campaign, ops_author)
    campaign_steps_run(today=a_trading_day())
    Contact.objects.filter(source_id=campaign.pk).update(status=ContactStatus.DELIVERED,
                                                         at=timezone.now())
    by_arm = {}
    for member in CampaignMember.objects.filter(campaign=campaign).select_related("client"):
        by_arm.setdefault(member.arm, []).append(member.client)
    later = timezone.now() + dt.timedelta(hours=1)
    _flow(by_arm["A"][0], later, 80_000)
    _flow(by_arm["A"][1], later, 50_000)
    _flow(by_arm["A"][1], later + dt.timedelta(hours=1), -60_000)  # net out: not converted
    _flow(by_arm["control"][0], later, 10_000)
    _flow(by_arm["B"][0], timezone.now() + dt.timedelta(days=40), 90_000)  # after the window
    arms = {a["arm"]: a for a in campaign_results(campaign=campaign)["arms"]}
    assert (arms["A"]["converted"], arms["A"]["net_inflow"]) == (1, 70_000.0)
    assert (arms["control"]["converted"], arms["control"]["net_inflow"]) == (1, 10_000.0)
    assert (arms["B"]["converted"], arms["B"]["net_inflow"]) == (0, 0.0)
