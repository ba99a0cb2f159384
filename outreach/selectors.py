"""Reads of the outreach app: whose RM tasks a user sees."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from core.access import ALL_CLIENTS_ROLES, role_of
from core.models import Role

from .models import RMTask, TaskStatus


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


def open_tasks_for_client(*, client, user) -> list[RMTask]:
    """The client 360 card: the client's open follow-ups `user` may see."""
    return list(task_queryset_for(user).filter(client=client, status=TaskStatus.OPEN)
                .select_related("assignee").order_by("-created_at")[:20])
