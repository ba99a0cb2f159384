"""Celery tasks of analytics: they take ids, re-load, return early when done, call a service."""

from celery import shared_task

from .services import refresh_run, refresh_start


@shared_task(name="analytics.tasks.analytics_refresh_task", acks_late=True)
def analytics_refresh_task(refresh_id: int) -> str:
    refresh = refresh_run(refresh_id=refresh_id)
    return f"{refresh.kind} {refresh.status}"


@shared_task(name="analytics.tasks.analytics_refresh_nightly_task", acks_late=True)
def analytics_refresh_nightly_task() -> str:
    """Celery beat (a row in django_celery_beat): the nightly catch-up, in case the refresh
    queued after scoring did not run (scoring failed, a worker was down)."""
    refresh = refresh_start(trigger="beat")
    return f"refresh {refresh.pk} {refresh.status}"
