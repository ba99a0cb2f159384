"""SMS and app push through a provider gateway speaking HTTP/JSON.

The provider contract. Each message is one POST of
`{"id": <contact id>, "channel": "sms"|"app_push", "to", "title", "body", "callback_url"?}`
with `X-Timestamp` (unix seconds) and `X-Signature` (hex HMAC-SHA256 under the shared key of
`"<timestamp>." + body`); the gateway answers 200/202 `{"id": "<provider id>"}`. Later it
POSTs delivery receipts, signed the same way, to the callback URL (`verify_request`,
`parse_receipts`). The contact id travels as the message id, so a provider that deduplicates
on it makes a retry after a lost answer harmless.

Without SMS_GATEWAY_URL (`make run`) messages are written as files instead (`FileGateway`).
"""

import contextlib
import email.utils
import hashlib
import hmac
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Channel = Literal["sms", "app_push"]
CHANNELS = ("sms", "app_push")
SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
MAX_RECEIPTS = 1000
RECEIPT_STATUSES = ("delivered", "failed")


@dataclass(frozen=True, slots=True)
class GatewayMessage:
    contact_id: int
    channel: Channel
    to: str
    body: str
    title: str = ""

    def __post_init__(self):
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {self.channel!r}")

    def payload(self, callback_url: str = "") -> dict:
        data = {"id": self.contact_id, "channel": self.channel, "to": self.to,
                "title": self.title, "body": self.body}
        if callback_url:
            data["callback_url"] = callback_url
        return data


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """`retryable`: the message may go again later (the gateway was down, slow or busy);
    false for a refusal that would repeat (bad number, wrong key). `attempts` counts the
    requests made, 0 when the message was not tried."""

    contact_id: int
    ok: bool
    provider_id: str = ""
    error: str = ""
    retryable: bool = False
    attempts: int = 1


# Signing ----------------------------------------------------------------------------------

def _key_bytes(key: bytes | str) -> bytes:
    return key.encode() if isinstance(key, str) else key


