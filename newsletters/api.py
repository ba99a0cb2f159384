"""Newsletters over the API (API.md): publications, editions with their approval actions,
statistics and deliveries.

Reads need ops, compliance or admin (newsletters.access: the pages' rule; an RM or branch
manager gets a 403); composing (publications, editions, schedule/send/pause/resume/cancel)
needs ops or admin; approve and reject need compliance (the services enforce the same rules,
plus: the author never approves their own edition). Errors use the standard envelope; a
blocked submission (code "forbidden_phrases") also lists every match under "issues".
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clients.api.common import ActionView, require_object
from clients.api.schemas import ErrorEnvelope, errors
from clients.selectors import client_queryset_for
from core.api import KeysetPagination, OutputModelSerializer, error_body
from core.errors import ApplicationError
from core.permissions import HasCapability
from segments.models import Segment

from . import services
from .access import CanReadNewsletters
from .headers import validate_header_value
from .models import (
    Cadence,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionEvent,
    EditionSection,
    EditionStatus,
    ExclusionReason,
    Publication,
    SectionKind,
    SenderMode,
)
from .sections import BODY_MAX, TITLE_MAX, kinds_described
from .selectors import (
    edition_deliveries,
    edition_get,
    edition_list,
    edition_stats,
    publication_list,
)

CanCompose = HasCapability.of("newsletters.compose")
CanReview = HasCapability.of("newsletters.approve")
ERR_409 = {409: OpenApiResponse(ErrorEnvelope, description="Not allowed in this state")}


class ForbiddenPhrasesListed:
    """Mixin: a forbidden_phrases ApplicationError answers with the matches under "issues"."""

    def handle_exception(self, exc):
        if isinstance(exc, ApplicationError) and getattr(exc, "issues", None) is not None:
            body = error_body(exc.code, exc.message, exc.fields)
            body["issues"] = exc.issues
            return Response(body, status=exc.status)
        return super().handle_exception(exc)


# --- serializers ------------------------------------------------------------------------

class PublicationOutput(OutputModelSerializer):
    audience = serializers.SlugRelatedField(slug_field="code", read_only=True)
    sender_mode = serializers.ChoiceField(choices=SenderMode.choices, read_only=True)
    cadence = serializers.ChoiceField(choices=Cadence.choices, read_only=True)

    class Meta:
        model = Publication
        fields = ["id", "name", "slug", "description", "audience", "sender_mode", "from_name",
                  "from_email", "reply_to", "cadence", "tracking_enabled", "is_active",
                  "created_at", "updated_at"]
        read_only_fields = fields


class PublicationInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=64)
    description = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    audience = serializers.SlugRelatedField(slug_field="code", queryset=Segment.objects.all(),
                                            help_text="Audience segment code")
    sender_mode = serializers.ChoiceField(choices=SenderMode.choices, required=False)
    from_name = serializers.CharField(max_length=100, validators=[validate_header_value])
    from_email = serializers.EmailField(validators=[validate_header_value])
    reply_to = serializers.EmailField(required=False, allow_blank=True,
                                      validators=[validate_header_value])
    cadence = serializers.ChoiceField(choices=Cadence.choices, required=False)
    tracking_enabled = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)


class PublicationPatchInput(PublicationInput):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for f in self.fields.values():
            f.required = False


class SectionSerializer(serializers.Serializer):
    """A section as the API takes it. The fields document newsletters.sections; the rules
    themselves are checked once, by the service (the same check as the editor page), so an
    error names the section as "sections[<index from 0>].<field>" whichever way it came."""

    kind = serializers.ChoiceField(choices=SectionKind.choices)
    title = serializers.CharField(required=False, allow_blank=True, max_length=TITLE_MAX)
    body = serializers.CharField(required=False, allow_blank=True, max_length=BODY_MAX,
                                 trim_whitespace=False,
                                 help_text="Markdown; required for an editorial section")
    data = serializers.JSONField(required=False,
                                 help_text=f"Settings by kind: {kinds_described()}.")

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(_("Must be an object."))
        return dict(data)


class SectionOutput(OutputModelSerializer):
    kind = serializers.ChoiceField(choices=SectionKind.choices, read_only=True)
    data = serializers.JSONField(read_only=True)

    class Meta:
        model = EditionSection
        fields = ["position", "kind", "title", "body", "data"]
        read_only_fields = fields


class EventOutput(OutputModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = EditionEvent
        fields = ["at", "actor", "from_status", "to_status", "comment"]
        read_only_fields = fields


class EditionOutput(OutputModelSerializer):
    publication = serializers.PrimaryKeyRelatedField(read_only=True)
    status = serializers.ChoiceField(choices=EditionStatus.choices, read_only=True)
    author = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                               allow_null=True)

    class Meta:
        model = Edition
        fields = ["id", "publication", "number", "subject", "preheader", "status",
                  "content_version", "approved_version", "author", "approved_by", "approved_at",
                  "review_comment", "scheduled_at", "send_started_at", "sent_at",
                  "created_at", "updated_at"]
        read_only_fields = fields


class StatsOutput(serializers.Serializer):
    audience = serializers.IntegerField()
    recipients = serializers.IntegerField()
    excluded_total = serializers.IntegerField()
    excluded = serializers.DictField(child=serializers.IntegerField(),
                                     help_text="count per exclusion reason")
    by_status = serializers.DictField(child=serializers.IntegerField())
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    pending = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    rated = serializers.IntegerField()
    average_rating = serializers.FloatField(allow_null=True)
    ratings = serializers.DictField(child=serializers.IntegerField(),
                                    help_text="clients per rating, \"1\" to \"5\"")
    comments = serializers.IntegerField()
    unsubscribes = serializers.IntegerField()


class EditionDetailOutput(EditionOutput):
    sections = SectionOutput(many=True, read_only=True)
    events = EventOutput(many=True, read_only=True)
    stats = serializers.SerializerMethodField()

    class Meta(EditionOutput.Meta):
        fields = [*EditionOutput.Meta.fields, "sections", "events", "stats"]
        read_only_fields = fields

    @extend_schema_field(StatsOutput)
    def get_stats(self, edition: Edition) -> dict:
        return edition_stats(edition)


class EditionCreateInput(serializers.Serializer):
    publication = serializers.IntegerField(help_text="Publication id")
    subject = serializers.CharField(max_length=200, validators=[validate_header_value],
                                    help_text="One line: no line breaks or control characters")
    preheader = serializers.CharField(required=False, allow_blank=True, max_length=200)
    sections = SectionSerializer(many=True, required=False)


class EditionUpdateInput(serializers.Serializer):
    subject = serializers.CharField(required=False, max_length=200,
                                    validators=[validate_header_value],
                                    help_text="One line: no line breaks or control characters")
    preheader = serializers.CharField(required=False, allow_blank=True, max_length=200)
    sections = SectionSerializer(many=True, required=False)


class ApproveInput(serializers.Serializer):
    content_version = serializers.IntegerField(
        required=False, help_text="The version the reviewer read; 409 if it changed since.")
    comment = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class CommentInput(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class InRangeDateTimeField(serializers.DateTimeField):
    """A date-time that fits both its own offset and the server's time zone: year 1 or year
    9999 near the ends of the calendar would overflow on conversion (a 400, never a 500)."""

    def enforce_timezone(self, value):
        try:
            return super().enforce_timezone(value)
        except OverflowError:
            self.fail("overflow")


class ScheduleInput(serializers.Serializer):
    at = InRangeDateTimeField(help_text="When to send; must be in the future.")


class TestSendInput(serializers.Serializer):
    client_no = serializers.CharField(max_length=32,
                                      help_text="Render as this client; sent to your own address")


class DeliveryOutput(serializers.ModelSerializer):
    client_no = serializers.CharField(source="client.client_no", read_only=True)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, read_only=True)
    exclusion_reason = serializers.ChoiceField(choices=ExclusionReason.choices,
                                               allow_blank=True, read_only=True)

    class Meta:
        model = Delivery
        fields = ["client_no", "status", "exclusion_reason", "sent_at", "opened_at",
                  "clicked_at", "attempts"]
        read_only_fields = fields


class NewestFirst(KeysetPagination):
    ordering = "-id"


def _sections(data: dict) -> list[dict] | None:
    if "sections" not in data:
        return None
    return [dict(section) for section in data["sections"]]


def _publication_or_404(pk: int) -> Publication:
    publication = publication_list().filter(pk=pk).first()
    if publication is None:
        raise exceptions.NotFound()
    return publication


def _edition_or_404(pk: int) -> Edition:
    edition = edition_get(pk=pk)
    if edition is None:
        raise exceptions.NotFound()
    return edition


class ReadOrCompose:
    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [CanReadNewsletters()]
        return [CanCompose()]


# --- publications -----------------------------------------------------------------------

@extend_schema(tags=["newsletters"])
class PublicationListView(ReadOrCompose, APIView):
    @extend_schema(summary="All publications",
                   responses={200: PublicationOutput(many=True), **errors(401, 403)})
    def get(self, request: Request) -> Response:
        return Response(PublicationOutput(publication_list(), many=True).data)

    @extend_schema(summary="Create a publication", request=PublicationInput,
                   responses={201: PublicationOutput, **errors(400, 401, 403), **ERR_409})
    def post(self, request: Request) -> Response:
        serializer = PublicationInput(data=require_object(request.data))
        serializer.is_valid(raise_exception=True)
        publication = services.publication_create(actor=request.user, **serializer.validated_data)
        return Response(PublicationOutput(publication).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["newsletters"])
class PublicationDetailView(ReadOrCompose, APIView):
    @extend_schema(summary="One publication",
                   responses={200: PublicationOutput, **errors(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(PublicationOutput(_publication_or_404(pk)).data)

    @extend_schema(summary="Change a publication", request=PublicationPatchInput,
                   responses={200: PublicationOutput, **errors(400, 401, 403, 404), **ERR_409})
    def patch(self, request: Request, pk: int) -> Response:
        publication = _publication_or_404(pk)
        serializer = PublicationPatchInput(data=require_object(request.data))
        serializer.is_valid(raise_exception=True)
        publication = services.publication_update(publication=publication, actor=request.user,
                                                  **serializer.validated_data)
        return Response(PublicationOutput(publication).data)

    @extend_schema(summary="Delete a publication that has no editions",
                   responses={204: None, **errors(401, 403, 404), **ERR_409})
    def delete(self, request: Request, pk: int) -> Response:
        services.publication_delete(publication=_publication_or_404(pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- editions ---------------------------------------------------------------------------

@extend_schema(tags=["newsletters"])
class EditionListView(ForbiddenPhrasesListed, ReadOrCompose, APIView):
    pagination_class = NewestFirst  # the schema then documents the paginated envelope

    @extend_schema(summary="Editions, newest first",
                   parameters=[OpenApiParameter("publication", int, required=False),
                               OpenApiParameter("status", str, required=False,
                                                enum=EditionStatus.values)],
                   responses={200: EditionOutput(many=True), **errors(400, 401, 403, 404)})
    def get(self, request: Request) -> Response:
        publication = None
        raw = request.query_params.get("publication")
        if raw:
            if not (raw.isascii() and raw.isdigit()):
                raise exceptions.ValidationError({"publication": ["Expected an id."]})
            publication = _publication_or_404(int(raw))
        state = request.query_params.get("status", "")
        if state and state not in EditionStatus.values:
            raise exceptions.ValidationError({"status": [f"One of {EditionStatus.values}."]})
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(edition_list(publication=publication, status=state),
                                           request, view=self)
        return paginator.get_paginated_response(EditionOutput(page, many=True).data)

    @extend_schema(summary="Compose a new edition (a draft)", request=EditionCreateInput,
                   responses={201: EditionDetailOutput, **errors(400, 401, 403, 404)})
    def post(self, request: Request) -> Response:
        serializer = EditionCreateInput(data=require_object(request.data))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        edition = services.edition_create(
            publication=_publication_or_404(data["publication"]), subject=data["subject"],
            preheader=data.get("preheader", ""), sections=_sections(data) or [],
            author=request.user)
        return Response(EditionDetailOutput(_edition_or_404(edition.pk)).data,
                        status=status.HTTP_201_CREATED)


@extend_schema(tags=["newsletters"])
class EditionDetailView(ReadOrCompose, APIView):
    @extend_schema(summary="One edition with sections, history and delivery statistics",
                   responses={200: EditionDetailOutput, **errors(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(EditionDetailOutput(_edition_or_404(pk)).data)

    @extend_schema(summary="Change a draft or rejected edition (sections are replaced whole)",
                   request=EditionUpdateInput,
                   responses={200: EditionDetailOutput, **errors(400, 401, 403, 404), **ERR_409})
    def patch(self, request: Request, pk: int) -> Response:
        edition = _edition_or_404(pk)
        serializer = EditionUpdateInput(data=require_object(request.data))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.edition_update(edition=edition, actor=request.user,
                                subject=data.get("subject"), preheader=data.get("preheader"),
                                sections=_sections(data))
        return Response(EditionDetailOutput(_edition_or_404(pk)).data)


class _EditionAction(ForbiddenPhrasesListed, ActionView):
    """POST /editions/{id}/<action>/: validate the body, call one service, answer the edition."""

    def target(self, request: Request, pk: int) -> Edition:
        return _edition_or_404(pk)

    def answer(self, request: Request, pk: int) -> Response:
        return Response(EditionDetailOutput(_edition_or_404(pk)).data)


def _action_schema(summary: str, request=None):
    return extend_schema(tags=["newsletters"], summary=summary, request=request,
                         responses={200: EditionDetailOutput, **errors(400, 401, 403, 404),
                                    **ERR_409})


@_action_schema("Submit for approval (blocked by forbidden phrases)")
class EditionSubmitView(_EditionAction):
    permission_classes = [CanCompose]

    def perform(self, request, edition, data):
        services.edition_submit(edition=edition, actor=request.user)


@_action_schema("Approve (compliance; never the author)", ApproveInput)
class EditionApproveView(_EditionAction):
    permission_classes = [CanReview]
    input_class = ApproveInput

    def perform(self, request, edition, data):
        services.edition_approve(edition=edition, actor=request.user,
                                 content_version=data.get("content_version"),
                                 comment=data.get("comment", ""))


@_action_schema("Reject with a comment (compliance)", CommentInput)
class EditionRejectView(_EditionAction):
    permission_classes = [CanReview]
    input_class = CommentInput

    def perform(self, request, edition, data):
        services.edition_reject(edition=edition, actor=request.user,
                                comment=data.get("comment", ""))


@_action_schema("Schedule an approved edition", ScheduleInput)
class EditionScheduleView(_EditionAction):
    permission_classes = [CanCompose]
    input_class = ScheduleInput

    def perform(self, request, edition, data):
        services.edition_schedule(edition=edition, actor=request.user, at=data["at"])


@_action_schema("Send an approved or scheduled edition now")
class EditionSendView(_EditionAction):
    permission_classes = [CanCompose]

    def perform(self, request, edition, data):
        services.edition_send_now(edition=edition, actor=request.user)


@_action_schema("Pause sending")
class EditionPauseView(_EditionAction):
    permission_classes = [CanCompose]

    def perform(self, request, edition, data):
        services.edition_pause(edition=edition, actor=request.user)


@_action_schema("Resume sending")
class EditionResumeView(_EditionAction):
    permission_classes = [CanCompose]

    def perform(self, request, edition, data):
        services.edition_resume(edition=edition, actor=request.user)


@_action_schema("Cancel the edition", CommentInput)
class EditionCancelView(_EditionAction):
    permission_classes = [CanCompose]
    input_class = CommentInput

    def perform(self, request, edition, data):
        services.edition_cancel(edition=edition, actor=request.user,
                                comment=data.get("comment", ""))


@_action_schema("Send a test as a client, to your own address", TestSendInput)
class EditionTestSendView(_EditionAction):
    permission_classes = [CanReadNewsletters]
    input_class = TestSendInput

    def perform(self, request, edition, data):
        client = client_queryset_for(request.user).filter(client_no=data["client_no"]).first()
        if client is None:
            raise ApplicationError(_("No such client."), code="not_found", status=404,
                                   fields={"client_no": [_("unknown")]})
        services.edition_send_test(edition=edition, actor=request.user, client=client)


@extend_schema(tags=["newsletters"])
class EditionDeliveriesView(APIView):
    permission_classes = [CanReadNewsletters]
    pagination_class = KeysetPagination  # the schema then documents the paginated envelope

    @extend_schema(summary="The edition's outbox rows for the clients the caller may see",
                   responses={200: DeliveryOutput(many=True), **errors(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        edition = _edition_or_404(pk)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(edition_deliveries(edition=edition, user=request.user),
                                           request, view=self)
        return paginator.get_paginated_response(DeliveryOutput(page, many=True).data)
