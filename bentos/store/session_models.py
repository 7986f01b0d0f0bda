"""The tables of accounts people sign into (migration 0008): password hashes, sign-in sessions, one-time password
reset tokens, the mail outbox and failed sign-ins (for rate limiting). Tokens are stored as sha256 only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bentos.store.base import Base
from bentos.store.models import utcnow

__all__ = ["AccountPassword", "MailMessage", "PasswordReset", "SignInFailure", "SignInSession"]

_ID = BigInteger().with_variant(Integer(), "sqlite")


def _ts(**kw: Any) -> Any:
    return mapped_column(DateTime(timezone=True), **kw)


class AccountPassword(Base):
    """An account's password, as an argon2id hash (the hash string carries its own salt and parameters)."""

    __tablename__ = "account_passwords"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = _ts(default=utcnow, onupdate=utcnow)


class SignInSession(Base):
    """A browser's sign-in: a `vps_…` bearer token with a fixed expiry; signing out revokes it for every tab."""

    __tablename__ = "sign_in_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # A session opened with an API key (not a password) keeps that key's scopes and ends when it is revoked.
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    scopes: Mapped[str] = mapped_column(String(200), default="*")
    created_at: Mapped[datetime] = _ts(default=utcnow)
    expires_at: Mapped[datetime] = _ts()
    revoked_at: Mapped[datetime | None] = _ts(nullable=True)


class PasswordReset(Base):
    """A one-time password reset token (sent by mail); used once, or never after `expires_at`."""

    __tablename__ = "password_resets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _ts(default=utcnow)
    expires_at: Mapped[datetime] = _ts()
    used_at: Mapped[datetime | None] = _ts(nullable=True)


class MailMessage(Base):
    """Mail to send, written in the same transaction as what it tells (a transactional outbox); a mail adapter
    delivers it and sets `sent_at`. The embedded setup has no adapter: `python -m scripts.outbox` reads it."""

    __tablename__ = "mail_outbox"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    to_email: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _ts(default=utcnow)
    sent_at: Mapped[datetime | None] = _ts(nullable=True)


class SignInFailure(Base):
    """A refused sign-in (wrong password or unknown email), counted per email to slow down guessing."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    created_at: Mapped[datetime] = _ts(default=utcnow, index=True)
