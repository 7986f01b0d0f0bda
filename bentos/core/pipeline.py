"""The persona pipeline (DESIGN §1): validate → embed → register (outbox) → clone → preview → live.

With a calibrated threshold, a persona whose voice is that close to another creator's live persona stops after
embedding in `review` (nothing registered or cloned) until an admin approves it (core/review.py).

Each step reads the persona's state from the DB, does its work idempotently and commits the next state, so a
killed worker resumes where it stopped: the chain intent is keyed by persona (written once), and StepFun answers
`duplicated` for a second clone of the same audio, which reuses the voice and is not billed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from eth_hash.auto import keccak
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from bentos.billing import holds
from bentos.billing.pricing import PriceBook
from bentos.chain.outbox import Outbox
from bentos.core import metrics
from bentos.core.embedder import Embedder
from bentos.core.errors import ErrorCode, provider_failure
from bentos.core.ids import new_id
from bentos.core.intake import impersonation_check
from bentos.core.jobs import QueueSettings, Retry
from bentos.core.notifications import Event, emit
from bentos.core.personas import JobStatus, PersonaState
from bentos.stepfun.client import StepFunClient
from bentos.stepfun.errors import ProviderUnavailable, StepFunError
from bentos.store import blob_refs
from bentos.store.blobs import BlobStore
from bentos.store.models import Account, EmbeddingRow, Job, Persona, StoredFile, VoiceClone, utcnow
from encoders import AudioError, AudioSettings, load_audio

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_TEXT = "Hello! This is my voice on VoxPersona."
ZH_SAMPLE_TEXT = "你好，这是我在VoxPersona上的声音。"


_RETIRED = (
    "this recording's voice was withdrawn (its persona was revoked or taken down) and is never used again; "
    "record a new sample"
)


class StepFailed(Exception):
    """A step failed for good (or retryable, if attempts remain). min_wait_s: don't retry sooner than this."""

    def __init__(self, code: str, message: str, retryable: bool = False, min_wait_s: float = 0.0) -> None:
        super().__init__(message)
        self.code, self.message, self.retryable, self.min_wait_s = code, message, retryable, min_wait_s


