"""The worker's loop: claim rows in chunks, render, send, mark; stop when paused or cancelled."""

import contextlib
import logging
import queue
import smtplib
import sys
import threading
import time

from django.conf import settings
from django.db import connection, transaction
from django.db import connections as db_connections
from django.db.models import Q
from django.utils import timezone

from .. import rendering
from ..models import Delivery, DeliveryStatus, Edition, EditionEvent, EditionStatus
from .control import _cancel_open_rows, ledger_settle
from .marks import SentMarks, jsonable, mark_failure, mark_smtp_error
from .ratelimit import RateLimiter
from .smtp import Outcome, Sender

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.0002  # seconds, while a chunk is sent; Python's default is 0.005
OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRY, DeliveryStatus.SENDING)


def _claim(edition_id: int, size: int) -> list[int]:
    """Up to `size` due rows of the edition, locked past other workers (SKIP LOCKED) and
    marked sending with the claim time (stale claims go back to pending: beat.py)."""
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


class _Renderer:
    """Each client's message through the one renderer (newsletters.rendering): the edition's
    shared content read once per run, the personal data of a whole chunk in a few queries."""

    def __init__(self, edition: Edition, *, raw: bool = False):
        self.edition = edition
        self.content = rendering.EditionContent.of(edition)
        self.raw = raw
        self.contexts: dict[int, dict] = {}

    def prepare(self, deliveries: list[Delivery]) -> None:
        """Personal data for a chunk; a failure here falls back to one client at a time."""
        try:
            self.contexts = rendering.delivery_contexts(
                edition=self.edition, clients=[d.client for d in deliveries],
                content=self.content)
        except Exception:
            log.exception("newsletter: batched personal data failed; per client instead")
            self.contexts = {}

    def message(self, delivery: Delivery):
        context = self.contexts.pop(delivery.client_id, None)
        if context is None:
            context = rendering.delivery_context(edition=self.edition, client=delivery.client,
                                                 content=self.content)
        rendered = rendering.render_edition(edition=self.edition, context=context,
                                            delivery=delivery, content=self.content)
        if self.raw:
            return rendering.message_bytes(delivery=delivery, rendered=rendered), context
        return rendering.build_message(delivery=delivery, rendered=rendered), context


def _edition_for_sending(edition_id: int) -> Edition:
    return (Edition.objects.select_related("publication", "publication__audience")
            .prefetch_related("sections").get(pk=edition_id))


def _status_of(edition_id: int) -> str | None:
    return Edition.objects.filter(pk=edition_id).values_list("status", flat=True).first()


