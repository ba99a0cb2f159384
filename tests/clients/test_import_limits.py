"""Import limits: a file past them is refused before it is parsed, a stopped import is failed
with its reason and never run again, and every Celery task has a time limit.

The bombs are crafted here as real .xlsx files -- small on disk, a sheet padded to column XFD
or declaring A1:XFD… -- and `pandas.read_excel` is replaced by a tripwire in the in-process
tests, so a refusal that came too late fails at once instead of hanging the run.
"""

import io
import os
import signal
import zipfile
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import pandas
import psycopg2
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse
from django.utils import translation

from clients import import_services
from clients.import_services import (
    import_job_create,
    import_job_run,
    import_stopped_message,
    import_too_long_message,
)
from clients.ingest import read_table
from clients.models import ImportJob, JobStatus, Product
from clients.tasks import import_job_run_task
from config.celery import app as celery_app
from core.errors import ApplicationError
from tests.factories import ProductFactory
from tests.worker import running_worker, wait_for

# xlsx files written part by part -------------------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
        'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
        'worksheet+xml"/></Types>'),
    "_rels/.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (
        f'<workbook xmlns="{_MAIN}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets>'
        '</workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
}
PRODUCT_HEADER = ("product_code", "name", "product_type", "risk_level")


def xlsx(rows, *, dimension: str | None = None, padding: int = 0, extra_parts: int = 0) -> bytes:
    """An .xlsx whose one sheet holds `rows` (bytes of <row> elements, streamed into the zip),
    after `padding` bytes of whitespace (a zip bomb: deflate packs them ~1000:1)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in _PARTS.items():
            archive.writestr(name, text)
        for n in range(extra_parts):
            archive.writestr(f"customXml/item{n}.xml", "<a/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(f'<worksheet xmlns="{_MAIN}">'.encode())
            if dimension:
                sheet.write(f'<dimension ref="{dimension}"/>'.encode())
            block = b" " * 2**20
            for _ in range(padding // len(block)):
                sheet.write(block)
            sheet.write(b"<sheetData>")
            for row in rows:
                sheet.write(row)
            sheet.write(b"</sheetData></worksheet>")
    return buffer.getvalue()


def cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def product_row(number: int, values=None, *, pad_to: str | None = None) -> bytes:
    """A row of the products sheet; `pad_to="XFD"` adds the styled empty cell at the far right
    that a sheet formatted out to the last column carries in every row."""
    values = values or (f"X{number:06d}", "稳健债券", "fund", "R2")
    cells = "".join(cell(f"{letter}{number}", v) for letter, v in zip("ABCD", values, strict=False))
    padding = f'<c r="{pad_to}{number}" s="1"/>' if pad_to else ""
    return f'<row r="{number}">{cells}{padding}</row>'.encode()


def padded_products(rows: int, *, dimension: str | None = None) -> bytes:
    """The reported file: every row padded to column XFD, under 2 MB on disk; read as pandas
    reads it, every row would be 16,384 cells wide (rows x 16,384 values in memory)."""
    return xlsx((product_row(n, PRODUCT_HEADER if n == 1 else None, pad_to="XFD")
                 for n in range(1, rows + 2)), dimension=dimension)


def good_products() -> bytes:
    good = ("G00001", "好产品", "fund", "R3")
    return xlsx([product_row(1, PRODUCT_HEADER), product_row(2, good)], dimension="A1:D2")


@pytest.fixture
def no_parsing(monkeypatch):
    """A tripwire: a file refused too late would reach pandas (and could run for ever)."""

    def tripwire(*args, **kwargs):
        raise AssertionError("the file reached pandas.read_excel")

    monkeypatch.setattr(pandas, "read_excel", tripwire)


@pytest.fixture
def english():
    with translation.override("en"):
        yield


def run_import(data: bytes, name: str = "products.xlsx", kind: str = "products") -> ImportJob:
    job = import_job_create(kind=kind, file=SimpleUploadedFile(name, data), queue=False)
    return import_job_run(job_id=job.pk)


def refused(data: bytes, name: str = "products.xlsx", kind: str = "products") -> str:
    """The message of a file refused as a whole: the job failed, nothing written."""
    job = run_import(data, name, kind)
    assert job.status == JobStatus.FAILED
    assert (job.error_count, job.errors, job.rows_total) == (0, [], 0)
    assert not Product.objects.exists()
    return job.message


# xlsx bombs ----------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("dimension", [None, "A1:D3", "A1:XFD60001"])
def test_a_sheet_padded_to_column_xfd_is_refused_before_it_is_parsed(
        english, no_parsing, dimension):
    data = padded_products(60_000, dimension=dimension)
    assert len(data) < 2 * 2**20

    message = refused(data)

    if dimension == "A1:XFD60001":  # refused on the declaration, the first bytes of the sheet
        assert message == (
            "Sheet “Sheet1”: Its declared range A1:XFD60001 spans 16,384 columns and 60,001 "
            "rows; at most 100 columns and 2,000,000 rows can be imported. Delete the empty "
            "rows and columns (or save the data as CSV) and upload it again.")
    else:  # no declaration, or one that lies: refused at the first padded row
        assert message == (
            "Sheet “Sheet1”: Row 1 has 16,384 columns; at most 100 can be imported. Delete "
            "the empty columns on the right (or save the data as CSV) and upload it again.")


def test_a_refusal_is_an_application_error_with_a_code(no_parsing):
    with pytest.raises(ApplicationError) as caught:
        read_table(path_or_file=io.BytesIO(padded_products(10)), filename="p.xlsx")

    assert caught.value.code == "too_many_columns"


@pytest.mark.django_db
@pytest.mark.parametrize("rows, message", [
    # a row of cells without references: their columns count on from the row's start
    ([b'<row r="1">' + b"<c/>" * 20_000 + b"</row>"],
     "Sheet “Sheet1”: Row 1 has 101 columns; at most 100 can be imported."),
    # one cell far to the right, as the only cell of its row
    ([product_row(1, PRODUCT_HEADER), b'<row r="2"><c r="AMJ2"><v>1</v></c></row>'],
     "Sheet “Sheet1”: Row 2 has 1,024 columns; at most 100 can be imported."),
    # a row numbered far down: pandas would read every row up to it
    ([product_row(1, PRODUCT_HEADER), product_row(5_000_000)],
     "Sheet “Sheet1”: The file has more than 2,000,000 rows;"),
    # a row inside a row: openpyxl reads both, and the inner one as a cell of the outer
    ([b'<row r="1"><c r="A1"/>' + b'<row r="2"/>' * 150 + b"</row>"],
     "Sheet “Sheet1”: Row 1 has 101 columns;"),
])
def test_sheets_that_lie_about_their_extent_are_refused_by_what_they_hold(
        english, no_parsing, rows, message):
    assert refused(xlsx(rows)).startswith(message)


@pytest.mark.django_db
def test_a_zip_bomb_is_refused_from_the_zip_directory_before_anything_is_unpacked(
        english, no_parsing):
    data = xlsx([product_row(1, PRODUCT_HEADER)], padding=300 * 2**20)
    assert len(data) < 2**20

    assert refused(data) == (
        "The .xlsx file unpacks to 301 MB; at most 200 MB can be imported. Delete the empty rows "
        "and columns, split the file, or save the data as CSV.")


@pytest.mark.django_db
def test_an_xlsx_of_too_many_parts_is_refused(english, no_parsing):
    assert refused(xlsx([product_row(1, PRODUCT_HEADER)], extra_parts=1_000)) == (
        "The .xlsx file holds 1,005 parts; at most 1,000 are allowed. Save the data as CSV and "
        "upload that.")


@pytest.mark.django_db
def test_rows_past_import_max_rows_are_refused_in_xlsx_and_csv(english, no_parsing, settings):
    settings.IMPORT_MAX_ROWS = 3
    expected = "The file has more than 3 rows; at most 3 can be imported at once."
    sheet = xlsx(product_row(n, PRODUCT_HEADER if n == 1 else None) for n in range(1, 6))
    csv = "product_code,name,product_type,risk_level\n" + "P1,n,fund,R2\n" * 4

    assert refused(sheet).startswith("Sheet “Sheet1”: " + expected)
    assert refused(csv.encode(), "products.csv").startswith(expected)


@pytest.mark.django_db
def test_a_normal_xlsx_still_imports(english):
    crafted = run_import(good_products())
    book = openpyxl.Workbook()
    book.active.append(list(PRODUCT_HEADER))
    book.active.append(["G00002", "成长股票基金", "fund", "R4"])
    saved = io.BytesIO()
    book.save(saved)
    by_openpyxl = run_import(saved.getvalue())

    assert (crafted.status, by_openpyxl.status) == (JobStatus.SUCCEEDED, JobStatus.SUCCEEDED)
    assert dict(Product.objects.values_list("product_code", "risk_level")) == {
        "G00001": "R3", "G00002": "R4"}


# csv -----------------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("text, message", [
    # the header of a sheet padded to XFD, saved as CSV: every line 16,384 fields
    ("product_code,name,product_type,risk_level" + "," * 16_380 + "\n"
     + "P1,n,fund,R2" + "," * 16_380 + "\n", "Row 1 has 16,384 columns;"),
    # a first data row pandas would turn into 20,000 index levels
    ("product_code,name,product_type,risk_level\n" + "x," * 20_000 + "\n",
     "Row 2 has 20,001 columns;"),
    # counted as CSV is read: quoted commas and line breaks stay in their field (3 + 100 empty)
    ('"a,b",c,"d\ne"' + "," * 100 + "\n", "Row 1 has 103 columns;"),
])
def test_a_csv_line_of_too_many_fields_is_refused(english, text, message):
    assert refused(text.encode("utf-8"), "products.csv").startswith(message)


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_a_csv_cell_of_absurd_length_is_refused_without_echoing_it(english, encoding):
    text = ("product_code,name,product_type,risk_level\nP1,稳健,fund,R2\n"
            "P2," + "长" * 40_000 + ",fund,R2\n")

    message = refused(text.encode(encoding), "products.csv")

    assert message == "Row 3, column name holds 40,000 characters; at most 32,767 fit in one cell."


def test_a_csv_within_the_limits_reads_as_before():
    text = '"a,b",c\n"1,2",3\n'

    frame = read_table(path_or_file=io.BytesIO(text.encode()), filename="f.csv")

    assert list(frame.columns) == ["a,b", "c"] and frame.iloc[0].tolist() == ["1,2", "3"]


# where the refusal shows ---------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("language, expected", [
    ("en", "Sheet “Sheet1”: Row 1 has 16,384 columns; at most 100 can be imported."),
    ("zh-hans", "工作表“Sheet1”：第 1 行有 16,384 列，最多只能导入 100 列。"),
])
def test_the_import_page_shows_the_refusal_in_the_users_language(
        ops_user, client, no_parsing, django_capture_on_commit_callbacks, language, expected):
    client.force_login(ops_user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    upload = SimpleUploadedFile("products.xlsx", padded_products(2_000))

    with translation.override(language):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("imports:import_list"),
                                   {"kind": "products", "file": upload})
        page = client.get(response["Location"]).content.decode()

    job = ImportJob.objects.get()
    assert job.status == JobStatus.FAILED and not Product.objects.exists()
    assert 'data-status="failed"' in page and expected in page


@pytest.mark.django_db
def test_the_command_prints_the_refusal_and_exits_non_zero(english, no_parsing, tmp_path,
                                                           capsys):
    path = tmp_path / "products.xlsx"
    path.write_bytes(padded_products(2_000, dimension="A1:XFD2001"))

    with pytest.raises(CommandError) as caught:
        call_command("import_data", "products", str(path))

    assert caught.value.returncode == 1
    assert "Its declared range A1:XFD2001 spans 16,384 columns" in capsys.readouterr().err
    assert not Product.objects.exists()


# stopped imports -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_soft_time_limit_fails_the_import_with_the_limit(english, monkeypatch):
    def slow(**kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(import_services, "read_table", slow)

    job = run_import(good_products())

    assert job.status == JobStatus.FAILED and not Product.objects.exists()
    assert job.message == (
        f"The file took too long to read and import (limit: {settings.CELERY_TASK_SOFT_TIME_LIMIT}"
        " s) and was stopped; nothing was imported. Split it into smaller files.")


@pytest.mark.django_db
@pytest.mark.parametrize("status", [JobStatus.RUNNING, JobStatus.FAILED, JobStatus.SUCCEEDED])
def test_a_job_that_is_not_queued_is_never_read_again(english, monkeypatch, status):
    job = import_job_create(kind="products", file=SimpleUploadedFile("p.xlsx", good_products()),
                            queue=False)
    ImportJob.objects.filter(pk=job.pk).update(status=status, message="before")
    monkeypatch.setattr(import_services, "read_table", pytest.fail)

    import_job_run_task.delay(job.pk)  # eager: the task as a worker runs it

    job.refresh_from_db()
    if status == JobStatus.RUNNING:
        assert job.status == JobStatus.FAILED and job.message == import_stopped_message()
        assert job.finished_at is not None
    else:
        assert (job.status, job.message) == (status, "before")
    assert not Product.objects.exists()



@pytest.mark.django_db
def test_a_job_deleted_since_it_was_queued_is_left_alone():
    assert import_job_run_task.delay(987_654).get() is None

# Celery --------------------------------------------------------------------------------------

def test_every_task_has_a_soft_and_a_hard_time_limit_below_the_visibility_timeout():
    celery_app.loader.import_default_modules()
    tasks = {name: task for name, task in celery_app.tasks.items()
             if not name.startswith("celery.")}
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]

    assert len(tasks) >= 12
    for name, task in tasks.items():
        soft, hard = task.soft_time_limit, task.time_limit
        assert soft and hard, f"{name} has no time limit"
        assert 0 < soft < hard < visibility, name
    long = {name for name, task in tasks.items()
            if task.time_limit > settings.CELERY_TASK_TIME_LIMIT}
    assert long == {"clients.scoring.tasks.scoring_aggregate_task",
                    "clients.scoring.tasks.scoring_chunk_task",
                    "segments.tasks.segment_refresh_many_task",
                    "segments.tasks.segment_refresh_task",
                    "newsletters.tasks.edition_dispatch_task"}


# with a real worker --------------------------------------------------------------------------

PRODUCTS_CSV = ("product_code,name,product_type,risk_level\n"
                "QP001,稳健债券1号,fixed_income,R2\nQP002,沪深300指数基金,fund,R3\n").encode()


def queued(name: str, data: bytes, **kwargs) -> ImportJob:
    return import_job_create(kind="products", file=SimpleUploadedFile(name, data), **kwargs)


def finished(job: ImportJob, timeout: float = 60) -> ImportJob:
    return wait_for(lambda: ImportJob.objects.filter(
        pk=job.pk, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED]).first(), timeout=timeout)


def in_worker_language(make_message, *args) -> str:
    """A worker has no request: its messages are in settings.LANGUAGE_CODE (zh-hans)."""
    with translation.override(settings.LANGUAGE_CODE):
        return make_message(*args)


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_no_import_that_is_already_running_or_failed_when_it_comes_again():
    running = queued("running.csv", PRODUCTS_CSV, queue=False)
    failed = queued("failed.csv", PRODUCTS_CSV, queue=False)
    ImportJob.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING)
    ImportJob.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED, message="rejected")
    sentinel = "product_code,name,product_type,risk_level\nQP009,哨兵,fund,R1\n".encode()

    with running_worker():
        import_job_run_task.delay(running.pk)
        import_job_run_task.delay(failed.pk)
        last = finished(queued("sentinel.csv", sentinel))  # one process: the others ran first

    assert last.status == JobStatus.SUCCEEDED
    running.refresh_from_db()
    failed.refresh_from_db()
    assert running.status == JobStatus.FAILED
    assert running.message == in_worker_language(import_stopped_message)
    assert (failed.status, failed.message, failed.finished_at) == (
        JobStatus.FAILED, "rejected", None)
    assert list(Product.objects.values_list("product_code", flat=True)) == ["QP009"]


def _writes_settled() -> bool:
    """No backend (of a killed pool process) is still inside a statement of this database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND state = 'active' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0] == 0


