"""The StepFun audio contract as types: the speech request (with its validation rules) and typed results.

Shared by the client (to build requests, parse answers) and the emulator (to validate like the real server).
Field names and limits follow shared/reference/stepfun-api.md; [?] marks choices the docs leave open.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CLONE_MODELS = ("step-tts-mini", "step-tts-2", "stepaudio-2.5-tts", "step-tts-vivid")  # vivid: legacy alias
SPEECH_MODELS = CLONE_MODELS
INSTRUCTION_MODELS = ("stepaudio-2.5-tts",)  # v2 models: `instruction`, no `voice_label`
RESPONSE_FORMATS = ("wav", "mp3", "flac", "opus", "pcm")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 48000)
MAX_INPUT_CHARS = 1000
MAX_INSTRUCTION_CHARS = 200
MAX_SAMPLE_TEXT_CHARS = 50

LANGUAGE_LABELS = ("粤语", "四川话", "日语")
EMOTION_LABELS = (
    "高兴",
    "非常高兴",
    "悲伤",
    "生气",
    "非常生气",
    "撒娇",
    "恐惧",
    "惊讶",
    "兴奋",
    "钦佩",
    "困惑",
)
STYLE_LABELS_ALL = ("慢速", "极慢", "快速", "极快", "冷漠", "尴尬", "沮丧")
STYLE_LABELS_TTS2 = ("骄傲", "温柔", "甜美", "豪爽", "严肃", "傲慢", "老年", "吼叫", "阴阳怪气", "磕巴")

CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "pcm": "audio/pcm",
}

ResponseFormat = Literal["wav", "mp3", "flac", "opus", "pcm"]
SampleRate = Literal[8000, 16000, 22050, 24000, 48000]


class VoiceLabel(BaseModel):
    """Exactly one of language / emotion / style (the contract's one-of rule)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str | None = None
    emotion: str | None = None
    style: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> VoiceLabel:
        given = [k for k in ("language", "emotion", "style") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"voice_label needs exactly one of language, emotion, style (got {len(given)})")
        if self.language is not None and self.language not in LANGUAGE_LABELS:
            raise ValueError(f"voice_label.language must be one of {', '.join(LANGUAGE_LABELS)}")
        if self.emotion is not None and self.emotion not in EMOTION_LABELS:
            raise ValueError(f"voice_label.emotion must be one of {', '.join(EMOTION_LABELS)}")
        if self.style is not None and self.style not in STYLE_LABELS_ALL + STYLE_LABELS_TTS2:
            raise ValueError("voice_label.style is not a known style")
        return self

    @property
    def value(self) -> str:
        return self.language or self.emotion or self.style or ""


class SpeechRequest(BaseModel):
    """Body of POST /v1/audio/speech. Unset optional fields are not sent (the server's defaults apply)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    voice: str = Field(min_length=1)
    response_format: ResponseFormat | None = None  # server default: mp3
    speed: float | None = Field(default=None, ge=0.5, le=2.0)
    volume: float | None = Field(default=None, ge=0.1, le=2.0)
    sample_rate: SampleRate | None = None  # server default: 24000
    voice_label: VoiceLabel | None = None
    instruction: str | None = Field(default=None, max_length=MAX_INSTRUCTION_CHARS)
    pronunciation_map: dict[str, list[str]] | None = None
    markdown_filter: bool | None = None
    stream_format: Literal["audio", "sse"] | None = None
    return_url: bool | None = None  # [?] response shape undocumented; the emulator answers {"url": …}

    @model_validator(mode="after")
    def _model_rules(self) -> SpeechRequest:
        if self.model not in SPEECH_MODELS:
            raise ValueError(f"model {self.model!r} is not a speech model ({', '.join(SPEECH_MODELS)})")
        if self.model in INSTRUCTION_MODELS:
            if self.voice_label is not None:
                raise ValueError("voice_label is not supported for v2 models")
        elif self.instruction is not None:
            raise ValueError(f"instruction is only supported on {', '.join(INSTRUCTION_MODELS)}")
        label = self.voice_label
        if (
            label is not None
            and label.style in STYLE_LABELS_TTS2
            and self.model not in ("step-tts-2", "step-tts-vivid")
        ):
            raise ValueError(f"voice_label.style {label.style!r} is only supported on step-tts-2")
        return self

    @property
    def format(self) -> ResponseFormat:
        return self.response_format or "mp3"

    @property
    def rate(self) -> int:
        return self.sample_rate or 24000

    def payload(self) -> dict[str, Any]:
        """The JSON body, without unset fields."""
        return self.model_dump(exclude_none=True)


def b64_audio(value: Any) -> bytes | None:
    """Decode an optional base64 audio field; None when absent or empty."""
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class StepFile:
    """An uploaded file (POST/GET /v1/files). status may be absent ('processed'/'success' when present)."""

    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StepFile:
        return cls(
            id=str(d["id"]),
            bytes=int(d.get("bytes") or 0),
            created_at=int(d.get("created_at") or 0),
            filename=str(d.get("filename") or ""),
            purpose=str(d.get("purpose") or ""),
            status=d.get("status"),
        )


@dataclass(frozen=True)
class FileDeletion:
    id: str
    deleted: bool


@dataclass(frozen=True)
class ClonedVoice:
    """A cloned voice. duplicated=True: the same audio was cloned before — same id, not paid again."""

    id: str
    duplicated: bool = False
    sample_text: str | None = None
    sample_audio: bytes | None = None  # WAV bytes, decoded from base64

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClonedVoice:
        return cls(
            id=str(d["id"]),
            duplicated=bool(d.get("duplicated", False)),
            sample_text=d.get("sample_text"),
            sample_audio=b64_audio(d.get("sample_audio")),
        )

    def __repr__(self) -> str:  # keep logs readable: never dump the audio
        n = len(self.sample_audio) if self.sample_audio else 0
        return f"ClonedVoice(id={self.id!r}, duplicated={self.duplicated}, sample_audio={n} bytes)"


@dataclass(frozen=True)
class VoicePreview:
    sample_text: str | None
    sample_audio: bytes | None
    request_id: str | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VoicePreview:
        return cls(d.get("sample_text"), b64_audio(d.get("sample_audio")), d.get("request_id"))


@dataclass(frozen=True)
class VoiceSummary:
    id: str
    file_id: str | None
    created_at: int


@dataclass(frozen=True)
class VoicePage:
    """One page of GET /v1/audio/voices; pass last_id as `after` (order=desc: `before`) for the next."""

    data: list[VoiceSummary]
    has_more: bool
    first_id: str | None
    last_id: str | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VoicePage:
        items = [
            VoiceSummary(str(v["id"]), v.get("file_id"), int(v.get("created_at") or 0))
            for v in d.get("data") or []
        ]
        return cls(items, bool(d.get("has_more", False)), d.get("first_id"), d.get("last_id"))


@dataclass(frozen=True)
class SystemVoice:
    id: str
    name: str | None = None
    description: str | None = None
    recommended_scene: str | None = None


def system_voices_from_json(d: dict[str, Any]) -> list[SystemVoice]:
    details = d.get("voices-details") or {}
    out = []
    for vid in d.get("voices") or []:
        info = details.get(vid) or {}
        out.append(
            SystemVoice(
                str(vid), info.get("voice-name"), info.get("voice-description"), info.get("recommended_scene")
            )
        )
    return out


@dataclass(frozen=True)
class SpeechAudio:
    """Synthesised speech: the whole encoded body (or, with return_url, where to fetch it)."""

    audio: bytes
    content_type: str
    response_format: str
    request_id: str | None = None
    url: str | None = None

    def __repr__(self) -> str:
        return f"SpeechAudio({self.response_format}, {len(self.audio)} bytes, url={self.url!r})"


@dataclass(frozen=True)
class SpeechEvent:
    """One decoded SSE event: speech.audio.delta (audio set), speech.audio.done, speech.audio.error."""

    type: str
    audio: bytes | None = None
    message: str | None = None
