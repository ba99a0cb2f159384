"""Campaigns end to end on the real database: design, maker-checker, launch with every
exclusion, arms, caps, call steps, outcomes and results."""

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.launch import campaign_launch_run, campaign_steps_run
from campaigns.models import Campaign, CampaignMember, CampaignStatus
from campaigns.selectors import campaign_preview, campaign_results
from core.errors import ApplicationError
from core.models import AuditLog
from outreach.channels.sender import gateway_send_due
from outreach.models import Contact, ContactStatus, OptOut, RMTask
from tests.factories import ClientFactory, ProductFactory, TransactionFactory

from .conftest import a_trading_day, campaign_data, launch_now, static_segment

pytestmark = pytest.mark.django_db


# --- design -------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "field"), [
    ({"audience": {"include": ["nope"], "exclude": []}}, "audience.include"),
    ({"products": ["NOPE"]}, "products"),
    ({"holdout_pct": 60}, "holdout_pct"),
    ({"priority": 0}, "priority"),
    ({"steps": [{"channel": "sms", "delay_trading_days": 0, "variants": [
        {"code": "A", "share": 60, "body": "x"}, {"code": "B", "share": 30, "body": "y"}]}]},
     "steps[0].variants"),
    ({"steps": [{"channel": "sms", "delay_trading_days": 0, "variants": [
        {"code": "A", "share": 100, "body": "{name} {balance}"}]}]},
     "steps[0].variants[0].body"),
    ({"steps": [{"channel": "fax", "delay_trading_days": 0, "variants": [
        {"code": "A", "share": 100, "body": "x"}]}]}, "steps[0].channel"),
])
def test_bad_input_is_a_4xx_naming_the_field_and_nothing_is_written(
        audience, bond, ops_author, logged_in, change, field):
    api = logged_in(ops_author)
    response = api.post("/api/v1/campaigns/", campaign_data(**change),
                        content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Campaign.objects.exclude(author__username="crm-system").exists()  # but seeded


def test_a_campaign_is_created_and_read_back_over_the_api(audience, bond, ops_author, logged_in):
    api = logged_in(ops_author)
    response = api.post("/api/v1/campaigns/", campaign_data(), content_type="application/json")
    assert response.status_code == 201, response.content
    body = api.get("/api/v1/campaigns/spring-bond/").json()
    assert body["status"] == "draft"
    assert body["arms"] == ["control", "A", "B"]
    assert body["steps"][0]["variants"][1]["body"].startswith("{name}")


# --- maker-checker ------------------------------------------------------------------------

def test_the_author_never_approves_and_compliance_does(draft, ops_author, compliance_user,
                                                       logged_in):
    services.campaign_submit(campaign=draft, actor=ops_author)
    with pytest.raises(ApplicationError) as refused:
        services.campaign_approve(campaign=draft, actor=ops_author)
    assert refused.value.status == 403
    response = logged_in(compliance_user).post("/api/v1/campaigns/spring-bond/approve/", {},
                                               content_type="application/json")
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert AuditLog.objects.filter(action="approved", object_id="spring-bond").exists()


def test_forbidden_phrases_block_submission(audience, bond, ops_author):
    data = campaign_data()
    data["steps"][0]["variants"][0]["body"] = "这款产品保本稳赚"
    campaign = services.campaign_create(data=data, actor=ops_author)
    with pytest.raises(ApplicationError) as refused:
        services.campaign_submit(campaign=campaign, actor=ops_author)
    assert "steps[0].variants[0].body" in refused.value.fields
    assert Campaign.objects.get(code="spring-bond").status == CampaignStatus.DRAFT


def test_a_change_after_approval_sends_it_back_to_draft(approved, ops_author):
    services.campaign_update(campaign=approved, data={"holdout_pct": 30}, actor=ops_author)
    approved.refresh_from_db()
    assert approved.status == CampaignStatus.DRAFT
    assert approved.approved_hash == ""
    assert AuditLog.objects.filter(action="approval_revoked", object_id="spring-bond").exists()


def test_a_product_renamed_after_approval_stops_the_launch(approved, ops_author, bond):
    bond.name = "高收益债券"
    bond.save()
    with pytest.raises(ApplicationError) as refused:
        services.campaign_launch(campaign=approved, actor=ops_author)
    assert refused.value.code == "approval_revoked"
    approved.refresh_from_db()
    assert approved.status == CampaignStatus.DRAFT
    assert not CampaignMember.objects.exists()


def test_an_impossible_transition_is_a_409(draft, ops_author, logged_in):
    response = logged_in(ops_author).post("/api/v1/campaigns/spring-bond/launch/", {},
                                          content_type="application/json")
    assert response.status_code == 409


# --- launch -------------------------------------------------------------------------------

def test_launch_records_every_exclusion_reason_before_randomising(
        audience, audience_clients, bond, ops_author, compliance_user, rm_a):
    today = timezone.localdate()
    odd = {
        "closed": ClientFactory(status="closed", rm=rm_a, consent_phone=True),
        "no_consent": ClientFactory(consent_phone=False, rm=rm_a),
        "unsubscribed": ClientFactory(consent_phone=True, rm=rm_a),
        "no_contact": ClientFactory(consent_phone=True, rm=rm_a, phone=""),
        "risk_expired": ClientFactory(consent_phone=True, rm=rm_a,
                                      risk_expires_on=today - dt.timedelta(days=1)),
        "unsuitable": ClientFactory(consent_phone=True, rm=rm_a, risk_level="C1"),
    }
    OptOut.objects.create(client=odd["unsubscribed"], channel="phone")
    static_segment("odd_ones", odd.values())
    data = campaign_data(audience={"include": ["spring_list", "odd_ones"], "exclude": []})
    campaign = services.campaign_create(data=data, actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    preview = campaign_preview(campaign=campaign)
    launch_now(campaign, ops_author)

    members = {m.client_id: m for m in CampaignMember.objects.filter(campaign=campaign)}
    assert len(members) == 46  # one row per audience client
    for reason, client in odd.items():
        assert members[client.pk].exclusion_reason == reason
        assert members[client.pk].arm == ""
    eligible = [m for m in members.values() if not m.exclusion_reason]
    assert len(eligible) == 40 == preview["eligible"]
    assert preview["excluded"] == {reason: 1 for reason in odd}
    assert Counter(m.arm for m in eligible) == {"control": 8, "A": 16, "B": 16}
    assert all(m.product_code == "BOND01" for m in eligible)
    # step 0's contacts are reserved for the treated arms only
    reserved = Contact.objects.filter(source="campaign", source_id=campaign.pk)
    assert reserved.count() == 32
    assert set(reserved.values_list("status", flat=True)) == {ContactStatus.PLANNED}


def test_assignment_is_deterministic_and_balanced_within_each_tier(
        audience, bond, ops_author, compliance_user, rm_a):
    clients = [ClientFactory(rm=rm_a, consent_phone=True) for _ in range(200)]
    static_segment("big_list", clients)
    campaign = services.campaign_create(
        data=campaign_data(code="det", audience={"include": ["big_list"], "exclude": []}),
        actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    launch_now(campaign, ops_author)
    first = dict(CampaignMember.objects.filter(campaign=campaign).values_list("client_id", "arm"))
    assert Counter(first.values()) == {"control": 40, "A": 80, "B": 80}

    # The same campaign and clients give the same arms when the list is frozen again.
    from campaigns.targeting import members_freeze
    from outreach.selectors import contact_policy_get

    def frozen_again():
        CampaignMember.objects.filter(campaign=campaign).delete()
        members_freeze(campaign=campaign, day=campaign.launch_day, policy=contact_policy_get(),
                       now=timezone.now())
        return dict(CampaignMember.objects.filter(campaign=campaign)
                    .values_list("client_id", "arm"))

    again = frozen_again()
    assert again == first
    # A different campaign code shuffles differently.
    campaign.code = "det-2"
    other = frozen_again()
    assert other != first
    assert Counter(other.values()) == Counter(first.values())


def test_launching_twice_never_makes_two_rows_for_a_client(launched, ops_author):
    count = CampaignMember.objects.filter(campaign=launched).count()
    with pytest.raises(ApplicationError) as refused:
        services.campaign_launch(campaign=launched, actor=ops_author)
    assert refused.value.status == 409
    campaign_launch_run(launch_id=launched.launch.pk)  # a redelivered message
    assert CampaignMember.objects.filter(campaign=launched).count() == count == 40
    assert Contact.objects.filter(source_id=launched.pk).count() == 32


def test_the_caps_hold_and_the_higher_priority_campaign_takes_the_client(
        audience, bond, ops_author, compliance_user):
    def launched_with(code, priority):
        campaign = services.campaign_create(data=campaign_data(code=code, priority=priority,
                                                               holdout_pct=0),
                                            actor=ops_author)
        services.campaign_submit(campaign=campaign, actor=ops_author)
        services.campaign_approve(campaign=campaign, actor=compliance_user)
        return launch_now(campaign, ops_author)

    first = launched_with("first-high", 1)
    second = launched_with("second-low", 5)
    assert CampaignMember.objects.filter(campaign=first, exclusion_reason="").count() == 40
    reasons = Counter(CampaignMember.objects.filter(campaign=second)
                      .values_list("exclusion_reason", flat=True))
    # 1 RM call a fortnight: the higher-priority campaign took every client.
    assert reasons == {"higher_priority": 40}
    third = launched_with("third-top", 1)
    assert Counter(CampaignMember.objects.filter(campaign=third)
                   .values_list("exclusion_reason", flat=True)) == {"capped": 40}
    per_client = Counter(Contact.objects.values_list("client_id", flat=True))
    assert max(per_client.values()) == 1


def test_cancelling_releases_the_planned_contacts(launched, ops_author):
    services.campaign_cancel(campaign=launched, actor=ops_author)
    statuses = set(Contact.objects.filter(source_id=launched.pk)
                   .values_list("status", flat=True))
    assert statuses == {ContactStatus.CANCELLED}


# --- steps, call lists, outcomes ----------------------------------------------------------

def test_a_phone_step_puts_scripted_calls_on_the_rms_list(launched, rm_a, rm_b, logged_in):
    day = a_trading_day()
    campaign_steps_run(today=day)
    tasks = RMTask.objects.filter(source="campaign")
    assert tasks.count() == 32
    assert set(tasks.values_list("assignee_id", flat=True)) == {rm_a.pk}
    member = CampaignMember.objects.filter(campaign=launched, arm="B").select_related(
        "client").first()
    task = tasks.get(client=member.client)
    assert task.detail == f"{member.client.name}您好，稳健债券1号（R2）适合您。"
    assert set(Contact.objects.filter(source_id=launched.pk)
               .values_list("status", flat=True)) == {ContactStatus.QUEUED}
    # RM B never sees RM A's call list
    assert logged_in(rm_b).get("/api/v1/tasks/").json()["results"] == []


def test_the_call_centre_posts_outcomes_atomically_with_per_row_errors(launched, ops_user,
                                                                      logged_in):
    campaign_steps_run(today=a_trading_day())
    treated = list(CampaignMember.objects.filter(campaign=launched).exclude(arm="control")
                   .select_related("client")[:2])
    api = logged_in(ops_user)
    bad = [{"client_no": treated[0].client.client_no, "step": 0, "outcome": "bought"},
           {"client_no": "NOBODY", "step": 0, "outcome": "reached"},
           {"client_no": treated[1].client.client_no, "step": 3, "outcome": "maybe"}]
    response = api.post("/api/v1/campaigns/spring-bond/outcomes/", bad,
                        content_type="application/json")
    assert response.status_code == 400
    fields = {(e["index"], e["field"]) for e in response.json()["errors"]}
    assert {(1, "client_no"), (2, "step"), (2, "outcome")} <= fields
    assert not RMTask.objects.exclude(outcome="").exists()  # nothing half-written

    good = [{"client_no": treated[0].client.client_no, "step": 0, "outcome": "interested",
             "note": "回电下周"},
            {"client_no": treated[1].client.client_no, "step": 0, "outcome": "do_not_call"}]
    response = api.post("/api/v1/campaigns/spring-bond/outcomes/", good,
                        content_type="application/json")
    assert response.status_code == 200, response.content
    contacts = dict(Contact.objects.filter(source_id=launched.pk,
                                           client__in=[m.client for m in treated])
                    .values_list("client_id", "status"))
    assert set(contacts.values()) == {ContactStatus.RESPONDED}
    treated[1].client.refresh_from_db()
    assert treated[1].client.consent_phone is False


# --- results ------------------------------------------------------------------------------

def test_results_count_conversions_per_arm_within_the_window(launched, bond):
    campaign_steps_run(today=a_trading_day())
    Contact.objects.filter(source_id=launched.pk).update(status=ContactStatus.DELIVERED,
                                                         at=timezone.now())
    members = list(CampaignMember.objects.filter(campaign=launched).select_related("client"))
    by_arm = {}
    for m in members:
        by_arm.setdefault(m.arm, []).append(m.client)
    later = timezone.now() + dt.timedelta(minutes=5)
    for client in by_arm["A"][:6]:
        TransactionFactory(client=client, product=bond, traded_at=later,
                           revenue=Decimal("50.00"))
    TransactionFactory(client=by_arm["control"][0], product=bond, traded_at=later)
    other = ProductFactory(product_code="OTHER", risk_level="R1")
    TransactionFactory(client=by_arm["B"][0], product=other, traded_at=later)  # not offered
    TransactionFactory(client=by_arm["B"][1], product=bond,
                       traded_at=timezone.now() + dt.timedelta(days=40))  # after the window

    results = campaign_results(campaign=launched)
    arms = {a["arm"]: a for a in results["arms"]}
    assert arms["A"]["members"] == 16 and arms["A"]["converted"] == 6
    assert arms["A"]["revenue"] == 300.0
    assert arms["A"]["delivered"] == 16
    assert arms["control"]["converted"] == 1 and arms["control"]["contacted"] == 0
    assert arms["B"]["converted"] == 0
    uplift = {u["variant"]: u for u in results["uplift"]}
    assert uplift["A"]["absolute"] == pytest.approx(6 / 16 - 1 / 8, abs=1e-6)
    assert uplift["A"]["ci_low"] < uplift["A"]["absolute"] < uplift["A"]["ci_high"]
    assert 0 < uplift["A"]["p_value"] <= 1
    assert results["srm"]["flagged"] is False


def test_a_campaign_launched_before_its_start_waits_for_the_beat(audience, bond, ops_author,
                                                                 compliance_user):
    later = timezone.now() + dt.timedelta(hours=2)
    campaign = services.campaign_create(data=campaign_data(starts_at=later.isoformat()),
                                        actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    launch_now(campaign, ops_author)
    assert campaign.status == CampaignStatus.SCHEDULED
    assert not CampaignMember.objects.filter(campaign=campaign).exists()
    Campaign.objects.filter(pk=campaign.pk).update(starts_at=timezone.now())
    campaign_steps_run()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert CampaignMember.objects.filter(campaign=campaign).count() == 40


def test_an_sms_step_goes_out_through_the_gateway_with_the_clients_own_script(
        audience, bond, ops_author, compliance_user, settings, tmp_path):
    settings.SMS_GATEWAY_URL = ""
    settings.SMS_OUTBOX_DIR = tmp_path
    data = campaign_data(holdout_pct=0, steps=[{"channel": "sms", "delay_trading_days": 0,
                                                "variants": [{"code": "A", "share": 100,
                                                              "body": "{name}您好，{product_name}"
                                                                      "开放申购。回TD退订"}]}])
    campaign = services.campaign_create(data=data, actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    launch_now(campaign, ops_author)
    day = a_trading_day()
    campaign_steps_run(today=day)
    noon = timezone.make_aware(dt.datetime.combine(day, dt.time(12, 0)))
    result = gateway_send_due(now=noon)
    assert result["sent"] == 40
    contact = Contact.objects.filter(source_id=campaign.pk).select_related("client").first()
    assert contact.status == ContactStatus.SENT
    assert contact.body == f"{contact.client.name}您好，稳健债券1号开放申购。回TD退订"
    assert len(list(tmp_path.glob("sms-*.json"))) == 40


