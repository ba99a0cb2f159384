"""A segment refresh through a real Celery worker (Redis + PostgreSQL) gives the membership of an
eager, in-process one."""

import datetime as dt
import random
from decimal import Decimal

import pytest

from clients.models import Client
from segments.models import Segment, SegmentMembership, SegmentRefresh
from segments.services import segment_create, segments_refresh_all
from tests.worker import running_worker, wait_for

RULE = {"all": [{"field": "age", "op": "between", "value": [30, 60]},
                {"any": [{"field": "aum", "op": "gte", "value": 500000},
                         {"field": "city", "op": "eq", "value": "上海"}]}]}


@pytest.fixture
def book(transactional_db, settings):
    settings.SEGMENT_REFRESH_CHUNK_CLIENTS = 40
    rng = random.Random(7)
    Client.objects.bulk_create([
        Client(client_no=f"S{i:05d}", name=f"客户{i}",
               birth_date=dt.date(rng.randint(1950, 2005), rng.randint(1, 12), 1),
               city=rng.choice(["上海", "北京", "深圳"]),
               aum=Decimal(rng.randint(0, 2_000_000))) for i in range(300)])
    segment = segment_create(code="w_rule", name_en="Worker rule", rule=RULE, refresh=False)
    segment_create(code="w_dep", name_en="Dependent", refresh=False,
                   rule={"all": [{"field": "segment", "op": "eq", "value": "w_rule"},
                                 {"field": "city", "op": "eq", "value": "北京"}]})
    return segment


def memberships() -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for code, client_id in SegmentMembership.objects.values_list("segment__code", "client_id"):
        out.setdefault(code, set()).add(client_id)
    return out


def test_a_worker_refresh_matches_an_eager_one(book):
    segments_refresh_all(trigger="command", kinds=["rule"])  # eager: no broker in this process
    eager = memberships()
    assert eager["w_rule"] and eager["w_dep"]
    SegmentMembership.objects.all().delete()
    Segment.objects.update(size=0)

    with running_worker():
        refreshes = segments_refresh_all(trigger="command", kinds=["rule"])
        ids = [r.pk for r in refreshes]
        wait_for(lambda: SegmentRefresh.objects.filter(pk__in=ids, status="succeeded").count()
                 == len(ids), timeout=90)
    assert memberships() == eager
    assert Segment.objects.get(code="w_rule").size == len(eager["w_rule"])
