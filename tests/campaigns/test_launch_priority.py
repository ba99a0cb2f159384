"""The higher priority wins (shared/DOMAIN.md "Contact policy"): a campaign launched after a
lower-priority one takes back the contacts the lower one only reserved for the clients the caps
would otherwise cost it -- never what went out, what a sender or an RM has in hand, a service
message or a newsletter, and never from a campaign of the same priority."""

from collections import Counter

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.launch import campaign_steps_run
from campaigns.models import Campaign, CampaignEvent, CampaignMember
from campaigns.selectors import campaign_preview
from outreach.models import COUNTED_STATUSES, Contact, ContactStatus, RMTask
from outreach.selectors import DEFAULT_POLICY
from outreach.services import contact_policy_set

from .conftest import a_trading_day, campaign_data, launch_now, static_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign_of(audience, bond, ops_author, compliance_user):
    """`campaign_of(code, priority=…, …)` -> an approved campaign over the 40-client list
    (a phone step, variants A/B; no holdout unless asked)."""

    def _approved(code: str, **overrides) -> Campaign:
        data = campaign_data(code=code, **{"holdout_pct": 0, **overrides})
        campaign = services.campaign_create(data=data, actor=ops_author)
        services.campaign_submit(campaign=campaign, actor=ops_author)
        return services.campaign_approve(campaign=campaign, actor=compliance_user)

    return _approved


@pytest.fixture
def launched_by(ops_author):
    return lambda campaign: launch_now(campaign, ops_author)


def members(campaign) -> dict[int, CampaignMember]:
    return {m.client_id: m for m in CampaignMember.objects.filter(campaign=campaign)}


def contacts(campaign) -> dict[int, Contact]:
    return {c.client_id: c for c in Contact.objects.filter(source="campaign",
                                                           source_id=campaign.pk)}


def reasons(campaign) -> Counter:
    return Counter(m.exclusion_reason for m in members(campaign).values())


def sms_step() -> list[dict]:
    return [{"channel": "sms", "delay_trading_days": 0, "variants": [
        {"code": "A", "share": 100, "body": "{name}您好，{product_name}开放申购。回TD退订"}]}]


def email_step() -> list[dict]:
    return [{"channel": "email", "delay_trading_days": 0, "variants": [
        {"code": "A", "share": 100, "subject": "年末配置", "body": "{name}您好。"}]}]


def push_step() -> list[dict]:
    return [{"channel": "app_push", "delay_trading_days": 0, "variants": [
        {"code": "A", "share": 100, "subject": "年末配置", "body": "{name}您好。"}]}]


def half(code: str) -> dict:
    return {"include": [code], "exclude": []}


def one_contact_a_week(actor) -> None:
    contact_policy_set(data={"caps": [{"channel": "all", "max_contacts": 1, "window_days": 7}],
                             "quiet_hours": DEFAULT_POLICY["quiet_hours"]}, actor=actor)


def test_a_higher_priority_launch_takes_back_the_lower_ones_planned_calls(
        campaign_of, launched_by):
    low = launched_by(campaign_of("low", priority=7))
    assert reasons(low) == {"": 40}
    high = campaign_of("high", priority=3, holdout_pct=20)

    # The preview already counts them eligible: the caps are full only with what low reserved.
    assert campaign_preview(campaign=high)["eligible"] == 40
    launched_by(high)

    high_members = members(high)
    assert reasons(high) == {"": 40}
    assert Counter(m.arm for m in high_members.values()) == {"control": 8, "A": 16, "B": 16}
    treated = {c for c, m in high_members.items() if m.arm != "control"}
    holdout = set(high_members) - treated
    low_contacts, low_members = contacts(low), members(low)
    for client in treated:
        assert low_contacts[client].status == ContactStatus.CANCELLED
        assert low_contacts[client].error == "higher priority: high"
        assert low_members[client].exclusion_reason == "higher_priority"
        assert low_members[client].arm in ("A", "B")  # what it had been drawn for stays
    # The holdout gets no contact from high, so low keeps its calls to them.
    for client in holdout:
        assert low_contacts[client].status == ContactStatus.PLANNED
        assert low_members[client].exclusion_reason == ""
    # One RM call a fortnight still holds for every client.
    counted = Counter(Contact.objects.filter(status__in=COUNTED_STATUSES, channel="phone")
                      .values_list("client_id", flat=True))
    assert set(counted.values()) == {1}
    event = CampaignEvent.objects.get(campaign=low, action="taken_back")
    assert event.detail == {"by": "high", "priority": 3, "contacts": 32, "members": 32,
                            "calls": 32}
    high.launch.refresh_from_db()
    assert high.launch.counts["taken_back"] == {"contacts": 32, "calls_cancelled": 0,
                                                "campaigns": {"low": 32}}
    # Low's next steps leave out the members it lost.
    assert low_members[next(iter(treated))].exclusion_reason == "higher_priority"


