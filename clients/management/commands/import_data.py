"""`manage.py import_data <kind> <path> [--user USERNAME]`: the page's import, synchronously."""

from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients.import_services import import_job_create, import_job_run
from clients.ingest import SPECS
from clients.models import JobStatus
from core.errors import ApplicationError
from core.models import User


class Command(BaseCommand):
    help = ("Import clients, products, holdings or transactions from a .csv or .xlsx file. "
            "The whole file is validated first; on any error nothing is written, the errors "
            "are printed and the command exits with status 1.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=list(SPECS))
        parser.add_argument("path", type=Path)
        parser.add_argument("--user", help="username recorded as the importer (audit log)")

    def _progress(self, phase: str, done: int, total: int) -> None:
        self.stdout.write(f"  {phase}: {done}/{total}")

    def handle(self, *args, kind: str, path: Path, user: str | None = None, **opts) -> None:
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        actor = None
        if user:
            actor = User.objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"No such user: {user}")
        try:
            with path.open("rb") as handle:
                job = import_job_create(kind=kind, file=File(handle, name=path.name), user=actor,
                                        queue=False)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"import {job.pk}: {kind} from {path}")
        job = import_job_run(job_id=job.pk, on_progress=self._progress)
        if job.status == JobStatus.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(
                f"{job.rows_total} rows: {job.rows_created} created, {job.rows_updated} updated"))
            return
        self.stderr.write(job.message)
        for error in job.errors:
            self.stderr.write(f"  row {error['row']}, {error['column']} = {error['value']!r}: "
                              f"{error['message']}")
        if job.error_count > len(job.errors):
            self.stderr.write(f"  … {job.error_count - len(job.errors)} more")
        if job.error_report:
            self.stderr.write(f"error report: {job.error_report.path}")
        raise CommandError(f"import {job.pk} rejected; nothing was imported", returncode=1)
