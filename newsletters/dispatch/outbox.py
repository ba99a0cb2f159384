"""Freeze the audience into the outbox, archive the edition as sent, queue the dispatch."""

import json
import secrets

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, Exists, OuterRef, Q, Value, When
from django.utils import timezone

from core.errors import ApplicationError
from core.models import AuditAction
from outreach.caps import caps_lock
from outreach.models import Channel, ContactSource, ContactStatus
from outreach.services import contacts_plan

from ..approval import require_approval_holds
from ..headers import check_edition_headers
from ..models import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionArchive,
    EditionEvent,
    EditionStatus,
    ExclusionReason,
    Suppression,
)
from ..rendering import TEMPLATE_VERSION


def _audience_with_reasons(edition: Edition):
    """The publication's audience, each client annotated with why they are left out ('' = in)."""
    from clients.models import Client
    from segments.models import SegmentMembership

    publication = edition.publication
    suppressed = Suppression.objects.filter(client=OuterRef("pk"), lifted_at__isnull=True)
    unsubscribed = suppressed.filter(
        Q(publication=publication) | Q(publication__isnull=True), reason=Suppression.UNSUBSCRIBED)
    bounced = suppressed.filter(reason=Suppression.BOUNCED)
    members = SegmentMembership.objects.filter(segment_id=publication.audience_id,
                                               client=OuterRef("pk"))
    reason = Case(
        When(consent_email=False, then=Value(ExclusionReason.NO_CONSENT.value)),
        When(Exists(unsubscribed), then=Value(ExclusionReason.UNSUBSCRIBED.value)),
        When(Q(email="") | Q(email__isnull=True), then=Value(ExclusionReason.NO_ADDRESS.value)),
        When(Exists(bounced), then=Value(ExclusionReason.BOUNCED.value)),
        default=Value(""), output_field=CharField())
    return (Client.objects.filter(Exists(members)).annotate(reason=reason)
            .values("id", "email", "reason").order_by())


def _message_domain(edition: Edition) -> str:
    return (edition.publication.from_email.rpartition("@")[2] or "localhost").lower()


def _insert_outbox(edition: Edition) -> None:
    """One Delivery per audience member, set-based; a repeated freeze inserts nothing twice."""
    audience = _audience_with_reasons(edition)
    domain = _message_domain(edition)
    if connection.vendor == "postgresql":
        select_sql, params = audience.query.sql_with_params()
        table = Delivery._meta.db_table
        # gen_random_uuid() draws from the server's strong random source (pg_strong_random).
        sql = f"""
            INSERT INTO {table} (source, source_id, step, client_id, status, exclusion_reason,
                                 to_email, message_id, token, attempts, clicks, last_error,
                                 context)
            SELECT %s, %s, 0, a.id,
                   CASE WHEN a.reason = '' THEN 'pending' ELSE 'excluded' END,
                   a.reason, COALESCE(a.email, ''),
                   '<edition-' || %s || '.client-' || a.id || '.' || left(a.token, 12)
                       || '@' || %s || '>',
                   a.token, 0, 0, '', '{{}}'::jsonb
            FROM (SELECT m.*, replace(gen_random_uuid()::text || gen_random_uuid()::text,
                                      '-', '') AS token
                  FROM ({select_sql}) m) a
            ON CONFLICT (source, source_id, step, client_id) DO NOTHING"""
        with connection.cursor() as cursor:
            cursor.execute(sql, [ContactSource.NEWSLETTER.value, edition.id, str(edition.id),
                                 domain, *params])
        return
    existing = set(edition.deliveries.values_list("client_id", flat=True))
    rows = []
    for member in audience.iterator(chunk_size=2000):
        if member["id"] in existing:
            continue
        token = secrets.token_urlsafe(32)
        rows.append(Delivery(
            source=ContactSource.NEWSLETTER, source_id=edition.id, client_id=member["id"],
            status=DeliveryStatus.EXCLUDED if member["reason"] else DeliveryStatus.PENDING,
            exclusion_reason=member["reason"], to_email=member["email"] or "", token=token,
            message_id=f"<edition-{edition.id}.client-{member['id']}.{token[:12]}@{domain}>"))
    Delivery.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


