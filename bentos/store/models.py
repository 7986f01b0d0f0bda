"""The platform's tables (DESIGN §4). Money columns are integer micro-CNY; the schema comes from migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bentos.store.base import Base

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "BlobRow",
    "Conversation",
    "ConversationTurn",
    "EmbeddingRow",
    "Hold",
    "IdempotencyRecord",
    "Job",
    "LedgerBalance",
    "LedgerEntry",
    "LedgerTransaction",
    "OutboxItem",
    "Persona",
    "PersonaCharacter",
    "Settlement",
    "StoredFile",
    "UsageEvent",
    "VoiceClone",
]

Money = BigInteger  # micro-CNY (1 CNY = 1,000,000)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return mapped_column(DateTime(timezone=True), **kw)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # creator | consumer | admin
    payout_wallet: Mapped[str | None] = mapped_column(String(42))
    # bytes32 hex a crypto top-up names (keccak of the account id): deposits carrying it credit this account.
    deposit_reference: Mapped[str | None] = mapped_column(String(66), unique=True)
    created_at: Mapped[datetime] = _ts(default=utcnow)
    # An admin's ban, or the holder's own erasure (DELETE /accounts/me): either stops every key and session at once.
    banned_at: Mapped[datetime | None] = _ts(nullable=True)
    erased_at: Mapped[datetime | None] = _ts(nullable=True)


class ApiKey(Base):
    """Only the sha256 of a key and its display prefix are stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(60), default="")  # the holder's label (migration 0008)
    scopes: Mapped[str] = mapped_column(String(200), default="*")  # "*" = full; bentos.core.scopes
    created_at: Mapped[datetime] = _ts(default=utcnow)
    revoked_at: Mapped[datetime | None] = _ts(nullable=True)


class StoredFile(Base):
    """An accepted upload; rejected uploads never get a row or a blob."""

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("owner_id", "sha256"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    audio_sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(120))  # sanitized; never used as a storage path
    format: Mapped[str] = mapped_column(String(8))
    duration: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    step_file_id: Mapped[str | None] = mapped_column(String(100))
    # Set while one worker uploads this file to the provider (a lease: another worker waits, a crash expires it).
    step_upload_claimed_at: Mapped[datetime | None] = _ts(nullable=True)
    created_at: Mapped[datetime] = _ts(default=utcnow)


class BlobRow(Base):
    """One row per stored blob: holding or releasing a blob locks its row, so a delete never races a new
    reference to the same content (blobs are content-addressed and shared across accounts)."""

    __tablename__ = "blobs"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = _ts(default=utcnow)


class VoiceClone(Base):
    """The provider voice cloned from one upload for one model: one provider clone per (file, model).

    billed: whether this row recorded a voice the provider charged us for (the first time we saw that voice id).
    """

    __tablename__ = "voice_clones"
    __table_args__ = (UniqueConstraint("file_id", "model"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id"), index=True)
    model: Mapped[str] = mapped_column(String(40))
    step_voice_id: Mapped[str | None] = mapped_column(String(100), index=True)
    sample_text: Mapped[str | None] = mapped_column(String(200))
    sample_blob_key: Mapped[str | None] = mapped_column(String(100))
    billed: Mapped[bool] = mapped_column(Boolean, default=False)
    billed_persona_id: Mapped[str | None] = mapped_column(String(40))
    claimed_at: Mapped[datetime | None] = _ts(nullable=True)
    created_at: Mapped[datetime] = _ts(default=utcnow)
    # migration 0007: set when its persona is revoked; StepFun has no voice delete, so the product never uses
    # this provider voice again.
    provider_voice_retired_at: Mapped[datetime | None] = _ts(nullable=True)


class Persona(Base):
    __tablename__ = "personas"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id"))
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    persona_prompt: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(8), default="en")
    visibility: Mapped[str] = mapped_column(String(10), default="private", index=True)
    price_per_10k_chars: Mapped[int] = mapped_column(
        Money
    )  # unit price of `model` at the multiplier (display)
    price_multiplier_bps: Mapped[int] = mapped_column(Integer, default=10_000)  # × each model's list price
    consent_statement: Mapped[str] = mapped_column(Text)
    consent_at: Mapped[datetime] = _ts(default=utcnow)
    # migration 0007: the verified consent challenge (public/unlisted personas) and its recording's sha256.
    consent_challenge_id: Mapped[str | None] = mapped_column(String(40))
    consent_recording_sha256: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(40))
    transcript: Mapped[str | None] = mapped_column(Text)
    sample_text: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(12), default="uploaded", index=True)
    failure_step: Mapped[str | None] = mapped_column(String(12))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    failure_retryable: Mapped[bool | None] = mapped_column(Boolean)
    step_voice_id: Mapped[str | None] = mapped_column(String(100))
    clone_duplicated: Mapped[bool] = mapped_column(Boolean, default=False)
    clones_billed: Mapped[int] = mapped_column(Integer, default=0)
    sample_blob_key: Mapped[str | None] = mapped_column(String(100))
    impersonation_of: Mapped[str | None] = mapped_column(String(40))
    impersonation_cosine: Mapped[float | None] = mapped_column(Float)
    notices: Mapped[list[str] | None] = mapped_column(
        JSON, default=list
    )  # what the creator should know (plain words)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = _ts(default=utcnow)
    updated_at: Mapped[datetime] = _ts(default=utcnow, onupdate=utcnow)
    revoked_at: Mapped[datetime | None] = _ts(nullable=True)


