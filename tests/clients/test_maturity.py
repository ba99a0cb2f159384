"""Maturity dates of products and of positions (API.md "Scenario data"): through the API and
the import they round-trip, and the client 360 shows when each holding matures."""

import datetime as dt
import io

import pytest

from clients.ingest import IngestRejected, ingest_frame, read_table
from clients.models import Holding, Product
from tests.factories import HoldingFactory, ProductFactory

BOND = {"name": "本公司收益凭证稳利1号", "product_type": "fixed_income", "risk_level": "R2"}


def frame(text: str):
    return read_table(path_or_file=io.BytesIO(text.encode("utf-8")), filename="f.csv")


def put_holdings(api, rows, as_of="2026-10-31"):
    return api.put("/api/v1/clients/A0000001/holdings/", {"as_of": as_of, "holdings": rows},
                   format="json")


# products ----------------------------------------------------------------------------------

def test_a_product_maturity_round_trips_through_the_api(core_system):
    created = core_system.put("/api/v1/products/Q00001/", {**BOND, "maturity_date": "2027-03-15"},
                              format="json")

    assert created.status_code == 201, created.json()
    assert created.json()["maturity_date"] == "2027-03-15"
    assert core_system.get("/api/v1/products/Q00001/").json()["maturity_date"] == "2027-03-15"
    listed = core_system.get("/api/v1/products/").json()["results"]
    assert [p["maturity_date"] for p in listed] == ["2027-03-15"]
    assert Product.objects.get().maturity_date == dt.date(2027, 3, 15)


def test_a_product_put_without_maturity_keeps_it_and_null_clears_it(core_system):
    core_system.put("/api/v1/products/Q00001/", {**BOND, "maturity_date": "2027-03-15"},
                    format="json")

    kept = core_system.put("/api/v1/products/Q00001/", {**BOND, "name": "改名"}, format="json")
    cleared = core_system.put("/api/v1/products/Q00001/", {**BOND, "maturity_date": None},
                              format="json")

    assert kept.status_code == 200 and kept.json()["maturity_date"] == "2027-03-15"
    assert cleared.json()["maturity_date"] is None
    assert Product.objects.get().maturity_date is None


@pytest.mark.parametrize("value", ["2027-02-30", "soon", "0001-01-01", 20270315])
def test_a_bad_product_maturity_is_a_400_naming_the_field(value, core_system):
    response = core_system.put("/api/v1/products/Q00001/", {**BOND, "maturity_date": value},
                               format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["maturity_date"]
    assert not Product.objects.exists()


def test_the_products_import_takes_a_maturity_column(db):
    text = ("product_code,name,product_type,risk_level,maturity_date\n"
            "Q00001,稳利1号,fixed_income,R2,2027/03/15\n"
            "W00001,稳享1号,wealth_management,R3,\n")

    ingest_frame(kind="products", frame=frame(text))

    assert dict(Product.objects.values_list("product_code", "maturity_date")) == {
        "Q00001": dt.date(2027, 3, 15), "W00001": None}


def test_a_products_file_without_the_column_leaves_maturities_alone(db):
    ProductFactory(product_code="Q00001", maturity_date=dt.date(2027, 3, 15))

    ingest_frame(kind="products", frame=frame(
        "product_code,name,product_type,risk_level\nQ00001,稳利1号,fixed_income,R2\n"))

    assert Product.objects.get().maturity_date == dt.date(2027, 3, 15)


# holdings ----------------------------------------------------------------------------------

def test_a_position_maturity_round_trips_through_the_holdings_api(
        client_of_a, product, other_product, core_system):
    rows = [{"product_code": "F000001", "quantity": "10", "market_value": "1000.00",
             "maturity_date": "2026-11-10"},
            {"product_code": "F000002", "quantity": "5", "market_value": "500.00"}]

    response = put_holdings(core_system, rows)

    assert response.status_code == 200, response.json()
    answered = {h["product_code"]: h["maturity_date"] for h in response.json()["holdings"]}
    read = core_system.get("/api/v1/clients/A0000001/holdings/").json()["holdings"]
    assert answered == {"F000001": "2026-11-10", "F000002": None}
    assert {h["product_code"]: h["maturity_date"] for h in read} == answered


def test_a_replace_without_a_maturity_clears_the_positions_old_one(client_of_a, product,
                                                                   core_system):
    HoldingFactory(client=client_of_a, product=product, as_of=dt.date(2026, 10, 31),
                   maturity_date=dt.date(2026, 11, 10))

    put_holdings(core_system, [{"product_code": "F000001", "quantity": "10",
                                "market_value": "1000.00"}])

    assert Holding.objects.get().maturity_date is None


def test_a_bad_position_maturity_names_its_index_and_writes_nothing(client_of_a, product,
                                                                    other_product, core_system):
    rows = [{"product_code": "F000001", "quantity": "1", "market_value": "1",
             "maturity_date": "2026-11-10"},
            {"product_code": "F000002", "quantity": "1", "market_value": "1",
             "maturity_date": "2026-11-31"}]

    response = put_holdings(core_system, rows)

    assert response.status_code == 400
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [
        (1, "maturity_date")]
    assert not Holding.objects.exists()


def test_the_holdings_import_takes_a_maturity_column(client_of_a, product, other_product):
    text = ("client_no,product_code,as_of,quantity,market_value,maturity_date\n"
            "A0000001,F000001,2026-10-31,10,1000,2026-11-10\n"
            "A0000001,F000002,2026-10-31,5,500,\n")

    ingest_frame(kind="holdings", frame=frame(text))

    assert dict(Holding.objects.values_list("product__product_code", "maturity_date")) == {
        "F000001": dt.date(2026, 11, 10), "F000002": None}


def test_a_bad_maturity_in_a_holdings_file_names_the_line(client_of_a, product):
    text = ("client_no,product_code,as_of,quantity,market_value,maturity_date\n"
            "A0000001,F000001,2026-10-31,10,1000,next week\n")

    with pytest.raises(IngestRejected) as caught:
        ingest_frame(kind="holdings", frame=frame(text))

    assert [(e.row, e.column) for e in caught.value.errors] == [(2, "maturity_date")]


# the client 360 ----------------------------------------------------------------------------

def test_the_client_360_shows_each_holdings_maturity_or_its_products(
        client_of_a, product, other_product, rm_a, logged_in):
    Product.objects.filter(pk=other_product.pk).update(maturity_date=dt.date(2027, 1, 20))
    HoldingFactory(client=client_of_a, product=product, maturity_date=dt.date(2026, 11, 10))
    HoldingFactory(client=client_of_a, product=other_product)

    page = logged_in(rm_a).get(f"/clients/{client_of_a.client_no}/").content.decode()

    holdings = page[page.index('id="holdings"'):page.index('id="purchases"')]
    assert "2026-11-10" in holdings and "2027-01-20" in holdings
