"""The segments journey in a real browser, in both languages (issue 4's Done criterion):
ops build "clients aged 60–69 with a risk level of C2 or lower who hold fixed income but bought
nothing in 90 days" by clicking, watch the live count while editing, save, refresh and export
it; then an RM opens a client and reads the persona with its playbook."""

import csv
import importlib
import io
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from playwright.sync_api import expect

from segments.models import Segment
from tests.clients.test_scoring_browser import log_in
from tests.segments.test_segment_pages import example_book, refresh  # noqa: F401 - a fixture

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
LABELS = {
    "zh-hans": {"segments": "客群", "persona": "初老银发", "traits": "高风险持仓少",
                "rule": "年龄 介于 60 和 69 之间 且 风险等级 属于 C1 保守型、C2 谨慎型"},
    "en": {"segments": "Segments", "persona": "Young-old silver-haired",
           "traits": "Few high-risk holdings",
           "rule": "Age between 60 and 69 AND Risk level is one of C1 conservative, C2 cautious"},
}


@pytest.fixture
def seeded(transactional_db):
    """A transactional test's flush removes the seeded segments; seed them again."""
    importlib.import_module("segments.migrations.0002_seed_segments").seed(apps, None)


@pytest.fixture
def book(seeded, ops_user, example_book):  # noqa: F811 - the imported fixture
    refresh(*Segment.objects.filter(kind="persona").values_list("code", flat=True))
    return example_book


def condition(page, path: str, *, field: str, op: str):
    row = page.locator(f'.rule-condition[data-path="{path}"]')
    row.locator('[data-role="field"]').select_option(field)
    row.locator('[data-role="op"]').select_option(op)
    return row


def count_is(page, n: int) -> None:
    expect(page.locator("#preview-count")).to_have_attribute("data-count", str(n))


@pytest.mark.browser
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_ops_build_refresh_and_export_a_segment_and_an_rm_reads_the_persona_playbook(
        page, live_server, book, rm_a, language):
    labels = LABELS[language]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, live_server, "ops", language)
    page.get_by_role("link", name=labels["segments"], exact=True).click()
    page.wait_for_url("**/segments/")
    with page.expect_navigation():
        page.click("#new-segment")
    page.fill("#id_code", "silver_fixed_income")
    page.fill("#id_name_zh", "银发固收沉睡客户")
    page.fill("#id_name_en", "Silver fixed-income sleepers")
    root = page.locator(".rule-root")

    # 1. Age between 60 and 69: six of the seven clients are in their sixties.
    root.locator(':scope > .rule-group-head [data-action="add-cond"]').click()
    row = condition(page, "/all/0", field="age", op="between")
    row.locator('[data-role="value-low"]').press_sequentially("60")
    high = row.locator('[data-role="value-high"]')
    high.press_sequentially("200")  # a typo: the engine's message appears under this condition
    error = row.locator('.rule-error[data-error-node="/all/0/value/1"]')
    expect(error).to_contain_text("150")
    expect(high).to_have_class("form-control form-control-sm is-invalid")
    high.fill("")
    high.press_sequentially("69")
    count_is(page, 6)
    expect(error).to_have_count(0)

    # 2. Risk level C1 or C2 (a multi-select): five.
    root.locator(':scope > .rule-group-head [data-action="add-cond"]').click()
    row = condition(page, "/all/1", field="risk_level", op="in")
    row.locator('[data-role="value-multi"]').select_option(["C1", "C2"])
    count_is(page, 5)

    # 3. Holds fixed income: four.
    root.locator(':scope > .rule-group-head [data-action="add-cond"]').click()
    row = condition(page, "/all/2", field="holds_product_type", op="eq")
    row.locator('[data-role="value"]').select_option("fixed_income")
    count_is(page, 4)

    # 4. Bought nothing in 90 days: (days since the last purchase > 90) OR (never bought).
    root.locator(':scope > .rule-group-head [data-action="add-group"]').click()
    group = page.locator('.rule-group[data-path="/all/3"]')
    expect(group.locator('[data-role="group-op"]')).to_have_value("any")
    row = condition(page, "/all/3/any/0", field="days_since_last_purchase", op="gt")
    row.locator('[data-role="value"]').press_sequentially("90")
    group.locator(':scope > .rule-group-head [data-action="add-cond"]').click()
    condition(page, "/all/3/any/1", field="days_since_last_purchase", op="is_null")
    count_is(page, 3)
    sample = page.locator("#preview-sample").inner_text()
    assert all(no in sample for no in ("S0000001", "S0000002", "S0000003"))
    page.screenshot(path=str(SCREENSHOTS / f"segment_builder_{language}.png"), full_page=True)

    with page.expect_navigation(url="**/segments/silver_fixed_income/"):
        page.click("#segment-save")
    assert labels["rule"] in page.locator("#rule-text").inner_text()
    segment = Segment.objects.get(code="silver_fixed_income")
    assert segment.rule_version == 1 and segment.rule["all"][3]["any"][1]["op"] == "is_null"

    page.click(".refresh-button")
    status = page.locator("#refresh-silver_fixed_income")
    expect(status).to_have_attribute("data-status", "succeeded")
    expect(status.locator(".progress-bar")).to_have_text("100%")
    page.reload()
    expect(page.locator("#segment-size")).to_have_attribute("data-size", "3")
    page.locator("#segment-history-chart svg").wait_for()
    page.screenshot(path=str(SCREENSHOTS / f"segment_page_{language}.png"), full_page=True)

    with page.expect_download() as download_info:
        page.click("#export-csv")
    data = Path(download_info.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert sorted(r[0] for r in rows[1:]) == ["S0000001", "S0000002", "S0000003"]

    page.goto(f"{live_server.url}/segments/personas/")
    page.locator("#persona-overlap-chart svg").wait_for()
    assert page.locator('[data-persona="silver_haired"] [data-figure="size"]').inner_text() == "6"
    page.screenshot(path=str(SCREENSHOTS / f"persona_overview_{language}.png"), full_page=True)

    page.context.clear_cookies()
    log_in(page, live_server, "rm_a", language)
    page.goto(f"{live_server.url}/clients/S0000001/")
    card = page.locator("#segments")
    assert labels["persona"] in card.inner_text()
    playbook = card.locator('details[data-persona="silver_haired"]')
    expect(playbook.locator('[data-playbook="traits"]')).to_contain_text(labels["traits"])
    assert card.locator('a[data-code="silver_fixed_income"]').count() == 1
    card.screenshot(path=str(SCREENSHOTS / f"client_360_personas_{language}.png"))
