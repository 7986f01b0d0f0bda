"""The StepFun-compatible HTTP server (FastAPI): the documented endpoints and shapes, validated like the real
one, plus `/_admin/*` routes for tests (faults, keys, limits, request counts) and `/healthz`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from encoders.audio import AudioError, load_audio, sniff_format

from ..models import CLONE_MODELS, CONTENT_TYPES, MAX_SAMPLE_TEXT_CHARS, SpeechRequest, VoiceLabel
from ..settings import EmulatorSettings
from . import chat
from .codec import encode, encoded_rate, stream_encode
from .engine import VoiceEngine, VoiceProfile, speakable, split_sentences
from .gateway import FaultPlan, Gateway, GatewayMiddleware, KeyState, error_response
from .realtime import realtime_audio
from .store import EmulatorStore, VoiceRecord, new_id
from .voices import OFFICIAL_VOICES, system_voices_payload

MAX_UPLOAD_BYTES = 128 * 1024 * 1024
MAX_FILES_PER_USER = 1000
DEFAULT_SAMPLE_TEXT = "你好，这是我的声音。Hello, this is my voice."
# Deterministic stand-in for content moderation: inputs containing this marker answer 451 [?].
BLOCKED_MARKER = "[[blocked]]"


class Rejected(Exception):
    """An API error answered with StepFun's envelope."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


_ALLOWED_CONTROLS = frozenset("\n\r\t")


def check_text(text: str, name: str) -> None:
    """Reject (400 input_invalid, as StepFun does) text that cannot be spoken: empty or whitespace only, with
    control characters (NUL and friends break the synthesisers' command lines), or with no letter or digit."""
    if not text.strip():
        raise Rejected(400, "input_invalid", f"{name} is empty")
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in _ALLOWED_CONTROLS:
            raise Rejected(400, "input_invalid", f"{name} contains a control character (U+{ord(ch):04X})")
        if category == "Cs":  # JSON allows a lone "\ud800"; it cannot even be encoded for the synthesiser
            raise Rejected(400, "input_invalid", f"{name} contains an unpaired surrogate (U+{ord(ch):04X})")
    if not speakable(text):
        raise Rejected(400, "input_invalid", f"{name} has nothing to speak (no letter or digit)")


class KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it (the key space is unbounded)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Any, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: Any) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users = self._locks[key][1] - 1
                if users:
                    self._locks[key] = (lock, users)
                else:
                    del self._locks[key]


class CloneBody(BaseModel):
    model: str
    file_id: str
    text: str | None = None
    sample_text: str | None = Field(default=None, max_length=MAX_SAMPLE_TEXT_CHARS)


class PreviewBody(CloneBody):
    # No min_length: an empty sample_text is bad input (input_invalid, check_text), not a malformed request.
    sample_text: str = Field(max_length=MAX_SAMPLE_TEXT_CHARS)  # type: ignore[assignment]
    response_format: str | None = None
    speed: float | None = None
    volume: float | None = None
    sample_rate: int | None = None
    voice_label: VoiceLabel | None = None


class KeyBody(BaseModel):
    key: str
    state: KeyState = "valid"


class LimitsBody(BaseModel):
    rpm: int | None = Field(default=None, ge=0)
    concurrency: int | None = Field(default=None, ge=0)


