"""Reads of segments. Member lists start from `client_queryset_for` (scoped to the user)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from clients.models import Client
from clients.selectors import client_queryset_for

from .models import MembershipChange, Segment, SegmentMembership, SegmentRefresh


def segment_list(*, kind: str | None = None, active_only: bool = False) -> QuerySet[Segment]:
    qs = Segment.objects.all()
    if kind:
        qs = qs.filter(kind=kind)
    if active_only:
        qs = qs.filter(is_active=True)
    return qs.order_by("kind", "code")


def segment_get(*, code: str) -> Segment:
    segment = Segment.objects.filter(code=code).first()
    if segment is None:
        raise Http404("No such segment.")
    return segment


def segment_members(*, segment: Segment, user) -> QuerySet[Client]:
    """The segment's clients that `user` may see (an RM: their own book only)."""
    member = SegmentMembership.objects.filter(segment=segment, client=OuterRef("pk"))
    return client_queryset_for(user).filter(Exists(member))


def segment_codes_for_client(*, client: Client) -> list[str]:
    return list(SegmentMembership.objects.filter(client=client, segment__is_active=True)
                .order_by("segment__kind", "segment__code")
                .values_list("segment__code", flat=True))


def segments_for_client(*, client: Client) -> QuerySet[Segment]:
    """The active segments a client belongs to (personas carry their playbook)."""
    return Segment.objects.filter(is_active=True, memberships__client=client).order_by(
        "kind", "code")


def segment_refresh_get(*, refresh_id: int) -> SegmentRefresh:
    refresh = SegmentRefresh.objects.select_related("segment", "created_by").filter(
        pk=refresh_id).first()
    if refresh is None:
        raise Http404("No such refresh.")
    return refresh


def segment_refreshes(*, segment: Segment) -> QuerySet[SegmentRefresh]:
    """Newest first: the size-over-time history is its succeeded rows."""
    return SegmentRefresh.objects.filter(segment=segment).select_related("created_by")


def segment_refresh_latest(*, segment: Segment) -> SegmentRefresh | None:
    return segment_refreshes(segment=segment).first()


def segment_size_history(*, segment: Segment, limit: int = 90) -> list[tuple]:
    """(finished_at, size) of the last `limit` succeeded refreshes, oldest first."""
    rows = list(SegmentRefresh.objects.filter(segment=segment, status="succeeded")
                .order_by("-finished_at").values_list("finished_at", "size")[:limit])
    return rows[::-1]


def refresh_changes(*, refresh: SegmentRefresh, user, change: str) -> QuerySet[Client]:
    """The sampled clients who joined / left in `refresh`, scoped to `user`."""
    sampled = MembershipChange.objects.filter(refresh=refresh, change=change,
                                              client=OuterRef("pk"))
    return client_queryset_for(user).filter(Exists(sampled))
