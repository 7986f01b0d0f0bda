"""Personas: creation from an accepted upload, visibility rules, discovery and revocation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bentos.chain.outbox import Outbox
from bentos.core.errors import PlatformError, forbidden, not_found
from bentos.core.ids import new_id
from bentos.core.speakable import unspeakable
from bentos.store import blob_refs
from bentos.store.blobs import BlobStore
from bentos.store.models import Account, EmbeddingRow, Job, Persona, StoredFile, VoiceClone, utcnow

VISIBILITIES = ("public", "unlisted", "private")
CLONE_MODELS = ("step-tts-mini", "step-tts-2", "stepaudio-2.5-tts")
LANGUAGES = ("en", "zh")
PIPELINE_STATES = ("uploaded", "validated", "embedded", "registered", "cloned", "previewed", "live")
TERMINAL_STATES = ("live", "failed", "revoked")


@dataclass
class PersonaDraft:
    """What a creator submits (POST /voices)."""

    file_id: str
    name: str
    consent_attested: bool
    consent_statement: str
    visibility: str = "private"
    description: str = ""
    persona_prompt: str = ""
    tags: list[str] = field(default_factory=list)
    language: str = "en"
    model: str = "step-tts-2"
    price_per_10k_chars: int | None = None
    transcript: str | None = None
    sample_text: str | None = None


def _check(draft: PersonaDraft) -> None:
    problems = []
    if not draft.consent_attested or len(draft.consent_statement.strip()) < 10:
        raise PlatformError(
            "consent_required",
            "attest that this is your own voice (or that you have the speaker's consent) with a statement",
            422,
        )
    if not 1 <= len(draft.name.strip()) <= 80:
        problems.append("name must be 1–80 characters")
    if draft.visibility not in VISIBILITIES:
        problems.append(f"visibility must be one of {', '.join(VISIBILITIES)}")
    if draft.model not in CLONE_MODELS:
        problems.append(f"model must be one of {', '.join(CLONE_MODELS)}")
    if draft.language not in LANGUAGES:
        problems.append(f"language must be one of {', '.join(LANGUAGES)}")
    if len(draft.tags) > 10 or any(not re.fullmatch(r"[\w\- ]{1,30}", t) for t in draft.tags):
        problems.append("at most 10 tags of 1–30 letters, digits, spaces or dashes")
    if draft.sample_text is not None and len(draft.sample_text) > 50:
        problems.append("sampleText must be at most 50 characters")
    elif draft.sample_text is not None and unspeakable(draft.sample_text):
        problems.append(f"sampleText {unspeakable(draft.sample_text)}")
    if draft.price_per_10k_chars is not None and not 0 <= draft.price_per_10k_chars <= 10**12:
        problems.append("pricePer10kChars must be a non-negative integer (micro-CNY)")
    if len(draft.description) > 2000 or len(draft.persona_prompt) > 4000:
        problems.append("description ≤ 2000 and personaPrompt ≤ 4000 characters")
    if problems:
        raise PlatformError("invalid_persona", "; ".join(problems), 422)


def create_persona(
    session: Session, creator: Account, draft: PersonaDraft, list_price: int
) -> tuple[Persona, Job]:
    """Insert the persona in state 'uploaded' and its pipeline job (the caller enqueues after commit)."""
    if creator.role not in ("creator", "admin"):
        raise forbidden("only creator accounts can create personas")
    _check(draft)
    upload = session.get(StoredFile, draft.file_id)
    if upload is None or upload.owner_id != creator.id:
        raise not_found(f"file {draft.file_id}")
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
        price_per_10k_chars=draft.price_per_10k_chars
        if draft.price_per_10k_chars is not None
        else list_price,
        consent_statement=draft.consent_statement.strip(),
        model=draft.model,
        transcript=draft.transcript,
        sample_text=draft.sample_text,
        state="uploaded",
    )
    session.add(persona)
    session.flush()
    job = Job(id=new_id("job"), persona_id=persona.id, status="queued")
    session.add(job)
    session.flush()
    return persona, job


def visible_persona(session: Session, persona_id: str, caller: Account | None) -> Persona:
    """The persona if `caller` may see it: public and unlisted for anyone with the id, private for its creator.

    A private persona looks exactly like a missing one to others (404), so ids can't be probed.
    """
    persona = session.get(Persona, persona_id)
    if persona is None:
        raise not_found(f"voice {persona_id}")
    if persona.visibility == "private" and (caller is None or caller.id != persona.creator_id):
        raise not_found(f"voice {persona_id}")
    return persona


def callable_persona(session: Session, persona_id: str, caller: Account) -> Persona:
    persona = visible_persona(session, persona_id, caller)
    if persona.revoked_at is not None:
        raise PlatformError("voice_revoked", "this voice was revoked by its creator", 410)
    if persona.state != "live":
        raise PlatformError(
            "voice_not_ready", f"this voice is not live yet (state: {persona.state})", 409, True
        )
    return persona


def owned_persona(session: Session, persona_id: str, caller: Account) -> Persona:
    persona = visible_persona(session, persona_id, caller)
    if persona.creator_id != caller.id:
        raise forbidden("only the persona's creator can change or delete it")
    return persona


def discover(
    session: Session,
    caller: Account | None,
    q: str | None,
    tag: str | None,
    language: str | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[Persona], int]:
    """Public live personas (plus the caller's own of any visibility and state), filtered and sorted."""
    visible: ColumnElement[bool] = (Persona.visibility == "public") & (Persona.state == "live")
    if caller is not None:
        visible = or_(visible, Persona.creator_id == caller.id)
    stmt = select(Persona).where(visible, Persona.revoked_at.is_(None))
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(
            or_(func.lower(Persona.name).like(like), func.lower(Persona.description).like(like))
        )
    if language:
        stmt = stmt.where(Persona.language == language)
    rows = list(session.scalars(stmt))
    if tag:  # tags are a JSON list: filtered here to stay portable across SQLite and PostgreSQL
        rows = [p for p in rows if tag.lower() in (p.tags or [])]
    if sort == "new":
        rows.sort(key=lambda p: p.created_at, reverse=True)
    else:
        rows.sort(key=lambda p: (p.calls, p.created_at), reverse=True)
    return rows[offset : offset + limit], len(rows)


def revoke(sessions: sessionmaker[Session], blobs: BlobStore, persona_id: str, creator: Account) -> None:
    """The creator withdraws a persona: TTS stops at once (one commit), the sample, the vector and — when no
    other persona of theirs uses it — the upload are deleted, and the chain revoke is queued with the change.

    Blobs shared with other rows (equal bytes uploaded by another account, a replayed TTS answer) are kept.
    """
    released: list[str] = []
    with sessions.begin() as session:
        persona = owned_persona(session, persona_id, creator)
        if persona.revoked_at is not None:
            return
        persona.revoked_at = utcnow()
        persona.state = "revoked"
        if persona.sample_blob_key:
            released.append(persona.sample_blob_key)
            persona.sample_blob_key = None
        emb = session.scalar(select(EmbeddingRow).where(EmbeddingRow.persona_id == persona.id))
        if emb is not None:
            emb.vector = None
        upload = session.get(StoredFile, persona.file_id) if persona.file_id else None
        if upload is not None and not _file_in_use(session, upload.id, persona.id):
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


def _file_in_use(session: Session, file_id: str, except_persona: str) -> bool:
    other = session.scalar(
        select(Persona.id).where(
            Persona.file_id == file_id, Persona.id != except_persona, Persona.revoked_at.is_(None)
        )
    )
    return other is not None
