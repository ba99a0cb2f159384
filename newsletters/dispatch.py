"""Outbox dispatch: freeze the audience, claim rows in chunks, send over SMTP, finish.

The outbox (Delivery) is the job: every row says what happened to one client. Workers claim
pending rows with row locks that skip locked rows, so any number of them share one edition;
each message is marked sent right after the SMTP server accepted it, so a killed worker loses
nothing and repeats at most the one message it had in flight (its claimed rows go back to
pending once the claim is stale: `deliveries_reclaim_stale`, run by the beat task every minute).
"""

import contextlib
import datetime as dt
import json
import logging
import secrets
import smtplib
import threading
import time

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, Exists, OuterRef, Q, Value, When
from django.utils import timezone

from core.errors import ApplicationError

from .models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionArchive,
    EditionEvent,
    EditionStatus,
    ExclusionReason,
    Feedback,
    Suppression,
)

log = logging.getLogger(__name__)

OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRY, DeliveryStatus.SENDING)
FALLBACK_TEMPLATE_VERSION = "newsletter-email-1"


# --- Freeze ----------------------------------------------------------------------------------

def _audience_with_reasons(edition: Edition):
    """The publication's audience, each client annotated with why they are left out ('' = in)."""
    from clients.models import Client
    from segments.models import SegmentMembership

    publication = edition.publication
    suppressed = Suppression.objects.filter(client=OuterRef("pk"))
    unsubscribed = suppressed.filter(
        Q(publication=publication) | Q(publication__isnull=True), reason=Suppression.UNSUBSCRIBED)
    bounced = suppressed.filter(reason=Suppression.BOUNCED)
    members = SegmentMembership.objects.filter(segment_id=publication.audience_id,
                                               client=OuterRef("pk"))
    reason = Case(
        When(consent_email=False, then=Value(ExclusionReason.NO_CONSENT.value)),
        When(Exists(unsubscribed), then=Value(ExclusionReason.UNSUBSCRIBED.value)),
        When(Q(email="") | Q(email__isnull=True), then=Value(ExclusionReason.NO_ADDRESS.value)),
        When(Exists(bounced), then=Value(ExclusionReason.BOUNCED.value)),
        default=Value(""), output_field=CharField())
    return (Client.objects.filter(Exists(members)).annotate(reason=reason)
            .values("id", "email", "reason").order_by())


def _message_domain(edition: Edition) -> str:
    return (edition.publication.from_email.rpartition("@")[2] or "localhost").lower()


def _insert_outbox(edition: Edition) -> None:
    """One Delivery per audience member, set-based; a repeated freeze inserts nothing twice."""
    audience = _audience_with_reasons(edition)
    domain = _message_domain(edition)
    if connection.vendor == "postgresql":
        select_sql, params = audience.query.sql_with_params()
        table = Delivery._meta.db_table
        # gen_random_uuid() draws from the server's strong random source (pg_strong_random).
        sql = f"""
            INSERT INTO {table} (edition_id, client_id, status, exclusion_reason, to_email,
                                 message_id, token, attempts, clicks, last_error, context)
            SELECT %s, a.id,
                   CASE WHEN a.reason = '' THEN 'pending' ELSE 'excluded' END,
                   a.reason, COALESCE(a.email, ''),
                   '<edition-' || %s || '.client-' || a.id || '.' || left(a.token, 12)
                       || '@' || %s || '>',
                   a.token, 0, 0, '', '{{}}'::jsonb
            FROM (SELECT m.*, replace(gen_random_uuid()::text || gen_random_uuid()::text,
                                      '-', '') AS token
                  FROM ({select_sql}) m) a
            ON CONFLICT (edition_id, client_id) DO NOTHING"""
        with connection.cursor() as cursor:
            cursor.execute(sql, [edition.id, str(edition.id), domain, *params])
        return
    existing = set(edition.deliveries.values_list("client_id", flat=True))
    rows = []
    for member in audience.iterator(chunk_size=2000):
        if member["id"] in existing:
            continue
        token = secrets.token_urlsafe(32)
        rows.append(Delivery(
            edition_id=edition.id, client_id=member["id"],
            status=DeliveryStatus.EXCLUDED if member["reason"] else DeliveryStatus.PENDING,
            exclusion_reason=member["reason"], to_email=member["email"] or "", token=token,
            message_id=f"<edition-{edition.id}.client-{member['id']}.{token[:12]}@{domain}>"))
    Delivery.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


