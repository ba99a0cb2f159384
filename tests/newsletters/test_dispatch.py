"""Freeze and dispatch, in process: the outbox, exclusions, retries, pause/resume/cancel, beat."""

import datetime as dt
import smtplib

import pytest
from django.core import mail
from django.utils import timezone

from clients.models import Client
from newsletters import dispatch
from newsletters.approval import approval_fields
from newsletters.models import (
    Delivery,
    Edition,
    EditionArchive,
    EditionSection,
    EditionStatus,
    Publication,
    Suppression,
)
from outreach.email.outbox import claim
from segments.models import Segment, SegmentMembership
from tests.factories import ClientFactory, staff

EXCLUDED_KINDS = {"no_consent": 2, "unsubscribed": 2, "no_address": 2, "bounced": 2}


def make_audience(*, size: int, rm=None, excluded=None, code: str = "hnw-weekly-audience"):
    """A static segment of `size` clients; the first ones are excluded as `excluded` says."""
    excluded = EXCLUDED_KINDS if excluded is None else excluded
    segment = Segment.objects.create(code=code, kind="static", name_en="HNW audience",
                                     name_zh="高净值读者")
    clients = [ClientFactory(rm=rm, email=f"reader{i:04d}@client.example") for i in range(size)]
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, client=c) for c in clients])
    marked = {}
    position = 0
    for reason, count in excluded.items():
        marked[reason] = clients[position:position + count]
        position += count
    for c in marked.get("no_consent", []):
        Client.objects.filter(pk=c.pk).update(consent_email=False)
    for c in marked.get("no_address", []):
        Client.objects.filter(pk=c.pk).update(email="")
    return segment, clients, marked


def make_edition(*, segment, author, tracking: bool = False, slug: str = "hnw-weekly"):
    publication = Publication.objects.create(
        name="HNW Weekly Insight", slug=slug, audience=segment, from_name="Research Desk",
        from_email="insight@broker.example", reply_to="replies@broker.example",
        tracking_enabled=tracking)
    edition = Edition.objects.create(publication=publication, number=1, subject="本周市场观点",
                                     preheader="Rates, credit and your holdings",
                                     status=EditionStatus.APPROVED, author=author,
                                     approved_version=1)
    EditionSection.objects.create(edition=edition, position=1, kind="editorial",
                                  title="Market view", body="Rates are **steady**. "
                                  "[Full report](https://research.broker.example/r/1)")
    Edition.objects.filter(pk=edition.pk).update(**approval_fields(edition))  # as approved
    edition.refresh_from_db()
    return edition


def suppress(marked, publication):
    for c in marked.get("unsubscribed", []):
        Suppression.objects.create(client=c, publication=publication, reason="unsubscribed")
    for c in marked.get("bounced", []):
        Suppression.objects.create(client=c, publication=None, reason="bounced")


@pytest.fixture
def author(branch):
    return staff("ops", username="editor", branch=None)


@pytest.fixture
def audience(rm_a):
    return make_audience(size=20, rm=rm_a)


@pytest.fixture
def edition(audience, author):
    segment, _, marked = audience
    edition = make_edition(segment=segment, author=author)
    suppress(marked, edition.publication)
    return edition


@pytest.fixture
def fast_settings(settings):
    settings.NEWSLETTER_RATE_PER_SECOND = 0
    settings.NEWSLETTER_RATE_PER_HOUR = 0
    settings.NEWSLETTER_RETRY_BACKOFF_SECONDS = 0
    settings.NEWSLETTER_CHUNK_SIZE = 7
    return settings


def freeze(edition):
    """Freeze without running the queued dispatch (the test drives it)."""
    from unittest import mock

    from newsletters.dispatch import outbox

    with mock.patch.object(outbox, "edition_dispatch_kick"):
        return dispatch.edition_dispatch_start(edition=edition, actor=None)


def test_freeze_makes_one_row_per_audience_member_with_exclusion_reasons(edition, audience):
    _, clients, marked = audience

    freeze(edition)

    rows = {d.client_id: d for d in edition.deliveries.all()}
    assert len(rows) == len(clients)
    for reason, members in marked.items():
        for c in members:
            assert (rows[c.pk].status, rows[c.pk].exclusion_reason) == ("excluded", reason)
    pending = [d for d in rows.values() if d.status == "pending"]
    assert len(pending) == len(clients) - sum(EXCLUDED_KINDS.values())
    d = pending[0]
    assert d.message_id == (f"<edition-{edition.id}.client-{d.client_id}.{d.token[:12]}"
                            "@broker.example>")
    assert len({r.token for r in rows.values()}) == len(rows)
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SENDING
    archive = EditionArchive.objects.get(edition=edition)
    assert archive.audience_segment == "hnw-weekly-audience"
    assert archive.recipients == len(pending)
    assert archive.excluded == EXCLUDED_KINDS
    assert archive.content["sections"][0]["title"] == "Market view"


