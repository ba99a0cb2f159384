"""A real Celery worker process against Redis and the test database, for tests of queued work."""

import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from tests.conftest import services_required


def _unavailable(reason: str):
    if services_required():
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@contextmanager
def running_worker(*, concurrency: int = 1, pool: str = "prefork",
                   extra_env: dict | None = None, queue: str | None = None):
    """Start `celery worker` on a private queue; tasks sent inside the block go to it.

    `pool="solo"` runs tasks in the worker process itself, so killing that one process kills
    the task it is running (what the reliability tests need). `extra_env` adds or overrides
    the worker's environment (e.g. EMAIL_URL); `queue` reuses a queue (a worker replacing a
    killed one).
    """
    broker = os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")
    if not broker:
        _unavailable("no REDIS_URL: a real Celery worker needs Redis")
    if connection.vendor != "postgresql":
        _unavailable("a worker process needs a database it can share (PostgreSQL)")
    db = connection.settings_dict
    database_url = (f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
                    f"{db['PORT'] or 5432}/{db['NAME']}")
    queue = queue or f"test-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url,
                "CELERY_BROKER_URL": broker, "CELERY_TASK_ALWAYS_EAGER": "false",
                "CELERY_TASK_DEFAULT_QUEUE": queue})
    env.update(extra_env or {})
    log = open(settings.BASE_DIR / "var" / f"worker-{queue}.log", "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, f"--pool={pool}",
         f"--concurrency={concurrency}", "--loglevel=INFO", "--without-gossip",
         "--without-mingle", "-n", f"{queue}@%h"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    saved = {k: celery_app.conf.get(k) for k in ("task_always_eager", "broker_url",
                                                 "task_default_queue")}
    celery_app.conf.update(task_always_eager=False, broker_url=broker, task_default_queue=queue)
    _drop_broker_connections()
    try:
        yield proc
    finally:
        celery_app.conf.update(saved)
        _drop_broker_connections()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _drop_broker_connections() -> None:
    """Forget pooled broker connections (an eager group makes some) so broker_url applies.

    kombu keeps producer pools in a process-wide registry keyed by connection; closing only the
    app's pool leaves a closed pool there ("Acquire on closed pool"), so reset the registry too.
    """
    from kombu import pools

    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