def _template_version() -> str:
    try:
        from . import rendering
    except ImportError:  # the renderer is another module's; the archive still gets a version
        return FALLBACK_TEMPLATE_VERSION
    return str(getattr(rendering, "TEMPLATE_VERSION", FALLBACK_TEMPLATE_VERSION))


def _archive(edition: Edition) -> EditionArchive:
    counts = dict(edition.deliveries.values_list("status").annotate(n=Count("id")).order_by())
    excluded = dict(edition.deliveries.filter(status=DeliveryStatus.EXCLUDED)
                    .values_list("exclusion_reason").annotate(n=Count("id")).order_by())
    content = {
        "subject": edition.subject,
        "preheader": edition.preheader,
        "number": edition.number,
        "publication": edition.publication.slug,
        "sections": [
            {"position": s.position, "kind": s.kind, "title": s.title, "body": s.body,
             "data": s.data}
            for s in edition.sections.order_by("position")
        ],
    }
    segment = edition.publication.audience
    archive, _ = EditionArchive.objects.update_or_create(edition=edition, defaults={
        "content_version": edition.content_version,
        "content": json.loads(json.dumps(content, cls=DjangoJSONEncoder)),
        "template_version": _template_version(),
        "audience_segment": segment.code,
        "audience_rule_version": segment.rule_version,
        "recipients": counts.get(DeliveryStatus.PENDING, 0),
        "excluded": excluded,
    })
    return archive


def _event(edition: Edition, *, actor, from_status: str, to_status: str, comment: str = ""):
    EditionEvent.objects.create(edition=edition, actor=actor, from_status=from_status,
                                to_status=to_status, comment=comment)


def edition_dispatch_start(*, edition: Edition, actor=None) -> Edition:
    """Freeze the audience into the outbox, archive the edition as sent, queue the dispatch.

    Idempotent: an edition already sending (or further) is returned unchanged.
    """
    with transaction.atomic():
        edition = (Edition.objects.select_for_update().select_related("publication__audience")
                   .get(pk=edition.pk))
        if edition.status in (EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.SENT):
            return edition
        if edition.status not in (EditionStatus.APPROVED, EditionStatus.SCHEDULED):
            raise ApplicationError(
                f"Only an approved or scheduled edition can be sent (this one is "
                f"{edition.get_status_display()}).", code="edition_not_sendable")
        if edition.approved_version is not None and \
                edition.approved_version != edition.content_version:
            raise ApplicationError("The edition changed after approval; submit it again.",
                                   code="edition_not_sendable")
        now = timezone.now()
        from_status = edition.status
        _insert_outbox(edition)
        edition.status = EditionStatus.SENDING
        edition.send_started_at = now
        edition.audience_frozen_at = now
        edition.audience_rule_version = edition.publication.audience.rule_version
        edition.save(update_fields=["status", "send_started_at", "audience_frozen_at",
                                    "audience_rule_version", "updated_at"])
        _archive(edition)
        _event(edition, actor=actor, from_status=from_status, to_status=EditionStatus.SENDING)
        transaction.on_commit(lambda: edition_dispatch_kick(edition_id=edition.id))
    return edition


