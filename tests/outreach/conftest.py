"""What the outreach tests share: a real local SMS gateway process (outreach.channels.devgateway)
started per test, and a view of what it accepted."""

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib3

from outreach.channels.devgateway import start_gateway, stop_gateway
from outreach.channels.gateway import HttpGateway

KEY = "test-gateway-key"


@dataclass
class RunningGateway:
    url: str
    log: Path

    def accepted(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def accepted_ids(self) -> Counter:
        return Counter(entry["message"]["id"] for entry in self.accepted())

    def stats(self) -> dict:
        return urllib3.request("GET", f"{self.url}/stats", retries=False).json()

    def client(self, key: str = KEY, **options) -> HttpGateway:
        options = {"retries": 0, "backoff": 0, "timeout": 5, **options}
        return HttpGateway(self.url, key, **options)


@pytest.fixture
def run_gateway(tmp_path):
    """Start gateways with options (devgateway.start_gateway); all are stopped afterwards."""
    processes = []

    def run(**options) -> RunningGateway:
        log = tmp_path / f"gateway-{len(processes)}.jsonl"
        process, port = start_gateway(key=KEY, log=log, **options)
        processes.append(process)
        return RunningGateway(url=f"http://127.0.0.1:{port}", log=log)

    yield run
    for process in processes:
        stop_gateway(process)
