"""Writes of value scoring: start, aggregate, run a chunk, finish, fail and resume a run.

A run is a row with status and progress. After commit its first task aggregates the whole
window once (one GROUP BY) into a staging table and marks the run aggregated; it then queues
the client-id ranges (chunks) as a Celery group. A chunk reads its range from the staging
table, replaces its range's scores and marks itself done in one transaction, so a redelivered
or resumed chunk never writes twice; whichever chunk completes the last one finishes the run
(no chord, so no result backend is needed). Finishing moves the one-row ScoringCurrent pointer
(CurrentScore is a view over it) and drops the staging table. A resumed run re-aggregates only
when the staging table is missing or was never completed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import date, timedelta

from celery import group
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from core.models import AuditAction
from core.services import audit_record

from . import engine
from .models import ScoringChunk, ScoringCurrent, ScoringRun, ScoringRunStatus, ScoringScheme
from .selectors import stale_runs
from .signals import scoring_run_succeeded

logger = logging.getLogger(__name__)

TRIGGERS = ("page", "api", "command", "beat")
DEFAULT_CHUNK_CLIENTS = 250_000


def scoring_default_as_of() -> date:
    """Yesterday in the product's time zone (Asia/Shanghai): the last complete trading day."""
    return timezone.localdate() - timedelta(days=1)


def _chunk_size() -> int:
    return int(getattr(settings, "SCORING_CHUNK_CLIENTS", DEFAULT_CHUNK_CLIENTS))


def _chunk_ranges(size: int) -> list[tuple[int, int, int]]:
    """(id_from, id_to exclusive, clients) of consecutive ranges of `size` clients, one query."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT id, rn, total, top FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn, "
            "COUNT(*) OVER () AS total, MAX(id) OVER () AS top FROM clients_client) s "
            "WHERE (rn - 1) %% %s = 0 ORDER BY id", [size])
        rows = cur.fetchall()
    ranges = []
    for index, (first_id, rn, total, top) in enumerate(rows):
        id_to = rows[index + 1][0] if index + 1 < len(rows) else top + 1
        ranges.append((first_id, id_to, min(size, total - (rn - 1))))
    return ranges


def _queue_chunks(run_id: int, chunk_ids: list[int]) -> None:
    from .tasks import scoring_chunk_task, scoring_finish_task  # the tasks import this module

    if chunk_ids:
        group(scoring_chunk_task.si(chunk_id) for chunk_id in chunk_ids).apply_async()
    else:
        scoring_finish_task.delay(run_id)


def _queue_run(run_id: int) -> None:
    """The run's first step: aggregate the window (skipped when done), then the chunk group."""
    from .tasks import scoring_aggregate_task  # the tasks import this module

    scoring_aggregate_task.delay(run_id)


def _mark_running(run_id: int) -> None:
    now = timezone.now()
    ScoringRun.objects.filter(pk=run_id, status=ScoringRunStatus.QUEUED).update(
        status=ScoringRunStatus.RUNNING, updated_at=now)
    ScoringRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)


def _ensure_aggregated(run_id: int) -> None:
    """Build the run's window aggregate unless it is complete; concurrent callers wait for it."""
    if (ScoringRun.objects.filter(pk=run_id, aggregated=True).exists()
            and engine.staging_exists(run_id)):
        return
    with transaction.atomic():
        run = ScoringRun.objects.select_for_update().select_related("scheme").get(pk=run_id)
        if run.aggregated and engine.staging_exists(run.pk):
            return
        started = time.perf_counter()
        engine.aggregate_window(run_id=run.pk, as_of=run.as_of,
                                months=run.scheme.window_months)
        timings = {**(run.timings or {}), "aggregate": round(time.perf_counter() - started, 3)}
        ScoringRun.objects.filter(pk=run.pk).update(aggregated=True, timings=timings,
                                                    updated_at=timezone.now())


def scoring_run_aggregate(*, run_id: int) -> None:
    """First step of a run: one GROUP BY over the window (idempotent), then queue the chunks."""
    run = ScoringRun.objects.filter(pk=run_id).first()
    if run is None or not run.is_active:
        return
    pending = list(ScoringChunk.objects.filter(run_id=run_id, done=False).order_by("index")
                   .values_list("pk", flat=True))
    if not pending:
        scoring_run_finish(run_id=run_id)
        return
    _mark_running(run_id)
    try:
        _ensure_aggregated(run_id)
    except Exception as exc:
        logger.exception("scoring aggregate of run %s failed", run_id)
        scoring_run_fail(run_id=run_id, error=f"aggregate: {exc!r}")
        raise
    _queue_chunks(run_id, pending)


