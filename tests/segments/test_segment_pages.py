"""Segment pages: the list, the rule builder and its live count, static lists, a segment's page,
the persona overview and the "Segments & personas" card of the client 360 page."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from core.models import AuditAction, AuditLog, Role
from segments.models import Segment, SegmentMembership, SegmentRuleVersion
from segments.services import segment_refresh_run, segment_refresh_start
from tests.factories import ClientFactory, HoldingFactory, ProductFactory

EXAMPLE_RULE = {"all": [
    {"field": "age", "op": "between", "value": [60, 69]},
    {"field": "risk_level", "op": "in", "value": ["C1", "C2"]},
    {"field": "holds_product_type", "op": "eq", "value": "fixed_income"},
    {"any": [{"field": "days_since_last_purchase", "op": "gt", "value": 90},
             {"field": "days_since_last_purchase", "op": "is_null", "value": True}]},
]}


def born_aged(age: int) -> dt.date:
    today = timezone.localdate()
    return today.replace(year=today.year - age) - dt.timedelta(days=30)


def refresh(*codes: str) -> None:
    for code in codes:
        run = segment_refresh_start(segment=Segment.objects.get(code=code), trigger="command",
                                    queue=False)
        segment_refresh_run(refresh_id=run.pk)


@pytest.fixture
def example_book(rm_a, rm_b):
    """Three clients who match the example rule (two of rm_a, one of rm_b) and three who don't."""
    bond = ProductFactory(product_code="FI001", product_type="fixed_income")
    stock = ProductFactory(product_code="EQ001", product_type="stock", risk_level="R4")
    today = timezone.localdate()

    def client(no, rm, *, age=65, risk="C2", product=bond, last=None, **kw):
        c = ClientFactory(client_no=no, name=kw.pop("name", f"客户{no}"), rm=rm, branch=rm.branch,
                          birth_date=born_aged(age), risk_level=risk, last_purchase_on=last, **kw)
        HoldingFactory(client=c, product=product, as_of=today)
        return c

    return {
        "match": [client("S0000001", rm_a), client("S0000002", rm_a, risk="C1",
                                                    last=today - dt.timedelta(days=120)),
                  client("S0000003", rm_b)],
        "miss": [client("S0000004", rm_a, age=55), client("S0000005", rm_a, risk="C4"),
                 client("S0000006", rm_a, product=stock),
                 client("S0000007", rm_a, last=today - dt.timedelta(days=10))],
    }


@pytest.fixture
def example_segment(example_book, ops_user):
    from segments.services import segment_create

    segment = segment_create(code="silver_fixed_income", name_zh="银发固收沉睡客户",
                             name_en="Silver fixed-income sleepers", kind="rule",
                             rule=EXAMPLE_RULE, actor=ops_user, refresh=False)
    refresh(segment.code)
    segment.refresh_from_db()
    return segment


# --- the list ----------------------------------------------------------------------------------

def test_the_list_groups_segments_by_kind_and_offers_building_to_ops(logged_in, ops_user):
    body = logged_in(ops_user).get("/segments/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for kind in ("persona", "tier", "service_level", "rule", "static"):
        assert f'id="kind-{kind}"' in body
    assert "silver_haired" in body and "tier_guiding" in body and "level_hnw" in body
    assert 'id="new-segment"' in body and "refresh-button" in body


def test_an_rm_sees_the_list_without_builder_actions(logged_in, rm_a):
    response = logged_in(rm_a).get("/segments/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="new-segment"' not in body and "refresh-button" not in body


@pytest.mark.parametrize("url", ["/segments/new/", "/segments/new/static/",
                                 "/segments/silver_haired/edit/"])
def test_builder_pages_are_for_ops_and_admin_only_and_denials_are_audited(logged_in, rm_a, url):
    response = logged_in(rm_a).get(url)
    assert response.status_code == 403
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, object_type="segment",
                                   actor=rm_a).exists()


def test_refresh_is_refused_to_an_rm(logged_in, rm_a):
    response = logged_in(rm_a).post("/segments/silver_haired/refresh/")
    assert response.status_code == 403
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, object_id="silver_haired")


