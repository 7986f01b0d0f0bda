"""Speech for callers: check the text, build the provider request, stream the audio through as it is produced,
meter the call once, and replay it for a repeated Idempotency-Key. Also what a call will cost (the quote).

A text longer than the provider's per-call limit (up to `long_max_chars`) is split at sentences
(`core/longform.py`), its parts spoken in order with a few in flight, and their audio streamed as one.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import asdict, dataclass, replace
from typing import cast

import anyio.to_thread
import soundfile as sf
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import holds
from bentos.billing.holds import Purpose, Reservation
from bentos.billing.pricing import Charge, PriceBook
from bentos.core import funds, longform, metrics, moderation
from bentos.core.accounts import Caller
from bentos.core.errors import ErrorCode, PlatformError, from_provider_error
from bentos.core.idempotency import BlobBody, Idempotency, StoredResponse, payload_hash
from bentos.core.ids import new_id
from bentos.core.personas import callable_persona, visible_persona
from bentos.core.speakable import unspeakable
from bentos.stepfun.client import AsyncStepFunClient
from bentos.stepfun.errors import StepFunError
from bentos.stepfun.limiter import calling_as
from bentos.stepfun.models import (
    CONTENT_TYPES,
    EMOTION_LABELS,
    INSTRUCTION_MODELS,
    LANGUAGE_LABELS,
    MAX_INSTRUCTION_CHARS,
    RESPONSE_FORMATS,
    SAMPLE_RATES,
    STYLE_LABELS_ALL,
    STYLE_LABELS_TTS2,
    ResponseFormat,
    SpeechRequest,
)
from bentos.store.blobs import BlobStore
from bentos.store.models import Persona

IDEMPOTENCY_ROUTE = "POST /tts"  # /v1/audio/speech shares it: the same call by another name
AUDIO_CONTENT_TYPES = CONTENT_TYPES
VOICE_LABELS = {
    "language": LANGUAGE_LABELS,
    "emotion": EMOTION_LABELS,
    "style": STYLE_LABELS_ALL + STYLE_LABELS_TTS2,
}
OPENAI_FORMATS = RESPONSE_FORMATS  # OpenAI's response_format names are StepFun's
SPEECH_SAMPLE_RATES = SAMPLE_RATES
# A long text's whole audio is kept for an Idempotency-Key replay only up to this size (else a retry speaks again,
# free: its request id is billed already).
REPLAY_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Range:
    min: float
    max: float

    def clamp(self, value: float) -> float:
        return min(self.max, max(self.min, value))


def _bounds(name: str) -> Range:
    """A SpeechRequest field's (ge, le): the provider contract is the one place these numbers live."""
    metadata = SpeechRequest.model_fields[name].metadata
    ge = next(m.ge for m in metadata if hasattr(m, "ge"))
    le = next(m.le for m in metadata if hasattr(m, "le"))
    return Range(float(ge), float(le))


SPEED_RANGE = _bounds("speed")
VOLUME_RANGE = _bounds("volume")
INSTRUCTION_MAX_CHARS = MAX_INSTRUCTION_CHARS


@dataclass(frozen=True)
class SpeechOrder:
    """What a caller asks for (POST /tts); its fields are the request fingerprint for idempotency."""

    voice: str
    text: str
    model: str | None = None
    format: ResponseFormat = "mp3"
    speed: float | None = None
    volume: float | None = None
    sample_rate: int | None = None
    voice_label: dict[str, str] | None = None
    instruction: str | None = None

    @classmethod
    def from_openai(
        cls,
        voice: str,
        text: str,
        model: str,
        response_format: str,
        speed: float | None,
        instructions: str | None,
    ) -> SpeechOrder:
        """OpenAI's /v1/audio/speech body: `voice` is a persona id; OpenAI model names mean the persona's."""
        if response_format not in OPENAI_FORMATS:
            raise PlatformError(
                ErrorCode.INVALID_REQUEST, f"response_format must be one of {sorted(OPENAI_FORMATS)}", 422
            )
        return cls(
            voice=voice,
            text=text,
            model=model if model.startswith("step") else None,
            format=cast(ResponseFormat, response_format),
            speed=None if speed is None else SPEED_RANGE.clamp(speed),  # OpenAI allows 0.25–4
            instruction=instructions[:INSTRUCTION_MAX_CHARS] if instructions else None,
        )


