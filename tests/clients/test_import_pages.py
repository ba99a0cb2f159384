"""The import pages: ops upload a file, watch the job, read the result or download the errors."""

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from clients.models import Client, ImportJob, JobStatus
from core.models import AuditAction, AuditLog

pytestmark = pytest.mark.django_db

GOOD = "client_no,name,risk_level\nW0000001,王五,C2\nW0000002,赵六,C4\n"
BAD = "client_no,name,risk_level\nW0000001,王五,C9\nW0000002,赵六,=HYPERLINK(1)\n"


@pytest.fixture(autouse=True)
def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    with translation.override("en"):
        yield


def upload(browser, text: str, *, name: str = "clients.csv", kind: str = "clients"):
    data = SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")
    return browser.post(reverse("imports:import_list"), {"kind": kind, "file": data})


def test_ops_upload_a_file_and_the_job_page_shows_it_succeeded(
        ops_user, logged_in, django_capture_on_commit_callbacks):
    browser = logged_in(ops_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(browser, GOOD)

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("imports:import_detail", args=[job.pk])
    assert (job.status, job.rows_created, job.created_by) == (JobStatus.SUCCEEDED, 2, ops_user)
    assert Client.objects.count() == 2
    page = browser.get(response["Location"]).content.decode()
    assert "2 created" in page and 'hx-trigger="every 1s"' not in page
    assert AuditLog.objects.filter(action=AuditAction.IMPORT, object_id=str(job.pk)).exists()


def test_a_running_job_polls_its_progress(ops_user, logged_in):
    browser = logged_in(ops_user)
    upload(browser, GOOD)  # on_commit never fires inside the test transaction: stays queued

    job = ImportJob.objects.get()
    partial = browser.get(reverse("imports:import_progress", args=[job.pk])).content.decode()

    assert job.status == JobStatus.QUEUED
    assert 'hx-trigger="every 1s"' in partial and "progress-bar" in partial


def test_a_rejected_file_shows_the_errors_and_offers_a_safe_csv_report(
        ops_user, logged_in, django_capture_on_commit_callbacks):
    browser = logged_in(ops_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(browser, BAD)
    job = ImportJob.objects.get()

    page = browser.get(response["Location"]).content.decode()
    report = browser.get(reverse("imports:import_errors_csv", args=[job.pk]))
    body = b"".join(report.streaming_content)

    assert job.status == JobStatus.FAILED and Client.objects.count() == 0
    assert "Download error report (CSV)" in page and "C9" in page
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert text.splitlines()[0] == "row,column,value,message"
    assert "2,risk_level,C9," in text
    assert "3,risk_level,'=HYPERLINK(1)," in text


def test_a_wrong_extension_is_a_form_error(ops_user, logged_in):
    response = upload(logged_in(ops_user), GOOD, name="clients.txt")

    assert response.status_code == 200
    assert "Only .csv and .xlsx files can be imported." in response.content.decode()
    assert not ImportJob.objects.exists()


def test_an_rm_gets_403_and_the_denial_is_audited(rm_a, logged_in):
    browser = logged_in(rm_a)

    assert browser.get(reverse("imports:import_list")).status_code == 403
    assert upload(browser, GOOD).status_code == 403
    assert not ImportJob.objects.exists()
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=rm_a).count() == 2


def test_the_example_file_has_the_kinds_columns(ops_user, logged_in):
    response = logged_in(ops_user).get(reverse("imports:import_template", args=["holdings"]))

    assert response.content.decode("utf-8-sig").splitlines()[0] == (
        "client_no,product_code,as_of,quantity,market_value,maturity_date")
