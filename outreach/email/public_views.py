"""The page a client reaches from a campaign email's unsubscribe link: no login, authorised
only by the signed link (outreach.email.links). CSRF-exempt so the RFC 8058 one-click POST
(body ``List-Unsubscribe=One-Click``, sent without any cookie) works; the button on our own
page still checks the CSRF token by hand."""

from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ..models import Channel, OptOut
from ..services import email_opt_out
from . import links


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, signed: str):
    delivery = links.verify(signed)
    if delivery is None:
        return render(request, "public/invalid_link.html", status=404)
    if request.method == "GET":
        already = OptOut.objects.filter(client_id=delivery.client_id,
                                        channel=Channel.EMAIL).exists()
        return render(request, "outreach/public/unsubscribe_confirm.html", {"already": already})
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    if not one_click:
        rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
        if rejected is not None:
            return rejected
    email_opt_out(delivery=delivery, one_click=one_click, request=request)
    return render(request, "outreach/public/unsubscribe_done.html")
