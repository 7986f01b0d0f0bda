"""Verified consent (after ElevenLabs' voice captcha): the owner of an upload reads a random sentence aloud, and
the recording must be the upload's speaker (speaker-encoder cosine ≥ the calibrated threshold).

No speech recogniser is available offline, so what is said is not checked — only who says it. Public and
unlisted personas need a verified challenge for their upload; private ones may keep the attestation alone.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.accounts import Caller
from bentos.core.embedder import Embedder
from bentos.core.errors import ErrorCode, PlatformError, from_audio_error, not_found
from bentos.core.ids import new_id
from bentos.store.blobs import BlobStore
from bentos.store.models import StoredFile, utcnow
from bentos.store.notify_models import ConsentChallenge
from encoders import AudioError, AudioSettings, load_audio

DEFAULT_SENTENCES: Mapping[str, Sequence[str]] = {
    "en": ("I agree to let VoxPersona create a voice from my recordings.",),
    "zh": ("我同意VoxPersona用我的录音创建声音。",),
}


@dataclass(frozen=True)
class ConsentSettings:
    """configs/consent/*.yaml."""

    # Public and unlisted personas need a verified challenge (the product's rule; tests of other features that
    # create public personas from synthetic audio turn it off).
    require_verified: bool = True
    validity_minutes: float = 10.0  # a challenge must be recorded within this
    min_seconds: float = 2.0
    max_seconds: float = 15.0
    max_attempts: int = 5  # recordings per challenge before it is spent
    sentences: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(DEFAULT_SENTENCES))


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    sentence: str
    language: str
    expires_at: datetime


@dataclass(frozen=True)
class Verification:
    verified: bool
    cosine: float
    threshold: float
    attempts_left: int


def open_challenge(
    sessions: sessionmaker[Session], settings: ConsentSettings, caller: Caller, file_id: str, language: str
) -> Challenge:
    """A fresh random sentence for one of the caller's uploads (404 for anyone else's)."""
    sentences = list(settings.sentences.get(language, ()))
    if not sentences:
        languages = ", ".join(sorted(settings.sentences))
        raise PlatformError(ErrorCode.INVALID_REQUEST, f"language must be one of {languages}", 422)
    with sessions.begin() as session:
        upload = session.get(StoredFile, file_id)
        if upload is None or upload.owner_id != caller.id or not upload.blob_key:
            raise not_found(f"file {file_id}")
        row = ConsentChallenge(
            id=new_id("cc"),
            account_id=caller.id,
            file_id=file_id,
            language=language,
            sentence=random.SystemRandom().choice(sentences),
            expires_at=utcnow() + timedelta(minutes=settings.validity_minutes),
            attempts=0,
        )
        session.add(row)
        return Challenge(row.id, row.sentence, row.language, row.expires_at)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def _own_challenge(session: Session, caller: Caller, challenge_id: str) -> ConsentChallenge:
    row = session.get(ConsentChallenge, challenge_id)
    if row is None or row.account_id != caller.id:
        raise not_found(f"consent challenge {challenge_id}")  # another account's looks missing
    return row


def verify_recording(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    audio: AudioSettings,
    embedder: Embedder,
    settings: ConsentSettings,
    threshold: float | None,
    caller: Caller,
    challenge_id: str,
    recording: bytes,
) -> Verification:
    """Compare the recording's speaker with the upload's; verified when their cosine ≥ `threshold`."""
    from bentos.core.intake import owned_upload_clip  # intake → personas → this module

    if threshold is None:
        raise PlatformError(
            ErrorCode.CONSENT_NOT_VERIFIED,
            "this encoder has no calibrated consent threshold, so recordings can't be verified",
            409,
        )
    with sessions() as session:
        row = _own_challenge(session, caller, challenge_id)
        if row.verified_at is not None:
            return Verification(True, float(row.cosine or 0.0), threshold, 0)
        if _aware(row.expires_at) < utcnow() or row.attempts >= settings.max_attempts:
            raise PlatformError(
                ErrorCode.CHALLENGE_EXPIRED, "this challenge has expired; ask for a new sentence", 410
            )
        file_id = row.file_id
    bounds = replace(audio, min_seconds=settings.min_seconds, max_seconds=settings.max_seconds)
    try:
        spoken = load_audio(recording, bounds)
    except AudioError as err:
        raise from_audio_error(err) from None
    upload = owned_upload_clip(sessions, blobs, audio, caller, file_id)
    cosine = float(embedder.embed(spoken).cosine(embedder.embed(upload)))
    verified = cosine >= threshold
    with sessions.begin() as session:
        row = _own_challenge(session, caller, challenge_id)
        row.attempts += 1
        row.cosine = cosine
        if verified and row.verified_at is None:
            row.verified_at = utcnow()
            row.recording_sha256 = hashlib.sha256(recording).hexdigest()
        left = max(0, settings.max_attempts - row.attempts)
    return Verification(verified, cosine, threshold, 0 if verified else left)


def verified_challenge(
    session: Session, creator_id: str, file_id: str, challenge_id: str | None
) -> ConsentChallenge:
    """The verified challenge a public or unlisted persona rests on: `challenge_id` when given, else the
    latest verified one for the upload. 403 consent_not_verified when there is none."""
    stmt = select(ConsentChallenge).where(
        ConsentChallenge.account_id == creator_id,
        ConsentChallenge.file_id == file_id,
        ConsentChallenge.verified_at.is_not(None),
    )
    if challenge_id is not None:
        stmt = stmt.where(ConsentChallenge.id == challenge_id)
    row = session.scalar(stmt.order_by(ConsentChallenge.verified_at.desc()).limit(1))
    if row is None:
        raise PlatformError(
            ErrorCode.CONSENT_NOT_VERIFIED,
            "a public or unlisted persona needs a verified consent recording of this upload's speaker "
            "(POST /consent-challenges, then record the sentence)",
            403,
        )
    return row
