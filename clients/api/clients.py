"""Clients: upsert by client_no, scoped list with filters, detail with derived values."""

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import BigIntegerField, ExpressionWrapper, F, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import can_see_pii
from core.api import KeysetPagination
from core.masking import mask_email, mask_id, mask_phone
from core.models import AuditAction, Branch
from core.services import audit_record

from ..models import Client, ClientRiskLevel, ClientStatus, ServiceLevel
from ..scoring.models import Tier
from ..scoring.selectors import client_score_history
from ..selectors import client_filter, client_get, client_queryset_for, client_search
from ..services import CLIENT_UPSERT_FIELDS, client_upsert
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
SCORE_RANK_SCALE = 10**12  # above any client id


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
        if data.get("ordering") in ("total_score", "-total_score"):
            queryset = queryset.annotate(score_rank=_score_rank(
                descending=data["ordering"] == "-total_score"))
        return queryset


def _score_rank(*, descending: bool):
    """A unique key for keyset pagination by score: score * SCALE + id, unscored clients last.

    The cursor needs one unique column; folding the id into the score gives one, and the
    never-scored (no CurrentScore) sort as 0 descending or 19 ascending, after every 3..18.
    """
    missing = 0 if descending else 19
    return ExpressionWrapper(
        Coalesce(F("current_score__total_score"), Value(missing)) * Value(SCORE_RANK_SCALE)
        + F("id"), output_field=BigIntegerField())


class ClientPagination(KeysetPagination):
    """Keyset by id, or by the score rank when `ordering=total_score|-total_score`."""

    def get_ordering(self, request, queryset, view):
        ordering = request.query_params.get("ordering")
        if ordering == "-total_score":
            return ("-score_rank",)
        if ordering == "total_score":
            return ("score_rank",)
        return ("id",)


class ClientListOutput(serializers.ModelSerializer):
    """A row of the client list; personal data is always masked in lists."""

    branch = serializers.SlugRelatedField(slug_field="code", read_only=True)
    rm = serializers.SlugRelatedField(slug_field="username", read_only=True)
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
        from segments.selectors import segment_codes_for_client

        return segment_codes_for_client(client=client)


class ClientUpsertInput(serializers.ModelSerializer):
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
                   responses={200: ClientListOutput(many=True), **errors(400, 401, 403)})
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

