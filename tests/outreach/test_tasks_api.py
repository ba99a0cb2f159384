"""GET /api/v1/tasks/ and PATCH /api/v1/tasks/{id}/ (shared/API.md): the caller's call list,
outcomes in one write, "do not call" turning phone consent off everywhere."""

import datetime as dt

import pytest
from rest_framework.test import APIClient

from core.models import AuditLog
from outreach.models import RMTask, TaskSource
from outreach.services import task_create
from tests.clients.test_api import assert_error
from tests.factories import ClientFactory


def api_as(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def tasks(rm_a, rm_b):
    mine = ClientFactory(rm=rm_a, branch=rm_a.branch, consent_phone=True, name="李四")
    theirs = ClientFactory(rm=rm_b, branch=rm_b.branch, consent_phone=True)
    today = dt.date(2026, 12, 2)
    return {
        "due": task_create(assignee=rm_a, client=mine, title="Call about the bond",
                           due_on=today, source=TaskSource.MANUAL),
        "later": task_create(assignee=rm_a, client=mine, title="Quarterly review",
                             due_on=today + dt.timedelta(days=20)),
        "theirs": task_create(assignee=rm_b, client=theirs, title="Not yours"),
    }


def test_an_rm_lists_only_their_own_tasks_with_filters(rm_a, tasks):
    body = api_as(rm_a).get("/api/v1/tasks/").json()
    assert sorted(t["title"] for t in body["results"]) == ["Call about the bond",
                                                          "Quarterly review"]
    row = next(t for t in body["results"] if t["title"] == "Call about the bond")
    assert row["client_no"] == tasks["due"].client.client_no and row["client_name"] == "李四"
    assert row["assignee"] == rm_a.username and row["status"] == "open" and row["outcome"] == ""
    due = api_as(rm_a).get("/api/v1/tasks/", {"due_before": "2026-12-02"}).json()["results"]
    assert [t["title"] for t in due] == ["Call about the bond"]
    tasks["later"].status = "done"
    tasks["later"].save()
    done = api_as(rm_a).get("/api/v1/tasks/", {"status": "done"}).json()["results"]
    assert [t["title"] for t in done] == ["Quarterly review"]


def test_a_branch_manager_sees_the_branch_and_ops_see_all(branch_manager, ops_user, tasks):
    branch = {t["title"] for t in api_as(branch_manager).get("/api/v1/tasks/").json()["results"]}
    assert branch == {"Call about the bond", "Quarterly review"}
    everyone = {t["title"] for t in api_as(ops_user).get("/api/v1/tasks/").json()["results"]}
    assert everyone == {"Call about the bond", "Quarterly review", "Not yours"}


def test_the_outcome_and_note_are_recorded_in_one_write(rm_a, tasks):
    task = tasks["due"]
    response = api_as(rm_a).patch(f"/api/v1/tasks/{task.pk}/", {
        "status": "done", "outcome": "interested", "note": "  wants the 3-year one  "},
        format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["outcome"], body["note"]) == ("done", "interested",
                                                               "wants the 3-year one")
    task.refresh_from_db()
    assert task.done_at and task.outcome_at and task.outcome_note == "wants the 3-year one"
    reopened = api_as(rm_a).patch(f"/api/v1/tasks/{task.pk}/", {"status": "open",
                                                               "due_on": "2026-12-09"},
                                  format="json").json()
    assert reopened["status"] == "open" and reopened["due_on"] == "2026-12-09"
    task.refresh_from_db()
    assert task.done_at is None


def test_do_not_call_turns_phone_consent_off_everywhere_and_is_audited(rm_a, tasks):
    task = tasks["due"]
    response = api_as(rm_a).patch(f"/api/v1/tasks/{task.pk}/", {"outcome": "do_not_call"},
                                  format="json")
    assert response.status_code == 200, response.content
    task.client.refresh_from_db()
    assert task.client.consent_phone is False and task.client.consent_updated_at
    row = AuditLog.objects.get(action="consent_changed", object_id=task.client.client_no)
    assert row.actor == rm_a and row.detail == {"consent_phone": False, "source": "do_not_call"}


def test_someone_elses_task_is_an_audited_404(rm_a, tasks):
    theirs = tasks["theirs"]
    assert_error(api_as(rm_a).get(f"/api/v1/tasks/{theirs.pk}/"), 404)
    assert_error(api_as(rm_a).patch(f"/api/v1/tasks/{theirs.pk}/", {"status": "done"},
                                    format="json"), 404)
    assert AuditLog.objects.filter(action="access_denied", object_type="task",
                                   object_id=str(theirs.pk)).count() == 2
    theirs.refresh_from_db()
    assert theirs.status == "open"


@pytest.mark.parametrize("body, field", [
    ({"status": "finished"}, "status"),
    ({"outcome": "maybe"}, "outcome"),
    ({"note": "x" * 2001}, "note"),
    ({"due_on": "2026-02-30"}, "due_on"),
    ({"due_on": "0001-01-01"}, "due_on"),
    ({"status": "done", "due_on": "2026-12-09"}, "due_on"),
])
def test_bad_input_is_a_400_naming_the_field_and_nothing_changes(rm_a, tasks, body, field):
    task = tasks["due"]
    response = api_as(rm_a).patch(f"/api/v1/tasks/{task.pk}/", body, format="json")
    assert field in assert_error(response, 400)["error"]["fields"]
    fresh = RMTask.objects.get(pk=task.pk)
    assert (fresh.status, fresh.outcome, fresh.outcome_note, fresh.due_on) == (
        task.status, task.outcome, task.outcome_note, task.due_on)


@pytest.mark.parametrize("params, field", [({"status": "later"}, "status"),
                                           ({"due_before": "soon"}, "due_before")])
def test_bad_filters_are_a_400(rm_a, tasks, params, field):
    assert field in assert_error(api_as(rm_a).get("/api/v1/tasks/", params),
                                 400)["error"]["fields"]


def test_a_body_that_is_not_an_object_is_a_400(rm_a, tasks):
    assert_error(api_as(rm_a).patch(f"/api/v1/tasks/{tasks['due'].pk}/", ["done"],
                                    format="json"), 400)


def test_tasks_need_a_login(db):
    assert_error(APIClient().get("/api/v1/tasks/"), 401)


def test_an_outcome_with_the_next_follow_up_closes_the_task_and_puts_a_new_one_on_the_list(
        rm_a, tasks):
    from django.utils import timezone

    task = tasks["due"]
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    body = {"outcome": "interested", "note": "回电讨论债券", "follow_up_on": tomorrow.isoformat()}
    response = api_as(rm_a).patch(f"/api/v1/tasks/{task.pk}/", body, format="json")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["status"] == "done" and answer["outcome"] == "interested"
    follow_up = answer["follow_up"]
    assert follow_up["status"] == "open" and follow_up["due_on"] == tomorrow.isoformat()
    assert follow_up["client_no"] == task.client.client_no and follow_up["assignee"] == "rm_a"
    assert follow_up["source"] == "follow_up" and follow_up["detail"] == "回电讨论债券"
    again = api_as(rm_a).patch(f"/api/v1/tasks/{task.pk}/", body, format="json").json()
    assert again["follow_up"]["id"] == follow_up["id"]  # a repeated post makes no second task
    assert RMTask.objects.filter(client=task.client, source="follow_up").count() == 1
    plain = api_as(rm_a).patch(f"/api/v1/tasks/{tasks['later'].pk}/", {"note": "x"},
                               format="json").json()
    assert plain["follow_up"] is None


@pytest.mark.parametrize("who, follow_up_on, status, field", [
    ("rm_a", "2020-01-02", 400, "follow_up_on"),  # in the past
    ("rm_a", "not a date", 400, "follow_up_on"),
    ("branch_manager", "tomorrow", 403, None),  # only the task's RM sets a follow-up
])
def test_a_wrong_follow_up_is_refused_and_the_outcome_is_not_written_either(
        who, follow_up_on, status, field, request, tasks):
    from django.utils import timezone

    if follow_up_on == "tomorrow":
        follow_up_on = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    task = tasks["due"]
    response = api_as(request.getfixturevalue(who)).patch(
        f"/api/v1/tasks/{task.pk}/", {"outcome": "bought", "follow_up_on": follow_up_on},
        format="json")
    assert_error(response, status)
    if field:
        assert field in str(response.json())
    task.refresh_from_db()
    assert task.status == "open" and task.outcome == ""
    assert not RMTask.objects.filter(source="follow_up").exists()
