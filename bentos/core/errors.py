"""The platform's one error type and the mapping from each boundary's errors to it (HTTP happens once, in api/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from encoders.audio import AudioError

if TYPE_CHECKING:
    from bentos.stepfun.errors import StepFunError


class PlatformError(Exception):
    """An error a client sees: stable code, human message, HTTP status, and whether retrying can help."""

    def __init__(self, code: str, message: str, status: int = 400, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable

    def envelope(self) -> dict[str, dict[str, object]]:
        return {"error": {"code": self.code, "message": self.message, "retryable": self.retryable}}


def not_found(what: str) -> PlatformError:
    return PlatformError("not_found", f"{what} was not found", 404)


def forbidden(message: str) -> PlatformError:
    return PlatformError("forbidden", message, 403)


def from_audio_error(err: AudioError) -> PlatformError:
    status = 413 if err.code == "file_too_large" else 415 if err.code == "unsupported_format" else 422
    return PlatformError(err.code, err.message, status)


def from_provider_error(err: StepFunError) -> PlatformError:
    """Map a StepFun failure to what our caller sees (never the provider key, never a trace)."""
    from bentos.stepfun import errors as sf

    if isinstance(err, sf.ProviderConfigError):
        return PlatformError(
            "provider_unavailable", "the voice provider is misconfigured; we have been alerted", 503
        )
    if isinstance(err, sf.RateLimited):
        return PlatformError("provider_rate_limited", "the voice provider is busy; retry shortly", 429, True)
    if isinstance(err, sf.ContentBlocked):
        return PlatformError("content_blocked", "the text was refused by content moderation", 451)
    if isinstance(err, sf.InputRejected):
        return PlatformError(
            "provider_input_invalid", f"the voice provider refused the request: {err.message}", 422
        )
    return PlatformError(
        "provider_unavailable", "the voice provider is not answering; retry shortly", 503, True
    )
