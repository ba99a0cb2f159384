"""Cash flows through the import engine: the upload page, the import job, the command and the
example file share the rules of the bulk API (one engine, clients.ingest)."""

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from clients.ingest import IngestRejected, ingest_frame, read_table
from clients.models import CashFlow, Client, ImportJob, ImportKind, JobStatus
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db

HEADER = "flow_id,client_no,at,amount,kind\n"
GOOD = (HEADER
        + "CF1,K0000001,2026-10-09 09:45:00,200000.00,deposit\n"
        + "CF2,K0000001,2026/10/12 14:00,-3000,withdrawal\n"
        + "CF3,K0000002,2026-10-12,-150.5,transfer\n")


@pytest.fixture(autouse=True)
def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def known_clients(branch):
    return [ClientFactory(client_no=f"K000000{i}", branch=branch) for i in (1, 2)]


def frame(text: str):
    return read_table(path_or_file=io.BytesIO(text.encode("utf-8")), filename="flows.csv")


def upload(browser, text: str, *, name: str = "flows.csv"):
    data = SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")
    return browser.post(reverse("imports:import_list"),
                        {"kind": ImportKind.CASH_FLOWS, "file": data})


# the engine --------------------------------------------------------------------------------

def test_a_cash_flows_file_imports_in_beijing_time_and_funds_the_account(known_clients):
    result = ingest_frame(kind="cash_flows", frame=frame(GOOD))

    assert (result.created, result.updated, result.rows) == (3, 0, 3)
    rows = {f.flow_id: (f.client.client_no, f.at, f.amount, f.kind)
            for f in CashFlow.objects.select_related("client")}
    assert rows == {
        "CF1": ("K0000001", dt.datetime(2026, 10, 9, 1, 45, tzinfo=dt.UTC),
                Decimal("200000.00"), "deposit"),
        "CF2": ("K0000001", dt.datetime(2026, 10, 12, 6, 0, tzinfo=dt.UTC),
                Decimal("-3000.00"), "withdrawal"),
        "CF3": ("K0000002", dt.datetime(2026, 10, 11, 16, 0, tzinfo=dt.UTC),
                Decimal("-150.50"), "transfer"),
    }
    funded = dict(Client.objects.values_list("client_no", "first_funded_on"))
    assert funded == {"K0000001": dt.date(2026, 10, 9), "K0000002": None}


def test_importing_the_same_file_twice_changes_nothing(known_clients):
    ingest_frame(kind="cash_flows", frame=frame(GOOD))
    before = list(CashFlow.objects.order_by("flow_id").values())

    again = ingest_frame(kind="cash_flows", frame=frame(GOOD))

    assert (again.created, again.updated) == (0, 0)
    assert list(CashFlow.objects.order_by("flow_id").values()) == before


def test_a_changed_row_updates_its_flow(known_clients):
    ingest_frame(kind="cash_flows", frame=frame(GOOD))

    result = ingest_frame(kind="cash_flows",
                          frame=frame(HEADER + "CF2,K0000001,2026-10-12 14:00,-3500,withdrawal\n"))

    assert (result.created, result.updated) == (0, 1)
    assert CashFlow.objects.get(flow_id="CF2").amount == Decimal("-3500.00")


@pytest.mark.parametrize(("row", "column"), [
    ("CF9,NOBODY,2026-10-09,100,deposit", "client_no"),
    ("CF9,K0000001,2026-10-09,100,bonus", "kind"),
    ("CF9,K0000001,2026-10-09,0,transfer", "amount"),
    ("CF9,K0000001,2026-10-09,-100,deposit", "amount"),
    ("CF9,K0000001,2026-10-09,100,withdrawal", "amount"),
    ("CF9,K0000001,2026-10-09,¥100,deposit", "amount"),
    ("CF9,K0000001,09/10/2026,100,deposit", "at"),
    ("CF1,K0000001,2026-10-09,100,deposit", "flow_id"),
])
def test_a_bad_row_rejects_the_whole_file_naming_line_and_column(known_clients, row, column):
    text = GOOD + row + "\n"

    with pytest.raises(IngestRejected) as caught:
        ingest_frame(kind="cash_flows", frame=frame(text))

    assert CashFlow.objects.count() == 0
    assert Client.objects.filter(first_funded_on__isnull=False).count() == 0
    found = {(e.row, e.column) for e in caught.value.errors}
    assert (5, column) in found
    if column == "flow_id":  # a duplicate key names every line it is on
        assert found == {(2, "flow_id"), (5, "flow_id")}
    else:
        assert found == {(5, column)}


