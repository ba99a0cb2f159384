"""Outbox numbers of one edition."""

from django.db.models import Count, Q

from ..models import DeliveryStatus, Edition, ExclusionReason, Feedback, Suppression


def edition_delivery_stats(edition: Edition) -> dict:
    """Outbox counts of one edition (the selector for pages and the API builds on these)."""
    rows = edition.deliveries
    by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
    excluded = dict(rows.filter(status=DeliveryStatus.EXCLUDED).values_list("exclusion_reason")
                    .annotate(n=Count("id")).order_by())
    agg = rows.aggregate(audience=Count("id"),
                         opened=Count("id", filter=Q(opened_at__isnull=False)),
                         clicked=Count("id", filter=Q(clicked_at__isnull=False)))
    feedback = Feedback.objects.filter(delivery__in=rows)
    return {
        "audience": agg["audience"],
        "excluded": sum(excluded.values()),
        "excluded_by_reason": {r: excluded.get(r, 0) for r in ExclusionReason.values},
        "pending": by_status.get(DeliveryStatus.PENDING, 0) + by_status.get(
            DeliveryStatus.SENDING, 0) + by_status.get(DeliveryStatus.RETRY, 0),
        "sent": by_status.get(DeliveryStatus.SENT, 0),
        "failed": by_status.get(DeliveryStatus.FAILED, 0),
        "cancelled": by_status.get(DeliveryStatus.CANCELLED, 0),
        "opened": agg["opened"],
        "clicked": agg["clicked"],
        "rated": feedback.filter(rating__isnull=False).values("delivery").distinct().count(),
        "comments": feedback.exclude(comment="").count(),
        "unsubscribes": Suppression.objects.filter(
            reason=Suppression.UNSUBSCRIBED, source_delivery__in=rows).count(),
    }
