"""Campaign email steps through the one email dispatcher (outreach.email), to a real SMTP
server: what arrives, the ledger afterwards, the unsubscribe link, pause and cancel."""

import re

import pytest

from campaigns import services
from campaigns.launch import campaign_steps_run
from campaigns.models import CampaignMember
from core.models import AuditLog
from outreach.email.run import outbox_run
from outreach.models import Contact, ContactStatus, Delivery, OptOut
from tests.newsletters.test_smtp_delivery import smtp_settings, smtp_sink  # noqa: F401

from .conftest import a_trading_day, campaign_data, launch_now

pytestmark = pytest.mark.django_db

BODY = "{name}您好，{product_name}（{product_risk_level}）本周开放申购，详询{rm_name}。"


def email_campaign(ops_author, compliance_user, *, steps=None, holdout_pct=20):
    steps = steps or [{"channel": "email", "delay_trading_days": 0, "variants": [
        {"code": "A", "share": 50, "subject": "{name}，春季理财", "body": BODY},
        {"code": "B", "share": 50, "subject": "稳健之选", "body": "{name}您好，{product_name}。"}]}]
    campaign = services.campaign_create(
        data=campaign_data(holdout_pct=holdout_pct, steps=steps), actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    return launch_now(campaign, ops_author)


def test_an_email_step_goes_out_through_the_outbox_with_each_clients_own_text(
        audience, bond, ops_author, compliance_user, smtp_settings, smtp_sink,  # noqa: F811
        django_capture_on_commit_callbacks):
    campaign = email_campaign(ops_author, compliance_user)
    treated = {m.client.email: m for m in CampaignMember.objects.filter(
        campaign=campaign, exclusion_reason="").exclude(arm="control").select_related("client")}
    assert 0 < len(treated) < 40  # the holdout gets nothing

    with django_capture_on_commit_callbacks(execute=True):
        campaign_steps_run(today=a_trading_day())

    assert smtp_sink.by_recipient() == {address: 1 for address in treated}
    for rcpts, message in smtp_sink.messages:
        member = treated[rcpts[0]]
        name = member.client.name
        text = message.get_body(("plain",)).get_content()
        if member.arm == "A":
            assert message["Subject"] == f"{name}，春季理财"
            assert text.startswith(f"{name}您好，稳健债券1号（R2）本周开放申购")
        else:
            assert message["Subject"] == "稳健之选"
            assert text.startswith(f"{name}您好，稳健债券1号。")
        assert re.fullmatch(r"<https?://[^>]+/o/u/[^>]+/>", message["List-Unsubscribe"].strip())
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    rows = Delivery.objects.filter(source="campaign", source_id=campaign.pk)
    assert set(rows.values_list("status", flat=True)) == {"sent"}
    assert rows.count() == len(treated)
    # the minute beat settles the ledger from the outbox: what exactly each client was sent
    campaign_steps_run(today=a_trading_day())
    contacts = Contact.objects.filter(source_id=campaign.pk).select_related("client")
    assert {c.status for c in contacts} == {ContactStatus.SENT}
    sample = next(c for c in contacts if c.variant == "A")
    assert sample.body.startswith(f"{sample.client.name}您好，稳健债券1号（R2）")
    assert sample.at is not None
    results = services_results(campaign)
    assert sum(arm["contacted"] for arm in results["arms"]) == len(treated)


def services_results(campaign):
    from campaigns.selectors import campaign_results

    return campaign_results(campaign=campaign)


def test_the_unsubscribe_link_opts_the_client_out_of_every_campaigns_email(
        audience, bond, ops_author, compliance_user, smtp_settings, smtp_sink,  # noqa: F811
        client, django_capture_on_commit_callbacks):
    campaign = email_campaign(ops_author, compliance_user, holdout_pct=0, steps=[
        {"channel": "email", "delay_trading_days": 0, "variants": [
            {"code": "A", "share": 100, "subject": "问候", "body": BODY}]},
        {"channel": "email", "delay_trading_days": 1, "variants": [
            {"code": "A", "share": 100, "subject": "再次问候", "body": BODY}]}])
    day = a_trading_day()
    with django_capture_on_commit_callbacks(execute=True):
        campaign_steps_run(today=day)
    _rcpts, message = smtp_sink.messages[0]
    link = message["List-Unsubscribe"].strip().strip("<>")
    path = "/" + link.split("/", 3)[3]
    leaving = Delivery.objects.get(source="campaign", to_email=_rcpts[0]).client

    assert client.get(path).status_code == 200  # a GET changes nothing (mail scanners)
    assert not OptOut.objects.exists()
    assert client.get(path.replace("/o/u/", "/o/u/x")).status_code == 404
    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert OptOut.objects.filter(client=leaving, channel="email").exists()
    assert AuditLog.objects.filter(action="consent_changed", object_id=leaving.client_no).exists()

    from outreach.calendar import trading_day_after

    with django_capture_on_commit_callbacks(execute=True):
        campaign_steps_run(today=trading_day_after(day, 1))
    second = [rcpts[0] for rcpts, m in smtp_sink.messages if m["Subject"] == "再次问候"]
    assert len(second) == 39 and leaving.email not in second
    skipped = Contact.objects.get(source_id=campaign.pk, step=1, client=leaving)
    assert (skipped.status, skipped.error) == (ContactStatus.SKIPPED, "opted out")


def test_a_paused_campaign_sends_nothing_until_resumed_and_a_cancel_empties_the_outbox(
        audience, bond, ops_author, compliance_user, smtp_settings, smtp_sink,  # noqa: F811
        django_capture_on_commit_callbacks):
    campaign = email_campaign(ops_author, compliance_user, holdout_pct=0)
    services.campaign_pause(campaign=campaign, actor=ops_author)
    campaign_steps_run(today=a_trading_day())  # nothing runs while paused
    assert not Delivery.objects.exists()
    services.campaign_resume(campaign=campaign, actor=ops_author)
    campaign_steps_run(today=a_trading_day())  # queued (the kick after commit is not run)
    assert Delivery.objects.filter(status="pending").count() == 40
    services.campaign_pause(campaign=campaign, actor=ops_author)
    assert outbox_run(source="campaign", source_id=campaign.pk) == "paused"
    assert smtp_sink.count() == 0

    services.campaign_cancel(campaign=campaign, actor=ops_author)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"cancelled"}
    assert set(Contact.objects.filter(source_id=campaign.pk).values_list("status", flat=True)
               ) == {ContactStatus.CANCELLED}
    assert outbox_run(source="campaign", source_id=campaign.pk) == "cancelled"
    assert smtp_sink.count() == 0
