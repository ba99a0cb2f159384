"""Fixtures that build on each other: an audience (a static list) -> a campaign's data -> a
draft -> an approved campaign -> a launched one."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.launch import campaign_launch_run
from core.models import Role
from segments.models import Segment, SegmentKind, SegmentMembership
from tests.factories import ClientFactory, ProductFactory, staff


def static_segment(code: str, clients) -> Segment:
    segment = Segment.objects.create(code=code, kind=SegmentKind.STATIC, name_en=code,
                                     name_zh=code)
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, client=c) for c in clients])
    return segment


@pytest.fixture
def ops_author(db):
    return staff(Role.OPS, username="ops_author")


@pytest.fixture
def bond(db):
    return ProductFactory(product_code="BOND01", name="稳健债券1号", risk_level="R2")


@pytest.fixture
def audience_clients(rm_a):
    """40 reachable clients of RM A with a valid C3 assessment."""
    return [ClientFactory(client_no=f"K{i:05d}", rm=rm_a, branch=rm_a.branch, consent_sms=True,
                          consent_phone=True) for i in range(40)]


@pytest.fixture
def audience(audience_clients):
    return static_segment("spring_list", audience_clients)


def campaign_data(**overrides) -> dict:
    data = {
        "code": "spring-bond", "name": "春季稳健理财", "scenario": "ad_hoc",
        "goal": {"metric": "conversion", "target": 0.05, "window_days": 30},
        "audience": {"include": ["spring_list"], "exclude": []},
        "products": ["BOND01"], "priority": 5, "holdout_pct": 20,
        "steps": [{"channel": "phone", "delay_trading_days": 0, "variants": [
            {"code": "A", "share": 50, "subject": "问候", "body": "{name}您好，我是{rm_name}。"},
            {"code": "B", "share": 50, "subject": "推荐",
             "body": "{name}您好，{product_name}（{product_risk_level}）适合您。"}]}],
    }
    data.update(overrides)
    return data


@pytest.fixture
def draft(audience, bond, ops_author):
    return services.campaign_create(data=campaign_data(), actor=ops_author)


@pytest.fixture
def approved(draft, ops_author, compliance_user):
    services.campaign_submit(campaign=draft, actor=ops_author)
    return services.campaign_approve(campaign=draft, actor=compliance_user)


def launch_now(campaign, actor):
    """Launch and run the job in this process (the task is queued after commit)."""
    launch = services.campaign_launch(campaign=campaign, actor=actor)
    campaign_launch_run(launch_id=launch.pk)
    campaign.refresh_from_db()
    return campaign


@pytest.fixture
def launched(approved, ops_author):
    return launch_now(approved, ops_author)


def a_trading_day() -> dt.date:
    from outreach.calendar import is_trading_day, trading_day_after

    today = timezone.localdate()
    return today if is_trading_day(today) else trading_day_after(today, 1)
