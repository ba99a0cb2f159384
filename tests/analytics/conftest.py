"""Fixtures of the home pages: an RM's tasks, scenario newcomers, a book with fixed figures,
scores a week apart, and a branch's team with tasks whose figures are counted by hand."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from clients.scoring.models import ClientScore, ScoringCurrent, ScoringScheme
from core.models import Role
from outreach.models import Contact, RMTask, TaskOutcome, TaskSource, TaskStatus
from segments.models import Segment, SegmentKind, SegmentMembership
from tests.factories import ClientFactory, staff


@pytest.fixture
def today():
    return timezone.localdate()


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def make_task(*, client, assignee, title="回访", source=TaskSource.MANUAL, due_on=None,
              status=TaskStatus.OPEN, detail="", **extra) -> RMTask:
    return RMTask.objects.create(client=client, assignee=assignee, source=source, title=title,
                                 detail=detail, due_on=due_on, status=status, **extra)


@pytest.fixture
def rm_tasks(rm_a, rm_b, client_of_a, clients_of_b, today):
    """rm_a: one overdue, one due today from a campaign (with its ledger contact's variant), one
    newsletter reply without a date, one due next week and one done; rm_b: one overdue."""
    contact = Contact.objects.create(client=client_of_a, source="campaign", source_id=1, step=1,
                                     channel="phone", variant="B", planned_on=today,
                                     status="queued")
    return {
        "overdue": make_task(client=client_of_a, assignee=rm_a, title="跟进上周来电",
                             source=TaskSource.FOLLOW_UP, due_on=today - days(3)),
        "campaign": make_task(client=client_of_a, assignee=rm_a,
                              title="秋季稳健理财 · 稳健债券到期提醒",
                              detail="张三您好，您的债券即将到期。", source=TaskSource.CAMPAIGN,
                              due_on=today, origin_type="outreach.contact",
                              origin_id=str(contact.pk)),
        "reply": make_task(client=client_of_a, assignee=rm_a, title="月报回复",
                           source=TaskSource.NEWSLETTER_REPLY, detail="想了解养老规划"),
        "later": make_task(client=client_of_a, assignee=rm_a, title="下周再约",
                           due_on=today + days(7)),
        "done": make_task(client=client_of_a, assignee=rm_a, title="已经办完",
                          due_on=today - days(1), status=TaskStatus.DONE),
        "of_b": make_task(client=clients_of_b[0], assignee=rm_b, title="B 的逾期回访",
                          due_on=today - days(2)),
    }


def scenario(code: str, *, name_zh: str, name_en: str, playbook: dict) -> Segment:
    """A scenario segment (the seeded ones may exist already: same code, our text)."""
    segment, _created = Segment.objects.update_or_create(
        code=code, defaults={"kind": SegmentKind.SCENARIO, "name_zh": name_zh,
                             "name_en": name_en, "playbook": playbook, "is_active": True})
    return segment


def join(segment: Segment, client, *, ago: dt.timedelta) -> SegmentMembership:
    """`client` in `segment` since `ago` before now (`since` is set on insert, so move it)."""
    membership = SegmentMembership.objects.create(segment=segment, client=client)
    SegmentMembership.objects.filter(pk=membership.pk).update(since=timezone.now() - ago)
    return membership


@pytest.fixture
def scenarios(rm_a, rm_b, client_of_a, clients_of_b):
    """Birthday (with scripts in both languages): client_of_a joined 2 days ago, an older member
    10 days ago, rm_b's client yesterday. Dormant (no script): one of rm_a's clients 6 days ago."""
    birthday = scenario("scn_birthday", name_zh="生日", name_en="Birthday", playbook={
        "zh-hans": {"script": "生日快乐！祝您身体健康。"},
        "en": {"script": "Happy birthday! Wishing you good health."}})
    dormant = scenario("scn_dormant", name_zh="休眠客户", name_en="Dormant", playbook={})
    old_member = ClientFactory(client_no="A0000009", name="老会员", rm=rm_a, branch=rm_a.branch)
    sleeper = ClientFactory(client_no="A0000010", name="沉睡客户", rm=rm_a, branch=rm_a.branch,
                            phone="13911112222")
    join(birthday, client_of_a, ago=days(2))
    join(birthday, old_member, ago=days(10))
    join(birthday, clients_of_b[0], ago=days(1))
    join(dormant, sleeper, ago=days(6))
    return {"birthday": birthday, "dormant": dormant, "old_member": old_member,
            "sleeper": sleeper}


@pytest.fixture
def fixed_book(rm_a, rm_b, today):
    """rm_a's whole book: AUM 100,000 + 250,000.50 + 0 + 1,000,000; purchases 29, 0 and 30
    days ago and never: two active (the 30 days ending today are today-29..today)."""
    made = [
        ClientFactory(client_no="F0000001", rm=rm_a, branch=rm_a.branch, aum=Decimal("100000"),
                      last_purchase_on=today - days(29)),
        ClientFactory(client_no="F0000002", rm=rm_a, branch=rm_a.branch,
                      aum=Decimal("250000.50"), last_purchase_on=today),
        ClientFactory(client_no="F0000003", rm=rm_a, branch=rm_a.branch, aum=Decimal("0"),
                      last_purchase_on=today - days(30)),
        ClientFactory(client_no="F0000004", rm=rm_a, branch=rm_a.branch,
                      aum=Decimal("1000000"), last_purchase_on=None),
    ]
    ClientFactory(client_no="F0000099", rm=rm_b, branch=rm_b.branch, aum=Decimal("9999999"),
                  last_purchase_on=today)
    return made


def score(client, *, as_of: dt.date, tier: str, scheme: ScoringScheme) -> ClientScore:
    return ClientScore.objects.create(
        client=client, scheme=scheme, as_of=as_of, amount=0, purchases=0, frequency=0,
        benefit=0, amount_score=1, frequency_score=1, benefit_score=1, total_score=3, tier=tier)


@pytest.fixture
def scheme(db):
    return ScoringScheme.objects.get(version=1)


@pytest.fixture
def scored_book(rm_a, rm_b, scheme, today):
    """Current scores of yesterday against those of 8 days ago (a run 3 days ago is too recent
    to compare with): two of rm_a's clients moved up, one down, one stayed; rm_b's moved up."""
    now, week_ago, recent = today - days(1), today - days(8), today - days(3)
    ScoringCurrent.objects.update_or_create(pk=1, defaults={"as_of": now, "scheme": scheme})
    moves = {"T0000001": ("long_tail", "potential", "long_tail"),   # up
             "T0000002": ("guiding", "development", "guiding"),     # down
             "T0000003": ("potential", "potential", "long_tail"),   # no move (recent differs)
             "T0000004": ("potential", "guiding", "potential")}     # up
    clients = {}
    for number, (then, current, between) in moves.items():
        c = ClientFactory(client_no=number, rm=rm_a, branch=rm_a.branch,
                          aum=Decimal(number[-1]) * 100000)
        score(c, as_of=week_ago, tier=then, scheme=scheme)
        score(c, as_of=recent, tier=between, scheme=scheme)
        score(c, as_of=now, tier=current, scheme=scheme)
        clients[number] = c
    other = ClientFactory(client_no="T0000099", rm=rm_b, branch=rm_b.branch)
    score(other, as_of=week_ago, tier="long_tail", scheme=scheme)
    score(other, as_of=now, tier="guiding", scheme=scheme)
    return clients


@pytest.fixture
def rm_a2(branch):
    return staff(Role.RM, username="rm_a2", display_name="陈经理", branch=branch)


@pytest.fixture
def other_manager(other_branch):
    return staff(Role.BRANCH_MANAGER, username="bm_bj", branch=other_branch)


@pytest.fixture
def team_tasks(rm_a, rm_a2, rm_b, branch, today):
    """Tasks whose figures are counted by hand in the tests (see test_home.py)."""
    now = timezone.now()
    mine = ClientFactory(client_no="M0000001", name="团队客户", rm=rm_a, branch=branch)
    theirs = ClientFactory(client_no="M0000002", name="陈的客户", rm=rm_a2, branch=branch)
    nobodys = ClientFactory(client_no="M0000003", name="无人客户", rm=None, branch=branch)
    elsewhere = ClientFactory(client_no="M0000099", name="北京客户", rm=rm_b,
                              branch=rm_b.branch)

    def done(due_on, outcome, ago):
        return {"due_on": due_on, "status": TaskStatus.DONE, "outcome": outcome,
                "outcome_at": now - days(ago), "done_at": now - days(ago)}

    specs = [
        (mine, rm_a, {"due_on": today - days(1)}),                          # T1
        (mine, rm_a, {"due_on": today - days(40)}),                         # T2
        (mine, rm_a, {"due_on": today}),                                    # T3
        (mine, rm_a, {}),                                                   # T4
        (mine, rm_a, done(today - days(2), TaskOutcome.BOUGHT, 2)),         # T5
        (mine, rm_a, done(today - days(10), TaskOutcome.REACHED, 10)),      # T6
        (mine, rm_a, done(today - days(45), TaskOutcome.BOUGHT, 45)),       # T7
        (mine, rm_a, {"due_on": today - days(3), "status": TaskStatus.CANCELLED}),  # T8
        (mine, rm_a, {"due_on": today + days(2), "outcome": TaskOutcome.NO_ANSWER,
                      "outcome_at": now - days(1)}),                        # T9
        (theirs, rm_a2, {"due_on": today - days(3)}),                       # T10
        (nobodys, None, {"due_on": today - days(2), "source": TaskSource.CAMPAIGN}),  # T11
        (elsewhere, rm_b, {"due_on": today - days(5)}),                     # T12
        (elsewhere, rm_b, done(today - days(1), TaskOutcome.BOUGHT, 1)),    # T13
    ]
    return [make_task(client=c, assignee=who, title=f"团队任务 {i + 1}", **extra)
            for i, (c, who, extra) in enumerate(specs)]


def launched_campaign(*, code: str, author, launched_at: dt.datetime, arms: dict,
                      contacts: dict | None = None, goal: str = "conversion",
                      products: tuple[str, ...] = ("BOND01",)):
    """A running campaign whose target list and ledger are written by hand (no launch job):
    `arms` maps each client to its arm ("A", "B", "control") or to "excluded:<reason>";
    `contacts` maps a client to its step-1 contact's (channel, status), made at launch."""
    from campaigns.models import Campaign, CampaignMember, CampaignStatus
    from outreach.models import Contact

    campaign = Campaign.objects.create(
        code=code, name=f"活动 {code}", author=author, status=CampaignStatus.RUNNING,
        goal={"metric": goal, "target": 0.05, "window_days": 30}, products=list(products),
        holdout_pct=20, launched_at=launched_at, launch_day=launched_at.date(),
        steps=[{"channel": "sms", "delay_trading_days": 0, "variants": [
            {"code": "A", "share": 50, "subject": "", "body": "您好"},
            {"code": "B", "share": 50, "subject": "", "body": "您好"}]}])
    for client, arm in arms.items():
        excluded = arm.startswith("excluded:")
        CampaignMember.objects.create(
            campaign=campaign, client=client, arm="" if excluded else arm,
            exclusion_reason=arm.split(":", 1)[1] if excluded else "", entered_at=launched_at,
            entry_day=launched_at.date())
    for client, (channel, status) in (contacts or {}).items():
        Contact.objects.create(client=client, source="campaign", source_id=campaign.pk, step=1,
                               channel=channel, status=status,
                               planned_on=timezone.localtime(launched_at).date(),
                               at=launched_at)
    return campaign
