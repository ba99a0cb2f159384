"""The RM's day in a real browser: log in, open the home page, record an outcome with one click
and see the call leave the list; set the next follow-up on another and see it leave too."""

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from outreach.models import RMTask, TaskSource, TaskStatus
from tests.analytics.conftest import days
from tests.clients.test_scoring_browser import log_in

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@pytest.mark.browser
def test_an_rm_records_an_outcome_in_one_click_and_the_call_leaves_the_list(
        page, live_server, transactional_db, rm_a, rm_tasks, today):
    log_in(page, live_server, "rm_a", "zh-hans")
    page.goto(f"{live_server.url}/")
    expect(page.locator("#task-count")).to_have_text("4")
    tasks = page.locator("#rm-tasks")
    overdue = tasks.locator(f'li[data-task="{rm_tasks["overdue"].pk}"]')
    campaign = tasks.locator(f'li[data-task="{rm_tasks["campaign"].pk}"]')
    expect(overdue).to_be_visible()
    expect(campaign).to_contain_text("张三您好，您的债券即将到期。")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "home_rm.png"), full_page=True)

    overdue.locator('[data-outcome-button="reached"]').click()
    expect(page.locator(f'#rm-tasks li[data-task="{rm_tasks["overdue"].pk}"]')).to_have_count(0)
    expect(page.locator("#rm-tasks-messages")).to_be_visible()
    expect(page.locator("#task-count")).to_have_text("3")  # the menu's count follows
    assert page.url == f"{live_server.url}/"  # swapped in place, no page load
    done = RMTask.objects.get(pk=rm_tasks["overdue"].pk)
    assert (done.status, done.outcome) == (TaskStatus.DONE, "reached")

    campaign = page.locator(f'#rm-tasks li[data-task="{rm_tasks["campaign"].pk}"]')
    campaign.locator('input[name="follow_up_on"]').fill((today + days(2)).isoformat())
    campaign.locator('input[name="note"]').fill("客户开会，后天再打")
    campaign.locator('[data-outcome-button="no_answer"]').click()
    expect(page.locator(f'#rm-tasks li[data-task="{rm_tasks["campaign"].pk}"]')).to_have_count(0)
    follow_up = RMTask.objects.get(origin_type="outreach.task")
    assert (follow_up.client_id, follow_up.assignee_id, follow_up.source, follow_up.due_on,
            follow_up.detail) == (rm_tasks["campaign"].client_id, rm_a.pk, TaskSource.FOLLOW_UP,
                                  today + days(2), "客户开会，后天再打")
    page.screenshot(path=str(SCREENSHOTS / "home_rm_after.png"), full_page=True)
