"""Pause, resume and cancel an edition while it is being sent."""

from django.db import transaction

from core.errors import ApplicationError
from outreach.email.outbox import cancel_open, ledger_settle
from outreach.models import ContactSource

from ..models import Edition, EditionStatus
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
    cancel_open(ContactSource.NEWSLETTER, edition.id, include_sending=False)
    ledger_settle(ContactSource.NEWSLETTER, edition.id)
    return edition
