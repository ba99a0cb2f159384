"""Reads of segments, for the pages, the API and the client 360 card alike.

Member lists start from `client_queryset_for` (scoped to the user).

Inactive segments — one rule for every reader: a segment switched off (`is_active` false,
API `PATCH … {"is_active": false}`) is retired, not deleted. It keeps its code, rule, versions,
history and last members, so it is still listed (`segment_list`, flagged), found by its code
(`segment_get`: its page, the API's detail and members, and the PATCH that switches it back
on) and exported. It is no longer offered as a choice (`segment_choices`, `static_lists`),
not refreshed by the nightly run (services.segments_refresh_all), and not shown on a client's
360 card (`client_segment_groups`).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Exists, OuterRef, QuerySet, Sum
from django.http import Http404
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from clients.models import Client, ProductType
from clients.scoring.models import Tier
from clients.selectors import client_queryset_for
from core.access import client_scope_q
from core.models import Branch, Role, User

from .models import (
    MembershipChange,
    RefreshStatus,
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentRefresh,
)

KIND_ORDER = [SegmentKind.PERSONA, SegmentKind.TIER, SegmentKind.SERVICE_LEVEL,
              SegmentKind.SCENARIO, SegmentKind.RULE, SegmentKind.STATIC]
HISTORY_POINTS = 90
CHANGES_SHOWN = 20
VERSIONS_SHOWN = 20
UNKNOWN_CHUNK = 5000


def _lang() -> str:
    return "zh-hans" if (get_language() or "").startswith("zh") else "en"


# --- segments ----------------------------------------------------------------------------------
def segment_list(*, kind: str | None = None, active_only: bool = False) -> QuerySet[Segment]:
    """Every segment, active or not (see the module docstring), by kind then code."""
    qs = Segment.objects.all()
    if kind:
        qs = qs.filter(kind=kind)
    if active_only:
        qs = qs.filter(is_active=True)
    return qs.order_by("kind", "code")


def segment_get(*, code: str) -> Segment:
    """The segment with this code, active or not, or Http404."""
    segment = Segment.objects.filter(code=code).first()
    if segment is None:
        raise Http404(_("No such segment."))
    return segment


def static_lists() -> QuerySet[Segment]:
    """The static lists clients may be added to (active ones only)."""
    return segment_list(kind=SegmentKind.STATIC, active_only=True)


def segment_choices(*, exclude: Segment | None = None) -> list[list[str]]:
    """[code, "name (code)"] of the active segments a rule may reference."""
    lang = _lang()
    rows = []
    for code, zh, en in (segment_list(active_only=True).exclude(pk=getattr(exclude, "pk", None))
                         .values_list("code", "name_zh", "name_en")):
        name = (zh or en) if lang == "zh-hans" else (en or zh)
        rows.append([code, f"{name} ({code})"])
    return rows


def segment_builder_choices(*, exclude: Segment | None = None) -> dict:
    """The value lists of the rule builder: branches, RMs and the segments a rule may use."""
    branches = [[code, f"{name} ({code})"] for code, name in
                Branch.objects.order_by("code").values_list("code", "name")]
    rms = [[username, display or username] for username, display in
           User.objects.filter(groups__name=Role.RM).order_by("username")
           .values_list("username", "display_name")]
    return {"branches": branches, "rms": rms, "segments": segment_choices(exclude=exclude)}


def segment_names(*, codes) -> dict[str, str]:
    """code -> name in the current language, for the segments a rule references."""
    if not codes:
        return {}
    return {s.code: s.name for s in Segment.objects.filter(code__in=codes)
            .only("code", "name_zh", "name_en")}


def segment_versions(*, segment: Segment, limit: int = VERSIONS_SHOWN):
    return segment.versions.select_related("created_by")[:limit]


def playbook_for(segment: Segment) -> dict | None:
    """The persona's playbook in the current language (falling back to the other one)."""
    book = segment.playbook or {}
    lang = _lang()
    text = book.get(lang) or book.get("en" if lang == "zh-hans" else "zh-hans") or {}
    types = [str(ProductType(t).label) if t in ProductType.values else t
             for t in book.get("product_types") or []]
    if not text and not types:
        return None
    return {"traits": text.get("traits", ""), "channels": text.get("channels", ""),
            "service": text.get("service", ""), "product_types": types}


