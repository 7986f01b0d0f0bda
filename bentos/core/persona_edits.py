"""A creator manages their personas: edit (each change a version; the metadata hash follows), retry a failed
pipeline from the step that failed, and hear an upload cloned before paying for the clone (the provider's preview)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import holds
from bentos.billing.pricing import PriceBook
from bentos.chain.outbox import Outbox
from bentos.core import consent, funds, moderation
from bentos.core.accounts import Caller
from bentos.core.catalog import PersonaCard, persona_view
from bentos.core.chat import current_character
from bentos.core.embedder import Embedder
from bentos.core.errors import ErrorCode, PlatformError, forbidden, from_provider_error
from bentos.core.ids import new_id
from bentos.core.intake import impersonation_check, owned_upload_clip
from bentos.core.personas import (
    _TAG,
    CLONE_MODELS,
    DESCRIPTION_MAX_CHARS,
    LANGUAGES,
    MAX_TAGS,
    NAME_MAX_CHARS,
    PROMPT_MAX_CHARS,
    SAMPLE_TEXT_MAX_CHARS,
    TAG_MAX_CHARS,
    VISIBILITIES,
    JobStatus,
    PersonaState,
    StartedPersona,
    Visibility,
    hold_clone_fee,
    owned_persona,
)
from bentos.core.pipeline import DEFAULT_SAMPLE_TEXT, ZH_SAMPLE_TEXT, Deferred, PersonaPipeline, StepFailed
from bentos.core.pipeline import metadata_hash as persona_metadata_hash
from bentos.core.review import REJECTED_CODE
from bentos.core.speakable import unspeakable
from bentos.stepfun.errors import StepFunError
from bentos.store.models import Job, OutboxItem, Persona, PersonaCharacter, StoredFile
from bentos.store.trust_models import PersonaVersion
from encoders import AudioSettings

EDITABLE = ("name", "description", "persona_prompt", "tags", "language", "visibility", "price_multiplier_bps")
# The fields the chain's metadata hash covers (pipeline.metadata_hash): editing one changes the hash.
HASHED = ("name",)
PRE_CLONE_STATES = (
    PersonaState.UPLOADED,
    PersonaState.VALIDATED,
    PersonaState.EMBEDDED,
    PersonaState.REGISTERED,
)


@dataclass
class PersonaEdit:
    """PATCH /voices/{id}: the fields to change (None: unchanged)."""

    name: str | None = None
    description: str | None = None
    persona_prompt: str | None = None
    tags: list[str] | None = None
    language: str | None = None
    visibility: str | None = None
    price_multiplier_bps: int | None = None

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in EDITABLE if getattr(self, k) is not None}


@dataclass(frozen=True)
class Version:
    version: int
    changed: list[str]
    fields: dict[str, Any]
    metadata_hash: str
    created_at: datetime | None
    editor_id: str = field(default="")


def _check(edit: PersonaEdit) -> None:
    problems = []
    if edit.name is not None and not 1 <= len(edit.name.strip()) <= NAME_MAX_CHARS:
        problems.append(f"name must be 1–{NAME_MAX_CHARS} characters")
    if edit.description is not None and len(edit.description) > DESCRIPTION_MAX_CHARS:
        problems.append(f"description must be at most {DESCRIPTION_MAX_CHARS} characters")
    if edit.persona_prompt is not None and len(edit.persona_prompt) > PROMPT_MAX_CHARS:
        problems.append(f"personaPrompt must be at most {PROMPT_MAX_CHARS} characters")
    if edit.tags is not None and (len(edit.tags) > MAX_TAGS or any(not _TAG.fullmatch(t) for t in edit.tags)):
        problems.append(f"at most {MAX_TAGS} tags of 1–{TAG_MAX_CHARS} letters, digits, spaces or dashes")
    if edit.language is not None and edit.language not in LANGUAGES:
        problems.append(f"language must be one of {', '.join(LANGUAGES)}")
    if edit.visibility is not None and edit.visibility not in VISIBILITIES:
        problems.append(f"visibility must be one of {', '.join(VISIBILITIES)}")
    if problems:
        raise PlatformError(ErrorCode.INVALID_PERSONA, "; ".join(problems), 422)


def _snapshot(p: Persona) -> dict[str, Any]:
    return {
        "name": p.name,
        "description": p.description,
        "persona_prompt": p.persona_prompt,
        "tags": list(p.tags or []),
        "language": p.language,
        "visibility": p.visibility,
        "price_multiplier_bps": p.price_multiplier_bps,
    }


def edit_persona(
    sessions: sessionmaker[Session],
    prices: PriceBook,
    creator: Caller,
    persona_id: str,
    edit: PersonaEdit,
    blocklist: moderation.Moderation | None = None,
    verified_consent_required: bool = True,
) -> Version | None:
    """Apply the creator's edit as a new version (422 `invalid_persona` for an invalid one, 400 `content_blocked`
    for blocked words: nothing changes; an edit that changes nothing is no version). A new prompt or language is
    also a new character version (chat follows). → the new version, or None when nothing changed."""
    changes = edit.changes()
    _check(edit)
    texts = moderation.persona_texts(edit)
    moderation.screen(blocklist, {**texts, "tags": " ".join(edit.tags or [])})
    if edit.price_multiplier_bps is not None:
        try:
            prices.check_multiplier(edit.price_multiplier_bps)
        except ValueError as err:
            raise PlatformError(ErrorCode.INVALID_PERSONA, str(err), 422) from None
    with sessions.begin() as session:
        persona = owned_persona(session, persona_id, creator)
        session.refresh(persona, with_for_update=True)  # one edit at a time: versions are numbered in order
        if persona.revoked_at is not None:
            raise PlatformError(
                ErrorCode.VOICE_REVOKED, "this voice was revoked and can no longer be changed", 410
            )
        before = _snapshot(persona)
        if "name" in changes:
            changes["name"] = changes["name"].strip()
        if "tags" in changes:
            changes["tags"] = sorted({t.strip().lower() for t in changes["tags"]})
        changed = sorted(k for k, v in changes.items() if before[k] != v)
        if not changed:
            return None
        opening = changes.get("visibility") in (Visibility.PUBLIC, Visibility.UNLISTED)
        if "visibility" in changed and opening and verified_consent_required and persona.file_id:
            # As at creation: the marketplace needs a verified recording of the upload's speaker (403 without).
            challenge = consent.verified_challenge(session, creator.id, persona.file_id, None)
            persona.consent_challenge_id = challenge.id
            persona.consent_recording_sha256 = challenge.recording_sha256
        for key in changed:
            setattr(persona, key, changes[key])
        if "price_multiplier_bps" in changed:
            persona.price_per_10k_chars = prices.unit_price(persona.model, persona.price_multiplier_bps)
        if {"persona_prompt", "language"} & set(changed):
            _new_character(session, persona)
        upload = session.get(StoredFile, persona.file_id) if persona.file_id else None
        digest = persona_metadata_hash(persona, upload) if upload is not None else ""
        on_chain = _chain_metadata(session, persona.id)
        number = (session.scalar(select(func.max(PersonaVersion.version)).where(
            PersonaVersion.persona_id == persona.id)) or 0) + 1  # fmt: skip
        row = PersonaVersion(
            persona_id=persona.id,
            version=number,
            changed=changed,
            fields=_snapshot(persona),
            metadata_hash=digest,
            editor_id=creator.id,
        )
        session.add(row)
        session.flush()
        if on_chain is not None and digest and on_chain.lower() != digest.lower():
            # Registered with other metadata: the chain record follows this edit (sent after the register and
            # any earlier update, in nonce order). Not yet registered: the register intent will carry the edited metadata anyway.
            payload = {"persona_id": persona.id, "metadata_hash": digest}
            Outbox.enqueue(session, "metadata", payload, f"metadata:{persona.id}:{number}")
        return Version(number, changed, row.fields, digest, row.created_at, creator.id)


def _chain_metadata(session: Session, persona_id: str) -> str | None:
    """The metadata hash the chain holds (or will, once the outbox has sent it): the last update's, else the
    registration's; None while the persona is not registered."""
    latest = session.scalar(
        select(OutboxItem)
        .where(OutboxItem.kind == "metadata", OutboxItem.intent_key.startswith(f"metadata:{persona_id}:"))
        .order_by(OutboxItem.id.desc())
        .limit(1)
    ) or Outbox.get(session, f"register:{persona_id}")
    return str(latest.payload["metadata_hash"]) if latest is not None else None


