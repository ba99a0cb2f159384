"""Reads for newsletters: publications, editions, their deliveries and statistics."""

from __future__ import annotations

from django.db.models import Avg, Count, Q, QuerySet

from clients.selectors import client_queryset_for

from .models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionEvent,
    ExclusionReason,
    Feedback,
    Publication,
    Suppression,
    with_editions,
)

RATINGS = range(1, 6)  # the 1-5 scale of the "was this useful?" links


def publication_list() -> QuerySet[Publication]:
    return Publication.objects.select_related("audience").order_by("name")


def edition_list(*, publication: Publication | None = None,
                 status: str = "") -> QuerySet[Edition]:
    qs = Edition.objects.select_related("publication", "author", "approved_by")
    if publication is not None:
        qs = qs.filter(publication=publication)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def edition_get(*, pk: int) -> Edition | None:
    return (Edition.objects.select_related("publication__audience", "author", "approved_by")
            .prefetch_related("sections").filter(pk=pk).first())


def edition_events(*, edition: Edition) -> QuerySet[EditionEvent]:
    return EditionEvent.objects.filter(edition=edition).select_related("actor")


def edition_deliveries(*, edition: Edition, user) -> QuerySet[Delivery]:
    """The edition's outbox rows for the clients `user` may see."""
    return (edition.deliveries.filter(client__in=client_queryset_for(user))
            .select_related("client").order_by("id"))


def edition_stats(edition: Edition) -> dict:
    """Audience, excluded by reason, sent, failed, opened, clicked, rated, comments,
    unsubscribes: one GROUP BY over the outbox plus three counts."""
    rows = (edition.deliveries
            .values("status", "exclusion_reason")
            .annotate(n=Count("id"),
                      opened=Count("id", filter=Q(opened_at__isnull=False)),
                      clicked=Count("id", filter=Q(clicked_at__isnull=False)))
            .order_by())
    by_status = dict.fromkeys(DeliveryStatus.values, 0)
    excluded = dict.fromkeys(ExclusionReason.values, 0)
    audience = opened = clicked = 0
    for row in rows:
        audience += row["n"]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["status"] == DeliveryStatus.EXCLUDED:
            reason = row["exclusion_reason"] or "other"
            excluded[reason] = excluded.get(reason, 0) + row["n"]
        opened += row["opened"]
        clicked += row["clicked"]
    feedback = Feedback.objects.filter(delivery__in=edition.deliveries).aggregate(
        rated=Count("delivery", filter=Q(rating__isnull=False), distinct=True),
        average_rating=Avg("rating"),
        comments=Count("id", filter=~Q(comment="")),
        **{f"rating_{n}": Count("id", filter=Q(rating=n)) for n in RATINGS},
    )
    unsubscribes = Suppression.objects.filter(source_delivery__in=edition.deliveries,
                                              reason=Suppression.UNSUBSCRIBED).count()
    average = feedback["average_rating"]
    return {
        "audience": audience,
        "recipients": audience - by_status[DeliveryStatus.EXCLUDED],
        "excluded_total": by_status[DeliveryStatus.EXCLUDED],
        "excluded": excluded,
        "by_status": by_status,
        "sent": by_status[DeliveryStatus.SENT],
        "failed": by_status[DeliveryStatus.FAILED],
        "pending": by_status[DeliveryStatus.PENDING] + by_status[DeliveryStatus.RETRY]
        + by_status[DeliveryStatus.SENDING],
        "opened": opened,
        "clicked": clicked,
        "rated": feedback["rated"],
        "average_rating": round(float(average), 2) if average is not None else None,
        "ratings": {str(n): feedback[f"rating_{n}"] for n in RATINGS},
        "comments": feedback["comments"],
        "unsubscribes": unsubscribes,
    }


def client_email_suppressions(*, client) -> list[Suppression]:
    """Every suppression of the client's email, in force or lifted, newest first, with what the
    client 360 card names: the publication, the edition whose link was used, who lifted it."""
    rows = list(Suppression.objects.filter(client=client)
                .select_related("publication", "source_delivery", "lifted_by")
                .order_by("-created_at", "-id"))
    with_editions(row.source_delivery for row in rows)
    return rows
