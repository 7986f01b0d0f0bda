"""Talking with a persona: its character (versioned), the system message built from it, conversations per caller
with a bounded history window, the provider's chat call with the reply spoken through the speech path, and the
metering of a turn (one hold: chat tokens + TTS characters; see billing/chat_billing.py).

Streamed turns (the OpenAI-compatible route) pipeline TTS with generation: text deltas go out as they come,
and each sentence is spoken as soon as it is complete, so the first audio arrives before the text ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import anyio.to_thread
from hydra.utils import instantiate
from omegaconf import DictConfig
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import holds
from bentos.billing.chat_billing import HoldClosed, capture_turn
from bentos.billing.pricing import Charge, ChatCharge, PriceBook
from bentos.core import funds, metrics, moderation
from bentos.core.accounts import Caller
from bentos.core.errors import ErrorCode, PlatformError, from_provider_error, not_found
from bentos.core.ids import new_id
from bentos.core.personas import LANGUAGES, PROMPT_MAX_CHARS, callable_persona, owned_persona, visible_persona
from bentos.core.speakable import unspeakable
from bentos.core.speech import SpeechOrder, audio_ms, speech_request
from bentos.stepfun.chat_models import ChatDelta, ChatMessage, count_tokens, prompt_tokens
from bentos.stepfun.client import AsyncStepFunClient
from bentos.stepfun.errors import StepFunError
from bentos.stepfun.limiter import calling_as
from bentos.stepfun.models import (
    EMOTION_LABELS,
    INSTRUCTION_MODELS,
    STYLE_LABELS_ALL,
    STYLE_LABELS_TTS2,
    ResponseFormat,
)
from bentos.store.models import Conversation, ConversationTurn, Persona, PersonaCharacter, utcnow

GREETING_MAX_CHARS = 500
# OpenAI's names (pcm16 = StepFun's pcm): the formats whose per-sentence pieces join into one stream, offered
# streamed or not so that one body means the same either way (flac and opus are not offered).
STREAM_AUDIO_FORMATS = ("mp3", "wav", "pcm16")
AUDIO_FORMATS = STREAM_AUDIO_FORMATS
PCM_RATE = 24_000  # OpenAI's pcm16: 24 kHz, 16-bit little-endian, mono
_SENTENCE_END = re.compile(r"[.!?。！？…]+[\"'”’)）]*(\s+|$)")
PROMPT_SAFETY = 1.25  # holds size the prompt above our estimate: the provider's tokenizer may count more


@dataclass(frozen=True)
class ChatSettings:
    """configs/chat/default.yaml."""

    history_turns: int = 8  # earlier exchanges (user + reply) sent with each new message
    max_reply_tokens: int = 300  # the most tokens a reply may have (what a turn's hold allows)
    max_message_chars: int = 2_000
    max_spoken_chars: int = 1_000  # the most reply characters spoken per turn (the rest is text only)

    def __post_init__(self) -> None:
        if min(self.history_turns, self.max_reply_tokens, self.max_message_chars, self.max_spoken_chars) < 1:
            raise ValueError("chat settings must be ≥ 1")


# --- character ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Character:
    """A persona's character; version 0 is the one it was created with (no edit yet)."""

    version: int
    persona_prompt: str
    greeting: str | None
    emotion: str | None
    style: str | None
    language: str
    created_at: datetime | None


def current_character(session: Session, persona: Persona) -> Character:
    row = session.scalar(
        select(PersonaCharacter)
        .where(PersonaCharacter.persona_id == persona.id)
        .order_by(PersonaCharacter.version.desc())
        .limit(1)
    )
    if row is None:
        return Character(
            0, persona.persona_prompt or "", None, None, None, persona.language, persona.created_at
        )
    return Character(
        row.version, row.persona_prompt, row.greeting, row.emotion, row.style, row.language, row.created_at
    )


