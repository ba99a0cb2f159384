"""Analytics over the API (shared/API.md "Analytics"): KPIs over time, retention, funnel,
channels, newsletters, and the refresh of the rollups.

Thin views: filters parsed by `selectors.filters_from`, one selector per answer (the pages and
their exports call the same ones). Filters `from`, `to`, `branch`, `rm`, `segment`, `tier` on
every read; `?format=csv|xlsx` downloads the table instead (an audited export). A bad value is a
400 naming the parameter; a branch or RM outside the caller's scope is a 403 naming it.
"""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clients.api.common import require_object
from clients.api.schemas import errors
from clients.api.scoring import ProgressOutput
from core.errors import ApplicationError
from core.models import AuditAction
from core.permissions import HasCapability
from core.services import audit_record
from core.spreadsheet import csv_lines, xlsx_bytes

from . import selectors
from .models import AnalyticsRefresh
from .services import refresh_start

CanView = HasCapability.of("analytics.view")
CanRefresh = HasCapability.of("analytics.refresh")
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

FILTER_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (default: 12 months "
                     "before `to`)"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (default: the figures' "
                     "as-of date)"),
    OpenApiParameter("branch", OpenApiTypes.STR, description="Branch code"),
    OpenApiParameter("rm", OpenApiTypes.STR, description="Username of a relationship manager"),
    OpenApiParameter("segment", OpenApiTypes.STR, description="Segment code (any kind)"),
    OpenApiParameter("tier", OpenApiTypes.STR, description="Value tier code"),
    OpenApiParameter("format", OpenApiTypes.STR, enum=list(EXPORT_TYPES),
                     description="Download the table as CSV or XLSX instead of JSON"),
]


# --- documentation of the answers ----------------------------------------------------------------
class AnalyticsKpiPointOutput(serializers.Serializer):
    period = serializers.CharField(help_text="2026-11, 2026-W47 or 2026-11-30")
    clients = serializers.IntegerField()
    active_clients = serializers.IntegerField()
    aum = serializers.FloatField()
    revenue = serializers.FloatField()
    new_accounts = serializers.IntegerField()
    funded_rate = serializers.FloatField(allow_null=True)


class AnalyticsKpisOutput(serializers.Serializer):
    as_of = serializers.DateField()
    interval = serializers.CharField()
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    series = AnalyticsKpiPointOutput(many=True)
    previous = AnalyticsKpiPointOutput(many=True,
                                       help_text="The window of equal length just before")


class AnalyticsCohortOutput(serializers.Serializer):
    cohort = serializers.CharField(help_text="Opening month, e.g. 2025-01")
    size = serializers.IntegerField()
    retention = serializers.ListField(child=serializers.FloatField(),
                                      help_text="Share of the cohort buying in month 0, 1, …")


class AnalyticsRetentionOutput(serializers.Serializer):
    as_of = serializers.DateField()
    cohorts = AnalyticsCohortOutput(many=True)


class AnalyticsFunnelStepOutput(serializers.Serializer):
    step = serializers.ChoiceField(choices=list(selectors.FUNNEL_STEPS))
    clients = serializers.IntegerField()
    conversion_from_previous = serializers.FloatField(allow_null=True)
    median_days_from_previous = serializers.FloatField(allow_null=True)


class AnalyticsFunnelOutput(serializers.Serializer):
    as_of = serializers.DateField()
    steps = AnalyticsFunnelStepOutput(many=True)


class AnalyticsChannelOutput(serializers.Serializer):
    channel = serializers.CharField()
    attempted = serializers.IntegerField()
    delivered = serializers.IntegerField()
    responded = serializers.IntegerField()
    converted = serializers.IntegerField()


class AnalyticsEditionOutput(serializers.Serializer):
    edition_id = serializers.IntegerField()
    publication = serializers.CharField()
    title = serializers.CharField()
    sent_at = serializers.DateTimeField()
    recipients = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    rated = serializers.IntegerField()
    rating_avg = serializers.FloatField(allow_null=True)
    comments = serializers.IntegerField()
    unsubscribes = serializers.IntegerField()