def _first_error(exc: ValidationError | RequestValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


class Emulator:
    """Holds the store, the gateway state and the engine; the routes below are thin."""

    def __init__(
        self, settings: EmulatorSettings, cache_dir: Path | None = None, max_candidates: int = 0
    ) -> None:
        self.settings = settings
        self.store = EmulatorStore(settings.state_dir)
        self.gateway = Gateway(
            list(settings.api_keys),
            settings.rpm,
            settings.concurrency,
            settings.latency_ms,
            settings.error_rate,
        )
        # None: the machine-wide cache (VoiceEngine's default), which `make setup` fills.
        self._cache_dir = cache_dir or settings.cache_dir
        self._max_candidates = max_candidates
        self._engine: VoiceEngine | None = None
        self._engine_lock = threading.Lock()
        # (owner, model, content sha256) → held across find-or-create: a client retrying a clone that is still
        # running must get the first voice back (duplicated), not a second one.
        self.clone_locks = KeyedLocks()

    @property
    def engine(self) -> VoiceEngine:
        with self._engine_lock:
            if self._engine is None:
                self._engine = VoiceEngine(self._cache_dir, self._max_candidates)
            return self._engine

    def engine_info(self) -> dict[str, Any] | None:
        """The engine's base-voice cache counters; None before anything needed the engine."""
        with self._engine_lock:
            engine = self._engine
        return engine.cache_info() if engine is not None else None

    # -- voices
    def profile_for(self, owner: str, voice_id: str) -> VoiceProfile:
        if voice_id in OFFICIAL_VOICES:
            return self.engine.builtin_profile(voice_id)
        record = self.store.voice(owner, voice_id)
        if record is None:
            raise Rejected(400, "request_params_invalid", f"voice {voice_id!r} not found")
        return VoiceProfile(**record.profile)

    def reference(self, owner: str, body: CloneBody) -> tuple[bytes, np.ndarray, int]:
        if body.model not in CLONE_MODELS:
            raise Rejected(
                400, "request_params_invalid", f"model {body.model!r} does not support voice cloning"
            )
        record = self.store.file(owner, body.file_id)
        if record is None:
            raise Rejected(400, "request_params_invalid", f"file {body.file_id!r} not found")
        content = self.store.file_content(record)
        try:
            clip = load_audio(content)
        except AudioError as exc:  # decoding, 5–10 s, speech present: all the caller's input
            raise Rejected(400, "input_invalid", f"{exc.code}: {exc.message}") from exc
        return content, clip.samples, clip.sample_rate

    @staticmethod
    def spoken_text(req: SpeechRequest) -> str:
        """The text actually synthesised: input after pronunciation_map and markdown_filter."""
        text = _apply_pronunciation(req.input, req.pronunciation_map)
        return _strip_markdown(text) if req.markdown_filter else text

    def render(self, profile: VoiceProfile, req: SpeechRequest) -> Iterator[np.ndarray]:
        """float32 chunks at the encoded rate, one sentence at a time (so streaming starts early).

        Never yields nothing: callers concatenate and encode, and an empty result must not become a 500.
        """
        out_rate = encoded_rate(req.format, req.rate)
        pause = np.zeros(int(out_rate * 0.12), np.float32)
        spoke = False
        for sentence in split_sentences(self.spoken_text(req)):
            samples, rate = self.engine.synthesize(profile, sentence, req)
            if samples.size == 0:  # the base voice had nothing to say for it (skipped, like punctuation)
                continue
            if rate != out_rate:
                samples = soxr.resample(samples, rate, out_rate).astype(np.float32)
            spoke = True
            yield np.concatenate([samples, pause])  # sentence pause
        if not spoke:
            yield pause

    def sample_wav(self, profile: VoiceProfile, text: str, model: str) -> bytes:
        req = SpeechRequest(model=model, input=text, voice="sample", response_format="wav")
        chunks = list(self.render(profile, req))
        return encode(np.concatenate(chunks), req.rate, "wav")


def _apply_pronunciation(text: str, mapping: dict[str, list[str]] | None) -> str:
    # {"tone": ["阿胶/e1胶"]}: say the part after '/', tone digits dropped (espeak would read them).
    for rule in (mapping or {}).get("tone", []):
        if "/" in rule:
            word, said = rule.split("/", 1)
            text = text.replace(word, re.sub(r"[0-9]", "", said))
    return text


def _strip_markdown(text: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[#*_`>~|]+", " ", text)


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def create_app(settings: EmulatorSettings, cache_dir: Path | None = None, max_candidates: int = 0) -> FastAPI:
    """Build the app; state is loaded from settings.state_dir. Nothing heavy happens until the first clone."""
    emu = Emulator(settings, cache_dir, max_candidates)
    app = FastAPI(title="StepFun emulator", docs_url="/_docs", openapi_url="/_openapi.json")
    app.state.emulator = emu
    app.add_middleware(GatewayMiddleware, gateway=emu.gateway)

    @app.middleware("http")
    async def request_id(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["X-Request-Id"] = new_id("req-", 16)
        return response

    @app.exception_handler(Rejected)
    async def _rejected(_: Request, exc: Rejected) -> JSONResponse:
        return error_response(exc.status, exc.kind, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "request_params_invalid", _first_error(exc))

    def owner(request: Request) -> str:
        return str(request.scope["state"]["owner"])

    app.include_router(chat.router)  # POST /v1/chat/completions: the chat stand-in (emulator/chat.py)

    # ---- files
    @app.post("/v1/files")
    def create_file(
        request: Request,
        purpose: str = Form(...),
        file: UploadFile | None = File(None),
        url: str | None = Form(None),
    ) -> dict[str, Any]:
        if file is None:
            reason = "url uploads are not supported offline" if url else "file is required"
            raise Rejected(400, "request_params_invalid", reason)
        if purpose not in ("storage", "file-extract", "retrieval-text", "retrieval-image"):
            raise Rejected(400, "request_params_invalid", f"purpose {purpose!r} is not supported")
        content = file.file.read(MAX_UPLOAD_BYTES + 1)
        if len(content) > MAX_UPLOAD_BYTES:
            raise Rejected(400, "request_params_invalid", "file exceeds 128 MB")
        if purpose == "storage" and sniff_format(content) is None:
            raise Rejected(400, "input_invalid", "storage files must be mp3 or wav audio")
        if emu.store.count_files(owner(request)) >= MAX_FILES_PER_USER:
            raise Rejected(400, "request_params_invalid", "file limit reached (1000 per user)")
        name = Path(file.filename or "upload").name[:200]
        return emu.store.add_file(owner(request), name, purpose, content).public()

    @app.get("/v1/files")
    def list_files(request: Request, purpose: str | None = None) -> dict[str, Any]:
        rows = emu.store.list_files(owner(request), purpose)
        return {"object": "list", "data": [f.public() for f in rows]}

    def _file(request: Request, file_id: str) -> Any:
        record = emu.store.file(owner(request), file_id)
        if record is None:
            raise Rejected(404, "not_found", f"file {file_id!r} not found")
        return record

    @app.get("/v1/files/{file_id}")
    def get_file(request: Request, file_id: str) -> dict[str, Any]:
        return dict(_file(request, file_id).public())

    @app.get("/v1/files/{file_id}/content")
    def file_content(request: Request, file_id: str) -> Response:
        record = _file(request, file_id)
        return Response(emu.store.file_content(record), media_type="application/octet-stream")

    @app.delete("/v1/files/{file_id}")
    def delete_file(request: Request, file_id: str) -> dict[str, Any]:
        record = _file(request, file_id)
        emu.store.delete_file(record)
        return {"id": record.id, "object": "file", "deleted": True}

    # ---- voices
    @app.post("/v1/audio/voices")
    def create_voice(request: Request, body: CloneBody) -> dict[str, Any]:
        who = owner(request)
        if body.sample_text is not None:
            check_text(body.sample_text, "sample_text")
        content, samples, rate = emu.reference(who, body)
        digest = hashlib.sha256(content).hexdigest()
        with emu.clone_locks.hold((who, body.model, digest)):
            existing = emu.store.find_clone(who, body.model, digest)
            if existing is not None:
                sample = emu.store.sample_wav(existing.id)
                return _voice_json(existing.id, True, existing.sample_text, sample)
            profile = emu.engine.clone_profile(samples, rate)
            sample_text = body.sample_text or DEFAULT_SAMPLE_TEXT
            wav = emu.sample_wav(profile, sample_text, body.model)
            record = VoiceRecord(
                id=new_id("voice-tone-"), owner=who, file_id=body.file_id, model=body.model,
                content_sha256=digest,
                created_at=int(time.time()), sample_text=sample_text, profile=profile.__dict__.copy(),
            )  # fmt: skip
            emu.store.add_voice(record, wav)
        return _voice_json(record.id, False, sample_text, wav)

    @app.post("/v1/audio/voices/preview")
    def preview_voice(request: Request, body: PreviewBody) -> dict[str, Any]:
        check_text(body.sample_text, "sample_text")
        _, samples, rate = emu.reference(owner(request), body)
        profile = emu.engine.clone_profile(samples, rate)
        fmt = body.response_format or "wav"
        try:
            req = SpeechRequest(
                model=body.model, input=body.sample_text, voice="preview", response_format=fmt,  # type: ignore[arg-type]
                speed=body.speed, volume=body.volume, sample_rate=body.sample_rate,  # type: ignore[arg-type]
                voice_label=body.voice_label,
            )  # fmt: skip
        except ValidationError as exc:
            raise Rejected(400, "request_params_invalid", _first_error(exc)) from exc
        audio = encode(
            np.concatenate(list(emu.render(profile, req))), encoded_rate(req.format, req.rate), req.format
        )
        encoded = base64.b64encode(audio).decode()
        return {"sample_text": body.sample_text, "sample_audio": encoded, "request_id": new_id("req-", 16)}

    @app.get("/v1/audio/voices")
    def list_voices(
        request: Request,
        limit: int = 20,
        order: str = "desc",
        before: str | None = None,
        after: str | None = None,
    ) -> dict[str, Any]:
        if not 1 <= limit <= 100 or order not in ("asc", "desc"):
            raise Rejected(400, "request_params_invalid", "limit must be 1..100 and order asc|desc")
        rows = emu.store.list_voices(owner(request))
        if order == "desc":
            rows.reverse()
        ids = [v.id for v in rows]
        if after is not None:
            rows = rows[ids.index(after) + 1 :] if after in ids else []
        elif before is not None:
            rows = rows[: ids.index(before)] if before in ids else []
            rows = rows[-limit:]
        page = rows[:limit]
        return {
            "object": "list", "data": [v.public() for v in page], "has_more": len(rows) > len(page),
            "first_id": page[0].id if page else None, "last_id": page[-1].id if page else None,
        }  # fmt: skip

    @app.get("/v1/audio/system_voices")
    def system_voices(model: str = "step-tts-mini") -> dict[str, Any]:
        if model not in CLONE_MODELS:
            raise Rejected(400, "request_params_invalid", f"model {model!r} is not a tts model")
        return system_voices_payload()

    # ---- speech
    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        try:
            raw = await request.json()
        except ValueError as exc:
            raise Rejected(400, "request_params_invalid", "body must be JSON") from exc
        if isinstance(raw, dict) and isinstance(raw.get("input"), str):
            if len(raw["input"]) > 1000:
                raise Rejected(400, "input_invalid", "input must be at most 1000 characters")
            check_text(raw["input"], "input")
        try:
            req = SpeechRequest.model_validate(raw)
        except ValidationError as exc:
            raise Rejected(400, "request_params_invalid", _first_error(exc)) from exc
        # pronunciation_map can rewrite valid input into nothing speakable (or smuggle control characters in).
        check_text(emu.spoken_text(req), "input after pronunciation_map/markdown_filter")
        if BLOCKED_MARKER in req.input:
            raise Rejected(451, "censorship_blocked", "the input was blocked by content moderation")
        who = owner(request)
        profile = emu.profile_for(who, req.voice)
        rate, fmt = encoded_rate(req.format, req.rate), req.format
        if req.stream_format == "sse":
            return StreamingResponse(_sse_events(emu, profile, req, rate), media_type="text/event-stream")
        if req.stream_format == "audio":
            body = stream_encode(emu.render(profile, req), rate, fmt)
            return StreamingResponse(body, media_type=CONTENT_TYPES[fmt])
        audio = await run_in_threadpool(
            lambda: encode(np.concatenate(list(emu.render(profile, req))), rate, fmt)
        )
        if req.return_url:
            record = emu.store.add_file(who, f"speech.{fmt}", "output", audio)
            url = str(request.base_url).rstrip("/") + f"/v1/files/{record.id}/content"
            return JSONResponse({"url": url, "file_id": record.id})
        return Response(audio, media_type=CONTENT_TYPES[fmt])

    app.add_api_websocket_route("/v1/realtime/audio", realtime_audio)  # streaming TTS (emulator/realtime.py)

    # ---- admin (tests, the platform runner) — loopback only, not part of StepFun's API
    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "voices": len(emu.store.voices), "files": len(emu.store.files)}

    @app.post("/_admin/faults")
    def set_faults(plan: FaultPlan) -> dict[str, Any]:
        emu.gateway.faults.update(plan)
        return emu.gateway.faults.public()

    @app.post("/_admin/keys")
    def set_key(body: KeyBody) -> dict[str, Any]:
        emu.gateway.keys[body.key] = body.state
        return {"state": body.state}

    @app.post("/_admin/limits")
    def set_limits(body: LimitsBody) -> dict[str, Any]:
        if body.rpm is not None:
            emu.gateway.limiter.rpm = body.rpm
        if body.concurrency is not None:
            emu.gateway.limiter.concurrency = body.concurrency
        return {"rpm": emu.gateway.limiter.rpm, "concurrency": emu.gateway.limiter.concurrency}

    @app.get("/_admin/stats")
    def stats() -> dict[str, Any]:
        return {
            "requests": dict(emu.gateway.requests),
            "faults": emu.gateway.faults.public(),
            "engine": emu.engine_info(),
        }

    @app.post("/_admin/reset")
    def reset() -> dict[str, Any]:
        emu.gateway.faults.update(
            FaultPlan(
                fail_next=0,
                stall_next=0,
                crash_next=0,
                latency_ms=0,
                chunk_delay_ms=0,
                error_rate=0.0,
                path_prefix="/v1/",
            )
        )
        emu.gateway.faults.retry_after = None  # None means "unset" in a FaultPlan: cleared here
        emu.gateway.requests.clear()
        return {"reset": True}

    return app


def _voice_json(
    voice_id: str, duplicated: bool, sample_text: str | None, wav: bytes | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": voice_id, "object": "audio.voice", "duplicated": duplicated}
    if sample_text is not None:
        body["sample_text"] = sample_text
    if wav is not None:
        body["sample_audio"] = base64.b64encode(wav).decode()
    return body


def _sse_events(emu: Emulator, profile: VoiceProfile, req: SpeechRequest, rate: int) -> Iterator[bytes]:
    try:
        for chunk in stream_encode(emu.render(profile, req), rate, req.format):
            yield _sse({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
        yield _sse({"type": "speech.audio.done"})
    except Exception as exc:  # the status line is gone: errors travel as an event
        yield _sse(
            {"type": "speech.audio.error", "error": {"message": f"synthesis failed: {type(exc).__name__}"}}
        )
    yield b"data: [DONE]\n\n"
