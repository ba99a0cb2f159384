"""Products (upsert by product_code, list, detail), branches (upsert by code), bulk purchases."""

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import OutputModelSerializer
from core.models import Branch
from core.services import branch_upsert

from ..models import Product, ProductRiskLevel, ProductType, Transaction
from ..services import product_upsert
from ..validators import validate_plausible_date
from .common import (
    CanRead,
    CanWrite,
    ReadOrWrite,
    bulk_ingest,
    check_body_key,
    key_or_400,
    key_or_404,
    require_object,
)
from .schemas import RowErrorsEnvelope, errors

PRODUCT_CODE_MAX = Product._meta.get_field("product_code").max_length
BRANCH_CODE_MAX = Branch._meta.get_field("code").max_length
MAX_BULK_ROWS = 10_000


class ProductSerializer(OutputModelSerializer):
    """Read and write shape of a product; choices and lengths come from the model."""

    product_code = serializers.CharField(required=False, max_length=PRODUCT_CODE_MAX,
                                         help_text="Optional in a PUT; must equal the URL's.")

    class Meta:
        model = Product
        fields = ["product_code", "name", "product_type", "risk_level", "is_active",
                  "maturity_date", "updated_at"]
        read_only_fields = ["updated_at"]
        extra_kwargs = {"maturity_date": {
            "validators": [validate_plausible_date],
            "help_text": "When the product matures (fixed income, wealth management); null "
                         "for none. Optional in a PUT: not sent keeps the current value."}}


class ProductFilter(django_filters.FilterSet):
    product_type = django_filters.ChoiceFilter(choices=ProductType.choices)
    risk_level = django_filters.ChoiceFilter(choices=ProductRiskLevel.choices)
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Product
        fields = ["product_type", "risk_level", "is_active"]


@extend_schema(tags=["products"])
class ProductListView(generics.ListAPIView):
    permission_classes = [CanRead]
    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    queryset = Product.objects.all()

    @extend_schema(summary="List products", responses={200: ProductSerializer(many=True),
                                                       **errors(400, 401, 403, 404)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["products"])
class ProductDetailView(ReadOrWrite, APIView):
    @extend_schema(summary="One product", responses={200: ProductSerializer,
                                                     **errors(401, 403, 404)})
    def get(self, request: Request, product_code: str) -> Response:
        key_or_404(product_code, max_length=PRODUCT_CODE_MAX)
        product = Product.objects.filter(product_code=product_code).first()
        if product is None:
            raise exceptions.NotFound("No such product.")
        return Response(ProductSerializer(product).data)

    @extend_schema(summary="Create or update a product by product_code (idempotent)",
                   request=ProductSerializer,
                   responses={200: ProductSerializer, 201: ProductSerializer,
                              **errors(400, 401, 403)})
    def put(self, request: Request, product_code: str) -> Response:
        key_or_400(product_code, name="product_code", max_length=PRODUCT_CODE_MAX)
        body = require_object(request.data)
        check_body_key(body, name="product_code", value=product_code)
        serializer = ProductSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        extra = {"maturity_date": data["maturity_date"]} if "maturity_date" in data else {}
        product, created = product_upsert(product_code=product_code, name=data["name"],
                                          product_type=data["product_type"],
                                          risk_level=data["risk_level"],
                                          is_active=data.get("is_active"), **extra)
        return Response(ProductSerializer(product).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class BranchSerializer(OutputModelSerializer):
    class Meta:
        model = Branch
        fields = ["code", "name", "city"]
        read_only_fields = ["code"]


@extend_schema(tags=["branches"])
class BranchDetailView(APIView):
    permission_classes = [CanWrite]

    @extend_schema(summary="Create or update a branch by code (idempotent)",
                   request=BranchSerializer,
                   responses={200: BranchSerializer, 201: BranchSerializer,
                              **errors(400, 401, 403)})
    def put(self, request: Request, code: str) -> Response:
        key_or_400(code, name="code", max_length=BRANCH_CODE_MAX)
        body = require_object(request.data)
        check_body_key(body, name="code", value=code)
        serializer = BranchSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "city" not in data:  # like clients: a field not sent keeps its value
            data["city"] = Branch.objects.filter(code=code).values_list("city", flat=True).first()
        branch, created = branch_upsert(code=code, name=data["name"], city=data["city"] or "")
        return Response(BranchSerializer(branch).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TransactionRowInput(serializers.ModelSerializer):
    """Documents a row; rows are validated by the ingest engine (one place for the rules)."""

    client_no = serializers.CharField(max_length=32)
    product_code = serializers.CharField(max_length=PRODUCT_CODE_MAX)

    class Meta:
        model = Transaction
        fields = ["txn_id", "client_no", "product_code", "traded_at", "amount", "revenue",
                  "channel"]


BulkResult = inline_serializer(name="BulkResult", fields={
    "created": serializers.IntegerField(help_text="New txn_ids."),
    "updated": serializers.IntegerField(help_text="Known txn_ids whose values changed."),
    "unchanged": serializers.IntegerField(help_text="Known txn_ids resent unchanged.")})


@extend_schema(tags=["transactions"])
class TransactionBulkView(APIView):
    permission_classes = [CanWrite]

    @extend_schema(
        summary=f"Upsert up to {MAX_BULK_ROWS:,} purchases by txn_id (atomic)",
        request=TransactionRowInput(many=True),
        responses={200: BulkResult, 400: RowErrorsEnvelope, **errors(401, 403)},
    )
    def post(self, request: Request) -> Response:
        return bulk_ingest(request, kind="transactions", max_rows=MAX_BULK_ROWS)