def test_a_sign_error_is_reported_once_per_row(known_clients):
    text = HEADER + "CF9,K0000001,2026-10-09,-abc,deposit\nCF8,K0000001,bad,-5,deposit\n"

    with pytest.raises(IngestRejected) as caught:
        ingest_frame(kind="cash_flows", frame=frame(text))

    assert [(e.row, e.column) for e in caught.value.errors] == [
        (2, "amount"), (3, "at"), (3, "amount")]


def test_an_xlsx_file_of_cash_flows_imports_like_a_csv(known_clients):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["flow_id", "client_no", "at", "amount", "kind"])
    sheet.append(["CF1", "K0000001", dt.datetime(2026, 10, 9, 9, 45), 200000, "deposit"])
    sheet.append(["CF2", "K0000002", dt.datetime(2026, 10, 10, 10, 0), -5000.5, "withdrawal"])
    buffer = io.BytesIO()
    book.save(buffer)

    table = read_table(path_or_file=io.BytesIO(buffer.getvalue()), filename="flows.xlsx")
    result = ingest_frame(kind="cash_flows", frame=table)

    assert result.created == 2
    assert CashFlow.objects.get(flow_id="CF2").amount == Decimal("-5000.50")
    assert Client.objects.get(client_no="K0000001").first_funded_on == dt.date(2026, 10, 9)


# the pages and the command -----------------------------------------------------------------

def test_ops_import_a_cash_flows_file_through_the_upload_page(
        known_clients, ops_user, logged_in, django_capture_on_commit_callbacks):
    browser = logged_in(ops_user)

    assert "Cash flows" in browser.get(reverse("imports:import_list")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(browser, GOOD)

    job = ImportJob.objects.get()
    assert (job.kind, job.status, job.rows_created) == ("cash_flows", JobStatus.SUCCEEDED, 3)
    assert CashFlow.objects.count() == 3
    assert "3 created" in browser.get(response["Location"]).content.decode()


def test_a_rejected_cash_flows_file_fails_its_job_and_writes_nothing(
        known_clients, ops_user, logged_in, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(logged_in(ops_user), GOOD + "CF9,K0000001,2026-10-09,-1,deposit\n")

    job = ImportJob.objects.get()
    assert job.status == JobStatus.FAILED and job.error_count == 1
    assert job.errors[0]["row"] == 5 and job.errors[0]["column"] == "amount"
    assert CashFlow.objects.count() == 0


def test_the_cash_flows_example_file_imports_cleanly(ops_user, logged_in, branch):
    ClientFactory(client_no="C00000001", branch=branch)
    response = logged_in(ops_user).get(reverse("imports:import_template", args=["cash_flows"]))
    text = response.content.decode("utf-8-sig")

    result = ingest_frame(kind="cash_flows", frame=frame(text))

    assert text.splitlines()[0] == "flow_id,client_no,at,amount,kind"
    assert result.created == 1


def test_the_import_command_takes_cash_flows(tmp_path, known_clients, capsys):
    path = tmp_path / "flows.csv"
    path.write_text(GOOD, encoding="utf-8")

    call_command("import_data", "cash_flows", str(path))

    assert "3 created" in capsys.readouterr().out
    assert CashFlow.objects.count() == 3
