"""Test settings: the DATABASE_URL / CELERY_BROKER_URL the environment gives (CI: PostgreSQL)."""

from .base import *  # noqa: F401,F403
from .base import BASE_DIR, EMAIL_URL, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = BASE_DIR / "var" / "test-media"
if not EMAIL_URL:  # a test worker pointed at a real SMTP server (aiosmtpd) keeps SMTP
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Eager in-process Celery unless a test explicitly starts a worker against CELERY_BROKER_URL.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
# API throttling counts in this process's memory, never in a shared Redis (no test may see
# another's or another run's counts). The suite sends all its API calls from one address and a
# handful of users within minutes, so its rates are out of reach; tests/core/test_throttling.py
# sets tiny ones. The login lockout stays on as in production: its counts are database rows,
# rolled back after every test.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {  # noqa: F405
    "user": "1000000/hour", "service": "1000000/hour", "anon": "1000000/hour"}}
