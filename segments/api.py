"""Segments over the API (API.md): list, detail, create, change, delete, preview a rule,
refresh, a refresh's status, and the members the caller may see.

Reads need a reading role; writes (create, change, delete, refresh) need ops or admin. An
invalid rule is a 400 whose envelope also names the offending node:
`{"error": {"code": "invalid_rule", "message", "fields": {"rule": [...]}, "node": "/all/1"}}`.
"""

from __future__ import annotations

from django.utils.translation import get_language
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clients.api.common import CanRead, CanWrite, ReadOrWrite, key_or_404, require_object
from clients.api.schemas import ErrorEnvelope, errors
from clients.api.scoring import ProgressOutput
from clients.models import Client
from core.api import KeysetPagination, OutputModelSerializer, error_body

from .models import RefreshStatus, Segment, SegmentKind, SegmentRefresh
from .rules import RuleError
from .selectors import segment_get, segment_list, segment_members, segment_refresh_get
from .services import (
    MAX_STATIC,
    segment_create,
    segment_delete,
    segment_preview,
    segment_refresh_start,
    segment_static_set,
    segment_update,
)

CODE_MAX = Segment._meta.get_field("code").max_length
CONFLICT = OpenApiResponse(ErrorEnvelope, description="Conflict (in use, busy or duplicate)")
RULE_HELP = ("A rule tree (API.md, Rule language): {\"all\": [...]}, {\"any\": [...]}, "
             "{\"not\": node} or {\"field\", \"op\", \"value\"}.")
_RULE_ERROR_BODY = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"type": "string"}}},
        "node": {"type": "string", "description": "Path of the offending node, e.g. /all/1"}}}},
}
RULE_ERRORS = {400: OpenApiResponse(_RULE_ERROR_BODY, description="Invalid input or rule")}


class RuleErrorsNamed:
    """Mixin: a RuleError answers with the error envelope plus the node path."""

    def handle_exception(self, exc):
        if isinstance(exc, RuleError):
            body = error_body(exc.code, exc.message, exc.fields)
            body["error"]["node"] = exc.node
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)


@extend_schema_field({"type": "object", "additionalProperties": True, "description": RULE_HELP})
class RuleField(serializers.JSONField):
    pass


class SegmentOutput(OutputModelSerializer):
    name = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(choices=SegmentKind.choices, read_only=True)

    class Meta:
        model = Segment
        fields = ["code", "name", "name_zh", "name_en", "kind", "size", "refreshed_at",
                  "rule_version", "is_system", "is_active"]
        read_only_fields = fields

    def get_name(self, segment: Segment) -> str:
        return segment.name


class SegmentDetailOutput(SegmentOutput):
    rule = RuleField(read_only=True, allow_null=True)
    playbook = serializers.DictField(read_only=True)
    description = serializers.CharField(read_only=True)

    class Meta(SegmentOutput.Meta):
        fields = [*SegmentOutput.Meta.fields, "description", "description_zh",
                  "description_en", "rule", "playbook", "created_at", "updated_at"]
        read_only_fields = fields


class SegmentCreateInput(serializers.Serializer):
    code = serializers.CharField(max_length=CODE_MAX)
    name = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                 help_text="The name in the request's language.")
    name_zh = serializers.CharField(required=False, allow_blank=True, max_length=100)
    name_en = serializers.CharField(required=False, allow_blank=True, max_length=100)
    description_zh = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    description_en = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    kind = serializers.ChoiceField(choices=[SegmentKind.RULE, SegmentKind.STATIC],
                                   default=SegmentKind.RULE)
    rule = RuleField(required=False, allow_null=True)
    client_nos = serializers.ListField(child=serializers.CharField(max_length=32),
                                       required=False, max_length=MAX_STATIC)


