"""A real SMS/push gateway on this machine, for tests and benchmarks (standard library only).

    python -m outreach.channels.devgateway --port 0 --key K [--log PATH] [--fail-every N]
        [--retry-after S] [--delay S] [--status-on-path] [--receipts]
        [--receipt-batch N] [--receipt-interval S]

The first line on stdout is the port it listens on (so `--port 0` works). It plays the
provider of the contract in `gateway.py` and checks signatures by that contract itself, not
with our code, so a test against it shows that both sides agree. HTTP/1.1 with keep-alive.

POST (any path), in this order:
  - every Nth POST (`--fail-every N`) is answered 503, with Retry-After if `--retry-after`;
  - a missing, wrong or stale signature is answered 401, a malformed message 400;
  - with `--status-on-path`, POST /status/<code>[?retry_after=S] is answered <code>;
  - otherwise 202 `{"id": "gw-<n>"}`, and the message is logged as one JSON line to `--log`
    (`{"n", "request", "conn", "peer", "message"}`: `conn` numbers the TCP connections).
  `--delay S` holds every answer S seconds (for client timeouts).
GET /stats: `{"requests", "accepted", "connections", "statuses"}`.
With `--receipts`, the receipts of accepted messages that carry a `callback_url` are POSTed
to it, signed, in batches (up to `--receipt-batch`, at least every `--receipt-interval` s);
a number ending in 0000 is "failed" (unknown subscriber), any other "delivered".
"""

import argparse
import hashlib
import hmac
import json
import queue
import select
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAX_SKEW = 300


def _signature(key: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class ReceiptPoster(threading.Thread):
    """Collects receipts per callback URL and posts them in signed batches."""

    def __init__(self, key: bytes, *, batch: int, interval: float):
        super().__init__(daemon=True, name="receipts")
        self.key, self.batch, self.interval = key, batch, interval
        self.queue: queue.Queue = queue.Queue()

    def add(self, url: str, receipt: dict) -> None:
        self.queue.put((url, receipt))

    def run(self) -> None:
        pending: dict[str, list[dict]] = {}
        deadline = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                url, receipt = self.queue.get(timeout=timeout)
            except queue.Empty:
                url = None
            else:
                pending.setdefault(url, []).append(receipt)
                deadline = deadline or time.monotonic() + self.interval
                if len(pending[url]) >= self.batch:
                    self._post(url, pending.pop(url))
            if deadline is not None and time.monotonic() >= deadline:
                for target, receipts in pending.items():
                    self._post(target, receipts)
                pending, deadline = {}, None

    def _post(self, url: str, receipts: list[dict]) -> None:
        body = json.dumps({"receipts": receipts}, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Timestamp": timestamp,
            "X-Signature": _signature(self.key, timestamp, body)})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except (OSError, urllib.error.URLError) as exc:
            print(f"devgateway: receipts to {url} failed: {exc}", file=sys.stderr, flush=True)