def test_sent_claimed_or_tried_contacts_are_never_taken(campaign_of, launched_by):
    low = launched_by(campaign_of("low", priority=7))
    clients = sorted(contacts(low))
    sent, claimed, tried = clients[:5], clients[5:10], clients[10:15]
    now = timezone.now()
    Contact.objects.filter(source_id=low.pk, client_id__in=sent).update(
        status=ContactStatus.SENT, at=now)
    Contact.objects.filter(source_id=low.pk, client_id__in=claimed).update(
        status=ContactStatus.QUEUED, claimed_at=now)
    Contact.objects.filter(source_id=low.pk, client_id__in=tried).update(
        status=ContactStatus.QUEUED, attempts=1, next_attempt_at=now)

    high = launched_by(campaign_of("high", priority=3))

    kept = {*sent, *claimed, *tried}
    high_members, low_contacts = members(high), contacts(low)
    assert {c for c, m in high_members.items() if m.exclusion_reason == "capped"} == kept
    assert all(high_members[c].arm == "" for c in kept)
    assert {low_contacts[c].status for c in sent} == {ContactStatus.SENT}
    assert {low_contacts[c].status for c in [*claimed, *tried]} == {ContactStatus.QUEUED}
    assert {low_contacts[c].status for c in set(clients) - kept} == {ContactStatus.CANCELLED}
    assert {m.exclusion_reason for c, m in members(low).items() if c in kept} == {""}
    assert len(contacts(high)) == 25


def test_an_open_call_goes_with_its_contact_and_a_closed_one_stays(campaign_of, launched_by):
    low = launched_by(campaign_of("low", priority=7))
    campaign_steps_run(today=a_trading_day())  # low's calls go on the RM's list
    tasks = {t.client_id: t for t in RMTask.objects.filter(source="campaign")}
    assert len(tasks) == 40
    clients = sorted(tasks)
    done, dropped = clients[:5], clients[5:10]
    RMTask.objects.filter(client_id__in=done).update(status="done", done_at=timezone.now())
    RMTask.objects.filter(client_id__in=dropped).update(status="cancelled")

    high = launched_by(campaign_of("high", priority=3))

    closed = {*done, *dropped}
    assert {c for c, m in members(high).items() if m.exclusion_reason} == closed
    assert reasons(high) == {"": 30, "capped": 10}
    low_contacts = contacts(low)
    status = {t.client_id: t.status for t in RMTask.objects.filter(source="campaign")}
    for client in clients:
        if client in closed:
            assert low_contacts[client].status == ContactStatus.QUEUED
            assert status[client] == ("done" if client in done else "cancelled")
        else:
            assert low_contacts[client].status == ContactStatus.CANCELLED
            assert status[client] == "cancelled"
    high.launch.refresh_from_db()
    assert high.launch.counts["taken_back"]["calls_cancelled"] == 30


def test_a_campaign_of_the_same_priority_takes_nothing(campaign_of, launched_by,
                                                       audience_clients):
    static_segment("first_half", audience_clients[:20])
    static_segment("second_half", audience_clients[20:])
    peer = launched_by(campaign_of("peer", priority=5, audience=half("first_half")))
    lower = launched_by(campaign_of("lower", priority=7, audience=half("second_half")))

    mine = launched_by(campaign_of("mine", priority=5))

    first = {c.pk for c in audience_clients[:20]}
    assert {c for c, m in members(mine).items() if m.exclusion_reason == "capped"} == first
    assert reasons(mine) == {"capped": 20, "": 20}
    assert reasons(peer) == {"": 20}
    assert {c.status for c in contacts(peer).values()} == {ContactStatus.PLANNED}
    assert reasons(lower) == {"higher_priority": 20}
    assert {c.status for c in contacts(lower).values()} == {ContactStatus.CANCELLED}
    assert list(CampaignEvent.objects.filter(action="taken_back")
                .values_list("campaign__code", flat=True)) == ["lower"]


