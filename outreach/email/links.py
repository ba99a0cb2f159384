"""The unsubscribe link of outreach email that is not a newsletter (campaign email steps).

A newsletter's own links (newsletters.links) unsubscribe from that publication; a campaign
email's link records an opt-out of marketing email (outreach.OptOut, channel email) that holds
for every campaign. The link carries the outbox row's random token signed with
django.core.signing under its own salt; a tampered, swapped or unknown link changes nothing.

    GET  /o/u/<signed>/   confirmation page (a GET never changes anything)
    POST /o/u/<signed>/   opt out; also the RFC 8058 one-click target
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing

SALT = "outreach.email.unsubscribe"


def unsubscribe_url(delivery) -> str:
    signed = signing.Signer(salt=SALT).sign(delivery.token)
    return f"{settings.SITE_URL.rstrip('/')}/o/u/{signed}/"


def verify(signed: str):
    """The non-newsletter outbox row the link belongs to, or None."""
    from ..models import ContactSource, Delivery

    try:
        token = signing.Signer(salt=SALT).unsign(signed or "")
    except (signing.BadSignature, ValueError):
        return None
    if not token:
        return None
    return (Delivery.objects.select_related("client").exclude(source=ContactSource.NEWSLETTER)
            .filter(token=token).first())
