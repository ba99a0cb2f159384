"""`manage.py score_clients [--as-of DATE] [--resume RUN_ID] [--sync]`: a value-scoring run."""

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients.scoring.models import ScoringRun, ScoringRunStatus
from clients.scoring.services import scoring_run_resume, scoring_run_start
from core.errors import ApplicationError


class Command(BaseCommand):
    help = ("Score every client as of a date (default: yesterday, Asia/Shanghai) with the latest "
            "scheme, or resume an interrupted run; prints progress, tiers and timings.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", dest="as_of", default=None, help="YYYY-MM-DD")
        parser.add_argument("--resume", type=int, default=None, metavar="RUN_ID",
                            help="re-queue the chunks of an interrupted or failed run")
        parser.add_argument("--sync", action="store_true",
                            help="run the chunks in this process even when a broker is set")
        parser.add_argument("--chunk-clients", type=int, default=None,
                            help="clients per chunk (default SCORING_CHUNK_CLIENTS or 50,000)")

    def handle(self, *args, **opts) -> None:
        if opts["sync"]:
            from config.celery import app  # only --sync needs the Celery app configured

            app.conf.task_always_eager = True
        as_of = None
        if opts["as_of"]:
            try:
                as_of = date.fromisoformat(opts["as_of"])
            except ValueError as exc:
                raise CommandError(f"--as-of must be a date YYYY-MM-DD, not {opts['as_of']!r}.") \
                    from exc
        try:
            if opts["resume"] is not None:
                run = ScoringRun.objects.filter(pk=opts["resume"]).first()
                if run is None:
                    raise CommandError(f"No scoring run {opts['resume']}.")
                run = scoring_run_resume(run=run)
            else:
                run = scoring_run_start(as_of=as_of, trigger="command",
                                        chunk_clients=opts["chunk_clients"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"run {run.pk}: as of {run.as_of}, scheme v{run.scheme.version}, "
                          f"{run.progress_total:,} clients in {run.chunk_count} chunks")
        last = None
        while True:
            run.refresh_from_db()
            shown = (run.status, run.progress_done)
            if shown != last:
                self.stdout.write(f"  {run.status}: {run.progress_done:,}/{run.progress_total:,}"
                                  f" clients, {run.chunks_done}/{run.chunk_count} chunks")
                last = shown
            if not run.is_active:
                break
            time.sleep(1)
        if run.status == ScoringRunStatus.FAILED:
            raise CommandError(f"run {run.pk} failed: {run.error} "
                               f"(resume with --resume {run.pk})")
        for tier, count in sorted(run.tier_counts.items()):
            self.stdout.write(f"  {tier:<12} {count:>10,}")
        self.stdout.write("  timings (s): " + ", ".join(f"{k} {v}" for k, v in run.timings.items()))
        self.stdout.write(self.style.SUCCESS(f"run {run.pk} succeeded"))
