"""Crafted input is a 4xx with a reason (the API's error envelope, a form error or the 400 page),
never a 500: deep JSON, NUL characters, lone surrogates, year-1 dates, numbers in other
scripts, and deleting a segment that is still in use."""

import datetime
import json
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from clients.models import Client
from tests.factories import ClientFactory, ProductFactory


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_not(depth: int) -> str:
    condition = '{"field": "age", "op": "gte", "value": 18}'
    return '{"not": ' * depth + condition + "}" * depth


@pytest.fixture
def api(ops_user):
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=ops_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_ACCEPT_LANGUAGE="en")
    return client


@pytest.fixture
def page(logged_in):
    """`page(user)` -> test client logged in as user, reading pages in English."""

    def _page(user):
        client = logged_in(user)
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
        return client

    return _page


def raw(api, method: str, path: str, body: str):
    return getattr(api, method)(path, data=body.encode("utf-8"), content_type="application/json")


def assert_envelope(response, status=400):
    assert response.status_code == status, response.content[:300]
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert all(isinstance(v, list) for v in error["fields"].values())
    return error


# --- 1. JSON nested ~1,000 deep -------------------------------------------------------------

DEEP_BODIES = [
    ("post", "/api/v1/transactions/bulk/", nested_list(1000)),
    ("post", "/api/v1/transactions/bulk/", nested_list(65)),  # parses, but deeper than 64
    ("post", "/api/v1/segments/preview/", '{"rule": ' + nested_not(1000) + "}"),
    ("post", "/api/v1/segments/", '{"code": "deep", "name": "Deep", "rule": '
     + nested_not(1000) + "}"),
    ("put", "/api/v1/clients/D0000001/", '{"name": ' + nested_list(1000) + "}"),
    ("put", "/api/v1/products/F0000001/", '{"name": {"a": ' * 999 + "1" + "}" * 1000),
]


@pytest.mark.parametrize(("method", "path", "body"), DEEP_BODIES,
                         ids=[f"{m} {p} {len(b)}" for m, p, b in DEEP_BODIES])
def test_json_nested_deeper_than_the_limit_is_a_400_in_the_envelope(api, method, path, body):
    error = assert_envelope(raw(api, method, path, body))
    assert "deep" in error["message"]


@pytest.mark.parametrize("depth", [11, 1000])
def test_a_rule_too_deep_in_the_builder_is_a_form_error(page, ops_user, depth):
    builder = page(ops_user)
    response = builder.post("/segments/new/", {"code": "deep", "name_zh": "深", "name_en": "Deep",
                                            "rule": nested_not(depth)})
    assert response.status_code == 400
    assert "deep" in response.content.decode()
    preview = builder.post("/segments/preview/", {"rule": nested_not(depth)})
    assert preview.status_code == 200  # the builder's live count shows the error in place
    assert "deep" in preview.content.decode()


# --- 2. NUL characters in the path, the query or a form -------------------------------------

NUL_PAGES = [
    "/clients/A%000001/",
    "/clients/?q=%00",
    "/clients/?risk_level=C1&q=a%00b",
    "/newsletters/editions/1/preview/?client=%00",
    "/segments/?q=%00",
    "/accounts/audit/?who=%00",
]


@pytest.mark.parametrize("url", NUL_PAGES)
def test_a_nul_in_a_page_address_is_the_400_page(page, admin_user_, url):
    response = page(admin_user_).get(url)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "NUL" in response.content.decode()


NUL_API = [
    "/api/v1/clients/A%000001/",
    "/api/v1/clients/?search=%00",
    "/api/v1/clients/?rm=%00&branch=SH01",
    "/api/v1/products/F%00/",
    "/api/v1/segments/x%00/members/",
    "/api/v1/editions/?status=%00",
]


@pytest.mark.parametrize("url", NUL_API)
def test_a_nul_in_an_api_address_is_a_400_in_the_envelope(api, url):
    error = assert_envelope(api.get(url))
    assert "NUL" in error["message"]


def test_a_nul_in_a_posted_form_is_the_400_page(page, admin_user_, client_of_a):
    response = page(admin_user_).post(f"/clients/{client_of_a.client_no}/interactions/",
                                           {"kind": "call", "note": "a\x00b"})
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


