"""The import engine: a whole file is validated first; bad files write nothing; upserts by key."""

import io
from decimal import Decimal

import openpyxl
import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from clients.ingest import IngestRejected, RowError, ingest_frame, ingest_records, read_table
from clients.models import Client, Holding, Product, Transaction
from tests.factories import ClientFactory, HoldingFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


CLIENTS_CSV = ("client_no,name,gender,birth_date,phone,branch,rm,risk_level,aum,consent_email\n"
               "N0000001,张三,M,1980-05-17,13812345678,SH01,rm_a,C3,120000.50,是\n"
               "N0000002,李四,F,1990/01/02,,,,C5,,否\n")


def frame(text: str) -> pd.DataFrame:
    return read_table(path_or_file=io.BytesIO(text.encode("utf-8")), filename="f.csv")


def counts() -> tuple[int, int, int, int]:
    return (Client.objects.count(), Product.objects.count(), Holding.objects.count(),
            Transaction.objects.count())


@pytest.fixture
def product():
    return ProductFactory(product_code="P00001", risk_level="R2")


@pytest.fixture
def known_client(rm_a):
    return ClientFactory(client_no="K0000001", rm=rm_a, branch=rm_a.branch)


def rejected(kind: str, text: str) -> list[RowError]:
    before = counts()
    with pytest.raises(IngestRejected) as caught:
        ingest_frame(kind=kind, frame=frame(text))
    assert counts() == before, "a rejected file must write nothing"
    return caught.value.errors


# valid files -------------------------------------------------------------------------------

def test_a_valid_clients_file_creates_the_clients_with_their_references(rm_a):
    result = ingest_frame(kind="clients", frame=frame(CLIENTS_CSV))

    assert (result.created, result.updated, result.rows) == (2, 0, 2)
    zhang = Client.objects.get(client_no="N0000001")
    assert (zhang.name, zhang.rm, zhang.branch.code) == ("张三", rm_a, "SH01")
    assert zhang.phone_tail == "5678" and zhang.consent_email is True
    assert zhang.aum == Decimal("120000.50")
    li = Client.objects.get(client_no="N0000002")
    assert li.birth_date.isoformat() == "1990-01-02" and li.aum == 0 and li.rm is None


def test_importing_the_same_file_twice_creates_nothing_and_changes_nothing(rm_a):
    ingest_frame(kind="clients", frame=frame(CLIENTS_CSV))
    snapshot = list(Client.objects.order_by("client_no").values())

    again = ingest_frame(kind="clients", frame=frame(CLIENTS_CSV))

    assert again.created == 0 and again.updated in (0, 2)
    assert list(Client.objects.order_by("client_no").values()) == snapshot


def test_an_upsert_updates_changed_values_and_leaves_absent_columns_alone(rm_a):
    ingest_frame(kind="clients", frame=frame(CLIENTS_CSV))

    result = ingest_frame(kind="clients", frame=frame("client_no,name\nN0000001,张三丰\n"))

    assert (result.created, result.updated) == (0, 1)
    zhang = Client.objects.get(client_no="N0000001")
    assert zhang.name == "张三丰" and zhang.rm == rm_a and zhang.phone == "13812345678"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_utf8_bom_and_gb18030_files_import_identically(rm_a, encoding):
    data = CLIENTS_CSV.encode(encoding)

    table = read_table(path_or_file=io.BytesIO(data), filename="clients.csv")
    ingest_frame(kind="clients", frame=table)

    assert list(table.columns)[0] == "client_no"
    assert set(Client.objects.values_list("name", flat=True)) == {"张三", "李四"}


def test_an_xlsx_file_imports_like_a_csv(product):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["product_code", "name", "product_type", "risk_level", "is_active"])
    sheet.append(["P00002", "成长股票基金", "fund", "R4", "yes"])
    sheet.append(["P00001", "稳健债券改名", "fixed_income", "R2", "N"])
    buffer = io.BytesIO()
    book.save(buffer)

    table = read_table(path_or_file=io.BytesIO(buffer.getvalue()), filename="p.xlsx")
    result = ingest_frame(kind="products", frame=table)

    assert (result.created, result.updated) == (1, 1)
    assert Product.objects.get(product_code="P00002").risk_level == "R4"
    assert Product.objects.get(product_code="P00001").is_active is False


def test_transactions_import_in_beijing_time_and_update_purchase_dates(known_client, product):
    text = ("txn_id,client_no,product_code,traded_at,amount,revenue,channel\n"
            "T1,K0000001,P00001,2026-10-15 07:30:00,20000,100.5,app\n"
            "T2,K0000001,P00001,20261020,5000,,\n")

    result = ingest_frame(kind="transactions", frame=frame(text))

    assert result.created == 2
    t1 = Transaction.objects.get(txn_id="T1")
    assert t1.traded_at.isoformat() == "2026-10-14T23:30:00+00:00"
    assert t1.revenue == Decimal("100.50") and Transaction.objects.get(txn_id="T2").revenue == 0
    known_client.refresh_from_db()
    assert known_client.last_purchase_on.isoformat() == "2026-10-20"
    assert known_client.first_funded_on.isoformat() == "2026-10-15"
    assert ingest_frame(kind="transactions", frame=frame(text)).created == 0


def test_holdings_upsert_by_day_and_replace_drops_the_clients_other_holdings(known_client,
                                                                             product):
    other = ProductFactory(product_code="P00009")
    HoldingFactory(client=known_client, product=other, as_of="2026-10-31")

    result = ingest_records(kind="holdings", holdings_replace=True, records=[
        {"client_no": "K0000001", "product_code": "P00001", "as_of": "2026-10-31",
         "quantity": "100", "market_value": Decimal("1050.00")}])

    assert (result.created, result.deleted) == (1, 1)
    assert list(Holding.objects.values_list("product__product_code", flat=True)) == ["P00001"]