def edition_dispatch_kick(*, edition_id: int, tasks: int | None = None) -> None:
    """Queue dispatch tasks for an edition; extra ones find nothing left and return at once."""
    from .tasks import edition_dispatch_task

    count = max(1, tasks if tasks is not None else settings.NEWSLETTER_DISPATCH_TASKS)
    if edition_dispatch_task.app.conf.task_always_eager:
        count = 1  # in-process: one loop sends everything
    for _ in range(count):
        edition_dispatch_task.delay(edition_id)


# --- Pause, resume, cancel ---------------------------------------------------------------------

def _transition(edition: Edition, *, allowed: tuple, to_status: str, actor, comment: str = ""):
    with transaction.atomic():
        locked = Edition.objects.select_for_update().get(pk=edition.pk)
        if locked.status == to_status:
            return locked, False
        if locked.status not in allowed:
            raise ApplicationError(
                f"This edition is {locked.get_status_display()}; it cannot become "
                f"{EditionStatus(to_status).label}.", code="edition_bad_transition")
        from_status = locked.status
        locked.status = to_status
        locked.save(update_fields=["status", "updated_at"])
        _event(locked, actor=actor, from_status=from_status, to_status=to_status,
               comment=comment)
    return locked, True


def edition_dispatch_pause(*, edition: Edition, actor=None) -> Edition:
    """Workers stop claiming; rows they claimed but did not send go back to pending."""
    edition, _ = _transition(edition, allowed=(EditionStatus.SENDING,),
                             to_status=EditionStatus.PAUSED, actor=actor)
    return edition


def edition_dispatch_resume(*, edition: Edition, actor=None) -> Edition:
    edition, changed = _transition(edition, allowed=(EditionStatus.PAUSED,),
                                   to_status=EditionStatus.SENDING, actor=actor)
    if changed:
        transaction.on_commit(lambda: edition_dispatch_kick(edition_id=edition.id))
    return edition


def edition_dispatch_cancel(*, edition: Edition, actor=None, comment: str = "") -> Edition:
    """Nothing more goes out: every row not yet sent becomes cancelled."""
    edition, _ = _transition(
        edition, allowed=(EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.SCHEDULED,
                          EditionStatus.APPROVED),
        to_status=EditionStatus.CANCELLED, actor=actor, comment=comment)
    _cancel_open_rows(edition.id, include_sending=False)
    return edition


def _cancel_open_rows(edition_id: int, *, include_sending: bool, ids=None) -> int:
    statuses = [DeliveryStatus.PENDING, DeliveryStatus.RETRY]
    if include_sending:
        statuses.append(DeliveryStatus.SENDING)
    rows = Delivery.objects.filter(edition_id=edition_id, status__in=statuses)
    if ids is not None:
        rows = rows.filter(id__in=ids)
    return rows.update(status=DeliveryStatus.CANCELLED, claimed_at=None, next_attempt_at=None)


# --- Rate limit ----------------------------------------------------------------------------------

