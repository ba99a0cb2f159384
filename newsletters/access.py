"""Who may read newsletters: the "newsletters.read" row of core.permissions, for the API.

Publications, editions (with the RMs' notes inside them), their statistics over the whole
audience and their outbox are for operations, compliance and admins. An RM or a branch manager
gets a 403 from the pages (capability_required) and from the API (CanReadNewsletters) alike,
audited as access_denied by both.
"""

from __future__ import annotations

from core.permissions import HasCapability, user_can


def can_read_newsletters(user) -> bool:
    return user_can(user, "newsletters.read")


CanReadNewsletters = HasCapability.of("newsletters.read")