def check_text(text: str, max_chars: int) -> None:
    """Refuse text the provider can't speak, before it costs a provider call (or counts toward its breaker)."""
    if not 1 <= len(text) <= max_chars:
        raise PlatformError(ErrorCode.INVALID_TEXT, f"text must be 1–{max_chars} characters", 400)
    problem = unspeakable(text)
    if problem:
        raise PlatformError(ErrorCode.INVALID_TEXT, f"text {problem}", 400)


def speech_request(persona: Persona, order: SpeechOrder) -> SpeechRequest:
    """The provider request for `order` in the persona's voice (its model unless the order names one)."""
    try:
        return SpeechRequest(
            model=order.model or persona.model,
            input=order.text,
            voice=persona.step_voice_id or "",
            response_format=order.format,
            speed=order.speed,
            volume=order.volume,
            sample_rate=order.sample_rate,  # type: ignore[arg-type]  # validated by SpeechRequest
            voice_label=order.voice_label,  # type: ignore[arg-type]  # a dict, validated into a VoiceLabel
            instruction=order.instruction,
        )
    except ValidationError as err:
        # A rule across fields (a model's options) reads "Value error, …" in pydantic: the rule alone is the message.
        message = "; ".join(str(e.get("msg")).removeprefix("Value error, ") for e in err.errors()[:3])
        raise PlatformError(ErrorCode.INVALID_REQUEST, message, 422) from None


def audio_ms(data: bytes, fmt: str, pcm_rate: int) -> int:
    """Duration of encoded audio in ms (pcm: 16-bit mono at pcm_rate); 0 when it can't be read."""
    if fmt == "pcm":
        return len(data) // 2 * 1000 // pcm_rate
    try:
        info = sf.info(io.BytesIO(data))
        return int(info.frames * 1000 // info.samplerate)
    except Exception:
        return 0


@dataclass(frozen=True)
class SpeechStream:
    """Audio on its way: `chunks` relays the provider's stream and meters the call once it has all arrived."""

    request_id: str
    content_type: str
    chars: int
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True)
class Quote:
    voice_id: str
    chars: int
    model: str
    unit_price: int  # micro-CNY per 10,000 chars
    amount: int  # micro-CNY
    currency: str
    multiplier_bps: int  # the persona's multiplier on the model's list price


