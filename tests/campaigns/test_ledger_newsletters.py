"""Newsletters go through the same contact ledger: a sent edition counts against the caps a
campaign launched afterwards is held to."""

from collections import Counter

import pytest

from campaigns import services
from campaigns.models import CampaignMember
from newsletters import dispatch
from outreach.models import Contact, ContactStatus
from outreach.services import contact_policy_set
from segments.models import SegmentMembership
from tests.factories import ProductFactory, staff
from tests.newsletters.test_dispatch import make_audience, make_edition

from .conftest import campaign_data, launch_now

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_edition(rm_a, settings, django_capture_on_commit_callbacks):
    settings.NEWSLETTER_RATE_PER_SECOND = 0
    settings.NEWSLETTER_RATE_PER_HOUR = 0
    segment, clients, marked = make_audience(size=12, rm=rm_a, excluded={"no_consent": 2},
                                             code="spring_list")
    edition = make_edition(segment=segment, author=staff("ops", username="editor"))
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.edition_dispatch_start(edition=edition, actor=None)
    return edition, clients, marked


def test_a_sent_edition_is_in_the_ledger_for_its_recipients_only(sent_edition):
    edition, clients, marked = sent_edition
    contacts = Contact.objects.filter(source="newsletter", source_id=edition.pk)
    assert contacts.count() == 10
    assert set(contacts.values_list("status", flat=True)) == {ContactStatus.SENT}
    assert not contacts.filter(client__in=marked["no_consent"]).exists()
    assert set(contacts.values_list("channel", flat=True)) == {"email"}


def test_a_campaign_after_the_newsletter_is_held_to_the_cap_the_newsletter_used(
        sent_edition, ops_author, compliance_user):
    edition, clients, marked = sent_edition
    ProductFactory(product_code="BOND01", name="稳健债券1号", risk_level="R2")
    contact_policy_set(data={"caps": [{"channel": "all", "max_contacts": 1, "window_days": 7}],
                             "quiet_hours": {"start": "21:00", "end": "08:30",
                                             "channels": ["sms"]}})
    data = campaign_data(holdout_pct=0, steps=[{"channel": "email", "delay_trading_days": 0,
                                                "variants": [{"code": "A", "share": 100,
                                                              "subject": "秋季配置",
                                                              "body": "{name}您好"}]}])
    campaign = services.campaign_create(data=data, actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    launch_now(campaign, ops_author)
    reasons = Counter(CampaignMember.objects.filter(campaign=campaign)
                      .values_list("exclusion_reason", flat=True))
    # 10 read the newsletter this week: capped; 2 had no email consent to begin with.
    assert reasons == {"capped": 10, "no_consent": 2}
    assert SegmentMembership.objects.filter(segment__code="spring_list").count() == 12
