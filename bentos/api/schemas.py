"""Request bodies (validated) and response views of the REST API (camelCase JSON, money in micro-CNY)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bentos.chain.outbox import OutboxItem
from bentos.store.models import Account, EmbeddingRow, Job, Persona, Settlement, StoredFile, UsageEvent


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# Every string a client sends is bounded in the schema (and so in OpenAPI); the domain checks the finer rules.
MAX_NAME = 120
MAX_TEXT_CHARS = 10_000  # hard cap for any text field; the configured per-call TTS limit is lower
MAX_TRANSCRIPT = 1_000  # what 5–10 s of speech can say, with room to spare
MAX_DESCRIPTION = 2_000
MAX_PROMPT = 4_000
MAX_STATEMENT = 1_000
MAX_TAGS = 10
Tag = Annotated[str, StringConstraints(max_length=30)]
ShortId = Annotated[str, StringConstraints(max_length=64)]


class SignUp(_Body):
    name: str = Field(max_length=MAX_NAME)
    email: str = Field(max_length=254)
    role: Literal["creator", "consumer"] = "consumer"
    payout_wallet: str | None = Field(default=None, alias="payoutWallet", max_length=42)


class Consent(_Body):
    attested: bool
    statement: str = Field(default="", max_length=MAX_STATEMENT)


class CreateVoice(_Body):
    file_id: ShortId = Field(alias="fileId")
    name: str = Field(max_length=80)
    consent: Consent
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    persona_prompt: str = Field(default="", alias="personaPrompt", max_length=MAX_PROMPT)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    language: str = Field(default="en", max_length=8)
    visibility: str = Field(default="private", max_length=10)
    price_per_10k_chars: int | None = Field(default=None, alias="pricePer10kChars")
    model: str = Field(default="step-tts-2", max_length=40)
    text: str | None = Field(default=None, max_length=MAX_TRANSCRIPT, description="transcript of the upload")
    sample_text: str | None = Field(default=None, alias="sampleText", max_length=50)


class Speak(_Body):
    voice: ShortId
    text: str = Field(max_length=MAX_TEXT_CHARS)
    model: str | None = Field(default=None, max_length=40)
    format: Literal["wav", "mp3", "flac", "opus", "pcm"] = "mp3"
    speed: float | None = Field(default=None, ge=0.5, le=2.0)
    volume: float | None = Field(default=None, ge=0.1, le=2.0)
    sample_rate: int | None = Field(default=None, alias="sampleRate")
    voice_label: dict[Tag, Tag] | None = Field(default=None, alias="voiceLabel", max_length=3)
    instruction: str | None = Field(default=None, max_length=200)


class OpenAISpeech(BaseModel):
    """OpenAI's /v1/audio/speech body; unknown OpenAI fields are ignored, as OpenAI SDKs may send more."""

    model: str = Field(default="tts-1", max_length=64)
    input: str = Field(max_length=MAX_TEXT_CHARS)
    voice: ShortId
    response_format: str = Field(default="mp3", max_length=10)
    speed: float | None = None
    instructions: str | None = Field(default=None, max_length=MAX_PROMPT)


class EmbedRequest(_Body):
    file_id: ShortId = Field(alias="fileId")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def account_view(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "email": account.email,
        "role": account.role,
        "payoutWallet": account.payout_wallet,
        "createdAt": iso(account.created_at),
    }


def file_view(upload: StoredFile, impersonation: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "fileId": upload.id,
        "stepFileId": upload.step_file_id,
        "duration": round(upload.duration, 3),
        "sampleRate": upload.sample_rate,
        "channels": upload.channels,
        "format": upload.format,
        "hints": upload.hints,
        "sha256": upload.sha256,
        "impersonation": impersonation,
    }


def chain_view(item: OutboxItem | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {
        "status": item.status,
        "txHash": item.tx_hash,
        "blockNumber": item.block_number,
        "error": item.error_code,
    }


def persona_view(
    p: Persona, creator: Account | None, emb: EmbeddingRow | None, chain: OutboxItem | None, *, full: bool
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "tags": p.tags,
        "language": p.language,
        "visibility": p.visibility,
        "status": p.state,
        "model": p.model,
        "pricePer10kChars": p.price_per_10k_chars,
        "calls": p.calls,
        "creator": {"id": p.creator_id, "name": creator.name if creator else None},
        "sampleText": p.sample_text,
        "sampleAudioUrl": f"/voices/{p.id}/sample" if p.sample_blob_key else None,
        "createdAt": iso(p.created_at),
        "revokedAt": iso(p.revoked_at),
    }
    if full:
        view["personaPrompt"] = p.persona_prompt
        view["notices"] = list(p.notices or [])
        view["failure"] = (
            {
                "step": p.failure_step,
                "code": p.failure_code,
                "message": p.failure_message,
                "retryable": bool(p.failure_retryable),
            }
            if p.failure_code
            else None
        )
        view["embedding"] = (
            {
                "encoder": emb.encoder,
                "version": emb.version,
                "pretrained": emb.pretrained,
                "dim": emb.dim,
                "hash": emb.hash,
            }
            if emb
            else None
        )
        view["chain"] = chain_view(chain)
        view["stepVoiceId"] = p.step_voice_id
        view["cloneDuplicated"] = p.clone_duplicated
        view["impersonation"] = (
            {"personaId": p.impersonation_of, "cosine": p.impersonation_cosine}
            if p.impersonation_of
            else None
        )
    return view


def job_view(job: Job, persona: Persona | None) -> dict[str, Any]:
    failure = None
    if persona is not None and persona.failure_code:
        failure = {
            "step": persona.failure_step,
            "code": persona.failure_code,
            "message": persona.failure_message,
            "retryable": bool(persona.failure_retryable),
        }
    return {
        "id": job.id,
        "personaId": job.persona_id,
        "status": job.status,
        "state": persona.state if persona else None,
        "attempts": job.attempts,
        "failure": failure,
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
    }


def usage_view(u: UsageEvent) -> dict[str, Any]:
    return {
        "requestId": u.request_id,
        "personaId": u.persona_id,
        "chars": u.chars,
        "audioSeconds": round(u.audio_ms / 1000, 3),
        "model": u.model,
        "unitPrice": u.unit_price,
        "amount": u.amount,
        "settlementId": u.settlement_id,
        "createdAt": iso(u.created_at),
    }


def settlement_view(s: Settlement, chain: OutboxItem | None) -> dict[str, Any]:
    status = s.status
    if chain is not None:
        status = {"pending": "pending", "sent": "sent", "confirmed": "confirmed", "failed": "failed"}[
            chain.status
        ]
    return {
        "settlementId": s.id,
        "creatorId": s.creator_id,
        "amount": s.amount,
        "creatorAmount": s.creator_amount,
        "platformAmount": s.platform_amount,
        "usageCount": s.usage_count,
        "usageDigest": s.usage_digest,
        "weiAmount": s.wei_amount,
        "payoutWallet": s.payout_wallet,
        "status": status,
        "txHash": chain.tx_hash if chain else s.tx_hash,
        "periodStart": iso(s.period_start),
        "periodEnd": iso(s.period_end),
        "createdAt": iso(s.created_at),
    }
