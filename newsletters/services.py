"""Writes for newsletters: publications, editions and their approval state machine, tests,
forbidden phrases.

Every status change goes through `edition_transition`, which checks ALLOWED_TRANSITIONS and
records an EditionEvent; anything else is ApplicationError code "invalid_transition" (409).
Every transition is also written to the audit log (object type "edition").

Approval covers everything (newsletters.approval): approving stores the snapshot and its hash;
changing the edition, its publication, a picked product or the audience's rule afterwards puts
an approved or scheduled edition back to draft (`edition_approval_recheck`, audited
APPROVAL_REVOKED), and scheduling and sending recompute the hash and refuse ("approval_revoked",
409) if it differs, whatever path the change took.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from core.access import has_role
from core.errors import ApplicationError
from core.models import AuditAction
from core.permissions import roles_for
from core.services import audit_record, own_rm_required
from outreach.models import ForbiddenPhrase

from . import dispatch
from .approval import (
    APPROVAL_HELD,
    ApprovalLapsed,
    approval_fields,
    edition_approval_check,
    require_approval_holds,
)
from .compliance import edition_compliance_issues
from .headers import check_edition_headers
from .models import (
    Cadence,
    ConsentMethod,
    Edition,
    EditionEvent,
    EditionSection,
    EditionStatus,
    Publication,
    SenderMode,
    Suppression,
)
from .rendering import email_message, render_preview
from .sections import sections_validate

S = EditionStatus
# The roles of core.permissions' table: the services refuse what the pages and the API refuse.
COMPOSE_ROLES = tuple(roles_for("newsletters.compose"))
APPROVE_ROLES = tuple(roles_for("newsletters.approve"))
PHRASE_ROLES = tuple(roles_for("newsletters.phrases"))
EDITABLE = (S.DRAFT, S.REJECTED)

# from -> the statuses it may move to. Sending -> sent is the dispatcher's (via
# edition_transition); everything else has a service below.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.REJECTED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SCHEDULED, S.SENDING, S.CANCELLED, S.DRAFT}),
    S.SCHEDULED: frozenset({S.SCHEDULED, S.SENDING, S.CANCELLED, S.DRAFT}),
    S.SENDING: frozenset({S.PAUSED, S.SENT, S.CANCELLED}),
    S.PAUSED: frozenset({S.SENDING, S.CANCELLED}),
    S.SENT: frozenset(),
    S.CANCELLED: frozenset(),
}


# --- helpers ----------------------------------------------------------------------------

def _require_role(actor, roles, message: str) -> None:
    if not has_role(actor, *roles):
        raise ApplicationError(message, code="permission_denied", status=403)


def check_transition(edition: Edition, to_status: str) -> None:
    """ApplicationError "invalid_transition" (409) unless the table allows the move."""
    from_status = edition.status
    if to_status not in ALLOWED_TRANSITIONS.get(from_status, frozenset()):
        raise ApplicationError(
            _("An edition that is %(from)s cannot become %(to)s.")
            % {"from": S(from_status).label, "to": S(to_status).label},
            code="invalid_transition", status=409,
            fields={"status": [f"{from_status} -> {to_status} is not allowed"]})


@transaction.atomic
def edition_transition(*, edition: Edition, to_status: str, actor=None, comment: str = "",
                       changes: dict | None = None) -> Edition:
    """Move `edition` to `to_status` if the table allows it; record the event.

    `changes` are further fields saved with the status (e.g. approved_by).
    """
    edition.refresh_from_db(
        from_queryset=Edition.objects.select_for_update().select_related("publication"))
    from_status = edition.status
    check_transition(edition, to_status)
    edition.status = to_status
    fields = ["status", "updated_at"]
    for name, value in (changes or {}).items():
        setattr(edition, name, value)
        fields.append(name)
    edition.save(update_fields=fields)
    EditionEvent.objects.create(edition=edition, actor=actor, from_status=from_status,
                                to_status=to_status, comment=comment or "")
    return edition


def edition_audit(*, edition: Edition, action: str, actor=None, **detail) -> None:
    """One audit row about `edition`: its title and publication, plus `detail` (short keys)."""
    audit_record(action=action, actor=actor, object_type="edition", object_id=str(edition.pk),
                 detail={"title": f"#{edition.number} {edition.subject}",
                         "publication": edition.publication.name, **detail})


# --- approval covers everything ---------------------------------------------------------

@transaction.atomic
def edition_approval_recheck(*, edition: Edition, actor=None) -> list[str]:
    """If `edition` holds an approval that no longer covers it, put it back to draft (event
    and APPROVAL_REVOKED audit row naming what changed). Returns what changed ([] = holds, or
    no approval held)."""
    edition.refresh_from_db(
        from_queryset=Edition.objects.select_for_update().select_related("publication"))
    if edition.status not in APPROVAL_HELD:
        return []
    check = edition_approval_check(edition)
    if check.holds:
        return []
    from_status = edition.status
    edition_transition(edition=edition, to_status=S.DRAFT, actor=actor,
                       comment=", ".join(check.changed),
                       changes={"approved_version": None, "approved_hash": "",
                                "approved_by": None, "approved_at": None,
                                "scheduled_at": None})
    edition_audit(edition=edition, action=AuditAction.APPROVAL_REVOKED, actor=actor,
                  was=from_status, changed=check.changed)
    return check.changed


def editions_approval_recheck(*, publication_id: int | None = None,
                              product_code: str | None = None, actor=None) -> list[int]:
    """edition_approval_recheck for every edition holding an approval (or those of one
    publication, or those whose approval covers one product); the ids sent back to draft.
    Cheap: only approved and scheduled editions are read."""
    held = Edition.objects.filter(status__in=APPROVAL_HELD)
    if publication_id is not None:
        held = held.filter(publication_id=publication_id)
    revoked = []
    for edition in held:
        snapshot = edition.approved_snapshot
        if product_code is not None and isinstance(snapshot, dict) \
                and product_code not in (snapshot.get("products") or {}):
            continue
        # Lock (edition_approval_recheck) only the ones that look lapsed.
        if not edition_approval_check(edition).holds \
                and edition_approval_recheck(edition=edition, actor=actor):
            revoked.append(edition.pk)
    return revoked


@contextmanager
def _back_to_draft_if_lapsed(edition: Edition, actor):
    """Run a send-path step; if it refused because the approval lapsed (ApprovalLapsed, raised
    inside its transaction, which rolls back), put the edition back to draft in a transaction
    of its own and re-raise."""
    try:
        yield
    except ApprovalLapsed:
        edition_approval_recheck(edition=edition, actor=actor)
        raise


# --- publications -----------------------------------------------------------------------

PUBLICATION_FIELDS = ("name", "slug", "description", "audience", "sender_mode", "from_name",
                      "from_email", "reply_to", "cadence", "tracking_enabled", "is_active")


def _validate_publication(publication: Publication) -> None:
    from django.core.exceptions import ValidationError

    if publication.sender_mode not in SenderMode.values:
        raise ApplicationError(_("Unknown sender mode."), fields={"sender_mode": ["invalid"]})
    if publication.cadence not in Cadence.values:
        raise ApplicationError(_("Unknown cadence."), fields={"cadence": ["invalid"]})
    try:
        publication.full_clean(exclude=["created_by"], validate_unique=False)
    except ValidationError as exc:
        raise ApplicationError(_("Check the publication's fields."),
                               fields=exc.message_dict) from exc
    clash = Publication.objects.filter(slug=publication.slug).exclude(pk=publication.pk)
    if clash.exists():
        raise ApplicationError(_("A publication with this code already exists."),
                               code="duplicate", status=409, fields={"slug": ["taken"]})


@transaction.atomic
def publication_create(*, actor, name: str, slug: str, audience, from_name: str,
                       from_email: str, sender_mode: str = SenderMode.FIRM,
                       reply_to: str = "", cadence: str = Cadence.WEEKLY,
                       tracking_enabled: bool = False, description: str = "",
                       is_active: bool = True) -> Publication:
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff manage publications."))
    publication = Publication(
        name=name, slug=slug, audience=audience, from_name=from_name, from_email=from_email,
        sender_mode=sender_mode, reply_to=reply_to, cadence=cadence,
        tracking_enabled=tracking_enabled, description=description, is_active=is_active,
        created_by=actor)
    _validate_publication(publication)
    publication.save()
    return publication


@transaction.atomic
def publication_update(*, publication: Publication, actor, **changes) -> Publication:
    """Change a publication; its editions whose approval no longer holds (a new audience,
    sender, reply-to ...) go back to draft at once."""
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff manage publications."))
    unknown = set(changes) - set(PUBLICATION_FIELDS)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise ApplicationError(_("Unknown fields: %(names)s.") % {"names": names},
                               fields={n: ["unknown field"] for n in sorted(unknown)})
    publication = Publication.objects.select_for_update().get(pk=publication.pk)
    for name, value in changes.items():
        setattr(publication, name, value)
    _validate_publication(publication)
    publication._approval_rechecked_by_service = True  # newsletters.signals: not twice
    publication.save(update_fields=[*changes.keys(), "updated_at"])
    editions_approval_recheck(publication_id=publication.pk, actor=actor)
    return publication


def _check_texts(subject, preheader) -> None:
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 200:
        raise ApplicationError(_("A subject of 1-200 characters is required."),
                               fields={"subject": [_("required, at most 200 characters")]})
    if not isinstance(preheader, str) or len(preheader) > 200:
        raise ApplicationError(_("The preheader has at most 200 characters."),
                               fields={"preheader": [_("at most 200 characters")]})


def _replace_sections(edition: Edition, sections: list[dict]) -> None:
    edition.sections.all().delete()
    EditionSection.objects.bulk_create(
        [EditionSection(edition=edition, **section) for section in sections])


# --- editions ---------------------------------------------------------------------------

@transaction.atomic
def edition_create(*, publication: Publication, subject: str, preheader: str = "",
                   sections: list | None = None, author) -> Edition:
    _require_role(author, COMPOSE_ROLES, _("Only operations staff compose editions."))
    _check_texts(subject, preheader)
    cleaned = sections_validate(sections or [])
    Publication.objects.select_for_update().filter(pk=publication.pk).first()
    last = publication.editions.aggregate(n=Max("number"))["n"] or 0
    edition = Edition.objects.create(publication=publication, number=last + 1,
                                     subject=subject.strip(), preheader=preheader.strip(),
                                     author=author)
    _replace_sections(edition, cleaned)
    EditionEvent.objects.create(edition=edition, actor=author, from_status="",
                                to_status=S.DRAFT)
    return edition


@transaction.atomic
def edition_update(*, edition: Edition, actor, subject: str | None = None,
                   preheader: str | None = None, sections: list | None = None) -> Edition:
    """Change an edition not yet sending; bumps content_version, replaces sections whole.

    An approved or scheduled edition goes back to draft if the change touches what was
    approved (saving it unchanged keeps the approval)."""
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff compose editions."))
    edition.refresh_from_db(
        from_queryset=Edition.objects.select_for_update().select_related("publication"))
    if edition.status not in (*EDITABLE, *APPROVAL_HELD):
        raise ApplicationError(
            _("Only an edition that is not being sent can be changed; this one is "
              "%(status)s.") % {"status": S(edition.status).label},
            code="not_editable", status=409)
    subject = edition.subject if subject is None else subject
    preheader = edition.preheader if preheader is None else preheader
    _check_texts(subject, preheader)
    if sections is not None:
        _replace_sections(edition, sections_validate(sections))
    edition.subject, edition.preheader = subject.strip(), preheader.strip()
    if edition.status in APPROVAL_HELD and edition_approval_check(edition).holds:
        return edition
    edition.content_version += 1
    edition.approved_version = None
    edition.save(update_fields=["subject", "preheader", "content_version", "approved_version",
                                "updated_at"])
    edition_approval_recheck(edition=edition, actor=actor)
    return edition


def _raise_if_forbidden_phrases(edition: Edition) -> None:
    issues = edition_compliance_issues(edition=edition)
    if not issues:
        return
    fields: dict[str, list[str]] = {}
    for issue in issues:
        where = issue["field"] if issue["section_position"] is None else (
            f"sections[{issue['section_position'] - 1}].{issue['field']}")
        fields.setdefault(where, []).append(
            f"\u201c{issue['phrase']}\u201d @ {issue['start']}-{issue['end']}")
    error = ApplicationError(
        _("The edition contains phrases forbidden in financial marketing: %(phrases)s.")
        % {"phrases": ", ".join(sorted({i["phrase"] for i in issues}))},
        code="forbidden_phrases", fields=fields)
    error.issues = issues
    raise error


@transaction.atomic
def edition_submit(*, edition: Edition, actor) -> Edition:
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff submit editions."))
    edition.refresh_from_db(
        from_queryset=Edition.objects.select_for_update().select_related("publication"))
    if edition.status in EDITABLE:
        if not edition.sections.exists():
            raise ApplicationError(_("Add at least one section before submitting."),
                                   code="empty_edition", fields={"sections": ["empty"]})
        _raise_if_forbidden_phrases(edition)
    edition_transition(edition=edition, to_status=S.SUBMITTED, actor=actor,
                       changes={"review_comment": ""})
    edition_audit(edition=edition, action=AuditAction.SUBMITTED, actor=actor,
                  version=edition.content_version)
    return edition


@transaction.atomic
def edition_approve(*, edition: Edition, actor, content_version: int | None = None,
                    comment: str = "") -> Edition:
    """Compliance approves the current content version; never the author's own edition.

    Stores the approval snapshot (newsletters.approval) and its hash: what goes out later
    must hash the same."""
    _require_role(actor, APPROVE_ROLES, _("Only compliance approves editions."))
    edition.refresh_from_db(
        from_queryset=Edition.objects.select_for_update().select_related("publication"))
    if edition.author_id == getattr(actor, "pk", None):
        raise ApplicationError(_("The author of an edition can never approve it."),
                               code="own_edition", status=403)
    if content_version is not None and content_version != edition.content_version:
        raise ApplicationError(
            _("The edition changed since you opened it (version %(seen)s, now %(now)s).")
            % {"seen": content_version, "now": edition.content_version},
            code="stale_version", status=409)
    if edition.status == S.SUBMITTED:
        _raise_if_forbidden_phrases(edition)
    check_edition_headers(edition)
    check_transition(edition, S.APPROVED)
    edition_transition(
        edition=edition, to_status=S.APPROVED, actor=actor, comment=comment,
        changes={"approved_by": actor, "approved_at": timezone.now(),
                 "approved_version": edition.content_version,
                 **approval_fields(edition),
                 "review_comment": comment or ""})
    edition_audit(edition=edition, action=AuditAction.APPROVED, actor=actor,
                  version=edition.content_version,
                  **({"comment": comment[:500]} if comment else {}))
    return edition


@transaction.atomic
def edition_reject(*, edition: Edition, actor, comment: str) -> Edition:
    _require_role(actor, APPROVE_ROLES, _("Only compliance rejects editions."))
    edition.refresh_from_db(
        from_queryset=Edition.objects.select_for_update().select_related("publication"))
    check_transition(edition, S.REJECTED)
    comment = (comment or "").strip() if isinstance(comment, str) else ""
    if not comment:
        raise ApplicationError(_("Say why the edition is rejected."), code="comment_required",
                               fields={"comment": [_("required")]})
    edition_transition(edition=edition, to_status=S.REJECTED, actor=actor, comment=comment,
                       changes={"review_comment": comment})
    edition_audit(edition=edition, action=AuditAction.REJECTED, actor=actor,
                  comment=comment[:500])
    return edition


def _require_approved_content(edition: Edition) -> None:
    if edition.approved_version != edition.content_version:
        raise ApplicationError(_("The current content has not been approved."),
                               code="not_approved", status=409)


def edition_schedule(*, edition: Edition, actor, at: dt.datetime) -> Edition:
    """Approved or scheduled -> scheduled at `at`; refused (and back to draft) if the approval
    no longer covers the edition."""
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff schedule editions."))
    if not isinstance(at, dt.datetime) or timezone.is_naive(at):
        raise ApplicationError(_("Give the send time with its time zone."),
                               fields={"at": [_("aware date-time required")]})
    if at <= timezone.now():
        raise ApplicationError(_("The send time must be in the future."),
                               fields={"at": [_("must be in the future")]})
    with _back_to_draft_if_lapsed(edition, actor), transaction.atomic():
        edition.refresh_from_db(
            from_queryset=Edition.objects.select_for_update().select_related("publication"))
        check_transition(edition, S.SCHEDULED)
        _require_approved_content(edition)
        require_approval_holds(edition)
        check_edition_headers(edition)
        edition_transition(edition=edition, to_status=S.SCHEDULED, actor=actor,
                           comment=at.isoformat(), changes={"scheduled_at": at})
        edition_audit(edition=edition, action=AuditAction.SCHEDULED, actor=actor,
                      at=at.isoformat())
    return edition


def _refreshed(edition: Edition) -> Edition:
    edition.refresh_from_db()
    return edition


def edition_send_now(*, edition: Edition, actor=None) -> Edition:
    """Approved or scheduled -> sending: newsletters.dispatch.edition_dispatch_start checks
    the approval still holds, freezes the audience into the outbox, archives, moves the status
    and queues the work on commit. If the approval lapsed: back to draft, ApprovalLapsed (409).

    actor None is the scheduler (Celery beat) sending a scheduled edition when due.
    """
    if actor is not None:
        _require_role(actor, COMPOSE_ROLES, _("Only operations staff send editions."))
    with _back_to_draft_if_lapsed(edition, actor), transaction.atomic():
        edition.refresh_from_db(
            from_queryset=Edition.objects.select_for_update().select_related("publication"))
        check_transition(edition, S.SENDING)
        _require_approved_content(edition)
        dispatch.edition_dispatch_start(edition=edition, actor=actor)
    return _refreshed(edition)


@transaction.atomic
def edition_pause(*, edition: Edition, actor) -> Edition:
    """The dispatcher checks the status between chunks and stops claiming rows."""
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff pause sending."))
    edition.refresh_from_db(
        from_queryset=Edition.objects.select_for_update().select_related("publication"))
    check_transition(edition, S.PAUSED)
    dispatch.edition_dispatch_pause(edition=edition, actor=actor)
    edition_audit(edition=edition, action=AuditAction.DISPATCH_CONTROLLED, actor=actor,
                  control="pause")
    return _refreshed(edition)


@transaction.atomic
def edition_resume(*, edition: Edition, actor) -> Edition:
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff resume sending."))
    edition.refresh_from_db(
        from_queryset=Edition.objects.select_for_update().select_related("publication"))
    if edition.status != S.PAUSED:
        raise ApplicationError(
            _("Only a paused edition can be resumed; this one is %(status)s.")
            % {"status": S(edition.status).label}, code="invalid_transition", status=409)
    dispatch.edition_dispatch_resume(edition=edition, actor=actor)
    edition_audit(edition=edition, action=AuditAction.DISPATCH_CONTROLLED, actor=actor,
                  control="resume")
    return _refreshed(edition)


@transaction.atomic
def edition_cancel(*, edition: Edition, actor, comment: str = "") -> Edition:
    """Before approval a plain transition; from approved on, the dispatcher also cancels
    every outbox row not yet sent."""
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff cancel editions."))
    edition.refresh_from_db(
        from_queryset=Edition.objects.select_for_update().select_related("publication"))
    check_transition(edition, S.CANCELLED)
    was = edition.status
    if edition.status in (S.DRAFT, S.REJECTED, S.SUBMITTED):
        edition_transition(edition=edition, to_status=S.CANCELLED, actor=actor,
                           comment=comment)
    else:
        dispatch.edition_dispatch_cancel(edition=edition, actor=actor, comment=comment)
    edition_audit(edition=edition, action=AuditAction.DISPATCH_CONTROLLED, actor=actor,
                  control="cancel", was=was, **({"comment": comment[:500]} if comment else {}))
    return _refreshed(edition)


def edition_send_test(*, edition: Edition, actor, client) -> EmailMultiAlternatives:
    """Render `edition` as `client` would get it and send it to the actor's own address."""
    _require_role(actor, (*COMPOSE_ROLES, *APPROVE_ROLES),
                  _("Only operations and compliance staff send test emails."))
    if not getattr(actor, "email", ""):
        raise ApplicationError(_("Your account has no email address to send the test to."),
                               code="no_address", fields={"email": [_("missing")]})
    check_edition_headers(edition)
    rendered = render_preview(edition=edition, client=client)
    message = email_message(edition=edition, client=client, rendered=rendered, to=actor.email,
                            subject_prefix="[TEST] ")
    try:
        message.send()
    except OSError as exc:  # refused, timed out, dropped, or any SMTP error (SMTPException)
        raise ApplicationError(
            _("The mail server could not be reached or refused the message; no test was sent. "
              "Try again later."),
            code="smtp_unavailable", status=503) from exc
    edition_audit(edition=edition, action=AuditAction.TEST_SENT, actor=actor, to=actor.email,
                  client=client.client_no)
    return message


