"""A client who unsubscribed shows as unsubscribed on the 360 page, with when and from what; the
client's own RM records a re-subscription the client asked for, and the next edition reaches
the client again. The unsubscribe stays on record."""

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from core.errors import ApplicationError
from core.models import AuditAction, AuditLog
from newsletters import links
from newsletters.approval import approval_fields
from newsletters.models import (
    Edition,
    EditionSection,
    EditionStatus,
    Suppression,
    with_editions,
)
from newsletters.services import newsletter_resubscribe
from tests.conftest import PASSWORD
from tests.factories import staff
from tests.newsletters.test_dispatch import freeze, make_audience, make_edition

ONE_CLICK = "List-Unsubscribe=One-Click"


def detail_url(client):
    return reverse("clients:client_detail", args=[client.client_no])


def resubscribe_url(client):
    return reverse("newsletters:client_resubscribe", args=[client.client_no])


def unsubscribe_by_link(delivery):
    url = "/" + links.unsubscribe_url(delivery).split("://", 1)[1].split("/", 1)[1]
    response = HttpClient().post(url, ONE_CLICK,
                                 content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200


def next_edition(publication, author) -> Edition:
    """The publication's next edition, approved as it stands (as make_edition does)."""
    edition = Edition.objects.create(publication=publication,
                                     number=publication.editions.count() + 1,
                                     subject="本周市场观点", status=EditionStatus.APPROVED,
                                     author=author, approved_version=1)
    EditionSection.objects.create(edition=edition, position=1, kind="editorial",
                                  title="Market view", body="Rates are **steady**.")
    Edition.objects.filter(pk=edition.pk).update(**approval_fields(edition))
    edition.refresh_from_db()
    return edition


def outcome(edition, client) -> tuple[str, str]:
    freeze(edition)
    row = edition.deliveries.get(client=client)
    return row.status, row.exclusion_reason


@pytest.fixture
def editor(db):
    return staff("ops", username="editor", branch=None)


@pytest.fixture
def first_edition(rm_a, editor):
    segment, _, _ = make_audience(size=3, rm=rm_a, excluded={})
    edition = make_edition(segment=segment, author=editor)
    freeze(edition)
    return edition


@pytest.fixture
def reader(first_edition, rm_a):
    """The first reader of the first edition, unsubscribed through the link in it."""
    delivery = with_editions([first_edition.deliveries.select_related("client")
                              .order_by("id").first()])[0]
    unsubscribe_by_link(delivery)
    Client.objects.filter(pk=delivery.client_id).update(branch=rm_a.branch)  # bm_sh's branch
    return Client.objects.get(pk=delivery.client_id)


# --- The 360 page says so ----------------------------------------------------------------------

@pytest.mark.parametrize("language, expected", [
    ("en", "Unsubscribed on {day} (via the unsubscribe link in “HNW Weekly Insight” #1)"),
    ("zh-hans", "于 {day} 退订（通过《HNW Weekly Insight》第 1 期中的退订链接）"),
])
def test_the_360_page_shows_when_and_through_which_newsletter_the_client_unsubscribed(
        logged_in, rm_a, reader, language, expected):
    day = timezone.localdate().isoformat()
    body = logged_in(rm_a).get(detail_url(reader), HTTP_ACCEPT_LANGUAGE=language
                               ).content.decode()
    consent = body[body.index('id="email-consent"'):body.index('id="email-consent"') + 4000]
    assert expected.format(day=day) in consent
    assert ("Unsubscribed" if language == "en" else "已退订") in consent
    assert ("Agreed" if language == "en" else "已同意") not in consent.split("</div>")[0]


def test_a_client_who_never_unsubscribed_shows_only_their_consent(logged_in, rm_a, reader,
                                                                    first_edition):
    other = first_edition.deliveries.all().exclude(client=reader).first().client
    body = logged_in(rm_a).get(detail_url(other), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    consent = body[body.index('id="email-consent"'):]
    assert "Agreed" in consent.split("</div>")[0]
    assert "Unsubscribed on" not in body and 'id="resubscribe"' not in body


# --- Only the client's own RM records a re-subscription -----------------------------------------

def test_the_own_rm_gets_the_form_and_others_do_not(logged_in, rm_a, ops_user, compliance_user,
                                                    branch_manager, reader):
    assert 'id="resubscribe"' in logged_in(rm_a).get(detail_url(reader)).content.decode()
    for user in (ops_user, compliance_user, branch_manager):
        body = logged_in(user).get(detail_url(reader)).content.decode()
        assert 'id="resubscribe"' not in body and "email-unsubscribed" in body


@pytest.mark.parametrize("who", ["ops_user", "compliance_user", "branch_manager",
                                 "admin_user_"])
def test_anyone_but_the_own_rm_is_refused_and_audited(request, logged_in, reader, who):
    user = request.getfixturevalue(who)
    response = logged_in(user).post(resubscribe_url(reader), {"how": "phone"})
    assert response.status_code == 403
    assert Suppression.objects.get(client=reader).lifted_at is None
    denied = AuditLog.objects.get(action=AuditAction.ACCESS_DENIED)
    assert (denied.actor, denied.object_id) == (user, reader.client_no)
    assert not AuditLog.objects.filter(action=AuditAction.NEWSLETTER_RESUBSCRIBE).exists()


def test_another_rm_does_not_even_see_the_client(logged_in, rm_b, reader):
    assert logged_in(rm_b).post(resubscribe_url(reader), {"how": "phone"}).status_code == 404
    assert Suppression.objects.get(client=reader).lifted_at is None


def test_the_service_refuses_anyone_but_the_own_rm(ops_user, reader):
    with pytest.raises(ApplicationError) as refused:
        newsletter_resubscribe(client=reader, actor=ops_user, how="phone")
    assert refused.value.status == 403
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=ops_user).exists()


# --- Recording it -------------------------------------------------------------------------------

def test_the_rm_records_how_the_client_consented_and_the_unsubscribe_stays_on_record(
        logged_in, rm_a, reader):
    response = logged_in(rm_a).post(resubscribe_url(reader),
                                    {"how": "phone", "note": "客户来电要求恢复订阅"})
    assert response.status_code == 302 and response["Location"] == detail_url(reader)
    row = Suppression.objects.get(client=reader)
    assert row.reason == "unsubscribed" and row.source_delivery_id is not None
    assert (row.lifted_by, row.lifted_how) == (rm_a, "phone")
    assert row.lifted_note == "客户来电要求恢复订阅"
    assert row.lifted_at is not None
    audit = AuditLog.objects.get(action=AuditAction.NEWSLETTER_RESUBSCRIBE)
    assert (audit.actor, audit.object_type, audit.object_id) == (rm_a, "client", reader.client_no)
    assert audit.detail == {"how": "phone", "suppressions": [row.pk],
                            "publications": ["hnw-weekly"]}


def test_after_re_subscribing_the_card_shows_consent_and_the_history(logged_in, rm_a, reader):
    web = logged_in(rm_a)
    response = web.post(resubscribe_url(reader), {"how": "in_branch"}, HTTP_HX_REQUEST="true",
                        HTTP_ACCEPT_LANGUAGE="en")
    part = response.content.decode()
    assert response.status_code == 200 and "<html" not in part
    assert 'id="email-consent"' in part and "re-subscription was recorded" in part
    body = web.get(detail_url(reader), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    consent = body[body.index('id="email-consent"'):body.index('id="email-consent"') + 4000]
    assert "Agreed" in consent.split("</div>")[0]
    day = timezone.localdate().isoformat()
    assert f"Re-subscribed on {day} by 王经理 (In person at the branch)" in consent
    assert 'id="resubscribe"' not in consent


def test_a_re_subscription_needs_to_say_how_the_client_consented(logged_in, rm_a, reader):
    response = logged_in(rm_a).post(resubscribe_url(reader), {"how": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "is-invalid" in response.content.decode()
    assert Suppression.objects.get(client=reader).lifted_at is None
    assert not AuditLog.objects.filter(action=AuditAction.NEWSLETTER_RESUBSCRIBE).exists()


# --- Dispatch follows ---------------------------------------------------------------------------

def test_dispatch_skips_the_client_until_the_rm_records_the_re_subscription(
        rm_a, editor, reader, first_edition):
    publication = first_edition.publication
    assert outcome(next_edition(publication, editor), reader) == ("excluded", "unsubscribed")

    newsletter_resubscribe(client=reader, actor=rm_a, how="signed_form")

    assert outcome(next_edition(publication, editor), reader) == ("pending", "")


def test_a_client_who_unsubscribes_again_is_skipped_again(rm_a, editor, reader, first_edition):
    publication = first_edition.publication
    newsletter_resubscribe(client=reader, actor=rm_a, how="email")
    second = next_edition(publication, editor)
    freeze(second)
    unsubscribe_by_link(second.deliveries.get(client=reader))

    assert outcome(next_edition(publication, editor), reader) == ("excluded", "unsubscribed")
    rows = Suppression.objects.filter(client=reader).order_by("id")
    assert [r.lifted_at is not None for r in rows] == [True, False]


def test_a_re_subscription_lifts_nothing_when_the_client_is_not_unsubscribed(rm_a, reader):
    newsletter_resubscribe(client=reader, actor=rm_a, how="phone")
    with pytest.raises(ApplicationError) as nothing:
        newsletter_resubscribe(client=reader, actor=rm_a, how="phone")
    assert nothing.value.code == "nothing_to_lift"
    assert AuditLog.objects.filter(action=AuditAction.NEWSLETTER_RESUBSCRIBE).count() == 1


# --- In the browser ----------------------------------------------------------------------------

@pytest.mark.browser
def test_the_rm_records_a_re_subscription_on_the_360_page(page, live_server, transactional_db,
                                                           rm_a, reader):
    page.goto(f"{live_server.url}/accounts/login/")
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    page.fill("#id_username", "rm_a")
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}{detail_url(reader)}")

    card = page.locator("#email-consent")
    assert card.locator(".badge").inner_text() == "Unsubscribed"
    assert "via the unsubscribe link in “HNW Weekly Insight” #1" in card.inner_text()
    page.locator("#resubscribe-panel summary").click()
    page.select_option("#id_how", "phone")
    page.fill("#id_note", "Called in and asked for the weekly again")
    page.click("#resubscribe")

    card.get_by_text("The re-subscription was recorded.").wait_for()
    assert card.locator(".badge").inner_text() == "Agreed"
    assert page.locator("#resubscribe").count() == 0
    page.locator("#email-consent-history summary").click()
    assert "(On a phone call)" in page.locator("#email-consent-history").inner_text()
    assert Suppression.objects.get(client=reader).lifted_by == rm_a
