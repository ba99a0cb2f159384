"""Value scoring over the API: runs (start, status, resume), a client's score history, schemes.

Writes need ops or admin; reads of runs and schemes need a reading role; a client's scores are
scoped like the client itself (404 for a client the caller may not see).
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import KeysetPagination, OutputModelSerializer

from ..models import Client
from ..scoring.models import ClientScore, ScoringRun, ScoringRunStatus, ScoringScheme, Tier
from ..scoring.schemes import scheme_publish
from ..scoring.selectors import client_score_history, run_get, run_list, scheme_list
from ..scoring.services import scoring_run_resume, scoring_run_start
from ..selectors import client_get
from ..validators import PlainFloatField, PlainIntegerField, validate_plausible_date
from .common import CanRead, CanWrite, ReadOrWrite, key_or_404, require_object
from .schemas import ErrorEnvelope, errors

CONFLICT = OpenApiResponse(ErrorEnvelope, description="A run for that date is queued or running")

CLIENT_NO_MAX = Client._meta.get_field("client_no").max_length


@extend_schema_field({"type": "array", "items": {"type": "string", "enum": list(Tier.values)}})
class TierPrecedenceField(serializers.ListField):
    child = serializers.CharField()


class ScoreOutput(OutputModelSerializer):
    """One score of a client (API.md field names)."""

    scheme_version = serializers.IntegerField(source="scheme.version", read_only=True)
    tier = serializers.ChoiceField(choices=Tier.choices, read_only=True)

    class Meta:
        model = ClientScore
        fields = ["as_of", "scheme_version", "amount", "purchases", "frequency", "benefit",
                  "recency_days", "amount_score", "frequency_score", "benefit_score",
                  "total_score", "tier"]
        read_only_fields = fields


class ProgressOutput(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class RunOutput(OutputModelSerializer):
    scheme_version = serializers.IntegerField(source="scheme.version", read_only=True)
    # A plain string: an enum named after the field would collide with the client's `status`
    # enum in the schema (an ENUM_NAME_OVERRIDES entry in settings would allow the enum).
    status = serializers.CharField(read_only=True,
                                   help_text="One of: " + ", ".join(ScoringRunStatus.values))
    progress = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                              allow_null=True)
    tier_counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)
    timings = serializers.DictField(child=serializers.FloatField(), read_only=True)

    class Meta:
        model = ScoringRun
        fields = ["id", "as_of", "scheme_version", "status", "trigger", "created_by", "progress",
                  "tier_counts", "timings", "error", "created_at", "started_at", "finished_at"]
        read_only_fields = fields

    @extend_schema_field(ProgressOutput)
    def get_progress(self, run: ScoringRun) -> dict:
        return {"done": run.progress_done, "total": run.progress_total}


class RunStartInput(serializers.Serializer):
    as_of = serializers.DateField(required=False, help_text="Default: yesterday (Asia/Shanghai).",
                                  validators=[validate_plausible_date])

    def validate_as_of(self, value):
        if value > timezone.localdate():
            raise serializers.ValidationError("The as-of date cannot be in the future.")
        return value


class SchemeOutput(OutputModelSerializer):
    published_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                                allow_null=True)
    amount_bounds = serializers.ListField(child=serializers.FloatField())
    frequency_bounds = serializers.ListField(child=serializers.FloatField())
    benefit_bounds = serializers.ListField(child=serializers.FloatField())
    tier_precedence = TierPrecedenceField()

    class Meta:
        model = ScoringScheme
        fields = ["version", "window_months", "amount_bounds", "frequency_bounds",
                  "benefit_bounds", "high_score", "recent_days", "tier_precedence", "note",
                  "published_at", "published_by"]
        read_only_fields = fields


class SchemeInput(serializers.Serializer):
    """A new version; bounds are the five lower bounds of bands 2..6 of each dimension.

    Types are checked here; the rules (six increasing, non-negative bands, known tier rules)
    are the service's, whose message names the offending band.
    """

    window_months = PlainIntegerField()
    amount_bounds = serializers.ListField(child=PlainFloatField(), max_length=50)
    frequency_bounds = serializers.ListField(child=PlainFloatField(), max_length=50)
    benefit_bounds = serializers.ListField(child=PlainFloatField(), max_length=50)
    high_score = PlainIntegerField()
    recent_days = PlainIntegerField()
    tier_precedence = serializers.ListField(child=serializers.CharField(max_length=40),
                                            max_length=20)
    note = serializers.CharField(required=False, allow_blank=True, max_length=200)


def _whole(values: list[float]) -> list[float | int]:
    return [int(v) if float(v).is_integer() else v for v in values]


class NewestRunsFirst(KeysetPagination):
    ordering = "-id"


@extend_schema(tags=["scoring"])
class RunListView(generics.ListAPIView):
    serializer_class = RunOutput
    pagination_class = NewestRunsFirst

    def get_permissions(self):
        return [CanRead()] if self.request.method in ("GET", "HEAD", "OPTIONS") else [CanWrite()]

    def get_queryset(self):
        return run_list()

    @extend_schema(summary="Scoring runs, newest first",
                   responses={200: RunOutput(many=True), **errors(400, 401, 403, 404)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Start a scoring run for an as-of date (default yesterday)",
                   request=RunStartInput,
                   responses={202: RunOutput, 409: CONFLICT, **errors(400, 401, 403)})
    def post(self, request: Request) -> Response:
        body = require_object(request.data if request.data is not None else {})
        serializer = RunStartInput(data=body)
        serializer.is_valid(raise_exception=True)
        run = scoring_run_start(as_of=serializer.validated_data.get("as_of"),
                                actor=request.user, trigger="api")
        run = run_get(run.pk)
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["scoring"])
class RunDetailView(APIView):
    permission_classes = [CanRead]

    @extend_schema(summary="One scoring run: status, progress, tier counts, timings",
                   responses={200: RunOutput, **errors(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(RunOutput(run_get(pk)).data)


@extend_schema(tags=["scoring"])
class RunResumeView(APIView):
    permission_classes = [CanWrite]

    @extend_schema(summary="Resume a failed or stalled run (done chunks are kept)", request=None,
                   responses={202: RunOutput, 409: CONFLICT, **errors(401, 403, 404)})
    def post(self, request: Request, pk: int) -> Response:
        run = scoring_run_resume(run=run_get(pk))
        return Response(RunOutput(run_get(run.pk)).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["scoring"])
class ClientScoresView(APIView):
    permission_classes = [CanRead]

    @extend_schema(summary="A client's score history, newest first",
                   responses={200: ScoreOutput(many=True), **errors(401, 403, 404)})
    def get(self, request: Request, client_no: str) -> Response:
        key_or_404(client_no, max_length=CLIENT_NO_MAX)
        client = client_get(user=request.user, client_no=client_no)
        return Response(ScoreOutput(client_score_history(client=client), many=True).data)


@extend_schema(tags=["scoring"])
class SchemeListView(ReadOrWrite, APIView):
    @extend_schema(summary="Versions of the scoring scheme, newest first",
                   responses={200: SchemeOutput(many=True), **errors(401, 403)})
    def get(self, request: Request) -> Response:
        return Response(SchemeOutput(scheme_list(), many=True).data)

    @extend_schema(summary="Publish a new version of the scoring scheme", request=SchemeInput,
                   responses={201: SchemeOutput, **errors(400, 401, 403)})
    def post(self, request: Request) -> Response:
        serializer = SchemeInput(data=require_object(request.data))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        for name in ("amount_bounds", "frequency_bounds", "benefit_bounds"):
            data[name] = _whole(data[name])
        scheme = scheme_publish(data=data, actor=request.user)
        return Response(SchemeOutput(scheme).data, status=status.HTTP_201_CREATED)
