"""Reads of client data. Every query of clients starts from `client_queryset_for`."""

import re
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from core.access import client_scope_q
from core.models import AuditAction

from .models import Client, ClientStatus, Holding, Interaction, Transaction, service_level_q

_DIGITS = re.compile(r"^\d+$")


def client_queryset_for(user) -> QuerySet[Client]:
    """All clients `user` may see: the one access-scoping selector (DESIGN.md)."""
    return Client.objects.filter(client_scope_q(user))


def client_get(*, user, client_no: str) -> Client:
    """The client, or Http404 (audited) when it does not exist or `user` may not see it."""
    client = (client_queryset_for(user).select_related("branch", "rm")
              .filter(client_no=client_no).first())
    if client is None:
        from core.services import audit_record

        audit_record(action=AuditAction.ACCESS_DENIED, actor=user, object_type="client",
                     object_id=client_no)
        raise Http404("No such client.")
    return client


def holdings_for_client(*, client: Client) -> QuerySet[Holding]:
    """The client's holdings on the latest as-of date."""
    latest = (Holding.objects.filter(client=client).order_by("-as_of")
              .values_list("as_of", flat=True).first())
    return (Holding.objects.filter(client=client, as_of=latest).select_related("product")
            .order_by("-market_value"))


def transactions_for_client(*, client: Client) -> QuerySet[Transaction]:
    return (Transaction.objects.filter(client=client).select_related("product")
            .order_by("-traded_at", "-id"))


def interactions_for_client(*, client: Client) -> QuerySet[Interaction]:
    return Interaction.objects.filter(client=client).select_related("author")


def client_search(qs: QuerySet[Client], q: str) -> QuerySet[Client]:
    """Search by name (prefix), client number (prefix) or the last 4 digits of the phone.

    Every branch of the OR is an indexed lookup, so it stays fast at a million clients.
    """
    q = (q or "").strip()
    if not q:
        return qs
    cond = Q(client_no__startswith=q) | Q(name__startswith=q)
    if _DIGITS.match(q) and len(q) == 4:
        cond |= Q(phone_tail=q)
    elif _DIGITS.match(q) and len(q) >= 7:
        cond |= Q(phone_tail=q[-4:], phone__endswith=q)
    return qs.filter(cond)


def client_filter(qs: QuerySet[Client], *, risk_level: str = "", service_level: str = "",
                  status: str = "", assessment_expired: bool | None = None,
                  rm_id: int | None = None, branch_id: int | None = None,
                  tier: str = "", segment: str = "") -> QuerySet[Client]:
    """The list filters shared by the client pages and the API.

    `tier` is the value tier of the client's current score (CurrentScore): a client never
    scored has no tier and matches no tier filter. `segment` is a segment code: members of
    its materialised membership (EXISTS, so it never multiplies rows; an unknown code matches
    nobody).
    """
    today = timezone.localdate()
    if risk_level:
        qs = qs.filter(risk_level=risk_level)
    if service_level:
        qs = qs.filter(service_level_q(service_level))
    if status == "dormant_derived":
        cutoff = today - timedelta(days=settings.DORMANT_AFTER_DAYS)
        qs = qs.filter(Q(status=ClientStatus.DORMANT) | (Q(status=ClientStatus.ACTIVE) & (
            Q(last_purchase_on__lt=cutoff)
            | Q(last_purchase_on__isnull=True, opened_on__lt=cutoff))))
    elif status:
        qs = qs.filter(status=status)
    if assessment_expired is True:
        qs = qs.filter(Q(risk_expires_on__lt=today) | Q(risk_expires_on__isnull=True))
    elif assessment_expired is False:
        qs = qs.filter(risk_expires_on__gte=today)
    if rm_id:
        qs = qs.filter(rm_id=rm_id)
    if branch_id:
        qs = qs.filter(branch_id=branch_id)
    if tier:
        qs = qs.filter(current_score__tier=tier)
    if segment:
        from segments.models import SegmentMembership

        qs = qs.filter(Exists(SegmentMembership.objects.filter(
            client=OuterRef("pk"), segment__code=segment)))
    return qs

