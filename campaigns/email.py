"""Campaign email steps on the one email dispatcher (outreach.email), beside newsletters.

When an email step runs (launch._step_run), each queued contact's variant is rendered for the
client once, written to the contact in the ledger ("what exactly did we send") and queued in
the outbox with the text as the row's context; the dispatcher then sends the rows with the
same claims, marks and retries as a newsletter. The minute beat settles the ledger from the
outbox (sent, failed, cancelled) and re-queues what is due.

Registered from CampaignsConfig.ready (`register`).
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import translation
from django.utils.html import escape, linebreaks
from django.utils.translation import gettext as _

from clients.models import Client
from outreach.email import sources
from outreach.email.links import unsubscribe_url
from outreach.email.outbox import outbox_add
from outreach.email.smtp import wire_bytes
from outreach.models import Contact, ContactSource, ContactStatus

from .models import Campaign
from .models import CampaignStatus as S

_STATES = {S.RUNNING: sources.SENDING, S.PAUSED: sources.PAUSED,
           S.CANCELLED: sources.CANCELLED}


def _domain() -> str:
    return (settings.CAMPAIGN_FROM_EMAIL.rpartition("@")[2] or "localhost").lower()


def emails_queue(*, campaign: Campaign, index: int, contacts: list[Contact],
                 texts: dict[int, tuple[str, str]]) -> int:
    """The step's queued email contacts -> outbox rows with their rendered text; a client
    whose address has gone since launch is skipped (the contact says so). Returns how many
    messages were queued."""
    addresses = dict(Client.objects.filter(pk__in=[c.client_id for c in contacts])
                     .values_list("pk", "email"))
    rows, skipped = [], []
    for contact in contacts:
        title, body = texts.get(contact.pk, ("", ""))
        address = (addresses.get(contact.client_id) or "").strip()
        if not address or not body:
            skipped.append(contact.pk)
            continue
        contact.title, contact.body = (title or campaign.name)[:200], body
        rows.append({"client_id": contact.client_id, "to_email": address,
                     "context": {"subject": contact.title, "body": body,
                                 "variant": contact.variant}})
    Contact.objects.bulk_update([c for c in contacts if c.pk not in set(skipped)],
                                ["title", "body"], batch_size=2000)
    Contact.objects.filter(pk__in=skipped).update(status=ContactStatus.SKIPPED,
                                                  error="no email address")
    outbox_add(source=ContactSource.CAMPAIGN, source_id=campaign.pk, step=index, rows=rows,
               domain=_domain())
    if rows:
        transaction.on_commit(lambda: _kick(campaign.pk))
    return len(rows)


def _kick(campaign_id: int) -> None:
    from outreach.email.tasks import email_dispatch_kick

    email_dispatch_kick(source=ContactSource.CAMPAIGN, source_id=campaign_id)


def campaign_state(campaign_id: int) -> str | None:
    status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
    return None if status is None else _STATES.get(status, status)


class CampaignEmailRenderer:
    """The message of one outbox row: the text rendered when the step ran (row.context),
    plain text with an HTML twin, the unsubscribe link in the body and in List-Unsubscribe
    (+ one-click Post, RFC 8058)."""

    raw = False

    def __init__(self, campaign_id: int):
        self.campaign = Campaign.objects.get(pk=campaign_id)

    def prepare(self, deliveries: list) -> None:
        """The text is on each row already: nothing to read."""

    def message(self, delivery):
        with translation.override(settings.LANGUAGE_CODE):  # as newsletters: the firm's
            return self._message(delivery)

    def _message(self, delivery):
        context = delivery.context or {}
        link = unsubscribe_url(delivery)
        footer = _("To stop receiving marketing email from us, open: %(link)s") % {"link": link}
        body = context.get("body", "")
        message = EmailMultiAlternatives(
            subject=context.get("subject") or self.campaign.name,
            body=f"{body}\n\n--\n{footer}\n",
            from_email=settings.CAMPAIGN_FROM_EMAIL,
            to=[delivery.to_email],
            headers={"Message-ID": delivery.message_id,
                     "List-Unsubscribe": f"<{link}>",
                     "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
        message.attach_alternative(
            f"{linebreaks(body, autoescape=True)}<hr><p style=\"font-size:12px;color:#666\">"
            f"<a href=\"{escape(link)}\">{escape(_('Unsubscribe'))}</a></p>", "text/html")
        return (wire_bytes(message) if self.raw else message), context


def register() -> None:
    sources.register_source(ContactSource.CAMPAIGN, sources.EmailSource(
        state=campaign_state, renderer=CampaignEmailRenderer))