def test_a_repeated_freeze_duplicates_nothing(edition, audience):
    freeze(edition)
    tokens = set(Delivery.objects.values_list("token", flat=True))
    Edition.objects.filter(pk=edition.pk).update(status=EditionStatus.APPROVED)

    freeze(edition)

    assert set(Delivery.objects.values_list("token", flat=True)) == tokens


def test_unsubscribed_from_all_publications_is_excluded(edition, audience):
    _, clients, _ = audience
    Suppression.objects.create(client=clients[-1], publication=None, reason="unsubscribed")

    freeze(edition)

    assert Delivery.objects.get(client=clients[-1]).exclusion_reason == "unsubscribed"


def test_only_approved_or_scheduled_editions_can_be_sent(edition):
    from core.errors import ApplicationError

    Edition.objects.filter(pk=edition.pk).update(status=EditionStatus.DRAFT)
    with pytest.raises(ApplicationError):
        dispatch.edition_dispatch_start(edition=edition, actor=None)


def test_dispatch_sends_everyone_eligible_once_and_finishes(edition, audience, fast_settings,
                                                           django_capture_on_commit_callbacks):
    _, clients, marked = audience
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.edition_dispatch_start(edition=edition, actor=None)  # eager: sends in process
    excluded = {c.email for cs in marked.values() for c in cs}

    to = [m.to[0] for m in mail.outbox]
    assert sorted(to) == sorted(c.email for c in clients if c.email not in excluded and c.email)
    assert len({m.extra_headers["Message-ID"] for m in mail.outbox}) == len(to)
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SENT and edition.sent_at is not None
    sent = edition.deliveries.filter(status="sent")
    assert sent.count() == len(to)
    assert all(d.sent_at and d.attempts == 1 and d.context for d in sent)
    stats = dispatch.edition_delivery_stats(edition)
    assert (stats["sent"], stats["excluded"], stats["audience"]) == (12, 8, 20)


class FlakyBackend:
    """A mail backend refusing some recipients: 451 once (temporary), 550 always (permanent)."""

    temporary: dict = {}
    permanent: set = set()
    sent: list = []

    def __init__(self, fail_silently=False, **kwargs):
        self.connection = None

    def open(self):
        self.connection = object()
        return True

    def close(self):
        self.connection = None

    def send_messages(self, messages):
        for m in messages:
            rcpt = m.to[0]
            if rcpt in self.permanent:
                raise smtplib.SMTPRecipientsRefused({rcpt: (550, b"no such user")})
            if self.temporary.get(rcpt, 0) > 0:
                self.temporary[rcpt] -= 1
                raise smtplib.SMTPRecipientsRefused({rcpt: (451, b"try again later")})
            self.sent.append(rcpt)
        return len(messages)


@pytest.fixture
def flaky(fast_settings):
    fast_settings.EMAIL_BACKEND = "tests.newsletters.test_dispatch.FlakyBackend"
    FlakyBackend.temporary, FlakyBackend.permanent, FlakyBackend.sent = {}, set(), []
    FlakyBackend.settings = fast_settings
    return FlakyBackend


def test_temporary_failures_are_retried_and_permanent_ones_never(
        edition, audience, flaky, django_capture_on_commit_callbacks):
    _, clients, _ = audience
    eligible = [c for c in clients[8:]]
    flaky.temporary = {eligible[0].email: 2}
    flaky.permanent = {eligible[1].email}

    with django_capture_on_commit_callbacks(execute=True):
        dispatch.edition_dispatch_start(edition=edition, actor=None)

    assert flaky.sent.count(eligible[0].email) == 1
    assert eligible[1].email not in flaky.sent
    retried = Delivery.objects.get(client=eligible[0])
    assert (retried.status, retried.attempts) == ("sent", 3)
    failed = Delivery.objects.get(client=eligible[1])
    assert failed.status == "failed" and "550" in failed.last_error and failed.attempts == 1
    assert Suppression.objects.filter(client=eligible[1], reason="bounced",
                                      publication=None).count() == 1
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SENT