def _check_character(persona: Persona, c: Character) -> None:
    problems = []
    if len(c.persona_prompt) > PROMPT_MAX_CHARS:
        problems.append(f"personaPrompt must be at most {PROMPT_MAX_CHARS} characters")
    if c.greeting is not None and len(c.greeting) > GREETING_MAX_CHARS:
        problems.append(f"greeting must be at most {GREETING_MAX_CHARS} characters")
    if c.language not in LANGUAGES:
        problems.append(f"language must be one of {', '.join(LANGUAGES)}")
    if c.emotion is not None and c.emotion not in EMOTION_LABELS:
        problems.append(f"emotion must be one of {', '.join(EMOTION_LABELS)}")
    if c.style is not None and c.style not in STYLE_LABELS_ALL + STYLE_LABELS_TTS2:
        problems.append(f"style must be one of {', '.join(STYLE_LABELS_ALL + STYLE_LABELS_TTS2)}")
    elif c.style in STYLE_LABELS_TTS2 and persona.model not in ("step-tts-2", "step-tts-vivid"):
        problems.append(
            f"style {c.style!r} is only supported on step-tts-2 (this persona speaks {persona.model})"
        )
    if problems:
        raise PlatformError(ErrorCode.INVALID_PERSONA, "; ".join(problems), 422)


def edit_character(
    sessions: sessionmaker[Session],
    persona_id: str,
    creator: Caller,
    changes: dict[str, str | None],
    blocklist: moderation.Moderation | None = None,
) -> Character:
    """The creator's edit → a new version (the current one with `changes` applied; None clears greeting,
    emotion or style). The persona's prompt and language follow the latest version."""
    allowed = {"persona_prompt", "greeting", "emotion", "style", "language"}
    if not changes or set(changes) - allowed:
        raise PlatformError(ErrorCode.INVALID_REQUEST, f"change at least one of {sorted(allowed)}", 422)
    moderation.screen(
        blocklist, {"persona prompt": changes.get("persona_prompt"), "greeting": changes.get("greeting")}
    )
    with sessions.begin() as session:
        persona = owned_persona(session, persona_id, creator)
        if persona.revoked_at is not None:
            raise PlatformError(ErrorCode.VOICE_REVOKED, "this voice was revoked by its creator", 410)
        now = current_character(session, persona)
        fields = {
            "persona_prompt": now.persona_prompt,
            "greeting": now.greeting,
            "emotion": now.emotion,
            "style": now.style,
            "language": now.language,
            **changes,
        }
        if fields["persona_prompt"] is None or fields["language"] is None:
            raise PlatformError(ErrorCode.INVALID_REQUEST, "personaPrompt and language can't be null", 422)
        edited = Character(
            now.version + 1,
            str(fields["persona_prompt"]),
            fields["greeting"] or None,
            fields["emotion"] or None,
            fields["style"] or None,
            str(fields["language"]),
            utcnow(),
        )
        _check_character(persona, edited)
        session.add(
            PersonaCharacter(
                persona_id=persona.id,
                version=edited.version,
                persona_prompt=edited.persona_prompt,
                greeting=edited.greeting,
                emotion=edited.emotion,
                style=edited.style,
                language=edited.language,
                created_at=edited.created_at,
            )
        )
        persona.persona_prompt = edited.persona_prompt
        persona.language = edited.language
    return edited


def character_of(
    sessions: sessionmaker[Session], persona_id: str, caller: Caller | None
) -> tuple[Character, bool]:
    """The persona's current character and whether `caller` may read its prompt (its creator only)."""
    with sessions() as session:
        persona = visible_persona(session, persona_id, caller)
        return current_character(session, persona), caller is not None and caller.id == persona.creator_id


# Per language: who the model is, then the labels of the persona, greeting and tone lines.
_SYSTEM_WORDS = {
    "zh": ("你是{name}。请始终保持角色，用中文简短地回答。", "人设：", "开场白：", "语气："),
    "en": (
        "You are {name}. Stay in character and answer as {name} would, briefly.",
        "Persona: ",
        "Your greeting: ",
        "Tone: ",
    ),
}


def system_message(persona: Persona, character: Character) -> str:
    """What the chat model is told about who it is (the emulator quotes the name and the Persona line)."""
    language = "zh" if character.language == "zh" else "en"
    intro, persona_label, greeting_label, tone_label = _SYSTEM_WORDS[language]
    parts = (
        (persona_label, character.persona_prompt.strip()),
        (greeting_label, character.greeting),
        (tone_label, character.emotion or character.style),
    )
    lines = [intro.format(name=persona.name), f"Language: {language}"]
    lines += [label + text for label, text in parts if text]
    return "\n".join(lines)


