"""Uploads: decode and validate the bytes, check the voice against other creators' personas, keep the file.

A rejected upload leaves nothing stored; an accepted one is stored once per (owner, content).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import get_args

import anyio.to_thread
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.accounts import Caller
from bentos.core.embedder import Embedder
from bentos.core.errors import ErrorCode, PlatformError, from_audio_error, not_found
from bentos.core.ids import new_id
from bentos.core.personas import PersonaState
from bentos.store import blob_refs
from bentos.store.blobs import BlobStore
from bentos.store.models import Account, EmbeddingRow, Persona, StoredFile
from encoders import AudioClip, AudioError, AudioSettings, Embedding, load_audio
from encoders.audio import AudioFormat
from encoders.impersonation import nearest_other_creator

review_log = logging.getLogger("bentos.review")  # impersonation hits, for human review


@dataclass(frozen=True)
class ImpersonationHit:
    """The other creator's persona an upload sounds like, and how close (cosine of the embeddings)."""

    persona_id: str
    name: str | None
    cosine: float


@dataclass(frozen=True)
class UploadedFile:
    """An accepted upload as its owner sees it."""

    file_id: str
    step_file_id: str | None
    duration: float  # seconds, after trimming silence
    sample_rate: int  # as uploaded
    channels: int
    format: AudioFormat  # decided from the content
    hints: list[str]  # quality hints that did not reject it (low rate, clipping…)
    sha256: str
    impersonation: ImpersonationHit | None


@dataclass(frozen=True)
class AcceptedUpload:
    file: StoredFile
    created: bool  # False: the owner had uploaded these exact bytes before
    impersonation: ImpersonationHit | None

    @property
    def uploaded(self) -> UploadedFile:
        f = self.file
        return UploadedFile(
            f.id,
            f.step_file_id,
            round(f.duration, 3),
            f.sample_rate,
            f.channels,
            f.format,  # type: ignore[arg-type]  # written from AudioClip.format
            list(f.hints or []),
            f.sha256,
            self.impersonation,
        )


@dataclass(frozen=True)
class UploadLimits:
    """What POST /files accepts (GET /v1/limits)."""

    max_bytes: int
    min_seconds: float
    max_seconds: float
    formats: list[str]


def upload_limits(max_bytes: int, audio: AudioSettings) -> UploadLimits:
    return UploadLimits(max_bytes, audio.min_seconds, audio.max_seconds, list(get_args(AudioFormat)))


def sanitize_name(name: str | None) -> str:
    """A client's file name, reduced to something safe to show (never used as a storage path)."""
    base = re.sub(r"[^\w.\-]+", "_", (name or "upload").rsplit("/", 1)[-1].rsplit("\\", 1)[-1])
    return base.strip("._")[:100] or "upload"


def decode(data: bytes, audio: AudioSettings) -> AudioClip:
    try:
        return load_audio(data, audio)
    except AudioError as err:
        raise from_audio_error(err) from None


def impersonation_check(
    sessions: sessionmaker[Session],
    embedding: Embedding,
    uploader_id: str,
    threshold: float | None,
) -> ImpersonationHit | None:
    """With a real (pretrained) encoder: the closest live persona of another creator within `threshold`.

    At upload this warns the uploader; in the pipeline (after embedding) it holds the persona for review."""
    if not embedding.pretrained or threshold is None:
        return None
    with sessions() as session:
        rows = session.execute(
            select(Persona.id, Persona.name, EmbeddingRow.vector)
            .join(EmbeddingRow, EmbeddingRow.persona_id == Persona.id)
            .where(
                Persona.creator_id != uploader_id,
                Persona.state == PersonaState.LIVE,
                Persona.revoked_at.is_(None),
                EmbeddingRow.vector.is_not(None),
                EmbeddingRow.encoder == embedding.encoder,
                EmbeddingRow.dim == embedding.dim,
            )
        ).all()
    candidates = {pid: np.frombuffer(vec, "<f4") for pid, _, vec in rows if vec}
    hit = nearest_other_creator(embedding.vector, candidates, threshold)
    if hit is None:
        return None
    names = {pid: name for pid, name, _ in rows}
    review_log.warning(
        "impersonation review: account %s uploaded a voice at cosine %.3f to persona %s",
        uploader_id,
        hit[1],
        hit[0],
    )
    return ImpersonationHit(hit[0], names.get(hit[0]), round(hit[1], 4))


def accept_upload(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    embedder: Embedder,
    audio: AudioSettings,
    owner: Caller | Account,
    data: bytes,
    filename: str | None,
    impersonation_threshold: float | None,
) -> AcceptedUpload:
    """Validate `data` (WAV/MP3 bytes), check it for impersonation, and store it for `owner`."""
    clip = decode(data, audio)
    # Embedding costs a model pass: only when this encoder has a calibrated threshold to compare against.
    hit = (
        impersonation_check(sessions, embedder.embed(clip), owner.id, impersonation_threshold)
        if impersonation_threshold is not None
        else None
    )
    with sessions.begin() as session:
        existing = session.scalar(
            select(StoredFile).where(StoredFile.owner_id == owner.id, StoredFile.sha256 == clip.source_sha256)
        )
        if existing is not None:
            if existing.blob_key is None:  # its audio was deleted with a revoked persona: keep it again
                existing.blob_key = blob_refs.hold(session, blobs, data)
            return AcceptedUpload(existing, False, hit)
        upload = StoredFile(
            id=new_id("file"),
            owner_id=owner.id,
            sha256=clip.source_sha256,
            audio_sha256=clip.audio_sha256,
            blob_key=blob_refs.hold(session, blobs, data),
            name=sanitize_name(filename),
            format=clip.format,
            duration=clip.duration,
            sample_rate=clip.source_rate,
            channels=clip.source_channels,
            hints=clip.hints,
        )
        session.add(upload)
        session.flush()
        return AcceptedUpload(upload, True, hit)


def owned_upload_clip(
    sessions: sessionmaker[Session], blobs: BlobStore, audio: AudioSettings, owner: Caller, file_id: str
) -> AudioClip:
    """The decoded audio of one of `owner`'s uploads (404 for anyone else's, or a deleted one)."""
    with sessions() as session:
        upload = session.get(StoredFile, file_id)
        if upload is None or upload.owner_id != owner.id or not upload.blob_key:
            raise not_found(f"file {file_id}")
    try:
        data = blobs.get(upload.blob_key)
    except KeyError:
        raise PlatformError(ErrorCode.BLOB_MISSING, "the uploaded audio is no longer stored", 410) from None
    return decode(data, audio)


async def embed_upload(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    audio: AudioSettings,
    embedder: Embedder,
    owner: Caller,
    file_id: str,
) -> Embedding:
    """Embed one of `owner`'s uploads. Served by BentoML, this goes through the SpeakerEncoder service, batched
    with concurrent calls; decoding runs in a worker thread."""
    clip = await anyio.to_thread.run_sync(owned_upload_clip, sessions, blobs, audio, owner, file_id)
    return await embedder.aembed(clip)
