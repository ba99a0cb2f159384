"""Editors write Markdown, never template code: nothing they type reaches settings or runs."""

import re

import pytest
from django.conf import settings

from newsletters.markdown import markdown_to_html
from newsletters.rendering import delivery_context, render_edition
from tests.factories import ClientFactory, ProductFactory
from tests.newsletters import make_edition

# An event-handler attribute inside a real tag (escaped text like "&lt;img onerror" is inert).
ACTIVE_ATTRIBUTE = re.compile(r"<[a-z][^<>]*\son[a-z]+\s*=", re.IGNORECASE)
HOSTILE = [
    "{{ settings.SECRET_KEY }}",
    "{% debug %}",
    "{% load static %}{% static 'x' %}",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    '<a href="jav&#x61;script:alert(1)">x</a>',
    "<iframe src=https://evil.example></iframe>",
    "<style>body{display:none}</style>",
    '<p onclick="alert(1)">hi</p>',
]


@pytest.fixture
def hostile_edition(ops_user):
    ProductFactory(product_code="B1", risk_level="R1")
    body = "\n\n".join(HOSTILE)
    sections = [
        {"kind": "editorial", "title": "{{ settings.SECRET_KEY }}", "body": body},
        {"kind": "research", "data": {"title": "{% debug %}", "summary": body,
                                      "url": "https://r.example/"}},
        {"kind": "holdings", "data": {"intro": body, "notes_by_type": {"stock": body}}},
        {"kind": "picks", "data": {"product_codes": ["B1"], "notes": {"B1": body}}},
        {"kind": "rm_note", "data": {"fallback": body}},
    ]
    return make_edition(author=ops_user, sections=sections,
                        subject="{{ settings.SECRET_KEY }}", preheader="{% debug %}")


def test_template_code_in_sections_renders_as_inert_text(hostile_edition, rm_a):
    client = ClientFactory(rm=rm_a, risk_level="C5")
    rendered = render_edition(edition=hostile_edition,
                              context=delivery_context(edition=hostile_edition, client=client))
    for output in (rendered.html, rendered.text, rendered.subject):
        assert settings.SECRET_KEY not in output
    assert "{{ settings.SECRET_KEY }}" in rendered.html
    assert "{% debug %}" in rendered.html
    assert "{{ settings.SECRET_KEY }}" in rendered.text
    html = rendered.html.lower()
    assert "<script" not in html and "<iframe" not in html
    assert ACTIVE_ATTRIBUTE.search(html) is None
    assert 'href="javascript' not in html and "href='javascript" not in html
    assert "<style>body{display:none}" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html  # shown, not run


@pytest.mark.parametrize("source", HOSTILE)
def test_the_markdown_sanitiser_leaves_nothing_active(source):
    html = markdown_to_html(source).lower()
    assert "<script" not in html and "<iframe" not in html and "<style" not in html
    assert "<img" not in html
    assert ACTIVE_ATTRIBUTE.search(html) is None
    assert 'href="javascript' not in html and "href='javascript" not in html


def test_only_http_https_and_mailto_links_survive():
    html = markdown_to_html("[a](https://x.example) [b](mailto:a@b.example) [c](ftp://x) "
                            "[d](data:text/html,hi)")
    assert 'href="https://x.example"' in html and 'href="mailto:a@b.example"' in html
    assert 'href="ftp' not in html
    assert 'href="data:' not in html
