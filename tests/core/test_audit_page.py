"""The audit log page: compliance and admins read it; anyone else is refused and recorded."""

import pytest
from django.urls import reverse

from core.models import AuditAction, AuditLog
from core.services import audit_record

URL = reverse("audit_log")


@pytest.mark.parametrize("who", ["compliance_user", "admin_user_"])
def test_compliance_and_admins_read_the_audit_log(request, logged_in, who):
    user = request.getfixturevalue(who)
    audit_record(action=AuditAction.EXPORT, actor=user, object_type="client", object_id="C1")
    response = logged_in(user).get(URL)
    assert response.status_code == 200
    assert "C1" in response.content.decode()


@pytest.mark.parametrize("who", ["rm_a", "ops_user", "branch_manager"])
def test_everyone_else_is_refused_and_the_attempt_recorded(request, logged_in, who):
    user = request.getfixturevalue(who)
    assert logged_in(user).get(URL).status_code == 403
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=user,
                                   object_type="audit_log").exists()


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_filter_by_action_and_user(logged_in, compliance_user, rm_a, ops_user):
    audit_record(action=AuditAction.PII_VIEWED, actor=rm_a, object_type="client",
                 object_id="A0000001")
    audit_record(action=AuditAction.EXPORT, actor=ops_user, object_type="segment",
                 object_id="S77")
    web = logged_in(compliance_user)
    rows = web.get(URL, {"action": "pii_viewed"}).context["page"].object_list
    assert [e.object_id for e in rows] == ["A0000001"]
    rows = web.get(URL, {"who": "ops"}).context["page"].object_list
    assert [e.object_id for e in rows] == ["S77"]
    assert web.get(URL, {"action": "bogus", "page": "zz"}).status_code == 200


def test_the_audit_log_is_paginated(logged_in, compliance_user):
    for i in range(60):
        audit_record(action=AuditAction.LOGIN, actor=compliance_user, object_id=str(i))
    response = logged_in(compliance_user).get(URL)
    assert len(response.context["page"].object_list) == 50
    assert response.context["page"].has_next()
