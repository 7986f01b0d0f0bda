"""Admins and their audit log: every admin action is recorded in the transaction that makes it true, and the log
is only ever appended to (the database refuses updates and deletes; migration 0006)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.accounts import Caller, Role
from bentos.core.errors import forbidden
from bentos.store.trust_models import AuditEntry


class AdminAction(enum.StrEnum):
    REVIEW_APPROVED = "review.approved"
    REVIEW_REJECTED = "review.rejected"
    REPORT_TAKEDOWN = "report.takedown"
    REPORT_DISMISSED = "report.dismissed"
    ACCOUNT_BANNED = "account.banned"
    ACCOUNT_UNBANNED = "account.unbanned"


def require_admin(caller: Caller) -> Caller:
    """403 for anyone but an admin (admins are made by `python -m scripts.admin create`, never by sign-up)."""
    if caller.role != Role.ADMIN:
        raise forbidden("only an admin can do this")
    return caller


def record(
    session: Session,
    admin: Caller,
    action: AdminAction,
    subject_type: str,
    subject_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry, in the caller's transaction (it commits with the action or not at all)."""
    session.add(
        AuditEntry(
            admin_id=admin.id,
            action=str(action),
            subject_type=subject_type,
            subject_id=subject_id,
            detail=detail or {},
        )
    )


@dataclass(frozen=True)
class AuditRecord:
    id: int
    admin_id: str
    action: str
    subject_type: str
    subject_id: str
    detail: dict[str, Any]
    created_at: datetime | None


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditRecord]
    next_before: int | None  # pass as `before` for the next (older) page


def audit_log(
    sessions: sessionmaker[Session],
    admin: Caller,
    limit: int = 50,
    before: int | None = None,
    subject_id: str | None = None,
) -> AuditPage:
    """Newest first; `before` pages back by entry id; `subject_id` narrows to one persona, report or account."""
    require_admin(admin)
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if before is not None:
        stmt = stmt.where(AuditEntry.id < before)
    if subject_id:
        stmt = stmt.where(AuditEntry.subject_id == subject_id)
    with sessions() as session:
        rows = list(session.scalars(stmt))
    items = [
        AuditRecord(
            r.id, r.admin_id, r.action, r.subject_type, r.subject_id, dict(r.detail or {}), r.created_at
        )
        for r in rows[:limit]
    ]
    return AuditPage(items, items[-1].id if len(rows) > limit else None)