@contextmanager
def product_held(product_code: str):
    """The product's row locked by another connection, so an import writing it waits (in
    PostgreSQL, where no signal reaches Python); on leaving, let go and wait until no backend
    of a killed process is still writing."""
    db = connection.settings_dict
    blocker = psycopg2.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"],
                               host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432)
    try:
        with blocker.cursor() as cursor:
            cursor.execute("SELECT id FROM clients_product WHERE product_code = %s FOR UPDATE",
                           [product_code])
        yield
        blocker.rollback()
        wait_for(_writes_settled, timeout=30)
    finally:
        blocker.close()


@pytest.mark.django_db(transaction=True)
def test_an_import_whose_worker_process_was_killed_is_failed_not_run_again(ops_user):
    ProductFactory(product_code="QP001", name="旧名", risk_level="R1")
    # QP001 held: the import is caught writing, mid-way, when its process is killed.
    with running_worker(concurrency=1) as worker, product_held("QP001"):
        job = queued("products.csv", PRODUCTS_CSV, user=ops_user)
        wait_for(lambda: ImportJob.objects.filter(pk=job.pk, phase="writing").exists())
        pool = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        os.kill(int(pool[0]), signal.SIGKILL)  # what the OOM killer does
        job = finished(job)

    assert job.status == JobStatus.FAILED
    assert job.message == in_worker_language(import_stopped_message)
    assert dict(Product.objects.values_list("product_code", "name")) == {"QP001": "旧名"}


