"""Writes of the outreach app: trading-calendar corrections and RM tasks (created by hand, from
a call's "follow up later", or by newsletters' replies, comments and low ratings)."""

from __future__ import annotations

import datetime as dt
from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.models import Client, Interaction
from core.errors import ApplicationError
from core.models import AuditAction
from core.services import audit_record

from .models import RMTask, TaskSource, TaskStatus, TradingDayOverride


def trading_day_override_set(*, day: dt.date, is_trading_day: bool, note: str = "",
                             actor=None) -> TradingDayOverride:
    """Correct the trading calendar for one day (audited as a settings change)."""
    with transaction.atomic():
        row, _created = TradingDayOverride.objects.update_or_create(
            day=day, defaults={"is_trading_day": is_trading_day, "note": note,
                               "changed_by": actor})
        audit_record(action=AuditAction.SETTINGS_CHANGED, actor=actor,
                     object_type="trading_day", object_id=day.isoformat(),
                     detail={"trading_day": is_trading_day, "note": note})
    return row


def trading_day_override_delete(*, override: TradingDayOverride, actor=None) -> None:
    """Back to the published calendar for that day (audited)."""
    with transaction.atomic():
        day = override.day
        override.delete()
        audit_record(action=AuditAction.SETTINGS_CHANGED, actor=actor,
                     object_type="trading_day", object_id=day.isoformat(),
                     detail={"removed": True})


# --- RM tasks --------------------------------------------------------------------------

ORIGIN_INTERACTION = "clients.interaction"


def task_create(*, assignee, title: str, client: Client | None = None, due_on: date | None = None,
                detail: str = "", source: str = TaskSource.MANUAL, origin_type: str = "",
                origin_id: str = "") -> RMTask:
    """A new open task for `assignee`. The caller has already scoped `client` to what the
    author may see (clients.selectors.client_get). With an origin, a retry returns the task
    the first call made instead of a second one."""
    title = (title or "").strip()
    if not title:
        raise ApplicationError(_("A task needs a title."), fields={"title": ["required"]})
    if origin_type:
        existing = RMTask.objects.filter(origin_type=origin_type, origin_id=origin_id).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            return RMTask.objects.create(
                assignee=assignee, client=client, source=source, title=title[:200],
                detail=(detail or "").strip(), due_on=due_on, origin_type=origin_type,
                origin_id=origin_id)
    except IntegrityError:
        if not origin_type:
            raise
        return RMTask.objects.get(origin_type=origin_type, origin_id=origin_id)


@transaction.atomic
def task_complete(*, task: RMTask) -> RMTask:
    """Mark an open task done (a done or cancelled one stays as it is)."""
    task = RMTask.objects.select_for_update().get(pk=task.pk)
    if task.status == TaskStatus.OPEN:
        task.status = TaskStatus.DONE
        task.done_at = timezone.now()
        task.save(update_fields=["status", "done_at", "updated_at"])
    return task


@transaction.atomic
def task_set_due(*, task: RMTask, due_on: date | None) -> RMTask:
    """Move an open task's due date (None: no date)."""
    task = RMTask.objects.select_for_update().get(pk=task.pk)
    if task.status != TaskStatus.OPEN:
        raise ApplicationError(_("Only an open task can get a new due date."),
                               fields={"due_on": ["closed"]})
    task.due_on = due_on
    task.save(update_fields=["due_on", "updated_at"])
    return task


def task_from_follow_up(sender, *, interaction: Interaction, due_on: date, **kwargs) -> RMTask:
    """clients.signals.follow_up_requested: "follow up later" on a call puts a task, due that
    day, on the list of the RM who logged it."""
    kind = interaction.get_kind_display()
    return task_create(
        assignee=interaction.author, client=interaction.client, due_on=due_on,
        title=_("Follow up with %(name)s (%(kind)s)") % {"name": interaction.client.name,
                                                         "kind": kind},
        detail=interaction.note, source=TaskSource.FOLLOW_UP,
        origin_type=ORIGIN_INTERACTION, origin_id=str(interaction.pk))
