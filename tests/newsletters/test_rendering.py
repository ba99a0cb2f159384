"""The one renderer (newsletters.rendering): Jinja2 templates compiled once per process, the
edition's content read once per run, the chunk's personal data in a few queries, and the
message Django's mail classes build -- none of which may change what any one client gets."""

import datetime as dt
import email
import email.policy
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from newsletters import links
from newsletters.markdown import markdown_to_html
from newsletters.rendering import (
    delivery_context,
    delivery_contexts,
    message_bytes,
    render_edition,
)
from tests.factories import ClientFactory, ProductFactory
from tests.newsletters import hold, make_edition, make_publication
from tests.newsletters.test_content import a_delivery, edition, products, reader  # noqa: F401


def sections(body="Markets **calm**. [Read](https://research.example/a)"):
    return [
        {"kind": "editorial", "title": "Market view", "body": body},
        {"kind": "research", "title": "Research",
         "data": {"title": "Bond outlook", "summary": "Rates *lower*.",
                  "url": "https://research.example/bonds"}},
        {"kind": "holdings", "title": "Your holdings",
         "data": {"intro": "Your largest positions:", "top_n": 5,
                  "notes_by_type": {"stock": "Stocks: *careful*.",
                                    "fixed_income": "Bonds: short duration."}}},
        {"kind": "picks", "title": "Picks", "data": {"product_codes": ["R1X"],
                                                     "notes": {"R1X": "A quiet one."}}},
        {"kind": "rm_note", "title": "From your RM", "data": {"fallback": "Call me."}},
    ]


@pytest.fixture
def two_clients(rm_a, db):
    stock = ProductFactory(product_code="STK1", name="甲股票", product_type="stock",
                           risk_level="R4")
    bond = ProductFactory(product_code="BND1", name="乙债券", product_type="fixed_income",
                          risk_level="R2")
    ProductFactory(product_code="R1X", name="丙货币", product_type="money_market",
                   risk_level="R1")
    one = ClientFactory(name="李一", rm=rm_a, risk_level="C4", email="one@client.example")
    two = ClientFactory(name="王二", rm=rm_a, risk_level="C2", email="two@client.example")
    hold(one, stock, "800000")
    hold(one, bond, "100000", as_of=dt.date(2026, 9, 30))  # an older day: not shown
    hold(two, bond, "250000")
    return one, two


def test_a_changed_content_version_re_renders_on_the_same_edition_instance(ops_user, two_clients):
    ed = make_edition(author=ops_user, sections=sections(body="First **draft**."))
    client = two_clients[0]
    first = render_edition(edition=ed, context=delivery_context(edition=ed,
                                                                     client=client))
    assert "<strong" in first.html and "First" in first.html and "First" in first.text
    section = ed.sections.get(kind="editorial")
    section.body = "Second *take*."
    section.save()
    ed.content_version += 1
    ed.save(update_fields=["content_version"])
    again = render_edition(edition=ed, context=delivery_context(edition=ed,
                                                                     client=client))
    assert "Second" in again.html and "First" not in again.html
    assert "Second" in again.text and "First" not in again.text


def test_each_client_of_one_batch_gets_their_own_latest_holdings(ops_user, two_clients):
    one, two = two_clients
    ed = make_edition(author=ops_user, sections=sections())
    for client in (one, two):
        client.rm  # noqa: B018 - loaded like dispatch does (select_related)
    with CaptureQueriesContext(connection) as queries:
        contexts = delivery_contexts(edition=ed, clients=[one, two])
    assert len(queries) <= 4  # sections, holdings of everyone, pick products
    assert [p["product_code"] for p in contexts[one.id]["positions"]] == ["STK1"]
    assert contexts[one.id]["positions"][0]["weight"] == 100.0  # the older day is not counted
    assert [p["product_code"] for p in contexts[two.id]["positions"]] == ["BND1"]
    assert contexts[one.id] == delivery_context(edition=ed, client=one)
    assert contexts[two.id] == delivery_context(edition=ed, client=two)
    html_one = render_edition(edition=ed, context=contexts[one.id]).html
    html_two = render_edition(edition=ed, context=contexts[two.id]).html
    assert "甲股票" in html_one and "乙债券" not in html_one.split("Picks")[0]
    assert "乙债券" in html_two and "甲股票" not in html_two
    hello_one = contexts[one.id]["client"]["salutation"]
    hello_two = contexts[two.id]["client"]["salutation"]
    assert hello_one != hello_two
    assert hello_one in html_one and hello_two in html_two and hello_one not in html_two
    assert "Stocks: <em" in html_one and "Bonds: short duration." in html_two