# --- members -----------------------------------------------------------------------------------
def segment_members(*, segment: Segment, user) -> QuerySet[Client]:
    """The segment's clients that `user` may see (an RM: their own book only)."""
    member = SegmentMembership.objects.filter(segment=segment, client=OuterRef("pk"))
    return client_queryset_for(user).filter(Exists(member))


def segment_member_rows(*, segment: Segment, user) -> QuerySet[Client]:
    """`segment_members` shaped for the members table (RM, branch and score in one query)."""
    return (segment_members(segment=segment, user=user)
            .select_related("rm", "branch", "current_score").order_by("client_no"))


def segment_member_client_nos(*, segment: Segment) -> list[str]:
    """Every member's client number (a static list's current content)."""
    return list(SegmentMembership.objects.filter(segment=segment)
                .values_list("client__client_no", flat=True))


def segment_visible_counts(*, user) -> dict[int, int]:
    """segment id -> how many of its members `user` may see (one GROUP BY)."""
    return dict(SegmentMembership.objects.filter(client_scope_q(user, prefix="client__"))
                .values_list("segment_id").annotate(n=Count("id")).order_by())


def unknown_client_nos(*, user, numbers: list[str]) -> list[str]:
    """The numbers that are not clients `user` may see (read in chunks of 5,000)."""
    known: set[str] = set()
    visible = client_queryset_for(user)
    for start in range(0, len(numbers), UNKNOWN_CHUNK):
        chunk = numbers[start:start + UNKNOWN_CHUNK]
        known.update(visible.filter(client_no__in=chunk).values_list("client_no", flat=True))
    return [n for n in numbers if n not in known]


# --- refreshes ---------------------------------------------------------------------------------
def segment_refresh_get(*, refresh_id: int, segment: Segment | None = None) -> SegmentRefresh:
    qs = SegmentRefresh.objects.select_related("segment", "created_by").filter(pk=refresh_id)
    if segment is not None:
        qs = qs.filter(segment=segment)
    refresh = qs.first()
    if refresh is None:
        raise Http404(_("No such refresh."))
    return refresh


def segment_refreshes(*, segment: Segment) -> QuerySet[SegmentRefresh]:
    """Newest first: the size-over-time history is its succeeded rows."""
    return SegmentRefresh.objects.filter(segment=segment).select_related("created_by")


def segment_refresh_latest(*, segment: Segment) -> SegmentRefresh | None:
    return segment_refreshes(segment=segment).first()


def segment_refresh_last_succeeded(*, segment: Segment) -> SegmentRefresh | None:
    return segment_refreshes(segment=segment).filter(status=RefreshStatus.SUCCEEDED).first()


def segment_refreshes_active() -> dict[int, SegmentRefresh]:
    """segment id -> its queued or running refresh."""
    active = SegmentRefresh.objects.filter(status__in=SegmentRefresh.ACTIVE)
    return {r.segment_id: r for r in active}


def segment_size_history(*, segment: Segment, limit: int = HISTORY_POINTS) -> list[dict]:
    """Size, joined and left of the last `limit` succeeded refreshes, oldest first."""
    rows = list(SegmentRefresh.objects.filter(segment=segment, status=RefreshStatus.SUCCEEDED)
                .exclude(size=None).order_by("-finished_at", "-id")
                .values("finished_at", "created_at", "size", "joined", "left")[:limit])
    out = []
    for r in reversed(rows):
        at: datetime = r["finished_at"] or r["created_at"]
        out.append({"at": timezone.localtime(at).strftime("%Y-%m-%d %H:%M"), "size": r["size"],
                    "joined": r["joined"] or 0, "left": r["left"] or 0})
    return out


