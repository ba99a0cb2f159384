"""Writing what happened to one outbox row: sent, to retry, failed, bounced."""

import datetime as dt
import json
import logging
import smtplib

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from ..models import Delivery, DeliveryStatus
from . import sources
from .smtp import Outcome, classify

log = logging.getLogger(__name__)

_SENT_SQL = (f"UPDATE {Delivery._meta.db_table} SET status = %s, sent_at = %s, "  # noqa: S608
             "claimed_at = NULL, attempts = %s, next_attempt_at = NULL, last_error = '', "
             "context = %s WHERE id = %s")
_WAIT_SECONDS = 60


def jsonable(value) -> str:
    """The personal data snapshot as JSON text for Delivery.context."""
    try:
        return json.dumps(value, cls=DjangoJSONEncoder, default=str)
    except (TypeError, ValueError):
        return "{}"


def mark_sent(delivery: Delivery, context_json: str, now) -> None:
    """One short statement, committed at once (autocommit), before the next message goes
    out: a kill repeats at most the message in flight."""
    with connection.cursor() as cursor:
        cursor.execute(_SENT_SQL, [DeliveryStatus.SENT.value, now, delivery.attempts + 1,
                                   context_json, delivery.pk])


def mark_smtp_error(delivery: Delivery, exc: smtplib.SMTPException | OSError) -> None:
    outcome, error = classify(exc)
    mark_failure(delivery, outcome, error, timezone.now())


def mark_failure(delivery: Delivery, outcome: str, error: str, now) -> None:
    attempts = delivery.attempts + 1
    if outcome == Outcome.RETRY and attempts < settings.NEWSLETTER_MAX_ATTEMPTS:
        backoff = settings.NEWSLETTER_RETRY_BACKOFF_SECONDS * (2 ** delivery.attempts)
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.RETRY, attempts=attempts, claimed_at=None, last_error=error,
            next_attempt_at=now + dt.timedelta(seconds=backoff))
        return
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED, attempts=attempts, claimed_at=None, last_error=error,
        next_attempt_at=None)
    if outcome == Outcome.BOUNCED:
        sources.bounced(delivery)


class SentMarks:
    """Marks rows sent, on PostgreSQL without making the worker wait for the commit.

    A second connection in psycopg2's asynchronous mode (each statement commits on its own)
    takes the UPDATE; `start` sends it and returns, the worker renders the next message, and
    `wait` returns once PostgreSQL has committed it (with the session's synchronous_commit, so
    "committed" means on disk by default). The dispatch loop waits before the next message's
    final dot, so the guarantee is unchanged: at most one message accepted and not marked.

    Inside a transaction (tests), on other databases, or if the second connection fails,
    marks are written on the ordinary connection, synchronously."""

    def __init__(self, *, synchronous_commit: str | None = None):
        self.pending: tuple | None = None
        self.conn = self.cursor = None
        if (connection.vendor == "postgresql" and not connection.in_atomic_block
                and getattr(settings, "NEWSLETTER_DISPATCH_ASYNC_MARKS", True)):
            try:
                self.conn = self._connect(synchronous_commit)
            except Exception:
                log.warning("email: no asynchronous connection for marks; marking inline",
                            exc_info=True)
                self.conn = None

    @staticmethod
    def _connect(synchronous_commit: str | None):
        import psycopg2

        conn = psycopg2.connect(**second_connection_params(), async_=1)
        _wait(conn)
        if synchronous_commit:
            cursor = conn.cursor()
            cursor.execute("SET synchronous_commit TO " + synchronous_commit)
            _wait(conn)
        return conn

    def start(self, delivery: Delivery, context_json: str, now) -> None:
        self.wait()
        if self.conn is None:
            mark_sent(delivery, context_json, now)
            return
        self.pending = (delivery, context_json, now)
        try:
            if self.cursor is None:
                self.cursor = self.conn.cursor()  # kept: psycopg2 needs it until the poll ends
            self.cursor.execute(_SENT_SQL, [
                DeliveryStatus.SENT.value, now, delivery.attempts + 1, context_json,
                delivery.pk])
        except Exception:
            self._fall_back()

    def wait(self) -> None:
        """Return once the last mark is committed (or written inline after a failure)."""
        if self.pending is None:
            return
        try:
            _wait(self.conn)
        except Exception:
            self._fall_back()
            return
        self.pending = None

    def _fall_back(self) -> None:
        """The asynchronous connection failed: mark on the ordinary one (the same UPDATE twice
        changes nothing) and stay there."""
        log.warning("email: asynchronous mark failed; marking inline from now on",
                    exc_info=True)
        pending, self.pending = self.pending, None
        self.close()
        if pending is not None:
            mark_sent(*pending)

    def close(self) -> None:
        conn, self.conn, self.cursor = self.conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken
                pass


def second_connection_params() -> dict:
    """psycopg2.connect() arguments for another connection to Django's default database."""
    return {k: v for k, v in connection.get_connection_params().items()
            if k not in ("cursor_factory", "context")}


def _wait(conn) -> None:
    """Poll an asynchronous psycopg2 connection until its statement is done (raises its
    error; TimeoutError if PostgreSQL does not answer)."""
    import psycopg2.extensions as ext

    poll_async(conn, until=ext.POLL_OK, timeout=_WAIT_SECONDS)


def poll_async(conn, *, until: int, timeout: float) -> None:
    """Drive an asynchronous psycopg2 connection until it reaches `until`: POLL_READ (the
    statement is sent and awaits its answer) or POLL_OK (answered). Raises the statement's
    error, or TimeoutError. Shared with the SMS sender's marks (outreach.channels.sender)."""
    import select

    import psycopg2.extensions as ext

    while True:
        state = conn.poll()
        if state == until or state == ext.POLL_OK:
            return
        if state == ext.POLL_READ:
            ready = select.select([conn.fileno()], [], [], timeout)[0]
        elif state == ext.POLL_WRITE:
            ready = select.select([], [conn.fileno()], [], timeout)[1]
        else:
            raise RuntimeError(f"unexpected poll state {state}")
        if not ready:
            raise TimeoutError("PostgreSQL did not answer a mark in time")