def scoring_run_start(*, as_of: date | None = None, actor=None, trigger: str = "page",
                      scheme: ScoringScheme | None = None,
                      chunk_clients: int | None = None) -> ScoringRun:
    """Create a run for `as_of` (default yesterday) and queue its chunks after commit."""
    as_of = as_of or scoring_default_as_of()
    if trigger not in TRIGGERS:
        raise ApplicationError(_("Unknown trigger %(trigger)s.") % {"trigger": trigger})
    scheme = scheme or ScoringScheme.objects.order_by("-version").first()
    if scheme is None:
        raise ApplicationError(_("No scoring scheme has been published yet."), code="no_scheme")
    busy = _("A scoring run for %(date)s is already queued or running; wait for it to finish "
             "or resume it.") % {"date": as_of.isoformat()}
    with transaction.atomic():
        if ScoringRun.objects.filter(as_of=as_of, status__in=ScoringRun.ACTIVE).exists():
            raise ApplicationError(busy, code="run_active", status=409)
        try:
            with transaction.atomic():
                run = ScoringRun.objects.create(
                    as_of=as_of, scheme=scheme, trigger=trigger,
                    created_by=actor if getattr(actor, "pk", None) else None)
        except IntegrityError as exc:
            raise ApplicationError(busy, code="run_active", status=409) from exc
        ranges = _chunk_ranges(chunk_clients or _chunk_size())
        chunks = ScoringChunk.objects.bulk_create([
            ScoringChunk(run=run, index=i, id_from=lo, id_to=hi, clients=n)
            for i, (lo, hi, n) in enumerate(ranges)])
        run.progress_total = sum(n for _lo, _hi, n in ranges)
        run.chunk_count = len(chunks)
        run.save(update_fields=["progress_total", "chunk_count", "updated_at"])
        if trigger != "beat":  # by hand: the page, the API or a command
            audit_record(action=AuditAction.SCORING_STARTED,
                         actor=actor if getattr(actor, "pk", None) else None,
                         object_type="scoring_run", object_id=str(run.pk),
                         detail={"as_of": as_of.isoformat(), "scheme": scheme.version,
                                 "trigger": trigger})
        transaction.on_commit(lambda: _queue_run(run.pk), robust=True)
    return run


def scoring_run_resume(*, run: ScoringRun) -> ScoringRun:
    """Re-queue the chunks of a failed or stalled run that are not done; done ones are kept."""
    if run.status == ScoringRunStatus.SUCCEEDED:
        raise ApplicationError(_("This run has already succeeded; start a new run to score "
                                 "again."), code="run_finished", status=409)
    with transaction.atomic():
        try:
            with transaction.atomic():
                updated = ScoringRun.objects.filter(pk=run.pk).exclude(
                    status=ScoringRunStatus.SUCCEEDED).update(
                    status=ScoringRunStatus.RUNNING, error="", finished_at=None,
                    updated_at=timezone.now())
        except IntegrityError as exc:
            raise ApplicationError(
                _("Another scoring run for %(date)s is active; it cannot be resumed now.")
                % {"date": run.as_of.isoformat()}, code="run_active", status=409) from exc
        if not updated:
            raise ApplicationError(_("This run has already succeeded."), code="run_finished",
                                   status=409)
        # Re-aggregates only if the staging table is missing or incomplete; queues the chunks
        # that are not done (or finishes the run when none is left).
        transaction.on_commit(lambda: _queue_run(run.pk), robust=True)
    run.refresh_from_db()
    return run


def scoring_runs_resume_stale() -> list[int]:
    """Resume every run that stopped moving (Celery beat, every 10 minutes). Chunks already
    done are kept, and a chunk run twice writes once, so resuming a run that was merely slow
    costs time, never correctness."""
    resumed = []
    for run in stale_runs().order_by("as_of"):
        try:
            scoring_run_resume(run=run)
        except ApplicationError as exc:  # finished or another run of the date took over
            logger.info("scoring: stale run %s not resumed: %s", run.pk, exc.message)
            continue
        logger.warning("scoring: run %s (as of %s) had stopped moving; resumed", run.pk,
                       run.as_of)
        resumed.append(run.pk)
    return resumed


def scoring_staging_cleanup(*, keep_days: int | None = None) -> list[int]:
    """Drop the window aggregates nobody will use: of failed runs that ended more than
    SCORING_STAGING_KEEP_DAYS ago (a later resume simply aggregates again) and of runs that no
    longer exist. Queued, running and recently failed runs keep theirs."""
    days = settings.SCORING_STAGING_KEEP_DAYS if keep_days is None else keep_days
    cutoff = timezone.now() - timedelta(days=days)
    present = engine.staging_run_ids()
    if not present:
        return []
    runs = {pk: (status, finished) for pk, status, finished in ScoringRun.objects.filter(
        pk__in=present).values_list("pk", "status", "finished_at")}

    def unused(run_id: int) -> bool:
        if run_id not in runs:
            return True
        status, finished = runs[run_id]
        return status == ScoringRunStatus.SUCCEEDED or (
            status == ScoringRunStatus.FAILED and finished is not None and finished < cutoff)

    dropped = [run_id for run_id in present if unused(run_id)]
    for run_id in dropped:
        engine.staging_drop(run_id)
    if dropped:
        logger.info("scoring: dropped staging tables of runs %s", dropped)
    return dropped