class SegmentUpdateInput(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    name_zh = serializers.CharField(required=False, allow_blank=True, max_length=100)
    name_en = serializers.CharField(required=False, allow_blank=True, max_length=100)
    description_zh = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    description_en = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    is_active = serializers.BooleanField(required=False)
    rule = RuleField(required=False)
    client_nos = serializers.ListField(child=serializers.CharField(max_length=32),
                                       required=False, max_length=MAX_STATIC)


class PreviewInput(serializers.Serializer):
    rule = RuleField()


class PreviewOutput(serializers.Serializer):
    count = serializers.IntegerField()
    sample = serializers.ListField(child=serializers.CharField())


class RefreshOutput(OutputModelSerializer):
    segment = serializers.SlugRelatedField(slug_field="code", read_only=True)
    status = serializers.ChoiceField(choices=RefreshStatus.choices, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                              allow_null=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = SegmentRefresh
        fields = ["id", "segment", "status", "trigger", "rule_version", "progress", "size",
                  "joined", "left", "error", "created_by", "created_at", "started_at",
                  "finished_at"]
        read_only_fields = fields

    @extend_schema_field(ProgressOutput)
    def get_progress(self, refresh: SegmentRefresh) -> dict:
        return {"done": refresh.progress_done, "total": refresh.progress_total}


class MemberOutput(OutputModelSerializer):
    class Meta:
        model = Client
        fields = ["client_no"]
        read_only_fields = fields


def _names(data: dict) -> dict:
    """`name` goes to the request language's column unless that column is given too."""
    names = {k: data[k] for k in ("name_zh", "name_en") if k in data}
    if data.get("name"):
        column = "name_zh" if (get_language() or "").startswith("zh") else "name_en"
        names.setdefault(column, data["name"])
    return names


def _segment_or_404(code: str) -> Segment:
    key_or_404(code, max_length=CODE_MAX)
    return segment_get(code=code)


@extend_schema(tags=["segments"])
class SegmentListView(RuleErrorsNamed, ReadOrWrite, APIView):
    @extend_schema(summary="All segments", responses={200: SegmentOutput(many=True),
                                                      **errors(401, 403)})
    def get(self, request: Request) -> Response:
        return Response(SegmentOutput(segment_list(), many=True).data)

    @extend_schema(summary="Create a rule segment or a static list", request=SegmentCreateInput,
                   responses={201: SegmentDetailOutput, **RULE_ERRORS, **errors(401, 403),
                              409: CONFLICT})
    def post(self, request: Request) -> Response:
        serializer = SegmentCreateInput(data=require_object(request.data))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        names = _names(data)
        segment = segment_create(
            code=data["code"], name_zh=names.get("name_zh", ""),
            name_en=names.get("name_en", ""), kind=data["kind"], rule=data.get("rule"),
            client_nos=data.get("client_nos"), description_zh=data.get("description_zh", ""),
            description_en=data.get("description_en", ""), actor=request.user)
        return Response(SegmentDetailOutput(segment).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["segments"])
class SegmentDetailView(RuleErrorsNamed, ReadOrWrite, APIView):
    @extend_schema(summary="One segment with its rule and playbook",
                   responses={200: SegmentDetailOutput, **errors(401, 403, 404)})
    def get(self, request: Request, code: str) -> Response:
        return Response(SegmentDetailOutput(_segment_or_404(code)).data)

    @extend_schema(summary="Change a segment (a new rule is a new version, then a refresh)",
                   request=SegmentUpdateInput,
                   responses={200: SegmentDetailOutput, **RULE_ERRORS, **errors(401, 403, 404),
                              409: CONFLICT})
    def patch(self, request: Request, code: str) -> Response:
        segment = _segment_or_404(code)
        serializer = SegmentUpdateInput(data=require_object(request.data))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "rule" in data and data["rule"] is None:
            raise RuleError(_("A rule is required."), node="/")
        segment = segment_update(
            segment=segment, rule=data.get("rule"), description_zh=data.get("description_zh"),
            description_en=data.get("description_en"), is_active=data.get("is_active"),
            actor=request.user, **_names(data))
        if "client_nos" in data:
            segment = segment_static_set(segment=segment, client_nos=data["client_nos"],
                                         actor=request.user)
        return Response(SegmentDetailOutput(segment).data)

    @extend_schema(summary="Delete a segment (not a seeded one, not one others use)",
                   responses={204: None, **errors(401, 403, 404), 409: CONFLICT})
    def delete(self, request: Request, code: str) -> Response:
        segment_delete(segment=_segment_or_404(code), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["segments"])
class SegmentPreviewView(RuleErrorsNamed, APIView):
    permission_classes = [CanRead]

    def http_method_not_allowed(self, request, *args, **kwargs):
        """/segments/preview/ is also where /segments/{code}/ would be for code "preview", a
        code no segment may have: the detail's methods answer as for any unknown segment."""
        raise NotFound(_("No segment with code “preview”."))

    @extend_schema(summary="Count and sample of a rule among the clients the caller may see",
                   request=PreviewInput,
                   responses={200: PreviewOutput, **RULE_ERRORS, **errors(401, 403)})
    def post(self, request: Request) -> Response:
        body = require_object(request.data)
        if "rule" not in body:
            raise RuleError(_("Send the rule to preview."), node="/")
        return Response(segment_preview(rule=body["rule"], user=request.user))


@extend_schema(tags=["segments"])
class SegmentRefreshView(APIView):
    permission_classes = [CanWrite]

    @extend_schema(summary="Start a refresh of the segment's membership", request=None,
                   responses={202: RefreshOutput, **errors(401, 403, 404), 409: CONFLICT})
    def post(self, request: Request, code: str) -> Response:
        refresh = segment_refresh_start(segment=_segment_or_404(code), actor=request.user,
                                        trigger="api")
        refresh.refresh_from_db()
        return Response(RefreshOutput(refresh).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["segments"])
class RefreshDetailView(APIView):
    permission_classes = [CanRead]

    @extend_schema(summary="A refresh: status, progress, counts",
                   responses={200: RefreshOutput, **errors(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(RefreshOutput(segment_refresh_get(refresh_id=pk)).data)


@extend_schema(tags=["segments"])
class SegmentMembersView(generics.ListAPIView):
    """Members of a segment that the caller may see (an RM: their own clients only)."""

    permission_classes = [CanRead]
    serializer_class = MemberOutput
    pagination_class = KeysetPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Client.objects.none()
        segment = _segment_or_404(self.kwargs["code"])
        return segment_members(segment=segment, user=self.request.user).only("id", "client_no")

    @extend_schema(summary="Client numbers of the segment's members (scoped to the caller)",
                   responses={200: MemberOutput(many=True), **errors(401, 403, 404)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

