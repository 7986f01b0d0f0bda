"""Request bodies (validated) and response views of the REST API (camelCase JSON, money in micro-CNY)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bentos.chain.outbox import OutboxItem
from bentos.store.models import Account, EmbeddingRow, Job, Persona, Settlement, StoredFile, UsageEvent


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SignUp(_Body):
    name: str
    email: str
    role: Literal["creator", "consumer"] = "consumer"
    payout_wallet: str | None = Field(default=None, alias="payoutWallet")


class Consent(_Body):
    attested: bool
    statement: str = ""


class CreateVoice(_Body):
    file_id: str = Field(alias="fileId")
    name: str
    consent: Consent
    description: str = ""
    persona_prompt: str = Field(default="", alias="personaPrompt")
    tags: list[str] = Field(default_factory=list)
    language: str = "en"
    visibility: str = "private"
    price_per_10k_chars: int | None = Field(default=None, alias="pricePer10kChars")
    model: str = "step-tts-2"
    text: str | None = None
    sample_text: str | None = Field(default=None, alias="sampleText")


class Speak(_Body):
    voice: str
    text: str
    model: str | None = None
    format: Literal["wav", "mp3", "flac", "opus", "pcm"] = "mp3"
    speed: float | None = Field(default=None, ge=0.5, le=2.0)
    volume: float | None = Field(default=None, ge=0.1, le=2.0)
    sample_rate: int | None = Field(default=None, alias="sampleRate")
    voice_label: dict[str, str] | None = Field(default=None, alias="voiceLabel")
    instruction: str | None = Field(default=None, max_length=200)


class OpenAISpeech(BaseModel):
    """OpenAI's /v1/audio/speech body; unknown OpenAI fields are ignored, as OpenAI SDKs may send more."""

    model: str = "tts-1"
    input: str
    voice: str
    response_format: str = "mp3"
    speed: float | None = None
    instructions: str | None = None


class EmbedRequest(_Body):
    file_id: str = Field(alias="fileId")


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
