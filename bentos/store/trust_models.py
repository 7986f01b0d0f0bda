"""The tables of trust and safety (migration 0006): persona edit versions, impersonation review decisions, user
reports, and the admin audit log (append-only: the database refuses updates and deletes of its rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bentos.store.base import Base
from bentos.store.models import _ts, utcnow

__all__ = ["AuditEntry", "PersonaReport", "PersonaVersion", "ReviewDecision"]

_ID = BigInteger().with_variant(Integer, "sqlite")


class PersonaVersion(Base):
    """One creator edit (PATCH /voices/{id}): what the editable fields became, which changed, and the metadata
    hash they give (version 0 is the persona as created, never stored here)."""

    __tablename__ = "persona_versions"
    __table_args__ = (UniqueConstraint("persona_id", "version"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    persona_id: Mapped[str] = mapped_column(ForeignKey("personas.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    changed: Mapped[list[str]] = mapped_column(JSON, default=list)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metadata_hash: Mapped[str] = mapped_column(String(66))
    editor_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = _ts(default=utcnow)


class ReviewDecision(Base):
    """An admin's decision on a persona held in `review` (its upload sounded like another creator's persona)."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    persona_id: Mapped[str] = mapped_column(ForeignKey("personas.id"), index=True)
    impersonation_of: Mapped[str | None] = mapped_column(String(40))
    cosine: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(12))  # approved | rejected
    note: Mapped[str] = mapped_column(Text, default="")
    admin_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = _ts(default=utcnow)


class PersonaReport(Base):
    """A user's report of a persona; an admin resolves it (takedown or dismiss). One open report per reporter
    and persona."""

    __tablename__ = "persona_reports"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    persona_id: Mapped[str] = mapped_column(ForeignKey("personas.id"), index=True)
    reporter_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    reason: Mapped[str] = mapped_column(String(20))
    details: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)  # open|taken_down|dismissed
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(40))
    resolved_at: Mapped[datetime | None] = _ts(nullable=True)
    created_at: Mapped[datetime] = _ts(default=utcnow, index=True)


class AuditEntry(Base):
    """One admin action. Rows are only ever inserted (triggers refuse UPDATE and DELETE)."""

    __tablename__ = "admin_audit"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    admin_id: Mapped[str] = mapped_column(String(40), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    subject_type: Mapped[str] = mapped_column(String(16))  # persona | report | account
    subject_id: Mapped[str] = mapped_column(String(40), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = _ts(default=utcnow, index=True)
