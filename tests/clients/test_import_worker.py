"""Imports through the real parts: the page queues on Redis, a separate Celery worker runs it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from clients.import_services import import_job_create
from clients.models import ImportJob, JobStatus, Product
from tests.worker import running_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PRODUCTS_CSV = (
    "product_code,name,product_type,risk_level\n"
    "QP001,稳健债券1号,fixed_income,R2\n"
    "QP002,沪深300指数基金,fund,R3\n"
).encode("utf-8-sig")


def test_a_queued_import_is_run_by_a_separate_celery_worker(ops_user):
    with running_worker():
        job = import_job_create(kind="products", user=ops_user,
                                file=SimpleUploadedFile("products.csv", PRODUCTS_CSV))
        assert job.status == JobStatus.QUEUED
        done = wait_for(lambda: ImportJob.objects.filter(
            pk=job.pk, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED]).first(), timeout=90)
    assert done.status == JobStatus.SUCCEEDED, done.message
    assert (done.rows_created, done.rows_updated) == (2, 0)
    assert set(Product.objects.values_list("product_code", flat=True)) == {"QP001", "QP002"}


def test_a_rejected_file_run_by_the_worker_writes_nothing(ops_user):
    bad = PRODUCTS_CSV + b"QP003,Bad,fixed_income,R9\n"
    with running_worker():
        job = import_job_create(kind="products", user=ops_user,
                                file=SimpleUploadedFile("products.csv", bad))
        done = wait_for(lambda: ImportJob.objects.filter(
            pk=job.pk, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED]).first(), timeout=90)
    assert done.status == JobStatus.FAILED
    assert done.error_count == 1 and done.errors[0]["column"] == "risk_level"
    assert Product.objects.count() == 0
