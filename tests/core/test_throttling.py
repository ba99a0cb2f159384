"""API throttling: a rate per token (user), another for service accounts, one per address before
authentication; a refused request is a 429 in the error envelope with Retry-After."""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.models import Role
from tests.factories import staff
from tests.worker import _unavailable

URL = "/api/v1/clients/"
SCHEMA = "/api/schema/?format=json"


def rates(user="3/minute", service="5/minute", anon="2/minute"):
    return override_settings(REST_FRAMEWORK={
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": user, "service": service, "anon": anon}})


@pytest.fixture
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def api_for(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def assert_throttled(response):
    assert response.status_code == 429
    body = response.json()
    assert body["error"]["code"] == "throttled" and body["error"]["message"]
    assert set(body["error"]) == {"code", "message", "fields"}
    assert 0 < int(response["Retry-After"]) <= 60


def test_a_token_past_its_rate_gets_429_and_another_token_is_not_affected(db, fresh_cache):
    first = api_for(staff(Role.OPS, username="ops-one"))
    second = api_for(staff(Role.OPS, username="ops-two"))
    with rates(user="3/minute"):
        assert [first.get(URL).status_code for _ in range(3)] == [200, 200, 200]
        assert_throttled(first.get(URL))
        assert second.get(URL).status_code == 200


def test_service_accounts_have_their_own_rate(db, fresh_cache):
    system = api_for(staff(Role.OPS, username="core-banking", is_service_account=True))
    with rates(user="2/minute", service="4/minute"):
        assert [system.get(URL).status_code for _ in range(4)] == [200] * 4
        assert_throttled(system.get(URL))


def test_unauthenticated_callers_are_limited_per_address(db, fresh_cache):
    """What answers without a token (the schema) is throttled per address; a forged
    X-Forwarded-For does not make a new address. (Without a token every other operation is a
    401 before any throttle: a token has 160 random bits, nothing to guess.)"""
    anonymous = APIClient()
    with rates(anon="2/minute"):
        assert [anonymous.get(SCHEMA, REMOTE_ADDR="10.7.7.7").status_code
                for _ in range(2)] == [200, 200]
        assert_throttled(anonymous.get(SCHEMA, REMOTE_ADDR="10.7.7.7"))
        assert_throttled(anonymous.get(SCHEMA, REMOTE_ADDR="10.7.7.7",
                                       HTTP_X_FORWARDED_FOR="203.0.113.9"))
        assert anonymous.get(SCHEMA, REMOTE_ADDR="10.8.8.8").status_code == 200


def test_throttling_is_on_by_default_with_the_documented_rates():
    """The defaults of config.settings.base (the test settings raise the rates)."""
    code = ("from django.conf import settings as s; import django; django.setup(); "
            "r = s.REST_FRAMEWORK; print(r['DEFAULT_THROTTLE_CLASSES']); "
            "print(r['DEFAULT_THROTTLE_RATES']); print(s.CACHES['default']['BACKEND'])")
    env = {k: v for k, v in os.environ.items()
           if k not in ("API_THROTTLE_RATE", "API_SERVICE_THROTTLE_RATE", "API_ANON_THROTTLE_RATE",
                        "CACHE_URL", "CELERY_BROKER_URL")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "core.throttling.AnonRateThrottle" in out and "core.throttling.UserRateThrottle" in out
    assert "'user': '10000/hour'" in out and "'service': '100000/hour'" in out
    assert "'anon': '60/minute'" in out
    assert "LocMemCache" in out  # no Redis configured: counts per process

    env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/0"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "django.core.cache.backends.redis.RedisCache" in out


@pytest.fixture
def redis_url(tmp_path):
    """REDIS_URL (CI), else a private redis-server on a free port when the binary is here."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("no REDIS_URL and no redis-server: a shared count needs Redis")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_counts_are_shared_through_redis_when_it_is_configured(db, redis_url):
    import redis

    prefix = f"crm-test-{uuid.uuid4().hex[:8]}"
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": redis_url, "KEY_PREFIX": prefix}}
    user = staff(Role.OPS, username="ops-redis")
    api = api_for(user)
    server = redis.Redis.from_url(redis_url)
    try:
        with override_settings(CACHES=caches), rates(user="2/minute"):
            assert [api.get(URL).status_code for _ in range(2)] == [200, 200]
            assert_throttled(api.get(URL))
            # Another web process reads the same count from Redis.
            assert server.keys(f"{prefix}:*throttle_user_{user.pk}")
    finally:
        for key in server.scan_iter(f"{prefix}:*"):
            server.delete(key)
