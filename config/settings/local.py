"""Developer laptop / `make run`: embedded SQLite and eager Celery unless the env says otherwise."""

from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
