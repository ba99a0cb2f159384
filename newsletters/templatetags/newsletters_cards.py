"""The email line of the client 360 page's consent card:
`{% load newsletters_cards %}{% email_consent_card client %}`."""

from django import template

from ..consent_views import client_email_consent_card

register = template.Library()


@register.inclusion_tag("newsletters/_email_consent.html", takes_context=True)
def email_consent_card(context, client):
    """Suppressions in force and lifted, and the re-subscription form for the client's RM."""
    return {"client": client,
            **client_email_consent_card(client=client, user=context["request"].user)}
