"""One declaration of the section rules (newsletters.sections): the editor page, the API and
the services refuse the same sections with the same messages, and accept the same ones."""

import pytest
from rest_framework.test import APIClient

from core.errors import ApplicationError
from newsletters import services
from newsletters.models import Edition
from newsletters.sections import BODY_MAX, TOP_N_MAX
from tests.factories import ProductFactory
from tests.newsletters import make_edition, make_publication


@pytest.fixture
def publication(ops_user):
    return make_publication(actor=ops_user)


@pytest.fixture
def products(db):
    return {"on_sale": ProductFactory(product_code="P20001", is_active=True),
            "off_sale": ProductFactory(product_code="P20009", is_active=False)}


@pytest.fixture
def api(ops_user):
    client = APIClient()
    client.force_authenticate(ops_user)
    return client


def api_create(api, publication, sections):
    return api.post("/api/v1/editions/", {"publication": publication.pk, "subject": "Weekly",
                                          "sections": sections}, format="json")


def page_create(http, publication, fields):
    post = {"subject": "Weekly", "preheader": "", "sections-count": "1", "s-0-title": "",
            **fields}
    return http.post(f"/newsletters/publications/{publication.slug}/editions/new/", post)


def holdings(top_n):
    return {"kind": "holdings", "data": {"intro": "", "top_n": top_n, "notes_by_product": {},
                                         "notes_by_type": {}}}


def picks(code):
    return {"kind": "picks", "data": {"product_codes": [code], "notes": {}}}


# (the section as the API takes it, the same section as the editor page posts it,
#  where the API names the error, where the page shows it)
REFUSED_BY_BOTH = [
    pytest.param({"kind": "editorial", "body": "x" * (BODY_MAX + 1)},
                 {"s-0-kind": "editorial", "s-0-body": "x" * (BODY_MAX + 1)},
                 "sections[0].body", "body", id="body over the limit"),
    pytest.param(holdings(0), {"s-0-kind": "holdings", "s-0-top_n": "0"},
                 "sections[0].data.top_n", "top_n", id="top N 0"),
    pytest.param(holdings(TOP_N_MAX + 1),
                 {"s-0-kind": "holdings", "s-0-top_n": str(TOP_N_MAX + 1)},
                 "sections[0].data.top_n", "top_n", id="top N 21"),
    pytest.param(holdings("5"), {"s-0-kind": "holdings", "s-0-top_n": "five"},
                 "sections[0].data.top_n", "top_n", id="top N not a number"),
    pytest.param(holdings("²"), {"s-0-kind": "holdings", "s-0-top_n": "²"},
                 "sections[0].data.top_n", "top_n", id="top N a superscript digit"),
    pytest.param(holdings("9" * 5000), {"s-0-kind": "holdings", "s-0-top_n": "9" * 5000},
                 "sections[0].data.top_n", "top_n", id="top N of 5000 digits"),
    pytest.param(picks("P20009"), {"s-0-kind": "picks", "s-0-picks-count": "1",
                                   "s-0-picks-0-code": "P20009"},
                 "sections[0].data.product_codes", "picks", id="pick not on sale"),
    pytest.param(picks("NOPE"), {"s-0-kind": "picks", "s-0-picks-count": "1",
                                 "s-0-picks-0-code": "NOPE"},
                 "sections[0].data.product_codes", "picks", id="pick of an unknown product"),
    pytest.param({"kind": "holdings", "data": {"top_n": 5, "notes_by_product": {"NOPE": "n"}}},
                 {"s-0-kind": "holdings", "s-0-top_n": "5", "s-0-products-count": "1",
                  "s-0-products-0-code": "NOPE", "s-0-products-0-note": "n"},
                 "sections[0].data.notes_by_product", "products",
                 id="note on an unknown product"),
]


@pytest.mark.parametrize(("api_section", "page_fields", "path", "page_field"), REFUSED_BY_BOTH)
def test_page_and_api_refuse_the_same_section_with_the_same_messages(
        logged_in, ops_user, api, publication, products, api_section, page_fields, path,
        page_field):
    response = api_create(api, publication, [api_section])
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_section"
    api_messages = error["fields"][path]

    response = page_create(logged_in(ops_user), publication, page_fields)
    assert response.status_code == 400
    page_messages = response.context["editor"].blocks[0].errors[page_field]

    assert api_messages and page_messages == api_messages
    assert not Edition.objects.filter(publication=publication).exists()


