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


# --- readable rows ---------------------------------------------------------------------------
import csv  # noqa: E402
import datetime as dt  # noqa: E402
import io  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

from openpyxl import load_workbook  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")
EXPORT = reverse("audit_log_export")


def at(entry, *args):
    AuditLog.objects.filter(pk=entry.pk).update(at=dt.datetime(*args, tzinfo=SHANGHAI))
    return entry


def test_details_read_as_labelled_lines_not_python_dicts(logged_in, compliance_user, ops_user):
    audit_record(action=AuditAction.EXPORT, actor=ops_user, object_type="segment",
                 object_id="vip", detail={"segment": "vip", "format": "csv", "rows": 12,
                                          "masked": True, "one_click": False})
    page = logged_in(compliance_user).get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "{&#x27;" not in page and "{'" not in page and "True" not in page
    for line in ("Segment:</span> vip", "Format:</span> csv", "Rows:</span> 12",
                 "Masked:</span> Yes", "One click:</span> No"):
        assert line in page


def test_object_types_and_details_are_translated(logged_in, compliance_user, ops_user):
    audit_record(action=AuditAction.APPROVED, actor=compliance_user, object_type="edition",
                 object_id="7", detail={"title": "#3 十月月报", "rows": 3})
    audit_record(action=AuditAction.SCHEME_PUBLISHED, actor=ops_user,
                 object_type="scoring_scheme", object_id="2", detail={"version": 2})
    web = logged_in(compliance_user)
    english = web.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Edition</span>" in english and "Scoring scheme</span>" in english
    chinese = web.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "期次</span>" in chinese and "评分方案</span>" in chinese
    assert "行数:</span> 3" in chinese and "版本:</span> 2" in chinese
    assert "scoring_scheme" not in chinese.split("<tbody>")[1]


