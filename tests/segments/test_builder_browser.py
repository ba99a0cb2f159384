"""The segment builder as a new user meets it (issue 10): a blank condition is incomplete, not
an error; a pasted value updates the live count; typing logs nothing to the console."""

import pytest
from playwright.sync_api import expect

from tests.clients.test_scoring_browser import log_in
from tests.segments.test_segment_pages import example_book  # noqa: F401 - a fixture


@pytest.mark.browser
def test_a_new_condition_shows_no_error_and_a_pasted_age_updates_the_live_count(
        page, live_server, transactional_db, ops_user, example_book):  # noqa: F811
    console = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text} {m.location.get('url')}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    log_in(page, live_server, "ops", "en")
    page.goto(f"{live_server.url}/segments/new/")
    root = page.locator(".rule-root")
    expect(page.locator("#preview-incomplete")).to_be_visible()

    root.locator(':scope > .rule-group-head [data-action="add-cond"]').click()
    row = page.locator('.rule-condition[data-path="/all/0"]')
    row.locator('[data-role="field"]').select_option("age")
    row.locator('[data-role="op"]').select_option("between")
    expect(row).to_have_class("rule-condition rule-incomplete")
    expect(row.locator(".rule-incomplete-note")).to_be_visible()
    expect(page.locator("#preview-incomplete")).to_be_visible()
    expect(page.locator(".rule-error, #preview-error")).to_have_count(0)

    # A paste fires `input` but no key event: the count must follow it.
    row.locator('[data-role="value-low"]').fill("60")
    row.locator('[data-role="value-high"]').fill("69")
    expect(page.locator("#preview-count")).to_have_attribute("data-count", "6")

    # An added blank condition is left out of the count, and still shows no error.
    root.locator(':scope > .rule-group-head [data-action="add-cond"]').click()
    page.locator('.rule-condition[data-path="/all/1"] [data-role="field"]').select_option("aum")
    expect(page.locator("#preview-incomplete")).to_contain_text("1")
    expect(page.locator("#preview-count")).to_have_attribute("data-count", "6")
    expect(page.locator(".rule-error, #preview-error")).to_have_count(0)

    # A wrong value is an error named by the field's label, with a readable bound.
    value = page.locator('.rule-condition[data-path="/all/1"] [data-role="value"]')
    value.press_sequentially("2000000000000000")
    error = page.locator('.rule-error[data-error-node="/all/1/value"]')
    expect(error).to_contain_text("AUM (CNY) must be at most 1,000,000,000,000,000")
    value.fill("")
    row.locator('[data-role="value-high"]').press_sequentially("0")  # 690: out of range
    expect(page.locator('.rule-error[data-error-node="/all/0/value/1"]')).to_contain_text(
        "Age must be at most 150")
    # (Chromium asks every page for /favicon.ico, which the product does not have.)
    assert [m for m in console if not m.startswith(("debug", "info", "log"))
            and not m.endswith("/favicon.ico")] == []


def test_rule_messages_name_the_field_by_its_label_in_both_languages():
    from django.utils import translation

    from segments.rules import RuleError, rule_validate

    rule = {"all": [{"field": "age", "op": "between", "value": [69, 60]}]}
    for language, label in (("en", "Age"), ("zh-hans", "年龄")):
        with translation.override(language):
            with pytest.raises(RuleError) as caught:
                rule_validate(rule)
        assert caught.value.message.startswith(label) and "age" not in caught.value.message
