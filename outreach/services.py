"""Writes of the outreach app: trading-calendar corrections, RM tasks (created by hand, from a
call's "follow up later", by newsletters' replies, comments and low ratings, by campaign call
steps), the contact policy and the contact ledger."""

from __future__ import annotations

import datetime as dt
from datetime import date

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.models import Client, Interaction
from clients.services import client_do_not_call
from core.errors import ApplicationError
from core.models import AuditAction
from core.services import audit_record

from .models import (
    ALL_CHANNELS,
    Channel,
    Contact,
    ContactPolicy,
    ContactStatus,
    Delivery,
    DeliveryStatus,
    OptOut,
    RMTask,
    TaskOutcome,
    TaskSource,
    TaskStatus,
    TradingDayOverride,
)
from .selectors import contact_policy_get, reassign_choices


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


def task_set_due(*, task: RMTask, due_on: date | None) -> RMTask:
    """Move an open task's due date (None: no date)."""
    return task_update(task=task, due_on=due_on)


NOTE_MAX = 2000
_UNSET = object()


@transaction.atomic
def task_update(*, task: RMTask, actor=None, status=_UNSET, outcome=_UNSET, note=_UNSET,
                due_on=_UNSET) -> RMTask:
    """What the RM did with a task, in one write (the call list, PATCH /api/v1/tasks/{id}/):
    its status (open, done, cancelled), the outcome code with a note, the due date of an open
    task. "Do not call" also turns the client's phone consent off everywhere
    (clients.services.client_do_not_call). Nothing is written unless every value is valid."""
    task = (RMTask.objects.select_for_update(of=("self",)).select_related("client")
            .get(pk=task.pk))
    errors: dict[str, list[str]] = {}
    if status is not _UNSET and status not in TaskStatus.values:
        errors["status"] = [_("One of: %(values)s.") % {"values": ", ".join(TaskStatus.values)}]
    if outcome is not _UNSET and outcome not in ("", *TaskOutcome.values):
        errors["outcome"] = [_("One of: %(values)s.") % {"values": ", ".join(TaskOutcome.values)}]
    if note is not _UNSET and len(note or "") > NOTE_MAX:
        errors["note"] = [_("At most %(n)s characters.") % {"n": NOTE_MAX}]
    if due_on is not _UNSET and (status if status is not _UNSET else task.status) != \
            TaskStatus.OPEN:
        errors["due_on"] = [_("Only an open task can get a new due date.")]
    if errors:
        only = next(iter(errors.values()))[0] if len(errors) == 1 else None
        raise ApplicationError(only or _("The task was not changed: see the fields."),
                               fields=errors)
    now = timezone.now()
    fields = ["updated_at"]
    if status is not _UNSET and status != task.status:
        task.status = status
        task.done_at = now if status == TaskStatus.DONE else None
        fields += ["status", "done_at"]
    if outcome is not _UNSET:
        task.outcome, task.outcome_at = outcome, (now if outcome else None)
        fields += ["outcome", "outcome_at"]
    if note is not _UNSET:
        task.outcome_note = (note or "").strip()
        fields.append("outcome_note")
    if due_on is not _UNSET:
        task.due_on = due_on
        fields.append("due_on")
    task.save(update_fields=fields)
    if outcome is not _UNSET:
        contact_from_outcome(task=task)
    if outcome == TaskOutcome.DO_NOT_CALL and task.client_id:
        client_do_not_call(client=task.client, actor=actor, source="do_not_call")
    return task


@transaction.atomic
def task_reassign(*, task: RMTask, assignee, actor) -> RMTask:
    """A branch manager hands an open task to another RM of their branch (ops and admins: to
    any RM): workload and leave. Audited; the new RM sees it on their list at once."""
    allowed = {u.pk for u in reassign_choices(user=actor)}
    if assignee is None or assignee.pk not in allowed:
        raise ApplicationError(_("Choose an RM you may give this task to."),
                               fields={"assignee": [_("not one of your team's RMs")]},
                               status=400)
    task = RMTask.objects.select_for_update().get(pk=task.pk)
    if task.status != TaskStatus.OPEN:
        raise ApplicationError(_("Only an open task can be handed over."), status=409)
    before = task.assignee_id
    task.assignee = assignee
    task.save(update_fields=["assignee", "updated_at"])
    audit_record(action=AuditAction.SETTINGS_CHANGED, actor=actor, object_type="task",
                 object_id=str(task.pk), detail={"reassigned_from": before,
                                                 "reassigned_to": assignee.pk})
    return task


ORIGIN_TASK = "outreach.task"


