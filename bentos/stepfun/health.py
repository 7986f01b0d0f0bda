"""Provider health the platform reports (`/health`) and the Prometheus counters of the StepFun boundary.

A configuration error (bad key, no balance) or an open circuit makes the provider 'degraded'; a later
successful call makes it 'ok' again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal

import pybreaker
from prometheus_client import Counter

from .errors import ProviderConfigError

log = logging.getLogger("bentos.stepfun")

CONFIG_ERRORS = Counter(
    "stepfun_config_errors", "StepFun answers that need an operator (invalid key, quota exceeded)", ["code"]
)
RETRIES = Counter("stepfun_retries", "StepFun calls retried after a retryable failure", ["code"])
BREAKER_OPENINGS = Counter("stepfun_breaker_openings", "Times the StepFun circuit breaker opened")

HealthState = Literal["ok", "degraded"]


class ProviderHealth(pybreaker.CircuitBreakerListener):
    """state 'ok'|'degraded' and why. Thread-safe; shared by a sync and an async client if both are built."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config_error: str | None = None
        self._breaker_open = False
        self.changed_at = time.time()

    @property
    def state(self) -> HealthState:
        return "degraded" if (self._config_error or self._breaker_open) else "ok"

    @property
    def reason(self) -> str | None:
        if self._config_error:
            return self._config_error
        return (
            "circuit_open: provider failing, calls suspended until a probe succeeds"
            if self._breaker_open
            else None
        )

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "reason": self.reason, "changed_at": self.changed_at}

    def record_config_error(self, error: ProviderConfigError) -> None:
        """Count every occurrence; log at ERROR only when the state changes (not once per call)."""
        CONFIG_ERRORS.labels(code=error.code).inc()
        reason = f"{error.code}: {error.message}"
        with self._lock:
            first = self._config_error != reason
            self._config_error = reason
            if first:
                self.changed_at = time.time()
        if first:
            # error.message is already redacted; the key is never passed here.
            log.error("StepFun configuration error, operator action needed: %s", reason)

    def record_success(self) -> None:
        with self._lock:
            if self._config_error is not None:
                self._config_error = None
                self.changed_at = time.time()
                log.warning("StepFun configuration error cleared: calls succeed again")

    # pybreaker listener hook: mirror the breaker state into health.
    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        is_open = new_state.name != pybreaker.STATE_CLOSED  # half-open: a probe decides
        with self._lock:
            changed = is_open != self._breaker_open
            self._breaker_open = is_open
            if changed:
                self.changed_at = time.time()
        if changed and is_open:
            BREAKER_OPENINGS.inc()
            log.error("StepFun circuit breaker opened after %d failures", cb.fail_max)
        elif changed:
            log.warning("StepFun circuit breaker closed")
