"""Verified consent: a random sentence for an upload, and the recording of it that proves the same speaker."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from bentos.api.deps import CallerDep, PlatformDep
from bentos.api.routes_voices import UPLOAD_BODY, _read_upload
from bentos.api.views import error_responses
from bentos.api.views_notify import ChallengeView, VerificationView
from bentos.core.consent import open_challenge, verify_recording
from bentos.core.personas import LANGUAGES

router = APIRouter(tags=["consent"])


class NewChallenge(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    file_id: str = Field(alias="fileId", max_length=64)
    language: str = Field(
        default="en", max_length=8, description="of the sentence", json_schema_extra={"enum": list(LANGUAGES)}
    )


@router.post("/consent-challenges", status_code=201, responses=error_responses(400, 401, 404, 422))
def create_challenge(body: NewChallenge, platform: PlatformDep, account: CallerDep) -> ChallengeView:
    """A random sentence for one of your uploads, to read aloud within `expiresAt` (public and unlisted
    personas need it verified)."""
    challenge = open_challenge(platform.sessions, platform.consent, account, body.file_id, body.language)
    return ChallengeView.of(challenge)


@router.post(
    "/consent-challenges/{challenge_id}/recording",
    responses=error_responses(400, 401, 404, 409, 410, 413, 415, 422),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def record_challenge(
    challenge_id: str, request: Request, platform: PlatformDep, account: CallerDep
) -> VerificationView:
    """Your recording of the sentence (multipart `file`, 2–15 s, WAV or MP3): verified when its speaker is the
    upload's (encoder cosine ≥ the calibrated threshold). What is said is not checked: no offline speech
    recogniser."""
    data, _ = await _read_upload(request, platform.server.max_upload_bytes)
    threshold = platform.cfg.encoder.get(
        "consent_threshold", platform.cfg.encoder.get("impersonation_threshold")
    )

    def run() -> VerificationView:
        verification = verify_recording(
            platform.sessions,
            platform.blobs,
            platform.audio,
            platform.embedder,
            platform.consent,
            threshold,
            account,
            challenge_id,
            data,
        )
        return VerificationView.of(verification)

    return await run_in_threadpool(run)
