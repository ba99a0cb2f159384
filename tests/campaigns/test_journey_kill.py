"""A Celery worker SIGKILLed in the middle of a journey's day leaves nothing half-done, and the
next beat does the day once: every newcomer entered, one contact each, nothing twice."""

import os
import signal

import pytest
from django.db import connection
from django.db.models import Count

from campaigns import services
from campaigns.launch import campaign_steps_run
from campaigns.models import Campaign, CampaignMember
from campaigns.tasks import campaign_steps_task
from outreach.models import Contact
from segments.models import Segment, SegmentMembership
from tests.factories import ClientFactory, ProductFactory
from tests.worker import _unavailable, running_worker, wait_for

from .conftest import a_trading_day, campaign_data, launch_now, static_segment
from .test_campaign_reliability import _raw_connection


@pytest.fixture
def running_journey(transactional_db, rm_a, ops_user, compliance_user, settings):
    settings.JOURNEY_HOUR = 0
    ProductFactory(product_code="BOND01", name="稳健债券1号", risk_level="R2")
    static_segment("spring_list", [])
    campaign = services.campaign_create(data=campaign_data(
        code="kill-journey", always_on=True), actor=ops_user)
    services.campaign_submit(campaign=campaign, actor=ops_user)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    campaign = launch_now(campaign, ops_user)
    clients = ClientFactory.create_batch(300, rm=rm_a, branch=rm_a.branch, consent_phone=True)
    segment = Segment.objects.get(code="spring_list")
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, client=c) for c in clients])
    return campaign


def test_a_worker_killed_mid_journey_day_leaves_nothing_and_the_day_then_runs_once(
        running_journey):
    if connection.vendor != "postgresql":
        _unavailable("a worker process needs a database it can share (PostgreSQL)")
    day = a_trading_day()
    blocker = _raw_connection()
    blocker.autocommit = False
    with blocker.cursor() as cursor:
        # The worker enters the newcomers, then waits here to reserve their contacts.
        cursor.execute("LOCK TABLE outreach_contact IN EXCLUSIVE MODE")
    try:
        with running_worker(pool="solo", extra_env={"JOURNEY_HOUR": "0"}) as worker:
            campaign_steps_task.delay(day.isoformat())

            def waiting_on_the_ledger():
                with blocker.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND "
                                   "relation = 'outreach_contact'::regclass")
                    return cursor.fetchone()[0] > 0

            wait_for(waiting_on_the_ledger, timeout=60, interval=0.1)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
    campaign = Campaign.objects.get(code="kill-journey")
    assert not CampaignMember.objects.filter(campaign=campaign).exists()
    assert campaign.journey_day is None  # the day is still to do

    campaign_steps_run(today=day)
    campaign_steps_run(today=day)  # the next minute: nothing more
    members = CampaignMember.objects.filter(campaign=campaign)
    assert members.count() == 300
    treated = members.filter(exclusion_reason="").exclude(arm="control").count()
    per_client = (Contact.objects.filter(source_id=campaign.pk).values("client_id")
                  .annotate(n=Count("id")))
    assert per_client.count() == treated and {row["n"] for row in per_client} == {1}
