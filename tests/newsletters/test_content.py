"""Personalisation, rendering, compliance phrases and signed links of an edition."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from newsletters import links
from newsletters.compliance import edition_compliance_issues, forbidden_phrases_found, highlight
from newsletters.models import Delivery
from newsletters.rendering import (
    TEMPLATE_VERSION,
    build_message,
    delivery_context,
    render_edition,
    render_preview,
)
from newsletters.services import forbidden_phrase_add
from outreach.models import ForbiddenPhrase
from tests.factories import ClientFactory, ProductFactory
from tests.newsletters import hold, make_edition, make_publication, standard_sections


@pytest.fixture
def products(db):
    return {
        "stock": ProductFactory(product_code="S600519", name="贵州茅台", product_type="stock",
                                risk_level="R4"),
        "bond": ProductFactory(product_code="B001", name="稳健债券1号",
                               product_type="fixed_income", risk_level="R2"),
        "mmf": ProductFactory(product_code="M001", name="现金宝", product_type="money_market",
                              risk_level="R1"),
        "fund": ProductFactory(product_code="F001", name="成长混合", product_type="fund",
                               risk_level="R3"),
        "private": ProductFactory(product_code="PF01", name="量化私募", product_type="private_fund",
                                  risk_level="R5"),
    }


@pytest.fixture
def reader(rm_a, products):
    """A C3 client of RM A with five positions (largest first: stock, fund, bond, mmf, private)."""
    client = ClientFactory(client_no="HNW0001", name="张三", gender="M", rm=rm_a,
                           branch=rm_a.branch, risk_level="C3", email="zhang@client.example")
    for key, value in [("stock", "500000"), ("fund", "300000"), ("bond", "150000"),
                       ("mmf", "40000"), ("private", "10000")]:
        hold(client, products[key], value)
    hold(client, products["bond"], "999999", as_of=dt.date(2026, 9, 30))  # an older day
    return client


@pytest.fixture
def edition(ops_user, products):
    sections = standard_sections(
        pick_codes=["M001", "B001", "F001", "S600519", "PF01"], top_n=3,
        notes_by_product={"S600519": "Liquor demand *steady*."},
        notes_by_type={"fund": "Equity funds: stay diversified.",
                       "fixed_income": "Bonds: duration short."})
    return make_edition(author=ops_user, sections=sections)


def a_delivery(edition, client, n=1):
    delivery = Delivery.objects.create(
        source="newsletter", source_id=edition.id, client=client, to_email=client.email,
        message_id=f"<nl-{edition.pk}-{client.pk}-{n}@broker.example>",
        token=f"tok{edition.pk}x{client.pk}x{n}abcdef")
    delivery.edition = edition
    return delivery


# personalisation ------------------------------------------------------------------------

def test_the_holdings_part_shows_the_largest_positions_with_the_desks_notes(edition, reader):
    context = delivery_context(edition=edition, client=reader)
    assert [p["product_code"] for p in context["positions"]] == ["S600519", "F001", "B001"]
    notes = {p["product_code"]: p["note"] for p in context["positions"]}
    assert notes["S600519"] == "Liquor demand *steady*."  # by product beats by type
    assert notes["F001"] == "Equity funds: stay diversified."
    assert notes["B001"] == "Bonds: duration short."
    assert context["positions"][0]["weight"] == 50.0  # 500,000 of 1,000,000
    assert context["holdings_as_of"] == "2026-10-31"
    html = render_preview(edition=edition, client=reader).html
    assert "贵州茅台" in html and "Liquor demand <em>steady</em>." in html
    assert "现金宝" not in html.split("Picks")[0]  # 4th position is beyond top_n=3


def test_picks_above_the_clients_level_are_never_rendered_and_are_recorded(edition, reader):
    context = delivery_context(edition=edition, client=reader)
    assert [p["product_code"] for p in context["picks"]] == ["M001", "B001", "F001"]
    assert context["skipped_picks"] == [
        {"product_code": "S600519", "risk_level": "R4", "reason": "above_risk_level"},
        {"product_code": "PF01", "risk_level": "R5", "reason": "above_risk_level"}]
    rendered = render_edition(edition=edition, context=context)
    picks_part = rendered.html.split("Picks", 1)[1]
    assert "量化私募" not in rendered.html and "量化私募" not in rendered.text
    assert "S600519" not in picks_part and "R4" not in picks_part
    assert "skipped" not in rendered.html and "above_risk_level" not in rendered.html


def test_an_expired_assessment_gets_no_picks_at_all(edition, reader):
    reader.risk_expires_on = timezone.localdate() - dt.timedelta(days=1)
    reader.save()
    context = delivery_context(edition=edition, client=reader)
    assert context["picks"] == []
    assert {s["reason"] for s in context["skipped_picks"]} == {"assessment_expired"}
    assert "现金宝" not in render_edition(edition=edition, context=context).html.split("Picks")[-1]


def test_the_context_is_json_and_carries_the_rm_signature(edition, reader, rm_a):
    import json

    context = delivery_context(edition=edition, client=reader)
    assert json.loads(json.dumps(context)) == context
    assert context["client"]["salutation"] == "张先生"
    assert context["rm"]["name"] == "王经理"
    assert context["rm_note"] == "Call me any time."


def test_an_rm_specific_note_wins_over_the_fallback(ops_user, reader, products):
    sections = [{"kind": "rm_note", "data": {"fallback": "Generic.",
                                             "by_rm": {"rm_a": "Dear friend, see you Friday."}}}]
    edition = make_edition(author=ops_user, sections=sections)
    assert delivery_context(edition=edition, client=reader)["rm_note"] == (
        "Dear friend, see you Friday.")


# the email --------------------------------------------------------------------------------

def test_the_email_has_a_stable_message_id_list_headers_inlined_css_and_a_text_part(
        edition, reader):
    delivery = a_delivery(edition, reader)
    first = render_edition(edition=edition, context=delivery_context(edition=edition,
                                                                     client=reader),
                           delivery=delivery)
    again = render_edition(edition=edition, context=delivery_context(edition=edition,
                                                                     client=reader),
                           delivery=delivery)
    m1 = build_message(delivery=delivery, rendered=first).message()
    m2 = build_message(delivery=delivery, rendered=again).message()
    assert m1["Message-ID"] == m2["Message-ID"] == delivery.message_id
    assert m1["List-Unsubscribe"] == f"<{links.unsubscribe_url(delivery)}>"
    assert m1["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/n/u/")
    assert m1["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert m1["List-Id"] == "<hnw-insight.127.0.0.1>"
    assert m1["Reply-To"] == "replies@broker.example"
    assert "insight@broker.example" in m1["From"]
    assert m1["To"] == "zhang@client.example"
    parts = {p.get_content_type(): p for p in m1.walk()}
    assert "text/plain" in parts and "text/html" in parts
    assert first.html == again.html
    assert re.search(r'<td [^>]*style="background-color:#0b3d6e;[^"]*">HNW Weekly Insight<br>',
                     first.html)  # the masthead's style is written on it
    assert 'style="' in first.html and "font-size" in first.html
    assert first.text.startswith("HNW Weekly Insight")
    assert links.unsubscribe_url(delivery) in first.text
    assert links.feedback_url(delivery, rating=5) in first.html.replace("&amp;", "&")
    assert "This week in markets" in first.html  # preheader, hidden
    assert TEMPLATE_VERSION


def test_no_third_party_anything_in_the_email(edition, reader):
    html = render_edition(edition=edition, context=delivery_context(edition=edition,
                                                                    client=reader),
                          delivery=a_delivery(edition, reader)).html
    srcs = re.findall(r'(?:src)="([^"]+)"', html)
    assert all(s.startswith("http://127.0.0.1:8000/") for s in srcs)
    assert "<link" not in html and "@import" not in html and "googleapis" not in html


def test_rm_sender_mode_signs_with_the_rms_name_on_the_firms_address(ops_user, reader):
    publication = make_publication(actor=ops_user, slug="rm-mode", sender_mode="rm")
    edition = make_edition(author=ops_user, publication=publication)
    delivery = a_delivery(edition, reader)
    rendered = render_edition(edition=edition,
                              context=delivery_context(edition=edition, client=reader),
                              delivery=delivery)
    message = build_message(delivery=delivery, rendered=rendered).message()
    assert "insight@broker.example" in message["From"]
    assert "王经理" in str(build_message(delivery=delivery, rendered=rendered).from_email)
    assert "王经理" in rendered.html


def test_tracking_wraps_http_links_and_adds_a_pixel_only_when_on(ops_user, reader):
    off = make_edition(author=ops_user)
    html = render_edition(edition=off, context=delivery_context(edition=off, client=reader),
                          delivery=a_delivery(off, reader)).html
    assert "/n/o/" not in html and "/n/c/" not in html
    assert 'href="https://research.example/a"' in html

    publication = make_publication(actor=ops_user, slug="tracked", tracking=True)
    on = make_edition(author=ops_user, publication=publication)
    delivery = a_delivery(on, reader, n=2)
    html = render_edition(edition=on, context=delivery_context(edition=on, client=reader),
                          delivery=delivery).html
    assert "/n/o/" in html and 'href="https://research.example/a"' not in html
    click = re.search(r'href="(http://127\.0\.0\.1:8000/n/c/[^"]+/)"', html).group(1)
    signed = click.split("/n/c/")[1].rstrip("/")
    assert links.verify_click(signed) == (delivery, "https://research.example/a")
    assert links.click_url(delivery, "mailto:rm@broker.example") == "mailto:rm@broker.example"


def test_a_preview_points_its_links_nowhere(edition, reader):
    rendered = render_preview(edition=edition, client=reader)
    assert "/n/u/" not in rendered.html and "/n/f/" not in rendered.html
    assert links.PREVIEW_URL in rendered.html
    assert "List-Unsubscribe" not in rendered.headers


# signed links -----------------------------------------------------------------------------

def test_signed_links_verify_and_tampered_or_swapped_ones_do_not(edition, reader, rm_a):
    mine = a_delivery(edition, reader)
    other = a_delivery(edition, ClientFactory(rm=rm_a), n=2)
    signed = links.unsubscribe_url(mine).split("/n/u/")[1].rstrip("/")
    assert links.verify_token(links.UNSUBSCRIBE, signed) == mine
    token, signature = signed.split(":")
    assert links.verify_token(links.UNSUBSCRIBE, f"{other.token}:{signature}") is None
    assert links.verify_token(links.UNSUBSCRIBE, f"{token}:{signature[:-1]}x") is None
    assert links.verify_token(links.UNSUBSCRIBE, token) is None
    assert links.verify_token(links.UNSUBSCRIBE, "") is None
    assert links.verify_token(links.FEEDBACK, signed) is None  # another purpose's signature
    feedback = links.feedback_url(mine, rating=4)
    assert feedback.endswith("?rating=4")
    assert links.verify_token(links.FEEDBACK, feedback.split("/n/f/")[1].split("/")[0]) == mine
    assert links.open_pixel_url(mine) is None  # tracking off
    assert links.verify_click("garbage") is None


# forbidden phrases ------------------------------------------------------------------------

def test_forbidden_phrases_are_found_with_positions_in_chinese_and_english(db):
    found = forbidden_phrases_found("本产品保本保收益, a GUARANTEED Return!")
    assert found == [{"phrase": "保本", "start": 3, "end": 5},
                     {"phrase": "保收益", "start": 5, "end": 8},
                     {"phrase": "guaranteed return", "start": 12, "end": 29}]
    assert forbidden_phrases_found("稳健增长，风险可控") == []


def test_a_compliance_added_phrase_counts_too(compliance_user):
    forbidden_phrase_add(phrase="Sure Thing", actor=compliance_user)
    assert ForbiddenPhrase.objects.filter(is_builtin=True).count() == 6  # seeded by 0002
    assert forbidden_phrases_found("a sure thing") == [
        {"phrase": "Sure Thing", "start": 2, "end": 12}]


def test_edition_issues_cover_subject_preheader_and_every_section_string(ops_user):
    sections = [{"kind": "editorial", "title": "稳赚之道", "body": "零风险"},
                {"kind": "research", "data": {"title": "t", "summary": "无风险套利",
                                              "url": "https://r.example/"}}]
    edition = make_edition(author=ops_user, sections=sections, subject="保本 weekly",
                           preheader="Guaranteed return inside")
    issues = edition_compliance_issues(edition=edition)
    assert {(i["section_position"], i["field"], i["phrase"], i["start"]) for i in issues} == {
        (None, "subject", "保本", 0), (None, "preheader", "guaranteed return", 0),
        (1, "title", "稳赚", 0), (1, "body", "零风险", 0), (2, "data.summary", "无风险", 0)}


def test_highlight_marks_matches_and_escapes_the_rest(db):
    text = "<b>稳赚</b> now"
    html = highlight(text, forbidden_phrases_found(text))
    assert html == '&lt;b&gt;<mark class="forbidden-phrase">稳赚</mark>&lt;/b&gt; now'


def test_the_preview_is_the_email_whatever_language_the_viewer_uses(edition, reader, settings):
    """The email is written in the firm's language: an ops user browsing in English previews
    exactly what the client gets, product-type labels included."""
    from django.utils import translation

    assert settings.LANGUAGE_CODE == "zh-hans"
    with translation.override("zh-hans"):
        as_sent = render_preview(edition=edition, client=reader)
    with translation.override("en"):
        seen_in_english = render_preview(edition=edition, client=reader)
    assert seen_in_english.html == as_sent.html and seen_in_english.text == as_sent.text
    assert "股票" in as_sent.html and "Stock" not in as_sent.html