def test_the_date_range_is_in_shanghai_days(logged_in, compliance_user):
    late = at(audit_record(action=AuditAction.EXPORT, actor=compliance_user, object_id="late"),
              2026, 3, 1, 23, 30)
    early = at(audit_record(action=AuditAction.EXPORT, actor=compliance_user,
                            object_id="early"), 2026, 3, 2, 0, 10)
    at(audit_record(action=AuditAction.EXPORT, actor=compliance_user, object_id="before"),
       2026, 2, 27, 12, 0)
    web = logged_in(compliance_user)

    def ids(**params):
        return [e.object_id for e in web.get(URL, {"action": "export", **params})
                .context["page"].object_list]

    assert ids(date_from="2026-03-01", date_to="2026-03-01") == [late.object_id]
    assert ids(date_from="2026-03-02") == [early.object_id]
    assert ids(date_from="2026-02-28", date_to="2026-03-02") == ["early", "late"]
    response = web.get(URL, {"date_from": "2026-03-05", "date_to": "2026-03-01"},
                       HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and "The end date is before the start date." in \
        response.content.decode()
    assert web.get(URL, {"date_from": "not-a-date", "date_to": "0000-01-01"}).status_code == 200


def test_filter_by_object_and_find_failed_logins_by_username(logged_in, compliance_user, rm_a,
                                                             client):
    audit_record(action=AuditAction.PII_VIEWED, actor=rm_a, object_type="client",
                 object_id="A0000001")
    audit_record(action=AuditAction.PII_VIEWED, actor=rm_a, object_type="client",
                 object_id="A0000002")
    client.post(reverse("login"), {"username": "rm_a", "password": "wrong"})
    web = logged_in(compliance_user)
    rows = web.get(URL, {"object": "A0000001"}).context["page"].object_list
    assert [(e.action, e.object_id) for e in rows] == [("pii_viewed", "A0000001")]
    actions = {e.action for e in web.get(URL, {"who": "rm_a"}).context["page"].object_list}
    assert actions == {"pii_viewed", "login_failed"}


@pytest.mark.parametrize("query", [{"action": "export"}, {"action": "export", "who": "co"}])
def test_keyset_pages_walk_older_and_back_newer_without_gaps(logged_in, compliance_user,
                                                            query):
    for i in range(120):
        audit_record(action=AuditAction.EXPORT, actor=compliance_user, object_id=str(i))
    web = logged_in(compliance_user)
    first = web.get(URL, query).context["page"]
    second = web.get(URL, {**query, "before": first.older}).context["page"]
    third = web.get(URL, {**query, "before": second.older}).context["page"]
    seen = [e.object_id for p in (first, second, third) for e in p.object_list]
    assert seen == [str(i) for i in range(119, -1, -1)]
    assert not third.has_next() and third.has_previous()
    back = web.get(URL, {**query, "after": third.newer}).context["page"]
    assert [e.object_id for e in back] == [e.object_id for e in second]
    newest = web.get(URL, {**query, "after": second.newer}).context["page"]
    assert [e.object_id for e in newest] == [e.object_id for e in first]
    assert web.get(URL, {"before": "999999999"}).status_code == 200
    assert web.get(URL, {"before": "x' or 1=1"}).status_code == 200


def test_a_page_costs_a_fixed_number_of_queries(logged_in, compliance_user, rm_a,
                                                django_assert_max_num_queries):
    for i in range(60):
        audit_record(action=AuditAction.PII_VIEWED, actor=rm_a, object_type="client",
                     object_id=f"A{i:07d}", detail={"fields": ["phone", "email"]})
    web = logged_in(compliance_user)
    page = web.get(URL)
    assert page.status_code == 200
    with django_assert_max_num_queries(10):
        web.get(URL, {"who": "rm", "before": page.context["page"].older})


def week_of_events(compliance_user, ops_user, rm_a):
    """Who approved what, who saw whose data, who sent what to whom — and one old row."""
    at(audit_record(action=AuditAction.APPROVED, actor=compliance_user, object_type="edition",
                    object_id="5", detail={"title": "#5 =HYPERLINK(\"x\")"}), 2026, 3, 3, 10, 0)
    at(audit_record(action=AuditAction.PII_VIEWED, actor=rm_a, object_type="client",
                    object_id="A0000001", detail={"fields": ["phone"]}), 2026, 3, 4, 9, 0)
    at(audit_record(action=AuditAction.SENT, actor=ops_user, object_type="edition",
                    object_id="5", detail={"audience": "vip", "rows": 2}), 2026, 3, 5, 8, 0)
    at(audit_record(action=AuditAction.SENT, actor=ops_user, object_type="edition",
                    object_id="4"), 2026, 2, 1, 8, 0)


def test_the_week_exports_as_csv_with_readable_columns_and_is_audited(
        logged_in, compliance_user, ops_user, rm_a):
    week_of_events(compliance_user, ops_user, rm_a)
    response = logged_in(compliance_user).get(
        EXPORT, {"format": "csv", "date_from": "2026-03-02", "date_to": "2026-03-08"},
        HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    header, *lines = list(csv.reader(io.StringIO(text)))
    assert header == ["Time", "User", "Action", "Object type", "Object", "IP address", "Path",
                      "Detail"]
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in lines] == [
        ("2026-03-05 08:00:00", "ops", "Sending started", "Edition", "5"),
        ("2026-03-04 09:00:00", "rm_a", "Personal data viewed in full", "Client", "A0000001"),
        ("2026-03-03 10:00:00", "compliance", "Approved", "Edition", "5"),
    ]
    assert lines[0][7] == "Audience: vip; Rows: 2" and lines[1][7] == "Fields: phone"
    assert lines[2][7].startswith("Title: #5 =HYPERLINK")  # not at the cell's start: inert
    export = AuditLog.objects.get(action=AuditAction.EXPORT, object_type="audit_log")
    assert export.actor == compliance_user
    assert export.detail == {"format": "csv", "from": "2026-03-02", "to": "2026-03-08"}


def test_the_export_as_xlsx_follows_the_filters(logged_in, compliance_user, ops_user, rm_a):
    week_of_events(compliance_user, ops_user, rm_a)
    response = logged_in(compliance_user).get(
        EXPORT, {"format": "xlsx", "action": "sent", "who": "ops"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:3] == ["时间", "用户", "操作"]
    assert [row[4] for row in values[1:]] == ["5", "4"]
    assert AuditLog.objects.get(action=AuditAction.EXPORT).detail == {
        "format": "xlsx", "action": "sent", "who": "ops"}
    page = logged_in(compliance_user).get(URL, {"action": "export"}, HTTP_ACCEPT_LANGUAGE="en")
    assert "Action:</span> Sending started" in page.content.decode()


@pytest.mark.parametrize("who", ["rm_a", "ops_user"])
def test_only_compliance_and_admins_export(request, logged_in, who):
    user = request.getfixturevalue(who)
    assert logged_in(user).get(EXPORT, {"format": "csv"}).status_code == 403
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=user,
                                   object_type="audit_log").exists()
    assert not AuditLog.objects.filter(action=AuditAction.EXPORT).exists()


def test_an_xlsx_over_its_row_limit_is_refused_with_a_way_out(logged_in, compliance_user,
                                                               ops_user, rm_a, monkeypatch):
    from core import views

    monkeypatch.setattr(views, "AUDIT_XLSX_MAX_ROWS", 2)
    week_of_events(compliance_user, ops_user, rm_a)
    web = logged_in(compliance_user)
    response = web.get(EXPORT, {"format": "xlsx"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "More than 2 rows: export CSV, or narrow the dates." in response.content.decode()
    assert not AuditLog.objects.filter(action=AuditAction.EXPORT).exists()
    assert web.get(EXPORT, {"format": "xlsx", "who": "ops"}).status_code == 200
    csv_export = web.get(EXPORT, {"format": "csv"})
    assert len(b"".join(csv_export.streaming_content).decode("utf-8-sig").splitlines()) > 3


def test_a_user_prefix_matching_too_many_users_says_so(logged_in, compliance_user, monkeypatch):
    from core import selectors, views
    from tests.factories import staff

    monkeypatch.setattr(selectors, "WHO_MAX_USERS", 2)
    monkeypatch.setattr(views, "WHO_MAX_USERS", 2)
    users = [staff("rm", username=f"rmx{i}") for i in range(3)]
    for user in users:
        audit_record(action=AuditAction.EXPORT, actor=user, object_id=user.username)
    response = logged_in(compliance_user).get(URL, {"who": "rmx"}, HTTP_ACCEPT_LANGUAGE="en")
    assert [e.object_id for e in response.context["page"]] == ["rmx1", "rmx0"]
    assert "More than 2 users match" in response.content.decode()


def test_the_codes_in_business_events_read_as_words_in_both_languages(logged_in,
                                                                      compliance_user, rm_a):
    audit_record(action=AuditAction.INTERACTION_LOGGED, actor=rm_a, object_type="client",
                 object_id="A0000001", detail={"interaction": 1, "kind": "call",
                                               "outcome": "follow_up"})
    audit_record(action=AuditAction.SENT, actor=rm_a, object_type="edition", object_id="7",
                 detail={"recipients": 80, "excluded": 2})
    audit_record(action=AuditAction.DISPATCH_CONTROLLED, actor=rm_a, object_type="edition",
                 object_id="7", detail={"control": "cancel", "was": "sending"})
    audit_record(action=AuditAction.SCORING_STARTED, actor=rm_a, object_type="scoring_run",
                 object_id="3", detail={"trigger": "page"})
    web = logged_in(compliance_user)
    english = web.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode().split("<tbody>")[1]
    for words in ("Kind:</span> Call", "Follow up later", "Recipients:</span> 80",
                  "Clients excluded:</span> 2", "Sending:</span> Cancelled",
                  "Status before:</span> Sending", "Started from:</span> the page"):
        assert words in english, words
    chinese = web.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode().split("<tbody>")[1]
    for words in ("类型:</span> 电话", "稍后跟进", "收件人数:</span> 80",
                  "排除客户数:</span> 2", "发送操作:</span> 取消", "原状态:</span> 发送中",
                  "发起方式:</span> 页面"):
        assert words in chinese, words
