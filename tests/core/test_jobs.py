"""Imports, scoring runs and segment refreshes are one kind of row: a core.models.Job."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from clients.models import ImportJob
from clients.scoring.models import ScoringRun, ScoringScheme
from core.models import Job, JobStatus, percent_of
from segments.models import Segment, SegmentRefresh

JOB_MODELS = [ImportJob, ScoringRun, SegmentRefresh]


@pytest.mark.parametrize("model", JOB_MODELS)
def test_every_long_job_row_is_a_core_job(model):
    assert issubclass(model, Job)
    assert model.ACTIVE is Job.ACTIVE
    for name in ("status", "progress_done", "progress_total", "created_at", "started_at",
                 "finished_at"):
        assert model._meta.get_field(name).model is model


def test_queued_and_running_are_active_and_finished_jobs_are_not():
    assert set(Job.ACTIVE) == {JobStatus.QUEUED, JobStatus.RUNNING}
    assert [SegmentRefresh(status=s).is_active for s in JobStatus.values] == [
        s in ("queued", "running") for s in JobStatus.values]


@pytest.mark.parametrize("model", JOB_MODELS)
@pytest.mark.parametrize(("status", "done", "total", "percent"), [
    (JobStatus.QUEUED, 0, 0, 0),  # nothing counted yet
    (JobStatus.RUNNING, 1, 3, 33),  # rounded down: never 100 before the end
    (JobStatus.RUNNING, 299, 300, 99),
    (JobStatus.RUNNING, 5, 4, 100),  # a counter past an estimated total stops at 100
    (JobStatus.SUCCEEDED, 0, 0, 100),  # done with nothing to do is done
    (JobStatus.SUCCEEDED, 2, 3, 100),
    (JobStatus.FAILED, 2, 4, 50),  # where it stopped
])
def test_percent_done_is_whole_percent_of_the_progress(model, status, done, total, percent):
    job = model(status=status, progress_done=done, progress_total=total)
    assert job.percent_done == percent


def test_percent_of_nothing_is_zero():
    assert (percent_of(0, 0), percent_of(7, 0), percent_of(1, 8)) == (0, 0, 12)


def test_duration_is_known_once_a_job_has_started_and_finished():
    started = timezone.now()
    job = ScoringRun(started_at=started)
    assert job.duration is None
    job.finished_at = started + dt.timedelta(seconds=2.5)
    assert job.duration == 2.5


def test_an_import_reports_its_outcome_in_message_not_error():
    assert "error" not in {f.name for f in ImportJob._meta.get_fields()}
    assert ImportJob._meta.get_field("message").column == "message"


@pytest.mark.django_db
def test_the_one_active_rule_is_the_database_constraint_too():
    """A second queued refresh of a segment is refused while one runs; a finished one is not."""
    segment = Segment.objects.create(code="jobs_demo", name_zh="演示", name_en="Demo",
                                     kind="rule")
    first = SegmentRefresh.objects.create(segment=segment, status=JobStatus.RUNNING)
    with pytest.raises(IntegrityError), transaction.atomic():
        SegmentRefresh.objects.create(segment=segment)
    first.status = JobStatus.SUCCEEDED
    first.save(update_fields=["status"])
    assert SegmentRefresh.objects.create(segment=segment).is_active


@pytest.mark.django_db
def test_the_scoring_page_never_shows_more_than_100_percent(logged_in, ops_user):
    """Chunks count the clients they find, which can pass the total counted at the start."""
    scheme = ScoringScheme.objects.get(version=1)
    ScoringRun.objects.create(as_of=dt.date(2026, 6, 30), scheme=scheme,
                              status=JobStatus.RUNNING, progress_done=6, progress_total=4)
    html = logged_in(ops_user).get("/scoring/runs/").content.decode()
    assert "pct-100" in html and "pct-150" not in html
