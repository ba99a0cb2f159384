"""Crafted input on the newsletter side never gives a 500 and never reaches the mail server:
line breaks in header values (subject, sender name and addresses) are refused at every input
and at sending; year-1 send times are a 400; a test send with the mail server down is a 503;
newsletters are read by ops, compliance and admins only, over the API as on the pages."""

import socket

import pytest
from django.core import mail
from rest_framework.test import APIClient

from core.models import AuditAction, AuditLog, Role
from newsletters import dispatch, services
from newsletters.approval import approval_fields
from newsletters.headers import header_is_safe
from newsletters.models import Edition, EditionStatus, Publication
from segments.models import Segment, SegmentMembership
from tests.factories import staff
from tests.newsletters import make_edition as make_draft
from tests.newsletters import standard_sections
from tests.newsletters.test_dispatch import make_audience
from tests.newsletters.test_dispatch import make_edition as make_approved

# One per kind of line break or control character a header value can smuggle in.
BAD_HEADERS = {
    "crlf": "Weekly\r\nBcc: victim@evil.example",
    "lf": "Weekly\nBcc: victim@evil.example",
    "cr": "Weekly\rBcc: victim@evil.example",
    "nel": "Weekly\x85Bcc: victim@evil.example",
    "line-separator": "Weekly\u2028Bcc: victim@evil.example",
    "paragraph-separator": "本周\u2029观点",
    "vertical-tab": "Weekly\x0binsight",
    "form-feed": "Weekly\x0cinsight",
    "nul": "Weekly\x00insight",
    "escape": "Weekly\x1b[31minsight",
}
UNSAFE_EN = "Use a single line: no line breaks or control characters."


def names_the_field(bad: str) -> bool:
    """A NUL is refused before any form or serializer sees it (core: the NUL middleware and the
    JSON parser, a 400 of their own); everything else is refused by the header rule."""
    return "\x00" not in bad


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def error_of(response) -> dict:
    return response.json()["error"]


@pytest.fixture
def audience_segment(db):
    return Segment.objects.create(code="nl-safety", kind="static", name_en="HNW")


@pytest.fixture
def approved(rm_a, ops_user):
    """An approved edition with an audience of three, ready to send."""
    segment, _clients, _ = make_audience(size=3, rm=rm_a, excluded={}, code="nl-safety-send")
    return make_approved(segment=segment, author=ops_user)


def audience_client(edition: Edition):
    return (SegmentMembership.objects.filter(segment_id=edition.publication.audience_id)
            .select_related("client").first().client)


def stored_with_line_break(edition: Edition, **changes) -> Edition:
    """An edition approved, with these values, before the rule existed (no service stores such
    a value now): the approval covers them, so only the header rule stands in the way."""
    subject = changes.pop("subject", None)
    if subject is not None:
        Edition.objects.filter(pk=edition.pk).update(subject=subject)
    if changes:
        Publication.objects.filter(pk=edition.publication_id).update(**changes)
    edition.refresh_from_db()
    Edition.objects.filter(pk=edition.pk).update(**approval_fields(edition))
    edition.refresh_from_db()
    return edition


# --- the rule ------------------------------------------------------------------------------
def test_the_header_rule_refuses_every_line_break_and_control_character_but_not_text():
    for name, value in BAD_HEADERS.items():
        assert not header_is_safe(value), name
    for value in ("本周市场观点 · Weekly insight", "Research Desk", "a\tb", "", None):
        assert header_is_safe(value), value


