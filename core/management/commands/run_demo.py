"""`manage.py run_demo [addrport]` (what `make run` serves with): runserver plus, in the
background, a Celery worker with embedded beat on the filesystem broker (DEMO_BROKER), so
scheduled editions and every-minute jobs fire in the demo without Redis. The worker stops when
runserver stops."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


def demo_worker_command() -> list[str]:
    """One process: worker (concurrency 1) and beat, reading the database schedule."""
    return [sys.executable, "-m", "celery", "-A", "config", "worker", "-B",
            "--concurrency", "1", "--loglevel", "INFO",
            "--schedule", str(_broker_dir() / "beat-schedule")]


def _broker_dir() -> Path:
    return Path(os.environ.get("DEMO_BROKER_DIR") or settings.VAR_DIR / "celery")


def demo_environment() -> dict[str, str]:
    env = dict(os.environ, DEMO_BROKER="filesystem")
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    return env


class Command(BaseCommand):
    help = ("Serve the demo (runserver) with a background Celery worker and beat on a "
            "filesystem broker; the worker's log is var/celery/worker.log.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, **opts) -> None:
        if settings.CELERY_BROKER_URL and os.environ.get("DEMO_BROKER") != "filesystem":
            self.stderr.write("CELERY_BROKER_URL is set: start your own workers (make stack).")
        log_dir = _broker_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        env = demo_environment()
        with open(log_dir / "worker.log", "ab") as log:
            worker = subprocess.Popen(demo_worker_command(), env=env, stdout=log,
                                      stderr=subprocess.STDOUT, cwd=settings.BASE_DIR)
        self.stdout.write(f"Celery worker + beat started (pid {worker.pid}); "
                          f"log: {log_dir / 'worker.log'}")
        server = subprocess.Popen([sys.executable, "manage.py", "runserver", opts["addrport"]],
                                  env=env, cwd=settings.BASE_DIR)
        try:
            server.wait()
        except KeyboardInterrupt:
            server.send_signal(signal.SIGINT)
            server.wait()
        finally:
            worker.terminate()  # SIGTERM: warm shutdown, the task in hand finishes
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
