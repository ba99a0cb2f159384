"""The segments card of the client 360 page:
`{% load segments_cards %}{% segments_card client %}`."""

from django import template

from ..selectors import client_segment_groups

register = template.Library()


@register.inclusion_tag("segments/_client_card.html")
def segments_card(client):
    """The client's active segments by kind, and the playbooks of its personas."""
    return client_segment_groups(client=client)
