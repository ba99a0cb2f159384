"""Sending queued SMS and app push contacts through the gateway, and what its receipts say.

`gateway_send_due` is one pass (the minute task, outreach.channels.tasks, loops it):

1. **Quiet hours** (the contact policy, Asia/Shanghai): a channel inside its quiet window
   (which may cross midnight, 21:00-08:30) sends nothing; its contacts stay queued and go at
   the first pass after the window.
2. **Claim**, in one short transaction: up to `limit` due contacts (queued; not claimed, or
   claimed more than 10 minutes ago by a worker that died; no retry pending) are locked with
   `SELECT ... FOR UPDATE SKIP LOCKED` -- so any number of senders share the queue; service
   messages first, then by priority (1 is the highest), then first queued, first sent -- and
   their consent, opt-outs and phone number are re-checked (outreach.reach): a client who
   replied "TD" or withdrew consent since the step queued them is SKIPPED here, with the
   reason. The rest get `claimed_at`.
3. **Render** the batch (outreach.channels.render: the layers above supply the text).
4. **Send one at a time; each mark is with PostgreSQL before the next post.** A message the
   gateway accepted is marked SENT (provider id, the exact title and body, `at`, attempts+1)
   by one prepared UPDATE by primary key that commits on its own. It goes over a second
   connection in psycopg2's asynchronous mode (`_HandedOverMarks`): the sender writes it to
   the socket, posts the next message while PostgreSQL commits, and waits for that commit
   before writing the next mark. Once written to the socket the UPDATE no longer needs this
   process: if it is killed now, the operating system still delivers the bytes and
   PostgreSQL runs and commits the statement before it notices the client is gone. So at any
   instant at most one message -- the one in flight, whose mark is not written yet -- can be
   accepted without its mark landing; its claim goes stale and a later pass sends it again:
   nothing is lost, at most one message goes twice per kill. (The contact id travels as the
   message id, so a provider that deduplicates on it delivers even that one once.)
   Refusals and retries are not urgent -- sending them again repeats nothing the client sees
   -- so they are written set-based (`bulk_update`) every 100 messages and at the end:
   a permanent refusal -> FAILED with the gateway's error; a retryable one (gateway down,
   5xx/429 after the adapter's own retries, a timeout) -> stays QUEUED with `next_attempt_at`
   1, 2, 4 ... minutes later (at most an hour), FAILED at the 5th attempt. After a retryable
   error the gateway is taken to be down: the rest of the batch is handed back untried for a
   minute.

The trade-off, measured on 2,000 messages to the local dev gateway against a bare keep-alive
urllib3 loop posting the same signed bodies and recording nothing:
- awaiting each durable commit before the next post: the commit and the round trip add up,
  about 0.3x the bare loop;
- a window of W messages in flight (post n+1 before n's mark is written, or batch the marks)
  hides more but makes the bound W duplicates per kill -- the kill test catches W = 2;
- handing the mark over before the next post and awaiting its commit after it (this module):
  the bound stays one, commits stay durable (the session's synchronous_commit, "on" by
  default), and the WAL flush overlaps the next round trip: about 0.5-0.6x the bare loop on a
  2-core machine shared with other work. What it relies on: PostgreSQL runs a statement it has
  received even when the client is gone (it only checks during long queries, and only with
  client_connection_check_interval set), and the socket of a killed process still delivers
  what was written (a close turns into a reset that drops it only with unread input pending,
  and an answer comes only once PostgreSQL has the whole statement). A
  crash of the worker's *machine* with the database on another host could lose the mark
  handed over last as well: two duplicates then.
Inside a transaction, on SQLite, or when the second connection fails, marks are committed
inline, each before the next post (`_InlineMarks`).

Call it outside a transaction (a Celery task, a management command): inside `atomic` the
marks commit only at the end and the bound above does not hold.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

import psycopg2
import psycopg2.extensions
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from ..email.marks import poll_async
from ..models import Channel, Contact, ContactStatus
from ..reach import consent_q, contact_details_q, opted_out
from ..selectors import TIMEZONE, contact_policy_get
from .gateway import GatewayMessage, GatewayResult, gateway_from_settings
from .render import render, renderer_for

log = logging.getLogger(__name__)

GATEWAY_CHANNELS = (Channel.SMS.value, Channel.PUSH.value)
STALE_CLAIM = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 5
RETRY_FIRST = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(hours=1)
FLUSH_EVERY = 100
MARK_TIMEOUT = 60.0
COUNTS = ("sent", "failed", "retry", "skipped", "quiet")

_ERROR_LENGTH = Contact._meta.get_field("error").max_length
_PROVIDER_ID_LENGTH = Contact._meta.get_field("provider_id").max_length
_TITLE_LENGTH = Contact._meta.get_field("title").max_length


# Quiet hours ------------------------------------------------------------------------------

def in_quiet_hours(quiet_hours: dict, channel: str, now: dt.datetime) -> bool:
    """True when `now` falls in the policy's quiet window for `channel`: start inclusive, end
    exclusive, local time of the policy's timezone; a window with start > end crosses midnight
    (21:00-08:30), one with start == end is empty."""
    if channel not in (quiet_hours or {}).get("channels", ()):
        return False
    start, end = quiet_hours.get("start"), quiet_hours.get("end")
    if not start or not end:
        return False
    start, end = dt.time.fromisoformat(start), dt.time.fromisoformat(end)
    local = now.astimezone(ZoneInfo(quiet_hours.get("timezone") or TIMEZONE)).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def _due_q(now: dt.datetime) -> Q:
    return (Q(status=ContactStatus.QUEUED)
            & (Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - STALE_CLAIM))
            & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)))


# One pass ---------------------------------------------------------------------------------

def gateway_send_due(*, limit: int = 500, now: dt.datetime | None = None,
                     gateway=None) -> dict[str, int]:
    """Send up to `limit` due SMS and app push contacts (see the module's docstring).
    Returns how many were sent, failed, put back for a retry, skipped (consent, opt-out or
    phone number gone), and held by quiet hours."""
    now = now or timezone.now()
    counts = dict.fromkeys(COUNTS, 0)
    quiet_hours = contact_policy_get()["quiet_hours"]
    quiet = [c for c in GATEWAY_CHANNELS if in_quiet_hours(quiet_hours, c, now)]
    if quiet:
        counts["quiet"] = Contact.objects.filter(_due_q(now), channel__in=quiet).count()
    open_channels = [c for c in GATEWAY_CHANNELS if c not in quiet]
    if not open_channels or limit <= 0:
        return counts
    contacts, counts["skipped"] = _claim(open_channels, limit=limit, now=now)
    if contacts:
        _send(contacts, gateway or gateway_from_settings(), now=now, counts=counts)
    return counts


def _skip_reason(contact: Contact) -> str:
    if contact.is_opted_out:
        return "opted out at send time"
    if not contact.has_consent:
        return "no consent at send time"
    if not contact.has_details:
        return "no phone number at send time"
    return ""


def _claim(channels: Sequence[str], *, limit: int, now: dt.datetime) -> tuple[list[Contact], int]:
    """Lock and claim due contacts; skip those no longer reachable. Returns the claimed
    contacts (client loaded) and how many were skipped."""
    claimed: list[Contact] = []
    skipped: dict[str, list[int]] = {}
    with transaction.atomic():
        for channel in channels:
            room = limit - len(claimed) - sum(map(len, skipped.values()))
            if room <= 0:
                break
            rows = (Contact.objects.filter(_due_q(now), channel=channel)
                    .annotate(
                        has_consent=ExpressionWrapper(consent_q(channel, prefix="client__"),
                                                      output_field=BooleanField()),
                        has_details=ExpressionWrapper(
                            contact_details_q(channel, prefix="client__"),
                            output_field=BooleanField()),
                        is_opted_out=opted_out(channel, client_ref="client_id"))
                    .select_related("client")
                    .select_for_update(skip_locked=True, of=("self",))
                    .order_by("-exempt", "priority", "id")[:room])
            for contact in rows:
                reason = _skip_reason(contact)
                if reason:
                    skipped.setdefault(reason, []).append(contact.pk)
                else:
                    claimed.append(contact)
        for reason, ids in skipped.items():
            Contact.objects.filter(pk__in=ids).update(
                status=ContactStatus.SKIPPED, error=reason, claimed_at=None)
        if claimed:
            Contact.objects.filter(pk__in=[c.pk for c in claimed]).update(claimed_at=now)
    for contact in claimed:
        contact.claimed_at = now
    return claimed, sum(map(len, skipped.values()))


class _Outcomes:
    """Failures, retries and hand-backs of a pass, written set-based now and then: none of
    them went out, so writing them late repeats nothing the client sees."""

    fields = ["status", "error", "attempts", "claimed_at", "next_attempt_at"]

    def __init__(self, now: dt.datetime, counts: dict[str, int]):
        self.now, self.counts, self.rows = now, counts, []

    def failed(self, contact: Contact, error: str, *, tried: bool = True) -> None:
        contact.status = ContactStatus.FAILED
        if tried:
            contact.attempts += 1
        self._add(contact, error, next_attempt_at=None)
        self.counts["failed"] += 1

    def retry(self, contact: Contact, error: str) -> None:
        contact.attempts += 1
        if contact.attempts >= MAX_ATTEMPTS:
            contact.status = ContactStatus.FAILED
            self._add(contact, f"{error} (gave up after {contact.attempts} attempts)",
                      next_attempt_at=None)
            self.counts["failed"] += 1
            return
        delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (contact.attempts - 1))
        self._add(contact, error, next_attempt_at=self.now + delay)
        self.counts["retry"] += 1

    def hand_back(self, contacts: Iterable[Contact], error: str) -> None:
        """Untried: no attempt counted, due again in a minute."""
        for contact in contacts:
            self._add(contact, error, next_attempt_at=self.now + RETRY_FIRST)
            self.counts["retry"] += 1

    def _add(self, contact: Contact, error: str, *, next_attempt_at) -> None:
        contact.error = error[:_ERROR_LENGTH]
        contact.claimed_at = None
        contact.next_attempt_at = next_attempt_at
        self.rows.append(contact)

    def flush(self) -> None:
        """Only rows still queued: a contact cancelled meanwhile stays cancelled."""
        if self.rows:
            Contact.objects.filter(status=ContactStatus.QUEUED).bulk_update(
                self.rows, self.fields, batch_size=500)
            self.rows = []


def _mark_sent_sql(placeholders: Sequence[str]) -> str:
    """UPDATE of one sent contact; `placeholders` for status, at, provider_id, title, body,
    error and id."""
    quote = connection.ops.quote_name
    columns = ("status", "at", "provider_id", "title", "body", "error")
    assignments = ", ".join(f"{quote(name)} = {value}"
                            for name, value in zip(columns, placeholders, strict=False))
    return (f"UPDATE {quote(Contact._meta.db_table)} SET {assignments}, "  # noqa: S608
            f"{quote('attempts')} = {quote('attempts')} + 1, {quote('claimed_at')} = NULL, "
            f"{quote('next_attempt_at')} = NULL WHERE {quote('id')} = {placeholders[-1]}")


def _mark_params(contact: Contact, message: GatewayMessage, result: GatewayResult,
                 now: dt.datetime) -> list:
    return [ContactStatus.SENT.value, now, result.provider_id[:_PROVIDER_ID_LENGTH],
            message.title, message.body, result.error[:_ERROR_LENGTH], contact.pk]


class _InlineMarks:
    """Each mark committed on Django's connection before `start` returns (SQLite, inside a
    transaction, or when the second connection fails)."""

    def __init__(self):
        self.sql = _mark_sent_sql(["%s"] * 7)

    def start(self, contact, message, result, now) -> None:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, _mark_params(contact, message, result, now))

    def wait(self) -> None:
        pass

    def close(self) -> None:
        pass


class _HandedOverMarks:
    """PostgreSQL: the marks go over a second connection in psycopg2's asynchronous mode
    (each statement commits on its own), as a prepared statement. `start` returns once the
    UPDATE is written to the socket -- handed to the operating system, so PostgreSQL runs and
    commits it even if this process is killed the next instant -- without waiting for the
    commit; `wait` returns once it is committed. The sender posts the next message between
    the two, so the commit (a WAL flush) overlaps the next HTTP round trip."""

    name = "outreach_gateway_mark_sent"
    types = "(text, timestamptz, text, text, text, text, bigint)"

    def __init__(self):
        params = {k: v for k, v in connection.get_connection_params().items()
                  if k not in ("cursor_factory", "context")}
        self.conn = psycopg2.connect(**params, async_=1)
        self.pending: tuple | None = None
        _poll(self.conn, until=psycopg2.extensions.POLL_OK)
        self.cursor = self.conn.cursor()
        placeholders = [f"${i}" for i in range(1, 8)]
        self.cursor.execute(f"PREPARE {self.name} {self.types} AS "
                            f"{_mark_sent_sql(placeholders)}")
        _poll(self.conn, until=psycopg2.extensions.POLL_OK)
        self.fallback = None

    def start(self, contact, message, result, now) -> None:
        self.wait()
        if self.fallback is not None:
            self.fallback.start(contact, message, result, now)
            return
        self.pending = (contact, message, result, now)
        try:
            self.cursor.execute(f"EXECUTE {self.name} (%s, %s, %s, %s, %s, %s, %s)",
                                _mark_params(contact, message, result, now))
            _poll(self.conn, until=psycopg2.extensions.POLL_READ)  # flushed to the socket
        except Exception:
            self._fall_back()

    def wait(self) -> None:
        if self.pending is None:
            return
        try:
            _poll(self.conn, until=psycopg2.extensions.POLL_OK)
        except Exception:
            self._fall_back()
            return
        self.pending = None

    def _fall_back(self) -> None:
        """The second connection failed: the mark (again: the same UPDATE twice only counts
        one attempt too many) and the rest go over Django's connection."""
        log.warning("gateway sender: asynchronous mark failed; marking inline from now on",
                    exc_info=True)
        pending, self.pending = self.pending, None
        self.close()
        self.fallback = _InlineMarks()
        if pending is not None:
            self.fallback.start(*pending)

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to release
                conn.close()


