"""Market turbulence: ops write a draft for the holders of the affected product types; once
approved and launched, each RM calls the most exposed clients first."""

import datetime as dt
from decimal import Decimal

import pytest

from campaigns import services
from campaigns.launch import campaign_steps_run
from campaigns.models import Campaign
from campaigns.turbulence import turbulence_start
from core.errors import ApplicationError
from outreach.models import RMTask
from segments.models import Segment
from segments.services import segment_refresh_run
from tests.campaigns.conftest import a_trading_day, launch_now
from tests.factories import ClientFactory, HoldingFactory, ProductFactory


@pytest.fixture
def holders(rm_a):
    stock_fund = ProductFactory(product_code="EQ01", product_type="fund", risk_level="R3")
    bond = ProductFactory(product_code="BD01", product_type="fixed_income")
    day = dt.date(2026, 11, 30)
    out = {}
    for no, value in (("small", "10000"), ("large", "900000"), ("medium", "200000")):
        client = ClientFactory(client_no=no, rm=rm_a, branch=rm_a.branch, consent_phone=True,
                               consent_sms=True)
        HoldingFactory(client=client, product=stock_fund, as_of=day, market_value=Decimal(value))
        out[no] = client
    bond_only = ClientFactory(client_no="bond_only", rm=rm_a, consent_phone=True)
    HoldingFactory(client=bond_only, product=bond, as_of=day)
    return out


def test_the_response_is_a_draft_for_the_holders(holders, ops_user):
    campaign = turbulence_start(product_types=["fund", "stock"], actor=ops_user)
    assert campaign.status == "draft" and campaign.scenario == "market_turbulence"
    assert campaign.exposure_product_types == ["fund", "stock"]
    segment = Segment.objects.get(code=campaign.audience["include"][0])
    assert segment.rule == {"field": "holds_product_type", "op": "in",
                            "value": ["fund", "stock"]}
    with pytest.raises(ApplicationError) as refused:
        turbulence_start(product_types=[], actor=ops_user)
    assert "product_types" in refused.value.fields
    with pytest.raises(ApplicationError):
        turbulence_start(product_types=["gold"], actor=ops_user)
    assert Campaign.objects.filter(scenario="market_turbulence").count() == 1


def test_rms_call_the_most_exposed_holders_first(holders, ops_user, compliance_user,
                                                 settings):
    settings.RM_DAILY_CAPACITY = 1  # one call a day: the order shows in the due dates
    campaign = turbulence_start(product_types=["fund"], actor=ops_user)
    segment = Segment.objects.get(code=campaign.audience["include"][0])
    segment_refresh_run(refresh_id=segment.refreshes.get().pk)
    services.campaign_submit(campaign=campaign, actor=ops_user)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    campaign = launch_now(campaign, ops_user)
    campaign_steps_run(today=a_trading_day())
    calls = list(RMTask.objects.filter(source="campaign").order_by("due_on")
                 .values_list("client__client_no", "detail"))
    assert [no for no, _detail in calls] == ["large", "medium", "small"]
    assert "900,000.00" in calls[0][1]


def test_the_page_writes_the_draft_and_names_a_missing_choice(holders, ops_user, logged_in):
    web = logged_in(ops_user)
    response = web.post("/campaigns/turbulence/", {"product_types": ["fund"]})
    campaign = Campaign.objects.get(scenario="market_turbulence")
    assert response.status_code == 302 and response["Location"].endswith(f"/{campaign.code}/")
    response = web.post("/campaigns/turbulence/", {}, follow=True)
    assert response.status_code == 200
    assert Campaign.objects.filter(scenario="market_turbulence").count() == 1
