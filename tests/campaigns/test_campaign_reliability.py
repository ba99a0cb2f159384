"""Reliability on the real services: a Celery worker SIGKILLed in the middle of a launch leaves
nothing half-written and the launch then completes with one row per client; two launches at the
same moment never push a client over a cap."""

import os
import signal
import threading

import psycopg2
import pytest
from django.db import connection, connections
from django.db.models import Count

from campaigns import services
from campaigns.launch import campaign_launch_run, campaign_steps_run
from campaigns.models import Campaign, CampaignLaunch, CampaignMember
from outreach.models import COUNTED_STATUSES, Contact
from tests.factories import ClientFactory, ProductFactory
from tests.worker import _unavailable, running_worker, wait_for

from .conftest import campaign_data, static_segment


@pytest.fixture
def big_audience(transactional_db, rm_a):
    ProductFactory(product_code="BOND01", name="稳健债券1号", risk_level="R2")
    clients = ClientFactory.create_batch(300, rm=rm_a, branch=rm_a.branch, consent_phone=True)
    static_segment("spring_list", clients)
    return clients


def approved_campaign(code, ops, compliance, **overrides) -> Campaign:
    campaign = services.campaign_create(data=campaign_data(code=code, **overrides), actor=ops)
    services.campaign_submit(campaign=campaign, actor=ops)
    return services.campaign_approve(campaign=campaign, actor=compliance)


def _raw_connection():
    db = connection.settings_dict
    return psycopg2.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"],
                            host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432)


def test_a_worker_killed_mid_launch_leaves_nothing_and_the_launch_then_completes_once(
        big_audience, ops_user, compliance_user):
    if connection.vendor != "postgresql":
        _unavailable("a worker process needs a database it can share (PostgreSQL)")
    campaign = approved_campaign("kill-me", ops_user, compliance_user)
    blocker = _raw_connection()
    blocker.autocommit = False
    with blocker.cursor() as cursor:
        # The worker freezes the list and assigns arms, then waits here to reserve contacts.
        cursor.execute("LOCK TABLE outreach_contact IN EXCLUSIVE MODE")
    try:
        with running_worker(pool="solo") as worker:
            services.campaign_launch(campaign=campaign, actor=ops_user)

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
    # The killed transaction left nothing: no member, no contact, the job not finished.
    assert not CampaignMember.objects.filter(campaign=campaign).exists()
    assert not Contact.objects.filter(source_id=campaign.pk).exists()
    assert CampaignLaunch.objects.get(campaign=campaign).status != "succeeded"

    # The minute beat finds the launch still queued and runs it; a second run adds nothing.
    campaign_steps_run()
    campaign_launch_run(launch_id=campaign.launch.pk)
    per_client = CampaignMember.objects.filter(campaign=campaign).values("client_id").annotate(
        n=Count("id"))
    assert per_client.count() == 300
    assert max(row["n"] for row in per_client) == 1
    assert Campaign.objects.get(pk=campaign.pk).status == "running"
    assert Contact.objects.filter(source_id=campaign.pk).count() == \
        CampaignMember.objects.filter(campaign=campaign).exclude(arm="control").count()


def test_two_launches_at_the_same_moment_never_exceed_a_cap(big_audience, ops_user,
                                                            compliance_user):
    first = approved_campaign("race-a", ops_user, compliance_user, holdout_pct=0)
    second = approved_campaign("race-b", ops_user, compliance_user, holdout_pct=0)
    launches = [services.campaign_launch(campaign=c, actor=ops_user) for c in (first, second)]
    start = threading.Barrier(2)
    errors = []

    def run(launch_id):
        try:
            start.wait()
            campaign_launch_run(launch_id=launch_id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(launch.pk,)) for launch in launches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    # 1 RM call a fortnight (the default policy): every client has at most one.
    counted = (Contact.objects.filter(status__in=COUNTED_STATUSES, channel="phone")
               .values("client_id").annotate(n=Count("id")))
    assert counted.count() == 300
    assert max(row["n"] for row in counted) == 1
    # Whoever launched second recorded every client as capped, none silently dropped.
    reasons = {c.code: set(CampaignMember.objects.filter(campaign=c)
                           .values_list("exclusion_reason", flat=True))
               for c in (first, second)}
    assert sorted(map(sorted, reasons.values())) == [[""], ["capped"]]