def _ledger_reserve(edition: Edition, *, day) -> None:
    """Every recipient's email goes into the contact ledger, queued: newsletters count against
    the contact policy's caps (a campaign launched this week sees them) without being held
    back by them -- clients subscribed to the publication."""
    caps_lock()
    contacts_plan(source=ContactSource.NEWSLETTER, source_id=edition.id, step=0,
                  channel=Channel.EMAIL, priority=9, exempt=True, planned_on=day,
                  content_version=edition.content_version,
                  members_sql=f"SELECT client_id, '' AS variant FROM "
                              f"{connection.ops.quote_name(Delivery._meta.db_table)} "
                              f"WHERE source = %s AND source_id = %s AND status = %s",
                  params=[ContactSource.NEWSLETTER, edition.id, DeliveryStatus.PENDING],
                  status=ContactStatus.QUEUED)


def _archive(edition: Edition) -> EditionArchive:
    counts = dict(edition.deliveries.values_list("status").annotate(n=Count("id")).order_by())
    excluded = dict(edition.deliveries.filter(status=DeliveryStatus.EXCLUDED)
                    .values_list("exclusion_reason").annotate(n=Count("id")).order_by())
    content = {
        "subject": edition.subject,
        "preheader": edition.preheader,
        "number": edition.number,
        "publication": edition.publication.slug,
        "sections": [
            {"position": s.position, "kind": s.kind, "title": s.title, "body": s.body,
             "data": s.data}
            for s in edition.sections.order_by("position")
        ],
    }
    segment = edition.publication.audience
    archive, _ = EditionArchive.objects.update_or_create(edition=edition, defaults={
        "content_version": edition.content_version,
        "content": json.loads(json.dumps(content, cls=DjangoJSONEncoder)),
        "template_version": TEMPLATE_VERSION,
        "audience_segment": segment.code,
        "audience_rule_version": segment.rule_version,
        "recipients": counts.get(DeliveryStatus.PENDING, 0),
        "excluded": excluded,
    })
    return archive


def _event(edition: Edition, *, actor, from_status: str, to_status: str, comment: str = ""):
    EditionEvent.objects.create(edition=edition, actor=actor, from_status=from_status,
                                to_status=to_status, comment=comment)


def edition_dispatch_start(*, edition: Edition, actor=None) -> Edition:
    """Freeze the audience into the outbox, archive the edition as sent, queue the dispatch.

    Idempotent: an edition already sending (or further) is returned unchanged. Refuses with
    newsletters.approval.ApprovalLapsed (nothing written) when what was approved changed; the
    caller puts the edition back to draft (services.edition_approval_recheck).
    """
    with transaction.atomic():
        edition = (Edition.objects.select_for_update().select_related("publication__audience")
                   .get(pk=edition.pk))
        if edition.status in (EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.SENT):
            return edition
        if edition.status not in (EditionStatus.APPROVED, EditionStatus.SCHEDULED):
            raise ApplicationError(
                f"Only an approved or scheduled edition can be sent (this one is "
                f"{edition.get_status_display()}).", code="edition_not_sendable")
        if edition.approved_version is not None and \
                edition.approved_version != edition.content_version:
            raise ApplicationError("The edition changed after approval; submit it again.",
                                   code="edition_not_sendable")
        require_approval_holds(edition)
        check_edition_headers(edition)  # stored before the rule: refuse, queue nothing
        now = timezone.now()
        from_status = edition.status
        _insert_outbox(edition)
        _ledger_reserve(edition, day=timezone.localdate(now))
        edition.status = EditionStatus.SENDING
        edition.send_started_at = now
        edition.audience_frozen_at = now
        edition.audience_rule_version = edition.publication.audience.rule_version
        edition.save(update_fields=["status", "send_started_at", "audience_frozen_at",
                                    "audience_rule_version", "updated_at"])
        archive = _archive(edition)
        _event(edition, actor=actor, from_status=from_status, to_status=EditionStatus.SENDING)
        from ..services import edition_audit

        edition_audit(edition=edition, action=AuditAction.SENT, actor=actor,
                      recipients=archive.recipients,
                      excluded=sum(archive.excluded.values()))
        transaction.on_commit(lambda: edition_dispatch_kick(edition_id=edition.id))
    return edition


def edition_dispatch_kick(*, edition_id: int, tasks: int | None = None) -> None:
    """Queue dispatch tasks for an edition; extra ones find nothing left and return at once."""
    from outreach.email.tasks import email_dispatch_kick

    email_dispatch_kick(source=ContactSource.NEWSLETTER, source_id=edition_id,
                        tasks=tasks if tasks is not None else settings.NEWSLETTER_DISPATCH_TASKS)
