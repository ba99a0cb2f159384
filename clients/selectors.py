"""Reads of client data. Every query of clients starts from `client_queryset_for`."""

from django.db.models import QuerySet
from django.http import Http404

from core.access import client_scope_q
from core.models import AuditAction

from .models import Client, Holding, Interaction, Transaction


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