def _new_character(session: Session, persona: Persona) -> None:
    now = current_character(session, persona)
    session.add(
        PersonaCharacter(
            persona_id=persona.id,
            version=now.version + 1,
            persona_prompt=persona.persona_prompt,
            greeting=now.greeting,
            emotion=now.emotion,
            style=now.style,
            language=persona.language,
        )
    )


def versions(sessions: sessionmaker[Session], creator: Caller, persona_id: str) -> list[Version]:
    """The persona's edits, newest first (its creator only)."""
    with sessions() as session:
        persona = owned_persona(session, persona_id, creator)
        rows = session.scalars(
            select(PersonaVersion)
            .where(PersonaVersion.persona_id == persona.id)
            .order_by(PersonaVersion.version.desc())
        )
        return [
            Version(r.version, list(r.changed), dict(r.fields), r.metadata_hash, r.created_at, r.editor_id)
            for r in rows
        ]


# --- retry ----------------------------------------------------------------------------------------------------


def retry(
    sessions: sessionmaker[Session],
    prices: PriceBook,
    enqueue: Callable[[str], object],
    creator: Caller,
    persona_id: str,
) -> StartedPersona:
    """Resume a failed pipeline from the step that failed, as a new job. Steps are idempotent as on the first run
    (one chain intent, one provider file and clone). A failure that released the clone fee holds it again before
    the clone step (402 when short: nothing changes)."""
    with funds.paying(prices), sessions.begin() as session:
        persona = owned_persona(session, persona_id, creator)
        session.refresh(persona, with_for_update=True)
        if persona.revoked_at is not None:
            raise PlatformError(
                ErrorCode.VOICE_REVOKED, "this voice was revoked and can no longer be used", 410
            )
        if persona.state != PersonaState.FAILED:
            raise PlatformError(
                ErrorCode.PERSONA_NOT_FAILED,
                f"only a failed persona can be retried (state: {persona.state})",
                409,
            )
        if persona.failure_code == REJECTED_CODE:
            raise forbidden("an admin rejected this persona in review; it can't be retried")
        step = PersonaState(persona.failure_step) if persona.failure_step else PersonaState.UPLOADED
        uncloned = step in PRE_CLONE_STATES and not persona.step_voice_id
        if uncloned and holds.open_hold(session, holds.Purpose.CLONE, persona.id) is None:
            hold_clone_fee(session, prices, creator, persona.id)
        persona.state = step
        persona.failure_step = persona.failure_code = persona.failure_message = None
        persona.failure_retryable = None
        job = Job(id=new_id("job"), persona_id=persona.id, status=JobStatus.QUEUED)
        session.add(job)
        started = StartedPersona(persona.id, step, job.id)
    enqueue(persona_id)  # after the commit: the worker must find the row in its step
    return started