def test_newsletters_and_service_messages_are_never_taken(campaign_of, launched_by,
                                                          audience_clients, ops_author):
    one_contact_a_week(ops_author)
    day = a_trading_day()
    newsletter, service, ordinary = (audience_clients[:15], audience_clients[15:30],
                                     audience_clients[30:])
    Contact.objects.bulk_create(
        [Contact(client=c, source="newsletter", source_id=1, channel="email", priority=9,
                 exempt=True, status=ContactStatus.QUEUED, planned_on=day)
         for c in newsletter]
        + [Contact(client=c, source="campaign", source_id=999, channel="sms", priority=9,
                   exempt=True, status=ContactStatus.PLANNED, planned_on=day)
           for c in service])
    static_segment("the_rest", ordinary)
    lower = launched_by(campaign_of("lower", priority=9, audience=half("the_rest")))

    high = launched_by(campaign_of("high", priority=1))

    by_client = members(high)
    assert {by_client[c.pk].exclusion_reason for c in newsletter + service} == {"capped"}
    assert {by_client[c.pk].exclusion_reason for c in ordinary} == {""}
    assert {c.status for c in Contact.objects.filter(source="newsletter")} \
        == {ContactStatus.QUEUED}
    assert {c.status for c in Contact.objects.filter(source_id=999)} == {ContactStatus.PLANNED}
    assert {c.status for c in contacts(lower).values()} == {ContactStatus.CANCELLED}


def test_only_as_many_contacts_as_make_room_are_taken_the_lowest_priority_first(
        campaign_of, launched_by, ops_author):
    contact_policy_set(data={"caps": [{"channel": "all", "max_contacts": 2, "window_days": 7}],
                             "quiet_hours": DEFAULT_POLICY["quiet_hours"]}, actor=ops_author)
    by_sms = launched_by(campaign_of("by-sms", priority=6, steps=sms_step()))
    by_email = launched_by(campaign_of("by-email", priority=8, steps=email_step()))
    assert reasons(by_sms) == reasons(by_email) == {"": 40}

    push = launched_by(campaign_of("push", priority=2, steps=push_step()))

    assert reasons(push) == {"": 40}
    # Room for one more needs one contact back: the lowest priority's.
    assert {c.status for c in contacts(by_email).values()} == {ContactStatus.CANCELLED}
    assert {c.status for c in contacts(by_sms).values()} == {ContactStatus.PLANNED}
    assert reasons(by_email) == {"higher_priority": 40}
    assert reasons(by_sms) == {"": 40}
    counted = Counter(Contact.objects.filter(status__in=COUNTED_STATUSES)
                      .values_list("client_id", flat=True))
    assert set(counted.values()) == {2}


def test_a_contact_claimed_while_the_launch_takes_back_stays_and_the_client_is_capped(
        campaign_of, launched_by, monkeypatch):
    from campaigns import launch as launch_module

    low = launched_by(campaign_of("low", priority=7))
    raced = min(contacts(low))
    recheck = launch_module.takeable_q

    def a_sender_claims_first(**kwargs):
        if kwargs.get("closed_calls"):  # the re-check under the row locks
            Contact.objects.filter(source_id=low.pk, client_id=raced).update(
                status=ContactStatus.QUEUED, claimed_at=timezone.now())
        return recheck(**kwargs)

    monkeypatch.setattr(launch_module, "takeable_q", a_sender_claims_first)
    high = launched_by(campaign_of("high", priority=3))

    assert members(high)[raced].exclusion_reason == "capped"
    assert reasons(high) == {"": 39, "capped": 1}
    assert raced not in contacts(high)
    assert contacts(low)[raced].status == ContactStatus.QUEUED
    assert members(low)[raced].exclusion_reason == ""
    assert reasons(low) == {"": 1, "higher_priority": 39}


def test_an_email_already_in_the_outbox_is_never_taken_a_planned_one_is(
        campaign_of, launched_by, ops_author):
    """The email dispatcher claims outbox rows, not ledger contacts: once a lower campaign's
    email step has run, its messages stay; before that, its reserved emails may be taken."""
    from outreach.models import Delivery

    one_contact_a_week(ops_author)
    queued = launched_by(campaign_of("low-queued", priority=7, steps=email_step(),
                                     audience=half("spring_list")))
    campaign_steps_run(today=a_trading_day())  # its step ran: 40 messages in the outbox
    assert Delivery.objects.filter(source_id=queued.pk, status="pending").count() == 40

    high = launched_by(campaign_of("high", priority=3, steps=email_step()))

    assert reasons(high) == {"capped": 40}
    assert {c.status for c in contacts(queued).values()} == {ContactStatus.QUEUED}
    assert Delivery.objects.filter(source_id=queued.pk, status="pending").count() == 40
