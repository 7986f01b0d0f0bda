"""One exception hierarchy for the StepFun boundary, mapped once from HTTP status + the error envelope.

The platform maps these to its own envelope: `code` is the provider's machine-readable type, `retryable` says
whether trying again later can succeed.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import ClassVar

import httpx

# Bearer-looking tokens echoed by a server ("Incorrect API key provided: sk-...") are masked even when they
# are not our key; our own key is removed by exact match first.
_TOKEN_RE = re.compile(r"\b(sk|key|Bearer)[-_ ]?[A-Za-z0-9._\-]{6,}", re.IGNORECASE)


def redact(text: str, secret: str | None) -> str:
    """text with the API key (and anything that looks like a bearer token) replaced by `***`."""
    if secret:
        text = text.replace(secret, "***")
    return _TOKEN_RE.sub(lambda m: f"{m.group(1)}***", text)


class StepFunError(Exception):
    """Any failure talking to StepFun. code: provider error type; status: HTTP status (None: no response)."""

    retryable: ClassVar[bool] = False
    default_code: ClassVar[str] = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}{where}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class ProviderConfigError(StepFunError):
    """The operator must act (wrong key 401, out of balance 402): never retried; flips provider health."""

    default_code = "invalid_api_key"


class InputRejected(StepFunError):
    """The request itself is wrong (400: bad model/param/voice, no speech found): the caller's error."""

    default_code = "request_params_invalid"


class NotFound(InputRejected):
    """A file or voice id the provider does not know."""

    default_code = "not_found"


class ContentBlocked(StepFunError):
    """Content moderation refused the text (451): tell the user, never retry."""

    default_code = "censorship_blocked"


class RateLimited(StepFunError):
    """429: back off (at least `retry_after` seconds when the server said so) and retry."""

    retryable = True
    default_code = "rate_limit_exceeded"


class ProviderServerError(StepFunError):
    """5xx from the provider: retried with backoff, counted by the circuit breaker."""

    retryable = True
    default_code = "server_error"


class ProviderTimeout(StepFunError):
    """No (complete) answer in time."""

    retryable = True
    default_code = "timeout"


class ProviderConnectionError(StepFunError):
    """The provider could not be reached (refused, reset, DNS)."""

    retryable = True
    default_code = "connection_error"


class ProviderUnavailable(StepFunError):
    """The circuit breaker is open: no call was made. Retryable later, not by this client now."""

    retryable = True
    default_code = "provider_unavailable"


class ProviderProtocolError(StepFunError):
    """A 2xx answer whose body does not have the documented shape."""

    default_code = "bad_response"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _envelope(body: bytes) -> tuple[str | None, str | None]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        kind, message = error.get("type") or error.get("code"), error.get("message")
        return (str(kind) if kind else None), (str(message) if message else None)
    if isinstance(error, str):
        return None, error
    return None, None


def error_from_response(response: httpx.Response, secret: str | None) -> StepFunError:
    """Map a non-2xx response (body already read) to the hierarchy; the message is redacted of the key."""
    status = response.status_code
    kind, message = _envelope(response.content)
    message = redact(message or response.reason_phrase or f"HTTP {status}", secret)[:500]
    request_id = response.headers.get("x-request-id")
    common = {"code": kind, "status": status, "request_id": request_id}
    if status in (401, 403) or kind == "invalid_api_key":
        return ProviderConfigError(message, **common)
    if status == 402 or kind == "quota_exceeded":
        return ProviderConfigError(message, **{**common, "code": kind or "quota_exceeded"})
    if status == 429:
        return RateLimited(
            message, retry_after=parse_retry_after(response.headers.get("retry-after")), **common
        )
    if status == 451:
        return ContentBlocked(message, **common)
    if status == 404:
        return NotFound(message, **common)
    if status == 408:
        return ProviderTimeout(message, **common)
    if 400 <= status < 500:
        return InputRejected(message, **common)
    if status >= 500:
        return ProviderServerError(message, **common)
    return StepFunError(message, **common)


def error_from_transport(exc: httpx.TransportError) -> StepFunError:
    """Map an httpx transport failure; httpx messages carry no headers, so no key can leak through them."""
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return ProviderConnectionError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