@dataclass(frozen=True)
class TextToSpeech:
    """The parts a speech call needs."""

    sessions: sessionmaker[Session]
    blobs: BlobStore
    provider: AsyncStepFunClient
    prices: PriceBook
    max_chars: int
    idempotency_lease_s: float = 120.0
    long_max_chars: int = 0  # longer texts than max_chars, up to this, are spoken in parts; 0: none
    long_concurrency: int = 2  # a long text's provider calls in flight
    long_first_chars: int = 200  # a long text's first part is at most this long (its first byte waits for it)
    blocklist: moderation.Moderation | None = None  # refused text: 400 content_blocked, before any hold

    @property
    def text_limit(self) -> int:
        return max(self.max_chars, self.long_max_chars)

    async def speak(
        self, caller: Caller, order: SpeechOrder, key: str | None
    ) -> SpeechStream | StoredResponse:
        """Start a call: a StoredResponse replays an earlier call with the same Idempotency-Key `key`.

        Money: the call's price is held on the caller's balance before the provider is asked (402 when short,
        and the provider is not called), captured once the provider has produced the audio (also when the client
        cut the stream: the provider charged for it), released when the provider failed.
        """
        persona = await anyio.to_thread.run_sync(self._persona, order.voice, caller)
        check_text(order.text, self.text_limit)
        moderation.screen(self.blocklist, {"text": order.text})
        parts = self._parts(order)
        speech = speech_request(persona, order if len(parts) == 1 else replace(order, text=parts[0]))
        charge = self._charge(speech.model, len(order.text), persona)
        fingerprint = payload_hash(asdict(order))
        claim = Idempotency(
            self.sessions,
            key,
            caller.id,
            IDEMPOTENCY_ROUTE,
            fingerprint,
            BlobBody(self.blobs),
            self.idempotency_lease_s,
        )
        stored = await anyio.to_thread.run_sync(claim.begin) if key is not None else None
        if stored is not None:
            return stored
        request_id = f"idem:{caller.id}:{key}" if key else new_id("req")
        try:
            hold = await anyio.to_thread.run_sync(
                funds.reserve, self.sessions, self.prices, caller, Purpose.SPEECH, request_id, charge.amount
            )
        except PlatformError as refusal:
            if key is not None:
                await anyio.to_thread.run_sync(claim.fail, refusal)
            raise
        chunks = cast(AsyncGenerator[bytes, None], self.provider.stream_speech(speech))
        try:
            # The provider call takes its permit here: this caller's share, an interactive (short) wait.
            with metrics.PROVIDER_LATENCY.time(), calling_as(caller.id, interactive=True):
                first = await anext(chunks)
        except (StepFunError, StopAsyncIteration) as err:
            metrics.PROVIDER_CALLS.labels("error").inc()
            failure = (
                from_provider_error(err)
                if isinstance(err, StepFunError)
                else PlatformError(
                    ErrorCode.PROVIDER_UNAVAILABLE, "the voice provider returned no audio", 502, True
                )
            )
            await anyio.to_thread.run_sync(holds.release, self.sessions, hold.hold_id, "the provider failed")
            await anyio.to_thread.run_sync(claim.fail, failure)
            raise failure from None
        call = _Call(request_id, caller, persona, speech, charge, hold, claim)
        relay = (
            self._relay(first, chunks, call)
            if len(parts) == 1
            else self._relay_long(first, chunks, call, parts)
        )
        return SpeechStream(request_id, AUDIO_CONTENT_TYPES[speech.format], len(order.text), relay)

    def _parts(self, order: SpeechOrder) -> list[str]:
        """The text as the provider calls it: whole when it fits one call, else split at sentences."""
        if len(order.text) <= self.max_chars:
            return [order.text]
        if order.format not in longform.LONG_FORMATS:
            raise PlatformError(
                ErrorCode.INVALID_REQUEST,
                f"a text over {self.max_chars} characters is spoken as one of {list(longform.LONG_FORMATS)}",
                422,
            )
        return longform.split_text(order.text, self.max_chars, self.long_first_chars)

    def _charge(self, model: str, chars: int, persona: Persona) -> Charge:
        return self.prices.charge(model, chars, persona.price_multiplier_bps)

    async def _relay(
        self, first: bytes, chunks: AsyncGenerator[bytes, None], call: _Call
    ) -> AsyncIterator[bytes]:
        received = [first]
        outcome = "cut"  # the client went away before the end: the provider still produced (and billed) it
        try:
            yield first
            async for chunk in chunks:
                received.append(chunk)
                yield chunk
            outcome = "complete"
        except Exception:
            outcome = "failed"  # the provider broke off: failed calls cost nothing
            raise
        finally:
            # Shielded: a cancelled request (the client disconnected) must still settle its hold.
            with anyio.CancelScope(shield=True):
                await chunks.aclose()
                await anyio.to_thread.run_sync(self._settle, call, b"".join(received), outcome)

    def _settle(self, call: _Call, audio: bytes, outcome: str) -> None:
        if outcome == "failed":
            metrics.PROVIDER_CALLS.labels("error").inc()
            holds.release(self.sessions, call.hold.hold_id, "the provider broke off the stream")
            if call.claim.key is not None:
                call.claim.abandon()
            return
        metrics.PROVIDER_CALLS.labels("ok").inc()
        _, created = holds.capture_speech(
            self.sessions,
            call.hold,
            call.charge,
            request_id=call.request_id,
            caller_id=call.caller.id,
            api_key_id=call.caller.key_id,
            persona=call.persona,
            audio_ms=audio_ms(audio, call.speech.format, call.speech.rate),
        )
        if created:
            metrics.USAGE_EVENTS.inc()
        if outcome == "complete":  # only audio the caller got in full is replayable
            call.claim.finish(StoredResponse(200, audio, AUDIO_CONTENT_TYPES[call.speech.format]))
        elif call.claim.key is not None:
            call.claim.abandon()  # a retry with the key speaks again, free: its request id is billed already

    async def _relay_long(
        self, first: bytes, chunks: AsyncGenerator[bytes, None], call: _Call, parts: list[str]
    ) -> AsyncIterator[bytes]:
        """Part 0 is open already (its first bytes are `first`); the next parts are asked for while it streams,
        `long_concurrency` in flight, and each is relayed once the ones before it have all been sent."""
        joiner = longform.AudioJoiner(call.speech.format, call.speech.rate)
        ahead = _PartsAhead(self.provider, call, parts, self.long_concurrency)
        kept: bytearray | None = bytearray()  # the whole audio, for a replay, while it stays small enough
        delivered = audio_ms = 0  # characters whose audio was all sent, and that audio's length
        outcome = "cut"
        try:
            for index, part in enumerate(parts):
                ahead.start_up_to(index)
                for piece in [first] if index == 0 else []:
                    out = joiner.feed(piece)
                    kept = _keep(kept, out)
                    if out:
                        yield out
                async for chunk in chunks if index == 0 else ahead.stream(index):
                    out = joiner.feed(chunk)
                    kept = _keep(kept, out)
                    if out:
                        yield out
                tail, ms = joiner.end_part()
                kept = _keep(kept, tail)
                if tail:
                    yield tail
                delivered += len(part)
                audio_ms += ms
            outcome = "complete"
        except Exception:
            outcome = (
                "failed"  # the provider broke off (or sent what can't be joined): bill what was delivered
            )
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await ahead.cancel()
                await chunks.aclose()
                # A client that went away is billed for every part the provider was asked for (it produced
                # them); a provider failure only for the parts delivered.
                billed = delivered if outcome == "failed" else sum(len(p) for p in parts[: ahead.started])
                audio = bytes(kept) if kept is not None and outcome == "complete" else None
                await anyio.to_thread.run_sync(self._settle_long, call, billed, audio, audio_ms, outcome)

    def _settle_long(self, call: _Call, chars: int, audio: bytes | None, ms: int, outcome: str) -> None:
        metrics.PROVIDER_CALLS.labels("error" if outcome == "failed" else "ok").inc()
        if chars == 0:
            holds.release(self.sessions, call.hold.hold_id, "the provider delivered nothing")
            if call.claim.key is not None:
                call.claim.abandon()
            return
        # The whole text's price was held; a text cut short is priced for what it spoke, the rest released.
        charge = (
            call.charge
            if chars >= call.charge.chars
            else self._charge(call.charge.model, chars, call.persona)
        )
        _, created = holds.capture_speech(
            self.sessions,
            call.hold,
            charge,
            request_id=call.request_id,
            caller_id=call.caller.id,
            api_key_id=call.caller.key_id,
            persona=call.persona,
            audio_ms=ms,
        )
        if created:
            metrics.USAGE_EVENTS.inc()
        if audio is not None:
            call.claim.finish(StoredResponse(200, audio, AUDIO_CONTENT_TYPES[call.speech.format]))
        elif call.claim.key is not None:
            call.claim.abandon()

    def _persona(self, voice: str, caller: Caller) -> Persona:
        with self.sessions() as session:
            return callable_persona(session, voice, caller)

    def quote(self, voice_id: str, chars: int, caller: Caller | None, model: str | None = None) -> Quote:
        """What speaking `chars` characters (Unicode code points, as metered) with this persona and `model` (the
        persona's own by default) costs: the same price function the meter uses, so an estimate and the ledger
        never disagree."""
        if not 1 <= chars <= self.text_limit:
            raise PlatformError(ErrorCode.INVALID_REQUEST, f"chars must be 1–{self.text_limit}", 422)
        with self.sessions() as session:
            persona = visible_persona(session, voice_id, caller)
        chosen = model or persona.model
        if chosen not in self.prices.list_price_per_10k:
            raise PlatformError(
                ErrorCode.INVALID_REQUEST,
                f"model must be one of {sorted(self.prices.list_price_per_10k)}",
                422,
            )
        charge = self._charge(chosen, chars, persona)
        return Quote(
            persona.id,
            chars,
            chosen,
            charge.unit_price,
            charge.amount,
            self.prices.currency,
            persona.price_multiplier_bps,
        )


