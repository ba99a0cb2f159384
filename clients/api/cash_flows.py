"""Bulk cash flows (deposits, withdrawals, transfers) by flow_id: the data of the cash-inflow
scenario (API.md "Scenario data"). Rows are validated and written by the ingest engine."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import CashFlow
from .clients import CLIENT_NO_MAX
from .common import CanWrite, bulk_ingest
from .schemas import RowErrorsEnvelope, errors

MAX_BULK_ROWS = 10_000


class CashFlowRowInput(serializers.ModelSerializer):
    """Documents a row; rows are validated by the ingest engine (one place for the rules)."""

    client_no = serializers.CharField(max_length=CLIENT_NO_MAX)
    amount = serializers.DecimalField(
        max_digits=18, decimal_places=2,
        help_text="CNY; positive in, negative out: a deposit > 0, a withdrawal < 0, a transfer "
                  "either way, never 0.")

    class Meta:
        model = CashFlow
        fields = ["flow_id", "client_no", "at", "amount", "kind"]


CashFlowBulkResult = inline_serializer(name="CashFlowBulkResult", fields={
    "created": serializers.IntegerField(help_text="New flow_ids."),
    "updated": serializers.IntegerField(help_text="Known flow_ids whose values changed."),
    "unchanged": serializers.IntegerField(help_text="Known flow_ids resent unchanged.")})


@extend_schema(tags=["cash flows"])
class CashFlowBulkView(APIView):
    permission_classes = [CanWrite]

    @extend_schema(
        summary=f"Upsert up to {MAX_BULK_ROWS:,} cash flows by flow_id (atomic)",
        description="A deposit moves the client's first_funded_on back to its day when that "
                    "is empty or later.",
        request=CashFlowRowInput(many=True),
        responses={200: CashFlowBulkResult, 400: RowErrorsEnvelope, **errors(401, 403)},
    )
    def post(self, request: Request) -> Response:
        return bulk_ingest(request, kind="cash_flows", max_rows=MAX_BULK_ROWS)
