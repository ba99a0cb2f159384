"""Clients: upsert by client_no, scoped list with filters, detail with derived values."""

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import BooleanField, F, Func, QuerySet, Subquery, Value
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import can_see_pii
from core.api import KeysetPagination, OutputModelSerializer
from core.masking import mask_email, mask_id, mask_phone
from core.models import AuditAction, Branch
from core.services import audit_record

from ..models import Client, ClientRiskLevel, ClientStatus, ServiceLevel
from ..scoring.models import Tier
from ..scoring.selectors import client_score_history
from ..selectors import (
    client_filter,
    client_get,
    client_queryset_for,
    client_search,
    clients_scored,
    clients_unscored,
    current_score_pointer,
    score_sort_walks_index,
)
from ..services import CLIENT_UPSERT_FIELDS, client_upsert
from ..validators import PlainNumbersSerializer
from .common import (
    CanRead,
    ReadOrWrite,
    check_body_key,
    key_or_400,
    key_or_404,
    require_object,
)
from .schemas import errors
from .scoring import ScoreOutput

CLIENT_NO_MAX = Client._meta.get_field("client_no").max_length
_MASKERS = {"phone": mask_phone, "email": mask_email, "id_number": mask_id}
ORDERINGS = ("id", "total_score", "-total_score")


class ClientFilter(django_filters.FilterSet):
    """The API's list filters; the logic lives in clients.selectors (client_search/filter)."""

    search = django_filters.CharFilter(
        max_length=100, help_text="Name or client number prefix, or the phone's last 4 digits.")
    risk_level = django_filters.ChoiceFilter(choices=ClientRiskLevel.choices)
    service_level = django_filters.ChoiceFilter(choices=ServiceLevel.choices)
    status = django_filters.ChoiceFilter(
        choices=[*ClientStatus.choices, ("dormant_derived", "Dormant (marked or no purchase)")])
    assessment_expired = django_filters.BooleanFilter(
        help_text="true: risk assessment missing or expired; false: still valid.")
    rm = django_filters.CharFilter(max_length=150, help_text="Username of the RM.")
    branch = django_filters.CharFilter(max_length=32, help_text="Branch code.")
    tier = django_filters.ChoiceFilter(choices=Tier.choices,
                                       help_text="Value tier of the client's current score.")
    segment = django_filters.CharFilter(max_length=64,
                                        help_text="Segment code: members of that segment.")
    ordering = django_filters.ChoiceFilter(
        choices=[(o, o) for o in ORDERINGS],
        help_text="id (default), total_score or -total_score (current total score; clients "
                  "never scored come last either way).")

    class Meta:
        model = Client
        fields: list[str] = []

    def filter_queryset(self, queryset: QuerySet[Client]) -> QuerySet[Client]:
        data = self.form.cleaned_data
        # Keys are resolved inside the same SQL statement (an unknown key matches nobody).
        rm_id = branch_id = None
        if data.get("rm"):
            rm_id = Subquery(get_user_model().objects.filter(username=data["rm"]).values("pk")[:1])
        if data.get("branch"):
            branch_id = Subquery(Branch.objects.filter(code=data["branch"]).values("pk")[:1])
        queryset = client_search(queryset, data.get("search") or "")
        queryset = client_filter(queryset, risk_level=data.get("risk_level") or "",
                                 service_level=data.get("service_level") or "",
                                 status=data.get("status") or "",
                                 assessment_expired=data.get("assessment_expired"),
                                 rm_id=rm_id, branch_id=branch_id, tier=data.get("tier") or "",
                                 segment=data.get("segment") or "")
        return queryset


class _RowCompare(Func):
    """`(a, b) < (c, d)` (or `>`): a row comparison, which PostgreSQL uses as an index bound."""

    output_field = BooleanField()

    def __init__(self, left, op, right):
        assert op in ("<", ">") and len(left) == len(right)
        super().__init__(*left, *right)
        self.op = op

    def as_sql(self, compiler, connection, **extra_context):
        parts, params = [], []
        for expression in self.get_source_expressions():
            sql, p = compiler.compile(expression)
            parts.append(sql)
            params.extend(p)
        half = len(parts) // 2
        return (f"(({', '.join(parts[:half])}) {self.op} ({', '.join(parts[half:])}))",
                params)