# --- conversations -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnUsage:
    """What one assistant turn cost: its chat tokens and the characters of it spoken (integer micro-units)."""

    request_id: str
    prompt_tokens: int
    completion_tokens: int
    chat_amount: int
    tts_chars: int
    tts_amount: int

    @property
    def amount(self) -> int:
        return self.chat_amount + self.tts_amount


@dataclass(frozen=True)
class Turn:
    seq: int
    role: str
    content: str
    character_version: int
    created_at: datetime
    usage: TurnUsage | None


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    persona_id: str
    persona_name: str
    source: str
    turns: int
    last_turn: Turn | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ConversationDetail:
    summary: ConversationSummary
    turns: list[Turn]


@dataclass(frozen=True)
class ChatAnswer:
    """POST /voices/{id}/chat: the reply, its audio (when asked for) and what the turn cost."""

    conversation_id: str
    reply: str
    audio: bytes | None
    audio_format: str | None
    spoken: str  # the part of the reply the audio says
    usage: TurnUsage
    character_version: int


def _turn(row: ConversationTurn) -> Turn:
    usage = None
    if row.role == "assistant":
        usage = TurnUsage(
            row.request_id or "",
            row.prompt_tokens,
            row.completion_tokens,
            row.chat_amount,
            row.tts_chars,
            row.tts_amount,
        )
    return Turn(row.seq, row.role, row.content, row.character_version, row.created_at, usage)


def _own_conversation(session: Session, conversation_id: str, caller: Caller) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if (
        conversation is None or conversation.caller_id != caller.id
    ):  # another's looks exactly like a missing one
        raise not_found(f"conversation {conversation_id}")
    return conversation


def _summary(session: Session, c: Conversation) -> ConversationSummary:
    last = session.scalar(
        select(ConversationTurn)
        .where(ConversationTurn.conversation_id == c.id)
        .order_by(ConversationTurn.seq.desc())
        .limit(1)
    )
    count = session.scalar(select(func.count()).where(ConversationTurn.conversation_id == c.id)) or 0
    persona = session.get(Persona, c.persona_id)
    name = persona.name if persona is not None else ""
    return ConversationSummary(
        c.id,
        c.persona_id,
        name,
        c.source,
        int(count),
        _turn(last) if last else None,
        c.created_at,
        c.updated_at,
    )


def list_conversations(
    sessions: sessionmaker[Session], caller: Caller, limit: int = 50
) -> list[ConversationSummary]:
    """The caller's conversations, most recently active first, each with its persona and last turn."""
    with sessions() as session:
        rows = session.scalars(
            select(Conversation)
            .where(Conversation.caller_id == caller.id)
            .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
            .limit(limit)
        )
        return [_summary(session, c) for c in rows]


def conversation_detail(
    sessions: sessionmaker[Session], conversation_id: str, caller: Caller
) -> ConversationDetail:
    with sessions() as session:
        conversation = _own_conversation(session, conversation_id, caller)
        rows = session.scalars(
            select(ConversationTurn)
            .where(ConversationTurn.conversation_id == conversation.id)
            .order_by(ConversationTurn.seq)
        )
        return ConversationDetail(_summary(session, conversation), [_turn(r) for r in rows])


def delete_conversation(sessions: sessionmaker[Session], conversation_id: str, caller: Caller) -> None:
    """Forget a conversation and its turns (what they cost stays in the ledger and in GET /usage)."""
    with sessions.begin() as session:
        conversation = _own_conversation(session, conversation_id, caller)
        session.execute(delete(ConversationTurn).where(ConversationTurn.conversation_id == conversation.id))
        session.delete(conversation)


# --- a turn ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioOut:
    """The reply's audio as the caller asked for it; `provider` is the format asked of the provider."""

    format: str  # OpenAI's name: mp3 | wav | pcm16 | flac | opus

    @property
    def provider(self) -> ResponseFormat:
        if self.format == "pcm16":
            return "pcm"
        return self.format  # type: ignore[return-value]


@dataclass
class _Prepared:
    """A turn ready for the provider: persona, character, the messages sent, the hold and its request id."""

    persona: Persona
    character: Character
    messages: list[ChatMessage]
    max_tokens: int
    token_budget: int
    request_id: str
    hold: holds.Reservation
    audio: AudioOut | None
    streamed: bool


