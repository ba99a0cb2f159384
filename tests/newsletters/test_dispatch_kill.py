"""Reliability with a real Celery worker: SIGKILL mid-edition loses nothing and repeats at most
the one message in flight; pause, resume and cancel take effect mid-send."""

import os
import signal
import time

import pytest

from newsletters import dispatch
from newsletters.models import Edition, EditionStatus
from tests.newsletters.test_dispatch import make_audience, make_edition
from tests.newsletters.test_smtp_delivery import (  # noqa: F401 (fixture)
    smtp_sink,
    worker_env,
)
from tests.worker import running_worker, wait_for


@pytest.fixture
def big_edition(transactional_db, rm_a):
    segment, clients, _ = make_audience(size=200, rm=rm_a, excluded={"no_consent": 5})
    edition = make_edition(segment=segment, author=rm_a)
    eligible = {c.email for c in clients[5:]}
    return edition, eligible


def status(edition) -> str:
    return Edition.objects.get(pk=edition.pk).status


def test_a_worker_killed_mid_edition_loses_nothing_and_repeats_at_most_one(
        big_edition, smtp_sink):  # noqa: F811
    edition, eligible = big_edition
    env = worker_env(smtp_sink, NEWSLETTER_RATE_PER_SECOND=20, NEWSLETTER_CHUNK_SIZE=50)
    with running_worker(pool="solo", extra_env=env) as worker:
        queue = worker.args[worker.args.index("-Q") + 1]
        dispatch.edition_dispatch_start(edition=edition, actor=None)
        wait_for(lambda: smtp_sink.count() >= 40, timeout=60, interval=0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    arrived_at_kill = smtp_sink.count()
    assert 40 <= arrived_at_kill < len(eligible)
    assert edition.deliveries.filter(status="sending").exists()

    # What the minute beat does for a dead worker's rows (their claim is stale by then).
    dispatch.deliveries_reclaim_stale(older_than_seconds=0)
    with running_worker(pool="solo", extra_env=env, queue=queue):
        dispatch.editions_due()
        wait_for(lambda: status(edition) == EditionStatus.SENT, timeout=120)

    by_to = smtp_sink.by_recipient()
    assert set(by_to) == eligible
    assert sum(1 for n in by_to.values() if n > 1) <= 1
    assert max(by_to.values()) <= 2
    assert edition.deliveries.filter(status="sent").count() == len(eligible)


def quiet_count(sink, edition, *, still: float = 1.0, timeout: float = 20) -> int:
    """What the sink has counted once the worker has let go: no row claimed and no new message
    for `still` seconds. (A chunk the worker claimed just before the pause committed is still
    sent -- it may start after a moment with no claimed row, so one empty look is not enough.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = sink.count()
        time.sleep(still)
        idle = not edition.deliveries.filter(status="sending").exists()
        if idle and sink.count() == before:
            return before
    raise AssertionError(f"the worker did not let go within {timeout}s")


def test_pause_resume_and_cancel_take_effect_mid_send(big_edition, smtp_sink):  # noqa: F811
    edition, eligible = big_edition
    env = worker_env(smtp_sink, NEWSLETTER_RATE_PER_SECOND=40, NEWSLETTER_CHUNK_SIZE=20)
    with running_worker(extra_env=env):
        dispatch.edition_dispatch_start(edition=edition, actor=None)
        wait_for(lambda: smtp_sink.count() >= 20, timeout=60, interval=0.05)
        dispatch.edition_dispatch_pause(edition=edition)
        paused_at = quiet_count(smtp_sink, edition)
        time.sleep(2)
        assert smtp_sink.count() == paused_at < len(eligible)
        assert status(edition) == EditionStatus.PAUSED

        dispatch.edition_dispatch_resume(edition=edition)
        wait_for(lambda: smtp_sink.count() >= paused_at + 20, timeout=60, interval=0.05)
        dispatch.edition_dispatch_cancel(edition=edition, comment="figures to correct")
        wait_for(lambda: not edition.deliveries.filter(
            status__in=["pending", "sending", "retry"]).exists(), timeout=10)
        cancelled_at = quiet_count(smtp_sink, edition)
        time.sleep(2)
        assert smtp_sink.count() == cancelled_at < len(eligible)

    by_to = smtp_sink.by_recipient()
    assert set(by_to.values()) == {1}
    sent = edition.deliveries.filter(status="sent").count()
    cancelled = edition.deliveries.filter(status="cancelled").count()
    assert sent == len(by_to) and sent + cancelled == len(eligible)
    assert status(edition) == EditionStatus.CANCELLED
