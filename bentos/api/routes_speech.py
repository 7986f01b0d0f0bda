"""Speech: POST /tts and the OpenAI-compatible POST /v1/audio/speech — streamed through, metered once."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import soundfile as sf
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from bentos.api.deps import body_hash, caller, platform_of
from bentos.api.schemas import OpenAISpeech, Speak
from bentos.billing.metering import record_usage
from bentos.core import metrics
from bentos.core.errors import PlatformError, from_provider_error
from bentos.core.idempotency import IdempotencyStore, StoredResponse
from bentos.core.ids import new_id
from bentos.core.personas import callable_persona
from bentos.core.platform import Platform
from bentos.core.speakable import unspeakable
from bentos.stepfun.errors import StepFunError
from bentos.stepfun.models import CONTENT_TYPES, SpeechRequest
from bentos.store import blob_refs
from bentos.store.models import Account, Persona

router = APIRouter(tags=["speech"])
OPENAI_FORMATS = {"mp3": "mp3", "wav": "wav", "flac": "flac", "opus": "opus", "pcm": "pcm"}


def check_text(text: str, max_chars: int) -> None:
    """Refuse text the provider can't speak, before it costs a provider call (or counts toward its breaker)."""
    if not 1 <= len(text) <= max_chars:
        raise PlatformError("invalid_text", f"text must be 1–{max_chars} characters", 400)
    problem = unspeakable(text)
    if problem:
        raise PlatformError("invalid_text", f"text {problem}", 400)


def audio_ms(data: bytes, fmt: str, pcm_rate: int) -> int:
    """Duration of encoded audio in ms (pcm: 16-bit mono at pcm_rate)."""
    if fmt == "pcm":
        return len(data) // 2 * 1000 // pcm_rate
    try:
        info = sf.info(io.BytesIO(data))
        return int(info.frames * 1000 // info.samplerate)
    except Exception:
        return 0


def _persona(platform: Platform, voice: str, account: Account) -> Persona:
    with platform.sessions() as session:
        return callable_persona(session, voice, account)


async def speak(request: Request, body: Speak) -> Response:
    platform = platform_of(request)
    account = await run_in_threadpool(caller, request)
    persona = await run_in_threadpool(_persona, platform, body.voice, account)
    check_text(body.text, platform.server.tts_max_chars)
    try:
        speech = SpeechRequest(
            model=body.model or persona.model,
            input=body.text,
            voice=persona.step_voice_id or "",
            response_format=body.format,
            speed=body.speed,
            volume=body.volume,
            sample_rate=body.sample_rate,  # type: ignore[arg-type]  # validated by SpeechRequest
            voice_label=body.voice_label,  # type: ignore[arg-type]  # a dict, validated into a VoiceLabel
            instruction=body.instruction,
        )
    except ValidationError as err:
        message = "; ".join(str(e.get("msg")) for e in err.errors()[:3])
        raise PlatformError("invalid_request", message, 422) from None

    key = request.headers.get("idempotency-key")
    store = IdempotencyStore(platform.sessions)
    req_hash = body_hash(body.model_dump())
    route = "POST /tts"
    if key is not None:
        stored = await run_in_threadpool(store.begin, key, account.id, route, req_hash)
        if stored is not None:
            audio = stored.body
            if audio.startswith(blob_refs.REPLAY_REF):
                audio = platform.blobs.get(audio[len(blob_refs.REPLAY_REF) :].decode())
            return Response(
                audio,
                stored.status_code,
                media_type=stored.content_type,
                headers={"Idempotent-Replayed": "true"},
            )
    request_id = f"idem:{account.id}:{key}" if key else new_id("req")
    content_type = CONTENT_TYPES[speech.format]

    chunks = platform.async_provider.stream_speech(speech)
    try:
        with metrics.PROVIDER_LATENCY.time():
            first = await anext(chunks)
    except (StepFunError, StopAsyncIteration) as err:
        metrics.PROVIDER_CALLS.labels("error").inc()
        if key is not None:
            await run_in_threadpool(store.abandon, key, account.id, route)
        if isinstance(err, StopAsyncIteration):
            raise PlatformError(
                "provider_unavailable", "the voice provider returned no audio", 502, True
            ) from None
        raise from_provider_error(err) from None

    async def relay() -> AsyncIterator[bytes]:
        received = [first]
        completed = False
        try:
            yield first
            async for chunk in chunks:
                received.append(chunk)
                yield chunk
            completed = True
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]  # an async generator
            if completed:
                metrics.PROVIDER_CALLS.labels("ok").inc()
                await run_in_threadpool(
                    _meter,
                    platform,
                    request_id,
                    account,
                    persona,
                    speech,
                    b"".join(received),
                    key,
                    req_hash,
                    content_type,
                )
            elif key is not None:
                await run_in_threadpool(store.abandon, key, account.id, route)

    headers = {"X-Request-Id": request_id, "X-Usage-Chars": str(len(body.text))}
    return StreamingResponse(relay(), media_type=content_type, headers=headers)


def _meter(
    platform: Platform,
    request_id: str,
    account: Account,
    persona: Persona,
    speech: SpeechRequest,
    audio: bytes,
    key: str | None,
    req_hash: str,
    content_type: str,
) -> None:
    record_usage(
        platform.sessions,
        platform.prices,
        request_id=request_id,
        caller_id=account.id,
        persona=persona,
        chars=len(speech.input),
        audio_ms=audio_ms(audio, speech.format, speech.rate),
        model=speech.model,
    )
    metrics.USAGE_EVENTS.inc()
    if key is not None:
        with platform.sessions.begin() as session:
            blob = blob_refs.hold(session, platform.blobs, audio)
            replay = StoredResponse(200, blob_refs.REPLAY_REF + blob.encode(), content_type)
            IdempotencyStore.finish_in(session, key, account.id, "POST /tts", replay)


@router.post("/tts", response_class=StreamingResponse)
async def tts(body: Speak, request: Request) -> Response:
    """Speak `text` with persona `voice`; audio streams back as the provider produces it. Metered per request."""
    return await speak(request, body)


@router.post("/v1/audio/speech", response_class=StreamingResponse)
async def openai_speech(body: OpenAISpeech, request: Request) -> Response:
    """OpenAI-compatible: `voice` is a persona id; any OpenAI SDK can call a persona."""
    fmt = OPENAI_FORMATS.get(body.response_format)
    if fmt is None:
        raise PlatformError(
            "invalid_request", f"response_format must be one of {sorted(OPENAI_FORMATS)}", 422
        )
    model = body.model if body.model.startswith("step") else None  # OpenAI model names → the persona's model
    speak_body: dict[str, Any] = {"voice": body.voice, "text": body.input, "model": model, "format": fmt}
    if body.speed is not None:
        speak_body["speed"] = min(2.0, max(0.5, body.speed))  # OpenAI allows 0.25–4; StepFun 0.5–2
    if body.instructions:
        speak_body["instruction"] = body.instructions[:200]
    return await speak(request, Speak.model_validate(speak_body))
