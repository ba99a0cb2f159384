"""Scoring through real Celery workers (Redis + PostgreSQL): same result, and a kill mid-run."""

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg2
import pytest
from django.db import connection

from clients.models import Client, Transaction
from clients.scoring.models import (
    ClientScore,
    CurrentScore,
    ScoringChunk,
    ScoringCurrent,
    ScoringRun,
)
from clients.scoring.services import scoring_run_resume, scoring_run_start
from tests.clients.test_scoring import ensure_scheme_v1
from tests.factories import ProductFactory
from tests.worker import running_worker, wait_for

AS_OF = dt.date(2026, 10, 31)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def book(transactional_db):
    """300 clients with random purchases, written in bulk."""
    ensure_scheme_v1()  # transactional tests flush the rows the data migration seeded
    rng = random.Random(11)
    product = ProductFactory(product_code="W000001")
    clients = Client.objects.bulk_create(
        [Client(client_no=f"W{i:06d}", name=f"客户{i}") for i in range(300)])
    rows = []
    for client in clients:
        for k in range(rng.choice([0, 1, 5, 24, 60])):
            day = AS_OF - dt.timedelta(days=rng.randint(0, 400))
            rows.append(Transaction(
                txn_id=f"W{client.pk}-{k}", client=client, product=product,
                traded_at=dt.datetime(day.year, day.month, day.day, rng.randint(0, 23),
                                      tzinfo=SHANGHAI),
                amount=Decimal(rng.randint(0, 90_000)), revenue=Decimal(rng.randint(0, 9_000))))
    Transaction.objects.bulk_create(rows, batch_size=5000)
    return clients


def scores() -> dict:
    return {row[0]: row[1:] for row in ClientScore.objects.filter(as_of=AS_OF).values_list(
        "client_id", "amount", "purchases", "frequency", "benefit", "recency_days",
        "amount_score", "frequency_score", "benefit_score", "total_score", "tier")}


@pytest.fixture
def eager_result(book):
    """The scores of an uninterrupted in-process run; the tables are emptied afterwards."""
    run = scoring_run_start(as_of=AS_OF, trigger="command", chunk_clients=50)
    run.refresh_from_db()
    assert run.status == "succeeded"
    result = scores()
    ScoringCurrent.objects.all().delete()  # no current scores (CurrentScore is a view)
    ClientScore.objects.all().delete()
    return result


def test_a_run_through_real_workers_gives_the_eager_result(eager_result):
    with running_worker(concurrency=2):
        run = scoring_run_start(as_of=AS_OF, trigger="api", chunk_clients=20)
        wait_for(lambda: ScoringRun.objects.get(pk=run.pk).status == "succeeded", timeout=90)

    run.refresh_from_db()
    assert (run.chunks_done, run.progress_done) == (15, 300)
    assert scores() == eager_result
    assert CurrentScore.objects.filter(as_of=AS_OF).count() == 300


def test_a_worker_killed_mid_run_leaves_a_run_that_resumes_to_the_same_result(eager_result):
    blocker = None
    try:
        with running_worker(pool="solo") as worker:
            db = connection.settings_dict
            blocker = psycopg2.connect(dbname=db["NAME"], user=db["USER"],
                                       password=db["PASSWORD"], host=db["HOST"] or "127.0.0.1",
                                       port=db["PORT"] or 5432)
            run = scoring_run_start(as_of=AS_OF, trigger="api", chunk_clients=10)
            chunks = list(ScoringChunk.objects.filter(run=run).order_by("index"))
            # Hold chunk 12 so the worker is caught inside it, mid-run, when it is killed.
            with blocker.cursor() as cur:
                cur.execute("SELECT id FROM clients_scoringchunk WHERE id = %s FOR UPDATE",
                            [chunks[12].pk])
            wait_for(lambda: ScoringRun.objects.get(pk=run.pk).chunks_done >= 12, timeout=60)
            worker.kill()
            worker.wait(timeout=10)
            blocker.rollback()

        run.refresh_from_db()
        assert run.status == "running" and run.chunks_done == 12 < run.chunk_count == 30

        with running_worker(concurrency=2):
            scoring_run_resume(run=run)
            wait_for(lambda: ScoringRun.objects.get(pk=run.pk).status == "succeeded",
                     timeout=90)
    finally:
        if blocker is not None:
            blocker.close()

    run.refresh_from_db()
    assert (run.chunks_done, run.progress_done) == (30, 300)
    assert ClientScore.objects.filter(as_of=AS_OF).count() == 300
    assert scores() == eager_result
    assert sum(run.tier_counts.values()) == 300
