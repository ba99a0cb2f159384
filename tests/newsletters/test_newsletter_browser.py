"""The newsletter journey in a real browser, in both languages: ops compose an edition and
preview it as a client of the audience, submit it; compliance approves; ops send it (eager
Celery, the locmem mail backend); the client follows the signed feedback link in the message,
rates it 4 and comments; the client's RM finds the comment as a task on /tasks/ and on the 360."""

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail

from newsletters import services
from newsletters.models import Edition, EditionStatus, Feedback
from newsletters.rendering import _salutation
from segments.models import Segment, SegmentMembership
from tests.clients.test_scoring_browser import log_in
from tests.factories import ClientFactory, HoldingFactory, ProductFactory

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
COMMENT = "债券部分讲得很清楚，想约时间聊聊配置。"


@pytest.fixture
def audience(transactional_db, rm_a, ops_user, compliance_user):
    segment = Segment.objects.filter(code="high_net_worth").first() or Segment.objects.create(
        code="high_net_worth", kind="persona", name_zh="高净值", name_en="High-net-worth")
    bond = ProductFactory(product_code="P20001", name="稳健债券1号", risk_level="R2",
                          product_type="fixed_income")
    ProductFactory(product_code="P20002", name="成长股票基金", risk_level="R5",
                   product_type="fund")
    client = ClientFactory(client_no="H0000001", name="钱多多", rm=rm_a, branch=rm_a.branch,
                           risk_level="C3", email="qian@example.com", consent_email=True)
    HoldingFactory(client=client, product=bond, market_value=Decimal("880000"))
    SegmentMembership.objects.create(segment=segment, client=client)
    publication = services.publication_create(
        actor=ops_user, name="HNW Weekly Insight", slug="hnw-weekly", audience=segment,
        from_name="研究所", from_email="research@example.com")
    return {"client": client, "publication": publication}


def log_out(page) -> None:
    page.locator("form[action$='/logout/'] button").click()
    page.wait_for_url("**/login/**")


