"""What sits in front of the emulator's endpoints, as on the real service: auth (401/402), the rate limiter
(RPM + concurrency per key, 429 + Retry-After) and fault injection for tests (latency, error rate,
fail-next-N, crash-next-N, slow streams).
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .store import owner_of

KeyState = Literal["valid", "invalid", "quota_exceeded"]


def error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """StepFun's error envelope."""
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)


class FaultPlan(BaseModel):
    """Body of POST /_admin/faults. Unset fields keep their current value."""

    fail_next: int | None = Field(default=None, ge=0)  # answer the next N API requests with status/type
    status: int | None = Field(default=None, ge=400, le=599)
    type: str | None = None
    message: str | None = None
    retry_after: float | None = None  # sent as Retry-After on the injected failures
    stall_next: int | None = Field(default=None, ge=0)  # the next N requests wait stall_ms first (timeouts)
    stall_ms: int | None = Field(default=None, ge=0)
    latency_ms: int | None = Field(default=None, ge=0)  # every request
    # a slow stream: every body chunk after the first waits this long (the status line is already sent)
    chunk_delay_ms: int | None = Field(default=None, ge=0)
    error_rate: float | None = Field(default=None, ge=0.0, le=1.0)  # random 503s, seeded
    path_prefix: str | None = None  # only requests under this path are affected (default /v1/)
    # the next N API requests raise an unhandled exception in the app: a real 500 with a logged traceback
    crash_next: int | None = Field(default=None, ge=0)


class InjectedCrash(RuntimeError):
    """Raised by crash_next: deliberately left unhandled, like a bug in the emulator."""


@dataclass
class Faults:
    fail_next: int = 0
    status: int = 503
    type: str = "server_error"
    message: str = "injected failure"
    retry_after: float | None = None
    stall_next: int = 0
    stall_ms: int = 0
    latency_ms: int = 0
    chunk_delay_ms: int = 0
    error_rate: float = 0.0
    path_prefix: str = "/v1/"
    crash_next: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def update(self, plan: FaultPlan) -> None:
        for name, value in plan.model_dump(exclude_none=True).items():
            setattr(self, name, value)

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "rng"}


class RateLimiter:
    """Per-key sliding 60 s window (RPM) and in-flight count (concurrency); 0 disables either."""

    def __init__(self, rpm: int, concurrency: int) -> None:
        self.rpm = rpm
        self.concurrency = concurrency
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)

    def acquire(self, key: str) -> float | None:
        """None: admitted (call release() when done). Otherwise seconds until a retry can succeed."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] >= 60.0:
                hits.popleft()
            if self.concurrency and self._in_flight[key] >= self.concurrency:
                return 1.0
            if self.rpm and len(hits) >= self.rpm:
                return max(0.0, 60.0 - (now - hits[0]))
            hits.append(now)
            self._in_flight[key] += 1
            return None

    def release(self, key: str) -> None:
        with self._lock:
            self._in_flight[key] = max(0, self._in_flight[key] - 1)


class Gateway:
    """Shared mutable gateway state: keys, limits, faults, request counters (read by /_admin/stats)."""

    def __init__(
        self, api_keys: list[str], rpm: int, concurrency: int, latency_ms: int, error_rate: float
    ) -> None:
        self.keys: dict[str, KeyState] = dict.fromkeys(api_keys, "valid")
        self.limiter = RateLimiter(rpm, concurrency)
        self.faults = Faults(latency_ms=latency_ms, error_rate=error_rate)
        self.requests: dict[str, int] = defaultdict(int)  # "METHOD /path" → count, every request received
        self._lock = threading.Lock()

    def count(self, method: str, path: str) -> None:
        with self._lock:
            self.requests[f"{method} {path}"] += 1

    def take_fault(self, path: str) -> tuple[bool, float]:
        """(fail this request?, seconds to stall first) — consumes the fail-next / stall-next budgets."""
        f = self.faults
        if not path.startswith(f.path_prefix):
            return False, 0.0
        with self._lock:
            stall = 0.0
            if f.stall_next > 0:
                f.stall_next -= 1
                stall = f.stall_ms / 1000
            fail = False
            if f.fail_next > 0:
                f.fail_next -= 1
                fail = True
            elif f.error_rate and f.rng.random() < f.error_rate:
                fail = True
        return fail, stall + f.latency_ms / 1000

    def take_crash(self, path: str) -> bool:
        """Crash this request? — consumes the crash-next budget."""
        f = self.faults
        if not path.startswith(f.path_prefix):
            return False
        with self._lock:
            if f.crash_next <= 0:
                return False
            f.crash_next -= 1
            return True


def _slowed(send: Send, delay_s: float, piece: int = 16384) -> Send:
    """`send` as a stream that trickles: the body goes out in pieces of at most `piece` bytes (a whole
    response is one message otherwise), with a pause before every piece but the first."""
    sent = 0

    async def slow_send(message: Message) -> None:
        nonlocal sent
        body = message.get("body", b"") if message["type"] == "http.response.body" else b""
        if not body:
            await send(message)
            return
        pieces = [body[i : i + piece] for i in range(0, len(body), piece)]
        for index, part in enumerate(pieces):
            if sent:
                await asyncio.sleep(delay_s)
            sent += 1
            last = index == len(pieces) - 1
            more = message.get("more_body", False) if last else True
            await send({"type": "http.response.body", "body": part, "more_body": more})

    return slow_send


def bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1")
            return text[7:].strip() if text.lower().startswith("bearer ") else None
    return None


class GatewayMiddleware:
    """Pure ASGI so the concurrency slot is held until a streamed body has been fully sent."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        gw = self.gateway
        gw.count(scope["method"], path)
        fail, delay = gw.take_fault(path)
        if delay:
            await asyncio.sleep(delay)
        if fail:
            f = gw.faults
            headers = {"Retry-After": f"{f.retry_after:g}"} if f.retry_after is not None else None
            await error_response(f.status, f.type, f.message, headers)(scope, receive, send)
            return
        if gw.take_crash(path):
            # Before the limiter: an unhandled error must not leave a concurrency slot taken.
            raise InjectedCrash(f"injected crash (crash_next) on {scope['method']} {path}")
        key = bearer(scope)
        state = gw.keys.get(key or "")
        if key is None or state in (None, "invalid"):
            # Like OpenAI-shaped APIs, the message never echoes the key back.
            await error_response(401, "invalid_api_key", "Incorrect API key provided")(scope, receive, send)
            return
        if state == "quota_exceeded":
            await error_response(402, "quota_exceeded", "Your account balance is insufficient")(
                scope, receive, send
            )
            return
        owner = owner_of(key)
        wait = gw.limiter.acquire(owner)
        if wait is not None:
            headers = {"Retry-After": str(max(1, math.ceil(wait)))}
            await error_response(429, "rate_limit_exceeded", "Rate limit reached, slow down", headers)(
                scope, receive, send
            )
            return
        scope.setdefault("state", {})["owner"] = owner
        delay_s = gw.faults.chunk_delay_ms / 1000 if path.startswith(gw.faults.path_prefix) else 0.0
        if delay_s:
            send = _slowed(send, delay_s)
        try:
            await self.app(scope, receive, send)
        finally:
            gw.limiter.release(owner)
