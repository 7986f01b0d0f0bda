"""StepFun audio clients over httpx: `StepFunClient` (sync) and `AsyncStepFunClient` (async).

Both are thin: every operation is defined once in `protocol.py`; these classes only do the I/O, inside
the shared retry policy and circuit breaker. Every attempt first takes a permit from the account's limiter
(`limiter.py`: the configured tier, shared fairly between callers); the permit is held until the response, a
streamed one included, has been read.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
from prometheus_client import Counter, Histogram
from tenacity import AsyncRetrying, Retrying

from . import protocol
from .chat_models import ChatDelta, ChatMessage, ChatReply, ChatRequest
from .errors import ProviderUnavailable, StepFunError
from .health import ProviderHealth
from .limiter import NO_PERMIT, Permit, ProviderLimiter, shared_limiter
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
)
from .protocol import Call, ChatSseDecoder, RetryEvent, SseDecoder, check, event_audio, guarded_attempt
from .settings import ProviderSettings

T = TypeVar("T")
E = TypeVar("E")  # what a streamed call yields: speech events, chat deltas
_USER_AGENT = "voxpersona-stepfun/0.1"
REQUESTS = Counter(
    "stepfun_requests",
    "StepFun HTTP attempts by endpoint and outcome (ok, http_<status>, timeout, connection_error, breaker_open)",
    ["endpoint", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "stepfun_request_seconds", "StepFun attempt time to response (first byte)", ["endpoint"]
)


class _ClientBase:
    """State and configuration shared by both clients (no I/O here)."""

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        health: ProviderHealth | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        seed: int | None = None,
        limiter: ProviderLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.health = health or ProviderHealth()
        self.breaker = protocol.new_breaker(settings, self.health)
        # Default: the process-wide limiter of this account's tier (None without a tier).
        self.limiter = limiter if limiter is not None else shared_limiter(settings)
        self._on_retry = on_retry
        self._rng = random.Random(seed)

    def _http_options(self) -> dict[str, Any]:
        s = self.settings
        headers = {"User-Agent": _USER_AGENT}
        if s.secret:
            headers["Authorization"] = f"Bearer {s.secret}"
        timeout = httpx.Timeout(
            connect=s.connect_timeout_s, read=s.read_timeout_s, write=s.write_timeout_s, pool=s.pool_timeout_s
        )
        return {"base_url": s.base_url.rstrip("/") + "/", "headers": headers, "timeout": timeout}

    @contextmanager
    def _attempt(self, endpoint: str) -> Iterator[None]:
        """One HTTP attempt inside the breaker (`guarded_attempt`), counted by outcome and timed."""
        started, outcome = time.perf_counter(), "ok"
        try:
            with guarded_attempt(self.breaker, self.health):
                yield
        except ProviderUnavailable as exc:
            outcome = f"http_{exc.status}" if exc.status else "breaker_open"
            raise
        except StepFunError as exc:
            outcome = f"http_{exc.status}" if exc.status else exc.code
            raise
        except BaseException:
            outcome = "error"
            raise
        finally:
            REQUESTS.labels(endpoint, outcome).inc()
            if outcome != "breaker_open":  # nothing was sent
                REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)

    def _policy(self, operation: str) -> dict[str, Any]:
        return protocol.retry_policy(self.settings, operation, self._rng, self._on_retry)

    def _speech_request(self, request: SpeechRequest | None, fields: Mapping[str, Any]) -> SpeechRequest:
        if request is not None:
            return request
        defaults = {"model": self.settings.speech_model, "voice": self.settings.default_voice}
        return SpeechRequest.model_validate({**defaults, **fields})

    def _chat_request(
        self, messages: list[ChatMessage], model: str | None, max_tokens: int | None, stream: bool
    ) -> ChatRequest:
        return ChatRequest(
            model=model or self.settings.chat_model,
            messages=messages,
            max_tokens=max_tokens,
            stream=True if stream else None,
        )

    @staticmethod
    def _path(call: Call[Any]) -> str:
        return call.path.lstrip("/")  # relative to base_url, which keeps its /v1

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self.settings.base_url!r}, health={self.health.state!r})"


class StepFunClient(_ClientBase):
    """Blocking client. Use as a context manager or call close(). Thread-safe (httpx.Client is)."""

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        health: ProviderHealth | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        seed: int | None = None,
        transport: httpx.BaseTransport | None = None,
        limiter: ProviderLimiter | None = None,
    ) -> None:
        super().__init__(settings, health=health, on_retry=on_retry, seed=seed, limiter=limiter)
        self._http = httpx.Client(transport=transport, **self._http_options())

    def __enter__(self) -> StepFunClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _permit(self) -> Permit:
        return self.limiter.acquire() if self.limiter is not None else NO_PERMIT

    def _execute(self, call: Call[T]) -> T:
        def attempt() -> T:
            permit = self._permit()
            try:
                with self._attempt(call.operation):
                    response = check(
                        self._http.request(call.method, self._path(call), **call.request_kwargs()),
                        self.settings.secret,
                    )
            finally:
                permit.release()
            return call.parse(response)

        return Retrying(**self._policy(call.operation))(attempt)

    # -- files
    def upload_file(
        self, content: bytes, filename: str = "reference.wav", purpose: str = "storage"
    ) -> StepFile:
        """Upload reference audio (wav/mp3, 5-10 s for cloning); its id feeds create_voice."""
        return self._execute(protocol.upload_file(content, filename, purpose))

    def list_files(self, purpose: str | None = None) -> list[StepFile]:
        return self._execute(protocol.list_files(purpose))

    def get_file(self, file_id: str) -> StepFile:
        return self._execute(protocol.get_file(file_id))

    def file_content(self, file_id: str) -> bytes:
        return self._execute(protocol.file_content(file_id))

    def delete_file(self, file_id: str) -> FileDeletion:
        return self._execute(protocol.delete_file(file_id))

    # -- voices
    def create_voice(
        self,
        file_id: str,
        *,
        model: str | None = None,
        text: str | None = None,
        sample_text: str | None = None,
    ) -> ClonedVoice:
        """Clone a voice from an uploaded file. duplicated=True: already cloned, same id, not billed again."""
        return self._execute(
            protocol.create_voice(model or self.settings.clone_model, file_id, text, sample_text)
        )

    def preview_voice(
        self,
        file_id: str,
        sample_text: str,
        *,
        model: str | None = None,
        text: str | None = None,
        **tts_options: Any,
    ) -> VoicePreview:
        """Hear a clone without creating it (nothing is stored, nothing billed as a clone)."""
        call = protocol.preview_voice(
            model or self.settings.clone_model, file_id, sample_text, text, tts_options
        )
        return self._execute(call)

    def list_voices(
        self, *, limit: int = 20, order: str = "desc", before: str | None = None, after: str | None = None
    ) -> VoicePage:
        return self._execute(protocol.list_voices(limit, order, before, after))

    def system_voices(self, model: str | None = None) -> list[SystemVoice]:
        return self._execute(protocol.system_voices(model or self.settings.speech_model))

    # -- speech
    def speech(self, request: SpeechRequest | None = None, **fields: Any) -> SpeechAudio:
        """Synthesise → the whole encoded body. With stream_format='sse' the deltas are joined for you."""
        req = self._speech_request(request, fields)
        if req.stream_format == "sse" and not req.return_url:
            audio = b"".join(self.stream_speech(req))
            return SpeechAudio(audio, CONTENT_TYPES[req.format], req.format)
        return self._execute(protocol.speech(req))

    def stream_speech(self, request: SpeechRequest | None = None, **fields: Any) -> Iterator[bytes]:
        """Yield encoded audio as it arrives (SSE deltas decoded). Retried only before the first byte."""
        for event in self._stream(self._speech_request(request, fields)):
            audio = event_audio(event, self.settings.secret)
            if audio:
                yield audio

    def speech_events(self, request: SpeechRequest | None = None, **fields: Any) -> Iterator[SpeechEvent]:
        """The raw SSE events of a stream_format='sse' request (errors are events, not exceptions)."""
        req = self._speech_request(request, fields)
        yield from self._stream(req.model_copy(update={"stream_format": "sse"}))

    def _stream(self, req: SpeechRequest) -> Iterator[SpeechEvent]:
        call = protocol.speech(req)
        sse = req.stream_format == "sse"
        yield from self._relay(call, call.operation, "stream_speech", lambda r: _sync_events(r, sse))

    def _relay(
        self, call: Call[Any], attempt: str, policy: str, events_of: Callable[[httpx.Response], Iterator[E]]
    ) -> Iterator[E]:
        """A streamed call: sending it and reading up to its first event is retried (the unit `open_first`);
        after the first event nothing is retried — a break raises, and what was yielded stays yielded."""

        def open_first() -> tuple[httpx.Response, Iterator[E], E | None, Permit]:
            permit = self._permit()
            try:
                with self._attempt(attempt):
                    request = self._http.build_request(call.method, self._path(call), **call.request_kwargs())
                    response = self._http.send(request, stream=True)
                    try:
                        if not response.is_success:
                            response.read()
                            check(response, self.settings.secret)
                        events = events_of(response)
                        first = next(events, None)
                    except BaseException:
                        response.close()
                        raise
            except BaseException:
                permit.release()
                raise
            return response, events, first, permit

        response, events, first, permit = Retrying(**self._policy(policy))(open_first)
        try:
            if first is not None:
                yield first
            try:
                yield from events
            except httpx.TransportError as exc:  # after the first event: the caller has some already
                raise protocol.error_from_transport(exc) from exc
        finally:
            response.close()
            permit.release()

    # -- chat
    def chat(
        self, messages: list[ChatMessage], *, model: str | None = None, max_tokens: int | None = None
    ) -> ChatReply:
        """One whole chat completion (OpenAI-compatible; `model` defaults to the configured chat model)."""
        return self._execute(protocol.chat(self._chat_request(messages, model, max_tokens, False)))

    def stream_chat(
        self, messages: list[ChatMessage], *, model: str | None = None, max_tokens: int | None = None
    ) -> Iterator[ChatDelta]:
        """The reply's deltas as they are generated. Retried only before the first chunk; a failure after it
        (an error chunk, a broken connection) raises, and what was yielded stays yielded."""
        call = protocol.chat(self._chat_request(messages, model, max_tokens, True))
        decoder = ChatSseDecoder(self.settings.secret)

        def deltas(response: httpx.Response) -> Iterator[ChatDelta]:
            for line in response.iter_lines():
                delta = decoder.feed(line)
                if delta is not None:
                    yield delta

        yield from self._relay(call, "stream_chat", "stream_chat", deltas)


def _sync_events(response: httpx.Response, sse: bool) -> Iterator[SpeechEvent]:
    if sse:
        decoder = SseDecoder()
        for line in response.iter_lines():
            event = decoder.feed(line)
            if event is not None:
                yield event
    else:
        for chunk in response.iter_bytes():
            if chunk:
                yield SpeechEvent("speech.audio.delta", audio=chunk)


async def _async_events(response: httpx.Response, sse: bool) -> AsyncIterator[SpeechEvent]:
    if sse:
        decoder = SseDecoder()
        async for line in response.aiter_lines():
            event = decoder.feed(line)
            if event is not None:
                yield event
    else:
        async for chunk in response.aiter_bytes():
            if chunk:
                yield SpeechEvent("speech.audio.delta", audio=chunk)


class AsyncStepFunClient(_ClientBase):
    """asyncio client with the same operations, settings, retries and breaker as `StepFunClient`."""

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        health: ProviderHealth | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        seed: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: ProviderLimiter | None = None,
    ) -> None:
        super().__init__(settings, health=health, on_retry=on_retry, seed=seed, limiter=limiter)
        self._http = httpx.AsyncClient(transport=transport, **self._http_options())

    async def __aenter__(self) -> AsyncStepFunClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _permit(self) -> Permit:
        return await self.limiter.acquire_async() if self.limiter is not None else NO_PERMIT

    async def _execute(self, call: Call[T]) -> T:
        async def attempt() -> T:
            permit = await self._permit()
            try:
                with self._attempt(call.operation):
                    response = check(
                        await self._http.request(call.method, self._path(call), **call.request_kwargs()),
                        self.settings.secret,
                    )
            finally:
                permit.release()
            return call.parse(response)

        return await AsyncRetrying(**self._policy(call.operation))(attempt)

    async def upload_file(
        self, content: bytes, filename: str = "reference.wav", purpose: str = "storage"
    ) -> StepFile:
        return await self._execute(protocol.upload_file(content, filename, purpose))

    async def list_files(self, purpose: str | None = None) -> list[StepFile]:
        return await self._execute(protocol.list_files(purpose))

    async def get_file(self, file_id: str) -> StepFile:
        return await self._execute(protocol.get_file(file_id))

    async def file_content(self, file_id: str) -> bytes:
        return await self._execute(protocol.file_content(file_id))

    async def delete_file(self, file_id: str) -> FileDeletion:
        return await self._execute(protocol.delete_file(file_id))

    async def create_voice(
        self,
        file_id: str,
        *,
        model: str | None = None,
        text: str | None = None,
        sample_text: str | None = None,
    ) -> ClonedVoice:
        return await self._execute(
            protocol.create_voice(model or self.settings.clone_model, file_id, text, sample_text)
        )

    async def preview_voice(
        self,
        file_id: str,
        sample_text: str,
        *,
        model: str | None = None,
        text: str | None = None,
        **tts_options: Any,
    ) -> VoicePreview:
        call = protocol.preview_voice(
            model or self.settings.clone_model, file_id, sample_text, text, tts_options
        )
        return await self._execute(call)

    async def list_voices(
        self, *, limit: int = 20, order: str = "desc", before: str | None = None, after: str | None = None
    ) -> VoicePage:
        return await self._execute(protocol.list_voices(limit, order, before, after))

    async def system_voices(self, model: str | None = None) -> list[SystemVoice]:
        return await self._execute(protocol.system_voices(model or self.settings.speech_model))

    async def speech(self, request: SpeechRequest | None = None, **fields: Any) -> SpeechAudio:
        req = self._speech_request(request, fields)
        if req.stream_format == "sse" and not req.return_url:
            audio = b"".join([chunk async for chunk in self.stream_speech(req)])
            return SpeechAudio(audio, CONTENT_TYPES[req.format], req.format)
        return await self._execute(protocol.speech(req))

    async def stream_speech(
        self, request: SpeechRequest | None = None, **fields: Any
    ) -> AsyncIterator[bytes]:
        async for event in self._stream(self._speech_request(request, fields)):
            audio = event_audio(event, self.settings.secret)
            if audio:
                yield audio

    async def speech_events(
        self, request: SpeechRequest | None = None, **fields: Any
    ) -> AsyncIterator[SpeechEvent]:
        req = self._speech_request(request, fields)
        async for event in self._stream(req.model_copy(update={"stream_format": "sse"})):
            yield event

    async def _stream(self, req: SpeechRequest) -> AsyncIterator[SpeechEvent]:
        call = protocol.speech(req)
        sse = req.stream_format == "sse"
        async for event in self._relay(
            call, call.operation, "stream_speech", lambda r: _async_events(r, sse)
        ):
            yield event

    async def _relay(
        self,
        call: Call[Any],
        attempt: str,
        policy: str,
        events_of: Callable[[httpx.Response], AsyncIterator[E]],
    ) -> AsyncIterator[E]:
        """StepFunClient._relay, awaited."""

        async def open_first() -> tuple[httpx.Response, AsyncIterator[E], E | None, Permit]:
            permit = await self._permit()
            try:
                with self._attempt(attempt):
                    request = self._http.build_request(call.method, self._path(call), **call.request_kwargs())
                    response = await self._http.send(request, stream=True)
                    try:
                        if not response.is_success:
                            await response.aread()
                            check(response, self.settings.secret)
                        events = events_of(response)
                        first = await anext(events, None)
                    except BaseException:
                        await response.aclose()
                        raise
            except BaseException:
                permit.release()
                raise
            return response, events, first, permit

        opened: tuple[httpx.Response, AsyncIterator[E], E | None, Permit] = await AsyncRetrying(
            **self._policy(policy)
        )(open_first)
        response, events, first, permit = opened
        try:
            if first is not None:
                yield first
            try:
                async for event in events:
                    yield event
            except httpx.TransportError as exc:
                raise protocol.error_from_transport(exc) from exc
        finally:
            await response.aclose()
            permit.release()

    # -- chat
    async def chat(
        self, messages: list[ChatMessage], *, model: str | None = None, max_tokens: int | None = None
    ) -> ChatReply:
        return await self._execute(protocol.chat(self._chat_request(messages, model, max_tokens, False)))

    async def stream_chat(
        self, messages: list[ChatMessage], *, model: str | None = None, max_tokens: int | None = None
    ) -> AsyncIterator[ChatDelta]:
        """The reply's deltas as they are generated (see StepFunClient.stream_chat)."""
        call = protocol.chat(self._chat_request(messages, model, max_tokens, True))
        decoder = ChatSseDecoder(self.settings.secret)

        async def deltas(response: httpx.Response) -> AsyncIterator[ChatDelta]:
            async for line in response.aiter_lines():
                delta = decoder.feed(line)
                if delta is not None:
                    yield delta

        async for delta in self._relay(call, "stream_chat", "stream_chat", deltas):
            yield delta