@dataclass(frozen=True)
class _Call:
    """A call in flight: what settling it (capture or release) needs."""

    request_id: str
    caller: Caller
    persona: Persona
    speech: SpeechRequest
    charge: Charge
    hold: Reservation
    claim: Idempotency


def _keep(kept: bytearray | None, out: bytes) -> bytearray | None:
    if kept is None or len(kept) + len(out) > REPLAY_MAX_BYTES:
        return None
    kept += out
    return kept


_END = object()


class _PartsAhead:
    """A long text's parts after the first, each asked for in a task of its own (at most `concurrency` parts in
    flight, the one being relayed included) and its audio queued until the relay reaches it. The tasks call the
    provider as the caller, waiting like background work for the tier's slots: later parts may wait for a slot
    while earlier ones play."""

    def __init__(self, provider: AsyncStepFunClient, call: _Call, parts: list[str], concurrency: int) -> None:
        self.provider, self.call, self.parts = provider, call, parts
        self.concurrency = max(1, concurrency)
        self.started = 1  # part 0 is asked for by `speak`
        self._queues: dict[int, asyncio.Queue[object]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start_up_to(self, relaying: int) -> None:
        while self.started < len(self.parts) and self.started < relaying + self.concurrency:
            queue: asyncio.Queue[object] = asyncio.Queue()
            request = self.call.speech.model_copy(update={"input": self.parts[self.started]})
            with calling_as(self.call.caller.id, interactive=False):  # the task copies this context
                self._tasks.append(asyncio.create_task(self._fetch(request, queue)))
            self._queues[self.started] = queue
            self.started += 1

    async def _fetch(self, request: SpeechRequest, queue: asyncio.Queue[object]) -> None:
        try:
            async for chunk in self.provider.stream_speech(request):
                queue.put_nowait(chunk)
            queue.put_nowait(_END)
        except Exception as err:  # handed to the relay, which raises it when it reaches this part
            queue.put_nowait(err)

    async def stream(self, index: int) -> AsyncIterator[bytes]:
        queue = self._queues.pop(index)
        while (item := await queue.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            yield cast(bytes, item)

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass(frozen=True)
class SpeechLimits:
    """What a client may put in a speech order (GET /v1/limits)."""

    max_chars: int
    long_max_chars: int  # texts over max_chars and up to this are spoken in parts as one audio
    long_formats: list[str]
    models: list[str]
    formats: list[str]
    speed: Range
    volume: Range
    instruction_max_chars: int
    instruction_models: list[str]
    voice_labels: dict[str, list[str]]
    realtime_session_max_chars: int = 0


def speech_limits(
    max_chars: int, prices: PriceBook, long_max_chars: int = 0, realtime_session_max_chars: int = 0
) -> SpeechLimits:
    """The limits a speech call is checked against: the character limits are settings, the rest the provider
    contract."""
    return SpeechLimits(
        max_chars=max_chars,
        realtime_session_max_chars=realtime_session_max_chars,
        long_max_chars=max(max_chars, long_max_chars),
        long_formats=list(longform.LONG_FORMATS),
        models=list(prices.list_price_per_10k),  # a model without a price can't be metered
        formats=list(RESPONSE_FORMATS),
        speed=SPEED_RANGE,
        volume=VOLUME_RANGE,
        instruction_max_chars=INSTRUCTION_MAX_CHARS,
        instruction_models=list(INSTRUCTION_MODELS),
        voice_labels={kind: list(values) for kind, values in VOICE_LABELS.items()},
    )
