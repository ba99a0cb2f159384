"""A real Celery worker sending a campaign's email step, SIGKILLed mid-send: nothing is lost
and at most the one message in flight goes twice (the same engine as newsletters)."""

import os
import signal

import pytest

from campaigns import services
from campaigns.launch import campaign_steps_run
from outreach.models import Contact, ContactStatus, Delivery
from tests.factories import ClientFactory
from tests.newsletters.test_smtp_delivery import (  # noqa: F401 (fixture)
    smtp_sink,
    worker_env,
)
from tests.worker import running_worker, wait_for

from .conftest import a_trading_day, campaign_data, launch_now, static_segment


@pytest.fixture
def big_campaign(transactional_db, rm_a, bond, ops_author, compliance_user):
    clients = [ClientFactory(client_no=f"E{i:05d}", rm=rm_a, branch=rm_a.branch)
               for i in range(120)]
    static_segment("spring_list", clients)
    data = campaign_data(holdout_pct=0, steps=[{
        "channel": "email", "delay_trading_days": 0, "variants": [
            {"code": "A", "share": 100, "subject": "{name}，春季理财",
             "body": "{name}您好，{product_name}（{product_risk_level}）开放申购。"}]}])
    campaign = services.campaign_create(data=data, actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    return launch_now(campaign, ops_author), {c.email for c in clients}


def test_a_worker_killed_mid_campaign_email_loses_nothing_and_repeats_at_most_one(
        big_campaign, smtp_sink):  # noqa: F811
    campaign, addresses = big_campaign
    day = a_trading_day()
    env = worker_env(smtp_sink, NEWSLETTER_RATE_PER_SECOND=20, NEWSLETTER_CHUNK_SIZE=40)
    with running_worker(pool="solo", extra_env=env) as worker:
        queue = worker.args[worker.args.index("-Q") + 1]
        campaign_steps_run(today=day)  # renders the step, queues the outbox, kicks the worker
        wait_for(lambda: smtp_sink.count() >= 30, timeout=60, interval=0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    at_kill = smtp_sink.count()
    assert 30 <= at_kill < len(addresses)
    rows = Delivery.objects.filter(source="campaign", source_id=campaign.pk)
    assert rows.filter(status="sending").exists()

    # The minute beat, once the dead worker's claims are stale: reclaim, settle, kick.
    Delivery.objects.filter(status="sending").update(claimed_at="2000-01-01T00:00:00Z")
    with running_worker(pool="solo", extra_env=env, queue=queue):
        campaign_steps_run(today=day)
        wait_for(lambda: not rows.exclude(status="sent").exists(), timeout=120)

    by_to = smtp_sink.by_recipient()
    assert set(by_to) == addresses
    assert sum(1 for n in by_to.values() if n > 1) <= 1 and max(by_to.values()) <= 2
    campaign_steps_run(today=day)  # settles the ledger from the outbox
    assert set(Contact.objects.filter(source_id=campaign.pk).values_list("status", flat=True)
               ) == {ContactStatus.SENT}
