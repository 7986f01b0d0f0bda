"""StepFun's OpenAI-compatible chat contract as types: the request, the whole reply, the streamed deltas, and the
one token estimate the client, the emulator and the platform's holds share.

Shapes follow OpenAI's `POST /v1/chat/completions` (StepFun documents the API as OpenAI-compatible); [?] marks
what StepFun's docs leave open.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CHAT_MODELS = ("step-1-8k", "step-1-32k", "step-1-256k", "step-2-mini", "step-2-16k", "step-1o-turbo")
ChatRole = Literal["system", "user", "assistant"]
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_WORDISH = re.compile(r"[^\s\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+")
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators, per message (as OpenAI-style tokenizers count them)


def count_tokens(text: str) -> int:
    """A deterministic token estimate: one per CJK character, one per started 4 characters of other words.

    The emulator reports usage with it; the platform sizes holds with it and bills a stream cut before the
    provider's own `usage` arrived with it. Real tokenizers differ by a few percent either way.
    """
    cjk = len(_CJK.findall(text))
    return cjk + sum(math.ceil(len(word) / 4) for word in _WORDISH.findall(text))


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    role: ChatRole
    content: str


def prompt_tokens(messages: list[ChatMessage]) -> int:
    return sum(count_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in messages)


class ChatRequest(BaseModel):
    """Body of POST /v1/chat/completions. Unset optional fields are not sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    stream: bool | None = None

    def payload(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class ChatUsage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_json(cls, d: Any) -> ChatUsage | None:
        if not isinstance(d, dict):
            return None
        return cls(int(d.get("prompt_tokens") or 0), int(d.get("completion_tokens") or 0))


@dataclass(frozen=True)
class ChatReply:
    """A whole (non-streamed) answer."""

    id: str
    content: str
    finish_reason: str | None
    usage: ChatUsage | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChatReply:
        choice = d["choices"][0]
        content = choice["message"].get("content") or ""
        return cls(
            str(d.get("id") or ""),
            str(content),
            choice.get("finish_reason"),
            ChatUsage.from_json(d.get("usage")),
        )


@dataclass(frozen=True)
class ChatDelta:
    """One streamed chunk: new reply text (maybe empty), and on the last chunk the finish reason and usage."""

    content: str = ""
    finish_reason: str | None = None
    usage: ChatUsage | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChatDelta:
        choices = d.get("choices") or []
        choice = choices[0] if choices else {}
        delta = choice.get("delta") or {}
        return cls(
            str(delta.get("content") or ""), choice.get("finish_reason"), ChatUsage.from_json(d.get("usage"))
        )
