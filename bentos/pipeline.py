"""The persona pipeline (DESIGN §1): validate → embed → register (outbox) → clone → preview → live.

Each step reads the persona's state from the DB, does its work idempotently and commits the next state, so a
killed worker resumes where it stopped: the chain intent is keyed by persona (written once), and StepFun answers
`duplicated` for a second clone of the same audio, which reuses the voice and is not billed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from eth_hash.auto import keccak
from sqlalchemy.orm import Session, sessionmaker

from bentos.chain.outbox import Outbox
from bentos.jobs import QueueSettings, Retry
from bentos.stepfun.client import StepFunClient
from bentos.stepfun.errors import StepFunError
from bentos.store.blobs import BlobStore
from bentos.store.models import Account, EmbeddingRow, Job, Persona, StoredFile
from encoders import AudioError, AudioSettings, SpeakerEncoder, load_audio

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_TEXT = "Hello! This is my voice on VoxPersona."
ZH_SAMPLE_TEXT = "你好，这是我在VoxPersona上的声音。"


class StepFailed(Exception):
    """A step failed for good (or retryable, if attempts remain)."""

    def __init__(self, code: str, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.retryable = code, message, retryable


def creator_address(account: Account) -> str:
    """The creator's payout wallet, or (until they set one) an address derived from the account id.

    The derived address has no key: it only names the creator on chain; payouts wait for a real wallet.
    """
    if account.payout_wallet:
        return account.payout_wallet
    return "0x" + keccak(f"voxpersona:{account.id}".encode())[-20:].hex()


def metadata_hash(persona: Persona, upload: StoredFile) -> str:
    """keccak256 of the canonical JSON of what the creator attested to."""
    doc = {
        "persona": persona.id,
        "creator": persona.creator_id,
        "name": persona.name,
        "model": persona.model,
        "audio_sha256": upload.sha256,
        "consent": persona.consent_statement,
    }
    return "0x" + keccak(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hex()


@dataclass
class PersonaPipeline:
    sessions: sessionmaker[Session]
    blobs: BlobStore
    audio: AudioSettings
    encoder: SpeakerEncoder
    provider: StepFunClient
    queue: QueueSettings
    on_step: Callable[[str, str], None] | None = None  # (persona_id, new_state) — metrics, tests

    def run(self, persona_id: str) -> None:
        """Advance a persona to 'live' (or 'failed'); raises Retry for a retryable failure with attempts left."""
        steps = {
            "uploaded": self._validate,
            "validated": self._embed,
            "embedded": self._register,
            "registered": self._clone,
            "cloned": self._preview,
            "previewed": self._go_live,
        }
        while True:
            with self.sessions() as session:
                persona = session.get(Persona, persona_id)
                if persona is None or persona.state not in steps or persona.revoked_at is not None:
                    self._finish_job(persona_id)
                    return
                state = persona.state
            try:
                next_state = steps[state](persona_id)
            except StepFailed as failure:
                self._fail_or_retry(persona_id, state, failure)
                return
            except StepFunError as err:
                self._fail_or_retry(
                    persona_id, state, StepFailed(_provider_code(err), err.message, err.retryable)
                )
                return
            except Retry:
                raise
            except Exception:
                # A bug or an outage of our own (DB, blobs): keep the step, retry within the bound.
                log.exception("persona %s: step %s crashed", persona_id, state)
                crash = StepFailed("internal_error", "an internal error interrupted this step", True)
                self._fail_or_retry(persona_id, state, crash)
                return
            self._advance(persona_id, state, next_state)

    # --- steps: each returns the next state; side effects are idempotent --------------------------------

    def _validate(self, persona_id: str) -> str:
        # The intake already decoded and validated this upload (POST /files); here we only make sure the
        # stored bytes are still exactly what was accepted, rather than decoding them a second time.
        upload = self._upload(persona_id)
        try:
            data = self.blobs.get(upload.blob_key or "")
        except KeyError:
            raise StepFailed("blob_missing", "the uploaded audio is no longer stored") from None
        if hashlib.sha256(data).hexdigest() != upload.sha256:
            raise StepFailed("blob_corrupt", "the stored upload no longer matches what was accepted")
        return "validated"

    def _embed(self, persona_id: str) -> str:
        upload = self._upload(persona_id)
        try:
            clip = load_audio(self.blobs.get(upload.blob_key or ""), self.audio)
        except AudioError as err:  # e.g. the intake rules were tightened since the upload
            raise StepFailed(err.code, err.message) from None
        embedding = self.encoder.embed(clip)
        with self.sessions.begin() as session:
            row = session.query(EmbeddingRow).filter_by(persona_id=persona_id).one_or_none()
            if row is None:
                session.add(
                    EmbeddingRow(
                        persona_id=persona_id,
                        encoder=embedding.encoder,
                        version=embedding.version,
                        pretrained=embedding.pretrained,
                        dim=embedding.dim,
                        vector=np.ascontiguousarray(embedding.vector, "<f4").tobytes(),
                        hash=embedding.hash,
                    )
                )
        return "embedded"

    def _register(self, persona_id: str) -> str:
        # The intent and the state change commit together; the outbox dispatcher sends it.
        with self.sessions.begin() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            upload = session.get(StoredFile, persona.file_id)
            creator = session.get(Account, persona.creator_id)
            row = session.query(EmbeddingRow).filter_by(persona_id=persona_id).one()
            assert upload is not None and creator is not None
            Outbox.enqueue(
                session,
                "register",
                {
                    "persona_id": persona_id,
                    "embedding_hash": row.hash,
                    "metadata_hash": metadata_hash(persona, upload),
                    "creator": creator_address(creator),
                },
                f"register:{persona_id}",
            )
            persona.state = "registered"
        return "registered"

    def _clone(self, persona_id: str) -> str:
        upload = self._upload(persona_id)
        step_file_id = upload.step_file_id
        if step_file_id is None:
            data = self.blobs.get(upload.blob_key or "")
            step_file_id = self.provider.upload_file(data, f"{upload.id}.{upload.format}").id
            with self.sessions.begin() as session:
                stored = session.get(StoredFile, upload.id)
                assert stored is not None
                stored.step_file_id = step_file_id
        with self.sessions() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            model, transcript, sample_text = persona.model, persona.transcript, persona.sample_text
            language = persona.language
        sample_text = sample_text or (ZH_SAMPLE_TEXT if language == "zh" else DEFAULT_SAMPLE_TEXT)
        voice = self.provider.create_voice(
            step_file_id, model=model, text=transcript, sample_text=sample_text
        )
        sample_key = self.blobs.put(voice.sample_audio) if voice.sample_audio else None
        with self.sessions.begin() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            # A re-run after a crash gets `duplicated`: same voice, no second clone fee.
            if persona.step_voice_id is None and not voice.duplicated:
                persona.clones_billed += 1
            persona.step_voice_id = voice.id
            persona.clone_duplicated = persona.clone_duplicated or voice.duplicated
            persona.sample_text = voice.sample_text or sample_text
            if sample_key:
                persona.sample_blob_key = sample_key
        return "cloned"

    def _preview(self, persona_id: str) -> str:
        with self.sessions() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            if persona.sample_blob_key and self.blobs.exists(persona.sample_blob_key):
                return "previewed"
            voice_id, model, text = persona.step_voice_id, persona.model, persona.sample_text
        audio = self.provider.speech(
            model=model, voice=voice_id, input=text or DEFAULT_SAMPLE_TEXT, response_format="wav"
        )
        key = self.blobs.put(audio.audio)
        with self.sessions.begin() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            persona.sample_blob_key = key
        return "previewed"

    def _go_live(self, persona_id: str) -> str:
        return "live"

    # --- bookkeeping ------------------------------------------------------------------------------------

    def _upload(self, persona_id: str) -> StoredFile:
        with self.sessions() as session:
            persona = session.get(Persona, persona_id)
            upload = session.get(StoredFile, persona.file_id) if persona and persona.file_id else None
            if upload is None or not upload.blob_key:
                raise StepFailed("blob_missing", "the uploaded audio is no longer stored")
            return upload

    def _advance(self, persona_id: str, state: str, next_state: str) -> None:
        with self.sessions.begin() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            if persona.revoked_at is not None:  # revoked while the step ran: revocation wins
                return
            if persona.state == state:  # the step may already have committed it (register)
                persona.state = next_state
            persona.failure_step = persona.failure_code = persona.failure_message = None
            persona.failure_retryable = None
            job = self._job(session, persona_id)
            if job is not None:
                job.status = "succeeded" if next_state == "live" else "running"
        log.info("persona %s: %s → %s", persona_id, state, next_state)
        if self.on_step:
            self.on_step(persona_id, next_state)

    def _fail_or_retry(self, persona_id: str, step: str, failure: StepFailed) -> None:
        with self.sessions.begin() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            if persona.revoked_at is not None:
                return
            job = self._job(session, persona_id)
            attempts = (job.attempts if job else 0) + 1
            if job is not None:
                job.attempts = attempts
            persona.failure_step, persona.failure_code = step, failure.code
            persona.failure_message, persona.failure_retryable = failure.message[:2000], failure.retryable
            retry = failure.retryable and attempts < self.queue.max_attempts
            if not retry:
                persona.state = "failed"
                if job is not None:
                    job.status = "failed"
        log.warning(
            "persona %s failed at %s: %s (%s)",
            persona_id,
            step,
            failure.code,
            "retrying" if retry else "final",
        )
        if self.on_step and not retry:
            self.on_step(persona_id, "failed")
        if retry:
            raise Retry(self.queue.backoff(attempts))

    def _finish_job(self, persona_id: str) -> None:
        with self.sessions.begin() as session:
            job = self._job(session, persona_id)
            persona = session.get(Persona, persona_id)
            if job is not None and job.status in ("queued", "running") and persona is not None:
                job.status = "succeeded" if persona.state == "live" else "failed"

    @staticmethod
    def _job(session: Session, persona_id: str) -> Job | None:
        return session.query(Job).filter_by(persona_id=persona_id).order_by(Job.created_at.desc()).first()


def _provider_code(err: StepFunError) -> str:
    return f"provider_{err.code}" if not err.code.startswith("provider") else err.code
