"""The approval state machine: submit, approve, reject, schedule, send, pause, resume, cancel."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone, translation

from core.errors import ApplicationError
from core.models import Role
from newsletters import services
from newsletters.models import EditionEvent, EditionStatus
from tests.factories import ClientFactory, staff
from tests.newsletters import make_edition

S = EditionStatus


@pytest.fixture
def draft(ops_user):
    return make_edition(author=ops_user)


@pytest.fixture
def submitted(draft, ops_user):
    return services.edition_submit(edition=draft, actor=ops_user)


@pytest.fixture
def approved(submitted, compliance_user):
    return services.edition_approve(edition=submitted, actor=compliance_user)


def error_of(call, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        call(**kwargs)
    return info.value


def test_an_edition_goes_draft_submitted_approved_scheduled(approved, ops_user, compliance_user):
    assert approved.status == S.APPROVED
    assert approved.approved_by == compliance_user
    assert approved.approved_version == approved.content_version
    at = timezone.now() + dt.timedelta(hours=2)
    services.edition_schedule(edition=approved, actor=ops_user, at=at)
    assert approved.status == S.SCHEDULED and approved.scheduled_at == at
    assert list(EditionEvent.objects.filter(edition=approved).values_list(
        "from_status", "to_status")) == [("", "draft"), ("draft", "submitted"),
                                         ("submitted", "approved"), ("approved", "scheduled")]


def test_forbidden_phrases_block_submission_and_list_every_match(ops_user):
    edition = make_edition(author=ops_user, subject="稳赚 weekly",
                           sections=[{"kind": "editorial", "body": "A Guaranteed Return, 保本."}])
    error = error_of(services.edition_submit, edition=edition, actor=ops_user)
    assert error.code == "forbidden_phrases"
    assert [(i["field"], i["phrase"], i["start"], i["end"]) for i in error.issues] == [
        ("subject", "稳赚", 0, 2), ("body", "guaranteed return", 2, 19), ("body", "保本", 21, 23)]
    assert "sections[0].body" in error.fields
    edition.refresh_from_db()
    assert edition.status == S.DRAFT


def test_a_compliance_added_phrase_blocks_submission(ops_user, compliance_user, draft):
    services.forbidden_phrase_add(phrase="bond OUTLOOK", actor=compliance_user)  # research title
    error = error_of(services.edition_submit, edition=draft, actor=ops_user)
    assert error.code == "forbidden_phrases"
    assert [(i["field"], i["phrase"]) for i in error.issues] == [("data.title", "bond OUTLOOK")]


def test_the_author_can_never_approve_their_own_edition(db):
    author = staff(Role.COMPLIANCE, username="compliance_author")
    ops = staff(Role.OPS, username="ops2")
    edition = make_edition(author=ops)
    edition.author = author  # e.g. a colleague who changed role since
    edition.save()
    services.edition_submit(edition=edition, actor=ops)
    error = error_of(services.edition_approve, edition=edition, actor=author)
    assert error.code == "own_edition" and error.status == 403


@pytest.mark.parametrize("role", [Role.OPS, Role.RM, Role.ADMIN, Role.BRANCH_MANAGER])
def test_only_compliance_approves(submitted, role):
    error = error_of(services.edition_approve, edition=submitted,
                     actor=staff(role, username=f"x_{role}"))
    assert error.status == 403
    submitted.refresh_from_db()
    assert submitted.status == S.SUBMITTED


def test_rejecting_needs_a_comment_and_the_author_can_edit_and_resubmit(
        submitted, compliance_user, ops_user):
    error = error_of(services.edition_reject, edition=submitted, actor=compliance_user,
                     comment="  ")
    assert error.code == "comment_required"
    services.edition_reject(edition=submitted, actor=compliance_user, comment="Cite sources.")
    assert submitted.status == S.REJECTED and submitted.review_comment == "Cite sources."
    services.edition_update(edition=submitted, actor=ops_user, subject="Weekly insight v2")
    assert submitted.content_version == 2
    services.edition_submit(edition=submitted, actor=ops_user)
    services.edition_approve(edition=submitted, actor=compliance_user, content_version=2)
    assert submitted.approved_version == 2


def test_approval_is_of_the_version_the_reviewer_saw(submitted, compliance_user):
    error = error_of(services.edition_approve, edition=submitted, actor=compliance_user,
                     content_version=7)
    assert error.code == "stale_version" and error.status == 409


@pytest.mark.parametrize("call, kwargs", [
    ("edition_approve", {}),
    ("edition_reject", {"comment": "no"}),
    ("edition_pause", {}),
    ("edition_resume", {}),
    ("edition_send_now", {}),
])
def test_invalid_transitions_are_409(draft, ops_user, compliance_user, call, kwargs):
    actor = compliance_user if call in ("edition_approve", "edition_reject") else ops_user
    error = error_of(getattr(services, call), edition=draft, actor=actor, **kwargs)
    assert error.code == "invalid_transition" and error.status == 409


def test_editing_an_approved_edition_sends_it_back_to_draft(approved, ops_user):
    services.edition_update(edition=approved, actor=ops_user, subject="x")
    assert approved.status == S.DRAFT and approved.approved_version is None
    assert approved.subject == "x" and approved.content_version == 2


def test_saving_an_approved_edition_unchanged_keeps_the_approval(approved, ops_user):
    services.edition_update(edition=approved, actor=ops_user, subject=approved.subject)
    assert approved.status == S.APPROVED and approved.approved_version == 1


def test_an_edition_being_sent_can_no_longer_be_edited(approved, ops_user,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        services.edition_send_now(edition=approved, actor=ops_user)
    error = error_of(services.edition_update, edition=approved, actor=ops_user, subject="x")
    assert error.code == "not_editable" and error.status == 409


def test_scheduling_needs_a_future_time(approved, ops_user):
    error = error_of(services.edition_schedule, edition=approved, actor=ops_user,
                     at=timezone.now() - dt.timedelta(minutes=1))
    assert "at" in error.fields


@translation.override("en")
def test_section_data_is_validated_with_the_section_named(draft, ops_user):
    publication = draft.publication
    bad = [{"kind": "editorial", "body": "Text."},
           {"kind": "research", "data": {"title": "Outlook", "url": "javascript:alert(1)"}}]
    error = error_of(make_edition, author=ops_user, publication=publication, sections=bad)
    assert error.code == "invalid_section" and "Section 2 (Research report)" in error.message
    assert "sections[1].data.url" in error.fields
    error = error_of(make_edition, author=ops_user, publication=publication,
                     sections=[{"kind": "picks", "data": {"product_codes": ["NOPE"]}}])
    assert "NOPE" in error.message
    error = error_of(make_edition, author=ops_user, publication=publication,
                     sections=[{"kind": "holdings", "data": {"top_n": 0}}])
    assert "sections[0].data.top_n" in error.fields


def test_editions_are_numbered_per_publication(draft, ops_user):
    second = make_edition(author=ops_user, publication=draft.publication)
    assert (draft.number, second.number) == (1, 2)


def test_cancelling_a_draft_is_a_plain_transition(draft, ops_user):
    services.edition_cancel(edition=draft, actor=ops_user, comment="dropped")
    assert draft.status == S.CANCELLED
    error = error_of(services.edition_submit, edition=draft, actor=ops_user)
    assert error.code == "invalid_transition"


def test_send_now_hands_the_approved_edition_to_the_dispatcher(approved, ops_user,
                                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        services.edition_send_now(edition=approved, actor=ops_user)
    assert approved.status == S.SENDING
    error = error_of(services.edition_resume, edition=approved, actor=ops_user)
    assert error.code == "invalid_transition"
    services.edition_pause(edition=approved, actor=ops_user)
    assert approved.status == S.PAUSED
    with django_capture_on_commit_callbacks(execute=False):
        services.edition_resume(edition=approved, actor=ops_user)
    assert approved.status == S.SENDING
    services.edition_cancel(edition=approved, actor=ops_user)
    assert approved.status == S.CANCELLED


def test_a_test_send_goes_to_the_actor_as_the_client(draft, ops_user, rm_a):
    ops_user.email = "ops@broker.example"
    ops_user.save()
    client = ClientFactory(rm=rm_a, name="李四")
    services.edition_send_test(edition=draft, actor=ops_user, client=client)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@broker.example"]
    assert message.subject == "[TEST] Weekly insight"
    assert "李女士" in message.alternatives[0][0]  # the client's salutation


def test_builtin_phrases_cannot_be_removed(compliance_user):
    from outreach.models import ForbiddenPhrase

    error = error_of(services.forbidden_phrase_remove,
                     phrase=ForbiddenPhrase.objects.get(phrase="保本"), actor=compliance_user)
    assert error.code == "builtin"
