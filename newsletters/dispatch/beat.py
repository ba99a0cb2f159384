"""What Celery beat runs every minute: scheduled editions, stale claims, retries, finishing."""

import logging

from django.utils import timezone

from core.errors import ApplicationError
from outreach.email.outbox import due_sources, reclaim_stale
from outreach.models import ContactSource

from ..approval import ApprovalLapsed
from ..models import Edition, EditionStatus
from .outbox import edition_dispatch_kick, edition_dispatch_start
from .run import edition_finish_if_done

log = logging.getLogger(__name__)


def deliveries_reclaim_stale(*, older_than_seconds: float | None = None) -> int:
    """Rows claimed by a worker that died, of any source: back to pending (only its in-flight
    one may repeat)."""
    return reclaim_stale(older_than_seconds=older_than_seconds)


def editions_due(*, now=None, stale_seconds: float | None = None) -> dict:
    """Start scheduled editions that are due, hand back stale claims, re-kick or finish the rest.
    Approved and scheduled editions whose approval no longer holds (e.g. a product re-rated by
    a bulk import, which sends no signal) go back to draft first; a due one is never started.

    Run every minute by Celery beat; reads only the database (no ETA tasks).
    """
    from ..services import edition_approval_recheck, editions_approval_recheck

    now = now or timezone.now()
    revoked = editions_approval_recheck()
    started = []
    for edition in Edition.objects.filter(status=EditionStatus.SCHEDULED,
                                          scheduled_at__lte=now).order_by("scheduled_at"):
        try:
            edition_dispatch_start(edition=edition, actor=None)
            started.append(edition.id)
        except ApprovalLapsed as exc:  # changed since the sweep above
            edition_approval_recheck(edition=edition)
            revoked.append(edition.id)
            log.warning("newsletter: scheduled edition %s not started: %s", edition.id, exc)
        except ApplicationError as exc:
            log.warning("newsletter: scheduled edition %s not started: %s", edition.id, exc)
    reclaimed = deliveries_reclaim_stale(older_than_seconds=stale_seconds)
    sending = Edition.objects.filter(status=EditionStatus.SENDING)
    due = {source_id for source, source_id in due_sources(now=now)
           if source == ContactSource.NEWSLETTER}
    kicked = list(sending.filter(id__in=due).exclude(id__in=started).values_list("id", flat=True))
    for edition_id in kicked:
        edition_dispatch_kick(edition_id=edition_id, tasks=1)
    finished = [e for e in sending.exclude(id__in=kicked + started).values_list("id", flat=True)
                if edition_finish_if_done(edition_id=e)]
    return {"started": started, "reclaimed": reclaimed, "kicked": kicked, "finished": finished,
            "revoked": revoked}
