from dataclasses import dataclass

from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .access import role_of
from .permissions import user_can


@dataclass(frozen=True)
class MenuEntry:
    capability: str | None  # None: every signed-in user
    url_name: str
    label: str
    element_id: str = ""
    badge_url_name: str = ""


# The navigation, in order; who sees an entry is the capability's row in core.permissions.
MENU = (
    MenuEntry("home.day", "analytics:home", pgettext_lazy("menu", "Today"), element_id="nav-home"),
    MenuEntry("clients.view", "clients:client_list", _("Clients")),
    MenuEntry("segments.view", "segments:segment_list", _("Segments")),
    MenuEntry("newsletters.read", "newsletters:publication_list", _("Newsletters")),
    MenuEntry("campaigns.view", "campaigns:campaign_list", _("Campaigns")),
    MenuEntry("analytics.view", "analytics:overview", _("Analytics"), element_id="nav-analytics"),
    MenuEntry("tasks.own", "outreach:task_list", _("My tasks"), element_id="nav-tasks",
              badge_url_name="outreach:task_badge"),
    MenuEntry("tasks.oversee", "outreach:task_list", _("Follow-ups")),
    MenuEntry("imports.run", "imports:import_list", _("Imports")),
    MenuEntry("scoring.manage", "scoring:scoring_page", _("Value scoring")),
    MenuEntry("audit.read", "audit_log", _("Audit log")),
    MenuEntry(None, "api-docs", _("API")),
)


def menu_for(user, path: str = "") -> list[dict]:
    """The entries `user` may open, each with its URL and whether `path` is inside it."""
    if user is None or not user.is_authenticated:
        return []
    items = []
    for entry in MENU:
        if entry.capability is not None and not user_can(user, entry.capability):
            continue
        url = reverse(entry.url_name)
        items.append({"label": entry.label, "url": url, "id": entry.element_id,
                      "active": entry.capability is not None and (
                          path == url if url == "/" else path.startswith(url)),
                      "badge_url": reverse(entry.badge_url_name) if entry.badge_url_name
                      else ""})
    return items


def navigation(request):
    user = getattr(request, "user", None)
    return {"user_role": role_of(user) if user is not None else None,
            "nav_menu": SimpleLazyObject(lambda: menu_for(user, request.path))}