class ClientPagination(KeysetPagination):
    """Keyset by id, or by (current total score, id) when `ordering=total_score|-total_score`.

    The score ordering has two parts, read in this order: the scored clients (an INNER JOIN on
    clientscore at the ScoringCurrent pointer, walked in the order of the index
    score_asof_total: (total_score, client_id) compared as a row against the cursor), then the
    clients never scored, by id in the same direction. The cursor's position is `s.<score>.<id>`
    in the first part and `u.<id>` in the second; a page that crosses from one to the other
    reads both. Every page is an index range scan, as cheap deep in the list as at its start.
    """

    def get_ordering(self, request, queryset, view):
        return ("id",)

    def paginate_queryset(self, queryset, request, view=None):
        ordering = request.query_params.get("ordering")
        if ordering not in ("total_score", "-total_score"):
            return super().paginate_queryset(queryset, request, view)
        self.page_size = self.get_page_size(request)
        if not self.page_size:
            return None
        self.base_url = request.build_absolute_uri()
        self.ordering = (ordering,)
        self.cursor = self.decode_cursor(request)
        position = _score_position(self.cursor.position) if self.cursor else None
        if self.cursor and position is None:
            raise NotFound(self.invalid_cursor_message)
        reverse = bool(self.cursor and self.cursor.reverse)
        descending = ordering == "-total_score"
        pointer = current_score_pointer()
        # A list of at most SCORE_SORT_IN_MEMORY_MAX clients (an RM's book) sorts its own rows;
        # a bigger one walks the index (selectors: a capped count decides, like the page's).
        walk_index = pointer is not None and score_sort_walks_index(queryset)
        rows = _score_keyset(queryset, pointer=pointer, descending=descending,
                             position=position, reverse=reverse, limit=self.page_size + 1,
                             walk_index=walk_index)
        more = len(rows) > self.page_size
        page = rows[: self.page_size]
        if reverse:
            page.reverse()
        self.page = page
        self.has_next = more if not reverse else True
        self.has_previous = more if reverse else self.cursor is not None
        first = page[0]._score_position if page else (self.cursor.position if self.cursor
                                                        else None)
        last = page[-1]._score_position if page else (self.cursor.position if self.cursor
                                                       else None)
        self._score_next = Cursor(offset=0, reverse=False, position=last)
        self._score_previous = Cursor(offset=0, reverse=True, position=first)
        return page

    def get_next_link(self):
        if getattr(self, "_score_next", None) is None:
            return super().get_next_link()
        return self.encode_cursor(self._score_next) if self.has_next else None

    def get_previous_link(self):
        if getattr(self, "_score_previous", None) is None:
            return super().get_previous_link()
        return self.encode_cursor(self._score_previous) if self.has_previous else None


def _score_position(raw: str):
    """("s", score, id) or ("u", id) from a cursor's position; None when malformed."""
    parts = (raw or "").split(".")
    try:
        if parts[0] == "s" and len(parts) == 3:
            return ("s", int(parts[1]), int(parts[2]))
        if parts[0] == "u" and len(parts) == 2:
            return ("u", int(parts[1]))
    except ValueError:
        return None
    return None


def _score_keyset(qs: QuerySet[Client], *, pointer, descending: bool, position, reverse: bool,
                  limit: int, walk_index: bool = True) -> list[Client]:
    """Up to `limit` clients after (or, `reverse`, before: nearest first) `position`.

    Order: scored clients by (total_score, id), then unscored by id, both ascending or both
    descending. Each row gets `_score_position` for the cursor.
    """
    forward_desc = descending != reverse  # the direction this read walks in
    id_order = "-id" if forward_desc else "id"
    beyond = "<" if forward_desc else ">"
    scored = unscored = None
    if pointer is not None:
        # `+ 0`: an order no index provides, so PostgreSQL sorts the (small) list's own rows.
        score = F("sort_score") if walk_index else F("sort_score") + 0
        scored = (clients_scored(qs, pointer)
                  .annotate(sort_score=F("scores__total_score"), sort_client=F("scores__client_id"))
                  .order_by(*((score.desc(), "-sort_client") if forward_desc
                              else (score.asc(), "sort_client"))))
    unscored = clients_unscored(qs, pointer).order_by(id_order)
    id_beyond = "id__lt" if forward_desc else "id__gt"

    def read_scored(after, n):
        if scored is None or n <= 0:
            return []
        part = scored
        if after is not None:
            part = part.filter(_RowCompare((F("sort_score"), F("sort_client")), beyond,
                                           (Value(after[0]), Value(after[1]))))
        rows = list(part[:n])
        for row in rows:
            row._score_position = f"s.{row.sort_score}.{row.pk}"
        return rows

    def read_unscored(after_id, n):
        if n <= 0:
            return []
        part = unscored if after_id is None else unscored.filter(**{id_beyond: after_id})
        rows = list(part[:n])
        for row in rows:
            row._score_position = f"u.{row.pk}"
        return rows

    # Forward: scored part, then unscored. Reverse: unscored part (walked back), then scored.
    if not reverse:
        if position is not None and position[0] == "u":
            return read_unscored(position[1], limit)
        rows = read_scored(position[1:] if position else None, limit)
        return rows + read_unscored(None, limit - len(rows))
    if position[0] == "s":
        return read_scored(position[1:], limit)
    rows = read_unscored(position[1], limit)
    return rows + read_scored(None, limit - len(rows))


