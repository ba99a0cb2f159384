"""Approval covers everything the client will see and everything that decides who gets it.

After compliance approves, a change to the edition, its publication's audience, sender or
reply-to, a picked product's name or risk level, or the audience's rule puts the edition back
to draft (audited) and it never goes out as approved; whatever path the change took, sending
recomputes the approval hash and refuses. Also: the author never approves, only compliance
edits the forbidden phrases, and every transition is in the audit log.
"""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone, translation
from rest_framework.test import APIClient

from clients.models import Product
from clients.services import product_upsert
from core.errors import ApplicationError
from core.models import AuditAction, AuditLog, Role
from newsletters import dispatch, services
from newsletters.approval import CHANGE_LABELS
from newsletters.models import (
    Edition,
    EditionSection,
    EditionStatus,
    Publication,
)
from outreach.models import ForbiddenPhrase
from segments.models import Segment, SegmentMembership
from segments.services import segment_create, segment_update
from tests.factories import ClientFactory, ProductFactory, staff
from tests.newsletters import make_publication, standard_sections

S = EditionStatus
RENAMED = "保本稳赚 零风险"


@pytest.fixture
def readers(rm_a):
    segment = Segment.objects.create(code="nl-freeze-readers", kind="static",
                                     name_en="HNW readers", name_zh="高净值读者")
    clients = [ClientFactory(rm=rm_a, branch=rm_a.branch, email=f"reader{i}@client.example")
               for i in range(3)]
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, client=c) for c in clients])
    return segment


@pytest.fixture
def product(db):
    return ProductFactory(product_code="FRZ001", name="稳健债券1号", risk_level="R2")


@pytest.fixture
def publication(ops_user, readers):
    return make_publication(actor=ops_user, segment_code=readers.code)


@pytest.fixture
def approved(publication, product, ops_user, compliance_user):
    edition = services.edition_create(
        publication=publication, subject="Weekly insight", preheader="This week",
        sections=standard_sections(pick_codes=[product.product_code]), author=ops_user)
    services.edition_submit(edition=edition, actor=ops_user)
    return services.edition_approve(edition=edition, actor=compliance_user)


@pytest.fixture
def api_as(db):
    def _as(user) -> APIClient:
        api = APIClient()
        api.force_authenticate(user)
        return api

    return _as


def revocations(edition) -> list[dict]:
    return list(AuditLog.objects.filter(action=AuditAction.APPROVAL_REVOKED,
                                        object_type="edition", object_id=str(edition.pk))
                .values_list("detail", flat=True))


def assert_never_sent(edition, ops_user, django_capture_on_commit_callbacks):
    with pytest.raises(ApplicationError), django_capture_on_commit_callbacks(execute=True):
        services.edition_send_now(edition=edition, actor=ops_user)
    edition.refresh_from_db()
    assert edition.status == S.DRAFT
    assert not edition.deliveries.all().exists()
    assert mail.outbox == []


# --- changes after approval: back to draft at once ----------------------------------------

def change_audience(edition, ops_user, product):
    other = Segment.objects.create(code="nl-freeze-everyone", kind="static", name_en="All")
    services.publication_update(publication=edition.publication, actor=ops_user, audience=other)


def change_sender_name(edition, ops_user, product):
    services.publication_update(publication=edition.publication, actor=ops_user,
                                from_name="Wealth Desk")


def change_sender_address(edition, ops_user, product):
    services.publication_update(publication=edition.publication, actor=ops_user,
                                from_email="desk@other.example")


def change_reply_to(edition, ops_user, product):
    services.publication_update(publication=edition.publication, actor=ops_user,
                                reply_to="attacker@evil.example")


def rename_product(edition, ops_user, product):  # as the product API and one import row do
    product_upsert(product_code=product.product_code, name=RENAMED,
                   product_type=product.product_type, risk_level=product.risk_level)


def rerate_product(edition, ops_user, product):
    product_upsert(product_code=product.product_code, name=product.name,
                   product_type=product.product_type, risk_level="R5")


def edit_edition_text(edition, ops_user, product):
    sections = standard_sections(pick_codes=[product.product_code])
    sections[0]["body"] = "Markets **calm**, and now a new paragraph."
    services.edition_update(edition=edition, actor=ops_user, sections=sections)


