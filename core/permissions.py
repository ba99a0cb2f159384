"""Who may do what: the one table of capabilities and the roles that hold each.

Page decorators (`capability_required`), template flags (`user_can`), the API's permission
class (`HasCapability`) and the navigation menu (core.context_processors) all read
CAPABILITIES, so a page, its menu entry and its API cannot disagree. A capability answers
"may this role open this at all"; which clients it then shows is the row-level scope of
core.access.client_scope_q. Every refusal is one ACCESS_DENIED audit row.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from rest_framework.permissions import BasePermission

from .access import role_of
from .models import AuditAction, Role
from .services import audit_record

EVERY_ROLE = frozenset(Role.values)
OPERATIONS = frozenset({Role.OPS.value, Role.ADMIN.value})

CAPABILITIES: dict[str, frozenset[str]] = {
    # Scoped pages: every role opens them and sees the clients its scope allows.
    "clients.view": EVERY_ROLE,
    # Upserts over the API (clients, products, holdings) and starting scoring runs there.
    "clients.write": OPERATIONS,
    "segments.view": EVERY_ROLE,
    "tasks.view": EVERY_ROLE,
    # Building segments (rule builder, static lists, refreshes) is operations' work.
    "segments.manage": OPERATIONS,
    # Members leave the system in a file only for those who work them: an RM their book, a
    # branch manager their branch, ops (masked) for campaigns. Compliance reviews inside the
    # product (PIPL: the minimum leaves it); the export itself is audited and scoped.
    "segments.export": frozenset({Role.RM.value, Role.BRANCH_MANAGER.value, *OPERATIONS}),
    "newsletters.read": frozenset({Role.COMPLIANCE.value, *OPERATIONS}),
    "newsletters.compose": OPERATIONS,
    "newsletters.approve": frozenset({Role.COMPLIANCE.value}),
    "newsletters.phrases": frozenset({Role.COMPLIANCE.value, Role.ADMIN.value}),
    "imports.run": OPERATIONS,
    "scoring.manage": OPERATIONS,
    "audit.read": frozenset({Role.COMPLIANCE.value, Role.ADMIN.value}),
    "contact_policy.manage": OPERATIONS,
    # Campaigns: every role reads them (an RM sees their own clients on a target list);
    # operations design and launch, compliance approves (never the author), outcomes of calls
    # come from the RMs who made them, their managers, or the call centre's service account.
    "campaigns.view": EVERY_ROLE,
    "campaigns.manage": OPERATIONS,
    "campaigns.approve": frozenset({Role.COMPLIANCE.value}),
    "campaigns.outcomes": frozenset({Role.RM.value, Role.BRANCH_MANAGER.value, *OPERATIONS}),
    # The menu's task entry: an RM works the tasks assigned to them ("My tasks"); branch
    # managers and operations follow up on others' ("Follow-ups").
    "tasks.own": frozenset({Role.RM.value}),
    "tasks.oversee": frozenset({Role.BRANCH_MANAGER.value, *OPERATIONS}),
    # The home page of the day's work (analytics.views.home_page): an RM's calls and scenario
    # newcomers, a branch manager's team; where they land after logging in.
    "home.day": frozenset({Role.RM.value, Role.BRANCH_MANAGER.value}),
    # Analytics pages and API: every role reads the figures of its own scope; operations bring
    # the rollups up to date on demand (the nightly run does it otherwise).
    "analytics.view": EVERY_ROLE,
    "analytics.refresh": OPERATIONS,
}

# What a refusal names in the audit log, by the capability's area.
AUDIT_OBJECT_TYPES = {
    "clients": "client", "segments": "segment", "tasks": "task", "newsletters": "newsletter",
    "imports": "import", "scoring": "scoring", "audit": "audit_log",
    "contact_policy": "contact_policy", "campaigns": "campaign", "analytics": "analytics",
}


def roles_for(capability: str) -> frozenset[str]:
    return CAPABILITIES[capability]  # a KeyError for a misspelt capability, on purpose


def user_can(user, capability: str) -> bool:
    return role_of(user) in roles_for(capability)


def capabilities_of(user) -> frozenset[str]:
    role = role_of(user)
    return frozenset(name for name, roles in CAPABILITIES.items() if role in roles)


def access_denied(request, capability: str, object_id="", *, object_type: str = ""):
    """The 403 page, with the refusal written to the audit log (once per request)."""
    audit_record(action=AuditAction.ACCESS_DENIED, actor=request.user,
                 object_type=object_type or AUDIT_OBJECT_TYPES[capability.split(".")[0]],
                 object_id=str(object_id or ""), request=request)
    return render(request, "403.html", status=403)


def capability_required(capability: str):
    """Log in first; then a user whose role lacks `capability` gets an audited 403."""
    roles_for(capability)

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not user_can(request.user, capability):
                object_id = next((kwargs[k] for k in ("code", "pk", "slug") if kwargs.get(k)), "")
                return access_denied(request, capability, object_id)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


class HasCapability(BasePermission):
    """DRF: `permission_classes = [HasCapability.of("newsletters.read")]`."""

    capability = ""

    @classmethod
    def of(cls, capability: str):
        roles_for(capability)
        return type("HasCapabilityOf", (cls,), {"capability": capability})

    def has_permission(self, request, view) -> bool:
        return user_can(request.user, self.capability)
