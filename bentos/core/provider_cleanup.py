"""What a revocation owes beyond our own tables: the StepFun file deleted (through the job queue, retried until
the provider confirms), the provider voice retired for good, and the replayable TTS answers forgotten.

StepFun documents no voice-delete endpoint (docs/reference: files can be deleted, voices cannot), so a revoked
persona's voice is marked retired on its clone row and never called again; it is never "deleted" by a call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.outbound import RetryPolicy, dispatch, record_outcome, take
from bentos.stepfun.client import StepFunClient
from bentos.stepfun.errors import NotFound, StepFunError
from bentos.store import blob_refs
from bentos.store.models import IdempotencyRecord, Persona, UsageEvent, VoiceClone, utcnow
from bentos.store.notify_models import ProviderCleanup

log = logging.getLogger(__name__)

DELETE_FILE = "delete_file"


def schedule_file_deletion(session: Session, step_file_id: str) -> None:
    """Owe the provider a DELETE /v1/files/{id}, recorded with the change that made the file unneeded."""
    exists = session.scalar(
        select(ProviderCleanup.id).where(
            ProviderCleanup.kind == DELETE_FILE, ProviderCleanup.target == step_file_id
        )
    )
    if exists is None:
        session.add(ProviderCleanup(kind=DELETE_FILE, target=step_file_id, status="pending", attempts=0,
                                    next_attempt_at=utcnow()))  # fmt: skip


def retire_voices(session: Session, file_id: str) -> list[str]:
    """Mark every provider voice cloned from the upload unusable; returns their ids."""
    retired = []
    for clone in session.scalars(select(VoiceClone).where(VoiceClone.file_id == file_id)):
        if clone.provider_voice_retired_at is None:
            clone.provider_voice_retired_at = utcnow()
        if clone.step_voice_id:
            retired.append(clone.step_voice_id)
    return retired


def forget_replays(session: Session, persona_id: str) -> list[str]:
    """Delete the stored answers of the persona's keyed TTS calls (they hold its audio); returns the blob keys
    they referenced, to release after the commit. The usage rows stay: the ledger needs them."""
    from bentos.core.speech import IDEMPOTENCY_ROUTE  # speech imports personas, which imports this module

    keys: list[str] = []
    request_ids = session.scalars(
        select(UsageEvent.request_id).where(
            UsageEvent.persona_id == persona_id, UsageEvent.request_id.like("idem:%")
        )
    )
    for request_id in request_ids:
        _, caller_id, key = request_id.split(":", 2)
        match = (
            IdempotencyRecord.account_ref == caller_id,
            IdempotencyRecord.route == IDEMPOTENCY_ROUTE,
            IdempotencyRecord.key == key,
        )
        body = session.scalar(select(IdempotencyRecord.body).where(*match))
        if body and body.startswith(blob_refs.REPLAY_REF):
            keys.append(body[len(blob_refs.REPLAY_REF) :].decode())
        session.execute(delete(IdempotencyRecord).where(*match))
    return keys


def release_provider_side(
    session: Session, persona: Persona, file_unused: bool, step_file_id: str | None
) -> None:
    """The provider side of a revocation: with no other live persona on the upload, its provider voices are
    retired and its provider file deletion is owed."""
    if not file_unused or persona.file_id is None:
        return
    retire_voices(session, persona.file_id)
    if step_file_id:
        schedule_file_deletion(session, step_file_id)


class ProviderCleanupRunner:
    """Claims owed provider deletions for the job queue and makes one attempt per job."""

    def __init__(self, sessions: sessionmaker[Session], provider: StepFunClient, policy: RetryPolicy) -> None:
        self.sessions, self.provider, self.policy = sessions, provider, policy

    def dispatch_due(self, enqueue: Callable[[str], object]) -> int:
        return dispatch(self.sessions, ProviderCleanup, self.policy, enqueue)

    def attempt(self, cleanup_id: str) -> None:
        with self.sessions.begin() as session:
            row = session.get(ProviderCleanup, int(cleanup_id))
            if row is None or not take(session, ProviderCleanup, int(cleanup_id)):
                return  # another job has it, or it ended
            kind, target = row.kind, row.target
        error = None
        try:
            if kind == DELETE_FILE:
                self.provider.delete_file(target)
        except NotFound:
            pass  # already gone: what we wanted
        except StepFunError as err:
            error = f"{type(err).__name__}: {err}"
        except Exception as exc:  # counted, so the retries end
            error = f"{type(exc).__name__}: {exc}"
        with self.sessions.begin() as session:
            row = session.get(ProviderCleanup, int(cleanup_id))
            if row is None:
                return
            record_outcome(row, self.policy, error)
            if error is None:
                row.done_at = utcnow()
        if error is not None:
            log.warning("provider clean-up %s %s failed: %s", kind, target, error)