def shot(page, name: str, language: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"newsletter_{name}_{language}.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_compose_preview_approve_send_and_the_rm_sees_the_clients_comment(
        page, live_server, audience, language):
    client = audience["client"]
    page.on("dialog", lambda dialog: dialog.accept())
    mail.outbox = []

    # Ops compose: subject, an editorial, a holdings section with a desk note, a pick.
    log_in(page, live_server, "ops", language)
    page.locator("a.nav-link[href='/newsletters/']").click()
    page.locator("tr[data-publication='hnw-weekly'] a").first.click()
    with page.expect_navigation():
        page.click("#edition-new")
    page.fill("#id_subject", "高净值周报 · 第 1 期")
    page.fill("#id_preheader", "债市与配置")
    page.fill("#s-0-body", "本周债市**震荡**，久期宜适中。")
    with page.expect_navigation():
        page.click("button[data-add='holdings']")
    page.fill("[name='s-1-products-0-code']", "P20001")
    page.fill("[name='s-1-products-0-note']", "票息稳定，继续持有。")
    with page.expect_navigation():
        page.click("button[data-add='picks']")
    page.select_option("[name='s-2-picks-0-code']", "P20001")
    page.select_option("[name='s-2-picks-1-code']", "P20002")  # above C3: never shown
    page.fill("[name='s-2-picks-0-note']", "适合稳健型配置")
    with page.expect_navigation(url="**/edit/"):
        page.click("#edition-save")
    assert page.locator("#compliance-check").get_attribute("data-issues") == "0"
    assert [s.get_attribute("data-kind") for s in page.locator(".edition-section").all()] == [
        "editorial", "holdings", "picks"]
    shot(page, "editor", language)
    edition = Edition.objects.get(publication=audience["publication"])

    # Preview as the client, picked by name.
    with page.expect_navigation(url="**/preview/"):
        page.click("#preview-link")
    page.wait_for_load_state("load")  # htmx has wired the picker
    page.fill("#picker-q", "钱")
    page.locator(f"#picker-results a[data-client='{client.client_no}']").click()
    page.wait_for_url(f"**/preview/?client={client.client_no}")
    assert client.name in page.locator("#preview-client").inner_text()
    frame = page.frame_locator("#preview-frame")
    body = frame.locator("body")
    body.get_by_text("稳健债券1号").first.wait_for()
    text = body.inner_text()
    assert _salutation(client) in text and "880,000" in text
    assert "成长股票基金" not in text
    page.click("#width-phone")
    assert page.locator("#preview-frame").evaluate("f => f.getBoundingClientRect().width") <= 376
    shot(page, "preview", language)
    page.click("#tab-text")
    assert "稳健债券1号" in page.locator("#preview-text").inner_text()

    # Submit.
    page.goto(f"{live_server.url}/newsletters/editions/{edition.pk}/")
    with page.expect_navigation():
        page.click("#edition-submit")
    edition.refresh_from_db()
    assert edition.status == EditionStatus.SUBMITTED
    log_out(page)

    # Compliance approves from the queue.
    log_in(page, live_server, "compliance", language)
    page.goto(f"{live_server.url}/newsletters/approvals/")
    with page.expect_navigation():
        page.locator(f"#approval-queue tr[data-edition='{edition.pk}'] a").click()
    page.frame_locator("#preview-frame").locator("body").get_by_text("稳健债券1号").first \
        .wait_for()
    shot(page, "approval", language)
    with page.expect_navigation():
        page.click("#approve-button")
    edition.refresh_from_db()
    assert edition.status == EditionStatus.APPROVED
    assert page.locator("#timeline li[data-to='approved']").count() == 1
    log_out(page)

    # Ops send now; the eager dispatcher sends within the request.
    log_in(page, live_server, "ops", language)
    page.goto(f"{live_server.url}/newsletters/editions/{edition.pk}/")
    with page.expect_navigation(url="**/stats/"):
        page.click("#send-now-button")
    sent = [m for m in mail.outbox if client.email in m.to]
    assert len(sent) == 1
    page.reload()
    assert page.locator("[data-stat='sent'] .stat-value").inner_text() == "1"
    page.locator("#funnel-chart svg").wait_for()
    log_out(page)

    # The client follows the signed feedback link, without logging in.
    message = sent[0]
    bodies = [message.body] + [content for content, _type in getattr(message, "alternatives",
                                                                      [])]
    match = next(m for m in (re.search(r"/n/f/[^/\s\"'<>]+/", b) for b in bodies) if m)
    page.goto(f"{live_server.url}{match.group(0)}?rating=4")
    page.fill("#comment", COMMENT)
    with page.expect_navigation():
        page.locator("button.btn[type='submit']").click()
    feedback = Feedback.objects.filter(delivery__in=edition.deliveries)
    assert sorted(feedback.values_list("rating", flat=True).exclude(rating=None)) == [4]
    assert feedback.filter(comment=COMMENT).exists()

    # Ops see it on the statistics page.
    log_in(page, live_server, "ops", language)
    page.goto(f"{live_server.url}/newsletters/editions/{edition.pk}/stats/")
    assert COMMENT in page.locator("#latest-comments").inner_text()
    assert page.locator("[data-stat='rated'] .stat-value").inner_text() == "1"
    page.locator("#rating-chart svg").wait_for()
    shot(page, "stats", language)
    log_out(page)

    # The RM finds it as a task, with the badge, and on the client 360.
    log_in(page, live_server, "rm_a", language)
    page.locator("#task-count").wait_for(state="attached")
    assert page.locator("#task-count").inner_text() == "1"
    page.click("#nav-tasks")
    page.wait_for_url("**/tasks/")
    assert COMMENT in page.locator("#tasks").inner_text()
    shot(page, "tasks", language)
    page.locator("#tasks a", has_text=client.name).click()
    page.wait_for_url(f"**/clients/{client.client_no}/")
    card = page.locator("#follow-ups")
    assert COMMENT in card.inner_text()
    with page.expect_navigation():
        card.locator("button[data-done]").click()
    assert COMMENT not in page.locator("#follow-ups").inner_text()