def edit_section_settings(edition, ops_user, product):
    services.edition_update(edition=edition, actor=ops_user,
                            sections=standard_sections(pick_codes=[product.product_code],
                                                       top_n=20))


CHANGES = {
    "audience": (change_audience, "audience"),
    "sender_name": (change_sender_name, "sender_name"),
    "sender_address": (change_sender_address, "sender_address"),
    "reply_to": (change_reply_to, "reply_to"),
    "product_rename": (rename_product, "products.FRZ001"),
    "product_risk": (rerate_product, "products.FRZ001"),
    "edition_text": (edit_edition_text, "sections"),
    "section_setting": (edit_section_settings, "sections"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_after_approval_sends_the_edition_back_to_draft_and_it_never_goes_out(
        change, approved, ops_user, product, django_capture_on_commit_callbacks):
    make_change, changed = CHANGES[change]

    make_change(approved, ops_user, product)

    approved.refresh_from_db()
    assert approved.status == S.DRAFT
    assert approved.approved_hash == "" and approved.approved_by is None
    [detail] = revocations(approved)
    assert changed in detail["changed"] and detail["was"] == S.APPROVED
    assert detail["title"] == "#1 Weekly insight" and detail["publication"]
    assert approved.events.last().to_status == S.DRAFT
    assert_never_sent(approved, ops_user, django_capture_on_commit_callbacks)


def test_a_change_to_a_scheduled_edition_unschedules_it(approved, ops_user, product):
    services.edition_schedule(edition=approved, actor=ops_user,
                              at=timezone.now() + dt.timedelta(hours=1))
    rename_product(approved, ops_user, product)
    approved.refresh_from_db()
    assert approved.status == S.DRAFT and approved.scheduled_at is None
    assert revocations(approved)[0]["was"] == S.SCHEDULED
    result = dispatch.editions_due(now=timezone.now() + dt.timedelta(hours=2))
    assert result["started"] == [] and mail.outbox == []


def test_a_change_of_the_audience_rule_or_a_rule_it_uses_revokes(ops_user, compliance_user,
                                                                  product, publication):
    inner = segment_create(code="nl-freeze-shanghai", kind="rule", name_en="Shanghai",
                           rule={"field": "city", "op": "eq", "value": "上海"}, refresh=False)
    outer = segment_create(code="nl-freeze-rule", kind="rule", name_en="Rule readers",
                           rule={"field": "segment", "op": "eq", "value": inner.code},
                           refresh=False)
    services.publication_update(publication=publication, actor=ops_user, audience=outer)
    edition = services.edition_create(publication=publication, subject="Rule audience",
                                      sections=[{"kind": "editorial", "body": "Hello."}],
                                      author=ops_user)
    services.edition_submit(edition=edition, actor=ops_user)
    services.edition_approve(edition=edition, actor=compliance_user)

    segment_update(segment=inner, rule={"field": "city", "op": "eq", "value": "北京"},
                   refresh=False)

    edition.refresh_from_db()
    assert edition.status == S.DRAFT
    assert revocations(edition)[0]["changed"] == [f"audience_rules.{inner.code}"]


def test_a_segment_refresh_or_rename_keeps_the_approval(approved, readers):
    segment_update(segment=readers, name_en="HNW readers (renamed)", refresh=False)
    readers.size, readers.refreshed_at = 3, timezone.now()
    readers.save(update_fields=["size", "refreshed_at", "updated_at"])
    approved.refresh_from_db()
    assert approved.status == S.APPROVED and revocations(approved) == []


def test_an_unrelated_product_or_an_unchanged_save_keeps_the_approval(approved, ops_user,
                                                                     product):
    other = ProductFactory(product_code="OTHER1")
    product_upsert(product_code=other.product_code, name="Renamed", product_type="fund",
                   risk_level="R4")
    product_upsert(product_code=product.product_code, name=product.name,
                   product_type=product.product_type, risk_level=product.risk_level)
    services.publication_update(publication=approved.publication, actor=ops_user,
                                description="Internal note only", cadence="monthly")
    services.edition_update(edition=approved, actor=ops_user, subject=approved.subject)
    approved.refresh_from_db()
    assert approved.status == S.APPROVED and revocations(approved) == []


def test_an_unchanged_approved_edition_still_sends(approved, ops_user, fast_settings,
                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.edition_send_now(edition=approved, actor=ops_user)
    approved.refresh_from_db()
    assert approved.status == S.SENT
    assert sorted(m.to[0] for m in mail.outbox) == [
        f"reader{i}@client.example" for i in range(3)]
    assert "稳健债券1号" in mail.outbox[0].alternatives[0][0]


@pytest.fixture
def fast_settings(settings):
    settings.NEWSLETTER_RATE_PER_SECOND = 0
    settings.NEWSLETTER_RATE_PER_HOUR = 0
    return settings


# --- changes no signal sees: the send path checks the hash and refuses ----------------------

def bulk_rename_product(edition, product):  # an import writes products in bulk, no signal
    Product.objects.filter(pk=product.pk).update(name=RENAMED)


def bulk_rerate_product(edition, product):
    Product.objects.filter(pk=product.pk).update(risk_level="R5")


def raw_reply_to(edition, product):
    Publication.objects.filter(pk=edition.publication_id).update(reply_to="x@evil.example")


def raw_audience(edition, product):
    other = Segment.objects.create(code="nl-freeze-raw", kind="static", name_en="Raw")
    Publication.objects.filter(pk=edition.publication_id).update(audience=other)


def raw_section_text(edition, product):
    EditionSection.objects.filter(edition=edition, position=1).update(body="保本 guaranteed")


def raw_subject(edition, product):
    Edition.objects.filter(pk=edition.pk).update(subject="A different subject")


SILENT = {
    "product_rename": (bulk_rename_product, "products.FRZ001"),
    "product_risk": (bulk_rerate_product, "products.FRZ001"),
    "reply_to": (raw_reply_to, "reply_to"),
    "audience": (raw_audience, "audience"),
    "section_text": (raw_section_text, "sections"),
    "subject": (raw_subject, "subject"),
}


@pytest.mark.parametrize("change", list(SILENT))
def test_send_now_recomputes_the_hash_and_refuses_a_changed_edition(
        change, approved, ops_user, product, django_capture_on_commit_callbacks):
    make_change, changed = SILENT[change]
    make_change(approved, product)
    assert Edition.objects.get(pk=approved.pk).status == S.APPROVED  # nobody noticed yet

    with pytest.raises(ApplicationError) as info, \
            django_capture_on_commit_callbacks(execute=True):
        services.edition_send_now(edition=approved, actor=ops_user)

    assert info.value.code == "approval_revoked" and info.value.status == 409
    assert changed in info.value.fields["approval"]
    approved.refresh_from_db()
    assert approved.status == S.DRAFT
    assert changed in revocations(approved)[0]["changed"]
    assert not approved.deliveries.all().exists() and mail.outbox == []


def test_scheduling_a_changed_edition_is_refused(approved, ops_user, product):
    bulk_rerate_product(approved, product)
    with pytest.raises(ApplicationError) as info:
        services.edition_schedule(edition=approved, actor=ops_user,
                                  at=timezone.now() + dt.timedelta(hours=1))
    assert info.value.code == "approval_revoked"
    approved.refresh_from_db()
    assert approved.status == S.DRAFT and approved.scheduled_at is None


def test_the_beat_never_starts_a_scheduled_edition_that_changed(
        approved, ops_user, product, django_capture_on_commit_callbacks):
    services.edition_schedule(edition=approved, actor=ops_user,
                              at=timezone.now() + dt.timedelta(minutes=5))
    bulk_rename_product(approved, product)

    with django_capture_on_commit_callbacks(execute=True):
        result = dispatch.editions_due(now=timezone.now() + dt.timedelta(minutes=6))

    assert result["started"] == [] and result["revoked"] == [approved.pk]
    approved.refresh_from_db()
    assert approved.status == S.DRAFT
    assert not approved.deliveries.all().exists() and mail.outbox == []


def test_the_dispatcher_itself_refuses_and_writes_nothing(approved, product):
    raw_reply_to(approved, product)
    with pytest.raises(ApplicationError) as info:
        dispatch.edition_dispatch_start(edition=approved, actor=None)
    assert info.value.code == "approval_revoked"
    assert not approved.deliveries.all().exists()


def test_the_api_answers_409_and_the_edition_is_back_to_draft(approved, ops_user, product,
                                                              api_as):
    bulk_rename_product(approved, product)
    response = api_as(ops_user).post(f"/api/v1/editions/{approved.pk}/send/")
    assert response.status_code == 409
    body = response.json()["error"]
    assert body["code"] == "approval_revoked" and body["fields"]["approval"] == [
        "products.FRZ001"]
    assert api_as(ops_user).get(f"/api/v1/editions/{approved.pk}/").json()["status"] == "draft"


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_edition_page_says_why_approval_was_withdrawn(language, approved, ops_user, product,
                                                         logged_in):
    change_reply_to(approved, ops_user, product)
    page = logged_in(ops_user).get(f"/newsletters/editions/{approved.pk}/",
                                   HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert 'id="approval-revoked"' in page
    with translation.override(language):
        assert str(CHANGE_LABELS["reply_to"]) in page
    if language == "en":
        assert "Approval withdrawn: changed reply-to address." in page


def test_compliance_sees_the_picked_products_by_name_and_risk_level(
        publication, product, ops_user, compliance_user, logged_in):
    edition = services.edition_create(
        publication=publication, subject="Picks", author=ops_user,
        sections=standard_sections(pick_codes=[product.product_code]))
    services.edition_submit(edition=edition, actor=ops_user)
    page = logged_in(compliance_user).get(f"/newsletters/editions/{edition.pk}/",
                                          HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<li data-code="FRZ001"><strong>稳健债券1号</strong>' in page
    assert "R2 medium-low" in page
    assert 'id="approval-covers"' in page and "replies@broker.example" in page


# --- the author never approves ---------------------------------------------------------------

def test_the_author_never_approves_even_when_they_work_in_compliance(publication, ops_user,
                                                                     api_as):
    author = staff(Role.COMPLIANCE, username="author_in_compliance")
    edition = services.edition_create(publication=publication, subject="Own", author=ops_user,
                                      sections=[{"kind": "editorial", "body": "Text."}])
    services.edition_submit(edition=edition, actor=ops_user)
    Edition.objects.filter(pk=edition.pk).update(author=author)
    response = api_as(author).post(f"/api/v1/editions/{edition.pk}/approve/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "own_edition"
    edition.refresh_from_db()
    assert edition.status == S.SUBMITTED and edition.approved_hash == ""


# --- the forbidden phrases: compliance only ----------------------------------------------------

def test_ops_cannot_change_the_forbidden_phrases_and_are_audited(ops_user, compliance_user,
                                                                 logged_in):
    phrase = services.forbidden_phrase_add(phrase="稳稳的幸福", actor=compliance_user)
    http = logged_in(ops_user)
    page = http.get("/newsletters/phrases/").content.decode()
    assert "稳稳的幸福" in page and 'id="phrase-add-form"' not in page

    assert http.post("/newsletters/phrases/", {"phrase": "保证收益"}).status_code == 403
    assert http.post(f"/newsletters/phrases/{phrase.pk}/remove/").status_code == 403
    with pytest.raises(ApplicationError) as info:
        services.forbidden_phrase_add(phrase="保证收益", actor=ops_user)

    assert info.value.status == 403
    assert not ForbiddenPhrase.objects.filter(phrase="保证收益").exists()
    assert ForbiddenPhrase.objects.filter(pk=phrase.pk).exists()
    denied = AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=ops_user)
    assert denied.count() == 3
    assert not AuditLog.objects.filter(action=AuditAction.PHRASES_CHANGED, actor=ops_user)


def test_compliance_changes_to_the_phrases_are_audited_with_the_phrases(compliance_user,
                                                                       logged_in):
    http = logged_in(compliance_user)
    assert http.post("/newsletters/phrases/", {"phrase": "保证收益"}).status_code == 302
    phrase = ForbiddenPhrase.objects.get(phrase="保证收益")
    assert http.post(f"/newsletters/phrases/{phrase.pk}/remove/").status_code == 302
    rows = list(AuditLog.objects.filter(action=AuditAction.PHRASES_CHANGED)
                .order_by("id").values_list("actor__username", "detail"))
    assert rows == [("compliance", {"added": ["保证收益"]}),
                    ("compliance", {"removed": ["保证收益"]})]


def test_an_admin_change_in_the_django_admin_is_audited(admin_user_, logged_in):
    http = logged_in(admin_user_)
    response = http.post("/admin/outreach/forbiddenphrase/add/", {"phrase": "稳赚不赔"})
    assert response.status_code == 302
    assert AuditLog.objects.get(action=AuditAction.PHRASES_CHANGED).detail == {
        "added": ["稳赚不赔"]}


# --- every transition is in the audit log -----------------------------------------------------

def edition_actions(edition) -> list[str]:
    return list(AuditLog.objects.filter(object_type="edition", object_id=str(edition.pk))
                .order_by("id").values_list("action", flat=True))


def test_every_transition_writes_its_audit_row(publication, product, ops_user, compliance_user,
                                               rm_a, django_capture_on_commit_callbacks):
    ops_user.email = "ops@broker.example"
    ops_user.save()
    edition = services.edition_create(
        publication=publication, subject="Audited", author=ops_user,
        sections=standard_sections(pick_codes=[product.product_code]))
    services.edition_submit(edition=edition, actor=ops_user)
    services.edition_reject(edition=edition, actor=compliance_user, comment="Cite sources.")
    services.edition_submit(edition=edition, actor=ops_user)
    services.edition_approve(edition=edition, actor=compliance_user)
    services.edition_send_test(edition=edition, actor=ops_user,
                               client=ClientFactory(rm=rm_a, branch=rm_a.branch))
    services.edition_schedule(edition=edition, actor=ops_user,
                              at=timezone.now() + dt.timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=False):
        services.edition_send_now(edition=edition, actor=ops_user)
    services.edition_pause(edition=edition, actor=ops_user)
    with django_capture_on_commit_callbacks(execute=False):
        services.edition_resume(edition=edition, actor=ops_user)
    services.edition_cancel(edition=edition, actor=ops_user)

    assert edition_actions(edition) == [
        AuditAction.SUBMITTED, AuditAction.REJECTED, AuditAction.SUBMITTED,
        AuditAction.APPROVED, AuditAction.TEST_SENT, AuditAction.SCHEDULED, AuditAction.SENT,
        AuditAction.DISPATCH_CONTROLLED, AuditAction.DISPATCH_CONTROLLED,
        AuditAction.DISPATCH_CONTROLLED]
    rows = AuditLog.objects.filter(object_type="edition", object_id=str(edition.pk))
    assert all(r.detail["title"] == "#1 Audited" and r.detail["publication"] ==
               "HNW Weekly Insight" for r in rows)
    by_action = {r.action: r for r in rows.order_by("id")}
    assert by_action[AuditAction.REJECTED].detail["comment"] == "Cite sources."
    assert by_action[AuditAction.REJECTED].actor == compliance_user
    assert by_action[AuditAction.SENT].detail["recipients"] == 3
    assert by_action[AuditAction.TEST_SENT].detail["to"] == "ops@broker.example"
    assert [r.detail["control"] for r in rows.filter(
        action=AuditAction.DISPATCH_CONTROLLED).order_by("id")] == ["pause", "resume", "cancel"]


def test_a_scheduled_edition_started_by_the_beat_is_audited_as_sent(
        approved, ops_user, django_capture_on_commit_callbacks):
    services.edition_schedule(edition=approved, actor=ops_user,
                              at=timezone.now() + dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=False):
        dispatch.editions_due(now=timezone.now() + dt.timedelta(minutes=6))
    sent = AuditLog.objects.get(action=AuditAction.SENT, object_id=str(approved.pk))
    assert sent.actor is None and sent.detail["recipients"] == 3


def test_the_editor_of_an_approved_edition_warns_that_saving_a_change_withdraws_approval(
        approved, ops_user, logged_in):
    page = logged_in(ops_user).get(f"/newsletters/editions/{approved.pk}/edit/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="approval-held-warning"' in body and 'id="edition-submit"' not in body
