"""Settings for bench.dispatch: the product's local settings plus the two Django peers it is
measured against (dev dependencies of bench/ only: bench/requirements.txt). Nothing here is
used by the product."""

from config.settings.local import *  # noqa: F403
from config.settings.local import INSTALLED_APPS, VAR_DIR

INSTALLED_APPS = [*INSTALLED_APPS, "post_office", "mailer"]

# django-post-office, its documented batch settings (the defaults, written out): 100 mails per
# batch, 5 sending threads per process, each thread with its own SMTP connection. LOG_LEVEL 1
# (failures only) spares it one log row per mail: its best case.
POST_OFFICE = {
    "BATCH_SIZE": 100,
    "THREADS_PER_PROCESS": 5,
    "LOG_LEVEL": 1,
    "BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"},
    "MESSAGE_ID_ENABLED": False,
}

# django-mailer: queued rows sent by mailer.engine.send_all() over the SMTP backend.
MAILER_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
MAILER_LOCK_PATH = str(VAR_DIR / "bench-dispatch-mailer")
