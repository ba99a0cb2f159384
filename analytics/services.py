"""Writes of analytics: starting and running a refresh of the rollups (analytics.rollups).

A refresh is a Job row. At most one is queued and one running at a time (a database
constraint): a second request while one waits returns the waiting one, so imports arriving in
a burst queue one refresh, not one each. Work is queued after commit; the task re-loads the row
and resumes it (a full rebuild continues at its next chunk; an incremental one redoes its
touched set, which is idempotent).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.models import JobStatus

from . import rollups
from .models import AnalyticsRefresh, RefreshKind

logger = logging.getLogger(__name__)


def refresh_start(*, user=None, full: bool = False, trigger: str = "api",
                  queue: bool = True) -> AnalyticsRefresh:
    """A queued refresh, run after commit; the one already queued if there is one."""
    kind = RefreshKind.FULL if full else RefreshKind.INCREMENTAL
    refresh_fail_stale()
    with transaction.atomic():
        waiting = AnalyticsRefresh.objects.filter(status=JobStatus.QUEUED).first()
        if waiting is not None:
            if full and waiting.kind != RefreshKind.FULL:
                waiting.kind = RefreshKind.FULL
                waiting.save(update_fields=["kind"])
            return waiting
        try:
            with transaction.atomic():
                refresh = AnalyticsRefresh.objects.create(
                    kind=kind, trigger=trigger[:20],
                    created_by=user if getattr(user, "pk", None) else None)
        except IntegrityError:  # another request queued one a moment ago
            return AnalyticsRefresh.objects.get(status=JobStatus.QUEUED)
        if queue:
            refresh_id = refresh.pk
            transaction.on_commit(lambda: _queue(refresh_id), robust=True)
    return refresh


def _queue(refresh_id: int) -> None:
    from .tasks import analytics_refresh_task  # analytics.tasks imports this module

    analytics_refresh_task.delay(refresh_id)


def refresh_fail_stale() -> int:
    """A running refresh with no sign of life for ANALYTICS_REFRESH_STALE_SECONDS belongs to a
    dead worker whose task was lost: fail it so another can run."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.ANALYTICS_REFRESH_STALE_SECONDS)
    return AnalyticsRefresh.objects.filter(status=JobStatus.RUNNING,
                                           heartbeat_at__lt=cutoff).update(
        status=JobStatus.FAILED, finished_at=timezone.now(),
        error="No sign of life from the worker; start the refresh again.")


def _last_watermark() -> int:
    last = (AnalyticsRefresh.objects.filter(status=JobStatus.SUCCEEDED)
            .order_by("-finished_at").values_list("txn_watermark", flat=True).first())
    return last or 0


def _has_succeeded_once() -> bool:
    return AnalyticsRefresh.objects.filter(status=JobStatus.SUCCEEDED).exists()


def refresh_run(*, refresh_id: int, chunk_size: int | None = None) -> AnalyticsRefresh:
    """Run (or resume) the refresh. Returns early when it is already finished."""
    refresh = AnalyticsRefresh.objects.get(pk=refresh_id)
    if refresh.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        return refresh
    if refresh.status == JobStatus.RUNNING and AnalyticsRefresh.objects.filter(
            status=JobStatus.RUNNING).exclude(pk=refresh.pk).exists():
        return refresh
    if refresh.status == JobStatus.QUEUED:
        if AnalyticsRefresh.objects.filter(status=JobStatus.RUNNING).exists():
            # One runs now: this one waits for the next delivery (the running one's end
            # queues it again).
            return refresh
        now = timezone.now()
        AnalyticsRefresh.objects.filter(pk=refresh.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=now, heartbeat_at=now)
        refresh.refresh_from_db()
    chunk_size = chunk_size or settings.ANALYTICS_REFRESH_CHUNK
    started = time.monotonic()
    try:
        if refresh.kind == RefreshKind.FULL or not _has_succeeded_once():
            _run_full(refresh, chunk_size)
        else:
            _run_incremental(refresh, chunk_size)
    except Exception as exc:
        logger.exception("analytics refresh %s failed", refresh.pk)
        refresh.status, refresh.error = JobStatus.FAILED, str(exc)[:2000]
        refresh.finished_at = timezone.now()
        refresh.save(update_fields=["status", "error", "finished_at"])
        return refresh
    refresh.timings = {**refresh.timings, "total": round(time.monotonic() - started, 3)}
    refresh.status, refresh.finished_at = JobStatus.SUCCEEDED, timezone.now()
    refresh.as_of = timezone.localdate()
    refresh.progress_done = refresh.progress_total
    refresh.save(update_fields=["status", "finished_at", "as_of", "progress_done", "timings"])
    _queue_waiting()
    return refresh


