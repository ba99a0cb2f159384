"""API plumbing shared by every app: error format, keyset pagination, permissions."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .access import role_of
from .errors import ApplicationError
from .models import AuditAction

logger = logging.getLogger(__name__)


def _flatten(detail):
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(d, (dict, list)) for d in detail):
            return [str(d) for d in detail]
        return [_flatten(d) for d in detail]
    return [str(detail)]


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
        if isinstance(detail, dict):
            fields = _flatten(detail)
        else:
            fields = {"non_field_errors": _flatten(detail)}
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


class HasRole(BasePermission):
    """`permission_classes = [HasRole.of("ops", "admin")]`."""

    roles: frozenset = frozenset()

    @classmethod
    def of(cls, *roles):
        return type("HasRoleOf", (cls,), {"roles": frozenset(roles)})

    def has_permission(self, request, view):
        return role_of(request.user) in self.roles


def bad_request(message: str, fields: dict | None = None, code: str = "invalid") -> Response:
    return Response(error_body(code, message, fields), status=status.HTTP_400_BAD_REQUEST)
