"""Analytics figures on a small fixed book, each expected value counted by hand from the dates
below (DOMAIN.md "Operations metrics"), on PostgreSQL and SQLite alike.

The book, with M3..M0 the first days of the months three months ago .. this month, T today:
  A1 (rm_a) opened M3+4, funded M3+6, bought M3+9 and M2+9; AUM 100,000; tier guiding
  A2 (rm_a) opened M3+14, funded M3+19, bought an advisory service M3+24 (revenue 500); 50,000
  A3 (rm_a) opened M2+0, never funded, never bought; AUM 0
  A4 (rm_a) opened M2+9, funded M2+10, bought twice on M2+19 and once today; 200,000
  B1 (rm_b, BJ01) opened M3+1, funded M3+2, bought M1+4; AUM 300,000; tier guiding
  O1 (rm_a) opened 2020-01-01, bought today; AUM 10,000
Every purchase brings revenue 100 unless said otherwise.
"""

import datetime as dt
import importlib
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from analytics import selectors
from analytics.models import (
    ClientDay,
    ClientFunnel,
    ClientMonthActivity,
    CohortActivity,
    CohortBranch,
    DailyBranchFigures,
    DailyFigures,
    SegmentCohortActivity,
    SegmentDailyFigures,
    SegmentMember,
    SegmentPairFigures,
)
from analytics.selectors import Filters
from analytics.services import refresh_run, refresh_start
from clients.models import Client
from clients.scoring.models import ClientScore, ScoringCurrent, ScoringScheme
from core.errors import ApplicationError
from segments.models import Segment, SegmentKind, SegmentMembership
from tests.factories import ClientFactory, ProductFactory, TransactionFactory, staff


