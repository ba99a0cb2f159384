"""Celery tasks of segments: they take ids, re-load, return early when done, call a service."""

from celery import shared_task

from .services import segment_refresh_many, segment_refresh_run, segments_refresh_all


@shared_task(name="segments.tasks.segment_refresh_many_task", acks_late=True)
def segment_refresh_many_task(refresh_ids: list[int]) -> None:
    """Run the given refreshes in order (referenced segments come first)."""
    segment_refresh_many(refresh_ids=list(refresh_ids))


@shared_task(name="segments.tasks.segment_refresh_task", acks_late=True)
def segment_refresh_task(refresh_id: int) -> None:
    segment_refresh_run(refresh_id=refresh_id)


@shared_task(name="segments.tasks.segments_refresh_all_task", acks_late=True)
def segments_refresh_all_task() -> str:
    """Celery beat (03:00 Asia/Shanghai, a row in django_celery_beat): refresh every segment."""

    refreshes = segments_refresh_all(trigger="beat")
    return f"{len(refreshes)} refreshes"