class ClientListOutput(OutputModelSerializer):
    """A row of the client list; personal data is always masked in lists."""

    branch = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    rm = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    age = serializers.IntegerField(read_only=True, allow_null=True)
    service_level = serializers.ChoiceField(choices=ServiceLevel.choices, read_only=True)
    risk_assessment_expired = serializers.BooleanField(read_only=True)

    class Meta:
        model = Client
        fields = ["client_no", "name", "gender", "age", "phone", "email", "city", "branch", "rm",
                  "risk_level", "risk_expires_on", "risk_assessment_expired", "investor_type",
                  "status", "aum", "service_level"]
        read_only_fields = fields

    def to_representation(self, instance: Client) -> dict:
        data = super().to_representation(instance)
        if not self.context.get("show_pii"):
            for field, mask in _MASKERS.items():
                if field in data:
                    data[field] = mask(data[field] or "")
        return data


class ClientDetailOutput(ClientListOutput):
    """One client with derived values, its latest `score` and its `segments` (codes)."""

    is_dormant = serializers.BooleanField(read_only=True)
    score = serializers.SerializerMethodField()
    segments = serializers.SerializerMethodField()

    class Meta(ClientListOutput.Meta):
        fields = ["client_no", *CLIENT_UPSERT_FIELDS, "branch", "rm", "consent_updated_at",
                  "last_purchase_on", "age", "service_level", "risk_assessment_expired",
                  "is_dormant", "score", "segments", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(ScoreOutput(allow_null=True))
    def get_score(self, client: Client) -> dict | None:
        score = client_score_history(client=client).first()
        return ScoreOutput(score).data if score is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_segments(self, client: Client) -> list[str]:
        from segments.selectors import segment_codes_for_client  # segments sit above clients

        return segment_codes_for_client(client=client)


class ClientUpsertInput(PlainNumbersSerializer):
    """Fields and their choices, lengths and types come from the Client model."""

    client_no = serializers.CharField(required=False, max_length=CLIENT_NO_MAX,
                                      help_text="Optional; must equal the client_no in the URL.")
    branch = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                   max_length=32, help_text="Branch code; must exist.")
    rm = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                               max_length=150, help_text="RM username; must exist.")

    class Meta:
        model = Client
        fields = ["client_no", *CLIENT_UPSERT_FIELDS, "branch", "rm"]
        extra_kwargs = {"aum": {"min_value": 0}}


@extend_schema(tags=["clients"])
class ClientListView(generics.ListAPIView):
    permission_classes = [CanRead]
    serializer_class = ClientListOutput
    filterset_class = ClientFilter
    pagination_class = ClientPagination

    def get_queryset(self) -> QuerySet[Client]:
        return client_queryset_for(self.request.user).select_related("branch", "rm",
                                                                     "current_score")

    @extend_schema(summary="List the clients the caller may see (masked)",
                   responses={200: ClientListOutput(many=True),
                              **errors(400, 401, 403, 404)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["clients"])
class ClientDetailView(ReadOrWrite, APIView):
    @extend_schema(summary="One client with derived values",
                   responses={200: ClientDetailOutput, **errors(401, 403, 404)})
    def get(self, request: Request, client_no: str) -> Response:
        key_or_404(client_no, max_length=CLIENT_NO_MAX)
        client = client_get(user=request.user, client_no=client_no)
        show_pii = can_see_pii(request.user, client)
        if show_pii:
            audit_record(action=AuditAction.PII_VIEWED, actor=request.user, object_type="client",
                         object_id=client.client_no, request=request._request)
        return Response(ClientDetailOutput(client, context={"show_pii": show_pii}).data)

    @extend_schema(summary="Create or update a client by client_no (idempotent)",
                   request=ClientUpsertInput,
                   responses={200: ClientDetailOutput, 201: ClientDetailOutput,
                              **errors(400, 401, 403)})
    def put(self, request: Request, client_no: str) -> Response:
        key_or_400(client_no, name="client_no", max_length=CLIENT_NO_MAX)
        body = require_object(request.data)
        check_body_key(body, name="client_no", value=client_no)
        serializer = ClientUpsertInput(data=body)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("client_no", None)
        refs = {}
        if "branch" in data:
            refs["branch_code"] = data.pop("branch") or None
        if "rm" in data:
            refs["rm_username"] = data.pop("rm") or None
        client, created = client_upsert(client_no=client_no, data=data, **refs)
        return Response(ClientDetailOutput(client, context={"show_pii": False}).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

