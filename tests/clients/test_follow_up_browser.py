"""'Follow up later' on a call asks for a day and puts a task due then on the RM's list
(issue 10), in a real browser."""

import pytest

from outreach.models import RMTask
from tests.clients.test_scoring_browser import log_in


@pytest.mark.browser
def test_the_follow_up_day_is_asked_only_for_follow_up_later_and_makes_a_task(
        page, live_server, transactional_db, rm_a, client_of_a):
    log_in(page, live_server, "rm_a", "en")
    page.goto(f"{live_server.url}/clients/{client_of_a.client_no}/")
    day = page.locator("#id_follow_up_on")
    assert not day.is_visible()
    page.select_option("#id_outcome", "follow_up")
    assert day.is_visible()
    day.fill("2099-01-31")
    page.fill("#id_note", "call back about bonds")
    page.click("#log-interaction")
    page.locator("text=The interaction was logged.").first.wait_for()
    assert str(RMTask.objects.get(client=client_of_a).due_on) == "2099-01-31"
