"""Writes of campaigns: save, the maker-checker workflow, launch, pause, resume, cancel.

Every status change goes through `campaign_transition` (the table below; anything else is a
409 "invalid_transition") and is written to the campaign's events and the audit log. Approval
covers everything (campaigns.approval): a change to a submitted or approved campaign sends it
back to draft (audited APPROVAL_REVOKED), and launch recomputes the snapshot and refuses if it
differs. The author never approves (403).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from clients.ingest import IngestRejected
from clients.ingest.validate import RowError
from core.access import has_role
from core.errors import ApplicationError
from core.models import AuditAction, JobStatus, Role
from core.services import audit_record
from outreach.compliance import forbidden_phrases_found, phrase_list
from outreach.models import Channel, Contact, ContactSource, RMTask, TaskOutcome, TaskStatus
from outreach.selectors import task_queryset_for
from outreach.services import NOTE_MAX, ORIGIN_CONTACT, contacts_cancel, task_update

from .approval import approval_fields, campaign_approval_check
from .models import Campaign, CampaignEvent, CampaignLaunch, CampaignMember
from .models import CampaignStatus as S
from .tasks import campaign_launch_task
from .validation import campaign_validate

COMPOSE_ROLES = (Role.OPS, Role.ADMIN)
APPROVE_ROLES = (Role.COMPLIANCE,)

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.REJECTED: frozenset({S.SUBMITTED, S.DRAFT, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.APPROVED, S.REJECTED, S.DRAFT, S.CANCELLED}),
    S.APPROVED: frozenset({S.SCHEDULED, S.DRAFT, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.RUNNING, S.APPROVED, S.CANCELLED}),
    S.RUNNING: frozenset({S.PAUSED, S.COMPLETED, S.CANCELLED}),
    S.PAUSED: frozenset({S.RUNNING, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}
EDITABLE = (S.DRAFT, S.REJECTED, S.SUBMITTED, S.APPROVED)
AUDIT_OBJECT = "campaign"


def _require_role(actor, roles, message: str) -> None:
    if not has_role(actor, *roles):
        raise ApplicationError(message, code="forbidden", status=403)


def _locked(campaign: Campaign) -> Campaign:
    campaign.refresh_from_db(from_queryset=Campaign.objects.select_for_update())
    return campaign


def campaign_audit(*, campaign: Campaign, action: str, actor, **detail) -> None:
    audit_record(action=action, actor=actor, object_type=AUDIT_OBJECT, object_id=campaign.code,
                 detail={"status": campaign.status, "version": campaign.content_version,
                         **detail})


def check_transition(campaign: Campaign, to_status: str) -> None:
    if to_status not in ALLOWED_TRANSITIONS.get(campaign.status, frozenset()):
        raise ApplicationError(
            _("A campaign that is %(from)s cannot become %(to)s.")
            % {"from": S(campaign.status).label, "to": S(to_status).label},
            code="invalid_transition", status=409,
            fields={"status": [f"{campaign.status} -> {to_status} is not allowed"]})


def campaign_transition(*, campaign: Campaign, to_status: str, actor=None, comment: str = "",
                        changes: dict | None = None, detail: dict | None = None) -> Campaign:
    check_transition(campaign, to_status)
    from_status = campaign.status
    campaign.status = to_status
    fields = ["status", "updated_at"]
    for name, value in (changes or {}).items():
        setattr(campaign, name, value)
        fields.append(name)
    campaign.save(update_fields=fields)
    CampaignEvent.objects.create(campaign=campaign, actor=actor, action=to_status,
                                 comment=comment,
                                 detail={"from": from_status, **(detail or {})})
    return campaign


# --- saving -----------------------------------------------------------------------------

@transaction.atomic
def campaign_create(*, data, actor) -> Campaign:
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff create campaigns."))
    values = campaign_validate(data)
    campaign = Campaign.objects.create(author=actor, **values)
    CampaignEvent.objects.create(campaign=campaign, actor=actor, action="created")
    campaign_audit(campaign=campaign, action=AuditAction.CAMPAIGN_SAVED, actor=actor,
                   created=True)
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, data, actor) -> Campaign:
    """Change a campaign that has not been launched. A change to a submitted or approved one
    sends it back to draft: the approval no longer covers it."""
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff change campaigns."))
    campaign = _locked(campaign)
    if campaign.status not in EDITABLE:
        raise ApplicationError(
            _("A campaign that is %(status)s can no longer be changed.")
            % {"status": S(campaign.status).label}, code="invalid_transition", status=409)
    values = campaign_validate(data, instance=campaign)
    changed = [name for name, value in values.items()
               if _comparable(getattr(campaign, name)) != _comparable(value)]
    if not changed:
        return campaign
    for name in changed:
        setattr(campaign, name, values[name])
    campaign.content_version += 1
    campaign.save(update_fields=[*changed, "content_version", "updated_at"])
    campaign_audit(campaign=campaign, action=AuditAction.CAMPAIGN_SAVED, actor=actor,
                   changed=changed)
    if campaign.status in (S.SUBMITTED, S.APPROVED):
        was = campaign.status
        campaign_transition(campaign=campaign, to_status=S.DRAFT, actor=actor,
                            changes={"approved_hash": "", "approved_snapshot": None,
                                     "approved_by": None, "approved_at": None},
                            detail={"changed": changed})
        campaign_audit(campaign=campaign, action=AuditAction.APPROVAL_REVOKED, actor=actor,
                       was=was, changed=changed)
    return campaign


def _comparable(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


@transaction.atomic
def campaign_delete(*, campaign: Campaign, actor) -> None:
    """Only a campaign that never launched is deleted; a launched one is cancelled instead, so
    its target list and contacts stay on record."""
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff delete campaigns."))
    campaign = _locked(campaign)
    if campaign.status not in EDITABLE and campaign.status != S.CANCELLED \
            or campaign.launched_at is not None:
        raise ApplicationError(_("A launched campaign is cancelled, not deleted."),
                               code="invalid_transition", status=409)
    campaign_audit(campaign=campaign, action=AuditAction.CAMPAIGN_DELETED, actor=actor)
    campaign.delete()


# --- maker-checker ----------------------------------------------------------------------

def campaign_compliance_issues(campaign: Campaign) -> list[dict]:
    """[{"field": "steps[0].variants[1].body", "phrase", "start", "end"}]."""
    phrases = phrase_list()
    issues = []
    for i, step in enumerate(campaign.steps):
        for j, variant in enumerate(step["variants"]):
            for field in ("subject", "body"):
                for match in forbidden_phrases_found(variant.get(field, ""), phrases=phrases):
                    issues.append({"field": f"steps[{i}].variants[{j}].{field}", **match})
    return issues


def _raise_if_forbidden_phrases(campaign: Campaign) -> None:
    issues = campaign_compliance_issues(campaign)
    if issues:
        fields: dict[str, list[str]] = {}
        for issue in issues:
            fields.setdefault(issue["field"], []).append(issue["phrase"])
        raise ApplicationError(
            _("Forbidden phrases must be removed before submission: %(phrases)s.")
            % {"phrases": ", ".join(sorted({i["phrase"] for i in issues}))},
            code="forbidden_phrases", fields=fields)


@transaction.atomic
def campaign_submit(*, campaign: Campaign, actor) -> Campaign:
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff submit campaigns."))
    campaign = _locked(campaign)
    check_transition(campaign, S.SUBMITTED)
    campaign_validate({}, instance=campaign)  # products still on sale, segments still there
    _raise_if_forbidden_phrases(campaign)
    campaign_transition(campaign=campaign, to_status=S.SUBMITTED, actor=actor,
                        changes={"review_comment": ""})
    campaign_audit(campaign=campaign, action=AuditAction.SUBMITTED, actor=actor)
    return campaign


@transaction.atomic
def campaign_approve(*, campaign: Campaign, actor, comment: str = "") -> Campaign:
    _require_role(actor, APPROVE_ROLES, _("Only compliance approves campaigns."))
    campaign = _locked(campaign)
    if campaign.author_id == getattr(actor, "pk", None):
        raise ApplicationError(_("The author of a campaign can never approve it."),
                               code="own_campaign", status=403)
    check_transition(campaign, S.APPROVED)
    _raise_if_forbidden_phrases(campaign)
    campaign_transition(campaign=campaign, to_status=S.APPROVED, actor=actor,
                        comment=comment or "",
                        changes={"approved_by": actor, "approved_at": timezone.now(),
                                 **approval_fields(campaign)})
    campaign_audit(campaign=campaign, action=AuditAction.APPROVED, actor=actor,
                   hash=campaign.approved_hash)
    return campaign


@transaction.atomic
def campaign_reject(*, campaign: Campaign, actor, comment) -> Campaign:
    _require_role(actor, APPROVE_ROLES, _("Only compliance rejects campaigns."))
    campaign = _locked(campaign)
    check_transition(campaign, S.REJECTED)
    comment = comment.strip() if isinstance(comment, str) else ""
    if not comment:
        raise ApplicationError(_("Say why the campaign is rejected."),
                               code="comment_required", fields={"comment": [_("required")]})
    campaign_transition(campaign=campaign, to_status=S.REJECTED, actor=actor, comment=comment,
                        changes={"review_comment": comment})
    campaign_audit(campaign=campaign, action=AuditAction.REJECTED, actor=actor,
                   comment=comment[:500])
    return campaign


# --- launch and control -----------------------------------------------------------------

def campaign_launch(*, campaign: Campaign, actor) -> CampaignLaunch:
    """Approved -> launching: the launch job (campaigns.launch) freezes the target list after
    commit. Refused (and back to draft, which stays) when the approval no longer covers the
    campaign. Launching a campaign whose launch is under way or done is a 409, never a second
    list."""
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff launch campaigns."))
    with transaction.atomic():
        campaign = _locked(campaign)
        check_transition(campaign, S.SCHEDULED)
        check = campaign_approval_check(campaign)
        if check.holds:
            launch, created = CampaignLaunch.objects.get_or_create(
                campaign=campaign, defaults={"created_by": actor, "progress_total": 3})
            if not created and launch.status == JobStatus.SUCCEEDED:
                raise ApplicationError(_("This campaign has been launched already."),
                                       code="invalid_transition", status=409)
            if not created:  # a failed launch, tried again
                launch.status, launch.error = JobStatus.QUEUED, ""
                launch.save(update_fields=["status", "error"])
            campaign_transition(campaign=campaign, to_status=S.SCHEDULED, actor=actor)
            campaign_audit(campaign=campaign, action=AuditAction.LAUNCHED, actor=actor)
            transaction.on_commit(lambda: campaign_launch_task.delay(launch.pk))
            return launch
        campaign_transition(campaign=campaign, to_status=S.DRAFT, actor=actor,
                            changes={"approved_hash": "", "approved_snapshot": None,
                                     "approved_by": None, "approved_at": None},
                            detail={"changed": check.changed})
        campaign_audit(campaign=campaign, action=AuditAction.APPROVAL_REVOKED, actor=actor,
                       changed=check.changed)
    raise ApplicationError(
        _("What was approved has changed (%(what)s): the campaign is back to draft.")
        % {"what": ", ".join(check.changed)}, code="approval_revoked", status=409)


@transaction.atomic
def campaign_pause(*, campaign: Campaign, actor) -> Campaign:
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff pause campaigns."))
    campaign = _locked(campaign)
    campaign_transition(campaign=campaign, to_status=S.PAUSED, actor=actor)
    campaign_audit(campaign=campaign, action=AuditAction.DISPATCH_CONTROLLED, actor=actor,
                   to="paused")
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, actor) -> Campaign:
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff resume campaigns."))
    campaign = _locked(campaign)
    campaign_transition(campaign=campaign, to_status=S.RUNNING, actor=actor)
    campaign_audit(campaign=campaign, action=AuditAction.DISPATCH_CONTROLLED, actor=actor,
                   to="running")
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, actor) -> Campaign:
    """Stop for good: planned contacts are released (they no longer hold room under the
    caps); contacts already made stay on record."""
    _require_role(actor, COMPOSE_ROLES, _("Only operations staff cancel campaigns."))
    campaign = _locked(campaign)
    campaign_transition(campaign=campaign, to_status=S.CANCELLED, actor=actor)
    released = contacts_cancel(source="campaign", source_id=campaign.pk)
    campaign_audit(campaign=campaign, action=AuditAction.DISPATCH_CONTROLLED, actor=actor,
                   to="cancelled", released=released)
    return campaign


# --- outcomes from the call centre ------------------------------------------------------

MAX_OUTCOMES = 10_000


@transaction.atomic
def campaign_outcomes_record(*, campaign: Campaign, rows, actor) -> dict:
    """POST …/outcomes/: call outcomes for this campaign's call steps, all or nothing. Every
    row names a member (client_no), a step that calls (phone or WeChat) and was run, an
    outcome code, optionally when and a note. Errors come back per row; nothing is written
    unless every row is valid. Each row goes through outreach.services.task_update, the same
    as a click on the RM's list ("do not call" turns phone consent off everywhere)."""
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_OUTCOMES:
        raise ApplicationError(_("A list of 1 to %(n)s outcomes.") % {"n": MAX_OUTCOMES},
                               fields={"outcomes": [_("not a list of outcomes")]})
    errors: list[RowError] = []
    parsed = []
    numbers = [r.get("client_no") for r in rows if isinstance(r, dict)]
    members = dict(CampaignMember.objects.filter(
        campaign=campaign, client__client_no__in=[n for n in numbers if isinstance(n, str)])
        .values_list("client__client_no", "client_id"))
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(RowError(i, "", "", _("Must be an object.")))
            continue
        unknown = sorted(set(row) - {"client_no", "step", "outcome", "at", "note"})
        if unknown:
            errors.append(RowError(i, unknown[0], "", _("Unknown field.")))
        client_id = members.get(row.get("client_no")) if isinstance(row.get("client_no"),
                                                                     str) else None
        if client_id is None:
            errors.append(RowError(i, "client_no", str(row.get("client_no"))[:40],
                                   _("Not a member of this campaign.")))
        step = row.get("step")
        if isinstance(step, bool) or not isinstance(step, int) \
                or not 0 <= step < len(campaign.steps) \
                or campaign.steps[step]["channel"] not in (Channel.PHONE, Channel.WECHAT):
            errors.append(RowError(i, "step", str(step)[:20],
                                   _("The index of one of this campaign's call steps.")))
            step = None
        outcome = row.get("outcome")
        if outcome not in TaskOutcome.values:
            errors.append(RowError(i, "outcome", str(outcome)[:40],
                                   _("One of: %(values)s.")
                                   % {"values": ", ".join(TaskOutcome.values)}))
        note = row.get("note", "")
        if not isinstance(note, str) or len(note) > NOTE_MAX:
            errors.append(RowError(i, "note", "", _("Text of at most %(n)s characters.")
                                   % {"n": NOTE_MAX}))
        at = row.get("at")
        if at is not None and (not isinstance(at, str) or parse_datetime(at) is None):
            errors.append(RowError(i, "at", str(at)[:40], _("A date and time (ISO 8601).")))
        parsed.append((i, client_id, step, outcome, note))
    tasks = {}
    if not errors:
        contact_ids = {(c.client_id, c.step): c.pk for c in Contact.objects.filter(
            source=ContactSource.CAMPAIGN, source_id=campaign.pk,
            client_id__in=[p[1] for p in parsed])}
        by_origin = {int(t.origin_id): t for t in RMTask.objects.filter(
            origin_type=ORIGIN_CONTACT,
            origin_id__in=[str(v) for v in contact_ids.values()])}
        for i, client_id, step, _outcome, _note in parsed:
            task = by_origin.get(contact_ids.get((client_id, step), -1))
            if task is None:
                errors.append(RowError(i, "step", str(step),
                                       _("No call was made for this client at this step yet.")))
            tasks[i] = task
        visible = set(task_queryset_for(actor).filter(
            pk__in=[t.pk for t in tasks.values() if t is not None]).values_list("pk", flat=True))
        for i, task in tasks.items():
            if task is not None and task.pk not in visible:
                errors.append(RowError(i, "client_no", "", _("Not on your call list.")))
    if errors:
        raise IngestRejected(sorted(errors))
    for i, _client_id, _step, outcome, note in parsed:
        task_update(task=tasks[i], actor=actor, outcome=outcome, note=note,
                    status=TaskStatus.OPEN if outcome == TaskOutcome.NO_ANSWER
                    else TaskStatus.DONE)
    audit_record(action=AuditAction.INTERACTION_LOGGED, actor=actor, object_type=AUDIT_OBJECT,
                 object_id=campaign.code, detail={"outcomes": len(parsed)})
    return {"recorded": len(parsed)}
