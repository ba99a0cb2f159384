from celery import shared_task

from .models import ImportJob


@shared_task(acks_late=True)
def import_job_run_task(job_id: int) -> None:
    """Re-load the job; a finished one is left alone, so a redelivered task is harmless."""
    from .import_services import FINISHED, import_job_run

    status = ImportJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
    if status is None or status in FINISHED:
        return
    import_job_run(job_id=job_id)