@pytest.mark.parametrize(("method", "path", "body"), [
    ("put", "/api/v1/clients/N0000001/", '{"name": "a\\u0000b"}'),
    ("post", "/api/v1/transactions/bulk/", '[{"txn_id": "T\\u0000", "client_no": "A0000001", '
     '"product_code": "F000001", "traded_at": "2026-01-01 10:00:00", "amount": "1"}]'),
    ("post", "/api/v1/segments/preview/", '{"rule": {"field": "city", "op": "eq", '
     '"value": "\\u0000"}}'),
])
def test_a_nul_in_a_json_body_is_a_400_in_the_envelope(api, method, path, body):
    error = assert_envelope(raw(api, method, path, body))
    assert "NUL" in error["message"]


# --- 3. Lone surrogates ---------------------------------------------------------------------

SURROGATES = [
    ("post", "/api/v1/segments/preview/", '{"rule": {"field": "city", "op": "eq", '
     '"value": "\\ud800"}}'),
    ("post", "/api/v1/segments/", '{"code": "sur", "name": "S\\udfff", "rule": '
     '{"field": "age", "op": "gte", "value": 1}}'),
    ("put", "/api/v1/clients/S0000001/", '{"name": "x\\ud800y"}'),
    ("post", "/api/v1/transactions/bulk/", '[{"\\udc00": 1}]'),
]


@pytest.mark.parametrize(("method", "path", "body"), SURROGATES,
                         ids=[p for _, p, _ in SURROGATES])
def test_a_lone_surrogate_in_json_is_a_400_in_the_envelope(api, method, path, body):
    error = assert_envelope(raw(api, method, path, body))
    assert "surrogate" in error["message"]


def test_a_lone_surrogate_in_a_builder_rule_is_a_form_error(page, ops_user):
    rule = '{"field": "city", "op": "eq", "value": "\\ud800"}'
    response = page(ops_user).post("/segments/new/", {
        "code": "sur", "name_zh": "代", "name_en": "Sur", "rule": rule})
    assert response.status_code == 400
    assert "surrogate" in response.content.decode()


# --- 4. Year-1 and negative-year dates ------------------------------------------------------

@pytest.mark.parametrize("traded_at", ["0001-01-01T00:00:00", "-0001-01-01T00:00:00",
                                       "0001-01-01T00:00:00+08:00", "0001-01-01",
                                       "9999-12-31T23:00:00-05:00"])
def test_a_trade_time_outside_the_calendar_is_a_row_error(api, client_of_a, traded_at):
    ProductFactory(product_code="F000001")
    response = api.post("/api/v1/transactions/bulk/", [
        {"txn_id": "T1", "client_no": client_of_a.client_no, "product_code": "F000001",
         "traded_at": "2026-01-05 10:00:00", "amount": "100"},
        {"txn_id": "T2", "client_no": client_of_a.client_no, "product_code": "F000001",
         "traded_at": traded_at, "amount": "100"}], format="json")
    assert_envelope(response)
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(1, "traded_at")]


@pytest.mark.parametrize(("field", "value"), [("birth_date", "0001-01-01"),
                                              ("opened_on", "0001-01-01"),
                                              ("risk_expires_on", "-0001-12-31")])
def test_a_client_date_outside_the_calendar_is_a_field_error(api, field, value):
    response = api.put("/api/v1/clients/Y0000001/", {"name": "Y", field: value}, format="json")
    assert field in assert_envelope(response)["fields"]


def test_the_never_expires_date_9999_12_31_is_taken_by_the_api_and_the_import(api, ops_user):
    from clients.ingest import ingest_records
    from clients.models import Client

    response = api.put("/api/v1/clients/Y0000001/",
                       {"name": "Y", "risk_expires_on": "9999-12-31"}, format="json")
    assert response.status_code in (200, 201), response.content
    ingest_records(kind="clients", actor=ops_user, records=[
        {"client_no": "Y0000002", "name": "Z", "risk_expires_on": "9999-12-31"}])
    assert set(Client.objects.filter(client_no__startswith="Y").values_list(
        "risk_expires_on", flat=True)) == {datetime.date(9999, 12, 31)}


