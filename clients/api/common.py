"""Shared pieces of the clients API: who may read and write, and how keys in URLs are checked."""

from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_body
from core.permissions import HasCapability

CanRead = HasCapability.of("clients.view")
CanWrite = HasCapability.of("clients.write")


class ReadOrWrite:
    """Mixin: GET/HEAD/OPTIONS need a reading role, anything else a writing role."""

    def get_permissions(self):
        request: Request = self.request
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return [CanRead()]
        return [CanWrite()]


def key_or_404(value: str, *, max_length: int) -> str:
    """A key from the URL that cannot match any row (too long, control characters) is a 404."""
    if not value or len(value) > max_length or any(ord(ch) < 32 for ch in value):
        raise exceptions.NotFound()
    return value


def key_or_400(value: str, *, name: str, max_length: int) -> str:
    """A key from the URL of a write: it becomes the stored key, so it must be a valid one."""
    value = value or ""
    if not value.strip() or value != value.strip():
        raise exceptions.ValidationError({name: ["Must be non-empty, without surrounding spaces."]})
    if len(value) > max_length:
        raise exceptions.ValidationError({name: [f"At most {max_length} characters."]})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise exceptions.ValidationError({name: ["Control characters are not allowed."]})
    return value


def check_body_key(data: dict, *, name: str, value: str) -> None:
    """A key repeated in the body must agree with the one in the URL."""
    if name in data and data[name] != value:
        raise exceptions.ValidationError({name: [f"Does not match the URL ({value!r})."]})


def require_object(data) -> dict:
    if not isinstance(data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]})
    return data


class ActionView(APIView):
    """POST …/<action>/ on one object (an edition, a campaign): the body validated by
    `input_class` when there is one, one service called by `perform`, the object read again as
    the answer. Subclasses say how to find the object (`target`) and answer (`answer`)."""

    input_class: type[serializers.Serializer] | None = None

    def target(self, request: Request, **kwargs):
        raise NotImplementedError

    def answer(self, request: Request, **kwargs) -> Response:
        raise NotImplementedError

    def perform(self, request: Request, target, data: dict) -> None:
        raise NotImplementedError

    def post(self, request: Request, **kwargs) -> Response:
        target = self.target(request, **kwargs)
        data = {}
        if self.input_class is not None:
            serializer = self.input_class(data=require_object(request.data))
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        self.perform(request, target, data)
        return self.answer(request, **kwargs)


def row_errors_response(exc) -> Response:
    """An IngestRejected as the standard error envelope plus "errors": [{index, field, message}].

    `index` is the 0-based position in the request's array; null for an error about the whole
    request (e.g. a field unknown in every row).
    """
    body = error_body("invalid", exc.message)
    body["errors"] = [{"index": e.row if e.row is not None and e.row >= 0 else None,
                       "field": e.column or "", "message": str(e.message)}
                      for e in exc.errors]
    return Response(body, status=400)


def rows_or_400(data, *, max_rows: int, name: str = "rows") -> list[dict]:
    """The body of a bulk write: a list of at most `max_rows` JSON objects."""
    if not isinstance(data, list):
        raise exceptions.ValidationError({name: ["Expected a JSON array of objects."]})
    if len(data) > max_rows:
        raise exceptions.ValidationError(
            {name: [f"At most {max_rows:,} rows per request; got {len(data):,}."]})
    bad = [i for i, row in enumerate(data) if not isinstance(row, dict)]
    if bad:
        raise exceptions.ValidationError(
            {name: [f"Row {i}: expected a JSON object." for i in bad[:20]]})
    return data


def bulk_ingest(request: Request, *, kind: str, max_rows: int) -> Response:
    """A bulk upsert by the rows' own ids through the ingest engine, all or nothing: the
    counts created / updated / unchanged, or 400 with the rows' errors; audited as an import."""
    from core.models import AuditAction
    from core.services import audit_record

    from ..ingest import IngestRejected, ingest_records  # pandas: loaded on first use

    rows = rows_or_400(request.data, max_rows=max_rows)
    if not rows:
        return Response({"created": 0, "updated": 0, "unchanged": 0})
    try:
        result = ingest_records(kind=kind, records=rows, actor=request.user)
    except IngestRejected as exc:
        return row_errors_response(exc)
    counts = {"created": result.created, "updated": result.updated,
              "unchanged": result.rows - result.created - result.updated}
    audit_record(action=AuditAction.IMPORT, actor=request.user, object_type=kind,
                 object_id="api", detail={"rows": result.rows, **counts},
                 request=request._request)
    return Response(counts)
