"""The analytics pages in a real browser: ops read the retention heatmap in Chinese, narrow it to
a branch, click a funnel bar to list the clients behind it, save them as a static segment and
download a table; an RM reads the overview in English. No page logs an error."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from analytics.models import AnalyticsRefresh, SegmentMember
from segments.models import Segment, SegmentKind
from segments.services import segment_create
from tests.analytics.test_pages import book, opened, rolled_up  # noqa: F401 (fixtures)
from tests.clients.test_scoring_browser import log_in

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PAYLOAD = '<img src=x onerror="window.__xss=1">'

# The pixel of a chart's data point (category index, value), from ECharts itself.
POINT = """([id, x, y]) => {
  const chart = window.CRM.analyticsCharts[id];
  const at = chart.convertToPixel({seriesIndex: 0}, [x, y]);
  const box = document.getElementById(id).getBoundingClientRect();
  return [box.left + at[0], box.top + at[1]];
}"""


def watch(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    return problems


@pytest.mark.browser
def test_ops_filter_drill_down_save_and_download_in_chinese(
        page, live_server, transactional_db, ops_user, rm_a, rm_b, rolled_up, opened):  # noqa: F811
    problems = watch(page)
    log_in(page, live_server, "ops", "zh-hans")
    page.locator("#nav-analytics").click()
    expect(page.locator("#analytics-nav .active")).to_have_attribute("data-page", "overview")
    expect(page.locator("#kpi-chart svg")).to_have_count(1)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "analytics_overview.png"), full_page=True)

    page.locator('#analytics-nav [data-page="retention"]').click()
    expect(page.locator("#analytics-nav .active")).to_have_attribute("data-page", "retention")
    expect(page.locator("#retention-chart svg")).to_have_count(1)
    page.select_option("#filter-branch", "SH01")
    page.locator("#filter-apply").click()
    page.wait_for_url("**/analytics/retention/?*branch=SH01*")
    cells = page.locator('[data-table="retention"] tbody tr').first.locator("td")
    expect(cells.nth(0)).to_have_text(f"{opened:%Y-%m}")
    expect(cells.nth(1)).to_have_text("3")
    page.screenshot(path=str(SCREENSHOTS / "analytics_retention.png"), full_page=True)

    page.locator('#analytics-nav [data-page="funnel"]').click()  # the tabs keep the filters
    page.wait_for_url("**/analytics/funnel/?*branch=SH01*")
    expect(page.locator("#funnel-chart svg")).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / "analytics_funnel.png"), full_page=True)
    page.locator("#funnel-chart").scroll_into_view_if_needed()
    x, y = page.evaluate(POINT, ["funnel-chart", 0, 1])
    page.mouse.click(x, y)
    page.wait_for_url("**/analytics/drill/?*metric=funnel*")
    numbers = page.locator("#client-table td.font-monospace a")
    expect(numbers).to_have_text(["AN000001", "AN000002", "AN000003"])
    expect(page.locator("#client-table")).to_contain_text("138****0001")
    page.screenshot(path=str(SCREENSHOTS / "analytics_drill.png"), full_page=True)

    page.fill("#drill-save-name", "陆家嘴新开户")
    page.locator("#drill-save").click()
    page.wait_for_url("**/segments/drill-*/")
    segment = Segment.objects.get(name_zh="陆家嘴新开户")
    assert segment.kind == SegmentKind.STATIC
    assert sorted(segment.memberships.values_list("client__client_no", flat=True)) == [
        "AN000001", "AN000002", "AN000003"]
    # Saving it queued a refresh (eager here) that put the list into the segment figures.
    assert SegmentMember.objects.filter(segment_id=segment.pk).count() == 3

    page.goto(f"{live_server.url}/analytics/funnel/?branch=SH01")
    with page.expect_download() as download:
        page.locator('#table-funnel [data-export="csv"]').click()
    assert download.value.suggested_filename.startswith("analytics-funnel-")
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert [line.split(",")[1] for line in lines[1:]] == ["3", "2", "2", "1"]

    with page.expect_response("**/analytics/refresh/") as answer:
        page.locator("#refresh-now").click()  # htmx posts it; the eager task runs it at once
    assert answer.value.status == 200
    expect(page.locator('#analytics-freshness[data-running="false"]')).to_be_visible()
    expect(page.locator("#refresh-error")).to_have_count(0)
    # the first build, the one the saved list queued, and this one
    assert list(AnalyticsRefresh.objects.values_list("status", flat=True)) == [
        "succeeded", "succeeded", "succeeded"]
    assert problems == [], problems


@pytest.mark.browser
def test_an_rm_reads_the_overview_in_english_and_switches_the_figure(
        page, live_server, transactional_db, rm_a, rm_b, rolled_up):  # noqa: F811
    problems = watch(page)
    log_in(page, live_server, "rm_a", "en")
    page.goto(f"{live_server.url}/analytics/")
    expect(page.locator("#analytics-title")).to_have_text("Overview")
    expect(page.locator("#analytics-scope")).to_have_text("Figures of your book")
    expect(page.locator("#filter-branch")).to_have_count(0)
    expect(page.locator('[data-kpi="new_accounts"] [data-value]')).to_have_text("3")
    page.select_option("#kpi-metric", "new_accounts")
    expect(page.locator("#kpi-chart svg")).to_have_count(1)
    for chart in ("kpi-chart", "tier-chart", "segment-chart"):
        assert page.evaluate(f"!!window.CRM.analyticsCharts['{chart}']"), chart
    page.screenshot(path=str(SCREENSHOTS / "analytics_overview_en.png"), full_page=True)

    # A segment's name is data: in the chart and its tooltip it stays text.
    segment_create(code="xss-probe", kind=SegmentKind.STATIC, client_nos=["AN000001"],
                   name_en=PAYLOAD, name_zh=PAYLOAD)
    page.goto(f"{live_server.url}/analytics/?compare=xss-probe")
    page.locator("#segment-chart").scroll_into_view_if_needed()
    x, y = page.evaluate(POINT, ["segment-chart", 0, 0.5])
    page.mouse.move(x - 4, y - 4)
    page.mouse.move(x, y)
    tip = page.locator("#segment-chart .chart-tip-title")
    expect(tip).to_have_text(PAYLOAD)  # the tooltip shows the name as text
    assert page.evaluate("window.__xss") is None
    assert problems == [], problems


# The pixel at the middle of a bar (series s, category i), from ECharts' own layout.
BAR = """([id, s, i]) => {
  const chart = window.CRM.analyticsCharts[id];
  const bar = chart.getModel().getSeriesByIndex(s).getData().getItemLayout(i);
  const box = document.getElementById(id).getBoundingClientRect();
  return [box.left + bar.x + bar.width / 2, box.top + bar.y + bar.height / 2];
}"""


@pytest.mark.browser
def test_ops_click_a_channel_bar_and_a_campaign_bar_to_list_their_clients(
        page, live_server, transactional_db, ops_user, rm_a, rm_b, book, today):  # noqa: F811
    """SMS to AN000001 (delivered), AN000002 (failed) and BN000001 (responded), all from one
    campaign whose members are those three and AN000003 in the holdout: the SMS "attempted" bar
    holds 3 clients, the campaign's "contacted" bar 2 (a failed SMS did not reach anyone)."""
    from django.utils import timezone

    from analytics.services import refresh_run, refresh_start
    from outreach.models import Channel
    from tests.analytics.conftest import launched_campaign

    launched_at = timezone.now() - timedelta(days=5)
    launched_campaign(code="autumn-sms", author=ops_user, launched_at=launched_at,
                      arms={book["a1"]: "A", book["a2"]: "A", book["b1"]: "B",
                            book["a3"]: "control"},
                      contacts={book["a1"]: ("sms", "delivered"), book["a2"]: ("sms", "failed"),
                                book["b1"]: ("sms", "responded")})
    refresh_run(refresh_id=refresh_start(full=True, trigger="test", queue=False).pk)
    problems = watch(page)
    log_in(page, live_server, "ops", "en")

    page.goto(f"{live_server.url}/analytics/channels/")
    expect(page.locator("#channel-chart svg")).to_have_count(1)
    page.locator("#channel-chart").scroll_into_view_if_needed()
    x, y = page.evaluate(BAR, ["channel-chart", 0, list(Channel.values).index("sms")])
    page.mouse.click(x, y)
    page.wait_for_url("**/analytics/drill/?*metric=channel*")
    expect(page.locator("#drill-title")).to_have_text(
        "Reach and response by channel · SMS · Attempted")
    expect(page.locator("#result-count")).to_contain_text("3 clients")
    expect(page.locator("#client-table td.font-monospace a")).to_have_text(
        ["AN000001", "AN000002", "BN000001"])

    page.goto(f"{live_server.url}/analytics/campaigns/")
    expect(page.locator("#campaign-count-chart svg")).to_have_count(1)
    page.locator("#campaign-count-chart").scroll_into_view_if_needed()
    x, y = page.evaluate(BAR, ["campaign-count-chart", 1, 0])  # contacted, the one campaign
    page.mouse.click(x, y)
    page.wait_for_url("**/analytics/drill/?*metric=campaign*")
    expect(page.locator("#drill-title")).to_have_text("Campaign results · autumn-sms · Contacted")
    expect(page.locator("#result-count")).to_contain_text("2 clients")
    expect(page.locator("#client-table td.font-monospace a")).to_have_text(
        ["AN000001", "BN000001"])
    expect(page.locator("#client-table")).to_contain_text("138****0001")
    page.screenshot(path=str(SCREENSHOTS / "analytics_drill_campaign.png"), full_page=True)
    assert problems == [], problems
