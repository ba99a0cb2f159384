"""Reads of the outreach app: whose RM tasks a user sees; the contact policy."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from core.access import ALL_CLIENTS_ROLES, role_of
from core.models import AuditAction, Role
from core.services import audit_record

from .models import ALL_CHANNELS, Channel, ContactPolicy, RMTask, TaskStatus


def task_queryset_for(user) -> QuerySet[RMTask]:
    """The tasks `user` may see and close (the one scoping rule of this page)."""
    role = role_of(user)
    qs = RMTask.objects.all()
    if role in ALL_CLIENTS_ROLES:
        return qs
    if role == Role.BRANCH_MANAGER and user.branch_id:
        return qs.filter(Q(client__branch_id=user.branch_id)
                         | Q(client__isnull=True, assignee__branch_id=user.branch_id))
    if role == Role.RM:
        return qs.filter(assignee=user)
    return qs.none()


def task_get(*, user, pk: int) -> RMTask:
    """The task, or Http404 (audited) when it does not exist or `user` may not see it: the
    pages and the API give "not there" and "not yours" the same answer."""
    task = task_queryset_for(user).select_related("client", "assignee").filter(pk=pk).first()
    if task is None:
        audit_record(action=AuditAction.ACCESS_DENIED, actor=user, object_type="task",
                     object_id=str(pk))
        raise Http404("No such task.")
    return task


def open_tasks_for_client(*, client, user) -> list[RMTask]:
    """The client 360 card: the client's open follow-ups `user` may see."""
    return list(task_queryset_for(user).filter(client=client, status=TaskStatus.OPEN)
                .select_related("assignee").order_by("-created_at")[:20])


TIMEZONE = "Asia/Shanghai"
DEFAULT_POLICY = {
    "caps": [{"channel": ALL_CHANNELS, "max_contacts": 2, "window_days": 7},
             {"channel": Channel.SMS.value, "max_contacts": 1, "window_days": 7},
             {"channel": Channel.PHONE.value, "max_contacts": 1, "window_days": 14}],
    "quiet_hours": {"start": "21:00", "end": "08:30",
                    "channels": [Channel.SMS.value, Channel.PUSH.value, Channel.PHONE.value]},
}


def contact_policy_get() -> dict:
    """The policy in force: the saved one, else the domain's defaults (2 contacts a week in
    all, 1 SMS a week, 1 RM call a fortnight; no SMS, push or call 21:00-08:30)."""
    row = ContactPolicy.objects.filter(pk=1).first()
    policy = ({"caps": row.caps, "quiet_hours": row.quiet_hours} if row is not None
              else DEFAULT_POLICY)
    return {"caps": [dict(c) for c in policy["caps"]],
            "quiet_hours": {**policy["quiet_hours"], "timezone": TIMEZONE},
            "updated_at": row.updated_at.isoformat() if row is not None else None}