def test_an_import_date_outside_the_calendar_is_a_row_error(ops_user):
    from clients.ingest import IngestRejected, ingest_records

    with pytest.raises(IngestRejected) as caught:
        ingest_records(kind="clients", actor=ops_user, records=[
            {"client_no": "Y0000001", "name": "Y", "birth_date": "0001-01-01"},
            {"client_no": "Y0000002", "name": "Z", "opened_on": "-0001-01-01"}])
    assert sorted((e.row, e.column) for e in caught.value.errors) == [
        (0, "birth_date"), (1, "opened_on")]


# --- 5. Deleting a segment a publication uses ------------------------------------------------

def test_deleting_a_segment_a_publication_uses_is_a_409_naming_it(api, ops_user):
    from segments.models import Segment
    from tests.newsletters import make_publication

    publication = make_publication(actor=ops_user, segment_code="readers")
    error = assert_envelope(api.delete("/api/v1/segments/readers/"), status=409)
    assert error["code"] == "segment_in_use"
    assert publication.name in error["message"]
    assert Segment.objects.filter(code="readers").exists()


# --- 6. Numbers: ASCII digits only ----------------------------------------------------------

ODD_NUMBERS = ["1_000", "١٠٠٠", "1 000", "１０００", "٣.٥"]


@pytest.mark.parametrize("aum", ODD_NUMBERS)
def test_aum_in_other_digits_is_a_field_error_over_the_api(api, aum):
    response = api.put("/api/v1/clients/Z0000001/", {"name": "Z", "aum": aum}, format="json")
    assert "aum" in assert_envelope(response)["fields"]


@pytest.mark.parametrize("aum", ["1000", "1000.50", 1000, "+5", "0"])
def test_aum_in_plain_digits_is_accepted(api, aum):
    response = api.put("/api/v1/clients/Z0000001/", {"name": "Z", "aum": aum}, format="json")
    assert response.status_code in (200, 201), response.json()
    assert Client.objects.get(client_no="Z0000001").aum == Decimal(str(aum))


@pytest.mark.parametrize("value", ODD_NUMBERS)
def test_numbers_in_other_digits_are_row_errors_in_the_import(ops_user, value):
    from clients.ingest import IngestRejected, ingest_records

    client = ClientFactory(client_no="A0000009")
    ProductFactory(product_code="F000009")
    with pytest.raises(IngestRejected) as caught:
        ingest_records(kind="clients", actor=ops_user,
                       records=[{"client_no": "Z0000001", "name": "Z", "aum": value}])
    assert [(e.row, e.column) for e in caught.value.errors] == [(0, "aum")]
    with pytest.raises(IngestRejected) as caught:
        ingest_records(kind="transactions", actor=ops_user, records=[
            {"txn_id": "T9", "client_no": client.client_no, "product_code": "F000009",
             "traded_at": "2026-01-05 10:00:00", "amount": value, "revenue": value}])
    assert sorted(e.column for e in caught.value.errors) == ["amount", "revenue"]


def test_scheme_numbers_in_other_digits_are_field_errors(admin_user_):
    from rest_framework.authtoken.models import Token

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user_).key}",
                    HTTP_ACCEPT_LANGUAGE="en")
    response = api.post("/api/v1/scoring/schemes/", {
        "window_months": "١٢", "amount_bounds": ["1_0", 2, 3, 4, 5],
        "frequency_bounds": [1, 2, 3, 4, 5], "benefit_bounds": [1, 2, 3, 4, 5],
        "high_score": 4, "recent_days": 30,
        "tier_precedence": ["guiding", "development", "potential", "long_tail"]},
        format="json")
    fields = assert_envelope(response)["fields"]
    assert {"window_months", "amount_bounds.0"} <= set(fields)


def test_the_api_reads_json_only(api):
    response = api.put("/api/v1/clients/Q0000001/", {"name": "Q"}, format="multipart")
    assert_envelope(response, status=415)
    assert json.loads(api.get("/api/schema/?format=json").content)  # the schema still loads