def _poll(conn, *, until: int, timeout: float = MARK_TIMEOUT) -> None:
    poll_async(conn, until=until, timeout=timeout)


def _sent_marks() -> _InlineMarks | _HandedOverMarks:
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return _InlineMarks()
    try:
        return _HandedOverMarks()
    except Exception:
        log.warning("gateway sender: no second connection for marks; marking inline",
                    exc_info=True)
        return _InlineMarks()


def _send(contacts: list[Contact], gateway, *, now: dt.datetime,
          counts: dict[str, int]) -> None:
    outcomes = _Outcomes(now, counts)
    try:
        texts = render(contacts)
    except Exception as exc:
        log.exception("gateway sender: rendering %d contacts failed", len(contacts))
        for contact in contacts:
            outcomes.retry(contact, f"cannot render: {type(exc).__name__}: {exc}")
        outcomes.flush()
        return

    remaining = list(reversed(contacts))  # popped from the end: the claim's order
    marks = _sent_marks()
    try:
        while remaining:
            contact = remaining.pop()
            text = texts.get(contact.pk)
            if text is None:
                error = ("no renderer" if renderer_for(contact.source) is None
                         else "nothing rendered")
                outcomes.failed(contact, error, tried=False)
                continue
            title, body = text
            message = GatewayMessage(contact.pk, contact.channel, contact.client.phone,
                                     body, title[:_TITLE_LENGTH])
            # The previous message's mark is with PostgreSQL already (see _HandedOverMarks).
            result: GatewayResult = gateway.send([message])[0]
            if result.ok:
                marks.start(contact, message, result, now)
                counts["sent"] += 1
            elif result.retryable:
                outcomes.retry(contact, result.error)
                outcomes.hand_back(reversed(remaining),
                                   f"not sent: the gateway is unavailable ({result.error})")
                remaining = []
            else:
                outcomes.failed(contact, result.error)
            if len(outcomes.rows) >= FLUSH_EVERY:
                outcomes.flush()
    finally:
        marks.wait()
        marks.close()
        # On an error mid-batch the untried contacts go back at once rather than waiting for
        # their claim to go stale.
        if remaining:
            Contact.objects.filter(pk__in=[c.pk for c in remaining],
                                   status=ContactStatus.QUEUED).update(claimed_at=None)
        outcomes.flush()