def task_follow_up_create(*, task: RMTask, actor, due_on: date, note: str = "") -> RMTask:
    """The next follow-up the RM sets while logging a task's outcome: a new open task for the
    same client and the same RM, due `due_on`, marked as the RM's own follow-up. Only the RM the
    task is assigned to may set it (a branch manager hands tasks over instead). Once per task
    and date, so a repeated post makes no second task."""
    if actor is None or task.assignee_id is None or task.assignee_id != actor.pk:
        raise ApplicationError(_("Only the RM the task is assigned to can set its next "
                                 "follow-up."), code="forbidden", status=403)
    if task.client_id is None:
        raise ApplicationError(_("A follow-up needs a client."),
                               fields={"follow_up_on": [_("this task has no client")]})
    if due_on < timezone.localdate():
        raise ApplicationError(_("The next follow-up cannot be in the past."),
                               fields={"follow_up_on": [_("a date from today on")]})
    client = task.client
    return task_create(
        assignee=task.assignee, client=client, due_on=due_on,
        title=_("Follow up with %(name)s: %(title)s") % {"name": client.name,
                                                          "title": task.title},
        detail=note, source=TaskSource.FOLLOW_UP, origin_type=ORIGIN_TASK,
        origin_id=f"{task.pk}@{due_on.isoformat()}")


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


# --- contact policy ----------------------------------------------------------------------

MAX_WINDOW_DAYS = 90
MAX_CONTACTS = 100


def _time(value, name: str, errors: dict) -> str | None:
    try:
        parsed = dt.time.fromisoformat(str(value))
    except (TypeError, ValueError):
        errors[name] = [_("A time written HH:MM, e.g. 21:00.")]
        return None
    if parsed.second or parsed.microsecond or parsed.tzinfo:
        errors[name] = [_("A time written HH:MM, e.g. 21:00.")]
        return None
    return parsed.strftime("%H:%M")


def _channels(value, name: str, errors: dict, *, with_all: bool = False) -> list[str]:
    allowed = [*([ALL_CHANNELS] if with_all else []), *Channel.values]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) \
            or any(v not in allowed for v in value):
        errors[name] = [_("A list of: %(values)s.") % {"values": ", ".join(allowed)}]
        return []
    return sorted(set(value), key=allowed.index)


