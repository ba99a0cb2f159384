"""REST API v1: clients, products, holdings, transactions, branches (docs/api.md)."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clients.models import Client, Holding, Product, Transaction
from core.models import AuditAction, AuditLog, Branch, Role, User
from tests.factories import (
    ClientFactory,
    HoldingFactory,
    ProductFactory,
    TransactionFactory,
)

CLIENT_BODY = {
    "name": "陈静",
    "gender": "F",
    "birth_date": "1990-03-08",
    "phone": "13912345678",
    "email": "chen.jing@example.com",
    "city": "上海",
    "occupation": "homemaker",
    "industry": "other",
    "has_children": True,
    "branch": "SH01",
    "risk_level": "C3",
    "risk_assessed_on": "2026-01-10",
    "risk_expires_on": "2099-01-10",
    "investor_type": "ordinary",
    "opened_on": "2021-06-01",
    "status": "active",
    "aum": "820000.00",
    "consent_email": True,
}


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body["error"]) == {"code", "message", "fields"}, body
    if code:
        assert body["error"]["code"] == code, body
    return body


def txn(i: int, client_no: str = "A0000001", product_code: str = "F000001", **kw) -> dict:
    row = {"txn_id": f"TX{i:08d}", "client_no": client_no, "product_code": product_code,
           "traded_at": "2026-10-01T10:30:00+08:00", "amount": "10000.00", "revenue": "50.00"}
    row.update(kw)
    return row


# auth ---------------------------------------------------------------------------------------

def test_a_token_from_issue_api_token_authenticates(db, capsys):
    call_command("issue_api_token", "core-banking", "--role", "ops")
    key = capsys.readouterr().out.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    user = User.objects.get(username="core-banking")
    assert user.is_service_account and user.role == Role.OPS
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/clients/").status_code == 200
    assert AuditLog.objects.filter(action=AuditAction.TOKEN_ISSUED, object_id="core-banking")


def test_issue_api_token_creates_an_rm_of_a_branch_and_rejects_unknowns(branch, capsys):
    call_command("issue_api_token", "rm_sys", "--role", "rm", "--branch", "SH01")
    assert capsys.readouterr().out.strip() == Token.objects.get(user__username="rm_sys").key
    assert User.objects.get(username="rm_sys").branch == branch
    with pytest.raises(CommandError, match="Unknown role"):
        call_command("issue_api_token", "x", "--role", "boss")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("issue_api_token", "x", "--role", "rm", "--branch", "NOPE")
    assert not User.objects.filter(username="x").exists()


def test_no_credentials_is_a_401_in_the_error_format(db):
    assert_error(APIClient().get("/api/v1/clients/"), 401)
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert_error(bad.get("/api/v1/clients/"), 401)


def test_a_user_without_a_role_is_refused(db, api_as, django_user_model):
    nobody = django_user_model.objects.create_user("nobody", password="x")
    assert_error(api_as(nobody).get("/api/v1/clients/"), 403)


# client upsert ------------------------------------------------------------------------------

def test_put_creates_then_updates_the_same_client(branch, rm_a, core_system):
    body = {**CLIENT_BODY, "rm": "rm_a"}
    first = core_system.put("/api/v1/clients/K0000001/", body, format="json")
    assert first.status_code == 201, first.json()
    second = core_system.put("/api/v1/clients/K0000001/", {**body, "aum": "6000000"},
                             format="json")
    assert second.status_code == 200, second.json()
    assert Client.objects.filter(client_no="K0000001").count() == 1
    client = Client.objects.get(client_no="K0000001")
    assert client.aum == Decimal("6000000") and client.rm == rm_a and client.branch == branch
    assert client.phone_tail == "5678"
    assert client.consent_updated_at is not None
    data = second.json()
    assert data["service_level"] == "hnw"
    assert data["phone"] == "139****5678"  # ops see masked data


def test_put_twice_with_the_same_body_is_idempotent(branch, core_system):
    core_system.put("/api/v1/clients/K1/", CLIENT_BODY, format="json")
    before = Client.objects.values().get(client_no="K1")
    again = core_system.put("/api/v1/clients/K1/", CLIENT_BODY, format="json")
    assert again.status_code == 200
    assert Client.objects.values().get(client_no="K1") == before


def test_an_update_keeps_fields_it_does_not_send(branch, core_system):
    core_system.put("/api/v1/clients/K2/", CLIENT_BODY, format="json")
    core_system.put("/api/v1/clients/K2/", {"name": "陈静静"}, format="json")
    client = Client.objects.get(client_no="K2")
    assert client.name == "陈静静" and client.city == "上海" and client.branch == branch


def test_an_rm_may_not_create_clients(rm_a, api_as, branch):
    assert_error(api_as(rm_a).put("/api/v1/clients/K3/", CLIENT_BODY, format="json"), 403)
    assert not Client.objects.filter(client_no="K3").exists()


@pytest.mark.parametrize("patch, field", [
    ({"branch": "NOPE"}, "branch"),
    ({"rm": "ghost"}, "rm"),
    ({"risk_level": "C9"}, "risk_level"),
    ({"occupation": "astronaut"}, "occupation"),
    ({"birth_date": "2026-02-30"}, "birth_date"),
    ({"aum": "1e40"}, "aum"),
    ({"aum": "-5"}, "aum"),
    ({"aum": "lots"}, "aum"),
    ({"email": "not-an-email"}, "email"),
    ({"has_children": "perhaps"}, "has_children"),
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": ["a", "b"]}, "name"),
    ({"name": "nul\x00byte"}, "name"),
    ({"client_no": "OTHER"}, "client_no"),
])
def test_bad_client_input_is_a_400_naming_the_field(patch, field, branch, core_system):
    response = core_system.put("/api/v1/clients/K4/", {**CLIENT_BODY, **patch}, format="json")
    body = assert_error(response, 400)
    assert field in body["error"]["fields"], body
    assert not Client.objects.filter(client_no="K4").exists()


@pytest.mark.parametrize("raw", ["{not json", "[]", '"a string"', "12", "null"])
def test_a_body_that_is_not_a_json_object_is_a_400(raw, core_system):
    response = core_system.put("/api/v1/clients/K5/", raw, content_type="application/json")
    assert_error(response, 400)


def test_a_client_no_too_long_for_the_key_is_a_400(core_system):
    response = core_system.put(f"/api/v1/clients/{'9' * 33}/", CLIENT_BODY, format="json")
    assert_error(response, 400)


# branches and products -------------------------------------------------------------------

def test_branches_are_upserted_by_code(core_system, api_as, rm_a):
    assert core_system.put("/api/v1/branches/GZ01/", {"name": "广州天河营业部", "city": "广州"},
                           format="json").status_code == 201
    response = core_system.put("/api/v1/branches/GZ01/", {"name": "广州天河路营业部"},
                               format="json")
    assert response.status_code == 200
    assert response.json() == {"code": "GZ01", "name": "广州天河路营业部", "city": "广州"}
    assert Branch.objects.filter(code="GZ01").count() == 1
    assert_error(api_as(rm_a).put("/api/v1/branches/GZ02/", {"name": "x"}, format="json"), 403)
    assert_error(core_system.put("/api/v1/branches/GZ03/", {"city": "x"}, format="json"), 400)


def test_products_are_upserted_listed_and_read_by_code(core_system, api_as, rm_a):
    body = {"name": "科技成长混合", "product_type": "fund", "risk_level": "R4"}
    assert core_system.put("/api/v1/products/F100/", body, format="json").status_code == 201
    assert core_system.put("/api/v1/products/F100/", {**body, "risk_level": "R3"},
                           format="json").status_code == 200
    assert Product.objects.get(product_code="F100").risk_level == "R3"
    rm = api_as(rm_a)
    assert rm.get("/api/v1/products/F100/").json()["name"] == "科技成长混合"
    codes = [p["product_code"] for p in rm.get("/api/v1/products/?risk_level=R3").json()["results"]]
    assert codes == ["F100"]
    assert_error(rm.get("/api/v1/products/NOPE/"), 404)
    assert_error(rm.put("/api/v1/products/F100/", body, format="json"), 403)
    assert_error(core_system.put("/api/v1/products/F101/", {**body, "product_type": "crypto"},
                                 format="json"), 400)
    assert_error(rm.get("/api/v1/products/?risk_level=R9"), 400)


# scoping, masking, detail ----------------------------------------------------------------

def test_an_rm_cannot_see_another_rms_client(client_of_a, clients_of_b, rm_a, api_as):
    api = api_as(rm_a)
    other = clients_of_b[0].client_no
    for path in (f"/api/v1/clients/{other}/", f"/api/v1/clients/{other}/holdings/",
                 f"/api/v1/clients/{other}/transactions/"):
        assert_error(api.get(path), 404)
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=rm_a).exists()
    listed = api.get("/api/v1/clients/?page_size=1000").json()["results"]
    assert [c["client_no"] for c in listed] == ["A0000001"]
    assert api.get(f"/api/v1/clients/?search={other}").json()["results"] == []


def test_the_own_rm_sees_personal_data_in_full_and_it_is_audited(client_of_a, rm_a, api_as):
    data = api_as(rm_a).get("/api/v1/clients/A0000001/").json()
    assert data["phone"] == "13812345678"
    assert data["email"] == client_of_a.email
    log = AuditLog.objects.get(action=AuditAction.PII_VIEWED)
    assert log.actor == rm_a and log.object_id == "A0000001"


def test_lists_are_always_masked_and_not_audited(client_of_a, rm_a, api_as):
    row = api_as(rm_a).get("/api/v1/clients/").json()["results"][0]
    assert row["phone"] == "138****5678"
    assert row["email"].startswith(client_of_a.email[0] + "***@")
    assert not AuditLog.objects.filter(action=AuditAction.PII_VIEWED).exists()


def test_ops_and_the_branch_manager_see_masked_details(client_of_a, ops_user, branch_manager,
                                                       api_as):
    for user in (ops_user, branch_manager):
        data = api_as(user).get("/api/v1/clients/A0000001/").json()
        assert data["phone"] == "138****5678"
    assert not AuditLog.objects.filter(action=AuditAction.PII_VIEWED).exists()


def test_the_detail_carries_derived_values(rm_a, api_as):
    ClientFactory(client_no="D1", rm=rm_a, branch=rm_a.branch, aum=Decimal("600000"),
                  birth_date=dt.date(1960, 1, 1), risk_expires_on=dt.date(2000, 1, 1),
                  status="dormant")
    data = api_as(rm_a).get("/api/v1/clients/D1/").json()
    assert data["service_level"] == "affluent"
    assert data["age"] >= 66
    assert data["risk_assessment_expired"] is True
    assert data["is_dormant"] is True
    assert data["score"] is None and data["segments"] == []
    assert data["branch"] == "SH01" and data["rm"] == "rm_a"
    assert "id" not in data


# list: filters, search, pagination, query count ------------------------------------------

@pytest.fixture
def book(ops_user, rm_a, rm_b, branch, other_branch):
    today = dt.date.today()
    return [
        ClientFactory(client_no="L1", name="王芳", rm=rm_a, branch=branch, risk_level="C1",
                      aum=Decimal("100"), phone="13800001111"),
        ClientFactory(client_no="L2", name="王强", rm=rm_a, branch=branch, risk_level="C5",
                      aum=Decimal("6000000"), risk_expires_on=today - dt.timedelta(days=1)),
        ClientFactory(client_no="L3", name="李娜", rm=rm_b, branch=other_branch,
                      risk_level="C3", aum=Decimal("700000"), status="closed"),
    ]


@pytest.mark.parametrize("query, expected", [
    ("search=王", ["L1", "L2"]),
    ("search=L3", ["L3"]),
    ("search=1111", ["L1"]),
    ("risk_level=C5", ["L2"]),
    ("service_level=hnw", ["L2"]),
    ("service_level=affluent", ["L3"]),
    ("status=closed", ["L3"]),
    ("assessment_expired=true", ["L2"]),
    ("rm=rm_b", ["L3"]),
    ("rm=nobody", []),
    ("branch=SH01", ["L1", "L2"]),
    ("branch=SH01&risk_level=C1", ["L1"]),
])
def test_list_filters(query, expected, book, ops_user, api_as):
    response = api_as(ops_user).get(f"/api/v1/clients/?{query}")
    assert response.status_code == 200, response.json()
    assert sorted(c["client_no"] for c in response.json()["results"]) == expected


@pytest.mark.parametrize("query", ["risk_level=C9", "service_level=gold", "status=asleep",
                                   "page_size=abc", "cursor=garbage"])
def test_bad_list_parameters_are_4xx(query, book, ops_user, api_as):
    response = api_as(ops_user).get(f"/api/v1/clients/?{query}")
    if query.startswith("page_size"):
        assert response.status_code == 200  # DRF falls back to the default page size
    else:
        assert_error(response, 400 if "cursor" not in query else 404)


def test_the_cursor_walks_every_client_once(ops_user, api_as):
    ClientFactory.create_batch(7)
    api = api_as(ops_user)
    seen, url = [], "/api/v1/clients/?page_size=3"
    while url:
        page = api.get(url).json()
        assert len(page["results"]) <= 3
        seen += [c["client_no"] for c in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(Client.objects.values_list("client_no", flat=True))
    assert len(seen) == 7


def test_the_client_list_does_not_query_per_row(ops_user, api_as, django_assert_max_num_queries):
    ClientFactory.create_batch(30)
    api = api_as(ops_user)
    api.get("/api/v1/clients/")  # warm the role cache of nothing; tokens are per request
    with django_assert_max_num_queries(4):
        response = api.get("/api/v1/clients/?page_size=30")
    assert len(response.json()["results"]) == 30


# holdings ---------------------------------------------------------------------------------

def test_holdings_read_latest_or_as_of(client_of_a, product, other_product, rm_a, api_as):
    HoldingFactory(client=client_of_a, product=product, as_of=dt.date(2026, 9, 30))
    HoldingFactory(client=client_of_a, product=other_product, as_of=dt.date(2026, 10, 31))
    api = api_as(rm_a)
    latest = api.get("/api/v1/clients/A0000001/holdings/").json()
    assert latest["as_of"] == "2026-10-31"
    assert [h["product_code"] for h in latest["holdings"]] == ["F000002"]
    earlier = api.get("/api/v1/clients/A0000001/holdings/?as_of=2026-09-30").json()
    assert [h["product_code"] for h in earlier["holdings"]] == ["F000001"]
    assert_error(api.get("/api/v1/clients/A0000001/holdings/?as_of=2026-02-30"), 400)


def test_holdings_are_replaced_as_of_a_date(client_of_a, product, other_product, core_system):
    HoldingFactory(client=client_of_a, product=product, as_of=dt.date(2026, 10, 31))
    body = {"as_of": "2026-10-31", "holdings": [
        {"product_code": "F000002", "quantity": "500", "market_value": "501.25"}]}
    response = core_system.put("/api/v1/clients/A0000001/holdings/", body, format="json")
    assert response.status_code == 200, response.json()
    rows = Holding.objects.filter(client=client_of_a, as_of=dt.date(2026, 10, 31))
    assert [(h.product.product_code, h.market_value) for h in rows] == [
        ("F000002", Decimal("501.25"))]
    assert response.json()["holdings"][0]["product_code"] == "F000002"


def test_a_holding_of_an_unknown_product_rejects_all_rows(client_of_a, product, core_system):
    HoldingFactory(client=client_of_a, product=product, as_of=dt.date(2026, 10, 31))
    body = {"as_of": "2026-10-31", "holdings": [
        {"product_code": "F000001", "quantity": "1", "market_value": "1"},
        {"product_code": "NOPE", "quantity": "1", "market_value": "1"}]}
    response = core_system.put("/api/v1/clients/A0000001/holdings/", body, format="json")
    body = assert_error(response, 400)
    assert {"index": 1, "field": "product_code"}.items() <= body["errors"][0].items()
    assert Holding.objects.get(client=client_of_a).quantity == Decimal("1000")


@pytest.mark.parametrize("body", [
    {"holdings": []},
    {"as_of": "2026-02-30", "holdings": []},
    {"as_of": "2026-10-31", "holdings": "F000001"},
    {"as_of": "2026-10-31", "holdings": ["F000001"]},
    {"as_of": "2026-10-31", "holdings": [{"product_code": "F000001", "quantity": "-1",
                                         "market_value": "1"}]},
])
def test_bad_holdings_input_is_a_400(body, client_of_a, product, core_system):
    response = core_system.put("/api/v1/clients/A0000001/holdings/", body, format="json")
    assert_error(response, 400)


def test_an_rm_may_not_replace_holdings(client_of_a, rm_a, api_as):
    response = api_as(rm_a).put("/api/v1/clients/A0000001/holdings/",
                                {"as_of": "2026-10-31", "holdings": []}, format="json")
    assert_error(response, 403)


# transactions -----------------------------------------------------------------------------

def test_bulk_transactions_create_then_update_by_txn_id(client_of_a, product, core_system):
    rows = [txn(i) for i in range(5)]
    response = core_system.post("/api/v1/transactions/bulk/", rows, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"created": 5, "updated": 0, "unchanged": 0}
    rows[0]["amount"] = "99999.00"
    response = core_system.post("/api/v1/transactions/bulk/", [*rows, txn(5)], format="json")
    assert response.json() == {"created": 1, "updated": 1, "unchanged": 4}
    assert Transaction.objects.count() == 6
    assert Transaction.objects.get(txn_id="TX00000000").amount == Decimal("99999.00")
    imports = AuditLog.objects.filter(action=AuditAction.IMPORT, object_type="transactions")
    assert imports.count() == 2


def test_a_batch_with_one_bad_row_writes_nothing(client_of_a, product, core_system):
    rows = [txn(0), txn(1, amount="not money"), txn(2)]
    response = core_system.post("/api/v1/transactions/bulk/", rows, format="json")
    body = assert_error(response, 400)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "amount")]
    assert Transaction.objects.count() == 0


def test_a_batch_naming_an_unknown_client_writes_nothing(client_of_a, product, core_system):
    rows = [txn(0), txn(1, client_no="GHOST")]
    body = assert_error(core_system.post("/api/v1/transactions/bulk/", rows, format="json"), 400)
    assert (1, "client_no") in [(e["index"], e["field"]) for e in body["errors"]]
    assert Transaction.objects.count() == 0


def test_more_than_ten_thousand_rows_is_a_400(core_system):
    rows = [txn(i) for i in range(10_001)]
    assert_error(core_system.post("/api/v1/transactions/bulk/", rows, format="json"), 400)


@pytest.mark.parametrize("raw", ['{"txn_id": "x"}', "[1, 2]", '"rows"', "[", "[[]]"])
def test_a_bulk_body_that_is_not_a_list_of_objects_is_a_400(raw, core_system):
    response = core_system.post("/api/v1/transactions/bulk/", raw,
                                content_type="application/json")
    assert_error(response, 400)


def test_an_rm_may_not_post_transactions(rm_a, api_as):
    assert_error(api_as(rm_a).post("/api/v1/transactions/bulk/", [], format="json"), 403)


def test_a_clients_transactions_are_paginated_newest_first(client_of_a, product, rm_a, api_as):
    now = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    for i in range(5):
        TransactionFactory(txn_id=f"T{i}", client=client_of_a, product=product,
                           traded_at=now + dt.timedelta(days=i))
    TransactionFactory(txn_id="OTHER")  # another client's purchase
    api = api_as(rm_a)
    page = api.get("/api/v1/clients/A0000001/transactions/?page_size=2").json()
    assert [t["txn_id"] for t in page["results"]] == ["T4", "T3"]
    page = api.get(page["next"]).json()
    assert [t["txn_id"] for t in page["results"]] == ["T2", "T1"]
    assert page["results"][0]["product_code"] == "F000001"


# schema and docs -------------------------------------------------------------------------

def test_the_schema_is_a_valid_openapi_3_document(db):
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    try:
        from openapi_spec_validator import validate
    except ImportError:
        from drf_spectacular.validation import validate_schema as validate
    validate(schema)
    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/clients/", "/api/v1/clients/{client_no}/",
                 "/api/v1/clients/{client_no}/holdings/", "/api/v1/transactions/bulk/",
                 "/api/v1/products/{product_code}/", "/api/v1/branches/{code}/"):
        assert path in schema["paths"], path
    assert "id" not in schema["components"]["schemas"]["ClientDetailOutput"]["properties"]


def test_the_docs_page_uses_only_local_assets(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)""", html)
    assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))]
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


def test_a_product_is_not_addressed_by_internal_id(core_system):
    ProductFactory(product_code="ZZ1")
    pk = Product.objects.get(product_code="ZZ1").pk
    assert_error(core_system.get(f"/api/v1/products/{pk}/"), 404)
