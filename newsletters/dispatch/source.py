"""Newsletters as a source of the one email dispatcher (outreach.email): an edition's state,
its renderer, what happens when it has nothing left to send, and bounces.

Registered from NewslettersConfig.ready (`register`)."""

import logging

from django.db import transaction
from django.utils import timezone

from outreach.email import sources
from outreach.email.outbox import ledger_settle
from outreach.models import ContactSource

from .. import rendering
from ..models import Edition, EditionEvent, EditionStatus, Suppression

log = logging.getLogger(__name__)

_STATES = {EditionStatus.SENDING: sources.SENDING, EditionStatus.PAUSED: sources.PAUSED,
           EditionStatus.CANCELLED: sources.CANCELLED}


def edition_state(edition_id: int) -> str | None:
    status = Edition.objects.filter(pk=edition_id).values_list("status", flat=True).first()
    return None if status is None else _STATES.get(status, status)


class EditionRenderer:
    """Each client's message through the one renderer (newsletters.rendering): the edition's
    shared content read once per run, the personal data of a whole chunk in a few queries."""

    def __init__(self, edition: Edition, *, raw: bool = False):
        self.edition = edition
        self.content = rendering.EditionContent.of(edition)
        self.raw = raw
        self.contexts: dict[int, dict] = {}

    @classmethod
    def for_edition(cls, edition_id: int) -> "EditionRenderer":
        return cls(Edition.objects.select_related("publication", "publication__audience")
                   .prefetch_related("sections").get(pk=edition_id))

    def prepare(self, deliveries: list) -> None:
        """Personal data for a chunk; a failure here falls back to one client at a time."""
        for delivery in deliveries:
            delivery.edition = self.edition  # the one instance read at the start of the run
        try:
            self.contexts = rendering.delivery_contexts(
                edition=self.edition, clients=[d.client for d in deliveries],
                content=self.content)
        except Exception:
            log.exception("newsletter: batched personal data failed; per client instead")
            self.contexts = {}

    def message(self, delivery):
        context = self.contexts.pop(delivery.client_id, None)
        if context is None:
            context = rendering.delivery_context(edition=self.edition, client=delivery.client,
                                                 content=self.content)
        rendered = rendering.render_edition(edition=self.edition, context=context,
                                            delivery=delivery, content=self.content)
        if self.raw:
            return rendering.message_bytes(delivery=delivery, rendered=rendered), context
        return rendering.build_message(delivery=delivery, rendered=rendered), context


def edition_finish(edition_id: int) -> bool:
    """Sending → sent (the outbox has nothing open left: outreach.email.run.finish_if_done);
    the contact ledger is settled."""
    with transaction.atomic():
        changed = Edition.objects.filter(pk=edition_id, status=EditionStatus.SENDING).update(
            status=EditionStatus.SENT, sent_at=timezone.now(), updated_at=timezone.now())
        if changed:
            EditionEvent.objects.create(edition_id=edition_id, from_status=EditionStatus.SENDING,
                                        to_status=EditionStatus.SENT)
            ledger_settle(ContactSource.NEWSLETTER, edition_id)
    return bool(changed)


def suppression_add(*, client_id: int, publication_id: int | None, reason: str,
                    source_delivery_id: int | None = None) -> tuple[Suppression, bool]:
    """get_or_create by hand: PostgreSQL's unique constraint does not dedupe a NULL publication.
    A lifted row (a re-subscription) is history: a new unsubscribe makes a new row."""
    with transaction.atomic():
        existing = (Suppression.objects.select_for_update()
                    .filter(client_id=client_id, publication_id=publication_id, reason=reason,
                            lifted_at__isnull=True)
                    .first())
        if existing is not None:
            return existing, False
        return Suppression.objects.create(client_id=client_id, publication_id=publication_id,
                                          reason=reason,
                                          source_delivery_id=source_delivery_id), True


def bounced(delivery) -> None:
    """A hard bounce, from any source's email: no newsletter goes to that address again."""
    suppression_add(client_id=delivery.client_id, publication_id=None,
                    reason=Suppression.BOUNCED, source_delivery_id=delivery.pk)


def register() -> None:
    sources.register_source(ContactSource.NEWSLETTER, sources.EmailSource(
        state=edition_state, renderer=EditionRenderer.for_edition, done=edition_finish))
    sources.on_bounce(bounced)