def test_api_records_report_errors_by_zero_based_index(known_client, product):
    with pytest.raises(IngestRejected) as caught:
        ingest_records(kind="transactions", records=[
            {"txn_id": "A", "client_no": "K0000001", "product_code": "P00001",
             "traded_at": "2026-10-01", "amount": 10},
            {"txn_id": "B", "client_no": "NOPE", "product_code": "P00001",
             "traded_at": "2026-10-01", "amount": 10}])

    assert caught.value.errors == [
        RowError(1, "client_no", "NOPE",
                 "Unknown client_no: no client with this client_no exists.")]
    assert Transaction.objects.count() == 0


# bad files ---------------------------------------------------------------------------------

TXN_HEADER = "txn_id,client_no,product_code,traded_at,amount,revenue,channel\n"
GOOD_TXN = "T1,K0000001,P00001,2026-10-15 10:00:00,100,1,app\n"


@pytest.mark.parametrize("bad_row, column, value, message_start", [
    ("T9,K0000001,P00001,2026-02-30,100,1,app", "traded_at", "2026-02-30", "Not a date"),
    ("T9,K0000001,P00001,2026-10-15,-5,1,app", "amount", "-5", "Must not be negative"),
    ("T9,K0000001,P00001,2026-10-15,abc,1,app", "amount", "abc", "Not a number"),
    ("T9,K0000001,P00001,2026-10-15,100,-1,app", "revenue", "-1", "Must not be negative"),
    ("T9,UNKNOWN,P00001,2026-10-15,100,1,app", "client_no", "UNKNOWN", "Unknown client_no"),
    ("T9,K0000001,PXXXX,2026-10-15,100,1,app", "product_code", "PXXXX", "Unknown product_code"),
    ("T9,K0000001,P00001,2026-10-15,100,1,fax", "channel", "fax", "Unknown value"),
    (",K0000001,P00001,2026-10-15,100,1,app", "txn_id", "", "A value is required"),
    ("T9,K0000001,P00001,,100,1,app", "traded_at", "", "A value is required"),
    ("T" + "9" * 40 + ",K0000001,P00001,2026-10-15,100,1,app", "txn_id", "T" + "9" * 40,
     "Too long"),
])
def test_a_bad_last_row_rejects_the_whole_file(known_client, product, bad_row, column, value,
                                               message_start):
    errors = rejected("transactions", TXN_HEADER + GOOD_TXN * 1 + bad_row + "\n")

    assert len(errors) == 1
    assert (errors[0].row, errors[0].column, errors[0].value) == (3, column, value)
    assert errors[0].message.startswith(message_start)


def test_every_occurrence_of_a_duplicate_key_is_reported(known_client, product):
    errors = rejected("transactions", TXN_HEADER + GOOD_TXN + GOOD_TXN.replace("100", "7")
                      + GOOD_TXN.replace("T1", "T2"))

    assert [(e.row, e.column) for e in errors] == [(2, "txn_id"), (3, "txn_id")]


@pytest.mark.parametrize("text, column, message_start", [
    ("txn_id,client_no,product_code,traded_at,amount,colour\n", "colour", "Unknown column"),
    ("txn_id,client_no,product_code,amount\n", "traded_at", "Required column is missing"),
])
def test_a_wrong_header_names_the_column_on_row_1(text, column, message_start):
    values = ["T1", "K1", "P1", "2026-10-15", "1", "x"][: text.count(",") + 1]
    errors = rejected("transactions", text + ",".join(values) + "\n")

    assert (errors[0].row, errors[0].column) == (1, column)
    assert errors[0].message.startswith(message_start)


@pytest.mark.parametrize("column, value, message_start", [
    ("risk_level", "C9", "Unknown value"),
    ("gender", "X", "Unknown value"),
    ("birth_date", "17/05/1980", "Not a date"),
    ("aum", "-1", "Must not be negative"),
    ("branch", "NOWHERE", "Unknown branch"),
    ("rm", "ghost", "Unknown rm"),
    ("consent_email", "maybe", "Not a yes/no value"),
    ("name", "长" * 101, "Too long"),
])
def test_bad_client_values_are_reported_and_nothing_is_written(rm_a, column, value,
                                                               message_start):
    text = f"client_no,name,{column}\nN1,甲,\nN2,乙,{value}\n" if column != "name" else \
        f"client_no,name\nN1,甲\nN2,{value}\n"

    errors = rejected("clients", text)

    assert [(e.row, e.column, e.value) for e in errors] == [(3, column, value)]
    assert errors[0].message.startswith(message_start)


def test_an_unknown_product_risk_level_is_rejected():
    errors = rejected("products", "product_code,name,product_type,risk_level\nP1,x,fund,C3\n")

    assert [(e.row, e.column, e.value) for e in errors] == [(2, "risk_level", "C3")]


# the command -------------------------------------------------------------------------------

def test_the_command_imports_a_file_and_exits_non_zero_on_rejection(tmp_path, rm_a, capsys):
    good = tmp_path / "clients.csv"
    good.write_text(CLIENTS_CSV, encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("client_no,name,risk_level\nN9,丙,C7\n", encoding="utf-8")

    call_command("import_data", "clients", str(good), "--user", "rm_a")
    with pytest.raises(CommandError) as caught:
        call_command("import_data", "clients", str(bad))

    assert "2 created" in capsys.readouterr().out
    assert caught.value.returncode == 1
    assert not Client.objects.filter(client_no="N9").exists()
