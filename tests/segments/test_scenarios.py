"""The seeded scenario segments: their rules follow the SCENARIO_* settings, they refresh like
every segment (joined and left recorded), and nobody edits their rules by hand."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from clients.models import CashFlow
from core.errors import ApplicationError
from segments.models import MembershipChange, Segment, SegmentKind, SegmentMembership
from segments.scenarios import SCENARIO_CODES
from segments.services import (
    scenarios_sync,
    segment_refresh_run,
    segment_update,
    segments_refresh_all,
)
from tests.factories import ClientFactory


def test_every_scenario_of_the_api_is_seeded_as_a_scenario_segment(db):
    seeded = dict(Segment.objects.filter(code__in=SCENARIO_CODES).values_list("code", "kind"))
    assert seeded == {code: SegmentKind.SCENARIO for code in (
        "scn_zombie_account", "scn_dormant", "scn_cash_inflow", "scn_product_maturity",
        "scn_risk_expiring", "scn_birthday", "scn_onboarding")}
    for segment in Segment.objects.filter(code__in=SCENARIO_CODES):
        assert segment.rule_version == 1 and segment.rule
        assert segment.playbook["zh-hans"]["script"] and segment.playbook["en"]["script"]


def test_sync_changes_nothing_until_a_threshold_setting_changes(db, settings):
    assert scenarios_sync() == []
    settings.SCENARIO_INFLOW_MIN = 50_000
    assert scenarios_sync() == ["scn_cash_inflow"]
    segment = Segment.objects.get(code="scn_cash_inflow")
    assert segment.rule_version == 2
    assert {"field": "inflow_5d", "op": "gte", "value": 50000} in segment.rule["all"][1]["any"]
    assert scenarios_sync() == []


def test_a_scenario_rule_is_not_edited_by_hand(db):
    segment = Segment.objects.get(code="scn_birthday")
    with pytest.raises(ApplicationError):
        segment_update(segment=segment, rule={"field": "age", "op": "gt", "value": 1})


def test_the_nightly_refresh_puts_clients_in_their_scenarios_and_records_who_joined(db):
    today = timezone.localdate()
    fresh = ClientFactory(client_no="fresh", opened_on=today - dt.timedelta(days=3),
                          first_funded_on=None, status="active")
    zombie = ClientFactory(client_no="zombie", opened_on=today - dt.timedelta(days=90),
                           first_funded_on=None, status="active")
    closed = ClientFactory(client_no="closed", opened_on=today - dt.timedelta(days=90),
                           first_funded_on=None, status="closed")
    rich = ClientFactory(client_no="rich", opened_on=today - dt.timedelta(days=400),
                         first_funded_on=today - dt.timedelta(days=400),
                         last_purchase_on=today - dt.timedelta(days=5), aum=Decimal("10000"))
    CashFlow.objects.create(flow_id="F1", client=rich, at=timezone.now(),
                            amount=Decimal("100000"), kind="deposit")
    refreshes = segments_refresh_all(kinds=[SegmentKind.SCENARIO], queue=False)
    for refresh in refreshes:
        segment_refresh_run(refresh_id=refresh.pk)

    def in_(code):
        return set(SegmentMembership.objects.filter(segment__code=code)
                   .values_list("client__client_no", flat=True))

    assert in_("scn_onboarding") == {"fresh"}
    assert in_("scn_zombie_account") == {"zombie"}
    assert in_("scn_cash_inflow") == {"rich"}
    assert closed.pk not in SegmentMembership.objects.values_list("client_id", flat=True)
    joined = set(MembershipChange.objects.filter(refresh__segment__code="scn_zombie_account")
                 .values_list("client_id", flat=True))
    assert joined == {zombie.pk} and fresh.pk