def month_start(day: dt.date, back: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def plus(day: dt.date, n: int) -> dt.date:
    return day + dt.timedelta(days=n)


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


class Dates:
    def __init__(self):
        self.T = timezone.localdate()
        self.M0, self.M1, self.M2, self.M3 = (month_start(self.T, k) for k in range(4))


@pytest.fixture
def d():
    return Dates()


def buy(client, day, *, revenue="100", product=None, hour=10):
    return TransactionFactory(client=client, traded_at=at(day, hour), revenue=Decimal(revenue),
                              **({"product": product} if product else {}))


def score(client, *, as_of, tier, scheme):
    return ClientScore.objects.create(
        client=client, scheme=scheme, as_of=as_of, amount=0, purchases=0, frequency=0,
        benefit=0, amount_score=1, frequency_score=1, benefit_score=1, total_score=3, tier=tier)


def the_scheme() -> ScoringScheme:
    """The seeded scheme (a transactional test elsewhere may have flushed it: then a copy)."""
    return ScoringScheme.objects.order_by("version").first() or ScoringScheme.objects.create(
        version=1, amount_bounds=[1, 2, 3, 4, 5], frequency_bounds=[1, 2, 3, 4, 5],
        benefit_bounds=[1, 2, 3, 4, 5],
        tier_precedence=["guiding", "development", "potential", "long_tail"])


@pytest.fixture
def book(d, rm_a, rm_b):
    a = {"rm": rm_a, "branch": rm_a.branch}
    clients = {
        "A1": ClientFactory(client_no="A1", opened_on=plus(d.M3, 4),
                            first_funded_on=plus(d.M3, 6), aum=Decimal("100000"), **a),
        "A2": ClientFactory(client_no="A2", opened_on=plus(d.M3, 14),
                            first_funded_on=plus(d.M3, 19), aum=Decimal("50000"), **a),
        "A3": ClientFactory(client_no="A3", opened_on=d.M2, first_funded_on=None,
                            aum=Decimal("0"), **a),
        "A4": ClientFactory(client_no="A4", opened_on=plus(d.M2, 9),
                            first_funded_on=plus(d.M2, 10), aum=Decimal("200000"), **a),
        "B1": ClientFactory(client_no="B1", opened_on=plus(d.M3, 1),
                            first_funded_on=plus(d.M3, 2), aum=Decimal("300000"), rm=rm_b,
                            branch=rm_b.branch),
        "O1": ClientFactory(client_no="O1", opened_on=dt.date(2020, 1, 1),
                            first_funded_on=dt.date(2020, 1, 2), aum=Decimal("10000"), **a),
    }
    advisory = ProductFactory(product_code="ADV1", product_type="advisory_service")
    buy(clients["A1"], plus(d.M3, 9))
    buy(clients["A1"], plus(d.M2, 9))
    buy(clients["A2"], plus(d.M3, 24), revenue="500", product=advisory)
    buy(clients["A4"], plus(d.M2, 19))
    buy(clients["A4"], plus(d.M2, 19), hour=15)
    buy(clients["A4"], d.T, hour=0)  # 00:xx local time is still today (UTC: yesterday)
    buy(clients["B1"], plus(d.M1, 4))
    buy(clients["O1"], d.T, hour=0)
    scheme = the_scheme()
    scored_on = d.T - dt.timedelta(days=1)
    for number in ("A1", "B1"):
        score(clients[number], as_of=scored_on, tier="guiding", scheme=scheme)
    ScoringCurrent.objects.update_or_create(pk=1, defaults={"as_of": scored_on,
                                                            "scheme": scheme})
    return clients


def rebuild(full: bool = True):
    refresh = refresh_start(full=full, queue=False, trigger="test")
    refresh = refresh_run(refresh_id=refresh.pk, chunk_size=2)
    assert refresh.status == "succeeded", refresh.error
    return refresh


@pytest.fixture
def built(book):
    rebuild()
    return book


def window(d: Dates, **extra) -> Filters:
    return Filters(date_from=d.M3, date_to=d.T, **extra)


def label(day: dt.date) -> str:
    return f"{day.year}-{day.month:02d}"


# --- retention -----------------------------------------------------------------------------------
def test_retention_by_opening_month_for_operations(built, d, ops_user):
    answer = selectors.retention(user=ops_user, filters=window(d))
    assert answer["as_of"] == d.T.isoformat()
    # M3: A1, A2, B1; bought in M3: A1, A2; M2: A1; M1: B1; M0: nobody.
    # M2: A3, A4; bought in M2: A4; M1: nobody; M0: A4 (today).
    assert answer["cohorts"] == [
        {"cohort": label(d.M3), "size": 3, "retention": [0.6667, 0.3333, 0.3333, 0.0]},
        {"cohort": label(d.M2), "size": 2, "retention": [0.5, 0.0, 0.5]},
    ]


def test_retention_of_an_rm_covers_their_book_only(built, d, rm_a, rm_b):
    mine = selectors.retention(user=rm_a, filters=window(d))["cohorts"]
    assert mine[0] == {"cohort": label(d.M3), "size": 2, "retention": [1.0, 0.5, 0.0, 0.0]}
    theirs = selectors.retention(user=rm_b, filters=window(d))["cohorts"]
    assert theirs == [{"cohort": label(d.M3), "size": 1, "retention": [0.0, 0.0, 1.0, 0.0]}]


def test_retention_keeps_the_last_cohorts_and_checks_months(built, d, ops_user):
    answer = selectors.retention(user=ops_user, filters=window(d), months=3)
    assert [c["cohort"] for c in answer["cohorts"]] == [label(d.M2)]
    for bad in (0, 25):
        with pytest.raises(ApplicationError) as caught:
            selectors.retention(user=ops_user, filters=window(d), months=bad)
        assert "months" in caught.value.fields


# --- funnel --------------------------------------------------------------------------------------
def test_funnel_counts_conversion_and_median_days(built, d, ops_user):
    steps = selectors.funnel(user=ops_user, filters=window(d))["steps"]
    b1_days_to_buy = (plus(d.M1, 4) - plus(d.M3, 2)).days
    a1_days_to_repeat = (plus(d.M2, 9) - plus(d.M3, 9)).days
    assert b1_days_to_buy > 9
    assert steps == [
        {"step": "opened", "clients": 5, "conversion_from_previous": None,
         "median_days_from_previous": None},
        # funded after 2 (A1), 5 (A2), 1 (A4), 1 (B1) days: median 1.5
        {"step": "funded", "clients": 4, "conversion_from_previous": 0.8,
         "median_days_from_previous": 1.5},
        # first purchase after 3 (A1), 5 (A2), 9 (A4) and b1_days_to_buy days: median 7
        {"step": "first_purchase", "clients": 4, "conversion_from_previous": 1.0,
         "median_days_from_previous": 7.0},
        # repeat: A2 (advisory, same day), A4 (second purchase the same day), A1 a month on
        {"step": "repeat_purchase", "clients": 3, "conversion_from_previous": 0.75,
         "median_days_from_previous": 0.0},
    ]
    assert a1_days_to_repeat >= 28


def test_funnel_by_tier_branch_and_segment(built, d, ops_user):
    def opened(**extra):
        return selectors.funnel(user=ops_user, filters=window(d, **extra))["steps"][0]["clients"]

    assert opened(tier="guiding") == 2          # A1, B1
    assert opened(branch="BJ01") == 1           # B1
    assert opened(rm="rm_a") == 4
    segment = Segment.objects.create(code="a2_a4", kind=SegmentKind.STATIC, name_en="A2 A4")
    for number in ("A2", "A4", "O1"):
        SegmentMembership.objects.create(segment=segment, client=built[number])
    rebuild(full=False)  # the segment figures count the members of the last refresh
    steps = selectors.funnel(user=ops_user, filters=window(d, segment="a2_a4"))["steps"]
    assert [s["clients"] for s in steps] == [2, 2, 2, 2]
    assert steps[3]["median_days_from_previous"] == 0.0


def test_funnel_of_a_user_who_sees_no_client_is_empty_not_an_error(built, d):
    """A branch manager with no branch sees no client: the funnel says zero (its medians were
    once built as SQL of an empty scope, which Django refuses to compile)."""
    nobody = staff("branch_manager", username="bm_without_branch", branch=None)
    steps = selectors.funnel(user=nobody, filters=window(d))["steps"]
    assert [s["clients"] for s in steps] == [0, 0, 0, 0]
    assert all(s["median_days_from_previous"] is None for s in steps)


# --- KPIs ----------------------------------------------------------------------------------------
def active_today(d: Dates) -> int:
    """A4 and O1 bought today; B1 on M1+4 counts if that is within the 30 days ending today."""
    return 2 + (1 if (d.T - plus(d.M1, 4)).days <= 29 else 0)


def test_monthly_kpis(built, d, ops_user):
    answer = selectors.kpi_series(user=ops_user, filters=window(d), interval="month")
    series = answer["series"]
    assert [p["period"] for p in series] == [label(m) for m in (d.M3, d.M2, d.M1, d.M0)]
    assert [p["new_accounts"] for p in series] == [3, 2, 0, 0]
    assert [p["clients"] for p in series] == [4, 6, 6, 6]
    assert [p["funded_rate"] for p in series] == [1.0, 0.5, None, None]
    assert [p["aum"] for p in series] == [460000.0, 660000.0, 660000.0, 660000.0]
    assert [p["revenue"] for p in series] == [600.0, 300.0, 100.0, 200.0]
    # on the month's last day: A1 (M3+9), A2 (M3+24) | A1 (M2+9), A4 (M2+19) | B1 | today
    assert [p["active_clients"] for p in series] == [2, 2, 1, active_today(d)]
    previous = answer["previous"]
    assert previous and all(p["clients"] == 1 and p["new_accounts"] == 0 and p["revenue"] == 0
                            for p in previous)


def test_kpis_by_branch_rm_and_for_an_rm(built, d, ops_user, rm_b, branch_manager):
    bj = selectors.kpi_series(user=ops_user, filters=window(d, branch="BJ01"))["series"]
    assert [p["new_accounts"] for p in bj] == [1, 0, 0, 0]
    assert [p["revenue"] for p in bj] == [0.0, 0.0, 100.0, 0.0]
    own = selectors.kpi_series(user=rm_b, filters=window(d))["series"]
    assert own == bj
    managed = selectors.kpi_series(user=branch_manager, filters=window(d))["series"]
    assert [p["clients"] for p in managed] == [3, 5, 5, 5]
    assert [p["revenue"] for p in managed] == [600.0, 300.0, 0.0, 200.0]


def test_daily_and_weekly_kpis_add_up_to_the_months(built, d, ops_user):
    days = selectors.kpi_series(user=ops_user, filters=window(d), interval="day")["series"]
    assert len(days) == (d.T - d.M3).days + 1
    assert sum(p["revenue"] for p in days) == 1200.0
    assert days[-1]["active_clients"] == active_today(d)
    by_day = {p["period"]: p for p in days}
    assert by_day[plus(d.M3, 9).isoformat()]["active_clients"] == 1    # A1 alone
    assert by_day[plus(d.M3, 24).isoformat()]["active_clients"] == 2   # A1 and A2
    # A1's M3+9 purchase keeps them active up to M3+38 only
    assert by_day[plus(d.M3, 38).isoformat()]["active_clients"] >= 1
    weeks = selectors.kpi_series(user=ops_user, filters=window(d), interval="week")["series"]
    assert sum(p["new_accounts"] for p in weeks) == 5
    assert weeks[0]["period"] == "{}-W{:02d}".format(*d.M3.isocalendar()[:2])
    with pytest.raises(ApplicationError) as caught:
        selectors.kpi_series(user=ops_user, filters=window(d), interval="year")
    assert "interval" in caught.value.fields


def test_a_segment_of_everyone_gives_the_unfiltered_figures(built, d, ops_user, rm_a):
    """Both segment paths (the segment figures without an RM in play; the members' per-client
    rows within an RM's book) agree with the unfiltered aggregates."""
    segment = Segment.objects.create(code="all_of_them", kind=SegmentKind.STATIC,
                                     name_en="Everyone")
    for c in Client.objects.all():
        SegmentMembership.objects.create(segment=segment, client=c)
    rebuild(full=False)
    cases = [(ops_user, {}), (ops_user, {"branch": "SH01"}), (ops_user, {"tier": "guiding"}),
             (ops_user, {"rm": "rm_a"}), (rm_a, {})]
    for user, extra in cases:
        for interval in ("day", "month"):
            plain = selectors.kpi_series(user=user, filters=window(d, **extra),
                                         interval=interval)
            joined = selectors.kpi_series(
                user=user, filters=window(d, segment="all_of_them", **extra), interval=interval)
            assert joined == plain, (user, extra, interval)
        assert (selectors.retention(user=user, filters=window(d, segment="all_of_them", **extra))
                == selectors.retention(user=user, filters=window(d, **extra))), (user, extra)
    assert sum(p["new_accounts"] for p in selectors.kpi_series(
        user=rm_a, filters=window(d, segment="all_of_them"))["series"]) == 4


def test_a_segments_changed_members_reach_its_figures_by_the_refresh_queued_on_commit(
        built, d, ops_user, django_capture_on_commit_callbacks):
    """segment_static_set / a segment refresh / a deletion send members_changed after commit;
    analytics queues a refresh (run eagerly here) that moves the pairs into the figures."""
    from segments.services import segment_create, segment_delete

    def opened_in(code):
        return selectors.funnel(user=ops_user, filters=window(d, segment=code)
                                )["steps"][0]["clients"]

    with django_capture_on_commit_callbacks(execute=True):
        segment = segment_create(code="pair", kind=SegmentKind.STATIC, name_en="Pair",
                                 name_zh="两位", client_nos=["A1", "B1"])
    assert opened_in("pair") == 2
    assert sorted(SegmentMember.objects.filter(segment_id=segment.pk)
                  .values_list("client_id", flat=True)) == sorted([built["A1"].pk,
                                                                   built["B1"].pk])
    with django_capture_on_commit_callbacks(execute=True):
        segment_delete(segment=segment)
    assert not SegmentMember.objects.filter(segment_id=segment.pk).exists()
    assert not SegmentDailyFigures.objects.filter(segment_id=segment.pk).exists()


# --- tier migration, segments, drill-down --------------------------------------------------------
def test_tier_migration_between_two_scorings(built, d, ops_user):
    scheme = the_scheme()
    before = d.M3
    score(built["A1"], as_of=before, tier="potential", scheme=scheme)
    score(built["B1"], as_of=before, tier="guiding", scheme=scheme)
    score(built["A2"], as_of=before, tier="long_tail", scheme=scheme)  # no score later
    answer = selectors.tier_migration(user=ops_user, filters=window(d))
    assert answer["from_as_of"] == before.isoformat()
    assert answer["to_as_of"] == (d.T - dt.timedelta(days=1)).isoformat()
    moved = {(m["from"], m["to"]): m["clients"] for m in answer["matrix"] if m["clients"]}
    assert moved == {("potential", "guiding"): 1, ("guiding", "guiding"): 1}
    assert len(answer["matrix"]) == 16
    drilled = selectors.drill_clients(user=ops_user, filters=window(d), metric="tier_migration",
                                      cell={"from": "potential", "to": "guiding"})
    assert [c.client_no for c in drilled] == ["A1"]


def test_tier_migration_starts_at_the_first_scoring_in_the_range_when_none_is_older(
        built, d, ops_user):
    scheme = the_scheme()
    first = d.M3 + dt.timedelta(days=5)
    score(built["A1"], as_of=first, tier="potential", scheme=scheme)
    score(built["B1"], as_of=first, tier="guiding", scheme=scheme)
    answer = selectors.tier_migration(user=ops_user, filters=window(d))
    assert answer["from_as_of"] == first.isoformat()
    moved = {(m["from"], m["to"]): m["clients"] for m in answer["matrix"] if m["clients"]}
    assert moved == {("potential", "guiding"): 1, ("guiding", "guiding"): 1}


def test_segment_comparison(built, d, ops_user, rm_a):
    persona = Segment.objects.create(code="p_young", kind=SegmentKind.PERSONA,
                                     name_en="Young")
    for number in ("A1", "A4", "B1"):
        SegmentMembership.objects.create(segment=persona, client=built[number])
    rows = selectors.segment_comparison(user=ops_user, filters=window(d))["segments"]
    assert next(r for r in rows if r["code"] == "p_young")["clients"] == 0  # not yet refreshed
    rebuild(full=False)
    rows = selectors.segment_comparison(user=ops_user, filters=window(d))["segments"]
    row = next(r for r in rows if r["code"] == "p_young")
    # revenue in the window: A1 200, A4 300, B1 100; active today: A4 (+ B1 if recent enough)
    expected = {"code": "p_young", "name": "Young", "clients": 3,
                "active_clients": 1 + (1 if (d.T - plus(d.M1, 4)).days <= 29 else 0),
                "aum": 600000.0, "revenue": 600.0, "funded_rate": 1.0}
    assert row == expected
    mine = selectors.segment_comparison(user=rm_a, filters=window(d), codes=["p_young"])
    assert mine["segments"][0]["clients"] == 2
    # Within another segment (a persona: from the pair figures), the same definitions: within a
    # segment of everyone, the same figures; within A4's, A4's.
    everyone = Segment.objects.create(code="everyone", kind=SegmentKind.STATIC, name_en="All")
    only_a4 = Segment.objects.create(code="only_a4", kind=SegmentKind.STATIC, name_en="A4")
    for c in Client.objects.all():
        SegmentMembership.objects.create(segment=everyone, client=c)
    SegmentMembership.objects.create(segment=only_a4, client=built["A4"])
    rebuild(full=False)
    within = selectors.segment_comparison(user=ops_user, filters=window(d, segment="everyone"),
                                          codes=["p_young"])["segments"]
    assert within == [expected]
    within = selectors.segment_comparison(user=ops_user, filters=window(d, segment="only_a4"),
                                          codes=["p_young"])["segments"][0]
    assert (within["clients"], within["revenue"], within["active_clients"]) == (1, 300.0, 1)
    assert SegmentPairFigures.objects.filter(segment_id=only_a4.pk, other_id=persona.pk).exists()
    # Within the persona itself (its own figures) and a static list compared within it (no
    # pair figures: the members' rows): the same definitions again.
    within = selectors.segment_comparison(user=ops_user, filters=window(d, segment="p_young"),
                                          codes=["p_young", "only_a4", "everyone"])["segments"]
    assert [(r["code"], r["clients"], r["revenue"]) for r in within] == [
        ("everyone", 3, 600.0), ("only_a4", 1, 300.0), ("p_young", 3, 600.0)]
    assert within[2] == expected
    # The pair figures and the members' rows agree, filtered by branch and tier too.
    for extra in ({}, {"branch": rm_a.branch.code}, {"tier": "guiding"}):
        filters = window(d, segment="everyone", **extra)
        dims = selectors._dims(ops_user, filters)
        args = (filters.date_from, filters.date_to, min(filters.date_to, d.T))
        paired = selectors._segment_figures(dims, SegmentPairFigures, [persona.pk], *args)
        of_rows = selectors._segment_figures_of_rows(dims, [persona.pk], *args)
        assert {k: paired[persona.pk][k] for k in ("clients", "funded", "aum", "revenue",
                                                     "active")} == of_rows[persona.pk], extra


def test_drill_down_cells(built, d, ops_user, rm_a):
    def numbers(user, metric, **cell):
        return [c.client_no for c in selectors.drill_clients(
            user=user, filters=window(d), metric=metric, cell=cell)]

    assert numbers(ops_user, "new_accounts", period=label(d.M3)) == ["A1", "A2", "B1"]
    assert numbers(ops_user, "retention", cohort=label(d.M3), month="2") == ["B1"]
    assert numbers(ops_user, "funnel", step="repeat_purchase") == ["A1", "A2", "A4"]
    assert numbers(rm_a, "funnel", step="funded") == ["A1", "A2", "A4"]
    assert numbers(ops_user, "active", period=label(d.M2)) == ["A1", "A4"]
    with pytest.raises(ApplicationError) as caught:
        numbers(ops_user, "nonsense", period="x")
    assert "metric" in caught.value.fields
    with pytest.raises(ApplicationError) as caught:
        numbers(ops_user, "funnel", step="flying")
    assert "step" in caught.value.fields
    with pytest.raises(ApplicationError) as caught:
        numbers(ops_user, "retention", cohort=label(d.M3))
    assert "month" in caught.value.fields


# --- filters -------------------------------------------------------------------------------------
def test_filters_name_what_is_wrong(book, rm_a, rm_b, branch_manager, ops_user):
    def fields(params, user=ops_user):
        with pytest.raises(ApplicationError) as caught:
            selectors.filters_from(params, user=user)
        return caught.value.status, set(caught.value.fields)

    assert fields({"from": "2026-13-01", "to": "x"}) == (400, {"from", "to"})
    assert fields({"from": "2026-05-02", "to": "2026-05-01"}) == (400, {"from"})
    assert fields({"branch": "NOPE", "rm": "nobody", "segment": "nope", "tier": "gold"}) == (
        400, {"branch", "rm", "segment", "tier"})
    assert fields({"rm": "rm_b"}, user=rm_a) == (403, {"rm"})
    assert fields({"branch": "BJ01"}, user=branch_manager) == (403, {"branch"})
    assert fields({"rm": "rm_b"}, user=branch_manager) == (403, {"rm"})
    ok = selectors.filters_from({"from": "2026-01-01", "rm": "rm_a", "tier": "guiding"},
                                user=branch_manager)
    assert ok == Filters(date_from=dt.date(2026, 1, 1), rm="rm_a", tier="guiding")


# --- rollups: incremental equals full ------------------------------------------------------------
def snapshot() -> dict:
    tables = {
        "funnel": ClientFunnel.objects.values_list(
            "client_id", "branch_id", "rm_id", "tier", "opened_on", "first_funded_on", "aum",
            "first_purchase_on", "repeat_on"),
        "day": ClientDay.objects.values_list("client_id", "day", "purchases", "amount",
                                             "revenue", "active_delta"),
        "month": ClientMonthActivity.objects.values_list("client_id", "month", "purchases",
                                                         "amount", "revenue"),
        "daily": DailyFigures.objects.values_list(
            "day", "branch_id", "rm_id", "tier", "new_accounts", "new_funded", "new_aum",
            "purchases", "amount", "revenue", "active_delta"),
        "daily_branch": DailyBranchFigures.objects.values_list(
            "day", "branch_id", "new_accounts", "new_funded", "new_aum", "purchases", "amount",
            "revenue", "active_delta"),
        "cohort": CohortActivity.objects.values_list("cohort", "month", "branch_id", "rm_id",
                                                     "tier", "clients"),
        "cohort_branch": CohortBranch.objects.values_list("cohort", "month", "branch_id",
                                                          "clients"),
        "segment_daily": SegmentDailyFigures.objects.values_list(
            "segment_id", "day", "branch_id", "tier", "new_accounts", "new_funded", "new_aum",
            "purchases", "amount", "revenue", "active_delta"),
        "segment_cohort": SegmentCohortActivity.objects.values_list(
            "segment_id", "cohort", "month", "branch_id", "tier", "clients"),
        "segment_pair": SegmentPairFigures.objects.values_list(
            "segment_id", "other_id", "day", "branch_id", "tier", "new_accounts", "new_funded",
            "new_aum", "purchases", "amount", "revenue", "active_delta"),
        "segment_member": SegmentMember.objects.values_list("segment_id", "client_id",
                                                            "persona"),
    }
    return {name: sorted(rows) for name, rows in tables.items()}


def test_an_incremental_refresh_gives_the_tables_of_a_full_rebuild(built, d, rm_a, rm_b):
    young = Segment.objects.create(code="young", kind=SegmentKind.STATIC, name_en="Young")
    other = Segment.objects.create(code="other", kind=SegmentKind.PERSONA, name_en="Other")
    for number in ("A1", "A2", "B1", "O1"):
        SegmentMembership.objects.create(segment=young, client=built[number])
    for number in ("A1", "O1"):
        SegmentMembership.objects.create(segment=other, client=built[number])
    rebuild(full=False)  # the memberships move into the segment figures
    before = snapshot()
    assert len(before["funnel"]) == 6
    assert len(before["segment_member"]) == 6
    assert {row[0] for row in before["segment_daily"]} == {young.pk, other.pk}
    assert {row[:2] for row in before["segment_pair"]} == {(young.pk, other.pk)}
    assert rebuild(full=False).touched == 0
    assert snapshot() == before
    # a day of changes: purchases, a client moving to another RM, a new and a deleted client,
    # a tier change, a first funding, an AUM change
    buy(built["A3"], d.T)
    buy(built["B1"], plus(d.M1, 20))
    Client.objects.filter(pk=built["A2"].pk).update(rm=rm_b, branch=rm_b.branch)
    newcomer = ClientFactory(client_no="N1", opened_on=d.T, rm=rm_a, branch=rm_a.branch)
    buy(newcomer, d.T)
    Client.objects.filter(pk=built["O1"].pk).delete()
    ClientScore.objects.filter(client=built["A1"]).update(tier="potential")
    Client.objects.filter(pk=built["A3"].pk).update(first_funded_on=d.T,
                                                    aum=Decimal("5000"))
    # and the segments: A1 leaves, A3 and the newcomer join (O1 left by being deleted); A2,
    # whose rows change too, also joins another segment
    SegmentMembership.objects.filter(segment=young, client=built["A1"]).delete()
    for client in (built["A3"], newcomer):
        SegmentMembership.objects.create(segment=young, client=client)
    SegmentMembership.objects.create(segment=other, client=built["A2"])
    refresh = rebuild(full=False)
    assert refresh.kind == "incremental"
    assert refresh.touched == 6  # A1, A2, A3, B1, N1, O1
    incremental = snapshot()
    assert {(s, c) for s, c, _persona in incremental["segment_member"]} == {
        (young.pk, built["A2"].pk), (young.pk, built["A3"].pk), (young.pk, built["B1"].pk),
        (young.pk, newcomer.pk), (other.pk, built["A1"].pk), (other.pk, built["A2"].pk)}
    # the pairs: A1 left young (its pair with other went), A2 joined other (a pair came)
    members = incremental["segment_member"]
    pair_members = {(s, o, c) for s, c, _ in members for o, c2, persona in members
                    if c2 == c and persona and o != s}
    assert pair_members == {(young.pk, other.pk, built["A2"].pk)}
    assert {row[:2] for row in incremental["segment_pair"]} == {(young.pk, other.pk)}
    rebuild(full=True)
    assert snapshot() == incremental
    assert incremental != before


def test_the_upgrade_to_pair_figures_fills_them_as_a_rebuild_would(built, d):
    """Migration 0004 flags the stored personas and sums the pair figures from the stored rows
    (frozen SQL): the same tables as the rollup code's full rebuild."""
    upgrade = importlib.import_module("analytics.migrations.0004_segment_pairs")
    young = Segment.objects.create(code="young", kind=SegmentKind.STATIC, name_en="Young")
    persona = Segment.objects.create(code="p_one", kind=SegmentKind.PERSONA, name_en="One")
    for number in ("A1", "A2", "A4", "B1"):
        SegmentMembership.objects.create(segment=young, client=built[number])
    for number in ("A1", "A4", "O1"):
        SegmentMembership.objects.create(segment=persona, client=built[number])
    rebuild(full=True)
    rebuilt = snapshot()
    assert len(rebuilt["segment_pair"]) > 2
    SegmentPairFigures.objects.all().delete()
    SegmentMember.objects.update(persona=False)
    with connection.cursor() as cursor:
        cursor.execute(upgrade.FLAG_PERSONAS)
        cursor.execute(upgrade.FILL_PAIRS)
    assert snapshot() == rebuilt


def test_a_killed_full_rebuild_resumes_where_it_stopped(built, monkeypatch):
    from analytics import services

    expected = snapshot()
    refresh = refresh_start(full=True, queue=False)
    real = services._save_progress
    calls = {"n": 0}

    def dies_after_two_chunks(job, **fields):
        real(job, **fields)
        if "next_client_id" in fields and not fields.get("phase"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt  # the worker is killed: the row stays running

    monkeypatch.setattr(services, "_save_progress", dies_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        refresh_run(refresh_id=refresh.pk, chunk_size=2)
    monkeypatch.setattr(services, "_save_progress", real)
    refresh.refresh_from_db()
    assert refresh.status == "running" and refresh.progress_done == 1  # chunk 2 rolled back
    refresh = refresh_run(refresh_id=refresh.pk, chunk_size=2)
    assert refresh.status == "succeeded"
    assert snapshot() == expected


def test_freshness_and_one_waiting_refresh(book, ops_user):
    assert selectors.freshness()["as_of"] is None
    first = refresh_start(user=ops_user, queue=False)
    assert refresh_start(user=ops_user, queue=False).pk == first.pk  # debounced
    fresh = selectors.freshness()
    assert fresh["running"] is True and fresh["job"]["id"] == first.pk
    refresh_run(refresh_id=first.pk)
    fresh = selectors.freshness()
    assert fresh["running"] is False
    assert fresh["as_of"] == timezone.localdate().isoformat()
    assert fresh["job"]["status"] == "succeeded" and fresh["job"]["percent"] == 100


# --- channels and newsletters (read from the ledger and the outbox) ------------------------------
def contact(client, *, channel, status, day, step=1, source="campaign", source_id=1):
    from outreach.models import Contact

    return Contact.objects.create(client=client, source=source, source_id=source_id, step=step,
                                  channel=channel, status=status, planned_on=day,
                                  at=at(day, 9) if status != "planned" else None)


def test_channels_count_reach_response_and_conversion(built, d, ops_user, rm_a):
    contact(built["A1"], channel="sms", status="delivered", day=plus(d.M3, 8))   # bought M3+9
    contact(built["A2"], channel="sms", status="failed", day=plus(d.M3, 8))     # failed: no
    contact(built["A4"], channel="sms", status="responded", day=plus(d.M2, 1))   # M2+19: 18 d
    contact(built["B1"], channel="sms", status="sent", day=plus(d.M3, 3))        # M1+4: > 30 d
    contact(built["A3"], channel="sms", status="planned", day=d.T)               # not attempted
    contact(built["A1"], channel="phone", status="responded", day=plus(d.M3, 20), step=2)
    contact(built["A1"], channel="email", status="sent", day=d.M3 - dt.timedelta(days=1),
            step=3)                                                              # before `from`
    rows = {r["channel"]: r for r in selectors.channels(user=ops_user,
                                                        filters=window(d))["channels"]}
    assert rows["sms"] == {"channel": "sms", "attempted": 4, "delivered": 2, "responded": 1,
                           "converted": 2}
    assert rows["phone"] == {"channel": "phone", "attempted": 1, "delivered": 1,
                             "responded": 1, "converted": 1}  # A1 bought M2+9
    assert rows["email"]["attempted"] == 0
    mine = {r["channel"]: r for r in selectors.channels(user=rm_a, filters=window(d))["channels"]}
    assert mine["sms"]["attempted"] == 3


@pytest.fixture
def edition(built, d, ops_user):
    """One edition sent on M2+3 to A1 (opened, clicked, rated 5 with a comment), A2 (opened,
    rated 2, unsubscribed), A3 (excluded: no consent) and B1 (rated 4 in an e-mail reply)."""
    from newsletters.models import Edition, EditionStatus, Feedback, Publication, Suppression
    from outreach.models import Delivery

    audience = Segment.objects.create(code="readers", kind=SegmentKind.STATIC,
                                      name_en="Readers")
    publication = Publication.objects.create(name="Weekly", slug="weekly", from_name="Desk",
                                             from_email="desk@broker.example",
                                             audience=audience)
    edition = Edition.objects.create(publication=publication, number=1, subject="本周观点",
                                     status=EditionStatus.SENT, author=ops_user)
    Edition.objects.filter(pk=edition.pk).update(sent_at=at(plus(d.M2, 3)))

    def delivery(client, **extra):
        return Delivery.objects.create(source="newsletter", source_id=edition.pk, client=client,
                                       to_email="x@example.com", message_id=f"<{client.pk}@x>",
                                       token=f"t{client.pk}", **extra)

    opened = at(plus(d.M2, 4))
    one = delivery(built["A1"], status="sent", opened_at=opened, clicked_at=opened, clicks=2)
    two = delivery(built["A2"], status="sent", opened_at=opened)
    delivery(built["A3"], status="excluded", exclusion_reason="no_consent")
    three = delivery(built["B1"], status="sent")
    Feedback.objects.create(delivery=one, rating=5, comment="很好")
    Feedback.objects.create(delivery=two, rating=2)
    Feedback.objects.create(delivery=three, rating=4, comment="谢谢", is_reply=True)
    Suppression.objects.create(client=built["A2"], publication=publication,
                               reason=Suppression.UNSUBSCRIBED, source_delivery=two)
    return Edition.objects.get(pk=edition.pk)


def test_newsletter_engagement_per_edition_counts_the_viewers_clients(edition, d, ops_user,
                                                                      rm_b):
    editions = selectors.newsletters(user=ops_user, filters=window(d))["editions"]
    assert editions == [{
        "edition_id": edition.pk, "publication": "Weekly", "title": "本周观点",
        "sent_at": edition.sent_at.isoformat(),
        "recipients": 3, "opened": 2, "clicked": 1, "rated": 3, "rating_avg": 3.67,
        "comments": 2, "unsubscribes": 1}]
    theirs = selectors.newsletters(user=rm_b, filters=window(d))["editions"][0]
    assert (theirs["recipients"], theirs["opened"], theirs["rated"], theirs["rating_avg"]) == (
        1, 0, 1, 4.0)


def test_selectors_read_in_a_handful_of_queries(built, d, ops_user, rm_a,
                                                django_assert_max_num_queries):
    for user in (ops_user, rm_a):
        with django_assert_max_num_queries(6):
            selectors.kpi_series(user=user, filters=window(d, tier="guiding"), interval="day")
        with django_assert_max_num_queries(6):
            selectors.retention(user=user, filters=window(d))
        with django_assert_max_num_queries(8):
            selectors.funnel(user=user, filters=window(d))


def test_campaigns_overview_without_campaigns(built, d, ops_user):
    assert selectors.campaigns_overview(user=ops_user, filters=window(d))["campaigns"] == []



# --- drill-down of the channel, newsletter and campaign figures ----------------------------------
def drilled(user, filters, metric, **cell) -> list[str]:
    return [c.client_no for c in selectors.drill_clients(user=user, filters=filters,
                                                         metric=metric, cell=cell)]


def cell_error(user, filters, metric, **cell) -> set[str]:
    with pytest.raises(ApplicationError) as caught:
        drilled(user, filters, metric, **cell)
    assert caught.value.status == 400
    return set(caught.value.fields)


@pytest.fixture
def contacts(built, d):
    """The ledger of test_channels_count_reach_response_and_conversion."""
    contact(built["A1"], channel="sms", status="delivered", day=plus(d.M3, 8))   # bought M3+9
    contact(built["A2"], channel="sms", status="failed", day=plus(d.M3, 8))
    contact(built["A4"], channel="sms", status="responded", day=plus(d.M2, 1))   # M2+19
    contact(built["B1"], channel="sms", status="sent", day=plus(d.M3, 3))        # > 30 days
    contact(built["A3"], channel="sms", status="planned", day=d.T)               # not attempted
    contact(built["A1"], channel="phone", status="responded", day=plus(d.M3, 20), step=2)
    contact(built["A1"], channel="email", status="sent", day=d.M3 - dt.timedelta(days=1),
            step=3)                                                              # before `from`
    return built


def test_each_channel_cell_lists_the_clients_it_counts(contacts, d, ops_user, rm_a, rm_b,
                                                       branch_manager):
    expected = {
        ("sms", "attempted"): ["A1", "A2", "A4", "B1"], ("sms", "delivered"): ["A1", "A4"],
        ("sms", "responded"): ["A4"], ("sms", "converted"): ["A1", "A4"],
        ("phone", "attempted"): ["A1"], ("phone", "converted"): ["A1"],
        ("email", "attempted"): [],
    }
    rm_a_book = {"A1", "A2", "A3", "A4", "O1"}
    for user, book in ((ops_user, None), (rm_a, rm_a_book), (rm_b, {"B1"}),
                       (branch_manager, rm_a_book)):
        counts = {r["channel"]: r for r in selectors.channels(user=user,
                                                              filters=window(d))["channels"]}
        for channel, row in counts.items():
            for outcome in selectors.CHANNEL_OUTCOMES:
                clients = drilled(user, window(d), "channel", channel=channel, outcome=outcome)
                # one contact per client and channel here: the list is as long as the count
                assert len(clients) == row[outcome], (user, channel, outcome)
                if user == ops_user and (channel, outcome) in expected:
                    assert clients == expected[(channel, outcome)]
                assert book is None or set(clients) <= book, (user, channel, outcome)
    assert drilled(rm_a, window(d), "channel", channel="sms", outcome="attempted") == [
        "A1", "A2", "A4"]
    assert drilled(ops_user, window(d, branch="BJ01"), "channel", channel="sms",
                   outcome="attempted") == ["B1"]


def test_a_client_contacted_twice_on_a_channel_is_listed_once(contacts, d, ops_user):
    """The bars count contacts (DOMAIN.md), the list shows the clients behind them."""
    contact(contacts["A2"], channel="sms", status="sent", day=plus(d.M3, 30), step=4)
    sms = next(r for r in selectors.channels(user=ops_user, filters=window(d))["channels"]
               if r["channel"] == "sms")
    assert sms["attempted"] == 5
    assert drilled(ops_user, window(d), "channel", channel="sms", outcome="attempted") == [
        "A1", "A2", "A4", "B1"]


def test_a_bad_channel_cell_names_its_key(contacts, d, ops_user):
    assert cell_error(ops_user, window(d), "channel", channel="pigeon",
                      outcome="attempted") == {"channel"}
    assert cell_error(ops_user, window(d), "channel", channel="sms", outcome="sold") == {
        "outcome"}
    assert cell_error(ops_user, window(d), "channel", channel="sms") == {"outcome"}


def test_each_newsletter_cell_lists_the_recipients_it_counts(edition, d, ops_user, rm_a, rm_b):
    expected = {"recipients": ["A1", "A2", "B1"], "opened": ["A1", "A2"], "clicked": ["A1"],
                "rated": ["A1", "A2", "B1"], "commented": ["A1", "B1"], "unsubscribed": ["A2"]}
    counted = {"recipients": "recipients", "opened": "opened", "clicked": "clicked",
               "rated": "rated", "commented": "comments", "unsubscribed": "unsubscribes"}
    assert set(expected) == set(selectors.NEWSLETTER_OUTCOMES)
    for user, book in ((ops_user, None), (rm_a, {"A1", "A2", "A3", "A4", "O1"}),
                       (rm_b, {"B1"})):
        row = selectors.newsletters(user=user, filters=window(d))["editions"][0]
        for outcome, numbers in expected.items():
            clients = drilled(user, window(d), "newsletter", edition=str(edition.pk),
                              outcome=outcome)
            assert len(clients) == row[counted[outcome]], (user, outcome)
            assert clients == [n for n in numbers if book is None or n in book], (user, outcome)
    assert drilled(rm_b, window(d), "newsletter", edition=str(edition.pk),
                   outcome="recipients") == ["B1"]


def test_a_bad_newsletter_cell_names_its_key(edition, d, ops_user):
    for bad in ("abc", "²", "-1", str(edition.pk + 1000), "9" * 30):
        assert cell_error(ops_user, window(d), "newsletter", edition=bad,
                          outcome="opened") == {"edition"}, bad
    # sent before the date range: not one of the page's editions
    assert cell_error(ops_user, Filters(date_from=plus(d.M2, 4), date_to=d.T), "newsletter",
                      edition=str(edition.pk), outcome="opened") == {"edition"}
    assert cell_error(ops_user, window(d), "newsletter", edition=str(edition.pk),
                      outcome="forwarded") == {"outcome"}


@pytest.fixture
def campaign_book(built, d, ops_user):
    """Launched M2+1: A1 and A2 in arm A, B1 in arm B, A4 the holdout, A3 excluded. A1 got an
    SMS, A2's failed, B1 responded. Bought the offered bond within 30 days: A1 (M2+5) and A4
    (M2+3); B1 only on M2+40; O1, not a member, on M2+2."""
    from tests.analytics.conftest import launched_campaign

    bond = ProductFactory(product_code="BOND01")
    for number, day in (("A1", plus(d.M2, 5)), ("A4", plus(d.M2, 3)), ("B1", plus(d.M2, 40)),
                        ("O1", plus(d.M2, 2))):
        buy(built[number], day, product=bond)

    def make(code, goal):
        return launched_campaign(
            code=code, author=ops_user, launched_at=at(plus(d.M2, 1), 9), goal=goal,
            arms={built["A1"]: "A", built["A2"]: "A", built["B1"]: "B", built["A4"]: "control",
                  built["A3"]: "excluded:no_consent"},
            contacts={built["A1"]: ("sms", "sent"), built["A2"]: ("sms", "failed"),
                      built["B1"]: ("sms", "responded")})

    return {goal: make(f"autumn-{goal}", goal) for goal in ("conversion", "funded", "response")}


@pytest.mark.parametrize("goal, converted", [
    ("conversion", ["A1", "A4"]),   # bought the offered bond in the window
    ("funded", ["A4"]),             # first funded M2+10, within 30 days of launch
    ("response", ["B1"]),           # the one response
])
def test_each_campaign_cell_lists_the_members_its_results_count(campaign_book, d, ops_user,
                                                                rm_a, rm_b, branch_manager,
                                                                goal, converted):
    from campaigns.selectors import campaign_results

    campaign = campaign_book[goal]
    expected = {"members": ["A1", "A2", "A4", "B1"], "contacted": ["A1", "B1"],
                "converted": converted}
    results = campaign_results(campaign=campaign)
    for outcome, numbers in expected.items():
        assert sum(arm[outcome] for arm in results["arms"]) == len(numbers), outcome
    for user, book in ((ops_user, None), (rm_a, {"A1", "A2", "A3", "A4"}), (rm_b, {"B1"}),
                       (branch_manager, {"A1", "A2", "A3", "A4"})):
        row = next(r for r in selectors.campaigns_overview(user=user, filters=window(d))[
            "campaigns"] if r["code"] == campaign.code)
        for outcome, numbers in expected.items():
            clients = drilled(user, window(d), "campaign", code=campaign.code, outcome=outcome)
            assert clients == [n for n in numbers if book is None or n in book], (user, outcome)
            assert row[outcome] == len(clients), (user, outcome)
    # a branch filter: the scoped path for ops too
    row = next(r for r in selectors.campaigns_overview(
        user=ops_user, filters=window(d, branch="BJ01"))["campaigns"]
        if r["code"] == campaign.code)
    assert (row["members"], row["contacted"]) == (1, 1)
    assert drilled(ops_user, window(d, branch="BJ01"), "campaign", code=campaign.code,
                   outcome="members") == ["B1"]


def test_a_bad_campaign_cell_names_its_key(campaign_book, d, ops_user):
    code = campaign_book["conversion"].code
    assert cell_error(ops_user, window(d), "campaign", code="no-such",
                      outcome="members") == {"code"}
    # launched before the date range: not one of the page's campaigns
    assert cell_error(ops_user, Filters(date_from=plus(d.M2, 2), date_to=d.T), "campaign",
                      code=code, outcome="members") == {"code"}
    assert cell_error(ops_user, window(d), "campaign", code=code, outcome="revenue") == {
        "outcome"}
    assert cell_error(ops_user, window(d), "campaign", outcome="members") == {"code"}
