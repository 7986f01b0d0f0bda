"""Run the real platform for tests: emulator subprocess, DB (SQLite or PostgreSQL), queue, uvicorn on loopback."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine, text

from bentos.api.app import create_app
from bentos.core.config import load_config
from bentos.core.platform import Platform
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.processes import free_port

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EMULATOR_KEY = "emulator-test-key"


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "it"
) -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test run; dropped afterwards. Yields a URL bound to it."""
    schema = "vp_" + secrets.token_hex(6)
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@dataclass
class RunningPlatform:
    platform: Platform
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread
    overrides: list[str]
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, api_key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        c = httpx.Client(base_url=self.base_url, headers=headers, timeout=60)
        self.clients.append(c)
        return c

    def sign_up(self, role: str = "creator", wallet: str | None = None) -> tuple[str, str]:
        """A new account → (account id, API key)."""
        email = f"{role}-{secrets.token_hex(4)}@example.com"
        body: dict[str, Any] = {"name": f"Test {role}", "email": email, "role": role}
        if wallet:
            body["payoutWallet"] = wallet
        r = httpx.post(f"{self.base_url}/accounts", json=body, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["account"]["id"], r.json()["apiKey"]

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.platform.stop()


def start_platform(overrides: list[str], start_jobs: bool = True) -> RunningPlatform:
    cfg = load_config(overrides)
    platform = Platform(cfg)
    if start_jobs:
        platform.start(outbox_interval_s=0.05)
    port = free_port()
    config = uvicorn.Config(
        create_app(platform), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    wait_for(lambda: server.started, timeout=20, what="uvicorn to start")
    return RunningPlatform(platform, base_url, server, thread, overrides)


TEST_TRIAL_CREDIT = 1_000_000_000  # ¥1,000 per test account


def platform_overrides(
    data_dir: Path, emulator: EmulatorProcess, db_url: str | None = None, redis_name: str | None = None
) -> list[str]:
    overrides = [
        f"data_dir={data_dir}",
        f"provider.base_url={emulator.base_url}",
        f"provider.api_key={EMULATOR_KEY}",
        "provider.backoff_base_s=0.05",
        "provider.backoff_cap_s=0.3",
        "provider.breaker_reset_timeout_s=1",
        "queue.retry_base_seconds=0.1",
        "queue.retry_cap_seconds=0.5",
        "queue.max_delay=0.1",
        "queue.claim_lease_s=20",
        "queue.revive_after_s=1",
        # Tests create personas and speak freely; the money tests set their own credit.
        f"billing.trial_credit={TEST_TRIAL_CREDIT}",
        "billing.key_requests_per_minute=0",  # tests poll fast; the limit has its own tests
        # Tests give many creators the same few generated voices; the blocking guard has its own (tests/trust).
        "moderation.impersonation_review=false",
        # Tests of other features make public personas from synthetic audio without a consent recording; the
        # verified-consent rule has its own tests (tests/consent_privacy), which turn it back on.
        "consent.require_verified=false",
        "webhooks.allow_private=true",  # the tests' receivers listen on loopback
    ]
    if db_url:
        overrides += ["db=postgres", f"db.url='{db_url}'"]
    if redis_name:
        overrides += [
            "queue=redis",
            f"queue.name={redis_name}",
            "queue.retry_base_seconds=0.1",
            "queue.retry_cap_seconds=0.5",
            "queue.max_delay=0.1",
            "queue.claim_lease_s=20",
            "queue.revive_after_s=1",
        ]
    return overrides