class Gateway(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], options: argparse.Namespace):
        super().__init__(address, Handler)
        self.options = options
        self.key = options.key.encode()
        self.lock = threading.Lock()
        self.requests = self.accepted = self.connections = 0
        self.statuses: Counter = Counter()
        self.log = open(options.log, "a", encoding="utf-8") if options.log else None
        self.receipts = None
        if options.receipts:
            self.receipts = ReceiptPoster(self.key, batch=options.receipt_batch,
                                          interval=options.receipt_interval)
            self.receipts.start()

    def stats(self) -> dict:
        with self.lock:
            return {"requests": self.requests, "accepted": self.accepted,
                    "connections": self.connections, "statuses": dict(self.statuses)}

    def server_close(self):
        super().server_close()
        if self.log is not None:
            self.log.close()

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Gateway

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.connection_number = self.server.connections

    def log_message(self, format, *args):
        if self.server.options.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        if urlsplit(self.path).path == "/stats":
            self._answer(200, self.server.stats())
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self):
        options, server = self.server.options, self.server
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self.close_connection = True
            return self._answer(411, {"error": "Content-Length required"})
        body = self.rfile.read(int(length))
        with server.lock:
            server.requests += 1
            number = server.requests
        if options.delay:
            time.sleep(options.delay)
        if options.fail_every and number % options.fail_every == 0:
            headers = {"Retry-After": options.retry_after} if options.retry_after else {}
            return self._answer(503, {"error": "busy, try again"}, headers)
        if not self._signed(body):
            return self._answer(401, {"error": "missing, wrong or stale signature"})
        message = _message(body)
        if message is None:
            return self._answer(400, {"error": "expected {id, channel, to, title, body}"})
        url = urlsplit(self.path)
        asked = url.path.removeprefix("/status/")
        if options.status_on_path and asked != url.path:
            if not (asked.isdigit() and 200 <= int(asked) <= 599):
                return self._answer(400, {"error": "POST /status/<200..599>"})
            retry_after = parse_qs(url.query).get("retry_after")
            headers = {"Retry-After": retry_after[0]} if retry_after else {}
            return self._answer(int(asked), {"error": "as asked"}, headers)
        with server.lock:
            server.accepted += 1
            provider_id = f"gw-{server.accepted}"
            if server.log is not None:
                server.log.write(json.dumps({
                    "n": server.accepted, "request": number, "conn": self.connection_number,
                    "peer": self.client_address[1], "message": message},
                    ensure_ascii=False) + "\n")
                server.log.flush()
        callback = message.get("callback_url")
        if server.receipts is not None and isinstance(callback, str) and (
                callback.startswith(("http://", "https://"))):
            failed = message["to"].endswith("0000")
            receipt = {"id": message["id"], "provider_id": provider_id,
                       "status": "failed" if failed else "delivered",
                       "at": datetime.now(UTC).isoformat()}
            if failed:
                receipt["error"] = "unknown subscriber"
            server.receipts.add(callback, receipt)
        self._answer(202, {"id": provider_id})

    def _signed(self, body: bytes) -> bool:
        timestamp = self.headers.get("X-Timestamp", "")
        signature = self.headers.get("X-Signature", "")
        if not (timestamp.isascii() and timestamp.isdigit()):
            return False
        if abs(time.time() - int(timestamp)) > MAX_SKEW:
            return False
        expected = _signature(self.server.key, timestamp, body)
        return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))

    def _answer(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        with self.server.lock:
            self.server.statuses[str(status)] += 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(data)


def _message(body: bytes) -> dict | None:
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or type(message.get("id")) is not int:
        return None
    if message.get("channel") not in ("sms", "app_push"):
        return None
    if not all(isinstance(message.get(name), str) for name in ("to", "title", "body")):
        return None
    return message


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m outreach.channels.devgateway",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--key", required=True, help="the shared HMAC key")
    parser.add_argument("--log", help="append accepted messages here, one JSON line each")
    parser.add_argument("--fail-every", type=int, default=0, help="answer every Nth POST 503")
    parser.add_argument("--retry-after", help="Retry-After header of those 503 answers")
    parser.add_argument("--delay", type=float, default=0.0, help="hold every answer S seconds")
    parser.add_argument("--status-on-path", action="store_true",
                        help="POST /status/<code> is answered <code>")
    parser.add_argument("--receipts", action="store_true",
                        help="post delivery receipts to each message's callback_url")
    parser.add_argument("--receipt-batch", type=int, default=100)
    parser.add_argument("--receipt-interval", type=float, default=0.5)
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    return parser


def main(argv: list[str] | None = None) -> None:
    options = _parser().parse_args(argv)
    server = Gateway((options.host, options.port), options)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def start_gateway(port: int = 0, key: str = "dev-gateway-key", *, log: str | Path | None = None,
                  fail_every: int = 0, retry_after: str | None = None, delay: float = 0.0,
                  status_on_path: bool = False, receipts: bool = False,
                  receipt_batch: int = 100, receipt_interval: float = 0.5,
                  startup_timeout: float = 15.0) -> tuple[subprocess.Popen, int]:
    """Run the gateway as a child process; return it and the port it listens on once it
    listens. Stop it with `stop_gateway`."""
    args = [sys.executable, "-m", "outreach.channels.devgateway", "--port", str(port),
            "--key", key, "--fail-every", str(fail_every), "--delay", str(delay),
            "--receipt-batch", str(receipt_batch), "--receipt-interval", str(receipt_interval)]
    args += ["--log", str(log)] if log else []
    args += ["--retry-after", retry_after] if retry_after else []
    args += ["--status-on-path"] if status_on_path else []
    args += ["--receipts"] if receipts else []
    process = subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([process.stdout], [], [], startup_timeout)
    line = process.stdout.readline().strip() if ready else ""
    if not line.isdigit():
        stop_gateway(process)
        raise RuntimeError(f"the dev gateway did not start (exit code {process.returncode})")
    return process, int(line)


def stop_gateway(process: subprocess.Popen, timeout: float = 5.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


if __name__ == "__main__":
    main()
