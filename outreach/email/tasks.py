"""The Celery task of the email dispatcher (found by config/celery.py's autodiscovery of
"outreach.email")."""

from celery import shared_task


@shared_task(name="outreach.email.tasks.email_dispatch_task", acks_late=True)
def email_dispatch_task(source: str, source_id: int) -> str:
    """Send a source's due outbox rows; any number of these share one source safely.

    Stops at a chunk boundary well before the task's soft time limit (the minute beat queues
    the rest), so the limit never lands in the middle of a message."""
    from django.conf import settings

    from .run import outbox_run

    budget = max(60, settings.CELERY_LONG_TASK_SOFT_TIME_LIMIT - 5 * 60)
    return outbox_run(source=source, source_id=source_id, max_seconds=budget)


def email_dispatch_kick(*, source: str, source_id: int, tasks: int = 1) -> None:
    """Queue dispatch tasks for a source; extra ones find nothing left and return at once."""
    count = 1 if email_dispatch_task.app.conf.task_always_eager else max(1, tasks)
    for _ in range(count):
        email_dispatch_task.delay(source, source_id)
