"""Template helpers of the CRM pages: viewer-aware masking, money, query strings, sorting."""

from decimal import Decimal, InvalidOperation

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _

from core.access import can_see_pii
from core.masking import mask_email, mask_id, mask_phone
from core.models import Role

register = template.Library()

_MASKERS = {"phone": mask_phone, "email": mask_email, "id_number": mask_id}


@register.simple_tag(takes_context=True)
def pii(context, client, field: str) -> str:
    """A personal-data field of `client`: in full for the client's own RM, masked otherwise.

    The view that shows it in full records AuditAction.PII_VIEWED (clients.views).
    """
    value = getattr(client, field, "") or ""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is not None and can_see_pii(user, client):
        return value
    return _MASKERS[field](value)


@register.filter
def masked_phone(value) -> str:
    return mask_phone(value or "")


@register.filter
def role_label(value) -> str:
    return str(Role(value).label) if value in Role.values else ""


@register.filter
def cny(value, places: int = 2) -> str:
    """Money in CNY with thousands separators: ¥1,234,567.89 (locale-independent)."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    return f"¥{amount:,.{int(places)}f}"


@register.simple_tag(takes_context=True)
def query_replace(context, **changes) -> str:
    """The current query string with some parameters replaced (None drops one)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def sort_header(context, key: str, label: str) -> str:
    """A sortable column header: a link that toggles the order, with an arrow on the active one."""
    current = context.get("sort", "")
    descending = current == f"-{key}"
    active = current in (key, f"-{key}")
    target = key if descending or not active else f"-{key}"
    href = query_replace(context, sort=target, page=None)
    arrow = ("▼" if descending else "▲") if active else ""
    order = _("descending") if descending else _("ascending")
    return format_html(
        '<a class="sort-link{}" href="{}" hx-get="{}" hx-target="#client-table" '
        'hx-push-url="true"{}>{} <span class="sort-arrow">{}</span></a>',
        " active" if active else "", href, href,
        format_html(' title="{}"', order) if active else "", label, arrow)
