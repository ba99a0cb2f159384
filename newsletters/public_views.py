"""The pages a client reaches from an email: no login, authorised only by the signed link.

A tampered, swapped or unknown link changes nothing and says so. The unsubscribe endpoint is
CSRF-exempt so the RFC 8058 one-click POST (body ``List-Unsubscribe=One-Click``, sent by the
mailbox provider without any cookie) works; the confirmation button on our own page still
checks the CSRF token by hand.

The rating links in the email (``?rating=1..5``) open a landing page with that rating
preselected; a GET records nothing (mail scanners and link previews follow every link), the
rating is recorded only when the reader sends the page's form (a POST with the CSRF token).
"""

import base64

from django.db import transaction
from django.db.models import F, Q
from django.http import HttpResponse, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import links
from .inbound import feedback_comment, feedback_rate, unsubscribe
from .models import Delivery, Suppression

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _invalid(request, status: int = 404):
    return render(request, "public/invalid_link.html", status=status)


def _context(delivery: Delivery, **extra) -> dict:
    return {"delivery": delivery, "publication": delivery.edition.publication,
            "edition": delivery.edition, **extra}


def _is_one_click(request) -> bool:
    return request.POST.get("List-Unsubscribe") == "One-Click"


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, signed: str):
    delivery = links.verify_token(links.UNSUBSCRIBE, signed)
    if delivery is None:
        return _invalid(request)
    publication = delivery.edition.publication
    if request.method == "GET":
        already = Suppression.objects.filter(
            Q(publication=publication) | Q(publication__isnull=True),
            client_id=delivery.client_id, reason=Suppression.UNSUBSCRIBED,
            lifted_at__isnull=True).exists()
        return render(request, "newsletters/public/unsubscribe_confirm.html",
                      _context(delivery, already=already))
    one_click = _is_one_click(request)
    if not one_click:
        rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
        if rejected is not None:
            return rejected
    unsubscribe(delivery=delivery, one_click=one_click, request=request)
    return render(request, "newsletters/public/unsubscribe_done.html", _context(delivery))


def _rating(raw) -> int | None:
    try:
        rating = int(raw)
    except (TypeError, ValueError):
        return None
    return rating if 1 <= rating <= 5 else None


def _saved_rating(delivery: Delivery) -> int | None:
    return (delivery.feedback.filter(is_reply=False, rating__isnull=False)
            .order_by("-created_at", "-id").values_list("rating", flat=True).first())


def _feedback_form(request, delivery: Delivery, *, rating=None, status: int = 200, **extra):
    """The landing page: `rating` (else the reader's saved one) preselected in the form."""
    saved = _saved_rating(delivery)
    return render(request, "newsletters/public/feedback_form.html",
                  _context(delivery, rating=rating or saved, saved=saved, ratings=range(1, 6),
                           action=request.path, **extra), status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def feedback_view(request, signed: str):
    delivery = links.verify_token(links.FEEDBACK, signed)
    if delivery is None:
        return _invalid(request)
    if request.method == "GET":  # the landing page: the link's rating preselected, nothing saved
        rating = _rating(request.GET.get("rating") or request.GET.get("r"))
        return _feedback_form(request, delivery, rating=rating)
    rating = _rating(request.POST.get("rating"))
    comment = (request.POST.get("comment") or "").strip()[:4000]
    if not comment and not rating:
        return _feedback_form(request, delivery, empty=True, status=400)
    if rating:
        feedback_rate(delivery=delivery, rating=rating)
    if comment:
        feedback_comment(delivery=delivery, comment=comment)
    return render(request, "newsletters/public/feedback_thanks.html",
                  _context(delivery, rating=rating, commented=bool(comment)))


@never_cache
@require_GET
def open_pixel_view(request, signed: str):
    delivery = links.verify_token(links.OPEN, signed)
    if delivery is not None:
        Delivery.objects.filter(pk=delivery.pk, opened_at__isnull=True).update(
            opened_at=timezone.now())
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, private"
    return response


@never_cache
@require_GET
def click_view(request, signed: str):
    verified = links.verify_click(signed)
    if verified is None:
        return _invalid(request)
    delivery, target = verified
    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(clicks=F("clicks") + 1)
        Delivery.objects.filter(pk=delivery.pk, clicked_at__isnull=True).update(clicked_at=now)
        Delivery.objects.filter(pk=delivery.pk, opened_at__isnull=True).update(opened_at=now)
    # Only the URL signed into the link: never a redirect chosen by whoever holds the link.
    return HttpResponseRedirect(target)
