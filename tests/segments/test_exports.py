"""Exports of a segment's members: scoped, masked per role, safe in a spreadsheet, audited."""

import csv
import io

import pytest
from django.http import StreamingHttpResponse
from openpyxl import load_workbook

from core.models import AuditAction, AuditLog
from segments.models import Segment
from tests.factories import ClientFactory
from tests.segments.test_segment_pages import refresh

EVIL_NAME = "=cmd|' /C calc'!A0"


@pytest.fixture
def segment_with_evil_members(rm_a, rm_b):
    ClientFactory(client_no="E0000001", name=EVIL_NAME, rm=rm_a, branch=rm_a.branch,
                  phone="+8613812345678", email="zhang@example.com", city="@上海")
    ClientFactory(client_no="E0000002", name="李四", rm=rm_a, branch=rm_a.branch,
                  phone="13900001111", email="li@example.com")
    ClientFactory(client_no="E0000003", name="-王五", rm=rm_b, branch=rm_b.branch,
                  phone="13700002222", email="wang@example.com")
    from segments.services import segment_create

    segment = segment_create(code="export_me", name_en="Export me", kind="rule",
                             rule={"field": "city", "op": "contains", "value": "上海"},
                             refresh=False)
    refresh(segment.code)
    return Segment.objects.get(code="export_me")


def download(web, fmt: str):
    response = web.get(f"/segments/export_me/export/{fmt}/")
    assert response.status_code == 200, response.status_code
    body = (b"".join(response.streaming_content) if isinstance(response, StreamingHttpResponse)
            else response.content)
    return response, body


def csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_csv_is_streamed_with_a_bom_and_neutralised_formulas(logged_in, ops_user,
                                                            segment_with_evil_members):
    response, body = download(logged_in(ops_user), "csv")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"].startswith('attachment; filename="segment-export_me-')
    rows = csv_rows(body)
    by_no = {r[0]: r for r in rows[1:]}
    assert set(by_no) == {"E0000001", "E0000002", "E0000003"}
    assert by_no["E0000001"][1] == "'" + EVIL_NAME
    assert by_no["E0000003"][1] == "'-王五"
    assert by_no["E0000001"][4] == "'@上海"
    assert by_no["E0000001"][2] == "'+86****5678"  # masked for ops, and still neutralised


def test_masking_differs_between_the_own_rm_and_ops(logged_in, ops_user, rm_a,
                                                    segment_with_evil_members):
    _r, ops_body = download(logged_in(ops_user), "csv")
    ops_rows = {r[0]: r for r in csv_rows(ops_body)[1:]}
    assert ops_rows["E0000002"][2:4] == ["139****1111", "l***@example.com"]
    _r, rm_body = download(logged_in(rm_a), "csv")
    rm_rows = {r[0]: r for r in csv_rows(rm_body)[1:]}
    assert set(rm_rows) == {"E0000001", "E0000002"}  # rm_b's client is out of scope
    assert rm_rows["E0000002"][2] == "13900001111" and rm_rows["E0000002"][3] == "li@example.com"
    assert rm_rows["E0000001"][2] == "'+8613812345678"


def test_xlsx_opens_and_has_the_same_rows_as_the_csv(logged_in, ops_user,
                                                     segment_with_evil_members):
    web = logged_in(ops_user)
    _r, csv_body = download(web, "csv")
    response, xlsx_body = download(web, "xlsx")
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(xlsx_body)).active
    xlsx = [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]
    rows = csv_rows(csv_body)
    assert len(xlsx) == len(rows)
    for x, c in zip(xlsx, rows, strict=True):
        assert [f"{v:.2f}" if isinstance(v, int | float) else str(v) for v in x] == c
    assert sheet.cell(row=2, column=2).data_type == "s"  # text, not a formula


def test_every_export_is_audited(logged_in, rm_a, ops_user, segment_with_evil_members):
    download(logged_in(rm_a), "csv")
    download(logged_in(ops_user), "xlsx")
    rows = AuditLog.objects.filter(action=AuditAction.EXPORT, object_type="segment",
                                   object_id="export_me").order_by("id")
    assert [(r.actor, r.detail["format"], r.detail["rows"]) for r in rows] == [
        (rm_a, "csv", 2), (ops_user, "xlsx", 3)]
    assert rows[0].detail["segment"] == "export_me"


def test_branch_managers_export_within_their_branch_and_compliance_may_not_export(
        logged_in, compliance_user, branch_manager, segment_with_evil_members):
    assert logged_in(compliance_user).get("/segments/export_me/export/csv/").status_code == 403
    _r, body = download(logged_in(branch_manager), "csv")
    assert {r[0] for r in csv_rows(body)[1:]} == {"E0000001", "E0000002"}


def test_a_user_without_a_role_cannot_export(logged_in, segment_with_evil_members):
    from tests.factories import UserFactory

    nobody = UserFactory(username="nobody")
    nobody.groups.clear()
    response = logged_in(nobody).get("/segments/export_me/export/csv/")
    assert response.status_code == 403
    assert not AuditLog.objects.filter(action=AuditAction.EXPORT).exists()
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, object_id="export_me")


def test_the_import_error_report_uses_the_same_neutraliser():
    from clients.import_services import error_report_csv
    from clients.ingest import RowError

    body = error_report_csv([RowError(row=2, column="name", value="=1+1", message="bad")])
    assert body.startswith(b"\xef\xbb\xbf") and b"'=1+1" in body
