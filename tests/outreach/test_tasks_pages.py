"""The RM task list: whose tasks each role sees, marking one done, and the 360 card."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import AuditAction, AuditLog, Role
from outreach.models import RMTask, TaskSource, TaskStatus
from tests.factories import staff


def task(client, *, assignee, title="回复：很有帮助", detail="想了解债券配置"):
    return RMTask.objects.create(client=client, assignee=assignee,
                                 source=TaskSource.NEWSLETTER_COMMENT, title=title,
                                 detail=detail)


@pytest.fixture
def tasks(rm_a, rm_b, client_of_a, clients_of_b):
    return {"a": task(client_of_a, assignee=rm_a, detail="A 的客户留言"),
            "b": task(clients_of_b[0], assignee=rm_b, detail="B 的客户留言")}


@pytest.mark.parametrize("who, sees, hidden", [
    ("rm_a", ["a"], ["b"]),
    ("rm_b", ["b"], ["a"]),
    ("branch_manager", ["a"], ["b"]),
    ("ops_user", ["a", "b"], []),
    ("compliance_user", ["a", "b"], []),
])
def test_task_list_scoping(request, logged_in, tasks, who, sees, hidden):
    body = logged_in(request.getfixturevalue(who)).get("/tasks/").content.decode()
    for key in sees:
        assert tasks[key].detail in body, (who, key)
    for key in hidden:
        assert tasks[key].detail not in body, (who, key)
        assert tasks[key].client.client_no not in body, (who, key)


def test_rm_marks_a_task_done(logged_in, rm_a, tasks):
    http = logged_in(rm_a)
    response = http.post(f"/tasks/{tasks['a'].pk}/done/")
    assert response.status_code == 302
    tasks["a"].refresh_from_db()
    assert tasks["a"].status == TaskStatus.DONE and tasks["a"].done_at is not None
    assert tasks["a"].detail not in http.get("/tasks/").content.decode()
    assert tasks["a"].detail in http.get("/tasks/?status=done").content.decode()


def test_rm_cannot_close_another_rms_task(logged_in, rm_a, tasks):
    response = logged_in(rm_a).post(f"/tasks/{tasks['b'].pk}/done/")
    assert response.status_code == 404
    tasks["b"].refresh_from_db()
    assert tasks["b"].status == TaskStatus.OPEN
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=rm_a,
                                   object_type="task").exists()


def test_done_needs_post(logged_in, rm_a, tasks):
    assert logged_in(rm_a).get(f"/tasks/{tasks['a'].pk}/done/").status_code == 405


def test_done_goes_back_only_to_a_local_page(logged_in, rm_a, tasks):
    response = logged_in(rm_a).post(f"/tasks/{tasks['a'].pk}/done/",
                                    {"next": "https://evil.example.com/"})
    assert response["Location"] == "/tasks/"


def test_open_count_badge_is_one_count(logged_in, rm_a, tasks):
    http = logged_in(rm_a)
    with CaptureQueriesContext(connection) as captured:
        body = http.get("/tasks/badge/").content.decode()
    task_queries = [q["sql"] for q in captured.captured_queries if "outreach_rmtask" in q["sql"]]
    assert len(task_queries) == 1 and task_queries[0].startswith("SELECT COUNT(*)")
    assert ">1</span>" in body
    assert 'id="nav-tasks"' in http.get("/tasks/").content.decode()


def test_client_360_lists_open_follow_ups_with_a_done_button(logged_in, rm_a, tasks,
                                                             client_of_a):
    http = logged_in(rm_a)
    body = http.get(f"/clients/{client_of_a.client_no}/").content.decode()
    card = body[body.index('id="follow-ups"'):]
    assert "A 的客户留言" in card and f'data-done="{tasks["a"].pk}"' in card
    response = http.post(f"/tasks/{tasks['a'].pk}/done/",
                         {"next": f"/clients/{client_of_a.client_no}/"})
    assert response["Location"] == f"/clients/{client_of_a.client_no}/"
    body = http.get(f"/clients/{client_of_a.client_no}/").content.decode()
    assert "A 的客户留言" not in body[body.index('id="follow-ups"'):]


def test_an_outcome_in_two_clicks_closes_the_task_and_shows_on_the_list(logged_in, rm_a, tasks):
    web = logged_in(rm_a)
    page = web.get("/tasks/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert f'action="/tasks/{tasks["a"].pk}/outcome/"' in page and "无人接听" in page
    response = web.post(f"/tasks/{tasks['a'].pk}/outcome/",
                        {"outcome": "interested", "note": "想了解三年期"})
    assert response.status_code == 302
    done = RMTask.objects.get(pk=tasks["a"].pk)
    assert (done.status, done.outcome, done.outcome_note) == ("done", "interested", "想了解三年期")
    listed = web.get("/tasks/?status=all", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-outcome="interested"' in listed and "Interested" in listed


def test_no_answer_keeps_the_task_open_for_another_try(logged_in, rm_a, tasks):
    logged_in(rm_a).post(f"/tasks/{tasks['a'].pk}/outcome/", {"outcome": "no_answer"})
    task_ = RMTask.objects.get(pk=tasks["a"].pk)
    assert (task_.status, task_.outcome) == ("open", "no_answer")


def test_do_not_call_from_the_page_turns_phone_consent_off(logged_in, rm_a, tasks):
    client = tasks["a"].client
    client.consent_phone = True
    client.save()
    logged_in(rm_a).post(f"/tasks/{tasks['a'].pk}/outcome/", {"outcome": "do_not_call"})
    client.refresh_from_db()
    assert client.consent_phone is False
    assert AuditLog.objects.filter(action=AuditAction.CONSENT_CHANGED,
                                   object_id=client.client_no).exists()


def test_an_outcome_on_another_rms_task_is_an_audited_404(logged_in, rm_a, tasks):
    response = logged_in(rm_a).post(f"/tasks/{tasks['b'].pk}/outcome/",
                                    {"outcome": "bought"})
    assert response.status_code == 404
    assert RMTask.objects.get(pk=tasks["b"].pk).outcome == ""
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, object_type="task",
                                   object_id=str(tasks["b"].pk)).exists()


def test_an_outcome_that_does_not_exist_changes_nothing(logged_in, rm_a, tasks):
    response = logged_in(rm_a).post(f"/tasks/{tasks['a'].pk}/outcome/", {"outcome": "maybe"},
                                    follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "Choose an outcome" in response.content.decode()
    assert RMTask.objects.get(pk=tasks["a"].pk).status == "open"


def test_a_branch_manager_hands_a_call_to_another_rm_of_the_branch(logged_in, branch_manager,
                                                                    rm_a, rm_b, client_of_a):
    colleague = staff(Role.RM, username="rm_a2", branch=rm_a.branch)
    call = task(client_of_a, assignee=rm_a)
    page = logged_in(branch_manager)
    html = page.get("/tasks/").content.decode()
    assert f'data-reassign="{call.pk}"' in html
    assert 'data-context="A0000001"' in html  # the call's client context
    page.post(f"/tasks/{call.pk}/reassign/", {"assignee": rm_b.pk})  # another branch's RM
    assert RMTask.objects.get(pk=call.pk).assignee == rm_a
    page.post(f"/tasks/{call.pk}/reassign/", {"assignee": colleague.pk})
    assert RMTask.objects.get(pk=call.pk).assignee == colleague
    assert logged_in(rm_a).post(f"/tasks/{call.pk}/reassign/",
                                {"assignee": rm_a.pk}).status_code == 403
