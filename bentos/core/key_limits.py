"""Per-API-key request rate limit (a token bucket per key, in this process): a runaway client gets 429 with
Retry-After before it costs anyone anything. With N replicas, configure each with its share of the rate."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from bentos.core.errors import ErrorCode, PlatformError, retry_after_seconds

MAX_TRACKED_KEYS = 100_000  # beyond this, full buckets are forgotten (a refilled bucket holds no state)


@dataclass
class KeyRateLimiter:
    """`per_minute` requests per key, bursting up to `burst` (default: a tenth of a minute's worth, ≥ 5)."""

    per_minute: int
    burst: int = 0
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key → (tokens, at)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.per_minute < 0:
            raise ValueError("per_minute must be ≥ 0 (0 turns the limit off)")
        self.burst = self.burst or max(5, self.per_minute // 10)

    def check(self, key_id: str, now: float | None = None) -> None:
        """Take one token for `key_id` or raise 429 `rate_limited` with the wait until the next token."""
        if self.per_minute == 0:
            return
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, at = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                wait = (1.0 - tokens) / rate
                raise PlatformError(
                    ErrorCode.RATE_LIMITED,
                    f"this API key is limited to {self.per_minute} requests per minute",
                    429,
                    True,
                    retry_after_seconds(wait),
                )
            self._buckets[key_id] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_TRACKED_KEYS:
                self._forget_full(now, rate)

    def _forget_full(self, now: float, rate: float) -> None:
        full = [k for k, (t, at) in self._buckets.items() if t + (now - at) * rate >= self.burst]
        for key in full:
            del self._buckets[key]