class Deferred(Exception):
    """Another worker is doing this step's provider call for a shared upload: run again shortly (no attempt
    is spent)."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(f"deferred {delay_s:.1f}s")
        self.delay_s = delay_s


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
    if persona.consent_recording_sha256:  # verified consent: the recording of the challenge sentence too
        doc["consent_recording_sha256"] = persona.consent_recording_sha256
    return "0x" + keccak(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hex()


@dataclass
class PersonaPipeline:
    sessions: sessionmaker[Session]
    blobs: BlobStore
    audio: AudioSettings
    embedder: Embedder
    provider: StepFunClient
    queue: QueueSettings
    prices: PriceBook
    on_step: Callable[[str, str], None] | None = None  # (persona_id, new_state) — metrics, tests
    # cfg.encoder.impersonation_threshold: a persona at least this close (cosine) to another creator's live
    # persona waits in review; None (an untrained encoder has no calibrated threshold): no check.
    impersonation_threshold: float | None = None

    def run(self, persona_id: str) -> None:
        """Advance a persona to 'live' (or 'failed'); raises Retry for a retryable failure with attempts left."""
        steps: dict[str, Callable[[str], str]] = {
            PersonaState.UPLOADED: self._validate,
            PersonaState.VALIDATED: self._embed,
            PersonaState.EMBEDDED: self._register,
            PersonaState.REGISTERED: self._clone,
            PersonaState.CLONED: self._preview,
            PersonaState.PREVIEWED: self._go_live,
        }
        while True:
            with self.sessions() as session:
                persona = session.get(Persona, persona_id)
                if persona is None or persona.state not in steps or persona.revoked_at is not None:
                    self._finish_job(persona_id)
                    return
                state = persona.state
                job = self._job(session, persona_id)
                job_id = job.id if job is not None else None
            try:
                next_state = metrics.timed_step(steps[state], persona_id, job_id)
            except StepFailed as failure:
                self._fail_or_retry(persona_id, state, failure)
                return
            except StepFunError as err:
                # An open breaker or a full rate limit made no call: wait as long as it says (the breaker's
                # cool-down when it doesn't), or every attempt hits it again.
                wait = err.retry_after or 0.0
                if isinstance(err, ProviderUnavailable) and not wait:
                    wait = self.provider.settings.breaker_reset_timeout_s
                mapped = provider_failure(err)  # stored as the code a /tts caller would see for it
                step_failure = StepFailed(mapped.code, mapped.message, mapped.retryable, wait)
                self._fail_or_retry(persona_id, state, step_failure)
                return
            except Deferred as deferred:
                raise Retry(deferred.delay_s) from None
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
        if hashlib.sha256(self._bytes(upload)).hexdigest() != upload.sha256:
            raise StepFailed("blob_corrupt", "the stored upload no longer matches what was accepted")
        return PersonaState.VALIDATED

    def _embed(self, persona_id: str) -> str:
        upload = self._upload(persona_id)
        try:
            clip = load_audio(self._bytes(upload), self.audio)
        except AudioError as err:  # e.g. the intake rules were tightened since the upload
            raise StepFailed(err.code, err.message) from None
        embedding = self.embedder.embed(clip)
        with self.sessions() as session:
            creator_id = session.scalar(select(Persona.creator_id).where(Persona.id == persona_id))
        hit = impersonation_check(self.sessions, embedding, creator_id or "", self.impersonation_threshold)
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
            if hit is not None:  # held for an admin before anything is registered, cloned or billed
                persona = session.get(Persona, persona_id)
                assert persona is not None
                persona.state = PersonaState.REVIEW
                persona.impersonation_of, persona.impersonation_cosine = hit.persona_id, hit.cosine
                emit(
                    session,
                    persona.creator_id,
                    Event.PERSONA_REVIEW,
                    {"personaId": persona_id, "decision": "pending", "cosine": hit.cosine},
                )
                return PersonaState.REVIEW
        return PersonaState.EMBEDDED

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
            persona.state = PersonaState.REGISTERED
        return PersonaState.REGISTERED

    def _clone(self, persona_id: str) -> str:
        upload = self._upload(persona_id)
        with self.sessions() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            model, transcript, requested = persona.model, persona.transcript, persona.sample_text
            language = persona.language
        clone = self._clone_row(upload.id, model)
        if clone.provider_voice_retired_at is not None:
            raise StepFailed(ErrorCode.VOICE_RETIRED, _RETIRED)
        if clone.step_voice_id is None:
            step_file_id = self._provider_file(upload)
            sample_text = requested or (ZH_SAMPLE_TEXT if language == "zh" else DEFAULT_SAMPLE_TEXT)
            with self._claimed(
                VoiceClone, VoiceClone.id, clone.id, VoiceClone.claimed_at, VoiceClone.step_voice_id
            ):
                # A retry after a timeout or a crash asks again: the provider answers `duplicated` for the same
                # audio and model, so there is one voice, counted below the first time we see its id.
                voice = self.provider.create_voice(
                    step_file_id, model=model, text=transcript, sample_text=sample_text
                )
                clone = self._record_clone(clone.id, persona_id, voice.id, voice.sample_text or sample_text,
                                           voice.sample_audio)  # fmt: skip
        with self.sessions.begin() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            persona.step_voice_id = clone.step_voice_id
            persona.clone_duplicated = clone.billed_persona_id != persona_id
            persona.sample_text = clone.sample_text or requested
            if clone.sample_blob_key and blob_refs.adopt(session, self.blobs, clone.sample_blob_key):
                persona.sample_blob_key = clone.sample_blob_key
            fee = holds.open_hold(session, holds.Purpose.CLONE, persona_id)
            if fee is not None:  # the creator pays for the clone the provider billed, never for a duplicate
                if persona.clone_duplicated:
                    holds.release_in(session, fee, "duplicated clone: no fee")
                else:
                    holds.capture_clone(session, fee, self.prices.clone(), persona_id)
            if persona.clone_duplicated and requested and requested != clone.sample_text:
                persona.notices = [
                    *(persona.notices or []),
                    f"sampleText was not used: this recording was already cloned for {model}, so its voice "
                    f"and sample ({clone.sample_text!r}) were reused, with no second clone fee.",
                ]
        return PersonaState.CLONED

    def provider_file_id(self, file_id: str) -> str:
        """The provider's id for one stored upload (uploaded to the provider now if it never was); raises
        Deferred while another worker is uploading it."""
        with self.sessions() as session:
            upload = session.get(StoredFile, file_id)
            if upload is None or not upload.blob_key:
                raise StepFailed("blob_missing", "the uploaded audio is no longer stored")
        return self._provider_file(upload)

    def _provider_file(self, upload: StoredFile) -> str:
        """The provider's id for this upload: one provider file per upload, whatever the retries, crashes and
        concurrent personas (a crashed upload is found again by its file name before uploading anew)."""
        if upload.step_file_id:
            return upload.step_file_id
        claim = (
            StoredFile,
            StoredFile.id,
            upload.id,
            StoredFile.step_upload_claimed_at,
            StoredFile.step_file_id,
        )
        with self._claimed(*claim) as lapsed:
            filename = f"{upload.id}.{upload.format}"
            found = (
                [f.id for f in self.provider.list_files("storage") if f.filename == filename]
                if lapsed
                else []
            )
            step_file_id = found[0] if found else self.provider.upload_file(self._bytes(upload), filename).id
            with self.sessions.begin() as session:
                stored = session.get(StoredFile, upload.id)
                assert stored is not None
                stored.step_file_id, stored.step_upload_claimed_at = step_file_id, None
        return step_file_id

    def _clone_row(self, file_id: str, model: str) -> VoiceClone:
        def find(session: Session) -> VoiceClone | None:
            stmt = select(VoiceClone).where(VoiceClone.file_id == file_id, VoiceClone.model == model)
            return session.scalar(stmt)

        with self.sessions.begin() as session:
            row = find(session)
            if row is None:
                try:
                    with session.begin_nested():
                        session.execute(insert(VoiceClone).values(file_id=file_id, model=model, billed=False))
                except IntegrityError:  # another worker inserted it first
                    pass
                row = find(session)
            assert row is not None
            return row

    @contextmanager
    def _claimed(self, table: Any, key: InstrumentedAttribute[Any], key_value: Any,
                 claimed: InstrumentedAttribute[Any], done: InstrumentedAttribute[Any]) -> Iterator[bool]:  # fmt: skip
        """Hold the lease on a provider call shared by the personas of one upload (one worker at a time) while
        the block runs; yields True when an earlier holder's lease had lapsed (it crashed or timed out).
        Raises Deferred while another worker holds it; a failed call gives the lease up at once."""
        now, lease = utcnow(), timedelta(seconds=self.queue.claim_lease_s)
        with self.sessions.begin() as session:
            previous = session.scalar(select(claimed).where(key == key_value))
            taken = session.execute(
                update(table)
                .where(key == key_value, done.is_(None), or_(claimed.is_(None), claimed < now - lease))
                .values({claimed.key: now})
            )
        if taken.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult
            raise Deferred(min(2.0, self.queue.claim_lease_s))
        try:
            yield previous is not None
        except BaseException:
            with self.sessions.begin() as session:
                session.execute(
                    update(table).where(key == key_value, done.is_(None)).values({claimed.key: None})
                )
            raise

    def _record_clone(
        self, clone_id: int, persona_id: str, voice_id: str, sample_text: str, sample_audio: bytes | None
    ) -> VoiceClone:
        with self.sessions.begin() as session:
            row = session.get(VoiceClone, clone_id)
            assert row is not None
            # The provider charges once per voice it creates: the first row to record a voice id pays for it
            # (a `duplicated` answer to a retry of our own timed-out request was still paid once).
            seen = session.scalar(select(VoiceClone.id).where(VoiceClone.step_voice_id == voice_id))
            row.step_voice_id, row.sample_text, row.claimed_at = voice_id, sample_text, None
            retired = select(VoiceClone.id).where(
                VoiceClone.step_voice_id == voice_id, VoiceClone.provider_voice_retired_at.is_not(None)
            )
            retire = session.scalar(retired) is not None  # `duplicated`: the audio of a withdrawn voice
            if retire:
                row.provider_voice_retired_at = utcnow()
            row.billed = seen is None
            if sample_audio:
                row.sample_blob_key = blob_refs.hold(session, self.blobs, sample_audio)
            if row.billed:
                row.billed_persona_id = persona_id
                persona = session.get(Persona, persona_id)
                assert persona is not None
                persona.clones_billed += 1
        if retire:
            raise StepFailed(ErrorCode.VOICE_RETIRED, _RETIRED)
        return row

    def _preview(self, persona_id: str) -> str:
        with self.sessions() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            if persona.sample_blob_key and self.blobs.exists(persona.sample_blob_key):
                return PersonaState.PREVIEWED
            voice_id, model, text = persona.step_voice_id, persona.model, persona.sample_text
        audio = self.provider.speech(
            model=model, voice=voice_id, input=text or DEFAULT_SAMPLE_TEXT, response_format="wav"
        )
        with self.sessions.begin() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            persona.sample_blob_key = blob_refs.hold(session, self.blobs, audio.audio)
        return PersonaState.PREVIEWED

    def _go_live(self, persona_id: str) -> str:
        return PersonaState.LIVE

    # --- bookkeeping ------------------------------------------------------------------------------------

    def revive_retryable(self) -> list[str]:
        """Personas that failed with a retryable error (a provider outage outlasting every attempt) at least
        `revive_after_s` ago go back to the step that failed, with a new job; at most `max_revivals` times,
        then the failure is final. Returns the ids to enqueue once this has committed."""
        cutoff = utcnow() - timedelta(seconds=self.queue.revive_after_s)
        revived = []
        with self.sessions.begin() as session:
            stmt = select(Persona).where(
                Persona.state == PersonaState.FAILED,
                Persona.failure_retryable.is_(True),
                Persona.revoked_at.is_(None),
                Persona.updated_at < cutoff,
            )
            for persona in session.scalars(stmt):
                runs = session.scalar(select(func.count()).where(Job.persona_id == persona.id)) or 0
                if runs > self.queue.max_revivals or not persona.failure_step:
                    persona.failure_retryable = False
                    persona.failure_message = f"{persona.failure_message} (gave up after {runs} runs)"
                    _release_clone_fee(session, persona.id, "pipeline gave up")
                    continue
                persona.state = persona.failure_step
                session.add(Job(id=new_id("job"), persona_id=persona.id, status=JobStatus.QUEUED))
                revived.append(persona.id)
        if revived:
            log.info("reviving %d personas that failed with a retryable error", len(revived))
        return revived

    def _bytes(self, upload: StoredFile) -> bytes:
        try:
            return self.blobs.get(upload.blob_key or "")
        except KeyError:
            raise StepFailed("blob_missing", "the uploaded audio is no longer stored") from None

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
                if next_state == PersonaState.LIVE:  # once: with the commit that makes it live
                    emit(session, persona.creator_id, Event.PERSONA_LIVE, _event_data(persona))
            persona.failure_step = persona.failure_code = persona.failure_message = None
            persona.failure_retryable = None
            job = self._job(session, persona_id)
            if job is not None:
                job.status = JobStatus.SUCCEEDED if next_state == PersonaState.LIVE else JobStatus.RUNNING
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
                persona.state = PersonaState.FAILED
                if job is not None:
                    job.status = JobStatus.FAILED
                if not failure.retryable:  # final: nothing will be cloned, the fee goes back
                    _release_clone_fee(session, persona_id, f"pipeline failed: {failure.code}")
                data = {**_event_data(persona), "failure": {"step": step, "code": failure.code,
                                                            "retryable": failure.retryable}}  # fmt: skip
                emit(session, persona.creator_id, Event.PERSONA_FAILED, data)
        log.warning(
            "persona %s failed at %s: %s (%s)",
            persona_id,
            step,
            failure.code,
            "retrying" if retry else "final",
        )
        if self.on_step and not retry:
            self.on_step(persona_id, PersonaState.FAILED)
        if retry:
            raise Retry(max(failure.min_wait_s, self.queue.backoff(attempts)))

    def _finish_job(self, persona_id: str) -> None:
        with self.sessions.begin() as session:
            job = self._job(session, persona_id)
            persona = session.get(Persona, persona_id)
            if (
                job is not None
                and job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
                and persona is not None
                and persona.state != PersonaState.REVIEW  # the job waits for the admin's decision
            ):
                job.status = JobStatus.SUCCEEDED if persona.state == PersonaState.LIVE else JobStatus.FAILED

    @staticmethod
    def _job(session: Session, persona_id: str) -> Job | None:
        return session.query(Job).filter_by(persona_id=persona_id).order_by(Job.created_at.desc()).first()


def _event_data(persona: Persona) -> dict[str, Any]:
    """What a persona.live / persona.failed notification carries."""
    return {"personaId": persona.id, "name": persona.name, "status": persona.state}


def _release_clone_fee(session: Session, persona_id: str, why: str) -> None:
    fee = holds.open_hold(session, holds.Purpose.CLONE, persona_id)
    if fee is not None:
        holds.release_in(session, fee, why)
