"""Row-level access: the one place that decides which clients a user may see.

Every page, API view, export and task that reads client data builds its queryset from
`client_scope_q` (via clients.selectors.client_queryset_for). Personal data is shown in full
only to the client's own RM (`can_see_pii`), and only the client's own RM writes into the
client's record: interactions (`can_log_interaction`) and the consent the client gives them
(`can_record_consent`). Seeing a client is not the right to speak for them: branch managers,
ops and compliance read an RM's work but never add to it.
"""

from django.db.models import Q

from .models import Role

ALL_CLIENTS_ROLES = {Role.OPS, Role.COMPLIANCE, Role.ADMIN}


def role_of(user) -> str | None:
    if user is None or not user.is_authenticated:
        return None
    cached = getattr(user, "_cached_role", False)
    if cached is not False:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = None
    for candidate in (Role.ADMIN, Role.COMPLIANCE, Role.OPS, Role.BRANCH_MANAGER, Role.RM):
        if candidate.value in names:
            role = candidate.value
            break
    if role is None and user.is_superuser:
        role = Role.ADMIN.value
    user._cached_role = role
    return role


def client_scope_q(user, *, prefix: str = "") -> Q:
    """A Q limiting a Client queryset (or one related through `prefix`, e.g. "client__")."""
    role = role_of(user)
    if role in ALL_CLIENTS_ROLES:
        return Q()
    if role == Role.BRANCH_MANAGER and user.branch_id:
        return Q(**{f"{prefix}branch_id": user.branch_id})
    if role == Role.RM:
        return Q(**{f"{prefix}rm_id": user.pk})
    return Q(pk__in=[]) if not prefix else Q(**{f"{prefix}pk__in": []})


def is_own_rm(user, client) -> bool:
    return bool(user and user.is_authenticated and client.rm_id and client.rm_id == user.pk
                and role_of(user) == Role.RM)


def can_see_pii(user, client) -> bool:
    return is_own_rm(user, client)


def can_log_interaction(user, client) -> bool:
    """Calls, meetings and notes in a client's history are the own RM's (DOMAIN.md: the RM logs
    them; a branch manager sees them)."""
    return is_own_rm(user, client)


def can_record_consent(user, client) -> bool:
    """A consent the client states (e.g. a re-subscription) is recorded by the RM who heard it."""
    return is_own_rm(user, client)


def has_role(user, *roles) -> bool:
    return role_of(user) in {r.value if hasattr(r, "value") else r for r in roles}
