"""Pause, resume and cancel an edition while it is being sent."""

from django.db import connection, transaction

from core.errors import ApplicationError
from outreach.models import ContactSource, ContactStatus
from outreach.services import contacts_mark

from ..models import Delivery, DeliveryStatus, Edition, EditionStatus
from .outbox import _event, edition_dispatch_kick


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
    ledger_settle(edition.id)
    return edition


def ledger_settle(edition_id: int) -> None:
    """The edition's contacts in the ledger say what came of each: sent, failed or cancelled
    (a message in flight when an edition is cancelled stays queued, so it still counts)."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    for delivery_status, contact_status in ((DeliveryStatus.SENT, ContactStatus.SENT),
                                            (DeliveryStatus.FAILED, ContactStatus.FAILED),
                                            (DeliveryStatus.CANCELLED, ContactStatus.CANCELLED)):
        contacts_mark(source=ContactSource.NEWSLETTER, source_id=edition_id,
                      status=contact_status,
                      clients_sql=f"SELECT client_id FROM {table} WHERE edition_id = %s "
                                  f"AND status = %s",
                      params=[edition_id, delivery_status])


def _cancel_open_rows(edition_id: int, *, include_sending: bool, ids=None) -> int:
    statuses = [DeliveryStatus.PENDING, DeliveryStatus.RETRY]
    if include_sending:
        statuses.append(DeliveryStatus.SENDING)
    rows = Delivery.objects.filter(edition_id=edition_id, status__in=statuses)
    if ids is not None:
        rows = rows.filter(id__in=ids)
    return rows.update(status=DeliveryStatus.CANCELLED, claimed_at=None, next_attempt_at=None)