class EmbeddingRow(Base):
    __tablename__ = "embeddings"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    persona_id: Mapped[str] = mapped_column(ForeignKey("personas.id"), unique=True)
    encoder: Mapped[str] = mapped_column(String(40))
    version: Mapped[str] = mapped_column(String(40))
    pretrained: Mapped[bool] = mapped_column(Boolean)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32 LE; None once the persona is revoked
    hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = _ts(default=utcnow)


class Job(Base):
    """A pipeline run of one persona; the persona row carries the step state itself."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    persona_id: Mapped[str] = mapped_column(ForeignKey("personas.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued|running|succeeded|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _ts(default=utcnow)
    updated_at: Mapped[datetime] = _ts(default=utcnow, onupdate=utcnow)


class UsageEvent(Base):
    """Append-only: one row per successful metered request (request_id is unique)."""

    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100), unique=True)
    caller_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    persona_id: Mapped[str] = mapped_column(ForeignKey("personas.id"), index=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    chars: Mapped[int] = mapped_column(Integer)
    audio_ms: Mapped[int] = mapped_column(BigInteger)
    model: Mapped[str] = mapped_column(String(40))
    unit_price: Mapped[int] = mapped_column(Money)  # micro-CNY per 10,000 chars
    amount: Mapped[int] = mapped_column(Money)
    creator_share: Mapped[int] = mapped_column(Money)
    platform_share: Mapped[int] = mapped_column(Money)
    provider_cost: Mapped[int] = mapped_column(Money, default=0)
    api_key_id: Mapped[str | None] = mapped_column(String(40), index=True)
    settlement_id: Mapped[str | None] = mapped_column(ForeignKey("settlements.id"), index=True)
    created_at: Mapped[datetime] = _ts(default=utcnow, index=True)


class Settlement(Base):
    __tablename__ = "settlements"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    period_start: Mapped[datetime | None] = _ts(nullable=True)
    period_end: Mapped[datetime] = _ts(default=utcnow)
    usage_count: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Money)  # Σ usage.amount
    creator_amount: Mapped[int] = mapped_column(Money)  # Σ usage.creator_share: what the creator is paid
    platform_amount: Mapped[int] = mapped_column(Money)
    wei_amount: Mapped[str] = mapped_column(String(80))  # uint256 as decimal text
    usage_digest: Mapped[str] = mapped_column(String(66))
    payout_wallet: Mapped[str] = mapped_column(String(42))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = _ts(default=utcnow)
    confirmed_at: Mapped[datetime | None] = _ts(nullable=True)
    # migration 0004: the block that paid it, the chain settlement (outbox intent) paying it — a cycle pays
    # many creators in one — and the part of creator_amount the ledger moved creator → payout.
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    chain_settlement_id: Mapped[str | None] = mapped_column(String(40), index=True)
    ledger_amount: Mapped[int] = mapped_column(Money, default=0)


class IdempotencyRecord(Base):
    """Stripe-style: (account, route, key) → the request's hash and the stored response."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("account_ref", "route", "key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    account_ref: Mapped[str] = mapped_column(String(64))  # account id, or a hash of the anonymous caller
    route: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)  # None while the first request is in flight
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    content_type: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _ts(default=utcnow)