class RateLimiter:
    """Messages per second and per hour, shared by every worker through Redis when the broker
    is Redis (fixed one-second and one-hour windows: INCR + EXPIRE), per process otherwise."""

    _local = threading.local()

    def __init__(self, *, per_second: float, per_hour: int):
        self.per_second = per_second
        self.per_hour = per_hour
        self.redis = _redis_client()
        # One installation (its database) shares the limit; another one on the same Redis not.
        self.prefix = f"crm:{settings.DATABASES['default']['NAME']}:newsletter:rate"
        self._window = None
        self._count = 0
        self._hour = None
        self._hour_count = 0

    def acquire(self) -> None:
        if self.per_second <= 0 and self.per_hour <= 0:
            return
        while True:
            wait = self._try()
            if wait <= 0:
                return
            time.sleep(wait)

    def _try(self) -> float:
        now = time.time()
        second, hour = int(now), int(now // 3600)
        if self.redis is not None:
            try:
                pipe = self.redis.pipeline()
                pipe.incr(f"{self.prefix}:s:{second}")
                pipe.expire(f"{self.prefix}:s:{second}", 5)
                pipe.incr(f"{self.prefix}:h:{hour}")
                pipe.expire(f"{self.prefix}:h:{hour}", 3700)
                per_second_used, _, per_hour_used, _ = pipe.execute()
            except Exception:  # Redis down: do not stop sending, fall back to this process
                log.warning("rate limiter: Redis unavailable, limiting per process")
                self.redis = None
                return self._try()
        else:
            if self._window != second:
                self._window, self._count = second, 0
            if self._hour != hour:
                self._hour, self._hour_count = hour, 0
            self._count += 1
            self._hour_count += 1
            per_second_used, per_hour_used = self._count, self._hour_count
        if self.per_hour > 0 and per_hour_used > self.per_hour:
            return (hour + 1) * 3600 - now
        if self.per_second > 0 and per_second_used > self.per_second:
            return (second + 1) - now
        return 0


def _redis_client():
    url = settings.CELERY_BROKER_URL or ""
    if not url.startswith(("redis://", "rediss://")):
        return None
    try:
        import redis
    except ImportError:
        return None
    return redis.Redis.from_url(url, socket_timeout=5)


# --- Claim, send, finish ----------------------------------------------------------------------

def _claim(edition_id: int, size: int) -> list[int]:
    now = timezone.now()
    due = Q(status=DeliveryStatus.PENDING) | Q(status=DeliveryStatus.RETRY,
                                               next_attempt_at__lte=now)
    with transaction.atomic():
        rows = Delivery.objects.filter(due, edition_id=edition_id).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        ids = list(rows.values_list("id", flat=True)[:size])
        if ids:
            Delivery.objects.filter(id__in=ids).update(status=DeliveryStatus.SENDING,
                                                       claimed_at=now)
    return ids


def _jsonable(value) -> str:
    """The personal data snapshot as JSON text for Delivery.context."""
    try:
        return json.dumps(value, cls=DjangoJSONEncoder, default=str)
    except (TypeError, ValueError):
        return "{}"


def _smtp_code(exc: Exception, address: str) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return codes[0] if codes else None
    return getattr(exc, "smtp_code", None)


class _Outcome:
    SENT, RETRY, FAILED, BOUNCED = "sent", "retry", "failed", "bounced"


def _classify(exc: Exception, address: str) -> tuple[str, str]:
    code = _smtp_code(exc, address)
    text = f"{type(exc).__name__}: {exc}"[:1000]
    if code is not None and 500 <= code < 600:
        if isinstance(exc, smtplib.SMTPRecipientsRefused) and code in (550, 551, 553):
            return _Outcome.BOUNCED, text
        return _Outcome.FAILED, text
    return _Outcome.RETRY, text  # 4xx, a dropped connection, a timeout: try again later


class _Sender:
    """One SMTP connection for a chunk; reopened only after the server dropped it.

    With Django's SMTP backend the message goes out as bytes built by
    rendering.message_bytes over the backend's own smtplib connection (same TLS/auth settings);
    any other backend (locmem, file, console, a custom one) gets the EmailMessage."""

    def __init__(self):
        self.backend = get_connection(fail_silently=False)
        self.is_open = False
        self.raw = isinstance(self.backend, SMTPBackend)

    def _open(self) -> None:
        if not self.is_open:
            self.backend.open()
            self.is_open = True

    def send(self, message) -> None:
        self._open()
        try:
            if self.raw:
                envelope_from, recipients, data = message
                self.backend.connection.sendmail(envelope_from, recipients, data)
                return
            message.connection = self.backend
            sent = self.backend.send_messages([message])
        except (smtplib.SMTPServerDisconnected, OSError, smtplib.SMTPHeloError):
            self.reset()
            raise
        if not sent:
            raise smtplib.SMTPException("the mail backend did not send the message")

    def reset(self) -> None:
        try:
            self.backend.close()
        except Exception:  # a dead connection cannot be closed politely
            pass
        self.backend.connection = None
        self.is_open = False

    def close(self) -> None:
        if self.is_open:
            self.reset()


def _mark_sent(delivery: Delivery, context_json: str, now) -> None:
    """One short statement, committed at once (autocommit): the row is sent before the next
    message is even rendered, so a kill repeats at most the message in flight."""
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, sent_at = %s, claimed_at = NULL, "  # noqa: S608
            "attempts = %s, next_attempt_at = NULL, last_error = '', context = %s "
            "WHERE id = %s",
            [DeliveryStatus.SENT.value, now, delivery.attempts + 1, context_json, delivery.pk])


