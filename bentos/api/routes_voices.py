"""Uploads, personas (create, read, discover, revoke), their samples, provenance, and pipeline jobs."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bentos.api.deps import (
    OPTIONAL_AUTH,
    CallerDep,
    OptionalCallerDep,
    PlatformDep,
    body_hash,
    idempotent,
)
from bentos.api.schemas import CreateVoice
from bentos.api.views import (
    CharacterView,
    FileView,
    JobView,
    PersonaPageView,
    PersonaView,
    ProvenanceView,
    VoiceRevoked,
    VoiceStarted,
    error_responses,
)
from bentos.core.catalog import (
    DiscoveryQuery,
    discover,
    job_progress,
    persona_sample,
    persona_view,
    provenance,
)
from bentos.core.chat import character_of
from bentos.core.errors import ErrorCode, PlatformError
from bentos.core.intake import accept_upload
from bentos.core.personas import DiscoverySort, PersonaState, revoke, start_persona

router = APIRouter(tags=["voices"])
WAV = {"content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}}
UPLOAD_BODY = {
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


async def _read_upload(request: Request, limit: int) -> tuple[bytes, str]:
    """The one multipart field `file` → its bytes (at most `limit`) and its client file name."""
    async with request.form() as form:
        files = form.getlist("file")
        if len(files) > 1:
            raise PlatformError(
                ErrorCode.AMBIGUOUS_UPLOAD, "send one multipart field `file`, not several", 400
            )
        upload = files[0] if files else None
        if upload is None or isinstance(upload, str):
            raise PlatformError(
                ErrorCode.INVALID_REQUEST, "file: a multipart file field `file` is required", 422
            )
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PlatformError(ErrorCode.FILE_TOO_LARGE, f"the file is larger than {limit} bytes", 413)
        return data, upload.filename or ""


@router.post(
    "/files",
    status_code=201,
    response_model=FileView,
    responses={
        200: {"model": FileView, "description": "you had uploaded these exact bytes before"},
        **error_responses(400, 401, 409, 413, 415, 422),
    },
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload_file(request: Request, platform: PlatformDep, account: CallerDep) -> Response:
    """Upload 5–10 s of speech (WAV or MP3, decided from the content) as the multipart field `file`.

    The API key is checked before the body is read. Rejected files leave nothing stored.
    """
    data, name = await _read_upload(request, platform.server.max_upload_bytes)
    threshold = platform.cfg.encoder.get("impersonation_threshold")

    def produce() -> tuple[int, FileView]:
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
        return (201 if accepted.created else 200), FileView.of(accepted.uploaded)

    def run() -> Response:  # blocking: hashing, decoding, the encoder, the database
        return idempotent(request, account.id, "POST /files", hashlib.sha256(data).hexdigest(), produce)

    return await run_in_threadpool(run)


@router.post(
    "/voices",
    status_code=202,
    response_model=VoiceStarted,
    responses=error_responses(400, 401, 402, 403, 404, 409, 410, 413, 422),
)
def create_voice(body: CreateVoice, request: Request, platform: PlatformDep, account: CallerDep) -> Response:
    """Create a persona from an uploaded file; the pipeline runs in the background (poll GET /voices/{id})."""

    def produce() -> tuple[int, VoiceStarted]:
        started = start_persona(
            platform.sessions,
            platform.prices,
            platform.jobs.enqueue,
            account,
            replace(body.draft(), verified_consent_required=platform.consent.require_verified),
            platform.moderation,
        )
        return 202, VoiceStarted.of(started)

    return idempotent(request, account.id, "POST /voices", body_hash(body), produce)


@router.get(
    "/voices",
    response_model_exclude_unset=True,
    responses=error_responses(401, 422),
    openapi_extra=OPTIONAL_AUTH,
)
def list_voices(
    platform: PlatformDep,
    account: OptionalCallerDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[str | None, Query(max_length=30)] = None,
    language: Annotated[str | None, Query(max_length=8)] = None,
    sort: DiscoverySort = DiscoverySort.POPULAR,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PersonaPageView:
    """Discover: public live personas (and your own), by text, tag, language; most called first."""
    query = DiscoveryQuery(q, tag, language, sort, limit, offset)
    return PersonaPageView.of(discover(platform.sessions, account, query))


@router.get(
    "/voices/{voice_id}",
    response_model_exclude_unset=True,
    responses=error_responses(401, 404),
    openapi_extra=OPTIONAL_AUTH,
)
def get_voice(voice_id: str, platform: PlatformDep, account: OptionalCallerDep) -> PersonaView:
    """A persona: its creator also sees the prompt, pipeline failure, embedding, chain intent and provider voice."""
    view = PersonaView.of(persona_view(platform.sessions, voice_id, account))
    character, with_prompt = character_of(platform.sessions, voice_id, account)
    return view.model_copy(update={"character": CharacterView.of_character(character, with_prompt)})


@router.get(
    "/voices/{voice_id}/sample",
    response_class=Response,
    responses={200: WAV, **error_responses(401, 404, 410)},
    openapi_extra=OPTIONAL_AUTH,
)
def voice_sample(voice_id: str, platform: PlatformDep, account: OptionalCallerDep) -> Response:
    audio = persona_sample(platform.sessions, platform.blobs, voice_id, account)
    return Response(audio, media_type="audio/wav")


@router.get(
    "/voices/{voice_id}/provenance",
    response_model_exclude_unset=True,
    responses=error_responses(401, 404, 503),
    openapi_extra=OPTIONAL_AUTH,
)
def get_provenance(voice_id: str, platform: PlatformDep, account: OptionalCallerDep) -> ProvenanceView:
    """Read the chain and recompute: is this persona's embedding what was registered, and is it revoked?"""
    return ProvenanceView.of(provenance(platform.sessions, lambda: platform.chain, voice_id, account))


@router.delete("/voices/{voice_id}", responses=error_responses(401, 403, 404))
def revoke_voice(voice_id: str, platform: PlatformDep, account: CallerDep) -> VoiceRevoked:
    """Creator revokes: TTS stops at once, sample + upload + vector are deleted, the chain revoke is queued."""
    revoke(platform.sessions, platform.blobs, voice_id, account)
    return VoiceRevoked(id=voice_id, status=PersonaState.REVOKED)


@router.get("/jobs/{job_id}", responses=error_responses(401, 403, 404))
def get_job(job_id: str, platform: PlatformDep, account: CallerDep) -> JobView:
    return JobView.of(job_progress(platform.sessions, job_id, account))
