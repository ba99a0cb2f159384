"""Celery tasks of newsletters: they take ids, re-load, return early when done, call a service."""

from celery import shared_task


@shared_task(name="newsletters.tasks.edition_dispatch_task", acks_late=True)
def edition_dispatch_task(edition_id: int) -> str:
    """Send an edition's due outbox rows; any number of these share one edition safely.

    Stops at a chunk boundary well before the task's soft time limit (the minute beat queues
    the rest), so the limit never lands in the middle of a message."""
    from django.conf import settings

    from .dispatch import edition_dispatch_run

    budget = max(60, settings.CELERY_LONG_TASK_SOFT_TIME_LIMIT - 5 * 60)
    return edition_dispatch_run(edition_id=edition_id, max_seconds=budget)


@shared_task(name="newsletters.tasks.editions_due_task", acks_late=True)
def editions_due_task() -> dict:
    """Celery beat, every minute (a row in django_celery_beat): scheduled editions that are due,
    stale claims of dead workers, sending editions with rows due (retries), finished ones."""
    from .dispatch import editions_due

    return editions_due()


@shared_task(name="newsletters.tasks.replies_fetch_task", acks_late=True)
def replies_fetch_task() -> dict:
    """Celery beat, every minute (a row in django_celery_beat): new email replies from the reply
    mailbox become feedback and RM tasks. Off (returns at once) without
    NEWSLETTER_REPLY_MAILBOX_URL; a mailbox problem is logged and returned, never raised."""
    from .mailbox import replies_fetch

    return replies_fetch()
