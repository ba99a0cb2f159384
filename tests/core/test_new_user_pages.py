"""What a new user saw (issue 10): the test-send button, an empty ID number, a static list's
dates."""

import re

from segments.models import Segment
from tests.newsletters.test_newsletter_pages import (  # noqa: F401 - fixtures
    draft,
    hnw_client,
    hnw_segment,
    products,
    publication,
)


def test_send_a_test_is_disabled_with_a_reason_for_a_user_without_an_email(
        logged_in, ops_user, draft, hnw_client):  # noqa: F811
    ops_user.email = ""
    ops_user.save(update_fields=["email"])
    page = logged_in(ops_user).get(
        f"/newsletters/editions/{draft.pk}/preview/?client={hnw_client.client_no}").content.decode()
    button = re.search(r'<button[^>]*id="send-test-button"[^>]*>', page).group(0)
    assert "disabled" in button and 'aria-describedby="send-test-help"' in button
    assert "没有电子邮箱地址" in page


def test_send_a_test_is_enabled_for_a_user_with_an_email(
        logged_in, ops_user, draft, hnw_client):  # noqa: F811
    ops_user.email = "ops@example.com"
    ops_user.save(update_fields=["email"])
    page = logged_in(ops_user).get(
        f"/newsletters/editions/{draft.pk}/preview/?client={hnw_client.client_no}").content.decode()
    assert "disabled" not in re.search(r'<button[^>]*id="send-test-button"[^>]*>', page).group(0)


def test_an_empty_id_number_shows_a_dash_and_keeps_its_row(logged_in, rm_a, client_of_a):
    client_of_a.id_number = ""
    client_of_a.save(update_fields=["id_number"])
    page = logged_in(rm_a).get(f"/clients/{client_of_a.client_no}/").content.decode()
    assert re.search(r'id="pii-id">—</dd>', page)


def test_a_static_list_tells_when_it_was_saved_and_never_says_it_was_not_refreshed(
        logged_in, ops_user, client_of_a):
    http = logged_in(ops_user)
    http.post("/segments/new/static/", {"code": "vip_dinner", "name_en": "VIP dinner",
                                        "client_nos": client_of_a.client_no})
    segment = Segment.objects.get(code="vip_dinner")
    assert segment.refreshed_at is not None
    page = http.get("/segments/vip_dinner/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    saved = re.search(r'id="segment-refreshed">([^<]*)<', page).group(1)
    assert saved.startswith("List saved: ") and "Last refresh" not in page
    assert "No refresh yet." not in page


def test_compliance_reads_notes_by_product_name_and_risk_and_by_type_label(
        logged_in, compliance_user, draft, products):  # noqa: F811
    holdings = draft.sections.get(kind="holdings")
    holdings.data["notes_by_type"] = {"stock": "波动较大。"}
    holdings.save(update_fields=["data"])
    picks = draft.sections.get(kind="picks")
    picks.data["notes"] = {"P10002": "适合长期持有。"}
    picks.save(update_fields=["data"])
    page = logged_in(compliance_user).get(f"/newsletters/editions/{draft.pk}/",
                                          HTTP_ACCEPT_LANGUAGE="en").content.decode()
    product_note = re.search(r'<li data-code="P10001">(.*?)</li>', page, re.S).group(1)
    assert "稳健债券1号" in product_note and "R2" in product_note and "久期适中。" in product_note
    assert re.search(r"<li data-type-note>Stock: 波动较大。</li>", page)
    pick_note = re.search(r'class="small pick-note" data-code="P10002">(.*?)</div>', page,
                          re.S).group(1)
    assert "成长股票基金" in pick_note and "适合长期持有。" in pick_note
