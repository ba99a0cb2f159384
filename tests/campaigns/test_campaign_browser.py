"""The campaign loop in a real browser, in both languages: ops design a campaign and watch the
live count, save and submit; compliance reviews the rendered variants and approves; ops launch
(eager Celery); the call step puts scripted calls on the RM's list; the RM records an outcome in
two clicks; the results page draws its charts and exports."""

import pytest

from campaigns.launch import campaign_steps_run
from campaigns.models import Campaign, CampaignMember
from outreach.models import Contact, ContactStatus, RMTask
from tests.clients.test_scoring_browser import log_in
from tests.factories import ClientFactory, ProductFactory

from .conftest import static_segment


@pytest.fixture
def world(transactional_db, rm_a, ops_user, compliance_user):
    ProductFactory(product_code="BOND01", name="稳健债券1号", risk_level="R2")
    clients = [ClientFactory(client_no=f"W{i:05d}", rm=rm_a, branch=rm_a.branch,
                             consent_phone=True) for i in range(30)]
    clients.append(ClientFactory(client_no="W99999", rm=rm_a, consent_phone=False))
    static_segment("browser_list", clients)
    return clients


def log_out(page) -> None:
    page.locator("form[action$='/logout/'] button").click()
    page.wait_for_url("**/login/**")


@pytest.mark.browser
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_design_approve_launch_call_and_read_the_results(page, live_server, world, language):
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, live_server, "ops", language)
    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("#code", "browser-made")
    page.fill("#name", "浏览器活动")
    page.select_option("#include", ["browser_list"])
    page.select_option("#products", ["BOND01"])
    page.fill("#holdout_pct", "20")
    page.select_option("#step-0-channel", "phone")
    page.fill("#step-0-v0-code", "A")
    page.fill("#step-0-v0-share", "50")
    page.fill("#step-0-v0-subject", "问候")
    page.fill("#step-0-v0-body", "{name}您好，我是{rm_name}。")
    page.fill("#step-0-v1-code", "B")
    page.fill("#step-0-v1-share", "50")
    page.fill("#step-0-v1-subject", "推荐")
    page.fill("#step-0-v1-body", "{name}您好，{product_name}适合您。")
    page.locator("#step-0-v1-body").dispatch_event("change")
    page.wait_for_selector("#preview-eligible")
    assert page.inner_text("#preview-audience") == "31"
    assert page.inner_text("#preview-eligible") == "30"
    assert page.locator("#preview-reasons [data-reason='no_consent']").count() == 1
    page.click("#save-campaign")
    page.wait_for_url("**/campaigns/browser-made/")
    page.click("#submit-campaign")
    page.wait_for_selector(".campaign-status[data-status='submitted']")
    log_out(page)

    log_in(page, live_server, "compliance", language)
    page.goto(f"{live_server.url}/campaigns/browser-made/")
    assert "稳健债券1号适合您" in page.inner_text("#samples")
    page.click("#approve-campaign")
    page.wait_for_selector(".campaign-status[data-status='approved']")
    log_out(page)

    log_in(page, live_server, "ops", language)
    page.goto(f"{live_server.url}/campaigns/browser-made/")
    page.click("#launch-campaign")
    page.wait_for_selector("[data-arm='control']")
    campaign = Campaign.objects.get(code="browser-made")
    assert campaign.status == "running"
    assert CampaignMember.objects.filter(campaign=campaign, exclusion_reason="").count() == 30
    campaign_steps_run(today=campaign.launch_day)
    log_out(page)

    log_in(page, live_server, "rm_a", language)
    page.goto(f"{live_server.url}/tasks/")
    row = page.locator("tr[data-task]").first
    assert "您好" in row.inner_text()
    task_id = int(row.get_attribute("data-task"))
    row.locator("select[name='outcome']").select_option("interested")
    row.locator("[data-outcome-save]").click()
    # an outcome other than "no answer" closes the call: it leaves the open list
    page.wait_for_selector(f"tr[data-task='{task_id}']", state="detached")
    task = RMTask.objects.get(pk=task_id)
    assert (task.outcome, task.status) == ("interested", "done")
    assert Contact.objects.get(pk=int(task.origin_id)).status == ContactStatus.RESPONDED
    log_out(page)

    log_in(page, live_server, "ops", language)
    page.goto(f"{live_server.url}/campaigns/browser-made/results/")
    page.wait_for_selector("#funnel-chart canvas")
    page.wait_for_selector("#uplift-chart canvas")
    assert page.locator("#results-table tr[data-arm]").count() == 3
    with page.expect_download() as download:
        page.click("#export-xlsx")
    assert download.value.suggested_filename.endswith(".xlsx")