def test_a_user_without_a_role_is_denied(logged_in, db):
    from tests.factories import UserFactory

    nobody = UserFactory(username="nobody", role=None) if "role" in UserFactory._meta.declarations \
        else UserFactory(username="nobody")
    nobody.groups.clear()
    nobody._cached_role = None
    assert logged_in(nobody).get("/segments/").status_code == 403


def test_unknown_codes_and_formats_are_404(logged_in, ops_user):
    web = logged_in(ops_user)
    assert web.get("/segments/no-such-thing/").status_code == 404
    assert web.get("/segments/no-such-thing/edit/").status_code == 404
    assert web.get("/segments/silver_haired/export/pdf/").status_code == 404
    assert web.post("/segments/no-such-thing/refresh/").status_code == 404


# --- the builder -------------------------------------------------------------------------------

def test_saving_the_builder_creates_a_segment_and_each_save_a_new_version(logged_in, ops_user,
                                                                          example_book):
    web = logged_in(ops_user)
    page = web.get("/segments/new/", HTTP_ACCEPT_LANGUAGE="en")
    meta = page.context["builder"]
    fields = {f["key"]: f for f in meta["fields"]}
    assert "between" in fields["age"]["ops"] and "contains" not in fields["age"]["ops"]
    assert fields["holds_product_type"]["kind"] == "product_type"
    assert ["fixed_income", "Fixed income"] in fields["holds_product_type"]["choices"]
    assert any(code == "silver_haired" for code, _label in fields["segment"]["choices"])

    response = web.post("/segments/new/", {
        "code": "silver_fixed_income", "name_zh": "银发固收", "name_en": "Silver fixed income",
        "rule": json.dumps(EXAMPLE_RULE)})
    assert response.status_code == 302
    assert response["Location"] == "/segments/silver_fixed_income/"
    segment = Segment.objects.get(code="silver_fixed_income")
    assert segment.kind == "rule" and segment.rule == EXAMPLE_RULE and segment.rule_version == 1

    narrower = {"all": EXAMPLE_RULE["all"][:2]}
    response = web.post("/segments/silver_fixed_income/edit/", {
        "name_zh": "银发固收", "name_en": "Silver fixed income", "rule": json.dumps(narrower)})
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.rule_version == 2
    assert list(SegmentRuleVersion.objects.filter(segment=segment)
                .values_list("version", flat=True)) == [2, 1]


def test_an_invalid_rule_is_explained_at_the_offending_condition(logged_in, ops_user):
    bad = {"all": [{"field": "age", "op": "between", "value": [60, 69]},
                   {"field": "risk_level", "op": "in", "value": ["C9"]}]}
    web = logged_in(ops_user)
    response = web.post("/segments/new/", {"code": "bad_rule", "name_en": "Bad",
                                           "rule": json.dumps(bad)})
    assert response.status_code == 400
    assert response.context["rule_error"]["node"] == "/all/1/value/0"
    assert not Segment.objects.filter(code="bad_rule").exists()

    preview = web.post("/segments/preview/", {"rule": json.dumps(bad)})
    assert preview.status_code == 200
    assert 'data-rule-error-node="/all/1/value/0"' in preview.content.decode()

    empty = web.post("/segments/preview/", {"rule": json.dumps({"all": []})})
    assert 'data-rule-error-node="/all"' in empty.content.decode()
    garbage = web.post("/segments/preview/", {"rule": "{not json"})
    assert garbage.status_code == 200 and 'data-rule-error-node=""' in garbage.content.decode()


def test_builder_form_errors_are_messages_not_500s(logged_in, ops_user):
    web = logged_in(ops_user)
    response = web.post("/segments/new/", {"code": "silver_haired", "name_en": "Dup",
                                           "rule": json.dumps(EXAMPLE_RULE)})
    assert response.status_code == 400 and "code" in response.context["form"].errors
    response = web.post("/segments/new/", {"code": "Bad Code!", "rule": "[]"})
    assert response.status_code == 400


def test_the_preview_counts_and_samples_only_the_clients_the_viewer_may_see(
        logged_in, ops_user, rm_a, example_book):
    payload = {"rule": json.dumps(EXAMPLE_RULE)}
    as_ops = logged_in(ops_user).post("/segments/preview/", payload).content.decode()
    assert 'data-count="3"' in as_ops
    assert all(c.client_no in as_ops for c in example_book["match"])
    as_rm = logged_in(rm_a).post("/segments/preview/", payload).content.decode()
    assert 'data-count="2"' in as_rm and "S0000003" not in as_rm