# --- refused at input: API -------------------------------------------------------------------
@pytest.mark.parametrize("bad", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_the_api_refuses_a_subject_with_a_line_break(ops_user, bad):
    draft = make_draft(author=ops_user)
    response = api(ops_user).post("/api/v1/editions/", {
        "publication": draft.publication_id, "subject": bad, "sections": standard_sections()},
        format="json")
    assert response.status_code == 400, response.content
    assert "subject" in error_of(response)["fields"] or not names_the_field(bad)
    response = api(ops_user).patch(f"/api/v1/editions/{draft.pk}/", {"subject": bad},
                                   format="json")
    assert response.status_code == 400
    assert "subject" in error_of(response)["fields"] or not names_the_field(bad)
    assert list(Edition.objects.values_list("subject", flat=True)) == [draft.subject]


@pytest.mark.parametrize("field", ["from_name", "from_email", "reply_to"])
@pytest.mark.parametrize("bad", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_the_api_refuses_a_sender_with_a_line_break(ops_user, audience_segment, field, bad):
    good = {"name": "HNW Weekly", "slug": "hnw-weekly", "audience": "nl-safety",
            "from_name": "Research Desk", "from_email": "desk@broker.example",
            "reply_to": "replies@broker.example"}
    value = bad if field == "from_name" else bad.replace("Weekly", "desk@broker.example", 1)
    response = api(ops_user).post("/api/v1/publications/", {**good, field: value},
                                  format="json")
    assert response.status_code == 400, response.content
    assert field in error_of(response)["fields"] or not names_the_field(bad)
    created = api(ops_user).post("/api/v1/publications/", good, format="json")
    assert created.status_code == 201
    pk = created.json()["id"]
    response = api(ops_user).patch(f"/api/v1/publications/{pk}/", {field: value},
                                   format="json")
    assert response.status_code == 400
    assert field in error_of(response)["fields"] or not names_the_field(bad)
    assert getattr(Publication.objects.get(), field) == good[field]


# --- refused at input: pages and admin -------------------------------------------------------
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_editor_refuses_a_subject_with_a_line_break(logged_in, ops_user, language):
    publication = make_draft(author=ops_user).publication
    http = logged_in(ops_user)
    for bad in BAD_HEADERS.values():
        response = http.post(
            f"/newsletters/publications/{publication.slug}/editions/new/",
            {"subject": bad, "preheader": "", "sections-count": "1", "s-0-kind": "editorial",
             "s-0-title": "观点", "s-0-body": "正文"}, HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == 400, repr(bad)
        body = response.content.decode()
        if not names_the_field(bad):
            continue
        assert 'data-field="subject"' in body
        if language == "en":
            assert UNSAFE_EN in body
    assert Edition.objects.count() == 1


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_publication_form_refuses_a_sender_name_with_a_line_break(
        logged_in, ops_user, audience_segment, language):
    http = logged_in(ops_user)
    for bad in BAD_HEADERS.values():
        response = http.post("/newsletters/publications/new/", {
            "name": "HNW Weekly", "slug": "hnw-weekly", "audience": audience_segment.pk,
            "sender_mode": "firm", "from_name": bad, "from_email": "desk@broker.example",
            "reply_to": "", "cadence": "weekly"}, HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == 400, repr(bad)
        body = response.content.decode()
        if not names_the_field(bad):
            continue
        assert 'data-field="from_name"' in body
        if language == "en":
            assert UNSAFE_EN in body
    assert not Publication.objects.exists()


def test_the_admin_refuses_a_sender_name_with_a_line_break(logged_in, admin_user_,
                                                           audience_segment):
    admin_user_.is_staff = admin_user_.is_superuser = True
    admin_user_.save()
    response = logged_in(admin_user_).post("/admin/newsletters/publication/add/", {
        "name": "HNW Weekly", "slug": "hnw-weekly", "audience": audience_segment.pk,
        "sender_mode": "firm", "from_name": "Desk\r\nBcc: victim@evil.example",
        "from_email": "desk@broker.example", "reply_to": "", "cadence": "weekly",
        "is_active": "on"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert UNSAFE_EN in response.content.decode()
    assert not Publication.objects.exists()


# --- refused at sending: a value stored before the rule --------------------------------------
@pytest.mark.parametrize("changes", [
    {"subject": "本周观点\nBcc: victim@evil.example"},
    {"subject": "Weekly\u2028insight"},
    {"from_name": "Research\r\nDesk"},
    {"reply_to": "replies@broker.example\x85"},
], ids=["subject-lf", "subject-ls", "from-name-crlf", "reply-to-nel"])
def test_sending_an_edition_stored_with_a_line_break_is_refused_and_nothing_is_queued(
        approved, ops_user, changes):
    edition = stored_with_line_break(approved, **changes)
    response = api(ops_user).post(f"/api/v1/editions/{edition.pk}/send/")
    assert response.status_code == 409, response.content
    error = error_of(response)
    assert error["code"] == "unsafe_header"
    assert set(error["fields"]) == set(changes)
    edition.refresh_from_db()
    assert edition.status == EditionStatus.APPROVED
    assert not edition.deliveries.all().exists()
    assert not mail.outbox


def test_the_send_button_says_why_and_queues_nothing(logged_in, approved, ops_user):
    edition = stored_with_line_break(approved, subject="Weekly\r\nBcc: victim@evil.example")
    response = logged_in(ops_user).post(f"/newsletters/editions/{edition.pk}/send_now/",
                                        follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "line break or control character" in " ".join(
        str(m) for m in response.context["messages"])
    edition.refresh_from_db()
    assert edition.status == EditionStatus.APPROVED
    assert not edition.deliveries.all().exists() and not mail.outbox


def test_scheduling_approving_and_test_sending_an_unsafe_edition_are_refused(
        approved, ops_user, compliance_user):
    import datetime as dt

    from django.utils import timezone

    edition = stored_with_line_break(approved, subject="Weekly\nBcc: victim@evil.example")
    at = (timezone.now() + dt.timedelta(days=1)).isoformat()
    response = api(ops_user).post(f"/api/v1/editions/{edition.pk}/schedule/", {"at": at},
                                  format="json")
    assert response.status_code == 409 and error_of(response)["code"] == "unsafe_header"
    ops_user.email = "ops@broker.example"
    ops_user.save(update_fields=["email"])
    client_no = audience_client(edition).client_no
    response = api(ops_user).post(f"/api/v1/editions/{edition.pk}/test/",
                                  {"client_no": client_no}, format="json")
    assert response.status_code == 409 and error_of(response)["code"] == "unsafe_header"
    Edition.objects.filter(pk=edition.pk).update(status=EditionStatus.SUBMITTED)
    response = api(compliance_user).post(f"/api/v1/editions/{edition.pk}/approve/")
    assert response.status_code == 409 and error_of(response)["code"] == "unsafe_header"
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SUBMITTED and not mail.outbox


def test_the_beat_does_not_start_a_scheduled_edition_stored_with_a_line_break(approved):
    from django.utils import timezone

    edition = stored_with_line_break(approved, subject="Weekly\r\nBcc: victim@evil.example")
    Edition.objects.filter(pk=edition.pk).update(status=EditionStatus.SCHEDULED,
                                                 scheduled_at=timezone.now())
    result = dispatch.editions_due()
    assert edition.pk not in result["started"]
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SCHEDULED
    assert not edition.deliveries.all().exists() and not mail.outbox


# --- schedule times at the ends of the calendar ----------------------------------------------
@pytest.mark.parametrize("at", [
    "0001-01-01", "0001-01-01T00:00:00", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00",
    "-0001-01-01", "-0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59+14:00",
    "10000-01-01T00:00:00Z", "2026-02-30T09:00:00+08:00", "",
])
def test_a_schedule_time_at_the_ends_of_the_calendar_is_a_400(ops_user, compliance_user, at):
    edition = make_draft(author=ops_user)
    services.edition_submit(edition=edition, actor=ops_user)
    services.edition_approve(edition=edition, actor=compliance_user)
    response = api(ops_user).post(f"/api/v1/editions/{edition.pk}/schedule/", {"at": at},
                                  format="json")
    if at == "9999-12-31T23:59:59+14:00":  # 9999-12-31 17:59 in Beijing: a valid, far time
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.content
    assert "at" in error_of(response)["fields"]
    edition.refresh_from_db()
    assert edition.status == EditionStatus.APPROVED


@pytest.mark.parametrize("at", ["0001-01-01T00:00", "0001-01-01T08:05", "9999-12-31T23:59"])
def test_the_schedule_form_takes_any_calendar_date_without_a_500(logged_in, ops_user,
                                                                 compliance_user, at):
    edition = make_draft(author=ops_user)
    services.edition_submit(edition=edition, actor=ops_user)
    services.edition_approve(edition=edition, actor=compliance_user)
    http = logged_in(ops_user)
    response = http.post(f"/newsletters/editions/{edition.pk}/schedule/", {"at": at},
                         follow=True)
    assert response.status_code == 200
    edition.refresh_from_db()
    assert edition.status == (EditionStatus.SCHEDULED if at.startswith("9999")
                              else EditionStatus.APPROVED)
    assert http.get(f"/newsletters/editions/{edition.pk}/").status_code == 200
    assert api(ops_user).get(f"/api/v1/editions/{edition.pk}/").status_code == 200


# --- a test send while the mail server is down -----------------------------------------------
@pytest.fixture
def smtp_down(settings):
    with socket.socket() as s:  # a port nothing listens on: connecting is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    return port


def test_a_test_send_with_the_mail_server_down_is_a_503_and_a_message(
        logged_in, approved, ops_user, smtp_down):
    ops_user.email = "ops@broker.example"
    ops_user.save(update_fields=["email"])
    client = audience_client(approved)
    response = api(ops_user).post(f"/api/v1/editions/{approved.pk}/test/",
                                  {"client_no": client.client_no}, format="json")
    assert response.status_code == 503, response.content
    assert error_of(response)["code"] == "smtp_unavailable"
    page = logged_in(ops_user).post(f"/newsletters/editions/{approved.pk}/test/",
                                    {"client": client.client_no}, follow=True,
                                    HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "mail server could not be reached" in " ".join(
        str(m) for m in page.context["messages"])


# --- who reads newsletters: the pages' rule, over the API too --------------------------------
@pytest.mark.parametrize("role", [Role.RM, Role.BRANCH_MANAGER])
def test_rms_and_branch_managers_are_refused_every_newsletter_read_and_it_is_audited(
        approved, branch, role, logged_in):
    user = staff(role, username=f"reader_{role}", branch=branch)
    pk, publication = approved.pk, approved.publication_id
    urls = ["/api/v1/publications/", f"/api/v1/publications/{publication}/",
            "/api/v1/editions/", f"/api/v1/editions/{pk}/",
            f"/api/v1/editions/{pk}/deliveries/"]
    for url in urls:
        response = api(user).get(url)
        assert response.status_code == 403, url
        assert error_of(response)["code"] == "permission_denied"
    assert logged_in(user).get(f"/newsletters/editions/{pk}/stats/").status_code == 403
    assert AuditLog.objects.filter(actor=user,
                                   action=AuditAction.ACCESS_DENIED).count() == len(urls) + 1


@pytest.mark.parametrize("role", [Role.OPS, Role.COMPLIANCE, Role.ADMIN])
def test_ops_compliance_and_admins_still_read_editions_and_statistics(approved, role):
    user = staff(role, username=f"reader_{role}", branch=None)
    pk = approved.pk
    for url in ("/api/v1/publications/", "/api/v1/editions/",
                f"/api/v1/editions/{pk}/deliveries/"):
        assert api(user).get(url).status_code == 200, url
    detail = api(user).get(f"/api/v1/editions/{pk}/")
    assert detail.status_code == 200 and "audience" in detail.json()["stats"]
