"""The impersonation guard's human half: personas held in `review` (their voice is within the calibrated threshold
of another creator's live persona) wait for an admin, who approves (the pipeline goes on: register, clone, live)
or rejects (the persona fails, its clone fee goes back). Each decision is recorded and audited."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import holds
from bentos.core.accounts import Caller
from bentos.core.admin_audit import AdminAction, record, require_admin
from bentos.core.errors import ErrorCode, PlatformError, not_found
from bentos.core.notifications import Event, emit
from bentos.core.personas import JobStatus, PersonaState
from bentos.store.models import Account, Job, Persona
from bentos.store.trust_models import ReviewDecision

NOTE_MAX_CHARS = 2_000
REJECTED_CODE = "impersonation_rejected"


class Decision(enum.StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class PendingReview:
    """A persona waiting for a decision, and the persona its voice sounded like."""

    persona_id: str
    name: str
    creator_id: str
    creator_name: str | None
    impersonation_of: str | None
    impersonation_name: str | None
    impersonation_creator_id: str | None
    cosine: float | None
    created_at: datetime | None


@dataclass(frozen=True)
class ReviewOutcome:
    persona_id: str
    decision: Decision
    status: PersonaState


def pending_reviews(sessions: sessionmaker[Session], admin: Caller, limit: int = 100) -> list[PendingReview]:
    """The review queue, oldest first."""
    require_admin(admin)
    with sessions() as session:
        personas = list(
            session.scalars(
                select(Persona)
                .where(Persona.state == PersonaState.REVIEW, Persona.revoked_at.is_(None))
                .order_by(Persona.created_at)
                .limit(limit)
            )
        )
        out = []
        for p in personas:
            match = session.get(Persona, p.impersonation_of) if p.impersonation_of else None
            out.append(
                PendingReview(
                    p.id,
                    p.name,
                    p.creator_id,
                    session.scalar(select(Account.name).where(Account.id == p.creator_id)),
                    p.impersonation_of,
                    match.name if match else None,
                    match.creator_id if match else None,
                    p.impersonation_cosine,
                    p.created_at,
                )
            )
        return out


def decide(
    sessions: sessionmaker[Session],
    admin: Caller,
    persona_id: str,
    decision: Decision,
    note: str,
    enqueue: Callable[[str], object],
) -> ReviewOutcome:
    """Approve (the pipeline resumes after embedding) or reject (the persona fails for good, the clone fee is
    released). 409 `not_in_review` when the persona is not waiting for a decision."""
    require_admin(admin)
    note = note.strip()[:NOTE_MAX_CHARS]
    with sessions.begin() as session:
        persona = session.get(Persona, persona_id, with_for_update=True)  # two admins: one decision
        if persona is None:
            raise not_found(f"voice {persona_id}")
        if persona.state != PersonaState.REVIEW or persona.revoked_at is not None:
            raise PlatformError(
                ErrorCode.NOT_IN_REVIEW,
                f"this persona is not waiting for review (state: {persona.state})",
                409,
            )
        session.add(
            ReviewDecision(
                persona_id=persona.id,
                impersonation_of=persona.impersonation_of,
                cosine=persona.impersonation_cosine,
                decision=str(decision),
                note=note,
                admin_id=admin.id,
            )
        )
        job = session.scalar(select(Job).where(Job.persona_id == persona.id).order_by(Job.created_at.desc()))
        if decision == Decision.APPROVED:
            persona.state = PersonaState.EMBEDDED
            if job is not None:
                job.status = JobStatus.QUEUED
            action = AdminAction.REVIEW_APPROVED
        else:
            _reject(session, persona, note)
            if job is not None:
                job.status = JobStatus.FAILED
            action = AdminAction.REVIEW_REJECTED
        detail = {"impersonationOf": persona.impersonation_of, "cosine": persona.impersonation_cosine}
        record(session, admin, action, "persona", persona.id, {**detail, "note": note})
        emit(
            session,
            persona.creator_id,
            Event.PERSONA_REVIEW,
            {"personaId": persona.id, "decision": str(decision), "note": note},
        )
        outcome = ReviewOutcome(persona.id, decision, PersonaState(persona.state))
    if decision == Decision.APPROVED:
        enqueue(persona_id)  # after the commit: the worker must find it in `embedded`
    return outcome


def _reject(session: Session, persona: Persona, note: str) -> None:
    persona.state = PersonaState.FAILED
    persona.failure_step = PersonaState.REVIEW
    persona.failure_code = REJECTED_CODE
    persona.failure_message = (
        "An admin found that this voice belongs to another creator's persona, so it was not cloned"
        + (f": {note}" if note else ".")
    )
    persona.failure_retryable = False
    fee = holds.open_hold(session, holds.Purpose.CLONE, persona.id)
    if fee is not None:
        holds.release_in(session, fee, "impersonation review rejected")
