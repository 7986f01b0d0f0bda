"""The tables of verified consent, provider clean-up, webhooks and the notification feed (migration 0007)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bentos.store.base import Base
from bentos.store.models import utcnow

__all__ = [
    "ConsentChallenge",
    "Notification",
    "ProviderCleanup",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]

_BIG_ID = BigInteger().with_variant(Integer, "sqlite")


def _ts(**kw: Any) -> Any:
    return mapped_column(DateTime(timezone=True), **kw)


class ConsentChallenge(Base):
    """A sentence the owner of an upload reads aloud; verified when the recording is the upload's speaker.
    Only the recording's sha256 is kept, never the audio."""

    __tablename__ = "consent_challenges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    sentence: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = _ts()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cosine: Mapped[float | None] = mapped_column(Float)  # of the last recording
    recording_sha256: Mapped[str | None] = mapped_column(String(64))  # of the verified recording
    verified_at: Mapped[datetime | None] = _ts(nullable=True)
    created_at: Mapped[datetime] = _ts(default=utcnow)


class ProviderCleanup(Base):
    """A provider-side deletion owed after a revocation (e.g. the StepFun file), retried until done."""

    __tablename__ = "provider_cleanups"
    __table_args__ = (UniqueConstraint("kind", "target"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # delete_file
    target: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(
        String(10), default="pending", index=True
    )  # pending|queued|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = _ts(default=utcnow)
    claimed_at: Mapped[datetime | None] = _ts(nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _ts(default=utcnow)
    done_at: Mapped[datetime | None] = _ts(nullable=True)


class Webhook(Base):
    """An endpoint an account registered for some events; its secret signs every delivery (shown once)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = _ts(default=utcnow)
    deleted_at: Mapped[datetime | None] = _ts(nullable=True)


class WebhookDelivery(Base):
    """One event sent (or to be sent) to one webhook: the exact body signed, and where its attempts stand."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = _ts(default=utcnow)
    claimed_at: Mapped[datetime | None] = _ts(nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    replay_of: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = _ts(default=utcnow)
    delivered_at: Mapped[datetime | None] = _ts(nullable=True)


class WebhookAttempt(Base):
    """The log of a delivery: one row per HTTP attempt."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _ts(default=utcnow)


class Notification(Base):
    """One entry of an account's in-app feed."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = _ts(default=utcnow)
    read_at: Mapped[datetime | None] = _ts(nullable=True)