def refresh_changes(*, refresh: SegmentRefresh, user, change: str) -> QuerySet[Client]:
    """The sampled clients who joined / left in `refresh`, scoped to `user`."""
    sampled = MembershipChange.objects.filter(refresh=refresh, change=change,
                                              client=OuterRef("pk"))
    return client_queryset_for(user).filter(Exists(sampled)).order_by("client_no")


def refresh_changes_shown(*, refresh: SegmentRefresh | None, user,
                          limit: int = CHANGES_SHOWN) -> dict:
    """The first `limit` joined and left clients of `refresh` that `user` may see."""
    if refresh is None:
        return {"joined": [], "left": []}
    return {key: list(refresh_changes(refresh=refresh, user=user, change=change)[:limit])
            for key, change in (("joined", MembershipChange.JOINED),
                                ("left", MembershipChange.LEFT))}


# --- the persona overview ----------------------------------------------------------------------
def persona_figures(*, user) -> dict:
    """Size, AUM, tier mix and pairwise overlap of the active personas, over the clients `user`
    sees. Three GROUP BY queries over SegmentMembership, whatever the number of clients."""
    personas = list(segment_list(kind=SegmentKind.PERSONA, active_only=True))
    ids = [p.pk for p in personas]
    memberships = SegmentMembership.objects.filter(segment_id__in=ids).filter(
        client_scope_q(user, prefix="client__"))
    totals = {row["segment_id"]: row for row in memberships.values("segment_id").annotate(
        n=Count("id"), aum=Sum("client__aum")).order_by()}
    tiers: dict[int, dict[str, int]] = {}
    for row in memberships.values("segment_id", "client__current_score__tier").annotate(
            n=Count("id")).order_by():
        tiers.setdefault(row["segment_id"], {})[row["client__current_score__tier"] or ""] = \
            row["n"]
    overlap: dict[tuple[int, int], int] = {}
    for row in memberships.filter(client__segment_memberships__segment_id__in=ids).values(
            "segment_id", "client__segment_memberships__segment_id").annotate(
            n=Count("id")).order_by():
        overlap[(row["segment_id"], row["client__segment_memberships__segment_id"])] = row["n"]
    tier_keys = [t.value for t in Tier] + [""]
    tier_labels = {**{t.value: str(t.label) for t in Tier}, "": _("Not scored")}
    rows = []
    for p in personas:
        total = totals.get(p.pk, {})
        mix = tiers.get(p.pk, {})
        rows.append({"segment": p, "size": total.get("n", 0), "aum": total.get("aum") or 0,
                     "tiers": [{"key": t or "none", "label": tier_labels[t],
                                "n": mix.get(t, 0)} for t in tier_keys],
                     "playbook": playbook_for(p)})
    matrix = [[i, j, overlap.get((a.pk, b.pk), 0)] for i, a in enumerate(personas)
              for j, b in enumerate(personas)]
    return {"rows": rows, "chart": {"names": [p.name for p in personas], "matrix": matrix,
                                    "title": _("Clients in both personas")}}


# --- a client's segments -----------------------------------------------------------------------
def segments_for_client(*, client: Client) -> QuerySet[Segment]:
    """The active segments a client belongs to, by kind then code."""
    return segment_list(active_only=True).filter(memberships__client=client)


def segment_codes_for_client(*, client: Client) -> list[str]:
    return list(segments_for_client(client=client).values_list("code", flat=True))


def client_segment_groups(*, client: Client) -> dict:
    """The 360 card: the client's active segments grouped by kind, personas with playbooks."""
    labels = dict(SegmentKind.choices)
    by_kind: dict[str, list] = {}
    for segment in segments_for_client(client=client):
        by_kind.setdefault(segment.kind, []).append(segment)
    groups = [{"kind": kind, "label": labels[kind], "segments": by_kind[kind]}
              for kind in KIND_ORDER if kind in by_kind]
    personas = [{"segment": s, "playbook": playbook_for(s)}
                for s in by_kind.get(SegmentKind.PERSONA, [])]
    return {"segment_groups": groups, "client_personas": personas}
