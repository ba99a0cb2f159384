"""`make run`'s background worker with embedded beat (a filesystem broker, SQLite, no Redis)
fires scheduled work: a due scheduled edition of the demo goes out without anyone acting."""

import os
import subprocess
import sys
import time

from django.conf import settings

from core.management.commands.run_demo import demo_worker_command


def _demo_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "EMAIL_URL")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local",
               DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
               DEMO_BROKER_DIR=str(tmp_path / "celery"),
               EMAIL_FILE_PATH=str(tmp_path / "outbox"),
               MEDIA_ROOT=str(tmp_path / "media"))
    return env


def _manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=settings.BASE_DIR,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _edition_status(env) -> str:
    return _manage("shell", "-c", "from newsletters.models import Edition; "
                   "print(Edition.objects.get(pk=EDITION).status)".replace(
                       "EDITION", env["DEMO_EDITION"]), env=env)


def test_the_demo_worker_with_beat_sends_a_scheduled_edition_once_it_is_due(tmp_path):
    env = _demo_env(tmp_path)
    _manage("migrate", "--noinput", "-v0", env=env)
    _manage("demo_setup", "--clients", "300", env=env)
    env["DEMO_EDITION"] = _manage("shell", "-c", (
        "from datetime import timedelta; from django.utils import timezone; "
        "from newsletters.models import Edition; "
        "e = Edition.objects.get(status='scheduled'); "
        "due = timezone.now() - timedelta(seconds=5); "
        "Edition.objects.filter(pk=e.pk).update(scheduled_at=due); "
        "print(e.pk)"), env=env)
    sent_before = len(list((tmp_path / "outbox").glob("*.eml")))

    worker = subprocess.Popen(demo_worker_command(), env=dict(env, DEMO_BROKER="filesystem"),
                              cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        status = "scheduled"
        for _ in range(90):  # beat's every-minute job: the first tick comes within a minute
            status = _edition_status(env)
            if status == "sent":
                break
            time.sleep(2)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    assert status == "sent"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) > sent_before
