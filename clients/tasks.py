from celery import Task, shared_task
from celery.exceptions import TimeLimitExceeded
from django.db import connection

from .import_services import import_job_fail, import_job_run, import_too_long_message
from .models import ImportJob


class ImportTask(Task):
    """The import task's class: a hard time limit fails the job it was running.

    The worker's main process kills the pool process at the hard limit and acknowledges the
    message, so nothing would ever run again for that job: Celery calls on_failure there (in
    the main process) with TimeLimitExceeded(seconds), and the row is failed with the reason.
    """

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if not isinstance(exc, TimeLimitExceeded):
            return
        seconds = exc.args[0] if exc.args else self.time_limit
        try:
            import_job_fail(job_id=args[0] if args else kwargs["job_id"],
                            message=import_too_long_message(int(seconds)))
        finally:
            connection.close()  # the main process forks new pool processes: leave them none


@shared_task(base=ImportTask, acks_late=True, reject_on_worker_lost=True)
def import_job_run_task(job_id: int) -> None:
    """Run the job once. A redelivered message finds the job finished (left alone) or still
    running -- its worker died mid-way -- and fails it instead of running it again."""
    if ImportJob.objects.filter(pk=job_id).exists():  # not deleted since it was queued
        import_job_run(job_id=job_id)


def import_soft_time_limit() -> int:
    """The running import's soft time limit in seconds: its message's (the sender sets the
    limits), else the task's (CELERY_TASK_SOFT_TIME_LIMIT)."""
    task = import_job_run_task
    return int(task.request.soft_time_limit or task.soft_time_limit)
