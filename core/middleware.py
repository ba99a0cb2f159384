import ipaddress
import threading

from django.conf import settings
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

_local = threading.local()


def current_request():
    return getattr(_local, "request", None)


class RequestContextMiddleware:
    """Keeps the current request reachable for the audit log (IP, path, user agent)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _local.request = request
        try:
            return self.get_response(request)
        finally:
            _local.request = None


def client_ip(request) -> str | None:
    """The address a request came from, for the audit log and the login lockout.

    Behind TRUSTED_PROXY_COUNT proxies (nginx, a load balancer) it is the address the outermost
    proxy saw: the last-but-(N-1) entry of X-Forwarded-For. Entries left of it are whatever the
    client sent, so they are never trusted (else a guesser would pick a new address per try).
    """
    if request is None:
        return None
    remote = _valid_ip(request.META.get("REMOTE_ADDR", ""))
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                if h.strip()]
        if hops:
            return _valid_ip(hops[-min(proxies, len(hops))]) or remote
    return remote


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _nul_in(pairs) -> str | None:
    for key, values in pairs:
        if "\x00" in key or any("\x00" in value for value in values):
            return key.replace("\x00", "\\x00")[:60]
    return None


class RefuseNulMiddleware:
    """A NUL character in the path, a query parameter or a posted form field is a 400.

    PostgreSQL cannot store or compare text containing NUL ("A string literal cannot contain
    NUL"), so such input would reach a filter and fail there as a 500. One check here covers
    every page and API operation: the API answers in its error envelope, pages with 400.html.
    (JSON bodies are checked by core.parsers.)
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        where = None
        if "\x00" in request.path_info:
            where = "path"
        else:
            where = _nul_in(request.GET.lists())
            if where is None and request.method == "POST" and not _is_api(request) \
                    and request.content_type in _FORM_TYPES:
                try:
                    where = _nul_in(request.POST.lists())
                except MultiPartParserError:
                    return _bad_request(request, _("The form data could not be read."), "body")
        if where is None:
            return self.get_response(request)
        return _bad_request(request, _("NUL characters are not allowed (in %(where)s).")
                            % {"where": where}, where)


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def _bad_request(request, message: str, where: str):
    if _is_api(request):
        from .api import error_body

        return JsonResponse(error_body("invalid", message, {where: [message]}), status=400)
    return TemplateResponse(request, "400.html", {"reason": message}, status=400).render()