def sign(key: bytes | str, timestamp: str, body: bytes) -> str:
    return hmac.new(_key_bytes(key), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(key: bytes | str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(key, timestamp, body),
            "Content-Type": "application/json"}


def verify(key: bytes | str, timestamp: str, signature: str, body: bytes, *,
           now: float | None = None, max_skew: float = 300) -> bool:
    """True when `signature` signs `body` at `timestamp` under `key` and the timestamp is
    within `max_skew` seconds of now (either way), so a captured request cannot be replayed
    later. An empty key verifies nothing."""
    if not key or not isinstance(timestamp, str) or not isinstance(signature, str):
        return False
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > max_skew:
        return False
    expected = sign(key, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def verify_request(key: bytes | str, headers: Mapping[str, str], body: bytes, *,
                   now: float | None = None, max_skew: float = 300) -> bool:
    """`verify` reading X-Timestamp and X-Signature from `headers` (any letter case, e.g.
    Django's `request.headers`)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower())
    signature = lowered.get(SIGNATURE_HEADER.lower())
    if timestamp is None or signature is None:
        return False
    return verify(key, timestamp, signature, body, now=now, max_skew=max_skew)


# Rate limit -------------------------------------------------------------------------------

class Limiter(Protocol):
    def acquire(self) -> object: ...


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; thread-safe. A caller reserves its
    token under the lock (the balance may go negative) and sleeps outside it, so waiting
    threads are served in the order they came and never wake up to find the token gone."""

    def __init__(self, rate: float, *, burst: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()

    def reserve(self) -> float:
        """Take a token; return how many seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


# Providers --------------------------------------------------------------------------------

class HttpGateway:
    """Posts each message to the gateway over a pool of keep-alive connections.

    Connection errors, timeouts, 5xx and 429 are retried `retries` times, waiting
    `backoff`·2ⁿ seconds (or the answer's Retry-After), at most `max_delay`; any other 4xx is a
    permanent refusal. Once a message has used up its retries the gateway is taken to be down
    and the rest of the batch is returned unsent (retryable) instead of each waiting as long.
    `rate_per_second` spaces the requests of this process (retries included); pass `limiter`
    to share a limit across processes instead. One instance may serve several threads.
    """

    def __init__(self, url: str, key: bytes | str, *, timeout: float = 5.0, retries: int = 3,
                 backoff: float = 0.5, rate_per_second: float | None = None,
                 callback_url: str = "", max_delay: float = 30.0, pool_size: int = 4,
                 limiter: Limiter | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the gateway URL must be http(s)://host/..., not {url!r}")
        if not key:
            raise ValueError("the gateway key is empty")
        self.url = url
        self.key = _key_bytes(key)
        self.timeout = timeout
        self.retries = max(retries, 0)
        self.backoff = backoff
        self.max_delay = max_delay
        self.callback_url = callback_url
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._pool = urllib3.connection_from_url(
            url, maxsize=pool_size, block=False, retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout))
        self._sleep = sleep
        if limiter is None and rate_per_second:
            limiter = TokenBucket(rate_per_second, clock=clock, sleep=sleep)
        self._limiter = limiter

    def send(self, messages: Iterable[GatewayMessage]) -> list[GatewayResult]:
        results, down = [], ""
        for message in messages:
            if down:
                results.append(GatewayResult(message.contact_id, ok=False, error=down,
                                             retryable=True, attempts=0))
                continue
            result = self.send_one(message)
            results.append(result)
            if result.retryable:
                down = f"not sent: the gateway is unavailable ({result.error})"
        return results

    def send_one(self, message: GatewayMessage) -> GatewayResult:
        body = json.dumps(message.payload(self.callback_url), ensure_ascii=False,
                          separators=(",", ":")).encode()
        error, delay = "", 0.0
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                self._sleep(delay)
            if self._limiter is not None:
                self._limiter.acquire()
            try:
                response = self._pool.urlopen(
                    "POST", self._target, body=body, headers=signed_headers(self.key, body),
                    retries=False, redirect=False)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                error, retry_after = self._describe(exc), None
            else:
                status = response.status
                if 200 <= status < 300:
                    provider_id = _provider_id(response.data)
                    return GatewayResult(
                        message.contact_id, ok=True, provider_id=provider_id, attempts=attempt,
                        error="" if provider_id else "accepted without a provider id")
                error = f"HTTP {status}: {_snippet(response.data)}"
                if status < 500 and status != 429:
                    return GatewayResult(message.contact_id, ok=False, error=error,
                                         retryable=False, attempts=attempt)
                retry_after = _retry_after(response.headers.get("Retry-After"))
            backoff = self.backoff * 2 ** (attempt - 1)
            delay = min(self.max_delay, backoff if retry_after is None else retry_after)
        return GatewayResult(message.contact_id, ok=False, error=error, retryable=True,
                             attempts=self.retries + 1)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, urllib3.exceptions.NewConnectionError):
            return f"cannot connect to the gateway: {exc}"
        if isinstance(exc, urllib3.exceptions.TimeoutError):
            return f"no answer within {self.timeout:g} s"
        return f"{type(exc).__name__}: {exc}"


def _provider_id(data: bytes) -> str:
    try:
        value = json.loads(data)["id"]
    except (ValueError, KeyError, TypeError):
        return ""
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _snippet(data: bytes, limit: int = 200) -> str:
    return data[:limit].decode("utf-8", errors="replace").strip() or "(empty answer)"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class FileGateway:
    """The provider of `make run`: one JSON file per message, `<channel>-<contact id>.json`
    in `directory`, written to a temporary file first and renamed over, so a reader never
    sees half a message and a repeat replaces the file."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def send(self, messages: Iterable[GatewayMessage]) -> list[GatewayResult]:
        return [self._write(message) for message in messages]

    def _write(self, message: GatewayMessage) -> GatewayResult:
        name = f"{message.channel}-{message.contact_id}.json"
        data = json.dumps({**message.payload(), "written_at": datetime.now(UTC).isoformat()},
                          ensure_ascii=False, indent=2).encode()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.",
                                             suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                os.replace(temporary, self.directory / name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            return GatewayResult(message.contact_id, ok=False, retryable=True,
                                 error=f"cannot write {self.directory / name}: {exc}")
        return GatewayResult(message.contact_id, ok=True, provider_id=f"file:{name}")


_gateways: dict[tuple, HttpGateway] = {}
_gateways_lock = threading.Lock()


def gateway_from_settings() -> HttpGateway | FileGateway:
    """The configured provider. An HttpGateway is kept per process and configuration, so its
    connections stay open from one batch to the next (and are never shared across a fork)."""
    url = getattr(settings, "SMS_GATEWAY_URL", "")
    if not url:
        default = Path(getattr(settings, "VAR_DIR", Path(settings.BASE_DIR) / "var")) / "outbox"
        return FileGateway(getattr(settings, "SMS_OUTBOX_DIR", default))
    key = getattr(settings, "SMS_GATEWAY_KEY", "")
    if not key:
        raise ImproperlyConfigured("SMS_GATEWAY_URL is set but SMS_GATEWAY_KEY is empty")
    options = {
        "timeout": float(getattr(settings, "SMS_GATEWAY_TIMEOUT", 5.0)),
        "retries": int(getattr(settings, "SMS_GATEWAY_RETRIES", 3)),
        "backoff": float(getattr(settings, "SMS_GATEWAY_BACKOFF", 0.5)),
        "rate_per_second": float(getattr(settings, "SMS_GATEWAY_RATE", 0) or 0) or None,
        "callback_url": getattr(settings, "SMS_GATEWAY_CALLBACK_URL", ""),
    }
    cache_key = (os.getpid(), url, key, *sorted(options.items()))
    with _gateways_lock:
        gateway = _gateways.get(cache_key)
        if gateway is None:
            gateway = _gateways[cache_key] = HttpGateway(url, key, **options)
    return gateway


# Delivery receipts ------------------------------------------------------------------------

def parse_receipts(body: bytes) -> list[dict]:
    """The receipts of a callback body, `{"receipts": [{"id", "provider_id", "status", "at",
    "error"?}]}`, as dicts with `at` an aware datetime and `error` a string ("" when absent).
    Raises ValueError naming the bad field, e.g. "receipts[2].status: ...". Unknown keys are
    ignored, so the provider may add fields."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise ValueError(f"body: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "receipts" not in data:
        raise ValueError('body: expected an object with a "receipts" list')
    receipts = data["receipts"]
    if not isinstance(receipts, list):
        raise ValueError("receipts: expected a list")
    if len(receipts) > MAX_RECEIPTS:
        raise ValueError(f"receipts: at most {MAX_RECEIPTS} per call, got {len(receipts)}")
    return [_receipt(item, f"receipts[{i}]") for i, item in enumerate(receipts)]


def _receipt(item: object, where: str) -> dict:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object")
    contact_id = item.get("id")
    if type(contact_id) is not int or contact_id <= 0:
        raise ValueError(f"{where}.id: expected the contact id, a positive integer")
    provider_id = item.get("provider_id")
    if not isinstance(provider_id, str) or not provider_id.strip():
        raise ValueError(f"{where}.provider_id: expected a non-empty string")
    status = item.get("status")
    if not isinstance(status, str) or status not in RECEIPT_STATUSES:
        raise ValueError(f"{where}.status: expected one of {', '.join(RECEIPT_STATUSES)}")
    at = item.get("at")
    try:
        at = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        at = None
    if at is None:
        raise ValueError(f"{where}.at: expected an ISO-8601 date and time")
    if at.tzinfo is None:
        raise ValueError(f"{where}.at: expected a UTC offset (e.g. +08:00 or Z)")
    error = item.get("error", "")
    if not isinstance(error, str):
        raise ValueError(f"{where}.error: expected a string")
    return {"id": contact_id, "provider_id": provider_id, "status": status, "at": at,
            "error": error}