def test_editor_content_and_the_shell_carry_their_styles_inline(ops_user, two_clients):
    ed = make_edition(author=ops_user, sections=sections(
        body="See [the note](https://research.example/a).\n\n> quoted\n\n"
             "<p style=\"position:fixed\">raw</p>"))
    html = render_edition(edition=ed,
                          context=delivery_context(edition=ed, client=two_clients[0])).html
    link = re.search(r'<a [^>]*href="https://research.example/a"[^>]*>', html).group(0)
    assert 'style="color:#0b5cad"' in link  # newsletters.markdown.EMAIL_STYLES["a"]
    assert re.search(r'<blockquote style="[^"]*border-left', html)
    assert 'style="position:fixed"' not in html
    assert "<p>raw</p>" in html  # the allow-list dropped the editor's own style
    assert re.search(r'<td [^>]*style="[^"]*padding:16px 0', html)  # each section
    assert re.search(r'<div style="color:#374151;font-size:14px"><p>Stocks: <em>', html)
    assert "{%" not in html and "{{" not in html


def test_the_memoised_markdown_is_still_sanitised_every_time():
    for _ in range(2):
        html = markdown_to_html("<script>alert(1)</script> **b**")
        assert "<script" not in html and "&lt;script&gt;" in html and "<strong>b</strong>" in html


def test_the_wire_bytes_are_the_message_with_envelope_and_crlf(edition, reader):  # noqa: F811
    delivery = a_delivery(edition, reader)
    rendered = render_edition(edition=edition, context=delivery_context(edition=edition,
                                                                       client=reader),
                              delivery=delivery)
    envelope_from, recipients, data = message_bytes(delivery=delivery, rendered=rendered)
    assert email.utils.parseaddr(envelope_from)[1] == "insight@broker.example"
    assert recipients == ["zhang@client.example"]
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    wire = email.message_from_bytes(data, policy=email.policy.default)
    assert str(wire["Subject"]) == edition.subject
    assert str(wire["To"]) == "zhang@client.example"
    assert str(wire["Reply-To"]) == "replies@broker.example"
    assert str(wire["Message-ID"]).strip() == delivery.message_id
    assert str(wire["List-Id"]).strip() == "<hnw-insight.127.0.0.1>"
    assert str(wire["List-Unsubscribe"]).strip() == f"<{links.unsubscribe_post_url(delivery)}>"
    assert str(wire["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert wire["Date"] and wire["MIME-Version"] == "1.0"
    assert wire.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in wire.iter_parts()] == ["text/plain", "text/html"]
    assert wire.get_body(("plain",)).get_content().replace("\r\n", "\n") == rendered.text
    assert wire.get_body(("html",)).get_content().replace("\r\n", "\n") == rendered.html


def test_the_templates_are_compiled_once_strict_and_sandboxed(settings):
    from jinja2.exceptions import SecurityError, UndefinedError

    from newsletters.rendering import HTML_TEMPLATE, TEXT_TEMPLATE, _environment, email_template

    settings.DEBUG = False
    assert email_template(HTML_TEMPLATE) is email_template(HTML_TEMPLATE)
    assert email_template(TEXT_TEMPLATE) is email_template(TEXT_TEMPLATE)
    env = _environment(False)
    with pytest.raises(UndefinedError):  # a misspelt name fails; it never prints as nothing
        env.from_string("Dear {{ personal.client.salutaton }}").render(
            personal={"client": {"salutation": "x"}})
    with pytest.raises(SecurityError):  # template code cannot reach Python internals
        env.from_string("{{ ''.__class__.__mro__[1].__subclasses__() }}").render()
    assert env.from_string("{{ v }}").render(v="<b>") == "&lt;b&gt;"


def test_wire_headers_encode_non_ascii_and_refuse_header_injection(ops_user, reader):  # noqa: F811
    publication = make_publication(actor=ops_user, slug="rm-wire", sender_mode="rm")
    ed = make_edition(author=ops_user, publication=publication, subject="本周观点 · 第一期")
    delivery = a_delivery(ed, reader)
    rendered = render_edition(edition=ed, context=delivery_context(edition=ed,
                                                                       client=reader),
                              delivery=delivery)
    _from, _to, data = message_bytes(delivery=delivery, rendered=rendered)
    head = data.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # RFC 2047 encoded, nothing raw
    wire = email.message_from_bytes(data, policy=email.policy.default)
    assert str(wire["Subject"]) == "本周观点 · 第一期"
    assert "王经理" in str(wire["From"]) and "insight@broker.example" in str(wire["From"])
    rendered.subject = "Hello\r\nBcc: victim@example.com"
    from django.core.mail import BadHeaderError

    with pytest.raises(BadHeaderError):
        message_bytes(delivery=delivery, rendered=rendered)


def test_long_lines_go_quoted_printable_and_decode_to_the_same_html(ops_user, reader):  # noqa: F811
    ProductFactory(product_code="R1X", risk_level="R1")
    long_body = "长" * 600  # 1800 bytes on one line
    ed = make_edition(author=ops_user, sections=sections(body=long_body))
    delivery = a_delivery(ed, reader)
    rendered = render_edition(edition=ed, context=delivery_context(edition=ed,
                                                                       client=reader),
                              delivery=delivery)
    data = message_bytes(delivery=delivery, rendered=rendered)[2]
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    wire = email.message_from_bytes(data, policy=email.policy.default)
    assert wire.get_body(("html",)).get_content().replace("\r\n", "\n") == rendered.html