class OutboxItem(Base):
    """One chain intent (register/revoke/settle) and everything needed to finish it after a crash; written in
    the same transaction as the state change, sent after by `bentos.chain.outbox`."""

    __tablename__ = "chain_outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    intent_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    signer: Mapped[str | None] = mapped_column(String(42))
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66), index=True)
    raw_tx: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"OutboxItem(id={self.id}, key={self.intent_key!r}, status={self.status}, tx={self.tx_hash})"


class LedgerTransaction(Base):
    """One balanced money movement (bentos/billing/ledger.py); `reference` makes posting it idempotent."""

    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    reference: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(24), index=True)
    account_id: Mapped[str | None] = mapped_column(String(40), index=True)
    memo: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = _ts(default=utcnow, index=True)


class LedgerEntry(Base):
    """Append-only; the entries of one transaction sum to zero."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    book: Mapped[str] = mapped_column(String(80), index=True)
    amount: Mapped[int] = mapped_column(Money)


class LedgerBalance(Base):
    """The cached balance of a book: Σ its entries, updated in the same transaction as they are written."""

    __tablename__ = "ledger_balances"

    book: Mapped[str] = mapped_column(String(80), primary_key=True)
    balance: Mapped[int] = mapped_column(Money, default=0)


class Hold(Base):
    """Money reserved before a provider call; captured once on success or released on failure."""

    __tablename__ = "holds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(40), index=True)
    purpose: Mapped[str] = mapped_column(String(12))  # speech | clone
    subject: Mapped[str] = mapped_column(String(100), index=True)  # request id, or persona id for a clone
    amount: Mapped[int] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(10), default="held", index=True)  # held | captured | released
    created_at: Mapped[datetime] = _ts(default=utcnow)
    closed_at: Mapped[datetime | None] = _ts(nullable=True)


# --- persona character and conversations (migration 0005) ---------------------------------------------------


class PersonaCharacter(Base):
    """One version of a persona's character (each creator edit appends one); the latest version is current."""

    __tablename__ = "persona_characters"
    __table_args__ = (UniqueConstraint("persona_id", "version"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    persona_id: Mapped[str] = mapped_column(ForeignKey("personas.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    persona_prompt: Mapped[str] = mapped_column(Text, default="")
    greeting: Mapped[str | None] = mapped_column(Text)
    emotion: Mapped[str | None] = mapped_column(String(16))  # a provider voice_label emotion
    style: Mapped[str | None] = mapped_column(String(16))  # a provider voice_label style
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = _ts(default=utcnow)


class Conversation(Base):
    """A caller's conversation with one persona (`source`: chat = POST /voices/{id}/chat, openai = one
    POST /v1/chat/completions call, whose history the client keeps)."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    caller_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    persona_id: Mapped[str] = mapped_column(ForeignKey("personas.id"), index=True)
    source: Mapped[str] = mapped_column(String(12), default="chat")
    created_at: Mapped[datetime] = _ts(default=utcnow)
    updated_at: Mapped[datetime] = _ts(default=utcnow, index=True)


class ConversationTurn(Base):
    """One message of a conversation. An assistant turn carries what it cost: its chat tokens and their amount,
    the characters spoken and their amount (the TTS part is also a `usage` row under `request_id`)."""

    __tablename__ = "conversation_turns"
    __table_args__ = (UniqueConstraint("conversation_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(12))  # user | assistant
    content: Mapped[str] = mapped_column(Text)
    character_version: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    chat_amount: Mapped[int] = mapped_column(Money, default=0)
    tts_chars: Mapped[int] = mapped_column(Integer, default=0)
    tts_amount: Mapped[int] = mapped_column(Money, default=0)
    created_at: Mapped[datetime] = _ts(default=utcnow)