class AnalyticsNewslettersOutput(serializers.Serializer):
    as_of = serializers.DateField()
    editions = AnalyticsEditionOutput(many=True)


class AnalyticsRefreshOutput(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    percent = serializers.IntegerField(source="percent_done", read_only=True)
    status = serializers.CharField(read_only=True,
                                   help_text="One of: queued, running, succeeded, failed")
    kind = serializers.CharField(read_only=True, help_text="full or incremental")

    class Meta:
        model = AnalyticsRefresh
        fields = ["id", "kind", "status", "trigger", "progress", "percent", "touched", "as_of",
                  "error", "created_at", "started_at", "finished_at"]
        read_only_fields = fields

    @extend_schema_field(ProgressOutput)
    def get_progress(self, refresh: AnalyticsRefresh) -> dict:
        return {"done": refresh.progress_done, "total": refresh.progress_total}


class RefreshInput(serializers.Serializer):
    full = serializers.BooleanField(required=False, default=False,
                                    help_text="Rebuild everything instead of the clients "
                                              "touched since the last refresh")


# --- views ---------------------------------------------------------------------------------------
class TableView(APIView):
    """GET: the selector's answer as JSON, or one of its tables as CSV/XLSX (`format`)."""

    permission_classes = [CanView]
    table = ""

    def perform_content_negotiation(self, request, force=False):
        if request.query_params.get("format") in EXPORT_TYPES:
            return JSONRenderer(), JSONRenderer.media_type  # the answer is a file, not JSON
        return super().perform_content_negotiation(request, force=True)

    def answer(self, request: Request, filters: selectors.Filters) -> dict:
        raise NotImplementedError

    def payload(self, answer: dict):
        return answer

    def rows(self, answer: dict) -> list[list]:
        raise NotImplementedError

    def get(self, request: Request) -> Response | HttpResponse:
        fmt = request.query_params.get("format", "")
        if fmt and fmt not in EXPORT_TYPES and fmt != "json":
            raise ApplicationError(_("Choose csv or xlsx."),
                                   fields={"format": [_("Choose csv or xlsx.")]})
        filters = selectors.filters_from(request.query_params, user=request.user)
        answer = self.answer(request, filters)
        if fmt in EXPORT_TYPES:
            return self.download(request, fmt, answer)
        return Response(self.payload(answer))

    def download(self, request: Request, fmt: str, answer: dict) -> HttpResponse:
        audit_record(action=AuditAction.EXPORT, actor=request.user, object_type="analytics",
                     object_id=self.table,
                     detail={"format": fmt, "filters": {
                         k: request.query_params[k] for k in
                         ("from", "to", "branch", "rm", "segment", "tier", "interval", "months")
                         if request.query_params.get(k)}})
        rows = self.rows(answer)
        name = f"analytics-{self.table}-{timezone.localtime():%Y%m%d}.{fmt}"
        if fmt == "csv":
            response = StreamingHttpResponse(csv_lines(rows), content_type=EXPORT_TYPES[fmt])
        else:
            response = HttpResponse(xlsx_bytes(rows, title=self.table),
                                    content_type=EXPORT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def _table(items: list[dict], keys: list[str]) -> list[list]:
    return [keys, *([item[k] for k in keys] for item in items)]


KPI_KEYS = ["period", "clients", "active_clients", "aum", "revenue", "new_accounts",
            "funded_rate"]


class KpisView(TableView):
    table = "kpis"

    @extend_schema(tags=["analytics"], summary="Clients, active clients, AUM, revenue, new "
                   "accounts and funded rate over time, with the window before",
                   parameters=[OpenApiParameter("interval", OpenApiTypes.STR,
                                                enum=list(selectors.INTERVALS)),
                               *FILTER_PARAMETERS],
                   responses={200: AnalyticsKpisOutput, **errors(400, 401, 403)})
    def get(self, request: Request):
        return super().get(request)

    def answer(self, request, filters):
        return selectors.kpi_series(user=request.user, filters=filters,
                                    interval=request.query_params.get("interval") or "month")

    def rows(self, answer):
        return _table(answer["series"], KPI_KEYS)


class RetentionView(TableView):
    table = "retention"

    @extend_schema(tags=["analytics"], summary="Retention by opening-month cohort",
                   parameters=[OpenApiParameter("months", OpenApiTypes.INT,
                                                description="Cohorts shown, 1 to 24 (12)"),
                               *FILTER_PARAMETERS],
                   responses={200: AnalyticsRetentionOutput, **errors(400, 401, 403)})
    def get(self, request: Request):
        return super().get(request)

    def answer(self, request, filters):
        raw = request.query_params.get("months") or "12"
        try:
            months = int(raw)
        except ValueError:
            raise ApplicationError(_("Choose between 1 and 24 months."), fields={
                "months": [_("Choose between 1 and 24 months.")]}) from None
        return selectors.retention(user=request.user, filters=filters, months=months)

    def rows(self, answer):
        width = max((len(c["retention"]) for c in answer["cohorts"]), default=0)
        return [["cohort", "size", *(f"m{k}" for k in range(width))],
                *([c["cohort"], c["size"], *c["retention"]] for c in answer["cohorts"])]


class FunnelView(TableView):
    table = "funnel"

    @extend_schema(tags=["analytics"], summary="Opened → funded → first purchase → repeat "
                   "purchase, for accounts opened in the window",
                   parameters=FILTER_PARAMETERS,
                   responses={200: AnalyticsFunnelOutput, **errors(400, 401, 403)})
    def get(self, request: Request):
        return super().get(request)

    def answer(self, request, filters):
        return selectors.funnel(user=request.user, filters=filters)

    def rows(self, answer):
        return _table(answer["steps"], ["step", "clients", "conversion_from_previous",
                                        "median_days_from_previous"])


class ChannelsView(TableView):
    table = "channels"

    @extend_schema(tags=["analytics"], summary="Reach and response per channel",
                   parameters=FILTER_PARAMETERS,
                   responses={200: AnalyticsChannelOutput(many=True), **errors(400, 401, 403)})
    def get(self, request: Request):
        return super().get(request)

    def answer(self, request, filters):
        return selectors.channels(user=request.user, filters=filters)

    def payload(self, answer):
        return answer["channels"]

    def rows(self, answer):
        return _table(answer["channels"], ["channel", "attempted", "delivered", "responded",
                                           "converted"])


EDITION_KEYS = ["edition_id", "publication", "title", "sent_at", "recipients", "opened",
                "clicked", "rated", "rating_avg", "comments", "unsubscribes"]


class NewslettersView(TableView):
    table = "newsletters"

    @extend_schema(tags=["analytics"], summary="Engagement per newsletter edition",
                   parameters=FILTER_PARAMETERS,
                   responses={200: AnalyticsNewslettersOutput, **errors(400, 401, 403)})
    def get(self, request: Request):
        return super().get(request)

    def answer(self, request, filters):
        return selectors.newsletters(user=request.user, filters=filters)

    def rows(self, answer):
        return _table(answer["editions"], EDITION_KEYS)


class RefreshView(APIView):
    permission_classes = [CanRefresh]

    @extend_schema(tags=["analytics"], summary="Bring the rollups up to date now (answers the "
                   "job; the one already waiting if there is one)", request=RefreshInput,
                   responses={202: AnalyticsRefreshOutput, **errors(400, 401, 403)})
    def post(self, request: Request) -> Response:
        data = require_object(request.data) if request.data else {}
        serializer = RefreshInput(data=data)
        serializer.is_valid(raise_exception=True)
        refresh = refresh_start(user=request.user, full=serializer.validated_data["full"],
                                trigger="api")
        refresh.refresh_from_db()
        return Response(AnalyticsRefreshOutput(refresh).data, status=status.HTTP_202_ACCEPTED)


class RefreshDetailView(APIView):
    permission_classes = [CanRefresh]

    @extend_schema(tags=["analytics"], summary="A refresh of the rollups: status, progress",
                   responses={200: AnalyticsRefreshOutput, **errors(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        refresh = selectors.refresh_get(refresh_id=pk)
        if refresh is None:
            raise ApplicationError(_("No such refresh."), code="not_found", status=404)
        return Response(AnalyticsRefreshOutput(refresh).data)
