"""Newsletter staff pages: who may do what, the editor, preview, approval and statistics."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from core.models import AuditAction, AuditLog, Role
from newsletters import services
from newsletters.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    ExclusionReason,
    Feedback,
    Publication,
)
from segments.models import Segment, SegmentMembership
from tests.factories import ClientFactory, HoldingFactory, ProductFactory, staff

EDITORIAL = {"kind": "editorial", "title": "本周观点", "body": "市场**震荡**，保持耐心。",
             "data": {}}


@pytest.fixture
def hnw_segment(db):
    segment = Segment.objects.filter(code="high_net_worth").first()
    if segment is None:
        segment = Segment.objects.create(code="high_net_worth", kind="persona",
                                         name_zh="高净值", name_en="High-net-worth")
    return segment


@pytest.fixture
def products(db):
    return {
        "bond": ProductFactory(product_code="P10001", name="稳健债券1号", risk_level="R2",
                               product_type="fixed_income"),
        "equity": ProductFactory(product_code="P10002", name="成长股票基金", risk_level="R4",
                                 product_type="fund"),
    }


@pytest.fixture
def hnw_client(hnw_segment, rm_a, products):
    client = ClientFactory(client_no="H0000001", name="钱多多", rm=rm_a, branch=rm_a.branch,
                           risk_level="C3", email="qian@example.com")
    HoldingFactory(client=client, product=products["bond"], market_value=Decimal("880000"))
    SegmentMembership.objects.create(segment=hnw_segment, client=client)
    return client


@pytest.fixture
def publication(hnw_segment, ops_user):
    return services.publication_create(actor=ops_user, name="HNW Weekly Insight",
                                       slug="hnw-weekly", audience=hnw_segment,
                                       from_name="研究所", from_email="research@example.com")


@pytest.fixture
def draft(publication, ops_user, products):
    return services.edition_create(
        publication=publication, subject="第一期", preheader="本周要点", author=ops_user,
        sections=[EDITORIAL,
                  {"kind": "holdings", "title": "您的持仓", "body": "",
                   "data": {"intro": "", "top_n": 5,
                            "notes_by_product": {"P10001": "久期适中。"}, "notes_by_type": {}}},
                  {"kind": "picks", "title": "精选", "body": "",
                   "data": {"product_codes": ["P10001", "P10002"], "notes": {}}}])


@pytest.fixture
def submitted(draft, ops_user):
    return services.edition_submit(edition=draft, actor=ops_user)


def editor_post(**overrides):
    data = {"subject": "第二期", "preheader": "", "sections-count": "1",
            "s-0-kind": "editorial", "s-0-title": "观点", "s-0-body": "正文"}
    data.update(overrides)
    return data


# --- who may do what -------------------------------------------------------------------------
def test_ops_compose_pages_open(logged_in, ops_user, publication, draft):
    http = logged_in(ops_user)
    for url in ("/newsletters/", "/newsletters/publications/new/",
                f"/newsletters/publications/{publication.slug}/",
                f"/newsletters/publications/{publication.slug}/editions/new/",
                f"/newsletters/editions/{draft.pk}/edit/", f"/newsletters/editions/{draft.pk}/"):
        assert http.get(url).status_code == 200, url


@pytest.mark.parametrize("role", [Role.RM, Role.BRANCH_MANAGER])
def test_rms_get_403_on_every_newsletter_page_and_it_is_audited(logged_in, role, branch,
                                                                 publication, draft):
    user = staff(role, username=f"u_{role}", branch=branch)
    http = logged_in(user)
    for url in ("/newsletters/", f"/newsletters/publications/{publication.slug}/",
                f"/newsletters/editions/{draft.pk}/", f"/newsletters/editions/{draft.pk}/edit/",
                f"/newsletters/editions/{draft.pk}/preview/",
                f"/newsletters/editions/{draft.pk}/stats/", "/newsletters/approvals/"):
        assert http.get(url).status_code == 403, url
    assert http.post(f"/newsletters/editions/{draft.pk}/submit/").status_code == 403
    draft.refresh_from_db()
    assert draft.status == EditionStatus.DRAFT
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=user).count() >= 8


def test_compliance_may_read_but_not_compose(logged_in, compliance_user, publication, draft):
    http = logged_in(compliance_user)
    assert http.get("/newsletters/").status_code == 200
    assert http.get(f"/newsletters/editions/{draft.pk}/").status_code == 200
    assert http.get("/newsletters/publications/new/").status_code == 403
    assert http.get(f"/newsletters/editions/{draft.pk}/edit/").status_code == 403


def test_nav_shows_newsletters_to_ops_and_my_tasks_to_rms(logged_in, ops_user, rm_a):
    body = logged_in(ops_user).get("/clients/").content.decode()
    assert "/newsletters/" in body
    body = logged_in(rm_a).get("/clients/").content.decode()
    assert "/newsletters/" not in body and 'id="nav-tasks"' in body


# --- publications ----------------------------------------------------------------------------
def test_new_publication_suggests_the_hnw_segment_and_explains_tracking(logged_in, ops_user,
                                                                        hnw_segment):
    response = logged_in(ops_user).get("/newsletters/publications/new/")
    assert response.context["form"].initial["audience"] == hnw_segment.pk
    assert "tracking-note" in response.content.decode()


def test_publication_create_and_bad_input_is_a_400_with_messages(logged_in, ops_user,
                                                                 hnw_segment):
    http = logged_in(ops_user)
    data = {"name": "季度策略", "slug": "quarterly", "audience": hnw_segment.pk,
            "sender_mode": "rm", "from_name": "财富管理部", "from_email": "wm@example.com",
            "reply_to": "", "cadence": "quarterly", "tracking_enabled": "on"}
    response = http.post("/newsletters/publications/new/", data)
    assert response.status_code == 302
    pub = Publication.objects.get(slug="quarterly")
    assert pub.tracking_enabled and pub.sender_mode == "rm" and pub.created_by == ops_user
    bad = http.post("/newsletters/publications/new/", {**data, "from_email": "nope",
                                                       "slug": "quarterly", "audience": "999"})
    assert bad.status_code == 400
    assert set(bad.context["form"].errors) >= {"from_email", "slug", "audience"}


# --- the editor ------------------------------------------------------------------------------
def test_editor_creates_an_edition_with_ordered_sections(logged_in, ops_user, publication,
                                                         products):
    http = logged_in(ops_user)
    data = editor_post(**{
        "sections-count": "3",
        "s-1-kind": "picks", "s-1-picks-count": "2", "s-1-picks-0-code": "P10001",
        "s-1-picks-0-note": "稳健之选",
        "s-2-kind": "research", "s-2-report_title": "2026 展望", "s-2-summary": "要点",
        "s-2-url": "https://research.example.com/r/1"})
    response = http.post(f"/newsletters/publications/{publication.slug}/editions/new/", data)
    assert response.status_code == 302
    edition = Edition.objects.get(subject="第二期")
    kinds = list(edition.sections.order_by("position").values_list("kind", flat=True))
    assert kinds == ["editorial", "picks", "research"]
    picks = edition.sections.get(kind="picks")
    assert picks.data == {"product_codes": ["P10001"], "notes": {"P10001": "稳健之选"}}


def test_editor_shows_errors_next_to_the_field_and_section(logged_in, ops_user, publication,
                                                           products):
    http = logged_in(ops_user)
    data = editor_post(**{"subject": "", "s-0-body": "", "sections-count": "3",
                          "s-1-kind": "research", "s-1-report_title": "", "s-1-url": "ftp://x",
                          "s-2-kind": "holdings", "s-2-top_n": "99",
                          "s-2-products-count": "1", "s-2-products-0-code": "NOPE",
                          "s-2-products-0-note": "x"})
    response = http.post(f"/newsletters/publications/{publication.slug}/editions/new/", data)
    assert response.status_code == 400
    editor = response.context["editor"]
    assert "subject" in editor.errors
    assert set(editor.blocks[0].errors) == {"body"}
    assert set(editor.blocks[1].errors) == {"report_title", "url"}
    assert set(editor.blocks[2].errors) == {"top_n", "products"}
    body = response.content.decode()
    assert 'data-field="report_title"' in body and "NOPE" in body
    assert not Edition.objects.filter(publication=publication).exists()


def test_editor_buttons_reorder_without_saving(logged_in, ops_user, draft):
    http = logged_in(ops_user)
    data = editor_post(**{"sections-count": "2", "s-1-kind": "rm_note",
                          "s-1-fallback": "祝好", "op": "up:1"})
    response = http.post(f"/newsletters/editions/{draft.pk}/edit/", data)
    assert response.status_code == 200
    assert [b.kind for b in response.context["editor"].blocks] == ["rm_note", "editorial"]
    response = http.post(f"/newsletters/editions/{draft.pk}/edit/", {**data, "op": "add:picks"})
    assert [b.kind for b in response.context["editor"].blocks][-1] == "picks"
    draft.refresh_from_db()
    assert draft.subject == "第一期" and draft.sections.count() == 3


@pytest.mark.parametrize("garbage", [
    {"sections-count": "abc"}, {"sections-count": "-5"}, {"sections-count": "99999"},
    {"s-0-kind": "<script>"}, {"op": "up:xyz"}, {"op": "remove:77"}, {"op": "add:nope"},
    {"s-0-kind": "holdings", "s-0-top_n": "1e9", "s-0-types-count": "1",
     "s-0-types-0-type": "bogus", "s-0-types-0-note": "n"},
])
def test_editor_never_500s_on_bad_input(logged_in, ops_user, draft, garbage):
    response = logged_in(ops_user).post(f"/newsletters/editions/{draft.pk}/edit/",
                                        editor_post(**garbage))
    assert response.status_code in (200, 302, 400)


def test_forbidden_phrase_is_highlighted_and_blocks_submit(logged_in, ops_user, publication):
    edition = services.edition_create(
        publication=publication, subject="稳赚的机会", preheader="", author=ops_user,
        sections=[{**EDITORIAL, "body": "这只产品保本保收益，guaranteed RETURN。"}])
    http = logged_in(ops_user)
    body = http.get(f"/newsletters/editions/{edition.pk}/edit/").content.decode()
    panel = body[body.index('id="compliance-check"'):]
    assert '<mark class="forbidden-phrase">稳赚</mark>' in panel
    assert '<mark class="forbidden-phrase">保本</mark>' in panel
    assert '<mark class="forbidden-phrase">guaranteed RETURN</mark>' in panel
    submit = body[body.index('id="edition-submit"'):][:120]
    assert "disabled" in submit
    response = http.post(f"/newsletters/editions/{edition.pk}/submit/", follow=True)
    edition.refresh_from_db()
    assert edition.status == EditionStatus.DRAFT
    assert "保本" in "".join(str(m) for m in response.context["messages"])


# --- preview ---------------------------------------------------------------------------------
def test_preview_shows_the_clients_name_holdings_and_no_product_above_their_level(
        logged_in, ops_user, draft, hnw_client):
    http = logged_in(ops_user)
    page = http.get(f"/newsletters/editions/{draft.pk}/preview/?client={hnw_client.client_no}")
    assert page.status_code == 200
    assert page.context["client"] == hnw_client
    html = http.get(f"/newsletters/editions/{draft.pk}/preview/html/"
                    f"?client={hnw_client.client_no}").content.decode()
    assert "钱" in html and "稳健债券1号" in html and "880,000" in html
    assert "P10002" not in html and "成长股票基金" not in html  # R4 above C3
    text = page.context["rendered"].text
    assert "稳健债券1号" in text and "成长股票基金" not in text


def test_preview_html_is_locked_down_by_csp(logged_in, ops_user, draft, hnw_client):
    response = logged_in(ops_user).get(
        f"/newsletters/editions/{draft.pk}/preview/html/?client={hnw_client.client_no}")
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "img-src 'self' data:" in csp
    assert "style-src 'unsafe-inline'" in csp and "script-src" not in csp
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_preview_only_clients_of_the_audience(logged_in, ops_user, draft, hnw_client):
    outsider = ClientFactory(client_no="X0000001", name="局外人")
    http = logged_in(ops_user)
    html = http.get(f"/newsletters/editions/{draft.pk}/preview/html/?client=X0000001")
    assert html.status_code == 404
    found = http.get(f"/newsletters/editions/{draft.pk}/preview/clients/?q=钱").content.decode()
    assert hnw_client.client_no in found
    found = http.get(f"/newsletters/editions/{draft.pk}/preview/clients/?q=局").content.decode()
    assert outsider.client_no not in found


def test_send_a_test_to_me(logged_in, ops_user, draft, hnw_client):
    http = logged_in(ops_user)
    ops_user.email = ""
    ops_user.save(update_fields=["email"])
    response = http.post(f"/newsletters/editions/{draft.pk}/test/",
                         {"client": hnw_client.client_no}, follow=True)
    assert "没有电子邮箱地址" in "".join(str(m) for m in response.context["messages"])
    assert not mail.outbox
    ops_user.email = "ops@example.com"
    ops_user.save(update_fields=["email"])
    http.post(f"/newsletters/editions/{draft.pk}/test/", {"client": hnw_client.client_no})
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@example.com"]


# --- approval --------------------------------------------------------------------------------
def test_compliance_sees_the_queue_and_approves(logged_in, compliance_user, submitted):
    http = logged_in(compliance_user)
    assert submitted.subject in http.get("/newsletters/approvals/").content.decode()
    page = http.get(f"/newsletters/editions/{submitted.pk}/").content.decode()
    assert 'id="approve-button"' in page and 'id="compliance-check"' in page
    http.post(f"/newsletters/editions/{submitted.pk}/approve/",
              {"content_version": submitted.content_version})
    submitted.refresh_from_db()
    assert submitted.status == EditionStatus.APPROVED
    assert submitted.approved_by == compliance_user


def test_the_author_cannot_approve_their_own_edition(logged_in, branch, publication):
    author = staff(Role.COMPLIANCE, username="writer", branch=None)
    # A compliance author is unusual but possible when roles change: the service refuses.
    edition = Edition.objects.create(publication=publication, number=9, subject="自审",
                                     author=author, status=EditionStatus.SUBMITTED)
    http = logged_in(author)
    page = http.get(f"/newsletters/editions/{edition.pk}/").content.decode()
    assert 'id="approve-button"' not in page and 'id="own-edition"' in page
    response = http.post(f"/newsletters/editions/{edition.pk}/approve/", follow=True)
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SUBMITTED
    assert "不能审批自己" in "".join(str(m) for m in response.context["messages"])


def test_reject_requires_a_comment(logged_in, compliance_user, submitted):
    http = logged_in(compliance_user)
    http.post(f"/newsletters/editions/{submitted.pk}/reject/", {"comment": "  "})
    submitted.refresh_from_db()
    assert submitted.status == EditionStatus.SUBMITTED
    http.post(f"/newsletters/editions/{submitted.pk}/reject/", {"comment": "请补充风险提示"})
    submitted.refresh_from_db()
    assert submitted.status == EditionStatus.REJECTED
    assert submitted.review_comment == "请补充风险提示"
    timeline = http.get(f"/newsletters/editions/{submitted.pk}/").content.decode()
    assert "请补充风险提示" in timeline


def test_ops_cannot_approve_and_compliance_cannot_send(logged_in, ops_user, compliance_user,
                                                       submitted):
    assert logged_in(ops_user).post(
        f"/newsletters/editions/{submitted.pk}/approve/").status_code == 403
    services.edition_approve(edition=submitted, actor=compliance_user)
    assert logged_in(compliance_user).post(
        f"/newsletters/editions/{submitted.pk}/send_now/").status_code == 403


def test_schedule_takes_beijing_time_and_refuses_the_past(logged_in, ops_user, compliance_user,
                                                          submitted):
    services.edition_approve(edition=submitted, actor=compliance_user)
    http = logged_in(ops_user)
    http.post(f"/newsletters/editions/{submitted.pk}/schedule/", {"at": "2001-01-01T09:00"})
    submitted.refresh_from_db()
    assert submitted.status == EditionStatus.APPROVED
    http.post(f"/newsletters/editions/{submitted.pk}/schedule/", {"at": "garbage"})
    later = timezone.localtime() + dt.timedelta(days=2)
    http.post(f"/newsletters/editions/{submitted.pk}/schedule/",
              {"at": later.strftime("%Y-%m-%dT%H:%M")})
    submitted.refresh_from_db()
    assert submitted.status == EditionStatus.SCHEDULED
    assert timezone.localtime(submitted.scheduled_at).strftime("%H:%M") == later.strftime("%H:%M")


def test_unknown_action_is_404(logged_in, ops_user, draft):
    assert logged_in(ops_user).post(f"/newsletters/editions/{draft.pk}/explode/").status_code \
        == 404


# --- statistics ------------------------------------------------------------------------------
def _delivery(edition, client, n, **kwargs):
    return Delivery.objects.create(source="newsletter", source_id=edition.id,
                                   client=client, message_id=f"<m{n}@x>",
                                   token=f"t{n}", **kwargs)


def test_stats_page_counts_deliveries_and_feedback(logged_in, ops_user, draft, hnw_client,
                                                   rm_a):
    Edition.objects.filter(pk=draft.pk).update(status=EditionStatus.SENT)
    now = timezone.now()
    clients = [hnw_client] + [ClientFactory(rm=rm_a, branch=rm_a.branch) for _ in range(5)]
    d = [_delivery(draft, clients[0], 0, status=DeliveryStatus.SENT, opened_at=now,
                   clicked_at=now),
         _delivery(draft, clients[1], 1, status=DeliveryStatus.SENT, opened_at=now),
         _delivery(draft, clients[2], 2, status=DeliveryStatus.SENT),
         _delivery(draft, clients[3], 3, status=DeliveryStatus.FAILED),
         _delivery(draft, clients[4], 4, status=DeliveryStatus.EXCLUDED,
                   exclusion_reason=ExclusionReason.NO_CONSENT),
         _delivery(draft, clients[5], 5, status=DeliveryStatus.EXCLUDED,
                   exclusion_reason=ExclusionReason.NO_ADDRESS)]
    Feedback.objects.create(delivery=d[0], rating=4, comment="很有帮助，想聊聊债券")
    Feedback.objects.create(delivery=d[1], rating=2)
    response = logged_in(ops_user).get(f"/newsletters/editions/{draft.pk}/stats/")
    assert response.status_code == 200
    tiles = {k: v for k, _label, v in response.context["tiles"]}
    assert tiles == {"audience": 6, "excluded_total": 2, "sent": 3, "failed": 1, "opened": 2,
                     "clicked": 1, "rated": 2, "comments": 1, "unsubscribes": 0}
    assert dict(response.context["excluded"] and
                [(k, n) for k, _label, n in response.context["excluded"]])["no_consent"] == 1
    assert response.context["chart"]["ratings"] == [0, 1, 0, 1, 0]
    assert response.context["stats"]["average_rating"] == 3.0
    body = response.content.decode()
    assert "很有帮助，想聊聊债券" in body and f"/clients/{hnw_client.client_no}/" in body
    progress = response.context["progress"]
    assert (progress["sent"], progress["total"], progress["polling"]) == (3, 4, False)


def test_progress_fragment_polls_while_sending(logged_in, ops_user, draft, hnw_client):
    Edition.objects.filter(pk=draft.pk).update(status=EditionStatus.SENDING)
    _delivery(draft, hnw_client, 0, status=DeliveryStatus.PENDING)
    body = logged_in(ops_user).get(
        f"/newsletters/editions/{draft.pk}/stats/progress/").content.decode()
    assert 'hx-trigger="every 2s"' in body and 'data-polling="true"' in body


# --- forbidden phrases -----------------------------------------------------------------------
def test_compliance_extend_the_phrase_list(logged_in, ops_user, compliance_user, publication):
    http = logged_in(compliance_user)
    assert http.post("/newsletters/phrases/", {"phrase": "稳稳的幸福"}).status_code == 302
    assert http.post("/newsletters/phrases/", {"phrase": ""}).status_code == 400
    edition = services.edition_create(publication=publication, subject="稳稳的幸福来了",
                                      preheader="", author=ops_user, sections=[EDITORIAL])
    http = logged_in(ops_user)
    body = http.get(f"/newsletters/editions/{edition.pk}/edit/").content.decode()
    assert '<mark class="forbidden-phrase">稳稳的幸福</mark>' in body