@pytest.mark.django_db(transaction=True)
def test_the_time_limits_fail_a_slow_import_and_a_stuck_one_with_their_limit(ops_user):
    ProductFactory(product_code="QP001", name="旧名", risk_level="R1")
    # 200,000 rows: seconds of pure-Python parsing on any machine, far past a 1 s soft limit.
    slow = xlsx(product_row(n, PRODUCT_HEADER if n == 1 else None) for n in range(1, 200_002))
    with running_worker():
        # The limits travel in the message: the sender's (web, beat) settings apply.
        slow_job = queued("slow.xlsx", slow, user=ops_user, queue=False)
        import_job_run_task.apply_async((slow_job.pk,), soft_time_limit=1, time_limit=3)
        soft = finished(slow_job)
        # Stuck in a lock wait (C code): the soft limit cannot interrupt it, the hard can.
        with product_held("QP001"):
            stuck_job = queued("stuck.csv", PRODUCTS_CSV, user=ops_user, queue=False)
            import_job_run_task.apply_async((stuck_job.pk,), soft_time_limit=1, time_limit=3)
            hard = finished(stuck_job)

    assert (soft.status, soft.message) == (
        JobStatus.FAILED, in_worker_language(import_too_long_message, 1))
    assert (hard.status, hard.message) == (
        JobStatus.FAILED, in_worker_language(import_too_long_message, 3))
    assert dict(Product.objects.values_list("product_code", "name")) == {"QP001": "旧名"}



def test_a_csv_whose_rows_end_with_an_extra_comma_is_refused_instead_of_shifted(tmp_path):
    """pandas would read the first column as an index and move every value one column left."""
    from clients.ingest.readers import read_table

    path = tmp_path / "clients.csv"
    path.write_text("client_no,name,city\nC1,张三,上海,\nC2,李四,北京,\n", encoding="utf-8")
    with pytest.raises(ApplicationError) as caught:
        read_table(path_or_file=str(path), filename="clients.csv")
    assert caught.value.code == "ragged"


def test_a_csv_with_a_row_as_wide_as_its_header_reads_every_value_in_its_column(tmp_path):
    from clients.ingest.readers import read_table

    path = tmp_path / "clients.csv"
    path.write_text("client_no,name,city\nC1,张三,上海\nC2,,北京\n", encoding="utf-8-sig")
    frame = read_table(path_or_file=str(path), filename="clients.csv")
    assert frame.to_dict("records") == [{"client_no": "C1", "name": "张三", "city": "上海"},
                                        {"client_no": "C2", "name": "", "city": "北京"}]