# --- preview --------------------------------------------------------------------------------------------------

PROVIDER_FILE_WAIT_S = 15.0


@dataclass(frozen=True)
class PreviewRequest:
    file_id: str
    sample_text: str | None = None
    model: str = "step-tts-2"
    language: str = "en"


def preview_upload(
    sessions: sessionmaker[Session],
    pipeline: PersonaPipeline,
    embedder: Embedder,
    audio: AudioSettings,
    caller: Caller,
    request: PreviewRequest,
    impersonation_threshold: float | None,
    blocklist: moderation.Moderation | None = None,
) -> bytes:
    """Hear one of the caller's uploads cloned (WAV) before creating a persona: the provider's voice preview,
    which creates and bills no clone. A voice that sounds like another creator's live persona is not previewed
    (409 `impersonation_suspected`: create the persona, an admin reviews it)."""
    text = request.sample_text or (ZH_SAMPLE_TEXT if request.language == "zh" else DEFAULT_SAMPLE_TEXT)
    problems = []
    if request.model not in CLONE_MODELS:
        problems.append(f"model must be one of {', '.join(CLONE_MODELS)}")
    if len(text) > SAMPLE_TEXT_MAX_CHARS:
        problems.append(f"sampleText must be at most {SAMPLE_TEXT_MAX_CHARS} characters")
    elif unspeakable(text):
        problems.append(f"sampleText {unspeakable(text)}")
    if problems:
        raise PlatformError(ErrorCode.INVALID_REQUEST, "; ".join(problems), 422)
    moderation.screen(blocklist, {"sample text": text})
    clip = owned_upload_clip(sessions, pipeline.blobs, audio, caller, request.file_id)  # 404 if not theirs
    if impersonation_threshold is not None:
        hit = impersonation_check(sessions, embedder.embed(clip), caller.id, impersonation_threshold)
        if hit is not None:
            raise PlatformError(
                ErrorCode.IMPERSONATION_SUSPECTED,
                "this recording sounds like another creator's persona, so it can't be previewed; create the "
                "persona and an admin will review it",
                409,
            )
    try:
        step_file_id = _provider_file(pipeline, request.file_id)
        preview = pipeline.provider.preview_voice(
            step_file_id, text, model=request.model, response_format="wav"
        )
    except StepFunError as err:
        raise from_provider_error(err) from None
    if not preview.sample_audio:
        raise PlatformError(
            ErrorCode.PROVIDER_BAD_RESPONSE, "the voice provider returned no preview audio", 502
        )
    return preview.sample_audio


def _provider_file(pipeline: PersonaPipeline, file_id: str) -> str:
    deadline = time.monotonic() + PROVIDER_FILE_WAIT_S
    while True:
        try:
            return pipeline.provider_file_id(file_id)
        except StepFailed as failure:
            raise PlatformError(ErrorCode.BLOB_MISSING, failure.message, 410) from None
        except Deferred as deferred:  # another request is uploading this file to the provider right now
            if time.monotonic() > deadline:
                raise PlatformError(
                    ErrorCode.PROVIDER_UNAVAILABLE,
                    "the upload is still being sent to the provider",
                    503,
                    True,
                ) from None
            time.sleep(min(deferred.delay_s, 0.25))


MY_PERSONAS_LIMIT = 200


def my_personas(sessions: sessionmaker[Session], creator: Caller) -> list[PersonaCard]:
    """The caller's own personas in every state (live, waiting, in review, failed, revoked), newest first, each
    as its creator sees it (failure in plain words, chain intent, impersonation match)."""
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Persona.id)
                .where(Persona.creator_id == creator.id)
                .order_by(Persona.created_at.desc())
                .limit(MY_PERSONAS_LIMIT)
            )
        )
    return [persona_view(sessions, persona_id, creator) for persona_id in ids]
