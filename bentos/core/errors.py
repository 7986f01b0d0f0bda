"""The platform's one error type, its codes, and the mapping from each boundary's errors to it (HTTP happens once,
in api/)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from encoders.audio import AudioError

if TYPE_CHECKING:
    from bentos.chain.errors import ChainUnavailable
    from bentos.stepfun.errors import StepFunError


class ErrorCode(enum.StrEnum):
    """Every code a client can meet in the error envelope (and in a persona's `failure.code`)."""

    # the request itself
    INVALID_REQUEST = "invalid_request"
    REQUEST_TOO_LARGE = "request_too_large"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    HTTP_ERROR = "http_error"
    # who is asking
    UNAUTHENTICATED = "unauthenticated"
    INVALID_API_KEY = "invalid_api_key"
    ACCOUNT_BANNED = "account_banned"
    FORBIDDEN = "forbidden"
    # accounts
    INVALID_NAME = "invalid_name"
    INVALID_EMAIL = "invalid_email"
    INVALID_ROLE = "invalid_role"
    INVALID_WALLET = "invalid_wallet"
    EMAIL_TAKEN = "email_taken"
    # signing in (passwords, sessions, reset tokens, key scopes)
    INVALID_PASSWORD = "invalid_password"
    INVALID_CREDENTIALS = "invalid_credentials"
    SESSION_EXPIRED = "session_expired"
    INVALID_RESET_TOKEN = "invalid_reset_token"
    INVALID_SCOPE = "invalid_scope"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    # idempotency keys
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    # uploads (the audio intake's codes, encoders.audio.AudioError)
    AMBIGUOUS_UPLOAD = "ambiguous_upload"
    FILE_TOO_LARGE = "file_too_large"
    UNSUPPORTED_FORMAT = "unsupported_format"
    CORRUPT_AUDIO = "corrupt_audio"
    AUDIO_TOO_SHORT = "audio_too_short"
    AUDIO_TOO_LONG = "audio_too_long"
    NO_SPEECH = "no_speech"
    BLOB_MISSING = "blob_missing"
    BLOB_CORRUPT = "blob_corrupt"
    # personas and speech
    CONSENT_REQUIRED = "consent_required"
    CONSENT_NOT_VERIFIED = "consent_not_verified"  # a public/unlisted persona needs a verified challenge
    INVALID_PERSONA = "invalid_persona"
    VOICE_REVOKED = "voice_revoked"
    VOICE_RETIRED = "voice_retired"  # a clone step met the provider voice of a withdrawn persona
    VOICE_NOT_READY = "voice_not_ready"
    INVALID_TEXT = "invalid_text"
    # trust: retry, preview, impersonation review, reports
    PERSONA_NOT_FAILED = "persona_not_failed"
    IMPERSONATION_SUSPECTED = "impersonation_suspected"
    NOT_IN_REVIEW = "not_in_review"
    REPORT_CLOSED = "report_closed"
    # the voice provider (provider_failure)
    PROVIDER_MISCONFIGURED = "provider_misconfigured"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    CONTENT_BLOCKED = "content_blocked"
    PROVIDER_INPUT_INVALID = "provider_input_invalid"
    PROVIDER_BAD_RESPONSE = "provider_bad_response"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    # billing
    PAYOUT_WALLET_MISSING = "payout_wallet_missing"
    NOTHING_TO_SETTLE = "nothing_to_settle"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    SPEND_CAP_REACHED = "spend_cap_reached"
    RATE_LIMITED = "rate_limited"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_SIGNATURE = "invalid_signature"
    CHALLENGE_EXPIRED = "challenge_expired"
    # webhooks
    INVALID_WEBHOOK_URL = "invalid_webhook_url"
    # the chain node
    CHAIN_UNAVAILABLE = "chain_unavailable"
    # ours
    DATABASE_UNAVAILABLE = "database_unavailable"
    INTERNAL_ERROR = "internal_error"


class PlatformError(Exception):
    """An error a client sees: stable code, human message, HTTP status, and whether retrying can help."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        retryable: bool = False,
        retry_after: int | None = None,
        details: dict[str, int | str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable
        # Whole seconds for the Retry-After header; a 429/503 without one gets DEFAULT_RETRY_AFTER_S.
        self.retry_after = retry_after
        self.details = details  # machine-readable specifics, e.g. {"needed": …, "available": …} for a 402

    def envelope(self) -> dict[str, dict[str, object]]:
        body: dict[str, object] = {
            "code": str(self.code),
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.details:
            body["details"] = self.details
        return {"error": body}


DEFAULT_RETRY_AFTER_S = 1


def retry_after_seconds(seconds: float | None) -> int:
    """A Retry-After value: whole seconds, at least 1 (a client told 0 would hammer us)."""
    if seconds is None:
        return DEFAULT_RETRY_AFTER_S
    return max(1, math.ceil(seconds))


def not_found(what: str) -> PlatformError:
    return PlatformError(ErrorCode.NOT_FOUND, f"{what} was not found", 404)


def forbidden(message: str) -> PlatformError:
    return PlatformError(ErrorCode.FORBIDDEN, message, 403)


def from_audio_error(err: AudioError) -> PlatformError:
    status = 413 if err.code == "file_too_large" else 415 if err.code == "unsupported_format" else 422
    return PlatformError(ErrorCode(err.code), err.message, status)


@dataclass(frozen=True)
class ProviderFailure:
    """What a StepFun failure means for our callers: the same code on /tts and in a persona's failure."""

    code: ErrorCode
    message: str
    status: int
    retryable: bool
    retry_after: int | None = None  # seconds, for a 429/503


def provider_failure(err: StepFunError) -> ProviderFailure:
    """Map a StepFun failure to platform terms (never the provider key, never a trace). Whether retrying can
    help is the StepFun boundary's judgement (`err.retryable`); the code says what happened."""
    from bentos.stepfun import errors as sf

    def failure(code: ErrorCode, message: str, status: int) -> ProviderFailure:
        wait = retry_after_seconds(err.retry_after) if status in (429, 503) else None
        return ProviderFailure(code, message, status, err.retryable, wait)

    if isinstance(err, sf.ProviderConfigError):  # our key or balance: the operator must act
        return failure(
            ErrorCode.PROVIDER_MISCONFIGURED, "the voice provider is misconfigured; we have been alerted", 503
        )
    if isinstance(err, sf.RateLimited):  # the provider's 429, or our limiter's refusal (ProviderBusy)
        message = err.message if err.code == "provider_busy" else "the voice provider is busy; retry shortly"
        return failure(ErrorCode.PROVIDER_RATE_LIMITED, message, 429)
    if isinstance(err, sf.ContentBlocked):
        return failure(ErrorCode.CONTENT_BLOCKED, "the text was refused by content moderation", 451)
    if isinstance(err, sf.InputRejected):
        return failure(
            ErrorCode.PROVIDER_INPUT_INVALID, f"the voice provider refused the request: {err.message}", 422
        )
    if isinstance(err, sf.ProviderProtocolError):
        return failure(
            ErrorCode.PROVIDER_BAD_RESPONSE, "the voice provider gave an answer we can't read", 502
        )
    return failure(ErrorCode.PROVIDER_UNAVAILABLE, "the voice provider is not answering; retry shortly", 503)


def from_provider_error(err: StepFunError) -> PlatformError:
    failure = provider_failure(err)
    return PlatformError(
        failure.code, failure.message, failure.status, failure.retryable, failure.retry_after
    )


CHAIN_RETRY_AFTER_S = 5  # a node restart or a network blip; the outbox keeps every write meanwhile


def from_chain_unavailable(err: ChainUnavailable) -> PlatformError:
    """The chain node can't be reached (or timed out): a read that needs it is a retryable 503, never a 500."""
    return PlatformError(
        ErrorCode.CHAIN_UNAVAILABLE,
        "the chain node is not answering; retry shortly",
        503,
        retryable=True,
        retry_after=CHAIN_RETRY_AFTER_S,
    )


DATABASE_RETRY_AFTER_S = 2


def outage_of(err: BaseException) -> PlatformError | None:
    """The dependency outage behind an unexpected error, as the retryable 503 a caller should see: the database
    unreachable, restarting or too busy to answer (its driver's operational errors). None for anything else."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(err, OperationalError | InterfaceError) or (
        isinstance(err, DBAPIError) and err.connection_invalidated
    ):
        return PlatformError(
            ErrorCode.DATABASE_UNAVAILABLE,
            "the database is not answering; retry shortly",
            503,
            True,
            DATABASE_RETRY_AFTER_S,
        )
    return None
