"""The home pages (issue 12, "The RM's day"): what an RM sees first thing, what a branch manager
sees of the team, and that both read only their own scope, in a fixed number of queries."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import home
from clients.scoring.models import ScoringCurrent
from core.errors import ApplicationError
from core.models import AuditAction, AuditLog, Role
from outreach.models import Contact, RMTask, TaskSource, TaskStatus
from outreach.services import task_follow_up_create
from tests.analytics.conftest import days, join, make_task, score
from tests.factories import ClientFactory, staff


def section(body: str, element_id: str) -> str:
    start = body.index(f'id="{element_id}"')
    return body[start:body.index("</section>", start)]


# --- the RM's day ------------------------------------------------------------------------------
def test_an_rm_sees_their_overdue_and_due_today_tasks_and_not_another_rms(
        logged_in, rm_a, rm_tasks):
    body = logged_in(rm_a).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    tasks = section(body, "rm-tasks")
    for key in ("overdue", "campaign", "reply"):
        assert f'data-task="{rm_tasks[key].pk}"' in tasks, key
    for key in ("later", "done", "of_b"):
        assert f'data-task="{rm_tasks[key].pk}"' not in tasks, key
    assert "B 的逾期回访" not in body and "B0000000" not in body
    # most overdue first, then today's, then the undated
    order = [int(n) for n in re.findall(r'<li class="list-group-item" data-task="(\d+)"', tasks)]
    assert order == [rm_tasks["overdue"].pk, rm_tasks["campaign"].pk, rm_tasks["reply"].pk]
    assert 'data-count="overdue">1 overdue' in tasks and 'data-count="today">1 due today' in tasks


def test_a_task_says_why_with_the_campaign_its_script_and_variant_and_a_masked_phone(
        logged_in, rm_a, rm_tasks):
    body = logged_in(rm_a).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    row = body[body.index(f'data-task="{rm_tasks["campaign"].pk}"'):]
    row = row[:row.index("</li>")]
    assert '<span class="badge text-bg-primary" data-campaign>秋季稳健理财</span>' in row
    assert "稳健债券到期提醒" in row and "张三您好，您的债券即将到期。" in row
    assert "Script B:" in row
    assert "138****5678" in row and "13812345678" not in body


def test_the_tasks_panel_reads_in_a_few_queries_whatever_the_number_of_tasks(
        rm_a, client_of_a, today, django_assert_max_num_queries):
    for n in range(30):
        RMTask.objects.create(client=client_of_a, assignee=rm_a, source=TaskSource.MANUAL,
                              title=f"任务{n}", due_on=today - days(n % 5))
    with django_assert_max_num_queries(8):
        due = home.rm_tasks_due(user=rm_a, today=today)
    assert (due.overdue, due.due_today, len(due.rows)) == (24, 6, 30)


@pytest.mark.parametrize("language, name, script", [
    ("zh-hans", "生日", "生日快乐！祝您身体健康。"),
    ("en", "Birthday", "Happy birthday! Wishing you good health."),
])
def test_newly_joined_scenario_clients_appear_with_the_script_in_the_pages_language(
        logged_in, rm_a, scenarios, client_of_a, clients_of_b, language, name, script):
    body = logged_in(rm_a).get("/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    panel = section(body, "rm-scenarios")
    birthday = panel[panel.index('data-scenario="scn_birthday"'):]
    birthday = birthday[:birthday.index('data-scenario="', 30)] \
        if 'data-scenario="' in birthday[30:] else birthday
    assert name in birthday and script in birthday
    assert f'data-client="{client_of_a.client_no}"' in birthday
    assert "138****5678" in birthday
    assert scenarios["old_member"].client_no not in panel  # joined 10 days ago
    assert clients_of_b[0].client_no not in body  # rm_b's client
    dormant = panel[panel.index('data-scenario="scn_dormant"'):]
    assert scenarios["sleeper"].client_no in dormant and "data-script" not in dormant


def test_a_client_who_left_a_scenario_is_no_longer_new_in_it(rm_a, scenarios, client_of_a):
    scenarios["birthday"].memberships.filter(client=client_of_a).delete()
    shown = {s["segment"].code: [m["client"].client_no for m in s["members"]]
             for s in home.scenario_newcomers(user=rm_a)}
    assert "scn_birthday" not in shown and shown["scn_dormant"] == ["A0000010"]


def test_scenario_newcomers_are_capped_per_scenario_and_counted_in_full(rm_a, scenarios):
    for _ in range(14):
        join(scenarios["dormant"], ClientFactory(rm=rm_a, branch=rm_a.branch), ago=days(1))
    dormant = next(s for s in home.scenario_newcomers(user=rm_a, per_scenario=10)
                   if s["segment"].code == "scn_dormant")
    assert (dormant["joined"], len(dormant["members"]), dormant["more"]) == (15, 10, 5)


def test_the_books_aum_and_active_clients_equal_the_hand_computed_figures(
        logged_in, rm_a, fixed_book, today):
    figures = home.book_figures(user=rm_a, today=today)
    assert figures == {"clients": 4, "aum": Decimal("1350000.50"), "active": 2,
                       "active_share": 50}
    body = logged_in(rm_a).get("/").content.decode()
    assert 'data-figure="clients" data-value="4"' in body
    aum = re.search(r'data-figure="aum" data-value="([^"]+)"', body).group(1)
    assert Decimal(aum) == Decimal("1350000.50")
    assert 'data-figure="active" data-value="2"' in body


def test_tier_moves_compare_the_current_scores_with_those_at_least_a_week_older(
        logged_in, rm_a, scored_book, today):
    moves = home.tier_moves(user=rm_a)
    assert (moves["as_of"], moves["compared_with"]) == (today - days(1), today - days(8))
    assert (moves["up"], moves["down"]) == (2, 1)
    assert [(r["client_no"], r["up"]) for r in moves["rows"]] == [
        ("T0000004", True), ("T0000002", False), ("T0000001", True)]  # largest AUM first
    body = logged_in(rm_a).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-figure="tier-up" data-value="2"' in body
    assert 'data-figure="tier-down" data-value="1"' in body
    assert "T0000099" not in body


def test_without_scores_a_week_apart_there_are_no_tier_moves(rm_a, scheme, today):
    ScoringCurrent.objects.update_or_create(pk=1, defaults={"as_of": today, "scheme": scheme})
    assert home.tier_moves(user=rm_a) is None


# --- one click: an outcome and the next follow-up ----------------------------------------------
def test_logging_an_outcome_with_a_next_follow_up_creates_it_for_the_same_client_and_rm(
        logged_in, rm_a, rm_tasks, today):
    task = rm_tasks["overdue"]
    web = logged_in(rm_a)
    next_call = today + days(3)
    response = web.post(f"/tasks/{task.pk}/outcome/",
                        {"outcome": "interested", "note": "下周二再聊",
                         "follow_up_on": next_call.isoformat(), "next": "/home/tasks/"})
    assert response.status_code == 302 and response["Location"] == "/home/tasks/"
    task.refresh_from_db()
    assert (task.status, task.outcome) == (TaskStatus.DONE, "interested")
    follow_up = RMTask.objects.get(source=TaskSource.FOLLOW_UP, due_on=next_call)
    assert (follow_up.client_id, follow_up.assignee_id, follow_up.status) == (
        task.client_id, rm_a.pk, TaskStatus.OPEN)
    assert follow_up.detail == "下周二再聊" and task.title in follow_up.title
    # the same post again (a double click) makes no second follow-up
    web.post(f"/tasks/{task.pk}/outcome/",
             {"outcome": "interested", "follow_up_on": next_call.isoformat()})
    assert RMTask.objects.filter(source=TaskSource.FOLLOW_UP, due_on=next_call).count() == 1


def test_no_answer_with_a_next_follow_up_closes_the_call_and_the_follow_up_is_the_next_try(
        logged_in, rm_a, rm_tasks, today):
    task = rm_tasks["campaign"]
    logged_in(rm_a).post(f"/tasks/{task.pk}/outcome/",
                         {"outcome": "no_answer", "follow_up_on": (today + days(1)).isoformat()})
    task.refresh_from_db()
    assert (task.status, task.outcome) == (TaskStatus.DONE, "no_answer")
    assert RMTask.objects.filter(client=task.client, assignee=rm_a, status=TaskStatus.OPEN,
                                 due_on=today + days(1), source=TaskSource.FOLLOW_UP).exists()


def test_a_follow_up_in_the_past_records_nothing(logged_in, rm_a, rm_tasks, today):
    task = rm_tasks["overdue"]
    response = logged_in(rm_a).post(
        f"/tasks/{task.pk}/outcome/",
        {"outcome": "reached", "follow_up_on": (today - days(1)).isoformat()},
        follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "cannot be in the past" in response.content.decode()
    task.refresh_from_db()
    assert (task.status, task.outcome) == (TaskStatus.OPEN, "")
    assert not RMTask.objects.filter(origin_type="outreach.task").exists()


def test_only_the_assigned_rm_sets_a_follow_up_a_branch_manager_gets_an_error_and_no_change(
        logged_in, branch_manager, rm_tasks, today):
    task = rm_tasks["overdue"]
    response = logged_in(branch_manager).post(
        f"/tasks/{task.pk}/outcome/",
        {"outcome": "reached", "follow_up_on": (today + days(2)).isoformat()},
        follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "Only the RM the task is assigned to" in response.content.decode()
    task.refresh_from_db()
    assert task.outcome == "" and not RMTask.objects.filter(origin_type="outreach.task").exists()


def test_the_follow_up_service_refuses_a_task_of_someone_else(rm_a, rm_b, rm_tasks, today):
    with pytest.raises(ApplicationError) as refused:
        task_follow_up_create(task=rm_tasks["of_b"], actor=rm_a, due_on=today + days(1))
    assert refused.value.status == 403


def test_the_htmx_answer_after_an_outcome_is_the_task_panel_without_the_task(
        logged_in, rm_a, rm_tasks):
    web = logged_in(rm_a)
    task = rm_tasks["overdue"]
    web.post(f"/tasks/{task.pk}/outcome/", {"outcome": "reached", "next": "/home/tasks/"})
    panel = web.get("/home/tasks/", HTTP_HX_REQUEST="true",
                    HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert panel.lstrip().startswith("<section") and 'id="rm-tasks"' in panel
    assert f'data-task="{task.pk}"' not in panel
    assert f'data-task="{rm_tasks["campaign"].pk}"' in panel
    assert 'id="rm-tasks-messages"' in panel and "已记录" in panel  # the message, in the panel
    # without htmx the same address is the whole home page
    assert web.get("/home/tasks/")["Location"] == "/"


def test_an_outcome_goes_back_only_to_a_page_of_this_site(logged_in, rm_a, rm_tasks):
    response = logged_in(rm_a).post(f"/tasks/{rm_tasks['overdue'].pk}/outcome/",
                                    {"outcome": "reached", "next": "https://evil.example/"})
    assert response["Location"] == "/tasks/"


# --- the branch manager's team -----------------------------------------------------------------
def figures_of(body: str, username: str) -> dict:
    row = re.search(rf'<tr data-rm="{username}">(.*?)</tr>', body, re.S).group(1)
    return {name: value for name, value in re.findall(
        r'data-figure="(\w+)"(?: data-value="([^"]*)")?>', row)} | {
        "open": re.search(r'data-figure="open">(\d+)<', row).group(1),
        "overdue": re.search(r'data-figure="overdue">(\d+)<', row).group(1)}


def test_a_branch_manager_sees_each_rm_of_the_branch_with_hand_counted_figures(
        logged_in, branch_manager, rm_a, rm_a2, rm_b, team_tasks, today):
    # rm_a: open T1 T2 T3 T4 T9; overdue T1 T2; due in 30 days (not cancelled) T1 T3 T5 T6, done
    # T5 T6; outcomes in 30 days T5 T6 T9, bought T5. rm_a2: T10 open, overdue, due, not done.
    team = home.team_figures(user=branch_manager, today=today)
    rows = {r["rm"].username: r for r in team["rows"]}
    assert set(rows) == {"rm_a", "rm_a2"}
    a = rows["rm_a"]
    assert (a["open"], a["overdue"], a["due"], a["done"], a["completion"]) == (5, 2, 4, 2, 50)
    assert (a["outcomes"], a["bought"], a["conversion"]) == (3, 1, 33)
    a2 = rows["rm_a2"]
    assert (a2["open"], a2["overdue"], a2["completion"], a2["conversion"]) == (1, 1, 0, None)
    assert team["chart"] == {"rms": ["王经理", "陈经理"], "open": [5, 1], "overdue": [2, 1]}

    body = logged_in(branch_manager).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    shown = figures_of(body, "rm_a")
    assert (shown["open"], shown["overdue"], shown["completion"], shown["conversion"]) == (
        "5", "2", "50", "33")
    assert figures_of(body, "rm_a2")["conversion"] == ""
    assert 'data-rm="rm_b"' not in body and "北京客户" not in body
    assert 'id="team-chart-data"' in body and "vendor/echarts/echarts.min.js" in body


def test_the_manager_sees_overdue_and_unassigned_tasks_to_hand_over(
        logged_in, branch_manager, rm_a2, team_tasks):
    attention = home.team_attention(user=branch_manager)
    # overdue: T1 T2 T10 T11 (T8 is cancelled, T12 is another branch's); unassigned: T11
    assert (attention["overdue"], attention["unassigned"], attention["total"]) == (4, 1, 4)
    assert [t.title for t in attention["rows"]] == ["团队任务 2", "团队任务 10", "团队任务 11",
                                                    "团队任务 1"]
    body = logged_in(branch_manager).get("/").content.decode()
    panel = section(body, "team-attention")
    unassigned = team_tasks[10]
    assert f'action="/tasks/{unassigned.pk}/reassign/"' in panel
    assert "团队任务 12" not in body


def test_a_manager_hands_an_unassigned_call_to_an_rm_from_the_home_page(
        logged_in, branch_manager, rm_a2, team_tasks):
    unassigned = team_tasks[10]
    response = logged_in(branch_manager).post(f"/tasks/{unassigned.pk}/reassign/",
                                              {"assignee": rm_a2.pk, "next": "/"})
    assert response["Location"] == "/"
    unassigned.refresh_from_db()
    assert unassigned.assignee_id == rm_a2.pk
    assert AuditLog.objects.filter(object_type="task", object_id=str(unassigned.pk),
                                   action=AuditAction.SETTINGS_CHANGED).exists()


def test_another_branchs_manager_gets_none_of_it(logged_in, other_manager, rm_b, team_tasks,
                                                today):
    team = home.team_figures(user=other_manager, today=today)
    assert [r["rm"].username for r in team["rows"]] == ["rm_b"]
    assert (team["rows"][0]["open"], team["rows"][0]["conversion"]) == (1, 100)
    attention = home.team_attention(user=other_manager)
    assert [t.title for t in attention["rows"]] == ["团队任务 12"]
    body = logged_in(other_manager).get("/").content.decode()
    for secret in ("rm_a", "王经理", "陈经理", "团队客户", "无人客户", "团队任务 1<"):
        assert secret not in body, secret


def test_a_branch_manager_without_a_branch_sees_an_empty_team(logged_in, branch_manager):
    branch_manager.branch = None
    branch_manager.save(update_fields=["branch"])
    body = logged_in(branch_manager).get("/").content.decode()
    assert 'id="team-empty"' in body


# --- everyone else -----------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["ops_user", "compliance_user", "admin_user_"])
def test_other_roles_go_on_to_the_client_list(request, logged_in, who):
    response = logged_in(request.getfixturevalue(who)).get("/")
    assert response.status_code == 302 and response["Location"] == "/clients/"


def test_a_visitor_is_asked_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_task_panel_alone_is_for_rms(logged_in, branch_manager):
    response = logged_in(branch_manager).get("/home/tasks/", HTTP_HX_REQUEST="true")
    assert response["Location"] == "/"


# --- speed: the queries do not grow with the book ----------------------------------------------
def _grow_rm(rm, scenario_segment, scheme, today, n):
    for _ in range(n):
        c = ClientFactory(rm=rm, branch=rm.branch, last_purchase_on=today)
        make_task(client=c, assignee=rm, due_on=today - days(1))
        contact = Contact.objects.create(client=c, source="campaign", source_id=1, step=0,
                                         channel="phone", variant="A", planned_on=today)
        make_task(client=c, assignee=rm, due_on=today, source=TaskSource.CAMPAIGN,
                  title="活动 · 电话", origin_type="outreach.contact", origin_id=str(contact.pk))
        join(scenario_segment, c, ago=days(1))
        score(c, as_of=today - days(8), tier="long_tail", scheme=scheme)
        score(c, as_of=today - days(1), tier="potential", scheme=scheme)


def test_the_rm_home_page_takes_the_same_few_queries_for_a_small_and_a_larger_book(
        logged_in, rm_a, scenarios, scheme, today, django_assert_max_num_queries):
    ScoringCurrent.objects.update_or_create(pk=1, defaults={"as_of": today - days(1),
                                                            "scheme": scheme})
    web = logged_in(rm_a)
    web.get("/")
    counts, shown = [], []
    for _step in range(2):
        _grow_rm(rm_a, scenarios["birthday"], scheme, today, 6)
        with CaptureQueriesContext(connection) as seen, django_assert_max_num_queries(22):
            body = web.get("/").content.decode()
        counts.append(len(seen))
        shown.append(body.count('<li class="list-group-item" data-task='))
    assert shown == [12, 24]
    assert counts[0] == counts[1], counts


def test_the_manager_home_page_takes_the_same_few_queries_for_a_small_and_a_larger_team(
        logged_in, branch_manager, branch, today, django_assert_max_num_queries):
    web = logged_in(branch_manager)
    web.get("/")
    counts, shown = [], []
    for step in range(2):
        for i in range(4):
            rm = staff(Role.RM, username=f"team_{step}_{i}", branch=branch)
            c = ClientFactory(rm=rm, branch=branch)
            make_task(client=c, assignee=rm, due_on=today - days(2))
            make_task(client=c, assignee=None, due_on=today)
        with CaptureQueriesContext(connection) as seen, django_assert_max_num_queries(14):
            body = web.get("/").content.decode()
        counts.append(len(seen))
        shown.append(body.count("<tr data-rm=\"team_"))
    assert shown == [4, 8]
    assert counts[0] == counts[1], counts


def test_the_date_of_today_is_the_local_date(logged_in, rm_a):
    body = logged_in(rm_a).get("/").content.decode()
    assert f'id="home-date">{timezone.localdate().isoformat()}<' in body
    assert isinstance(timezone.localdate(), dt.date)


def test_the_task_list_offers_the_next_follow_up_date_on_the_rms_own_tasks_only(
        logged_in, rm_a, branch_manager, rm_tasks):
    mine = logged_in(rm_a).get("/tasks/").content.decode()
    assert f'id="follow-up-{rm_tasks["overdue"].pk}"' in mine
    theirs = logged_in(branch_manager).get("/tasks/").content.decode()
    assert f'data-task="{rm_tasks["overdue"].pk}"' in theirs
    assert 'name="follow_up_on"' not in theirs


def test_a_user_who_may_see_no_client_has_no_scenario_newcomers(scenarios):
    nobody = staff(Role.RM, username="no_role_yet", branch=None)
    nobody.groups.clear()
    nobody._cached_role = None
    assert home.scenario_newcomers(user=nobody) == []