# Delivery receipts ------------------------------------------------------------------------

def gateway_receipts_apply(*, receipts: Sequence[dict]) -> dict[str, int]:
    """Apply parsed receipts (gateway.parse_receipts) set-based: "delivered" moves a SENT
    contact to DELIVERED, "failed" a SENT contact to FAILED with the receipt's error. A
    receipt counts only for the contact it names *and* the provider id we recorded for it;
    anything else -- an unknown contact, another provider id (an older send), a contact no
    longer SENT (already delivered, responded) -- changes nothing and is counted ignored."""
    latest = {receipt["id"]: receipt for receipt in receipts}
    updated = 0
    with transaction.atomic():
        recorded = dict(Contact.objects.filter(pk__in=latest).order_by("id").select_for_update()
                        .values_list("id", "provider_id"))
        matching = [r for r in latest.values() if recorded.get(r["id"]) == r["provider_id"]]
        delivered = [r["id"] for r in matching if r["status"] == "delivered"]
        if delivered:
            updated += Contact.objects.filter(pk__in=delivered, status=ContactStatus.SENT).update(
                status=ContactStatus.DELIVERED)
        failed_by_error: dict[str, list[int]] = {}
        for receipt in matching:
            if receipt["status"] == "failed":
                error = f"not delivered: {receipt['error'] or 'no reason given'}"
                failed_by_error.setdefault(error[:_ERROR_LENGTH], []).append(receipt["id"])
        for error, ids in failed_by_error.items():
            updated += Contact.objects.filter(pk__in=ids, status=ContactStatus.SENT).update(
                status=ContactStatus.FAILED, error=error)
    return {"updated": updated, "ignored": len(receipts) - updated}

