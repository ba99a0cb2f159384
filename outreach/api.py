"""REST API of the outreach app (docs/api.md "Trading calendar")."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clients.api.schemas import errors
from clients.validators import validate_plausible_date

from .calendar import MAX_RANGE_DAYS, calendar_known, trading_days


class _RangeQuery(serializers.Serializer):
    def get_fields(self):
        return {"from": serializers.DateField(validators=[validate_plausible_date]),
                "to": serializers.DateField(validators=[validate_plausible_date])}

    def validate(self, attrs):
        start, end = attrs["from"], attrs["to"]
        if end < start:
            raise serializers.ValidationError({"to": ["Must not be before 'from'."]})
        if (end - start).days >= MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"to": [f"At most {MAX_RANGE_DAYS} days from 'from' in one request."]})
        return attrs


class _TradingDaysOutput(serializers.Serializer):
    def get_fields(self):
        return {"from": serializers.DateField(), "to": serializers.DateField(),
                "count": serializers.IntegerField(),
                "trading_days": serializers.ListField(child=serializers.DateField()),
                "official_schedule_known": serializers.BooleanField(
                    help_text="False when part of the range lies in a year whose official "
                              "holiday schedule is not known yet: there, weekdays count as "
                              "trading days unless an admin entered a correction.")}


@extend_schema(tags=["calendar"])
class TradingDaysView(APIView):
    @extend_schema(
        summary="Trading days of the Shanghai and Shenzhen exchanges in a range",
        parameters=[OpenApiParameter("from", str, required=True, description="YYYY-MM-DD"),
                    OpenApiParameter("to", str, required=True,
                                     description=f"YYYY-MM-DD, at most {MAX_RANGE_DAYS} days "
                                                 "after from")],
        responses={200: _TradingDaysOutput, **errors(400, 401)})
    def get(self, request: Request) -> Response:
        query = _RangeQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["from"], query.validated_data["to"]
        days = trading_days(start, end)
        return Response({
            "from": start.isoformat(), "to": end.isoformat(), "count": len(days),
            "trading_days": [d.isoformat() for d in days],
            "official_schedule_known": calendar_known(start) and calendar_known(end),
        })
