"""API plumbing shared by every app: error format, keyset pagination, permissions."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import ApplicationError
from .models import AuditAction

logger = logging.getLogger(__name__)


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as the envelope's flat `fields`: {"rows.3.amount": [...]}.

    The schema promises `fields` maps a name to a list of messages; a nested serializer or a
    list of rows would otherwise put objects there.
    """
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, list) and any(isinstance(d, (dict, list)) for d in detail):
        for i, value in enumerate(detail):
            if value:  # a row without errors is {} or []
                out.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
        return out
    messages = [str(d) for d in detail] if isinstance(detail, list) else [str(detail)]
    out[prefix or "non_field_errors"] = messages
    return out


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc, context):
    """Every error is {"error": {"code", "message", "fields"}}; bad input is never a 500."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            fields = exc.message_dict
        else:
            fields = {"non_field_errors": exc.messages}
        return Response(error_body("invalid", "Invalid input.", fields), status=400)
    if isinstance(exc, (ProtectedError, RestrictedError)):
        return Response(error_body("in_use", _("It is still in use and cannot be deleted.")),
                        status=status.HTTP_409_CONFLICT)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    if isinstance(exc, (exceptions.PermissionDenied, exceptions.NotFound)) and request is not None \
            and getattr(request, "user", None) is not None and request.user.is_authenticated:
        from .services import audit_record

        audit_record(action=AuditAction.ACCESS_DENIED, actor=request.user,
                     request=getattr(request, "_request", None),
                     detail={"status": response.status_code, "method": request.method})
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = _flatten(detail)
        response.data = error_body("invalid", "Invalid input.", fields)
    else:
        code = getattr(exc, "default_code", "error")
        if hasattr(exc, "get_codes"):
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else code
        response.data = error_body(code, str(getattr(exc, "detail", exc)))
    return response


class KeysetPagination(CursorPagination):
    """Cursor (keyset) pagination by id: as fast on the millionth row as on the first."""

    ordering = "id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


def bad_request(message: str, fields: dict | None = None, code: str = "invalid") -> Response:
    return Response(error_body(code, message, fields), status=status.HTTP_400_BAD_REQUEST)


class OutputModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose read-only fields keep what the model allows: blank text and
    choices ("" — DRF drops allow_blank on read-only fields, so the schema's enum would not
    list it) and null. The schema then says what the API really returns."""

    def include_extra_kwargs(self, kwargs, extra_kwargs):
        blank = kwargs.get("allow_blank", False)
        kwargs = super().include_extra_kwargs(kwargs, extra_kwargs)
        if blank and kwargs.get("read_only"):
            kwargs["allow_blank"] = True
        return kwargs


def document_bad_request(result, generator, request, public):
    """drf-spectacular post-processing hook: every operation may answer 400 in the error
    envelope (core.middleware refuses a NUL anywhere in the path or query before any view
    runs), so every operation documents it."""
    envelope = {"$ref": "#/components/schemas/Error"}
    if "Error" not in result.get("components", {}).get("schemas", {}):
        return result
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method in ("get", "put", "post", "patch", "delete") and \
                    "400" not in operation.get("responses", {}):
                operation["responses"]["400"] = {
                    "content": {"application/json": {"schema": envelope}},
                    "description": "Invalid input (e.g. a NUL character in the path or query)"}
    return result
