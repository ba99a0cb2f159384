"""Documentation-only serializers for drf-spectacular: the error envelope and row errors."""

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

_ERROR_BODY = inline_serializer(
    name="ErrorBody",
    fields={
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "fields": serializers.DictField(child=serializers.ListField()),
    },
)
ErrorEnvelope = inline_serializer(name="Error", fields={"error": _ERROR_BODY})
RowErrorsEnvelope = inline_serializer(
    name="RowErrors",
    fields={
        "error": _ERROR_BODY,
        "errors": inline_serializer(
            name="RowError",
            fields={"index": serializers.IntegerField(allow_null=True),
                    "field": serializers.CharField(), "message": serializers.CharField()},
            many=True, required=False,
            help_text="Per-row errors; absent when the request as a whole is refused.",
        ),
    },
)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {400: "Invalid input", 401: "Not authenticated", 403: "Role not allowed",
                    404: "Not found or not visible to the caller (or an invalid cursor)",
                    409: "In use or in a state that does not allow it"}
    return {c: OpenApiResponse(ErrorEnvelope, description=descriptions[c]) for c in codes}
