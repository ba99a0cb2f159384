"""REST API of campaigns (shared/API.md "Campaigns"; docs/api.md). Thin: parse, call one
service or selector, answer. Campaigns are addressed by their code."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clients.api.common import ActionView, require_object, row_errors_response
from clients.api.schemas import errors
from clients.ingest import IngestRejected
from core.permissions import HasCapability
from outreach.models import Channel, TaskOutcome

from . import services
from .models import Campaign, CampaignMember, CampaignStatus, ExclusionReason
from .selectors import (
    campaign_get,
    campaign_list,
    campaign_members,
    campaign_results,
    members_converted_at,
)

CanSee = HasCapability.of("campaigns.view")
CanManage = HasCapability.of("campaigns.manage")
CanApprove = HasCapability.of("campaigns.approve")
CanRecordOutcomes = HasCapability.of("campaigns.outcomes")


class _Variant(serializers.Serializer):
    code = serializers.CharField()
    share = serializers.IntegerField()
    subject = serializers.CharField(required=False, allow_blank=True)
    body = serializers.CharField()


class _Step(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    delay_trading_days = serializers.IntegerField()
    variants = _Variant(many=True)
    when = serializers.ChoiceField(
        choices=["always", "no_response"], required=False,
        help_text="A later step of an always-on campaign: to every member (always), or only to "
                  "those whose previous step's contact got no response (no_response)")


class _Goal(serializers.Serializer):
    metric = serializers.ChoiceField(choices=["conversion", "funded", "net_inflow", "aum",
                                              "response"])
    target = serializers.FloatField()
    window_days = serializers.IntegerField()


class _Audience(serializers.Serializer):
    include = serializers.ListField(child=serializers.CharField())
    exclude = serializers.ListField(child=serializers.CharField())


class CampaignDoc(serializers.Serializer):
    """The campaign as sent and answered (the service validates; errors name the field)."""

    code = serializers.CharField()
    name = serializers.CharField()
    scenario = serializers.CharField()
    goal = _Goal()
    audience = _Audience()
    products = serializers.ListField(child=serializers.CharField())
    priority = serializers.IntegerField(help_text="1 = highest … 9")
    holdout_pct = serializers.IntegerField(help_text="0–50")
    starts_at = serializers.DateTimeField(allow_null=True, required=False)
    ends_at = serializers.DateTimeField(allow_null=True, required=False)
    always_on = serializers.BooleanField(required=False)
    reentry_cooldown_days = serializers.IntegerField(
        required=False, help_text="always on: days before a client whose journey is over may "
                                  "enter again (default 30)")
    exposure_product_types = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="market turbulence: the affected product types; RM calls go first to the "
                  "clients with the most money in them")
    steps = _Step(many=True)


def campaign_json(campaign: Campaign) -> dict:
    launch = getattr(campaign, "launch", None) if campaign.launched_at or \
        campaign.status == CampaignStatus.SCHEDULED else None
    return {
        "code": campaign.code, "name": campaign.name, "scenario": campaign.scenario,
        "goal": campaign.goal, "audience": campaign.audience, "products": campaign.products,
        "priority": campaign.priority, "holdout_pct": campaign.holdout_pct,
        "starts_at": campaign.starts_at, "ends_at": campaign.ends_at,
        "always_on": campaign.always_on,
        "reentry_cooldown_days": campaign.reentry_cooldown_days,
        "exposure_product_types": campaign.exposure_product_types, "journey_day":
            campaign.journey_day, "steps": campaign.steps, "arms": campaign.arms,
        "status": campaign.status, "content_version": campaign.content_version,
        "author": campaign.author.username if campaign.author_id else None,
        "approved_by": campaign.approved_by.username if campaign.approved_by_id else None,
        "approved_at": campaign.approved_at, "review_comment": campaign.review_comment,
        "launched_at": campaign.launched_at, "launch_day": campaign.launch_day,
        "steps_done": campaign.steps_done, "completed_at": campaign.completed_at,
        "launch": None if launch is None else {
            "status": launch.status, "counts": launch.counts, "timings": launch.timings,
            "error": launch.error},
        "created_at": campaign.created_at, "updated_at": campaign.updated_at,
    }


class CampaignOutput(CampaignDoc):
    arms = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=CampaignStatus.choices)
    content_version = serializers.IntegerField()
    author = serializers.CharField(allow_null=True)
    approved_by = serializers.CharField(allow_null=True)
    approved_at = serializers.DateTimeField(allow_null=True)
    review_comment = serializers.CharField()
    launched_at = serializers.DateTimeField(allow_null=True)
    launch_day = serializers.DateField(allow_null=True)
    steps_done = serializers.IntegerField()
    completed_at = serializers.DateTimeField(allow_null=True)
    launch = serializers.DictField(allow_null=True)


def _answer(campaign: Campaign, code: int = status.HTTP_200_OK) -> Response:
    return Response(CampaignOutput(campaign_json(campaign)).data, status=code)


class _ListQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=CampaignStatus.values, required=False)
    q = serializers.CharField(required=False, max_length=100)


@extend_schema(tags=["campaigns"])
class CampaignListView(generics.ListAPIView):
    permission_classes = [CanSee]
    serializer_class = CampaignOutput
    filter_backends: list = []

    def get_queryset(self):
        query = _ListQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return campaign_list(**query.validated_data)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(
            [CampaignOutput(campaign_json(c)).data for c in page])

    @extend_schema(summary="Campaigns, newest first", parameters=[_ListQuery],
                   responses={200: CampaignOutput(many=True), **errors(400, 401, 403, 404)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Create a campaign (a draft)", request=CampaignDoc,
                   responses={201: CampaignOutput, **errors(400, 401, 403)})
    def post(self, request: Request) -> Response:
        if not CanManage().has_permission(request, self):
            self.permission_denied(request)
        campaign = services.campaign_create(data=require_object(request.data),
                                            actor=request.user)
        return _answer(campaign, status.HTTP_201_CREATED)


@extend_schema(tags=["campaigns"])
class CampaignDetailView(APIView):
    permission_classes = [CanSee]

    def _manage(self, request):
        if not CanManage().has_permission(request, self):
            self.permission_denied(request)

    @extend_schema(summary="One campaign", responses={200: CampaignOutput,
                                                      **errors(401, 403, 404)})
    def get(self, request: Request, code: str) -> Response:
        return _answer(campaign_get(code=code, user=request.user))

    @extend_schema(summary="Change a campaign (an approved one goes back to draft)",
                   request=CampaignDoc,
                   responses={200: CampaignOutput, **errors(400, 401, 403, 404, 409)})
    def patch(self, request: Request, code: str) -> Response:
        self._manage(request)
        campaign = services.campaign_update(campaign=campaign_get(code=code, user=request.user),
                                            data=require_object(request.data),
                                            actor=request.user)
        return _answer(campaign)

    @extend_schema(summary="Delete a campaign that never launched",
                   responses={204: None, **errors(401, 403, 404, 409)})
    def delete(self, request: Request, code: str) -> Response:
        self._manage(request)
        services.campaign_delete(campaign=campaign_get(code=code, user=request.user),
                                 actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _CommentInput(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class _Action(ActionView):
    """POST /campaigns/{code}/<action>/: one service, the campaign as the answer."""

    def target(self, request: Request, code: str) -> Campaign:
        return campaign_get(code=code, user=request.user)

    def answer(self, request: Request, code: str) -> Response:
        return _answer(campaign_get(code=code))


def _action(summary: str, request=None):
    return extend_schema(tags=["campaigns"], summary=summary, request=request,
                         responses={200: CampaignOutput, **errors(400, 401, 403, 404, 409)})


@_action("Submit for approval (blocked by forbidden phrases)")
class CampaignSubmitView(_Action):
    permission_classes = [CanManage]

    def perform(self, request, campaign, data):
        services.campaign_submit(campaign=campaign, actor=request.user)


@_action("Approve (compliance; never the author)", _CommentInput)
class CampaignApproveView(_Action):
    permission_classes = [CanApprove]
    input_class = _CommentInput

    def perform(self, request, campaign, data):
        services.campaign_approve(campaign=campaign, actor=request.user,
                                  comment=data.get("comment", ""))


@_action("Reject with a comment (compliance)", _CommentInput)
class CampaignRejectView(_Action):
    permission_classes = [CanApprove]
    input_class = _CommentInput

    def perform(self, request, campaign, data):
        services.campaign_reject(campaign=campaign, actor=request.user,
                                 comment=data.get("comment", ""))


@_action("Launch: freeze the target list, assign arms, reserve contacts (a job)")
class CampaignLaunchView(_Action):
    permission_classes = [CanManage]

    def perform(self, request, campaign, data):
        services.campaign_launch(campaign=campaign, actor=request.user)


@_action("Pause a running campaign")
class CampaignPauseView(_Action):
    permission_classes = [CanManage]

    def perform(self, request, campaign, data):
        services.campaign_pause(campaign=campaign, actor=request.user)


@_action("Resume a paused campaign")
class CampaignResumeView(_Action):
    permission_classes = [CanManage]

    def perform(self, request, campaign, data):
        services.campaign_resume(campaign=campaign, actor=request.user)


@_action("Cancel (planned contacts are released)")
class CampaignCancelView(_Action):
    permission_classes = [CanManage]

    def perform(self, request, campaign, data):
        services.campaign_cancel(campaign=campaign, actor=request.user)


class _MembersQuery(serializers.Serializer):
    arm = serializers.CharField(required=False, max_length=16)
    excluded = serializers.BooleanField(required=False, allow_null=True, default=None)


class _Contact(serializers.Serializer):
    step = serializers.IntegerField()
    channel = serializers.CharField()
    variant = serializers.CharField()
    status = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True)


class CampaignMemberOutput(serializers.Serializer):
    client_no = serializers.CharField(source="client.client_no")
    arm = serializers.CharField()
    exclusion_reason = serializers.ChoiceField(choices=["", *ExclusionReason.values])
    product_code = serializers.CharField()
    tier = serializers.CharField()
    contacts = serializers.SerializerMethodField()
    entered_at = serializers.DateTimeField()
    converted_at = serializers.DateTimeField(
        allow_null=True, help_text="the first purchase that counts as converted (results' rule)")

    def get_contacts(self, member: CampaignMember) -> list[dict]:
        return [{"step": c.step, "channel": c.channel, "variant": c.variant, "status": c.status,
                 "at": c.at.isoformat() if c.at else None}
                for c in getattr(member.client, "campaign_contacts", [])]


@extend_schema(tags=["campaigns"])
class CampaignMembersView(generics.ListAPIView):
    permission_classes = [CanSee]
    serializer_class = CampaignMemberOutput
    filter_backends: list = []

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        rows = page if page is not None else list(queryset)
        converted = members_converted_at(campaign=self.campaign,
                                         client_ids=[m.client_id for m in rows])
        for member in rows:
            member.converted_at = converted.get(member.client_id)
        return page

    def get_queryset(self):
        query = _MembersQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        campaign = self.campaign = campaign_get(code=self.kwargs["code"], user=self.request.user)
        return campaign_members(campaign=campaign, user=self.request.user,
                                arm=query.validated_data.get("arm", ""),
                                excluded=query.validated_data.get("excluded"))

    @extend_schema(summary="The target list (scoped: an RM sees their clients)",
                   parameters=[_MembersQuery,
                               OpenApiParameter("excluded", bool, required=False)],
                   responses={200: CampaignMemberOutput(many=True), **errors(400, 401, 403, 404)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class _Arm(serializers.Serializer):
    arm = serializers.CharField()
    members = serializers.IntegerField()
    contacted = serializers.IntegerField()
    delivered = serializers.IntegerField()
    responded = serializers.IntegerField()
    converted = serializers.IntegerField()
    conversion_rate = serializers.FloatField(allow_null=True)
    revenue = serializers.FloatField()
    net_inflow = serializers.FloatField(allow_null=True)


class _Uplift(serializers.Serializer):
    variant = serializers.CharField()
    absolute = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    method = serializers.CharField()


class _Srm(serializers.Serializer):
    p_value = serializers.FloatField(allow_null=True)
    flagged = serializers.BooleanField()


class ResultsOutput(serializers.Serializer):
    metric = serializers.CharField(allow_null=True)
    arms = _Arm(many=True)
    uplift = _Uplift(many=True)
    srm = _Srm()
    mde = serializers.FloatField(allow_null=True)


@extend_schema(tags=["campaigns"])
class CampaignResultsView(APIView):
    permission_classes = [CanSee]

    @extend_schema(summary="Results per arm, uplift against the holdout, SRM, MDE",
                   responses={200: ResultsOutput, **errors(401, 403, 404)})
    def get(self, request: Request, code: str) -> Response:
        campaign = campaign_get(code=code, user=request.user)
        return Response(ResultsOutput(campaign_results(campaign=campaign)).data)


class _Outcome(serializers.Serializer):
    client_no = serializers.CharField()
    step = serializers.IntegerField()
    outcome = serializers.ChoiceField(choices=TaskOutcome.choices)
    at = serializers.DateTimeField(required=False)
    note = serializers.CharField(required=False, allow_blank=True)


class _OutcomesRecorded(serializers.Serializer):
    recorded = serializers.IntegerField()


@extend_schema(tags=["campaigns"])
class CampaignOutcomesView(APIView):
    permission_classes = [CanRecordOutcomes]

    @extend_schema(summary="Call outcomes from the call centre (atomic, per-row errors)",
                   request=_Outcome(many=True),
                   responses={200: _OutcomesRecorded, **errors(400, 401, 403, 404)})
    def post(self, request: Request, code: str) -> Response:
        campaign = campaign_get(code=code, user=request.user)
        try:
            return Response(services.campaign_outcomes_record(
                campaign=campaign, rows=request.data, actor=request.user))
        except IngestRejected as exc:
            return row_errors_response(exc)