# --- forbidden phrases ------------------------------------------------------------------

def _require_phrase_editor(actor, object_id="") -> None:
    """Only compliance (and admins) edit the list; anyone else is refused and audited."""
    if not has_role(actor, *PHRASE_ROLES):
        audit_record(action=AuditAction.ACCESS_DENIED, actor=actor,
                     object_type="forbidden_phrase", object_id=str(object_id))
        raise ApplicationError(_("Only compliance staff edit the list of forbidden phrases."),
                               code="permission_denied", status=403)


def forbidden_phrases_audit(*, actor, added=(), removed=()) -> None:
    """PHRASES_CHANGED with the phrases added and removed (the page, the admin)."""
    audit_record(action=AuditAction.PHRASES_CHANGED, actor=actor, object_type="forbidden_phrase",
                 object_id=", ".join([*added, *removed])[:128],
                 detail={k: list(v) for k, v in (("added", added), ("removed", removed)) if v})


def forbidden_phrase_add(*, phrase: str, actor) -> ForbiddenPhrase:
    _require_phrase_editor(actor)  # outside the transaction: the denial's audit row stays
    phrase = (phrase or "").strip() if isinstance(phrase, str) else ""
    if not phrase or len(phrase) > 100:
        raise ApplicationError(_("A phrase of 1-100 characters is required."),
                               fields={"phrase": [_("required, at most 100 characters")]})
    with transaction.atomic():
        existing = ForbiddenPhrase.objects.filter(phrase__iexact=phrase).first()
        if existing is not None:
            return existing
        created = ForbiddenPhrase.objects.create(phrase=phrase, created_by=actor)
        forbidden_phrases_audit(actor=actor, added=[phrase])
    return created