@dataclass
class _Delivered:
    """What a turn produced and delivered, for billing: reply text, the provider's usage, the text spoken."""

    text: str = ""
    audio: bytes = b""  # a whole (non-streamed) turn's audio
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    spoken: list[str] = field(default_factory=list)
    audio_ms: int = 0


def _sentences_within(text: str, budget: int) -> list[str]:
    """The reply's leading sentences that fit in `budget` characters (what a turn speaks)."""
    out, used = [], 0
    for sentence in split_sentences(text):
        if used + len(sentence) > budget:
            break
        out.append(sentence)
        used += len(sentence)
    return out


def split_sentences(text: str) -> list[str]:
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()].strip())
        start = match.end()
    if text[start:].strip():
        pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def wav_stream_header(rate: int = PCM_RATE) -> bytes:
    """A WAV header for 16-bit mono PCM of unknown length (sizes at their maximum, as streaming WAV writers do)."""
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF - 36)
    )


@dataclass(frozen=True)
class StreamEvent:
    """One event of a streamed turn: `text` (a delta), `audio` (bytes of the sentence `transcript`), `done`
    (finish_reason, usage) or `error` (the stream broke off: `error` is the platform error)."""

    kind: Literal["text", "audio", "done", "error"]
    text: str = ""
    audio: bytes = b""
    transcript: str | None = None
    finish_reason: str | None = None
    usage: TurnUsage | None = None
    error: PlatformError | None = None
    conversation_id: str | None = None  # on `done`: where the turn was stored


@dataclass(frozen=True)
class ChatStream:
    """A streamed turn under way: its request id (the ledger's and GET /usage's) and its events."""

    request_id: str
    events: AsyncIterator[StreamEvent]


def chat_settings(cfg: DictConfig) -> ChatSettings:
    """The `chat` config group (configs/chat/default.yaml); the defaults when the config has none."""
    node = cfg.get("chat")
    return instantiate(node) if node is not None else ChatSettings()


