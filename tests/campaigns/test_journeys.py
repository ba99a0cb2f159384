"""Always-on campaigns (journeys) on fixed dates around the National Day closure of 2026
(1-7 October) and the 调休 Saturday 10 October, a working day on which the exchanges stay
closed: clients who newly join the audience enter on a trading day, steps count trading days
from each member's entry, a step can wait for no response to the previous one, a member whose
goal is met leaves, and re-entry waits for the cooldown."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.journeys import journey_advance
from campaigns.launch import campaign_steps_run
from campaigns.models import CampaignMember
from outreach.models import Contact, ContactStatus, RMTask
from segments.models import SegmentMembership
from tests.campaigns.conftest import campaign_data, launch_now, static_segment
from tests.factories import TransactionFactory

WED_30_SEP = dt.date(2026, 9, 30)


def journey_data(**overrides):
    return campaign_data(**{**_journey(), **overrides})


def _journey():
    return dict(
        code="welcome-journey", always_on=True, reentry_cooldown_days=30,
        audience={"include": ["journey_list"], "exclude": []},
        steps=[
            {"channel": "sms", "delay_trading_days": 0, "variants": [
                {"code": "A", "share": 50,
                 "body": "{name}您好，{product_name}开放申购。回TD退订"},
                {"code": "B", "share": 50,
                 "body": "{name}您好，欢迎了解{product_name}。回TD退订"}]},
            {"channel": "phone", "delay_trading_days": 3, "when": "no_response", "variants": [
                {"code": "A", "share": 100, "subject": "回访",
                 "body": "{name}您好，我是{rm_name}。"}]},
        ])


@pytest.fixture
def journey(audience_clients, bond, ops_author, compliance_user, settings):
    """A running journey whose audience was empty at launch."""
    settings.JOURNEY_HOUR = 0
    static_segment("journey_list", [])
    campaign = services.campaign_create(data=journey_data(), actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    campaign = launch_now(campaign, ops_author)
    assert campaign.status == "running" and not CampaignMember.objects.exists()
    return campaign


def join(clients, code="journey_list"):
    from segments.models import Segment

    segment = Segment.objects.get(code=code)
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, client=c) for c in clients], ignore_conflicts=True)


def contacts(campaign, step):
    return Contact.objects.filter(source="campaign", source_id=campaign.pk, step=step)


def test_newcomers_enter_on_the_day_and_get_step_0(journey, audience_clients):
    join(audience_clients[:10])
    counts = journey_advance(campaign=journey, today=WED_30_SEP)
    members = CampaignMember.objects.filter(campaign=journey)
    assert counts["entered"] == 10 == members.count()
    assert set(members.values_list("entry_day", flat=True)) == {WED_30_SEP}
    treated = members.exclude(arm="control").count()
    assert 0 < treated < 10  # a 20% holdout gets nothing
    assert contacts(journey, 0).filter(status=ContactStatus.QUEUED).count() == treated
    # The same day again changes nothing; nor does a re-run after a lost mark.
    assert journey_advance(campaign=journey, today=WED_30_SEP)["entered"] == 0
    journey.refresh_from_db()
    journey.journey_day = None
    journey.save(update_fields=["journey_day"])
    again = journey_advance(campaign=journey, today=WED_30_SEP)
    assert again["entered"] == 0 and again["queued"] == 0
    assert contacts(journey, 0).count() == treated
    # Newcomers of a later day enter that day, on their own clock.
    join(audience_clients[10:15])
    assert journey_advance(campaign=journey, today=dt.date(2026, 10, 8))["entered"] == 5


def test_the_second_step_counts_trading_days_over_the_holiday_and_the_working_saturday(
        journey, audience_clients):
    join(audience_clients[:10])
    journey_advance(campaign=journey, today=WED_30_SEP)
    treated = CampaignMember.objects.filter(campaign=journey).exclude(arm="control").count()
    # Three trading days after Wednesday 30 September: 8, 9 and 12 October (the holiday and
    # Saturday 10 October, a working day but not a trading day, do not count).
    for day in (dt.date(2026, 10, 8), dt.date(2026, 10, 9)):
        journey_advance(campaign=journey, today=day)
        assert not contacts(journey, 1).exists()
    journey_advance(campaign=journey, today=dt.date(2026, 10, 12))
    assert contacts(journey, 1).count() == treated


def test_the_beat_runs_journeys_on_trading_days_only(journey, audience_clients):
    join(audience_clients[:5])
    assert "journeys" not in campaign_steps_run(today=dt.date(2026, 10, 10))  # 调休 Saturday
    assert not CampaignMember.objects.exists()
    done = campaign_steps_run(today=dt.date(2026, 10, 12))
    assert done["journeys"][0]["entered"] == 5


def test_the_call_goes_only_to_those_who_did_not_answer_the_sms(journey, audience_clients):
    join(audience_clients[:20])
    journey_advance(campaign=journey, today=WED_30_SEP)
    sms = list(contacts(journey, 0))
    answered = {c.client_id for c in sms[:3]}
    Contact.objects.filter(pk__in=[c.pk for c in sms[:3]]).update(
        status=ContactStatus.RESPONDED)
    journey_advance(campaign=journey, today=dt.date(2026, 10, 12))
    called = set(contacts(journey, 1).values_list("client_id", flat=True))
    assert called == {c.client_id for c in sms} - answered
    assert set(RMTask.objects.filter(source="campaign").values_list("client_id", flat=True)
               ) == called


def test_a_member_who_bought_leaves_the_journey_before_the_call(journey, audience_clients,
                                                                 bond):
    join(audience_clients[:20])
    journey_advance(campaign=journey, today=WED_30_SEP)
    buyer = contacts(journey, 0).first().client
    TransactionFactory(client=buyer, product=bond, traded_at=timezone.now()
                       + dt.timedelta(seconds=1), amount=Decimal("50000"))
    counts = journey_advance(campaign=journey, today=dt.date(2026, 10, 12))
    assert counts["exited"] == 1
    assert CampaignMember.objects.get(campaign=journey, client=buyer).exited_at is not None
    assert not contacts(journey, 1).filter(client=buyer).exists()
    assert contacts(journey, 1).count() == contacts(journey, 0).count() - 1


def test_re_entry_waits_for_the_cooldown_and_starts_the_steps_again(journey, audience_clients):
    join(audience_clients[:10])
    journey_advance(campaign=journey, today=WED_30_SEP)
    journey_advance(campaign=journey, today=dt.date(2026, 10, 12))
    first_round = contacts(journey, 0).count()
    # The journey is over on 13 October, but 30 days have not passed since the entry.
    assert journey_advance(campaign=journey, today=dt.date(2026, 10, 13))["reentered"] == 0
    counts = journey_advance(campaign=journey, today=dt.date(2026, 10, 30))
    assert counts["reentered"] == 10 and counts["entered"] == 0
    assert set(CampaignMember.objects.filter(campaign=journey).values_list(
        "round", "entry_day").distinct()) == {(1, dt.date(2026, 10, 30))}
    # Entry 1's SMS is step number 10 in the ledger; the first entry's rows stay.
    assert contacts(journey, 10).count() == first_round == contacts(journey, 0).count()


def test_a_client_who_left_the_audience_does_not_re_enter(journey, audience_clients):
    join(audience_clients[:4])
    journey_advance(campaign=journey, today=WED_30_SEP)
    SegmentMembership.objects.filter(client=audience_clients[0]).delete()
    assert journey_advance(campaign=journey, today=dt.date(2026, 11, 2))["reentered"] == 3


@pytest.mark.parametrize(("step", "field"), [
    ({"when": "sometimes"}, "steps[1].when"),
])
def test_a_bad_branch_names_the_field(audience, bond, ops_author, step, field):
    from core.errors import ApplicationError

    data = journey_data()
    data["steps"][1].update(step)
    with pytest.raises(ApplicationError) as refused:
        services.campaign_create(data=data, actor=ops_author)
    assert field in refused.value.fields


def test_the_first_step_cannot_wait_for_a_previous_one(audience, bond, ops_author):
    from core.errors import ApplicationError

    data = journey_data()
    data["steps"][0]["when"] = "no_response"
    with pytest.raises(ApplicationError) as refused:
        services.campaign_create(data=data, actor=ops_author)
    assert "steps[0].when" in refused.value.fields
    data = journey_data(reentry_cooldown_days=-1)
    with pytest.raises(ApplicationError) as refused:
        services.campaign_create(data=data, actor=ops_author)
    assert "reentry_cooldown_days" in refused.value.fields


def test_a_holiday_greeting_enters_its_audience_on_the_eve_of_the_holiday_only(
        audience_clients, bond, ops_author, compliance_user, settings):
    from outreach.calendar import greeting_holiday_ahead

    # 2026: Mid-Autumn 25-27 September, National Day 1-7 October.
    assert greeting_holiday_ahead(dt.date(2026, 9, 24)) == "Mid-autumn Festival"
    assert greeting_holiday_ahead(dt.date(2026, 9, 30)) == "National Day"
    assert greeting_holiday_ahead(dt.date(2026, 9, 29)) is None
    static_segment("journey_list", [])
    campaign = services.campaign_create(data=journey_data(
        code="greetings", scenario="holiday", products=[], reentry_cooldown_days=3,
        goal={"metric": "response", "target": 0.1, "window_days": 7},
        steps=[{"channel": "sms", "delay_trading_days": 0, "variants": [
            {"code": "A", "share": 100, "body": "{name}您好，{rm_name}祝您节日快乐！回TD退订"}]}]),
        actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    campaign = launch_now(campaign, ops_author)
    join(audience_clients[:6])
    assert journey_advance(campaign=campaign, today=dt.date(2026, 9, 23))["entered"] == 0
    assert journey_advance(campaign=campaign, today=dt.date(2026, 9, 24))["entered"] == 6
    assert journey_advance(campaign=campaign, today=dt.date(2026, 9, 29))["reentered"] == 0
    assert journey_advance(campaign=campaign, today=dt.date(2026, 9, 30))["reentered"] == 6


def test_the_detail_page_says_where_the_journey_stands(journey, audience_clients, bond,
                                                       ops_author, logged_in):
    from campaigns.selectors import journey_summary

    join(audience_clients[:12])
    journey_advance(campaign=journey, today=WED_30_SEP)
    buyer = contacts(journey, 0).first().client
    TransactionFactory(client=buyer, product=bond, traded_at=timezone.now()
                       + dt.timedelta(seconds=1), amount=Decimal("50000"))
    join(audience_clients[12:15])
    journey_advance(campaign=journey, today=dt.date(2026, 10, 8))
    journey.refresh_from_db()
    summary = journey_summary(campaign=journey)
    assert summary["journey_day"] == dt.date(2026, 10, 8)
    assert summary["entered_last"] == 3 and summary["left_on_goal"] == 1
    assert summary["in_journey"] == 14 and summary["reentered"] == 0
    html = logged_in(ops_author).get(f"/campaigns/{journey.code}/").content.decode()
    assert 'data-count="in_journey">14<' in html and 'data-count="left_on_goal">1<' in html
    assert 'data-count="entered_last">3<' in html


def test_a_funded_goal_exits_those_who_fund_after_entering_not_those_funded_before(
        audience_clients, bond, ops_author, compliance_user, settings):
    from clients.models import Client

    settings.JOURNEY_HOUR = 0
    static_segment("journey_list", [])
    campaign = services.campaign_create(data=journey_data(
        code="funding-journey", goal={"metric": "funded", "target": 0.3, "window_days": 30},
        products=[], holdout_pct=0, steps=[
            {"channel": "sms", "delay_trading_days": 0, "variants": [
                {"code": "A", "share": 100, "body": "{name}您好，欢迎开户。回TD退订"}]},
            {"channel": "phone", "delay_trading_days": 3, "variants": [
                {"code": "A", "share": 100, "subject": "回访", "body": "{name}您好。"}]}]),
        actor=ops_author)
    services.campaign_submit(campaign=campaign, actor=ops_author)
    services.campaign_approve(campaign=campaign, actor=compliance_user)
    campaign = launch_now(campaign, ops_author)
    early, late, never = audience_clients[:3], audience_clients[3:6], audience_clients[6:10]
    Client.objects.filter(pk__in=[c.pk for c in early]).update(
        first_funded_on=WED_30_SEP - dt.timedelta(days=20))
    Client.objects.filter(pk__in=[c.pk for c in late + never]).update(first_funded_on=None)
    join(early + late + never)
    assert journey_advance(campaign=campaign, today=WED_30_SEP)["entered"] == 10
    Client.objects.filter(pk__in=[c.pk for c in late]).update(
        first_funded_on=dt.date(2026, 10, 8))
    assert journey_advance(campaign=campaign, today=dt.date(2026, 10, 8))["exited"] == 3
    left = set(CampaignMember.objects.filter(campaign=campaign, exited_at__isnull=False)
               .values_list("client_id", flat=True))
    assert left == {c.pk for c in late}
