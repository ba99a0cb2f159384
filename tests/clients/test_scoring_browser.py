"""Value scoring in a real browser, in both languages: ops start a run on the scoring page and
watch it finish; then an RM opens a scored client and reads why it sits in its tier."""

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from clients.scoring.models import ScoringScheme
from clients.scoring.schemes import scheme_publish
from tests.clients.test_scoring_pages import buy
from tests.conftest import PASSWORD
from tests.factories import ClientFactory

V1 = {"window_months": 12, "amount_bounds": [10000, 50000, 100000, 500000, 1000000],
      "frequency_bounds": [2, 5, 10, 50, 100],
      "benefit_bounds": [10000, 30000, 100000, 300000, 500000], "high_score": 4,
      "recent_days": 30, "tier_precedence": ["guiding", "development", "potential", "long_tail"]}
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"

LABELS = {
    "zh-hans": {"scoring": "价值评分", "succeeded": "成功", "development": "重要发展客户",
                "rule": "重要发展客户：数量评分 4 ≥ 4", "logout": "退出"},
    "en": {"scoring": "Value scoring", "succeeded": "Succeeded",
           "development": "Key development client",
           "rule": "Key development: amount score 4 ≥ 4", "logout": "Log out"},
}


@pytest.fixture
def scheme_v1(transactional_db):
    """A transactional test's flush removes the seeded version 1; publish it again if so."""
    if not ScoringScheme.objects.exists():
        scheme_publish(data=V1)


@pytest.fixture
def book(scheme_v1, rm_a, client_of_a, ops_user):
    buy(client_of_a, amount="100000", days_ago=10, times=2)  # amount band 4: development
    for i in range(5):
        other = ClientFactory(client_no=f"A00001{i:02d}", name=f"客户{i}", rm=rm_a,
                              branch=rm_a.branch)
        if i % 2:
            buy(other, amount="20000", days_ago=3 + i)  # bought recently: potential value-add
    return client_of_a


def log_in(page, live_server, username: str, language: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    if page.locator("html").get_attribute("lang") != language:
        with page.expect_navigation():
            page.select_option("#language-select", language)
    assert page.locator("html").get_attribute("lang") == language
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    # RMs and branch managers land on the day's work (/), the other roles on the clients.
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


@pytest.mark.browser
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_ops_run_scoring_and_an_rm_reads_why_a_client_is_in_its_tier(page, live_server,
                                                                      transactional_db, book,
                                                                      language):
    labels = LABELS[language]
    log_in(page, live_server, "ops", language)
    page.get_by_role("link", name=labels["scoring"]).click()
    page.wait_for_url("**/scoring/")
    assert page.locator("h1").inner_text() == labels["scoring"]

    yesterday = timezone.localdate() - dt.timedelta(days=1)
    assert page.locator("#id_as_of").input_value() == yesterday.isoformat()
    # No broker: the run completes within the request (the first one also imports pandas).
    with page.expect_navigation(url="**/scoring/?run=*", timeout=60000):
        page.click("#run-start")
    row = page.locator("#runs-table tbody tr[data-run]").first
    assert row.get_attribute("data-status") == "succeeded"
    assert labels["succeeded"] in row.inner_text()
    bar = row.locator(".progress")
    assert bar.get_attribute("aria-valuenow") == "100"
    assert row.locator('[data-tier-count="development"]').inner_text().endswith(" 1")
    assert page.locator("#scoring-runs").get_attribute("data-polling") == "false"
    page.locator("#tier-chart svg").wait_for()  # ECharts drew the tier chart
    page.locator("#score-chart svg").wait_for()

    # A run for a date before the purchases: the matrix shows the client moving to development.
    page.fill("#id_as_of", (yesterday - dt.timedelta(days=400)).isoformat())
    with page.expect_navigation(url="**/scoring/?run=*", timeout=60000):
        page.click("#run-start")
    cell = page.locator('#migration-matrix tr[data-from="long_tail"] td[data-to="development"]')
    assert cell.inner_text() == "1"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"scoring_page_{language}.png"), full_page=True)
    with page.expect_navigation():
        cell.get_by_role("link").click()
    assert book.client_no in page.locator("#migration-clients").inner_text()

    page.get_by_role("button", name=labels["logout"]).click()
    log_in(page, live_server, "rm_a", language)
    page.goto(f"{live_server.url}/clients/{book.client_no}/")
    card = page.locator("#value-score")
    assert labels["development"] in card.inner_text()
    assert card.locator('[data-score="amount"]').inner_text() == "4"
    why = card.locator("#score-why").inner_text()
    assert "200,000" in why and "100,000 – 500,000 → 4" in why
    assert labels["rule"] in card.locator("#score-rule").inner_text()
    card.locator("#score-history-chart svg").wait_for()
    card.screenshot(path=str(SCREENSHOTS / f"score_card_{language}.png"))
    page.screenshot(path=str(SCREENSHOTS / f"client_360_scored_{language}.png"), full_page=True)
