"""The open follow-ups card of the client 360 page:
`{% load outreach_cards %}{% open_tasks_card client %}`."""

from django import template

from ..selectors import open_tasks_for_client

register = template.Library()


@register.inclusion_tag("outreach/_client_tasks_card.html", takes_context=True)
def open_tasks_card(context, client):
    """The client's open tasks that the viewer may see and close."""
    request = context["request"]
    return {"client": client, "request": request,
            "open_tasks": open_tasks_for_client(client=client, user=request.user)}
