"""Through a real SMTP server (aiosmtpd in this process): what arrives, with which headers, and
the unsubscribe link of a received message; then the same through a real Celery worker."""

import email
import email.policy
import socket
import threading
from collections import Counter
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from django.test import Client as HttpClient

from newsletters import dispatch
from newsletters.models import Delivery, Edition, EditionStatus, Suppression
from tests.newsletters.test_dispatch import make_audience, make_edition, suppress
from tests.worker import running_worker, wait_for

EXCLUDED = {"no_consent": 3, "unsubscribed": 3, "no_address": 3, "bounced": 3}


class SinkHandler:
    """Stores every message; refuses chosen recipients with 451 (n times) or 550 (always)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.temporary: dict[str, int] = {}
        self.permanent: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.permanent:
            return "550 5.1.1 No such user here"
        with self.lock:
            if self.temporary.get(address, 0) > 0:
                self.temporary[address] -= 1
                return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def by_recipient(self) -> Counter:
        with self.lock:
            return Counter(r for rcpts, _ in self.messages for r in rcpts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink():
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    handler.url = f"smtp://127.0.0.1:{controller.port}"
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def smtp_settings(settings, smtp_sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.NEWSLETTER_RATE_PER_SECOND = settings.NEWSLETTER_RATE_PER_HOUR = 0
    settings.NEWSLETTER_RETRY_BACKOFF_SECONDS = 0
    settings.NEWSLETTER_CHUNK_SIZE = 10
    return settings


def worker_env(sink, **extra) -> dict:
    """The worker's settings: SMTP at the sink (config.settings.test pins the locmem backend,
    so the worker runs the environment-driven local settings, with DEBUG off)."""
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.local", "DEBUG": "false",
           "EMAIL_URL": sink.url, "NEWSLETTER_RATE_PER_SECOND": "0",
           "NEWSLETTER_RETRY_BACKOFF_SECONDS": "0", "NEWSLETTER_CHUNK_SIZE": "10"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def eligible_emails(clients, marked) -> set[str]:
    out = {c.email for c in clients}
    for members in marked.values():
        out -= {c.email for c in members}
    return out


def unsubscribe_path(message) -> str:
    value = message["List-Unsubscribe"]
    return urlsplit(value.strip().strip("<>")).path


def assert_arrived_once_with_headers(sink, edition, eligible):
    by_to = sink.by_recipient()
    assert set(by_to) == eligible, "nobody excluded got anything, everyone eligible got it"
    assert set(by_to.values()) == {1}
    rows = {d.to_email: d for d in edition.deliveries.filter(status="sent")}
    assert set(rows) == eligible
    ids = Counter(m["Message-ID"] for _, m in sink.messages)
    assert set(ids.values()) == {1}
    for rcpts, message in sink.messages:
        row = rows[rcpts[0]]
        assert message["Message-ID"] == row.message_id
        assert message["To"] == row.to_email
        assert str(message["List-Unsubscribe"]).strip().startswith("<http")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_an_edition_arrives_once_per_eligible_client_over_smtp(
        rm_a, smtp_settings, smtp_sink, django_capture_on_commit_callbacks):
    segment, clients, marked = make_audience(size=30, rm=rm_a, excluded=EXCLUDED)
    author = clients[0].rm
    edition = make_edition(segment=segment, author=author)
    suppress(marked, edition.publication)

    with django_capture_on_commit_callbacks(execute=True):
        dispatch.edition_dispatch_start(edition=edition, actor=None)

    assert_arrived_once_with_headers(smtp_sink, edition, eligible_emails(clients, marked))
    excluded = dict(edition.deliveries.filter(status="excluded")
                    .values_list("client__client_no", "exclusion_reason"))
    assert Counter(excluded.values()) == EXCLUDED


def test_smtp_451_is_retried_and_550_fails_once_and_suppresses(
        rm_a, smtp_settings, smtp_sink, django_capture_on_commit_callbacks):
    segment, clients, marked = make_audience(size=10, rm=rm_a, excluded={})
    edition = make_edition(segment=segment, author=rm_a)
    smtp_sink.temporary = {clients[0].email: 1}
    smtp_sink.permanent = {clients[1].email}

    with django_capture_on_commit_callbacks(execute=True):
        dispatch.edition_dispatch_start(edition=edition, actor=None)

    by_to = smtp_sink.by_recipient()
    assert by_to[clients[0].email] == 1 and clients[1].email not in by_to
    assert len(by_to) == 9
    assert Delivery.objects.get(client=clients[0]).attempts == 2
    failed = Delivery.objects.get(client=clients[1])
    assert failed.status == "failed" and failed.last_error.count("550") >= 1
    assert Suppression.objects.filter(client=clients[1], reason="bounced").exists()
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SENT


def _csrf_post(http, path, data):
    page = http.get(path)
    assert page.status_code == 200
    token = http.cookies["csrftoken"].value
    return http.post(path, {**data, "csrfmiddlewaretoken": token})


def check_unsubscribe_links(sink, edition):
    """GET shows a confirmation; the button (with CSRF) and the one-click POST unsubscribe;
    a tampered link changes nothing and says so."""
    messages = [m for _, m in sink.messages]
    publication = edition.publication
    http = HttpClient(enforce_csrf_checks=True)

    def suppressed(message):
        row = Delivery.objects.get(message_id=message["Message-ID"])
        return Suppression.objects.filter(client_id=row.client_id, publication=publication,
                                          reason="unsubscribed").count()

    first, second, third = messages[:3]
    path = unsubscribe_path(first)
    page = http.get(path)
    assert page.status_code == 200 and b"<form" in page.content and suppressed(first) == 0
    assert http.post(path, {}).status_code == 403  # the page's button needs its CSRF token
    assert _csrf_post(http, path, {}).status_code == 200
    assert suppressed(first) == 1

    one_click = HttpClient(enforce_csrf_checks=True).post(
        unsubscribe_path(second), "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded")
    assert one_click.status_code == 200 and suppressed(second) == 1

    path = unsubscribe_path(third)
    signed = path.rstrip("/").rsplit("/", 1)[1]
    tampered = path.replace(signed, signed[:-1] + ("A" if signed[-1] != "A" else "B"))
    swapped = path.replace(signed.split(":")[0], unsubscribe_path(first).split("/")[3]
                           .split(":")[0])
    for bad in (tampered, swapped):
        response = HttpClient().post(bad, "List-Unsubscribe=One-Click",
                                     content_type="application/x-www-form-urlencoded")
        assert response.status_code == 404
        assert HttpClient().get(bad).status_code == 404
    assert suppressed(third) == 0
    assert Suppression.objects.filter(reason="unsubscribed", publication=publication,
                                      source_delivery__isnull=False).count() == 2


def test_the_unsubscribe_link_in_a_received_message_works(
        rm_a, smtp_settings, smtp_sink, django_capture_on_commit_callbacks):
    segment, clients, marked = make_audience(size=5, rm=rm_a, excluded={})
    edition = make_edition(segment=segment, author=rm_a)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.edition_dispatch_start(edition=edition, actor=None)

    check_unsubscribe_links(smtp_sink, edition)


@pytest.fixture
def worker_audience(transactional_db, rm_a):
    segment, clients, marked = make_audience(size=60, rm=rm_a, excluded=EXCLUDED)
    edition = make_edition(segment=segment, author=rm_a)
    suppress(marked, edition.publication)
    return edition, clients, marked


def test_a_real_worker_sends_the_edition_to_everyone_eligible_exactly_once(
        worker_audience, smtp_sink):
    edition, clients, marked = worker_audience
    smtp_sink.temporary = {sorted(eligible_emails(clients, marked))[0]: 1}

    with running_worker(extra_env=worker_env(smtp_sink)):
        dispatch.edition_dispatch_start(edition=edition, actor=None)
        wait_for(lambda: Edition.objects.get(pk=edition.pk).status == EditionStatus.SENT,
                 timeout=120)

    assert_arrived_once_with_headers(smtp_sink, edition, eligible_emails(clients, marked))
    reasons = Counter(edition.deliveries.filter(status="excluded")
                      .values_list("exclusion_reason", flat=True))
    assert reasons == EXCLUDED
    check_unsubscribe_links(smtp_sink, edition)
