"""The emulator's `POST /v1/chat/completions`: a deterministic STAND-IN for StepFun's chat model, not a language
model. It answers offline in the persona's language (Chinese when the system prompt says `Language: zh` or is
mostly Chinese, else English) with a templated reply that visibly uses the system prompt (the persona's name
from "You are <name>." and the first words of its "Persona:" line), the last user turn (quoted) and how many
earlier messages it was sent — enough for tests to see what the platform sent, nothing more.

Streams as OpenAI-style SSE `chat.completion.chunk`s when `stream: true` (usage on the last chunk), reports
`usage` with `chat_models.count_tokens`, honours `max_tokens` (finish_reason `length`). Faults: the gateway's
fault plan applies by path like every /v1/ route; a last user turn containing `[[break]]` makes a stream break
off halfway with an error chunk (a provider failing mid-stream), `[[blocked]]` answers 451 like speech.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..chat_models import CHAT_MODELS, ChatMessage, count_tokens, prompt_tokens
from .gateway import error_response
from .store import new_id

BLOCKED_MARKER = "[[blocked]]"  # the moderation stand-in speech honours too
BREAK_MARKER = "[[break]]"
_NAME_EN = re.compile(r"You are ([^.\n。]{1,60})[.。]")
_NAME_ZH = re.compile(r"你是([^，,。.\n]{1,30})[，,。.]")
_NOTE = re.compile(r"^(?:Persona|人设)\s*[:：]\s*(.+)$", re.MULTILINE)
_LANGUAGE = re.compile(r"^(?:Language|语言)\s*[:：]\s*(\S+)", re.MULTILINE | re.IGNORECASE)
_CJK = re.compile(r"[\u4e00-\u9fff]")
FILLERS_EN = (
    "Tell me more about that.",
    "That is worth thinking about together.",
    "Let us take it one step at a time.",
    "I am glad you brought it up.",
)
FILLERS_ZH = ("再多跟我说说吧。", "这值得我们一起想一想。", "我们一步一步来。", "很高兴你提到这个。")

router = APIRouter()


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = "text"
    text: str = ""


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[_Part] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # temperature, top_p, stream_options…: accepted, not used
    model: str
    messages: list[_Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False


def speaks_chinese(system: str, last_user: str) -> bool:
    said = _LANGUAGE.search(system)
    if said:
        return said.group(1).lower().startswith(("zh", "chinese", "中文"))
    text = system or last_user
    return bool(text) and len(_CJK.findall(text)) * 3 >= len(text.strip())


def compose_reply(messages: list[ChatMessage]) -> str:
    """The deterministic answer to `messages` (same messages, same answer)."""
    system = "\n".join(m.content for m in messages if m.role == "system")
    talk = [m for m in messages if m.role != "system"]
    last_index = max((i for i, m in enumerate(talk) if m.role == "user"), default=-1)
    last = talk[last_index].content.strip() if last_index >= 0 else ""
    earlier = max(last_index, 0)
    zh = speaks_chinese(system, last)
    pick = int(hashlib.sha256(f"{system}\n{last}".encode()).hexdigest(), 16)
    note_match = _NOTE.search(system)
    note_source = note_match.group(1) if note_match else system
    if zh:
        found = _NAME_ZH.search(system)
        name = found.group(1).strip() if found else "你的伙伴"
        note = note_source.strip()[:16]
        parts = [f"我是{name}。", f"你刚才说：“{last[:40]}”。", f"我记得我们之前的{earlier}条消息。"]
        if note:
            parts.append(f"我的设定是：“{note}”。")
        parts.append(FILLERS_ZH[pick % len(FILLERS_ZH)])
        return "".join(parts)
    found = _NAME_EN.search(system)
    name = found.group(1).strip() if found else "Your companion"
    words = last.split()
    quoted = " ".join(words[:16]) + ("…" if len(words) > 16 else "")
    note = " ".join(note_source.split()[:8])
    parts = [f"{name} here.", f"You said: “{quoted}”.", f"I remember {earlier} earlier messages of ours."]
    if note:
        parts.append(f"As my persona puts it, “{note}”.")
    parts.append(FILLERS_EN[pick % len(FILLERS_EN)])
    return " ".join(parts)


def pieces_of(reply: str) -> list[str]:
    """How the reply streams: two words (English) or four characters (Chinese) per chunk; joined = reply."""
    if _CJK.search(reply):
        return [reply[i : i + 4] for i in range(0, len(reply), 4)]
    words = re.findall(r"\S+\s*", reply)
    return ["".join(words[i : i + 2]) for i in range(0, len(words), 2)]


def _limit(pieces: list[str], max_tokens: int | None) -> tuple[list[str], str]:
    if max_tokens is None:
        return pieces, "stop"
    kept: list[str] = []
    for piece in pieces:
        if count_tokens("".join([*kept, piece])) > max_tokens:
            return kept, "length"
        kept.append(piece)
    return kept, "stop"


def _sse(body: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


@router.post("/v1/chat/completions")
def chat_completions(body: ChatBody) -> Response:
    if body.model not in CHAT_MODELS:
        return error_response(400, "request_params_invalid", f"model {body.model!r} is not a chat model")
    messages: list[ChatMessage] = []
    for m in body.messages:
        if m.role not in ("system", "user", "assistant"):
            return error_response(400, "request_params_invalid", f"role {m.role!r} is not supported")
        messages.append(ChatMessage(role=m.role, content=m.text()))  # type: ignore[arg-type]
    users = [m for m in messages if m.role == "user"]
    if not users or not users[-1].content.strip():
        return error_response(400, "request_params_invalid", "messages need a non-empty user message")
    if BLOCKED_MARKER in users[-1].content:
        return error_response(451, "censorship_blocked", "the input was blocked by content moderation")
    pieces, finish = _limit(pieces_of(compose_reply(messages)), body.max_tokens)
    reply = "".join(pieces)
    usage = {
        "prompt_tokens": prompt_tokens(messages),
        "completion_tokens": count_tokens(reply),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    head = {"id": new_id("chatcmpl-", 24), "created": int(time.time()), "model": body.model}
    if not body.stream:
        choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": finish}
        return JSONResponse({**head, "object": "chat.completion", "choices": [choice], "usage": usage})
    breaks = BREAK_MARKER in users[-1].content
    return StreamingResponse(_stream(head, pieces, finish, usage, breaks), media_type="text/event-stream")


def _stream(
    head: dict[str, Any], pieces: list[str], finish: str, usage: dict[str, int], breaks: bool
) -> Iterator[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return _sse({**head, "object": "chat.completion.chunk", "choices": [choice], **extra})

    yield chunk({"role": "assistant", "content": ""})
    for index, piece in enumerate(pieces):
        if breaks and index >= len(pieces) // 2:
            yield _sse({"error": {"message": "the model stream broke off", "type": "server_error"}})
            return
        yield chunk({"content": piece})
    yield chunk({}, finish, usage=usage)
    yield b"data: [DONE]\n\n"