def contact_policy_validate(data) -> dict:
    """The policy `data` ({"caps": [...], "quiet_hours": {...}}) checked and normalised, or an
    ApplicationError naming every wrong field (caps[1].window_days, quiet_hours.start...)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(data, dict):
        raise ApplicationError(_("The policy must be a JSON object."),
                               fields={"policy": [_("not an object")]})
    unknown = sorted(set(data) - {"caps", "quiet_hours"})
    if unknown:
        errors[unknown[0]] = [_("Unknown field.")]
    caps, seen = [], set()
    raw_caps = data.get("caps")
    if not isinstance(raw_caps, list):
        errors["caps"] = [_("A list of caps.")]
        raw_caps = []
    allowed = [ALL_CHANNELS, *Channel.values]
    for i, cap in enumerate(raw_caps):
        where = f"caps[{i}]"
        if not isinstance(cap, dict) or set(cap) != {"channel", "max_contacts", "window_days"}:
            errors[where] = [_("An object with channel, max_contacts and window_days.")]
            continue
        if not isinstance(cap["channel"], str) or cap["channel"] not in allowed:
            errors[f"{where}.channel"] = [_("One of: %(values)s.") % {"values": ", ".join(allowed)}]
        elif cap["channel"] in seen:
            errors[f"{where}.channel"] = [_("Each channel has at most one cap.")]
        else:
            seen.add(cap["channel"])
        for key, top in (("max_contacts", MAX_CONTACTS), ("window_days", MAX_WINDOW_DAYS)):
            value = cap[key]
            low = 0 if key == "max_contacts" else 1
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= top:
                errors[f"{where}.{key}"] = [_("A whole number from %(low)s to %(high)s.")
                                            % {"low": low, "high": top}]
        caps.append({"channel": cap["channel"], "max_contacts": cap["max_contacts"],
                     "window_days": cap["window_days"]})
    quiet = data.get("quiet_hours")
    if not isinstance(quiet, dict) or not {"start", "end", "channels"} <= set(quiet) \
            or set(quiet) - {"start", "end", "channels", "timezone"}:
        errors["quiet_hours"] = [_("An object with start, end and channels.")]
        quiet_hours = {}
    else:
        quiet_hours = {"start": _time(quiet["start"], "quiet_hours.start", errors),
                       "end": _time(quiet["end"], "quiet_hours.end", errors),
                       "channels": _channels(quiet["channels"], "quiet_hours.channels", errors)}
    if errors:
        raise ApplicationError(_("The contact policy was not saved: see the fields."),
                               fields=errors)
    return {"caps": caps, "quiet_hours": quiet_hours}


@transaction.atomic
def contact_policy_set(*, data, actor=None) -> dict:
    """Replace the contact policy (validated whole; audited with what it was and is)."""
    policy = contact_policy_validate(data)
    before = contact_policy_get()
    ContactPolicy.objects.update_or_create(pk=1, defaults={**policy, "updated_by": actor})
    audit_record(action=AuditAction.SETTINGS_CHANGED, actor=actor,
                 object_type="contact_policy", object_id="1",
                 detail={"before": {"caps": before["caps"],
                                    "quiet_hours": {k: v for k, v in before["quiet_hours"].items()
                                                    if k != "timezone"}},
                         "after": policy})
    return contact_policy_get()


# --- the contact ledger ------------------------------------------------------------------

ORIGIN_CONTACT = "outreach.contact"
# What a call's outcome says about the contact it was for.
OUTCOME_STATUS = {
    TaskOutcome.NO_ANSWER: ContactStatus.SENT,
    TaskOutcome.WRONG_NUMBER: ContactStatus.FAILED,
    TaskOutcome.REACHED: ContactStatus.DELIVERED,
    TaskOutcome.INTERESTED: ContactStatus.RESPONDED,
    TaskOutcome.NOT_INTERESTED: ContactStatus.RESPONDED,
    TaskOutcome.BOUGHT: ContactStatus.RESPONDED,
    TaskOutcome.DO_NOT_CALL: ContactStatus.RESPONDED,
}


def contacts_plan(*, source: str, source_id: int, step: int, channel: str, priority: int,
                  exempt: bool, planned_on: date, content_version: int, members_sql: str,
                  params: list, status: str = ContactStatus.PLANNED) -> int:
    """Reserve one contact (PLANNED, or QUEUED when it goes at once) per row of `members_sql`
    (columns client_id, variant), set-based. The caller holds outreach.caps.caps_lock and has
    checked the caps; a client who already has this step's contact keeps it (a re-run reserves
    nothing twice)."""
    table = connection.ops.quote_name(Contact._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (client_id, source, source_id, step, channel, variant, "
            f"content_version, priority, exempt, status, planned_on, provider_id, error, "
            f"title, body, attempts, created_at) SELECT m.client_id, %s, %s, %s, %s, "
            f"m.variant, %s, %s, %s, %s, %s, '', '', '', '', 0, %s FROM ({members_sql}) AS m "
            f"WHERE true "
            f"ON CONFLICT (source, source_id, step, client_id) DO NOTHING",
            [source, source_id, step, channel, content_version, priority, exempt,
             status, planned_on, timezone.now(), *params])
        return cursor.rowcount


def contacts_cancel(*, source: str, source_id: int) -> int:
    """A cancelled campaign or newsletter frees the room its contacts that have not gone out
    held under the caps; the calls among them leave the RMs' lists, their emails leave the
    outbox (a message on the wire at that moment stays queued until it is settled as sent)."""
    from .email.outbox import cancel_open, ledger_settle

    cancel_open(source, source_id, include_sending=False)
    ledger_settle(source, source_id)
    in_flight = Delivery.objects.filter(
        source=OuterRef("source"), source_id=OuterRef("source_id"), step=OuterRef("step"),
        client_id=OuterRef("client_id"), status=DeliveryStatus.SENDING)
    waiting = Contact.objects.filter(source=source, source_id=source_id,
                                     status__in=(ContactStatus.PLANNED, ContactStatus.QUEUED)
                                     ).exclude(Exists(in_flight))
    RMTask.objects.filter(origin_type=ORIGIN_CONTACT, status=TaskStatus.OPEN,
                          origin_id__in=[str(pk) for pk in waiting.values_list("pk", flat=True)]
                          ).update(status=TaskStatus.CANCELLED, updated_at=timezone.now())
    return waiting.update(status=ContactStatus.CANCELLED)


def contact_from_outcome(*, task: RMTask) -> None:
    """A call task made for a ledger contact: its outcome moves the contact."""
    if task.origin_type != ORIGIN_CONTACT or not task.outcome:
        return
    status = OUTCOME_STATUS.get(task.outcome)
    if status is not None:
        Contact.objects.filter(pk=int(task.origin_id)).update(status=status,
                                                              at=task.outcome_at)


def email_opt_out(*, delivery, one_click: bool = False, request=None) -> bool:
    """The client used the unsubscribe link of a campaign email: no marketing email from any
    campaign from now on (outreach.OptOut, channel email; newsletters keep their own
    per-publication unsubscribes). Audited; True if it is new."""
    with transaction.atomic():
        _row, created = OptOut.objects.get_or_create(
            client_id=delivery.client_id, channel=Channel.EMAIL,
            defaults={"source": f"{delivery.source}:{delivery.source_id}"})
        if created:
            audit_record(action=AuditAction.CONSENT_CHANGED, object_type="client",
                         object_id=delivery.client.client_no, request=request,
                         detail={"opt_out": Channel.EMAIL, "source": delivery.source,
                                 "source_id": delivery.source_id, "step": delivery.step,
                                 "one_click": one_click})
    return created
