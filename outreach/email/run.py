"""The dispatcher's loop, one for every source of email: claim rows in chunks, render, send,
mark; stop when the source is paused or cancelled.

Each message is marked sent right after the SMTP server accepted it and before the next one
goes out, so a killed worker loses nothing and repeats at most the one message it had in
flight (its claimed rows go back to pending once the claim is stale: outbox.reclaim_stale, run
by the minute beat). The source (sources.py) says whether it is still sending and renders its
messages.
"""

import contextlib
import logging
import queue
import smtplib
import sys
import threading
import time

from django.conf import settings
from django.db import connection
from django.db import connections as db_connections
from django.utils import timezone

from ..models import Delivery, DeliveryStatus
from . import sources
from .marks import SentMarks, jsonable, mark_failure, mark_smtp_error
from .outbox import cancel_open, claim, has_open, release
from .ratelimit import RateLimiter
from .smtp import Outcome, Sender

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.0002  # seconds, while a chunk is sent; Python's default is 0.005


def _state(source: str, source_id: int) -> str | None:
    registered = sources.source_for(source)
    return registered.state(source_id) if registered is not None else None


def outbox_run(*, source: str, source_id: int, max_seconds: float | None = None) -> str:
    """Claim, render and send chunks until the source has nothing due, is paused or cancelled.

    Returns what stopped it: "sent", "waiting" (retries not yet due or rows claimed by another
    worker), "paused", "cancelled", "gone", "not sending" or "continued" (max_seconds).
    """
    state = _state(source, source_id)
    if state is None:
        return "gone"
    if state == sources.CANCELLED:
        cancel_open(source, source_id, include_sending=False)
        return "cancelled"
    if state != sources.SENDING:
        return "paused" if state == sources.PAUSED else "not sending"
    renderer = sources.source_for(source).renderer(source_id)
    limiter = RateLimiter(per_second=settings.NEWSLETTER_RATE_PER_SECOND,
                          per_hour=settings.NEWSLETTER_RATE_PER_HOUR)
    with _dispatch_session():
        marks = SentMarks(synchronous_commit=_synchronous_commit_mode())
        try:
            return _run_chunks(source, source_id, renderer, limiter, max_seconds, marks)
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
    would get the message again), never corrupt anything. Reset when the run ends."""
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
            log.warning("email: could not reset synchronous_commit", exc_info=True)


def _run_chunks(source: str, source_id: int, renderer, limiter: RateLimiter,
                max_seconds: float | None, marks: SentMarks) -> str:
    started = time.monotonic()
    while True:
        state = _state(source, source_id)  # between chunks: paused or cancelled stops claiming
        if state != sources.SENDING:
            if state == sources.CANCELLED:
                cancel_open(source, source_id, include_sending=False)
            return {sources.PAUSED: "paused", sources.CANCELLED: "cancelled",
                    None: "gone"}.get(state, "not sending")
        ids = claim(source, source_id, settings.NEWSLETTER_CHUNK_SIZE)
        if not ids:
            return "sent" if finish_if_done(source=source, source_id=source_id) else "waiting"
        stopped = _send_chunk(source, source_id, ids, renderer, limiter, marks)
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

    def __init__(self, renderer, deliveries: list[Delivery]):
        self._items: queue.Queue = queue.Queue(maxsize=self.AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(renderer, deliveries),
                                        name="email-render", daemon=True)
        self._thread.start()

    def _run(self, renderer, deliveries: list[Delivery]) -> None:
        try:
            for delivery in deliveries:
                if self._stop.is_set():
                    return
                try:
                    message, context = renderer.message(delivery)
                    item = (delivery, message, jsonable(context), None)
                except Exception as exc:
                    log.exception("email: rendering delivery %s failed", delivery.pk)
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


def _send_chunk(source: str, source_id: int, ids: list[int], renderer, limiter: RateLimiter,
                marks: SentMarks | None = None) -> str | None:
    """Send a claimed chunk over one connection, overlapping the waits.

    For message k: read the server's verdict on k-1 and start marking row k-1; send k's
    commands and content meanwhile; once row k-1 is committed, send k's final dot. The copies
    are rendered by a thread a few messages ahead (_RenderAhead) while this loop waits on the
    server and the database.
    """
    deliveries = list(Delivery.objects.filter(id__in=ids, status=DeliveryStatus.SENDING)
                      .select_related("client", "client__rm").order_by("id"))
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
                stopped = _stop_requested(source, source_id, [i for i in ids if i not in done])
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


def _stop_requested(source: str, source_id: int, unsent_ids: list[int]) -> str | None:
    state = _state(source, source_id)
    if state == sources.SENDING:
        return None
    if state == sources.CANCELLED:
        cancel_open(source, source_id, include_sending=True, ids=unsent_ids)
        return "cancelled"
    release(unsent_ids)
    return "paused" if state == sources.PAUSED else "not sending"


def finish_if_done(*, source: str, source_id: int) -> bool:
    """Once no row is pending, waiting to retry or claimed, the source is told (a newsletter
    edition becomes sent); True if that finished it."""
    if has_open(source, source_id):
        return False
    registered = sources.source_for(source)
    return bool(registered is not None and registered.done(source_id))
