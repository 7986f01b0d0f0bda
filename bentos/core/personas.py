"""Personas: their states and limits, creation from an accepted upload, visibility rules, and revocation.
What callers read about them (cards, detail, discovery, provenance, job progress) is in `catalog.py`."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import holds
from bentos.billing.pricing import PriceBook
from bentos.chain.outbox import Outbox
from bentos.core import consent, funds, moderation, provider_cleanup
from bentos.core.accounts import Caller, Role
from bentos.core.errors import ErrorCode, PlatformError, forbidden, not_found
from bentos.core.ids import new_id
from bentos.core.speakable import unspeakable
from bentos.stepfun.models import MAX_SAMPLE_TEXT_CHARS
from bentos.store import blob_refs
from bentos.store.blobs import BlobStore
from bentos.store.models import (
    Account,
    EmbeddingRow,
    Job,
    Persona,
    StoredFile,
    VoiceClone,
    utcnow,
)


class PersonaState(enum.StrEnum):
    """Where a persona is: the pipeline's steps in order, then the two ends other than `live`."""

    UPLOADED = "uploaded"
    VALIDATED = "validated"
    EMBEDDED = "embedded"
    REGISTERED = "registered"
    CLONED = "cloned"
    PREVIEWED = "previewed"
    LIVE = "live"
    FAILED = "failed"
    REVOKED = "revoked"
    # Waiting for an admin: its upload sounds like another creator's persona (core/review.py). Not cloned.
    REVIEW = "review"


PIPELINE_STATES = tuple(
    s for s in PersonaState if s not in (PersonaState.FAILED, PersonaState.REVOKED, PersonaState.REVIEW)
)
FINAL_STATES = (PersonaState.LIVE, PersonaState.FAILED, PersonaState.REVOKED)


class Visibility(enum.StrEnum):
    PUBLIC = "public"  # listed in discovery
    UNLISTED = "unlisted"  # anyone with the id
    PRIVATE = "private"  # its creator only


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DiscoverySort(enum.StrEnum):
    POPULAR = "popular"  # most called first
    NEW = "new"


VISIBILITIES = tuple(Visibility)
CLONE_MODELS = ("step-tts-mini", "step-tts-2", "stepaudio-2.5-tts")
LANGUAGES = ("en", "zh")
NAME_MAX_CHARS = 80
DESCRIPTION_MAX_CHARS = 2_000
PROMPT_MAX_CHARS = 4_000
TRANSCRIPT_MAX_CHARS = 1_000  # what 5–10 s of speech can say, with room to spare
SAMPLE_TEXT_MAX_CHARS = MAX_SAMPLE_TEXT_CHARS
MAX_TAGS = 10
TAG_MAX_CHARS = 30
_TAG = re.compile(rf"[\w\- ]{{1,{TAG_MAX_CHARS}}}")


@dataclass(frozen=True)
class PersonaLimits:
    """What a creator may submit (GET /v1/limits); `_check` enforces exactly these."""

    name_max_chars: int
    description_max_chars: int
    prompt_max_chars: int
    transcript_max_chars: int
    sample_text_max_chars: int
    max_tags: int
    tag_max_chars: int
    languages: list[str]
    visibilities: list[Visibility]
    models: list[str]


def persona_limits(prices: PriceBook) -> PersonaLimits:
    return PersonaLimits(
        NAME_MAX_CHARS,
        DESCRIPTION_MAX_CHARS,
        PROMPT_MAX_CHARS,
        TRANSCRIPT_MAX_CHARS,
        SAMPLE_TEXT_MAX_CHARS,
        MAX_TAGS,
        TAG_MAX_CHARS,
        list(LANGUAGES),
        list(VISIBILITIES),
        [m for m in CLONE_MODELS if m in prices.list_price_per_10k],  # start_persona needs a list price
    )


@dataclass(frozen=True)
class PipelineStates:
    """The states a persona walks through, in order, and those it stays in."""

    states: list[PersonaState]
    final_states: list[PersonaState]


PIPELINE = PipelineStates(list(PIPELINE_STATES), list(FINAL_STATES))


@dataclass
class PersonaDraft:
    """What a creator submits (POST /voices)."""

    file_id: str
    name: str
    consent_attested: bool
    consent_statement: str
    visibility: str = Visibility.PRIVATE
    description: str = ""
    persona_prompt: str = ""
    tags: list[str] = field(default_factory=list)
    language: str = "en"
    model: str = "step-tts-2"
    price_multiplier_bps: int | None = None
    transcript: str | None = None
    sample_text: str | None = None
    consent_challenge_id: str | None = None  # a verified one: required for public and unlisted personas
    verified_consent_required: bool = True  # the platform's rule (configs/consent: require_verified)