def _mark_failure(delivery: Delivery, outcome: str, error: str, now) -> None:
    attempts = delivery.attempts + 1
    if outcome == _Outcome.RETRY and attempts < settings.NEWSLETTER_MAX_ATTEMPTS:
        backoff = settings.NEWSLETTER_RETRY_BACKOFF_SECONDS * (2 ** delivery.attempts)
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.RETRY, attempts=attempts, claimed_at=None, last_error=error,
            next_attempt_at=now + dt.timedelta(seconds=backoff))
        return
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED, attempts=attempts, claimed_at=None, last_error=error,
        next_attempt_at=None)
    if outcome == _Outcome.BOUNCED:
        suppression_add(client_id=delivery.client_id, publication_id=None,
                        reason=Suppression.BOUNCED, source_delivery_id=delivery.pk)


def suppression_add(*, client_id: int, publication_id: int | None, reason: str,
                    source_delivery_id: int | None = None) -> tuple[Suppression, bool]:
    """get_or_create by hand: PostgreSQL's unique constraint does not dedupe a NULL publication."""
    with transaction.atomic():
        existing = (Suppression.objects.select_for_update()
                    .filter(client_id=client_id, publication_id=publication_id, reason=reason)
                    .first())
        if existing is not None:
            return existing, False
        return Suppression.objects.create(client_id=client_id, publication_id=publication_id,
                                          reason=reason,
                                          source_delivery_id=source_delivery_id), True


class _Renderer:
    """Builds each client's message with the content module's renderer: the personal data of
    a whole chunk in a few queries (rendering.delivery_contexts), the edition's Markdown and
    CSS from the renderer's per-process caches."""

    def __init__(self, edition: Edition, *, raw: bool = False):
        from . import rendering

        self.rendering = rendering
        self.edition = edition
        self.raw = raw
        self.contexts: dict[int, dict] = {}

    def prepare(self, deliveries: list[Delivery]) -> None:
        """Personal data for a chunk; a failure here falls back to one client at a time."""
        try:
            self.contexts = self.rendering.delivery_contexts(
                edition=self.edition, clients=[d.client for d in deliveries])
        except Exception:
            log.exception("newsletter: batched personal data failed; per client instead")
            self.contexts = {}

    def message(self, delivery: Delivery):
        context = self.contexts.pop(delivery.client_id, None)
        if context is None:
            context = self.rendering.delivery_context(edition=self.edition,
                                                      client=delivery.client)
        rendered = self.rendering.render_edition(edition=self.edition, context=context,
                                                 delivery=delivery)
        if self.raw:
            return self.rendering.message_bytes(delivery=delivery, rendered=rendered), context
        return self.rendering.build_message(delivery=delivery, rendered=rendered), context


def _edition_for_sending(edition_id: int) -> Edition:
    return (Edition.objects.select_related("publication", "publication__audience")
            .prefetch_related("sections").get(pk=edition_id))


def _status_of(edition_id: int) -> str | None:
    return Edition.objects.filter(pk=edition_id).values_list("status", flat=True).first()


