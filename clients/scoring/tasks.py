"""Celery tasks of value scoring: they take ids, re-load, return early when done, call a service."""

from celery import shared_task
from django.utils.translation import gettext as _

from core.errors import ApplicationError

from .models import ScoringRun, ScoringRunStatus
from .services import (
    scoring_chunk_run,
    scoring_default_as_of,
    scoring_run_aggregate,
    scoring_run_finish,
    scoring_run_start,
    scoring_runs_resume_stale,
    scoring_staging_cleanup,
)


@shared_task(name="clients.scoring.tasks.scoring_aggregate_task", acks_late=True)
def scoring_aggregate_task(run_id: int) -> None:
    """A run's first step: the window aggregate (skipped when complete), then the chunk group."""
    scoring_run_aggregate(run_id=run_id)


@shared_task(name="clients.scoring.tasks.scoring_chunk_task", acks_late=True)
def scoring_chunk_task(chunk_id: int) -> None:
    scoring_chunk_run(chunk_id=chunk_id)


@shared_task(name="clients.scoring.tasks.scoring_finish_task", acks_late=True)
def scoring_finish_task(run_id: int) -> None:
    scoring_run_finish(run_id=run_id)


@shared_task(name="clients.scoring.tasks.scoring_nightly_task", acks_late=True)
def scoring_nightly_task() -> str:
    """Celery beat, 02:00 Asia/Shanghai: score every client as of yesterday, once."""
    as_of = scoring_default_as_of()
    if ScoringRun.objects.filter(
            as_of=as_of, status__in=(*ScoringRun.ACTIVE, ScoringRunStatus.SUCCEEDED)).exists():
        return _("already scored or running")
    try:
        run = scoring_run_start(as_of=as_of, trigger="beat")
    except ApplicationError as exc:
        return exc.message
    return f"run {run.pk}"


@shared_task(name="clients.scoring.tasks.scoring_resume_stale_task", acks_late=True)
def scoring_resume_stale_task() -> list[int]:
    """Celery beat, every 10 minutes: resume runs whose worker died or whose message was lost,
    and drop staging tables nobody will use any more."""
    resumed = scoring_runs_resume_stale()
    scoring_staging_cleanup()
    return resumed
