"""Uploads, personas (create, read, discover, revoke), their samples, provenance, and pipeline jobs."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bentos.api.deps import body_hash, caller, idempotent, optional_caller, platform_of
from bentos.api.schemas import CreateVoice, file_view, job_view, persona_view
from bentos.chain.outbox import Outbox
from bentos.core.errors import PlatformError, not_found
from bentos.core.intake import accept_upload
from bentos.core.personas import (
    PersonaDraft,
    create_persona,
    discover,
    revoke,
    visible_persona,
)
from bentos.core.platform import Platform
from bentos.store.models import Account, EmbeddingRow, Job, Persona
from encoders.base import embedding_hash

router = APIRouter(tags=["voices"])
review_log = logging.getLogger("bentos.review")  # impersonation hits, for human review


async def _read_upload(request: Request, limit: int) -> tuple[bytes, str]:
    """The one multipart field `file` → its bytes (at most `limit`) and its client file name."""
    async with request.form() as form:
        files = form.getlist("file")
        if len(files) > 1:
            raise PlatformError("ambiguous_upload", "send one multipart field `file`, not several", 400)
        upload = files[0] if files else None
        if upload is None or isinstance(upload, str):
            raise PlatformError("invalid_request", "file: a multipart file field `file` is required", 422)
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PlatformError("file_too_large", f"the file is larger than {limit} bytes", 413)
        return data, upload.filename or ""


@router.post(
    "/files",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_file(request: Request) -> Response:
    """Upload 5–10 s of speech (WAV or MP3, decided from the content) as the multipart field `file`.

    The API key is checked before the body is read. Rejected files leave nothing stored.
    """
    platform = platform_of(request)
    account = await run_in_threadpool(caller, request)
    data, name = await _read_upload(request, platform.server.max_upload_bytes)

    def produce() -> tuple[int, Any]:
        threshold = platform.cfg.encoder.get("impersonation_threshold")
        accepted = accept_upload(
            platform.sessions,
            platform.blobs,
            platform.embedder,
            platform.audio,
            account,
            data,
            name,
            threshold,
        )
        hit = accepted.impersonation
        impersonation = {"personaId": hit.persona_id, "name": hit.name, "cosine": hit.cosine} if hit else None
        return (201 if accepted.created else 200), file_view(accepted.file, impersonation)

    def run() -> Response:  # blocking: hashing, decoding, the encoder, the database
        return idempotent(request, account.id, "POST /files", hashlib.sha256(data).hexdigest(), produce)

    return await run_in_threadpool(run)


@router.post("/voices", status_code=202)
def create_voice(body: CreateVoice, request: Request) -> Response:
    """Create a persona from an uploaded file; the pipeline runs in the background (poll GET /voices/{id})."""
    platform, account = platform_of(request), caller(request)

    def produce() -> tuple[int, Any]:
        draft = PersonaDraft(
            file_id=body.file_id,
            name=body.name,
            consent_attested=body.consent.attested,
            consent_statement=body.consent.statement,
            visibility=body.visibility,
            description=body.description,
            persona_prompt=body.persona_prompt,
            tags=body.tags,
            language=body.language,
            model=body.model,
            price_per_10k_chars=body.price_per_10k_chars,
            transcript=body.text,
            sample_text=body.sample_text,
        )
        if draft.model not in platform.prices.list_price_per_10k:
            raise PlatformError(
                "invalid_persona", f"model must be one of {sorted(platform.prices.list_price_per_10k)}", 422
            )
        with platform.sessions.begin() as session:
            persona, job = create_persona(session, account, draft, platform.prices.list_price(draft.model))
            result = {"voiceId": persona.id, "status": persona.state, "jobId": job.id}
        platform.jobs.enqueue(result["voiceId"])
        return 202, result

    return idempotent(request, account.id, "POST /voices", body_hash(body.model_dump()), produce)


def _detail(platform: Platform, persona: Persona, full: bool) -> dict[str, Any]:
    with platform.sessions() as session:
        creator = session.get(Account, persona.creator_id)
        emb = (
            session.scalar(select(EmbeddingRow).where(EmbeddingRow.persona_id == persona.id))
            if full
            else None
        )
        chain = Outbox.get(session, f"register:{persona.id}") if full else None
        return persona_view(persona, creator, emb, chain, full=full)


@router.get("/voices")
def list_voices(
    request: Request,
    q: str | None = Query(default=None, max_length=200),
    tag: str | None = Query(default=None, max_length=30),
    language: str | None = Query(default=None, max_length=8),
    sort: str = "popular",
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """Discover: public live personas (and your own), by text, tag, language; most called first."""
    platform, account = platform_of(request), optional_caller(request)
    if sort not in ("popular", "new") or not 1 <= limit <= 100 or offset < 0:
        raise PlatformError("invalid_request", "sort is popular|new, limit 1–100, offset ≥ 0", 422)
    with platform.sessions() as session:
        rows, total = discover(session, account, q, tag, language, sort, limit, offset)
    return {"data": [_detail(platform, p, full=False) for p in rows], "total": total}


@router.get("/voices/{voice_id}")
def get_voice(voice_id: str, request: Request) -> dict[str, Any]:
    platform, account = platform_of(request), optional_caller(request)
    with platform.sessions() as session:
        persona = visible_persona(session, voice_id, account)
    return _detail(platform, persona, full=account is not None and account.id == persona.creator_id)


@router.get("/voices/{voice_id}/sample")
def voice_sample(voice_id: str, request: Request) -> Response:
    platform, account = platform_of(request), optional_caller(request)
    with platform.sessions() as session:
        persona = visible_persona(session, voice_id, account)
    if persona.revoked_at is not None or not persona.sample_blob_key:
        raise not_found(f"a sample of voice {voice_id}")
    return Response(platform.blobs.get(persona.sample_blob_key), media_type="audio/wav")


@router.get("/voices/{voice_id}/provenance")
def provenance(voice_id: str, request: Request) -> dict[str, Any]:
    """Read the chain and recompute: is this persona's embedding what was registered, and is it revoked?"""
    platform, account = platform_of(request), optional_caller(request)
    with platform.sessions() as session:
        persona = visible_persona(session, voice_id, account)
        emb = session.scalar(select(EmbeddingRow).where(EmbeddingRow.persona_id == persona.id))
        intent = Outbox.get(session, f"register:{persona.id}")
    if emb is None:
        return {"status": "pending", "embeddingHash": None, "chain": None}
    # Recompute the hash from the stored vector, so a tampered row shows up as a mismatch.
    current = embedding_hash(np.frombuffer(emb.vector, "<f4")) if emb.vector else emb.hash
    result = platform.chain.verify(persona.id, current)
    status: str = result.status
    if status == "unregistered" and intent is not None and intent.status in ("pending", "sent"):
        status = "pending"
    return {
        "status": status,
        "embeddingHash": current,
        "encoder": emb.encoder,
        "encoderVersion": emb.version,
        "chain": {
            "contract": result.contract,
            "onchainHash": result.onchain_hash,
            "creator": result.creator,
            "registeredAt": result.registered_at,
            "revokedAt": result.revoked_at,
            "txHash": intent.tx_hash if intent else None,
        },
    }


@router.delete("/voices/{voice_id}")
def revoke_voice(voice_id: str, request: Request) -> dict[str, Any]:
    """Creator revokes: TTS stops at once, sample + upload + vector are deleted, the chain revoke is queued."""
    platform, account = platform_of(request), caller(request)
    revoke(platform.sessions, platform.blobs, voice_id, account)
    return {"id": voice_id, "status": "revoked"}


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    platform, account = platform_of(request), caller(request)
    with platform.sessions() as session:
        job = session.get(Job, job_id)
        persona = session.get(Persona, job.persona_id) if job else None
        if job is None or persona is None or persona.creator_id != account.id:
            raise not_found(f"job {job_id}")
        return job_view(job, persona)
