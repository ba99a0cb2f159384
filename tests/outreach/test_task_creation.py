"""RMs set their own tasks and due dates, and "follow up later" on a call puts a dated task on
the RM's list (issue 10)."""

from datetime import timedelta

from django.utils import timezone, translation

from clients.models import Interaction
from core.models import AuditAction, AuditLog
from outreach.models import RMTask, TaskSource


def test_follow_up_later_without_a_date_is_refused_and_logs_nothing(logged_in, rm_a,
                                                                     client_of_a):
    response = logged_in(rm_a).post(f"/clients/{client_of_a.client_no}/interactions/",
                                    {"kind": "call", "outcome": "follow_up", "note": "再联系"})
    assert response.status_code == 400
    with translation.override("zh-hans"):  # the page's language: the default
        assert translation.gettext("Choose the day to follow up.") in response.content.decode()
    assert not Interaction.objects.filter(client=client_of_a).exists()
    assert not RMTask.objects.exists()


def test_follow_up_later_with_a_date_puts_a_task_due_that_day_on_the_rms_list(
        logged_in, rm_a, client_of_a):
    due = timezone.localdate() + timedelta(days=3)
    http = logged_in(rm_a)
    response = http.post(f"/clients/{client_of_a.client_no}/interactions/",
                         {"kind": "call", "outcome": "follow_up", "note": "下周再聊债券",
                          "follow_up_on": due.isoformat()})
    assert response.status_code == 302
    task = RMTask.objects.get()
    assert (task.client, task.assignee, task.due_on, task.source, task.detail) == (
        client_of_a, rm_a, due, TaskSource.FOLLOW_UP, "下周再聊债券")
    assert task.origin_id == str(Interaction.objects.get(client=client_of_a).pk)
    page = http.get("/tasks/").content.decode()
    assert f'value="{due.isoformat()}"' in page and client_of_a.name in page


def test_the_interaction_form_asks_for_the_follow_up_day(logged_in, rm_a, client_of_a):
    page = logged_in(rm_a).get(f"/clients/{client_of_a.client_no}/").content.decode()
    assert 'type="date" name="follow_up_on"' in page


def test_an_rm_adds_a_task_for_a_client_of_their_book_and_one_for_no_client(
        logged_in, rm_a, client_of_a):
    http = logged_in(rm_a)
    assert 'id="new-task"' in http.get("/tasks/").content.decode()
    due = timezone.localdate() + timedelta(days=1)
    response = http.post("/tasks/new/", {
        "title": "准备季度回访", "client_no": client_of_a.client_no, "due_on": due.isoformat(),
        "detail": "带上债券资料"})
    assert response.status_code == 302
    response = http.post("/tasks/new/", {"title": "整理客户名单", "client_no": ""})
    assert response.status_code == 302
    first, second = RMTask.objects.order_by("id")
    assert (first.client, first.assignee, first.due_on, first.source) == (
        client_of_a, rm_a, due, TaskSource.MANUAL)
    assert second.client is None and second.assignee == rm_a
    page = http.get("/tasks/").content.decode()
    assert "准备季度回访" in page and "整理客户名单" in page


def test_an_rm_cannot_add_a_task_for_another_rms_client(logged_in, rm_a, clients_of_b):
    other = clients_of_b[0]
    response = logged_in(rm_a).post("/tasks/new/", {"title": "偷看", "client_no": other.client_no})
    assert response.status_code == 404
    assert not RMTask.objects.exists()
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=rm_a,
                                   object_id=other.client_no).exists()


def test_a_task_without_a_title_is_refused(logged_in, rm_a):
    response = logged_in(rm_a).post("/tasks/new/", {"title": "  "})
    assert response.status_code == 400 and not RMTask.objects.exists()


def test_an_rm_moves_the_due_date_of_their_task_but_not_of_another_rms(
        logged_in, rm_a, rm_b, client_of_a, clients_of_b):
    mine = RMTask.objects.create(client=client_of_a, assignee=rm_a, source=TaskSource.MANUAL,
                                 title="回访")
    theirs = RMTask.objects.create(client=clients_of_b[0], assignee=rm_b,
                                   source=TaskSource.MANUAL, title="回访 B")
    due = timezone.localdate() + timedelta(days=7)
    http = logged_in(rm_a)
    assert http.post(f"/tasks/{mine.pk}/due/", {"due_on": due.isoformat()}).status_code == 302
    mine.refresh_from_db()
    assert mine.due_on == due
    assert http.post(f"/tasks/{theirs.pk}/due/", {"due_on": due.isoformat()}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.due_on is None
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=rm_a,
                                   object_type="task", object_id=str(theirs.pk)).exists()
