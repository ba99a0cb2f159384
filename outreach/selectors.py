"""Reads of the outreach app: whose RM tasks a user sees; the contact policy."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from clients.models import Holding
from clients.scoring.models import CurrentScore, Tier
from core.access import ALL_CLIENTS_ROLES, role_of
from core.models import AuditAction, Role, User
from core.services import audit_record
from segments.models import SegmentKind, SegmentMembership

from .models import ALL_CHANNELS, Channel, Contact, ContactPolicy, RMTask, TaskStatus


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


def call_context(*, tasks) -> dict[int, dict]:
    """What an RM wants beside each call on the list, for the clients of `tasks` (one page):
    value tier and AUM, personas, the two largest holdings and the last contact made -- a few
    queries for the page, none per row."""
    clients = {t.client_id: t.client for t in tasks if t.client_id}
    if not clients:
        return {}
    ids = list(clients)
    tiers = dict(CurrentScore.objects.filter(client_id__in=ids).values_list("client_id", "tier"))
    personas: dict[int, list[str]] = {}
    for membership in (SegmentMembership.objects.filter(client_id__in=ids,
                                                        segment__kind=SegmentKind.PERSONA)
                       .select_related("segment").order_by("segment__code")):
        personas.setdefault(membership.client_id, []).append(membership.segment.name)
    holdings: dict[int, list[str]] = {}
    for holding in (Holding.objects.filter(client_id__in=ids).select_related("product")
                    .order_by("client_id", "-market_value")):
        names = holdings.setdefault(holding.client_id, [])
        if len(names) < 2:
            names.append(holding.product.name)
    last: dict[int, Contact] = {}
    for contact in (Contact.objects.filter(client_id__in=ids, at__isnull=False)
                    .order_by("client_id", "-at")):
        last.setdefault(contact.client_id, contact)
    labels = dict(Tier.choices)
    return {cid: {"tier": labels.get(tiers.get(cid, ""), ""), "aum": client.aum,
                  "personas": personas.get(cid, []), "holdings": holdings.get(cid, []),
                  "last_contact": last.get(cid)} for cid, client in clients.items()}


def reassign_choices(*, user) -> list[User]:
    """The RMs a branch manager may hand calls to: their branch's; ops and admins: every RM."""
    qs = User.objects.filter(groups__name=Role.RM, is_active=True).order_by("username")
    role = role_of(user)
    if role == Role.BRANCH_MANAGER:
        return list(qs.filter(branch_id=user.branch_id)) if user.branch_id else []
    return list(qs) if role in ALL_CLIENTS_ROLES else []
