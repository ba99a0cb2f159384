"""Only the client's own RM writes into the client's history; every interaction is audited."""

import pytest
from django.urls import reverse

from clients.models import Interaction
from clients.services import interaction_log
from core.errors import ApplicationError
from core.models import AuditAction, AuditLog
from tests.factories import InteractionFactory

READERS = ["ops_user", "compliance_user", "branch_manager", "admin_user_"]


def log_url(client):
    return reverse("clients:interaction_create", args=[client.client_no])


def detail_url(client):
    return reverse("clients:client_detail", args=[client.client_no])


@pytest.fixture(params=READERS)
def reader(request):
    """Someone who may see client A's record but not speak for the client."""
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("htmx", [False, True])
def test_a_reader_who_posts_an_interaction_is_refused_and_the_attempt_audited(
        logged_in, reader, client_of_a, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = logged_in(reader).post(log_url(client_of_a),
                                      {"kind": "call", "outcome": "reached", "note": "假的"},
                                      **headers)
    assert response.status_code == 403
    assert not Interaction.objects.exists()
    denied = AuditLog.objects.get(action=AuditAction.ACCESS_DENIED)
    assert (denied.actor, denied.object_type, denied.object_id) == (reader, "client",
                                                                    client_of_a.client_no)
    assert not AuditLog.objects.filter(action=AuditAction.INTERACTION_LOGGED).exists()


def test_a_reader_is_refused_even_with_an_invalid_form(logged_in, ops_user, client_of_a):
    response = logged_in(ops_user).post(log_url(client_of_a), {"kind": "fax"})
    assert response.status_code == 403
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=ops_user).exists()


def test_the_service_refuses_readers_whatever_calls_it(ops_user, compliance_user, client_of_a):
    for user in (ops_user, compliance_user):
        with pytest.raises(ApplicationError) as refused:
            interaction_log(client=client_of_a, author=user, kind="note", note="由运营写入")
        assert refused.value.status == 403 and refused.value.code == "permission_denied"
    assert not Interaction.objects.exists()
    assert set(AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED)
               .values_list("actor__username", flat=True)) == {"ops", "compliance"}


def test_a_readers_360_page_shows_the_history_without_the_log_form(logged_in, reader,
                                                                     client_of_a, rm_a):
    InteractionFactory(client=client_of_a, author=rm_a, note="讨论了养老规划")
    body = logged_in(reader).get(detail_url(client_of_a), HTTP_ACCEPT_LANGUAGE="en"
                                 ).content.decode()
    assert "讨论了养老规划" in body
    assert 'id="log-interaction"' not in body and log_url(client_of_a) not in body
    assert "Only the client's own RM logs calls, meetings and notes." in body


def test_only_the_own_rms_360_page_has_the_log_form(logged_in, rm_a, ops_user, client_of_a):
    own = logged_in(rm_a).get(detail_url(client_of_a)).content.decode()
    assert 'id="log-interaction"' in own and 'id="interactions-read-only"' not in own
    masked = logged_in(ops_user).get(detail_url(client_of_a)).content.decode()
    assert 'id="log-interaction"' not in masked and 'id="interactions-read-only"' in masked


def test_an_interaction_the_rm_logs_is_audited_without_its_note(logged_in, rm_a, client_of_a):
    web = logged_in(rm_a)
    web.post(log_url(client_of_a), {"kind": "note", "outcome": "none", "note": " "})  # rejected
    assert not AuditLog.objects.filter(action=AuditAction.INTERACTION_LOGGED).exists()
    response = web.post(log_url(client_of_a), {"kind": "call", "outcome": "interested",
                                               "note": "约了下周面谈"})
    assert response.status_code == 302
    interaction = Interaction.objects.get()
    row = AuditLog.objects.get(action=AuditAction.INTERACTION_LOGGED)
    assert (row.actor, row.object_type, row.object_id) == (rm_a, "client", client_of_a.client_no)
    assert row.detail == {"interaction": interaction.pk, "kind": "call", "outcome": "interested"}
    assert "约了下周面谈" not in str(row.detail)
    assert row.path == log_url(client_of_a)


def test_an_interaction_logged_over_htmx_is_audited_once(logged_in, rm_a, client_of_a):
    logged_in(rm_a).post(log_url(client_of_a), {"kind": "meeting", "outcome": "reached",
                                                "note": "面谈"}, HTTP_HX_REQUEST="true")
    assert AuditLog.objects.filter(action=AuditAction.INTERACTION_LOGGED,
                                   object_id=client_of_a.client_no).count() == 1

