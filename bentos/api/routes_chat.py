"""Talking with a persona: its character (PATCH/GET /voices/{id}/character), conversations
(POST /voices/{id}/chat, GET/DELETE /conversations) and the OpenAI-compatible POST /v1/chat/completions, plain or
streamed (SSE), with OpenAI's audio output."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from bentos.api.deps import OPTIONAL_AUTH, CallerDep, OptionalCallerDep, PlatformDep
from bentos.api.views import CharacterView, error_responses
from bentos.api.views_chat import (
    AUDIO_EXPIRES_S,
    CharacterEdit,
    ChatReplyView,
    ChatRequest,
    ConversationDetailView,
    ConversationPageView,
    ConversationView,
    OpenAIChat,
    completion_id,
    openai_completion,
    openai_usage,
    platform_usage,
)
from bentos.core.chat import (
    AUDIO_FORMATS,
    AudioOut,
    ChatService,
    ChatStream,
    character_of,
    chat_settings,
    conversation_detail,
    delete_conversation,
    edit_character,
    list_conversations,
)
from bentos.core.errors import ErrorCode, PlatformError
from bentos.stepfun.chat_models import ChatMessage

router = APIRouter(tags=["chat"])
CHAT_ERRORS = error_responses(400, 401, 402, 404, 409, 410, 413, 422, 429, 451, 502)
STREAM_DOC: dict[int | str, dict[str, Any]] = {
    **CHAT_ERRORS,
    200: {
        "description": "a `chat.completion`, or with `stream: true` SSE `chat.completion.chunk`s: text deltas as "
        "they come, audio deltas (`delta.audio.data`, `delta.audio.transcript`) sentence by sentence as soon as "
        'each is spoken, then `data: [DONE]`; a failure mid-stream ends it with `data: {"error": …}`',
        "content": {
            "application/json": {"schema": {"type": "object", "description": "OpenAI's ChatCompletion"}},
            "text/event-stream": {
                "schema": {"type": "string", "description": "SSE chat.completion.chunk lines"}
            },
        },
    },
}


def chat_service(request: Request, platform: PlatformDep) -> ChatService:
    settings = getattr(request.app.state, "chat_settings", None)
    if settings is None:
        settings = request.app.state.chat_settings = chat_settings(platform.cfg)
    return ChatService(
        platform.sessions,
        platform.async_provider,
        platform.prices,
        settings,
        platform.provider_settings.chat_model,
        blocklist=platform.moderation,
    )


ChatDep = Annotated[ChatService, Depends(chat_service)]


class ConversationDeleted(BaseModel):
    id: str
    deleted: bool = True


# --- character ---------------------------------------------------------------------------------------------


@router.patch("/voices/{voice_id}/character", responses=error_responses(400, 401, 403, 404, 410, 422))
def edit_persona_character(
    voice_id: str, body: CharacterEdit, platform: PlatformDep, account: CallerDep
) -> CharacterView:
    """The creator edits the persona's character; every edit is a new version (conversations record theirs)."""
    character = edit_character(platform.sessions, voice_id, account, body.changes(), platform.moderation)
    return CharacterView.of_character(character, with_prompt=True)


@router.get(
    "/voices/{voice_id}/character",
    responses=error_responses(401, 404),
    openapi_extra=OPTIONAL_AUTH,
    response_model_exclude_none=True,
)
def get_persona_character(voice_id: str, platform: PlatformDep, account: OptionalCallerDep) -> CharacterView:
    """The persona's current character; `personaPrompt` for its creator only."""
    character, creator = character_of(platform.sessions, voice_id, account)
    return CharacterView.of_character(character, with_prompt=creator)


# --- conversations -----------------------------------------------------------------------------------------


@router.post("/voices/{voice_id}/chat", responses=CHAT_ERRORS)
async def chat(voice_id: str, body: ChatRequest, service: ChatDep, account: CallerDep) -> ChatReplyView:
    """One turn: the persona answers `message` (with the conversation's last exchanges as context), its reply
    spoken when `audio` is true. Metered: chat tokens + the characters spoken (402 before any provider call)."""
    audio = AudioOut("mp3") if body.audio else None
    answer = await service.chat(account, voice_id, body.message, body.conversation, audio)
    return ChatReplyView.of_answer(answer)


