"""API throttling: requests per token (per user) and, before authentication, per address.

DRF's own classes read their rates once, at import; these read REST_FRAMEWORK's
DEFAULT_THROTTLE_RATES when a request comes (so a changed setting applies, tests included) and
identify an anonymous caller by the address the audit log records (core.middleware.client_ip:
X-Forwarded-For only as far as TRUSTED_PROXY_COUNT proxies vouch for it, never the raw header,
which a caller could change on every request).
"""

from rest_framework import throttling
from rest_framework.settings import api_settings

from .middleware import client_ip


class _RatesAtRequestTime:
    def get_rate(self):
        rates = api_settings.DEFAULT_THROTTLE_RATES
        return rates.get(self.scope) or rates.get(self.default_scope)

    def get_ident(self, request):
        return client_ip(getattr(request, "_request", request)) or "unknown"


class AnonRateThrottle(_RatesAtRequestTime, throttling.AnonRateThrottle):
    default_scope = "anon"


class UserRateThrottle(_RatesAtRequestTime, throttling.UserRateThrottle):
    """One count per user, so per token (a token belongs to one user). Service accounts (an
    internal system syncing clients one PUT at a time) get the "service" rate."""

    default_scope = "user"

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None  # AnonRateThrottle counts those
        return super().get_cache_key(request, view)

    def allow_request(self, request, view):
        user = getattr(request, "user", None)
        self.scope = "service" if getattr(user, "is_service_account", False) else "user"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
