"""Import jobs: an uploaded file becomes an ImportJob, run by a task through clients.ingest."""

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from core.models import AuditAction
from core.services import audit_record
from core.spreadsheet import csv_bytes

from .ingest import ALLOWED_EXTENSIONS, IngestRejected, RowError, ingest_frame, read_table
from .ingest import spec_for as ingest_spec_for
from .models import ImportJob, JobStatus
from .signals import import_succeeded

logger = logging.getLogger(__name__)

ERRORS_KEPT_ON_JOB = 100
PROGRESS_EVERY_SECONDS = 0.3


def import_file_check(*, name: str, size: int) -> None:
    """The upload rules: an allowed extension and at most settings.IMPORT_MAX_UPLOAD_BYTES."""
    if Path(name).suffix.lower() not in ALLOWED_EXTENSIONS:
        raise ApplicationError(_("Only .csv and .xlsx files can be imported."),
                               fields={"file": ["extension"]})
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    if size > limit:
        raise ApplicationError(_("The file is larger than %(mb)d MB.")
                               % {"mb": limit // (1024 * 1024)}, fields={"file": ["size"]})


def import_job_create(*, kind: str, file, user=None, original_name: str = "",
                      queue: bool = True) -> ImportJob:
    """Save the upload as a queued job; the task runs it after commit (`queue=False`: don't)."""
    from .tasks import import_job_run_task  # clients.tasks imports this module

    ingest_spec_for(kind)
    name = Path(original_name or file.name).name
    import_file_check(name=name, size=file.size)
    with transaction.atomic():
        job = ImportJob(kind=kind, original_name=name[:255],
                        created_by=user if user is not None and user.is_authenticated else None)
        job.file.save(name, file, save=False)
        job.save()
        if queue:
            transaction.on_commit(lambda: import_job_run_task.delay(job.pk))
    return job


class _ProgressReporter:
    """Saves phase and done/total at most every PROGRESS_EVERY_SECONDS.

    Inside the write transaction on PostgreSQL the row is updated through a second connection,
    so the progress bar moves while the data is still uncommitted.
    """

    def __init__(self, job: ImportJob, echo: Callable[[str, int, int], None] | None = None):
        self.job = job
        self.echo = echo
        self.last = 0.0
        self.side = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        job, now = self.job, time.monotonic()
        changed_phase = phase != job.phase
        job.phase, job.progress_done, job.progress_total = phase, done, total
        if changed_phase or now - self.last >= PROGRESS_EVERY_SECONDS:
            self.last = now
            self.save()
            if self.echo is not None:
                self.echo(phase, done, total)

    def save(self) -> None:
        job = self.job
        if connection.vendor != "postgresql" or not connection.in_atomic_block:
            job.save(update_fields=["phase", "progress_done", "progress_total", "updated_at"])
            return
        try:
            if self.side is None:
                self.side = connections.create_connection(DEFAULT_DB_ALIAS)
            with self.side.cursor() as cursor:
                cursor.execute(f"UPDATE {ImportJob._meta.db_table} SET phase = %s,"
                               " progress_done = %s, progress_total = %s WHERE id = %s",
                               [job.phase, job.progress_done, job.progress_total, job.pk])
        except SoftTimeLimitExceeded:
            raise
        except Exception:  # progress is a courtesy; the import must not fail for it
            logger.warning("progress update failed for import %s", job.pk, exc_info=True)

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


def error_report_csv(errors: list[RowError]) -> bytes:
    """row,column,value,message as UTF-8 with BOM, so Excel in China opens it."""
    return csv_bytes([["row", "column", "value", "message"],
                      *([e.row, e.column, e.value, e.message] for e in errors)])


def import_too_long_message(seconds: int) -> str:
    """Why a job the time limit stopped failed."""
    return _("The file took too long to read and import (limit: %(seconds)d s) and was stopped; "
             "nothing was imported. Split it into smaller files.") % {"seconds": seconds}


def import_stopped_message() -> str:
    """Why a job found running when its task was delivered again failed."""
    return _("The worker stopped while importing this file (it may have run out of memory); "
             "the import was not retried and nothing was imported. Check the file or split "
             "it, then upload it again.")


def import_job_run(*, job_id: int,
                   on_progress: Callable[[str, int, int], None] | None = None) -> ImportJob:
    """Read, validate and write the job's file, once; a finished job is returned untouched.

    A job found running was started by a delivery whose worker died mid-way (killed, out of
    memory) and was delivered again: it is failed, not run again -- a file that stopped one
    worker must not stop the next. `on_progress(phase, done, total)` is told as well as the
    job row (the command prints it).
    """
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    if not job.is_active:
        return job
    if job.status == JobStatus.RUNNING:
        logger.warning("import %s was running when its task came again: failed, not re-run",
                       job.pk)
        job.status, job.message = JobStatus.FAILED, import_stopped_message()
        return _finish(job)
    now = timezone.now()
    if not ImportJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, phase="reading", started_at=now, progress_done=0,
            progress_total=0, updated_at=now):
        job.refresh_from_db()  # another delivery took it a moment ago
        return job
    job.status, job.phase, job.started_at = JobStatus.RUNNING, "reading", now
    job.progress_done = job.progress_total = 0
    reporter = _ProgressReporter(job, on_progress)
    errors: list[RowError] = []
    try:
        with job.file.open("rb") as handle:
            frame = read_table(path_or_file=handle, filename=job.original_name)
        job.rows_total = len(frame)
        result = ingest_frame(kind=job.kind, frame=frame, actor=job.created_by,
                              on_progress=reporter)
    except IngestRejected as rejected:
        errors = rejected.errors
        job.status, job.error_count = JobStatus.FAILED, rejected.error_count
        job.message = rejected.message
    except ApplicationError as exc:
        job.status, job.message = JobStatus.FAILED, exc.message
    except SoftTimeLimitExceeded:
        from .tasks import import_soft_time_limit  # clients.tasks imports this module

        job.status = JobStatus.FAILED
        job.message = import_too_long_message(import_soft_time_limit())
    except Exception:
        logger.exception("import %s failed", job.pk)
        job.status, job.message = JobStatus.FAILED, _("The import failed unexpectedly; nothing "
                                                      "was imported. Please contact support.")
    else:
        job.status = JobStatus.SUCCEEDED
        job.rows_created, job.rows_updated = result.created, result.updated
        job.progress_done = job.progress_total = result.rows
        job.message = _("%(created)d created, %(updated)d updated.") % {
            "created": result.created, "updated": result.updated}
    finally:
        reporter.close()
    return _finish(job, errors)


def import_job_fail(*, job_id: int, message: str) -> ImportJob | None:
    """Fail a job that is queued or running, with `message` (the worker's main process, after
    the hard time limit killed the process running it). None if there is no such job."""
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or not job.is_active:
        return job
    job.status, job.message = JobStatus.FAILED, message
    return _finish(job)


def _finish(job: ImportJob, errors: Sequence[RowError] = ()) -> ImportJob:
    """Save the job's outcome (status and message set) and its error report; audit it."""
    job.phase, job.finished_at = "", timezone.now()
    job.errors = [e._asdict() for e in errors[:ERRORS_KEPT_ON_JOB]]
    if errors:
        job.error_report.save(f"import-{job.pk}-errors.csv",
                              ContentFile(error_report_csv(errors)), save=False)
    job.save()
    audit_record(action=AuditAction.IMPORT, actor=job.created_by, object_type="import",
                 object_id=str(job.pk),
                 detail={"kind": job.kind, "file": job.original_name, "rows": job.rows_total,
                         "created": job.rows_created, "updated": job.rows_updated,
                         "errors": job.error_count, "status": job.status})
    if job.status == JobStatus.SUCCEEDED:
        transaction.on_commit(
            lambda: import_succeeded.send(sender=ImportJob, job=job, trigger="import"))
    return job
