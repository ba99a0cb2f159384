"""The cash-flows card of the client 360 page:
`{% load cash_flows_cards %}{% cash_flows_card client %}`.

The page reached the client through `client_get` (core.access scope), so the card shows that
client's own rows only.
"""

from django import template

from ..models import CashFlow
from .crm_tags import cny

register = template.Library()

RECENT_CASH_FLOWS = 10


@register.inclusion_tag("clients/_cash_flows.html")
def cash_flows_card(client):
    """The client's latest deposits, withdrawals and transfers, newest first."""
    flows = list(CashFlow.objects.filter(client=client)
                 .order_by("-at", "-id")[:RECENT_CASH_FLOWS])
    return {"client": client, "flows": flows, "limit": RECENT_CASH_FLOWS}


@register.filter
def signed_cny(value) -> str:
    """Money in or out: +¥38,200.00 / −¥18,500.00."""
    if value is None or value == "":
        return "—"
    return f"+{cny(value)}" if value > 0 else f"−{cny(-value)}"
