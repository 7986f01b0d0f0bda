"""The I/O-free half of the client, shared by the sync and async clients: what each call sends, how its
answer is parsed, the retry policy (tenacity), the circuit-breaker guard (pybreaker) and SSE decoding.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import httpx
import pybreaker
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.stop import stop_base

from .chat_models import ChatDelta, ChatReply, ChatRequest
from .errors import (
    ProviderConfigError,
    ProviderProtocolError,
    ProviderServerError,
    ProviderUnavailable,
    RateLimited,
    StepFunError,
    error_from_response,
    error_from_transport,
    redact,
)
from .health import RETRIES, ProviderHealth
from .limiter import ProviderBusy
from .models import (
    CONTENT_TYPES,
    ClonedVoice,
    FileDeletion,
    SpeechAudio,
    SpeechEvent,
    SpeechRequest,
    StepFile,
    SystemVoice,
    VoicePage,
    VoicePreview,
    b64_audio,
    system_voices_from_json,
)
from .settings import ProviderSettings

log = logging.getLogger("bentos.stepfun")
T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: the request to send and how to turn a 2xx response into a typed result."""

    operation: str
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    data: Mapping[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.json is not None:
            kwargs["json"] = dict(self.json)
        if self.params is not None:
            kwargs["params"] = {k: v for k, v in self.params.items() if v is not None}
        if self.files is not None:
            kwargs["files"] = dict(self.files)
        if self.data is not None:
            kwargs["data"] = dict(self.data)
        return kwargs


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderProtocolError(f"expected JSON, got {response.headers.get('content-type')!r}") from exc
    if not isinstance(body, dict):
        raise ProviderProtocolError("expected a JSON object")
    return body


def _typed(build: Callable[[dict[str, Any]], T]) -> Callable[[httpx.Response], T]:
    def parse(response: httpx.Response) -> T:
        body = _json(response)
        try:
            return build(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderProtocolError(f"unexpected response shape: {type(exc).__name__} {exc}") from exc

    return parse


# ---- the operations (one definition each; both clients call these) ----


def upload_file(content: bytes, filename: str, purpose: str = "storage") -> Call[StepFile]:
    mime = "audio/mpeg" if filename.lower().endswith(".mp3") else "audio/wav"
    return Call(
        "upload_file", "POST", "/files", _typed(StepFile.from_json),
        files={"file": (filename, content, mime)}, data={"purpose": purpose},
    )  # fmt: skip


def list_files(purpose: str | None = None) -> Call[list[StepFile]]:
    return Call(
        "list_files", "GET", "/files", _typed(lambda d: [StepFile.from_json(f) for f in d.get("data") or []]),
        params={"purpose": purpose},
    )  # fmt: skip


def get_file(file_id: str) -> Call[StepFile]:
    return Call("get_file", "GET", f"/files/{file_id}", _typed(StepFile.from_json))


def file_content(file_id: str) -> Call[bytes]:
    return Call("file_content", "GET", f"/files/{file_id}/content", lambda r: r.content)


def delete_file(file_id: str) -> Call[FileDeletion]:
    return Call(
        "delete_file", "DELETE", f"/files/{file_id}",
        _typed(lambda d: FileDeletion(str(d["id"]), bool(d.get("deleted")))),
    )  # fmt: skip


def create_voice(model: str, file_id: str, text: str | None, sample_text: str | None) -> Call[ClonedVoice]:
    body = {"model": model, "file_id": file_id, "text": text, "sample_text": sample_text}
    return Call(
        "create_voice", "POST", "/audio/voices", _typed(ClonedVoice.from_json),
        json={k: v for k, v in body.items() if v is not None},
    )  # fmt: skip


def preview_voice(
    model: str, file_id: str, sample_text: str, text: str | None, options: Mapping[str, Any]
) -> Call[VoicePreview]:
    body = {"model": model, "file_id": file_id, "sample_text": sample_text, "text": text, **options}
    return Call(
        "preview_voice", "POST", "/audio/voices/preview", _typed(VoicePreview.from_json),
        json={k: v for k, v in body.items() if v is not None},
    )  # fmt: skip


def list_voices(
    limit: int = 20, order: str = "desc", before: str | None = None, after: str | None = None
) -> Call[VoicePage]:
    return Call(
        "list_voices", "GET", "/audio/voices", _typed(VoicePage.from_json),
        params={"limit": limit, "order": order, "before": before, "after": after},
    )  # fmt: skip


def system_voices(model: str) -> Call[list[SystemVoice]]:
    return Call(
        "system_voices",
        "GET",
        "/audio/system_voices",
        _typed(system_voices_from_json),
        params={"model": model},
    )


def speech(request: SpeechRequest) -> Call[SpeechAudio]:
    def parse(response: httpx.Response) -> SpeechAudio:
        rid = response.headers.get("x-request-id")
        if request.return_url:
            body = _json(response)
            return SpeechAudio(b"", "application/json", request.format, rid, url=str(body.get("url") or ""))
        ctype = response.headers.get("content-type", CONTENT_TYPES[request.format]).split(";")[0]
        return SpeechAudio(response.content, ctype, request.format, rid)

    return Call("speech", "POST", "/audio/speech", parse, json=request.payload())


def chat(request: ChatRequest) -> Call[ChatReply]:
    """OpenAI-compatible chat completion; the streamed form (stream=True) is read with `ChatSseDecoder`."""
    return Call("chat", "POST", "/chat/completions", _typed(ChatReply.from_json), json=request.payload())


# ---- retries ----


@dataclass(frozen=True)
class RetryEvent:
    """Reported before each backoff sleep: which attempt failed, why, and how long we wait."""

    operation: str
    attempt: int
    wait_s: float
    error: StepFunError


def backoff_wait(settings: ProviderSettings, rng: random.Random) -> Callable[[RetryCallState], float]:
    """Capped exponential backoff with full jitter; a Retry-After from the server is a floor."""

    def wait(state: RetryCallState) -> float:
        ceiling = min(settings.backoff_cap_s, settings.backoff_base_s * 2 ** (state.attempt_number - 1))
        delay = rng.uniform(0.0, ceiling)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, StepFunError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay

    return wait


def _retryable(exc: BaseException) -> bool:
    # An open breaker is retryable *later*, not in this loop: looping would just spin on the open circuit.
    # Our own limiter's refusal already waited the caller's budget: it goes up with its Retry-After.
    return (
        isinstance(exc, StepFunError)
        and exc.retryable
        and not isinstance(exc, ProviderUnavailable | ProviderBusy)
    )


class _RetryAfterTooLong(stop_base):
    """Stop when the server asks for a longer pause than we are willing to sleep through."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return isinstance(exc, RateLimited) and exc.retry_after is not None and exc.retry_after > self.limit_s


def retry_policy(
    settings: ProviderSettings,
    operation: str,
    rng: random.Random,
    on_retry: Callable[[RetryEvent], None] | None,
) -> dict[str, Any]:
    """Keyword arguments for tenacity's Retrying / AsyncRetrying (the same policy for both clients)."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        assert isinstance(exc, StepFunError)
        wait_s = state.next_action.sleep if state.next_action else 0.0
        RETRIES.labels(code=exc.code).inc()
        log.warning(
            "StepFun %s failed (%s), attempt %d/%d, retrying in %.2fs",
            operation, exc.code, state.attempt_number, settings.max_attempts, wait_s,
        )  # fmt: skip
        if on_retry is not None:
            on_retry(RetryEvent(operation, state.attempt_number, wait_s, exc))

    return {
        "stop": stop_after_attempt(settings.max_attempts)
        | stop_after_delay(settings.retry_deadline_s)
        | _RetryAfterTooLong(settings.retry_after_max_s),
        "wait": backoff_wait(settings, rng),
        "retry": retry_if_exception(_retryable),
        "before_sleep": before_sleep,
        "reraise": True,
    }


# ---- breaker + error mapping around one attempt ----


def counts_as_failure(exc: BaseException) -> bool:
    """What the breaker counts: the provider failing (5xx, timeouts, connection errors). A 429 is the provider
    answering that we are over our tier — it is healthy, and tripping on it would refuse every caller for a
    cool-down because one of them was too fast. The caller's 4xx and config errors say nothing of upstream."""
    return isinstance(exc, StepFunError) and exc.retryable and not isinstance(exc, RateLimited)


def new_breaker(settings: ProviderSettings, health: ProviderHealth) -> pybreaker.CircuitBreaker:
    """Counts only provider failures (`counts_as_failure`); anything else counts as the provider answering."""
    return pybreaker.CircuitBreaker(
        fail_max=settings.breaker_fail_max,
        reset_timeout=settings.breaker_reset_timeout_s,
        exclude=[lambda exc: not counts_as_failure(exc)],
        listeners=[health],
        throw_new_error_on_trip=False,  # the failure that tripped it is the more useful error
        name="stepfun",
    )


def breaker_cooldown_left(breaker: pybreaker.CircuitBreaker) -> float:
    """Seconds until an open breaker lets a probe through (its whole reset timeout when unknown)."""
    opened_at = getattr(breaker._state_storage, "opened_at", None)
    reset = float(breaker.reset_timeout)
    if not isinstance(opened_at, datetime):
        return reset
    elapsed = (datetime.now(UTC) - opened_at).total_seconds()
    return max(0.0, min(reset, reset - elapsed))


@contextmanager
def guarded_attempt(breaker: pybreaker.CircuitBreaker, health: ProviderHealth) -> Iterator[None]:
    """Run one HTTP attempt: transport errors → our hierarchy, breaker bookkeeping, health on config errors.

    pybreaker's `calling()` keeps no lock while the block runs, so an `await` inside it is fine.
    """
    try:
        with breaker.calling():
            try:
                yield
            except httpx.TransportError as exc:
                raise error_from_transport(exc) from exc
    except pybreaker.CircuitBreakerError as exc:
        raise ProviderUnavailable(
            "circuit open: StepFun is failing, calls are suspended for a cool-down",
            retry_after=breaker_cooldown_left(breaker),
        ) from exc
    except ProviderConfigError as exc:
        health.record_config_error(exc)
        raise
    health.record_success()


def check(response: httpx.Response, secret: str | None) -> httpx.Response:
    """Raise the mapped error for a non-2xx response whose body has been read."""
    if response.is_success:
        return response
    raise error_from_response(response, secret)


# ---- SSE ----


class SseDecoder:
    """Feed it lines of a `text/event-stream`; it returns the speech events (sans-I/O, for both clients)."""

    def __init__(self) -> None:
        self.done = False

    def feed(self, line: str) -> SpeechEvent | None:
        line = line.rstrip("\r")
        if not line.startswith("data:"):
            return None  # blank separators, comments (':'), 'event:'/'id:' lines
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return None
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise ProviderProtocolError("malformed SSE data line") from exc
        kind = str(event.get("type", ""))
        if kind == "speech.audio.delta":
            return SpeechEvent(kind, audio=b64_audio(event.get("audio")) or b"")
        if kind == "speech.audio.error":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            return SpeechEvent(
                kind, message=str(error.get("message") or event.get("message") or "synthesis failed")
            )
        return SpeechEvent(kind)


def event_audio(event: SpeechEvent, secret: str | None) -> bytes | None:
    """The audio bytes of a delta; raises for an error event (mid-stream: not retried)."""
    if event.type == "speech.audio.error":
        raise ProviderServerError(
            redact(event.message or "synthesis failed", secret), code="speech.audio.error"
        )
    return event.audio if event.type == "speech.audio.delta" else None


class ChatSseDecoder:
    """Feed it lines of a streamed chat completion; it returns each chunk's delta. A mid-stream error chunk
    (`data: {"error": {...}}`, as OpenAI-compatible servers send once the status line is gone) raises."""

    def __init__(self, secret: str | None) -> None:
        self.done = False
        self._secret = secret

    def feed(self, line: str) -> ChatDelta | None:
        line = line.rstrip("\r")
        if not line.startswith("data:"):
            return None
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return None
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise ProviderProtocolError("malformed SSE data line") from exc
        if not isinstance(chunk, dict):
            raise ProviderProtocolError("expected a JSON object per chat chunk")
        error = chunk.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else str(error)
            kind = error.get("type") if isinstance(error, dict) else None
            raise ProviderServerError(
                redact(str(message or "the chat stream failed"), self._secret), code=str(kind or "chat.error")
            )
        try:
            return ChatDelta.from_json(chunk)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderProtocolError(f"unexpected chat chunk shape: {type(exc).__name__}") from exc
