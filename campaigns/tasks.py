"""Celery tasks of campaigns: they take ids, re-load, return early when done, call a service.
Imports are inside the tasks: campaigns.services queues them (no import cycle)."""

from celery import shared_task


@shared_task(name="campaigns.tasks.campaign_launch_task", acks_late=True,
             reject_on_worker_lost=True)
def campaign_launch_task(launch_id: int) -> dict | None:
    """Run a launch. A redelivered message (the worker died) runs it again from nothing: the
    launch is one transaction, so a killed run left nothing behind."""
    from .launch import campaign_launch_fail, campaign_launch_run

    try:
        launch = campaign_launch_run(launch_id=launch_id)
    except Exception as exc:
        campaign_launch_fail(launch_id=launch_id, message=f"{type(exc).__name__}: {exc}")
        raise
    return launch.counts if launch is not None else None


@shared_task(name="campaigns.tasks.campaign_steps_task", acks_late=True)
def campaign_steps_task(today: str | None = None) -> dict:
    """Celery beat, every minute (a row in django_celery_beat): queued launches, due steps and
    journeys on trading days, finished campaigns. `today` (ISO date) replays a given day."""
    import datetime as dt

    from .launch import campaign_steps_run

    return campaign_steps_run(today=dt.date.fromisoformat(today) if today else None)
