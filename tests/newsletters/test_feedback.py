"""Hear back: a rating (sent from the landing page, never by a GET; latest wins), a comment and
an email reply become the RM's tasks."""

from email.message import EmailMessage

import pytest
from django.test import Client as HttpClient

from newsletters import links
from newsletters.inbound import reply_ingest
from newsletters.models import Delivery, Feedback, with_editions
from outreach.models import RMTask
from tests.newsletters.test_dispatch import freeze, make_audience, make_edition


@pytest.fixture
def delivery(rm_a):
    segment, _, _ = make_audience(size=2, rm=rm_a, excluded={})
    edition = make_edition(segment=segment, author=rm_a)
    freeze(edition)
    return with_editions([Delivery.objects.select_related("client").first()])[0]


def feedback_path(delivery, rating=None) -> str:
    url = links.feedback_url(delivery, rating=rating)
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_a_rating_link_followed_by_a_mail_scanner_records_nothing(delivery):
    http = HttpClient()
    for rating in (4, 1):  # a scanner or link preview opens every link in the email
        page = http.get(feedback_path(delivery, rating=rating))
        assert page.status_code == 200
        assert f'value="{rating}" checked'.encode() in page.content  # preselected
        assert b'method="post"' in page.content
    assert http.head(feedback_path(delivery, rating=5)).status_code == 405
    assert not Feedback.objects.exists()
    assert not RMTask.objects.exists()


@pytest.mark.parametrize(("language", "texts"), [
    ("en", ["Was this edition useful?", "Nothing is recorded until you press Send.", "Send"]),
    ("zh-hans", ["本期简报对您有帮助吗？", "发送"]),
])
def test_the_landing_page_speaks_both_languages(delivery, language, texts):
    page = HttpClient().get(feedback_path(delivery, rating=3), HTTP_ACCEPT_LANGUAGE=language)
    body = page.content.decode()
    assert page.status_code == 200 and 'value="3" checked' in body
    for text in texts:
        assert text in body, text


def test_a_rating_sent_from_the_landing_page_is_recorded_and_the_latest_wins(delivery):
    http = HttpClient()
    path = feedback_path(delivery)
    assert http.post(path, {"rating": "4"}).status_code == 200
    response = http.post(path, {"rating": "5"})
    assert response.status_code == 200 and b'id="recorded-rating"' in response.content
    ratings = Feedback.objects.filter(delivery=delivery, rating__isnull=False)
    assert list(ratings.values_list("rating", flat=True)) == [5]
    assert not RMTask.objects.exists()
    page = http.get(path).content.decode()  # the saved rating is shown, preselected
    assert 'id="saved-rating"' in page and 'value="5" checked' in page


def test_a_rating_post_needs_the_csrf_token_of_the_landing_page(delivery):
    http = HttpClient(enforce_csrf_checks=True)
    page = http.get(feedback_path(delivery, rating=4))
    path = feedback_path(delivery)
    assert http.post(path, {"rating": "4"}).status_code == 403
    assert not Feedback.objects.exists()
    token = http.cookies["csrftoken"].value
    assert page.status_code == 200
    assert http.post(path, {"rating": "4", "csrfmiddlewaretoken": token}).status_code == 200
    assert Feedback.objects.get().rating == 4


def test_a_post_with_neither_rating_nor_comment_asks_again(delivery):
    http = HttpClient()
    response = http.post(feedback_path(delivery, rating=4), {"rating": "9", "comment": "  "})
    assert response.status_code == 400
    assert not Feedback.objects.exists()


def test_a_low_rating_makes_one_task_for_the_rm(delivery, rm_a):
    http = HttpClient()
    http.post(feedback_path(delivery), {"rating": "2"})
    http.post(feedback_path(delivery), {"rating": "1"})
    task = RMTask.objects.get()
    assert (task.source, task.assignee, task.client_id) == ("newsletter_rating", rm_a,
                                                            delivery.client_id)


def test_a_comment_needs_csrf_and_becomes_a_task_for_the_rm(delivery, rm_a):
    http = HttpClient(enforce_csrf_checks=True)
    path = feedback_path(delivery)
    page = http.get(path)
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content
    assert http.post(path, {"comment": "请来电"}).status_code == 403
    token = http.cookies["csrftoken"].value
    response = http.post(path, {"comment": "请来电讨论债券仓位", "csrfmiddlewaretoken": token})
    assert response.status_code == 200
    feedback = Feedback.objects.get(comment="请来电讨论债券仓位")
    task = RMTask.objects.get(origin_type="newsletters.feedback", origin_id=str(feedback.pk))
    assert task.assignee == rm_a and task.source == "newsletter_comment"
    assert "请来电" in task.detail


def test_a_tampered_feedback_link_records_nothing(delivery):
    tampered = feedback_path(delivery).replace(":", ":x", 1)
    assert HttpClient().get(tampered + "?rating=1").status_code == 404
    assert HttpClient().post(tampered, {"rating": "1"}).status_code == 404
    assert not Feedback.objects.exists()


def reply_to(delivery, *, message_id="<reply-1@client.example>") -> bytes:
    reply = EmailMessage()
    reply["From"] = delivery.to_email
    reply["To"] = "replies@broker.example"
    reply["Subject"] = "Re: " + delivery.edition.subject
    reply["Message-ID"] = message_id
    reply["In-Reply-To"] = delivery.message_id
    reply["References"] = f"<older@elsewhere.example> {delivery.message_id}"
    reply.set_content("想了解一下第二只产品。\n\nOn Mon, Research Desk wrote:\n> 本周市场观点\n")
    return reply.as_bytes()


def test_an_email_reply_becomes_feedback_and_one_task(delivery, rm_a):
    raw = reply_to(delivery)
    feedback = reply_ingest(raw_message_bytes=raw)
    reply_ingest(raw_message_bytes=raw)  # fetched twice: recorded once

    assert feedback.is_reply and feedback.comment == "想了解一下第二只产品。"
    assert Feedback.objects.filter(is_reply=True).count() == 1
    task = RMTask.objects.get(source="newsletter_reply")
    assert task.assignee == rm_a and task.client_id == delivery.client_id


def test_a_reply_to_something_we_did_not_send_is_ignored(delivery):
    raw = reply_to(delivery).replace(delivery.message_id.encode(), b"<unknown@x.example>")
    assert reply_ingest(raw_message_bytes=raw) is None
    assert not RMTask.objects.exists()
