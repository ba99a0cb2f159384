"""A client's holdings (read, replace as of a date) and transactions (read)."""

from datetime import date

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import KeysetPagination, OutputModelSerializer

from ..models import Client, Holding, Transaction
from ..selectors import client_get, holdings_for_client, transactions_for_client
from ..services import holdings_replace
from ..validators import validate_plausible_date
from .clients import CLIENT_NO_MAX
from .common import (
    CanRead,
    ReadOrWrite,
    key_or_404,
    require_object,
    row_errors_response,
    rows_or_400,
)
from .schemas import RowErrorsEnvelope, errors

MAX_HOLDINGS = 10_000


class HoldingOutput(OutputModelSerializer):
    product_code = serializers.CharField(source="product.product_code", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)
    product_type = serializers.CharField(source="product.product_type", read_only=True)
    product_risk_level = serializers.CharField(source="product.risk_level", read_only=True)

    class Meta:
        model = Holding
        fields = ["product_code", "product_name", "product_type", "product_risk_level",
                  "quantity", "market_value", "maturity_date"]
        read_only_fields = fields


HoldingsOutput = inline_serializer(
    name="Holdings",
    fields={"client_no": serializers.CharField(),
            "as_of": serializers.DateField(allow_null=True),
            "holdings": HoldingOutput(many=True)},
)


class HoldingRowInput(serializers.ModelSerializer):
    """Documents a row; rows are validated by the ingest engine (one place for the rules)."""

    product_code = serializers.CharField(max_length=32)

    class Meta:
        model = Holding
        fields = ["product_code", "quantity", "market_value", "maturity_date"]
        extra_kwargs = {"maturity_date": {
            "help_text": "When this position matures (optional; null or not sent: none of its "
                         "own, the product's maturity_date applies)."}}


class HoldingsReplaceInput(serializers.Serializer):
    as_of = serializers.DateField(validators=[validate_plausible_date])
    holdings = HoldingRowInput(many=True, help_text="The complete holdings on `as_of`.")


class AsOfQuery(serializers.Serializer):
    as_of = serializers.DateField(required=False, validators=[validate_plausible_date])


class AsOfInput(serializers.Serializer):
    as_of = serializers.DateField(validators=[validate_plausible_date])


def _holdings_body(client: Client, as_of: date | None, rows) -> dict:
    return {"client_no": client.client_no, "as_of": as_of,
            "holdings": HoldingOutput(rows, many=True).data}


@extend_schema(tags=["holdings"])
class ClientHoldingsView(ReadOrWrite, APIView):
    @extend_schema(
        summary="The client's holdings on the latest date (or ?as_of=)",
        parameters=[OpenApiParameter("as_of", date, description="Default: the latest date.")],
        responses={200: HoldingsOutput, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, client_no: str) -> Response:
        key_or_404(client_no, max_length=CLIENT_NO_MAX)
        query = AsOfQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        client = client_get(user=request.user, client_no=client_no)
        as_of = query.validated_data.get("as_of")
        if as_of is None:
            rows = list(holdings_for_client(client=client))
            as_of = rows[0].as_of if rows else None
        else:
            rows = list(Holding.objects.filter(client=client, as_of=as_of)
                        .select_related("product").order_by("-market_value"))
        return Response(_holdings_body(client, as_of, rows))

    @extend_schema(
        summary="Replace the client's holdings as of a date (atomic)",
        request=HoldingsReplaceInput,
        responses={200: HoldingsOutput, 400: RowErrorsEnvelope, **errors(401, 403, 404)},
    )
    def put(self, request: Request, client_no: str) -> Response:
        from ..ingest import IngestRejected  # pandas: loaded on the first upload, not at start

        key_or_404(client_no, max_length=CLIENT_NO_MAX)
        body = require_object(request.data)
        head = AsOfInput(data={"as_of": body.get("as_of")})
        head.is_valid(raise_exception=True)
        as_of = head.validated_data["as_of"]
        rows = rows_or_400(body.get("holdings"), max_rows=MAX_HOLDINGS, name="holdings")
        client = client_get(user=request.user, client_no=client_no)
        try:
            saved = holdings_replace(client=client, as_of=as_of, holdings=rows,
                                     actor=request.user)
        except IngestRejected as exc:
            return row_errors_response(exc)
        return Response(_holdings_body(client, as_of, saved))


class TransactionOutput(OutputModelSerializer):
    product_code = serializers.CharField(source="product.product_code", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)

    class Meta:
        model = Transaction
        fields = ["txn_id", "product_code", "product_name", "traded_at", "amount", "revenue",
                  "channel"]
        read_only_fields = fields


class NewestFirstPagination(KeysetPagination):
    ordering = ("-traded_at", "-id")


@extend_schema(tags=["transactions"])
class ClientTransactionsView(generics.ListAPIView):
    permission_classes = [CanRead]
    serializer_class = TransactionOutput
    pagination_class = NewestFirstPagination
    filter_backends: list = []

    def get_queryset(self):
        client_no = key_or_404(self.kwargs["client_no"], max_length=CLIENT_NO_MAX)
        client = client_get(user=self.request.user, client_no=client_no)
        return transactions_for_client(client=client)

    @extend_schema(summary="The client's purchases, newest first (cursor-paginated)",
                   responses={200: TransactionOutput(many=True), **errors(401, 403, 404)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
