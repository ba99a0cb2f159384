"""Password guessing: django-axes locks a login out by account and by address.

Axes counts failed logins in the database (`axes.AccessAttempt`, one row per username, address
and browser) and refuses further attempts once a limit is reached, until
`LOGIN_LOCKOUT_MINUTES` have passed since the last counted failure or an administrator clears
the attempts (Django admin › Axes › Access attempts › delete, or `manage.py axes_reset_username
NAME` / `axes_reset_ip ADDRESS`); both are written to the audit log (`core.signals`).

Axes compares one number with one limit; an account and an address need different ones (a
branch office reaches the server from one NAT address, so its staff share that address's
failures). `LockoutHandler.get_failures` therefore reports the failures of the parameter
closest to its own limit, scaled to `AXES_FAILURE_LIMIT` (the account limit): the result
reaches that limit exactly when the account or the address has reached its own.
"""

from __future__ import annotations

import math

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit, get_lockout_parameters
from django.conf import settings
from django.db.models import Max, Sum
from django.utils import timezone

PARAMETER_SCOPES = {"username": "account", "ip_address": "address"}


def _own_limit(parameter, account_limit: int) -> int:
    names = [parameter] if isinstance(parameter, str) else list(parameter)
    if names == ["ip_address"]:
        return max(1, int(settings.LOGIN_LOCKOUT_ADDRESS_FAILURES))
    return max(1, account_limit)


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit per lockout parameter (account, address)."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        account_limit = get_failure_limit(request, credentials)
        parameters = get_lockout_parameters(request, credentials)
        worst, reached = 0, []
        for parameter, attempts in zip(parameters, self.get_user_attempts(request, credentials),
                                       strict=True):
            failures = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            limit = _own_limit(parameter, account_limit)
            if failures >= limit:
                reached.append(PARAMETER_SCOPES.get(parameter, str(parameter)))
            worst = max(worst, failures * account_limit // limit)
        request.lockout_scopes = reached
        return worst

    def is_locked(self, request, credentials: dict | None = None) -> bool:
        locked = super().is_locked(request, credentials)
        # Asked by the authentication backend before a password is checked: True means this
        # attempt is refused unseen (the lockout began earlier and is audited already).
        request.lockout_refused = locked
        return locked

    def minutes_left(self, request, credentials: dict | None = None) -> int:
        """Whole minutes until the lockout of this request's account and address ends."""
        last = None
        for attempts in self.get_user_attempts(request, credentials):
            at = attempts.aggregate(at=Max("attempt_time"))["at"]
            if at is not None and (last is None or at > last):
                last = at
        cool_off = settings.AXES_COOLOFF_TIME
        if last is None:
            return math.ceil(cool_off.total_seconds() / 60)
        seconds = (last + cool_off - timezone.now()).total_seconds()
        return max(1, math.ceil(seconds / 60))


def client_address(request) -> str | None:
    """The address a request comes from, as the audit log records it (core.middleware)."""
    from .middleware import client_ip

    return client_ip(request)


def lockout_policy() -> dict:
    """The numbers the login page states."""
    return {"lockout_failures": settings.AXES_FAILURE_LIMIT,
            "lockout_minutes": math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)}