def test_retries_wait_for_their_backoff_and_give_up_after_max_attempts(
        edition, audience, flaky, django_capture_on_commit_callbacks):
    _, clients, _ = audience
    target = clients[8]
    flaky.temporary = {target.email: 99}
    flaky_settings = flaky.settings
    flaky_settings.NEWSLETTER_RETRY_BACKOFF_SECONDS = 60
    flaky_settings.NEWSLETTER_MAX_ATTEMPTS = 3
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.edition_dispatch_start(edition=edition, actor=None)
    row = Delivery.objects.get(client=target)
    assert row.status == "retry" and row.attempts == 1
    assert row.next_attempt_at > timezone.now() + dt.timedelta(seconds=50)
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SENDING  # waits for the retry

    for _ in range(3):
        Delivery.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        with django_capture_on_commit_callbacks(execute=True):
            dispatch.editions_due()
    row.refresh_from_db()
    assert row.status == "failed" and row.attempts == 3
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SENT


def test_pause_stops_claiming_and_resume_finishes(edition, audience, fast_settings,
                                                  django_capture_on_commit_callbacks):
    freeze(edition)
    dispatch.edition_dispatch_pause(edition=edition)
    assert dispatch.edition_dispatch_run(edition_id=edition.id) == "paused"
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        dispatch.edition_dispatch_resume(edition=edition)  # eager: the kick sends in process

    assert len(mail.outbox) == 12
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SENT


def test_cancel_marks_every_unsent_row_cancelled(edition, audience, fast_settings):
    freeze(edition)
    dispatch.edition_dispatch_cancel(edition=edition, comment="wrong figures")

    assert dispatch.edition_dispatch_run(edition_id=edition.id) == "cancelled"
    assert mail.outbox == []
    assert edition.deliveries.filter(status="cancelled").count() == 12
    assert edition.deliveries.filter(status="excluded").count() == 8


def test_a_scheduled_edition_goes_out_from_the_minute_beat(edition, audience, fast_settings,
                                                           django_capture_on_commit_callbacks):
    Edition.objects.filter(pk=edition.pk).update(
        status=EditionStatus.SCHEDULED, scheduled_at=timezone.now() + dt.timedelta(minutes=5))
    assert dispatch.editions_due()["started"] == []

    with django_capture_on_commit_callbacks(execute=True):
        result = dispatch.editions_due(now=timezone.now() + dt.timedelta(minutes=6))

    assert result["started"] == [edition.id]
    assert len(mail.outbox) == 12


def test_stale_claims_go_back_to_pending_and_the_beat_finishes_the_edition(
        edition, audience, fast_settings, django_capture_on_commit_callbacks):
    freeze(edition)
    claimed = claim("newsletter", edition.id, 5)  # a worker claimed five rows, then died
    Delivery.objects.filter(id__in=claimed).update(
        claimed_at=timezone.now() - dt.timedelta(minutes=10))

    with django_capture_on_commit_callbacks(execute=True):
        result = dispatch.editions_due()

    assert result["reclaimed"] == 5
    assert len(mail.outbox) == 12
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SENT


def test_the_minute_beat_is_a_database_schedule(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="newsletters.tasks.editions_due_task")
    assert task.enabled and task.interval.every == 1 and task.interval.period == "minutes"


def test_a_copy_that_fails_to_render_is_marked_failed_and_the_others_go_out(
        edition, audience, fast_settings, monkeypatch, django_capture_on_commit_callbacks):
    """The render thread (outreach.email.run._RenderAhead) hands a failed copy back to the loop,
    which marks that row failed with the reason and sends everyone else."""
    from newsletters import rendering

    _, clients, marked = audience
    excluded = {c.email for cs in marked.values() for c in cs}
    eligible = sorted(c.email for c in clients if c.email not in excluded and c.email)
    broken = eligible[3]
    real = rendering.render_edition

    def render_edition(*, edition, context, delivery=None, content=None):
        if delivery is not None and delivery.to_email == broken:
            raise ValueError("a product name the template cannot print")
        return real(edition=edition, context=context, delivery=delivery, content=content)

    monkeypatch.setattr(rendering, "render_edition", render_edition)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.edition_dispatch_start(edition=edition, actor=None)
    assert sorted(m.to[0] for m in mail.outbox) == [e for e in eligible if e != broken]
    failed = edition.deliveries.get(to_email=broken)
    assert failed.status == "failed"
    assert "a product name the template cannot print" in failed.last_error
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SENT


def test_deleting_an_edition_takes_its_outbox_rows_and_no_other(edition, audience):
    freeze(edition)
    other = Delivery.objects.create(source="campaign", source_id=edition.id,
                                    client=Client.objects.first(), message_id="<c@x>", token="c")
    assert edition.deliveries.count() == 20
    Edition.objects.filter(pk=edition.pk).delete()
    assert list(Delivery.objects.all()) == [other]
