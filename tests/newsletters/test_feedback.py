"""Hear back: a rating (latest wins), a comment and an email reply become the RM's tasks."""

from email.message import EmailMessage

import pytest
from django.test import Client as HttpClient

from campaigns.models import RMTask
from newsletters import links
from newsletters.inbound import reply_ingest
from newsletters.models import Delivery, Feedback
from tests.newsletters.test_dispatch import freeze, make_audience, make_edition


@pytest.fixture
def delivery(rm_a):
    segment, _, _ = make_audience(size=2, rm=rm_a, excluded={})
    edition = make_edition(segment=segment, author=rm_a)
    freeze(edition)
    return Delivery.objects.select_related("edition__publication", "client").first()


def feedback_path(delivery, rating=None) -> str:
    url = links.feedback_url(delivery, rating=rating)
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_a_rating_from_the_email_is_recorded_and_the_latest_wins(delivery):
    http = HttpClient()
    assert http.get(feedback_path(delivery, rating=4)).status_code == 200
    assert http.get(feedback_path(delivery, rating=5)).status_code == 200
    ratings = Feedback.objects.filter(delivery=delivery, rating__isnull=False)
    assert list(ratings.values_list("rating", flat=True)) == [5]
    assert not RMTask.objects.exists()


def test_a_low_rating_makes_one_task_for_the_rm(delivery, rm_a):
    http = HttpClient()
    http.get(feedback_path(delivery, rating=2))
    http.get(feedback_path(delivery, rating=1))
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
    response = HttpClient().get(feedback_path(delivery, rating=1).replace(":", ":x", 1))
    assert response.status_code == 404
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
