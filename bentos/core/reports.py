"""Users report personas; admins resolve each report: take the persona down (revocation, on chain too — every
open report on it is resolved with it) or dismiss it. Reporters hear the outcome (report.resolved)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.accounts import Caller
from bentos.core.admin_audit import AdminAction, record, require_admin
from bentos.core.errors import ErrorCode, PlatformError, forbidden, not_found
from bentos.core.ids import new_id
from bentos.core.notifications import Event, emit
from bentos.core.personas import revoke, visible_persona
from bentos.store.blobs import BlobStore
from bentos.store.models import Persona, utcnow
from bentos.store.trust_models import PersonaReport

DETAILS_MAX_CHARS = 2_000
NOTE_MAX_CHARS = 2_000


class ReportReason(enum.StrEnum):
    IMPERSONATION = "impersonation"  # it is someone else's voice
    OFFENSIVE = "offensive"
    SCAM = "scam"
    OTHER = "other"


class ReportStatus(enum.StrEnum):
    OPEN = "open"
    TAKEN_DOWN = "taken_down"
    DISMISSED = "dismissed"


class Resolution(enum.StrEnum):
    TAKEDOWN = "takedown"
    DISMISS = "dismiss"


@dataclass(frozen=True)
class Report:
    id: str
    persona_id: str
    persona_name: str | None
    reporter_id: str
    reason: ReportReason
    details: str
    status: ReportStatus
    resolution_note: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime | None


def _report(row: PersonaReport, persona_name: str | None) -> Report:
    return Report(
        row.id,
        row.persona_id,
        persona_name,
        row.reporter_id,
        ReportReason(row.reason),
        row.details,
        ReportStatus(row.status),
        row.resolution_note,
        row.resolved_by,
        row.resolved_at,
        row.created_at,
    )


def file_report(
    sessions: sessionmaker[Session], reporter: Caller, persona_id: str, reason: ReportReason, details: str
) -> tuple[Report, bool]:
    """Report a persona the caller can see → (the report, whether it is new). A second report of the same
    persona by the same caller while the first is open returns the first."""
    details = details.strip()
    if len(details) > DETAILS_MAX_CHARS:
        raise PlatformError(
            ErrorCode.INVALID_REQUEST, f"details must be at most {DETAILS_MAX_CHARS} characters", 422
        )
    with sessions.begin() as session:
        persona = visible_persona(session, persona_id, reporter)
        if persona.creator_id == reporter.id:
            raise forbidden("you can't report your own persona (revoke it instead)")
        open_one = session.scalar(
            select(PersonaReport).where(
                PersonaReport.persona_id == persona.id,
                PersonaReport.reporter_id == reporter.id,
                PersonaReport.status == ReportStatus.OPEN,
            )
        )
        if open_one is not None:
            return _report(open_one, persona.name), False
        row = PersonaReport(
            id=new_id("rep"),
            persona_id=persona.id,
            reporter_id=reporter.id,
            reason=str(reason),
            details=details,
            status=ReportStatus.OPEN,
        )
        session.add(row)
        session.flush()
        return _report(row, persona.name), True


def list_reports(
    sessions: sessionmaker[Session],
    admin: Caller,
    status: ReportStatus | None = ReportStatus.OPEN,
    limit: int = 100,
) -> list[Report]:
    """Reports for the admin queue: open ones oldest first; resolved ones newest first."""
    require_admin(admin)
    stmt = select(PersonaReport, Persona.name).join(Persona, Persona.id == PersonaReport.persona_id)
    if status is not None:
        stmt = stmt.where(PersonaReport.status == status)
    order = PersonaReport.created_at if status == ReportStatus.OPEN else PersonaReport.created_at.desc()
    with sessions() as session:
        return [_report(row, name) for row, name in session.execute(stmt.order_by(order).limit(limit))]


def resolve(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    admin: Caller,
    report_id: str,
    resolution: Resolution,
    note: str,
) -> Report:
    """Take the reported persona down (revoked at once; the chain revoke is queued) or dismiss the report.
    409 `report_closed` when it was already resolved."""
    require_admin(admin)
    note = note.strip()[:NOTE_MAX_CHARS]
    with sessions() as session:
        row = session.get(PersonaReport, report_id)
        if row is None:
            raise not_found(f"report {report_id}")
        persona_id = row.persona_id
    if resolution == Resolution.DISMISS:
        with sessions.begin() as session:
            _close(session, admin, [_open_report(session, report_id)], ReportStatus.DISMISSED, note)
    else:
        done: list[bool] = []

        def take_down(session: Session, persona: Persona) -> None:
            _open_report(
                session, report_id
            )  # raises 409 (and so revokes nothing) if it was resolved meanwhile
            _close(session, admin, _open_reports(session, persona.id), ReportStatus.TAKEN_DOWN, note)
            done.append(True)

        revoke(sessions, blobs, persona_id, admin, takedown=take_down)
        if not done:  # the persona was already revoked (by its creator, or an earlier takedown)
            with sessions.begin() as session:
                _open_report(session, report_id)
                _close(session, admin, _open_reports(session, persona_id), ReportStatus.TAKEN_DOWN, note)
    with sessions() as session:
        final = session.get(PersonaReport, report_id)
        assert final is not None
        return _report(final, session.scalar(select(Persona.name).where(Persona.id == persona_id)))


def _open_report(session: Session, report_id: str) -> PersonaReport:
    row = session.get(PersonaReport, report_id, with_for_update=True)
    assert row is not None
    if row.status != ReportStatus.OPEN:
        raise PlatformError(ErrorCode.REPORT_CLOSED, f"this report was already resolved ({row.status})", 409)
    return row


def _open_reports(session: Session, persona_id: str) -> list[PersonaReport]:
    return list(
        session.scalars(
            select(PersonaReport).where(
                PersonaReport.persona_id == persona_id, PersonaReport.status == ReportStatus.OPEN
            )
        )
    )


def _close(
    session: Session, admin: Caller, rows: list[PersonaReport], status: ReportStatus, note: str
) -> None:
    now = utcnow()
    action = (
        AdminAction.REPORT_TAKEDOWN if status == ReportStatus.TAKEN_DOWN else AdminAction.REPORT_DISMISSED
    )
    for row in rows:
        row.status, row.resolution_note, row.resolved_by, row.resolved_at = status, note, admin.id, now
        record(session, admin, action, "report", row.id, {"personaId": row.persona_id, "note": note})
        emit(
            session,
            row.reporter_id,
            Event.REPORT_RESOLVED,
            {"reportId": row.id, "personaId": row.persona_id, "outcome": str(status)},
        )
