"""Who can be reached on a channel: consent, opt-outs and contact details, as filters for
set-based work (a campaign's launch, a step's run). One place for the rule per channel.

- email: email marketing consent and an address;
- SMS and app push: SMS (mobile) marketing consent and a phone number -- app accounts are
  registered by phone, and the client model has no separate push consent;
- phone call and WeChat through the RM: phone consent ("do not call" turns it off
  everywhere), a phone number and an RM to make the contact.
An opt-out of the channel (outreach.OptOut) holds for every campaign.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from .models import Channel, OptOut

_CONSENT = {Channel.EMAIL: "consent_email", Channel.SMS: "consent_sms",
            Channel.PUSH: "consent_sms", Channel.WECHAT: "consent_phone",
            Channel.PHONE: "consent_phone"}


def consent_q(channel: str, *, prefix: str = "") -> Q:
    return Q(**{f"{prefix}{_CONSENT[channel]}": True})


def contact_details_q(channel: str, *, prefix: str = "") -> Q:
    if channel == Channel.EMAIL:
        return ~Q(**{f"{prefix}email": ""})
    has_phone = ~Q(**{f"{prefix}phone": ""})
    if channel in (Channel.WECHAT, Channel.PHONE):
        return has_phone & Q(**{f"{prefix}rm__isnull": False})
    return has_phone


def opted_out(channel: str, *, client_ref: str = "pk") -> Exists:
    return Exists(OptOut.objects.filter(client_id=OuterRef(client_ref), channel=channel))
