"""A GE2E platform with the verified-consent rule on and fast webhook retries, and a loopback webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform, wait_for


@pytest.fixture(scope="module")
def consent_platform(
    emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    data: Path = tmp_path_factory.mktemp("consent-platform")
    overrides = [o for o in platform_overrides(data, emulator) if not o.startswith("consent.")]
    overrides += [
        "encoder=ge2e",
        "consent.require_verified=true",
        "webhooks.retry_base_s=0.1",
        "webhooks.retry_cap_s=0.4",
        "webhooks.timeout_s=2",
    ]
    running = start_platform(overrides)
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Receiver:
    """A webhook endpoint on loopback: records each POST (headers, body); answers `fail_first` of them 500."""

    url: str
    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.received if json.loads(r["body"])["type"] == kind]

    def wait_for_event(self, kind: str, timeout: float = 60) -> dict[str, Any]:
        found = wait_for(lambda: self.events(kind), timeout=timeout, what=f"a {kind} webhook")
        return dict(found[0])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
            with lock:
                state.received.append({"headers": dict(self.headers.items()), "body": body})
                status = 500 if len(state.answered) < state.fail_first else 200
                state.answered.append(status)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