def edition_dispatch_run(*, edition_id: int, max_seconds: float | None = None) -> str:
    """Claim, render and send chunks until the edition has nothing due, is paused or cancelled.

    Returns what stopped it: "sent", "waiting" (retries not yet due or rows claimed by another
    worker), "paused", "cancelled", "gone" or "not sending".
    """
    status = _status_of(edition_id)
    if status is None:
        return "gone"
    if status == EditionStatus.CANCELLED:
        _cancel_open_rows(edition_id, include_sending=False)
        return "cancelled"
    if status != EditionStatus.SENDING:
        return "paused" if status == EditionStatus.PAUSED else "not sending"
    edition = _edition_for_sending(edition_id)
    renderer = _Renderer(edition)
    limiter = RateLimiter(per_second=settings.NEWSLETTER_RATE_PER_SECOND,
                          per_hour=settings.NEWSLETTER_RATE_PER_HOUR)
    with _dispatch_session():
        pipeline = _Pipeline.for_this_connection()
        try:
            return _run_chunks(edition_id, edition, renderer, limiter, max_seconds, pipeline)
        finally:
            pipeline.close()


def _synchronous_commit_mode() -> str | None:
    mode = str(getattr(settings, "NEWSLETTER_DISPATCH_SYNCHRONOUS_COMMIT", "on")).lower()
    if connection.vendor != "postgresql" or mode not in ("off", "local"):
        return None
    return mode


def _set_synchronous_commit() -> bool:
    mode = _synchronous_commit_mode()
    if mode is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"SET synchronous_commit TO {mode}")
    return True


@contextlib.contextmanager
def _dispatch_session():
    """PostgreSQL with NEWSLETTER_DISPATCH_SYNCHRONOUS_COMMIT = "off" (default "on"): this
    session's commits do not wait for the WAL flush.
    A committed "sent" is visible at once and survives any kill of the worker -- the guarantee
    "a kill repeats at most the message in flight" is unchanged; only a crash of the database
    server itself could forget the last fraction of a second of "sent" marks (those clients
    would get the edition again), never corrupt anything. Reset when the run ends."""
    if not _set_synchronous_commit():
        yield
        return
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        except Exception:  # a broken connection is discarded by Django anyway
            log.warning("newsletter: could not reset synchronous_commit", exc_info=True)


def _run_chunks(edition_id: int, edition: Edition, renderer: _Renderer, limiter: RateLimiter,
                max_seconds: float | None, pipeline: "_Pipeline") -> str:
    started = time.monotonic()
    while True:
        status = _status_of(edition_id)  # between chunks: paused or cancelled stops claiming
        if status != EditionStatus.SENDING:
            if status == EditionStatus.CANCELLED:
                _cancel_open_rows(edition_id, include_sending=False)
            return {EditionStatus.PAUSED: "paused", EditionStatus.CANCELLED: "cancelled",
                    None: "gone"}.get(status, "not sending")
        ids = _claim(edition_id, settings.NEWSLETTER_CHUNK_SIZE)
        if not ids:
            return "sent" if edition_finish_if_done(edition_id=edition_id) else "waiting"
        stopped = _send_chunk(edition, ids, renderer, limiter, pipeline)
        if stopped:
            return stopped
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            return "continued"


class _Pipeline:
    """Send-and-mark, one message at a time, on a helper thread while the main thread renders
    the next message (rendering is CPU; sending and marking are waits on the SMTP server and
    the database, which release the GIL).

    Strictly sequential: a message is handed over only after the previous one was sent AND
    its row marked (or marked failed), so at any instant at most one message is accepted by
    SMTP but not yet marked -- the same guarantee as sending inline. A kill loses the rendered
    next message (never sent: its row is still claimed and goes back to pending) and repeats
    at most the one in flight. Used on PostgreSQL outside a transaction (a worker); inline
    otherwise (tests run inside a transaction another connection could not see).
    """

    def __init__(self, *, threaded: bool):
        self.executor = None
        if threaded:
            from concurrent.futures import ThreadPoolExecutor

            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nl-send")
        self.pending = None

    @classmethod
    def for_this_connection(cls) -> "_Pipeline":
        threaded = (connection.vendor == "postgresql" and not connection.in_atomic_block
                    and bool(getattr(settings, "NEWSLETTER_DISPATCH_PIPELINE", True)))
        return cls(threaded=threaded)

    def submit(self, function, *args) -> None:
        self.wait()
        if self.executor is None:
            function(*args)
        else:
            self.pending = self.executor.submit(_in_send_thread, function, *args)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()  # re-raises what the helper thread raised

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self.executor is not None:
                self.executor.submit(_close_send_thread).result()
                self.executor.shutdown(wait=True)
                self.executor = None


