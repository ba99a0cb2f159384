"""Writing what happened to one outbox row: sent, to retry, failed, bounced."""

import datetime as dt
import json
import smtplib

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from ..models import Delivery, DeliveryStatus, Suppression
from .smtp import Outcome, classify


def jsonable(value) -> str:
    """The personal data snapshot as JSON text for Delivery.context."""
    try:
        return json.dumps(value, cls=DjangoJSONEncoder, default=str)
    except (TypeError, ValueError):
        return "{}"


def mark_sent(delivery: Delivery, context_json: str, now) -> None:
    """One short statement, committed at once (autocommit), before the next message goes
    out: a kill repeats at most the message in flight."""
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, sent_at = %s, claimed_at = NULL, "  # noqa: S608
            "attempts = %s, next_attempt_at = NULL, last_error = '', context = %s "
            "WHERE id = %s",
            [DeliveryStatus.SENT.value, now, delivery.attempts + 1, context_json, delivery.pk])


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