def scoring_run_fail(*, run_id: int, error: str) -> None:
    ScoringRun.objects.filter(pk=run_id).exclude(status=ScoringRunStatus.SUCCEEDED).update(
        status=ScoringRunStatus.FAILED, error=error[:4000], finished_at=timezone.now(),
        updated_at=timezone.now())


def scoring_chunk_run(*, chunk_id: int) -> None:
    """Score one chunk; harmless when it is already done. The last chunk finishes the run."""
    chunk = ScoringChunk.objects.select_related("run__scheme").filter(pk=chunk_id).first()
    if chunk is None or chunk.done or chunk.run.status == ScoringRunStatus.SUCCEEDED:
        return
    run = chunk.run
    _mark_running(run.pk)
    started = time.perf_counter()
    try:
        _ensure_aggregated(run.pk)  # normally done by the run's first step already
        with transaction.atomic():
            locked = ScoringChunk.objects.select_for_update().get(pk=chunk_id)
            if locked.done:
                return
            result = engine.score_range(scheme=run.scheme, run_id=run.pk, as_of=run.as_of,
                                        id_from=chunk.id_from, id_to=chunk.id_to)
            ScoringChunk.objects.filter(pk=chunk_id).update(
                done=True, clients=result.clients, seconds=time.perf_counter() - started,
                timings=result.timings)
            ScoringRun.objects.filter(pk=run.pk).update(
                progress_done=F("progress_done") + result.clients,
                chunks_done=F("chunks_done") + 1, updated_at=timezone.now())
            state = ScoringRun.objects.values("chunks_done", "chunk_count").get(pk=run.pk)
    except Exception as exc:
        logger.exception("scoring chunk %s of run %s failed", chunk_id, run.pk)
        scoring_run_fail(run_id=run.pk, error=f"chunk {chunk.index}: {exc!r}")
        raise
    if state["chunks_done"] >= state["chunk_count"]:
        scoring_run_finish(run_id=run.pk)


def scoring_run_finish(*, run_id: int) -> ScoringRun | None:
    """Point current scores at the run (unless a later date already is current), count tiers,
    drop the staging table, succeed. O(1) in the number of clients apart from the tier count."""
    with transaction.atomic():
        run = ScoringRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status == ScoringRunStatus.SUCCEEDED:
            return run
        if ScoringChunk.objects.filter(run=run, done=False).exists():
            return run
        started = time.perf_counter()
        pointer = ScoringCurrent.objects.select_for_update().filter(pk=1).first()
        later = ScoringRun.objects.filter(status=ScoringRunStatus.SUCCEEDED,
                                          as_of__gt=run.as_of).exists()
        if not later and (pointer is None or pointer.as_of <= run.as_of):
            ScoringCurrent.objects.update_or_create(
                pk=1, defaults={"as_of": run.as_of, "scheme_id": run.scheme_id, "run": run})
        with connection.cursor() as cur:
            # Every row of (as_of, scheme) is this run's now: the (as_of, scheme, tier) index
            # answers without reading the table.
            cur.execute("SELECT tier, COUNT(*) FROM clients_clientscore WHERE as_of = %s "
                        "AND scheme_id = %s GROUP BY tier", [run.as_of, run.scheme_id])
            tier_counts = {tier: count for tier, count in cur.fetchall()}
        engine.staging_drop(run.pk)
        totals: Counter[str] = Counter()
        for timings in ScoringChunk.objects.filter(run=run).values_list("timings", flat=True):
            totals.update(timings or {})
        now = timezone.now()
        aggregate = (run.timings or {}).get("aggregate", 0.0)
        run.timings = {"aggregate": round(aggregate, 3),
                       **{phase: round(totals.get(phase, 0.0), 3)
                          for phase in ("read", "band", "write")}}
        run.timings["finish"] = round(time.perf_counter() - started, 3)
        if run.started_at:
            run.timings["wall"] = round((now - run.started_at).total_seconds(), 3)
        run.tier_counts = tier_counts
        run.status = ScoringRunStatus.SUCCEEDED
        run.error = ""
        run.finished_at = now
        run.save(update_fields=["timings", "tier_counts", "status", "error", "finished_at",
                                "updated_at"])
        transaction.on_commit(lambda: scoring_run_succeeded.send(sender=ScoringRun, run=run))
    return run