def edition_dispatch_run(*, edition_id: int, max_seconds: float | None = None) -> str:
    """Claim, render and send chunks until the edition has nothing due, is paused or cancelled.

    Returns what stopped it: "sent", "waiting" (retries not yet due or rows claimed by another
    worker), "paused", "cancelled", "gone", "not sending" or "continued" (max_seconds).
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
        marks = SentMarks(synchronous_commit=_synchronous_commit_mode())
        try:
            return _run_chunks(edition_id, edition, renderer, limiter, max_seconds, marks)
        finally:
            marks.close()


def _synchronous_commit_mode() -> str | None:
    mode = str(getattr(settings, "NEWSLETTER_DISPATCH_SYNCHRONOUS_COMMIT", "on")).lower()
    if connection.vendor != "postgresql" or mode not in ("off", "local"):
        return None
    return mode


@contextlib.contextmanager
def _dispatch_session():
    """PostgreSQL with NEWSLETTER_DISPATCH_SYNCHRONOUS_COMMIT = "off" (default "on"): this
    session's commits do not wait for the WAL flush.
    A committed "sent" is visible at once and survives any kill of the worker -- the guarantee
    "a kill repeats at most the message in flight" is unchanged; only a crash of the database
    server itself could forget the last fraction of a second of "sent" marks (those clients
    would get the edition again), never corrupt anything. Reset when the run ends."""
    mode = _synchronous_commit_mode()
    if mode is None:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET synchronous_commit TO {mode}")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        except Exception:  # a broken connection is discarded by Django anyway
            log.warning("newsletter: could not reset synchronous_commit", exc_info=True)


def _run_chunks(edition_id: int, edition: Edition, renderer: _Renderer, limiter: RateLimiter,
                max_seconds: float | None, marks: SentMarks) -> str:
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
        stopped = _send_chunk(edition, ids, renderer, limiter, marks)
        if stopped:
            return stopped
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            return "continued"


class _Outbox:
    """The connection's state between messages: which row's message is on the wire.

    `previous` is the message whose final dot was sent. `record()` reads the server's answer
    to it and starts marking its row (the commit overlaps the next message's commands and
    content and the render after); `end()` waits for that mark to be committed before it
    sends the next message's dot: at most one message is ever accepted without its row
    marked."""

    def __init__(self, sender: Sender, marks: SentMarks):
        self.sender = sender
        self.marks = marks
        self.previous: tuple[Delivery, str] | None = None

    def record(self) -> None:
        """The server's answer to the previous message, and the start of its row's mark."""
        previous, self.previous = self.previous, None
        if previous is None:
            return
        delivery, context_json = previous
        try:
            self.sender.finish()
        except (smtplib.SMTPException, OSError) as exc:
            mark_smtp_error(delivery, exc)
        else:
            self.marks.start(delivery, context_json, timezone.now())

    def settle(self) -> None:
        self.record()
        self.marks.wait()

    def begin(self, delivery: Delivery, message) -> bool:
        """Everything of `message` but its final dot; False (row marked) if refused."""
        try:
            self.sender.begin_data(message)
        except (smtplib.SMTPException, OSError) as exc:
            mark_smtp_error(delivery, exc)
            return False
        return True

    def end(self, delivery: Delivery, context_json: str) -> None:
        """The final dot of the message begun last, once the previous row is committed."""
        if self.previous is not None:
            raise RuntimeError("the previous row must be recorded before the next dot")
        self.marks.wait()  # committed: only now may the server accept another message
        try:
            self.sender.end_data()
        except (smtplib.SMTPException, OSError) as exc:
            mark_smtp_error(delivery, exc)
            return
        self.previous = (delivery, context_json)


class _RenderAhead:
    """The chunk's copies, rendered by a thread a few messages ahead of the sending loop.

    Rendering is Python CPU work; the loop mostly waits on the SMTP server's replies and on
    PostgreSQL's commits, and releases the GIL while it waits, so the thread renders during
    those waits. Only the loop talks SMTP and marks rows: the order of sending and marking,
    and so the durability, is exactly the loop's. Each item is (delivery, message, context
    JSON, None) or (delivery, None, None, the exception) for a copy that failed to render."""

    AHEAD = 8

    def __init__(self, renderer: _Renderer, deliveries: list[Delivery]):
        self._items: queue.Queue = queue.Queue(maxsize=self.AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(renderer, deliveries),
                                        name="newsletter-render", daemon=True)
        self._thread.start()

    def _run(self, renderer: _Renderer, deliveries: list[Delivery]) -> None:
        try:
            for delivery in deliveries:
                if self._stop.is_set():
                    return
                try:
                    message, context = renderer.message(delivery)
                    item = (delivery, message, jsonable(context), None)
                except Exception as exc:
                    log.exception("newsletter: rendering delivery %s failed", delivery.pk)
                    item = (delivery, None, None, exc)
                self._put(item)
        finally:
            self._put(None)
            db_connections.close_all()  # this thread's own, if a fallback query opened one

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self):
        """The next rendered copy, or None when the chunk is done."""
        return self._items.get()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _send_chunk(edition: Edition, ids: list[int], renderer: _Renderer,
                limiter: RateLimiter, marks: SentMarks | None = None) -> str | None:
    """Send a claimed chunk over one connection, overlapping the waits.

    For message k: read the server's verdict on k-1 and start marking row k-1; send k's
    commands and content meanwhile; once row k-1 is committed, send k's final dot. The copies
    are rendered by a thread a few messages ahead (_RenderAhead) while this loop waits on the
    server and the database.
    """
    deliveries = list(Delivery.objects.filter(id__in=ids, status=DeliveryStatus.SENDING)
                      .select_related("client", "client__rm").order_by("id"))
    for delivery in deliveries:
        delivery.edition = edition  # the one instance read at the start of the run
    sender = Sender()
    renderer.raw = sender.raw
    own_marks = marks is None
    marks = marks or SentMarks()
    outbox = _Outbox(sender, marks)
    checked = time.monotonic()
    done: set[int] = set()
    switch_interval = sys.getswitchinterval()
    copies = None
    try:
        renderer.prepare(deliveries)
        # a thread waiting for the GIL gets it within this: the loop's turn comes back soon
        # after its reply arrives, not after the default 5 ms of the render thread's work
        sys.setswitchinterval(SWITCH_INTERVAL)
        copies = _RenderAhead(renderer, deliveries)
        upcoming = copies.next()
        while upcoming is not None:
            delivery, message, context_json, error = upcoming
            if error is not None:
                mark_failure(delivery, Outcome.FAILED, f"render: {error}"[:1000],
                             timezone.now())
                done.add(delivery.pk)
                upcoming = copies.next()
                continue
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                outbox.settle()
                stopped = _stop_requested(edition.id, [i for i in ids if i not in done])
                if stopped:
                    return stopped
            outbox.record()  # row k-1: committed while k's commands and content go out
            limiter.acquire()
            done.add(delivery.pk)
            if outbox.begin(delivery, message):
                outbox.end(delivery, context_json)  # waits for row k-1, then k's dot
            upcoming = copies.next()
        outbox.settle()
    finally:
        sys.setswitchinterval(switch_interval)
        if copies is not None:
            copies.close()
        try:
            sender.abort_data()  # an error between content and dot: that message never left
            outbox.settle()  # after an error elsewhere: still record the one in flight
        finally:
            sender.close()
            if own_marks:
                marks.close()
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
            ledger_settle(edition_id)
    return bool(changed)

