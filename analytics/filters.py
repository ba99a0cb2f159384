"""The filter bar of the analytics pages: which choices a user is offered, and the filter part of
a page's query string (carried to drill-downs, exports and the other pages).

Parsing and checking the values is analytics.selectors.filters_from (the API's too); this module
only lists the choices in the user's scope: an RM gets no branch or RM picker (their figures are
their book's), a branch manager their branch's RMs, the other roles every branch and RM.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from django.utils.translation import gettext as _

from clients.scoring.models import Tier
from core.access import ALL_CLIENTS_ROLES, role_of
from core.models import Branch, Role, User
from segments.selectors import segment_choices

FILTER_KEYS = ("from", "to", "branch", "rm", "segment", "tier")


def filter_choices(*, user) -> dict:
    """{"branches": [[code, label]], "rms": [[username, label]], "segments": [[code, label]],
    "tiers": [[code, label]]}: the pickers the user's scope allows (empty lists are not shown)."""
    role = role_of(user)
    branches: list[list[str]] = []
    rms = User.objects.filter(groups__name=Role.RM, is_active=True)
    if role in ALL_CLIENTS_ROLES:
        branches = [[code, f"{name} ({code})"] for code, name in
                    Branch.objects.order_by("code").values_list("code", "name")]
    elif role == Role.BRANCH_MANAGER and user.branch_id:
        rms = rms.filter(branch_id=user.branch_id)
    else:
        rms = rms.none()
    return {
        "branches": branches,
        "rms": [[username, f"{display or username} ({username})"] for username, display in
                rms.order_by("username").values_list("username", "display_name")],
        "segments": segment_choices(),
        "tiers": [[value, str(label)] for value, label in Tier.choices],
    }


def filter_pickers(*, user, values: Mapping[str, str]) -> list[dict]:
    """The drop-downs of the filter bar, each with its choices and current value; a picker the
    user's scope leaves no choice in (an RM's branch and RM) is left out."""
    choices = filter_choices(user=user)
    pickers = [("branch", _("Branch"), _("All branches"), choices["branches"]),
               ("rm", _("RM"), _("All RMs"), choices["rms"]),
               ("segment", _("Segment"), _("All clients"), choices["segments"]),
               ("tier", _("Value tier"), _("All tiers"), choices["tiers"])]
    return [{"name": name, "label": label, "empty": empty, "choices": options,
             "value": values.get(name, "")} for name, label, empty, options in pickers
            if options]


def filter_params(params: Mapping[str, str], *, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The non-empty filter values of a query string (and the `extra` keys a page keeps)."""
    return {key: params.get(key, "") for key in (*FILTER_KEYS, *extra) if params.get(key, "")}


def filter_query(params: Mapping[str, str], *, extra: tuple[str, ...] = (), **more) -> str:
    """A query string of the filters of `params` plus `more` (None or "" drops a key)."""
    values = filter_params(params, extra=extra)
    for key, value in more.items():
        if value is None or value == "":
            values.pop(key, None)
        else:
            values[key] = str(value)
    return urlencode(values)
