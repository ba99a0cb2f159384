"""A refresh of the rollups through a real Celery worker (Redis + PostgreSQL) gives the tables of
an in-process one; an import that succeeds and a scoring run queue one refresh, not one each."""

import pytest

from analytics.models import AnalyticsRefresh
from analytics.services import refresh_after_event, refresh_run, refresh_start
from clients.scoring.signals import scoring_run_succeeded
from clients.signals import import_succeeded
from tests.analytics import test_metrics as fixed
from tests.analytics.test_metrics import snapshot
from tests.worker import running_worker, wait_for

book, d = fixed.book, fixed.d  # the fixed book's fixtures


@pytest.fixture
def committed_book(transactional_db, book):  
    return book


def test_a_worker_refresh_matches_an_in_process_one(committed_book, settings):
    settings.ANALYTICS_REFRESH_CHUNK = 2
    eager = refresh_start(full=True, queue=False)
    refresh_run(refresh_id=eager.pk)
    expected = snapshot()
    with running_worker(extra_env={"ANALYTICS_REFRESH_CHUNK": "2"}):
        queued = refresh_start(full=True, trigger="test")  # queued on commit (autocommit)
        wait_for(lambda: AnalyticsRefresh.objects.filter(pk=queued.pk,
                                                         status="succeeded").exists(),
                 timeout=90)
    queued.refresh_from_db()
    assert queued.progress_done == queued.progress_total >= 3
    assert snapshot() == expected


def test_events_queue_one_refresh_at_a_time(book,
                                            django_capture_on_commit_callbacks):
    assert "analytics_refresh_after_import" in uids(import_succeeded)
    assert "analytics_refresh_after_scoring" in uids(scoring_run_succeeded)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        import_succeeded.send(sender=None, job=None, trigger="import")
        import_succeeded.send(sender=None, job=None, trigger="import")
        refresh_after_event(trigger="scoring")
    assert AnalyticsRefresh.objects.filter(status="queued").count() == 1
    assert len(queued) == 1
    assert AnalyticsRefresh.objects.count() == 1


def uids(signal) -> set:
    return {key[0] for key, *_rest in signal.receivers}


def test_an_import_that_succeeds_brings_the_figures_up_to_date(
        book, tmp_path, django_capture_on_commit_callbacks):
    from django.core.management import call_command

    from analytics.models import ClientFunnel
    from analytics.services import refresh_run as run

    run(refresh_id=refresh_start(full=True, queue=False).pk)
    assert ClientFunnel.objects.get(client_id=book["A3"].pk).first_funded_on is None
    path = tmp_path / "flows.csv"
    path.write_text("flow_id,client_no,at,amount,kind\nCFX1,A3,2026-10-09,1000,deposit\n",
                    encoding="utf-8")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_data", "cash_flows", str(path))
    latest = AnalyticsRefresh.objects.order_by("-created_at").first()
    assert (latest.trigger, latest.kind, latest.status) == ("import", "incremental", "succeeded")
    assert latest.touched == 1
    funnel = ClientFunnel.objects.get(client_id=book["A3"].pk)
    assert funnel.first_funded_on is not None
