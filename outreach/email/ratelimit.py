"""Messages per second and per hour, shared by every worker."""

import logging
import time

from django.conf import settings

log = logging.getLogger(__name__)


class RateLimiter:
    """Messages per second and per hour, shared by every worker through Redis when the broker
    is Redis (fixed one-second and one-hour windows: INCR + EXPIRE), per process otherwise."""

    def __init__(self, *, per_second: float, per_hour: int):
        self.per_second = per_second
        self.per_hour = per_hour
        self.redis = _redis_client()
        # One installation (its database) shares the limit; another one on the same Redis not.
        self.prefix = f"crm:{settings.DATABASES['default']['NAME']}:email:rate"
        self._window = None
        self._count = 0
        self._hour = None
        self._hour_count = 0

    def acquire(self) -> None:
        if self.per_second <= 0 and self.per_hour <= 0:
            return
        while True:
            wait = self._try()
            if wait <= 0:
                return
            time.sleep(wait)

    def _try(self) -> float:
        now = time.time()
        second, hour = int(now), int(now // 3600)
        if self.redis is not None:
            try:
                pipe = self.redis.pipeline()
                pipe.incr(f"{self.prefix}:s:{second}")
                pipe.expire(f"{self.prefix}:s:{second}", 5)
                pipe.incr(f"{self.prefix}:h:{hour}")
                pipe.expire(f"{self.prefix}:h:{hour}", 3700)
                per_second_used, _, per_hour_used, _ = pipe.execute()
            except Exception:  # Redis down: do not stop sending, fall back to this process
                log.warning("rate limiter: Redis unavailable, limiting per process")
                self.redis = None
                return self._try()
        else:
            if self._window != second:
                self._window, self._count = second, 0
            if self._hour != hour:
                self._hour, self._hour_count = hour, 0
            self._count += 1
            self._hour_count += 1
            per_second_used, per_hour_used = self._count, self._hour_count
        if self.per_hour > 0 and per_hour_used > self.per_hour:
            return (hour + 1) * 3600 - now
        if self.per_second > 0 and per_second_used > self.per_second:
            return (second + 1) - now
        return 0


def _redis_client():
    url = settings.CELERY_BROKER_URL or ""
    if not url.startswith(("redis://", "rediss://")):
        return None
    try:
        import redis
    except ImportError:
        return None
    return redis.Redis.from_url(url, socket_timeout=5)
