"""Segments: seeded personas, the services (create, versions, static lists, delete, cycles,
preview scoped to the user) and the set-based refresh (newcomers in, leavers out, counts,
samples, versions), plus the refresh after a scoring run."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from clients.scoring.services import scoring_run_start
from core.errors import ApplicationError
from segments.models import (
    MembershipChange,
    RefreshStatus,
    Segment,
    SegmentMembership,
    SegmentRefresh,
    SegmentRuleVersion,
)
from segments.rules import RuleError
from segments.services import (
    segment_create,
    segment_delete,
    segment_preview,
    segment_refresh_run,
    segment_refresh_start,
    segment_static_set,
    segment_update,
    segments_refresh_all,
)
from tests.factories import ClientFactory, ProductFactory, TransactionFactory

PERSONAS = ["silver_haired", "stay_at_home_mother", "gen_z", "college_student",
            "independent_woman", "sme_owner", "tech_executive", "high_net_worth"]


def cond(field, op, value):
    return {"field": field, "op": op, "value": value}


def born(age: int) -> dt.date:
    today = timezone.localdate()
    return today.replace(year=today.year - age) - dt.timedelta(days=30)


def member_nos(segment) -> set[str]:
    return set(SegmentMembership.objects.filter(segment=segment)
               .values_list("client__client_no", flat=True))


def test_personas_tiers_and_levels_are_seeded_with_rules_and_playbooks(db):
    seeded = {s.code: s for s in Segment.objects.filter(is_system=True)}
    assert set(PERSONAS) <= seeded.keys()
    assert {"tier_guiding", "tier_development", "tier_potential", "tier_long_tail",
            "level_mass", "level_affluent", "level_hnw"} <= seeded.keys()
    silver = seeded["silver_haired"]
    assert silver.name_zh == "初老银发" and silver.name_en == "Young-old silver-haired"
    assert silver.rule == cond("age", "between", [60, 69]) and silver.rule_version == 1
    assert "老年大学" in silver.playbook["zh-hans"]["channels"]
    assert "universities for the elderly" in silver.playbook["en"]["channels"]
    assert silver.playbook["product_types"] == ["fixed_income", "money_market"]
    for code in PERSONAS:
        s = seeded[code]
        assert s.kind == "persona" and s.name_zh and s.name_en
        assert all(s.playbook[lang][k] for lang in ("zh-hans", "en")
                   for k in ("traits", "channels", "service"))
        assert SegmentRuleVersion.objects.get(segment=s, version=1).rule == s.rule
    assert seeded["high_net_worth"].rule == cond("service_level", "eq", "hnw")
    assert seeded["tier_guiding"].rule == cond("tier", "eq", "guiding")
    assert seeded["level_affluent"].rule == cond("service_level", "eq", "affluent")


def test_the_seeded_persona_rules_select_their_clients(db, refreshed):
    ClientFactory(client_no="silver", birth_date=born(65), occupation="retired")
    ClientFactory(client_no="mother", gender="F", occupation="homemaker", has_children=True,
                  birth_date=born(35))
    ClientFactory(client_no="student", occupation="student", birth_date=born(20), gender="M")
    ClientFactory(client_no="techexec", occupation="executive", industry="technology",
                  gender="M", birth_date=born(45), aum=Decimal("6000000"))
    ClientFactory(client_no="woman", gender="F", occupation="professional",
                  birth_date=born(30), industry="finance")
    expected = {"silver_haired": {"silver"}, "stay_at_home_mother": {"mother"},
                "college_student": {"student"}, "tech_executive": {"techexec"},
                "high_net_worth": {"techexec"}, "independent_woman": {"woman"},
                "gen_z": {"student", "woman"}, "sme_owner": set()}
    for code, nos in expected.items():
        segment = Segment.objects.get(code=code)
        refreshed(segment)
        assert member_nos(segment) == nos, code
        assert segment.size == len(nos)


@pytest.fixture
def ops(ops_user):
    return ops_user


def test_refresh_inserts_newcomers_deletes_leavers_and_records_counts_and_samples(
        db, ops, refreshed):
    a = ClientFactory(client_no="a", city="上海")
    ClientFactory(client_no="b", city="上海")
    ClientFactory(client_no="c", city="北京")
    segment = segment_create(code="sh", name_en="Shanghai", rule=cond("city", "eq", "上海"),
                             actor=ops, refresh=False)
    first = refreshed(segment)
    assert first.status == RefreshStatus.SUCCEEDED
    assert (first.joined, first.left, first.size) == (2, 0, 2)
    assert member_nos(segment) == {"a", "b"} and segment.size == 2
    assert set(first.changes.values_list("client__client_no", "change")) == {
        ("a", "joined"), ("b", "joined")}

    a.city = "北京"
    a.save()
    ClientFactory(client_no="d", city="上海")
    second = refreshed(segment)
    assert (second.joined, second.left, second.size) == (1, 1, 2)
    assert member_nos(segment) == {"b", "d"}
    assert set(second.changes.values_list("client__client_no", "change")) == {
        ("d", "joined"), ("a", "left")}

    third = refreshed(segment)
    assert (third.joined, third.left, third.size) == (0, 0, 2)
    assert not third.changes.exists()


def test_refresh_in_small_chunks_gives_the_same_membership(db, ops, refreshed, settings):
    settings.SEGMENT_REFRESH_CHUNK_CLIENTS = 3
    clients = [ClientFactory(aum=Decimal(i * 100000)) for i in range(20)]
    segment = segment_create(code="rich", name_en="Rich", rule=cond("aum", "gte", 1000000),
                             actor=ops, refresh=False)
    refresh = refreshed(segment)
    assert member_nos(segment) == {c.client_no for c in clients[10:]}
    assert refresh.progress_total == refresh.progress_done > 3
    assert refresh.joined == 10


def test_samples_are_bounded(db, ops, refreshed, monkeypatch):
    monkeypatch.setattr("segments.services.SAMPLE_MAX", 3)
    for _ in range(8):
        ClientFactory(city="杭州")
    segment = segment_create(code="hz", name_en="Hangzhou", rule=cond("city", "eq", "杭州"),
                             actor=ops, refresh=False)
    refresh = refreshed(segment)
    assert refresh.joined == 8
    assert MembershipChange.objects.filter(refresh=refresh).count() == 3


def test_a_rule_edit_is_a_new_version_and_members_record_it(db, ops, refreshed):
    ClientFactory(client_no="young", birth_date=born(30))
    ClientFactory(client_no="old", birth_date=born(65))
    segment = segment_create(code="grown", name_en="Grown-ups", rule=cond("age", "gte", 18),
                             actor=ops, refresh=False)
    refreshed(segment)
    assert set(SegmentMembership.objects.filter(segment=segment)
               .values_list("rule_version", flat=True)) == {1}
    segment = segment_update(segment=segment, rule=cond("age", "gte", 60), actor=ops,
                             refresh=False)
    assert segment.rule_version == 2
    assert list(segment.versions.values_list("version", flat=True)) == [2, 1]
    refresh = refreshed(segment)
    assert refresh.rule_version == 2 and (refresh.joined, refresh.left) == (0, 1)
    assert list(SegmentMembership.objects.filter(segment=segment)
                .values_list("client__client_no", "rule_version")) == [("old", 2)]


def test_saving_a_rule_queues_a_refresh_after_commit(db, ops, django_capture_on_commit_callbacks):
    ClientFactory(client_no="x", city="深圳")
    with django_capture_on_commit_callbacks(execute=True):
        segment = segment_create(code="sz", name_en="Shenzhen", rule=cond("city", "eq", "深圳"),
                                 actor=ops)
    segment.refresh_from_db()
    assert segment.size == 1 and segment.refreshed_at is not None


def test_tier_and_level_rules_are_fixed_persona_rules_are_editable(db, ops):
    with pytest.raises(ApplicationError) as err:
        segment_update(segment=Segment.objects.get(code="tier_guiding"),
                       rule=cond("tier", "eq", "potential"), actor=ops)
    assert err.value.code == "rule_fixed"
    with pytest.raises(ApplicationError):
        segment_update(segment=Segment.objects.get(code="level_hnw"),
                       rule=cond("aum", "gte", 1), actor=ops)
    persona = segment_update(segment=Segment.objects.get(code="silver_haired"),
                             rule=cond("age", "between", [60, 70]), actor=ops, refresh=False)
    assert persona.rule_version == 2


def test_cycles_between_segments_are_refused(db, ops):
    segment_create(code="a", name_en="A", rule=cond("age", "gte", 18), actor=ops, refresh=False)
    b = segment_create(code="b", name_en="B", rule=cond("segment", "eq", "a"), actor=ops,
                       refresh=False)
    a = Segment.objects.get(code="a")
    with pytest.raises(RuleError) as err:
        segment_update(segment=a, rule={"all": [cond("age", "gte", 18),
                                                cond("segment", "eq", "b")]}, actor=ops)
    assert err.value.node == "/all/1/value"
    with pytest.raises(RuleError) as err:
        segment_update(segment=a, rule=cond("segment", "in", ["silver_haired", "a"]), actor=ops)
    assert err.value.node == "/value/1"
    c = segment_create(code="c", name_en="C", rule=cond("segment", "eq", "b"), actor=ops,
                       refresh=False)
    with pytest.raises(RuleError) as err:
        segment_update(segment=a, rule=cond("segment", "eq", "c"), actor=ops)
    assert err.value.node == "/value"
    assert Segment.objects.get(code="a").rule_version == 1
    assert b.rule_version == c.rule_version == 1


def test_deleting_a_referenced_or_system_segment_is_refused(db, ops):
    a = segment_create(code="a", name_en="A", rule=cond("age", "gte", 18), actor=ops,
                       refresh=False)
    segment_create(code="b", name_en="B", rule={"not": cond("segment", "eq", "a")}, actor=ops,
                   refresh=False)
    with pytest.raises(ApplicationError) as err:
        segment_delete(segment=a)
    assert err.value.code == "segment_in_use" and "b" in err.value.message
    with pytest.raises(ApplicationError) as err:
        segment_delete(segment=Segment.objects.get(code="gen_z"))
    assert err.value.code == "system_segment"
    segment_delete(segment=Segment.objects.get(code="b"))
    segment_delete(segment=a)
    assert not Segment.objects.filter(code__in=["a", "b"]).exists()


def test_static_lists_validate_every_client_no_and_write_nothing_on_error(db, ops, refreshed):
    ClientFactory(client_no="s1")
    ClientFactory(client_no="s2")
    with pytest.raises(ApplicationError) as err:
        segment_create(code="list", name_en="List", kind="static",
                       client_nos=["s1", "zz9", "zz8"], actor=ops)
    assert err.value.fields["client_nos"] == ["zz9", "zz8"]
    assert not Segment.objects.filter(code="list").exists()
    segment = segment_create(code="list", name_en="List", kind="static", client_nos=["s1"],
                             actor=ops)
    assert member_nos(segment) == {"s1"} and segment.size == 1
    segment_static_set(segment=segment, client_nos=["s2", "s2"], actor=ops)
    assert member_nos(segment) == {"s2"}
    refresh = refreshed(segment)
    assert refresh.size == 1 and member_nos(segment) == {"s2"}


def test_a_second_active_refresh_is_refused(db, ops):
    segment = Segment.objects.get(code="gen_z")
    segment_refresh_start(segment=segment, actor=ops)
    with pytest.raises(ApplicationError) as err:
        segment_refresh_start(segment=segment, actor=ops)
    assert err.value.status == 409


def test_a_finished_refresh_is_not_run_twice(db, ops, refreshed):
    ClientFactory(birth_date=born(65))
    refresh = refreshed(Segment.objects.get(code="silver_haired"))
    finished_at = refresh.finished_at
    segment_refresh_run(refresh_id=refresh.pk)
    refresh.refresh_from_db()
    assert refresh.finished_at == finished_at and refresh.joined == 1


def test_refresh_all_runs_referenced_segments_before_their_users(
        db, ops, django_capture_on_commit_callbacks):
    ClientFactory(client_no="old_sh", birth_date=born(65), city="上海")
    ClientFactory(client_no="old_bj", birth_date=born(65), city="北京")
    segment_create(code="z_old_sh", name_en="Old in Shanghai", actor=ops, refresh=False,
                   rule={"all": [cond("segment", "eq", "silver_haired"),
                                 cond("city", "eq", "上海")]})
    with django_capture_on_commit_callbacks(execute=True):
        refreshes = segments_refresh_all(trigger="page")
    order = [r.segment.code for r in refreshes]
    assert order.index("silver_haired") < order.index("z_old_sh")
    assert member_nos(Segment.objects.get(code="z_old_sh")) == {"old_sh"}
    assert all(r.status == "succeeded" for r in
               SegmentRefresh.objects.filter(pk__in=[r.pk for r in refreshes]))


def test_tier_segments_refresh_after_a_scoring_run(db, django_capture_on_commit_callbacks):
    product = ProductFactory(product_type="fund")
    as_of = timezone.localdate() - dt.timedelta(days=1)
    at = timezone.make_aware(dt.datetime.combine(as_of, dt.time(10)))
    frequent = ClientFactory(client_no="frequent")
    for i in range(30 * 12):
        TransactionFactory(client=frequent, product=product, traded_at=at - dt.timedelta(
            hours=20 * i), amount=Decimal("100"))
    ClientFactory(client_no="idle")
    with django_capture_on_commit_callbacks(execute=True):
        scoring_run_start(as_of=as_of, trigger="page")
    assert member_nos(Segment.objects.get(code="tier_guiding")) == {"frequent"}
    assert member_nos(Segment.objects.get(code="tier_long_tail")) == {"idle"}
    refresh = SegmentRefresh.objects.filter(segment__code="tier_guiding").first()
    assert refresh.trigger == "scoring" and refresh.status == "succeeded"


def test_preview_counts_only_what_the_user_may_see(db, rm_a, ops, client_of_a,
                                                   clients_of_b):
    rule = cond("city", "eq", "上海")
    assert segment_preview(rule=rule, user=rm_a) == {"count": 1, "sample": ["A0000001"]}
    everyone = segment_preview(rule=rule, user=ops)
    assert everyone["count"] == 4 and len(everyone["sample"]) == 4


def test_a_chunked_refresh_with_joiners_and_leavers_in_every_chunk_counts_exactly(
        db, ops, refreshed, settings):
    settings.SEGMENT_REFRESH_CHUNK_CLIENTS = 4
    clients = [ClientFactory(client_no=f"c{i:02}", city="上海" if i % 3 else "北京")
               for i in range(15)]
    segment = segment_create(code="shc", name_en="Shanghai", rule=cond("city", "eq", "上海"),
                             actor=ops, refresh=False)
    first = refreshed(segment)
    assert (first.joined, first.left, first.size) == (10, 0, 10)
    for client in clients[::2]:  # every other client swaps city
        client.city = "北京" if client.city == "上海" else "上海"
        client.save()
    expected = {c.client_no for c in clients if c.city == "上海"}
    second = refreshed(segment)
    assert member_nos(segment) == expected
    assert second.size == segment.size == len(expected)
    assert second.joined == 3 and second.left == 5
    assert set(second.changes.values_list("client__client_no", flat=True)) == {
        c.client_no for c in clients[::2]}
    unchanged = refreshed(segment)
    assert (unchanged.joined, unchanged.left, unchanged.size) == (0, 0, len(expected))
    assert not unchanged.changes.exists()


def test_a_refresh_where_nothing_changed_leaves_the_members_untouched(db, ops, refreshed):
    ClientFactory(client_no="a", city="上海")
    segment = segment_create(code="sh", name_en="Shanghai", rule=cond("city", "eq", "上海"),
                             actor=ops, refresh=False)
    refreshed(segment)
    before = list(SegmentMembership.objects.filter(segment=segment)
                  .values_list("pk", "since", "rule_version"))
    again = refreshed(segment)
    assert (again.joined, again.left, again.size) == (0, 0, 1)
    assert list(SegmentMembership.objects.filter(segment=segment)
                .values_list("pk", "since", "rule_version")) == before


def test_a_rule_that_can_match_nobody_empties_the_segment(db, ops, refreshed):
    ClientFactory(client_no="a", city="上海")
    segment = segment_create(code="sh", name_en="Shanghai", rule=cond("city", "eq", "上海"),
                             actor=ops, refresh=False)
    refreshed(segment)
    segment = segment_update(segment=segment, rule=cond("holds_product", "eq", "NOPE"),
                             actor=ops, refresh=False)
    refresh = refreshed(segment)
    assert (refresh.joined, refresh.left, refresh.size) == (0, 1, 0)
    assert member_nos(segment) == set()


def test_tier_segments_follow_the_scores_the_pointer_named_when_the_refresh_began(
        db, refreshed):
    from clients.scoring.models import ClientScore, ScoringCurrent, ScoringScheme

    scheme = ScoringScheme.objects.order_by("-version").first()
    client = ClientFactory(client_no="scored")
    ClientFactory(client_no="never")
    day = timezone.localdate()
    for as_of, tier in ((day - dt.timedelta(days=1), "guiding"), (day, "long_tail")):
        ClientScore.objects.create(client=client, scheme=scheme, as_of=as_of, amount=0,
                                   purchases=0, frequency=0, benefit=0, amount_score=1,
                                   frequency_score=1, benefit_score=1, total_score=3,
                                   tier=tier)
    guiding = Segment.objects.get(code="tier_guiding")
    long_tail = Segment.objects.get(code="tier_long_tail")
    assert refreshed(guiding).size == 0  # no current scores yet: nobody has a tier
    ScoringCurrent.objects.create(id=1, as_of=day - dt.timedelta(days=1), scheme=scheme)
    assert refreshed(guiding).size == 1 and refreshed(long_tail).size == 0
    ScoringCurrent.objects.filter(pk=1).update(as_of=day)
    assert (refreshed(guiding).left, refreshed(long_tail).joined) == (1, 1)
    assert member_nos(long_tail) == {"scored"}


def test_on_postgresql_each_chunk_is_one_statement_returning_only_counts(
        db, ops, refreshed, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("the single-statement chunk is PostgreSQL's")
    settings.SEGMENT_REFRESH_CHUNK_CLIENTS = 3
    for _ in range(9):
        ClientFactory(city="上海")
    segment = segment_create(code="sh", name_en="Shanghai", rule=cond("city", "eq", "上海"),
                             actor=ops, refresh=False)
    with CaptureQueriesContext(connection) as ctx:
        refresh = refreshed(segment)
    writes = [q["sql"] for q in ctx.captured_queries
              if "INSERT INTO segments_segmentmembership" in q["sql"]]
    assert len(writes) == refresh.progress_total > 1
    assert all(sql.startswith("WITH m AS MATERIALIZED") and "LIMIT" in sql for sql in writes)
    assert (refresh.joined, refresh.size) == (9, 9)
    assert MembershipChange.objects.filter(refresh=refresh).count() == 9


def _running(segment, *, heartbeat_minutes_ago: int) -> SegmentRefresh:
    """A refresh a worker started and stopped tending `heartbeat_minutes_ago` minutes ago."""
    at = timezone.now() - dt.timedelta(minutes=heartbeat_minutes_ago)
    refresh = SegmentRefresh.objects.create(segment=segment, trigger="page",
                                            rule_version=segment.rule_version)
    SegmentRefresh.objects.filter(pk=refresh.pk).update(status=RefreshStatus.RUNNING,
                                                        started_at=at, heartbeat_at=at)
    return refresh


def test_a_refresh_left_running_by_a_dead_worker_no_longer_blocks_the_segment(
        db, ops, settings, django_capture_on_commit_callbacks):
    settings.SEGMENT_REFRESH_STALE_SECONDS = 600
    ClientFactory(birth_date=born(22))
    segment = Segment.objects.get(code="gen_z")
    alive = _running(segment, heartbeat_minutes_ago=2)
    with pytest.raises(ApplicationError) as err:  # a slow but living worker is left alone
        segment_refresh_start(segment=segment, actor=ops)
    assert err.value.status == 409
    SegmentRefresh.objects.filter(pk=alive.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(minutes=11))
    with django_capture_on_commit_callbacks(execute=True):
        fresh = segment_refresh_start(segment=segment, actor=ops)
    dead = SegmentRefresh.objects.get(pk=alive.pk)
    assert dead.status == RefreshStatus.FAILED and "stopped without finishing" in dead.error
    fresh.refresh_from_db()
    assert fresh.status == RefreshStatus.SUCCEEDED and fresh.heartbeat_at is not None
    assert segment.memberships.count() == 1


def test_the_nightly_refresh_takes_over_segments_whose_refresh_died(
        db, ops, settings, django_capture_on_commit_callbacks):
    settings.SEGMENT_REFRESH_STALE_SECONDS = 600
    ClientFactory(birth_date=born(65))
    silver = Segment.objects.get(code="silver_haired")
    dead = _running(silver, heartbeat_minutes_ago=60)
    with django_capture_on_commit_callbacks(execute=True):
        refreshes = segments_refresh_all(trigger="beat")
    assert silver.pk in {r.segment_id for r in refreshes}
    assert SegmentRefresh.objects.get(pk=dead.pk).status == RefreshStatus.FAILED
    assert silver.memberships.count() == 1


def test_a_stale_refresh_reads_in_both_languages(db, ops_user, settings, client):
    from django.utils import translation

    settings.SEGMENT_REFRESH_STALE_SECONDS = 600
    segment = Segment.objects.get(code="gen_z")
    dead = _running(segment, heartbeat_minutes_ago=60)
    from segments.services import segment_refreshes_fail_stale

    assert segment_refreshes_fail_stale() == 1
    dead.refresh_from_db()
    from django.template.loader import render_to_string

    for language, expected in (("en", "stopped without finishing"), ("zh-hans", "重新刷新")):
        with translation.override(language):
            html = render_to_string("segments/_refresh_status.html", {"refresh": dead})
        assert expected in html, (language, html)