_send_thread = threading.local()


def _in_send_thread(function, *args):
    if not getattr(_send_thread, "session", False):
        _set_synchronous_commit()
        _send_thread.session = True
    return function(*args)


def _close_send_thread() -> None:
    _send_thread.session = False
    connection.close()  # the helper thread's own database connection


def _deliver(sender: "_Sender", delivery: Delivery, message, context_json: str) -> None:
    """Send one message; mark its row sent right after the server accepted it, or failed /
    to retry with the SMTP error."""
    try:
        sender.send(message)
    except (smtplib.SMTPException, OSError) as exc:
        outcome, error = _classify(exc, delivery.to_email)
        _mark_failure(delivery, outcome, error, timezone.now())
    else:
        _mark_sent(delivery, context_json, timezone.now())


def _send_chunk(edition: Edition, ids: list[int], renderer: _Renderer,
                limiter: RateLimiter, pipeline: _Pipeline | None = None) -> str | None:
    deliveries = list(Delivery.objects.filter(id__in=ids, status=DeliveryStatus.SENDING)
                      .select_related("client", "client__rm").order_by("id"))
    for delivery in deliveries:
        delivery.edition = edition  # one edition instance: the renderer caches per edition
    own_pipeline = pipeline is None
    pipeline = pipeline or _Pipeline(threaded=False)
    sender = _Sender()
    renderer.raw = sender.raw
    checked = time.monotonic()
    done: set[int] = set()
    try:
        renderer.prepare(deliveries)
        for delivery in deliveries:
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                pipeline.wait()
                stopped = _stop_requested(edition.id, [i for i in ids if i not in done])
                if stopped:
                    return stopped
            try:
                message, context = renderer.message(delivery)
                context_json = _jsonable(context)
            except Exception as exc:  # a bug or bad data for one client must not stop the rest
                log.exception("newsletter: rendering delivery %s failed", delivery.pk)
                _mark_failure(delivery, _Outcome.FAILED, f"render: {exc}"[:1000], timezone.now())
                done.add(delivery.pk)
                continue
            limiter.acquire()
            pipeline.submit(_deliver, sender, delivery, message, context_json)
            done.add(delivery.pk)
        pipeline.wait()
    finally:
        try:
            if own_pipeline:
                pipeline.close()
            else:
                pipeline.wait()
        finally:
            sender.close()
    return None


def _stop_requested(edition_id: int, unsent_ids: list[int]) -> str | None:
    status = _status_of(edition_id)
    if status == EditionStatus.SENDING:
        return None
    if status == EditionStatus.CANCELLED:
        _cancel_open_rows(edition_id, include_sending=True, ids=unsent_ids)
        return "cancelled"
    Delivery.objects.filter(id__in=unsent_ids, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.PENDING, claimed_at=None)
    return "paused" if status == EditionStatus.PAUSED else "not sending"


def edition_finish_if_done(*, edition_id: int) -> bool:
    """Sending → sent once no row is pending, waiting to retry or claimed."""
    if Delivery.objects.filter(edition_id=edition_id, status__in=OPEN_STATUSES).exists():
        return False
    with transaction.atomic():
        changed = Edition.objects.filter(pk=edition_id, status=EditionStatus.SENDING).update(
            status=EditionStatus.SENT, sent_at=timezone.now(), updated_at=timezone.now())
        if changed:
            EditionEvent.objects.create(edition_id=edition_id, from_status=EditionStatus.SENDING,
                                        to_status=EditionStatus.SENT)
    return bool(changed)


