"""The outbox rows of any source: claim, hand back stale claims, cancel, settle the ledger."""

from __future__ import annotations

import datetime as dt
import secrets

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, Subquery, Value
from django.utils import timezone

from ..models import (
    Channel,
    Contact,
    ContactStatus,
    Delivery,
    DeliveryStatus,
    ExclusionReason,
)

OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRY, DeliveryStatus.SENDING)


def outbox_rows(source: str, source_id: int):
    return Delivery.objects.filter(source=source, source_id=source_id)


def outbox_add(*, source: str, source_id: int, step: int, rows: list[dict],
               domain: str) -> int:
    """Queue one message per row ({"client_id", "to_email", "context"}) for the dispatcher:
    pending with an address, excluded (no_address) without one. Each gets a random token (its
    signed links) and a stable Message-ID; a repeated call adds nothing twice."""
    deliveries = []
    for row in rows:
        token = secrets.token_urlsafe(32)
        address = (row.get("to_email") or "").strip()
        deliveries.append(Delivery(
            source=source, source_id=source_id, step=step, client_id=row["client_id"],
            to_email=address, context=row.get("context") or {}, token=token,
            status=DeliveryStatus.PENDING if address else DeliveryStatus.EXCLUDED,
            exclusion_reason="" if address else ExclusionReason.NO_ADDRESS,
            message_id=f"<{source}-{source_id}.{step}.client-{row['client_id']}."
                       f"{token[:12]}@{domain}>"))
    return len(Delivery.objects.bulk_create(deliveries, batch_size=2000,
                                            ignore_conflicts=True))


def claim(source: str, source_id: int, size: int) -> list[int]:
    """Up to `size` due rows of the source, locked past other workers (SKIP LOCKED) and
    marked sending with the claim time (stale claims go back to pending: reclaim_stale)."""
    now = timezone.now()
    due = Q(status=DeliveryStatus.PENDING) | Q(status=DeliveryStatus.RETRY,
                                               next_attempt_at__lte=now)
    with transaction.atomic():
        rows = outbox_rows(source, source_id).filter(due).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        ids = list(rows.values_list("id", flat=True)[:size])
        if ids:
            Delivery.objects.filter(id__in=ids).update(status=DeliveryStatus.SENDING,
                                                       claimed_at=now)
    return ids


def reclaim_stale(*, older_than_seconds: float | None = None) -> int:
    """Rows claimed by a worker that died: back to pending (only its in-flight one may repeat)."""
    seconds = (settings.NEWSLETTER_STALE_CLAIM_SECONDS if older_than_seconds is None
               else older_than_seconds)
    cutoff = timezone.now() - dt.timedelta(seconds=seconds)
    return Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=cutoff).update(
        status=DeliveryStatus.PENDING, claimed_at=None)


def cancel_open(source: str, source_id: int, *, include_sending: bool, ids=None) -> int:
    statuses = [DeliveryStatus.PENDING, DeliveryStatus.RETRY]
    if include_sending:
        statuses.append(DeliveryStatus.SENDING)
    rows = outbox_rows(source, source_id).filter(status__in=statuses)
    if ids is not None:
        rows = rows.filter(id__in=ids)
    return rows.update(status=DeliveryStatus.CANCELLED, claimed_at=None, next_attempt_at=None)


def release(ids: list[int]) -> int:
    """Claimed rows not sent (a pause): back to pending."""
    return Delivery.objects.filter(id__in=ids, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.PENDING, claimed_at=None)


def has_open(source: str, source_id: int) -> bool:
    return outbox_rows(source, source_id).filter(status__in=OPEN_STATUSES).exists()


def due_sources(*, now=None) -> list[tuple[str, int]]:
    """(source, source_id) of every source with rows to send now."""
    now = now or timezone.now()
    due = Q(status=DeliveryStatus.PENDING) | Q(status=DeliveryStatus.RETRY,
                                               next_attempt_at__lte=now)
    return list(Delivery.objects.filter(due).values_list("source", "source_id").distinct()
                .order_by())


_SETTLED = ((DeliveryStatus.SENT, ContactStatus.SENT),
            (DeliveryStatus.FAILED, ContactStatus.FAILED),
            (DeliveryStatus.CANCELLED, ContactStatus.CANCELLED))


def ledger_settle(source: str, source_id: int) -> int:
    """The source's queued email contacts in the ledger say what came of each: sent (at the
    time the server took it), failed or cancelled. A message in flight stays queued, so it
    still counts under the caps. Set-based; a contact already settled is left alone."""
    now = timezone.now()
    changed = 0
    for delivery_status, contact_status in _SETTLED:
        row = Delivery.objects.filter(source=OuterRef("source"), source_id=OuterRef("source_id"),
                                      step=OuterRef("step"), client_id=OuterRef("client_id"),
                                      status=delivery_status)
        at = Subquery(row.values("sent_at")[:1]) if delivery_status == DeliveryStatus.SENT \
            else Value(now)
        changed += (Contact.objects.filter(source=source, source_id=source_id,
                                           channel=Channel.EMAIL, status=ContactStatus.QUEUED)
                    .filter(Exists(row)).update(status=contact_status, at=at))
    return changed
