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
