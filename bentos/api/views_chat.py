"""Request and response models of the chat routes: the platform's own (camelCase, like every other view) and
OpenAI's chat completion shapes (snake_case, exactly as the OpenAI SDKs read them)."""

from __future__ import annotations

import base64
import time
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bentos.api.views import IsoTime, View
from bentos.core.chat import (
    AUDIO_FORMATS,
    GREETING_MAX_CHARS,
    ChatAnswer,
    ConversationDetail,
    ConversationSummary,
    Turn,
    TurnUsage,
)
from bentos.core.personas import LANGUAGES, PROMPT_MAX_CHARS
from bentos.stepfun.models import EMOTION_LABELS, STYLE_LABELS_ALL, STYLE_LABELS_TTS2

ShortId = Annotated[str, StringConstraints(max_length=64)]
MESSAGE_MAX_CHARS = 8_000  # a hard bound for the schema; chat.max_message_chars is the finer limit
AUDIO_EXPIRES_S = (
    3600  # OpenAI's `expires_at`: we keep no audio; the number only tells clients not to refer back
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _labels(values: tuple[str, ...] | list[str], nullable: bool = True) -> dict[str, Any]:
    """An enum in the schema (the domain checks it too); `null` clears the field where it may be cleared."""
    return {"enum": [*values, *([None] if nullable else [])]}


class CharacterEdit(_Body):
    """Only the fields sent change (at least one); `null` clears greeting, emotion or style. With both an
    emotion and a style, speech uses the emotion (the provider takes one voice label)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra={"minProperties": 1})

    persona_prompt: str = Field(default=None, alias="personaPrompt", max_length=PROMPT_MAX_CHARS)  # type: ignore[assignment]
    greeting: str | None = Field(default=None, max_length=GREETING_MAX_CHARS)
    emotion: str | None = Field(
        default=None,
        description="one of the provider's emotion labels",
        json_schema_extra=_labels(EMOTION_LABELS),
    )
    style: str | None = Field(
        default=None,
        description="one of the provider's style labels (some only on step-tts-2)",
        json_schema_extra=_labels(STYLE_LABELS_ALL + STYLE_LABELS_TTS2),
    )
    language: str = Field(default=None, json_schema_extra=_labels(LANGUAGES, nullable=False))  # type: ignore[assignment]

    def changes(self) -> dict[str, str | None]:
        return self.model_dump(exclude_unset=True)


class ChatRequest(_Body):
    message: str = Field(min_length=1, max_length=MESSAGE_MAX_CHARS)
    conversation: ShortId | None = Field(
        default=None, description="continue this conversation; none: a new one"
    )
    audio: bool = Field(default=False, description="also speak the reply (base64 MP3 in `audio`)")


class TurnUsageView(View):
    request_id: str = Field(description="the metered call: GET /usage lists its TTS part under this id")
    prompt_tokens: int
    completion_tokens: int
    chat_amount: int = Field(description="micro-units for the tokens (no creator share)")
    tts_chars: int
    tts_amount: int = Field(description="micro-units for the characters spoken (a usage row)")
    amount: int = Field(description="what the turn cost: chatAmount + ttsAmount")

    @classmethod
    def of_usage(cls, usage: TurnUsage) -> Self:
        return cls.model_validate({**usage.__dict__, "amount": usage.amount})


class ChatReplyView(View):
    conversation: str
    reply: str
    audio: str | None = Field(default=None, description="base64 MP3 of `spoken`, when asked for")
    spoken: str | None = Field(default=None, description="the part of the reply the audio says")
    character_version: int
    usage: TurnUsageView

    @classmethod
    def of_answer(cls, answer: ChatAnswer) -> Self:
        return cls(
            conversation=answer.conversation_id,
            reply=answer.reply,
            audio=base64.b64encode(answer.audio).decode() if answer.audio else None,
            spoken=answer.spoken or None,
            character_version=answer.character_version,
            usage=TurnUsageView.of_usage(answer.usage),
        )


class TurnView(View):
    seq: int
    role: str
    content: str
    character_version: int
    created_at: IsoTime = None
    usage: TurnUsageView | None = None

    @classmethod
    def of_turn(cls, turn: Turn) -> Self:
        return cls(
            seq=turn.seq,
            role=turn.role,
            content=turn.content,
            character_version=turn.character_version,
            created_at=turn.created_at,  # type: ignore[arg-type]  # IsoTime's validator writes it
            usage=TurnUsageView.of_usage(turn.usage) if turn.usage else None,
        )


class ConversationView(View):
    id: str
    persona_id: str
    persona: str = Field(description="the persona's name")
    source: str = Field(description="chat: POST /voices/{id}/chat; openai: one POST /v1/chat/completions")
    turns: int
    last_turn: TurnView | None
    created_at: IsoTime = None
    updated_at: IsoTime = None

    @classmethod
    def of_summary(cls, c: ConversationSummary) -> Self:
        return cls(
            id=c.id,
            persona_id=c.persona_id,
            persona=c.persona_name,
            source=c.source,
            turns=c.turns,
            last_turn=TurnView.of_turn(c.last_turn) if c.last_turn else None,
            created_at=c.created_at,  # type: ignore[arg-type]
            updated_at=c.updated_at,  # type: ignore[arg-type]
        )


class ConversationPageView(View):
    data: list[ConversationView]


class ConversationDetailView(ConversationView):
    messages: list[TurnView]

    @classmethod
    def of_detail(cls, d: ConversationDetail) -> Self:
        base = ConversationView.of_summary(d.summary).model_dump()
        return cls(**base, messages=[TurnView.of_turn(t) for t in d.turns])


# --- OpenAI's chat completions -----------------------------------------------------------------------------


class _OpenAIPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(max_length=32)
    text: str | None = Field(default=None, max_length=MESSAGE_MAX_CHARS)


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[_OpenAIPart] | None = Field(default=None, max_length=MESSAGE_MAX_CHARS)

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class OpenAIAudio(BaseModel):
    model_config = ConfigDict(extra="ignore")
    voice: str | dict[str, str] = Field(description="the persona id (the same as `model`)")
    format: str = Field(max_length=10, json_schema_extra={"enum": list(AUDIO_FORMATS)})

    def voice_id(self) -> str:
        return self.voice.get("id", "") if isinstance(self.voice, dict) else self.voice


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class OpenAIChat(BaseModel):
    """OpenAI's chat completion body; `model` is a persona id. Unknown OpenAI fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: ShortId
    messages: list[OpenAIMessage] = Field(
        min_length=1, max_length=256, description="the last `2 × chat.history_turns + 1` go to the model"
    )
    modalities: list[Literal["text", "audio"]] | None = None
    audio: OpenAIAudio | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    conversation: ShortId | None = Field(
        default=None,
        description="VoxPersona extension (the SDKs' `extra_body`): store this turn in one of your conversations "
        "with this persona; the answer's `voxpersona.conversation` names where it was stored",
    )

    def wants_audio(self) -> bool:
        return "audio" in (self.modalities or []) or (self.audio is not None and self.modalities is None)

    def reply_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


def completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"


def openai_usage(usage: TurnUsage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def platform_usage(usage: TurnUsage, conversation: str | None) -> dict[str, Any]:
    """What the turn cost, beside OpenAI's fields (`voxpersona`; SDKs keep unknown fields)."""
    return {**TurnUsageView.of_usage(usage).model_dump(by_alias=True), "conversation": conversation}


def openai_completion(answer: ChatAnswer, persona_id: str, finish_reason: str | None) -> dict[str, Any]:
    """ChatCompletion as OpenAI shapes it (`choices[0].message.audio` when audio was asked for)."""
    created = int(time.time())
    message: dict[str, Any] = {"role": "assistant", "content": answer.reply, "refusal": None}
    if answer.audio_format is not None:
        message["audio"] = {
            "id": f"audio_{answer.usage.request_id}",
            "data": base64.b64encode(answer.audio or b"").decode(),
            "expires_at": created + AUDIO_EXPIRES_S,
            "transcript": answer.spoken,
        }
    return {
        "id": completion_id(answer.usage.request_id),
        "object": "chat.completion",
        "created": created,
        "model": persona_id,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason or "stop", "logprobs": None}
        ],
        "usage": openai_usage(answer.usage),
        "voxpersona": platform_usage(answer.usage, answer.conversation_id),
    }