def _check(draft: PersonaDraft) -> None:
    problems = []
    if not draft.consent_attested or len(draft.consent_statement.strip()) < 10:
        raise PlatformError(
            ErrorCode.CONSENT_REQUIRED,
            "attest that this is your own voice (or that you have the speaker's consent) with a statement",
            422,
        )
    if not 1 <= len(draft.name.strip()) <= NAME_MAX_CHARS:
        problems.append(f"name must be 1–{NAME_MAX_CHARS} characters")
    if draft.visibility not in VISIBILITIES:
        problems.append(f"visibility must be one of {', '.join(VISIBILITIES)}")
    if draft.model not in CLONE_MODELS:
        problems.append(f"model must be one of {', '.join(CLONE_MODELS)}")
    if draft.language not in LANGUAGES:
        problems.append(f"language must be one of {', '.join(LANGUAGES)}")
    if len(draft.tags) > MAX_TAGS or any(not _TAG.fullmatch(t) for t in draft.tags):
        problems.append(f"at most {MAX_TAGS} tags of 1–{TAG_MAX_CHARS} letters, digits, spaces or dashes")
    if draft.sample_text is not None and len(draft.sample_text) > SAMPLE_TEXT_MAX_CHARS:
        problems.append(f"sampleText must be at most {SAMPLE_TEXT_MAX_CHARS} characters")
    elif draft.sample_text is not None and unspeakable(draft.sample_text):
        problems.append(f"sampleText {unspeakable(draft.sample_text)}")
    if len(draft.description) > DESCRIPTION_MAX_CHARS or len(draft.persona_prompt) > PROMPT_MAX_CHARS:
        problems.append(
            f"description ≤ {DESCRIPTION_MAX_CHARS} and personaPrompt ≤ {PROMPT_MAX_CHARS} characters"
        )
    if problems:
        raise PlatformError(ErrorCode.INVALID_PERSONA, "; ".join(problems), 422)


def create_persona(
    session: Session, creator: Caller | Account, draft: PersonaDraft, prices: PriceBook
) -> tuple[Persona, Job]:
    """Insert the persona in state 'uploaded' and its pipeline job (the caller enqueues after commit)."""
    if creator.role not in (Role.CREATOR, Role.ADMIN):
        raise forbidden("only creator accounts can create personas")
    _check(draft)
    multiplier = draft.price_multiplier_bps or prices.multiplier_bps_default
    try:
        prices.check_multiplier(multiplier)
    except ValueError as err:
        raise PlatformError(ErrorCode.INVALID_PERSONA, str(err), 422) from None
    upload = session.get(StoredFile, draft.file_id)
    if upload is None or upload.owner_id != creator.id:
        raise not_found(f"file {draft.file_id}")
    challenge = (
        consent.verified_challenge(session, creator.id, upload.id, draft.consent_challenge_id)
        if draft.visibility in (Visibility.PUBLIC, Visibility.UNLISTED)
        and (draft.verified_consent_required or draft.consent_challenge_id)
        else None
    )
    persona = Persona(
        id=new_id("vp"),
        creator_id=creator.id,
        file_id=upload.id,
        name=draft.name.strip(),
        description=draft.description,
        persona_prompt=draft.persona_prompt,
        tags=sorted({t.strip().lower() for t in draft.tags}),
        language=draft.language,
        visibility=draft.visibility,
        price_per_10k_chars=prices.unit_price(draft.model, multiplier),
        price_multiplier_bps=multiplier,
        consent_statement=draft.consent_statement.strip(),
        model=draft.model,
        transcript=draft.transcript,
        sample_text=draft.sample_text,
        state=PersonaState.UPLOADED,
        consent_challenge_id=challenge.id if challenge else None,
        consent_recording_sha256=challenge.recording_sha256 if challenge else None,
    )
    session.add(persona)
    session.flush()
    job = Job(id=new_id("job"), persona_id=persona.id, status=JobStatus.QUEUED)
    session.add(job)
    session.flush()
    return persona, job


@dataclass(frozen=True)
class StartedPersona:
    voice_id: str
    status: PersonaState
    job_id: str


def start_persona(
    sessions: sessionmaker[Session],
    prices: PriceBook,
    enqueue: Callable[[str], object],
    creator: Caller,
    draft: PersonaDraft,
    blocklist: moderation.Moderation | None = None,
) -> StartedPersona:
    """Create the persona at its multiplier of the list prices, hold the clone fee on the creator's balance (402
    when short: nothing is stored) and start its pipeline. Blocked words in its texts: 400, nothing stored."""
    moderation.screen(blocklist, moderation.persona_texts(draft))
    if draft.model not in prices.list_price_per_10k:
        models = sorted(prices.list_price_per_10k)
        raise PlatformError(ErrorCode.INVALID_PERSONA, f"model must be one of {models}", 422)
    with funds.paying(prices), sessions.begin() as session:
        persona, job = create_persona(session, creator, draft, prices)
        hold_clone_fee(session, prices, creator, persona.id)
        started = StartedPersona(persona.id, PersonaState(persona.state), job.id)
    enqueue(started.voice_id)  # after the commit: a worker must find the row
    return started