# --- The minute beat -------------------------------------------------------------------------

def deliveries_reclaim_stale(*, older_than_seconds: float | None = None) -> int:
    """Rows claimed by a worker that died: back to pending (only its in-flight one may repeat)."""
    seconds = (settings.NEWSLETTER_STALE_CLAIM_SECONDS if older_than_seconds is None
               else older_than_seconds)
    cutoff = timezone.now() - dt.timedelta(seconds=seconds)
    return Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=cutoff).update(
        status=DeliveryStatus.PENDING, claimed_at=None)


def editions_due(*, now=None, stale_seconds: float | None = None) -> dict:
    """Start scheduled editions that are due, hand back stale claims, re-kick or finish the rest.

    Run every minute by Celery beat; reads only the database (no ETA tasks).
    """
    now = now or timezone.now()
    started = []
    for edition in Edition.objects.filter(status=EditionStatus.SCHEDULED,
                                          scheduled_at__lte=now).order_by("scheduled_at"):
        try:
            edition_dispatch_start(edition=edition, actor=None)
            started.append(edition.id)
        except ApplicationError as exc:
            log.warning("newsletter: scheduled edition %s not started: %s", edition.id, exc)
    reclaimed = deliveries_reclaim_stale(older_than_seconds=stale_seconds)
    due = Q(deliveries__status=DeliveryStatus.PENDING) | Q(
        deliveries__status=DeliveryStatus.RETRY, deliveries__next_attempt_at__lte=now)
    sending = Edition.objects.filter(status=EditionStatus.SENDING)
    kicked = list(sending.filter(due).exclude(id__in=started).values_list("id", flat=True)
                  .distinct())
    for edition_id in kicked:
        edition_dispatch_kick(edition_id=edition_id, tasks=1)
    finished = [e for e in sending.exclude(id__in=kicked + started).values_list("id", flat=True)
                if edition_finish_if_done(edition_id=e)]
    return {"started": started, "reclaimed": reclaimed, "kicked": kicked, "finished": finished}


# --- Numbers ------------------------------------------------------------------------------------

def edition_delivery_stats(edition: Edition) -> dict:
    """Outbox counts of one edition (the selector for pages and the API builds on these)."""
    rows = Delivery.objects.filter(edition=edition)
    by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
    excluded = dict(rows.filter(status=DeliveryStatus.EXCLUDED).values_list("exclusion_reason")
                    .annotate(n=Count("id")).order_by())
    agg = rows.aggregate(audience=Count("id"),
                         opened=Count("id", filter=Q(opened_at__isnull=False)),
                         clicked=Count("id", filter=Q(clicked_at__isnull=False)))
    feedback = Feedback.objects.filter(delivery__edition=edition)
    return {
        "audience": agg["audience"],
        "excluded": sum(excluded.values()),
        "excluded_by_reason": {r: excluded.get(r, 0) for r in ExclusionReason.values},
        "pending": by_status.get(DeliveryStatus.PENDING, 0) + by_status.get(
            DeliveryStatus.SENDING, 0) + by_status.get(DeliveryStatus.RETRY, 0),
        "sent": by_status.get(DeliveryStatus.SENT, 0),
        "failed": by_status.get(DeliveryStatus.FAILED, 0),
        "cancelled": by_status.get(DeliveryStatus.CANCELLED, 0),
        "opened": agg["opened"],
        "clicked": agg["clicked"],
        "rated": feedback.filter(rating__isnull=False).values("delivery").distinct().count(),
        "comments": feedback.exclude(comment="").count(),
        "unsubscribes": Suppression.objects.filter(
            reason=Suppression.UNSUBSCRIBED, source_delivery__edition=edition).count(),
    }