# Sections only a program can send: the API and a direct service call (the demo, the admin,
# a task) refuse them alike, so no path skips the rules.
REFUSED_BY_EVERY_CALLER = [
    pytest.param({"kind": "editorial", "body": 5}, "sections[0].body", id="body not text"),
    pytest.param({"kind": "editorial", "body": "x", "title": ["a"]}, "sections[0].title",
                 id="title not text"),
    pytest.param({"kind": "editorial", "body": "x", "data": []}, "sections[0].data",
                 id="data not an object"),
    pytest.param(picks("P20009"), "sections[0].data.product_codes", id="pick not on sale"),
]


@pytest.mark.parametrize(("section", "path"), REFUSED_BY_EVERY_CALLER)
def test_api_and_services_refuse_what_the_page_cannot_send(ops_user, api, publication, products,
                                                           section, path):
    response = api_create(api, publication, [section])
    assert response.status_code == 400, response.content
    api_fields = response.json()["error"]["fields"]
    assert response.json()["error"]["code"] == "invalid_section"

    draft = make_edition(author=ops_user, publication=publication)
    with pytest.raises(ApplicationError) as refused:
        services.edition_update(edition=draft, actor=ops_user, sections=[section])
    assert refused.value.fields == api_fields and path in api_fields


def test_every_problem_of_every_section_is_named_in_one_answer(ops_user, api, publication,
                                                               products):
    sections = [
        {"kind": "holdings", "data": {"top_n": True, "colour": "red", "notes_by_type": ["x"]}},
        {"kind": "picks", "data": {"product_codes": "P20001"}},
        {"kind": "picks", "data": {"product_codes": ["P20001"], "notes": ["x"]}},
        {"kind": "research", "data": {"title": "T", "url": {"href": "x"}}},
    ]
    response = api_create(api, publication, sections)
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {
        "sections[0].data", "sections[0].data.top_n", "sections[0].data.notes_by_type",
        "sections[1].data.product_codes", "sections[2].data.notes", "sections[3].data.url"}

    draft = make_edition(author=ops_user, publication=publication)
    with pytest.raises(ApplicationError) as refused:
        services.edition_update(edition=draft, actor=ops_user, sections=sections)
    assert refused.value.fields == response.json()["error"]["fields"]


def test_the_page_keeps_an_over_long_text_in_the_form_instead_of_cutting_it(
        logged_in, ops_user, publication):
    text = "长" * (BODY_MAX + 7)
    response = page_create(logged_in(ops_user), publication,
                           {"s-0-kind": "editorial", "s-0-body": text})
    assert response.status_code == 400
    block = response.context["editor"].blocks[0]
    assert block.values["body"] == text
    assert block.errors["body"]
    assert text in response.content.decode()
    assert not Edition.objects.filter(publication=publication).exists()


def test_page_and_api_accept_and_store_the_same_valid_sections(logged_in, ops_user, api,
                                                              publication, products):
    # Line breaks posted as CRLF count once: a text of exactly the limit is stored whole.
    lines = ["行" * 99] * (BODY_MAX // 100)
    body = "\n".join(lines) + "x" * (BODY_MAX - len("\n".join(lines)))
    assert len(body) == BODY_MAX
    sections = [
        {"kind": "editorial", "title": "观点", "body": body, "data": {}},
        {"kind": "holdings", "title": "", "body": "",
         "data": {"intro": "持仓", "top_n": TOP_N_MAX,
                  "notes_by_product": {"P20001": "稳健"}, "notes_by_type": {}}},
        {"kind": "picks", "title": "", "body": "",
         "data": {"product_codes": ["P20001"], "notes": {"P20001": "之选"}}},
    ]
    response = api_create(api, publication, sections)
    assert response.status_code == 201, response.content

    page = {"sections-count": "3",
            "s-0-kind": "editorial", "s-0-title": "观点", "s-0-body": body.replace("\n", "\r\n"),
            "s-1-kind": "holdings", "s-1-intro": "持仓", "s-1-top_n": str(TOP_N_MAX),
            "s-1-products-count": "1", "s-1-products-0-code": "P20001",
            "s-1-products-0-note": "稳健",
            "s-2-kind": "picks", "s-2-picks-count": "1", "s-2-picks-0-code": "P20001",
            "s-2-picks-0-note": "之选"}
    response = page_create(logged_in(ops_user), publication, page)
    assert response.status_code == 302

    by_api, by_page = Edition.objects.filter(publication=publication).order_by("number")
    stored = [[(s.kind, s.title, s.body, s.data) for s in e.sections.order_by("position")]
              for e in (by_api, by_page)]
    assert stored[0] == stored[1]
    assert stored[1][0][2] == body