# --- static lists ------------------------------------------------------------------------------

def test_a_static_list_with_unknown_client_numbers_saves_nothing(logged_in, ops_user,
                                                                 client_of_a):
    response = logged_in(ops_user).post("/segments/new/static/", {
        "code": "vip_dinner", "name_zh": "VIP晚宴", "client_nos": "A0000001\nZ404\nZ405"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Z404" in body and "Z405" in body
    assert not Segment.objects.filter(code="vip_dinner").exists()


def test_a_static_list_from_an_uploaded_csv(logged_in, ops_user, client_of_a, clients_of_b):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("list.csv", "\ufeffclient_no\nA0000001\nB0000000\n".encode(),
                                content_type="text/csv")
    response = logged_in(ops_user).post("/segments/new/static/", {
        "code": "vip_dinner", "name_en": "VIP dinner", "file": upload})
    assert response.status_code == 302
    segment = Segment.objects.get(code="vip_dinner")
    assert set(SegmentMembership.objects.filter(segment=segment)
               .values_list("client__client_no", flat=True)) == {"A0000001", "B0000000"}


def test_ticked_clients_of_the_client_list_go_to_a_new_static_list(logged_in, ops_user,
                                                                   client_of_a, clients_of_b):
    web = logged_in(ops_user)
    assert 'form="static-add-form"' in web.get("/clients/").content.decode()
    response = web.post("/segments/static/add/", {"client_no": ["A0000001", "B0000001"],
                                                  "new_name": "回访名单"})
    assert response.status_code == 302
    segment = Segment.objects.get(kind="static", name_zh="回访名单")
    assert segment.size == 2
    again = web.post("/segments/static/add/", {"client_no": ["B0000002"],
                                               "segment": segment.pk})
    assert again.status_code == 302
    segment.refresh_from_db()
    assert segment.size == 3


# --- a segment's page --------------------------------------------------------------------------

def test_the_segment_page_reads_the_rule_and_lists_members_scoped(logged_in, ops_user, rm_a,
                                                                  example_book, example_segment):
    ops_page = logged_in(ops_user).get("/segments/silver_fixed_income/",
                                       HTTP_ACCEPT_LANGUAGE="en")
    body = ops_page.content.decode()
    assert "Age between 60 and 69 AND Risk level is one of C1 conservative, C2 cautious" in body
    assert 'data-size="3"' in body
    assert {c.client_no for c in ops_page.context["page"].rows} == {"S0000001", "S0000002",
                                                                    "S0000003"}
    assert "+3 joined" in body and 'id="segment-history-data"' in body
    rm_page = logged_in(rm_a).get("/segments/silver_fixed_income/")
    assert {c.client_no for c in rm_page.context["page"].rows} == {"S0000001", "S0000002"}
    assert "S0000003" not in rm_page.content.decode()
    # a member list masks every phone, for ops and for the members' own RM alike
    for page, members in ((ops_page, example_book["match"]), (rm_page, example_book["match"][:2])):
        shown = page.content.decode()
        for member in members:
            assert f"{member.phone[:3]}****{member.phone[-4:]}" in shown
            assert member.phone not in shown


def test_the_segment_page_in_chinese(logged_in, ops_user, example_segment):
    body = logged_in(ops_user).get("/segments/silver_fixed_income/",
                                   HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "年龄 介于 60 和 69 之间" in body and "银发固收沉睡客户" in body


def test_refresh_from_the_page_runs_and_reports_done(logged_in, ops_user, example_segment,
                                                     django_capture_on_commit_callbacks):
    web = logged_in(ops_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post("/segments/silver_fixed_income/refresh/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-status="queued"' in body and 'hx-trigger="every 1s"' in body
    run = example_segment.refreshes.first()
    polled = web.get(f"/segments/silver_fixed_income/refresh/{run.pk}/", HTTP_HX_REQUEST="true")
    assert 'data-status="succeeded"' in polled.content.decode()
    assert "every 1s" not in polled.content.decode()


# --- the persona overview ----------------------------------------------------------------------

@pytest.fixture
def persona_book(rm_a, rm_b):
    from clients.scoring.models import Tier
    from tests.clients.test_scoring_pages import buy  # noqa: F401 - shared helper

    def c(no, rm, age, gender="F", occupation="employee", aum="100000"):
        return ClientFactory(client_no=no, rm=rm, branch=rm.branch, birth_date=born_aged(age),
                             gender=gender, occupation=occupation, aum=Decimal(aum))

    clients = [c("P1", rm_a, 65, aum="300000"), c("P2", rm_a, 30, aum="700000"),
               c("P3", rm_a, 20, occupation="student", aum="1000"),
               c("P4", rm_b, 62, gender="M", occupation="business_owner", aum="9000000"),
               c("P5", rm_b, 40, gender="M")]
    refresh(*Segment.objects.filter(kind="persona").values_list("code", flat=True))
    return clients, Tier


def hand_count(user_filter):
    """size and AUM per persona code, by walking memberships in Python."""
    out = {}
    for m in SegmentMembership.objects.filter(segment__kind="persona").select_related(
            "segment", "client"):
        if user_filter(m.client):
            size, aum = out.get(m.segment.code, (0, Decimal(0)))
            out[m.segment.code] = (size + 1, aum + m.client.aum)
    return out


def test_the_persona_overview_figures_match_a_hand_count(logged_in, ops_user, rm_a,
                                                         persona_book):
    for user, keep in ((ops_user, lambda c: True), (rm_a, lambda c: c.rm_id == rm_a.pk)):
        response = logged_in(user).get("/segments/personas/", HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200
        expected = hand_count(keep)
        rows = {r["segment"].code: r for r in response.context["rows"]}
        assert len(rows) == 8
        for code, row in rows.items():
            size, aum = expected.get(code, (0, Decimal(0)))
            assert row["size"] == size, code
            assert Decimal(row["aum"]) == aum, code
            assert sum(t["n"] for t in row["tiers"]) == size
        names = [r["segment"].code for r in response.context["rows"]]
        matrix = {(names[i], names[j]): n for i, j, n in response.context["chart"]["matrix"]}
        for code in names:
            assert matrix[(code, code)] == expected.get(code, (0, 0))[0]
    assert rows["silver_haired"]["size"] == 1  # rm_a's book: P1 only
    both = logged_in(ops_user).get("/segments/personas/").context
    names = [r["segment"].code for r in both["rows"]]
    matrix = {(names[i], names[j]): n for i, j, n in both["chart"]["matrix"]}
    assert matrix[("silver_haired", "sme_owner")] == 1  # P4 is in both
    assert matrix[("silver_haired", "high_net_worth")] == 1


def test_the_persona_overview_shows_playbooks_and_the_heatmap_data(logged_in, compliance_user,
                                                                   persona_book):
    body = logged_in(compliance_user).get("/segments/personas/",
                                          HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="persona-overlap-data"' in body and "Community events" in body


# --- the client 360 card -----------------------------------------------------------------------

@pytest.mark.parametrize("language,expected", [
    ("en", ["Segments & personas", "Young-old silver-haired", "Community events",
            "Fixed income", "Persona"]),
    ("zh-hans", ["初老银发", "社区活动、老年大学。", "固收", "特色客群"]),
])
def test_the_360_card_shows_the_personas_with_their_playbook(logged_in, rm_a, language,
                                                             expected):
    client = ClientFactory(client_no="A0000099", rm=rm_a, branch=rm_a.branch,
                           birth_date=born_aged(64))
    refresh("silver_haired", "level_mass")
    body = logged_in(rm_a).get(f"/clients/{client.client_no}/",
                               HTTP_ACCEPT_LANGUAGE=language).content.decode()
    for text in expected:
        assert text in body, text
    assert 'data-persona="silver_haired"' in body and 'data-code="level_mass"' in body


def test_segment_pages_for_each_role(logged_in, rm_a, branch_manager, ops_user, compliance_user,
                                     admin_user_, example_segment):
    for user in (rm_a, branch_manager, ops_user, compliance_user, admin_user_):
        web = logged_in(user)
        for url in ("/segments/", "/segments/personas/", "/segments/silver_fixed_income/",
                    "/segments/silver_haired/", "/segments/tier_guiding/"):
            assert web.get(url).status_code == 200, (user.username, url)
    assert Role.RM  # roles come from the fixtures above