@dataclass(frozen=True)
class ChatService:
    """The parts a chat turn needs."""

    sessions: sessionmaker[Session]
    provider: AsyncStepFunClient
    prices: PriceBook
    settings: ChatSettings
    chat_model: str
    blocklist: moderation.Moderation | None = None  # refused messages: 400 content_blocked, before any hold

    # -- POST /voices/{id}/chat

    async def chat(
        self,
        caller: Caller,
        persona_id: str,
        message: str,
        conversation_id: str | None,
        audio: AudioOut | None,
    ) -> ChatAnswer:
        """One turn of a stored conversation: the last `history_turns` exchanges go with the new message."""
        self._check_message(message)
        moderation.screen(self.blocklist, {"message": message})
        persona, character, history, conversation_id = await anyio.to_thread.run_sync(
            self._load, caller, persona_id, conversation_id
        )
        messages = [ChatMessage(role="system", content=system_message(persona, character)), *history]
        messages.append(ChatMessage(role="user", content=message))
        prepared = await self._prepare(caller, persona, character, messages, None, audio, streamed=False)
        delivered = await self._whole(caller, prepared)
        usage = await anyio.to_thread.run_sync(
            self._settle, caller, prepared, delivered, ("chat", conversation_id, message)
        )
        assert usage is not None
        return ChatAnswer(
            usage.conversation_id,
            delivered.text,
            delivered.audio or None,
            audio.format if audio else None,
            " ".join(delivered.spoken),
            usage.usage,
            character.version,
        )

    # -- POST /v1/chat/completions

    async def complete(
        self,
        caller: Caller,
        persona_id: str,
        messages: list[ChatMessage],
        max_tokens: int | None,
        audio: AudioOut | None,
        conversation_id: str | None = None,
    ) -> tuple[ChatAnswer, str | None]:
        """A whole OpenAI-style completion; the persona's system message goes first (the client's system
        messages follow it); with `conversation_id` (one of the caller's, with this persona) the turn is stored
        in it, else in a new one. → the answer and the finish reason."""
        await self._check_conversation(caller, persona_id, conversation_id)
        persona, character, sent = await anyio.to_thread.run_sync(
            self._openai_messages, caller, persona_id, messages
        )
        prepared = await self._prepare(caller, persona, character, sent, max_tokens, audio, streamed=False)
        delivered = await self._whole(caller, prepared)
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        stored = await anyio.to_thread.run_sync(
            self._settle, caller, prepared, delivered, ("openai", conversation_id, last_user)
        )
        assert stored is not None
        answer = ChatAnswer(
            stored.conversation_id,
            delivered.text,
            delivered.audio or None,
            audio.format if audio else None,
            " ".join(delivered.spoken),
            stored.usage,
            character.version,
        )
        return answer, "stop"

    async def stream(
        self,
        caller: Caller,
        persona_id: str,
        messages: list[ChatMessage],
        max_tokens: int | None,
        audio: AudioOut | None,
        conversation_id: str | None = None,
    ) -> ChatStream:
        """Start a streamed completion (402 and other refusals raise here, before anything streams) → its events.

        Text deltas are relayed as they come; every complete sentence is spoken at once, in order, by a worker
        beside the generation; the turn is billed when the stream ends for what was delivered (a provider
        failure mid-stream ends it with an `error` event)."""
        if audio is not None and audio.format not in STREAM_AUDIO_FORMATS:
            raise PlatformError(
                ErrorCode.INVALID_REQUEST,
                f"streamed audio.format must be one of {list(STREAM_AUDIO_FORMATS)}",
                422,
            )
        await self._check_conversation(caller, persona_id, conversation_id)
        persona, character, sent = await anyio.to_thread.run_sync(
            self._openai_messages, caller, persona_id, messages
        )
        prepared = await self._prepare(caller, persona, character, sent, max_tokens, audio, streamed=True)
        deltas = self.provider.stream_chat(sent, model=self.chat_model, max_tokens=prepared.max_tokens)
        try:
            with metrics.PROVIDER_LATENCY.time(), calling_as(caller.id, interactive=True):
                first = await anext(deltas)
        except (StepFunError, StopAsyncIteration) as err:
            await self._release(prepared, "the chat provider failed")
            raise _failure(err) from None
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        store = ("openai", conversation_id, last_user)
        return ChatStream(prepared.request_id, self._pipeline(caller, prepared, first, deltas, store))

    async def _pipeline(
        self,
        caller: Caller,
        prepared: _Prepared,
        first: ChatDelta,
        deltas: AsyncIterator[ChatDelta],
        store: tuple[str, str | None, str],
    ) -> AsyncIterator[StreamEvent]:
        out: asyncio.Queue[StreamEvent | None] = asyncio.Queue()
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        delivered = _Delivered()
        budget = self.settings.max_spoken_chars
        outcome = "cut"

        async def generate() -> None:
            pending, spoken_chars = "", 0
            stream = _prepend(first, deltas)
            try:
                async for delta in stream:
                    text, usage = delta.content, delta.usage
                    if usage is not None:
                        delivered.prompt_tokens = usage.prompt_tokens
                        delivered.completion_tokens = usage.completion_tokens
                    if not text:
                        continue
                    delivered.text += text
                    await out.put(StreamEvent("text", text=text))
                    pending += text
                    complete = split_complete(pending)
                    for sentence in complete.sentences:
                        if prepared.audio is not None and spoken_chars + len(sentence) <= budget:
                            spoken_chars += len(sentence)
                            await sentences.put(sentence)
                    pending = complete.rest
                if (
                    prepared.audio is not None
                    and pending.strip()
                    and spoken_chars + len(pending.strip()) <= budget
                ):
                    await sentences.put(pending.strip())
            finally:
                await sentences.put(None)

        async def speak() -> None:
            assert prepared.audio is not None
            header_sent = False
            while (sentence := await sentences.get()) is not None:
                if unspeakable(sentence):
                    continue
                order = self._speech_order(prepared, sentence)
                chunks: list[bytes] = []
                async for chunk in self._speech_chunks(prepared, order):
                    chunks.append(chunk)
                    if prepared.audio.format == "wav" and not header_sent:
                        chunk, header_sent = wav_stream_header() + chunk, True
                    transcript = sentence if len(chunks) == 1 else None
                    await out.put(StreamEvent("audio", audio=chunk, transcript=transcript))
                delivered.spoken.append(sentence)
                delivered.audio_ms += audio_ms(b"".join(chunks), order.format, PCM_RATE)

        async def run() -> None:
            nonlocal outcome
            try:
                with calling_as(caller.id, interactive=True):
                    async with asyncio.TaskGroup() as group:
                        group.create_task(generate())
                        if prepared.audio is not None:
                            group.create_task(speak())
                outcome = "complete"
            except* StepFunError as failures:
                outcome = "failed"
                await out.put(StreamEvent("error", error=from_provider_error(failures.exceptions[0])))  # type: ignore[arg-type]
            except* PlatformError as failures:
                outcome = "failed"
                await out.put(StreamEvent("error", error=failures.exceptions[0]))  # type: ignore[arg-type]
            finally:
                await out.put(None)

        worker = asyncio.create_task(run())
        try:
            while (event := await out.get()) is not None:
                yield event
            if outcome == "complete":
                settled = await anyio.to_thread.run_sync(self._settle, caller, prepared, delivered, store)
                usage = settled.usage if settled else None
                conversation = settled.conversation_id if settled else None
                yield StreamEvent("done", finish_reason="stop", usage=usage, conversation_id=conversation)
        finally:
            with anyio.CancelScope(shield=True):
                if not worker.done():
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await worker
                if outcome != "complete":  # failed or cut: bill what was delivered
                    await anyio.to_thread.run_sync(self._settle, caller, prepared, delivered, store)

    # -- the parts

    async def _check_conversation(self, caller: Caller, persona_id: str, conversation_id: str | None) -> None:
        """An OpenAI-style turn joins a conversation only if it is the caller's, with this persona (404/422)."""
        if conversation_id is not None:
            await anyio.to_thread.run_sync(self._load, caller, persona_id, conversation_id)

    def _check_message(self, message: str) -> None:
        if not message.strip() or len(message) > self.settings.max_message_chars:
            raise PlatformError(
                ErrorCode.INVALID_REQUEST,
                f"message must be 1–{self.settings.max_message_chars} characters",
                422,
            )

    def _load(
        self, caller: Caller, persona_id: str, conversation_id: str | None
    ) -> tuple[Persona, Character, list[ChatMessage], str | None]:
        with self.sessions() as session:
            persona = callable_persona(session, persona_id, caller)
            character = current_character(session, persona)
            history: list[ChatMessage] = []
            if conversation_id is not None:
                conversation = _own_conversation(session, conversation_id, caller)
                if conversation.persona_id != persona.id:
                    raise PlatformError(
                        ErrorCode.INVALID_REQUEST, "this conversation is with another persona", 422
                    )
                window = self.settings.history_turns * 2
                rows = list(
                    session.scalars(
                        select(ConversationTurn)
                        .where(ConversationTurn.conversation_id == conversation.id)
                        .order_by(ConversationTurn.seq.desc())
                        .limit(window)
                    )
                )
                history = [ChatMessage(role=r.role, content=r.content) for r in reversed(rows)]  # type: ignore[arg-type]
            session.expunge(persona)
            return persona, character, history, conversation_id

    def _openai_messages(
        self, caller: Caller, persona_id: str, messages: list[ChatMessage]
    ) -> tuple[Persona, Character, list[ChatMessage]]:
        # What the schema allows is answered (the body's size is bounded by the request guard): only the last
        # `history_turns` exchanges go to the provider, whoever spoke last.
        if not messages:
            raise PlatformError(ErrorCode.INVALID_REQUEST, "messages must hold at least one message", 422)
        sent = messages[-(self.settings.history_turns * 2 + 1) :]
        moderation.screen(
            self.blocklist, {"message": "\n".join(m.content for m in sent if m.role != "assistant")}
        )
        with self.sessions() as session:
            persona = callable_persona(session, persona_id, caller)
            character = current_character(session, persona)
            session.expunge(persona)
        system = ChatMessage(role="system", content=system_message(persona, character))
        # The persona speaks first; the client's own turns (its history window) follow as sent.
        return persona, character, [system, *sent]

    async def _prepare(
        self,
        caller: Caller,
        persona: Persona,
        character: Character,
        messages: list[ChatMessage],
        max_tokens: int | None,
        audio: AudioOut | None,
        *,
        streamed: bool,
    ) -> _Prepared:
        """Hold the most the turn may cost (402 when short: the provider is not called)."""
        if audio is not None:
            speech_request(
                persona, SpeechOrder(voice=persona.id, text="a", format=audio.provider)
            )  # 422 early
        allowed = min(max_tokens or self.settings.max_reply_tokens, self.settings.max_reply_tokens)
        budget = math.ceil(prompt_tokens(messages) * PROMPT_SAFETY) + allowed
        estimate = self.prices.chat_charge(budget).amount
        if audio is not None:
            estimate += self._speech_charge(persona, self.settings.max_spoken_chars).amount
        request_id = new_id("chat")
        hold = await anyio.to_thread.run_sync(
            funds.reserve, self.sessions, self.prices, caller, holds.Purpose.SPEECH, request_id, estimate
        )
        return _Prepared(persona, character, messages, allowed, budget, request_id, hold, audio, streamed)

    def _speech_charge(self, persona: Persona, chars: int) -> Charge:
        return self.prices.charge(persona.model, chars, persona.price_multiplier_bps)

    def _speech_order(self, prepared: _Prepared, text: str) -> SpeechOrder:
        assert prepared.audio is not None
        character = prepared.character
        label, instruction = None, None
        tone = character.emotion or character.style
        if tone and prepared.persona.model in INSTRUCTION_MODELS:
            instruction = tone
        elif character.emotion:
            label = {"emotion": character.emotion}
        elif character.style:
            label = {"style": character.style}
        # A streamed WAV is one header (ours) and the PCM of every sentence after it.
        fmt: ResponseFormat = (
            "pcm" if prepared.streamed and prepared.audio.format == "wav" else prepared.audio.provider
        )
        rate = PCM_RATE if fmt == "pcm" else None
        return SpeechOrder(
            voice=prepared.persona.id,
            text=text,
            format=fmt,
            sample_rate=rate,
            voice_label=label,
            instruction=instruction,
        )

    async def _speech_chunks(self, prepared: _Prepared, order: SpeechOrder) -> AsyncIterator[bytes]:
        """The provider's audio for `order` in the persona's voice: the speech path's request and client call."""
        speech = speech_request(prepared.persona, order)
        async for chunk in self.provider.stream_speech(speech):
            yield chunk

    async def _whole(self, caller: Caller, prepared: _Prepared) -> _Delivered:
        """A non-streamed turn: the whole reply, then its spoken part in one speech call. Any provider failure
        releases the hold (nothing was delivered)."""
        delivered = _Delivered()
        try:
            with metrics.PROVIDER_LATENCY.time(), calling_as(caller.id, interactive=True):
                reply = await self.provider.chat(
                    prepared.messages, model=self.chat_model, max_tokens=prepared.max_tokens
                )
                delivered.text = reply.content
                if reply.usage is not None:
                    delivered.prompt_tokens = reply.usage.prompt_tokens
                    delivered.completion_tokens = reply.usage.completion_tokens
                spoken = _sentences_within(reply.content, self.settings.max_spoken_chars)
                text = " ".join(spoken) if prepared.character.language != "zh" else "".join(spoken)
                if prepared.audio is not None and text and not unspeakable(text):
                    order = self._speech_order(prepared, text)
                    delivered.audio = b"".join([c async for c in self._speech_chunks(prepared, order)])
                    delivered.spoken = [text]
                    delivered.audio_ms = audio_ms(delivered.audio, order.format, PCM_RATE)
        except StepFunError as err:
            metrics.PROVIDER_CALLS.labels("error").inc()
            await self._release(prepared, "the chat provider failed")
            raise _failure(err) from None
        except BaseException:
            await self._release(prepared, "the chat turn failed")
            raise
        metrics.PROVIDER_CALLS.labels("ok").inc()
        return delivered

    async def _release(self, prepared: _Prepared, why: str) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(holds.release, self.sessions, prepared.hold.hold_id, why)

    def _settle(
        self,
        caller: Caller,
        prepared: _Prepared,
        delivered: _Delivered,
        store: tuple[str, str | None, str],
    ) -> _Settled | None:
        """Bill the turn (chat tokens + the characters spoken) and store it, in one transaction. A turn that
        produced nothing is released instead. Settling twice is a no-op (the hold closes once)."""
        if not delivered.text:
            holds.release(self.sessions, prepared.hold.hold_id, "the chat turn produced nothing")
            return None
        prompt = (
            delivered.prompt_tokens
            if delivered.prompt_tokens is not None
            else prompt_tokens(prepared.messages)
        )
        completion = (
            delivered.completion_tokens
            if delivered.completion_tokens is not None
            else count_tokens(delivered.text)
        )
        # The hold allowed `token_budget` tokens: a provider counting more than that is not billed beyond it.
        tokens = min(prompt + completion, prepared.token_budget)
        chat_charge: ChatCharge = self.prices.chat_charge(tokens)
        spoken_chars = sum(len(s) for s in delivered.spoken)
        speech = self._speech_charge(prepared.persona, spoken_chars) if spoken_chars else None
        source, conversation_id, user_text = store
        usage = TurnUsage(
            prepared.request_id,
            prompt,
            completion,
            chat_charge.amount,
            spoken_chars,
            speech.amount if speech else 0,
        )
        try:
            with self.sessions.begin() as session:
                capture_turn(
                    session,
                    prepared.hold,
                    request_id=prepared.request_id,
                    caller_id=caller.id,
                    api_key_id=caller.key_id,
                    persona=prepared.persona,
                    chat=chat_charge,
                    speech=speech,
                    audio_ms=delivered.audio_ms,
                )
                conversation_id = self._store_turn(
                    session, caller, prepared, source, conversation_id, user_text, delivered.text, usage
                )
        except (IntegrityError, HoldClosed):
            return None  # billed (or released) before: this settle is the second one
        if speech is not None:
            metrics.USAGE_EVENTS.inc()
        return _Settled(conversation_id, usage)

    def _store_turn(
        self,
        session: Session,
        caller: Caller,
        prepared: _Prepared,
        source: str,
        conversation_id: str | None,
        user_text: str,
        reply: str,
        usage: TurnUsage,
    ) -> str:
        now = utcnow()
        if conversation_id is None:
            conversation = Conversation(
                id=new_id("conv"),
                caller_id=caller.id,
                persona_id=prepared.persona.id,
                source=source,
                created_at=now,
                updated_at=now,
            )
            session.add(conversation)
            seq = 0
        else:
            found = session.get(Conversation, conversation_id)
            if found is None:  # deleted while the turn ran: keep the turn under a new conversation
                return self._store_turn(session, caller, prepared, source, None, user_text, reply, usage)
            conversation = found
            conversation.updated_at = now
            seq = (
                session.scalar(
                    select(func.max(ConversationTurn.seq)).where(
                        ConversationTurn.conversation_id == conversation.id
                    )
                )
                or 0
            ) + 1
        version = prepared.character.version
        session.add_all(
            [
                ConversationTurn(
                    conversation_id=conversation.id,
                    seq=seq,
                    role="user",
                    content=user_text,
                    character_version=version,
                    prompt_tokens=0,
                    completion_tokens=0,
                    chat_amount=0,
                    tts_chars=0,
                    tts_amount=0,
                    created_at=now,
                ),
                ConversationTurn(
                    conversation_id=conversation.id,
                    seq=seq + 1,
                    role="assistant",
                    content=reply,
                    character_version=version,
                    request_id=usage.request_id,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    chat_amount=usage.chat_amount,
                    tts_chars=usage.tts_chars,
                    tts_amount=usage.tts_amount,
                    created_at=now,
                ),
            ]
        )
        return conversation.id


@dataclass(frozen=True)
class _Settled:
    conversation_id: str
    usage: TurnUsage


@dataclass(frozen=True)
class _Complete:
    sentences: list[str]
    rest: str


def split_complete(text: str) -> _Complete:
    """The complete sentences at the start of `text` and the unfinished rest."""
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() == len(text) and not match.group(1):
            break  # "…3." at the very end may be "3.5": wait for what follows
        sentence = text[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    return _Complete(sentences, text[start:])


async def _prepend(first: ChatDelta, rest: AsyncIterator[ChatDelta]) -> AsyncIterator[ChatDelta]:
    yield first
    async for delta in rest:
        yield delta


def _failure(err: BaseException) -> PlatformError:
    if isinstance(err, StepFunError):
        return from_provider_error(err)
    return PlatformError(ErrorCode.PROVIDER_UNAVAILABLE, "the chat provider returned nothing", 502, True)
