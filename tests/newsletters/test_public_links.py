"""Public links without login: unsubscribe (page, button, one-click), open pixel, click."""

import pytest
from django.test import Client as HttpClient

from core.models import AuditLog
from newsletters import links
from newsletters.models import Delivery, Suppression, with_editions
from tests.newsletters.test_dispatch import freeze, make_audience, make_edition


@pytest.fixture
def delivery(rm_a):
    segment, _, _ = make_audience(size=3, rm=rm_a, excluded={})
    edition = make_edition(segment=segment, author=rm_a, tracking=True)
    freeze(edition)
    return with_editions([Delivery.objects.select_related("client").first()])[0]


def path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def unsubscribed(delivery) -> int:
    return Suppression.objects.filter(client=delivery.client, reason="unsubscribed",
                                      publication=delivery.edition.publication).count()


def test_unsubscribe_get_changes_nothing_and_shows_a_button(delivery):
    response = HttpClient().get(path(links.unsubscribe_url(delivery)))
    assert response.status_code == 200
    assert b'method="post"' in response.content and b"csrfmiddlewaretoken" in response.content
    assert unsubscribed(delivery) == 0


def test_one_click_unsubscribe_works_without_csrf_and_is_audited_once(delivery):
    http = HttpClient(enforce_csrf_checks=True)
    url = path(links.unsubscribe_url(delivery))
    for _ in range(2):
        response = http.post(url, "List-Unsubscribe=One-Click",
                             content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200
    assert unsubscribed(delivery) == 1
    assert AuditLog.objects.filter(action="newsletter_unsubscribe", object_type="client",
                                   object_id=delivery.client.client_no).count() == 1
    assert b"<form" not in HttpClient().get(url).content  # already unsubscribed


def test_a_plain_post_without_csrf_token_is_refused(delivery):
    response = HttpClient(enforce_csrf_checks=True).post(path(links.unsubscribe_url(delivery)))
    assert response.status_code == 403
    assert unsubscribed(delivery) == 0


def test_a_link_signed_for_another_purpose_or_tampered_is_not_valid(delivery):
    feedback_signed = links.sign(links.FEEDBACK, delivery.token)
    for bad in (f"/n/u/{feedback_signed}/", f"/n/u/{delivery.token}:forged/", "/n/u/x/"):
        response = HttpClient().post(bad, "List-Unsubscribe=One-Click",
                                     content_type="application/x-www-form-urlencoded")
        assert response.status_code == 404
        assert "not valid" in response.content.decode() or "无效" in response.content.decode()
    assert unsubscribed(delivery) == 0


def test_the_open_pixel_is_a_gif_and_records_the_first_open_only(delivery):
    url = path(links.open_pixel_url(delivery))
    first = HttpClient().get(url)
    assert first.status_code == 200 and first["Content-Type"] == "image/gif"
    assert first.content.startswith(b"GIF89a")
    opened = Delivery.objects.get(pk=delivery.pk).opened_at
    HttpClient().get(url)
    assert opened is not None and Delivery.objects.get(pk=delivery.pk).opened_at == opened


def test_a_click_redirects_only_to_the_signed_target(delivery):
    url = path(links.click_url(delivery, "https://research.broker.example/r/1"))
    response = HttpClient().get(url)
    assert response.status_code == 302
    assert response["Location"] == "https://research.broker.example/r/1"
    HttpClient().get(url)
    row = Delivery.objects.get(pk=delivery.pk)
    assert row.clicks == 2 and row.clicked_at is not None and row.opened_at is not None

    forged = HttpClient().get(url + "?next=https://evil.example/", follow=False)
    assert forged["Location"] == "https://research.broker.example/r/1"
    tampered = url.replace("/n/c/", "/n/c/x")
    assert HttpClient().get(tampered).status_code == 404


def test_a_mail_scanner_following_every_link_of_the_email_records_nothing(delivery):
    """Scanners and link previews GET every URL in a message (and its List-Unsubscribe
    header); only the reader's own POST, or the RFC 8058 one-click POST, may change anything."""
    import re

    from newsletters.models import Feedback
    from newsletters.rendering import build_message, delivery_context, render_edition

    edition = delivery.edition
    rendered = render_edition(edition=edition, delivery=delivery, context=delivery_context(
        edition=edition, client=delivery.client))
    message = build_message(delivery=delivery, rendered=rendered).message()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = message["List-Unsubscribe"].strip("<>")
    found = set(re.findall(r"https?://[^\s\"'<>]+", rendered.html.replace("&amp;", "&")))
    found |= set(re.findall(r"https?://[^\s\"'<>]+", rendered.text)) | {one_click}
    public = sorted(u for u in found if "/n/u/" in u or "/n/f/" in u)
    assert sum("rating=" in u for u in public) == 5 and any("/n/u/" in u for u in public)
    http = HttpClient()
    for url in public:
        assert http.get(path(url)).status_code == 200, url
    assert not Feedback.objects.exists()
    assert unsubscribed(delivery) == 0
    response = HttpClient(enforce_csrf_checks=True).post(
        path(one_click), "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and unsubscribed(delivery) == 1
