"""The gateway's delivery receipts: POSTed by the provider, signed, no login."""

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.api import error_body

from .gateway import parse_receipts, verify_request
from .sender import gateway_receipts_apply

MAX_BODY = 1024 * 1024


@csrf_exempt
@require_POST
def gateway_receipts(request):
    """401 unless signed with SMS_GATEWAY_KEY (gateway.verify_request: HMAC and a fresh
    timestamp), 413 over 1 MB, 400 naming the bad field; else 200 {"updated", "ignored"}."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        return JsonResponse(error_body("too_large", f"At most {MAX_BODY} bytes."), status=413)
    body = request.body
    if len(body) > MAX_BODY:
        return JsonResponse(error_body("too_large", f"At most {MAX_BODY} bytes."), status=413)
    if not verify_request(settings.SMS_GATEWAY_KEY, request.headers, body):
        return JsonResponse(error_body("bad_signature", "Missing, wrong or stale signature."),
                            status=401)
    try:
        receipts = parse_receipts(body)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        return JsonResponse(error_body("invalid", str(exc), {field: [message]}), status=400)
    return JsonResponse(gateway_receipts_apply(receipts=receipts))
