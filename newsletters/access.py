"""Who may read newsletters: the one rule behind the staff pages and the API.

Publications, editions (with the RMs' notes inside them), their statistics over the whole
audience and their outbox are for operations, compliance and admins. An RM or a branch manager
gets a 403 from the pages and from the API alike (audited as access_denied by both).
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from core.access import has_role
from core.models import Role

READ_ROLES = (Role.OPS, Role.COMPLIANCE, Role.ADMIN)


def can_read_newsletters(user) -> bool:
    return has_role(user, *READ_ROLES)


class CanReadNewsletters(BasePermission):
    """The API's side of `can_read_newsletters`."""

    def has_permission(self, request, view) -> bool:
        return can_read_newsletters(request.user)
