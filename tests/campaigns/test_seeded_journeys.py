"""The shipped journeys: drafts by the system account that pass the same validation as any
campaign, that compliance approves like any other, and that enter the clients of their
scenario once launched."""

import datetime as dt

from django.utils import timezone

from campaigns import services
from campaigns.journeys import journey_advance
from campaigns.models import Campaign, CampaignMember
from campaigns.seeded import JOURNEYS
from campaigns.validation import campaign_validate
from segments.models import SegmentKind
from segments.services import segment_refresh_run, segments_refresh_all
from tests.campaigns.conftest import launch_now
from tests.factories import ClientFactory


def test_the_journeys_ship_as_valid_drafts_by_the_system_account(db):
    for journey in JOURNEYS:
        campaign = Campaign.objects.get(code=journey["code"])
        assert campaign.status == "draft" and campaign.author.username == "crm-system"
        assert not campaign.author.has_usable_password() and not campaign.author.is_active
        assert campaign_validate(journey, instance=campaign)["steps"] == campaign.steps
    onboarding = Campaign.objects.get(code="journey-onboarding")
    delays = [s["delay_trading_days"] for s in onboarding.steps]
    assert [sum(delays[:i + 1]) for i in range(len(delays))] == [0, 3, 7, 30]


def test_the_onboarding_journey_enters_new_clients_once_approved(ops_user, compliance_user,
                                                                 rm_a, settings):
    settings.JOURNEY_HOUR = 0
    today = timezone.localdate()
    new = [ClientFactory(rm=rm_a, branch=rm_a.branch, opened_on=today - dt.timedelta(days=2),
                         consent_sms=True, status="active") for _ in range(6)]
    ClientFactory(rm=rm_a, opened_on=today - dt.timedelta(days=200), consent_sms=True)
    for refresh in segments_refresh_all(kinds=[SegmentKind.SCENARIO], queue=False):
        segment_refresh_run(refresh_id=refresh.pk)
    campaign = Campaign.objects.get(code="journey-onboarding")
    services.campaign_submit(campaign=campaign, actor=ops_user)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    campaign = launch_now(campaign, ops_user)
    assert campaign.status == "running"
    journey_advance(campaign=campaign, today=campaign.launch_day)
    assert set(CampaignMember.objects.filter(campaign=campaign)
               .values_list("client_id", flat=True)) == {c.pk for c in new}
