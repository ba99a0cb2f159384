"""Signed, tamper-proof links in each delivered email (unsubscribe, feedback, clicks, opens).

Every link carries Delivery.token signed with django.core.signing under a salt per purpose,
so a link for one purpose cannot be replayed for another, and a tampered or swapped token
fails verification (verify_token -> None). Absolute URLs start with settings.SITE_URL.

Public URL shapes (the public views live under /n/):

    GET  /n/u/<signed>/      unsubscribe confirmation page (GET never changes anything)
    POST /n/u/<signed>/      unsubscribe; also the RFC 8058 one-click target
                             (body "List-Unsubscribe=One-Click")
    GET  /n/f/<signed>/      feedback landing page: ?rating=1..5 preselects that rating in its
                             form; a GET records nothing (mail scanners follow links)
    POST /n/f/<signed>/      feedback: records the rating and/or comment (CSRF token required)
    GET  /n/c/<signed>/      click: redirects to the signed target URL (tracking on only)
    GET  /n/o/<signed>.gif   open pixel (tracking on only)

The URL_* constants are the Django `path()` routes for these views.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core import signing

UNSUBSCRIBE, FEEDBACK, CLICK, OPEN = "unsubscribe", "feedback", "click", "open"
PURPOSES = (UNSUBSCRIBE, FEEDBACK, CLICK, OPEN)

URL_UNSUBSCRIBE = "n/u/<str:signed>/"
URL_FEEDBACK = "n/f/<str:signed>/"
URL_CLICK = "n/c/<str:signed>/"
URL_OPEN = "n/o/<str:signed>.gif"

_PATHS = {UNSUBSCRIBE: "/n/u/{}/", FEEDBACK: "/n/f/{}/", CLICK: "/n/c/{}/", OPEN: "/n/o/{}.gif"}

# What links point to in a preview (no delivery yet): harmless, goes nowhere.
PREVIEW_URL = "#preview"


def _salt(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}")
    return f"newsletters.links.{purpose}"


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def sign(purpose: str, token: str) -> str:
    return signing.Signer(salt=_salt(purpose)).sign(token)


def unsubscribe_url(delivery) -> str:
    return _absolute(_PATHS[UNSUBSCRIBE].format(sign(UNSUBSCRIBE, delivery.token)))


def unsubscribe_post_url(delivery) -> str:
    """The RFC 8058 one-click target: the same URL, answering POST List-Unsubscribe=One-Click."""
    return unsubscribe_url(delivery)


def feedback_url(delivery, rating: int | None = None) -> str:
    url = _absolute(_PATHS[FEEDBACK].format(sign(FEEDBACK, delivery.token)))
    return url if rating is None else with_rating(url, rating)


def with_rating(feedback: str, rating: int) -> str:
    """The feedback URL whose landing page has `rating` preselected (sending it records it)."""
    return feedback + "?" + urlencode({"rating": int(rating)})


def _tracking_on(delivery) -> bool:
    return bool(delivery.edition.publication.tracking_enabled)


def is_trackable_target(url: str) -> bool:
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def click_url(delivery, target_url: str) -> str:
    """The tracked redirect to `target_url`; the target itself when tracking is off or it is
    not an http(s) URL (mailto: and the like are never wrapped)."""
    if not _tracking_on(delivery) or not is_trackable_target(target_url):
        return target_url
    signed = signing.dumps([delivery.token, target_url], salt=_salt(CLICK), compress=True)
    return _absolute(_PATHS[CLICK].format(signed))


def open_pixel_url(delivery) -> str | None:
    """The self-hosted open pixel, or None when tracking is off."""
    if not _tracking_on(delivery):
        return None
    return _absolute(_PATHS[OPEN].format(sign(OPEN, delivery.token)))


def _delivery_for(token: str):
    from .models import ContactSource, Delivery, with_editions

    if not token:
        return None
    delivery = (Delivery.objects.select_related("client")
                .filter(token=token, source=ContactSource.NEWSLETTER).first())
    if delivery is None:
        return None
    with_editions([delivery])
    return delivery if delivery.edition is not None else None


def verify_token(purpose: str, signed: str):
    """The Delivery a signed link belongs to, or None when tampered, swapped or unknown.

    For CLICK use verify_click, which also returns the target URL.
    """
    if purpose == CLICK:
        verified = verify_click(signed)
        return verified[0] if verified else None
    try:
        token = signing.Signer(salt=_salt(purpose)).unsign(signed or "")
    except (signing.BadSignature, ValueError):
        return None
    return _delivery_for(token)


def verify_click(signed: str):
    """(Delivery, target_url) for a signed click link, or None."""
    try:
        token, target = signing.loads(signed or "", salt=_salt(CLICK))
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not is_trackable_target(target):
        return None
    delivery = _delivery_for(token)
    return (delivery, target) if delivery is not None else None
