"""What an approval of an edition covers, and whether it still holds.

The snapshot is everything the client will see and everything that decides who gets it: the
edition's text and every section's settings; the publication's name, sender, sender address,
reply-to and tracking; the email language; the audience segment and the rule of every segment
it depends on (membership changes by refresh are not a change; a different segment or rule
is); the exclusion rules; and each picked product as it is named, typed and rated. The hash
rule itself is core.approval, shared with campaigns.

Writes (stamping, revoking) are the services' (newsletters.services); this module only reads.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from clients.models import Product
from core.approval import NO_SNAPSHOT, ApprovalCheck, approval_check, as_stored, snapshot_hash
from core.errors import ApplicationError
from segments.models import Segment
from segments.rules import rule_segment_refs

from .models import Edition, EditionStatus, ExclusionReason, Publication, SectionKind

# An approval is held (and can lapse) in these statuses; from SENDING on, the outbox is frozen.
APPROVAL_HELD = (EditionStatus.APPROVED, EditionStatus.SCHEDULED)

CHANGE_LABELS = {
    "subject": gettext_lazy("subject"),
    "preheader": gettext_lazy("preheader"),
    "sections": gettext_lazy("sections (text and settings)"),
    "publication": gettext_lazy("publication name"),
    "sender_mode": gettext_lazy("sender (firm or RM)"),
    "sender_name": gettext_lazy("sender name"),
    "sender_address": gettext_lazy("sender address"),
    "reply_to": gettext_lazy("reply-to address"),
    "tracking": gettext_lazy("open and click tracking"),
    "language": gettext_lazy("email language"),
    "audience": gettext_lazy("audience segment"),
    "audience_rules": gettext_lazy("audience rule"),
    "exclusions": gettext_lazy("exclusion rules"),
    "products": gettext_lazy("picked product"),
    NO_SNAPSHOT: gettext_lazy("approved before approval covered audience, sender and products"),
}


def _segment_rules(audience: Segment) -> dict:
    """The audience segment and every segment its rule depends on, by code: kind and rule."""
    rules: dict = {}
    pending = [audience.code]
    loaded = {audience.code: audience}
    while pending:
        missing = [c for c in pending if c not in loaded]
        loaded.update({s.code: s for s in Segment.objects.filter(code__in=missing)})
        next_round = []
        for code in pending:
            segment = loaded.get(code)
            rules[code] = None if segment is None else {"kind": segment.kind,
                                                        "rule": segment.rule}
            if segment is not None:
                next_round += [c for c in rule_segment_refs(segment.rule)
                               if c not in rules and c not in next_round]
        pending = next_round
    return rules


def _picked_codes(sections) -> list[str]:
    codes: list[str] = []
    for section in sections:
        if section.kind == SectionKind.PICKS:
            codes += [str(c) for c in (section.data or {}).get("product_codes") or []
                      if str(c) not in codes]
    return codes


def edition_approval_snapshot(edition: Edition) -> dict:
    """The approval snapshot of `edition`, read from the database as it is now."""
    from .rendering import email_language

    # Read afresh: a cached publication on `edition` may predate the change being checked.
    publication = Publication.objects.select_related("audience").get(pk=edition.publication_id)
    sections = list(edition.sections.order_by("position"))
    codes = _picked_codes(sections)
    products = {p.product_code: p for p in Product.objects.filter(product_code__in=codes)}
    audience = publication.audience
    return {
        "subject": edition.subject,
        "preheader": edition.preheader,
        "sections": [{"position": s.position, "kind": s.kind, "title": s.title,
                      "body": s.body, "data": s.data} for s in sections],
        "publication": publication.name,
        "sender_mode": publication.sender_mode,
        "sender_name": publication.from_name,
        "sender_address": publication.from_email,
        "reply_to": publication.reply_to,
        "tracking": publication.tracking_enabled,
        "language": email_language(),
        "audience": [audience.pk, audience.code],
        "audience_rules": _segment_rules(audience),
        "exclusions": sorted(ExclusionReason.values),
        "products": {code: (None if code not in products else {
            "name": products[code].name, "risk_level": products[code].risk_level,
            "product_type": products[code].product_type,
            "on_sale": products[code].is_active}) for code in codes},
    }


def approval_fields(edition: Edition) -> dict:
    """The Edition fields an approval of `edition` as it is now stores."""
    snapshot = edition_approval_snapshot(edition)
    return {"approved_hash": snapshot_hash(snapshot), "approved_snapshot": as_stored(snapshot)}


def edition_approval_check(edition: Edition) -> ApprovalCheck:
    """Does the stored approval of `edition` still cover it (as it is in the database)?"""
    return approval_check(approved_hash=edition.approved_hash,
                          approved_snapshot=edition.approved_snapshot,
                          current_snapshot=edition_approval_snapshot(edition))


def describe_changes(changed) -> str:
    """"sender name, picked product P001" in the current language, from the stored paths."""
    parts = []
    for path in changed or []:
        key, _dot, sub = str(path).partition(".")
        label = str(CHANGE_LABELS.get(key, key))
        parts.append(f"{label} {sub}" if sub else label)
    return pgettext("list separator", ", ").join(parts)


class ApprovalLapsed(ApplicationError):
    """Something the approval covered changed: the edition goes back to draft (409)."""

    def __init__(self, changed: list[str]):
        self.changed = list(changed)
        super().__init__(
            _("What compliance approved has changed (%(what)s): the edition is back to draft "
              "and must be approved again.") % {"what": describe_changes(self.changed)},
            code="approval_revoked", status=409, fields={"approval": self.changed})


def require_approval_holds(edition: Edition) -> None:
    """ApprovalLapsed unless the stored approval still covers `edition` exactly."""
    check = edition_approval_check(edition)
    if not check.holds:
        raise ApprovalLapsed(check.changed)