def forbidden_phrase_remove(*, phrase: ForbiddenPhrase, actor) -> None:
    _require_phrase_editor(actor, phrase.pk)
    if phrase.is_builtin:
        raise ApplicationError(_("Built-in phrases cannot be removed."), code="builtin",
                               status=409)
    with transaction.atomic():
        phrase.delete()
        forbidden_phrases_audit(actor=actor, removed=[phrase.phrase])


@transaction.atomic
def publication_delete(*, publication: Publication, actor) -> None:
    """Only a publication with no editions (the FK protects them); else ProtectedError."""
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff manage publications."))
    if publication.editions.exists():
        raise ApplicationError(_("A publication with editions cannot be deleted."),
                               code="in_use", status=409)
    publication.delete()


# --- re-subscription: a consent the client gives their RM -------------------------------------
def newsletter_resubscribe_check(*, client, actor) -> None:
    """A consent the client states is recorded by the RM who heard it: the own RM only."""
    own_rm_required(actor=actor, client=client, attempted="newsletter_resubscribe",
                    message=_("Only the client's own RM can record a re-subscription."))


def newsletter_resubscribe(*, client, actor, how: str, note: str = "",
                           suppression_ids: list[int] | None = None) -> list[Suppression]:
    """The client asked their RM for the newsletters again: lift the client's unsubscribes in
    force (those of `suppression_ids`, or all), each kept as history with who lifted it, when,
    and how the client gave consent. Only rows in force keep a client out of the outbox, so the
    next edition frozen reaches the client again. Audited as NEWSLETTER_RESUBSCRIBE."""
    # Checked before the transaction opens: the denial's audit row must outlive the refusal.
    newsletter_resubscribe_check(client=client, actor=actor)
    if how not in ConsentMethod.values:
        raise ApplicationError(_("Say how the client gave consent."),
                               fields={"how": [_("Choose how the client gave consent.")]})
    note = (note or "").strip()
    if len(note) > 1000:
        raise ApplicationError(_("The note is too long (at most 1,000 characters)."),
                               fields={"note": [_("at most 1,000 characters")]})
    with transaction.atomic():
        in_force = (Suppression.objects.select_for_update(of=("self",))
                    .select_related("publication")
                    .filter(client=client, reason=Suppression.UNSUBSCRIBED,
                            lifted_at__isnull=True).order_by("id"))
        if suppression_ids is not None:
            in_force = in_force.filter(pk__in=suppression_ids)
        lifted = list(in_force)
        if not lifted:
            raise ApplicationError(_("The client has no unsubscribe in force to lift."),
                                   code="nothing_to_lift", status=409)
        now = timezone.now()
        Suppression.objects.filter(pk__in=[s.pk for s in lifted]).update(
            lifted_at=now, lifted_by=actor, lifted_how=how, lifted_note=note)
        audit_record(action=AuditAction.NEWSLETTER_RESUBSCRIBE, actor=actor,
                     object_type="client", object_id=client.client_no,
                     detail={"how": how, "suppressions": [s.pk for s in lifted],
                             "publications": [s.publication.slug if s.publication_id else "*"
                                              for s in lifted]})
    for row in lifted:
        row.lifted_at, row.lifted_by, row.lifted_how, row.lifted_note = now, actor, how, note
    return lifted
