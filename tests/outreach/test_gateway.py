"""The SMS / app push gateway adapter (outreach.channels.gateway) against a real gateway
process on this machine (outreach.channels.devgateway): signed requests, retries with backoff,
permanent refusals, timeouts, the rate limit, keep-alive, signed delivery receipts; the file
provider of `make run`; signing and receipt parsing on their own. No HTTP is mocked."""

import json
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import urllib3
from django.core.exceptions import ImproperlyConfigured

from outreach.channels import gateway as gateway_module
from outreach.channels.gateway import (
    FileGateway,
    GatewayMessage,
    HttpGateway,
    TokenBucket,
    gateway_from_settings,
    parse_receipts,
    sign,
    signed_headers,
    verify,
    verify_request,
)

from .conftest import KEY


class FakeClock:
    """A monotonic clock that moves only when someone sleeps on it."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def gateway(run_gateway):
    return run_gateway(status_on_path=True)


@pytest.fixture
def receipt_endpoint():
    """A callback endpoint in this process that keeps what it is sent."""
    posts: list[tuple[dict, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/receipts", posts
    server.shutdown()
    server.server_close()


def texts(count: int, *, to: str = "13800138000") -> list[GatewayMessage]:
    return [GatewayMessage(i, "sms", to, f"您好，您关注的产品今日开放申购（{i}）")
            for i in range(1, count + 1)]


def eventually(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def a_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Sending ------------------------------------------------------------------------------------

def test_signed_messages_are_accepted_and_recorded_by_the_gateway(gateway):
    http = HttpGateway(f"{gateway.url}/v1/messages", KEY, callback_url="https://crm.example/cb")
    batch = [GatewayMessage(1, "sms", "13800138000", "您的理财产品今日到期"),
             GatewayMessage(2, "app_push", "13900139000", "点击查看详情", title="到期提醒")]

    results = http.send(batch)

    assert [(r.contact_id, r.ok, r.provider_id, r.attempts) for r in results] == [
        (1, True, "gw-1", 1), (2, True, "gw-2", 1)]
    assert [line["message"] for line in gateway.accepted()] == [
        {"id": 1, "channel": "sms", "to": "13800138000", "title": "",
         "body": "您的理财产品今日到期", "callback_url": "https://crm.example/cb"},
        {"id": 2, "channel": "app_push", "to": "13900139000", "title": "到期提醒",
         "body": "点击查看详情", "callback_url": "https://crm.example/cb"}]


def test_a_wrong_key_is_refused_once_and_reported_as_not_retryable(gateway):
    sleeps = []
    results = HttpGateway(gateway.url, "not-the-key", sleep=sleeps.append).send(texts(2))

    assert all(not r.ok and not r.retryable and r.attempts == 1 for r in results)
    assert results[0].error.startswith("HTTP 401")
    assert sleeps == []
    assert gateway.stats()["requests"] == 2
    assert gateway.accepted() == []


@pytest.mark.parametrize("headers", [
    {},
    signed_headers(KEY, b"another body"),
    signed_headers(KEY, b'{"id": 1}', now=time.time() - 3600),
], ids=["unsigned", "signature of another body", "stale timestamp"])
def test_the_gateway_refuses_a_request_without_a_valid_signature(gateway, headers):
    response = urllib3.request("POST", gateway.url, body=b'{"id": 1}', headers=headers,
                               retries=False)

    assert response.status == 401


def test_503s_are_retried_with_backoff_until_the_gateway_accepts(run_gateway):
    gateway = run_gateway(fail_every=2)
    sleeps = []

    results = HttpGateway(gateway.url, KEY, backoff=0.5, sleep=sleeps.append).send(texts(3))

    assert [(r.ok, r.attempts) for r in results] == [(True, 1), (True, 2), (True, 2)]
    assert sleeps == [0.5, 0.5]
    assert [line["request"] for line in gateway.accepted()] == [1, 3, 5]
    assert gateway.stats()["statuses"] == {"202": 3, "503": 2}


def test_backoff_doubles_and_a_gateway_that_stays_down_fails_the_rest_of_the_batch_fast(gateway):
    sleeps = []
    http = HttpGateway(f"{gateway.url}/status/503", KEY, retries=3, backoff=0.5,
                       sleep=sleeps.append)

    first, second, third = http.send(texts(3))

    assert sleeps == [0.5, 1.0, 2.0]
    assert (first.ok, first.retryable, first.attempts) == (False, True, 4)
    assert first.error.startswith("HTTP 503")
    assert (second.retryable, second.attempts, third.attempts) == (True, 0, 0)
    assert second.error.startswith("not sent: the gateway is unavailable")
    assert gateway.stats()["requests"] == 4


@pytest.mark.parametrize("retry_after, waits", [("7", [5.0, 5.0]), ("1", [1.0, 1.0])])
def test_a_429_is_retried_after_the_gateways_retry_after_up_to_the_cap(gateway, retry_after,
                                                                       waits):
    sleeps = []
    http = HttpGateway(f"{gateway.url}/status/429?retry_after={retry_after}", KEY, retries=2,
                       backoff=0.5, max_delay=5.0, sleep=sleeps.append)

    [result] = http.send(texts(1))

    assert sleeps == waits
    assert (result.ok, result.retryable, result.attempts) == (False, True, 3)
    assert gateway.stats()["statuses"] == {"429": 3}


@pytest.mark.parametrize("status", [400, 403, 404, 413, 422])
def test_other_4xx_answers_are_permanent_and_never_retried(gateway, status):
    sleeps = []
    http = HttpGateway(f"{gateway.url}/status/{status}", KEY, sleep=sleeps.append)

    results = http.send(texts(2))

    assert [(r.ok, r.retryable, r.attempts) for r in results] == [(False, False, 1)] * 2
    assert results[0].error.startswith(f"HTTP {status}")
    assert sleeps == []
    assert gateway.stats()["requests"] == 2


def test_a_gateway_slower_than_the_timeout_is_retried_then_reported_retryable(run_gateway):
    gateway = run_gateway(delay=3.0)
    sleeps = []
    http = HttpGateway(gateway.url, KEY, timeout=0.2, retries=2, backoff=0.1,
                       sleep=sleeps.append)

    [result] = http.send(texts(1))

    assert (result.ok, result.retryable, result.attempts) == (False, True, 3)
    assert result.error == "no answer within 0.2 s"
    assert sleeps == [0.1, 0.2]
    # The held threads count their request when they read it, not when the client gave up.
    eventually(lambda: gateway.stats()["requests"] == 3)


def test_a_gateway_nobody_listens_on_is_retryable_and_the_batch_stops_there():
    sleeps = []
    http = HttpGateway(f"http://127.0.0.1:{a_free_port()}", KEY, retries=1,
                       sleep=sleeps.append)

    results = http.send(texts(3))

    assert [(r.ok, r.retryable, r.attempts) for r in results] == [
        (False, True, 2), (False, True, 0), (False, True, 0)]
    assert results[0].error.startswith("cannot connect to the gateway")


def test_a_batch_and_the_next_one_go_over_one_kept_alive_connection(gateway):
    http = HttpGateway(gateway.url, KEY)

    results = http.send(texts(10)) + http.send(texts(10))

    assert all(r.ok for r in results)
    lines = gateway.accepted()
    assert len(lines) == 20
    assert len({line["conn"] for line in lines}) <= 2
    assert len({line["peer"] for line in lines}) <= 2


# Rate limit ---------------------------------------------------------------------------------

def test_the_token_bucket_spaces_tokens_by_its_rate_and_saves_up_at_most_a_burst():
    clock = FakeClock()
    bucket = TokenBucket(4, clock=clock, sleep=clock.sleep)

    granted = []
    for _ in range(5):
        bucket.acquire()
        granted.append(clock.now)
    clock.now += 10  # idle: one token saved up (burst 1), not forty
    for _ in range(2):
        bucket.acquire()
        granted.append(clock.now)

    assert granted == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 11.0, 11.25])


def test_the_token_bucket_gives_every_thread_its_own_slot():
    bucket = TokenBucket(100, clock=lambda: 0.0, sleep=lambda seconds: None)
    waits, lock = [], threading.Lock()

    def take(count):
        for _ in range(count):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take, args=(50,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == pytest.approx([k / 100 for k in range(400)])


def test_the_rate_limit_spaces_the_requests_to_the_gateway(gateway):
    clock = FakeClock()
    http = HttpGateway(gateway.url, KEY, rate_per_second=5, clock=clock, sleep=clock.sleep)

    results = http.send(texts(6))

    assert all(r.ok for r in results)
    assert clock.sleeps == pytest.approx([0.2] * 5)
    assert [line["message"]["id"] for line in gateway.accepted()] == [1, 2, 3, 4, 5, 6]


# Delivery receipts --------------------------------------------------------------------------

def test_the_gateway_posts_signed_receipts_in_batches(run_gateway, receipt_endpoint):
    callback_url, posts = receipt_endpoint
    gateway = run_gateway(receipts=True, receipt_interval=0.3)
    batch = texts(9) + [GatewayMessage(10, "sms", "13800000000", "no such subscriber")]

    results = HttpGateway(gateway.url, KEY, callback_url=callback_url).send(batch)
    eventually(lambda: sum(len(parse_receipts(body)) for _, body in list(posts)) == 10)

    assert all(verify_request(KEY, headers, body) for headers, body in posts)
    assert len(posts) < 10
    receipts = sorted((r for _, body in posts for r in parse_receipts(body)),
                      key=lambda r: r["id"])
    assert [(r["id"], r["provider_id"]) for r in receipts] == [
        (r.contact_id, r.provider_id) for r in results]
    assert [r["status"] for r in receipts] == ["delivered"] * 9 + ["failed"]
    assert receipts[9]["error"] == "unknown subscriber"


def test_receipts_are_parsed_with_aware_times_and_an_empty_error_by_default():
    body = json.dumps({"receipts": [
        {"id": 7, "provider_id": "gw-7", "status": "delivered", "at": "2026-03-02T09:30:00Z"},
        {"id": 8, "provider_id": "gw-8", "status": "failed",
         "at": "2026-03-02T17:30:00+08:00", "error": "关机", "extra": "ignored"},
    ]}).encode()

    assert parse_receipts(body) == [
        {"id": 7, "provider_id": "gw-7", "status": "delivered",
         "at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC), "error": ""},
        {"id": 8, "provider_id": "gw-8", "status": "failed",
         "at": datetime(2026, 3, 2, 17, 30, tzinfo=timezone(timedelta(hours=8))),
         "error": "关机"},
    ]


def a_receipt(**changes) -> dict:
    return {"id": 1, "provider_id": "gw-1", "status": "delivered",
            "at": "2026-03-02T09:30:00+08:00", **changes}


@pytest.mark.parametrize("payload, field", [
    (b"{not json", "body:"),
    (b"\xff\xfe\xfa", "body:"),
    ([a_receipt()], "body:"),
    ({"receipt": []}, "body:"),
    ({"receipts": {"id": 1}}, "receipts:"),
    ({"receipts": [a_receipt()] * 1001}, "receipts: at most 1000"),
    ({"receipts": ["gw-1"]}, "receipts[0]:"),
    ({"receipts": [a_receipt(), a_receipt(), a_receipt(status="sent")]}, "receipts[2].status:"),
    ({"receipts": [a_receipt(status=None)]}, "receipts[0].status:"),
    ({"receipts": [a_receipt(id="1")]}, "receipts[0].id:"),
    ({"receipts": [a_receipt(id=True)]}, "receipts[0].id:"),
    ({"receipts": [a_receipt(id=0)]}, "receipts[0].id:"),
    ({"receipts": [a_receipt(), a_receipt(provider_id="")]}, "receipts[1].provider_id:"),
    ({"receipts": [a_receipt(at="yesterday")]}, "receipts[0].at:"),
    ({"receipts": [a_receipt(at=1767225600)]}, "receipts[0].at:"),
    ({"receipts": [a_receipt(at="2026-03-02T09:30:00")]}, "receipts[0].at: expected a UTC"),
    ({"receipts": [a_receipt(error=["busy"])]}, "receipts[0].error:"),
])
def test_a_bad_receipt_payload_is_refused_naming_the_field(payload, field):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    with pytest.raises(ValueError, match=f"^{re.escape(field)}"):
        parse_receipts(body)


def test_a_thousand_receipts_are_one_call():
    body = json.dumps({"receipts": [a_receipt(id=i) for i in range(1, 1001)]}).encode()

    assert len(parse_receipts(body)) == 1000


# Signing ------------------------------------------------------------------------------------

def test_a_signature_is_hmac_sha256_of_timestamp_dot_body_and_verifies():
    body = '{"id":1,"body":"您好"}'.encode()

    signature = sign(KEY, "1767225600", body)

    assert signature == sign(KEY.encode(), "1767225600", body)
    assert len(signature) == 64 and re.fullmatch("[0-9a-f]+", signature)
    assert verify(KEY, "1767225600", signature, body, now=1767225600 + 299)
    assert verify_request(KEY, {"x-timestamp": "1767225600", "X-SIGNATURE": signature}, body,
                          now=1767225600)


@pytest.mark.parametrize("key, timestamp, signature, body, now", [
    (KEY, "1767225600", None, b"{}", 1767225600 + 301),          # stale
    (KEY, "1767225600", None, b"{}", 1767225600 - 301),          # from the future
    (KEY, "1767225600", None, b'{"id":2}', 1767225600),          # another body
    ("another-key", "1767225600", None, b"{}", 1767225600),      # another key
    ("", "1767225600", None, b"{}", 1767225600),                 # no key at all
    (KEY, "1767225600.0", None, b"{}", 1767225600),              # not unix seconds
    (KEY, "1767225600", "签名", b"{}", 1767225600),               # not hex
    (KEY, "1767225600", "", b"{}", 1767225600),                  # empty
])
def test_verify_refuses_what_was_not_signed_just_now_with_the_key(key, timestamp, signature,
                                                                  body, now):
    good = sign(KEY, "1767225600", b"{}")

    assert not verify(key, timestamp, good if signature is None else signature, body, now=now)


def test_verify_request_refuses_a_request_missing_a_header():
    body = b"{}"
    headers = signed_headers(KEY, body)

    assert verify_request(KEY, headers, body)
    assert not verify_request(KEY, {"X-Signature": headers["X-Signature"]}, body)
    assert not verify_request(KEY, {"X-Timestamp": headers["X-Timestamp"]}, body)


# The file provider and the configured provider -------------------------------------------

def test_the_file_gateway_writes_one_json_file_per_message(tmp_path):
    outbox = tmp_path / "var" / "outbox"
    batch = [GatewayMessage(3, "sms", "13800138000", "您好"),
             GatewayMessage(4, "app_push", "13800138000", "新资讯", title="早报")]

    results = FileGateway(outbox).send(batch)

    assert [(r.ok, r.provider_id) for r in results] == [
        (True, "file:sms-3.json"), (True, "file:app_push-4.json")]
    assert sorted(p.name for p in outbox.iterdir()) == ["app_push-4.json", "sms-3.json"]
    written = json.loads((outbox / "app_push-4.json").read_text(encoding="utf-8"))
    assert {k: written[k] for k in ("id", "channel", "to", "title", "body")} == {
        "id": 4, "channel": "app_push", "to": "13800138000", "title": "早报", "body": "新资讯"}


def test_a_file_appears_only_whole_by_a_rename_in_the_same_directory(tmp_path, monkeypatch):
    seen = []
    real_replace = gateway_module.os.replace

    def replace(source, target):
        seen.append((Path(source).parent, Path(target).exists(),
                     json.loads(Path(source).read_text(encoding="utf-8"))["body"]))
        real_replace(source, target)

    monkeypatch.setattr(gateway_module.os, "replace", replace)

    FileGateway(tmp_path).send([GatewayMessage(5, "sms", "13800138000", "全文")])

    assert seen == [(tmp_path, False, "全文")]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    outbox = FileGateway(tmp_path)
    outbox.send([GatewayMessage(5, "sms", "13800138000", "first")])

    def disk_full(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gateway_module.os, "replace", disk_full)
    [result] = outbox.send([GatewayMessage(5, "sms", "13800138000", "second")])

    assert (result.ok, result.retryable) == (False, True)
    assert "No space left on device" in result.error
    assert [p.name for p in tmp_path.iterdir()] == ["sms-5.json"]
    assert json.loads((tmp_path / "sms-5.json").read_text(encoding="utf-8"))["body"] == "first"


def test_a_message_names_a_known_channel():
    with pytest.raises(ValueError, match="channel"):
        GatewayMessage(1, "email", "13800138000", "hi")


def test_without_a_gateway_url_messages_go_to_the_outbox_directory(settings, tmp_path):
    settings.SMS_GATEWAY_URL = ""
    settings.SMS_OUTBOX_DIR = tmp_path / "outbox"

    provider = gateway_from_settings()

    assert isinstance(provider, FileGateway)
    assert provider.directory == tmp_path / "outbox"


def test_the_outbox_directory_defaults_to_var_outbox(settings):
    settings.SMS_GATEWAY_URL = ""
    if hasattr(settings, "SMS_OUTBOX_DIR"):
        del settings.SMS_OUTBOX_DIR

    assert gateway_from_settings().directory == Path(settings.VAR_DIR) / "outbox"


def test_with_a_gateway_url_the_settings_of_the_moment_configure_one_kept_gateway(settings):
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/send"
    settings.SMS_GATEWAY_KEY = KEY
    settings.SMS_GATEWAY_TIMEOUT = 2
    settings.SMS_GATEWAY_RETRIES = 1
    settings.SMS_GATEWAY_RATE = 10

    provider = gateway_from_settings()

    assert isinstance(provider, HttpGateway)
    assert (provider.url, provider.timeout, provider.retries) == (
        "http://127.0.0.1:9/send", 2.0, 1)
    assert isinstance(provider._limiter, TokenBucket) and provider._limiter.rate == 10
    assert gateway_from_settings() is provider
    settings.SMS_GATEWAY_RETRIES = 5
    assert gateway_from_settings().retries == 5


def test_a_gateway_url_without_a_key_is_a_configuration_error(settings):
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/send"
    settings.SMS_GATEWAY_KEY = ""

    with pytest.raises(ImproperlyConfigured, match="SMS_GATEWAY_KEY"):
        gateway_from_settings()