def hold_clone_fee(session: Session, prices: PriceBook, creator: Caller, persona_id: str) -> None:
    """Hold the clone fee on the creator's balance (402 when short), captured when the provider bills the clone."""
    if prices.clone_fee:
        holds.reserve_in(
            session,
            hold_id=new_id("hold"),
            account_id=creator.id,
            api_key_id=creator.key_id,
            purpose=holds.Purpose.CLONE,
            subject=persona_id,
            amount=prices.clone_fee,
        )


def visible_persona(session: Session, persona_id: str, caller: Caller | None) -> Persona:
    """The persona if `caller` may see it: public and unlisted for anyone with the id, private for its creator.

    A private persona looks exactly like a missing one to others (404), so ids can't be probed.
    """
    persona = session.get(Persona, persona_id)
    if persona is None:
        raise not_found(f"voice {persona_id}")
    if persona.visibility == Visibility.PRIVATE and (caller is None or caller.id != persona.creator_id):
        raise not_found(f"voice {persona_id}")
    return persona


def callable_persona(session: Session, persona_id: str, caller: Caller) -> Persona:
    persona = visible_persona(session, persona_id, caller)
    if persona.revoked_at is not None:
        raise PlatformError(ErrorCode.VOICE_REVOKED, "this voice was revoked and can no longer be used", 410)
    if persona.state != PersonaState.LIVE:
        raise PlatformError(
            ErrorCode.VOICE_NOT_READY, f"this voice is not live yet (state: {persona.state})", 409, True
        )
    return persona


def owned_persona(session: Session, persona_id: str, caller: Caller) -> Persona:
    persona = visible_persona(session, persona_id, caller)
    if persona.creator_id != caller.id:
        raise forbidden("only the persona's creator can change or delete it")
    return persona


# --- revocation --------------------------------------------------------------------------------------------


def revoke(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    persona_id: str,
    creator: Caller,
    *,
    takedown: Callable[[Session, Persona], None] | None = None,
) -> None:
    """The creator withdraws a persona: TTS stops at once (one commit), the sample, the vector and — when no
    other persona of theirs uses it — the upload are deleted, and the chain revoke is queued with the change.
    With `takedown` an admin (`creator`) revokes it instead; `takedown(session, persona)` records why in the
    same transaction (core/reports.py).

    Blobs shared with other rows (equal bytes uploaded by another account, a replayed TTS answer) are kept.
    """
    released: list[str] = []
    with sessions.begin() as session:
        if takedown is not None and creator.role == Role.ADMIN:
            found = session.get(Persona, persona_id)
            if found is None:
                raise not_found(f"voice {persona_id}")
            persona = found
        else:
            persona = owned_persona(session, persona_id, creator)
        if persona.revoked_at is not None:
            return
        if takedown is not None:
            takedown(session, persona)
        persona.revoked_at = utcnow()
        persona.state = PersonaState.REVOKED
        fee = holds.open_hold(session, holds.Purpose.CLONE, persona.id)
        if fee is not None:  # revoked before its clone was made: the fee goes back
            holds.release_in(session, fee, "persona revoked before its clone")
        if persona.sample_blob_key:
            released.append(persona.sample_blob_key)
            persona.sample_blob_key = None
        emb = embedding_row(session, persona.id)
        if emb is not None:
            emb.vector = None
        released += provider_cleanup.forget_replays(session, persona.id)  # replayable TTS audio
        upload = session.get(StoredFile, persona.file_id) if persona.file_id else None
        if upload is not None and not _file_in_use(session, upload.id, persona.id):
            # The provider voice is retired for good (StepFun has no voice delete); its file deletion is owed.
            provider_cleanup.release_provider_side(session, persona, True, upload.step_file_id)
            if upload.blob_key:
                released.append(upload.blob_key)
                upload.blob_key = None
            for clone in session.scalars(select(VoiceClone).where(VoiceClone.file_id == upload.id)):
                if clone.sample_blob_key:
                    released.append(clone.sample_blob_key)
                    clone.sample_blob_key = None
        if Outbox.get(session, f"register:{persona.id}") is not None:
            Outbox.enqueue(session, "revoke", {"persona_id": persona.id}, f"revoke:{persona.id}")
    blob_refs.release(sessions, blobs, released)


def embedding_row(session: Session, persona_id: str) -> EmbeddingRow | None:
    return session.scalar(select(EmbeddingRow).where(EmbeddingRow.persona_id == persona_id))


def _file_in_use(session: Session, file_id: str, except_persona: str) -> bool:
    other = session.scalar(
        select(Persona.id).where(
            Persona.file_id == file_id, Persona.id != except_persona, Persona.revoked_at.is_(None)
        )
    )
    return other is not None
