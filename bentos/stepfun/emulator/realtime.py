"""The emulator's streaming-TTS socket, `/v1/realtime/audio?model=…` (stepfun-api.md §5), on the same voice
engine as `/v1/audio/speech`: each sentence the buffered text completes is synthesised and sent as
`tts.response.sentence.start` → `tts.response.audio.delta` → `tts.response.sentence.end`.

Choices where the contract is silent [?]: a bad key or model is answered after the handshake with a
`tts.response.error` event (`data.code`, `data.message`) and close 1008, so a browser client can read why; English
`. ! ? ;` end a sentence only when whitespace follows (a trailing "3." may still become "3.14"), Chinese 。！？；…
and newlines always do; sentence events carry the sentence's `text`; WAV is one streaming header then PCM, MP3
frames without Xing headers, FLAC/Opus one whole file per sentence. The gateway's fault plan applies per
sentence (`fail_next` with `path_prefix=/v1/realtime` fails the next sentence: an error event mid-stream).
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..models import SPEECH_MODELS, SpeechRequest
from .codec import encode, encoded_rate, pcm16, strip_mp3_info_frame, wav_stream_header
from .engine import speakable
from .gateway import bearer
from .store import new_id, owner_of

if TYPE_CHECKING:
    from .app import Emulator

IDLE_S = 60.0  # StepFun closes a socket after 60 s without activity
_COMPLETE = re.compile(r"[。！？；…\n]|[.!?;](?=\s)")
ERROR_CLOSE = 1008  # policy violation: refused (key, model, parameters)
FAULT_CLOSE = 1011  # internal error: synthesis failed


class _Ended(Exception):
    """The session is over (an error was sent, or the client left)."""


def complete_sentences(buffer: str) -> tuple[list[str], str]:
    """(the sentences `buffer` completes, the text still waiting for its end)."""
    out: list[str] = []
    start = 0
    for match in _COMPLETE.finditer(buffer):
        sentence = buffer[start : match.end()].strip()
        start = match.end()
        if sentence:
            out.append(sentence)
    return out, buffer[start:]


class _Session:
    def __init__(self, websocket: WebSocket, emu: Emulator, model: str, owner: str) -> None:
        self.ws, self.emu, self.model, self.owner = websocket, emu, model, owner
        self.session_id = new_id("sess-", 16)
        self.request: SpeechRequest | None = None
        self.profile: Any = None
        self.buffer = ""
        self.started_audio = False
        self.path = websocket.url.path

    async def send(self, kind: str, **data: Any) -> None:
        await self.ws.send_json({"type": kind, "data": {"session_id": self.session_id, **data}})

    async def fail(self, code: str, message: str, close_code: int = ERROR_CLOSE) -> NoReturn:
        await self.send("tts.response.error", code=code, message=message)
        await self.ws.close(close_code)
        raise _Ended

    async def run(self) -> None:
        await self.send("tts.connection.done")
        while True:
            try:
                message = await asyncio.wait_for(self.ws.receive_json(), IDLE_S)
            except TimeoutError:
                await self.ws.close(1000, "idle")
                return
            except (ValueError, KeyError):
                await self.fail("request_params_invalid", "events are JSON text frames")
            kind = message.get("type") if isinstance(message, dict) else None
            data = message.get("data") if isinstance(message, dict) else None
            if not isinstance(data, dict) or data.get("session_id") != self.session_id:
                await self.fail("request_params_invalid", "every event needs data.session_id of this session")
            assert isinstance(data, dict)
            if kind == "tts.create":
                await self.create(data)
                continue
            if self.request is None:
                await self.fail("request_params_invalid", f"{kind!r} before tts.create")
            if kind == "tts.text.delta":
                self.buffer += str(data.get("text", ""))
                sentences, self.buffer = complete_sentences(self.buffer)
                for sentence in sentences:
                    await self.speak(sentence)
            elif kind == "tts.text.flush":
                await self.speak_rest()
                await self.send("tts.text.flushed")
            elif kind == "tts.text.done":
                await self.speak_rest()
                await self.send("tts.response.audio.done")
                await self.ws.close(1000)
                return
            else:
                await self.fail("request_params_invalid", f"unknown event type {kind!r}")

    async def create(self, data: dict[str, Any]) -> None:
        if self.request is not None:
            await self.fail("request_params_invalid", "tts.create was sent already")
        options = {k: data[k] for k in ("response_format", "sample_rate", "speed", "volume") if k in data}
        try:
            self.request = SpeechRequest(
                model=self.model, input="-", voice=str(data.get("voice_id", "")), **options
            )
        except ValidationError as err:
            message = str(err.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")
            await self.fail("request_params_invalid", message)
        from .app import Rejected

        try:
            assert self.request is not None
            self.profile = self.emu.profile_for(self.owner, self.request.voice)
        except Rejected as err:
            await self.fail(err.kind, err.message)
        await self.send("tts.response.created")

    async def speak_rest(self) -> None:
        rest, self.buffer = self.buffer.strip(), ""
        if rest:
            await self.speak(rest)

    async def speak(self, sentence: str) -> None:
        from .app import BLOCKED_MARKER

        fail, delay = self.emu.gateway.take_fault(self.path)
        if delay:
            await asyncio.sleep(delay)
        if fail:
            faults = self.emu.gateway.faults
            await self.fail(faults.type, faults.message, FAULT_CLOSE)
        if BLOCKED_MARKER in sentence:
            await self.fail("censorship_blocked", "the input was blocked by content moderation")
        await self.send("tts.response.sentence.start", text=sentence)
        if speakable(sentence):
            audio = await run_in_threadpool(self.audio, sentence)
            await self.send("tts.response.audio.delta", audio=base64.b64encode(audio).decode())
        await self.send("tts.response.sentence.end", text=sentence)

    def audio(self, sentence: str) -> bytes:
        assert self.request is not None
        request = self.request.model_copy(update={"input": sentence})
        fmt = request.format
        rate = encoded_rate(fmt, request.rate)
        samples = np.concatenate(list(self.emu.render(self.profile, request)))
        if fmt in ("wav", "pcm"):
            head = wav_stream_header(rate) if fmt == "wav" and not self.started_audio else b""
            self.started_audio = True
            return head + pcm16(samples)
        if fmt == "mp3":
            return strip_mp3_info_frame(encode(samples, rate, "mp3"))
        return encode(samples, rate, fmt)


async def realtime_audio(websocket: WebSocket) -> None:
    """`/v1/realtime/audio?model=…`: the key and the tier's limits as at the HTTP gateway, then one session."""
    emu: Emulator = websocket.app.state.emulator
    gateway = emu.gateway
    gateway.count("WS", websocket.url.path)
    await websocket.accept()
    session = _Session(websocket, emu, websocket.query_params.get("model", ""), "")
    key = bearer(websocket.scope)
    state = gateway.keys.get(key or "")
    try:
        if key is None or state in (None, "invalid"):
            await session.fail("invalid_api_key", "Incorrect API key provided")
        if state == "quota_exceeded":
            await session.fail("quota_exceeded", "Your account balance is insufficient")
        if session.model not in SPEECH_MODELS:
            await session.fail("request_params_invalid", f"model {session.model!r} is not a tts model")
        assert key is not None
        session.owner = owner_of(key)
        if gateway.limiter.acquire(session.owner) is not None:
            await session.fail("rate_limit_exceeded", "Rate limit reached, slow down")
        try:
            await session.run()
        finally:
            gateway.limiter.release(session.owner)
    except (_Ended, WebSocketDisconnect):
        return
