"""One permission table (core.permissions) behind the pages, the API and the navigation menu."""

import re

import pytest

from core.models import AuditAction, AuditLog, Role
from core.permissions import CAPABILITIES, capability_required, user_can
from segments.models import Segment
from tests.factories import ClientFactory, UserFactory
from tests.segments.test_segment_pages import refresh

MENU = {
    Role.RM: ["/", "/clients/", "/segments/", "/campaigns/", "/analytics/", "/tasks/",
              "/api/docs/"],
    Role.BRANCH_MANAGER: ["/", "/clients/", "/segments/", "/campaigns/", "/analytics/",
                          "/tasks/", "/api/docs/"],
    Role.OPS: ["/clients/", "/segments/", "/newsletters/", "/campaigns/", "/analytics/",
               "/tasks/", "/imports/", "/scoring/", "/api/docs/"],
    Role.COMPLIANCE: ["/clients/", "/segments/", "/newsletters/", "/campaigns/", "/analytics/",
                      "/accounts/audit/", "/api/docs/"],
    Role.ADMIN: ["/clients/", "/segments/", "/newsletters/", "/campaigns/", "/analytics/",
                 "/tasks/", "/imports/", "/scoring/", "/accounts/audit/", "/api/docs/",
                 "/admin/"],
}


def menu_links(html: str) -> list[str]:
    nav = html.split('<ul class="navbar-nav me-auto">', 1)[1].split("</ul>", 1)[0]
    return re.findall(r'class="nav-link[^"]*" href="([^"]+)"', nav)


@pytest.fixture
def user_of(db):
    from tests.factories import staff

    def _user(role):
        return staff(role, username=f"user_{role}", branch=None)

    return _user


@pytest.fixture
def nobody(db):
    user = UserFactory(username="nobody")
    user.groups.clear()
    return user


@pytest.fixture
def segment_of_two_books(rm_a, rm_b):
    from segments.services import segment_create

    ClientFactory(client_no="P0000001", rm=rm_a, branch=rm_a.branch, city="杭州")
    ClientFactory(client_no="P0000002", rm=rm_b, branch=rm_b.branch, city="杭州")
    segment_create(code="hangzhou", name_en="Hangzhou", kind="rule",
                   rule={"field": "city", "op": "contains", "value": "杭州"}, refresh=False)
    refresh("hangzhou")
    return Segment.objects.get(code="hangzhou")


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_exactly_the_menu_entries_of_its_capabilities(role, user_of, logged_in):
    html = logged_in(user_of(role)).get("/clients/").content.decode()
    assert menu_links(html) == MENU[role]


def test_an_rm_has_my_tasks_with_a_badge_and_others_have_follow_ups(rm_a, ops_user, logged_in):
    rm_html = logged_in(rm_a).get("/clients/").content.decode()
    assert 'id="nav-tasks"' in rm_html and 'hx-get="/tasks/badge/"' in rm_html
    ops_html = logged_in(ops_user).get("/clients/").content.decode()
    assert 'id="nav-tasks"' not in ops_html and "/tasks/badge/" not in ops_html


def test_a_user_without_a_role_sees_only_the_api_link(nobody, logged_in):
    assert menu_links(logged_in(nobody).get("/clients/").content.decode()) == ["/api/docs/"]


def test_the_menu_follows_the_table(rm_a, logged_in, monkeypatch):
    monkeypatch.setitem(CAPABILITIES, "audit.read", frozenset({Role.RM.value}))
    assert "/accounts/audit/" in menu_links(logged_in(rm_a).get("/clients/").content.decode())
    assert logged_in(rm_a).get("/accounts/audit/").status_code == 200


def test_the_base_template_names_no_role():
    from pathlib import Path

    from django.conf import settings

    base = (Path(settings.BASE_DIR) / "templates" / "base.html").read_text()
    assert "user_role ==" not in base
    assert not any(f'"{role}"' in base for role in Role.values)


@pytest.mark.parametrize(("role", "path", "object_type"), [
    (Role.RM, "/segments/new/", "segment"),
    (Role.RM, "/imports/", "import"),
    (Role.BRANCH_MANAGER, "/scoring/", "scoring"),
    (Role.OPS, "/accounts/audit/", "audit_log"),
    (Role.RM, "/newsletters/", "newsletter"),
    (Role.OPS, "/newsletters/approvals/", "newsletter"),
])
def test_a_refused_page_answers_403_and_writes_one_access_denied_row(role, path, object_type,
                                                                     user_of, logged_in):
    user = user_of(role)
    response = logged_in(user).get(path)
    assert response.status_code == 403
    rows = AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=user)
    assert [(r.object_type, r.path) for r in rows] == [(object_type, path)]


def test_a_user_without_a_role_is_refused_the_task_list_and_audited(nobody, logged_in):
    assert logged_in(nobody).get("/tasks/").status_code == 403
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=nobody,
                                   object_type="task").count() == 1


def test_the_decorator_sends_an_anonymous_visitor_to_log_in(rf):
    from django.contrib.auth.models import AnonymousUser

    view = capability_required("segments.view")(lambda request: None)
    request = rf.get("/segments/")
    request.user = AnonymousUser()
    response = view(request)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_decorator_refuses_an_unknown_capability_at_import():
    with pytest.raises(KeyError):
        capability_required("segments.manag")


def test_compliance_may_not_export_a_segment_and_the_refusal_is_audited(
        compliance_user, logged_in, segment_of_two_books):
    web = logged_in(compliance_user)
    assert not user_can(compliance_user, "segments.export")
    assert 'id="export-csv"' not in web.get("/segments/hangzhou/").content.decode()
    assert web.get("/segments/hangzhou/export/csv/").status_code == 403
    assert not AuditLog.objects.filter(action=AuditAction.EXPORT).exists()
    denied = AuditLog.objects.get(action=AuditAction.ACCESS_DENIED, actor=compliance_user)
    assert (denied.object_type, denied.object_id) == ("segment", "hangzhou")


def test_an_rm_exports_their_own_book_of_a_segment(rm_a, logged_in, segment_of_two_books):
    web = logged_in(rm_a)
    assert 'id="export-csv"' in web.get("/segments/hangzhou/").content.decode()
    response = web.get("/segments/hangzhou/export/csv/")
    assert response.status_code == 200 and response["X-Export-Rows"] == "1"


def test_the_newsletter_api_reads_the_same_row_as_the_pages(rm_a, ops_user, logged_in,
                                                            monkeypatch):
    assert logged_in(rm_a).get("/api/v1/publications/").status_code == 403
    assert logged_in(ops_user).get("/api/v1/publications/").status_code == 200
    monkeypatch.setitem(CAPABILITIES, "newsletters.read", frozenset({Role.RM.value}))
    assert logged_in(rm_a).get("/api/v1/publications/").status_code == 200
    assert logged_in(rm_a).get("/newsletters/").status_code == 200


def test_the_clients_api_writes_only_for_the_roles_of_the_table(rm_a, logged_in, monkeypatch):
    body = {"name": "杭州西湖营业部", "city": "杭州"}
    web = logged_in(rm_a)
    assert web.put("/api/v1/branches/HZ01/", body, content_type="application/json"
                   ).status_code == 403
    monkeypatch.setitem(CAPABILITIES, "clients.write", frozenset({Role.RM.value}))
    assert web.put("/api/v1/branches/HZ01/", body, content_type="application/json"
                   ).status_code == 201
