"""A creator manages personas (edit with versions, retry a failed pipeline, preview an upload before paying) and
anyone signed in reports one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bentos.api.deps import CallerDep, PlatformDep, idempotent
from bentos.api.schemas_trust import EditVoice, PreviewUpload, ReportVoice
from bentos.api.views import CharacterView, PersonaPageView, PersonaView, VoiceStarted, error_responses
from bentos.api.views_trust import ReportView, VersionPage, VersionView
from bentos.core.catalog import persona_view
from bentos.core.chat import character_of
from bentos.core.idempotency import payload_hash
from bentos.core.persona_edits import edit_persona, my_personas, preview_upload, retry, versions
from bentos.core.reports import file_report

router = APIRouter(tags=["voices"])
WAV = {"content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}}


@router.patch("/voices/{voice_id}", responses=error_responses(400, 401, 403, 404, 410, 422))
def edit_voice(voice_id: str, body: EditVoice, platform: PlatformDep, account: CallerDep) -> PersonaView:
    """The creator edits name, description, prompt, tags, language, visibility or price multiplier. Each edit that
    changes something is a version (GET /voices/{id}/versions) with the metadata hash it gives; blocked words:
    400 `content_blocked`."""
    edit_persona(
        platform.sessions,
        platform.prices,
        account,
        voice_id,
        body.edit(),
        platform.moderation,
        platform.consent.require_verified,
    )
    view = PersonaView.of(persona_view(platform.sessions, voice_id, account))
    character, with_prompt = character_of(platform.sessions, voice_id, account)
    return view.model_copy(update={"character": CharacterView.of_character(character, with_prompt)})


@router.get("/accounts/me/voices", response_model_exclude_unset=True, responses=error_responses(401))
def own_voices(platform: PlatformDep, account: CallerDep) -> PersonaPageView:
    """Your personas in every state (in review, failed, revoked too), newest first, as their creator sees them."""
    mine = [PersonaView.of(p) for p in my_personas(platform.sessions, account)]
    return PersonaPageView(data=mine, total=len(mine))


@router.get("/voices/{voice_id}/versions", responses=error_responses(401, 403, 404))
def voice_versions(voice_id: str, platform: PlatformDep, account: CallerDep) -> VersionPage:
    """The creator's edits of a persona, newest first."""
    return VersionPage(items=[VersionView.of(v) for v in versions(platform.sessions, account, voice_id)])


@router.post(
    "/voices/{voice_id}/retry",
    status_code=202,
    response_model=VoiceStarted,
    responses=error_responses(400, 401, 402, 403, 404, 409, 410),
)
def retry_voice(voice_id: str, request: Request, platform: PlatformDep, account: CallerDep) -> Response:
    """Resume a failed persona's pipeline from the step that failed (poll GET /jobs/{jobId}). Idempotent with an
    `Idempotency-Key`; a persona that is not failed: 409 `persona_not_failed`."""

    def produce() -> tuple[int, VoiceStarted]:
        started = retry(platform.sessions, platform.prices, platform.jobs.enqueue, account, voice_id)
        return 202, VoiceStarted.of(started)

    return idempotent(
        request, account.id, "POST /voices/{id}/retry", payload_hash({"voice": voice_id}), produce
    )


@router.post(
    "/files/{file_id}/preview",
    response_class=Response,
    responses={200: WAV, **error_responses(400, 401, 404, 409, 410, 422, 451, 502)},
)
async def preview_file(
    file_id: str, body: PreviewUpload, platform: PlatformDep, account: CallerDep
) -> Response:
    """Hear one of your uploads cloned (WAV) before you create the persona and pay the clone fee: the provider's
    voice preview, which creates no clone and is not billed."""
    threshold = platform.cfg.encoder.get("impersonation_threshold")
    audio = await run_in_threadpool(
        preview_upload,
        platform.sessions,
        platform.pipeline,
        platform.embedder,
        platform.audio,
        account,
        body.request(file_id),
        threshold,
        platform.moderation,
    )
    return Response(audio, media_type="audio/wav")


@router.post(
    "/voices/{voice_id}/reports",
    status_code=201,
    response_model=ReportView,
    responses={
        200: {"model": ReportView, "description": "you had reported it already"},
        **error_responses(400, 401, 403, 404, 422),
    },
)
def report_voice(voice_id: str, body: ReportVoice, platform: PlatformDep, account: CallerDep) -> Response:
    """Report a persona to the admins (impersonation, offensive, scam, other)."""
    report, created = file_report(platform.sessions, account, voice_id, body.reason, body.details)
    view = ReportView.of(report)
    return JSONResponse(view.model_dump(mode="json", by_alias=True), 201 if created else 200)
