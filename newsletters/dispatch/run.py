"""An edition's run of the one email dispatcher (outreach.email.run)."""

from outreach.email.run import finish_if_done, outbox_run
from outreach.models import ContactSource


def edition_dispatch_run(*, edition_id: int, max_seconds: float | None = None) -> str:
    """Send the edition's due outbox rows (outreach.email.run.outbox_run says what it returns)."""
    return outbox_run(source=ContactSource.NEWSLETTER, source_id=edition_id,
                      max_seconds=max_seconds)


def edition_finish_if_done(*, edition_id: int) -> bool:
    """Sending → sent once no row is pending, waiting to retry or claimed."""
    return finish_if_done(source=ContactSource.NEWSLETTER, source_id=edition_id)
