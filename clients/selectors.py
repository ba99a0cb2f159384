"""Reads of client data. Every query of clients starts from `client_queryset_for`."""

import re
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from core.access import client_scope_q
from core.models import AuditAction
from core.services import audit_record

from .models import Client, ClientStatus, Holding, Interaction, Transaction, service_level_q
from .scoring.models import ClientScore, ScoringCurrent

_DIGITS = re.compile(r"^\d+$")


def client_queryset_for(user) -> QuerySet[Client]:
    """All clients `user` may see: the one access-scoping selector (DESIGN.md)."""
    return Client.objects.filter(client_scope_q(user))


def client_get(*, user, client_no: str) -> Client:
    """The client, or Http404 (audited) when it does not exist or `user` may not see it."""
    client = (client_queryset_for(user).select_related("branch", "rm")
              .filter(client_no=client_no).first())
    if client is None:
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
        from segments.models import SegmentMembership  # segments sit above clients

        qs = qs.filter(Exists(SegmentMembership.objects.filter(
            client=OuterRef("pk"), segment__code=segment)))
    return qs



# --- ordering by the current score -------------------------------------------------------------
# "Sort by total score" means: scored clients (a ClientScore row for the (as_of, scheme) that
# ScoringCurrent points at) by total score, then id; clients never scored after them, by id in
# the same direction. Done naively (ORDER BY current_score.total_score NULLS LAST over the LEFT
# JOIN to the CurrentScore view) PostgreSQL sorts every client (~4 s at a million). Here the
# pointer is read first (one tiny query), so the scored part is an INNER JOIN on clientscore
# with constant as_of/scheme that walks the index score_asof_total (as_of, scheme, total_score,
# client) in order under a LIMIT; the unscored part (NOT EXISTS a score for the pointer) is
# read by id only once the scored part is exhausted.
#
# Walking the index pays off when the list is big (ops: the whole table, or a filter matching
# many clients): a page needs about offset / (share of clients matching) index entries. For a
# small list (an RM's book of ~1,000) it is a gamble: an RM whose clients score low makes the
# walk read most of the index (2.9 s seen for rm001 at 1M). So a list of at most
# SCORE_SORT_IN_MEMORY_MAX clients sorts its own rows instead (by an expression no index
# provides, so PostgreSQL reads the list through its own filters' indexes, then sorts).
SCORE_SORT_IN_MEMORY_MAX = 10_000

ScorePointer = tuple  # (as_of: date, scheme_id: int)


def current_score_pointer() -> ScorePointer | None:
    """(as_of, scheme_id) of the current scores, or None when no run has succeeded yet."""
    return ScoringCurrent.objects.filter(pk=1).values_list("as_of", "scheme_id").first()


def clients_scored(qs: QuerySet[Client], pointer: ScorePointer) -> QuerySet[Client]:
    """The clients of `qs` with a current score (INNER JOIN, at most one score row each)."""
    as_of, scheme_id = pointer
    return qs.filter(scores__as_of=as_of, scores__scheme_id=scheme_id)


def clients_unscored(qs: QuerySet[Client], pointer: ScorePointer | None) -> QuerySet[Client]:
    """The clients of `qs` without a current score (all of them when nothing is scored)."""
    if pointer is None:
        return qs
    as_of, scheme_id = pointer
    return qs.filter(~Exists(ClientScore.objects.filter(client=OuterRef("pk"), as_of=as_of,
                                                        scheme_id=scheme_id)))


def score_order(*, descending: bool, walk_index: bool = True) -> tuple:
    """ORDER BY of the scored part (used with clients_scored): the index order, or the same
    order through an expression (`+ 0`) that makes PostgreSQL sort the list's own rows."""
    score = F("scores__total_score") if walk_index else F("scores__total_score") + 0
    return (score.desc(), "-id") if descending else (score.asc(), "id")


def score_sort_walks_index(qs: QuerySet[Client]) -> bool:
    """Whether a score sort of `qs` should walk the score index: more than
    SCORE_SORT_IN_MEMORY_MAX clients (a capped count, at most that many index entries)."""
    return qs.order_by()[: SCORE_SORT_IN_MEMORY_MAX + 1].count() > SCORE_SORT_IN_MEMORY_MAX


def client_score_slice(qs: QuerySet[Client], *, descending: bool, offset: int, limit: int,
                       pointer: ScorePointer | None, walk_index: bool = True) -> list[Client]:
    """Rows [offset, offset + limit) of `qs` sorted by current total score, unscored last.

    One query while the slice lies in the scored part. A slice that runs past it reads the
    unscored part too; only a slice that starts beyond the scored part needs the scored count,
    and then counts at most `offset` rows.
    """
    id_order = "-id" if descending else "id"
    rows: list[Client] = []
    skip = offset
    if pointer is not None:
        scored = clients_scored(qs, pointer)
        order = score_order(descending=descending, walk_index=walk_index)
        rows = []
        if walk_index and not qs.query.where:
            # The whole table (ops, no filter): OFFSET over the score index alone (index-only,
            # ~7 ms for page 200 at a million), then the page's clients by id - instead of
            # fetching every skipped client row (~100 ms). Score rows always have their client
            # (written by the engine from clients it reads); should one not, the page comes
            # back short and the joined query below answers instead.
            key = ("-total_score", "-client_id") if descending else ("total_score", "client_id")
            page_ids = (ClientScore.objects.filter(as_of=pointer[0], scheme_id=pointer[1])
                        .order_by(*key).values("client_id")[offset: offset + limit])
            rows = list(scored.filter(pk__in=page_ids).order_by(*order))
        if len(rows) < limit:
            rows = list(scored.order_by(*order)[offset: offset + limit])
        if len(rows) == limit:
            return rows
        # Short: the scored part ends in this slice (it holds offset + len(rows) clients) or
        # before it (fewer than offset: count them, at most offset rows).
        skip = 0 if rows else offset - scored.order_by()[:offset].count()
    unscored = clients_unscored(qs, pointer).order_by(id_order)
    return rows + list(unscored[skip: skip + limit - len(rows)])
