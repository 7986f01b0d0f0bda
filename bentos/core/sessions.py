"""Signing in: email + password (or an API key) → a `vps_…` session token with a fixed expiry; signing out
revokes it (every tab that holds it is signed out); a password reset by a one-time token sent through the mail
outbox, which also ends every session of the account. Only sha256 hashes of tokens are stored."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bentos.core import scopes
from bentos.core.accounts import (
    KEY_PREFIX,
    SESSION_PREFIX,
    Caller,
    authenticate,
    hash_key,
    set_password,
)
from bentos.core.errors import ErrorCode, PlatformError
from bentos.core.ids import new_id
from bentos.core.mail import queue_mail
from bentos.core.passwords import MAX_CHARS, check_strength, verify_password
from bentos.store.models import Account, utcnow
from bentos.store.session_models import (
    AccountPassword,
    MailMessage,
    PasswordReset,
    SignInFailure,
    SignInSession,
)

RESET_PREFIX = "vpr_"
# Guessing: this many refused sign-ins for one email within the window locks that email's password sign-in
# until the window has passed (a correct password included: the attacker cannot tell when they hit it).
MAX_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=15)
MAX_RESETS_PER_HOUR = 3  # reset mails per account; more requests are answered the same, silently dropped


@dataclass(frozen=True)
class OpenedSession:
    account: Caller
    token: str  # shown once, to the client that signed in
    expires_at: datetime


def _open(
    session: Session, caller: Caller, ttl_s: float, *, key_id: str | None, key_scopes: str
) -> OpenedSession:
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(seconds=ttl_s)
    session.add(
        SignInSession(
            id=new_id("ses"),
            account_id=caller.id,
            token_hash=hash_key(token),
            api_key_id=key_id,
            scopes=key_scopes,
            expires_at=expires_at,
        )
    )
    return OpenedSession(caller, token, expires_at)


def sign_in_with_password(
    sessions: sessionmaker[Session], email: str, password: str, ttl_s: float
) -> OpenedSession:
    """A session for the account with this email and password, or `invalid_credentials` (401, the same for an
    unknown email and a wrong password) / `rate_limited` (429) after too many refusals."""
    email = email.strip().lower()[:254]
    with sessions.begin() as session:
        since = utcnow() - FAILURE_WINDOW
        failures = session.scalar(
            select(func.count())
            .select_from(SignInFailure)
            .where(SignInFailure.email == email, SignInFailure.created_at >= since)
        )
        if (failures or 0) >= MAX_FAILURES:
            raise PlatformError(
                ErrorCode.RATE_LIMITED,
                "too many refused sign-ins for this email: try again later, or reset the password",
                429,
                retryable=True,
                retry_after=int(FAILURE_WINDOW.total_seconds()),
            )
        account = session.scalar(select(Account).where(Account.email == email))
        stored = session.get(AccountPassword, account.id) if account is not None else None
        matches = verify_password(stored.password_hash if stored else None, password)
        if account is not None and matches and account.erased_at is None:
            if account.banned_at is not None:
                raise PlatformError(ErrorCode.ACCOUNT_BANNED, "this account is banned", 403)
            return _open(session, Caller.of(account), ttl_s, key_id=None, key_scopes=scopes.LEGACY_FULL)
        session.add(SignInFailure(email=email))  # committed: the refusal below is counted
    raise PlatformError(ErrorCode.INVALID_CREDENTIALS, "the email or password is not right", 401)


def sign_in_with_key(
    sessions: sessionmaker[Session], authorization: str | None, ttl_s: float
) -> OpenedSession:
    """A session for the API key in `authorization` (it keeps the key's scope, caps and limits, and ends when
    the key is revoked). A session token cannot open another session."""
    token = (authorization or "")[7:].strip()
    if token and not token.startswith(KEY_PREFIX):
        raise PlatformError(
            ErrorCode.INVALID_API_KEY, "sign in with an API key (vpk_…) or an email and password", 401
        )
    with sessions.begin() as session:
        caller = authenticate(session, authorization)
        return _open(session, caller, ttl_s, key_id=caller.key_id, key_scopes=caller.scopes)


def sign_out(sessions: sessionmaker[Session], caller: Caller) -> bool:
    """End the session this request came with (every tab holding its token is signed out). False when the
    request came with an API key instead (nothing to end)."""
    if caller.session_id is None:
        return False
    with sessions.begin() as session:
        row = session.get(SignInSession, caller.session_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
    return True


def end_all_sessions(session: Session, account_id: str) -> None:
    session.execute(
        update(SignInSession)
        .where(SignInSession.account_id == account_id, SignInSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def request_password_reset(sessions: sessionmaker[Session], email: str, ttl_s: float) -> None:
    """Mail a one-time reset token to `email` if it names an account (answered the same either way, so nobody
    learns which emails have accounts); at most MAX_RESETS_PER_HOUR mails an account an hour."""
    email = email.strip().lower()[:254]
    with sessions.begin() as session:
        account = session.scalar(select(Account).where(Account.email == email))
        if account is None or account.erased_at is not None or account.banned_at is not None:
            return
        recent = session.scalar(
            select(func.count())
            .select_from(PasswordReset)
            .where(
                PasswordReset.account_id == account.id,
                PasswordReset.created_at >= utcnow() - timedelta(hours=1),
            )
        )
        if (recent or 0) >= MAX_RESETS_PER_HOUR:
            return
        token = RESET_PREFIX + secrets.token_urlsafe(32)
        session.add(
            PasswordReset(
                id=new_id("pwr"),
                account_id=account.id,
                token_hash=hash_key(token),
                expires_at=utcnow() + timedelta(seconds=ttl_s),
            )
        )
        minutes = max(1, round(ttl_s / 60))
        queue_mail(
            session,
            email,
            "Reset your VoxPersona password",
            f"Hello {account.name},\n\nsomeone asked to reset the password of your VoxPersona account. "
            f"If it was you, use this one-time reset token within {minutes} minutes:\n\n    {token}\n\n"
            "(Account page → 'Forgot your password?'). If it was not you, ignore this mail: "
            "nothing changes.\n",
        )


def reset_password(sessions: sessionmaker[Session], token: str, password: str) -> Caller:
    """Set a new password with a reset token: the token works once, before it expires; every session of the
    account ends (sign in again with the new password). `invalid_reset_token` otherwise: 404 unknown, 410 used
    or expired."""
    check_strength(password)  # before spending the token on a password that would be refused
    with sessions.begin() as session:
        row = session.scalar(
            select(PasswordReset)
            .where(PasswordReset.token_hash == hash_key(token.strip()[:MAX_CHARS]))
            .with_for_update()
        )
        now = utcnow()
        account = session.get(Account, row.account_id) if row is not None else None
        if row is None or account is None or account.erased_at is not None:
            raise PlatformError(
                ErrorCode.INVALID_RESET_TOKEN, "this reset token is unknown: ask for a new one", 404
            )
        if row.used_at is not None or _aware(row.expires_at) <= now:
            raise PlatformError(
                ErrorCode.INVALID_RESET_TOKEN,
                "this reset token was used or has expired: ask for a new one",
                410,
            )
        if account.banned_at is not None:
            raise PlatformError(ErrorCode.ACCOUNT_BANNED, "this account is banned", 403)
        row.used_at = now
        set_password(session, account.id, password)
        end_all_sessions(session, account.id)
        # The owner proved the mailbox: the sign-in lock that may have sent them here is lifted.
        session.execute(delete(SignInFailure).where(SignInFailure.email == account.email))
        for mail in session.scalars(select(MailMessage).where(MailMessage.to_email == account.email)):
            if token.strip() in mail.body:  # the spent token is not kept in the outbox either
                mail.body = "This password reset token was used and no longer works."
        return Caller.of(account)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite hands back naive UTC