@router.get("/conversations", responses=error_responses(401))
def conversations(platform: PlatformDep, account: CallerDep) -> ConversationPageView:
    """The caller's conversations, most recently active first, each with its persona and last turn."""
    found = list_conversations(platform.sessions, account)
    return ConversationPageView(data=[ConversationView.of_summary(c) for c in found])


@router.get("/conversations/{conversation_id}", responses=error_responses(401, 404))
def conversation(conversation_id: str, platform: PlatformDep, account: CallerDep) -> ConversationDetailView:
    return ConversationDetailView.of_detail(conversation_detail(platform.sessions, conversation_id, account))


@router.delete("/conversations/{conversation_id}", responses=error_responses(401, 404))
def forget_conversation(
    conversation_id: str, platform: PlatformDep, account: CallerDep
) -> ConversationDeleted:
    """Delete the conversation and its turns (what they cost stays in the ledger and GET /usage)."""
    delete_conversation(platform.sessions, conversation_id, account)
    return ConversationDeleted(id=conversation_id)


# --- OpenAI-compatible ---------------------------------------------------------------------------------------


def _audio_of(body: OpenAIChat) -> AudioOut | None:
    """The reply's audio, if asked for: the persona named by `model` speaks it (`audio.voice` is documented as
    that id; any other value means the same voice), in `audio.format` (mp3 when `audio` is left out)."""
    if not body.wants_audio():
        return None
    if body.audio is None:
        return AudioOut("mp3")
    if body.audio.format not in AUDIO_FORMATS:  # the schema's enum already says so
        raise PlatformError(
            ErrorCode.INVALID_REQUEST, f"audio.format must be one of {list(AUDIO_FORMATS)}", 422
        )
    return AudioOut(body.audio.format)


def _messages(body: OpenAIChat) -> list[ChatMessage]:
    return [
        ChatMessage(role="system" if m.role == "developer" else m.role, content=m.text())  # type: ignore[arg-type]
        for m in body.messages
    ]


@router.post("/v1/chat/completions", responses=STREAM_DOC, response_model=None)
async def chat_completions(body: OpenAIChat, service: ChatDep, account: CallerDep) -> Response:
    """OpenAI-compatible: `model` is a persona id, so any OpenAI SDK talks with a persona; with
    `modalities: ["text", "audio"]` and `audio: {voice: <persona id>, format}` the reply is also spoken."""
    audio = _audio_of(body)
    messages = _messages(body)
    if not body.stream:
        answer, finish = await service.complete(
            account, body.model, messages, body.reply_limit(), audio, body.conversation
        )
        return JSONResponse(openai_completion(answer, body.model, finish))
    stream = await service.stream(account, body.model, messages, body.reply_limit(), audio, body.conversation)
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    events = _sse(stream, body.model, audio is not None, include_usage)
    headers = {"X-Request-Id": stream.request_id, "Cache-Control": "no-store"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


def _data(body: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


async def _sse(stream: ChatStream, model: str, audio: bool, include_usage: bool) -> AsyncIterator[bytes]:
    """The turn's events as OpenAI's chunks. Read to the end (never left early): the turn is billed when its
    events end, before the response does."""
    head = {
        "id": completion_id(stream.request_id),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
    }
    head["model"] = model
    audio_id = f"audio_{stream.request_id}"

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return _data({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    async for event in stream.events:
        if event.kind == "text":
            yield chunk({"content": event.text})
        elif event.kind == "audio":
            part: dict[str, Any] = {"id": audio_id, "data": base64.b64encode(event.audio).decode()}
            if event.transcript is not None:
                part["transcript"] = event.transcript + " "
            yield chunk({"audio": part})
        elif event.kind == "error" and event.error is not None:
            err = event.error
            yield _data(
                {
                    "error": {
                        "code": str(err.code),
                        "message": err.message,
                        "type": "error",
                        "retryable": err.retryable,
                    }
                }
            )
        elif event.kind == "done":
            if audio:
                yield chunk({"audio": {"id": audio_id, "expires_at": int(time.time()) + AUDIO_EXPIRES_S}})
            extra = {"voxpersona": platform_usage(event.usage, event.conversation_id)} if event.usage else {}
            yield chunk({}, "stop", **extra)
            if include_usage and event.usage is not None:
                yield _data({**head, "choices": [], "usage": openai_usage(event.usage)})
            yield b"data: [DONE]\n\n"
