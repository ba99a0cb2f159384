"""Developer laptop / `make run`: embedded SQLite and eager Celery unless the env says otherwise."""

from pathlib import Path

from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)

# `make run` sets DEMO_BROKER=filesystem for runserver and its worker (with embedded beat): tasks
# and scheduled work (due editions every minute) then go through files under var/celery/, a
# broker that needs no server. demo_setup and one-off commands run without it: eager.
if env("DEMO_BROKER", default="") == "filesystem" and not CELERY_BROKER_URL:  # noqa: F405
    _celery_dir = Path(env("DEMO_BROKER_DIR", default=str(VAR_DIR / "celery")))  # noqa: F405
    for _sub in ("queue", "processed", "control"):
        (_celery_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
    CELERY_BEAT_SCHEDULE_FILENAME = str(_celery_dir / "beat-schedule")
