"""An RM's journey in a real browser, in both languages: log in, find a client by phone tail,
open the 360 page, log a call and see it listed."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from tests.conftest import PASSWORD
from tests.factories import ClientFactory, HoldingFactory, ProductFactory, TransactionFactory

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"

LABELS = {
    "zh-hans": {"clients": "我的客户", "log": "记录通话、面谈或备注", "holdings": "持仓",
                "saved": "服务记录已保存。"},
    "en": {"clients": "My clients", "log": "Log a call, meeting or note", "holdings": "Holdings",
           "saved": "The interaction was logged."},
}


@pytest.fixture
def book_of_a(rm_a, client_of_a):
    """client_of_a with holdings and purchases, plus a second client the search must skip."""
    client_of_a.aum = Decimal("1250000")
    client_of_a.risk_expires_on = timezone.localdate() + dt.timedelta(days=12)
    client_of_a.last_purchase_on = timezone.localdate() - dt.timedelta(days=3)
    client_of_a.id_number = "310101198005170021"
    client_of_a.save()
    products = [
        ProductFactory(product_code="F100", name="沪深300指数基金", product_type="fund",
                       risk_level="R3"),
        ProductFactory(product_code="B100", name="稳健债券1号", product_type="fixed_income"),
        ProductFactory(product_code="M100", name="现金宝货币基金", product_type="money_market",
                       risk_level="R1"),
    ]
    for product, value in zip(products, ("520000", "480000", "250000"), strict=True):
        HoldingFactory(client=client_of_a, product=product, as_of=dt.date(2026, 10, 31),
                       market_value=Decimal(value))
        TransactionFactory(client=client_of_a, product=product, amount=Decimal(value),
                           revenue=Decimal("1200"))
    ClientFactory(client_no="A0000002", name="李四", rm=rm_a, branch=rm_a.branch,
                  phone="13900001111")
    return client_of_a


@pytest.mark.browser
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_an_rm_finds_a_client_by_phone_tail_and_logs_a_call(page, live_server, transactional_db,
                                                            book_of_a, language):
    labels = LABELS[language]
    page.goto(f"{live_server.url}/accounts/login/")
    other = "en" if language == "zh-hans" else "zh-hans"
    for choice in (other, language):  # switch away and back: both directions work
        with page.expect_navigation():
            page.select_option("#language-select", choice)
        assert page.locator("html").get_attribute("lang") == choice

    page.fill("#id_username", "rm_a")
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{live_server.url}/")  # an RM lands on the day's work
    page.goto(f"{live_server.url}/clients/")
    assert labels["clients"] in page.locator("h1").inner_text()

    page.fill("#id_q", "5678")
    page.wait_for_url("**q=5678**")
    table = page.locator("#client-table")
    table.get_by_text("A0000001").wait_for()
    assert table.get_by_text("李四").count() == 0
    assert "138****5678" in table.inner_text()

    table.get_by_role("link", name="张三").click()
    page.wait_for_url("**/clients/A0000001/")
    assert page.locator("h1").inner_text() == "张三"
    assert "13812345678" in page.locator("#pii-phone").inner_text()  # own RM sees it in full
    assert labels["holdings"] in page.locator("#holdings").inner_text()
    page.locator("#allocation-chart svg").wait_for()  # ECharts rendered the pie

    button = page.locator("#log-interaction")
    assert button.inner_text().strip() == labels["log"]
    page.select_option("#id_kind", "call")
    page.select_option("#id_outcome", "interested")
    note = f"电话回访：对养老规划感兴趣 ({language})"
    page.fill("#id_note", note)
    button.click()
    page.locator("#interaction-list").get_by_text(note).wait_for()
    assert labels["saved"] in page.locator("#interactions").inner_text()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"client_360_{language}.png"), full_page=True)

    page.set_viewport_size({"width": 768, "height": 1000})  # a tablet: the nav collapses
    page.goto(f"{live_server.url}/clients/")
    assert page.locator(".navbar-toggler").is_visible()
    page.screenshot(path=str(SCREENSHOTS / f"client_list_{language}_tablet.png"), full_page=True)
