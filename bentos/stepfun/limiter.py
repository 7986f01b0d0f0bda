"""The platform-side limiter in front of the StepFun client: the account's tier (RPM + concurrency), shared fairly.

StepFun limits an API key to a tier (V0: 10 requests/min, 5 in flight). Sending past it only earns 429s, so every
attempt of both clients first takes a permit here:

- the tier: a sliding window of request starts (`window_s`, a little over the provider's 60 s) and an in-flight
  count, both across the whole process;
- a fair share: one caller (an account; all pipeline work is the caller "pipeline") holds at most `caller_share`
  of the tier's RPM and concurrency, so a burst from one leaves room for the next;
- a bounded wait: interactive calls (TTS, tagged with `calling_as(..., interactive=True)`) wait at most
  `interactive_wait_s` for a slot, background calls `background_wait_s`; a slot that can't free in time is
  refused at once with `ProviderBusy`, whose `retry_after` says when it will.

In-process only (a lock, no I/O under it), usable from threads and from asyncio (the async path never blocks the
event loop: it polls with short sleeps). With several replicas each has its own limiter: split the tier between
them (`TierSettings`). A refusal is not a provider failure and never reaches the circuit breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from prometheus_client import Counter as Metric
from prometheus_client import Histogram

from .errors import RateLimited
from .settings import ProviderSettings, TierSettings

BACKGROUND = "pipeline"
REFUSALS = Metric(
    "stepfun_limiter_refusals", "Provider calls our tier limiter refused (no request sent)", ["caller_kind"]
)
WAITS = Histogram(
    "stepfun_limiter_wait_seconds",
    "Time a provider call waited for our tier limiter (granted or refused)",
    ["caller_kind"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
_POLL_S = 0.02  # how often a waiter for a concurrency slot looks again (async; sync waiters are notified)


class ProviderBusy(RateLimited):
    """Our own limiter refused the call: the tier (or the caller's share of it) is in use. No request was sent.

    Retryable later (`retry_after` seconds), but not by the client's retry loop: the wait already happened."""

    default_code = "provider_busy"


@dataclass(frozen=True)
class CallerTag:
    key: str
    interactive: bool


_CALLER: ContextVar[CallerTag | None] = ContextVar("stepfun_caller", default=None)


@contextlib.contextmanager
def calling_as(key: str, *, interactive: bool) -> Iterator[None]:
    """Provider calls made inside (this thread or task) count against `key`'s share and wait as `interactive`."""
    token = _CALLER.set(CallerTag(key, interactive))
    try:
        yield
    finally:
        _CALLER.reset(token)


def current_caller() -> CallerTag:
    return _CALLER.get() or CallerTag(BACKGROUND, interactive=False)


class Permit:
    """One request's slot; release() (idempotent) frees its concurrency slot. Its RPM use stays counted."""

    def __init__(self, limiter: ProviderLimiter | None, key: str) -> None:
        self._limiter = limiter
        self.key = key

    def release(self) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._release(self.key)


NO_PERMIT = Permit(None, "")


class ProviderLimiter:
    """Tier + per-caller share; `acquire`/`acquire_async` return a Permit or raise ProviderBusy."""

    def __init__(self, tier: TierSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.tier = tier
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._starts: deque[float] = deque()
        self._caller_starts: dict[str, deque[float]] = {}
        self._in_flight = 0
        self._caller_in_flight: Counter[str] = Counter()

    @property
    def caller_rpm(self) -> int:
        return max(1, math.floor(self.tier.rpm * self.tier.caller_share)) if self.tier.rpm else 0

    @property
    def caller_concurrency(self) -> int:
        c = self.tier.concurrency
        return max(1, math.floor(c * self.tier.caller_share)) if c else 0

    def snapshot(self) -> dict[str, int]:
        with self._cond:
            self._expire(self._clock())
            return {"in_flight": self._in_flight, "window_starts": len(self._starts)}

    # -- the decision (under the lock) --------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        horizon = now - self.tier.window_s
        while self._starts and self._starts[0] <= horizon:
            self._starts.popleft()
        for key in list(self._caller_starts):
            starts = self._caller_starts[key]
            while starts and starts[0] <= horizon:
                starts.popleft()
            if not starts:
                del self._caller_starts[key]

    def _try(self, key: str, now: float) -> tuple[float, bool]:
        """(0, _) and the slot is taken; else (seconds until it may free, whether that time is known)."""
        self._expire(now)
        tier, mine = self.tier, self._caller_starts.get(key, deque())
        waits: list[float] = []
        if tier.rpm and len(self._starts) >= tier.rpm:
            waits.append(self._starts[0] + tier.window_s - now)
        if tier.rpm and len(mine) >= self.caller_rpm:
            waits.append(mine[0] + tier.window_s - now)
        busy = bool(tier.concurrency) and (
            self._in_flight >= tier.concurrency or self._caller_in_flight[key] >= self.caller_concurrency
        )
        if waits:
            return max(max(waits), 1e-3), True
        if busy:
            return _POLL_S, False  # a slot frees when some call ends: unknown when
        if tier.rpm:
            self._starts.append(now)
            self._caller_starts.setdefault(key, deque()).append(now)
        self._in_flight += 1
        self._caller_in_flight[key] += 1
        return 0.0, True

    def _release(self, key: str) -> None:
        with self._cond:
            self._in_flight -= 1
            self._caller_in_flight[key] -= 1
            if self._caller_in_flight[key] <= 0:
                del self._caller_in_flight[key]
            self._cond.notify_all()

    def _refuse(self, tag: CallerTag, wait: float, known: bool) -> ProviderBusy:
        retry_after = max(1, math.ceil(wait)) if known else 1
        REFUSALS.labels(caller_kind="interactive" if tag.interactive else "background").inc()
        who = "your share of" if self._share_binds(tag.key) else "all of"
        return ProviderBusy(
            f"{who} the voice provider's capacity is in use; retry in {retry_after}s", retry_after=retry_after
        )

    def _share_binds(self, key: str) -> bool:
        with self._cond:
            mine = len(self._caller_starts.get(key, ()))
            return (bool(self.tier.rpm) and mine >= self.caller_rpm) or (
                bool(self.tier.concurrency) and self._caller_in_flight[key] >= self.caller_concurrency
            )

    def _waited(self, tag: CallerTag, start: float) -> None:
        kind = "interactive" if tag.interactive else "background"
        WAITS.labels(caller_kind=kind).observe(max(0.0, self._clock() - start))

    def _budget(self, tag: CallerTag) -> float:
        return self.tier.interactive_wait_s if tag.interactive else self.tier.background_wait_s

    # -- waiting --------------------------------------------------------------------------------------------

    def acquire(self, tag: CallerTag | None = None) -> Permit:
        """Block (this thread) until a slot is ours or the wait budget is spent (→ ProviderBusy)."""
        tag = tag or current_caller()
        start = self._clock()
        deadline = start + self._budget(tag)
        with self._cond:
            while True:
                now = self._clock()
                wait, known = self._try(tag.key, now)
                if wait == 0.0:
                    self._waited(tag, start)
                    return Permit(self, tag.key)
                if (known and now + wait > deadline) or now >= deadline:
                    break
                self._cond.wait(timeout=min(wait, deadline - now))
        self._waited(tag, start)
        raise self._refuse(tag, wait, known)

    async def acquire_async(self, tag: CallerTag | None = None) -> Permit:
        """The asyncio twin of `acquire`: sleeps between looks, never holds the lock across an await."""
        tag = tag or current_caller()
        start = self._clock()
        deadline = start + self._budget(tag)
        while True:
            with self._cond:
                now = self._clock()
                wait, known = self._try(tag.key, now)
            if wait == 0.0:
                self._waited(tag, start)
                return Permit(self, tag.key)
            if (known and now + wait > deadline) or now >= deadline:
                self._waited(tag, start)
                raise self._refuse(tag, wait, known)
            await asyncio.sleep(min(wait, _POLL_S, deadline - now))


# One limiter per provider account (base URL + key) per process: the sync and async clients, and every platform
# built in this process, share the account's tier the way the provider counts it.
_SHARED: dict[tuple[str, str, TierSettings], ProviderLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(settings: ProviderSettings) -> ProviderLimiter | None:
    """The process-wide limiter for this account and tier; None when no tier is configured."""
    tier = settings.tier
    if tier is None or not tier.limited:
        return None
    account = hashlib.sha256((settings.secret or "").encode()).hexdigest()
    key = (settings.base_url.rstrip("/"), account, tier)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = ProviderLimiter(tier)
        return _SHARED[key]