def _queue_waiting() -> None:
    waiting = AnalyticsRefresh.objects.filter(status=JobStatus.QUEUED).values_list(
        "pk", flat=True).first()
    if waiting is not None:
        transaction.on_commit(lambda: _queue(waiting), robust=True)


def _save_progress(refresh: AnalyticsRefresh, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(refresh, name, value)
    refresh.heartbeat_at = timezone.now()
    refresh.save(update_fields=[*fields, "heartbeat_at"])


def _run_full(refresh: AnalyticsRefresh, chunk_size: int) -> None:
    if refresh.phase not in ("chunks", "aggregated"):
        with transaction.atomic():
            rollups.truncate_all()
            low, high = rollups.client_id_bounds()
            total = max(0, (high - low) // chunk_size + 1) if high else 0
            _save_progress(refresh, phase="chunks", next_client_id=low,
                           txn_watermark=rollups.max_id("clients_transaction"),
                           progress_total=total, progress_done=0, kind=RefreshKind.FULL)
    _low, high = rollups.client_id_bounds()
    if refresh.phase == "chunks":
        _run_chunks(refresh, chunk_size, high)
    with transaction.atomic():
        rollups.tune()
        rollups.timed(refresh.timings, "aggregate", rollups.aggregate_all)
        _save_progress(refresh, phase="aggregated", timings=refresh.timings)
    rollups.timed(refresh.timings, "analyze", rollups.analyze)


def _run_chunks(refresh: AnalyticsRefresh, chunk_size: int, high: int) -> None:
    while refresh.next_client_id <= high:
        low = refresh.next_client_id
        with transaction.atomic():
            rollups.refresh_scope(rollups.Scope(low, low + chunk_size - 1), fresh=True,
                                  timings=refresh.timings)
            _save_progress(refresh, next_client_id=low + chunk_size, timings=refresh.timings,
                           progress_done=refresh.progress_done + 1,
                           progress_total=max(refresh.progress_total,
                                              refresh.progress_done + 1))


def _run_incremental(refresh: AnalyticsRefresh, chunk_size: int) -> None:
    after = _last_watermark()
    upto = rollups.max_id("clients_transaction")
    started = time.monotonic()
    with transaction.atomic():
        ids = rollups.mark_touched(txn_after=after, txn_upto=upto)
        refresh.timings = {**refresh.timings,
                           "find_touched": round(time.monotonic() - started, 3)}
        _save_progress(refresh, phase="touched", txn_watermark=upto, touched=len(ids),
                       timings=refresh.timings,
                       progress_total=(len(ids) + chunk_size - 1) // chunk_size + 1,
                       progress_done=0)
    _refresh_ids(refresh, ids, chunk_size)
    with transaction.atomic():
        rollups.tune()
        rollups.timed(refresh.timings, "segments", rollups.sync_memberships)
        _save_progress(refresh, progress_done=refresh.progress_done + 1,
                       timings=refresh.timings)


def _refresh_ids(refresh: AnalyticsRefresh, ids: list[int], chunk_size: int) -> None:
    for start in range(0, len(ids), chunk_size):
        part = ids[start:start + chunk_size]
        with transaction.atomic():
            rollups.refresh_scope(rollups.Scope(part[0], part[-1], touched=True),
                                  timings=refresh.timings)
            _save_progress(refresh, progress_done=refresh.progress_done + 1,
                           timings=refresh.timings)


def refresh_clients(*, client_ids) -> int:
    """Bring the rows of the given clients up to date now, in this process (e.g. after their
    transactions were removed, which the incremental refresh's watermark cannot see)."""
    with transaction.atomic():
        ids = rollups.mark_clients(client_ids)
        if ids:
            rollups.refresh_scope(rollups.Scope(ids[0], ids[-1], touched=True))
    return len(ids)


def refresh_after_event(**kwargs: Any) -> None:
    """Receiver of scoring_run_succeeded, import_succeeded and segments' members_changed:
    queue one refresh (or find the one already waiting). Never lets the sender's work fail."""
    try:
        refresh_start(trigger=kwargs.get("trigger", "event"))
    except Exception:
        logger.exception("could not queue the analytics refresh")
